"""The training pipeline definition: its structure step by step, its validator and its settings checks."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.validate import ParamValidator
from moto import mock_aws

from cdk_mlops import pipeline_definition as pd
from cdk_mlops.pipeline_definition import (
    OnViolation,
    PipelineSpec,
    ProblemType,
    ScriptSource,
    TrainingSettings,
    build_pipeline_definition,
    pipeline_spec_problems,
    training_settings_problems,
    validate_definition,
)

ROLE = "arn:aws:iam::123456789012:role/sagemaker-execution"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SKLEARN = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
XGBOOST = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"
MONITOR = "468650794304.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-model-monitor-analyzer"


def make_spec(**overrides: Any) -> PipelineSpec:
    values: dict[str, Any] = {
        "role_arn": ROLE,
        "bucket_name": "artifacts-bucket",
        "model_package_group_name": "churn-models",
        "sklearn_image_uri": SKLEARN,
        "training_image_uri": XGBOOST,
        "model_monitor_image_uri": MONITOR,
        "preprocess_script": ScriptSource.from_uri("s3://assets-bucket/1a2b3c.py"),
        "evaluate_script": ScriptSource.from_uri("s3://assets-bucket/4d5e6f.py"),
        "kms_key_arn": KEY,
        "source_revision": "3f2a9c1",
    }
    values.update(overrides)
    return PipelineSpec(**values)


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return build_pipeline_definition(make_spec())


def steps_by_name(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every step, branch steps of conditions included, by name."""
    found: dict[str, dict[str, Any]] = {}

    def collect(steps: list[dict[str, Any]]) -> None:
        for step in steps:
            found[step["Name"]] = step
            if step["Type"] == "Condition":
                collect(step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"])

    collect(definition["Steps"])
    return found


def args_of(definition: dict[str, Any], name: str) -> dict[str, Any]:
    arguments: dict[str, Any] = steps_by_name(definition)[name]["Arguments"]
    return arguments


def artifact_uri(*parts: str) -> dict[str, Any]:
    values = ["s3:/", "artifacts-bucket", "pipeline", {"Get": "Execution.PipelineExecutionId"}, *parts]
    return {"Std:Join": {"On": "/", "Values": values}}


def output_uri(step: str, output: str) -> dict[str, str]:
    return {"Get": f"Steps.{step}.ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri"}


def walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for child in value.values():
            yield from walk(child)
    elif isinstance(value, list):
        for child in value:
            yield from walk(child)


# ------------------------------------------------------------------------------------------------
# The default definition
# ------------------------------------------------------------------------------------------------


def test_default_definition_is_valid_and_json_serializable(definition):
    # THEN
    assert validate_definition(definition) == []
    assert json.loads(json.dumps(definition)) == definition
    assert definition["Version"] == "2020-12-01"


def test_executions_are_recorded_as_experiment_runs_where_experiments_exist(definition):
    # THEN by default: the experiment is the pipeline, the trial the execution
    assert definition["PipelineExperimentConfig"] == {
        "ExperimentName": {"Get": "Execution.PipelineName"},
        "TrialName": {"Get": "Execution.PipelineExecutionId"},
    }


def test_no_experiment_config_where_sagemaker_experiments_is_not_available():
    # WHEN built for a region without SageMaker Experiments, where executions with one fail
    definition = build_pipeline_definition(make_spec(experiments=False))
    # THEN
    assert "PipelineExperimentConfig" not in definition
    assert validate_definition(definition) == []


def test_parameters_are_declared_with_their_types_and_defaults(definition):
    # THEN
    declared = {p["Name"]: (p["Type"], p.get("DefaultValue")) for p in definition["Parameters"]}
    assert list(declared) == list(pd.PARAMETER_NAMES)
    assert declared == {
        "InputManifestUri": ("String", ""),
        "ManifestSha256": ("String", "unverified"),
        "DataVersion": ("String", "unknown"),
        "TriggerReason": ("String", "manual"),
        "ProcessingInstanceType": ("String", "ml.m5.large"),
        "TrainingInstanceType": ("String", "ml.m5.xlarge"),
        "TrainingInstanceCount": ("Integer", 1),
        "ModelApprovalStatus": ("String", "PendingManualApproval"),
        "ChampionMetric": ("Float", 0.0),
        "BaselineConstraintsUri": ("String", ""),
    }


def test_trigger_parameter_names_match_the_retrain_trigger():
    # GIVEN the names the retrain trigger starts executions with
    core = pytest.importorskip("cdk_mlops.lambdas.retrain_trigger.core")
    # THEN the pipeline declares exactly those
    assert set(core.PIPELINE_PARAMETER_NAMES) <= set(pd.PARAMETER_NAMES)


def test_steps_run_in_order_with_register_and_fail_as_gate_branches(definition):
    # THEN
    assert [s["Name"] for s in definition["Steps"]] == [
        "Preprocess",
        "DataQualityBaseline",
        "Train",
        "Evaluate",
        "ModelQualityBaseline",
        "Gate",
    ]
    assert [s["Type"] for s in definition["Steps"]] == [
        "Processing",
        "Processing",
        "Training",
        "Processing",
        "Processing",
        "Condition",
    ]
    gate = args_of(definition, "Gate")
    assert [(s["Name"], s["Type"]) for s in gate["IfSteps"]] == [("Register", "RegisterModel")]
    assert [(s["Name"], s["Type"]) for s in gate["ElseSteps"]] == [("Fail", "Fail")]
    assert set(steps_by_name(definition)) == set(pd.STEP_NAMES)


def test_preprocess_reads_the_manifest_parameter_and_writes_each_split_under_the_execution(definition):
    # WHEN
    args = args_of(definition, "Preprocess")
    # THEN
    assert args["RoleArn"] == ROLE
    assert args["AppSpecification"]["ImageUri"] == SKLEARN
    assert args["AppSpecification"]["ContainerEntrypoint"] == ["python3", "/opt/ml/processing/input/code/1a2b3c.py"]
    inputs = {i["InputName"]: i["S3Input"] for i in args["ProcessingInputs"]}
    assert inputs["code"]["S3Uri"] == "s3://assets-bucket/1a2b3c.py"
    assert inputs["manifest"]["S3Uri"] == {"Get": "Parameters.InputManifestUri"}
    assert inputs["manifest"]["LocalPath"] == "/opt/ml/processing/input/manifest"
    outputs = {o["OutputName"]: o["S3Output"] for o in args["ProcessingOutputConfig"]["Outputs"]}
    assert set(outputs) == {"train", "validation", "test", "baseline", "report"}
    assert outputs["train"] == {
        "S3Uri": artifact_uri("preprocess", "train"),
        "LocalPath": "/opt/ml/processing/output/train",
        "S3UploadMode": "EndOfJob",
    }
    container_args = args["AppSpecification"]["ContainerArguments"]
    assert {"Std:Join": {"On": "", "Values": ["--manifest-sha256=", {"Get": "Parameters.ManifestSha256"}]}} in (
        container_args
    )
    assert {
        "Std:Join": {"On": "", "Values": ["--baseline-constraints-uri=", {"Get": "Parameters.BaselineConstraintsUri"}]}
    } in container_args
    flags = [a for a in container_args if isinstance(a, str)]
    assert flags[flags.index("--on-violation") + 1] == "fail"
    assert flags[flags.index("--train-fraction") + 1] == "0.7"
    assert flags[flags.index("--validation-fraction") + 1] == "0.15"


def test_no_job_reads_another_jobs_output_by_accident(definition):
    # GIVEN every output prefix of the execution (S3 prefixes match as strings: 'evaluate' would
    # also match 'evaluate-baseline/...', and an S3Prefix input would download both)
    prefixes = [
        json.dumps(o["S3Output"]["S3Uri"]["Std:Join"]["Values"][3:])
        for step in steps_by_name(definition).values()
        for o in step["Arguments"].get("ProcessingOutputConfig", {}).get("Outputs", [])
    ]
    prefixes.append(
        json.dumps(args_of(definition, "Train")["OutputDataConfig"]["S3OutputPath"]["Std:Join"]["Values"][3:])
    )
    paths = ["/".join(str(v) for v in json.loads(p)) for p in prefixes]
    # THEN none is a string prefix of another
    assert len(set(paths)) == len(paths)
    assert not [(a, b) for a in paths for b in paths if a != b and b.startswith(a)]


def test_every_job_input_and_its_data_type_is_listed(definition):
    # WHEN
    inputs = [(i.step, i.name, i.data_type) for i in pd.job_s3_inputs(definition)]
    # THEN every processing input and training channel, each read as an S3 prefix
    assert inputs == [
        ("Preprocess", "code", "S3Prefix"),
        ("Preprocess", "manifest", "S3Prefix"),
        ("DataQualityBaseline", "baseline_dataset_input", "S3Prefix"),
        ("Train", "train", "S3Prefix"),
        ("Train", "validation", "S3Prefix"),
        ("Evaluate", "code", "S3Prefix"),
        ("Evaluate", "model", "S3Prefix"),
        ("Evaluate", "test", "S3Prefix"),
        ("Evaluate", "baseline", "S3Prefix"),
        ("ModelQualityBaseline", "baseline_dataset_input", "S3Prefix"),
    ]
    assert pd.job_s3_inputs(definition)[0].s3_uri == "s3://assets-bucket/1a2b3c.py"
    # AND spot training's checkpoints, which SageMaker copies down when a job resumes
    spot = TrainingSettings(use_spot_instances=True, max_wait_seconds=30000, checkpoint_s3_uri="s3://b/checkpoints")
    checkpoints = pd.job_s3_inputs(build_pipeline_definition(make_spec(settings=spot)))[5]
    assert (checkpoints.step, checkpoints.name, checkpoints.s3_uri) == ("Train", "checkpoints", "s3://b/checkpoints")


def test_processing_jobs_encrypt_volumes_and_outputs_with_the_key(definition):
    # THEN
    for name in ("Preprocess", "DataQualityBaseline", "ModelQualityBaseline", "Evaluate"):
        args = args_of(definition, name)
        assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == KEY, name
        assert args["ProcessingOutputConfig"]["KmsKeyId"] == KEY, name
        assert args["ProcessingResources"]["ClusterConfig"]["InstanceType"] == {
            "Get": "Parameters.ProcessingInstanceType"
        }
        assert args["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}


def test_without_a_key_nothing_names_a_kms_key():
    # WHEN
    definition = build_pipeline_definition(make_spec(kms_key_arn=None))
    # THEN
    text = json.dumps(definition)
    assert "KmsKeyId" not in text
    assert validate_definition(definition) == []


def test_data_quality_baseline_follows_the_model_monitor_analyzer_contract(definition):
    # WHEN
    args = args_of(definition, "DataQualityBaseline")
    # THEN
    assert args["AppSpecification"] == {"ImageUri": MONITOR}
    environment = args["Environment"]
    assert json.loads(environment["dataset_format"]) == {"csv": {"header": True, "output_columns_position": "START"}}
    assert environment["publish_cloudwatch_metrics"] == "Disabled"
    # AND it analyses Evaluate's dataset: the model's predictions first, where Model Monitor puts
    # the endpoint's response, then the features (not the training split's labels)
    (dataset,) = args["ProcessingInputs"]
    assert dataset["S3Input"]["S3Uri"] == output_uri("Evaluate", "baseline")
    assert dataset["S3Input"]["LocalPath"] == environment["dataset_source"]
    (output,) = args["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"]["LocalPath"] == environment["output_path"]
    assert output["S3Output"]["S3Uri"] == artifact_uri("data-quality-baseline")


def test_train_uses_the_builtin_xgboost_with_parameterized_instances(definition):
    # WHEN
    args = args_of(definition, "Train")
    # THEN
    assert args["AlgorithmSpecification"] == {"TrainingImage": XGBOOST, "TrainingInputMode": "File"}
    assert args["HyperParameters"]["objective"] == "binary:logistic"
    assert args["HyperParameters"]["eval_metric"] == "auc"
    assert all(isinstance(v, str) for v in args["HyperParameters"].values())
    assert args["ResourceConfig"] == {
        "InstanceType": {"Get": "Parameters.TrainingInstanceType"},
        "InstanceCount": {"Get": "Parameters.TrainingInstanceCount"},
        "VolumeSizeInGB": 30,
        "VolumeKmsKeyId": KEY,
    }
    channels = {c["ChannelName"]: c for c in args["InputDataConfig"]}
    assert channels["train"]["DataSource"]["S3DataSource"]["S3Uri"] == output_uri("Preprocess", "train")
    assert channels["validation"]["DataSource"]["S3DataSource"]["S3Uri"] == output_uri("Preprocess", "validation")
    assert channels["train"]["ContentType"] == "text/csv"
    assert args["OutputDataConfig"] == {"S3OutputPath": artifact_uri("train"), "KmsKeyId": KEY}
    assert args["EnableNetworkIsolation"] is True
    assert "EnableManagedSpotTraining" not in args
    assert "CheckpointConfig" not in args


def test_spot_training_sets_max_wait_and_checkpoints():
    # GIVEN
    settings = TrainingSettings(
        use_spot_instances=True,
        training_max_runtime_seconds=3600,
        max_wait_seconds=7200,
        checkpoint_s3_uri="s3://artifacts-bucket/checkpoints",
    )
    # WHEN
    definition = build_pipeline_definition(make_spec(settings=settings))
    # THEN
    args = args_of(definition, "Train")
    assert args["EnableManagedSpotTraining"] is True
    assert args["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert args["CheckpointConfig"] == {
        "S3Uri": "s3://artifacts-bucket/checkpoints",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert validate_definition(definition) == []


def test_spot_without_max_wait_waits_twice_the_runtime():
    # WHEN
    definition = build_pipeline_definition(make_spec(settings=TrainingSettings(use_spot_instances=True)))
    # THEN
    assert args_of(definition, "Train")["StoppingCondition"] == {
        "MaxRuntimeInSeconds": 4 * 3600,
        "MaxWaitTimeInSeconds": 8 * 3600,
    }


def test_hyperparameter_overrides_merge_with_the_defaults():
    # WHEN
    settings = TrainingSettings(hyperparameters={"num_round": "50", "min_child_weight": "3"})
    args = args_of(build_pipeline_definition(make_spec(settings=settings)), "Train")
    # THEN
    assert args["HyperParameters"]["num_round"] == "50"
    assert args["HyperParameters"]["min_child_weight"] == "3"
    assert args["HyperParameters"]["objective"] == "binary:logistic"


def test_script_mode_training_passes_the_entry_point_and_source():
    # GIVEN a scikit-learn script-mode source
    source = ScriptSource(s3_uri="s3://assets-bucket/sourcedir.tar.gz", file_name="train.py")
    spec = make_spec(
        training_image_uri=SKLEARN,
        training_source=source,
        settings=TrainingSettings(hyperparameters={"max-iter": "100"}),
    )
    # WHEN
    definition = build_pipeline_definition(spec)
    # THEN
    args = args_of(definition, "Train")
    assert args["HyperParameters"] == {
        "max-iter": '"100"',
        "sagemaker_program": '"train.py"',
        "sagemaker_submit_directory": {"Std:Join": {"On": "", "Values": ['"', source.s3_uri, '"']}},
    }
    assert args["EnableNetworkIsolation"] is False
    container = args_of(definition, "Register")["InferenceSpecification"]["Containers"][0]
    assert container["Environment"] == {"SAGEMAKER_PROGRAM": "train.py", "SAGEMAKER_SUBMIT_DIRECTORY": source.s3_uri}
    assert validate_definition(definition) == []


def test_evaluate_scores_the_trained_model_and_declares_its_property_files(definition):
    # WHEN
    step = steps_by_name(definition)["Evaluate"]
    args = step["Arguments"]
    # THEN
    assert args["AppSpecification"]["ImageUri"] == XGBOOST  # the image that can load the booster
    inputs = {i["InputName"]: i["S3Input"] for i in args["ProcessingInputs"]}
    assert inputs["model"]["S3Uri"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert inputs["test"]["S3Uri"] == output_uri("Preprocess", "test")
    assert {"Std:Join": {"On": "", "Values": ["--champion-metric=", {"Get": "Parameters.ChampionMetric"}]}} in args[
        "AppSpecification"
    ]["ContainerArguments"]
    # AND it predicts on the training split for the data-quality baseline, in a folder of its own
    assert inputs["baseline"]["S3Uri"] == output_uri("Preprocess", "baseline")
    container_arguments = args["AppSpecification"]["ContainerArguments"]
    assert container_arguments[container_arguments.index("--baseline-dir") + 1] == inputs["baseline"]["LocalPath"]
    outputs = {o["OutputName"]: o["S3Output"] for o in args["ProcessingOutputConfig"]["Outputs"]}
    assert outputs["baseline"]["S3Uri"] == artifact_uri("baseline-dataset")
    assert (
        container_arguments[container_arguments.index("--baseline-output-dir") + 1] == outputs["baseline"]["LocalPath"]
    )
    assert step["PropertyFiles"] == [
        {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"},
        {"PropertyFileName": "ChampionComparison", "OutputName": "evaluation", "FilePath": "comparison.json"},
    ]


def test_gate_requires_the_threshold_and_beating_the_champion_by_the_margin():
    # GIVEN
    settings = TrainingSettings(metric_name="auc", metric_threshold=0.8, champion_margin=0.01)
    # WHEN
    gate = args_of(build_pipeline_definition(make_spec(settings=settings)), "Gate")
    # THEN
    metric, champion = gate["Conditions"]
    assert metric == {
        "Type": "GreaterThanOrEqualTo",
        "LeftValue": {
            "Std:JsonGet": {
                "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
                "Path": "binary_classification_metrics.auc.value",
            }
        },
        "RightValue": 0.8,
    }
    assert champion == {
        "Type": "Or",
        "Conditions": [
            {"Type": "Equals", "LeftValue": {"Get": "Parameters.ChampionMetric"}, "RightValue": 0.0},
            {
                "Type": "GreaterThanOrEqualTo",
                "LeftValue": {
                    "Std:JsonGet": {
                        "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.ChampionComparison"},
                        "Path": "improvement",
                    }
                },
                "RightValue": 0.01,
            },
        ],
    }


def test_gate_for_an_error_metric_requires_at_most_the_threshold():
    # GIVEN
    settings = TrainingSettings(problem_type=ProblemType.REGRESSION, metric_name="rmse", metric_threshold=5.0)
    # WHEN
    definition = build_pipeline_definition(make_spec(settings=settings))
    # THEN
    condition = args_of(definition, "Gate")["Conditions"][0]
    assert condition["Type"] == "LessThanOrEqualTo"
    assert condition["LeftValue"]["Std:JsonGet"]["Path"] == "regression_metrics.rmse.value"
    assert args_of(definition, "Train")["HyperParameters"]["objective"] == "reg:squarederror"
    assert "at most 5" in json.dumps(args_of(definition, "Fail"))


def test_fail_message_names_the_metric_threshold_and_margin():
    # WHEN
    settings = TrainingSettings(metric_name="f1", metric_threshold=0.75, champion_margin=0.02)
    message = args_of(build_pipeline_definition(make_spec(settings=settings)), "Fail")["ErrorMessage"]
    # THEN
    assert resolve(message, {"ChampionMetric": 0.81}) == (
        "Model not registered: f1 must be at least 0.75 and beat the champion (ChampionMetric=0.81) by at least "
        "0.02. See evaluation.json and comparison.json under s3://artifacts-bucket/pipeline/abc123/evaluate"
    )
    # AND it is one flat Std:Join
    assert not any("Std:Join" in v for v in message["Std:Join"]["Values"] if isinstance(v, dict))


def test_register_records_metrics_baselines_and_lineage(definition):
    # WHEN
    args = args_of(definition, "Register")
    # THEN
    assert args["ModelPackageGroupName"] == "churn-models"
    assert args["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    assert args["ModelPackageDescription"] == {"Get": "Parameters.TriggerReason"}
    (container,) = args["InferenceSpecification"]["Containers"]
    assert container == {"Image": XGBOOST, "ModelDataUrl": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}}
    assert args["InferenceSpecification"]["SupportedContentTypes"] == ["text/csv"]
    statistics = args["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics == {
        "ContentType": "application/json",
        "S3Uri": {"Std:Join": {"On": "/", "Values": [output_uri("Evaluate", "evaluation"), "evaluation.json"]}},
    }
    baseline = args["DriftCheckBaselines"]["ModelDataQuality"]
    assert baseline["Statistics"]["S3Uri"]["Std:Join"]["Values"] == [
        output_uri("DataQualityBaseline", "monitoring_output"),
        "statistics.json",
    ]
    assert baseline["Constraints"]["S3Uri"]["Std:Join"]["Values"][1] == "constraints.json"
    assert args["CustomerMetadataProperties"] == {
        "InputManifestUri": {"Get": "Parameters.InputManifestUri"},
        "ManifestSha256": {"Get": "Parameters.ManifestSha256"},
        "DataVersion": {"Get": "Parameters.DataVersion"},
        "PipelineExecutionArn": {"Get": "Execution.PipelineExecutionArn"},
        "SourceRevision": "3f2a9c1",
        "EvaluationMetric": "binary_classification_metrics.auc.value",
    }
    assert args["MetadataProperties"] == {
        "GeneratedBy": {"Get": "Execution.PipelineExecutionArn"},
        "CommitId": "3f2a9c1",
    }


def test_vpc_settings_reach_every_job():
    # WHEN
    spec = make_spec(subnet_ids=("subnet-1", "subnet-2"), security_group_ids=("sg-1",))
    definition = build_pipeline_definition(spec)
    # THEN
    vpc = {"Subnets": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]}
    for name in ("Preprocess", "DataQualityBaseline", "ModelQualityBaseline", "Evaluate"):
        assert args_of(definition, name)["NetworkConfig"]["VpcConfig"] == vpc
    assert args_of(definition, "Train")["VpcConfig"] == vpc


def test_in_a_vpc_jobs_that_need_no_network_are_isolated():
    # WHEN the definition runs in a VPC, without and with MLflow
    vpc = {"subnet_ids": ("subnet-1",), "security_group_ids": ("sg-1",)}
    plain = build_pipeline_definition(make_spec(**vpc))
    tracked = build_pipeline_definition(mlflow_spec(**vpc))

    def isolated(definition: dict[str, Any]) -> set[str]:
        found = {
            name
            for name in ("Preprocess", "DataQualityBaseline", "ModelQualityBaseline", "Evaluate", pd.TRACK)
            if name in steps_by_name(definition)
            and args_of(definition, name)["NetworkConfig"]["EnableNetworkIsolation"]
        }
        return found | ({"Train"} if args_of(definition, "Train")["EnableNetworkIsolation"] else set())

    # THEN the Model Monitor analyzer and, unless scripts may log to MLflow, Evaluate run isolated
    assert isolated(plain) == {"DataQualityBaseline", "ModelQualityBaseline", "Evaluate", "Train"}
    assert isolated(tracked) == {"DataQualityBaseline", "ModelQualityBaseline", "Train"}
    # AND Track runs in the VPC too, every processing job encrypting traffic between its instances
    assert args_of(tracked, pd.TRACK)["NetworkConfig"]["VpcConfig"] == {
        "Subnets": ["subnet-1"],
        "SecurityGroupIds": ["sg-1"],
    }
    for name in ("Preprocess", "DataQualityBaseline", "ModelQualityBaseline", "Evaluate", pd.TRACK):
        assert args_of(tracked, name)["NetworkConfig"]["EnableInterContainerTrafficEncryption"] is True
    assert validate_definition(tracked) == []


def test_each_build_returns_a_fresh_definition():
    # GIVEN
    spec = make_spec()
    first = build_pipeline_definition(spec)
    # WHEN the caller mutates what it got
    first["Steps"][0]["Arguments"]["RoleArn"] = "changed"
    # THEN
    assert build_pipeline_definition(spec)["Steps"][0]["Arguments"]["RoleArn"] == ROLE


# ------------------------------------------------------------------------------------------------
# Request bodies against the SageMaker API model (botocore) with expressions resolved
# ------------------------------------------------------------------------------------------------

_EXECUTION = {
    "PipelineExecutionId": "abc123",
    "PipelineExecutionArn": "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/train/execution/abc123",
    "PipelineName": "train",
}


def resolve(value: Any, parameters: dict[str, Any]) -> Any:
    """Evaluate Get / Std:Join / Std:JsonGet roughly as the service would, with stand-in step properties."""
    if isinstance(value, dict):
        if set(value) == {"Get"}:
            namespace, _, name = value["Get"].partition(".")
            if namespace == "Parameters":
                return parameters[name]
            if namespace == "Execution":
                return _EXECUTION[name]
            return "s3://artifacts-bucket/pipeline/abc123/some-step/output"
        if "Std:Join" in value:
            body = value["Std:Join"]
            return body["On"].join(str(resolve(v, parameters)) for v in body["Values"])
        if "Std:JsonGet" in value:
            return 0.9
        return {k: resolve(v, parameters) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, parameters) for v in value]
    return value


@pytest.mark.parametrize(
    ("step", "operation", "name_field"),
    [
        ("Preprocess", "CreateProcessingJob", "ProcessingJobName"),
        ("DataQualityBaseline", "CreateProcessingJob", "ProcessingJobName"),
        ("ModelQualityBaseline", "CreateProcessingJob", "ProcessingJobName"),
        ("Train", "CreateTrainingJob", "TrainingJobName"),
        ("Evaluate", "CreateProcessingJob", "ProcessingJobName"),
        ("Register", "CreateModelPackage", None),
    ],
)
def test_step_arguments_are_valid_api_requests(definition, step, operation, name_field):
    # GIVEN the arguments with every expression resolved
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    defaults["InputManifestUri"] = "s3://data-bucket/manifests/churn/20240101T000000Z-0123456789abcdef.json"
    request = resolve(args_of(definition, step), defaults)
    if name_field:
        request[name_field] = "pipelines-abc123-step"
    # WHEN
    shape = botocore.session.get_session().get_service_model("sagemaker").operation_model(operation).input_shape
    assert shape is not None
    report = ParamValidator().validate(request, shape)
    # THEN
    assert not report.has_errors(), report.generate_report()


def test_model_package_metadata_values_satisfy_the_api_pattern(definition):
    # GIVEN values as the retrain trigger passes them
    parameters = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    parameters.update(
        InputManifestUri="s3://data-bucket/manifests/churn/20240101T000000Z-0123456789abcdef.json",
        ManifestSha256="0123456789abcdef" * 4,
        DataVersion="20240101T000000Z-0123456789abcdef",
        TriggerReason="new objects; quiet for 5m (batch of 3)",
    )
    # WHEN
    request = resolve(args_of(definition, "Register"), parameters)
    # THEN CustomerMetadataValue: [\p{L}\p{Z}\p{N}_.:/=+\-@]{1,256}
    for key, value in request["CustomerMetadataProperties"].items():
        assert re.fullmatch(r"[\w .:/=+\-@]{1,256}", value), (key, value)
    assert len(request["ModelPackageDescription"]) <= 1024


# ------------------------------------------------------------------------------------------------
# moto stores the definition and starts executions with the parameters
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch):
    for name, value in {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("sagemaker", region_name="eu-west-1")


def test_moto_creates_the_pipeline_and_starts_it_with_parameters(aws, definition):
    # GIVEN
    aws.create_pipeline(PipelineName="train", RoleArn=ROLE, PipelineDefinition=json.dumps(definition))
    parameters = [
        {"Name": "InputManifestUri", "Value": "s3://data-bucket/manifests/churn/20240101T000000Z-0123.json"},
        {"Name": "ManifestSha256", "Value": "0123456789abcdef" * 4},
        {"Name": "DataVersion", "Value": "20240101T000000Z-0123456789abcdef"},
        {"Name": "TriggerReason", "Value": "new data"},
        {"Name": "ChampionMetric", "Value": "0.91"},
    ]
    # WHEN
    execution = aws.start_pipeline_execution(PipelineName="train", PipelineParameters=parameters)
    # THEN
    arn = execution["PipelineExecutionArn"]
    stored = aws.describe_pipeline_definition_for_execution(PipelineExecutionArn=arn)["PipelineDefinition"]
    assert json.loads(stored) == definition
    assert validate_definition(json.loads(stored)) == []
    passed = aws.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    assert {p["Name"]: p["Value"] for p in passed}["ChampionMetric"] == "0.91"
    summaries = aws.list_pipeline_executions(PipelineName="train")["PipelineExecutionSummaries"]
    assert [s["PipelineExecutionArn"] for s in summaries] == [arn]


# ------------------------------------------------------------------------------------------------
# CDK tokens are opaque strings
# ------------------------------------------------------------------------------------------------


def test_cdk_tokens_pass_through_and_resolve_in_the_stack():
    # GIVEN a spec filled with tokens of real resources
    cdk = pytest.importorskip("aws_cdk")
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_s3 as s3

    stack = cdk.Stack(cdk.App(), "Tokens")
    bucket = s3.Bucket(stack, "Artifacts")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    spec = make_spec(bucket_name=bucket.bucket_name, role_arn=role.role_arn)
    # WHEN
    definition = build_pipeline_definition(spec)
    # THEN tokens are accepted everywhere a string goes
    assert pipeline_spec_problems(spec) == []
    assert validate_definition(definition) == []
    # AND the stack resolves them inside the serialized definition
    resolved = json.dumps(stack.resolve(stack.to_json_string(definition)))
    assert stack.get_logical_id(bucket.node.default_child) in resolved
    assert stack.get_logical_id(role.node.default_child) in resolved
    assert "${Token[" not in resolved


# ------------------------------------------------------------------------------------------------
# The validator finds broken definitions
# ------------------------------------------------------------------------------------------------


def broken(definition: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(definition)


def test_validator_reports_an_unknown_parameter_reference(definition):
    # GIVEN
    d = broken(definition)
    d["Steps"][0]["Arguments"]["ProcessingInputs"][1]["S3Input"]["S3Uri"] = {"Get": "Parameters.ManifestUrl"}
    # WHEN
    problems = validate_definition(d)
    # THEN
    assert len(problems) == 1
    assert "Steps[0] (Preprocess).Arguments.ProcessingInputs[1].S3Input.S3Uri" in problems[0]
    assert "undeclared parameter 'ManifestUrl'" in problems[0]


def test_validator_reports_references_to_unknown_steps_outputs_and_property_files(definition):
    # GIVEN
    d = broken(definition)
    train = d["Steps"][2]["Arguments"]
    train["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = output_uri("Prepare", "train")
    train["InputDataConfig"][1]["DataSource"]["S3DataSource"]["S3Uri"] = output_uri("Preprocess", "holdout")
    d["Steps"][5]["Arguments"]["Conditions"][0]["LeftValue"]["Std:JsonGet"]["PropertyFile"] = {
        "Get": "Steps.Evaluate.PropertyFiles.Metrics"
    }
    d["Steps"][3]["Arguments"]["ProcessingInputs"][1]["S3Input"]["S3Uri"] = {"Get": "Steps.Train.ModelArtefacts"}
    # WHEN
    problems = "\n".join(validate_definition(d))
    # THEN
    assert "unknown step 'Prepare'" in problems
    assert "step 'Preprocess' has no processing output 'holdout'" in problems
    assert "step 'Evaluate' declares no property file 'Metrics'" in problems
    assert "Training step 'Train' has no property 'ModelArtefacts'" in problems


def test_validator_reports_unknown_execution_variables_and_functions(definition):
    # GIVEN
    d = broken(definition)
    d["Steps"][0]["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] = {
        "Std:Concat": ["s3://a", {"Get": "Execution.ExecutionId"}]
    }
    d["Steps"][1]["Arguments"]["RoleArn"] = {"Get": "Execution.ExecutionId"}
    # WHEN
    problems = "\n".join(validate_definition(d))
    # THEN
    assert "unknown function 'Std:Concat'" in problems
    assert "'Execution.ExecutionId' is not an execution variable" in problems


def test_validator_reports_a_dependency_cycle(definition):
    # GIVEN Preprocess now waits for Evaluate, which (through Train) waits for Preprocess
    d = broken(definition)
    d["Steps"][0]["DependsOn"] = ["Evaluate"]
    # WHEN
    problems = validate_definition(d)
    # THEN
    (cycle,) = problems
    assert cycle.startswith("Steps: dependency cycle Preprocess -> Evaluate -> ")
    assert cycle.endswith("-> Preprocess (each step depends on the next)")


def test_validator_reports_a_cycle_through_a_condition_branch(definition):
    # GIVEN Preprocess depends on Fail, which runs only in the gate's else branch, after Preprocess
    d = broken(definition)
    d["Steps"][0]["DependsOn"] = ["Fail"]
    # WHEN
    problems = validate_definition(d)
    # THEN the edge from the gate to its branch closes the cycle
    (cycle,) = [p for p in problems if "cycle" in p]
    assert cycle.startswith("Steps: dependency cycle Preprocess -> Fail -> Gate -> ")
    assert cycle.endswith("-> Preprocess (each step depends on the next)")


def test_validator_reports_missing_required_fields(definition):
    # GIVEN
    d = broken(definition)
    del d["Steps"][2]["Arguments"]["RoleArn"]
    del d["Steps"][2]["Arguments"]["StoppingCondition"]
    del d["Steps"][1]["Arguments"]["AppSpecification"]["ImageUri"]
    del d["Steps"][5]["Arguments"]["IfSteps"][0]["Arguments"]["ModelPackageGroupName"]
    del d["Steps"][0]["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3UploadMode"]
    # WHEN
    problems = validate_definition(d)
    # THEN
    assert "Steps[2] (Train): Arguments.RoleArn is missing" in problems
    assert "Steps[2] (Train): Arguments.StoppingCondition.MaxRuntimeInSeconds is missing" in problems
    assert "Steps[1] (DataQualityBaseline): Arguments.AppSpecification.ImageUri is missing" in problems
    assert "Steps[5].Arguments.IfSteps[0] (Register): Arguments.ModelPackageGroupName is missing" in problems
    assert (
        "Steps[0] (Preprocess): Arguments.ProcessingOutputConfig.Outputs[0].S3Output.S3UploadMode is missing"
        in problems
    )
    assert len(problems) == 5


def test_validator_reports_a_duplicate_step_name(definition):
    # GIVEN the Fail step also appears at the top level
    d = broken(definition)
    d["Steps"].append(copy.deepcopy(d["Steps"][5]["Arguments"]["ElseSteps"][0]))
    # WHEN
    problems = validate_definition(d)
    # THEN
    assert problems == ["Steps[6]: duplicate step name 'Fail'"]


def test_validator_reports_bad_depends_on_and_self_references(definition):
    # GIVEN
    d = broken(definition)
    d["Steps"][1]["DependsOn"] = ["Preprocessing", {"Step": "Preprocess", "Trigger": "Succeeded"}]
    d["Steps"][2]["Arguments"]["OutputDataConfig"]["S3OutputPath"] = {"Get": "Steps.Train.OutputDataConfig"}
    # WHEN
    problems = "\n".join(validate_definition(d))
    # THEN
    assert "DependsOn[0] 'Preprocessing' is not a step of the pipeline" in problems
    assert "DependsOn[1]" not in problems
    assert "a step cannot read its own properties" in problems


def test_validator_reports_parameter_and_condition_problems(definition):
    # GIVEN
    d = broken(definition)
    d["Parameters"][6]["DefaultValue"] = "1"  # TrainingInstanceCount is an Integer
    d["Parameters"].append({"Name": "ChampionMetric", "Type": "Float"})
    d["Parameters"].append({"Name": "Extra", "Type": "Decimal"})
    d["Steps"][5]["Arguments"]["Conditions"].append({"Type": "Between", "LeftValue": 1, "RightValue": 2})
    d["Steps"][5]["Arguments"]["Conditions"].append({"Type": "GreaterThan", "LeftValue": 1})
    # WHEN
    problems = "\n".join(validate_definition(d))
    # THEN
    assert "(TrainingInstanceCount): DefaultValue '1' is not a Integer" in problems
    assert "duplicate parameter name 'ChampionMetric'" in problems
    assert "Type 'Decimal' is not one of String, Integer, Float, Boolean" in problems
    assert "unknown condition type 'Between'" in problems
    assert "GreaterThan needs RightValue" in problems


def test_validator_reports_spot_training_without_max_wait(definition):
    # GIVEN
    d = broken(definition)
    d["Steps"][2]["Arguments"]["EnableManagedSpotTraining"] = True
    # WHEN / THEN
    assert validate_definition(d) == [
        "Steps[2] (Train): managed spot training needs Arguments.StoppingCondition.MaxWaitTimeInSeconds"
    ]


def test_validator_reports_property_files_on_undeclared_outputs_and_non_s3_uris(definition):
    # GIVEN
    d = broken(definition)
    d["Steps"][3]["PropertyFiles"][1]["OutputName"] = "metrics"
    d["Steps"][0]["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"] = "/local/preprocess.py"
    # WHEN
    problems = "\n".join(validate_definition(d))
    # THEN
    assert "PropertyFiles[1]: OutputName 'metrics' is not an output of the step" in problems
    assert "'/local/preprocess.py' is not an s3:// URI" in problems


def test_validator_reports_an_empty_pipeline_and_a_wrong_version():
    # WHEN
    problems = validate_definition({"Version": "2021-01-01", "Parameters": [], "Steps": []})
    # THEN
    assert problems == [
        "Version: '2021-01-01'; use '2020-12-01'",
        "Steps: a pipeline needs at least one step",
    ]


def test_the_builder_composes_other_pipelines():
    # GIVEN a two-step pipeline built with the low-level builder
    b = pd.DefinitionBuilder()
    uri = b.parameter("InputUri", "String", "s3://bucket/in")
    b.step(
        "Check",
        "Condition",
        {
            "Conditions": [pd.condition("Equals", uri, "")],
            "IfSteps": [b.step("Stop", "Fail", {"ErrorMessage": pd.join(["no input: ", uri])}, top_level=False)],
            "ElseSteps": [],
        },
    )
    # WHEN
    definition = b.build()
    # THEN
    assert validate_definition(definition) == []
    assert [s["Name"] for s in definition["Steps"]] == ["Check"]


# ------------------------------------------------------------------------------------------------
# Settings checks
# ------------------------------------------------------------------------------------------------


def test_default_settings_and_spec_have_no_problems():
    # THEN
    assert training_settings_problems(TrainingSettings()) == []
    assert pipeline_spec_problems(make_spec()) == []


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            TrainingSettings(metric_threshold=1.2),
            "metric_threshold 1.2 is outside the range of auc [0, 1]; choose a threshold inside it",
        ),
        (
            TrainingSettings(problem_type=ProblemType.REGRESSION, metric_name="rmse", metric_threshold=-1.0),
            "metric_threshold -1.0 is outside the range of rmse [0, inf]; choose a threshold inside it",
        ),
        (
            TrainingSettings(metric_name="rmse"),
            "metric_name 'rmse' is not a binary_classification metric; use one of: auc, accuracy, precision, "
            "recall, f1",
        ),
        (
            TrainingSettings(training_instance_count=0),
            "training_instance_count 0 must be a whole number >= 1",
        ),
        (
            TrainingSettings(training_instance_type="ml.z9.xlarge"),
            "training_instance_type 'ml.z9.xlarge': unknown instance family 'z9'; use one of: ",
        ),
        (
            TrainingSettings(processing_instance_type="m5.xlarge"),
            "processing_instance_type 'm5.xlarge' is not an instance type; use ml.<family>.<size>, e.g. ml.m5.xlarge",
        ),
        (
            TrainingSettings(processing_instance_type="ml.p4d.24xlarge"),
            "processing_instance_type 'ml.p4d.24xlarge': unknown instance family 'p4d'",
        ),
        (
            TrainingSettings(use_spot_instances=True, max_wait_seconds=20000),
            "spot training with max_wait_seconds needs checkpoint_s3_uri, so an interrupted job resumes instead "
            "of starting over; set it (e.g. s3://<artifacts bucket>/checkpoints)",
        ),
        (
            TrainingSettings(max_wait_seconds=7200),
            "max_wait_seconds applies only to managed spot training; set use_spot_instances=True or remove it",
        ),
        (
            TrainingSettings(use_spot_instances=True, max_wait_seconds=600, checkpoint_s3_uri="s3://b/checkpoints"),
            "max_wait_seconds (600) must be >= training_max_runtime_seconds (14400); it includes the training time",
        ),
        (
            TrainingSettings(champion_margin=-0.1),
            "champion_margin -0.1 must be a number >= 0 (how much better than the champion a model must be)",
        ),
        (
            TrainingSettings(train_fraction=0.9, validation_fraction=0.1),
            "train_fraction + validation_fraction (0.9 + 0.1) must be < 1, leaving rows for the test split",
        ),
        (
            TrainingSettings(hyperparameters={"num_round": 200}),  # type: ignore[dict-item]
            "hyperparameters['num_round'] = 200 must be a string of at most 2500 characters "
            '(CreateTrainingJob takes strings; write e.g. "200" not 200)',
        ),
        (
            TrainingSettings(training_max_runtime_seconds=0),
            "training_max_runtime_seconds 0 is not a duration; use whole seconds from 1 to 2419200 (28 days)",
        ),
        (
            TrainingSettings(data_validation="block"),  # type: ignore[arg-type]
            "data_validation 'block' is not valid; use one of: fail, warn",
        ),
        (
            TrainingSettings(checkpoint_s3_uri="/tmp/checkpoints"),
            "checkpoint_s3_uri '/tmp/checkpoints' is not an S3 URI; use s3://bucket/prefix",
        ),
    ],
)
def test_settings_problems_name_the_value_and_the_fix(settings, expected):
    # WHEN
    problems = training_settings_problems(settings)
    # THEN
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected)


