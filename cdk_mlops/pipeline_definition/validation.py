"""Reading a definition: :func:`validate_definition` checks it, :func:`job_s3_inputs` lists what its jobs read.

moto stores definitions as opaque strings, so :func:`validate_definition` is what proves the
structure in tests: required request fields per step type, ``Get`` references, property
files, unique step names, ``DependsOn`` and dependency cycles. :func:`job_s3_inputs` walks the
same steps to list the S3 inputs the pipeline's role must be allowed to read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from cdk_mlops.pipeline_definition.names import EXECUTION_VARIABLES, SCHEMA_VERSION, _words
from cdk_mlops.pipeline_definition.settings import _METADATA_VALUE, is_unresolved

_STEP_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,64}\Z")

# Required request fields per step type, as dotted paths into Arguments. `a|b` means either.
_REQUIRED: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "Processing": (
            "AppSpecification.ImageUri",
            "ProcessingResources.ClusterConfig.InstanceCount",
            "ProcessingResources.ClusterConfig.InstanceType",
            "ProcessingResources.ClusterConfig.VolumeSizeInGB",
            "RoleArn",
        ),
        "Training": (
            "AlgorithmSpecification.TrainingInputMode",
            "AlgorithmSpecification.TrainingImage|AlgorithmSpecification.AlgorithmName",
            "RoleArn",
            "OutputDataConfig.S3OutputPath",
            "ResourceConfig.InstanceType",
            "ResourceConfig.InstanceCount",
            "ResourceConfig.VolumeSizeInGB",
            "StoppingCondition.MaxRuntimeInSeconds",
        ),
        "RegisterModel": ("ModelPackageGroupName", "InferenceSpecification.Containers"),
        # CreateModel (the pipeline names the model): a container (an image, or a model package's
        # own), and the role it runs as.
        "Model": ("PrimaryContainer.Image|PrimaryContainer.ModelPackageName|Containers", "ExecutionRoleArn"),
        "Condition": ("Conditions",),
        "Fail": ("ErrorMessage",),
        "QualityCheck": ("CheckType", "AppSpecification.ImageUri", "RoleArn"),
        "Lambda": ("FunctionArn",),
    }
)
_STEP_TYPES: Final = _words(
    "Processing Training Transform Tuning Model RegisterModel Condition Fail Lambda Callback QualityCheck "
    "ClarifyCheck EMR EMRServerless AutoML Endpoint EndpointConfig Job Lineage Cleanup ForEach "
    "InferenceComponent"
)
_PARAMETER_TYPES: Final[Mapping[str, tuple[type, ...]]] = MappingProxyType(
    {"String": (str,), "Integer": (int,), "Float": (int, float), "Boolean": (bool,)}
)
_COMPARISONS: Final = frozenset({"Equals", "GreaterThan", "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo"})

# Top-level properties a `Get` may read from a step, per type: the Describe* response members
# (DescribeProcessingJob, DescribeTrainingJob, DescribeModelPackage, DescribeModel; a test compares them).
_PROCESSING_PROPERTIES: Final = _words(
    "ProcessingInputs ProcessingOutputConfig ProcessingJobName ProcessingResources StoppingCondition "
    "AppSpecification Environment NetworkConfig RoleArn ExperimentConfig ProcessingJobArn "
    "ProcessingJobStatus ExitMessage FailureReason ProcessingEndTime ProcessingStartTime LastModifiedTime "
    "CreationTime MonitoringScheduleArn AutoMLJobArn TrainingJobArn"
)
_TRAINING_PROPERTIES: Final = _words(
    "TrainingJobName TrainingJobArn TuningJobArn LabelingJobArn AutoMLJobArn ModelArtifacts "
    "TrainingJobStatus SecondaryStatus FailureReason HyperParameters AlgorithmSpecification RoleArn "
    "InputDataConfig OutputDataConfig ResourceConfig WarmPoolStatus VpcConfig StoppingCondition "
    "CreationTime TrainingStartTime TrainingEndTime LastModifiedTime SecondaryStatusTransitions "
    "FinalMetricDataList EnableNetworkIsolation EnableInterContainerTrafficEncryption "
    "EnableManagedSpotTraining CheckpointConfig TrainingTimeInSeconds BillableTimeInSeconds "
    "BillableTokenCount DebugHookConfig ExperimentConfig DebugRuleConfigurations TensorBoardOutputConfig "
    "DebugRuleEvaluationStatuses ProfilerConfig ProfilerRuleConfigurations ProfilerRuleEvaluationStatuses "
    "ProfilingStatus Environment RetryStrategy RemoteDebugConfig InfraCheckConfig"
)
_REGISTER_PROPERTIES: Final = _words(
    "ModelPackageName ModelPackageGroupName ModelPackageVersion ModelPackageRegistrationType "
    "ModelPackageArn ModelPackageDescription CreationTime InferenceSpecification "
    "SourceAlgorithmSpecification ValidationSpecification ModelPackageStatus ModelPackageStatusDetails "
    "CertifyForMarketplace ModelApprovalStatus CreatedBy MetadataProperties ModelMetrics LastModifiedTime "
    "LastModifiedBy ApprovalDescription Domain Task SamplePayloadUrl CustomerMetadataProperties "
    "DriftCheckBaselines AdditionalInferenceSpecifications SkipModelValidation SourceUri SecurityConfig "
    "ModelCard ModelLifeCycle"
)
_MODEL_PROPERTIES: Final = _words(
    "ModelName PrimaryContainer Containers InferenceExecutionConfig ExecutionRoleArn VpcConfig CreationTime "
    "ModelArn EnableNetworkIsolation DeploymentRecommendation"
)
_STEP_PROPERTIES: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "Processing": _PROCESSING_PROPERTIES,
        "Model": _MODEL_PROPERTIES,
        "Training": _TRAINING_PROPERTIES,
        "RegisterModel": _REGISTER_PROPERTIES,
        "Condition": frozenset({"Outcome"}),
        "Fail": frozenset(),
        "QualityCheck": frozenset(
            {
                "CalculatedBaselineConstraints",
                "CalculatedBaselineStatistics",
                "BaselineUsedForDriftCheckStatistics",
                "BaselineUsedForDriftCheckConstraints",
            }
        ),
    }
)
_OUTPUT_KEY = re.compile(r"^ProcessingOutputConfig\.Outputs\['([^']*)'\]")
_PROPERTY_ROOT = re.compile(r"^([A-Za-z0-9]+)")


def _lookup(arguments: Mapping[str, Any], dotted: str) -> object:
    node: object = arguments
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _walk(value: object, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every dict inside ``value`` with its path (expressions included)."""
    if isinstance(value, dict):
        yield path, value
        for key, child in value.items():
            yield from _walk(child, f"{path}.{key}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _walk(child, f"{path}[{index}]")


class _Step:
    __slots__ = ("branch_of", "depends_on", "name", "raw", "where")

    def __init__(self, raw: dict[str, Any], where: str, branch_of: str | None) -> None:
        name = raw.get("Name")
        self.raw = raw
        self.where = where
        self.name: str = name if isinstance(name, str) else ""
        self.branch_of = branch_of
        self.depends_on: set[str] = set()

    @property
    def type(self) -> str:
        kind = self.raw.get("Type")
        return kind if isinstance(kind, str) else ""

    @property
    def arguments(self) -> dict[str, Any]:
        args = self.raw.get("Arguments")
        return args if isinstance(args, dict) else {}

    def output_names(self) -> set[str]:
        outputs = _lookup(self.arguments, "ProcessingOutputConfig.Outputs")
        if not isinstance(outputs, list):
            return set()
        return {o["OutputName"] for o in outputs if isinstance(o, dict) and isinstance(o.get("OutputName"), str)}

    def property_files(self) -> set[str]:
        files = self.raw.get("PropertyFiles")
        if not isinstance(files, list):
            return set()
        return {
            f["PropertyFileName"] for f in files if isinstance(f, dict) and isinstance(f.get("PropertyFileName"), str)
        }


def _collect_steps(steps: object, where: str, branch_of: str | None, out: list[_Step], problems: list[str]) -> None:
    if not isinstance(steps, list):
        problems.append(f"{where}: must be a list of steps")
        return
    for index, raw in enumerate(steps):
        at = f"{where}[{index}]"
        if isinstance(raw, str):
            # Some definitions name branch steps instead of nesting them; resolved later.
            continue
        if not isinstance(raw, dict):
            problems.append(f"{at}: a step must be an object")
            continue
        step = _Step(raw, at, branch_of)
        out.append(step)
        if step.type == "Condition":
            for branch in ("IfSteps", "ElseSteps"):
                _collect_steps(step.arguments.get(branch, []), f"{at}.Arguments.{branch}", step.name, out, problems)


def _check_expression(
    path: str,
    node: dict[str, Any],
    step: _Step,
    steps: Mapping[str, _Step],
    parameters: Mapping[str, str],
    problems: list[str],
) -> None:
    if "Get" in node and len(node) == 1:
        ref = node["Get"]
        if not isinstance(ref, str):
            problems.append(f"{path}: Get must be a string reference")
            return
        namespace, _, rest = ref.partition(".")
        if namespace == "Parameters":
            if rest not in parameters:
                problems.append(f"{path}: Get {ref!r} refers to an undeclared parameter {rest!r}")
        elif namespace == "Execution":
            if rest not in EXECUTION_VARIABLES:
                accepted = ", ".join(sorted(EXECUTION_VARIABLES))
                problems.append(f"{path}: Get {ref!r} is not an execution variable; use one of: {accepted}")
        elif namespace == "PipelineExperimentConfig":
            if rest not in ("ExperimentName", "TrialName"):
                problems.append(f"{path}: Get {ref!r} is not a PipelineExperimentConfig property")
        elif namespace == "Steps":
            target_name, _, prop = rest.partition(".")
            target = steps.get(target_name)
            if target is None:
                problems.append(f"{path}: Get {ref!r} refers to an unknown step {target_name!r}")
                return
            if target_name == step.name:
                problems.append(f"{path}: Get {ref!r}: a step cannot read its own properties")
                return
            step.depends_on.add(target_name)
            _check_step_property(path, ref, target, prop, problems)
        else:
            problems.append(f"{path}: Get {ref!r} has an unknown namespace; use Parameters., Steps. or Execution.")
        return
    std = [key for key in node if key.startswith("Std:")]
    if not std:
        return
    if len(node) != 1:
        problems.append(f"{path}: a function object must have exactly one key, got {sorted(node)}")
        return
    kind, body = std[0], node[std[0]]
    if kind == "Std:Join":
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("On"), str)
            or not isinstance(body.get("Values"), list)
        ):
            problems.append(f"{path}: Std:Join needs On (a string) and Values (a list)")
    elif kind == "Std:JsonGet":
        if not isinstance(body, dict) or not isinstance(body.get("Path"), str):
            problems.append(f"{path}: Std:JsonGet needs Path (a string)")
        elif "PropertyFile" not in body and "S3Uri" not in body:
            problems.append(
                f"{path}: Std:JsonGet needs PropertyFile (a Get of Steps.<step>.PropertyFiles.<name>) or S3Uri"
            )
    else:
        problems.append(f"{path}: unknown function {kind!r}; use Std:Join or Std:JsonGet")


