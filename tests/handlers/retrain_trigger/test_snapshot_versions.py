"""Datasets versioned by InventorySnapshot: a succeeded snapshot starts exactly one run on its version.

The versions are real: objects go to moto's S3, ``cdk_mlops.local.s3_inventory`` delivers the
inventory report as S3 does, and the snapshot engine (``cdk_mlops.inventory``: plan, one shard
per inventory file, finalize, as the state machine runs them) writes the sharded version. Its
output reaches the trigger in AWS's ``Step Functions Execution Status Change`` event.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pytest

from cdk_mlops import datasets, inventory, manifest_shards
from cdk_mlops.constructs.inventory_snapshot import INVENTORY_ID, REPORTS_PREFIX
from cdk_mlops.lambdas.retrain_trigger import core
from cdk_mlops.lambdas.retrain_trigger import handler as handler_module
from cdk_mlops.lambdas.retrain_trigger.events import (
    SNAPSHOT_INDEX_SCHEMA,
    Invalid,
    SnapshotFinished,
    parse_event,
    snapshot_from_index,
)
from cdk_mlops.local.s3_inventory import publish_inventory_report
from tests.handlers.retrain_trigger.conftest import ACCOUNT, BUCKET, DATASET, REGION, status_change, template
from tests.handlers.retrain_trigger.world import Aws

SNAPSHOTS: Final = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:dataset-snapshots"
CONFIGURATION: Final = {
    "Id": INVENTORY_ID,
    "Enabled": True,
    "Destination": {"BucketArn": f"arn:aws:s3:::{BUCKET}", "Format": "CSV", "Prefix": REPORTS_PREFIX.rstrip("/")},
    "IncludedObjectVersions": "All",
    "OptionalFields": ["Size", "ETag", "LastModifiedDate"],
    "Prefix": "datasets/",
    "ScheduleFrequency": "Daily",
}


@pytest.fixture
def world(aws: Aws) -> Aws:
    aws.env(SNAPSHOT_STATE_MACHINE_ARN=SNAPSHOTS, SNAPSHOT_DATASETS=DATASET)
    return aws


def upload(world: Aws, count: int, *, tag: str = "a") -> dict[str, bytes]:
    """``count`` objects of distinct bytes under the dataset; relative key -> bytes."""
    files = {f"part={i % 4}/{tag}-{i:05d}.csv": f"id,label\n{i},{tag}\n".encode() for i in range(count)}
    for relative, body in files.items():
        world.s3.put_object(Bucket=BUCKET, Key=f"datasets/{DATASET}/{relative}", Body=body)
    return files


def take_snapshot(world: Aws, *, rows_per_file: int = 7) -> dict[str, Any]:
    """S3 delivers a report an hour before ``world.now``; the engine snapshots it. The state machine's output."""
    report = publish_inventory_report(
        world.s3,
        source_bucket=BUCKET,
        configuration=CONFIGURATION,
        now=world.now - timedelta(hours=1),
        rows_per_file=rows_per_file,
    )
    plan = inventory.plan(world.s3, report_uri=report, dataset=DATASET, bucket=BUCKET, now=world.now)
    work = world.s3.get_object(Bucket=plan["files_bucket"], Key=plan["files_key"])["Body"].read()
    for item in json.loads(work):
        inventory.shard_file(world.s3, plan, **item)
    return inventory.finalize(world.s3, plan)


def succeeded(output: Any, *, status: str = "SUCCEEDED", machine: str = SNAPSHOTS) -> dict[str, Any]:
    """AWS's ``Step Functions Execution Status Change`` event of one execution, with ``output``."""
    event = template("aws/states_execution_status_change.json")
    name = str(uuid.uuid4())
    execution = machine.replace(":stateMachine:", ":execution:") + f":{name}"
    event.update(id=str(uuid.uuid4()), account=ACCOUNT, region=REGION, resources=[execution])
    event["detail"].update(
        executionArn=execution,
        stateMachineArn=machine,
        name=name,
        status=status,
        input=json.dumps({"dataset": DATASET}),
        output=json.dumps(output) if status == "SUCCEEDED" else None,
    )
    return event


def run_to_the_end(world: Aws, output: dict[str, Any]) -> str:
    """The snapshot's success arrives and starts the dataset's only run, which then ends. Its ARN."""
    world.deliver(succeeded(output))
    [execution] = world.executions()
    world.set_status(execution, "Succeeded")
    world.deliver(status_change(execution))
    return execution


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- the path


