"""BatchInference: the scoring pipeline, its trigger without champion, its alarms, and least privilege."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from cdk_mlops.constructs.batch_inference import BatchInference, BatchTransformSettings, schedule_period
from cdk_mlops.constructs.common import sagemaker_image_uri
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.pipeline_definition import validate_definition
from tests.quality import cfn_lint_findings, logical_id, nag_findings, resolve_like_cloudformation, statements

ACCOUNT, REGION = "123456789012", "eu-west-1"
PACKAGE = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/churn-models/3"


@dataclass(frozen=True)
class Built:
    stack: cdk.Stack
    store: VersionedDataStore
    scoring: BatchInference
    topic: sns.Topic
    template: Template

    def statements(self, role: iam.IRole) -> list[dict[str, Any]]:
        """The role's statements, resolved (a bucket is ``<logical id lower-cased>``-shaped)."""
        raw = self.template.to_json()
        return [resolve_like_cloudformation(s, raw) for s in statements(self.template, role)]

    def bucket_arn(self) -> str:
        return str(resolve_like_cloudformation({"Fn::GetAtt": [logical_id(self.store.bucket), "Arn"]}, {}))


def build(**overrides: Any) -> tuple[cdk.Stack, VersionedDataStore, BatchInference, sns.Topic]:
    app = cdk.App()
    stack = cdk.Stack(app, "Test", env=cdk.Environment(account=ACCOUNT, region=REGION))
    store = VersionedDataStore(stack, "Data", datasets=["churn"])
    topic = sns.Topic(stack, "Alarms", enforce_ssl=True)
    options: dict[str, Any] = {
        "data_store": store,
        "dataset": "churn",
        "name": "churn-scoring",
        "model_package_arn": PACKAGE,
        "image_uri": sagemaker_image_uri(stack, "xgboost"),
        "schedule": scheduler.ScheduleExpression.expression("cron(0 4 * * ? *)"),
        "alarm_topic": topic,
        **overrides,
    }
    return stack, store, BatchInference(stack, "Scoring", **options), topic


@pytest.fixture(scope="module")
def built() -> Built:
    stack, store, scoring, topic = build(label_column="benign")
    return Built(stack, store, scoring, topic, Template.from_stack(stack))


# --- the pipeline ----------------------------------------------------------------------------------


def test_the_pipeline_runs_model_prepare_input_and_transform_as_its_own_role(built):
    built.template.has_resource_properties(
        "AWS::SageMaker::Pipeline",
        {"PipelineName": "churn-scoring", "RoleArn": {"Fn::GetAtt": [logical_id(built.scoring.pipeline_role), "Arn"]}},
    )
    definition = built.scoring.definition
    assert [(s["Name"], s["Type"]) for s in definition["Steps"]] == [
        ("Model", "Model"),
        ("PrepareInput", "Processing"),
        ("Transform", "Transform"),
    ]
    assert [p["Name"] for p in definition["Parameters"]] == [
        "InputManifestUri",
        "ManifestSha256",
        "DataVersion",
        "TriggerReason",
        "ModelPackageArn",
    ]
    assert definition["Parameters"][-1]["DefaultValue"] == PACKAGE
    found = validate_definition(definition)
    assert found == []


def test_every_step_retries_sagemakers_transient_errors(built):
    for step in built.scoring.definition["Steps"]:
        kinds = {kind for policy in step["RetryPolicies"] for kind in policy["ExceptionType"]}
        assert {"Step.SERVICE_FAULT", "Step.THROTTLING"} <= kinds, step["Name"]
        if step["Type"] != "Model":  # CreateModel starts no job
            assert {"SageMaker.JOB_INTERNAL_ERROR", "SageMaker.CAPACITY_ERROR"} <= kinds, step["Name"]


