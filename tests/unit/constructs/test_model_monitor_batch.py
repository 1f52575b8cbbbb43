"""ModelMonitor on a batch transform job's captured data: BatchTransformInput, access, events, errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Annotations, Match, Template
from constructs import Construct

from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.model_monitor import (
    BATCH_SCHEDULE_WARNING,
    Baselines,
    BatchTransformCapture,
    CapturedDatasetFormat,
    DataQualitySettings,
    IBatchTransformCapture,
    ModelBiasSettings,
    ModelExplainabilitySettings,
    ModelMonitor,
    ModelQualitySettings,
    MonitoringType,
    MonitorProblemType,
    MonitorSchedule,
)
from cdk_mlops.errors import ConfigurationError
from tests.quality import actions_of, cfn_lint_findings, logical_id, nag_findings, statements

ENV = cdk.Environment(account="123456789012", region="eu-west-1")
PACKAGE_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-training-models/3"
OTHER_PACKAGE_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-training-models/2"
BASELINE_PREFIX = "s3://cdk-mlops-prod-data/artifacts/churn-training/exec-1/baselines"
DATA_PREFIXES = ["datasets/churn/", "batch-output/churn-nightly/"]
#: A daily batch job ends before 04:00 UTC; its monitor runs then.
DAILY = MonitorSchedule.daily(hour=4)
JOB_DEFINITION_TYPES = {
    MonitoringType.DATA_QUALITY: ("AWS::SageMaker::DataQualityJobDefinition", "DataQualityJobInput"),
    MonitoringType.MODEL_QUALITY: ("AWS::SageMaker::ModelQualityJobDefinition", "ModelQualityJobInput"),
    MonitoringType.MODEL_BIAS: ("AWS::SageMaker::ModelBiasJobDefinition", "ModelBiasJobInput"),
    MonitoringType.MODEL_EXPLAINABILITY: (
        "AWS::SageMaker::ModelExplainabilityJobDefinition",
        "ModelExplainabilityJobInput",
    ),
}


class FakeBatchInference(Construct):
    """A stand-in for a batch inference construct: only the attributes the protocol names."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        store: VersionedDataStore,
        batch_name: str = "churn-nightly",
        capture: bool = True,
        model_package_arn: str = PACKAGE_ARN,
    ) -> None:
        super().__init__(scope, id)
        self.batch_name = batch_name
        self.data_store = store
        self.model_package_arn = model_package_arn
        self.capture_uri = store.s3_uri(f"batch-capture/{batch_name}/") if capture else None


def baselines(kind: str, *, package: str | None = PACKAGE_ARN) -> Baselines:
    config = f"{BASELINE_PREFIX}/{kind}/analysis_config.json" if kind in ("bias", "explainability") else None
    statistics = f"{BASELINE_PREFIX}/{kind}/statistics.json" if kind == "data" else None
    return Baselines(
        constraints_uri=f"{BASELINE_PREFIX}/{kind}/constraints.json",
        statistics_uri=statistics,
        analysis_config_uri=config,
        model_package_arn=package,
    )


def all_four(schedule: MonitorSchedule = DAILY) -> dict[str, Any]:
    return {
        "data_quality": DataQualitySettings(baselines=baselines("data"), schedule=schedule),
        "model_quality": ModelQualitySettings(
            baselines=baselines("quality"),
            problem_type=MonitorProblemType.BINARY_CLASSIFICATION,
            ground_truth_prefix="ground-truth/churn-nightly/",
            probability_attribute="0",
            probability_threshold=0.5,
            start_time_offset="-P2D",
            end_time_offset="-P1D",
            schedule=schedule,
        ),
        "model_bias": ModelBiasSettings(
            baselines=baselines("bias"),
            ground_truth_prefix="ground-truth/churn-nightly/",
            probability_attribute="0",
            start_time_offset="-P2D",
            end_time_offset="-P1D",
            schedule=schedule,
        ),
        "model_explainability": ModelExplainabilitySettings(
            baselines=baselines("explainability"), inference_attribute="0", schedule=schedule
        ),
    }


@dataclass(frozen=True)
class Synth:
    stack: cdk.Stack
    store: VersionedDataStore
    monitor: ModelMonitor
    template: Template
    raw: Mapping[str, Any]


