"""EventBridge's part for Step Functions targets: a matching event starts an execution.

moto's EventBridge matches events against rules and delivers them to log groups, archives,
queues and buses; a rule whose target is a state machine matches and does nothing. :func:`install`
adds that delivery as EventBridge documents it: for each state machine target of a matching rule,
``StartExecution`` with the target's input (its ``Input``, or its ``InputTransformer`` applied to
the event, or else the event itself). moto's own transformer is not used: S3's events reach rules
untransformed in moto, and it needs fields S3's events lack. The execution is recorded in moto's Step Functions, which
marks it running and never runs it; :func:`cdk_mlops.local.stepfunctions.run_state_machine`
runs an execution's input (:func:`started_inputs` lists them). Like the rest of this package,
it must run in the process that serves the requests.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Mapping
from typing import Any

from moto.events.models import Rule
from moto.stepfunctions.models import stepfunctions_backends
from moto.utilities.arns import parse_arn

from cdk_mlops.local.endpoint import LocalAws

__all__ = ["apply_input_transformer", "install", "is_installed", "started_inputs"]

_lock = threading.Lock()
# moto's own delivery, which the installed one calls first.
_moto_send_to_targets = Rule.send_to_targets


def _send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
    machines = [t for t in self.targets if parse_arn(t["Arn"]).service == "states"]
    # moto raises NotImplementedError for a target it does not deliver to: it gets a copy of the
    # rule with the others only (the rule itself is not changed, other requests may be reading it).
    others = copy.copy(self)
    others.targets = [t for t in self.targets if t not in machines]
    _moto_send_to_targets(others, original_event, transform_input)
    if not machines or not self.event_pattern.matches_event(original_event):
        return
    for target in machines:
        arn = parse_arn(target["Arn"])
        transformer = target.get("InputTransformer")
        if "Input" in target:
            payload = target["Input"]
        elif transformer:
            payload = apply_input_transformer(transformer, original_event)
        else:
            payload = json.dumps(original_event)
        # The name is Step Functions' own (a UUID), as for any start without one.
        stepfunctions_backends[arn.account][arn.region].start_execution(target["Arn"], "", payload)


_PLACEHOLDER = re.compile(r"<([^<>\s]+)>")


def apply_input_transformer(transformer: Mapping[str, Any], event: Mapping[str, Any]) -> str:
    """An ``InputTransformer`` applied to an event, as EventBridge documents it.

    Each ``InputPathsMap`` entry is a JSON path (``$.a.b``) into the event; its ``<name>`` in the
    template becomes the value: a string without its quotes (the template quotes it), JSON for any
    other value. ``<aws.events.event.json>`` is the whole event. Other placeholders are refused.
    """
    values: dict[str, Any] = {"aws.events.event.json": event}
    for name, path in transformer.get("InputPathsMap", {}).items():
        node: Any = event
        for part in str(path).removeprefix("$.").split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        values[name] = node

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ValueError(f"input template placeholder <{name}> is neither in InputPathsMap nor emulated")
        found = values[name]
        return json.dumps(found)[1:-1] if isinstance(found, str) else json.dumps(found)

    template = str(transformer.get("InputTemplate", "<aws.events.event.json>"))
    return _PLACEHOLDER.sub(value, template)


def install() -> None:
    """Deliver matching events to Step Functions targets, in this process's moto. Idempotent."""
    with _lock:
        Rule.send_to_targets = _send_to_targets  # type: ignore[method-assign]


def is_installed() -> bool:
    """Whether :func:`install` has run in this process."""
    return Rule.send_to_targets is _send_to_targets


def started_inputs(aws: LocalAws, state_machine_arn: str) -> list[Any]:
    """The inputs of a state machine's executions that are running (started and never run), oldest first."""
    client = aws.client("stepfunctions")
    found: list[tuple[Any, Any]] = []
    for page in client.get_paginator("list_executions").paginate(
        stateMachineArn=state_machine_arn, statusFilter="RUNNING"
    ):
        for execution in page["executions"]:
            described = client.describe_execution(executionArn=execution["executionArn"])
            found.append((execution["startDate"], json.loads(described["input"])))
    return [payload for _, payload in sorted(found, key=lambda pair: pair[0])]
