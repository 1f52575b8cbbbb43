"""ModelMonitor: job definitions per type, baselines, network, least privilege, alarms, event routing, validation."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, replace
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template
from aws_cdk.aws_sagemaker import CfnModelExplainabilityJobDefinition

from cdk_mlops.compliance import synth_app
from cdk_mlops.config import EndpointKind
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.model_endpoint import DataCaptureSettings, IModelEndpoint, ModelEndpoint
from cdk_mlops.constructs.model_monitor import (
    METRICS_NAMESPACE,
    Baselines,
    DataQualitySettings,
    ModelBiasSettings,
    ModelExplainabilitySettings,
    ModelMonitor,
    ModelQualitySettings,
    MonitoringType,
    MonitorProblemType,
    MonitorSchedule,
    feature_drift_alarm_name,
    model_quality_alarm_name,
    schedule_name,
)
from cdk_mlops.constructs.retrain_trigger import DEFAULT_RETRAIN_ON_VIOLATIONS, RetrainTrigger
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.guardrails import GuardrailSettings, apply_guardrails
from cdk_mlops.lambdas.retrain_trigger import events as trigger_events
from tests.conftest import load_event
from tests.contracts.event_patterns import matches
from tests.quality import (
    actions_of,
    cfn_lint_findings,
    logical_id,
    nag_findings,
    resolve_like_cloudformation,
    statements,
)

ENV = cdk.Environment(account="123456789012", region="eu-west-1")
PACKAGE_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-training-models/3"
BASELINE_PREFIX = "s3://cdk-mlops-prod-data/artifacts/churn-training/exec-1/data-quality-baseline"
CLARIFY_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/clarify:1.0"
PREBUILT_CLARIFY_IMAGE = "131013547314.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-clarify-processing:1.0"
TAGS = {"project": "churn", "environment": "prod", "owner": "ml-team"}
ANALYZER_IMAGE = "468650794304.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-model-monitor-analyzer"
JOB_DEFINITION_TYPES = {
    MonitoringType.DATA_QUALITY: "AWS::SageMaker::DataQualityJobDefinition",
    MonitoringType.MODEL_QUALITY: "AWS::SageMaker::ModelQualityJobDefinition",
    MonitoringType.MODEL_BIAS: "AWS::SageMaker::ModelBiasJobDefinition",
    MonitoringType.MODEL_EXPLAINABILITY: "AWS::SageMaker::ModelExplainabilityJobDefinition",
}


def package_description(arn: str = PACKAGE_ARN) -> dict[str, Any]:
    """A DescribeModelPackage response as the training pipeline registers it, plus Clarify baselines."""

    def source(key: str) -> dict[str, str]:
        return {"ContentType": "application/json", "S3Uri": f"{BASELINE_PREFIX}/{key}"}

    return {
        "ModelPackageArn": arn,
        "ModelApprovalStatus": "Approved",
        "DriftCheckBaselines": {
            "ModelDataQuality": {"Statistics": source("statistics.json"), "Constraints": source("constraints.json")},
            "ModelQuality": {"Constraints": source("model-quality/constraints.json")},
            "Bias": {
                "ConfigFile": source("bias/analysis_config.json"),
                "PreTrainingConstraints": source("bias/pre.json"),
                "PostTrainingConstraints": source("bias/post.json"),
            },
            "Explainability": {
                "ConfigFile": source("explainability/analysis_config.json"),
                "Constraints": source("explainability/constraints.json"),
            },
        },
    }


def resource_of(raw: dict[str, Any], construct: Any) -> dict[str, Any]:
    resource: dict[str, Any] = raw["Resources"][logical_id(construct)]
    return resource


@dataclass(frozen=True)
class Prod:
    """A prod-shaped platform: data store stack; serving stack with endpoint, monitor and retrain trigger."""

    data: cdk.Stack
    serving: cdk.Stack
    store: VersionedDataStore
    endpoint: ModelEndpoint
    monitor: ModelMonitor
    trigger: RetrainTrigger
    template: Template
    raw: dict[str, Any]


@pytest.fixture(scope="module")
def prod() -> Prod:
    app = cdk.App()
    data = cdk.Stack(app, "Data", env=ENV, termination_protection=True)
    store = VersionedDataStore(data, "Store", datasets=["churn"])
    serving = cdk.Stack(app, "Serving", env=ENV, termination_protection=True)
    vpc = ec2.Vpc.from_vpc_attributes(
        serving,
        "Vpc",
        vpc_id="vpc-0123456789abcdef0",
        availability_zones=["eu-west-1a", "eu-west-1b"],
        private_subnet_ids=["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
    )
    endpoint = ModelEndpoint(
        serving,
        "Endpoint",
        endpoint_name="churn",
        data_store=store,
        model_package_arn=PACKAGE_ARN,
        data_capture=DataCaptureSettings(sampling_percentage=20),
        require_rollback_alarms=True,
        vpc=vpc,
    )
    package = package_description()
    monitor = ModelMonitor(
        serving,
        "Monitor",
        endpoint=endpoint,
        data_store=store,
        dataset="churn",
        data_quality=DataQualitySettings(
            baselines=Baselines.from_model_package(package),
            drift_thresholds={"total_charges": 0.2, "tenure": 0.3},
        ),
        model_quality=ModelQualitySettings(
            baselines=Baselines.from_model_package(package, MonitoringType.MODEL_QUALITY),
            problem_type=MonitorProblemType.BINARY_CLASSIFICATION,
            ground_truth_prefix="ground-truth/churn/",
            probability_attribute="0",
            probability_threshold=0.5,
            start_time_offset="-P1DT2H",
            end_time_offset="-PT2H",
            quality_thresholds={"auc": 0.8, "false_positive_rate": 0.2},
            schedule=MonitorSchedule.daily(hour=3),
        ),
        model_bias=ModelBiasSettings(
            baselines=Baselines.from_model_package(package, MonitoringType.MODEL_BIAS),
            image_uri=CLARIFY_IMAGE,
            ground_truth_prefix="ground-truth/churn/",
            probability_attribute="0",
            probability_threshold=0.5,
            schedule=MonitorSchedule.every(hours=6),
        ),
        model_explainability=ModelExplainabilitySettings(
            # No image_uri: the region's prebuilt Clarify image.
            baselines=Baselines.from_model_package(package, MonitoringType.MODEL_EXPLAINABILITY),
            probability_attribute="0",
            instance_type="ml.c5.xlarge",
        ),
    )
    trigger = RetrainTrigger(
        serving,
        "Retrain",
        data_store=store,
        datasets=["churn"],
        pipeline_name="churn-training",
        drift_alarms=monitor.drift_alarms,
        # The environment requires isolation (MLOPS-007), so the trigger's function runs in the VPC too.
        vpc=vpc,
    )
    for key, value in TAGS.items():
        cdk.Tags.of(app).add(key, value)
    apply_guardrails(app, GuardrailSettings(prod=True, require_network_isolation=True))
    assembly = synth_app(app)  # exits on any unacknowledged guardrail finding
    raw = assembly.get_stack_artifact(serving.artifact_id).template
    return Prod(data, serving, store, endpoint, monitor, trigger, Template.from_json(raw), raw)


@dataclass(frozen=True)
class Minimal:
    """Data quality only, explicit baselines, an environment-agnostic stack, a passed topic and key."""

    stack: cdk.Stack
    store: VersionedDataStore
    endpoint: ModelEndpoint
    monitor: ModelMonitor
    topic: sns.Topic
    key: kms.Key
    template: Template
    raw: dict[str, Any]


@pytest.fixture(scope="module")
def minimal() -> Minimal:
    app = cdk.App()
    stack = cdk.Stack(app, "Minimal")
    store = VersionedDataStore(stack, "Store", datasets=["churn"])
    endpoint = ModelEndpoint(
        stack,
        "Endpoint",
        endpoint_name="churn-staging",
        data_store=store,
        model_package_arn=PACKAGE_ARN,
        data_capture=DataCaptureSettings(),
    )
    key = kms.Key(stack, "OpsKey", enable_key_rotation=True)
    topic = sns.Topic(stack, "Ops", master_key=key, enforce_ssl=True)
    monitor = ModelMonitor(
        stack,
        "Monitor",
        endpoint=endpoint,
        data_store=store,
        data_quality=DataQualitySettings(
            baselines=Baselines.from_prefix(store.s3_uri("monitoring/baselines/churn/")),
            schedule=MonitorSchedule.daily(),
            max_runtime=Duration.minutes(30),
        ),
        alarm_topic=topic,
        encryption_key=key,
        add_to_endpoint_dashboard=False,
    )
    raw = dict(Template.from_stack(stack).to_json())
    return Minimal(stack, store, endpoint, monitor, topic, key, Template.from_json(raw), raw)


# ------------------------------------------------------------------ job definitions and schedules


def test_one_job_definition_and_one_schedule_per_type_each_on_its_own_schedule(prod: Prod) -> None:
    expected = {
        MonitoringType.DATA_QUALITY: "cron(0 * ? * * *)",
        MonitoringType.MODEL_QUALITY: "cron(0 3 ? * * *)",
        MonitoringType.MODEL_BIAS: "cron(0 0/6 ? * * *)",
        MonitoringType.MODEL_EXPLAINABILITY: "cron(0 * ? * * *)",
    }
    prod.template.resource_count_is("AWS::SageMaker::MonitoringSchedule", 4)
    role_policy = logical_id(prod.monitor.role.node.find_child("DefaultPolicy"))
    for monitoring_type, cfn_type in JOB_DEFINITION_TYPES.items():
        prod.template.resource_count_is(cfn_type, 1)
        definition = resource_of(prod.raw, prod.monitor.job_definitions[monitoring_type])
        assert definition["Type"] == cfn_type
        schedule = resource_of(prod.raw, prod.monitor.schedules[monitoring_type])
        config = schedule["Properties"]["MonitoringScheduleConfig"]
        assert schedule["Properties"]["MonitoringScheduleName"] == f"churn-{monitoring_type.slug}"
        assert schedule["Properties"]["EndpointName"] == "churn"
        assert config["MonitoringType"] == monitoring_type.value
        assert config["ScheduleConfig"] == {"ScheduleExpression": expected[monitoring_type]}
        # The definition has no name attribute: the schedule takes the name from its ARN.
        assert config["MonitoringJobDefinitionName"] == {
            "Fn::Select": [
                1,
                {
                    "Fn::Split": [
                        "/",
                        {"Fn::GetAtt": [logical_id(definition_of(prod, monitoring_type)), "JobDefinitionArn"]},
                    ]
                },
            ]
        }
        assert logical_id(prod.endpoint.endpoint) in schedule["DependsOn"]
        # The definition waits for the endpoint and the role's policy; it names the role with Fn::GetAtt.
        assert sorted(definition["DependsOn"]) == sorted([logical_id(prod.endpoint.endpoint), role_policy])
        assert definition["Properties"]["RoleArn"] == {"Fn::GetAtt": [logical_id(prod.monitor.role), "Arn"]}


def definition_of(prod: Prod, monitoring_type: MonitoringType) -> Any:
    return prod.monitor.job_definitions[monitoring_type]


def test_data_quality_uses_the_analyzer_image_and_the_packages_baselines(prod: Prod) -> None:
    props = resource_of(prod.raw, definition_of(prod, MonitoringType.DATA_QUALITY))["Properties"]
    assert props["DataQualityAppSpecification"] == {
        "ImageUri": ANALYZER_IMAGE,
        "Environment": {"publish_cloudwatch_metrics": "Enabled"},
    }
    assert props["DataQualityBaselineConfig"] == {
        "ConstraintsResource": {"S3Uri": f"{BASELINE_PREFIX}/constraints.json"},
        "StatisticsResource": {"S3Uri": f"{BASELINE_PREFIX}/statistics.json"},
    }
    assert props["DataQualityJobInput"] == {
        "EndpointInput": {
            "EndpointName": "churn",
            "LocalPath": "/opt/ml/processing/input/endpoint",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        }
    }
    assert props["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}


def test_model_quality_merges_ground_truth_with_the_probability_attributes(prod: Prod) -> None:
    props = resource_of(prod.raw, definition_of(prod, MonitoringType.MODEL_QUALITY))["Properties"]
    assert props["ModelQualityAppSpecification"]["ProblemType"] == "BinaryClassification"
    assert props["ModelQualityAppSpecification"]["ImageUri"] == ANALYZER_IMAGE
    assert props["ModelQualityBaselineConfig"] == {
        "ConstraintsResource": {"S3Uri": f"{BASELINE_PREFIX}/model-quality/constraints.json"}
    }
    job_input = props["ModelQualityJobInput"]
    endpoint_input = job_input["EndpointInput"]
    assert endpoint_input["ProbabilityAttribute"] == "0"
    assert endpoint_input["ProbabilityThresholdAttribute"] == 0.5
    assert (endpoint_input["StartTimeOffset"], endpoint_input["EndTimeOffset"]) == ("-P1DT2H", "-PT2H")
    assert "InferenceAttribute" not in endpoint_input
    ground_truth = json.dumps(job_input["GroundTruthS3Input"]["S3Uri"])
    assert ground_truth.startswith('{"Fn::Join": ["", ["s3://", {"Fn::ImportValue": ')
    assert ground_truth.endswith('"/ground-truth/churn/"]]}')


def test_bias_and_explainability_run_clarify_with_the_analysis_configuration(prod: Prod) -> None:
    bias = resource_of(prod.raw, definition_of(prod, MonitoringType.MODEL_BIAS))["Properties"]
    assert bias["ModelBiasAppSpecification"] == {
        "ImageUri": CLARIFY_IMAGE,
        "ConfigUri": f"{BASELINE_PREFIX}/bias/analysis_config.json",
        "Environment": {"publish_cloudwatch_metrics": "Enabled"},
    }
    assert bias["ModelBiasBaselineConfig"] == {"ConstraintsResource": {"S3Uri": f"{BASELINE_PREFIX}/bias/post.json"}}
    assert "GroundTruthS3Input" in bias["ModelBiasJobInput"]
    explain = resource_of(prod.raw, definition_of(prod, MonitoringType.MODEL_EXPLAINABILITY))["Properties"]
    assert explain["ModelExplainabilityAppSpecification"]["ImageUri"] == PREBUILT_CLARIFY_IMAGE
    # The job reads the copy that names the served model, written at deploy time.
    served = prod.monitor.analysis_config
    assert served is not None
    assert explain["ModelExplainabilityAppSpecification"]["ConfigUri"] == {
        "Fn::GetAtt": [logical_id(served.resource), "Uri"]
    }
    assert explain["ModelExplainabilityBaselineConfig"] == {
        "ConstraintsResource": {"S3Uri": f"{BASELINE_PREFIX}/explainability/constraints.json"}
    }
    assert explain["JobResources"]["ClusterConfig"]["InstanceType"] == "ml.c5.xlarge"
    assert "GroundTruthS3Input" not in explain["ModelExplainabilityJobInput"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_explainability_configuration_names_the_served_model_at_deploy_time(prod: Prod) -> None:
    served = prod.monitor.analysis_config
    assert served is not None
    resource = resource_of(prod.raw, served.resource)
    assert resource["Type"] == "Custom::ExplainabilityAnalysisConfig"
    props = resource["Properties"]
    assert props["ServiceToken"] == {"Fn::GetAtt": [logical_id(served.function), "Arn"]}
    assert props["SourceUri"] == f"{BASELINE_PREFIX}/explainability/analysis_config.json"
    assert props["ModelName"] == {"Fn::GetAtt": [logical_id(prod.endpoint.model), "ModelName"]}
    assert (props["InstanceType"], props["InstanceCount"]) == ("ml.m5.xlarge", "1")
    # The shadow endpoint is named with the prefix the jobs' role may manage.
    assert props["EndpointNamePrefix"] == "cdk-mlops-clarify"
    assert props["ServiceTimeout"] == "300"  # a function that cannot answer fails the deployment in 5 minutes
    target = json.dumps(props["TargetUri"])
    assert target.endswith('"/monitoring/churn/model-explainability-config/analysis_config.json"]]}'), target
    function = resource_of(prod.raw, served.function)["Properties"]
    assert function["Handler"] == "cdk_mlops.lambdas.analysis_config.handler.handler"
    # It runs where the jobs run: the endpoint's subnets and security group.
    assert function["VpcConfig"] == {
        "SubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
        "SecurityGroupIds": [{"Fn::GetAtt": [logical_id(prod.endpoint.security_groups[0]), "GroupId"]}],
    }
    granted = statements(prod.template, served.role)
    # It reads exactly the registered configuration, and writes only beside its copy.
    reads = [st["Resource"] for st in granted if actions_of(st) == ["s3:GetObject"]]
    source = f":s3:::{BASELINE_PREFIX.removeprefix('s3://')}/explainability/analysis_config.json"
    assert reads == [{"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, source]]}]
    writes = [r for st in granted if "s3:PutObject" in actions_of(st) for r in as_list(st["Resource"])]
    objects = [json.dumps(r) for r in writes if "Fn::Join" in r]
    assert objects, writes
    assert all(r.endswith('/monitoring/churn/model-explainability-config/*"]]}') for r in objects), objects


def test_an_explainability_monitor_without_a_model_to_name_uses_the_configuration_as_given(bad: Bad) -> None:
    imported = ModelEndpoint.from_endpoint_name(
        bad.stack, "Imported", endpoint_name="churn-imported", data_store=bad.store
    )
    settings = ModelExplainabilitySettings(
        baselines=Baselines.from_uris(constraints="s3://bucket/c.json", analysis_config="s3://bucket/a.json")
    )
    monitor = bad.monitor(endpoint=imported, model_explainability=settings)
    assert monitor.analysis_config is None
    definition = monitor.job_definitions[MonitoringType.MODEL_EXPLAINABILITY]
    assert isinstance(definition, CfnModelExplainabilityJobDefinition)
    assert bad.stack.resolve(definition.model_explainability_app_specification)["configUri"] == "s3://bucket/a.json"
    warnings = [str(m.data) for m in monitor.node.metadata if m.type == "aws:cdk:warning"]
    assert any("set ModelExplainabilitySettings(model_name=...)" in w for w in warnings), warnings
    named = bad.monitor(endpoint=imported, model_explainability=replace(settings, model_name="churn-model-7"))
    assert named.analysis_config is not None
    resource = named.analysis_config.resource.node.default_child
    assert bad.stack.resolve(resource._cfn_properties)["ModelName"] == "churn-model-7"  # type: ignore[union-attr]


def test_reports_go_under_monitoring_endpoint_type_encrypted_with_the_store_key(prod: Prod) -> None:
    store_key = prod.data.get_logical_id(prod.store.encryption_key.node.default_child)  # type: ignore[arg-type]
    volume_key = {"Fn::GetAtt": [logical_id(prod.monitor.encryption_key), "Arn"]}
    for monitoring_type in MonitoringType:
        props = resource_of(prod.raw, definition_of(prod, monitoring_type))["Properties"]
        output = next(v for k, v in props.items() if k.endswith("JobOutputConfig"))
        assert store_key in json.dumps(output["KmsKeyId"])
        (s3_output,) = output["MonitoringOutputs"]
        assert json.dumps(s3_output["S3Output"]["S3Uri"]).endswith(f'"/monitoring/churn/{monitoring_type.slug}/"]]}}')
        assert s3_output["S3Output"]["S3UploadMode"] == "EndOfJob"
        assert props["JobResources"]["ClusterConfig"]["VolumeKmsKeyId"] == volume_key
    key = resource_of(prod.raw, prod.monitor.encryption_key)
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"


def test_jobs_run_in_the_endpoint_vpc_with_its_network_isolation(prod: Prod) -> None:
    group = {"Fn::GetAtt": [logical_id(prod.endpoint.security_groups[0]), "GroupId"]}
    for monitoring_type in MonitoringType:
        network = resource_of(prod.raw, definition_of(prod, monitoring_type))["Properties"]["NetworkConfig"]
        assert network["VpcConfig"] == {
            "SecurityGroupIds": [group],
            "Subnets": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
        }
        assert network["EnableInterContainerTrafficEncryption"] is True
        # Clarify's explainability job calls the SageMaker API for its shadow endpoint.
        assert network["EnableNetworkIsolation"] is (monitoring_type is not MonitoringType.MODEL_EXPLAINABILITY)


def test_minimal_monitor_outside_a_vpc_keeps_the_endpoint_isolation(minimal: Minimal) -> None:
    props = resource_of(minimal.raw, minimal.monitor.job_definitions[MonitoringType.DATA_QUALITY])["Properties"]
    assert props["NetworkConfig"] == {"EnableInterContainerTrafficEncryption": True, "EnableNetworkIsolation": True}
    assert props["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800}
    ec2_actions = [a for s in statements(minimal.template, minimal.monitor.role) for a in actions_of(s) if "ec2:" in a]
    assert ec2_actions == []


# ------------------------------------------------------------------ baselines


def test_explicit_baselines_are_wired_as_given(minimal: Minimal) -> None:
    props = resource_of(minimal.raw, minimal.monitor.job_definitions[MonitoringType.DATA_QUALITY])["Properties"]
    bucket = logical_id(minimal.store.bucket)
    config = props["DataQualityBaselineConfig"]
    for field, file in (("ConstraintsResource", "constraints.json"), ("StatisticsResource", "statistics.json")):
        assert config[field]["S3Uri"] == {
            "Fn::Join": ["", ["s3://", {"Ref": bucket}, f"/monitoring/baselines/churn/{file}"]]
        }
    # A token URI becomes its object ARN at deploy time, and only those objects are readable.
    (read,) = [s for s in statements(minimal.template, minimal.monitor.role) if actions_of(s) == ["s3:GetObject"]]
    assert read["Resource"] == [
        {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":s3:::",
                    {"Fn::Select": [1, {"Fn::Split": ["s3://", config[field]["S3Uri"]]}]},
                ],
            ]
        }
        for field in ("ConstraintsResource", "StatisticsResource")
    ]


def test_environment_agnostic_stack_maps_the_analyzer_image_by_region(minimal: Minimal) -> None:
    props = resource_of(minimal.raw, minimal.monitor.job_definitions[MonitoringType.DATA_QUALITY])["Properties"]
    image = resolve_like_cloudformation(
        props["DataQualityAppSpecification"]["ImageUri"], minimal.raw, region="us-east-1"
    )
    assert image == "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"


@pytest.mark.parametrize(
    ("monitoring_type", "expected"),
    [
        (MonitoringType.DATA_QUALITY, ("constraints.json", "statistics.json", None)),
        (MonitoringType.MODEL_QUALITY, ("model-quality/constraints.json", None, None)),
        (MonitoringType.MODEL_BIAS, ("bias/post.json", None, "bias/analysis_config.json")),
        (
            MonitoringType.MODEL_EXPLAINABILITY,
            ("explainability/constraints.json", None, "explainability/analysis_config.json"),
        ),
    ],
)
def test_baselines_from_a_model_package_follow_its_drift_check_baselines(monitoring_type, expected):
    baselines = Baselines.from_model_package(package_description(), monitoring_type)
    constraints, statistics, config = (None if e is None else f"{BASELINE_PREFIX}/{e}" for e in expected)
    assert baselines == Baselines(
        constraints_uri=constraints,  # type: ignore[arg-type]
        statistics_uri=statistics,
        analysis_config_uri=config,
        model_package_arn=PACKAGE_ARN,
    )
    assert baselines.problems("b", monitoring_type) == []


def test_a_package_without_the_baseline_is_a_clear_error():
    description = package_description()
    del description["DriftCheckBaselines"]["ModelQuality"]
    description["DriftCheckBaselines"]["ModelDataQuality"].pop("Statistics")
    with pytest.raises(ConfigurationError) as caught:
        Baselines.from_model_package(description, MonitoringType.MODEL_QUALITY)
    assert str(caught.value) == (
        f"[model package {PACKAGE_ARN}] has no DriftCheckBaselines.ModelQuality, so it cannot baseline ModelQuality "
        "monitoring; register the package with it, or pass Baselines.from_uris(...)"
    )
    with pytest.raises(ConfigurationError, match=r"DriftCheckBaselines.ModelDataQuality has no Statistics.S3Uri"):
        Baselines.from_model_package(description)


def test_baselines_of_another_package_than_the_served_one_are_rejected(bad: Bad) -> None:
    stale = Baselines.from_model_package(package_description(PACKAGE_ARN.replace("/3", "/2")))
    with pytest.raises(ConfigurationError) as caught:
        bad.monitor(data_quality=DataQualitySettings(baselines=stale))
    assert caught.value.problems == (
        "DataQuality baselines come from arn:aws:sagemaker:eu-west-1:123456789012:model-package/"
        "churn-training-models/2, but the endpoint serves "
        f"{PACKAGE_ARN}; monitoring a model against another model's baselines reports stale drift. Take the "
        "baselines from the served package (Baselines.from_model_package of its description)",
    )


# ------------------------------------------------------------------ least privilege


def test_role_reads_capture_baselines_and_ground_truth_and_writes_only_its_reports(prod: Prod) -> None:
    found = statements(prod.template, prod.monitor.role)
    role = resource_of(prod.raw, prod.monitor.role)["Properties"]
    assert "ManagedPolicyArns" not in role
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    writes = [s for s in found if "s3:PutObject" in actions_of(s)]
    assert len(writes) == 1
    assert json.dumps(writes[0]["Resource"]).endswith('"/monitoring/churn/*"]]}]')
    reads = [json.dumps(s["Resource"]) for s in found if "s3:GetObject*" in actions_of(s)]
    assert any(r.endswith('"/capture/churn/*"]]}]') for r in reads)
    assert any(r.endswith('"/ground-truth/churn/*"]]}]') for r in reads)
    (baseline_read,) = [s for s in found if actions_of(s) == ["s3:GetObject"]]
    objects = resolve_like_cloudformation(baseline_read["Resource"], prod.raw)
    assert sorted(objects) == sorted(
        f"arn:aws:s3:::{uri.removeprefix('s3://')}"
        for t in MonitoringType
        for uri in Baselines.from_model_package(package_description(), t).uris()
    )
    metrics = next(s for s in found if actions_of(s) == ["cloudwatch:PutMetricData"])
    assert metrics["Condition"] == {"StringLike": {"cloudwatch:namespace": ["aws/sagemaker/Endpoints/*"]}}
    pulls = next(s for s in found if "ecr:BatchGetImage" in actions_of(s))
    repositories = resolve_like_cloudformation(pulls["Resource"], prod.raw)
    assert repositories == [
        "arn:aws:ecr:eu-west-1:468650794304:repository/sagemaker-model-monitor-analyzer",
        "arn:aws:ecr:eu-west-1:123456789012:repository/clarify",
        "arn:aws:ecr:eu-west-1:131013547314:repository/sagemaker-clarify-processing",
    ]
    shadow = next(s for s in found if "sagemaker:CreateEndpoint" in actions_of(s))
    assert resolve_like_cloudformation(shadow["Resource"], prod.raw) == [
        "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/cdk-mlops-clarify*",
        "arn:aws:sagemaker:eu-west-1:123456789012:endpoint-config/cdk-mlops-clarify*",
    ]
    every_action = [a for s in found for a in actions_of(s)]
    assert not [a for a in every_action if a == "*" or a.endswith(":*")]
    volume = next(s for s in found if "kms:CreateGrant" in actions_of(s))
    assert volume["Resource"] == {"Fn::GetAtt": [logical_id(prod.monitor.encryption_key), "Arn"]}


# ------------------------------------------------------------------ alarms and routing


def test_feature_drift_and_model_quality_alarms_watch_model_monitor_metrics(prod: Prod) -> None:
    monitor = prod.monitor
    assert set(monitor.feature_drift_alarms) == {"total_charges", "tenure"}
    assert set(monitor.model_quality_alarms) == {"auc", "false_positive_rate"}
    assert monitor.drift_alarms == [*monitor.feature_drift_alarms.values(), *monitor.model_quality_alarms.values()]
    drift = resource_of(prod.raw, monitor.feature_drift_alarms["total_charges"])["Properties"]
    assert (
        drift["AlarmName"]
        == feature_drift_alarm_name("churn", "total_charges")
        == ("churn-data-quality-drift-total_charges")
    )
    assert (drift["Namespace"], drift["MetricName"]) == (
        "aws/sagemaker/Endpoints/data-metrics",
        "feature_baseline_drift_total_charges",
    )
    assert drift["Dimensions"] == [
        {"Name": "Endpoint", "Value": "churn"},
        {"Name": "MonitoringSchedule", "Value": "churn-data-quality"},
    ]
    assert (drift["Statistic"], drift["Period"], drift["Threshold"]) == ("Maximum", 3600, 0.2)
    assert drift["ComparisonOperator"] == "GreaterThanThreshold"
    assert drift["TreatMissingData"] == "notBreaching"
    auc = resource_of(prod.raw, monitor.model_quality_alarms["auc"])["Properties"]
    assert auc["AlarmName"] == model_quality_alarm_name("churn", "auc") == "churn-model-quality-auc"
    assert (auc["Namespace"], auc["MetricName"], auc["Period"]) == (
        "aws/sagemaker/Endpoints/model-metrics",
        "auc",
        86400,
    )
    assert (auc["ComparisonOperator"], auc["Threshold"]) == ("LessThanThreshold", 0.8)
    fpr = resource_of(prod.raw, monitor.model_quality_alarms["false_positive_rate"])["Properties"]
    assert (fpr["ComparisonOperator"], fpr["Threshold"]) == ("GreaterThanThreshold", 0.2)
    topic = {"Ref": logical_id(monitor.alarm_topic)}
    for alarm in monitor.alarms:
        assert resource_of(prod.raw, alarm)["Properties"]["AlarmActions"] == [topic]


def test_a_drift_alarm_reaches_the_retrain_triggers_input(prod: Prod) -> None:
    drift_rule = resource_of(prod.raw, prod.trigger.rules["Drift"])["Properties"]
    assert drift_rule["EventPattern"]["resources"] == [
        {"Fn::GetAtt": [logical_id(alarm), "Arn"]} for alarm in prod.monitor.drift_alarms
    ]
    assert drift_rule["EventPattern"]["detail"] == {"state": {"value": ["ALARM"]}}
    assert drift_rule["Targets"][0]["Arn"] == {"Fn::GetAtt": [logical_id(prod.trigger.queue), "Arn"]}


def test_failed_or_stopped_executions_notify_the_encrypted_topic(prod: Prod) -> None:
    topic = resource_of(prod.raw, prod.monitor.alarm_topic)["Properties"]
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [logical_id(prod.monitor.encryption_key), "Arn"]}
    for monitoring_type in MonitoringType:
        rule = resource_of(prod.raw, prod.monitor.failed_rules[monitoring_type])["Properties"]
        assert rule["EventPattern"] == {
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker Processing Job State Change"],
            "detail": {
                "MonitoringScheduleArn": [
                    {
                        "Fn::Join": [
                            "",
                            [
                                "arn:",
                                {"Ref": "AWS::Partition"},
                                f":sagemaker:eu-west-1:123456789012:monitoring-schedule/churn-{monitoring_type.slug}",
                            ],
                        ]
                    }
                ],
                "ProcessingJobStatus": ["Failed", "Stopped"],
            },
        }
        assert rule["Targets"] == [{"Arn": {"Ref": logical_id(prod.monitor.alarm_topic)}, "Id": "Target0"}]


@pytest.mark.parametrize(
    ("monitoring_type", "period"),
    [
        (MonitoringType.DATA_QUALITY, 3600),
        (MonitoringType.MODEL_QUALITY, 86400),
        (MonitoringType.MODEL_BIAS, 21600),
        (MonitoringType.MODEL_EXPLAINABILITY, 3600),
    ],
)
def test_an_alarm_fires_when_no_execution_completes_for_two_intervals(prod: Prod, monitoring_type, period) -> None:
    alarm = resource_of(prod.raw, prod.monitor.execution_alarms[monitoring_type])["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/Events", "TriggeredRules", "Sum")
    assert alarm["Dimensions"] == [
        {"Name": "RuleName", "Value": {"Ref": logical_id(prod.monitor.completed_rules[monitoring_type])}}
    ]
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (period, 2, 2)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)
    assert alarm["TreatMissingData"] == "breaching"
    assert prod.monitor.execution_alarms[monitoring_type] not in prod.monitor.drift_alarms


@pytest.mark.parametrize(
    ("monitoring_type", "period"),
    [
        (MonitoringType.DATA_QUALITY, 3600),
        (MonitoringType.MODEL_QUALITY, 86400),
        (MonitoringType.MODEL_BIAS, 21600),
        (MonitoringType.MODEL_EXPLAINABILITY, 3600),
    ],
)
def test_each_types_violations_raise_its_alarm_within_one_schedule_interval(
    prod: Prod, monitoring_type: MonitoringType, period: int
) -> None:
    monitor = prod.monitor
    alarm = resource_of(prod.raw, monitor.violation_alarms[monitoring_type])["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (METRICS_NAMESPACE, "Violations", "Sum")
    # The dimension the publisher counts with (its putMetricData parameters).
    assert alarm["Dimensions"] == [{"Name": "MonitoringSchedule", "Value": f"churn-{monitoring_type.slug}"}]
    assert (alarm["Period"], alarm["EvaluationPeriods"]) == (period, 1)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [{"Ref": logical_id(monitor.alarm_topic)}]
    assert monitor.violation_alarms[monitoring_type] in monitor.alarms
    # Not a drift alarm: routed to the retrain trigger, it would retrain on bias violations too.
    assert monitor.violation_alarms[monitoring_type] not in monitor.drift_alarms


def test_the_alarm_counts_the_dimension_the_publisher_puts(prod: Prod) -> None:
    machine = resource_of(prod.raw, prod.monitor.violation_publisher)["Properties"]
    definition = json.loads(resolve_like_cloudformation(machine["DefinitionString"], prod.raw))
    (datum,) = definition["States"]["CountViolation"]["Parameters"]["MetricData"]
    assert definition["States"]["CountViolation"]["Parameters"]["Namespace"] == METRICS_NAMESPACE
    assert datum["MetricName"] == "Violations"
    assert datum["Dimensions"] == [{"Name": "MonitoringSchedule", "Value.$": "$.detail.monitoringScheduleName"}]


def test_a_monitor_of_one_type_has_one_violation_alarm_on_the_passed_topic(minimal: Minimal) -> None:
    (alarm,) = minimal.monitor.violation_alarms.values()
    props = resource_of(minimal.raw, alarm)["Properties"]
    assert props["Dimensions"] == [{"Name": "MonitoringSchedule", "Value": "churn-staging-data-quality"}]
    assert props["Period"] == 86400
    assert props["AlarmActions"] == [{"Ref": logical_id(minimal.topic)}]
    assert list(minimal.monitor.violation_alarms) == [MonitoringType.DATA_QUALITY]


def _render_input_transformer(transformer: dict[str, Any], event: dict[str, Any]) -> Any:
    """What EventBridge sends to the target: each <variable> replaced by the JSON of its path's value."""

    def value_at(path: str) -> Any:
        node: Any = event
        for part in path.removeprefix("$").split(".")[1:] if path != "$" else []:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    template: str = transformer["InputTemplate"]
    for name, path in transformer["InputPathsMap"].items():
        assert f'"<{name}>"' not in template, "string fields are inserted as JSON values, never inside quotes"
        template = template.replace(f"<{name}>", json.dumps(value_at(path)))
    return json.loads(template)


