"""Guardrails: one compliant and one non-compliant case per rule, messages asserted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr

from cdk_mlops.compliance import validation_failures
from cdk_mlops.config import Profile, load_environments, profile_defaults
from cdk_mlops.guardrails import (
    PLUGIN_NAME,
    RULES,
    GuardrailSettings,
    Severity,
    StackView,
    apply_guardrails,
    evaluate,
)

DEV = GuardrailSettings(lambda_runtime="python3.14")
PROD = GuardrailSettings(prod=True, lambda_runtime="python3.14")
TAGS = [{"Key": "project", "Value": "p"}, {"Key": "environment", "Value": "e"}, {"Key": "owner", "Value": "o"}]
KEY = {"Fn::GetAtt": ["Key", "Arn"]}
ROLE_PROPS = {"AssumeRolePolicyDocument": {}, "Tags": TAGS}


def only(rule_id: str, settings: GuardrailSettings = DEV, **kwargs: Any) -> GuardrailSettings:
    return GuardrailSettings(
        prod=settings.prod,
        lambda_runtime=settings.lambda_runtime,
        disabled=frozenset(r.id for r in RULES if r.id != rule_id),
        **kwargs,
    )


def messages(resources: dict[str, Any], settings: GuardrailSettings, *, protected: bool = False) -> list[str]:
    view = StackView({"Resources": resources}, termination_protection=protected)
    return [f"{f.rule_id} {f.logical_id}: {f.message}" for f in evaluate(view, settings)]


RETAIN = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}

CASES = [
    # (rule, settings, compliant resources, non-compliant resources, expected message fragment)
    (
        "MLOPS-001",
        DEV,
        {"Role": {"Type": "AWS::IAM::Role", "Properties": ROLE_PROPS}},
        {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    **ROLE_PROPS,
                    "ManagedPolicyArns": [
                        {
                            "Fn::Join": [
                                "",
                                ["arn:", {"Ref": "AWS::Partition"}, ":iam::aws:policy/AmazonSageMakerFullAccess"],
                            ]
                        }
                    ],
                },
            }
        },
        "MLOPS-001 Role: attaches AmazonSageMakerFullAccess. Grant least privilege",
    ),
    (
        "MLOPS-001",
        DEV,
        {
            "Policy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {"PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject"}]}},
            }
        },
        {
            "Policy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {"PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": ["s3:*"]}]}},
            }
        },
        "MLOPS-001 Policy: allows action 's3:*'",
    ),
    (
        "MLOPS-002",
        DEV,
        {
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"KmsMasterKeyId": KEY, "Tags": TAGS}},
        },
        {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"SqsManagedSseEnabled": True, "Tags": TAGS}}},
        "MLOPS-002 Queue: AWS::SQS::Queue is not encrypted with a customer-managed KMS key; set KmsMasterKeyId",
    ),
    (
        "MLOPS-002",
        DEV,
        {
            "Bucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY}}
                        ]
                    }
                },
            }
        },
        {
            "Bucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                        ]
                    }
                },
            }
        },
        "MLOPS-002 Bucket: AWS::S3::Bucket is not encrypted with a customer-managed KMS key",
    ),
    (
        "MLOPS-003",
        PROD,
        {"Table": {"Type": "AWS::DynamoDB::Table", **RETAIN}},
        {"Table": {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Delete"}},
        "MLOPS-003 Table: AWS::DynamoDB::Table has DeletionPolicy Delete and UpdateReplacePolicy Delete; in prod",
    ),
    (
        "MLOPS-005",
        PROD,
        {
            "Endpoint": {
                "Type": "AWS::SageMaker::Endpoint",
                "Properties": {"DeploymentConfig": {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "a"}]}}},
            }
        },
        {"Endpoint": {"Type": "AWS::SageMaker::Endpoint", "Properties": {}}},
        "MLOPS-005 Endpoint: the endpoint has no auto-rollback alarms",
    ),
    (
        "MLOPS-006",
        PROD,
        {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"VersioningConfiguration": {"Status": "Enabled"}}}},
        {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}}},
        "MLOPS-006 Bucket: the bucket is not versioned",
    ),
    (
        "MLOPS-007",
        GuardrailSettings(require_network_isolation=True),
        {
            "Model": {
                "Type": "AWS::SageMaker::Model",
                "Properties": {"VpcConfig": {"Subnets": ["s"]}, "EnableNetworkIsolation": True},
            }
        },
        {"Model": {"Type": "AWS::SageMaker::Model", "Properties": {}}},
        "MLOPS-007 Model: the environment requires network isolation",
    ),
    (
        "MLOPS-008",
        DEV,
        {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Runtime": "python3.14", "DeadLetterConfig": {"TargetArn": "arn"}},
            }
        },
        {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Runtime": "python3.9"}}},
        "MLOPS-008 Fn: runtime 'python3.9' is not 'python3.14'; use LAMBDA_RUNTIME; no dead-letter queue",
    ),
    (
        "MLOPS-008",
        DEV,
        {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.14",
                    "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                    "ReservedConcurrentExecutions": 2,
                },
            },
            "Role": {"Type": "AWS::IAM::Role", "Properties": ROLE_PROPS},
            "Policy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "Roles": [{"Ref": "Role"}],
                    "PolicyDocument": {
                        "Statement": [{"Effect": "Allow", "Action": "sagemaker:StartPipelineExecution"}]
                    },
                },
            },
            "Source": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {"FunctionName": {"Ref": "Fn"}, "EventSourceArn": {"Fn::GetAtt": ["Queue", "Arn"]}},
            },
            "Queue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"KmsMasterKeyId": KEY, "RedrivePolicy": {"maxReceiveCount": 3}, "Tags": TAGS},
            },
        },
        {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.14",
                    "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                    "DeadLetterConfig": {"TargetArn": "arn"},
                },
            },
            "Role": {"Type": "AWS::IAM::Role", "Properties": ROLE_PROPS},
            "Policy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "Roles": [{"Ref": "Role"}],
                    "PolicyDocument": {
                        "Statement": [{"Effect": "Allow", "Action": "sagemaker:StartPipelineExecution"}]
                    },
                },
            },
        },
        "MLOPS-008 Fn: it starts SageMaker jobs but has no reserved concurrency",
    ),
    (
        "MLOPS-009",
        DEV,
        {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"Tags": TAGS}}},
        {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"Tags": TAGS[:1]}}},
        "MLOPS-009 Topic: missing tag(s) environment, owner; tag the stage",
    ),
]


@pytest.mark.parametrize(
    ("rule_id", "settings", "compliant", "violating", "expected"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
def test_each_rule_passes_the_compliant_case_and_names_the_violation(rule_id, settings, compliant, violating, expected):
    settings = only(rule_id, settings, require_network_isolation=settings.require_network_isolation)
    assert messages(compliant, settings) == []
    found = messages(violating, settings)
    assert len(found) == 1, found
    assert found[0].startswith(expected), found


def test_termination_protection_is_required_in_prod_only():
    settings = only("MLOPS-004", PROD)
    assert messages({}, settings, protected=True) == []
    assert messages({}, settings) == [
        "MLOPS-004 (stack): the stack has no termination protection; set termination_protection=True"
    ]
    assert messages({}, only("MLOPS-004", DEV)) == []


def test_prod_only_rules_do_not_run_in_dev():
    resources = {"Bucket": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Delete", "Properties": {}}}
    assert messages(resources, only("MLOPS-003", DEV)) == []
    assert messages(resources, only("MLOPS-006", DEV)) == []


def test_disabled_rules_do_not_run():
    settings = GuardrailSettings(disabled=frozenset(r.id for r in RULES))
    assert messages({"Queue": {"Type": "AWS::SQS::Queue", "Properties": {}}}, settings) == []


def test_rule_ids_are_unique_and_stable():
    assert [r.id for r in RULES] == [f"MLOPS-{n:03d}" for n in range(1, 10)]


def test_each_environment_chooses_which_rules_run_and_how_strictly():
    (sandbox,) = load_environments(
        {"sandbox": {"profile": "dev", "disabled_guardrails": ["MLOPS-009"], "warning_guardrails": ["MLOPS-001"]}}
    )
    settings = GuardrailSettings.for_environment(sandbox)
    assert settings.disabled == frozenset({"MLOPS-009"})
    assert settings.severities == {"MLOPS-001": Severity.WARNING}
    untagged = {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"KmsMasterKeyId": KEY}}}
    assert messages(untagged, settings) == []


def test_settings_follow_the_environment_profile():
    prod = GuardrailSettings.for_environment(profile_defaults("prod", Profile.PROD))
    dev = GuardrailSettings.for_environment(profile_defaults("dev", Profile.DEV))
    assert (prod.prod, dev.prod) == (True, False)
    assert prod.lambda_runtime == "python3.14"


def full_access_app(*, acknowledge: bool, severity: Severity | None = None) -> cdk.App:
    app = cdk.App()
    stage = cdk.Stage(app, "Dev")
    stack = cdk.Stack(stage, "Team")
    role = iam.Role(
        stack,
        "Trainer",
        assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
        managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSageMakerFullAccess")],
    )
    cdk.Tags.of(stage).add("project", "p")
    cdk.Tags.of(stage).add("environment", "dev")
    cdk.Tags.of(stage).add("owner", "o")
    if acknowledge:
        cdk.Validations.of(role).acknowledge(
            cdk.Acknowledgment(id=f"{PLUGIN_NAME}::MLOPS-001", reason="reviewed break-glass role")
        )
    severities = {"MLOPS-001": severity} if severity else {}
    apply_guardrails(stage, GuardrailSettings(severities=severities))
    return app


def test_an_app_that_attaches_full_access_fails_synth_naming_the_role():
    with pytest.raises(RuntimeError) as caught:
        full_access_app(acknowledge=False).synth()
    report = str(caught.value)
    assert "MLOPS-001: attaches AmazonSageMakerFullAccess" in report
    assert "Dev/Team/Trainer/Resource" in report


def test_an_acknowledged_finding_does_not_fail_synth():
    full_access_app(acknowledge=True).synth()


def test_a_rule_downgraded_to_warning_does_not_fail_synth():
    full_access_app(acknowledge=False, severity=Severity.WARNING).synth()


def test_the_reference_platform_passes_every_rule(platform):
    # The session synth runs the guardrails on every stage; findings that a construct
    # acknowledged (with a reason) are reported as suppressed, not as failures.
    report = json.loads((Path(platform.assembly.directory) / "validation-report.json").read_text())
    guardrail_reports = [r for r in report["pluginReports"] if r["pluginName"] == PLUGIN_NAME]
    # one per environment stage and one for the tooling stage's own stacks
    assert len(guardrail_reports) == len(platform.stages) + 1
    assert {r["conclusion"] for r in guardrail_reports} == {"success"}
    assert validation_failures(Path(platform.assembly.directory)) == []


def test_raw_findings_on_the_platform_are_only_the_acknowledged_ones(platform):
    # the access-log bucket (SSE-S3 by necessity), the runtime of aws-cdk-lib's AwsCustomResource
    # function, which looks up the private network's prefix lists at deploy time; the inventory
    # snapshot's functions, which only its state machine invokes, synchronously (no dead-letter
    # queue applies); and the explainability monitor's jobs, which call the SageMaker API for
    # Clarify's shadow endpoint, so they run in the VPC without the network isolation flag
    lookup = "AWS" + cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", "")
    snapshot_functions = ("SnapshotsPlan", "SnapshotsShard", "SnapshotsFinalize")
    acknowledged = {
        "MLOPS-002": ("AccessLogs",),
        "MLOPS-008": (lookup, *snapshot_functions),
        "MLOPS-007": ("ModelExplainabilityJobDefinition",),
    }
    for s in (s for s in platform.stacks if s.stage != "Tooling"):
        config = next(c for c in platform.configs if c.stage_name == s.stage)
        view = StackView(s.template, termination_protection=bool(s.stack.termination_protection))
        for finding in evaluate(view, GuardrailSettings.for_environment(config)):
            assert any(a in finding.logical_id for a in acknowledged.get(finding.rule_id, ())), (s.path, finding)
            if finding.rule_id == "MLOPS-007":
                network = s.template["Resources"][finding.logical_id]["Properties"]["NetworkConfig"]
                assert network["VpcConfig"]["Subnets"], (s.path, finding)


def test_every_rule_is_documented():
    from tests.conftest import REPO_ROOT

    text = (REPO_ROOT / "docs" / "guardrails.md").read_text()
    for rule in RULES:
        assert f"| {rule.id} |" in text, rule.id
