"""The pure core: parsing, settings, routing, aggregation and decisions. No mocks, no AWS."""

from __future__ import annotations

import json
import string
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from cdk_mlops import datasets
from cdk_mlops.lambdas.retrain_trigger import core, events
from cdk_mlops.lambdas.retrain_trigger.core import (
    Candidate,
    CheckSignal,
    DatasetBatch,
    DatasetState,
    Deduplicated,
    FinishedSignal,
    Ignore,
    Lock,
    LockVerdict,
    Mode,
    Pend,
    PipelineState,
    Settings,
    Start,
    Trigger,
    TriggerKind,
    TriggerSignal,
    Wait,
)
from cdk_mlops.lambdas.retrain_trigger.events import (
    AlarmStateChange,
    Ignored,
    Invalid,
    ManualRetrain,
    MonitorViolation,
    ObjectCreated,
    PipelineStatusChange,
    RetrainCheck,
    ScheduledRetrain,
)
from tests.handlers.retrain_trigger.conftest import (
    BUCKET,
    DATASET,
    PIPELINE,
    alarm,
    check,
    load_event,
    object_created,
    sqs_record,
    status_change,
)

T0 = datetime(2025, 3, 4, 10, 15, 30, tzinfo=UTC)


def first_model() -> core.Champion:
    """No approved package yet: the gate compares with 0."""
    return core.Champion(None, {"ChampionMetric": "0.0"})


ENV = {
    "PIPELINE_NAME": PIPELINE,
    "DATA_BUCKET": BUCKET,
    "DATASETS": f"{DATASET},fraud",
    "STATE_TABLE": "retrain-state",
    "QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/retrain-trigger",
    "MODEL_PACKAGE_GROUP_NAME": f"{PIPELINE}-models",
}


def settings(**overrides: Any) -> Settings:
    base = Settings.from_env(ENV)
    return replace(base, **overrides)


def trigger(kind: TriggerKind = TriggerKind.DATA, *, at: datetime = T0, key: str | None = None) -> Trigger:
    return Trigger(kind, f"{kind.value} trigger", key, f"{kind.value}:{at.isoformat()}:{key}", at)


def parse(body: dict[str, Any] | str) -> events.Parsed:
    return events.parse_body(body if isinstance(body, str) else json.dumps(body), fallback_id="m-1")


def plan(*bodies: dict[str, Any], config: Settings | None = None, now: datetime = T0) -> core.BatchPlan:
    parsed = [(f"m-{i}", parse(b)) for i, b in enumerate(bodies)]
    return core.plan_batch(parsed, config or settings(), now)


# --- parsing --------------------------------------------------------------------------------------


def test_fixtures_parse_to_their_typed_events() -> None:
    # GIVEN the checked-in fixtures WHEN parsed THEN each becomes its typed event
    expected = {
        "s3_object_created.json": ObjectCreated,
        "pipeline_execution_status_change.json": PipelineStatusChange,
        "cloudwatch_alarm_state_change.json": AlarmStateChange,
        "scheduled_retrain.json": ScheduledRetrain,
        "manual_retrain.json": ManualRetrain,
        "model_monitor_violation.json": MonitorViolation,
        "retrain_check.json": RetrainCheck,
    }
    for name, kind in expected.items():
        assert isinstance(parse(load_event(name)), kind), name


def test_object_created_fields_are_read_from_the_real_shape() -> None:
    parsed = parse(load_event("s3_object_created.json"))
    assert parsed == ObjectCreated(
        event_id="17793124-05d4-b198-2fde-7ededc63b103",
        time=datetime(2025, 3, 4, 10, 15, 30, tzinfo=UTC),
        bucket=BUCKET,
        key="datasets/churn/2025-03-04/part-00000.csv",
        size=5242880,
        etag="b1946ac92492d2347c6235b4d2611184",
    )


@pytest.mark.parametrize(
    ("sent", "key"),
    [
        ("datasets/churn/red+flower.csv", "datasets/churn/red flower.csv"),
        ("datasets/churn/c%2B%2B.csv", "datasets/churn/c++.csv"),
        ("datasets%2Fchurn%2Fa%3Ab.csv", "datasets/churn/a:b.csv"),
        ("datasets/churn/%C3%A9t%C3%A9+%E2%9C%93.parquet", "datasets/churn/été ✓.parquet"),
        ("datasets/churn/100%25.csv", "datasets/churn/100%.csv"),
    ],
)
def test_object_keys_are_url_decoded(sent: str, key: str) -> None:
    parsed = parse(object_created(sent, encode=False))
    assert isinstance(parsed, ObjectCreated)
    assert parsed.key == key


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "message body is not JSON"),
        ("[1, 2]", "event is not a JSON object"),
        ('{"detail-type": "Object Created"}', "not an EventBridge event"),
        ('{"Records": []}', "S3 event notification format is not supported"),
        ('{"source": "aws.s3", "detail-type": "Object Created", "detail": []}', "'detail' must be an object"),
        ("[" * 100_000, "message body is not JSON"),
    ],
)
def test_malformed_bodies_are_invalid_with_a_reason(body: str, reason: str) -> None:
    parsed = parse(body)
    assert isinstance(parsed, Invalid)
    assert reason in parsed.reason


