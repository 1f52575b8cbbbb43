"""Training pipeline and model registry: a SageMaker Pipeline built at synth time, with lineage to data versions.

Two constructs share everything but the definition: :class:`TrainingPipeline` builds the
default pipeline with the library's standard-library builder, and :class:`SdkTrainingPipeline`
(``TrainingPipeline.from_sdk_pipeline``) deploys a pipeline authored with the SageMaker Python
SDK. Both can create a SageMaker managed MLflow tracking server (:class:`MlflowSettings`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from aws_cdk import Annotations, ArnFormat, Aws, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_mlops import image_uris, sdk
from cdk_mlops import pipeline_definition as pd
from cdk_mlops.constructs.common import (
    ACCOUNT_ID,
    ECR_PULL_ACTIONS,
    LOG_ACTIONS,
    SAGEMAKER_NAME,
    acknowledge,
    depend_on_role_policy,
    ecr_repository_arn,
    grant_sagemaker_vpc_access,
    iam5_findings,
    nag_resource,
    sagemaker_image_uri,
    select_subnets,
)
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.datasets import dataset_name_problems, manifest_prefix
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.ml import EVALUATE_SCRIPT, PREPROCESS_SCRIPT, TRACK_SCRIPT

#: CloudWatch namespace of SageMaker Pipelines execution metrics (dimension ``PipelineName``).
PIPELINE_METRICS_NAMESPACE = "AWS/Sagemaker/ModelBuildingPipeline"

#: What a job needs on a SageMaker managed MLflow tracking server to log runs with the MLflow
#: client and the ``sagemaker-mlflow`` plugin: find or create its experiment, create, find
#: (a retried ``Track`` step logs into its run again), read and end runs, log parameters,
#: metrics, tags, datasets (inputs), models and logged-model outputs.
#: No UI access, no deletes, no registered models (the pipeline's gate owns registration).
MLFLOW_LOGGING_ACTIONS: Final = (
    "sagemaker-mlflow:GetExperiment",
    "sagemaker-mlflow:GetExperimentByName",
    "sagemaker-mlflow:CreateExperiment",
    "sagemaker-mlflow:CreateRun",
    "sagemaker-mlflow:GetRun",
    "sagemaker-mlflow:SearchRuns",
    "sagemaker-mlflow:UpdateRun",
    "sagemaker-mlflow:LogParam",
    "sagemaker-mlflow:LogMetric",
    "sagemaker-mlflow:LogBatch",
    "sagemaker-mlflow:SetTag",
    "sagemaker-mlflow:LogInputs",
    "sagemaker-mlflow:LogOutputs",
    "sagemaker-mlflow:LogModel",
    "sagemaker-mlflow:LogLoggedModelParams",
    "sagemaker-mlflow:SetLoggedModelTags",
    "sagemaker-mlflow:FinalizeLoggedModel",
)
#: What a person needs to open the tracking server's MLflow UI (a presigned URL, then the UI).
MLFLOW_UI_ACTIONS: Final = ("sagemaker:CreatePresignedMlflowTrackingServerUrl", "sagemaker-mlflow:AccessUI")
#: The MLflow client the ``Track`` step installs when its image lacks one. The step runs in the
#: scikit-learn 1.2-1 image, whose Python is 3.9: mlflow 2.16.2 supports Python 3.8+ (3.2 and
#: later need 3.10) and matches the managed servers' 2.16 release; an older client logging to
#: a newer (3.x) server is the direction MLflow keeps compatible. sagemaker-mlflow 0.1.x is the
#: plugin line built for mlflow 2.x (0.3 and later replace the S3 artifact store with presigned
#: URLs and load mlflow 3 modules); 0.1.1 adds the GovCloud partitions to 0.1.0. It depends on
#: the full ``mlflow`` package, so that is what is pinned (not ``mlflow-skinny``).
MLFLOW_CLIENT_REQUIREMENTS: Final = ("mlflow==2.16.2", "sagemaker-mlflow==0.1.1")
#: The VPC endpoints the MLflow ``Track`` step needs in subnets without a route to the internet,
#: by endpoint service name (after ``com.amazonaws.<region>.``, or ``aws.sagemaker.<region>.`` for
#: MLflow): the SageMaker API (``DescribeTrainingJob``), SageMaker MLflow (the tracking server's
#: REST API; ``InterfaceVpcEndpointAwsService.SAGEMAKER_EXPERIMENTS``) and S3 (the artifact store,
#: a gateway endpoint). The endpoints every job needs (ECR, CloudWatch Logs, S3) are not repeated
#: here; a private package mirror (``MlflowSettings.package_index_url``) must be reachable too.
MLFLOW_VPC_ENDPOINTS: Final[Mapping[str, ec2.IInterfaceVpcEndpointService | ec2.IGatewayVpcEndpointService]] = (
    MappingProxyType(
        {
            "sagemaker.api": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
            "experiments": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_EXPERIMENTS,
            "s3": ec2.GatewayVpcEndpointAwsService.S3,
        }
    )
)
#: At most this many subnets and security groups in a job's ``VpcConfig`` (SageMaker API).
_MAX_SUBNETS, _MAX_SECURITY_GROUPS = 16, 5

_TRACKING_SERVER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
_MAINTENANCE_WINDOW = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun):([01]\d|2[0-3]):([0-5]\d)$")
_MLFLOW_VERSION = re.compile(r"^\d+(\.\d+)+$")
_ECR_IMAGE = re.compile(r"^([0-9]{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^:@\s]+)")

# What the pipeline (and every job it starts, sharing the role) does in SageMaker, per job kind.
_JOB_KINDS: Final = ("processing-job", "training-job", "transform-job", "hyper-parameter-tuning-job")
_JOB_API: Final = {
    "processing-job": "ProcessingJob",
    "training-job": "TrainingJob",
    "transform-job": "TransformJob",
    "hyper-parameter-tuning-job": "HyperParameterTuningJob",
}
# Step types of a definition and the job kind they start.
_STEP_JOBS: Final = {
    "Processing": "processing-job",
    "QualityCheck": "processing-job",
    "ClarifyCheck": "processing-job",
    "Training": "training-job",
    "Transform": "transform-job",
    "Tuning": "hyper-parameter-tuning-job",
}
# Step types that need nothing beyond the role's own grants.
_STEPS_WITHOUT_GRANTS: Final = frozenset({"Condition", "Fail", "RegisterModel", "Model"})
_REGISTRY_ACTIONS = ("sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage", "sagemaker:AddTags")
_MODEL_ACTIONS = ("sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:AddTags")
_CROSS_ACCOUNT_READ = (
    "sagemaker:DescribeModelPackageGroup",
    "sagemaker:DescribeModelPackage",
    "sagemaker:ListModelPackages",
)


class MlflowServerSize(StrEnum):
    """Size of a SageMaker managed MLflow tracking server (about 25, 50 and 100 users)."""

    SMALL = "Small"
    MEDIUM = "Medium"
    LARGE = "Large"


@dataclass(frozen=True, kw_only=True)
class MlflowSettings:
    """A SageMaker managed MLflow tracking server for a training pipeline.

    Its artifact store is the data store (``s3://<bucket>/artifacts/mlflow/<server name>/``),
    its role may only read and write that prefix (and use the store's key). Automatic model
    registration stays off: the pipeline's gate decides what enters the model registry.

    With :class:`TrainingPipeline`, a ``Track`` step records every execution as one MLflow run
    (hyperparameters, training and test metrics, lineage tags, ``evaluation.json``). It runs in
    the scikit-learn image and installs ``client_requirements`` with pip, so it needs outbound
    HTTPS to PyPI (or ``package_index_url``) as well as to the SageMaker API, the tracking
    server and S3. With ``logging_image_uri`` nothing is installed and no package index is needed.

    In a VPC (``TrainingPipeline(vpc=...)``) the step reaches the SageMaker API, the tracking
    server and S3 through VPC endpoints: ``com.amazonaws.<region>.sagemaker.api``,
    ``aws.sagemaker.<region>.experiments`` (SageMaker MLflow) and the S3 gateway endpoint, the
    services of :data:`MLFLOW_VPC_ENDPOINTS`. PyPI has no VPC endpoint, so the pipeline needs
    ``logging_image_uri`` or ``package_index_url`` there (synth fails without either). A
    :class:`SdkTrainingPipeline` gets no ``Track`` step: its own steps log, with the ARN it
    substitutes, and need the same endpoints.

    Attributes:
        size: Default: - ``Small``.
        tracking_server_name: Default: - ``<pipeline_name>-mlflow``.
        mlflow_version: Default: - the version SageMaker chooses when the server is created.
        weekly_maintenance_window_start: ``Day:HH:MM`` in UTC, e.g. ``Sun:03:00``.
            Default: - chosen by SageMaker.
        experiment_name: The MLflow experiment of the pipeline's executions.
            Default: - the pipeline's name.
        client_requirements: Pinned packages (``name==version`` or ``name>=low,<high``) the
            ``Track`` step installs with pip when its image lacks the MLflow client; ignored with
            ``logging_image_uri``. Default: - :data:`MLFLOW_CLIENT_REQUIREMENTS` (mlflow 2.16.2
            and sagemaker-mlflow 0.1.1, for the image's Python 3.9).
        logging_image_uri: An ECR image with Python, boto3, ``mlflow`` and ``sagemaker-mlflow``
            installed, for the ``Track`` step; nothing is installed at run time, so the step
            needs no access to PyPI. The execution role may pull it.
            Default: - the scikit-learn image, with ``client_requirements`` installed per run.
        package_index_url: The ``https://`` index of a private package mirror (pip's
            ``--index-url``, e.g. ``https://pypi.example.internal/simple``) that the ``Track``
            step installs ``client_requirements`` from, for subnets without a route to PyPI. It
            is written into the pipeline definition, so it holds no credentials; ignored with
            ``logging_image_uri``. Default: - PyPI.
    """

    size: MlflowServerSize = MlflowServerSize.SMALL
    tracking_server_name: str | None = None
    mlflow_version: str | None = None
    weekly_maintenance_window_start: str | None = None
    experiment_name: str | None = None
    client_requirements: tuple[str, ...] = MLFLOW_CLIENT_REQUIREMENTS
    logging_image_uri: str | None = None
    package_index_url: str | None = None


def mlflow_settings_problems(settings: MlflowSettings, pipeline_name: str) -> list[str]:
    """Every problem with ``settings`` (tokens are skipped), one message each."""
    problems: list[str] = []
    size: object = settings.size
    if not isinstance(size, MlflowServerSize):
        problems.append(
            f"mlflow.size {settings.size!r} is not a size; use one of: {', '.join(s.value for s in MlflowServerSize)}"
        )
    name = settings.tracking_server_name or f"{pipeline_name}-mlflow"
    if not Token.is_unresolved(name) and not _TRACKING_SERVER_NAME.match(name):
        problems.append(
            f"mlflow.tracking_server_name {name!r} is not valid; use 1-256 letters, digits and hyphens, "
            "starting and ending with a letter or digit"
        )
    version = settings.mlflow_version
    if version is not None and not Token.is_unresolved(version) and not _MLFLOW_VERSION.match(version):
        problems.append(f"mlflow.mlflow_version {version!r} is not a version; use e.g. '2.16'")
    window = settings.weekly_maintenance_window_start
    if window is not None and not Token.is_unresolved(window) and not _MAINTENANCE_WINDOW.match(window):
        problems.append(
            f"mlflow.weekly_maintenance_window_start {window!r} is not valid; use Day:HH:MM in UTC, e.g. 'Sun:03:00'"
        )
    requirements: object = settings.client_requirements
    if isinstance(requirements, str) or not isinstance(requirements, tuple | list):
        problems.append(
            f"mlflow.client_requirements {requirements!r} must be a tuple of requirements, "
            f"e.g. {MLFLOW_CLIENT_REQUIREMENTS!r}"
        )
    else:
        if not requirements and settings.logging_image_uri is None:
            problems.append(
                "mlflow.client_requirements is empty, so the Track step has no MLflow client to install; "
                "keep the default pins or set logging_image_uri to an image that has mlflow and sagemaker-mlflow"
            )
        for index, requirement in enumerate(requirements):
            problem = pd.requirement_problem(f"mlflow.client_requirements[{index}]", requirement)
            if problem:
                problems.append(problem)
    image = settings.logging_image_uri
    if image is not None and not Token.is_unresolved(image) and not _ECR_IMAGE.match(image):
        problems.append(
            f"mlflow.logging_image_uri {image!r} is not an ECR image URI "
            "(<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>); push the image to ECR"
        )
    index_problem = pd.package_index_problem("mlflow.package_index_url", settings.package_index_url)
    if index_problem:
        problems.append(index_problem)
    return problems


class _PipelineResources(Construct):
    """What every training pipeline construct defines around its definition.

    The execution role and its grants, the model package group, the optional MLflow tracking
    server, the ``AWS::SageMaker::Pipeline``, and the notifications of failed executions.
    """

    pipeline: sagemaker.CfnPipeline
    pipeline_name: str
    pipeline_arn: str
    definition: dict[str, Any]
    model_package_group: sagemaker.CfnModelPackageGroup | None
    model_package_group_name: str
    role: iam.IRole
    topic: sns.ITopic
    failed_alarm: cw.Alarm
    mlflow_tracking_server: sagemaker.CfnMlflowTrackingServer | None
    mlflow_role: iam.Role | None
    mlflow_tracking_arn: str | None
    mlflow_artifacts_prefix: str | None

    # ------------------------------------------------------------------ checks

    @staticmethod
    def _common_problems(
        pipeline_name: str,
        group_name: str,
        cross_account_read_accounts: Sequence[str],
        mlflow: MlflowSettings | None,
    ) -> list[str]:
        problems: list[str] = []
        for label, value in (("pipeline_name", pipeline_name), ("model_package_group_name", group_name)):
            if not Token.is_unresolved(value) and not SAGEMAKER_NAME.match(value):
                problems.append(
                    f"{label} {value!r} is not valid; use 1-63 lower-case letters, digits and hyphens, "
                    "starting and ending with a letter or digit"
                )
        for account in cross_account_read_accounts:
            if not ACCOUNT_ID.match(account):
                problems.append(f"cross_account_read_accounts: {account!r} is not a 12-digit AWS account id")
        if mlflow is not None:
            problems += mlflow_settings_problems(mlflow, pipeline_name)
        return problems

    # ------------------------------------------------------------------ resources

    def _define_names(self, pipeline_name: str, group_name: str) -> tuple[str, str]:
        """Set the names and ARNs; returns the group's ARN and the ARN pattern of its packages."""
        stack = Stack.of(self)
        self.pipeline_name = pipeline_name
        self.model_package_group_name = group_name
        self.pipeline_arn = stack.format_arn(service="sagemaker", resource="pipeline", resource_name=pipeline_name)
        group_arn = stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=group_name)
        package_arns = stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{group_name}/*")
        return group_arn, package_arns

    def _define_role(self, role: iam.IRole | None) -> None:
        self.role = role or iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Runs the {self.pipeline_name} pipeline and its jobs (least privilege, no managed policies)",
        )

    def _define_group(
        self,
        create: bool,
        description: str,
        group_arn: str,
        package_arns: str,
        accounts: Sequence[str],
        removal_policy: RemovalPolicy,
    ) -> None:
        self.model_package_group = None
        if create:
            self.model_package_group = sagemaker.CfnModelPackageGroup(
                self,
                "ModelPackageGroup",
                model_package_group_name=self.model_package_group_name,
                model_package_group_description=description,
                model_package_group_policy=self._registry_policy(group_arn, package_arns, accounts),
            )
            self.model_package_group.apply_removal_policy(removal_policy)

    def _define_mlflow(
        self, settings: MlflowSettings | None, data_store: VersionedDataStore, removal_policy: RemovalPolicy
    ) -> None:
        """The tracking server, its role, and the pipeline role's logging grants."""
        self.mlflow_tracking_server = None
        self.mlflow_role = None
        self.mlflow_tracking_arn = None
        self.mlflow_artifacts_prefix = None
        if settings is None:
            return
        name = settings.tracking_server_name or f"{self.pipeline_name}-mlflow"
        # One folder per server: two servers sharing a folder would mix their experiments' files.
        self.mlflow_artifacts_prefix = f"{data_store.artifacts_prefix.rstrip('/')}/mlflow/{name}/"
        self.mlflow_role = iam.Role(
            self,
            "MlflowRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"The {name} MLflow tracking server: its artifact store in the data store, nothing else",
        )
        data_store.grant_read_write(self.mlflow_role, prefix=self.mlflow_artifacts_prefix)
        self.mlflow_tracking_server = sagemaker.CfnMlflowTrackingServer(
            self,
            "MlflowTrackingServer",
            tracking_server_name=name,
            artifact_store_uri=data_store.s3_uri(self.mlflow_artifacts_prefix),
            role_arn=self.mlflow_role.role_arn,
            tracking_server_size=MlflowServerSize(settings.size).value,
            mlflow_version=settings.mlflow_version,
            weekly_maintenance_window_start=settings.weekly_maintenance_window_start,
            automatic_model_registration=False,
        )
        # The server checks its artifact store when it starts: the role's policy must exist first
        # (the role itself is referenced with Fn::GetAtt).
        depend_on_role_policy(self.mlflow_tracking_server, self.mlflow_role)
        self.mlflow_tracking_server.apply_removal_policy(removal_policy)
        self.mlflow_tracking_arn = self.mlflow_tracking_server.attr_tracking_server_arn
        self._mlflow_data_store = data_store
        self.grant_mlflow_logging(self.role)

    def _define_pipeline(self, definition: dict[str, Any], description: str) -> None:
        self.definition = definition
        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=self.pipeline_name,
            pipeline_description=description,
            role_arn=self.role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": Stack.of(self).to_json_string(definition)},
        )
        if self.model_package_group is not None:
            self.pipeline.node.add_dependency(self.model_package_group)

    def _grant_jobs(
        self,
        job_kinds: Iterable[str],
        registry_arns: Sequence[str],
        images: Iterable[str],
        *,
        create_models: bool = False,
    ) -> None:
        """SageMaker jobs, the registry, logs, metrics and image pulls for the execution role."""
        stack = Stack.of(self)
        kinds = [k for k in _JOB_KINDS if k in set(job_kinds)]
        jobs = [stack.format_arn(service="sagemaker", resource=kind, resource_name="*") for kind in kinds]
        if jobs:
            actions = [f"sagemaker:{verb}{_JOB_API[kind]}" for kind in kinds for verb in ("Create", "Describe", "Stop")]
            iam.Grant.add_to_principal(grantee=self.role, actions=[*actions, "sagemaker:AddTags"], resource_arns=jobs)
        if registry_arns:
            iam.Grant.add_to_principal(
                grantee=self.role, actions=list(_REGISTRY_ACTIONS), resource_arns=list(registry_arns)
            )
        models = stack.format_arn(service="sagemaker", resource="model", resource_name="*")
        if create_models:
            iam.Grant.add_to_principal(grantee=self.role, actions=list(_MODEL_ACTIONS), resource_arns=[models])
        self.role.grant_pass_role(self.role)
        log_groups = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name="/aws/sagemaker/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        iam.Grant.add_to_principal(grantee=self.role, actions=list(LOG_ACTIONS), resource_arns=[log_groups])
        iam.Grant.add_to_principal(
            grantee=self.role,
            actions=["cloudwatch:PutMetricData"],
            resource_arns=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
        )
        repositories = list(dict.fromkeys(ecr_repository_arn(uri, stack) for uri in images))
        if repositories:
            iam.Grant.add_to_principal(grantee=self.role, actions=list(ECR_PULL_ACTIONS), resource_arns=repositories)
        opaque = [r for r in repositories if "*" in r]
        if opaque:
            acknowledge(
                self.role,
                "an image URI that is one deploy-time token cannot be split at synth, so its repository is "
                "unknown; pulls are limited to the repositories of this account and region",
                *iam5_findings(resources=(nag_resource(self, r) for r in opaque)),
            )
        iam.Grant.add_to_principal(grantee=self.role, actions=["ecr:GetAuthorizationToken"], resource_arns=["*"])

        if jobs:
            acknowledge(
                self.role,
                "job names are generated by SageMaker Pipelines per execution (pipelines-<id>-<step>-...), "
                "so job ARNs can only be matched by a name wildcard; actions are limited to create/describe/stop",
                *iam5_findings(resources=(nag_resource(self, j) for j in jobs)),
            )
        if registry_arns:
            acknowledge(
                self.role,
                "model package versions are numbered by SageMaker; the wildcard is limited to this one group",
                *iam5_findings(resources=(nag_resource(self, a) for a in registry_arns if "*" in a)),
            )
        if create_models:
            acknowledge(
                self.role,
                "model names are generated by SageMaker Pipelines per execution; actions are create/describe only",
                *iam5_findings(resources=(nag_resource(self, models),)),
            )
        acknowledge(
            self.role,
            "SageMaker jobs create their log groups and streams under /aws/sagemaker/ with generated names",
            *iam5_findings(resources=(nag_resource(self, log_groups),)),
        )
        acknowledge(
            self.role,
            "cloudwatch:PutMetricData and ecr:GetAuthorizationToken support no resource-level permissions; "
            "metrics are limited to the SageMaker namespaces by condition",
            *iam5_findings(resources=("*",)),
        )

    def _grant_data(self, data_store: VersionedDataStore, datasets: Sequence[str], artifacts_prefix: str) -> None:
        """Read the datasets and their manifests, read/write the artifacts prefix, use the store's key."""
        for dataset in datasets:
            # Preprocessing reads the manifest and exactly the object versions it lists.
            data_store.grant_read(self.role, dataset=dataset)
            data_store.grant_read(self.role, prefix=data_store.manifest_prefix(dataset))
        data_store.grant_read_write(self.role, prefix=f"{artifacts_prefix}/")
        # Job volumes and outputs are encrypted with the data store's key.
        data_store.encryption_key.grant(self.role, "kms:CreateGrant", "kms:DescribeKey")
        acknowledge(
            self.role,
            "kms:GenerateDataKey*/ReEncrypt* and s3 Get*/List*/Delete* prefixes come from the data store's "
            "grants, which limit objects to the dataset, its manifests and this pipeline's artifacts prefix",
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

    def _define_notifications(self, topic: sns.ITopic | None, removal_policy: RemovalPolicy) -> None:
        self.topic = topic or self._topic(removal_policy)
        failed = events.Rule(
            self,
            "Failed",
            description=f"{self.node.path}: an execution of {self.pipeline_name} failed",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Building Pipeline Execution Status Change"],
                detail={"pipelineArn": [self.pipeline_arn], "currentPipelineExecutionStatus": ["Failed"]},
            ),
        )
        failed.add_target(targets.SnsTopic(self.topic))
        self.failed_alarm = cw.Alarm(
            self,
            "FailedAlarm",
            alarm_description=(
                f"{self.node.path}: an execution of {self.pipeline_name} failed; see its steps in SageMaker"
            ),
            metric=self.metric_executions_failed(),
            threshold=0,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self.failed_alarm.add_alarm_action(cw_actions.SnsAction(self.topic))

    def _registry_policy(self, group_arn: str, package_arns: str, accounts: Sequence[str]) -> Any:
        if not accounts:
            return None
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "CrossAccountRead",
                    "Effect": "Allow",
                    "Principal": {"AWS": [f"arn:{Aws.PARTITION}:iam::{a}:root" for a in accounts]},
                    "Action": list(_CROSS_ACCOUNT_READ),
                    "Resource": [group_arn, package_arns],
                }
            ],
        }

    def _topic(self, removal_policy: RemovalPolicy) -> sns.Topic:
        key = kms.Key(
            self,
            "NotificationsKey",
            description=f"Encrypts the {self.node.path} notifications",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        # EventBridge and CloudWatch alarms publish to the encrypted topic.
        for service in ("events.amazonaws.com", "cloudwatch.amazonaws.com"):
            key.grant(iam.ServicePrincipal(service), "kms:Decrypt", "kms:GenerateDataKey")
        return sns.Topic(self, "Notifications", master_key=key, enforce_ssl=True)

    # ------------------------------------------------------------------ grants

    def grant_start_execution(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let a principal start (and list) executions of this pipeline only."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sagemaker:StartPipelineExecution", "sagemaker:ListPipelineExecutions"],
            resource_arns=[self.pipeline_arn],
        )

    def grant_read_registry(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let a principal describe the model package group and its versions (e.g. a deployment step)."""
        stack = Stack.of(self)
        group = stack.format_arn(
            service="sagemaker", resource="model-package-group", resource_name=self.model_package_group_name
        )
        packages = stack.format_arn(
            service="sagemaker", resource="model-package", resource_name=f"{self.model_package_group_name}/*"
        )
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=list(_CROSS_ACCOUNT_READ), resource_arns=[group, packages]
        )

    def _require_mlflow(self, method: str) -> str:
        if self.mlflow_tracking_arn is None:
            raise ConfigurationError(self, f"{method}: this pipeline has no MLflow tracking server; pass mlflow=")
        return self.mlflow_tracking_arn

    def grant_mlflow_logging(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let a principal log runs to the tracking server (:data:`MLFLOW_LOGGING_ACTIONS`).

        Also read/write of the server's artifact store prefix, because the MLflow client
        uploads artifacts to S3 itself. The pipeline's role gets this grant.

        Raises:
            ConfigurationError: when the pipeline has no MLflow tracking server.
        """
        arn = self._require_mlflow("grant_mlflow_logging")
        grant = iam.Grant.add_to_principal(grantee=grantee, actions=list(MLFLOW_LOGGING_ACTIONS), resource_arns=[arn])
        prefix = self.mlflow_artifacts_prefix or ""
        return grant.combine(self._mlflow_data_store.grant_read_write(grantee, prefix=prefix))

    def grant_mlflow_ui(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let a person open the tracking server's MLflow UI (:data:`MLFLOW_UI_ACTIONS`), read-only otherwise.

        Raises:
            ConfigurationError: when the pipeline has no MLflow tracking server.
        """
        arn = self._require_mlflow("grant_mlflow_ui")
        return iam.Grant.add_to_principal(grantee=grantee, actions=list(MLFLOW_UI_ACTIONS), resource_arns=[arn])

    # ------------------------------------------------------------------ metrics

    def _metric(self, name: str, **options: Any) -> cw.Metric:
        return cw.Metric(
            namespace=PIPELINE_METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={"PipelineName": self.pipeline_name},
            statistic="Sum",
            period=Duration.minutes(5),
            **options,
        )

    def metric_executions_started(self, **options: Any) -> cw.Metric:
        """Executions started, summed over 5 minutes."""
        return self._metric("ExecutionStarted", **options)

    def metric_executions_succeeded(self, **options: Any) -> cw.Metric:
        """Executions that succeeded (a model was registered), summed over 5 minutes."""
        return self._metric("ExecutionSucceeded", **options)

    def metric_executions_failed(self, **options: Any) -> cw.Metric:
        """Executions that failed (including models rejected by the gate), summed over 5 minutes."""
        return self._metric("ExecutionFailed", **options)


class TrainingPipeline(_PipelineResources):
    """A SageMaker Pipeline (preprocess ► baseline ► train ► evaluate ► gate ► register) and its model registry.

    The definition is built at synth time by :mod:`cdk_mlops.pipeline_definition`
    (no network, no AWS calls) and deployed as ``AWS::SageMaker::Pipeline``.
    Every execution trains on one dataset version: the ``InputManifestUri``
    parameter names a manifest written by :func:`cdk_mlops.datasets.snapshot`
    (the retrain trigger passes it), and the registered model package records
    that manifest's URI and sha256, the data version, the execution ARN and
    the source revision, so every model traces back to the exact bytes it was
    trained on. A model is registered only when its evaluation metric passes
    the threshold and beats the currently approved model (champion/challenger);
    otherwise the execution fails with the reason.

    Each execution is also a SageMaker Experiments trial of the pipeline's experiment
    (``PipelineExperimentConfig``), except in regions without SageMaker Experiments
    (:func:`cdk_mlops.image_uris.has_experiments`), where executions with it would fail. An
    environment-agnostic stack keeps it: deploy it only to regions with Experiments, or give the
    stack a region.

    With a ``vpc``, every job the pipeline starts runs in its subnets with its security groups
    (see :mod:`cdk_mlops.pipeline_definition`, "Private networks"), and the execution role may
    create and delete the jobs' network interfaces in those subnets only
    (:func:`~cdk_mlops.constructs.common.grant_sagemaker_vpc_access`). The subnets need VPC
    endpoints for what the jobs call: S3, ECR (api, dkr), CloudWatch Logs, KMS and STS, and for
    MLflow :data:`MLFLOW_VPC_ENDPOINTS`.

    For a pipeline authored with the SageMaker Python SDK, use :meth:`from_sdk_pipeline`.

    Example::

        training = TrainingPipeline(self, "Training", data_store=store, dataset="churn",
                                    pipeline_name="churn-training",
                                    vpc=network.vpc, vpc_subnets=network.vpc_subnets,
                                    security_groups=network.security_groups)
        training.grant_start_execution(trigger_role)

    Attributes:
        pipeline: The ``AWS::SageMaker::Pipeline``.
        pipeline_name: Its name (lower case).
        pipeline_arn: Its ARN.
        definition: The pipeline definition (a dict that may contain tokens).
        model_package_group: The model registry group, when this construct creates it.
        model_package_group_name: The group models are registered in.
        role: The execution role of the pipeline and of every job it starts.
        topic: Where failed executions are announced.
        failed_alarm: In ALARM when an execution fails.
        scripts: The ML scripts shipped as assets, by name (``preprocess``, ``evaluate``, and
            ``track`` with ``mlflow``).
        mlflow_tracking_server: The MLflow tracking server, with ``mlflow``.
        mlflow_role: The tracking server's role, with ``mlflow``.
        mlflow_tracking_arn: The tracking server's ARN, with ``mlflow``.
        mlflow_artifacts_prefix: Its artifact store's key prefix in the data store, with ``mlflow``.
        security_groups: The jobs' security groups, with ``vpc`` (empty without).
        connections: The jobs' network connections, with ``vpc``; for example
            ``database.connections.allow_default_port_from(training.connections)``. None without
            ``vpc``.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        data_store: VersionedDataStore,
        dataset: str,
        pipeline_name: str,
        settings: pd.TrainingSettings | None = None,
        model_package_group_name: str | None = None,
        create_model_package_group: bool = True,
        auto_approve: bool = False,
        training_image_uri: str | None = None,
        source_revision: str = "unknown",
        cross_account_read_accounts: Sequence[str] = (),
        notification_topic: sns.ITopic | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        mlflow: MlflowSettings | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
    ) -> None:
        """Define the pipeline.

        Args:
            scope: The parent construct.
            id: The construct id.
            data_store: Holds the dataset, its manifests and the pipeline's
                artifacts (under ``artifacts/<pipeline_name>/``); its key encrypts
                job volumes and outputs.
            dataset: The dataset the pipeline trains on.
            pipeline_name: Lower-case name of the pipeline (1-63 letters, digits, hyphens).
            settings: Metric, threshold, champion margin, instance types, spot
                training, hyperparameters, split. Default: - binary
                classification, AUC >= 0.7, ml.m5 instances, no spot.
            model_package_group_name: The registry group. Default: - ``<pipeline_name>-models``.
            create_model_package_group: Create the group here; False registers
                into an existing group of that name. Default: - True.
            auto_approve: Register models as ``Approved`` (dev). Default: - False:
                ``PendingManualApproval``; a person approves.
            training_image_uri: An ECR image for training in your account
                (bring your own algorithm); it must follow the SageMaker
                training contract. Default: - the SageMaker built-in XGBoost
                image of the stack's region.
            source_revision: Recorded on every registered model. Default: - ``unknown``.
            cross_account_read_accounts: Accounts that may read the registry
                (e.g. staging and prod deploying a model trained in dev): the model
                package group's resource policy, and the data store's bucket and key
                policies for this pipeline's artifacts (model archives, baselines).
                Default: - none.
            notification_topic: Where failed executions are announced.
                Default: - a new KMS-encrypted topic.
            removal_policy: For the model package group, the MLflow tracking server and the
                notification topic's key. Default: - RETAIN; registered models and
                experiment history outlive the stack.
            mlflow: A SageMaker managed MLflow tracking server whose artifact store is the
                data store; executions are recorded in it, ``Train`` and ``Evaluate`` get
                its ARN in ``MLFLOW_TRACKING_ARN``, and a ``Track`` step logs each execution
                as an MLflow run (``ml/track.py``; see :class:`MlflowSettings` for its network
                needs). Default: - no MLflow; executions are recorded as SageMaker experiment
                runs only (where SageMaker Experiments is available).
            vpc: Run every job of the pipeline in this VPC. With ``mlflow``, the ``Track`` step
                needs ``mlflow.logging_image_uri`` or ``mlflow.package_index_url`` there.
                Default: - no VPC; the jobs use SageMaker's network.
            vpc_subnets: The subnets of ``vpc`` the jobs run in (at most 16). Default: - the
                VPC's default selection (its private subnets when it has them).
            security_groups: The jobs' security groups in ``vpc`` (1 to 5). Default: - a new
                group with no inbound rule except from its own members (the instances of a
                distributed training job talk to each other) and outbound HTTPS (TCP 443) to
                anywhere the subnets route to (in an isolated VPC: its endpoints only), plus
                any traffic to its own members.

        Raises:
            ConfigurationError: listing every invalid argument, before any
                resource is defined.
        """
        super().__init__(scope, id)
        settings = settings or pd.TrainingSettings()
        group_name = model_package_group_name or f"{pipeline_name}-models"
        problems = [f"settings: {p}" for p in pd.training_settings_problems(settings)]
        problems += [f"dataset: {p}" for p in dataset_name_problems(dataset)]
        problems += self._common_problems(pipeline_name, group_name, cross_account_read_accounts, mlflow)
        byo_image = training_image_uri is not None and not Token.is_unresolved(training_image_uri)
        if byo_image and ".dkr.ecr." not in str(training_image_uri):
            problems.append(
                f"training_image_uri {training_image_uri!r} is not an ECR image URI "
                "(<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>)"
            )
        subnets, network_problems = _job_subnets(vpc, vpc_subnets, security_groups)
        problems += network_problems
        installs_from_pypi = (
            mlflow is not None and mlflow.logging_image_uri is None and mlflow.package_index_url is None
        )
        if vpc is not None and installs_from_pypi:
            problems.append(
                "mlflow: in a VPC the Track step cannot install the MLflow client from PyPI (it has no VPC "
                "endpoint); set mlflow.logging_image_uri to an ECR image with mlflow and sagemaker-mlflow "
                "installed, or mlflow.package_index_url to your package mirror's https:// index (with a NAT "
                "gateway, 'https://pypi.org/simple' keeps PyPI)"
            )
        if problems:
            raise ConfigurationError(self, problems)

        group_arn, package_arns = self._define_names(pipeline_name, group_name)
        self._define_role(None)
        self._define_network(vpc, security_groups)
        group_ids = [g.security_group_id for g in self.security_groups]
        self.scripts = {
            "preprocess": s3_assets.Asset(self, "PreprocessScript", path=str(PREPROCESS_SCRIPT)),
            "evaluate": s3_assets.Asset(self, "EvaluateScript", path=str(EVALUATE_SCRIPT)),
        }
        if mlflow is not None:
            self.scripts["track"] = s3_assets.Asset(self, "TrackScript", path=str(TRACK_SCRIPT))
        self._grant_script_inputs(self.scripts.values())
        self._define_group(
            create_model_package_group,
            f"Models trained by the {pipeline_name} pipeline on {dataset}",
            group_arn,
            package_arns,
            cross_account_read_accounts,
            removal_policy,
        )
        self._define_mlflow(mlflow, data_store, removal_policy)

        xgboost = training_image_uri or sagemaker_image_uri(self, "xgboost")
        artifacts_prefix = f"{data_store.artifacts_prefix.rstrip('/')}/{pipeline_name}"
        spec = pd.PipelineSpec(
            role_arn=self.role.role_arn,
            bucket_name=data_store.bucket.bucket_name,
            model_package_group_name=group_name,
            sklearn_image_uri=sagemaker_image_uri(self, "sklearn"),
            training_image_uri=xgboost,
            model_monitor_image_uri=sagemaker_image_uri(self, "model-monitor"),
            preprocess_script=self._script_source("preprocess"),
            evaluate_script=self._script_source("evaluate"),
            artifacts_prefix=artifacts_prefix,
            kms_key_arn=data_store.encryption_key.key_arn,
            source_revision=source_revision,
            default_approval_status="Approved" if auto_approve else "PendingManualApproval",
            # A well-formed URI of no object: SageMaker accepts the default start, then says what is missing.
            default_input_manifest_uri=(
                f"s3://{data_store.bucket.bucket_name}/{manifest_prefix(dataset)}{pd.NO_MANIFEST_KEY}"
            ),
            settings=settings,
            mlflow_tracking_arn=self.mlflow_tracking_arn,
            mlflow_experiment_name=(mlflow.experiment_name or pipeline_name) if mlflow else None,
            tracking_script=self._script_source("track") if mlflow else None,
            tracking_image_uri=mlflow.logging_image_uri if mlflow else None,
            # An image of one's own has the client; installing on top of it would only add a PyPI dependency.
            mlflow_client_requirements=(
                tuple(mlflow.client_requirements) if mlflow and mlflow.logging_image_uri is None else ()
            ),
            package_index_url=mlflow.package_index_url if mlflow and mlflow.logging_image_uri is None else None,
            subnet_ids=tuple(subnets),
            security_group_ids=tuple(group_ids),
            experiments=_has_experiments(Stack.of(self).region),
        )
        spec_problems = pd.pipeline_spec_problems(spec)
        if spec_problems:
            raise ConfigurationError(self, spec_problems)
        self._define_pipeline(
            pd.build_pipeline_definition(spec),
            f"Trains on versions of the {dataset} dataset; registers into {group_name}",
        )

        self._grant_data(data_store, [dataset], artifacts_prefix)
        # A package is useless without its artifacts and baselines: readers of the registry get those too.
        data_store.grant_accounts_read(cross_account_read_accounts, prefix=f"{artifacts_prefix}/")
        images = [sagemaker_image_uri(self, "sklearn"), xgboost, sagemaker_image_uri(self, "model-monitor")]
        if mlflow is not None and mlflow.logging_image_uri is not None:
            images.append(mlflow.logging_image_uri)
        self._grant_jobs(("processing-job", "training-job"), [group_arn, package_arns], images)
        if subnets:
            grant_sagemaker_vpc_access(self.role, subnet_ids=subnets, security_group_ids=group_ids)
        self._define_notifications(notification_topic, removal_policy)

    def _define_network(self, vpc: ec2.IVpc | None, security_groups: Sequence[ec2.ISecurityGroup] | None) -> None:
        self.security_groups: list[ec2.ISecurityGroup] = []
        self.connections: ec2.Connections | None = None
        if vpc is None:
            return
        self.security_groups = list(security_groups or [self._security_group(vpc)])
        self.connections = ec2.Connections(security_groups=self.security_groups)

    def _security_group(self, vpc: ec2.IVpc) -> ec2.SecurityGroup:
        group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description=f"{self.node.path}: the jobs of pipeline {self.pipeline_name}",
            allow_all_outbound=False,
        )
        # The AWS APIs (VPC endpoints, the S3 gateway) and a package mirror are all HTTPS.
        group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to the AWS APIs and the package index")
        # SageMaker requires it for distributed training: the instances of one job connect to each other.
        group.connections.allow_internally(ec2.Port.all_traffic(), "Instances of one training job")
        return group

    @classmethod
    def from_sdk_pipeline(
        cls,
        scope: Construct,
        id: str,
        *,
        pipeline: Any,
        data_store: VersionedDataStore,
        pipeline_name: str,
        role: iam.IRole | None = None,
        datasets: Sequence[str] = (),
        model_package_group_name: str | None = None,
        create_model_package_group: bool = True,
        cross_account_read_accounts: Sequence[str] = (),
        notification_topic: sns.ITopic | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        mlflow: MlflowSettings | None = None,
        description: str | None = None,
    ) -> SdkTrainingPipeline:
        """Deploy a pipeline authored with the SageMaker Python SDK; see :class:`SdkTrainingPipeline`."""
        return SdkTrainingPipeline(
            scope,
            id,
            pipeline=pipeline,
            data_store=data_store,
            pipeline_name=pipeline_name,
            role=role,
            datasets=datasets,
            model_package_group_name=model_package_group_name,
            create_model_package_group=create_model_package_group,
            cross_account_read_accounts=cross_account_read_accounts,
            notification_topic=notification_topic,
            removal_policy=removal_policy,
            mlflow=mlflow,
            description=description,
        )

    def _grant_script_inputs(self, assets: Iterable[s3_assets.Asset]) -> None:
        """What SageMaker does with the role for a script given as an ``S3Prefix`` processing input.

        It lists the bucket with the object's key as the prefix, then gets the objects listed.
        The staging bucket holds every asset of the account, so listing is limited to the script
        keys (``s3:prefix``) and reading to the script objects.
        """
        keys: dict[str, list[str]] = {}
        for asset in assets:
            iam.Grant.add_to_principal(
                grantee=self.role,
                actions=["s3:GetObject"],
                resource_arns=[asset.bucket.arn_for_objects(asset.s3_object_key)],
            )
            keys.setdefault(asset.bucket.bucket_arn, []).append(asset.s3_object_key)
        for bucket_arn, prefixes in keys.items():
            iam.Grant.add_to_principal(
                grantee=self.role,
                actions=["s3:ListBucket"],
                resource_arns=[bucket_arn],
                # StringLike with the key and a trailing *: the object itself, listed page by page.
                conditions={"StringLike": {"s3:prefix": [f"{key}*" for key in prefixes]}},
            )

    def _script_source(self, name: str) -> pd.ScriptSource:
        asset = self.scripts[name]
        # Jobs download an input object under the last segment of its key (the asset hash + .py).
        return pd.ScriptSource(s3_uri=asset.s3_object_url, file_name=asset.s3_object_key.rsplit("/", 1)[-1])


