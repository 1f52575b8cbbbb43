"""Run one pipeline execution's steps locally, from the deployed definition, as far as they run offline.

moto stores a pipeline definition and records executions, but runs no step. For the closed
loop to register a model trained on the execution's data version, :func:`run_execution` runs
the steps of the *deployed* definition (``DescribePipeline``) for one execution:

* expressions are resolved as SageMaker Pipelines does (:class:`Resolver`): ``Get`` of
  ``Parameters.*`` (the execution's values, else the definition's defaults), ``Execution.*``
  and step properties, ``Std:Join`` and ``Std:JsonGet`` on property files;
* a ``Processing`` step whose container runs a Python script (``Preprocess``, ``Evaluate``)
  runs that script, downloaded from the CDK asset bucket as deployed, with the current
  interpreter: its ``ProcessingInputs`` are downloaded from S3, the container paths
  (``/opt/ml/processing/...``) map to a work directory, and its ``ProcessingOutputs`` are
  uploaded where the definition says. A job of several instances (``InstanceCount``) runs the
  script once per host (``algo-1``, ``algo-2``, ..., at the same time), each in its own work
  directory with its own ``/opt/ml/config/resourceconfig.json`` naming it among the hosts, as
  SageMaker Processing does; ``FullyReplicated`` inputs reach every host, and every host's
  outputs are uploaded to the same prefixes. (``ShardedByS3Key`` processing inputs are not
  emulated: no step of this library declares one, and the run says so if one does);
* the ``Training`` step runs ``cdk_mlops/ml/train.py`` (scikit-learn) on its input channels,
  since the built-in XGBoost image cannot run offline; ``model.tar.gz`` is uploaded under
  the step's ``S3OutputPath`` as SageMaker would;
* the ``Condition`` step is evaluated, then its ``RegisterModel`` step's arguments are
  resolved (returned, not sent) or its ``Fail`` step's message;
* a ``Model`` step creates the model in the local SageMaker (moto's ``CreateModel``). A
  container given by ``ModelPackageName`` is first resolved to the package's image and
  ``ModelDataUrl`` (``DescribeModelPackage``), which is what SageMaker itself does with a
  package when it creates a model; the model is created with those;
* a ``Transform`` step is emulated as the ``Training`` step is, since the built-in XGBoost image
  cannot run offline: the model's ``model.tar.gz`` (``model.joblib``, as the local ``Training``
  wrote it with ``train.py``) predicts each line of each input file, and the predictions are
  written one per line to ``<S3OutputPath>/<input file relative to the input prefix>.out``, as
  Batch Transform names its outputs (the probability of class 1 for a classifier, as XGBoost's
  ``binary:logistic`` returns). With a ``DataCaptureConfig``, the inputs and outputs are also
  copied under ``<DestinationS3Uri>input/`` and ``<DestinationS3Uri>output/`` with the
  execution's job name; AWS does not document Batch Transform's capture layout beyond
  ``DestinationS3Uri``, so this layout is the emulation's own.

Not run: ``Processing`` steps without a script (``DataQualityBaseline`` and
``ModelQualityBaseline``, whose image is the Model Monitor analyzer, a managed container that
does not run offline). Their outputs still resolve to URIs, which hold no files: the registered
package names its data-quality and model-quality baselines where AWS would write them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cdk_mlops.datasets import parse_s3_uri
from cdk_mlops.local.server import LocalAws
from cdk_mlops.ml import TRAIN_SCRIPT
from cdk_mlops.pipeline_definition import PROCESSING_ROOT, RESOURCE_CONFIG

_OUTPUT_URI: Final = re.compile(r"^Steps\.([^.]+)\.ProcessingOutputConfig\.Outputs\['([^']+)'\]\.S3Output\.S3Uri\Z")
_TAIL: Final = 2000
_COMPARISONS: Final = {
    "Equals": lambda a, b: a == b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
}


class ExpressionError(ValueError):
    """A definition expression this resolver does not know, or that names nothing."""


class StepFailed(RuntimeError):
    """A step's script exited non-zero; the message holds the end of its output."""


