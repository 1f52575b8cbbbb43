"""The definition of a batch scoring pipeline: score one dataset version with an approved model.

Standard library only, like the rest of :mod:`cdk_mlops.pipeline_definition`: the
``BatchInference`` construct fills a :class:`ScoringSpec` with tokens of its resources and
serializes the result with ``Stack.to_json_string``.

The pipeline
============

::

    Model ──────────────┐
    PrepareInput ───────┴──► Transform

``Model`` (Model, i.e. CreateModel)
    A SageMaker model of the model package named by the ``ModelPackageArn`` parameter
    (``PrimaryContainer.ModelPackageName``; the default is the package the environment serves),
    run by the job role, with network isolation, in the VPC when there is one.
``PrepareInput`` (Processing, scikit-learn image, ``ml/prepare_batch.py``)
    Reads the manifest named by ``InputManifestUri``, checks it against ``ManifestSha256``,
    fetches exactly the object versions it lists and writes the transform input: the features
    only, without a header, the label column dropped when the data has it, in files of at most
    ``rows_per_file`` rows (Batch Transform spreads files, not rows, over its instances). It
    also writes the lineage record ``lineage.json``.
``Transform`` (Transform, i.e. CreateTransformJob)
    Scores the input with the ``Model`` step's model. With capture on, Batch Transform also
    records its inputs and outputs under :func:`capture_uri` with an inference id
    (``DataCaptureConfig.GenerateInferenceId``), which Model Monitor's batch jobs read.

Output layout
=============

Every execution writes under its own prefix, named after the data version first (so the
outputs of one dataset version sort together) and the execution id second (so scoring the
same version again, with another model or by hand, never overwrites a result)::

    s3://<bucket>/batch-output/<name>/<DataVersion>/<PipelineExecutionId>/
        lineage.json              which model, which manifest, which execution (PrepareInput)
        input/part-00000.csv      the transform input: features, no header (PrepareInput)
        part-00000.csv.out        one prediction per input line (Transform, as Batch Transform names them)

``lineage.json`` and the predictions share the prefix by construction: the transform's
``S3OutputPath`` is the ``PrepareInput`` output that holds ``lineage.json``.

Every job step retries SageMaker's transient failures (:data:`SERVICE_RETRY` for service faults
and throttling; :data:`JOB_RETRY` for internal errors, capacity and resource limits of jobs).
``Model`` creates no job, so it retries service faults and throttling only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from cdk_mlops.pipeline_definition.expressions import (
    DefinitionBuilder,
    Expr,
    get_execution,
    get_parameter,
    get_step,
    join,
    processing_output_uri,
)
from cdk_mlops.pipeline_definition.names import (
    CODE_DIR,
    DATA_VERSION,
    INPUT_MANIFEST_URI,
    MANIFEST_DIR,
    MANIFEST_SHA256,
    OUTPUT_ROOT,
    TRIGGER_REASON,
    UNVERIFIED_SHA256,
)
from cdk_mlops.pipeline_definition.settings import ScriptSource, is_unresolved
from cdk_mlops.pipeline_definition.steps import s3_input, s3_output

__all__ = [
    "BATCH_CAPTURE_PREFIX",
    "BATCH_OUTPUT_PREFIX",
    "JOB_RETRY",
    "LINEAGE_FILE",
    "MODEL_PACKAGE_ARN",
    "MODEL_STEP",
    "OUTPUT_LINEAGE",
    "OUTPUT_TRANSFORM_INPUT",
    "PREPARE_INPUT_STEP",
    "SCORING_PARAMETER_NAMES",
    "SCORING_STEP_NAMES",
    "SERVICE_RETRY",
    "SPLIT_TYPES",
    "TRANSFORM_STEP",
    "ScoringSpec",
    "build_scoring_definition",
    "capture_prefix",
    "capture_uri",
    "output_prefix",
    "scoring_spec_problems",
]

#: Key prefix of every batch scoring output in the data store (``<this><name>/`` per pipeline).
BATCH_OUTPUT_PREFIX: Final = "batch-output/"
#: Key prefix of Batch Transform data capture in the data store (``<this><name>/`` per pipeline).
BATCH_CAPTURE_PREFIX: Final = "batch-capture/"

#: Pipeline parameter: the model package version to score with (default: the one the environment serves).
MODEL_PACKAGE_ARN: Final = "ModelPackageArn"
#: Every parameter of the scoring pipeline; the retrain trigger sends the first four.
SCORING_PARAMETER_NAMES: Final = (INPUT_MANIFEST_URI, MANIFEST_SHA256, DATA_VERSION, TRIGGER_REASON, MODEL_PACKAGE_ARN)

MODEL_STEP: Final = "Model"
PREPARE_INPUT_STEP: Final = "PrepareInput"
TRANSFORM_STEP: Final = "Transform"
#: The steps of the scoring definition, in order.
SCORING_STEP_NAMES: Final = (MODEL_STEP, PREPARE_INPUT_STEP, TRANSFORM_STEP)

#: ``PrepareInput``'s output holding the transform input.
OUTPUT_TRANSFORM_INPUT: Final = "transform_input"
#: ``PrepareInput``'s output holding ``lineage.json``: the execution's output prefix.
OUTPUT_LINEAGE: Final = "lineage"
#: The lineage record (``ml/prepare_batch.py`` repeats the name; a test keeps them equal).
LINEAGE_FILE: Final = "lineage.json"
#: Batch Transform's ``SplitType`` values (CreateTransformJob).
SPLIT_TYPES: Final = ("None", "Line", "RecordIO", "TFRecord")

#: Retries of every step: transient service errors and throttling, with exponential backoff.
SERVICE_RETRY: Final[Mapping[str, Any]] = {
    "ExceptionType": ["Step.SERVICE_FAULT", "Step.THROTTLING"],
    "IntervalSeconds": 5,
    "BackoffRate": 2.0,
    "MaxAttempts": 5,
}
#: Retries of the job steps: a job that failed on SageMaker's side, capacity or a resource limit.
JOB_RETRY: Final[Mapping[str, Any]] = {
    "ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR", "SageMaker.CAPACITY_ERROR", "SageMaker.RESOURCE_LIMIT"],
    "IntervalSeconds": 60,
    "BackoffRate": 2.0,
    "MaxAttempts": 3,
}

# Batch Transform's largest mini-batch (MB): with SplitType Line, records are sent in batches up
# to this size, which the built-in algorithms accept.
_MAX_PAYLOAD_MB: Final = 6
_PROCESSING_VOLUME_GB: Final = 30
_PROCESSING_MAX_RUNTIME: Final = 24 * 3600
_TRANSFORM_INPUT_DIR: Final = f"{OUTPUT_ROOT}/{OUTPUT_TRANSFORM_INPUT}"
_LINEAGE_DIR: Final = f"{OUTPUT_ROOT}/{OUTPUT_LINEAGE}"


@dataclass(frozen=True, kw_only=True)
class ScoringSpec:
    """Everything :func:`build_scoring_definition` needs; the construct fills it with tokens.

    Attributes:
        name: The scoring pipeline's name; it also names the output and capture prefixes.
        role_arn: The job role: the model's execution role and the processing job's role.
        bucket_name: The data bucket (input manifests and objects, outputs, capture).
        kms_key_arn: The data store's key: job volumes, outputs and capture.
        model_package_arn: The ``ModelPackageArn`` parameter's default.
        prepare_script: ``ml/prepare_batch.py`` as uploaded (a CDK asset).
        processing_image_uri: The image ``PrepareInput`` runs in (the scikit-learn image).
        default_input_manifest_uri: The ``InputManifestUri`` default: a URI of no object, so a
            start without a manifest fails at ``PrepareInput`` saying what is missing.
        instance_type: The transform instances. Default: - ``ml.m5.large``.
        instance_count: How many. Default: - 1.
        processing_instance_type: ``PrepareInput``'s instance. Default: - ``ml.m5.large``.
        content_type: The input's MIME type; also the ``Accept`` of the output. Default: - ``text/csv``.
        split_type: How Batch Transform splits input files into records. Default: - ``Line``.
        label_column: A column ``PrepareInput`` drops when the data has it. Default: - none;
            every column is a feature.
        rows_per_file: Rows per transform input file. Default: - 100,000.
        capture: Capture the transform's inputs and outputs. Default: - True.
        subnet_ids: Run the jobs and the model in these subnets. Default: - no VPC.
        security_group_ids: Their security groups (with ``subnet_ids``). Default: - none.
        experiments: Record executions as SageMaker Experiments trials. Default: - True.
    """

    name: str
    role_arn: str
    bucket_name: str
    kms_key_arn: str
    model_package_arn: str
    prepare_script: ScriptSource
    processing_image_uri: str
    default_input_manifest_uri: str
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    processing_instance_type: str = "ml.m5.large"
    content_type: str = "text/csv"
    split_type: str = "Line"
    label_column: str | None = None
    rows_per_file: int = 100_000
    capture: bool = True
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    experiments: bool = True


def output_prefix(name: str) -> str:
    """The key prefix of a scoring pipeline's outputs: ``batch-output/<name>/``."""
    return f"{BATCH_OUTPUT_PREFIX}{name}/"


