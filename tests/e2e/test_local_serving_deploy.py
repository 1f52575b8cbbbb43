"""End to end: a realtime endpoint with autoscaling and a four-type monitor, in a VPC, deployed to the local AWS.

One module-scoped deployment of ``tests/e2e/serving_app.py`` (stage ``Serving``, one stack) with
the pinned CDK CLI. Every resource must be provisioned (:func:`check_stack`), and the
Application Auto Scaling and SageMaker APIs must answer with what the constructs asked for:
the scalable target's capacities and resource id, the policy's target, the night schedule, each
monitoring schedule's cron expression and job definition. The destroy test comes last.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cdk_mlops.local.deploy import StackTemplate, bootstrap, check_stack, run_cli, stage_templates
from cdk_mlops.local.server import LocalAws, local_aws, require_loopback
from tests.e2e import serving_app as app
from tests.e2e.conftest import REPO_ROOT, require_cdk_cli

pytestmark = pytest.mark.e2e

_APP = f"{sys.executable} {Path(app.__file__).relative_to(REPO_ROOT)}"
RESOURCE_ID = f"endpoint/{app.ENDPOINT_NAME}/variant/AllTraffic"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
#: The job definition type of each monitoring type, and the API call that describes it.
DEFINITIONS = {
    "DataQuality": ("AWS::SageMaker::DataQualityJobDefinition", "describe_data_quality_job_definition"),
    "ModelQuality": ("AWS::SageMaker::ModelQualityJobDefinition", "describe_model_quality_job_definition"),
    "ModelBias": ("AWS::SageMaker::ModelBiasJobDefinition", "describe_model_bias_job_definition"),
    "ModelExplainability": (
        "AWS::SageMaker::ModelExplainabilityJobDefinition",
        "describe_model_explainability_job_definition",
    ),
}


#: An explainability configuration as the training pipeline registers it: no model (see ml/evaluate.py).
REGISTERED_EXPLAINABILITY = {
    "methods": {"shap": {"baseline": [[0.5, 12.0]], "num_samples": 100, "agg_method": "mean_abs"}},
    "predictor": {"content_type": "text/csv", "accept_type": "text/csv"},
    "headers": ["tenure", "total_charges"],
}


@dataclass
class Serving:
    aws: LocalAws
    stack: StackTemplate
    output: Path
    physical_ids: dict[str, str]
    destroyed: bool = False

    def ids(self, resource_type: str) -> list[str]:
        """Physical ids of the stack's resources of one type."""
        resources = self.stack.template["Resources"]
        return [self.physical_ids[k] for k, r in resources.items() if r["Type"] == resource_type]


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serving]:
    require_cdk_cli()
    output = tmp_path_factory.mktemp("cdk.out")
    with local_aws() as aws:
        require_loopback(aws.endpoint_url)
        account = aws.account_id()
        bootstrap(aws, account=account, directory=REPO_ROOT)
        # The registered explainability configuration the monitor copies at deploy time (as Evaluate writes it).
        bucket, key = app.EXPLAINABILITY_CONFIG.removeprefix("s3://").split("/", 1)
        s3 = aws.client("s3")
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(REGISTERED_EXPLAINABILITY).encode())
        context = ["--context", f"account={account}", "--context", f"region={aws.region}"]
        args = ["deploy", f"{app.STAGE}/*", "--app", _APP, "--require-approval", "never", "--output", str(output)]
        run_cli([*args, *context], aws=aws, directory=REPO_ROOT, label=app.STAGE)
        [stack] = stage_templates(output, app.STAGE)
        resources = aws.client("cloudformation").describe_stack_resources(StackName=stack.name)["StackResources"]
        yield Serving(aws, stack, output, {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources})


@pytest.fixture
def deployed(serving: Serving) -> Serving:
    assert not serving.destroyed, "these tests read the deployed state; they must run before the destroy test"
    return serving


def test_every_resource_is_provisioned_including_the_vpc_and_its_rules(deployed):
    assert check_stack(deployed.aws, deployed.stack) == []
    types = {r["Type"] for r in deployed.stack.template["Resources"].values()}
    assert {"AWS::EC2::VPC", "AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"} <= types


def test_the_explainability_job_reads_a_copy_that_names_the_deployed_model(deployed):
    (model_arn,) = deployed.ids("AWS::SageMaker::Model")  # Ref of a model is its ARN
    model_name = model_arn.split(":model/", 1)[1]
    (copy_uri,) = deployed.ids("Custom::ExplainabilityAnalysisConfig")
    bucket, key = copy_uri.removeprefix("s3://").split("/", 1)
    copied = json.loads(deployed.aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert copied["predictor"]["model_name"] == model_name
    assert copied["methods"] == REGISTERED_EXPLAINABILITY["methods"]
    (definition,) = deployed.ids("AWS::SageMaker::ModelExplainabilityJobDefinition")
    described = deployed.aws.client("sagemaker").describe_model_explainability_job_definition(
        JobDefinitionName=definition.rsplit("/", 1)[-1]
    )
    assert described["ModelExplainabilityAppSpecification"]["ConfigUri"] == copy_uri


def test_the_scalable_target_has_the_realtime_capacities_and_the_variants_resource_id(deployed):
    client = deployed.aws.client("application-autoscaling")
    [target] = client.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert target["ResourceId"] == RESOURCE_ID
    assert target["ScalableDimension"] == DIMENSION
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 5)
    assert target["RoleARN"].endswith(
        "role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
        "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
    )
    # CloudFormation's Ref of a scalable target
    assert deployed.ids("AWS::ApplicationAutoScaling::ScalableTarget") == [f"{RESOURCE_ID}|{DIMENSION}|sagemaker"]


