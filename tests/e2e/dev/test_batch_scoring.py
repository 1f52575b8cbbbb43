"""End to end: batch scoring of a data drop on the deployed Dev stage, with the real handler, script and CLI.

Runs on the package's deployment (tests/e2e/dev/conftest.py) after the closed loop's tests, whose
approved model package it serves; run alone, it trains and registers one with the loop's steps
first. One extra deploy: Dev again, serving that package (the settings
:func:`cdk_mlops.delivery_steps.model_settings` gives the model delivery pipeline) with
``batch_inference`` scoring ``churn-scoring``, into the package's cloud assembly directory, so
that the package's destroy tests remove the Scoring stack too. Then
:func:`cdk_mlops.local.batch_demo.score_drop` drops scoring data, delivers it to the deployed
scoring trigger, redelivers it and runs the execution's steps locally; the tests read SageMaker
and S3 themselves.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cdk_mlops import datasets
from cdk_mlops import pipeline_definition as pd
from cdk_mlops.lambdas.retrain_trigger import core
from cdk_mlops.local.batch_demo import (
    SCORING_DATASET,
    Scored,
    ScoringDeployment,
    check_scored,
    deploy_scoring,
    render_scored,
    score_drop,
    scoring_version,
    train_model,
)
from cdk_mlops.local.fleet_loop import DEMO_CATALOGUE
from cdk_mlops.local.loop import Line, discover
from cdk_mlops.local.server import LocalAws
from cdk_mlops.pipeline_definition import scoring as sd
from cdk_mlops.stacks.scoring_stack import scoring_name
from tests.e2e.conftest import Deployment
from tests.e2e.dev.test_closed_loop import sample_pattern

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass
class ScoringRun:
    aws: LocalAws
    package: dict[str, Any]
    deployment: ScoringDeployment
    scored: Scored
    lines: list[Line]

    def client(self, service: str) -> Any:
        return self.aws.client(service)


def approved_package(aws: LocalAws, work_dir: Path) -> dict[str, Any]:
    """The newest approved package of the training registry: the closed loop's, else one trained now."""
    training = discover(aws)
    sagemaker = aws.client("sagemaker")
    approved = sagemaker.list_model_packages(
        ModelPackageGroupName=training.model_package_group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
    )["ModelPackageSummaryList"]
    if approved:
        return dict(sagemaker.describe_model_package(ModelPackageName=approved[0]["ModelPackageArn"]))
    return dict(train_model(aws, work_dir=work_dir).registration.package)


@pytest.fixture(scope="module")
def run(dev_stage: Deployment, tmp_path_factory: pytest.TempPathFactory) -> ScoringRun:
    assert not dev_stage.destroyed, "scoring runs on the deployed stage; the destroy tests run last"
    aws = dev_stage.aws
    package = approved_package(aws, tmp_path_factory.mktemp("training"))
    # The catalogue the package deployed stays: the redeploy changes nothing but the scoring settings.
    deployment = deploy_scoring(aws, package, output=dev_stage.output, directory=REPO_ROOT, overrides=DEMO_CATALOGUE)
    # The package's destroy tests check every stack of the stage as it is now deployed.
    dev_stage.templates = list(deployment.templates)
    cloudformation = aws.client("cloudformation")
    for stack in deployment.templates:
        for resource in cloudformation.describe_stack_resources(StackName=stack.name)["StackResources"]:
            if resource.get("LogicalResourceId"):
                dev_stage.physical_ids[(stack.name, resource["LogicalResourceId"])] = resource["PhysicalResourceId"]
    scored = score_drop(aws, deployment.platform, work_dir=tmp_path_factory.mktemp("scoring"))
    return ScoringRun(aws, package, deployment, scored, render_scored(scored))


def executions(run: ScoringRun) -> list[str]:
    summaries = run.client("sagemaker").list_pipeline_executions(PipelineName=run.deployment.platform.pipeline_name)
    return [s["PipelineExecutionArn"] for s in summaries["PipelineExecutionSummaries"]]


def parameters_in_sagemaker(run: ScoringRun, execution_arn: str) -> dict[str, str]:
    listed = run.client("sagemaker").list_pipeline_parameters_for_execution(PipelineExecutionArn=execution_arn)
    return {p["Name"]: p["Value"] for p in listed["PipelineParameters"]}


def test_the_stage_serves_the_approved_package_and_scores_another_dataset(run):
    platform = run.deployment.platform
    assert run.deployment.overrides["model_package_arn"] == run.package["ModelPackageArn"]
    assert run.deployment.overrides["batch_inference"] == {"dataset": SCORING_DATASET}
    assert run.deployment.overrides["model_baseline_prefix"].endswith("/data-quality-baseline/")
    assert "Dev-Scoring" in [t.name for t in run.deployment.templates]
    assert platform.dataset == SCORING_DATASET
    assert platform.pipeline_name == scoring_name_of_dev() == "cdk-mlops-dev-scoring"
    defaults = {p["Name"]: p.get("DefaultValue") for p in platform.definition["Parameters"]}
    assert defaults[sd.MODEL_PACKAGE_ARN] == run.package["ModelPackageArn"]