def test_settings_problems_are_all_reported_at_once():
    # WHEN
    problems = training_settings_problems(
        TrainingSettings(metric_threshold=2.0, training_instance_count=0, training_instance_type="gpu")
    )
    # THEN
    assert len(problems) == 3


def test_settings_checks_skip_tokens():
    # GIVEN values that are CDK tokens at synth time
    settings = TrainingSettings(
        training_instance_type="${Token[TOKEN.42]}",
        processing_instance_type="${Token[TOKEN.43]}",
        metric_threshold=-1.8881545897087626e289,
        training_instance_count=-1.8881545897087626e289,  # type: ignore[arg-type]
    )
    # THEN
    assert training_settings_problems(settings) == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"settings": TrainingSettings(training_instance_type="ml.g5.xlarge")},
            "training_instance_type 'ml.g5.xlarge' has instance storage, which takes no volume KMS key; choose a "
            "family without local storage (e.g. ml.m5) or drop the key",
        ),
        (
            {"settings": TrainingSettings(processing_instance_type="ml.r5d.large")},
            "processing_instance_type 'ml.r5d.large' has instance storage",
        ),
        (
            {"settings": TrainingSettings(preprocess_instance_type="ml.r5d.large")},
            "preprocess_instance_type 'ml.r5d.large' has instance storage",
        ),
        (
            {"default_approval_status": "Pending"},
            "default_approval_status 'Pending' is not valid; use one of: PendingManualApproval, Approved, Rejected",
        ),
        (
            {"source_revision": "feature/x (dirty)"},
            "source_revision 'feature/x (dirty)' cannot be model package metadata",
        ),
        (
            {"subnet_ids": ("subnet-1",)},
            "subnet_ids and security_group_ids go together; set both to run jobs in a VPC, or neither",
        ),
        ({"artifacts_prefix": "/pipeline/"}, "artifacts_prefix '/pipeline/' must be a key prefix"),
        (
            {"preprocess_script": ScriptSource(s3_uri="s3://b/k.py", file_name="code/k.py")},
            "preprocess_script.file_name 'code/k.py' must be a file name without '/'",
        ),
    ],
)
def test_spec_problems(overrides, expected):
    # WHEN
    problems = pipeline_spec_problems(make_spec(**overrides))
    # THEN
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected)


