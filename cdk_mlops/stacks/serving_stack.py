"""The serving stack: the approved model behind an endpoint, sized by the environment's profile."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_mlops.config import (
    DATA_QUALITY_BASELINE,
    LABELLED_BASELINES,
    EndpointKind,
    EnvironmentConfig,
    Profile,
)
from cdk_mlops.constructs.common import sagemaker_image_uri
from cdk_mlops.constructs.data_store_base import IDataStore
from cdk_mlops.constructs.model_endpoint import (
    AsyncSettings,
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
from cdk_mlops.constructs.model_monitor import (
    Baselines,
    DataQualitySettings,
    ModelBiasSettings,
    ModelExplainabilitySettings,
    ModelMonitor,
    ModelQualitySettings,
    MonitorProblemType,
    MonitorSchedule,
)
from cdk_mlops.constructs.private_network import PrivateNetwork, placement
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.ground_truth import ground_truth_prefix

#: The column of the served model's CSV response that holds the positive class's probability
#: (the built-in XGBoost's ``binary:logistic`` answers one probability per record).
_PROBABILITY_ATTRIBUTE = "0"
#: The probability above which a prediction counts as the positive label.
_PROBABILITY_THRESHOLD = 0.5
#: The predictions a daily labelled monitor merges with labels: the 24 hours that ended an hour
#: before it runs (one schedule interval, so every prediction is evaluated once, and labels
#: written within the hour are in).
_LABEL_WINDOW = ("-P1DT1H", "-PT1H")


def baseline_root(config: EnvironmentConfig, data_store: IDataStore) -> str:
    """The ``s3://`` URI of the served package's data-quality baseline (``model_baseline_prefix``).

    In the bucket the model was promoted from (``model_source_bucket``), else in ``data_store``.
    """
    prefix = config.model_baseline_prefix
    if prefix is None:  # load_environments requires it wherever a monitor needs it
        raise ConfigurationError(
            f"environments.{config.name}",
            "model_baseline_prefix is not set; set it to the served model's data-quality-baseline prefix",
        )
    source = config.model_source_bucket
    return f"s3://{source}/{prefix}" if source else data_store.s3_uri(prefix)


def labelled_quality(config: EnvironmentConfig, data_store: IDataStore, labels: str) -> ModelQualitySettings:
    """Daily model-quality monitoring of the served model against its ``model-quality-baseline/``.

    ``labels`` is the ground-truth key prefix (``ground-truth/<endpoint or batch job>/``); each
    run merges the 24 hours of predictions that ended an hour before it.
    """
    execution = baseline_root(config, data_store).removesuffix(f"{DATA_QUALITY_BASELINE}-baseline/")
    return ModelQualitySettings(
        baselines=Baselines.from_uris(constraints=f"{execution}model-quality-baseline/constraints.json"),
        problem_type=MonitorProblemType.BINARY_CLASSIFICATION,
        ground_truth_prefix=labels,
        probability_attribute=_PROBABILITY_ATTRIBUTE,
        probability_threshold=_PROBABILITY_THRESHOLD,
        start_time_offset=_LABEL_WINDOW[0],
        end_time_offset=_LABEL_WINDOW[1],
        schedule=MonitorSchedule.daily(hour=1),
    )


def endpoint_name(config: EnvironmentConfig) -> str:
    """The environment's endpoint name, known before the serving stack exists (alarm names use it)."""
    return f"{config.project}-{config.name}"


def endpoint_options(config: EnvironmentConfig, kind: EndpointKind) -> dict[str, Any]:
    """The ``ModelEndpoint`` arguments of an environment's endpoint of ``kind``, by the environment's profile.

    Realtime: ``ml.m5.large``, 2 to 8 instances in prod and 1 to 2 elsewhere, scaled down at night
    in staging. Serverless: 2048 MB, 5 concurrent requests, immediate rollouts. Asynchronous: from
    zero instances (one kept warm in prod) to 2 (4 in prod). Every kind but serverless rolls out
    by a 10 % canary; prod requires rollback alarms and adds a latency and a 5XX alarm.
    """
    prod = config.profile is Profile.PROD
    serverless = kind is EndpointKind.SERVERLESS
    return {
        "kind": kind,
        "serverless": ServerlessSettings(memory_size_in_mb=2048, max_concurrency=5) if serverless else None,
        "realtime": RealtimeSettings(
            instance_type="ml.m5.large",
            initial_instance_count=2 if prod else 1,
            min_capacity=2 if prod else 1,
            max_capacity=8 if prod else 2,
        )
        if kind is EndpointKind.REALTIME
        else None,
        # Prod keeps one instance warm; elsewhere the queue waits for a cold start.
        "async_inference": AsyncSettings(min_capacity=1 if prod else 0, max_capacity=4 if prod else 2)
        if kind is EndpointKind.ASYNC
        else None,
        "rollout": RolloutSettings.immediate() if serverless else RolloutSettings(canary_size_percent=10),
        "require_rollback_alarms": prod,
        "scale_down": ScaleDownSchedule()
        if config.profile is Profile.STAGING and kind is EndpointKind.REALTIME
        else None,
        "add_latency_alarm": {"Critical": LatencyThreshold(max_latency=cdk.Duration.millis(500))} if prod else None,
        "add_5xx_alarm": {"Critical": ErrorCountThreshold(max_error_count=5)} if prod else None,
    }


