"""TrainingPipeline: the library's default pipeline (preprocess ► baseline ► train ► evaluate ► gate ► register).

The construct checks its arguments, ships the ML scripts as assets, places the jobs in a VPC when
given one, builds the definition with :mod:`cdk_mlops.pipeline_definition` and grants the
execution role what the jobs do (:mod:`cdk_mlops.constructs.training_pipeline.grants`); the
resources around the definition come from its base,
:mod:`cdk_mlops.constructs.training_pipeline.resources`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import RemovalPolicy, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_mlops import pipeline_definition as pd
from cdk_mlops.constructs.common import (
    grant_clarify_endpoints,
    grant_sagemaker_vpc_access,
    job_subnets,
    sagemaker_image_uri,
)
from cdk_mlops.constructs.data_store_base import IDataStore, environment_problems
from cdk_mlops.constructs.props import checked_props
from cdk_mlops.constructs.training_pipeline.grants import (
    grant_data,
    grant_jobs,
    grant_script_inputs,
)
from cdk_mlops.constructs.training_pipeline.mlflow_settings import MlflowSettings
from cdk_mlops.constructs.training_pipeline.resources import _has_experiments, _PipelineResources
from cdk_mlops.constructs.training_pipeline.sdk_pipeline import SdkTrainingPipeline
from cdk_mlops.constructs.unique_names import claim
from cdk_mlops.datasets import dataset_name_problems, manifest_prefix
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.ml import EVALUATE_SCRIPT, PREPROCESS_SCRIPT, TRACK_SCRIPT

#: At most this many subnets and security groups in a job's ``VpcConfig`` (SageMaker API).


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
        notifications_key: The KMS key of ``topic`` when this construct creates it (None with
            ``notification_topic``).
        failed_rule: The EventBridge rule that announces a failed execution on ``topic``; None with
            ``announce_failures=False``.
        failed_alarm: In ALARM when an execution fails; None with ``announce_failures=False``.
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

    @checked_props
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        data_store: IDataStore,
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
        announce_failures: bool = True,
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
                training, hyperparameters, split, and the SageMaker Clarify bias and
                explainability baselines (``settings.clarify``; the execution role then may also
                create SageMaker models and manage the ``cdk-mlops-clarify*`` shadow endpoints).
                Default: - binary classification, AUC >= 0.7, ml.m5 instances, no spot, no Clarify.
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
            announce_failures: A rule and an alarm of this pipeline announce its failed executions on
                the topic. False leaves that to one rule for a whole fleet (``FleetRetrainTrigger``'s
                ``PipelineFailed``, with its ``alarm_topic``), which saves two resources a pipeline.
                Default: - True.
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
        problems += data_store.undeclared_problems("dataset", [dataset])
        problems += environment_problems(self, data_store, construct="TrainingPipeline")
        problems += self._common_problems(pipeline_name, group_name, cross_account_read_accounts, mlflow)
        byo_image = training_image_uri is not None and not Token.is_unresolved(training_image_uri)
        if byo_image and ".dkr.ecr." not in str(training_image_uri):
            problems.append(
                f"training_image_uri {training_image_uri!r} is not an ECR image URI "
                "(<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>)"
            )
        subnets, network_problems = job_subnets(vpc, vpc_subnets, security_groups)
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
        claim(self, "pipeline_name", pipeline_name, "SageMaker pipeline names are unique per account and region")

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
        grant_script_inputs(self.role, self.scripts.values())
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
        clarify_image = sagemaker_image_uri(self, "clarify") if settings.clarify is not None else None
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
            clarify_image_uri=clarify_image,
        )
        spec_problems = pd.pipeline_spec_problems(spec)
        if spec_problems:
            raise ConfigurationError(self, spec_problems)
        self._define_pipeline(
            pd.build_pipeline_definition(spec),
            f"Trains on versions of the {dataset} dataset; registers into {group_name}",
        )

        grant_data(self.role, data_store, [dataset], artifacts_prefix)
        # A package is useless without its artifacts and baselines: readers of the registry get those too.
        data_store.grant_accounts_read(cross_account_read_accounts, prefix=f"{artifacts_prefix}/")
        images = [sagemaker_image_uri(self, "sklearn"), xgboost, sagemaker_image_uri(self, "model-monitor")]
        if mlflow is not None and mlflow.logging_image_uri is not None:
            images.append(mlflow.logging_image_uri)
        if clarify_image is not None:
            images.append(clarify_image)
        grant_jobs(
            self,
            self.role,
            ("processing-job", "training-job"),
            [group_arn, package_arns],
            images,
            # The ClarifyModel step creates the model the Clarify jobs serve on shadow endpoints.
            create_models=clarify_image is not None,
        )
        if clarify_image is not None:
            grant_clarify_endpoints(self, self.role)
        if subnets:
            grant_sagemaker_vpc_access(self.role, subnet_ids=subnets, security_group_ids=group_ids)
        self._define_notifications(notification_topic, removal_policy, announce=announce_failures)

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
        data_store: IDataStore,
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

    def _script_source(self, name: str) -> pd.ScriptSource:
        asset = self.scripts[name]
        # Jobs download an input object under the last segment of its key (the asset hash + .py).
        return pd.ScriptSource(s3_uri=asset.s3_object_url, file_name=asset.s3_object_key.rsplit("/", 1)[-1])
