"""Which resource types of a template the local AWS cannot provision, and why, known before anything deploys.

moto's CloudFormation skips a type it has no model for and lets the stack complete without it,
so a deployment "succeeded" with resources missing. :func:`unprovisionable` lists such types of
a template with the reason; :func:`refuse_unprovisionable` (called by the local CloudFormation
when a change set or stack is created, see :mod:`cdk_mlops.local.cfn_stacks`) fails that request
with the list, so ``cdk deploy`` stops within a second and names each type, instead of
:func:`cdk_mlops.local.deploy.check_stack` finding the gap after the deployment.

Custom resources are not judged here: their emulation depends on the provider
(:mod:`cdk_mlops.local.cfn_custom`), and ``check_stack`` reports the ones that deploy without
effect. Resources with a ``Condition`` are skipped, as ``check_stack`` skips them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import moto.cloudformation.parsing as _parsing
from moto.cloudformation.exceptions import ValidationError

__all__ = ["REASONS", "UNMODELLED", "refuse_unprovisionable", "unprovisionable"]

#: The reason given for a type neither moto nor the local models provision.
UNMODELLED = (
    "neither moto's CloudFormation nor cdk_mlops.local.cfn_shim models this type, so the stack would "
    "complete without it (add a model to cdk_mlops.local.cfn_shim, or keep the resource out of the "
    "locally deployed stage)"
)
#: Known types without a model, each with what is missing (the reason for any other type is
#: :data:`UNMODELLED`).
REASONS: dict[str, str] = {
    "AWS::DynamoDB::GlobalTable": "moto models AWS::DynamoDB::Table only; a global table has no local model",
    "AWS::Lambda::Url": "moto serves no function URLs, so there is nothing to create one on",
    "AWS::Pipes::Pipe": "moto's EventBridge Pipes has no CloudFormation model",
}
#: Types that never provision anything (CloudFormation itself keeps them).
_NOTHING_TO_PROVISION = frozenset({"AWS::CDK::Metadata"})


def _is_custom(resource_type: str) -> bool:
    return resource_type.startswith("Custom::") or resource_type == "AWS::CloudFormation::CustomResource"


def unprovisionable(template: Mapping[str, Any] | str) -> dict[str, str]:
    """Type → reason for each resource type of ``template`` (a dict or JSON text) the local AWS cannot provision.

    The type map is moto's, read when called: call :func:`cdk_mlops.local.cfn_shim.install`
    first in a process that deploys, so that the local models are in it.
    """
    body = json.loads(template) if isinstance(template, str) else template
    known = _parsing.get_model_map()
    found: dict[str, str] = {}
    for resource in (body.get("Resources") or {}).values():
        resource_type = str(resource.get("Type", ""))
        if "Condition" in resource or _is_custom(resource_type) or resource_type in _NOTHING_TO_PROVISION:
            continue
        if resource_type not in known:
            found[resource_type] = REASONS.get(resource_type, UNMODELLED)
    return dict(sorted(found.items()))


def refuse_unprovisionable(stack_name: str, template: str) -> None:
    """Raise CloudFormation's ``ValidationError`` naming each type of ``template`` that cannot provision locally.

    Raises:
        ValidationError: with one line per type and its reason; the CDK CLI prints it.
    """
    if not template:
        return
    try:
        gaps = unprovisionable(template)
    except ValueError:  # YAML or malformed JSON: moto parses (and reports) it itself
        return
    if gaps:
        lines = "; ".join(f"{t}: {reason}" for t, reason in gaps.items())
        raise ValidationError(
            stack_name, message=f"the local AWS cannot provision {len(gaps)} type(s) of stack {stack_name}: {lines}"
        )
