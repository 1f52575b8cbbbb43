"""Step Functions' part: running a state machine's executions, which moto stores but never runs.

:func:`start_execution` interprets a deployed definition (the Amazon States Language, JSONPath
query language) state by state, and invokes its Lambda functions in this process
(:class:`LocalLambda`: the deployed handler in a :class:`~cdk_mlops.local.runtime.LambdaContainer`
with the function's environment), or through any ``invoke(function, payload)`` the caller passes.
:func:`run_state_machine` reads the definition from the local AWS (``DescribeStateMachine``).

What runs is what the States Language documents, for this subset; anything else is refused
before the execution starts, naming the state and the field (:class:`UnsupportedDefinition`):

* states ``Task``, ``Pass``, ``Choice``, ``Succeed``, ``Fail`` and ``Map``; fields ``InputPath``,
  ``Parameters`` (keys ending in ``.$`` take a path, a ``$$.`` context path, or
  ``States.Format``), ``ResultSelector``, ``ResultPath`` (``null`` keeps the input),
  ``OutputPath``, ``Retry`` (``ErrorEquals``, ``IntervalSeconds``, ``MaxAttempts``,
  ``BackoffRate``, ``MaxDelaySeconds``, ``JitterStrategy``: the waits are recorded, not slept)
  and ``Catch``; paths are ``$``, ``$.a.b``, ``$['a']`` and ``$.a[0]``.
* ``Task`` with ``arn:aws:states:::lambda:invoke`` (``FunctionName``, ``Payload``; the result
  is Lambda's invoke response: ``ExecutedVersion``, ``Payload``, ``SdkHttpMetadata``,
  ``SdkResponseMetadata``, ``StatusCode``) or a function ARN as ``Resource`` (the result is
  the function's return value). A handler that raises fails the task as Lambda reports it:
  the error is the exception's type name, the cause Lambda's error JSON (``errorMessage``,
  ``errorType``, ``requestId``, ``stackTrace``). ``TimeoutSeconds`` is accepted, not enforced.
* ``Map``, inline (``ItemsPath``) or distributed (``ItemProcessor.ProcessorConfig.Mode``
  ``DISTRIBUTED``, ``ExecutionType`` ``STANDARD`` or ``EXPRESS``), with ``ItemReader``
  ``arn:aws:states:::s3:getObject`` and ``ReaderConfig.InputType`` ``JSON`` (a JSON array in
  S3; ``MaxItems``), ``ItemSelector`` (``$$.Map.Item.Index``, ``$$.Map.Item.Value``),
  ``MaxConcurrency``, ``ToleratedFailurePercentage`` / ``ToleratedFailureCount`` and
  ``ResultWriter`` ``arn:aws:states:::s3:putObject``. Items run one after another, in item
  order (concurrent handlers would share ``os.environ``); the results keep the item order.
  Each item of a distributed map is a child execution: when failures exceed the tolerated
  threshold (by default any failure) the items not yet started stay ``PENDING`` and the map
  fails with ``States.ExceedToleratedFailureThreshold``. ``ResultWriter`` writes the
  documented layout under ``<Prefix>/<map run id>/``: ``SUCCEEDED_0.json``, ``FAILED_0.json``
  and ``PENDING_0.json`` (each an array of child execution records, ``Input`` and ``Output``
  as JSON strings; a file only when it has records) and ``manifest.json`` last
  (``DestinationBucket``, ``MapRunArn``, ``ResultFiles`` by status with ``Key`` and ``Size``);
  the map's result is then ``{"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}``. Without
  a ``ResultWriter`` it is the children's outputs in item order (a tolerated failure's entry is
  its ``{"Error", "Cause"}``). Without an ``ItemReader`` the items are read at ``ItemsPath``.

Errors follow the States Language: ``States.ALL`` matches every error but ``States.Runtime``
(a bad path, a non-JSON value), which fails the execution; ``States.TaskFailed`` matches every
error but ``States.Timeout``. The execution is not recorded in moto: its ``StartExecution``
would only mark it running.
"""

from __future__ import annotations

import copy
import importlib
import json
import re
import traceback
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from cdk_mlops.lambdas.retrain_trigger.events import EXECUTION_STATUS_CHANGE, STATES_SOURCE
from cdk_mlops.local.cfn_function_custom import HANDLER_PACKAGE
from cdk_mlops.local.endpoint import LocalAws
from cdk_mlops.local.runtime import FunctionConfiguration, LambdaContainer

#: What a task calls to invoke a Lambda function: ``invoke(function name or ARN, payload) -> result``.
Invoke = Callable[[str, Any], Any]

_LAMBDA_INVOKE: Final = re.compile(r"^arn:aws[a-z-]*:states:::lambda:invoke\Z")
_FUNCTION_ARN: Final = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]+(:[\w$-]+)?\Z")
_S3_GET: Final = re.compile(r"^arn:aws[a-z-]*:states:::s3:getObject\Z")
_S3_PUT: Final = re.compile(r"^arn:aws[a-z-]*:states:::s3:putObject\Z")
_PATH_TOKEN: Final = re.compile(r"\.([^.\[\]]+)|\['([^']*)'\]|\[(\d+)\]")

