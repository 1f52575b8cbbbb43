# mypy: disable-error-code="import-untyped"
# (the SageMaker Python SDK ships no type information)
"""The library's definition of the default pipeline equals the SageMaker Python SDK's, built offline.

The same pipeline is written twice: once with the library's standard-library builder
(``pipeline_definition.build_pipeline_definition``), once with the SageMaker Python SDK v3
(``sagemaker.mlops.workflow``: ProcessingStep, TrainingStep, ConditionStep, ModelStep,
FailStep), with the same steps, names, parameters, arguments, property files, conditions and
retry policies, and the same placeholders for the role, bucket, script URIs, images, KMS key,
model package group and MLflow tracking server. The parsed JSON of both is compared.

Nothing is normalized: both are parsed from JSON (so key order and whitespace, the only
arbitrary parts, do not count), and every value is compared as it is. What the SDK writes and
the library does not is listed in ``SDK_ONLY`` with the reason; each such member must be in
the SDK's output with exactly the listed value, and absent from the library's.

While the SDK builds, no AWS call and no network connection can happen, and the test proves
none was attempted:

- a botocore ``before-send`` handler, registered on the boto3 session before the
  ``PipelineSession`` makes its clients, records and refuses every request;
- ``cdk_mlops.sdk.offline()`` records and refuses every socket connection, DNS lookup and
  botocore request (a client made from another session, e.g. at import time) for the whole
  build, imports included, and waits for telemetry threads before it ends;
- the region is set before ``sagemaker``'s pipeline modules are imported (``sagemaker.mlops``
  makes a boto3 client at import); ``SAGEMAKER_VALIDATE_ROLE=false`` with an ARN-shaped role
  (no IAM or STS role resolution); the ``PipelineSession`` has an explicit region and default
  bucket (no bucket discovery or creation) and telemetry opted out; script URIs are explicit
  ``s3://`` URIs (no uploads); credentials are static dummies (no credential lookups).
"""

from __future__ import annotations

import copy
import json
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import pytest

from cdk_mlops import image_uris, sdk
from cdk_mlops import pipeline_definition as pd

# Importing the SageMaker SDK and building with it take tens of seconds: not in the edit-test loop.
pytestmark = pytest.mark.slow

REGION = "eu-west-1"
ROLE = sdk.ROLE_ARN_PLACEHOLDER
BUCKET = sdk.BUCKET_PLACEHOLDER
KMS_KEY = sdk.KMS_KEY_PLACEHOLDER
GROUP = sdk.MODEL_PACKAGE_GROUP_PLACEHOLDER
MLFLOW_ARN = sdk.MLFLOW_TRACKING_ARN_PLACEHOLDER
PREPROCESS_URI = "s3://cdk-mlops-placeholder-assets/0123abcd.py"
EVALUATE_URI = "s3://cdk-mlops-placeholder-assets/4567ef01.py"
PREFIX = "artifacts/churn-training"
REVISION = "abc1234"
SKLEARN = image_uris.image_uri("sklearn", REGION)
XGBOOST = image_uris.image_uri("xgboost", REGION)
MONITOR = image_uris.image_uri("model-monitor", REGION)

# Not compared here: the SageMaker Clarify steps (TrainingSettings.clarify, off by default). The
# SDK's own way to write them, ClarifyCheckStep, writes a ClarifyCheck step (not a Processing step)
# and uploads its analysis_config.json to S3 while the definition is built, which the offline
# build forbids; and our configurations are written at run time by Evaluate, because they name
# the model the ClarifyModel step creates in each execution. Restating our Processing and Model
# steps with the SDK's Processor and ModelStep would compare our JSON with a transcription of
# itself. What is checked instead (tests/unit/test_pipeline_definition_clarify.py and
# tests/ml/test_scripts.py): every Clarify step is a CreateModel/CreateProcessingJob request
# botocore's model accepts, the job configurations pass the SDK's ANALYSIS_CONFIG_SCHEMA_V1_0, and
# the monitor configurations hold what the SDK's ModelBiasMonitor/ModelExplainabilityMonitor upload.

