"""Every serving resource the endpoint constructs define is a request the AWS API accepts.

CloudFormation creates a SageMaker model, endpoint configuration, endpoint and inference
component by calling the SageMaker API with the resource's properties (their names are the
API's), and an autoscaling target and policy by calling Application Auto Scaling. Each
resource of a template with every serving kind is resolved as CloudFormation would resolve it
and validated against botocore's model of the call (members, types, required members, lengths,
enums and patterns):

- ``AWS::SageMaker::Model`` as ``CreateModel``;
- ``AWS::SageMaker::EndpointConfig`` as ``CreateEndpointConfig``;
- ``AWS::SageMaker::Endpoint`` as ``UpdateEndpoint`` (a model update: the retention and
  deployment settings are members of the update, not of the create);
- ``AWS::SageMaker::InferenceComponent`` as ``CreateInferenceComponent``;
- ``AWS::ApplicationAutoScaling::ScalableTarget`` as ``RegisterScalableTarget``, and each of
  its scheduled actions as ``PutScheduledAction``;
- ``AWS::ApplicationAutoScaling::ScalingPolicy`` as ``PutScalingPolicy``, naming its target's
  service namespace, resource id and dimension as the call does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2

from cdk_mlops.compliance import synth_app
from cdk_mlops.config import EndpointKind
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.model_endpoint import (
    AsyncSettings,
    ComponentSettings,
    DataCaptureSettings,
    ModelEndpoint,
    RealtimeSettings,
    RolloutSettings,
    ScaleDownSchedule,
    ServerlessSettings,
    SharedInstances,
    SharedModelEndpoint,
)
from tests.contracts import botocore_checks as checks
from tests.quality import resolve_like_cloudformation

ACCOUNT, REGION = "123456789012", "eu-west-1"
PACKAGE = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/churn-models/3"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/xgboost-inference:1.7-1"
APPLICATION_AUTOSCALING = "application-autoscaling"


def serving_template() -> dict[str, Any]:
    """A stack with every serving kind.

    A realtime endpoint (capture, VPC, schedule), a serverless one, two asynchronous ones (from
    zero and warm) and a shared endpoint with two models (from zero, and a warm one on an image).
    """
    app = cdk.App()
    stack = cdk.Stack(app, "Serving", env=cdk.Environment(account=ACCOUNT, region=REGION))
    store = VersionedDataStore(stack, "Store", datasets=["churn"])
    vpc = ec2.Vpc.from_vpc_attributes(
        stack,
        "Vpc",
        vpc_id="vpc-0123456789abcdef0",
        availability_zones=[f"{REGION}a", f"{REGION}b"],
        private_subnet_ids=["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
    )
    ModelEndpoint(
        stack,
        "Realtime",
        endpoint_name="churn",
        data_store=store,
        model_package_arn=PACKAGE,
        image_uri=IMAGE,
        realtime=RealtimeSettings(instance_type="ml.c5.xlarge", initial_instance_count=2, max_capacity=6),
        data_capture=DataCaptureSettings(sampling_percentage=20),
        rollout=RolloutSettings(max_execution_time=Duration.hours(1)),
        scale_down=ScaleDownSchedule(time_zone=cdk.TimeZone.EUROPE_BERLIN),
        vpc=vpc,
    )
    ModelEndpoint(
        stack,
        "Serverless",
        endpoint_name="churn-dev",
        data_store=store,
        model_data_url=store.s3_uri("artifacts/churn/model.tar.gz"),
        image_uri=IMAGE,
        environment={"SAGEMAKER_PROGRAM": "inference.py"},
        kind=EndpointKind.SERVERLESS,
        serverless=ServerlessSettings(provisioned_concurrency=2),
        rollout=RolloutSettings.immediate(),
    )
    ModelEndpoint(
        stack,
        "Async",
        endpoint_name="churn-batch",
        data_store=store,
        model_package_arn=PACKAGE,
        kind=EndpointKind.ASYNC,
        async_inference=AsyncSettings(max_concurrent_invocations_per_instance=4),
        vpc=vpc,
    )
    ModelEndpoint(
        stack,
        "AsyncWarm",
        endpoint_name="churn-warm",
        data_store=store,
        model_package_arn=PACKAGE,
        kind=EndpointKind.ASYNC,
        async_inference=AsyncSettings(min_capacity=1, max_capacity=3),
    )
    shared = SharedModelEndpoint(
        stack, "Shared", endpoint_name="fleet", data_store=store, instances=SharedInstances(min_instance_count=1)
    )
    shared.add_model("Churn", model_name="churn", model_package_arn=PACKAGE)
    shared.add_model(
        "Fraud",
        model_name="fraud",
        model_data_url=store.s3_uri("artifacts/fraud/model.tar.gz"),
        image_uri=IMAGE,
        settings=ComponentSettings(cpu_cores=0.5, memory_mb=512, min_copies=1, max_copies=4),
    )
    template: dict[str, Any] = synth_app(app).get_stack_artifact(stack.artifact_id).template
    return template


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return serving_template()


def resolved(template: Mapping[str, Any], properties: Any) -> Any:
    return resolve_like_cloudformation(properties, template, region=REGION, account=ACCOUNT, service_arns=True)


def of_type(template: Mapping[str, Any], type_: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == type_:
            yield logical_id, resolved(template, resource["Properties"])


def scaling_target_of(template: Mapping[str, Any], policy: Mapping[str, Any]) -> dict[str, Any]:
    """What ``PutScalingPolicy`` names instead of CloudFormation's ``ScalingTargetId``."""
    target_id = template["Resources"][policy["ScalingTargetId"]["Ref"]]["Properties"]
    return {key: target_id[key] for key in ("ServiceNamespace", "ResourceId", "ScalableDimension")}


