"""TrainingPipeline in a private network: every job in the VPC, the ENI grant, MLflow without PyPI.

Also the network-interface grant every SageMaker construct shares (``grant_sagemaker_vpc_access``)
on the endpoint and the monitor, an SDK-authored pipeline in a VPC, and the VPC layout's step
requests against botocore's SageMaker model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from cdk_mlops import pipeline_definition as pd
from cdk_mlops.constructs import training_pipeline as training_pipeline_module
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.model_endpoint import DataCaptureSettings, ModelEndpoint
from cdk_mlops.constructs.model_monitor import Baselines, DataQualitySettings, ModelMonitor
from cdk_mlops.constructs.training_pipeline import MlflowSettings, TrainingPipeline, mlflow_settings_problems
from cdk_mlops.errors import ConfigurationError
from tests.contracts import botocore_checks as checks
from tests.quality import (
    actions_of,
    cfn_lint_findings,
    logical_id,
    nag_findings,
    resolve_like_cloudformation,
    statements,
)
from tests.unit.constructs.test_training_pipeline import build_sdk, sdk_processing_definition

ENV = cdk.Environment(account="123456789012", region="eu-west-1")
ZONES = ["eu-west-1a", "eu-west-1b"]
INDEX = "https://pypi.example.internal/simple"
SUBNETS = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
GROUP = "sg-0123456789abcdef0"
LOGGING_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlflow-client:2.16.2"
PACKAGE_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-training-models/3"
#: Step types that start a SageMaker job, and those that start none; any other type fails the checks.
JOB_STEP_TYPES = frozenset({"Processing", "QualityCheck", "ClarifyCheck", "Training", "Tuning", "Transform"})
NO_JOB_STEP_TYPES = frozenset({"Condition", "Fail", "RegisterModel"})
JOB_STEPS = {"Preprocess", "DataQualityBaseline", "ModelQualityBaseline", "Train", "Evaluate", "Track"}
#: What SageMaker reads about the network before it attaches containers to it.
DESCRIBE_ACTIONS = [
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
]


@dataclass(frozen=True)
class Synth:
    stack: cdk.Stack
    template: Template

    @property
    def raw(self) -> dict[str, Any]:
        return dict(self.template.to_json())

    def resolve(self, value: Any) -> Any:
        """A template value (or a token of the stack) as CloudFormation would resolve it."""
        return resolve_like_cloudformation(self.stack.resolve(value), self.raw, region="eu-west-1", service_arns=True)

    def role_statements(self, role: iam.IRole, *, action_prefix: str = "") -> list[dict[str, Any]]:
        """The statements of ``role``'s policies, resolved; only those with actions of ``action_prefix``."""
        found = [s for s in statements(self.template, role) if any(a.startswith(action_prefix) for a in actions_of(s))]
        return [self.resolve(s) for s in found]


@dataclass(frozen=True)
class Built(Synth):
    training: TrainingPipeline
    vpc: ec2.IVpc | None

    def definition(self) -> dict[str, Any]:
        (pipeline,) = self.template.find_resources("AWS::SageMaker::Pipeline").values()
        definition: dict[str, Any] = json.loads(
            self.resolve(pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"])
        )
        return definition

    def subnets(self) -> list[str]:
        assert self.vpc is not None
        return [self.resolve(s) for s in self.vpc.select_subnets().subnet_ids]

    def groups(self) -> list[str]:
        return [self.resolve(g.security_group_id) for g in self.training.security_groups]


def isolated_vpc(stack: cdk.Stack) -> ec2.Vpc:
    """Private subnets in two zones, no NAT or internet gateway, flow logs on (as prod's network).

    In an environment-agnostic stack, so the zones are the region's first two (``Fn::GetAZs``).
    """
    vpc = ec2.Vpc(
        stack,
        "Vpc",
        max_azs=2,
        nat_gateways=0,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="Private", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24)
        ],
    )
    vpc.add_flow_log("FlowLog")
    return vpc


def imported_vpc(stack: cdk.Stack) -> ec2.IVpc:
    """An existing VPC named by its ids (no lookup)."""
    return ec2.Vpc.from_vpc_attributes(
        stack, "Vpc", vpc_id="vpc-0123456789abcdef0", availability_zones=ZONES, private_subnet_ids=SUBNETS
    )


