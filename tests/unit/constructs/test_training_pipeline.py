# mypy: disable-error-code="import-untyped"
# (the SageMaker Python SDK ships no type information)
"""TrainingPipeline: the synthesized definition, registry, least privilege, notifications, validation.

Also MLflow, and pipelines authored with the SageMaker Python SDK (from_sdk_pipeline).
"""

from __future__ import annotations

import ast
import json
import re
import socket
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Capture, Match, Template
from moto import mock_aws

from cdk_mlops import image_uris, sdk
from cdk_mlops import pipeline_definition as pd
from cdk_mlops.constructs import training_pipeline as training_pipeline_module
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.training_pipeline import (
    MLFLOW_CLIENT_REQUIREMENTS,
    MLFLOW_LOGGING_ACTIONS,
    MLFLOW_UI_ACTIONS,
    MlflowServerSize,
    MlflowSettings,
    SdkTrainingPipeline,
    TrainingPipeline,
    mlflow_settings_problems,
)
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.local.pipeline_run import Resolver
from tests.quality import cfn_lint_findings, nag_findings, resolve_like_cloudformation, statements


@dataclass(frozen=True)
class Built:
    stack: cdk.Stack
    store: VersionedDataStore
    training: TrainingPipeline | SdkTrainingPipeline
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


def test_executions_are_experiment_trials_only_where_sagemaker_experiments_is_available(agnostic, regional):
    # GIVEN a pipeline in Zurich, which has every image but no SageMaker Experiments
    zurich = build(cdk.Environment(account="123456789012", region="eu-central-2"))
    # THEN its definition has no PipelineExperimentConfig (executions with one fail there)
    assert "PipelineExperimentConfig" not in json.loads(definition_text(zurich))
    # AND one in eu-west-1 records every execution as a trial of the pipeline's experiment
    assert json.loads(definition_text(regional))["PipelineExperimentConfig"] == {
        "ExperimentName": {"Get": "Execution.PipelineName"},
        "TrialName": {"Get": "Execution.PipelineExecutionId"},
    }
    # AND an environment-agnostic stack, whose region is unknown at synth, keeps it
    assert "PipelineExperimentConfig" in json.loads(definition_text(agnostic))


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
    assert cfn_lint_findings(built.template.to_json(), region="eu-west-1") == []
    assert nag_findings(built.stack) == []


# --------------------------------------------------------------------------------------------
# What SageMaker reads with the pipeline's role before each job starts
# --------------------------------------------------------------------------------------------

EXECUTION_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/churn-training/execution/exec1"


def _resolved(built: Built, value: Any) -> Any:
    """A value of the template, or a token of the stack, as CloudFormation would resolve it."""
    template = built.template.to_json()
    return resolve_like_cloudformation(built.stack.resolve(value), template, region="eu-west-1", service_arns=True)


