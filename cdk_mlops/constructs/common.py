"""Pieces shared by the constructs: the Lambda runtime, asset packaging, acknowledgments, metrics."""

from __future__ import annotations

import inspect
import json
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, cast

import jsii
from aws_cdk import (
    Acknowledgment,
    AssetHashType,
    Aws,
    BundlingOptions,
    CfnMapping,
    CfnResource,
    DockerImage,
    Duration,
    ILocalBundling,
    IStableListProducer,
    Lazy,
    RemovalPolicy,
    Stack,
    Token,
    Validations,
)
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

from cdk_mlops import image_uris
from cdk_mlops.errors import ConfigurationError

#: The Lambda runtime of every function the library creates. Move it forward
#: when aws-cdk-lib gains a newer Python runtime (cdk-nag AwsSolutions-L1 flags
#: any runtime that is not the latest).
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_14

#: SageMaker resource names (pipelines, endpoints, schedules, groups): 1-63 letters, digits and
#: hyphens, lower case only, because SageMaker lower-cases names in ARNs and IAM compares ARNs
#: exactly (a grant on "Churn" would never match). The length is checked apart from the pattern:
#: SageMaker's own pattern counts letters and digits only, its maximum length every character.
SAGEMAKER_NAME = re.compile(r"^(?=.{1,63}\Z)[a-z0-9](-*[a-z0-9])*\Z")
#: The shape of a SageMaker instance type (``ml.<family>.<size>``).
INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9]+\Z")
#: Instance families SageMaker hosts realtime endpoints on (botocore's ProductionVariantInstanceType
#: enum, botocore 1.44; tests/unit/test_pipeline_definition.py compares them).
ENDPOINT_INSTANCE_FAMILIES: Final = frozenset(
    {
        "c4",
        "c5",
        "c5d",
        "c6g",
        "c6gd",
        "c6gn",
        "c6i",
        "c6in",
        "c7g",
        "c7i",
        "c8g",
        "dl1",
        "g4dn",
        "g5",
        "g6",
        "g6e",
        "g7",
        "g7e",
        "inf1",
        "inf2",
        "m4",
        "m5",
        "m5d",
        "m6g",
        "m6gd",
        "m6i",
        "m7i",
        "m8g",
        "p2",
        "p3",
        "p4d",
        "p4de",
        "p5",
        "p5e",
        "p5en",
        "p6-b200",
        "p6-b300",
        "p6e-gb200",
        "r5",
        "r5d",
        "r6g",
        "r6gd",
        "r6i",
        "r7gd",
        "r7i",
        "r8g",
        "t2",
        "trn1",
        "trn1n",
        "trn2",
    }
)
#: An AWS account id.
ACCOUNT_ID = re.compile(r"^[0-9]{12}\Z")
#: What a SageMaker role needs to pull an image from one ECR repository.
ECR_PULL_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
#: What a SageMaker role needs to write its jobs' or containers' logs.
LOG_ACTIONS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams")

# Functions that call AWS APIs need HTTPS out, and nothing else.
_HTTPS = 443

#: Plugin name of the guardrails (``cdk_mlops.guardrails``); acknowledgments are ``<this>::MLOPS-00N``.
GUARDRAILS = "CdkMlopsGuardrails"

#: Root of the ``cdk_mlops`` package; Lambda assets copy modules from here.
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@jsii.implements(ILocalBundling)
class _CopyModules:
    """Local bundling that copies package modules into the asset; no Docker."""

    def __init__(self, modules: tuple[str, ...]) -> None:
        self._modules = modules

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: object) -> bool:
        out = Path(output_dir)
        for module in self._modules:
            source = PACKAGE_ROOT / module
            target = out / "cdk_mlops" / module
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(source, target)
        return True


