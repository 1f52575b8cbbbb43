"""``AWS::S3::Bucket``: moto's bucket model plus the bucket settings it ignores.

moto's model applies only encryption and tags. :class:`S3Bucket` replaces it and applies, on
create and update (a removed setting is cleared), ``VersioningConfiguration``, object lock,
``LifecycleConfiguration``, ``PublicAccessBlockConfiguration``, ``OwnershipControls``,
``LoggingConfiguration``, ``NotificationConfiguration``, ``CorsConfiguration``,
``InventoryConfigurations`` and ``BucketEncryption`` with ``BucketKeyEnabled``, each translated
from its CloudFormation shape to the S3 API shape moto's backend stores. moto's inventory
configurations lose ``IncludedObjectVersions``, so each is also kept in its CloudFormation shape
for the local inventory delivery (:func:`inventory_configurations`). Delete refuses a bucket
that holds objects, as S3 does.
The custom resources that act on buckets (:mod:`cdk_mlops.local.cfn_custom`) use
:func:`notifications_from_api` and :func:`empty_bucket`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.s3.exceptions import BucketNeedsToBeNew
from moto.s3.models import FakeBucket

from cdk_mlops.local.cfn_resource import Props, cfn_tags, is_true, s3_backend

logger = logging.getLogger(__name__)


class BucketNotEmptyError(Exception):
    """S3 refuses to delete a bucket that holds objects; CloudFormation then fails the deletion."""


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
    if is_true(config.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled")):
        stored["EventBridgeConfiguration"] = {}
    return stored


def notifications_from_api(config: Mapping[str, Any]) -> dict[str, Any]:
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
    backend = s3_backend(account_id, region_name)
    name = bucket.name
    lock = properties.get("ObjectLockConfiguration", {})
    lock_enabled = is_true(properties.get("ObjectLockEnabled")) or lock.get("ObjectLockEnabled") == "Enabled"
    versioning = properties.get("VersioningConfiguration", {}).get("Status")
    if versioning or lock_enabled:
        backend.put_bucket_versioning(name, "Enabled" if lock_enabled else versioning)
    if lock_enabled:
        retention = lock.get("Rule", {}).get("DefaultRetention", {})
        try:
            backend.put_object_lock_configuration(
                # moto's own API path passes 0 for the unit not given; None fails every later PutObject.
                name,
                True,
                mode=retention.get("Mode"),
                days=retention.get("Days") or 0,
                years=retention.get("Years") or 0,
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
        backend.put_public_access_block(name, {k: is_true(v) for k, v in block.items()})
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
    _apply_inventory(backend, bucket, properties.get("InventoryConfigurations") or ())


# The attribute of moto's bucket that keeps the inventory configurations as the template gave them.
_INVENTORY_ATTRIBUTE = "cdk_mlops_inventory_configurations"


def _apply_inventory(backend: Any, bucket: Any, configurations: Iterable[Mapping[str, Any]]) -> None:
    """Set the bucket's inventory configurations (and clear removed ones), in both shapes."""
    kept = {c["Id"]: dict(c) for c in configurations}
    bucket.inventory_configs.clear()
    for id, c in kept.items():
        destination = c["Destination"]
        s3_destination = {"Bucket": destination["BucketArn"], "Format": destination["Format"]}
        for cfn_key, api_key in (("BucketAccountId", "AccountId"), ("Prefix", "Prefix")):
            if destination.get(cfn_key):
                s3_destination[api_key] = destination[cfn_key]
        api: dict[str, Any] = {
            "Id": id,
            "Destination": {"S3BucketDestination": s3_destination},
            "IsEnabled": is_true(c.get("Enabled")),
            "IncludedObjectVersions": c["IncludedObjectVersions"],
            "Schedule": {"Frequency": c["ScheduleFrequency"]},
        }
        if c.get("Prefix"):
            api["Filter"] = {"Prefix": c["Prefix"]}
        if c.get("OptionalFields"):
            api["OptionalFields"] = list(c["OptionalFields"])
        backend.put_bucket_inventory_configuration(bucket.name, api)
    setattr(bucket, _INVENTORY_ATTRIBUTE, kept)


def inventory_configurations(account_id: str, region_name: str, bucket_name: str) -> dict[str, dict[str, Any]]:
    """A deployed bucket's inventory configurations by id, in their CloudFormation shape."""
    bucket = s3_backend(account_id, region_name).get_bucket(bucket_name)
    return dict(getattr(bucket, _INVENTORY_ATTRIBUTE, {}))


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
        s3_backend(account_id, region_name).put_bucket_tagging(
            name, {t["Key"]: t["Value"] for t in cfn_tags(properties)}
        )
        _apply_bucket_properties(original_resource, properties, account_id, region_name)
        return original_resource  # type: ignore[no-any-return]

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Props, account_id: str, region_name: str
    ) -> None:
        backend = s3_backend(account_id, region_name)
        if resource_name in backend.buckets and backend.delete_bucket(resource_name) is None:
            raise BucketNotEmptyError(f"The bucket you tried to delete is not empty: {resource_name}")

    def is_created(self) -> bool:
        return True


def empty_bucket(account_id: str, region_name: str, bucket_name: str) -> None:
    """Delete every object version and delete marker in a bucket."""
    backend = s3_backend(account_id, region_name)
    while True:
        versions, _, markers, _, _ = backend.list_object_versions(bucket_name, max_keys=1000)
        if not versions and not markers:
            return
        for item in [*versions, *markers]:
            backend.delete_object(bucket_name, item.name, version_id=item.version_id, bypass=True)
