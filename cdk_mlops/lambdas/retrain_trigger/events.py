"""The events the retrain trigger understands, and a parser that never raises.

Every message on the trigger queue is an EventBridge-shaped JSON document
(``source``, ``detail-type``, ``detail``). :func:`parse_record` turns one SQS
record into exactly one of:

* a typed event (:class:`ObjectCreated`, :class:`ScheduledRetrain`, ...);
* :class:`Ignored`: a well-formed message that is not for us (an unknown
  ``detail-type``, an S3 test event). It is logged and deleted;
* :class:`Invalid`: a message that claims to be one of our kinds but is broken
  (not JSON, a missing field, a wrong type). The handler reports it as a batch
  item failure so that, after the queue's ``maxReceiveCount``, it lands in the
  dead-letter queue where a person can see which producer is broken.

Pure: no boto3, no environment, no clock, no logging.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import unquote_plus

# --- The event vocabulary ---------------------------------------------------------------------

#: Source of the messages this library defines (schedule, manual, check).
SOURCE: Final = "cdk-mlops.retrain"
#: Source of Model Monitor violation events (published by the monitoring side of the library).
MONITOR_SOURCE: Final = "cdk-mlops.monitor"

S3_SOURCE: Final = "aws.s3"
OBJECT_CREATED: Final = "Object Created"
CLOUDWATCH_SOURCE: Final = "aws.cloudwatch"
ALARM_STATE_CHANGE: Final = "CloudWatch Alarm State Change"
SAGEMAKER_SOURCE: Final = "aws.sagemaker"
PIPELINE_STATUS_CHANGE: Final = "SageMaker Model Building Pipeline Execution Status Change"
SCHEDULED_RETRAIN: Final = "Scheduled Retrain"
MANUAL_RETRAIN: Final = "Manual Retrain"
RETRAIN_CHECK: Final = "Retrain Check"
MONITOR_VIOLATION: Final = "Model Monitor Violation"
STATES_SOURCE: Final = "aws.states"
EXECUTION_STATUS_CHANGE: Final = "Step Functions Execution Status Change"
#: The status of a Step Functions execution that ended with an output.
EXECUTION_SUCCEEDED: Final = "SUCCEEDED"

#: Pipeline execution statuses after which an execution no longer runs.
TERMINAL_STATUSES: Final = frozenset({"Succeeded", "Failed", "Stopped", "CompletedWithFailures"})
#: Statuses of an execution that still occupies the pipeline.
RUNNING_STATUSES: Final = frozenset({"Executing", "Stopping"})

#: What the handler publishes in return (Embedded Metric Format log events), which the construct's
#: alarms and dashboards read: how many decisions of each kind an invocation made ...
DECISIONS_METRIC: Final = "Decisions"
#: ... by the metric's one dimension, whose values are ``core.DecisionKind``'s.
DECISION_DIMENSION: Final = "Decision"


# --- Parse results ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ignored:
    """A well-formed message that asks nothing of the trigger."""

    reason: str


@dataclass(frozen=True, slots=True)
class Invalid:
    """A broken message; it is retried and then kept in the dead-letter queue."""

    reason: str


@dataclass(frozen=True, slots=True)
class ObjectCreated:
    """``aws.s3`` / ``Object Created``; ``key`` is URL-decoded."""

    event_id: str
    time: datetime | None
    bucket: str
    key: str
    size: int
    etag: str | None


@dataclass(frozen=True, slots=True)
class ScheduledRetrain:
    """``cdk-mlops.retrain`` / ``Scheduled Retrain`` from EventBridge Scheduler.

    ``scheduled_time`` is the slot (``<aws.scheduler.scheduled-time>``); it stays
    the same when Scheduler retries, so it is what deduplicates. With ``always``
    false (the default) a scheduled run only trains a data version that has not
    been trained yet: it is the backstop for missed object events.
    """

    event_id: str
    time: datetime | None
    dataset: str
    scheduled_time: str
    always: bool
    pipeline: str | None = None
    """The pipeline to retrain (``detail.pipeline``); ``None``: every pipeline that watches ``dataset``."""


@dataclass(frozen=True, slots=True)
class ManualRetrain:
    """``cdk-mlops.retrain`` / ``Manual Retrain``: a person asks for a run."""

    event_id: str
    time: datetime | None
    dataset: str
    reason: str
    requested_by: str | None
    pipeline: str | None = None
    """The pipeline to retrain (``detail.pipeline``); ``None``: every pipeline that watches ``dataset``."""


@dataclass(frozen=True, slots=True)
class AlarmStateChange:
    """``aws.cloudwatch`` / ``CloudWatch Alarm State Change``."""

    event_id: str
    time: datetime | None
    alarm_name: str
    state: str
    state_timestamp: str | None


@dataclass(frozen=True, slots=True)
class MonitorViolation:
    """``cdk-mlops.monitor`` / ``Model Monitor Violation``: a monitoring run found violations."""

    event_id: str
    time: datetime | None
    dataset: str | None
    schedule_name: str | None
    execution_id: str
    violations: int | None


@dataclass(frozen=True, slots=True)
class PipelineStatusChange:
    """``aws.sagemaker`` / ``SageMaker Model Building Pipeline Execution Status Change``."""

    event_id: str
    time: datetime | None
    pipeline_arn: str
    execution_arn: str
    status: str

    @property
    def pipeline_name(self) -> str:
        """The pipeline name from its ARN (``arn:...:pipeline/<name>``)."""
        return self.pipeline_arn.rsplit(":pipeline/", 1)[-1].split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class RetrainCheck:
    """``cdk-mlops.retrain`` / ``Retrain Check``: the trigger's own delayed wake-up.

    ``due`` is when the dataset should be evaluated again. SQS delays a message
    by at most 15 minutes, so a check that arrives before ``due`` is sent again
    for the rest of the wait.
    """

    event_id: str
    time: datetime | None
    pipeline: str
    dataset: str
    due: datetime


@dataclass(frozen=True, slots=True)
class SnapshotVersion:
    """A dataset version written by ``InventorySnapshot`` (its ``Finalize`` output).

    Attributes:
        dataset: The dataset snapshotted.
        manifest_uri: ``s3://`` URI of the version's index (v2, sharded).
        digest: The version's identity (the index's ``sha256``: its set digest).
        objects: Objects in the version.
        bytes: Their total size.
        as_of: When the inventory report listed them: the time the version covers.
    """

    dataset: str
    manifest_uri: str
    digest: str
    objects: int
    bytes: int
    as_of: datetime

    def to_json(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "manifest": self.manifest_uri,
            "digest": self.digest,
            "object_count": self.objects,
            "total_bytes": self.bytes,
            "as_of": self.as_of.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


#: The schema of the index ``InventorySnapshot`` writes (``manifest_shards.MANIFEST_INDEX_SCHEMA_V2``;
#: the trigger's asset ships without that module).
SNAPSHOT_INDEX_SCHEMA: Final = "cdk-mlops.dataset-manifest-index.v2"


def snapshot_from_index(document: object, *, uri: str, dataset: str) -> SnapshotVersion | None:
    """The version a snapshot's index document describes; ``None`` if it is not one of ``dataset``'s.

    Reads the header only (``schema``, ``dataset``, ``sha256``, ``object_count``, ``total_bytes``,
    ``as_of``); the shards are Preprocess's to read and check. Never raises.
    """
    if not isinstance(document, Mapping) or document.get("schema") != SNAPSHOT_INDEX_SCHEMA:
        return None
    digest, objects, size = document.get("sha256"), document.get("object_count"), document.get("total_bytes")
    as_of = parse_time(document.get("as_of"))
    counts = [v for v in (objects, size) if isinstance(v, int) and not isinstance(v, bool) and v >= 0]
    if document.get("dataset") != dataset or not isinstance(digest, str) or not digest or len(counts) != 2:
        return None
    if as_of is None:
        return None
    return SnapshotVersion(dataset, uri, digest, counts[0], counts[1], as_of)


@dataclass(frozen=True, slots=True)
class SnapshotFinished:
    """``aws.states`` / ``Step Functions Execution Status Change`` of a snapshot state machine.

    Step Functions puts ``DescribeExecution``'s fields in ``detail``; ``output`` (a JSON string)
    is there when the execution succeeded and its output is under 248 KB. ``version`` is that
    output read as a :class:`SnapshotVersion`; ``None`` for any status but ``SUCCEEDED``.
    """

    event_id: str
    time: datetime | None
    state_machine_arn: str
    execution_arn: str
    status: str
    version: SnapshotVersion | None


Event = (
    ObjectCreated
    | ScheduledRetrain
    | ManualRetrain
    | AlarmStateChange
    | MonitorViolation
    | PipelineStatusChange
    | RetrainCheck
    | SnapshotFinished
)
Parsed = Event | Ignored | Invalid


# --- Parsing ----------------------------------------------------------------------------------


class _Bad(Exception):
    """A field is missing or has the wrong type; the message names it."""


@dataclass(frozen=True, slots=True)
class _Envelope:
    event_id: str
    time: datetime | None


def parse_time(value: object) -> datetime | None:
    """An ISO-8601 timestamp as an aware UTC datetime, or ``None`` when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _get(obj: Mapping[str, Any], *path: str) -> object:
    current: object = obj
    for name in path:
        if not isinstance(current, Mapping) or name not in current:
            raise _Bad(f"missing detail.{'.'.join(path)}")
        current = current[name]
    return current


