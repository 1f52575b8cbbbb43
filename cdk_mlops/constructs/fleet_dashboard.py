"""One dashboard and a few alarms for a whole fleet of models: :class:`FleetDashboard`.

A dashboard with a graph per model grows with the catalogue, and CloudWatch caps what one
dashboard holds; an alarm per model and measure is a resource per model. So every widget here is
a CloudWatch Metrics Insights query grouped by model (the pipeline, endpoint, inference component
or monitoring schedule), ordered by the measure and cut to the ``top`` worst, and every alarm is
one query over the whole fleet. The dashboard is one resource and the alarms four, whether the
fleet has 3 models or 1,000: the cost does not grow with the models.

What a query sees: Metrics Insights reads the account and region's metrics of the last three
hours, and SCHEMA narrows a query to metrics with exactly the dimensions named. The queries
filter on no name, so environments that share an account and region share these figures; each
model's row is labelled with its name, which carries the environment (``<project>-<env>-...``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from aws_cdk import Duration, Token
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_mlops.constructs.common import PIPELINE_METRICS_NAMESPACE
from cdk_mlops.constructs.fleet_trigger import FleetRetrainTrigger
from cdk_mlops.constructs.model_endpoint.monitoring import SAGEMAKER_NAMESPACE
from cdk_mlops.constructs.model_monitor.violations import METRICS_NAMESPACE as MONITOR_NAMESPACE
from cdk_mlops.constructs.props import checked_props
from cdk_mlops.errors import ConfigurationError

#: The statistics a Metrics Insights query may aggregate with.
INSIGHTS_FUNCTIONS: Final = frozenset({"AVG", "COUNT", "MAX", "MIN", "SUM"})
#: The most time series one Metrics Insights query returns.
MAX_TOP: Final = 500
#: How far back Metrics Insights reads, and so the dashboard's default range.
INSIGHTS_WINDOW: Final = Duration.hours(3)
_DASHBOARD_NAME: Final = re.compile(r"^[A-Za-z0-9_-]{1,255}\Z")


@dataclass(frozen=True)
class FleetMeasure:
    """One measure of every model: a metric, how it is aggregated, and what names the model.

    Attributes:
        title: The widget's title.
        namespace: The metric's namespace.
        metric_name: The metric.
        dimensions: The metric's exact dimensions (SCHEMA); the first names the model.
        function: How observations are aggregated (:data:`INSIGHTS_FUNCTIONS`).
    """

    title: str
    namespace: str
    metric_name: str
    dimensions: tuple[str, ...]
    function: str = "SUM"

    def query(self, top: int | None = None) -> str:
        """The Metrics Insights query: by model, the ``top`` worst first; without ``top``, the fleet's total."""
        schema = ", ".join([f'"{self.namespace}"', *self.dimensions])
        text = f"SELECT {self.function}({self.metric_name}) FROM SCHEMA({schema})"
        if top is None:
            return text
        model = self.dimensions[0]
        return f"{text} GROUP BY {model} ORDER BY {self.function}() DESC LIMIT {top}"


#: The measures of the dashboard, by row: training, serving (own endpoints, then shared ones), monitoring.
FAILED_EXECUTIONS: Final = FleetMeasure(
    "Failed executions by pipeline", PIPELINE_METRICS_NAMESPACE, "ExecutionFailed", ("PipelineName",)
)
STARTED_EXECUTIONS: Final = FleetMeasure(
    "Started executions by pipeline", PIPELINE_METRICS_NAMESPACE, "ExecutionStarted", ("PipelineName",)
)
ENDPOINT_ERRORS: Final = FleetMeasure(
    "5XX errors by endpoint", SAGEMAKER_NAMESPACE, "Invocation5XXErrors", ("EndpointName", "VariantName")
)
ENDPOINT_LATENCY: Final = FleetMeasure(
    "Highest model latency by endpoint (µs)",
    SAGEMAKER_NAMESPACE,
    "ModelLatency",
    ("EndpointName", "VariantName"),
    "MAX",
)
COMPONENT_ERRORS: Final = FleetMeasure(
    "5XX errors by shared model", SAGEMAKER_NAMESPACE, "Invocation5XXErrors", ("InferenceComponentName",)
)
COMPONENT_LATENCY: Final = FleetMeasure(
    "Highest model latency by shared model (µs)",
    SAGEMAKER_NAMESPACE,
    "ModelLatency",
    ("InferenceComponentName",),
    "MAX",
)
VIOLATIONS: Final = FleetMeasure(
    "Monitor violations by schedule", MONITOR_NAMESPACE, "Violations", ("MonitoringSchedule",)
)


