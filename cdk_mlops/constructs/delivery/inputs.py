"""What the delivery pipelines are given: the repository, and the environments they deliver to.

:class:`PipelineSource` names the repository (a CodeConnections connection or an S3 object);
:class:`DeliveryTarget` and :class:`ModelDeliveryTarget` name the environments, in order, and
:class:`EndpointTest` the check the model pipeline runs against an endpoint. Each carries its own
checks (``problems``), so a pipeline can report every mistake at once, before it defines anything.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import aws_cdk as cdk
from aws_cdk import Duration, Stack, Token, pipelines
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_s3 as s3

from cdk_mlops.constructs.common import ACCOUNT_ID
from cdk_mlops.constructs.data_store import VersionedDataStore

__all__ = [
    "DEFAULT_SAMPLE_KEY",
    "DeliveryTarget",
    "EndpointTest",
    "ModelDeliveryTarget",
    "PipelineSource",
    "use_connection_actions",
]

#: The data store object the endpoint test sends: CSV rows of features, without the label.
DEFAULT_SAMPLE_KEY: Final = "artifacts/delivery/sample-payload.csv"

_CONNECTION_ARN = re.compile(
    r"^arn:aws(?:-[a-z]+)*:(?P<service>codeconnections|codestar-connections):(?P<region>[a-z0-9-]+):[0-9]{12}:"
    r"connection/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z"
)
#: The services a connection ARN may name. AWS CodeStar Connections was renamed AWS CodeConnections,
#: and IAM evaluates the action whose service prefix is the resource ARN's: a
#: ``arn:aws:codeconnections:...`` connection is used through ``codeconnections:UseConnection`` only.
_CONNECTION_SERVICES: Final = ("codeconnections", "codestar-connections")
_USE_CONNECTION: Final = "UseConnection"
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+\Z")
_BRANCH = re.compile(r"^[^\s~^:?*\[\\]+\Z")
_ENV_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*\Z")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+\Z")


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
