"""The handler against moto: S3 (versioned), DynamoDB, SQS and a SageMaker pipeline, all in-process.

The moto world and its helpers are in ``world.py``; its ``aws`` fixture is in ``conftest.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends

from cdk_mlops import datasets
from cdk_mlops.lambdas.retrain_trigger import core
from cdk_mlops.lambdas.retrain_trigger import handler as handler_module
from cdk_mlops.lambdas.retrain_trigger.store import StateStore
from tests.handlers.retrain_trigger.conftest import (
    BUCKET,
    DATASET,
    PIPELINE,
    alarm,
    load_event,
    object_created,
    sqs_record,
    status_change,
)
from tests.handlers.retrain_trigger.test_core import odd_events
from tests.handlers.retrain_trigger.world import (
    AUC,
    QUEUE,
    T0,
    TABLE,
    Aws,
    auc,
    cheap_listing_copies,
    in_batches,
    throttle,
)

# --- a burst of object events -------------------------------------------------------------------


def burst(aws: Aws, records: list[dict[str, Any]]) -> None:
    """Deliver a burst as the event source mapping would: 2,500-record batches (6 MB), a second apart."""
    for batch in in_batches(records, 2500):
        assert aws.invoke(batch) == []
        aws.later(seconds=1)


def _version_pages(aws: Aws, max_keys: int, prefix: str = "datasets/") -> list[dict[str, Any]]:
    pages = aws.s3.get_paginator("list_object_versions").paginate(
        Bucket=BUCKET, Prefix=prefix, PaginationConfig={"PageSize": max_keys}
    )
    return [{k: v for k, v in page.items() if k != "ResponseMetadata"} for page in pages]


def test_cheap_listing_copies_list_what_moto_lists(aws: Aws) -> None:
    # GIVEN keys with several versions, a deleted key and a second dataset
    aws.put(*(f"datasets/{DATASET}/a/part-{i}.csv" for i in range(7)))
    aws.put(f"datasets/{DATASET}/a/part-1.csv", f"datasets/{DATASET}/a/part-5.csv", body=b"new")
    aws.s3.delete_object(Bucket=BUCKET, Key=f"datasets/{DATASET}/a/part-3.csv")
    aws.put("datasets/other/x.csv")
    aws.put(f"datasets/{DATASET}-v2/y.csv")  # a key after the dataset's prefix in the listing's order
    prefixes = ("datasets/", f"datasets/{DATASET}/", "datasets/other/", "datasets/none/")
    moto_pages = {prefix: _version_pages(aws, max_keys=4, prefix=prefix) for prefix in prefixes}
    bucket = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_bucket(BUCKET)
    stored = [version for _, versions in bucket.keys.iterlists() for version in versions]
    before = [dict(vars(version)) for version in stored]
    keys_before = dict(bucket.keys)

    # WHEN moto copies versions the cheap way THEN every page of every prefix is the same, twice over
    cheap_listing_copies(aws.monkeypatch)
    for prefix in prefixes:
        assert _version_pages(aws, max_keys=4, prefix=prefix) == moto_pages[prefix], prefix
        assert _version_pages(aws, max_keys=4, prefix=prefix) == moto_pages[prefix], prefix
    assert sum(len(page.get("Versions", [])) for page in moto_pages["datasets/"]) == 11
    assert sum(len(page.get("Versions", [])) for page in moto_pages[f"datasets/{DATASET}/"]) == 9
    # AND the stored versions, and the bucket's keys, are left as they were
    assert [dict(vars(version)) for version in stored] == before
    assert dict(bucket.keys) == keys_before


def test_burst_of_10000_object_events_starts_once_and_its_redelivery_nothing_more(aws: Aws) -> None:
    # One test for both: every start and every dedupe lists the 10,000 object versions.
    cheap_listing_copies(aws.monkeypatch)
    # GIVEN quiet-period mode and one drop of 10,000 objects
    aws.env(MODE="QUIET_PERIOD", QUIET_PERIOD_SECONDS=60)
    keys = [f"datasets/{DATASET}/2025-03-04/part-{i:05d}.csv" for i in range(10_000)]
    records = [sqs_record(event) for event in aws.put_many(keys)]

    # WHEN the 10,000 events arrive
    burst(aws, records)

    # THEN nothing starts yet: one delayed check waits for the quiet period
    assert aws.executions() == []
    assert len(aws.sent_checks) == 1
    assert aws.sent_checks[0][1] == 60
    assert aws.delayed_messages() == 1

    # WHEN the checks come back (the first finds the drop still settling and chains a second)
    assert aws.deliver_checks() == []
    assert aws.executions() == []
    assert aws.deliver_checks() == []

    # THEN exactly one execution, whose parameters name the manifest of all 10,000 objects
    [execution] = aws.executions()
    params = aws.parameters(execution)
    manifest = aws.manifest(execution)
    assert len(manifest.entries) == 10_000
    assert params["ManifestSha256"] == manifest.sha256
    assert params["InputManifestUri"].startswith(f"s3://{BUCKET}/manifests/{DATASET}/")
    assert params["DataVersion"].endswith(manifest.sha256[:12])
    assert params["TriggerReason"].startswith("new objects")
    assert aws.starts[0]["ClientRequestToken"] == core.client_request_token(f"{PIPELINE}|{manifest.sha256}")
    assert aws.items("lock#")[f"lock#{PIPELINE}"]["execution_arn"]["S"] == execution

    # WHEN the execution ends and SQS then redelivers the same records (same message ids)
    aws.later(minutes=30)
    assert aws.deliver(status_change(execution)) == []
    aws.later(minutes=30)
    burst(aws, records)
    for _ in range(3):
        if aws.sent_checks:
            assert aws.deliver_checks() == []

    # THEN the unchanged data version is deduplicated: still one execution
    assert aws.executions() == [execution]
    assert aws.sent_checks == []
    assert aws.items("lock#") == {}


# --- modes ----------------------------------------------------------------------------------------


def test_commit_marker_mode_ignores_objects_until_the_marker(aws: Aws) -> None:
    aws.env(MODE="COMMIT_MARKER")
    events = aws.drop("2025-03-04", n=20, marker=False)

    # WHEN only data objects land THEN nothing is written or started
    assert aws.deliver(*events) == []
    assert aws.items() == {}
    assert aws.executions() == []

    # WHEN the marker lands THEN one execution starts on all 21 objects
    assert aws.deliver(*aws.put(f"datasets/{DATASET}/2025-03-04/_SUCCESS")) == []
    [execution] = aws.executions()
    assert len(aws.manifest(execution).entries) == 21
    assert aws.parameters(execution)["TriggerReason"] == "commit marker _SUCCESS landed"


def test_change_threshold_holds_back_small_drops(aws: Aws) -> None:
    aws.env(MODE="COMMIT_MARKER", MIN_OBJECTS=5)

    # WHEN a drop of 3 objects is committed THEN it is below the threshold
    assert aws.deliver(*aws.drop("d1", n=3)) == []
    assert aws.executions() == []

    # WHEN 2 more objects land THEN they are counted without any decision
    assert aws.deliver(*aws.drop("d2", n=2, marker=False)) == []
    assert aws.dataset_item()["changed_objects"]["N"] == "5"
    assert aws.executions() == []

    # WHEN the next commit marker lands THEN the 5 objects are enough
    assert aws.deliver(*aws.put(f"datasets/{DATASET}/d2/_SUCCESS")) == []
    [execution] = aws.executions()
    assert len(aws.manifest(execution).entries) == 7
    assert aws.dataset_item()["changed_objects"]["N"] == "0"


def test_quiet_period_waits_then_the_check_starts(aws: Aws) -> None:
    # GIVEN a quiet period longer than SQS's 15-minute maximum delay
    aws.env(MODE="QUIET_PERIOD", QUIET_PERIOD_SECONDS=1200)
    assert aws.deliver(*aws.drop("d1", marker=False)) == []
    [(first, delay)] = aws.sent_checks
    assert delay == 900
    assert first["detail"]["due"] == int((T0 + timedelta(seconds=1200)).timestamp())

    # WHEN the first check arrives after 900 s THEN it chains the rest of the wait
    aws.sent_checks.clear()
    aws.at(T0 + timedelta(seconds=900))
    assert aws.deliver(first) == []
    assert aws.executions() == []
    [(second, delay)] = aws.sent_checks
    assert (second["detail"]["due"], delay) == (first["detail"]["due"], 300)

    # WHEN new objects arrive meanwhile THEN no extra check is sent: the chain re-evaluates
    aws.at(T0 + timedelta(seconds=1000))
    aws.sent_checks.clear()
    assert aws.deliver(*aws.drop("d1-late", n=1, marker=False)) == []
    assert aws.sent_checks == []

    # WHEN the chained check arrives, the dataset is not quiet yet; the next check starts it
    aws.at(T0 + timedelta(seconds=1200))
    assert aws.deliver(second) == []
    assert aws.executions() == []
    assert aws.deliver_checks() == []
    assert aws.now == T0 + timedelta(seconds=2200)
    [execution] = aws.executions()
    assert len(aws.manifest(execution).entries) == 4


def test_a_key_that_cannot_be_a_file_is_left_out_and_the_run_still_starts(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a drop with an object whose key has a '..' segment (S3 keeps it under the dataset's prefix)
    aws.env(MODE="COMMIT_MARKER")
    odd = f"datasets/{DATASET}/d1/../../other/x.csv"
    events = aws.put(odd) + aws.drop("d1")
    capsys.readouterr()

    # WHEN it is delivered
    assert aws.deliver(*events) == []

    # THEN exactly one run starts, on a version that lists the good objects and records the odd one
    [execution] = aws.executions()
    manifest = aws.manifest(execution)
    assert odd not in {e.key for e in manifest.entries}
    assert len(manifest.entries) == 4
    assert [x.key for x in manifest.excluded] == [odd]
    # AND the handler says so in its log
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    [warning] = [line for line in lines if line.get("message", "").startswith("objects left out")]
    assert warning["excluded"] == 1
    assert warning["first"] == [f"{odd}: {manifest.excluded[0].reason}"]


def test_a_start_writes_one_manifest_document_the_preprocess_step_can_read(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a dataset larger than what `write_manifest` keeps in one document by default
    monkeypatch.setattr(datasets, "SINGLE_MANIFEST_MAX_ENTRIES", 2)
    aws.env(MODE="COMMIT_MARKER")

    # WHEN it starts a run
    assert aws.deliver(*aws.drop("d1")) == []

    # THEN the manifest is still the single document (schema v1) Preprocess reads, with every object
    [execution] = aws.executions()
    uri = aws.parameters(execution)["InputManifestUri"]
    bucket, key = datasets.parse_s3_uri(uri)
    document = json.loads(aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert document["schema"] == datasets.MANIFEST_SCHEMA
    assert len(document["entries"]) == 4


# --- lock ---------------------------------------------------------------------------------------


def test_drops_while_running_pend_and_the_latest_starts_when_the_execution_ends(aws: Aws) -> None:
    aws.env(MODE="COMMIT_MARKER")
    aws.deliver(*aws.drop("d1"))
    [first] = aws.executions()
    aws.set_status(first, "Executing")

    # WHEN two more drops complete while the first execution runs
    aws.later(minutes=5)
    assert aws.deliver(*aws.drop("d2")) == []
    aws.later(minutes=5)
    assert aws.deliver(*aws.drop("d3")) == []

    # THEN nothing starts; one pending trigger is kept
    assert aws.executions() == [first]
    pending = json.loads(aws.dataset_item()["pending"]["S"])
    assert pending["kind"] == "data"

    # WHEN the execution's end event arrives THEN the pending version starts, holding all three drops
    aws.later(minutes=30)
    aws.set_status(first, "Succeeded")
    assert aws.deliver(status_change(first)) == []
    second = next(arn for arn in aws.executions() if arn != first)
    assert len(aws.manifest(second).entries) == 12
    assert "pending" not in aws.dataset_item()

    # AND a redelivered end event starts nothing more
    aws.set_status(second, "Executing")
    assert aws.deliver(status_change(first)) == []
    assert len(aws.executions()) == 2


def test_stale_lock_from_a_lost_end_event_is_released_by_the_recheck(aws: Aws) -> None:
    aws.env(MODE="COMMIT_MARKER")
    aws.deliver(*aws.drop("d1"))
    [first] = aws.executions()  # moto reports it Succeeded; its end event never arrives

    # WHEN a drop completes within the lock's grace period THEN it pends and schedules a recheck
    aws.later(minutes=1)
    assert aws.deliver(*aws.drop("d2")) == []
    assert aws.executions() == [first]
    [(_, delay)] = aws.sent_checks
    assert delay == 900

    # WHEN the recheck arrives THEN SageMaker says the execution ended, the lock is released, the drop starts
    assert aws.deliver_checks() == []
    assert len(aws.executions()) == 2


def test_lock_is_held_while_sagemaker_reports_the_execution_running(aws: Aws) -> None:
    aws.env(MODE="COMMIT_MARKER")
    aws.deliver(*aws.drop("d1"))
    [first] = aws.executions()
    aws.set_status(first, "Executing")
    aws.later(minutes=1)
    aws.deliver(*aws.drop("d2"))
    for _ in range(3):  # recheck after recheck while it runs
        assert aws.deliver_checks() == []
        assert aws.executions() == [first]
    assert len(aws.sent_checks) == 1


# --- idempotency and failures -----------------------------------------------------------------------


def test_throttled_start_fails_only_the_marker_record_and_the_retry_starts_once(aws: Aws) -> None:
    aws.env(MODE="COMMIT_MARKER", MIN_OBJECTS=1)
    sagemaker = handler_module._sagemaker()
    aws.replace_client_method(
        sagemaker,
        "start_pipeline_execution",
        throttle(1, "ThrottlingException", sagemaker.start_pipeline_execution, "StartPipelineExecution"),
    )
    records = [sqs_record(event) for event in aws.drop("d1")]

    # WHEN SageMaker throttles the start
    failed = aws.invoke(records)

    # THEN only the marker's record is retried; no lock, no claim, counters counted once
    assert failed == [records[-1]["messageId"]]
    assert aws.executions() == []
    assert aws.items("lock#") == {}
    assert aws.items("idem#") == {}
    assert aws.dataset_item()["changed_objects"]["N"] == "3"

    # WHEN SQS redelivers it (twice, as at-least-once delivery may) THEN one execution
    aws.later(minutes=2)
    assert aws.invoke([records[-1]]) == []
    assert aws.invoke([records[-1]]) == []
    assert len(aws.executions()) == 1
    assert aws.dataset_item()["changed_objects"]["N"] == "0"


def test_throttled_state_write_fails_the_whole_dataset_and_changes_nothing(aws: Aws) -> None:
    aws.env(MODE="QUIET_PERIOD", QUIET_PERIOD_SECONDS=60)
    ddb = handler_module._dynamodb()
    aws.replace_client_method(
        ddb, "update_item", throttle(1, "ProvisionedThroughputExceededException", ddb.update_item, "UpdateItem")
    )
    records = [sqs_record(event) for event in aws.drop("d1", marker=False)]
    other = sqs_record(object_created("datasets/churn/x.csv", bucket="another-bucket"))

    assert sorted(aws.invoke([*records, other])) == sorted(r["messageId"] for r in records)
    assert aws.items() == {}
    assert aws.sent_checks == []

    assert aws.invoke(records) == []
    assert len(aws.sent_checks) == 1
    aws.deliver_checks()
    assert len(aws.executions()) == 1


def poll_until_empty(aws: Aws, events: list[dict[str, Any]]) -> tuple[list[list[str]], list[dict[str, Any]]]:
    """Send events to the queue and poll as the event source mapping does, until nothing is visible.

    The visibility timeout is 0 so that a failed record is retried at once. Returns the record ids
    reported as failed by each invocation, and the events that ended in the dead-letter queue.
    """
    queue = aws.sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    dlq = aws.sqs.get_queue_url(QueueName=f"{QUEUE}-dlq")["QueueUrl"]
    for event in events:
        aws.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(event))
    reported: list[list[str]] = []
    for _ in range(6):
        received = aws.sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0, AttributeNames=["All"]
        ).get("Messages", [])
        if not received:
            break
        records = [sqs_record(m["Body"], message_id=m["MessageId"]) for m in received]
        failed = aws.invoke(records)
        reported.append(failed)
        for message in received:
            if message["MessageId"] not in failed:
                aws.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    dead = aws.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    return reported, [json.loads(m["Body"]) for m in dead]


def test_persistent_failure_is_reported_every_time_and_ends_in_the_dead_letter_queue(aws: Aws) -> None:
    aws.env(MODE="COMMIT_MARKER")
    sagemaker = handler_module._sagemaker()
    aws.replace_client_method(
        sagemaker,
        "start_pipeline_execution",
        throttle(10**6, "ResourceLimitExceeded", sagemaker.start_pipeline_execution, "StartPipelineExecution"),
    )

    # WHEN the event source mapping polls until the queue is empty
    reported, dead = poll_until_empty(aws, aws.drop("d1", n=2))

    # THEN the marker was reported on every receive (maxReceiveCount 3), then moved to the DLQ; nothing started
    assert [len(r) for r in reported] == [1, 1, 1]
    assert [event["detail"]["object"]["key"] for event in dead] == ["datasets/churn/d1/_SUCCESS"]
    assert aws.executions() == []
    assert aws.items("lock#") == {}


def fail_the_first_lock_update(aws: Aws) -> None:
    """The lock update right after a start fails once: the start happened, its bookkeeping did not."""
    ddb = handler_module._dynamodb()
    real_update = ddb.update_item
    calls = {"failed": False}

    def update_item(**kwargs: Any) -> Any:
        if not calls["failed"] and kwargs["UpdateExpression"] == "SET execution_arn = :arn":
            calls["failed"] = True
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "UpdateItem")
        return real_update(**kwargs)

    aws.replace_client_method(ddb, "update_item", update_item)


def test_interrupted_start_is_retried_with_the_same_token_and_manifest(aws: Aws) -> None:
    aws.env(MODE="COMMIT_MARKER", LEASE_SECONDS=300)
    fail_the_first_lock_update(aws)
    records = [sqs_record(event) for event in aws.drop("d1")]
    assert aws.invoke(records) == [records[-1]["messageId"]]

    # WHEN the marker is retried while the lease is live THEN it is handed back, nothing starts
    assert aws.invoke([records[-1]]) == [records[-1]["messageId"]]
    assert len(aws.starts) == 1

    # WHEN it is retried after the lease THEN the start is repeated with the same token and manifest,
    # which SageMaker answers with the first execution (moto ignores ClientRequestToken and creates a
    # second one; the equality of the two requests is what this test can check)
    aws.later(minutes=6)
    assert aws.invoke([records[-1]]) == []
    first, second = aws.starts
    assert second["ClientRequestToken"] == first["ClientRequestToken"]
    assert second["PipelineParameters"] == first["PipelineParameters"]
    lock = aws.items("lock#")[f"lock#{PIPELINE}"]
    assert "execution_arn" in lock
    [claim] = aws.items("idem#").values()
    assert claim["status"]["S"] == "COMPLETED"
    # AND a third delivery starts nothing
    assert aws.invoke([records[-1]]) == []
    assert len(aws.starts) == 2


def test_concurrent_start_of_the_same_version_is_retried_not_doubled(aws: Aws) -> None:
    aws.env(MODE="COMMIT_MARKER")
    events = aws.drop("d1")
    digest = datasets.build_manifest(BUCKET, DATASET, s3=aws.s3).sha256
    key = f"{PIPELINE}|{digest}"
    store = StateStore(aws.ddb, TABLE, PIPELINE)
    store.claim(key, token="other-invocation", now=T0, lease=timedelta(minutes=5), ttl=timedelta(days=1))

    marker = sqs_record(events[-1])
    assert aws.invoke([sqs_record(e) for e in events[:-1]] + [marker]) == [marker["messageId"]]
    assert aws.starts == []


def test_invalid_messages_are_reported_and_foreign_ones_deleted(aws: Aws) -> None:
    aws.env(MODE="COMMIT_MARKER")
    broken = sqs_record("{not json")
    half = sqs_record({"source": "cdk-mlops.retrain", "detail-type": "Manual Retrain", "detail": {}})
    foreign = sqs_record(object_created("datasets/churn/x.csv", bucket="another-bucket"))
    unknown = sqs_record({"source": "aws.ec2", "detail-type": "EC2 Spot Instance Interruption Warning", "detail": {}})

    assert aws.invoke([broken, half, foreign, unknown]) == [broken["messageId"], half["messageId"]]
    assert aws.executions() == []


# --- the champion ---------------------------------------------------------------------------------


def started_parameters(aws: Aws) -> dict[str, str]:
    [execution] = aws.executions()
    return aws.parameters(execution)


def test_the_first_model_is_compared_with_no_champion_and_validated_against_no_baseline(aws: Aws) -> None:
    # GIVEN a group whose only package is still waiting for approval
    aws.env(MODE="COMMIT_MARKER")
    aws.register(auc(0.91), status="PendingManualApproval")

    # WHEN a drop starts the pipeline
    assert aws.deliver(*aws.drop("d1")) == []

    # THEN the gate compares with ChampionMetric 0 (no champion) and Preprocess validates nothing
    parameters = started_parameters(aws)
    assert parameters["ChampionMetric"] == "0.0"
    assert "BaselineConstraintsUri" not in parameters


def _start_by_data(aws: Aws) -> list[str]:
    return aws.deliver(*aws.drop("d1"))


def _start_by_schedule(aws: Aws) -> list[str]:
    aws.drop("d1", marker=False)  # objects whose events never reached the trigger
    return aws.deliver(load_event("scheduled_retrain.json"))


def _start_by_drift_alarm(aws: Aws) -> list[str]:
    aws.drop("d1", marker=False)
    return aws.deliver(alarm())


def _start_by_monitor_violation(aws: Aws) -> list[str]:
    aws.drop("d1", marker=False)
    return aws.deliver(load_event("model_monitor_violation.json"))


def _start_by_manual_event(aws: Aws) -> list[str]:
    aws.drop("d1", marker=False)
    return aws.deliver(load_event("manual_retrain.json"))


@pytest.mark.parametrize(
    "start",
    [_start_by_data, _start_by_schedule, _start_by_drift_alarm, _start_by_monitor_violation, _start_by_manual_event],
    ids=["data", "schedule", "drift alarm", "monitor violation", "manual event"],
)
def test_every_start_path_competes_with_the_newest_approved_model(
    aws: Aws, start: Callable[[Aws], list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an older approved model, the newest approved one, and newer ones not approved
    aws.env(MODE="COMMIT_MARKER")
    aws.register(auc(0.88))
    champion = aws.register(auc(0.93))
    aws.register(auc(0.99), status="PendingManualApproval")
    aws.register(auc(0.97), status="Rejected")
    capsys.readouterr()

    # WHEN this start path starts the pipeline
    assert start(aws) == []

    # THEN the execution gates against the newest approved model and validates against its baseline
    parameters = started_parameters(aws)
    assert parameters["ChampionMetric"] == "0.93"
    assert parameters["BaselineConstraintsUri"] == champion.constraints
    # AND the decision log names the champion
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    [started] = [line for line in lines if line.get("decision") == "started"]
    assert started["champion"] == champion.arn


def test_a_champion_without_a_baseline_leaves_data_validation_off(aws: Aws) -> None:
    aws.env(MODE="COMMIT_MARKER")
    aws.register(auc(0.8), baseline=False)
    assert aws.deliver(*aws.drop("d1")) == []
    parameters = started_parameters(aws)
    assert parameters["ChampionMetric"] == "0.8"
    assert "BaselineConstraintsUri" not in parameters


@pytest.mark.parametrize(
    ("evaluation", "metadata", "problem"),
    [
        (None, None, "NoSuchKey"),
        ({"binary_classification_metrics": {"f1": {"value": 0.7}}}, None, f"the champion's evaluation has no {AUC!r}"),
        (auc(0.9), {}, "the model package has no EvaluationMetric metadata"),
    ],
    ids=["evaluation missing", "metric missing", "not registered by the pipeline"],
)
def test_a_champion_whose_evaluation_cannot_be_read_fails_the_start_into_the_dead_letter_queue(
    aws: Aws,
    evaluation: dict[str, Any] | None,
    metadata: dict[str, str] | None,
    problem: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN an approved model whose metric cannot be read
    aws.env(MODE="COMMIT_MARKER")
    champion = aws.register(evaluation, metadata=metadata)
    capsys.readouterr()

    # WHEN the event source mapping polls until the queue is empty
    reported, dead = poll_until_empty(aws, aws.drop("d1", n=2))

    # THEN nothing starts against a champion of 0: the marker fails on every receive, then sits in the DLQ
    assert [len(r) for r in reported] == [1, 1, 1]
    assert [event["detail"]["object"]["key"] for event in dead] == ["datasets/churn/d1/_SUCCESS"]
    assert aws.executions() == []
    assert aws.items("lock#") == {}
    assert aws.items("idem#") == {}
    # AND an error line says which package and what is wrong with it
    errors = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"ERROR"' in line]
    champion_errors = [line for line in errors if line.get("model_package_arn") == champion.arn]
    assert champion_errors
    assert problem in champion_errors[0]["error"]


def test_an_interrupted_start_is_retried_with_the_champion_of_its_first_attempt(aws: Aws) -> None:
    # GIVEN a start whose bookkeeping failed after SageMaker accepted it (the first model)
    aws.env(MODE="COMMIT_MARKER", LEASE_SECONDS=300)
    fail_the_first_lock_update(aws)
    records = [sqs_record(event) for event in aws.drop("d1")]
    assert aws.invoke(records) == [records[-1]["messageId"]]

    # WHEN a model is approved before the retry
    aws.register(auc(0.95))
    aws.later(minutes=6)
    assert aws.invoke([records[-1]]) == []

    # THEN the retry repeats the first request exactly, so SageMaker's token check recognises it
    first, second = aws.starts
    assert second == first
    assert {p["Name"]: p["Value"] for p in second["PipelineParameters"]}["ChampionMetric"] == "0.0"


# --- other triggers ---------------------------------------------------------------------------------


def test_drift_alarm_retrains_unchanged_data_once_per_alarm(aws: Aws) -> None:
    aws.env(MODE="COMMIT_MARKER")
    aws.deliver(*aws.drop("d1"))
    [first] = aws.executions()
    aws.deliver(status_change(first))

    # WHEN a drift alarm fires on unchanged data THEN it retrains
    aws.later(hours=1)
    fired = alarm()
    assert aws.deliver(fired) == []
    assert len(aws.executions()) == 2
    second = aws.executions()[1]
    assert aws.parameters(second)["TriggerReason"] == "drift alarm churn-feature-drift in ALARM"
    aws.deliver(status_change(second))

    # WHEN the same alarm event is redelivered THEN it is deduplicated
    aws.later(hours=1)
    assert aws.deliver(fired) == []
    assert len(aws.executions()) == 2

    # WHEN the alarm fires again later THEN it retrains again
    assert aws.deliver(alarm(timestamp="2025-03-05T19:04:40.000+0000")) == []
    assert len(aws.executions()) == 3


def test_scheduled_run_is_a_backstop_for_missed_object_events(aws: Aws) -> None:
    aws.env(MODE="COMMIT_MARKER")
    aws.deliver(*aws.drop("d1"))
    [first] = aws.executions()
    aws.deliver(status_change(first))
    scheduled = load_event("scheduled_retrain.json")

    # WHEN the schedule fires on unchanged data THEN nothing starts
    aws.later(hours=1)
    assert aws.deliver(scheduled) == []
    assert aws.executions() == [first]

    # WHEN objects landed without events reaching the trigger THEN the schedule starts them
    aws.drop("d2", marker=False)
    assert aws.deliver(scheduled) == []
    assert len(aws.executions()) == 2


def test_cooldown_defers_the_start_to_a_check(aws: Aws) -> None:
    aws.env(MODE="COMMIT_MARKER", COOLDOWN_SECONDS=3600)
    aws.deliver(*aws.drop("d1"))
    [first] = aws.executions()
    aws.later(minutes=20)
    aws.deliver(status_change(first))

    aws.later(minutes=10)
    assert aws.deliver(*aws.drop("d2")) == []
    assert aws.executions() == [first]
    [(check_body, delay)] = aws.sent_checks
    assert check_body["detail"]["due"] == int((T0 + timedelta(hours=1)).timestamp())
    assert delay == 900  # 30 minutes to wait: the first of two chained checks

    aws.deliver_checks()
    assert len(aws.executions()) == 2


def test_manual_retrain_by_direct_invocation(aws: Aws) -> None:
    aws.env(MODE="COMMIT_MARKER")
    aws.drop("d1")
    aws.monkeypatch.setattr(handler_module, "_now", lambda: aws.now)
    assert handler_module.handler(load_event("manual_retrain.json"), aws.context) == {"batchItemFailures": []}
    [execution] = aws.executions()
    assert aws.parameters(execution)["TriggerReason"] == (
        "manual retrain by data-scientist@example.com: new feature engineering merged"
    )


def test_empty_dataset_never_starts(aws: Aws) -> None:
    aws.env(MODE="COMMIT_MARKER")
    manual = load_event("manual_retrain.json")
    assert aws.deliver(manual) == []
    assert aws.executions() == []


# --- configuration, time budget, logs ---------------------------------------------------------------


def test_missing_configuration_fails_the_whole_batch(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    aws.monkeypatch.delenv("PIPELINE_NAME")
    with pytest.raises(KeyError, match="PIPELINE_NAME"):
        aws.deliver(*aws.drop("d1"))
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert line["level"] == "ERROR"
    assert "PIPELINE_NAME" in line["error"]


def test_records_are_handed_back_when_time_runs_out(aws: Aws) -> None:
    aws.env(MODE="COMMIT_MARKER")
    aws.context.remaining_ms = 5_000
    records = [sqs_record(event) for event in aws.drop("d1")]
    assert sorted(aws.invoke(records)) == sorted(r["messageId"] for r in records)
    assert aws.executions() == []


# --- properties -----------------------------------------------------------------------------------


def test_odd_events_never_crash_the_handler_and_never_start(aws: Aws) -> None:
    aws.env(MODE="COMMIT_MARKER")
    aws.drop("d0", marker=False)

    @hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(odd_events(), min_size=1, max_size=8))
    def run(bodies: list[object]) -> None:
        records = [sqs_record(json.dumps(body)) for body in bodies]
        failed = aws.invoke(records)
        assert set(failed) <= {r["messageId"] for r in records}
        assert aws.executions() == []

    run()


def test_a_held_lock_is_not_taken_by_another_start_until_its_owner_releases_it(aws: Aws) -> None:
    # GIVEN one start holds the pipeline's lock
    store = StateStore(aws.ddb, TABLE, PIPELINE)
    lease = timedelta(minutes=5)
    assert store.acquire_lock(owner="start-a", dataset=DATASET, digest="a" * 64, now=T0, lease=lease)
    # WHEN another start asks for it THEN it is refused, and the holder's record is unchanged
    assert not store.acquire_lock(owner="start-b", dataset=DATASET, digest="b" * 64, now=T0, lease=lease)
    lock = store.load([DATASET])[0].lock
    assert lock is not None
    assert (lock.owner, lock.digest) == ("start-a", "a" * 64)
    # AND the holder may re-enter its own lock (a retried start)
    assert store.acquire_lock(owner="start-a", dataset=DATASET, digest="a" * 64, now=T0, lease=lease)
