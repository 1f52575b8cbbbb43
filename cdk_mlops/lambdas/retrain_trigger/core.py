"""Pure core of the retrain trigger: routing, aggregation and decisions (settings: ``settings.py``).

No boto3, no environment, no clock, no logging: every input is an argument, so
each decision is a plain function of (events, state, settings, now) and is
tested without mocks. ``handler.py`` reads and writes the state and calls AWS.

How a batch is decided
----------------------
1. :func:`plan_batch` routes every parsed record (``events.parse_record``) to a
   dataset, or ignores it, and aggregates each dataset's records: object count
   and bytes, latest event time, commit markers, and the triggers it carries
   (schedule, manual, drift, commit marker, delayed check).
2. :func:`touch_for` says what the object events change in the dataset's state
   (last activity for the quiet period, change counters for the threshold).
3. :func:`decide` turns the batch and the state into one of :class:`Candidate`
   (build a manifest and try to start), :class:`Pend` (the pipeline is busy:
   remember the trigger), :class:`Wait` (quiet period, cool-down or daily
   maximum: wake up later with a delayed check) or :class:`Ignore`.
4. For a candidate, :func:`after_manifest` turns the manifest's digest into
   :class:`Start`, :class:`Deduplicated` or :class:`Ignore`.

Deduplication rule
------------------
The idempotency key (:func:`idempotency_key`) is ``<pipeline>|<manifest sha256>``
for data-driven triggers (new objects, commit markers, and scheduled runs), so a
data version is trained once, whatever way it was noticed and however often the
events are redelivered (within ``IDEMPOTENCY_TTL_SECONDS``; the latest version of
each dataset is also remembered without expiry). Drift, manual and ``always``
scheduled triggers add the identity of the triggering event (alarm name and
state time, monitoring job, event id, schedule slot): redelivering that event
dedupes, while a new alarm or a new request may retrain unchanged data. Every
trigger is subject to the lock, the cool-down and the daily maximum. A failed
execution is not retried automatically for the same data; a ``Manual Retrain``
event does that.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from cdk_mlops.champion import CHAMPION_METRIC
from cdk_mlops.lambdas.retrain_trigger.events import (
    EXECUTION_SUCCEEDED,
    TERMINAL_STATUSES,
    AlarmStateChange,
    Event,
    Ignored,
    Invalid,
    ManualRetrain,
    ObjectCreated,
    Parsed,
    PipelineStatusChange,
    RetrainCheck,
    ScheduledRetrain,
    SnapshotFinished,
    SnapshotVersion,
)
from cdk_mlops.lambdas.retrain_trigger.settings import (
    _DISPLAY_NAME_CHARS as _DISPLAY_NAME_CHARS,
)
from cdk_mlops.lambdas.retrain_trigger.settings import (
    _PRIORITY as _PRIORITY,
)
from cdk_mlops.lambdas.retrain_trigger.settings import (
    MAX_DELAY_SECONDS as MAX_DELAY_SECONDS,
)
from cdk_mlops.lambdas.retrain_trigger.settings import (
    MAX_DESCRIPTION_LENGTH as MAX_DESCRIPTION_LENGTH,
)
from cdk_mlops.lambdas.retrain_trigger.settings import (
    MAX_PARAMETER_LENGTH as MAX_PARAMETER_LENGTH,
)
from cdk_mlops.lambdas.retrain_trigger.settings import (
    PARAM_BASELINE_CONSTRAINTS_URI as PARAM_BASELINE_CONSTRAINTS_URI,
)
from cdk_mlops.lambdas.retrain_trigger.settings import (
    PARAM_CHAMPION_METRIC as PARAM_CHAMPION_METRIC,
)
from cdk_mlops.lambdas.retrain_trigger.settings import (
    PARAM_DATA_VERSION as PARAM_DATA_VERSION,
)

# Settings and shared names live in settings.py; they stay importable from here.
from cdk_mlops.lambdas.retrain_trigger.settings import (
    PARAM_INPUT_MANIFEST_URI as PARAM_INPUT_MANIFEST_URI,
)
from cdk_mlops.lambdas.retrain_trigger.settings import (
    PARAM_MANIFEST_SHA256 as PARAM_MANIFEST_SHA256,
)
from cdk_mlops.lambdas.retrain_trigger.settings import (
    PARAM_TRIGGER_REASON as PARAM_TRIGGER_REASON,
)
from cdk_mlops.lambdas.retrain_trigger.settings import (
    PIPELINE_PARAMETER_NAMES as PIPELINE_PARAMETER_NAMES,
)
from cdk_mlops.lambdas.retrain_trigger.settings import (
    DecisionKind as DecisionKind,
)
from cdk_mlops.lambdas.retrain_trigger.settings import (
    Mode as Mode,
)
from cdk_mlops.lambdas.retrain_trigger.settings import (
    Settings as Settings,
)
from cdk_mlops.lambdas.retrain_trigger.settings import (
    TriggerKind as TriggerKind,
)
from cdk_mlops.lambdas.retrain_trigger.settings import (
    _EnvReader as _EnvReader,
)
from cdk_mlops.lambdas.retrain_trigger.settings import (
    dataset_prefix as dataset_prefix,
)

# --- Triggers, signals and batches --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Trigger:
    """A reason to start a run for a dataset.

    Attributes:
        kind: What asked for the run.
        reason: Human-readable; becomes the ``TriggerReason`` pipeline parameter.
        event_key: ``None`` for "once per data version"; otherwise the identity
            of the triggering event, which joins the digest in the idempotency key.
        id: Identifies this trigger instance (event id); used to clear it from
            the pending slot without clearing a newer one.
        at: When the trigger happened.
    """

    kind: TriggerKind
    reason: str
    event_key: str | None
    id: str
    at: datetime

    def to_json(self) -> dict[str, str]:
        data = {"kind": self.kind.value, "reason": self.reason, "id": self.id, "at": self.at.isoformat()}
        if self.event_key is not None:
            data["event_key"] = self.event_key
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Trigger | None:
        """The trigger stored by :meth:`to_json`, or ``None`` if it is unreadable."""
        try:
            kind = TriggerKind(str(data["kind"]))
            reason, trigger_id, at = data["reason"], data["id"], data["at"]
            event_key = data.get("event_key")
            if not (isinstance(reason, str) and isinstance(trigger_id, str) and isinstance(at, str)):
                return None
            if event_key is not None and not isinstance(event_key, str):
                return None
            return cls(kind, reason, event_key, trigger_id, datetime.fromisoformat(at).astimezone(UTC))
        except (KeyError, ValueError, TypeError, OverflowError):
            return None


@dataclass(frozen=True, slots=True)
class ObjectSignal:
    """An object event routed to a dataset (after the bucket, prefix and suffix filters)."""

    dataset: str
    size: int
    time: datetime | None
    marker: bool


@dataclass(frozen=True, slots=True)
class TriggerSignal:
    dataset: str
    trigger: Trigger


@dataclass(frozen=True, slots=True)
class SnapshotSignal:
    """A snapshot of a dataset finished: a new version to store, and a reason to start a run."""

    dataset: str
    version: SnapshotVersion
    trigger: Trigger


@dataclass(frozen=True, slots=True)
class CheckSignal:
    dataset: str
    due: datetime


@dataclass(frozen=True, slots=True)
class FinishedSignal:
    """An execution of our pipeline reached a terminal status."""

    execution_arn: str
    status: str


Signal = ObjectSignal | TriggerSignal | SnapshotSignal | CheckSignal | FinishedSignal


def route(event: Event, settings: Settings, now: datetime) -> Signal | Ignored:
    """What one parsed event means for this trigger's pipeline and datasets."""
    if isinstance(event, ObjectCreated):
        return _route_object(event, settings)
    if isinstance(event, RetrainCheck):
        if event.pipeline != settings.pipeline_name:
            return Ignored(f"check for another pipeline {event.pipeline!r}")
        if event.dataset not in settings.datasets:
            return Ignored(f"check for unknown dataset {event.dataset!r}")
        return CheckSignal(event.dataset, event.due)
    if isinstance(event, PipelineStatusChange):
        if event.pipeline_name.casefold() != settings.pipeline_name.casefold():
            return Ignored(f"execution of another pipeline {event.pipeline_name!r}")
        if event.status not in TERMINAL_STATUSES:
            return Ignored(f"execution is {event.status}")
        return FinishedSignal(event.execution_arn, event.status)
    if isinstance(event, SnapshotFinished):
        return _route_snapshot(event, settings, now)
    at = event.time or now
    if isinstance(event, ScheduledRetrain | ManualRetrain) and event.pipeline not in (None, settings.pipeline_name):
        return Ignored(f"retrain of another pipeline {event.pipeline!r}")
    if isinstance(event, ScheduledRetrain):
        if event.dataset not in settings.datasets:
            return Ignored(f"scheduled retrain of unknown dataset {event.dataset!r}")
        key = event.scheduled_time if event.always else None
        reason = f"scheduled retrain ({event.scheduled_time})"
        return TriggerSignal(
            event.dataset, Trigger(TriggerKind.SCHEDULED, reason, key, f"scheduled:{event.scheduled_time}", at)
        )
    if isinstance(event, ManualRetrain):
        if event.dataset not in settings.datasets:
            return Ignored(f"manual retrain of unknown dataset {event.dataset!r}")
        by = f" by {event.requested_by}" if event.requested_by else ""
        trigger = Trigger(TriggerKind.MANUAL, f"manual retrain{by}: {event.reason}", event.event_id, event.event_id, at)
        return TriggerSignal(event.dataset, trigger)
    if isinstance(event, AlarmStateChange):
        if event.state != "ALARM":
            return Ignored(f"alarm {event.alarm_name!r} is {event.state}")
        key = f"alarm:{event.alarm_name}@{event.state_timestamp or event.event_id}"
        reason = f"drift alarm {event.alarm_name} in ALARM"
        return TriggerSignal(settings.primary_dataset, Trigger(TriggerKind.DRIFT, reason, key, key, at))
    # The one kind left: MonitorViolation.
    dataset = event.dataset or settings.primary_dataset
    if dataset not in settings.datasets:
        return Ignored(f"violation for unknown dataset {dataset!r}")
    count = f"{event.violations} " if event.violations is not None else ""
    schedule = f" ({event.schedule_name})" if event.schedule_name else ""
    key = f"violation:{event.execution_id}"
    reason = f"model monitor found {count}violations{schedule}"
    return TriggerSignal(dataset, Trigger(TriggerKind.DRIFT, reason, key, key, at))


