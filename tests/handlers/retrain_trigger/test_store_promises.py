"""The state store's promises against moto's DynamoDB alone: the lock, the claim and the day count.

Each test here is a second, independent guard of a promise that another test already covers
through the whole handler: it talks to the table directly, so a bug in the store cannot hide
behind a decision the handler makes before it reaches the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdk_mlops.lambdas.retrain_trigger import core
from cdk_mlops.lambdas.retrain_trigger.store import AlreadyDone, Busy, Claimed, StateStore, StoreThrottled
from tests.handlers.retrain_trigger.conftest import DATASET, PIPELINE, REGION

TABLE = "retrain-state"
T0 = datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
TTL = timedelta(days=90)
DIGEST_A, DIGEST_B = "a" * 64, "b" * 64
ARN = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/churn-training/execution/first"


@pytest.fixture
def store(aws_env: None) -> Iterator[StateStore]:
    """A fresh state table (the construct's key schema) and a store for the test pipeline."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield StateStore(client, TABLE, PIPELINE)


def held_lock(store: StateStore) -> core.Lock:
    pipeline, _ = store.load([DATASET])
    assert pipeline.lock is not None
    return pipeline.lock


# --- the lock -------------------------------------------------------------------------------------


def test_a_held_lock_is_refused_to_another_start_even_after_its_lease_ran_out(store: StateStore) -> None:
    # GIVEN start A holds the lock and its execution runs
    assert store.acquire_lock(owner="start-a", dataset=DATASET, digest=DIGEST_A, now=T0, lease=LEASE)
    assert store.set_lock_execution(owner="start-a", execution_arn=ARN)

    # WHEN start B asks for it long after A's lease (a running execution outlives the lease)
    later = T0 + timedelta(hours=3)
    taken = store.acquire_lock(owner="start-b", dataset=DATASET, digest=DIGEST_B, now=later, lease=LEASE)

    # THEN B is refused and A's lock is untouched: only the execution's end or the stale check frees it
    assert taken is False
    lock = held_lock(store)
    assert (lock.owner, lock.dataset, lock.digest, lock.execution_arn) == ("start-a", DATASET, DIGEST_A, ARN)
    assert lock.lease_until == T0 + LEASE


def test_a_retried_start_re_enters_its_lock_keeping_when_it_was_taken(store: StateStore) -> None:
    # GIVEN start A took the lock at T0
    assert store.acquire_lock(owner="start-a", dataset=DATASET, digest=DIGEST_A, now=T0, lease=LEASE)

    # WHEN A's retry takes it again a minute later
    retry = T0 + timedelta(minutes=1)
    assert store.acquire_lock(owner="start-a", dataset=DATASET, digest=DIGEST_A, now=retry, lease=LEASE)

    # THEN the lock still dates from T0 (the stale check measures its age) with a renewed lease
    lock = held_lock(store)
    assert lock.acquired_at == T0
    assert lock.lease_until == retry + LEASE


def test_the_lock_passes_on_only_once_its_execution_released_it(store: StateStore) -> None:
    # GIVEN start A's execution holds the lock
    assert store.acquire_lock(owner="start-a", dataset=DATASET, digest=DIGEST_A, now=T0, lease=LEASE)
    assert store.set_lock_execution(owner="start-a", execution_arn=ARN)

    # WHEN another execution's end event arrives THEN the lock stays
    assert store.release_lock_of_execution(ARN + "-other") is False
    assert not store.acquire_lock(owner="start-b", dataset=DATASET, digest=DIGEST_B, now=T0, lease=LEASE)

    # WHEN A's execution ends THEN B may take the lock, and A can no longer record an execution on it
    assert store.release_lock_of_execution(ARN) is True
    assert store.acquire_lock(owner="start-b", dataset=DATASET, digest=DIGEST_B, now=T0, lease=LEASE)
    assert store.set_lock_execution(owner="start-a", execution_arn=ARN) is False
    assert held_lock(store).owner == "start-b"


def test_a_stale_lock_is_released_only_if_it_is_still_the_one_judged(store: StateStore) -> None:
    # GIVEN a lock judged stale while it had no execution
    assert store.acquire_lock(owner="start-a", dataset=DATASET, digest=DIGEST_A, now=T0, lease=LEASE)
    judged = held_lock(store)

    # WHEN the start records its execution before the release
    assert store.set_lock_execution(owner="start-a", execution_arn=ARN)

    # THEN the release of the lock as judged does nothing: it is no longer that lock
    assert store.release_lock(judged) is False
    assert held_lock(store).execution_arn == ARN
    assert store.release_lock(held_lock(store)) is True
    assert store.load([DATASET])[0].lock is None


# --- the idempotency claim --------------------------------------------------------------------------


def test_a_finished_data_version_is_never_claimed_again(store: StateStore) -> None:
    # GIVEN a data version whose start completed
    key = core.idempotency_key(PIPELINE, core.Trigger(core.TriggerKind.DATA, "new objects", None, "q", T0), DIGEST_A)
    assert isinstance(store.claim(key, token="first", now=T0, lease=LEASE, ttl=TTL), Claimed)
    assert store.complete(key, token="first", execution_arn=ARN, now=T0, ttl=TTL)

    # WHEN another attempt claims it, at once and long after the first attempt's lease
    for moment in (T0, T0 + LEASE + timedelta(seconds=1), T0 + timedelta(days=30)):
        claim = store.claim(key, token=f"retry-{moment:%j%H%M}", now=moment, lease=LEASE, ttl=TTL)

        # THEN it is told the version was started, by which execution
        assert claim == AlreadyDone(ARN)

    # AND no other attempt can complete it again
    assert store.complete(key, token="other", execution_arn="arn:other", now=T0, ttl=TTL) is False


def test_an_unfinished_claim_is_busy_within_its_lease_and_taken_over_after_it(store: StateStore) -> None:
    # GIVEN an attempt that claimed a version and recorded its start parameters, then stopped
    key = f"{PIPELINE}|{DIGEST_A}"
    assert isinstance(store.claim(key, token="first", now=T0, lease=LEASE, ttl=TTL), Claimed)
    champion = core.Champion(None, {"ChampionMetric": "0.0"})
    store.record_start_parameters(
        key, token="first", manifest_uri="s3://b/manifests/m.json", created_at="2025-03-04T10:00:00Z", champion=champion
    )

    # WHEN a retry comes within the lease THEN it is busy until the lease ends
    assert store.claim(key, token="second", now=T0 + timedelta(minutes=1), lease=LEASE, ttl=TTL) == Busy(T0 + LEASE)

    # WHEN it comes after the lease THEN it takes over with the first attempt's parameters
    claim = store.claim(key, token="third", now=T0 + LEASE + timedelta(seconds=1), lease=LEASE, ttl=TTL)
    assert claim == Claimed("s3://b/manifests/m.json", "2025-03-04T10:00:00Z", champion)
    # AND the first attempt can no longer complete it
    assert store.complete(key, token="first", execution_arn=ARN, now=T0, ttl=TTL) is False


# --- the daily maximum ------------------------------------------------------------------------------


def test_starts_are_counted_per_utc_day_and_the_count_restarts_the_next_day(store: StateStore) -> None:
    settings = core.Settings.from_env(
        {
            "PIPELINE_NAME": PIPELINE,
            "DATA_BUCKET": "bucket",
            "DATASETS": DATASET,
            "STATE_TABLE": TABLE,
            "QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/q",
            "MODEL_PACKAGE_GROUP_NAME": "group",
            "COOLDOWN_SECONDS": "0",
            "MAX_RUNS_PER_DAY": "2",
        }
    )
    marker = core.Trigger(core.TriggerKind.MANUAL, "manual", "event-1", "event-1", T0)
    batch = core.DatasetBatch(DATASET, triggers=[marker], trigger_ids=["m-1"])

    def decide(now: datetime) -> core.Decision:
        pipeline, states = store.load([DATASET])
        return core.decide(batch, states[DATASET], pipeline, settings, now)

    # GIVEN two starts today, the second at 23:30 UTC, which is already tomorrow in UTC+1
    evening = datetime(2025, 3, 5, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    for moment in (T0, evening):
        store.record_start(DATASET, now=moment, digest=DIGEST_A, execution_arn=ARN, objects=0, size=0)

    # WHEN a manual retrain comes the same day THEN it waits for midnight UTC
    decision = decide(evening + timedelta(minutes=10))
    assert isinstance(decision, core.Wait)
    assert decision.until == datetime(2025, 3, 5, tzinfo=UTC)
    assert "daily maximum of 2 runs" in decision.reason

    # WHEN it comes the next day THEN it may start, and the start counts as the first of that day
    next_day = datetime(2025, 3, 5, 0, 0, 1, tzinfo=UTC)
    assert isinstance(decide(next_day), core.Candidate)
    store.record_start(DATASET, now=next_day, digest=DIGEST_B, execution_arn=ARN, objects=0, size=0)
    pipeline, _ = store.load([DATASET])
    assert (pipeline.runs_day, pipeline.runs_today) == ("2025-03-05", 1)


# --- the dataset's state ------------------------------------------------------------------------------


def dataset_state(store: StateStore, dataset: str = DATASET) -> core.DatasetState:
    return store.load([dataset])[1][dataset]


def test_object_activity_and_change_counts_accumulate_until_a_start_consumes_them(store: StateStore) -> None:
    # GIVEN two batches of object events
    store.touch(DATASET, core.Touch(activity_at=T0, add_objects=3, add_bytes=300))
    store.touch(DATASET, core.Touch(activity_at=T0 + timedelta(seconds=5), add_objects=2, add_bytes=20))
    state = dataset_state(store)
    assert (state.last_activity_at, state.changed_objects, state.changed_bytes) == (T0 + timedelta(seconds=5), 5, 320)

    # WHEN a touch carries only activity, or nothing, THEN the counters stay
    store.touch(DATASET, core.Touch(activity_at=T0 + timedelta(seconds=9), add_objects=0, add_bytes=0))
    store.touch(DATASET, core.Touch(activity_at=None, add_objects=0, add_bytes=0))
    store.touch(DATASET, core.Touch(activity_at=None, add_objects=0, add_bytes=7))
    state = dataset_state(store)
    assert (state.last_activity_at, state.changed_objects, state.changed_bytes) == (T0 + timedelta(seconds=9), 5, 327)

    # WHEN a start counted 4 objects and 300 bytes THEN what arrived meanwhile is still counted
    store.record_start(DATASET, now=T0 + timedelta(minutes=1), digest=DIGEST_A, execution_arn=ARN, objects=4, size=300)
    state = dataset_state(store)
    assert (state.changed_objects, state.changed_bytes) == (1, 27)
    assert (state.last_start_at, state.settled_at, state.last_digest) == (
        T0 + timedelta(minutes=1),
        T0 + timedelta(minutes=1),
        DIGEST_A,
    )
    pipeline, _ = store.load([DATASET])
    assert pipeline.last_start_at == T0 + timedelta(minutes=1)


def test_a_pending_trigger_and_the_check_due_time_are_kept_until_that_trigger_is_dropped(store: StateStore) -> None:
    first = core.Trigger(core.TriggerKind.DRIFT, "drift alarm x in ALARM", "alarm:x@1", "alarm:x@1", T0)
    newer = core.Trigger(core.TriggerKind.MANUAL, "manual retrain", None, "event-2", T0 + timedelta(minutes=1))
    store.save_waiting(DATASET, pending=first, check_due=T0 + timedelta(minutes=15))
    state = dataset_state(store)
    assert (state.pending, state.check_due_at) == (first, T0 + timedelta(minutes=15))

    # WHEN only a new due time is saved THEN the pending trigger stays; saving nothing changes nothing
    store.save_waiting(DATASET, pending=None, check_due=T0 + timedelta(minutes=30))
    store.save_waiting(DATASET, pending=None, check_due=None)
    assert (dataset_state(store).pending, dataset_state(store).check_due_at) == (first, T0 + timedelta(minutes=30))

    # WHEN a newer trigger replaced it THEN dropping the first one leaves the newer
    store.save_waiting(DATASET, pending=newer, check_due=None)
    store.drop_pending(DATASET, first.id)
    assert dataset_state(store).pending == newer
    store.drop_pending(DATASET, newer.id)
    assert dataset_state(store).pending is None


def test_settling_marks_activity_as_accounted_for(store: StateStore) -> None:
    store.touch(DATASET, core.Touch(activity_at=T0, add_objects=1, add_bytes=1))
    assert core.is_dirty(dataset_state(store))
    store.settle(DATASET, T0 + timedelta(seconds=1))
    assert dataset_state(store).settled_at == T0 + timedelta(seconds=1)
    assert not core.is_dirty(dataset_state(store))


def test_datasets_are_kept_apart_per_pipeline_and_read_in_batches_of_a_hundred(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN 150 datasets of this pipeline and one of the same name in another pipeline's store
    store_client = boto3.client("dynamodb", region_name=REGION)
    ours = StateStore(store_client, TABLE, PIPELINE)
    names = [f"d{i:03d}" for i in range(150)]
    for i, name in enumerate(names):
        ours.touch(name, core.Touch(activity_at=None, add_objects=i + 1, add_bytes=0))
    other = StateStore(boto3.client("dynamodb", region_name=REGION), TABLE, "other-pipeline")
    other.touch("d000", core.Touch(activity_at=None, add_objects=99, add_bytes=0))

    # WHEN every dataset is loaded at once THEN each has its own count, read in two requests
    requests: list[int] = []
    real = store_client.batch_get_item

    def counted(**kwargs: Any) -> Any:
        requests.append(len(kwargs["RequestItems"][TABLE]["Keys"]))
        return real(**kwargs)

    monkeypatch.setattr(store_client, "batch_get_item", counted)
    _, states = ours.load(names)
    assert requests == [100, 52]
    assert [states[name].changed_objects for name in names] == list(range(1, 151))
    assert other.load(["d000"])[1]["d000"].changed_objects == 99


def test_an_unreadable_pending_trigger_is_treated_as_none(store: StateStore) -> None:
    client = boto3.client("dynamodb", region_name=REGION)
    for stored in ("{not json", '["a list"]', '{"kind": "data"}'):
        client.put_item(
            TableName=TABLE,
            Item={
                "pk": {"S": f"dataset#{PIPELINE}#{DATASET}"},
                "pending": {"S": stored},
                "changed_objects": {"N": "2"},
            },
        )
        state = dataset_state(store)
        assert (state.pending, state.changed_objects) == (None, 2)


def test_unprocessed_keys_are_retried_then_reported_as_throttling(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    # The store backs off between attempts; the test records the waits instead of waiting.
    sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", sleeps.append)
    client = boto3.client("dynamodb", region_name=REGION)
    store = StateStore(client, TABLE, PIPELINE)
    real = client.batch_get_item
    calls: list[int] = []

    def unprocessed_twice(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= 2:
            return {"Responses": {}, "UnprocessedKeys": kwargs["RequestItems"]}
        return real(**kwargs)

    store.touch(DATASET, core.Touch(activity_at=T0, add_objects=1, add_bytes=1))
    monkeypatch.setattr(client, "batch_get_item", unprocessed_twice)
    assert dataset_state(store).changed_objects == 1
    assert len(calls) == 3

    attempts: list[dict[str, Any]] = []

    def never(**kwargs: Any) -> Any:
        attempts.append(kwargs["RequestItems"][TABLE])
        return {"UnprocessedKeys": kwargs["RequestItems"]}

    monkeypatch.setattr(client, "batch_get_item", never)
    with pytest.raises(StoreThrottled, match=r"^DynamoDB left keys unprocessed after 5 attempts$"):
        store.load([DATASET])
    assert len(attempts) == 5
    assert all(attempt["ConsistentRead"] is True for attempt in attempts)
    assert sleeps[-5:] == [0.05, 0.1, 0.2, 0.4, 0.8]


def test_errors_other_than_a_failed_condition_are_raised(store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    def throttled(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "UpdateItem")

    client = boto3.client("dynamodb", region_name=REGION)
    monkeypatch.setattr(client, "update_item", throttled)
    monkeypatch.setattr(client, "delete_item", throttled)
    store = StateStore(client, TABLE, PIPELINE)
    lock = core.Lock("start-a", DATASET, DIGEST_A, T0, T0 + LEASE)
    calls: list[Callable[[], object]] = [
        lambda: store.acquire_lock(owner="a", dataset=DATASET, digest=DIGEST_A, now=T0, lease=LEASE),
        lambda: store.set_lock_execution(owner="a", execution_arn=ARN),
        lambda: store.release_lock(lock),
        lambda: store.claim("k", token="t", now=T0, lease=LEASE, ttl=TTL),
        lambda: store.complete("k", token="t", execution_arn=ARN, now=T0, ttl=TTL),
        lambda: store.complete_adopted("k", execution_arn=ARN, now=T0, ttl=TTL),
        lambda: store.release_claim("k", token="t"),
        lambda: store.drop_pending(DATASET, "t"),
        lambda: store.record_start(DATASET, now=T0, digest=DIGEST_A, execution_arn=ARN, objects=0, size=0),
    ]
    for call in calls:
        with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
            call()


# --- the claim's other transitions -----------------------------------------------------------------------


def test_a_released_claim_can_be_taken_at_once_but_only_its_owner_releases_it(store: StateStore) -> None:
    key = f"{PIPELINE}|{DIGEST_A}"
    assert isinstance(store.claim(key, token="first", now=T0, lease=LEASE, ttl=TTL), Claimed)
    store.release_claim(key, token="someone-else")
    assert isinstance(store.claim(key, token="second", now=T0, lease=LEASE, ttl=TTL), Busy)
    store.release_claim(key, token="first")
    assert store.claim(key, token="second", now=T0, lease=LEASE, ttl=TTL) == Claimed(None, None, None)


def test_an_adopted_execution_completes_the_interrupted_claim_once(store: StateStore) -> None:
    key = f"{PIPELINE}|{DIGEST_A}"
    assert isinstance(store.claim(key, token="first", now=T0, lease=LEASE, ttl=TTL), Claimed)
    store.complete_adopted(key, execution_arn=ARN, now=T0 + timedelta(hours=1), ttl=TTL)
    [item] = boto3.client("dynamodb", region_name=REGION).scan(TableName=TABLE)["Items"]
    assert item["expires_at"] == {"N": str(int((T0 + timedelta(hours=1) + TTL).timestamp()))}
    assert store.claim(key, token="later", now=T0 + timedelta(hours=1), lease=LEASE, ttl=TTL) == AlreadyDone(ARN)
    # AND a second adoption changes nothing
    store.complete_adopted(key, execution_arn="arn:other", now=T0, ttl=TTL)
    assert store.claim(key, token="later", now=T0, lease=LEASE, ttl=TTL) == AlreadyDone(ARN)


def test_the_claim_record_expires_with_its_ttl_in_epoch_seconds(store: StateStore) -> None:
    key = f"{PIPELINE}|{DIGEST_A}"
    store.claim(key, token="first", now=T0, lease=LEASE, ttl=TTL)
    client = boto3.client("dynamodb", region_name=REGION)
    [item] = client.scan(TableName=TABLE)["Items"]
    assert item["expires_at"] == {"N": str(int((T0 + TTL).timestamp()))}
    assert (item["key"], item["status"], item["token"]) == ({"S": key}, {"S": "IN_PROGRESS"}, {"S": "first"})
    store.complete(key, token="first", execution_arn=ARN, now=T0 + timedelta(days=1), ttl=TTL)
    [item] = client.scan(TableName=TABLE)["Items"]
    assert item["expires_at"] == {"N": str(int((T0 + timedelta(days=1) + TTL).timestamp()))}
    assert item["status"] == {"S": "COMPLETED"}
    assert "lease_until" not in item


def test_claims_of_different_keys_are_separate_records_whatever_the_keys_hold(store: StateStore) -> None:
    # Keys hold event-derived text of any length (an alarm name, a monitoring job, an event id).
    keys = [f"{PIPELINE}|{DIGEST_A}", f"{PIPELINE}|{DIGEST_B}|manual|event-1", f"{PIPELINE}|" + "k" * 2000]
    for key in keys:
        assert isinstance(store.claim(key, token="t", now=T0, lease=LEASE, ttl=TTL), Claimed)
    readable = {
        item["key"]["S"] for item in boto3.client("dynamodb", region_name=REGION).scan(TableName=TABLE)["Items"]
    }
    # The readable copy of the long key is cut to its first 1,024 characters; the record's id hashes it whole.
    assert {len(key) for key in readable} == {len(keys[0]), len(keys[1]), 1024}
    assert keys[2][:1024] in readable


def test_a_key_holding_a_lone_surrogate_is_claimed_once_and_recorded_readably(store: StateStore) -> None:
    # GIVEN a key from an event whose JSON held an unpaired surrogate (valid JSON, not valid UTF-8)
    key = f"{PIPELINE}|{DIGEST_A}|drift|alarm-\ud800"
    # WHEN it is claimed, THEN the claim is taken (not an encoding error on every retry) ...
    assert isinstance(store.claim(key, token="first", now=T0, lease=LEASE, ttl=TTL), Claimed)
    # ... and held: a redelivery of the same event is busy, not a second claim
    assert isinstance(store.claim(key, token="again", now=T0, lease=LEASE, ttl=TTL), Busy)
    [item] = boto3.client("dynamodb", region_name=REGION).scan(TableName=TABLE)["Items"]
    assert item["key"]["S"] == f"{PIPELINE}|{DIGEST_A}|drift|alarm-\\ud800"


def test_a_failed_claim_without_the_old_item_reads_it(store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    # GIVEN a DynamoDB that does not return the old item on a failed condition (ReturnValuesOnConditionCheckFailure
    # is answered by some endpoints and emulators only)
    client = boto3.client("dynamodb", region_name=REGION)
    real = client.update_item

    def without_item(**kwargs: Any) -> Any:
        try:
            return real(**kwargs)
        except ClientError as exc:
            exc.response.pop("Item", None)  # type: ignore[typeddict-item]
            raise

    monkeypatch.setattr(client, "update_item", without_item)
    ours = StateStore(client, TABLE, PIPELINE)
    key = f"{PIPELINE}|{DIGEST_A}"
    assert isinstance(ours.claim(key, token="first", now=T0, lease=LEASE, ttl=TTL), Claimed)

    # WHEN / THEN the lease and the completion are still told apart
    assert ours.claim(key, token="second", now=T0, lease=LEASE, ttl=TTL) == Busy(T0 + LEASE)
    assert ours.complete(key, token="first", execution_arn=ARN, now=T0, ttl=TTL)
    assert ours.claim(key, token="third", now=T0, lease=LEASE, ttl=TTL) == AlreadyDone(ARN)


def test_the_read_after_a_failed_claim_is_consistent_and_a_vanished_record_is_busy(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    # GIVEN a DynamoDB that returns no old item on a failed condition, and records the reads
    client = boto3.client("dynamodb", region_name=REGION)
    real_update, real_get = client.update_item, client.get_item
    reads: list[dict[str, Any]] = []
    vanished = False

    def without_item(**kwargs: Any) -> Any:
        try:
            return real_update(**kwargs)
        except ClientError as exc:
            exc.response.pop("Item", None)  # type: ignore[typeddict-item]
            raise

    def recorded(**kwargs: Any) -> Any:
        reads.append(kwargs)
        return {} if vanished else real_get(**kwargs)

    monkeypatch.setattr(client, "update_item", without_item)
    monkeypatch.setattr(client, "get_item", recorded)
    ours = StateStore(client, TABLE, PIPELINE)
    key = f"{PIPELINE}|{DIGEST_A}"
    assert isinstance(ours.claim(key, token="first", now=T0, lease=LEASE, ttl=TTL), Claimed)
    ours.complete(key, token="first", execution_arn=ARN, now=T0, ttl=TTL)
    # WHEN the claim fails, THEN the record is read strongly consistent: an eventually consistent
    # read could miss the completion just written and answer Busy instead of AlreadyDone
    assert ours.claim(key, token="second", now=T0, lease=LEASE, ttl=TTL) == AlreadyDone(ARN)
    assert [r["ConsistentRead"] for r in reads] == [True]
    # AND a record released between the failed write and the read (no item) is busy until now
    vanished = True
    assert ours.claim(key, token="third", now=T0, lease=LEASE, ttl=TTL) == Busy(T0)


def test_a_dataset_never_touched_has_every_counter_at_zero(store: StateStore) -> None:
    pipeline, states = store.load(["never-touched"])
    assert pipeline.runs_today == 0
    state = states["never-touched"]
    assert (state.changed_objects, state.changed_bytes) == (0, 0)


def test_a_lock_item_with_fields_missing_reads_as_an_old_anonymous_lock(store: StateStore) -> None:
    client = boto3.client("dynamodb", region_name=REGION)
    client.put_item(TableName=TABLE, Item={"pk": {"S": f"lock#{PIPELINE}"}})
    epoch = datetime.fromtimestamp(0, UTC)
    assert held_lock(store) == core.Lock("", "", "", epoch, epoch, None)


def test_every_request_the_store_sends_is_one_dynamodb_accepts(store: StateStore) -> None:
    # moto accepts values DynamoDB refuses (an unknown ReturnValuesOnConditionCheckFailure, say);
    # botocore's model of the DynamoDB API is the contract: members, types, enums, lengths, patterns.
    from botocore.validate import ParamValidator

    from tests.contracts.botocore_checks import constraint_problems

    client = boto3.client("dynamodb", region_name=REGION)  # the fixture's table, with a recorder
    sent: list[tuple[str, dict[str, Any], Any]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        sent.append((model.name, dict(params), model.input_shape))

    client.meta.events.register("provide-client-params.dynamodb.*", record)
    ours = StateStore(client, TABLE, PIPELINE)
    # WHEN the store does everything the handler asks of it
    key, later = f"{PIPELINE}|{DIGEST_A}", T0 + timedelta(minutes=1)
    ours.touch(DATASET, core.Touch(activity_at=T0, add_objects=3, add_bytes=300))
    trigger = core.Trigger(core.TriggerKind.DRIFT, "drift", "alarm:x@1", "alarm:x@1", T0)
    ours.save_waiting(DATASET, pending=trigger, check_due=later)
    ours.drop_pending(DATASET, "alarm:x@1")
    ours.settle(DATASET, T0)
    ours.load([DATASET])
    assert isinstance(ours.claim(key, token="first", now=T0, lease=LEASE, ttl=TTL), Claimed)
    assert isinstance(ours.claim(key, token="second", now=T0, lease=LEASE, ttl=TTL), Busy)
    champion = core.Champion(f"{ARN.split(':pipeline')[0]}:model-package/g/1", {"ChampionMetric": "0.8"})
    ours.record_start_parameters(key, token="first", manifest_uri="s3://b/m", created_at="c", champion=champion)
    assert ours.acquire_lock(owner="first", dataset=DATASET, digest=DIGEST_A, now=T0, lease=LEASE)
    assert ours.set_lock_execution(owner="first", execution_arn=ARN)
    ours.record_start(DATASET, now=later, digest=DIGEST_A, execution_arn=ARN, objects=3, size=300)
    assert ours.complete(key, token="first", execution_arn=ARN, now=later, ttl=TTL)
    ours.complete_adopted(f"{key}|other", execution_arn=ARN, now=later, ttl=TTL)
    ours.release_claim(f"{key}|other", token="first")
    assert ours.release_lock_of_execution(ARN)
    # THEN every request is valid against botocore's model of its operation
    operations = {name for name, _, _ in sent}
    assert {"UpdateItem", "BatchGetItem", "DeleteItem"} <= operations
    problems = [
        f"{name}: {problem}"
        for name, params, shape in sent
        for problem in ParamValidator().validate(params, shape).generate_report().splitlines()
        + constraint_problems(params, shape)
    ]
    assert problems == []
    assert len(sent) >= 15
