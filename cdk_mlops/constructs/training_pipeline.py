"""Training pipeline and model registry: a SageMaker Pipeline built at synth time, with lineage to data versions."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from aws_cdk import ArnFormat, Aws, CfnMapping, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_mlops import image_uris
from cdk_mlops import pipeline_definition as pd
from cdk_mlops.constructs.common import acknowledge, iam5_findings, nag_resource
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.datasets import dataset_name_problems
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.ml import EVALUATE_SCRIPT, PREPROCESS_SCRIPT

#: CloudWatch namespace of SageMaker Pipelines execution metrics (dimension ``PipelineName``).
PIPELINE_METRICS_NAMESPACE = "AWS/Sagemaker/ModelBuildingPipeline"

# SageMaker names: letters, digits and hyphens; lower case here because SageMaker lower-cases
# resource names in ARNs and IAM compares ARNs exactly.
_NAME = re.compile(r"^[a-z0-9](-*[a-z0-9]){0,62}$")
_ACCOUNT = re.compile(r"^[0-9]{12}$")

# What the pipeline (and every job it starts, sharing the role) does in SageMaker.
_JOB_ACTIONS = (
    "sagemaker:CreateProcessingJob",
    "sagemaker:DescribeProcessingJob",
    "sagemaker:StopProcessingJob",
    "sagemaker:CreateTrainingJob",
    "sagemaker:DescribeTrainingJob",
    "sagemaker:StopTrainingJob",
    "sagemaker:AddTags",
)
_REGISTRY_ACTIONS = ("sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage", "sagemaker:AddTags")
_ECR_PULL_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
_LOG_ACTIONS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams")
_CROSS_ACCOUNT_READ = (
    "sagemaker:DescribeModelPackageGroup",
    "sagemaker:DescribeModelPackage",
    "sagemaker:ListModelPackages",
)


class TrainingPipeline(Construct):
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

    Example::

        training = TrainingPipeline(self, "Training", data_store=store, dataset="churn",
                                    pipeline_name="churn-training")
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
        scripts: The ML scripts shipped as assets, by name.
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
                (e.g. staging and prod deploying a model trained in dev).
                Default: - none.
            notification_topic: Where failed executions are announced.
                Default: - a new KMS-encrypted topic.
            removal_policy: For the model package group and the notification
                topic's key. Default: - RETAIN; registered models outlive the stack.

        Raises:
            ConfigurationError: listing every invalid argument, before any
                resource is defined.
        """
        super().__init__(scope, id)
        settings = settings or pd.TrainingSettings()
        group_name = model_package_group_name or f"{pipeline_name}-models"
        problems = [f"settings: {p}" for p in pd.training_settings_problems(settings)]
        problems += [f"dataset: {p}" for p in dataset_name_problems(dataset)]
        for label, value in (("pipeline_name", pipeline_name), ("model_package_group_name", group_name)):
            if not Token.is_unresolved(value) and not _NAME.match(value):
                problems.append(
                    f"{label} {value!r} is not valid; use 1-63 lower-case letters, digits and hyphens, "
                    "starting and ending with a letter or digit"
                )
        for account in cross_account_read_accounts:
            if not _ACCOUNT.match(account):
                problems.append(f"cross_account_read_accounts: {account!r} is not a 12-digit AWS account id")
        byo_image = training_image_uri is not None and not Token.is_unresolved(training_image_uri)
        if byo_image and ".dkr.ecr." not in str(training_image_uri):
            problems.append(
                f"training_image_uri {training_image_uri!r} is not an ECR image URI "
                "(<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>)"
            )
        if problems:
            raise ConfigurationError(self, problems)

        stack = Stack.of(self)
        self._images: dict[str, str] = {}
        self.pipeline_name = pipeline_name
        self.model_package_group_name = group_name
        self.pipeline_arn = stack.format_arn(service="sagemaker", resource="pipeline", resource_name=pipeline_name)
        group_arn = stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=group_name)
        package_arns = stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{group_name}/*")

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Runs the {pipeline_name} pipeline and its jobs (least privilege, no managed policies)",
        )
        self.scripts = {
            "preprocess": s3_assets.Asset(self, "PreprocessScript", path=str(PREPROCESS_SCRIPT)),
            "evaluate": s3_assets.Asset(self, "EvaluateScript", path=str(EVALUATE_SCRIPT)),
        }
        for asset in self.scripts.values():
            # Exactly the script objects; the staging bucket holds every asset of the account.
            iam.Grant.add_to_principal(
                grantee=self.role,
                actions=["s3:GetObject"],
                resource_arns=[asset.bucket.arn_for_objects(asset.s3_object_key)],
            )

        self.model_package_group: sagemaker.CfnModelPackageGroup | None = None
        if create_model_package_group:
            self.model_package_group = sagemaker.CfnModelPackageGroup(
                self,
                "ModelPackageGroup",
                model_package_group_name=group_name,
                model_package_group_description=f"Models trained by the {pipeline_name} pipeline on {dataset}",
                model_package_group_policy=self._registry_policy(group_arn, package_arns, cross_account_read_accounts),
            )
            self.model_package_group.apply_removal_policy(removal_policy)

        xgboost = training_image_uri or self._image_uri("xgboost")
        artifacts_prefix = f"{data_store.artifacts_prefix.rstrip('/')}/{pipeline_name}"
        spec = pd.PipelineSpec(
            role_arn=self.role.role_arn,
            bucket_name=data_store.bucket.bucket_name,
            model_package_group_name=group_name,
            sklearn_image_uri=self._image_uri("sklearn"),
            training_image_uri=xgboost,
            model_monitor_image_uri=self._image_uri("model-monitor"),
            preprocess_script=self._script_source("preprocess"),
            evaluate_script=self._script_source("evaluate"),
            artifacts_prefix=artifacts_prefix,
            kms_key_arn=data_store.encryption_key.key_arn,
            source_revision=source_revision,
            default_approval_status="Approved" if auto_approve else "PendingManualApproval",
            settings=settings,
        )
        spec_problems = pd.pipeline_spec_problems(spec)
        if spec_problems:
            raise ConfigurationError(self, spec_problems)
        self.definition: dict[str, Any] = pd.build_pipeline_definition(spec)

        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=pipeline_name,
            pipeline_description=f"Trains on versions of the {dataset} dataset; registers into {group_name}",
            role_arn=self.role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": stack.to_json_string(self.definition)},
        )
        if self.model_package_group is not None:
            self.pipeline.node.add_dependency(self.model_package_group)

        self._grant_role(data_store, dataset, artifacts_prefix, group_arn, package_arns, xgboost)

        self.topic: sns.ITopic = notification_topic or self._topic(removal_policy)
        failed = events.Rule(
            self,
            "Failed",
            description=f"{self.node.path}: an execution of {pipeline_name} failed",
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
            alarm_description=f"{self.node.path}: an execution of {pipeline_name} failed; see its steps in SageMaker",
            metric=self.metric_executions_failed(),
            threshold=0,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self.failed_alarm.add_alarm_action(cw_actions.SnsAction(self.topic))

    def _image_uri(self, framework: str) -> str:
        """A framework image URI: concrete for a fixed region, a region lookup for agnostic stacks."""
        if framework not in self._images:
            self._images[framework] = self._lookup_image_uri(framework)
        return self._images[framework]

    def _lookup_image_uri(self, framework: str) -> str:
        region = Stack.of(self).region
        if not Token.is_unresolved(region):
            try:
                return image_uris.image_uri(framework, region)
            except image_uris.UnknownImageError as error:
                raise ConfigurationError(self, str(error)) from None
        mapping = CfnMapping(
            self,
            f"{framework.title().replace('-', '')}Registry",
            mapping={r: {"account": a} for r, a in sorted(image_uris.registry_accounts(framework).items())},
        )
        account = mapping.find_in_map(Aws.REGION, "account")
        return f"{account}.dkr.ecr.{Aws.REGION}.{Aws.URL_SUFFIX}/{image_uris.repository_path(framework)}"

    def _script_source(self, name: str) -> pd.ScriptSource:
        asset = self.scripts[name]
        # Jobs download an input object under the last segment of its key (the asset hash + .py).
        return pd.ScriptSource(s3_uri=asset.s3_object_url, file_name=asset.s3_object_key.rsplit("/", 1)[-1])

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

    def _grant_role(
        self,
        data_store: VersionedDataStore,
        dataset: str,
        artifacts_prefix: str,
        group_arn: str,
        package_arns: str,
        training_image: str,
    ) -> None:
        stack = Stack.of(self)
        # Preprocess reads the manifest and exactly the object versions it lists.
        data_store.grant_read(self.role, dataset=dataset)
        data_store.grant_read(self.role, prefix=data_store.manifest_prefix(dataset))
        data_store.grant_read_write(self.role, prefix=f"{artifacts_prefix}/")
        # Job volumes and outputs are encrypted with the data store's key.
        data_store.encryption_key.grant(self.role, "kms:CreateGrant", "kms:DescribeKey")

        jobs = [
            stack.format_arn(service="sagemaker", resource=kind, resource_name="*")
            for kind in ("processing-job", "training-job")
        ]
        iam.Grant.add_to_principal(grantee=self.role, actions=list(_JOB_ACTIONS), resource_arns=jobs)
        iam.Grant.add_to_principal(
            grantee=self.role, actions=list(_REGISTRY_ACTIONS), resource_arns=[group_arn, package_arns]
        )
        self.role.grant_pass_role(self.role)
        log_groups = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name="/aws/sagemaker/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        iam.Grant.add_to_principal(grantee=self.role, actions=list(_LOG_ACTIONS), resource_arns=[log_groups])
        iam.Grant.add_to_principal(
            grantee=self.role,
            actions=["cloudwatch:PutMetricData"],
            resource_arns=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
        )
        repositories = [self._repository_arn(uri) for uri in self._image_uris(training_image)]
        iam.Grant.add_to_principal(grantee=self.role, actions=list(_ECR_PULL_ACTIONS), resource_arns=repositories)
        iam.Grant.add_to_principal(grantee=self.role, actions=["ecr:GetAuthorizationToken"], resource_arns=["*"])

        acknowledge(
            self.role,
            "job names are generated by SageMaker Pipelines per execution (pipelines-<id>-<step>-...), "
            "so job ARNs can only be matched by a name wildcard; actions are limited to create/describe/stop",
            *iam5_findings(resources=(nag_resource(self, j) for j in jobs)),
        )
        acknowledge(
            self.role,
            "model package versions are numbered by SageMaker; the wildcard is limited to this one group",
            *iam5_findings(resources=(nag_resource(self, package_arns),)),
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

    def _image_uris(self, training_image: str) -> list[str]:
        return [self._image_uri("sklearn"), training_image, self._image_uri("model-monitor")]

    @staticmethod
    def _repository_arn(uri: str) -> str:
        """``<account>.dkr.ecr.<region>.<suffix>/<repo>:<tag>`` → the repository's ARN (tokens allowed)."""
        registry, _, path = uri.partition("/")
        account = registry.split(".dkr.ecr.", 1)[0]
        repository = path.split(":", 1)[0].split("@", 1)[0]
        return f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:{account}:repository/{repository}"

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