def _check_step_property(path: str, ref: str, target: _Step, prop: str, problems: list[str]) -> None:
    if prop.startswith("PropertyFiles."):
        name = prop[len("PropertyFiles.") :]
        if name not in target.property_files():
            problems.append(f"{path}: Get {ref!r}: step {target.name!r} declares no property file {name!r}")
        return
    allowed = _STEP_PROPERTIES.get(target.type)
    if allowed is None:
        return  # a step type whose properties this validator does not model
    root = _PROPERTY_ROOT.match(prop)
    if root is None or root.group(1) not in allowed:
        problems.append(f"{path}: Get {ref!r}: {target.type} step {target.name!r} has no property {prop!r}")
        return
    output = _OUTPUT_KEY.match(prop)
    if output and output.group(1) not in target.output_names():
        problems.append(f"{path}: Get {ref!r}: step {target.name!r} has no processing output {output.group(1)!r}")


def _check_required(step: _Step, problems: list[str]) -> None:
    args = step.arguments
    for required in _REQUIRED.get(step.type, ()):
        alternatives = required.split("|")
        if all(_lookup(args, alt) in (None, "", [], {}) for alt in alternatives):
            problems.append(f"{step.where} ({step.name}): Arguments.{' or Arguments.'.join(alternatives)} is missing")
    if step.type == "Processing":
        _check_processing(step, problems)
    elif step.type == "Training":
        _check_training(step, problems)
    elif step.type == "RegisterModel":
        containers = _lookup(args, "InferenceSpecification.Containers")
        if isinstance(containers, list):
            for index, container in enumerate(containers):
                if not isinstance(container, dict) or not container.get("Image"):
                    where = f"{step.where} ({step.name}): Arguments.InferenceSpecification.Containers[{index}]"
                    problems.append(f"{where}.Image is missing")
        metadata = args.get("CustomerMetadataProperties")
        if isinstance(metadata, dict):
            for key, value in metadata.items():
                if isinstance(value, str) and not is_unresolved(value) and not _METADATA_VALUE.match(value):
                    problems.append(
                        f"{step.where} ({step.name}): CustomerMetadataProperties.{key} {value!r} is not a valid "
                        "metadata value (1-256 letters, digits, spaces or _ . : / = + - @)"
                    )
    elif step.type == "Condition":
        for index, cond in enumerate(args.get("Conditions") or []):
            _check_condition(f"{step.where} ({step.name}): Arguments.Conditions[{index}]", cond, problems)