# Members the SDK writes that the library leaves out, each with the value the SDK writes.
# Every one states a default or an empty value explicitly; none changes what SageMaker does.
SDK_ONLY: dict[str, tuple[Any, str]] = {
    "Metadata": ({}, "Pipeline.definition() always writes the (empty) pipeline metadata"),
    "Steps[Train].Arguments.OutputDataConfig.CompressionType": (
        "GZIP",
        "ModelTrainer writes CreateTrainingJob's default compression explicitly",
    ),
    "Steps[Gate].Arguments.IfSteps[Register].Arguments.InferenceSpecification.Containers[0].Environment": (
        {},
        "ModelBuilder writes an empty container environment",
    ),
    "Steps[Gate].Arguments.IfSteps[Register].Arguments.ModelMetrics.Bias": (
        {},
        "ModelMetrics writes an empty bias report when none is given",
    ),
    "Steps[Gate].Arguments.IfSteps[Register].Arguments.ModelMetrics.Explainability": (
        {},
        "ModelMetrics writes an empty explainability report when none is given",
    ),
}
# Without MLflow the SDK also writes the pipeline's MLflow configuration as null.
SDK_ONLY_WITHOUT_MLFLOW: dict[str, tuple[Any, str]] = {
    "MlflowConfig": (None, "Pipeline.definition() writes MlflowConfig: null when no MLflow is configured"),
}


@dataclass(frozen=True)
class SdkBuild:
    definitions: dict[str, dict[str, Any]]  # "default" and "mlflow"
    refused_requests: list[str]  # seen by the before-send handler
    refused_connections: list[str]  # seen by cdk_mlops.sdk.offline()
    telemetry_threads: list[str]


def ours(*, mlflow: bool) -> dict[str, Any]:
    spec = pd.PipelineSpec(
        role_arn=ROLE,
        bucket_name=BUCKET,
        model_package_group_name=GROUP,
        sklearn_image_uri=SKLEARN,
        training_image_uri=XGBOOST,
        model_monitor_image_uri=MONITOR,
        preprocess_script=pd.ScriptSource.from_uri(PREPROCESS_URI),
        evaluate_script=pd.ScriptSource.from_uri(EVALUATE_URI),
        artifacts_prefix=PREFIX,
        kms_key_arn=KMS_KEY,
        source_revision=REVISION,
        mlflow_tracking_arn=MLFLOW_ARN if mlflow else None,
        mlflow_experiment_name="churn-training" if mlflow else None,
    )
    assert pd.pipeline_spec_problems(spec) == []
    return pd.build_pipeline_definition(spec)


