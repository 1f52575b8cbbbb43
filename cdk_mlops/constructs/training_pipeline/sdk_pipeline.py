"""SdkTrainingPipeline: deploys a pipeline authored with the SageMaker Python SDK, with the library's role and registry.

The construct builds the SDK pipeline's definition offline, checks what it reaches (roles,
groups, regions, images, S3 locations, VPC configurations), substitutes its own resources for the
:mod:`cdk_mlops.sdk` placeholders, and grants the execution role what the definition's steps do.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from aws_cdk import Annotations, RemovalPolicy, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_mlops import pipeline_definition as pd
from cdk_mlops import sdk
from cdk_mlops.constructs.common import grant_sagemaker_vpc_access
from cdk_mlops.constructs.data_store_base import IDataStore, environment_problems
from cdk_mlops.constructs.props import checked_props
from cdk_mlops.constructs.training_pipeline.grants import grant_data, grant_jobs
from cdk_mlops.constructs.training_pipeline.mlflow_settings import _ECR_IMAGE, MlflowSettings
from cdk_mlops.constructs.training_pipeline.resources import _has_experiments, _PipelineResources
from cdk_mlops.constructs.unique_names import claim
from cdk_mlops.datasets import dataset_name_problems
from cdk_mlops.errors import ConfigurationError

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

    @checked_props
    def __init__(
        self,
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
        problems += data_store.undeclared_problems("datasets", datasets)
        problems += environment_problems(self, data_store, construct="SdkTrainingPipeline")
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
        claim(self, "pipeline_name", pipeline_name, "SageMaker pipeline names are unique per account and region")

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
        grant_data(self.role, data_store, datasets, artifacts_prefix)
        grant_jobs(
            self,
            self.role,
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
