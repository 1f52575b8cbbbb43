"""The steps of the default training pipeline and :func:`build_pipeline_definition`.

The pipeline itself (its steps, the gate and what each step reads and writes) is described in
:mod:`cdk_mlops.pipeline_definition`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from cdk_mlops.pipeline_definition.expressions import (
    DefinitionBuilder,
    Expr,
    condition,
    condition_or,
    get_execution,
    get_parameter,
    get_step,
    join,
    json_get,
    processing_output_uri,
)
from cdk_mlops.pipeline_definition.names import (
    ANALYSIS_CONFIG_FILE,
    ANALYSIS_FILE,
    BASELINE_CONSTRAINTS_URI,
    BASELINE_DATASET_DIR,
    BASELINE_INPUT_DIR,
    CHAMPION_METRIC,
    CHECKPOINT_DIR,
    CLARIFY_CONFIG_DIR,
    CLARIFY_DATA_DIR,
    CLARIFY_DIR,
    CLARIFY_MODEL,
    CLARIFY_OUTPUTS,
    CODE_DIR,
    COMPARISON_FILE,
    COMPARISON_PROPERTY_FILE,
    CONSTRAINTS_FILE,
    DATA_BIAS_BASELINE,
    DATA_QUALITY_BASELINE,
    DATA_VERSION,
    EVALUATE,
    EVALUATION_FILE,
    EVALUATION_INPUT_DIR,
    EVALUATION_PROPERTY_FILE,
    FAIL,
    GATE,
    GROUND_TRUTH_COLUMN,
    INPUT_MANIFEST_URI,
    MANIFEST_DIR,
    MANIFEST_SHA256,
    METADATA_EVALUATION_METRIC,
    METADATA_EXECUTION_ARN,
    METADATA_SOURCE_REVISION,
    MLFLOW_TRACKING_ARN_ENV,
    MODEL_APPROVAL_STATUS,
    MODEL_BIAS_BASELINE,
    MODEL_DIR,
    MODEL_EXPLAINABILITY_BASELINE,
    MODEL_QUALITY_BASELINE,
    OUTPUT_ANALYSIS,
    OUTPUT_BASELINE,
    OUTPUT_CLARIFY_DATASET,
    OUTPUT_DATA_BIAS_CONFIG,
    OUTPUT_EVALUATION,
    OUTPUT_EXPLAINABILITY_CONFIG,
    OUTPUT_EXPLAINABILITY_MONITOR_CONFIG,
    OUTPUT_MODEL_BIAS_CONFIG,
    OUTPUT_MODEL_BIAS_MONITOR_CONFIG,
    OUTPUT_MONITORING,
    OUTPUT_PREDICTIONS,
    OUTPUT_REPORT,
    OUTPUT_ROOT,
    OUTPUT_TEST,
    OUTPUT_TRAIN,
    OUTPUT_VALIDATION,
    PIP_INDEX_URL_ENV,
    PREDICTION_COLUMN,
    PREPROCESS,
    PROBABILITY_COLUMN,
    PROBABILITY_THRESHOLD,
    PROCESSING_INSTANCE_TYPE,
    REGISTER,
    RESOURCE_CONFIG,
    STATISTICS_FILE,
    TEST_DIR,
    TRACK,
    TRAIN,
    TRAINING_INSTANCE_COUNT,
    TRAINING_INSTANCE_TYPE,
    TRIGGER_REASON,
    UNVERIFIED_SHA256,
)
from cdk_mlops.pipeline_definition.settings import (
    ClarifySettings,
    OnViolation,
    PipelineSpec,
    ProblemType,
    ScriptSource,
    clarify_facet_argument,
)

# Retries that every job step gets: transient service errors, then SageMaker capacity
# (spot included) and internal errors, with exponential backoff.
_SERVICE_RETRY: Final = {
    "ExceptionType": ["Step.SERVICE_FAULT", "Step.THROTTLING"],
    "IntervalSeconds": 5,
    "BackoffRate": 2.0,
    "MaxAttempts": 5,
}
_JOB_RETRY: Final = {
    "ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR", "SageMaker.CAPACITY_ERROR", "SageMaker.RESOURCE_LIMIT"],
    "IntervalSeconds": 60,
    "BackoffRate": 2.0,
    "MaxAttempts": 3,
}


def _artifact_uri(spec: PipelineSpec, *parts: str) -> Expr:
    """``s3://<bucket>/<prefix>/<PipelineExecutionId>/<parts...>``."""
    prefix = [spec.artifacts_prefix] if spec.artifacts_prefix else []
    return join(["s3:/", spec.bucket_name, *prefix, get_execution("PipelineExecutionId"), *parts], on="/")


def s3_input(name: str, s3_uri: Any, local_path: str) -> dict[str, Any]:
    """A ``ProcessingInput``: the S3 prefix ``s3_uri`` downloaded in full to ``local_path`` before the job starts."""
    return {
        "InputName": name,
        "AppManaged": False,
        "S3Input": {
            "S3Uri": s3_uri,
            "LocalPath": local_path,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
            "S3CompressionType": "None",
        },
    }


