"""The shared retrain trigger on moto: one function, queue and table, one run per data version of each pipeline."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from cdk_mlops.lambdas.retrain_trigger import core
from cdk_mlops.lambdas.retrain_trigger import fleet as fleet_module
from cdk_mlops.lambdas.retrain_trigger import handler as handler_module
from cdk_mlops.lambdas.retrain_trigger.routes import route_document
from tests.handlers.retrain_trigger.conftest import (
    REGION,
    sqs_event,
    sqs_record,
    status_change,
    template,
)
from tests.handlers.retrain_trigger.conftest import check as check_event
from tests.handlers.retrain_trigger.world import Aws, cheap_listing_copies, in_batches

PATH = "/cdk-mlops/test/retrain-routes"


@dataclass
class Fleet:
    """The moto world of ``aws`` with pipelines ``model-00``... served by the shared handler."""

    aws: Aws
    models: list[str]

    def __post_init__(self) -> None:
        import boto3

        self.ssm = boto3.client("ssm", region_name=REGION)

    def add(self, model: str, *datasets: str, schedules: tuple[str, ...] = (), alarms: tuple[str, ...] = ()) -> None:
        """A pipeline, its group and its route (its own dataset ``data-<n>`` unless named)."""
        definition = {
            "Version": "2020-12-01",
            "Parameters": [{"Name": n, "Type": "String"} for n in core.PIPELINE_PARAMETER_NAMES],
            "Steps": [],
        }
        self.aws.sm.create_model_package_group(ModelPackageGroupName=f"{model}-models")
        self.aws.sm.create_pipeline(
            PipelineName=model,
            RoleArn="arn:aws:iam::123456789012:role/sagemaker-pipeline",
            PipelineDefinition=json.dumps(definition),
            ClientRequestToken=f"create-{model}".ljust(32, "0"),
        )
        settings = {
            "PIPELINE_NAME": model,
            "DATASETS": json.dumps(list(datasets) or [f"data-{model.removeprefix('model-')}"]),
            "MODEL_PACKAGE_GROUP_NAME": f"{model}-models",
            "MODE": "QUIET_PERIOD",
            "QUIET_PERIOD_SECONDS": "60",
            "COOLDOWN_SECONDS": "0",
            "MAX_RUNS_PER_DAY": "0",
        }
        document = route_document(settings, monitoring_schedules=schedules, drift_alarms=alarms)
        self.ssm.put_parameter(Name=f"{PATH}/{model}", Value=json.dumps(document), Type="String")
        self.models.append(model)

    def invoke(self, records: list[dict[str, Any]]) -> list[str]:
        self.aws.monkeypatch.setattr(handler_module, "_now", lambda: self.aws.now)
        result = fleet_module.handler(sqs_event(records), self.aws.context)
        return [failure["itemIdentifier"] for failure in result["batchItemFailures"]]

    def deliver(self, *bodies: dict[str, Any] | str) -> list[str]:
        return self.invoke([sqs_record(body) for body in bodies])

    def deliver_checks(self) -> list[str]:
        checks, self.aws.sent_checks = self.aws.sent_checks, []
        assert checks, "no check was sent"
        self.aws.later(seconds=max(delay for _, delay in checks))
        return self.deliver(*(body for body, _ in checks))

    def runs(self) -> dict[str, list[str]]:
        """Executions by pipeline, for every pipeline of the fleet."""
        return {
            m: [
                s["PipelineExecutionArn"]
                for s in self.aws.sm.list_pipeline_executions(PipelineName=m)["PipelineExecutionSummaries"]
            ]
            for m in self.models
        }

    def put(self, dataset: str, n: int, name: str = "drop") -> list[dict[str, Any]]:
        return self.aws.put_many([f"datasets/{dataset}/{name}/part-{i:05d}.csv" for i in range(n)])


@pytest.fixture
def fleet(aws: Aws) -> Iterator[Fleet]:
    for name in ("PIPELINE_NAME", "DATASETS", "MODEL_PACKAGE_GROUP_NAME", "COOLDOWN_SECONDS", "MAX_RUNS_PER_DAY"):
        aws.monkeypatch.delenv(name)
    aws.env(ROUTES_PARAMETER_PATH=PATH)
    fleet_module.reset()
    yield Fleet(aws, [])
    fleet_module.reset()


@pytest.mark.slow
def test_a_burst_of_10000_events_over_50_models_starts_exactly_one_run_per_model(fleet: Fleet) -> None:
    cheap_listing_copies(fleet.aws.monkeypatch)
    # GIVEN 50 pipelines, each watching its own dataset
    for i in range(50):
        fleet.add(f"model-{i:02d}")
    # AND 200 new objects in each dataset, interleaved as the events arrive from S3
    drops = [fleet.put(f"data-{i:02d}", 200) for i in range(50)]
    records = [sqs_record(drop[j]) for j in range(200) for drop in drops]
    assert len(records) == 10_000

    # WHEN the burst arrives in 2,500-record batches and the checks come back when the datasets are quiet
    for batch in in_batches(records, 2500):
        assert fleet.invoke(batch) == []
        fleet.aws.later(seconds=1)
    assert all(runs == [] for runs in fleet.runs().values())
    while fleet.aws.sent_checks:
        assert fleet.deliver_checks() == []

    # THEN every model has exactly one run, on the manifest of its own 200 objects
    runs = fleet.runs()
    assert Counter(len(r) for r in runs.values()) == Counter({1: 50})
    for i, model in enumerate(fleet.models):
        manifest = fleet.aws.manifest(runs[model][0])
        assert {e.key.split("/")[1] for e in manifest.entries} == {f"data-{i:02d}"}
        assert len(manifest.entries) == 200
    # AND each start carries its own pipeline's name and token
    assert sorted(s["PipelineName"] for s in fleet.aws.starts) == fleet.models

    # WHEN SQS redelivers the whole burst
    for batch in in_batches(records, 2500):
        assert fleet.invoke(batch) == []
    while fleet.aws.sent_checks:
        assert fleet.deliver_checks() == []
    # THEN nothing more starts: each model's lock holds, and its version is started already
    assert fleet.runs() == runs


def test_one_models_running_execution_never_blocks_another(fleet: Fleet) -> None:
    # GIVEN models a and b, and a run of a that is still executing
    fleet.add("model-a")
    fleet.add("model-b")
    first = fleet.put("data-a", 3, "one")
    assert fleet.deliver(*first) == []
    fleet.aws.later(minutes=2)
    assert fleet.deliver_checks() == []
    [running] = fleet.runs()["model-a"]
    _set_status(fleet.aws, "model-a", running, "Executing")

    # WHEN new data lands for both, a minute later
    fleet.aws.later(minutes=1)
    assert fleet.deliver(*fleet.put("data-a", 2, "two"), *fleet.put("data-b", 2, "one")) == []
    fleet.aws.later(minutes=2)
    assert fleet.deliver_checks() == []

    # THEN b starts at once, and a waits for its own lock
    runs = fleet.runs()
    assert len(runs["model-b"]) == 1
    assert runs["model-a"] == [running]
    items = {i["pk"]["S"] for i in fleet.aws.ddb.scan(TableName="retrain-state")["Items"]}
    assert {"lock#model-a", "lock#model-b"} <= items

    # WHEN a's execution ends THEN a starts its pending version
    _set_status(fleet.aws, "model-a", running, "Succeeded")
    assert fleet.deliver(status_change(running, pipeline="model-a")) == []
    assert len(fleet.runs()["model-a"]) == 2
    assert len(fleet.runs()["model-b"]) == 1


def test_a_dataset_two_models_watch_starts_one_run_of_each(fleet: Fleet) -> None:
    fleet.add("model-a", "shared")
    fleet.add("model-b", "shared")
    fleet.add("model-c")
    assert fleet.deliver(*fleet.put("shared", 4)) == []
    fleet.aws.later(minutes=2)
    assert fleet.deliver_checks() == []
    runs = fleet.runs()
    assert (len(runs["model-a"]), len(runs["model-b"]), len(runs["model-c"])) == (1, 1, 0)
    digests = {fleet.aws.parameters(r[0])["ManifestSha256"] for r in (runs["model-a"], runs["model-b"])}
    assert len(digests) == 1  # the same data version, trained once by each


def _manual(dataset: str, pipeline: str | None = None) -> dict[str, Any]:
    event = template("manual_retrain.json")
    event["id"] = str(uuid.uuid4())
    event["detail"] = {"dataset": dataset, "reason": "test", **({"pipeline": pipeline} if pipeline else {})}
    return event


def test_manual_violation_and_alarm_events_reach_only_the_pipelines_their_route_names(fleet: Fleet) -> None:
    fleet.add("model-a", "shared", schedules=("a-data-quality",))
    fleet.add("model-b", "shared", alarms=("b-drift",))
    fleet.put("shared", 2)
    # a manual retrain that names a pipeline
    assert fleet.deliver(_manual("shared", "model-a")) == []
    assert [len(r) for r in fleet.runs().values()] == [1, 0]
    # a violation of a's schedule and an alarm of b: each its own pipeline
    violation = template("model_monitor_violation.json")
    violation["detail"]["monitoringScheduleName"] = "a-data-quality"
    alarm = template("cloudwatch_alarm_state_change.json")
    alarm["detail"]["alarmName"] = "b-drift"
    alarm["detail"]["state"]["value"] = "ALARM"
    unknown = template("model_monitor_violation.json")
    unknown["detail"]["monitoringScheduleName"] = "nobody-data-quality"
    unknown["id"] = str(uuid.uuid4())
    fleet.aws.later(minutes=10)
    assert fleet.deliver(violation, alarm, unknown) == []
    runs = fleet.runs()
    # a's data version is trained already (drift never retrains the same version twice); b's is new to b
    assert [len(r) for r in runs.values()] == [1, 1]
    # a check for a pipeline without a route, and an execution of another pipeline, are not for us
    # (once the routes are read again, at most every 30 s)
    fleet.aws.later(seconds=31)
    other = f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/other/execution/x"
    assert (
        fleet.deliver(check_event(0, pipeline="model-z", dataset="shared"), status_change(other, pipeline="other"))
        == []
    )
    assert fleet.runs() == runs


def test_a_poison_record_and_a_broken_route_hold_back_nothing_of_the_other_models(fleet: Fleet) -> None:
    fleet.add("model-a")
    fleet.add("model-b")
    # GIVEN a route written by hand that is not a route
    fleet.ssm.put_parameter(Name=f"{PATH}/model-x", Value='{"format": 1, "settings": {"NOPE": "1"}}', Type="String")
    poison = sqs_record("not json", message_id="poison")
    stray = sqs_record(fleet.put("data-x", 1)[0], message_id="stray")
    records = [poison, stray, *(sqs_record(e) for e in (*fleet.put("data-a", 2), *fleet.put("data-b", 2)))]

    # WHEN they arrive in one batch
    failed = fleet.invoke(records)

    # THEN the poison record and the record no route claims (it may be model-x's) are handed back
    assert sorted(failed) == ["poison", "stray"]
    # AND both models still start their runs
    fleet.aws.later(minutes=2)
    assert fleet.deliver_checks() == []
    assert [len(r) for r in fleet.runs().values()] == [1, 1]


def test_a_pipeline_routed_after_the_routes_were_read_gets_its_first_drop(fleet: Fleet) -> None:
    fleet.add("model-a")
    assert fleet.deliver(*fleet.put("data-a", 1)) == []  # reads the routes
    fleet.add("model-b")
    fleet.aws.later(seconds=31)
    # WHEN b's first object arrives before the cached routes expire
    assert fleet.deliver(*fleet.put("data-b", 1)) == []
    fleet.aws.later(minutes=2)
    while fleet.aws.sent_checks:
        assert fleet.deliver_checks() == []
    # THEN the record made the handler read the routes again, and b started
    assert [len(r) for r in fleet.runs().values()] == [1, 1]


def test_a_record_no_route_claims_is_deleted_once_the_routes_are_whole(fleet: Fleet) -> None:
    fleet.add("model-a")
    assert fleet.deliver(*fleet.put("nobody", 1)) == []
    assert fleet.runs() == {"model-a": []}


def test_a_record_unclaimed_moments_after_a_read_comes_back_and_reaches_a_model_deployed_meanwhile(
    fleet: Fleet,
) -> None:
    fleet.add("model-a")
    assert fleet.deliver(*fleet.put("data-a", 1)) == []  # reads the routes
    fleet.add("model-b")
    # WHEN b's first object, and one of a dataset nobody watches, arrive 10 s after the read
    fleet.aws.later(seconds=10)
    first = sqs_record(fleet.put("data-b", 1)[0], message_id="first-of-b")
    stray = sqs_record(fleet.put("nobody", 1)[0], message_id="stray")
    # THEN neither is deleted: the routes are too fresh to read again, and b may be new
    assert sorted(fleet.invoke([first, stray])) == ["first-of-b", "stray"]
    # WHEN SQS brings them back after the visibility timeout THEN b starts, and the stray record is deleted
    fleet.aws.later(minutes=15)
    assert fleet.invoke([first, stray]) == []
    fleet.aws.later(minutes=2)
    while fleet.aws.sent_checks:
        assert fleet.deliver_checks() == []
    assert [len(r) for r in fleet.runs().values()] == [1, 1]


def test_the_shared_variables_are_required(fleet: Fleet) -> None:
    fleet.aws.monkeypatch.delenv("STATE_TABLE")
    with pytest.raises(KeyError, match="STATE_TABLE"):
        fleet.deliver(*fleet.put("data-a", 1))


def _set_status(aws: Aws, pipeline: str, execution_arn: str, status: str) -> None:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.sagemaker.models import sagemaker_backends

    found = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].pipelines[pipeline]
    found.pipeline_executions[execution_arn].pipeline_execution_status = status