def _execution(built: Built) -> tuple[dict[str, Any], Resolver]:
    """The deployed definition, and its expressions as one execution started by the retrain trigger sees them."""
    body = built.resource("AWS::SageMaker::Pipeline")["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    definition: dict[str, Any] = json.loads(_resolved(built, body))
    manifest = f"{_resolved(built, built.store.manifest_uri_prefix('churn'))}20260101T000000Z-0123abcd.json"
    resolver = Resolver(definition, parameters={pd.INPUT_MANIFEST_URI: manifest}, execution_arn=EXECUTION_ARN)
    train = next(s for s in definition["Steps"] if s["Name"] == pd.TRAIN)
    output_path = resolver.resolve(train["Arguments"]["OutputDataConfig"]["S3OutputPath"])
    resolver.properties[f"Steps.{pd.TRAIN}.ModelArtifacts.S3ModelArtifacts"] = (
        f"{output_path}/pipelines-exec1-Train-0a1b2c3d/output/model.tar.gz"
    )
    return definition, resolver


def _reads(item: pd.JobS3Input, uri: str) -> list[tuple[str, str, dict[str, str]]]:
    """(action, resource, request context) of each request SageMaker makes for one input."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if item.data_type == "S3Prefix":
        # It lists the prefix, then gets each object under it: an object key, or a folder's files.
        some_object = key if "." in key.rsplit("/", 1)[-1] else f"{key.rstrip('/')}/part-0.csv"
        return [
            ("s3:ListBucket", f"arn:aws:s3:::{bucket}", {"s3:prefix": key}),
            ("s3:GetObject", f"arn:aws:s3:::{bucket}/{some_object}", {}),
        ]
    if item.data_type in ("ManifestFile", "AugmentedManifestFile"):
        return [("s3:GetObject", f"arn:aws:s3:::{bucket}/{key}", {})]
    raise AssertionError(f"{item}: a data type this test does not know; say what SageMaker reads for it")


def _wildcard(pattern: str) -> re.Pattern[str]:
    """An IAM pattern (``*`` any characters, ``?`` one) as a regular expression."""
    return re.compile("^" + ".*".join(re.escape(part).replace(r"\?", ".") for part in pattern.split("*")) + "$")


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _conditions_hold(conditions: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, entries in conditions.items():
        for key, expected in entries.items():
            actual = context.get(key)
            if actual is None or operator not in ("StringEquals", "StringLike"):
                return False  # a key the request does not carry, or an operator this test does not model
            if operator == "StringEquals" and actual not in _listed(expected):
                return False
            if operator == "StringLike" and not any(_wildcard(v).match(actual) for v in _listed(expected)):
                return False
    return True


def _allows(policy: list[dict[str, Any]], action: str, resource: str, context: dict[str, str]) -> bool:
    return any(
        statement["Effect"] == "Allow"
        and any(_wildcard(a.lower()).match(action.lower()) for a in _listed(statement["Action"]))
        and any(_wildcard(r).match(resource) for r in _listed(statement["Resource"]))
        and _conditions_hold(statement.get("Condition", {}), context)
        for statement in policy
    )


@pytest.mark.parametrize("fixture", ["regional", "with_mlflow"])
def test_the_role_may_read_every_job_input_as_sagemaker_reads_it(fixture, request):
    # GIVEN the synthesized definition, resolved for one execution, and the role's policy
    built = request.getfixturevalue(fixture)
    definition, execution = _execution(built)
    policy = _resolved(built, statements(built.template, built.training.role))
    inputs = pd.job_s3_inputs(definition)
    assert {(i.step, i.name) for i in inputs} >= {(pd.PREPROCESS, "code"), (pd.EVALUATE, "code"), (pd.TRAIN, "train")}
    # THEN every request SageMaker makes for every input is allowed
    denied = [
        f"{item.step}/{item.name} ({item.data_type}) {uri}: {action} on {resource} with {context}"
        for item in inputs
        for uri in [execution.resolve(item.s3_uri)]
        for action, resource, context in _reads(item, uri)
        if not _allows(policy, action, resource, context)
    ]
    assert not denied, "\n".join(denied)


def test_the_asset_bucket_is_listed_only_for_the_scripts(with_mlflow):
    # GIVEN
    policy = _resolved(with_mlflow, statements(with_mlflow.template, with_mlflow.training.role))
    assert isinstance(with_mlflow.training, TrainingPipeline)
    asset = with_mlflow.training.scripts["track"]
    bucket = _resolved(with_mlflow, asset.bucket.bucket_arn)
    # THEN the staging bucket, which holds every asset of the account, is listed for the script keys only
    assert _allows(policy, "s3:ListBucket", bucket, {"s3:prefix": asset.s3_object_key})
    assert not _allows(policy, "s3:ListBucket", bucket, {"s3:prefix": ""})
    assert not _allows(policy, "s3:ListBucket", bucket, {"s3:prefix": "0" * 64 + ".zip"})
    assert not _allows(policy, "s3:GetObject", f"{bucket}/{'0' * 64}.zip", {})


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


# --------------------------------------------------------------------------------------------
# MLflow
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def with_mlflow() -> Built:
    stack = cdk.Stack(cdk.App(), "Test", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    store = VersionedDataStore(stack, "Data", datasets=["churn"])
    training = TrainingPipeline(
        stack,
        "Training",
        data_store=store,
        dataset="churn",
        pipeline_name="churn-training",
        mlflow=MlflowSettings(size=MlflowServerSize.MEDIUM, weekly_maintenance_window_start="Sun:03:00"),
    )
    training.grant_mlflow_ui(iam.Role(stack, "Person", assumed_by=iam.AccountRootPrincipal()))
    return Built(stack, store, training, Template.from_stack(stack))


def _policy_actions(built: Built, role: iam.IRole) -> list[dict[str, Any]]:
    statements = Capture()
    built.template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": built.stack.get_logical_id(role.node.default_child)}],  # type: ignore[arg-type]
            "PolicyDocument": {"Statement": statements},
        },
    )
    found: list[dict[str, Any]] = statements.as_array()
    return found


def test_mlflow_tracking_server_stores_artifacts_in_the_data_store(with_mlflow):
    server = with_mlflow.training.mlflow_tracking_server
    role = with_mlflow.training.mlflow_role
    assert server is not None
    assert role is not None
    with_mlflow.template.has_resource(
        "AWS::SageMaker::MlflowTrackingServer",
        {
            "DeletionPolicy": "Retain",
            "Properties": {
                "TrackingServerName": "churn-training-mlflow",
                "TrackingServerSize": "Medium",
                "WeeklyMaintenanceWindowStart": "Sun:03:00",
                "AutomaticModelRegistration": False,
                "RoleArn": {"Fn::GetAtt": [with_mlflow.stack.get_logical_id(role.node.default_child), "Arn"]},
                "ArtifactStoreUri": {
                    "Fn::Join": [
                        "",
                        [
                            "s3://",
                            {"Ref": with_mlflow.stack.get_logical_id(with_mlflow.store.bucket.node.default_child)},
                            "/artifacts/mlflow/churn-training-mlflow/",
                        ],
                    ]
                },
            },
        },
    )
    assert with_mlflow.training.mlflow_artifacts_prefix == "artifacts/mlflow/churn-training-mlflow/"


def test_mlflow_server_role_reaches_only_its_prefix_and_the_key(with_mlflow):
    role = with_mlflow.training.mlflow_role
    assert role is not None
    statements = _policy_actions(with_mlflow, role)
    actions = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert {a.split(":")[0] for a in actions} == {"s3", "kms"}
    object_resources = json.dumps([s["Resource"] for s in statements if "s3:PutObject" in s["Action"]])
    assert "/artifacts/mlflow/churn-training-mlflow/*" in object_resources
    assert '"/*"' not in object_resources


def test_pipeline_role_logs_to_mlflow_without_wildcards(with_mlflow):
    statements = _policy_actions(with_mlflow, with_mlflow.training.role)
    server = with_mlflow.stack.get_logical_id(with_mlflow.training.mlflow_tracking_server)
    mlflow = [s for s in statements if any(str(a).startswith("sagemaker-mlflow:") for a in s["Action"])]
    assert len(mlflow) == 1
    assert mlflow[0]["Action"] == list(MLFLOW_LOGGING_ACTIONS)
    assert mlflow[0]["Resource"] == {"Fn::GetAtt": [server, "TrackingServerArn"]}
    assert not [a for a in MLFLOW_LOGGING_ACTIONS if "*" in a]
    assert "sagemaker-mlflow:AccessUI" not in MLFLOW_LOGGING_ACTIONS
    # AND a retried Track step finds its run again (track.py: MlflowClient().search_runs)
    assert "sagemaker-mlflow:SearchRuns" in MLFLOW_LOGGING_ACTIONS


def test_mlflow_arn_reaches_the_definition_training_and_evaluation(with_mlflow):
    definition = json.loads(definition_text(with_mlflow))
    arn = "arn:aws:test:eu-west-1:123456789012:"
    assert definition["MlflowConfig"]["MlflowExperimentName"] == "churn-training"
    assert definition["MlflowConfig"]["MlflowResourceArn"].startswith(arn)
    steps = {s["Name"]: s for s in definition["Steps"]}
    for name in ("Train", "Evaluate", "Track"):
        assert steps[name]["Arguments"]["Environment"]["MLFLOW_TRACKING_ARN"].startswith(arn)
    assert pd.validate_definition(definition) == []


def test_grant_mlflow_ui_is_scoped_to_the_server(with_mlflow):
    person = with_mlflow.stack.node.find_child("Person")
    server = with_mlflow.stack.get_logical_id(with_mlflow.training.mlflow_tracking_server)
    assert _policy_actions(with_mlflow, person) == [
        {
            "Action": list(MLFLOW_UI_ACTIONS),
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [server, "TrackingServerArn"]},
        }
    ]


def test_mlflow_grants_need_a_tracking_server(agnostic):
    role = iam.Role(cdk.Stack(cdk.App(), "Other"), "R", assumed_by=iam.AccountRootPrincipal())
    with pytest.raises(ConfigurationError, match=r"\[Test/Training\] grant_mlflow_ui: this pipeline has no MLflow"):
        agnostic.training.grant_mlflow_ui(role)


@pytest.mark.parametrize("fixture", ["with_mlflow", "with_logging_image"])
def test_mlflow_stack_passes_cfn_lint_and_cdk_nag(fixture, request):
    built = request.getfixturevalue(fixture)
    assert cfn_lint_findings(built.template.to_json(), region="eu-west-1") == []
    assert nag_findings(built.stack) == []


LOGGING_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlflow-client:2.16.2"


@pytest.fixture(scope="module")
def with_logging_image() -> Built:
    return build(
        cdk.Environment(account="123456789012", region="eu-west-1"),
        mlflow=MlflowSettings(logging_image_uri=LOGGING_IMAGE),
    )


def _track(built: Built) -> dict[str, Any]:
    (track,) = [s for s in json.loads(definition_text(built))["Steps"] if s["Name"] == pd.TRACK]
    return dict(track)


def _script_getters(built: Built) -> list[Any]:
    """The Resource of every s3:GetObject statement of the pipeline role (the script grants)."""
    statements = _policy_actions(built, built.training.role)
    return [s["Resource"] for s in statements if s["Action"] == "s3:GetObject"]


def test_the_track_script_ships_only_with_mlflow(agnostic, with_mlflow):
    # THEN without MLflow: two scripts, no Track step
    assert set(agnostic.training.scripts) == {"preprocess", "evaluate"}
    assert pd.TRACK not in definition_text(agnostic)
    assert len(_script_getters(agnostic)) == 2
    # AND with MLflow: the track script too, readable by the role as exactly that object
    assert isinstance(with_mlflow.training, TrainingPipeline)
    asset = with_mlflow.training.scripts["track"]
    getters = _script_getters(with_mlflow)
    assert len(getters) == 3
    track_object = with_mlflow.stack.resolve(asset.bucket.arn_for_objects(asset.s3_object_key))
    assert track_object in getters
    assert "*" not in json.dumps(getters)


def test_track_runs_the_asset_in_the_sklearn_image_and_installs_the_pins(with_mlflow):
    # GIVEN
    track = _track(with_mlflow)
    app = track["Arguments"]["AppSpecification"]
    asset = with_mlflow.training.scripts["track"]
    file_name = asset.s3_object_key.rsplit("/", 1)[-1]
    # THEN
    assert ".dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:" in app["ImageUri"]
    assert app["ContainerEntrypoint"] == ["python3", f"{pd.CODE_DIR}/{file_name}"]
    code = track["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"]
    assert code.endswith(f"/{file_name}")
    assert [a for a in app["ContainerArguments"] if str(a).startswith("--requirement=")] == [
        f"--requirement={pin}" for pin in MLFLOW_CLIENT_REQUIREMENTS
    ]
    assert "--experiment-name=churn-training" in app["ContainerArguments"]


def test_a_logging_image_installs_nothing_and_may_be_pulled(with_logging_image):
    # GIVEN
    app = _track(with_logging_image)["Arguments"]["AppSpecification"]
    # THEN the image of one's own runs the step, with no pins to install
    assert app["ImageUri"] == LOGGING_IMAGE
    assert not [a for a in app["ContainerArguments"] if str(a).startswith("--requirement")]
    # AND the role may pull it (and only from its repository)
    statements = _policy_actions(with_logging_image, with_logging_image.training.role)
    pulls = [s for s in statements if "ecr:BatchGetImage" in s["Action"]]
    assert len(pulls) == 1
    assert ":repository/mlflow-client" in json.dumps(pulls[0]["Resource"])
    assert ":repository/mlflow-client:" not in json.dumps(pulls[0]["Resource"])


def test_the_default_pins_suit_the_sklearn_image():
    # THEN the pins are exact and valid requirements
    assert all(pd.requirement_problem("pin", pin) is None and "==" in pin for pin in MLFLOW_CLIENT_REQUIREMENTS)
    assert {pin.split("==")[0] for pin in MLFLOW_CLIENT_REQUIREMENTS} == {"mlflow", "sagemaker-mlflow"}
    # AND they were chosen for the Python 3.9 of this image version (mlflow 3.2+ needs 3.10)
    assert image_uris.default_version("sklearn") == "1.2-1", "a new sklearn image: revisit MLFLOW_CLIENT_REQUIREMENTS"
    # AND an image of one's own needs no pins
    assert mlflow_settings_problems(MlflowSettings(client_requirements=(), logging_image_uri=LOGGING_IMAGE), "p") == []


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (MlflowSettings(weekly_maintenance_window_start="Sunday 3am"), "weekly_maintenance_window_start 'Sunday 3am'"),
        (MlflowSettings(tracking_server_name="-bad"), "mlflow.tracking_server_name '-bad' is not valid"),
        (MlflowSettings(mlflow_version="latest"), "mlflow.mlflow_version 'latest' is not a version"),
        (MlflowSettings(size="Huge"), "mlflow.size 'Huge' is not a size"),  # type: ignore[arg-type]
        (MlflowSettings(experiment_name="no spaces"), "mlflow_experiment_name 'no spaces' is not valid"),
        (MlflowSettings(client_requirements=("",)), "mlflow.client_requirements[0] '' is empty"),
        (
            MlflowSettings(client_requirements=("mlflow==2.16.2", "sagemaker-mlflow")),
            "mlflow.client_requirements[1] 'sagemaker-mlflow' is not a pinned requirement; use name==version",
        ),
        (
            MlflowSettings(client_requirements=("--extra-index-url=https://example.com",)),
            "is not a pinned requirement",
        ),
        (
            MlflowSettings(client_requirements=()),
            "mlflow.client_requirements is empty, so the Track step has no MLflow client to install",
        ),
        (
            MlflowSettings(client_requirements="mlflow==2.16.2"),  # type: ignore[arg-type]
            "mlflow.client_requirements 'mlflow==2.16.2' must be a tuple of requirements",
        ),
        (
            MlflowSettings(logging_image_uri="docker.io/me/mlflow:2.16.2"),
            "mlflow.logging_image_uri 'docker.io/me/mlflow:2.16.2' is not an ECR image URI",
        ),
    ],
)
def test_invalid_mlflow_settings_are_configuration_errors(settings, expected):
    with pytest.raises(ConfigurationError) as caught:
        build(mlflow=settings)
    assert str(caught.value).startswith("[Test/Training]")
    assert any(expected in p for p in caught.value.problems), caught.value.problems


# --------------------------------------------------------------------------------------------
# Pipelines authored with the SageMaker Python SDK
# --------------------------------------------------------------------------------------------

EU_WEST_1 = cdk.Environment(account="123456789012", region="eu-west-1")
SKLEARN_EU = image_uris.image_uri("sklearn", "eu-west-1")


def sdk_processing_definition(**arguments: Any) -> dict[str, Any]:
    """A one-step definition as the SDK writes it with the cdk_mlops.sdk placeholders."""
    step_arguments: dict[str, Any] = {
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceType": "ml.m5.large",
                "InstanceCount": 1,
                "VolumeSizeInGB": 30,
                "VolumeKmsKeyId": sdk.KMS_KEY_PLACEHOLDER,
            }
        },
        "AppSpecification": {"ImageUri": SKLEARN_EU},
        "RoleArn": sdk.ROLE_ARN_PLACEHOLDER,
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "out",
                    "S3Output": {
                        "S3Uri": f"s3://{sdk.BUCKET_PLACEHOLDER}/artifacts/churn/out",
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ],
            "KmsKeyId": sdk.KMS_KEY_PLACEHOLDER,
        },
        **arguments,
    }
    return {
        "Version": "2020-12-01",
        "Metadata": {},
        "Parameters": [],
        "MlflowConfig": None,
        "Steps": [{"Name": "Prep", "Type": "Processing", "Arguments": step_arguments}],
    }


def build_sdk(pipeline: Any, env: cdk.Environment | None = EU_WEST_1, **kwargs: Any) -> Built:
    app = cdk.App()
    stack = cdk.Stack(app, "Test", env=env)
    store = VersionedDataStore(stack, "Data", datasets=["churn"])
    args: dict[str, Any] = {"pipeline": pipeline, "data_store": store, "pipeline_name": "churn", **kwargs}
    training = TrainingPipeline.from_sdk_pipeline(stack, "Sdk", **args)
    return Built(stack, store, training, Template.from_stack(stack))


@pytest.fixture(scope="module")
def sdk_pipeline(sdk_config_schema_checked_once: None) -> Any:
    """A pipeline authored with the SDK as the docs show: offline session, placeholders, s3:// scripts."""
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mp.setenv("AWS_DEFAULT_REGION", "eu-west-1")
        mp.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
        session = sdk.pipeline_session("eu-west-1", default_bucket_prefix="artifacts/churn")
        from sagemaker.core.processing import Processor
        from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output
        from sagemaker.core.workflow.parameters import ParameterString
        from sagemaker.mlops.workflow.pipeline import Pipeline
        from sagemaker.mlops.workflow.steps import ProcessingStep

        manifest = ParameterString("InputManifestUri", default_value="")
        processor = Processor(
            role=sdk.ROLE_ARN_PLACEHOLDER,
            image_uri=SKLEARN_EU,
            instance_count=1,
            instance_type="ml.m5.large",
            entrypoint=["python3", "/opt/ml/processing/input/code/prep.py"],
            volume_kms_key=sdk.KMS_KEY_PLACEHOLDER,
            output_kms_key=sdk.KMS_KEY_PLACEHOLDER,
            sagemaker_session=session,
        )
        step_args = processor.run(
            inputs=[
                ProcessingInput(
                    input_name="code",
                    s3_input=ProcessingS3Input(
                        s3_uri="s3://my-assets/prep.py",
                        local_path="/opt/ml/processing/input/code",
                        s3_data_type="S3Prefix",
                        s3_input_mode="File",
                    ),
                ),
                ProcessingInput(
                    input_name="manifest",
                    s3_input=ProcessingS3Input(
                        s3_uri=manifest,
                        local_path="/opt/ml/processing/input/manifest",
                        s3_data_type="S3Prefix",
                        s3_input_mode="File",
                    ),
                ),
            ],
            outputs=[
                # No s3:// URI: the SDK names it under the session's default bucket and prefix.
                ProcessingOutput(
                    output_name="out",
                    s3_output=ProcessingS3Output(
                        s3_uri="/opt/ml/processing/output",
                        local_path="/opt/ml/processing/output",
                        s3_upload_mode="EndOfJob",
                    ),
                )
            ],
        )
        return Pipeline(
            name="churn",
            parameters=[manifest],
            steps=[ProcessingStep(name="Prep", step_args=step_args)],
            sagemaker_session=session,
        )


def test_the_sdk_config_is_still_validated_with_the_schema_checked_once(sdk_config_schema_checked_once, monkeypatch):
    import jsonschema
    from jsonschema.validators import validator_for
    from sagemaker.core.config import config_manager

    schema = config_manager.SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA
    wrong = {"SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": "yes"}}}}
    with pytest.raises(jsonschema.ValidationError) as expected:
        jsonschema.validate(wrong, schema)

    def checked_again(*_: Any) -> None:
        raise AssertionError("the schema was checked again")

    # GIVEN the schema may not be checked again
    monkeypatch.setattr(validator_for(schema), "check_schema", classmethod(checked_again))
    validate = config_manager.SageMakerConfig.validate_sagemaker_config
    # THEN a config of the wrong shape is refused with the error jsonschema.validate raises
    with pytest.raises(jsonschema.ValidationError) as caught:
        validate(wrong)
    assert (caught.value.message, list(caught.value.path)) == (expected.value.message, list(expected.value.path))
    # AND the offline session's config passes
    validate(json.loads(json.dumps(sdk.OFFLINE_SDK_CONFIG)))


