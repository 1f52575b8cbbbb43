"""The platform in every supported layout synthesizes, passes cdk-nag and has no cfn-lint error or warning.

One test class per layout (see ``tests/contracts/variants.py``): pytest-xdist with
``--dist loadscope`` runs a class on one worker, so each layout is synthesized once, and
different layouts run on different workers. cfn-lint is told each stack's region, and
the stages that the tooling pipeline deploys are checked as well as the top-level ones.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any, ClassVar

import pytest
from cfnlint.api import ManualArgs, lint
from cfnlint.runner import Runner

from cdk_mlops import image_uris
from cdk_mlops.config import CONTEXT_KEY, TOOLING_KEY, load_environments
from cdk_mlops.local.examples import with_example_models
from tests import quality
from tests.conftest import REPO_ROOT
from tests.contracts import botocore_checks as checks
from tests.contracts.botocore_checks import SCENARIOS
from tests.contracts.variants import (
    DEV,
    NO_EXPERIMENTS_REGION,
    PROD,
    STAGING,
    TOOLING,
    SynthesizedVariant,
    deployed_pipelines,
    experiments_regions,
    readme_sections,
)
from tests.quality import cfn_lint_findings, nag_findings


class VariantChecks:
    """What every layout must pass. Subclasses name the layout in ``variant_name``."""

    variant_name: ClassVar[str]

    def test_synthesizes_with_every_nag_finding_acknowledged(self, variant: SynthesizedVariant) -> None:
        # Synthesis runs cdk-nag and the guardrails (apply_compliance) and fails on a finding.
        assert variant.error is None, variant.error
        findings = {s.path: nag_findings(s.stack) for s in variant.stacks}
        assert {path: found for path, found in findings.items() if found} == {}

    def test_cfn_lint_finds_no_error_and_no_warning(self, variant: SynthesizedVariant) -> None:
        stacks = variant.require()
        findings = {f"{s.path} ({s.region})": cfn_lint_findings(s.template, region=s.region) for s in stacks}
        assert {path: found for path, found in findings.items() if found} == {}

    def test_pipelines_record_experiments_only_where_sagemaker_has_them(self, variant: SynthesizedVariant) -> None:
        # An execution fails in a region without SageMaker Experiments if the definition names one.
        pipelines = deployed_pipelines(variant.require())
        assert pipelines
        regions = experiments_regions()
        wrong = [
            f"{p.stack_path}: PipelineExperimentConfig in {p.region}"
            for p in pipelines
            if "PipelineExperimentConfig" in p.definition and p.region not in regions
        ]
        assert wrong == []


class StepArgumentChecks:
    """Every job step of every pipeline of the layout is a request the SageMaker API accepts.

    The layout of the session ``platform`` fixture is checked in test_step_arguments.py.
    """

    @pytest.mark.parametrize("scenario", SCENARIOS)
    def test_every_pipeline_step_is_a_valid_api_request(self, variant: SynthesizedVariant, scenario: str) -> None:
        checks.assert_valid_step_requests(deployed_pipelines(variant.require()), scenario)


class TestShippedCdkJson(VariantChecks, StepArgumentChecks):
    variant_name = "shipped"


class TestEveryEnvironmentServing(VariantChecks):
    variant_name = "serving"


class TestReadmeLayout(VariantChecks, StepArgumentChecks):
    variant_name = "readme"

    def test_stacks_deploy_to_the_readmes_accounts_in_one_region(self, variant: SynthesizedVariant) -> None:
        placed = {(s.account, s.region) for s in variant.require()}
        assert placed == {(account, "eu-west-1") for account in (DEV, STAGING, PROD, TOOLING)}


class TestToolingInAnotherRegion(VariantChecks, StepArgumentChecks):
    variant_name = "tooling-elsewhere"


class TestEnvironmentsInThreeRegions(VariantChecks, StepArgumentChecks):
    variant_name = "three-regions"

    def test_stacks_deploy_to_three_regions(self, variant: SynthesizedVariant) -> None:
        regions = {s.region for s in variant.require() if s.account != TOOLING}
        assert regions == {"eu-west-1", "us-east-1", "ap-southeast-2"}


class TestRegionWithoutExperiments(VariantChecks, StepArgumentChecks):
    variant_name = "no-experiments"

    def test_the_region_has_no_experiments_and_every_image_the_library_uses(self) -> None:
        assert NO_EXPERIMENTS_REGION not in experiments_regions()
        for framework in image_uris.frameworks():
            assert image_uris.image_uri(framework, NO_EXPERIMENTS_REGION)

    def test_its_pipeline_runs_in_that_region(self, variant: SynthesizedVariant) -> None:
        assert {p.region for p in deployed_pipelines(variant.require())} == {NO_EXPERIMENTS_REGION}


# ----------------------------------------------------------------------------- the pieces the variants use


def test_the_readme_layout_is_the_one_the_readme_shows():
    sections = readme_sections()
    environments = {c.name: (c.account, c.region) for c in load_environments(sections[CONTEXT_KEY])}
    assert environments == {"dev": (DEV, "eu-west-1"), "staging": (STAGING, "eu-west-1"), "prod": (PROD, "eu-west-1")}
    assert (sections[TOOLING_KEY]["account"], sections[TOOLING_KEY]["region"]) == (TOOLING, "eu-west-1")


def test_example_models_are_packages_of_each_environments_own_registry():
    context = {CONTEXT_KEY: {"dev": {"account": DEV, "region": "ap-southeast-2"}, "staging": {}}}
    served = {c.name: c.model_package_arn for c in load_environments(with_example_models(context)[CONTEXT_KEY])}
    assert served == {
        "dev": f"arn:aws:sagemaker:ap-southeast-2:{DEV}:model-package/cdk-mlops-dev-training-models/1",
        # An environment-agnostic stage has no registry of its own to name.
        "staging": "arn:aws:sagemaker:us-east-1:123456789012:model-package/cdk-mlops-staging-training-models/1",
    }


#: One warning (W3005: a DependsOn that a GetAtt already implies) and nothing else.
REDUNDANT_DEPENDENCY: dict[str, Any] = {
    "Resources": {
        "Queue": {"Type": "AWS::SQS::Queue"},
        "Topic": {
            "Type": "AWS::SNS::Topic",
            "DependsOn": ["Queue"],
            "Properties": {"TopicName": {"Fn::GetAtt": ["Queue", "QueueName"]}},
        },
    }
}


#: Two errors (a misspelt property, a value out of its enumeration) and the warning above.
FAULTY: dict[str, Any] = {
    "Resources": {
        **REDUNDANT_DEPENDENCY["Resources"],
        "Bucket": {
            "Type": "AWS::S3::Bucket",
            "Properties": {"BucketNam": "b", "VersioningConfiguration": {"Status": "On"}},
        },
    }
}


def test_cfn_lint_rules_load_once_and_find_what_cfn_lint_finds(monkeypatch):
    # GIVEN a count of the loads of cfn-lint's rules (none if a test of this process loaded them)
    loads: list[Any] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        loads.append(args)
        return Runner(*args, **kwargs)

    monkeypatch.setattr(quality, "Runner", counted)

    def found(matches: list[Any]) -> list[str]:
        return sorted(f"{m.rule.id} {m.path_string}: {m.message}" for m in matches)

    faulty, clean = json.dumps(FAULTY), json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}})
    # WHEN templates are linted one after another with the shared rules
    first = found(quality.run_cfn_lint(faulty, region="eu-west-1"))
    assert found(quality.run_cfn_lint(clean, region="eu-west-1")) == []
    again = found(quality.run_cfn_lint(faulty, region="eu-west-1"))
    # THEN the rules were loaded at most once, and no finding leaks from one template to the next
    assert len(loads) <= 1
    assert first == again
    assert [f.split(" ", 1)[0] for f in first] == ["E3002", "E3030", "W3005"]
    # AND they are exactly what cfn-lint's own API finds, loading its rules for the call
    assert first == found(lint(faulty, config=ManualArgs(regions=["eu-west-1"])))


def test_cfn_lint_findings_include_warnings_and_are_cached_by_template_and_region(tmp_path, monkeypatch):
    monkeypatch.setattr(quality, "CFN_LINT_CACHE", tmp_path)
    findings = cfn_lint_findings(REDUNDANT_DEPENDENCY, region="eu-west-1")
    assert [f.split(" ", 1)[0] for f in findings] == ["W3005"]
    assert quality.cfn_lint_findings(REDUNDANT_DEPENDENCY, region="eu-west-1") == findings

    def no_lint(*_: Any, **__: Any) -> Any:
        raise AssertionError("linted again")

    monkeypatch.setattr(quality, "run_cfn_lint", no_lint)
    # GIVEN the same template with its keys in another order, THEN the cached result is used
    resources = REDUNDANT_DEPENDENCY["Resources"]
    reordered = {"Resources": {"Topic": resources["Topic"], "Queue": resources["Queue"]}}
    assert json.dumps(reordered) != json.dumps(REDUNDANT_DEPENDENCY)
    assert cfn_lint_findings(reordered, region="eu-west-1") == findings
    # but another region is another key
    with pytest.raises(AssertionError, match="linted again"):
        cfn_lint_findings(REDUNDANT_DEPENDENCY, region="us-east-1")


def test_cfn_lint_results_are_keyed_by_the_rule_settings_a_config_file_changes(tmp_path, monkeypatch):
    # The cache is shared by every checkout on the machine, so a .cfnlintrc that ignores a rule
    # must not be answered with results linted without it (nor the other way round).
    monkeypatch.setattr(quality, "CFN_LINT_CACHE", tmp_path / "cache")
    app = tmp_path / "app"
    app.mkdir()
    monkeypatch.chdir(app)
    quality._cfn_lint_settings.cache_clear()
    assert [f.split(" ", 1)[0] for f in cfn_lint_findings(REDUNDANT_DEPENDENCY, region="eu-west-1")] == ["W3005"]

    # GIVEN a config file that ignores that warning
    (app / ".cfnlintrc").write_text("ignore_checks:\n  - W3005\n")
    quality._cfn_lint_settings.cache_clear()
    try:
        # THEN the same template is another key, linted again under the new settings
        assert cfn_lint_findings(REDUNDANT_DEPENDENCY, region="eu-west-1") == []
        assert len(list((tmp_path / "cache").glob("*.json"))) == 2
    finally:
        quality._cfn_lint_settings.cache_clear()


@pytest.mark.parametrize(
    "settings",
    [{"XDG_CACHE_HOME": "/xdg"}, {"HOME": "/home/team"}, {"CDK_MLOPS_CACHE_DIR": "/shared", "XDG_CACHE_HOME": "/xdg"}],
    ids=["xdg", "home", "explicit"],
)
def test_the_tests_find_the_shared_cache_where_the_makefile_puts_it(settings):
    # `make` exports CDK_MLOPS_CACHE_DIR; a plain `pytest` resolves the same folder from the same variables.
    env = {"PATH": os.environ["PATH"], "HOME": "/root", **settings}
    printed = subprocess.run(
        ["make", "-n", "clean"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    [removed] = re.findall(r"^rm -rf '(/[^']*)'$", printed, re.MULTILINE)
    assert Path(removed) == quality.shared_cache_dir(env)
