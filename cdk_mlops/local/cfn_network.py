"""The network: VPCs, subnets, route tables, security groups, VPC endpoints and flow logs on moto's EC2.

These models replace moto's (which ignored DNS settings, resolved no subnet attribute, deleted
no route table or flow log, had no egress rule type and ignored inline egress and prefix
lists), so a VPC stack deploys, answers EC2's describe calls as AWS would, and can be deleted:

* ``Ref`` and every ``Fn::GetAtt`` attribute CloudFormation documents; ``Tags``; updates in
  place unless a create-only property (from the type's resource schema) changes.
* EC2's own checks: a subnet takes one route table association; a security group rule needs
  exactly one peer and a prefix list must exist; an endpoint's service must offer its type in
  the region, and private DNS needs DNS support and host names in the VPC; on delete, a VPC
  with security groups or endpoints, a subnet with network interfaces, a group referenced by
  another group's rule or an endpoint, and a route table an endpoint uses are refused until
  they go first.

:func:`lambda_vpc_config`, which :func:`cdk_mlops.local.cfn_shim.install` puts in place of
moto's, reports a Lambda function's ``VpcConfig`` with the VPC of its subnets.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

from moto.awslambda.models import LambdaFunction
from moto.core.common_models import CloudFormationModel
from moto.ec2.exceptions import DependencyViolationError, EC2ClientError
from moto.ec2.models import ec2_backends
from moto.ec2.models.core import TaggedEC2Resource

from cdk_mlops.local.cfn_resource import Props, ShimResource, as_json, cfn_tags, is_true

_original_lambda_vpc_config: property = LambdaFunction.vpc_config  # type: ignore[assignment]


def _ec2(account_id: str, region_name: str) -> Any:
    return ec2_backends[account_id][region_name]


@contextlib.contextmanager
def _deleted_if_gone() -> Iterator[None]:
    """Let an EC2 ``*.NotFound`` error pass: CloudFormation counts a resource already gone as deleted."""
    try:
        yield
    except EC2ClientError as error:
        if not str(getattr(error, "code", "")).endswith(".NotFound"):
            raise


def _live_endpoints(backend: Any) -> list[Any]:
    """The VPC endpoints not deleted (EC2 lists deleted ones for a while, in state ``deleted``)."""
    return [e for e in backend.vpc_end_points.values() if e.state != "deleted"]


class _Ec2Resource(ShimResource, TaggedEC2Resource):
    """Base of the EC2 models that carry ``Tags`` (and the stack's ``aws:cloudformation:*`` tags).

    A model lists in ``CREATE_ONLY`` the properties whose change replaces the resource (from its
    resource schema) and applies the others in :meth:`update`, on create and on update.
    """

    CREATE_ONLY: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self, physical_id: str, account: str, region: str, p: Props, attributes: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(physical_id, attributes)
        self.id = physical_id
        self.ec2_backend = _ec2(account, region)
        self.properties: Props = dict(p)
        if cfn_tags(p):
            self.ec2_backend.create_tags([self.id], {t["Key"]: t["Value"] for t in cfn_tags(p)})

    def update(self, p: Props) -> None:
        """Apply the properties that change in place. Default: none (``Tags`` are the base's)."""

    def modify(self, name: str, p: Props, account: str, region: str) -> ShimResource:
        if any(p.get(key) != self.properties.get(key) for key in self.CREATE_ONLY):
            return super().modify(name, p, account, region)
        self.update(p)
        new_tags = {t["Key"]: t["Value"] for t in cfn_tags(p)}
        removed = [t["Key"] for t in cfn_tags(self.properties) if t["Key"] not in new_tags]
        self.ec2_backend.delete_tag_keys([self.id], removed)
        if new_tags:
            self.ec2_backend.create_tags([self.id], new_tags)
        self.properties = dict(p)
        return self


class Ec2Vpc(_Ec2Resource, CloudFormationModel):
    """``AWS::EC2::VPC``: ``Ref`` is the VPC id; DNS support and host names as the template says."""

    TYPE = "AWS::EC2::VPC"
    ATTRIBUTES = frozenset(
        {"CidrBlock", "CidrBlockAssociations", "DefaultNetworkAcl", "DefaultSecurityGroup", "Ipv6CidrBlocks", "VpcId"}
    )
    CREATE_ONLY = frozenset({"CidrBlock", "Ipv4IpamPoolId", "Ipv4NetmaskLength"})

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> Ec2Vpc:
        if "CidrBlock" not in p:
            raise ValueError("AWS::EC2::VPC needs CidrBlock locally: IPAM pools are not emulated")
        backend = _ec2(account, region)
        vpc = backend.create_vpc(cidr_block=p["CidrBlock"], instance_tenancy=p.get("InstanceTenancy", "default"))
        acl = backend.describe_network_acls(filters={"vpc-id": [vpc.id], "default": ["true"]})
        attributes = {
            "CidrBlock": vpc.cidr_block,
            "CidrBlockAssociations": [a["association_id"] for a in vpc.cidr_block_association_set],
            "DefaultNetworkAcl": acl[0].id if acl else "",
            "DefaultSecurityGroup": backend.get_default_security_group(vpc.id).id,
            "Ipv6CidrBlocks": [],
            "VpcId": vpc.id,
        }
        resource = cls(vpc.id, account, region, p, attributes)
        resource.update(p)
        return resource

    def update(self, p: Props) -> None:
        # CloudFormation's defaults: DNS support on, DNS host names off.
        self.ec2_backend.modify_vpc_attribute(self.id, "enable_dns_support", is_true(p.get("EnableDnsSupport", True)))
        self.ec2_backend.modify_vpc_attribute(
            self.id, "enable_dns_hostnames", is_true(p.get("EnableDnsHostnames", False))
        )

    def delete(self, account_id: str, region_name: str) -> None:
        backend = _ec2(account_id, region_name)
        groups = [g.id for g in backend.describe_security_groups(filters={"vpc-id": [self.id]}) if not g.is_default]
        endpoints = [e.id for e in _live_endpoints(backend) if e.vpc_id == self.id]
        if groups or endpoints:  # moto would delete the VPC under them
            raise DependencyViolationError(f"The vpc '{self.id}' has dependencies and cannot be deleted.")
        with _deleted_if_gone():
            backend.delete_vpc(self.id)


class Ec2Subnet(_Ec2Resource, CloudFormationModel):
    """``AWS::EC2::Subnet``: ``Ref`` is the subnet id."""

    TYPE = "AWS::EC2::Subnet"
    ATTRIBUTES = frozenset(
        {
            "AvailabilityZone",
            "AvailabilityZoneId",
            "CidrBlock",
            "Ipv6CidrBlocks",
            "NetworkAclAssociationId",
            "SubnetId",
            "VpcId",
        }
    )
    CREATE_ONLY = frozenset({"VpcId", "AvailabilityZone", "AvailabilityZoneId", "CidrBlock", "Ipv6Native"})

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> Ec2Subnet:
        backend = _ec2(account, region)
        subnet = backend.create_subnet(
            vpc_id=p["VpcId"],
            cidr_block=p["CidrBlock"],
            availability_zone=p.get("AvailabilityZone"),
            availability_zone_id=p.get("AvailabilityZoneId"),
        )
        acl_associations = [
            association.id
            for acl in backend.network_acls.values()
            for association in acl.associations
            if association.subnet_id == subnet.id
        ]
        attributes = {
            "AvailabilityZone": subnet.availability_zone,
            "AvailabilityZoneId": subnet.availability_zone_id,
            "CidrBlock": subnet.cidr_block,
            "Ipv6CidrBlocks": [],
            "NetworkAclAssociationId": acl_associations[0] if acl_associations else "",
            "SubnetId": subnet.id,
            "VpcId": subnet.vpc_id,
        }
        resource = cls(subnet.id, account, region, p, attributes)
        resource.update(p)
        return resource

    def update(self, p: Props) -> None:
        self.ec2_backend.modify_subnet_attribute(
            self.id, "map_public_ip_on_launch", is_true(p.get("MapPublicIpOnLaunch", False))
        )

    def delete(self, account_id: str, region_name: str) -> None:
        backend = _ec2(account_id, region_name)
        interfaces = [eni.id for eni in backend.get_all_network_interfaces() if eni.subnet.id == self.id]
        if interfaces:  # interface endpoints' network interfaces, as in EC2
            raise DependencyViolationError(f"The subnet '{self.id}' has dependencies and cannot be deleted.")
        with _deleted_if_gone():
            backend.delete_subnet(self.id)


class Ec2RouteTable(_Ec2Resource, CloudFormationModel):
    """``AWS::EC2::RouteTable``: ``Ref`` is the route table id (moto's model never deleted it)."""

    TYPE = "AWS::EC2::RouteTable"
    ATTRIBUTES = frozenset({"RouteTableId"})
    CREATE_ONLY = frozenset({"VpcId"})

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> Ec2RouteTable:
        table = _ec2(account, region).create_route_table(vpc_id=p["VpcId"])
        return cls(table.id, account, region, p, {"RouteTableId": table.id})

    def delete(self, account_id: str, region_name: str) -> None:
        backend = _ec2(account_id, region_name)
        if any(self.id in (e.route_table_ids or []) for e in _live_endpoints(backend)):
            # The endpoint references the table, so CloudFormation deletes it first; moto's delete
            # tries resources in any order and retries those that refuse.
            raise DependencyViolationError(f"The routeTable '{self.id}' has dependencies and cannot be deleted.")
        with _deleted_if_gone():
            backend.delete_route_table(self.id)


class Ec2SubnetRouteTableAssociation(ShimResource, CloudFormationModel):
    """``AWS::EC2::SubnetRouteTableAssociation``: ``Ref`` is the association id.

    moto's model only recorded the pair: the route table listed no association.
    """

    TYPE = "AWS::EC2::SubnetRouteTableAssociation"
    ATTRIBUTES = frozenset({"Id"})

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> Ec2SubnetRouteTableAssociation:
        backend = _ec2(account, region)
        associated = backend.describe_route_tables(filters={"association.subnet-id": [p["SubnetId"]]})
        if associated:
            raise EC2ClientError(
                "Resource.AlreadyAssociated",
                f"the specified association for route table {associated[0].id} conflicts with an existing association",
            )
        association_id = backend.associate_route_table(p["RouteTableId"], subnet_id=p["SubnetId"])
        return cls(association_id, {"Id": association_id})

    def delete(self, account_id: str, region_name: str) -> None:
        with _deleted_if_gone():
            _ec2(account_id, region_name).disassociate_route_table(self.physical_resource_id)


def _rule_arguments(rule: Mapping[str, Any], *, egress: bool) -> dict[str, Any]:
    """moto's ``authorize_security_group_*`` arguments for one rule (inline, or a rule resource's properties).

    Raises:
        ValueError: unless the rule names exactly one peer: EC2 takes one per rule, and a peer that
            resolved to nothing locally (an unemulated ``Fn::GetAtt``) would otherwise pass unseen.
    """
    extra = {"Description": rule["Description"]} if rule.get("Description") else {}
    group_key, prefix_key = (
        ("DestinationSecurityGroupId", "DestinationPrefixListId")
        if egress
        else ("SourceSecurityGroupId", "SourcePrefixListId")
    )
    ip_ranges = [{key: rule[key], **extra} for key in ("CidrIp", "CidrIpv6") if rule.get(key)]
    groups = [{"GroupId": rule[group_key], **extra}] if rule.get(group_key) else []
    if not egress and rule.get("SourceSecurityGroupName"):
        groups.append({"GroupName": rule["SourceSecurityGroupName"], **extra})
    prefix_lists = [{"PrefixListId": rule[prefix_key], **extra}] if rule.get(prefix_key) else []
    peers = len(ip_ranges) + len(groups) + len(prefix_lists)
    if peers != 1:
        kinds = f"CidrIp, CidrIpv6, {group_key}, {prefix_key}" + ("" if egress else " or SourceSecurityGroupName")
        raise ValueError(f"a security group rule needs exactly one of {kinds}; got {peers}: {dict(rule)}")
    return {
        "ip_protocol": str(rule["IpProtocol"]),
        "from_port": rule.get("FromPort"),
        "to_port": rule.get("ToPort"),
        "ip_ranges": ip_ranges,
        "source_groups": groups,
        "prefix_list_ids": prefix_lists,
    }


def _authorize(backend: Any, group_id: str, rule: Mapping[str, Any], *, egress: bool) -> list[str]:
    """Add one rule to a group, as EC2 does (a prefix list must exist); return the new rule ids."""
    arguments = _rule_arguments(rule, egress=egress)
    for prefix_list in arguments["prefix_list_ids"]:
        if prefix_list["PrefixListId"] not in backend.managed_prefix_lists:  # moto does not check
            raise EC2ClientError(
                "InvalidPrefixListID.NotFound", f"The prefix list ID '{prefix_list['PrefixListId']}' does not exist"
            )
    authorize = backend.authorize_security_group_egress if egress else backend.authorize_security_group_ingress
    rules, _ = authorize(group_name_or_id=group_id, **arguments)
    return [r.id for r in rules]


def _revoke(backend: Any, group_id: str, rule_ids: Iterable[str], *, egress: bool) -> None:
    ids = list(rule_ids)
    if ids:
        revoke = backend.revoke_security_group_egress if egress else backend.revoke_security_group_ingress
        revoke(group_id, None, None, None, [], security_rule_ids=ids)


def _revoke_allow_all_egress(backend: Any, group_id: str) -> None:
    """Remove the allow-all egress rules a new VPC group starts with."""
    group = backend.get_security_group_from_id(group_id)
    allow_all = [
        r.id
        for r in group.egress_rules
        if r.ip_protocol == "-1" and (r.ip_range.get("CidrIp") == "0.0.0.0/0" or r.ip_range.get("CidrIpv6") == "::/0")
    ]
    _revoke(backend, group_id, allow_all, egress=True)


class Ec2SecurityGroup(_Ec2Resource, CloudFormationModel):
    """``AWS::EC2::SecurityGroup``: ``Ref`` is the group id (its name without ``VpcId``).

    Inline ``SecurityGroupIngress`` and ``SecurityGroupEgress`` rules with every peer kind, as
    CloudFormation applies them: with egress rules in the template the group has those only;
    without, it keeps the allow-all egress EC2 gives a new group (moto's model ignored inline
    egress, prefix lists and descriptions). Updates replace the inline rules in place.
    """

    TYPE = "AWS::EC2::SecurityGroup"
    NAME_PROPERTY = "GroupName"
    ATTRIBUTES = frozenset({"GroupId", "Id", "VpcId"})
    CREATE_ONLY = frozenset({"GroupDescription", "GroupName", "VpcId"})

    def __init__(self, group: Any, account: str, region: str, p: Props, physical_id: str) -> None:
        attributes = {"GroupId": group.id, "Id": group.id, "VpcId": group.vpc_id}
        super().__init__(group.id, account, region, p, attributes)
        self.physical_resource_id = physical_id
        self.inline: list[tuple[str, bool]] = []  # (rule id, egress) of the template's own rules

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> Ec2SecurityGroup:
        group = _ec2(account, region).create_security_group(
            name=name, description=p["GroupDescription"], vpc_id=p.get("VpcId")
        )
        resource = cls(group, account, region, p, group.id if p.get("VpcId") else name)
        resource.update(p)
        return resource

    def update(self, p: Props) -> None:
        backend = self.ec2_backend
        for egress in (False, True):
            _revoke(backend, self.id, [rule for rule, e in self.inline if e is egress], egress=egress)
        egress_rules = p.get("SecurityGroupEgress") or []
        if egress_rules:
            _revoke_allow_all_egress(backend, self.id)
        self.inline = [
            (rule_id, egress)
            for egress, rules in ((False, p.get("SecurityGroupIngress") or []), (True, egress_rules))
            for rule in rules
            for rule_id in _authorize(backend, self.id, rule, egress=egress)
        ]

    def delete(self, account_id: str, region_name: str) -> None:
        backend = _ec2(account_id, region_name)
        referenced = [
            g.id
            for g in backend.describe_security_groups()
            if g.id != self.id
            and any(r.source_group.get("GroupId") == self.id for r in [*g.ingress_rules, *g.egress_rules])
        ]
        endpoints = [e.id for e in _live_endpoints(backend) if self.id in e.security_group_ids]
        if referenced or endpoints:  # as in EC2; moto would delete it
            raise DependencyViolationError(
                f"resource {self.id} has a dependent object ({', '.join([*referenced, *endpoints])})"
            )
        with _deleted_if_gone():
            backend.delete_security_group(group_id=self.id)


class _SecurityGroupRule(ShimResource):
    """A rule resource: ``Ref`` and ``Id`` are the rule id (``sgr-...``); any change replaces it."""

    EGRESS: ClassVar[bool]
    ATTRIBUTES = frozenset({"Id"})

    def __init__(self, rule_id: str, group_id: str) -> None:
        super().__init__(rule_id, {"Id": rule_id})
        self.group_id = group_id

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> _SecurityGroupRule:
        backend = _ec2(account, region)
        group = backend.get_security_group_by_name_or_id(p.get("GroupId") or p["GroupName"])
        if group is None:
            raise EC2ClientError("InvalidGroup.NotFound", f"The security group '{p.get('GroupId')}' does not exist")
        if cls.EGRESS:
            # CloudFormation removes the allow-all egress of the group before adding a rule resource.
            _revoke_allow_all_egress(backend, group.id)
        [rule_id] = _authorize(backend, group.id, p, egress=cls.EGRESS)
        return cls(rule_id, group.id)

    def delete(self, account_id: str, region_name: str) -> None:
        with _deleted_if_gone():
            _revoke(_ec2(account_id, region_name), self.group_id, [self.physical_resource_id], egress=self.EGRESS)


class Ec2SecurityGroupIngress(_SecurityGroupRule, CloudFormationModel):
    """``AWS::EC2::SecurityGroupIngress``, from a CIDR, a security group or a prefix list."""

    TYPE = "AWS::EC2::SecurityGroupIngress"
    EGRESS = False


class Ec2SecurityGroupEgress(_SecurityGroupRule, CloudFormationModel):
    """``AWS::EC2::SecurityGroupEgress``, to a CIDR, a security group or a prefix list (moto has no model)."""

    TYPE = "AWS::EC2::SecurityGroupEgress"
    EGRESS = True


def _check_endpoint_service(backend: Any, service_name: str, endpoint_type: str, region: str) -> None:
    """EC2's checks: the service offers endpoints of that type in the region (moto checks neither)."""
    details = backend.describe_vpc_endpoint_services(
        service_names=[service_name], filters=[], max_results=1000, next_token=None, region=region
    )["servicesDetails"]
    offered = {t["ServiceType"] for d in details for t in d["ServiceType"]}
    if endpoint_type not in offered:
        raise EC2ClientError(
            "InvalidParameter",
            f"The Vpc Endpoint Service '{service_name}' does not support endpoint type {endpoint_type} "
            f"(it offers {', '.join(sorted(offered))})",
        )


def _private_dns(backend: Any, vpc_id: str, endpoint_type: str, p: Props) -> bool:
    """``PrivateDnsEnabled`` (CloudFormation's default: false), which EC2 allows only with DNS on in the VPC."""
    if endpoint_type != "Interface" or not is_true(p.get("PrivateDnsEnabled", False)):
        return False
    vpc = backend.get_vpc(vpc_id)
    if not (is_true(vpc.enable_dns_support) and is_true(vpc.enable_dns_hostnames)):
        raise EC2ClientError(
            "InvalidParameter",
            f"Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC attributes set to "
            f"true for {vpc_id}",
        )
    return True


class Ec2VpcEndpoint(_Ec2Resource, CloudFormationModel):
    """``AWS::EC2::VPCEndpoint``, gateway or interface: ``Ref`` is the endpoint id.

    EC2's checks apply: the service offers the endpoint type in the region, private DNS needs
    DNS support and host names on the VPC; an interface endpoint without groups gets the VPC's
    default group. The policy is stored as JSON; a gateway endpoint adds its prefix list route
    to its route tables, an interface endpoint a network interface per subnet. Changed subnets
    or route tables replace the endpoint (AWS modifies it in place; only the id differs).
    """

    TYPE = "AWS::EC2::VPCEndpoint"
    ATTRIBUTES = frozenset({"CreationTimestamp", "DnsEntries", "Id", "NetworkInterfaceIds"})
    CREATE_ONLY = frozenset({"ServiceName", "VpcEndpointType", "VpcId", "SubnetIds", "RouteTableIds"})

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> Ec2VpcEndpoint:
        backend = _ec2(account, region)
        endpoint_type = p.get("VpcEndpointType", "Gateway")
        _check_endpoint_service(backend, p["ServiceName"], endpoint_type, region)
        private_dns = _private_dns(backend, p["VpcId"], endpoint_type, p)
        groups = list(p.get("SecurityGroupIds") or [])
        if endpoint_type == "Interface" and not groups:
            groups = [backend.get_default_security_group(p["VpcId"]).id]
        endpoint = backend.create_vpc_endpoint(
            vpc_id=p["VpcId"],
            service_name=p["ServiceName"],
            endpoint_type=endpoint_type,
            policy_document=as_json(p["PolicyDocument"]) if "PolicyDocument" in p else None,
            route_table_ids=list(p.get("RouteTableIds") or []),
            subnet_ids=list(p.get("SubnetIds") or []),
            security_group_ids=groups,
            private_dns_enabled=private_dns,
        )
        attributes = {
            "CreationTimestamp": endpoint.creation_timestamp.isoformat(),
            "DnsEntries": [f"{e['hosted_zone_id']}:{e['dns_name']}" for e in endpoint.dns_entries or []],
            "Id": endpoint.id,
            "NetworkInterfaceIds": list(endpoint.network_interface_ids),
        }
        resource = cls(endpoint.id, account, region, p, attributes)
        resource.update(p)
        return resource

    def update(self, p: Props) -> None:
        endpoint = self.ec2_backend.vpc_end_points[self.id]
        if "PolicyDocument" in p:
            endpoint.policy_document = as_json(p["PolicyDocument"])
        endpoint.private_dns_enabled = _private_dns(self.ec2_backend, endpoint.vpc_id, endpoint.vpc_endpoint_type, p)
        if p.get("SecurityGroupIds"):
            endpoint.security_group_ids = list(p["SecurityGroupIds"])

    def delete(self, account_id: str, region_name: str) -> None:
        _ec2(account_id, region_name).delete_vpc_endpoints([self.id])


class Ec2FlowLog(_Ec2Resource, CloudFormationModel):
    """``AWS::EC2::FlowLog``: ``Ref`` is the flow log id; deleted with the stack (moto's model never was)."""

    TYPE = "AWS::EC2::FlowLog"
    ATTRIBUTES = frozenset({"Id"})
    CREATE_ONLY = frozenset(
        {
            "DeliverCrossAccountRole",
            "DeliverLogsPermissionArn",
            "DestinationOptions",
            "LogDestination",
            "LogDestinationType",
            "LogFormat",
            "LogGroupName",
            "MaxAggregationInterval",
            "ResourceId",
            "ResourceType",
            "TrafficType",
        }
    )

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> Ec2FlowLog:
        flow_logs, errors = _ec2(account, region).create_flow_logs(
            resource_type=p["ResourceType"],
            resource_ids=[p["ResourceId"]],
            traffic_type=p.get("TrafficType"),
            deliver_logs_permission_arn=p.get("DeliverLogsPermissionArn"),
            log_destination_type=p.get("LogDestinationType", "cloud-watch-logs"),
            log_destination=p.get("LogDestination"),
            log_group_name=p.get("LogGroupName"),
            log_format=p.get("LogFormat"),
            max_aggregation_interval=p.get("MaxAggregationInterval"),
        )
        if errors:
            raise EC2ClientError("InvalidParameter", f"flow log for {p['ResourceId']} not created: {errors}")
        return cls(flow_logs[0].id, account, region, p, {"Id": flow_logs[0].id})

    def delete(self, account_id: str, region_name: str) -> None:
        with _deleted_if_gone():
            _ec2(account_id, region_name).delete_flow_logs([self.id])


def lambda_vpc_config(function: Any) -> dict[str, Any] | None:
    """``VpcConfig`` of a Lambda function with the VPC of its subnets (moto answers ``vpc-123abc``)."""
    config: dict[str, Any] | None = _original_lambda_vpc_config.__get__(function, type(function))
    subnets = (config or {}).get("SubnetIds") or []
    if config and subnets:
        with contextlib.suppress(EC2ClientError):
            config["VpcId"] = _ec2(function.account_id, function.region).get_subnet(subnets[0]).vpc_id
    return config