def test_a_succeeded_snapshot_starts_one_run_on_its_version_which_materializes_exactly(
    world: Aws, tmp_path: Path
) -> None:
    # GIVEN a dataset whose inventory spans several report files
    files = upload(world, 40)
    output = take_snapshot(world)

    # WHEN its snapshot's status change arrives, twice (EventBridge delivers at least once)
    assert world.deliver(succeeded(output)) == []
    assert world.deliver(succeeded(output)) == []

    # THEN exactly one run started, with the sharded version's index and set digest
    [execution] = world.executions()
    parameters = world.parameters(execution)
    assert parameters["InputManifestUri"] == output["manifest"]
    assert parameters["ManifestSha256"] == output["digest"]
    assert parameters["DataVersion"] == core.data_version(output["as_of"], output["digest"])
    assert "snapshot" in parameters["TriggerReason"]
    # AND the version it names restores the dataset byte for byte
    datasets.materialize(parameters["InputManifestUri"], tmp_path / "data", s3=world.s3)
    assert tree(tmp_path / "data") == files
    # AND the trigger wrote no manifest of its own: the version is the snapshot's index
    top = world.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"manifests/{DATASET}/", Delimiter="/").get("Contents", [])
    assert [f"s3://{BUCKET}/{o['Key']}" for o in top] == [output["manifest"]]


def test_the_next_days_snapshot_of_the_same_data_starts_nothing_and_of_new_data_one_run(world: Aws) -> None:
    upload(world, 10)
    first = take_snapshot(world)
    execution = run_to_the_end(world, first)

    # WHEN the next day's report lists the same objects
    world.later(days=1)
    same = take_snapshot(world)

    # THEN it is the same version (the set digest) and starts nothing
    assert same["digest"] == first["digest"]
    assert same["manifest"] != first["manifest"]
    world.deliver(succeeded(same))
    assert len(world.executions()) == 1

    # WHEN new objects are in the day after's report
    world.later(days=1)
    upload(world, 3, tag="b")
    changed = take_snapshot(world)
    world.deliver(succeeded(changed))

    # THEN one more run, on that version
    assert len(world.executions()) == 2
    newest = next(e for e in world.executions() if e != execution)
    assert world.parameters(newest)["ManifestSha256"] == changed["digest"]


def test_object_events_of_a_snapshotted_dataset_start_nothing(world: Aws) -> None:
    events = world.put(*(f"datasets/{DATASET}/drop/part-{i}.csv" for i in range(3)))
    world.later(hours=2)  # past any quiet period
    assert world.deliver(*events) == []
    assert world.executions() == []
    assert "last_activity_at" not in world.dataset_item()


def test_a_manual_retrain_before_any_snapshot_starts_nothing_and_after_one_trains_on_it(world: Aws) -> None:
    upload(world, 5)
    manual = template("manual_retrain.json")
    manual["detail"]["dataset"] = DATASET
    assert world.deliver(manual) == []
    assert world.executions() == []

    output = take_snapshot(world)
    run_to_the_end(world, output)
    world.later(hours=2)

    again = template("manual_retrain.json")
    again.update(id=str(uuid.uuid4()))
    again["detail"]["dataset"] = DATASET
    world.deliver(again)
    assert len(world.executions()) == 2
    assert {world.parameters(e)["InputManifestUri"] for e in world.executions()} == {output["manifest"]}


def test_a_late_event_of_an_older_snapshot_never_replaces_the_newer_version(world: Aws) -> None:
    upload(world, 4)
    older = take_snapshot(world)
    world.later(days=1)
    upload(world, 2, tag="b")
    newer = take_snapshot(world)

    run_to_the_end(world, newer)
    world.deliver(succeeded(older))  # delivered a day late

    stored = json.loads(world.dataset_item()["snapshot_version"]["S"])
    assert stored["manifest"] == newer["manifest"]
    # A run trains on the dataset's newest version, which was trained already: nothing starts.
    assert [world.parameters(e)["ManifestSha256"] for e in world.executions()] == [newer["digest"]]


def test_a_busy_pipeline_keeps_the_snapshot_pending_and_starts_it_when_the_run_ends(world: Aws) -> None:
    upload(world, 4)
    world.deliver(succeeded(take_snapshot(world)))
    [running] = world.executions()
    world.set_status(running, "Executing")

    world.later(days=1)
    upload(world, 2, tag="b")
    newer = take_snapshot(world)
    world.deliver(succeeded(newer))
    assert world.executions() == [running]

    world.set_status(running, "Succeeded")
    world.deliver(status_change(running))
    assert len(world.executions()) == 2
    assert {world.parameters(e)["ManifestSha256"] for e in world.executions() if e != running} == {newer["digest"]}


# --------------------------------------------------------------------------- a lost status change


