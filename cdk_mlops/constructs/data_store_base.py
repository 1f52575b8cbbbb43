"""The data store's interface, and what every data store shares: key layout, URIs, grants, events, metrics.

:class:`IDataStore` is what the other constructs take (``TrainingPipeline``, ``RetrainTrigger``,
``ModelEndpoint``, ``ModelMonitor``): the members they use, and no more. Two classes implement it,
both on :class:`DataStoreBase`: :class:`~cdk_mlops.constructs.data_store.VersionedDataStore`, which
creates the bucket and its key, and the store that
:meth:`~cdk_mlops.constructs.data_store.VersionedDataStore.from_bucket` puts in front of an existing
bucket and key.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast, runtime_checkable

import jsii
from aws_cdk import Annotations, Duration, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct, IConstruct, IValidation, Node

from cdk_mlops.constructs.common import ACCOUNT_ID, acknowledge, iam5_findings, metric_props, nag_resource
from cdk_mlops.constructs.props import describe_protocol
from cdk_mlops.datasets import (
    ARTIFACTS_PREFIX,
    CAPTURE_PREFIX,
    DATASETS_PREFIX,
    MANIFESTS_PREFIX,
    MONITORING_PREFIX,
    dataset_name_problems,
)
from cdk_mlops.errors import ConfigurationError

__all__ = [
    "DataStoreBase",
    "IDataStore",
    "bucket_name_problems",
    "concrete_environment",
    "declared_dataset_problems",
    "environment_problems",
]

# Object actions of grant_write: create and replace objects, and delete them the versioned way (a
# delete marker; earlier versions stay). Deleting a version for good (s3:DeleteObjectVersion), changing
# Object Lock retention or legal holds, and ACLs are left out: they would let a data producer destroy the
# history that manifests depend on. aws-cdk-lib's default write grant (s3:DeleteObject*, s3:PutObject*
# or s3:PutObjectRetention and s3:PutObjectLegalHold) includes them.
_WRITE_ACTIONS = (
    "s3:PutObject",
    "s3:PutObjectTagging",
    "s3:AbortMultipartUpload",
    "s3:DeleteObject",
    "s3:DeleteObjectTagging",
)
# Manifests are only ever added: no delete, no tagging.
_MANIFEST_WRITE_ACTIONS = ("s3:PutObject", "s3:AbortMultipartUpload")
# KMS action families the S3 grants add for writers, when the bucket has a key.
_KMS_WRITE_WILDCARDS = ("kms:GenerateDataKey*", "kms:ReEncrypt*")


@runtime_checkable
class IDataStore(Protocol):
    """What the constructs need of a data store: its bucket and key, its key layout and its grants.

    :class:`~cdk_mlops.constructs.data_store.VersionedDataStore` implements it, and so does the
    store :meth:`VersionedDataStore.from_bucket <cdk_mlops.constructs.data_store.VersionedDataStore.from_bucket>`
    returns for an existing bucket. Every construct that takes a ``data_store`` takes any object
    with these members; a plain ``s3.IBucket`` has none of the layout or grants, and is refused
    with a :class:`~cdk_mlops.errors.ConfigurationError`.
    """

    @property
    def node(self) -> Node:
        """The construct node; its path names the store in error messages."""
        ...

    @property
    def bucket(self) -> s3.IBucket:
        """The data bucket."""
        ...

    @property
    def encryption_key(self) -> kms.IKey:
        """The KMS key that encrypts the data bucket."""
        ...

    @property
    def datasets(self) -> tuple[str, ...]:
        """The declared dataset names; empty when the store accepts any name."""
        ...

    @property
    def artifacts_prefix(self) -> str:
        """Key prefix of training output and model artifacts, ending in ``/``."""
        ...

    @property
    def capture_prefix(self) -> str:
        """Key prefix of endpoint data capture, ending in ``/``."""
        ...

    @property
    def monitoring_prefix(self) -> str:
        """Key prefix of Model Monitor baselines and reports, ending in ``/``."""
        ...

    def undeclared_problems(self, argument: str, names: Sequence[str]) -> list[str]:
        """Why ``names`` are not datasets of this store (empty when they all are)."""
        ...

    def dataset_prefix(self, name: str) -> str:
        """Key prefix of a dataset's objects: ``datasets/<name>/``."""
        ...

    def manifest_prefix(self, name: str) -> str:
        """Key prefix of a dataset's manifests: ``manifests/<name>/``."""
        ...

    def s3_uri(self, key: str) -> str:
        """``s3://<bucket>/<key>``."""
        ...

    def grant_read(
        self, grantee: iam.IGrantable, *, dataset: str | None = None, prefix: str | None = None
    ) -> iam.Grant:
        """Let ``grantee`` list the bucket and read (and decrypt) objects."""
        ...

    def grant_write(
        self, grantee: iam.IGrantable, *, dataset: str | None = None, prefix: str | None = None
    ) -> iam.Grant:
        """Let ``grantee`` put, tag and delete (versioned) objects."""
        ...

    def grant_read_write(
        self, grantee: iam.IGrantable, *, dataset: str | None = None, prefix: str | None = None
    ) -> iam.Grant:
        """``grant_read`` and ``grant_write`` together."""
        ...

    def grant_write_manifests(self, grantee: iam.IGrantable, dataset: str | None = None) -> iam.Grant:
        """Let ``grantee`` put new dataset manifests."""
        ...

    def grant_accounts_read(self, accounts: Sequence[str], *, prefix: str) -> None:
        """Let other AWS accounts read (and decrypt) the objects under ``prefix``."""
        ...