def _text(obj: Mapping[str, Any], *path: str) -> str:
    value = _get(obj, *path)
    if not isinstance(value, str) or not value:
        raise _Bad(f"detail.{'.'.join(path)} must be a non-empty string")
    return value


def _optional_text(obj: Mapping[str, Any], *path: str) -> str | None:
    try:
        value = _get(obj, *path)
    except _Bad:
        return None
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Bad(f"detail.{'.'.join(path)} must be a string")
    return value or None


def _count(obj: Mapping[str, Any], *path: str) -> int:
    value = _get(obj, *path)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Bad(f"detail.{'.'.join(path)} must be a non-negative integer")
    return value


def _object_created(env: _Envelope, detail: Mapping[str, Any]) -> ObjectCreated:
    # EventBridge carries the key form-encoded like S3 notifications do ("a b+c" arrives as
    # "a+b%2Bc"); unquote_plus restores it. Keys are only used to route and filter: the manifest
    # is built from a listing, so a key that decodes oddly can never corrupt a snapshot.
    etag = _optional_text(detail, "object", "etag")
    return ObjectCreated(
        event_id=env.event_id,
        time=env.time,
        bucket=_text(detail, "bucket", "name"),
        key=unquote_plus(_text(detail, "object", "key")),
        size=_count(detail, "object", "size"),
        etag=etag,
    )