def s3_output(name: str, s3_uri: Any, local_path: str) -> dict[str, Any]:
    """A ``ProcessingOutput``: ``local_path`` uploaded to ``s3_uri`` when the job ends."""
    return {
        "OutputName": name,
        "AppManaged": False,
        "S3Output": {"S3Uri": s3_uri, "LocalPath": local_path, "S3UploadMode": "EndOfJob"},
    }


def _processing_job(
    spec: PipelineSpec,
    *,
    image_uri: str,
    inputs: Sequence[dict[str, Any]],
    outputs: Sequence[dict[str, Any]],
    entrypoint: Sequence[Any] = (),
    arguments: Sequence[Any] = (),
    environment: Mapping[str, Any] | None = None,
    needs_network: bool = True,
    instance_type: str | None = None,
    instance_count: int = 1,
) -> dict[str, Any]:
    """A CreateProcessingJob request body (without ProcessingJobName; the pipeline names jobs).

    In a VPC, a job that ``needs_network`` (AWS APIs from its code, a package index) runs
    without network isolation; SageMaker still moves its inputs and outputs either way. The
    job runs on one instance of the ``ProcessingInstanceType`` parameter's type unless
    ``instance_type`` (and ``instance_count``) say otherwise.
    """
    s = spec.settings
    cluster: dict[str, Any] = {
        "InstanceCount": instance_count,
        "InstanceType": instance_type or get_parameter(PROCESSING_INSTANCE_TYPE),
        "VolumeSizeInGB": s.processing_volume_size_gb,
    }
    app: dict[str, Any] = {"ImageUri": image_uri}
    if entrypoint:
        app["ContainerEntrypoint"] = list(entrypoint)
    if arguments:
        app["ContainerArguments"] = list(arguments)
    output_config: dict[str, Any] = {"Outputs": list(outputs)}
    if spec.kms_key_arn:
        cluster["VolumeKmsKeyId"] = spec.kms_key_arn
        output_config["KmsKeyId"] = spec.kms_key_arn
    job: dict[str, Any] = {
        "ProcessingResources": {"ClusterConfig": cluster},
        "AppSpecification": app,
        "RoleArn": spec.role_arn,
        "ProcessingInputs": list(inputs),
        "ProcessingOutputConfig": output_config,
        "StoppingCondition": {"MaxRuntimeInSeconds": s.processing_max_runtime_seconds},
    }
    if not outputs:
        del job["ProcessingOutputConfig"]  # a job that writes nothing to S3 (Track) declares no outputs
    if environment:
        job["Environment"] = dict(environment)
    if spec.subnet_ids:
        job["NetworkConfig"] = {
            "EnableInterContainerTrafficEncryption": True,
            "EnableNetworkIsolation": not needs_network,
            "VpcConfig": {"Subnets": list(spec.subnet_ids), "SecurityGroupIds": list(spec.security_group_ids)},
        }
    return job


def _script_entrypoint(script: ScriptSource) -> list[str]:
    return ["python3", f"{CODE_DIR}/{script.file_name}"]


def _preprocess_step(b: DefinitionBuilder, spec: PipelineSpec) -> None:
    s = spec.settings
    arguments: list[Any] = [
        "--manifest-dir",
        MANIFEST_DIR,
        "--output-dir",
        OUTPUT_ROOT,
        "--problem-type",
        ProblemType(s.problem_type).value,
        "--seed",
        str(s.split_seed),
        "--train-fraction",
        repr(float(s.train_fraction)),
        "--validation-fraction",
        repr(float(s.validation_fraction)),
        "--on-violation",
        OnViolation(s.data_validation).value,
        "--baseline-rows",
        str(s.baseline_rows),
        join(["--manifest-uri=", get_parameter(INPUT_MANIFEST_URI)]),
        join(["--manifest-sha256=", get_parameter(MANIFEST_SHA256)]),
        join(["--baseline-constraints-uri=", get_parameter(BASELINE_CONSTRAINTS_URI)]),
        join(["--data-version=", get_parameter(DATA_VERSION)]),
        # Not TriggerReason: a container argument holds at most 256 characters, a reason 1024.
    ]
    if s.label_column:
        arguments += ["--label-column", s.label_column]
    if s.preprocess_instance_count > 1:
        # Each instance takes its share of the shards and names its files by its host.
        arguments += ["--resource-config", RESOURCE_CONFIG]
    outputs = [
        s3_output(name, _artifact_uri(spec, "preprocess", name), f"{OUTPUT_ROOT}/{name}")
        for name in (OUTPUT_TRAIN, OUTPUT_VALIDATION, OUTPUT_TEST, OUTPUT_BASELINE, OUTPUT_REPORT)
    ]
    job = _processing_job(
        spec,
        image_uri=spec.sklearn_image_uri,
        inputs=[
            s3_input("code", spec.preprocess_script.s3_uri, CODE_DIR),
            s3_input("manifest", get_parameter(INPUT_MANIFEST_URI), MANIFEST_DIR),
        ],
        outputs=outputs,
        entrypoint=_script_entrypoint(spec.preprocess_script),
        arguments=arguments,
        instance_type=s.preprocess_instance_type,
        instance_count=s.preprocess_instance_count,
    )
    b.step(
        PREPROCESS,
        "Processing",
        job,
        description="Fetch the dataset snapshot, validate it, split it 70/15/15 into label-first CSVs.",
        retry_policies=(_SERVICE_RETRY, _JOB_RETRY),
    )