def _value(document: Any, path: str) -> tuple[bool, Any]:
    node = document
    for part in path.removeprefix("$.").split(".") if path != "$" else []:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _choice_matches(rule: dict[str, Any], document: Any) -> bool:
    if "And" in rule:
        return all(_choice_matches(r, document) for r in rule["And"])
    present, value = _value(document, rule["Variable"])
    if "IsPresent" in rule:
        return present is rule["IsPresent"]
    assert present, f"{rule['Variable']} is read without an IsPresent guard"
    if "StringMatches" in rule:
        pattern = re.escape(rule["StringMatches"]).replace(r"\*", ".*")
        return isinstance(value, str) and re.fullmatch(pattern, value) is not None
    if "StringEquals" in rule:
        return bool(value == rule["StringEquals"])
    raise AssertionError(f"unsupported choice rule {rule}")


def _parameters(parameters: Any, document: Any) -> Any:
    if isinstance(parameters, list):
        return [_parameters(p, document) for p in parameters]
    if not isinstance(parameters, dict):
        return parameters
    rendered: dict[str, Any] = {}
    for key, value in parameters.items():
        if key.endswith(".$"):
            present, found = _value(document, value)
            assert present, f"{value} is missing from the state input"
            rendered[key.removesuffix(".$")] = found
        else:
            rendered[key] = _parameters(value, document)
    return rendered