def _scheduled(env: _Envelope, detail: Mapping[str, Any]) -> ScheduledRetrain:
    always = detail.get("always", False)
    if not isinstance(always, bool):
        raise _Bad("detail.always must be true or false")
    slot = _optional_text(detail, "scheduledTime") or (env.time.isoformat() if env.time else None) or env.event_id
    if not slot:
        raise _Bad("detail.scheduledTime is required when the event has no time or id")
    return ScheduledRetrain(
        event_id=env.event_id,
        time=env.time,
        dataset=_text(detail, "dataset"),
        scheduled_time=slot,
        always=always,
        pipeline=_optional_text(detail, "pipeline"),
    )


def _manual(env: _Envelope, detail: Mapping[str, Any]) -> ManualRetrain:
    if not env.event_id:
        raise _Bad("a manual retrain needs an event id (it deduplicates redelivery)")
    return ManualRetrain(
        event_id=env.event_id,
        time=env.time,
        dataset=_text(detail, "dataset"),
        reason=_optional_text(detail, "reason") or "manual retrain",
        requested_by=_optional_text(detail, "requestedBy"),
        pipeline=_optional_text(detail, "pipeline"),
    )


def _alarm(env: _Envelope, detail: Mapping[str, Any]) -> AlarmStateChange:
    timestamp = _optional_text(detail, "state", "timestamp")
    if timestamp is None and not env.event_id:
        raise _Bad("an alarm state change needs detail.state.timestamp or an event id")
    return AlarmStateChange(
        event_id=env.event_id,
        time=env.time,
        alarm_name=_text(detail, "alarmName"),
        state=_text(detail, "state", "value"),
        state_timestamp=timestamp,
    )