def pipeline(stack: cdk.Stack, **kwargs: Any) -> TrainingPipeline:
    store = VersionedDataStore(stack, "Data", datasets=["churn"])
    return TrainingPipeline(
        stack, "Training", data_store=store, dataset="churn", pipeline_name="churn-training", **kwargs
    )


@pytest.fixture(scope="module")
def private() -> Built:
    """The pipeline in an isolated VPC of the stack, with its own security group, MLflow from a mirror."""
    stack = cdk.Stack(cdk.App(), "Test")
    vpc = isolated_vpc(stack)
    training = pipeline(stack, vpc=vpc, mlflow=MlflowSettings(package_index_url=INDEX))
    return Built(stack, Template.from_stack(stack), training, vpc)


@pytest.fixture(scope="module")
def existing() -> Built:
    """The pipeline in an existing VPC with a given group, MLflow from a logging image."""
    stack = cdk.Stack(cdk.App(), "Test", env=ENV)
    vpc = imported_vpc(stack)
    group = ec2.SecurityGroup.from_security_group_id(stack, "Group", GROUP)
    training = pipeline(stack, vpc=vpc, security_groups=[group], mlflow=MlflowSettings(logging_image_uri=LOGGING_IMAGE))
    return Built(stack, Template.from_stack(stack), training, vpc)


@pytest.fixture(scope="module")
def public() -> Built:
    """The pipeline without a VPC."""
    stack = cdk.Stack(cdk.App(), "Test", env=ENV)
    training = pipeline(stack)
    return Built(stack, Template.from_stack(stack), training, None)


