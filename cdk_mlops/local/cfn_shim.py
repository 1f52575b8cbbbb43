"""CloudFormation types that moto does not provision, registered on moto's own backends.

moto's CloudFormation builds its resource type map from ``CloudFormationModel.__subclasses__()``;
a type missing there is skipped with a warning, and the stack "completes" without it. Each
model below subclasses ``CloudFormationModel`` directly, so defining it registers its type (and
a later definition of a type replaces moto's). :func:`install` must run in the process that
serves the requests, before the first stack is created: it also routes ``Custom::`` types to the
emulations here (moto would invoke their Lambda in Docker), evaluates bucket policies as a TLS
request would be (below), links cross-stack exports for change-set deployments (moto does so
only for CreateStack, so every ``Fn::ImportValue`` of a CLI deployment failed) and clears
moto's type-map caches. It is idempotent.

Covered, on the moto service backends, so the service APIs answer as AWS would after a deploy:

``AWS::S3::Bucket`` (replaces moto's model, which applies only encryption and tags)
    ``VersioningConfiguration``, ``ObjectLockEnabled``/``ObjectLockConfiguration``,
    ``LifecycleConfiguration``, ``PublicAccessBlockConfiguration``, ``OwnershipControls``,
    ``LoggingConfiguration``, ``NotificationConfiguration`` (queue, topic, Lambda, EventBridge),
    ``CorsConfiguration`` and ``BucketEncryption`` with ``BucketKeyEnabled``, on create and update
    (removed settings are cleared). Delete refuses a bucket that holds objects, as S3 does
    (moto silently kept it and reported success).
``AWS::KMS::Key`` (replaces moto's model, which fails with a 500 on any tagged key)
    ``Tags``, ``KeyPolicy`` (stored as JSON), ``EnableKeyRotation``, ``Enabled``, ``KeySpec``,
    ``KeyUsage``, ``Description``.
``AWS::S3::BucketPolicy``, ``AWS::SQS::QueuePolicy``, ``AWS::SNS::TopicPolicy``
    the policy is set on each bucket, queue or topic, and removed on delete. Bucket policy
    statements with a ``Condition`` apply only if the condition holds for a local request,
    which counts as TLS (``aws:SecureTransport`` true): moto ignores ``Bool`` conditions, so the
    deny-non-TLS statement of every ``enforce_ssl`` bucket (and of the bootstrap bucket) would
    otherwise deny every object request, including the CLI's asset uploads.
``AWS::SageMaker::Pipeline``
    ``PipelineDefinitionBody`` or ``PipelineDefinitionS3Location``; updated in place.
``AWS::SageMaker::ModelPackageGroup``
    ``Ref`` is the ARN; delete fails while the group holds model packages, as in SageMaker.
``AWS::CloudWatch::Alarm``
    single-metric alarms.
``AWS::Scheduler::Schedule``
    in its group (``default`` when unset); generated names are cut to 64 characters.
``Custom::S3AutoDeleteObjects``
    on delete, empties the bucket (every version and delete marker) if it still carries the
    ``aws-cdk:auto-delete-objects=true`` tag, as the CDK's handler does.
``Custom::S3BucketNotifications``
    puts the notification configuration on the bucket, removes it on delete.

Not covered:

* Any other ``Custom::*`` or ``AWS::CloudFormation::CustomResource``: it succeeds without effect
  and without attributes (``Fn::GetAtt`` on it resolves to nothing); each such type is logged
  once and listed by :func:`unemulated_custom_resources`. Its Lambda would need Docker, and a
  Lambda calling back to the server would need a bind beyond loopback.
* Types neither moto nor this module knows (``AWS::DynamoDB::GlobalTable``,
  ``AWS::SageMaker::MonitoringSchedule``, ``AWS::ApplicationAutoScaling::*``, ``AWS::Lambda::Url``,
  ``AWS::Pipes::Pipe``, ...): moto skips them; :func:`cdk_mlops.local.deploy.check_stack` reports them.
* Rollback: moto applies a template without rolling back when a resource fails.
* Deleting a stack, or removing an export, that another stack still imports is not refused.
* Bucket replication, inventory, analytics, intelligent tiering and website settings; KMS
  multi-region keys and rotation periods; alarms on metric math (``Metrics``).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import moto.cloudformation.parsing as _parsing  # imports every moto model first, so the models below win
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.cloudformation.models import CloudFormationBackend
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.common_models import CloudFormationModel
from moto.iam.access_control import IAMPolicyStatement, PermissionResult
from moto.kms.models import kms_backends
from moto.s3.exceptions import BucketNeedsToBeNew
from moto.s3.models import FakeBucket, s3_backends
from moto.sagemaker.models import sagemaker_backends
from moto.scheduler.models import scheduler_backends
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends
from moto.utilities.utils import get_partition

logger = logging.getLogger(__name__)

#: The tag the CDK puts on a bucket whose objects its custom resource may delete.
AUTO_DELETE_TAG = "aws-cdk:auto-delete-objects"
#: Resource properties (the ``Properties`` of a template resource, intrinsics resolved).
Props = dict[str, Any]

_lock = threading.Lock()
_unemulated: set[str] = set()
_original_resource_class_from_type = _parsing.resource_class_from_type
_original_create_change_set = CloudFormationBackend.create_change_set
_original_execute_change_set = CloudFormationBackend.execute_change_set
_original_update_stack = CloudFormationBackend.update_stack


class BucketNotEmptyError(Exception):
    """S3 refuses to delete a bucket that holds objects; CloudFormation then fails the deletion."""


class ResourceInUseError(Exception):
    """A resource still holds children that must go first (a model package group with packages)."""


def _s3(account_id: str, region_name: str) -> Any:
    return s3_backends[account_id][get_partition(region_name)]


def _tags(properties: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in properties.get("Tags", [])]


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _as_json(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


class _ShimResource:
    """Base of this module's resource objects: a physical id (what ``Ref`` returns) and attributes.

    A model sets ``TYPE`` (and ``NAME_PROPERTY``, ``ATTRIBUTES``), implements :meth:`provision`
    and :meth:`delete`, and overrides :meth:`modify` when an update can happen in place.
    """

    TYPE: ClassVar[str]
    NAME_PROPERTY: ClassVar[str] = ""
    ATTRIBUTES: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, physical_resource_id: str, attributes: Mapping[str, Any] | None = None) -> None:
        self.physical_resource_id = physical_resource_id
        self.attributes: dict[str, Any] = dict(attributes or {})

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> _ShimResource:
        """Create the resource named ``name`` (generated unless ``NAME_PROPERTY`` is set) from properties ``p``."""
        raise NotImplementedError

    def modify(self, name: str, p: Props, account: str, region: str) -> _ShimResource:
        """Apply changed properties. Default: replace (delete, then create: names may be fixed)."""
        self.delete(account, region)
        return self.provision(name, p, account, region)

    def delete(self, account_id: str, region_name: str) -> None:
        """Remove the resource; moto's CloudFormation calls this on stack deletion and replacement."""
        raise NotImplementedError

    # moto's CloudFormationModel interface

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.NAME_PROPERTY

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name not in self.attributes:
            raise UnformattedGetAttTemplateException()
        return self.attributes[attribute_name]

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Props, account_id: str, region_name: str, **kwargs: Any
    ) -> _ShimResource:
        return cls.provision(resource_name, cloudformation_json.get("Properties", {}), account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Props,
        account_id: str,
        region_name: str,
    ) -> _ShimResource:
        properties = cloudformation_json.get("Properties", {})
        return original_resource.modify(new_resource_name, properties, account_id, region_name)  # type: ignore[no-any-return]

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Props, account_id: str, region_name: str
    ) -> None:
        return None  # moto calls the object's delete() first; it comes here only without one


