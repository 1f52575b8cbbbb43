"""The delivery builds in the tooling account's VPC; a private environment without one is refused."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import aws_cdk as cdk
import pytest
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_ec2 as ec2

from cdk_mlops.compliance import apply_compliance
from cdk_mlops.config import EnvironmentConfig, NetworkConfig, NetworkMode, load_environments
from cdk_mlops.constructs.delivery import DeliveryTarget, PipelineSource, PlatformDeliveryPipeline
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.stacks.delivery_stack import ToolingStage
from tests.quality import actions_of, cfn_lint_findings, nag_findings
from tests.unit.constructs.test_delivery import CONNECTION, DEV, TOOLING, LightStage, tooling

REGION = "eu-west-1"
#: The tooling account's VPC, by its ids (as the ``tooling.network`` object of cdk.json gives it).
NETWORK = NetworkConfig(
    mode=NetworkMode.EXISTING,
    vpc_id="vpc-0a1b2c3d4e5f60718",
    availability_zones=("eu-west-1a", "eu-west-1b"),
    subnet_ids=("subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"),
    route_table_ids=("rtb-0a1b2c3d4e5f60718", "rtb-0f1e2d3c4b5a69788"),
)
OWN_GROUPS = ("sg-0a1b2c3d4e5f60718", "sg-0f1e2d3c4b5a69788")
ENI_ACTIONS = {"ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:DescribeNetworkInterfaces"}


def environments(*names: str) -> list[EnvironmentConfig]:
    """The named environments at their profile's defaults (prod: an isolated VPC), each in its own account."""
    accounts = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
    return load_environments({name: {"account": accounts[name], "region": REGION} for name in names})


def light_stage(scope: Any, config: EnvironmentConfig) -> cdk.Stage:
    """A small stage per environment (data store, training pipeline, retrain trigger): the builds are under test."""
    target = DeliveryTarget(
        name=config.name,
        account=str(config.account),
        region=str(config.region),
        manual_approval=config.manual_approval,
        production=config.is_prod,
    )
    return LightStage(scope, config.stage_name, target=target)


def tooling_stage(app: cdk.App, configs: Sequence[EnvironmentConfig], **delivery: Any) -> ToolingStage:
    return ToolingStage(
        app,
        "Tooling",
        account=str(TOOLING.account),
        region=REGION,
        environments=configs,
        connection_arn=CONNECTION,
        repository="acme/mlops",
        stage_factory=light_stage,
        cli_version="2.1148.1",
        **delivery,
    )


@dataclass
class Synthesized:
    stage: ToolingStage
    templates: dict[str, dict[str, Any]]  # the tooling stage's own stacks, by construct path

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {
            f"{path}/{name}": resource
            for path, template in self.templates.items()
            for name, resource in template["Resources"].items()
            if resource["Type"] == kind
        }

    @property
    def template(self) -> dict[str, Any]:
        return self.templates[self.stage.delivery.node.path]


def synthesize(configs: Sequence[EnvironmentConfig], **delivery: Any) -> Synthesized:
    """The tooling stage, synthesized with cdk-nag and the guardrails (any unacknowledged finding raises)."""
    app = cdk.App()
    stage = tooling_stage(app, configs, **delivery)
    apply_compliance(app, verbose=False)
    assembly = app.synth().get_nested_assembly(stage.artifact_id)
    templates = {
        child.node.path: assembly.get_stack_artifact(child.artifact_id).template
        for child in stage.node.children
        if isinstance(child, cdk.Stack)
    }
    return Synthesized(stage, templates)


@pytest.fixture(scope="module")
def networked() -> Synthesized:
    """dev and a private prod, delivered from builds in the tooling VPC, with the group the platform creates."""
    return synthesize(environments("dev", "prod"), network=NETWORK)


@pytest.fixture(scope="module")
def own_groups() -> Synthesized:
    """dev only, delivered from the tooling VPC with the organisation's own security groups."""
    return synthesize(environments("dev"), network=replace(NETWORK, security_group_ids=OWN_GROUPS))


@pytest.fixture(scope="module")
def public() -> Synthesized:
    """dev only, no tooling network: the builds run outside any VPC, as before."""
    return synthesize(environments("dev"))


