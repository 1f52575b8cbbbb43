"""Second, independent guards of the core's decisions: the quiet period, the daily maximum, dedupe by digest.

``test_core.py`` has one test for each of these promises; the tests here come at each one from
another side (another trigger kind, a boundary, a time zone, the route an event takes), so
that a bug that slips past one of them is caught by the other.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cdk_mlops.lambdas.retrain_trigger import core
from cdk_mlops.lambdas.retrain_trigger.core import (
    Candidate,
    DatasetBatch,
    DatasetState,
    Deduplicated,
    Mode,
    PipelineState,
    Start,
    Trigger,
    TriggerKind,
    TriggerSignal,
    Wait,
)
from cdk_mlops.lambdas.retrain_trigger.events import AlarmStateChange, ScheduledRetrain
from tests.handlers.retrain_trigger.conftest import DATASET
from tests.handlers.retrain_trigger.test_core import T0, settings

QUIET = timedelta(minutes=15)
DIGEST = "d" * 64


def triggered(trigger: Trigger) -> DatasetBatch:
    return DatasetBatch(DATASET, triggers=[trigger], trigger_ids=["m-0"])


def alarm_trigger(at: datetime) -> Trigger:
    """A drift trigger as the route of a CloudWatch alarm builds it."""
    event = AlarmStateChange("e-1", at, "churn-feature-drift", "ALARM", "2025-03-04T10:20:00.000+0000")
    signal = core.route(event, settings(), at)
    assert isinstance(signal, TriggerSignal)
    return signal.trigger


# --- the quiet period holds drift and manual triggers --------------------------------------------


@pytest.mark.parametrize("kind", [TriggerKind.DRIFT, TriggerKind.MANUAL])
def test_a_drift_or_manual_trigger_waits_for_the_quiet_period_counted_from_the_last_object(kind: TriggerKind) -> None:
    # GIVEN objects last arrived at T0, and the trigger comes ten minutes later
    arrived = T0 + timedelta(minutes=10)
    trigger = Trigger(kind, f"{kind.value} trigger", "event-1", "event-1", arrived)

    # WHEN it is decided then
    decision = core.decide(triggered(trigger), DatasetState(last_activity_at=T0), PipelineState(), settings(), arrived)

    # THEN it waits until the dataset has been quiet for the whole period, not from its own time
    assert isinstance(decision, Wait)
    assert decision.trigger == trigger
    assert decision.until == T0 + QUIET
    assert decision.persist is True  # nothing in the state rebuilds a drift or manual trigger
    assert decision.reason.startswith("quiet period: objects still arriving")


def test_a_pending_drift_trigger_re_evaluated_by_a_check_still_waits_while_objects_arrive() -> None:
    # GIVEN a drift alarm kept pending, and objects still arriving
    pending = alarm_trigger(T0)
    state = DatasetState(last_activity_at=T0 + timedelta(minutes=5), pending=pending)

    # WHEN a delayed check evaluates the dataset before it is quiet THEN the drift trigger keeps waiting
    early = core.decide(None, state, PipelineState(), settings(), T0 + timedelta(minutes=19, seconds=59))
    assert isinstance(early, Wait)
    assert early.trigger == pending
    assert early.until == T0 + timedelta(minutes=20)

    # WHEN it comes exactly at the end of the quiet period THEN the drift trigger (the stronger) is a candidate
    due = core.decide(None, state, PipelineState(), settings(), T0 + timedelta(minutes=20))
    assert due == Candidate(pending, pending.reason)


def test_in_commit_marker_mode_drift_does_not_wait_for_quiet() -> None:
    # GIVEN commit-marker mode, where a drop is complete when its marker lands, and recent activity
    config = settings(mode=Mode.COMMIT_MARKER)
    trigger = alarm_trigger(T0)

    # WHEN the alarm arrives a second after an object THEN it is a candidate at once
    decision = core.decide(triggered(trigger), DatasetState(last_activity_at=T0), PipelineState(), config, T0)
    assert decision == Candidate(trigger, trigger.reason)


# --- the daily maximum ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [TriggerKind.DATA, TriggerKind.SCHEDULED, TriggerKind.DRIFT, TriggerKind.MANUAL])
def test_the_daily_maximum_holds_every_kind_of_trigger(kind: TriggerKind) -> None:
    # GIVEN the day's maximum of 3 runs was reached
    config = settings(mode=Mode.COMMIT_MARKER, cooldown=timedelta(0), max_runs_per_day=3)
    pipeline = PipelineState(runs_day="2025-03-04", runs_today=3)
    trigger = Trigger(kind, "why", None if kind is TriggerKind.DATA else "event-1", "t-1", T0)

    # WHEN any trigger asks for a run THEN it waits for the next UTC day
    decision = core.decide(triggered(trigger), DatasetState(), pipeline, config, T0)
    assert decision == Wait(trigger, datetime(2025, 3, 5, tzinfo=UTC), "daily maximum of 3 runs reached", True)


def test_the_run_below_the_maximum_still_starts() -> None:
    config = settings(mode=Mode.COMMIT_MARKER, cooldown=timedelta(0), max_runs_per_day=3)
    trigger = Trigger(TriggerKind.MANUAL, "why", "event-1", "t-1", T0)
    decision = core.decide(
        triggered(trigger), DatasetState(), PipelineState(runs_day="2025-03-04", runs_today=2), config, T0
    )
    assert decision == Candidate(trigger, "why")


def test_the_day_of_the_maximum_is_the_utc_day_whatever_the_time_zone_of_now() -> None:
    # GIVEN 3 runs on 2025-03-04 (UTC) and a clock in UTC-5
    config = settings(mode=Mode.COMMIT_MARKER, cooldown=timedelta(0), max_runs_per_day=3)
    trigger = Trigger(TriggerKind.MANUAL, "why", "event-1", "t-1", T0)
    pipeline = PipelineState(runs_day="2025-03-04", runs_today=3)
    new_york = timezone(timedelta(hours=-5))

    # WHEN it is 20:00 on 2025-03-04 in UTC-5, already 01:00 on 2025-03-05 in UTC
    next_utc_day = datetime(2025, 3, 4, 20, 0, tzinfo=new_york)
    # THEN the maximum no longer applies
    assert isinstance(core.decide(triggered(trigger), DatasetState(), pipeline, config, next_utc_day), Candidate)

    # AND at 18:00 in UTC-5 (23:00 UTC, still 2025-03-04) the wait ends at midnight UTC
    same_utc_day = datetime(2025, 3, 4, 18, 0, tzinfo=new_york)
    decision = core.decide(triggered(trigger), DatasetState(), pipeline, config, same_utc_day)
    assert isinstance(decision, Wait)
    assert decision.until == datetime(2025, 3, 5, tzinfo=UTC)


# --- dedupe by digest ---------------------------------------------------------------------------------


def test_a_scheduled_run_on_unchanged_data_is_deduplicated_by_its_digest() -> None:
    # GIVEN the data version last started, and the weekly schedule (not `always`) fires
    event = ScheduledRetrain("e-1", T0, DATASET, "2025-03-10T03:00:00Z", always=False)
    signal = core.route(event, settings(), T0)
    assert isinstance(signal, TriggerSignal)
    state = DatasetState(last_digest=DIGEST)

    # WHEN its manifest has the same digest THEN nothing starts; with a new digest it starts
    assert core.after_manifest(signal.trigger, digest=DIGEST, entries=4, state=state) == Deduplicated(
        DIGEST, "this data version was already started"
    )
    assert isinstance(core.after_manifest(signal.trigger, digest="e" * 64, entries=4, state=state), Start)
    # AND the start's idempotency key is the data version's own, shared with object-driven starts
    assert core.idempotency_key("p", signal.trigger, DIGEST) == f"p|{DIGEST}"


def test_an_always_scheduled_run_retrains_unchanged_data_once_per_slot() -> None:
    # GIVEN a schedule that retrains even unchanged data
    slot = "2025-03-10T03:00:00Z"
    event = ScheduledRetrain("e-1", T0, DATASET, slot, always=True)
    signal = core.route(event, settings(), T0)
    assert isinstance(signal, TriggerSignal)

    # WHEN its manifest has the digest last started THEN it starts anyway, keyed by its slot
    state = DatasetState(last_digest=DIGEST)
    assert core.after_manifest(signal.trigger, digest=DIGEST, entries=4, state=state) == Start(
        signal.trigger, DIGEST, signal.trigger.reason
    )
    assert core.idempotency_key("p", signal.trigger, DIGEST) == f"p|{DIGEST}|scheduled|{slot}"


def test_dedupe_compares_whole_digests() -> None:
    # GIVEN the last start's digest, and a new version that shares its first 16 characters
    state = DatasetState(last_digest=DIGEST)
    near = DIGEST[:16] + "0" * 48
    data = Trigger(TriggerKind.DATA, "new objects", None, "q", T0)

    # WHEN / THEN the new version starts: a prefix (as in manifest keys and data versions) is not the identity
    assert core.after_manifest(data, digest=near, entries=1, state=state) == Start(data, near, "new objects")
    # AND with no version started yet, nothing is deduplicated
    assert isinstance(
        core.after_manifest(data, digest=DIGEST, entries=1, state=replace(state, last_digest=None)), Start
    )


# --- boundaries of the other decisions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "shown"), [(900, "15 min"), (60, "1 min"), (90, "90 s"), (30, "30 s"), (0, "0 s"), (7200, "120 min")]
)
def test_the_quiet_period_is_shown_in_minutes_when_whole(seconds: int, shown: str) -> None:
    config = settings(quiet_period=timedelta(seconds=seconds))
    state = DatasetState(last_activity_at=T0)
    decision = core.decide(None, state, PipelineState(), config, T0 + timedelta(seconds=seconds))
    assert isinstance(decision, Candidate)
    assert decision.reason == f"new objects; quiet for {shown}"


def test_activity_at_the_moment_of_settling_is_accounted_for() -> None:
    assert not core.is_dirty(DatasetState(last_activity_at=T0, settled_at=T0))
    assert core.is_dirty(DatasetState(last_activity_at=T0 + timedelta(microseconds=1), settled_at=T0))
    assert core.is_dirty(DatasetState(last_activity_at=T0))


def test_of_two_pending_triggers_of_one_kind_the_later_stays_even_at_the_same_time() -> None:
    first = Trigger(TriggerKind.DRIFT, "first", "a", "a", T0)
    same_time = Trigger(TriggerKind.DRIFT, "second", "b", "b", T0)
    older = Trigger(TriggerKind.DRIFT, "older", "c", "c", T0 - timedelta(seconds=1))
    assert core.merge_pending(first, same_time) == same_time
    assert core.merge_pending(first, older) == first


def test_an_empty_dataset_uses_up_the_pending_trigger_that_found_it() -> None:
    pending = Trigger(TriggerKind.MANUAL, "manual", "e", "e", T0)
    state = DatasetState(pending=pending)
    assert core.after_manifest(pending, digest=DIGEST, entries=0, state=state) == core.Ignore(
        "the dataset has no objects", pending
    )


def test_a_check_due_now_or_later_than_wanted_does_not_cover_the_wait() -> None:
    wanted = T0 + timedelta(minutes=15)
    assert core.plan_check(DatasetState(check_due_at=T0), None, wanted, T0) == wanted  # due now: being handled
    assert core.plan_check(DatasetState(check_due_at=wanted), None, wanted, T0) is None  # exactly when wanted


def test_lock_boundaries_are_exclusive_at_the_end_of_grace_and_lease() -> None:
    grace = timedelta(minutes=2)
    running = core.Lock("o", DATASET, DIGEST, T0, T0 + timedelta(minutes=5), "arn:exec/1")
    starting = replace(running, execution_arn=None)
    assert core.lock_needs_verification(running, T0 + grace, grace)  # grace over at its last instant
    assert core.lock_needs_verification(starting, T0 + timedelta(minutes=5), grace)  # lease over at its end
    assert not core.start_in_progress(starting, T0 + timedelta(minutes=5))
    assert core.judge_lock(starting, [], T0 + timedelta(minutes=5)) == (core.LockVerdict.STALE, None)


def test_a_key_with_a_lone_surrogate_still_gets_a_token() -> None:
    # Object keys arrive URL-decoded and may hold any code point, unpaired surrogates included.
    key = "churn-training|\ud800"
    assert core.client_request_token(key) == core.client_request_token(key)
    assert len(core.client_request_token(key)) == 64


@pytest.mark.usefixtures("india_time")
def test_data_versions_and_reasons_are_in_utc_whatever_the_local_zone() -> None:
    assert core.data_version("2025-01-01T12:00:00Z", DIGEST) == f"20250101T120000Z-{DIGEST[:12]}"
    assert core.data_version("2025-01-01T12:00:00", DIGEST) == f"20250101T120000Z-{DIGEST[:12]}"  # naive: UTC
    assert core.data_version(datetime(2025, 1, 1, 17, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))), DIGEST) == (
        f"20250101T120000Z-{DIGEST[:12]}"
    )
    config = settings(cooldown=timedelta(hours=1), mode=Mode.COMMIT_MARKER)
    trigger = Trigger(TriggerKind.MANUAL, "why", "e", "e", T0)
    decision = core.decide(triggered(trigger), DatasetState(), PipelineState(last_start_at=T0), config, T0)
    assert isinstance(decision, Wait)
    assert decision.reason == "cool-down: last run started 2025-03-04T10:15:30Z"


def test_display_names_keep_letters_and_digits_of_the_dataset_and_fit_sagemaker() -> None:
    assert core.execution_display_name("-churn_v2-", DIGEST) == f"retrain-churn-v2-{DIGEST[:8]}"
    assert core.execution_display_name("___", DIGEST) == f"retrain-dataset-{DIGEST[:8]}"
    assert core.execution_display_name("Xray-", DIGEST) == f"retrain-Xray-{DIGEST[:8]}"
    long = core.execution_display_name("x" * 70, DIGEST)
    assert long == f"retrain-{'x' * 60}-{DIGEST[:8]}"


@pytest.mark.usefixtures("india_time")
def test_a_stored_trigger_round_trips_with_or_without_its_event_key_and_in_utc() -> None:
    for key in (None, "alarm:x@1"):
        trigger = Trigger(TriggerKind.DRIFT, "why", key, "id", T0)
        assert Trigger.from_json(trigger.to_json()) == trigger
    stored = Trigger(TriggerKind.DATA, "why", None, "id", T0).to_json()
    assert Trigger.from_json({**stored, "event_key": 5}) is None
    parsed = Trigger.from_json({**stored, "at": "2025-03-04T15:45:30+05:30"})
    assert parsed is not None
    assert parsed.at.utcoffset() == timedelta(0)


# --- how a batch is aggregated ---------------------------------------------------------------------------


def test_commit_markers_each_become_a_trigger_named_after_their_record() -> None:
    config = settings(mode=Mode.COMMIT_MARKER)
    marker = core.ObjectSignal(DATASET, 0, None, True)
    timed = core.ObjectSignal(DATASET, 0, T0 - timedelta(minutes=1), True)
    batch = DatasetBatch(DATASET)
    core._add(batch, "m-1", marker, config, T0)
    core._add(batch, "m-2", timed, config, T0)
    assert batch.markers == 2
    assert batch.triggers == [
        Trigger(TriggerKind.DATA, "commit marker _SUCCESS landed", None, "marker:m-1", T0),
        Trigger(TriggerKind.DATA, "commit marker _SUCCESS landed", None, "marker:m-2", T0 - timedelta(minutes=1)),
    ]
    assert batch.latest_event_at == T0 - timedelta(minutes=1)
    core._add(batch, "m-3", core.CheckSignal(DATASET, T0), config, T0)
    manual = Trigger(TriggerKind.MANUAL, "why", "e", "e", T0)
    core._add(batch, "m-4", TriggerSignal(DATASET, manual), config, T0)
    assert batch.trigger_ids == ["m-1", "m-2", "m-3", "m-4"]
    assert batch.triggers[-1] == manual
    assert batch.check_dues == [T0]


@pytest.mark.parametrize(
    ("objects", "markers", "min_objects", "expected"),
    [
        (1, 0, 1, core.Touch(None, 1, 100)),
        (0, 1, 5, None),  # a marker alone changes no count
        (3, 0, 0, None),  # no threshold: nothing to count in marker mode
    ],
)
def test_counts_are_written_only_when_a_threshold_needs_them(
    objects: int, markers: int, min_objects: int, expected: core.Touch | None
) -> None:
    config = settings(mode=Mode.COMMIT_MARKER, min_objects=min_objects)
    batch = DatasetBatch(DATASET, objects=objects, bytes=objects * 100, markers=markers)
    assert core.touch_for(batch, config, T0) == expected


def test_the_derived_quiet_trigger_is_named_after_the_last_activity() -> None:
    state = DatasetState(last_activity_at=T0)
    now = T0 + QUIET
    decision = core.decide(None, state, PipelineState(), settings(), now)
    reason = "new objects; quiet for 15 min"
    assert decision == Candidate(Trigger(TriggerKind.DATA, reason, None, "quiet:2025-03-04T10:15:30Z", now), reason)


def test_without_records_or_triggers_there_is_nothing_to_start_in_either_mode() -> None:
    for mode in Mode:
        assert core.decide(None, DatasetState(), PipelineState(), settings(mode=mode), T0) == core.Ignore(
            "nothing to start"
        )


def test_a_data_trigger_short_on_both_counts_names_both() -> None:
    config = settings(mode=Mode.COMMIT_MARKER, min_objects=10, min_bytes=1000)
    marker = Trigger(TriggerKind.DATA, "marker", None, "m", T0)
    state = DatasetState(changed_objects=3, changed_bytes=5)
    decision = core.decide(triggered(marker), state, PipelineState(), config, T0)
    assert decision == core.Ignore("below the change threshold: 3 of 10 objects, 5 of 1000 bytes")


def test_a_lock_still_being_started_pends_the_trigger_naming_the_start() -> None:
    config = settings(mode=Mode.COMMIT_MARKER)
    trigger = Trigger(TriggerKind.MANUAL, "why", "e", "e", T0)
    starting = core.Lock("o", DATASET, DIGEST, T0, T0 + timedelta(minutes=5))
    decision = core.decide(triggered(trigger), DatasetState(), PipelineState(lock=starting), config, T0)
    recheck = T0 + timedelta(minutes=15)
    assert decision == core.Pend(trigger, "pipeline busy: a start in progress holds the lock", recheck, True)


def test_the_cool_down_ends_at_its_last_instant() -> None:
    config = settings(mode=Mode.COMMIT_MARKER, cooldown=timedelta(hours=1))
    trigger = Trigger(TriggerKind.DRIFT, "why", "e", "e", T0)
    pipeline = PipelineState(last_start_at=T0)
    waiting = core.decide(triggered(trigger), DatasetState(), pipeline, config, T0 + timedelta(minutes=59))
    assert waiting == Wait(trigger, T0 + timedelta(hours=1), "cool-down: last run started 2025-03-04T10:15:30Z", True)
    assert isinstance(
        core.decide(triggered(trigger), DatasetState(), pipeline, config, T0 + timedelta(hours=1)), Candidate
    )


@pytest.mark.usefixtures("india_time")
def test_the_daily_maximum_counts_utc_days_on_a_machine_in_another_zone() -> None:
    # GIVEN 20:00 UTC, already the next day in India, and three runs today (UTC)
    config = settings(mode=Mode.COMMIT_MARKER, cooldown=timedelta(0), max_runs_per_day=3)
    trigger = Trigger(TriggerKind.MANUAL, "why", "e", "e", T0)
    evening = datetime(2025, 3, 4, 20, 0, 0, 250_000, tzinfo=UTC)
    decision = core.decide(
        triggered(trigger), DatasetState(), PipelineState(runs_day="2025-03-04", runs_today=3), config, evening
    )
    # THEN it waits until midnight UTC exactly
    assert decision == Wait(trigger, datetime(2025, 3, 5, tzinfo=UTC), "daily maximum of 3 runs reached", True)
    assert core.utc_day(evening) == "2025-03-04"


# --- what each event becomes ----------------------------------------------------------------------------


def test_each_trigger_event_becomes_a_trigger_with_its_reason_identity_and_time() -> None:
    from cdk_mlops.lambdas.retrain_trigger.events import ManualRetrain, MonitorViolation

    config, at, now = settings(), T0 - timedelta(minutes=1), T0
    cases: list[tuple[object, Trigger]] = [
        (
            ScheduledRetrain("e-1", at, DATASET, "2025-03-10T03:00:00Z", always=False),
            Trigger(
                TriggerKind.SCHEDULED,
                "scheduled retrain (2025-03-10T03:00:00Z)",
                None,
                "scheduled:2025-03-10T03:00:00Z",
                at,
            ),
        ),
        (
            ManualRetrain("e-2", None, DATASET, "new features", None),
            Trigger(TriggerKind.MANUAL, "manual retrain: new features", "e-2", "e-2", now),
        ),
        (
            AlarmStateChange("e-3", at, "drift", "ALARM", None),
            Trigger(TriggerKind.DRIFT, "drift alarm drift in ALARM", "alarm:drift@e-3", "alarm:drift@e-3", at),
        ),
        (
            MonitorViolation("e-4", at, None, "hourly", "job-1", 3),
            Trigger(
                TriggerKind.DRIFT, "model monitor found 3 violations (hourly)", "violation:job-1", "violation:job-1", at
            ),
        ),
        (
            MonitorViolation("e-5", at, "fraud", None, "job-2", None),
            Trigger(TriggerKind.DRIFT, "model monitor found violations", "violation:job-2", "violation:job-2", at),
        ),
    ]
    for event, expected in cases:
        dataset = "fraud" if expected.id == "violation:job-2" else DATASET
        assert core.route(event, config, now) == TriggerSignal(dataset, expected)  # type: ignore[arg-type]


def test_events_for_unknown_datasets_and_odd_objects_are_ignored_with_the_reason() -> None:
    from cdk_mlops.lambdas.retrain_trigger.events import Ignored, ManualRetrain, MonitorViolation, ObjectCreated

    config, now = settings(mode=Mode.COMMIT_MARKER), T0

    def obj(key: str, bucket: str = "mlops-data-123456789012") -> ObjectCreated:
        return ObjectCreated("e", now, bucket, key, 1, None)

    assert core.route(ScheduledRetrain("e", now, "x", "t", always=False), config, now) == Ignored(
        "scheduled retrain of unknown dataset 'x'"
    )
    assert core.route(ManualRetrain("e", now, "x", "r", None), config, now) == Ignored(
        "manual retrain of unknown dataset 'x'"
    )
    assert core.route(MonitorViolation("e", now, "x", None, "j", 1), config, now) == Ignored(
        "violation for unknown dataset 'x'"
    )
    assert core.route(obj("datasets/churn/a.csv", bucket="other"), config, now) == Ignored("object in another bucket")
    assert core.route(obj("datasets/other/a.csv"), config, now) == Ignored("object outside the configured datasets")
    assert core.route(obj("datasets/churn/folder/"), config, now) == Ignored("folder placeholder object")
    # A marker at the dataset's root and one deeper are both markers; a file named like it in a name is not.
    assert core.route(obj("datasets/churn/_SUCCESS"), config, now) == core.ObjectSignal(DATASET, 1, now, True)
    assert core.route(obj("datasets/churn/d1/_SUCCESS"), config, now) == core.ObjectSignal(DATASET, 1, now, True)
    assert core.route(obj("datasets/churn/a/b/_SUCCESS"), config, now) == core.ObjectSignal(DATASET, 1, now, True)


def test_a_batch_routes_with_the_current_time_into_one_aggregate_per_dataset() -> None:
    from cdk_mlops.lambdas.retrain_trigger.events import ManualRetrain

    config = settings(mode=Mode.COMMIT_MARKER)
    records = [
        ("m-1", ManualRetrain("e-1", None, DATASET, "why", None)),
        ("m-2", ManualRetrain("e-2", None, "fraud", "why", None)),
    ]
    plan = core.plan_batch(records, config, T0)
    assert sorted(plan.datasets) == [DATASET, "fraud"]
    assert plan.datasets[DATASET].dataset == DATASET
    assert plan.datasets[DATASET].triggers[0].at == T0


def test_a_commit_marker_without_an_event_time_triggers_at_the_time_of_processing() -> None:
    # GIVEN a marker object event whose EventBridge envelope has no time
    from cdk_mlops.lambdas.retrain_trigger.events import ObjectCreated
    from tests.handlers.retrain_trigger.conftest import BUCKET

    config = settings(mode=Mode.COMMIT_MARKER)
    marker = ObjectCreated("e-1", None, BUCKET, f"datasets/{DATASET}/{config.marker_name}", 0, None)
    # WHEN it is planned at T0 + 1 minute
    now = T0 + timedelta(minutes=1)
    plan = core.plan_batch([("m-1", marker)], config, now)
    # THEN its trigger carries the processing time, so the quiet period and the day count from it
    [trigger] = plan.datasets[DATASET].triggers
    assert (trigger.kind, trigger.at) == (TriggerKind.DATA, now)
