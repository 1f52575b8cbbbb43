"""ModelMonitor: scheduled Model Monitor jobs on an endpoint's captured data, with alarms that feed retraining."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from aws_cdk import Annotations, ArnFormat, Aws, CfnResource, Duration, Fn, RemovalPolicy, Stack, Token
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct, IConstruct

from cdk_mlops.constructs.common import (
    ECR_PULL_ACTIONS,
    GUARDRAILS,
    INSTANCE_TYPE,
    LOG_ACTIONS,
    SAGEMAKER_NAME,
    acknowledge,
    dead_letter_queue,
    depend_on_role_policy,
    ecr_repository_arn,
    grant_sagemaker_vpc_access,
    iam5_findings,
    nag_resource,
    sagemaker_image_uri,
)
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.model_endpoint import ModelEndpoint
from cdk_mlops.datasets import dataset_name_problems
from cdk_mlops.errors import ConfigurationError

# The violation event is the retrain trigger's input; its vocabulary lives with the handler and is
# plain constants (no boto3), so the construct shares it rather than repeating the strings.
from cdk_mlops.lambdas.retrain_trigger import MONITOR_SOURCE, MONITOR_VIOLATION

__all__ = [
    "METRICS_NAMESPACE",
    "Baselines",
    "DataQualitySettings",
    "ModelBiasSettings",
    "ModelExplainabilitySettings",
    "ModelMonitor",
    "ModelQualitySettings",
    "MonitorProblemType",
    "MonitorSchedule",
    "MonitoringType",
    "feature_drift_alarm_name",
    "model_quality_alarm_name",
    "schedule_name",
]

#: Where the construct counts the violations it turned into retrain events (metric ``Violations``,
#: dimension ``MonitoringSchedule``).
METRICS_NAMESPACE: Final = "CdkMlops/ModelMonitor"
#: The EventBridge detail type of SageMaker processing jobs, which monitoring executions are.
PROCESSING_JOB_STATE_CHANGE: Final = "SageMaker Processing Job State Change"
#: How a monitoring execution that found violations ends its exit message.
VIOLATIONS_EXIT_PREFIX: Final = "CompletedWithViolations"
#: Statuses of a monitoring execution that did not complete.
FAILED_STATUSES: Final = ("Failed", "Stopped")

_INPUT_PATH = "/opt/ml/processing/input/endpoint"
_OUTPUT_PATH = "/opt/ml/processing/output"
_PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
_S3_OBJECT_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+[^/]$")
_KEY_PREFIX = re.compile(r"^[^/*].*/$")
# Negative ISO-8601 durations, e.g. -PT1H, -P1D, -P1DT12H (Model Monitor's time offsets).
_OFFSET = re.compile(r"^-P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_ALARM_KEY = re.compile(r"^[^/\s](?:[^/]{0,198}[^/\s])?$")
# What Model Monitor accepts (SageMaker ScheduleConfig): hourly, daily at an hour, or every N hours.
_SUPPORTED_CRON = re.compile(r"^cron\(0 (?:\*|(\d{1,2})(?:/(\d{1,2}))?) \? \* \* \*\)$")
_ANY_CRON = re.compile(r"^cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")

_VOLUME_KEY_ACTIONS = (
    "kms:CreateGrant",
    "kms:DescribeKey",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
)
# SageMaker Clarify computes SHAP values against a temporary shadow endpoint of the served model,
# named with the prefix below unless the analysis configuration chooses another.
_CLARIFY_SHADOW_PREFIX = "sm-clarify-"
_CLARIFY_SHADOW_ACTIONS = (
    "sagemaker:CreateEndpointConfig",
    "sagemaker:DescribeEndpointConfig",
    "sagemaker:DeleteEndpointConfig",
    "sagemaker:CreateEndpoint",
    "sagemaker:DescribeEndpoint",
    "sagemaker:DeleteEndpoint",
    "sagemaker:InvokeEndpoint",
    "sagemaker:AddTags",
)


# --------------------------------------------------------------------------------- vocabulary


class MonitoringType(StrEnum):
    """What a monitoring schedule checks; the values are SageMaker's ``MonitoringType``."""

    DATA_QUALITY = "DataQuality"
    """Captured requests against the training data's statistics and constraints."""
    MODEL_QUALITY = "ModelQuality"
    """Predictions against ground-truth labels (accuracy, AUC, RMSE, ...)."""
    MODEL_BIAS = "ModelBias"
    """Post-training bias metrics (SageMaker Clarify) against a bias baseline."""
    MODEL_EXPLAINABILITY = "ModelExplainability"
    """Feature attributions (SageMaker Clarify, SHAP) against an explainability baseline."""

    @property
    def slug(self) -> str:
        """The kebab-case form used in names and S3 prefixes, e.g. ``data-quality``."""
        return re.sub(r"(?<!^)(?=[A-Z])", "-", self.value).lower()

    @property
    def namespace(self) -> str:
        """The CloudWatch namespace Model Monitor publishes this type's metrics to (real-time endpoints)."""
        return _NAMESPACES[self]


_NAMESPACES: Final = {
    MonitoringType.DATA_QUALITY: "aws/sagemaker/Endpoints/data-metrics",
    MonitoringType.MODEL_QUALITY: "aws/sagemaker/Endpoints/model-metrics",
    MonitoringType.MODEL_BIAS: "aws/sagemaker/Endpoints/bias-metrics",
    MonitoringType.MODEL_EXPLAINABILITY: "aws/sagemaker/Endpoints/explainability-metrics",
}


class MonitorProblemType(StrEnum):
    """The model's task, which decides the model-quality metrics; SageMaker's ``MonitorProblemType`` values."""

    BINARY_CLASSIFICATION = "BinaryClassification"
    MULTICLASS_CLASSIFICATION = "MulticlassClassification"
    REGRESSION = "Regression"


# Model-quality metrics published to CloudWatch per problem type, and whether higher is better
# (the alarm then fires below the threshold; otherwise above it).
_QUALITY_METRICS: Final[dict[MonitorProblemType, dict[str, bool]]] = {
    MonitorProblemType.BINARY_CLASSIFICATION: {
        "accuracy": True,
        "precision": True,
        "recall": True,
        "f0_5": True,
        "f1": True,
        "f2": True,
        "auc": True,
        "true_positive_rate": True,
        "true_negative_rate": True,
        "false_positive_rate": False,
        "false_negative_rate": False,
    },
    MonitorProblemType.MULTICLASS_CLASSIFICATION: {
        "accuracy": True,
        "weighted_precision": True,
        "weighted_recall": True,
        "weighted_f0_5": True,
        "weighted_f1": True,
        "weighted_f2": True,
    },
    MonitorProblemType.REGRESSION: {"mae": False, "mse": False, "rmse": False, "r2": True},
}


def schedule_name(prefix: str, monitoring_type: MonitoringType) -> str:
    """The monitoring schedule's name: ``<prefix>-<type slug>``, e.g. ``churn-data-quality``.

    Names are fixed so that metrics (dimension ``MonitoringSchedule``), alarms
    and event patterns can name the schedule at synth, also from another stack.
    """
    return f"{prefix}-{monitoring_type.slug}"


def feature_drift_alarm_name(prefix: str, feature: str) -> str:
    """The name of the drift alarm of one feature: ``<prefix>-data-quality-drift-<feature>``.

    A stack that is deployed before the monitor's (e.g. the one holding the
    retrain trigger) can build the alarm's ARN from it without a cross-stack
    reference: ``cw.Alarm.from_alarm_name(scope, id, feature_drift_alarm_name(...))``.
    """
    return f"{schedule_name(prefix, MonitoringType.DATA_QUALITY)}-drift-{feature}"


def model_quality_alarm_name(prefix: str, metric_name: str) -> str:
    """The name of the alarm on one model-quality metric: ``<prefix>-model-quality-<metric>``."""
    return f"{schedule_name(prefix, MonitoringType.MODEL_QUALITY)}-{metric_name}"


# --------------------------------------------------------------------------------- schedule