# The analyzer's dataset_format for a CSV with a header, as the SageMaker Python SDK writes it
# (DatasetFormat.csv()); with a header, the model-quality analyzer finds its columns by name.
_CSV_WITH_HEADER: Final = '{"csv": {"header": true, "output_columns_position": "START"}}'


def _baseline_step(b: DefinitionBuilder, spec: PipelineSpec) -> None:
    job = _processing_job(
        spec,
        image_uri=spec.model_monitor_image_uri,
        # Evaluate's dataset, not the training split: Model Monitor analyses each captured CSV
        # record as the response's columns then the request's, so the baseline holds the model's
        # predictions first, then the features.
        inputs=[
            s3_input("baseline_dataset_input", processing_output_uri(EVALUATE, OUTPUT_BASELINE), BASELINE_DATASET_DIR)
        ],
        outputs=[s3_output(OUTPUT_MONITORING, _artifact_uri(spec, "data-quality-baseline"), OUTPUT_ROOT)],
        environment={
            "dataset_format": _CSV_WITH_HEADER,
            "dataset_source": BASELINE_DATASET_DIR,
            "output_path": OUTPUT_ROOT,
            "publish_cloudwatch_metrics": "Disabled",
        },
        needs_network=False,
    )
    b.step(
        DATA_QUALITY_BASELINE,
        "Processing",
        job,
        description="Data-quality statistics and constraints of the model's predictions on the training split "
        "and its features (Model Monitor analyzer).",
        retry_policies=(_SERVICE_RETRY, _JOB_RETRY),
    )


def _model_quality_environment(problem_type: ProblemType) -> dict[str, str]:
    """The analyzer's environment for a model-quality baseline of ``Evaluate``'s predictions file.

    The attributes name columns of the file (it has a header): the label, the predicted label or
    value and, for binary classification, the probability with the threshold that made the
    predicted label, so the analyzer computes AUC from the probabilities and the other metrics
    from the labels, as ``Evaluate`` does.
    """
    environment = {
        "analysis_type": "MODEL_QUALITY",
        "problem_type": problem_type.monitor_problem_type,
        "dataset_format": _CSV_WITH_HEADER,
        "dataset_source": BASELINE_DATASET_DIR,
        "output_path": OUTPUT_ROOT,
        "publish_cloudwatch_metrics": "Disabled",
        "ground_truth_attribute": GROUND_TRUTH_COLUMN,
        "inference_attribute": PREDICTION_COLUMN,
    }
    if problem_type is ProblemType.BINARY_CLASSIFICATION:
        environment["probability_attribute"] = PROBABILITY_COLUMN
        environment["probability_threshold_attribute"] = repr(PROBABILITY_THRESHOLD)
    return environment


def _model_quality_baseline_step(b: DefinitionBuilder, spec: PipelineSpec) -> None:
    job = _processing_job(
        spec,
        image_uri=spec.model_monitor_image_uri,
        # The test split, not the training split: the model has not seen it, so its metrics are
        # the ones a monitor should expect from new labelled traffic.
        inputs=[
            s3_input(
                "baseline_dataset_input", processing_output_uri(EVALUATE, OUTPUT_PREDICTIONS), BASELINE_DATASET_DIR
            )
        ],
        outputs=[s3_output(OUTPUT_MONITORING, _artifact_uri(spec, "model-quality-baseline"), OUTPUT_ROOT)],
        environment=_model_quality_environment(ProblemType(spec.settings.problem_type)),
        needs_network=False,
    )
    b.step(
        MODEL_QUALITY_BASELINE,
        "Processing",
        job,
        description="Model-quality statistics and constraints of the model's predictions on the test split "
        "against its labels (Model Monitor analyzer).",
        retry_policies=(_SERVICE_RETRY, _JOB_RETRY),
    )