def test_missing_and_mistyped_fields_are_invalid_and_named() -> None:
    no_key = object_created("datasets/churn/a.csv")
    del no_key["detail"]["object"]["key"]
    bool_size = object_created("datasets/churn/a.csv")
    bool_size["detail"]["object"]["size"] = True
    manual = load_event("manual_retrain.json")
    del manual["detail"]["dataset"]
    due = check(1)
    due["detail"]["due"] = "soon"

    assert parse(no_key) == Invalid("Object Created: missing detail.object.key")
    assert parse(bool_size) == Invalid("Object Created: detail.object.size must be a non-negative integer")
    assert parse(manual) == Invalid("Manual Retrain: missing detail.dataset")
    assert parse(due) == Invalid("Retrain Check: detail.due must be epoch seconds (an integer)")


def test_unknown_events_and_s3_test_events_are_ignored() -> None:
    unknown = {"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {}}
    assert parse(unknown) == Ignored("unsupported event 'aws.ec2' / 'EC2 Instance State-change Notification'")
    assert parse(load_event("s3_test_event.json")) == Ignored("S3 test event")


def test_sqs_record_without_body_is_invalid_and_keeps_its_id() -> None:
    record = sqs_record("{}", message_id="abc")
    del record["body"]
    assert events.parse_record(record) == ("abc", Invalid("message body is not a string"))
    assert events.parse_record("nope") == ("", Invalid("SQS record is not an object"))


def test_manual_retrain_without_id_uses_the_sqs_message_id() -> None:
    manual = load_event("manual_retrain.json")
    del manual["id"]
    parsed = events.parse_body(json.dumps(manual), fallback_id="sqs-42")
    assert isinstance(parsed, ManualRetrain)
    assert parsed.event_id == "sqs-42"


@pytest.mark.parametrize("template_name", ["manual_retrain.json", "scheduled_retrain.json"])
def test_a_request_that_names_another_pipeline_is_not_for_this_trigger(template_name: str) -> None:
    request = load_event(template_name)
    request["detail"]["dataset"] = DATASET
    for named, routed in ((None, True), (PIPELINE, True), ("other-training", False)):
        if named is not None:
            request["detail"]["pipeline"] = named
        result = plan(request)
        assert bool(result.datasets) is routed, named
        if not routed:
            assert result.ignored == [("m-0", "retrain of another pipeline 'other-training'")]


def test_parse_time_accepts_aws_formats_and_rejects_junk() -> None:
    assert events.parse_time("2019-10-02T17:04:40.985+0000") == datetime(2019, 10, 2, 17, 4, 40, 985000, UTC)
    assert events.parse_time("2021-11-12T00:00:00Z") == datetime(2021, 11, 12, tzinfo=UTC)
    assert events.parse_time("0001-01-01T00:00:00+01:00") is None
    assert events.parse_time("yesterday") is None
    assert events.parse_time(17) is None


# --- settings -------------------------------------------------------------------------------------


def test_settings_defaults() -> None:
    config = Settings.from_env(ENV)
    assert config.datasets == (DATASET, "fraud")
    assert config.primary_dataset == DATASET
    assert config.mode is Mode.QUIET_PERIOD
    assert config.quiet_period == timedelta(minutes=15)
    assert config.marker_name == "_SUCCESS"
    assert config.cooldown == timedelta(hours=1)
    assert config.max_runs_per_day == 4
    assert config.metrics_namespace == "CdkMlops/RetrainTrigger"


def test_settings_read_every_variable() -> None:
    env = {
        **ENV,
        "DATASETS": '["churn", "fraud"]',
        "MODE": "commit_marker",
        "QUIET_PERIOD_SECONDS": "60",
        "MARKER_NAME": "_DONE",
        "KEY_PREFIX": "train/",
        "KEY_SUFFIXES": ".csv, .parquet",
        "MIN_OBJECTS": "10",
        "MIN_BYTES": "1024",
        "COOLDOWN_SECONDS": "0",
        "MAX_RUNS_PER_DAY": "0",
        "IDEMPOTENCY_TTL_SECONDS": "86400",
        "LEASE_SECONDS": "180",
        "LOCK_RECHECK_SECONDS": "600",
        "LOCK_GRACE_SECONDS": "30",
        "METRICS_NAMESPACE": "Team/Retrain",
    }
    config = Settings.from_env(env)
    assert config == Settings(
        pipeline_name=PIPELINE,
        data_bucket=BUCKET,
        datasets=("churn", "fraud"),
        state_table="retrain-state",
        queue_url=ENV["QUEUE_URL"],
        model_package_group=f"{PIPELINE}-models",
        mode=Mode.COMMIT_MARKER,
        quiet_period=timedelta(seconds=60),
        marker_name="_DONE",
        key_prefix="train/",
        key_suffixes=(".csv", ".parquet"),
        min_objects=10,
        min_bytes=1024,
        cooldown=timedelta(0),
        max_runs_per_day=0,
        idempotency_ttl=timedelta(days=1),
        lease=timedelta(seconds=180),
        lock_recheck=timedelta(seconds=600),
        lock_grace=timedelta(seconds=30),
        metrics_namespace="Team/Retrain",
    )


def test_settings_name_every_missing_variable() -> None:
    with pytest.raises(KeyError, match=r"missing required environment variable\(s\): PIPELINE_NAME, QUEUE_URL"):
        Settings.from_env({k: v for k, v in ENV.items() if k not in ("PIPELINE_NAME", "QUEUE_URL")})


def test_settings_require_the_model_package_group_whose_champion_every_run_must_beat() -> None:
    # Without it a start could not find the approved model and would gate against no champion.
    with pytest.raises(KeyError, match=r"variable\(s\): MODEL_PACKAGE_GROUP_NAME"):
        Settings.from_env({k: v for k, v in ENV.items() if k != "MODEL_PACKAGE_GROUP_NAME"})
    assert Settings.from_env({**ENV, "MODEL_PACKAGE_GROUP_NAME": " churn-models "}).model_package_group == (
        "churn-models"
    )


def test_settings_name_every_bad_value() -> None:
    env = {**ENV, "MODE": "eager", "COOLDOWN_SECONDS": "ten", "LEASE_SECONDS": "5", "DATASETS": "churn,a/b"}
    with pytest.raises(ValueError, match="invalid environment") as error:
        Settings.from_env(env)
    message = str(error.value)
    assert "MODE='EAGER': expected one of QUIET_PERIOD, COMMIT_MARKER" in message
    assert "COOLDOWN_SECONDS='ten': expected an integer" in message
    assert "LEASE_SECONDS='5': expected an integer >= 30 and <= 3600" in message
    assert "DATASETS: dataset name 'a/b' contains '/'" in message


def test_settings_reject_an_empty_dataset_list_and_bad_json() -> None:
    with pytest.raises(ValueError, match="DATASETS=',': expected at least one dataset name"):
        Settings.from_env({**ENV, "DATASETS": ","})
    with pytest.raises(ValueError, match="KEY_SUFFIXES='\\[1\\]': expected a JSON array of strings"):
        Settings.from_env({**ENV, "KEY_SUFFIXES": "[1]"})


def test_dataset_prefix_matches_the_datasets_module() -> None:
    assert core.dataset_prefix(DATASET) == datasets.dataset_prefix(DATASET)


# --- routing --------------------------------------------------------------------------------------


def test_objects_are_routed_to_their_dataset() -> None:
    result = plan(object_created("datasets/churn/a.csv", size=10), object_created("datasets/fraud/b.csv", size=5))
    assert set(result.datasets) == {"churn", "fraud"}
    assert result.datasets["churn"].objects == 1
    assert result.datasets["churn"].bytes == 10


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (object_created("datasets/churn/a.csv", bucket="someone-else"), "object in another bucket"),
        (object_created("manifests/churn/x.json"), "object outside the configured datasets"),
        (object_created("datasets/churnX/a.csv"), "object outside the configured datasets"),
        (object_created("datasets/churn"), "object outside the configured datasets"),
        (object_created("datasets/churn/"), "folder placeholder object"),
        (object_created("datasets/churn/2025/"), "folder placeholder object"),
        (alarm("OK"), "alarm 'churn-feature-drift' is OK"),
        (
            status_change("arn:aws:sagemaker:eu-west-1:1:pipeline/other/execution/x", pipeline="other"),
            "another pipeline",
        ),
        (status_change(f"arn:aws:sagemaker:eu-west-1:1:pipeline/{PIPELINE}/execution/x", "Executing"), "execution is"),
        (check(1, pipeline="other"), "check for another pipeline 'other'"),
        (check(1, dataset="unknown"), "check for unknown dataset 'unknown'"),
    ],
)
def test_events_not_for_us_are_ignored(event: dict[str, Any], reason: str) -> None:
    result = plan(event)
    assert not result.datasets
    assert not result.finished
    assert len(result.ignored) == 1
    assert reason in result.ignored[0][1]


