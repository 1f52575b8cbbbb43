"""Delivery with CodePipeline: the platform from commit to prod, and models from approval to prod.

Two constructs, both in a tooling account:

* :class:`PlatformDeliveryPipeline`: the platform's own CI/CD, a self-mutating CDK Pipeline
  (CodePipeline V2). Source (CodeConnections or S3) ► synth (``make test``, ``make synth``) ►
  security report ► one stage per environment in order, each followed by post-deploy checks and
  *retrain when ML code changes, and only then* ► a manual approval before every environment
  that requires one (prod always).
* :class:`ModelDeliveryPipeline`: promotes an approved model package. The model registry's
  ``Approved`` event starts it; it deploys the package to each environment in order, tests the
  endpoint with a sample request, waits for approval before prod, and records the package each
  environment runs (an SSM parameter), so that a re-synth of the platform deploys the same model.

What the build steps run is :mod:`cdk_mlops.delivery_steps` (pure decisions plus boto3 calls).
The steps reach into an environment through a :class:`DeliveryAccess` role that the platform
pipeline adds to every stage it deploys: it may describe the stage's stacks, ask the retrain
trigger for a run, read the registry and invoke the endpoint, and nothing else.

Given a ``vpc``, every CodeBuild project of a pipeline runs in it (in the tooling account).
The builds never join an environment's VPC: they act on an environment only through the AWS
APIs its access role allows, so a private environment needs nothing from them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import aws_cdk as cdk
import jsii
from aws_cdk import Aws, Duration, RemovalPolicy, Stack, Token, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as event_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from constructs import Construct, IValidation

from cdk_mlops._version import __version__
from cdk_mlops.constructs.common import (
    ACCOUNT_ID,
    _flatten,
    access_log_bucket,
    acknowledge,
    depend_on_role_policy,
    iam5_findings,
    nag_resource,
)
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.model_endpoint import ModelEndpoint
from cdk_mlops.constructs.retrain_trigger import RetrainTrigger
from cdk_mlops.constructs.training_pipeline import _PipelineResources
from cdk_mlops.delivery_steps import (
    DELIVER,
    MODEL_RECORD_NONE,
    MODEL_SETTINGS,
    REDELIVER,
    model_record_name,
    revision_record_name,
    training_fingerprint,
    training_record_name,
)
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.lambdas.retrain_trigger import MANUAL_RETRAIN, SOURCE

__all__ = [
    "DEFAULT_BOOTSTRAP_QUALIFIER",
    "DEFAULT_PARAMETER_PREFIX",
    "DEFAULT_SAMPLE_KEY",
    "DeliveryAccess",
    "DeliveryTarget",
    "EndpointTest",
    "ModelDeliveryPipeline",
    "ModelDeliveryTarget",
    "PipelineSource",
    "PlatformDeliveryPipeline",
    "access_role_name",
    "use_connection_actions",
]

#: Where the pipelines record what they deployed (SSM parameters in the tooling account).
DEFAULT_PARAMETER_PREFIX: Final = "/cdk-mlops/delivery"
#: The qualifier of the CDK bootstrap stacks of the target accounts (``cdk bootstrap --qualifier``).
DEFAULT_BOOTSTRAP_QUALIFIER: Final = "hnb659fds"
#: The data store object the endpoint test sends: CSV rows of features, without the label.
DEFAULT_SAMPLE_KEY: Final = "artifacts/delivery/sample-payload.csv"
#: The event the model registry emits when a package's approval status changes.
MODEL_PACKAGE_STATE_CHANGE: Final = "SageMaker Model Package State Change"
#: The approval status that starts the model pipeline.
APPROVED: Final = "Approved"
#: The package status of a registered package (``Pending`` and ``InProgress`` come before it).
COMPLETED: Final = "Completed"
#: The variables namespace of the model pipeline's Select action.
_MODEL_NAMESPACE: Final = "Model"

#: What the build steps install before they run :mod:`cdk_mlops.delivery_steps`: boto3, and the
#: library itself (without its dependencies) when the checkout is not this repository.
STEP_INSTALL_COMMANDS: Final = (
    "python3 -m pip install --quiet --disable-pip-version-check 'boto3>=1.40'",
    "test -d cdk_mlops || python3 -m pip install --quiet --disable-pip-version-check --no-deps "
    f"'cdk-mlops=={__version__}'",
)
# CodeBuild caches pip's and npm's download caches, not `.venv` or `node_modules`: a virtualenv
# holds absolute paths, and CodeBuild checks the source out to a new directory for every build.
_CACHE_PATHS: Final = ("/root/.cache/pip/**/*", "/root/.npm/**/*")

_CONNECTION_ARN = re.compile(
    r"^arn:aws(?:-[a-z]+)*:(?P<service>codeconnections|codestar-connections):(?P<region>[a-z0-9-]+):[0-9]{12}:"
    r"connection/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)
#: The services a connection ARN may name. AWS CodeStar Connections was renamed AWS CodeConnections,
#: and IAM evaluates the action whose service prefix is the resource ARN's: a
#: ``arn:aws:codeconnections:...`` connection is used through ``codeconnections:UseConnection`` only.
_CONNECTION_SERVICES: Final = ("codeconnections", "codestar-connections")
_USE_CONNECTION: Final = "UseConnection"
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")
_BRANCH = re.compile(r"^[^\s~^:?*\[\\]+$")
_ENV_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")
_PARAMETER_PREFIX = re.compile(r"^(/[A-Za-z0-9_.-]+)+$")
_GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_ROLE_PREFIX = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,40}$")


def access_role_name(prefix: str, environment: str) -> str:
    """The name of an environment's :class:`DeliveryAccess` role: ``<prefix>-<environment>-delivery``."""
    return f"{prefix}-{environment}-delivery"[:64]


def _role_arn(account: str, name: str) -> str:
    return f"arn:{Aws.PARTITION}:iam::{account}:role/{name}"


