"""The data stack: where training data, dataset manifests and model artifacts live, and how versions are taken."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from cdk_mlops.config import EnvironmentConfig
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.inventory_snapshot import InventorySnapshot
from cdk_mlops.constructs.private_network import PrivateNetwork, placement


class DataStack(cdk.Stack):
    """Holds the platform's versioned data store and its inventory snapshots.

    Args:
        config: The environment.
        network: The environment's private network, where the snapshot functions run.
            Default: - no VPC.

    Attributes:
        store: The data store (datasets, manifests, artifacts, capture, monitoring).
        snapshots: Takes dataset versions of any size from the store's S3 Inventory.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        network: PrivateNetwork | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, termination_protection=config.termination_protection, **kwargs)
        expiration = config.noncurrent_version_expiration_days
        # The scored dataset too: its drops reach the scoring trigger.
        datasets = [config.dataset, *([config.batch_inference.dataset] if config.batch_inference else [])]
        # The catalogue's datasets are declared too (their versions are listed at each start).
        declared = list(dict.fromkeys([*datasets, *(m.dataset for m in config.models)]))
        self.store = VersionedDataStore(
            self,
            "Store",
            datasets=declared,
            removal_policy=config.data_removal_policy,
            noncurrent_version_transition=cdk.Duration.days(config.noncurrent_version_transition_days),
            noncurrent_version_expiration=cdk.Duration.days(expiration) if expiration is not None else None,
        )
        self.snapshots = InventorySnapshot(
            self,
            "Snapshots",
            data_store=self.store,
            datasets=datasets,
            # The reports can be made again, but they list the data: they go with it.
            removal_policy=config.data_removal_policy,
            **placement(network),
        )
        cdk.CfnOutput(self, "DataBucketName", value=self.store.bucket.bucket_name, description="Upload datasets here")
        cdk.CfnOutput(
            self,
            "SnapshotStateMachineArn",
            value=self.snapshots.state_machine.state_machine_arn,
            description='Takes a dataset version from S3 Inventory: start it with {"dataset": "<name>"}',
        )
