"""The delivery pipelines: stage order, approvals, encryption, least privilege, triggers, records, validation."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Annotations, Match, Template

from cdk_mlops.compliance import apply_compliance
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.delivery import (
    DeliveryAccess,
    DeliveryTarget,
    EndpointTest,
    ModelDeliveryPipeline,
    ModelDeliveryTarget,
    PipelineSource,
    PlatformDeliveryPipeline,
    access_role_name,
    default_step_install_commands,
)
from cdk_mlops.constructs.retrain_trigger import RetrainTrigger
from cdk_mlops.constructs.training_pipeline import TrainingPipeline
from cdk_mlops.delivery_steps import training_fingerprint
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.guardrails import GuardrailSettings, apply_guardrails
from cdk_mlops.pipeline_definition import TrainingSettings
from cdk_mlops.stacks.delivery_stack import apply_tooling_guardrails
from tests.quality import actions_of, cfn_lint_findings, nag_findings, statements

TOOLING = cdk.Environment(account="000000000000", region="eu-west-1")
CONNECTION = "arn:aws:codeconnections:eu-west-1:000000000000:connection/12345678-1234-1234-1234-123456789012"
DEV = DeliveryTarget(name="dev", account="111111111111", region="eu-west-1")
PROD = DeliveryTarget(name="prod", account="333333333333", region="eu-west-1", manual_approval=True, production=True)
TAGS = {"project": "churn", "owner": "ml"}


def logical_id(stack: cdk.Stack, construct: Any) -> str:
    """The logical id of a construct's CloudFormation resource (an L2's default child, or an L1)."""
    element = construct.node.default_child or construct
    return str(stack.resolve(stack.get_logical_id(element)))


class LightStage(cdk.Stage):
    """One environment: a data store, a training pipeline and its retrain trigger, tagged and checked."""

    def __init__(
        self,
        scope: Any,
        id: str,
        *,
        target: DeliveryTarget,
        settings: TrainingSettings | None = None,
        extra: bool = False,
    ) -> None:
        super().__init__(scope, id, env=target.env)
        stack = cdk.Stack(self, "Ml", termination_protection=target.production)
        self.store = VersionedDataStore(stack, "Data", datasets=["churn"])
        self.training = TrainingPipeline(
            stack,
            "Training",
            data_store=self.store,
            dataset="churn",
            pipeline_name=f"churn-{target.name}",
            settings=settings,
            source_revision="abc123",
        )
        RetrainTrigger(
            stack, "Retrain", data_store=self.store, datasets=["churn"], pipeline_name=f"churn-{target.name}"
        )
        cdk.CfnOutput(stack, "BucketName", value=self.store.bucket.bucket_name)
        if extra:
            cdk.CfnOutput(stack, "Unrelated", value="not ML code")
        for key, value in {**TAGS, "environment": target.name}.items():
            cdk.Tags.of(self).add(key, value)
        apply_guardrails(self, GuardrailSettings(prod=target.production))


def tooling(app: cdk.App) -> tuple[cdk.Stage, cdk.Stack]:
    stage = cdk.Stage(app, "Tooling", env=TOOLING)
    for key, value in {**TAGS, "environment": "tooling"}.items():
        cdk.Tags.of(stage).add(key, value)
    return stage, cdk.Stack(stage, "Delivery", termination_protection=True)


@dataclass
class Built:
    app: cdk.App
    stack: cdk.Stack
    platform: PlatformDeliveryPipeline
    models: ModelDeliveryPipeline
    stages: dict[str, LightStage]
    template: dict[str, Any]
    nested: dict[str, dict[str, Any]]

    def resources(self, kind: str, template: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        source = template or self.template
        return {k: v for k, v in source["Resources"].items() if v["Type"] == kind}

    def pipeline(self, which: str) -> dict[str, Any]:
        construct = self.platform.code_pipeline if which == "platform" else self.models.pipeline
        resource: dict[str, Any] = self.template["Resources"][logical_id(self.stack, construct)]
        return resource

    def stages_of(self, which: str) -> list[dict[str, Any]]:
        stages: list[dict[str, Any]] = self.pipeline(which)["Properties"]["Stages"]
        return stages

    def stage(self, which: str, name: str) -> dict[str, Any]:
        return next(s for s in self.stages_of(which) if s["Name"] == name)


@pytest.fixture(scope="module")
def built() -> Built:
    app = cdk.App()
    stage, stack = tooling(app)
    stages: dict[str, LightStage] = {}
    tests: dict[str, EndpointTest] = {}

    def factory(scope: Any, target: DeliveryTarget) -> cdk.Stage:
        stages[target.name] = LightStage(scope, target.construct_id, target=target)
        return stages[target.name]

    def on_stage(staged: cdk.Stage, target: DeliveryTarget, access: DeliveryAccess) -> None:
        light = stages[target.name]
        tests[target.name] = EndpointTest.for_data_store(light.store, endpoint_name=f"churn-{target.name}")
        access.allow_endpoint_test(tests[target.name], light.store)
        if target.name == "dev":
            access.allow_registry_read(light.training)
            access.forward_model_approvals(
                model_package_group_name=light.training.model_package_group_name,
                event_bus_arn="arn:aws:events:eu-west-1:000000000000:event-bus/default",
            )

    source = PipelineSource.connection(CONNECTION, repository="acme/mlops", branch="main")
    platform = PlatformDeliveryPipeline(
        stack,
        "Platform",
        source=source,
        targets=[DEV, PROD],
        stage_factory=factory,
        on_stage=on_stage,
        model_records={"dev": "/cdk-mlops/delivery/dev/model"},
    )
    models = ModelDeliveryPipeline(
        stack,
        "Models",
        source=source,
        model_package_group_name="churn-dev-models",
        registry_environment="dev",
        registry_account=DEV.account,
        registry_region=DEV.region,
        targets=[
            ModelDeliveryTarget(
                name=t.name,
                account=t.account,
                region=t.region,
                stack_selector=f"Tooling/Delivery/Platform/{t.construct_id}/*",
                manual_approval=t.manual_approval,
                production=t.production,
                endpoint_test=tests[t.name],
            )
            for t in (DEV, PROD)
        ],
        artifact_bucket=platform.artifact_bucket,
        notification_topic=platform.topic,
    )
    apply_tooling_guardrails(stage)
    apply_compliance(app, verbose=False)
    # The synth fails on any unacknowledged cdk-nag or guardrail finding (in-memory apps raise).
    assembly = app.synth()
    tooling_assembly = assembly.get_nested_assembly(stage.artifact_id)
    template = tooling_assembly.get_stack_artifact(stack.artifact_id).template
    nested: dict[str, dict[str, Any]] = {}
    for name, light in stages.items():
        sub = tooling_assembly.get_nested_assembly(light.artifact_id)
        for child in light.node.children:
            if isinstance(child, cdk.Stack):
                nested[f"{name}/{child.node.id}"] = sub.get_stack_artifact(child.artifact_id).template
    return Built(app, stack, platform, models, stages, template, nested)


def commands_of(project: dict[str, Any]) -> str:
    """The build spec of a CodeBuild project as text, references written ``${LogicalId}``."""
    spec = project["Properties"]["Source"]["BuildSpec"]
    if isinstance(spec, str):
        return spec
    parts = spec["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else "${" + str(p.get("Ref", p)) + "}" for p in parts)


def project_for(built: Built, name_part: str) -> dict[str, Any]:
    matches = [v for k, v in built.resources("AWS::CodeBuild::Project").items() if name_part in k]
    assert len(matches) == 1, f"{name_part}: {len(matches)} projects"
    return matches[0]


# ----------------------------------------------------------------------------- compliance


def resources_of(statement: Mapping[str, Any]) -> list[Any]:
    """A statement's resources as a list (CloudFormation allows a single value)."""
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