def test_the_policy_tracks_invocations_per_instance_at_the_target_value(deployed):
    client = deployed.aws.client("application-autoscaling")
    [policy] = client.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=RESOURCE_ID)["ScalingPolicies"]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == 750
    assert config["PredefinedMetricSpecification"] == {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}
    assert (config["ScaleInCooldown"], config["ScaleOutCooldown"]) == (600, 120)
    assert deployed.ids("AWS::ApplicationAutoScaling::ScalingPolicy") == [policy["PolicyARN"]]


def test_the_night_schedule_pins_the_capacity_and_the_morning_restores_it(deployed):
    client = deployed.aws.client("application-autoscaling")
    actions = client.describe_scheduled_actions(ServiceNamespace="sagemaker", ResourceId=RESOURCE_ID)
    by_name = {a["ScheduledActionName"]: a for a in actions["ScheduledActions"]}
    assert sorted(by_name) == ["ScaleDown", "ScaleUp"]
    assert by_name["ScaleDown"]["Schedule"] == "cron(0 19 ? * MON-FRI *)"
    assert by_name["ScaleDown"]["ScalableTargetAction"] == {"MinCapacity": 1, "MaxCapacity": 1}
    assert by_name["ScaleUp"]["Schedule"] == "cron(0 7 ? * MON-FRI *)"
    assert by_name["ScaleUp"]["ScalableTargetAction"] == {"MinCapacity": 2, "MaxCapacity": 5}


def test_each_monitoring_schedule_runs_its_own_job_definition_on_its_cron(deployed):
    sagemaker = deployed.aws.client("sagemaker")
    summaries = sagemaker.list_monitoring_schedules(EndpointName=app.ENDPOINT_NAME)["MonitoringScheduleSummaries"]
    assert sorted(s["MonitoringScheduleName"] for s in summaries) == sorted(
        f"churn-{slug}" for slug in ("data-quality", "model-quality", "model-bias", "model-explainability")
    )
    for monitoring_type, (cfn_type, describe) in DEFINITIONS.items():
        [definition_arn] = deployed.ids(cfn_type)
        definition_name = definition_arn.split("/")[1]
        definition = getattr(sagemaker, describe)(JobDefinitionName=definition_name)
        assert definition["JobDefinitionArn"] == definition_arn
        [summary] = [s for s in summaries if s["MonitoringType"] == monitoring_type]
        schedule = sagemaker.describe_monitoring_schedule(MonitoringScheduleName=summary["MonitoringScheduleName"])
        assert schedule["MonitoringScheduleStatus"] == "Scheduled"
        assert schedule["EndpointName"] == app.ENDPOINT_NAME
        config = schedule["MonitoringScheduleConfig"]
        assert config["MonitoringType"] == monitoring_type
        assert config["MonitoringJobDefinitionName"] == definition_name
        assert config["ScheduleConfig"]["ScheduleExpression"] == app.SCHEDULES[monitoring_type].expression
        assert schedule["MonitoringScheduleArn"] in deployed.ids("AWS::SageMaker::MonitoringSchedule")


def test_the_job_definitions_run_in_the_vpc_on_the_endpoints_captured_data(deployed):
    sagemaker = deployed.aws.client("sagemaker")
    [arn] = deployed.ids("AWS::SageMaker::DataQualityJobDefinition")
    definition = sagemaker.describe_data_quality_job_definition(JobDefinitionName=arn.split("/")[1])
    assert definition["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == app.ENDPOINT_NAME
    subnets = deployed.ids("AWS::EC2::Subnet")
    assert sorted(definition["NetworkConfig"]["VpcConfig"]["Subnets"]) == sorted(subnets)


# --- after destroy (keep this last) -----------------------------------------------------------------------


def test_destroy_removes_the_scaling_and_the_monitoring(serving):
    run_cli(
        ["destroy", f"{app.STAGE}/*", "--force", "--app", str(serving.output)],
        aws=serving.aws,
        directory=REPO_ROOT,
        label=app.STAGE,
    )
    serving.destroyed = True
    autoscaling = serving.aws.client("application-autoscaling")
    assert autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    assert autoscaling.describe_scheduled_actions(ServiceNamespace="sagemaker")["ScheduledActions"] == []
    sagemaker = serving.aws.client("sagemaker")
    assert sagemaker.list_monitoring_schedules()["MonitoringScheduleSummaries"] == []
    assert sagemaker.list_data_quality_job_definitions()["JobDefinitionSummaries"] == []