def _route_snapshot(event: SnapshotFinished, settings: Settings, now: datetime) -> SnapshotSignal | Ignored:
    if not settings.snapshot_state_machine or event.state_machine_arn != settings.snapshot_state_machine:
        return Ignored("execution of another state machine")
    if event.status != EXECUTION_SUCCEEDED or event.version is None:
        return Ignored(f"snapshot execution is {event.status}")
    version = event.version
    if not settings.snapshotted(version.dataset):
        return Ignored(f"snapshot of a dataset not versioned by snapshots here {version.dataset!r}")
    reason = f"dataset snapshot as of {_stamp(version.as_of)} finished ({version.objects} objects)"
    # Once per data version, like new objects: the digest decides whether it is new.
    trigger = Trigger(TriggerKind.SNAPSHOT, reason, None, f"snapshot:{event.execution_arn}", event.time or now)
    return SnapshotSignal(version.dataset, version, trigger)


def _route_object(event: ObjectCreated, settings: Settings) -> ObjectSignal | Ignored:
    if event.bucket != settings.data_bucket:
        return Ignored("object in another bucket")
    dataset = settings.dataset_of(event.key)
    if dataset is None:
        return Ignored("object outside the configured datasets")
    if settings.snapshotted(dataset):
        return Ignored("object of a dataset versioned by snapshots: a finished snapshot starts its runs")
    rest = event.key[len(dataset_prefix(dataset)) :]
    if not rest or rest.endswith("/"):
        return Ignored("folder placeholder object")
    if not rest.startswith(settings.key_prefix):
        return Ignored("object outside KEY_PREFIX")
    marker = settings.mode is Mode.COMMIT_MARKER and rest.rsplit("/", 1)[-1] == settings.marker_name
    if not marker and settings.key_suffixes and not rest.endswith(settings.key_suffixes):
        return Ignored("object filtered out by KEY_SUFFIXES")
    return ObjectSignal(dataset, event.size, event.time, marker)