# A data store where one does not fit is named, in the error, as the class most users pass.

describe_protocol(
    IDataStore,
    shown_as="VersionedDataStore",
    fix="an existing bucket goes behind the data store's interface with "
    "VersionedDataStore.from_bucket(scope, id, bucket=..., encryption_key=..., datasets=[...])",
)


@dataclass(frozen=True)
class _GrantRecord:
    principal: IConstruct
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    reason: str


@jsii.implements(IValidation)
class _AcknowledgeResolvedGrants:
    """Re-acknowledges grant wildcards once cross-stack references are resolved.

    A grantee in another stack sees the bucket ARN through ``Fn::ImportValue``,
    which exists only after CDK prepares the app; node validations run after
    that, so the finding ids computed here match what cdk-nag reports.
    """

    def __init__(self, store: DataStoreBase) -> None:
        self._store = store

    def validate(self) -> list[str]:
        for record in self._store._grant_records:
            self._store._acknowledge_record(record)
        return []


class DataStoreBase(Construct):
    """The methods every data store shares; a subclass sets ``bucket``, ``encryption_key`` and ``datasets``.

    Not meant to be used on its own: build a
    :class:`~cdk_mlops.constructs.data_store.VersionedDataStore`, or import a bucket with
    :meth:`~cdk_mlops.constructs.data_store.VersionedDataStore.from_bucket`.

    Attributes:
        bucket: The data bucket.
        encryption_key: The KMS key that encrypts the data bucket.
        datasets: The declared dataset names.
    """

    bucket: s3.IBucket
    encryption_key: kms.IKey
    datasets: tuple[str, ...]

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        artifacts_prefix: str = ARTIFACTS_PREFIX,
        capture_prefix: str = CAPTURE_PREFIX,
        monitoring_prefix: str = MONITORING_PREFIX,
    ) -> None:
        """Define the construct; the subclass validates its arguments and sets the bucket, key and datasets.

        Args:
            scope: The parent construct.
            id: The construct id.
            artifacts_prefix: Key prefix of artifacts. Default: - ``artifacts/``.
            capture_prefix: Key prefix of data capture. Default: - ``capture/``.
            monitoring_prefix: Key prefix of Model Monitor output. Default: - ``monitoring/``.
        """
        super().__init__(scope, id)
        self._artifacts_prefix = artifacts_prefix
        self._capture_prefix = capture_prefix
        self._monitoring_prefix = monitoring_prefix
        self._grant_records: list[_GrantRecord] = []
        self._account_grants: list[str] = []
        self.node.add_validation(_AcknowledgeResolvedGrants(self))

    # ------------------------------------------------------------------ prefixes and URIs

    @property
    def artifacts_prefix(self) -> str:
        """Key prefix for training output and model artifacts (``artifacts/`` unless imported with another)."""
        return self._artifacts_prefix

    @property
    def capture_prefix(self) -> str:
        """Key prefix for endpoint data capture (``capture/`` unless imported with another)."""
        return self._capture_prefix

    @property
    def monitoring_prefix(self) -> str:
        """Key prefix for Model Monitor baselines and reports (``monitoring/`` unless imported with another)."""
        return self._monitoring_prefix

    def undeclared_problems(self, argument: str, names: Sequence[str]) -> list[str]:
        """Why ``names`` are not datasets of this store: any it does not declare, if it declares any.

        A store built without ``datasets=`` declares none and accepts every name; tokens are
        not compared. Constructs that read datasets call this, so that a misspelt name fails
        synth instead of training on an empty prefix.

        Args:
            argument: The caller's argument, named in each problem (e.g. ``dataset``).
            names: The dataset names given to it.
        """
        if not self.datasets:
            return []
        declared = ", ".join(repr(d) for d in self.datasets)
        return [
            f"{argument}: {name!r} is not a dataset of the data store {self.node.path} (it declares {declared}); "
            "fix the name, or add it to the store's datasets="
            for name in names
            if not Token.is_unresolved(name) and name not in self.datasets
        ]

    def dataset_prefix(self, name: str) -> str:
        """Key prefix of a dataset's objects: ``datasets/<name>/``.

        Raises:
            ConfigurationError: if ``name`` is not a valid dataset name (tokens are accepted).
        """
        return f"{DATASETS_PREFIX}{self._checked_name(name)}/"

    def manifest_prefix(self, name: str) -> str:
        """Key prefix of a dataset's manifests: ``manifests/<name>/``.

        Raises:
            ConfigurationError: if ``name`` is not a valid dataset name (tokens are accepted).
        """
        return f"{MANIFESTS_PREFIX}{self._checked_name(name)}/"

    def s3_uri(self, key: str) -> str:
        """``s3://<bucket>/<key>`` for a key or prefix in the data bucket (a token until deploy)."""
        return self.bucket.s3_url_for_object(key)

    def dataset_uri(self, name: str) -> str:
        """``s3://<bucket>/datasets/<name>/``: where a dataset's files are uploaded."""
        return self.s3_uri(self.dataset_prefix(name))

    def manifest_uri_prefix(self, name: str) -> str:
        """``s3://<bucket>/manifests/<name>/``: where a dataset's manifests are written."""
        return self.s3_uri(self.manifest_prefix(name))

    # ------------------------------------------------------------------ grants

    def grant_read(
        self, grantee: iam.IGrantable, *, dataset: str | None = None, prefix: str | None = None
    ) -> iam.Grant:
        """Let ``grantee`` list the bucket and read (and decrypt) objects.

        Args:
            grantee: The principal to grant to.
            dataset: Limit object reads to ``datasets/<dataset>/``. Default: - every object.
            prefix: Limit object reads to this key prefix (e.g. ``artifacts/``);
                not together with ``dataset``. Default: - every object.

        Listing (``s3:List*``) is granted on the bucket, so key names are
        visible bucket-wide; object content is limited to the prefix.
        """
        pattern = self._objects_pattern(dataset, prefix, "grant_read")
        self._cross_environment(grantee, "grant_read")
        grant = self.bucket.grant_read(grantee, pattern)
        self._acknowledge_grant(grantee, grant, "grant_read", pattern, writes=False)
        return grant

    def grant_write(
        self, grantee: iam.IGrantable, *, dataset: str | None = None, prefix: str | None = None
    ) -> iam.Grant:
        """Let ``grantee`` put, tag and delete objects (and encrypt with the store's key).

        A delete only adds a delete marker: the grantee cannot remove object
        versions for good, nor change Object Lock retention or legal holds, so
        existing manifests stay restorable.

        Args:
            grantee: The principal to grant to.
            dataset: Limit writes to ``datasets/<dataset>/``. Default: - every object.
            prefix: Limit writes to this key prefix; not together with ``dataset``.
                Default: - every object.
        """
        pattern = self._objects_pattern(dataset, prefix, "grant_write")
        self._cross_environment(grantee, "grant_write")
        grant = self.bucket.grant_write(grantee, pattern, list(_WRITE_ACTIONS))
        self._acknowledge_grant(grantee, grant, "grant_write", pattern, writes=True)
        return grant

    def grant_read_write(
        self, grantee: iam.IGrantable, *, dataset: str | None = None, prefix: str | None = None
    ) -> iam.Grant:
        """:meth:`grant_read` and :meth:`grant_write` together, on the same objects.

        Args:
            grantee: The principal to grant to.
            dataset: Limit object access to ``datasets/<dataset>/``. Default: - every object.
            prefix: Limit object access to this key prefix; not together with
                ``dataset``. Default: - every object.
        """
        pattern = self._objects_pattern(dataset, prefix, "grant_read_write")
        self._cross_environment(grantee, "grant_read_write")
        grant = self.bucket.grant_read(grantee, pattern).combine(
            self.bucket.grant_write(grantee, pattern, list(_WRITE_ACTIONS))
        )
        self._acknowledge_grant(grantee, grant, "grant_read_write", pattern, writes=True)
        return grant

    def grant_write_manifests(self, grantee: iam.IGrantable, dataset: str | None = None) -> iam.Grant:
        """Let ``grantee`` put new dataset manifests (no read, no delete, no other prefix).

        Args:
            grantee: The principal to grant to, e.g. the retrain trigger.
            dataset: Limit to ``manifests/<dataset>/``. Default: - every dataset's manifests.
        """
        prefix = MANIFESTS_PREFIX if dataset is None else self.manifest_prefix(dataset)
        self._cross_environment(grantee, "grant_write_manifests")
        pattern = f"{prefix}*"
        grant = self.bucket.grant_write(grantee, pattern, list(_MANIFEST_WRITE_ACTIONS))
        self._acknowledge_grant(grantee, grant, "grant_write_manifests", pattern, writes=True)
        return grant

    def grant_accounts_read(self, accounts: Sequence[str], *, prefix: str) -> None:
        """Let other AWS accounts read (and decrypt) the objects under ``prefix``.

        For promotion across accounts: staging and prod endpoints serve models trained here, so
        their roles must read the model artifacts and baselines under ``artifacts/``. Adds a
        bucket policy statement (``s3:GetObject``, ``s3:GetObjectVersion`` on the prefix) and a
        key policy statement (``kms:Decrypt`` through S3 only); an imported key's policy cannot be
        changed here, nor an imported bucket's, so those cases get a synth warning naming what the
        policy needs. Each account
        still decides, in its roles' IAM policies, which of its principals may use the access.

        Args:
            accounts: 12-digit account ids; an empty sequence grants nothing.
            prefix: A key prefix ending in ``/``, e.g. ``artifacts/``.

        Raises:
            ConfigurationError: for an account that is not 12 digits or an invalid prefix.
        """
        pattern = self._objects_pattern(None, prefix, "grant_accounts_read")
        bad = [a for a in accounts if not Token.is_unresolved(a) and not ACCOUNT_ID.match(a)]
        if bad:
            raise ConfigurationError(
                self, [f"grant_accounts_read: {a!r} is not a 12-digit AWS account id" for a in bad]
            )
        if not accounts:
            return
        principals: list[iam.IPrincipal] = [iam.AccountPrincipal(a) for a in dict.fromkeys(accounts)]
        bucket_added = self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"ReadFromOtherAccounts{len(self._account_grants)}",
                principals=principals,
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[self.bucket.arn_for_objects(pattern)],
            )
        )
        added = self.encryption_key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=principals,
                actions=["kms:Decrypt"],
                resources=["*"],
                # Only S3 may decrypt for them, i.e. reading objects of this bucket they may read.
                conditions={
                    "StringEquals": {"kms:ViaService": f"s3.{Stack.of(self).region}.{Stack.of(self).url_suffix}"}
                },
            )
        )
        self._account_grants.append(pattern)
        if not bucket_added.statement_added:
            Annotations.of(self).add_warning_v2(
                "cdk-mlops:data-store-imported-bucket",
                f"grant_accounts_read: the bucket was imported, so its policy is not changed here; allow "
                f"s3:GetObject and s3:GetObjectVersion on '{pattern}' for {', '.join(accounts)} in that bucket's "
                "policy",
            )
        if not added.statement_added:
            Annotations.of(self).add_warning_v2(
                "cdk-mlops:data-store-imported-key",
                f"grant_accounts_read: the key was passed in, so its policy is not changed here; allow "
                f"kms:Decrypt via S3 for {', '.join(accounts)} in that key's policy",
            )

    # ------------------------------------------------------------------ events and metrics

    def dataset_changed_pattern(self, dataset: str, *, suffix: str | None = None) -> events.EventPattern:
        """EventBridge pattern for S3 "Object Created" events of one dataset in this bucket.

        Manifests and other prefixes never match, so a rule that snapshots the
        dataset does not trigger itself.

        Args:
            dataset: The dataset name.
            suffix: Only keys ending with this (e.g. ``.csv``), matched with an
                EventBridge wildcard pattern ``datasets/<dataset>/*<suffix>``.
                Default: - every key of the dataset, by prefix match.

        Raises:
            ConfigurationError: if ``dataset`` or ``suffix`` is invalid.
        """
        prefix = self.dataset_prefix(dataset)
        if suffix is None:
            key_match = events.Match.prefix(prefix)
        else:
            if not Token.is_unresolved(suffix) and (not suffix or "*" in suffix or "\\" in suffix):
                raise ConfigurationError(
                    self,
                    f"dataset_changed_pattern suffix {suffix!r} must be non-empty and contain no '*' or '\\'; "
                    "use a literal ending such as '.csv'",
                )
            key_match = events.Match.wildcard(f"{prefix}*{suffix}")
        return events.EventPattern(
            source=["aws.s3"],
            detail_type=["Object Created"],
            detail={"bucket": {"name": [self.bucket.bucket_name]}, "object": {"key": key_match}},
        )

    def metric_bucket_size_bytes(self, *, storage_type: str = "StandardStorage", **options: Any) -> cloudwatch.Metric:
        """Daily S3 storage metric ``BucketSizeBytes`` (every version counts).

        Args:
            storage_type: The S3 ``StorageType`` dimension; noncurrent versions
                that moved to Infrequent Access count under ``StandardIAStorage``.
                Default: - ``StandardStorage``.
            options: Any ``cloudwatch.MetricOptions`` (``period``, ``statistic``, ``label``, ...).
                Default: - Average over one day (S3 reports storage metrics daily).
        """
        return self._storage_metric("metric_bucket_size_bytes", "BucketSizeBytes", storage_type, options)

    def metric_number_of_objects(self, **options: Any) -> cloudwatch.Metric:
        """Daily S3 storage metric ``NumberOfObjects`` (every object version, all storage classes).

        Args:
            options: Any ``cloudwatch.MetricOptions`` (``period``, ``statistic``, ``label``, ...).
                Default: - Average over one day (S3 reports storage metrics daily).
        """
        return self._storage_metric("metric_number_of_objects", "NumberOfObjects", "AllStorageTypes", options)

    # ------------------------------------------------------------------ internals

    def _storage_metric(self, method: str, name: str, storage_type: str, options: dict[str, Any]) -> cloudwatch.Metric:
        props = metric_props(
            self,
            method,
            options,
            dimensions={"BucketName": self.bucket.bucket_name, "StorageType": storage_type},
            statistic="Average",
            period=Duration.days(1),
        )
        return cloudwatch.Metric(namespace="AWS/S3", metric_name=name, **props)

    def _checked_name(self, name: str) -> str:
        if Token.is_unresolved(name):
            return name
        problems = dataset_name_problems(name)
        if problems:
            raise ConfigurationError(self, problems)
        return name

    def _objects_pattern(self, dataset: str | None, prefix: str | None, method: str) -> str:
        if dataset is not None and prefix is not None:
            raise ConfigurationError(
                self, f"{method}: pass dataset ({dataset!r}) or prefix ({prefix!r}), not both; use one of them"
            )
        if dataset is not None:
            return f"{self.dataset_prefix(dataset)}*"
        if prefix is None:
            return "*"
        if not Token.is_unresolved(prefix) and (
            not prefix or prefix.startswith("/") or not prefix.endswith("/") or "*" in prefix
        ):
            raise ConfigurationError(
                self,
                f"{method}: prefix {prefix!r} must be a key prefix ending in '/' without '*' or a leading '/'; "
                f"use e.g. prefix={ARTIFACTS_PREFIX!r}",
            )
        return f"{prefix}*"

    def _cross_environment(self, grantee: iam.IGrantable, method: str) -> None:
        """Refuse, with the fix, a grant to a principal defined in a stack of another account or region.

        Such a grant cannot deploy: the bucket and key policies would name the principal (only
        known once its stack is deployed), while its own policy names the bucket and the key
        (only known once the store's stack is deployed), a dependency cycle; across regions,
        aws-cdk-lib would also have to carry the ARNs through its cross-region export functions.
        Principals imported by ARN (``iam.Role.from_role_arn``) are known names and pass.
        """
        principal = grantee.grant_principal
        if getattr(principal, "node", None) is None:
            return
        construct = cast(IConstruct, principal)
        here, there = Stack.of(self), Stack.of(construct)
        if there is here or construct.node.default_child is None:
            return
        ours, theirs = concrete_environment(here), concrete_environment(there)
        if ours is None or theirs is None or ours == theirs:
            return
        account = ours[0] != theirs[0]
        where = f"account {theirs[0]}" if account else f"region {theirs[1]}"
        store_where = f"account {ours[0]}" if account else f"region {ours[1]}"
        admit = (
            f"here, admit the account with store.grant_accounts_read([{theirs[0]!r}], prefix=...); " if account else ""
        )
        raise ConfigurationError(
            self,
            f"{method}: {construct.node.path} is defined in {where}, the store in {store_where}; a store cannot "
            "grant across environments by reference (each side's policies would wait for the other's). Give the "
            f"store a bucket_name; {admit}in the grantee's stack, grant by name: "
            "grant_model_source_read(role, bucket_name=..., model_package_arn=..., prefix=...) for model artifacts",
        )

    def _acknowledge_grant(
        self, grantee: iam.IGrantable, grant: iam.Grant, method: str, pattern: str, *, writes: bool
    ) -> None:
        principal = grantee.grant_principal
        if getattr(principal, "node", None) is None:
            return  # a principal that is not a construct gets a bucket-policy grant: no IAM policy to flag
        # An imported role of another account gets the statements on both sides and reports them as
        # resource statements only, although an IAM policy is attached to it too: look at both.
        statements = [*grant.principal_statements, *grant.resource_statements]
        actions = {a for statement in statements for a in statement.actions if "*" in a}
        if writes and self.bucket.encryption_key is not None:
            actions.update(_KMS_WRITE_WILDCARDS)
        resources = tuple(dict.fromkeys(r for statement in statements for r in statement.resources))
        reason = (
            f"{self.node.path}.{method}() uses the aws-cdk-lib S3 grant: its action wildcards "
            f"({', '.join(sorted(actions))}) are S3 and KMS action families for that access level, "
            f"and object access is limited to '{pattern}' in this one bucket (KMS to its key)"
        )
        record = _GrantRecord(
            principal=cast(IConstruct, principal), actions=tuple(sorted(actions)), resources=resources, reason=reason
        )
        self._grant_records.append(record)
        self._acknowledge_record(record)

    def _acknowledge_record(self, record: _GrantRecord) -> None:
        stack = Stack.of(record.principal)
        wildcard_resources = [flat for flat in (nag_resource(stack, r) for r in record.resources) if "*" in flat]
        acknowledge(record.principal, record.reason, *iam5_findings(record.actions, wildcard_resources))