class SdkTrainingPipeline(_PipelineResources):
    """A pipeline authored with the SageMaker Python SDK (v3), deployed with the library's role, registry and alarms.

    Author the pipeline offline with :func:`cdk_mlops.sdk.pipeline_session` and the
    placeholders of :mod:`cdk_mlops.sdk`; this construct builds its definition with every
    network access refused, substitutes its own resources for the placeholders (execution
    role, data store bucket and key, model package group, MLflow tracking server), checks the
    result with :func:`cdk_mlops.pipeline_definition.validate_definition` and deploys it as
    ``AWS::SageMaker::Pipeline``. The SDK is needed only when ``pipeline`` is a ``Pipeline``
    object (``pip install 'cdk-mlops[sdk]'``); a definition JSON string needs nothing.

    Example::

        session = sdk.pipeline_session("eu-west-1", default_bucket_prefix="artifacts/churn")
        pipeline = Pipeline(name="churn", steps=[...], sagemaker_session=session)
        TrainingPipeline.from_sdk_pipeline(self, "Churn", pipeline=pipeline, data_store=store,
                                           pipeline_name="churn", datasets=["churn"])

    The execution role gets what the definition's steps need: create/describe/stop of the job
    kinds it starts, registration into the group, pulls of the ECR images it names, logs,
    metrics, read of ``datasets`` and their manifests, and read/write of
    ``artifacts/<pipeline_name>/`` in the data store. Anything else (another bucket, a Lambda
    step) is yours to grant to :attr:`role`; steps of such types get a synth warning.

    The construct takes no ``vpc``: the definition is yours, so its jobs run where it says.
    Give each job step a network configuration in the SDK (``network_config=NetworkConfig(
    subnets=[...], security_group_ids=[...], encrypt_inter_container_traffic=True)`` for
    processors, ``subnets=``/``security_group_ids=`` for estimators), with the subnet and
    group ids of your VPC; the role may then create the jobs' network interfaces in exactly
    the subnets and with the groups the definition names
    (:func:`~cdk_mlops.constructs.common.grant_sagemaker_vpc_access`). Guardrail MLOPS-007
    checks every job step's network configuration where the environment requires isolation.

    Attributes: as :class:`TrainingPipeline`, without ``scripts``, ``security_groups`` and
    ``connections``.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        pipeline: Any,
        data_store: VersionedDataStore,
        pipeline_name: str,
        role: iam.IRole | None = None,
        datasets: Sequence[str] = (),
        model_package_group_name: str | None = None,
        create_model_package_group: bool = True,
        cross_account_read_accounts: Sequence[str] = (),
        notification_topic: sns.ITopic | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        mlflow: MlflowSettings | None = None,
        description: str | None = None,
    ) -> None:
        """Define the pipeline.

        Args:
            scope: The parent construct.
            id: The construct id.
            pipeline: A ``sagemaker.mlops.workflow.pipeline.Pipeline`` built with
                :func:`cdk_mlops.sdk.pipeline_session`, or its definition as a JSON string
                (``pipeline.definition()``), written with the :mod:`cdk_mlops.sdk` placeholders.
            data_store: Its bucket and key replace :data:`~cdk_mlops.sdk.BUCKET_PLACEHOLDER`
                and :data:`~cdk_mlops.sdk.KMS_KEY_PLACEHOLDER`.
            pipeline_name: Lower-case name of the pipeline (1-63 letters, digits, hyphens).
            role: The execution role. Default: - a new role with least privilege for the steps.
            datasets: Datasets of the data store the jobs read (objects and manifests).
                Default: - none.
            model_package_group_name: Replaces
                :data:`~cdk_mlops.sdk.MODEL_PACKAGE_GROUP_PLACEHOLDER`.
                Default: - ``<pipeline_name>-models``.
            create_model_package_group: Create the group here. Default: - True.
            cross_account_read_accounts: Accounts that may read the registry. Default: - none.
            notification_topic: Where failed executions are announced.
                Default: - a new KMS-encrypted topic.
            removal_policy: For the model package group, the MLflow tracking server and the
                notification topic's key. Default: - RETAIN.
            mlflow: A SageMaker managed MLflow tracking server; its ARN replaces
                :data:`~cdk_mlops.sdk.MLFLOW_TRACKING_ARN_PLACEHOLDER`. The pipeline is yours,
                so no ``Track`` step is added: log from your own steps (the role may, see
                :meth:`grant_mlflow_logging`). ``client_requirements`` and
                ``logging_image_uri`` are not used. Default: - none.
            description: The pipeline's description. Default: - one naming the group.

        Raises:
            ConfigurationError: for a stack without a fixed region, an SDK session of another
                region, a definition that tried to reach the network, names a role, group or
                region other than the placeholders and this stack's, writes outside the
                pipeline's prefixes in the data store, or is not a sound definition; every
                problem is listed, before any resource is defined.
        """
        super().__init__(scope, id)
        group_name = model_package_group_name or f"{pipeline_name}-models"
        problems = self._common_problems(pipeline_name, group_name, cross_account_read_accounts, mlflow)
        for dataset in datasets:
            problems += [f"datasets: {p}" for p in dataset_name_problems(dataset)]
        region = Stack.of(self).region
        if Token.is_unresolved(region):
            raise ConfigurationError(
                self,
                "from_sdk_pipeline needs a stack with a fixed region (cdk.Stack(..., env=cdk.Environment("
                "region=...))): the SDK writes region-specific image URIs into the definition",
            )
        try:
            raw = sdk.sdk_definition(pipeline)
        except sdk.SdkNotInstalledError as error:
            raise ConfigurationError(self, str(error)) from None
        except ValueError as error:
            raise ConfigurationError(self, f"pipeline: {error}") from None
        session_region = sdk.sdk_region(pipeline)
        if session_region is not None and session_region != region:
            problems.append(
                f"pipeline: the SDK session's region {session_region!r} is not the stack's region {region!r}; "
                f"create it with cdk_mlops.sdk.pipeline_session({region!r})"
            )
        artifacts_prefix = f"{data_store.artifacts_prefix.rstrip('/')}/{pipeline_name}"
        writable = [f"{artifacts_prefix}/"]
        readable = [*writable, *(p for d in datasets for p in (f"datasets/{d}/", f"manifests/{d}/"))]
        problems += _sdk_definition_problems(raw, region, group_name, readable, mlflow is not None)
        if problems:
            raise ConfigurationError(self, problems)

        group_arn, package_arns = self._define_names(pipeline_name, group_name)
        self._define_role(role)
        registers = any(step.get("Type") == "RegisterModel" for step in _steps(raw))
        self._define_group(
            create_model_package_group and registers,
            f"Models registered by the {pipeline_name} pipeline",
            group_arn,
            package_arns,
            cross_account_read_accounts,
            removal_policy,
        )
        self._define_mlflow(mlflow, data_store, removal_policy)
        replacements = {
            sdk.ROLE_ARN_PLACEHOLDER: self.role.role_arn,
            sdk.BUCKET_PLACEHOLDER: data_store.bucket.bucket_name,
            sdk.KMS_KEY_PLACEHOLDER: data_store.encryption_key.key_arn,
            sdk.MODEL_PACKAGE_GROUP_PLACEHOLDER: group_name,
        }
        if self.mlflow_tracking_arn is not None:
            replacements[sdk.MLFLOW_TRACKING_ARN_PLACEHOLDER] = self.mlflow_tracking_arn
        definition: dict[str, Any] = sdk.substitute(raw, replacements)
        invalid = pd.validate_definition(definition)
        if invalid:
            raise ConfigurationError(self, [f"pipeline definition: {p}" for p in invalid])
        self._define_pipeline(
            definition, description or f"Authored with the SageMaker Python SDK; registers into {group_name}"
        )

        step_types = [str(step.get("Type")) for step in _steps(raw)]
        self._grant_data(data_store, datasets, artifacts_prefix)
        self._grant_jobs(
            (_STEP_JOBS[t] for t in step_types if t in _STEP_JOBS),
            [group_arn, package_arns] if registers else [],
            (s for s in sdk.strings(raw) if _ECR_IMAGE.match(s)),
            create_models="Model" in step_types,
        )
        subnets, groups = _vpc_ids(raw)
        if subnets:
            grant_sagemaker_vpc_access(self.role, subnet_ids=subnets, security_group_ids=groups)
        ungranted = sorted({t for t in step_types if t not in _STEP_JOBS and t not in _STEPS_WITHOUT_GRANTS})
        if ungranted:
            Annotations.of(self).add_warning_v2(
                "cdk-mlops:sdk-pipeline-ungranted-steps",
                f"steps of type {', '.join(ungranted)}: this construct grants nothing they need; "
                "grant it to the pipeline's role (.role)",
            )
        self._define_notifications(notification_topic, removal_policy)


def _vpc_configs(node: object) -> Iterator[Mapping[str, Any]]:
    """Every ``VpcConfig`` under ``node`` (of processing, training, tuning and check steps alike)."""
    if isinstance(node, list):
        for item in node:
            yield from _vpc_configs(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "VpcConfig" and isinstance(value, dict):
                yield value
            else:
                yield from _vpc_configs(value)


def _vpc_ids(definition: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The subnet and security group ids the job steps of a definition name, each once."""
    configs = list(_vpc_configs([step.get("Arguments") for step in _steps(definition)]))
    subnets = [s for c in configs for s in c.get("Subnets", []) if isinstance(s, str)]
    groups = [g for c in configs for g in c.get("SecurityGroupIds", []) if isinstance(g, str)]
    return list(dict.fromkeys(subnets)), list(dict.fromkeys(groups))


