"""The serving stack per environment: serverless in dev, realtime with canary and rollback in prod."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk

from cdk_mlops.config import MONITOR_BASELINES, EndpointKind, load_environments
from cdk_mlops.constructs.model_monitor import MonitoringType, feature_drift_alarm_name
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


#: Each monitoring type's job definition, its baseline section, and the files it reads there.
JOB_DEFINITIONS = {
    "AWS::SageMaker::DataQualityJobDefinition": (
        "DataQualityBaselineConfig",
        "data-quality-baseline/",
        ["constraints.json", "statistics.json"],
    ),
    "AWS::SageMaker::ModelQualityJobDefinition": (
        "ModelQualityBaselineConfig",
        "model-quality-baseline/",
        ["constraints.json"],
    ),
    "AWS::SageMaker::ModelBiasJobDefinition": (
        "ModelBiasBaselineConfig",
        "model-bias-baseline/",
        ["analysis.json", "analysis_config.json"],
    ),
    "AWS::SageMaker::ModelExplainabilityJobDefinition": (
        "ModelExplainabilityBaselineConfig",
        "model-explainability-baseline/",
        ["analysis.json", "analysis_config.json"],
    ),
}


def test_staging_and_prod_run_all_four_monitors_each_against_the_served_packages_own_baseline(platform):
    for stage, data_quality_schedule in (("Prod", "cron(0 * ? * * *)"), ("Staging", "cron(0 0 ? * * *)")):
        path = f"{stage}/Serving"
        config = next(c for c in platform.configs if c.stage_name == stage)
        execution = str(config.model_baseline_prefix).removesuffix("data-quality-baseline/")
        schedules = resources_of(platform, path, "AWS::SageMaker::MonitoringSchedule")
        types = sorted(s["Properties"]["MonitoringScheduleConfig"]["MonitoringType"] for s in schedules)
        assert types == ["DataQuality", "ModelBias", "ModelExplainability", "ModelQuality"]
        by_type = {s["Properties"]["MonitoringScheduleConfig"]["MonitoringType"]: s for s in schedules}
        expression = by_type["DataQuality"]["Properties"]["MonitoringScheduleConfig"]["ScheduleConfig"]
        assert expression["ScheduleExpression"] == data_quality_schedule
        # Explainability reads a copy of the package's configuration that names the served model.
        (served,) = resources_of(platform, path, "Custom::ExplainabilityAnalysisConfig")
        (model,) = [
            k for k, r in platform.stack(path).template["Resources"].items() if r["Type"] == "AWS::SageMaker::Model"
        ]
        assert served["Properties"]["ModelName"] == {"Fn::GetAtt": [model, "ModelName"]}
        for kind, (section, folder, files) in JOB_DEFINITIONS.items():
            (definition,) = resources_of(platform, path, kind)
            read = json.dumps(definition["Properties"][section]) + json.dumps(definition["Properties"])
            if kind == "AWS::SageMaker::ModelExplainabilityJobDefinition":
                assert '"ConfigUri": {"Fn::GetAtt": [' in read
                read += json.dumps(served["Properties"]["SourceUri"])
            for file in files:
                # The baseline the training execution of the served package wrote, beside data quality.
                assert f"{execution}{folder}{file}" in read, (kind, file)
        for kind in ("AWS::SageMaker::ModelQualityJobDefinition", "AWS::SageMaker::ModelBiasJobDefinition"):
            (definition,) = resources_of(platform, path, kind)
            assert f"ground-truth/{config.project}-{config.name}/" in json.dumps(definition["Properties"])
    assert resources_of(platform, "Dev/Serving", "AWS::SageMaker::MonitoringSchedule") == []


def test_labelled_monitors_wait_for_ground_truth_and_say_so():
    # GIVEN staging serving a package with all four baselines, before labels are delivered
    prefix = "artifacts/cdk-mlops-staging-training/exec-1/data-quality-baseline/"
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1"
    settings = {"model_package_arn": arn, "model_baseline_prefix": prefix, "model_baselines": list(MONITOR_BASELINES)}
    (staging,) = load_environments({"staging": settings})
    stage = MlopsPlatformStage(cdk.App(), "Staging", config=staging)
    serving = stage.serving
    assert serving is not None
    assert serving.monitor is not None
    # THEN data quality and explainability run; model quality and bias wait, naming the fix
    assert sorted(serving.monitor.schedules) == [MonitoringType.DATA_QUALITY, MonitoringType.MODEL_EXPLAINABILITY]
    assert sorted(serving.unmonitored) == ["model-bias", "model-quality"]
    assert all("ground_truth to true" in why for why in serving.unmonitored.values())
    # AND a package with data quality alone gets that monitor alone
    (plain,) = load_environments({"staging": settings | {"model_baselines": ["data-quality"], "ground_truth": True}})
    serving = MlopsPlatformStage(cdk.App(), "Staging", config=plain).serving
    assert serving is not None
    assert serving.monitor is not None
    assert list(serving.monitor.schedules) == [MonitoringType.DATA_QUALITY]


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


def test_an_async_environment_serves_from_the_queue_warm_in_prod_and_unmonitored():
    # GIVEN staging and prod choosing asynchronous endpoints (construction only; nothing is synthesized)
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1"
    prefix = "artifacts/cdk-mlops-staging-training/exec-1/data-quality-baseline/"
    settings = {"model_package_arn": arn, "model_baseline_prefix": prefix, "endpoint_kind": "async"}
    capacities = {}
    for config in load_environments({"staging": settings, "prod": settings}):
        serving = MlopsPlatformStage(cdk.App(), config.name.title(), config=config).serving
        assert serving is not None
        endpoint = serving.endpoint
        # THEN the endpoint is asynchronous, answers into the data store, and no monitor watches it
        assert endpoint.kind is EndpointKind.ASYNC
        assert endpoint.async_output_uri is not None
        assert endpoint.capture_uri is None
        assert serving.monitor is None
        # AND it rolls out by canary, as realtime endpoints do
        assert endpoint.rollback_alarms
        assert endpoint.scalable_target is not None
        capacities[config.name] = endpoint.scale_out_from_zero_alarm is not None
    # AND staging scales to zero while prod keeps an instance
    assert capacities == {"staging": True, "prod": False}