def test_the_model_is_the_packages_and_the_transform_scores_with_it_into_the_lineage_prefix(built):
    model, prepare, transform = built.scoring.definition["Steps"]
    assert model["Arguments"]["PrimaryContainer"] == {"ModelPackageName": {"Get": "Parameters.ModelPackageArn"}}
    assert model["Arguments"]["ExecutionRoleArn"] == built.scoring.role.role_arn
    arguments = transform["Arguments"]
    assert arguments["ModelName"] == {"Get": "Steps.Model.ModelName"}
    outputs = {
        o["OutputName"]: o["S3Output"]["S3Uri"] for o in prepare["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    }
    # lineage.json and the predictions share one prefix per data version and execution.
    assert arguments["TransformOutput"]["S3OutputPath"] == {
        "Get": "Steps.PrepareInput.ProcessingOutputConfig.Outputs['lineage'].S3Output.S3Uri"
    }
    values = outputs["lineage"]["Std:Join"]["Values"]
    assert values[2:] == [
        "batch-output/churn-scoring",
        {"Get": "Parameters.DataVersion"},
        {"Get": "Execution.PipelineExecutionId"},
    ]
    assert outputs["transform_input"]["Std:Join"]["Values"][-1] == "input"
    key = built.store.encryption_key.key_arn
    assert arguments["TransformOutput"]["KmsKeyId"] == key
    assert arguments["TransformResources"] == {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeKmsKeyId": key}
    assert arguments["TransformInput"]["ContentType"] == "text/csv"
    assert arguments["TransformInput"]["SplitType"] == "Line"
    assert arguments["DataCaptureConfig"] == {
        "DestinationS3Uri": built.scoring.capture_uri,
        "KmsKeyId": key,
        "GenerateInferenceId": True,
    }
    assert "--label-column=benign" in prepare["Arguments"]["AppSpecification"]["ContainerArguments"]


def test_the_monitoring_hook_attributes(built):
    scoring = built.scoring
    bucket = built.store.bucket.bucket_name
    assert scoring.batch_name == "churn-scoring"
    assert scoring.pipeline_name == "churn-scoring"
    assert scoring.capture_uri == f"s3://{bucket}/batch-capture/churn-scoring/"
    assert scoring.model_package_arn == PACKAGE
    assert scoring.data_store is built.store
    assert scoring.output_prefix == "batch-output/churn-scoring/"
    assert scoring.pipeline is scoring.node.find_child("Pipeline")
    assert scoring.alarms[:2] == [scoring.failed_alarm, scoring.missing_run_alarm]


def test_capture_off_leaves_no_capture_config_and_no_capture_grant():
    stack, _, scoring, _ = build(capture=False, schedule=None)
    assert scoring.capture_uri is None
    transform = scoring.definition["Steps"][-1]
    assert "DataCaptureConfig" not in transform["Arguments"]
    assert "batch-capture" not in json.dumps(Template.from_stack(stack).to_json())


# --- least privilege -------------------------------------------------------------------------------


def _by_action(found: list[dict[str, Any]]) -> dict[str, list[Any]]:
    resources: dict[str, list[Any]] = {}
    for statement in found:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        listed = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions:
            resources.setdefault(action, []).extend(listed)
    return resources


def test_the_pipeline_role_creates_the_three_resource_kinds_and_passes_only_the_job_role(built):
    found = built.statements(built.scoring.pipeline_role)
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
    assert [(s["Action"], s["Resource"]) for s in found[:3]] == [
        (["sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:AddTags"], f"{arn}:model/*"),
        (
            [
                "sagemaker:CreateProcessingJob",
                "sagemaker:DescribeProcessingJob",
                "sagemaker:StopProcessingJob",
                "sagemaker:AddTags",
            ],
            f"{arn}:processing-job/*",
        ),
        (
            [
                "sagemaker:CreateTransformJob",
                "sagemaker:DescribeTransformJob",
                "sagemaker:StopTransformJob",
                "sagemaker:AddTags",
            ],
            f"{arn}:transform-job/*",
        ),
    ]
    assert found[3] == {"Action": "sagemaker:DescribeModelPackage", "Effect": "Allow", "Resource": PACKAGE}
    pass_role = found[4]
    assert pass_role["Action"] == "iam:PassRole"
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert pass_role["Resource"] == resolve_like_cloudformation(
        {"Fn::GetAtt": [logical_id(built.scoring.role), "Arn"]}, built.template.to_json()
    )
    assert len(found) == 5
    assert not any(a.startswith("s3:") for s in found for a in _by_action([s]))


def test_the_job_role_writes_only_its_output_and_capture_prefixes(built):
    found = built.statements(built.scoring.role)
    actions = _by_action(found)
    bucket = built.bucket_arn()
    objects = {r.removeprefix(f"{bucket}/") for r in actions["s3:PutObject"] if r != bucket}
    assert objects == {"batch-output/churn-scoring/*", "batch-capture/churn-scoring/*"}
    assert {r for r in actions["s3:DeleteObject"] if r != bucket} == {f"{bucket}/{o}" for o in objects}
    read = {r.removeprefix(f"{bucket}/") for r in actions["s3:GetObject*"] if r != bucket}
    assert read == {"datasets/churn/*", "manifests/churn/*", "artifacts/*", "batch-output/churn-scoring/*"}
    assert actions["sagemaker:DescribeModelPackage"] == [PACKAGE]
    assert sorted(actions["ecr:BatchGetImage"]) == [
        f"arn:aws:ecr:{REGION}:141502667606:repository/sagemaker-scikit-learn",
        f"arn:aws:ecr:{REGION}:141502667606:repository/sagemaker-xgboost",
    ]
    logs = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker"
    assert sorted(actions["logs:PutLogEvents"]) == sorted(
        [f"{logs}/ProcessingJobs", f"{logs}/TransformJobs", f"{logs}/ProcessingJobs:*", f"{logs}/TransformJobs:*"]
    )
    assert set(actions["kms:CreateGrant"]) == {
        resolve_like_cloudformation({"Fn::GetAtt": [logical_id(built.store.encryption_key), "Arn"]}, {})
    }
    # Only the script's asset object is read in the staging bucket.
    assert [r for r in actions["s3:GetObject"] if "assets" in r] == [
        r for r in actions["s3:GetObject"] if r.endswith(".py")
    ]
    wildcard_resources = [r for r in actions["ecr:GetAuthorizationToken"] + actions["cloudwatch:PutMetricData"]]
    assert wildcard_resources == ["*", "*"]
    assert not any(a.startswith(("sagemaker:Create", "iam:")) for a in actions)
    assert "s3:DeleteObjectVersion" not in actions


def test_the_trigger_sends_data_parameters_only_and_may_not_read_the_registry(built):
    trigger = built.scoring.trigger
    variables = built.template.find_resources("AWS::Lambda::Function")[logical_id(trigger.function)]["Properties"][
        "Environment"
    ]["Variables"]
    assert variables["COMPARE_WITH_CHAMPION"] == "false"
    assert "MODEL_PACKAGE_GROUP_NAME" not in variables
    assert variables["PIPELINE_NAME"] == "churn-scoring"
    actions = _by_action(built.statements(trigger.role))
    assert not {"sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage"} & set(actions)
    assert not any("artifacts" in str(r) for r in actions.get("s3:GetObject*", []))
    assert trigger.model_package_group_name is None
    assert trigger.artifacts_prefix is None
    # Data drops, the end of executions and requests reach it; monitor violations and drift do not.
    assert sorted(trigger.rules) == ["DataChanged", "PipelineFinished", "Requested"]
    assert trigger.schedule is not None


def test_without_scoring_on_new_data_no_object_event_reaches_the_trigger():
    _, _, scoring, _ = build(score_on_new_data=False)
    assert sorted(scoring.trigger.rules) == ["PipelineFinished", "Requested"]


# --- reliability -----------------------------------------------------------------------------------


def test_failed_and_missing_runs_alarm_on_the_topic(built):
    topic = {"Ref": logical_id(built.topic)}
    dimensions = [{"Name": "PipelineName", "Value": "churn-scoring"}]
    built.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/Sagemaker/ModelBuildingPipeline",
            "MetricName": "ExecutionFailed",
            "Dimensions": dimensions,
            "Statistic": "Sum",
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [topic],
        },
    )
    # A daily schedule plus 2 hours of slack: 26 hourly periods without a success.
    built.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "ExecutionSucceeded",
            "Dimensions": dimensions,
            "Period": 3600,
            "EvaluationPeriods": 26,
            "Threshold": 1,
            "ComparisonOperator": "LessThanThreshold",
            "TreatMissingData": "breaching",
            "AlarmActions": [topic],
        },
    )
    # The trigger's dead-letter and error alarms notify the same topic.
    for alarm in (built.scoring.trigger.dead_letter_alarm, built.scoring.trigger.errors_alarm):
        resource = built.template.find_resources("AWS::CloudWatch::Alarm")[logical_id(alarm)]
        assert resource["Properties"]["AlarmActions"] == [topic]