# --- S3 ----------------------------------------------------------------------------------------------


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """One CloudFormation ``LifecycleConfiguration.Rules`` item in the S3 API shape moto stores."""
    api: dict[str, Any] = {"ID": rule.get("Id"), "Status": rule.get("Status", "Enabled")}
    tags = [{"Key": t["Key"], "Value": t["Value"]} for t in rule.get("TagFilters", [])]
    prefix = rule.get("Prefix")
    if tags and (prefix is not None or len(tags) > 1):
        api["Filter"] = {"And": {"Prefix": prefix or "", "Tag": tags}}
    elif tags:
        api["Filter"] = {"Tag": tags[0]}
    else:
        api["Filter"] = {"Prefix": prefix or ""}
    expiration = {
        key: value
        for key, value in (
            ("Days", rule.get("ExpirationInDays")),
            ("Date", rule.get("ExpirationDate")),
            ("ExpiredObjectDeleteMarker", rule.get("ExpiredObjectDeleteMarker")),
        )
        if value is not None
    }
    if expiration:
        api["Expiration"] = expiration
    transitions = list(rule.get("Transitions", [])) + ([rule["Transition"]] if "Transition" in rule else [])
    if transitions:
        api["Transition"] = [
            {"Days": t.get("TransitionInDays"), "Date": t.get("TransitionDate"), "StorageClass": t["StorageClass"]}
            for t in transitions
        ]
    noncurrent = dict(rule.get("NoncurrentVersionExpiration", {}))
    if "NoncurrentVersionExpirationInDays" in rule:
        noncurrent.setdefault("NoncurrentDays", rule["NoncurrentVersionExpirationInDays"])
    if noncurrent:
        api["NoncurrentVersionExpiration"] = noncurrent
    nv_transitions = list(rule.get("NoncurrentVersionTransitions", []))
    if "NoncurrentVersionTransition" in rule:
        nv_transitions.append(rule["NoncurrentVersionTransition"])
    if nv_transitions:
        api["NoncurrentVersionTransition"] = [
            {
                "NoncurrentDays": t["TransitionInDays"],
                "StorageClass": t["StorageClass"],
                "NewerNoncurrentVersions": t.get("NewerNoncurrentVersions"),
            }
            for t in nv_transitions
        ]
    if "AbortIncompleteMultipartUpload" in rule:
        api["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    return api


def _filter_rules(rules: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {"S3Key": {"FilterRule": [{"Name": str(r["Name"]).lower(), "Value": r["Value"]} for r in rules]}}


def _notifications_from_cfn(config: Mapping[str, Any]) -> dict[str, Any]:
    """``AWS::S3::Bucket.NotificationConfiguration`` in the shape moto's S3 backend stores."""
    stored: dict[str, Any] = {}
    for cfn_key, stored_key, cfn_arn, stored_arn in (
        ("TopicConfigurations", "TopicConfiguration", "Topic", "Topic"),
        ("QueueConfigurations", "QueueConfiguration", "Queue", "Queue"),
        ("LambdaConfigurations", "CloudFunctionConfiguration", "Function", "CloudFunction"),
    ):
        entries = []
        for item in config.get(cfn_key, []):
            entry: dict[str, Any] = {stored_arn: item[cfn_arn], "Event": [item["Event"]]}
            rules = item.get("Filter", {}).get("S3Key", {}).get("Rules")
            if rules:
                entry["Filter"] = _filter_rules(rules)
            entries.append(entry)
        if entries:
            stored[stored_key] = entries
    if _true(config.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled")):
        stored["EventBridgeConfiguration"] = {}
    return stored


def _notifications_from_api(config: Mapping[str, Any]) -> dict[str, Any]:
    """A ``PutBucketNotificationConfiguration`` body (the CDK custom resource's shape) as moto stores it."""
    stored: dict[str, Any] = {}
    for api_key, stored_key, api_arn, stored_arn in (
        ("TopicConfigurations", "TopicConfiguration", "TopicArn", "Topic"),
        ("QueueConfigurations", "QueueConfiguration", "QueueArn", "Queue"),
        ("LambdaFunctionConfigurations", "CloudFunctionConfiguration", "LambdaFunctionArn", "CloudFunction"),
    ):
        entries = []
        for item in config.get(api_key, []):
            entry: dict[str, Any] = {stored_arn: item[api_arn], "Event": list(item["Events"])}
            if item.get("Id"):
                entry["Id"] = item["Id"]
            rules = item.get("Filter", {}).get("Key", {}).get("FilterRules")
            if rules:
                entry["Filter"] = _filter_rules(rules)
            entries.append(entry)
        if entries:
            stored[stored_key] = entries
    if "EventBridgeConfiguration" in config:
        stored["EventBridgeConfiguration"] = {}
    return stored


def _apply_bucket_properties(bucket: Any, properties: Mapping[str, Any], account_id: str, region_name: str) -> None:
    """Apply the properties moto's bucket model ignores; absent ones are cleared (for updates)."""
    backend = _s3(account_id, region_name)
    name = bucket.name
    lock = properties.get("ObjectLockConfiguration", {})
    lock_enabled = _true(properties.get("ObjectLockEnabled")) or lock.get("ObjectLockEnabled") == "Enabled"
    versioning = properties.get("VersioningConfiguration", {}).get("Status")
    if versioning or lock_enabled:
        backend.put_bucket_versioning(name, "Enabled" if lock_enabled else versioning)
    if lock_enabled:
        retention = lock.get("Rule", {}).get("DefaultRetention", {})
        try:
            backend.put_object_lock_configuration(
                name, True, mode=retention.get("Mode"), days=retention.get("Days"), years=retention.get("Years")
            )
        except BucketNeedsToBeNew:
            logger.warning("bucket %s holds objects; its object lock configuration was not changed", name)
    rules = properties.get("LifecycleConfiguration", {}).get("Rules")
    if rules:
        backend.put_bucket_lifecycle_configuration(name, [_lifecycle_rule(r) for r in rules])
    elif bucket.rules:
        backend.delete_bucket_lifecycle(name)
    block = properties.get("PublicAccessBlockConfiguration")
    if block:
        backend.put_public_access_block(name, {k: _true(v) for k, v in block.items()})
    else:
        backend.delete_public_access_block(name)
    ownership = properties.get("OwnershipControls")
    bucket.ownership_rule = ownership["Rules"][0]["ObjectOwnership"] if ownership and ownership.get("Rules") else None
    encryption = properties.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration")
    if encryption:
        default = encryption[0].get("ServerSideEncryptionByDefault", {})
        rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": default["SSEAlgorithm"]}}
        if default.get("KMSMasterKeyID"):
            rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] = default["KMSMasterKeyID"]
        rule["BucketKeyEnabled"] = str(encryption[0].get("BucketKeyEnabled", False)).lower()
        backend.put_bucket_encryption(name, {"Rule": rule})
    logging_config = properties.get("LoggingConfiguration")
    # Set directly: moto checks the target's policy, which CloudFormation may create after this bucket.
    bucket.logging = (
        {
            "TargetBucket": logging_config.get("DestinationBucketName", name),
            "TargetPrefix": logging_config.get("LogFilePrefix", ""),
        }
        if logging_config
        else {}
    )
    notifications = properties.get("NotificationConfiguration")
    if notifications is not None:
        backend.put_bucket_notification_configuration(name, _notifications_from_cfn(notifications))
    cors = properties.get("CorsConfiguration", {}).get("CorsRules")
    if cors:
        bucket.set_cors(
            [
                {
                    "AllowedMethod": r.get("AllowedMethods", []),
                    "AllowedOrigin": r.get("AllowedOrigins", []),
                    "AllowedHeader": r.get("AllowedHeaders"),
                    "ExposeHeader": r.get("ExposedHeaders"),
                    "MaxAgeSeconds": r.get("MaxAge"),
                }
                for r in cors
            ]
        )
    elif bucket.cors:
        bucket.delete_cors()


#: What a request to the local endpoint looks like to a policy condition: the loopback endpoint
#: stands in for AWS's TLS endpoints, so ``aws:SecureTransport`` is true.
LOCAL_REQUEST_CONTEXT: Mapping[str, str] = {"aws:SecureTransport": "true"}


def _condition_holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    """Evaluate a policy ``Condition`` block against known request keys; unknown operators do not hold."""
    for operator, tests in condition.items():
        base = operator.removesuffix("IfExists")
        for key, expected in tests.items():
            values = [str(v) for v in (expected if isinstance(expected, list) else [expected])]
            actual = context.get(key)
            if base == "Null":
                if (actual is None) != (values[0].lower() == "true"):
                    return False
                continue
            if actual is None:
                if operator.endswith("IfExists"):
                    continue
                return False
            if base == "Bool":
                holds = actual.lower() in (v.lower() for v in values)
            elif base == "StringEquals":
                holds = actual in values
            elif base == "StringNotEquals":
                holds = actual not in values
            elif base == "StringLike":
                holds = any(fnmatch.fnmatchcase(actual, v) for v in values)
            else:
                return False
            if not holds:
                return False
    return True


def _bucket_permission(bucket: Any, action: str, resource: str) -> PermissionResult:
    """``FakeBucket.get_permission`` with conditions evaluated against :data:`LOCAL_REQUEST_CONTEXT`.

    moto ignores ``Bool`` conditions, so the deny-non-TLS statement of every CDK bucket with
    ``enforce_ssl`` (and of the bootstrap bucket) would deny every object request. Here a
    statement applies only when its conditions hold for a local request.
    """
    if bucket.policy is None:
        return PermissionResult.NEUTRAL
    statements = json.loads(bucket.policy).get("Statement", [])
    result = PermissionResult.NEUTRAL
    for statement in statements if isinstance(statements, list) else [statements]:
        if "Condition" in statement:
            if not _condition_holds(statement["Condition"], LOCAL_REQUEST_CONTEXT):
                continue
            statement = {k: v for k, v in statement.items() if k != "Condition"}
        permission = IAMPolicyStatement(statement).is_action_permitted(action, resource)
        if permission == PermissionResult.DENIED:
            return permission
        if permission == PermissionResult.PERMITTED:
            result = permission
    return result


class S3Bucket(CloudFormationModel):
    """``AWS::S3::Bucket``: moto's bucket model plus the settings it ignores (see the module docstring)."""

    @staticmethod
    def cloudformation_name_type() -> str:
        return "BucketName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::S3::Bucket"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return bool(FakeBucket.has_cfn_attr(attr))

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Props, account_id: str, region_name: str, **kwargs: Any
    ) -> FakeBucket:
        bucket = FakeBucket.create_from_cloudformation_json(resource_name, cloudformation_json, account_id, region_name)
        _apply_bucket_properties(bucket, cloudformation_json.get("Properties", {}), account_id, region_name)
        return bucket

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Props,
        account_id: str,
        region_name: str,
    ) -> FakeBucket:
        properties = cloudformation_json.get("Properties", {})
        name = original_resource.name
        if properties.get("BucketName", name) != name:
            new_bucket = cls.create_from_cloudformation_json(
                properties["BucketName"], cloudformation_json, account_id, region_name
            )
            cls.delete_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
            return new_bucket
        _s3(account_id, region_name).put_bucket_tagging(name, {t["Key"]: t["Value"] for t in _tags(properties)})
        _apply_bucket_properties(original_resource, properties, account_id, region_name)
        return original_resource  # type: ignore[no-any-return]

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Props, account_id: str, region_name: str
    ) -> None:
        backend = _s3(account_id, region_name)
        if resource_name in backend.buckets and backend.delete_bucket(resource_name) is None:
            raise BucketNotEmptyError(f"The bucket you tried to delete is not empty: {resource_name}")

    def is_created(self) -> bool:
        return True


