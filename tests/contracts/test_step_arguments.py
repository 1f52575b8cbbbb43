"""Every job step of every SageMaker pipeline the platform deploys is a request the SageMaker API accepts.

The pipelines of the session ``platform`` fixture (every environment serving a model, and the
stages the tooling pipeline deploys) are checked here; those of the other layouts in
test_synthesis_variants.py, next to their synthesis. The checker itself is
``tests/contracts/botocore_checks.py``; the tests at the end prove it finds what it should.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from cdk_mlops import champion
from cdk_mlops.lambdas.retrain_trigger import core
from tests.contracts import botocore_checks as checks
from tests.contracts.botocore_checks import FIRST_MODEL, SCENARIOS, WITH_CHAMPION
from tests.contracts.variants import DeployedPipeline, deployed_pipelines, deployed_stacks
from tests.quality import cloudformation_exports, resolve_like_cloudformation


@pytest.fixture(scope="module")
def pipelines(platform) -> list[DeployedPipeline]:
    return deployed_pipelines(deployed_stacks(platform))


def test_every_pipeline_the_platform_deploys_is_checked(platform, pipelines):
    templates = [s.template for s in deployed_stacks(platform)]
    declared = [r for t in templates for r in t["Resources"].values() if r["Type"] == "AWS::SageMaker::Pipeline"]
    assert len(pipelines) == len(declared)
    # Training and, with batch_inference, scoring: once per environment as a top-level stage,
    # once per stage of the tooling pipeline.
    scoring = [p for p in pipelines if checks.is_scoring(p.definition)]
    assert len(pipelines) - len(scoring) == 2 * len(platform.configs)
    assert len(scoring) == 2 * len([c for c in platform.configs if c.batch_inference is not None]) > 0


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_step_of_every_platform_pipeline_is_a_valid_api_request(pipelines, scenario):
    checks.assert_valid_step_requests(pipelines, scenario)


def test_the_trigger_starts_executions_with_valid_requests_of_declared_parameters(pipelines):
    for pipeline in (p for p in pipelines if not checks.is_scoring(p.definition)):
        options = {"pipeline_name": pipeline.name, "region": pipeline.region, "account": pipeline.account}
        _, first_model, with_champion = checks.executions(pipeline.definition, **options)
        no_champion = core.Champion(None, champion.first_model_parameters())
        for rival in (no_champion, checks.champion_of(pipeline.definition, first_model)):
            start = checks.trigger_start(pipeline_name=pipeline.name, bucket="cdk-mlops-data", rival=rival)
            assert checks.request_problems("StartPipelineExecution", start) == []
        declared = {p["Name"] for p in pipeline.definition["Parameters"]}
        assert set(first_model.sent) <= declared
        assert set(with_champion.sent) <= declared
        # The free-text reason is cut to what a parameter value may hold.
        assert len(first_model.sent["TriggerReason"]) == 1024 < len(checks.MANUAL_REASON)
        assert first_model.sent[champion.CHAMPION_METRIC] == "0.0"
        assert float(with_champion.sent[champion.CHAMPION_METRIC]) > 0
        assert with_champion.sent[champion.BASELINE_CONSTRAINTS_URI].startswith("s3://")


# ----------------------------------------------------------------------------- the checker finds faults


@pytest.fixture(scope="module")
def pipeline(pipelines: list[DeployedPipeline]) -> DeployedPipeline:
    return next(p for p in pipelines if not checks.is_scoring(p.definition))


def execution_of(pipeline: DeployedPipeline, scenario: str = FIRST_MODEL) -> checks.Execution:
    options = {"pipeline_name": pipeline.name, "region": pipeline.region, "account": pipeline.account}
    (execution,) = [e for e in checks.executions(pipeline.definition, **options) if e.scenario == scenario]
    return execution


def step_of(definition: dict[str, Any], name: str) -> dict[str, Any]:
    (step,) = [s for s in checks.every_step(definition["Steps"]) if s["Name"] == name]
    return dict(step)


def planted(pipeline: DeployedPipeline, step: str, plant: Callable[[dict[str, Any]], object]) -> dict[str, list[str]]:
    """The problems of ``pipeline`` after ``plant`` changed the arguments of ``step``."""
    definition = copy.deepcopy(pipeline.definition)
    plant(step_of(definition, step)["Arguments"])
    return checks.problems_by_step(definition, execution_of(pipeline))


def test_the_unchanged_pipeline_has_no_problem(pipeline):
    # The baseline of the planted faults below: each problem they report is the planted one.
    assert checks.problems_by_step(pipeline.definition, execution_of(pipeline)) == {}


@pytest.mark.parametrize(
    ("plant", "problem"),
    [
        pytest.param(lambda a: a.update(Bogus=1), 'Unknown parameter in input: "Bogus"', id="unknown member"),
        pytest.param(lambda a: a.pop("AppSpecification"), '"AppSpecification"', id="missing member"),
        pytest.param(
            lambda a: a["ProcessingResources"]["ClusterConfig"].update(VolumeSizeInGB="30"),
            "Invalid type for parameter ProcessingResources.ClusterConfig.VolumeSizeInGB, value: 30",
            id="wrong type",
        ),
        pytest.param(
            lambda a: a["ProcessingInputs"][0]["S3Input"].update(S3DataType="Prefix"),
            "ProcessingInputs[0].S3Input.S3DataType: 'Prefix' is not one of",
            id="bad enum",
        ),
        pytest.param(
            lambda a: a.update(Environment={"NOTE": "x" * 300}),
            "Environment['NOTE']: 300 characters; at most 256 allowed",
            id="too long",
        ),
        pytest.param(
            lambda a: a["ProcessingInputs"].extend(a["ProcessingInputs"][:1] * 9),
            "ProcessingInputs: 11 items; at most 10 allowed",
            id="too many",
        ),
        pytest.param(
            lambda a: a.update(RoleArn="arn:aws:iam::123456789012:user/alice"),
            "RoleArn: 'arn:aws:iam::123456789012:user/alice' does not match the pattern",
            id="bad pattern",
        ),
    ],
)
def test_a_planted_bad_argument_is_reported_with_its_path(pipeline, plant, problem):
    problems = planted(pipeline, "Preprocess", plant)
    assert list(problems) == ["Preprocess (CreateProcessingJob)"]
    (found,) = problems["Preprocess (CreateProcessingJob)"]
    assert problem in found


def test_a_parameter_is_substituted_with_its_declared_type(pipeline):
    definition = copy.deepcopy(pipeline.definition)
    (count,) = [p for p in definition["Parameters"] if p["Name"] == "TrainingInstanceCount"]
    count["Type"] = "String"
    problems = checks.problems_by_step(definition, execution_of(pipeline))
    assert list(problems) == ["Train (CreateTrainingJob)"]
    assert "Invalid type for parameter ResourceConfig.InstanceCount" in problems["Train (CreateTrainingJob)"][0]


def test_a_step_property_is_substituted_with_a_value_of_its_type(pipeline):
    def plant(arguments: dict[str, Any]) -> None:
        arguments["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] = {
            "Get": "Steps.Train.ResourceConfig.InstanceCount"
        }

    problems = planted(pipeline, "Register", plant)
    assert list(problems) == ["Register (CreateModelPackage)"]
    assert (
        "Invalid type for parameter InferenceSpecification.Containers[0].ModelDataUrl, value: 1"
        in (problems["Register (CreateModelPackage)"][0])
    )


def test_a_property_the_step_does_not_have_is_an_error(pipeline):
    def plant(arguments: dict[str, Any]) -> None:
        arguments["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] = {"Get": "Steps.Train.ModelArtefacts"}

    with pytest.raises(ValueError, match=r"DescribeTrainingJob has no property 'ModelArtefacts'"):
        planted(pipeline, "Register", plant)


def test_a_step_type_the_checks_do_not_know_fails_them(pipeline):
    definition = copy.deepcopy(pipeline.definition)
    definition["Steps"].append({"Name": "Tune", "Type": "AutoML", "Arguments": {}})
    with pytest.raises(checks.UnknownStepTypeError, match=r"step types \['AutoML'\] are not known"):
        checks.step_requests(definition, execution_of(pipeline))


def test_a_bad_argument_is_reported_in_every_scenario(pipeline):
    definition = copy.deepcopy(pipeline.definition)
    step_of(definition, "Train")["Arguments"]["Bogus"] = 1
    faulty = DeployedPipeline(pipeline.stack_path, pipeline.name, pipeline.region, pipeline.account, definition)
    for scenario in SCENARIOS:
        with pytest.raises(AssertionError, match="Bogus"):
            checks.assert_valid_step_requests([faulty], scenario)


def test_the_champion_is_the_package_the_pipeline_registers(pipeline):
    with_champion = execution_of(pipeline, WITH_CHAMPION)
    (register,) = [
        r for r in checks.step_requests(pipeline.definition, with_champion) if r.operation.endswith("Package")
    ]
    constraints = register.params["DriftCheckBaselines"]["ModelDataQuality"]["Constraints"]["S3Uri"]
    assert with_champion.sent[champion.BASELINE_CONSTRAINTS_URI] == constraints


# ----------------------------------------------------------------------------- resolving templates


def test_imports_resolve_to_the_exporting_stacks_values_with_service_arns():
    exporter = {
        "Resources": {"Key": {"Type": "AWS::KMS::Key"}, "Role": {"Type": "AWS::IAM::Role"}},
        "Outputs": {
            "KeyArn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}, "Export": {"Name": "Data:KeyArn"}},
            "Role": {"Value": {"Fn::GetAtt": ["Role", "Arn"]}, "Export": {"Name": {"Fn::Sub": "${AWS::Region}:Role"}}},
        },
    }
    exports = cloudformation_exports([(exporter, "eu-west-1", "111111111111")], service_arns=True)
    assert set(exports) == {"Data:KeyArn", "eu-west-1:Role"}
    assert exports["Data:KeyArn"].startswith("arn:aws:kms:eu-west-1:111111111111:key/")
    assert exports["eu-west-1:Role"] == "arn:aws:iam::111111111111:role/role"
    assert (
        resolve_like_cloudformation({"Fn::ImportValue": "Data:KeyArn"}, {}, exports=exports) == exports["Data:KeyArn"]
    )
    with pytest.raises(KeyError, match="no export 'Other'"):
        resolve_like_cloudformation({"Fn::ImportValue": "Other"}, {}, exports=exports)


def test_conditions_choose_the_branch_and_no_value_removes_the_property():
    template = {"Conditions": {"InChina": {"Fn::Equals": [{"Ref": "AWS::Region"}, "cn-north-1"]}}}
    value = {
        "Partition": {"Fn::If": ["InChina", {"Ref": "AWS::Partition"}, {"Ref": "AWS::NoValue"}]},
        "Name": {"Fn::Sub": ["${Prefix}-${AWS::Region}", {"Prefix": "app"}]},
    }
    assert resolve_like_cloudformation(value, template, region="cn-north-1") == {
        "Partition": "aws-cn",
        "Name": "app-cn-north-1",
    }
    assert resolve_like_cloudformation(value, template, region="eu-west-1") == {"Name": "app-eu-west-1"}