def _title(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def use_connection_actions(connection_arn: str) -> list[str]:
    """The IAM action(s) that let a principal use a connection: the one of the ARN's service.

    ``codeconnections:UseConnection`` for an ``arn:aws:codeconnections:...`` connection,
    ``codestar-connections:UseConnection`` for one created before the rename. An ARN that synth
    cannot read (a token, or not a connection ARN) gets both: one of them is the right one.
    """
    match = None if Token.is_unresolved(connection_arn) else _CONNECTION_ARN.match(connection_arn)
    services = [match.group("service")] if match else list(_CONNECTION_SERVICES)
    return [f"{service}:{_USE_CONNECTION}" for service in services]


# ------------------------------------------------------------------------------------------ inputs


@dataclass(frozen=True, kw_only=True)
class PipelineSource:
    """Where the pipelines get the repository: a CodeConnections connection, or an S3 object.

    Build one with :meth:`connection` or :meth:`s3`. CodeCommit is not offered (closed to new
    customers).

    Attributes:
        connection_arn: An AWS CodeConnections (or legacy CodeStar Connections) connection to
            GitHub, GitLab or Bitbucket, in the pipeline's region.
        repository: ``owner/repo`` (GitLab: ``group/subgroup/repo``).
        branch: The branch the pipelines follow.
        trigger_on_push: A push starts the platform pipeline. Default: - True.
        bucket: A versioned bucket holding the repository as a zip file.
        object_key: The zip file's key.
    """

    connection_arn: str | None = None
    repository: str | None = None
    branch: str | None = None
    trigger_on_push: bool = True
    bucket: s3.IBucket | None = None
    object_key: str | None = None

    @classmethod
    def connection(
        cls, connection_arn: str, *, repository: str, branch: str = "main", trigger_on_push: bool = True
    ) -> PipelineSource:
        """A repository behind an AWS CodeConnections connection (``arn:aws:codeconnections:...``)."""
        return cls(connection_arn=connection_arn, repository=repository, branch=branch, trigger_on_push=trigger_on_push)

    @classmethod
    def s3(cls, bucket: s3.IBucket, object_key: str) -> PipelineSource:
        """A zip of the repository in a versioned bucket; a new object version starts the platform pipeline.

        The platform pipeline notices new versions through CloudTrail events: a trail must record
        the bucket's write data events (the model pipeline is started by approvals only).
        """
        return cls(bucket=bucket, object_key=object_key)

    @property
    def is_connection(self) -> bool:
        """Whether this is a CodeConnections source."""
        return self.connection_arn is not None

    def problems(self, region: str | None = None) -> list[str]:
        """Every problem with this source, each with the value and the fix; tokens are not checked."""
        found: list[str] = []
        if self.is_connection == (self.bucket is not None):
            return ["source: give either a connection (PipelineSource.connection) or an S3 object (PipelineSource.s3)"]
        if self.bucket is not None:
            key = self.object_key or ""
            if not Token.is_unresolved(key) and (not key or key.startswith("/")):
                found.append(f"source.object_key {key!r} must be the key of the zip file, without a leading '/'")
            return found
        arn = str(self.connection_arn)
        if not Token.is_unresolved(arn):
            match = _CONNECTION_ARN.match(arn)
            if match is None:
                found.append(
                    f"source.connection_arn {arn!r} is not a connection ARN; use "
                    "arn:aws:codeconnections:<region>:<account>:connection/<uuid> (or the legacy "
                    "codestar-connections service name), as shown in the console under Developer Tools > Connections"
                )
            elif region and not Token.is_unresolved(region) and match.group("region") != region:
                found.append(
                    f"source.connection_arn is in {match.group('region')}, but the pipeline runs in {region}; "
                    f"create the connection in {region}"
                )
        repository = self.repository or ""
        if not Token.is_unresolved(repository) and not _REPOSITORY.match(repository):
            found.append(f"source.repository {repository!r} is not 'owner/repo' (GitLab: 'group/subgroup/repo')")
        branch = self.branch or ""
        if not Token.is_unresolved(branch) and (not branch.strip() or not _BRANCH.match(branch)):
            found.append(f"source.branch {branch!r} is not a branch name; use e.g. 'main'")
        return found

    def _pipelines_source(self) -> pipelines.CodePipelineSource:
        if self.bucket is not None:
            return pipelines.CodePipelineSource.s3(
                self.bucket,
                str(self.object_key),
                trigger=actions.S3Trigger.EVENTS,
                action_name="Source",
            )
        return pipelines.CodePipelineSource.connection(
            str(self.repository),
            str(self.branch),
            connection_arn=str(self.connection_arn),
            trigger_on_push=self.trigger_on_push,
            action_name="Source",
        )

    def _revision_attribute(self) -> str:
        return "VersionId" if self.bucket is not None else "CommitId"

    def _revision_kind(self) -> str:
        return "s3" if self.bucket is not None else "git"


@dataclass(frozen=True, kw_only=True)
class DeliveryTarget:
    """One environment the platform pipeline deploys, in order.

    Attributes:
        name: The environment's name (``dev``); it names the stage, records and access role.
        account: The account the stage deploys to (bootstrapped with ``--trust <tooling account>``).
        region: The region the stage deploys to.
        manual_approval: A person approves before the stage deploys. Default: - False.
        production: A production environment; it cannot turn ``manual_approval`` off.
            Default: - False.
        stage_id: The construct id of the stage. Default: - the name in title case (``Dev``).
    """

    name: str
    account: str
    region: str
    manual_approval: bool = False
    production: bool = False
    stage_id: str | None = None

    @property
    def construct_id(self) -> str:
        """The stage's construct id."""
        return self.stage_id or _title(self.name)

    @property
    def env(self) -> cdk.Environment:
        """The CDK environment the stage deploys to."""
        return cdk.Environment(account=self.account, region=self.region)


@dataclass(frozen=True, kw_only=True)
class EndpointTest:
    """The test the model pipeline runs against an endpoint after deploying a model.

    It invokes the endpoint with the sample request (one warm-up call, then ``invocations`` timed
    calls) and fails unless the response holds one number per request row and the 90th percentile
    latency is at most ``max_latency``.

    Attributes:
        endpoint_name: The endpoint to invoke.
        data_stack_name: The CloudFormation stack that holds the data store's bucket.
        data_bucket_logical_id: The bucket's logical id in that stack.
        sample_key: The object holding the request. Default: - ``artifacts/delivery/sample-payload.csv``.
        content_type: Default: - ``text/csv``.
        invocations: Timed calls. Default: - 5.
        max_latency: Default: - 1 second.
    """

    endpoint_name: str
    data_stack_name: str
    data_bucket_logical_id: str
    sample_key: str = DEFAULT_SAMPLE_KEY
    content_type: str = "text/csv"
    invocations: int = 5
    max_latency: Duration = field(default_factory=lambda: Duration.seconds(1))

    @classmethod
    def for_data_store(
        cls, data_store: VersionedDataStore, *, endpoint_name: str, sample_key: str = DEFAULT_SAMPLE_KEY
    ) -> EndpointTest:
        """A test whose sample request is ``sample_key`` in ``data_store``."""
        stack = Stack.of(data_store)
        logical_id = stack.resolve(stack.get_logical_id(data_store.bucket.node.default_child))  # type: ignore[arg-type]
        return cls(
            endpoint_name=endpoint_name,
            data_stack_name=stack.stack_name,
            data_bucket_logical_id=str(logical_id),
            sample_key=sample_key,
        )


@dataclass(frozen=True, kw_only=True)
class ModelDeliveryTarget:
    """One environment the model pipeline deploys approved models to, in order.

    Attributes:
        name: The environment's name; the same as the platform pipeline's target.
        account: Its account.
        region: Its region.
        stack_selector: What ``npx cdk deploy`` deploys for this environment, e.g.
            ``'Tooling/Delivery/Platform/Staging/*'`` (every stack of the environment's stage, as
            the platform pipeline deploys it; the data and training stacks do not change).
        manual_approval: A person approves before the model is deployed. Default: - False.
        production: Cannot turn ``manual_approval`` off. Default: - False.
        endpoint_test: Run after the deployment. Default: - no test.
    """

    name: str
    account: str
    region: str
    stack_selector: str
    manual_approval: bool = False
    production: bool = False
    endpoint_test: EndpointTest | None = None


def _target_problems(label: str, items: Sequence[Any]) -> list[str]:
    found: list[str] = []
    if not items:
        return [f"{label} is empty; give at least one environment"]
    names = [t.name for t in items]
    for name in sorted({n for n in names if names.count(n) > 1}):
        found.append(f"{label}: environment {name!r} appears more than once; list each environment once")
    for target in items:
        where = f"{label}[{target.name!r}]"
        if not Token.is_unresolved(target.name) and not _ENV_NAME.match(target.name):
            found.append(f"{where}.name is not valid; use lower-case letters, digits and '-'")
        if not Token.is_unresolved(target.account) and not ACCOUNT_ID.match(target.account):
            found.append(f"{where}.account {target.account!r} is not a 12-digit AWS account id")
        if not Token.is_unresolved(target.region) and not _REGION.match(target.region):
            found.append(f"{where}.region {target.region!r} is not an AWS region name (e.g. 'eu-west-1')")
        if target.production and not target.manual_approval:
            found.append(
                f"{where}: a production environment must be approved by a person before it deploys; "
                "set manual_approval=True"
            )
    return found


# ------------------------------------------------------------------------------------------ access


class DeliveryAccess(Construct):
    """The role a delivery pipeline's build steps assume in one environment.

    The tooling account's principals may assume it (CDK bootstrap trust, ``cdk bootstrap --trust``,
    works the same way); the tooling account's IAM policies decide which build step may. The
    role starts with no permissions; each ``allow_*`` method adds one narrow capability.

    Attributes:
        role: The role, named ``role_name`` so the pipelines can build its ARN.
    """

    def __init__(self, scope: Construct, id: str, *, role_name: str, trusted_account: str, environment: str) -> None:
        """Define the role.

        Args:
            scope: The parent construct, in the environment's stage.
            id: The construct id.
            role_name: Its name; see :func:`access_role_name`.
            trusted_account: The tooling account whose build steps assume it.
            environment: The environment's name, for the description.
        """
        super().__init__(scope, id)
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            assumed_by=iam.AccountPrincipal(trusted_account),
            description=f"Assumed by the delivery pipelines' build steps in {environment}: "
            "describe, test and request retraining; no deployment rights",
            max_session_duration=Duration.hours(1),
        )

    def allow_describe_stacks(self, stacks: Iterable[cdk.Stack]) -> iam.Grant:
        """Describe the given stacks and their resources (post-deploy checks, finding the data bucket)."""
        arns = [
            Stack.of(self).format_arn(service="cloudformation", resource="stack", resource_name=f"{s.stack_name}/*")
            for s in stacks
        ]
        grant = iam.Grant.add_to_principal(
            grantee=self.role,
            actions=["cloudformation:DescribeStacks", "cloudformation:DescribeStackResource"],
            resource_arns=arns,
        )
        acknowledge(
            self.role,
            "a stack ARN ends in the stack's generated id; the wildcard stands for that id of one named stack",
            *iam5_findings(resources=[nag_resource(self, arn) for arn in arns]),
        )
        return grant

    def allow_retrain_requests(self) -> iam.Grant:
        """Put ``Manual Retrain`` events (source ``cdk-mlops.retrain``) on the default event bus, nothing else."""
        bus = Stack.of(self).format_arn(service="events", resource="event-bus", resource_name="default")
        return iam.Grant.add_to_principal(
            grantee=self.role,
            actions=["events:PutEvents"],
            resource_arns=[bus],
            conditions={"StringEquals": {"events:source": SOURCE, "events:detail-type": MANUAL_RETRAIN}},
        )

    def allow_describe_training(self, training: _PipelineResources) -> iam.Grant:
        """Describe one training pipeline (post-deploy check)."""
        return iam.Grant.add_to_principal(
            grantee=self.role, actions=["sagemaker:DescribePipeline"], resource_arns=[training.pipeline_arn]
        )

    def allow_registry_read(self, training: _PipelineResources) -> iam.Grant:
        """List and describe the model packages of a training pipeline's group (the model pipeline selects one)."""
        grant = training.grant_read_registry(self.role)
        packages = Stack.of(training).format_arn(
            service="sagemaker", resource="model-package", resource_name=f"{training.model_package_group_name}/*"
        )
        acknowledge(
            self.role,
            "the versions of one model package group: SageMaker numbers them as they are registered",
            *iam5_findings(resources=[nag_resource(self, packages)]),
        )
        return grant

    def allow_describe_endpoint(self, endpoint_name: str) -> iam.Grant:
        """Describe one endpoint (post-deploy check)."""
        return iam.Grant.add_to_principal(
            grantee=self.role, actions=["sagemaker:DescribeEndpoint"], resource_arns=[self._endpoint_arn(endpoint_name)]
        )

    def allow_endpoint_test(self, test: EndpointTest, data_store: VersionedDataStore) -> iam.Grant:
        """Read the sample request (and decrypt it) and invoke the endpoint; the endpoint need not exist yet."""
        grant = iam.Grant.add_to_principal(
            grantee=self.role,
            actions=["sagemaker:InvokeEndpoint"],
            resource_arns=[self._endpoint_arn(test.endpoint_name)],
        )
        iam.Grant.add_to_principal(
            grantee=self.role,
            actions=["s3:GetObject"],
            resource_arns=[data_store.bucket.arn_for_objects(test.sample_key)],
        )
        data_store.encryption_key.grant_decrypt(self.role)
        return grant

    def forward_model_approvals(self, *, model_package_group_name: str, event_bus_arn: str) -> events.Rule:
        """Forward the group's ``Approved`` events to the tooling account's event bus (the model pipeline's trigger)."""
        rule = events.Rule(
            self,
            "ForwardApprovals",
            description=f"{self.node.path}: approvals in {model_package_group_name} start the model pipeline",
            event_pattern=_approval_pattern(model_package_group_name),
        )
        bus = events.EventBus.from_event_bus_arn(self, "ToolingBus", event_bus_arn)
        forward_role = iam.Role(self, "ForwardRole", assumed_by=iam.ServicePrincipal("events.amazonaws.com"))
        rule.add_target(event_targets.EventBus(bus, role=forward_role))
        return rule

    def _endpoint_arn(self, endpoint_name: str) -> str:
        return Stack.of(self).format_arn(service="sagemaker", resource="endpoint", resource_name=endpoint_name)


def _approval_pattern(group: str, account: str | None = None) -> events.EventPattern:
    """A registered package of ``group`` that is approved.

    SageMaker sends a state change while a package is being registered (``ModelPackageStatus``
    ``Pending``, ``InProgress``) and again on later updates; only a ``Completed`` package can be
    deployed. Repeated events for one package still match: the model pipeline's Select step
    delivers a package once (see :class:`ModelDeliveryPipeline`).
    """
    return events.EventPattern(
        source=["aws.sagemaker"],
        detail_type=[MODEL_PACKAGE_STATE_CHANGE],
        account=[account] if account else None,
        detail={"ModelPackageGroupName": [group], "ModelPackageStatus": [COMPLETED], "ModelApprovalStatus": [APPROVED]},
    )


