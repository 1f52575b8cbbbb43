"""PrivateNetwork: an isolated VPC or an existing one, its endpoints and policies, security groups, validation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import custom_resources as cr

from cdk_mlops.constructs.private_network import (
    GATEWAY_ENDPOINTS,
    INTERFACE_ENDPOINTS,
    PREFIX_LIST_LOOKUP_ENDPOINT,
    PrivateNetwork,
    placement,
)
from cdk_mlops.errors import ConfigurationError
from tests.quality import cfn_lint_findings, logical_id, nag_findings

ZONES = ["eu-west-1a", "eu-west-1b"]
SUBNETS = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
ROUTE_TABLES = ["rtb-0123456789abcdef0", "rtb-0fedcba9876543210"]
ENV = cdk.Environment(account="123456789012", region="eu-west-1")


@dataclass(frozen=True)
class Built:
    stack: cdk.Stack
    network: PrivateNetwork
    template: dict[str, Any]

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == type_}

    def ref(self, construct: Any) -> dict[str, Any]:
        return {"Fn::GetAtt": [logical_id(construct), "GroupId"]}

    def endpoints(self, kind: str) -> dict[str, dict[str, Any]]:
        return {
            k: v
            for k, v in self.resources("AWS::EC2::VPCEndpoint").items()
            if v["Properties"].get("VpcEndpointType", "Gateway") == kind
        }


def synth(stack: cdk.Stack, network: PrivateNetwork) -> Built:
    template = dict(cdk.assertions.Template.from_stack(stack).to_json())
    return Built(stack, network, template)


def imported_vpc(stack: cdk.Stack, *, route_tables: bool = True) -> ec2.IVpc:
    return ec2.Vpc.from_vpc_attributes(
        stack,
        "Vpc",
        vpc_id="vpc-0123456789abcdef0",
        availability_zones=ZONES,
        isolated_subnet_ids=SUBNETS,
        isolated_subnet_route_table_ids=ROUTE_TABLES if route_tables else None,
    )


@pytest.fixture(scope="module")
def isolated() -> Built:
    stack = cdk.Stack(cdk.App(), "Test")
    return synth(stack, PrivateNetwork(stack, "Network"))


@pytest.fixture(scope="module")
def existing() -> Built:
    stack = cdk.Stack(cdk.App(), "Existing", env=ENV)
    return synth(stack, PrivateNetwork(stack, "Network", vpc=imported_vpc(stack)))


@pytest.fixture(scope="module")
def existing_groups() -> Built:
    stack = cdk.Stack(cdk.App(), "Groups", env=ENV)
    group = ec2.SecurityGroup.from_security_group_id(stack, "Jobs", "sg-0123456789abcdef0", mutable=False)
    return synth(stack, PrivateNetwork(stack, "Network", vpc=imported_vpc(stack), security_groups=[group]))


def statements_of(endpoint: dict[str, Any]) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = endpoint["Properties"]["PolicyDocument"]["Statement"]
    return statements


def service_of(endpoint: dict[str, Any]) -> str:
    """``com.amazonaws.<region>.sagemaker.api`` (a Fn::Join of the region) -> ``sagemaker.api``."""
    name = endpoint["Properties"]["ServiceName"]
    parts = name["Fn::Join"][1] if isinstance(name, dict) else [name]
    return str(parts[-1]).lstrip(".")


# ------------------------------------------------------------------------------------- an isolated VPC


def test_a_new_vpc_has_isolated_subnets_in_two_zones_and_no_route_out(isolated):
    subnets = isolated.resources("AWS::EC2::Subnet")
    assert len(subnets) == 2
    assert {str(s["Properties"]["AvailabilityZone"]) for s in subnets.values()} == {
        str({"Fn::Select": [i, {"Fn::GetAZs": ""}]}) for i in range(2)
    }
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in subnets.values())
    for kind in ("InternetGateway", "NatGateway", "EgressOnlyInternetGateway", "Route", "VPCGatewayAttachment"):
        assert isolated.resources(f"AWS::EC2::{kind}") == {}, kind


def test_the_flow_log_records_all_traffic_to_an_encrypted_log_group(isolated):
    network = isolated.network
    assert network.flow_log is not None
    assert network.flow_log_group is not None
    assert network.encryption_key is not None
    (flow_log,) = isolated.resources("AWS::EC2::FlowLog").values()
    assert flow_log["Properties"]["TrafficType"] == "ALL"
    assert flow_log["Properties"]["LogGroupName"] == {"Ref": logical_id(network.flow_log_group)}
    group = isolated.template["Resources"][logical_id(network.flow_log_group)]
    assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [logical_id(network.encryption_key), "Arn"]}
    assert group["DeletionPolicy"] == "Retain"
    key = isolated.template["Resources"][logical_id(network.encryption_key)]
    assert key["Properties"]["EnableKeyRotation"] is True
    logs_statement = [
        s for s in key["Properties"]["KeyPolicy"]["Statement"] if "logs." in str(s.get("Principal", {}).get("Service"))
    ]
    assert [s["Condition"] for s in logs_statement] == [
        {
            "ArnLike": {
                "kms:EncryptionContext:aws:logs:arn": {
                    "Fn::Join": [
                        "",
                        [
                            "arn:",
                            {"Ref": "AWS::Partition"},
                            ":logs:",
                            {"Ref": "AWS::Region"},
                            ":",
                            {"Ref": "AWS::AccountId"},
                            ":log-group:*",
                        ],
                    ]
                }
            }
        }
    ]


def test_gateway_endpoints_serve_s3_and_dynamodb_in_every_route_table(isolated):
    tables = [{"Ref": k} for k in isolated.resources("AWS::EC2::RouteTable")]
    gateways = isolated.endpoints("Gateway")
    assert sorted(service_of(e) for e in gateways.values()) == ["dynamodb", "s3"]
    for endpoint in gateways.values():
        assert endpoint["Properties"]["RouteTableIds"] == tables


def test_interface_endpoints_cover_the_platforms_apis_and_the_lookups_ec2(isolated):
    names = sorted(service_of(e) for e in isolated.endpoints("Interface").values())
    assert names == sorted([s.name for s in INTERFACE_ENDPOINTS] + [PREFIX_LIST_LOOKUP_ENDPOINT.name])
    assert set(isolated.network.endpoints) == {s.name for s in (*GATEWAY_ENDPOINTS, *INTERFACE_ENDPOINTS)} | {"ec2"}


def test_interface_endpoints_resolve_privately_and_accept_only_the_endpoint_group(isolated):
    group = isolated.ref(isolated.network.endpoint_security_group)
    subnets = [{"Ref": k} for k in isolated.resources("AWS::EC2::Subnet")]
    for endpoint in isolated.endpoints("Interface").values():
        props = endpoint["Properties"]
        assert props["PrivateDnsEnabled"] is True
        assert props["SecurityGroupIds"] == [group]
        assert props["SubnetIds"] == subnets


def test_every_endpoint_policy_lets_only_this_accounts_principals_through(isolated):
    for endpoint in isolated.resources("AWS::EC2::VPCEndpoint").values():
        perimeter, *exceptions = statements_of(endpoint)
        assert perimeter == {
            "Action": "*",
            "Condition": {"StringEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}},
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Resource": "*",
            "Sid": "PrincipalsOfThisAccount",
        }
        if service_of(endpoint) != "s3":
            assert exceptions == []


def test_the_s3_policy_also_admits_ecr_layers_and_cloudformation_responses_only(isolated):
    (s3,) = [e for e in isolated.endpoints("Gateway").values() if service_of(e) == "s3"]
    _, *exceptions = statements_of(s3)
    assert [s["Sid"] for s in exceptions] == ["EcrImageLayers", "CloudFormationResponses"]
    layers, responses = exceptions
    assert layers["Action"] == "s3:GetObject"
    assert "starport-layer-bucket/*" in str(layers["Resource"])
    assert responses["Action"] == "s3:PutObject"
    assert "cloudformation-custom-resource-response-*/*" in str(responses["Resource"])
    assert responses["Condition"] == {"Bool": {"aws:PrincipalIsAWSService": "true"}}


def rules(built: Built, type_: str, group: Any) -> list[dict[str, Any]]:
    """The standalone and inline rules of ``group``."""
    found = [r["Properties"] for r in built.resources(type_).values() if r["Properties"]["GroupId"] == built.ref(group)]
    inline = "SecurityGroupIngress" if type_.endswith("Ingress") else "SecurityGroupEgress"
    found += built.template["Resources"][logical_id(group)]["Properties"].get(inline, [])
    return found


def test_the_workloads_group_takes_nothing_from_any_address_range(isolated):
    group = isolated.network.security_group
    ingress = rules(isolated, "AWS::EC2::SecurityGroupIngress", group)
    assert [r.get("SourceSecurityGroupId") for r in ingress] == [isolated.ref(group)]
    assert all("CidrIp" not in r and "CidrIpv6" not in r and "SourcePrefixListId" not in r for r in ingress)


def test_the_workloads_group_sends_only_https_to_the_endpoints_and_prefix_lists_and_anything_to_itself(isolated):
    network = isolated.network
    egress = rules(isolated, "AWS::EC2::SecurityGroupEgress", network.security_group)
    lookups = {name: isolated.stack.resolve(network.prefix_list_ids[name]) for name in ("s3", "dynamodb")}
    destinations = sorted(
        (
            str(r.get("DestinationSecurityGroupId") or r.get("DestinationPrefixListId")),
            r["IpProtocol"],
            r.get("FromPort"),
        )
        for r in egress
    )
    assert destinations == sorted(
        [
            (str(isolated.ref(network.endpoint_security_group)), "tcp", 443),
            (str(lookups["s3"]), "tcp", 443),
            (str(lookups["dynamodb"]), "tcp", 443),
            (str(isolated.ref(network.security_group)), "-1", None),
        ]
    )
    assert all("CidrIp" not in r and "CidrIpv6" not in r for r in egress)


def test_the_endpoint_group_accepts_https_only_from_the_workloads_and_the_lookup(isolated):
    network = isolated.network
    ingress = rules(isolated, "AWS::EC2::SecurityGroupIngress", network.endpoint_security_group)
    assert sorted((str(r["SourceSecurityGroupId"]), r["FromPort"], r["ToPort"]) for r in ingress) == sorted(
        [(str(isolated.ref(g)), 443, 443) for g in (network.security_group, network.lookup_security_group)]
    )
    egress = rules(isolated, "AWS::EC2::SecurityGroupEgress", network.endpoint_security_group)
    assert [r["CidrIp"] for r in egress] == ["255.255.255.255/32"]  # aws-cdk-lib's "no outbound" placeholder


def test_the_prefix_lists_are_looked_up_in_the_vpc_with_lambdas_own_sdk(isolated):
    network = isolated.network
    lookups = isolated.resources("Custom::AWS")
    assert sorted(str(r["Properties"]["Create"]).count("describeManagedPrefixLists") for r in lookups.values()) == [
        1,
        1,
    ]
    assert all(r["Properties"]["InstallLatestAwsSdk"] is False for r in lookups.values())
    (function,) = isolated.resources("AWS::Lambda::Function").values()
    assert function["Properties"]["VpcConfig"] == {
        "SecurityGroupIds": [isolated.ref(network.lookup_security_group)],
        "SubnetIds": [{"Ref": k} for k in isolated.resources("AWS::EC2::Subnet")],
    }
    # aws-cdk-lib's automatic group (all outbound traffic) is gone: the workloads', endpoints' and lookup's remain.
    assert len(isolated.resources("AWS::EC2::SecurityGroup")) == 3
    endpoints = {logical_id(network.endpoints[n]) for n in ("ec2", "s3")}
    for lookup in lookups.values():
        assert endpoints <= set(lookup["DependsOn"])


def test_the_isolated_network_is_nag_and_cfn_lint_clean(isolated):
    assert nag_findings(isolated.stack) == []
    assert cfn_lint_findings(isolated.template) == []


def test_placement_puts_a_construct_in_the_network_or_nowhere(isolated):
    network = isolated.network
    assert placement(None) == {}
    assert placement(network) == {
        "vpc": network.vpc,
        "vpc_subnets": network.vpc_subnets,
        "security_groups": [network.security_group],
    }


# ------------------------------------------------------------------------------------- an existing VPC


def test_an_existing_vpc_gets_endpoints_in_its_own_subnets_and_route_tables(existing):
    assert existing.resources("AWS::EC2::VPC") == {}
    assert existing.resources("AWS::EC2::FlowLog") == {}
    for endpoint in existing.endpoints("Gateway").values():
        assert endpoint["Properties"]["VpcId"] == "vpc-0123456789abcdef0"
        assert endpoint["Properties"]["RouteTableIds"] == ROUTE_TABLES
    for endpoint in existing.endpoints("Interface").values():
        assert endpoint["Properties"]["SubnetIds"] == SUBNETS
    assert existing.network.flow_log is None
    assert existing.network.encryption_key is None


def test_an_existing_vpc_is_nag_and_cfn_lint_clean(existing):
    assert nag_findings(existing.stack) == []
    assert cfn_lint_findings(existing.template, region="eu-west-1") == []


def test_given_groups_keep_their_rules_and_need_no_lookup(existing_groups):
    network = existing_groups.network
    assert [g.security_group_id for g in network.security_groups] == ["sg-0123456789abcdef0"]
    assert existing_groups.resources("AWS::EC2::SecurityGroupEgress") == {}
    assert existing_groups.resources("Custom::AWS") == {}
    assert existing_groups.resources("AWS::Lambda::Function") == {}
    assert "ec2" not in network.endpoints
    ingress = rules(existing_groups, "AWS::EC2::SecurityGroupIngress", network.endpoint_security_group)
    assert [(r["SourceSecurityGroupId"], r["FromPort"]) for r in ingress] == [("sg-0123456789abcdef0", 443)]


def test_an_existing_vpc_with_its_own_endpoints_gets_nothing():
    stack = cdk.Stack(cdk.App(), "Shared", env=ENV)
    group = ec2.SecurityGroup.from_security_group_id(stack, "Jobs", "sg-0123456789abcdef0", mutable=False)
    network = PrivateNetwork(
        stack, "Network", vpc=imported_vpc(stack, route_tables=False), security_groups=[group], create_endpoints=False
    )
    assert network.endpoints == {}
    assert network.endpoint_security_group is None
    assert cdk.assertions.Template.from_stack(stack).to_json().get("Resources", {}) == {}
    with pytest.raises(ConfigurationError, match=r"Shared/Network\] add_interface_endpoint\('Experiments'\): this"):
        network.add_interface_endpoint("Experiments", ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_EXPERIMENTS)


def test_add_interface_endpoint_uses_the_same_subnets_group_and_perimeter():
    stack = cdk.Stack(cdk.App(), "Mlflow")
    network = PrivateNetwork(stack, "Network")
    endpoint = network.add_interface_endpoint("Experiments", ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_EXPERIMENTS)
    built = synth(stack, network)
    resource = built.template["Resources"][logical_id(endpoint)]
    assert network.endpoints["Experiments"] is endpoint
    assert resource["Properties"]["SecurityGroupIds"] == [built.ref(network.endpoint_security_group)]
    assert statements_of(resource)[0]["Condition"] == {
        "StringEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}
    }


# ------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            lambda s: {"vpc_subnets": ec2.SubnetSelection()},
            "vpc_subnets needs vpc (subnets of an existing VPC); pass vpc=..., or remove vpc_subnets",
        ),
        (
            lambda s: {"create_endpoints": False},
            "create_endpoints=False needs vpc: a new isolated VPC has no other way to reach AWS APIs",
        ),
        (
            lambda s: {"vpc": imported_vpc(s), "create_endpoints": False},
            "create_endpoints=False needs security_groups: the existing endpoints' groups are unknown here",
        ),
        (
            lambda s: {"vpc": imported_vpc(s), "security_groups": []},
            "security_groups is empty; pass at least one group, or omit it for a new one",
        ),
        (
            lambda s: {"vpc": imported_vpc(s), "cidr": "10.1.0.0/16"},
            "cidr '10.1.0.0/16' applies to a new VPC only; remove it when passing vpc",
        ),
    ],
)
def test_invalid_arguments_are_named_with_their_fix(arguments, message):
    stack = cdk.Stack(cdk.App(), "Bad", env=ENV)
    with pytest.raises(ConfigurationError) as caught:
        PrivateNetwork(stack, "Network", **arguments(stack))
    assert caught.value.location == "Bad/Network"
    assert any(p.startswith(message) for p in caught.value.problems), caught.value.problems


def test_public_subnets_and_a_single_zone_are_refused():
    stack = cdk.Stack(cdk.App(), "Public", env=ENV)
    vpc = ec2.Vpc.from_vpc_attributes(
        stack, "Vpc", vpc_id="vpc-0123456789abcdef0", availability_zones=["eu-west-1a"], public_subnet_ids=[SUBNETS[0]]
    )
    with pytest.raises(ConfigurationError) as caught:
        PrivateNetwork(stack, "Network", vpc=vpc, vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC))
    assert caught.value.problems == (
        f"subnet {SUBNETS[0]} is public (routed to an internet gateway); select private subnets with vpc_subnets",
        "the selected subnets are in 1 Availability Zone(s) (eu-west-1a); select private subnets in at least two "
        "zones, so jobs and endpoints survive a zone outage",
    )


def test_another_custom_resource_function_in_the_stack_is_refused():
    stack = cdk.Stack(cdk.App(), "Shared")
    cr.AwsCustomResource(
        stack,
        "Other",
        on_create=cr.AwsSdkCall(
            service="STS", action="getCallerIdentity", physical_resource_id=cr.PhysicalResourceId.of("x")
        ),
        policy=cr.AwsCustomResourcePolicy.from_sdk_calls(resources=cr.AwsCustomResourcePolicy.ANY_RESOURCE),
        install_latest_aws_sdk=False,
    )
    with pytest.raises(ConfigurationError, match=r"put the PrivateNetwork in a stack of its own"):
        PrivateNetwork(stack, "Network")
