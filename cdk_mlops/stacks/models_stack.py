"""A model stack: the catalogue's models whose names hash to it, each a pipeline, a registry group and a route.

A model served on an endpoint of its own (``serving.mode`` realtime, serverless or async, with an
approved ``model_package_arn``) has that endpoint here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_mlops.catalogue import CatalogueModel, ServingMode
from cdk_mlops.config import EndpointKind, EnvironmentConfig, Profile
from cdk_mlops.constructs.common import sagemaker_image_uri
from cdk_mlops.constructs.data_store_base import IDataStore
from cdk_mlops.constructs.fleet_trigger import FleetRetrainTrigger, RetrainRoute
from cdk_mlops.constructs.model_endpoint import DataCaptureSettings, ModelEndpoint
from cdk_mlops.constructs.model_monitor import (
    Baselines,
    DataQualitySettings,
    ModelMonitor,
    MonitoringType,
    MonitorSchedule,
    schedule_name,
)
from cdk_mlops.constructs.private_network import PrivateNetwork, placement
from cdk_mlops.constructs.retrain_trigger import RetrainPolicy
from cdk_mlops.constructs.training_pipeline import TrainingPipeline
from cdk_mlops.pipeline_definition import TrainingSettings
from cdk_mlops.stacks.serving_stack import endpoint_options


def model_stack_id(index: int) -> str:
    """The construct id of the model stack ``index`` (``Models00``)."""
    return f"Models{index:02d}"


class ModelsStack(cdk.Stack):
    """Trains the catalogue's models assigned to it (:func:`cdk_mlops.catalogue.model_stack_index`).

    Each model is five resources: a :class:`TrainingPipeline` (pipeline, role, policy, model package
    group) that announces its failures through the fleet's ``PipelineFailed`` rule, and a
    :class:`RetrainRoute` (one SSM parameter) through the environment's :class:`FleetRetrainTrigger`.
    A model's construct id is its name, so its resources keep their logical ids while it stays in
    this stack.

    A model served in mode ``realtime``, ``serverless`` or ``async`` once ``model_package_arn`` is
    set also gets a :class:`ModelEndpoint` named like its pipeline, with the settings of the
    environment's own endpoint of that kind (:func:`endpoint_options`). A realtime model with a
    ``baseline_prefix`` (its served version's data-quality baseline) also captures 20% of its
    requests, and a :class:`ModelMonitor` checks them against the baseline, hourly in prod and
    daily elsewhere; its route names the monitor's schedule, so a violation retrains the model
    through the fleet trigger. Other served models capture nothing and are not monitored. The
    stack's endpoints and monitors share one KMS key (``ServingKey``), not one each.

    Args:
        config: The environment.
        models: The models of this stack.
        data_store: The environment's data store.
        trigger: The environment's fleet retrain trigger.
        topic: Where failed executions are announced (the fleet trigger's ``alarm_topic``).
        network: The environment's private network, where every job runs. Default: - no VPC.

    Attributes:
        pipelines: Each model's pipeline, by model name.
        routes: Each model's route, by model name.
        endpoints: Each served model's own endpoint, by model name.
        monitors: Each monitored model's Model Monitor (data quality), by model name.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        models: Sequence[CatalogueModel],
        data_store: IDataStore,
        trigger: FleetRetrainTrigger,
        topic: sns.ITopic,
        network: PrivateNetwork | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, termination_protection=config.termination_protection, **kwargs)
        in_network = placement(network)
        self.pipelines: dict[str, TrainingPipeline] = {}
        self.routes: dict[str, RetrainRoute] = {}
        self.endpoints: dict[str, ModelEndpoint] = {}
        self.monitors: dict[str, ModelMonitor] = {}
        self._key: kms.Key | None = None
        for model in models:
            name = f"{config.fleet_prefix}{model.name}"
            pipeline = TrainingPipeline(
                self,
                model.name,
                data_store=data_store,
                dataset=model.dataset,
                pipeline_name=name,
                auto_approve=config.auto_approve_models,
                source_revision=config.source_revision,
                cross_account_read_accounts=config.model_reader_accounts,
                removal_policy=config.data_removal_policy,
                notification_topic=topic,
                announce_failures=False,
                settings=TrainingSettings(preprocess_instance_count=model.preprocess_instance_count),
                **in_network,
            )
            self.pipelines[model.name] = pipeline
            self.routes[model.name] = RetrainRoute(
                self,
                f"{model.name}-route",
                trigger=trigger,
                pipeline_name=name,
                datasets=[model.dataset],
                model_package_group_name=pipeline.model_package_group_name,
                policy=RetrainPolicy(
                    quiet_period=cdk.Duration.minutes(model.quiet_period_minutes),
                    cooldown=cdk.Duration.hours(model.cooldown_hours),
                    max_runs_per_day=model.max_runs_per_day,
                ),
                # The monitor's schedule is named after the endpoint, so its violations can be routed before it exists.
                monitoring_schedule_names=[schedule_name(name, MonitoringType.DATA_QUALITY)] if model.monitored else [],
            )
            served = model.served
            if served is not None and served.model_package_arn is not None and served.mode is not ServingMode.SHARED:
                kind = EndpointKind(served.mode.value)
                endpoint = self.endpoints[model.name] = ModelEndpoint(
                    self,
                    f"{model.name}-endpoint",
                    endpoint_name=name,
                    data_store=data_store,
                    model_package_arn=served.model_package_arn,
                    # The registered package runs the training image; the role may pull only its repository.
                    image_uri=sagemaker_image_uri(self, "xgboost"),
                    data_capture=DataCaptureSettings(sampling_percentage=20) if model.monitored else None,
                    # One key for the endpoints and monitors of this stack, not one each (a key costs by the month).
                    encryption_key=self._stack_key(config),
                    **endpoint_options(config, kind),
                    alarm_topic=topic,
                    removal_policy=config.removal_policy,
                    **placement(None if kind is EndpointKind.SERVERLESS else network),
                )
                if model.monitored and served.baseline_prefix is not None:
                    self.monitors[model.name] = ModelMonitor(
                        self,
                        f"{model.name}-monitor",
                        endpoint=endpoint,
                        data_store=data_store,
                        dataset=model.dataset,
                        data_quality=DataQualitySettings(
                            baselines=Baselines.from_prefix(data_store.s3_uri(served.baseline_prefix)),
                            schedule=MonitorSchedule.hourly()
                            if config.profile is Profile.PROD
                            else MonitorSchedule.daily(),
                        ),
                        encryption_key=self._stack_key(config),
                        alarm_topic=topic,
                        removal_policy=config.removal_policy,
                    )

    def _stack_key(self, config: EnvironmentConfig) -> kms.Key:
        """The key of this stack's endpoints and monitors, created with the first served model.

        It encrypts the endpoints' storage volumes and asynchronous topics, and the monitors' job
        volumes and dead-letter queues; every model of the stack is of one environment.
        """
        if self._key is None:
            self._key = kms.Key(
                self,
                "ServingKey",
                description=f"Encrypts the endpoints and monitors of the served models of {self.node.path}",
                enable_key_rotation=True,
                removal_policy=config.removal_policy,
            )
        return self._key