def test_without_a_schedule_there_is_no_missing_run_alarm():
    stack, _, scoring, _ = build(schedule=None)
    assert scoring.missing_run_alarm is None
    Template.from_stack(stack).resource_properties_count_is(
        "AWS::CloudWatch::Alarm", {"MetricName": "ExecutionSucceeded"}, 0
    )


@pytest.mark.parametrize(
    ("expression", "hours"),
    [
        ("rate(6 hours)", 6),
        ("rate(1 day)", 24),
        ("rate(30 minutes)", 0.5),
        ("cron(0 4 * * ? *)", 24),
        ("cron(15 * * * ? *)", 1),
        ("cron(0 3 ? * MON *)", 168),
        ("cron(0 3 1 * ? *)", None),
        ("cron(0 3,15 * * ? *)", None),
        ("at(2030-01-01T00:00:00)", None),
    ],
)
def test_schedule_period_reads_rates_and_plain_crons(expression, hours):
    period = schedule_period(scheduler.ScheduleExpression.expression(expression))
    assert (period.to_seconds() / 3600 if period else None) == hours


def test_a_schedule_without_a_period_needs_a_window_and_gets_it():
    with pytest.raises(ConfigurationError, match=r"no single period.*missing_run_window=Duration.hours"):
        build(schedule=scheduler.ScheduleExpression.expression("cron(0 3 1 * ? *)"))
    stack, _, scoring, _ = build(
        schedule=scheduler.ScheduleExpression.expression("cron(0 3 1 * ? *)"), missing_run_window=Duration.days(3)
    )
    assert scoring.missing_run_alarm is not None
    Template.from_stack(stack).has_resource_properties(
        "AWS::CloudWatch::Alarm", {"MetricName": "ExecutionSucceeded", "EvaluationPeriods": 72}
    )