def lambda_code(*modules: str) -> lambda_.Code:
    """A Lambda asset holding the given modules of the ``cdk_mlops`` package.

    The asset keeps the package layout (``cdk_mlops/<module>``) plus the
    package ``__init__``, whose exports are lazy, so a handler is addressed as
    ``cdk_mlops.lambdas.<name>.handler.handler`` both in Lambda and in tests,
    and shared modules such as ``datasets.py`` ship with it. Bundling is local
    (a file copy), so synth needs no Docker; the asset hash is taken from the
    copied files, so unrelated library changes do not redeploy the function.

    Args:
        modules: Paths relative to the package root, e.g. ``"datasets.py"`` or
            ``"lambdas/retrain_trigger"``.
    """
    wanted = ("__init__.py", "lambdas/__init__.py", *modules)
    unique = tuple(dict.fromkeys(wanted))
    return lambda_.Code.from_asset(
        str(PACKAGE_ROOT),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(
            # Never pulled: local bundling always succeeds, so Docker is never used.
            image=DockerImage.from_registry("local-bundling-only"),
            local=_CopyModules(unique),
        ),
    )


def acknowledge(scope: IConstruct, reason: str, *finding_ids: str) -> None:
    """Acknowledge cdk-nag findings on ``scope`` with one shared reason.

    Call it from the construct that causes the findings, next to the code that
    causes them, so users never inherit unexplained suppressions.
    """
    Validations.of(scope).acknowledge(*(Acknowledgment(id=f, reason=reason) for f in finding_ids))


def acknowledge_grantee(
    grantee: iam.IGrantable, reason: str, *, actions: Iterable[str] = (), resources: Iterable[str] = ()
) -> None:
    """Acknowledge, on a grant's principal, the AwsSolutions-IAM5 findings the grant's statements cause.

    Every ``grant_*`` method calls this for its own wildcards, so an app that calls it stays clean.
    A principal that is not a construct (an account, a service) has no policy to flag; resources
    are written as cdk-nag writes them (:func:`nag_resource`), in the grantee's stack.
    """
    principal = grantee.grant_principal
    if getattr(principal, "node", None) is None:
        return
    scope = cast(IConstruct, principal)
    acknowledge(scope, reason, *iam5_findings(actions, [nag_resource(scope, r) for r in resources]))


def iam5_findings(actions: Iterable[str] = (), resources: Iterable[str] = ()) -> list[str]:
    """AwsSolutions-IAM5 finding ids for the given wildcard actions and resources."""
    return [f"AwsSolutions-IAM5[Action::{a}]" for a in actions] + [
        f"AwsSolutions-IAM5[Resource::{r}]" for r in resources
    ]


def nag_resource(scope: IConstruct, value: str) -> str:
    """How cdk-nag writes a (possibly tokenized) ARN in a finding id.

    Pseudo parameters and references become ``<Name>``, attributes
    ``<LogicalId.Attribute>``, so an acknowledgment can name a wildcard ARN
    that contains tokens without pasting hashed logical ids.
    """
    return _flatten(Stack.of(scope).resolve(value))


