"""VersionedDataStore: a versioned, KMS-encrypted S3 store for datasets and model artifacts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import jsii
from aws_cdk import Annotations, CfnResource, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct, IConstruct, IValidation

from cdk_mlops.constructs.common import (
    ACCOUNT_ID,
    GUARDRAILS,
    access_log_bucket,
    acknowledge,
    iam5_findings,
    metric_props,
    nag_resource,
)
from cdk_mlops.constructs.props import checked_props
from cdk_mlops.datasets import (
    ARTIFACTS_PREFIX,
    CAPTURE_PREFIX,
    DATASETS_PREFIX,
    MANIFESTS_PREFIX,
    MONITORING_PREFIX,
    dataset_name_problems,
)
from cdk_mlops.errors import ConfigurationError

__all__ = ["ObjectLockSettings", "VersionedDataStore"]

#: Stable id of the warning emitted for ``removal_policy=DESTROY``; acknowledge it with
#: ``Annotations.of(store).acknowledge_warning(DESTROY_WARNING_ID, reason)``.
DESTROY_WARNING_ID = "cdk-mlops:data-store-destroy"

# S3 moves objects to STANDARD_IA only after they have been noncurrent for 30 days.
_MIN_IA_TRANSITION_DAYS = 30
# S3 keeps at most 100 newer noncurrent versions per lifecycle action (NewerNoncurrentVersions).
_MAX_RETAINED_VERSIONS = 100
# Object Lock retention limit enforced by aws-cdk-lib (less than 100 years).
_MAX_RETENTION_DAYS = 36500
_INCOMPLETE_UPLOAD_DAYS = 7
_DEFAULT_TRANSITION = Duration.days(30)
_DEFAULT_EXPIRATION = Duration.days(90)

# With this feature flag, S3 server access logs are delivered through a bucket policy for the
# logging.s3.amazonaws.com principal instead of the legacy LogDeliveryWrite ACL, which ACL-free
# (BucketOwnerEnforced) buckets cannot use. It is set on this construct only, so the result does
# not depend on the flags of the app it is used in.
_LOG_DELIVERY_BY_BUCKET_POLICY = "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"

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
_AUTO_DELETE_PROVIDER_ID = "Custom::S3AutoDeleteObjectsCustomResourceProvider"
# Id of the child aws-cdk-lib adds to a bucket for its first add_event_notification().
_NOTIFICATIONS_ID = "Notifications"


@dataclass(frozen=True, kw_only=True)
class ObjectLockSettings:
    """S3 Object Lock for a data store: object versions cannot be deleted or overwritten for a time.

    Object Lock can only be turned on when the bucket is created; adding it to
    an existing store replaces the bucket (a new, empty bucket).

    The settings are checked by :class:`VersionedDataStore` rather than in
    ``__post_init__``, so their problems are reported together with the
    store's other problems and carry the store's construct path.

    Attributes:
        default_retention_days: Days each new object version is protected.
        mode: GOVERNANCE lets principals with ``s3:BypassGovernanceRetention``
            delete early; COMPLIANCE lets no one, not even the root user.
            Default: - GOVERNANCE.
    """

    default_retention_days: int | float
    mode: s3.ObjectLockMode = s3.ObjectLockMode.GOVERNANCE

    def problems(self) -> list[str]:
        """Every problem with these settings (empty when valid); tokens are not checked."""
        days = self.default_retention_days
        if Token.is_unresolved(days):
            return []
        if isinstance(days, bool) or not isinstance(days, int | float) or days != int(days):
            return [
                f"object_lock.default_retention_days must be a whole number of days, got {days!r}; "
                "use e.g. default_retention_days=30"
            ]
        if not 1 <= days <= _MAX_RETENTION_DAYS:
            return [
                f"object_lock.default_retention_days must be from 1 to {_MAX_RETENTION_DAYS}, got {days:g}; "
                "use e.g. default_retention_days=30, or object_lock=None for no lock"
            ]
        return []


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

    def __init__(self, store: VersionedDataStore) -> None:
        self._store = store

    def validate(self) -> list[str]:
        for record in self._store._grant_records:
            self._store._acknowledge_record(record)
        return []


@jsii.implements(IValidation)
class _NoBucketNotifications:
    """Fails synth when ``bucket.add_event_notification`` was used on the store's bucket.

    The bucket sets its ``NotificationConfiguration`` itself (EventBridge); aws-cdk-lib's bucket
    notifications would set the same configuration from a custom resource, so the two would
    overwrite each other's settings.
    """

    def __init__(self, bucket: s3.Bucket) -> None:
        self._bucket = bucket

    def validate(self) -> list[str]:
        if self._bucket.node.try_find_child(_NOTIFICATIONS_ID) is None:
            return []
        return [
            "bucket.add_event_notification() is not supported on a data store: the bucket already sends "
            "every object event to EventBridge; route them with an events.Rule instead "
            "(event_pattern=store.dataset_changed_pattern(name))"
        ]


class VersionedDataStore(Construct):
    """A versioned, KMS-encrypted S3 store for datasets, manifests and model artifacts.

    Objects live under fixed prefixes: ``datasets/<name>/`` for dataset files,
    ``manifests/<name>/`` for dataset snapshots (see :mod:`cdk_mlops.datasets`),
    ``artifacts/``, ``capture/`` and ``monitoring/`` for training output,
    endpoint data capture and Model Monitor. Every write keeps the previous
    object version, so a manifest restores a dataset exactly as it was.

    Example::

        store = VersionedDataStore(self, "Data", datasets=["churn"])
        store.grant_read(training_role, dataset="churn")
        events.Rule(self, "NewData", event_pattern=store.dataset_changed_pattern("churn"))

    Attributes:
        bucket: The data bucket.
        encryption_key: The KMS key that encrypts the data bucket.
        access_log_bucket: The bucket that receives the data bucket's server access logs.
        datasets: The dataset names declared with ``datasets``.
    """

    @checked_props
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        encryption_key: kms.IKey | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        noncurrent_version_transition: Duration | None = _DEFAULT_TRANSITION,
        noncurrent_version_expiration: Duration | None = _DEFAULT_EXPIRATION,
        retain_versions: int | None = None,
        object_lock: ObjectLockSettings | None = None,
        datasets: Sequence[str] = (),
    ) -> None:
        """Define the store.

        Args:
            scope: The parent construct.
            id: The construct id.
            encryption_key: Key for SSE-KMS on the data bucket. Default: - a new
                customer managed key with yearly rotation, given the same
                removal policy as the bucket.
            removal_policy: What happens to the buckets (and the created key)
                when they leave the stack. Default: - RETAIN; data outlives the
                stack. DESTROY also empties both buckets on deletion and emits
                the ``cdk-mlops:data-store-destroy`` warning.
            noncurrent_version_transition: Age at which an overwritten or
                deleted object version moves to STANDARD_IA; at least 30 days
                (an S3 rule). ``None`` keeps old versions in STANDARD.
                Default: - 30 days.
            noncurrent_version_expiration: Age at which an overwritten or
                deleted object version is deleted for good; manifests that list
                it can no longer be materialized after that. ``None`` keeps
                every version. Default: - 90 days.
            retain_versions: Keep this many newest noncurrent versions of each
                object even after ``noncurrent_version_expiration`` (1-100).
                Default: - no extra versions are kept.
            object_lock: Turn on S3 Object Lock with a default retention.
                Default: - no Object Lock.
            datasets: Names of the datasets this store is expected to hold;
                each is validated. Default: - none declared.

        Raises:
            ConfigurationError: listing every invalid argument, before any
                resource is defined.
        """
        super().__init__(scope, id)
        transition_days = _whole_days(noncurrent_version_transition)
        expiration_days = _whole_days(noncurrent_version_expiration)
        declared = tuple(datasets)
        problems = [
            *_lifecycle_problems(transition_days, expiration_days),
            *_retain_problems(retain_versions, noncurrent_version_expiration),
            *(object_lock.problems() if object_lock else []),
            *_removal_problems(removal_policy, object_lock),
            *_declared_dataset_problems(declared),
        ]
        if problems:
            raise ConfigurationError(self, problems)

        destroy = removal_policy == RemovalPolicy.DESTROY
        self.node.set_context(_LOG_DELIVERY_BY_BUCKET_POLICY, True)
        self.datasets: tuple[str, ...] = declared
        self._grant_records: list[_GrantRecord] = []
        self._account_grants: list[str] = []

        self.encryption_key: kms.IKey = (
            kms.Key(
                self,
                "Key",
                description=f"Encrypts the {self.node.path} data store",
                enable_key_rotation=True,
                removal_policy=removal_policy,
            )
            if encryption_key is None
            else encryption_key
        )

        # S3 server access logging delivers only to buckets with SSE-S3 default encryption,
        # and not to buckets with Object Lock, so the log bucket is separate and simpler.
        self.access_log_bucket: s3.Bucket = access_log_bucket(
            self,
            "AccessLogs",
            removal_policy=removal_policy,
            auto_delete_objects=destroy,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="AbortIncompleteUploads",
                    abort_incomplete_multipart_upload_after=Duration.days(_INCOMPLETE_UPLOAD_DAYS),
                )
            ],
        )

        self.bucket: s3.Bucket = s3.Bucket(
            self,
            "Bucket",
            versioned=True,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.encryption_key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_log_bucket,
            lifecycle_rules=[
                _lifecycle_rule(noncurrent_version_transition, noncurrent_version_expiration, retain_versions)
            ],
            object_lock_enabled=True if object_lock else None,
            object_lock_default_retention=_lock_retention(object_lock),
            removal_policy=removal_policy,
            auto_delete_objects=destroy,
        )
        cfn_bucket = self.bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        # S3 → EventBridge as the bucket's own CloudFormation property: aws-cdk-lib's event_bridge_enabled
        # would add a custom resource whose handler, a Lambda function outside any VPC, sets it instead.
        cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(event_bridge_enabled=True)
        )
        if object_lock and Token.is_unresolved(object_lock.default_retention_days):
            # aws-cdk-lib checks the retention range eagerly and so rejects a token; the
            # placeholder day from _lock_retention is replaced with the token here.
            cfn_bucket.add_property_override(
                "ObjectLockConfiguration.Rule.DefaultRetention.Days", object_lock.default_retention_days
            )

        if destroy:
            self._adopt_auto_delete_provider()
        self.node.add_validation(_AcknowledgeResolvedGrants(self))
        self.node.add_validation(_NoBucketNotifications(self.bucket))

        if destroy:
            deleted = "the data bucket with every object version, its access logs"
            deleted += " and its KMS key" if encryption_key is None else ""
            message = (
                f"removal_policy=DESTROY: deleting the stack deletes {deleted}, so no manifest can be "
                "materialized afterwards; use it only for disposable environments such as dev"
            )
            if object_lock:
                message += (
                    ". Versions under Object Lock cannot be deleted until their retention ends, so stack "
                    "deletion fails until then"
                )
            Annotations.of(self).add_warning_v2(DESTROY_WARNING_ID, message)

    # ------------------------------------------------------------------ prefixes and URIs

    @property
    def artifacts_prefix(self) -> str:
        """Key prefix for training output and model artifacts: ``artifacts/``."""
        return ARTIFACTS_PREFIX

    @property
    def capture_prefix(self) -> str:
        """Key prefix for endpoint data capture: ``capture/``."""
        return CAPTURE_PREFIX

    @property
    def monitoring_prefix(self) -> str:
        """Key prefix for Model Monitor baselines and reports: ``monitoring/``."""
        return MONITORING_PREFIX

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
        changed here, so that case gets a synth warning naming what the policy needs. Each account
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
        self.bucket.add_to_resource_policy(
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

    def _adopt_auto_delete_provider(self) -> None:
        # auto_delete_objects adds aws-cdk-lib's stack-wide custom resource provider: a plain
        # CfnResource function with its own runtime, which Tags.of cannot tag.
        for child in Stack.of(self).node.children:
            if child.node.id.startswith(_AUTO_DELETE_PROVIDER_ID):
                handler = child.node.try_find_child("Handler")
                if isinstance(handler, CfnResource):
                    # The function names its role (whose policies are inline) with Fn::GetAtt, so
                    # aws-cdk-lib's DependsOn on the role is redundant (cfn-lint W3005).
                    handler.add_deletion_override("DependsOn")
                acknowledge(
                    child,
                    "aws-cdk-lib owns the auto-delete-objects provider and its Node.js runtime, which moves forward "
                    "with aws-cdk-lib; it is a raw CfnResource that tags cannot reach and that only exists while "
                    "DESTROY is chosen",
                    f"{GUARDRAILS}::MLOPS-008",
                    f"{GUARDRAILS}::MLOPS-009",
                )


def _whole_days(duration: Duration | None) -> float | None:
    if duration is None or duration.is_unresolved():
        return None
    return duration.to_days(integral=False)


def _lifecycle_problems(transition_days: float | None, expiration_days: float | None) -> list[str]:
    problems: list[str] = []
    valid_transition: float | None = None
    valid_expiration: float | None = None
    if transition_days is not None:
        if transition_days != int(transition_days):
            problems.append(
                f"noncurrent_version_transition must be a whole number of days, got {transition_days:g} days; "
                "use Duration.days(30)"
            )
        elif transition_days < _MIN_IA_TRANSITION_DAYS:
            problems.append(
                f"noncurrent_version_transition must be at least {_MIN_IA_TRANSITION_DAYS} days (S3 moves "
                f"versions to STANDARD_IA only after 30 days), got {transition_days:g} days; use "
                "Duration.days(30) or more, or None to keep old versions in STANDARD"
            )
        else:
            valid_transition = transition_days
    if expiration_days is not None:
        if expiration_days != int(expiration_days):
            problems.append(
                f"noncurrent_version_expiration must be a whole number of days, got {expiration_days:g} days; "
                "use e.g. Duration.days(90)"
            )
        elif expiration_days < 1:
            problems.append(
                f"noncurrent_version_expiration must be at least 1 day, got {expiration_days:g} days; use "
                "Duration.days(1) or more, or None to keep every version"
            )
        else:
            valid_expiration = expiration_days
    # Compared only when both are valid on their own, so one mistake is reported once.
    if valid_transition is not None and valid_expiration is not None and valid_expiration <= valid_transition:
        problems.append(
            f"noncurrent_version_expiration ({valid_expiration:g} days) must be longer than "
            f"noncurrent_version_transition ({valid_transition:g} days); raise the expiration, or pass "
            "noncurrent_version_transition=None"
        )
    return problems


def _retain_problems(retain_versions: int | None, expiration: Duration | None) -> list[str]:
    if retain_versions is None or Token.is_unresolved(retain_versions):
        return []
    if isinstance(retain_versions, bool) or not isinstance(retain_versions, int):
        return [f"retain_versions must be a whole number from 1 to 100, got {retain_versions!r}; use e.g. 3"]
    if not 1 <= retain_versions <= _MAX_RETAINED_VERSIONS:
        return [
            f"retain_versions must be from 1 to {_MAX_RETAINED_VERSIONS} (an S3 limit), got {retain_versions}; "
            "use e.g. 3, or None to keep no extra versions"
        ]
    if expiration is None:
        return [
            f"retain_versions={retain_versions} has no effect when noncurrent_version_expiration is None "
            "(every version is kept); set an expiration, or remove retain_versions"
        ]
    return []


def _removal_problems(removal_policy: RemovalPolicy, object_lock: ObjectLockSettings | None) -> list[str]:
    problems: list[str] = []
    if removal_policy == RemovalPolicy.SNAPSHOT:
        problems.append("removal_policy=SNAPSHOT is not supported by S3 buckets; use RETAIN or DESTROY")
    if (
        removal_policy == RemovalPolicy.DESTROY
        and object_lock is not None
        and object_lock.mode == s3.ObjectLockMode.COMPLIANCE
    ):
        problems.append(
            "removal_policy=DESTROY cannot be combined with a COMPLIANCE object lock: locked versions cannot "
            "be deleted by anyone until their retention ends, so deleting the stack would fail; use "
            "RemovalPolicy.RETAIN, or mode=ObjectLockMode.GOVERNANCE"
        )
    return problems


def _declared_dataset_problems(names: Sequence[str]) -> list[str]:
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


def _lifecycle_rule(
    transition: Duration | None, expiration: Duration | None, retain_versions: int | None
) -> s3.LifecycleRule:
    transitions = (
        [s3.NoncurrentVersionTransition(storage_class=s3.StorageClass.INFREQUENT_ACCESS, transition_after=transition)]
        if transition is not None
        else None
    )
    return s3.LifecycleRule(
        id="Versions",
        abort_incomplete_multipart_upload_after=Duration.days(_INCOMPLETE_UPLOAD_DAYS),
        noncurrent_version_transitions=transitions,
        noncurrent_version_expiration=expiration,
        noncurrent_versions_to_retain=retain_versions if expiration is not None else None,
    )


def _lock_retention(lock: ObjectLockSettings | None) -> s3.ObjectLockRetention | None:
    if lock is None:
        return None
    # A token is patched in after the bucket exists (see VersionedDataStore.__init__).
    days = 1 if Token.is_unresolved(lock.default_retention_days) else lock.default_retention_days
    duration = Duration.days(days)
    if lock.mode == s3.ObjectLockMode.COMPLIANCE:
        return s3.ObjectLockRetention.compliance(duration)
    return s3.ObjectLockRetention.governance(duration)