@dataclass(slots=True)
class DatasetBatch:
    """One dataset's share of a batch.

    ``object_ids`` are records whose whole effect is the state update of
    :func:`touch_for`; ``trigger_ids`` are records that carry a decision (commit
    markers, checks, scheduled, manual and drift triggers). The handler reports
    failures at that granularity.
    """

    dataset: str
    objects: int = 0
    bytes: int = 0
    markers: int = 0
    latest_event_at: datetime | None = None
    triggers: list[Trigger] = field(default_factory=list)
    snapshots: list[SnapshotVersion] = field(default_factory=list)
    check_dues: list[datetime] = field(default_factory=list)
    object_ids: list[str] = field(default_factory=list)
    trigger_ids: list[str] = field(default_factory=list)

    @property
    def record_ids(self) -> list[str]:
        return [*self.object_ids, *self.trigger_ids]


@dataclass(slots=True)
class BatchPlan:
    """Every record of a batch, routed."""

    datasets: dict[str, DatasetBatch] = field(default_factory=dict)
    finished: list[tuple[str, FinishedSignal]] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)


def plan_batch(records: Iterable[tuple[str, Parsed]], settings: Settings, now: datetime) -> BatchPlan:
    """Route and aggregate a batch of parsed records; never raises for any input."""
    plan = BatchPlan()
    for record_id, parsed in records:
        if isinstance(parsed, Invalid):
            plan.invalid.append((record_id, parsed.reason))
            continue
        signal = parsed if isinstance(parsed, Ignored) else route(parsed, settings, now)
        if isinstance(signal, Ignored):
            plan.ignored.append((record_id, signal.reason))
        elif isinstance(signal, FinishedSignal):
            plan.finished.append((record_id, signal))
        else:
            batch = plan.datasets.get(signal.dataset)
            if batch is None:
                batch = plan.datasets[signal.dataset] = DatasetBatch(signal.dataset)
            _add(batch, record_id, signal, settings, now)
    return plan


