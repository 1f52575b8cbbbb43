"""The scoring stack: batch inference of a second dataset with the approved model, and its monitor.

The shared platform synthesis serves every environment an example model; its realtime ones
(staging, and prod in its private network) also score ``churn-scoring``.
"""

from __future__ import annotations

import json
from typing import Any

from cdk_mlops.stacks.scoring_stack import scoring_name
from tests.conftest import Platform


def resources_of(platform: Platform, path: str, type_: str) -> list[dict[str, Any]]:
    template = platform.stack(path).template
    return [r for r in template["Resources"].values() if r["Type"] == type_]


def test_environments_with_batch_inference_score_with_their_approved_model(platform):
    scored = [c for c in platform.configs if c.batch_inference is not None]
    assert [c.stage_name for c in scored] == ["Staging", "Prod"]
    assert "Dev/Scoring" not in {s.path for s in platform.stacks}
    for config in scored:
        stage = config.stage_name
        assert config.batch_inference is not None
        (pipeline,) = resources_of(platform, f"{stage}/Scoring", "AWS::SageMaker::Pipeline")
        assert pipeline["Properties"]["PipelineName"] == scoring_name(config)
        scoring = platform.stages[stage].scoring
        assert scoring is not None
        definition = scoring.scoring.definition
        parameters = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
        # The environment's approved model, the one its endpoint serves.
        assert parameters["ModelPackageArn"] == config.model_package_arn
        # The scored dataset's drops reach the scoring trigger, and the store watches that dataset.
        rules = [
            r["Properties"]["EventPattern"] for r in resources_of(platform, f"{stage}/Scoring", "AWS::Events::Rule")
        ]
        keys = json.dumps([r for r in rules if r.get("source") == ["aws.s3"]])
        assert f"datasets/{config.batch_inference.dataset}/" in keys


def test_scored_data_is_monitored_against_the_served_packages_baselines(platform):
    for config in (c for c in platform.configs if c.batch_inference is not None):
        path = f"{config.stage_name}/Scoring"
        schedules = resources_of(platform, path, "AWS::SageMaker::MonitoringSchedule")
        types = sorted(s["Properties"]["MonitoringScheduleConfig"]["MonitoringType"] for s in schedules)
        assert types == ["DataQuality", "ModelQuality"]
        execution = str(config.model_baseline_prefix).removesuffix("data-quality-baseline/")
        for kind, folder in (
            ("AWS::SageMaker::DataQualityJobDefinition", "data-quality-baseline/"),
            ("AWS::SageMaker::ModelQualityJobDefinition", "model-quality-baseline/"),
        ):
            (definition,) = resources_of(platform, path, kind)
            text = json.dumps(definition["Properties"])
            assert f"{execution}{folder}constraints.json" in text
            assert "BatchTransformInput" in text
            assert "EndpointInput" not in text
            assert f"batch-capture/{scoring_name(config)}/" in text
        (quality,) = resources_of(platform, path, "AWS::SageMaker::ModelQualityJobDefinition")
        assert f"ground-truth/{scoring_name(config)}/" in json.dumps(quality["Properties"])


def test_in_a_private_network_the_scoring_jobs_and_trigger_run_in_the_vpc(platform):
    scoring = platform.stages["Prod"].scoring
    assert scoring is not None
    definition = scoring.scoring.definition
    jobs = [s for s in definition["Steps"] if s["Type"] in ("Processing", "Transform")]
    processing = next(s for s in jobs if s["Type"] == "Processing")
    assert processing["Arguments"]["NetworkConfig"]["VpcConfig"]["Subnets"]
    (function,) = resources_of(platform, "Prod/Scoring", "AWS::Lambda::Function")
    assert function["Properties"]["VpcConfig"]["SubnetIds"]
    (model_step,) = [s for s in definition["Steps"] if s["Type"] == "Model"]
    assert model_step["Arguments"].get("VpcConfig", {}).get("Subnets")
