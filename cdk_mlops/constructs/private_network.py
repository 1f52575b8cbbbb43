"""A private network for the platform's jobs and functions: a VPC with no route to the internet.

Cost: the S3 and DynamoDB gateway endpoints are free. Each interface endpoint is billed per
Availability Zone and hour it is provisioned in, plus per GB it processes (AWS PrivateLink
pricing); the README's "What a private prod costs" gives the monthly figure of the defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from aws_cdk import Annotations, Aws, RemovalPolicy, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from cdk_mlops.config import NetworkConfig
from cdk_mlops.constructs.common import (
    GUARDRAILS,
    acknowledge,
    depend_on_role_policy,
    iam5_findings,
    select_subnets,
)
from cdk_mlops.constructs.props import checked_props
from cdk_mlops.errors import ConfigurationError, raise_if_any

#: Every AWS API in the VPC is reached over HTTPS.
HTTPS = ec2.Port.tcp(443)
#: The IPv4 range of a VPC the construct creates.
_DEFAULT_CIDR = "10.0.0.0/16"


@dataclass(frozen=True)
class EndpointService:
    """An AWS service the jobs and functions in the VPC reach through a VPC endpoint.

    Attributes:
        name: The endpoint service's name after ``com.amazonaws.<region>.`` (``sagemaker.api``).
        service: The service as aws-cdk-lib names it (partition-specific prefixes included).
        clients: The boto3 client names whose calls go through the endpoint.
        callers: Who calls the service from inside the VPC, and for what.
        without_policy: Why the endpoint has no endpoint policy, for a service that does not
            support endpoint policies. Default: - None; the endpoint gets the identity perimeter.
    """

    name: str
    service: ec2.IInterfaceVpcEndpointService | ec2.IGatewayVpcEndpointService
    clients: tuple[str, ...]
    callers: str
    without_policy: str | None = None


#: Gateway endpoints (free): a route in each subnet's route table to the service's prefix list.
GATEWAY_ENDPOINTS: Final[tuple[EndpointService, ...]] = (
    EndpointService(
        "s3",
        ec2.GatewayVpcEndpointAwsService.S3,
        ("s3",),
        "every job reads and writes the data store; the retrain Lambda lists datasets and writes manifests; "
        "ECR image layers and CloudFormation's custom-resource responses are S3 objects too",
    ),
    EndpointService(
        "dynamodb",
        ec2.GatewayVpcEndpointAwsService.DYNAMODB,
        ("dynamodb",),
        "the retrain Lambda's idempotency records, lock and pending state",
    ),
)

#: Interface endpoints (billed per AZ-hour and per GB), with private DNS, so the SDKs' default
#: endpoints resolve to addresses in the VPC. Every one of these services supports endpoint
#: policies (AWS PrivateLink guide, "View endpoint policy support":
#: ``aws ec2 describe-vpc-endpoint-services --query 'ServiceDetails[].VpcEndpointPolicySupported'``);
#: a service that does not would say why in ``without_policy``.
INTERFACE_ENDPOINTS: Final[tuple[EndpointService, ...]] = (
    EndpointService(
        "sagemaker.api",
        ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
        ("sagemaker",),
        "the retrain Lambda starts pipelines and reads the model registry; the Track step describes its "
        "training job; Clarify jobs create and delete their shadow endpoint",
    ),
    EndpointService(
        "sagemaker.runtime",
        ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME,
        ("sagemaker-runtime",),
        "Clarify jobs invoke the model they explain",
    ),
    EndpointService(
        "sts",
        ec2.InterfaceVpcEndpointAwsService.STS,
        ("sts",),
        "SDKs in job containers resolve the caller and assume roles (regional STS)",
    ),
    EndpointService(
        "logs",
        ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
        ("logs",),
        "job and model containers write CloudWatch Logs",
    ),
    EndpointService(
        "monitoring",
        ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
        ("cloudwatch",),
        "Model Monitor jobs publish their metrics to CloudWatch",
    ),
    EndpointService(
        "ecr.api",
        ec2.InterfaceVpcEndpointAwsService.ECR,
        ("ecr",),
        "images pulled from inside the VPC: authorization and manifests",
    ),
    EndpointService(
        "ecr.dkr",
        ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
        (),
        "images pulled from inside the VPC: the Docker registry API (the layers come through S3)",
    ),
    EndpointService(
        "kms",
        ec2.InterfaceVpcEndpointAwsService.KMS,
        ("kms",),
        "jobs encrypt their outputs with the data store's key",
    ),
    EndpointService(
        "sqs",
        ec2.InterfaceVpcEndpointAwsService.SQS,
        ("sqs",),
        "the retrain Lambda schedules delayed re-checks on its queue",
    ),
    EndpointService(
        "events",
        ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE,
        ("events",),
        "events put on the default bus from the VPC (the Custom Event Bus - Classic endpoint)",
    ),
)

#: The EC2 API: created only where this construct looks the gateway prefix lists up (its own
#: security group for the workloads), because that lookup runs in the VPC too.
PREFIX_LIST_LOOKUP_ENDPOINT: Final = EndpointService(
    "ec2",
    ec2.InterfaceVpcEndpointAwsService.EC2,
    ("ec2",),
    "the deploy-time lookup of the S3 and DynamoDB prefix lists (DescribeManagedPrefixLists)",
)

#: boto3 clients that code in the VPC calls without an endpoint of this construct, with the reason.
#: Empty: every service the platform's jobs and functions call has an endpoint above
#: (``tests/contracts/test_vpc_endpoints.py`` keeps it so).
SERVICES_WITHOUT_ENDPOINT: Final[dict[str, str]] = {}


def endpoint_services() -> tuple[EndpointService, ...]:
    """Every endpoint the construct creates by default, gateway endpoints first."""
    return (*GATEWAY_ENDPOINTS, *INTERFACE_ENDPOINTS, PREFIX_LIST_LOOKUP_ENDPOINT)


class PrivateNetwork(Construct):
    """A VPC with no route to the internet, the endpoints of every AWS API the platform calls, and its security groups.

    By default it creates an isolated VPC: private subnets in two Availability Zones, no NAT
    or internet gateway, and a flow log of all traffic to a KMS-encrypted log group. Given
    ``vpc`` (an existing VPC, e.g. ``ec2.Vpc.from_vpc_attributes`` from ids, never a lookup),
    it adds the endpoints and groups to that one.

    Endpoints: gateway endpoints for S3 and DynamoDB (free) and interface endpoints with private
    DNS for the SageMaker API and runtime, STS, CloudWatch Logs and metrics, ECR (API and Docker),
    KMS, SQS and EventBridge (see :data:`INTERFACE_ENDPOINTS`; each is billed per AZ-hour and per
    GB). Every endpoint policy is an identity perimeter: only principals of this account may use
    it; the S3 policy also lets ECR's presigned layer downloads and CloudFormation's
    custom-resource responses through.

    Security groups: the workloads' group (SageMaker jobs, the endpoint, monitors, Lambda
    functions) accepts traffic only from itself, which multi-instance training and processing
    jobs need between their instances, and sends only that and HTTPS to the interface
    endpoints' group and to the S3 and DynamoDB prefix lists. The endpoints' group accepts
    HTTPS only from the workloads. The prefix lists' ids are not CloudFormation attributes, so
    an ``AwsCustomResource`` in the VPC looks them up at deploy time (``DescribeManagedPrefixLists``,
    through an EC2 interface endpoint); its function answers CloudFormation through S3 before
    the S3 prefix list is known, so it has a group of its own with outbound HTTPS to any
    address, which in the isolated VPC reaches only the endpoints.

    Place it in a stack of its own (as :class:`~cdk_mlops.stacks.network_stack.NetworkStack`
    does): ``AwsCustomResource`` shares one function per stack. In a stack with a concrete
    account and region, ``ec2.Vpc`` reads ``Stack.availability_zones``, which aws-cdk-lib looks
    up with AWS credentials at synth; ``NetworkStack`` overrides it with ``Fn::GetAZs``.

    Example::

        network = PrivateNetwork(self, "Network")
        TrainingPipeline(self, "Training", data_store=store, dataset="churn", **placement(network))

    Attributes:
        vpc: The VPC.
        vpc_subnets: The private subnets the workloads and interface endpoints use.
        security_groups: The workloads' groups: pass them to every job, endpoint and function.
        security_group: The first of ``security_groups`` (the one created, unless groups were given).
        endpoint_security_group: The interface endpoints' group, or None without ``create_endpoints``.
        endpoints: Every endpoint by service name (``s3``, ``sagemaker.api``, ...).
        prefix_list_ids: The S3 and DynamoDB prefix-list ids (deploy-time tokens), when looked up.
        lookup_security_group: The prefix-list lookup function's group, when looked up.
        flow_log: The VPC's flow log, for a VPC this construct creates.
        flow_log_group: Where the flow log writes, for a VPC this construct creates.
        encryption_key: Encrypts the flow log group, for a VPC this construct creates.
    """

    @checked_props
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        create_endpoints: bool = True,
        cidr: str | None = None,
        encryption_key: kms.IKey | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
    ) -> None:
        """Define the network.

        Args:
            scope: The parent construct.
            id: The construct id.
            vpc: An existing VPC. Default: - a new VPC with private isolated subnets in two
                Availability Zones, no NAT or internet gateway, and a flow log.
            vpc_subnets: Private subnets of ``vpc`` for the workloads and the endpoints (needs
                ``vpc``), in at least two Availability Zones. Default: - the VPC's default
                selection (its private, then isolated subnets).
            security_groups: The workloads' groups, instead of a new one; their rules stay as
                they are, and the endpoints accept HTTPS from them. Default: - a new group with
                no ingress except from itself and outbound HTTPS to the endpoints only.
            create_endpoints: Create the VPC endpoints. Turn it off for an existing VPC that
                has them (a shared-services VPC); then give ``security_groups`` that may reach
                them. Default: - True.
            cidr: The new VPC's IPv4 range (without ``vpc``). Default: - ``10.0.0.0/16``.
            encryption_key: Encrypts the new VPC's flow log group. Default: - a new key with
                rotation on.
            removal_policy: For the log groups and the flow log's key. Default: - RETAIN.
            log_retention: How long the flow log and the lookup function's logs are kept.
                Default: - one year.

        Raises:
            ConfigurationError: listing every invalid argument, before any resource is defined.
        """
        super().__init__(scope, id)
        raise_if_any(self, self._problems(vpc, vpc_subnets, security_groups, create_endpoints, cidr))
        self.flow_log: ec2.FlowLog | None = None
        self.flow_log_group: logs.LogGroup | None = None
        self.encryption_key: kms.IKey | None = None
        if vpc is None:
            vpc = self._isolated_vpc(cidr or _DEFAULT_CIDR, encryption_key, removal_policy, log_retention)
        self.vpc: ec2.IVpc = vpc
        self.vpc_subnets: ec2.SubnetSelection = vpc_subnets or ec2.SubnetSelection()
        self._check_subnets()

        self.endpoint_security_group: ec2.SecurityGroup | None = None
        self.endpoints: dict[str, ec2.IVpcEndpoint] = {}
        self.prefix_list_ids: dict[str, str] = {}
        self.lookup_security_group: ec2.SecurityGroup | None = None
        own_group = security_groups is None
        self.security_groups: list[ec2.ISecurityGroup] = (
            [self._workloads_group()] if security_groups is None else list(security_groups)
        )
        self.security_group: ec2.ISecurityGroup = self.security_groups[0]
        if create_endpoints:
            self._create_endpoints(own_group, log_retention, removal_policy)

    # ------------------------------------------------------------------ validation

    @staticmethod
    def _problems(
        vpc: ec2.IVpc | None,
        vpc_subnets: ec2.SubnetSelection | None,
        security_groups: Sequence[ec2.ISecurityGroup] | None,
        create_endpoints: bool,
        cidr: str | None,
    ) -> list[str]:
        found: list[str] = []
        if vpc is None and vpc_subnets is not None:
            found.append("vpc_subnets needs vpc (subnets of an existing VPC); pass vpc=..., or remove vpc_subnets")
        if vpc is None and not create_endpoints:
            found.append(
                "create_endpoints=False needs vpc: a new isolated VPC has no other way to reach AWS APIs; "
                "pass the existing VPC that has the endpoints, or keep create_endpoints=True"
            )
        if vpc is not None and security_groups is None and not create_endpoints:
            found.append(
                "create_endpoints=False needs security_groups: the existing endpoints' groups are unknown here, "
                "so a new workloads group could reach nothing; pass the groups that may reach them"
            )
        if security_groups is not None and not security_groups:
            found.append("security_groups is empty; pass at least one group, or omit it for a new one")
        if vpc is not None and cidr is not None:
            found.append(f"cidr {cidr!r} applies to a new VPC only; remove it when passing vpc")
        return found

    def _check_subnets(self) -> None:
        selected = select_subnets(self.vpc, self.vpc_subnets)
        public = {s.subnet_id for s in self.vpc.public_subnets}
        problems = [
            f"subnet {s} is public (routed to an internet gateway); select private subnets with vpc_subnets"
            for s in selected.subnet_ids
            if s in public
        ]
        zones = [z for z in selected.availability_zones if not Token.is_unresolved(z)]
        if len(zones) == len(selected.availability_zones) and len(set(zones)) < 2:
            problems.append(
                f"the selected subnets are in {len(set(zones))} Availability Zone(s) "
                f"({', '.join(sorted(set(zones)))}); "
                "select private subnets in at least two zones, so jobs and endpoints survive a zone outage"
            )
        raise_if_any(self, problems)

    # ------------------------------------------------------------------ resources

    def _isolated_vpc(
        self,
        cidr: str,
        encryption_key: kms.IKey | None,
        removal_policy: RemovalPolicy,
        log_retention: logs.RetentionDays,
    ) -> ec2.Vpc:
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            max_azs=2,
            nat_gateways=0,
            # Isolated subnets only: no internet gateway, no NAT, no route beyond the VPC and its endpoints.
            subnet_configuration=[
                ec2.SubnetConfiguration(name="Private", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=20)
            ],
            restrict_default_security_group=False,
        )
        self.encryption_key = encryption_key or kms.Key(
            self,
            "FlowLogKey",
            description=f"Encrypts the flow log of {self.node.path}",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        # CloudWatch Logs encrypts with the key as its regional service principal, for log groups
        # of this account and region only (the group's own ARN would make a dependency cycle).
        self.encryption_key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.{Aws.URL_SUFFIX}")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"
                        )
                    }
                },
            )
        )
        self.flow_log_group = logs.LogGroup(
            self,
            "FlowLogs",
            encryption_key=self.encryption_key,
            retention=log_retention,
            removal_policy=removal_policy,
        )
        self.flow_log = vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        return vpc

    def _workloads_group(self) -> ec2.SecurityGroup:
        group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=self.vpc,
            description=f"{self.node.path}: SageMaker jobs, endpoints, monitors and functions; no internet",
            allow_all_outbound=False,
        )
        # Multi-instance training and processing jobs talk between their instances (and encrypt
        # that traffic with IPsec when inter-container encryption is on): all traffic, both ways,
        # within the group; nothing from any address range.
        group.connections.allow_internally(ec2.Port.all_traffic(), "between the instances of one job")
        return group

    def _create_endpoints(
        self, own_group: bool, log_retention: logs.RetentionDays, removal_policy: RemovalPolicy
    ) -> None:
        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description=f"{self.node.path}: interface endpoints; HTTPS from the workloads only",
            allow_all_outbound=False,
        )
        for group in self.security_groups:
            self._allow_https(group)
        for spec in GATEWAY_ENDPOINTS:
            self.endpoints[spec.name] = self._gateway_endpoint(spec)
        for spec in INTERFACE_ENDPOINTS:
            self.endpoints[spec.name] = self._interface_endpoint(spec)
        if own_group:
            # Only a group created here gets outbound rules; given groups keep the rules they have.
            self.endpoints[PREFIX_LIST_LOOKUP_ENDPOINT.name] = self._interface_endpoint(PREFIX_LIST_LOOKUP_ENDPOINT)
            self._allow_gateways(self.security_groups[0], log_retention, removal_policy)

    def _allow_https(self, group: ec2.ISecurityGroup) -> None:
        """``group`` may reach the interface endpoints (both rules live on the groups created here)."""
        endpoints = self.endpoint_security_group
        assert endpoints is not None
        endpoints.add_ingress_rule(group, HTTPS, "HTTPS from the workloads")
        if isinstance(group, ec2.SecurityGroup) and group.node.scope is self:
            group.add_egress_rule(endpoints, HTTPS, "HTTPS to the interface endpoints")

    def _gateway_endpoint(self, spec: EndpointService) -> ec2.GatewayVpcEndpoint:
        assert isinstance(spec.service, ec2.GatewayVpcEndpointAwsService)
        endpoint = ec2.GatewayVpcEndpoint(
            self, f"{_pascal(spec.name)}Endpoint", vpc=self.vpc, service=spec.service, subnets=[self.vpc_subnets]
        )
        for statement in self._gateway_policy(spec):
            endpoint.add_to_policy(statement)
        return endpoint

    def _interface_endpoint(self, spec: EndpointService) -> ec2.InterfaceVpcEndpoint:
        assert self.endpoint_security_group is not None
        endpoint = ec2.InterfaceVpcEndpoint(
            self,
            f"{_pascal(spec.name)}Endpoint",
            vpc=self.vpc,
            service=cast(ec2.IInterfaceVpcEndpointService, spec.service),
            # An interface endpoint takes one subnet per Availability Zone.
            subnets=ec2.SubnetSelection(
                subnet_type=self.vpc_subnets.subnet_type,
                subnet_group_name=self.vpc_subnets.subnet_group_name,
                subnets=self.vpc_subnets.subnets,
                availability_zones=self.vpc_subnets.availability_zones,
                subnet_filters=self.vpc_subnets.subnet_filters,
                one_per_az=True,
            ),
            security_groups=[self.endpoint_security_group],
            private_dns_enabled=True,
            # No automatic ingress from the VPC's CIDR: only the workloads' group may connect.
            open=False,
        )
        if spec.without_policy is None:
            endpoint.add_to_policy(self._identity_perimeter())
        return endpoint

    def _identity_perimeter(self) -> iam.PolicyStatement:
        """Only principals of this account may use the endpoint (a request's own policies still apply)."""
        return iam.PolicyStatement(
            sid="PrincipalsOfThisAccount",
            principals=[iam.AnyPrincipal()],
            actions=["*"],
            resources=["*"],
            conditions={"StringEquals": {"aws:PrincipalAccount": Stack.of(self).account}},
        )

    def _gateway_policy(self, spec: EndpointService) -> list[iam.PolicyStatement]:
        statements = [self._identity_perimeter()]
        if spec.name != "s3":
            return statements
        partition, region = Aws.PARTITION, Stack.of(self).region
        return [
            *statements,
            # ECR serves image layers from its own bucket through URLs that ECR's account presigns.
            iam.PolicyStatement(
                sid="EcrImageLayers",
                principals=[iam.AnyPrincipal()],
                actions=["s3:GetObject"],
                resources=[f"arn:{partition}:s3:::prod-{region}-starport-layer-bucket/*"],
            ),
            # A custom resource in the VPC answers CloudFormation through a URL that CloudFormation's
            # service principal presigns for its response bucket (named after the region without dashes).
            iam.PolicyStatement(
                sid="CloudFormationResponses",
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[f"arn:{partition}:s3:::cloudformation-custom-resource-response-*/*"],
                conditions={"Bool": {"aws:PrincipalIsAWSService": "true"}},
            ),
        ]

    # ------------------------------------------------------------------ prefix lists

    def _allow_gateways(
        self, group: ec2.ISecurityGroup, log_retention: logs.RetentionDays, removal_policy: RemovalPolicy
    ) -> None:
        """Look the gateway prefix lists up at deploy time and let ``group`` reach them over HTTPS."""
        role = iam.Role(
            self,
            "PrefixListLookupRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Looks up the S3 and DynamoDB prefix lists for {self.node.path}",
        )
        log_group = logs.LogGroup(self, "PrefixListLookupLogs", retention=log_retention, removal_policy=removal_policy)
        log_group.grant_write(role)
        # A Lambda function in a VPC manages its own network interfaces; EC2 creates them with
        # generated ids and its Describe* actions support no resource-level permissions.
        role.add_to_policy(iam.PolicyStatement(actions=list(_LAMBDA_ENI_ACTIONS), resources=["*"]))
        acknowledge(
            role,
            "a Lambda function in a VPC creates and deletes its network interfaces, whose ids EC2 generates at "
            "deploy time; EC2's Describe* actions support no resource-level permissions",
            *iam5_findings(resources=["*"]),
        )
        for spec in GATEWAY_ENDPOINTS:
            self.prefix_list_ids[spec.name] = self._prefix_list_lookup(spec, role, log_group)
            peer = ec2.Peer.prefix_list(self.prefix_list_ids[spec.name])
            group.add_egress_rule(peer, HTTPS, f"HTTPS to the {spec.name} gateway endpoint")
        self._adopt_lookup_function(role)

    def _prefix_list_lookup(self, spec: EndpointService, role: iam.IRole, log_group: logs.ILogGroup) -> str:
        assert isinstance(spec.service, ec2.GatewayVpcEndpointAwsService)
        # The prefix list managed by AWS has the endpoint service's name (com.amazonaws.<region>.s3).
        call = cr.AwsSdkCall(
            service="EC2",
            action="describeManagedPrefixLists",
            parameters={"Filters": [{"Name": "prefix-list-name", "Values": [spec.service.name]}]},
            physical_resource_id=cr.PhysicalResourceId.of(spec.service.name),
            output_paths=["PrefixLists.0.PrefixListId"],
        )
        lookup = cr.AwsCustomResource(
            self,
            f"{_pascal(spec.name)}PrefixList",
            on_create=call,
            on_update=call,
            # DescribeManagedPrefixLists supports no resource-level permissions.
            policy=cr.AwsCustomResourcePolicy.from_sdk_calls(resources=cr.AwsCustomResourcePolicy.ANY_RESOURCE),
            role=role,
            log_group=log_group,
            # The function has no route to npm: it runs with the SDK that Lambda ships.
            install_latest_aws_sdk=False,
            vpc=self.vpc,
            vpc_subnets=self.vpc_subnets,
        )
        # The function calls EC2 through its endpoint and answers CloudFormation through the S3 one:
        # wait for both, and for the endpoints' group to accept it.
        lookup.node.add_dependency(
            self.endpoints[PREFIX_LIST_LOOKUP_ENDPOINT.name], self.endpoints["s3"], self.endpoint_security_group
        )
        policy = lookup.node.find_child("CustomResourcePolicy")
        acknowledge(
            policy,
            "ec2:DescribeManagedPrefixLists supports no resource-level permissions; it reads the ids of the "
            "prefix lists AWS manages, nothing of this account",
            *iam5_findings(resources=["*"]),
        )
        return lookup.get_response_field("PrefixLists.0.PrefixListId")

    def _adopt_lookup_function(self, role: iam.IRole) -> None:
        """Give aws-cdk-lib's lookup function a group of this construct instead of one open to everything."""
        stack = Stack.of(self)
        provider = stack.node.find_child(_LOOKUP_PROVIDER_ID)
        assert isinstance(provider, lambda_.Function)
        if provider.role is not role:
            raise ConfigurationError(
                self,
                f"{stack.node.path} already has an AwsCustomResource function ({provider.node.path}), which the "
                "prefix-list lookup would share; put the PrivateNetwork in a stack of its own (NetworkStack does)",
            )
        self.lookup_security_group = ec2.SecurityGroup(
            self,
            "PrefixListLookupSecurityGroup",
            vpc=self.vpc,
            description=f"{self.node.path}: the deploy-time prefix-list lookup",
            allow_all_outbound=False,
        )
        # The function answers CloudFormation through S3 before the S3 prefix list is known, so it may
        # send HTTPS anywhere; in a VPC without NAT or internet gateway that is the VPC and its endpoints.
        self.lookup_security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), HTTPS, "HTTPS to EC2 (endpoint) and the CloudFormation response (S3)"
        )
        self._allow_https(self.lookup_security_group)
        function = provider.node.default_child
        assert isinstance(function, lambda_.CfnFunction)
        function.add_property_override("VpcConfig.SecurityGroupIds", [self.lookup_security_group.security_group_id])
        provider.node.try_remove_child("SecurityGroup")
        # The function names its role with Fn::GetAtt; it waits for the role's policies only (cfn-lint W3005).
        depend_on_role_policy(provider, role)
        acknowledge(
            provider,
            "aws-cdk-lib owns the AwsCustomResource function and its Node.js runtime; CloudFormation invokes it "
            "synchronously and fails the deployment when it fails, so no event is lost",
            f"{GUARDRAILS}::MLOPS-008",
        )

    def add_interface_endpoint(self, id: str, service: ec2.IInterfaceVpcEndpointService) -> ec2.InterfaceVpcEndpoint:
        """An interface endpoint for another service, with the same subnets, group and identity perimeter.

        For example the SageMaker MLflow endpoint (``InterfaceVpcEndpointAwsService.SAGEMAKER_EXPERIMENTS``)
        when the pipeline logs to a tracking server. It is billed per AZ-hour and per GB.

        Raises:
            ConfigurationError: when the network was defined with ``create_endpoints=False``.
        """
        if self.endpoint_security_group is None:
            raise ConfigurationError(
                self,
                f"add_interface_endpoint({id!r}): this network creates no endpoints (create_endpoints=False); "
                "add the endpoint where the VPC's other endpoints are managed",
            )
        endpoint = self._interface_endpoint(EndpointService(id, service, (), "added with add_interface_endpoint"))
        self.endpoints[id] = endpoint
        return endpoint