def _flatten(node: Any) -> str:
    """A resolved CloudFormation value as cdk-nag writes it in finding ids (its flattenCfnReference)."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if node.get("Fn::Join"):
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(_flatten(item) for item in items)
        if node.get("Fn::Sub"):
            return _flatten(node["Fn::Sub"])
        if node.get("Fn::GetAtt"):
            target = node["Fn::GetAtt"]
            resource, attribute = target if isinstance(target, list) else target.split(".", 1)
            return f"<{_flatten(resource)}.{_flatten(attribute)}>"
        if node.get("Fn::ImportValue"):
            return _flatten(node["Fn::ImportValue"])
        if node.get("Ref"):
            return f"<{_flatten(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))


def sagemaker_image_uri(scope: Construct, framework: str, version: str | None = None) -> str:
    """The URI of a prebuilt SageMaker image (``sklearn``, ``xgboost``, ``model-monitor``, ``clarify``) for a stack.

    Concrete for a stack with a fixed region; for an environment-agnostic stack,
    a region lookup in a ``CfnMapping`` (created once per scope and framework)
    of the registry accounts in :mod:`cdk_mlops.image_uris`.

    Raises:
        ConfigurationError: for a framework, version or fixed region the data file does
            not list; the message names the accepted values.
    """
    region = Stack.of(scope).region
    if not Token.is_unresolved(region):
        try:
            return image_uris.image_uri(framework, region, version)
        except image_uris.UnknownImageError as error:
            raise ConfigurationError(scope, f"{error}; pass an image URI explicitly") from None
    mapping_id = f"{framework.title().replace('-', '')}Registry"
    mapping = scope.node.try_find_child(mapping_id)
    if not isinstance(mapping, CfnMapping):
        mapping = CfnMapping(
            scope,
            mapping_id,
            mapping={r: {"account": a} for r, a in sorted(image_uris.registry_accounts(framework).items())},
        )
    account = mapping.find_in_map(Aws.REGION, "account")
    return f"{account}.dkr.ecr.{Aws.REGION}.{Aws.URL_SUFFIX}/{image_uris.repository_path(framework, version)}"


def ecr_repository_arn(uri: str, stack: Stack) -> str:
    """``<account>.dkr.ecr.<region>.<suffix>/<repo>[:<tag>|@<digest>]`` → the repository's ARN.

    Token pieces inside the URI (an account, a region, a tag) are kept: token markers contain
    no ``/``, ``:`` or ``@``. The region is the stack's, because SageMaker pulls images only
    from its own region. A URI that is one opaque token (a parameter) cannot be split at
    synth, so it maps to every repository of the stack's account; callers acknowledge that.
    """
    if ".dkr.ecr." not in uri:
        return stack.format_arn(service="ecr", resource="repository", resource_name="*")
    registry, _, path = uri.partition("/")
    account = registry.partition(".dkr.ecr.")[0]
    repository = path.split("@", 1)[0].split(":", 1)[0]
    return f"arn:{Aws.PARTITION}:ecr:{stack.region}:{account}:repository/{repository}"


def _private_bucket_settings() -> dict[str, Any]:
    """What every bucket of the library is: versioned, private, TLS 1.2 or later only, owner-enforced."""
    return {
        "versioned": True,
        "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
        "enforce_ssl": True,
        "minimum_tls_version": 1.2,
        "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    }


def kms_bucket_settings(
    key: kms.IKey, *, access_logs: s3.IBucket, access_logs_prefix: str | None = None
) -> dict[str, Any]:
    """``s3.Bucket`` settings of a bucket that holds data: a private bucket, SSE-KMS with ``key``
    and an S3 Bucket Key (fewer KMS requests), server access logs into ``access_logs``.

    Pass them with ``**`` beside the bucket's own settings (lifecycle, removal).
    """
    return {
        **_private_bucket_settings(),
        "encryption": s3.BucketEncryption.KMS,
        "encryption_key": key,
        "bucket_key_enabled": True,
        "server_access_logs_bucket": access_logs,
        "server_access_logs_prefix": access_logs_prefix,
    }


def access_log_bucket(
    scope: Construct,
    id: str,
    *,
    removal_policy: RemovalPolicy,
    auto_delete_objects: bool = False,
    lifecycle_rules: Iterable[s3.LifecycleRule] = (),
) -> s3.Bucket:
    """A private, TLS-only, versioned bucket for S3 server access logs.

    S3 server access logging delivers only to buckets with SSE-S3 default
    encryption (and not to Object Lock buckets), so the logs get their own
    bucket, and guardrail MLOPS-002 (customer-managed keys) is acknowledged on
    it here, once, with that reason.
    """
    bucket = s3.Bucket(
        scope,
        id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        **_private_bucket_settings(),
        removal_policy=removal_policy,
        auto_delete_objects=auto_delete_objects,
        lifecycle_rules=list(lifecycle_rules) or None,
    )
    acknowledge(
        bucket,
        "S3 server access logging delivers only to buckets with SSE-S3 default encryption; "
        "the logs hold request metadata, not data, and the bucket is private and TLS-only",
        f"{GUARDRAILS}::MLOPS-002",
    )
    return bucket


def dead_letter_queue(scope: Construct, id: str, *, key: kms.IKey, removal_policy: RemovalPolicy) -> sqs.Queue:
    """A KMS-encrypted, TLS-only queue that keeps failed messages for 14 days (the SQS maximum)."""
    return sqs.Queue(
        scope,
        id,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=Duration.days(14),
        removal_policy=removal_policy,
    )


@jsii.implements(IStableListProducer)
class _DefaultPolicyOf:
    """The logical id of a role's default policy, once synth knows whether the role has one."""

    def __init__(self, role: iam.IRole) -> None:
        self._role = role

    def produce(self) -> list[str] | None:
        policy = self._role.node.try_find_child("DefaultPolicy")
        if policy is None or policy.node.default_child is None:
            return None
        return [Stack.of(self._role).get_logical_id(policy.node.default_child)]  # type: ignore[arg-type]