def _only_when_delivering() -> codepipeline.Conditions:
    """Enter a target's stage only when Select chose to deliver (:data:`DELIVER`); skip it otherwise.

    Every stage skipped makes a successful run that changed nothing: no deployment, no test, no
    approval request. CodePipeline offers the SKIP result for VariableCheck entry conditions.
    """
    rule = codepipeline.Rule(
        name="Deliver",
        provider="VariableCheck",
        version="1",
        configuration={"Variable": f"#{{{_MODEL_NAMESPACE}.{DELIVER}}}", "Operator": "EQ", "Value": "true"},
    )
    return codepipeline.Conditions(conditions=[codepipeline.Condition(result=codepipeline.Result.SKIP, rules=[rule])])


# ------------------------------------------------------------------------------ shared pipeline parts


class _PipelineStorage(Construct):
    """The artifact bucket (KMS, access logs, TLS only), its key, and the notification topic."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        artifact_bucket: s3.IBucket | None,
        notification_topic: sns.ITopic | None,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id)
        # Access logs are delivered through a bucket policy (not the LogDeliveryWrite ACL, which
        # ACL-free buckets cannot use), whatever the app's feature flags say.
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        self.access_log_bucket: s3.Bucket | None = None
        if artifact_bucket is None:
            self.artifact_key: kms.IKey = kms.Key(
                self,
                "ArtifactKey",
                description=f"Encrypts the artifacts of {scope.node.path}",
                enable_key_rotation=True,
                removal_policy=removal_policy,
            )
            # S3 server access logging delivers only to SSE-S3 buckets, so the log bucket is separate.
            self.access_log_bucket = access_log_bucket(self, "AccessLogs", removal_policy=removal_policy)
            self.artifact_bucket: s3.IBucket = s3.Bucket(
                self,
                "Artifacts",
                encryption=s3.BucketEncryption.KMS,
                encryption_key=self.artifact_key,
                bucket_key_enabled=True,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                enforce_ssl=True,
                minimum_tls_version=1.2,
                object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                versioned=True,
                server_access_logs_bucket=self.access_log_bucket,
                server_access_logs_prefix="artifacts/",
                lifecycle_rules=[
                    s3.LifecycleRule(id="ExpireOldArtifacts", noncurrent_version_expiration=Duration.days(90)),
                    s3.LifecycleRule(
                        id="AbortIncompleteUploads", abort_incomplete_multipart_upload_after=Duration.days(7)
                    ),
                ],
                removal_policy=removal_policy,
            )
        else:
            self.artifact_bucket = artifact_bucket
            self.artifact_key = artifact_bucket.encryption_key  # type: ignore[assignment] # checked by the caller
        if notification_topic is None:
            key = kms.Key(
                self,
                "NotificationsKey",
                description=f"Encrypts the notifications of {scope.node.path}",
                enable_key_rotation=True,
                removal_policy=removal_policy,
            )
            # CodeStar Notifications (pipeline events) and EventBridge publish to the encrypted topic.
            for service in ("codestar-notifications.amazonaws.com", "events.amazonaws.com"):
                key.grant(iam.ServicePrincipal(service), "kms:Decrypt", "kms:GenerateDataKey")
            self.topic: sns.ITopic = sns.Topic(self, "Notifications", master_key=key, enforce_ssl=True)
        else:
            self.topic = notification_topic


def _storage_problems(artifact_bucket: s3.IBucket | None) -> list[str]:
    if artifact_bucket is not None and artifact_bucket.encryption_key is None:
        return [
            "artifact_bucket has no KMS key; pass a bucket encrypted with a customer-managed key "
            "(cross-account deployments and the guardrails need one), or omit it"
        ]
    return []


def _tooling_problems(scope: Construct) -> list[str]:
    stack = Stack.of(scope)
    if Token.is_unresolved(stack.account) or Token.is_unresolved(stack.region):
        return [
            "the stack holding a delivery pipeline needs an explicit account and region "
            "(cdk.Stack(..., env=cdk.Environment(account=..., region=...))): the pipeline deploys across accounts"
        ]
    return []


def _common_problems(access_role_prefix: str, parameter_prefix: str) -> list[str]:
    found: list[str] = []
    if not _ROLE_PREFIX.match(access_role_prefix):
        found.append(f"access_role_prefix {access_role_prefix!r} must be 1-40 characters valid in an IAM role name")
    if not _PARAMETER_PREFIX.match(parameter_prefix):
        found.append(f"parameter_prefix {parameter_prefix!r} must be an SSM path such as '/cdk-mlops/delivery'")
    return found


def _parameter_arn(scope: Construct, name: str) -> str:
    return Stack.of(scope).format_arn(service="ssm", resource="parameter", resource_name=name.lstrip("/"))


#: What aws-cdk-lib grants a CodeBuild project's role on ``*`` when the project runs in a VPC:
#: CodeBuild creates, describes and deletes the build's network interface with that role.
_VPC_BUILD_ACTIONS: Final = frozenset(
    {
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DeleteNetworkInterface",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeDhcpOptions",
        "ec2:DescribeVpcs",
    }
)
#: Granted with it, on ``network-interface/*``, by condition for the project's subnets and CodeBuild only.
_INTERFACE_PERMISSION: Final = "ec2:CreateNetworkInterfacePermission"


def _build_security_groups(
    scope: Construct, vpc: ec2.IVpc | None, security_groups: Sequence[ec2.ISecurityGroup] | None
) -> list[ec2.ISecurityGroup]:
    """The builds' security groups: the given ones, else one new group; none without a VPC."""
    if vpc is None:
        return []
    if security_groups:
        return list(security_groups)
    # No inbound rule: nothing connects to a build. Outbound: the source provider, the package index
    # and the AWS APIs, through whatever route the VPC has (NAT gateway, proxy, endpoints).
    return [
        ec2.SecurityGroup(
            scope,
            "BuildSecurityGroup",
            vpc=vpc,
            description=f"The CodeBuild projects of {scope.node.path}: no inbound traffic",
            allow_all_outbound=True,
        )
    ]


def _network_problems(
    vpc: ec2.IVpc | None, vpc_subnets: ec2.SubnetSelection | None, security_groups: Sequence[ec2.ISecurityGroup] | None
) -> list[str]:
    given = [name for name, value in (("vpc_subnets", vpc_subnets), ("security_groups", security_groups)) if value]
    if vpc is None and given:
        return [f"{' and '.join(given)} given without a vpc; give the vpc the builds run in, or leave them out"]
    return []


def _build_spec(
    *,
    python_version: str,
    install: Sequence[str] = (),
    build: Sequence[str] = (),
    cache: bool = False,
    exported: Sequence[str] = (),
    reports: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "version": "0.2",
        "phases": {"install": {"runtime-versions": {"python": python_version}}},
    }
    if install:
        spec["phases"]["install"]["commands"] = list(install)
    if build:
        spec["phases"]["build"] = {"commands": list(build)}
    if cache:
        spec["cache"] = {"paths": list(_CACHE_PATHS)}
    if exported:
        spec["env"] = {"exported-variables": list(exported)}
    if reports:
        spec["reports"] = dict(reports)
    return spec


# ---------------------------------------------------------------------------- acknowledgments (IAM5)


@dataclass(frozen=True)
class _WildcardRule:
    """A family of wildcard permissions that CDK Pipelines or CodeBuild generate, and why each is safe."""

    reason: str
    matches: Callable[[Mapping[str, Any], list[str], str], bool]


def _resources(statement: Mapping[str, Any]) -> list[str]:
    value = statement.get("Resource", [])
    return [_flatten(r) for r in (value if isinstance(value, list) else [value])]


def _actions(statement: Mapping[str, Any]) -> list[str]:
    value = statement.get("Action", [])
    return [str(a) for a in (value if isinstance(value, list) else [value])]


#: Rewrites one statement of a final policy; returns the statements that replace it.
_StatementRewrite = Callable[[Mapping[str, Any]], list[dict[str, Any]]]


def _rewrite_policies(policies: Iterable[iam.CfnPolicy], rewrite: _StatementRewrite) -> None:
    """Apply ``rewrite`` to every statement of the policies, as CloudFormation will receive them.

    For statements that aws-cdk-lib and CDK Pipelines add on their own (source actions, replication
    buckets), until the app is prepared. Call it from a node validation, which runs after that:
    each policy is resolved (statements merged when ``@aws-cdk/aws-iam:minimizePolicies`` is on),
    rewritten, and set on its L1 if it changed, so the template and cdk-nag see the same document.
    """
    for policy in policies:
        document = Stack.of(policy).resolve(policy.policy_document)
        if not isinstance(document, dict):
            continue
        before = document.get("Statement", [])
        after = [new for statement in before for new in rewrite(statement)]
        if after != before:
            policy.policy_document = {**document, "Statement": after}


def _policies_under(scope: Construct) -> list[iam.CfnPolicy]:
    """The policies of ``scope``'s own stacks (not of the stages a CDK Pipeline defines inside it)."""
    stage = cdk.Stage.of(scope)
    return [c for c in scope.node.find_all() if isinstance(c, iam.CfnPolicy) and cdk.Stage.of(c) is stage]


def _with_actions(statement: Mapping[str, Any], actions: Sequence[str]) -> dict[str, Any]:
    return {**statement, "Action": list(actions) if len(actions) > 1 else actions[0]}