def test_prefix_and_suffix_filters() -> None:
    config = settings(key_prefix="train/", key_suffixes=(".csv",))
    result = plan(
        object_created("datasets/churn/train/a.csv"),
        object_created("datasets/churn/test/b.csv"),
        object_created("datasets/churn/train/c.json"),
        config=config,
    )
    assert result.datasets["churn"].objects == 1
    assert sorted(reason for _, reason in result.ignored) == [
        "object filtered out by KEY_SUFFIXES",
        "object outside KEY_PREFIX",
    ]


def test_commit_marker_is_a_trigger_only_in_marker_mode() -> None:
    marker = object_created("datasets/churn/2025-03-04/_SUCCESS", size=0)
    in_marker_mode = plan(marker, config=settings(mode=Mode.COMMIT_MARKER, key_suffixes=(".csv",)))
    in_quiet_mode = plan(marker)
    batch = in_marker_mode.datasets["churn"]
    assert (batch.markers, batch.objects, batch.trigger_ids) == (1, 0, ["m-0"])
    assert batch.triggers[0].kind is TriggerKind.DATA
    assert batch.triggers[0].event_key is None
    assert (in_quiet_mode.datasets["churn"].markers, in_quiet_mode.datasets["churn"].objects) == (0, 1)


def test_status_change_of_our_pipeline_finishes_regardless_of_arn_case() -> None:
    arn = f"arn:aws:sagemaker:eu-west-1:123456789012:pipeline/{PIPELINE.upper()}/execution/abc"
    result = plan(status_change(arn, "Failed", pipeline=PIPELINE.upper()))
    assert result.finished == [("m-0", FinishedSignal(arn, "Failed"))]


