"""The trigger's state in one DynamoDB table (partition key ``pk``, a string; TTL attribute ``expires_at``).

Items, all scoped by pipeline name so that several triggers can share a table:

``lock#<pipeline>``
    The lock: ``owner`` (idempotency key of the start holding it), ``dataset``,
    ``digest``, ``acquired_at``, ``lease_until`` and, once started,
    ``execution_arn``. Taken with a conditional write; deleted when the
    execution ends.
``pipeline#<pipeline>``
    ``last_start_at``, ``last_execution_arn``, ``runs_day`` and ``runs_today``
    (cool-down and daily maximum).
``dataset#<pipeline>#<dataset>``
    ``last_activity_at``, ``changed_objects``, ``changed_bytes``,
    ``last_start_at``, ``last_digest``, ``settled_at``, ``check_due_at`` and the
    single ``pending`` trigger (JSON) with its ``pending_id``; for a dataset versioned by
    snapshots, the newest finished ``snapshot_version`` (JSON) and its ``snapshot_as_of``.
``idem#<sha256 of the idempotency key>``
    ``status`` (``IN_PROGRESS`` with ``token`` and ``lease_until``, then
    ``COMPLETED`` with ``execution_arn``), ``manifest_uri``, ``manifest_created_at`` and
    ``champion`` (JSON) of the start's request, ``key`` (readable), ``expires_at`` (TTL,
    epoch seconds).

Times are epoch milliseconds, except ``expires_at`` (epoch seconds, as DynamoDB TTL requires).
Every read is strongly consistent.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from cdk_mlops.lambdas.retrain_trigger.core import (
    Champion,
    DatasetState,
    Lock,
    PipelineState,
    Touch,
    Trigger,
    utc_day,
)
from cdk_mlops.lambdas.retrain_trigger.events import SnapshotVersion

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

IN_PROGRESS: Final = "IN_PROGRESS"
COMPLETED: Final = "COMPLETED"
_CONDITION_FAILED: Final = "ConditionalCheckFailedException"
_BATCH_GET_LIMIT: Final = 100


class StoreThrottled(RuntimeError):
    """DynamoDB kept returning unprocessed keys; the records are retried later."""


@dataclass(frozen=True, slots=True)
class Claimed:
    """This invocation owns the idempotency record.

    ``manifest_uri``, ``manifest_created_at`` and ``champion`` are set when an earlier,
    interrupted attempt prepared the start: the retry starts with exactly the same
    parameters, so that SageMaker's ``ClientRequestToken`` check recognises it.
    """

    manifest_uri: str | None
    manifest_created_at: str | None = None
    champion: Champion | None = None


@dataclass(frozen=True, slots=True)
class AlreadyDone:
    """The record is COMPLETED: this data version (for this trigger) was started."""

    execution_arn: str | None


@dataclass(frozen=True, slots=True)
class Busy:
    """Another invocation holds the record's lease right now."""

    lease_until: datetime


Claim = Claimed | AlreadyDone | Busy


def is_condition_failure(exc: ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == _CONDITION_FAILED)