class FleetDashboard(Construct):
    """One CloudWatch dashboard and four alarms for every model of a fleet, at a size that does not grow with it.

    Rows of the dashboard, each widget the ``top`` models by one measure over its range (bars,
    worst first; the range is at most the last 3 hours, what Metrics Insights reads):

    - training: failed and started executions by pipeline, and, with ``trigger``, the fleet
      retrain trigger's decisions, dead-letter queue and queue age;
    - serving: 5XX errors and the highest model latency by endpoint, then by shared model
      (inference component of a :class:`SharedModelEndpoint`);
    - monitoring: Model Monitor violations by schedule (what :class:`ModelMonitor` counts);
    - alarms: the four below, and the trigger's own.

    Alarms, each on the fleet's total (an alarm watches one time series, so the dashboard's
    rows say which model): failed executions per hour, endpoint and shared-model 5XX errors
    per 5 minutes (2 of 3 periods), and monitor violations per hour. They notify
    ``alarm_topic``; treat-missing-data is not-breaching, so a quiet fleet stays OK.

    Args:
        scope: The parent construct.
        id: The construct id.
        dashboard_name: Letters, digits, ``-`` and ``_``, at most 255. Default: - generated by
            CloudFormation.
        trigger: The fleet's retrain trigger, whose metrics and alarms join the dashboard.
            Default: - none.
        alarm_topic: Where the alarms notify. Default: - no action.
        top: How many models each widget lists, from 1 to 500. Default: - 10.
        failed_executions_threshold: Failed executions per hour, over every pipeline, that
            raise the alarm. Default: - 1.
        errors_threshold: 5XX errors per 5 minutes, over every endpoint (or every shared model),
            that raise its alarm in 2 of 3 periods. Default: - 10.
        violations_threshold: Monitor violations per hour that raise the alarm. Default: - 1.

    Attributes:
        dashboard: The dashboard.
        alarms: The four alarms, by measure: ``failed_executions``, ``endpoint_errors``,
            ``component_errors``, ``violations``.
        queries: Every widget's Metrics Insights query, by widget title.
    """

    @checked_props
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        dashboard_name: str | None = None,
        trigger: FleetRetrainTrigger | None = None,
        alarm_topic: sns.ITopic | None = None,
        top: int = 10,
        failed_executions_threshold: int = 1,
        errors_threshold: int = 10,
        violations_threshold: int = 1,
    ) -> None:
        problems = []
        named = dashboard_name is not None and not Token.is_unresolved(dashboard_name)
        if named and not _DASHBOARD_NAME.match(str(dashboard_name)):
            problems.append(
                f"dashboard_name {dashboard_name!r} must be 1-255 letters, digits, '-' or '_' (CloudWatch's rule)"
            )
        if not 1 <= top <= MAX_TOP:
            problems.append(
                f"top={top}: a Metrics Insights query returns 1 to {MAX_TOP} time series; pick one of those"
            )
        for name, value in (
            ("failed_executions_threshold", failed_executions_threshold),
            ("errors_threshold", errors_threshold),
            ("violations_threshold", violations_threshold),
        ):
            if value < 1:
                problems.append(f"{name}={value} must be at least 1, or every quiet period would alarm")
        if problems:
            raise ConfigurationError(f"{scope.node.path}/{id}", problems)
        super().__init__(scope, id)
        self._topic = alarm_topic
        self.alarms: Mapping[str, cw.Alarm] = {
            "failed_executions": self._alarm(
                "FailedExecutionsAlarm", FAILED_EXECUTIONS, Duration.hours(1), failed_executions_threshold, 1
            ),
            "endpoint_errors": self._alarm(
                "EndpointErrorsAlarm", ENDPOINT_ERRORS, Duration.minutes(5), errors_threshold, 3
            ),
            "component_errors": self._alarm(
                "ComponentErrorsAlarm", COMPONENT_ERRORS, Duration.minutes(5), errors_threshold, 3
            ),
            "violations": self._alarm("ViolationsAlarm", VIOLATIONS, Duration.hours(1), violations_threshold, 1),
        }
        self.queries: dict[str, str] = {}
        rows: list[list[cw.IWidget]] = [
            [self._ranked(FAILED_EXECUTIONS, top, 8), self._ranked(STARTED_EXECUTIONS, top, 8)],
            [self._ranked(m, top, 6) for m in (ENDPOINT_ERRORS, ENDPOINT_LATENCY, COMPONENT_ERRORS, COMPONENT_LATENCY)],
            [self._ranked(VIOLATIONS, top, 8)],
        ]
        alarms: list[cw.IAlarm] = list(self.alarms.values())
        if trigger is not None:
            rows[0] += _trigger_widgets(trigger)
            alarms += [trigger.dead_letter_alarm, trigger.errors_alarm]
        rows.append([cw.AlarmStatusWidget(title="Fleet alarms", alarms=alarms, width=24)])
        self.dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name,
            start=f"-PT{int(INSIGHTS_WINDOW.to_hours())}H",
            widgets=rows,
        )

    def _ranked(self, measure: FleetMeasure, top: int, width: int) -> cw.GraphWidget:
        query = measure.query(top)
        self.queries[measure.title] = query
        return cw.GraphWidget(
            title=f"{measure.title} (top {top})",
            # One bar per model over the dashboard's range; the label is the model's name.
            left=[cw.MathExpression(expression=query, label="", period=Duration.minutes(5))],
            view=cw.GraphWidgetView.BAR,
            set_period_to_time_range=True,
            legend_position=cw.LegendPosition.RIGHT,
            width=width,
        )

    def _alarm(self, id: str, measure: FleetMeasure, period: Duration, threshold: int, periods: int) -> cw.Alarm:
        alarm = cw.Alarm(
            self,
            id,
            alarm_description=(
                f"{self.node.path}: {measure.metric_name} over the fleet reached {threshold} "
                f"per {period.to_human_string()}; the dashboard's '{measure.title}' names the models"
            ),
            metric=cw.MathExpression(expression=measure.query(), period=period, label=measure.metric_name),
            threshold=threshold,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=periods,
            datapoints_to_alarm=min(periods, 2),
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        if self._topic is not None:
            alarm.add_alarm_action(cw_actions.SnsAction(self._topic))
        return alarm


def _trigger_widgets(trigger: FleetRetrainTrigger) -> list[cw.IWidget]:
    decisions = [trigger.metric_decisions(kind, label=kind) for kind in ("started", "pending", "failed", "invalid")]
    return [
        cw.GraphWidget(title="Fleet trigger decisions", left=decisions, width=4),
        cw.GraphWidget(
            title="Fleet trigger queues",
            left=[trigger.metric_dead_letter_messages(label="dead-letter messages")],
            right=[trigger.metric_queue_age(label="oldest message (s)")],
            width=4,
        ),
    ]
