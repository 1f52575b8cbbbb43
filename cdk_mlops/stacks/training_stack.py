"""The training stack: the training pipeline, its model registry and the retrain trigger."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from cdk_mlops.config import EnvironmentConfig
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.retrain_trigger import RetrainTrigger
from cdk_mlops.constructs.training_pipeline import TrainingPipeline


class TrainingStack(cdk.Stack):
    """Trains on new data versions and registers the models that pass the gate.

    Attributes:
        training: The SageMaker pipeline and model package group.
        retrain: The trigger that starts the pipeline on new data, on schedule and on drift.
    """

    def __init__(
        self, scope: Construct, id: str, *, config: EnvironmentConfig, data_store: VersionedDataStore, **kwargs: Any
    ) -> None:
        super().__init__(scope, id, termination_protection=config.termination_protection, **kwargs)
        self.training = TrainingPipeline(
            self,
            "Pipeline",
            data_store=data_store,
            dataset=config.dataset,
            pipeline_name=f"{config.project}-{config.name}-training",
            auto_approve=config.auto_approve_models,
            source_revision=config.source_revision,
            removal_policy=config.data_removal_policy,
        )
        schedule = config.retrain_schedule
        self.retrain = RetrainTrigger(
            self,
            "Retrain",
            data_store=data_store,
            datasets=[config.dataset],
            pipeline_name=self.training.pipeline_name,
            schedule=scheduler.ScheduleExpression.expression(schedule) if schedule else None,
            alarm_topic=self.training.topic,
            removal_policy=config.removal_policy,
        )