def capture_prefix(name: str) -> str:
    """The key prefix of a scoring pipeline's data capture: ``batch-capture/<name>/``."""
    return f"{BATCH_CAPTURE_PREFIX}{name}/"


def capture_uri(bucket_name: str, name: str) -> str:
    """``s3://<bucket>/batch-capture/<name>/``: where Batch Transform captures, and Model Monitor reads."""
    return f"s3://{bucket_name}/{capture_prefix(name)}"


def scoring_spec_problems(spec: ScoringSpec) -> list[str]:
    """Every value of ``spec`` the SageMaker API would reject, each with the fix (tokens pass)."""
    problems: list[str] = []
    count = spec.instance_count
    if not is_unresolved(count) and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        problems.append(f"instance_count ({count!r}) must be a whole number >= 1")
    if spec.split_type not in SPLIT_TYPES:
        problems.append(f"split_type {spec.split_type!r} is not one of {', '.join(SPLIT_TYPES)}")
    if not is_unresolved(spec.content_type) and (not spec.content_type or len(spec.content_type) > 256):
        problems.append(f"content_type {spec.content_type!r} must be a MIME type of 1-256 characters, e.g. 'text/csv'")
    rows = spec.rows_per_file
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        problems.append(f"rows_per_file ({rows!r}) must be a whole number >= 1")
    label = spec.label_column
    if label is not None and (not label or label != label.strip() or "," in label):
        problems.append(f"label_column {label!r} must be a column name without ',' or surrounding spaces")
    if bool(spec.subnet_ids) != bool(spec.security_group_ids):
        problems.append("subnet_ids and security_group_ids go together; give both or neither")
    return problems