def _add(
    batch: DatasetBatch,
    record_id: str,
    signal: ObjectSignal | TriggerSignal | SnapshotSignal | CheckSignal,
    settings: Settings,
    now: datetime,
) -> None:
    if isinstance(signal, ObjectSignal):
        if signal.time is not None and (batch.latest_event_at is None or signal.time > batch.latest_event_at):
            batch.latest_event_at = signal.time
        if signal.marker:
            batch.markers += 1
            batch.trigger_ids.append(record_id)
            at = signal.time or now
            reason = f"commit marker {settings.marker_name} landed"
            batch.triggers.append(Trigger(TriggerKind.DATA, reason, None, f"marker:{record_id}", at))
        else:
            batch.objects += 1
            batch.bytes += signal.size
            batch.object_ids.append(record_id)
    elif isinstance(signal, TriggerSignal):
        batch.triggers.append(signal.trigger)
        batch.trigger_ids.append(record_id)
    elif isinstance(signal, SnapshotSignal):
        batch.snapshots.append(signal.version)
        batch.triggers.append(signal.trigger)
        batch.trigger_ids.append(record_id)
    else:
        batch.check_dues.append(signal.due)
        batch.trigger_ids.append(record_id)


# --- State --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lock:
    """The pipeline's lock: at most one execution started by the trigger runs at a time.

    ``owner`` is the idempotency key of the start that took it; ``execution_arn``
    is set once that start returned, and is ``None`` while it is being started.
    """

    owner: str
    dataset: str
    digest: str
    acquired_at: datetime
    lease_until: datetime
    execution_arn: str | None = None


@dataclass(frozen=True, slots=True)
class PipelineState:
    lock: Lock | None = None
    last_start_at: datetime | None = None
    runs_day: str | None = None
    runs_today: int = 0


