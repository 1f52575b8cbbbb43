"""What every training pipeline construct defines around its definition.

:class:`_PipelineResources` is the base of :class:`TrainingPipeline` and
:class:`SdkTrainingPipeline`: the execution role, the model package group (with its
cross-account read policy), the optional MLflow tracking server, the ``AWS::SageMaker::Pipeline``,
the notifications of failed executions, and the ``grant_*`` and ``metric_*`` methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Aws, RemovalPolicy, Stack, Token
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_mlops import image_uris
from cdk_mlops.constructs.common import (
    ACCOUNT_ID,
    SAGEMAKER_NAME,
    acknowledge_grantee,
    depend_on_role_policy,
    pipeline_execution_metric,
)
from cdk_mlops.constructs.data_store_base import IDataStore
from cdk_mlops.constructs.training_pipeline.mlflow_settings import (
    MLFLOW_LOGGING_ACTIONS,
    MLFLOW_UI_ACTIONS,
    MlflowServerSize,
    MlflowSettings,
    mlflow_settings_problems,
)
from cdk_mlops.errors import ConfigurationError

#: CloudWatch namespace of SageMaker Pipelines execution metrics (dimension ``PipelineName``).

# What the registry's readers (other accounts, deployment steps) may do.
_CROSS_ACCOUNT_READ = (
    "sagemaker:DescribeModelPackageGroup",
    "sagemaker:DescribeModelPackage",
    "sagemaker:ListModelPackages",
)


class _PipelineResources(Construct):
    """What every training pipeline construct defines around its definition.

    The execution role (each subclass grants it what its jobs do, with
    :mod:`~cdk_mlops.constructs.training_pipeline.grants`), the model package group, the optional
    MLflow tracking server, the ``AWS::SageMaker::Pipeline``, and the notifications of failed executions.
    """

    pipeline: sagemaker.CfnPipeline
    pipeline_name: str
    pipeline_arn: str
    definition: dict[str, Any]
    model_package_group: sagemaker.CfnModelPackageGroup | None
    model_package_group_name: str
    role: iam.IRole
    topic: sns.ITopic
    failed_rule: events.Rule | None
    failed_alarm: cw.Alarm | None
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
        self, settings: MlflowSettings | None, data_store: IDataStore, removal_policy: RemovalPolicy
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

    def _define_notifications(
        self, topic: sns.ITopic | None, removal_policy: RemovalPolicy, *, announce: bool = True
    ) -> None:
        self.notifications_key: kms.IKey | None = None
        self.topic = topic or self._topic(removal_policy)
        self.failed_rule = self.failed_alarm = None
        if not announce:
            return
        self.failed_rule = failed = events.Rule(
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
        self.notifications_key = key
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
        grant = iam.Grant.add_to_principal(
            grantee=grantee, actions=list(_CROSS_ACCOUNT_READ), resource_arns=[group, packages]
        )
        acknowledge_grantee(
            grantee,
            f"{self.node.path}.grant_read_registry(): SageMaker numbers a group's model packages as they "
            f"are registered, so reading them is 'model-package/{self.model_package_group_name}/*', "
            "the versions of this one group",
            resources=[packages],
        )
        return grant

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

    def _metric(self, method: str, name: str, options: dict[str, Any]) -> cw.Metric:
        return pipeline_execution_metric(self, method, name, self.pipeline_name, options)

    def metric_executions_started(self, **options: Any) -> cw.Metric:
        """Executions started, summed over 5 minutes (``options``: any ``cloudwatch.MetricOptions``)."""
        return self._metric("metric_executions_started", "ExecutionStarted", options)

    def metric_executions_succeeded(self, **options: Any) -> cw.Metric:
        """Executions that succeeded (a model was registered), summed over 5 minutes."""
        return self._metric("metric_executions_succeeded", "ExecutionSucceeded", options)

    def metric_executions_failed(self, **options: Any) -> cw.Metric:
        """Executions that failed (including models rejected by the gate), summed over 5 minutes."""
        return self._metric("metric_executions_failed", "ExecutionFailed", options)


def _has_experiments(region: str) -> bool:
    """Whether executions in ``region`` may be recorded as SageMaker Experiments trials.

    An environment-agnostic stack does not know its region at synth; it keeps the experiment
    configuration, which suits every region listed by :func:`image_uris.experiments_regions`.
    """
    return Token.is_unresolved(region) or image_uris.has_experiments(region)