def job_networks(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The network settings of every job step, by step name (condition branches included)."""
    found: dict[str, dict[str, Any]] = {}
    for step in checks.every_step(definition["Steps"]):
        kind, arguments = step["Type"], step["Arguments"]
        assert kind in JOB_STEP_TYPES | NO_JOB_STEP_TYPES, f"step {step['Name']}: type {kind} is not known here"
        if kind == "Training":
            found[step["Name"]] = {k: arguments.get(k) for k in ("VpcConfig", "EnableNetworkIsolation")} | {
                "EnableInterContainerTrafficEncryption": arguments.get("EnableInterContainerTrafficEncryption")
            }
        elif kind in JOB_STEP_TYPES:
            found[step["Name"]] = arguments.get("NetworkConfig") or {}
    return found


# ----------------------------------------------------------------------------- every job in the VPC


@pytest.mark.parametrize("fixture", ["private", "existing"])
def test_every_job_step_runs_in_the_subnets_with_the_security_groups(fixture, request):
    built: Built = request.getfixturevalue(fixture)
    # GIVEN the subnets the VPC selects and the pipeline's groups, as CloudFormation resolves them
    subnets, groups = built.subnets(), built.groups()
    # WHEN the definition is read
    networks = job_networks(built.definition())
    # THEN every job (Track included) runs there
    assert set(networks) == JOB_STEPS
    for name, network in networks.items():
        assert network["VpcConfig"] == {"Subnets": subnets, "SecurityGroupIds": groups}, name
    assert (len(subnets), len(groups)) == (2, 1)


def test_an_existing_vpc_and_group_are_used_as_given(existing):
    networks = job_networks(existing.definition())
    assert {n["VpcConfig"]["Subnets"] == SUBNETS for n in networks.values()} == {True}
    assert {n["VpcConfig"]["SecurityGroupIds"] == [GROUP] for n in networks.values()} == {True}
    existing.template.resource_count_is("AWS::EC2::SecurityGroup", 0)


def test_jobs_encrypt_traffic_between_instances_and_run_isolated_where_they_need_no_network(private):
    networks = job_networks(private.definition())
    for name, network in networks.items():
        assert network["EnableInterContainerTrafficEncryption"] is True, name
    isolated = {name for name, network in networks.items() if network["EnableNetworkIsolation"]}
    # Preprocess reads S3 with boto3, Track calls SageMaker and MLflow, Evaluate gets the MLflow ARN.
    assert isolated == {"Train", "DataQualityBaseline", "ModelQualityBaseline"}


def test_without_a_vpc_no_job_has_a_vpc_config_and_the_role_no_ec2_permission(public):
    networks = job_networks(public.definition())
    assert {name: n.get("VpcConfig") for name, n in networks.items()} == dict.fromkeys(JOB_STEPS - {"Track"})
    assert public.role_statements(public.training.role, action_prefix="ec2:") == []
    assert public.training.security_groups == []
    assert public.training.connections is None


# ----------------------------------------------------------------------------- the security group


def test_the_new_group_admits_only_its_members_and_sends_https(private):
    (group,) = private.training.security_groups
    group_id = logical_id(group)
    props = private.raw["Resources"][group_id]["Properties"]
    # THEN no inbound rule of its own; outbound HTTPS only, besides its members
    assert "SecurityGroupIngress" not in props
    assert props["SecurityGroupEgress"] == [
        {
            "CidrIp": "0.0.0.0/0",
            "Description": "HTTPS to the AWS APIs and the package index",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]
    itself = {"Fn::GetAtt": [group_id, "GroupId"]}
    ingress = private.template.find_resources("AWS::EC2::SecurityGroupIngress")
    assert [r["Properties"]["SourceSecurityGroupId"] for r in ingress.values()] == [itself]
    egress = private.template.find_resources("AWS::EC2::SecurityGroupEgress")
    assert [r["Properties"]["DestinationSecurityGroupId"] for r in egress.values()] == [itself]
    assert private.training.connections is not None


# ----------------------------------------------------------------------------- the ENI grant


def arns(kind: str, ids: list[str]) -> list[str]:
    return [f"arn:aws:ec2:eu-west-1:123456789012:{kind}/{i}" for i in ids]


def eni_statements(built: Synth, role: iam.IRole) -> dict[str, dict[str, Any]]:
    """The role's statements with EC2 actions, by their first action."""
    return {actions_of(s)[0]: s for s in built.role_statements(role, action_prefix="ec2:")}


def assert_eni_grant(found: dict[str, dict[str, Any]], subnets: list[str], groups: list[str]) -> None:
    assert set(found) == {
        "ec2:CreateNetworkInterface",
        "ec2:CreateNetworkInterfacePermission",
        "ec2:DeleteNetworkInterfacePermission",
        DESCRIBE_ACTIONS[0],
    }
    create = found["ec2:CreateNetworkInterface"]
    # A new interface, only in the subnets and only with the groups.
    assert actions_of(create) == ["ec2:CreateNetworkInterface"]
    assert create["Resource"] == [
        *arns("network-interface", ["*"]),
        *arns("subnet", subnets),
        *arns("security-group", groups),
    ]
    assert "Condition" not in create
    # Sharing and deleting: interfaces in the subnets only.
    share = found["ec2:CreateNetworkInterfacePermission"]
    assert actions_of(share) == ["ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface"]
    assert share["Resource"] == arns("network-interface", ["*"])[0]
    assert share["Condition"] == {"ArnEquals": {"ec2:Subnet": arns("subnet", subnets)}}
    unshare = found["ec2:DeleteNetworkInterfacePermission"]
    assert (unshare["Resource"], unshare["Condition"]) == (
        "*",
        {"ArnEqualsIfExists": {"ec2:Subnet": arns("subnet", subnets)}},
    )
    describe = found[DESCRIBE_ACTIONS[0]]
    assert (actions_of(describe), describe["Resource"]) == (DESCRIBE_ACTIONS, "*")
    assert "Condition" not in describe


@pytest.mark.parametrize("fixture", ["private", "existing"])
def test_the_role_may_attach_jobs_to_the_subnets_and_groups_only(fixture, request):
    built: Built = request.getfixturevalue(fixture)
    assert_eni_grant(eni_statements(built, built.training.role), built.subnets(), built.groups())


@pytest.mark.parametrize("fixture", ["private", "existing"])
def test_the_vpc_stack_passes_cfn_lint_and_cdk_nag(fixture, request):
    built: Built = request.getfixturevalue(fixture)
    assert cfn_lint_findings(built.raw, region="eu-west-1") == []
    assert nag_findings(built.stack) == []


# ----------------------------------------------------------------------------- invalid network arguments


def group(stack: cdk.Stack, index: int) -> ec2.ISecurityGroup:
    return ec2.SecurityGroup.from_security_group_id(stack, f"Group{index}", f"sg-0123456789abcdef{index}")


@pytest.mark.parametrize(
    ("network", "expected"),
    [
        (
            lambda s: {"vpc_subnets": ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)},
            "vpc_subnets need vpc; pass vpc=..., or remove them",
        ),
        (lambda s: {"security_groups": [group(s, 1)]}, "security_groups need vpc; pass vpc=..., or remove them"),
        (
            lambda s: {"vpc": isolated_vpc(s), "security_groups": []},
            "security_groups has 0 groups; a SageMaker job takes 1 to 5: pass that many, or leave it out for a new "
            "group",
        ),
        (
            lambda s: {"vpc": isolated_vpc(s), "security_groups": [group(s, i) for i in range(6)]},
            "security_groups has 6 groups; a SageMaker job takes 1 to 5",
        ),
        (
            lambda s: {"vpc": isolated_vpc(s), "vpc_subnets": ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)},
            "vpc_subnets: ThereSubnetGroups: There are no 'Public' subnet groups in this VPC",
        ),
        (
            lambda s: {"vpc": isolated_vpc(s), "vpc_subnets": ec2.SubnetSelection(availability_zones=["eu-west-1c"])},
            "vpc_subnets selects 0 subnets of the VPC; a SageMaker job takes 1 to 16: change the selection",
        ),
    ],
)
def test_invalid_network_arguments_are_configuration_errors(network, expected):
    stack = cdk.Stack(cdk.App(), "Test")
    with pytest.raises(ConfigurationError) as caught:
        pipeline(stack, **network(stack))
    assert caught.value.location == "Test/Training"
    assert [p for p in caught.value.problems if p.startswith(expected)], caught.value.problems