def test_instance_storage_without_a_key_is_fine():
    # WHEN
    spec = make_spec(kms_key_arn=None, settings=TrainingSettings(training_instance_type="ml.g5.xlarge"))
    # THEN
    assert pipeline_spec_problems(spec) == []


def test_script_source_from_uri_needs_a_concrete_object_uri():
    # THEN
    assert ScriptSource.from_uri("s3://b/code/evaluate.py").file_name == "evaluate.py"
    with pytest.raises(ValueError, match="pass file_name explicitly"):
        ScriptSource.from_uri("${Token[TOKEN.1]}")
    with pytest.raises(ValueError, match="pass file_name explicitly"):
        ScriptSource.from_uri("s3://b/code/")


def test_on_violation_warn_reaches_preprocess():
    # WHEN
    definition = build_pipeline_definition(make_spec(settings=TrainingSettings(data_validation=OnViolation.WARN)))
    # THEN
    flags = [
        a for a in args_of(definition, "Preprocess")["AppSpecification"]["ContainerArguments"] if isinstance(a, str)
    ]
    assert flags[flags.index("--on-violation") + 1] == "warn"


def test_label_column_reaches_preprocess():
    # WHEN
    definition = build_pipeline_definition(make_spec(settings=TrainingSettings(label_column="churned")))
    # THEN
    flags = args_of(definition, "Preprocess")["AppSpecification"]["ContainerArguments"]
    assert flags[flags.index("--label-column") + 1] == "churned"