def _empty_bucket(account_id: str, region_name: str, bucket_name: str) -> None:
    """Delete every object version and delete marker in a bucket."""
    backend = _s3(account_id, region_name)
    while True:
        versions, _, markers, _, _ = backend.list_object_versions(bucket_name, max_keys=1000)
        if not versions and not markers:
            return
        for item in [*versions, *markers]:
            backend.delete_object(bucket_name, item.name, version_id=item.version_id, bypass=True)


class S3BucketPolicy(_ShimResource, CloudFormationModel):
    """``AWS::S3::BucketPolicy``: ``Ref`` is the bucket name."""

    TYPE = "AWS::S3::BucketPolicy"

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> S3BucketPolicy:
        _s3(account, region).put_bucket_policy(p["Bucket"], _as_json(p["PolicyDocument"]).encode())
        return cls(p["Bucket"])

    def delete(self, account_id: str, region_name: str) -> None:
        backend = _s3(account_id, region_name)
        if self.physical_resource_id in backend.buckets:
            backend.delete_bucket_policy(self.physical_resource_id)


class SqsQueuePolicy(_ShimResource, CloudFormationModel):
    """``AWS::SQS::QueuePolicy``: the ``Policy`` attribute of each queue in ``Queues`` (URLs)."""

    TYPE = "AWS::SQS::QueuePolicy"

    def __init__(self, physical_id: str, queue_names: list[str]) -> None:
        super().__init__(physical_id)
        self.queue_names = queue_names

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> SqsQueuePolicy:
        names = [str(url).rstrip("/").rsplit("/", 1)[-1] for url in p["Queues"]]
        for queue in names:
            sqs_backends[account][region].set_queue_attributes(queue, {"Policy": _as_json(p["PolicyDocument"])})
        return cls(name, names)

    def delete(self, account_id: str, region_name: str) -> None:
        queues = sqs_backends[account_id][region_name].queues
        for queue in self.queue_names:
            if queue in queues:
                queues[queue].policy = None