# ----------------------------------------------------------------------------- MLflow in a private network


def test_mlflow_in_a_vpc_needs_a_logging_image_or_a_package_mirror():
    stack = cdk.Stack(cdk.App(), "Test", env=ENV)
    with pytest.raises(ConfigurationError) as caught:
        pipeline(stack, vpc=imported_vpc(stack), mlflow=MlflowSettings())
    assert caught.value.problems == (
        "mlflow: in a VPC the Track step cannot install the MLflow client from PyPI (it has no VPC endpoint); "
        "set mlflow.logging_image_uri to an ECR image with mlflow and sagemaker-mlflow installed, or "
        "mlflow.package_index_url to your package mirror's https:// index (with a NAT gateway, "
        "'https://pypi.org/simple' keeps PyPI)",
    )


def track_step(built: Built) -> dict[str, Any]:
    (track,) = [s for s in checks.every_step(built.definition()["Steps"]) if s["Name"] == pd.TRACK]
    arguments: dict[str, Any] = track["Arguments"]
    return arguments


def test_track_installs_the_client_from_the_package_mirror(private):
    track = track_step(private)
    assert track["Environment"][pd.PIP_INDEX_URL_ENV] == INDEX
    assert [a for a in track["AppSpecification"]["ContainerArguments"] if str(a).startswith("--requirement=")] == [
        "--requirement=mlflow==2.16.2",
        "--requirement=sagemaker-mlflow==0.1.1",
    ]


def test_track_in_the_logging_image_installs_nothing(existing):
    track = track_step(existing)
    assert track["AppSpecification"]["ImageUri"] == LOGGING_IMAGE
    assert pd.PIP_INDEX_URL_ENV not in track["Environment"]
    assert not [a for a in track["AppSpecification"]["ContainerArguments"] if str(a).startswith("--requirement=")]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "http://pypi.example.internal/simple",
            "mlflow.package_index_url 'http://pypi.example.internal/simple' is not",
        ),
        ("pypi.example.internal", "mlflow.package_index_url 'pypi.example.internal' is not an https:// URL"),
        ("https://", "mlflow.package_index_url 'https://' is not an https:// URL"),
        ("https://ci:s3cret@pypi.example.internal/simple", "mlflow.package_index_url holds credentials"),
        ("https://pypi.example.internal/" + "s" * 240, "mlflow.package_index_url has 270 characters; a job's"),
    ],
)
def test_the_package_index_must_be_an_https_url_without_credentials(url, expected):
    problems = mlflow_settings_problems(MlflowSettings(package_index_url=url), "churn-training")
    assert len(problems) == 1
    assert problems[0].startswith(expected)