def _violation(env: _Envelope, detail: Mapping[str, Any]) -> MonitorViolation:
    execution_id = _optional_text(detail, "processingJobArn") or _optional_text(detail, "executionId") or env.event_id
    if not execution_id:
        raise _Bad("a violation needs detail.processingJobArn, detail.executionId or an event id")
    violations: int | None = None
    if "violations" in detail:
        violations = _count(detail, "violations")
    return MonitorViolation(
        event_id=env.event_id,
        time=env.time,
        dataset=_optional_text(detail, "dataset"),
        schedule_name=_optional_text(detail, "monitoringScheduleName"),
        execution_id=execution_id,
        violations=violations,
    )


def _status_change(env: _Envelope, detail: Mapping[str, Any]) -> PipelineStatusChange:
    execution_arn = _text(detail, "pipelineExecutionArn")
    pipeline_arn = _optional_text(detail, "pipelineArn") or execution_arn.split("/execution/", 1)[0]
    if ":pipeline/" not in pipeline_arn:
        raise _Bad("detail.pipelineArn is not a SageMaker pipeline ARN")
    return PipelineStatusChange(
        event_id=env.event_id,
        time=env.time,
        pipeline_arn=pipeline_arn,
        execution_arn=execution_arn,
        status=_text(detail, "currentPipelineExecutionStatus"),
    )


