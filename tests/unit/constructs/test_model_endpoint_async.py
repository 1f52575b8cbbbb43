"""ModelEndpoint(kind=ASYNC): queued requests in the data store, notifications, scaling on the queue and to zero."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from cdk_mlops.compliance import synth_app
from cdk_mlops.config import EndpointKind
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.model_endpoint import (
    AsyncSettings,
    DataCaptureSettings,
    ModelEndpoint,
    RealtimeSettings,
    ScaleDownSchedule,
    ServerlessSettings,
)
from cdk_mlops.constructs.model_monitor import Baselines, DataQualitySettings, ModelMonitor
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.guardrails import GuardrailSettings, apply_guardrails
from tests.quality import actions_of, cfn_lint_findings, logical_id, nag_findings, statements

ENV = cdk.Environment(account="123456789012", region="eu-west-1")
PACKAGE_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-models/3"
ASYNC: dict[str, Any] = {"kind": EndpointKind.ASYNC}


@dataclass(frozen=True)
class Serving:
    stack: cdk.Stack
    store: VersionedDataStore
    cold: ModelEndpoint
    warm: ModelEndpoint
    client: iam.Role
    template: Template
    raw: dict[str, Any]


@pytest.fixture(scope="module")
def serving() -> Serving:
    app = cdk.App()
    stack = cdk.Stack(app, "Serving", env=ENV, termination_protection=True)
    store = VersionedDataStore(stack, "Store", datasets=["churn"])
    cold = ModelEndpoint(
        stack,
        "Cold",
        endpoint_name="churn-async",
        data_store=store,
        model_package_arn=PACKAGE_ARN,
        async_inference=AsyncSettings(max_capacity=4, target_backlog_per_instance=3),
        **ASYNC,
    )
    warm = ModelEndpoint(
        stack,
        "Warm",
        endpoint_name="churn-warm",
        data_store=store,
        model_package_arn=PACKAGE_ARN,
        async_inference=AsyncSettings(instance_type="ml.g5.xlarge", min_capacity=1),
        **ASYNC,
    )
    client = iam.Role(stack, "Client", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    cold.grant_invoke(client)
    for key, value in {"project": "churn", "environment": "test", "owner": "ml-team"}.items():
        cdk.Tags.of(app).add(key, value)
    apply_guardrails(app, GuardrailSettings(prod=True))
    raw = synth_app(app).get_stack_artifact(stack.artifact_id).template
    return Serving(stack, store, cold, warm, client, Template.from_json(raw), raw)


def props_of(serving: Serving, construct: Any) -> dict[str, Any]:
    properties: dict[str, Any] = serving.raw["Resources"][logical_id(construct)]["Properties"]
    return properties


def test_answers_and_errors_go_to_the_data_store_encrypted_and_notify_the_topics(serving: Serving) -> None:
    config = props_of(serving, serving.cold.endpoint_config)
    output = config["AsyncInferenceConfig"]["OutputConfig"]
    bucket = logical_id(serving.store.bucket)
    assert json.dumps(output["S3OutputPath"]).endswith('"/async-inference/churn-async/output/"]]}')
    assert json.dumps(output["S3FailurePath"]).endswith('"/async-inference/churn-async/failures/"]]}')
    assert bucket in json.dumps(output["S3OutputPath"])
    assert output["KmsKeyId"] == {"Fn::GetAtt": [logical_id(serving.store.encryption_key), "Arn"]}
    assert output["NotificationConfig"] == {
        "SuccessTopic": {"Ref": logical_id(serving.cold.success_topic)},
        "ErrorTopic": {"Ref": logical_id(serving.cold.error_topic)},
    }
    # SageMaker chooses the concurrency unless told.
    assert "ClientConfig" not in config["AsyncInferenceConfig"]
    (variant,) = config["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.large", 1)
    assert config["KmsKeyId"] == {"Fn::GetAtt": [logical_id(serving.cold.encryption_key), "Arn"]}
    assert "DataCaptureConfig" not in config
    assert serving.cold.async_input_uri is not None
    assert serving.cold.capture_uri is None


def test_topics_are_encrypted_with_the_endpoint_key_and_refuse_plain_http(serving: Serving) -> None:
    for topic in (serving.cold.success_topic, serving.cold.error_topic):
        assert props_of(serving, topic)["KmsMasterKeyId"] == {
            "Fn::GetAtt": [logical_id(serving.cold.encryption_key), "Arn"]
        }
    policies = [
        p["Properties"]
        for p in serving.raw["Resources"].values()
        if p["Type"] == "AWS::SNS::TopicPolicy"
        and p["Properties"]["Topics"][0]["Ref"] in {logical_id(serving.cold.success_topic)}
    ]
    (policy,) = policies
    deny = policy["PolicyDocument"]["Statement"][0]
    assert (deny["Effect"], deny["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})


def test_the_role_reads_requests_writes_answers_and_errors_and_publishes_to_its_topics_only(serving: Serving) -> None:
    found = statements(serving.template, serving.cold.role)

    def resources_for(action: str) -> str:
        return json.dumps([s["Resource"] for s in found if action in actions_of(s)])

    reads, writes = resources_for("s3:GetObject*"), resources_for("s3:PutObject")
    assert '"/async-inference/churn-async/input/*"' in reads
    assert '"/async-inference/churn-async/output/*"' not in reads
    assert '"/async-inference/churn-async/output/*"' in writes
    assert '"/async-inference/churn-async/failures/*"' in writes
    assert "input" not in writes
    published = [s["Resource"] for s in found if "sns:Publish" in actions_of(s)]
    assert sorted(json.dumps(r) for r in published) == sorted(
        json.dumps({"Ref": logical_id(t)}) for t in (serving.cold.success_topic, serving.cold.error_topic)
    )
    # The topics' key encrypts what SageMaker publishes as the role.
    assert f'"{logical_id(serving.cold.encryption_key)}"' in resources_for("kms:GenerateDataKey*")


def test_clients_invoke_asynchronously_put_requests_and_read_answers(serving: Serving) -> None:
    found = statements(serving.template, serving.client)
    actions = {a for s in found for a in actions_of(s)}
    assert "sagemaker:InvokeEndpointAsync" in actions
    assert "sagemaker:InvokeEndpoint" not in actions
    invoke = next(s for s in found if "sagemaker:InvokeEndpointAsync" in actions_of(s))
    assert json.dumps(invoke["Resource"]).endswith(':sagemaker:eu-west-1:123456789012:endpoint/churn-async"]]}')
    writes = json.dumps([s["Resource"] for s in found if "s3:PutObject" in actions_of(s)])
    reads = json.dumps([s["Resource"] for s in found if "s3:GetObject*" in actions_of(s)])
    assert '"/async-inference/churn-async/input/*"' in writes
    assert "output" not in writes
    assert '"/async-inference/churn-async/output/*"' in reads
    assert '"/async-inference/churn-async/failures/*"' in reads


def test_the_variant_tracks_its_queue_and_scales_out_from_zero(serving: Serving) -> None:
    cold = serving.cold
    assert cold.scalable_target is not None
    assert cold.scaling_policy is not None
    assert cold.scale_out_from_zero_alarm is not None
    target = props_of(serving, cold.scalable_target.node.default_child)
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 4)
    assert target["ResourceId"] == "endpoint/churn-async/variant/AllTraffic"
    tracking = props_of(serving, cold.scaling_policy.node.default_child)["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 3
    assert tracking["CustomizedMetricSpecification"] == {
        "Namespace": "AWS/SageMaker",
        "MetricName": "ApproximateBacklogSizePerInstance",
        "Dimensions": [{"Name": "EndpointName", "Value": "churn-async"}],
        "Statistic": "Average",
    }
    alarm = props_of(serving, cold.scale_out_from_zero_alarm)
    assert (alarm["MetricName"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "HasBacklogWithoutCapacity",
        1,
        "GreaterThanOrEqualToThreshold",
    )
    (action,) = alarm["AlarmActions"]
    step = serving.raw["Resources"][action["Ref"]]["Properties"]
    assert step["PolicyType"] == "StepScaling"
    assert step["ScalingTargetId"] == {"Ref": logical_id(cold.scalable_target.node.default_child)}
    assert step["StepScalingPolicyConfiguration"]["StepAdjustments"] == [
        {"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}
    ]


def test_an_endpoint_that_keeps_an_instance_needs_no_scale_out_from_zero(serving: Serving) -> None:
    assert serving.warm.scale_out_from_zero_alarm is None
    step_policies = [
        r
        for r in serving.raw["Resources"].values()
        if r["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy" and r["Properties"]["PolicyType"] == "StepScaling"
    ]
    assert len(step_policies) == 1
    # A local-storage GPU instance is encrypted by hardware, as for realtime endpoints.
    assert "KmsKeyId" not in props_of(serving, serving.warm.endpoint_config)


def test_model_updates_roll_out_blue_green_and_keep_the_scaled_count(serving: Serving) -> None:
    endpoint = props_of(serving, serving.cold.endpoint)
    assert endpoint["RetainAllVariantProperties"] is True
    alarms = endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert [a["AlarmName"]["Ref"] for a in alarms] == [logical_id(a) for a in serving.cold.rollback_alarms]


def test_the_dashboard_shows_the_queue_not_the_metrics_asynchronous_endpoints_lack(serving: Serving) -> None:
    body = json.dumps(props_of(serving, serving.cold.dashboard)["DashboardBody"])
    for shown in ("ApproximateBacklogSize", "ApproximateAgeOfOldestRequest", "ApproximateBacklogSizePerInstance"):
        assert shown in body
    for missing in ('\\"Invocations\\"', "InvocationsPerInstance", "OverheadLatency"):
        assert missing not in body


def test_queue_metrics_have_the_endpoint_dimension_only(serving: Serving) -> None:
    expected = {
        "metric_backlog_size": ("ApproximateBacklogSize", "Average"),
        "metric_backlog_size_per_instance": ("ApproximateBacklogSizePerInstance", "Average"),
        "metric_age_of_oldest_request": ("ApproximateAgeOfOldestRequest", "Maximum"),
        "metric_has_backlog_without_capacity": ("HasBacklogWithoutCapacity", "Average"),
    }
    for method, (name, statistic) in expected.items():
        metric = getattr(serving.cold, method)()
        assert (metric.namespace, metric.metric_name, metric.statistic) == ("AWS/SageMaker", name, statistic)
        assert metric.dimensions == {"EndpointName": "churn-async"}
        assert metric.period.to_seconds() == 60


def test_the_stack_is_cfn_lint_and_cdk_nag_clean(serving: Serving) -> None:
    assert cfn_lint_findings(serving.raw, region="eu-west-1") == []
    assert nag_findings(serving.stack) == []


# ------------------------------------------------------------------ validation


def build(**kwargs: Any) -> ModelEndpoint:
    stack = cdk.Stack(cdk.App(), "Test")
    store = VersionedDataStore(stack, "Data")
    args: dict[str, Any] = {"endpoint_name": "churn", "data_store": store, "model_package_arn": PACKAGE_ARN, **ASYNC}
    return ModelEndpoint(stack, "Endpoint", **{**args, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"data_capture": DataCaptureSettings()},
            "data_capture is not enabled on asynchronous endpoints here: AWS documents data capture",
        ),
        ({"scale_down": ScaleDownSchedule()}, "an asynchronous endpoint scales in to async_inference.min_capacity"),
        (
            {"realtime": RealtimeSettings()},
            "realtime settings were given for an asynchronous endpoint; remove them or set kind=EndpointKind.REALTIME",
        ),
        ({"serverless": ServerlessSettings()}, "set kind=EndpointKind.SERVERLESS"),
        (
            {"async_inference": AsyncSettings(min_capacity=3, max_capacity=2)},
            "async_inference.min_capacity (3) must not exceed async_inference.max_capacity (2)",
        ),
        (
            {"async_inference": AsyncSettings(initial_instance_count=0)},
            "async_inference.initial_instance_count (0) must be a whole number of at least 1",
        ),
        (
            {"async_inference": AsyncSettings(initial_instance_count=3, max_capacity=2)},
            "async_inference.initial_instance_count (3) must be within [min_capacity, max_capacity] = [0, 2]",
        ),
        (
            {"async_inference": AsyncSettings(min_capacity=-1)},
            "async_inference.min_capacity (-1) must be a whole number of at least 0",
        ),
        (
            {"async_inference": AsyncSettings(max_concurrent_invocations_per_instance=1001)},
            "async_inference.max_concurrent_invocations_per_instance (1001) must be a whole number from 1 to 1000",
        ),
        (
            {"async_inference": AsyncSettings(target_backlog_per_instance=0)},
            "async_inference.target_backlog_per_instance (0) must be a whole number of at least 1",
        ),
        (
            {"async_inference": AsyncSettings(instance_type="ml.t2.medium")},
            "async_inference.instance_type 'ml.t2.medium' is burstable",
        ),
    ],
)
def test_invalid_input_names_the_setting_and_fix(kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build(**kwargs)
    assert any(expected in p for p in caught.value.problems), caught.value.problems


def test_async_settings_on_another_kind_are_refused() -> None:
    with pytest.raises(ConfigurationError) as caught:
        build(kind=EndpointKind.REALTIME, async_inference=AsyncSettings())
    assert list(caught.value.problems) == [
        "async_inference settings were given for a realtime endpoint; remove them or set kind=EndpointKind.ASYNC"
    ]


def test_model_monitor_refuses_an_asynchronous_endpoint_which_captures_nothing() -> None:
    endpoint = build()
    stack = cdk.Stack.of(endpoint)
    store = endpoint._data_store
    with pytest.raises(ConfigurationError, match="captures no data, and Model Monitor analyses captured requests"):
        ModelMonitor(
            stack,
            "Monitor",
            endpoint=endpoint,
            data_store=store,
            dataset="churn",
            data_quality=DataQualitySettings(baselines=Baselines.from_prefix("s3://bucket/baseline/")),
        )
