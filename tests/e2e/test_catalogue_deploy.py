"""End to end: Dev with a 3-model catalogue, deployed with the pinned CDK CLI to the local AWS.

One module-scoped deployment (:func:`cdk_mlops.local.deploy.deploy_stage`) of Dev with three
catalogue models: ``fraud`` on ``transactions``, and ``upsell`` and ``churn-v2`` on ``customers``.
The tests read what the local AWS holds: the model stacks, one route parameter per model, one
pipeline and model package group per model, and one fleet trigger function. Then objects land
under both datasets. S3 sends their events to EventBridge, whose deployed ``DataChanged`` rule
puts them on the fleet trigger's queue. The deployed function's handler drains the queue in
process, as the local AWS runs every function (:class:`cdk_mlops.local.runtime.LambdaContainer`).
Each model must start exactly one run on its own dataset, and the models' runs must be in flight
at once, each holding its own lock. The destroy test comes last.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from cdk_mlops.local.deploy import destroy_stage
from cdk_mlops.local.runtime import (
    Backends,
    EventSourceMapping,
    FunctionConfiguration,
    LambdaContainer,
    QueuePoller,
)
from tests.e2e.conftest import REPO_ROOT, Deployment, deploy_dev

pytestmark = pytest.mark.e2e

PREFIX = "cdk-mlops-dev-model-"
CATALOGUE = {
    "models": {
        "fraud": {"dataset": "transactions", "quiet_period_minutes": 0},
        "upsell": {"dataset": "customers", "quiet_period_minutes": 0},
        "churn-v2": {"dataset": "customers", "quiet_period_minutes": 0},
    }
}
MODELS = {f"{PREFIX}{name}": settings["dataset"] for name, settings in CATALOGUE["models"].items()}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from deploy_dev(tmp_path_factory.mktemp("cdk.out"), CATALOGUE)


@pytest.fixture
def deployed(deployment: Deployment) -> Deployment:
    assert not deployment.destroyed, "these tests read the deployed state; they must run before the destroy test"
    return deployment


@dataclass(frozen=True)
class Fleet:
    function: FunctionConfiguration
    queue_url: str
    mapping: EventSourceMapping


def _fleet(deployment: Deployment) -> Fleet:
    client = deployment.aws.client("lambda")
    for stack, logical_id, _ in deployment.resources("AWS::Lambda::Function"):
        name = deployment.physical_id(stack, logical_id)
        if client.get_function_configuration(FunctionName=name)["Handler"].endswith(".fleet.handler"):
            function = FunctionConfiguration.read(deployment.aws, name)
            mapping = EventSourceMapping.of_function(deployment.aws, name)
            queue = deployment.aws.client("sqs").get_queue_url(QueueName=mapping.queue_arn.rsplit(":", 1)[-1])
            return Fleet(function, queue["QueueUrl"], mapping)
    raise AssertionError("no function runs the fleet handler")


def test_each_model_has_its_stack_pipeline_group_and_route(deployed: Deployment) -> None:
    stacks = {stack.name for stack in deployed.templates}
    assert {s for s in stacks if "-Models" in s}, stacks
    sagemaker, ssm = deployed.aws.client("sagemaker"), deployed.aws.client("ssm")
    pipelines = {p["PipelineName"] for p in sagemaker.list_pipelines()["PipelineSummaries"]}
    assert set(MODELS) <= pipelines
    groups = {g["ModelPackageGroupName"] for g in sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]}
    assert {f"{name}-models" for name in MODELS} <= groups
    path = _fleet(deployed).function.environment["ROUTES_PARAMETER_PATH"]
    routes = ssm.get_parameters_by_path(Path=path)["Parameters"]
    assert sorted(p["Name"].rsplit("/", 1)[-1] for p in routes) == sorted(MODELS)


def test_two_datasets_land_and_each_model_starts_one_run_at_the_same_time(deployed: Deployment) -> None:
    aws, fleet = deployed.aws, _fleet(deployed)
    bucket = deployed.the_one("AWS::S3::Bucket", "StoreBucket", stack_suffix="-Data")
    handler = importlib.import_module(fleet.function.handler.rsplit(".", 1)[0])
    container, poller = LambdaContainer(fleet.function, aws=aws), QueuePoller(aws, fleet.queue_url, fleet.mapping)
    s3 = aws.client("s3")
    with Backends.of(aws).moto_pollers_suspended(fleet.queue_url):
        for dataset in ("transactions", "customers"):
            for part in range(3):
                s3.put_object(Bucket=bucket, Key=f"datasets/{dataset}/2026-12-05/part-{part}.csv", Body=b"a,b\n1,2\n")
        batches = _drain(handler, container, poller)

    # THEN the events reached the fleet's queue through the deployed rule, and each model started one run
    assert batches, "no event reached the fleet trigger's queue"
    sagemaker = aws.client("sagemaker")
    runs = {
        name: sagemaker.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"] for name in MODELS
    }
    assert {name: len(r) for name, r in runs.items()} == dict.fromkeys(MODELS, 1)
    for name, [run] in runs.items():
        parameters = sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=run["PipelineExecutionArn"])[
            "PipelineParameters"
        ]
        uri = next(p["Value"] for p in parameters if p["Name"] == "InputManifestUri")
        assert f"/manifests/{MODELS[name]}/" in uri, (name, uri)
    # AND every model holds its own lock at once: no run waited for another model's
    table = fleet.function.environment["STATE_TABLE"]
    items = aws.client("dynamodb").scan(TableName=table)["Items"]
    locks = {i["pk"]["S"] for i in items if i["pk"]["S"].startswith("lock#")}
    assert locks == {f"lock#{name}" for name in MODELS}


def _drain(handler: Any, container: LambdaContainer, poller: QueuePoller) -> int:
    """Deliver the queue's visible messages to the handler until none is left; the number of batches."""
    batches = 0
    for _ in range(10):
        records = poller.receive()
        if not records:
            break
        with container.invocation() as context:
            response = handler.handler({"Records": records}, context)
        failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
        assert failed == [], failed
        poller.delete(records)
        batches += 1
    return batches


# --- after destroy (keep this last) -----------------------------------------------------------------------


def test_destroy_removes_the_routes_and_the_model_stacks(deployment: Deployment) -> None:
    path = _fleet(deployment).function.environment["ROUTES_PARAMETER_PATH"]
    destroy_stage(deployment.aws, directory=REPO_ROOT, output=deployment.output, overrides=CATALOGUE)
    deployment.destroyed = True
    assert deployment.aws.client("ssm").get_parameters_by_path(Path=path)["Parameters"] == []
    live = deployment.aws.client("cloudformation").list_stacks(
        StackStatusFilter=["CREATE_COMPLETE", "UPDATE_COMPLETE", "ROLLBACK_COMPLETE"]
    )["StackSummaries"]
    assert [s["StackName"] for s in live if "-Models" in s["StackName"]] == []
