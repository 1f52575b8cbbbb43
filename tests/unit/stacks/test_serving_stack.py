"""The serving stack per environment: serverless in dev, realtime with canary and rollback in prod."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk

from cdk_mlops.config import load_environments
from cdk_mlops.constructs.model_monitor import feature_drift_alarm_name
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


def test_realtime_endpoints_are_monitored_hourly_in_prod_and_daily_in_staging(platform):
    (prod,) = resources_of(platform, "Prod/Serving", "AWS::SageMaker::MonitoringSchedule")
    (staging,) = resources_of(platform, "Staging/Serving", "AWS::SageMaker::MonitoringSchedule")
    hourly = prod["Properties"]["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"]
    daily = staging["Properties"]["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"]
    assert hourly.startswith("cron(0 * ")
    assert daily != hourly
    assert resources_of(platform, "Dev/Serving", "AWS::SageMaker::MonitoringSchedule") == []


def test_a_drift_alarm_reaches_the_retrain_trigger(platform):
    # GIVEN the drift alarm the monitor creates in the serving stack
    name = feature_drift_alarm_name("cdk-mlops-prod", "mean_radius")
    alarms = [a["Properties"] for a in resources_of(platform, "Prod/Serving", "AWS::CloudWatch::Alarm")]
    assert any(a.get("AlarmName") == name for a in alarms)
    # THEN the trigger in the training stack routes that alarm's state changes to its queue
    rules = resources_of(platform, "Prod/Training", "AWS::Events::Rule")
    drift = [r for r in rules if r["Properties"]["EventPattern"].get("source") == ["aws.cloudwatch"]]
    assert len(drift) == 1
    assert name in json.dumps(drift[0]["Properties"]["EventPattern"]["resources"])