def depend_on_role_policy(resource: IConstruct, role: iam.IRole) -> None:
    """Make ``resource`` wait for ``role``'s default policy, without a ``DependsOn`` on the role.

    A resource that names its role with ``Fn::GetAtt`` is already created after the role, so a
    ``DependsOn`` on the role as well is redundant (cfn-lint W3005). The role's policy is not
    referenced, yet the resource needs its permissions when it is created (a function polls its
    queue, a schedule starts a job), so that dependency stays. The ``DependsOn`` of ``resource``'s
    L1 is replaced: use this only where the role and its policy are the only dependencies.
    """
    cfn = resource if isinstance(resource, CfnResource) else resource.node.default_child
    if not isinstance(cfn, CfnResource):
        raise TypeError(f"{resource.node.path} has no CloudFormation resource to order")
    cfn.add_override("DependsOn", Lazy.list(_DefaultPolicyOf(role), omit_empty=True))


def select_subnets(vpc: ec2.IVpc, selection: ec2.SubnetSelection | None) -> ec2.SelectedSubnets:
    """``vpc.select_subnets(selection)``; the Python binding takes the selection's fields as keywords."""
    if selection is None:
        return vpc.select_subnets()
    return vpc.select_subnets(
        availability_zones=selection.availability_zones,
        one_per_az=selection.one_per_az,
        subnet_filters=selection.subnet_filters,
        subnet_group_name=selection.subnet_group_name,
        subnets=selection.subnets,
        subnet_type=selection.subnet_type,
    )


#: A SageMaker job's ``VpcConfig`` takes at most 16 subnets and 5 security groups.
_MAX_JOB_SUBNETS, _MAX_JOB_SECURITY_GROUPS = 16, 5


def job_subnets(
    vpc: ec2.IVpc | None, selection: ec2.SubnetSelection | None, groups: Sequence[ec2.ISecurityGroup] | None
) -> tuple[list[str], list[str]]:
    """The ids of the subnets SageMaker jobs run in, and every problem of the network arguments.

    Without ``vpc``, no subnets, and a problem if ``selection`` or ``groups`` were given.
    """
    if vpc is None:
        given = [name for name, value in (("vpc_subnets", selection), ("security_groups", groups)) if value is not None]
        return [], [f"{' and '.join(given)} need vpc; pass vpc=..., or remove them"] if given else []
    problems: list[str] = []
    if groups is not None and not 1 <= len(groups) <= _MAX_JOB_SECURITY_GROUPS:
        problems.append(
            f"security_groups has {len(groups)} groups; a SageMaker job takes 1 to {_MAX_JOB_SECURITY_GROUPS}: "
            "pass that many, or leave it out for a new group"
        )
    try:
        subnets = list(select_subnets(vpc, selection).subnet_ids)
    except RuntimeError as error:  # jsii: the selection names subnets the VPC does not have
        return [], [*problems, f"vpc_subnets: {error}"]
    if not 1 <= len(subnets) <= _MAX_JOB_SUBNETS:
        problems.append(
            f"vpc_subnets selects {len(subnets)} subnets of the VPC; a SageMaker job takes 1 to {_MAX_JOB_SUBNETS}: "
            "change the selection"
        )
    return subnets, problems


#: Where SageMaker Pipelines publishes execution metrics (dimension ``PipelineName``).
PIPELINE_METRICS_NAMESPACE: Final = "AWS/Sagemaker/ModelBuildingPipeline"


def pipeline_execution_metric(
    construct: IConstruct, method: str, metric_name: str, pipeline_name: str, options: dict[str, Any]
) -> cw.Metric:
    """A pipeline's execution metric (``ExecutionStarted``, ...), summed over 5 minutes, with ``options``."""
    props = metric_props(
        construct,
        method,
        options,
        dimensions={"PipelineName": pipeline_name},
        statistic="Sum",
        period=Duration.minutes(5),
    )
    return cw.Metric(namespace=PIPELINE_METRICS_NAMESPACE, metric_name=metric_name, **props)