def test_drift_alarm_and_violation_become_drift_triggers_keyed_by_their_event() -> None:
    violation = load_event("model_monitor_violation.json")
    result = plan(alarm(), violation)
    triggers = result.datasets[DATASET].triggers
    assert [t.kind for t in triggers] == [TriggerKind.DRIFT, TriggerKind.DRIFT]
    assert triggers[0].event_key == "alarm:churn-feature-drift@2025-03-05T17:04:40.989+0000"
    assert triggers[1].event_key == (
        "violation:arn:aws:sagemaker:eu-west-1:123456789012:processing-job/model-monitoring-202503051700-7f3a"
    )


def test_scheduled_trigger_dedupes_by_data_unless_always() -> None:
    scheduled = load_event("scheduled_retrain.json")
    always = load_event("scheduled_retrain.json")
    always["detail"]["always"] = True
    result = plan(scheduled, always)
    first, second = result.datasets[DATASET].triggers
    assert first.event_key is None
    assert second.event_key == "2025-03-10T03:00:00Z"


def test_routing_of_every_kind_via_route() -> None:
    config = settings()
    manual = parse(load_event("manual_retrain.json"))
    assert isinstance(manual, ManualRetrain)
    signal = core.route(manual, config, T0)
    assert isinstance(signal, TriggerSignal)
    assert signal.trigger.kind is TriggerKind.MANUAL
    assert signal.trigger.reason == "manual retrain by data-scientist@example.com: new feature engineering merged"
    parsed_check = parse(load_event("retrain_check.json"))
    assert isinstance(parsed_check, RetrainCheck)
    assert core.route(parsed_check, config, T0) == CheckSignal(DATASET, datetime(2025, 3, 4, 10, 31, tzinfo=UTC))


def test_plan_batch_aggregates_counts_bytes_and_latest_time() -> None:
    result = plan(
        object_created("datasets/churn/a.csv", size=10, time="2025-03-04T10:00:00Z"),
        object_created("datasets/churn/b.csv", size=20, time="2025-03-04T10:05:00Z"),
        object_created("datasets/churn/c.csv", size=30, time="2025-03-04T10:01:00Z"),
        check(1741084260),
        {"source": "x", "detail-type": "y"},
        "garbage",  # type: ignore[arg-type]
    )
    batch = result.datasets[DATASET]
    assert (batch.objects, batch.bytes) == (3, 60)
    assert batch.latest_event_at == datetime(2025, 3, 4, 10, 5, tzinfo=UTC)
    assert batch.object_ids == ["m-0", "m-1", "m-2"]
    assert batch.trigger_ids == ["m-3"]
    assert batch.check_dues == [datetime(2025, 3, 4, 10, 31, tzinfo=UTC)]
    assert [record for record, _ in result.ignored] == ["m-4"]
    assert [record for record, _ in result.invalid] == ["m-5"]


# --- touch ----------------------------------------------------------------------------------------


def test_touch_records_activity_in_quiet_mode_and_counts_only_with_a_threshold() -> None:
    batch = DatasetBatch(DATASET, objects=3, bytes=300)
    assert core.touch_for(batch, settings(), T0) == core.Touch(T0, 0, 0)
    assert core.touch_for(batch, settings(min_objects=5), T0) == core.Touch(T0, 3, 300)
    assert core.touch_for(batch, settings(mode=Mode.COMMIT_MARKER), T0) is None
    assert core.touch_for(batch, settings(mode=Mode.COMMIT_MARKER, min_bytes=1), T0) == core.Touch(None, 3, 300)
    assert core.touch_for(DatasetBatch(DATASET), settings(), T0) is None


def test_apply_touch_keeps_the_latest_activity_and_adds_counts() -> None:
    state = DatasetState(last_activity_at=T0, changed_objects=2, changed_bytes=20)
    later = core.apply_touch(state, core.Touch(T0 + timedelta(seconds=5), 1, 10))
    earlier = core.apply_touch(state, core.Touch(T0 - timedelta(seconds=5), 0, 0))
    assert (later.last_activity_at, later.changed_objects, later.changed_bytes) == (T0 + timedelta(seconds=5), 3, 30)
    assert earlier.last_activity_at == T0


# --- decide ---------------------------------------------------------------------------------------


def objects_batch(n: int = 1) -> DatasetBatch:
    return DatasetBatch(DATASET, objects=n, bytes=n * 100, object_ids=[f"m-{i}" for i in range(n)])