def scheduled(slot: str = "2025-03-10T03:00:00Z") -> dict[str, Any]:
    event = template("scheduled_retrain.json")
    event.update(id=str(uuid.uuid4()))
    event["detail"].update(dataset=DATASET, scheduledTime=slot, always=False)
    return event


def test_a_schedule_trains_the_newest_snapshot_whose_status_change_was_lost(world: Aws) -> None:
    # GIVEN a snapshot that succeeded, but whose event Step Functions never delivered (best effort)
    upload(world, 6)
    output = take_snapshot(world)

    # WHEN the weekly schedule fires
    assert world.deliver(scheduled()) == []

    # THEN the newest index in S3 is the version: one run on it, and it is stored for the next decision
    [execution] = world.executions()
    assert world.parameters(execution)["InputManifestUri"] == output["manifest"]
    assert world.parameters(execution)["ManifestSha256"] == output["digest"]
    assert json.loads(world.dataset_item()["snapshot_version"]["S"])["manifest"] == output["manifest"]
    # AND the late event of the same snapshot starts nothing more
    world.set_status(execution, "Succeeded")
    world.deliver(status_change(execution))
    world.deliver(succeeded(output))
    assert world.executions() == [execution]


def test_a_manual_retrain_takes_a_newer_index_than_the_stored_snapshot(world: Aws) -> None:
    upload(world, 3)
    first = take_snapshot(world)
    run_to_the_end(world, first)
    world.later(days=1)
    upload(world, 2, tag="b")
    lost = take_snapshot(world)  # its event is lost

    manual = template("manual_retrain.json")
    manual.update(id=str(uuid.uuid4()))
    manual["detail"]["dataset"] = DATASET
    world.later(hours=2)
    world.deliver(manual)

    assert {world.parameters(e)["ManifestSha256"] for e in world.executions()} == {first["digest"], lost["digest"]}


def test_a_snapshots_own_event_is_trusted_without_listing(world: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    upload(world, 3)
    output = take_snapshot(world)

    def refuse(**_: Any) -> Any:
        raise AssertionError("the trigger listed the bucket")

    monkeypatch.setattr(handler_module._s3(), "list_objects_v2", refuse)
    monkeypatch.setattr(handler_module._s3(), "list_object_versions", refuse)
    assert world.deliver(succeeded(output)) == []
    assert len(world.executions()) == 1


def test_a_manifest_that_is_not_a_snapshot_index_is_not_taken_for_one(world: Aws) -> None:
    # A person's listing snapshot (a single document) is the newest manifest of the dataset
    upload(world, 3)
    datasets.snapshot(BUCKET, DATASET, s3=world.s3)
    assert world.deliver(scheduled()) == []
    assert world.executions() == []
    assert "snapshot_version" not in world.dataset_item()


def test_a_newest_manifest_that_is_not_json_keeps_the_stored_snapshot(world: Aws) -> None:
    # GIVEN a stored snapshot, then an object under manifests/<name>/ that is not JSON at all
    upload(world, 3)
    first = take_snapshot(world)
    run_to_the_end(world, first)
    world.later(days=1)
    world.s3.put_object(Bucket=BUCKET, Key=f"manifests/{DATASET}/29991231T000000Z-broken.json", Body=b"\xff{not json")
    # WHEN the schedule fires THEN the handler neither fails nor takes it: the stored version is unchanged
    assert world.deliver(scheduled("2025-03-17T03:00:00Z")) == []
    assert json.loads(world.dataset_item()["snapshot_version"]["S"])["manifest"] == first["manifest"]


def test_the_index_reader_knows_the_snapshot_schema_and_refuses_what_is_not_one() -> None:
    assert SNAPSHOT_INDEX_SCHEMA == manifest_shards.MANIFEST_INDEX_SCHEMA_V2
    good = {
        "schema": SNAPSHOT_INDEX_SCHEMA,
        "dataset": DATASET,
        "sha256": "ab" * 32,
        "object_count": 3,
        "total_bytes": 10,
        "as_of": "2025-03-04T09:00:00Z",
    }
    found = snapshot_from_index(good, uri="s3://b/manifests/churn/x.json", dataset=DATASET)
    assert found is not None
    assert (found.digest, found.objects, found.bytes) == ("ab" * 32, 3, 10)
    for change in (
        {"schema": manifest_shards.MANIFEST_INDEX_SCHEMA},
        {"dataset": "other"},
        {"object_count": -1},
        {"total_bytes": True},
        {"sha256": ""},
        {"as_of": "yesterday"},
    ):
        assert snapshot_from_index({**good, **change}, uri="s3://b/k.json", dataset=DATASET) is None, change
    assert snapshot_from_index([good], uri="s3://b/k.json", dataset=DATASET) is None


# --------------------------------------------------------------------------- what is not a version


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (lambda o: succeeded(o, status="FAILED"), "snapshot execution is FAILED"),
        (lambda o: succeeded(o, machine=SNAPSHOTS + "-other"), "another state machine"),
        (lambda o: succeeded({**o, "dataset": "other"}), "not versioned by snapshots"),
    ],
    ids=["failed", "another-machine", "another-dataset"],
)
def test_other_executions_are_ignored(world: Aws, event: Any, reason: str, capsys: pytest.CaptureFixture[str]) -> None:
    upload(world, 3)
    output = take_snapshot(world)
    capsys.readouterr()
    assert world.deliver(event(output)) == []
    assert world.executions() == []
    assert "snapshot_version" not in world.dataset_item()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert any(line.get("decision") == "ignored" and reason in line.get("reason", "") for line in lines), lines


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"output": None, "outputDetails": {"included": False}}, "over EventBridge's 248 KB"),
        ({"output": None}, "must be the execution's output"),
        ({"output": "not json"}, "detail.output is not JSON"),
        ({"output": "[1]"}, "must be a JSON object"),
        ({"output": json.dumps({"manifest": "s3://b/k.json"})}, "missing detail.output.as_of"),
        ({"output": json.dumps({"manifest": "/tmp/x.json"})}, "is not the s3:// URI"),
        ({"stateMachineArn": 7}, "detail.stateMachineArn must be a non-empty string"),
    ],
)
def test_a_broken_status_change_is_invalid_and_names_the_field(change: dict[str, Any], message: str) -> None:
    event = succeeded({})
    event["detail"].update(change)
    parsed = parse_event(event)
    assert isinstance(parsed, Invalid), parsed
    assert message in parsed.reason


