"""SageMaker Pipelines step arguments, checked as the API requests SageMaker makes from them.

When an execution runs a job step, SageMaker Pipelines substitutes the parameter values, the
execution variables and the properties of earlier steps into the step's ``Arguments``,
evaluates ``Std:Join``, adds the job's name, and calls the API of the step type
(:data:`STEP_APIS`). This module builds the same requests offline and validates each one with
botocore's parameter validation against the SageMaker service model (members, types,
required members, minimum lengths and values), plus the constraints that botocore leaves to
the service: maximum lengths and values, enum values and ``pattern`` regular expressions.

The parameter values are those of real starts (:func:`executions`): each parameter's default,
and the values the retrain trigger sends, with and without a champion.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from types import MappingProxyType
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, ServiceModel, Shape, StringShape, StructureShape
from botocore.validate import ParamValidator

from cdk_mlops import champion, datasets
from cdk_mlops.lambdas.retrain_trigger import core


@dataclass(frozen=True)
class StepApi:
    """The SageMaker API behind a step type.

    Attributes:
        create: The operation the step's ``Arguments`` are a request of.
        describe: The operation whose response holds the step's properties (``Steps.X.*``).
            Default: - none; the step's properties are not an API response.
        name_member: The request member that SageMaker fills in with a generated name.
            Default: - none; the request names nothing the service generates.
    """

    create: str
    describe: str | None = None
    name_member: str | None = None


#: The API each job step type calls with its ``Arguments``.
STEP_APIS: Mapping[str, StepApi] = MappingProxyType(
    {
        "Processing": StepApi("CreateProcessingJob", "DescribeProcessingJob", "ProcessingJobName"),
        "Training": StepApi("CreateTrainingJob", "DescribeTrainingJob", "TrainingJobName"),
        "Tuning": StepApi(
            "CreateHyperParameterTuningJob", "DescribeHyperParameterTuningJob", "HyperParameterTuningJobName"
        ),
        "Transform": StepApi("CreateTransformJob", "DescribeTransformJob", "TransformJobName"),
        "Model": StepApi("CreateModel", "DescribeModel", "ModelName"),
        "RegisterModel": StepApi("CreateModelPackage", "DescribeModelPackage"),
        # Check steps run a processing job (the Model Monitor analyzer, SageMaker Clarify).
        "QualityCheck": StepApi("CreateProcessingJob", None, "ProcessingJobName"),
        "ClarifyCheck": StepApi("CreateProcessingJob", None, "ProcessingJobName"),
    }
)
#: Step types whose ``Arguments`` are no SageMaker API request.
NO_API_STEPS = frozenset({"Condition", "Fail", "Lambda", "Callback", "EMR"})
#: The starts every pipeline is checked with (:func:`executions`).
DEFAULTS, FIRST_MODEL, WITH_CHAMPION = "defaults", "retrain trigger, first model", "retrain trigger, with a champion"
SCENARIOS = (DEFAULTS, FIRST_MODEL, WITH_CHAMPION)
#: What ``Std:JsonGet`` gives: a value read from a property file at run time.
JSON_GET_VALUE = "0.87"


@cache
def sagemaker_model() -> ServiceModel:
    """botocore's SageMaker service model (the one boto3 validates requests with)."""
    return service_model("sagemaker")


@cache
def service_model(service: str) -> ServiceModel:
    """botocore's model of an AWS service, e.g. ``application-autoscaling``."""
    model: ServiceModel = botocore.session.get_session().get_service_model(service)
    return model


def _shape(operation: str, *, output: bool = False, service: str = "sagemaker") -> StructureShape:
    model = service_model(service).operation_model(operation)
    shape = model.output_shape if output else model.input_shape
    if shape is None:
        raise LookupError(f"SageMaker's {operation} has no {'output' if output else 'input'}")
    return shape


# ------------------------------------------------------------------------------ validation