def sdk_pipeline(session: Any, *, mlflow: bool) -> Any:
    """The default pipeline, written with the SageMaker Python SDK v3 (imports inside: see the fixture)."""
    from sagemaker.core.drift_check_baselines import DriftCheckBaselines
    from sagemaker.core.metadata_properties import MetadataProperties
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import (
        Channel,
        DataSource,
        MlflowConfig,
        ProcessingInput,
        ProcessingOutput,
        ProcessingS3Input,
        ProcessingS3Output,
        S3DataSource,
    )
    from sagemaker.core.workflow.conditions import ConditionEquals, ConditionGreaterThanOrEqualTo, ConditionOr
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.retry import (
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
        StepExceptionTypeEnum,
        StepRetryPolicy,
    )
    from sagemaker.mlops.workflow.steps import ProcessingStep, TrainingStep
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train.configs import Compute, Networking, OutputDataConfig, StoppingCondition
    from sagemaker.train.model_trainer import ModelTrainer

    manifest = ParameterString("InputManifestUri", default_value="")
    sha256 = ParameterString("ManifestSha256", default_value="unverified")
    data_version = ParameterString("DataVersion", default_value="unknown")
    reason = ParameterString("TriggerReason", default_value="manual")
    processing_type = ParameterString("ProcessingInstanceType", default_value="ml.m5.large")
    training_type = ParameterString("TrainingInstanceType", default_value="ml.m5.xlarge")
    training_count = ParameterInteger("TrainingInstanceCount", default_value=1)
    approval = ParameterString("ModelApprovalStatus", default_value="PendingManualApproval")
    champion = ParameterFloat("ChampionMetric", default_value=0.0)
    baseline = ParameterString("BaselineConstraintsUri", default_value="")
    execution_id = ExecutionVariables.PIPELINE_EXECUTION_ID
    environment = {"MLFLOW_TRACKING_ARN": MLFLOW_ARN} if mlflow else None
    root = "/opt/ml/processing"

    def artifact(*parts: str) -> Any:
        return Join(on="/", values=["s3:/", BUCKET, PREFIX, execution_id, *parts])

    def s3_input(name: str, uri: Any, path: str) -> Any:
        source = ProcessingS3Input(
            s3_uri=uri,
            local_path=path,
            s3_data_type="S3Prefix",
            s3_input_mode="File",
            s3_data_distribution_type="FullyReplicated",
            s3_compression_type="None",
        )
        return ProcessingInput(input_name=name, app_managed=False, s3_input=source)

    def s3_output(name: str, uri: Any, path: str) -> Any:
        target = ProcessingS3Output(s3_uri=uri, local_path=path, s3_upload_mode="EndOfJob")
        return ProcessingOutput(output_name=name, app_managed=False, s3_output=target)

    def processor(image: str, entrypoint: list[str] | None = None, env: dict[str, Any] | None = None) -> Any:
        return Processor(
            role=ROLE,
            image_uri=image,
            instance_count=1,
            instance_type=processing_type,
            entrypoint=entrypoint,
            volume_size_in_gb=30,
            volume_kms_key=KMS_KEY,
            output_kms_key=KMS_KEY,
            max_runtime_in_seconds=3600,
            env=env,
            sagemaker_session=session,
        )

    def output_uri(step: Any, name: str) -> Any:
        return step.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri

    service_retry = StepRetryPolicy(
        exception_types=[StepExceptionTypeEnum.SERVICE_FAULT, StepExceptionTypeEnum.THROTTLING],
        interval_seconds=5,
        backoff_rate=2.0,
        max_attempts=5,
    )
    job_retry = SageMakerJobStepRetryPolicy(
        exception_types=[
            SageMakerJobExceptionTypeEnum.INTERNAL_ERROR,
            SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
            SageMakerJobExceptionTypeEnum.RESOURCE_LIMIT,
        ],
        interval_seconds=60,
        backoff_rate=2.0,
        max_attempts=3,
    )

    preprocess = ProcessingStep(
        name="Preprocess",
        description="Fetch the dataset snapshot, validate it, split it 70/15/15 into label-first CSVs.",
        retry_policies=[service_retry, job_retry],
        step_args=processor(SKLEARN, ["python3", f"{root}/input/code/0123abcd.py"]).run(
            inputs=[
                s3_input("code", PREPROCESS_URI, f"{root}/input/code"),
                s3_input("manifest", manifest, f"{root}/input/manifest"),
            ],
            outputs=[
                s3_output(name, artifact("preprocess", name), f"{root}/output/{name}")
                for name in ("train", "validation", "test", "baseline", "report")
            ],
            arguments=[
                *("--manifest-dir", f"{root}/input/manifest", "--output-dir", f"{root}/output"),
                *("--problem-type", "binary_classification", "--seed", "42"),
                *("--train-fraction", "0.7", "--validation-fraction", "0.15", "--on-violation", "fail"),
                *("--baseline-rows", "1000000"),
                Join(on="", values=["--manifest-uri=", manifest]),
                Join(on="", values=["--manifest-sha256=", sha256]),
                Join(on="", values=["--baseline-constraints-uri=", baseline]),
                Join(on="", values=["--data-version=", data_version]),
            ],
        ),
    )
    trainer = ModelTrainer(
        training_image=XGBOOST,
        role=ROLE,
        sagemaker_session=session,
        compute=Compute(
            instance_type=training_type, instance_count=training_count, volume_size_in_gb=30, volume_kms_key_id=KMS_KEY
        ),
        networking=Networking(enable_network_isolation=True, enable_inter_container_traffic_encryption=True),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=4 * 3600),
        output_data_config=OutputDataConfig(s3_output_path=artifact("train"), kms_key_id=KMS_KEY),
        hyperparameters={
            "objective": "binary:logistic",
            "eval_metric": "auc",
            "num_round": "200",
            "early_stopping_rounds": "10",
            "max_depth": "5",
            "eta": "0.2",
            "subsample": "0.8",
        },
        environment=environment or {},
        training_input_mode="File",
    )
    channels = [
        Channel(
            channel_name=name,
            data_source=DataSource(
                s3_data_source=S3DataSource(
                    s3_data_type="S3Prefix",
                    s3_uri=output_uri(preprocess, name),
                    s3_data_distribution_type="ShardedByS3Key" if name == "train" else "FullyReplicated",
                )
            ),
            content_type="text/csv",
            compression_type="None",
        )
        for name in ("train", "validation")
    ]
    train = TrainingStep(
        name="Train",
        description="Train on the train split, early-stopping on the validation split.",
        retry_policies=[service_retry, job_retry],
        step_args=trainer.train(input_data_config=channels),
    )
    model_data = train.properties.ModelArtifacts.S3ModelArtifacts
    evaluation_report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")
    comparison = PropertyFile(name="ChampionComparison", output_name="evaluation", path="comparison.json")
    evaluate = ProcessingStep(
        name="Evaluate",
        description="Score the test split; write evaluation.json, the champion comparison, the test split's "
        "labels with the predictions and the data-quality baseline dataset (predictions on the training split, "
        "then its features).",
        property_files=[evaluation_report, comparison],
        retry_policies=[service_retry, job_retry],
        step_args=processor(XGBOOST, ["python3", f"{root}/input/code/4567ef01.py"], env=environment).run(
            inputs=[
                s3_input("code", EVALUATE_URI, f"{root}/input/code"),
                s3_input("model", model_data, f"{root}/input/model"),
                s3_input("test", output_uri(preprocess, "test"), f"{root}/input/test"),
                s3_input("baseline", output_uri(preprocess, "baseline"), f"{root}/input/baseline"),
            ],
            outputs=[
                s3_output("evaluation", artifact("evaluate"), f"{root}/output/evaluation"),
                s3_output("baseline", artifact("baseline-dataset"), f"{root}/output/baseline"),
                s3_output("predictions", artifact("test-predictions"), f"{root}/output/predictions"),
            ],
            arguments=[
                *("--model-dir", f"{root}/input/model", "--test-dir", f"{root}/input/test"),
                *("--output-dir", f"{root}/output/evaluation", "--problem-type", "binary_classification"),
                *("--metric", "auc"),
                Join(on="", values=["--champion-metric=", champion]),
                *("--baseline-dir", f"{root}/input/baseline", "--baseline-output-dir", f"{root}/output/baseline"),
                *("--predictions-output-dir", f"{root}/output/predictions"),
            ],
        ),
    )
    analyzer = processor(
        MONITOR,
        env={
            "dataset_format": '{"csv": {"header": true, "output_columns_position": "START"}}',
            "dataset_source": f"{root}/input/baseline_dataset_input",
            "output_path": f"{root}/output",
            "publish_cloudwatch_metrics": "Disabled",
        },
    )
    # The model's predictions on the training split, then its features: what the endpoint returns and receives.
    data_quality = ProcessingStep(
        name="DataQualityBaseline",
        description="Data-quality statistics and constraints of the model's predictions on the training split "
        "and its features (Model Monitor analyzer).",
        retry_policies=[service_retry, job_retry],
        step_args=analyzer.run(
            inputs=[
                s3_input(
                    "baseline_dataset_input", output_uri(evaluate, "baseline"), f"{root}/input/baseline_dataset_input"
                )
            ],
            outputs=[s3_output("monitoring_output", artifact("data-quality-baseline"), f"{root}/output")],
        ),
    )

    # The model's predictions on the test split with its labels, by column name.
    quality_analyzer = processor(
        MONITOR,
        env={
            "analysis_type": "MODEL_QUALITY",
            "problem_type": "BinaryClassification",
            "dataset_format": '{"csv": {"header": true, "output_columns_position": "START"}}',
            "dataset_source": f"{root}/input/baseline_dataset_input",
            "output_path": f"{root}/output",
            "publish_cloudwatch_metrics": "Disabled",
            "ground_truth_attribute": "label",
            "inference_attribute": "prediction",
            "probability_attribute": "probability",
            "probability_threshold_attribute": "0.5",
        },
    )
    model_quality = ProcessingStep(
        name="ModelQualityBaseline",
        description="Model-quality statistics and constraints of the model's predictions on the test split "
        "against its labels (Model Monitor analyzer).",
        retry_policies=[service_retry, job_retry],
        step_args=quality_analyzer.run(
            inputs=[
                s3_input(
                    "baseline_dataset_input",
                    output_uri(evaluate, "predictions"),
                    f"{root}/input/baseline_dataset_input",
                )
            ],
            outputs=[s3_output("monitoring_output", artifact("model-quality-baseline"), f"{root}/output")],
        ),
    )

    def report(uri: Any) -> Any:
        return MetricsSource(content_type="application/json", s3_uri=uri)

    baseline_uri = output_uri(data_quality, "monitoring_output")
    statistics = report(Join(on="/", values=[baseline_uri, "statistics.json"]))
    constraints = report(Join(on="/", values=[baseline_uri, "constraints.json"]))
    quality_uri = output_uri(model_quality, "monitoring_output")
    quality_statistics = report(Join(on="/", values=[quality_uri, "statistics.json"]))
    quality_constraints = report(Join(on="/", values=[quality_uri, "constraints.json"]))
    model = ModelBuilder(
        image_uri=XGBOOST, s3_model_data_url=model_data, role_arn=ROLE, sagemaker_session=session, dependencies=None
    )
    register = ModelStep(
        name="Register",
        description="Register the model with its metrics, drift baselines and data lineage.",
        retry_policies=[service_retry],
        step_args=model.register(
            model_package_group_name=GROUP,
            content_types=["text/csv"],
            response_types=["text/csv"],
            inference_instances=["ml.m5.large"],
            transform_instances=["ml.m5.large"],
            approval_status=approval,
            description=reason,
            model_metrics=ModelMetrics(
                model_statistics=report(Join(on="/", values=[output_uri(evaluate, "evaluation"), "evaluation.json"])),
                model_constraints=quality_constraints,
                model_data_statistics=statistics,
                model_data_constraints=constraints,
            ),
            drift_check_baselines=DriftCheckBaselines(
                model_statistics=quality_statistics,
                model_constraints=quality_constraints,
                model_data_statistics=statistics,
                model_data_constraints=constraints,
            ),
            metadata_properties=MetadataProperties(
                commit_id=REVISION, generated_by=ExecutionVariables.PIPELINE_EXECUTION_ARN
            ),
            customer_metadata_properties={
                "InputManifestUri": manifest,
                "ManifestSha256": sha256,
                "DataVersion": data_version,
                "PipelineExecutionArn": ExecutionVariables.PIPELINE_EXECUTION_ARN,
                "SourceRevision": REVISION,
                "EvaluationMetric": "binary_classification_metrics.auc.value",
            },
            skip_model_validation="None",
        ),
    )
    fail = FailStep(
        name="Fail",
        error_message=Join(
            on="",
            values=[
                "Model not registered: auc must be at least 0.7 and beat the champion (ChampionMetric=",
                champion,
                ") by at least 0. See evaluation.json and comparison.json under ",
                "s3://",
                BUCKET,
                f"/{PREFIX}/",
                execution_id,
                "/evaluate",
            ],
        ),
    )
    auc = JsonGet(
        step_name="Evaluate", property_file=evaluation_report, json_path="binary_classification_metrics.auc.value"
    )
    improvement = JsonGet(step_name="Evaluate", property_file=comparison, json_path="improvement")
    gate = ConditionStep(
        name="Gate",
        description="auc >= 0.7 and beats the champion by 0.",
        conditions=[
            ConditionGreaterThanOrEqualTo(left=auc, right=0.7),
            ConditionOr(
                conditions=[
                    ConditionEquals(left=champion, right=0.0),
                    ConditionGreaterThanOrEqualTo(left=improvement, right=0.0),
                ]
            ),
        ],
        if_steps=[register],
        else_steps=[fail],
    )
    return Pipeline(
        name="churn-training",
        parameters=[
            *(manifest, sha256, data_version, reason, processing_type, training_type, training_count),
            *(approval, champion, baseline),
        ],
        steps=[preprocess, data_quality, train, evaluate, model_quality, gate],
        mlflow_config=MlflowConfig(mlflow_resource_arn=MLFLOW_ARN, mlflow_experiment_name="churn-training")
        if mlflow
        else None,
        sagemaker_session=session,
    )


