"""Custom resources: which ``Custom::`` types run locally, how, and what happens to the others.

CloudFormation hands a custom resource to its provider's Lambda, which moto would run in Docker
(and a Lambda calling back to the server would need a bind beyond loopback). Instead,
:func:`resource_class_from_type`, which :func:`cdk_mlops.local.cfn_shim.install` puts in place
of moto's type lookup, routes each ``Custom::`` type to an emulation of what its provider does:

``Custom::AWS`` (the CDK's ``AwsCustomResource``, and any custom type its provider serves)
    the declared SDK call of create, update and delete runs with boto3 on the local AWS, as the
    provider runs it (:mod:`cdk_mlops.local.aws_sdk_call`); ``Fn::GetAtt`` reads the flattened
    response (``PrefixLists.0.PrefixListId``).
``Custom::S3AutoDeleteObjects``
    on delete, empties the bucket (every version and delete marker) if it still carries the
    ``aws-cdk:auto-delete-objects=true`` tag, as the CDK's handler does.
``Custom::S3BucketNotifications``
    puts the notification configuration on the bucket, removes it on delete.
``Custom::ExplainabilityAnalysisConfig`` (and any custom type served by a local function of ``cdk_mlops.lambdas``)
    the function's handler runs in this process on CloudFormation's create, update and delete
    requests, as Lambda runs it, and its answer decides (:mod:`cdk_mlops.local.cfn_function_custom`):
    ``Fn::GetAtt`` reads its ``Data``, and ``FAILED`` fails the stack operation with its reason.

Any other custom type succeeds without effect and without attributes; each is logged once and
listed by :func:`unemulated_custom_resources`, and :func:`cdk_mlops.local.deploy.check_stack`
fails the deployment on it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import moto.cloudformation.parsing as _parsing
from moto.core.common_models import CloudFormationModel

from cdk_mlops.local.aws_sdk_call import REQUESTS, SdkCall, SdkCallError, SdkCallResult, execute, is_provider
from cdk_mlops.local.cfn_function_custom import LocalFunctionCustomResource, is_local_function
from cdk_mlops.local.cfn_resource import Props, ShimResource, s3_backend
from cdk_mlops.local.cfn_s3 import empty_bucket, notifications_from_api

logger = logging.getLogger(__name__)

#: The tag the CDK puts on a bucket whose objects its custom resource may delete.
AUTO_DELETE_TAG = "aws-cdk:auto-delete-objects"

_lock = threading.Lock()
_unemulated: set[str] = set()
_original_resource_class_from_type = _parsing.resource_class_from_type


class S3AutoDeleteObjects(ShimResource, CloudFormationModel):
    """``Custom::S3AutoDeleteObjects``: on delete, empty the bucket if it is still tagged for it."""

    TYPE = "Custom::S3AutoDeleteObjects"

    def __init__(self, physical_id: str, bucket_name: str) -> None:
        super().__init__(physical_id)
        self.bucket_name = bucket_name

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> S3AutoDeleteObjects:
        return cls(name, p["BucketName"])

    def modify(self, name: str, p: Props, account: str, region: str) -> ShimResource:
        return self.provision(self.physical_resource_id, p, account, region)

    def delete(self, account_id: str, region_name: str) -> None:
        backend = s3_backend(account_id, region_name)
        if self.bucket_name not in backend.buckets:
            return
        tags = backend.get_bucket_tagging(self.bucket_name).get("Tags", [])
        if {"Key": AUTO_DELETE_TAG, "Value": "true"} not in tags:
            logger.info("bucket %s is not tagged %s=true; its objects stay", self.bucket_name, AUTO_DELETE_TAG)
            return
        empty_bucket(account_id, region_name, self.bucket_name)


class S3BucketNotifications(ShimResource, CloudFormationModel):
    """``Custom::S3BucketNotifications``: the CDK's handler as one PutBucketNotificationConfiguration."""

    TYPE = "Custom::S3BucketNotifications"

    def __init__(self, physical_id: str, bucket_name: str) -> None:
        super().__init__(physical_id)
        self.bucket_name = bucket_name

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> S3BucketNotifications:
        config = notifications_from_api(p.get("NotificationConfiguration", {}))
        s3_backend(account, region).put_bucket_notification_configuration(p["BucketName"], config)
        return cls(name, p["BucketName"])

    def delete(self, account_id: str, region_name: str) -> None:
        backend = s3_backend(account_id, region_name)
        if self.bucket_name in backend.buckets:
            backend.put_bucket_notification_configuration(self.bucket_name, {})


class AwsSdkCustomResource(ShimResource, CloudFormationModel):
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

    def modify(self, name: str, p: Props, account: str, region: str) -> ShimResource:
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


class UnemulatedCustomResource(ShimResource, CloudFormationModel):
    """Any other custom resource: succeeds without effect and without attributes (see the module docstring).

    A custom type whose ``ServiceToken`` is the ``AwsCustomResource`` provider, or a local function of
    ``cdk_mlops.lambdas``, is handed to that emulation instead.
    """

    TYPE = "AWS::CloudFormation::CustomResource"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        return None

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Props, account_id: str, region_name: str, **kwargs: Any
    ) -> ShimResource:
        if is_provider(cloudformation_json.get("Properties", {}).get("ServiceToken")):
            return AwsSdkCustomResource.create_from_cloudformation_json(
                resource_name, cloudformation_json, account_id, region_name, **kwargs
            )
        if is_local_function(cloudformation_json.get("Properties", {}).get("ServiceToken")):
            return LocalFunctionCustomResource.create_from_cloudformation_json(
                resource_name, cloudformation_json, account_id, region_name, **kwargs
            )
        resource_type = str(kwargs.get("ResourceType") or cls.TYPE)
        with _lock:
            first = resource_type not in _unemulated
            _unemulated.add(resource_type)
        if first:
            logger.warning("custom resource type %s is not emulated locally; it succeeds without effect", resource_type)
        return cls(resource_name)

    def modify(self, name: str, p: Props, account: str, region: str) -> ShimResource:
        return self

    def delete(self, account_id: str, region_name: str) -> None:
        return None


#: Custom resource types emulated locally.
CUSTOM_RESOURCES: dict[str, type[CloudFormationModel]] = {
    model.TYPE: model
    for model in (S3AutoDeleteObjects, S3BucketNotifications, AwsSdkCustomResource, LocalFunctionCustomResource)
}


def resource_class_from_type(resource_type: str) -> type[CloudFormationModel]:
    """moto's type lookup, with each ``Custom::`` type routed to its emulation (or to none)."""
    if resource_type in CUSTOM_RESOURCES:
        return CUSTOM_RESOURCES[resource_type]
    if resource_type.startswith("Custom::"):
        return UnemulatedCustomResource
    return _original_resource_class_from_type(resource_type)


def unemulated_custom_resources() -> list[str]:
    """Custom resource types deployed in this process that succeeded without any effect."""
    with _lock:
        return sorted(_unemulated)
