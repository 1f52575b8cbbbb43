"""Guardrail MLOPS-007 on pipeline definitions and Lambda functions; MLOPS-008 on custom-resource providers."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker

from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.retrain_trigger import RetrainTrigger
from cdk_mlops.constructs.training_pipeline import TrainingPipeline
from cdk_mlops.guardrails import RULES, GuardrailSettings, StackView, apply_guardrails, evaluate

ISOLATED = GuardrailSettings(require_network_isolation=True, disabled=frozenset(r.id for r in RULES) - {"MLOPS-007"})
OPEN = GuardrailSettings(disabled=ISOLATED.disabled)
MLOPS_008 = GuardrailSettings(disabled=frozenset(r.id for r in RULES) - {"MLOPS-008"})

SUBNETS = {"Ref": "Subnet1"}
GROUP = {"Fn::GetAtt": ["Group", "GroupId"]}
VPC = {"Subnets": ["__subnet__"], "SecurityGroupIds": ["__group__"]}


def findings(resources: dict[str, Any], settings: GuardrailSettings = ISOLATED) -> list[str]:
    view = StackView({"Resources": resources})
    return [f"{f.rule_id} {f.logical_id}: {f.message}" for f in evaluate(view, settings)]


def pipeline(body: Any) -> dict[str, Any]:
    return {"Pipeline": {"Type": "AWS::SageMaker::Pipeline", "Properties": {"PipelineDefinition": body}}}


def joined(definition: dict[str, Any]) -> dict[str, Any]:
    """``definition`` as CDK's ``to_json_string`` renders it: a Fn::Join of JSON text and tokens.

    The strings ``"__subnet__"`` and ``"__group__"`` (quotes included) become references, as
    list items outside any JSON string; ``__bucket__`` inside a string becomes a reference too.
    """
    text = json.dumps(definition)
    parts: list[Any] = []
    for piece in text.replace('"__subnet__"', "\0S\0").replace('"__group__"', "\0G\0").split("\0"):
        if piece == "S":
            parts.append(SUBNETS)
        elif piece == "G":
            parts.append(GROUP)
        else:
            head, *rest = piece.split("__bucket__")
            parts.append(head)
            for tail in rest:
                parts += [{"Ref": "Bucket"}, tail]
    return {"PipelineDefinitionBody": {"Fn::Join": ["", parts]}}


def step(name: str, kind: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"Name": name, "Type": kind, "Arguments": arguments}


def processing(name: str, *, network: bool, kind: str = "Processing") -> dict[str, Any]:
    arguments: dict[str, Any] = {"ProcessingOutputConfig": {"Outputs": [{"S3Output": {"S3Uri": "s3://__bucket__/x"}}]}}
    if network:
        arguments["NetworkConfig"] = {"VpcConfig": VPC}
    return step(name, kind, arguments)


def training(name: str, *, network: bool) -> dict[str, Any]:
    return step(name, "Training", {"VpcConfig": VPC} if network else {"StoppingCondition": {}})


def definition(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2020-12-01", "Parameters": [{"Name": "P", "Type": "String"}], "Steps": list(steps)}


def gate(if_steps: list[dict[str, Any]]) -> dict[str, Any]:
    return step("Gate", "Condition", {"Conditions": [], "IfSteps": if_steps, "ElseSteps": []})


# --- pipelines ------------------------------------------------------------------------------------------


def test_a_pipeline_whose_jobs_have_no_network_configuration_fails_naming_each_step():
    resources = pipeline(
        joined(
            definition(
                processing("Preprocess", network=False),
                training("Train", network=False),
                processing("Baseline", network=True, kind="QualityCheck"),
                gate([processing("Explain", network=False, kind="ClarifyCheck")]),
            )
        )
    )
    (finding,) = findings(resources)
    assert finding.startswith("MLOPS-007 Pipeline: the environment requires network isolation")
    assert "'Preprocess' (Processing: no NetworkConfig.VpcConfig with Subnets and SecurityGroupIds)" in finding
    assert "'Train' (Training: no VpcConfig with Subnets and SecurityGroupIds)" in finding
    assert "'Explain' (ClarifyCheck: " in finding  # nested in a Condition step
    assert "Baseline" not in finding
    assert "vpc, vpc_subnets and security_groups" in finding


def test_a_pipeline_whose_every_job_runs_in_the_vpc_passes():
    resources = pipeline(
        joined(
            definition(
                processing("Preprocess", network=True),
                training("Train", network=True),
                step("Register", "RegisterModel", {}),
                gate([processing("Check", network=True, kind="QualityCheck")]),
            )
        )
    )
    assert findings(resources) == []


def test_a_definition_given_as_a_plain_string_is_checked_too():
    text = json.dumps(definition(training("Train", network=False)))
    (finding,) = findings(pipeline({"PipelineDefinitionBody": text}))
    assert "'Train' (Training: " in finding


def test_a_definition_built_with_fn_sub_is_checked():
    def sub(*steps: dict[str, Any]) -> dict[str, Any]:
        text = json.dumps(definition(*steps)).replace("__subnet__", "${Subnet}").replace("__group__", "${Group}")
        # ${!...} is a literal "${...}" in Fn::Sub, not a variable
        text = text.replace('"2020-12-01"', '"2020-12-01", "Note": "${!NotAVariable} in ${AWS::Region}"')
        return {"PipelineDefinitionBody": {"Fn::Sub": [text, {"Subnet": SUBNETS, "Group": GROUP}]}}

    (finding,) = findings(pipeline(sub(training("Train", network=False))))
    assert "'Train' (Training: " in finding
    assert findings(pipeline(sub(training("Train", network=True)))) == []


def test_empty_subnets_or_groups_do_not_count_as_a_vpc():
    empty = step("Train", "Training", {"VpcConfig": {"Subnets": [], "SecurityGroupIds": ["sg-1"]}})
    (finding,) = findings(pipeline({"PipelineDefinitionBody": json.dumps(definition(empty))}))
    assert "'Train' (Training: " in finding


def test_tuning_needs_a_vpc_in_every_training_job_definition():
    arguments = {"TrainingJobDefinitions": [{"VpcConfig": VPC}, {"StaticHyperParameters": {}}]}
    (finding,) = findings(pipeline(joined(definition(step("Tune", "Tuning", arguments)))))
    assert "'Tune' (Tuning: no VpcConfig with Subnets and SecurityGroupIds in every training job definition)" in (
        finding
    )
    ok = {"TrainingJobDefinition": {"VpcConfig": VPC}}
    assert findings(pipeline(joined(definition(step("Tune", "Tuning", ok))))) == []


def test_a_transform_runs_in_the_network_of_its_model():
    def transform_of(model: Any) -> dict[str, Any]:
        return step("Score", "Transform", {"ModelName": model, "TransformInput": {}})

    model_step = step("Model", "Model", {"VpcConfig": VPC, "PrimaryContainer": {}})
    from_step = {"Get": "Steps.Model.ModelName"}
    assert findings(pipeline(joined(definition(model_step, transform_of(from_step))))) == []

    open_model = step("Model", "Model", {"PrimaryContainer": {}})
    (finding,) = findings(pipeline(joined(definition(open_model, transform_of(from_step)))))
    assert "'Score' (Transform: its model, from step 'Model', has no VpcConfig" in finding

    (finding,) = findings(pipeline(joined(definition(transform_of("some-model")))))
    assert "'Score' (Transform: model 'some-model' is not created in this pipeline or stack" in finding


def test_a_transform_of_a_model_of_the_same_stack_is_left_to_that_model():
    # CDK renders the model's name as a reference inside the JSON string
    body = {
        "PipelineDefinitionBody": {
            "Fn::Join": [
                "",
                [
                    '{"Version": "2020-12-01", "Steps": [{"Name": "Score", "Type": "Transform", '
                    '"Arguments": {"ModelName": "',
                    {"Fn::GetAtt": ["Model", "ModelName"]},
                    '"}}]}',
                ],
            ]
        }
    }
    model = {
        "Type": "AWS::SageMaker::Model",
        "Properties": {"VpcConfig": {"Subnets": ["s"]}, "EnableNetworkIsolation": True},
    }
    assert findings({**pipeline(body), "Model": model}) == []


def test_a_definition_in_s3_cannot_be_checked_offline():
    body = {"PipelineDefinitionS3Location": {"Bucket": "b", "Key": "pipeline.json"}}
    (finding,) = findings(pipeline(body))
    assert "PipelineDefinitionS3Location" in finding
    assert "cannot be checked offline" in finding


def test_a_definition_that_is_not_json_is_reported():
    (finding,) = findings(pipeline({"PipelineDefinitionBody": "{not json"}))
    assert "is not JSON" in finding


def test_a_reference_outside_any_json_string_still_parses():
    # e.g. a number or list parameter rendered as a bare reference
    body = {
        "PipelineDefinitionBody": {
            "Fn::Join": [
                "",
                [
                    '{"Version": "2020-12-01", "Steps": [{"Name": "Train", "Type": "Training", "Arguments": {"X": ',
                    {"Ref": "N"},
                    "}}]}",
                ],
            ]
        }
    }
    (finding,) = findings(pipeline(body))
    assert "'Train' (Training: " in finding


# --- Lambda functions and monitoring schedules -----------------------------------------------------------


def function(vpc: dict[str, Any] | None) -> dict[str, Any]:
    props: dict[str, Any] = {"Runtime": "python3.14"}
    if vpc is not None:
        props["VpcConfig"] = vpc
    return {"Fn": {"Type": "AWS::Lambda::Function", "Properties": props}}


def test_a_function_outside_any_vpc_fails():
    (finding,) = findings(function(None))
    assert finding.startswith("MLOPS-007 Fn: the environment requires network isolation")
    assert "VpcConfig SubnetIds and SecurityGroupIds" in finding


def test_a_function_needs_both_subnets_and_security_groups():
    assert len(findings(function({"SubnetIds": [SUBNETS]}))) == 1
    assert findings(function({"SubnetIds": [SUBNETS], "SecurityGroupIds": [GROUP]})) == []


def test_an_inline_monitoring_job_needs_the_vpc_and_isolation():
    def schedule(network: dict[str, Any]) -> dict[str, Any]:
        definition = {"MonitoringJobDefinition": {"NetworkConfig": network}}
        return {
            "Schedule": {
                "Type": "AWS::SageMaker::MonitoringSchedule",
                "Properties": {"MonitoringScheduleConfig": definition},
            }
        }

    assert len(findings(schedule({}))) == 1
    assert findings(schedule({"VpcConfig": VPC, "EnableNetworkIsolation": True})) == []
    by_name = {
        "Schedule": {
            "Type": "AWS::SageMaker::MonitoringSchedule",
            "Properties": {"MonitoringScheduleConfig": {"MonitoringJobDefinitionName": "d"}},
        }
    }
    assert findings(by_name) == []  # the job definition resource is checked itself


def test_without_required_isolation_nothing_is_checked():
    resources = {
        **pipeline(joined(definition(training("Train", network=False)))),
        **function(None),
        "Other": pipeline({"PipelineDefinitionS3Location": {"Bucket": "b", "Key": "k"}})["Pipeline"],
    }
    assert findings(resources, OPEN) == []


# --- MLOPS-008 and custom-resource providers ---------------------------------------------------------------


def provider(*, invoked_otherwise: bool) -> dict[str, Any]:
    resources: dict[str, Any] = {
        "Provider": {"Type": "AWS::Lambda::Function", "Properties": {"Runtime": "python3.14"}},
        "Lookup": {"Type": "Custom::Lookup", "Properties": {"ServiceToken": {"Fn::GetAtt": ["Provider", "Arn"]}}},
    }
    if invoked_otherwise:
        resources["Invoke"] = {
            "Type": "AWS::Lambda::Permission",
            "Properties": {"FunctionName": {"Fn::GetAtt": ["Provider", "Arn"]}, "Principal": "events.amazonaws.com"},
        }
    return resources


def test_a_custom_resource_provider_needs_no_failure_destination():
    assert findings(provider(invoked_otherwise=False), MLOPS_008) == []


def test_a_provider_that_something_else_invokes_still_needs_one():
    (finding,) = findings(provider(invoked_otherwise=True), MLOPS_008)
    assert "no dead-letter queue or on-failure destination" in finding


def test_a_provider_still_needs_the_runtime():
    resources = provider(invoked_otherwise=False)
    resources["Provider"]["Properties"]["Runtime"] = "nodejs24.x"
    (finding,) = findings(resources, MLOPS_008)
    assert "runtime 'nodejs24.x' is not 'python3.14'" in finding
    assert "dead-letter" not in finding


# --- at synth -------------------------------------------------------------------------------------------


def isolated_app(build: Any) -> cdk.App:
    app = cdk.App()
    stage = cdk.Stage(app, "Prod")
    stack = cdk.Stack(stage, "Training")
    build(stack)
    apply_guardrails(stage, ISOLATED)
    return app


def test_an_isolated_environment_whose_pipeline_has_no_network_fails_synth_naming_the_steps():
    def build(stack: cdk.Stack) -> None:
        store = VersionedDataStore(stack, "Data", datasets=["churn"])
        TrainingPipeline(stack, "Training", data_store=store, dataset="churn", pipeline_name="churn-training")

    with pytest.raises(RuntimeError) as caught:
        isolated_app(build).synth()
    report = str(caught.value)
    assert "MLOPS-007: the environment requires network isolation" in report
    for name in ("'Preprocess' (Processing", "'Train' (Training", "'Evaluate' (Processing"):
        assert name in report
    assert "Prod/Training/Training/Pipeline" in report


def test_an_isolated_environment_whose_jobs_and_functions_are_in_the_vpc_synthesizes():
    def build(stack: cdk.Stack) -> None:
        vpc = ec2.Vpc(
            stack,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[ec2.SubnetConfiguration(name="jobs", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)],
        )
        group = ec2.SecurityGroup(stack, "Jobs", vpc=vpc)
        network = {"Subnets": vpc.select_subnets().subnet_ids, "SecurityGroupIds": [group.security_group_id]}
        body = definition(
            step("Preprocess", "Processing", {"NetworkConfig": {"VpcConfig": network}}),
            step("Train", "Training", {"VpcConfig": network}),
        )
        role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
        sagemaker.CfnPipeline(
            stack,
            "Pipeline",
            pipeline_name="churn-training",
            role_arn=role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": stack.to_json_string(body)},
        )
        store = VersionedDataStore(stack, "Data", datasets=["churn"])
        RetrainTrigger(stack, "Retrain", data_store=store, datasets=["churn"], pipeline_name="churn-training", vpc=vpc)

    isolated_app(build).synth()
