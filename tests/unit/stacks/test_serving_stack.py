"""The serving stack per environment: serverless in dev, realtime with canary and rollback in prod."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk

from cdk_mlops.config import load_environments
from cdk_mlops.stacks.stage import MlopsPlatformStage
from tests.conftest import Platform


def resources_of(platform: Platform, path: str, type_: str) -> list[dict[str, Any]]:
    template = platform.stack(path).template
    return [r for r in template["Resources"].values() if r["Type"] == type_]


def test_dev_serves_serverless_all_at_once(platform):
    (config,) = resources_of(platform, "Dev/Serving", "AWS::SageMaker::EndpointConfig")
    variant = config["Properties"]["ProductionVariants"][0]
    assert "ServerlessConfig" in variant
    assert "DataCaptureConfig" not in config["Properties"]
    (endpoint,) = resources_of(platform, "Dev/Serving", "AWS::SageMaker::Endpoint")
    assert "AutoRollbackConfiguration" not in endpoint["Properties"].get("DeploymentConfig", {})


def test_prod_serves_realtime_with_canary_rollback_autoscaling_and_capture(platform):
    (config,) = resources_of(platform, "Prod/Serving", "AWS::SageMaker::EndpointConfig")
    assert config["Properties"]["ProductionVariants"][0]["InitialInstanceCount"] == 2
    assert config["Properties"]["DataCaptureConfig"]["InitialSamplingPercentage"] == 20
    assert "KmsKeyId" in config["Properties"]
    (endpoint,) = resources_of(platform, "Prod/Serving", "AWS::SageMaker::Endpoint")
    deployment = endpoint["Properties"]["DeploymentConfig"]
    assert deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    assert len(deployment["AutoRollbackConfiguration"]["Alarms"]) >= 2
    (target,) = resources_of(platform, "Prod/Serving", "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (2, 8)


def test_staging_scales_down_outside_working_hours(platform):
    (target,) = resources_of(platform, "Staging/Serving", "AWS::ApplicationAutoScaling::ScalableTarget")
    assert target["Properties"].get("ScheduledActions")


def test_without_an_approved_model_there_is_no_serving_stack():
    # GIVEN an environment no model has been approved for yet (construction only; nothing is synthesized)
    (dev,) = load_environments({"dev": {}})
    stage = MlopsPlatformStage(cdk.App(), "Dev", config=dev)
    # THEN the stage holds the data and training stacks only
    assert stage.serving is None
    assert [c.node.id for c in stage.node.children if isinstance(c, cdk.Stack)] == ["Data", "Training"]
