"""The data stack: where training data, dataset manifests and model artifacts live."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from cdk_mlops.config import EnvironmentConfig
from cdk_mlops.constructs.data_store import VersionedDataStore


class DataStack(cdk.Stack):
    """Holds the platform's versioned data store.

    Attributes:
        store: The data store (datasets, manifests, artifacts, capture, monitoring).
    """

    def __init__(self, scope: Construct, id: str, *, config: EnvironmentConfig, **kwargs: Any) -> None:
        super().__init__(scope, id, termination_protection=config.termination_protection, **kwargs)
        expiration = config.noncurrent_version_expiration_days
        self.store = VersionedDataStore(
            self,
            "Store",
            # The scored dataset too: its drops reach the scoring trigger.
            datasets=[config.dataset, *([config.batch_inference.dataset] if config.batch_inference else [])],
            removal_policy=config.data_removal_policy,
            noncurrent_version_transition=cdk.Duration.days(config.noncurrent_version_transition_days),
            noncurrent_version_expiration=cdk.Duration.days(expiration) if expiration is not None else None,
        )
        cdk.CfnOutput(self, "DataBucketName", value=self.store.bucket.bucket_name, description="Upload datasets here")