def _published_events(
    prod: Prod, sagemaker_event: dict[str, Any], monitoring_type: MonitoringType
) -> list[dict[str, Any]]:
    """Run the completed-execution rule's transformer and the publisher's definition on one SageMaker event."""
    rule = resource_of(prod.raw, prod.monitor.completed_rules[monitoring_type])["Properties"]
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": logical_id(prod.monitor.violation_publisher)}
    document = _render_input_transformer(target["InputTransformer"], sagemaker_event)
    machine = resource_of(prod.raw, prod.monitor.violation_publisher)["Properties"]
    definition = json.loads(resolve_like_cloudformation(machine["DefinitionString"], prod.raw))
    published: list[dict[str, Any]] = []
    state_name = definition["StartAt"]
    while True:
        state = definition["States"][state_name]
        if state["Type"] == "Succeed":
            return published
        if state["Type"] == "Choice":
            state_name = next((c["Next"] for c in state["Choices"] if _choice_matches(c, document)), state["Default"])
            continue
        assert state["Type"] == "Task"
        assert state.get("ResultPath", "x") is None, f"{state_name} must keep its input for the next state"
        parameters = _parameters(state["Parameters"], document)
        if state["Resource"] == "arn:aws:states:::events:putEvents":
            for entry in parameters["Entries"]:
                assert "EventBusName" not in entry  # the default bus, where the retrain trigger's rule listens
                published.append(
                    {
                        "version": "0",
                        "id": "7e3f9c2a-0000-4000-8000-000000000001",
                        "source": entry["Source"],
                        "detail-type": entry["DetailType"],
                        "time": sagemaker_event["time"],
                        "detail": entry["Detail"],
                    }
                )
        if state.get("End"):
            return published
        state_name = state["Next"]