def test_quiet_mode_waits_while_objects_arrive() -> None:
    state = DatasetState(last_activity_at=T0)
    decision = core.decide(objects_batch(), state, PipelineState(), settings(), T0)
    assert isinstance(decision, Wait)
    assert decision.until == T0 + timedelta(minutes=15)
    assert decision.persist is False  # the derived data trigger is rebuilt from the state
    assert "quiet period" in decision.reason


def test_quiet_mode_starts_once_quiet() -> None:
    state = DatasetState(last_activity_at=T0)
    decision = core.decide(None, state, PipelineState(), settings(), T0 + timedelta(minutes=15))
    assert isinstance(decision, Candidate)
    assert decision.trigger.kind is TriggerKind.DATA


def test_quiet_mode_is_clean_after_the_data_settled() -> None:
    state = DatasetState(last_activity_at=T0, settled_at=T0 + timedelta(seconds=1))
    assert core.decide(None, state, PipelineState(), settings(), T0 + timedelta(hours=1)) == Ignore("nothing to start")


def test_quiet_mode_holds_drift_and_manual_until_the_drop_is_complete() -> None:
    batch = DatasetBatch(DATASET, triggers=[trigger(TriggerKind.MANUAL, key="e1")], trigger_ids=["m-0"])
    state = DatasetState(last_activity_at=T0)
    decision = core.decide(batch, state, PipelineState(), settings(), T0 + timedelta(minutes=1))
    assert isinstance(decision, Wait)
    assert decision.trigger.kind is TriggerKind.MANUAL
    assert decision.persist is True


def test_marker_mode_waits_for_the_marker() -> None:
    config = settings(mode=Mode.COMMIT_MARKER)
    decision = core.decide(objects_batch(5), DatasetState(), PipelineState(), config, T0)
    assert decision == Ignore("waiting for commit marker _SUCCESS")


def test_marker_mode_starts_on_the_marker() -> None:
    config = settings(mode=Mode.COMMIT_MARKER)
    batch = DatasetBatch(DATASET, markers=1, triggers=[trigger()], trigger_ids=["m-0"])
    decision = core.decide(batch, DatasetState(), PipelineState(), config, T0)
    assert isinstance(decision, Candidate)


def lock(*, arn: str | None = "arn:exec/1", acquired: datetime = T0) -> Lock:
    return Lock("owner", DATASET, "d" * 64, acquired, acquired + timedelta(minutes=5), arn)


def test_busy_pipeline_pends_the_trigger_and_rechecks() -> None:
    config = settings(mode=Mode.COMMIT_MARKER)
    batch = DatasetBatch(DATASET, markers=1, triggers=[trigger()], trigger_ids=["m-0"])
    decision = core.decide(batch, DatasetState(), PipelineState(lock=lock()), config, T0)
    assert isinstance(decision, Pend)
    assert decision.persist is True
    assert decision.recheck_at == T0 + timedelta(minutes=15)
    assert "arn:exec/1 holds the lock" in decision.reason


def test_cooldown_waits_until_it_ends() -> None:
    config = settings(mode=Mode.COMMIT_MARKER)
    batch = DatasetBatch(DATASET, markers=1, triggers=[trigger()], trigger_ids=["m-0"])
    pipeline = PipelineState(last_start_at=T0 - timedelta(minutes=10))
    decision = core.decide(batch, DatasetState(), pipeline, config, T0)
    assert isinstance(decision, Wait)
    assert decision.until == T0 + timedelta(minutes=50)
    assert decision.reason.startswith("cool-down")


def test_daily_maximum_waits_until_midnight_utc() -> None:
    config = settings(mode=Mode.COMMIT_MARKER, cooldown=timedelta(0), max_runs_per_day=2)
    batch = DatasetBatch(DATASET, markers=1, triggers=[trigger()], trigger_ids=["m-0"])
    today = PipelineState(runs_day="2025-03-04", runs_today=2)
    yesterday = PipelineState(runs_day="2025-03-03", runs_today=9)
    decision = core.decide(batch, DatasetState(), today, config, T0)
    assert isinstance(decision, Wait)
    assert decision.until == datetime(2025, 3, 5, tzinfo=UTC)
    assert isinstance(core.decide(batch, DatasetState(), yesterday, config, T0), Candidate)
    unlimited = replace(config, max_runs_per_day=0)
    assert isinstance(core.decide(batch, DatasetState(), today, unlimited, T0), Candidate)


def test_change_threshold_applies_to_data_triggers_only() -> None:
    config = settings(mode=Mode.COMMIT_MARKER, min_objects=10, min_bytes=1000)
    marker = DatasetBatch(DATASET, markers=1, triggers=[trigger()], trigger_ids=["m-0"])
    few = DatasetState(changed_objects=3, changed_bytes=5000)
    decision = core.decide(marker, few, PipelineState(), config, T0)
    assert decision == Ignore("below the change threshold: 3 of 10 objects")
    manual = DatasetBatch(DATASET, triggers=[trigger(TriggerKind.MANUAL, key="x")], trigger_ids=["m-0"])
    assert isinstance(core.decide(manual, few, PipelineState(), config, T0), Candidate)
    enough = DatasetState(changed_objects=10, changed_bytes=1000)
    assert isinstance(core.decide(marker, enough, PipelineState(), config, T0), Candidate)