@dataclass(frozen=True, slots=True)
class DatasetState:
    """What the trigger remembers about one dataset.

    Attributes:
        last_activity_at: When the trigger last processed an object event for it
            (processing time, so a backlog in the queue keeps the dataset busy).
        changed_objects: Object events counted since the last start (threshold).
        changed_bytes: Their bytes.
        last_start_at: When a run was last started for it.
        last_digest: The digest of that run's manifest.
        settled_at: Activity up to this time is accounted for: a run was started,
            or the data turned out to be a version already started.
        check_due_at: Due time of the delayed check most recently sent.
        pending: The trigger waiting for the lock, the cool-down or the daily maximum.
        snapshot: The newest finished snapshot (datasets versioned by snapshots): what a run trains on.
    """

    last_activity_at: datetime | None = None
    changed_objects: int = 0
    changed_bytes: int = 0
    last_start_at: datetime | None = None
    last_digest: str | None = None
    settled_at: datetime | None = None
    check_due_at: datetime | None = None
    pending: Trigger | None = None
    snapshot: SnapshotVersion | None = None


@dataclass(frozen=True, slots=True)
class Touch:
    """The state update an aggregate of object events makes."""

    activity_at: datetime | None
    add_objects: int
    add_bytes: int


def touch_for(batch: DatasetBatch, settings: Settings, now: datetime) -> Touch | None:
    """The state update for the batch's object events, or ``None`` when they change nothing.

    The quiet period needs the activity time; the change threshold needs the
    counters. In commit-marker mode without a threshold, object events need no
    write at all.
    """
    if batch.objects == 0 and batch.markers == 0:
        return None
    quiet = settings.mode is Mode.QUIET_PERIOD
    counting = (settings.min_objects > 0 or settings.min_bytes > 0) and batch.objects > 0
    if not quiet and not counting:
        return None
    return Touch(
        activity_at=now if quiet else None,
        add_objects=batch.objects if counting else 0,
        add_bytes=batch.bytes if counting else 0,
    )


def newest_snapshot(state: DatasetState, batch: DatasetBatch) -> SnapshotVersion | None:
    """The batch's snapshot to store: the newest by ``as_of``, if newer than the stored one (or as new)."""
    if not batch.snapshots:
        return None
    newest = max(batch.snapshots, key=lambda v: v.as_of)
    if state.snapshot is not None and state.snapshot.as_of > newest.as_of:
        return None  # delivered late: a newer snapshot is already the dataset's version
    return newest


def apply_touch(state: DatasetState, touch: Touch | None) -> DatasetState:
    """The state after ``touch`` (what the handler's write does, in memory)."""
    if touch is None:
        return state
    activity = state.last_activity_at
    if touch.activity_at is not None and (activity is None or touch.activity_at > activity):
        activity = touch.activity_at
    return replace(
        state,
        last_activity_at=activity,
        changed_objects=state.changed_objects + touch.add_objects,
        changed_bytes=state.changed_bytes + touch.add_bytes,
    )


# --- Decisions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """Every gate is open: build the manifest and try to start."""

    trigger: Trigger
    reason: str


@dataclass(frozen=True, slots=True)
class Pend:
    """The pipeline is busy: keep the trigger; the end of the running execution starts it."""

    trigger: Trigger
    reason: str
    recheck_at: datetime
    persist: bool


@dataclass(frozen=True, slots=True)
class Wait:
    """Not yet: quiet period, cool-down or daily maximum. A delayed check wakes the dataset at ``until``."""

    trigger: Trigger
    until: datetime
    reason: str
    persist: bool


@dataclass(frozen=True, slots=True)
class Ignore:
    """Nothing to start. ``drop_pending`` is a pending trigger that this decision used up."""

    reason: str
    drop_pending: Trigger | None = None


@dataclass(frozen=True, slots=True)
class Start:
    """Start the pipeline on the manifest with this digest."""

    trigger: Trigger
    digest: str
    reason: str


