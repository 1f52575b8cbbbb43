"""SharedModelEndpoint: many models on one instance pool as inference components, each scaling to zero."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Annotations, Match, Template

from cdk_mlops.compliance import synth_app
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.model_endpoint import (
    ComponentSettings,
    HostedModel,
    SharedInstances,
    SharedModelEndpoint,
)
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.guardrails import GuardrailSettings, apply_guardrails
from tests.quality import actions_of, cfn_lint_findings, logical_id, nag_findings, statements

ENV = cdk.Environment(account="123456789012", region="eu-west-1")
PACKAGE_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-models/3"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/fraud-inference:2"


@dataclass(frozen=True)
class Fleet:
    stack: cdk.Stack
    shared: SharedModelEndpoint
    churn: HostedModel
    fraud: HostedModel
    topic: sns.Topic
    client: iam.Role
    template: Template
    raw: dict[str, Any]

    def props(self, construct: Any) -> dict[str, Any]:
        properties: dict[str, Any] = self.raw["Resources"][logical_id(construct)]["Properties"]
        return properties


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    app = cdk.App()
    stack = cdk.Stack(app, "Fleet", env=ENV, termination_protection=True)
    store = VersionedDataStore(stack, "Store", datasets=["churn"])
    topic = sns.Topic(stack, "Alerts", master_key=kms.Key(stack, "AlertsKey", enable_key_rotation=True))
    shared = SharedModelEndpoint(
        stack,
        "Shared",
        endpoint_name="fleet",
        data_store=store,
        instances=SharedInstances(instance_type="ml.c5.2xlarge", max_instance_count=6),
        alarm_topic=topic,
    )
    churn = shared.add_model("Churn", model_name="churn", model_package_arn=PACKAGE_ARN)
    fraud = shared.add_model(
        "Fraud",
        model_name="fraud",
        model_data_url=store.s3_uri("artifacts/fraud/model.tar.gz"),
        image_uri=IMAGE,
        environment={"SAGEMAKER_PROGRAM": "inference.py"},
        settings=ComponentSettings(cpu_cores=0.5, memory_mb=512, initial_copies=2, min_copies=1, max_copies=4),
    )
    client = iam.Role(stack, "Client", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    shared.grant_invoke(client)
    for key, value in {"project": "churn", "environment": "test", "owner": "ml-team"}.items():
        cdk.Tags.of(app).add(key, value)
    apply_guardrails(app, GuardrailSettings())
    raw = synth_app(app).get_stack_artifact(stack.artifact_id).template
    return Fleet(stack, shared, churn, fraud, topic, client, Template.from_json(raw), raw)


def test_the_endpoint_runs_a_managed_instance_pool_and_no_model_of_its_own(fleet: Fleet) -> None:
    config = fleet.props(fleet.shared.endpoint_config)
    (variant,) = config["ProductionVariants"]
    assert "ModelName" not in variant
    assert variant["InstanceType"] == "ml.c5.2xlarge"
    assert variant["ManagedInstanceScaling"] == {"Status": "ENABLED", "MinInstanceCount": 0, "MaxInstanceCount": 6}
    assert variant["RoutingConfig"] == {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}
    assert config["ExecutionRoleArn"] == {"Fn::GetAtt": [logical_id(fleet.shared.role), "Arn"]}
    assert config["KmsKeyId"] == {"Fn::GetAtt": [logical_id(fleet.shared.encryption_key), "Arn"]}
    assert fleet.props(fleet.shared.endpoint)["EndpointName"] == "fleet"


def test_each_model_is_a_component_reserving_its_resources_on_the_shared_instances(fleet: Fleet) -> None:
    churn, fraud = fleet.props(fleet.churn.component), fleet.props(fleet.fraud.component)
    assert (churn["InferenceComponentName"], fraud["InferenceComponentName"]) == ("fleet-churn", "fleet-fraud")
    assert churn["Specification"]["ComputeResourceRequirements"] == {
        "NumberOfCpuCoresRequired": 1,
        "MinMemoryRequiredInMb": 1024,
    }
    assert fraud["Specification"]["ComputeResourceRequirements"] == {
        "NumberOfCpuCoresRequired": 0.5,
        "MinMemoryRequiredInMb": 512,
    }
    assert fraud["Specification"]["ModelName"] == {"Fn::GetAtt": [logical_id(fleet.fraud.model), "ModelName"]}
    assert (churn["RuntimeConfig"], fraud["RuntimeConfig"]) == ({"CopyCount": 1}, {"CopyCount": 2})
    assert churn["EndpointName"] == "fleet"
    assert churn["VariantName"] == "AllTraffic"
    # A component is placed on running instances: it waits for the endpoint.
    resource = fleet.raw["Resources"][logical_id(fleet.churn.component)]
    assert logical_id(fleet.shared.endpoint) in resource["DependsOn"]
    for hosted in (fleet.churn, fleet.fraud):
        model = fleet.props(hosted.model)
        assert model["EnableNetworkIsolation"] is True
        assert model["ExecutionRoleArn"] == {"Fn::GetAtt": [logical_id(fleet.shared.role), "Arn"]}
    assert fleet.props(fleet.fraud.model)["PrimaryContainer"]["Image"] == IMAGE


def test_copies_track_invocations_and_an_idle_model_scales_to_zero_and_back(fleet: Fleet) -> None:
    churn = fleet.churn
    target = fleet.props(churn.scalable_target.node.default_child)
    assert target["ResourceId"] == "inference-component/fleet-churn"
    assert target["ScalableDimension"] == "sagemaker:inference-component:DesiredCopyCount"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 2)
    tracking = fleet.props(churn.scaling_policy.node.default_child)["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerInferenceComponentInvocationsPerCopy"
    }
    assert tracking["TargetValue"] == 100
    assert churn.scale_out_from_zero_alarm is not None
    alarm = fleet.props(churn.scale_out_from_zero_alarm)
    assert alarm["MetricName"] == "NoCapacityInvocationFailures"
    assert alarm["Dimensions"] == [{"Name": "InferenceComponentName", "Value": "fleet-churn"}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    step_ref, topic_ref = alarm["AlarmActions"]
    step = fleet.raw["Resources"][step_ref["Ref"]]["Properties"]
    assert step["ScalingTargetId"] == {"Ref": logical_id(churn.scalable_target.node.default_child)}
    assert step["StepScalingPolicyConfiguration"]["StepAdjustments"] == [
        {"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}
    ]
    assert topic_ref == {"Ref": logical_id(fleet.topic)}
    # A model that keeps a copy needs no way back from zero.
    assert fleet.fraud.scale_out_from_zero_alarm is None
    warm = fleet.props(fleet.fraud.scalable_target.node.default_child)
    assert (warm["MinCapacity"], warm["MaxCapacity"]) == (1, 4)


def test_a_model_costs_four_resources_or_six_when_it_scales_to_zero(fleet: Fleet) -> None:
    def under(hosted: HostedModel) -> list[str]:
        return [c.cfn_resource_type for c in hosted.node.find_all() if isinstance(c, cdk.CfnResource)]

    assert sorted(under(fleet.fraud)) == [
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        "AWS::SageMaker::InferenceComponent",
        "AWS::SageMaker::Model",
    ]
    assert len(under(fleet.churn)) == 6


def test_the_shared_role_reads_artifacts_describes_its_packages_and_pulls_its_images_only(fleet: Fleet) -> None:
    found = statements(fleet.template, fleet.shared.role)

    def resources_for(action: str) -> list[Any]:
        return [s["Resource"] for s in found if action in actions_of(s)]

    assert resources_for("sagemaker:DescribeModelPackage") == [PACKAGE_ARN]
    (pull,) = resources_for("ecr:BatchGetImage")
    assert json.dumps(pull).endswith(':ecr:eu-west-1:123456789012:repository/fraud-inference"]]}')
    assert resources_for("ecr:GetAuthorizationToken") == ["*"]
    reads = json.dumps(resources_for("s3:GetObject*"))
    assert '"/artifacts/*"' in reads
    assert "datasets" not in reads
    assert resources_for("s3:PutObject") == []
    logs = json.dumps(resources_for("logs:PutLogEvents"))
    assert "/aws/sagemaker/Endpoints/fleet" in logs
    assert "/aws/sagemaker/InferenceComponents/fleet-*" in logs
    actions = {a for s in found for a in actions_of(s)}
    assert "iam:PassRole" not in actions
    assert not [a for a in actions if a == "*" or a.endswith(":*")]


def test_clients_may_invoke_this_endpoint_only(fleet: Fleet) -> None:
    (statement,) = statements(fleet.template, fleet.client)
    assert statement["Action"] == "sagemaker:InvokeEndpoint"
    assert json.dumps(statement["Resource"]).endswith(':sagemaker:eu-west-1:123456789012:endpoint/fleet"]]}')


def test_the_dashboard_has_a_row_per_model(fleet: Fleet) -> None:
    body = json.dumps(fleet.props(fleet.shared.dashboard)["DashboardBody"])
    for name in ("fleet-churn", "fleet-fraud"):
        assert name in body
    assert body.count("NoCapacityInvocationFailures") == 2
    assert sorted(fleet.shared.models) == ["churn", "fraud"]


def test_component_metrics_have_the_component_dimension(fleet: Fleet) -> None:
    expected = {
        "metric_invocations": ("Invocations", "Sum"),
        "metric_5xx": ("Invocation5XXErrors", "Sum"),
        "metric_model_latency": ("ModelLatency", "p90"),
        "metric_no_capacity_failures": ("NoCapacityInvocationFailures", "Maximum"),
    }
    for method, (name, statistic) in expected.items():
        metric = getattr(fleet.fraud, method)()
        assert (metric.namespace, metric.metric_name, metric.statistic) == ("AWS/SageMaker", name, statistic)
        assert metric.dimensions == {"InferenceComponentName": "fleet-fraud"}


def test_the_stack_is_cfn_lint_and_cdk_nag_clean(fleet: Fleet) -> None:
    assert cfn_lint_findings(fleet.raw, region="eu-west-1") == []
    assert nag_findings(fleet.stack) == []


# ------------------------------------------------------------------ validation


def shared_endpoint(**kwargs: Any) -> SharedModelEndpoint:
    stack = cdk.Stack(cdk.App(), "Test", env=ENV)
    store = VersionedDataStore(stack, "Data")
    return SharedModelEndpoint(stack, "Shared", **{"endpoint_name": "fleet", "data_store": store, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"endpoint_name": "Fleet_1"}, "endpoint_name 'Fleet_1' is not valid"),
        (
            {"instances": SharedInstances(min_instance_count=2, initial_instance_count=1)},
            "instances: initial_instance_count (1) must be within [min_instance_count, max_instance_count] = [2, 4]",
        ),
        ({"instances": SharedInstances(initial_instance_count=0)}, "instances.initial_instance_count (0)"),
        ({"instances": SharedInstances(routing_strategy="ROUND_ROBIN")}, "'ROUND_ROBIN' is not one of"),
        ({"instances": SharedInstances(instance_type="ml.t2.medium")}, "is burstable"),
        ({"instances": SharedInstances(instance_type="m5.large")}, "instances.instance_type"),
    ],
)
def test_invalid_endpoint_arguments_are_named_with_the_fix(kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        shared_endpoint(**kwargs)
    assert any(expected in p for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"model_name": "Churn"}, "add_model('Churn'): the component name 'fleet-Churn' is not valid"),
        ({"model_name": "m" * 58}, "at most 57 characters here"),
        ({"model_data_url": "s3://bucket/artifacts/m.tar.gz"}, "pass exactly one of model_package_arn"),
        ({"model_package_arn": None}, "neither was given"),
        (
            {"model_package_arn": None, "model_data_url": "s3://bucket/artifacts/m.tar.gz"},
            "model_data_url needs image_uri",
        ),
        (
            {"model_package_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-models/3"},
            "but the endpoint deploys to aws:eu-west-1",
        ),
        (
            {"settings": ComponentSettings(cpu_cores=0.1)},
            "add_model('churn').settings.cpu_cores (0.1) must be at least",
        ),
        (
            {"settings": ComponentSettings(memory_mb=64)},
            "settings.memory_mb (64) must be a whole number of at least 128",
        ),
        ({"settings": ComponentSettings(accelerators=0)}, "settings.accelerators (0)"),
        (
            {"settings": ComponentSettings(initial_copies=3)},
            "initial_copies (3) must be within [min_copies, max_copies] = [0, 2]",
        ),
        ({"settings": ComponentSettings(target_invocations_per_copy=0)}, "settings.target_invocations_per_copy (0)"),
    ],
)
def test_invalid_models_are_named_with_the_fix_and_add_nothing(kwargs: dict[str, Any], expected: str) -> None:
    shared = shared_endpoint()
    before = len(shared.node.children)
    with pytest.raises(ConfigurationError) as caught:
        shared.add_model("Churn", **{"model_name": "churn", "model_package_arn": PACKAGE_ARN, **kwargs})
    assert any(expected in p for p in caught.value.problems), caught.value.problems
    assert str(caught.value).startswith("[Test/Shared]")
    assert len(shared.node.children) == before
    assert shared.models == {}


def test_a_model_name_is_hosted_once() -> None:
    shared = shared_endpoint()
    shared.add_model("Churn", model_name="churn", model_package_arn=PACKAGE_ARN)
    with pytest.raises(ConfigurationError, match="already hosts a model of that name"):
        shared.add_model("Churn2", model_name="churn", model_package_arn=PACKAGE_ARN)


def test_the_endpoint_itself_is_six_resources(fleet: Fleet) -> None:
    hosted = {c.node.path for m in fleet.shared.models.values() for c in m.node.find_all()}
    own = sorted(
        c.cfn_resource_type
        for c in fleet.shared.node.find_all()
        if isinstance(c, cdk.CfnResource) and c.node.path not in hosted
    )
    assert own == [
        "AWS::CloudWatch::Dashboard",
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::KMS::Key",
        "AWS::SageMaker::Endpoint",
        "AWS::SageMaker::EndpointConfig",
    ]


def test_a_local_storage_instance_pool_relies_on_hardware_encryption() -> None:
    shared = shared_endpoint(instances=SharedInstances(instance_type="ml.g5.2xlarge"))
    config = cdk.Stack.of(shared).resolve(shared.endpoint_config.kms_key_id)
    assert config is None
    assert Annotations.from_stack(cdk.Stack.of(shared)).find_info(
        "*", Match.string_like_regexp("endpoint-local-storage")
    )