@pytest.fixture(scope="module")
def built(sdk_config_schema_checked_once: None) -> SdkBuild:
    refused_requests: list[str] = []

    def refuse(event_name: str = "", **_: Any) -> None:
        refused_requests.append(event_name)
        raise AssertionError(f"the SageMaker SDK tried to send {event_name}")

    with pytest.MonkeyPatch.context() as mp:
        # Before sagemaker.mlops is imported: it makes a boto3 client at import time.
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        mp.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        mp.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        before = {t.ident for t in threading.enumerate()}
        with sdk.offline() as refused_connections, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Running within a PipelineSession, there will be No Wait..."
            import boto3
            from sagemaker.core.workflow.pipeline_context import PipelineSession

            boto_session = boto3.Session(
                region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
            )
            # Before the PipelineSession exists, so that every client it makes carries the handler.
            boto_session.events.register("before-send", refuse)
            definitions = {}
            for variant in ("default", "mlflow"):
                session = PipelineSession(
                    boto_session=boto_session,
                    default_bucket=BUCKET,
                    sagemaker_config={
                        "SchemaVersion": "1.0",
                        "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
                    },
                )
                pipeline = sdk_pipeline(session, mlflow=variant == "mlflow")
                definitions[variant] = json.loads(pipeline.definition())
        telemetry = [t.name for t in threading.enumerate() if t.ident not in before and "telemetry" in t.name]
    return SdkBuild(definitions, refused_requests, refused_connections, telemetry)