_COMMON: Final = {"Type", "Comment"}
_IO: Final = {"InputPath", "OutputPath"}
_FLOW: Final = {"Next", "End"}
_FIELDS: Final = {
    "Pass": _COMMON | _IO | _FLOW | {"Parameters", "Result", "ResultPath"},
    "Task": _COMMON
    | _IO
    | _FLOW
    | {"Resource", "Parameters", "ResultSelector", "ResultPath", "Retry", "Catch", "TimeoutSeconds"},
    "Choice": _COMMON | _IO | {"Choices", "Default"},
    "Succeed": _COMMON | _IO,
    "Fail": _COMMON | {"Error", "Cause", "ErrorPath", "CausePath"},
    "Map": _COMMON
    | _IO
    | _FLOW
    | {
        "ItemProcessor",
        "Iterator",
        "ItemsPath",
        "ItemReader",
        "ItemSelector",
        "Parameters",
        "MaxConcurrency",
        "ToleratedFailurePercentage",
        "ToleratedFailureCount",
        "ResultWriter",
        "ResultSelector",
        "ResultPath",
        "Retry",
        "Catch",
        "Label",
    },
}
_RETRY_FIELDS: Final = {
    "ErrorEquals",
    "IntervalSeconds",
    "MaxAttempts",
    "BackoffRate",
    "MaxDelaySeconds",
    "JitterStrategy",
}
_CATCH_FIELDS: Final = {"ErrorEquals", "Next", "ResultPath"}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_COMPARISONS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "StringEquals": lambda a, b: isinstance(a, str) and a == b,
    "StringLessThan": lambda a, b: isinstance(a, str) and a < b,
    "StringGreaterThan": lambda a, b: isinstance(a, str) and a > b,
    "StringLessThanEquals": lambda a, b: isinstance(a, str) and a <= b,
    "StringGreaterThanEquals": lambda a, b: isinstance(a, str) and a >= b,
    "NumericEquals": lambda a, b: _number(a) and a == b,
    "NumericLessThan": lambda a, b: _number(a) and a < b,
    "NumericGreaterThan": lambda a, b: _number(a) and a > b,
    "NumericLessThanEquals": lambda a, b: _number(a) and a <= b,
    "NumericGreaterThanEquals": lambda a, b: _number(a) and a >= b,
    "BooleanEquals": lambda a, b: isinstance(a, bool) and a == b,
}
_TYPE_TESTS: Final[dict[str, Callable[[Any], bool]]] = {
    "IsNull": lambda a: a is None,
    "IsString": lambda a: isinstance(a, str),
    "IsNumeric": _number,
    "IsBoolean": lambda a: isinstance(a, bool),
}


class UnsupportedDefinition(ValueError):
    """A definition uses what the local interpreter does not run; the message names the state and the field."""


