"""The training stack: the training pipeline, its model registry and the retrain trigger."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from cdk_mlops.config import DatasetVersions, EnvironmentConfig
from cdk_mlops.constructs.data_store_base import IDataStore
from cdk_mlops.constructs.fleet_dashboard import FleetDashboard
from cdk_mlops.constructs.fleet_trigger import FleetRetrainTrigger
from cdk_mlops.constructs.inventory_snapshot import InventorySnapshot
from cdk_mlops.constructs.model_monitor import feature_drift_alarm_name
from cdk_mlops.constructs.private_network import PrivateNetwork, placement
from cdk_mlops.constructs.retrain_trigger import RetrainTrigger
from cdk_mlops.constructs.training_pipeline import TrainingPipeline
from cdk_mlops.pipeline_definition import ClarifySettings, TrainingSettings
from cdk_mlops.stacks.serving_stack import endpoint_name


class TrainingStack(cdk.Stack):
    """Trains on new data versions and registers the models that pass the gate.

    Args:
        config: The environment.
        data_store: The environment's data store.
        snapshots: The store's inventory snapshots; the trigger trains on their versions when
            ``config.dataset_versions`` is ``inventory``.
        network: The environment's private network: every pipeline job and the retrain Lambda
            run in its subnets with its workloads' security groups. Default: - no VPC.

    Attributes:
        training: The SageMaker pipeline and model package group.
        retrain: The trigger that starts the pipeline on new data, on schedule and on drift.
        fleet: The retrain trigger of the model catalogue's pipelines; None without ``models``.
        fleet_dashboard: One dashboard and four alarms across the catalogue's models
            (``<project>-<env>-fleet``); None without ``models``.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        data_store: IDataStore,
        snapshots: InventorySnapshot,
        network: PrivateNetwork | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, termination_protection=config.termination_protection, **kwargs)
        in_network = placement(network)
        self.training = TrainingPipeline(
            self,
            "Pipeline",
            data_store=data_store,
            dataset=config.dataset,
            pipeline_name=f"{config.project}-{config.name}-training",
            auto_approve=config.auto_approve_models,
            source_revision=config.source_revision,
            # The later environments' accounts serve the models registered here.
            cross_account_read_accounts=config.model_reader_accounts,
            removal_policy=config.data_removal_policy,
            # Clarify's bias and SHAP baselines, for the bias and explainability monitors, where the
            # environment names its sensitive columns; Preprocess on the environment's instances.
            settings=TrainingSettings(
                clarify=ClarifySettings(facets=config.bias_facets) if config.bias_facets else None,
                preprocess_instance_count=config.preprocess_instance_count,
            ),
            **in_network,
        )
        schedule = config.retrain_schedule
        # The drift alarms live in the serving stack, deployed after this one: refer to them by name,
        # which the monitor fixes, instead of a cross-stack reference that would make a cycle.
        drift_alarms = [
            cw.Alarm.from_alarm_name(self, f"Drift{index}", feature_drift_alarm_name(endpoint_name(config), feature))
            for index, feature in enumerate(sorted(config.drift_thresholds))
        ]
        self.retrain = RetrainTrigger(
            self,
            "Retrain",
            data_store=data_store,
            datasets=[config.dataset],
            snapshot=snapshots if config.dataset_versions is DatasetVersions.INVENTORY else None,
            pipeline_name=self.training.pipeline_name,
            # Every automated run competes with this group's approved model; the artifacts prefix
            # (where the champion's evaluation.json is) is the trigger's default, TrainingPipeline's.
            model_package_group_name=self.training.model_package_group_name,
            schedule=scheduler.ScheduleExpression.expression(schedule) if schedule else None,
            drift_alarms=drift_alarms,
            alarm_topic=self.training.topic,
            removal_policy=config.removal_policy,
            **in_network,
        )
        # One trigger for every model of the catalogue (none without one): their routes are in the model stacks.
        self.fleet: FleetRetrainTrigger | None = None
        self.fleet_dashboard: FleetDashboard | None = None
        if config.models:
            self.fleet = FleetRetrainTrigger(
                self,
                "Fleet",
                data_store=data_store,
                pipeline_name_prefix=config.fleet_prefix,
                alarm_topic=self.training.topic,
                removal_policy=config.removal_policy,
                **in_network,
            )
            # One view of every model of the catalogue, the same size for 3 models as for 1,000.
            self.fleet_dashboard = FleetDashboard(
                self,
                "FleetDashboard",
                dashboard_name=f"{config.project}-{config.name}-fleet",
                trigger=self.fleet,
                alarm_topic=self.training.topic,
            )
        cdk.CfnOutput(self, "PipelineName", value=self.training.pipeline_name, description="The training pipeline")
        cdk.CfnOutput(
            self,
            "ModelPackageGroupName",
            value=self.training.model_package_group_name,
            description="Where models are registered and approved",
        )
        cdk.CfnOutput(
            self, "RetrainQueueUrl", value=self.retrain.queue.queue_url, description="Trigger events (and DLQ redrive)"
        )