@dataclass(frozen=True, slots=True)
class Deduplicated:
    """This data version (for this trigger) was started already."""

    digest: str
    reason: str


Decision = Candidate | Pend | Wait | Ignore


def is_dirty(state: DatasetState) -> bool:
    """Objects arrived since the data was last settled by a start or a deduplication (quiet-period mode)."""
    return state.last_activity_at is not None and (
        state.settled_at is None or state.last_activity_at > state.settled_at
    )


def strongest(triggers: Sequence[Trigger]) -> Trigger:
    """The trigger a run is started for: the highest kind, then the most recent."""
    return max(triggers, key=lambda t: (t.kind.priority, t.at))


def merge_pending(existing: Trigger | None, new: Trigger) -> Trigger:
    """The single pending slot keeps the stronger trigger; of equal kinds, the newer one."""
    if existing is None or new.kind.priority > existing.kind.priority:
        return new
    if new.kind.priority == existing.kind.priority and new.at >= existing.at:
        return new
    return existing


def decide(
    batch: DatasetBatch | None,
    state: DatasetState,
    pipeline: PipelineState,
    settings: Settings,
    now: datetime,
) -> Decision:
    """Whether to start a run for one dataset now.

    Args:
        batch: This batch's records for the dataset, or ``None`` when the dataset
            is evaluated without records (after an execution finished).
        state: The dataset's state, with this batch's :class:`Touch` applied.
        pipeline: The lock and the run counters.
        settings: The trigger's settings.
        now: The current time (aware, UTC).
    """
    quiet = settings.mode is Mode.QUIET_PERIOD
    triggers = list(batch.triggers) if batch is not None else []
    if state.pending is not None:
        triggers.append(state.pending)
    if quiet and state.last_activity_at is not None and is_dirty(state):
        reason = f"new objects; quiet for {_span(settings.quiet_period)}"
        triggers.append(Trigger(TriggerKind.DATA, reason, None, f"quiet:{_stamp(state.last_activity_at)}", now))
    if not triggers:
        if batch is not None and batch.objects and not quiet:
            return Ignore(f"waiting for commit marker {settings.marker_name}")
        return Ignore("nothing to start")
    trigger = strongest(triggers)
    persist = not (quiet and trigger.kind is TriggerKind.DATA)

    # A snapshot must never catch a drop half-written: in quiet-period mode every
    # trigger, drift and manual included, waits until the dataset is quiet.
    if quiet and state.last_activity_at is not None:
        quiet_until = state.last_activity_at + settings.quiet_period
        if now < quiet_until:
            reason = f"quiet period: objects still arriving, last seen {_stamp(state.last_activity_at)}"
            return Wait(trigger, ceil_second(quiet_until), reason, persist)

    if trigger.kind is TriggerKind.DATA:
        short: list[str] = []
        if settings.min_objects and state.changed_objects < settings.min_objects:
            short.append(f"{state.changed_objects} of {settings.min_objects} objects")
        if settings.min_bytes and state.changed_bytes < settings.min_bytes:
            short.append(f"{state.changed_bytes} of {settings.min_bytes} bytes")
        if short:
            drop = trigger if trigger == state.pending else None
            return Ignore("below the change threshold: " + ", ".join(short), drop)

    if pipeline.lock is not None:
        holder = pipeline.lock.execution_arn or "a start in progress"
        recheck = ceil_second(now + settings.lock_recheck)
        return Pend(trigger, f"pipeline busy: {holder} holds the lock", recheck, persist)

    if settings.cooldown and pipeline.last_start_at is not None:
        cool_until = pipeline.last_start_at + settings.cooldown
        if now < cool_until:
            reason = f"cool-down: last run started {_stamp(pipeline.last_start_at)}"
            return Wait(trigger, ceil_second(cool_until), reason, persist)

    limit = settings.max_runs_per_day
    if limit and pipeline.runs_day == utc_day(now) and pipeline.runs_today >= limit:
        return Wait(trigger, next_utc_midnight(now), f"daily maximum of {limit} runs reached", persist)

    return Candidate(trigger, trigger.reason)


