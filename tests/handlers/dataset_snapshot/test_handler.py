"""The snapshot state machine's three handlers against moto: the events it sends, and malformed ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdk_mlops import datasets
from cdk_mlops.inventory import InventoryError
from cdk_mlops.lambdas.dataset_snapshot import handler
from tests.conftest import TEST_REGION
from tests.unit.test_inventory import BUCKET, DATASET, PREFIX, listed_rows, seed, split, tree, write_report

REPORTS = "inventory-reports"


@pytest.fixture
def s3(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto S3 with the data store bucket, and the functions' environment."""
    with mock_aws():
        client: Any = boto3.client("s3", region_name=TEST_REGION)
        for bucket in (BUCKET, REPORTS):
            client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": TEST_REGION})
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        monkeypatch.setenv("DATA_BUCKET", BUCKET)
        monkeypatch.setenv("INVENTORY_PREFIX", PREFIX)
        monkeypatch.delenv("REPORT_BUCKET", raising=False)
        monkeypatch.delenv("WORK_PREFIX", raising=False)
        monkeypatch.delenv("DATASETS", raising=False)
        yield client


def run(s3: Any, event: dict[str, Any]) -> dict[str, Any]:
    """The state machine: Plan, a Distributed Map of Shard over the work list (ItemSelector), Finalize."""
    plan = handler.plan(event, None)
    items = json.loads(s3.get_object(Bucket=plan["files_bucket"], Key=plan["files_key"])["Body"].read())
    for item in items:
        selected = {"file_index": item["file_index"], "key": item["key"], "bucket": item["bucket"], "plan": plan}
        handler.shard(json.loads(json.dumps(selected)), None)
    return handler.finalize(json.loads(json.dumps(plan)), None)


def test_the_state_machine_snapshots_the_newest_report(s3: Any, tmp_path: Path) -> None:
    files = seed(s3)
    rows = listed_rows(s3)
    write_report(s3, [rows[:3]], folder="2025-01-30T00-00Z")
    newest = write_report(s3, split(rows, 3))

    result = run(s3, {"dataset": DATASET})

    assert result["object_count"] == len(files)
    assert datasets.load_manifest(result["manifest"], s3=s3).sha256 == result["digest"]
    datasets.materialize(result["manifest"], tmp_path, s3=s3)
    assert tree(tmp_path) == files
    assert run(s3, {"dataset": DATASET, "report": newest})["manifest"] == result["manifest"]


def test_the_work_list_goes_to_the_report_bucket_when_a_work_prefix_is_set(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(s3)
    report = write_report(s3, split(listed_rows(s3), 2), bucket=REPORTS)
    monkeypatch.setenv("REPORT_BUCKET", REPORTS)
    monkeypatch.setenv("WORK_PREFIX", "work/")

    plan = handler.plan({"dataset": DATASET, "report": report}, None)

    assert plan["files_bucket"] == REPORTS
    assert plan["files_key"].startswith(f"work/{DATASET}/20250131T000000Z-")
    assert plan["files_key"].endswith("/files.json")
    assert len(json.loads(s3.get_object(Bucket=REPORTS, Key=plan["files_key"])["Body"].read())) == 2


def test_plan_without_any_report_says_when_one_comes(s3: Any) -> None:
    with pytest.raises(InventoryError, match=r"no inventory report under .* within 48 hours"):
        handler.plan({"dataset": DATASET}, None)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ([], "the plan event is list, not a JSON object"),
        ({}, "'dataset': dataset name None is a NoneType"),
        ({"dataset": "a/b"}, "'dataset': dataset name 'a/b' contains '/'"),
        ({"dataset": DATASET, "report": 3}, "'report' is 3, not a non-empty string"),
        ({"dataset": DATASET, "report": "https://x/y"}, "'report': 'https://x/y' is not an S3 URI"),
        ({"dataset": DATASET, "allow_empty": "yes"}, "'allow_empty' is 'yes', not true or false"),
    ],
)
def test_a_malformed_plan_event_names_the_field(s3: Any, event: Any, field: str) -> None:
    with pytest.raises(handler.InvalidEvent, match=field):
        handler.plan(event, None)


