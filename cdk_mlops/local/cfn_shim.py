"""CloudFormation types that moto does not provision, registered on moto's own backends.

moto's CloudFormation builds its resource type map from ``CloudFormationModel.__subclasses__()``;
a type missing there is skipped with a warning, and the stack "completes" without it. Each
model below subclasses ``CloudFormationModel`` directly, so defining it registers its type (and
a later definition of a type replaces moto's). :func:`install` must run in the process that
serves the requests, before the first stack is created: it also routes ``Custom::`` types to the
emulations here (moto would invoke their Lambda in Docker), evaluates bucket policies as a TLS
request would be (below), links cross-stack exports for change-set deployments (moto does so
only for CreateStack, so every ``Fn::ImportValue`` of a CLI deployment failed) and clears
moto's type-map caches. It also makes moto's CloudFormation safe for the CLI's parallel stack
deployments: one CloudFormation request at a time (:data:`cloudformation_lock`), and a change
set looked up by its stack and name (moto took the name alone, which every CLI change set
shares, and executed one stack's change set for another); gives a deleted stack no outputs
(moto resolved them again, and so created the resources they name anew); and reports a Lambda
function's ``VpcConfig`` with the VPC of its subnets (moto said ``vpc-123abc``). It is idempotent.

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
``AWS::EC2::VPC``, ``AWS::EC2::Subnet``, ``AWS::EC2::RouteTable``, ``AWS::EC2::FlowLog``
    (replace moto's models, which ignored DNS settings, resolved no subnet attribute and
    deleted no route table or flow log, so a VPC stack could not be deleted) ``Ref`` and every
    ``Fn::GetAtt`` attribute CloudFormation documents, ``Tags``, ``EnableDnsSupport`` and
    ``EnableDnsHostnames`` (CloudFormation's defaults: on, off), ``MapPublicIpOnLaunch``;
    updates in place unless a create-only property changes. EC2's dependency checks apply on
    delete: a VPC with security groups or endpoints, a subnet with network interfaces.
``AWS::EC2::SubnetRouteTableAssociation``
    associates for real (moto's model only recorded the pair); ``Ref`` is the association id; a
    subnet takes one association, as in EC2.
``AWS::EC2::SecurityGroup``, ``AWS::EC2::SecurityGroupIngress``, ``AWS::EC2::SecurityGroupEgress``
    inline and separate rules with CIDR, security group or prefix-list peers and descriptions
    (moto had no egress type and ignored inline egress and prefix lists). A group with inline
    egress rules has those only; without, the allow-all egress EC2 gives a new group, which an
    egress rule resource removes, as CloudFormation does. A prefix list must exist, as in EC2,
    and a rule needs exactly one peer (one that resolved to nothing fails instead of vanishing).
    Rule resources' ``Ref`` and ``Id`` are the rule id; a group referenced by another group's
    rule or an endpoint is not deleted before them.
``AWS::EC2::VPCEndpoint``
    gateway (a route to the service's prefix list in each route table) or interface (a network
    interface per subnet, the VPC's default group when none is given); ``PolicyDocument`` stored
    as JSON (moto kept the object); EC2's checks: the service offers that endpoint type in the
    region, and private DNS needs DNS support and host names in the VPC. ``Fn::GetAtt``:
    ``Id``, ``CreationTimestamp``, ``DnsEntries`` (``zone:name``), ``NetworkInterfaceIds``.
``Custom::AWS`` (the CDK's ``AwsCustomResource``, and any custom type its provider serves)
    the declared SDK call of create, update and delete runs with boto3 on the local AWS, as the
    provider runs it (:mod:`cdk_mlops.local.aws_sdk_call`); ``Fn::GetAtt`` reads the flattened
    response (``PrefixLists.0.PrefixListId``).
``Custom::S3AutoDeleteObjects``
    on delete, empties the bucket (every version and delete marker) if it still carries the
    ``aws-cdk:auto-delete-objects=true`` tag, as the CDK's handler does.
``Custom::S3BucketNotifications``
    puts the notification configuration on the bucket, removes it on delete.

Not covered:

* Any other ``Custom::*`` or ``AWS::CloudFormation::CustomResource``: it succeeds without effect
  and without attributes (``Fn::GetAtt`` on it resolves to nothing); each such type is logged
  once and listed by :func:`unemulated_custom_resources`, and
  :func:`cdk_mlops.local.deploy.check_stack` fails the deployment on it. Its Lambda would need
  Docker, and a Lambda calling back to the server would need a bind beyond loopback.
* Types neither moto nor this module knows (``AWS::DynamoDB::GlobalTable``,
  ``AWS::SageMaker::MonitoringSchedule``, ``AWS::ApplicationAutoScaling::*``, ``AWS::Lambda::Url``,
  ``AWS::Pipes::Pipe``, ...): moto skips them; :func:`cdk_mlops.local.deploy.check_stack` reports them.
* Rollback: moto applies a template without rolling back when a resource fails.
* Deleting a stack, or removing an export, that another stack still imports is not refused.
* Bucket replication, inventory, analytics, intelligent tiering and website settings; KMS
  multi-region keys and rotation periods; alarms on metric math (``Metrics``).
* IPv6 and IPAM pools; internet, NAT and transit gateways and routes other than a gateway
  endpoint's (moto's models); a VPC endpoint whose subnets or route tables change is replaced
  (AWS modifies it in place; only its id differs).
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

import moto.cloudformation.parsing as _parsing  # imports every moto model first, so the models below win
from moto.awslambda.models import LambdaFunction
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.cloudformation.models import CloudFormationBackend, Stack
from moto.cloudformation.responses import CloudFormationResponse
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.common_models import CloudFormationModel
from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.exceptions import DependencyViolationError, EC2ClientError
from moto.ec2.models import ec2_backends
from moto.ec2.models.core import TaggedEC2Resource
from moto.iam.access_control import IAMPolicyStatement, PermissionResult
from moto.kms.models import kms_backends
from moto.s3.exceptions import BucketNeedsToBeNew
from moto.s3.models import FakeBucket, s3_backends
from moto.sagemaker.models import sagemaker_backends
from moto.scheduler.models import scheduler_backends
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends
from moto.utilities.utils import get_partition

from cdk_mlops.local.aws_sdk_call import REQUESTS, SdkCall, SdkCallError, SdkCallResult, execute, is_provider

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
_original_call_action = CloudFormationResponse.call_action
#: Held while a CloudFormation request runs: moto's CloudFormation state is not thread-safe, and the
#: CDK CLI deploys independent stacks at once (a change set created while another stack's was
#: executed failed with "OrderedDict mutated during iteration"). Reentrant: a custom resource's
#: SDK call runs on the request's thread.
cloudformation_lock = threading.RLock()
_original_lambda_vpc_config: property = LambdaFunction.vpc_config  # type: ignore[assignment]
_original_stack_outputs: property = Stack.outputs  # type: ignore[assignment]


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


# --- EC2: the network -----------------------------------------------------------------------------


def _ec2(account_id: str, region_name: str) -> Any:
    return ec2_backends[account_id][region_name]


@contextlib.contextmanager
def _deleted_if_gone() -> Iterator[None]:
    """Let an EC2 ``*.NotFound`` error pass: CloudFormation counts a resource already gone as deleted."""
    try:
        yield
    except EC2ClientError as error:
        if not str(getattr(error, "code", "")).endswith(".NotFound"):
            raise


def _live_endpoints(backend: Any) -> list[Any]:
    """The VPC endpoints not deleted (EC2 lists deleted ones for a while, in state ``deleted``)."""
    return [e for e in backend.vpc_end_points.values() if e.state != "deleted"]


class _Ec2Resource(_ShimResource, TaggedEC2Resource):
    """Base of the EC2 models that carry ``Tags`` (and the stack's ``aws:cloudformation:*`` tags).

    A model lists in ``CREATE_ONLY`` the properties whose change replaces the resource (from its
    resource schema) and applies the others in :meth:`update`, on create and on update.
    """

    CREATE_ONLY: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self, physical_id: str, account: str, region: str, p: Props, attributes: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(physical_id, attributes)
        self.id = physical_id
        self.ec2_backend = _ec2(account, region)
        self.properties: Props = dict(p)
        if _tags(p):
            self.ec2_backend.create_tags([self.id], {t["Key"]: t["Value"] for t in _tags(p)})

    def update(self, p: Props) -> None:
        """Apply the properties that change in place. Default: none (``Tags`` are the base's)."""

    def modify(self, name: str, p: Props, account: str, region: str) -> _ShimResource:
        if any(p.get(key) != self.properties.get(key) for key in self.CREATE_ONLY):
            return super().modify(name, p, account, region)
        self.update(p)
        new_tags = {t["Key"]: t["Value"] for t in _tags(p)}
        removed = [t["Key"] for t in _tags(self.properties) if t["Key"] not in new_tags]
        self.ec2_backend.delete_tag_keys([self.id], removed)
        if new_tags:
            self.ec2_backend.create_tags([self.id], new_tags)
        self.properties = dict(p)
        return self


class Ec2Vpc(_Ec2Resource, CloudFormationModel):
    """``AWS::EC2::VPC``: ``Ref`` is the VPC id; DNS support and host names as the template says."""

    TYPE = "AWS::EC2::VPC"
    ATTRIBUTES = frozenset(
        {"CidrBlock", "CidrBlockAssociations", "DefaultNetworkAcl", "DefaultSecurityGroup", "Ipv6CidrBlocks", "VpcId"}
    )
    CREATE_ONLY = frozenset({"CidrBlock", "Ipv4IpamPoolId", "Ipv4NetmaskLength"})

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> Ec2Vpc:
        if "CidrBlock" not in p:
            raise ValueError("AWS::EC2::VPC needs CidrBlock locally: IPAM pools are not emulated")
        backend = _ec2(account, region)
        vpc = backend.create_vpc(cidr_block=p["CidrBlock"], instance_tenancy=p.get("InstanceTenancy", "default"))
        acl = backend.describe_network_acls(filters={"vpc-id": [vpc.id], "default": ["true"]})
        attributes = {
            "CidrBlock": vpc.cidr_block,
            "CidrBlockAssociations": [a["association_id"] for a in vpc.cidr_block_association_set],
            "DefaultNetworkAcl": acl[0].id if acl else "",
            "DefaultSecurityGroup": backend.get_default_security_group(vpc.id).id,
            "Ipv6CidrBlocks": [],
            "VpcId": vpc.id,
        }
        resource = cls(vpc.id, account, region, p, attributes)
        resource.update(p)
        return resource

    def update(self, p: Props) -> None:
        # CloudFormation's defaults: DNS support on, DNS host names off.
        self.ec2_backend.modify_vpc_attribute(self.id, "enable_dns_support", _true(p.get("EnableDnsSupport", True)))
        self.ec2_backend.modify_vpc_attribute(
            self.id, "enable_dns_hostnames", _true(p.get("EnableDnsHostnames", False))
        )

    def delete(self, account_id: str, region_name: str) -> None:
        backend = _ec2(account_id, region_name)
        groups = [g.id for g in backend.describe_security_groups(filters={"vpc-id": [self.id]}) if not g.is_default]
        endpoints = [e.id for e in _live_endpoints(backend) if e.vpc_id == self.id]
        if groups or endpoints:  # moto would delete the VPC under them
            raise DependencyViolationError(f"The vpc '{self.id}' has dependencies and cannot be deleted.")
        with _deleted_if_gone():
            backend.delete_vpc(self.id)


class Ec2Subnet(_Ec2Resource, CloudFormationModel):
    """``AWS::EC2::Subnet``: ``Ref`` is the subnet id."""

    TYPE = "AWS::EC2::Subnet"
    ATTRIBUTES = frozenset(
        {
            "AvailabilityZone",
            "AvailabilityZoneId",
            "CidrBlock",
            "Ipv6CidrBlocks",
            "NetworkAclAssociationId",
            "SubnetId",
            "VpcId",
        }
    )
    CREATE_ONLY = frozenset({"VpcId", "AvailabilityZone", "AvailabilityZoneId", "CidrBlock", "Ipv6Native"})

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> Ec2Subnet:
        backend = _ec2(account, region)
        subnet = backend.create_subnet(
            vpc_id=p["VpcId"],
            cidr_block=p["CidrBlock"],
            availability_zone=p.get("AvailabilityZone"),
            availability_zone_id=p.get("AvailabilityZoneId"),
        )
        acl_associations = [
            association.id
            for acl in backend.network_acls.values()
            for association in acl.associations
            if association.subnet_id == subnet.id
        ]
        attributes = {
            "AvailabilityZone": subnet.availability_zone,
            "AvailabilityZoneId": subnet.availability_zone_id,
            "CidrBlock": subnet.cidr_block,
            "Ipv6CidrBlocks": [],
            "NetworkAclAssociationId": acl_associations[0] if acl_associations else "",
            "SubnetId": subnet.id,
            "VpcId": subnet.vpc_id,
        }
        resource = cls(subnet.id, account, region, p, attributes)
        resource.update(p)
        return resource

    def update(self, p: Props) -> None:
        self.ec2_backend.modify_subnet_attribute(
            self.id, "map_public_ip_on_launch", _true(p.get("MapPublicIpOnLaunch", False))
        )

    def delete(self, account_id: str, region_name: str) -> None:
        backend = _ec2(account_id, region_name)
        interfaces = [eni.id for eni in backend.get_all_network_interfaces() if eni.subnet.id == self.id]
        if interfaces:  # interface endpoints' network interfaces, as in EC2
            raise DependencyViolationError(f"The subnet '{self.id}' has dependencies and cannot be deleted.")
        with _deleted_if_gone():
            backend.delete_subnet(self.id)


class Ec2RouteTable(_Ec2Resource, CloudFormationModel):
    """``AWS::EC2::RouteTable``: ``Ref`` is the route table id (moto's model never deleted it)."""

    TYPE = "AWS::EC2::RouteTable"
    ATTRIBUTES = frozenset({"RouteTableId"})
    CREATE_ONLY = frozenset({"VpcId"})

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> Ec2RouteTable:
        table = _ec2(account, region).create_route_table(vpc_id=p["VpcId"])
        return cls(table.id, account, region, p, {"RouteTableId": table.id})

    def delete(self, account_id: str, region_name: str) -> None:
        backend = _ec2(account_id, region_name)
        if any(self.id in (e.route_table_ids or []) for e in _live_endpoints(backend)):
            # The endpoint references the table, so CloudFormation deletes it first; moto's delete
            # tries resources in any order and retries those that refuse.
            raise DependencyViolationError(f"The routeTable '{self.id}' has dependencies and cannot be deleted.")
        with _deleted_if_gone():
            backend.delete_route_table(self.id)


class Ec2SubnetRouteTableAssociation(_ShimResource, CloudFormationModel):
    """``AWS::EC2::SubnetRouteTableAssociation``: ``Ref`` is the association id.

    moto's model only recorded the pair: the route table listed no association.
    """

    TYPE = "AWS::EC2::SubnetRouteTableAssociation"
    ATTRIBUTES = frozenset({"Id"})

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> Ec2SubnetRouteTableAssociation:
        backend = _ec2(account, region)
        associated = backend.describe_route_tables(filters={"association.subnet-id": [p["SubnetId"]]})
        if associated:
            raise EC2ClientError(
                "Resource.AlreadyAssociated",
                f"the specified association for route table {associated[0].id} conflicts with an existing association",
            )
        association_id = backend.associate_route_table(p["RouteTableId"], subnet_id=p["SubnetId"])
        return cls(association_id, {"Id": association_id})

    def delete(self, account_id: str, region_name: str) -> None:
        with _deleted_if_gone():
            _ec2(account_id, region_name).disassociate_route_table(self.physical_resource_id)


def _rule_arguments(rule: Mapping[str, Any], *, egress: bool) -> dict[str, Any]:
    """moto's ``authorize_security_group_*`` arguments for one rule (inline, or a rule resource's properties).

    Raises:
        ValueError: unless the rule names exactly one peer: EC2 takes one per rule, and a peer that
            resolved to nothing locally (an unemulated ``Fn::GetAtt``) would otherwise pass unseen.
    """
    extra = {"Description": rule["Description"]} if rule.get("Description") else {}
    group_key, prefix_key = (
        ("DestinationSecurityGroupId", "DestinationPrefixListId")
        if egress
        else ("SourceSecurityGroupId", "SourcePrefixListId")
    )
    ip_ranges = [{key: rule[key], **extra} for key in ("CidrIp", "CidrIpv6") if rule.get(key)]
    groups = [{"GroupId": rule[group_key], **extra}] if rule.get(group_key) else []
    if not egress and rule.get("SourceSecurityGroupName"):
        groups.append({"GroupName": rule["SourceSecurityGroupName"], **extra})
    prefix_lists = [{"PrefixListId": rule[prefix_key], **extra}] if rule.get(prefix_key) else []
    peers = len(ip_ranges) + len(groups) + len(prefix_lists)
    if peers != 1:
        kinds = f"CidrIp, CidrIpv6, {group_key}, {prefix_key}" + ("" if egress else " or SourceSecurityGroupName")
        raise ValueError(f"a security group rule needs exactly one of {kinds}; got {peers}: {dict(rule)}")
    return {
        "ip_protocol": str(rule["IpProtocol"]),
        "from_port": rule.get("FromPort"),
        "to_port": rule.get("ToPort"),
        "ip_ranges": ip_ranges,
        "source_groups": groups,
        "prefix_list_ids": prefix_lists,
    }


def _authorize(backend: Any, group_id: str, rule: Mapping[str, Any], *, egress: bool) -> list[str]:
    """Add one rule to a group, as EC2 does (a prefix list must exist); return the new rule ids."""
    arguments = _rule_arguments(rule, egress=egress)
    for prefix_list in arguments["prefix_list_ids"]:
        if prefix_list["PrefixListId"] not in backend.managed_prefix_lists:  # moto does not check
            raise EC2ClientError(
                "InvalidPrefixListID.NotFound", f"The prefix list ID '{prefix_list['PrefixListId']}' does not exist"
            )
    authorize = backend.authorize_security_group_egress if egress else backend.authorize_security_group_ingress
    rules, _ = authorize(group_name_or_id=group_id, **arguments)
    return [r.id for r in rules]


def _revoke(backend: Any, group_id: str, rule_ids: Iterable[str], *, egress: bool) -> None:
    ids = list(rule_ids)
    if ids:
        revoke = backend.revoke_security_group_egress if egress else backend.revoke_security_group_ingress
        revoke(group_id, None, None, None, [], security_rule_ids=ids)


def _revoke_allow_all_egress(backend: Any, group_id: str) -> None:
    """Remove the allow-all egress rules a new VPC group starts with."""
    group = backend.get_security_group_from_id(group_id)
    allow_all = [
        r.id
        for r in group.egress_rules
        if r.ip_protocol == "-1" and (r.ip_range.get("CidrIp") == "0.0.0.0/0" or r.ip_range.get("CidrIpv6") == "::/0")
    ]
    _revoke(backend, group_id, allow_all, egress=True)


class Ec2SecurityGroup(_Ec2Resource, CloudFormationModel):
    """``AWS::EC2::SecurityGroup``: ``Ref`` is the group id (its name without ``VpcId``).

    Inline ``SecurityGroupIngress`` and ``SecurityGroupEgress`` rules with every peer kind, as
    CloudFormation applies them: with egress rules in the template the group has those only;
    without, it keeps the allow-all egress EC2 gives a new group (moto's model ignored inline
    egress, prefix lists and descriptions). Updates replace the inline rules in place.
    """

    TYPE = "AWS::EC2::SecurityGroup"
    NAME_PROPERTY = "GroupName"
    ATTRIBUTES = frozenset({"GroupId", "Id", "VpcId"})
    CREATE_ONLY = frozenset({"GroupDescription", "GroupName", "VpcId"})

    def __init__(self, group: Any, account: str, region: str, p: Props, physical_id: str) -> None:
        attributes = {"GroupId": group.id, "Id": group.id, "VpcId": group.vpc_id}
        super().__init__(group.id, account, region, p, attributes)
        self.physical_resource_id = physical_id
        self.inline: list[tuple[str, bool]] = []  # (rule id, egress) of the template's own rules

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> Ec2SecurityGroup:
        group = _ec2(account, region).create_security_group(
            name=name, description=p["GroupDescription"], vpc_id=p.get("VpcId")
        )
        resource = cls(group, account, region, p, group.id if p.get("VpcId") else name)
        resource.update(p)
        return resource

    def update(self, p: Props) -> None:
        backend = self.ec2_backend
        for egress in (False, True):
            _revoke(backend, self.id, [rule for rule, e in self.inline if e is egress], egress=egress)
        egress_rules = p.get("SecurityGroupEgress") or []
        if egress_rules:
            _revoke_allow_all_egress(backend, self.id)
        self.inline = [
            (rule_id, egress)
            for egress, rules in ((False, p.get("SecurityGroupIngress") or []), (True, egress_rules))
            for rule in rules
            for rule_id in _authorize(backend, self.id, rule, egress=egress)
        ]

    def delete(self, account_id: str, region_name: str) -> None:
        backend = _ec2(account_id, region_name)
        referenced = [
            g.id
            for g in backend.describe_security_groups()
            if g.id != self.id
            and any(r.source_group.get("GroupId") == self.id for r in [*g.ingress_rules, *g.egress_rules])
        ]
        endpoints = [e.id for e in _live_endpoints(backend) if self.id in e.security_group_ids]
        if referenced or endpoints:  # as in EC2; moto would delete it
            raise DependencyViolationError(
                f"resource {self.id} has a dependent object ({', '.join([*referenced, *endpoints])})"
            )
        with _deleted_if_gone():
            backend.delete_security_group(group_id=self.id)


class _SecurityGroupRule(_ShimResource):
    """A rule resource: ``Ref`` and ``Id`` are the rule id (``sgr-...``); any change replaces it."""

    EGRESS: ClassVar[bool]
    ATTRIBUTES = frozenset({"Id"})

    def __init__(self, rule_id: str, group_id: str) -> None:
        super().__init__(rule_id, {"Id": rule_id})
        self.group_id = group_id

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> _SecurityGroupRule:
        backend = _ec2(account, region)
        group = backend.get_security_group_by_name_or_id(p.get("GroupId") or p["GroupName"])
        if group is None:
            raise EC2ClientError("InvalidGroup.NotFound", f"The security group '{p.get('GroupId')}' does not exist")
        if cls.EGRESS:
            # CloudFormation removes the allow-all egress of the group before adding a rule resource.
            _revoke_allow_all_egress(backend, group.id)
        [rule_id] = _authorize(backend, group.id, p, egress=cls.EGRESS)
        return cls(rule_id, group.id)

    def delete(self, account_id: str, region_name: str) -> None:
        with _deleted_if_gone():
            _revoke(_ec2(account_id, region_name), self.group_id, [self.physical_resource_id], egress=self.EGRESS)


class Ec2SecurityGroupIngress(_SecurityGroupRule, CloudFormationModel):
    """``AWS::EC2::SecurityGroupIngress``, from a CIDR, a security group or a prefix list."""

    TYPE = "AWS::EC2::SecurityGroupIngress"
    EGRESS = False


class Ec2SecurityGroupEgress(_SecurityGroupRule, CloudFormationModel):
    """``AWS::EC2::SecurityGroupEgress``, to a CIDR, a security group or a prefix list (moto has no model)."""

    TYPE = "AWS::EC2::SecurityGroupEgress"
    EGRESS = True


def _check_endpoint_service(backend: Any, service_name: str, endpoint_type: str, region: str) -> None:
    """EC2's checks: the service offers endpoints of that type in the region (moto checks neither)."""
    details = backend.describe_vpc_endpoint_services(
        service_names=[service_name], filters=[], max_results=1000, next_token=None, region=region
    )["servicesDetails"]
    offered = {t["ServiceType"] for d in details for t in d["ServiceType"]}
    if endpoint_type not in offered:
        raise EC2ClientError(
            "InvalidParameter",
            f"The Vpc Endpoint Service '{service_name}' does not support endpoint type {endpoint_type} "
            f"(it offers {', '.join(sorted(offered))})",
        )


def _private_dns(backend: Any, vpc_id: str, endpoint_type: str, p: Props) -> bool:
    """``PrivateDnsEnabled`` (CloudFormation's default: false), which EC2 allows only with DNS on in the VPC."""
    if endpoint_type != "Interface" or not _true(p.get("PrivateDnsEnabled", False)):
        return False
    vpc = backend.get_vpc(vpc_id)
    if not (_true(vpc.enable_dns_support) and _true(vpc.enable_dns_hostnames)):
        raise EC2ClientError(
            "InvalidParameter",
            f"Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC attributes set to "
            f"true for {vpc_id}",
        )
    return True


class Ec2VpcEndpoint(_Ec2Resource, CloudFormationModel):
    """``AWS::EC2::VPCEndpoint``, gateway or interface: ``Ref`` is the endpoint id.

    EC2's checks apply: the service offers the endpoint type in the region, private DNS needs
    DNS support and host names on the VPC; an interface endpoint without groups gets the VPC's
    default group. The policy is stored as JSON; a gateway endpoint adds its prefix list route
    to its route tables, an interface endpoint a network interface per subnet. Changed subnets
    or route tables replace the endpoint (AWS modifies it in place; only the id differs).
    """

    TYPE = "AWS::EC2::VPCEndpoint"
    ATTRIBUTES = frozenset({"CreationTimestamp", "DnsEntries", "Id", "NetworkInterfaceIds"})
    CREATE_ONLY = frozenset({"ServiceName", "VpcEndpointType", "VpcId", "SubnetIds", "RouteTableIds"})

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> Ec2VpcEndpoint:
        backend = _ec2(account, region)
        endpoint_type = p.get("VpcEndpointType", "Gateway")
        _check_endpoint_service(backend, p["ServiceName"], endpoint_type, region)
        private_dns = _private_dns(backend, p["VpcId"], endpoint_type, p)
        groups = list(p.get("SecurityGroupIds") or [])
        if endpoint_type == "Interface" and not groups:
            groups = [backend.get_default_security_group(p["VpcId"]).id]
        endpoint = backend.create_vpc_endpoint(
            vpc_id=p["VpcId"],
            service_name=p["ServiceName"],
            endpoint_type=endpoint_type,
            policy_document=_as_json(p["PolicyDocument"]) if "PolicyDocument" in p else None,
            route_table_ids=list(p.get("RouteTableIds") or []),
            subnet_ids=list(p.get("SubnetIds") or []),
            security_group_ids=groups,
            private_dns_enabled=private_dns,
        )
        attributes = {
            "CreationTimestamp": endpoint.creation_timestamp.isoformat(),
            "DnsEntries": [f"{e['hosted_zone_id']}:{e['dns_name']}" for e in endpoint.dns_entries or []],
            "Id": endpoint.id,
            "NetworkInterfaceIds": list(endpoint.network_interface_ids),
        }
        resource = cls(endpoint.id, account, region, p, attributes)
        resource.update(p)
        return resource

    def update(self, p: Props) -> None:
        endpoint = self.ec2_backend.vpc_end_points[self.id]
        if "PolicyDocument" in p:
            endpoint.policy_document = _as_json(p["PolicyDocument"])
        endpoint.private_dns_enabled = _private_dns(self.ec2_backend, endpoint.vpc_id, endpoint.vpc_endpoint_type, p)
        if p.get("SecurityGroupIds"):
            endpoint.security_group_ids = list(p["SecurityGroupIds"])

    def delete(self, account_id: str, region_name: str) -> None:
        _ec2(account_id, region_name).delete_vpc_endpoints([self.id])


class Ec2FlowLog(_Ec2Resource, CloudFormationModel):
    """``AWS::EC2::FlowLog``: ``Ref`` is the flow log id; deleted with the stack (moto's model never was)."""

    TYPE = "AWS::EC2::FlowLog"
    ATTRIBUTES = frozenset({"Id"})
    CREATE_ONLY = frozenset(
        {
            "DeliverCrossAccountRole",
            "DeliverLogsPermissionArn",
            "DestinationOptions",
            "LogDestination",
            "LogDestinationType",
            "LogFormat",
            "LogGroupName",
            "MaxAggregationInterval",
            "ResourceId",
            "ResourceType",
            "TrafficType",
        }
    )

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> Ec2FlowLog:
        flow_logs, errors = _ec2(account, region).create_flow_logs(
            resource_type=p["ResourceType"],
            resource_ids=[p["ResourceId"]],
            traffic_type=p.get("TrafficType"),
            deliver_logs_permission_arn=p.get("DeliverLogsPermissionArn"),
            log_destination_type=p.get("LogDestinationType", "cloud-watch-logs"),
            log_destination=p.get("LogDestination"),
            log_group_name=p.get("LogGroupName"),
            log_format=p.get("LogFormat"),
            max_aggregation_interval=p.get("MaxAggregationInterval"),
        )
        if errors:
            raise EC2ClientError("InvalidParameter", f"flow log for {p['ResourceId']} not created: {errors}")
        return cls(flow_logs[0].id, account, region, p, {"Id": flow_logs[0].id})

    def delete(self, account_id: str, region_name: str) -> None:
        with _deleted_if_gone():
            _ec2(account_id, region_name).delete_flow_logs([self.id])


def _lambda_vpc_config(function: Any) -> dict[str, Any] | None:
    """``VpcConfig`` of a Lambda function with the VPC of its subnets (moto answers ``vpc-123abc``)."""
    config: dict[str, Any] | None = _original_lambda_vpc_config.__get__(function, type(function))
    subnets = (config or {}).get("SubnetIds") or []
    if config and subnets:
        with contextlib.suppress(EC2ClientError):
            config["VpcId"] = _ec2(function.account_id, function.region).get_subnet(subnets[0]).vpc_id
    return config


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


class AwsSdkCustomResource(_ShimResource, CloudFormationModel):
    """``Custom::AWS`` (the CDK's ``AwsCustomResource``): its SDK calls, made on the local AWS.

    On create, update and delete, the call of that request runs as the provider runs it
    (:func:`cdk_mlops.local.aws_sdk_call.execute`); ``Fn::GetAtt`` reads the flattened response
    (``PrefixLists.0.PrefixListId``). A new physical id on update deletes the old resource, as
    CloudFormation does. A custom resource of another type whose ``ServiceToken`` is the
    ``AwsCustomResource`` provider is emulated the same way.
    """

    TYPE = "Custom::AWS"

    def __init__(self, result: SdkCallResult, logical_id: str, calls: Mapping[str, SdkCall | None]) -> None:
        super().__init__(result.physical_id, result.data)
        self.logical_id = logical_id
        self.calls = dict(calls)

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name not in self.attributes:
            raise SdkCallError(
                f"Fn::GetAtt {self.logical_id}.{attribute_name}: the response data of the AwsCustomResource has no "
                f"key {attribute_name!r} (it has {sorted(self.attributes)}); name it in outputPaths"
            )
        return self.attributes[attribute_name]

    @staticmethod
    def _calls(p: Props) -> dict[str, SdkCall | None]:
        return {request: SdkCall.parse(p.get(request)) for request in REQUESTS}

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Props, account_id: str, region_name: str, **kwargs: Any
    ) -> AwsSdkCustomResource:
        logical_id = str(kwargs.get("LogicalId") or resource_name)
        calls = cls._calls(cloudformation_json.get("Properties", {}))
        result = execute("Create", calls, logical_id=logical_id, account_id=account_id, region=region_name)
        return cls(result, logical_id, calls)

    def modify(self, name: str, p: Props, account: str, region: str) -> _ShimResource:
        calls = self._calls(p)
        result = execute(
            "Update",
            calls,
            logical_id=self.logical_id,
            account_id=account,
            region=region,
            current=self.physical_resource_id,
        )
        if result.physical_id != self.physical_resource_id:
            self.delete(account, region)
        return AwsSdkCustomResource(result, self.logical_id, calls)

    def delete(self, account_id: str, region_name: str) -> None:
        execute(
            "Delete",
            self.calls,
            logical_id=self.logical_id,
            account_id=account_id,
            region=region_name,
            current=self.physical_resource_id,
        )


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
    ) -> _ShimResource:
        if is_provider(cloudformation_json.get("Properties", {}).get("ServiceToken")):
            return AwsSdkCustomResource.create_from_cloudformation_json(
                resource_name, cloudformation_json, account_id, region_name, **kwargs
            )
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
    model.TYPE: model for model in (S3AutoDeleteObjects, S3BucketNotifications, AwsSdkCustomResource)
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
        Ec2Vpc,
        Ec2Subnet,
        Ec2RouteTable,
        Ec2SubnetRouteTableAssociation,
        Ec2SecurityGroup,
        Ec2SecurityGroupIngress,
        Ec2SecurityGroupEgress,
        Ec2VpcEndpoint,
        Ec2FlowLog,
        S3AutoDeleteObjects,
        S3BucketNotifications,
        AwsSdkCustomResource,
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


