"""End to end: the demo's three-model catalogue as the package's deployment of Dev provisions it.

The package's deployment (tests/e2e/dev/conftest.py) is Dev with
:data:`~cdk_mlops.local.fleet_loop.DEMO_CATALOGUE`: ``screening-a``, ``-b`` and ``-c``, each on a
dataset of its own. The tests read what the local AWS holds: the model stacks, one pipeline and
model package group per model, one route parameter per model and one fleet trigger function.
``test_fleet_loop.py`` lands data and starts the models' runs; the destroy tests come last and
read what the destroy left. (Two models on one dataset are the handler tests' case:
``tests/handlers/retrain_trigger/test_fleet.py``.)
"""

from __future__ import annotations

import pytest

from cdk_mlops.local.fleet_loop import DEMO_CATALOGUE, FleetPlatform, discover_fleet
from tests.e2e.conftest import Deployment

pytestmark = pytest.mark.e2e

PREFIX = "cdk-mlops-dev-model-"
MODELS = {f"{PREFIX}{name}": settings["dataset"] for name, settings in DEMO_CATALOGUE["models"].items()}


@pytest.fixture
def deployed(dev_stage: Deployment) -> Deployment:
    assert not dev_stage.destroyed, "these tests read the deployed state; they must run before the destroy tests"
    return dev_stage


# Package-scoped, so that it is read while the stage is deployed and kept for the destroy tests.
@pytest.fixture(scope="package")
def fleet(dev_stage: Deployment) -> FleetPlatform:
    """The deployed fleet trigger's function and routes, read before any destroy."""
    assert not dev_stage.destroyed, "the fleet trigger is read from the deployed stage"
    return discover_fleet(dev_stage.aws)


def test_each_model_has_its_stack_pipeline_group_and_route(deployed: Deployment, fleet: FleetPlatform) -> None:
    stacks = {stack.name for stack in deployed.templates}
    assert {s for s in stacks if "-Models" in s}, stacks
    sagemaker, ssm = deployed.aws.client("sagemaker"), deployed.aws.client("ssm")
    pipelines = {p["PipelineName"] for p in sagemaker.list_pipelines()["PipelineSummaries"]}
    assert set(MODELS) <= pipelines
    groups = {g["ModelPackageGroupName"] for g in sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]}
    assert {f"{name}-models" for name in MODELS} <= groups
    routes = ssm.get_parameters_by_path(Path=fleet.function.environment["ROUTES_PARAMETER_PATH"])["Parameters"]
    assert sorted(p["Name"].rsplit("/", 1)[-1] for p in routes) == sorted(MODELS)
    # AND the fleet handler reads each route as the model's pipeline watching its own dataset
    assert {model.pipeline_name: model.datasets for model in fleet.models} == {
        name: (dataset,) for name, dataset in MODELS.items()
    }


# --- after destroy (kept last: tests/e2e/dev/conftest.py) ------------------------------------------------


def test_destroy_removes_the_routes_and_the_model_stacks(fleet: FleetPlatform, dev_stage_destroyed: Deployment) -> None:
    ssm = dev_stage_destroyed.aws.client("ssm")
    assert ssm.get_parameters_by_path(Path=fleet.function.environment["ROUTES_PARAMETER_PATH"])["Parameters"] == []
    live = dev_stage_destroyed.aws.client("cloudformation").list_stacks(
        StackStatusFilter=["CREATE_COMPLETE", "UPDATE_COMPLETE", "ROLLBACK_COMPLETE"]
    )["StackSummaries"]
    assert [s["StackName"] for s in live if "-Models" in s["StackName"]] == []


def test_the_destroy_leaves_no_stack_of_the_stage(dev_stage_destroyed: Deployment) -> None:
    live = dev_stage_destroyed.aws.client("cloudformation").list_stacks(
        StackStatusFilter=["CREATE_COMPLETE", "UPDATE_COMPLETE", "ROLLBACK_COMPLETE"]
    )["StackSummaries"]
    assert [s["StackName"] for s in live if s["StackName"].startswith("Dev-")] == []
