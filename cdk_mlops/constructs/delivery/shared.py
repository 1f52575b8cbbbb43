"""What both delivery pipelines build the same way: storage, build settings, network placement, checks.

* :class:`_PipelineStorage`: the artifact bucket (KMS, access logs, TLS only), its key, and the
  notification topic, unless the caller brings its own.
* :func:`_build_spec`: the CodeBuild build spec of every step, and :func:`_install_commands`,
  what a step installs before it runs :mod:`cdk_mlops.delivery_steps` (see
  :mod:`~cdk_mlops.constructs.delivery.install`).
* :func:`_build_security_groups`: where the builds run when given a VPC (in the tooling account;
  they reach an environment only through its access role, never through its VPC).
* The checks both constructs run on their common arguments, and the ARNs they build by name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from aws_cdk import Aws, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_mlops.constructs.common import access_log_bucket, kms_bucket_settings
from cdk_mlops.constructs.delivery.install import default_step_install_commands

__all__ = ["DEFAULT_PARAMETER_PREFIX"]

#: Where the pipelines record what they deployed (SSM parameters in the tooling account).
DEFAULT_PARAMETER_PREFIX: Final = "/cdk-mlops/delivery"

# CodeBuild caches pip's and npm's download caches, and the mypy and cfn-lint results `make test`
# keeps (CDK_MLOPS_CACHE_DIR's default, keyed so that they never go stale); not `.venv` or
# `node_modules`: a virtualenv holds absolute paths, and CodeBuild checks the source out to a new
# directory for every build. Not uv's cache either: it holds the unpacked wheels (about 1.6 GB for
# `make install`) to move through S3 on every build, for downloads that took uv 18 s, install included.
_CACHE_PATHS: Final = ("/root/.cache/pip/**/*", "/root/.npm/**/*", "/root/.cache/cdk-mlops/**/*")

_PARAMETER_PREFIX = re.compile(r"^(/[A-Za-z0-9_.-]+)+\Z")
_ROLE_PREFIX = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,40}\Z")


def _role_arn(account: str, name: str) -> str:
    return f"arn:{Aws.PARTITION}:iam::{account}:role/{name}"


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
                **kms_bucket_settings(
                    self.artifact_key, access_logs=self.access_log_bucket, access_logs_prefix="artifacts/"
                ),
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


def _install_commands(given: Sequence[str] | None, problems: list[str]) -> tuple[str, ...]:
    """The steps' install commands: ``given``, or the default (a problem is appended when there is none)."""
    if given is not None:
        if isinstance(given, str) or not all(isinstance(c, str) and c.strip() for c in given):
            problems.append(f"step_install_commands {given!r} is not a list of non-empty shell commands")
        return tuple(given)
    commands = default_step_install_commands()
    if isinstance(commands, str):
        problems.append(commands)
        return ()
    return commands


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