class SnsTopicPolicy(_ShimResource, CloudFormationModel):
    """``AWS::SNS::TopicPolicy``: the ``Policy`` attribute of each topic (the previous one comes back on delete)."""

    TYPE = "AWS::SNS::TopicPolicy"

    def __init__(self, physical_id: str, previous: dict[str, str]) -> None:
        super().__init__(physical_id)
        self.previous = previous

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> SnsTopicPolicy:
        backend = sns_backends[account][region]
        previous = {arn: backend.get_topic(arn).policy for arn in p["Topics"]}
        for arn in p["Topics"]:
            backend.set_topic_attribute(arn, "policy", _as_json(p["PolicyDocument"]))
        return cls(name, previous)

    def delete(self, account_id: str, region_name: str) -> None:
        backend = sns_backends[account_id][region_name]
        for arn, policy in self.previous.items():
            if arn in backend.topics:
                backend.set_topic_attribute(arn, "policy", policy)


# --- KMS ---------------------------------------------------------------------------------------------


def _kms_tags(properties: Props) -> list[dict[str, str]]:
    return [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in _tags(properties)]


class KmsKey(CloudFormationModel):
    """``AWS::KMS::Key``: moto's key, created with CloudFormation's tag shape and a JSON key policy."""

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::KMS::Key"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Props, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        p = cloudformation_json.get("Properties", {})
        key = kms_backends[account_id][region_name].create_key(
            policy=_as_json(p["KeyPolicy"]) if "KeyPolicy" in p else None,
            key_usage=p.get("KeyUsage", "ENCRYPT_DECRYPT"),
            key_spec=p.get("KeySpec", "SYMMETRIC_DEFAULT"),
            description=p.get("Description", ""),
            tags=_kms_tags(p),
            multi_region=_true(p.get("MultiRegion")),
        )
        key.key_rotation_status = _true(p.get("EnableKeyRotation"))
        key.enabled = str(p.get("Enabled", True)).lower() != "false"
        return key

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Props,
        account_id: str,
        region_name: str,
    ) -> Any:
        p = cloudformation_json.get("Properties", {})
        key = original_resource
        key.policy = _as_json(p["KeyPolicy"]) if "KeyPolicy" in p else key.policy
        key.description = p.get("Description", key.description)
        key.key_rotation_status = _true(p.get("EnableKeyRotation"))
        key.enabled = str(p.get("Enabled", True)).lower() != "false"
        tagger = kms_backends[account_id][region_name].tagger
        tagger.delete_all_tags_for_resource(key.id)
        tagger.tag_resource(key.id, _kms_tags(p))
        return key

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Props, account_id: str, region_name: str
    ) -> None:
        kms_backends[account_id][region_name].delete_key(resource_name)

    def is_created(self) -> bool:
        return True


