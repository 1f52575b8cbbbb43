"""Teardown never loses data: prod retains every stateful resource, and no construct default flips it."""

from __future__ import annotations

import aws_cdk as cdk
import pytest

from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.retrain_trigger import RetrainTrigger
from cdk_mlops.constructs.training_pipeline import TrainingPipeline

STATEFUL = {
    "AWS::S3::Bucket",
    "AWS::DynamoDB::Table",
    "AWS::SageMaker::ModelPackageGroup",
    "AWS::KMS::Key",
    "AWS::Logs::LogGroup",
    "AWS::SQS::Queue",
}


def stateful_resources(template: dict[str, object]) -> dict[str, dict[str, object]]:
    resources: dict[str, dict[str, object]] = template["Resources"]  # type: ignore[assignment]
    return {k: r for k, r in resources.items() if r["Type"] in STATEFUL}


def test_deleting_prod_stacks_would_retain_every_stateful_resource(platform):
    prod = [s for s in platform.stacks if s.stage == "Prod"]
    assert prod
    for s in prod:
        stateful = stateful_resources(s.template)
        assert stateful, s.path
        for logical_id, resource in stateful.items():
            assert resource.get("DeletionPolicy") == "Retain", (s.path, logical_id)
            assert resource.get("UpdateReplacePolicy") == "Retain", (s.path, logical_id)
        assert s.stack.termination_protection is True


def test_dev_keeps_data_but_deletes_what_holds_none(platform):
    dev = {s.stack.node.id: s for s in platform.stacks if s.stage == "Dev"}
    data = stateful_resources(dev["Data"].template)
    assert {r.get("DeletionPolicy") for r in data.values()} == {"Retain"}
    trigger_state = [
        r for r in stateful_resources(dev["Training"].template).values() if r["Type"] == "AWS::DynamoDB::Table"
    ]
    assert [r.get("DeletionPolicy") for r in trigger_state] == ["Delete"]


@pytest.fixture(scope="module")
def defaults_template() -> dict[str, object]:
    app = cdk.App()
    stack = cdk.Stack(app, "Defaults")
    store = VersionedDataStore(stack, "Data")
    training = TrainingPipeline(stack, "Training", data_store=store, dataset="churn", pipeline_name="train")
    RetrainTrigger(stack, "Retrain", data_store=store, datasets=["churn"], pipeline_name=training.pipeline_name)
    template: dict[str, object] = app.synth().get_stack_by_name("Defaults").template
    return template


def test_no_construct_default_deletes_state(defaults_template):
    for logical_id, resource in stateful_resources(defaults_template).items():
        assert resource.get("DeletionPolicy") == "Retain", logical_id
