"""ModelEndpoint: kinds, capture, rollout and rollback, autoscaling, schedules, grants, alarms, validation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import Duration, Token
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Annotations, Capture, Match, Template

from cdk_mlops.compliance import synth_app, validation_failures
from cdk_mlops.config import EndpointKind
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.model_endpoint import (
    DataCaptureSettings,
    ErrorCountThreshold,
    LatencyThreshold,
    ModelEndpoint,
    RealtimeSettings,
    RolloutSettings,
    ScaleDownSchedule,
    ServerlessSettings,
    TrafficShift,
)
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.guardrails import GuardrailSettings, StackView, apply_guardrails, evaluate
from tests.quality import actions_of, cfn_lint_findings, logical_id, nag_findings, statements

ENV = cdk.Environment(account="123456789012", region="eu-west-1")
PACKAGE_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-training-models/3"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/xgboost-inference:1.7-1"
DIGEST_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml/churn-xgb@sha256:" + "a" * 64
ARTIFACT_KEY = "artifacts/churn-training/model.tar.gz"
TAGS = {"project": "churn", "environment": "test", "owner": "ml-team"}


def resource_of(template: Template, type_: str, construct: Any) -> dict[str, Any]:
    resource: dict[str, Any] = template.to_json()["Resources"][logical_id(construct)]
    assert resource["Type"] == type_
    return resource


def tag(scope: cdk.App) -> None:
    for key, value in TAGS.items():
        cdk.Tags.of(scope).add(key, value)


@dataclass(frozen=True)
class Prod:
    """A prod-shaped platform: data store in one stack, a realtime endpoint in another."""

    assembly: cdk.cx_api.CloudAssembly
    data: cdk.Stack
    serving: cdk.Stack
    store: VersionedDataStore
    endpoint: ModelEndpoint
    topic: sns.Topic
    kpi_alarm: cw.Alarm
    invoker: iam.Role
    template: Template
    raw: dict[str, Any]


@pytest.fixture(scope="module")
def prod() -> Prod:
    app = cdk.App()
    data = cdk.Stack(app, "Data", env=ENV, termination_protection=True)
    store = VersionedDataStore(data, "Store", datasets=["churn"])
    serving = cdk.Stack(app, "Serving", env=ENV, termination_protection=True)
    package = cdk.CfnParameter(serving, "ModelPackageArn", type="String").value_as_string
    vpc = ec2.Vpc.from_vpc_attributes(
        serving,
        "Vpc",
        vpc_id="vpc-0123456789abcdef0",
        availability_zones=["eu-west-1a", "eu-west-1b"],
        private_subnet_ids=["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
    )
    topic = sns.Topic(
        serving, "Alerts", master_key=kms.Key(serving, "AlertsKey", enable_key_rotation=True), enforce_ssl=True
    )
    kpi_alarm = cw.Alarm(
        serving,
        "ConversionsAlarm",
        metric=cw.Metric(namespace="Churn", metric_name="Conversions", statistic="Sum"),
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
    )
    endpoint = ModelEndpoint(
        serving,
        "Endpoint",
        endpoint_name="churn",
        data_store=store,
        model_package_arn=package,
        image_uri=DIGEST_IMAGE,
        kind=EndpointKind.REALTIME,
        realtime=RealtimeSettings(
            instance_type="ml.c5.xlarge",
            initial_instance_count=3,
            min_capacity=2,
            max_capacity=6,
            target_invocations_per_instance=750,
            scale_in_cooldown=Duration.minutes(10),
            scale_out_cooldown=Duration.minutes(2),
        ),
        data_capture=DataCaptureSettings(sampling_percentage=50),
        rollout=RolloutSettings(canary_size_percent=20, wait=Duration.minutes(15)),
        require_rollback_alarms=True,
        additional_rollback_alarms=[kpi_alarm],
        vpc=vpc,
        add_latency_alarm={
            "Warning": LatencyThreshold(max_latency=Duration.millis(200)),
            "Critical": LatencyThreshold(max_latency=Duration.millis(500), statistic="p99"),
        },
        add_5xx_alarm={"Critical": ErrorCountThreshold(max_error_count=10)},
        alarm_topic=topic,
    )
    invoker = iam.Role(serving, "Invoker", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    endpoint.grant_invoke(invoker)
    tag(app)
    apply_guardrails(app, GuardrailSettings(prod=True, require_network_isolation=True))
    assembly = synth_app(app)
    raw = assembly.get_stack_artifact(serving.artifact_id).template
    return Prod(assembly, data, serving, store, endpoint, topic, kpi_alarm, invoker, Template.from_json(raw), raw)


@dataclass(frozen=True)
class NonProd:
    """Dev and staging shapes in one stack: serverless, scheduled realtime, local-storage GPU."""

    assembly: cdk.cx_api.CloudAssembly
    stack: cdk.Stack
    store: VersionedDataStore
    dev: ModelEndpoint
    staging: ModelEndpoint
    gpu: ModelEndpoint
    template: Template
    raw: dict[str, Any]


@pytest.fixture(scope="module")
def nonprod() -> NonProd:
    app = cdk.App()
    stack = cdk.Stack(app, "NonProd")
    store = VersionedDataStore(stack, "Store", datasets=["churn"])
    dev = ModelEndpoint(
        stack,
        "Dev",
        endpoint_name="churn-dev",
        data_store=store,
        model_data_url=store.s3_uri(ARTIFACT_KEY),
        image_uri=IMAGE,
        environment={"SAGEMAKER_PROGRAM": "inference.py"},
        kind=EndpointKind.SERVERLESS,
        serverless=ServerlessSettings(memory_size_in_mb=3072, max_concurrency=20, provisioned_concurrency=2),
        rollout=RolloutSettings.immediate(),
    )
    opaque_image = cdk.CfnParameter(stack, "ImageUri", type="String").value_as_string
    staging = ModelEndpoint(
        stack,
        "Staging",
        endpoint_name="churn-staging",
        data_store=store,
        model_data_url=store.s3_uri(ARTIFACT_KEY),
        image_uri=opaque_image,
        realtime=RealtimeSettings(initial_instance_count=1, min_capacity=1, max_capacity=2),
        rollout=RolloutSettings(traffic_shift=TrafficShift.LINEAR, linear_step_percent=25, wait=Duration.minutes(3)),
        scale_down=ScaleDownSchedule(time_zone=cdk.TimeZone.EUROPE_BERLIN),
        enable_network_isolation=False,
    )
    gpu = ModelEndpoint(
        stack,
        "Gpu",
        endpoint_name="churn-gpu",
        data_store=store,
        model_package_arn=PACKAGE_ARN,
        realtime=RealtimeSettings(instance_type="ml.g5.xlarge", initial_instance_count=1, min_capacity=1),
    )
    tag(app)
    apply_guardrails(app, GuardrailSettings())
    assembly = synth_app(app)
    raw = assembly.get_stack_artifact(stack.artifact_id).template
    return NonProd(assembly, stack, store, dev, staging, gpu, Template.from_json(raw), raw)


# ------------------------------------------------------------------ realtime, prod-shaped


def test_realtime_model_serves_the_package_in_the_vpc_with_network_isolation(prod: Prod) -> None:
    model = resource_of(prod.template, "AWS::SageMaker::Model", prod.endpoint.model)
    props = model["Properties"]
    assert props["PrimaryContainer"] == {"ModelPackageName": {"Ref": "ModelPackageArn"}}
    assert props["EnableNetworkIsolation"] is True
    assert props["VpcConfig"]["Subnets"] == ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
    assert props["VpcConfig"]["SecurityGroupIds"] == [
        {"Fn::GetAtt": [logical_id(prod.endpoint.security_groups[0]), "GroupId"]}
    ]
    prod.template.has_resource_properties(
        "AWS::EC2::SecurityGroup", {"SecurityGroupIngress": Match.absent(), "VpcId": "vpc-0123456789abcdef0"}
    )
    assert prod.endpoint.connections is not None


def test_endpoint_config_is_encrypted_with_a_rotating_key_of_its_own(prod: Prod) -> None:
    config = resource_of(prod.template, "AWS::SageMaker::EndpointConfig", prod.endpoint.endpoint_config)
    key = logical_id(prod.endpoint.encryption_key)
    assert config["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key, "Arn"]}
    assert prod.raw["Resources"][key]["Properties"]["EnableKeyRotation"] is True
    assert prod.raw["Resources"][key]["DeletionPolicy"] == "Retain"


def test_realtime_variant_scales_on_invocations_per_instance(prod: Prod) -> None:
    config = resource_of(prod.template, "AWS::SageMaker::EndpointConfig", prod.endpoint.endpoint_config)
    assert config["Properties"]["ProductionVariants"] == [
        {
            "VariantName": "AllTraffic",
            "ModelName": {"Fn::GetAtt": [logical_id(prod.endpoint.model), "ModelName"]},
            "InitialVariantWeight": 1,
            "InstanceType": "ml.c5.xlarge",
            "InitialInstanceCount": 3,
        }
    ]
    assert prod.endpoint.scalable_target is not None
    target = resource_of(prod.template, "AWS::ApplicationAutoScaling::ScalableTarget", prod.endpoint.scalable_target)
    assert target["Properties"]["ResourceId"] == "endpoint/churn/variant/AllTraffic"
    assert target["Properties"]["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (2, 6)
    assert "ScheduledActions" not in target["Properties"]
    assert logical_id(prod.endpoint.endpoint) in target["DependsOn"]
    assert "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint" in json.dumps(target["Properties"]["RoleARN"])
    prod.template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "ScalingTargetId": {"Ref": logical_id(prod.endpoint.scalable_target)},
            "TargetTrackingScalingPolicyConfiguration": {
                "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                "TargetValue": 750,
                "ScaleInCooldown": 600,
                "ScaleOutCooldown": 120,
            },
        },
    )


def test_model_updates_keep_the_autoscaled_instance_count(prod: Prod) -> None:
    endpoint = resource_of(prod.template, "AWS::SageMaker::Endpoint", prod.endpoint.endpoint)["Properties"]
    assert endpoint["EndpointName"] == "churn"
    assert endpoint["RetainAllVariantProperties"] is True
    assert endpoint["ExcludeRetainedVariantProperties"] == [{"VariantPropertyType": "DataCaptureConfig"}]


def test_capture_goes_to_the_data_store_under_the_endpoint_name_with_its_key(prod: Prod) -> None:
    config = resource_of(prod.template, "AWS::SageMaker::EndpointConfig", prod.endpoint.endpoint_config)
    capture = config["Properties"]["DataCaptureConfig"]
    bucket = prod.data.get_logical_id(prod.store.bucket.node.default_child)  # type: ignore[arg-type]
    key = prod.data.get_logical_id(prod.store.encryption_key.node.default_child)  # type: ignore[arg-type]
    destination = json.dumps(capture["DestinationS3Uri"])
    assert destination.startswith('{"Fn::Join": ["", ["s3://", {"Fn::ImportValue": ')
    assert bucket in destination
    assert destination.endswith('"/capture/churn/"]]}')
    assert key in json.dumps(capture["KmsKeyId"])
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == 50
    assert capture["CaptureOptions"] == [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]
    assert capture["CaptureContentTypeHeader"] == {
        "JsonContentTypes": ["application/json"],
        "CsvContentTypes": ["text/csv"],
    }
    assert prod.endpoint.capture_uri is not None

    writes = [s for s in statements(prod.template, prod.endpoint.role) if "s3:PutObject" in actions_of(s)]
    assert len(writes) == 1
    assert json.dumps(writes[0]["Resource"]).endswith('"/capture/churn/*"]]}]')


def test_canary_rollout_rolls_back_on_the_construct_alarms_and_the_given_ones(prod: Prod) -> None:
    deployment = resource_of(prod.template, "AWS::SageMaker::Endpoint", prod.endpoint.endpoint)["Properties"][
        "DeploymentConfig"
    ]
    assert deployment["BlueGreenUpdatePolicy"] == {
        "TrafficRoutingConfiguration": {
            "Type": "CANARY",
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 20},
            "WaitIntervalInSeconds": 900,
        },
        "TerminationWaitInSeconds": 300,
    }
    expected = [*prod.endpoint.rollback_alarms, prod.kpi_alarm]
    assert deployment["AutoRollbackConfiguration"]["Alarms"] == [
        {"AlarmName": {"Ref": logical_id(alarm)}} for alarm in expected
    ]

    errors, latency = (resource_of(prod.template, "AWS::CloudWatch::Alarm", a) for a in prod.endpoint.rollback_alarms)
    dimensions = [{"Name": "EndpointName", "Value": "churn"}, {"Name": "VariantName", "Value": "AllTraffic"}]
    expected_errors = {
        "Namespace": "AWS/SageMaker",
        "MetricName": "Invocation5XXErrors",
        "Dimensions": dimensions,
        "Statistic": "Sum",
        "Period": 60,
        "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold",
        "EvaluationPeriods": 2,
        "DatapointsToAlarm": 2,
        "TreatMissingData": "notBreaching",
    }
    assert {k: errors["Properties"].get(k) for k in expected_errors} == expected_errors
    assert latency["Properties"]["MetricName"] == "ModelLatency"
    assert latency["Properties"]["ExtendedStatistic"] == "p99"
    assert latency["Properties"]["Threshold"] == 1_000_000  # 1 s in microseconds
    assert latency["Properties"]["Dimensions"] == dimensions


def test_severity_alarms_are_opt_in_keyed_and_notify_the_topic(prod: Prod, nonprod: NonProd) -> None:
    assert set(prod.endpoint.latency_alarms) == {"Warning", "Critical"}
    assert set(prod.endpoint.error_alarms) == {"Critical"}
    warning = resource_of(prod.template, "AWS::CloudWatch::Alarm", prod.endpoint.latency_alarms["Warning"])
    critical = resource_of(prod.template, "AWS::CloudWatch::Alarm", prod.endpoint.latency_alarms["Critical"])
    errors = resource_of(prod.template, "AWS::CloudWatch::Alarm", prod.endpoint.error_alarms["Critical"])
    assert (warning["Properties"]["ExtendedStatistic"], warning["Properties"]["Threshold"]) == ("p90", 200_000)
    assert (critical["Properties"]["ExtendedStatistic"], critical["Properties"]["Threshold"]) == ("p99", 500_000)
    assert errors["Properties"]["MetricName"] == "Invocation5XXErrors"
    assert errors["Properties"]["Threshold"] == 10
    assert warning["Properties"]["AlarmDescription"].startswith("[Warning] Serving/Endpoint:")
    for alarm in prod.endpoint.alarms:
        props = resource_of(prod.template, "AWS::CloudWatch::Alarm", alarm)["Properties"]
        assert props["AlarmActions"] == [{"Ref": logical_id(prod.topic)}]
    assert len(prod.endpoint.alarms) == 5
    assert nonprod.dev.alarms == []
    assert nonprod.staging.latency_alarms == {}
    assert nonprod.staging.error_alarms == {}


def test_dashboard_shows_invocations_latency_errors_capacity_and_alarms(prod: Prod, nonprod: NonProd) -> None:
    def body(template: Template, endpoint: ModelEndpoint) -> str:
        dashboard = resource_of(template, "AWS::CloudWatch::Dashboard", endpoint.dashboard)
        return json.dumps(dashboard["Properties"]["DashboardBody"])

    realtime = body(prod.template, prod.endpoint)
    for metric in (
        "Invocations",
        "ModelLatency",
        "OverheadLatency",
        "Invocation4XXErrors",
        "Invocation5XXErrors",
        "InvocationsPerInstance",
        "CPUUtilization",
        "MemoryUtilization",
    ):
        assert f'\\"{metric}\\"' in realtime, metric
    assert "alarm" in realtime
    serverless = body(nonprod.template, nonprod.dev)
    assert '\\"ModelSetupTime\\"' in serverless
    assert "InvocationsPerInstance" not in serverless
    dashboard = resource_of(prod.template, "AWS::CloudWatch::Dashboard", prod.endpoint.dashboard)
    assert dashboard["Properties"]["DashboardName"] == "churn"


def test_grant_invoke_is_scoped_to_this_endpoint(prod: Prod) -> None:
    (statement,) = statements(prod.template, prod.invoker)
    assert statement["Action"] == "sagemaker:InvokeEndpoint"
    assert statement["Resource"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":sagemaker:eu-west-1:123456789012:endpoint/churn"]]
    }


def test_execution_role_is_least_privilege(prod: Prod) -> None:
    role = resource_of(prod.template, "AWS::IAM::Role", prod.endpoint.role)
    assert "ManagedPolicyArns" not in role["Properties"]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "sagemaker.amazonaws.com"
    }
    found = statements(prod.template, prod.endpoint.role)
    actions = [a for s in found for a in actions_of(s)]
    assert not [a for a in actions if a == "*" or a.endswith(":*")]
    assert "iam:PassRole" not in actions

    def resources_for(action: str) -> str:
        return json.dumps([s["Resource"] for s in found if action in actions_of(s)])

    assert resources_for("sagemaker:DescribeModelPackage") == '[{"Ref": "ModelPackageArn"}]'
    assert resources_for("ecr:BatchGetImage").endswith(':ecr:eu-west-1:123456789012:repository/ml/churn-xgb"]]}]')
    assert resources_for("logs:PutLogEvents").count("/aws/sagemaker/Endpoints/churn") == 2
    assert '"/artifacts/*"' in resources_for("s3:GetObject*")
    metrics = next(s for s in found if "cloudwatch:PutMetricData" in actions_of(s))
    assert metrics["Condition"] == {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}}


def test_prod_serving_stack_has_no_guardrail_findings(prod: Prod) -> None:
    view = StackView(prod.raw, termination_protection=True)
    settings = GuardrailSettings(prod=True, require_network_isolation=True)
    assert evaluate(view, settings) == []
    # The same rules ran as the synth plugin over both stacks, honouring acknowledgments.
    assert validation_failures(Path(prod.assembly.directory)) == []


# ------------------------------------------------------------------ serverless and non-prod


def test_serverless_endpoint_has_memory_concurrency_and_no_instances(nonprod: NonProd) -> None:
    config = resource_of(nonprod.template, "AWS::SageMaker::EndpointConfig", nonprod.dev.endpoint_config)
    (variant,) = config["Properties"]["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 20, "ProvisionedConcurrency": 2}
    assert "InstanceType" not in variant
    assert "InitialInstanceCount" not in variant
    assert "DataCaptureConfig" not in config["Properties"]
    assert config["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [logical_id(nonprod.dev.encryption_key), "Arn"]}
    assert nonprod.dev.scalable_target is None
    assert nonprod.dev.scaling_policy is None
    assert nonprod.dev.capture_uri is None

    model = resource_of(nonprod.template, "AWS::SageMaker::Model", nonprod.dev.model)["Properties"]
    assert model["EnableNetworkIsolation"] is False
    assert "VpcConfig" not in model
    assert model["PrimaryContainer"]["Image"] == IMAGE
    assert model["PrimaryContainer"]["Environment"] == {"SAGEMAKER_PROGRAM": "inference.py"}
    assert json.dumps(model["PrimaryContainer"]["ModelDataUrl"]).endswith(f'"/{ARTIFACT_KEY}"]]}}')

    endpoint = resource_of(nonprod.template, "AWS::SageMaker::Endpoint", nonprod.dev.endpoint)["Properties"]
    assert endpoint["DeploymentConfig"] == {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
            "TerminationWaitInSeconds": 0,
        }
    }
    assert "RetainAllVariantProperties" not in endpoint


def test_scheduled_scale_down_only_when_asked(prod: Prod, nonprod: NonProd) -> None:
    assert nonprod.staging.scalable_target is not None
    target = resource_of(
        nonprod.template, "AWS::ApplicationAutoScaling::ScalableTarget", nonprod.staging.scalable_target
    )
    scheduled = target["Properties"]["ScheduledActions"]
    assert len(scheduled) == 2
    down = next(a for a in scheduled if "ScaleDown" in a["ScheduledActionName"])
    up = next(a for a in scheduled if "ScaleUp" in a["ScheduledActionName"])
    assert down["Schedule"] == "cron(0 19 ? * MON-FRI *)"
    assert down["ScalableTargetAction"] == {"MinCapacity": 1, "MaxCapacity": 1}
    assert up["Schedule"] == "cron(0 7 ? * MON-FRI *)"
    assert up["ScalableTargetAction"] == {"MinCapacity": 1, "MaxCapacity": 2}
    assert {down["Timezone"], up["Timezone"]} == {"Europe/Berlin"}
    assert prod.endpoint.scalable_target is not None
    prod_target = resource_of(
        prod.template, "AWS::ApplicationAutoScaling::ScalableTarget", prod.endpoint.scalable_target
    )
    assert "ScheduledActions" not in prod_target["Properties"]
    nonprod.template.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 2)  # staging and gpu


def test_linear_rollout_moves_traffic_in_steps(nonprod: NonProd) -> None:
    endpoint = resource_of(nonprod.template, "AWS::SageMaker::Endpoint", nonprod.staging.endpoint)["Properties"]
    routing = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {
        "Type": "LINEAR",
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
        "WaitIntervalInSeconds": 180,
    }
    assert len(endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]) == 2


def test_a_deploy_time_image_may_pull_from_this_accounts_repositories_only(nonprod: NonProd) -> None:
    found = statements(nonprod.template, nonprod.staging.role)
    pull = next(s for s in found if "ecr:BatchGetImage" in actions_of(s))
    assert json.dumps(pull["Resource"]).endswith('{"Ref": "AWS::AccountId"}, ":repository/*"]]}')
    model = resource_of(nonprod.template, "AWS::SageMaker::Model", nonprod.staging.model)["Properties"]
    assert model["PrimaryContainer"]["Image"] == {"Ref": "ImageUri"}


def test_local_storage_instance_types_rely_on_hardware_encryption(nonprod: NonProd) -> None:
    config = resource_of(nonprod.template, "AWS::SageMaker::EndpointConfig", nonprod.gpu.endpoint_config)
    assert "KmsKeyId" not in config["Properties"]
    assert config["Properties"]["ProductionVariants"][0]["InstanceType"] == "ml.g5.xlarge"
    Annotations.from_stack(nonprod.stack).has_info(
        "/NonProd/Gpu", Match.string_like_regexp("ml.g5.xlarge has local storage encrypted by hardware")
    )
    # Without the construct's acknowledgment the guardrail plugin would have failed the synth.
    view = StackView(nonprod.raw)
    flagged = {f.logical_id for f in evaluate(view, GuardrailSettings()) if f.rule_id == "MLOPS-002"}
    assert logical_id(nonprod.gpu.endpoint_config) in flagged
    assert validation_failures(Path(nonprod.assembly.directory)) == []


def test_package_endpoints_without_an_image_get_no_ecr_permissions(nonprod: NonProd) -> None:
    actions = [a for s in statements(nonprod.template, nonprod.gpu.role) for a in actions_of(s)]
    assert "sagemaker:DescribeModelPackage" in actions
    assert not [a for a in actions if a.startswith("ecr:")]


def test_metrics_use_the_endpoint_and_variant_dimensions(nonprod: NonProd) -> None:
    endpoint = nonprod.dev
    dims = {"EndpointName": "churn-dev", "VariantName": "AllTraffic"}
    expected = {
        "metric_invocations": ("AWS/SageMaker", "Invocations", "Sum"),
        "metric_invocations_per_instance": ("AWS/SageMaker", "InvocationsPerInstance", "Sum"),
        "metric_model_latency": ("AWS/SageMaker", "ModelLatency", "p90"),
        "metric_overhead_latency": ("AWS/SageMaker", "OverheadLatency", "p90"),
        "metric_5xx": ("AWS/SageMaker", "Invocation5XXErrors", "Sum"),
        "metric_4xx": ("AWS/SageMaker", "Invocation4XXErrors", "Sum"),
        "metric_model_setup_time": ("AWS/SageMaker", "ModelSetupTime", "p90"),
        "metric_cpu_utilization": ("/aws/sagemaker/Endpoints", "CPUUtilization", "Average"),
        "metric_memory_utilization": ("/aws/sagemaker/Endpoints", "MemoryUtilization", "Average"),
    }
    for method, (namespace, name, statistic) in expected.items():
        metric = getattr(endpoint, method)()
        assert (metric.namespace, metric.metric_name, metric.statistic) == (namespace, name, statistic), method
        assert metric.dimensions == dims, method
        assert metric.period.to_seconds() == 300, method
    custom = endpoint.metric_model_latency(statistic="p99", period=Duration.minutes(1))
    assert (custom.statistic, custom.period.to_seconds()) == ("p99", 60)


@pytest.mark.parametrize("which", ["prod_data", "prod_serving", "nonprod"])
def test_stacks_are_cfn_lint_and_cdk_nag_clean(which: str, prod: Prod, nonprod: NonProd) -> None:
    stack, template = {
        "prod_data": (prod.data, prod.assembly.get_stack_artifact(prod.data.artifact_id).template),
        "prod_serving": (prod.serving, prod.raw),
        "nonprod": (nonprod.stack, nonprod.raw),
    }[which]
    # Warnings too: a model that names its role with Fn::GetAtt must not also depend on it (W3005).
    assert cfn_lint_findings(template, region="eu-west-1") == []
    assert nag_findings(stack) == []


def test_the_model_waits_for_its_role_policy_only(prod: Prod) -> None:
    # GIVEN
    model = resource_of(prod.template, "AWS::SageMaker::Model", prod.endpoint.model)
    role = prod.endpoint.role
    policy = role.node.find_child("DefaultPolicy")
    # THEN the policy is created first (SageMaker reads the artifact with the role); the role is referenced
    assert model["DependsOn"] == [logical_id(policy)]
    assert model["Properties"]["ExecutionRoleArn"] == {"Fn::GetAtt": [logical_id(role), "Arn"]}


# ------------------------------------------------------------------ validation


def build(**kwargs: Any) -> ModelEndpoint:
    stack = cdk.Stack(cdk.App(), "Test")
    store = VersionedDataStore(stack, "Data")
    args: dict[str, Any] = {"endpoint_name": "churn", "data_store": store, "model_package_arn": PACKAGE_ARN}
    return ModelEndpoint(stack, "Endpoint", **{**args, **kwargs})


SERVERLESS: dict[str, Any] = {"kind": EndpointKind.SERVERLESS, "rollout": RolloutSettings.immediate()}


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"endpoint_name": "Churn_Model"}, "endpoint_name 'Churn_Model' is not valid; use 1-63 lower-case letters"),
        ({"endpoint_name": "a" * 64}, "is not valid; use 1-63 lower-case letters, digits and hyphens"),
        # Hyphens count towards the 63 characters, though SageMaker's pattern counts letters and digits only.
        ({"endpoint_name": "a-" * 32}, "is not valid; use 1-63 lower-case letters, digits and hyphens"),
        (
            {"model_package_arn": None},
            "pass exactly one of model_package_arn (a registered model version) and model_data_url "
            "(an artifact in the data store); neither was given",
        ),
        (
            {"model_data_url": "s3://bucket/artifacts/model.tar.gz", "image_uri": IMAGE},
            "pass exactly one of model_package_arn (a registered model version) and model_data_url "
            "(an artifact in the data store); both were given",
        ),
        ({"model_package_arn": "churn-models/3"}, "model_package_arn 'churn-models/3' is not a model package version"),
        (
            {"model_package_arn": None, "model_data_url": "s3://bucket/artifacts/model.tar.gz"},
            "model_data_url needs image_uri, the inference image that loads the artifact",
        ),
        (
            {"model_package_arn": None, "model_data_url": "/tmp/model.tar.gz", "image_uri": IMAGE},
            "model_data_url '/tmp/model.tar.gz' is not an S3 object URI; use s3://<bucket>/artifacts/",
        ),
        ({"image_uri": "docker.io/me/model:1"}, "image_uri 'docker.io/me/model:1' is not an ECR image URI"),
        (
            {**SERVERLESS, "data_capture": DataCaptureSettings()},
            "data_capture is not supported by serverless endpoints (SageMaker Serverless Inference has no "
            "data capture, VPC or network isolation); remove it, or use kind=EndpointKind.REALTIME",
        ),
        ({**SERVERLESS, "enable_network_isolation": True}, "enable_network_isolation=True is not supported by"),
        (
            {**SERVERLESS, "scale_down": ScaleDownSchedule()},
            "scale_down applies to realtime instances; serverless endpoints cost nothing while idle",
        ),
        (
            {**SERVERLESS, "realtime": RealtimeSettings()},
            "realtime settings were given for a serverless endpoint; remove them or set kind=EndpointKind.REALTIME",
        ),
        (
            {"serverless": ServerlessSettings()},
            "serverless settings were given for a realtime endpoint; remove them or set kind=EndpointKind.SERVERLESS",
        ),
        (
            {**SERVERLESS, "serverless": ServerlessSettings(memory_size_in_mb=1536)},
            "serverless.memory_size_in_mb (1536) is not a serverless memory size; use one of 1024, 2048, 3072, "
            "4096, 5120, 6144",
        ),
        (
            {**SERVERLESS, "serverless": ServerlessSettings(max_concurrency=201)},
            "serverless.max_concurrency (201) must be a whole number from 1 to 200",
        ),
        (
            {**SERVERLESS, "serverless": ServerlessSettings(max_concurrency=5, provisioned_concurrency=6)},
            "serverless.provisioned_concurrency (6) must not exceed serverless.max_concurrency (5); lower it",
        ),
        (
            {"realtime": RealtimeSettings(min_capacity=5, max_capacity=3)},
            "realtime.min_capacity (5) must not exceed realtime.max_capacity (3); raise max_capacity",
        ),
        (
            {"realtime": RealtimeSettings(initial_instance_count=1, min_capacity=2, max_capacity=4)},
            "realtime.initial_instance_count (1) must be within [min_capacity, max_capacity] = [2, 4]",
        ),
        (
            {"realtime": RealtimeSettings(initial_instance_count=0)},
            "realtime.initial_instance_count (0) must be a whole number of at least 1",
        ),
        (
            {"realtime": RealtimeSettings(instance_type="ml.t2.medium")},
            "realtime.instance_type 'ml.t2.medium' is burstable, and SageMaker cannot autoscale burstable",
        ),
        ({"realtime": RealtimeSettings(instance_type="m5.large")}, "'m5.large' is not an ML instance type"),
        (
            {"realtime": RealtimeSettings(instance_type="ml.foo.large")},
            "realtime.instance_type 'ml.foo.large': unknown instance family 'foo'; use one of: c4, c5, c5d,",
        ),
        (
            {"realtime": RealtimeSettings(scale_in_cooldown=Duration.days(2))},
            "realtime.scale_in_cooldown (172800 s) must be a whole number of seconds from 0 to 86400",
        ),
        (
            {"realtime": RealtimeSettings(target_invocations_per_instance=0)},
            "realtime.target_invocations_per_instance (0) must be a whole number of at least 1",
        ),
        (
            {**SERVERLESS, "serverless": ServerlessSettings(provisioned_concurrency=0)},
            "serverless.provisioned_concurrency (0) must be a whole number from 1 to 200",
        ),
        (
            {"data_capture": DataCaptureSettings(json_content_types=("application/json", "text plain"))},
            "data_capture.json_content_types ['application/json', 'text plain'] must hold at most 10 content types",
        ),
        (
            {"rollout": RolloutSettings(max_5xx_errors_per_minute=-1)},
            "rollout.max_5xx_errors_per_minute (-1) must be a whole number of at least 0",
        ),
        (
            {"rollout": RolloutSettings(alarm_evaluation_minutes=0)},
            "rollout.alarm_evaluation_minutes (0) must be a whole number from 1 to 10",
        ),
        (
            {"rollout": RolloutSettings(termination_wait=Duration.seconds(3601))},
            "rollout.termination_wait (3601 s) must be a whole number of seconds from 0 to 3600",
        ),
        (
            {
                "scale_down": ScaleDownSchedule(
                    scale_down=appscaling.Schedule.cron(minute="0", hour="7"),
                    scale_up=appscaling.Schedule.cron(minute="0", hour="7"),
                )
            },
            "scale_down.scale_down and scale_up are the same schedule (cron(0 7 * * ? *)); give them different times",
        ),
        (
            {"add_latency_alarm": {"Warning": LatencyThreshold(max_latency=Duration.millis(0))}},
            "add_latency_alarm['Warning'].max_latency (0 millis) must be positive",
        ),
        (
            {"data_capture": DataCaptureSettings(sampling_percentage=101)},
            "data_capture.sampling_percentage (101) must be a whole number from 0 to 100; use e.g. 20 for 20 %",
        ),
        (
            {"data_capture": DataCaptureSettings(sampling_percentage=-1)},
            "data_capture.sampling_percentage (-1) must be a whole number from 0 to 100",
        ),
        (
            {"data_capture": DataCaptureSettings(capture_request=False, capture_response=False)},
            "data_capture captures neither requests nor responses",
        ),
        (
            {"rollout": RolloutSettings(canary_size_percent=0)},
            "rollout.canary_size_percent (0) must be a whole number from 1 to 50; SageMaker moves at most half",
        ),
        ({"rollout": RolloutSettings(canary_size_percent=101)}, "rollout.canary_size_percent (101) must be"),
        ({"rollout": RolloutSettings(canary_size_percent=60)}, "rollout.canary_size_percent (60) must be"),
        (
            {"rollout": RolloutSettings(traffic_shift=TrafficShift.LINEAR, linear_step_percent=5)},
            "rollout.linear_step_percent (5) must be a whole number from 10 to 50",
        ),
        (
            {"rollout": RolloutSettings(wait=Duration.hours(2))},
            "rollout.wait (7200 s) must be a whole number of seconds from 0 to 3600",
        ),
        (
            {"rollout": RolloutSettings(max_execution_time=Duration.minutes(5))},
            "rollout.max_execution_time (300 s) must be a whole number of seconds from 600 to 28800",
        ),
        (
            {"rollout": RolloutSettings(max_p99_model_latency=Duration.seconds(0))},
            "rollout.max_p99_model_latency (0 seconds) must be positive",
        ),
        (
            {"rollout": RolloutSettings.immediate(), "require_rollback_alarms": True},
            "require_rollback_alarms is set but the rollout has no rollback alarms; keep "
            "RolloutSettings(rollback_alarms=True) or pass additional_rollback_alarms",
        ),
        (
            {"rollout": RolloutSettings(traffic_shift=TrafficShift.ALL_AT_ONCE, termination_wait=Duration.seconds(0))},
            "the rollout has rollback alarms but no baking period, so no alarm could ever roll back",
        ),
        (
            {"scale_down": ScaleDownSchedule(capacity=5)},
            "scale_down.capacity (5) must not exceed realtime.max_capacity (4)",
        ),
        ({"scale_down": ScaleDownSchedule(capacity=0)}, "scale_down.capacity (0) must be a whole number of at least 1"),
        (
            {"security_groups": []},
            "vpc_subnets and security_groups need vpc; pass vpc=..., or remove them",
        ),
        (
            {"add_latency_alarm": {"Sev 1": LatencyThreshold(max_latency=Duration.millis(100))}},
            "add_latency_alarm key 'Sev 1' must be 1-32 letters and digits",
        ),
        (
            {"add_5xx_alarm": {"Critical": ErrorCountThreshold(max_error_count=1, datapoints_to_alarm=5)}},
            "add_5xx_alarm['Critical'].datapoints_to_alarm (5) must not exceed evaluation_periods (3)",
        ),
    ],
)
def test_invalid_input_names_the_construct_value_and_fix(kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build(**kwargs)
    assert str(caught.value).startswith("[Test/Endpoint]")
    assert any(expected in p for p in caught.value.problems), caught.value.problems


def test_serverless_in_a_vpc_is_rejected() -> None:
    stack = cdk.Stack(cdk.App(), "Test")
    store = VersionedDataStore(stack, "Data")
    vpc = ec2.Vpc.from_vpc_attributes(
        stack, "Vpc", vpc_id="vpc-0123456789abcdef0", availability_zones=["a"], private_subnet_ids=["subnet-1"]
    )
    with pytest.raises(ConfigurationError, match=r"\[Test/Endpoint\] vpc is not supported by serverless endpoints"):
        ModelEndpoint(
            stack,
            "Endpoint",
            endpoint_name="churn",
            data_store=store,
            model_package_arn=PACKAGE_ARN,
            vpc=vpc,
            **SERVERLESS,
        )


def test_too_many_rollback_alarms_are_rejected() -> None:
    stack = cdk.Stack(cdk.App(), "Test")
    store = VersionedDataStore(stack, "Data")
    metric = cw.Metric(namespace="Churn", metric_name="Conversions")
    alarms = [cw.Alarm(stack, f"A{i}", metric=metric, threshold=1, evaluation_periods=1) for i in range(9)]
    with pytest.raises(ConfigurationError, match="11 rollback alarms exceed SageMaker's limit of 10"):
        ModelEndpoint(
            stack,
            "Endpoint",
            endpoint_name="churn",
            data_store=store,
            model_package_arn=PACKAGE_ARN,
            additional_rollback_alarms=alarms,
        )


def test_every_problem_is_reported_at_once_before_any_resource_exists() -> None:
    stack = cdk.Stack(cdk.App(), "Test")
    store = VersionedDataStore(stack, "Data")
    with pytest.raises(ConfigurationError) as caught:
        ModelEndpoint(
            stack,
            "Endpoint",
            endpoint_name="Bad Name",
            data_store=store,
            realtime=RealtimeSettings(min_capacity=3, max_capacity=2),
            rollout=RolloutSettings(canary_size_percent=0),
        )
    assert len(caught.value.problems) == 4
    assert str(caught.value).startswith("[Test/Endpoint] 4 problems:\n  - endpoint_name 'Bad Name'")
    endpoint = stack.node.find_child("Endpoint")
    assert endpoint.node.children == []


def test_tokens_are_not_rejected() -> None:
    stack = cdk.Stack(cdk.App(), "Tokens")
    store = VersionedDataStore(stack, "Data")

    def number(name: str) -> Any:
        # A number token (typed float by aws-cdk-lib); the settings' fields are typed int.
        return cdk.CfnParameter(stack, name, type="Number").value_as_number

    name = cdk.CfnParameter(stack, "EndpointName").value_as_string
    endpoint = ModelEndpoint(
        stack,
        "Endpoint",
        endpoint_name=name,
        data_store=store,
        model_data_url=cdk.CfnParameter(stack, "ModelDataUrl").value_as_string,
        image_uri=cdk.CfnParameter(stack, "Image").value_as_string,
        realtime=RealtimeSettings(
            instance_type=cdk.CfnParameter(stack, "InstanceType").value_as_string,
            initial_instance_count=number("Initial"),
            min_capacity=number("Min"),
            max_capacity=number("Max"),
        ),
        data_capture=DataCaptureSettings(sampling_percentage=number("Sampling")),
        rollout=RolloutSettings(canary_size_percent=number("Canary")),
    )
    assert Token.is_unresolved(endpoint.endpoint_name)
    assert endpoint.dashboard is not None
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::SageMaker::Endpoint", {"EndpointName": {"Ref": "EndpointName"}})
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {"ProductionVariants": [Match.object_like({"InstanceType": {"Ref": "InstanceType"}})]},
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Dashboard", {"DashboardName": Match.absent(), "DashboardBody": Match.any_value()}
    )


def test_require_rollback_alarms_accepts_alarms_of_the_caller() -> None:
    stack = cdk.Stack(cdk.App(), "Test")
    store = VersionedDataStore(stack, "Data")
    alarm = cw.Alarm(
        stack, "Kpi", metric=cw.Metric(namespace="Churn", metric_name="Conversions"), threshold=1, evaluation_periods=1
    )
    endpoint = ModelEndpoint(
        stack,
        "Endpoint",
        endpoint_name="churn",
        data_store=store,
        model_package_arn=PACKAGE_ARN,
        rollout=RolloutSettings(rollback_alarms=False),
        additional_rollback_alarms=[alarm],
        require_rollback_alarms=True,
    )
    assert endpoint.rollback_alarms == []
    alarms = Capture()
    Template.from_stack(stack).has_resource_properties(
        "AWS::SageMaker::Endpoint", {"DeploymentConfig": {"AutoRollbackConfiguration": {"Alarms": alarms}}}
    )
    assert alarms.as_array() == [{"AlarmName": {"Ref": logical_id(alarm)}}]


def test_latency_thresholds_must_be_concrete() -> None:
    stack = cdk.Stack(cdk.App(), "Test")
    seconds = cdk.CfnParameter(stack, "Latency", type="Number").value_as_number
    with pytest.raises(ConfigurationError, match=r"rollout.max_p99_model_latency must be a concrete duration"):
        ModelEndpoint(
            stack,
            "Endpoint",
            endpoint_name="churn",
            data_store=VersionedDataStore(stack, "Data"),
            model_package_arn=PACKAGE_ARN,
            rollout=RolloutSettings(max_p99_model_latency=Duration.seconds(seconds)),
        )


def test_the_endpoint_instance_families_are_the_ones_sagemaker_hosts_on():
    import botocore.session

    from cdk_mlops.constructs.common import ENDPOINT_INSTANCE_FAMILIES

    model: Any = botocore.session.get_session().get_service_model("sagemaker")
    hosting = {t.split(".")[1] for t in model.shape_for("ProductionVariantInstanceType").enum}
    assert hosting == ENDPOINT_INSTANCE_FAMILIES