def _change_set_id(response: CloudFormationResponse) -> str:
    """The id of the change set a request names: ``ChangeSetName`` (a name or an id) of ``StackName``.

    moto looks a change set up by its name alone, and the CDK CLI gives every stack's change set
    the same name: deploying two stacks at once executed one stack's change set for the other.
    """
    name = str(response._get_param("ChangeSetName"))
    stack = response._get_param("StackName")
    change_sets = response.cloudformation_backend.change_sets
    if name in change_sets or not stack:
        return name
    matches = [i for i, c in change_sets.items() if c.change_set_name == name and stack in (c.stack_name, c.stack_id)]
    return matches[-1] if matches else name


def _call_action_alone(self: CloudFormationResponse) -> Any:
    with cloudformation_lock:
        return _original_call_action(self)


def _describe_change_set(self: CloudFormationResponse) -> ActionResult:
    return ActionResult(self.cloudformation_backend.describe_change_set(change_set_name=_change_set_id(self)))


def _delete_change_set(self: CloudFormationResponse) -> EmptyResult:
    self.cloudformation_backend.delete_change_set(change_set_name=_change_set_id(self))
    return EmptyResult()


def _execute_change_set_request(self: CloudFormationResponse) -> EmptyResult:
    self.cloudformation_backend.execute_change_set(
        change_set_name=_change_set_id(self), stack_name=self._get_param("StackName")
    )
    return EmptyResult()


