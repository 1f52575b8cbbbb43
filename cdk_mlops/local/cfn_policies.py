"""Resource policies: bucket, queue and topic policies, and how a local request meets their conditions.

``AWS::S3::BucketPolicy``, ``AWS::SQS::QueuePolicy`` and ``AWS::SNS::TopicPolicy`` set the policy
on each bucket, queue or topic they name and remove it on delete. moto ignores ``Bool``
conditions when it checks a bucket policy, so the deny-non-TLS statement of every bucket with
``enforce_ssl`` (and of the bootstrap bucket) would deny every object request, including the
CLI's asset uploads. :func:`bucket_permission`, which
:func:`cdk_mlops.local.cfn_shim.install` puts in place of moto's check, applies a statement with
a ``Condition`` only if the condition holds for a local request, which counts as TLS
(:data:`LOCAL_REQUEST_CONTEXT`).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.iam.access_control import IAMPolicyStatement, PermissionResult
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends

from cdk_mlops.local.cfn_resource import Props, ShimResource, as_json, s3_backend

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


def bucket_permission(bucket: Any, action: str, resource: str) -> PermissionResult:
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


class S3BucketPolicy(ShimResource, CloudFormationModel):
    """``AWS::S3::BucketPolicy``: ``Ref`` is the bucket name."""

    TYPE = "AWS::S3::BucketPolicy"

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> S3BucketPolicy:
        s3_backend(account, region).put_bucket_policy(p["Bucket"], as_json(p["PolicyDocument"]).encode())
        return cls(p["Bucket"])

    def delete(self, account_id: str, region_name: str) -> None:
        backend = s3_backend(account_id, region_name)
        if self.physical_resource_id in backend.buckets:
            backend.delete_bucket_policy(self.physical_resource_id)


class SqsQueuePolicy(ShimResource, CloudFormationModel):
    """``AWS::SQS::QueuePolicy``: the ``Policy`` attribute of each queue in ``Queues`` (URLs)."""

    TYPE = "AWS::SQS::QueuePolicy"

    def __init__(self, physical_id: str, queue_names: list[str]) -> None:
        super().__init__(physical_id)
        self.queue_names = queue_names

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> SqsQueuePolicy:
        names = [str(url).rstrip("/").rsplit("/", 1)[-1] for url in p["Queues"]]
        for queue in names:
            sqs_backends[account][region].set_queue_attributes(queue, {"Policy": as_json(p["PolicyDocument"])})
        return cls(name, names)

    def delete(self, account_id: str, region_name: str) -> None:
        queues = sqs_backends[account_id][region_name].queues
        for queue in self.queue_names:
            if queue in queues:
                queues[queue].policy = None


class SnsTopicPolicy(ShimResource, CloudFormationModel):
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
            backend.set_topic_attribute(arn, "policy", as_json(p["PolicyDocument"]))
        return cls(name, previous)

    def delete(self, account_id: str, region_name: str) -> None:
        backend = sns_backends[account_id][region_name]
        for arn, policy in self.previous.items():
            if arn in backend.topics:
                backend.set_topic_attribute(arn, "policy", policy)