@dataclass(frozen=True)
class MonitorSchedule:
    """When a monitoring schedule runs: a cron expression Model Monitor accepts (UTC).

    Model Monitor runs at most hourly. It accepts ``cron(0 * ? * * *)``
    (hourly), ``cron(0 H ? * * *)`` (daily at hour H) and ``cron(0 H/N ? * * *)``
    (every N hours from hour H); an execution starts up to 20 minutes after the
    scheduled time and analyses the data captured since the previous one.

    Example::

        MonitorSchedule.hourly()
        MonitorSchedule.daily(hour=3)
        MonitorSchedule.every(hours=6)
        MonitorSchedule("cron(0 * ? * * *)")    # from configuration; validated by the construct

    Attributes:
        expression: The ``ScheduleExpression``.
    """

    expression: str

    @classmethod
    def hourly(cls) -> MonitorSchedule:
        """Every hour, on the hour: the most often Model Monitor runs."""
        return cls("cron(0 * ? * * *)")

    @classmethod
    def daily(cls, *, hour: int = 0) -> MonitorSchedule:
        """Once a day at ``hour`` (0-23, UTC)."""
        return cls(f"cron(0 {hour} ? * * *)")

    @classmethod
    def every(cls, *, hours: int, starting_hour: int = 0) -> MonitorSchedule:
        """Every ``hours`` hours (1-24), the first at ``starting_hour`` (0-23, UTC)."""
        return cls(f"cron(0 {starting_hour}/{hours} ? * * *)")

    @property
    def interval(self) -> Duration | None:
        """Time between two executions, or ``None`` when the expression is a token or not supported."""
        hours = self._interval_hours()
        return None if hours is None else Duration.hours(hours)

    def _interval_hours(self) -> int | None:
        if Token.is_unresolved(self.expression):
            return None
        match = _SUPPORTED_CRON.match(self.expression)
        if match is None:
            return None
        hour, step = match.groups()
        if hour is None:
            return 1
        if step is None:
            return 24
        return int(step)

    def problems(self, where: str) -> list[str]:
        """Why the expression cannot schedule Model Monitor, with the fix; tokens are not checked."""
        text = self.expression
        if Token.is_unresolved(text):
            return []
        fix = (
            "use MonitorSchedule.hourly() (cron(0 * ? * * *)), MonitorSchedule.daily(hour=H) "
            "(cron(0 H ? * * *)) or MonitorSchedule.every(hours=N) (cron(0 H/N ? * * *))"
        )
        if text.strip() == "NOW":
            return [f"{where} 'NOW' runs once; a monitor needs a recurring schedule: {fix}"]
        match = _SUPPORTED_CRON.match(text)
        if match is not None:
            hour, step = match.groups()
            found: list[str] = []
            if hour is not None and not 0 <= int(hour) <= 23:
                found.append(f"{where} {text!r}: the hour must be 0-23")
            if step is not None and not 1 <= int(step) <= 24:
                found.append(f"{where} {text!r}: the step must be 1-24 hours")
            return found
        if self._more_often_than_hourly(text):
            return [
                f"{where} {text!r} runs more often than hourly; Model Monitor runs at most once an hour "
                f"(each execution analyses the last hour of captured data): {fix}"
            ]
        return [f"{where} {text!r} is not a schedule Model Monitor accepts: {fix}"]

    @staticmethod
    def _more_often_than_hourly(text: str) -> bool:
        cron = _ANY_CRON.match(text)
        if cron is not None:
            minutes = cron.group(1)
            return not minutes.isdigit()
        rate = _RATE.match(text)
        return rate is not None and rate.group(2).startswith("minute") and int(rate.group(1)) < 60


# --------------------------------------------------------------------------------- baselines


@dataclass(frozen=True, kw_only=True)
class Baselines:
    """The baseline a monitor compares against: S3 object URIs of its JSON files.

    Use :meth:`from_model_package` with the ``DescribeModelPackage`` response
    of the package the endpoint serves, so the monitor checks exactly that
    model's baselines (the training pipeline registers them as the package's
    ``DriftCheckBaselines``); or :meth:`from_uris` / :meth:`from_prefix` for
    files you manage yourself.

    Attributes:
        constraints_uri: ``constraints.json`` (data/model quality, explainability)
            or the post-training bias constraints (bias).
        statistics_uri: ``statistics.json``; required for data quality (the
            per-feature drift metrics compare distributions with it).
        analysis_config_uri: The SageMaker Clarify analysis configuration JSON;
            required for bias and explainability.
        model_package_arn: The model package the baselines were taken from, if any;
            the construct rejects baselines of another package than the one the
            endpoint serves.
    """

    constraints_uri: str
    statistics_uri: str | None = None
    analysis_config_uri: str | None = None
    model_package_arn: str | None = None

    @classmethod
    def from_uris(
        cls, *, constraints: str, statistics: str | None = None, analysis_config: str | None = None
    ) -> Baselines:
        """Baselines at explicit ``s3://bucket/key`` URIs (strings or tokens)."""
        return cls(constraints_uri=constraints, statistics_uri=statistics, analysis_config_uri=analysis_config)

    @classmethod
    def from_prefix(cls, prefix_uri: str) -> Baselines:
        """``statistics.json`` and ``constraints.json`` under one S3 prefix (what a baselining job writes)."""
        base = prefix_uri if prefix_uri.endswith("/") else f"{prefix_uri}/"
        return cls(constraints_uri=f"{base}constraints.json", statistics_uri=f"{base}statistics.json")

    @classmethod
    def from_model_package(
        cls, description: Mapping[str, Any], monitoring_type: MonitoringType = MonitoringType.DATA_QUALITY
    ) -> Baselines:
        """The drift-check baselines a model package version carries, for one monitoring type.

        Pure: pass the ``DescribeModelPackage`` response that the deployment
        step fetched (the one for the ARN the endpoint serves); nothing is
        looked up at synth.

        ``DriftCheckBaselines`` keys read: ``ModelDataQuality.{Statistics,Constraints}``
        (data quality), ``ModelQuality.Constraints`` (model quality),
        ``Bias.{PostTrainingConstraints,ConfigFile}`` (bias) and
        ``Explainability.{Constraints,ConfigFile}`` (explainability).

        Raises:
            ConfigurationError: naming the package and the missing baseline.
        """
        arn = description.get("ModelPackageArn")
        arn = arn if isinstance(arn, str) and arn else None
        where = f"model package {arn}" if arn else "model package description"
        drift = description.get("DriftCheckBaselines") or {}
        key, constraints_key, statistics_key, config_key = _PACKAGE_BASELINES[monitoring_type]
        section = drift.get(key) if isinstance(drift, Mapping) else None
        if not isinstance(section, Mapping):
            raise ConfigurationError(
                where,
                f"has no DriftCheckBaselines.{key}, so it cannot baseline {monitoring_type.value} monitoring; "
                f"register the package with it, or pass Baselines.from_uris(...)",
            )

        def uri(name: str | None) -> str | None:
            if name is None:
                return None
            source = section.get(name)
            value = source.get("S3Uri") if isinstance(source, Mapping) else None
            return value if isinstance(value, str) and value else None

        missing = [n for n in (constraints_key, statistics_key, config_key) if n is not None and uri(n) is None]
        if missing:
            raise ConfigurationError(
                where,
                f"DriftCheckBaselines.{key} has no {' or '.join(f'{m}.S3Uri' for m in missing)}; "
                f"{monitoring_type.value} monitoring needs it",
            )
        constraints = uri(constraints_key)
        assert constraints is not None
        return cls(
            constraints_uri=constraints,
            statistics_uri=uri(statistics_key),
            analysis_config_uri=uri(config_key),
            model_package_arn=arn,
        )

    def problems(self, where: str, monitoring_type: MonitoringType) -> list[str]:
        """Every missing or malformed URI for ``monitoring_type``; tokens are not checked."""
        found = _object_uri_problems(f"{where}.constraints_uri", self.constraints_uri)
        if monitoring_type is MonitoringType.DATA_QUALITY:
            if self.statistics_uri is None:
                found.append(
                    f"{where}.statistics_uri is required for data quality (feature drift compares distributions "
                    "with statistics.json); use Baselines.from_prefix(...) or from_model_package(...)"
                )
            else:
                found += _object_uri_problems(f"{where}.statistics_uri", self.statistics_uri)
        clarify = monitoring_type in (MonitoringType.MODEL_BIAS, MonitoringType.MODEL_EXPLAINABILITY)
        if clarify:
            if self.analysis_config_uri is None:
                found.append(
                    f"{where}.analysis_config_uri is required for {monitoring_type.value}: the S3 URI of the "
                    "SageMaker Clarify analysis configuration JSON (Baselines.from_uris(..., analysis_config=...))"
                )
            else:
                found += _object_uri_problems(f"{where}.analysis_config_uri", self.analysis_config_uri)
        elif self.analysis_config_uri is not None:
            found.append(f"{where}.analysis_config_uri applies to bias and explainability only; remove it")
        return found

    def uris(self) -> list[str]:
        """Every S3 URI the monitoring job reads."""
        return [u for u in (self.constraints_uri, self.statistics_uri, self.analysis_config_uri) if u is not None]


# DriftCheckBaselines section, constraints, statistics and config file keys per monitoring type.
_PACKAGE_BASELINES: Final[dict[MonitoringType, tuple[str, str, str | None, str | None]]] = {
    MonitoringType.DATA_QUALITY: ("ModelDataQuality", "Constraints", "Statistics", None),
    MonitoringType.MODEL_QUALITY: ("ModelQuality", "Constraints", None, None),
    MonitoringType.MODEL_BIAS: ("Bias", "PostTrainingConstraints", None, "ConfigFile"),
    MonitoringType.MODEL_EXPLAINABILITY: ("Explainability", "Constraints", None, "ConfigFile"),
}


def _object_uri_problems(name: str, uri: str) -> list[str]:
    if Token.is_unresolved(uri) or _S3_OBJECT_URI.match(uri):
        return []
    return [f"{name} {uri!r} is not an S3 object URI; use s3://<bucket>/<key>.json"]


# --------------------------------------------------------------------------------- settings