def test_a_completed_execution_with_violations_becomes_the_event_the_retrain_handler_parses(prod: Prod) -> None:
    execution = load_event("monitoring_execution_completed.json")
    (published,) = _published_events(prod, execution, MonitoringType.DATA_QUALITY)
    assert published["detail"] == {
        "monitoringScheduleName": "churn-data-quality",
        "monitoringType": "DataQuality",
        "endpointName": "churn",
        "processingJobArn": execution["detail"]["ProcessingJobArn"],
        "dataset": "churn",
    }
    parsed = trigger_events.parse_body(json.dumps(published))
    assert parsed == trigger_events.MonitorViolation(
        event_id="7e3f9c2a-0000-4000-8000-000000000001",
        time=trigger_events.parse_time(execution["time"]),
        dataset="churn",
        schedule_name="churn-data-quality",
        execution_id=execution["detail"]["ProcessingJobArn"],
        violations=None,
    )
    # The retrain trigger's "Violations" rule matches the published event.
    violations = resource_of(prod.raw, prod.trigger.rules["Violations"])["Properties"]["EventPattern"]
    assert matches(violations, published)


def _trigger_rules_matching(prod: Prod, event: dict[str, Any]) -> list[str]:
    """The retrain trigger's rules (those without deploy-time values in their pattern) that match ``event``."""
    found = []
    for name in ("Requested", "Violations"):
        pattern = resource_of(prod.raw, prod.trigger.rules[name])["Properties"]["EventPattern"]
        if matches(pattern, event):
            found.append(name)
    return found