def test_threshold_ignore_uses_up_a_pending_data_trigger() -> None:
    config = settings(mode=Mode.COMMIT_MARKER, min_bytes=10)
    pending = trigger()
    decision = core.decide(None, DatasetState(pending=pending), PipelineState(), config, T0)
    assert decision == Ignore("below the change threshold: 0 of 10 bytes", pending)


def test_pending_trigger_is_evaluated_without_records() -> None:
    config = settings(mode=Mode.COMMIT_MARKER)
    pending = trigger(TriggerKind.DRIFT, key="alarm:x@1")
    decision = core.decide(None, DatasetState(pending=pending), PipelineState(), config, T0)
    assert decision == Candidate(pending, pending.reason)


def test_strongest_trigger_wins_then_newest() -> None:
    data, drift, manual = trigger(), trigger(TriggerKind.DRIFT, key="a"), trigger(TriggerKind.MANUAL, key="b")
    newer_drift = trigger(TriggerKind.DRIFT, at=T0 + timedelta(seconds=1), key="c")
    assert core.strongest([data, drift, manual]) == manual
    assert core.strongest([drift, newer_drift, data]) == newer_drift


def test_pending_slot_keeps_the_stronger_then_the_newer() -> None:
    drift, data = trigger(TriggerKind.DRIFT, key="a"), trigger(at=T0 + timedelta(hours=1))
    newer = trigger(at=T0 + timedelta(hours=2))
    assert core.merge_pending(None, data) == data
    assert core.merge_pending(drift, data) == drift
    assert core.merge_pending(data, drift) == drift
    assert core.merge_pending(data, newer) == newer


def test_after_manifest_dedupes_data_triggers_by_digest_only() -> None:
    state = DatasetState(last_digest="a" * 64)
    data, drift = trigger(), trigger(TriggerKind.DRIFT, key="alarm:x@1")
    assert core.after_manifest(data, digest="a" * 64, entries=3, state=state) == Deduplicated(
        "a" * 64, "this data version was already started"
    )
    assert core.after_manifest(drift, digest="a" * 64, entries=3, state=state) == Start(drift, "a" * 64, drift.reason)
    assert core.after_manifest(data, digest="b" * 64, entries=3, state=state) == Start(data, "b" * 64, data.reason)
    assert core.after_manifest(data, digest="c" * 64, entries=0, state=state) == Ignore("the dataset has no objects")


def test_idempotency_key_rule() -> None:
    digest = "f" * 64
    assert core.idempotency_key(PIPELINE, trigger(), digest) == f"{PIPELINE}|{digest}"
    scheduled = trigger(TriggerKind.SCHEDULED)
    assert core.idempotency_key(PIPELINE, scheduled, digest) == f"{PIPELINE}|{digest}"
    drift = trigger(TriggerKind.DRIFT, key="alarm:x@1")
    assert core.idempotency_key(PIPELINE, drift, digest) == f"{PIPELINE}|{digest}|drift|alarm:x@1"


def test_client_request_token_is_stable_and_valid() -> None:
    token = core.client_request_token("churn-training|abc")
    assert token == core.client_request_token("churn-training|abc")
    assert token != core.client_request_token("churn-training|abd")
    assert 32 <= len(token) <= 128
    assert set(token) <= set(string.hexdigits)


# --- checks ---------------------------------------------------------------------------------------


def test_plan_check_keeps_one_chain_per_dataset() -> None:
    wanted = T0 + timedelta(minutes=15)
    none = DatasetState()
    earlier = DatasetState(check_due_at=T0 + timedelta(minutes=5))
    later = DatasetState(check_due_at=T0 + timedelta(minutes=30))
    expired = DatasetState(check_due_at=T0 - timedelta(minutes=1))
    assert core.plan_check(none, None, wanted, T0) == wanted
    assert core.plan_check(earlier, None, wanted, T0) is None  # it re-chains itself when it arrives
    assert core.plan_check(later, None, wanted, T0) == wanted
    assert core.plan_check(expired, None, wanted, T0) == wanted
    handled = DatasetBatch(DATASET, check_dues=[T0 + timedelta(minutes=5)])
    assert core.plan_check(earlier, handled, wanted, T0) == wanted


def test_check_delay_is_capped_at_15_minutes() -> None:
    assert core.check_delay(T0 + timedelta(hours=2), T0) == 900
    assert core.check_delay(T0 + timedelta(seconds=61.2), T0) == 62
    assert core.check_delay(T0 - timedelta(seconds=5), T0) == 0


def test_ceil_second_and_midnight() -> None:
    assert core.ceil_second(T0 + timedelta(microseconds=1)) == T0 + timedelta(seconds=1)
    assert core.ceil_second(T0) == T0
    assert core.next_utc_midnight(datetime(2025, 12, 31, 23, 59, tzinfo=UTC)) == datetime(2026, 1, 1, tzinfo=UTC)


# --- lock -----------------------------------------------------------------------------------------