def connection_grants(template: Mapping[str, Any]) -> list[tuple[str, list[str], str]]:
    """``(policy, actions, connection ARN)`` of every statement granting ``UseConnection`` on a connection."""
    grants: list[tuple[str, list[str], str]] = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = actions_of(statement)
            if not any(action.endswith(":UseConnection") for action in actions):
                continue
            grants += [
                (logical_id, actions, arn) for arn in resources_of(statement) if ":connection/" in json.dumps(arn)
            ]
    return grants


def connection_grant_problems(template: Mapping[str, Any]) -> list[str]:
    """Statements on a connection that lack the ``UseConnection`` action of the connection ARN's service.

    Since CodeStar Connections became CodeConnections, IAM evaluates the action whose service prefix
    is the resource ARN's: ``arn:aws:codeconnections:...`` needs ``codeconnections:UseConnection``.
    """
    problems: list[str] = []
    for policy, actions, arn in connection_grants(template):
        service = arn.split(":")[2] if isinstance(arn, str) else None
        if service is None or f"{service}:UseConnection" not in actions:
            problems.append(f"{policy}: {actions} on {arn}")
    return problems


def test_tooling_and_environment_stacks_are_nag_and_cfn_lint_clean(built):
    assert nag_findings(built.stack) == []
    assert cfn_lint_findings(built.template, region="eu-west-1") == []  # errors and warnings
    for name, template in built.nested.items():
        assert cfn_lint_findings(template, region="eu-west-1") == [], name
    for light in built.stages.values():
        for child in light.node.children:
            if isinstance(child, cdk.Stack):
                assert nag_findings(child) == [], child.node.path


def test_every_role_that_uses_the_connection_may_use_it_with_the_action_of_its_service(built):
    # GIVEN a codeconnections connection; the source actions, Select and the deploy steps clone through it
    grants = connection_grants(built.template)
    roles = {logical_id(built.stack, role) for role in [built.models.select_role, *built.models.deploy_roles.values()]}
    source_roles = {
        logical_id(built.stack, c)
        for c in built.stack.node.find_all()
        if isinstance(c, iam.Role) and c.node.id == "CodePipelineActionRole" and "/Source/" in c.node.path
    }
    assert len(source_roles) == 2, "the source actions of both pipelines"
    granted = {
        policy["Properties"]["Roles"][0]["Ref"]
        for name, policy in built.resources("AWS::IAM::Policy").items()
        if name in {g[0] for g in grants}
    }
    assert roles | source_roles <= granted
    # THEN every statement on the connection names the action IAM evaluates for it
    assert connection_grant_problems(built.template) == []