def synth(**kwargs: Any) -> Synth:
    app = cdk.App()
    stack = cdk.Stack(app, "Batch", env=ENV)
    store = VersionedDataStore(stack, "Store", datasets=["churn"])
    if "batch_transform" not in kwargs:
        kwargs["batch_transform"] = FakeBatchInference(stack, "Nightly", store=store)
    kwargs.setdefault("batch_data_prefixes", DATA_PREFIXES)
    for name, value in all_four().items():
        kwargs.setdefault(name, value)
    monitor = ModelMonitor(stack, "Monitor", data_store=store, dataset="churn", **kwargs)
    template = Template.from_stack(stack)
    return Synth(stack, store, monitor, template, template.to_json())


@pytest.fixture(scope="module")
def fake() -> Synth:
    return synth()


@pytest.fixture(scope="module")
def described() -> Synth:
    return synth(
        batch_transform=BatchTransformCapture.from_capture_uri(
            batch_name="scoring", capture_uri="s3://cdk-mlops-prod-data/batch-capture/scoring/"
        ),
        dataset_format=CapturedDatasetFormat.json(line=True),
        name_prefix="scoring",
    )


def resolve_uri(value: Any, store: VersionedDataStore) -> str:
    """``Fn::Join`` of the bucket reference and a key, as a readable ``s3://<bucket ref>/key``."""
    if isinstance(value, str):
        return value
    parts = value["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else f"<{next(iter(p.values()))}>" for p in parts)


# ------------------------------------------------------------------------------ job definitions


@pytest.mark.parametrize("monitoring_type", list(MonitoringType))
def test_each_job_reads_the_batch_capture_and_no_endpoint(fake, monitoring_type):
    resource_type, input_key = JOB_DEFINITION_TYPES[monitoring_type]
    [definition] = fake.template.find_resources(resource_type).values()
    job_input = definition["Properties"][input_key]

    assert "EndpointInput" not in job_input
    assert "EndpointName" not in definition["Properties"]
    batch = job_input["BatchTransformInput"]
    bucket = logical_id(fake.store.bucket)
    assert (
        resolve_uri(batch["DataCapturedDestinationS3Uri"], fake.store)
        == f"s3://<{bucket}>/batch-capture/churn-nightly/"
    )
    assert batch["DatasetFormat"] == {"Csv": {"Header": False}}
    assert batch["LocalPath"].startswith("/opt/ml/processing/input/")


def test_attributes_and_offsets_go_to_the_batch_input(fake):
    quality = next(iter(fake.template.find_resources("AWS::SageMaker::ModelQualityJobDefinition").values()))
    batch = quality["Properties"]["ModelQualityJobInput"]["BatchTransformInput"]
    assert batch["ProbabilityAttribute"] == "0"
    assert batch["ProbabilityThresholdAttribute"] == 0.5
    assert (batch["StartTimeOffset"], batch["EndTimeOffset"]) == ("-P2D", "-P1D")
    ground_truth = quality["Properties"]["ModelQualityJobInput"]["GroundTruthS3Input"]["S3Uri"]
    assert resolve_uri(ground_truth, fake.store).endswith("/ground-truth/churn-nightly/")


def test_reports_go_under_the_batch_name(fake):
    assert set(fake.monitor.output_uris) == set(MonitoringType)
    for monitoring_type, uri in fake.monitor.output_uris.items():
        assert cdk.Token.is_unresolved(uri)
        assert uri.endswith(f"/monitoring/churn-nightly/{monitoring_type.slug}/")
    assert fake.monitor.batch_name == "churn-nightly"
    assert fake.monitor.endpoint_name is None


def test_schedules_name_no_endpoint(fake):
    schedules = fake.template.find_resources("AWS::SageMaker::MonitoringSchedule")
    assert len(schedules) == 4
    for schedule in schedules.values():
        assert "EndpointName" not in schedule["Properties"]
        assert schedule["Properties"]["MonitoringScheduleName"].startswith("churn-nightly-")


def test_jobs_run_isolated_outside_a_vpc_by_default(fake):
    for monitoring_type, (resource_type, _) in JOB_DEFINITION_TYPES.items():
        [definition] = fake.template.find_resources(resource_type).values()
        network = definition["Properties"]["NetworkConfig"]
        assert "VpcConfig" not in network
        # Clarify's explainability jobs call the SageMaker API, so never isolated.
        assert network["EnableNetworkIsolation"] is (monitoring_type is not MonitoringType.MODEL_EXPLAINABILITY)


def test_description_takes_the_dataset_format_and_its_uri(described):
    [definition] = described.template.find_resources("AWS::SageMaker::DataQualityJobDefinition").values()
    batch = definition["Properties"]["DataQualityJobInput"]["BatchTransformInput"]
    assert batch["DataCapturedDestinationS3Uri"] == "s3://cdk-mlops-prod-data/batch-capture/scoring/"
    assert batch["DatasetFormat"] == {"Json": {"Line": True}}


def test_parquet_is_the_cloudformation_boolean():
    assert CapturedDatasetFormat.parquet().to_cfn() == {"parquet": True}
    assert CapturedDatasetFormat.csv(header=True).to_cfn() == {"csv": {"header": True}}


# ------------------------------------------------------------------------------ access


def _s3_resources(template: Template, monitor: ModelMonitor) -> list[str]:
    found: list[str] = []
    for statement in statements(template, monitor.role):
        if any(a.startswith("s3:") for a in actions_of(statement)):
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            found += [json.dumps(r) for r in resources]
    return found


def test_role_reads_the_batch_capture_prefix_not_the_endpoint_capture(fake):
    resources = " ".join(_s3_resources(fake.template, fake.monitor))
    assert "/batch-capture/churn-nightly/*" in resources
    assert "/capture/" not in resources.replace("/batch-capture/", "")


def test_role_reads_what_the_manifests_list_and_ground_truth(fake):
    resources = " ".join(_s3_resources(fake.template, fake.monitor))
    for prefix in [*DATA_PREFIXES, "ground-truth/churn-nightly/"]:
        assert f"/{prefix}*" in resources


def test_role_writes_only_its_reports_prefix(fake):
    for statement in statements(fake.template, fake.monitor.role):
        if any(a.startswith(("s3:PutObject", "s3:DeleteObject", "s3:Abort")) for a in actions_of(statement)):
            assert "/monitoring/churn-nightly/*" in json.dumps(statement["Resource"])


def test_role_publishes_to_the_batch_metric_namespaces(fake):
    [metrics] = [s for s in statements(fake.template, fake.monitor.role) if "cloudwatch:PutMetricData" in actions_of(s)]
    assert metrics["Condition"] == {"StringLike": {"cloudwatch:namespace": ["aws/sagemaker/ModelMonitoring/*"]}}


def test_description_capture_prefix_is_read(described):
    resources = " ".join(_s3_resources(described.template, described.monitor))
    assert "/batch-capture/scoring/*" in resources


# ------------------------------------------------------------------------------ events, alarms, metrics


def test_violation_event_names_the_batch_job(fake):
    rule = fake.monitor.completed_rules[MonitoringType.DATA_QUALITY]
    [target] = fake.raw["Resources"][logical_id(rule)]["Properties"]["Targets"]
    text = json.dumps(target["InputTransformer"])
    assert '\\"batchName\\":\\"churn-nightly\\"' in text
    assert "endpointName" not in text
    assert '\\"monitoringType\\":\\"DataQuality\\"' in text
    assert '\\"dataset\\":\\"churn\\"' in text


def test_violation_and_execution_alarms_per_type(fake):
    assert set(fake.monitor.violation_alarms) == set(MonitoringType)
    assert set(fake.monitor.execution_alarms) == set(MonitoringType)


def test_metrics_use_the_batch_namespace_without_endpoint(fake):
    metric = fake.monitor.metric_feature_drift("age")
    assert metric.namespace == "aws/sagemaker/ModelMonitoring/data-metrics"
    assert metric.dimensions == {"MonitoringSchedule": "churn-nightly-data-quality"}


def test_no_dashboard_is_created(fake):
    fake.template.resource_count_is("AWS::CloudWatch::Dashboard", 0)


def test_hourly_schedule_on_batch_data_warns():
    result = synth(
        model_quality=None,
        model_bias=None,
        model_explainability=None,
        data_quality=DataQualitySettings(baselines=baselines("data")),
    )
    Annotations.from_stack(result.stack).has_warning(
        "/Batch/Monitor", Match.string_like_regexp(f"Job inputs had no data.*{BATCH_SCHEDULE_WARNING}")
    )


# ------------------------------------------------------------------------------ network


def test_vpc_jobs_get_a_group_without_ingress():
    app = cdk.App()
    stack = cdk.Stack(app, "Net", env=ENV)
    store = VersionedDataStore(stack, "Store", datasets=["churn"])
    vpc = ec2.Vpc(
        stack,
        "Vpc",
        max_azs=2,
        nat_gateways=0,
        subnet_configuration=[ec2.SubnetConfiguration(name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)],
    )
    monitor = ModelMonitor(
        stack,
        "Monitor",
        batch_transform=FakeBatchInference(stack, "Nightly", store=store),
        data_store=store,
        batch_data_prefixes=DATA_PREFIXES,
        vpc=vpc,
        data_quality=all_four()["data_quality"],
    )
    template = Template.from_stack(stack)
    [definition] = template.find_resources("AWS::SageMaker::DataQualityJobDefinition").values()
    vpc_config = definition["Properties"]["NetworkConfig"]["VpcConfig"]
    assert len(vpc_config["Subnets"]) == 2
    assert vpc_config["SecurityGroupIds"] == [{"Fn::GetAtt": [logical_id(monitor.job_security_groups[0]), "GroupId"]}]
    group = template.to_json()["Resources"][logical_id(monitor.job_security_groups[0])]["Properties"]
    assert "SecurityGroupIngress" not in group
    # The test's own VPC has no flow logs (AwsSolutions-VPC7); the monitor adds no finding.
    assert [f for f in nag_findings(stack) if "/Monitor/" in f] == []


# ------------------------------------------------------------------------------ compliance


def test_is_cdk_nag_clean(fake, described):
    assert nag_findings(fake.stack) == []
    assert nag_findings(described.stack) == []


def test_is_cfn_lint_clean(fake, described):
    assert cfn_lint_findings(fake.raw, region="eu-west-1") == []
    assert cfn_lint_findings(described.raw, region="eu-west-1") == []


# ------------------------------------------------------------------------------ errors


def test_the_fake_satisfies_the_protocol():
    stack = cdk.Stack(cdk.App(), "P")
    store = VersionedDataStore(stack, "Store", datasets=["churn"])
    assert isinstance(FakeBatchInference(stack, "B", store=store), IBatchTransformCapture)


def test_both_sources_are_rejected():
    app = cdk.App()
    stack = cdk.Stack(app, "Both", env=ENV)
    store = VersionedDataStore(stack, "Store", datasets=["churn"])
    from cdk_mlops.constructs.model_endpoint import ModelEndpoint

    endpoint = ModelEndpoint.from_endpoint_name(stack, "Endpoint", endpoint_name="churn", data_store=store)
    with pytest.raises(ConfigurationError, match=r"Both/Monitor.*pass endpoint= or batch_transform=, not both"):
        ModelMonitor(
            stack,
            "Monitor",
            endpoint=endpoint,
            batch_transform=FakeBatchInference(stack, "B", store=store),
            data_store=store,
            data_quality=all_four()["data_quality"],
        )


def test_neither_source_is_rejected():
    stack = cdk.Stack(cdk.App(), "Neither", env=ENV)
    store = VersionedDataStore(stack, "Store", datasets=["churn"])
    with pytest.raises(ConfigurationError, match=r"Neither/Monitor.*pass endpoint= .* or batch_transform="):
        ModelMonitor(stack, "Monitor", data_store=store, data_quality=all_four()["data_quality"])


def test_batch_only_arguments_are_rejected_with_an_endpoint():
    stack = cdk.Stack(cdk.App(), "EndpointOnly", env=ENV)
    store = VersionedDataStore(stack, "Store", datasets=["churn"])
    from cdk_mlops.constructs.model_endpoint import ModelEndpoint

    endpoint = ModelEndpoint.from_endpoint_name(stack, "Endpoint", endpoint_name="churn", data_store=store)
    with pytest.raises(ConfigurationError, match=r"dataset_format, batch_data_prefixes apply to batch_transform only"):
        ModelMonitor(
            stack,
            "Monitor",
            endpoint=endpoint,
            data_store=store,
            data_quality=all_four()["data_quality"],
            dataset_format=CapturedDatasetFormat.csv(),
            batch_data_prefixes=DATA_PREFIXES,
        )


def test_a_batch_job_without_capture_is_rejected():
    app = cdk.App()
    stack = cdk.Stack(app, "NoCapture", env=ENV)
    store = VersionedDataStore(stack, "Store", datasets=["churn"])
    batch = FakeBatchInference(stack, "Nightly", store=store, capture=False)
    with pytest.raises(ConfigurationError, match=r"batch job NoCapture/Nightly captures no data.*DataCaptureConfig"):
        ModelMonitor(
            stack,
            "Monitor",
            batch_transform=batch,
            data_store=store,
            batch_data_prefixes=DATA_PREFIXES,
            data_quality=all_four()["data_quality"],
        )


def test_a_description_without_capture_is_rejected():
    with pytest.raises(ConfigurationError, match=r"batch job 'scoring' captures no data"):
        synth(batch_transform=BatchTransformCapture.from_capture_uri(batch_name="scoring", capture_uri=None))


def test_baselines_of_another_package_are_rejected():
    stale = replace(all_four()["data_quality"], baselines=baselines("data", package=OTHER_PACKAGE_ARN))
    with pytest.raises(
        ConfigurationError, match=r"DataQuality baselines come from .*/2, but batch job .*Nightly runs .*/3"
    ):
        synth(data_quality=stale)


def test_a_description_checks_baselines_against_its_package():
    source = BatchTransformCapture.from_capture_uri(
        batch_name="scoring", capture_uri="s3://b-1/batch-capture/scoring/", model_package_arn=OTHER_PACKAGE_ARN
    )
    with pytest.raises(ConfigurationError, match=r"baselines come from .*/3, but batch job 'scoring' runs .*/2"):
        synth(batch_transform=source)


def test_the_data_prefixes_are_required():
    with pytest.raises(ConfigurationError, match=r"batch_data_prefixes is required with batch_transform"):
        synth(batch_data_prefixes=None)


def test_model_quality_on_batch_needs_offsets():
    quality = replace(all_four()["model_quality"], start_time_offset=None, end_time_offset=None)
    with pytest.raises(ConfigurationError, match=r"model_quality: on batch data give start_time_offset"):
        synth(model_quality=quality)


def test_a_window_shorter_than_the_interval_is_rejected():
    bias = replace(all_four()["model_bias"], start_time_offset="-PT30H", end_time_offset="-PT24H")
    with pytest.raises(ConfigurationError, match=r"model_bias: the window -PT30H to -PT24H \(6 h\) is shorter"):
        synth(model_bias=bias)


def test_security_groups_need_a_vpc():
    stack = cdk.Stack(cdk.App(), "Groups", env=ENV)
    store = VersionedDataStore(stack, "Store", datasets=["churn"])
    vpc = ec2.Vpc(stack, "Vpc", max_azs=1, nat_gateways=0)
    group = ec2.SecurityGroup(stack, "Group", vpc=vpc)
    with pytest.raises(ConfigurationError, match=r"security_groups need vpc="):
        ModelMonitor(
            stack,
            "Monitor",
            batch_transform=FakeBatchInference(stack, "B", store=store),
            data_store=store,
            batch_data_prefixes=DATA_PREFIXES,
            security_groups=[group],
            data_quality=all_four()["data_quality"],
        )


def test_a_capture_uri_that_is_no_prefix_is_rejected():
    source = BatchTransformCapture.from_capture_uri(batch_name="scoring", capture_uri="s3://b-1/batch-capture/scoring")
    with pytest.raises(
        ConfigurationError, match=r"capture_uri 's3://b-1/batch-capture/scoring' must be .* ending in '/'"
    ):
        synth(batch_transform=source)


def test_something_that_is_no_batch_job_is_rejected_with_the_fix():
    with pytest.raises(ConfigurationError, match=r"batch_transform must be .*BatchTransformCapture.from_capture_uri"):
        synth(batch_transform="s3://b-1/batch-capture/scoring/")