def test_preprocess_runs_on_the_instances_asked_for_each_told_its_host():
    # WHEN Preprocess asks for four instances
    definition = build_pipeline_definition(make_spec(settings=TrainingSettings(preprocess_instance_count=4)))
    args = args_of(definition, "Preprocess")
    # THEN the job has four, and the script reads where SageMaker names each its host
    assert args["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 4
    flags = args["AppSpecification"]["ContainerArguments"]
    assert flags[flags.index("--resource-config") + 1] == "/opt/ml/config/resourceconfig.json"
    # AND alone (the default), it runs as before, on one instance, without the flag
    alone = args_of(build_pipeline_definition(make_spec()), "Preprocess")
    assert alone["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1
    assert "--resource-config" not in alone["AppSpecification"]["ContainerArguments"]


def test_training_shares_the_train_files_between_its_instances_and_replicates_validation():
    # Distributed XGBoost trains each instance on its part of the data; FullyReplicated would
    # give every instance all of it. The SageMaker XGBoost container accepts File mode with
    # either distribution for text/csv (its channel table), and leaves out of training an
    # instance that receives no file.
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
        for c in args_of(build_pipeline_definition(make_spec()), "Train")["InputDataConfig"]
    }
    assert channels == {"train": "ShardedByS3Key", "validation": "FullyReplicated"}


def test_the_baseline_cap_reaches_preprocess_and_its_default_is_the_scripts():
    from cdk_mlops.ml import preprocess

    flags = args_of(build_pipeline_definition(make_spec()), "Preprocess")["AppSpecification"]["ContainerArguments"]
    assert flags[flags.index("--baseline-rows") + 1] == str(preprocess.DEFAULT_BASELINE_ROWS)
    assert TrainingSettings().baseline_rows == preprocess.DEFAULT_BASELINE_ROWS
    capped = build_pipeline_definition(make_spec(settings=TrainingSettings(baseline_rows=5000)))
    flags = args_of(capped, "Preprocess")["AppSpecification"]["ContainerArguments"]
    assert flags[flags.index("--baseline-rows") + 1] == "5000"
    assert training_settings_problems(TrainingSettings(baseline_rows=0)) == [
        "baseline_rows 0 must be a whole number from 1 to 1000000000 (rows of the baseline file)"
    ]


@pytest.mark.parametrize("count", [0, 101, 2.0, "2", True])
def test_a_preprocess_instance_count_outside_the_processing_limit_is_named(count):
    problems = training_settings_problems(TrainingSettings(preprocess_instance_count=count))
    assert problems == [
        f"preprocess_instance_count {count!r} must be a whole number from 1 to 100 (CreateProcessingJob)"
    ]


def test_preprocess_takes_its_own_instance_type_or_the_parameter():
    sized = build_pipeline_definition(make_spec(settings=TrainingSettings(preprocess_instance_type="ml.c5.large")))
    assert args_of(sized, "Preprocess")["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.c5.large"
    # Evaluate keeps the parameter, which sizes every other processing job
    assert args_of(sized, "Evaluate")["ProcessingResources"]["ClusterConfig"]["InstanceType"] == {
        "Get": "Parameters.ProcessingInstanceType"
    }
    default = build_pipeline_definition(make_spec())
    assert args_of(default, "Preprocess")["ProcessingResources"]["ClusterConfig"]["InstanceType"] == {
        "Get": "Parameters.ProcessingInstanceType"
    }
    assert training_settings_problems(TrainingSettings(preprocess_instance_type="c5.large")) == [
        "preprocess_instance_type 'c5.large' is not an instance type; use ml.<family>.<size>, e.g. ml.m5.xlarge"
    ]


def test_more_training_instances_than_train_files_is_named_with_the_fix():
    # Each Preprocess instance writes one train file, and Train shares the files out by key.
    assert training_settings_problems(TrainingSettings(training_instance_count=4, preprocess_instance_count=4)) == []
    problems = training_settings_problems(TrainingSettings(training_instance_count=3, preprocess_instance_count=2))
    assert problems == [
        "training_instance_count 3 is more than preprocess_instance_count 2: Train shares out the train files "
        "ShardedByS3Key, one per Preprocess instance, so the extra training instances would get no data; raise "
        "preprocess_instance_count to at least training_instance_count"
    ]


def test_the_preprocess_instance_limit_is_the_sagemaker_api_models():
    from botocore.model import StructureShape

    from cdk_mlops.pipeline_definition import settings

    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("ProcessingClusterConfig")
    assert isinstance(shape, StructureShape)
    assert shape.members["InstanceCount"].metadata == {"min": 1, "max": settings._MAX_PROCESSING_INSTANCES}


# ------------------------------------------------------------------------------------------------
# Facts copied from elsewhere stay in step
# ------------------------------------------------------------------------------------------------


def _sagemaker_model() -> Any:
    return botocore.session.get_session().get_service_model("sagemaker")


def test_instance_families_are_ones_sagemaker_accepts():
    # GIVEN botocore's enums
    model = _sagemaker_model()
    training = {t.split(".")[1] for t in model.shape_for("TrainingInstanceType").enum}
    processing = {t.split(".")[1] for t in model.shape_for("ProcessingInstanceType").enum}
    # THEN
    assert training >= pd.TRAINING_INSTANCE_FAMILIES
    assert processing >= pd.PROCESSING_INSTANCE_FAMILIES


@pytest.mark.parametrize(
    ("properties", "shape"),
    [
        (pd._PROCESSING_PROPERTIES, "DescribeProcessingJobResponse"),
        (pd._TRAINING_PROPERTIES, "DescribeTrainingJobResponse"),
        (pd._REGISTER_PROPERTIES, "DescribeModelPackageOutput"),
    ],
)
def test_step_property_names_exist_in_the_describe_responses(properties, shape):
    # THEN
    assert properties <= set(_sagemaker_model().shape_for(shape).members)


def test_script_file_names_match_the_definition():
    # GIVEN the scripts, which ship alone and repeat the names
    from cdk_mlops.ml import evaluate, preprocess

    # THEN
    assert preprocess.TRAIN_FILE == pd.TRAIN_FILE
    assert preprocess.VALIDATION_FILE == pd.VALIDATION_FILE
    assert preprocess.TEST_FILE == pd.TEST_FILE
    assert preprocess.BASELINE_FILE == pd.BASELINE_FILE
    assert preprocess.REPORT_FILE == pd.REPORT_FILE
    assert preprocess.UNVERIFIED_SHA256 == pd.UNVERIFIED_SHA256
    assert evaluate.EVALUATION_FILE == pd.EVALUATION_FILE
    assert evaluate.COMPARISON_FILE == pd.COMPARISON_FILE
    assert evaluate.BASELINE_DATASET_FILE == pd.BASELINE_DATASET_FILE
    assert evaluate.PREDICTIONS_FILE == pd.PREDICTIONS_FILE
    assert evaluate.GROUND_TRUTH_COLUMN == pd.GROUND_TRUTH_COLUMN
    assert evaluate.PROBABILITY_COLUMN == pd.PROBABILITY_COLUMN
    assert evaluate.PREDICTION_COLUMN == pd.PREDICTION_COLUMN
    assert evaluate.PROBABILITY_THRESHOLD == pd.PROBABILITY_THRESHOLD
    assert {p: set(m) for p, m in evaluate.METRICS.items()} == {p.value: set(m) for p, m in pd.METRICS.items()}
    for problem_type, metrics in pd.METRICS.items():
        for name, info in metrics.items():
            assert evaluate.METRICS[problem_type.value][name] is info.higher_is_better


def test_default_hyperparameters_cover_every_problem_type():
    # THEN
    assert set(pd.DEFAULT_HYPERPARAMETERS) == set(ProblemType)
    regression = replace(TrainingSettings(), problem_type=ProblemType.REGRESSION)
    assert regression.effective_hyperparameters["eval_metric"] == "rmse"


# ------------------------------------------------------------------------------------------------
# Champion parameters for the next execution
# ------------------------------------------------------------------------------------------------


def test_champion_parameters_come_from_what_register_recorded(definition):
    # GIVEN a package as Register creates it (CreateModelPackage and DescribeModelPackage share these fields)
    parameters = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    package = resolve(args_of(definition, "Register"), parameters)
    evaluation = {"binary_classification_metrics": {"auc": {"value": 0.9312, "standard_deviation": "NaN"}}}
    # WHEN
    champion = pd.champion_parameters(package, evaluation)
    # THEN
    assert champion == {
        "ChampionMetric": "0.9312",
        "BaselineConstraintsUri": "s3://artifacts-bucket/pipeline/abc123/some-step/output/constraints.json",
    }


def test_champion_parameters_refuse_foreign_packages():
    # THEN
    with pytest.raises(ValueError, match="no EvaluationMetric metadata; it was not registered by this pipeline"):
        pd.champion_parameters({"CustomerMetadataProperties": {}}, {})
    package = {"CustomerMetadataProperties": {"EvaluationMetric": "regression_metrics.rmse.value"}}
    with pytest.raises(ValueError, match=re.escape("the champion's evaluation has no 'regression_metrics.rmse.value'")):
        pd.champion_parameters(package, {"regression_metrics": {"mae": {"value": 1.0}}})
    assert pd.champion_parameters(package, {"regression_metrics": {"rmse": {"value": 3}}}) == {"ChampionMetric": "3.0"}


def test_validator_reports_container_arguments_over_the_api_limit(definition):
    # GIVEN
    d = broken(definition)
    d["Steps"][0]["Arguments"]["AppSpecification"]["ContainerArguments"].append("--note=" + "x" * 250)
    d["Steps"][1]["Arguments"]["Environment"]["dataset_source"] = "/opt/ml/" + "x" * 250
    # WHEN
    problems = validate_definition(d)
    # THEN
    assert problems == [
        "Steps[0] (Preprocess): Arguments.AppSpecification.ContainerArguments[20] is over 256 characters",
        "Steps[1] (DataQualityBaseline): Arguments.Environment.dataset_source is over 256 characters",
    ]


# ------------------------------------------------------------------------------------------------
# MLflow: the Track step
# ------------------------------------------------------------------------------------------------

MLFLOW_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/churn-mlflow"
TRACK_SCRIPT_URI = "s3://assets-bucket/7a8b9c.py"
PINS = ("mlflow==2.16.2", "sagemaker-mlflow==0.1.1")


def mlflow_spec(**overrides: Any) -> PipelineSpec:
    values: dict[str, Any] = {
        "mlflow_tracking_arn": MLFLOW_ARN,
        "mlflow_experiment_name": "churn-training",
        "tracking_script": ScriptSource.from_uri(TRACK_SCRIPT_URI),
        "mlflow_client_requirements": PINS,
    }
    values.update(overrides)
    return make_spec(**values)


@pytest.fixture(scope="module")
def with_track() -> dict[str, Any]:
    return build_pipeline_definition(mlflow_spec())


def test_track_is_added_only_with_mlflow_and_a_tracking_script(definition, with_track):
    # THEN
    assert pd.TRACK not in steps_by_name(definition)
    assert pd.TRACK not in steps_by_name(build_pipeline_definition(mlflow_spec(tracking_script=None)))
    assert set(steps_by_name(with_track)) == {*pd.STEP_NAMES, pd.TRACK}
    assert validate_definition(with_track) == []
    assert pipeline_spec_problems(mlflow_spec()) == []


def test_track_reads_the_script_and_the_evaluation_and_points_at_the_server(with_track):
    # GIVEN
    step = steps_by_name(with_track)[pd.TRACK]
    args = step["Arguments"]
    # THEN it is a processing job in the scikit-learn image, with the script as its entry point
    assert step["Type"] == "Processing"
    assert args["AppSpecification"]["ImageUri"] == SKLEARN
    assert args["AppSpecification"]["ContainerEntrypoint"] == ["python3", "/opt/ml/processing/input/code/7a8b9c.py"]
    assert args["ProcessingInputs"] == [
        {
            "InputName": "code",
            "AppManaged": False,
            "S3Input": {
                "S3Uri": TRACK_SCRIPT_URI,
                "LocalPath": pd.CODE_DIR,
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
                "S3DataDistributionType": "FullyReplicated",
                "S3CompressionType": "None",
            },
        },
        {
            "InputName": "evaluation",
            "AppManaged": False,
            "S3Input": {
                "S3Uri": output_uri("Evaluate", "evaluation"),
                "LocalPath": pd.EVALUATION_INPUT_DIR,
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
                "S3DataDistributionType": "FullyReplicated",
                "S3CompressionType": "None",
            },
        },
    ]
    # AND it writes nothing to S3 but still encrypts its volume
    assert "ProcessingOutputConfig" not in args
    assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == KEY
    assert args["Environment"] == {"MLFLOW_TRACKING_ARN": MLFLOW_ARN}
    assert [r["ExceptionType"][0] for r in step["RetryPolicies"]] == [
        "Step.SERVICE_FAULT",
        "SageMaker.JOB_INTERNAL_ERROR",
    ]


def test_track_arguments_name_the_run_the_training_job_the_lineage_and_the_pins(with_track):
    # GIVEN
    arguments = args_of(with_track, pd.TRACK)["AppSpecification"]["ContainerArguments"]

    def flag(prefix: str, value: Any) -> dict[str, Any]:
        return {"Std:Join": {"On": "", "Values": [prefix, value]}}

    # THEN
    assert arguments == [
        "--evaluation-dir",
        pd.EVALUATION_INPUT_DIR,
        flag("--training-job-name=", {"Get": "Steps.Train.TrainingJobName"}),
        "--experiment-name=churn-training",
        flag("--run-name=", {"Get": "Execution.PipelineExecutionId"}),
        flag("--manifest-uri=", {"Get": "Parameters.InputManifestUri"}),
        flag("--manifest-sha256=", {"Get": "Parameters.ManifestSha256"}),
        flag("--data-version=", {"Get": "Parameters.DataVersion"}),
        flag("--pipeline-execution-arn=", {"Get": "Execution.PipelineExecutionArn"}),
        "--source-revision=3f2a9c1",
        "--requirement=mlflow==2.16.2",
        "--requirement=sagemaker-mlflow==0.1.1",
    ]


def test_track_uses_the_pipeline_name_as_experiment_and_an_image_of_ones_own():
    # WHEN
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlflow-client:2.16.2"
    definition = build_pipeline_definition(
        mlflow_spec(mlflow_experiment_name=None, tracking_image_uri=image, mlflow_client_requirements=())
    )
    # THEN
    args = args_of(definition, pd.TRACK)
    assert args["AppSpecification"]["ImageUri"] == image
    container_arguments = args["AppSpecification"]["ContainerArguments"]
    assert {"Std:Join": {"On": "", "Values": ["--experiment-name=", {"Get": "Execution.PipelineName"}]}} in (
        container_arguments
    )
    assert not [a for a in container_arguments if isinstance(a, str) and a.startswith("--requirement")]
    assert validate_definition(definition) == []


def test_track_installs_from_the_package_index_given():
    index = "https://pypi.example.internal/simple"
    # WHEN
    definition = build_pipeline_definition(mlflow_spec(package_index_url=index))
    # THEN pip reads its --index-url from the environment; the other steps do not get it
    assert args_of(definition, pd.TRACK)["Environment"] == {
        pd.MLFLOW_TRACKING_ARN_ENV: MLFLOW_ARN,
        "PIP_INDEX_URL": index,
    }
    assert pd.PIP_INDEX_URL_ENV == "PIP_INDEX_URL"
    assert "PIP_INDEX_URL" not in json.dumps(args_of(definition, "Evaluate"))
    assert pipeline_spec_problems(mlflow_spec(package_index_url=index)) == []
    assert "PIP_INDEX_URL" not in json.dumps(args_of(build_pipeline_definition(mlflow_spec()), pd.TRACK))


def test_nothing_on_the_way_to_registration_depends_on_track(with_track):
    # GIVEN every step but Track
    others = {name: step for name, step in steps_by_name(with_track).items() if name != pd.TRACK}
    # THEN none reads a Track property or lists it in DependsOn
    for name, step in others.items():
        refs = [n["Get"] for n in walk(step) if isinstance(n, dict) and isinstance(n.get("Get"), str)]
        assert not [r for r in refs if r.startswith(f"Steps.{pd.TRACK}.")], name
        assert pd.TRACK not in step.get("DependsOn", []), name
    # AND Track itself waits only for Train and Evaluate (through what it reads)
    track = steps_by_name(with_track)[pd.TRACK]
    assert "DependsOn" not in track
    read_from = {
        n["Get"].split(".")[1] for n in walk(track) if isinstance(n, dict) and str(n.get("Get")).startswith("Steps.")
    }
    assert read_from == {"Train", "Evaluate"}
    # AND the gate's branches are what they were
    gate = steps_by_name(with_track)["Gate"]["Arguments"]
    assert [s["Name"] for s in gate["IfSteps"]] == ["Register"]
    assert [s["Name"] for s in gate["ElseSteps"]] == ["Fail"]


def test_the_validator_sees_a_cycle_if_the_gate_waited_for_track(with_track):
    # GIVEN a definition where Track would also wait for Register, and the gate for Track
    broken_definition = copy.deepcopy(with_track)
    steps = {s["Name"]: s for s in broken_definition["Steps"]}
    steps["Gate"]["DependsOn"] = [pd.TRACK]
    steps[pd.TRACK]["DependsOn"] = ["Register"]
    # THEN
    assert any("dependency cycle" in p for p in validate_definition(broken_definition))


def test_track_arguments_are_a_valid_create_processing_job_request(with_track):
    # GIVEN
    defaults = {p["Name"]: p["DefaultValue"] for p in with_track["Parameters"]}
    request = resolve(args_of(with_track, pd.TRACK), defaults)
    request["ProcessingJobName"] = "pipelines-abc123-track"
    # WHEN
    shape = botocore.session.get_session().get_service_model("sagemaker").operation_model("CreateProcessingJob")
    assert shape.input_shape is not None
    report = ParamValidator().validate(request, shape.input_shape)
    # THEN
    assert not report.has_errors(), report.generate_report()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"mlflow_tracking_arn": None, "mlflow_experiment_name": None},
            "tracking_script is set but mlflow_tracking_arn is not; the Track step needs a tracking server",
        ),
        (
            {"tracking_script": None},
            "mlflow_client_requirements is set but tracking_script is not; it configures the Track step",
        ),
        (
            {"tracking_script": None, "mlflow_client_requirements": (), "tracking_image_uri": "img"},
            "tracking_image_uri is set but tracking_script is not",
        ),
        ({"tracking_image_uri": ""}, "tracking_image_uri is empty"),
        (
            {"mlflow_client_requirements": ("mlflow",)},
            "mlflow_client_requirements[0] 'mlflow' is not a pinned requirement; use name==version",
        ),
        (
            {"mlflow_client_requirements": ("mlflow==2.16.2", " ")},
            "mlflow_client_requirements[1] ' ' is empty",
        ),
        (
            {"mlflow_client_requirements": ["mlflow==2.16.2"]},
            "mlflow_client_requirements ['mlflow==2.16.2'] must be a tuple of requirements",
        ),
        (
            {"tracking_script": ScriptSource(s3_uri="s3://b/k.py", file_name="code/k.py")},
            "tracking_script.file_name 'code/k.py' must be a file name without '/'",
        ),
        (
            {"package_index_url": "http://pypi.example.internal/simple"},
            "package_index_url 'http://pypi.example.internal/simple' is not an https:// URL",
        ),
        (
            {"package_index_url": "https://pypi.example.internal/simple", "mlflow_client_requirements": ()},
            "package_index_url is set but mlflow_client_requirements is empty, so Track installs nothing",
        ),
        (
            {"tracking_script": None, "mlflow_client_requirements": (), "package_index_url": "https://p.example/s"},
            "package_index_url is set but tracking_script is not",
        ),
    ],
)
def test_track_spec_problems(overrides, expected):
    # WHEN
    problems = pipeline_spec_problems(mlflow_spec(**overrides))
    # THEN
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected)


@pytest.mark.parametrize(
    "requirement",
    ["mlflow==2.16.2", "sagemaker-mlflow>=0.1,<0.2", "mlflow-skinny[aliyun]==2.16.2", "mlflow ~= 2.16.0"],
)
def test_pinned_requirements_are_accepted(requirement):
    # THEN
    assert pd.requirement_problem("r", requirement) is None


@pytest.mark.parametrize(
    "requirement",
    [
        "mlflow",
        "--index-url=https://example.com/simple",
        "git+https://github.com/mlflow/mlflow",
        "mlflow==2.16.2; python_version<'3.10'",
        "mlflow==2.16.2 --pre",
        "-e .",
        "mlflow==",
    ],
)
def test_unpinned_or_option_like_requirements_are_problems(requirement):
    # THEN
    problem = pd.requirement_problem("r", requirement)
    assert problem is not None
    assert problem.startswith(f"r {requirement!r} is not a pinned requirement")


def test_requirement_tokens_are_not_checked():
    # THEN
    assert pd.requirement_problem("r", "${Token[TOKEN.7]}") is None
