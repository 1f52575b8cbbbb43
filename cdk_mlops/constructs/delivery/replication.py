"""CodePipeline's cross-region support stacks: brought up to the guardrails, and granted by alias.

A pipeline that deploys to another region copies its artifacts to a replication bucket there;
aws-cdk-lib defines that bucket and its key in a support stack of the tooling stage.
:func:`_harden_replication` gives them key rotation, versioning, retention and termination
protection; :class:`_ScopeReplicationKeyGrants` narrows the pipeline role's KMS grant on ``*``
to those keys, by alias.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsii
from aws_cdk import Aws, RemovalPolicy, Stack
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import IValidation

from cdk_mlops.constructs.common import acknowledge
from cdk_mlops.constructs.delivery.rewrites import _actions, _rewrite_policies, _with_actions


def _harden_replication(pipeline: codepipeline.Pipeline, removal_policy: RemovalPolicy) -> None:
    """Bring CodePipeline's cross-region support stacks (one per other target region) up to the guardrails.

    CodePipeline copies artifacts to a bucket in each region it deploys to; aws-cdk-lib defines
    that bucket and its key in a support stack of the tooling stage. Here they get key rotation,
    versioning, retention and termination protection.
    """
    for region, support in pipeline.cross_region_support.items():
        if support.stack is Stack.of(pipeline):
            continue  # the pipeline's own region: its artifact bucket
        support.stack.termination_protection = True
        for construct in support.stack.node.find_all():
            if isinstance(construct, kms.CfnKey):
                construct.enable_key_rotation = True
                construct.apply_removal_policy(removal_policy)
            elif isinstance(construct, s3.CfnBucket):
                construct.versioning_configuration = s3.CfnBucket.VersioningConfigurationProperty(status="Enabled")
                construct.apply_removal_policy(removal_policy)
                acknowledge(
                    construct,
                    f"the replication bucket of {region} holds copies of pipeline artifacts for the deploy actions "
                    "there; it is KMS-encrypted, versioned, private and used only by the pipeline's roles",
                    "AwsSolutions-S1",
                )


@dataclass(frozen=True)
class _ReplicationKey:
    """The key of a CodePipeline replication bucket in another region, known by its alias."""

    region: str
    account: str
    alias_name: str

    @property
    def key_arns(self) -> str:
        """Every key of the support stack's account and region; the alias condition picks one."""
        return f"arn:{Aws.PARTITION}:kms:{self.region}:{self.account}:key/*"


def _replication_keys(pipeline: codepipeline.Pipeline) -> list[_ReplicationKey]:
    """The replication keys of ``pipeline``'s cross-region support stacks whose alias synth knows."""
    found: list[_ReplicationKey] = []
    for support in pipeline.cross_region_support.values():
        if support.stack is Stack.of(pipeline):
            continue
        for alias in (c for c in support.stack.node.find_all() if isinstance(c, kms.CfnAlias)):
            name = support.stack.resolve(alias.alias_name)
            if isinstance(name, str) and name.startswith("alias/"):
                found.append(_ReplicationKey(support.stack.region, support.stack.account, name))
    return found


@jsii.implements(IValidation)
class _ScopeReplicationKeyGrants:
    """Narrows the pipeline role's KMS grant on ``*`` to the replication keys, by alias.

    aws-cdk-lib grants the pipeline role the KMS calls on a replication bucket's key, which lives
    in another region's support stack; a key ARN cannot be referenced across regions, so the grant
    names ``*``. The key's alias is a name fixed at synth, so the grant becomes: keys of the
    support stack's account and region (``key/*``) that carry that alias (``kms:ResourceAliases``),
    as aws-cdk-lib's own grant on an imported alias does.
    """

    def __init__(self, pipeline: codepipeline.Pipeline) -> None:
        self._pipeline = pipeline

    def validate(self) -> list[str]:
        keys = _replication_keys(self._pipeline)
        policy = self._pipeline.role.node.try_find_child("DefaultPolicy")
        cfn = policy.node.default_child if policy is not None else None
        if keys and isinstance(cfn, iam.CfnPolicy):
            stack = Stack.of(self._pipeline)
            _rewrite_policies([cfn], lambda statement: _scoped_to_keys(statement, keys, stack))
        return []


def _scoped_to_keys(
    statement: Mapping[str, Any], keys: Sequence[_ReplicationKey], stack: Stack
) -> list[dict[str, Any]]:
    """A statement with KMS actions on ``*``, with ``*`` replaced by one scoped statement per key."""
    actions = _actions(statement)
    value = statement.get("Resource", [])
    resources = value if isinstance(value, list) else [value]
    kms_actions = [a for a in actions if a.startswith("kms:")]
    if statement.get("Effect") != "Allow" or "Condition" in statement or "*" not in resources or not kms_actions:
        return [dict(statement)]
    rest = [r for r in resources if r != "*"]
    others = [a for a in actions if not a.startswith("kms:")]
    split: list[dict[str, Any]] = []
    if rest:  # merged statements: what was granted on the other resources stays as it was
        split.append({**statement, "Resource": rest if len(rest) > 1 else rest[0]})
    if others:
        split.append({**_with_actions(statement, others), "Resource": "*"})
    for key in keys:
        split.append(
            {
                **_with_actions(statement, kms_actions),
                "Resource": stack.resolve(key.key_arns),
                "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": key.alias_name}},
            }
        )
    return split
