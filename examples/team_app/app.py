#!/usr/bin/env python3
"""An outside team's app: its own two stacks around a legacy bucket it already has.

``Team/Data`` holds the team's private network (a VPC without internet access, with the
endpoints of every AWS API the platform calls) and puts the team's existing, versioned,
KMS-encrypted bucket behind the data store's interface (``VersionedDataStore.from_bucket``).
``Team/Training`` holds the training pipeline and the retrain trigger, both inside that
network: the VPC, its subnets and security groups cross from one stack to the other as
CloudFormation exports.

The bucket's name and its key's ARN come from context (``cdk.json``, or ``--context``), read
once here and passed down. Only the public API (``from cdk_mlops import ...``) is used.
The stacks take no ``env=``, so they deploy to the account and region of the CLI's
credentials, and locally to the local AWS's (see docs/testing.md).
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from cdk_mlops import (
    GuardrailSettings,
    IDataStore,
    PrivateNetwork,
    RetrainPolicy,
    RetrainTrigger,
    TrainingPipeline,
    VersionedDataStore,
    apply_compliance,
    apply_guardrails,
    synth_app,
)

#: The dataset the team trains on, under datasets/churn/ of its legacy bucket.
DATASET = "churn"


class DataStack(cdk.Stack):
    """The team's network and its legacy data bucket, imported (nothing about the bucket is created)."""

    def __init__(self, scope: cdk.Stage, id: str, *, bucket_name: str, key_arn: str, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        # The network is disposable in this team's dev account; the data is not (the bucket is not ours).
        self.network = PrivateNetwork(self, "Network", removal_policy=cdk.RemovalPolicy.DESTROY)
        bucket = s3.Bucket.from_bucket_name(self, "LegacyBucket", bucket_name)
        key = kms.Key.from_key_arn(self, "LegacyKey", key_arn)
        self.store: IDataStore = VersionedDataStore.from_bucket(
            self, "Data", bucket=bucket, encryption_key=key, datasets=[DATASET]
        )


class TrainingStack(cdk.Stack):
    """Training and retraining on the data stack's store, inside its network."""

    def __init__(self, scope: cdk.Stage, id: str, *, data: DataStack, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        network = data.network
        placement: dict[str, Any] = {
            "vpc": network.vpc,
            "vpc_subnets": network.vpc_subnets,
            "security_groups": list(network.security_groups),
        }
        self.training = TrainingPipeline(
            self, "Training", data_store=data.store, dataset=DATASET, pipeline_name="churn-team-training", **placement
        )
        self.retrain = RetrainTrigger(
            self,
            "Retrain",
            data_store=data.store,
            datasets=[DATASET],
            pipeline_name=self.training.pipeline_name,
            policy=RetrainPolicy(cooldown=cdk.Duration.hours(1)),
            removal_policy=cdk.RemovalPolicy.DESTROY,
            **placement,
        )


def build_app(app: cdk.App | None = None) -> cdk.App:
    """The team's app: one stage, ``Team``, with its two stacks, cdk-nag and the guardrails."""
    app = app or cdk.App()
    bucket_name = str(app.node.try_get_context("legacy_bucket") or "")
    key_arn = str(app.node.try_get_context("legacy_key_arn") or "")
    if not bucket_name or not key_arn:
        raise SystemExit("set the context values legacy_bucket and legacy_key_arn (cdk.json or --context)")
    stage = cdk.Stage(app, "Team")
    data = DataStack(stage, "Data", bucket_name=bucket_name, key_arn=key_arn)
    TrainingStack(stage, "Training", data=data)
    for key, value in {"project": "churn", "environment": "dev", "owner": "team-churn"}.items():
        cdk.Tags.of(stage).add(key, value)
    apply_guardrails(stage, GuardrailSettings())
    apply_compliance(app)
    return app


if __name__ == "__main__":
    synth_app(build_app())
