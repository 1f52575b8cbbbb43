"""The model-quality baseline: Evaluate's predictions file, the ModelQualityBaseline step, what Register records.

And the tie between what the pipeline registers and what ``ModelMonitor`` reads: the URIs a
model-quality monitor takes from a registered package are the files the step writes.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdk_mlops import pipeline_definition as pd
from cdk_mlops.constructs.model_monitor import Baselines, MonitoringType
from cdk_mlops.local.pipeline_run import Resolver
from cdk_mlops.pipeline_definition import (
    ProblemType,
    TrainingSettings,
    build_pipeline_definition,
    training_settings_problems,
    validate_definition,
)
from tests.unit.test_pipeline_definition import MONITOR, args_of, artifact_uri, make_spec, output_uri, steps_by_name

EXECUTION_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/train/execution/k1x9xq0f2v3a"
#: The parameter the retrain trigger always sends (the definition's default is empty).
PARAMETERS = {pd.INPUT_MANIFEST_URI: "s3://data-bucket/manifests/churn/20240101T000000Z-0123456789abcdef.json"}
REGRESSION = TrainingSettings(problem_type=ProblemType.REGRESSION, metric_name="rmse", metric_threshold=100.0)


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return build_pipeline_definition(make_spec())


def test_the_step_runs_the_model_monitor_analyzer_on_evaluates_predictions(definition):
    # WHEN
    step = steps_by_name(definition)[pd.MODEL_QUALITY_BASELINE]
    args = step["Arguments"]
    # THEN it is a processing job of the analyzer image, as DataQualityBaseline is
    assert step["Type"] == "Processing"
    assert args["AppSpecification"] == {"ImageUri": MONITOR}
    assert args["AppSpecification"] == args_of(definition, pd.DATA_QUALITY_BASELINE)["AppSpecification"]
    environment = args["Environment"]
    assert environment == {
        "analysis_type": "MODEL_QUALITY",
        "problem_type": "BinaryClassification",
        "dataset_format": '{"csv": {"header": true, "output_columns_position": "START"}}',
        "dataset_source": "/opt/ml/processing/input/baseline_dataset_input",
        "output_path": "/opt/ml/processing/output",
        "publish_cloudwatch_metrics": "Disabled",
        "ground_truth_attribute": "label",
        "inference_attribute": "prediction",
        "probability_attribute": "probability",
        "probability_threshold_attribute": "0.5",
    }
    assert json.loads(environment["dataset_format"]) == {"csv": {"header": True, "output_columns_position": "START"}}
    # AND it reads Evaluate's predictions on the test split, where the environment says
    (dataset,) = args["ProcessingInputs"]
    assert dataset["S3Input"]["S3Uri"] == output_uri(pd.EVALUATE, pd.OUTPUT_PREDICTIONS)
    assert dataset["S3Input"]["LocalPath"] == environment["dataset_source"]
    # AND writes statistics.json and constraints.json under the execution's artifacts prefix
    (output,) = args["ProcessingOutputConfig"]["Outputs"]
    assert output["OutputName"] == pd.OUTPUT_MONITORING
    assert output["S3Output"]["LocalPath"] == environment["output_path"]
    assert output["S3Output"]["S3Uri"] == artifact_uri("model-quality-baseline")
    # AND it runs on the processing instance of the other processing steps, with retries
    data_quality = args_of(definition, pd.DATA_QUALITY_BASELINE)
    assert args["ProcessingResources"] == data_quality["ProcessingResources"]
    assert args["StoppingCondition"] == data_quality["StoppingCondition"]
    assert step["RetryPolicies"] == steps_by_name(definition)[pd.DATA_QUALITY_BASELINE]["RetryPolicies"]


def test_evaluate_writes_the_predictions_the_step_reads(definition):
    # WHEN
    args = args_of(definition, pd.EVALUATE)
    # THEN Evaluate has an output of its own for them, outside evaluate/ (Track downloads that prefix)
    outputs = {o["OutputName"]: o["S3Output"] for o in args["ProcessingOutputConfig"]["Outputs"]}
    assert outputs[pd.OUTPUT_PREDICTIONS]["S3Uri"] == artifact_uri("test-predictions")
    container_arguments = args["AppSpecification"]["ContainerArguments"]
    flag = container_arguments.index("--predictions-output-dir")
    assert container_arguments[flag + 1] == outputs[pd.OUTPUT_PREDICTIONS]["LocalPath"]


def test_regression_names_the_predicted_value_and_no_probability():
    # WHEN
    definition = build_pipeline_definition(make_spec(settings=REGRESSION))
    environment = args_of(definition, pd.MODEL_QUALITY_BASELINE)["Environment"]
    # THEN
    assert environment["problem_type"] == "Regression"
    assert environment["ground_truth_attribute"] == "label"
    assert environment["inference_attribute"] == "prediction"
    assert "probability_attribute" not in environment
    assert "probability_threshold_attribute" not in environment
    assert validate_definition(definition) == []


def test_every_problem_type_has_a_model_monitor_problem_type():
    # THEN (SageMaker's MonitorProblemType values)
    assert {p: p.monitor_problem_type for p in ProblemType} == {
        ProblemType.BINARY_CLASSIFICATION: "BinaryClassification",
        ProblemType.REGRESSION: "Regression",
    }


def test_register_records_the_model_quality_baseline_with_the_steps_output(definition):
    # WHEN
    args = args_of(definition, pd.REGISTER)
    # THEN
    baseline = output_uri(pd.MODEL_QUALITY_BASELINE, pd.OUTPUT_MONITORING)
    constraints = {
        "ContentType": "application/json",
        "S3Uri": {"Std:Join": {"On": "/", "Values": [baseline, "constraints.json"]}},
    }
    statistics = {
        "ContentType": "application/json",
        "S3Uri": {"Std:Join": {"On": "/", "Values": [baseline, "statistics.json"]}},
    }
    assert args["DriftCheckBaselines"]["ModelQuality"] == {"Statistics": statistics, "Constraints": constraints}
    assert args["ModelMetrics"]["ModelQuality"]["Constraints"] == constraints
    # AND the model-quality statistics stay evaluation.json, where the champion's metric is read
    assert args["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]["Std:Join"]["Values"] == [
        output_uri(pd.EVALUATE, pd.OUTPUT_EVALUATION),
        "evaluation.json",
    ]
    # AND the data-quality baseline is registered as before
    assert set(args["DriftCheckBaselines"]) == {"ModelDataQuality", "ModelQuality"}


def test_the_setting_leaves_the_step_and_its_registration_out():
    # WHEN
    definition = build_pipeline_definition(make_spec(settings=TrainingSettings(model_quality_baseline=False)))
    # THEN
    assert pd.MODEL_QUALITY_BASELINE not in steps_by_name(definition)
    assert pd.MODEL_QUALITY_BASELINE not in json.dumps(definition)
    register = args_of(definition, pd.REGISTER)
    assert set(register["DriftCheckBaselines"]) == {"ModelDataQuality"}
    assert set(register["ModelMetrics"]["ModelQuality"]) == {"Statistics"}
    evaluate = args_of(definition, pd.EVALUATE)
    assert [o["OutputName"] for o in evaluate["ProcessingOutputConfig"]["Outputs"]] == ["evaluation", "baseline"]
    assert "--predictions-output-dir" not in evaluate["AppSpecification"]["ContainerArguments"]
    assert validate_definition(definition) == []


def test_the_step_is_on_by_default_and_a_bad_setting_names_value_and_fix():
    # THEN
    assert TrainingSettings().model_quality_baseline is True
    assert training_settings_problems(TrainingSettings(model_quality_baseline="no")) == [  # type: ignore[arg-type]
        "model_quality_baseline 'no' must be True (compute and register the model-quality baseline, the default) "
        "or False (leave the step out)"
    ]


# ------------------------------------------------------------------------------------------------
# What the pipeline registers is what a model-quality monitor reads
# ------------------------------------------------------------------------------------------------


@mock_aws
def test_a_model_quality_monitor_takes_the_baseline_the_step_wrote_from_the_registered_package(definition):
    # GIVEN the Register step's request, resolved as SageMaker Pipelines resolves it for one execution
    resolver = Resolver(definition, parameters=PARAMETERS, execution_arn=EXECUTION_ARN)
    resolver.properties[f"Steps.{pd.TRAIN}.ModelArtifacts.S3ModelArtifacts"] = "s3://artifacts-bucket/model.tar.gz"
    request = resolver.resolve(args_of(definition, pd.REGISTER))
    # AND the folder the ModelQualityBaseline step uploads its output to in that execution
    output = args_of(definition, pd.MODEL_QUALITY_BASELINE)["ProcessingOutputConfig"]["Outputs"][0]
    written = resolver.resolve(output["S3Output"]["S3Uri"])
    assert written == "s3://artifacts-bucket/pipeline/k1x9xq0f2v3a/model-quality-baseline"
    # WHEN the package is registered and described, as the deployment step describes it
    sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
    sagemaker.create_model_package_group(ModelPackageGroupName="churn-models")
    arn = sagemaker.create_model_package(**request)["ModelPackageArn"]
    description = sagemaker.describe_model_package(ModelPackageName=arn)
    baselines = Baselines.from_model_package(description, MonitoringType.MODEL_QUALITY)
    # THEN the monitor compares with exactly the constraints the step wrote, of this package
    assert baselines.constraints_uri == f"{written}/constraints.json"
    assert baselines.model_package_arn == arn
    assert baselines.problems("model_quality", MonitoringType.MODEL_QUALITY) == []
    # AND the data-quality monitor still finds its own baseline beside it
    data_quality = Baselines.from_model_package(description, MonitoringType.DATA_QUALITY)
    assert data_quality.constraints_uri.endswith("/data-quality-baseline/constraints.json")


def test_without_the_step_a_model_quality_monitor_is_told_what_is_missing():
    # GIVEN a package registered by a pipeline with the step turned off
    definition = build_pipeline_definition(make_spec(settings=TrainingSettings(model_quality_baseline=False)))
    resolver = Resolver(definition, parameters=PARAMETERS, execution_arn=EXECUTION_ARN)
    resolver.properties[f"Steps.{pd.TRAIN}.ModelArtifacts.S3ModelArtifacts"] = "s3://artifacts-bucket/model.tar.gz"
    description = {"ModelPackageArn": "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-models/1"}
    description |= resolver.resolve(args_of(definition, pd.REGISTER))
    # WHEN / THEN
    from cdk_mlops.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"has no DriftCheckBaselines\.ModelQuality"):
        Baselines.from_model_package(description, MonitoringType.MODEL_QUALITY)
