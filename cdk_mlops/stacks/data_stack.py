"""The data stack: where training data and model artifacts live."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_mlops.config import EnvironmentConfig


class DataStack(cdk.Stack):
    """Holds the platform's data store and its KMS key."""

    def __init__(self, scope: Construct, id: str, *, config: EnvironmentConfig, **kwargs: Any) -> None:
        super().__init__(scope, id, termination_protection=config.termination_protection, **kwargs)
        self.key = kms.Key(
            self,
            "Key",
            enable_key_rotation=True,
            description=f"cdk-mlops {config.name}: data store encryption",
            removal_policy=config.data_removal_policy,
        )