def test_no_role_has_a_wildcard_action_or_an_admin_policy(built):
    for template in [built.template, *built.nested.values()]:
        for logical_id, policy in built.resources("AWS::IAM::Policy", template).items():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert not [a for a in actions if a == "*" or a.endswith(":*")], logical_id
        for role in built.resources("AWS::IAM::Role", template).values():
            managed = json.dumps(role["Properties"].get("ManagedPolicyArns", []))
            assert "AdministratorAccess" not in managed
            assert "FullAccess" not in managed
    # The pipelines' roles carry no managed policy at all.
    for role in built.resources("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


def test_cross_account_role_assumptions_are_bootstrap_roles_or_access_roles_only(built):
    allowed = re.compile(
        r"^arn:(\$\{AWS::Partition\}|<AWS::Partition>|aws|\*):iam::[0-9]{12}:role/"
        r"(cdk-hnb659fds-(deploy|file-publishing)-role-[0-9]{12}-eu-west-1|cdk-mlops-(dev|prod)-delivery|\*)$"
    )
    for logical_id, policy in built.resources("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Action"] != "sts:AssumeRole":
                continue
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for resource in resources:
                text = json.dumps(resource)
                if "Fn::GetAtt" in text:  # the pipeline's own action roles, in this stack
                    continue
                flat = resource.get("Fn::Sub", text) if isinstance(resource, dict) else resource
                if isinstance(resource, dict) and "Fn::Join" in resource:
                    flat = "".join(p if isinstance(p, str) else "<AWS::Partition>" for p in resource["Fn::Join"][1])
                assert allowed.match(flat), f"{logical_id}: {flat}"
                if flat.endswith("role/*"):
                    # CDK Pipelines' self-mutation: only roles tagged as CDK bootstrap roles.
                    assert "iam:ResourceTag/aws-cdk:bootstrap-role" in json.dumps(statement["Condition"])


# ----------------------------------------------------------------------------- platform pipeline


def test_platform_pipeline_is_v2_and_deploys_the_targets_in_order(built):
    pipeline = built.pipeline("platform")
    assert pipeline["Properties"]["PipelineType"] == "V2"
    names = [s["Name"] for s in built.stages_of("platform")]
    assert names == ["Source", "Build", "UpdatePipeline", "Assets", "Tooling-Dev", "Tooling-Prod"]
    source = built.stage("platform", "Source")["Actions"][0]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["FullRepositoryId"] == "acme/mlops"
    assert source["Configuration"]["BranchName"] == "main"


def deploy_actions(stage: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in stage["Actions"] if a["ActionTypeId"]["Provider"] == "CloudFormation"]


def test_prod_waits_for_a_manual_approval_before_any_deployment(built):
    prod = built.stage("platform", "Tooling-Prod")
    approvals = [a for a in prod["Actions"] if a["ActionTypeId"]["Category"] == "Approval"]
    assert [a["Name"] for a in approvals] == ["ApproveProd"]
    assert approvals[0]["RunOrder"] < min(a["RunOrder"] for a in deploy_actions(prod))
    dev = built.stage("platform", "Tooling-Dev")
    assert not [a for a in dev["Actions"] if a["ActionTypeId"]["Category"] == "Approval"]


def test_each_target_deploys_to_its_account_with_the_bootstrap_roles(built):
    for stage_name, account in (("Tooling-Dev", DEV.account), ("Tooling-Prod", PROD.account)):
        prepares = [a for a in deploy_actions(built.stage("platform", stage_name)) if a["Name"].endswith(".Prepare")]
        assert len(prepares) == 2  # the environment's stack and its DeliveryAccess stack
        for action in prepares:
            assert action["Configuration"]["RoleArn"] == {
                "Fn::Sub": f"arn:${{AWS::Partition}}:iam::{account}:role/"
                f"cdk-hnb659fds-cfn-exec-role-{account}-eu-west-1"
            }


def test_the_security_report_runs_before_the_first_deployment(built):
    dev = built.stage("platform", "Tooling-Dev")
    security = next(a for a in dev["Actions"] if a["Name"] == "SecurityReport")
    assert security["RunOrder"] < min(a["RunOrder"] for a in deploy_actions(dev))
    spec = commands_of(project_for(built, "SecurityReport"))
    assert "security-report --assembly cdk.out --out security-report" in spec
    assert '"file-format": "JUNITXML"' in spec
    assert security["OutputArtifacts"], "the report is published as a pipeline artifact"


def test_each_stage_is_verified_then_retrained_after_it_deploys(built):
    for suffix in ("Dev", "Prod"):
        stage = built.stage("platform", f"Tooling-{suffix}")
        order = {a["Name"]: a["RunOrder"] for a in stage["Actions"]}
        last_deploy = max(a["RunOrder"] for a in deploy_actions(stage))
        assert last_deploy < order[f"Verify{suffix}"] < order[f"Retrain{suffix}"]


def test_synth_runs_the_tests_then_pins_models_then_synthesizes_with_a_cache(built):
    project = project_for(built, "BuildSynth")
    spec = json.loads(project["Properties"]["Source"]["BuildSpec"])
    commands = spec["phases"]["build"]["commands"]
    assert commands[0] == "make test"
    assert commands[-1] == "make synth"
    assert any(c.startswith("python3 -m cdk_mlops.delivery_steps pin-models") for c in commands)
    assert spec["cache"]["paths"] == ["/root/.cache/pip/**/*", "/root/.npm/**/*", "/root/.cache/cdk-mlops/**/*"]
    assert project["Properties"]["Cache"]["Type"] == "S3"
    assert project["Properties"]["Environment"]["PrivilegedMode"] is False


def test_the_retrain_step_carries_the_fingerprint_computed_at_synth(built):
    light = built.stages["prod"]
    training = light.training
    expected = training_fingerprint(
        cdk.Stack.of(training).resolve(training.definition), [a.asset_hash for a in training.scripts.values()]
    )
    assert built.platform.fingerprints["prod"] == {"churn-prod": expected}
    spec = commands_of(project_for(built, "RetrainProd"))
    assert f"--fingerprint {expected}" in spec
    assert "--record /cdk-mlops/delivery/prod/training/churn-prod/fingerprint" in spec
    assert "--dataset churn" in spec


def test_fingerprints_differ_between_environments(built):
    assert built.platform.fingerprints["dev"]["churn-dev"] != built.platform.fingerprints["prod"]["churn-prod"]


def test_verify_checks_every_stack_and_its_outputs_and_records_the_revision(built):
    spec = commands_of(project_for(built, "VerifyDev"))
    ml = built.stages["dev"].node.find_child("Ml")
    assert isinstance(ml, cdk.Stack)
    output = logical_id(ml, ml.node.find_child("BucketName"))
    assert f"--stack {ml.stack_name}:{output}" in spec
    assert "--stack Tooling-Dev-DeliveryAccess" in spec
    assert "--pipeline churn-dev" in spec
    assert "--revision-record /cdk-mlops/delivery/dev/source-revision" in spec


def test_post_deploy_steps_may_assume_only_their_access_role_and_keep_only_their_records(built):
    role = logical_id(built.stack, built.platform.step_roles["prod"])
    policies = [p for p in built.resources("AWS::IAM::Policy").values() if {"Ref": role} in p["Properties"]["Roles"]]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assume = [s for s in statements if s["Action"] == "sts:AssumeRole"]
    assert [s["Resource"] for s in assume] == [
        {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::333333333333:role/cdk-mlops-prod-delivery"]]}
    ]
    records = next(s for s in statements if s["Action"] == ["ssm:GetParameter", "ssm:PutParameter"])
    text = json.dumps(records["Resource"])
    assert "parameter/cdk-mlops/delivery/prod/source-revision" in text
    assert "parameter/cdk-mlops/delivery/prod/training/churn-prod/fingerprint" in text
    assert "/dev/" not in text


def test_failures_and_approvals_are_notified_to_an_encrypted_topic(built):
    template = Template.from_json(built.template)
    template.has_resource_properties(
        "AWS::CodeStarNotifications::NotificationRule",
        {
            "EventTypeIds": Match.array_with(
                [
                    "codepipeline-pipeline-pipeline-execution-failed",
                    "codepipeline-pipeline-manual-approval-needed",
                ]
            ),
            "Resource": Match.any_value(),
            "Targets": [Match.object_like({"TargetType": "SNS"})],
        },
    )
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})