def after_manifest(
    trigger: Trigger, *, digest: str, entries: int, state: DatasetState
) -> Start | Deduplicated | Ignore:
    """The decision once the manifest's digest is known."""
    drop = trigger if trigger == state.pending else None
    if entries == 0:
        return Ignore("the dataset has no objects", drop)
    if trigger.event_key is None and state.last_digest == digest:
        return Deduplicated(digest, "this data version was already started")
    return Start(trigger, digest, trigger.reason)


def plan_check(state: DatasetState, batch: DatasetBatch | None, wanted: datetime, now: datetime) -> datetime | None:
    """The due time of a delayed check to send, or ``None`` when one already covers ``wanted``.

    At most one chain of checks runs per dataset: a check is sent unless one is
    outstanding that is due no later than ``wanted`` (it will re-evaluate and
    send the next one itself). A check being handled in this batch is no longer
    outstanding.
    """
    outstanding = state.check_due_at
    if outstanding is not None and batch is not None and outstanding in batch.check_dues:
        outstanding = None
    if outstanding is not None and now < outstanding <= wanted:
        return None
    return wanted


def check_delay(due: datetime, now: datetime) -> int:
    """SQS ``DelaySeconds`` for a check due at ``due``: the rest of the wait, at most 900."""
    remaining = math.ceil((due - now).total_seconds())
    return max(0, min(MAX_DELAY_SECONDS, remaining))


class LockVerdict(StrEnum):
    HELD = "held"
    STALE = "stale"
    ADOPT = "adopt"


def lock_needs_verification(lock: Lock, now: datetime, grace: timedelta) -> bool:
    """Whether to ask SageMaker if the lock's execution still runs (it may have missed its end event).

    A lock younger than ``grace`` is trusted (SageMaker's listing may lag a fresh
    start); a lock whose start is still in progress is trusted until its lease ends.
    """
    if now - lock.acquired_at < grace:
        return False
    return lock.execution_arn is not None or now >= lock.lease_until


@dataclass(frozen=True, slots=True)
class RunningExecution:
    """An execution SageMaker lists as Executing or Stopping."""

    arn: str
    display_name: str | None


def judge_lock(lock: Lock, running: Sequence[RunningExecution], now: datetime) -> tuple[LockVerdict, str | None]:
    """Compare the lock with the pipeline's running executions.

    Returns:
        ``HELD`` when the lock's execution still runs (or its start is still in
        its lease); ``ADOPT`` with an ARN when the start holding the lock was
        interrupted after SageMaker accepted it but before the ARN was recorded
        (recognised by its display name, which names the dataset and digest);
        ``STALE`` otherwise: the execution ended without its end event reaching
        the trigger, or the interrupted start never reached SageMaker.
    """
    if lock.execution_arn is not None:
        held = any(execution.arn == lock.execution_arn for execution in running)
        return (LockVerdict.HELD, None) if held else (LockVerdict.STALE, None)
    if now < lock.lease_until:
        return LockVerdict.HELD, None
    ours = execution_display_name(lock.dataset, lock.digest)
    for execution in running:
        if execution.display_name == ours:
            return LockVerdict.ADOPT, execution.arn
    return LockVerdict.STALE, None


def start_in_progress(lock: Lock | None, now: datetime) -> bool:
    """Another invocation is between taking the lock and recording its execution."""
    return lock is not None and lock.execution_arn is None and now < lock.lease_until


# --- Starting -----------------------------------------------------------------------------------


def idempotency_key(pipeline_name: str, trigger: Trigger, digest: str) -> str:
    """The key of the idempotency record (see the module docstring for the rule)."""
    base = f"{pipeline_name}|{digest}"
    if trigger.event_key is None:
        return base
    return f"{base}|{trigger.kind.value}|{trigger.event_key}"