def _stack_outputs(stack: Stack) -> list[dict[str, Any]] | None:
    """A stack's outputs; none once it is deleted.

    moto resolved a deleted stack's outputs against its emptied resources, and so created every
    resource an output refers to again (a VPC and all it needs) when the CLI described the
    stack after deleting it.
    """
    if stack.status == "DELETE_COMPLETE":
        return None
    outputs: list[dict[str, Any]] | None = _original_stack_outputs.__get__(stack, Stack)
    return outputs


def _update_stack(self: CloudFormationBackend, *args: Any, **kwargs: Any) -> Any:
    stack = _original_update_stack(self, *args, **kwargs)
    _link_exports(self)
    return stack


def install() -> None:
    """Make moto in this process use this module (CloudFormation, S3 policy checks, Lambda VPC config). Idempotent.

    Raises:
        RuntimeError: if moto's type map does not pick these models (a moto change to follow here).
    """
    with _lock:
        _parsing.resource_class_from_type = _resource_class_from_type
        FakeBucket.get_permission = _bucket_permission  # type: ignore[method-assign,assignment]
        LambdaFunction.vpc_config = property(_lambda_vpc_config)  # type: ignore[method-assign,assignment]
        Stack.outputs = property(_stack_outputs)  # type: ignore[method-assign,assignment]
        CloudFormationBackend.create_change_set = _create_change_set  # type: ignore[method-assign]
        CloudFormationBackend.execute_change_set = _execute_change_set  # type: ignore[method-assign]
        CloudFormationBackend.update_stack = _update_stack  # type: ignore[method-assign]
        CloudFormationResponse.call_action = _call_action_alone  # type: ignore[method-assign,assignment]
        CloudFormationResponse.describe_change_set = _describe_change_set  # type: ignore[method-assign]
        CloudFormationResponse.delete_change_set = _delete_change_set  # type: ignore[method-assign]
        CloudFormationResponse.execute_change_set = _execute_change_set_request  # type: ignore[method-assign]
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