def _check(env: _Envelope, detail: Mapping[str, Any]) -> RetrainCheck:
    due = _get(detail, "due")
    if isinstance(due, bool) or not isinstance(due, int):
        raise _Bad("detail.due must be epoch seconds (an integer)")
    try:
        due_at = datetime.fromtimestamp(due, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise _Bad("detail.due is out of range") from exc
    return RetrainCheck(
        event_id=env.event_id,
        time=env.time,
        pipeline=_text(detail, "pipeline"),
        dataset=_text(detail, "dataset"),
        due=due_at,
    )


def _snapshot_finished(env: _Envelope, detail: Mapping[str, Any]) -> SnapshotFinished:
    status = _text(detail, "status")
    found = SnapshotFinished(
        event_id=env.event_id,
        time=env.time,
        state_machine_arn=_text(detail, "stateMachineArn"),
        execution_arn=_text(detail, "executionArn"),
        status=status,
        version=None,
    )
    if status != EXECUTION_SUCCEEDED:
        return found
    raw = detail.get("output")
    if not isinstance(raw, str):
        included = _get(detail, "outputDetails", "included") if "outputDetails" in detail else None
        if included is False:
            raise _Bad(
                "detail.output was left out (outputDetails.included is false): the execution's output "
                "is over EventBridge's 248 KB; a snapshot's output is a few hundred bytes"
            )
        raise _Bad("detail.output must be the execution's output, a JSON string")
    try:
        output = json.loads(raw)
    except (ValueError, RecursionError):
        raise _Bad("detail.output is not JSON") from None
    if not isinstance(output, dict):
        raise _Bad("detail.output must be a JSON object (a snapshot's Finalize output)")
    doc = {"output": output}
    uri = _text(doc, "output", "manifest")
    if not uri.startswith("s3://") or not uri.endswith(".json"):
        raise _Bad(f"detail.output.manifest {uri!r} is not the s3:// URI of a version's index")
    as_of = parse_time(_text(doc, "output", "as_of"))
    if as_of is None:
        raise _Bad("detail.output.as_of must be an ISO 8601 time")
    version = SnapshotVersion(
        dataset=_text(doc, "output", "dataset"),
        manifest_uri=uri,
        digest=_text(doc, "output", "digest"),
        objects=_count(doc, "output", "object_count"),
        bytes=_count(doc, "output", "total_bytes"),
        as_of=as_of,
    )
    return replace(found, version=version)


_PARSERS: Final[dict[tuple[str, str], Callable[[_Envelope, Mapping[str, Any]], Event]]] = {
    (S3_SOURCE, OBJECT_CREATED): _object_created,
    (SOURCE, SCHEDULED_RETRAIN): _scheduled,
    (SOURCE, MANUAL_RETRAIN): _manual,
    (SOURCE, RETRAIN_CHECK): _check,
    (CLOUDWATCH_SOURCE, ALARM_STATE_CHANGE): _alarm,
    (MONITOR_SOURCE, MONITOR_VIOLATION): _violation,
    (SAGEMAKER_SOURCE, PIPELINE_STATUS_CHANGE): _status_change,
    (STATES_SOURCE, EXECUTION_STATUS_CHANGE): _snapshot_finished,
}


def parse_event(doc: object, *, fallback_id: str = "") -> Parsed:
    """Classify one decoded EventBridge event; never raises.

    Args:
        doc: The decoded JSON document.
        fallback_id: Used as the event id when the document has none (the SQS
            message id: stable across redelivery of the same message).
    """
    if not isinstance(doc, dict):
        return Invalid("event is not a JSON object")
    if doc.get("Event") == "s3:TestEvent":
        return Ignored("S3 test event")
    if isinstance(doc.get("Records"), list):
        return Invalid("S3 event notification format is not supported; send S3 events through EventBridge")
    source, detail_type = doc.get("source"), doc.get("detail-type")
    if not isinstance(source, str) or not isinstance(detail_type, str):
        return Invalid("not an EventBridge event: 'source' and 'detail-type' must be strings")
    parser = _PARSERS.get((source, detail_type))
    if parser is None:
        return Ignored(f"unsupported event {source!r} / {detail_type!r}")
    detail = doc.get("detail")
    if not isinstance(detail, dict):
        return Invalid(f"{detail_type}: 'detail' must be an object")
    event_id = doc.get("id")
    envelope = _Envelope(
        event_id=event_id if isinstance(event_id, str) and event_id else fallback_id,
        time=parse_time(doc.get("time")),
    )
    try:
        return parser(envelope, detail)
    except _Bad as exc:
        return Invalid(f"{detail_type}: {exc}")


def parse_body(body: object, *, fallback_id: str = "") -> Parsed:
    """Decode and classify one SQS message body; never raises."""
    if not isinstance(body, str):
        return Invalid("message body is not a string")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return Invalid("message body is not JSON")
    return parse_event(doc, fallback_id=fallback_id)


def parse_record(record: object) -> tuple[str, Parsed]:
    """``(message id, parsed body)`` of one SQS record from the Lambda event; never raises.

    A record without a message id gets the id ``""``; the handler cannot report
    such a record as a failure on its own (SQS would fail the whole batch), so it
    only logs it.
    """
    if not isinstance(record, Mapping):
        return "", Invalid("SQS record is not an object")
    message_id = record.get("messageId")
    message_id = message_id if isinstance(message_id, str) else ""
    return message_id, parse_body(record.get("body"), fallback_id=message_id)