def _check_processing(step: _Step, problems: list[str]) -> None:
    args, at = step.arguments, f"{step.where} ({step.name})"
    container_arguments = _lookup(args, "AppSpecification.ContainerArguments")
    for index, argument in enumerate(container_arguments if isinstance(container_arguments, list) else []):
        if isinstance(argument, str) and len(argument) > 256:
            problems.append(f"{at}: Arguments.AppSpecification.ContainerArguments[{index}] is over 256 characters")
    environment = args.get("Environment")
    for key, value in (environment if isinstance(environment, dict) else {}).items():
        if isinstance(value, str) and len(value) > 256:
            problems.append(f"{at}: Arguments.Environment.{key} is over 256 characters")
    seen: set[str] = set()
    for index, item in enumerate(args.get("ProcessingInputs") or []):
        where = f"{at}: Arguments.ProcessingInputs[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("InputName"), str):
            problems.append(f"{where}.InputName is missing")
            continue
        if item["InputName"] in seen:
            problems.append(f"{where}: duplicate InputName {item['InputName']!r}")
        seen.add(item["InputName"])
        s3 = item.get("S3Input")
        if s3 is None and "DatasetDefinition" not in item:
            problems.append(f"{where}: needs S3Input or DatasetDefinition")
        elif isinstance(s3, dict):
            for key in ("S3Uri", "S3DataType", "LocalPath"):
                if s3.get(key) in (None, ""):
                    problems.append(f"{where}.S3Input.{key} is missing")
            _check_s3_uri(f"{where}.S3Input.S3Uri", s3.get("S3Uri"), problems)
    seen = set()
    outputs = _lookup(args, "ProcessingOutputConfig.Outputs")
    for index, item in enumerate(outputs if isinstance(outputs, list) else []):
        where = f"{at}: Arguments.ProcessingOutputConfig.Outputs[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("OutputName"), str):
            problems.append(f"{where}.OutputName is missing")
            continue
        if item["OutputName"] in seen:
            problems.append(f"{where}: duplicate OutputName {item['OutputName']!r}")
        seen.add(item["OutputName"])
        s3 = item.get("S3Output")
        if isinstance(s3, dict):
            for key in ("S3Uri", "S3UploadMode", "LocalPath"):
                if s3.get(key) in (None, ""):
                    problems.append(f"{where}.S3Output.{key} is missing")
            _check_s3_uri(f"{where}.S3Output.S3Uri", s3.get("S3Uri"), problems)
    outputs_declared = step.output_names()
    for index, prop in enumerate(step.raw.get("PropertyFiles") or []):
        where = f"{at}: PropertyFiles[{index}]"
        if not isinstance(prop, dict) or not all(
            isinstance(prop.get(k), str) and prop.get(k) for k in ("PropertyFileName", "OutputName", "FilePath")
        ):
            problems.append(f"{where} needs PropertyFileName, OutputName and FilePath")
        elif prop["OutputName"] not in outputs_declared:
            problems.append(f"{where}: OutputName {prop['OutputName']!r} is not an output of the step")


