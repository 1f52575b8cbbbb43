"""VersionedDataStore: a versioned, KMS-encrypted S3 store for datasets and model artifacts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import jsii
from aws_cdk import Annotations, CfnResource, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct, IValidation

from cdk_mlops.constructs.common import (
    GUARDRAILS,
    access_log_bucket,
    acknowledge,
    kms_bucket_settings,
    send_events_to_eventbridge,
)
from cdk_mlops.constructs.data_store_base import (
    DataStoreBase,
    IDataStore,
    bucket_name_problems,
    declared_dataset_problems,
)
from cdk_mlops.constructs.props import checked_props
from cdk_mlops.datasets import ARTIFACTS_PREFIX, CAPTURE_PREFIX, DATASETS_PREFIX, MANIFESTS_PREFIX, MONITORING_PREFIX
from cdk_mlops.errors import ConfigurationError

__all__ = ["IDataStore", "ImportedDataStore", "ObjectLockSettings", "VersionedDataStore"]

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


class VersionedDataStore(DataStoreBase):
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

    An existing bucket and key go behind the same interface with :meth:`from_bucket`.

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
        bucket_name: str | None = None,
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
            bucket_name: A physical name for the data bucket, checked against S3's
                naming rules. Give one when stacks in other accounts or regions name
                the bucket (a serving stack reading promoted models, the other side's
                bucket and key policies): a name known before deploy needs no
                cross-stack reference. Bucket names are global, and a named bucket
                cannot be replaced without a new name. Default: - CloudFormation
                generates a unique name.

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
            *declared_dataset_problems(declared),
            *bucket_name_problems("bucket_name", bucket_name),
        ]
        if problems:
            raise ConfigurationError(self, problems)

        destroy = removal_policy == RemovalPolicy.DESTROY
        self.node.set_context(_LOG_DELIVERY_BY_BUCKET_POLICY, True)
        self.datasets: tuple[str, ...] = declared

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
            bucket_name=bucket_name,
            **kms_bucket_settings(self.encryption_key, access_logs=self.access_log_bucket),
            lifecycle_rules=[
                _lifecycle_rule(noncurrent_version_transition, noncurrent_version_expiration, retain_versions)
            ],
            object_lock_enabled=True if object_lock else None,
            object_lock_default_retention=_lock_retention(object_lock),
            removal_policy=removal_policy,
            auto_delete_objects=destroy,
        )
        cfn_bucket = send_events_to_eventbridge(self.bucket)
        if object_lock and Token.is_unresolved(object_lock.default_retention_days):
            # aws-cdk-lib checks the retention range eagerly and so rejects a token; the
            # placeholder day from _lock_retention is replaced with the token here.
            cfn_bucket.add_property_override(
                "ObjectLockConfiguration.Rule.DefaultRetention.Days", object_lock.default_retention_days
            )

        if destroy:
            adopt_auto_delete_provider(self)
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

    @staticmethod
    def from_bucket(
        scope: Construct,
        id: str,
        *,
        bucket: s3.IBucket,
        encryption_key: kms.IKey,
        datasets: Sequence[str],
        artifacts_prefix: str = ARTIFACTS_PREFIX,
        capture_prefix: str = CAPTURE_PREFIX,
        monitoring_prefix: str = MONITORING_PREFIX,
    ) -> ImportedDataStore:
        """Put an existing bucket and its KMS key behind the data store's interface.

        The result is an :class:`ImportedDataStore`: it takes the place of a
        ``VersionedDataStore`` wherever one is taken (``TrainingPipeline``,
        ``RetrainTrigger``, ``ModelEndpoint``, ``ModelMonitor``) and offers the same
        prefixes, URIs, ``grant_*``, ``metric_*`` and ``dataset_changed_pattern``.
        Nothing is created and the bucket is not changed; see :class:`ImportedDataStore`
        for what the bucket must satisfy and what cannot be checked here.

        Example::

            legacy = s3.Bucket.from_bucket_name(self, "Legacy", "acme-legacy-data")
            key = kms.Key.from_key_arn(self, "LegacyKey", legacy_key_arn)
            store = VersionedDataStore.from_bucket(self, "Data", bucket=legacy, encryption_key=key,
                                                   datasets=["churn"])

        Args:
            scope: The parent construct.
            id: The construct id.
            bucket: The existing bucket, e.g. ``s3.Bucket.from_bucket_name(...)``.
            encryption_key: The KMS key the bucket's default encryption uses (SSE-KMS);
                grants add ``kms:Decrypt`` and ``kms:GenerateDataKey*`` on it.
            datasets: The datasets the bucket holds, under ``datasets/<name>/``; at
                least one. Pipelines and triggers on other names fail synth.
            artifacts_prefix: Key prefix of training output and model artifacts.
                Default: - ``artifacts/``, as in a ``VersionedDataStore``.
            capture_prefix: Key prefix of endpoint data capture. Default: - ``capture/``.
            monitoring_prefix: Key prefix of Model Monitor baselines and reports.
                Default: - ``monitoring/``.

        Raises:
            ConfigurationError: listing every invalid argument.
        """
        return ImportedDataStore(
            scope,
            id,
            bucket=bucket,
            encryption_key=encryption_key,
            datasets=datasets,
            artifacts_prefix=artifacts_prefix,
            capture_prefix=capture_prefix,
            monitoring_prefix=monitoring_prefix,
        )


def adopt_auto_delete_provider(scope: Construct) -> None:
    """Make the stack's auto-delete-objects provider pass the checks; call after ``auto_delete_objects``.

    ``auto_delete_objects`` adds aws-cdk-lib's stack-wide custom resource provider: a plain
    CfnResource function with its own runtime, which ``Tags.of`` cannot tag.
    """
    for child in Stack.of(scope).node.children:
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


class ImportedDataStore(DataStoreBase):
    """An existing bucket and KMS key behind the data store's interface (:class:`IDataStore`).

    Made by :meth:`VersionedDataStore.from_bucket`. It defines no resource and changes
    nothing on the bucket or the key: grants add IAM policies to the grantees only, so
    they work for principals of the bucket's own account.

    Checked at synth: the dataset names (valid, not repeated, at least one), the prefixes
    (keys ending in ``/``, outside ``datasets/`` and ``manifests/``, which the retrain
    trigger watches and writes), the bucket name when it is not a token, and that a
    bucket imported with a key names the same key.

    Not checked, because synth cannot see an existing bucket; the bucket must satisfy them:

    - **Versioning** is enabled. Manifests pin object version ids; without versioning a
      dataset snapshot cannot be restored.
    - **The key encrypts the bucket**: default encryption is SSE-KMS with ``encryption_key``
      (ideally with an S3 Bucket Key), and the key's policy lets IAM policies of this
      account grant its use (the default key policy does).
    - **EventBridge notifications** are on. A ``RetrainTrigger`` on this store starts on
      the bucket's ``Object Created`` events on the default event bus. They are not
      turned on here: aws-cdk-lib's mechanism for an imported bucket
      (``enable_event_bridge_notification``) is a custom resource whose Lambda function
      rewrites the bucket's notification configuration from this stack, a change that
      belongs to the bucket's owner. Turn them on where the bucket is managed, e.g.
      ``aws s3api put-bucket-notification-configuration --bucket <name>
      --notification-configuration '{"EventBridgeConfiguration": {}}'`` (this replaces
      the existing configuration; merge it with ``get-bucket-notification-configuration``).
    - Block Public Access, TLS-only access, access logs and lifecycle rules, which a
      ``VersionedDataStore`` sets itself.
    - Dataset files live under ``datasets/<name>/`` and manifests under
      ``manifests/<name>/`` (the runtime code shares these constants).

    Attributes:
        bucket: The bucket (re-imported with ``encryption_key`` when it was imported without one).
        encryption_key: The key that encrypts the bucket.
        datasets: The declared dataset names.
    """

    @checked_props
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bucket: s3.IBucket,
        encryption_key: kms.IKey,
        datasets: Sequence[str],
        artifacts_prefix: str = ARTIFACTS_PREFIX,
        capture_prefix: str = CAPTURE_PREFIX,
        monitoring_prefix: str = MONITORING_PREFIX,
    ) -> None:
        """Import the store; prefer :meth:`VersionedDataStore.from_bucket`, which documents every argument.

        Args:
            scope: The parent construct.
            id: The construct id.
            bucket: The existing bucket.
            encryption_key: The KMS key of the bucket's default encryption.
            datasets: The datasets the bucket holds; at least one.
            artifacts_prefix: Default: - ``artifacts/``.
            capture_prefix: Default: - ``capture/``.
            monitoring_prefix: Default: - ``monitoring/``.

        Raises:
            ConfigurationError: listing every invalid argument.
        """
        super().__init__(
            scope,
            id,
            artifacts_prefix=artifacts_prefix,
            capture_prefix=capture_prefix,
            monitoring_prefix=monitoring_prefix,
        )
        declared = tuple(datasets)
        problems = [
            *_imported_resource_problems(bucket, encryption_key),
            *declared_dataset_problems(declared),
            *_layout_problems(
                {
                    "artifacts_prefix": artifacts_prefix,
                    "capture_prefix": capture_prefix,
                    "monitoring_prefix": monitoring_prefix,
                }
            ),
        ]
        if not declared:
            problems.append(
                "datasets is empty; declare the datasets the bucket holds under datasets/<name>/, "
                "e.g. datasets=['churn']"
            )
        if not problems:
            problems += bucket_name_problems("bucket", bucket.bucket_name)
        if problems:
            raise ConfigurationError(self, problems)
        self.datasets = declared
        self.encryption_key = encryption_key
        # Grants decrypt and encrypt with the bucket's key only when the bucket knows it.
        self.bucket = (
            bucket
            if bucket.encryption_key is not None
            else s3.Bucket.from_bucket_attributes(
                self,
                "Bucket",
                bucket_arn=bucket.bucket_arn,
                bucket_name=bucket.bucket_name,
                encryption_key=encryption_key,
                account=bucket.env.account,
                region=bucket.env.region,
            )
        )


def _imported_resource_problems(bucket: object, key: object) -> list[str]:
    problems: list[str] = []
    if not hasattr(bucket, "bucket_arn") or not hasattr(bucket, "grant_read"):
        problems.append(
            f"bucket must be an s3.IBucket, got {type(bucket).__name__}; use e.g. s3.Bucket.from_bucket_name(...)"
        )
    if not hasattr(key, "key_arn") or not hasattr(key, "grant_decrypt"):
        problems.append(
            f"encryption_key must be a kms.IKey, got {type(key).__name__}; use e.g. kms.Key.from_key_arn(...)"
        )
    if problems:
        return problems
    imported_key = cast(s3.IBucket, bucket).encryption_key
    if imported_key is not None and imported_key is not key:
        stack = Stack.of(cast(kms.IKey, key))
        if stack.resolve(imported_key.key_arn) != stack.resolve(cast(kms.IKey, key).key_arn):
            problems.append(
                "bucket was imported with another encryption key than encryption_key; pass the same key to both, "
                "or import the bucket without one"
            )
    return problems


def _layout_problems(prefixes: dict[str, str]) -> list[str]:
    problems: list[str] = []
    for argument, prefix in prefixes.items():
        if Token.is_unresolved(prefix):
            continue
        if (
            not isinstance(prefix, str)
            or not prefix
            or prefix.startswith("/")
            or not prefix.endswith("/")
            or "*" in prefix
        ):
            problems.append(
                f"{argument} {prefix!r} must be a key prefix ending in '/' without '*' or a leading '/'; "
                "use e.g. 'ml/artifacts/'"
            )
            continue
        for reserved in (DATASETS_PREFIX, MANIFESTS_PREFIX):
            if prefix.startswith(reserved) or reserved.startswith(prefix):
                problems.append(
                    f"{argument} {prefix!r} overlaps {reserved!r}, which holds dataset files and manifests "
                    "(the retrain trigger starts on new objects there); use a prefix outside it, e.g. 'ml/artifacts/'"
                )
    return problems


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