def _ms(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def _readable(key: str) -> str:
    """The claim's key as the record shows it: its first 1,024 characters, always valid UTF-8.

    A key can hold any code point an event carried, lone surrogates included, which DynamoDB
    (UTF-8) cannot store; those are written as ``\\udXXX`` escapes. The record's id hashes the
    key whole, so this copy is for people and never decides a claim.
    """
    return key[:1024].encode("utf-8", "backslashreplace").decode("utf-8")


def _from_ms(value: Mapping[str, Any] | None) -> datetime | None:
    if not value or "N" not in value:
        return None
    return datetime.fromtimestamp(int(value["N"]) / 1000, UTC)


def _str(value: Mapping[str, Any] | None) -> str | None:
    return value.get("S") if value else None


def _int(value: Mapping[str, Any] | None) -> int:
    return int(value["N"]) if value and "N" in value else 0


class StateStore:
    """Reads and conditional writes of the trigger's state for one pipeline."""

    def __init__(self, client: DynamoDBClient, table: str, pipeline: str) -> None:
        self._ddb = client
        self._table = table
        self._pipeline = pipeline

    # --- keys ---------------------------------------------------------------------------------

    @property
    def _lock_key(self) -> dict[str, Any]:
        return {"pk": {"S": f"lock#{self._pipeline}"}}

    @property
    def _pipeline_key(self) -> dict[str, Any]:
        return {"pk": {"S": f"pipeline#{self._pipeline}"}}

    def _dataset_key(self, dataset: str) -> dict[str, Any]:
        return {"pk": {"S": f"dataset#{self._pipeline}#{dataset}"}}

    @staticmethod
    def _idem_key(key: str) -> dict[str, Any]:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return {"pk": {"S": f"idem#{digest}"}}

    # --- reads --------------------------------------------------------------------------------

    def load(self, datasets: Sequence[str]) -> tuple[PipelineState, dict[str, DatasetState]]:
        """The lock, the run counters and each dataset's state, in one consistent batch read."""
        keys = [self._lock_key, self._pipeline_key, *(self._dataset_key(d) for d in datasets)]
        items: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), _BATCH_GET_LIMIT):
            items.update(self._batch_get(keys[start : start + _BATCH_GET_LIMIT]))
        lock_item = items.get(self._lock_key["pk"]["S"])
        pipeline_item = items.get(self._pipeline_key["pk"]["S"], {})
        pipeline = PipelineState(
            lock=_lock(lock_item) if lock_item else None,
            last_start_at=_from_ms(pipeline_item.get("last_start_at")),
            runs_day=_str(pipeline_item.get("runs_day")),
            runs_today=_int(pipeline_item.get("runs_today")),
        )
        states = {d: _dataset_state(items.get(self._dataset_key(d)["pk"]["S"], {})) for d in datasets}
        return pipeline, states

    def _batch_get(self, keys: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        request: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
        for attempt in range(5):
            response = self._ddb.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(self._table, []):
                found[item["pk"]["S"]] = item
            request = dict(response.get("UnprocessedKeys") or {})
            if not request:
                return found
            time.sleep(0.05 * 2**attempt)
        raise StoreThrottled("DynamoDB left keys unprocessed after 5 attempts")

    # --- dataset state ------------------------------------------------------------------------

    def touch(self, dataset: str, touch: Touch) -> None:
        """Record object activity and change counts."""
        sets: list[str] = []
        adds: list[str] = []
        values: dict[str, Any] = {}
        if touch.activity_at is not None:
            sets.append("last_activity_at = :activity")
            values[":activity"] = {"N": _ms(touch.activity_at)}
        if touch.add_objects or touch.add_bytes:
            adds.append("changed_objects :objects, changed_bytes :bytes")
            values[":objects"] = {"N": str(touch.add_objects)}
            values[":bytes"] = {"N": str(touch.add_bytes)}
        if not values:
            return
        expression = " ".join(part for part in (_clause("SET", sets), _clause("ADD", adds)) if part)
        self._ddb.update_item(
            TableName=self._table,
            Key=self._dataset_key(dataset),
            UpdateExpression=expression,
            ExpressionAttributeValues=values,
        )

    def save_waiting(self, dataset: str, *, pending: Trigger | None, check_due: datetime | None) -> None:
        """Store the pending trigger and the due time of the check just sent."""
        sets: list[str] = []
        values: dict[str, Any] = {}
        if pending is not None:
            sets += ["pending = :pending", "pending_id = :pending_id"]
            values[":pending"] = {"S": json.dumps(pending.to_json(), separators=(",", ":"))}
            values[":pending_id"] = {"S": pending.id}
        if check_due is not None:
            sets.append("check_due_at = :due")
            values[":due"] = {"N": _ms(check_due)}
        if not sets:
            return
        self._ddb.update_item(
            TableName=self._table,
            Key=self._dataset_key(dataset),
            UpdateExpression=_clause("SET", sets),
            ExpressionAttributeValues=values,
        )

    def record_snapshot(self, dataset: str, version: SnapshotVersion) -> bool:
        """Make ``version`` the dataset's snapshot unless a newer one is stored; ``True`` if it was stored.

        Step Functions delivers its events best effort and in any order: the condition keeps the
        newest version whichever event arrives last.
        """
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=self._dataset_key(dataset),
                UpdateExpression="SET snapshot_version = :snapshot, snapshot_as_of = :as_of",
                ConditionExpression="attribute_not_exists(snapshot_as_of) OR snapshot_as_of <= :as_of",
                ExpressionAttributeValues={
                    ":snapshot": {"S": json.dumps(version.to_json(), separators=(",", ":"))},
                    ":as_of": {"N": _ms(version.as_of)},
                },
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            return False
        return True

    def drop_pending(self, dataset: str, trigger_id: str) -> None:
        """Clear the pending trigger if it is still ``trigger_id`` (a newer one stays)."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=self._dataset_key(dataset),
                UpdateExpression="REMOVE pending, pending_id",
                ConditionExpression="pending_id = :id",
                ExpressionAttributeValues={":id": {"S": trigger_id}},
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise

    def settle(self, dataset: str, now: datetime) -> None:
        """Activity up to ``now`` is accounted for (the data was a version already started)."""
        self._ddb.update_item(
            TableName=self._table,
            Key=self._dataset_key(dataset),
            UpdateExpression="SET settled_at = :now",
            ExpressionAttributeValues={":now": {"N": _ms(now)}},
        )

    def record_start(
        self, dataset: str, *, now: datetime, digest: str, execution_arn: str, objects: int, size: int
    ) -> None:
        """After a start: the dataset is settled, its counters drop by what was counted, the day count grows."""
        self._ddb.update_item(
            TableName=self._table,
            Key=self._dataset_key(dataset),
            UpdateExpression=(
                "SET last_start_at = :now, settled_at = :now, last_digest = :digest, last_execution_arn = :arn "
                "ADD changed_objects :objects, changed_bytes :bytes"
            ),
            ExpressionAttributeValues={
                ":now": {"N": _ms(now)},
                ":digest": {"S": digest},
                ":arn": {"S": execution_arn},
                ":objects": {"N": str(-objects)},
                ":bytes": {"N": str(-size)},
            },
        )
        day = utc_day(now)
        common = {":now": {"N": _ms(now)}, ":arn": {"S": execution_arn}, ":day": {"S": day}, ":one": {"N": "1"}}
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=self._pipeline_key,
                UpdateExpression="SET last_start_at = :now, last_execution_arn = :arn ADD runs_today :one",
                ConditionExpression="runs_day = :day",
                ExpressionAttributeValues=common,
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            self._ddb.update_item(
                TableName=self._table,
                Key=self._pipeline_key,
                UpdateExpression=(
                    "SET last_start_at = :now, last_execution_arn = :arn, runs_day = :day, runs_today = :one"
                ),
                ExpressionAttributeValues=common,
            )

    # --- idempotency --------------------------------------------------------------------------

    def claim(self, key: str, *, token: str, now: datetime, lease: timedelta, ttl: timedelta) -> Claim:
        """Take the idempotency record for ``key`` (new, or IN_PROGRESS with an expired lease)."""
        try:
            response = self._ddb.update_item(
                TableName=self._table,
                Key=self._idem_key(key),
                UpdateExpression=(
                    "SET #status = :progress, #token = :token, lease_until = :lease, #key = :key, "
                    "created_at = if_not_exists(created_at, :now), expires_at = :expires"
                ),
                ConditionExpression="attribute_not_exists(pk) OR (#status = :progress AND lease_until < :now)",
                ExpressionAttributeNames={"#status": "status", "#token": "token", "#key": "key"},
                ExpressionAttributeValues={
                    ":progress": {"S": IN_PROGRESS},
                    ":token": {"S": token},
                    ":lease": {"N": _ms(now + lease)},
                    ":key": {"S": _readable(key)},
                    ":now": {"N": _ms(now)},
                    ":expires": {"N": str(int((now + ttl).timestamp()))},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            item: Mapping[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            if item is None:
                got = self._ddb.get_item(TableName=self._table, Key=self._idem_key(key), ConsistentRead=True)
                item = got.get("Item", {})
            if _str(item.get("status")) == COMPLETED:
                return AlreadyDone(_str(item.get("execution_arn")))
            return Busy(_from_ms(item.get("lease_until")) or now)
        attributes = response.get("Attributes", {})
        stored = _str(attributes.get("champion"))
        return Claimed(
            _str(attributes.get("manifest_uri")),
            _str(attributes.get("manifest_created_at")),
            Champion.from_json(stored) if stored else None,
        )

    def record_start_parameters(
        self, key: str, *, token: str, manifest_uri: str, created_at: str, champion: Champion
    ) -> None:
        """Remember the manifest and the champion of this attempt so that a retry starts with the same parameters."""
        self._ddb.update_item(
            TableName=self._table,
            Key=self._idem_key(key),
            UpdateExpression="SET manifest_uri = :uri, manifest_created_at = :created, #champion = :champion",
            ConditionExpression="#token = :token",
            ExpressionAttributeNames={"#token": "token", "#champion": "champion"},
            ExpressionAttributeValues={
                ":uri": {"S": manifest_uri},
                ":created": {"S": created_at},
                ":champion": {"S": champion.to_json()},
                ":token": {"S": token},
            },
        )

    def complete(self, key: str, *, token: str, execution_arn: str, now: datetime, ttl: timedelta) -> bool:
        """Mark the record COMPLETED; ``False`` if another attempt took it over meanwhile."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=self._idem_key(key),
                UpdateExpression="SET #status = :done, execution_arn = :arn, expires_at = :expires REMOVE lease_until",
                ConditionExpression="#token = :token",
                ExpressionAttributeNames={"#status": "status", "#token": "token"},
                ExpressionAttributeValues={
                    ":done": {"S": COMPLETED},
                    ":arn": {"S": execution_arn},
                    ":token": {"S": token},
                    ":expires": {"N": str(int((now + ttl).timestamp()))},
                },
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            return False
        return True

    def complete_adopted(self, key: str, *, execution_arn: str, now: datetime, ttl: timedelta) -> None:
        """Mark an interrupted attempt's record COMPLETED with the execution it did start."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=self._idem_key(key),
                UpdateExpression="SET #status = :done, execution_arn = :arn, expires_at = :expires REMOVE lease_until",
                ConditionExpression="#status = :progress",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":done": {"S": COMPLETED},
                    ":progress": {"S": IN_PROGRESS},
                    ":arn": {"S": execution_arn},
                    ":expires": {"N": str(int((now + ttl).timestamp()))},
                },
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise

    def release_claim(self, key: str, *, token: str) -> None:
        """Delete our IN_PROGRESS record after a failed start, so that a retry can proceed."""
        try:
            self._ddb.delete_item(
                TableName=self._table,
                Key=self._idem_key(key),
                ConditionExpression="#status = :progress AND #token = :token",
                ExpressionAttributeNames={"#status": "status", "#token": "token"},
                ExpressionAttributeValues={":progress": {"S": IN_PROGRESS}, ":token": {"S": token}},
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise

    # --- lock ---------------------------------------------------------------------------------

    def acquire_lock(self, *, owner: str, dataset: str, digest: str, now: datetime, lease: timedelta) -> bool:
        """Take the lock, or re-enter it for the same start (``owner``); ``False`` when someone else holds it."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=self._lock_key,
                UpdateExpression=(
                    "SET #owner = :owner, dataset = :dataset, digest = :digest, "
                    "acquired_at = if_not_exists(acquired_at, :now), lease_until = :lease"
                ),
                ConditionExpression="attribute_not_exists(pk) OR #owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":dataset": {"S": dataset},
                    ":digest": {"S": digest},
                    ":now": {"N": _ms(now)},
                    ":lease": {"N": _ms(now + lease)},
                },
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            return False
        return True

    def set_lock_execution(self, *, owner: str, execution_arn: str) -> bool:
        """Record the execution holding the lock; ``False`` if the lock is no longer ``owner``'s."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=self._lock_key,
                UpdateExpression="SET execution_arn = :arn",
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":arn": {"S": execution_arn}, ":owner": {"S": owner}},
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            return False
        return True

    def release_lock(self, lock: Lock) -> bool:
        """Delete the lock if it is still exactly ``lock`` (same owner, same execution)."""
        names = {"#owner": "owner"}
        values: dict[str, Any] = {":owner": {"S": lock.owner}}
        if lock.execution_arn is None:
            condition = "#owner = :owner AND attribute_not_exists(execution_arn)"
        else:
            condition = "#owner = :owner AND execution_arn = :arn"
            values[":arn"] = {"S": lock.execution_arn}
        return self._delete_lock(condition, names, values)

    def release_lock_of_execution(self, execution_arn: str) -> bool:
        """Delete the lock if ``execution_arn`` holds it; ``False`` otherwise."""
        return self._delete_lock("execution_arn = :arn", None, {":arn": {"S": execution_arn}})

    def _delete_lock(self, condition: str, names: dict[str, str] | None, values: dict[str, Any]) -> bool:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._lock_key,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        try:
            self._ddb.delete_item(**kwargs)
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            return False
        return True


def _clause(verb: str, parts: list[str]) -> str:
    return f"{verb} {', '.join(parts)}" if parts else ""


def _lock(item: Mapping[str, Any]) -> Lock:
    acquired = _from_ms(item.get("acquired_at")) or datetime.fromtimestamp(0, UTC)
    return Lock(
        owner=_str(item.get("owner")) or "",
        dataset=_str(item.get("dataset")) or "",
        digest=_str(item.get("digest")) or "",
        acquired_at=acquired,
        lease_until=_from_ms(item.get("lease_until")) or acquired,
        execution_arn=_str(item.get("execution_arn")),
    )


def _dataset_state(item: Mapping[str, Any]) -> DatasetState:
    pending: Trigger | None = None
    raw = _str(item.get("pending"))
    if raw:
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        pending = Trigger.from_json(data) if isinstance(data, dict) else None
    return DatasetState(
        last_activity_at=_from_ms(item.get("last_activity_at")),
        changed_objects=_int(item.get("changed_objects")),
        changed_bytes=_int(item.get("changed_bytes")),
        last_start_at=_from_ms(item.get("last_start_at")),
        last_digest=_str(item.get("last_digest")),
        settled_at=_from_ms(item.get("settled_at")),
        check_due_at=_from_ms(item.get("check_due_at")),
        pending=pending,
        snapshot=_snapshot(_str(item.get("snapshot_version"))),
    )


def _snapshot(raw: str | None) -> SnapshotVersion | None:
    """The stored snapshot, or ``None`` when there is none or it cannot be read."""
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return SnapshotVersion(
            dataset=str(data["dataset"]),
            manifest_uri=str(data["manifest"]),
            digest=str(data["digest"]),
            objects=int(data["object_count"]),
            bytes=int(data["total_bytes"]),
            as_of=datetime.fromisoformat(str(data["as_of"])).astimezone(UTC),
        )
    except (ValueError, KeyError, TypeError):
        return None