def _use_connection_of_its_service(statement: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A statement that grants ``UseConnection``, with the action of each connection's own service.

    aws-cdk-lib grants ``codestar-connections:UseConnection`` to source actions and to CodeBuild
    projects that clone through a connection, whatever the connection ARN's service.
    """
    actions = _actions(statement)
    if statement.get("Effect") != "Allow" or not any(a.endswith(f":{_USE_CONNECTION}") for a in actions):
        return [dict(statement)]
    value = statement.get("Resource", [])
    resources = value if isinstance(value, list) else [value]
    needed = {a for r in resources for a in use_connection_actions(r if isinstance(r, str) else _flatten(r))}
    kept = [a for a in actions if not a.endswith(f":{_USE_CONNECTION}")]
    return [_with_actions(statement, [*kept, *sorted(needed)])]


@jsii.implements(IValidation)
class _UseConnectionActions:
    """Makes every grant on a connection under ``owner`` name the action of the connection's service.

    Runs after the app is prepared, when the source actions and CodeBuild projects have added
    their statements (see :func:`_use_connection_of_its_service`).
    """

    def __init__(self, owner: Construct) -> None:
        self._owner = owner

    def validate(self) -> list[str]:
        _rewrite_policies(_policies_under(self._owner), _use_connection_of_its_service)
        return []


@dataclass(frozen=True)
class _ReplicationKey:
    """The key of a CodePipeline replication bucket in another region, known by its alias."""

    region: str
    account: str
    alias_name: str

    @property
    def key_arns(self) -> str:
        """Every key of the support stack's account and region; the alias condition picks one."""
        return f"arn:{Aws.PARTITION}:kms:{self.region}:{self.account}:key/*"


def _replication_keys(pipeline: codepipeline.Pipeline) -> list[_ReplicationKey]:
    """The replication keys of ``pipeline``'s cross-region support stacks whose alias synth knows."""
    found: list[_ReplicationKey] = []
    for support in pipeline.cross_region_support.values():
        if support.stack is Stack.of(pipeline):
            continue
        for alias in (c for c in support.stack.node.find_all() if isinstance(c, kms.CfnAlias)):
            name = support.stack.resolve(alias.alias_name)
            if isinstance(name, str) and name.startswith("alias/"):
                found.append(_ReplicationKey(support.stack.region, support.stack.account, name))
    return found


@jsii.implements(IValidation)
class _ScopeReplicationKeyGrants:
    """Narrows the pipeline role's KMS grant on ``*`` to the replication keys, by alias.

    aws-cdk-lib grants the pipeline role the KMS calls on a replication bucket's key, which lives
    in another region's support stack; a key ARN cannot be referenced across regions, so the grant
    names ``*``. The key's alias is a name fixed at synth, so the grant becomes: keys of the
    support stack's account and region (``key/*``) that carry that alias (``kms:ResourceAliases``),
    as aws-cdk-lib's own grant on an imported alias does.
    """

    def __init__(self, pipeline: codepipeline.Pipeline) -> None:
        self._pipeline = pipeline

    def validate(self) -> list[str]:
        keys = _replication_keys(self._pipeline)
        policy = self._pipeline.role.node.try_find_child("DefaultPolicy")
        cfn = policy.node.default_child if policy is not None else None
        if keys and isinstance(cfn, iam.CfnPolicy):
            stack = Stack.of(self._pipeline)
            _rewrite_policies([cfn], lambda statement: _scoped_to_keys(statement, keys, stack))
        return []


def _scoped_to_keys(
    statement: Mapping[str, Any], keys: Sequence[_ReplicationKey], stack: Stack
) -> list[dict[str, Any]]:
    """A statement with KMS actions on ``*``, with ``*`` replaced by one scoped statement per key."""
    actions = _actions(statement)
    value = statement.get("Resource", [])
    resources = value if isinstance(value, list) else [value]
    kms_actions = [a for a in actions if a.startswith("kms:")]
    if statement.get("Effect") != "Allow" or "Condition" in statement or "*" not in resources or not kms_actions:
        return [dict(statement)]
    rest = [r for r in resources if r != "*"]
    others = [a for a in actions if not a.startswith("kms:")]
    split: list[dict[str, Any]] = []
    if rest:  # merged statements: what was granted on the other resources stays as it was
        split.append({**statement, "Resource": rest if len(rest) > 1 else rest[0]})
    if others:
        split.append({**_with_actions(statement, others), "Resource": "*"})
    for key in keys:
        split.append(
            {
                **_with_actions(statement, kms_actions),
                "Resource": stack.resolve(key.key_arns),
                "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": key.alias_name}},
            }
        )
    return split


_CODEBUILD_OWN = re.compile(
    r"^arn:<AWS::Partition>:(logs|codebuild):[^:]+:[^:]+:"
    r"(log-group:/aws/codebuild/<[A-Za-z0-9]+>(:\*)?|report-group/<[A-Za-z0-9]+>-\*)$"
)
_BOOTSTRAP_ROLE_TAG = "iam:ResourceTag/aws-cdk:bootstrap-role"
# CDK Pipelines' shared asset publishing role, and what it grants for projects created after it.
_ASSET_ROLE = "/Assets/FileRole/"
_CODEBUILD_ANY = re.compile(
    r"^arn:<AWS::Partition>:(logs|codebuild):[^:]+:[0-9]{12}:(log-group:/aws/codebuild/\*|report-group/\*)$"
)
_CODEBUILD_RUN_ACTIONS = frozenset({"codebuild:BatchGetBuilds", "codebuild:StartBuild", "codebuild:StopBuild"})


@jsii.implements(IValidation)
class _AcknowledgePipelineWildcards:
    """Acknowledges the IAM5 findings of the generated pipeline roles, computed from the final policies.

    CDK Pipelines and CodeBuild add statements until the app is prepared; node validations run
    after that, so the findings computed here are the ones cdk-nag reports. Each statement is
    matched against a known family (artifact bucket, artifact key, a project's own logs and
    reports, CDK bootstrap roles); a wildcard outside every family stays unacknowledged and fails
    synth.
    """

    def __init__(
        self,
        owner: Construct,
        buckets: Sequence[s3.IBucket],
        keys: Sequence[kms.IKey | None],
        *,
        replicating: codepipeline.Pipeline | None = None,
    ) -> None:
        self._owner = owner
        self._buckets = buckets
        self._keys = [k for k in keys if k is not None]
        self._replicating = replicating

    def _rules(self) -> list[_WildcardRule]:
        buckets = {nag_resource(self._owner, b.bucket_arn) for b in self._buckets}
        keys = {nag_resource(self._owner, k.key_arn) for k in self._keys}
        replicated: dict[str, str] = {}  # a replication key's ARNs in a finding id -> its alias
        role_policy = None
        if self._replicating is not None:
            replicated = {
                nag_resource(self._owner, k.key_arns): k.alias_name for k in _replication_keys(self._replicating)
            }
            role_policy = f"{self._replicating.role.node.path}/DefaultPolicy/Resource"

        def artifacts(statement: Mapping[str, Any], resources: list[str], path: str) -> bool:
            return all(r.split("/", 1)[0] in buckets for r in resources)

        def own_keys(statement: Mapping[str, Any], resources: list[str], path: str) -> bool:
            return set(resources) <= keys and all(a.startswith("kms:") for a in _actions(statement))

        def codebuild_own(statement: Mapping[str, Any], resources: list[str], path: str) -> bool:
            return all(_CODEBUILD_OWN.match(r) for r in resources)

        def bootstrap_roles(statement: Mapping[str, Any], resources: list[str], path: str) -> bool:
            condition = statement.get("Condition", {})
            tagged = any(_BOOTSTRAP_ROLE_TAG in (values or {}) for values in condition.values())
            return tagged and _actions(statement) == ["sts:AssumeRole"]

        def self_mutation_reads(statement: Mapping[str, Any], resources: list[str], path: str) -> bool:
            return resources == ["*"] and set(_actions(statement)) <= {"cloudformation:DescribeStacks", "s3:ListBucket"}

        def replication_keys(statement: Mapping[str, Any], resources: list[str], path: str) -> bool:
            # The pipeline role's grant on a replication key, as _ScopeReplicationKeyGrants narrowed it.
            condition = (statement.get("Condition") or {}).get("ForAnyValue:StringEquals") or {}
            return (
                path == role_policy
                and len(resources) == 1
                and replicated.get(resources[0], "") == condition.get("kms:ResourceAliases")
                and all(a.startswith("kms:") for a in _actions(statement))
            )

        def vpc_builds(statement: Mapping[str, Any], resources: list[str], path: str) -> bool:
            actions = set(_actions(statement))
            if resources == ["*"]:
                return actions <= _VPC_BUILD_ACTIONS
            condition = (statement.get("Condition") or {}).get("StringEquals") or {}
            return (
                actions == {_INTERFACE_PERMISSION}
                and condition.get("ec2:AuthorizedService") == "codebuild.amazonaws.com"
                and "ec2:Subnet" in condition
                and all(r.endswith(":network-interface/*") for r in resources)
            )

        def asset_role(statement: Mapping[str, Any], resources: list[str], path: str) -> bool:
            if _ASSET_ROLE not in path:
                return False
            if resources == ["*"]:
                return set(_actions(statement)) <= _CODEBUILD_RUN_ACTIONS
            return all(_CODEBUILD_ANY.match(r) for r in resources)

        return [
            _WildcardRule(
                "pipeline artifacts: the s3 action families CDK grants for reading and writing artifacts, "
                "on this pipeline's KMS-encrypted artifact bucket only",
                artifacts,
            ),
            _WildcardRule(
                "kms:GenerateDataKey*/ReEncrypt* on this pipeline's own keys only (artifacts, notifications), "
                "to encrypt what it stores and publishes",
                own_keys,
            ),
            _WildcardRule(
                "CodeBuild writes the logs and test reports of its own project only; their names carry the "
                "project's generated name",
                codebuild_own,
            ),
            _WildcardRule(
                "CDK Pipelines self-mutation and asset publishing assume only CDK bootstrap roles "
                "(condition on the aws-cdk:bootstrap-role tag); their names carry the target account and region",
                bootstrap_roles,
            ),
            _WildcardRule(
                "self-mutation describes the pipeline's stack and lists the bootstrap asset buckets; "
                "these reads name no resource known at synth",
                self_mutation_reads,
            ),
            _WildcardRule(
                "cross-region deployments: the pipeline encrypts the artifacts it copies to another region with the "
                "replication bucket's key, whose ARN cannot be referenced across regions; the grant names the keys of "
                "the support stack's account and region and, by condition (kms:ResourceAliases), only the one with "
                "the replication key's alias",
                replication_keys,
            ),
            _WildcardRule(
                "CDK Pipelines creates the asset publishing role before the asset projects it serves, and makes it "
                "their CodePipeline action role too: it may write CodeBuild logs and reports in this account and "
                "region, and start and stop builds; it can assume only the targets' file-publishing roles",
                asset_role,
            ),
            _WildcardRule(
                "builds in a VPC: CodeBuild creates, describes and deletes each build's network interface with the "
                "project's role; the interface does not exist before the build and the EC2 Describe calls support no "
                "resource-level permissions; ec2:CreateNetworkInterfacePermission is limited by condition to the "
                "given subnets and the CodeBuild service",
                vpc_builds,
            ),
        ]

    def validate(self) -> list[str]:
        rules = self._rules()
        for construct in self._owner.node.find_all():
            if not isinstance(construct, iam.CfnPolicy):
                continue
            document = Stack.of(construct).resolve(construct.policy_document)
            statements = document.get("Statement", []) if isinstance(document, dict) else []
            for statement in statements:
                if statement.get("Effect") != "Allow":
                    continue
                resources = _resources(statement)
                wild_actions = [a for a in _actions(statement) if "*" in a]
                wild_resources = [r for r in resources if "*" in r]
                if not wild_actions and not wild_resources:
                    continue
                path = construct.node.path
                rule = next((r for r in rules if r.matches(statement, resources, path)), None)
                if rule is not None:
                    scope = construct.node.scope
                    assert scope is not None
                    acknowledge(scope, rule.reason, *iam5_findings(wild_actions, wild_resources))
        return []


