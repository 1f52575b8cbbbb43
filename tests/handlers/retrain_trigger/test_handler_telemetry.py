"""What the handler tells the outside: JSON log lines, EMF metrics and the partial batch response.

The deployed function gets them from Powertools for AWS Lambda (``Logger``, ``Metrics``,
``BatchProcessor``); the alarms, the dashboards and the local AWS read these exact shapes.
"""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest

from cdk_mlops.lambdas.retrain_trigger import DECISION_DIMENSION, DECISIONS_METRIC
from cdk_mlops.lambdas.retrain_trigger import handler as handler_module
from tests.handlers.retrain_trigger.conftest import DATASET, PIPELINE, object_created, sqs_event, sqs_record
from tests.handlers.retrain_trigger.world import Aws


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def _emf_total(value: float | list[float]) -> float:
    """An EMF metric's value: a number, or an array of numbers CloudWatch records one by one."""
    return sum(value) if isinstance(value, list) else value


def test_decisions_are_logged_as_json_with_the_lambda_context(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a drop and an object of another bucket
    aws.env(MODE="COMMIT_MARKER")
    capsys.readouterr()

    # WHEN they arrive in one batch
    aws.deliver(*aws.drop("d1"), object_created("datasets/churn/x.csv", bucket="another-bucket"))

    # THEN each decision is one JSON line naming the invocation, the pipeline and what was decided
    lines = _lines(capsys.readouterr().out)
    decisions = {line["decision"]: line for line in lines if "decision" in line}
    started = decisions["started"]
    assert (started["level"], started["service"], started["message"]) == ("INFO", "retrain-trigger", "retrain decision")
    assert started["function_request_id"] == aws.context.aws_request_id
    assert started["function_name"] == aws.context.function_name
    assert started["pipeline"] == PIPELINE
    assert started["dataset"] == DATASET
    assert started["execution_arn"] == aws.executions()[0]
    assert decisions["ignored"]["reason"] == "object in another bucket"
    # AND fields without a value are left out rather than written as null
    assert all(value is not None for line in lines for value in line.values())


def test_times_in_log_lines_are_iso_8601(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN quiet-period mode, WHEN objects arrive THEN the wait names its end in ISO 8601
    aws.env(MODE="QUIET_PERIOD", QUIET_PERIOD_SECONDS=300)
    capsys.readouterr()
    assert aws.deliver(*aws.drop("d1", marker=False)) == []
    [waiting] = [line for line in _lines(capsys.readouterr().out) if line.get("decision") == "waiting"]
    assert waiting["until"] == "2025-03-04T10:05:00+00:00"


def test_decision_counts_are_emf_metrics_with_the_one_dimension_the_alarms_read(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a service name in the environment, which Powertools would add as a dimension
    aws.env(MODE="COMMIT_MARKER", POWERTOOLS_SERVICE_NAME="retrain-trigger")
    capsys.readouterr()

    # WHEN a batch starts one run and ignores two objects of another bucket
    foreign = [object_created(f"datasets/churn/{n}.csv", bucket="another-bucket") for n in ("x", "y")]
    aws.deliver(*aws.drop("d1"), *foreign)

    # THEN one EMF line per decision kind, in the namespace and with only the dimension that
    # RetrainTrigger.metric_decisions (and so every alarm and dashboard) reads
    metrics = {line[DECISION_DIMENSION]: line for line in _lines(capsys.readouterr().out) if "_aws" in line}
    assert {kind: _emf_total(line[DECISIONS_METRIC]) for kind, line in metrics.items()} == {"started": 1, "ignored": 2}
    expected = {
        "Namespace": "Test/Retrain",
        "Dimensions": [["Decision"]],
        "Metrics": [{"Name": "Decisions", "Unit": "Count"}],
    }
    for line in metrics.values():
        assert line["_aws"]["CloudWatchMetrics"] == [expected]
        assert "service" not in line


def test_log_lines_go_to_the_stdout_of_each_invocation(aws: Aws) -> None:
    # GIVEN an invocation whose stdout is captured, as the local AWS captures it
    aws.env(MODE="COMMIT_MARKER")
    records = [sqs_record(event) for event in aws.drop("d1")]
    aws.monkeypatch.setattr(handler_module, "_now", lambda: aws.now)
    captured = io.StringIO()

    # WHEN the handler runs
    with contextlib.redirect_stdout(captured):
        handler_module.handler(sqs_event(records), aws.context)

    # THEN its decisions and metrics are in that capture
    lines = _lines(captured.getvalue())
    assert [line["decision"] for line in lines if "decision" in line] == ["started"]
    assert any("_aws" in line for line in lines)


def test_records_without_a_usable_message_id_never_fail_the_batch(aws: Aws) -> None:
    # GIVEN a broken message with an id, and records Lambda never sends: no id, an id that is not
    # a string, not an object at all
    aws.env(MODE="COMMIT_MARKER")
    broken = sqs_record("{not json")
    no_id = {key: value for key, value in sqs_record("{not json").items() if key != "messageId"}
    list_id = {**sqs_record("{not json"), "messageId": ["m-1"]}

    # WHEN they arrive in one batch THEN only the record that can be reported is handed back,
    # and nothing crashes
    assert aws.invoke([broken, no_id, list_id, "not a record"]) == [broken["messageId"]]  # type: ignore[list-item]
    assert aws.executions() == []
