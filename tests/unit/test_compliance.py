"""Every stack of every environment passes cfn-lint and cdk-nag."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

from cdk_mlops.compliance import apply_compliance, apply_tags, synth_app, validation_failures
from cdk_mlops.config import Profile, profile_defaults
from tests.quality import cfn_lint_findings, nag_findings


def test_every_template_passes_cfn_lint(platform, platform_stack_path):
    stack = platform.stack(platform_stack_path)
    region = stack.stack.region if not cdk.Token.is_unresolved(stack.stack.region) else "us-east-1"
    assert cfn_lint_findings(stack.template, region=region) == []


def test_every_stack_has_no_unacknowledged_nag_finding(platform, platform_stack_path):
    assert nag_findings(platform.stack(platform_stack_path).stack) == []


def test_the_stage_holds_exactly_the_declared_stacks(platform):
    for stage in platform.stages.values():
        stacks = [c.node.id for c in stage.node.children if isinstance(c, cdk.Stack)]
        assert stacks == list(type(stage).stack_ids(stage.config))
    assert "Network" in platform.stages["Prod"].stack_ids(platform.stages["Prod"].config)


def test_an_unacknowledged_finding_fails_synth():
    # GIVEN an app with compliance applied and a queue that breaks two AwsSolutions rules
    app = cdk.App()
    stack = cdk.Stack(app, "Insecure")
    sqs.Queue(stack, "Queue")
    apply_compliance(app)
    # WHEN / THEN synth fails and names the rule
    with pytest.raises(RuntimeError, match=r"ValidationFailed: (.|\n)*Insecure/Queue/Resource(.|\n)*AwsSolutions-SQS4"):
        app.synth()


def test_tags_name_project_environment_and_owner():
    app = cdk.App()
    stack = cdk.Stack(app, "Tagged")
    sqs.Queue(stack, "Queue", enforce_ssl=True)
    config = profile_defaults("dev", Profile.DEV)
    apply_tags(stack, config)
    tags = Template.from_stack(stack).find_resources("AWS::SQS::Queue")
    (queue,) = tags.values()
    assert {t["Key"]: t["Value"] for t in queue["Properties"]["Tags"]} == {
        "environment": "dev",
        "owner": "ml-platform",
        "project": "cdk-mlops",
    }


def insecure_app(mode: str) -> cdk.App:
    # "process" is how the CDK CLI runs an app: aws-cdk-lib then does not raise on findings.
    app = cdk.App(context={"@aws-cdk/core:appMode": mode})
    stack = cdk.Stack(app, "Insecure")
    sqs.Queue(stack, "Queue")
    apply_compliance(app)
    return app


@pytest.mark.parametrize("mode", ["process", "inmemory"])
def test_synth_exits_non_zero_listing_each_finding_in_every_app_mode(mode):
    with pytest.raises(SystemExit) as caught:
        synth_app(insecure_app(mode))
    message = str(caught.value)
    assert message.startswith("cdk-mlops: synth failed compliance checks")
    assert "AwsSolutions-SQS4" in message
    assert "Insecure/Queue/Resource" in message


def test_synth_returns_the_assembly_when_compliant():
    app = cdk.App(context={"@aws-cdk/core:appMode": "process"})
    stack = cdk.Stack(app, "Fine")
    sqs.Queue(stack, "Dlq", enforce_ssl=True)
    apply_compliance(app)
    # GIVEN a queue used as nothing but flagged for DLQ, acknowledge it so the app is compliant
    cdk.Validations.of(stack).acknowledge(cdk.Acknowledgment(id="AwsSolutions-SQS3", reason="test-only queue"))
    assembly = synth_app(app)
    assert assembly.get_stack_by_name("Fine").template["Resources"]


def test_validation_failures_ignores_warnings_and_passing_reports(tmp_path):
    report = {
        "pluginReports": [
            {"pluginName": "A", "conclusion": "success", "violations": [{"ruleName": "R1", "severity": "error"}]},
            {
                "pluginName": "B",
                "conclusion": "failure",
                "violations": [
                    {"ruleName": "R2", "severity": "warning", "violatingConstructs": [{"constructPath": "S/W"}]},
                    {
                        "ruleName": "R3",
                        "severity": "error",
                        "description": "bad",
                        "violatingConstructs": [{"constructPath": "S/E"}],
                    },
                ],
            },
        ]
    }
    (tmp_path / "validation-report.json").write_text(json.dumps(report))
    assert validation_failures(tmp_path) == ["B R3 S/E: bad"]
    assert validation_failures(tmp_path / "missing") == []