def test_artifacts_are_kms_encrypted_versioned_logged_and_used_by_every_project(built):
    key = logical_id(built.stack, built.platform.artifact_key)
    bucket = built.template["Resources"][logical_id(built.stack, built.platform.artifact_bucket)]
    encryption = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"] == {
        "KMSMasterKeyID": {"Fn::GetAtt": [key, "Arn"]},
        "SSEAlgorithm": "aws:kms",
    }
    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    assert "LoggingConfiguration" in bucket["Properties"]
    assert bucket["DeletionPolicy"] == "Retain"
    assert built.template["Resources"][key]["Properties"]["EnableKeyRotation"] is True
    for which in ("platform", "models"):
        store = built.pipeline(which)["Properties"]["ArtifactStore"]
        assert store["EncryptionKey"]["Id"] == {"Fn::GetAtt": [key, "Arn"]}
    for name, project in built.resources("AWS::CodeBuild::Project").items():
        assert project["Properties"]["EncryptionKey"] == {"Fn::GetAtt": [key, "Arn"]}, name


# ----------------------------------------------------------------------------- access role


def test_access_role_trusts_the_tooling_account_and_has_narrow_rights(built):
    template = built.nested["prod/DeliveryAccess"]
    roles = list(built.resources("AWS::IAM::Role", template).values())
    assert [r["Properties"]["RoleName"] for r in roles] == ["cdk-mlops-prod-delivery"]
    principal = roles[0]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"]
    assert ":iam::000000000000:root" in json.dumps(principal)
    statements = [
        s
        for p in built.resources("AWS::IAM::Policy", template).values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert actions == {
        "cloudformation:DescribeStacks",
        "cloudformation:DescribeStackResource",
        "sagemaker:DescribePipeline",
        "events:PutEvents",
        "sagemaker:InvokeEndpoint",
        "s3:GetObject",
        "kms:Decrypt",
    }
    put = next(s for s in statements if s["Action"] == "events:PutEvents")
    assert put["Condition"] == {
        "StringEquals": {"events:source": "cdk-mlops.retrain", "events:detail-type": "Manual Retrain"}
    }
    sample = next(s for s in statements if s["Action"] == "s3:GetObject")
    assert json.dumps(sample["Resource"]).endswith('"/artifacts/delivery/sample-payload.csv"]]}')


def test_access_stack_in_prod_has_termination_protection(built):
    access = built.stages["prod"].node.find_child("DeliveryAccess")
    assert isinstance(access, cdk.Stack)
    assert access.termination_protection is True


#: What a completed, approved package of the group says, as the model registry's events do.
APPROVED_DETAIL = {
    "ModelPackageGroupName": ["churn-dev-models"],
    "ModelPackageStatus": ["Completed"],
    "ModelApprovalStatus": ["Approved"],
}


def test_registry_environment_forwards_its_approvals_to_the_tooling_bus(built):
    Template.from_json(built.nested["dev/DeliveryAccess"]).has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Model Package State Change"],
                "detail": APPROVED_DETAIL,
            },
            "Targets": [Match.object_like({"Arn": "arn:aws:events:eu-west-1:000000000000:event-bus/default"})],
        },
    )