# --- SageMaker -----------------------------------------------------------------------------------------


def _pipeline_definition(definition: Mapping[str, Any], account: str, region: str) -> str:
    if "PipelineDefinitionBody" in definition:
        return _as_json(definition["PipelineDefinitionBody"])
    location = definition["PipelineDefinitionS3Location"]
    obj = _s3(account, region).get_object(location["Bucket"], location["Key"], version_id=location.get("Version"))
    return bytes(obj.value).decode()


class SageMakerPipeline(_ShimResource, CloudFormationModel):
    """``AWS::SageMaker::Pipeline``: ``Ref`` is the pipeline name; updates are in place."""

    TYPE = "AWS::SageMaker::Pipeline"
    NAME_PROPERTY = "PipelineName"

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> SageMakerPipeline:
        sagemaker_backends[account][region].create_pipeline(
            pipeline_name=name,
            pipeline_display_name=p.get("PipelineDisplayName", name),
            pipeline_definition=_pipeline_definition(p["PipelineDefinition"], account, region),
            pipeline_definition_s3_location={},
            pipeline_description=p.get("PipelineDescription", ""),
            role_arn=p["RoleArn"],
            tags=_tags(p),
            parallelism_configuration=p.get("ParallelismConfiguration", {}),
        )
        return cls(name)

    def modify(self, name: str, p: Props, account: str, region: str) -> _ShimResource:
        if p.get("PipelineName", self.physical_resource_id) != self.physical_resource_id:
            return super().modify(name, p, account, region)
        sagemaker_backends[account][region].update_pipeline(
            self.physical_resource_id,
            pipeline_display_name=p.get("PipelineDisplayName"),
            pipeline_definition=_pipeline_definition(p["PipelineDefinition"], account, region),
            pipeline_description=p.get("PipelineDescription"),
            role_arn=p["RoleArn"],
            parallelism_configuration=p.get("ParallelismConfiguration"),
        )
        return self

    def delete(self, account_id: str, region_name: str) -> None:
        backend = sagemaker_backends[account_id][region_name]
        if self.physical_resource_id in backend.pipelines:
            backend.delete_pipeline(self.physical_resource_id)


