"""The network stack in the stage: prod's jobs, function and model run in its private subnets; dev has no VPC."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from cdk_mlops.config import CONTEXT_KEY, TOOLING_KEY, load_environments
from cdk_mlops.constructs.common import select_subnets
from cdk_mlops.constructs.private_network import PrivateNetwork
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.local.examples import with_example_models
from cdk_mlops.stacks.network_stack import NetworkStack
from cdk_mlops.stacks.platform_stage import MlopsPlatformStage
from tests.conftest import PRIVATE_PROD_ENV, REPO_ROOT, Platform, cdk_json_context, synthesize_platform
from tests.contracts.iam_coverage import Deployment
from tests.quality import cfn_lint_findings, nag_findings

EXISTING_VPC = {
    "vpc_id": "vpc-0123456789abcdef0",
    "availability_zones": ["eu-west-1a", "eu-west-1b"],
    "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
    "route_table_ids": ["rtb-0123456789abcdef0", "rtb-0fedcba9876543210"],
    "security_group_ids": ["sg-0123456789abcdef0"],
}
#: Pipeline step types whose job request names its VPC, and where.
_JOB_NETWORK = {
    "Processing": ("NetworkConfig", "VpcConfig"),
    "QualityCheck": ("NetworkConfig", "VpcConfig"),
    "ClarifyCheck": ("NetworkConfig", "VpcConfig"),
    "Training": ("VpcConfig",),
}


@dataclass(frozen=True)
class Prod:
    """The prod stage with its templates resolved together, and the network's subnets and group as deployed."""

    stage: MlopsPlatformStage
    network: PrivateNetwork
    deployment: Deployment
    subnets: list[str]
    security_groups: list[str]

    def vpc_config(self) -> dict[str, list[str]]:
        return {"Subnets": self.subnets, "SecurityGroupIds": self.security_groups}


def prod_of(platform: Platform) -> Prod:
    stage = platform.stages["Prod"]
    assert stage.network is not None
    network = stage.network.network
    deployment = Deployment(stage.node.path, [(s.stack, s.template) for s in platform.stacks if s.stage == "Prod"])
    subnet_ids = select_subnets(network.vpc, network.vpc_subnets).subnet_ids
    return Prod(
        stage,
        network,
        deployment,
        [deployment.value(network.vpc, s) for s in subnet_ids],
        [deployment.value(network.vpc, g.security_group_id) for g in network.security_groups],
    )


@pytest.fixture(scope="module")
def prod(private_prod: Platform) -> Prod:
    return prod_of(private_prod)


@pytest.fixture(scope="module")
def existing() -> Prod:
    """Prod in an existing VPC named by ids, with the organisation's own security group."""
    context = cdk_json_context()
    prod = {**PRIVATE_PROD_ENV, "network": EXISTING_VPC}
    context[CONTEXT_KEY] = with_example_models({CONTEXT_KEY: {"prod": prod}})[CONTEXT_KEY]
    context[TOOLING_KEY] = None
    return prod_of(synthesize_platform(context))