# ----------------------------------------------------------------------------- model pipeline


def test_an_approved_package_of_the_group_starts_the_model_pipeline(built):
    pipeline_id = logical_id(built.stack, built.models.pipeline)
    Template.from_json(built.template).has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Model Package State Change"],
                "account": ["111111111111"],
                "detail": APPROVED_DETAIL,
            },
            "Targets": [
                Match.object_like({"Arn": {"Fn::Join": Match.array_with([Match.array_with([{"Ref": pipeline_id}])])}})
            ],
        },
    )
    Template.from_json(built.template).has_resource_properties(
        "AWS::Events::EventBusPolicy",
        {"EventBusName": "default", "Statement": Match.object_like({"Action": "events:PutEvents"})},
    )


def approval_event(**detail: Any) -> dict[str, Any]:
    """A "SageMaker Model Package State Change" event, shaped as AWS documents it (fields the rules read)."""
    arn = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/churn-dev-models/2"
    return {
        "version": "0",
        "id": "844e2571-85d4-695f-b930-0153b71dcb42",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": "111111111111",
        "time": "2025-02-24T17:00:14Z",
        "region": "eu-west-1",
        "resources": [arn],
        "detail": {
            "ModelPackageGroupName": "churn-dev-models",
            "ModelPackageVersion": 2,
            "ModelPackageArn": arn,
            "CreationTime": "2025-02-24T17:00:14Z",
            "ModelPackageStatus": "Completed",
            "ModelApprovalStatus": "Approved",
            "LastModifiedTime": "2025-02-24T17:00:14Z",
            **detail,
        },
    }


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """EventBridge's matching for patterns of exact values: every field's value is one of the listed ones."""
    for key, allowed in pattern.items():
        if key not in event:
            return False
        value = event[key]
        if isinstance(allowed, Mapping):
            if not isinstance(value, Mapping) or not matches(allowed, value):
                return False
        elif value not in allowed:
            return False
    return True


def test_only_a_completed_approval_in_the_group_starts_a_model_delivery(built):
    # GIVEN the tooling rule and the registry's forwarding rule
    patterns = [
        r["Properties"]["EventPattern"]
        for template in (built.template, built.nested["dev/DeliveryAccess"])
        for r in built.resources("AWS::Events::Rule", template).values()
        if "aws.sagemaker" in r["Properties"]["EventPattern"].get("source", [])
    ]
    assert len(patterns) == 2
    for pattern in patterns:
        # THEN the approval of a registered package matches
        assert matches(pattern, approval_event())
        # AND the other state changes SageMaker sends for the same package, or for others, do not
        for near_miss in (
            approval_event(ModelPackageStatus="InProgress"),
            approval_event(ModelPackageStatus="Pending"),
            approval_event(ModelApprovalStatus="PendingManualApproval"),
            approval_event(ModelApprovalStatus="Rejected"),
            approval_event(ModelPackageGroupName="other-models"),
        ):
            assert not matches(pattern, near_miss), near_miss["detail"]
    tooling_rule = next(p for p in patterns if "account" in p)
    assert not matches(tooling_rule, {**approval_event(), "account": "999999999999"})


def test_a_package_already_delivered_skips_every_environment(built):
    # Select exports DELIVER; a repeated event for a package the first environment runs sets it to false.
    exported = json.loads(commands_of(project_for(built, "ModelsSelect")))["env"]["exported-variables"]
    assert "DELIVER" in exported
    for name in ("Dev", "Prod"):
        assert built.stage("models", name)["BeforeEntry"] == {
            "Conditions": [
                {
                    "Result": "SKIP",
                    "Rules": [
                        {
                            "Name": "Deliver",
                            "RuleTypeId": {
                                "Category": "Rule",
                                "Owner": "AWS",
                                "Provider": "VariableCheck",
                                "Version": "1",
                            },
                            "Configuration": {"Variable": "#{Model.DELIVER}", "Operator": "EQ", "Value": "true"},
                        }
                    ],
                }
            ]
        }
    assert "BeforeEntry" not in built.stage("models", "Select")


def test_a_person_can_deliver_a_package_again_with_the_redeliver_variable(built):
    assert built.pipeline("models")["Properties"]["Variables"] == [
        {
            "Name": "REDELIVER",
            "DefaultValue": "false",
            "Description": "true: deliver the newest approved package even if the first environment runs it",
        }
    ]
    select = next(a for a in built.stage("models", "Select")["Actions"] if a["Name"] == "Select")
    assert json.loads(select["Configuration"]["EnvironmentVariables"]) == [
        {"name": "REDELIVER", "type": "PLAINTEXT", "value": "#{variables.REDELIVER}"}
    ]
    assert '--redeliver \\"$REDELIVER\\"' in commands_of(project_for(built, "ModelsSelect"))


