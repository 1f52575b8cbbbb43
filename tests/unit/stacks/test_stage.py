"""The per-environment stage: names, environments and profile-driven settings."""

from __future__ import annotations

import json

import aws_cdk as cdk

from cdk_mlops.config import TOOLING_KEY, load_tooling
from tests.conftest import REPO_ROOT


def test_one_stage_per_environment_named_after_it(platform):
    assert list(platform.stages) == ["Dev", "Staging", "Prod"]


def test_only_prod_stacks_have_termination_protection(platform):
    protected = {s.path: s.stack.termination_protection for s in platform.stacks if s.stage != "Tooling"}
    assert protected
    for path, on in protected.items():
        assert on is path.startswith("Prod/"), path


def test_stacks_without_account_and_region_are_environment_agnostic(platform):
    for s in (s for s in platform.stacks if s.stage != "Tooling"):
        assert cdk.Token.is_unresolved(s.stack.account), s.path
        assert cdk.Token.is_unresolved(s.stack.region), s.path


def test_every_taggable_resource_carries_environment_tags(platform):
    for s in platform.stacks:
        environment = s.stage.lower()
        for logical_id, resource in s.template["Resources"].items():
            tags = resource.get("Properties", {}).get("Tags")
            if isinstance(tags, list):
                as_map = {t["Key"]: t["Value"] for t in tags}
                assert as_map.get("environment") == environment, (s.path, logical_id)
                assert as_map.get("project") == "cdk-mlops", (s.path, logical_id)
                assert "owner" in as_map, (s.path, logical_id)


def test_the_reference_apps_cdk_json_defines_the_tooling_stage():
    # `cdk synth` of a clean clone includes the pipelines: cdk.json itself has a valid tooling section.
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    tooling = load_tooling(context.get(TOOLING_KEY))
    assert tooling is not None
    assert tooling.connection_arn is not None
    assert tooling.repository


def test_the_reference_app_includes_both_delivery_pipelines_in_a_tooling_stage(platform):
    tooling = platform.stack("Tooling/Delivery")
    pipelines = [r for r in tooling.template["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline"]
    assert len(pipelines) == 2
    assert tooling.stack.termination_protection is True
    # the environment stages are still deployable on their own
    assert {s.stage for s in platform.stacks} == {"Dev", "Staging", "Prod", "Tooling"}
