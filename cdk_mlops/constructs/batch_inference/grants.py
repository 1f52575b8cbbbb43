"""What the two roles of a BatchInference may do, and why their few wildcards are safe.

The *pipeline role* is what SageMaker Pipelines runs the pipeline as: it creates the model, the
processing job and the transform job, and passes the job role to them. The *job role* is what
the model and the jobs run as: it reads the dataset version and the model artifacts, writes the
scoring outputs and the capture, pulls the images and writes logs. Each cdk-nag acknowledgment
sits next to the grant that causes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from cdk_mlops.constructs.common import (
    ECR_PULL_ACTIONS,
    LOG_ACTIONS,
    acknowledge,
    ecr_repository_arn,
    grant_sagemaker_vpc_access,
    iam5_findings,
    nag_resource,
)
from cdk_mlops.constructs.data_store_base import IDataStore
from cdk_mlops.constructs.training_pipeline.grants import grant_script_inputs

__all__ = ["grant_job_role", "grant_pipeline_role"]

# What SageMaker Pipelines calls for each step, on the resource kind the step creates.
_STEP_ACTIONS: Final = {
    "model": ("sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:AddTags"),
    "processing-job": (
        "sagemaker:CreateProcessingJob",
        "sagemaker:DescribeProcessingJob",
        "sagemaker:StopProcessingJob",
        "sagemaker:AddTags",
    ),
    "transform-job": (
        "sagemaker:CreateTransformJob",
        "sagemaker:DescribeTransformJob",
        "sagemaker:StopTransformJob",
        "sagemaker:AddTags",
    ),
}
# The log groups SageMaker writes processing and transform job logs to (one stream per instance).
_LOG_GROUPS: Final = ("/aws/sagemaker/ProcessingJobs", "/aws/sagemaker/TransformJobs")
_DESCRIBE_PACKAGE: Final = "sagemaker:DescribeModelPackage"


def grant_pipeline_role(scope: Construct, role: iam.IRole, *, job_role: iam.IRole, model_package_arn: str) -> None:
    """Create the model and the jobs of the scoring pipeline, passing them ``job_role`` and nothing else.

    Args:
        scope: The BatchInference; the acknowledgments name its stack's resources.
        role: The pipeline role.
        job_role: The role the model and the jobs run as.
        model_package_arn: The package the Model step creates a model of (it is described then).
    """
    stack = Stack.of(scope)
    wildcards: list[str] = []
    for kind, actions in _STEP_ACTIONS.items():
        arn = stack.format_arn(service="sagemaker", resource=kind, resource_name="*")
        iam.Grant.add_to_principal(grantee=role, actions=list(actions), resource_arns=[arn])
        wildcards.append(arn)
    iam.Grant.add_to_principal(grantee=role, actions=[_DESCRIBE_PACKAGE], resource_arns=[model_package_arn])
    # CreateModel and the Create*Job calls hand the job role to SageMaker; no other role, no other service.
    iam.Grant.add_to_principal(
        grantee=role,
        actions=["iam:PassRole"],
        resource_arns=[job_role.role_arn],
        conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    )
    acknowledge(
        role,
        "SageMaker Pipelines names the models and jobs of each execution itself (per execution and step), so "
        "their ARNs can only be matched by a name wildcard; the actions are create/describe/stop/tag of the three "
        "kinds the scoring steps create, and the only role they can be given is the job role (iam:PassRole)",
        *iam5_findings(resources=(nag_resource(scope, arn) for arn in wildcards)),
    )


def grant_job_role(
    scope: Construct,
    role: iam.IRole,
    *,
    data_store: IDataStore,
    dataset: str,
    output_prefix: str,
    capture_prefix: str | None,
    model_package_arn: str,
    images: Sequence[str],
    script: s3_assets.Asset,
    subnet_ids: Sequence[str] = (),
    security_group_ids: Sequence[str] = (),
) -> None:
    """Read the dataset version and the model, write the outputs and the capture, pull images, log.

    Args:
        scope: The BatchInference; the acknowledgments name its stack's resources.
        role: The job role.
        data_store: Holds the dataset, its manifests, the model artifacts, the outputs and the capture.
        dataset: The scored dataset.
        output_prefix: ``batch-output/<name>/``: the transform input, the predictions and lineage.
        capture_prefix: ``batch-capture/<name>/``, or None without capture.
        model_package_arn: The package the model is created from.
        images: The images the model and the jobs pull.
        script: ``prepare_batch.py`` as an asset.
        subnet_ids: The subnets the jobs and the model run in. Default: - no VPC.
        security_group_ids: Their security groups. Default: - none.
    """
    stack = Stack.of(scope)
    # PrepareInput: the manifest (a ProcessingInput), then exactly the object versions it lists.
    data_store.grant_read(role, prefix=data_store.manifest_prefix(dataset))
    data_store.grant_read(role, dataset=dataset)
    # The model's ModelDataUrl: this library registers models with their artifacts under artifacts/.
    data_store.grant_read(role, prefix=data_store.artifacts_prefix)
    # PrepareInput writes the input and lineage.json there; the transform reads the input and writes next to it.
    data_store.grant_read(role, prefix=output_prefix)
    data_store.grant_write(role, prefix=output_prefix)
    if capture_prefix is not None:
        data_store.grant_write(role, prefix=capture_prefix)
    # Job volumes and outputs are encrypted with the store's key (SageMaker creates grants on it).
    data_store.encryption_key.grant(role, "kms:CreateGrant", "kms:DescribeKey")
    iam.Grant.add_to_principal(grantee=role, actions=[_DESCRIBE_PACKAGE], resource_arns=[model_package_arn])
    grant_script_inputs(role, [script])

    repositories = list(dict.fromkeys(ecr_repository_arn(uri, stack) for uri in images))
    iam.Grant.add_to_principal(grantee=role, actions=list(ECR_PULL_ACTIONS), resource_arns=repositories)
    iam.Grant.add_to_principal(grantee=role, actions=["ecr:GetAuthorizationToken"], resource_arns=["*"])
    iam.Grant.add_to_principal(
        grantee=role,
        actions=["cloudwatch:PutMetricData"],
        resource_arns=["*"],
        conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
    )
    groups = [
        stack.format_arn(
            service="logs", resource="log-group", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME
        )
        for name in _LOG_GROUPS
    ]
    streams = [f"{group}:*" for group in groups]
    iam.Grant.add_to_principal(grantee=role, actions=list(LOG_ACTIONS), resource_arns=[*groups, *streams])
    if subnet_ids:
        grant_sagemaker_vpc_access(role, subnet_ids=subnet_ids, security_group_ids=security_group_ids)

    opaque = [r for r in repositories if "*" in r]
    if opaque:
        acknowledge(
            role,
            "an image URI that is one deploy-time token cannot be split at synth, so its repository is unknown; "
            "pulls are limited to the repositories of this account and region",
            *iam5_findings(resources=(nag_resource(scope, r) for r in opaque)),
        )
    acknowledge(
        role,
        "SageMaker writes one log stream per job instance, with generated names, under the processing and "
        "transform job log groups; creating and writing streams is limited to those two groups",
        *iam5_findings(resources=(nag_resource(scope, s) for s in streams)),
    )
    acknowledge(
        role,
        "cloudwatch:PutMetricData and ecr:GetAuthorizationToken support no resource-level permissions; "
        "metrics are limited to the SageMaker namespaces by condition",
        *iam5_findings(resources=("*",)),
    )
    _acknowledge_store_grants(role)


def _acknowledge_store_grants(role: iam.IRole) -> None:
    acknowledge(
        role,
        "kms:GenerateDataKey*/ReEncrypt* and s3 Get*/List*/Delete*/Abort* prefixes come from the data store's "
        "grants, which limit objects to the dataset, its manifests, the model artifacts and this pipeline's "
        "own output and capture prefixes",
        *iam5_findings(
            actions=(
                "kms:GenerateDataKey*",
                "kms:ReEncrypt*",
                "s3:GetObject*",
                "s3:GetBucket*",
                "s3:List*",
                "s3:Abort*",
                "s3:DeleteObject*",
            )
        ),
    )
