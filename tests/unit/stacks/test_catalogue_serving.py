"""The catalogue chooses a serving mode per model: an endpoint of its own in its model stack, or the shared one."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest

from cdk_mlops.catalogue import (
    MONITOR_RESOURCES,
    SERVING_RESOURCES,
    ServingMode,
    model_stack_index,
    shared_endpoint_index,
)
from cdk_mlops.config import CONTEXT_KEY, EndpointKind, load_environments
from cdk_mlops.constructs.model_monitor import MonitoringType, MonitorSchedule
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.lambdas.retrain_trigger.events import MonitorViolation, parse_record
from cdk_mlops.lambdas.retrain_trigger.routes import RouteTable
from cdk_mlops.stacks.models_stack import model_stack_id
from cdk_mlops.stacks.shared_serving_stack import shared_endpoint_name
from cdk_mlops.stacks.stage import MlopsPlatformStage
from tests.conftest import load_event, synthesize_platform
from tests.contracts.event_patterns import matches
from tests.quality import cfn_lint_findings, nag_findings

ACCOUNT, REGION = "111111111111", "eu-west-1"


def package(group: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group}/3"


BASELINE = "artifacts/cdk-mlops-staging-model-risk/e1/data-quality-baseline/"
MODELS: dict[str, dict[str, Any]] = {
    "fraud": {"dataset": "tx", "serving": {"mode": "realtime", "model_package_arn": package("fraud")}},
    # A realtime model with its version's baseline: captured and monitored, its violations retrain it.
    "risk": {
        "dataset": "loans",
        "serving": {"mode": "realtime", "model_package_arn": package("risk"), "baseline_prefix": BASELINE},
    },
    "upsell": {"dataset": "customers", "serving": {"mode": "async", "model_package_arn": package("upsell")}},
    "churn": {"dataset": "customers", "serving": {"mode": "serverless", "model_package_arn": package("churn")}},
    "ltv": {
        "dataset": "customers",
        "serving": {"mode": "shared", "model_package_arn": package("ltv"), "memory_mb": 512, "min_copies": 1},
    },
    "next-offer": {"dataset": "customers", "serving": {"mode": "shared", "model_package_arn": package("offer")}},
    # A mode without an approved version: nothing is served yet.
    "segments": {"dataset": "customers", "serving": {"mode": "shared"}},
}


@dataclass(frozen=True)
class Served:
    stage: MlopsPlatformStage
    templates: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def staging() -> Served:
    platform = synthesize_platform({CONTEXT_KEY: {"staging": {"account": ACCOUNT, "region": REGION, "models": MODELS}}})
    return Served(platform.stages["Staging"], {s.stack.node.id: s.template for s in platform.stacks})


def test_own_endpoints_live_in_each_models_stack_named_like_its_pipeline(staging: Served) -> None:
    kinds = {
        "fraud": EndpointKind.REALTIME,
        "risk": EndpointKind.REALTIME,
        "upsell": EndpointKind.ASYNC,
        "churn": EndpointKind.SERVERLESS,
    }
    for name, kind in kinds.items():
        stack = staging.stage.models[model_stack_index(name, 4)]
        endpoint = stack.endpoints[name]
        assert endpoint.kind is kind
        assert endpoint.endpoint_name == f"cdk-mlops-staging-model-{name}"
        config = next(
            r["Properties"]
            for r in staging.templates[stack.node.id]["Resources"].values()
            if r["Type"] == "AWS::SageMaker::EndpointConfig"
            and r["Properties"]["ProductionVariants"][0]["ModelName"]["Fn::GetAtt"][0].startswith(name.replace("-", ""))
        )
        # Only the model with a baseline captures requests, for its monitor.
        assert ("DataCaptureConfig" in config) is (name == "risk"), name
    served_here = {n for s in staging.stage.models.values() for n in s.endpoints}
    assert served_here == set(kinds)


def test_a_model_with_a_baseline_is_monitored_and_its_violations_retrain_it_alone(staging: Served) -> None:
    stack = staging.stage.models[model_stack_index("risk", 4)]
    monitor = stack.monitors["risk"]
    assert {n for s in staging.stage.models.values() for n in s.monitors} == {"risk"}
    assert monitor.schedule_names == {MonitoringType.DATA_QUALITY: "cdk-mlops-staging-model-risk-data-quality"}
    resources = staging.templates[stack.node.id]["Resources"]
    [schedule] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::SageMaker::MonitoringSchedule"]
    assert (
        schedule["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"]
        == MonitorSchedule.daily().expression
    )
    [job] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::SageMaker::DataQualityJobDefinition"]
    constraints = json.dumps(job["DataQualityBaselineConfig"]["ConstraintsResource"])
    assert f"/{BASELINE}constraints.json" in constraints
    # THEN the fleet trigger routes a violation of that schedule to the model's pipeline only
    parameters = [
        (r["Properties"]["Name"], r["Properties"]["Value"])
        for t in staging.templates.values()
        for r in t["Resources"].values()
        if r["Type"] == "AWS::SSM::Parameter"
    ]
    table = RouteTable.read(parameters, {"DATA_BUCKET": "b", "STATE_TABLE": "t", "QUEUE_URL": "https://q"})
    # The monitor's violation event, as its publisher puts it, matches the fleet's deployed Violations rule ...
    event = load_event("model_monitor_violation.json")
    event["detail"] |= {
        "monitoringScheduleName": "cdk-mlops-staging-model-risk-data-quality",
        "endpointName": "cdk-mlops-staging-model-risk",
        "dataset": "loans",
    }
    [pattern] = [
        r["Properties"]["EventPattern"]
        for k, r in staging.templates["Training"]["Resources"].items()
        if r["Type"] == "AWS::Events::Rule" and k.startswith("FleetViolations")
    ]
    assert matches(pattern, event), pattern
    # ... and the handler's parser and routes send it to the model's pipeline only
    _, violation = parse_record({"messageId": "m", "body": json.dumps(event)})
    assert isinstance(violation, MonitorViolation)
    assert table.pipelines_for(violation, "b") == ["cdk-mlops-staging-model-risk"]
    # AND the stack's endpoints and monitor share one key, and none has its own
    keys = [k for k, r in resources.items() if r["Type"] == "AWS::KMS::Key"]
    assert len(keys) == 1
    assert keys[0].startswith("ServingKey")


def test_shared_models_are_components_of_one_endpoint_in_the_shared_serving_stack(staging: Served) -> None:
    [shared] = staging.stage.shared_serving.values()
    assert shared.endpoint.endpoint_name == shared_endpoint_name(staging.stage.config) == "cdk-mlops-staging-models"
    assert sorted(shared.endpoint.models) == ["ltv", "next-offer"]
    components = {
        r["Properties"]["InferenceComponentName"]: r["Properties"]
        for r in staging.templates["SharedServing"]["Resources"].values()
        if r["Type"] == "AWS::SageMaker::InferenceComponent"
    }
    assert sorted(components) == ["cdk-mlops-staging-models-ltv", "cdk-mlops-staging-models-next-offer"]
    ltv = components["cdk-mlops-staging-models-ltv"]
    assert ltv["Specification"]["ComputeResourceRequirements"]["MinMemoryRequiredInMb"] == 512
    assert shared.endpoint.models["ltv"].scale_out_from_zero_alarm is None
    assert shared.endpoint.models["next-offer"].scale_out_from_zero_alarm is not None
    # It deploys after the model stacks and before the environment's own serving stack.
    ids = MlopsPlatformStage.stack_ids(staging.stage.config)
    models = [model_stack_id(i) for i in sorted(staging.stage.models)]
    assert ids[ids.index("Training") + 1 :][: len(models) + 1] == (*models, "SharedServing")


def test_shared_models_spread_over_several_endpoints_by_their_names_hash() -> None:
    shared = {"mode": "shared", "model_package_arn": package("m")}
    names = [f"m{i:03d}" for i in range(12)]
    models = {name: {"dataset": "d", "serving": shared} for name in names}
    settings = {"account": ACCOUNT, "region": REGION, "models": models, "shared_endpoints": 3}
    (config,) = load_environments({"staging": settings})
    stage = MlopsPlatformStage(cdk.App(), "Staging", config=config)
    expected = {i: sorted(n for n in names if shared_endpoint_index(n, 3) == i) for i in range(3)}
    assert {i: sorted(s.endpoint.models) for i, s in stage.shared_serving.items()} == {
        i: found for i, found in expected.items() if found
    }
    for index, stack in stage.shared_serving.items():
        assert stack.node.id == f"SharedServing{index:02d}"
        assert stack.endpoint.endpoint_name == f"cdk-mlops-staging-models-{index:02d}"
    ids = MlopsPlatformStage.stack_ids(config)
    assert [i for i in ids if i.startswith("SharedServing")] == [
        f"SharedServing{i:02d}" for i in sorted(stage.shared_serving)
    ]


def test_the_served_stacks_are_cfn_lint_and_cdk_nag_clean(staging: Served) -> None:
    stacks = [*staging.stage.models.values(), *staging.stage.shared_serving.values()]
    for stack in stacks:
        assert cfn_lint_findings(staging.templates[stack.node.id], region=REGION) == [], stack.node.id
        assert nag_findings(stack) == [], stack.node.id


@pytest.mark.parametrize("profile", ["staging", "prod"])
def test_an_own_endpoint_adds_at_most_its_counted_resources(profile: str) -> None:
    # Construction only: the resource count of each mode's endpoint, in every profile, with the
    # environment's private network where the profile has one (prod), against the catalogue's bound.
    modes = ["realtime", "async"] if profile == "prod" else ["realtime", "async", "serverless"]
    models = {mode: {"dataset": "d", "serving": {"mode": mode, "model_package_arn": package(mode)}} for mode in modes}
    watched = {"mode": "realtime", "model_package_arn": package("watched"), "baseline_prefix": BASELINE}
    models["watched"] = {"dataset": "d", "serving": watched}
    (config,) = load_environments({profile: {"account": ACCOUNT, "region": REGION, "models": models}})
    stage = MlopsPlatformStage(cdk.App(), profile.title(), config=config)
    counts = {}
    for stack in stage.models.values():
        for name, endpoint in stack.endpoints.items():
            resources = [c for c in endpoint.node.find_all() if isinstance(c, cdk.CfnResource)]
            counts[name] = len(resources)
            mode = ServingMode.REALTIME if name == "watched" else ServingMode(name)
            assert len(resources) <= SERVING_RESOURCES[mode], Counter(r.cfn_resource_type for r in resources)
        for monitor in stack.monitors.values():
            resources = [c for c in monitor.node.find_all() if isinstance(c, cdk.CfnResource)]
            # The bound is reached in every profile: the monitor's resources do not vary with it.
            assert len(resources) == MONITOR_RESOURCES, Counter(r.cfn_resource_type for r in resources)
    assert sorted(counts) == sorted([*modes, "watched"])
    counts.pop("watched")
    if profile == "prod":
        # The bounds are reached: prod adds a latency and a 5XX alarm (its VPC's security groups are shared).
        assert counts == {
            "realtime": SERVING_RESOURCES[ServingMode.REALTIME],
            "async": SERVING_RESOURCES[ServingMode.ASYNC],
        }


def test_prod_with_network_isolation_refuses_models_served_outside_the_vpc() -> None:
    models = {"churn": {"dataset": "d", "serving": {"mode": "shared", "model_package_arn": package("churn")}}}
    with pytest.raises(ConfigurationError, match=r"models\.churn\.serving\.mode: shared models run outside the VPC"):
        load_environments({"prod": {"account": ACCOUNT, "region": REGION, "models": models}})
