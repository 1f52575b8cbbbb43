"""ModelEndpoint: a SageMaker endpoint with autoscaling, data capture, safe rollout and monitoring."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aws_cdk import Annotations, ArnFormat, Duration, RemovalPolicy, Stack, TimeZone, Token
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_mlops.config import EndpointKind
from cdk_mlops.constructs.common import (
    ECR_PULL_ACTIONS,
    GUARDRAILS,
    INSTANCE_TYPE,
    LOG_ACTIONS,
    SAGEMAKER_NAME,
    acknowledge,
    depend_on_role_policy,
    ecr_repository_arn,
    grant_sagemaker_vpc_access,
    iam5_findings,
    nag_resource,
    select_subnets,
)
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.errors import ConfigurationError

__all__ = [
    "DataCaptureSettings",
    "ErrorCountThreshold",
    "LatencyThreshold",
    "ModelEndpoint",
    "RealtimeSettings",
    "RolloutSettings",
    "ScaleDownSchedule",
    "ServerlessSettings",
    "TrafficShift",
]

#: CloudWatch namespace of invocation metrics (dimensions ``EndpointName``, ``VariantName``).
SAGEMAKER_NAMESPACE = "AWS/SageMaker"
#: CloudWatch namespace of instance and container utilization metrics of endpoints.
ENDPOINT_INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
#: The one production variant of every endpoint. Blue/green deployments require the new
#: endpoint configuration to keep the variant name, so it never changes.
VARIANT_NAME = "AllTraffic"
#: Stable id of the info annotation emitted when an instance type with local storage drops ``KmsKeyId``.
LOCAL_STORAGE_INFO_ID = "cdk-mlops:endpoint-local-storage"

_PACKAGE_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:model-package/[^/]+(/[0-9]+)?$")
_S3_OBJECT_URI = re.compile(r"^s3://[^/]+/.+[^/]$")
_ALARM_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,31}$")
# Instance types with local NVMe storage: SageMaker rejects KmsKeyId for them (the storage is
# encrypted by a hardware module), so the endpoint configuration must omit it. Families whose
# name carries a "d" (m5d, c5d, r5d, g4dn, p3dn, p4d, p4de ...) and the GPU/Trainium families
# that always ship instance storage.
_LOCAL_STORAGE = re.compile(r"^ml\.(?:[a-z]+[0-9]+[a-z]*d[a-z]*|g5|g6|g6e|gr6|p5|p5e|p5en|trn1|trn1n)\.")
# Serverless memory sizes SageMaker accepts (MemorySizeInMB).
_SERVERLESS_MEMORY = (1024, 2048, 3072, 4096, 5120, 6144)
_MAX_SERVERLESS_CONCURRENCY = 200
# DeploymentConfig limits (SageMaker API TrafficRoutingConfig / BlueGreenUpdatePolicy / AutoRollbackConfig).
_MAX_WAIT_SECONDS = 3600
_MIN_EXECUTION_TIMEOUT, _MAX_EXECUTION_TIMEOUT = 600, 28800
_MAX_ROLLBACK_ALARMS = 10

_SCALING_ROLE = "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"

# --------------------------------------------------------------------------------- validation helpers


def _whole_problem(name: str, value: object, low: int, high: int | None = None, fix: str = "") -> list[str]:
    """A problem when ``value`` is not a whole number in ``[low, high]``; tokens pass."""
    if Token.is_unresolved(value):
        return []
    valid = isinstance(value, int | float) and not isinstance(value, bool) and value == int(value)
    if valid and value >= low and (high is None or value <= high):  # type: ignore[operator]
        return []
    bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
    return [f"{name} ({value!r}) must be a whole number {bounds}" + (f"; {fix}" if fix else "")]


def _seconds(duration: Duration) -> float | None:
    """Seconds of a duration, or ``None`` for a token."""
    return None if duration.is_unresolved() else duration.to_seconds(integral=False)


def _seconds_problem(name: str, duration: Duration, low: int, high: int) -> list[str]:
    seconds = _seconds(duration)
    if seconds is None or (low <= seconds <= high and seconds == int(seconds)):
        return []
    return [f"{name} ({seconds:g} s) must be a whole number of seconds from {low} to {high}"]


def _known(*values: object) -> bool:
    """True when none of the values is a token, so they can be compared."""
    return not any(Token.is_unresolved(v) for v in values)


# --------------------------------------------------------------------------------- settings


@dataclass(frozen=True, kw_only=True)
class RealtimeSettings:
    """Instances behind target-tracking autoscaling (``EndpointKind.REALTIME``).

    Attributes:
        instance_type: The ML instance type. Burstable ``ml.t*`` types cannot
            autoscale and are rejected. Default: - ``ml.m5.large``.
        initial_instance_count: Instances when the endpoint is created; within
            ``[min_capacity, max_capacity]``. Default: - 2, so SageMaker spreads
            the instances over Availability Zones.
        min_capacity: Fewest instances autoscaling keeps. Default: - 2.
        max_capacity: Most instances autoscaling starts. Default: - 4.
        target_invocations_per_instance: Target of the
            ``SageMakerVariantInvocationsPerInstance`` metric (invocations per
            instance per minute); load-test the model and use about half of what
            one instance sustains. Default: - 1000.
        scale_in_cooldown: Wait after a scale-in before the next. Default: - 5 minutes.
        scale_out_cooldown: Wait after a scale-out before the next. Default: - 1 minute.
    """

    instance_type: str = "ml.m5.large"
    initial_instance_count: int = 2
    min_capacity: int = 2
    max_capacity: int = 4
    target_invocations_per_instance: int = 1000
    scale_in_cooldown: Duration = field(default_factory=lambda: Duration.minutes(5))
    scale_out_cooldown: Duration = field(default_factory=lambda: Duration.minutes(1))

    def problems(self) -> list[str]:
        """Every invalid setting, each with its value and the fix; tokens are not checked."""
        found: list[str] = []
        itype = self.instance_type
        if not Token.is_unresolved(itype):
            if not INSTANCE_TYPE.match(itype):
                found.append(f"realtime.instance_type {itype!r} is not an ML instance type; use e.g. 'ml.m5.large'")
            elif itype.startswith("ml.t"):
                found.append(
                    f"realtime.instance_type {itype!r} is burstable, and SageMaker cannot autoscale burstable "
                    "instances; use e.g. 'ml.m5.large' or 'ml.c5.large', or kind=EndpointKind.SERVERLESS"
                )
        counts = [
            ("realtime.initial_instance_count", self.initial_instance_count),
            ("realtime.min_capacity", self.min_capacity),
            ("realtime.max_capacity", self.max_capacity),
        ]
        for name, value in counts:
            found += _whole_problem(name, value, 1)
        low, high, initial = self.min_capacity, self.max_capacity, self.initial_instance_count
        if not found and _known(low, high) and low > high:
            found.append(
                f"realtime.min_capacity ({low}) must not exceed realtime.max_capacity ({high}); "
                "raise max_capacity or lower min_capacity"
            )
        elif not found and _known(low, high, initial) and not low <= initial <= high:
            found.append(
                f"realtime.initial_instance_count ({initial}) must be within [min_capacity, max_capacity] "
                f"= [{low}, {high}]; autoscaling would move it there right after deployment"
            )
        found += _whole_problem("realtime.target_invocations_per_instance", self.target_invocations_per_instance, 1)
        for name, cooldown in (
            ("realtime.scale_in_cooldown", self.scale_in_cooldown),
            ("realtime.scale_out_cooldown", self.scale_out_cooldown),
        ):
            found += _seconds_problem(name, cooldown, 0, 86400)
        return found


@dataclass(frozen=True, kw_only=True)
class ServerlessSettings:
    """Pay-per-request capacity (``EndpointKind.SERVERLESS``).

    Serverless endpoints do not support data capture, VPC configuration or
    network isolation; the construct rejects those combinations.

    Attributes:
        memory_size_in_mb: 1024 to 6144, in steps of 1024. Default: - 2048.
        max_concurrency: Concurrent invocations, 1 to 200. Default: - 10.
        provisioned_concurrency: Warm capacity (no cold starts up to this many
            concurrent requests, billed while provisioned); at most
            ``max_concurrency``. Default: - none; every instance starts on demand.
    """

    memory_size_in_mb: int = 2048
    max_concurrency: int = 10
    provisioned_concurrency: int | None = None

    def problems(self) -> list[str]:
        """Every invalid setting, each with its value and the fix; tokens are not checked."""
        found: list[str] = []
        memory = self.memory_size_in_mb
        if _known(memory) and memory not in _SERVERLESS_MEMORY:
            found.append(
                f"serverless.memory_size_in_mb ({memory!r}) is not a serverless memory size; "
                f"use one of {', '.join(str(m) for m in _SERVERLESS_MEMORY)}"
            )
        found += _whole_problem("serverless.max_concurrency", self.max_concurrency, 1, _MAX_SERVERLESS_CONCURRENCY)
        provisioned = self.provisioned_concurrency
        if provisioned is not None:
            problem = _whole_problem("serverless.provisioned_concurrency", provisioned, 1, _MAX_SERVERLESS_CONCURRENCY)
            found += problem
            if not problem and _known(provisioned, self.max_concurrency) and provisioned > self.max_concurrency:
                found.append(
                    f"serverless.provisioned_concurrency ({provisioned}) must not exceed "
                    f"serverless.max_concurrency ({self.max_concurrency}); lower it or raise max_concurrency"
                )
        return found


@dataclass(frozen=True, kw_only=True)
class DataCaptureSettings:
    """What a realtime endpoint records for Model Monitor.

    Captured records land under ``capture/<endpoint name>/`` of the data store,
    encrypted with the store's key.

    Attributes:
        sampling_percentage: Share of requests captured, 0 to 100. Lower it for
            high-traffic endpoints. Default: - 100.
        capture_request: Record request payloads. Default: - True.
        capture_response: Record response payloads. Default: - True.
        json_content_types: Content types stored as JSON text (not base64).
            Default: - ``application/json``.
        csv_content_types: Content types stored as CSV text (not base64).
            Default: - ``text/csv``.
    """

    sampling_percentage: int = 100
    capture_request: bool = True
    capture_response: bool = True
    json_content_types: tuple[str, ...] = ("application/json",)
    csv_content_types: tuple[str, ...] = ("text/csv",)

    def problems(self) -> list[str]:
        """Every invalid setting, each with its value and the fix; tokens are not checked."""
        found = _whole_problem(
            "data_capture.sampling_percentage", self.sampling_percentage, 0, 100, "use e.g. 20 for 20 %"
        )
        if not (self.capture_request or self.capture_response):
            found.append(
                "data_capture captures neither requests nor responses; set capture_request and/or "
                "capture_response, or pass data_capture=None"
            )
        for name in ("json_content_types", "csv_content_types"):
            types = getattr(self, name)
            if any(not t or " " in t for t in types) or len(types) > 10:
                found.append(f"data_capture.{name} {list(types)!r} must hold at most 10 content types without spaces")
        return found


class TrafficShift(StrEnum):
    """How a blue/green deployment moves traffic to the new fleet."""

    ALL_AT_ONCE = "ALL_AT_ONCE"
    """Every request moves at once; alarms still roll back during ``termination_wait``."""
    CANARY = "CANARY"
    """A small share first (``canary_size_percent``), the rest after ``wait``."""
    LINEAR = "LINEAR"
    """Equal steps of ``linear_step_percent``, ``wait`` apart."""


@dataclass(frozen=True, kw_only=True)
class RolloutSettings:
    """Blue/green deployment of model updates, with automatic rollback on alarms.

    The construct creates two rollback alarms on the endpoint's variant: 5XX
    invocation errors and p99 ``ModelLatency``. If either enters ALARM while
    traffic shifts or during ``termination_wait``, SageMaker moves every
    request back to the old fleet.

    Attributes:
        traffic_shift: CANARY, LINEAR or ALL_AT_ONCE. Default: - CANARY.
        canary_size_percent: Share of the new fleet's capacity that takes
            traffic first (CANARY), 1 to 50. Default: - 10.
        linear_step_percent: Share moved per step (LINEAR), 10 to 50. Default: - 20.
        wait: Baking time between steps, up to 1 hour. Default: - 10 minutes.
        termination_wait: Baking time after all traffic moved, before the old
            fleet is terminated (rollback is still possible), up to 1 hour.
            Default: - 5 minutes.
        max_execution_time: The whole deployment's time limit, 10 minutes to 8
            hours. Default: - SageMaker's default.
        rollback_alarms: Create the two rollback alarms. Default: - True.
        max_5xx_errors_per_minute: The 5XX alarm fires above this many errors
            per minute. Default: - 0 (any 5XX error).
        max_p99_model_latency: The latency alarm fires when p99 ModelLatency
            exceeds this. Default: - 1 second.
        alarm_evaluation_minutes: Consecutive breaching minutes before a
            rollback alarm fires, 1 to 10. Default: - 2.
    """

    traffic_shift: TrafficShift = TrafficShift.CANARY
    canary_size_percent: int = 10
    linear_step_percent: int = 20
    wait: Duration = field(default_factory=lambda: Duration.minutes(10))
    termination_wait: Duration = field(default_factory=lambda: Duration.minutes(5))
    max_execution_time: Duration | None = None
    rollback_alarms: bool = True
    max_5xx_errors_per_minute: int = 0
    max_p99_model_latency: Duration = field(default_factory=lambda: Duration.seconds(1))
    alarm_evaluation_minutes: int = 2

    @classmethod
    def immediate(cls) -> RolloutSettings:
        """All traffic at once, no baking and no rollback alarms: fast deployments for dev."""
        return cls(
            traffic_shift=TrafficShift.ALL_AT_ONCE,
            wait=Duration.seconds(0),
            termination_wait=Duration.seconds(0),
            rollback_alarms=False,
        )

    def problems(self) -> list[str]:
        """Every invalid setting, each with its value and the fix; tokens are not checked."""
        found: list[str] = []
        if self.traffic_shift is TrafficShift.CANARY:
            found += _whole_problem(
                "rollout.canary_size_percent",
                self.canary_size_percent,
                1,
                50,
                "SageMaker moves at most half of the new fleet's capacity in the canary step",
            )
        if self.traffic_shift is TrafficShift.LINEAR:
            found += _whole_problem(
                "rollout.linear_step_percent",
                self.linear_step_percent,
                10,
                50,
                "SageMaker moves 10-50 % of the new fleet's capacity per linear step",
            )
        found += _seconds_problem("rollout.wait", self.wait, 0, _MAX_WAIT_SECONDS)
        found += _seconds_problem("rollout.termination_wait", self.termination_wait, 0, _MAX_WAIT_SECONDS)
        if self.max_execution_time is not None:
            found += _seconds_problem(
                "rollout.max_execution_time", self.max_execution_time, _MIN_EXECUTION_TIMEOUT, _MAX_EXECUTION_TIMEOUT
            )
        found += _whole_problem("rollout.max_5xx_errors_per_minute", self.max_5xx_errors_per_minute, 0)
        found += _whole_problem("rollout.alarm_evaluation_minutes", self.alarm_evaluation_minutes, 1, 10)
        found += _latency_problems("rollout.max_p99_model_latency", self.max_p99_model_latency)
        return found


@dataclass(frozen=True, kw_only=True)
class ScaleDownSchedule:
    """Scheduled capacity for a non-prod realtime endpoint: fewer instances at night and on weekends.

    At ``scale_down`` the variant's capacity is pinned to ``capacity``
    instances; at ``scale_up`` the realtime settings' min and max return.
    With the defaults, the endpoint runs small from 19:00 on weekdays until
    07:00 the next weekday, so also from Friday evening to Monday morning.

    Attributes:
        scale_down: When capacity drops. Default: - 19:00 Monday to Friday.
        scale_up: When capacity returns. Default: - 07:00 Monday to Friday.
        capacity: Instances while scaled down (a realtime variant keeps at
            least one). Default: - 1.
        time_zone: Time zone of both schedules. Default: - UTC.
    """

    scale_down: appscaling.Schedule = field(
        default_factory=lambda: appscaling.Schedule.cron(minute="0", hour="19", week_day="MON-FRI")
    )
    scale_up: appscaling.Schedule = field(
        default_factory=lambda: appscaling.Schedule.cron(minute="0", hour="7", week_day="MON-FRI")
    )
    capacity: int = 1
    time_zone: TimeZone | None = None

    def problems(self) -> list[str]:
        """Every invalid setting, each with its value and the fix; tokens are not checked."""
        found = _whole_problem("scale_down.capacity", self.capacity, 1, fix="a realtime variant keeps one instance")
        if self.scale_down.expression_string == self.scale_up.expression_string:
            found.append(
                f"scale_down.scale_down and scale_up are the same schedule ({self.scale_up.expression_string}); "
                "give them different times"
            )
        return found


@dataclass(frozen=True, kw_only=True)
class LatencyThreshold:
    """An opt-in latency alarm (``add_latency_alarm={"Warning": LatencyThreshold(...)}``).

    Attributes:
        max_latency: The alarm fires when the statistic of ``ModelLatency`` exceeds this.
        statistic: Default: - ``p90``.
        period: Default: - 5 minutes.
        evaluation_periods: Default: - 3.
        datapoints_to_alarm: Breaching periods among ``evaluation_periods``. Default: - 3.
    """

    max_latency: Duration
    statistic: str = "p90"
    period: Duration = field(default_factory=lambda: Duration.minutes(5))
    evaluation_periods: int = 3
    datapoints_to_alarm: int = 3

    def problems(self, where: str) -> list[str]:
        found = _alarm_window_problems(where, self.evaluation_periods, self.datapoints_to_alarm)
        return found + _latency_problems(f"{where}.max_latency", self.max_latency)


@dataclass(frozen=True, kw_only=True)
class ErrorCountThreshold:
    """An opt-in error alarm (``add_5xx_alarm={"Critical": ErrorCountThreshold(...)}``).

    Attributes:
        max_error_count: The alarm fires when more errors than this occur in a period.
        period: Default: - 5 minutes.
        evaluation_periods: Default: - 3.
        datapoints_to_alarm: Breaching periods among ``evaluation_periods``. Default: - 3.
    """

    max_error_count: int
    period: Duration = field(default_factory=lambda: Duration.minutes(5))
    evaluation_periods: int = 3
    datapoints_to_alarm: int = 3

    def problems(self, where: str) -> list[str]:
        found = _alarm_window_problems(where, self.evaluation_periods, self.datapoints_to_alarm)
        return found + _whole_problem(f"{where}.max_error_count", self.max_error_count, 0)


def _latency_problems(name: str, latency: Duration) -> list[str]:
    # ModelLatency is in microseconds: the alarm threshold is computed at synth, so it needs a value.
    if latency.is_unresolved():
        return [f"{name} must be a concrete duration (the alarm threshold in microseconds is computed at synth)"]
    if latency.to_milliseconds(integral=False) <= 0:
        return [f"{name} ({latency.to_human_string()}) must be positive; use e.g. Duration.millis(500)"]
    return []


def _alarm_window_problems(where: str, evaluation_periods: int, datapoints: int) -> list[str]:
    found = _whole_problem(f"{where}.evaluation_periods", evaluation_periods, 1, 100)
    found += _whole_problem(f"{where}.datapoints_to_alarm", datapoints, 1, 100)
    if not found and _known(evaluation_periods, datapoints) and datapoints > evaluation_periods:
        found.append(
            f"{where}.datapoints_to_alarm ({datapoints}) must not exceed evaluation_periods ({evaluation_periods})"
        )
    return found


# --------------------------------------------------------------------------------- the construct


class ModelEndpoint(Construct):
    """Serves a registered model package, or a model artifact with its image, on a SageMaker endpoint.

    One model, one endpoint configuration (always KMS-encrypted) and one
    endpoint with a single variant (``AllTraffic``). Realtime endpoints scale on
    ``SageMakerVariantInvocationsPerInstance`` and can capture requests and
    responses into the data store for Model Monitor; serverless endpoints
    scale with requests. Model updates deploy blue/green (canary by default)
    and roll back on the construct's 5XX and p99-latency alarms. A dashboard
    shows invocations, latency, errors and capacity; severity-keyed alarms are
    opt-in.

    Example::

        endpoint = ModelEndpoint(self, "Endpoint", endpoint_name="churn", data_store=store,
                                 model_package_arn=approved_package_arn)
        endpoint.grant_invoke(api_function)

    Attributes:
        endpoint_name: The endpoint's name (lower case).
        endpoint_arn: The endpoint's ARN.
        variant_name: The production variant (``AllTraffic``).
        kind: Realtime or serverless.
        role: The model's execution role.
        model: The ``AWS::SageMaker::Model``.
        endpoint_config: The ``AWS::SageMaker::EndpointConfig``.
        endpoint: The ``AWS::SageMaker::Endpoint``.
        encryption_key: Encrypts the endpoint's storage volumes.
        capture_uri: Where data capture writes (``s3://<bucket>/capture/<endpoint name>/``),
            or ``None`` without capture.
        security_groups: The model's security groups, when in a VPC.
        connections: Network connections of the model, when in a VPC.
        scalable_target: The variant's autoscaling target (realtime only).
        scaling_policy: The target-tracking policy (realtime only).
        rollback_alarms: The alarms this construct created for automatic rollback.
        latency_alarms: Opt-in latency alarms by severity.
        error_alarms: Opt-in 5XX alarms by severity.
        dashboard: The endpoint's CloudWatch dashboard.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint_name: str,
        data_store: VersionedDataStore,
        model_package_arn: str | None = None,
        model_data_url: str | None = None,
        image_uri: str | None = None,
        environment: Mapping[str, str] | None = None,
        kind: EndpointKind = EndpointKind.REALTIME,
        realtime: RealtimeSettings | None = None,
        serverless: ServerlessSettings | None = None,
        data_capture: DataCaptureSettings | None = None,
        rollout: RolloutSettings | None = None,
        require_rollback_alarms: bool = False,
        additional_rollback_alarms: Sequence[cw.IAlarm] = (),
        scale_down: ScaleDownSchedule | None = None,
        encryption_key: kms.IKey | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        enable_network_isolation: bool | None = None,
        add_latency_alarm: Mapping[str, LatencyThreshold] | None = None,
        add_5xx_alarm: Mapping[str, ErrorCountThreshold] | None = None,
        alarm_topic: sns.ITopic | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """Define the endpoint.

        Args:
            scope: The parent construct.
            id: The construct id.
            endpoint_name: 1-63 lower-case letters, digits and hyphens. Clients
                invoke the endpoint by this name; a token must resolve to such a name.
            data_store: Holds the model artifacts (under ``artifacts/``, which the
                role may read) and receives data capture under ``capture/<endpoint name>/``.
            model_package_arn: A model package version of the registry (a string
                or token, e.g. a parameter the delivery pipeline sets). Exactly one
                of ``model_package_arn`` and ``model_data_url``.
            model_data_url: ``s3://<data store bucket>/artifacts/.../model.tar.gz``;
                needs ``image_uri``.
            image_uri: The inference image (``<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>``).
                Required with ``model_data_url``. With a model package it only
                names the package's image so the role may pull it. Default: - no
                image is pulled with the role's permissions (model package only).
            environment: Environment variables of the container. Default: - none.
            kind: REALTIME or SERVERLESS (``EnvironmentConfig.endpoint_kind``).
                Default: - REALTIME.
            realtime: Instance type, counts and autoscaling (REALTIME only).
                Default: - 2 to 4 ``ml.m5.large`` instances, 1000 invocations per
                instance per minute.
            serverless: Memory and concurrency (SERVERLESS only). Default: - 2048 MB,
                10 concurrent invocations, no provisioned concurrency.
            data_capture: Record requests and responses (REALTIME only).
                Default: - no capture.
            rollout: How model updates deploy. Default: - blue/green, 10 % canary,
                10 minutes baking, 5 minutes before the old fleet goes, rollback on
                the construct's 5XX and p99-latency alarms.
                ``RolloutSettings.immediate()`` deploys at once without alarms.
            require_rollback_alarms: Reject a rollout without rollback alarms
                (prod passes True; guardrail MLOPS-005). Default: - False.
            additional_rollback_alarms: More alarms that roll a deployment back
                (at most 10 in all). Default: - none.
            scale_down: Fewer instances at night and on weekends (REALTIME only,
                for non-prod). Default: - capacity follows autoscaling only.
            encryption_key: Encrypts the endpoint's storage volumes. Default: - a
                new key with rotation on. Instance types with local NVMe storage
                (e.g. ``ml.g5``, ``ml.m5d``) are encrypted by hardware instead:
                SageMaker rejects a key for them, so none is set.
            vpc: Run the model in this VPC (REALTIME only). Default: - no VPC.
            vpc_subnets: Subnets of ``vpc``. Default: - the VPC's default selection (its
                private subnets when it has them).
            security_groups: Security groups of the model in ``vpc``.
                Default: - a new group without inbound rules.
            enable_network_isolation: The container can make no network calls.
                Default: - True for REALTIME, False for SERVERLESS (which does not
                support it).
            add_latency_alarm: Opt-in ``ModelLatency`` alarms by severity (e.g.
                ``"Warning"``, ``"Critical"``). Default: - none.
            add_5xx_alarm: Opt-in 5XX error alarms by severity. Default: - none.
            alarm_topic: Every alarm of this construct notifies it. Default: - alarms
                have no action.
            removal_policy: For the created encryption key. Default: - RETAIN.

        Raises:
            ConfigurationError: listing every invalid argument, before any
                resource is defined.
        """
        super().__init__(scope, id)
        realtime_settings = realtime or RealtimeSettings()
        serverless_settings = serverless or ServerlessSettings()
        rollout_settings = rollout or RolloutSettings()
        latency_alarms = dict(add_latency_alarm or {})
        error_alarms = dict(add_5xx_alarm or {})
        isolation = (kind is EndpointKind.REALTIME) if enable_network_isolation is None else enable_network_isolation
        problems = self._problems(
            endpoint_name=endpoint_name,
            model_package_arn=model_package_arn,
            model_data_url=model_data_url,
            image_uri=image_uri,
            kind=kind,
            realtime=realtime,
            serverless=serverless,
            realtime_settings=realtime_settings,
            serverless_settings=serverless_settings,
            data_capture=data_capture,
            rollout=rollout_settings,
            require_rollback_alarms=require_rollback_alarms,
            additional_rollback_alarms=additional_rollback_alarms,
            scale_down=scale_down,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=security_groups,
            enable_network_isolation=enable_network_isolation,
            latency_alarms=latency_alarms,
            error_alarms=error_alarms,
        )
        if problems:
            raise ConfigurationError(self, problems)

        stack = Stack.of(self)
        self.endpoint_name = endpoint_name
        self.kind = kind
        self.variant_name = VARIANT_NAME
        self.endpoint_arn = stack.format_arn(service="sagemaker", resource="endpoint", resource_name=endpoint_name)
        self._dimensions = {"EndpointName": endpoint_name, "VariantName": VARIANT_NAME}
        self._alarm_topic = alarm_topic

        self.encryption_key: kms.IKey = encryption_key or kms.Key(
            self,
            "Key",
            description=f"Encrypts the storage volumes of the {self.node.path} endpoint",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Runs the model of the {endpoint_name} endpoint (least privilege, no managed policies)",
        )

        self.security_groups: list[ec2.ISecurityGroup] = []
        self.connections: ec2.Connections | None = None
        vpc_config: sagemaker.CfnModel.VpcConfigProperty | None = None
        if vpc is not None:
            self.security_groups = list(security_groups or [self._security_group(vpc)])
            self.connections = ec2.Connections(security_groups=self.security_groups)
            subnets = select_subnets(vpc, vpc_subnets)
            vpc_config = sagemaker.CfnModel.VpcConfigProperty(
                subnets=subnets.subnet_ids,
                security_group_ids=[g.security_group_id for g in self.security_groups],
            )

        container = sagemaker.CfnModel.ContainerDefinitionProperty(
            model_package_name=model_package_arn,
            image=None if model_package_arn is not None else image_uri,
            model_data_url=model_data_url,
            environment=dict(environment) if environment else None,
        )
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            primary_container=container,
            enable_network_isolation=isolation,
            vpc_config=vpc_config,
        )

        self.capture_uri: str | None = None
        if data_capture is not None:
            self.capture_uri = data_store.s3_uri(f"{data_store.capture_prefix}{endpoint_name}/")

        self._grant_role(data_store, model_package_arn, image_uri, data_capture is not None, vpc_config)
        # SageMaker downloads the artifact and pulls the image with the role when the model is
        # created and the endpoint starts, so both wait for the role's policies. The model names
        # the role with Fn::GetAtt already, so it depends on the policy alone.
        depend_on_role_policy(self.model, self.role)

        self.endpoint_config = self._endpoint_config(
            kind, realtime_settings, serverless_settings, data_capture, data_store
        )

        self.rollback_alarms: list[cw.Alarm] = []
        if rollout_settings.rollback_alarms:
            self.rollback_alarms = self._rollback_alarms(rollout_settings)
        rollback = [*self.rollback_alarms, *additional_rollback_alarms]
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            deployment_config=self._deployment_config(rollout_settings, rollback),
            # Autoscaled instance counts survive a model update: the new fleet starts as large as
            # the old one rather than at initial_instance_count. Capture settings of the new
            # configuration still apply.
            retain_all_variant_properties=True if kind is EndpointKind.REALTIME else None,
            exclude_retained_variant_properties=(
                [sagemaker.CfnEndpoint.VariantPropertyProperty(variant_property_type="DataCaptureConfig")]
                if kind is EndpointKind.REALTIME
                else None
            ),
        )
        self.endpoint.node.add_dependency(self.role)

        self.scalable_target: appscaling.ScalableTarget | None = None
        self.scaling_policy: appscaling.TargetTrackingScalingPolicy | None = None
        if kind is EndpointKind.REALTIME:
            self._autoscaling(realtime_settings, scale_down)

        self.latency_alarms: dict[str, cw.Alarm] = {
            severity: self._latency_alarm(severity, threshold) for severity, threshold in latency_alarms.items()
        }
        self.error_alarms: dict[str, cw.Alarm] = {
            severity: self._error_alarm(severity, threshold) for severity, threshold in error_alarms.items()
        }
        self.dashboard = self._dashboard()

    # ------------------------------------------------------------------ validation

    def _problems(
        self,
        *,
        endpoint_name: str,
        model_package_arn: str | None,
        model_data_url: str | None,
        image_uri: str | None,
        kind: EndpointKind,
        realtime: RealtimeSettings | None,
        serverless: ServerlessSettings | None,
        realtime_settings: RealtimeSettings,
        serverless_settings: ServerlessSettings,
        data_capture: DataCaptureSettings | None,
        rollout: RolloutSettings,
        require_rollback_alarms: bool,
        additional_rollback_alarms: Sequence[cw.IAlarm],
        scale_down: ScaleDownSchedule | None,
        vpc: ec2.IVpc | None,
        vpc_subnets: ec2.SubnetSelection | None,
        security_groups: Sequence[ec2.ISecurityGroup] | None,
        enable_network_isolation: bool | None,
        latency_alarms: Mapping[str, LatencyThreshold],
        error_alarms: Mapping[str, ErrorCountThreshold],
    ) -> list[str]:
        found: list[str] = []
        if not Token.is_unresolved(endpoint_name) and not SAGEMAKER_NAME.match(endpoint_name):
            found.append(
                f"endpoint_name {endpoint_name!r} is not valid; use 1-63 lower-case letters, digits and hyphens, "
                "starting and ending with a letter or digit (SageMaker lower-cases names in ARNs)"
            )
        found += self._model_problems(model_package_arn, model_data_url, image_uri)

        serverless_kind = kind is EndpointKind.SERVERLESS
        if serverless_kind:
            found += serverless_settings.problems()
            if realtime is not None:
                found.append("realtime settings were given for a serverless endpoint; remove them or set kind=REALTIME")
            unsupported = [
                ("data_capture", data_capture is not None),
                ("vpc", vpc is not None),
                ("enable_network_isolation=True", enable_network_isolation is True),
            ]
            for name, given in unsupported:
                if given:
                    found.append(
                        f"{name} is not supported by serverless endpoints (SageMaker Serverless Inference has no "
                        f"data capture, VPC or network isolation); remove it, or use kind=EndpointKind.REALTIME"
                    )
            if scale_down is not None:
                found.append(
                    "scale_down applies to realtime instances; serverless endpoints cost nothing while idle, "
                    "remove scale_down"
                )
        else:
            found += realtime_settings.problems()
            if serverless is not None:
                found.append(
                    "serverless settings were given for a realtime endpoint; remove them or set kind=SERVERLESS"
                )
            if data_capture is not None:
                found += data_capture.problems()
            if scale_down is not None:
                found += scale_down.problems()
                capacity, high = scale_down.capacity, realtime_settings.max_capacity
                if _known(capacity, high) and isinstance(capacity, int) and capacity > high:
                    found.append(
                        f"scale_down.capacity ({capacity}) must not exceed realtime.max_capacity ({high}); "
                        "lower it (scaling down should reduce capacity)"
                    )
        if vpc is None and (vpc_subnets is not None or security_groups is not None):
            found.append("vpc_subnets and security_groups need vpc; pass vpc=..., or remove them")

        found += rollout.problems()
        alarm_count = (2 if rollout.rollback_alarms else 0) + len(additional_rollback_alarms)
        wait, termination_wait = _seconds(rollout.wait), _seconds(rollout.termination_wait)
        no_step_bake = rollout.traffic_shift is TrafficShift.ALL_AT_ONCE or wait == 0
        if alarm_count and no_step_bake and termination_wait == 0:
            found.append(
                "the rollout has rollback alarms but no baking period, so no alarm could ever roll back; "
                "set rollout.termination_wait (e.g. Duration.minutes(5)) or a wait between traffic steps"
            )
        if require_rollback_alarms and alarm_count == 0:
            found.append(
                "require_rollback_alarms is set but the rollout has no rollback alarms; keep "
                "RolloutSettings(rollback_alarms=True) or pass additional_rollback_alarms"
            )
        if alarm_count > _MAX_ROLLBACK_ALARMS:
            found.append(
                f"{alarm_count} rollback alarms exceed SageMaker's limit of {_MAX_ROLLBACK_ALARMS}; "
                "combine them into a composite alarm"
            )
        for label, mapping in (("add_latency_alarm", latency_alarms), ("add_5xx_alarm", error_alarms)):
            for severity, threshold in mapping.items():
                if not _ALARM_KEY.match(severity):
                    found.append(
                        f"{label} key {severity!r} must be 1-32 letters and digits, starting with a letter "
                        "(e.g. 'Warning', 'Critical')"
                    )
                found += threshold.problems(f"{label}[{severity!r}]")
        return found

    @staticmethod
    def _model_problems(package_arn: str | None, data_url: str | None, image_uri: str | None) -> list[str]:
        found: list[str] = []
        if (package_arn is None) == (data_url is None):
            given = "both were given" if package_arn is not None else "neither was given"
            found.append(
                f"pass exactly one of model_package_arn (a registered model version) and model_data_url "
                f"(an artifact in the data store); {given}"
            )
        if package_arn is not None and not Token.is_unresolved(package_arn) and not _PACKAGE_ARN.match(package_arn):
            found.append(
                f"model_package_arn {package_arn!r} is not a model package version ARN; use "
                "arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>"
            )
        if data_url is not None:
            if not Token.is_unresolved(data_url) and not _S3_OBJECT_URI.match(data_url):
                found.append(
                    f"model_data_url {data_url!r} is not an S3 object URI; use "
                    "s3://<bucket>/artifacts/.../model.tar.gz (data_store.s3_uri(key) builds one)"
                )
            if image_uri is None:
                found.append("model_data_url needs image_uri, the inference image that loads the artifact")
        if image_uri is not None and not Token.is_unresolved(image_uri) and ".dkr.ecr." not in image_uri:
            found.append(
                f"image_uri {image_uri!r} is not an ECR image URI "
                "(<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>)"
            )
        return found

    # ------------------------------------------------------------------ resources

    def _security_group(self, vpc: ec2.IVpc) -> ec2.SecurityGroup:
        # No inbound rules: SageMaker reaches the container through its own network interface.
        # Outbound stays open so the model can download its artifact through the VPC's S3 endpoint or NAT.
        return ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description=f"{self.node.path}: the model containers of endpoint {self.endpoint_name}",
            allow_all_outbound=True,
        )

    def _endpoint_config(
        self,
        kind: EndpointKind,
        realtime: RealtimeSettings,
        serverless: ServerlessSettings,
        data_capture: DataCaptureSettings | None,
        data_store: VersionedDataStore,
    ) -> sagemaker.CfnEndpointConfig:
        if kind is EndpointKind.SERVERLESS:
            variant = sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=VARIANT_NAME,
                model_name=self.model.attr_model_name,
                initial_variant_weight=1,
                serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                    memory_size_in_mb=serverless.memory_size_in_mb,
                    max_concurrency=serverless.max_concurrency,
                    provisioned_concurrency=serverless.provisioned_concurrency,
                ),
            )
        else:
            variant = sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=VARIANT_NAME,
                model_name=self.model.attr_model_name,
                initial_variant_weight=1,
                instance_type=realtime.instance_type,
                initial_instance_count=realtime.initial_instance_count,
            )
        capture = None
        if data_capture is not None and self.capture_uri is not None:
            modes = [
                m
                for m, on in (("Input", data_capture.capture_request), ("Output", data_capture.capture_response))
                if on
            ]
            capture = sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=True,
                initial_sampling_percentage=data_capture.sampling_percentage,
                destination_s3_uri=self.capture_uri,
                kms_key_id=data_store.encryption_key.key_arn,
                capture_options=[sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode=m) for m in modes],
                capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                    json_content_types=list(data_capture.json_content_types) or None,
                    csv_content_types=list(data_capture.csv_content_types) or None,
                ),
            )
        local_storage = (
            kind is EndpointKind.REALTIME
            and not Token.is_unresolved(realtime.instance_type)
            and _LOCAL_STORAGE.match(realtime.instance_type) is not None
        )
        config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[variant],
            kms_key_id=None if local_storage else self.encryption_key.key_arn,
            data_capture_config=capture,
        )
        if local_storage:
            acknowledge(
                config,
                f"{realtime.instance_type} has local NVMe instance storage, which a hardware module encrypts; "
                "SageMaker rejects a KmsKeyId for such instance types, so none can be set",
                f"{GUARDRAILS}::MLOPS-002",
            )
            Annotations.of(self).add_info(
                f"[{LOCAL_STORAGE_INFO_ID}] {realtime.instance_type} has local storage encrypted by hardware; "
                "the endpoint configuration sets no KmsKeyId"
            )
        return config

    def _deployment_config(
        self, rollout: RolloutSettings, alarms: Sequence[cw.IAlarm]
    ) -> sagemaker.CfnEndpoint.DeploymentConfigProperty:
        cfn = sagemaker.CfnEndpoint
        shift = rollout.traffic_shift
        routing = cfn.TrafficRoutingConfigProperty(
            type=shift.value,
            wait_interval_in_seconds=0 if shift is TrafficShift.ALL_AT_ONCE else rollout.wait.to_seconds(),
            canary_size=(
                cfn.CapacitySizeProperty(type="CAPACITY_PERCENT", value=rollout.canary_size_percent)
                if shift is TrafficShift.CANARY
                else None
            ),
            linear_step_size=(
                cfn.CapacitySizeProperty(type="CAPACITY_PERCENT", value=rollout.linear_step_percent)
                if shift is TrafficShift.LINEAR
                else None
            ),
        )
        timeout = rollout.max_execution_time
        return cfn.DeploymentConfigProperty(
            blue_green_update_policy=cfn.BlueGreenUpdatePolicyProperty(
                traffic_routing_configuration=routing,
                termination_wait_in_seconds=rollout.termination_wait.to_seconds(),
                maximum_execution_timeout_in_seconds=None if timeout is None else timeout.to_seconds(),
            ),
            auto_rollback_configuration=(
                cfn.AutoRollbackConfigProperty(alarms=[cfn.AlarmProperty(alarm_name=a.alarm_name) for a in alarms])
                if alarms
                else None
            ),
        )

    def _rollback_alarms(self, rollout: RolloutSettings) -> list[cw.Alarm]:
        minutes = rollout.alarm_evaluation_minutes
        errors = cw.Alarm(
            self,
            "Rollback5xxAlarm",
            alarm_description=(
                f"{self.node.path}: more than {rollout.max_5xx_errors_per_minute} 5XX invocation errors a minute "
                f"for {minutes} minutes; rolls a deployment in progress back"
            ),
            metric=self.metric_5xx(period=Duration.minutes(1)),
            threshold=rollout.max_5xx_errors_per_minute,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=minutes,
            datapoints_to_alarm=minutes,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        latency = rollout.max_p99_model_latency
        latency_alarm = cw.Alarm(
            self,
            "RollbackLatencyAlarm",
            alarm_description=(
                f"{self.node.path}: p99 ModelLatency above {latency.to_human_string()} for {minutes} minutes; "
                "rolls a deployment in progress back"
            ),
            metric=self.metric_model_latency(statistic="p99", period=Duration.minutes(1)),
            threshold=_microseconds(latency),
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=minutes,
            datapoints_to_alarm=minutes,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        alarms = [errors, latency_alarm]
        for alarm in alarms:
            self._notify(alarm)
        return alarms

    def _latency_alarm(self, severity: str, threshold: LatencyThreshold) -> cw.Alarm:
        alarm = cw.Alarm(
            self,
            f"Latency{severity}Alarm",
            alarm_description=(
                f"[{severity}] {self.node.path}: {threshold.statistic} ModelLatency above "
                f"{threshold.max_latency.to_human_string()}"
            ),
            metric=self.metric_model_latency(statistic=threshold.statistic, period=threshold.period),
            threshold=_microseconds(threshold.max_latency),
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=threshold.evaluation_periods,
            datapoints_to_alarm=threshold.datapoints_to_alarm,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self._notify(alarm)
        return alarm

    def _error_alarm(self, severity: str, threshold: ErrorCountThreshold) -> cw.Alarm:
        alarm = cw.Alarm(
            self,
            f"Errors5xx{severity}Alarm",
            alarm_description=(
                f"[{severity}] {self.node.path}: more than {threshold.max_error_count} 5XX invocation errors "
                f"per {threshold.period.to_human_string()}"
            ),
            metric=self.metric_5xx(period=threshold.period),
            threshold=threshold.max_error_count,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=threshold.evaluation_periods,
            datapoints_to_alarm=threshold.datapoints_to_alarm,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self._notify(alarm)
        return alarm

    def _notify(self, alarm: cw.Alarm) -> None:
        if self._alarm_topic is not None:
            alarm.add_alarm_action(cw_actions.SnsAction(self._alarm_topic))

    def _autoscaling(self, settings: RealtimeSettings, scale_down: ScaleDownSchedule | None) -> None:
        stack = Stack.of(self)
        # Application Auto Scaling acts for SageMaker through its service-linked role (created on
        # first use); importing it keeps the construct from defining a role that would do nothing.
        scaling_role = iam.Role.from_role_arn(
            self,
            "ScalingRole",
            stack.format_arn(
                service="iam",
                region="",
                resource="role",
                resource_name=f"aws-service-role/sagemaker.application-autoscaling.amazonaws.com/{_SCALING_ROLE}",
            ),
        )
        target = appscaling.ScalableTarget(
            self,
            "ScalableTarget",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{self.endpoint_name}/variant/{VARIANT_NAME}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=settings.min_capacity,
            max_capacity=settings.max_capacity,
            role=scaling_role,
        )
        # The variant exists only once the endpoint is in service.
        target.node.add_dependency(self.endpoint)
        self.scaling_policy = target.scale_to_track_metric(
            "InvocationsPerInstance",
            target_value=settings.target_invocations_per_instance,
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            scale_in_cooldown=settings.scale_in_cooldown,
            scale_out_cooldown=settings.scale_out_cooldown,
        )
        if scale_down is not None:
            target.scale_on_schedule(
                "ScaleDown",
                schedule=scale_down.scale_down,
                min_capacity=scale_down.capacity,
                max_capacity=scale_down.capacity,
                time_zone=scale_down.time_zone,
            )
            target.scale_on_schedule(
                "ScaleUp",
                schedule=scale_down.scale_up,
                min_capacity=settings.min_capacity,
                max_capacity=settings.max_capacity,
                time_zone=scale_down.time_zone,
            )
        self.scalable_target = target

    def _dashboard(self) -> cw.Dashboard:
        realtime = self.kind is EndpointKind.REALTIME
        capacity_left = [self.metric_invocations_per_instance()] if realtime else [self.metric_model_setup_time()]
        capacity_right = [self.metric_memory_utilization()]
        if realtime:
            capacity_right.insert(0, self.metric_cpu_utilization())
        widgets: list[list[cw.IWidget]] = [
            [
                cw.GraphWidget(title="Invocations", left=[self.metric_invocations()], width=6),
                cw.GraphWidget(
                    title="Model latency (microseconds)",
                    left=[
                        self.metric_model_latency(statistic="p50", label="p50"),
                        self.metric_model_latency(label="p90"),
                        self.metric_model_latency(statistic="p99", label="p99"),
                        self.metric_overhead_latency(label="overhead p90"),
                    ],
                    width=6,
                ),
                cw.GraphWidget(title="Errors", left=[self.metric_4xx(), self.metric_5xx()], width=6),
                cw.GraphWidget(
                    title="Capacity" if realtime else "Cold starts and memory",
                    left=capacity_left,
                    right=capacity_right,
                    width=6,
                ),
            ]
        ]
        alarms = self.alarms
        if alarms:
            widgets.append([cw.AlarmStatusWidget(title="Alarms", alarms=alarms, width=24)])
        name = self.endpoint_name if not Token.is_unresolved(self.endpoint_name) else None
        return cw.Dashboard(self, "Dashboard", dashboard_name=name, widgets=widgets)

    def _grant_role(
        self,
        data_store: VersionedDataStore,
        package_arn: str | None,
        image_uri: str | None,
        capture: bool,
        vpc_config: sagemaker.CfnModel.VpcConfigProperty | None,
    ) -> None:
        stack = Stack.of(self)
        # Model artifacts (also those a model package points to) live under artifacts/.
        data_store.grant_read(self.role, prefix=data_store.artifacts_prefix)
        if capture:
            data_store.grant_write(self.role, prefix=f"{data_store.capture_prefix}{self.endpoint_name}/")
        if package_arn is not None:
            iam.Grant.add_to_principal(
                grantee=self.role, actions=["sagemaker:DescribeModelPackage"], resource_arns=[package_arn]
            )

        star_reasons: list[str] = [
            "cloudwatch:PutMetricData supports no resource-level permissions; it is limited to the SageMaker "
            "namespaces by condition"
        ]
        if image_uri is not None:
            repository = ecr_repository_arn(image_uri, stack)
            iam.Grant.add_to_principal(grantee=self.role, actions=list(ECR_PULL_ACTIONS), resource_arns=[repository])
            iam.Grant.add_to_principal(grantee=self.role, actions=["ecr:GetAuthorizationToken"], resource_arns=["*"])
            star_reasons.append("ecr:GetAuthorizationToken supports no resource-level permissions")
            if "*" in repository:
                acknowledge(
                    self.role,
                    "image_uri is a deploy-time value, so its repository is unknown at synth; pulls are limited "
                    "to the repositories of this account and region",
                    *iam5_findings(resources=(nag_resource(self, repository),)),
                )
        iam.Grant.add_to_principal(
            grantee=self.role,
            actions=["cloudwatch:PutMetricData"],
            resource_arns=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
        )
        log_group = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"/aws/sagemaker/Endpoints/{self.endpoint_name}",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        iam.Grant.add_to_principal(
            grantee=self.role, actions=list(LOG_ACTIONS), resource_arns=[log_group, f"{log_group}:*"]
        )
        if vpc_config is not None:
            # The model's containers attach to these subnets when the endpoint starts.
            grant_sagemaker_vpc_access(
                self.role, subnet_ids=vpc_config.subnets, security_group_ids=vpc_config.security_group_ids
            )

        acknowledge(self.role, "; ".join(star_reasons), *iam5_findings(resources=("*",)))
        acknowledge(
            self.role,
            "log streams are created by SageMaker with generated names under this endpoint's own log group",
            *iam5_findings(resources=(nag_resource(self, f"{log_group}:*"),)),
        )

    # ------------------------------------------------------------------ grants

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let a principal call ``InvokeEndpoint`` on this endpoint only."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["sagemaker:InvokeEndpoint"], resource_arns=[self.endpoint_arn]
        )

    # ------------------------------------------------------------------ metrics and alarms

    @property
    def alarms(self) -> list[cw.Alarm]:
        """Every alarm this construct created: rollback alarms, then opt-in latency and 5XX alarms."""
        return [*self.rollback_alarms, *self.latency_alarms.values(), *self.error_alarms.values()]

    def metric(self, metric_name: str, *, namespace: str = SAGEMAKER_NAMESPACE, **options: Any) -> cw.Metric:
        """A metric of this endpoint's variant (dimensions ``EndpointName`` and ``VariantName``).

        Args:
            metric_name: e.g. ``Invocations``.
            namespace: Default: - ``AWS/SageMaker``.
            options: ``cw.MetricOptions`` keywords. Default: - Sum over 5 minutes.
        """
        props: dict[str, Any] = {"statistic": "Sum", "period": Duration.minutes(5), **options}
        return cw.Metric(namespace=namespace, metric_name=metric_name, dimensions_map=dict(self._dimensions), **props)

    def metric_invocations(self, **options: Any) -> cw.Metric:
        """Requests sent to the model, summed over 5 minutes."""
        return self.metric("Invocations", **options)

    def metric_invocations_per_instance(self, **options: Any) -> cw.Metric:
        """Invocations per instance (what autoscaling tracks), summed over 5 minutes; realtime only."""
        return self.metric("InvocationsPerInstance", **options)

    def metric_model_latency(self, **options: Any) -> cw.Metric:
        """p90 ``ModelLatency`` (microseconds) over 5 minutes: time the container took to answer."""
        return self.metric("ModelLatency", **{"statistic": "p90", **options})

    def metric_overhead_latency(self, **options: Any) -> cw.Metric:
        """p90 ``OverheadLatency`` (microseconds) over 5 minutes: time SageMaker added."""
        return self.metric("OverheadLatency", **{"statistic": "p90", **options})

    def metric_5xx(self, **options: Any) -> cw.Metric:
        """``Invocation5XXErrors`` (the model failed), summed over 5 minutes."""
        return self.metric("Invocation5XXErrors", **options)

    def metric_4xx(self, **options: Any) -> cw.Metric:
        """``Invocation4XXErrors`` (bad requests), summed over 5 minutes."""
        return self.metric("Invocation4XXErrors", **options)

    def metric_model_setup_time(self, **options: Any) -> cw.Metric:
        """p90 ``ModelSetupTime`` (microseconds) over 5 minutes: serverless cold starts."""
        return self.metric("ModelSetupTime", **{"statistic": "p90", **options})

    def metric_cpu_utilization(self, **options: Any) -> cw.Metric:
        """Average ``CPUUtilization`` (percent, summed over cores) over 5 minutes; realtime only."""
        return self.metric(
            "CPUUtilization", namespace=ENDPOINT_INSTANCE_NAMESPACE, **{"statistic": "Average", **options}
        )

    def metric_memory_utilization(self, **options: Any) -> cw.Metric:
        """Average ``MemoryUtilization`` (percent) over 5 minutes."""
        return self.metric(
            "MemoryUtilization", namespace=ENDPOINT_INSTANCE_NAMESPACE, **{"statistic": "Average", **options}
        )


def _microseconds(duration: Duration) -> float:
    """A duration as a ``ModelLatency`` threshold (the metric is in microseconds)."""
    return duration.to_milliseconds(integral=False) * 1000
