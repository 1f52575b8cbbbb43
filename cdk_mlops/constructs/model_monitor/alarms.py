"""The monitor's alarms: violations, executions that stop completing, drift, model quality, a broken violation path.

Every alarm notifies the alarm topic. The violation and execution alarms are always on; the
feature-drift and model-quality alarms are opt-in (thresholds in the settings) and have fixed
names, so that a stack deployed before the monitor's can route them to the retrain trigger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk_mlops.constructs.model_monitor.data_quality import DataQualitySettings
from cdk_mlops.constructs.model_monitor.job import JobSettings
from cdk_mlops.constructs.model_monitor.model_quality import QUALITY_METRICS, ModelQualitySettings
from cdk_mlops.constructs.model_monitor.monitoring_type import MonitoringType
from cdk_mlops.constructs.model_monitor.schedule import metric_period, schedule_name

__all__ = ["MonitorAlarms", "MonitorMetrics", "define_alarms", "feature_drift_alarm_name", "model_quality_alarm_name"]


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


class MonitorMetrics(Protocol):
    """The metrics the alarms watch; ``ModelMonitor`` provides them."""

    def metric_violations(self, monitoring_type: MonitoringType, **options: Any) -> cw.Metric:
        """Executions of one schedule that found violations, summed per interval."""
        ...

    def metric_completed_executions(self, monitoring_type: MonitoringType, **options: Any) -> cw.Metric:
        """Completed executions of one schedule, summed per interval."""
        ...

    def metric_feature_drift(self, feature: str, **options: Any) -> cw.Metric:
        """``feature_baseline_drift_<feature>`` of the data-quality schedule."""
        ...

    def metric_model_quality(self, metric_name: str, **options: Any) -> cw.Metric:
        """A model-quality metric of the model-quality schedule."""
        ...


@dataclass(frozen=True, kw_only=True)
class MonitorAlarms:
    """What :func:`define_alarms` created.

    Attributes:
        violation: Per type, in ALARM when an execution of the type found
            violations in the last schedule interval.
        execution: Per type, in ALARM when no execution completed for the
            missing-execution periods (failed or missing).
        feature_drift: Opt-in drift alarm per feature.
        model_quality: Opt-in alarm per model-quality metric.
        publisher_failed: In ALARM when the violation publisher fails.
        dead_letter: In ALARM when an event is in the dead-letter queue.
    """

    violation: dict[MonitoringType, cw.Alarm]
    execution: dict[MonitoringType, cw.Alarm]
    feature_drift: dict[str, cw.Alarm]
    model_quality: dict[str, cw.Alarm]
    publisher_failed: cw.Alarm
    dead_letter: cw.Alarm


def define_alarms(
    monitor: Construct,
    *,
    metrics: MonitorMetrics,
    scopes: Mapping[MonitoringType, Construct],
    settings: Mapping[MonitoringType, JobSettings],
    prefix: str,
    missing_periods: int,
    publisher: sfn.StateMachine,
    dead_letter_queue: sqs.IQueue,
    alarm_topic: sns.ITopic,
) -> MonitorAlarms:
    """Every alarm of the monitor, each notifying ``alarm_topic``.

    Args:
        monitor: The monitor; its path opens every alarm's description.
        metrics: The metrics the alarms watch (the monitor's).
        scopes: Per monitoring type, the scope of its alarms.
        settings: The settings per type, with the opt-in thresholds.
        prefix: The prefix of schedule and alarm names.
        missing_periods: Schedule intervals without a completed execution before an execution alarm fires.
        publisher: The violation publisher.
        dead_letter_queue: The violation path's dead-letter queue.
        alarm_topic: Every alarm notifies it.
    """
    owner = monitor.node.path

    def notify(alarm: cw.Alarm) -> cw.Alarm:
        alarm.add_alarm_action(cw_actions.SnsAction(alarm_topic))
        return alarm

    violation: dict[MonitoringType, cw.Alarm] = {}
    execution: dict[MonitoringType, cw.Alarm] = {}
    feature_drift: dict[str, cw.Alarm] = {}
    model_quality: dict[str, cw.Alarm] = {}
    for monitoring_type, type_settings in settings.items():
        scope = scopes[monitoring_type]
        interval = metric_period(type_settings.schedule)
        name = schedule_name(prefix, monitoring_type)
        violation[monitoring_type] = notify(
            _violations_alarm(
                scope,
                f"{owner}: an execution of {name} found violations in the last {interval.to_human_string()}",
                metrics.metric_violations(monitoring_type, period=interval),
            )
        )
        execution[monitoring_type] = notify(
            _missing_executions_alarm(
                scope,
                f"{owner}: no execution of {name} completed in {missing_periods} x {interval.to_human_string()}",
                metrics.metric_completed_executions(monitoring_type, period=interval),
                missing_periods,
            )
        )
        if isinstance(type_settings, DataQualitySettings) and type_settings.drift_thresholds:
            drift_scope = Construct(scope, "DriftAlarms")
            for feature, threshold in type_settings.drift_thresholds.items():
                feature_drift[feature] = notify(
                    _threshold_alarm(
                        drift_scope,
                        feature,
                        name=feature_drift_alarm_name(prefix, feature),
                        description=f"{owner}: baseline drift of feature {feature!r} above {threshold} ({name})",
                        metric=metrics.metric_feature_drift(feature, period=interval),
                        threshold=threshold,
                        alarm_below=False,
                    )
                )
        if isinstance(type_settings, ModelQualitySettings) and type_settings.quality_thresholds:
            quality_scope = Construct(scope, "QualityAlarms")
            higher_is_better = QUALITY_METRICS[type_settings.problem_type]
            for metric_name, threshold in type_settings.quality_thresholds.items():
                better_high = higher_is_better[metric_name]
                model_quality[metric_name] = notify(
                    _threshold_alarm(
                        quality_scope,
                        metric_name,
                        name=model_quality_alarm_name(prefix, metric_name),
                        description=(
                            f"{owner}: {metric_name} {'below' if better_high else 'above'} {threshold} ({name})"
                        ),
                        metric=metrics.metric_model_quality(metric_name, period=interval),
                        threshold=threshold,
                        alarm_below=better_high,
                    )
                )
    return MonitorAlarms(
        violation=violation,
        execution=execution,
        feature_drift=feature_drift,
        model_quality=model_quality,
        publisher_failed=notify(
            _first_datapoint_alarm(
                monitor,
                "PublisherFailedAlarm",
                f"{owner}: the violation publisher failed, so a violation may not have reached the "
                "retrain trigger; see its log group",
                publisher.metric_failed(period=Duration.minutes(5), statistic="Sum"),
            )
        ),
        dead_letter=notify(
            _first_datapoint_alarm(
                monitor,
                "DeadLetterAlarm",
                f"{owner}: EventBridge could not start the violation publisher; the execution events "
                "are in the dead-letter queue",
                dead_letter_queue.metric_approximate_number_of_messages_visible(
                    statistic="Maximum", period=Duration.minutes(5)
                ),
            )
        ),
    )


def _violations_alarm(scope: Construct, what: str, violations: cw.Metric) -> cw.Alarm:
    """In ALARM when ``violations`` counts at least one in a period; no data (no violation) is OK.

    The alarm is for people: whether the violation also retrains is the retrain trigger's
    ``retrain_on_violations``, which reads the violation event, not this alarm.
    """
    return cw.Alarm(
        scope,
        "ViolationAlarm",
        alarm_description=(
            f"{what}; see the execution's constraint_violations.json under the monitor's output prefix. "
            "It retrains only if the retrain trigger's retrain_on_violations lists this monitoring type"
        ),
        metric=violations,
        threshold=1,
        comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
    )


def _missing_executions_alarm(scope: Construct, what: str, completed: cw.Metric, missing_periods: int) -> cw.Alarm:
    """In ALARM when ``completed`` stays below 1 for ``missing_periods`` periods; no data counts as none."""
    return cw.Alarm(
        scope,
        "MissingExecutionsAlarm",
        alarm_description=(
            f"{what}; it failed (see the failed-execution notifications) or "
            "did not run (schedule stopped, endpoint without traffic). Expect one ALARM after the "
            "first deployment, until the first execution completes"
        ),
        metric=completed,
        threshold=1,
        comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluation_periods=missing_periods,
        datapoints_to_alarm=missing_periods,
        treat_missing_data=cw.TreatMissingData.BREACHING,
    )


def _threshold_alarm(
    scope: Construct,
    id: str,
    *,
    name: str,
    description: str,
    metric: cw.Metric,
    threshold: float,
    alarm_below: bool,
) -> cw.Alarm:
    """A named alarm on one datapoint beyond ``threshold`` (below it when ``alarm_below``), for retraining."""
    return cw.Alarm(
        scope,
        id,
        alarm_name=name,
        alarm_description=f"{description}; retrains when routed to the retrain trigger",
        metric=metric,
        threshold=threshold,
        comparison_operator=(
            cw.ComparisonOperator.LESS_THAN_THRESHOLD if alarm_below else cw.ComparisonOperator.GREATER_THAN_THRESHOLD
        ),
        evaluation_periods=1,
        treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
    )


def _first_datapoint_alarm(scope: Construct, id: str, description: str, metric: cw.Metric) -> cw.Alarm:
    """In ALARM on the first datapoint above 0."""
    return cw.Alarm(
        scope,
        id,
        alarm_description=description,
        metric=metric,
        threshold=0,
        comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
    )