@jsii.implements(IValidation)
class _RoleArnsAsSub:
    """Writes the action role ARNs of a pipeline as ``Fn::Sub`` instead of ``Fn::Join`` (what cfn-lint E3703 asks).

    CDK Pipelines renders the CDK bootstrap roles of the targets (``arn:${AWS::Partition}:iam::...``)
    with ``Fn::Join``; the value is the same. Runs after the app is prepared, when the actions are final.
    """

    def __init__(self, pipeline: codepipeline.Pipeline) -> None:
        self._pipeline = pipeline

    def validate(self) -> list[str]:
        cfn = self._pipeline.node.default_child
        assert isinstance(cfn, codepipeline.CfnPipeline)
        stages = Stack.of(cfn).resolve(cfn.stages)
        for i, stage in enumerate(stages or []):
            # A resolved L1 property keeps the struct's field names (``actions``); free-form JSON keeps its own.
            for j, action in enumerate(stage.get("actions", stage.get("Actions", []))):
                role = (action.get("configuration", action.get("Configuration")) or {}).get("RoleArn")
                text = _join_as_sub(role)
                if text is not None:
                    cfn.add_property_override(f"Stages.{i}.Actions.{j}.Configuration.RoleArn", {"Fn::Sub": text})
        return []


def _join_as_sub(value: Any) -> str | None:
    """``{"Fn::Join": ["", [...]]}`` of strings and pseudo-parameter references as one ``Fn::Sub`` string."""
    if not isinstance(value, dict) or list(value) != ["Fn::Join"]:
        return None
    delimiter, parts = value["Fn::Join"]
    if delimiter != "":
        return None
    text = ""
    for part in parts:
        if isinstance(part, str) and "${" not in part:
            text += part
        elif isinstance(part, dict) and list(part) == ["Ref"] and str(part["Ref"]).startswith("AWS::"):
            text += "${" + str(part["Ref"]) + "}"
        else:
            return None
    return text


# ---------------------------------------------------------------------------- platform pipeline


@dataclass(frozen=True)
class _RetrainCheck:
    pipeline_name: str
    dataset: str
    fingerprint: str