#: The name prefix of SageMaker Clarify's shadow endpoints (``predictor.endpoint_name_prefix``). Every
#: analysis configuration the library writes sets it (``ml/evaluate.py``, the explainability monitor's
#: copy), so the grant below names the endpoints by it rather than by Clarify's own default.
CLARIFY_ENDPOINT_PREFIX: Final = "cdk-mlops-clarify"
#: What a Clarify job does with its shadow endpoint: create it from the model, wait for it, invoke it, delete it.
CLARIFY_ENDPOINT_ACTIONS: Final = (
    "sagemaker:CreateEndpointConfig",
    "sagemaker:DescribeEndpointConfig",
    "sagemaker:DeleteEndpointConfig",
    "sagemaker:CreateEndpoint",
    "sagemaker:DescribeEndpoint",
    "sagemaker:DeleteEndpoint",
    "sagemaker:InvokeEndpoint",
    "sagemaker:AddTags",
)


def grant_clarify_endpoints(scope: IConstruct, role: iam.IRole) -> iam.Grant:
    """Let the Clarify jobs running as ``role`` manage and invoke their shadow endpoints, and no others.

    Limited to endpoints and endpoint configurations named ``cdk-mlops-clarify*``
    (:data:`CLARIFY_ENDPOINT_PREFIX`, which the analysis configurations set); the cdk-nag
    finding of the name wildcard is acknowledged on ``role``.
    """
    stack = Stack.of(scope)
    resources = [
        stack.format_arn(service="sagemaker", resource=kind, resource_name=f"{CLARIFY_ENDPOINT_PREFIX}*")
        for kind in ("endpoint", "endpoint-config")
    ]
    grant = iam.Grant.add_to_principal(grantee=role, actions=list(CLARIFY_ENDPOINT_ACTIONS), resource_arns=resources)
    acknowledge(
        role,
        "Clarify names each shadow endpoint and its configuration per job, after the prefix the analysis "
        f"configuration sets ({CLARIFY_ENDPOINT_PREFIX}), so they can only be matched by that prefix; the actions "
        "are those of one endpoint's life",
        *iam5_findings(resources=(nag_resource(scope, r) for r in resources)),
    )
    return grant


#: What Lambda does with a function's role to attach it to subnets (besides creating the interface).
_LAMBDA_INTERFACE_ACTIONS: Final = (
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)
_LAMBDA_DESCRIBE_NETWORK: Final = ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets")


def send_events_to_eventbridge(bucket: s3.IBucket) -> s3.CfnBucket:
    """Turn on S3 -> EventBridge for ``bucket`` as its own CloudFormation property; returns its L1.

    aws-cdk-lib's ``event_bridge_enabled`` would add a custom resource whose handler, a Lambda
    function outside any VPC, sets it instead.
    """
    cfn_bucket = bucket.node.default_child
    assert isinstance(cfn_bucket, s3.CfnBucket)
    cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
        event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(event_bridge_enabled=True)
    )
    return cfn_bucket


def network_problems(
    vpc: ec2.IVpc | None, subnets: ec2.SubnetSelection | None, groups: Sequence[ec2.ISecurityGroup] | None
) -> list[str]:
    """Problems of a construct's ``vpc``, ``vpc_subnets`` and ``security_groups`` arguments, together."""
    problems: list[str] = []
    if vpc is None and subnets is not None:
        problems.append("vpc_subnets is given without vpc; pass the VPC the subnets belong to as vpc")
    if vpc is None and groups is not None:
        problems.append("security_groups is given without vpc; pass the VPC the groups belong to as vpc")
    if vpc is not None and groups is not None and not groups:
        problems.append("security_groups is empty; pass at least one group, or omit it for a new one")
    return problems


def https_only_security_group(scope: Construct, vpc: ec2.IVpc, what: str) -> ec2.SecurityGroup:
    """A new group ``SecurityGroup`` in ``scope``: no inbound rule, outbound HTTPS (TCP 443) only.

    All that a function calling AWS APIs needs. ``what`` names the function in the description.
    """
    group = ec2.SecurityGroup(
        scope,
        "SecurityGroup",
        vpc=vpc,
        description=f"{scope.node.path} {what}: no inbound, HTTPS out to AWS APIs",
        allow_all_outbound=False,
    )
    group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(_HTTPS), "HTTPS to AWS APIs")
    return group


