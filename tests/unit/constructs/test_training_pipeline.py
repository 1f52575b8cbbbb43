"""TrainingPipeline: the synthesized definition, registry, least privilege, notifications, validation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Capture, Match, Template
from moto import mock_aws

from cdk_mlops import pipeline_definition as pd
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.training_pipeline import TrainingPipeline
from cdk_mlops.errors import ConfigurationError
from tests.quality import cfn_lint_errors, nag_findings, resolve_like_cloudformation


@dataclass(frozen=True)
class Built:
    stack: cdk.Stack
    store: VersionedDataStore
    training: TrainingPipeline
    template: Template

    def resource(self, type_: str) -> dict[str, Any]:
        (resource,) = self.template.find_resources(type_).values()
        return dict(resource)


def build(env: cdk.Environment | None = None, **kwargs: Any) -> Built:
    app = cdk.App()
    stack = cdk.Stack(app, "Test", env=env)
    store = VersionedDataStore(stack, "Data", datasets=["churn"])
    args: dict[str, Any] = {"data_store": store, "dataset": "churn", "pipeline_name": "churn-training", **kwargs}
    training = TrainingPipeline(stack, "Training", **args)
    return Built(stack, store, training, Template.from_stack(stack))


@pytest.fixture(scope="module")
def agnostic() -> Built:
    return build(cross_account_read_accounts=["111122223333"])


@pytest.fixture(scope="module")
def regional() -> Built:
    return build(
        cdk.Environment(account="123456789012", region="eu-west-1"),
        auto_approve=True,
        training_image_uri="123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-algo:1.0",
        source_revision="abc1234",
    )


def definition_text(built: Built) -> str:
    """The definition body with every token replaced by a placeholder (as CloudFormation would resolve it)."""
    body = built.resource("AWS::SageMaker::Pipeline")["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    text: str = resolve_like_cloudformation(body, built.template.to_json(), region="eu-west-1")
    return text


def test_definition_is_valid_and_has_every_step(agnostic):
    definition = json.loads(definition_text(agnostic))
    assert pd.validate_definition(definition) == []
    names = json.dumps(definition["Steps"])
    for step in pd.STEP_NAMES:
        assert f'"Name": "{step}"' in names, step
    assert {p["Name"] for p in definition["Parameters"]} >= {
        "InputManifestUri",
        "ManifestSha256",
        "DataVersion",
        "TriggerReason",
        "ModelApprovalStatus",
        "ChampionMetric",
    }


def test_approval_defaults_to_a_person_and_is_automatic_only_when_asked(agnostic, regional):
    def approval(built: Built) -> str:
        params = json.loads(definition_text(built))["Parameters"]
        return str(next(p["DefaultValue"] for p in params if p["Name"] == "ModelApprovalStatus"))

    assert approval(agnostic) == "PendingManualApproval"
    assert approval(regional) == "Approved"


def test_registration_records_lineage_to_the_data_manifest(regional):
    text = definition_text(regional)
    register = json.dumps(json.loads(text))
    assert "CustomerMetadataProperties" in register
    assert '"Get": "Parameters.InputManifestUri"' in register
    assert '"Get": "Parameters.ManifestSha256"' in register
    assert '"Get": "Execution.PipelineExecutionArn"' in register
    assert "abc1234" in register


def test_region_agnostic_stack_looks_images_up_by_region(agnostic):
    mappings = agnostic.template.to_json()["Mappings"]
    assert any("eu-west-1" in m for m in mappings.values())
    assert "sagemaker-xgboost" in definition_text(agnostic)


def test_fixed_region_stack_uses_concrete_images_and_brings_its_own_training_image(regional):
    text = definition_text(regional)
    assert "123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-algo:1.0" in text
    assert ".dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:" in text
    assert "Mappings" not in regional.template.to_json()


def test_model_package_group_is_retained_and_readable_cross_account(agnostic):
    agnostic.template.has_resource(
        "AWS::SageMaker::ModelPackageGroup",
        {
            "DeletionPolicy": "Retain",
            "Properties": Match.object_like(
                {
                    "ModelPackageGroupName": "churn-training-models",
                    "ModelPackageGroupPolicy": Match.object_like(
                        {"Statement": [Match.object_like({"Principal": {"AWS": [Match.any_value()]}})]}
                    ),
                }
            ),
        },
    )


def test_role_is_least_privilege(agnostic):
    role = agnostic.template.to_json()["Resources"][
        agnostic.stack.get_logical_id(agnostic.training.role.node.default_child)
    ]
    assert "ManagedPolicyArns" not in role["Properties"]
    statements = Capture()
    agnostic.template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": agnostic.stack.get_logical_id(agnostic.training.role.node.default_child)}],
            "PolicyDocument": {"Statement": statements},
        },
    )
    actions = [
        a for s in statements.as_array() for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]
    assert "*" not in actions
    assert not [a for a in actions if a.endswith(":*")]
    assert "sagemaker:CreateModelPackage" in actions
    assert "iam:PassRole" in actions


def test_failed_executions_notify_an_encrypted_topic_and_alarm(agnostic):
    agnostic.template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    agnostic.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": Match.object_like(
                {"detail": Match.object_like({"currentPipelineExecutionStatus": ["Failed"]})}
            )
        },
    )
    agnostic.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/Sagemaker/ModelBuildingPipeline",
            "MetricName": "ExecutionFailed",
            "Dimensions": [{"Name": "PipelineName", "Value": "churn-training"}],
        },
    )


def test_grant_start_execution_is_scoped_to_the_pipeline(agnostic):
    stack = cdk.Stack(cdk.App(), "Grants")
    store = VersionedDataStore(stack, "Data")
    training = TrainingPipeline(stack, "Training", data_store=store, dataset="churn", pipeline_name="p")
    role = iam.Role(stack, "Starter", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    training.grant_start_execution(role)
    Template.from_stack(stack).has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": stack.get_logical_id(role.node.default_child)}],  # type: ignore[arg-type]
            "PolicyDocument": {
                "Statement": [
                    Match.object_like(
                        {
                            "Action": ["sagemaker:StartPipelineExecution", "sagemaker:ListPipelineExecutions"],
                            "Resource": Match.any_value(),
                        }
                    )
                ]
            },
        },
    )


@pytest.mark.parametrize("fixture", ["agnostic", "regional"])
def test_stack_passes_cfn_lint_and_cdk_nag(fixture, request):
    built = request.getfixturevalue(fixture)
    assert cfn_lint_errors(built.template.to_json(), region="eu-west-1") == []
    assert nag_findings(built.stack) == []


@mock_aws
def test_synthesized_definition_creates_and_starts_in_sagemaker(regional, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("sagemaker")
    client.create_pipeline(
        PipelineName="churn-training",
        PipelineDefinition=definition_text(regional),
        RoleArn="arn:aws:iam::123456789012:role/training",
        ClientRequestToken="create-churn-training-0000000000001",
    )
    execution = client.start_pipeline_execution(
        PipelineName="churn-training",
        PipelineParameters=[
            {"Name": "InputManifestUri", "Value": "s3://bucket/manifests/churn/20260101T000000Z-abc.json"},
            {"Name": "ManifestSha256", "Value": "a" * 64},
        ],
        ClientRequestToken="start-churn-training-00000000000001",
    )
    params = client.list_pipeline_parameters_for_execution(PipelineExecutionArn=execution["PipelineExecutionArn"])
    assert {p["Name"] for p in params["PipelineParameters"]} >= {"InputManifestUri", "ManifestSha256"}


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"settings": pd.TrainingSettings(metric_threshold=1.5)}, "metric_threshold 1.5 is outside the range of auc"),
        ({"settings": pd.TrainingSettings(training_instance_count=0)}, "training_instance_count 0 must be a whole"),
        ({"settings": pd.TrainingSettings(training_instance_type="ml.zz9.large")}, "ml.zz9.large"),
        (
            {"settings": pd.TrainingSettings(use_spot_instances=True, max_wait_seconds=30000)},
            "checkpoint",
        ),
        ({"pipeline_name": "Churn_Training"}, "pipeline_name 'Churn_Training' is not valid"),
        ({"cross_account_read_accounts": ["123"]}, "cross_account_read_accounts: '123' is not a 12-digit"),
        ({"training_image_uri": "docker.io/me/algo:1"}, "is not an ECR image URI"),
        ({"dataset": "../etc"}, "dataset: "),
    ],
)
def test_invalid_settings_name_the_construct_value_and_fix(kwargs, expected):
    with pytest.raises(ConfigurationError) as caught:
        build(**kwargs)
    assert str(caught.value).startswith("[Test/Training]")
    assert any(expected in p for p in caught.value.problems), caught.value.problems


def test_unknown_region_for_builtin_images_is_a_configuration_error():
    with pytest.raises(
        ConfigurationError, match=r"\[Test/Training\] no xgboost image is published in region 'eusc-de-east-1'"
    ):
        build(cdk.Environment(account="123456789012", region="eusc-de-east-1"))
