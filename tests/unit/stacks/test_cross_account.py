"""Promotion across accounts: dev's registry and artifacts are readable where its models are served."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from cdk_mlops.config import load_environments
from cdk_mlops.stacks.stage import MlopsPlatformStage, build_platform
from tests.quality import actions_of, cfn_lint_findings, nag_findings, resolve_like_cloudformation, statements

DEV, STAGING, PROD = "111111111111", "222222222222", "333333333333"
REGION = "eu-west-1"
SOURCE_BUCKET = "dev-data-bucket-1a2b3c"
PACKAGE = f"arn:aws:sagemaker:{REGION}:{DEV}:model-package/cdk-mlops-dev-training-models/4"
BASELINE = "artifacts/cdk-mlops-dev-training/exec-9/data-quality-baseline/"


@dataclass(frozen=True)
class Promoted:
    stages: dict[str, MlopsPlatformStage]
    templates: dict[str, dict[str, Any]]

    def template(self, path: str) -> Template:
        return Template.from_json(self.templates[path])


@pytest.fixture(scope="module")
def promoted() -> Promoted:
    """Dev, staging and prod in three accounts; staging and prod serve a model dev registered."""
    served = {"model_package_arn": PACKAGE, "model_baseline_prefix": BASELINE, "model_source_bucket": SOURCE_BUCKET}
    configs = load_environments(
        {
            "dev": {"account": DEV, "region": REGION},
            "staging": {"account": STAGING, "region": REGION, **served},
            "prod": {"account": PROD, "region": REGION, **served},
        }
    )
    app = cdk.App()
    stages = {s.stage_name: s for s in build_platform(app, configs)}
    assembly = app.synth()
    templates = {}
    for stage in stages.values():
        nested = assembly.get_nested_assembly(stage.artifact_id)
        for stack in (c for c in stage.node.children if isinstance(c, cdk.Stack)):
            templates[stack.node.path] = nested.get_stack_artifact(stack.artifact_id).template
    return Promoted(stages, templates)


def test_the_registry_may_be_read_from_the_accounts_models_are_promoted_to(promoted):
    (group,) = promoted.template("Dev/Training").find_resources("AWS::SageMaker::ModelPackageGroup").values()
    (statement,) = group["Properties"]["ModelPackageGroupPolicy"]["Statement"]
    principals = json.dumps(statement["Principal"]["AWS"])
    assert f":iam::{STAGING}:root" in principals
    assert f":iam::{PROD}:root" in principals
    assert "sagemaker:DescribeModelPackage" in statement["Action"]
    # The last environment promotes to no one: its registry has no resource policy.
    (prod_group,) = promoted.template("Prod/Training").find_resources("AWS::SageMaker::ModelPackageGroup").values()
    assert "ModelPackageGroupPolicy" not in prod_group["Properties"]


def test_the_pipelines_artifacts_and_only_those_may_be_read_from_those_accounts(promoted):
    data = promoted.template("Dev/Data")
    bucket_statements = [
        s
        for p in data.find_resources("AWS::S3::BucketPolicy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    (reader,) = [s for s in bucket_statements if str(s.get("Sid", "")).startswith("ReadFromOtherAccounts")]
    assert sorted(actions_of(reader)) == ["s3:GetObject", "s3:GetObjectVersion"]
    assert "/artifacts/cdk-mlops-dev-training/*" in json.dumps(reader["Resource"])
    assert STAGING in json.dumps(reader["Principal"])
    assert PROD in json.dumps(reader["Principal"])
    (key,) = data.find_resources("AWS::KMS::Key").values()
    decrypt = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if STAGING in json.dumps(s.get("Principal", {}))]
    assert len(decrypt) == 1
    assert actions_of(decrypt[0]) == ["kms:Decrypt"]
    via = resolve_like_cloudformation(decrypt[0]["Condition"]["StringEquals"]["kms:ViaService"], {}, region=REGION)
    assert via == f"s3.{REGION}.amazonaws.com"


@pytest.mark.parametrize("stage", ["Staging", "Prod"])
def test_the_endpoint_and_monitor_read_the_model_where_it_was_trained(promoted, stage):
    serving = promoted.stages[stage].serving
    assert serving is not None
    assert serving.monitor is not None
    template = promoted.template(f"{stage}/Serving")
    for role in (serving.endpoint.role, serving.monitor.role):
        granted = statements(template, role)
        reads = [s for s in granted if s["Resource"] == f"arn:aws:s3:::{SOURCE_BUCKET}/artifacts/*"]
        assert len(reads) == 1
        assert "s3:GetObject" in actions_of(reads[0])
        (decrypt,) = [s for s in granted if s["Resource"] == f"arn:aws:kms:{REGION}:{DEV}:key/*"]
        via = resolve_like_cloudformation(decrypt["Condition"]["StringEquals"], {}, region=REGION)
        assert via == {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
        assert f"arn:aws:s3:::{SOURCE_BUCKET}" in decrypt["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"]
    # The monitor checks against the baseline the training execution wrote in dev's bucket.
    (definition,) = template.find_resources("AWS::SageMaker::DataQualityJobDefinition").values()
    baseline = definition["Properties"]["DataQualityBaselineConfig"]
    assert baseline["ConstraintsResource"]["S3Uri"] == f"s3://{SOURCE_BUCKET}/{BASELINE}constraints.json"
    assert baseline["StatisticsResource"]["S3Uri"] == f"s3://{SOURCE_BUCKET}/{BASELINE}statistics.json"


def test_promoted_stacks_are_nag_and_cfn_lint_clean(promoted):
    for path in ("Dev/Data", "Dev/Training", "Staging/Serving", "Prod/Serving"):
        stack = promoted.stages[path.split("/")[0]].node.find_child(path.split("/")[1])
        assert isinstance(stack, cdk.Stack)
        assert nag_findings(stack) == [], path
        assert cfn_lint_findings(promoted.templates[path], region=REGION) == [], path