class ServingStack(cdk.Stack):
    """Serves ``model_package_arn``: serverless in dev, realtime with canary rollout and rollback elsewhere.

    ``EnvironmentConfig.endpoint_kind`` chooses: ``"async"`` serves queued requests from the data
    store (``async-inference/<endpoint>/``), scaling from zero instances (one kept warm in
    prod), with the same canary rollout and rollback as realtime, and no Model Monitor.

    A realtime endpoint captures requests and is watched by Model Monitor, one schedule per
    baseline the served package carries (``EnvironmentConfig.model_baselines``), each against
    that baseline:

    * data quality: hourly in prod, daily in staging;
    * model quality and bias: daily, once ``EnvironmentConfig.ground_truth`` says labels arrive
      under ``ground-truth/<endpoint>/`` (they merge predictions with labels of the past day);
    * explainability: daily.

    Violations become ``Model Monitor Violation`` events and alarms, and per-feature drift
    alarms; the retrain trigger retrains on data- and model-quality violations and drift, while
    bias and explainability violations alert a person.

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
        monitor: The model monitor, or None for a serverless or asynchronous endpoint
            (neither captures data here).
        unmonitored: The baselines of the served package that no monitor uses, with why.
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
        kind = config.endpoint_kind
        serverless = kind is EndpointKind.SERVERLESS
        if serverless and network is not None:
            cdk.Annotations.of(self).add_warning_v2(
                "cdk-mlops:serverless-endpoint-outside-vpc",
                f"environments.{config.name} has a private network, but serverless endpoints cannot run in a VPC; "
                'the endpoint runs outside it. Set "endpoint_kind": "realtime" to serve from the VPC',
            )
        self.endpoint = ModelEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name(config),
            data_store=data_store,
            model_package_arn=model_package_arn,
            # The registered package runs the training image; the role may pull only its repository.
            image_uri=sagemaker_image_uri(self, "xgboost"),
            # Model Monitor reads captured requests; only realtime endpoints capture here.
            data_capture=DataCaptureSettings(sampling_percentage=20) if kind is EndpointKind.REALTIME else None,
            **endpoint_options(config, kind),
            alarm_topic=alarm_topic,
            removal_policy=config.removal_policy,
            **placement(None if serverless else network),
        )
        self.monitor: ModelMonitor | None = None
        self.unmonitored: dict[str, str] = {}
        if kind is EndpointKind.REALTIME:
            self.monitor = self._monitor(config, data_store, alarm_topic)
        if config.model_source_bucket is not None:
            readers = [self.endpoint.role]
            if self.monitor is not None:
                readers.append(self.monitor.role)
                # The function that names the served model in the explainability configuration reads it.
                if self.monitor.analysis_config is not None:
                    readers.append(self.monitor.analysis_config.role)
            for role in readers:
                grant_model_source_read(
                    role, bucket_name=config.model_source_bucket, model_package_arn=model_package_arn
                )
        cdk.CfnOutput(self, "EndpointName", value=endpoint_name(config), description="Invoke the model here")

    def _monitor(
        self, config: EnvironmentConfig, data_store: IDataStore, alarm_topic: sns.ITopic | None
    ) -> ModelMonitor:
        root = baseline_root(config, data_store)
        # load_environments checked that the prefix is an execution's .../data-quality-baseline/ when
        # other baselines are listed: the training pipeline writes each beside it.
        execution = root.removesuffix(f"{DATA_QUALITY_BASELINE}-baseline/")

        def beside(name: str, file: str) -> str:
            return f"{execution}{name}-baseline/{file}"

        labels = ground_truth_prefix(endpoint_name(config))
        daily = MonitorSchedule.daily(hour=1)
        monitored = set(config.model_baselines)
        if not config.ground_truth:
            for name in sorted(monitored & LABELLED_BASELINES):
                self.unmonitored[name] = (
                    f"labels are not delivered yet: set environments.{config.name}.ground_truth to true once "
                    f"cdk_mlops.ground_truth writes them under {labels}"
                )
                cdk.Annotations.of(self).add_info(f"{name} monitoring is off: {self.unmonitored[name]}")
            monitored -= LABELLED_BASELINES
        return ModelMonitor(
            self,
            "Monitor",
            endpoint=self.endpoint,
            data_store=data_store,
            dataset=config.dataset,
            data_quality=DataQualitySettings(
                baselines=Baselines.from_prefix(root),
                schedule=MonitorSchedule.hourly() if config.profile is Profile.PROD else MonitorSchedule.daily(),
                drift_thresholds=dict(config.drift_thresholds),
            ),
            model_quality=labelled_quality(config, data_store, labels) if "model-quality" in monitored else None,
            model_bias=ModelBiasSettings(
                baselines=Baselines.from_uris(
                    constraints=beside("model-bias", "analysis.json"),
                    analysis_config=beside("model-bias", "analysis_config.json"),
                ),
                ground_truth_prefix=labels,
                probability_attribute=_PROBABILITY_ATTRIBUTE,
                probability_threshold=_PROBABILITY_THRESHOLD,
                start_time_offset=_LABEL_WINDOW[0],
                end_time_offset=_LABEL_WINDOW[1],
                schedule=daily,
            )
            if "model-bias" in monitored
            else None,
            model_explainability=ModelExplainabilitySettings(
                baselines=Baselines.from_uris(
                    constraints=beside("model-explainability", "analysis.json"),
                    analysis_config=beside("model-explainability", "analysis_config.json"),
                ),
                probability_attribute=_PROBABILITY_ATTRIBUTE,
                schedule=daily,
            )
            if "model-explainability" in monitored
            else None,
            alarm_topic=alarm_topic,
            removal_policy=config.removal_policy,
        )