def _execution_prefix(spec: ScoringSpec, *parts: str) -> Expr:
    """``s3://<bucket>/batch-output/<name>/<DataVersion>/<PipelineExecutionId>[/<parts>]``."""
    return join(
        [
            "s3:/",
            spec.bucket_name,
            output_prefix(spec.name).rstrip("/"),
            get_parameter(DATA_VERSION),
            get_execution("PipelineExecutionId"),
            *parts,
        ],
        on="/",
    )


def _vpc_config(spec: ScoringSpec) -> dict[str, Any]:
    return {"Subnets": list(spec.subnet_ids), "SecurityGroupIds": list(spec.security_group_ids)}


def _model_step(b: DefinitionBuilder, spec: ScoringSpec) -> None:
    request: dict[str, Any] = {
        "ExecutionRoleArn": spec.role_arn,
        # SageMaker reads the package's containers (image, ModelDataUrl) when it creates the model.
        "PrimaryContainer": {"ModelPackageName": get_parameter(MODEL_PACKAGE_ARN)},
        # The model's containers score records; they need no network of their own.
        "EnableNetworkIsolation": True,
    }
    if spec.subnet_ids:
        request["VpcConfig"] = _vpc_config(spec)
    b.step(
        MODEL_STEP,
        "Model",
        request,
        description="A SageMaker model of the ModelPackageArn parameter's model package.",
        # CreateModel starts no job, so only the service's own transient errors can be retried.
        retry_policies=(SERVICE_RETRY,),
    )