@dataclass(frozen=True, kw_only=True)
class _JobSettings:
    """What every monitoring type shares: its baseline, schedule and compute."""

    baselines: Baselines
    schedule: MonitorSchedule = field(default_factory=MonitorSchedule.hourly)
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    volume_size_gb: int = 20
    max_runtime: Duration = field(default_factory=lambda: Duration.hours(1))

    def _common_problems(self, where: str, monitoring_type: MonitoringType) -> list[str]:
        found = self.baselines.problems(f"{where}.baselines", monitoring_type)
        found += self.schedule.problems(f"{where}.schedule")
        itype = self.instance_type
        if not Token.is_unresolved(itype) and not INSTANCE_TYPE.match(itype):
            found.append(f"{where}.instance_type {itype!r} is not an ML instance type; use e.g. 'ml.m5.xlarge'")
        found += _whole_problem(f"{where}.instance_count", self.instance_count, 1, 100)
        found += _whole_problem(f"{where}.volume_size_gb", self.volume_size_gb, 1, 16384)
        if not self.max_runtime.is_unresolved():
            seconds = self.max_runtime.to_seconds(integral=False)
            interval = self.schedule.interval
            limit = 86400 if interval is None else min(86400, int(interval.to_seconds()))
            if not (1 <= seconds <= limit and seconds == int(seconds)):
                found.append(
                    f"{where}.max_runtime ({seconds:g} s) must be a whole number of seconds from 1 to {limit} "
                    "(an execution must end before the schedule starts the next)"
                )
        return found


def _whole_problem(name: str, value: object, low: int, high: int) -> list[str]:
    if Token.is_unresolved(value):
        return []
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return []
    return [f"{name} ({value!r}) must be a whole number from {low} to {high}"]


def _offset_seconds(offset: str) -> int | None:
    match = _OFFSET.match(offset)
    if match is None or offset in ("-P", "-PT"):
        return None
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return -(days * 86400 + hours * 3600 + minutes * 60 + seconds)


def _window_problems(where: str, start: str | None, end: str | None) -> list[str]:
    found: list[str] = []
    parsed: dict[str, int | None] = {}
    for name, value in (("start_time_offset", start), ("end_time_offset", end)):
        if value is None or Token.is_unresolved(value):
            continue
        parsed[name] = _offset_seconds(value)
        if parsed[name] is None:
            found.append(f"{where}.{name} {value!r} is not a negative ISO-8601 duration; use e.g. '-PT2H' or '-P1D'")
    if (start is None) != (end is None):
        found.append(f"{where}: give both start_time_offset and end_time_offset, or neither")
    low, high = parsed.get("start_time_offset"), parsed.get("end_time_offset")
    if low is not None and high is not None and low >= high:
        found.append(
            f"{where}.start_time_offset ({start}) must be earlier than end_time_offset ({end}), e.g. '-PT2H' and "
            "'-PT1H'"
        )
    return found


def _attribute_problems(
    where: str,
    *,
    inference: str | None,
    probability: str | None,
    threshold: float | None,
    problem_type: MonitorProblemType | None,
) -> list[str]:
    found: list[str] = []
    if threshold is not None:
        if probability is None:
            found.append(f"{where}.probability_threshold needs probability_attribute; set it or remove the threshold")
        if not Token.is_unresolved(threshold) and not 0 < threshold < 1:
            found.append(f"{where}.probability_threshold ({threshold!r}) must be between 0 and 1 (exclusive)")
    if problem_type is MonitorProblemType.REGRESSION and (probability is not None or threshold is not None):
        found.append(
            f"{where}: probability_attribute and probability_threshold apply to classification, not Regression; "
            "set inference_attribute"
        )
    if (
        problem_type is MonitorProblemType.BINARY_CLASSIFICATION
        and inference is None
        and (probability is None or threshold is None)
    ):
        found.append(
            f"{where}: BinaryClassification needs inference_attribute (the predicted label) or probability_attribute "
            "with probability_threshold (e.g. probability_attribute='0', probability_threshold=0.5 for a model "
            "that returns one probability)"
        )
    if (
        problem_type in (MonitorProblemType.MULTICLASS_CLASSIFICATION, MonitorProblemType.REGRESSION)
        and inference is None
    ):
        found.append(
            f"{where}: {problem_type.value} needs inference_attribute, the index or JSON path of the prediction "
            "in the captured response (e.g. '0' for a CSV response of one value)"
        )
    return found


def _ground_truth_problems(name: str, prefix: str | None, monitoring_type: MonitoringType) -> list[str]:
    if prefix is None:
        return [
            f"{name} is required: {monitoring_type.value} monitoring compares predictions with ground-truth labels; "
            "give the data store key prefix they are written to, e.g. 'ground-truth/churn/'"
        ]
    return _prefix_problems(name, prefix)


def _prefix_problems(name: str, prefix: str) -> list[str]:
    if Token.is_unresolved(prefix) or (_KEY_PREFIX.match(prefix) and "*" not in prefix):
        return []
    return [f"{name} {prefix!r} must be a key prefix in the data store ending in '/', e.g. 'ground-truth/churn/'"]


def _alarm_key_problems(name: str, key: str) -> list[str]:
    if _ALARM_KEY.match(key):
        return []
    return [f"{name} key {key!r} must be 1-200 characters without '/' and without leading or trailing spaces"]


@dataclass(frozen=True, kw_only=True)
class DataQualitySettings(_JobSettings):
    """Data-quality monitoring: captured requests against the training data's baseline.

    Attributes:
        baselines: ``statistics.json`` and ``constraints.json`` (required).
        schedule: Default: - hourly.
        instance_type: Default: - ``ml.m5.xlarge``.
        instance_count: Default: - 1.
        volume_size_gb: Default: - 20.
        max_runtime: Each execution's time limit, at most the schedule's
            interval. Default: - 1 hour.
        drift_thresholds: Opt-in alarms: feature name → the highest acceptable
            ``feature_baseline_drift_<feature>`` (a distance from 0 to 1).
            Default: - no drift alarm.
    """

    drift_thresholds: Mapping[str, float] = field(default_factory=dict)

    def problems(self, where: str = "data_quality") -> list[str]:
        """Every invalid setting, each with its value and the fix; tokens are not checked."""
        found = self._common_problems(where, MonitoringType.DATA_QUALITY)
        for feature, threshold in self.drift_thresholds.items():
            found += _alarm_key_problems(f"{where}.drift_thresholds", feature)
            if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold < 1:
                found.append(
                    f"{where}.drift_thresholds[{feature!r}] ({threshold!r}) must be a distance between 0 and 1 "
                    "(exclusive), e.g. 0.1"
                )
        return found


@dataclass(frozen=True, kw_only=True)
class ModelQualitySettings(_JobSettings):
    """Model-quality monitoring: predictions merged with ground-truth labels.

    Ground truth is JSON Lines under ``ground_truth_prefix`` of the data store,
    one record per labelled inference (``groundTruthData`` and
    ``eventMetadata.eventId`` = the capture's ``inferenceId`` or event id),
    in ``<prefix>/yyyy/mm/dd/hh/`` folders as Model Monitor expects.

    Attributes:
        baselines: The model-quality ``constraints.json`` (required).
        problem_type: Decides the metrics (required).
        ground_truth_prefix: Key prefix of the labels in the data store, ending
            in ``/``. Required; a monitor without it is rejected.
        inference_attribute: Index (CSV) or JSON path of the predicted label or
            value in the captured response. Default: - none; required for
            regression and multiclass.
        probability_attribute: Index or JSON path of the probability
            (classification). Default: - none.
        probability_threshold: Probability above which the label is positive
            (binary). Default: - none.
        start_time_offset: Start of the analysed window, relative to the
            execution (e.g. ``-PT2H``), so that labels have time to arrive.
            Default: - SageMaker's window.
        end_time_offset: End of the window (e.g. ``-PT1H``). Default: - SageMaker's window.
        quality_thresholds: Opt-in alarms: metric → threshold. A metric where
            higher is better (``accuracy``, ``auc``, ``r2``, ...) alarms below
            the threshold, one where lower is better (``rmse``,
            ``false_positive_rate``, ...) above it. Default: - no alarm.
        schedule: Default: - hourly.
        instance_type: Default: - ``ml.m5.xlarge``.
        instance_count: Default: - 1.
        volume_size_gb: Default: - 20.
        max_runtime: Default: - 1 hour.
    """

    problem_type: MonitorProblemType
    ground_truth_prefix: str | None = None
    inference_attribute: str | None = None
    probability_attribute: str | None = None
    probability_threshold: float | None = None
    start_time_offset: str | None = None
    end_time_offset: str | None = None
    quality_thresholds: Mapping[str, float] = field(default_factory=dict)

    def problems(self, where: str = "model_quality") -> list[str]:
        """Every invalid setting, each with its value and the fix; tokens are not checked."""
        found = self._common_problems(where, MonitoringType.MODEL_QUALITY)
        found += _ground_truth_problems(
            f"{where}.ground_truth_prefix", self.ground_truth_prefix, MonitoringType.MODEL_QUALITY
        )
        found += _attribute_problems(
            where,
            inference=self.inference_attribute,
            probability=self.probability_attribute,
            threshold=self.probability_threshold,
            problem_type=self.problem_type,
        )
        found += _window_problems(where, self.start_time_offset, self.end_time_offset)
        accepted = _QUALITY_METRICS[self.problem_type]
        for metric, threshold in self.quality_thresholds.items():
            if metric not in accepted:
                owners = [p.value for p, names in _QUALITY_METRICS.items() if metric in names]
                belongs = f" is a {' and '.join(owners)} metric and" if owners else ""
                found.append(
                    f"{where}.quality_thresholds: {metric!r}{belongs} is not published for "
                    f"{self.problem_type.value}; use one of {', '.join(sorted(accepted))}"
                )
            if isinstance(threshold, bool) or not isinstance(threshold, int | float):
                found.append(f"{where}.quality_thresholds[{metric!r}] ({threshold!r}) must be a number")
        return found


