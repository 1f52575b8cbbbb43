"""End to end: a dataset version taken by the deployed snapshot state machine from an S3 Inventory report.

On the shared Dev deployment (tests/e2e/dev/conftest.py). The local AWS plays S3's part (it
delivers the report the deployed inventory configuration asks for, :mod:`cdk_mlops.local.s3_inventory`),
EventBridge's (the deployed rule starts an execution with its target's input,
:mod:`cdk_mlops.local.event_targets`) and Step Functions' (it runs the deployed definition, its
functions in this process, :mod:`cdk_mlops.local.stepfunctions`); the functions' code computes
the version. The version is
then checked against the objects themselves and against the Lambda path's snapshot of the same data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cdk_mlops import datasets
from cdk_mlops.constructs.inventory_snapshot import INVENTORY_ID
from cdk_mlops.local.cfn_s3 import inventory_configurations
from cdk_mlops.local.event_targets import started_inputs
from cdk_mlops.local.s3_inventory import publish_inventory_report
from cdk_mlops.local.stepfunctions import ExecutionResult, run_state_machine
from tests.e2e.conftest import Deployment

pytestmark = pytest.mark.e2e

# The Dev stage's dataset; the objects written here are under a folder of their own, and are removed
# (every version) when the module ends, so the loop and batch scoring see the data they wrote.
DATASET = "churn"
PREFIX = f"datasets/{DATASET}/inventory-e2e/"
ESCAPING_KEY = f"datasets/{DATASET}/../elsewhere/x.csv"


@dataclass
class Snapshot:
    stage: Deployment
    data_bucket: str
    report_bucket: str
    report: str
    started: dict[str, Any]
    execution: ExecutionResult
    expected: dict[str, bytes]

    def client(self, service: str) -> Any:
        return self.stage.aws.client(service)


@pytest.fixture(scope="module")
def snapshot(dev_stage: Deployment) -> Iterator[Snapshot]:
    assert not dev_stage.destroyed, "the snapshot runs on the deployed stage; the destroy tests run last"
    s3 = dev_stage.aws.client("s3")
    data_bucket = dev_stage.the_one("AWS::S3::Bucket", "StoreBucket", stack_suffix="-Data")
    report_bucket = dev_stage.the_one("AWS::S3::Bucket", "SnapshotsReports", stack_suffix="-Data")
    machine = dev_stage.the_one("AWS::StepFunctions::StateMachine", "SnapshotsStateMachine", stack_suffix="-Data")
    manifests = f"manifests/{DATASET}/"
    before = set(_versions(s3, data_bucket, manifests))
    expected: dict[str, bytes] = {}
    for index in range(30):
        key, body = f"{PREFIX}part-{index:03d}.csv", f"id,value\n{index},{index * index}\n".encode()
        s3.put_object(Bucket=data_bucket, Key=key, Body=body)
        expected[key] = body
    # An overwritten object counts with its newest version; a deleted one not at all.
    s3.put_object(Bucket=data_bucket, Key=f"{PREFIX}part-000.csv", Body=b"id,value\n0,-1\n")
    expected[f"{PREFIX}part-000.csv"] = b"id,value\n0,-1\n"
    s3.put_object(Bucket=data_bucket, Key=f"{PREFIX}gone.csv", Body=b"x")
    s3.delete_object(Bucket=data_bucket, Key=f"{PREFIX}gone.csv")
    # A key that escapes its dataset is left out of the version, with the reason, not trained on.
    s3.put_object(Bucket=data_bucket, Key=ESCAPING_KEY, Body=b"no")

    account = dev_stage.aws.account_id()
    configuration = inventory_configurations(account, dev_stage.aws.region, data_bucket)[INVENTORY_ID]
    # Several data files, as S3 writes for a large bucket: one worker each.
    report = publish_inventory_report(s3, source_bucket=data_bucket, configuration=configuration, rows_per_file=7)
    # S3 writes the report's manifest.checksum last; the deployed rule starts a snapshot with it.
    (started,) = started_inputs(dev_stage.aws, machine)
    execution = run_state_machine(dev_stage.aws, machine, started, name="churn-e2e")
    yield Snapshot(dev_stage, data_bucket, report_bucket, report, started, execution, expected)
    # The versions this module wrote (objects and manifests) go, as if it had never run.
    written = [*_versions(s3, data_bucket, PREFIX), *_versions(s3, data_bucket, ESCAPING_KEY)]
    written += [v for v in _versions(s3, data_bucket, manifests) if v not in before]
    for key, version_id in written:
        s3.delete_object(Bucket=data_bucket, Key=key, VersionId=version_id)
    # So do their Object Created events, which wait in the triggers' queues: the loop counts its own.
    sqs = dev_stage.aws.client("sqs")
    for st, logical_id, _ in dev_stage.resources("AWS::SQS::Queue"):
        if "DeadLetter" not in logical_id:
            sqs.purge_queue(QueueUrl=dev_stage.physical_id(st, logical_id))


def test_the_deployed_inventory_lists_every_version_of_the_datasets_as_csv(snapshot):
    manifest = json.loads(_object(snapshot, snapshot.report))
    assert manifest["fileFormat"] == "CSV"
    assert manifest["fileSchema"].split(", ")[:5] == ["Bucket", "Key", "VersionId", "IsLatest", "IsDeleteMarker"]
    assert len(manifest["files"]) > 1


def test_the_delivered_report_started_one_snapshot_of_the_dataset(snapshot):
    # The deployed rule's input, from S3's Object Created event for the report's last file.
    checksum = snapshot.report.replace("manifest.json", "manifest.checksum")
    assert snapshot.started == {"dataset": DATASET, "report": checksum}


def test_the_execution_plans_shards_each_report_file_and_finalizes(snapshot):
    execution = snapshot.execution
    assert (execution.status, execution.error, execution.cause) == ("SUCCEEDED", None, None)
    (run,) = execution.map_runs
    assert run.failed == 0
    assert run.succeeded == len(json.loads(_object(snapshot, snapshot.report))["files"])
    # The map's record of its workers is in the report bucket, where ResultWriter put it.
    assert run.result_writer is not None
    assert run.result_writer["Bucket"] == snapshot.report_bucket


def test_the_version_holds_exactly_the_current_objects_and_restores_them_byte_for_byte(snapshot, tmp_path: Path):
    uri = snapshot.execution.output["manifest"]
    s3 = snapshot.client("s3")
    entries = {e.key: e for e in datasets.iter_entries(uri, s3=s3) if e.key.startswith(PREFIX)}
    assert set(entries) == set(snapshot.expected)
    root = tmp_path / "restored"
    manifest = datasets.load_manifest(uri, s3=s3)
    datasets.materialize(manifest, root, s3=s3)
    for key, body in snapshot.expected.items():
        assert (root / manifest.relative_key(entries[key])).read_bytes() == body
    assert [x.key for x in manifest.excluded if "elsewhere" in x.key] == [ESCAPING_KEY]


def test_the_version_says_what_time_it_covers(snapshot):
    report_manifest = json.loads(_object(snapshot, snapshot.report))
    as_of = datetime.strptime(snapshot.execution.output["as_of"], "%Y-%m-%dT%H:%M:%S%z")
    assert as_of.timestamp() == int(report_manifest["creationTimestamp"]) // 1000


def test_the_lambda_paths_snapshot_of_the_same_data_is_the_same_version(snapshot):
    s3 = snapshot.client("s3")
    by_lambda = datasets.snapshot(snapshot.data_bucket, DATASET, s3=s3)
    assert by_lambda.uri is not None
    difference = datasets.diff_uris(by_lambda.uri, snapshot.execution.output["manifest"], s3=s3)
    assert difference.identical, difference.to_dict()


def _versions(s3: Any, bucket: str, prefix: str) -> list[tuple[str, str]]:
    """(key, version id) of every version and delete marker under ``prefix``."""
    found: list[tuple[str, str]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        found += [(v["Key"], v["VersionId"]) for v in (*page.get("Versions", ()), *page.get("DeleteMarkers", ()))]
    return found


def _object(snapshot: Snapshot, uri: str) -> bytes:
    bucket, key = datasets.parse_s3_uri(uri)
    body: bytes = snapshot.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return body