def requests(template: Mapping[str, Any]) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(resource, service, operation, request) for every serving resource of the template."""
    for logical_id, props in of_type(template, "AWS::SageMaker::Model"):
        yield logical_id, "sagemaker", "CreateModel", {"ModelName": logical_id.lower(), **props}
    for logical_id, props in of_type(template, "AWS::SageMaker::EndpointConfig"):
        yield logical_id, "sagemaker", "CreateEndpointConfig", {"EndpointConfigName": logical_id.lower(), **props}
    for logical_id, props in of_type(template, "AWS::SageMaker::Endpoint"):
        update = {key: value for key, value in props.items() if key != "Tags"}
        yield logical_id, "sagemaker", "UpdateEndpoint", update
    for logical_id, props in of_type(template, "AWS::SageMaker::InferenceComponent"):
        yield logical_id, "sagemaker", "CreateInferenceComponent", props
    for logical_id, props in of_type(template, "AWS::ApplicationAutoScaling::ScalableTarget"):
        actions = props.pop("ScheduledActions", [])
        yield logical_id, APPLICATION_AUTOSCALING, "RegisterScalableTarget", props
        dimensions = {key: props[key] for key in ("ServiceNamespace", "ResourceId", "ScalableDimension")}
        for action in actions:
            yield logical_id, APPLICATION_AUTOSCALING, "PutScheduledAction", {**dimensions, **action}
    raw = template["Resources"]
    for logical_id, props in of_type(template, "AWS::ApplicationAutoScaling::ScalingPolicy"):
        target = scaling_target_of(template, raw[logical_id]["Properties"])
        request = {key: value for key, value in props.items() if key != "ScalingTargetId"}
        yield logical_id, APPLICATION_AUTOSCALING, "PutScalingPolicy", {**resolved(template, target), **request}


def test_every_serving_resource_is_a_valid_api_request(template: dict[str, Any]) -> None:
    checked: dict[str, int] = {}
    problems: dict[str, list[str]] = {}
    for logical_id, service, operation, request in requests(template):
        checked[operation] = checked.get(operation, 0) + 1
        found = checks.request_problems(operation, request, service=service)
        if found:
            problems[f"{logical_id} as {operation}"] = found
    assert problems == {}
    # Every kind was there to check: 5 endpoints and 6 models; 3 scaled variants and 2 scaled
    # components; the realtime schedule's two actions; five target-tracking policies and the two
    # step policies that scale from zero.
    assert checked == {
        "CreateModel": 6,
        "CreateEndpointConfig": 5,
        "UpdateEndpoint": 5,
        "CreateInferenceComponent": 2,
        "RegisterScalableTarget": 5,
        "PutScheduledAction": 2,
        "PutScalingPolicy": 7,
    }


def test_the_checks_refuse_what_the_api_refuses(template: dict[str, Any]) -> None:
    # GIVEN the asynchronous endpoint configuration as deployed
    config = next(
        {"EndpointConfigName": "x", **props}
        for _, props in of_type(template, "AWS::SageMaker::EndpointConfig")
        if "AsyncInferenceConfig" in props
    )
    assert checks.request_problems("CreateEndpointConfig", config) == []
    # WHEN its topic is not a topic ARN, and its concurrency is above SageMaker's 1000
    broken = {**config, "AsyncInferenceConfig": {**config["AsyncInferenceConfig"]}}
    output = {**broken["AsyncInferenceConfig"]["OutputConfig"]}
    output["NotificationConfig"] = {**output["NotificationConfig"], "SuccessTopic": "success-topic"}
    broken["AsyncInferenceConfig"]["OutputConfig"] = output
    broken["AsyncInferenceConfig"]["ClientConfig"] = {"MaxConcurrentInvocationsPerInstance": 1001}
    # THEN both are reported, with where they are
    found = "\n".join(checks.request_problems("CreateEndpointConfig", broken))
    assert "AsyncInferenceConfig.OutputConfig.NotificationConfig.SuccessTopic" in found
    assert "AsyncInferenceConfig.ClientConfig.MaxConcurrentInvocationsPerInstance: 1001 is more than" in found