def _train_step(b: DefinitionBuilder, spec: PipelineSpec) -> None:
    s = spec.settings
    hyperparameters: dict[str, Any] = s.effective_hyperparameters
    algorithm: dict[str, Any] = {"TrainingImage": spec.training_image_uri, "TrainingInputMode": "File"}
    if spec.training_source is not None:
        # Script mode (the SageMaker training toolkit): only the user's hyperparameters, passed
        # to the entry point as --name value; the toolkit reads each value as a JSON string.
        hyperparameters = {k: v if v.startswith('"') else f'"{v}"' for k, v in s.hyperparameters.items()}
        hyperparameters["sagemaker_program"] = f'"{spec.training_source.file_name}"'
        hyperparameters["sagemaker_submit_directory"] = join(['"', spec.training_source.s3_uri, '"'])
    channels = [
        {
            "ChannelName": name,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": processing_output_uri(PREPROCESS, name),
                    # Each training instance takes its share of Preprocess's train files (one per
                    # Preprocess instance), as distributed XGBoost expects; every instance
                    # evaluates on the whole validation split.
                    "S3DataDistributionType": "ShardedByS3Key" if name == OUTPUT_TRAIN else "FullyReplicated",
                }
            },
            "ContentType": "text/csv",
            "CompressionType": "None",
        }
        for name in (OUTPUT_TRAIN, OUTPUT_VALIDATION)
    ]
    resources: dict[str, Any] = {
        "InstanceType": get_parameter(TRAINING_INSTANCE_TYPE),
        "InstanceCount": get_parameter(TRAINING_INSTANCE_COUNT),
        "VolumeSizeInGB": s.training_volume_size_gb,
    }
    output: dict[str, Any] = {"S3OutputPath": _artifact_uri(spec, "train")}
    if spec.kms_key_arn:
        resources["VolumeKmsKeyId"] = spec.kms_key_arn
        output["KmsKeyId"] = spec.kms_key_arn
    stopping: dict[str, Any] = {"MaxRuntimeInSeconds": s.training_max_runtime_seconds}
    job: dict[str, Any] = {
        "AlgorithmSpecification": algorithm,
        "RoleArn": spec.role_arn,
        "HyperParameters": hyperparameters,
        "InputDataConfig": channels,
        "OutputDataConfig": output,
        "ResourceConfig": resources,
        "StoppingCondition": stopping,
        # The built-in algorithm needs no network; a script-mode job downloads its source.
        "EnableNetworkIsolation": spec.training_source is None,
        "EnableInterContainerTrafficEncryption": True,
    }
    max_wait = s.effective_max_wait_seconds
    if max_wait is not None:
        job["EnableManagedSpotTraining"] = True
        stopping["MaxWaitTimeInSeconds"] = max_wait
    if s.checkpoint_s3_uri:
        job["CheckpointConfig"] = {"S3Uri": s.checkpoint_s3_uri, "LocalPath": CHECKPOINT_DIR}
    if spec.subnet_ids:
        job["VpcConfig"] = {"Subnets": list(spec.subnet_ids), "SecurityGroupIds": list(spec.security_group_ids)}
    mlflow = _mlflow_environment(spec)
    if mlflow:
        job["Environment"] = mlflow
    b.step(
        TRAIN,
        "Training",
        job,
        description="Train on the train split, early-stopping on the validation split.",
        retry_policies=(_SERVICE_RETRY, _JOB_RETRY),
    )


def _clarify_model_step(b: DefinitionBuilder, spec: PipelineSpec) -> None:
    """The trained model as a SageMaker model: Clarify serves it on a shadow endpoint by its name."""
    container: dict[str, Any] = {
        "Image": spec.training_image_uri,
        "ModelDataUrl": get_step(TRAIN, "ModelArtifacts.S3ModelArtifacts"),
    }
    if spec.training_source is not None:
        container["Environment"] = _script_mode_environment(spec.training_source)
    request: dict[str, Any] = {
        "ExecutionRoleArn": spec.role_arn,
        "PrimaryContainer": container,
        # As in training: the built-in algorithm needs no network; a script-mode container downloads its source.
        "EnableNetworkIsolation": spec.training_source is None,
    }
    if spec.subnet_ids:
        # Clarify gives its shadow endpoints the model's VPC configuration.
        request["VpcConfig"] = {"Subnets": list(spec.subnet_ids), "SecurityGroupIds": list(spec.security_group_ids)}
    b.step(
        CLARIFY_MODEL,
        "Model",
        request,
        description="The trained model as a SageMaker model, which the Clarify jobs serve on shadow endpoints.",
        retry_policies=(_SERVICE_RETRY,),
    )


def _script_mode_environment(source: ScriptSource) -> dict[str, str]:
    """What the framework serving container needs to load a script-mode model's entry point."""
    return {"SAGEMAKER_PROGRAM": source.file_name, "SAGEMAKER_SUBMIT_DIRECTORY": source.s3_uri}


def _clarify_arguments(spec: PipelineSpec, clarify: ClarifySettings) -> list[Any]:
    """``Evaluate``'s arguments for the Clarify configurations (see ``ml/evaluate.py``)."""
    arguments: list[Any] = [
        "--clarify-config-dir",
        CLARIFY_DIR,
        # A step property: the model exists only once the ClarifyModel step of this execution ran.
        join(["--clarify-model-name=", get_step(CLARIFY_MODEL, "ModelName")]),
        "--clarify-label-values",
        ",".join(str(v) for v in clarify.positive_label_values),
    ]
    for facet in clarify.facets:
        # One facet per argument: a container argument holds at most 256 characters.
        arguments += ["--clarify-facet", clarify_facet_argument(facet)]
    if clarify.group_column is not None:
        arguments += ["--clarify-group-column", clarify.group_column]
    arguments += [
        "--clarify-sample-rows",
        str(clarify.sample_rows),
        "--clarify-shap-samples",
        str(clarify.shap_num_samples),
        "--clarify-shap-baseline-rows",
        str(clarify.shap_baseline_rows),
        "--clarify-shap-agg-method",
        str(clarify.shap_agg_method.value),
        "--clarify-endpoint-instance-type",
        clarify.endpoint_instance_type,
        "--clarify-endpoint-instance-count",
        str(clarify.endpoint_instance_count),
        "--clarify-seed",
        str(spec.settings.split_seed),
    ]
    if clarify.shap_use_logit:
        arguments.append("--clarify-shap-use-logit")
    return arguments