def test_model_pipeline_selects_then_deploys_tests_and_waits_for_prod_approval(built):
    stages = built.stages_of("models")
    assert [s["Name"] for s in stages] == ["Source", "Select", "Dev", "Prod"]
    source = stages[0]["Actions"][0]
    assert source["Configuration"]["DetectChanges"] is False
    assert source["Configuration"]["OutputArtifactFormat"] == "CODEBUILD_CLONE_REF"
    assert [a["Name"] for a in built.stage("models", "Dev")["Actions"]] == ["Deploy", "TestEndpoint"]
    prod = {a["Name"]: a["RunOrder"] for a in built.stage("models", "Prod")["Actions"]}
    assert prod["Approve"] < prod["Deploy"] < prod["TestEndpoint"]
    assert built.pipeline("models")["Properties"]["ExecutionMode"] == "QUEUED"


def test_deploy_step_deploys_the_environment_with_the_selected_package_and_records_it(built):
    spec = commands_of(project_for(built, "ModelsProdDeploy"))
    assert '--model-package-arn \\"$MODEL_PACKAGE_ARN\\"' in spec
    assert '--model-baseline-prefix \\"$MODEL_BASELINE_PREFIX\\"' in spec
    assert '--model-source-bucket \\"$MODEL_SOURCE_BUCKET\\"' in spec
    assert '--model-baselines \\"$MODEL_BASELINES\\"' in spec
    assert "Tooling/Delivery/Platform/Prod/*" in spec
    assert "--revision-record /cdk-mlops/delivery/prod/source-revision" in spec
    select = commands_of(project_for(built, "ModelsSelect"))
    assert "select-model --group churn-dev-models" in select
    exported = json.loads(commands_of(project_for(built, "ModelsSelect")))["env"]["exported-variables"]
    assert exported == [
        "MODEL_PACKAGE_ARN",
        "MODEL_BASELINE_PREFIX",
        "MODEL_SOURCE_BUCKET",
        "MODEL_BASELINES",
        "DELIVER",
    ]
    deploy = next(a for a in built.stage("models", "Prod")["Actions"] if a["Name"] == "Deploy")
    variables = json.loads(deploy["Configuration"]["EnvironmentVariables"])
    assert {v["name"]: v["value"] for v in variables} == {
        "MODEL_PACKAGE_ARN": "#{Model.MODEL_PACKAGE_ARN}",
        "MODEL_BASELINE_PREFIX": "#{Model.MODEL_BASELINE_PREFIX}",
        "MODEL_SOURCE_BUCKET": "#{Model.MODEL_SOURCE_BUCKET}",
        "MODEL_BASELINES": "#{Model.MODEL_BASELINES}",
    }


def test_each_environments_model_is_recorded_in_an_ssm_parameter(built):
    parameters = built.resources("AWS::SSM::Parameter")
    assert sorted(p["Properties"]["Name"] for p in parameters.values()) == [
        "/cdk-mlops/delivery/dev/model",
        "/cdk-mlops/delivery/prod/model",
    ]
    assert {p["Properties"]["Value"] for p in parameters.values()} == {"none"}
    assert {p["DeletionPolicy"] for p in parameters.values()} == {"Retain"}


def test_model_deploy_role_assumes_only_its_targets_bootstrap_and_access_roles(built):
    role = logical_id(built.stack, built.models.deploy_roles["prod"])
    policies = [p for p in built.resources("AWS::IAM::Policy").values() if {"Ref": role} in p["Properties"]["Roles"]]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assume = next(s for s in statements if s["Action"] == "sts:AssumeRole")
    names = [r["Fn::Join"][1][-1].split("role/")[1] for r in assume["Resource"]]
    assert names == [
        "cdk-hnb659fds-deploy-role-333333333333-eu-west-1",
        "cdk-hnb659fds-file-publishing-role-333333333333-eu-west-1",
        "cdk-mlops-prod-delivery",
    ]
    assert all(":iam::333333333333:" in r["Fn::Join"][1][-1] for r in assume["Resource"])


def test_endpoint_test_reads_the_sample_from_the_data_stores_bucket(built):
    spec = commands_of(project_for(built, "ModelsProdTest"))
    store = built.stages["prod"].store
    stack = cdk.Stack.of(store)
    bucket = logical_id(stack, store.bucket)
    assert f"--bucket-stack {stack.stack_name} --bucket-logical-id {bucket}" in spec
    assert "--endpoint churn-prod" in spec
    assert "--max-latency-ms 1000" in spec


# ----------------------------------------------------------------------------- retrain only on ML change


def fingerprint_of(**stage_options: Any) -> str:
    app = cdk.App()
    _, stack = tooling(app)
    pipeline = PlatformDeliveryPipeline(
        stack,
        "Platform",
        source=PipelineSource.connection(CONNECTION, repository="acme/mlops"),
        targets=[DEV],
        stage_factory=lambda scope, target: LightStage(scope, target.construct_id, target=target, **stage_options),
    )
    return pipeline.fingerprints["dev"]["churn-dev"]


def test_only_a_change_of_ml_code_changes_the_fingerprint(built):
    base = built.platform.fingerprints["dev"]["churn-dev"]
    # Unrelated change (an output): same fingerprint, so no training run.
    assert fingerprint_of(extra=True) == base
    # A different training instance: new fingerprint, so one training run.
    assert fingerprint_of(settings=TrainingSettings(training_instance_type="ml.m5.2xlarge")) != base