@dataclass(frozen=True)
class StepRun:
    """What happened to one step: ``ran``, ``skipped`` (with why), ``passed`` or ``failed``."""

    name: str
    type: str
    outcome: str
    detail: str = ""


@dataclass
class ExecutionRun:
    """The local run of one execution.

    Attributes:
        execution_arn: The execution.
        steps: Each step in the order it ran.
        register_arguments: The ``CreateModelPackage`` request the ``RegisterModel`` step
            would send, resolved; ``None`` when the gate failed.
        failure_message: The ``Fail`` step's message, when the gate failed.
        property_files: Property files read, by ``<step>.<name>``.
    """

    execution_arn: str
    steps: list[StepRun] = field(default_factory=list)
    register_arguments: dict[str, Any] | None = None
    failure_message: str | None = None
    property_files: dict[str, Any] = field(default_factory=dict)

    @property
    def gate_passed(self) -> bool:
        """Whether the run reached the ``RegisterModel`` step."""
        return self.register_arguments is not None


def iter_steps(steps: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Every step, including those inside ``Condition`` branches."""
    for step in steps:
        yield step
        arguments = step.get("Arguments", {})
        if step.get("Type") == "Condition":
            yield from iter_steps([*arguments.get("IfSteps", []), *arguments.get("ElseSteps", [])])


def find_step(definition: Mapping[str, Any], step_type: str) -> Mapping[str, Any]:
    """The first step of a type, branches included.

    Raises:
        LookupError: if the definition has no step of that type.
    """
    for step in iter_steps(definition.get("Steps", [])):
        if step.get("Type") == step_type:
            return step
    raise LookupError(f"the pipeline definition has no {step_type} step")


def _typed(value: Any, parameter_type: str) -> Any:
    if parameter_type == "Float":
        return float(value)
    if parameter_type == "Integer":
        return int(value)
    if parameter_type == "Boolean":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    return str(value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, str):
        return value
    try:
        return float(value)
    except ValueError:
        return value


class Resolver:
    """Resolves the expressions of a pipeline definition for one execution.

    Args:
        definition: The pipeline definition (``json.loads`` of ``PipelineDefinition``).
        parameters: The execution's parameter values (``ListPipelineParametersForExecution``);
            the definition's defaults fill in the others, typed as declared.
        execution_arn: The execution's ARN.

    Attributes:
        properties: Step properties known so far (``Steps.Train.ModelArtifacts.S3ModelArtifacts``).
        property_files: Loaded property files by ``(step, property file name)``.
    """

    def __init__(self, definition: Mapping[str, Any], *, parameters: Mapping[str, str], execution_arn: str) -> None:
        self.steps = {step["Name"]: step for step in iter_steps(definition.get("Steps", []))}
        self.parameters: dict[str, Any] = {}
        for declared in definition.get("Parameters", []):
            name, kind = declared["Name"], declared.get("Type", "String")
            if name in parameters:
                self.parameters[name] = _typed(parameters[name], kind)
            elif "DefaultValue" in declared:
                self.parameters[name] = _typed(declared["DefaultValue"], kind)
        pipeline_arn, _, execution_id = execution_arn.partition("/execution/")
        self.execution = {
            "PipelineExecutionArn": execution_arn,
            "PipelineExecutionId": execution_id,
            "PipelineName": pipeline_arn.rsplit("/", 1)[-1],
        }
        self.properties: dict[str, Any] = {}
        self.property_files: dict[tuple[str, str], Any] = {}

    def resolve(self, value: Any) -> Any:
        """``value`` with every expression in it replaced by its value."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Get"}:
            return self.get(str(value["Get"]))
        if set(value) == {"Std:Join"}:
            join = value["Std:Join"]
            return str(join.get("On", "")).join(_text(self.resolve(item)) for item in join.get("Values", []))
        if set(value) == {"Std:JsonGet"}:
            return self.json_get(value["Std:JsonGet"])
        return {key: self.resolve(item) for key, item in value.items()}

    def get(self, path: str) -> Any:
        """The value of a ``Get`` path.

        Raises:
            ExpressionError: naming the path, if it names nothing known.
        """
        kind, _, name = path.partition(".")
        if kind == "Parameters" and name in self.parameters:
            return self.parameters[name]
        if kind == "Execution" and name in self.execution:
            return self.execution[name]
        if path in self.properties:
            return self.properties[path]
        match = _OUTPUT_URI.match(path)
        if match is not None:
            step, output = match.groups()
            outputs = self.steps.get(step, {}).get("Arguments", {}).get("ProcessingOutputConfig", {}).get("Outputs", [])
            for declared in outputs:
                if declared.get("OutputName") == output:
                    return self.resolve(declared["S3Output"]["S3Uri"])
        raise ExpressionError(f"cannot resolve {{'Get': {path!r}}} for this execution")

    def json_get(self, expression: Mapping[str, Any]) -> Any:
        """``Std:JsonGet``: a value read from a loaded property file at a dotted path."""
        reference = str(expression.get("PropertyFile", {}).get("Get", ""))
        match = re.match(r"^Steps\.([^.]+)\.PropertyFiles\.(.+)\Z", reference)
        if match is None or (match.group(1), match.group(2)) not in self.property_files:
            raise ExpressionError(f"property file {reference!r} was not produced by a step that ran")
        node = self.property_files[(match.group(1), match.group(2))]
        path = str(expression.get("Path", ""))
        for part in path.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise ExpressionError(f"{reference} has no {path!r}")
            node = node[part]
        return node

    def condition(self, condition: Mapping[str, Any]) -> bool:
        """Evaluate one ``Condition`` step condition (comparisons, ``Or``, ``Not``, ``In``)."""
        kind = condition.get("Type")
        if kind == "Or":
            return any(self.condition(c) for c in condition.get("Conditions", []))
        if kind == "Not":
            return not self.condition(condition["Condition"])
        if kind == "In":
            value = _number(self.resolve(condition["QueryValue"]))
            return value in [_number(self.resolve(v)) for v in condition.get("Values", [])]
        if kind in _COMPARISONS:
            left = _number(self.resolve(condition["LeftValue"]))
            right = _number(self.resolve(condition["RightValue"]))
            return bool(_COMPARISONS[kind](left, right))
        raise ExpressionError(f"condition type {kind!r} is not supported locally")