def test_young_locks_are_trusted() -> None:
    grace = timedelta(minutes=2)
    assert not core.lock_needs_verification(lock(), T0 + timedelta(minutes=1), grace)
    assert core.lock_needs_verification(lock(), T0 + timedelta(minutes=3), grace)
    starting = lock(arn=None)
    assert not core.lock_needs_verification(starting, T0 + timedelta(minutes=3), grace)  # lease not over
    assert core.lock_needs_verification(starting, T0 + timedelta(minutes=6), grace)


def test_judge_lock() -> None:
    later = T0 + timedelta(minutes=10)
    ours = core.RunningExecution("arn:exec/9", core.execution_display_name(DATASET, "d" * 64))
    other = core.RunningExecution("arn:exec/2", "manual-run")
    assert core.judge_lock(lock(), [core.RunningExecution("arn:exec/1", None)], later) == (LockVerdict.HELD, None)
    assert core.judge_lock(lock(), [other], later) == (LockVerdict.STALE, None)
    assert core.judge_lock(lock(arn=None), [other, ours], later) == (LockVerdict.ADOPT, "arn:exec/9")
    assert core.judge_lock(lock(arn=None), [other], later) == (LockVerdict.STALE, None)
    assert core.judge_lock(lock(arn=None), [], T0) == (LockVerdict.HELD, None)


def test_start_in_progress() -> None:
    assert core.start_in_progress(lock(arn=None), T0)
    assert not core.start_in_progress(lock(arn=None), T0 + timedelta(minutes=6))
    assert not core.start_in_progress(lock(), T0)
    assert not core.start_in_progress(None, T0)


# --- starting -------------------------------------------------------------------------------------


def test_pipeline_parameters_use_the_shared_names_and_fit_the_limits() -> None:
    params = core.pipeline_parameters(
        manifest_uri="s3://b/m.json", digest="a" * 64, version="v", reason="r" * 5000, champion=first_model()
    )
    assert [p["Name"] for p in params] == [
        "InputManifestUri",
        "ManifestSha256",
        "DataVersion",
        "TriggerReason",
        "ChampionMetric",
    ]
    assert params[3]["Value"] == "r" * 1024
    assert params[4]["Value"] == "0.0"


def test_pipeline_parameters_carry_the_champion_and_its_baseline() -> None:
    champion = core.Champion(
        "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-training-models/3",
        {"ChampionMetric": "0.9312", "BaselineConstraintsUri": "s3://b/artifacts/p/e/constraints.json"},
    )
    params = core.pipeline_parameters(
        manifest_uri="s3://b/m.json", digest="a" * 64, version="v", reason="r", champion=champion
    )
    assert {p["Name"]: p["Value"] for p in params}["ChampionMetric"] == "0.9312"
    assert params[-1] == {"Name": "BaselineConstraintsUri", "Value": "s3://b/artifacts/p/e/constraints.json"}


def test_champion_round_trips_through_json_and_rejects_junk() -> None:
    champion = core.Champion("arn:aws:sagemaker:eu-west-1:1:model-package/g/1", {"ChampionMetric": "0.5"})
    assert core.Champion.from_json(champion.to_json()) == champion
    assert core.Champion.from_json(first_model().to_json()) == first_model()
    for junk in ("", "[]", '{"parameters": {"ChampionMetric": 1}}', '{"model_package_arn": 3, "parameters": {}}'):
        assert core.Champion.from_json(junk) is None


def test_start_request_names_the_pipeline_version_reason_champion_and_token() -> None:
    request = core.start_request(
        settings(),
        dataset=DATASET,
        digest="0123456789abcdef" * 4,
        manifest_uri=f"s3://{BUCKET}/manifests/{DATASET}/20250304T101530Z-0123456789ab.json",
        created_at="2025-03-04T10:15:30Z",
        reason="new objects; quiet for 15 min",
        champion=first_model(),
        key=f"{PIPELINE}|{'0123456789abcdef' * 4}",
    )
    assert request["PipelineName"] == PIPELINE
    assert request["PipelineExecutionDisplayName"] == "retrain-churn-01234567"
    assert request["PipelineExecutionDescription"] == "new objects; quiet for 15 min"
    assert request["ClientRequestToken"] == core.client_request_token(f"{PIPELINE}|{'0123456789abcdef' * 4}")
    assert {p["Name"]: p["Value"] for p in request["PipelineParameters"]} == {
        "InputManifestUri": f"s3://{BUCKET}/manifests/{DATASET}/20250304T101530Z-0123456789ab.json",
        "ManifestSha256": "0123456789abcdef" * 4,
        "DataVersion": "20250304T101530Z-0123456789ab",
        "TriggerReason": "new objects; quiet for 15 min",
        "ChampionMetric": "0.0",
    }


def test_execution_display_name_matches_the_sagemaker_pattern() -> None:
    name = core.execution_display_name("churn_v2.final", "0123456789abcdef")
    assert name == "retrain-churn-v2-final-01234567"
    assert len(core.execution_display_name("x" * 200, "0" * 64)) <= 82


def test_data_version_is_sortable_and_names_the_digest() -> None:
    assert core.data_version("2025-03-04T10:15:30Z", "0123456789abcdef") == "20250304T101530Z-0123456789ab"