def _job_subnets(
    vpc: ec2.IVpc | None, selection: ec2.SubnetSelection | None, groups: Sequence[ec2.ISecurityGroup] | None
) -> tuple[list[str], list[str]]:
    """The ids of the subnets the jobs run in, and every problem of the network arguments."""
    if vpc is None:
        given = [name for name, value in (("vpc_subnets", selection), ("security_groups", groups)) if value is not None]
        return [], [f"{' and '.join(given)} need vpc; pass vpc=..., or remove them"] if given else []
    problems: list[str] = []
    if groups is not None and not 1 <= len(groups) <= _MAX_SECURITY_GROUPS:
        problems.append(
            f"security_groups has {len(groups)} groups; a SageMaker job takes 1 to {_MAX_SECURITY_GROUPS}: "
            "pass that many, or leave it out for a new group"
        )
    try:
        subnets = list(select_subnets(vpc, selection).subnet_ids)
    except RuntimeError as error:  # jsii: the selection names subnets the VPC does not have
        return [], [*problems, f"vpc_subnets: {error}"]
    if not 1 <= len(subnets) <= _MAX_SUBNETS:
        problems.append(
            f"vpc_subnets selects {len(subnets)} subnets of the VPC; a SageMaker job takes 1 to {_MAX_SUBNETS}: "
            "change the selection"
        )
    return subnets, problems