def _check_training(step: _Step, problems: list[str]) -> None:
    args, at = step.arguments, f"{step.where} ({step.name})"
    for index, channel in enumerate(args.get("InputDataConfig") or []):
        where = f"{at}: Arguments.InputDataConfig[{index}]"
        if not isinstance(channel, dict) or not channel.get("ChannelName"):
            problems.append(f"{where}.ChannelName is missing")
            continue
        s3 = _lookup(channel, "DataSource.S3DataSource")
        if isinstance(s3, dict):
            for key in ("S3Uri", "S3DataType"):
                if s3.get(key) in (None, ""):
                    problems.append(f"{where}.DataSource.S3DataSource.{key} is missing")
            _check_s3_uri(f"{where}.DataSource.S3DataSource.S3Uri", s3.get("S3Uri"), problems)
        elif _lookup(channel, "DataSource") is None:
            problems.append(f"{where}.DataSource is missing")
    hyperparameters = args.get("HyperParameters")
    if isinstance(hyperparameters, dict):
        for key, value in hyperparameters.items():
            if not isinstance(value, str | dict):
                problems.append(f"{at}: Arguments.HyperParameters.{key} must be a string, got {value!r}")
    if args.get("EnableManagedSpotTraining") is True:
        max_wait = _lookup(args, "StoppingCondition.MaxWaitTimeInSeconds")
        max_run = _lookup(args, "StoppingCondition.MaxRuntimeInSeconds")
        if max_wait is None:
            problems.append(f"{at}: managed spot training needs Arguments.StoppingCondition.MaxWaitTimeInSeconds")
        elif isinstance(max_wait, int) and isinstance(max_run, int) and max_wait < max_run:
            problems.append(
                f"{at}: StoppingCondition.MaxWaitTimeInSeconds ({max_wait}) < MaxRuntimeInSeconds ({max_run})"
            )
    checkpoint = args.get("CheckpointConfig")
    if checkpoint is not None and (not isinstance(checkpoint, dict) or not checkpoint.get("S3Uri")):
        problems.append(f"{at}: Arguments.CheckpointConfig.S3Uri is missing")