def test_a_training_pipeline_without_a_trigger_is_not_retrained_and_warned(built):
    class NoTrigger(cdk.Stage):
        def __init__(self, scope: Any, id: str, *, target: DeliveryTarget) -> None:
            super().__init__(scope, id, env=target.env)
            stack = cdk.Stack(self, "Ml")
            store = VersionedDataStore(stack, "Data", datasets=["churn"])
            TrainingPipeline(stack, "Training", data_store=store, dataset="churn", pipeline_name="churn-dev")

    app = cdk.App()
    _, stack = tooling(app)
    pipeline = PlatformDeliveryPipeline(
        stack,
        "Platform",
        source=PipelineSource.connection(CONNECTION, repository="acme/mlops"),
        targets=[DEV],
        stage_factory=lambda scope, target: NoTrigger(scope, target.construct_id, target=target),
    )
    assert pipeline.fingerprints == {"dev": {}}
    assert "dev" not in pipeline.retrain_steps
    training_stack = pipeline.stages["dev"].node.find_child("Ml")
    assert isinstance(training_stack, cdk.Stack)
    Annotations.from_stack(training_stack).has_warning(
        "/Tooling/Delivery/Platform/Dev/Ml/Training", Match.string_like_regexp("no RetrainTrigger starts this pipeline")
    )


# ----------------------------------------------------------------------------- other sources, regions


def test_an_s3_source_starts_on_new_versions_and_the_model_deploy_can_fetch_old_ones():
    app = cdk.App()
    _, stack = tooling(app)
    bucket = s3.Bucket.from_bucket_name(stack, "Src", "acme-source")
    source = PipelineSource.s3(bucket, "mlops.zip")
    PlatformDeliveryPipeline(
        stack,
        "Platform",
        source=source,
        targets=[DEV],
        stage_factory=lambda scope, target: LightStage(scope, target.construct_id, target=target),
    )
    models = ModelDeliveryPipeline(
        stack,
        "Models",
        source=source,
        model_package_group_name="churn-dev-models",
        registry_environment="dev",
        registry_account="000000000000",
        registry_region="eu-west-1",
        targets=[ModelDeliveryTarget(name="dev", account=DEV.account, region=DEV.region, stack_selector="X/Dev/*")],
    )
    template = Template.from_stack(stack)
    stages = template.find_resources("AWS::CodePipeline::Pipeline")
    sources = [p["Properties"]["Stages"][0]["Actions"][0] for p in stages.values()]
    assert sorted(s["Configuration"]["PollForSourceChanges"] for s in sources) == [False, False]
    assert {s["ActionTypeId"]["Provider"] for s in sources} == {"S3"}
    # Only the platform pipeline reacts to new object versions.
    assert len(template.find_resources("AWS::Events::Rule")) == 2  # the source trigger and the approvals
    assert not template.find_resources("AWS::Events::EventBusPolicy"), "the registry is in the tooling account"
    role = logical_id(stack, models.deploy_roles["dev"])
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": role}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Action": "s3:GetObjectVersion", "Resource": Match.any_value()})]
                )
            },
        },
    )


def test_a_target_in_another_region_gets_a_hardened_replication_stack():
    app = cdk.App()
    stage, stack = tooling(app)
    far = DeliveryTarget(name="prod", account="333333333333", region="us-east-1", manual_approval=True, production=True)
    pipeline = PlatformDeliveryPipeline(
        stack,
        "Platform",
        source=PipelineSource.connection(CONNECTION, repository="acme/mlops"),
        targets=[DEV, far],
        stage_factory=lambda scope, target: LightStage(scope, target.construct_id, target=target),
    )
    apply_tooling_guardrails(stage)
    apply_compliance(app, verbose=False)
    app.synth()  # raises on any unacknowledged cdk-nag or guardrail finding
    support = pipeline.code_pipeline.cross_region_support["us-east-1"]
    assert support.stack is not stack
    assert support.stack.termination_protection is True
    template = Template.from_stack(support.stack)
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    template.has_resource("AWS::S3::Bucket", {"DeletionPolicy": "Retain"})
    template.has_resource_properties("AWS::S3::Bucket", {"VersioningConfiguration": {"Status": "Enabled"}})
    # The pipeline role may use the replication key, and no other key of the account, by its alias.
    (alias,) = template.find_resources("AWS::KMS::Alias").values()
    granted = statements(Template.from_stack(stack), pipeline.code_pipeline.role)
    kms = [s for s in granted if "kms:Decrypt" in actions_of(s)]
    assert not [s for s in kms if "*" in resources_of(s)]
    (replication,) = [s for s in kms if "Condition" in s]
    assert replication["Resource"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":kms:us-east-1:000000000000:key/*"]]
    }
    assert replication["Condition"] == {
        "ForAnyValue:StringEquals": {"kms:ResourceAliases": alias["Properties"]["AliasName"]}
    }


# ----------------------------------------------------------------------------- validation


def new_stack() -> cdk.Stack:
    return cdk.Stack(cdk.App(), "Delivery", env=TOOLING)


def never(scope: Any, target: DeliveryTarget) -> cdk.Stage:
    raise AssertionError("no stage is built when the arguments are invalid")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            PipelineSource.connection("arn:aws:codestar:eu-west-1:000000000000:connection/x", repository="a/b"),
            r"source.connection_arn 'arn:aws:codestar:eu-west-1:000000000000:connection/x' is not a connection ARN; "
            r"use arn:aws:codeconnections:<region>:<account>:connection/<uuid>",
        ),
        (
            PipelineSource.connection(CONNECTION.replace("eu-west-1", "us-east-1"), repository="a/b"),
            r"source.connection_arn is in us-east-1, but the pipeline runs in eu-west-1; "
            r"create the connection in eu-west-1",
        ),
        (
            PipelineSource.connection(CONNECTION, repository="a/b", branch=" "),
            r"source.branch ' ' is not a branch name",
        ),
        (PipelineSource.connection(CONNECTION, repository="nobody"), r"source.repository 'nobody' is not 'owner/repo'"),
        (PipelineSource(), r"source: give either a connection \(PipelineSource.connection\) or an S3 object"),
    ],
)
def test_a_bad_source_is_rejected_with_the_value_and_the_fix(source, message):
    with pytest.raises(ConfigurationError, match=rf"^\[Delivery/Platform\] {message}"):
        PlatformDeliveryPipeline(new_stack(), "Platform", source=source, targets=[DEV], stage_factory=never)