# --- grants and quality ----------------------------------------------------------------------------


def test_grant_output_read_reads_the_output_prefix_only():
    stack, store, scoring, _ = build()
    reader = iam.Role(stack, "Reader", assumed_by=iam.AccountRootPrincipal())
    scoring.grant_output_read(reader)
    template = Template.from_stack(stack)
    raw = template.to_json()
    s3 = [resolve_like_cloudformation(s, raw) for s in statements(template, reader) if "s3:GetObject*" in s["Action"]]
    resources = [r for statement in s3 for r in statement["Resource"]]
    bucket = resolve_like_cloudformation({"Fn::GetAtt": [logical_id(store.bucket), "Arn"]}, {})
    assert sorted(resources) == [bucket, f"{bucket}/batch-output/churn-scoring/*"]
    assert nag_findings(stack) == []


def test_stack_passes_cfn_lint_and_cdk_nag(built):
    assert nag_findings(built.stack) == []
    assert cfn_lint_findings(built.template.to_json(), region=REGION) == []


def test_in_a_vpc_the_jobs_and_the_model_run_in_its_private_subnets():
    from aws_cdk import aws_ec2 as ec2

    app = cdk.App()
    stack = cdk.Stack(app, "Test", env=cdk.Environment(account=ACCOUNT, region=REGION))
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0)
    store = VersionedDataStore(stack, "Data", datasets=["churn"])
    scoring = BatchInference(
        stack,
        "Scoring",
        data_store=store,
        dataset="churn",
        name="churn-scoring",
        model_package_arn=PACKAGE,
        image_uri=sagemaker_image_uri(stack, "xgboost"),
        vpc=vpc,
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
    )
    model, prepare, _ = scoring.definition["Steps"]
    assert len(model["Arguments"]["VpcConfig"]["Subnets"]) == 2
    assert prepare["Arguments"]["NetworkConfig"]["VpcConfig"] == model["Arguments"]["VpcConfig"]
    assert scoring.trigger.security_groups
    # The test's VPC has no flow logs (AwsSolutions-VPC7); what the construct defines is clean.
    assert [f for f in nag_findings(stack) if "/Scoring/" in f] == []


# --- validation ------------------------------------------------------------------------------------


def test_every_invalid_argument_is_named_with_its_value_and_fix_before_any_resource():
    app = cdk.App()
    stack = cdk.Stack(app, "Test", env=cdk.Environment(account=ACCOUNT, region=REGION))
    store = VersionedDataStore(stack, "Data", datasets=["churn"])
    before = len(stack.node.find_all())
    with pytest.raises(ConfigurationError) as caught:
        BatchInference(
            stack,
            "Scoring",
            data_store=store,
            dataset="other",
            name="Churn_Scoring",
            model_package_arn="churn-models/3",
            image_uri="xgboost:latest",
            settings=BatchTransformSettings(instance_type="m5.large", instance_count=0, split_type="Lines"),
            missing_run_window=Duration.hours(5),
        )
    message = str(caught.value)
    assert "Test/Scoring" in message
    for expected in (
        "'other'",
        "name 'Churn_Scoring' is not valid",
        "model_package_arn 'churn-models/3' is not a model package version ARN",
        "image_uri 'xgboost:latest' is not an ECR image URI",
        "settings.instance_type 'm5.large'",
        "settings.instance_count (0)",
        "settings.split_type 'Lines'",
        "missing_run_window is given without schedule",
    ):
        assert expected in message
    # The construct's own node exists (its path is in the message); nothing was defined under it.
    assert len(stack.node.find_all()) == before + 1
    assert stack.node.find_child("Scoring").node.children == []


def test_a_wrong_type_is_refused_by_the_props_check():
    with pytest.raises(ConfigurationError, match=r"capture must be bool"):
        build(capture="yes")


def test_tokens_are_not_rejected():
    stack = cdk.Stack(cdk.App(), "Test")
    store = VersionedDataStore(stack, "Data", datasets=["churn"])
    package = cdk.CfnParameter(stack, "Package").value_as_string
    scoring = BatchInference(
        stack,
        "Scoring",
        data_store=store,
        dataset="churn",
        name="churn-scoring",
        model_package_arn=package,
        image_uri=sagemaker_image_uri(stack, "xgboost"),
    )
    assert scoring.definition["Parameters"][-1]["DefaultValue"] == package
    Template.from_stack(stack).has_resource_properties("AWS::SageMaker::Pipeline", {"PipelineName": "churn-scoring"})