# Where each Clarify job's result lands, under the execution's artifacts prefix. The model-bias and
# explainability folders also hold the analysis configuration their monitors take (Evaluate writes it).
_CLARIFY_RESULTS: Final = {
    DATA_BIAS_BASELINE: "data-bias-baseline",
    MODEL_BIAS_BASELINE: "model-bias-baseline",
    MODEL_EXPLAINABILITY_BASELINE: "model-explainability-baseline",
}
# Evaluate's Clarify outputs and their folders under the execution's artifacts prefix.
_CLARIFY_OUTPUT_FOLDERS: Final = {
    OUTPUT_CLARIFY_DATASET: "clarify-dataset",
    OUTPUT_DATA_BIAS_CONFIG: "clarify-config/data-bias",
    OUTPUT_MODEL_BIAS_CONFIG: "clarify-config/model-bias",
    OUTPUT_EXPLAINABILITY_CONFIG: "clarify-config/model-explainability",
    OUTPUT_MODEL_BIAS_MONITOR_CONFIG: _CLARIFY_RESULTS[MODEL_BIAS_BASELINE],
    OUTPUT_EXPLAINABILITY_MONITOR_CONFIG: _CLARIFY_RESULTS[MODEL_EXPLAINABILITY_BASELINE],
}


def _clarify_outputs(spec: PipelineSpec) -> list[dict[str, Any]]:
    return [
        s3_output(name, _artifact_uri(spec, _CLARIFY_OUTPUT_FOLDERS[name]), f"{CLARIFY_DIR}/{name}")
        for name in CLARIFY_OUTPUTS
    ]


def _clarify_steps(b: DefinitionBuilder, spec: PipelineSpec, clarify: ClarifySettings) -> None:
    """The three Clarify jobs: pre-training bias, post-training bias and SHAP, each with its own config."""
    jobs = (
        (
            DATA_BIAS_BASELINE,
            # The whole training split (label first, no header; the config names the columns).
            processing_output_uri(PREPROCESS, OUTPUT_TRAIN),
            OUTPUT_DATA_BIAS_CONFIG,
            False,
            "Pre-training bias metrics of the training split's labels across the facets (SageMaker Clarify).",
        ),
        (
            MODEL_BIAS_BASELINE,
            processing_output_uri(EVALUATE, OUTPUT_CLARIFY_DATASET),
            OUTPUT_MODEL_BIAS_CONFIG,
            True,
            "Post-training bias metrics of the model's predictions on a sample of the test split "
            "(SageMaker Clarify, shadow endpoint).",
        ),
        (
            MODEL_EXPLAINABILITY_BASELINE,
            processing_output_uri(EVALUATE, OUTPUT_CLARIFY_DATASET),
            OUTPUT_EXPLAINABILITY_CONFIG,
            True,
            "SHAP feature attributions of the model on a sample of the test split "
            "(SageMaker Clarify, shadow endpoint).",
        ),
    )
    if not spec.clarify_image_uri:
        raise ValueError("settings.clarify needs PipelineSpec.clarify_image_uri (see pipeline_spec_problems)")
    for name, dataset, config, uses_endpoint, description in jobs:
        job = _processing_job(
            spec,
            image_uri=spec.clarify_image_uri,
            # Clarify's container contract: input names and paths as the SageMaker SDK writes them.
            inputs=[
                s3_input("dataset", dataset, CLARIFY_DATA_DIR),
                s3_input("analysis_config", processing_output_uri(EVALUATE, config), CLARIFY_CONFIG_DIR),
            ],
            outputs=[s3_output(OUTPUT_ANALYSIS, _artifact_uri(spec, _CLARIFY_RESULTS[name]), OUTPUT_ROOT)],
            # The shadow endpoint is created, invoked and deleted through the SageMaker APIs.
            needs_network=uses_endpoint,
            instance_type=clarify.instance_type,
            instance_count=clarify.instance_count,
        )
        b.step(name, "Processing", job, description=description, retry_policies=(_SERVICE_RETRY, _JOB_RETRY))


def _mlflow_environment(spec: PipelineSpec) -> dict[str, Any] | None:
    """The environment that points a job's scripts at the MLflow tracking server, if any."""
    return {MLFLOW_TRACKING_ARN_ENV: spec.mlflow_tracking_arn} if spec.mlflow_tracking_arn else None


