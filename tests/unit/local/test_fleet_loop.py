"""The fleet loop's pure parts: decisions by pipeline, its output, and where it refuses to run.

``tests/e2e/dev/test_fleet_loop.py`` runs the loop itself against a deployed catalogue.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from cdk_mlops.local.fleet_loop import (
    DEMO_CATALOGUE,
    FleetModel,
    FleetReport,
    FleetStep,
    ModelState,
    discover_fleet,
    render_fleet_summary,
    render_step,
)
from cdk_mlops.local.loop import Delivery, HandlerDecision, LoopError, parse_handler_log, render_delivery
from cdk_mlops.local.server import local_aws

A, B, C = "fleet-model-a", "fleet-model-b", "fleet-model-c"
RUN_A = f"arn:aws:sagemaker:us-east-1:123456789012:pipeline/{A}/execution/aaaa1111"
RUN_B = f"arn:aws:sagemaker:us-east-1:123456789012:pipeline/{B}/execution/bbbb2222"


def _delivery(*decisions: HandlerDecision) -> Delivery:
    return Delivery(timedelta(minutes=15), ({"messageId": "1"}, {"messageId": "2"}), ("Retrain Check",) * 2, decisions)


def test_the_fleet_handlers_log_names_the_pipeline_of_each_decision():
    lines = [
        {"level": "INFO", "decision": "started", "reason": "new objects", "execution_arn": RUN_A, "pipeline": A},
        {"level": "INFO", "decision": "pending", "reason": "pipeline busy", "pipeline": B},
    ]
    decisions, errors = parse_handler_log("\n".join(map(json.dumps, lines)))
    assert [(d.decision, d.pipeline) for d in decisions] == [("started", A), ("pending", B)]
    assert errors == []


def test_a_delivery_names_the_pipelines_only_when_asked():
    delivery = _delivery(
        HandlerDecision("started", "new objects", RUN_A, pipeline=A),
        HandlerDecision("started", "new objects", RUN_B, pipeline=B),
    )
    _, single = render_delivery(delivery)
    _, fleet = render_delivery(delivery, by_pipeline=True)
    assert A not in single, "the closed loop's lines (and the README's sample) stay as they were"
    assert B not in single
    assert f"{A} started: new objects; {B} started: new objects" in fleet


def _report() -> FleetReport:
    models = {
        A: ModelState(((RUN_A, "Executing"),), RUN_A, waiting=True),
        B: ModelState(((RUN_B, "Succeeded"),), None, waiting=False),
        C: ModelState((), None, waiting=False),
    }
    step = FleetStep(
        "start",
        "S3 → DataChanged rule → fleet queue → fleet handler",
        {},
        (_delivery(HandlerDecision("started", "new objects", RUN_A, pipeline=A)),),
        models,
        timedelta(minutes=15),
    )
    return FleetReport(FleetModel(A, ("a",)), FleetModel(B, ("b",)), FleetModel(C, ("c",)), (step,))


def test_a_step_prints_every_models_runs_lock_and_waiting_data():
    lines = render_step(_report().steps[0])
    assert lines[0] == ("f2 start", "S3 → DataChanged rule → fleet queue → fleet handler")
    text = [detail for _, detail in lines]
    assert f"  {A}  execution/aaaa1111 Executing; lock execution/aaaa1111; new objects wait" in text
    assert f"  {B}  execution/bbbb2222 Succeeded; lock free" in text
    assert f"  {C}  no run; lock free" in text
    assert any(f"{A} started: new objects" in line for line in text)


def test_the_summary_counts_runs_per_model_and_decisions():
    rows = dict(render_fleet_summary(_report()))
    assert rows["fleet runs"].startswith(f"{A} 1; {B} 1; {C} 0")
    assert rows["fleet invocations"] == "1; decisions: started 1"


def test_the_demo_catalogue_has_three_models_each_on_its_own_dataset():
    datasets = [model["dataset"] for model in DEMO_CATALOGUE["models"].values()]
    assert len(datasets) == 3
    assert len(set(datasets)) == 3


@pytest.mark.aws
def test_without_a_catalogue_the_fleet_loop_names_the_fix():
    with local_aws() as aws, pytest.raises(LoopError, match=r"no function with handler .*fleet\.handler.*catalogue"):
        discover_fleet(aws)