def _has_experiments(region: str) -> bool:
    """Whether executions in ``region`` may be recorded as SageMaker Experiments trials.

    An environment-agnostic stack does not know its region at synth; it keeps the experiment
    configuration, which suits every region listed by :func:`image_uris.experiments_regions`.
    """
    return Token.is_unresolved(region) or image_uris.has_experiments(region)


def _steps(definition: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every step of a definition, condition branches included."""
    found: list[dict[str, Any]] = []

    def collect(steps: object) -> None:
        for step in steps if isinstance(steps, list) else []:
            if isinstance(step, dict):
                found.append(step)
                arguments = step.get("Arguments")
                if step.get("Type") == "Condition" and isinstance(arguments, dict):
                    collect(arguments.get("IfSteps"))
                    collect(arguments.get("ElseSteps"))

    collect(definition.get("Steps"))
    return found


def _sdk_definition_problems(
    definition: Mapping[str, Any], region: str, group_name: str, readable: Sequence[str], has_mlflow: bool
) -> list[str]:
    """What keeps an SDK definition from being deployed by :class:`SdkTrainingPipeline`."""
    problems: list[str] = []
    texts = list(sdk.strings(definition))
    for step in _steps(definition):
        arguments = step.get("Arguments")
        name = step.get("Name")
        if not isinstance(arguments, dict):
            continue
        role = arguments.get("RoleArn", arguments.get("ExecutionRoleArn"))
        if isinstance(role, str) and role != sdk.ROLE_ARN_PLACEHOLDER:
            problems.append(
                f"step {name!r} runs as {role!r}; author it with role=cdk_mlops.sdk.ROLE_ARN_PLACEHOLDER "
                "so that it runs with this construct's least-privilege role"
            )
        group = arguments.get("ModelPackageGroupName")
        if isinstance(group, str) and group not in (sdk.MODEL_PACKAGE_GROUP_PLACEHOLDER, group_name):
            problems.append(
                f"step {name!r} registers into {group!r}; use model_package_group_name="
                f"cdk_mlops.sdk.MODEL_PACKAGE_GROUP_PLACEHOLDER (or {group_name!r})"
            )
    images = {m.group(0): m.group(2) for m in (_ECR_IMAGE.match(t) for t in texts) if m}
    for image, image_region in sorted(images.items()):
        if image_region != region:
            problems.append(f"image {image!r} is in {image_region}, but the stack deploys to {region}")
    if not has_mlflow and any(sdk.MLFLOW_TRACKING_ARN_PLACEHOLDER in t for t in texts):
        problems.append(
            "the definition uses cdk_mlops.sdk.MLFLOW_TRACKING_ARN_PLACEHOLDER; pass mlflow=MlflowSettings() "
            "so that this construct creates the tracking server"
        )
    if "PipelineExperimentConfig" in definition and not _has_experiments(region):
        problems.append(
            f"PipelineExperimentConfig: SageMaker Experiments is not available in {region}, so executions "
            "would fail; build the pipeline with pipeline_experiment_config=None (the SDK leaves it out "
            "there by default)"
        )
    configs = _vpc_configs([step.get("Arguments") for step in _steps(definition)])
    if any(not isinstance(i, str) for c in configs for i in (*c.get("Subnets", []), *c.get("SecurityGroupIds", []))):
        problems.append(
            "a VpcConfig names subnets or security groups with a pipeline expression; write their ids, so that "
            "the role may create network interfaces in those subnets only"
        )
    problems += _s3_problems(definition, readable)
    return problems


def _s3_problems(definition: Mapping[str, Any], readable: Sequence[str]) -> list[str]:
    """S3 locations in the data store that the execution role cannot reach."""
    keys: list[str] = []
    bucket_uri = f"s3://{sdk.BUCKET_PLACEHOLDER}/"
    for text in sdk.strings(definition):
        if text.startswith(bucket_uri):
            keys.append(text[len(bucket_uri) :])

    def visit(node: object) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
        elif isinstance(node, dict):
            body = node.get("Std:Join")
            if isinstance(body, dict) and isinstance(body.get("Values"), list) and body.get("On") == "/":
                values = body["Values"]
                for index, value in enumerate(values):
                    if value == sdk.BUCKET_PLACEHOLDER and index > 0 and values[index - 1] == "s3:/":
                        parts: list[str] = []
                        for part in values[index + 1 :]:
                            if not isinstance(part, str):
                                break
                            parts.append(part.strip("/"))
                        if parts:
                            keys.append("/".join(parts))
            for item in node.values():
                visit(item)

    visit(definition.get("Steps"))
    problems: list[str] = []
    for key in dict.fromkeys(keys):
        known = key.rstrip("/") + "/"
        if not any(known.startswith(p) or p.startswith(known) for p in readable):
            problems.append(
                f"s3://<data store>/{key} is outside what the pipeline's role may use ({', '.join(readable)}); "
                "write under the artifacts prefix (sdk.pipeline_session(..., default_bucket_prefix="
                f"{readable[0].rstrip('/')!r})) or pass the dataset in datasets="
            )
    return problems