def _evaluate_step(b: DefinitionBuilder, spec: PipelineSpec) -> None:
    s = spec.settings
    outputs = [
        s3_output(OUTPUT_EVALUATION, _artifact_uri(spec, "evaluate"), f"{OUTPUT_ROOT}/{OUTPUT_EVALUATION}"),
        # Not under evaluate/: an S3Prefix input of that folder (Track) would download it too.
        s3_output(OUTPUT_BASELINE, _artifact_uri(spec, "baseline-dataset"), f"{OUTPUT_ROOT}/{OUTPUT_BASELINE}"),
    ]
    predictions: list[Any] = []
    if s.model_quality_baseline:
        predictions_dir = f"{OUTPUT_ROOT}/{OUTPUT_PREDICTIONS}"
        outputs.append(s3_output(OUTPUT_PREDICTIONS, _artifact_uri(spec, "test-predictions"), predictions_dir))
        predictions = ["--predictions-output-dir", predictions_dir]
    clarify: list[Any] = []
    if s.clarify is not None:
        outputs += _clarify_outputs(spec)
        clarify = _clarify_arguments(spec, s.clarify)
    job = _processing_job(
        spec,
        image_uri=spec.evaluation_image_uri or spec.training_image_uri,
        inputs=[
            s3_input("code", spec.evaluate_script.s3_uri, CODE_DIR),
            s3_input("model", get_step(TRAIN, "ModelArtifacts.S3ModelArtifacts"), MODEL_DIR),
            s3_input("test", processing_output_uri(PREPROCESS, OUTPUT_TEST), TEST_DIR),
            s3_input(OUTPUT_BASELINE, processing_output_uri(PREPROCESS, OUTPUT_BASELINE), BASELINE_INPUT_DIR),
        ],
        outputs=outputs,
        entrypoint=_script_entrypoint(spec.evaluate_script),
        arguments=[
            "--model-dir",
            MODEL_DIR,
            "--test-dir",
            TEST_DIR,
            "--output-dir",
            f"{OUTPUT_ROOT}/{OUTPUT_EVALUATION}",
            "--problem-type",
            ProblemType(s.problem_type).value,
            "--metric",
            s.metric_name,
            join(["--champion-metric=", get_parameter(CHAMPION_METRIC)]),
            "--baseline-dir",
            BASELINE_INPUT_DIR,
            "--baseline-output-dir",
            f"{OUTPUT_ROOT}/{OUTPUT_BASELINE}",
            *predictions,
            *clarify,
        ],
        environment=_mlflow_environment(spec),
        # Scripts given the tracking server's ARN may log to it; otherwise Evaluate reads and writes files only.
        needs_network=bool(spec.mlflow_tracking_arn),
    )
    b.step(
        EVALUATE,
        "Processing",
        job,
        description=(
            "Score the test split; write evaluation.json, the champion comparison"
            + (", the test split's labels with the predictions" if s.model_quality_baseline else "")
            + (", the Clarify configurations and test sample" if s.clarify is not None else "")
            + " and the data-quality baseline dataset (predictions on the training split, then its features)."
        ),
        property_files=(
            {
                "PropertyFileName": EVALUATION_PROPERTY_FILE,
                "OutputName": OUTPUT_EVALUATION,
                "FilePath": EVALUATION_FILE,
            },
            {
                "PropertyFileName": COMPARISON_PROPERTY_FILE,
                "OutputName": OUTPUT_EVALUATION,
                "FilePath": COMPARISON_FILE,
            },
        ),
        retry_policies=(_SERVICE_RETRY, _JOB_RETRY),
    )


def _track_step(b: DefinitionBuilder, spec: PipelineSpec, script: ScriptSource) -> None:
    if spec.mlflow_experiment_name:
        experiment: Any = f"--experiment-name={spec.mlflow_experiment_name}"
    else:
        # SageMaker Pipelines names the MlflowConfig experiment after the pipeline too.
        experiment = join(["--experiment-name=", get_execution("PipelineName")])
    arguments: list[Any] = [
        "--evaluation-dir",
        EVALUATION_INPUT_DIR,
        join(["--training-job-name=", get_step(TRAIN, "TrainingJobName")]),
        experiment,
        join(["--run-name=", get_execution("PipelineExecutionId")]),
        join(["--manifest-uri=", get_parameter(INPUT_MANIFEST_URI)]),
        join(["--manifest-sha256=", get_parameter(MANIFEST_SHA256)]),
        join(["--data-version=", get_parameter(DATA_VERSION)]),
        join(["--pipeline-execution-arn=", get_execution("PipelineExecutionArn")]),
        # One token: a value starting with '-' must not read as an option.
        f"--source-revision={spec.source_revision}",
    ]
    for requirement in spec.mlflow_client_requirements:
        arguments.append(f"--requirement={requirement}")
    environment = _mlflow_environment(spec) or {}
    if spec.package_index_url and spec.mlflow_client_requirements:
        environment[PIP_INDEX_URL_ENV] = spec.package_index_url
    job = _processing_job(
        spec,
        image_uri=spec.tracking_image_uri or spec.sklearn_image_uri,
        inputs=[
            s3_input("code", script.s3_uri, CODE_DIR),
            s3_input("evaluation", processing_output_uri(EVALUATE, OUTPUT_EVALUATION), EVALUATION_INPUT_DIR),
        ],
        outputs=[],
        entrypoint=_script_entrypoint(script),
        arguments=arguments,
        environment=environment,
    )
    # No DependsOn: the Gets of Evaluate's output and Train's job name order it, and nothing
    # depends on it, so registration does not wait for the tracking server.
    b.step(
        TRACK,
        "Processing",
        job,
        description="Log the execution to MLflow: hyperparameters, training and test metrics, lineage.",
        retry_policies=(_SERVICE_RETRY, _JOB_RETRY),
    )