def _check_s3_uri(where: str, value: object, problems: list[str]) -> None:
    if isinstance(value, str) and not is_unresolved(value) and value and not value.startswith("s3://"):
        problems.append(f"{where}: {value!r} is not an s3:// URI")


def _check_condition(where: str, cond: object, problems: list[str]) -> None:
    if not isinstance(cond, dict):
        problems.append(f"{where}: a condition must be an object")
        return
    kind = cond.get("Type")
    if kind in _COMPARISONS:
        for key in ("LeftValue", "RightValue"):
            if key not in cond:
                problems.append(f"{where}: {kind} needs {key}")
    elif kind == "In":
        if "QueryValue" not in cond or not isinstance(cond.get("Values"), list):
            problems.append(f"{where}: In needs QueryValue and Values (a list)")
    elif kind == "Not":
        _check_condition(f"{where}.Condition", cond.get("Condition"), problems)
    elif kind == "Or":
        inner = cond.get("Conditions")
        if not isinstance(inner, list) or not inner:
            problems.append(f"{where}: Or needs a non-empty Conditions list")
        else:
            for index, item in enumerate(inner):
                _check_condition(f"{where}.Conditions[{index}]", item, problems)
    else:
        accepted = ", ".join(sorted(_COMPARISONS | {"In", "Not", "Or"}))
        problems.append(f"{where}: unknown condition type {kind!r}; use one of: {accepted}")