def test_the_sdk_made_no_aws_call_and_no_connection(built):
    assert built.refused_requests == []
    assert built.refused_connections == []
    assert built.telemetry_threads == []


def _find(items: list[Any], name: str) -> dict[str, Any]:
    (found,) = [item for item in items if isinstance(item, dict) and item.get("Name") == name]
    return found


def _parent_and_key(definition: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """Resolve ``Steps[Train].Arguments.X`` (``[Name]`` selects a step by name, ``[0]`` by index)."""
    node: Any = definition
    parts = path.replace("[", ".[").split(".")
    for part in parts[:-1]:
        if part.startswith("["):
            selector = part[1:-1]
            node = node[int(selector)] if selector.isdigit() else _find(node, selector)
        else:
            node = node[part]
    return node, parts[-1]


def _without_sdk_only(definition: dict[str, Any], members: dict[str, tuple[Any, str]]) -> dict[str, Any]:
    """The SDK's definition without ``members``, each checked to hold exactly its listed value."""
    trimmed = copy.deepcopy(definition)
    for path, (value, _reason) in members.items():
        parent, key = _parent_and_key(trimmed, path)
        assert key in parent, f"the SDK no longer writes {path}; remove it from SDK_ONLY"
        assert parent.pop(key) == value, path
    return trimmed


@pytest.mark.parametrize("variant", ["default", "mlflow"])
def test_the_builder_writes_what_the_sdk_writes(built, variant):
    mlflow = variant == "mlflow"
    library = ours(mlflow=mlflow)
    members = SDK_ONLY if mlflow else {**SDK_ONLY, **SDK_ONLY_WITHOUT_MLFLOW}
    for path in members:
        parent, key = _parent_and_key(library, path)
        assert key not in parent, f"the library now writes {path}; remove it from SDK_ONLY"
    assert library == _without_sdk_only(built.definitions[variant], members)


def test_the_sdk_definition_passes_the_library_validator(built):
    for definition in built.definitions.values():
        assert pd.validate_definition(definition) == []


def test_mlflow_reaches_the_pipeline_and_the_training_and_evaluation_jobs(built):
    definition = built.definitions["mlflow"]
    assert definition["MlflowConfig"] == {"MlflowResourceArn": MLFLOW_ARN, "MlflowExperimentName": "churn-training"}
    for step in ("Train", "Evaluate"):
        assert _find(definition["Steps"], step)["Arguments"]["Environment"] == {"MLFLOW_TRACKING_ARN": MLFLOW_ARN}