def _register_arguments(spec: PipelineSpec) -> dict[str, Any]:
    s = spec.settings
    statistics = join([processing_output_uri(DATA_QUALITY_BASELINE, OUTPUT_MONITORING), STATISTICS_FILE], on="/")
    constraints = join([processing_output_uri(DATA_QUALITY_BASELINE, OUTPUT_MONITORING), CONSTRAINTS_FILE], on="/")
    evaluation = join([processing_output_uri(EVALUATE, OUTPUT_EVALUATION), EVALUATION_FILE], on="/")
    data_quality = {
        "Statistics": {"ContentType": "application/json", "S3Uri": statistics},
        "Constraints": {"ContentType": "application/json", "S3Uri": constraints},
    }
    # evaluation.json stays the model-quality statistics: the champion's metric is read there.
    model_quality: dict[str, Any] = {"Statistics": {"ContentType": "application/json", "S3Uri": evaluation}}
    drift_check: dict[str, Any] = {"ModelDataQuality": data_quality}
    if s.model_quality_baseline:
        quality_baseline = processing_output_uri(MODEL_QUALITY_BASELINE, OUTPUT_MONITORING)
        quality_constraints = {
            "ContentType": "application/json",
            "S3Uri": join([quality_baseline, CONSTRAINTS_FILE], on="/"),
        }
        model_quality["Constraints"] = quality_constraints
        drift_check["ModelQuality"] = {
            "Statistics": {
                "ContentType": "application/json",
                "S3Uri": join([quality_baseline, STATISTICS_FILE], on="/"),
            },
            "Constraints": quality_constraints,
        }
    model_metrics: dict[str, Any] = {"ModelQuality": model_quality, "ModelDataQuality": data_quality}
    if s.clarify is not None:
        _register_clarify(model_metrics, drift_check)
    container: dict[str, Any] = {
        "Image": spec.training_image_uri,
        "ModelDataUrl": get_step(TRAIN, "ModelArtifacts.S3ModelArtifacts"),
    }
    if spec.training_source is not None:
        container["Environment"] = _script_mode_environment(spec.training_source)
    inference: dict[str, Any] = {
        "Containers": [container],
        "SupportedContentTypes": ["text/csv"],
        "SupportedResponseMIMETypes": ["text/csv"],
    }
    if s.inference_instance_types:
        inference["SupportedRealtimeInferenceInstanceTypes"] = list(s.inference_instance_types)
        inference["SupportedTransformInstanceTypes"] = list(s.inference_instance_types)
    return {
        "ModelPackageGroupName": spec.model_package_group_name,
        # Free text such as "scheduled retrain (2024-...)" is not a valid metadata value, but
        # any printable text up to 1024 characters is a valid description.
        "ModelPackageDescription": get_parameter(TRIGGER_REASON),
        "InferenceSpecification": inference,
        "ModelApprovalStatus": get_parameter(MODEL_APPROVAL_STATUS),
        "ModelMetrics": model_metrics,
        "DriftCheckBaselines": drift_check,
        "MetadataProperties": {
            "GeneratedBy": get_execution("PipelineExecutionArn"),
            "CommitId": spec.source_revision,
        },
        "CustomerMetadataProperties": {
            INPUT_MANIFEST_URI: get_parameter(INPUT_MANIFEST_URI),
            MANIFEST_SHA256: get_parameter(MANIFEST_SHA256),
            DATA_VERSION: get_parameter(DATA_VERSION),
            METADATA_EXECUTION_ARN: get_execution("PipelineExecutionArn"),
            METADATA_SOURCE_REVISION: spec.source_revision,
            METADATA_EVALUATION_METRIC: f"{ProblemType(s.problem_type).metrics_key}.{s.metric_name}.value",
        },
        "SkipModelValidation": "None",
    }


def _register_clarify(model_metrics: dict[str, Any], drift_check: dict[str, Any]) -> None:
    """The Clarify reports and baselines, where ``Baselines.from_model_package`` reads them."""

    def file(step: str, output: str, name: str) -> dict[str, Any]:
        return {"ContentType": "application/json", "S3Uri": join([processing_output_uri(step, output), name], on="/")}

    data_bias = file(DATA_BIAS_BASELINE, OUTPUT_ANALYSIS, ANALYSIS_FILE)
    model_bias = file(MODEL_BIAS_BASELINE, OUTPUT_ANALYSIS, ANALYSIS_FILE)
    explainability = file(MODEL_EXPLAINABILITY_BASELINE, OUTPUT_ANALYSIS, ANALYSIS_FILE)
    model_metrics["Bias"] = {"PreTrainingReport": data_bias, "PostTrainingReport": model_bias}
    model_metrics["Explainability"] = {"Report": explainability}
    drift_check["Bias"] = {
        # The monitors' analysis configurations, which Evaluate uploads beside the jobs' results.
        "ConfigFile": file(EVALUATE, OUTPUT_MODEL_BIAS_MONITOR_CONFIG, ANALYSIS_CONFIG_FILE),
        "PreTrainingConstraints": data_bias,
        "PostTrainingConstraints": model_bias,
    }
    drift_check["Explainability"] = {
        "Constraints": explainability,
        "ConfigFile": file(EVALUATE, OUTPUT_EXPLAINABILITY_MONITOR_CONFIG, ANALYSIS_CONFIG_FILE),
    }


