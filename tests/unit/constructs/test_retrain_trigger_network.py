"""RetrainTrigger in a VPC: subnets, security groups, network-interface permissions, ordering, validation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Template

from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.retrain_trigger import RetrainTrigger
from cdk_mlops.errors import ConfigurationError
from tests.quality import actions_of, cfn_lint_findings, logical_id, nag_findings, statements

_ENI_ACTIONS = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}


@dataclass(frozen=True)
class Built:
    stack: cdk.Stack
    vpc: ec2.Vpc
    trigger: RetrainTrigger
    template: dict[str, Any]

    def logical_id(self, construct: Any) -> str:
        return logical_id(construct)

    def function(self) -> dict[str, Any]:
        resource: dict[str, Any] = self.template["Resources"][self.logical_id(self.trigger.function)]
        return resource


def isolated_vpc(stack: cdk.Stack) -> ec2.Vpc:
    return ec2.Vpc(
        stack,
        "Vpc",
        max_azs=2,
        nat_gateways=0,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="jobs", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            ec2.SubnetConfiguration(name="other", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        ],
    )


def build(**kwargs: Any) -> Built:
    stack = cdk.Stack(cdk.App(), "Test")
    vpc = isolated_vpc(stack)
    store = VersionedDataStore(stack, "Data", datasets=["churn"])
    args: dict[str, Any] = {"data_store": store, "datasets": ["churn"], "pipeline_name": "churn-training"}
    extra = {k: v(stack, vpc) if callable(v) else v for k, v in kwargs.items()}
    trigger = RetrainTrigger(stack, "Retrain", vpc=vpc, **args, **extra)
    return Built(stack, vpc, trigger, dict(Template.from_stack(stack).to_json()))


@pytest.fixture(scope="module")
def default_group() -> Built:
    return build()


@pytest.fixture(scope="module")
def given_group() -> Built:
    return build(
        vpc_subnets=ec2.SubnetSelection(subnet_group_name="other"),
        security_groups=lambda stack, vpc: [ec2.SecurityGroup(stack, "Given", vpc=vpc, allow_all_outbound=False)],
    )


def refs(subnets: list[ec2.ISubnet], built: Built) -> list[dict[str, str]]:
    return [{"Ref": built.logical_id(s)} for s in subnets]


def test_function_runs_in_the_vpcs_private_subnets_with_its_own_group(default_group):
    b = default_group
    (group,) = b.trigger.security_groups
    vpc_config = b.function()["Properties"]["VpcConfig"]
    # lambda.Function's default selection: every private subnet (here both isolated groups)
    assert vpc_config["SubnetIds"] == refs(b.vpc.isolated_subnets, b)
    assert vpc_config["SecurityGroupIds"] == [{"Fn::GetAtt": [b.logical_id(group), "GroupId"]}]
    assert group.node.scope is b.trigger


def test_the_own_group_allows_no_inbound_and_only_https_out(default_group):
    b = default_group
    (group,) = b.trigger.security_groups
    props = b.template["Resources"][b.logical_id(group)]["Properties"]
    assert "SecurityGroupIngress" not in props
    assert props["SecurityGroupEgress"] == [
        {"CidrIp": "0.0.0.0/0", "Description": "HTTPS to AWS APIs", "FromPort": 443, "IpProtocol": "tcp", "ToPort": 443}
    ]
    ingress = [r for r in b.template["Resources"].values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"]
    assert ingress == []


def test_given_subnets_and_groups_are_used_and_no_group_is_created(given_group):
    b = given_group
    (given,) = b.trigger.security_groups
    vpc_config = b.function()["Properties"]["VpcConfig"]
    assert vpc_config["SubnetIds"] == refs(b.vpc.select_subnets(subnet_group_name="other").subnets, b)
    assert vpc_config["SecurityGroupIds"] == [{"Fn::GetAtt": [b.logical_id(given), "GroupId"]}]
    groups = [c for c in b.trigger.node.find_all() if isinstance(c, ec2.CfnSecurityGroup)]
    assert groups == []


def network_statements(b: Built) -> list[dict[str, Any]]:
    return [s for s in statements(Template.from_stack(b.stack), b.trigger.role) if set(actions_of(s)) & _ENI_ACTIONS]


def arn(b: Built, kind: str, name: Any) -> dict[str, Any]:
    return b.stack.resolve(b.stack.format_arn(service="ec2", resource=kind, resource_name=name))  # type: ignore[no-any-return]


def test_the_role_may_create_interfaces_only_in_its_subnets_with_its_groups(given_group):
    b = given_group
    (create,) = [s for s in network_statements(b) if "ec2:CreateNetworkInterface" in actions_of(s)]
    assert actions_of(create) == ["ec2:CreateNetworkInterface"]
    subnets = b.vpc.select_subnets(subnet_group_name="other").subnet_ids
    (given,) = b.trigger.security_groups
    expected = [
        arn(b, "network-interface", "*"),
        *(arn(b, "subnet", s) for s in subnets),
        arn(b, "security-group", given.security_group_id),
    ]
    assert sorted(map(str, create["Resource"])) == sorted(map(str, expected))


def test_the_role_manages_network_interfaces_and_describes_without_other_ec2_access(given_group):
    b = given_group
    by_action = {a: s for s in network_statements(b) for a in actions_of(s)}
    assert set(by_action) == _ENI_ACTIONS
    for action in ("ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"):
        assert by_action[action]["Resource"] == arn(b, "network-interface", "*")
    # Describe* supports no resource-level permissions
    assert by_action["ec2:DescribeNetworkInterfaces"]["Resource"] == "*"
    assert by_action["ec2:DescribeSubnets"]["Resource"] == "*"
    other = [a for s in statements(Template.from_stack(b.stack), b.trigger.role) for a in actions_of(s)]
    assert {a for a in other if a.startswith("ec2:")} == _ENI_ACTIONS


def prerequisites(template: dict[str, Any], logical_id: str) -> set[str]:
    """Every resource CloudFormation creates before ``logical_id``: DependsOn, Ref and GetAtt, transitively."""
    resources = template["Resources"]

    def direct(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if "Ref" in node and node["Ref"] in resources:
                yield node["Ref"]
            if "Fn::GetAtt" in node:
                yield node["Fn::GetAtt"][0]
            for value in node.values():
                yield from direct(value)
        elif isinstance(node, list):
            for item in node:
                yield from direct(item)

    seen: set[str] = set()
    todo = [logical_id]
    while todo:
        resource = resources[todo.pop()]
        for dependency in {*resource.get("DependsOn", []), *direct(resource.get("Properties", {}))}:
            if dependency not in seen:
                seen.add(dependency)
                todo.append(dependency)
    return seen


def test_the_function_is_created_after_its_permissions_and_its_subnets_routes(default_group):
    b = default_group
    before = prerequisites(b.template, b.logical_id(b.trigger.function))
    policy = b.trigger.role.node.find_child("DefaultPolicy")
    assert b.logical_id(policy) in before  # Lambda checks the network-interface permissions at create
    for subnet in b.vpc.isolated_subnets:
        association = subnet.node.find_child("RouteTableAssociation")
        assert b.logical_id(association) in before


def test_the_function_still_names_its_role_only_once(default_group):
    # cfn-lint W3005: no DependsOn on the role the function already names with Fn::GetAtt
    assert default_group.logical_id(default_group.trigger.role) not in default_group.function().get("DependsOn", [])


def test_the_stack_passes_cfn_lint_and_cdk_nag(default_group, given_group):
    for b in (default_group, given_group):
        assert cfn_lint_findings(b.template) == []
        # the test's own VPC has no flow log (AwsSolutions-VPC7); everything else is clean
        assert [f for f in nag_findings(b.stack) if not f.endswith(" Test/Vpc/Resource")] == []


def test_the_environment_is_the_same_in_and_out_of_the_vpc(default_group):
    stack = cdk.Stack(cdk.App(), "Test")
    store = VersionedDataStore(stack, "Data", datasets=["churn"])
    outside = RetrainTrigger(stack, "Retrain", data_store=store, datasets=["churn"], pipeline_name="churn-training")
    resources = Template.from_stack(stack).to_json()["Resources"]
    plain = resources[logical_id(outside.function)]["Properties"]
    assert "VpcConfig" not in plain
    assert outside.security_groups == ()
    assert default_group.function()["Properties"]["Environment"] == plain["Environment"]
    assert not any(
        a.startswith("ec2:") for s in statements(Template.from_stack(stack), outside.role) for a in actions_of(s)
    )


# --- validation -----------------------------------------------------------------------------------------


def make(**kwargs: Any) -> RetrainTrigger:
    stack = cdk.Stack(cdk.App(), "Bad")
    vpc = isolated_vpc(stack)
    store = VersionedDataStore(stack, "Data")
    extra = {k: v(stack, vpc) if callable(v) else v for k, v in kwargs.items()}
    return RetrainTrigger(stack, "Retrain", data_store=store, datasets=["churn"], pipeline_name="train", **extra)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"vpc_subnets": ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)},
            "vpc_subnets is given without vpc; pass the VPC the subnets belong to as vpc",
        ),
        (
            {"security_groups": lambda stack, vpc: [ec2.SecurityGroup(stack, "G", vpc=vpc)]},
            "security_groups is given without vpc; pass the VPC the groups belong to as vpc",
        ),
        (
            {"vpc": lambda stack, vpc: vpc, "security_groups": []},
            "security_groups is empty; pass at least one group, or omit it",
        ),
    ],
)
def test_wrong_network_combinations_name_the_argument_and_the_fix(kwargs, expected):
    with pytest.raises(ConfigurationError) as caught:
        make(**kwargs)
    assert str(caught.value).startswith("[Bad/Retrain]")
    assert any(expected in p for p in caught.value.problems), caught.value.problems