@pytest.mark.parametrize(
    ("monitoring_type", "retrains"),
    [
        (MonitoringType.DATA_QUALITY, True),
        (MonitoringType.MODEL_QUALITY, True),
        (MonitoringType.MODEL_BIAS, False),
        (MonitoringType.MODEL_EXPLAINABILITY, False),
    ],
)
def test_by_default_quality_violations_retrain_and_bias_and_explainability_violations_only_alert(
    prod: Prod, monitoring_type: MonitoringType, retrains: bool
) -> None:
    assert (monitoring_type in DEFAULT_RETRAIN_ON_VIOLATIONS) is retrains
    execution = load_event("monitoring_execution_completed.json")
    (published,) = _published_events(prod, execution, monitoring_type)
    assert published["detail"]["monitoringType"] == monitoring_type.value
    assert _trigger_rules_matching(prod, published) == (["Violations"] if retrains else [])
    # Every type's violation reaches a person through its alarm, whether or not it retrains.
    alarm = prod.monitor.violation_alarms[monitoring_type]
    assert resource_of(prod.raw, alarm)["Properties"]["AlarmActions"] == [{"Ref": logical_id(prod.monitor.alarm_topic)}]


@pytest.mark.parametrize(
    "exit_message",
    ["Completed: Job completed successfully with no violations.", None],
    ids=["no-violations", "no-exit-message"],
)
def test_a_clean_completed_execution_publishes_nothing(prod: Prod, exit_message: str | None) -> None:
    execution = copy.deepcopy(load_event("monitoring_execution_completed.json"))
    if exit_message is None:
        del execution["detail"]["ExitMessage"]
    else:
        execution["detail"]["ExitMessage"] = exit_message
    assert _published_events(prod, execution, MonitoringType.MODEL_QUALITY) == []