def _gate_step(b: DefinitionBuilder, spec: PipelineSpec) -> None:
    s = spec.settings
    metric = s.metric
    metric_path = f"{ProblemType(s.problem_type).metrics_key}.{metric.name}.value"
    value = json_get(EVALUATE, EVALUATION_PROPERTY_FILE, metric_path)
    improvement = json_get(EVALUATE, COMPARISON_PROPERTY_FILE, "improvement")
    threshold = float(s.metric_threshold)
    margin = float(s.champion_margin)
    meets = "GreaterThanOrEqualTo" if metric.higher_is_better else "LessThanOrEqualTo"
    register = b.step(
        REGISTER,
        "RegisterModel",
        _register_arguments(spec),
        description="Register the model with its metrics, drift baselines and data lineage.",
        retry_policies=(_SERVICE_RETRY,),
        top_level=False,
    )
    word = "at least" if metric.higher_is_better else "at most"
    fail = b.step(
        FAIL,
        "Fail",
        {
            "ErrorMessage": join(
                [
                    f"Model not registered: {metric.name} must be {word} {threshold:g} and beat the champion "
                    f"({CHAMPION_METRIC}=",
                    get_parameter(CHAMPION_METRIC),
                    f") by at least {margin:g}. See {EVALUATION_FILE} and {COMPARISON_FILE} under ",
                    # The artifact URI spelled out flat: one Std:Join, no function nested in another.
                    "s3://",
                    spec.bucket_name,
                    f"/{spec.artifacts_prefix}/" if spec.artifacts_prefix else "/",
                    get_execution("PipelineExecutionId"),
                    "/evaluate",
                ]
            )
        },
        top_level=False,
    )
    b.step(
        GATE,
        "Condition",
        {
            "Conditions": [
                condition(meets, value, threshold),
                condition_or(
                    condition("Equals", get_parameter(CHAMPION_METRIC), 0.0),
                    condition("GreaterThanOrEqualTo", improvement, margin),
                ),
            ],
            "IfSteps": [register],
            "ElseSteps": [fail],
        },
        description=f"{metric.name} {'>=' if metric.higher_is_better else '<='} {threshold:g} "
        f"and beats the champion by {margin:g}.",
    )


def build_pipeline_definition(spec: PipelineSpec) -> dict[str, Any]:
    """The definition of the default training pipeline (see the module docstring).

    ``spec`` is not validated here; call :func:`pipeline_spec_problems` first (the construct
    does, and raises ``ConfigurationError``). The result is a fresh dict each call.
    """
    s = spec.settings
    b = DefinitionBuilder()
    b.parameter(INPUT_MANIFEST_URI, "String", spec.default_input_manifest_uri)
    b.parameter(MANIFEST_SHA256, "String", UNVERIFIED_SHA256)
    b.parameter(DATA_VERSION, "String", "unknown")
    b.parameter(TRIGGER_REASON, "String", "manual")
    b.parameter(PROCESSING_INSTANCE_TYPE, "String", s.processing_instance_type)
    b.parameter(TRAINING_INSTANCE_TYPE, "String", s.training_instance_type)
    b.parameter(TRAINING_INSTANCE_COUNT, "Integer", s.training_instance_count)
    b.parameter(MODEL_APPROVAL_STATUS, "String", spec.default_approval_status)
    b.parameter(CHAMPION_METRIC, "Float", 0.0)
    b.parameter(BASELINE_CONSTRAINTS_URI, "String", "")
    _preprocess_step(b, spec)
    _baseline_step(b, spec)
    _train_step(b, spec)
    if s.clarify is not None:
        _clarify_model_step(b, spec)
    _evaluate_step(b, spec)
    if s.model_quality_baseline:
        _model_quality_baseline_step(b, spec)
    if s.clarify is not None:
        _clarify_steps(b, spec, s.clarify)
    _gate_step(b, spec)
    if spec.mlflow_tracking_arn and spec.tracking_script is not None:
        _track_step(b, spec, spec.tracking_script)
    definition = b.build(experiments=spec.experiments)
    if spec.mlflow_tracking_arn:
        # The same member the SageMaker Python SDK writes for Pipeline(mlflow_config=...).
        definition["MlflowConfig"] = {
            "MlflowResourceArn": spec.mlflow_tracking_arn,
            "MlflowExperimentName": spec.mlflow_experiment_name,
        }
    return definition