def import_vpc(
    scope: Construct, network: NetworkConfig, *, subnet_type: ec2.SubnetType, reason: str
) -> tuple[ec2.IVpc, list[ec2.ISecurityGroup]]:
    """An existing VPC and its security groups from a :class:`~cdk_mlops.config.NetworkConfig`'s ids.

    Nothing is looked up at synth (``Vpc.from_lookup`` would need AWS credentials), so offline
    synth and tests keep working. The ids become children ``Vpc`` and ``SecurityGroup<n>`` of
    ``scope``.

    Args:
        scope: Where the imported constructs go.
        network: An ``EXISTING`` network (the configuration has checked its ids).
        subnet_type: How ``subnet_ids`` are imported: ``PRIVATE_ISOLATED`` for an environment's
            VPC, ``PRIVATE_WITH_EGRESS`` for a tooling VPC whose builds reach the internet.
        reason: Why the subnets' route tables are not needed when the network names none.
    """
    subnets = list(network.subnet_ids)
    tables = list(network.route_table_ids) or None
    isolated = subnet_type is ec2.SubnetType.PRIVATE_ISOLATED
    vpc = ec2.Vpc.from_vpc_attributes(
        scope,
        "Vpc",
        vpc_id=str(network.vpc_id),
        availability_zones=list(network.availability_zones),
        isolated_subnet_ids=subnets if isolated else None,
        isolated_subnet_route_table_ids=tables if isolated else None,
        private_subnet_ids=None if isolated else subnets,
        private_subnet_route_table_ids=None if isolated else tables,
    )
    if tables is None:
        Annotations.of(vpc).acknowledge_warning("@aws-cdk/aws-ec2:noSubnetRouteTableId", reason)
    groups = [
        ec2.SecurityGroup.from_security_group_id(scope, f"SecurityGroup{index}", group_id, mutable=False)
        for index, group_id in enumerate(network.security_group_ids, start=1)
    ]
    return vpc, groups


def placement(network: PrivateNetwork | None) -> dict[str, Any]:
    """The ``vpc``, ``vpc_subnets`` and ``security_groups`` arguments that put a construct in ``network``.

    Every construct of the library that runs jobs or functions takes these three; without a
    network the result is empty, and the construct runs outside any VPC.
    """
    if network is None:
        return {}
    return {"vpc": network.vpc, "vpc_subnets": network.vpc_subnets, "security_groups": list(network.security_groups)}


#: What a Lambda function's role needs to attach the function to VPC subnets (as AWSLambdaVPCAccessExecutionRole).
_LAMBDA_ENI_ACTIONS: Final = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)
#: The stack-level construct id of aws-cdk-lib's AwsCustomResource function ("AWS" + its fixed uuid).
_LOOKUP_PROVIDER_ID: Final = "AWS" + cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", "")


def _pascal(service_name: str) -> str:
    """``sagemaker.api`` -> ``SagemakerApi``, for construct ids."""
    return "".join(part.title() for part in service_name.replace("-", ".").split("."))