# S3's naming rules for general purpose buckets: 3-63 characters of lower-case letters, digits,
# dots and hyphens, starting and ending with a letter or digit.
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
_IP_ADDRESS = re.compile(r"^\d{1,3}(\.\d{1,3}){3}\Z")
# Prefixes and suffixes S3 reserves for access points, Object Lambda, directory and table buckets.
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_name_problems(argument: str, name: object) -> list[str]:
    """Why ``name`` is not a valid S3 general purpose bucket name (empty when it is, is None or a token).

    Args:
        argument: The argument named in each problem (e.g. ``bucket_name``).
        name: The name to check.
    """
    if name is None or (isinstance(name, str) and Token.is_unresolved(name)):
        return []
    fix = "use 3-63 lower-case letters, digits, '-' and '.', starting and ending with a letter or digit"
    if not isinstance(name, str) or not _BUCKET_NAME.match(name):
        return [f"{argument} {name!r} is not an S3 bucket name; {fix}, e.g. 'acme-churn-data-dev'"]
    problems: list[str] = []
    if ".." in name or ".-" in name or "-." in name:
        problems.append(f"{argument} {name!r} has '..', '.-' or '-.'; S3 refuses them, {fix}")
    if _IP_ADDRESS.match(name):
        problems.append(f"{argument} {name!r} looks like an IP address, which S3 refuses; {fix}")
    reserved = [p for p in _RESERVED_PREFIXES if name.startswith(p)] + [
        s for s in _RESERVED_SUFFIXES if name.endswith(s)
    ]
    if reserved:
        problems.append(f"{argument} {name!r} uses {reserved[0]!r}, which S3 reserves; choose another name")
    return problems


