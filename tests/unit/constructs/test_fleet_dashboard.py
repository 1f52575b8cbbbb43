"""FleetDashboard: one dashboard and four alarms for a fleet, Metrics Insights queries by model.

The queries are checked against the syntax CloudWatch documents for Metrics Insights, the alarms
as the ``PutMetricAlarm`` requests CloudFormation makes (botocore's model), and the measures
against the metrics the library's per-model constructs read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from cdk_mlops import FleetDashboard, FleetRetrainTrigger, VersionedDataStore
from cdk_mlops.constructs.fleet_dashboard import (
    COMPONENT_ERRORS,
    ENDPOINT_ERRORS,
    FAILED_EXECUTIONS,
    INSIGHTS_FUNCTIONS,
    VIOLATIONS,
    FleetMeasure,
)
from cdk_mlops.constructs.model_monitor.violations import METRICS_NAMESPACE as MONITOR_NAMESPACE
from cdk_mlops.errors import ConfigurationError
from tests.contracts.botocore_checks import request_problems, service_model
from tests.quality import cfn_lint_findings, logical_id, nag_findings, resolve_like_cloudformation

ENV = cdk.Environment(account="123456789012", region="eu-west-1")

#: The Metrics Insights syntax as CloudWatch documents it: SELECT FUNCTION(metric) FROM SCHEMA(namespace,
#: label keys) [GROUP BY key] [ORDER BY FUNCTION() DESC|ASC] [LIMIT n]. A namespace with "/" is quoted.
INSIGHTS = re.compile(
    r'^SELECT (?P<function>[A-Z]+)\((?P<metric>\w+)\) FROM SCHEMA\("(?P<namespace>[^"]+)"(?P<keys>(?:, \w+)+)\)'
    r"(?: GROUP BY (?P<group>\w+) ORDER BY (?P<order>[A-Z]+)\(\) (?:DESC|ASC) LIMIT (?P<limit>\d+))?$"
)


@dataclass(frozen=True)
class Built:
    stack: cdk.Stack
    dashboard: FleetDashboard
    trigger: FleetRetrainTrigger
    template: Template


@pytest.fixture(scope="module")
def built() -> Built:
    stack = cdk.Stack(cdk.App(), "Fleet", env=ENV)
    store = VersionedDataStore(stack, "Data", datasets=["churn"])
    key = kms.Key(stack, "AlertsKey", enable_key_rotation=True)
    alerts = sns.Topic(stack, "Alerts", master_key=key, enforce_ssl=True)
    trigger = FleetRetrainTrigger(stack, "Retrain", data_store=store, pipeline_name_prefix="prod-", alarm_topic=alerts)
    dashboard = FleetDashboard(
        stack, "FleetDashboard", dashboard_name="prod-fleet", trigger=trigger, alarm_topic=alerts, top=20
    )
    return Built(stack, dashboard, trigger, Template.from_stack(stack))


def _body(built: Built) -> dict[str, Any]:
    [dashboard] = built.template.find_resources("AWS::CloudWatch::Dashboard").values()
    resolved = resolve_like_cloudformation(dashboard["Properties"]["DashboardBody"], built.template.to_json())
    body: dict[str, Any] = json.loads(resolved)
    return body


def _widget_queries(body: dict[str, Any]) -> list[str]:
    return [
        entry["expression"]
        for widget in body["widgets"]
        for row in widget.get("properties", {}).get("metrics", [])
        for entry in row
        if isinstance(entry, dict) and "expression" in entry
    ]


def test_the_dashboard_is_one_resource_and_the_alarms_four(built: Built) -> None:
    mine = [c for c in built.dashboard.node.find_all() if isinstance(c, cdk.CfnResource)]
    assert sorted(c.cfn_resource_type for c in mine) == ["AWS::CloudWatch::Alarm"] * 4 + ["AWS::CloudWatch::Dashboard"]
    assert set(built.dashboard.alarms) == {"failed_executions", "endpoint_errors", "component_errors", "violations"}


def test_every_widget_query_is_documented_metrics_insights_syntax_grouped_by_model(built: Built) -> None:
    queries = _widget_queries(_body(built))
    assert sorted(queries) == sorted(built.dashboard.queries.values())
    assert len(queries) == 7
    for query in queries:
        found = INSIGHTS.match(query)
        assert found is not None, query
        keys = [k.strip() for k in found["keys"].split(",") if k.strip()]
        assert found["function"] in INSIGHTS_FUNCTIONS
        assert found["order"] == found["function"]
        # THEN each row is a model: grouped by the dimension that names it, the top 20 worst first
        assert found["group"] == keys[0]
        assert int(found["limit"]) == 20
        assert "/" not in found["namespace"] or query.count('"') == 2


def test_each_widget_ranks_models_over_the_whole_range_as_bars(built: Built) -> None:
    body = _body(built)
    ranked = [w["properties"] for w in body["widgets"] if "(top 20)" in w.get("properties", {}).get("title", "")]
    assert len(ranked) == 7
    for properties in ranked:
        assert properties["view"] == "bar"
        assert properties["setPeriodToTimeRange"] is True
    # Metrics Insights reads the last 3 hours; the dashboard opens on them
    assert body["start"] == "-PT3H"


def test_the_alarms_are_valid_put_metric_alarm_requests_on_one_series(built: Built) -> None:
    template = built.template.to_json()
    # The contract: an alarm's expression must return a single time series (botocore's documentation).
    documentation = service_model("cloudwatch").shape_for("MetricDataQuery").documentation
    assert "must return a single time series" in documentation
    for name, alarm in built.dashboard.alarms.items():
        properties = resolve_like_cloudformation(
            template["Resources"][logical_id(alarm)]["Properties"], template, service_arns=True
        )
        params = {"AlarmName": f"prod-fleet-{name}", **properties}
        assert request_problems("PutMetricAlarm", params, service="cloudwatch") == [], name
        [query] = params["Metrics"]
        assert INSIGHTS.match(query["Expression"]) is not None
        assert "GROUP BY" not in query["Expression"], "an alarm's query must return one time series"
        assert query["Period"] in (300, 3600)
        assert query["ReturnData"] is True
        assert params["TreatMissingData"] == "notBreaching"
        assert len(params["AlarmActions"]) == 1


def test_the_measures_are_what_the_per_model_constructs_read() -> None:
    # Pipelines: the namespace and dimension of TrainingPipeline's execution metrics
    from cdk_mlops.constructs.common import PIPELINE_METRICS_NAMESPACE

    assert (FAILED_EXECUTIONS.namespace, FAILED_EXECUTIONS.dimensions) == (
        PIPELINE_METRICS_NAMESPACE,
        ("PipelineName",),
    )
    assert (ENDPOINT_ERRORS.metric_name, ENDPOINT_ERRORS.dimensions) == (
        "Invocation5XXErrors",
        ("EndpointName", "VariantName"),
    )
    assert COMPONENT_ERRORS.dimensions == ("InferenceComponentName",)
    # Monitor violations: what ModelMonitor's publisher puts (namespace, metric and its one dimension)
    assert (VIOLATIONS.namespace, VIOLATIONS.metric_name, VIOLATIONS.dimensions) == (
        MONITOR_NAMESPACE,
        "Violations",
        ("MonitoringSchedule",),
    )


def test_a_measure_queries_the_fleet_total_or_the_top_models() -> None:
    measure = FleetMeasure("t", "AWS/Sagemaker/ModelBuildingPipeline", "ExecutionFailed", ("PipelineName",))
    assert (
        measure.query()
        == 'SELECT SUM(ExecutionFailed) FROM SCHEMA("AWS/Sagemaker/ModelBuildingPipeline", PipelineName)'
    )
    assert measure.query(5).endswith(" GROUP BY PipelineName ORDER BY SUM() DESC LIMIT 5")


def test_the_trigger_joins_the_dashboard_with_its_alarms(built: Built) -> None:
    body = json.dumps(_body(built))
    assert "Fleet trigger decisions" in body
    assert "Fleet trigger queues" in body
    alarms = [w for w in _body(built)["widgets"] if w["type"] == "alarm"]
    [status] = alarms
    assert len(status["properties"]["alarms"]) == 6


def test_the_stack_is_lint_and_nag_clean(built: Built) -> None:
    assert cfn_lint_findings(built.template.to_json(), region="eu-west-1") == []
    assert nag_findings(built.stack) == []


def test_every_bad_argument_is_reported_at_once_and_nothing_is_created() -> None:
    stack = cdk.Stack(cdk.App(), "S", env=ENV)
    with pytest.raises(ConfigurationError) as raised:
        FleetDashboard(
            stack,
            "Fleet",
            dashboard_name="prod fleet!",
            top=501,
            failed_executions_threshold=0,
            errors_threshold=0,
            violations_threshold=0,
        )
    message = str(raised.value)
    for expected in (
        "dashboard_name 'prod fleet!'",
        "top=501",
        "failed_executions_threshold=0",
        "errors_threshold=0",
        "violations_threshold=0",
    ):
        assert expected in message
    assert stack.node.try_find_child("Fleet") is None


@pytest.mark.parametrize("top", [1, 500])
def test_top_takes_the_documented_range(top: int) -> None:
    stack = cdk.Stack(cdk.App(), "S", env=ENV)
    dashboard = FleetDashboard(stack, "Fleet", top=top)
    assert all(query.endswith(f"LIMIT {top}") for query in dashboard.queries.values())