class SageMakerModelPackageGroup(_ShimResource, CloudFormationModel):
    """``AWS::SageMaker::ModelPackageGroup``: ``Ref`` is the group's ARN."""

    TYPE = "AWS::SageMaker::ModelPackageGroup"
    NAME_PROPERTY = "ModelPackageGroupName"
    ATTRIBUTES = frozenset({"ModelPackageGroupArn", "CreationTime", "ModelPackageGroupStatus"})

    def __init__(self, name: str, arn: str, created: str) -> None:
        super().__init__(
            arn, {"ModelPackageGroupArn": arn, "CreationTime": created, "ModelPackageGroupStatus": "Completed"}
        )
        self.name = name

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> SageMakerModelPackageGroup:
        name = name[:63].rstrip("-")
        backend = sagemaker_backends[account][region]
        arn = backend.create_model_package_group(name, p.get("ModelPackageGroupDescription", ""), _tags(p))
        return cls(name, arn, str(backend.model_package_groups[name].creation_time))

    def modify(self, name: str, p: Props, account: str, region: str) -> _ShimResource:
        if p.get("ModelPackageGroupName", self.name) != self.name:
            return super().modify(name, p, account, region)
        group = sagemaker_backends[account][region].model_package_groups[self.name]
        group.model_package_group_description = p.get("ModelPackageGroupDescription", "")
        return self

    def delete(self, account_id: str, region_name: str) -> None:
        backend = sagemaker_backends[account_id][region_name]
        packages = [p for p in backend.model_packages.values() if p.model_package_group_name == self.name]
        if packages:
            raise ResourceInUseError(f"model package group {self.name} holds {len(packages)} model package(s)")
        backend.model_package_groups.pop(self.name, None)


# --- CloudWatch, Scheduler ----------------------------------------------------------------------------