def declared_dataset_problems(names: Sequence[str]) -> list[str]:
    """Why the declared dataset ``names`` are invalid: bad names and duplicates (tokens are not checked)."""
    problems: list[str] = []
    seen: set[str] = set()
    for index, name in enumerate(names):
        if Token.is_unresolved(name):
            continue
        problems.extend(f"datasets[{index}]: {problem}" for problem in dataset_name_problems(name))
        if isinstance(name, str) and name in seen:
            problems.append(f"datasets[{index}]: {name!r} is declared twice; remove the duplicate")
        if isinstance(name, str):
            seen.add(name)
    return problems


def concrete_environment(stack: Stack) -> tuple[str, str] | None:
    """``(account, region)`` of a stack, or None when either is a token (an environment-agnostic stack)."""
    account, region = stack.account, stack.region
    if Token.is_unresolved(account) or Token.is_unresolved(region):
        return None
    return account, region


def environment_problems(scope: IConstruct, data_store: IDataStore, *, construct: str) -> list[str]:
    """Why ``data_store`` cannot serve ``scope``: it is in another account or region (empty when it can).

    SageMaker reads model artifacts and writes data capture and monitoring reports in its own
    region, and a store cannot grant the roles of another account by reference. Constructs that
    run SageMaker jobs or endpoints on a store call this. Environment-agnostic stacks are not
    compared.

    Args:
        scope: The construct that uses the store.
        data_store: The store.
        construct: The construct's kind, named in the problem (e.g. ``ModelEndpoint``).
    """
    here = concrete_environment(Stack.of(scope))
    there = concrete_environment(Stack.of(cast(IConstruct, data_store)))
    if here is None or there is None or here == there:
        return []
    own_store = (
        "give this environment its own store (a VersionedDataStore in this stack's environment, or "
        "VersionedDataStore.from_bucket for an existing bucket there)"
    )
    if here[1] != there[1]:
        return [
            f"data_store {data_store.node.path} is in region {there[1]}, this {construct} in {here[1]}; SageMaker "
            f"reads model artifacts and writes data capture and reports only in its own region. {own_store[0].upper()}"
            f"{own_store[1:]}, and copy a model trained elsewhere into a bucket of {here[1]}"
        ]
    return [
        f"data_store {data_store.node.path} is in account {there[0]}, this {construct} in {here[0]}; a store cannot "
        "grant the roles of another account by reference (each side's policies would wait for the other's). "
        f"{own_store[0].upper()}{own_store[1:]}, and read a model trained in {there[0]} by name: "
        "grant_model_source_read(role, bucket_name=..., model_package_arn=...) here, and "
        f"store.grant_accounts_read([{here[0]!r}], prefix='artifacts/') on the training store, which needs a "
        "bucket_name"
    ]