def test_an_s3_source_without_a_key_is_rejected():
    stack = new_stack()
    source = PipelineSource.s3(s3.Bucket.from_bucket_name(stack, "B", "acme-source"), "")
    with pytest.raises(ConfigurationError, match=r"source.object_key '' must be the key of the zip file"):
        PlatformDeliveryPipeline(stack, "Platform", source=source, targets=[DEV], stage_factory=never)


def test_target_problems_are_reported_together():
    bad = DeliveryTarget(name="prod", account="12345", region="mars", production=True)
    with pytest.raises(ConfigurationError) as raised:
        PlatformDeliveryPipeline(
            new_stack(),
            "Platform",
            source=PipelineSource.connection(CONNECTION, repository="a/b"),
            targets=[DEV, DEV, bad],
            stage_factory=never,
        )
    assert raised.value.problems == (
        "targets: environment 'dev' appears more than once; list each environment once",
        "targets['prod'].account '12345' is not a 12-digit AWS account id",
        "targets['prod'].region 'mars' is not an AWS region name (e.g. 'eu-west-1')",
        "targets['prod']: a production environment must be approved by a person before it deploys; "
        "set manual_approval=True",
    )


def test_no_targets_and_an_environment_agnostic_stack_are_rejected():
    with pytest.raises(ConfigurationError) as raised:
        PlatformDeliveryPipeline(
            cdk.Stack(cdk.App(), "Agnostic"),
            "Platform",
            source=PipelineSource.connection(CONNECTION, repository="a/b"),
            targets=[],
            stage_factory=never,
        )
    assert raised.value.problems == (
        "the stack holding a delivery pipeline needs an explicit account and region "
        "(cdk.Stack(..., env=cdk.Environment(account=..., region=...))): the pipeline deploys across accounts",
        "targets is empty; give at least one environment",
    )


def test_a_stage_that_does_not_deploy_to_its_target_is_rejected():
    with pytest.raises(
        ConfigurationError,
        match=r"the stage for dev deploys to 999999999999/eu-west-1, not to the target's 111111111111/eu-west-1",
    ):
        PlatformDeliveryPipeline(
            new_stack(),
            "Platform",
            source=PipelineSource.connection(CONNECTION, repository="a/b"),
            targets=[DEV],
            stage_factory=lambda scope, target: LightStage(
                scope, "Dev", target=DeliveryTarget(name="dev", account="999999999999", region="eu-west-1")
            ),
        )


def test_model_pipeline_problems_are_reported_together():
    stack = new_stack()
    topic = sns.Topic(stack, "T")
    with pytest.raises(ConfigurationError) as raised:
        ModelDeliveryPipeline(
            stack,
            "Models",
            source=PipelineSource.connection(CONNECTION, repository="a/b"),
            model_package_group_name="bad group",
            registry_environment="dev",
            registry_account="1",
            registry_region="eu-west-1",
            targets=[
                ModelDeliveryTarget(
                    name="prod", account=PROD.account, region=PROD.region, stack_selector=" ", production=True
                )
            ],
            deploy_command="npx cdk deploy",
            artifact_bucket=s3.Bucket(stack, "Plain"),
            notification_topic=topic,
        )
    assert raised.value.problems == (
        "targets['prod']: a production environment must be approved by a person before it deploys; "
        "set manual_approval=True",
        "artifact_bucket has no KMS key; pass a bucket encrypted with a customer-managed key "
        "(cross-account deployments and the guardrails need one), or omit it",
        "model_package_group_name 'bad group' is not a model package group name",
        "registry_account '1' is not a 12-digit AWS account id",
        "deploy_command 'npx cdk deploy' must contain {selector}",
        "targets['prod'].stack_selector is empty",
    )


def test_access_role_names_are_derived_from_the_prefix_and_environment():
    assert access_role_name("cdk-mlops", "staging") == "cdk-mlops-staging-delivery"


def test_every_step_installs_boto3_then_runs_the_library_from_this_checkout(built):
    # This repository is an editable install: the steps run the checkout's own copy (test_delivery_install.py).
    expected = list(default_step_install_commands())
    steps = 0
    for project in built.resources("AWS::CodeBuild::Project").values():
        try:
            phases = json.loads(commands_of(project))["phases"]
        except ValueError:
            continue  # a build spec file's name, not a spec
        commands = [c for phase in phases.values() for c in phase.get("commands", [])]
        if not any("cdk_mlops.delivery_steps" in c for c in commands):
            continue
        if "make test" in commands:
            continue  # the synth step: `make test` installs everything first
        # CDK Pipelines may put its own input checks first; the step's install ends the phase.
        assert phases["install"]["commands"][-len(expected) :] == expected, phases["install"]
        steps += 1
    assert steps >= 3, steps  # the platform's verify and retrain steps, the model pipeline's steps