def test_completed_executions_route_to_an_express_publisher_with_retries_and_a_dead_letter_queue(prod: Prod) -> None:
    monitor = prod.monitor
    for monitoring_type in MonitoringType:
        rule = resource_of(prod.raw, monitor.completed_rules[monitoring_type])["Properties"]
        assert rule["EventPattern"]["detail"]["ProcessingJobStatus"] == ["Completed"]
        (target,) = rule["Targets"]
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [logical_id(monitor.dead_letter_queue), "Arn"]}}
        assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 21600, "MaximumRetryAttempts": 20}
    machine = resource_of(prod.raw, monitor.violation_publisher)["Properties"]
    assert machine["StateMachineType"] == "EXPRESS"
    assert machine["TracingConfiguration"] == {"Enabled": True}
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    queue = resource_of(prod.raw, monitor.dead_letter_queue)["Properties"]
    assert queue["KmsMasterKeyId"] == {"Fn::GetAtt": [logical_id(monitor.encryption_key), "Arn"]}
    publisher = statements(prod.template, monitor.violation_publisher.role)
    puts = next(s for s in publisher if actions_of(s) == ["events:PutEvents"])
    assert resolve_like_cloudformation(puts["Resource"], prod.raw) == (
        "arn:aws:events:eu-west-1:123456789012:event-bus/default"
    )
    count = next(s for s in publisher if actions_of(s) == ["cloudwatch:PutMetricData"])
    assert count["Condition"] == {"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}}
    for alarm in (monitor.publisher_failed_alarm, monitor.dead_letter_alarm):
        assert resource_of(prod.raw, alarm)["Properties"]["Threshold"] == 0


def test_the_endpoint_dashboard_shows_violations_over_time(prod: Prod) -> None:
    body = json.dumps(resource_of(prod.raw, prod.endpoint.dashboard)["Properties"]["DashboardBody"])
    assert "Model Monitor violations" in body
    assert METRICS_NAMESPACE in body
    assert "Feature baseline drift" in body
    assert "Model Monitor alarms" in body


def test_metric_methods_name_the_endpoint_and_schedule(prod: Prod) -> None:
    drift = prod.monitor.metric_feature_drift("tenure")
    assert (drift.namespace, drift.metric_name, drift.statistic) == (
        "aws/sagemaker/Endpoints/data-metrics",
        "feature_baseline_drift_tenure",
        "Maximum",
    )
    assert drift.dimensions == {"Endpoint": "churn", "MonitoringSchedule": "churn-data-quality"}
    bias = prod.monitor.metric(
        MonitoringType.MODEL_BIAS, "bias_metric_DPPL", dimensions_map={"BiasStage": "Post-training"}
    )
    assert bias.dimensions == {
        "Endpoint": "churn",
        "MonitoringSchedule": "churn-model-bias",
        "BiasStage": "Post-training",
    }
    assert (bias.namespace, bias.period.to_seconds()) == ("aws/sagemaker/Endpoints/bias-metrics", 21600)
    violations = prod.monitor.metric_violations(MonitoringType.MODEL_QUALITY)
    assert (violations.namespace, violations.metric_name, violations.statistic) == (
        METRICS_NAMESPACE,
        "Violations",
        "Sum",
    )
    assert violations.dimensions == {"MonitoringSchedule": "churn-model-quality"}
    assert violations.period.to_seconds() == 86400
    failed = prod.monitor.metric_failed_executions(MonitoringType.DATA_QUALITY)
    assert (failed.namespace, failed.metric_name) == ("AWS/Events", "TriggeredRules")
    assert prod.serving.resolve(failed.dimensions) == {
        "RuleName": {"Ref": logical_id(prod.monitor.failed_rules[MonitoringType.DATA_QUALITY])}
    }


def test_grant_read_reports_is_limited_to_the_endpoints_reports() -> None:
    stack = cdk.Stack(cdk.App(), "Readers")
    store = VersionedDataStore(stack, "Store")
    endpoint = ModelEndpoint(
        stack,
        "Endpoint",
        endpoint_name="e",
        data_store=store,
        model_package_arn=PACKAGE_ARN,
        data_capture=DataCaptureSettings(),
    )
    monitor = ModelMonitor(
        stack,
        "Monitor",
        endpoint=endpoint,
        data_store=store,
        data_quality=DataQualitySettings(baselines=Baselines.from_prefix("s3://bucket/baseline/")),
    )
    reader = iam.Role(stack, "Reader", assumed_by=iam.AccountRootPrincipal())
    monitor.grant_read_reports(reader)
    template = Template.from_stack(stack)
    (read,) = [s for s in statements(template, reader) if "s3:GetObject*" in actions_of(s)]
    assert json.dumps(read["Resource"]).endswith('"/monitoring/e/*"]]}]')
    assert "s3:PutObject" not in [a for s in statements(template, reader) for a in actions_of(s)]


# ------------------------------------------------------------------ compliance


def test_prod_shaped_monitor_is_guardrail_nag_and_cfn_lint_clean(prod: Prod) -> None:
    # The fixture's synth_app already failed on any guardrail finding (prod, network isolation required).
    assert nag_findings(prod.serving) == []
    # Warnings too (W3005: a DependsOn on a role already referenced with Fn::GetAtt).
    assert cfn_lint_findings(prod.raw, region="eu-west-1") == []


def test_minimal_monitor_is_nag_and_cfn_lint_clean(minimal: Minimal) -> None:
    assert nag_findings(minimal.stack) == []
    assert cfn_lint_findings(minimal.raw) == []
    minimal.template.resource_count_is("AWS::SNS::Topic", 1)  # the passed topic only
    assert minimal.monitor.alarm_topic is minimal.topic
    assert minimal.monitor.encryption_key is minimal.key


# ------------------------------------------------------------------ validation


@dataclass(frozen=True)
class Bad:
    """Endpoints to build invalid monitors on; each monitor raises before it defines anything."""

    stack: cdk.Stack
    store: VersionedDataStore
    captured: ModelEndpoint
    uncaptured: ModelEndpoint
    counter: list[int]

    def monitor(self, *, endpoint: IModelEndpoint | None = None, **kwargs: Any) -> ModelMonitor:
        self.counter.append(1)
        return ModelMonitor(
            self.stack,
            f"Monitor{len(self.counter)}",
            endpoint=endpoint or self.captured,
            data_store=self.store,
            **kwargs,
        )


@pytest.fixture(scope="module")
def bad() -> Bad:
    stack = cdk.Stack(cdk.App(), "Bad", env=ENV)
    store = VersionedDataStore(stack, "Store")
    captured = ModelEndpoint(
        stack,
        "Captured",
        endpoint_name="churn",
        data_store=store,
        model_package_arn=PACKAGE_ARN,
        data_capture=DataCaptureSettings(),
    )
    uncaptured = ModelEndpoint(
        stack,
        "Serverless",
        endpoint_name="churn-dev",
        data_store=store,
        model_package_arn=PACKAGE_ARN,
        kind=EndpointKind.SERVERLESS,
    )
    return Bad(stack, store, captured, uncaptured, [])


DQ = DataQualitySettings(baselines=Baselines.from_prefix("s3://bucket/baseline/"))


def quality(**overrides: Any) -> ModelQualitySettings:
    args: dict[str, Any] = {
        "baselines": Baselines.from_uris(constraints="s3://bucket/mq/constraints.json"),
        "problem_type": MonitorProblemType.BINARY_CLASSIFICATION,
        "ground_truth_prefix": "ground-truth/churn/",
        "inference_attribute": "0",
        **overrides,
    }
    return ModelQualitySettings(**args)


def test_a_monitor_on_an_endpoint_without_data_capture_is_rejected(bad: Bad) -> None:
    with pytest.raises(ConfigurationError) as caught:
        bad.monitor(endpoint=bad.uncaptured, data_quality=DQ)
    assert str(caught.value).startswith(f"[Bad/Monitor{len(bad.counter)}] ")
    assert caught.value.problems == (
        "endpoint Bad/Serverless captures no data, and Model Monitor analyses captured requests; create it with "
        "data_capture=DataCaptureSettings(...) (realtime endpoints only)",
    )


def test_model_quality_without_a_ground_truth_location_is_rejected(bad: Bad) -> None:
    with pytest.raises(ConfigurationError) as caught:
        bad.monitor(model_quality=quality(ground_truth_prefix=None))
    assert caught.value.problems == (
        "model_quality.ground_truth_prefix is required: ModelQuality monitoring compares predictions with "
        "ground-truth labels; give the data store key prefix they are written to, e.g. 'ground-truth/churn/'",
    )


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (
            "cron(*/30 * ? * * *)",
            "data_quality.schedule 'cron(*/30 * ? * * *)' runs more often than hourly; Model Monitor runs at most "
            "once an hour",
        ),
        ("cron(0,30 * ? * * *)", "runs more often than hourly"),
        ("rate(15 minutes)", "data_quality.schedule 'rate(15 minutes)' runs more often than hourly"),
        ("rate(2 hours)", "data_quality.schedule 'rate(2 hours)' is not a schedule Model Monitor accepts: use"),
        ("cron(0 25 ? * * *)", "data_quality.schedule 'cron(0 25 ? * * *)': the hour must be 0-23"),
        ("cron(0 0/48 ? * * *)", "the step must be 1-24 hours"),
        ("NOW", "data_quality.schedule 'NOW' runs once; a monitor needs a recurring schedule"),
    ],
)
def test_a_schedule_more_often_than_hourly_or_unsupported_is_rejected(bad: Bad, expression, expected) -> None:
    settings = DataQualitySettings(baselines=DQ.baselines, schedule=MonitorSchedule(expression))
    with pytest.raises(ConfigurationError) as caught:
        bad.monitor(data_quality=settings)
    assert any(p.startswith(expected) or expected in p for p in caught.value.problems), caught.value.problems