def test_a_broken_status_change_goes_to_the_dead_letter_queue_and_starts_nothing(world: Aws) -> None:
    event = succeeded({})
    event["detail"]["output"] = "not json"
    event_id = world.deliver(event)
    assert len(event_id) == 1  # handed back: after maxReceiveCount it lands in the dead-letter queue
    assert world.executions() == []


def test_the_documented_sample_parses_and_its_output_is_refused_as_no_version() -> None:
    sample = template("aws/states_execution_status_change.json")
    parsed = parse_event(sample)
    # "Hello World!" is an execution output, but not a snapshot's
    assert isinstance(parsed, Invalid)
    assert "must be a JSON object" in parsed.reason
    sample["detail"]["status"] = "RUNNING"
    running = parse_event(sample)
    assert isinstance(running, SnapshotFinished)
    assert running.version is None
    assert running.time == datetime.fromisoformat("2019-02-26T19:42:21+00:00")


# --------------------------------------------------------------------------- the settings

_REQUIRED: Final = {
    "PIPELINE_NAME": "p",
    "DATA_BUCKET": "b",
    "DATASETS": '["churn", "events"]',
    "STATE_TABLE": "t",
    "QUEUE_URL": "q",
    "MODEL_PACKAGE_GROUP_NAME": "g",
}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SNAPSHOT_DATASETS": "events"}, "SNAPSHOT_STATE_MACHINE_ARN and SNAPSHOT_DATASETS go together"),
        ({"SNAPSHOT_STATE_MACHINE_ARN": SNAPSHOTS}, "SNAPSHOT_STATE_MACHINE_ARN and SNAPSHOT_DATASETS go together"),
        (
            {"SNAPSHOT_STATE_MACHINE_ARN": SNAPSHOTS, "SNAPSHOT_DATASETS": "images"},
            "SNAPSHOT_DATASETS: ['images'] are not in DATASETS",
        ),
        (
            {"SNAPSHOT_STATE_MACHINE_ARN": "snapshots", "SNAPSHOT_DATASETS": "events"},
            "SNAPSHOT_STATE_MACHINE_ARN='snapshots': expected a state machine ARN",
        ),
    ],
    ids=["datasets-alone", "arn-alone", "unwatched", "not-an-arn"],
)
def test_snapshot_settings_that_do_not_fit_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match="invalid environment") as caught:
        core.Settings.from_env({**_REQUIRED, **env})
    assert message in str(caught.value)


def test_snapshot_settings_choose_per_dataset() -> None:
    settings = core.Settings.from_env(
        {**_REQUIRED, "SNAPSHOT_STATE_MACHINE_ARN": SNAPSHOTS, "SNAPSHOT_DATASETS": '["events"]'}
    )
    assert settings.snapshotted("events")
    assert not settings.snapshotted("churn")
    assert settings.snapshot_state_machine == SNAPSHOTS