def grant_lambda_vpc_access(role: iam.IRole, *, subnet_ids: Sequence[str], security_group_ids: Sequence[str]) -> None:
    """Let Lambda attach a function that runs as ``role`` to these subnets, and nothing more.

    Creating a network interface is limited to ``subnet_ids`` and ``security_group_ids``;
    deleting one and changing its addresses to this account and region (EC2 generates the
    ids, and Lambda must still remove the interfaces of subnets the function no longer uses);
    the two Describe actions Lambda requires on ``*``. The cdk-nag findings are acknowledged on
    ``role`` with these reasons.
    """
    stack = Stack.of(role)
    interfaces = stack.format_arn(service="ec2", resource="network-interface", resource_name="*")
    placement = [stack.format_arn(service="ec2", resource="subnet", resource_name=s) for s in subnet_ids]
    placement += [
        stack.format_arn(service="ec2", resource="security-group", resource_name=g) for g in security_group_ids
    ]
    iam.Grant.add_to_principal(
        grantee=role, actions=["ec2:CreateNetworkInterface"], resource_arns=[interfaces, *placement]
    )
    iam.Grant.add_to_principal(grantee=role, actions=list(_LAMBDA_INTERFACE_ACTIONS), resource_arns=[interfaces])
    iam.Grant.add_to_principal(grantee=role, actions=list(_LAMBDA_DESCRIBE_NETWORK), resource_arns=["*"])
    acknowledge(
        role,
        "Lambda manages the function's network interfaces with this role, and EC2 generates their ids: "
        "creating one is limited to the function's subnets and security groups; deleting one and changing "
        "its addresses to this account and region, so that Lambda can still remove the interfaces of "
        "subnets the function no longer uses",
        *iam5_findings(resources=(nag_resource(role, interfaces),)),
    )
    acknowledge(
        role,
        "ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets support no resource-level permissions "
        "(Lambda requires them on '*'); they read network metadata only",
        *iam5_findings(resources=("*",)),
    )


#: What SageMaker reads about the network before it attaches a job or model to VPC subnets. The
#: EC2 Describe actions support no resource-level permissions (Service Authorization Reference).
SAGEMAKER_VPC_DESCRIBE_ACTIONS: Final = (
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
)


def grant_sagemaker_vpc_access(
    role: iam.IRole, *, subnet_ids: Sequence[str], security_group_ids: Sequence[str]
) -> iam.Grant:
    """Let SageMaker attach the jobs or models that run as ``role`` to these subnets, and nothing else.

    SageMaker creates one network interface per instance with the role, shares it with its own
    account by an interface permission, and deletes both when the job or model is gone.
    The scoping follows the condition keys the Service Authorization Reference lists for each
    action (the keys of ``CreateNetworkInterface``'s network-interface resource do not include
    ``ec2:Subnet``, so there the subnet and security-group resources themselves are named):

    - ``CreateNetworkInterface``: a new interface, only in ``subnet_ids`` and only with
      ``security_group_ids``;
    - ``CreateNetworkInterfacePermission`` and ``DeleteNetworkInterface``: only interfaces in
      ``subnet_ids`` (``ec2:Subnet``);
    - ``DeleteNetworkInterfacePermission``: its network-interface resource is optional, so the
      subnet condition applies where the request has one (``ArnEqualsIfExists``);
    - the Describe actions (:data:`SAGEMAKER_VPC_DESCRIBE_ACTIONS`): ``*``, as EC2 requires.

    ``ec2:AuthorizedService`` is not used: no AWS documentation says that SageMaker sets it, or
    to which value (CodeBuild documents ``codebuild.amazonaws.com``), and a wrong guess would stop
    every job in the VPC. The ARNs name the stack's account: subnets shared from another account
    (AWS RAM) need a grant of their own. The cdk-nag findings of the network-interface and ``*``
    wildcards are acknowledged on ``role``, with the reasons above; a caller that passes a
    wildcard id acknowledges that one.

    Args:
        role: The execution role of the jobs or of the model.
        subnet_ids: The subnets the containers run in (tokens allowed).
        security_group_ids: Their security groups (tokens allowed).
    """
    stack = Stack.of(role)

    def arns(resource: str, ids: Sequence[str]) -> list[str]:
        return [stack.format_arn(service="ec2", resource=resource, resource_name=i) for i in ids]

    interfaces = stack.format_arn(service="ec2", resource="network-interface", resource_name="*")
    subnets = arns("subnet", subnet_ids)
    grant = iam.Grant.add_to_principal(
        grantee=role,
        actions=["ec2:CreateNetworkInterface"],
        resource_arns=[interfaces, *subnets, *arns("security-group", security_group_ids)],
    )
    for actions, resources, test in (
        (["ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface"], [interfaces], "ArnEquals"),
        (["ec2:DeleteNetworkInterfacePermission"], ["*"], "ArnEqualsIfExists"),
    ):
        grant = grant.combine(
            iam.Grant.add_to_principal(
                grantee=role, actions=actions, resource_arns=resources, conditions={test: {"ec2:Subnet": subnets}}
            )
        )
    grant = grant.combine(
        iam.Grant.add_to_principal(grantee=role, actions=list(SAGEMAKER_VPC_DESCRIBE_ACTIONS), resource_arns=["*"])
    )
    acknowledge(
        role,
        "SageMaker creates one network interface per instance at run time, with a generated id; creating one is "
        "limited to the given subnets and security groups, sharing and deleting one to interfaces in those subnets",
        *iam5_findings(resources=(nag_resource(role, interfaces),)),
    )
    acknowledge(
        role,
        "the EC2 Describe actions SageMaker calls before attaching to the VPC support no resource-level "
        "permissions; ec2:DeleteNetworkInterfacePermission may name no interface, so its subnet condition "
        "applies where it does (ArnEqualsIfExists)",
        *iam5_findings(resources=("*",)),
    )
    return grant


