"""The stack lifecycle: moto's CloudFormation made to deploy as the CDK CLI deploys (change sets, in parallel).

moto's CloudFormation serves one stack at a time made by CreateStack; the CDK CLI deploys with
change sets, several stacks at once. :func:`patch_cloudformation` (called by
:func:`cdk_mlops.local.cfn_shim.install`) makes moto:

* link cross-stack exports after a change set is created or executed and after an update
  (moto did so only for CreateStack, so every ``Fn::ImportValue`` of a CLI deployment failed);
* serve one CloudFormation request at a time (:data:`cloudformation_lock`);
* look a change set up by its stack and name (moto took the name alone, which every CLI change
  set shares, and executed one stack's change set for another); a stack without a change set of
  that name has none (moto answered with another stack's, so a redeploy waited forever for the
  old change set it had deleted to be gone);
* keep an SSM-typed parameter's previous value on an update as AWS does: the parameter's name,
  resolved again (moto passed the value it had resolved to as if it were a parameter name, so
  every update of a CDK stack, whose ``BootstrapVersion`` the CLI passes as ``UsePreviousValue``,
  failed);
* give a deleted stack no outputs (moto resolved them again, and so created the resources they
  name anew);
* refuse a change set or stack whose template has a type the local AWS cannot provision, naming
  each type and why (:mod:`cdk_mlops.local.cfn_coverage`; moto skipped it and completed the stack).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from moto.cloudformation.exceptions import CloudFormationError
from moto.cloudformation.models import CloudFormationBackend, Stack
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.responses import ActionResult, EmptyResult

from cdk_mlops.local.cfn_coverage import refuse_unprovisionable

_original_create_change_set = CloudFormationBackend.create_change_set
_original_create_stack = CloudFormationBackend.create_stack
_original_execute_change_set = CloudFormationBackend.execute_change_set
_original_update_stack = CloudFormationBackend.update_stack
_original_call_action = CloudFormationResponse.call_action
#: Held while a CloudFormation request runs: moto's CloudFormation state is not thread-safe, and the
#: CDK CLI deploys independent stacks at once (a change set created while another stack's was
#: executed failed with "OrderedDict mutated during iteration"). Reentrant: a custom resource's
#: SDK call runs on the request's thread.
cloudformation_lock = threading.RLock()
_original_stack_outputs: property = Stack.outputs  # type: ignore[assignment]


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


def _previous_ssm_parameters(backend: Any, stack_name: str, template: str, parameters: dict[str, Any]) -> None:
    """Put back the parameter names of SSM-typed parameters that moto passed on resolved (in place).

    With ``UsePreviousValue``, moto takes the stack's resolved parameter (``"30"``) where AWS
    takes what was passed before: the SSM parameter's name (or the default, also a name), which
    it then resolves again.
    """
    stack = next((s for s in backend.stacks.values() if s.name == stack_name), None)
    if stack is None or not parameters:
        return
    try:
        declared = json.loads(template).get("Parameters", {})
    except (TypeError, ValueError):
        return  # not JSON (the CDK writes JSON): left as moto parses it
    previous_inputs = getattr(stack.resource_map, "input_parameters", {}) or {}
    for key, slot in declared.items():
        if not str(slot.get("Type", "")).startswith("AWS::SSM::Parameter::") or key not in parameters:
            continue
        if parameters[key] != stack.stack_parameters.get(key) or parameters[key] == previous_inputs.get(key):
            continue  # a new value, or the name passed before
        if key in previous_inputs:
            parameters[key] = previous_inputs[key]
        else:
            del parameters[key]  # the default was used before: it is used again


def _create_change_set(self: CloudFormationBackend, *args: Any, **kwargs: Any) -> tuple[str, str]:
    refuse_unprovisionable(kwargs.get("stack_name") or args[0], kwargs.get("template") or args[2])
    if kwargs.get("change_set_type") == "UPDATE" and isinstance(kwargs.get("parameters"), dict):
        _previous_ssm_parameters(self, kwargs["stack_name"], kwargs.get("template") or "", kwargs["parameters"])
    result = _original_create_change_set(self, *args, **kwargs)
    _link_exports(self)
    return result


def _create_stack(self: CloudFormationBackend, *args: Any, **kwargs: Any) -> Any:
    refuse_unprovisionable(kwargs.get("name") or args[0], kwargs.get("template") or args[1])
    return _original_create_stack(self, *args, **kwargs)


def _execute_change_set(self: CloudFormationBackend, *args: Any, **kwargs: Any) -> None:
    _original_execute_change_set(self, *args, **kwargs)
    _link_exports(self)


class ChangeSetNotFound(CloudFormationError):
    """``ChangeSetNotFoundException``: the stack has no change set of that name (what AWS answers)."""

    code = "ChangeSetNotFoundException"


def _change_set_id(response: CloudFormationResponse) -> str | None:
    """The id of the change set a request names: ``ChangeSetName`` (a name or an id) of ``StackName``.

    moto looks a change set up by its name alone, and the CDK CLI gives every stack's change set
    the same name: deploying two stacks at once executed one stack's change set for the other.
    ``None`` when ``StackName`` is given and that stack has no change set of the name.
    """
    name = str(response._get_param("ChangeSetName"))
    stack = response._get_param("StackName")
    change_sets = response.cloudformation_backend.change_sets
    if name in change_sets or not stack:
        return name
    matches = [i for i, c in change_sets.items() if c.change_set_name == name and stack in (c.stack_name, c.stack_id)]
    return matches[-1] if matches else None


def _named_change_set(response: CloudFormationResponse) -> str:
    found = _change_set_id(response)
    if found is None:
        raise ChangeSetNotFound(
            f"ChangeSet [{response._get_param('ChangeSetName')}] does not exist for stack "
            f"[{response._get_param('StackName')}]"
        )
    return found


def _call_action_alone(self: CloudFormationResponse) -> Any:
    with cloudformation_lock:
        return _original_call_action(self)


def _describe_change_set(self: CloudFormationResponse) -> ActionResult:
    return ActionResult(self.cloudformation_backend.describe_change_set(change_set_name=_named_change_set(self)))


def _delete_change_set(self: CloudFormationResponse) -> EmptyResult:
    # The CDK CLI deletes the stack's change set of its fixed name before each update, whether
    # one is left or not; with none left there is nothing to delete.
    found = _change_set_id(self)
    if found is not None:
        self.cloudformation_backend.delete_change_set(change_set_name=found)
    return EmptyResult()


def _execute_change_set_request(self: CloudFormationResponse) -> EmptyResult:
    self.cloudformation_backend.execute_change_set(
        change_set_name=_named_change_set(self), stack_name=self._get_param("StackName")
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


def patch_cloudformation() -> None:
    """Put the stack lifecycle fixes above in place of moto's methods (in this process). Idempotent."""
    Stack.outputs = property(_stack_outputs)  # type: ignore[method-assign,assignment]
    CloudFormationBackend.create_change_set = _create_change_set  # type: ignore[method-assign]
    CloudFormationBackend.create_stack = _create_stack  # type: ignore[method-assign]
    CloudFormationBackend.execute_change_set = _execute_change_set  # type: ignore[method-assign]
    CloudFormationBackend.update_stack = _update_stack  # type: ignore[method-assign]
    CloudFormationResponse.call_action = _call_action_alone  # type: ignore[method-assign,assignment]
    CloudFormationResponse.describe_change_set = _describe_change_set  # type: ignore[method-assign]
    CloudFormationResponse.delete_change_set = _delete_change_set  # type: ignore[method-assign]
    CloudFormationResponse.execute_change_set = _execute_change_set_request  # type: ignore[method-assign]