def test_trigger_round_trips_through_json_and_rejects_junk() -> None:
    original = trigger(TriggerKind.DRIFT, key="alarm:x@1")
    assert Trigger.from_json(original.to_json()) == original
    assert Trigger.from_json({"kind": "nope"}) is None
    assert Trigger.from_json({"kind": "data", "reason": 1, "id": "x", "at": "2025-01-01T00:00:00+00:00"}) is None


# --- properties -----------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
_odd_key = st.lists(
    st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from(["+", "%", " ", "/", "%2F", "_SUCCESS"]),
    max_size=20,
).map("".join)
# For each shape, the detail fields without which it is not a valid event of its kind.
_REQUIRED = {
    "s3_object_created.json": ["bucket", "object"],
    "pipeline_execution_status_change.json": ["pipelineExecutionArn", "currentPipelineExecutionStatus"],
    "cloudwatch_alarm_state_change.json": ["alarmName", "state"],
    "scheduled_retrain.json": ["dataset"],
    "manual_retrain.json": ["dataset"],
    "retrain_check.json": ["pipeline", "dataset", "due"],
}
_not_text = _json.filter(lambda v: not isinstance(v, dict | str))


@st.composite
def odd_events(draw: st.DrawFn) -> object:
    """Events that must never start a run: junk, broken shapes, other buckets, odd keys, unknown types."""
    kind = draw(st.sampled_from(["json", "drop-field", "retype-field", "other-bucket", "odd-key", "unknown", "alarm"]))
    if kind == "json":
        return draw(_json)
    if kind == "unknown":
        event = load_event(draw(st.sampled_from([*_REQUIRED, "model_monitor_violation.json"])))
        event["detail-type"] = draw(st.text(max_size=30).filter(lambda s: s != event["detail-type"]))
        return event
    if kind == "other-bucket":
        bucket = draw(st.text(min_size=1, max_size=20).filter(lambda b: b != BUCKET))
        return object_created(draw(_odd_key), bucket=bucket)
    if kind == "odd-key":
        key = draw(_odd_key)
        return object_created(key if not key.startswith("datasets/") else "x" + key, encode=draw(st.booleans()))
    if kind == "alarm":
        return alarm(draw(st.sampled_from(["OK", "INSUFFICIENT_DATA", "alarm"])))
    shape = draw(st.sampled_from([*_REQUIRED, "model_monitor_violation.json"]))
    event = load_event(shape)
    detail = event["detail"]
    if shape == "model_monitor_violation.json":  # every field is optional; only a bad dataset breaks it
        detail["dataset"] = draw(st.sampled_from([7, ["churn"], "unknown-dataset"]))
        return event
    field_name = draw(st.sampled_from(_REQUIRED[shape]))
    if kind == "drop-field":
        del detail[field_name]
    else:
        detail[field_name] = draw(_not_text)
    return event


_PARSED_TYPES = (
    events.Ignored,
    events.Invalid,
    ObjectCreated,
    ScheduledRetrain,
    ManualRetrain,
    AlarmStateChange,
    MonitorViolation,
    PipelineStatusChange,
    RetrainCheck,
)


@pytest.mark.slow  # hundreds of generated examples
@hypothesis_settings(max_examples=400, deadline=None)
@given(st.text(max_size=200) | _json.map(json.dumps))
def test_parse_body_never_raises(body: str) -> None:
    assert isinstance(events.parse_body(body), _PARSED_TYPES)


@pytest.mark.slow  # hundreds of generated examples
@hypothesis_settings(max_examples=400, deadline=None)
@given(st.lists(odd_events(), min_size=1, max_size=12))
def test_odd_events_never_raise_and_never_become_a_candidate(bodies: list[object]) -> None:
    config = settings(mode=Mode.COMMIT_MARKER)
    parsed = [(f"m-{i}", events.parse_body(json.dumps(body))) for i, body in enumerate(bodies)]
    result = core.plan_batch(parsed, config, T0)
    for batch in result.datasets.values():
        decision = core.decide(batch, DatasetState(), PipelineState(), config, T0)
        assert not isinstance(decision, Candidate), (batch, decision)
    assert len(result.ignored) + len(result.invalid) + sum(len(b.record_ids) for b in result.datasets.values()) + len(
        result.finished
    ) == len(bodies)


@pytest.mark.slow  # hundreds of generated examples
@hypothesis_settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_odd_key, st.integers(min_value=0, max_value=10**12)), max_size=30))
def test_object_events_with_odd_keys_route_without_raising(objects: list[tuple[str, int]]) -> None:
    bodies = [object_created(f"datasets/churn/{key}", size=size) for key, size in objects]
    result = plan(*bodies, config=settings(key_suffixes=(".csv",)))
    routed = result.datasets.get(DATASET, DatasetBatch(DATASET))
    assert not result.invalid
    assert routed.objects + len(result.ignored) == len(objects)
    # quote_plus/unquote_plus round-trips every key, so exactly the .csv keys are kept
    assert routed.bytes == sum(size for key, size in objects if key.endswith(".csv"))