@pytest.fixture(scope="module")
def from_sdk(sdk_pipeline) -> Built:
    return build_sdk(sdk_pipeline, datasets=["churn"])


def test_from_sdk_pipeline_substitutes_the_placeholders(from_sdk):
    body = from_sdk.resource("AWS::SageMaker::Pipeline")["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    assert not [p for p in sdk.PLACEHOLDERS if p in json.dumps(body)]
    definition = json.loads(definition_text(from_sdk))
    assert pd.validate_definition(definition) == []
    (step,) = definition["Steps"]
    role = from_sdk.stack.get_logical_id(from_sdk.training.role.node.default_child)
    assert step["Arguments"]["RoleArn"] == f"arn:aws:test:eu-west-1:123456789012:{role.lower()}/arn"
    assert step["Arguments"]["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"].startswith("arn:aws:test:")
    output = step["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]["Std:Join"]["Values"]
    bucket = from_sdk.stack.get_logical_id(from_sdk.store.bucket.node.default_child)
    assert output[:4] == ["s3:/", bucket.lower(), "artifacts/churn", "churn"]


def test_from_sdk_pipeline_role_gets_what_the_steps_need(from_sdk):
    statements = _policy_actions(from_sdk, from_sdk.training.role)
    actions = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert "sagemaker:CreateProcessingJob" in actions
    assert "sagemaker:CreateTrainingJob" not in actions
    assert "sagemaker:CreateModelPackage" not in actions
    assert "*" not in actions
    assert not [a for a in actions if a.endswith(":*")]
    assert "sagemaker-scikit-learn" in json.dumps(statements)
    from_sdk.template.resource_count_is("AWS::SageMaker::ModelPackageGroup", 0)


def test_from_sdk_pipeline_passes_cfn_lint_and_cdk_nag(from_sdk):
    assert cfn_lint_findings(from_sdk.template.to_json(), region="eu-west-1") == []
    assert nag_findings(from_sdk.stack) == []


def test_from_sdk_pipeline_accepts_the_definition_json(sdk_pipeline):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = sdk_pipeline.definition()
    built = build_sdk(text, datasets=["churn"])
    assert pd.validate_definition(json.loads(definition_text(built))) == []


def test_from_sdk_pipeline_registers_into_its_group_and_logs_to_mlflow():
    definition = sdk_processing_definition()
    definition["MlflowConfig"] = {"MlflowResourceArn": sdk.MLFLOW_TRACKING_ARN_PLACEHOLDER, "MlflowExperimentName": "c"}
    definition["Steps"].append(
        {
            "Name": "Register",
            "Type": "RegisterModel",
            "Arguments": {
                "ModelPackageGroupName": sdk.MODEL_PACKAGE_GROUP_PLACEHOLDER,
                "InferenceSpecification": {"Containers": [{"Image": SKLEARN_EU}]},
                "ModelApprovalStatus": "PendingManualApproval",
            },
            "DependsOn": ["Prep"],
        }
    )
    built = build_sdk(json.dumps(definition), mlflow=MlflowSettings())
    text = definition_text(built)
    register = json.loads(text)["Steps"][1]["Arguments"]
    assert register["ModelPackageGroupName"] == "churn-models"
    built.template.has_resource_properties(
        "AWS::SageMaker::ModelPackageGroup", {"ModelPackageGroupName": "churn-models"}
    )
    server = built.stack.get_logical_id(built.training.mlflow_tracking_server)  # type: ignore[arg-type]
    assert json.loads(text)["MlflowConfig"]["MlflowResourceArn"] == (
        f"arn:aws:test:eu-west-1:123456789012:{server.lower()}/trackingserverarn"
    )
    actions = json.dumps(_policy_actions(built, built.training.role))
    assert "sagemaker:CreateModelPackage" in actions
    assert "sagemaker-mlflow:LogMetric" in actions
    assert nag_findings(built.stack) == []


@pytest.mark.parametrize(
    ("definition", "kwargs", "expected"),
    [
        (
            sdk_processing_definition(RoleArn="arn:aws:iam::123456789012:role/admin"),
            {},
            "step 'Prep' runs as 'arn:aws:iam::123456789012:role/admin'; author it with role=",
        ),
        (
            sdk_processing_definition(AppSpecification={"ImageUri": SKLEARN_EU.replace("eu-west-1", "us-east-1")}),
            {},
            "is in us-east-1, but the stack deploys to eu-west-1",
        ),
        (
            sdk_processing_definition(
                ProcessingInputs=[
                    {
                        "InputName": "data",
                        "S3Input": {
                            "S3Uri": f"s3://{sdk.BUCKET_PLACEHOLDER}/datasets/other/",
                            "LocalPath": "/opt/ml/processing/input/data",
                            "S3DataType": "S3Prefix",
                        },
                    }
                ]
            ),
            {},
            "s3://<data store>/datasets/other/ is outside what the pipeline's role may use",
        ),
        (
            {**sdk_processing_definition(), "MlflowConfig": {"MlflowResourceArn": sdk.MLFLOW_TRACKING_ARN_PLACEHOLDER}},
            {},
            "pass mlflow=MlflowSettings()",
        ),
        (
            {
                **sdk_processing_definition(),
                "Steps": [
                    {
                        "Name": "Fail",
                        "Type": "Fail",
                        "Arguments": {"ErrorMessage": {"Get": "Steps.Missing.ProcessingJobName"}},
                    }
                ],
            },
            {},
            "pipeline definition: Steps[0] (Fail).Arguments.ErrorMessage: Get 'Steps.Missing.ProcessingJobName'",
        ),
    ],
)
def test_from_sdk_pipeline_rejects_what_it_cannot_deploy(definition, kwargs, expected):
    with pytest.raises(ConfigurationError) as caught:
        build_sdk(json.dumps(definition), **kwargs)
    assert str(caught.value).startswith("[Test/Sdk]")
    assert any(expected in p for p in caught.value.problems), caught.value.problems


def test_from_sdk_pipeline_refuses_an_experiment_config_where_experiments_is_not_available():
    # GIVEN a definition with a PipelineExperimentConfig, for Zurich (no SageMaker Experiments)
    definition = sdk_processing_definition(
        AppSpecification={"ImageUri": image_uris.image_uri("sklearn", "eu-central-2")}
    )
    definition["PipelineExperimentConfig"] = {
        "ExperimentName": {"Get": "Execution.PipelineName"},
        "TrialName": {"Get": "Execution.PipelineExecutionId"},
    }
    zurich = cdk.Environment(account="123456789012", region="eu-central-2")
    # THEN
    with pytest.raises(ConfigurationError) as caught:
        build_sdk(json.dumps(definition), env=zurich)
    assert any(
        "PipelineExperimentConfig: SageMaker Experiments is not available in eu-central-2" in p
        and "pipeline_experiment_config=None" in p
        for p in caught.value.problems
    ), caught.value.problems
    # AND without it the definition deploys there
    del definition["PipelineExperimentConfig"]
    build_sdk(json.dumps(definition), env=zurich)


def test_from_sdk_pipeline_needs_a_fixed_region():
    with pytest.raises(ConfigurationError, match=r"\[Test/Sdk\] from_sdk_pipeline needs a stack with a fixed region"):
        build_sdk(json.dumps(sdk_processing_definition()), env=None)


def test_from_sdk_pipeline_rejects_a_session_of_another_region(sdk_pipeline):
    with pytest.raises(ConfigurationError) as caught:
        build_sdk(sdk_pipeline, env=cdk.Environment(account="123456789012", region="eu-central-1"))
    assert any("region 'eu-west-1' is not the stack's region 'eu-central-1'" in p for p in caught.value.problems)


def test_from_sdk_pipeline_rejects_invalid_json():
    with pytest.raises(ConfigurationError, match=r"\[Test/Sdk\] pipeline: the pipeline definition is not valid JSON"):
        build_sdk("{not json")


def test_from_sdk_pipeline_refuses_an_sdk_that_calls_aws(sdk_pipeline, monkeypatch):
    # A session with telemetry on would send it while the definition is built.
    monkeypatch.setattr(sdk_pipeline.sagemaker_session, "sagemaker_config", {})
    with pytest.raises(ConfigurationError, match=r"sends telemetry to AWS .* cdk_mlops.sdk.pipeline_session"):
        build_sdk(sdk_pipeline)


def test_offline_refuses_and_records_every_attempt(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("s3", region_name="eu-west-1")
    originals = (socket.create_connection, socket.socket.connect, socket.getaddrinfo)
    with sdk.offline() as attempts:
        with pytest.raises(sdk.AwsCallAttemptedError, match="AWS API call ListBuckets"):
            client.list_buckets()
        with pytest.raises(sdk.AwsCallAttemptedError, match="connect to"):
            socket.create_connection(("127.0.0.1", 9))
    assert attempts == ["AWS API call ListBuckets", "connect to ('127.0.0.1', 9)"]
    assert (socket.create_connection, socket.socket.connect, socket.getaddrinfo) == originals  # restored


def test_the_sdk_is_needed_only_for_pipeline_objects(monkeypatch):
    monkeypatch.setitem(sys.modules, "sagemaker.mlops.workflow.pipeline", None)
    with pytest.raises(ConfigurationError, match=r"install it with: pip install 'cdk-mlops\[sdk\]'"):
        build_sdk(object())
    monkeypatch.setitem(sys.modules, "sagemaker.core.workflow.pipeline_context", None)
    with pytest.raises(sdk.SdkNotInstalledError, match=r"pip install 'cdk-mlops\[sdk\]'"):
        sdk.pipeline_session("eu-west-1")
    build_sdk(json.dumps(sdk_processing_definition()))  # a definition string needs no SDK


def test_the_library_never_imports_the_sdk_at_import_time():
    # training_pipeline is a package: every one of its modules counts.
    package = Path(str(training_pipeline_module.__file__)).parent
    for path in (Path(str(sdk.__file__)), *sorted(package.glob("*.py"))):
        tree = ast.parse(path.read_text())
        top_level = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
        names = [n.name for node in top_level if isinstance(node, ast.Import) for n in node.names]
        names += [node.module or "" for node in top_level if isinstance(node, ast.ImportFrom)]
        assert not [n for n in names if n == "sagemaker" or n.startswith("sagemaker.")], path


def test_grant_read_registry_reads_this_groups_versions_and_passes_cdk_nag_in_the_callers_app():
    # GIVEN a team's own role in its app, granted the registry of a pipeline
    stack = cdk.Stack(cdk.App(), "Team")
    store = VersionedDataStore(stack, "Data", datasets=["churn"])
    training = TrainingPipeline(stack, "Training", data_store=store, dataset="churn", pipeline_name="churn-training")
    reader = iam.Role(stack, "Reader", assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"))
    training.grant_read_registry(reader)
    # THEN the role reads the group and its versions only
    policies = Template.from_stack(stack).find_resources(
        "AWS::IAM::Policy",
        {"Properties": {"Roles": [{"Ref": stack.get_logical_id(cast(cdk.CfnElement, reader.node.default_child))}]}},
    )
    [(statement,)] = [p["Properties"]["PolicyDocument"]["Statement"] for p in policies.values()]
    # Each is a Fn::Join of the partition, region and account with the resource, which ends the text.
    arns = [json.dumps(resource) for resource in statement["Resource"]]
    assert [arn.split(":")[-1] for arn in arns] == [
        'model-package-group/churn-training-models"]]}',
        'model-package/churn-training-models/*"]]}',
    ]
    assert sorted(statement["Action"]) == [
        "sagemaker:DescribeModelPackage",
        "sagemaker:DescribeModelPackageGroup",
        "sagemaker:ListModelPackages",
    ]
    # AND cdk-nag finds nothing on it: the group's version wildcard is acknowledged by the method itself
    assert [f for f in nag_findings(stack) if "/Reader/" in f] == []
