"""The tooling stage: both delivery pipelines over the reference platform's environments."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any, cast

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match

from cdk_mlops.compliance import apply_compliance
from cdk_mlops.config import CONTEXT_KEY, EnvironmentConfig, load_environments
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.guardrails import GuardrailSettings, StackView, evaluate
from cdk_mlops.local.examples import with_example_models
from cdk_mlops.stacks.delivery_stack import DeliveryStack, ToolingStage, endpoint_name_of
from cdk_mlops.stacks.stage import MlopsPlatformStage, pinned_cli_version
from tests.conftest import REPO_ROOT, TOOLING_STACK_PATH
from tests.quality import cfn_lint_findings, nag_findings
from tests.unit.constructs.test_delivery import connection_grant_problems, connection_grants
from tests.unit.constructs.test_delivery_network import NETWORK

CONNECTION = "arn:aws:codeconnections:eu-west-1:000000000000:connection/12345678-1234-1234-1234-123456789012"
ACCOUNTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}


def configs() -> list[EnvironmentConfig]:
    """The three environments in their own accounts, each serving the example model (as the suite's platform)."""
    context = {CONTEXT_KEY: {name: {"account": account, "region": "eu-west-1"} for name, account in ACCOUNTS.items()}}
    return load_environments(with_example_models(context)[CONTEXT_KEY])


@dataclass
class Tooling:
    stage: ToolingStage
    template: dict[str, Any]
    nested: dict[str, dict[str, Any]]

    @property
    def delivery(self) -> DeliveryStack:
        return self.stage.delivery

    def pipeline_stages(self, construct: Any) -> list[dict[str, Any]]:
        logical_id = self.delivery.get_logical_id(construct.node.default_child)
        stages: list[dict[str, Any]] = self.template["Resources"][logical_id]["Properties"]["Stages"]
        return stages

    def build_spec(self, name_part: str) -> str:
        (project,) = [
            v
            for k, v in self.template["Resources"].items()
            if v["Type"] == "AWS::CodeBuild::Project" and name_part in k
        ]
        spec = project["Properties"]["Source"]["BuildSpec"]
        if isinstance(spec, str):
            return spec
        return "".join(p if isinstance(p, str) else "${" + str(p.get("Ref", p)) + "}" for p in spec["Fn::Join"][1])


@pytest.fixture(scope="module")
def tooling() -> Tooling:
    app = cdk.App()
    stage = ToolingStage(
        app,
        "Tooling",
        account="000000000000",
        region="eu-west-1",
        environments=configs(),
        connection_arn=CONNECTION,
        repository="acme/mlops",
        branch="main",
        cli_version="2.1148.1",
        network=NETWORK,  # prod runs in a VPC: the builds need one in the tooling account
    )
    apply_compliance(app, verbose=False)
    assembly = app.synth()  # raises on any unacknowledged cdk-nag or guardrail finding
    tooling_assembly = assembly.get_nested_assembly(stage.artifact_id)
    template = tooling_assembly.get_stack_artifact(stage.delivery.artifact_id).template
    nested: dict[str, dict[str, Any]] = {}
    for name, platform_stage in stage.delivery.platform.stages.items():
        sub = tooling_assembly.get_nested_assembly(platform_stage.artifact_id)
        for child in platform_stage.node.children:
            if isinstance(child, cdk.Stack):
                nested[f"{name}/{child.node.id}"] = sub.get_stack_artifact(child.artifact_id).template
    return Tooling(stage, template, nested)


def test_every_environment_is_a_stage_of_the_pipeline_in_order_with_approval_before_prod(tooling):
    stages = tooling.pipeline_stages(tooling.delivery.platform.code_pipeline)
    assert [s["Name"] for s in stages][4:] == ["Tooling-Dev", "Tooling-Staging", "Tooling-Prod"]
    approvals = {
        s["Name"]: [a["Name"] for a in s["Actions"] if a["ActionTypeId"]["Category"] == "Approval"] for s in stages[4:]
    }
    assert approvals == {"Tooling-Dev": [], "Tooling-Staging": [], "Tooling-Prod": ["ApproveProd"]}
    models = tooling.pipeline_stages(tooling.delivery.models.pipeline)
    assert [s["Name"] for s in models] == ["Source", "Select", "Dev", "Staging", "Prod"]
    assert [a["Name"] for a in models[-1]["Actions"]] == ["Approve", "Deploy", "TestEndpoint"]


def test_each_stage_holds_the_reference_platform_and_an_access_stack(tooling):
    assert sorted(tooling.nested) == sorted(
        f"{env}/{stack}"
        for env in ACCOUNTS
        for stack in (*MlopsPlatformStage.STACK_IDS, "DeliveryAccess")
        if stack in {c.node.id for c in tooling.delivery.platform.stages[env].node.children}
    )
    for env in ACCOUNTS:
        stage = tooling.delivery.platform.stages[env]
        assert isinstance(stage, MlopsPlatformStage)
        assert (stage.account, stage.region) == (ACCOUNTS[env], "eu-west-1")
        assert stage.serving is not None


def test_tooling_and_platform_templates_are_cfn_lint_and_nag_clean(tooling):
    assert cfn_lint_findings(tooling.template, region="eu-west-1") == []  # errors and warnings
    assert nag_findings(tooling.delivery) == []
    for name, template in tooling.nested.items():
        assert cfn_lint_findings(template, region="eu-west-1") == [], name


def test_the_connection_is_used_with_the_action_of_its_service(tooling):
    assert connection_grants(tooling.template), "the pipelines clone through the connection"
    assert connection_grant_problems(tooling.template) == []


def test_tooling_guardrails_run_with_prod_rules_and_only_the_access_log_bucket_is_acknowledged(tooling):
    # The synth passed with the plugin; here the same rules run directly on the template.
    findings = evaluate(StackView(tooling.template, termination_protection=True), GuardrailSettings(prod=True))
    storage = tooling.delivery.platform.access_log_bucket
    assert storage is not None
    log_bucket = tooling.delivery.get_logical_id(cast(cdk.CfnElement, storage.node.default_child))
    assert [(f.rule_id, f.logical_id) for f in findings] == [("MLOPS-002", log_bucket)]
    assert tooling.delivery.termination_protection is True


def test_the_model_pipeline_deploys_each_environments_stacks_as_the_platform_pipeline_does(tooling):
    spec = tooling.build_spec("ModelsStagingDeploy")
    assert "Tooling/Delivery/Platform/Staging/*" in spec
    stage = tooling.delivery.platform.stages["staging"]
    assert isinstance(stage, MlopsPlatformStage)
    assert stage.serving is not None
    (config,) = [c for c in tooling.delivery.environments if c.name == "staging"]
    assert endpoint_name_of(config) == stage.serving.endpoint.endpoint_name
    test = tooling.build_spec("ModelsStagingTest")
    data = stage.data
    logical_id = data.resolve(data.get_logical_id(cast(cdk.CfnElement, data.store.bucket.node.default_child)))
    assert f"--bucket-stack {data.stack_name} --bucket-logical-id {logical_id}" in test
    assert f"--endpoint {endpoint_name_of(config)}" in test


def test_post_deploy_checks_describe_the_endpoint_and_the_training_pipeline(tooling):
    spec = tooling.build_spec("VerifyStaging")
    assert "--pipeline cdk-mlops-staging-training" in spec
    assert "--endpoint cdk-mlops-staging" in spec
    assert "--stack Tooling-Staging-Serving" in spec


def test_synth_pins_every_environments_recorded_model(tooling):
    spec = tooling.build_spec("BuildSynth")
    for env in ACCOUNTS:
        assert f"--record {env}=/cdk-mlops/delivery/{env}/model" in spec


def test_the_registry_is_the_first_environment_and_forwards_its_approvals(tooling):
    select = tooling.build_spec("ModelsSelect")
    assert "--group cdk-mlops-dev-training-models" in select
    rules = [r for r in tooling.nested["dev/DeliveryAccess"]["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
    assert [r["Properties"]["EventPattern"]["detail"]["ModelPackageGroupName"] for r in rules] == [
        ["cdk-mlops-dev-training-models"]
    ]
    assert not [
        r for r in tooling.nested["prod/DeliveryAccess"]["Resources"].values() if r["Type"] == "AWS::Events::Rule"
    ]


def test_the_self_mutation_uses_the_pinned_cli(tooling):
    assert "aws-cdk@2.1148.1" in tooling.build_spec("SelfMutation")


def test_the_reference_platforms_self_mutation_installs_the_cli_package_json_pins(platform):
    # GIVEN the CLI pinned for make synth and make demo
    pinned = json.loads((REPO_ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    # THEN the reference pipeline updates itself with that CLI, not the latest one
    template = json.dumps(platform.stack(TOOLING_STACK_PATH).template)
    assert f"npm install -g aws-cdk@{pinned}" in template
    assert set(re.findall(r"aws-cdk@([0-9][0-9.]*)", template)) == {pinned}


@pytest.mark.parametrize(
    ("package", "version"),
    [
        ({"devDependencies": {"aws-cdk": "2.1148.1"}}, "2.1148.1"),
        ({"devDependencies": {"aws-cdk": "^2.1148.1"}}, None),  # a range: the latest 2.x, as before
        ({"devDependencies": {}}, None),
        (["not", "an", "object"], None),
        (None, None),  # no package.json
    ],
)
def test_pinned_cli_version_reads_an_exact_pin_only(tmp_path, package, version):
    if package is not None:
        (tmp_path / "package.json").write_text(json.dumps(package))
    assert pinned_cli_version(tmp_path) == version


def test_every_build_of_the_reference_tooling_runs_in_the_tooling_vpc(tooling):
    projects = {k: v for k, v in tooling.template["Resources"].items() if v["Type"] == "AWS::CodeBuild::Project"}
    assert len(projects) > 10  # both pipelines, three environments
    for name, project in projects.items():
        config = project["Properties"].get("VpcConfig", {})
        assert (config.get("VpcId"), config.get("Subnets")) == (NETWORK.vpc_id, list(NETWORK.subnet_ids)), name


# ----------------------------------------------------------------------------- configuration errors


def delivery(environments: list[EnvironmentConfig], **kwargs: Any) -> DeliveryStack:
    app = cdk.App()
    options: dict[str, Any] = {"connection_arn": CONNECTION, "repository": "acme/mlops", "network": NETWORK, **kwargs}
    return DeliveryStack(
        app,
        "Delivery",
        env=cdk.Environment(account="000000000000", region="eu-west-1"),
        environments=environments,
        **options,
    )


def problems_of(environments: list[EnvironmentConfig], **kwargs: Any) -> tuple[str, ...]:
    with pytest.raises(ConfigurationError) as raised:
        delivery(environments, **kwargs)
    assert raised.value.location == "Delivery"
    return raised.value.problems


def test_prod_without_manual_approval_is_rejected():
    envs = configs()
    envs[2] = replace(envs[2], manual_approval=False)
    assert problems_of(envs) == (
        "environments.prod.manual_approval: false is not allowed in a prod environment; "
        "a person approves every deployment to prod",
    )


def test_an_environment_in_no_stage_and_unknown_or_repeated_stages_are_rejected():
    assert problems_of(configs(), order=["dev", "qa", "dev", "prod"]) == (
        "order lists 'dev' more than once; deploy each environment in one stage",
        "order lists 'qa', which is not an environment; use one of: dev, staging, prod",
        "environment 'staging' is in no stage; add it to order, or remove it from the environments",
    )


def test_duplicate_and_missing_environments_are_rejected():
    envs = configs()
    assert problems_of([*envs, envs[0]]) == ("environment 'dev' is given more than once; give each environment once",)
    assert problems_of([]) == ("environments is empty; give at least one environment",)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        (
            {"connection_arn": "arn:aws:codeconnections:eu-west-1:0:connection/x"},
            "source.connection_arn 'arn:aws:codeconnections:eu-west-1:0:connection/x' is not a connection ARN; use "
            "arn:aws:codeconnections:<region>:<account>:connection/<uuid> (or the legacy codestar-connections "
            "service name), as shown in the console under Developer Tools > Connections",
        ),
        ({"branch": ""}, "source.branch '' is not a branch name; use e.g. 'main'"),
        (
            {"source_bucket_name": "acme-source", "source_object_key": "mlops.zip"},
            "give the repository either as connection_arn, repository and branch (AWS CodeConnections), "
            "or as source_bucket_name and source_object_key (a zip in S3)",
        ),
        (
            {"model_registry_environment": "qa"},
            "model_registry_environment 'qa' is not an environment; use one of: dev, staging, prod",
        ),
    ],
)
def test_source_and_registry_problems_are_rejected(kwargs, problem):
    assert problems_of(configs(), **kwargs) == (problem,)


def test_a_tooling_stage_needs_a_real_account_and_region():
    with pytest.raises(ConfigurationError) as raised:
        ToolingStage(cdk.App(), "Tooling", account="123", region="mars-1", environments=configs())
    assert str(raised.value).startswith("[Tooling] 2 problems:")
    assert raised.value.problems == (
        "tooling account '123' is not an AWS account id; use the 12 digits, as a string",
        "tooling region 'mars-1' is not a known AWS region",
    )


def test_an_environment_without_account_deploys_to_the_tooling_account_with_a_warning():
    (dev,) = load_environments({"dev": {}})
    stack = delivery([dev], model_delivery=False)
    assert [(c.account, c.region) for c in stack.environments] == [("000000000000", "eu-west-1")]
    assert stack.models is None
    Annotations.from_stack(stack).has_warning(
        "/Delivery", Match.string_like_regexp("environment dev sets no account and region; the pipeline deploys it")
    )