def test_a_package_index_token_and_a_valid_url_are_accepted():
    stack = cdk.Stack()
    token = cdk.CfnParameter(stack, "Index").value_as_string
    for url in (INDEX, "https://nexus.example.internal:8443/repository/pypi/simple/", token):
        assert mlflow_settings_problems(MlflowSettings(package_index_url=url), "churn-training") == []


def test_mlflow_endpoints_name_the_services_the_track_step_calls():
    stack = cdk.Stack(cdk.App(), "Test")
    endpoints = training_pipeline_module.MLFLOW_VPC_ENDPOINTS
    names = {
        key: resolve_like_cloudformation(stack.resolve(service.name), {}, region="eu-west-1")
        for key, service in endpoints.items()
    }
    assert names == {
        "sagemaker.api": "com.amazonaws.eu-west-1.sagemaker.api",
        "experiments": "aws.sagemaker.eu-west-1.experiments",
        "s3": "com.amazonaws.eu-west-1.s3",
    }


# ----------------------------------------------------------------------------- AWS's contract


@pytest.mark.parametrize("scenario", checks.SCENARIOS)
def test_the_vpc_layout_steps_are_valid_sagemaker_requests(existing, scenario):
    definition = existing.definition()
    options = {"pipeline_name": "churn-training", "region": "eu-west-1", "account": "123456789012"}
    (execution,) = [e for e in checks.executions(definition, **options) if e.scenario == scenario]
    requests = checks.step_requests(definition, execution)
    assert {r.step for r in requests} >= JOB_STEPS
    assert checks.problems_by_step(definition, execution) == {}


# ----------------------------------------------------------------------------- the shared grant elsewhere


@dataclass(frozen=True)
class Serving(Synth):
    endpoint: ModelEndpoint
    monitor: ModelMonitor


@pytest.fixture(scope="module")
def serving() -> Serving:
    stack = cdk.Stack(cdk.App(), "Serving", env=ENV)
    store = VersionedDataStore(stack, "Store", datasets=["churn"])
    vpc = imported_vpc(stack)
    endpoint = ModelEndpoint(
        stack,
        "Endpoint",
        endpoint_name="churn",
        data_store=store,
        model_package_arn=PACKAGE_ARN,
        data_capture=DataCaptureSettings(),
        vpc=vpc,
    )
    monitor = ModelMonitor(
        stack,
        "Monitor",
        endpoint=endpoint,
        data_store=store,
        data_quality=DataQualitySettings(baselines=Baselines.from_prefix(store.s3_uri("monitoring/baselines/churn/"))),
        add_to_endpoint_dashboard=False,
    )
    return Serving(stack, Template.from_stack(stack), endpoint, monitor)


def test_the_endpoint_and_monitor_roles_attach_to_the_endpoint_subnets_only(serving):
    groups = [serving.resolve(g.security_group_id) for g in serving.endpoint.security_groups]
    for role in (serving.endpoint.role, serving.monitor.role):
        assert_eni_grant(eni_statements(serving, role), SUBNETS, groups)
    assert nag_findings(serving.stack) == []


def test_an_sdk_pipeline_may_attach_to_the_subnets_its_definition_names():
    # GIVEN a definition whose processing step runs in two subnets with one group
    network = {"VpcConfig": {"Subnets": SUBNETS, "SecurityGroupIds": [GROUP]}, "EnableNetworkIsolation": False}
    built = build_sdk(json.dumps(sdk_processing_definition(NetworkConfig=network)))
    # THEN its role may create network interfaces there only
    assert_eni_grant(eni_statements(Synth(built.stack, built.template), built.training.role), SUBNETS, [GROUP])
    assert nag_findings(built.stack) == []


def test_an_sdk_pipeline_must_name_its_subnets():
    network = {"VpcConfig": {"Subnets": [{"Get": "Parameters.Subnet"}], "SecurityGroupIds": [GROUP]}}
    with pytest.raises(ConfigurationError, match=r"a VpcConfig names subnets or security groups with a pipeline"):
        build_sdk(json.dumps(sdk_processing_definition(NetworkConfig=network)))