def test_plan_refuses_a_dataset_the_state_machine_does_not_snapshot(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATASETS", json.dumps(["other"]))
    with pytest.raises(handler.InvalidEvent, match=rf"'dataset' is '{DATASET}', which this state machine does not"):
        handler.plan({"dataset": DATASET}, None)


def test_a_reports_checksum_stands_for_its_manifest(s3: Any) -> None:
    # GIVEN the rule of a delivered report, which passes the last file S3 wrote
    seed(s3)
    report = write_report(s3, [listed_rows(s3)])
    # WHEN the state machine starts with it
    plan = handler.plan({"dataset": DATASET, "report": report.replace("manifest.json", "manifest.checksum")}, None)
    # THEN it plans the report's manifest
    assert plan["report"] == report


def test_plan_refuses_a_report_of_another_inventory(s3: Any) -> None:
    report = write_report(s3, [listed_rows(s3)])
    elsewhere = report.replace(PREFIX, "other-inventory/")
    with pytest.raises(handler.InvalidEvent, match="not a report of this inventory"):
        handler.plan({"dataset": DATASET, "report": elsewhere}, None)


def _good_shard_event(s3: Any) -> dict[str, Any]:
    seed(s3)
    report = write_report(s3, [listed_rows(s3)])
    plan = handler.plan({"dataset": DATASET, "report": report}, None)
    item = json.loads(s3.get_object(Bucket=BUCKET, Key=plan["files_key"])["Body"].read())[0]
    return {"file_index": 0, "key": item["key"], "bucket": item["bucket"], "plan": plan}


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda e: e.pop("file_index"), "'file_index' is None"),
        (lambda e: e.update(file_index="0"), "'file_index' is '0', not a whole number"),
        (lambda e: e.update(file_index=True), "'file_index' is True"),
        (lambda e: e.update(file_index=5), "'file_index' is 5, but the plan has 1 files"),
        (lambda e: e.pop("key"), "'key' is None, not a non-empty string"),
        (lambda e: e.update(bucket=["b"]), "'bucket' is \\['b'\\]"),
        (lambda e: e.update(md5=5), "'md5' is 5"),
        (lambda e: e.pop("plan"), "plan is NoneType, not the object the Plan step returns"),
        (lambda e: e["plan"].pop("index_key"), "plan.index_key is None"),
        (lambda e: e["plan"].update(dataset="../x"), "plan.dataset: dataset name '../x'"),
        (lambda e: e["plan"].update(index_key="manifests/other/x.json"), "plan.index_key 'manifests/other/x.json'"),
        (lambda e: e["plan"].update(schema="Key"), "plan.schema is 'Key', not a list"),
        (lambda e: e["plan"].update(file_count=-1), "plan.file_count is -1"),
        (lambda e: e["plan"].update(report="nope"), "plan.report: 'nope' is not an S3 URI"),
    ],
)
def test_a_malformed_shard_event_names_the_field(s3: Any, edit: Any, field: str) -> None:
    event = _good_shard_event(s3)
    edit(event)
    with pytest.raises(handler.InvalidEvent, match=field):
        handler.shard(event, None)


def test_a_plan_whose_schema_lacks_a_column_fails_naming_the_field(s3: Any) -> None:
    event = _good_shard_event(s3)
    event["plan"]["schema"] = ["Bucket", "Key"]
    with pytest.raises(handler.InvalidEvent, match=r"plan\.schema lacks VersionId"):
        handler.shard(event, None)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (None, "event is NoneType"),
        ({"dataset": DATASET}, "event.index_key is None"),
    ],
)
def test_a_malformed_finalize_event_names_the_field(s3: Any, event: Any, field: str) -> None:
    with pytest.raises(handler.InvalidEvent, match=field):
        handler.finalize(event, None)


def test_a_function_without_its_environment_says_so(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATA_BUCKET")
    with pytest.raises(RuntimeError, match="DATA_BUCKET is not set"):
        handler.plan({"dataset": DATASET}, None)