class StatesError(Exception):
    """An error of the execution, as Step Functions names it (``error``) with its ``cause``."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


@dataclass(frozen=True)
class HistoryEvent:
    """One event of an execution's history: its type (as in ``GetExecutionHistory``), the state, details.

    ``execution`` is the name of the execution the event belongs to (a map's child executions
    record their events in the parent's history).
    """

    type: str
    state: str
    execution: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MapRun:
    """One run of a distributed map: its ARN, its items by status and where its results were written."""

    arn: str
    state: str
    succeeded: int
    failed: int
    pending: int
    result_writer: Mapping[str, str] | None = None


@dataclass
class ExecutionResult:
    """How an execution ended: ``SUCCEEDED`` with its output, or ``FAILED`` with error and cause."""

    arn: str
    name: str
    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    history: list[HistoryEvent] = field(default_factory=list)
    map_runs: list[MapRun] = field(default_factory=list)

    def events(self, event_type: str, state: str | None = None) -> list[HistoryEvent]:
        """The events of one type (``TaskScheduled`` is one per Lambda invocation), of one state if given."""
        return [e for e in self.history if e.type == event_type and (state is None or e.state == state)]

    def states_entered(self) -> list[str]:
        """The names of the states entered, in order, child executions included."""
        return [e.state for e in self.history if e.type.endswith("StateEntered")]


# --- paths and payload templates -------------------------------------------------------------------------


def _json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _tokens(path: str) -> list[str | int]:
    """The steps of a path after ``$`` (or ``$$``); ``States.Runtime`` if it is not a plain path."""
    rest = path[2:] if path.startswith("$$") else path[1:] if path.startswith("$") else None
    steps: list[str | int] = []
    position = 0
    while rest is not None and position < len(rest):
        match = _PATH_TOKEN.match(rest, position)
        if match is None:
            rest = None
            break
        name, quoted, index = match.groups()
        steps.append(int(index) if index is not None else name if name is not None else quoted)
        position = match.end()
    if rest is None:
        raise StatesError("States.Runtime", f"The path {path!r} is not a path the local interpreter reads")
    return steps


def read_path(path: str, data: Any, context: Mapping[str, Any] | None = None) -> Any:
    """The value at a reference path (``$.a.b``, ``$.a[0]``; ``$$.`` reads the context object).

    Raises:
        StatesError: ``States.Runtime`` when the path is not in the data, as Step Functions fails then.
    """
    value: Any = context if path.startswith("$$") else data
    for step in _tokens(path):
        in_list = isinstance(step, int) and isinstance(value, list) and step < len(value)
        if in_list or (isinstance(step, str) and isinstance(value, dict) and step in value):
            value = value[step]
        else:
            raise StatesError(
                "States.Runtime",
                f"The JSONPath '{path}' could not be found in the input '{_json_text(data)[:2000]}'",
            )
    return copy.deepcopy(value)


def _set_path(path: str, target: Any, value: Any) -> Any:
    """``target`` with ``value`` placed at ``path`` (a ``ResultPath``): objects on the way are created."""
    steps = _tokens(path)
    if not steps:
        return value
    result = copy.deepcopy(target)
    if not isinstance(result, dict):
        raise StatesError("States.Runtime", f"Unable to apply ResultPath {path!r}: the input is not an object")
    node = result
    for step in steps[:-1]:
        if not isinstance(step, str):
            raise StatesError("States.Runtime", f"Unable to apply ResultPath {path!r}: it has an array index")
        node = node.setdefault(step, {})
        if not isinstance(node, dict):
            raise StatesError("States.Runtime", f"Unable to apply ResultPath {path!r}: {step!r} is not an object")
    node[str(steps[-1])] = value
    return result


def _format(call: str, data: Any, context: Mapping[str, Any]) -> str:
    """``States.Format('template {}', arg, ...)``: each ``{}`` takes the next argument."""
    args = _intrinsic_args(call[len("States.Format(") : -1], data, context)
    if not args or not isinstance(args[0], str):
        raise StatesError("States.Runtime", f"{call}: the first argument of States.Format must be a string")
    template, values = args[0], args[1:]
    pieces = re.split(r"(?<!\\)\{\}", template)
    if len(pieces) - 1 != len(values):
        raise StatesError("States.Runtime", f"{call}: {len(pieces) - 1} placeholders for {len(values)} arguments")
    out = pieces[0]
    for value, piece in zip(values, pieces[1:], strict=True):
        out += (value if isinstance(value, str) else _json_text(value)) + piece
    return out.replace("\\{", "{").replace("\\}", "}")


def _intrinsic_args(text: str, data: Any, context: Mapping[str, Any]) -> list[Any]:
    args: list[Any] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char in " ,":
            position += 1
        elif char == "'":
            end, chars = position + 1, []
            while end < len(text) and text[end] != "'":
                if text[end] == "\\" and end + 1 < len(text) and text[end + 1] in "'\\":
                    end += 1
                chars.append(text[end])
                end += 1
            args.append("".join(chars))
            position = end + 1
        else:
            end = position
            while end < len(text) and text[end] != ",":
                end += 1
            token = text[position:end].strip()
            args.append(read_path(token, data, context) if token.startswith("$") else json.loads(token))
            position = end
    return args


def _value_of(expression: str, data: Any, context: Mapping[str, Any]) -> Any:
    if expression.startswith("States.Format(") and expression.endswith(")"):
        return _format(expression, data, context)
    return read_path(expression, data, context)


def render(template: Any, data: Any, context: Mapping[str, Any]) -> Any:
    """A payload template (``Parameters``, ``ItemSelector``, ``ResultSelector``) filled from data and context."""
    if isinstance(template, dict):
        out: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                out[key[:-2]] = _value_of(str(value), data, context)
            else:
                out[key] = render(value, data, context)
        return out
    if isinstance(template, list):
        return [render(item, data, context) for item in template]
    return copy.deepcopy(template)


# --- checking a definition before it runs ----------------------------------------------------------------


def _refuse(state: str, what: str) -> UnsupportedDefinition:
    return UnsupportedDefinition(f"state {state!r}: {what} is not supported by the local Step Functions interpreter")


def _refuse_extra(state: str, what: str, fields: Collection[str], allowed: Collection[str]) -> None:
    extra = sorted(set(fields) - set(allowed))
    if extra:
        raise _refuse(state, f"{what} {extra[0]}")


def _check_template(state: str, name: str, template: Any) -> None:
    if isinstance(template, dict):
        for key, value in template.items():
            if key.endswith(".$"):
                text = str(value)
                if text.startswith("States.") and not text.startswith("States.Format("):
                    raise _refuse(state, f"{name}.{key}: the intrinsic function {text.split('(', 1)[0]}")
                if not text.startswith(("$", "States.Format(")):
                    raise _refuse(state, f"{name}.{key}: the expression {text!r}")
            else:
                _check_template(state, f"{name}.{key}", value)
    elif isinstance(template, list):
        for index, item in enumerate(template):
            _check_template(state, f"{name}[{index}]", item)


def check_definition(definition: Mapping[str, Any], where: str = "") -> None:
    """Refuse, before anything runs, a definition that uses what the interpreter does not run.

    Raises:
        UnsupportedDefinition: naming the state and the field.
    """
    if definition.get("QueryLanguage", "JSONPath") != "JSONPath":
        raise UnsupportedDefinition(f"{where}QueryLanguage {definition['QueryLanguage']!r}: only JSONPath is run")
    states = definition.get("States")
    if not isinstance(states, Mapping) or definition.get("StartAt") not in states:
        raise UnsupportedDefinition(f"{where}the definition needs States and a StartAt naming one of them")
    for name, state in states.items():
        label = f"{where}{name}"
        kind = state.get("Type")
        if kind not in _FIELDS:
            raise _refuse(label, f"Type {kind!r}")
        _refuse_extra(label, "the field", state, _FIELDS[kind])
        if state.get("QueryLanguage", "JSONPath") != "JSONPath":
            raise _refuse(label, f"QueryLanguage {state['QueryLanguage']!r}")
        for template in ("Parameters", "ResultSelector", "ItemSelector"):
            _check_template(label, template, state.get(template))
        for retrier in state.get("Retry", []):
            _refuse_extra(label, "the Retry field", retrier, _RETRY_FIELDS)
        for catcher in state.get("Catch", []):
            _refuse_extra(label, "the Catch field", catcher, _CATCH_FIELDS)
            if catcher.get("Next") not in states:
                raise UnsupportedDefinition(f"state {label!r}: Catch names no state {catcher.get('Next')!r}")
        for target in [state.get("Next"), state.get("Default"), *(c.get("Next") for c in state.get("Choices", []))]:
            if target is not None and target not in states:
                raise UnsupportedDefinition(f"state {label!r}: Next names no state {target!r}")
        if kind == "Task":
            _check_task(label, state)
        if kind == "Map":
            _check_map(label, state)


def _check_task(label: str, state: Mapping[str, Any]) -> None:
    resource = str(state.get("Resource", ""))
    if _LAMBDA_INVOKE.match(resource):
        parameters = state.get("Parameters") or {}
        if "FunctionName" not in parameters and "FunctionName.$" not in parameters:
            raise UnsupportedDefinition(f"state {label!r}: lambda:invoke needs Parameters.FunctionName")
        allowed = {"FunctionName", "FunctionName.$", "Payload", "Payload.$", "Qualifier"}
        if parameters.get("InvocationType") == "RequestResponse":
            allowed.add("InvocationType")
        _refuse_extra(label, "the lambda:invoke parameter", parameters, allowed)
    elif not _FUNCTION_ARN.match(resource):
        raise _refuse(label, f"the Resource {resource!r} (only lambda:invoke and Lambda function ARNs run)")


def _check_map(label: str, state: Mapping[str, Any]) -> None:
    processor = state.get("ItemProcessor") or state.get("Iterator")
    if not isinstance(processor, Mapping):
        raise UnsupportedDefinition(f"state {label!r}: a Map needs an ItemProcessor")
    config = processor.get("ProcessorConfig", {})
    mode = config.get("Mode", "INLINE")
    if mode not in ("INLINE", "DISTRIBUTED"):
        raise _refuse(label, f"ProcessorConfig.Mode {mode!r}")
    if mode == "DISTRIBUTED" and config.get("ExecutionType") not in ("STANDARD", "EXPRESS"):
        raise _refuse(label, f"ProcessorConfig.ExecutionType {config.get('ExecutionType')!r}")
    if mode == "INLINE":
        distributed_only = {
            "ItemReader",
            "ResultWriter",
            "ToleratedFailurePercentage",
            "ToleratedFailureCount",
            "Label",
        }
        _refuse_extra(label, "on an INLINE map the field", state, set(state) - distributed_only)
    reader = state.get("ItemReader")
    if reader is not None:
        _refuse_extra(label, "the ItemReader field", reader, {"Resource", "ReaderConfig", "Parameters"})
        if not _S3_GET.match(str(reader.get("Resource", ""))):
            raise _refuse(label, f"the ItemReader Resource {reader.get('Resource')!r} (only s3:getObject)")
        reader_config = reader.get("ReaderConfig", {})
        if reader_config.get("InputType") != "JSON" or set(reader_config) - {"InputType", "MaxItems"}:
            raise _refuse(label, f"the ItemReader ReaderConfig {dict(reader_config)} (only InputType JSON, MaxItems)")
        _check_template(label, "ItemReader.Parameters", reader.get("Parameters"))
    writer = state.get("ResultWriter")
    if writer is not None:
        if not _S3_PUT.match(str(writer.get("Resource", ""))) or set(writer) - {
            "Resource",
            "Parameters",
            "WriterConfig",
        }:
            raise _refuse(label, f"the ResultWriter {dict(writer)} (only s3:putObject with Bucket and Prefix)")
        if writer.get("WriterConfig", {"Transformation": "NONE", "OutputType": "JSON"}) != {
            "Transformation": "NONE",
            "OutputType": "JSON",
        }:
            raise _refuse(label, f"the ResultWriter WriterConfig {writer.get('WriterConfig')}")
        _check_template(label, "ResultWriter.Parameters", writer.get("Parameters"))
    check_definition(processor, where=f"{label} > ")


# --- the interpreter --------------------------------------------------------------------------------------


def _matches(patterns: Sequence[str], error: str) -> bool:
    if error == "States.Runtime":
        return False  # terminal: no retrier or catcher takes it
    return (
        error in patterns or "States.ALL" in patterns or ("States.TaskFailed" in patterns and error != "States.Timeout")
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _Run:
    """What the states of one execution (and of its map children) share."""

    invoke: Invoke
    s3: Any
    region: str
    account: str
    machine: str
    history: list[HistoryEvent]
    map_runs: list[MapRun]

    def record(self, kind: str, state: str, execution: str, **detail: Any) -> None:
        self.history.append(HistoryEvent(kind, state, execution, detail))


class _Execution:
    """One execution of a definition: the top one, or a map's child (an iteration or a child execution)."""

    def __init__(self, run: _Run, definition: Mapping[str, Any], context: dict[str, Any], name: str) -> None:
        self.run = run
        self.definition = definition
        self.context = context
        self.name = name

    def execute(self, data: Any) -> Any:
        """Run from ``StartAt`` to a terminal state; the output, or :class:`StatesError` for a failure."""
        current: str | None = self.definition["StartAt"]
        while current is not None:
            state = self.definition["States"][current]
            self.context["State"] = {"Name": current, "EnteredTime": _now(), "RetryCount": 0}
            self.run.record(f"{state['Type']}StateEntered", current, self.name, input=data)
            data, current = self._step(current, state, data)
        return data

    def _step(self, name: str, state: Mapping[str, Any], data: Any) -> tuple[Any, str | None]:
        kind = state["Type"]
        if kind == "Fail":
            error = read_path(state["ErrorPath"], data, self.context) if "ErrorPath" in state else state.get("Error")
            cause = read_path(state["CausePath"], data, self.context) if "CausePath" in state else state.get("Cause")
            raise StatesError(str(error or "States.Fail"), str(cause or ""))
        effective = read_path(state.get("InputPath", "$"), data, self.context) if state.get("InputPath", "$") else {}
        if kind == "Choice":
            following = self._choose(name, state, effective)
            return self._exit(name, state, effective, effective, following)
        if kind == "Succeed":
            return self._exit(name, state, data, effective, None)
        if kind == "Pass":
            result = effective
            if "Result" in state:
                result = copy.deepcopy(state["Result"])
            elif "Parameters" in state:
                result = render(state["Parameters"], effective, self.context)
            return self._finish(name, state, data, result)
        try:
            result = self._with_retries(name, state, effective)
        except StatesError as failure:
            catcher = next((c for c in state.get("Catch", []) if _matches(c["ErrorEquals"], failure.error)), None)
            if catcher is None:
                raise
            self.run.record(
                "CatchTaken", name, self.name, error=failure.error, cause=failure.cause, next=catcher["Next"]
            )
            info = {"Error": failure.error, "Cause": failure.cause}
            path = catcher.get("ResultPath", "$")
            output = data if path is None else _set_path(path, data, info)
            self.run.record(f"{kind}StateExited", name, self.name, output=output)
            return output, catcher["Next"]
        if "ResultSelector" in state:
            result = render(state["ResultSelector"], result, self.context)
        return self._finish(name, state, data, result)

    def _finish(self, name: str, state: Mapping[str, Any], data: Any, result: Any) -> tuple[Any, str | None]:
        path = state.get("ResultPath", "$")
        combined = data if path is None else _set_path(path, data, result)
        return self._exit(name, state, data, combined, None if state.get("End") else state.get("Next"))

    def _exit(
        self, name: str, state: Mapping[str, Any], data: Any, combined: Any, following: str | None
    ) -> tuple[Any, str | None]:
        output_path = state.get("OutputPath", "$")
        output = read_path(output_path, combined, self.context) if output_path is not None else {}
        self.run.record(f"{state['Type']}StateExited", name, self.name, output=output)
        return output, following

    def _with_retries(self, name: str, state: Mapping[str, Any], effective: Any) -> Any:
        attempts: dict[int, int] = {}
        while True:
            try:
                if state["Type"] == "Map":
                    return self._map(name, state, effective)
                return self._task(name, state, effective)
            except StatesError as failure:
                retriers = state.get("Retry", [])
                index = next((i for i, r in enumerate(retriers) if _matches(r["ErrorEquals"], failure.error)), None)
                if index is None:
                    raise
                retrier = retriers[index]
                done = attempts.get(index, 0)
                if done >= int(retrier.get("MaxAttempts", 3)):
                    raise
                attempts[index] = done + 1
                delay = float(retrier.get("IntervalSeconds", 1)) * float(retrier.get("BackoffRate", 2.0)) ** done
                delay = min(delay, float(retrier.get("MaxDelaySeconds", delay)))
                self.context["State"]["RetryCount"] = sum(attempts.values())
                self.run.record("RetryScheduled", name, self.name, error=failure.error, attempt=done + 1, delay=delay)

    def _task(self, name: str, state: Mapping[str, Any], effective: Any) -> Any:
        resource = str(state["Resource"])
        parameters = render(state["Parameters"], effective, self.context) if "Parameters" in state else effective
        if _LAMBDA_INVOKE.match(resource):
            function, payload = str(parameters["FunctionName"]), parameters.get("Payload", {})
        else:
            function, payload = resource, parameters
        request_id = str(uuid.uuid4())
        self.run.record("TaskScheduled", name, self.name, resource=resource, function=function, payload=payload)
        try:
            result = _as_json(self.run.invoke(function, _as_json(payload, "the payload")), "the function's result")
        except StatesError:
            raise
        except Exception as error:  # the handler raised: Lambda reports a function error
            cause = {
                "errorMessage": str(error),
                "errorType": type(error).__name__,
                "requestId": request_id,
                "stackTrace": traceback.format_exception(error)[1:],
            }
            self.run.record("TaskFailed", name, self.name, error=type(error).__name__, cause=str(error))
            raise StatesError(type(error).__name__, _json_text(cause)) from error
        self.run.record("TaskSucceeded", name, self.name, output=result)
        if not _LAMBDA_INVOKE.match(resource):
            return result
        headers = {
            "Content-Type": "application/json",
            "X-Amz-Executed-Version": "$LATEST",
            "x-amzn-RequestId": request_id,
        }
        return {
            "ExecutedVersion": "$LATEST",
            "Payload": result,
            "SdkHttpMetadata": {
                "AllHttpHeaders": {k: [v] for k, v in headers.items()},
                "HttpHeaders": headers,
                "HttpStatusCode": 200,
            },
            "SdkResponseMetadata": {"RequestId": request_id},
            "StatusCode": 200,
        }

    def _choose(self, name: str, state: Mapping[str, Any], data: Any) -> str:
        for rule in state.get("Choices", []):
            if _rule_holds(name, rule, data, self.context):
                return str(rule["Next"])
        if "Default" in state:
            return str(state["Default"])
        raise StatesError("States.NoChoiceMatched", f"No Choice Rule of state {name!r} matched and it has no Default")

    # --- Map ---

    def _map(self, name: str, state: Mapping[str, Any], effective: Any) -> Any:
        processor = state.get("ItemProcessor") or state["Iterator"]
        distributed = processor.get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED"
        items = self._items(name, state, effective)
        selector = state.get("ItemSelector", state.get("Parameters"))
        if not distributed:
            outputs = []
            for index, item in enumerate(items):
                context = {**self.context, "Map": {"Item": {"Index": index, "Value": item}}}
                child_input = render(selector, effective, context) if selector is not None else item
                outputs.append(_Execution(self.run, processor, context, self.name).execute(child_input))
            return outputs
        return _DistributedMap(self, name, state, processor).run(items, effective, selector)

    def _items(self, name: str, state: Mapping[str, Any], effective: Any) -> list[Any]:
        reader = state.get("ItemReader")
        if reader is None:
            items = read_path(state.get("ItemsPath", "$"), effective, self.context)
        else:
            where = render(reader.get("Parameters", {}), effective, self.context)
            try:
                body = self.run.s3.get_object(Bucket=where["Bucket"], Key=where["Key"])["Body"].read()
                items = json.loads(body)
            except Exception as error:
                raise StatesError(
                    "States.ItemReaderFailed", f"reading s3://{where.get('Bucket')}/{where.get('Key')}: {error}"
                ) from error
            limit = reader.get("ReaderConfig", {}).get("MaxItems")
            if isinstance(items, list) and limit:
                items = items[: int(limit)]
        if not isinstance(items, list):
            raise StatesError("States.Runtime", f"the items of Map state {name!r} are not a JSON array")
        return items


def _rule_holds(name: str, rule: Mapping[str, Any], data: Any, context: Mapping[str, Any]) -> bool:
    if "And" in rule:
        return all(_rule_holds(name, r, data, context) for r in rule["And"])
    if "Or" in rule:
        return any(_rule_holds(name, r, data, context) for r in rule["Or"])
    if "Not" in rule:
        return not _rule_holds(name, rule["Not"], data, context)
    operators = set(rule) - {"Variable", "Next"}
    if len(operators) != 1:
        raise UnsupportedDefinition(f"state {name!r}: the Choice rule {dict(rule)} has no single comparison")
    operator = operators.pop()
    variable = str(rule["Variable"])
    if operator == "IsPresent":
        try:
            read_path(variable, data, context)
        except StatesError:
            return not rule[operator]
        return bool(rule[operator])
    value = read_path(variable, data, context)
    if operator in _TYPE_TESTS:
        return bool(_TYPE_TESTS[operator](value)) == bool(rule[operator])
    base = operator.removesuffix("Path")
    if base not in _COMPARISONS:
        raise _refuse(name, f"the Choice operator {operator}")
    expected = read_path(rule[operator], data, context) if operator.endswith("Path") else rule[operator]
    return bool(_COMPARISONS[base](value, expected))


def _as_json(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as error:
        raise StatesError("States.Runtime", f"{what} is not JSON: {error}") from error


class _DistributedMap:
    """A distributed map's run: its items as child executions, the tolerated failures, the ResultWriter."""

    def __init__(self, parent: _Execution, name: str, state: Mapping[str, Any], processor: Mapping[str, Any]) -> None:
        self.parent = parent
        self.name = name
        self.state = state
        self.processor = processor
        self.run_id = str(uuid.uuid4())
        run = parent.run
        label = state.get("Label", name)
        self.arn = f"arn:aws:states:{run.region}:{run.account}:mapRun:{run.machine}/{label}:{self.run_id}"
        self.child_machine = f"arn:aws:states:{run.region}:{run.account}:stateMachine:{run.machine}/{label}"
        self.child_prefix = f"arn:aws:states:{run.region}:{run.account}:execution:{run.machine}/{label}"

    def _tolerated(self, failed: int, total: int) -> bool:
        count = self.state.get("ToleratedFailureCount")
        percentage = self.state.get("ToleratedFailurePercentage")
        if count is None and percentage is None:
            return failed == 0
        too_many = count is not None and failed > int(count)
        too_many |= percentage is not None and total > 0 and failed * 100 / total > float(percentage)
        return not too_many

    def run(self, items: list[Any], effective: Any, selector: Any) -> Any:
        run = self.parent.run
        run.record("MapRunStarted", self.name, self.parent.name, map_run=self.arn, items=len(items))
        records: dict[str, list[dict[str, Any]]] = {"SUCCEEDED": [], "FAILED": [], "PENDING": []}
        outputs: list[Any] = []
        exceeded = False
        for index, item in enumerate(items):
            context = {**self.parent.context, "Map": {"Item": {"Index": index, "Value": item}}}
            child_input = render(selector, effective, context) if selector is not None else item
            if exceeded:
                records["PENDING"].append({"Input": _json_text(child_input), "InputDetails": {"Included": True}})
                continue
            outputs.append(self._child(context, child_input, records))
            exceeded = not self._tolerated(len(records["FAILED"]), len(items))
        counts = {status: len(found) for status, found in records.items()}
        details = self._write(records, effective) if "ResultWriter" in self.state else None
        run.map_runs.append(
            MapRun(self.arn, self.name, counts["SUCCEEDED"], counts["FAILED"], counts["PENDING"], details)
        )
        if exceeded:
            run.record("MapRunFailed", self.name, self.parent.name, map_run=self.arn, **counts)
            raise StatesError(
                "States.ExceedToleratedFailureThreshold",
                f"The specified tolerated failure threshold was exceeded: {counts['FAILED']} of {len(items)} "
                f"child executions of Map Run {self.arn} failed",
            )
        run.record("MapRunSucceeded", self.name, self.parent.name, map_run=self.arn, **counts)
        if details is not None:
            return {"MapRunArn": self.arn, "ResultWriterDetails": details}
        return outputs

    def _child(self, context: dict[str, Any], child_input: Any, records: dict[str, list[dict[str, Any]]]) -> Any:
        child_name = str(uuid.uuid4())
        arn = f"{self.child_prefix}:{child_name}"
        started = _now()
        child_context = {
            **context,
            "Execution": {"Id": arn, "Name": child_name, "StartTime": started, "Input": child_input},
            "StateMachine": {"Id": self.child_machine, "Name": f"{self.parent.run.machine}/{self.name}"},
        }
        record: dict[str, Any] = {
            "ExecutionArn": arn,
            "Input": _json_text(child_input),
            "InputDetails": {"Included": True},
            "Name": child_name,
            "RedriveCount": 0,
            "StartDate": started,
            "StateMachineArn": self.child_machine,
        }
        try:
            output = _Execution(self.parent.run, self.processor, child_context, child_name).execute(child_input)
        except StatesError as failure:
            reason = "Execution is FAILED and can be redriven by the Map Run"
            record |= {"Error": failure.error, "Cause": failure.cause, "Status": "FAILED", "StopDate": _now()}
            record |= {"RedriveStatus": "REDRIVABLE_BY_MAP_RUN", "RedriveStatusReason": reason}
            records["FAILED"].append(record)
            return {"Error": failure.error, "Cause": failure.cause}
        record |= {"Output": _json_text(output), "OutputDetails": {"Included": True}, "Status": "SUCCEEDED"}
        reason = "Execution is SUCCEEDED and cannot be redriven"
        record |= {"RedriveStatus": "NOT_REDRIVABLE", "RedriveStatusReason": reason, "StopDate": _now()}
        records["SUCCEEDED"].append(record)
        return output

    def _write(self, records: Mapping[str, list[dict[str, Any]]], effective: Any) -> dict[str, str]:
        """Write the results in the documented layout; where the manifest is (``ResultWriterDetails``)."""
        where = render(self.state["ResultWriter"].get("Parameters", {}), effective, self.parent.context)
        bucket, prefix = str(where.get("Bucket", "")), str(where.get("Prefix", "")).rstrip("/")
        base = f"{prefix}/{self.run_id}" if prefix else self.run_id
        files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
        try:
            for status, found in records.items():
                if found:
                    body = _json_text(found).encode()
                    key = f"{base}/{status}_0.json"
                    self.parent.run.s3.put_object(Bucket=bucket, Key=key, Body=body)
                    files[status].append({"Key": key, "Size": len(body)})
            manifest = {"DestinationBucket": bucket, "MapRunArn": self.arn, "ResultFiles": files}
            self.parent.run.s3.put_object(
                Bucket=bucket, Key=f"{base}/manifest.json", Body=_json_text(manifest).encode()
            )
        except Exception as error:
            raise StatesError("States.ResultWriterFailed", f"writing to s3://{bucket}/{base}/: {error}") from error
        return {"Bucket": bucket, "Key": f"{base}/manifest.json"}


# --- executions ------------------------------------------------------------------------------------------


def start_execution(
    definition: Mapping[str, Any] | str,
    execution_input: Any = None,
    *,
    invoke: Invoke,
    name: str | None = None,
    s3: Any = None,
    state_machine_arn: str = "arn:aws:states:us-east-1:123456789012:stateMachine:local",
) -> ExecutionResult:
    """Run one execution of a definition to its end, as Step Functions runs it (module docstring).

    Args:
        definition: The States Language definition (parsed, or its JSON text).
        execution_input: The execution's input. Default: - ``{}``, as StartExecution without input.
        invoke: Invokes a Lambda function: ``invoke(FunctionName, payload) -> result``; a raised
            exception is a function error. :class:`LocalLambda` runs the deployed handlers.
        name: The execution's name. Default: - a new UUID, as StartExecution names one.
        s3: An S3 client, for a map's ``ItemReader`` and ``ResultWriter``. Default: - none (such a map fails).
        state_machine_arn: The state machine's ARN (region, account and name of the execution's
            and map runs' ARNs). Default: - a state machine ``local`` of account 123456789012.

    Returns:
        The result: ``SUCCEEDED`` with the output, or ``FAILED`` with the error and cause, and the history.

    Raises:
        UnsupportedDefinition: before anything runs, if the definition uses what is not emulated.
    """
    parsed = json.loads(definition) if isinstance(definition, str) else definition
    check_definition(parsed)
    parts = state_machine_arn.split(":")
    if len(parts) < 7 or parts[5] != "stateMachine":
        raise ValueError(f"{state_machine_arn!r} is not a state machine ARN (arn:aws:states:<region>:<account>:...)")
    region, account, machine = parts[3], parts[4], parts[6]
    name = name or str(uuid.uuid4())
    arn = f"arn:aws:states:{region}:{account}:execution:{machine}:{name}"
    data = {} if execution_input is None else _as_json(execution_input, "the execution input")
    run = _Run(invoke, s3, region, account, machine, [], [])
    context = {
        "Execution": {"Id": arn, "Name": name, "StartTime": _now(), "Input": data},
        "StateMachine": {"Id": state_machine_arn, "Name": machine},
    }
    result = ExecutionResult(arn, name, "RUNNING", history=run.history, map_runs=run.map_runs)
    run.record("ExecutionStarted", "", name, input=data)
    try:
        result.output = _Execution(run, parsed, context, name).execute(data)
    except StatesError as failure:
        result.status, result.error, result.cause = "FAILED", failure.error, failure.cause
        run.record("ExecutionFailed", "", name, error=failure.error, cause=failure.cause)
        return result
    result.status = "SUCCEEDED"
    run.record("ExecutionSucceeded", "", name, output=result.output)
    return result


class LocalLambda:
    """Invokes deployed functions in this process, as Lambda runs them (:data:`Invoke`).

    Each function's configuration is read once (``GetFunctionConfiguration``); its handler, which
    must lie in ``cdk_mlops.lambdas`` (a definition names no other code to import), runs in one
    warm :class:`~cdk_mlops.local.runtime.LambdaContainer` per function, with the function's
    environment and the local endpoint.
    """

    def __init__(self, aws: LocalAws) -> None:
        self.aws = aws
        self._containers: dict[str, tuple[LambdaContainer, Callable[[Any, Any], Any]]] = {}

    def __call__(self, function: str, payload: Any) -> Any:
        """Invoke ``function`` (name or ARN) with ``payload``; what the handler returns (or raises)."""
        container, entry = self._container(function)
        with container.invocation() as context:
            return entry(payload, context)

    def _container(self, function: str) -> tuple[LambdaContainer, Callable[[Any, Any], Any]]:
        if function not in self._containers:
            configuration = FunctionConfiguration.read(self.aws, function)
            if not configuration.handler.startswith(HANDLER_PACKAGE):
                raise StatesError(
                    "Lambda.ServiceException",
                    f"function {configuration.name} has handler {configuration.handler}: only handlers of "
                    f"{HANDLER_PACKAGE.rstrip('.')} run locally",
                )
            module, _, attribute = configuration.handler.rpartition(".")
            entry = getattr(importlib.import_module(module), attribute)
            self._containers[function] = (LambdaContainer(configuration, aws=self.aws), entry)
        return self._containers[function]


def deployed_definition(aws: LocalAws, state_machine_arn: str) -> dict[str, Any]:
    """The definition of a state machine on the local AWS (``DescribeStateMachine``)."""
    described = aws.client("stepfunctions").describe_state_machine(stateMachineArn=state_machine_arn)
    definition: dict[str, Any] = json.loads(described["definition"])
    return definition


def status_change_entry(
    result: ExecutionResult,
    state_machine_arn: str,
    execution_input: Any,
    started: datetime,
    stopped: datetime,
) -> dict[str, Any]:
    """The ``PutEvents`` entry of an ended execution's ``Step Functions Execution Status Change`` event.

    Its ``detail`` holds what ``DescribeExecution`` returns, as Step Functions documents the event:
    the dates as epoch milliseconds, ``input`` and ``output`` as JSON strings with their
    ``...Details.included``, and ``error`` and ``cause`` of a failed execution.
    """
    detail: dict[str, Any] = {
        "executionArn": result.arn,
        "stateMachineArn": state_machine_arn,
        "name": result.name,
        "status": result.status,
        "startDate": int(started.timestamp() * 1000),
        "stopDate": int(stopped.timestamp() * 1000),
        "input": _json_text({} if execution_input is None else execution_input),
        "inputDetails": {"included": True},
        "output": _json_text(result.output) if result.status == "SUCCEEDED" else None,
        "outputDetails": {"included": True},
    }
    if result.status != "SUCCEEDED":
        detail.update(error=result.error, cause=result.cause)
    return {
        "Source": STATES_SOURCE,
        "DetailType": EXECUTION_STATUS_CHANGE,
        "Detail": json.dumps(detail),
        "Resources": [result.arn],
        "Time": stopped,
    }


def run_state_machine(
    aws: LocalAws,
    state_machine_arn: str,
    execution_input: Any = None,
    *,
    name: str | None = None,
    invoke: Invoke | None = None,
) -> ExecutionResult:
    """Run one execution of a deployed state machine, its Lambda functions in this process.

    When it ends, its ``Step Functions Execution Status Change`` event goes on the default event
    bus (:func:`status_change_entry`), as Step Functions sends it for a standard workflow; moto
    runs no execution, so it sends none.

    Args:
        aws: The local AWS (the definition, the functions' configurations, S3, EventBridge).
        state_machine_arn: The state machine to run.
        execution_input: The execution's input. Default: - ``{}``.
        name: The execution's name. Default: - a new UUID.
        invoke: How functions are invoked. Default: - :class:`LocalLambda` on ``aws``.
    """
    started = datetime.now(UTC)
    result = start_execution(
        deployed_definition(aws, state_machine_arn),
        execution_input,
        invoke=invoke or LocalLambda(aws),
        name=name,
        s3=aws.client("s3"),
        state_machine_arn=state_machine_arn,
    )
    entry = status_change_entry(result, state_machine_arn, execution_input, started, datetime.now(UTC))
    aws.client("events").put_events(Entries=[entry])
    return result