# --- S3 transfer ------------------------------------------------------------------------------------


def download(s3: Any, uri: str, directory: Path) -> list[Path]:
    """Every object under the S3 prefix ``uri`` into ``directory`` (an exact key lands under its name).

    Raises:
        StepFailed: if nothing is stored under ``uri``.
    """
    bucket, prefix = parse_s3_uri(uri)
    written: list[Path] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            relative = key[len(prefix) :].lstrip("/") or key.rsplit("/", 1)[-1]
            target = directory / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(target))
            written.append(target)
    if not written:
        raise StepFailed(f"nothing is stored at {uri}")
    return written


def upload(s3: Any, directory: Path, uri: str) -> list[str]:
    """Every file under ``directory`` to the S3 prefix ``uri``; return the keys written."""
    bucket, prefix = parse_s3_uri(uri)
    keys = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        key = f"{prefix.rstrip('/')}/{path.relative_to(directory).as_posix()}"
        s3.upload_file(str(path), bucket, key)
        keys.append(key)
    return keys


# --- the Transform emulation ------------------------------------------------------------------------


def _load_predictor(s3: Any, model_uri: str, directory: Path) -> Any:
    """A function from CSV lines (features, no header) to predictions, for the local ``model.tar.gz``.

    The archive holds ``model.joblib`` as ``cdk_mlops/ml/train.py`` saves it; only archives that
    this runner's ``Training`` emulation wrote are loaded (joblib unpickles).
    """
    import joblib
    import numpy as np

    directory.mkdir(parents=True, exist_ok=True)
    archive = directory / "model.tar.gz"
    bucket, key = parse_s3_uri(model_uri)
    s3.download_file(bucket, key, str(archive))
    with tarfile.open(archive) as tar:
        tar.extractall(directory, filter="data")
    model_file = directory / "model.joblib"
    if not model_file.is_file():
        raise StepFailed(f"{model_uri} holds no model.joblib; only models trained by the local Training step score")
    model = joblib.load(model_file)

    def predict(lines: Sequence[str]) -> list[str]:
        if not lines:
            return []
        features = np.array([[float(v) if v.strip() else np.nan for v in line.split(",")] for line in lines])
        if hasattr(model, "predict_proba"):
            return [repr(float(p)) for p in model.predict_proba(features)[:, 1]]
        return [repr(float(p)) for p in model.predict(features)]

    return predict