@dataclass(frozen=True, kw_only=True)
class ModelBiasSettings(_JobSettings):
    """Bias drift monitoring with SageMaker Clarify.

    Attributes:
        baselines: Post-training bias constraints and the Clarify analysis
            configuration (``analysis_config_uri``) (required).
        image_uri: The SageMaker Clarify image. Default: - the region's prebuilt Clarify
            image (``sagemaker-clarify-processing:1.0``, from :mod:`cdk_mlops.image_uris`).
        ground_truth_prefix: Key prefix of the labels in the data store. Required;
            a monitor without it is rejected.
        features_attribute: JSON path of the features in JSON Lines requests.
            Default: - none (CSV).
        inference_attribute: Index or JSON path of the predicted label. Default: - none.
        probability_attribute: Index or JSON path of the probability. Default: - none.
        probability_threshold: Probability above which the label is positive. Default: - none.
        start_time_offset: Default: - SageMaker's window.
        end_time_offset: Default: - SageMaker's window.
        schedule: Default: - hourly.
        instance_type: Default: - ``ml.m5.xlarge``.
        instance_count: Default: - 1.
        volume_size_gb: Default: - 20.
        max_runtime: Default: - 1 hour.
    """

    image_uri: str | None = None
    ground_truth_prefix: str | None = None
    features_attribute: str | None = None
    inference_attribute: str | None = None
    probability_attribute: str | None = None
    probability_threshold: float | None = None
    start_time_offset: str | None = None
    end_time_offset: str | None = None

    def problems(self, where: str = "model_bias") -> list[str]:
        """Every invalid setting, each with its value and the fix; tokens are not checked."""
        found = self._common_problems(where, MonitoringType.MODEL_BIAS)
        found += _image_problems(f"{where}.image_uri", self.image_uri)
        found += _ground_truth_problems(
            f"{where}.ground_truth_prefix", self.ground_truth_prefix, MonitoringType.MODEL_BIAS
        )
        found += _attribute_problems(
            where,
            inference=self.inference_attribute,
            probability=self.probability_attribute,
            threshold=self.probability_threshold,
            problem_type=None,
        )
        return found + _window_problems(where, self.start_time_offset, self.end_time_offset)


@dataclass(frozen=True, kw_only=True)
class ModelExplainabilitySettings(_JobSettings):
    """Feature-attribution drift monitoring with SageMaker Clarify (SHAP).

    Clarify computes attributions against a temporary shadow endpoint of the
    served model, so these jobs cannot run with network isolation (they call
    the SageMaker API); they still run in the endpoint's VPC when it has one.
    The analysis configuration's ``predictor.model_name`` must name the model
    the endpoint serves (``endpoint.model.attr_model_name``), so regenerate it
    with every model version.

    Attributes:
        baselines: Explainability constraints and the Clarify analysis
            configuration (``analysis_config_uri``) (required).
        image_uri: The SageMaker Clarify image. Default: - the region's prebuilt Clarify
            image (``sagemaker-clarify-processing:1.0``, from :mod:`cdk_mlops.image_uris`).
        features_attribute: JSON path of the features in JSON Lines requests. Default: - none (CSV).
        inference_attribute: Index or JSON path of the prediction. Default: - none.
        probability_attribute: Index or JSON path of the probability. Default: - none.
        schedule: Default: - hourly.
        instance_type: Default: - ``ml.m5.xlarge``.
        instance_count: Default: - 1.
        volume_size_gb: Default: - 20.
        max_runtime: Default: - 1 hour.
    """

    image_uri: str | None = None
    features_attribute: str | None = None
    inference_attribute: str | None = None
    probability_attribute: str | None = None

    def problems(self, where: str = "model_explainability") -> list[str]:
        """Every invalid setting, each with its value and the fix; tokens are not checked."""
        found = self._common_problems(where, MonitoringType.MODEL_EXPLAINABILITY)
        return found + _image_problems(f"{where}.image_uri", self.image_uri)


def _image_problems(name: str, uri: str | None) -> list[str]:
    if uri is None or Token.is_unresolved(uri) or ".dkr.ecr." in uri:
        return []
    return [f"{name} {uri!r} is not an ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>)"]


_Settings = DataQualitySettings | ModelQualitySettings | ModelBiasSettings | ModelExplainabilitySettings


# --------------------------------------------------------------------------------- the construct


