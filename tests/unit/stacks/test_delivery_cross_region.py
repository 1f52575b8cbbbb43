"""The tooling in another region than the environments: the README's accounts, tooling in us-east-1.

CodePipeline then copies artifacts to a replication bucket in the environments' region, in a
support stack of the tooling stage; the platform pipeline's role encrypts them with that
bucket's key.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from cdk_mlops.stacks.delivery_stack import ToolingStage
from tests.contracts import variants
from tests.contracts.variants import TOOLING, SynthesizedVariant
from tests.quality import actions_of, cfn_lint_findings, nag_findings, statements
from tests.unit.constructs.test_delivery import connection_grant_problems, resources_of

TOOLING_REGION = "us-east-1"
ENVIRONMENT_REGION = "eu-west-1"


@pytest.fixture(scope="module")
def synthesized() -> SynthesizedVariant:
    """The layout synthesized as ``cdk synth`` does (cdk-nag and guardrails applied), once per process.

    It is the ``tooling-elsewhere`` variant of the contract checks: a worker that runs both
    modules synthesizes it once.
    """
    return variants.synthesized("tooling-elsewhere")


def tooling_stage(synthesized: SynthesizedVariant) -> ToolingStage:
    assert synthesized.error is None, synthesized.error
    stage = synthesized.stacks[0].stack.node.root.node.find_child("Tooling")
    assert isinstance(stage, ToolingStage)
    return stage


def template_of(synthesized: SynthesizedVariant, stack: cdk.Stack) -> dict[str, Any]:
    (template,) = [s.template for s in synthesized.stacks if s.stack is stack]
    return template


def test_the_layout_synthesizes_with_the_tooling_and_the_environments_in_their_regions(synthesized):
    assert synthesized.error is None, synthesized.error
    stage = tooling_stage(synthesized)
    assert (stage.delivery.account, stage.delivery.region) == (TOOLING, TOOLING_REGION)
    assert {e.region for e in stage.delivery.environments} == {ENVIRONMENT_REGION}
    support = stage.delivery.platform.code_pipeline.cross_region_support[ENVIRONMENT_REGION]
    assert support.stack is not stage.delivery
    assert support.stack.node.path in {s.path for s in synthesized.stacks}


def test_every_stack_has_no_unacknowledged_nag_finding(synthesized):
    assert synthesized.error is None, synthesized.error
    assert len(synthesized.stacks) > 20  # the environments, the tooling, its support stack, the pipeline's stages
    for stack in synthesized.stacks:
        assert nag_findings(stack.stack) == [], stack.path


def test_every_template_has_no_cfn_lint_error_or_warning(synthesized):
    assert synthesized.error is None, synthesized.error
    for stack in synthesized.stacks:
        assert cfn_lint_findings(stack.template, region=stack.region) == [], stack.path


def test_the_pipeline_role_uses_only_the_replication_key_of_the_other_region(synthesized):
    stage = tooling_stage(synthesized)
    platform = stage.delivery.platform
    support = platform.code_pipeline.cross_region_support[ENVIRONMENT_REGION]
    (alias,) = [c for c in support.stack.node.find_all() if isinstance(c, kms.CfnAlias)]
    granted = statements(Template.from_json(template_of(synthesized, stage.delivery)), platform.code_pipeline.role)
    kms_statements = [s for s in granted if any(a.startswith("kms:") for a in actions_of(s))]
    assert "*" not in [r for s in kms_statements for r in resources_of(s)]
    (replication,) = [s for s in kms_statements if "Condition" in s]
    assert replication["Resource"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":kms:{ENVIRONMENT_REGION}:{TOOLING}:key/*"]]
    }
    assert replication["Condition"] == {
        "ForAnyValue:StringEquals": {"kms:ResourceAliases": support.stack.resolve(alias.alias_name)}
    }


def test_every_connection_grant_names_the_action_of_the_connections_service(synthesized):
    stage = tooling_stage(synthesized)
    assert connection_grant_problems(template_of(synthesized, stage.delivery)) == []
