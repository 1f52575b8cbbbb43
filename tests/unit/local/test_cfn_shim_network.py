"""The CloudFormation shim's network types and ``AwsCustomResource``, created, updated and deleted through moto.

Each template is the smallest that shows a type as the CDK's ``ec2.Vpc`` (isolated subnets, no
NAT), its endpoints and security groups render it; the assertions read the result through the
EC2 (or other service) API, as a deployed application would see it.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cdk_mlops.local import cfn_shim
from cdk_mlops.local.aws_sdk_call import PROVIDER_ID, SdkCallError
from tests.unit.local.test_cfn_shim import REGION, aws, client, create, delete, physical_ids, template, update

__all__ = ["aws"]  # the autouse fixture: moto in-process, with the shim installed


@pytest.fixture(autouse=True)
def no_default_images(monkeypatch: pytest.MonkeyPatch) -> None:
    # moto loads thousands of AMIs into each new EC2 backend (about a second); no test here uses one.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


NO_TRAFFIC = {
    "CidrIp": "255.255.255.255/32",
    "Description": "Disallow all traffic",
    "FromPort": 252,
    "IpProtocol": "icmp",
    "ToPort": 86,
}
PROVIDER_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:Net-{PROVIDER_ID}-AbCdEf"
S3_PREFIX_LIST_LOOKUP: dict[str, Any] = {
    "service": "EC2",
    "action": "describeManagedPrefixLists",
    "parameters": {"Filters": [{"Name": "prefix-list-name", "Values": [f"com.amazonaws.{REGION}.s3"]}]},
    "physicalResourceId": {"id": "s3-prefix-list"},
    "outputPaths": ["PrefixLists.0.PrefixListId"],
}


def vpc(**properties: Any) -> dict[str, Any]:
    defaults = {"CidrBlock": "10.0.0.0/16", "EnableDnsHostnames": True, "EnableDnsSupport": True}
    return {"Type": "AWS::EC2::VPC", "Properties": {**defaults, **properties}}


def subnet(cidr: str, zone: str) -> dict[str, Any]:
    properties = {"VpcId": {"Ref": "Vpc"}, "CidrBlock": cidr, "AvailabilityZone": zone, "MapPublicIpOnLaunch": False}
    return {"Type": "AWS::EC2::Subnet", "Properties": properties}


def group(**properties: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::EC2::SecurityGroup",
        "Properties": {"GroupDescription": "g", "VpcId": {"Ref": "Vpc"}, **properties},
    }


def rule(resource_type: str, **properties: Any) -> dict[str, Any]:
    return {"Type": f"AWS::EC2::SecurityGroup{resource_type}", "Properties": {"IpProtocol": "tcp", **properties}}


def group_id(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "GroupId"]}


def sdk_resource(resource_type: str = "Custom::AWS", **calls: dict[str, Any]) -> dict[str, Any]:
    """An ``AwsCustomResource`` as the CDK renders it: each call a JSON string."""
    properties: dict[str, Any] = {"ServiceToken": PROVIDER_ARN, "InstallLatestAwsSdk": False}
    properties.update({request: json.dumps(call) for request, call in calls.items()})
    return {"Type": resource_type, "Properties": properties}


def network(**resources: Any) -> dict[str, Any]:
    """A VPC with two isolated subnets, each with its own route table."""
    base: dict[str, Any] = {"Vpc": vpc()}
    for index, zone in enumerate(("a", "b")):
        base[f"Subnet{index}"] = subnet(f"10.0.{index}.0/24", f"{REGION}{zone}")
        base[f"Routes{index}"] = {"Type": "AWS::EC2::RouteTable", "Properties": {"VpcId": {"Ref": "Vpc"}}}
        base[f"Association{index}"] = {
            "Type": "AWS::EC2::SubnetRouteTableAssociation",
            "Properties": {"RouteTableId": {"Ref": f"Routes{index}"}, "SubnetId": {"Ref": f"Subnet{index}"}},
        }
    return {**base, **resources}


def managed_prefix_list(service: str) -> str:
    lists = client("ec2").describe_managed_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": [f"com.amazonaws.{REGION}.{service}"]}]
    )["PrefixLists"]
    return str(lists[0]["PrefixListId"])


def egress(group_physical_id: str) -> list[dict[str, Any]]:
    return list(
        client("ec2").describe_security_groups(GroupIds=[group_physical_id])["SecurityGroups"][0]["IpPermissionsEgress"]
    )


def ingress(group_physical_id: str) -> list[dict[str, Any]]:
    return list(
        client("ec2").describe_security_groups(GroupIds=[group_physical_id])["SecurityGroups"][0]["IpPermissions"]
    )


def creation_fails(name: str, resources: dict[str, Any], match: str) -> None:
    """Creating the stack fails, naming the cause."""
    with pytest.raises((ClientError, ValueError, RuntimeError), match=match):
        create(name, resources)


# --- VPC, subnets, route tables ------------------------------------------------------------------------


def test_vpc_has_dns_settings_and_attributes_as_cloudformation_documents():
    outputs = create(
        "Net",
        {"Vpc": vpc()},
        {
            "Id": {"Value": {"Ref": "Vpc"}},
            "Cidr": {"Value": {"Fn::GetAtt": ["Vpc", "CidrBlock"]}},
            "DefaultGroup": {"Value": {"Fn::GetAtt": ["Vpc", "DefaultSecurityGroup"]}},
            "DefaultAcl": {"Value": {"Fn::GetAtt": ["Vpc", "DefaultNetworkAcl"]}},
        },
    )
    ec2 = client("ec2")
    vpc_id = outputs["Id"]
    assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]
    assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsSupport")["EnableDnsSupport"]["Value"]
    assert outputs["Cidr"] == "10.0.0.0/16"
    default_group = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]
    assert [g["GroupId"] for g in default_group if g["GroupName"] == "default"] == [outputs["DefaultGroup"]]
    acls = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["NetworkAcls"]
    assert [a["NetworkAclId"] for a in acls if a["IsDefault"]] == [outputs["DefaultAcl"]]


def test_vpc_dns_host_names_follow_cloudformations_default_and_update_in_place():
    create("Net", {"Vpc": vpc(EnableDnsHostnames=False)})
    vpc_id = physical_ids("Net")["Vpc"]
    ec2 = client("ec2")
    assert not ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]
    update("Net", {"Vpc": vpc(EnableDnsHostnames=True, Tags=[{"Key": "team", "Value": "ml"}])})
    assert physical_ids("Net")["Vpc"] == vpc_id
    assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]
    tags = {t["Key"]: t["Value"] for t in ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["Tags"]}
    assert tags["team"] == "ml"
    assert tags["aws:cloudformation:logical-id"] == "Vpc"


def test_subnet_attributes_resolve_and_route_table_associations_are_real():
    outputs = create(
        "Net",
        network(),
        {
            "Zone": {"Value": {"Fn::GetAtt": ["Subnet0", "AvailabilityZone"]}},
            "SubnetVpc": {"Value": {"Fn::GetAtt": ["Subnet0", "VpcId"]}},
            "Association": {"Value": {"Ref": "Association0"}},
        },
    )
    ids = physical_ids("Net")
    assert outputs["Zone"] == f"{REGION}a"
    assert outputs["SubnetVpc"] == ids["Vpc"]
    table = client("ec2").describe_route_tables(RouteTableIds=[ids["Routes0"]])["RouteTables"][0]
    assert [(a["SubnetId"], a["RouteTableAssociationId"]) for a in table["Associations"]] == [
        (ids["Subnet0"], outputs["Association"])
    ]
    assert outputs["Association"].startswith("rtbassoc-")


def test_a_subnet_takes_one_route_table_association():
    resources = network(
        Again={
            "Type": "AWS::EC2::SubnetRouteTableAssociation",
            "Properties": {"RouteTableId": {"Ref": "Routes1"}, "SubnetId": {"Ref": "Subnet0"}},
            "DependsOn": ["Association0"],
        }
    )
    creation_fails("Net", resources, "AlreadyAssociated|conflicts with an existing association")


def test_deleting_the_stack_deletes_the_whole_network():
    resources = network(
        Endpoints=group(SecurityGroupEgress=[NO_TRAFFIC]),
        Jobs=group(SecurityGroupEgress=[NO_TRAFFIC]),
        JobsToEndpoints=rule(
            "Egress",
            GroupId=group_id("Jobs"),
            DestinationSecurityGroupId=group_id("Endpoints"),
            FromPort=443,
            ToPort=443,
        ),
        EndpointsFromJobs=rule(
            "Ingress", GroupId=group_id("Endpoints"), SourceSecurityGroupId=group_id("Jobs"), FromPort=443, ToPort=443
        ),
        S3={
            "Type": "AWS::EC2::VPCEndpoint",
            "Properties": {
                "VpcId": {"Ref": "Vpc"},
                "ServiceName": f"com.amazonaws.{REGION}.s3",
                "VpcEndpointType": "Gateway",
                "RouteTableIds": [{"Ref": "Routes0"}, {"Ref": "Routes1"}],
            },
        },
        Sts={
            "Type": "AWS::EC2::VPCEndpoint",
            "Properties": {
                "VpcId": {"Ref": "Vpc"},
                "ServiceName": f"com.amazonaws.{REGION}.sts",
                "VpcEndpointType": "Interface",
                "SubnetIds": [{"Ref": "Subnet0"}, {"Ref": "Subnet1"}],
                "SecurityGroupIds": [group_id("Endpoints")],
                "PrivateDnsEnabled": True,
            },
        },
        Logs={"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "flow-logs"}},
        FlowLog={
            "Type": "AWS::EC2::FlowLog",
            "Properties": {
                "ResourceId": {"Ref": "Vpc"},
                "ResourceType": "VPC",
                "TrafficType": "ALL",
                "LogDestinationType": "cloud-watch-logs",
                "LogGroupName": {"Ref": "Logs"},
                "DeliverLogsPermissionArn": "arn:aws:iam::123456789012:role/flow-logs",
            },
        },
    )
    create("Net", resources)
    ids = physical_ids("Net")
    ec2 = client("ec2")
    assert [f["FlowLogId"] for f in ec2.describe_flow_logs()["FlowLogs"]] == [ids["FlowLog"]]

    delete("Net")

    status = client("cloudformation").describe_stacks(
        StackName=client("cloudformation").list_stacks()["StackSummaries"][0]["StackId"]
    )
    assert status["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"
    assert ids["Vpc"] not in [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]]
    assert {e["State"] for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]} == {"deleted"}
    assert ec2.describe_flow_logs()["FlowLogs"] == []
    assert (
        ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [ids["Vpc"]]}])["NetworkInterfaces"] == []
    )
    assert not {ids["Jobs"], ids["Endpoints"]} & {
        g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]
    }


def test_describing_a_deleted_stack_creates_nothing_again():
    # The CLI describes a stack by its id after deleting it; its outputs must not rebuild the VPC.
    outputs = create("Net", {"Vpc": vpc()}, {"VpcId": {"Value": {"Ref": "Vpc"}}})
    stack_id = client("cloudformation").describe_stacks(StackName="Net")["Stacks"][0]["StackId"]
    delete("Net")
    described = client("cloudformation").describe_stacks(StackName=stack_id)["Stacks"][0]
    assert described["StackStatus"] == "DELETE_COMPLETE"
    assert "Outputs" not in described
    assert [v["VpcId"] for v in client("ec2").describe_vpcs()["Vpcs"] if not v["IsDefault"]] == []
    assert outputs["VpcId"].startswith("vpc-")


# --- security groups -------------------------------------------------------------------------------------


def test_a_group_without_outbound_traffic_has_only_the_no_traffic_rule():
    create("Net", network(Jobs=group(SecurityGroupEgress=[NO_TRAFFIC])))
    rules = egress(physical_ids("Net")["Jobs"])
    assert [(r["IpProtocol"], r["IpRanges"]) for r in rules] == [
        ("icmp", [{"CidrIp": "255.255.255.255/32", "Description": "Disallow all traffic"}])
    ]


def test_a_group_without_egress_rules_allows_all_outbound_traffic():
    create("Net", network(Open=group()))
    assert [(r["IpProtocol"], r["IpRanges"][0]["CidrIp"]) for r in egress(physical_ids("Net")["Open"])] == [
        ("-1", "0.0.0.0/0")
    ]


def test_egress_rule_resources_reach_a_prefix_list_and_a_group_and_replace_allow_all():
    s3 = managed_prefix_list("s3")
    outputs = create(
        "Net",
        network(
            Endpoints=group(SecurityGroupEgress=[NO_TRAFFIC]),
            Jobs=group(),
            ToS3=rule(
                "Egress",
                GroupId=group_id("Jobs"),
                DestinationPrefixListId=s3,
                FromPort=443,
                ToPort=443,
                Description="to S3",
            ),
            ToEndpoints=rule(
                "Egress",
                GroupId=group_id("Jobs"),
                DestinationSecurityGroupId=group_id("Endpoints"),
                FromPort=443,
                ToPort=443,
            ),
        ),
        {"Rule": {"Value": {"Ref": "ToS3"}}, "RuleId": {"Value": {"Fn::GetAtt": ["ToS3", "Id"]}}},
    )
    ids = physical_ids("Net")
    rules = egress(ids["Jobs"])
    assert [r["IpRanges"] for r in rules] == [[]]  # no 0.0.0.0/0 left; one permission per protocol and ports
    assert [p["PrefixListId"] for r in rules for p in r["PrefixListIds"]] == [s3]
    assert [g["GroupId"] for r in rules for g in r["UserIdGroupPairs"]] == [ids["Endpoints"]]
    assert {(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in rules} == {("tcp", 443, 443)}
    assert outputs["Rule"] == outputs["RuleId"] == ids["ToS3"]
    described = client("ec2").describe_security_group_rules(SecurityGroupRuleIds=[outputs["Rule"]])[
        "SecurityGroupRules"
    ]
    assert described[0]["IsEgress"]
    assert described[0]["PrefixListId"] == s3


def test_an_egress_rule_to_an_unknown_prefix_list_fails():
    resources = network(
        Jobs=group(),
        ToS3=rule("Egress", GroupId=group_id("Jobs"), DestinationPrefixListId="pl-00000000", FromPort=443, ToPort=443),
    )
    creation_fails("Net", resources, "pl-00000000")


def test_a_rule_without_a_peer_fails_instead_of_passing_unseen():
    resources = network(Jobs=group(), Nowhere=rule("Egress", GroupId=group_id("Jobs"), FromPort=443, ToPort=443))
    creation_fails("Net", resources, "exactly one of CidrIp, CidrIpv6, DestinationSecurityGroupId")


def test_ingress_rules_from_the_group_itself_and_from_a_prefix_list():
    dynamodb = managed_prefix_list("dynamodb")
    create(
        "Net",
        network(
            Jobs=group(
                SecurityGroupIngress=[
                    {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "SourcePrefixListId": dynamodb}
                ]
            ),
            FromItself=rule(
                "Ingress", GroupId=group_id("Jobs"), SourceSecurityGroupId=group_id("Jobs"), FromPort=0, ToPort=65535
            ),
        ),
    )
    ids = physical_ids("Net")
    rules = ingress(ids["Jobs"])
    assert [p["PrefixListId"] for r in rules for p in r["PrefixListIds"]] == [dynamodb]
    assert [(r["FromPort"], g["GroupId"]) for r in rules for g in r["UserIdGroupPairs"]] == [(0, ids["Jobs"])]
    assert ids["FromItself"].startswith("sgr-")


def test_updating_inline_rules_replaces_them_in_place():
    create("Net", network(Jobs=group(SecurityGroupEgress=[NO_TRAFFIC])))
    jobs = physical_ids("Net")["Jobs"]
    https = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "10.0.0.0/16"}
    update("Net", network(Jobs=group(SecurityGroupEgress=[https])))
    assert physical_ids("Net")["Jobs"] == jobs
    assert [(r["FromPort"], r["IpRanges"][0]["CidrIp"]) for r in egress(jobs)] == [(443, "10.0.0.0/16")]


def test_deleting_a_rule_resource_revokes_the_rule_only():
    resources = network(
        Jobs=group(SecurityGroupEgress=[NO_TRAFFIC]),
        Https=rule("Egress", GroupId=group_id("Jobs"), CidrIp="10.0.0.0/16", FromPort=443, ToPort=443),
    )
    create("Net", resources)
    jobs = physical_ids("Net")["Jobs"]
    assert len(egress(jobs)) == 2
    del resources["Https"]
    update("Net", resources)
    assert [(r["IpProtocol"], r["IpRanges"][0]["CidrIp"]) for r in egress(jobs)] == [("icmp", "255.255.255.255/32")]


# --- VPC endpoints -----------------------------------------------------------------------------------------


def endpoint(service: str, endpoint_type: str, **properties: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::EC2::VPCEndpoint",
        "Properties": {
            "VpcId": {"Ref": "Vpc"},
            "ServiceName": f"com.amazonaws.{REGION}.{service}",
            "VpcEndpointType": endpoint_type,
            **properties,
        },
    }


POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/*"}
    ],
}


def test_a_gateway_endpoint_routes_its_prefix_list_and_keeps_its_policy():
    create(
        "Net",
        network(
            S3=endpoint("s3", "Gateway", RouteTableIds=[{"Ref": "Routes0"}, {"Ref": "Routes1"}], PolicyDocument=POLICY)
        ),
    )
    ids = physical_ids("Net")
    ec2 = client("ec2")
    described = ec2.describe_vpc_endpoints(VpcEndpointIds=[ids["S3"]])["VpcEndpoints"][0]
    assert described["VpcEndpointType"] == "Gateway"
    assert json.loads(described["PolicyDocument"]) == POLICY
    assert sorted(described["RouteTableIds"]) == sorted([ids["Routes0"], ids["Routes1"]])
    for table in ec2.describe_route_tables(RouteTableIds=[ids["Routes0"], ids["Routes1"]])["RouteTables"]:
        routes = [(r.get("DestinationPrefixListId"), r.get("GatewayId")) for r in table["Routes"]]
        assert (managed_prefix_list("s3"), ids["S3"]) in routes


def test_an_interface_endpoint_has_interfaces_groups_and_private_dns():
    outputs = create(
        "Net",
        network(
            Endpoints=group(),
            Sts=endpoint(
                "sts",
                "Interface",
                SubnetIds=[{"Ref": "Subnet0"}, {"Ref": "Subnet1"}],
                SecurityGroupIds=[group_id("Endpoints")],
                PrivateDnsEnabled=True,
            ),
        ),
        {
            "Interfaces": {"Value": {"Fn::Join": [",", {"Fn::GetAtt": ["Sts", "NetworkInterfaceIds"]}]}},
            "Dns": {"Value": {"Fn::Select": [0, {"Fn::GetAtt": ["Sts", "DnsEntries"]}]}},
        },
    )
    ids = physical_ids("Net")
    described = client("ec2").describe_vpc_endpoints(VpcEndpointIds=[ids["Sts"]])["VpcEndpoints"][0]
    assert described["PrivateDnsEnabled"] is True
    assert [g["GroupId"] for g in described["Groups"]] == [ids["Endpoints"]]
    assert sorted(described["SubnetIds"]) == sorted([ids["Subnet0"], ids["Subnet1"]])
    assert outputs["Interfaces"].split(",") == described["NetworkInterfaceIds"]
    assert len(described["NetworkInterfaceIds"]) == 2
    zone, name = outputs["Dns"].split(":")
    assert (zone, name) == (described["DnsEntries"][0]["HostedZoneId"], described["DnsEntries"][0]["DnsName"])


def test_an_endpoint_policy_update_keeps_the_endpoint():
    resources = network(S3=endpoint("s3", "Gateway", RouteTableIds=[{"Ref": "Routes0"}], PolicyDocument=POLICY))
    create("Net", resources)
    s3 = physical_ids("Net")["S3"]
    narrower = {**POLICY, "Statement": [{**POLICY["Statement"][0], "Resource": "arn:aws:s3:::data/train/*"}]}
    resources["S3"]["Properties"]["PolicyDocument"] = narrower
    update("Net", resources)
    assert physical_ids("Net")["S3"] == s3
    assert (
        json.loads(client("ec2").describe_vpc_endpoints(VpcEndpointIds=[s3])["VpcEndpoints"][0]["PolicyDocument"])
        == narrower
    )


def test_an_endpoint_type_the_service_does_not_offer_fails():
    creation_fails(
        "Net",
        network(Sts=endpoint("sts", "Gateway", RouteTableIds=[{"Ref": "Routes0"}])),
        "does not support endpoint type Gateway",
    )


def test_private_dns_needs_dns_host_names_on_the_vpc():
    resources = network(Sts=endpoint("sts", "Interface", SubnetIds=[{"Ref": "Subnet0"}], PrivateDnsEnabled=True))
    resources["Vpc"] = vpc(EnableDnsHostnames=False)
    creation_fails("Net", resources, "enableDnsHostnames")


def test_an_unknown_endpoint_service_fails():
    creation_fails(
        "Net",
        network(Nothing=endpoint("no-such-service", "Interface", SubnetIds=[{"Ref": "Subnet0"}])),
        "no-such-service",
    )


# --- stacks deployed at once ------------------------------------------------------------------------------


def test_change_sets_of_one_name_belong_to_their_own_stacks():
    # The CDK CLI names every stack's change set alike and deploys independent stacks (the network
    # and the data store) at once.
    cf = client("cloudformation")
    cidrs = {"Network": "10.0.0.0/16", "Data": "10.1.0.0/16"}
    for stack, cidr in cidrs.items():
        body = template({"Vpc": vpc(CidrBlock=cidr)})
        cf.create_change_set(StackName=stack, ChangeSetName="cdk-deploy", TemplateBody=body, ChangeSetType="CREATE")
    assert cf.describe_change_set(StackName="Network", ChangeSetName="cdk-deploy")["StackName"] == "Network"
    for stack in cidrs:
        cf.execute_change_set(StackName=stack, ChangeSetName="cdk-deploy")
    deployed = {
        stack: client("ec2").describe_vpcs(VpcIds=[physical_ids(stack)["Vpc"]])["Vpcs"][0]["CidrBlock"]
        for stack in cidrs
    }
    assert deployed == cidrs
    cf.delete_change_set(StackName="Network", ChangeSetName="cdk-deploy")
    assert cf.describe_change_set(StackName="Data", ChangeSetName="cdk-deploy")["StackName"] == "Data"


def test_cloudformation_requests_run_one_at_a_time():
    # moto's CloudFormation state is not thread-safe, and the CLI sends requests for several stacks at once.
    answered = threading.Event()

    def describe() -> None:
        client("cloudformation").describe_stacks()
        answered.set()

    with cfn_shim.cloudformation_lock:
        thread = threading.Thread(target=describe)
        thread.start()
        assert not answered.wait(0.5)
    thread.join(30)
    assert answered.is_set()


# --- AwsCustomResource (Custom::AWS) ---------------------------------------------------------------------


def test_the_prefix_list_lookup_feeds_an_egress_rule():
    outputs = create(
        "Net",
        network(
            Jobs=group(),
            S3PrefixList=sdk_resource(Create=S3_PREFIX_LIST_LOOKUP, Update=S3_PREFIX_LIST_LOOKUP),
            ToS3=rule(
                "Egress",
                GroupId=group_id("Jobs"),
                DestinationPrefixListId={"Fn::GetAtt": ["S3PrefixList", "PrefixLists.0.PrefixListId"]},
                FromPort=443,
                ToPort=443,
            ),
        ),
        {"PrefixList": {"Value": {"Fn::GetAtt": ["S3PrefixList", "PrefixLists.0.PrefixListId"]}}},
    )
    ids = physical_ids("Net")
    assert outputs["PrefixList"] == managed_prefix_list("s3")
    assert ids["S3PrefixList"] == "s3-prefix-list"
    assert [p["PrefixListId"] for r in egress(ids["Jobs"]) for p in r["PrefixListIds"]] == [managed_prefix_list("s3")]


def test_a_key_outside_the_output_paths_cannot_be_read():
    resources = {"Lookup": sdk_resource(Create=S3_PREFIX_LIST_LOOKUP)}
    with pytest.raises((ClientError, SdkCallError), match=r"PrefixLists\.0\.PrefixListName.*outputPaths"):
        create("Net", resources, {"Name": {"Value": {"Fn::GetAtt": ["Lookup", "PrefixLists.0.PrefixListName"]}}})


def test_create_update_and_delete_calls_run_with_the_physical_id():
    put: dict[str, Any] = {
        "service": "SSM",
        "action": "putParameter",
        "parameters": {"Name": "/platform/network", "Value": "isolated", "Type": "String", "Overwrite": True},
        "physicalResourceId": {"id": "/platform/network"},
    }
    remove = {
        "service": "@aws-sdk/client-ssm",
        "action": "DeleteParameterCommand",
        "parameters": {"Name": "PHYSICAL:RESOURCEID:"},
    }
    create("Params", {"Parameter": sdk_resource(Create=put, Delete=remove)})
    ssm = client("ssm")
    assert ssm.get_parameter(Name="/platform/network")["Parameter"]["Value"] == "isolated"
    assert physical_ids("Params")["Parameter"] == "/platform/network"

    changed = {**put, "parameters": {**put["parameters"], "Value": "existing"}}
    update("Params", {"Parameter": sdk_resource(Create=put, Update=changed, Delete=remove)})
    assert ssm.get_parameter(Name="/platform/network")["Parameter"]["Value"] == "existing"

    delete("Params")
    with pytest.raises(ClientError, match="ParameterNotFound"):
        ssm.get_parameter(Name="/platform/network")


def test_the_physical_id_can_come_from_the_response_and_errors_can_be_ignored():
    lookup = {
        **S3_PREFIX_LIST_LOOKUP,
        "physicalResourceId": {"responsePath": "PrefixLists.0.PrefixListArn"},
        "outputPaths": None,
    }
    missing = {
        "service": "SSM",
        "action": "getParameter",
        "parameters": {"Name": "/none"},
        "ignoreErrorCodesMatching": "ParameterNotFound",
        "physicalResourceId": {"id": "none"},
    }
    outputs = create(
        "Lookups",
        {"Lookup": sdk_resource(Create=lookup), "Missing": sdk_resource(Create=missing)},
        {"Version": {"Value": {"Fn::GetAtt": ["Lookup", "apiVersion"]}}},
    )
    ids = physical_ids("Lookups")
    assert ids["Lookup"].startswith(f"arn:aws:ec2:{REGION}:")
    assert ids["Lookup"].endswith(managed_prefix_list("s3"))
    assert outputs["Version"] == "2016-11-15"
    assert ids["Missing"] == "none"


def test_a_failing_call_fails_the_resource_with_the_error():
    failing = {
        "service": "SSM",
        "action": "getParameter",
        "parameters": {"Name": "/none"},
        "physicalResourceId": {"id": "none"},
    }
    with pytest.raises((ClientError, SdkCallError), match=r"SSM\.getParameter failed.*ParameterNotFound"):
        create("Lookups", {"Missing": sdk_resource(Create=failing)})


def test_another_type_with_the_aws_custom_resource_provider_is_emulated_too():
    outputs = create(
        "Net",
        {"Lookup": sdk_resource("Custom::PrefixListLookup", Create=S3_PREFIX_LIST_LOOKUP)},
        {"PrefixList": {"Value": {"Fn::GetAtt": ["Lookup", "PrefixLists.0.PrefixListId"]}}},
    )
    assert outputs["PrefixList"] == managed_prefix_list("s3")
    assert "Custom::PrefixListLookup" not in cfn_shim.unemulated_custom_resources()


# --- Lambda in a VPC ---------------------------------------------------------------------------------------


def test_a_function_in_the_vpc_reports_the_vpc_of_its_subnets():
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    function = {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "FunctionName": "retrain",
            "Runtime": "python3.12",
            "Handler": "index.handler",
            "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            "Code": {"ZipFile": "def handler(event, context):\n    return event\n"},
            "VpcConfig": {
                "SubnetIds": [{"Ref": "Subnet0"}, {"Ref": "Subnet1"}],
                "SecurityGroupIds": [group_id("Jobs")],
            },
        },
    }
    role = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust}}
    create("Net", network(Jobs=group(SecurityGroupEgress=[NO_TRAFFIC]), Role=role, Function=function))
    ids = physical_ids("Net")
    config = client("lambda").get_function_configuration(FunctionName="retrain")["VpcConfig"]
    assert config["VpcId"] == ids["Vpc"]
    assert sorted(config["SubnetIds"]) == sorted([ids["Subnet0"], ids["Subnet1"]])
    assert config["SecurityGroupIds"] == [ids["Jobs"]]
