"""End to end: ``make demo``'s fleet loop, the catalogue's two models at once, on the package's deployment.

The package's deployment is Dev with :data:`~cdk_mlops.local.fleet_loop.DEMO_CATALOGUE`, made by
``make demo``'s own deploy step (tests/e2e/dev/conftest.py). After the closed loop's run, this
module runs the demo's fleet loop (:meth:`cdk_mlops.local.loop.Demo.fleet_loop`) on the
catalogue's first two models. The fleet loop checks each step as it goes (a :class:`LoopError`
fails the fixture); these tests read its report: every model's runs and lock after each step,
and the handler's decisions, which name the pipeline they were taken for.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest

from cdk_mlops.local.fleet_loop import DEMO_CATALOGUE, FleetReport, FleetStep, render_fleet_summary
from cdk_mlops.local.loop import Demo
from tests.e2e.conftest import REPO_ROOT
from tests.e2e.dev.conftest import Lines, Run
from tests.e2e.dev.test_closed_loop import sample_pattern

pytestmark = pytest.mark.e2e

PREFIX = "cdk-mlops-dev-model-"
MODELS = [f"{PREFIX}{name}" for name in DEMO_CATALOGUE["models"]]


@dataclass(frozen=True)
class Ran:
    demo: Demo
    loop: Run
    fleet: FleetReport
    lines: Lines


@pytest.fixture(scope="module")
def ran(run: Run, demo: Demo, demo_lines: Lines) -> Ran:
    """The fleet loop, after the closed loop (whose objects its step f0 drains), as ``make demo`` runs it."""
    before = len(demo_lines)
    report = demo.fleet_loop()
    return Ran(demo, run, report, demo_lines[before:])


def _runs(step: FleetStep, model: str) -> list[str]:
    return [status for _, status in step.models[model].runs]


def test_the_demo_deploys_dev_with_the_catalogues_model_stacks(ran: Ran) -> None:
    names = {state.name for state in ran.demo.states}
    assert {"Dev-Data", "Dev-Training"} <= names
    assert any(name.startswith("Dev-Models") for name in names), names
    assert [m.pipeline_name for m in (ran.fleet.first, ran.fleet.second, ran.fleet.idle)] == MODELS


def test_both_models_start_one_run_each_and_run_at_the_same_time(ran: Ran) -> None:
    start = ran.fleet.step("start")
    a, b, idle = MODELS
    assert _runs(start, a) == ["Executing"]
    assert _runs(start, b) == ["Executing"]
    # THEN each lock is held by that model's own run, both at once
    assert start.models[a].lock == start.models[a].runs[0][0]
    assert start.models[b].lock == start.models[b].runs[0][0]
    assert _runs(start, idle) == []
    assert start.models[idle].lock is None
    started = [d.pipeline for delivery in start.deliveries for d in delivery.decided("started")]
    assert sorted(p or "" for p in started) == [a, b]


def test_each_run_trains_on_a_manifest_of_its_own_models_dataset(ran: Ran) -> None:
    sagemaker = ran.loop.client("sagemaker")
    datasets = {f"{PREFIX}{name}": settings["dataset"] for name, settings in DEMO_CATALOGUE["models"].items()}
    counts = {}
    for name, dataset in datasets.items():
        runs = sagemaker.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]
        counts[name] = len(runs)
        for summary in runs:
            parameters = sagemaker.list_pipeline_parameters_for_execution(
                PipelineExecutionArn=summary["PipelineExecutionArn"]
            )["PipelineParameters"]
            uri = next(p["Value"] for p in parameters if p["Name"] == "InputManifestUri")
            assert f"/manifests/{dataset}/" in uri, (name, uri)
    a, b, idle = MODELS
    assert counts == {a: 2, b: 1, idle: 0}


def test_the_closed_loops_objects_reach_the_fleet_and_start_nothing(ran: Ran) -> None:
    earlier = ran.fleet.step("earlier")
    decisions = Counter(d.decision for delivery in earlier.deliveries for d in delivery.decisions)
    assert sum(len(d.records) for d in earlier.deliveries) == 6, "the closed loop's two versions: 4 + 2 objects"
    assert set(decisions) == {"ignored"}


def test_a_redelivered_batch_starts_nothing(ran: Ran) -> None:
    start, again = ran.fleet.step("start"), ran.fleet.step("redeliver")
    assert again.deliveries
    assert all(d.redelivery for d in again.deliveries)
    assert {name: state.runs for name, state in again.models.items()} == {
        name: state.runs for name, state in start.models.items()
    }


def test_data_for_one_model_waits_behind_its_lock_and_leaves_the_other_alone(ran: Ran) -> None:
    before, pending = ran.fleet.step("redeliver"), ran.fleet.step("pending")
    a, b, _ = MODELS
    assert list(pending.uploads) == [ran.fleet.first.dataset]
    assert pending.models[a].waiting
    assert _runs(pending, a) == ["Executing"]
    assert any(d.pipeline == a for delivery in pending.deliveries for d in delivery.decided("pending"))
    assert pending.models[b] == before.models[b]


def test_the_end_of_one_run_starts_its_pending_version_and_not_the_others(ran: Ran) -> None:
    before, finished = ran.fleet.step("pending"), ran.fleet.step("finish-first")
    a, b, _ = MODELS
    assert _runs(finished, a) == ["Succeeded", "Executing"]
    assert finished.models[a].lock == finished.models[a].runs[1][0]
    assert finished.models[b] == before.models[b], "the other model's run and lock are untouched"
    started = [d.pipeline for delivery in finished.deliveries for d in delivery.decided("started")]
    assert started == [a]


def test_the_second_model_releases_its_lock_and_never_runs_twice(ran: Ran) -> None:
    last = ran.fleet.step("finish-second")
    a, b, idle = MODELS
    assert _runs(last, b) == ["Succeeded"]
    assert last.models[b].lock is None
    assert len(last.models[a].runs) == 2
    assert last.models[idle].runs == ()
    assert last.models[idle].lock is None
    every = [d for step in ran.fleet.steps for delivery in step.deliveries for d in delivery.decided("started")]
    assert Counter(d.pipeline for d in every) == {a: 2, b: 1}
    assert len({d.execution_arn for d in every}) == 3


def test_the_summary_counts_the_fleets_runs(ran: Ran) -> None:
    rows = dict(render_fleet_summary(ran.fleet))
    a, b, idle = MODELS
    assert rows["fleet runs"].startswith(f"{a} 2; {b} 1; {idle} 0")


def test_the_closed_loop_ran_first(ran: Ran) -> None:
    summaries = ran.loop.report.finished.executions
    assert [s.status for s in summaries] == ["Succeeded", "Executing"]


def test_the_readme_sample_of_the_fleet_loop_is_what_the_demo_prints(ran: Ran) -> None:
    printed = [f"[loop] {step:<11} {text}" for step, text in ran.lines]
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("### Two models at once: the fleet loop", 1)[1]
    sample = section.split("```\n", 2)[1]
    position = 0
    for line in (line for line in sample.splitlines() if line.strip()):
        pattern = sample_pattern(line)
        found = next((i for i in range(position, len(printed)) if pattern.match(printed[i].strip())), None)
        assert found is not None, f"README sample line not printed (after line {position}): {line}"
        position = found + 1
