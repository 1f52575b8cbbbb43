"""The scoring stack: batch inference of a dataset with the environment's approved model, and its monitor."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_mlops.config import BatchInferenceConfig, EnvironmentConfig
from cdk_mlops.constructs.batch_inference import BatchInference
from cdk_mlops.constructs.common import sagemaker_image_uri
from cdk_mlops.constructs.data_store_base import IDataStore
from cdk_mlops.constructs.model_endpoint import grant_model_source_read
from cdk_mlops.constructs.model_monitor import Baselines, DataQualitySettings, ModelMonitor, MonitorSchedule
from cdk_mlops.constructs.private_network import PrivateNetwork, placement
from cdk_mlops.ground_truth import ground_truth_prefix
from cdk_mlops.stacks.serving_stack import baseline_root, labelled_quality


def scoring_name(config: EnvironmentConfig) -> str:
    """The environment's batch scoring name (its pipeline, output and capture prefixes)."""
    return f"{config.project}-{config.name}-scoring"


class ScoringStack(cdk.Stack):
    """Scores ``batch_inference.dataset`` with ``model_package_arn`` on SageMaker Batch Transform.

    Each new version of the dataset is scored once (and, with a schedule, each version not
    yet scored); the predictions and a ``lineage.json`` naming the model package and the input
    manifest land under ``batch-output/<project>-<env>-scoring/<data version>/<execution>/``.
    Where the served package has a data-quality baseline (``model_baseline_prefix``), a daily
    Model Monitor schedule compares the captured batch data with it, and, once labels arrive
    under ``ground-truth/<scoring name>/`` (``ground_truth``) and the package has a
    model-quality baseline, a daily model-quality schedule too; their violations reach the
    retrain trigger as endpoint violations do.

    Attributes:
        scoring: The batch inference.
        monitor: Its monitor, or None without a baseline.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        batch: BatchInferenceConfig,
        data_store: IDataStore,
        model_package_arn: str,
        alarm_topic: sns.ITopic | None = None,
        network: PrivateNetwork | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, termination_protection=config.termination_protection, **kwargs)
        self.scoring = BatchInference(
            self,
            "Scoring",
            data_store=data_store,
            dataset=batch.dataset,
            name=scoring_name(config),
            model_package_arn=model_package_arn,
            # The registered package runs the training image; the role may pull only its repository.
            image_uri=sagemaker_image_uri(self, "xgboost"),
            schedule=scheduler.ScheduleExpression.expression(batch.schedule) if batch.schedule else None,
            alarm_topic=alarm_topic,
            removal_policy=config.removal_policy,
            **placement(network),
        )
        self.monitor: ModelMonitor | None = None
        if config.model_baseline_prefix is not None:
            self.monitor = ModelMonitor(
                self,
                "Monitor",
                batch_transform=self.scoring,
                batch_data_prefixes=[self.scoring.output_prefix],
                data_store=data_store,
                # A violation retrains on the training dataset, as an endpoint's does.
                dataset=config.dataset,
                data_quality=DataQualitySettings(
                    baselines=Baselines.from_prefix(baseline_root(config, data_store)),
                    # Batch data arrives once per run: a daily check after the night's runs.
                    schedule=MonitorSchedule.daily(hour=6),
                ),
                model_quality=labelled_quality(config, data_store, ground_truth_prefix(self.scoring.batch_name))
                if config.ground_truth and "model-quality" in config.model_baselines
                else None,
                alarm_topic=alarm_topic,
                removal_policy=config.removal_policy,
                **placement(network),
            )
        if config.model_source_bucket is not None:
            for role in (self.scoring.role, *([self.monitor.role] if self.monitor else [])):
                grant_model_source_read(
                    role, bucket_name=config.model_source_bucket, model_package_arn=model_package_arn
                )
        cdk.CfnOutput(
            self, "ScoringPipelineName", value=self.scoring.pipeline_name, description="The batch scoring pipeline"
        )
        cdk.CfnOutput(
            self,
            "ScoringOutputPrefix",
            value=self.scoring.output_prefix,
            description="Where predictions and their lineage land in the data store",
        )
