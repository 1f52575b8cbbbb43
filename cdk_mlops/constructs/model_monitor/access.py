"""The monitoring jobs' execution role: least-privilege grants, each next to the finding it explains.

The role reads this endpoint's (or batch job's) captured data, the ground truth and exactly the
baseline objects; for a batch job also the transform input and output its capture manifests
list; writes reports under the monitoring prefix; pulls the jobs' images; writes their logs and
metrics; attaches them to the jobs' VPC; and, for explainability, manages Clarify's shadow
endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import ArnFormat, Aws, Fn, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_mlops.constructs.common import (
    ECR_PULL_ACTIONS,
    LOG_ACTIONS,
    acknowledge,
    ecr_repository_arn,
    grant_clarify_endpoints,
    grant_sagemaker_vpc_access,
    iam5_findings,
    nag_resource,
)
from cdk_mlops.constructs.data_store_base import IDataStore
from cdk_mlops.constructs.model_monitor.job import JobSettings, required
from cdk_mlops.constructs.model_monitor.model_bias import ModelBiasSettings
from cdk_mlops.constructs.model_monitor.model_quality import ModelQualitySettings
from cdk_mlops.constructs.model_monitor.monitoring_type import MonitoringType

__all__ = ["BATCH_METRIC_NAMESPACES", "ENDPOINT_METRIC_NAMESPACES", "grant_job_access", "s3_object_arn"]

_PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
#: Where Model Monitor publishes the metrics of endpoint schedules.
ENDPOINT_METRIC_NAMESPACES = "aws/sagemaker/Endpoints/*"
#: Where it publishes the metrics of batch transform schedules.
BATCH_METRIC_NAMESPACES = "aws/sagemaker/ModelMonitoring/*"
_VOLUME_KEY_ACTIONS = (
    "kms:CreateGrant",
    "kms:DescribeKey",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
)


def grant_job_access(
    scope: Construct,
    role: iam.IRole,
    *,
    capture_prefix: str,
    data_store: IDataStore,
    monitoring_prefix: str,
    requested: Mapping[MonitoringType, JobSettings],
    images: Mapping[MonitoringType, str],
    volume_key: kms.IKey,
    vpc_config: Any,
    captured_object_prefixes: Sequence[str] = (),
    metric_namespaces: str = ENDPOINT_METRIC_NAMESPACES,
) -> None:
    """Grant ``role`` what the ``requested`` jobs of the monitor ``scope`` need, and nothing else.

    Args:
        scope: The monitor; acknowledgments name ARNs as its stack writes them.
        role: The jobs' execution role.
        capture_prefix: The key prefix of the captured data the jobs read (one endpoint's or
            one batch job's).
        data_store: Holds captured data, ground truth, baselines and reports.
        monitoring_prefix: The key prefix of this endpoint's reports.
        requested: The settings per monitoring type.
        images: The image per monitoring type.
        volume_key: Encrypts the jobs' volumes.
        vpc_config: The jobs' ``VpcConfig`` (see ``job_network``), or ``None`` outside a VPC.
        captured_object_prefixes: Key prefixes of the objects a batch job's capture manifests
            list (its input and output). Default: - none (an endpoint's capture holds the data).
        metric_namespaces: The CloudWatch namespaces the jobs publish to (a ``StringLike``
            pattern). Default: - the endpoint namespaces.
    """
    stack = Stack.of(scope)
    # Captured requests and responses of this endpoint (or manifests of this batch job) only.
    data_store.grant_read(role, prefix=capture_prefix)
    # Batch capture lists the transform's input and output objects instead of copying them.
    for prefix in dict.fromkeys(captured_object_prefixes):
        data_store.grant_read(role, prefix=prefix)
    # Reports (and model quality's merged ground truth) under this endpoint's monitoring prefix.
    data_store.grant_read_write(role, prefix=monitoring_prefix)
    for prefix in dict.fromkeys(
        required(s.ground_truth_prefix)
        for s in requested.values()
        if isinstance(s, ModelQualitySettings | ModelBiasSettings)
    ):
        data_store.grant_read(role, prefix=prefix)
    # Exactly the baseline objects (and Clarify configurations); baselines the training pipeline
    # wrote are encrypted with the data store's key, which the grants above let the role decrypt.
    baseline_arns = list(
        dict.fromkeys(s3_object_arn(uri) for settings in requested.values() for uri in settings.baselines.uris())
    )
    iam.Grant.add_to_principal(grantee=role, actions=["s3:GetObject"], resource_arns=baseline_arns)
    iam.Grant.add_to_principal(grantee=role, actions=list(_VOLUME_KEY_ACTIONS), resource_arns=[volume_key.key_arn])

    repositories = list(dict.fromkeys(ecr_repository_arn(uri, stack) for uri in images.values()))
    iam.Grant.add_to_principal(grantee=role, actions=list(ECR_PULL_ACTIONS), resource_arns=repositories)
    opaque = [r for r in repositories if "*" in r]
    if opaque:
        acknowledge(
            role,
            "a Clarify image_uri is one deploy-time token, so its repository is unknown at synth; pulls are "
            "limited to the repositories of this account and region",
            *iam5_findings(resources=(nag_resource(scope, r) for r in opaque)),
        )
    star_reasons = [
        "cloudwatch:PutMetricData supports no resource-level permissions; it is limited to the Model Monitor "
        "namespaces by condition",
        "ecr:GetAuthorizationToken supports no resource-level permissions",
    ]
    iam.Grant.add_to_principal(grantee=role, actions=["ecr:GetAuthorizationToken"], resource_arns=["*"])
    iam.Grant.add_to_principal(
        grantee=role,
        actions=["cloudwatch:PutMetricData"],
        resource_arns=["*"],
        conditions={"StringLike": {"cloudwatch:namespace": [metric_namespaces]}},
    )
    log_group = stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name=_PROCESSING_LOG_GROUP,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
    iam.Grant.add_to_principal(grantee=role, actions=list(LOG_ACTIONS), resource_arns=[log_group, f"{log_group}:*"])
    if vpc_config is not None:
        _grant_vpc_access(scope, role, vpc_config)
    if MonitoringType.MODEL_EXPLAINABILITY in requested:
        grant_clarify_endpoints(scope, role)

    acknowledge(role, "; ".join(star_reasons), *iam5_findings(resources=("*",)))
    acknowledge(
        role,
        "processing jobs write log streams with generated names under /aws/sagemaker/ProcessingJobs only",
        *iam5_findings(resources=(nag_resource(scope, f"{log_group}:*"),)),
    )


def _grant_vpc_access(scope: Construct, role: iam.IRole, vpc_config: Any) -> None:
    """Let SageMaker attach the jobs to the subnets of ``vpc_config`` (the ``job_network`` value)."""
    if isinstance(vpc_config, dict):
        subnets, groups = vpc_config["subnets"], vpc_config["securityGroupIds"]
    else:
        # A VpcConfig that is one deploy-time value names no subnet at synth: any of the account's.
        subnets, groups = ["*"], ["*"]
        stack = Stack.of(scope)
        acknowledge(
            role,
            "the endpoint model's VpcConfig is a deploy-time value, so its subnets and security groups are "
            "unknown at synth; network interfaces are limited to the subnets and groups of this account",
            *iam5_findings(
                resources=(
                    nag_resource(scope, stack.format_arn(service="ec2", resource=kind, resource_name="*"))
                    for kind in ("subnet", "security-group")
                )
            ),
        )
    grant_sagemaker_vpc_access(role, subnet_ids=subnets, security_group_ids=groups)


def s3_object_arn(uri: str) -> str:
    """``s3://bucket/key`` → ``arn:<partition>:s3:::bucket/key``; a token URI is split at deploy time."""
    if not Token.is_unresolved(uri):
        return f"arn:{Aws.PARTITION}:s3:::{uri.removeprefix('s3://')}"
    return Fn.join("", [f"arn:{Aws.PARTITION}:s3:::", Fn.select(1, Fn.split("s3://", uri))])
