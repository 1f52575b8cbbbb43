"""Metrics, alarms and dashboard of a model endpoint's variant.

:class:`ModelEndpoint` builds on :class:`_EndpointMonitoring`: the ``metric_*`` methods reuse one
pair of dimensions (``EndpointName``, ``VariantName``); the rollback alarms, the opt-in
severity-keyed alarms and the dashboard are built from those metrics, and every alarm notifies
the endpoint's alarm topic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Duration, Token
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from constructs import Construct, IConstruct

from cdk_mlops.config import EndpointKind
from cdk_mlops.constructs.common import metric_props
from cdk_mlops.constructs.model_endpoint.settings import ErrorCountThreshold, LatencyThreshold, RolloutSettings

#: CloudWatch namespace of invocation metrics (dimensions ``EndpointName``, ``VariantName``).
SAGEMAKER_NAMESPACE = "AWS/SageMaker"
#: CloudWatch namespace of instance and container utilization metrics of endpoints.
ENDPOINT_INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"


class _EndpointMonitoring(Construct):
    """The metrics of one endpoint variant, and the alarms and dashboard built on them.

    The subclass sets the attributes below before it calls the alarm and dashboard builders.
    """

    endpoint_name: str
    kind: EndpointKind
    rollback_alarms: list[cw.Alarm]
    latency_alarms: dict[str, cw.Alarm]
    error_alarms: dict[str, cw.Alarm]
    _dimensions: dict[str, str]
    _alarm_topic: sns.ITopic | None

    # ------------------------------------------------------------------ alarms and dashboard

    @property
    def alarms(self) -> list[cw.Alarm]:
        """Every alarm this construct created: rollback alarms, then opt-in latency and 5XX alarms."""
        return [*self.rollback_alarms, *self.latency_alarms.values(), *self.error_alarms.values()]

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

    def _dashboard(self) -> cw.Dashboard:
        latency = cw.GraphWidget(
            title="Model latency (microseconds)",
            left=[
                self.metric_model_latency(statistic="p50", label="p50"),
                self.metric_model_latency(label="p90"),
                self.metric_model_latency(statistic="p99", label="p99"),
                # Asynchronous endpoints publish no OverheadLatency.
                *([] if self.kind is EndpointKind.ASYNC else [self.metric_overhead_latency(label="overhead p90")]),
            ],
            width=6,
        )
        errors = cw.GraphWidget(title="Errors", left=[self.metric_4xx(), self.metric_5xx()], width=6)
        if self.kind is EndpointKind.ASYNC:
            # Nor Invocations or InvocationsPerInstance: the queue shows the load instead.
            load: cw.IWidget = cw.GraphWidget(
                title="Queue",
                left=[self.metric_backlog_size()],
                right=[self.metric_age_of_oldest_request()],
                width=6,
            )
            capacity = cw.GraphWidget(
                title="Capacity",
                left=[self.metric_backlog_size_per_instance()],
                right=[self.metric_cpu_utilization(), self.metric_memory_utilization()],
                width=6,
            )
        else:
            realtime = self.kind is EndpointKind.REALTIME
            load = cw.GraphWidget(title="Invocations", left=[self.metric_invocations()], width=6)
            capacity = cw.GraphWidget(
                title="Capacity" if realtime else "Cold starts and memory",
                left=[self.metric_invocations_per_instance()] if realtime else [self.metric_model_setup_time()],
                right=[
                    *([self.metric_cpu_utilization()] if realtime else []),
                    self.metric_memory_utilization(),
                ],
                width=6,
            )
        widgets: list[list[cw.IWidget]] = [[load, latency, errors, capacity]]
        alarms = self.alarms
        if alarms:
            widgets.append([cw.AlarmStatusWidget(title="Alarms", alarms=alarms, width=24)])
        name = self.endpoint_name if not Token.is_unresolved(self.endpoint_name) else None
        return cw.Dashboard(self, "Dashboard", dashboard_name=name, widgets=widgets)

    # ------------------------------------------------------------------ metrics

    def metric(self, metric_name: str, *, namespace: str = SAGEMAKER_NAMESPACE, **options: Any) -> cw.Metric:
        """A metric of this endpoint's variant (dimensions ``EndpointName`` and ``VariantName``).

        Args:
            metric_name: e.g. ``Invocations``.
            namespace: Default: - ``AWS/SageMaker``.
            options: ``cw.MetricOptions`` keywords. Default: - Sum over 5 minutes.
        """
        props = metric_props(
            self, "metric", options, dimensions=self._dimensions, statistic="Sum", period=Duration.minutes(5)
        )
        return cw.Metric(namespace=namespace, metric_name=metric_name, **props)

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

    def metric_backlog_size(self, **options: Any) -> cw.Metric:
        """Average ``ApproximateBacklogSize`` per minute: requests queued or in progress; asynchronous only."""
        return queue_metric(self, self.endpoint_name, "ApproximateBacklogSize", options)

    def metric_backlog_size_per_instance(self, **options: Any) -> cw.Metric:
        """Average ``ApproximateBacklogSizePerInstance`` per minute (what autoscaling tracks); asynchronous only."""
        return queue_metric(self, self.endpoint_name, "ApproximateBacklogSizePerInstance", options)

    def metric_age_of_oldest_request(self, **options: Any) -> cw.Metric:
        """Maximum ``ApproximateAgeOfOldestRequest`` (seconds) per minute; asynchronous only."""
        return queue_metric(
            self, self.endpoint_name, "ApproximateAgeOfOldestRequest", {"statistic": "Maximum", **options}
        )

    def metric_has_backlog_without_capacity(self, **options: Any) -> cw.Metric:
        """Average ``HasBacklogWithoutCapacity`` per minute: 1 while requests wait and no instance runs.

        Asynchronous endpoints only.
        """
        return queue_metric(self, self.endpoint_name, "HasBacklogWithoutCapacity", options)

    def metric_cpu_utilization(self, **options: Any) -> cw.Metric:
        """Average ``CPUUtilization`` (percent, summed over cores) over 5 minutes; instances only (not serverless)."""
        return self.metric(
            "CPUUtilization", namespace=ENDPOINT_INSTANCE_NAMESPACE, **{"statistic": "Average", **options}
        )

    def metric_memory_utilization(self, **options: Any) -> cw.Metric:
        """Average ``MemoryUtilization`` (percent) over 5 minutes."""
        return self.metric(
            "MemoryUtilization", namespace=ENDPOINT_INSTANCE_NAMESPACE, **{"statistic": "Average", **options}
        )


def queue_metric(scope: IConstruct, endpoint_name: str, metric_name: str, options: Mapping[str, Any]) -> cw.Metric:
    """A metric of an asynchronous endpoint's queue: dimension ``EndpointName`` only, Average per minute.

    Args:
        scope: The endpoint construct (names the caller in option errors).
        endpoint_name: The endpoint's name.
        metric_name: e.g. ``ApproximateBacklogSizePerInstance``.
        options: ``cw.MetricOptions`` keywords over the defaults.
    """
    props = metric_props(
        scope,
        "metric",
        options,
        dimensions={"EndpointName": endpoint_name},
        statistic="Average",
        period=Duration.minutes(1),
    )
    return cw.Metric(namespace=SAGEMAKER_NAMESPACE, metric_name=metric_name, **props)


def _microseconds(duration: Duration) -> float:
    """A duration as a ``ModelLatency`` threshold (the metric is in microseconds)."""
    return duration.to_milliseconds(integral=False) * 1000