#: The keywords of ``cloudwatch.MetricOptions``: what every ``metric_*`` method of the library accepts.
METRIC_OPTIONS: Final = frozenset(inspect.signature(cw.MetricOptions.__init__).parameters) - {"self"}


def metric_props(
    scope: IConstruct,
    method: str,
    options: Mapping[str, Any],
    *,
    dimensions: Mapping[str, str] | None = None,
    **defaults: Any,
) -> dict[str, Any]:
    """The keywords of a construct's metric: its defaults, then the caller's options over them.

    Every ``metric_*`` method builds its metric with this, so all of them take the standard
    ``cloudwatch.MetricOptions`` the same way (``period``, ``statistic``, ``unit``, ``label``,
    ``color``, ``dimensions_map``, ``region``, ``account``, ...). A caller's option replaces the
    method's default; ``dimensions_map`` adds to the construct's own ``dimensions`` (a name given
    by the caller wins), so a metric can be narrowed further but never loses its resource.

    Args:
        scope: The construct, named in the error.
        method: The method's name, named in the error.
        options: The caller's keywords.
        dimensions: The construct's dimensions. Default: - none (the method sets no dimensions).
        defaults: The method's defaults, e.g. ``statistic="Sum"``.

    Raises:
        ConfigurationError: for a keyword that is not a metric option, naming it and the accepted ones.
    """
    unknown = sorted(set(options) - METRIC_OPTIONS)
    if unknown:
        raise ConfigurationError(
            scope,
            f"{method}: {', '.join(map(repr, unknown))} is not a metric option; accepted (cloudwatch.MetricOptions): "
            f"{', '.join(sorted(METRIC_OPTIONS))}",
        )
    props = {**defaults, **options}
    if dimensions is not None:
        props["dimensions_map"] = {**dimensions, **(options.get("dimensions_map") or {})}
    return props


def instance_type_problem(where: str, value: str, families: frozenset[str], example: str) -> str | None:
    """Why ``value`` is not a SageMaker instance type of one of ``families``, or None (tokens pass).

    Args:
        where: The argument, named in the problem (e.g. ``realtime.instance_type``).
        value: The instance type given.
        families: What the API accepts there, e.g. :data:`ENDPOINT_INSTANCE_FAMILIES`.
        example: An instance type to suggest.
    """
    if Token.is_unresolved(value):
        return None
    if not INSTANCE_TYPE.match(value):
        return f"{where} {value!r} is not an ML instance type; use e.g. {example!r}"
    family = value.split(".")[1]
    if family not in families:
        return f"{where} {value!r}: unknown instance family {family!r}; use one of: {', '.join(sorted(families))}"
    return None
