"""The settings types of :class:`ModelEndpoint`: capacity, data capture, rollout, scale-down and alarm thresholds.

Each is a frozen dataclass that checks its own values (``problems()``) and names every invalid
one with the fix; CDK tokens are not checked. How the settings combine with the endpoint's
other arguments is checked in :mod:`cdk_mlops.constructs.model_endpoint.validation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from aws_cdk import Duration, TimeZone, Token
from aws_cdk import aws_applicationautoscaling as appscaling

from cdk_mlops.constructs.common import ENDPOINT_INSTANCE_FAMILIES, instance_type_problem

__all__ = [
    "AsyncSettings",
    "DataCaptureSettings",
    "ErrorCountThreshold",
    "LatencyThreshold",
    "RealtimeSettings",
    "RolloutSettings",
    "ScaleDownSchedule",
    "ServerlessSettings",
    "TrafficShift",
]

# Serverless memory sizes SageMaker accepts (MemorySizeInMB).
_SERVERLESS_MEMORY = (1024, 2048, 3072, 4096, 5120, 6144)
_MAX_SERVERLESS_CONCURRENCY = 200
# AsyncInferenceClientConfig.MaxConcurrentInvocationsPerInstance (SageMaker API).
_MAX_ASYNC_CONCURRENCY = 1000
# DeploymentConfig limits (SageMaker API TrafficRoutingConfig / BlueGreenUpdatePolicy).
_MAX_WAIT_SECONDS = 3600
_MIN_EXECUTION_TIMEOUT, _MAX_EXECUTION_TIMEOUT = 600, 28800

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
        found = _instance_problem("realtime.instance_type", self.instance_type, "kind=EndpointKind.SERVERLESS")
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


def _instance_problem(where: str, instance_type: str, alternative: str) -> list[str]:
    """Why an autoscaled variant cannot run on ``instance_type``, or nothing (tokens pass)."""
    problem = instance_type_problem(where, instance_type, ENDPOINT_INSTANCE_FAMILIES, "ml.m5.large")
    if problem is not None:
        return [problem]
    if not Token.is_unresolved(instance_type) and instance_type.startswith("ml.t"):
        return [
            f"{where} {instance_type!r} is burstable, and SageMaker cannot autoscale burstable "
            f"instances; use e.g. 'ml.m5.large' or 'ml.c5.large', or {alternative}"
        ]
    return []


@dataclass(frozen=True, kw_only=True)
class AsyncSettings:
    """Queued requests answered into the data store (``EndpointKind.ASYNC``).

    Clients put a request's payload under ``async-inference/<endpoint name>/input/`` of the data
    store and call ``InvokeEndpointAsync`` with its location; SageMaker queues the request,
    writes the answer under ``.../output/`` (or the error under ``.../failures/``), encrypted
    with the store's key, and publishes to the endpoint's success or error topic. Requests may
    carry up to 1 GB and run up to an hour.

    The variant scales on ``ApproximateBacklogSizePerInstance``. With ``min_capacity=0`` (the
    default) it scales in to no instance when the queue is empty, and a step policy on
    ``HasBacklogWithoutCapacity`` starts one instance when a request arrives (a cold start of
    some minutes; the request waits in the queue meanwhile).

    Attributes:
        instance_type: The ML instance type; burstable ``ml.t*`` types cannot autoscale.
            Default: - ``ml.m5.large``.
        initial_instance_count: Instances when the endpoint is created (at least 1, within
            ``[min_capacity, max_capacity]``). Default: - 1.
        min_capacity: Fewest instances autoscaling keeps; 0 scales to zero when idle.
            Default: - 0.
        max_capacity: Most instances autoscaling starts. Default: - 2.
        target_backlog_per_instance: Queued requests per instance that autoscaling tracks.
            Default: - 5.
        max_concurrent_invocations_per_instance: Requests SageMaker sends one instance at a
            time, 1 to 1000. Default: - SageMaker chooses.
        scale_in_cooldown: Wait after a scale-in before the next. Default: - 10 minutes.
        scale_out_cooldown: Wait after a scale-out before the next. Default: - 5 minutes.
    """

    instance_type: str = "ml.m5.large"
    initial_instance_count: int = 1
    min_capacity: int = 0
    max_capacity: int = 2
    target_backlog_per_instance: int = 5
    max_concurrent_invocations_per_instance: int | None = None
    scale_in_cooldown: Duration = field(default_factory=lambda: Duration.minutes(10))
    scale_out_cooldown: Duration = field(default_factory=lambda: Duration.minutes(5))

    @property
    def scales_to_zero(self) -> bool:
        """True when autoscaling may stop every instance (``min_capacity`` is 0)."""
        return not Token.is_unresolved(self.min_capacity) and self.min_capacity == 0

    def problems(self) -> list[str]:
        """Every invalid setting, each with its value and the fix; tokens are not checked."""
        found = _instance_problem("async_inference.instance_type", self.instance_type, "kind=EndpointKind.SERVERLESS")
        counts = [
            ("async_inference.initial_instance_count", self.initial_instance_count, 1),
            ("async_inference.min_capacity", self.min_capacity, 0),
            ("async_inference.max_capacity", self.max_capacity, 1),
        ]
        for name, value, low in counts:
            found += _whole_problem(name, value, low)
        low, high, initial = self.min_capacity, self.max_capacity, self.initial_instance_count
        if not found and _known(low, high) and low > high:
            found.append(
                f"async_inference.min_capacity ({low}) must not exceed async_inference.max_capacity ({high}); "
                "raise max_capacity or lower min_capacity"
            )
        elif not found and _known(low, high, initial) and not low <= initial <= high:
            found.append(
                f"async_inference.initial_instance_count ({initial}) must be within [min_capacity, max_capacity] "
                f"= [{low}, {high}]; autoscaling would move it there right after deployment"
            )
        found += _whole_problem(
            "async_inference.target_backlog_per_instance",
            self.target_backlog_per_instance,
            1,
            fix="use about the requests one instance finishes in a few minutes",
        )
        concurrency = self.max_concurrent_invocations_per_instance
        if concurrency is not None:
            found += _whole_problem(
                "async_inference.max_concurrent_invocations_per_instance", concurrency, 1, _MAX_ASYNC_CONCURRENCY
            )
        for name, cooldown in (
            ("async_inference.scale_in_cooldown", self.scale_in_cooldown),
            ("async_inference.scale_out_cooldown", self.scale_out_cooldown),
        ):
            found += _seconds_problem(name, cooldown, 0, 86400)
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