class PlatformDeliveryPipeline(Construct):
    """The platform's CI/CD: a self-mutating CDK Pipeline (CodePipeline V2) from commit to prod.

    ::

        Source ► Build (make test, make synth) ► UpdatePipeline ► Assets
          ► <first> [security report] deploy ► verify ► retrain-if-ML-changed
          ► <next>  deploy ► verify ► retrain-if-ML-changed
          ► <prod>  [manual approval] deploy ► verify ► retrain-if-ML-changed

    Each stage is built by ``stage_factory`` inside this construct (the CDK Pipelines pattern:
    stages are defined in the pipeline's scope) and deployed to its target's account and region
    with the CDK bootstrap roles there. The pipeline adds a ``DeliveryAccess`` stack to every
    stage: a role its build steps assume to check the deployment and request retraining.

    Retrain when ML code changes, and only then: at synth the construct computes a fingerprint of
    every training pipeline in a stage (its definition and script assets,
    :func:`cdk_mlops.delivery_steps.training_fingerprint`). After the stage deploys, a step
    compares it with the fingerprint recorded at the previous deployment (an SSM parameter in the
    tooling account) and, when it changed, sends one ``Manual Retrain`` request to the
    environment's retrain trigger, which trains once on the current data version. Nothing else
    (endpoint, alarms, trigger settings) changes the fingerprint.

    Example::

        PlatformDeliveryPipeline(
            tooling_stack, "Platform",
            source=PipelineSource.connection("arn:aws:codeconnections:eu-west-1:111111111111:connection/...",
                                             repository="acme/mlops", branch="main"),
            targets=[DeliveryTarget(name="dev", account="222222222222", region="eu-west-1"),
                     DeliveryTarget(name="prod", account="333333333333", region="eu-west-1",
                                    manual_approval=True, production=True)],
            stage_factory=lambda scope, target: MyStage(scope, target.construct_id, env=target.env),
        )

    Attributes:
        pipeline: The CDK Pipeline.
        code_pipeline: The underlying ``AWS::CodePipeline::Pipeline`` (V2).
        artifact_bucket: KMS-encrypted, versioned, TLS-only, with access logs.
        artifact_key: The artifact bucket's key (used by every CodeBuild project too).
        access_log_bucket: Receives the artifact bucket's access logs, when this construct created it.
        topic: Pipeline failures and approvals waiting are announced here.
        stages: The deployed stages, by environment name, in order.
        access: Each stage's :class:`DeliveryAccess`, by environment name.
        step_roles: The role of each stage's post-deploy steps, by environment name.
        synth_step: Runs the tests and the synth.
        security_step: Checks the synthesized assembly's validation reports and publishes them.
        verify_steps: The post-deploy checks, by environment name.
        retrain_steps: The retrain-on-ML-change steps, by environment name (stages with a training pipeline).
        fingerprints: ``{environment: {pipeline name: fingerprint}}`` computed at synth.
        vpc: The VPC the builds run in, if any.
        security_groups: The builds' security groups (empty without a VPC).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        source: PipelineSource,
        targets: Sequence[DeliveryTarget],
        stage_factory: Callable[[Construct, DeliveryTarget], cdk.Stage],
        on_stage: Callable[[cdk.Stage, DeliveryTarget, DeliveryAccess], None] | None = None,
        test_commands: Sequence[str] = ("make test",),
        synth_commands: Sequence[str] = ("make synth",),
        model_records: Mapping[str, str] | None = None,
        cdk_json: str = "cdk.json",
        context_key: str = "environments",
        access_role_prefix: str = "cdk-mlops",
        parameter_prefix: str = DEFAULT_PARAMETER_PREFIX,
        artifact_bucket: s3.IBucket | None = None,
        notification_topic: sns.ITopic | None = None,
        pipeline_name: str | None = None,
        cli_version: str | None = None,
        python_version: str = "3.12",
        build_image: codebuild.IBuildImage = codebuild.LinuxBuildImage.STANDARD_7_0,
        step_install_commands: Sequence[str] = STEP_INSTALL_COMMANDS,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
    ) -> None:
        """Define the pipeline and every stage.

        Args:
            scope: The parent construct; its stack needs an explicit account and region (the tooling account).
            id: The construct id.
            source: The repository (:meth:`PipelineSource.connection` or :meth:`PipelineSource.s3`).
            targets: The environments, in deployment order.
            stage_factory: Builds one target's stage under the given scope (this construct). It must
                deploy to the target's account and region.
            on_stage: Called with each stage, its target and its access construct before the stage is
                added (what is added later is not deployed). Default: - nothing.
            test_commands: What the build step runs first. Default: - ``make test``.
            synth_commands: Then, after pinning models, what writes ``cdk.out``. Default: - ``make synth``.
            model_records: Environment name → the SSM parameter (tooling account) recording the model
                package it runs; written into ``cdk_json`` before synth. Default: - none.
            cdk_json: Where ``model_records`` are written. Default: - ``cdk.json``.
            context_key: The context key of the environments in ``cdk_json``. Default: - ``environments``.
            access_role_prefix: Names each environment's access role (:func:`access_role_name`).
                Default: - ``cdk-mlops``.
            parameter_prefix: SSM path of the records. Default: - ``/cdk-mlops/delivery``.
            artifact_bucket: A bucket encrypted with a customer-managed key. Default: - a new
                bucket, key and access-log bucket.
            notification_topic: Default: - a new KMS-encrypted topic.
            pipeline_name: Default: - generated.
            cli_version: The CDK CLI version of the self-mutation step. Default: - the latest.
            python_version: CodeBuild's Python runtime. Default: - 3.12.
            build_image: Default: - ``aws/codebuild/standard:7.0``.
            step_install_commands: What the build steps install before running
                :mod:`cdk_mlops.delivery_steps`. Default: - boto3, and the library without its
                dependencies unless the checkout contains it.
            removal_policy: For the buckets and keys. Default: - RETAIN.
            vpc: A VPC of the tooling account that every build runs in: synth, self-mutation, asset
                publishing, the security report, and each stage's verify and retrain steps. The
                builds fetch the source and packages (PyPI, npm), so its subnets need a route to
                them (a NAT gateway, a proxy, or a package mirror) and to the AWS APIs. Default: -
                the builds run outside any VPC.
            vpc_subnets: The subnets of ``vpc`` the builds run in (needs ``vpc``). Default: - the
                VPC's private subnets.
            security_groups: The builds' security groups (needs ``vpc``). Default: - one new group
                with no inbound rule and all outbound traffic allowed (``security_groups``).

        Raises:
            ConfigurationError: listing every problem (source, targets, a production target without
                approval, duplicates, the stack's environment, network settings without a vpc),
                before anything is defined.
        """
        super().__init__(scope, id)
        tooling = Stack.of(self)
        problems = _tooling_problems(self)
        problems += source.problems(None if problems else tooling.region)
        problems += _target_problems("targets", targets)
        problems += _common_problems(access_role_prefix, parameter_prefix)
        problems += _storage_problems(artifact_bucket)
        problems += _network_problems(vpc, vpc_subnets, security_groups)
        records = dict(model_records or {})
        unknown = sorted(set(records) - {t.name for t in targets})
        if unknown:
            problems.append(f"model_records name environment(s) {', '.join(unknown)} that are in no target")
        if not synth_commands:
            problems.append("synth_commands is empty; give the commands that write the cloud assembly")
        if problems:
            raise ConfigurationError(self, problems)

        self._source = source
        self._prefix = parameter_prefix
        self._role_prefix = access_role_prefix
        self._python = python_version
        self._install = tuple(step_install_commands)
        storage = _PipelineStorage(
            self,
            "Storage",
            artifact_bucket=artifact_bucket,
            notification_topic=notification_topic,
            removal_policy=removal_policy,
        )
        self.artifact_bucket = storage.artifact_bucket
        self.artifact_key = storage.artifact_key
        self.access_log_bucket = storage.access_log_bucket
        self.topic = storage.topic
        self.vpc = vpc
        self.security_groups = _build_security_groups(self, vpc, security_groups)
        environment = codebuild.BuildEnvironment(build_image=build_image, compute_type=codebuild.ComputeType.SMALL)

        self._pipeline_source = source._pipelines_source()
        self.synth_step = self._synth_step(
            test_commands, synth_commands, records, cdk_json, context_key, build_image, python_version
        )
        self.code_pipeline = codepipeline.Pipeline(
            self,
            "Pipeline",
            pipeline_name=pipeline_name,
            pipeline_type=codepipeline.PipelineType.V2,
            artifact_bucket=self.artifact_bucket,
            restart_execution_on_update=True,
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Delivery",
            code_pipeline=self.code_pipeline,
            synth=self.synth_step,
            self_mutation=True,
            docker_enabled_for_synth=False,
            docker_enabled_for_self_mutation=False,
            publish_assets_in_parallel=False,
            cli_version=cli_version,
            # Every CodeBuild project CDK Pipelines creates (steps, self-mutation, assets) gets the network.
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=environment,
                vpc=vpc,
                subnet_selection=vpc_subnets,
                security_groups=self.security_groups or None,
            ),
        )
        self.security_step = pipelines.CodeBuildStep(
            "SecurityReport",
            input=self._pipeline_source,
            additional_inputs={"cdk.out": self.synth_step},
            install_commands=list(self._install),
            commands=["python3 -m cdk_mlops.delivery_steps security-report --assembly cdk.out --out security-report"],
            primary_output_directory="security-report",
            build_environment=environment,
            partial_build_spec=codebuild.BuildSpec.from_object(
                _build_spec(
                    python_version=python_version,
                    reports={
                        "security": {
                            "files": ["junit.xml"],
                            "base-directory": "security-report",
                            "file-format": "JUNITXML",
                        }
                    },
                )
            ),
        )

        self.stages: dict[str, cdk.Stage] = {}
        self.access: dict[str, DeliveryAccess] = {}
        self.step_roles: dict[str, iam.Role] = {}
        self.verify_steps: dict[str, pipelines.CodeBuildStep] = {}
        self.retrain_steps: dict[str, pipelines.CodeBuildStep] = {}
        self.fingerprints: dict[str, dict[str, str]] = {}
        for index, target in enumerate(targets):
            self._add_target(target, stage_factory, on_stage, first=index == 0, environment=environment)

        self.pipeline.build_pipeline()
        self._harden_replication(removal_policy)
        self.node.add_validation(_RoleArnsAsSub(self.code_pipeline))
        # The pipeline reads its role's ARN (GetAtt), so it waits for the role; it must wait for the policy too.
        depend_on_role_policy(self.code_pipeline, self.code_pipeline.role)
        self.code_pipeline.notify_on(
            "Notifications",
            self.topic,
            events=[
                codepipeline.PipelineNotificationEvents.PIPELINE_EXECUTION_FAILED,
                codepipeline.PipelineNotificationEvents.ACTION_EXECUTION_FAILED,
                codepipeline.PipelineNotificationEvents.MANUAL_APPROVAL_NEEDED,
            ],
        )
        # In this order: the rewrites make the final policies, whose wildcards are then acknowledged.
        self.node.add_validation(_UseConnectionActions(self))
        self.node.add_validation(_ScopeReplicationKeyGrants(self.code_pipeline))
        self.node.add_validation(
            _AcknowledgePipelineWildcards(
                self,
                [
                    self.artifact_bucket,
                    *(s.replication_bucket for s in self.code_pipeline.cross_region_support.values()),
                ],
                [self.artifact_key, self.topic.master_key],
                replicating=self.code_pipeline,
            )
        )

    def _harden_replication(self, removal_policy: RemovalPolicy) -> None:
        """Bring CodePipeline's cross-region support stacks (one per other target region) up to the guardrails.

        CodePipeline copies artifacts to a bucket in each region it deploys to; aws-cdk-lib defines
        that bucket and its key in a support stack of the tooling stage. Here they get key rotation,
        versioning, retention and termination protection.
        """
        for region, support in self.code_pipeline.cross_region_support.items():
            if support.stack is Stack.of(self):
                continue  # the pipeline's own region: its artifact bucket
            support.stack.termination_protection = True
            for construct in support.stack.node.find_all():
                if isinstance(construct, kms.CfnKey):
                    construct.enable_key_rotation = True
                    construct.apply_removal_policy(removal_policy)
                elif isinstance(construct, s3.CfnBucket):
                    construct.versioning_configuration = s3.CfnBucket.VersioningConfigurationProperty(status="Enabled")
                    construct.apply_removal_policy(removal_policy)
                    acknowledge(
                        construct,
                        f"the replication bucket of {region} holds copies of pipeline artifacts for the deploy actions "
                        "there; it is KMS-encrypted, versioned, private and used only by the pipeline's roles",
                        "AwsSolutions-S1",
                    )

    # ------------------------------------------------------------------ steps

    def _synth_step(
        self,
        test_commands: Sequence[str],
        synth_commands: Sequence[str],
        records: Mapping[str, str],
        cdk_json: str,
        context_key: str,
        build_image: codebuild.IBuildImage,
        python_version: str,
    ) -> pipelines.CodeBuildStep:
        commands = list(test_commands)
        statements: list[iam.PolicyStatement] = []
        if records:
            pin = ["python3 -m cdk_mlops.delivery_steps pin-models", f"--cdk-json {cdk_json}"]
            pin += [f"--context-key {context_key}"] + [f"--record {name}={p}" for name, p in sorted(records.items())]
            commands += [*self._install, " ".join(pin)]
            statements.append(
                iam.PolicyStatement(
                    actions=["ssm:GetParameter"],
                    resources=[_parameter_arn(self, p) for _, p in sorted(records.items())],
                )
            )
        commands += list(synth_commands)
        return pipelines.CodeBuildStep(
            "Synth",
            input=self._pipeline_source,
            commands=commands,
            primary_output_directory="cdk.out",
            build_environment=codebuild.BuildEnvironment(
                build_image=build_image, compute_type=codebuild.ComputeType.MEDIUM
            ),
            partial_build_spec=codebuild.BuildSpec.from_object(_build_spec(python_version=python_version, cache=True)),
            cache=codebuild.Cache.bucket(self.artifact_bucket, prefix="cache/synth"),
            role_policy_statements=statements or None,
            timeout=Duration.minutes(90),
        )

    def _add_target(
        self,
        target: DeliveryTarget,
        stage_factory: Callable[[Construct, DeliveryTarget], cdk.Stage],
        on_stage: Callable[[cdk.Stage, DeliveryTarget, DeliveryAccess], None] | None,
        *,
        first: bool,
        environment: codebuild.BuildEnvironment,
    ) -> None:
        stage = stage_factory(self, target)
        problems: list[str] = []
        if not isinstance(stage, cdk.Stage):
            raise ConfigurationError(self, f"stage_factory returned {stage!r} for {target.name}, not a cdk.Stage")
        if (stage.account, stage.region) != (target.account, target.region):
            problems.append(
                f"the stage for {target.name} deploys to {stage.account}/{stage.region}, not to the target's "
                f"{target.account}/{target.region}; create it with env=target.env"
            )
        stacks = [c for c in stage.node.find_all() if isinstance(c, cdk.Stack) and cdk.Stage.of(c) is stage]
        if not stacks:
            problems.append(f"the stage for {target.name} holds no stack")
        if problems:
            raise ConfigurationError(self, problems)

        access_stack = cdk.Stack(
            stage,
            "DeliveryAccess",
            description=f"The role the delivery pipelines' build steps assume in {target.name}",
            termination_protection=any(s.termination_protection for s in stacks),
        )
        access = DeliveryAccess(
            access_stack,
            "Access",
            role_name=access_role_name(self._role_prefix, target.name),
            trusted_account=Stack.of(self).account,
            environment=target.name,
        )
        access.allow_describe_stacks([*stacks, access_stack])
        trainings = [c for c in stage.node.find_all() if isinstance(c, _PipelineResources)]
        endpoints = [c for c in stage.node.find_all() if isinstance(c, ModelEndpoint)]
        for training in trainings:
            access.allow_describe_training(training)
        for endpoint in endpoints:
            access.allow_describe_endpoint(endpoint.endpoint_name)
        checks = self._retrain_checks(stage, trainings)
        if checks:
            access.allow_retrain_requests()
        if on_stage is not None:
            on_stage(stage, target, access)

        role = iam.Role(
            self,
            f"{target.construct_id}StepsRole",
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
            description=f"The post-deploy steps of {target.name}: assume its delivery access role, keep its records",
        )
        access_arn = _role_arn(target.account, access_role_name(self._role_prefix, target.name))
        role.add_to_policy(iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[access_arn]))
        record_names = [revision_record_name(self._prefix, target.name)]
        record_names += [training_record_name(self._prefix, target.name, c.pipeline_name) for c in checks]
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameter", "ssm:PutParameter"],
                resources=[_parameter_arn(self, n) for n in record_names],
            )
        )

        verify = self._verify_step(target, stage, access_stack, stacks, trainings, endpoints, role, access_arn)
        post: list[pipelines.Step] = [verify]
        if checks:
            retrain = self._retrain_step(target, checks, role, access_arn, environment)
            retrain.add_step_dependency(verify)
            post.append(retrain)
            self.retrain_steps[target.name] = retrain
        pre: list[pipelines.Step] = [self.security_step] if first else []
        if target.manual_approval:
            approval = pipelines.ManualApprovalStep(
                f"Approve{target.construct_id}",
                comment=f"Deploy this revision to {target.name} ({target.account}/{target.region})?",
            )
            if first:
                approval.add_step_dependency(self.security_step)
            pre.append(approval)
        self.pipeline.add_stage(stage, pre=pre or None, post=post)

        self.stages[target.name] = stage
        self.access[target.name] = access
        self.step_roles[target.name] = role
        self.verify_steps[target.name] = verify
        self.fingerprints[target.name] = {c.pipeline_name: c.fingerprint for c in checks}

    def _retrain_checks(self, stage: cdk.Stage, trainings: Sequence[_PipelineResources]) -> list[_RetrainCheck]:
        """One check per training pipeline that a retrain trigger starts; fingerprinted now, at synth."""
        triggers = [c for c in stage.node.find_all() if isinstance(c, RetrainTrigger)]
        checks: list[_RetrainCheck] = []
        for training in trainings:
            trigger = next((t for t in triggers if t.pipeline_name == training.pipeline_name), None)
            if trigger is None:
                cdk.Annotations.of(training).add_warning_v2(
                    "cdk-mlops:delivery-no-retrain-trigger",
                    "no RetrainTrigger starts this pipeline, so the delivery pipeline cannot retrain it when its "
                    "ML code changes; add a RetrainTrigger with its pipeline_name",
                )
                continue
            definition = Stack.of(training).resolve(training.definition)
            scripts = getattr(training, "scripts", {})
            hashes = [asset.asset_hash for asset in scripts.values()]
            checks.append(
                _RetrainCheck(training.pipeline_name, trigger.datasets[0], training_fingerprint(definition, hashes))
            )
        return checks

    def _verify_step(
        self,
        target: DeliveryTarget,
        stage: cdk.Stage,
        access_stack: cdk.Stack,
        stacks: Sequence[cdk.Stack],
        trainings: Sequence[_PipelineResources],
        endpoints: Sequence[ModelEndpoint],
        role: iam.IRole,
        access_arn: str,
    ) -> pipelines.CodeBuildStep:
        words = [
            "python3 -m cdk_mlops.delivery_steps verify",
            f"--environment {target.name}",
            f"--region {target.region}",
            f"--role-arn {access_arn}",
        ]
        for stack in [*stacks, access_stack]:
            outputs = [
                str(stack.resolve(stack.get_logical_id(c)))
                for c in stack.node.find_all()
                if isinstance(c, cdk.CfnOutput)
            ]
            words.append(f"--stack {stack.stack_name}:{','.join(sorted(outputs))}".rstrip(":"))
        words += [f"--pipeline {t.pipeline_name}" for t in trainings]
        words += [f"--endpoint {e.endpoint_name}" for e in endpoints]
        words += [
            f"--revision-record {revision_record_name(self._prefix, target.name)}",
            f'--revision "{self._source._revision_kind()}:$SOURCE_REVISION"',
        ]
        return pipelines.CodeBuildStep(
            f"Verify{target.construct_id}",
            input=self._pipeline_source,
            install_commands=list(self._install),
            commands=[" ".join(words)],
            env={"SOURCE_REVISION": self._pipeline_source.source_attribute(self._source._revision_attribute())},
            role=role,
            partial_build_spec=codebuild.BuildSpec.from_object(_build_spec(python_version=self._python)),
        )

    def _retrain_step(
        self,
        target: DeliveryTarget,
        checks: Sequence[_RetrainCheck],
        role: iam.IRole,
        access_arn: str,
        environment: codebuild.BuildEnvironment,
    ) -> pipelines.CodeBuildStep:
        commands = [
            " ".join(
                [
                    "python3 -m cdk_mlops.delivery_steps retrain",
                    f"--environment {target.name}",
                    f"--region {target.region}",
                    f"--role-arn {access_arn}",
                    f"--record {training_record_name(self._prefix, target.name, check.pipeline_name)}",
                    f"--fingerprint {check.fingerprint}",
                    f"--pipeline {check.pipeline_name}",
                    f"--dataset {check.dataset}",
                ]
            )
            for check in checks
        ]
        return pipelines.CodeBuildStep(
            f"Retrain{target.construct_id}",
            input=self._pipeline_source,
            install_commands=list(self._install),
            commands=commands,
            role=role,
            build_environment=environment,
            partial_build_spec=codebuild.BuildSpec.from_object(_build_spec(python_version=self._python)),
        )


# ---------------------------------------------------------------------------- model pipeline


class ModelDeliveryPipeline(Construct):
    """Promotes an approved model package: staging, endpoint test, approval, prod (CodePipeline V2).

    ::

        registry: Approved ─► EventBridge rule ─► Source (no push trigger)
          ► Select (newest approved package, decide_promotion; deliver it or not)
          ► <each target, in order, skipped unless Select delivers>
              [manual approval] ► Deploy (cdk deploy with the package) ► Test

    The registry's ``SageMaker Model Package State Change`` event for a ``Completed`` package of
    the group with ``ModelApprovalStatus = Approved`` starts the pipeline. *Select* lists the group
    in the registry environment and picks the newest approved package
    (:func:`cdk_mlops.promotion.decide_promotion`), with its drift-check baseline prefix and the
    data bucket holding it and the model archive (:func:`cdk_mlops.delivery_steps.model_settings`).

    One approval, one delivery: SageMaker may send several events for one change (and one for a
    later update of an approved package), and each starts a run. Runs are queued, so a repeated
    event's run starts when the earlier run has finished; its Select then finds that the first
    environment's record already names the package and exports ``DELIVER=false``, and an entry
    condition skips every environment's stage: the run succeeds without a deployment, a test or
    an approval request. The first environment's record is written when its deployment succeeds,
    so a run that failed before that delivered nothing, and the next event delivers the package.
    To deliver a package again (after a rejected approval, say), start the pipeline with the
    pipeline variable ``REDELIVER`` set to ``true``. Each *Deploy* step checks out the source
    revision the platform pipeline last deployed to that environment (so nothing unreviewed rides
    along), sets the environment's ``model_package_arn``, ``model_baseline_prefix`` and
    ``model_source_bucket`` in ``cdk.json`` and runs ``npx cdk deploy`` for the environment's
    stacks (the endpoint there reads the model where it was trained: the registry environment
    lets the later environments' accounts read its registry and ``artifacts/``); then it records
    them in the environment's SSM parameter (a JSON object), which the platform pipeline writes
    into ``cdk.json`` before every synth. A failed deployment rolls back,
    a failed test or a rejected approval stops the run: later environments keep their previous
    model, and their records stay as they were.

    Attributes:
        pipeline: The ``AWS::CodePipeline::Pipeline``.
        artifact_bucket: Its artifact bucket (KMS-encrypted).
        artifact_key: The artifact bucket's key.
        access_log_bucket: Receives the artifact bucket's access logs, when this construct created it.
        topic: Failures, approvals waiting and successful promotions are announced here.
        approval_rule: The EventBridge rule on the registry's ``Approved`` events.
        records: The SSM parameter recording the model each environment runs, by environment name.
        select_role: The role of the Select step.
        deploy_roles: The role of each environment's Deploy and Test steps, by environment name.
        vpc: The VPC the builds run in, if any.
        security_groups: The builds' security groups (empty without a VPC).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        source: PipelineSource,
        model_package_group_name: str,
        registry_environment: str,
        registry_account: str,
        registry_region: str,
        targets: Sequence[ModelDeliveryTarget],
        access_role_prefix: str = "cdk-mlops",
        parameter_prefix: str = DEFAULT_PARAMETER_PREFIX,
        bootstrap_qualifier: str = DEFAULT_BOOTSTRAP_QUALIFIER,
        install_commands: Sequence[str] = ("make install",),
        deploy_command: str = "npx cdk deploy --require-approval never --progress events {selector}",
        cdk_json: str = "cdk.json",
        context_key: str = "environments",
        initial_models: Mapping[str, str] | None = None,
        artifact_bucket: s3.IBucket | None = None,
        notification_topic: sns.ITopic | None = None,
        pipeline_name: str | None = None,
        python_version: str = "3.12",
        build_image: codebuild.IBuildImage = codebuild.LinuxBuildImage.STANDARD_7_0,
        step_install_commands: Sequence[str] = STEP_INSTALL_COMMANDS,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
    ) -> None:
        """Define the pipeline, its trigger and the records.

        Args:
            scope: The parent construct; its stack needs an explicit account and region.
            id: The construct id.
            source: The repository; pushes do not start this pipeline. A connection is cloned with
                its history, so a step can check out the revision an environment runs.
            model_package_group_name: The registry group whose approvals start the pipeline.
            registry_environment: The environment that holds the group; its :class:`DeliveryAccess`
                role must allow registry reads (``allow_registry_read``).
            registry_account: That environment's account; events from another account than the
                tooling account must be forwarded (``DeliveryAccess.forward_model_approvals``).
            registry_region: That environment's region.
            targets: The environments, in order.
            access_role_prefix: As for :class:`PlatformDeliveryPipeline`. Default: - ``cdk-mlops``.
            parameter_prefix: SSM path of the records. Default: - ``/cdk-mlops/delivery``.
            bootstrap_qualifier: Of the target accounts' CDK bootstrap roles. Default: - ``hnb659fds``.
            install_commands: Run before the deploy command. Default: - ``make install``.
            deploy_command: ``{selector}`` is replaced with the target's ``stack_selector``.
                Default: - ``npx cdk deploy --require-approval never --progress events {selector}``.
            cdk_json: The file whose ``context.<context_key>.<env>.model_package_arn`` the deploy step
                sets. Default: - ``cdk.json``.
            context_key: Default: - ``environments``.
            initial_models: Environment name → the initial value of its record
                (:func:`cdk_mlops.delivery_steps.model_record`). Default: - ``none`` (no model deployed
                by this pipeline yet).
            artifact_bucket: A bucket encrypted with a customer-managed key. Default: - a new one.
            notification_topic: Default: - a new KMS-encrypted topic.
            pipeline_name: Default: - generated.
            python_version: CodeBuild's Python runtime. Default: - 3.12.
            build_image: Default: - ``aws/codebuild/standard:7.0``.
            step_install_commands: As for :class:`PlatformDeliveryPipeline`.
            removal_policy: For the buckets, keys and records. Default: - RETAIN.
            vpc: A VPC of the tooling account that every build (Select, Deploy, Test) runs in; as
                for :class:`PlatformDeliveryPipeline`. Default: - the builds run outside any VPC.
            vpc_subnets: The subnets of ``vpc`` the builds run in (needs ``vpc``). Default: - the VPC's
                private subnets.
            security_groups: The builds' security groups (needs ``vpc``); pass the platform
                pipeline's ``security_groups`` to share its group. Default: - one new group with no
                inbound rule and all outbound traffic allowed.

        Raises:
            ConfigurationError: listing every problem, before anything is defined.
        """
        super().__init__(scope, id)
        tooling = Stack.of(self)
        problems = _tooling_problems(self)
        problems += source.problems(None if problems else tooling.region)
        problems += _target_problems("targets", targets)
        problems += _common_problems(access_role_prefix, parameter_prefix)
        problems += _storage_problems(artifact_bucket)
        problems += _network_problems(vpc, vpc_subnets, security_groups)
        if not Token.is_unresolved(model_package_group_name) and not _GROUP_NAME.match(model_package_group_name):
            problems.append(f"model_package_group_name {model_package_group_name!r} is not a model package group name")
        if not ACCOUNT_ID.match(registry_account):
            problems.append(f"registry_account {registry_account!r} is not a 12-digit AWS account id")
        if "{selector}" not in deploy_command:
            problems.append(f"deploy_command {deploy_command!r} must contain {{selector}}")
        for target in targets:
            if not target.stack_selector.strip():
                problems.append(f"targets[{target.name!r}].stack_selector is empty")
        if problems:
            raise ConfigurationError(self, problems)

        storage = _PipelineStorage(
            self,
            "Storage",
            artifact_bucket=artifact_bucket,
            notification_topic=notification_topic,
            removal_policy=removal_policy,
        )
        self.artifact_bucket = storage.artifact_bucket
        self.artifact_key = storage.artifact_key
        self.access_log_bucket = storage.access_log_bucket
        self.topic = storage.topic
        self._source = source
        self._python = python_version
        self._install = tuple(step_install_commands)
        self._build_image = build_image
        self.vpc = vpc
        self._subnets = vpc_subnets
        self.security_groups = _build_security_groups(self, vpc, security_groups)
        initial = dict(initial_models or {})

        self.pipeline = codepipeline.Pipeline(
            self,
            "Pipeline",
            pipeline_name=pipeline_name,
            pipeline_type=codepipeline.PipelineType.V2,
            artifact_bucket=self.artifact_bucket,
            # One promotion at a time, in the order the approvals came.
            execution_mode=codepipeline.ExecutionMode.QUEUED,
            variables=[
                codepipeline.Variable(
                    variable_name=REDELIVER,
                    default_value="false",
                    description="true: deliver the newest approved package even if the first environment runs it",
                )
            ],
        )
        checkout = codepipeline.Artifact("Source")
        self.pipeline.add_stage(stage_name="Source", actions=[self._source_action(checkout)])

        self.records: dict[str, ssm.StringParameter] = {}
        for target in targets:
            record = ssm.StringParameter(
                self,
                f"{_title(target.name)}Model",
                parameter_name=model_record_name(parameter_prefix, target.name),
                string_value=initial.get(target.name, MODEL_RECORD_NONE),
                description=f"The model package {target.name} runs, recorded by the model delivery pipeline",
            )
            record.apply_removal_policy(removal_policy)
            self.records[target.name] = record

        first = targets[0]
        registry_role = _role_arn(registry_account, access_role_name(access_role_prefix, registry_environment))
        self.select_role = iam.Role(
            self,
            "SelectRole",
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
            description="Selects the newest approved model package of the registry",
        )
        self.select_role.add_to_policy(iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[registry_role]))
        self.records[first.name].grant_read(self.select_role)
        select_command = " ".join(
            [
                "python3 -m cdk_mlops.delivery_steps select-model",
                f"--group {model_package_group_name} --region {registry_region} --role-arn {registry_role}",
                f"--environment {first.name} --record {self.records[first.name].parameter_name}",
                f'--redeliver "${REDELIVER}"',
                "> model.env && . ./model.env",
            ]
        )
        select = self._project(
            "Select",
            self.select_role,
            _build_spec(
                python_version=python_version,
                install=self._install,
                build=[select_command],
                exported=[*(key.upper() for key in MODEL_SETTINGS), DELIVER],
            ),
        )
        self.pipeline.add_stage(
            stage_name="Select",
            actions=[
                actions.CodeBuildAction(
                    action_name="Select",
                    project=select,
                    input=checkout,
                    variables_namespace=_MODEL_NAMESPACE,
                    environment_variables={
                        REDELIVER: codebuild.BuildEnvironmentVariable(value=f"#{{variables.{REDELIVER}}}")
                    },
                )
            ],
        )
        model_arn = f"#{{{_MODEL_NAMESPACE}.MODEL_PACKAGE_ARN}}"

        self.deploy_roles: dict[str, iam.Role] = {}
        for target in targets:
            self._add_target(
                target,
                checkout,
                model_arn,
                prefix=parameter_prefix,
                role_prefix=access_role_prefix,
                qualifier=bootstrap_qualifier,
                install_commands=install_commands,
                deploy_command=deploy_command,
                cdk_json=cdk_json,
                context_key=context_key,
            )

        self.approval_rule = events.Rule(
            self,
            "Approved",
            description=f"{self.node.path}: a model package of {model_package_group_name} was approved",
            event_pattern=_approval_pattern(model_package_group_name, registry_account),
        )
        self.approval_rule.add_target(event_targets.CodePipeline(self.pipeline))
        if registry_account != tooling.account:
            # The registry account forwards its approvals (DeliveryAccess.forward_model_approvals).
            events.CfnEventBusPolicy(
                self,
                "RegistryEvents",
                statement_id=f"{model_package_group_name}-approvals"[:64],
                event_bus_name="default",
                statement=iam.PolicyStatement(
                    principals=[iam.AccountPrincipal(registry_account)],
                    actions=["events:PutEvents"],
                    resources=[tooling.format_arn(service="events", resource="event-bus", resource_name="default")],
                    conditions={"StringEquals": {"events:source": "aws.sagemaker"}},
                ).to_statement_json(),
            )
        self.pipeline.notify_on(
            "Notifications",
            self.topic,
            events=[
                codepipeline.PipelineNotificationEvents.PIPELINE_EXECUTION_FAILED,
                codepipeline.PipelineNotificationEvents.MANUAL_APPROVAL_NEEDED,
                codepipeline.PipelineNotificationEvents.PIPELINE_EXECUTION_SUCCEEDED,
            ],
        )
        self.node.add_validation(_RoleArnsAsSub(self.pipeline))
        depend_on_role_policy(self.pipeline, self.pipeline.role)
        self.node.add_validation(_UseConnectionActions(self))
        self.node.add_validation(
            _AcknowledgePipelineWildcards(self, [self.artifact_bucket], [self.artifact_key, self.topic.master_key])
        )

    def _source_action(self, output: codepipeline.Artifact) -> codepipeline.IAction:
        source = self._source
        if source.bucket is not None:
            return actions.S3SourceAction(
                action_name="Source",
                bucket=source.bucket,
                bucket_key=str(source.object_key),
                output=output,
                trigger=actions.S3Trigger.NONE,
                variables_namespace="Source",
            )
        owner, _, repo = str(source.repository).rpartition("/")
        return actions.CodeStarConnectionsSourceAction(
            action_name="Source",
            connection_arn=str(source.connection_arn),
            owner=owner,
            repo=repo,
            branch=str(source.branch),
            output=output,
            trigger_on_push=False,
            # The deploy step checks out the revision an environment runs: it needs the history.
            code_build_clone_output=True,
            variables_namespace="Source",
        )

    def _project(
        self, id: str, role: iam.IRole, spec: dict[str, Any], *, cache: bool = False
    ) -> codebuild.PipelineProject:
        return codebuild.PipelineProject(
            self,
            id,
            role=role,
            encryption_key=self.artifact_key,
            environment=codebuild.BuildEnvironment(
                build_image=self._build_image,
                compute_type=codebuild.ComputeType.MEDIUM if cache else codebuild.ComputeType.SMALL,
            ),
            build_spec=codebuild.BuildSpec.from_object(spec),
            cache=codebuild.Cache.bucket(self.artifact_bucket, prefix=f"cache/{id.lower()}") if cache else None,
            timeout=Duration.minutes(90 if cache else 15),
            vpc=self.vpc,
            subnet_selection=self._subnets,
            security_groups=self.security_groups or None,
        )

    def _add_target(
        self,
        target: ModelDeliveryTarget,
        checkout: codepipeline.Artifact,
        model_arn: str,
        *,
        prefix: str,
        role_prefix: str,
        qualifier: str,
        install_commands: Sequence[str],
        deploy_command: str,
        cdk_json: str,
        context_key: str,
    ) -> None:
        title = _title(target.name)
        role = iam.Role(
            self,
            f"{title}DeployRole",
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
            description=f"Deploys and tests models in {target.name}: CDK bootstrap roles there, its records",
        )
        bootstrap = [
            _role_arn(target.account, f"cdk-{qualifier}-{kind}-role-{target.account}-{target.region}")
            for kind in ("deploy", "file-publishing")
        ]
        access = _role_arn(target.account, access_role_name(role_prefix, target.name))
        role.add_to_policy(iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[*bootstrap, access]))
        self.records[target.name].grant_read(role)
        self.records[target.name].grant_write(role)
        revision = revision_record_name(prefix, target.name)
        role.add_to_policy(
            iam.PolicyStatement(actions=["ssm:GetParameter"], resources=[_parameter_arn(self, revision)])
        )
        source = self._source
        words = [
            "python3 -m cdk_mlops.delivery_steps deploy-model",
            f"--environment {target.name}",
            '--model-package-arn "$MODEL_PACKAGE_ARN"',
            *(f'--{key.replace("_", "-")} "${key.upper()}"' for key in MODEL_SETTINGS[1:]),
            f"--record {self.records[target.name].parameter_name}",
            f"--revision-record {revision}",
            f"--cdk-json {cdk_json}",
            f"--context-key {context_key}",
            *(f"--install {_shell_quote(c)}" for c in install_commands),
            f"--deploy {_shell_quote(deploy_command.format(selector=_shell_quote(target.stack_selector)))}",
        ]
        if source.bucket is not None:
            words += [f"--source-bucket {source.bucket.bucket_name}", f"--source-key {source.object_key}"]
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObjectVersion"], resources=[source.bucket.arn_for_objects(str(source.object_key))]
                )
            )
        else:
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=use_connection_actions(str(source.connection_arn)), resources=[str(source.connection_arn)]
                )
            )
        deploy = self._project(
            f"{title}Deploy",
            role,
            _build_spec(python_version=self._python, install=self._install, build=[" ".join(words)], cache=True),
            cache=True,
        )
        # Every model setting Select exported (MODEL_PACKAGE_ARN, ...), passed on to the deployment.
        variables = {
            key.upper(): codebuild.BuildEnvironmentVariable(value=f"#{{{_MODEL_NAMESPACE}.{key.upper()}}}")
            for key in MODEL_SETTINGS
        }
        stage_actions: list[codepipeline.IAction] = []
        if target.manual_approval:
            stage_actions.append(
                actions.ManualApprovalAction(
                    action_name="Approve",
                    run_order=1,
                    notification_topic=self.topic,
                    additional_information=f"Deploy {model_arn} to {target.name} ({target.account}/{target.region})?",
                )
            )
        stage_actions.append(
            actions.CodeBuildAction(
                action_name="Deploy",
                project=deploy,
                input=checkout,
                environment_variables=variables,
                run_order=2,
            )
        )
        test = target.endpoint_test
        if test is not None:
            command = " ".join(
                [
                    "python3 -m cdk_mlops.delivery_steps endpoint-test",
                    f"--environment {target.name} --region {target.region} --role-arn {access}",
                    f"--endpoint {test.endpoint_name}",
                    f"--bucket-stack {test.data_stack_name} --bucket-logical-id {test.data_bucket_logical_id}",
                    f"--key {test.sample_key} --content-type {test.content_type}",
                    f"--invocations {test.invocations} --max-latency-ms {int(test.max_latency.to_milliseconds())}",
                ]
            )
            project = self._project(
                f"{title}Test",
                role,
                _build_spec(python_version=self._python, install=self._install, build=[command]),
            )
            stage_actions.append(
                actions.CodeBuildAction(action_name="TestEndpoint", project=project, input=checkout, run_order=3)
            )
        self.pipeline.add_stage(stage_name=title, actions=stage_actions, before_entry=_only_when_delivering())
        self.deploy_roles[target.name] = role


def _shell_quote(text: str) -> str:
    """Single-quote ``text`` for a POSIX shell."""
    return "'" + text.replace("'", "'\"'\"'") + "'"