class CloudWatchAlarm(_ShimResource, CloudFormationModel):
    """``AWS::CloudWatch::Alarm`` on one metric: ``Ref`` is the alarm name."""

    TYPE = "AWS::CloudWatch::Alarm"
    NAME_PROPERTY = "AlarmName"
    ATTRIBUTES = frozenset({"Arn"})

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> CloudWatchAlarm:
        backend: Any = cloudwatch_backends[account][region]
        alarm = backend.put_metric_alarm(
            name=name,
            namespace=p.get("Namespace"),
            metric_name=p.get("MetricName"),
            comparison_operator=p["ComparisonOperator"],
            evaluation_periods=int(p["EvaluationPeriods"]),
            period=int(p.get("Period", 60)),
            threshold=float(p.get("Threshold", 0)),
            statistic=p.get("Statistic"),
            description=p.get("AlarmDescription", ""),
            dimensions=[{"Name": d["Name"], "Value": d["Value"]} for d in p.get("Dimensions", [])],
            alarm_actions=list(p.get("AlarmActions", [])),
            datapoints_to_alarm=int(p["DatapointsToAlarm"]) if "DatapointsToAlarm" in p else None,
            extended_statistic=p.get("ExtendedStatistic"),
            ok_actions=list(p.get("OKActions", [])),
            insufficient_data_actions=list(p.get("InsufficientDataActions", [])),
            unit=p.get("Unit"),
            actions_enabled=str(p.get("ActionsEnabled", True)).lower() != "false",
            treat_missing_data=p.get("TreatMissingData"),
            evaluate_low_sample_count_percentile=p.get("EvaluateLowSampleCountPercentile"),
        )
        return cls(name, {"Arn": alarm.alarm_arn})

    def delete(self, account_id: str, region_name: str) -> None:
        cloudwatch_backends[account_id][region_name].delete_alarms([self.physical_resource_id])


class SchedulerSchedule(_ShimResource, CloudFormationModel):
    """``AWS::Scheduler::Schedule``: ``Ref`` is the schedule name."""

    TYPE = "AWS::Scheduler::Schedule"
    NAME_PROPERTY = "Name"
    ATTRIBUTES = frozenset({"Arn"})

    def __init__(self, name: str, group: str | None, arn: str) -> None:
        super().__init__(name, {"Arn": arn})
        self.group = group

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> SchedulerSchedule:
        name = name[:64].rstrip("-")
        backend: Any = scheduler_backends[account][region]
        schedule = backend.create_schedule(
            description=p.get("Description"),
            end_date=p.get("EndDate"),
            flexible_time_window=p["FlexibleTimeWindow"],
            group_name=p.get("GroupName"),
            kms_key_arn=p.get("KmsKeyArn"),
            name=name,
            schedule_expression=p["ScheduleExpression"],
            schedule_expression_timezone=p.get("ScheduleExpressionTimezone"),
            start_date=p.get("StartDate"),
            state=p.get("State", "ENABLED"),
            target=p["Target"],
            action_after_completion=None,
        )
        return cls(name, p.get("GroupName"), schedule.arn)

    def delete(self, account_id: str, region_name: str) -> None:
        scheduler_backends[account_id][region_name].delete_schedule(self.group, self.physical_resource_id)


# --- Custom resources --------------------------------------------------------------------------------


class S3AutoDeleteObjects(_ShimResource, CloudFormationModel):
    """``Custom::S3AutoDeleteObjects``: on delete, empty the bucket if it is still tagged for it."""

    TYPE = "Custom::S3AutoDeleteObjects"

    def __init__(self, physical_id: str, bucket_name: str) -> None:
        super().__init__(physical_id)
        self.bucket_name = bucket_name

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> S3AutoDeleteObjects:
        return cls(name, p["BucketName"])

    def modify(self, name: str, p: Props, account: str, region: str) -> _ShimResource:
        return self.provision(self.physical_resource_id, p, account, region)

    def delete(self, account_id: str, region_name: str) -> None:
        backend = _s3(account_id, region_name)
        if self.bucket_name not in backend.buckets:
            return
        tags = backend.get_bucket_tagging(self.bucket_name).get("Tags", [])
        if {"Key": AUTO_DELETE_TAG, "Value": "true"} not in tags:
            logger.info("bucket %s is not tagged %s=true; its objects stay", self.bucket_name, AUTO_DELETE_TAG)
            return
        _empty_bucket(account_id, region_name, self.bucket_name)


class S3BucketNotifications(_ShimResource, CloudFormationModel):
    """``Custom::S3BucketNotifications``: the CDK's handler as one PutBucketNotificationConfiguration."""

    TYPE = "Custom::S3BucketNotifications"

    def __init__(self, physical_id: str, bucket_name: str) -> None:
        super().__init__(physical_id)
        self.bucket_name = bucket_name

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> S3BucketNotifications:
        config = _notifications_from_api(p.get("NotificationConfiguration", {}))
        _s3(account, region).put_bucket_notification_configuration(p["BucketName"], config)
        return cls(name, p["BucketName"])

    def delete(self, account_id: str, region_name: str) -> None:
        backend = _s3(account_id, region_name)
        if self.bucket_name in backend.buckets:
            backend.put_bucket_notification_configuration(self.bucket_name, {})


