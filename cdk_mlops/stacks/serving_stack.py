"""The serving stack: the approved model behind an endpoint, sized by the environment's profile."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_mlops.config import EndpointKind, EnvironmentConfig, Profile
from cdk_mlops.constructs.common import sagemaker_image_uri
from cdk_mlops.constructs.data_store_base import IDataStore
from cdk_mlops.constructs.model_endpoint import (
    DataCaptureSettings,
    ErrorCountThreshold,
    LatencyThreshold,
    ModelEndpoint,
    RealtimeSettings,
    RolloutSettings,
    ScaleDownSchedule,
    ServerlessSettings,
    grant_model_source_read,
)
from cdk_mlops.constructs.model_monitor import Baselines, DataQualitySettings, ModelMonitor, MonitorSchedule
from cdk_mlops.constructs.private_network import PrivateNetwork, placement
from cdk_mlops.errors import ConfigurationError


def endpoint_name(config: EnvironmentConfig) -> str:
    """The environment's endpoint name, known before the serving stack exists (alarm names use it)."""
    return f"{config.project}-{config.name}"


class ServingStack(cdk.Stack):
    """Serves ``model_package_arn``: serverless in dev, realtime with canary rollout and rollback elsewhere.

    A realtime endpoint captures requests and is watched by Model Monitor
    (data quality, against the served model's drift-check baseline): hourly in
    prod, daily in staging. Violations become ``Model Monitor Violation``
    events and per-feature drift alarms, both of which the retrain trigger
    consumes.

    A model promoted from another environment (``model_source_bucket``) stays where it was
    trained: the endpoint reads its artifacts, and the monitor its baseline, in that
    environment's data bucket (whose policies let this account read ``artifacts/``, see
    ``EnvironmentConfig.model_reader_accounts``), decrypting through S3 with that bucket's key.

    In an environment with a private network, a realtime endpoint runs in its subnets with its
    workloads' security groups, and the monitor's jobs follow the endpoint's network. Serverless
    endpoints cannot run in a VPC: they stay outside it (guardrail MLOPS-007 refuses that where
    the environment requires network isolation).

    Attributes:
        endpoint: The model endpoint.
        monitor: The data-quality monitor, or None for a serverless endpoint
            (serverless endpoints cannot capture data).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        data_store: IDataStore,
        model_package_arn: str,
        alarm_topic: sns.ITopic | None = None,
        network: PrivateNetwork | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, termination_protection=config.termination_protection, **kwargs)
        serverless = config.endpoint_kind is EndpointKind.SERVERLESS
        if serverless and network is not None:
            cdk.Annotations.of(self).add_warning_v2(
                "cdk-mlops:serverless-endpoint-outside-vpc",
                f"environments.{config.name} has a private network, but serverless endpoints cannot run in a VPC; "
                'the endpoint runs outside it. Set "endpoint_kind": "realtime" to serve from the VPC',
            )
        prod = config.profile is Profile.PROD
        self.endpoint = ModelEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name(config),
            data_store=data_store,
            model_package_arn=model_package_arn,
            # The registered package runs the training image; the role may pull only its repository.
            image_uri=sagemaker_image_uri(self, "xgboost"),
            kind=config.endpoint_kind,
            serverless=ServerlessSettings(memory_size_in_mb=2048, max_concurrency=5) if serverless else None,
            realtime=None
            if serverless
            else RealtimeSettings(
                instance_type="ml.m5.large",
                initial_instance_count=2 if prod else 1,
                min_capacity=2 if prod else 1,
                max_capacity=8 if prod else 2,
            ),
            # Model Monitor reads captured requests; serverless endpoints cannot capture.
            data_capture=None if serverless else DataCaptureSettings(sampling_percentage=20),
            rollout=RolloutSettings.immediate() if serverless else RolloutSettings(canary_size_percent=10),
            require_rollback_alarms=prod,
            scale_down=ScaleDownSchedule() if config.profile is Profile.STAGING and not serverless else None,
            add_latency_alarm={"Critical": LatencyThreshold(max_latency=cdk.Duration.millis(500))} if prod else None,
            add_5xx_alarm={"Critical": ErrorCountThreshold(max_error_count=5)} if prod else None,
            alarm_topic=alarm_topic,
            removal_policy=config.removal_policy,
            **placement(None if serverless else network),
        )
        self.monitor: ModelMonitor | None = None
        if not serverless:
            self.monitor = self._monitor(config, data_store, alarm_topic)
        if config.model_source_bucket is not None:
            for role in (self.endpoint.role, *([self.monitor.role] if self.monitor else [])):
                grant_model_source_read(
                    role, bucket_name=config.model_source_bucket, model_package_arn=model_package_arn
                )
        cdk.CfnOutput(self, "EndpointName", value=endpoint_name(config), description="Invoke the model here")

    def _monitor(
        self, config: EnvironmentConfig, data_store: IDataStore, alarm_topic: sns.ITopic | None
    ) -> ModelMonitor:
        prefix = config.model_baseline_prefix
        if prefix is None:  # load_environments requires it for realtime endpoints
            raise ConfigurationError(
                self,
                f"model_baseline_prefix is not set for {config.name}; set environments.{config.name}."
                "model_baseline_prefix to the served model's data-quality-baseline prefix",
            )
        return ModelMonitor(
            self,
            "Monitor",
            endpoint=self.endpoint,
            data_store=data_store,
            dataset=config.dataset,
            data_quality=DataQualitySettings(
                baselines=Baselines.from_prefix(
                    f"s3://{config.model_source_bucket}/{prefix}"
                    if config.model_source_bucket
                    else data_store.s3_uri(prefix)
                ),
                schedule=MonitorSchedule.hourly() if config.profile is Profile.PROD else MonitorSchedule.daily(),
                drift_thresholds=dict(config.drift_thresholds),
            ),
            alarm_topic=alarm_topic,
            removal_policy=config.removal_policy,
        )