def test_a_metric_of_another_problem_type_is_rejected(bad: Bad) -> None:
    settings = quality(problem_type=MonitorProblemType.REGRESSION, quality_thresholds={"auc": 0.8, "rmse": 3.0})
    with pytest.raises(ConfigurationError) as caught:
        bad.monitor(model_quality=settings)
    assert caught.value.problems == (
        "model_quality.quality_thresholds: 'auc' is a BinaryClassification metric and is not published for "
        "Regression; use one of mae, mse, r2, rmse",
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"inference_attribute": None},
            "model_quality: BinaryClassification needs inference_attribute (the predicted label) or "
            "probability_attribute with probability_threshold",
        ),
        ({"probability_threshold": 0.5}, "model_quality.probability_threshold needs probability_attribute"),
        ({"probability_attribute": "1", "probability_threshold": 1.5}, "must be between 0 and 1 (exclusive)"),
        (
            {"problem_type": MonitorProblemType.REGRESSION, "probability_attribute": "1"},
            "model_quality: probability_attribute and probability_threshold apply to classification, not Regression",
        ),
        ({"start_time_offset": "-PT1H"}, "give both start_time_offset and end_time_offset, or neither"),
        ({"start_time_offset": "PT1H", "end_time_offset": "-PT1H"}, "'PT1H' is not a negative ISO-8601 duration"),
        (
            {"start_time_offset": "-PT1H", "end_time_offset": "-PT2H"},
            "model_quality.start_time_offset (-PT1H) must be earlier than end_time_offset (-PT2H)",
        ),
        ({"ground_truth_prefix": "/ground-truth"}, "'/ground-truth' must be a key prefix in the data store"),
        ({"instance_type": "m5.xlarge"}, "model_quality.instance_type 'm5.xlarge' is not an ML instance type"),
        (
            {"instance_type": "ml.inf2.xlarge"},  # an inference family: no processing (monitoring) job runs on it
            "model_quality.instance_type 'ml.inf2.xlarge': unknown instance family 'inf2'; use one of: c4, c5, c6i,",
        ),
        ({"max_runtime": Duration.hours(2)}, "model_quality.max_runtime (7200 s) must be a whole number of seconds"),
        (
            {"baselines": Baselines.from_uris(constraints="bucket/constraints.json")},
            "model_quality.baselines.constraints_uri 'bucket/constraints.json' is not an S3 object URI",
        ),
    ],
)
def test_invalid_model_quality_settings_name_the_value_and_fix(bad: Bad, overrides, expected) -> None:
    with pytest.raises(ConfigurationError) as caught:
        bad.monitor(model_quality=quality(**overrides))
    assert any(p.startswith(expected) or expected in p for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "nothing to monitor; pass at least one of data_quality, model_quality, model_bias, model_explainability"),
        (
            {"data_quality": DataQualitySettings(baselines=Baselines.from_uris(constraints="s3://bucket/c.json"))},
            "data_quality.baselines.statistics_uri is required for data quality",
        ),
        (
            {"data_quality": DataQualitySettings(baselines=DQ.baselines, drift_thresholds={"total": 1.5})},
            "data_quality.drift_thresholds['total'] (1.5) must be a distance between 0 and 1",
        ),
        (
            {
                "model_explainability": ModelExplainabilitySettings(
                    baselines=Baselines.from_uris(constraints="s3://bucket/c.json"), image_uri="clarify:latest"
                )
            },
            "model_explainability.baselines.analysis_config_uri is required for ModelExplainability",
        ),
        (
            {
                "model_explainability": ModelExplainabilitySettings(
                    baselines=Baselines.from_uris(constraints="s3://b/c.json", analysis_config="s3://b/a.json"),
                    model_name="churn_model",
                )
            },
            "model_explainability.model_name 'churn_model' is not a SageMaker model name: 1 to 63 letters, digits",
        ),
        (
            {
                "model_explainability": ModelExplainabilitySettings(
                    baselines=Baselines.from_uris(constraints="s3://b/c.json", analysis_config="s3://b/a.json"),
                    shadow_instance_type="ml.m5.large.x",
                )
            },
            "model_explainability.shadow_instance_type 'ml.m5.large.x'",
        ),
        (
            {
                "model_explainability": ModelExplainabilitySettings(
                    baselines=Baselines.from_uris(constraints="s3://b/c.json", analysis_config="s3://b/a.json"),
                    shadow_instance_count=0,
                )
            },
            "model_explainability.shadow_instance_count (0) must be a whole number",
        ),
        (
            {
                "model_bias": ModelBiasSettings(
                    baselines=Baselines.from_uris(
                        constraints="s3://bucket/c.json", analysis_config="s3://bucket/a.json"
                    ),
                    image_uri="clarify:latest",
                    ground_truth_prefix="gt/",
                )
            },
            "model_bias.image_uri 'clarify:latest' is not an ECR image URI",
        ),
        ({"data_quality": DQ, "name_prefix": "Churn"}, "name_prefix 'Churn' must be lower-case letters"),
        ({"data_quality": DQ, "name_prefix": "c" * 55}, "(longest here: 68); pass a shorter name_prefix"),
        ({"data_quality": DQ, "missing_execution_periods": 1}, "missing_execution_periods (1) must be a whole number"),
        ({"data_quality": DQ, "dataset": "churn/raw"}, "dataset: dataset name 'churn/raw' contains '/'"),
        (
            {"data_quality": DQ, "security_groups": []},
            "security_groups need an endpoint in a VPC; the endpoint has none, remove security_groups",
        ),
    ],
)
def test_invalid_monitor_arguments_name_the_construct_value_and_fix(bad: Bad, kwargs, expected) -> None:
    with pytest.raises(ConfigurationError) as caught:
        bad.monitor(**kwargs)
    assert any(p.startswith(expected) or expected in p for p in caught.value.problems), caught.value.problems