def scoring_name_of_dev() -> str:
    from cdk_mlops.config import load_environments

    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    (dev,) = [c for c in load_environments(context["environments"]) if c.name == "dev"]
    return scoring_name(dev)


def test_one_data_drop_starts_exactly_one_scoring_run(run):
    started = run.scored.started
    first, *_, last = started.deliveries
    assert len(first.records) == len(run.scored.upload.keys) == 2
    assert [d.decision for d in last.decisions] == ["started"]
    assert sum(len(d.decided("started")) for d in started.deliveries) == 1
    assert executions(run) == [started.execution_arn]


def test_a_redelivered_batch_starts_no_scoring_run(run):
    again = run.scored.redelivery
    original = run.scored.started.deliveries[0]
    assert again.delivery.redelivery
    assert [r["messageId"] for r in again.delivery.records] == [r["messageId"] for r in original.records]
    assert not again.delivery.decided("started")
    assert executions(run) == [run.scored.started.execution_arn]
    assert again.idempotency_status == "COMPLETED"
    assert again.idempotency_execution == run.scored.started.execution_arn


def test_the_run_parameters_name_the_manifest_of_the_drop(run):
    arn = run.scored.started.execution_arn
    parameters = parameters_in_sagemaker(run, arn)
    platform = run.deployment.platform
    uri = parameters[pd.INPUT_MANIFEST_URI]
    assert uri.startswith(f"s3://{platform.bucket}/{datasets.manifest_prefix(SCORING_DATASET)}")
    manifest = datasets.load_manifest(uri, s3=run.client("s3"))
    assert {e.key: e.version_id for e in manifest.entries} == dict(run.scored.upload.version_ids)
    assert parameters[pd.MANIFEST_SHA256] == manifest.sha256
    assert parameters[pd.DATA_VERSION] == core.data_version(manifest.created_at, manifest.sha256)
    # no champion lookup for scoring: only the data parameters are sent
    assert pd.CHAMPION_METRIC not in parameters


def output_prefix(run: ScoringRun) -> tuple[str, str]:
    parameters = parameters_in_sagemaker(run, run.scored.started.execution_arn)
    execution_id = run.scored.started.execution_arn.rsplit("/", 1)[-1]
    key = f"{sd.output_prefix(scoring_name_of_dev())}{parameters[pd.DATA_VERSION]}/{execution_id}/"
    return run.deployment.platform.bucket, key


def test_lineage_names_the_package_and_the_manifest(run):
    bucket, prefix = output_prefix(run)
    lineage = json.loads(run.client("s3").get_object(Bucket=bucket, Key=prefix + sd.LINEAGE_FILE)["Body"].read())
    parameters = parameters_in_sagemaker(run, run.scored.started.execution_arn)
    assert lineage["ModelPackageArn"] == run.package["ModelPackageArn"]
    assert lineage["InputManifestUri"] == parameters[pd.INPUT_MANIFEST_URI]
    assert lineage["ManifestSha256"] == parameters[pd.MANIFEST_SHA256]
    assert lineage["PipelineExecutionArn"] == run.scored.started.execution_arn
    assert lineage["Dataset"] == SCORING_DATASET
    assert lineage["DroppedLabelColumn"] is None


def test_one_prediction_per_input_row(run):
    bucket, prefix = output_prefix(run)
    s3 = run.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    outs = [k for k in keys if k.endswith(".out")]
    assert outs, keys
    predictions = [
        line for key in outs for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
    ]
    dropped = sum(len(body.decode().splitlines()) - 1 for body in scoring_version().files.values())
    assert len(predictions) == dropped == run.scored.rows == 269
    assert all(0.0 <= float(p) <= 1.0 for p in predictions)
    check_scored(run.scored)  # the demo's own checks agree


def readme_sample() -> list[str]:
    """The README's sample of ``make demo-batch``: the ``[loop]`` block of its subsection."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("### What `make demo-batch` shows", 1)[1]
    block = re.search(r"^```\n(\[loop\].*?)^```$", section, re.DOTALL | re.MULTILINE)
    assert block is not None, "the README shows no sample of make demo-batch's output"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_sample_is_what_the_demo_prints_in_that_order(run):
    printed = [f"[loop] {step:<11} {text}" for step, text in run.lines]
    position = 0
    for line in readme_sample():
        pattern = sample_pattern(line)
        found = next((i for i in range(position, len(printed)) if pattern.match(printed[i].strip())), None)
        assert found is not None, f"README sample line not printed (after line {position}): {line}"
        position = found + 1