@cache
def _pattern(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None  # Java-only syntax such as \p{L}: not checked here


_NUMBERS = frozenset({"integer", "long", "float", "double"})


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def constraint_problems(value: Any, shape: Shape, path: str = "") -> list[str]:
    """What botocore's ParamValidator does not check: ``max``, ``enum`` and ``pattern``, with paths.

    Lengths of strings, lists and maps and values of numbers are compared with the shape's
    ``max``; strings with its enum values and, with ``re.fullmatch``, its pattern (a pattern
    Python cannot compile is skipped). Members the shape does not have and values of the
    wrong type are left to ParamValidator, which reports them.
    """
    where = path or "the request"
    limit = shape.metadata.get("max")
    problems: list[str] = []
    if isinstance(shape, StructureShape) and isinstance(value, Mapping):
        for name, item in value.items():
            if name in shape.members:
                problems += constraint_problems(item, shape.members[name], f"{path}.{name}" if path else name)
    elif isinstance(shape, ListShape) and isinstance(value, list):
        if limit is not None and len(value) > limit:
            problems.append(f"{where}: {len(value)} items; at most {limit} allowed")
        for index, item in enumerate(value):
            problems += constraint_problems(item, shape.member, f"{path}[{index}]")
    elif isinstance(shape, MapShape) and isinstance(value, Mapping):
        if limit is not None and len(value) > limit:
            problems.append(f"{where}: {len(value)} entries; at most {limit} allowed")
        for key, item in value.items():
            problems += constraint_problems(key, shape.key, f"{where} key {key!r}")
            problems += constraint_problems(item, shape.value, f"{path}[{key!r}]")
    elif isinstance(shape, StringShape) and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            problems.append(f"{where}: {_shown(value)} is not one of {', '.join(shape.enum)}")
        if limit is not None and len(value) > limit:
            problems.append(f"{where}: {len(value)} characters; at most {limit} allowed")
        pattern = _pattern(shape.metadata["pattern"]) if "pattern" in shape.metadata else None
        if pattern is not None and not pattern.fullmatch(value):
            problems.append(f"{where}: {_shown(value)} does not match the pattern {pattern.pattern}")
    elif shape.type_name in _NUMBERS and isinstance(value, int | float) and limit is not None and value > limit:
        problems.append(f"{where}: {value} is more than the maximum {limit}")
    return problems


def request_problems(operation: str, params: Mapping[str, Any], *, service: str = "sagemaker") -> list[str]:
    """Every reason an AWS API would reject ``params`` as a request of ``operation``.

    botocore's ParamValidator (unknown and missing members, types, minimums) first, then
    :func:`constraint_problems`.

    Args:
        operation: e.g. ``CreateEndpointConfig``.
        params: The request.
        service: The botocore service name. Default: - ``sagemaker``.
    """
    shape = _shape(operation, service=service)
    report = ParamValidator().validate(params, shape)
    found = report.generate_report().splitlines() if report.has_errors() else []
    return found + constraint_problems(params, shape)


# ------------------------------------------------------------------------------ executions


@dataclass(frozen=True)
class Execution:
    """One execution of a pipeline: where it runs and the parameter values it was started with.

    Attributes:
        scenario: Who started it, e.g. ``defaults``.
        pipeline_name: The pipeline.
        region: The pipeline's region.
        account: The pipeline's account.
        sent: The ``PipelineParameters`` of StartPipelineExecution (strings); the others keep
            their defaults.
        execution_id: The ``PipelineExecutionId``.
    """

    scenario: str
    pipeline_name: str
    region: str
    account: str
    sent: Mapping[str, str] = field(default_factory=dict)
    execution_id: str = "a1b2c3d4e5f6"

    @property
    def execution_arn(self) -> str:
        return f"{self.pipeline_arn}/execution/{self.execution_id}"

    @property
    def pipeline_arn(self) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:pipeline/{self.pipeline_name}"

    def variables(self) -> dict[str, str]:
        """The execution variables (``Execution.*``) with values of this execution."""
        started = datetime(2025, 1, 31, 12, 0, tzinfo=UTC).isoformat()
        return {
            "PipelineExecutionId": self.execution_id,
            "PipelineExecutionArn": self.execution_arn,
            "PipelineName": self.pipeline_name,
            "PipelineArn": self.pipeline_arn,
            "StartDateTime": started,
            "CurrentDateTime": started,
            "TrainingJobName": self.job_name("Train"),
            "ProcessingJobName": self.job_name("Preprocess"),
        }

    def job_name(self, step: str) -> str:
        """The name SageMaker gives a step's job: ``pipelines-<execution id>-<step>-<suffix>``."""
        readable = re.sub(r"[^A-Za-z0-9]+", "-", f"pipelines-{self.execution_id}-{step}")[:52].strip("-")
        return f"{readable}-k3j9x2m7q1"


_PARAMETER_TYPES = {"String": str, "Integer": int, "Float": float}


def parameter_values(definition: Mapping[str, Any], sent: Mapping[str, str]) -> dict[str, Any]:
    """Each declared parameter's value in an execution started with ``sent``, of its declared type.

    Raises:
        ValueError: for a sent parameter that is not declared, or a declared one with neither
            a value nor a default (StartPipelineExecution rejects both).
    """
    declared = {p["Name"]: p for p in definition.get("Parameters", [])}
    undeclared = sorted(set(sent) - set(declared))
    if undeclared:
        raise ValueError(f"the execution sends {undeclared}, which the definition does not declare")
    values: dict[str, Any] = {}
    for name, parameter in declared.items():
        raw = sent.get(name, parameter.get("DefaultValue"))
        if raw is None:
            raise ValueError(f"parameter {name} has no default and the execution does not send it")
        kind = parameter["Type"]
        if kind == "Boolean":
            values[name] = raw if isinstance(raw, bool) else str(raw).lower() == "true"
        else:
            values[name] = _PARAMETER_TYPES[kind](raw)
    return values


# ------------------------------------------------------------------------------ substitution


def example_value(shape: Shape, name: str, execution: Execution) -> Any:
    """A plausible value of ``shape`` (a member named ``name``), for a step property."""
    if isinstance(shape, StringShape):
        if shape.enum:
            return shape.enum[0]
        if name.endswith(("Uri", "Url", "Artifacts")) or name.startswith("S3"):
            text = f"s3://example-bucket/pipelines/{execution.execution_id}/{name.lower()}"
        elif name.endswith("Arn"):
            text = f"arn:aws:sagemaker:{execution.region}:{execution.account}:example/{name.lower()}"
        else:
            text = execution.job_name(name)
        # The value stands for what the service returns, so it must satisfy the member's own constraints.
        problems = constraint_problems(text, shape, name)
        if problems:
            raise ValueError(f"no plausible value for the property {name}: {problems}; extend example_value")
        return text
    if shape.type_name in ("integer", "long"):
        return max(1, int(shape.metadata.get("min", 1)))
    if shape.type_name in ("float", "double"):
        return 0.5
    if shape.type_name == "boolean":
        return True
    if shape.type_name == "timestamp":
        return datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
    if isinstance(shape, ListShape):
        return [example_value(shape.member, name, execution)]
    return {}


_PROPERTY_PART = re.compile(r"\.?([A-Za-z0-9_]+)|\[([^\]]*)\]")


def property_value(step_type: str, path: str, execution: Execution) -> Any:
    """A value of the right botocore type for a step property such as ``ModelArtifacts.S3ModelArtifacts``.

    Raises:
        ValueError: when the step type's Describe response has no such member.
    """
    api = STEP_APIS.get(step_type)
    if api is None or api.describe is None:
        return f"example-{path.rsplit('.', 1)[-1].lower()}"
    shape: Shape = _shape(api.describe, output=True)
    name = api.describe
    for member, index in _PROPERTY_PART.findall(path):
        if member and isinstance(shape, StructureShape) and member in shape.members:
            shape, name = shape.members[member], member
        elif index and isinstance(shape, ListShape):
            shape = shape.member
        elif index and isinstance(shape, MapShape):
            shape = shape.value
        else:
            raise ValueError(f"{api.describe} has no property {path!r} (at {member or index!r})")
    return example_value(shape, name, execution)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def substitute(node: Any, execution: Execution, parameters: Mapping[str, Any], step_types: Mapping[str, str]) -> Any:
    """``node`` with every Pipelines expression replaced by its value in ``execution``.

    ``Get`` of a parameter gives its typed value, of an execution variable its value, of a
    step property a plausible value of the property's type; ``Std:Join`` is evaluated and
    ``Std:JsonGet`` gives :data:`JSON_GET_VALUE`.
    """

    def walk(value: Any) -> Any:
        if isinstance(value, list):
            return [walk(v) for v in value]
        if not isinstance(value, dict):
            return value
        if value.keys() == {"Get"}:
            namespace, _, rest = value["Get"].partition(".")
            if namespace == "Parameters":
                return parameters[rest]
            if namespace == "Execution":
                return execution.variables()[rest]
            if namespace == "Steps":
                step, _, path = rest.partition(".")
                return property_value(step_types[step], path, execution)
            raise ValueError(f"unknown reference {value['Get']!r}")
        if value.keys() == {"Std:Join"}:
            join = value["Std:Join"]
            return join["On"].join(_as_text(walk(v)) for v in join["Values"])
        if value.keys() == {"Std:JsonGet"}:
            return JSON_GET_VALUE
        return {k: walk(v) for k, v in value.items()}

    return walk(node)


# ------------------------------------------------------------------------------ steps


@dataclass(frozen=True)
class StepRequest:
    """The API request one step of one execution makes."""

    step: str
    step_type: str
    operation: str
    params: dict[str, Any]

    def problems(self) -> list[str]:
        """Every reason the API would reject the request (see :func:`request_problems`)."""
        return request_problems(self.operation, self.params)


def every_step(steps: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """The steps of a definition, those in condition branches included."""
    for step in steps:
        yield step
        if step.get("Type") == "Condition":
            arguments = step.get("Arguments", {})
            yield from every_step([*arguments.get("IfSteps", []), *arguments.get("ElseSteps", [])])


class UnknownStepTypeError(ValueError):
    """A step type that is neither in STEP_APIS nor in NO_API_STEPS."""


def step_requests(definition: Mapping[str, Any], execution: Execution) -> list[StepRequest]:
    """The request of every job step of ``definition`` in ``execution``.

    Raises:
        UnknownStepTypeError: for a step type this module does not know, so that a new kind
            of step cannot go unchecked.
    """
    steps = list(every_step(definition.get("Steps", [])))
    step_types = {step["Name"]: step["Type"] for step in steps}
    unknown = sorted(set(step_types.values()) - STEP_APIS.keys() - NO_API_STEPS)
    if unknown:
        raise UnknownStepTypeError(
            f"step types {unknown} are not known to the contract checks; add each to STEP_APIS (with the "
            "SageMaker API its Arguments are a request of) or to NO_API_STEPS"
        )
    parameters = parameter_values(definition, execution.sent)
    requests: list[StepRequest] = []
    for step in steps:
        api = STEP_APIS.get(step["Type"])
        if api is None:
            continue
        params = substitute(step["Arguments"], execution, parameters, step_types)
        if api.name_member is not None:
            # SageMaker Pipelines names each job itself; the definition leaves the name out.
            params[api.name_member] = execution.job_name(step["Name"])
        requests.append(StepRequest(step["Name"], step["Type"], api.create, params))
    return requests


def problems_by_step(definition: Mapping[str, Any], execution: Execution) -> dict[str, list[str]]:
    """``{"<step> (<operation>)": [problem, ...]}`` for every step whose request the API would reject."""
    found: dict[str, list[str]] = {}
    for request in step_requests(definition, execution):
        problems = request.problems()
        if problems:
            found[f"{request.step} ({request.operation})"] = problems
    return found


def assert_valid_step_requests(pipelines: Sequence[Any], scenario: str) -> None:
    """Fail, listing each problem by pipeline and step, unless every step request of ``pipelines`` is valid.

    Args:
        pipelines: ``DeployedPipeline`` objects (``tests.contracts.variants``).
        scenario: One of :data:`SCENARIOS`: who starts the executions.
    """
    assert pipelines, "no pipeline to check"
    unexpected: dict[str, list[str]] = {}
    for pipeline in pipelines:
        options = {"pipeline_name": pipeline.name, "region": pipeline.region, "account": pipeline.account}
        if is_scoring(pipeline.definition):
            execution = scoring_execution(pipeline.definition, scenario, **options)
            floor = {"CreateModel", "CreateProcessingJob", "CreateTransformJob"}
        else:
            (execution,) = [e for e in executions(pipeline.definition, **options) if e.scenario == scenario]
            floor = {"CreateProcessingJob", "CreateTrainingJob", "CreateModelPackage"}
        requests = step_requests(pipeline.definition, execution)
        # Not vacuous: the pipeline has its processing and training or scoring steps.
        operations = {r.operation for r in requests}
        assert operations >= floor, operations
        for request in requests:
            for problem in request.problems():
                unexpected.setdefault(f"{pipeline.stack_path} {request.step} ({request.operation})", []).append(problem)
    if unexpected:
        lines = [f"{where}: {problem}" for where, problems in unexpected.items() for problem in problems]
        raise AssertionError(f"{scenario}: requests the SageMaker API would reject:\n  " + "\n  ".join(lines))


# ------------------------------------------------------------------------------ who starts executions

#: The dataset the retrain trigger snapshots (the platform's default).
DATASET = "churn"
#: When the trigger's snapshot was taken.
SNAPSHOT_AT = "2025-01-31T12:00:00Z"
#: A manual start's free text, longer than a parameter can hold: the trigger truncates it.
MANUAL_REASON = "manual retrain by data-science@example.com: " + "re-label the Q4 churners (ünïcödé, 50%) " * 40


class _ManifestStore:
    """Where the trigger writes its manifest; only the URI the library computes is kept."""

    def put_object(self, **_: Any) -> dict[str, Any]:
        return {}


def trigger_start(*, pipeline_name: str, bucket: str, rival: core.Champion) -> dict[str, Any]:
    """The StartPipelineExecution request the retrain trigger makes for a new snapshot of :data:`DATASET`.

    Built with the trigger's and the dataset library's own functions, as the handler builds it;
    ``rival`` is the champion the handler looked up.
    """
    entries = (datasets.ManifestEntry(f"{datasets.dataset_prefix(DATASET)}part-0.csv", "3fa9c1", "e3b0c442", 1024),)
    manifest = datasets.Manifest(
        bucket=bucket,
        dataset=DATASET,
        created_at=SNAPSHOT_AT,
        entries=entries,
        sha256=datasets.manifest_digest(DATASET, entries),
    )
    written = datasets.write_manifest(manifest, s3=_ManifestStore())  # type: ignore[arg-type]
    trigger = core.Trigger(
        core.TriggerKind.MANUAL, MANUAL_REASON, "evt-1", "evt-1", datetime(2025, 1, 31, 12, tzinfo=UTC)
    )
    settings = core.Settings(
        pipeline_name=pipeline_name,
        data_bucket=bucket,
        datasets=(DATASET,),
        state_table="retrain-state",
        queue_url="https://sqs.eu-west-1.amazonaws.com/123456789012/retrain",
        model_package_group=f"{pipeline_name}-models",
    )
    return core.start_request(
        settings,
        dataset=DATASET,
        digest=manifest.sha256,
        manifest_uri=written.uri or "",
        created_at=manifest.created_at,
        reason=trigger.reason,
        champion=rival,
        key=core.idempotency_key(pipeline_name, trigger, manifest.sha256),
    )


def champion_of(definition: Mapping[str, Any], execution: Execution) -> core.Champion:
    """The champion when the approved model is the package this pipeline registered in ``execution``.

    The package is what the RegisterModel step's request creates (DescribeModelPackage returns
    those members); its ``evaluation.json`` holds a realistic value of the gate's metric.
    """
    (register,) = [r for r in step_requests(definition, execution) if r.step_type == "RegisterModel"]
    package = register.params
    evaluation: dict[str, Any] = {}
    *parents, leaf = package["CustomerMetadataProperties"][champion.METADATA_EVALUATION_METRIC].split(".")
    node = evaluation
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = 0.9123
    arn = f"arn:aws:sagemaker:{execution.region}:{execution.account}:model-package/{package['ModelPackageGroupName']}/3"
    return core.Champion(arn, champion.champion_parameters(package, evaluation))


def is_scoring(definition: Mapping[str, Any]) -> bool:
    """A scoring pipeline (BatchInference's): it transforms data and registers no model."""
    types = {step.get("Type") for step in definition.get("Steps", [])}
    return "Transform" in types and "RegisterModel" not in types


def scoring_execution(
    definition: Mapping[str, Any], scenario: str, *, pipeline_name: str, region: str, account: str
) -> Execution:
    """A scoring pipeline's execution: its defaults, or the trigger's start, which names no champion.

    The trigger of a scoring pipeline (``compare_with_champion=False``) sends the data parameters
    alone, whichever scenario: there is no champion to look up.
    """
    if scenario == DEFAULTS:
        return Execution(DEFAULTS, pipeline_name, region, account)
    bucket = f"cdk-mlops-data-{account}-{region}"
    start = trigger_start(pipeline_name=pipeline_name, bucket=bucket, rival=core.Champion(None, {}))
    sent = {p["Name"]: p["Value"] for p in start["PipelineParameters"]}
    assert set(sent) <= {p["Name"] for p in definition.get("Parameters", [])}, sent
    return Execution(scenario, pipeline_name, region, account, sent)


def executions(definition: Mapping[str, Any], *, pipeline_name: str, region: str, account: str) -> list[Execution]:
    """The starts to check a pipeline with: its defaults, and the retrain trigger's with and without a champion."""
    bucket = f"cdk-mlops-data-{account}-{region}"

    def started(scenario: str, rival: core.Champion) -> Execution:
        start = trigger_start(pipeline_name=pipeline_name, bucket=bucket, rival=rival)
        sent = {p["Name"]: p["Value"] for p in start["PipelineParameters"]}
        return Execution(scenario, pipeline_name, region, account, sent)

    first_model = started(FIRST_MODEL, core.Champion(None, champion.first_model_parameters()))
    with_champion = started(WITH_CHAMPION, champion_of(definition, first_model))
    return [Execution(DEFAULTS, pipeline_name, region, account), first_model, with_champion]