def client_request_token(key: str) -> str:
    """``ClientRequestToken`` for ``StartPipelineExecution``: 64 hex characters derived from the key."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def data_version(created_at: str | datetime, digest: str) -> str:
    """``20250101T120000Z-0123456789ab``: sortable by time, unique by digest.

    Args:
        created_at: The manifest's creation time (``Manifest.created_at``, ISO 8601 UTC).
        digest: The manifest's SHA-256.
    """
    moment = created_at if isinstance(created_at, datetime) else datetime.fromisoformat(created_at)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}-{digest[:12]}"


def execution_display_name(dataset: str, digest: str) -> str:
    """A ``PipelineExecutionDisplayName`` (letters, digits and single hyphens, at most 82)."""
    label = _DISPLAY_NAME_CHARS.sub("-", dataset).strip("-")[:60] or "dataset"
    return f"retrain-{label}-{digest[:8]}"


@dataclass(frozen=True, slots=True)
class Champion:
    """The approved model package a new execution must beat, as the pipeline parameters that say so.

    Attributes:
        model_package_arn: The group's newest ``Approved`` package, or ``None`` for the first model.
        parameters: ``ChampionMetric`` and, when the package has a data-quality baseline,
            ``BaselineConstraintsUri`` (``cdk_mlops.champion``); empty when the trigger does not
            compare with a champion (``Settings.compare_with_champion`` false).
    """

    model_package_arn: str | None
    parameters: Mapping[str, str]

    def to_json(self) -> str:
        return json.dumps({"model_package_arn": self.model_package_arn, "parameters": dict(self.parameters)})

    @classmethod
    def from_json(cls, text: str) -> Champion | None:
        """The champion stored by :meth:`to_json`, or ``None`` if it is unreadable."""
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        arn, parameters = data.get("model_package_arn"), data.get("parameters")
        if arn is not None and not isinstance(arn, str):
            return None
        if not isinstance(parameters, dict) or not all(isinstance(v, str) for v in parameters.values()):
            return None
        if CHAMPION_METRIC not in parameters:
            return None
        return cls(arn, parameters)


def pipeline_parameters(
    *, manifest_uri: str, digest: str, version: str, reason: str, champion: Champion
) -> list[dict[str, str]]:
    """The ``PipelineParameters`` of ``StartPipelineExecution``.

    The reason is cut to the 1,024 characters a parameter value may have; the other values
    (URIs, a digest, a number) are shorter.
    """
    values = {
        PARAM_INPUT_MANIFEST_URI: manifest_uri,
        PARAM_MANIFEST_SHA256: digest,
        PARAM_DATA_VERSION: version,
        PARAM_TRIGGER_REASON: reason[:MAX_PARAMETER_LENGTH],
        **champion.parameters,
    }
    return [{"Name": name, "Value": values[name]} for name in PIPELINE_PARAMETER_NAMES if name in values]


def start_request(
    settings: Settings,
    *,
    dataset: str,
    digest: str,
    manifest_uri: str,
    created_at: str,
    reason: str,
    champion: Champion,
    key: str,
) -> dict[str, Any]:
    """The ``StartPipelineExecution`` request of a start: the same on every retry of the same start.

    Args:
        settings: The trigger's settings (the pipeline's name).
        dataset: The dataset trained on.
        digest: Its manifest's sha256.
        manifest_uri: Where the manifest is.
        created_at: The manifest's creation time (ISO 8601), which the data version names.
        reason: Why the run starts.
        champion: The approved model the run must beat.
        key: The start's idempotency key; the ``ClientRequestToken`` derives from it.
    """
    return {
        "PipelineName": settings.pipeline_name,
        "PipelineExecutionDisplayName": execution_display_name(dataset, digest),
        "PipelineExecutionDescription": reason[:MAX_DESCRIPTION_LENGTH],
        "PipelineParameters": pipeline_parameters(
            manifest_uri=manifest_uri,
            digest=digest,
            version=data_version(created_at, digest),
            reason=reason,
            champion=champion,
        ),
        "ClientRequestToken": client_request_token(key),
    }


# --- Time helpers -------------------------------------------------------------------------------


def utc_day(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%d")


def next_utc_midnight(now: datetime) -> datetime:
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day + timedelta(days=1)


def ceil_second(moment: datetime) -> datetime:
    """``moment`` rounded up to a whole second (check due times are whole epoch seconds)."""
    if moment.microsecond:
        return moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 and seconds >= 60 else f"{seconds} s"