def _prepare_step(b: DefinitionBuilder, spec: ScoringSpec) -> None:
    arguments: list[Any] = [
        "--manifest-dir",
        MANIFEST_DIR,
        "--output-dir",
        _TRANSFORM_INPUT_DIR,
        "--lineage-dir",
        _LINEAGE_DIR,
        "--rows-per-file",
        str(spec.rows_per_file),
        # One token each: a value starting with '-' must not read as an option. Not TriggerReason:
        # a container argument holds at most 256 characters, a reason 1024; the execution keeps it.
        join(["--manifest-uri=", get_parameter(INPUT_MANIFEST_URI)]),
        join(["--manifest-sha256=", get_parameter(MANIFEST_SHA256)]),
        join(["--data-version=", get_parameter(DATA_VERSION)]),
        join(["--model-package-arn=", get_parameter(MODEL_PACKAGE_ARN)]),
        join(["--pipeline-execution-arn=", get_execution("PipelineExecutionArn")]),
        join(["--output-uri=", _execution_prefix(spec)]),
    ]
    if spec.label_column:
        arguments.append(f"--label-column={spec.label_column}")
    if spec.capture:
        arguments.append(f"--capture-uri={capture_uri(spec.bucket_name, spec.name)}")
    cluster = {
        "InstanceCount": 1,
        "InstanceType": spec.processing_instance_type,
        "VolumeSizeInGB": _PROCESSING_VOLUME_GB,
        "VolumeKmsKeyId": spec.kms_key_arn,
    }
    job: dict[str, Any] = {
        "ProcessingResources": {"ClusterConfig": cluster},
        "AppSpecification": {
            "ImageUri": spec.processing_image_uri,
            "ContainerEntrypoint": ["python3", f"{CODE_DIR}/{spec.prepare_script.file_name}"],
            "ContainerArguments": arguments,
        },
        "RoleArn": spec.role_arn,
        "ProcessingInputs": [
            s3_input("code", spec.prepare_script.s3_uri, CODE_DIR),
            s3_input("manifest", get_parameter(INPUT_MANIFEST_URI), MANIFEST_DIR),
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                s3_output(OUTPUT_TRANSFORM_INPUT, _execution_prefix(spec, "input"), _TRANSFORM_INPUT_DIR),
                s3_output(OUTPUT_LINEAGE, _execution_prefix(spec), _LINEAGE_DIR),
            ],
            "KmsKeyId": spec.kms_key_arn,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": _PROCESSING_MAX_RUNTIME},
    }
    if spec.subnet_ids:
        # The script fetches object versions with boto3: it needs the VPC's S3 endpoint.
        job["NetworkConfig"] = {
            "EnableInterContainerTrafficEncryption": True,
            "EnableNetworkIsolation": False,
            "VpcConfig": _vpc_config(spec),
        }
    b.step(
        PREPARE_INPUT_STEP,
        "Processing",
        job,
        description="Fetch the dataset version the manifest lists; write its features as the transform input "
        "and the lineage record.",
        retry_policies=(SERVICE_RETRY, JOB_RETRY),
    )


def _transform_step(b: DefinitionBuilder, spec: ScoringSpec) -> None:
    lines = spec.split_type == "Line"
    request: dict[str, Any] = {
        "ModelName": get_step(MODEL_STEP, "ModelName"),
        # Several records per request where the input is split into records; one otherwise.
        "BatchStrategy": "SingleRecord" if spec.split_type == "None" else "MultiRecord",
        "MaxPayloadInMB": _MAX_PAYLOAD_MB,
        "TransformInput": {
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": processing_output_uri(PREPARE_INPUT_STEP, OUTPUT_TRANSFORM_INPUT),
                }
            },
            "ContentType": spec.content_type,
            "CompressionType": "None",
            "SplitType": spec.split_type,
        },
        "TransformOutput": {
            # The prefix holding lineage.json: predictions and their lineage side by side.
            "S3OutputPath": processing_output_uri(PREPARE_INPUT_STEP, OUTPUT_LINEAGE),
            "Accept": spec.content_type,
            # One prediction per line, in input order, as the records were split.
            "AssembleWith": "Line" if lines else "None",
            "KmsKeyId": spec.kms_key_arn,
        },
        "TransformResources": {
            "InstanceType": spec.instance_type,
            "InstanceCount": spec.instance_count,
            "VolumeKmsKeyId": spec.kms_key_arn,
        },
    }
    if spec.capture:
        request["DataCaptureConfig"] = {
            "DestinationS3Uri": capture_uri(spec.bucket_name, spec.name),
            "KmsKeyId": spec.kms_key_arn,
            # Model quality monitoring joins ground truth to captured records by inference id.
            "GenerateInferenceId": True,
        }
    b.step(
        TRANSFORM_STEP,
        "Transform",
        request,
        description="Score the prepared input with the model; predictions land next to lineage.json.",
        retry_policies=(SERVICE_RETRY, JOB_RETRY),
    )


def build_scoring_definition(spec: ScoringSpec) -> dict[str, Any]:
    """The scoring pipeline's definition (see the module docstring); a fresh dict each call.

    ``spec`` is not validated here; call :func:`scoring_spec_problems` first (the construct does,
    and raises ``ConfigurationError``).
    """
    b = DefinitionBuilder()
    b.parameter(INPUT_MANIFEST_URI, "String", spec.default_input_manifest_uri)
    b.parameter(MANIFEST_SHA256, "String", UNVERIFIED_SHA256)
    b.parameter(DATA_VERSION, "String", "unknown")
    b.parameter(TRIGGER_REASON, "String", "manual")
    b.parameter(MODEL_PACKAGE_ARN, "String", spec.model_package_arn)
    _model_step(b, spec)
    _prepare_step(b, spec)
    _transform_step(b, spec)
    return b.build(experiments=spec.experiments)