def joined(value: Any) -> str:
    """An ``Fn::Join`` of strings and references as one string, references written ``<Name>``."""
    parts = value["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else f"<{p['Ref']}>" for p in parts)


def project_ids(owner: Any) -> set[str]:
    """``<stack path>/<logical id>`` of every CodeBuild project under a construct."""
    stack = cdk.Stack.of(owner)
    return {
        f"{stack.node.path}/{stack.resolve(stack.get_logical_id(cast(cdk.CfnElement, project.node.default_child)))}"
        for project in owner.node.find_all()
        if isinstance(project, codebuild.Project)
    }


def policies_of(synthesized: Synthesized, role: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The statements of every policy attached to a project's service role (``Fn::GetAtt [Role, Arn]``)."""
    role_id = role["Fn::GetAtt"][0]
    return [
        statement
        for policy in synthesized.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


# ----------------------------------------------------------------------------------- with a network


def test_every_build_of_both_pipelines_runs_in_the_given_subnets(networked):
    projects = networked.resources("AWS::CodeBuild::Project")
    # GIVEN builds of both pipelines: synth, self-mutation, assets, security, verify, retrain; select, deploy, test
    platform, models = project_ids(networked.stage.delivery.platform), project_ids(networked.stage.delivery.models)
    assert len(platform) >= 8, sorted(platform)
    assert len(models) == 5, sorted(models)
    assert platform | models == set(projects)
    (group,) = networked.resources("AWS::EC2::SecurityGroup")
    group_id = {"Fn::GetAtt": [group.rsplit("/", 1)[1], "GroupId"]}
    # THEN each one runs in the tooling VPC's subnets with the build security group
    for name, project in projects.items():
        assert project["Properties"].get("VpcConfig") == {
            "VpcId": NETWORK.vpc_id,
            "Subnets": list(NETWORK.subnet_ids),
            "SecurityGroupIds": [group_id],
        }, name


def test_the_build_security_group_is_created_once_and_admits_no_inbound_traffic(networked):
    (group,) = networked.resources("AWS::EC2::SecurityGroup").values()
    assert group["Properties"]["VpcId"] == NETWORK.vpc_id
    assert "SecurityGroupIngress" not in group["Properties"]
    assert networked.resources("AWS::EC2::SecurityGroupIngress") == {}
    # The builds fetch the source and packages through the VPC's own route (NAT, proxy or mirror).
    assert group["Properties"]["SecurityGroupEgress"] == [
        {"CidrIp": "0.0.0.0/0", "Description": "Allow all outbound traffic by default", "IpProtocol": "-1"}
    ]


def test_each_build_role_may_create_network_interfaces_only_in_the_given_subnets(networked):
    for name, project in networked.resources("AWS::CodeBuild::Project").items():
        statements = policies_of(networked, project["Properties"]["ServiceRole"])
        eni = [s for s in statements if set(actions_of(s)) >= ENI_ACTIONS]
        assert eni, f"{name}: its role cannot create the build's network interface"
        (permission,) = [s for s in statements if actions_of(s) == ["ec2:CreateNetworkInterfacePermission"]]
        condition = permission["Condition"]["StringEquals"]
        assert condition["ec2:AuthorizedService"] == "codebuild.amazonaws.com", name
        assert [joined(arn) for arn in condition["ec2:Subnet"]] == [
            f"arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:subnet/{subnet}" for subnet in NETWORK.subnet_ids
        ], name


def test_the_networked_tooling_is_nag_and_cfn_lint_clean(networked):
    # The synth applied cdk-nag and the guardrails already (it raises on a finding); this names any finding.
    assert nag_findings(networked.stage.delivery) == []
    assert cfn_lint_findings(networked.template, region=REGION) == []


def test_given_security_groups_are_used_and_no_group_is_created(own_groups):
    projects = own_groups.resources("AWS::CodeBuild::Project")
    assert projects
    for name, project in projects.items():
        assert project["Properties"]["VpcConfig"]["SecurityGroupIds"] == list(OWN_GROUPS), name
    assert own_groups.resources("AWS::EC2::SecurityGroup") == {}


# -------------------------------------------------------------------------------- without a network


def test_dev_only_tooling_without_a_network_builds_outside_any_vpc(public):
    projects = public.resources("AWS::CodeBuild::Project")
    assert projects
    assert [n for n, p in projects.items() if "VpcConfig" in p["Properties"]] == []
    assert public.resources("AWS::EC2::SecurityGroup") == {}
    statements = [
        s for p in public.resources("AWS::IAM::Policy").values() for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert not [s for s in statements if "ec2:CreateNetworkInterface" in actions_of(s)]


def test_a_private_environment_without_a_tooling_network_is_refused_by_name():
    configs = environments("dev", "staging", "prod")
    configs[1] = replace(configs[1], network=NetworkConfig(mode=NetworkMode.ISOLATED))
    with pytest.raises(ConfigurationError) as raised:
        tooling_stage(cdk.App(), configs)
    (problem,) = raised.value.problems
    assert raised.value.location == "Tooling/Delivery"
    assert problem.startswith("environments staging, prod run in a VPC")
    assert "set tooling.network" in problem
    assert "PyPI" in problem


def test_a_tooling_network_that_is_not_an_existing_vpc_is_refused():
    with pytest.raises(ConfigurationError, match=r"Tooling/Delivery.*network.*existing VPC of the tooling account"):
        tooling_stage(cdk.App(), environments("dev"), network=NetworkConfig(mode=NetworkMode.ISOLATED))


def test_a_tooling_network_with_route_tables_that_do_not_match_its_subnets_is_refused():
    network = replace(NETWORK, route_table_ids=NETWORK.route_table_ids[:1])
    with pytest.raises(ConfigurationError, match=r"route_table_ids: 1 route tables for 2 subnets"):
        tooling_stage(cdk.App(), environments("dev"), network=network)


# ---------------------------------------------------------------------------- the constructs alone


def test_security_groups_without_a_vpc_are_refused():
    app = cdk.App()
    _, stack = tooling(app)
    group = ec2.SecurityGroup.from_security_group_id(stack, "Group", OWN_GROUPS[0])
    with pytest.raises(ConfigurationError, match=r"Tooling/Delivery/Platform.*security_groups.*without a vpc"):
        PlatformDeliveryPipeline(
            stack,
            "Platform",
            source=PipelineSource.connection(CONNECTION, repository="acme/mlops"),
            targets=[DEV],
            stage_factory=lambda scope, target: LightStage(scope, target.construct_id, target=target),
            security_groups=[group],
        )