class UnemulatedCustomResource(_ShimResource, CloudFormationModel):
    """Any other custom resource: succeeds without effect and without attributes (see the module docstring)."""

    TYPE = "AWS::CloudFormation::CustomResource"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        return None

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Props, account_id: str, region_name: str, **kwargs: Any
    ) -> UnemulatedCustomResource:
        resource_type = str(kwargs.get("ResourceType") or cls.TYPE)
        with _lock:
            first = resource_type not in _unemulated
            _unemulated.add(resource_type)
        if first:
            logger.warning("custom resource type %s is not emulated locally; it succeeds without effect", resource_type)
        return cls(resource_name)

    def modify(self, name: str, p: Props, account: str, region: str) -> _ShimResource:
        return self

    def delete(self, account_id: str, region_name: str) -> None:
        return None


#: Custom resource types this module emulates.
CUSTOM_RESOURCES: dict[str, type[CloudFormationModel]] = {
    model.TYPE: model for model in (S3AutoDeleteObjects, S3BucketNotifications)
}
#: Every type this module provisions, custom resources included.
MODELS: dict[str, type[CloudFormationModel]] = {
    model.cloudformation_type(): model
    for model in (
        S3Bucket,
        S3BucketPolicy,
        SqsQueuePolicy,
        SnsTopicPolicy,
        KmsKey,
        SageMakerPipeline,
        SageMakerModelPackageGroup,
        CloudWatchAlarm,
        SchedulerSchedule,
        S3AutoDeleteObjects,
        S3BucketNotifications,
    )
}


def _resource_class_from_type(resource_type: str) -> type[CloudFormationModel]:
    if resource_type in CUSTOM_RESOURCES:
        return CUSTOM_RESOURCES[resource_type]
    if resource_type.startswith("Custom::"):
        return UnemulatedCustomResource
    return _original_resource_class_from_type(resource_type)


def _link_exports(backend: Any) -> None:
    """Register the exports of every completed stack and let every stack import them.

    moto does both only for CreateStack: a stack made by a change set (how the CDK CLI deploys)
    has no outputs, exports nothing and resolves no ``Fn::ImportValue``.
    """
    exports: dict[str, Any] = {}
    for stack in backend.stacks.values():
        if stack.status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            continue
        if stack.template and stack.template_dict != stack.parse_template(stack.template):
            # ExecuteChangeSet sets the template but keeps the outputs of the one before.
            stack._parse_template()
            stack.output_map = stack._create_output_map()
        exports.update((export.name, export) for export in stack.exports)
    backend.exports.clear()  # in place: stacks hold a reference to this dict
    backend.exports.update(exports)
    for stack in backend.stacks.values():
        stack.cross_stack_resources = backend.exports
        stack.resource_map.cross_stack_resources = backend.exports


def _create_change_set(self: CloudFormationBackend, *args: Any, **kwargs: Any) -> tuple[str, str]:
    result = _original_create_change_set(self, *args, **kwargs)
    _link_exports(self)
    return result


def _execute_change_set(self: CloudFormationBackend, *args: Any, **kwargs: Any) -> None:
    _original_execute_change_set(self, *args, **kwargs)
    _link_exports(self)


def _update_stack(self: CloudFormationBackend, *args: Any, **kwargs: Any) -> Any:
    stack = _original_update_stack(self, *args, **kwargs)
    _link_exports(self)
    return stack


def install() -> None:
    """Make moto's CloudFormation (and S3 policy checks) in this process use this module. Idempotent.

    Raises:
        RuntimeError: if moto's type map does not pick these models (a moto change to follow here).
    """
    with _lock:
        _parsing.resource_class_from_type = _resource_class_from_type
        FakeBucket.get_permission = _bucket_permission  # type: ignore[method-assign,assignment]
        CloudFormationBackend.create_change_set = _create_change_set  # type: ignore[method-assign]
        CloudFormationBackend.execute_change_set = _execute_change_set  # type: ignore[method-assign]
        CloudFormationBackend.update_stack = _update_stack  # type: ignore[method-assign]
        for cached in (_parsing.get_model_list, _parsing.get_model_map, _parsing.get_name_type_map):
            cached.cache_clear()
        model_map = _parsing.get_model_map()
    wrong = sorted(t for t, model in MODELS.items() if t not in CUSTOM_RESOURCES and model_map.get(t) is not model)
    if wrong:
        raise RuntimeError(f"moto's CloudFormation type map does not use the local models for {wrong}")


def is_installed() -> bool:
    """Whether :func:`install` has routed moto's CloudFormation in this process to this module."""
    return _parsing.resource_class_from_type is _resource_class_from_type


def unemulated_custom_resources() -> list[str]:
    """Custom resource types deployed in this process that succeeded without any effect."""
    with _lock:
        return sorted(_unemulated)