def _find_cycle(steps: Mapping[str, _Step]) -> list[str] | None:
    """A dependency cycle as a list of step names (first == last), or None."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(steps, white)
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        color[name] = grey
        stack.append(name)
        for dep in sorted(steps[name].depends_on):
            if dep not in steps:
                continue
            if color[dep] == grey:
                return [*stack[stack.index(dep) :], dep]
            if color[dep] == white:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        color[name] = black
        return None

    for name in steps:
        if color[name] == white:
            found = visit(name)
            if found:
                return found
    return None


def validate_definition(definition: Mapping[str, Any]) -> list[str]:
    """Every structural problem of a pipeline definition; an empty list means it is sound.

    Checks: the schema version; parameters (unique names, known types, defaults of the right
    type); steps (unique valid names, known types, the request fields each job type requires,
    property files naming a declared output); every ``Get`` refers to a declared parameter, an
    execution variable, or an existing step's property (processing output names and property
    files included); ``Std:`` functions are well formed; ``DependsOn`` names existing steps;
    and the dependencies (``Get`` references, ``DependsOn`` and condition branches) have no
    cycle. Strings are opaque: CDK tokens pass wherever a string may stand.
    """
    problems: list[str] = []
    if definition.get("Version") != SCHEMA_VERSION:
        problems.append(f"Version: {definition.get('Version')!r}; use {SCHEMA_VERSION!r}")
    mlflow = definition.get("MlflowConfig")
    if mlflow is not None and (not isinstance(mlflow, dict) or not isinstance(mlflow.get("MlflowResourceArn"), str)):
        problems.append("MlflowConfig: needs MlflowResourceArn (the ARN of an MLflow tracking server)")

    parameters: dict[str, str] = {}
    raw_parameters = definition.get("Parameters", [])
    if not isinstance(raw_parameters, list):
        problems.append("Parameters: must be a list")
        raw_parameters = []
    for index, param in enumerate(raw_parameters):
        where = f"Parameters[{index}]"
        if not isinstance(param, dict) or not isinstance(param.get("Name"), str) or not param["Name"]:
            problems.append(f"{where}: needs a Name")
            continue
        name, kind = param["Name"], param.get("Type")
        if name in parameters:
            problems.append(f"{where}: duplicate parameter name {name!r}")
        if not isinstance(kind, str) or kind not in _PARAMETER_TYPES:
            problems.append(f"{where} ({name}): Type {kind!r} is not one of {', '.join(_PARAMETER_TYPES)}")
        elif "DefaultValue" in param:
            default = param["DefaultValue"]
            types = _PARAMETER_TYPES[kind]
            if not isinstance(default, types) or (kind != "Boolean" and isinstance(default, bool)):
                problems.append(f"{where} ({name}): DefaultValue {default!r} is not a {kind}")
        parameters[name] = kind if isinstance(kind, str) else ""

    collected: list[_Step] = []
    _collect_steps(definition.get("Steps"), "Steps", None, collected, problems)
    if not collected:
        problems.append("Steps: a pipeline needs at least one step")
    steps: dict[str, _Step] = {}
    for step in collected:
        if not _STEP_NAME.match(step.name):
            problems.append(f"{step.where}: Name {step.raw.get('Name')!r} must be 1-64 letters, digits, '-' or '_'")
        elif step.name in steps:
            problems.append(f"{step.where}: duplicate step name {step.name!r}")
        else:
            steps[step.name] = step
        if step.type not in _STEP_TYPES:
            problems.append(f"{step.where} ({step.name}): unknown step Type {step.raw.get('Type')!r}")
        if not isinstance(step.raw.get("Arguments"), dict) and step.type in _REQUIRED:
            problems.append(f"{step.where} ({step.name}): Arguments must be an object")

    for step in collected:
        if step.name not in steps or steps[step.name] is not step:
            continue
        if step.branch_of:
            step.depends_on.add(step.branch_of)
        for index, dep in enumerate(step.raw.get("DependsOn") or []):
            dep_name = dep.get("Step") if isinstance(dep, dict) else dep
            if not isinstance(dep_name, str) or dep_name not in steps:
                problems.append(f"{step.where} ({step.name}): DependsOn[{index}] {dep!r} is not a step of the pipeline")
            elif dep_name == step.name:
                problems.append(f"{step.where} ({step.name}): DependsOn[{index}]: a step cannot depend on itself")
            else:
                step.depends_on.add(dep_name)
        _check_required(step, problems)
        arguments = step.raw.get("Arguments")
        if step.type == "Condition" and isinstance(arguments, dict):
            # Branch steps are checked as steps of their own; only the conditions are read here.
            scanned: object = arguments.get("Conditions")
            for branch in ("IfSteps", "ElseSteps"):
                for index, ref in enumerate(arguments.get(branch) or []):
                    if isinstance(ref, str):
                        if ref not in steps:
                            problems.append(f"{step.where} ({step.name}): {branch}[{index}] {ref!r} is not a step")
                        else:
                            steps[ref].depends_on.add(step.name)
        else:
            scanned = arguments
        for path, node in _walk(scanned, f"{step.where} ({step.name}).Arguments"):
            _check_expression(path, node, step, steps, parameters, problems)

    cycle = _find_cycle(steps)
    if cycle:
        problems.append(f"Steps: dependency cycle {' -> '.join(cycle)} (each step depends on the next)")
    return problems


# --------------------------------------------------------------------------------------------
# What the jobs read from S3
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobS3Input:
    """An S3 location that SageMaker reads, with the job's role, before a job of the pipeline starts.

    Attributes:
        step: The step's name.
        name: The processing input's or training channel's name; ``checkpoints`` for a
            training job's ``CheckpointConfig``.
        s3_uri: The URI: a string, or an expression an execution resolves.
        data_type: How SageMaker reads it: ``S3Prefix`` lists the prefix (``s3:ListBucket``
            with the key as ``s3:prefix``) and gets every object under it; ``ManifestFile`` and
            ``AugmentedManifestFile`` get the manifest, then every object it names.
    """

    step: str
    name: str
    s3_uri: Any
    data_type: str


def job_s3_inputs(definition: Mapping[str, Any]) -> list[JobS3Input]:
    """Every S3 input of every job step (processing inputs, training channels, checkpoints), in order.

    What the pipeline's role must be allowed to read: SageMaker reads these with it before the
    job's code runs, so a missing grant fails the job before any log is written.
    """
    collected: list[_Step] = []
    _collect_steps(definition.get("Steps"), "Steps", None, collected, [])
    found: list[JobS3Input] = []
    for step in collected:
        args = step.arguments
        if step.type == "Processing":
            for item in args.get("ProcessingInputs") or []:
                s3 = item.get("S3Input") if isinstance(item, dict) else None
                if isinstance(s3, dict):
                    found.append(
                        JobS3Input(step.name, str(item.get("InputName")), s3.get("S3Uri"), str(s3.get("S3DataType")))
                    )
        elif step.type == "Training":
            for channel in args.get("InputDataConfig") or []:
                s3 = _lookup(channel, "DataSource.S3DataSource") if isinstance(channel, dict) else None
                if isinstance(s3, dict):
                    found.append(
                        JobS3Input(
                            step.name, str(channel.get("ChannelName")), s3.get("S3Uri"), str(s3.get("S3DataType"))
                        )
                    )
            checkpoint = _lookup(args, "CheckpointConfig.S3Uri")
            if checkpoint is not None:
                # SageMaker copies earlier checkpoints down when a (spot) job starts or resumes.
                found.append(JobS3Input(step.name, "checkpoints", checkpoint, "S3Prefix"))
    return found
