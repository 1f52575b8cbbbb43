"""Ground-truth labels: AWS's documented record shape, the hourly path format, and clear errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdk_mlops import ground_truth
from cdk_mlops.ground_truth import Label, LabelError, ground_truth_key, label_record, write_labels

BUCKET = "team-data"
AT = datetime(2026, 12, 4, 13, 45, 10, tzinfo=UTC)

#: The record of SageMaker's "Ingest Ground Truth labels and merge them with predictions", as documented.
DOCUMENTED = {"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "aaaa-bbbb-cccc"},
              "eventVersion": "0"}  # fmt: skip


def _shape(value: Any) -> Any:
    """The keys and value types of a JSON document, recursively."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    return type(value).__name__


def test_a_record_has_exactly_the_documented_shape_and_values() -> None:
    record = label_record(Label("aaaa-bbbb-cccc", 1))
    assert record == DOCUMENTED
    assert _shape(label_record(Label("id-2", 0.25))) == _shape(DOCUMENTED)
    assert label_record(Label("id-3", "churn"))["groundTruthData"] == {"data": "churn", "encoding": "CSV"}


def test_the_key_is_the_capture_path_format_in_utc_hours() -> None:
    assert (
        ground_truth_key("churn-endpoint", AT, "batch-1") == "ground-truth/churn-endpoint/2026/12/04/13/batch-1.jsonl"
    )
    # 01:30 at UTC+2 is 23:30 the day before in UTC
    local = datetime(2026, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    assert ground_truth_key("e", local, "x") == "ground-truth/e/2025/12/31/23/x.jsonl"
    assert ground_truth_key("e", AT) != ground_truth_key("e", AT)  # random names: writers never collide


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: ground_truth.ground_truth_prefix("bad_name"),
            "'bad_name' is not an endpoint or batch transform job name",
        ),
        (lambda: ground_truth.ground_truth_prefix("-x"), "'-x' is not an endpoint"),
        (lambda: ground_truth_key("e", datetime(2026, 1, 1)), "has no time zone; pass an aware datetime"),
        (lambda: label_record(Label("", 1)), "inference id '' is not one InvokeEndpoint accepts"),
        (lambda: label_record(Label("   ", 1)), "inference id '   ' is not one"),
        (lambda: label_record(Label("x" * 65, 1)), "is not one InvokeEndpoint accepts; use the 1 to 64"),
        (lambda: label_record(Label("id", True)), "label True of 'id' must be a string or a finite number"),
        (lambda: label_record(Label("id", float("nan"))), "label nan of 'id' must be"),
        (lambda: label_record(Label("id", None)), "label None of 'id' must be"),  # type: ignore[arg-type]
    ],
)
def test_bad_input_is_refused_with_what_and_how(call: Any, message: str) -> None:
    with pytest.raises(LabelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_the_longest_inference_id_is_accepted() -> None:
    assert label_record(Label("x" * 64, 1))["eventMetadata"] == {"eventId": "x" * 64}


@mock_aws
def test_labels_are_written_as_json_lines_in_the_hour_folder() -> None:
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})

    uri = write_labels(BUCKET, "churn-endpoint", [Label("a", 1), Label("b", 0)], at=AT, s3=s3)

    key = uri.removeprefix(f"s3://{BUCKET}/")
    assert key.startswith("ground-truth/churn-endpoint/2026/12/04/13/")
    assert key.endswith(".jsonl")
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    assert [json.loads(line) for line in body.splitlines()] == [
        label_record(Label("a", 1)),
        label_record(Label("b", 0)),
    ]
    assert body.endswith("\n")


@mock_aws
def test_a_bad_label_writes_nothing() -> None:
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    with pytest.raises(LabelError):
        write_labels(BUCKET, "e", [Label("a", 1), Label("", 0)], at=AT, s3=s3)
    with pytest.raises(LabelError, match="no labels given"):
        write_labels(BUCKET, "e", [], at=AT, s3=s3)
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