def job_steps(steps: list[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Every step of a pipeline definition, the branches of condition steps included."""
    for step in steps:
        if step["Type"] == "Condition":
            yield from job_steps([*step["Arguments"].get("IfSteps", []), *step["Arguments"].get("ElseSteps", [])])
        else:
            yield step


def pipeline_steps(prod: Prod) -> list[Mapping[str, Any]]:
    pipeline = prod.stage.training.training.pipeline
    body = prod.deployment.properties(pipeline)["PipelineDefinition"]["PipelineDefinitionBody"]
    return list(job_steps(json.loads(body)["Steps"]))


def test_prod_with_defaults_deploys_its_network_first(private_prod):
    stage = private_prod.stages["Prod"]
    assert isinstance(stage.network, NetworkStack)
    stacks = [c.node.id for c in stage.node.children if isinstance(c, cdk.Stack)]
    assert stacks == ["Network", "Data", "Training", "Serving", "Scoring"]
    assert stacks == list(MlopsPlatformStage.stack_ids(stage.config))
    for dependent in (stage.training, stage.serving, stage.scoring):
        assert dependent is not None
        assert stage.network in dependent.dependencies


def test_prod_synthesizes_without_any_lookup(private_prod):
    # A concrete account and region: ec2.Vpc would look the Availability Zones up at synth.
    manifest = json.loads((Path(private_prod.assembly.directory) / "manifest.json").read_text())
    assert manifest.get("missing") is None
    nested = private_prod.assembly.get_nested_assembly(private_prod.stages["Prod"].artifact_id)
    assert json.loads((Path(nested.directory) / "manifest.json").read_text()).get("missing") is None


def test_every_pipeline_job_runs_in_the_private_subnets_with_the_workloads_group(prod):
    steps = pipeline_steps(prod)
    jobs = [s for s in steps if s["Type"] in _JOB_NETWORK]
    assert {s["Type"] for s in jobs} >= {"Processing", "Training"}
    for step in jobs:
        config: Any = step["Arguments"]
        for key in _JOB_NETWORK[step["Type"]]:
            config = config.get(key, {})
        assert config == prod.vpc_config(), step["Name"]


def test_the_retrain_function_runs_in_the_private_subnets(prod):
    function = prod.deployment.properties(prod.stage.training.retrain.function)
    assert function["VpcConfig"] == {"SubnetIds": prod.subnets, "SecurityGroupIds": prod.security_groups}


def test_the_model_and_its_monitor_run_in_the_private_subnets(prod):
    serving = prod.stage.serving
    assert serving is not None
    assert serving.monitor is not None
    model = prod.deployment.properties(serving.endpoint.model)
    assert model["VpcConfig"] == prod.vpc_config()
    assert model["EnableNetworkIsolation"] is True
    for resource in (r for r in serving.monitor.node.find_all() if isinstance(r, cdk.CfnResource)):
        if resource.cfn_resource_type == "AWS::SageMaker::DataQualityJobDefinition":
            network = prod.deployment.properties(resource)["NetworkConfig"]
            assert network["VpcConfig"] == prod.vpc_config()


def test_the_network_stack_is_nag_and_cfn_lint_clean(private_prod):
    network = private_prod.stack("Prod/Network")
    assert nag_findings(network.stack) == []
    assert cfn_lint_findings(network.template, region="eu-west-1") == []


def test_dev_and_staging_create_no_network_resources(platform):
    for s in platform.stacks:
        if s.stage in ("Dev", "Staging"):
            ec2 = sorted({r["Type"] for r in s.template["Resources"].values() if r["Type"].startswith("AWS::EC2::")})
            assert ec2 == [], s.path
    for name in ("Dev", "Staging"):
        assert platform.stages[name].network is None


def test_an_existing_vpc_is_used_by_its_ids_without_lookup(existing):
    assert existing.subnets == EXISTING_VPC["subnet_ids"]
    assert existing.security_groups == EXISTING_VPC["security_group_ids"]
    network = existing.stage.network
    assert network is not None
    types = {r["Type"] for r in existing.deployment.stack(network).template["Resources"].values()}
    assert "AWS::EC2::VPC" not in types
    assert "AWS::Lambda::Function" not in types  # given groups: no prefix-list lookup
    for step in pipeline_steps(existing):
        if step["Type"] == "Training":
            assert step["Arguments"]["VpcConfig"] == existing.vpc_config()
    endpoints = [
        existing.deployment.resolved(existing.deployment.stack(network), logical_id)
        for logical_id, r in existing.deployment.stack(network).template["Resources"].items()
        if r["Type"] == "AWS::EC2::VPCEndpoint" and r["Properties"].get("VpcEndpointType") == "Interface"
    ]
    assert endpoints
    assert all(e["SubnetIds"] == EXISTING_VPC["subnet_ids"] for e in endpoints)


def test_a_network_stack_needs_a_private_network():
    (dev,) = load_environments({"dev": {}})
    with pytest.raises(ConfigurationError, match=r'\[Dev/Network\] environments.dev.network is "none"'):
        NetworkStack(cdk.Stage(cdk.App(), "Dev"), "Network", config=dev)


# ------------------------------------------------------------------------------------- the README's cost


_COST = re.compile(
    r"## What a private prod costs\n(?P<body>.*?)\n## ",
    re.DOTALL,
)
_COUNT = re.compile(r"\*\*(?P<count>\d+) interface endpoints\*\*")
_TOTAL = re.compile(
    r"(?P<count>\d+) endpoints x (?P<zones>\d+) AZs x \$(?P<price>[0-9.]+) per endpoint-AZ-hour x (?P<hours>\d+) h"
    r" = \*\*\$(?P<total>[0-9.,]+)"
)


def test_the_readme_states_the_cost_of_the_interface_endpoints_prod_creates(private_prod):
    section = _COST.search((REPO_ROOT / "README.md").read_text())
    assert section, "README.md has no '## What a private prod costs' section"
    body = section["body"]
    template = private_prod.stack("Prod/Network").template
    interface = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::EC2::VPCEndpoint" and r["Properties"].get("VpcEndpointType") == "Interface"
    ]
    zones = {len(r["Properties"]["SubnetIds"]) for r in interface}
    stated = _COUNT.search(body)
    total = _TOTAL.search(body)
    assert stated, body
    assert total, body
    assert int(stated["count"]) == int(total["count"]) == len(interface)
    assert {int(total["zones"])} == zones
    computed = int(total["count"]) * int(total["zones"]) * float(total["price"]) * int(total["hours"])
    assert f"{computed:,.2f}" == total["total"]


def test_a_serverless_endpoint_stays_outside_the_vpc_with_a_warning():
    # GIVEN dev (serverless) with a private network
    (dev,) = load_environments(
        with_example_models({CONTEXT_KEY: {"dev": {"network": "isolated"}}})[CONTEXT_KEY],
    )
    stage = MlopsPlatformStage(cdk.App(), "Dev", config=dev)
    # THEN the jobs and the function are in the VPC, the endpoint is not, and the synth says so
    assert stage.network is not None
    assert stage.serving is not None
    assert stage.serving.endpoint.model.vpc_config is None
    assert stage.training.retrain.function.is_bound_to_vpc
    warnings = cdk.assertions.Annotations.from_stack(stage.serving).find_warning(
        "*", cdk.assertions.Match.string_like_regexp("serverless endpoints cannot run in a VPC")
    )
    assert len(warnings) == 1
