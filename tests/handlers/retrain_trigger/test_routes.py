"""Route documents of the shared trigger: what is read, what is refused, and why (pure)."""

from __future__ import annotations

import json

import pytest

from cdk_mlops.lambdas.retrain_trigger.events import AlarmStateChange, MonitorViolation, RetrainCheck
from cdk_mlops.lambdas.retrain_trigger.routes import RouteTable, Unrouted, parse_route, route_document

SHARED = {"DATA_BUCKET": "bucket", "STATE_TABLE": "table", "QUEUE_URL": "https://sqs/q", "PIPELINE_NAME": "ignored"}
PATH = "/cdk-mlops/retrain-routes/x"


def _text(pipeline: str = "prod-churn", **settings: str) -> str:
    values = {"PIPELINE_NAME": pipeline, "DATASETS": '["churn"]', "MODEL_PACKAGE_GROUP_NAME": f"{pipeline}-models"}
    return json.dumps(route_document({**values, **settings}, monitoring_schedules=["s1"], drift_alarms=["prod-a"]))


def test_a_route_is_read_over_the_shared_environment_and_keeps_its_own_settings() -> None:
    route = parse_route(f"{PATH}/prod-churn", _text(COOLDOWN_SECONDS="60"), SHARED)
    assert route.settings.pipeline_name == "prod-churn"  # the route's, not the shared PIPELINE_NAME
    assert route.settings.state_table == "table"
    assert route.settings.cooldown.total_seconds() == 60
    assert (route.monitoring_schedules, route.drift_alarms) == (("s1",), ("prod-a",))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("not json", "not JSON"),
        ('{"format": 2, "settings": {}}', "format 1"),
        ('{"format": 1, "settings": {"DATASETS": 1}}', "settings must be an object of strings"),
        (_text(STATE_TABLE="mine"), "['STATE_TABLE'] are not route settings"),
        (_text(MODE="SOMETIMES"), "MODE='SOMETIMES'"),
        (_text(pipeline="prod-other"), "names pipeline 'prod-other'"),
        (json.dumps({"format": 1, "settings": {}, "driftAlarms": [""]}), "driftAlarms must be a list of names"),
    ],
)
def test_a_bad_route_is_refused_with_its_parameter_and_the_problem(text: str, expected: str) -> None:
    with pytest.raises(ValueError, match=f"route {PATH}/prod-churn: .*{expected}".replace("[", r"\[")):
        parse_route(f"{PATH}/prod-churn", text, SHARED)


def test_a_table_keeps_its_good_routes_and_names_the_broken_ones() -> None:
    table = RouteTable.read([(f"{PATH}/prod-churn", _text()), (f"{PATH}/prod-bad", "{")], SHARED)
    assert list(table.routes) == ["prod-churn"]
    assert list(table.broken) == [f"{PATH}/prod-bad"]


def test_alarms_violations_and_checks_reach_the_routes_that_name_them() -> None:
    table = RouteTable.read([(f"{PATH}/prod-churn", _text())], SHARED)
    alarm = AlarmStateChange("e", None, "prod-a", "ALARM", None)
    assert table.pipelines_for(alarm, "bucket") == ["prod-churn"]
    violation = MonitorViolation("e", None, None, "s1", "job", 2)
    assert table.pipelines_for(violation, "bucket") == ["prod-churn"]
    assert isinstance(table.pipelines_for(MonitorViolation("e", None, "churn", None, "j", 1), "b"), Unrouted)
    check = RetrainCheck("e", None, "PROD-CHURN", "churn", None)  # type: ignore[arg-type]
    assert table.pipelines_for(check, "bucket") == ["prod-churn"]