class ModelMonitor(Construct):
    """Scheduled Model Monitor jobs on an endpoint's captured data, with alarms that feed retraining.

    One job definition and one monitoring schedule per requested type (data
    quality, model quality, bias, explainability), each on its own schedule,
    comparing the captured traffic with the baselines of the model the
    endpoint serves. Reports land under ``monitoring/<endpoint>/<type>/`` of
    the data store, encrypted with its key; job volumes use the construct's
    key; jobs run in the endpoint's VPC with its network isolation. Every
    completed execution that found violations becomes a ``cdk-mlops.monitor`` /
    ``Model Monitor Violation`` event on the default bus (the retrain trigger's
    input) through an Express state machine without code; failed executions
    notify the topic; an alarm fires when no execution completes. Opt-in alarms
    on per-feature drift and model-quality metrics are listed in
    ``drift_alarms`` for ``RetrainTrigger(drift_alarms=...)``.

    Example::

        package = sagemaker_client.describe_model_package(ModelPackageName=arn)   # at deploy time, not synth
        monitor = ModelMonitor(self, "Monitor", endpoint=endpoint, data_store=store, dataset="churn",
                               data_quality=DataQualitySettings(
                                   baselines=Baselines.from_model_package(package),
                                   drift_thresholds={"total_charges": 0.2}))
        RetrainTrigger(self, "Retrain", ..., drift_alarms=monitor.drift_alarms)

    Attributes:
        endpoint_name: The monitored endpoint.
        data_store: The store holding captured data, ground truth and reports.
        types: The monitoring types, in ``MonitoringType`` order.
        schedule_names: Monitoring schedule name per type.
        schedule_arns: Monitoring schedule ARN per type.
        output_uris: ``s3://<store>/monitoring/<endpoint>/<type>/`` per type.
        role: The monitoring jobs' execution role.
        encryption_key: Encrypts job volumes, the dead-letter queue and the
            created topic.
        alarm_topic: Where alarms and failed executions notify.
        job_definitions: The ``AWS::SageMaker::*JobDefinition`` per type.
        schedules: The ``AWS::SageMaker::MonitoringSchedule`` per type.
        completed_rules: EventBridge rule per type: completed executions → the violation publisher.
        failed_rules: EventBridge rule per type: failed or stopped executions → the topic.
        violation_publisher: Express state machine that turns executions with
            violations into ``Model Monitor Violation`` events.
        violation_log_group: The state machine's execution log.
        dead_letter_queue: Completed-execution events EventBridge could not deliver.
        execution_alarms: Per type, in ALARM when no execution completed for
            ``missing_execution_periods`` schedule intervals (failed or missing).
        feature_drift_alarms: Opt-in drift alarm per feature.
        model_quality_alarms: Opt-in alarm per model-quality metric.
        drift_alarms: Feature-drift and model-quality alarms, for the retrain trigger.
        publisher_failed_alarm: In ALARM when the violation publisher fails.
        dead_letter_alarm: In ALARM when an event is in the dead-letter queue.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint: ModelEndpoint,
        data_store: VersionedDataStore,
        data_quality: DataQualitySettings | None = None,
        model_quality: ModelQualitySettings | None = None,
        model_bias: ModelBiasSettings | None = None,
        model_explainability: ModelExplainabilitySettings | None = None,
        dataset: str | None = None,
        name_prefix: str | None = None,
        enable_network_isolation: bool | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        alarm_topic: sns.ITopic | None = None,
        encryption_key: kms.IKey | None = None,
        missing_execution_periods: int = 2,
        add_to_endpoint_dashboard: bool = True,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """Define the monitor.

        Args:
            scope: The parent construct.
            id: The construct id.
            endpoint: The endpoint to monitor; it must capture data
                (``ModelEndpoint(data_capture=...)``).
            data_store: The store the endpoint captures into; reports are
                written under ``monitoring/<endpoint>/<type>/`` and ground truth
                is read from it.
            data_quality: Monitor data quality. Default: - not monitored.
            model_quality: Monitor model quality. Default: - not monitored.
            model_bias: Monitor bias drift. Default: - not monitored.
            model_explainability: Monitor feature attribution drift. Default: - not monitored.
                At least one of the four is required.
            dataset: The dataset a violation retrains (``detail.dataset`` of the
                event). Default: - omitted; the retrain trigger retrains its first dataset.
            name_prefix: Prefix of schedule and alarm names (lower case). Default: - the endpoint name.
            enable_network_isolation: Jobs make no network calls. Default: - the
                endpoint model's setting (explainability jobs never: Clarify calls
                the SageMaker API).
            security_groups: Security groups of the jobs in the endpoint's VPC.
                Default: - the endpoint model's security groups.
            alarm_topic: Every alarm and failed execution notifies it. Default: - a
                new topic encrypted with ``encryption_key``.
            encryption_key: Encrypts job volumes, the dead-letter queue and a
                created topic. Default: - a new key with rotation on.
            missing_execution_periods: Schedule intervals without a completed
                execution before an execution alarm fires (2 to 10). Default: - 2.
            add_to_endpoint_dashboard: Add the monitoring widgets to the
                endpoint's dashboard when it is in this construct's stack.
                Default: - True.
            log_retention: How long the violation publisher's log is kept. Default: - 3 months.
            removal_policy: For the created key, queue and log group. Default: - RETAIN.

        Raises:
            ConfigurationError: listing every invalid argument, before any
                resource is defined.
        """
        super().__init__(scope, id)
        requested: dict[MonitoringType, _Settings] = {
            t: s
            for t, s in (
                (MonitoringType.DATA_QUALITY, data_quality),
                (MonitoringType.MODEL_QUALITY, model_quality),
                (MonitoringType.MODEL_BIAS, model_bias),
                (MonitoringType.MODEL_EXPLAINABILITY, model_explainability),
            )
            if s is not None
        }
        prefix = endpoint.endpoint_name if name_prefix is None else name_prefix
        problems = self._problems(endpoint, requested, prefix, dataset, missing_execution_periods, security_groups)
        if problems:
            raise ConfigurationError(self, problems)

        stack = Stack.of(self)
        self.endpoint_name: str = endpoint.endpoint_name
        self.types: tuple[MonitoringType, ...] = tuple(requested)
        self._settings = requested
        self._prefix = prefix
        self.schedule_names: dict[MonitoringType, str] = {t: schedule_name(prefix, t) for t in requested}
        self.schedule_arns: dict[MonitoringType, str] = {
            t: stack.format_arn(service="sagemaker", resource="monitoring-schedule", resource_name=n)
            for t, n in self.schedule_names.items()
        }
        monitoring_prefix = f"{data_store.monitoring_prefix}{endpoint.endpoint_name}/"
        self.data_store = data_store
        self._monitoring_prefix = monitoring_prefix
        self.output_uris: dict[MonitoringType, str] = {
            t: data_store.s3_uri(f"{monitoring_prefix}{t.slug}/") for t in requested
        }

        self.encryption_key: kms.IKey = encryption_key or kms.Key(
            self,
            "Key",
            description=f"Encrypts the {self.node.path} job volumes, dead-letter queue and notifications",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.alarm_topic: sns.ITopic = alarm_topic or self._topic()
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Runs the Model Monitor jobs of the {endpoint.endpoint_name} endpoint (least privilege)",
        )
        network = self._network(endpoint, enable_network_isolation, security_groups)
        images = self._images(requested)
        self._grant_role(endpoint, data_store, monitoring_prefix, requested, images, vpc_config=network[0])

        self._scopes: dict[MonitoringType, Construct] = {}
        self.job_definitions: dict[MonitoringType, CfnResource] = {}
        self.schedules: dict[MonitoringType, sagemaker.CfnMonitoringSchedule] = {}
        for monitoring_type, settings in requested.items():
            scope_ = Construct(self, monitoring_type.value)
            self._scopes[monitoring_type] = scope_
            definition = self._job_definition(scope_, monitoring_type, settings, data_store, images, network)
            # The definition names the role with Fn::GetAtt, so it already follows the role; its
            # policy and the endpoint (named by a plain string) are not referenced.
            definition.node.add_dependency(self._role_policy())
            definition.node.add_dependency(endpoint.endpoint)
            self.job_definitions[monitoring_type] = definition
            schedule = sagemaker.CfnMonitoringSchedule(
                scope_,
                "Schedule",
                monitoring_schedule_name=self.schedule_names[monitoring_type],
                endpoint_name=self.endpoint_name,
                monitoring_schedule_config=sagemaker.CfnMonitoringSchedule.MonitoringScheduleConfigProperty(
                    # Job definitions have no name attribute; the name is the last part of the ARN.
                    monitoring_job_definition_name=Fn.select(
                        1, Fn.split("/", definition.get_att("JobDefinitionArn").to_string())
                    ),
                    monitoring_type=monitoring_type.value,
                    schedule_config=sagemaker.CfnMonitoringSchedule.ScheduleConfigProperty(
                        schedule_expression=settings.schedule.expression
                    ),
                ),
            )
            schedule.node.add_dependency(endpoint.endpoint)
            self.schedules[monitoring_type] = schedule

        self._define_violation_routing(dataset, log_retention, removal_policy)
        self._define_alarms(missing_execution_periods)

        if add_to_endpoint_dashboard and Stack.of(endpoint) is stack:
            self.add_to_dashboard(endpoint.dashboard)

    # ------------------------------------------------------------------ validation

    def _problems(
        self,
        endpoint: ModelEndpoint,
        requested: Mapping[MonitoringType, _Settings],
        prefix: str,
        dataset: str | None,
        missing_periods: int,
        security_groups: Sequence[ec2.ISecurityGroup] | None,
    ) -> list[str]:
        found: list[str] = []
        if endpoint.capture_uri is None:
            found.append(
                f"endpoint {endpoint.node.path} captures no data, and Model Monitor analyses captured requests; "
                "create it with data_capture=DataCaptureSettings(...) (realtime endpoints only)"
            )
        if not requested:
            found.append(
                "nothing to monitor; pass at least one of data_quality, model_quality, model_bias, model_explainability"
            )
        for monitoring_type, settings in requested.items():
            found += settings.problems()
            found += self._stale_baseline_problems(endpoint, monitoring_type, settings.baselines)
        if not Token.is_unresolved(prefix):
            longest = max((len(schedule_name(prefix, t)) for t in requested), default=0)
            if not SAGEMAKER_NAME.match(prefix) or longest > 63:
                found.append(
                    f"name_prefix {prefix!r} must be lower-case letters, digits and hyphens, short enough that "
                    f"'<prefix>-<type>' fits SageMaker's 63 characters (longest here: {longest}); pass a shorter "
                    "name_prefix"
                )
        if dataset is not None and not Token.is_unresolved(dataset):
            found += [f"dataset: {p}" for p in dataset_name_problems(dataset)]
        found += _whole_problem("missing_execution_periods", missing_periods, 2, 10)
        if security_groups is not None and endpoint.model.vpc_config is None:
            found.append("security_groups need an endpoint in a VPC; the endpoint has none, remove security_groups")
        return found

    @staticmethod
    def _stale_baseline_problems(
        endpoint: ModelEndpoint, monitoring_type: MonitoringType, baselines: Baselines
    ) -> list[str]:
        source = baselines.model_package_arn
        container = endpoint.model.primary_container
        served = getattr(container, "model_package_name", None)
        if source is None or not isinstance(served, str) or Token.is_unresolved(served):
            return []
        if source.lower() == served.lower():
            return []
        return [
            f"{monitoring_type.value} baselines come from {source}, but the endpoint serves {served}; monitoring "
            "a model against another model's baselines reports stale drift. Take the baselines from the served "
            "package (Baselines.from_model_package of its description)"
        ]

    # ------------------------------------------------------------------ resources

    def _topic(self) -> sns.Topic:
        # EventBridge (failed executions) and CloudWatch alarms publish to the encrypted topic.
        for service in ("events.amazonaws.com", "cloudwatch.amazonaws.com"):
            self.encryption_key.grant(iam.ServicePrincipal(service), "kms:Decrypt", "kms:GenerateDataKey")
        return sns.Topic(self, "AlarmTopic", master_key=self.encryption_key, enforce_ssl=True)

    def _network(
        self,
        endpoint: ModelEndpoint,
        isolation: bool | None,
        security_groups: Sequence[ec2.ISecurityGroup] | None,
    ) -> tuple[Any, bool]:
        """``(VpcConfig or None, network isolation)`` for the jobs, taken from the endpoint's model."""
        model = endpoint.model
        vpc_config: Any = None
        source = model.vpc_config
        if isinstance(source, sagemaker.CfnModel.VpcConfigProperty):
            groups = (
                [g.security_group_id for g in security_groups]
                if security_groups is not None
                else list(source.security_group_ids)
            )
            vpc_config = {"securityGroupIds": groups, "subnets": list(source.subnets)}
        elif source is not None:
            vpc_config = source  # an IResolvable: passed through as it is
        isolated = (model.enable_network_isolation is True) if isolation is None else isolation
        return vpc_config, isolated

    def _grant_vpc_access(self, vpc_config: Any) -> None:
        """Let SageMaker attach the jobs to the subnets of ``vpc_config`` (the ``_network`` value)."""
        if isinstance(vpc_config, dict):
            subnets, groups = vpc_config["subnets"], vpc_config["securityGroupIds"]
        else:
            # A VpcConfig that is one deploy-time value names no subnet at synth: any of the account's.
            subnets, groups = ["*"], ["*"]
            stack = Stack.of(self)
            acknowledge(
                self.role,
                "the endpoint model's VpcConfig is a deploy-time value, so its subnets and security groups are "
                "unknown at synth; network interfaces are limited to the subnets and groups of this account",
                *iam5_findings(
                    resources=(
                        nag_resource(self, stack.format_arn(service="ec2", resource=kind, resource_name="*"))
                        for kind in ("subnet", "security-group")
                    )
                ),
            )
        grant_sagemaker_vpc_access(self.role, subnet_ids=subnets, security_group_ids=groups)

    def _images(self, requested: Mapping[MonitoringType, _Settings]) -> dict[MonitoringType, str]:
        images: dict[MonitoringType, str] = {}
        for monitoring_type, settings in requested.items():
            if isinstance(settings, ModelBiasSettings | ModelExplainabilitySettings):
                images[monitoring_type] = settings.image_uri or sagemaker_image_uri(self, "clarify")
            else:
                images[monitoring_type] = sagemaker_image_uri(self, "model-monitor")
        return images

    def _job_definition(
        self,
        scope: Construct,
        monitoring_type: MonitoringType,
        settings: _Settings,
        data_store: VersionedDataStore,
        images: Mapping[MonitoringType, str],
        network: tuple[Any, bool],
    ) -> CfnResource:
        # The L1 property structs are passed as jsii maps with their camelCase field names: the four
        # job definition types have identical nested structs, each under its own class.
        vpc_config, isolated = network
        if monitoring_type is MonitoringType.MODEL_EXPLAINABILITY:
            isolated = False  # Clarify calls the SageMaker API for its shadow endpoint
        image = images[monitoring_type]
        baselines = settings.baselines
        common: dict[str, Any] = {
            "role_arn": self.role.role_arn,
            "endpoint_name": self.endpoint_name,
            "job_resources": {
                "clusterConfig": {
                    "instanceCount": settings.instance_count,
                    "instanceType": settings.instance_type,
                    "volumeSizeInGb": settings.volume_size_gb,
                    "volumeKmsKeyId": self.encryption_key.key_arn,
                }
            },
            "network_config": _present(
                enableInterContainerTrafficEncryption=True,
                enableNetworkIsolation=isolated,
                vpcConfig=vpc_config,
            ),
            "stopping_condition": {"maxRuntimeInSeconds": settings.max_runtime.to_seconds()},
        }
        output = {
            "kmsKeyId": data_store.encryption_key.key_arn,
            "monitoringOutputs": [
                {
                    "s3Output": {
                        "localPath": _OUTPUT_PATH,
                        "s3Uri": self.output_uris[monitoring_type],
                        "s3UploadMode": "EndOfJob",
                    }
                }
            ],
        }
        endpoint_input: dict[str, Any] = {
            "endpointName": self.endpoint_name,
            "localPath": _INPUT_PATH,
            "s3InputMode": "File",
            "s3DataDistributionType": "FullyReplicated",
        }
        metrics_env = {"publish_cloudwatch_metrics": "Enabled"}
        constraints = {"constraintsResource": {"s3Uri": baselines.constraints_uri}}

        if isinstance(settings, DataQualitySettings):
            definition: CfnResource = sagemaker.CfnDataQualityJobDefinition(
                scope,
                "JobDefinition",
                data_quality_app_specification={"imageUri": image, "environment": metrics_env},
                data_quality_baseline_config={**constraints, "statisticsResource": {"s3Uri": baselines.statistics_uri}},
                data_quality_job_input={"endpointInput": endpoint_input},
                data_quality_job_output_config=output,
                **common,
            )
        elif isinstance(settings, ModelQualitySettings):
            definition = sagemaker.CfnModelQualityJobDefinition(
                scope,
                "JobDefinition",
                model_quality_app_specification={
                    "imageUri": image,
                    "problemType": settings.problem_type.value,
                    "environment": metrics_env,
                },
                model_quality_baseline_config=constraints,
                model_quality_job_input={
                    "endpointInput": {
                        **endpoint_input,
                        **_present(
                            inferenceAttribute=settings.inference_attribute,
                            probabilityAttribute=settings.probability_attribute,
                            probabilityThresholdAttribute=settings.probability_threshold,
                            startTimeOffset=settings.start_time_offset,
                            endTimeOffset=settings.end_time_offset,
                        ),
                    },
                    "groundTruthS3Input": {"s3Uri": data_store.s3_uri(_required(settings.ground_truth_prefix))},
                },
                model_quality_job_output_config=output,
                **common,
            )
        elif isinstance(settings, ModelBiasSettings):
            definition = sagemaker.CfnModelBiasJobDefinition(
                scope,
                "JobDefinition",
                model_bias_app_specification={
                    "imageUri": image,
                    "configUri": baselines.analysis_config_uri,
                    "environment": metrics_env,
                },
                model_bias_baseline_config=constraints,
                model_bias_job_input={
                    "endpointInput": {
                        **endpoint_input,
                        **_present(
                            featuresAttribute=settings.features_attribute,
                            inferenceAttribute=settings.inference_attribute,
                            probabilityAttribute=settings.probability_attribute,
                            probabilityThresholdAttribute=settings.probability_threshold,
                            startTimeOffset=settings.start_time_offset,
                            endTimeOffset=settings.end_time_offset,
                        ),
                    },
                    "groundTruthS3Input": {"s3Uri": data_store.s3_uri(_required(settings.ground_truth_prefix))},
                },
                model_bias_job_output_config=output,
                **common,
            )
        else:
            definition = sagemaker.CfnModelExplainabilityJobDefinition(
                scope,
                "JobDefinition",
                model_explainability_app_specification={
                    "imageUri": image,
                    "configUri": baselines.analysis_config_uri,
                    "environment": metrics_env,
                },
                model_explainability_baseline_config=constraints,
                model_explainability_job_input={
                    "endpointInput": {
                        **endpoint_input,
                        **_present(
                            featuresAttribute=settings.features_attribute,
                            inferenceAttribute=settings.inference_attribute,
                            probabilityAttribute=settings.probability_attribute,
                        ),
                    }
                },
                model_explainability_job_output_config=output,
                **common,
            )
            if vpc_config is not None:
                acknowledge(
                    definition,
                    "SageMaker Clarify computes feature attributions against a shadow endpoint it creates through "
                    "the SageMaker API, which network isolation would block; the job still runs in the endpoint's "
                    "VPC subnets and security groups",
                    f"{GUARDRAILS}::MLOPS-007",
                )
            Annotations.of(self).add_info(
                "[cdk-mlops:monitor-explainability-network] explainability jobs run without network isolation: "
                "SageMaker Clarify calls the SageMaker API for its shadow endpoint"
            )
        return definition

    def _role_policy(self) -> IConstruct:
        """The jobs' role's default policy (the grants below): scheduled jobs need its permissions."""
        return self.role.node.find_child("DefaultPolicy")

    def _grant_role(
        self,
        endpoint: ModelEndpoint,
        data_store: VersionedDataStore,
        monitoring_prefix: str,
        requested: Mapping[MonitoringType, _Settings],
        images: Mapping[MonitoringType, str],
        *,
        vpc_config: Any,
    ) -> None:
        stack = Stack.of(self)
        role = self.role
        # Captured requests and responses of this endpoint only.
        data_store.grant_read(role, prefix=f"{data_store.capture_prefix}{endpoint.endpoint_name}/")
        # Reports (and model quality's merged ground truth) under this endpoint's monitoring prefix.
        data_store.grant_read_write(role, prefix=monitoring_prefix)
        for prefix in dict.fromkeys(
            _required(s.ground_truth_prefix)
            for s in requested.values()
            if isinstance(s, ModelQualitySettings | ModelBiasSettings)
        ):
            data_store.grant_read(role, prefix=prefix)
        # Exactly the baseline objects (and Clarify configurations); baselines the training pipeline
        # wrote are encrypted with the data store's key, which the grants above let the role decrypt.
        baseline_arns = list(
            dict.fromkeys(_s3_object_arn(uri) for settings in requested.values() for uri in settings.baselines.uris())
        )
        iam.Grant.add_to_principal(grantee=role, actions=["s3:GetObject"], resource_arns=baseline_arns)
        iam.Grant.add_to_principal(
            grantee=role,
            actions=list(_VOLUME_KEY_ACTIONS),
            resource_arns=[self.encryption_key.key_arn],
        )

        repositories = list(dict.fromkeys(ecr_repository_arn(uri, stack) for uri in images.values()))
        iam.Grant.add_to_principal(grantee=role, actions=list(ECR_PULL_ACTIONS), resource_arns=repositories)
        opaque = [r for r in repositories if "*" in r]
        if opaque:
            acknowledge(
                role,
                "a Clarify image_uri is one deploy-time token, so its repository is unknown at synth; pulls are "
                "limited to the repositories of this account and region",
                *iam5_findings(resources=(nag_resource(self, r) for r in opaque)),
            )
        star_reasons = [
            "cloudwatch:PutMetricData supports no resource-level permissions; it is limited to the Model Monitor "
            "namespaces by condition",
            "ecr:GetAuthorizationToken supports no resource-level permissions",
        ]
        iam.Grant.add_to_principal(grantee=role, actions=["ecr:GetAuthorizationToken"], resource_arns=["*"])
        iam.Grant.add_to_principal(
            grantee=role,
            actions=["cloudwatch:PutMetricData"],
            resource_arns=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": ["aws/sagemaker/Endpoints/*"]}},
        )
        log_group = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=_PROCESSING_LOG_GROUP,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        iam.Grant.add_to_principal(grantee=role, actions=list(LOG_ACTIONS), resource_arns=[log_group, f"{log_group}:*"])
        if vpc_config is not None:
            self._grant_vpc_access(vpc_config)
        if MonitoringType.MODEL_EXPLAINABILITY in requested:
            shadow = [
                stack.format_arn(service="sagemaker", resource=kind, resource_name=f"{_CLARIFY_SHADOW_PREFIX}*")
                for kind in ("endpoint", "endpoint-config")
            ]
            iam.Grant.add_to_principal(grantee=role, actions=list(_CLARIFY_SHADOW_ACTIONS), resource_arns=shadow)
            acknowledge(
                role,
                "SageMaker Clarify names its temporary shadow endpoint per execution; the wildcard is limited to "
                f"endpoints and configurations named {_CLARIFY_SHADOW_PREFIX}*",
                *iam5_findings(resources=(nag_resource(self, a) for a in shadow)),
            )

        acknowledge(role, "; ".join(star_reasons), *iam5_findings(resources=("*",)))
        acknowledge(
            role,
            "processing jobs write log streams with generated names under /aws/sagemaker/ProcessingJobs only",
            *iam5_findings(resources=(nag_resource(self, f"{log_group}:*"),)),
        )

    def _define_violation_routing(
        self, dataset: str | None, log_retention: logs.RetentionDays, removal_policy: RemovalPolicy
    ) -> None:
        """Completed executions → Express state machine → ``Model Monitor Violation`` on the default bus.

        EventBridge cannot put an event with a new source and detail type on a
        bus (rules targeting an event bus forward the event unchanged, without
        input transformation), so an Express workflow with the optimized
        ``events:putEvents`` integration does it; no function code.
        """
        self.violation_log_group = logs.LogGroup(
            self, "ViolationPublisherLogs", retention=log_retention, removal_policy=removal_policy
        )
        has_violations = sfn.Condition.and_(
            sfn.Condition.is_present("$.event.detail.ExitMessage"),
            sfn.Condition.string_matches("$.event.detail.ExitMessage", f"{VIOLATIONS_EXIT_PREFIX}*"),
        )
        count = sfn.CustomState(
            self,
            "CountViolation",
            state_json={
                "Type": "Task",
                "Resource": f"arn:{Aws.PARTITION}:states:::aws-sdk:cloudwatch:putMetricData",
                "Parameters": {
                    "Namespace": METRICS_NAMESPACE,
                    "MetricData": [
                        {
                            "MetricName": "Violations",
                            "Dimensions": [
                                {"Name": "MonitoringSchedule", "Value.$": "$.detail.monitoringScheduleName"}
                            ],
                            "Value": 1,
                            "Unit": "Count",
                        }
                    ],
                },
                "ResultPath": sfn.JsonPath.DISCARD,
                "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2}],
            },
        )
        publish = tasks.EventBridgePutEvents(
            self,
            "PublishViolation",
            entries=[
                tasks.EventBridgePutEventsEntry(
                    detail=sfn.TaskInput.from_json_path_at("$.detail"),
                    detail_type=MONITOR_VIOLATION,
                    source=MONITOR_SOURCE,
                )
            ],
            result_path=sfn.JsonPath.DISCARD,
        )
        publish.add_retry(errors=[sfn.Errors.ALL], interval=Duration.seconds(2), max_attempts=6, backoff_rate=2)
        definition = (
            sfn.Choice(self, "HasViolations")
            .when(has_violations, count.next(publish))
            .otherwise(sfn.Succeed(self, "NoViolations"))
        )
        self.violation_publisher = sfn.StateMachine(
            self,
            "ViolationPublisher",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.EXPRESS,
            timeout=Duration.minutes(5),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.violation_log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
        )
        # aws-cdk-lib makes the state machine depend on its role, which it already names with Fn::GetAtt.
        depend_on_role_policy(self.violation_publisher, self.violation_publisher.role)
        iam.Grant.add_to_principal(
            grantee=self.violation_publisher,
            actions=["cloudwatch:PutMetricData"],
            resource_arns=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
        )
        acknowledge(
            self.violation_publisher.role,
            "X-Ray, CloudWatch Logs delivery and cloudwatch:PutMetricData support no resource-level permissions "
            f"(the metric is limited to the {METRICS_NAMESPACE} namespace by condition); aws-cdk-lib adds the first "
            "two for tracing and execution logging",
            *iam5_findings(resources=("*",)),
        )

        self.dead_letter_queue = dead_letter_queue(
            self, "DeadLetterQueue", key=self.encryption_key, removal_policy=removal_policy
        )
        self.encryption_key.grant(iam.ServicePrincipal("events.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey")
        acknowledge(
            self.dead_letter_queue,
            "this queue is itself the dead-letter queue of the EventBridge targets; its messages are kept 14 days "
            "and an alarm fires on the first one",
            "AwsSolutions-SQS3",
        )

        self.completed_rules: dict[MonitoringType, events.Rule] = {}
        self.failed_rules: dict[MonitoringType, events.Rule] = {}
        for monitoring_type in self.types:
            scope = self._scopes[monitoring_type]
            name, arn = self.schedule_names[monitoring_type], self.schedule_arns[monitoring_type]
            detail: dict[str, Any] = {
                "monitoringScheduleName": name,
                "monitoringType": monitoring_type.value,
                "endpointName": self.endpoint_name,
                "processingJobArn": events.EventField.from_path("$.detail.ProcessingJobArn"),
            }
            if dataset is not None:
                detail["dataset"] = dataset
            completed = events.Rule(
                scope,
                "Completed",
                description=f"{self.node.path}: completed executions of {name} (violations retrain)",
                event_pattern=self._execution_pattern(arn, ["Completed"]),
            )
            completed.add_target(
                targets.SfnStateMachine(
                    self.violation_publisher,
                    input=events.RuleTargetInput.from_object(
                        {"detail": detail, "event": events.EventField.from_path("$")}
                    ),
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=20,
                    max_event_age=Duration.hours(6),
                )
            )
            failed = events.Rule(
                scope,
                "Failed",
                description=f"{self.node.path}: failed or stopped executions of {name}",
                event_pattern=self._execution_pattern(arn, list(FAILED_STATUSES)),
            )
            failed.add_target(targets.SnsTopic(self.alarm_topic))
            self.completed_rules[monitoring_type] = completed
            self.failed_rules[monitoring_type] = failed

    @staticmethod
    def _execution_pattern(schedule_arn: str, statuses: list[str]) -> events.EventPattern:
        return events.EventPattern(
            source=["aws.sagemaker"],
            detail_type=[PROCESSING_JOB_STATE_CHANGE],
            detail={"MonitoringScheduleArn": [schedule_arn], "ProcessingJobStatus": statuses},
        )

    def _define_alarms(self, missing_periods: int) -> None:
        self.execution_alarms: dict[MonitoringType, cw.Alarm] = {}
        self.feature_drift_alarms: dict[str, cw.Alarm] = {}
        self.model_quality_alarms: dict[str, cw.Alarm] = {}
        for monitoring_type, settings in self._settings.items():
            scope = self._scopes[monitoring_type]
            interval = self._period(monitoring_type)
            name = self.schedule_names[monitoring_type]
            self.execution_alarms[monitoring_type] = self._notify(
                cw.Alarm(
                    scope,
                    "MissingExecutionsAlarm",
                    alarm_description=(
                        f"{self.node.path}: no execution of {name} completed in {missing_periods} x "
                        f"{interval.to_human_string()}; it failed (see the failed-execution notifications) or "
                        "did not run (schedule stopped, endpoint without traffic). Expect one ALARM after the "
                        "first deployment, until the first execution completes"
                    ),
                    metric=self.metric_completed_executions(monitoring_type, period=interval),
                    threshold=1,
                    comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
                    evaluation_periods=missing_periods,
                    datapoints_to_alarm=missing_periods,
                    treat_missing_data=cw.TreatMissingData.BREACHING,
                )
            )
            if isinstance(settings, DataQualitySettings) and settings.drift_thresholds:
                drift_scope = Construct(scope, "DriftAlarms")
                for feature, threshold in settings.drift_thresholds.items():
                    self.feature_drift_alarms[feature] = self._notify(
                        cw.Alarm(
                            drift_scope,
                            feature,
                            alarm_name=feature_drift_alarm_name(self._prefix, feature),
                            alarm_description=(
                                f"{self.node.path}: baseline drift of feature {feature!r} above {threshold} "
                                f"({name}); retrains when routed to the retrain trigger"
                            ),
                            metric=self.metric_feature_drift(feature, period=interval),
                            threshold=threshold,
                            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                            evaluation_periods=1,
                            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                        )
                    )
            if isinstance(settings, ModelQualitySettings) and settings.quality_thresholds:
                quality_scope = Construct(scope, "QualityAlarms")
                higher_is_better = _QUALITY_METRICS[settings.problem_type]
                for metric_name, threshold in settings.quality_thresholds.items():
                    better_high = higher_is_better[metric_name]
                    self.model_quality_alarms[metric_name] = self._notify(
                        cw.Alarm(
                            quality_scope,
                            metric_name,
                            alarm_name=model_quality_alarm_name(self._prefix, metric_name),
                            alarm_description=(
                                f"{self.node.path}: {metric_name} {'below' if better_high else 'above'} "
                                f"{threshold} ({name}); retrains when routed to the retrain trigger"
                            ),
                            metric=self.metric_model_quality(metric_name, period=interval),
                            threshold=threshold,
                            comparison_operator=(
                                cw.ComparisonOperator.LESS_THAN_THRESHOLD
                                if better_high
                                else cw.ComparisonOperator.GREATER_THAN_THRESHOLD
                            ),
                            evaluation_periods=1,
                            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                        )
                    )
        self.drift_alarms: list[cw.IAlarm] = [*self.feature_drift_alarms.values(), *self.model_quality_alarms.values()]
        self.publisher_failed_alarm = self._notify(
            cw.Alarm(
                self,
                "PublisherFailedAlarm",
                alarm_description=(
                    f"{self.node.path}: the violation publisher failed, so a violation may not have reached the "
                    "retrain trigger; see its log group"
                ),
                metric=self.violation_publisher.metric_failed(period=Duration.minutes(5), statistic="Sum"),
                threshold=0,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
        )
        self.dead_letter_alarm = self._notify(
            cw.Alarm(
                self,
                "DeadLetterAlarm",
                alarm_description=(
                    f"{self.node.path}: EventBridge could not start the violation publisher; the execution events "
                    "are in the dead-letter queue"
                ),
                metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    statistic="Maximum", period=Duration.minutes(5)
                ),
                threshold=0,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
        )

    def _notify(self, alarm: cw.Alarm) -> cw.Alarm:
        alarm.add_alarm_action(cw_actions.SnsAction(self.alarm_topic))
        return alarm

    def _period(self, monitoring_type: MonitoringType) -> Duration:
        interval = self._settings[monitoring_type].schedule.interval
        return interval if interval is not None else Duration.hours(1)

    # ------------------------------------------------------------------ dashboard and grants

    def add_to_dashboard(self, dashboard: cw.Dashboard) -> None:
        """Add the monitoring rows to ``dashboard``: violations and executions over time, drift, alarms.

        Called automatically for the endpoint's dashboard when it is in this
        construct's stack. A dashboard in another stack references this
        stack's rules and alarms, so that stack then depends on this one.
        """
        violations = [self.metric_violations(t, label=t.value) for t in self.types]
        completed = [self.metric_completed_executions(t, label=f"{t.value} completed") for t in self.types]
        failed = [self.metric_failed_executions(t, label=f"{t.value} failed") for t in self.types]
        row: list[cw.IWidget] = [
            cw.GraphWidget(title="Model Monitor violations", left=violations, width=12),
            cw.GraphWidget(title="Monitoring executions", left=completed, right=failed, width=12),
        ]
        dashboard.add_widgets(*row)
        details: list[cw.IWidget] = []
        if self.feature_drift_alarms:
            drift = [self.metric_feature_drift(f, label=f) for f in self.feature_drift_alarms]
            details.append(cw.GraphWidget(title="Feature baseline drift", left=drift, width=12))
        if self.model_quality_alarms:
            quality = [self.metric_model_quality(m, label=m) for m in self.model_quality_alarms]
            details.append(cw.GraphWidget(title="Model quality", left=quality, width=12))
        if details:
            dashboard.add_widgets(*details)
        dashboard.add_widgets(cw.AlarmStatusWidget(title="Model Monitor alarms", alarms=self.alarms, width=24))

    def grant_read_reports(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let a principal read the monitoring reports of this endpoint (e.g. a notebook or reporting role)."""
        return self.data_store.grant_read(grantee, prefix=self._monitoring_prefix)

    # ------------------------------------------------------------------ metrics and alarms

    @property
    def alarms(self) -> list[cw.Alarm]:
        """Every alarm this construct created."""
        return [
            *self.execution_alarms.values(),
            *self.feature_drift_alarms.values(),
            *self.model_quality_alarms.values(),
            self.publisher_failed_alarm,
            self.dead_letter_alarm,
        ]

    def metric(self, monitoring_type: MonitoringType, metric_name: str, **options: Any) -> cw.Metric:
        """A metric Model Monitor publishes for one of this construct's schedules.

        Dimensions ``Endpoint`` and ``MonitoringSchedule``, in the type's
        namespace (``aws/sagemaker/Endpoints/data-metrics``, ``model-metrics``,
        ``bias-metrics``, ``explainability-metrics``). Bias metrics carry more
        dimensions; pass them with ``dimensions_map``.

        Args:
            monitoring_type: One of the monitored types.
            metric_name: e.g. ``feature_baseline_drift_total_charges`` or ``accuracy``.
            options: ``cw.MetricOptions`` keywords. Default: - Maximum over one schedule interval.
        """
        extra = dict(options.pop("dimensions_map", None) or {})
        props: dict[str, Any] = {"statistic": "Maximum", "period": self._period(monitoring_type), **options}
        dimensions = {"Endpoint": self.endpoint_name, "MonitoringSchedule": self.schedule_names[monitoring_type]}
        return cw.Metric(
            namespace=monitoring_type.namespace,
            metric_name=metric_name,
            dimensions_map={**dimensions, **extra},
            **props,
        )

    def metric_feature_drift(self, feature: str, **options: Any) -> cw.Metric:
        """``feature_baseline_drift_<feature>`` (data quality): the distance from the baseline distribution."""
        return self.metric(MonitoringType.DATA_QUALITY, f"feature_baseline_drift_{feature}", **options)

    def metric_model_quality(self, metric_name: str, **options: Any) -> cw.Metric:
        """A model-quality metric such as ``accuracy``, ``auc`` or ``rmse``; Average over one interval."""
        return self.metric(MonitoringType.MODEL_QUALITY, metric_name, **{"statistic": "Average", **options})

    def metric_violations(self, monitoring_type: MonitoringType, **options: Any) -> cw.Metric:
        """Executions of one schedule that found violations (each one retrain event), summed per interval."""
        props: dict[str, Any] = {"statistic": "Sum", "period": self._period(monitoring_type), **options}
        return cw.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name="Violations",
            dimensions_map={"MonitoringSchedule": self.schedule_names[monitoring_type]},
            **props,
        )

    def metric_completed_executions(self, monitoring_type: MonitoringType, **options: Any) -> cw.Metric:
        """Completed executions of one schedule (with or without violations), summed per interval."""
        return self._rule_metric(self.completed_rules[monitoring_type], monitoring_type, **options)

    def metric_failed_executions(self, monitoring_type: MonitoringType, **options: Any) -> cw.Metric:
        """Failed or stopped executions of one schedule, summed per interval."""
        return self._rule_metric(self.failed_rules[monitoring_type], monitoring_type, **options)

    def _rule_metric(self, rule: events.Rule, monitoring_type: MonitoringType, **options: Any) -> cw.Metric:
        props: dict[str, Any] = {"statistic": "Sum", "period": self._period(monitoring_type), **options}
        return cw.Metric(
            namespace="AWS/Events", metric_name="TriggeredRules", dimensions_map={"RuleName": rule.rule_name}, **props
        )


def _required(value: str | None) -> str:
    """A value validation has already required."""
    assert value is not None
    return value


def _present(**values: Any) -> dict[str, Any]:
    """The keyword arguments that are not ``None`` (optional CloudFormation properties)."""
    return {k: v for k, v in values.items() if v is not None}


def _s3_object_arn(uri: str) -> str:
    """``s3://bucket/key`` → ``arn:<partition>:s3:::bucket/key``; a token URI is split at deploy time."""
    if not Token.is_unresolved(uri):
        return f"arn:{Aws.PARTITION}:s3:::{uri.removeprefix('s3://')}"
    return Fn.join("", [f"arn:{Aws.PARTITION}:s3:::", Fn.select(1, Fn.split("s3://", uri))])
