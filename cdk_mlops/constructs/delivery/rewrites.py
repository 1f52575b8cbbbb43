"""Corrections to what aws-cdk-lib and CDK Pipelines generate, applied once the app is prepared.

aws-cdk-lib and CDK Pipelines keep adding policy statements and pipeline actions until the app
is prepared; node validations run after that. The validations here rewrite the final documents,
so the template and cdk-nag see the same thing:

* :class:`_UseConnectionActions`: a grant on a connection names the action of the connection's
  own service (``codeconnections`` or ``codestar-connections``).
* :class:`_RoleArnsAsSub`: the action role ARNs of a pipeline as ``Fn::Sub`` (cfn-lint E3703).

:func:`_rewrite_policies` and the statement helpers are shared with the replication grants
(:mod:`.replication`) and the acknowledgments (:mod:`.acknowledgments`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import Stack
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam
from constructs import Construct, IValidation

from cdk_mlops.constructs.common import _flatten
from cdk_mlops.constructs.delivery.inputs import _USE_CONNECTION, use_connection_actions


def _resources(statement: Mapping[str, Any]) -> list[str]:
    value = statement.get("Resource", [])
    return [_flatten(r) for r in (value if isinstance(value, list) else [value])]


def _actions(statement: Mapping[str, Any]) -> list[str]:
    value = statement.get("Action", [])
    return [str(a) for a in (value if isinstance(value, list) else [value])]


#: Rewrites one statement of a final policy; returns the statements that replace it.
_StatementRewrite = Callable[[Mapping[str, Any]], list[dict[str, Any]]]


def _rewrite_policies(policies: Iterable[iam.CfnPolicy], rewrite: _StatementRewrite) -> None:
    """Apply ``rewrite`` to every statement of the policies, as CloudFormation will receive them.

    For statements that aws-cdk-lib and CDK Pipelines add on their own (source actions, replication
    buckets), until the app is prepared. Call it from a node validation, which runs after that:
    each policy is resolved (statements merged when ``@aws-cdk/aws-iam:minimizePolicies`` is on),
    rewritten, and set on its L1 if it changed, so the template and cdk-nag see the same document.
    """
    for policy in policies:
        document = Stack.of(policy).resolve(policy.policy_document)
        if not isinstance(document, dict):
            continue
        before = document.get("Statement", [])
        after = [new for statement in before for new in rewrite(statement)]
        if after != before:
            policy.policy_document = {**document, "Statement": after}


def _policies_under(scope: Construct) -> list[iam.CfnPolicy]:
    """The policies of ``scope``'s own stacks (not of the stages a CDK Pipeline defines inside it)."""
    stage = cdk.Stage.of(scope)
    return [c for c in scope.node.find_all() if isinstance(c, iam.CfnPolicy) and cdk.Stage.of(c) is stage]


def _with_actions(statement: Mapping[str, Any], actions: Sequence[str]) -> dict[str, Any]:
    return {**statement, "Action": list(actions) if len(actions) > 1 else actions[0]}


def _use_connection_of_its_service(statement: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A statement that grants ``UseConnection``, with the action of each connection's own service.

    aws-cdk-lib grants ``codestar-connections:UseConnection`` to source actions and to CodeBuild
    projects that clone through a connection, whatever the connection ARN's service.
    """
    actions = _actions(statement)
    if statement.get("Effect") != "Allow" or not any(a.endswith(f":{_USE_CONNECTION}") for a in actions):
        return [dict(statement)]
    value = statement.get("Resource", [])
    resources = value if isinstance(value, list) else [value]
    needed = {a for r in resources for a in use_connection_actions(r if isinstance(r, str) else _flatten(r))}
    kept = [a for a in actions if not a.endswith(f":{_USE_CONNECTION}")]
    return [_with_actions(statement, [*kept, *sorted(needed)])]


@jsii.implements(IValidation)
class _UseConnectionActions:
    """Makes every grant on a connection under ``owner`` name the action of the connection's service.

    Runs after the app is prepared, when the source actions and CodeBuild projects have added
    their statements (see :func:`_use_connection_of_its_service`).
    """

    def __init__(self, owner: Construct) -> None:
        self._owner = owner

    def validate(self) -> list[str]:
        _rewrite_policies(_policies_under(self._owner), _use_connection_of_its_service)
        return []


@jsii.implements(IValidation)
class _RoleArnsAsSub:
    """Writes the action role ARNs of a pipeline as ``Fn::Sub`` instead of ``Fn::Join`` (what cfn-lint E3703 asks).

    CDK Pipelines renders the CDK bootstrap roles of the targets (``arn:${AWS::Partition}:iam::...``)
    with ``Fn::Join``; the value is the same. Runs after the app is prepared, when the actions are final.
    """

    def __init__(self, pipeline: codepipeline.Pipeline) -> None:
        self._pipeline = pipeline

    def validate(self) -> list[str]:
        cfn = self._pipeline.node.default_child
        assert isinstance(cfn, codepipeline.CfnPipeline)
        stages = Stack.of(cfn).resolve(cfn.stages)
        for i, stage in enumerate(stages or []):
            # A resolved L1 property keeps the struct's field names (``actions``); free-form JSON keeps its own.
            for j, action in enumerate(stage.get("actions", stage.get("Actions", []))):
                role = (action.get("configuration", action.get("Configuration")) or {}).get("RoleArn")
                text = _join_as_sub(role)
                if text is not None:
                    cfn.add_property_override(f"Stages.{i}.Actions.{j}.Configuration.RoleArn", {"Fn::Sub": text})
        return []


def _join_as_sub(value: Any) -> str | None:
    """``{"Fn::Join": ["", [...]]}`` of strings and pseudo-parameter references as one ``Fn::Sub`` string."""
    if not isinstance(value, dict) or list(value) != ["Fn::Join"]:
        return None
    delimiter, parts = value["Fn::Join"]
    if delimiter != "":
        return None
    text = ""
    for part in parts:
        if isinstance(part, str) and "${" not in part:
            text += part
        elif isinstance(part, dict) and list(part) == ["Ref"] and str(part["Ref"]).startswith("AWS::"):
            text += "${" + str(part["Ref"]) + "}"
        else:
            return None
    return text