def test_every_problem_is_reported_at_once(bad: Bad) -> None:
    with pytest.raises(ConfigurationError) as caught:
        bad.monitor(
            endpoint=bad.uncaptured,
            data_quality=DataQualitySettings(baselines=DQ.baselines, schedule=MonitorSchedule("cron(*/5 * ? * * *)")),
            model_quality=quality(ground_truth_prefix=None),
        )
    assert len(caught.value.problems) == 3
    assert str(caught.value).startswith(f"[Bad/Monitor{len(bad.counter)}] 3 problems:\n  - endpoint Bad/Serverless")


def captured_endpoint(stack: cdk.Stack) -> tuple[VersionedDataStore, ModelEndpoint]:
    """A data store and an endpoint that captures into it, in ``stack``."""
    store = VersionedDataStore(stack, "Store", datasets=["churn"])
    # The package is in the endpoint's own region (SageMaker serves packages of its region only).
    region = "eu-west-1" if cdk.Token.is_unresolved(stack.region) else stack.region
    endpoint = ModelEndpoint(
        stack,
        "Endpoint",
        endpoint_name="churn",
        data_store=store,
        model_package_arn=PACKAGE_ARN.replace(":eu-west-1:", f":{region}:"),
        data_capture=DataCaptureSettings(),
    )
    return store, endpoint


def test_tokens_are_not_rejected() -> None:
    stack = cdk.Stack(cdk.App(), "Tokens")
    store, endpoint = captured_endpoint(stack)
    expression = cdk.CfnParameter(stack, "Schedule", type="String").value_as_string
    constraints = cdk.CfnParameter(stack, "Constraints", type="String").value_as_string
    monitor = ModelMonitor(
        stack,
        "Monitor",
        endpoint=endpoint,
        data_store=store,
        data_quality=DataQualitySettings(
            baselines=Baselines.from_uris(constraints=constraints, statistics="s3://bucket/statistics.json"),
            schedule=MonitorSchedule(expression),
        ),
    )
    schedule = Template.from_stack(stack).to_json()["Resources"][
        logical_id(monitor.schedules[MonitoringType.DATA_QUALITY])
    ]
    assert schedule["Properties"]["MonitoringScheduleConfig"]["ScheduleConfig"] == {
        "ScheduleExpression": {"Ref": "Schedule"}
    }


# ------------------------------------------------------------------ schedules and names


@pytest.mark.parametrize(
    ("schedule", "expression", "hours"),
    [
        (MonitorSchedule.hourly(), "cron(0 * ? * * *)", 1),
        (MonitorSchedule.daily(hour=3), "cron(0 3 ? * * *)", 24),
        (MonitorSchedule.every(hours=6), "cron(0 0/6 ? * * *)", 6),
        (MonitorSchedule("cron(0 17/12 ? * * *)"), "cron(0 17/12 ? * * *)", 12),
    ],
)
def test_schedules_model_monitor_accepts(schedule: MonitorSchedule, expression: str, hours: int) -> None:
    assert schedule.expression == expression
    assert schedule.problems("s") == []
    assert schedule.interval is not None
    assert schedule.interval.to_hours() == hours


def test_names_are_fixed_so_other_stacks_can_refer_to_them() -> None:
    assert [schedule_name("churn", t) for t in MonitoringType] == [
        "churn-data-quality",
        "churn-model-quality",
        "churn-model-bias",
        "churn-model-explainability",
    ]
    assert [t.namespace for t in MonitoringType] == [
        "aws/sagemaker/Endpoints/data-metrics",
        "aws/sagemaker/Endpoints/model-metrics",
        "aws/sagemaker/Endpoints/bias-metrics",
        "aws/sagemaker/Endpoints/explainability-metrics",
    ]


def test_clarify_without_an_image_in_a_region_it_is_not_published_in_is_a_configuration_error() -> None:
    # GIVEN a stack in a region with the Model Monitor analyzer but no prebuilt Clarify image
    stack = cdk.Stack(cdk.App(), "Test", env=cdk.Environment(account="123456789012", region="il-central-1"))
    store, endpoint = captured_endpoint(stack)
    # WHEN explainability is requested without an image THEN the error names the region and the fix
    with pytest.raises(
        ConfigurationError, match=r"no clarify image is published in region 'il-central-1'.*pass an image"
    ):
        ModelMonitor(
            stack,
            "Monitor",
            endpoint=endpoint,
            data_store=store,
            model_explainability=ModelExplainabilitySettings(
                baselines=Baselines.from_uris(
                    constraints="s3://bucket/explainability/constraints.json",
                    analysis_config="s3://bucket/explainability/analysis_config.json",
                )
            ),
        )
