"""SageMaker Clarify in the training pipeline: settings, steps, registration and grants.

``TrainingSettings(clarify=ClarifySettings(...))`` adds a ``Model`` step and three Clarify processing
jobs (pre-training bias, post-training bias, SHAP), whose results the package records where
``Baselines.from_model_package`` reads them. Off by default.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import aws_cdk as cdk
import boto3
import botocore.session
import pytest
from aws_cdk.assertions import Template
from botocore.model import StructureShape
from moto import mock_aws

from cdk_mlops import image_uris
from cdk_mlops import pipeline_definition as pd
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.model_monitor import Baselines, MonitoringType
from cdk_mlops.constructs.training_pipeline import TrainingPipeline
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.local.pipeline_run import Resolver
from cdk_mlops.pipeline_definition import (
    BiasFacet,
    ClarifySettings,
    ProblemType,
    ShapAggregation,
    TrainingSettings,
    build_pipeline_definition,
    pipeline_spec_problems,
    training_settings_problems,
    validate_definition,
)
from tests.contracts import botocore_checks as checks
from tests.quality import actions_of, nag_findings, statements
from tests.unit.test_pipeline_definition import (
    ROLE,
    XGBOOST,
    args_of,
    artifact_uri,
    make_spec,
    output_uri,
    steps_by_name,
)

CLARIFY_IMAGE = "468650794304.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-clarify-processing:1.0"
CLARIFY = ClarifySettings(
    facets=(BiasFacet(name="age", threshold=40.0), BiasFacet(name="gender", values=(1,))),
    group_column="region",
    sample_rows=500,
    shap_num_samples=50,
    shap_baseline_rows=3,
    instance_type="ml.c5.xlarge",
    instance_count=2,
    endpoint_instance_type="ml.m5.xlarge",
)
MANIFEST = "s3://data-bucket/manifests/churn/20240101T000000Z-0123456789abcdef.json"
EXECUTION_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/train/execution/k1x9xq0f2v3a"
CLARIFY_JOBS = (pd.DATA_BIAS_BASELINE, pd.MODEL_BIAS_BASELINE, pd.MODEL_EXPLAINABILITY_BASELINE)


def clarify_spec(clarify: ClarifySettings = CLARIFY, **overrides: Any) -> pd.PipelineSpec:
    values: dict[str, Any] = {
        "settings": TrainingSettings(clarify=clarify),
        "clarify_image_uri": CLARIFY_IMAGE,
        "default_input_manifest_uri": MANIFEST,
    }
    return make_spec(**(values | overrides))


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    spec = clarify_spec()
    assert pipeline_spec_problems(spec) == []
    return build_pipeline_definition(spec)


# ------------------------------------------------------------------------------------------------ off by default


def test_clarify_is_off_by_default_and_leaves_the_definition_as_it_was():
    # WHEN
    definition = build_pipeline_definition(make_spec())
    # THEN
    assert TrainingSettings().clarify is None
    names = set(steps_by_name(definition))
    assert names.isdisjoint(pd.CLARIFY_STEP_NAMES)
    assert "clarify" not in json.dumps(definition).lower()
    register = args_of(definition, pd.REGISTER)
    assert set(register["ModelMetrics"]) == {"ModelQuality", "ModelDataQuality"}
    assert set(register["DriftCheckBaselines"]) == {"ModelDataQuality", "ModelQuality"}


# ------------------------------------------------------------------------------------------------ settings


def test_clarify_settings_defaults():
    # WHEN
    settings = ClarifySettings(facets=(BiasFacet(name="gender"),))
    # THEN
    assert settings.positive_label_values == (1,)
    assert settings.group_column is None
    assert (settings.sample_rows, settings.shap_num_samples, settings.shap_baseline_rows) == (1000, 100, 1)
    assert settings.shap_agg_method is ShapAggregation.MEAN_ABS
    assert settings.shap_use_logit is False
    assert (settings.instance_type, settings.instance_count) == ("ml.m5.xlarge", 1)
    assert (settings.endpoint_instance_type, settings.endpoint_instance_count) == ("ml.m5.large", 1)
    assert training_settings_problems(TrainingSettings(clarify=settings)) == []


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        pytest.param({"facets": ()}, "clarify.facets () must be a non-empty tuple of BiasFacet", id="no facet"),
        pytest.param(
            {"facets": ("age",)}, "clarify.facets[0] 'age' must be a BiasFacet(name=...", id="facet not a BiasFacet"
        ),
        pytest.param(
            {"facets": (BiasFacet(name=""),)}, "clarify.facets[0].name '' must be the name of a feature", id="no name"
        ),
        pytest.param(
            {"facets": (BiasFacet(name="age"), BiasFacet(name="age"))},
            "clarify.facets[1].name 'age' is given twice",
            id="duplicate facet",
        ),
        pytest.param(
            {"facets": (BiasFacet(name="age", values=(1,), threshold=40.0),)},
            "clarify.facets[0] has values (1,) and threshold 40.0; give values for a categorical column or "
            "threshold for a continuous one, not both",
            id="values and threshold",
        ),
        pytest.param(
            {"facets": (BiasFacet(name="age", values=("old",)),)},  # type: ignore[arg-type]
            "clarify.facets[0].values ('old',) must be a tuple of numbers",
            id="values not numbers",
        ),
        pytest.param(
            {"facets": (BiasFacet(name="age", threshold="40"),)},  # type: ignore[arg-type]
            "clarify.facets[0].threshold '40' must be a number",
            id="threshold not a number",
        ),
        pytest.param(
            {"facets": (BiasFacet(name="f" * 300),)},
            "is over 256 characters as Evaluate's argument; shorten the name or give fewer values",
            id="facet too long",
        ),
        pytest.param(
            {"positive_label_values": (0, 1)},
            "clarify.positive_label_values (0, 1) must be (1,) or (0,)",
            id="both labels positive",
        ),
        pytest.param(
            {"positive_label_values": (2,)}, "clarify.positive_label_values (2,) must be (1,) or (0,)", id="label 2"
        ),
        pytest.param(
            {"group_column": " "}, "clarify.group_column ' ' must be the name of a feature column", id="blank group"
        ),
        pytest.param(
            {"sample_rows": 0},
            "clarify.sample_rows 0 must be a whole number from 1 to 1000000 (rows of the test split sent to the "
            "endpoint)",
            id="no sample",
        ),
        pytest.param(
            {"shap_num_samples": 2.5}, "clarify.shap_num_samples 2.5 must be a whole number from 1", id="samples"
        ),
        pytest.param(
            {"shap_baseline_rows": 5000},
            "clarify.shap_baseline_rows 5000 must be a whole number from 1 to 1000 (the baseline is in the config)",
            id="baseline too big",
        ),
        pytest.param(
            {"shap_agg_method": "mean"},
            "clarify.shap_agg_method 'mean' is not valid; use one of: mean_abs, median, mean_sq",
            id="agg method",
        ),
        pytest.param({"shap_use_logit": "yes"}, "clarify.shap_use_logit 'yes' must be True", id="use_logit"),
        pytest.param(
            {"instance_type": "m5.xlarge"}, "clarify.instance_type 'm5.xlarge' is not an instance type", id="instance"
        ),
        pytest.param(
            {"instance_type": "ml.x9.large"},
            "clarify.instance_type 'ml.x9.large': unknown instance family",
            id="family",
        ),
        pytest.param({"instance_count": 0}, "clarify.instance_count 0 must be a whole number from 1", id="count"),
        pytest.param(
            {"endpoint_instance_type": "large"},
            "clarify.endpoint_instance_type 'large' is not an instance type; use ml.<family>.<size>",
            id="endpoint instance",
        ),
        pytest.param(
            {"endpoint_instance_count": 11},
            "clarify.endpoint_instance_count 11 must be a whole number from 1 to 10",
            id="endpoint count",
        ),
    ],
)
def test_each_bad_clarify_setting_is_a_problem_naming_value_and_fix(changes, problem):
    # WHEN
    problems = training_settings_problems(TrainingSettings(clarify=replace(CLARIFY, **changes)))
    # THEN exactly that problem is reported
    assert len(problems) == 1, problems
    assert problem in problems[0]


def test_clarify_that_is_not_clarify_settings_is_a_problem():
    problems = training_settings_problems(TrainingSettings(clarify={"facets": ["age"]}))  # type: ignore[arg-type]
    assert problems == [
        "clarify {'facets': ['age']} must be ClarifySettings(facets=(BiasFacet(name=...),), ...) or None"
    ]


def test_a_facet_or_group_that_is_the_label_column_is_a_problem():
    # WHEN
    settings = TrainingSettings(label_column="churned", clarify=replace(CLARIFY, group_column="churned"))
    problems = training_settings_problems(
        replace(settings, clarify=replace(CLARIFY, facets=(BiasFacet(name="churned"),)))
    )
    # THEN
    assert problems == [
        "clarify.facets[0].name 'churned' is the label column; name a feature (a facet is an input of the model)"
    ]
    assert training_settings_problems(settings) == [
        "clarify.group_column 'churned' is the label column; name a feature (a facet is an input of the model)"
    ]


def test_regression_with_clarify_is_a_problem_naming_the_fix():
    # WHEN
    settings = TrainingSettings(problem_type=ProblemType.REGRESSION, metric_name="rmse", metric_threshold=10.0)
    problems = training_settings_problems(replace(settings, clarify=CLARIFY))
    # THEN
    assert problems == [
        "clarify is set but problem_type is 'regression'; Clarify's bias metrics compare a positive label value "
        "across groups, which a regressor does not predict: use problem_type=binary_classification, or remove "
        "clarify"
    ]


def test_the_spec_needs_the_clarify_image_and_two_subnets():
    # THEN
    assert pipeline_spec_problems(clarify_spec(clarify_image_uri=None)) == [
        "settings.clarify is set but clarify_image_uri is not; pass the SageMaker Clarify image "
        "(image_uris.image_uri('clarify', region))"
    ]
    assert pipeline_spec_problems(clarify_spec(subnet_ids=("subnet-1",), security_group_ids=("sg-1",))) == [
        "settings.clarify in a VPC needs at least 2 subnet_ids (in distinct availability zones) for Clarify's "
        "shadow endpoints, got 1; add a subnet, or remove clarify"
    ]
    assert pipeline_spec_problems(make_spec(clarify_image_uri=CLARIFY_IMAGE)) == [
        "clarify_image_uri is set but settings.clarify is not; set both, or remove clarify_image_uri"
    ]
    # AND a Clarify instance with instance storage takes no volume key
    storage = clarify_spec(replace(CLARIFY, instance_type="ml.g5.xlarge"))
    assert pipeline_spec_problems(storage) == [
        "clarify.instance_type 'ml.g5.xlarge' has instance storage, which takes no volume KMS key; choose a "
        "family without local storage (e.g. ml.m5) or drop the key"
    ]


# ------------------------------------------------------------------------------------------------ steps


def test_the_definition_with_clarify_is_valid_and_ordered(definition):
    # THEN
    assert validate_definition(definition) == []
    assert [s["Name"] for s in definition["Steps"]] == [
        pd.PREPROCESS,
        pd.DATA_QUALITY_BASELINE,
        pd.TRAIN,
        pd.CLARIFY_MODEL,
        pd.EVALUATE,
        pd.MODEL_QUALITY_BASELINE,
        *CLARIFY_JOBS,
        pd.GATE,
    ]


def test_the_model_step_creates_the_trained_model_with_the_training_image(definition):
    # WHEN
    step = steps_by_name(definition)[pd.CLARIFY_MODEL]
    # THEN it is a CreateModel request (the pipeline names the model)
    assert step["Type"] == "Model"
    assert step["Arguments"] == {
        "ExecutionRoleArn": ROLE,
        "PrimaryContainer": {
            "Image": XGBOOST,
            "ModelDataUrl": {"Get": f"Steps.{pd.TRAIN}.ModelArtifacts.S3ModelArtifacts"},
        },
        "EnableNetworkIsolation": True,
    }


def test_the_model_step_runs_in_the_vpc_and_a_script_mode_model_gets_its_source():
    # WHEN
    spec = clarify_spec(
        subnet_ids=("subnet-1", "subnet-2"),
        security_group_ids=("sg-1",),
        training_source=pd.ScriptSource(s3_uri="s3://assets-bucket/sourcedir.tar.gz", file_name="train.py"),
    )
    definition = build_pipeline_definition(spec)
    args = args_of(definition, pd.CLARIFY_MODEL)
    # THEN Clarify's shadow endpoints get the model's VPC; the source is downloaded, so no isolation
    assert args["VpcConfig"] == {"Subnets": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]}
    assert args["EnableNetworkIsolation"] is False
    assert args["PrimaryContainer"]["Environment"] == {
        "SAGEMAKER_PROGRAM": "train.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "s3://assets-bucket/sourcedir.tar.gz",
    }
    # AND the jobs that call the endpoint have a network; the pre-training job needs none
    isolated = {name: args_of(definition, name)["NetworkConfig"]["EnableNetworkIsolation"] for name in CLARIFY_JOBS}
    assert isolated == {
        pd.DATA_BIAS_BASELINE: True,
        pd.MODEL_BIAS_BASELINE: False,
        pd.MODEL_EXPLAINABILITY_BASELINE: False,
    }
    assert validate_definition(definition) == []


@pytest.mark.parametrize(
    ("step", "dataset", "config", "folder"),
    [
        (pd.DATA_BIAS_BASELINE, output_uri(pd.PREPROCESS, pd.OUTPUT_TRAIN), pd.OUTPUT_DATA_BIAS_CONFIG, "data-bias"),
        (
            pd.MODEL_BIAS_BASELINE,
            output_uri(pd.EVALUATE, pd.OUTPUT_CLARIFY_DATASET),
            pd.OUTPUT_MODEL_BIAS_CONFIG,
            "model-bias",
        ),
        (
            pd.MODEL_EXPLAINABILITY_BASELINE,
            output_uri(pd.EVALUATE, pd.OUTPUT_CLARIFY_DATASET),
            pd.OUTPUT_EXPLAINABILITY_CONFIG,
            "model-explainability",
        ),
    ],
)
def test_each_clarify_job_follows_the_container_contract(definition, step, dataset, config, folder):
    # WHEN
    args = args_of(definition, step)
    # THEN the Clarify image runs without entry point or arguments (Clarify supports neither)
    assert args["AppSpecification"] == {"ImageUri": CLARIFY_IMAGE}
    # AND reads its dataset and its analysis configuration where Clarify looks for them
    inputs = {i["InputName"]: i["S3Input"] for i in args["ProcessingInputs"]}
    assert set(inputs) == {"dataset", "analysis_config"}
    assert inputs["dataset"]["S3Uri"] == dataset
    assert inputs["dataset"]["LocalPath"] == "/opt/ml/processing/input/data"
    assert inputs["analysis_config"]["S3Uri"] == output_uri(pd.EVALUATE, config)
    assert inputs["analysis_config"]["LocalPath"] == "/opt/ml/processing/input/config"
    # AND Evaluate writes that configuration into a folder of its own
    evaluate = {
        o["OutputName"]: o["S3Output"] for o in args_of(definition, pd.EVALUATE)["ProcessingOutputConfig"]["Outputs"]
    }
    assert evaluate[config]["S3Uri"] == artifact_uri(f"clarify-config/{folder}")
    # AND writes analysis.json under <folder>-baseline/ of the execution
    (output,) = args["ProcessingOutputConfig"]["Outputs"]
    assert output["OutputName"] == pd.OUTPUT_ANALYSIS
    assert output["S3Output"]["LocalPath"] == "/opt/ml/processing/output"
    assert output["S3Output"]["S3Uri"] == artifact_uri(f"{folder}-baseline")
    # AND it runs on the Clarify instances of the settings
    cluster = args["ProcessingResources"]["ClusterConfig"]
    assert (cluster["InstanceType"], cluster["InstanceCount"]) == ("ml.c5.xlarge", 2)


def test_the_monitor_configurations_land_beside_the_jobs_results(definition):
    # GIVEN Evaluate's outputs
    outputs = {o["OutputName"]: o for o in args_of(definition, pd.EVALUATE)["ProcessingOutputConfig"]["Outputs"]}
    # THEN the fixed layout: <execution>/model-bias-baseline/ and <execution>/model-explainability-baseline/
    for config, step, folder in (
        (pd.OUTPUT_MODEL_BIAS_MONITOR_CONFIG, pd.MODEL_BIAS_BASELINE, "model-bias-baseline"),
        (pd.OUTPUT_EXPLAINABILITY_MONITOR_CONFIG, pd.MODEL_EXPLAINABILITY_BASELINE, "model-explainability-baseline"),
    ):
        result = args_of(definition, step)["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
        assert outputs[config]["S3Output"]["S3Uri"] == result == artifact_uri(folder)
    # AND every Clarify output is a folder of --clarify-config-dir
    arguments = args_of(definition, pd.EVALUATE)["AppSpecification"]["ContainerArguments"]
    config_dir = arguments[arguments.index("--clarify-config-dir") + 1]
    for name in pd.CLARIFY_OUTPUTS:
        assert outputs[name]["S3Output"]["LocalPath"] == f"{config_dir}/{name}"
    assert outputs[pd.OUTPUT_CLARIFY_DATASET]["S3Output"]["S3Uri"] == artifact_uri("clarify-dataset")


def test_evaluate_gets_the_model_name_and_the_settings(definition):
    # WHEN
    arguments = args_of(definition, pd.EVALUATE)["AppSpecification"]["ContainerArguments"]

    def value(flag: str) -> Any:
        return arguments[arguments.index(flag) + 1]

    # THEN the model name is the ClarifyModel step's property, joined into one argument
    assert {
        "Std:Join": {"On": "", "Values": ["--clarify-model-name=", {"Get": f"Steps.{pd.CLARIFY_MODEL}.ModelName"}]}
    } in arguments
    facets = [json.loads(arguments[i + 1]) for i, a in enumerate(arguments) if a == "--clarify-facet"]
    assert facets == [
        {"name_or_index": "age", "value_or_threshold": [40.0]},
        {"name_or_index": "gender", "value_or_threshold": [1]},
    ]
    assert value("--clarify-label-values") == "1"
    assert value("--clarify-group-column") == "region"
    assert value("--clarify-sample-rows") == "500"
    assert value("--clarify-shap-samples") == "50"
    assert value("--clarify-shap-baseline-rows") == "3"
    assert value("--clarify-shap-agg-method") == "mean_abs"
    assert value("--clarify-endpoint-instance-type") == "ml.m5.xlarge"
    assert value("--clarify-endpoint-instance-count") == "1"
    assert value("--clarify-seed") == "42"
    assert "--clarify-shap-use-logit" not in arguments


# ------------------------------------------------------------------------------------------------ registration


def test_register_records_the_bias_and_explainability_reports_and_baselines(definition):
    # WHEN
    args = args_of(definition, pd.REGISTER)

    def file(step: str, output: str, name: str) -> dict[str, Any]:
        return {
            "ContentType": "application/json",
            "S3Uri": {"Std:Join": {"On": "/", "Values": [output_uri(step, output), name]}},
        }

    data_bias = file(pd.DATA_BIAS_BASELINE, "analysis_result", "analysis.json")
    model_bias = file(pd.MODEL_BIAS_BASELINE, "analysis_result", "analysis.json")
    explainability = file(pd.MODEL_EXPLAINABILITY_BASELINE, "analysis_result", "analysis.json")
    # THEN
    assert args["ModelMetrics"]["Bias"] == {"PreTrainingReport": data_bias, "PostTrainingReport": model_bias}
    assert args["ModelMetrics"]["Explainability"] == {"Report": explainability}
    assert args["DriftCheckBaselines"]["Bias"] == {
        "ConfigFile": file(pd.EVALUATE, pd.OUTPUT_MODEL_BIAS_MONITOR_CONFIG, "analysis_config.json"),
        "PreTrainingConstraints": data_bias,
        "PostTrainingConstraints": model_bias,
    }
    assert args["DriftCheckBaselines"]["Explainability"] == {
        "Constraints": explainability,
        "ConfigFile": file(pd.EVALUATE, pd.OUTPUT_EXPLAINABILITY_MONITOR_CONFIG, "analysis_config.json"),
    }
    # AND the other baselines are registered as before
    assert set(args["DriftCheckBaselines"]) == {"ModelDataQuality", "ModelQuality", "Bias", "Explainability"}


@mock_aws
@pytest.mark.parametrize(
    ("monitoring_type", "folder"),
    [
        (MonitoringType.MODEL_BIAS, "model-bias-baseline"),
        (MonitoringType.MODEL_EXPLAINABILITY, "model-explainability-baseline"),
    ],
)
def test_a_clarify_monitor_takes_the_files_of_the_fixed_layout_from_the_registered_package(
    definition, monitoring_type, folder
):
    # GIVEN the Register step's request, resolved as SageMaker Pipelines resolves it for one execution
    resolver = Resolver(definition, parameters={pd.INPUT_MANIFEST_URI: MANIFEST}, execution_arn=EXECUTION_ARN)
    resolver.properties[f"Steps.{pd.TRAIN}.ModelArtifacts.S3ModelArtifacts"] = "s3://artifacts-bucket/model.tar.gz"
    request = resolver.resolve(args_of(definition, pd.REGISTER))
    # WHEN the package is registered and described, as the deployment step describes it
    sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
    sagemaker.create_model_package_group(ModelPackageGroupName="churn-models")
    arn = sagemaker.create_model_package(**request)["ModelPackageArn"]
    description = sagemaker.describe_model_package(ModelPackageName=arn)
    baselines = Baselines.from_model_package(description, monitoring_type)
    # THEN the monitor reads Clarify's analysis.json and Evaluate's analysis_config.json of one folder
    prefix = f"s3://artifacts-bucket/pipeline/k1x9xq0f2v3a/{folder}"
    assert baselines.constraints_uri == f"{prefix}/analysis.json"
    assert baselines.analysis_config_uri == f"{prefix}/analysis_config.json"
    assert baselines.problems("clarify", monitoring_type) == []


# ------------------------------------------------------------------------------------------------ API contracts


def test_every_step_with_clarify_is_a_request_the_sagemaker_api_accepts(definition):
    # GIVEN every start of the pipeline
    executions = checks.executions(
        definition, pipeline_name="churn-training", region="eu-west-1", account="123456789012"
    )
    for execution in executions:
        # WHEN each step's arguments are resolved into the API request SageMaker makes
        requests = checks.step_requests(definition, execution)
        # THEN the Clarify steps are among them, and every request is valid
        assert {(r.step, r.operation) for r in requests} >= {
            (pd.CLARIFY_MODEL, "CreateModel"),
            *((job, "CreateProcessingJob") for job in CLARIFY_JOBS),
        }
        assert checks.problems_by_step(definition, execution) == {}, execution.scenario


def test_a_model_step_without_a_role_or_image_is_reported():
    # GIVEN a definition whose Model step lost its role and container image
    definition = build_pipeline_definition(clarify_spec())
    arguments = args_of(definition, pd.CLARIFY_MODEL)
    del arguments["ExecutionRoleArn"], arguments["PrimaryContainer"]["Image"]
    # THEN
    problems = validate_definition(definition)
    assert problems == [
        "Steps[3] (ClarifyModel): Arguments.PrimaryContainer.Image or Arguments.PrimaryContainer.ModelPackageName "
        "or Arguments.Containers is missing",
        "Steps[3] (ClarifyModel): Arguments.ExecutionRoleArn is missing",
    ]


def test_a_model_step_property_it_does_not_have_is_reported():
    definition = build_pipeline_definition(clarify_spec())
    arguments = args_of(definition, pd.EVALUATE)["AppSpecification"]["ContainerArguments"]
    (index,) = [i for i, a in enumerate(arguments) if isinstance(a, dict)][1:]
    arguments[index] = {"Get": f"Steps.{pd.CLARIFY_MODEL}.ModelNom"}
    assert any("Model step 'ClarifyModel' has no property 'ModelNom'" in p for p in validate_definition(definition))


def test_the_step_property_names_of_a_model_step_exist_in_describe_model():
    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("DescribeModelOutput")
    assert isinstance(shape, StructureShape)
    assert set(shape.members) >= pd._MODEL_PROPERTIES


# ------------------------------------------------------------------------------------------------ the construct


def synth(settings: TrainingSettings | None) -> tuple[TrainingPipeline, Template]:
    app = cdk.App()
    stack = cdk.Stack(app, "Test", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    store = VersionedDataStore(stack, "Data", datasets=["churn"])
    training = TrainingPipeline(
        stack, "Training", data_store=store, dataset="churn", pipeline_name="churn-training", settings=settings
    )
    return training, Template.from_stack(stack)


def _granted(training: TrainingPipeline, template: Template) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for statement in statements(template, training.role):
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions_of(statement):
            found.setdefault(action, []).extend(resources)
    return found


def test_the_construct_with_clarify_grants_the_model_and_the_shadow_endpoints():
    # WHEN
    training, template = synth(TrainingSettings(clarify=CLARIFY))
    granted = _granted(training, template)
    # THEN the pipeline may create the model (and pass its role to it)
    assert "sagemaker:CreateModel" in granted
    assert "sagemaker:DescribeModel" in granted
    assert "iam:PassRole" in granted
    # AND the Clarify jobs may run their shadow endpoints, named cdk-mlops-clarify*, only
    for action in (
        "CreateEndpointConfig",
        "CreateEndpoint",
        "InvokeEndpoint",
        "DeleteEndpoint",
        "DeleteEndpointConfig",
    ):
        resources = json.dumps(granted[f"sagemaker:{action}"])
        assert ":endpoint/cdk-mlops-clarify*" in resources, action
        assert ":endpoint-config/cdk-mlops-clarify*" in resources, action
    # AND pull the Clarify image
    assert "sagemaker-clarify-processing" in json.dumps(granted["ecr:BatchGetImage"])
    # AND the definition has the Clarify steps, with the region's Clarify image
    body = json.dumps(template.find_resources("AWS::SageMaker::Pipeline"))
    assert all(step in body for step in pd.CLARIFY_STEP_NAMES)
    assert image_uris.image_uri("clarify", "eu-west-1") in body
    # AND every wildcard is acknowledged
    assert nag_findings(cdk.Stack.of(training)) == []


def test_the_construct_without_clarify_grants_no_model_or_endpoint():
    # WHEN
    training, template = synth(None)
    granted = _granted(training, template)
    # THEN
    assert not {"sagemaker:CreateModel", "sagemaker:CreateEndpoint", "sagemaker:InvokeEndpoint"} & set(granted)


def test_the_construct_rejects_bad_clarify_settings_listing_them():
    with pytest.raises(ConfigurationError, match=r"settings: clarify\.sample_rows 0 must be a whole number"):
        synth(TrainingSettings(clarify=replace(CLARIFY, sample_rows=0)))
