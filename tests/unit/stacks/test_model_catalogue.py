"""The reference platform's model catalogue: model stacks, one fleet trigger, stable stacks when a model is added."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest

from cdk_mlops.catalogue import model_stack_index
from cdk_mlops.config import load_environments
from cdk_mlops.lambdas.retrain_trigger.events import ObjectCreated
from cdk_mlops.lambdas.retrain_trigger.routes import RouteTable
from cdk_mlops.stacks.stage import MlopsPlatformStage, build_platform
from tests.quality import cfn_lint_findings

REGION = "eu-west-1"
MODELS: dict[str, dict[str, Any]] = {
    "fraud": {"dataset": "transactions"},
    "upsell": {"dataset": "customers", "cooldown_hours": 6, "max_runs_per_day": 1},
    "churn-v2": {"dataset": "customers"},
}


@dataclass(frozen=True)
class Synthesized:
    stage: MlopsPlatformStage
    templates: dict[str, dict[str, Any]]

    def resources(self, stack_id: str) -> dict[str, Any]:
        return dict(self.templates[f"Dev/{stack_id}"]["Resources"])


def _synth(models: dict[str, dict[str, Any]]) -> Synthesized:
    (config,) = load_environments({"dev": {"account": "111111111111", "region": REGION, "models": models}})
    app = cdk.App()
    (stage,) = build_platform(app, [config])
    assembly = app.synth().get_nested_assembly(stage.artifact_id)
    templates = {
        stack.node.path: assembly.get_stack_artifact(stack.artifact_id).template
        for stack in stage.node.children
        if isinstance(stack, cdk.Stack)
    }
    return Synthesized(stage, templates)


@pytest.fixture(scope="module")
def three() -> Synthesized:
    return _synth(MODELS)


@pytest.fixture(scope="module")
def four() -> Synthesized:
    return _synth({**MODELS, "next-best-offer": {"dataset": "customers"}})


def test_each_model_is_five_resources_in_the_stack_its_name_hashes_to(three: Synthesized) -> None:
    stacks = {name: f"Models{model_stack_index(name, 4):02d}" for name in MODELS}
    assert {stacks[n] for n in MODELS} == {s.node.id for s in three.stage.models.values()}
    for stack_id in set(stacks.values()):
        held = [n for n in MODELS if stacks[n] == stack_id]
        types = Counter(r["Type"] for r in three.resources(stack_id).values())
        assert types == Counter(
            {
                t: len(held)
                for t in (
                    "AWS::SageMaker::Pipeline",
                    "AWS::SageMaker::ModelPackageGroup",
                    "AWS::IAM::Role",
                    "AWS::IAM::Policy",
                    "AWS::SSM::Parameter",
                )
            }
        )
    # deployed after Training (the fleet trigger and the topic), before Serving
    ids = MlopsPlatformStage.stack_ids(three.stage.config)
    assert ids[: ids.index("Training") + 1] == ("Data", "Training")
    assert set(ids[ids.index("Training") + 1 :]) == set(stacks.values())


def test_one_fleet_trigger_routes_each_models_data_to_its_own_pipeline_only(three: Synthesized) -> None:
    parameters = [
        (r["Properties"]["Name"], r["Properties"]["Value"])
        for t in three.templates.values()
        for r in t["Resources"].values()
        if r["Type"] == "AWS::SSM::Parameter"
    ]
    table = RouteTable.read(parameters, {"DATA_BUCKET": "b", "STATE_TABLE": "t", "QUEUE_URL": "https://q"})
    assert table.broken == {}

    def routed(dataset: str) -> list[str]:
        found = table.pipelines_for(ObjectCreated("e", None, "b", f"datasets/{dataset}/x.csv", 1, None), "b")
        assert isinstance(found, list), found
        return sorted(found)

    assert routed("transactions") == ["cdk-mlops-dev-model-fraud"]
    assert routed("customers") == ["cdk-mlops-dev-model-churn-v2", "cdk-mlops-dev-model-upsell"]
    upsell = table.routes["cdk-mlops-dev-model-upsell"].settings
    assert (upsell.cooldown.total_seconds(), upsell.max_runs_per_day) == (6 * 3600, 1)
    functions = [r for r in three.resources("Training").values() if r["Type"] == "AWS::Lambda::Function"]
    fleet = [f for f in functions if f["Properties"]["Handler"].endswith("fleet.handler")]
    assert len(fleet) == 1
    assert (
        fleet[0]["Properties"]["Environment"]["Variables"]["ROUTES_PARAMETER_PATH"]
        == (parameters[0][0].rsplit("/", 1)[0])
    )


def test_the_catalogues_datasets_are_declared_in_the_store(three: Synthesized) -> None:
    assert {"churn", "transactions", "customers"} <= set(three.stage.data.store.datasets)


def test_adding_a_model_moves_and_changes_no_other(three: Synthesized, four: Synthesized) -> None:
    added = f"Models{model_stack_index('next-best-offer', 4):02d}"
    for stack_id in {s.node.id for s in three.stage.models.values()}:
        before, after = three.resources(stack_id), four.resources(stack_id)
        # every resource of the three models is still there, the same to the byte
        assert {k: json.dumps(v, sort_keys=True) for k, v in before.items()} == {
            k: json.dumps(after[k], sort_keys=True) for k in before
        }
        assert len(after) == len(before) + (5 if stack_id == added else 0)
    assert three.resources("Training") == four.resources("Training")


def test_the_model_stacks_are_lint_clean(three: Synthesized) -> None:
    for stack in three.stage.models.values():
        assert cfn_lint_findings(three.templates[stack.node.path], region=REGION) == []


def test_without_a_catalogue_there_is_no_fleet(three: Synthesized) -> None:
    (config,) = load_environments({"dev": {}})
    assert config.models == ()
    assert not any(s.startswith("Models") for s in MlopsPlatformStage.stack_ids(config))
    assert three.stage.training.fleet is not None