# --- running ---------------------------------------------------------------------------------------


def run_execution(
    aws: LocalAws,
    definition: Mapping[str, Any],
    *,
    execution_arn: str,
    parameters: Mapping[str, str],
    work_dir: Path,
) -> ExecutionRun:
    """Run an execution's steps locally (see the module docstring); return what each step did.

    Args:
        aws: The local AWS holding the data, the assets and the artifacts.
        definition: The deployed pipeline definition.
        execution_arn: The execution to run.
        parameters: Its parameters, as ``ListPipelineParametersForExecution`` returns them.
        work_dir: A directory for the steps' files.

    Raises:
        StepFailed: if a step's script fails; the message holds its output.
        ExpressionError: if the definition uses an expression this runner does not know.
    """
    return _Runner(aws, definition, execution_arn, parameters, work_dir).run()


class _Runner:
    def __init__(
        self,
        aws: LocalAws,
        definition: Mapping[str, Any],
        execution_arn: str,
        parameters: Mapping[str, str],
        work_dir: Path,
    ) -> None:
        self.aws = aws
        self.s3 = aws.client("s3")
        self.definition = definition
        self.resolver = Resolver(definition, parameters=parameters, execution_arn=execution_arn)
        self.work_dir = work_dir
        self.result = ExecutionRun(execution_arn)
        # ModelDataUrl of each model a Model step created, by model name.
        self._model_data: dict[str, str] = {}

    def run(self) -> ExecutionRun:
        for step in self.definition.get("Steps", []):
            self._step(step)
        return self.result

    def _step(self, step: Mapping[str, Any]) -> None:
        kind = step["Type"]
        if kind == "Processing":
            self._processing(step)
        elif kind == "Training":
            self._training(step)
        elif kind == "Condition":
            self._condition(step)
        elif kind == "RegisterModel":
            self.result.register_arguments = self.resolver.resolve(step["Arguments"])
            self._record(step, "ran", "CreateModelPackage arguments resolved")
        elif kind == "Model":
            self._model(step)
        elif kind == "Transform":
            self._transform(step)
        elif kind == "Fail":
            self.result.failure_message = _text(self.resolver.resolve(step["Arguments"].get("ErrorMessage", "")))
            self._record(step, "ran", self.result.failure_message)
        else:
            self._record(step, "skipped", f"step type {kind} does not run locally")

    def _record(self, step: Mapping[str, Any], outcome: str, detail: str = "") -> None:
        self.result.steps.append(StepRun(step["Name"], step["Type"], outcome, detail))

    def _local(self, root: Path, value: Any) -> Any:
        """A container path under ``/opt/ml/processing`` (or the resource config) mapped below ``root``."""
        if isinstance(value, str) and value.startswith(PROCESSING_ROOT):
            return str(root) + value[len(PROCESSING_ROOT) :]
        if value == RESOURCE_CONFIG:
            return str(root / "config" / "resourceconfig.json")
        return value

    def _python(self, command: Sequence[str], name: str) -> str:
        env = dict(self.aws.env)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        done = subprocess.run(
            list(command), env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr)[-_TAIL:]
            raise StepFailed(f"step {name} exited with {done.returncode}:\n{output}")
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""

    def _processing(self, step: Mapping[str, Any]) -> None:
        name = step["Name"]
        arguments = self.resolver.resolve(step["Arguments"])
        app = arguments.get("AppSpecification", {})
        entrypoint = list(app.get("ContainerEntrypoint") or [])
        if len(entrypoint) != 2 or not entrypoint[0].startswith("python") or not entrypoint[1].endswith(".py"):
            image = str(app.get("ImageUri", "?")).rsplit("/", 1)[-1]
            self._record(step, "skipped", f"its image ({image}) runs no script locally")
            return
        for declared in arguments.get("ProcessingInputs", []):
            if declared["S3Input"].get("S3DataDistributionType", "FullyReplicated") != "FullyReplicated":
                raise StepFailed(f"step {name}: input {declared['InputName']} is ShardedByS3Key, not emulated here")
        count = int(arguments.get("ProcessingResources", {}).get("ClusterConfig", {}).get("InstanceCount", 1))
        hosts = [f"algo-{number}" for number in range(1, count + 1)]
        roots = [self.work_dir / name] if count == 1 else [self.work_dir / name / host for host in hosts]
        with ThreadPoolExecutor(max_workers=min(count, os.cpu_count() or 1)) as pool:
            lines = list(
                pool.map(lambda host, root: self._processing_host(step, arguments, hosts, host, root), hosts, roots)
            )
        outputs = arguments.get("ProcessingOutputConfig", {}).get("Outputs", [])
        local_outputs = {d["OutputName"]: Path(self._local(roots[0], d["S3Output"]["LocalPath"])) for d in outputs}
        for property_file in step.get("PropertyFiles", []):
            path = local_outputs[property_file["OutputName"]] / property_file["FilePath"]
            loaded = json.loads(path.read_text(encoding="utf-8"))
            self.resolver.property_files[(name, property_file["PropertyFileName"])] = loaded
            self.result.property_files[f"{name}.{property_file['PropertyFileName']}"] = loaded
        self._record(
            step, "ran", lines[0] if count == 1 else " | ".join(f"{h}: {x}" for h, x in zip(hosts, lines, strict=True))
        )

    def _processing_host(
        self, step: Mapping[str, Any], arguments: Mapping[str, Any], hosts: list[str], host: str, root: Path
    ) -> str:
        """One host of a processing job: its inputs, its resource config, the script, its outputs."""
        app = arguments["AppSpecification"]
        for declared in arguments.get("ProcessingInputs", []):
            source = declared["S3Input"]
            download(self.s3, source["S3Uri"], Path(self._local(root, source["LocalPath"])))
        config = Path(self._local(root, RESOURCE_CONFIG))
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(json.dumps({"current_host": host, "hosts": hosts}), encoding="utf-8")
        outputs = arguments.get("ProcessingOutputConfig", {}).get("Outputs", [])
        for declared in outputs:
            Path(self._local(root, declared["S3Output"]["LocalPath"])).mkdir(parents=True, exist_ok=True)
        script = self._local(root, app["ContainerEntrypoint"][1])
        container_arguments = [self._local(root, _text(a)) for a in app.get("ContainerArguments", [])]
        last_line = self._python([sys.executable, script, *container_arguments], step["Name"])
        for declared in outputs:
            upload(self.s3, Path(self._local(root, declared["S3Output"]["LocalPath"])), declared["S3Output"]["S3Uri"])
        return last_line

    def _training(self, step: Mapping[str, Any]) -> None:
        name = step["Name"]
        arguments = self.resolver.resolve(step["Arguments"])
        root = self.work_dir / name
        channels = {}
        for channel in arguments.get("InputDataConfig", []):
            directory = root / "input" / "data" / channel["ChannelName"]
            download(self.s3, channel["DataSource"]["S3DataSource"]["S3Uri"], directory)
            channels[channel["ChannelName"]] = directory
        objective = str(arguments.get("HyperParameters", {}).get("objective", "binary:logistic"))
        problem_type = "regression" if objective.startswith("reg:") else "binary_classification"
        model_dir = root / "model"
        command = [sys.executable, str(TRAIN_SCRIPT), "--model-dir", str(model_dir), "--problem-type", problem_type]
        for channel in ("train", "validation"):
            if channel in channels:
                command += [f"--{channel}", str(channels[channel])]
        last_line = self._python(command, name)
        archive = root / "output" / "model.tar.gz"
        archive.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive, "w:gz") as tar:
            for path in sorted(model_dir.iterdir()):
                tar.add(path, arcname=path.name)
        job_name = f"pipelines-{self.resolver.execution['PipelineExecutionId']}-{name}"
        output_path = str(arguments["OutputDataConfig"]["S3OutputPath"]).rstrip("/")
        model_uri = f"{output_path}/{job_name}/output/model.tar.gz"
        bucket, key = parse_s3_uri(model_uri)
        self.s3.upload_file(str(archive), bucket, key)
        self.resolver.properties[f"Steps.{name}.ModelArtifacts.S3ModelArtifacts"] = model_uri
        summary = last_line.split(" -> ", 1)[0].removeprefix("train: ")
        self._record(step, "ran", f"cdk_mlops/ml/train.py (scikit-learn) for the built-in image: {summary}")

    def _job_name(self, step: Mapping[str, Any]) -> str:
        return f"pipelines-{self.resolver.execution['PipelineExecutionId']}-{step['Name']}"

    def _model(self, step: Mapping[str, Any]) -> None:
        arguments = self.resolver.resolve(step["Arguments"])
        container = dict(arguments.get("PrimaryContainer") or {})
        package = container.pop("ModelPackageName", None)
        sagemaker = self.aws.client("sagemaker")
        if package:
            # What SageMaker does with a package: the model runs the package's first container.
            described = sagemaker.describe_model_package(ModelPackageName=package)
            first = described["InferenceSpecification"]["Containers"][0]
            container.update({k: first[k] for k in ("Image", "ModelDataUrl", "Environment") if first.get(k)})
        name = self._job_name(step)
        sagemaker.create_model(
            ModelName=name, ExecutionRoleArn=arguments["ExecutionRoleArn"], PrimaryContainer=container
        )
        self.resolver.properties[f"Steps.{step['Name']}.ModelName"] = name
        self._model_data[name] = str(container.get("ModelDataUrl", ""))
        source = f" of {package}" if package else ""
        self._record(step, "ran", f"CreateModel {name}{source} ({container.get('ModelDataUrl', 'no model data')})")

    def _transform(self, step: Mapping[str, Any]) -> None:
        arguments = self.resolver.resolve(step["Arguments"])
        model_name = str(arguments["ModelName"])
        model_data = self._model_data.get(model_name) or self.aws.client("sagemaker").describe_model(
            ModelName=model_name
        )["PrimaryContainer"].get("ModelDataUrl", "")
        if not model_data:
            raise StepFailed(f"step {step['Name']}: model {model_name} has no ModelDataUrl to load")
        root = self.work_dir / step["Name"]
        predict = _load_predictor(self.s3, str(model_data), root / "model")
        input_uri = str(arguments["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"])
        files = download(self.s3, input_uri, root / "input")
        output_uri = str(arguments["TransformOutput"]["S3OutputPath"]).rstrip("/")
        capture = arguments.get("DataCaptureConfig")
        job_name = self._job_name(step)
        rows = 0
        for path in sorted(files):
            relative = path.relative_to(root / "input").as_posix()
            lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            predictions = predict(lines)
            rows += len(lines)
            out = path.with_name(path.name + ".out")
            out.write_text("".join(f"{value}\n" for value in predictions), encoding="utf-8")
            bucket, key = parse_s3_uri(f"{output_uri}/{relative}.out")
            self.s3.upload_file(str(out), bucket, key)
            if capture:
                destination = str(capture["DestinationS3Uri"]).rstrip("/")
                for kind, source in (("input", path), ("output", out)):
                    bucket, key = parse_s3_uri(f"{destination}/{kind}/{job_name}/{source.name}")
                    self.s3.upload_file(str(source), bucket, key)
        self.resolver.properties[f"Steps.{step['Name']}.TransformOutput.S3OutputPath"] = output_uri
        self._record(step, "ran", f"{rows} rows of {len(files)} files scored with {model_name} -> {output_uri}/")

    def _condition(self, step: Mapping[str, Any]) -> None:
        arguments = step["Arguments"]
        passed = all(self.resolver.condition(c) for c in arguments.get("Conditions", []))
        self._record(step, "passed" if passed else "failed", str(step.get("Description", "")))
        for branch_step in arguments.get("IfSteps" if passed else "ElseSteps", []):
            self._step(branch_step)
