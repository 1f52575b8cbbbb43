"""A CDK app with one stage ``Serving`` whose one stack holds every serving construct with every option.

A realtime :class:`~cdk_mlops.ModelEndpoint` with autoscaling (target tracking and a night
schedule), a canary with rollback alarms, latency and 5xx alarms and data capture, in a private
network (:class:`~cdk_mlops.PrivateNetwork`); a :class:`~cdk_mlops.ModelMonitor` with all four
monitoring types; the data store they use. ``tests/e2e/test_local_serving_deploy.py`` deploys it
to the embedded local AWS; :func:`build_app` also serves other checks that synthesize it.

The account and region come from the context (``-c account=... -c region=...``), so that the
template names the local AWS's account; without them the stack is environment-agnostic.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import Duration

from cdk_mlops import (
    DataCaptureSettings,
    EndpointKind,
    GuardrailSettings,
    LatencyThreshold,
    ModelEndpoint,
    PrivateNetwork,
    RealtimeSettings,
    RolloutSettings,
    ScaleDownSchedule,
    TrafficShift,
    VersionedDataStore,
    apply_compliance,
    apply_guardrails,
    synth_app,
)
from cdk_mlops.constructs.model_endpoint import ErrorCountThreshold
from cdk_mlops.constructs.model_monitor import (
    Baselines,
    DataQualitySettings,
    ModelBiasSettings,
    ModelExplainabilitySettings,
    ModelMonitor,
    ModelQualitySettings,
    MonitoringType,
    MonitorProblemType,
    MonitorSchedule,
)

STAGE = "Serving"
STACK = "Models"
ENDPOINT_NAME = "churn"
#: The realtime settings: what the scalable target and its policy must carry after a deploy.
REALTIME = RealtimeSettings(
    instance_type="ml.c5.xlarge",
    initial_instance_count=2,
    min_capacity=2,
    max_capacity=5,
    target_invocations_per_instance=750,
    scale_in_cooldown=Duration.minutes(10),
    scale_out_cooldown=Duration.minutes(2),
)
#: Capacity while scaled down at night.
NIGHT_CAPACITY = 1
#: Each monitoring type's schedule.
SCHEDULES = {
    "DataQuality": MonitorSchedule.hourly(),
    "ModelQuality": MonitorSchedule.daily(hour=3),
    "ModelBias": MonitorSchedule.every(hours=6),
    "ModelExplainability": MonitorSchedule.every(hours=12, starting_hour=1),
}
_BASELINES = "s3://example-baselines/churn"
#: The package's explainability configuration, which the monitor reads at deploy time.
EXPLAINABILITY_CONFIG = f"{_BASELINES}/explainability/analysis_config.json"
_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"
_PACKAGE = "arn:aws:sagemaker:{region}:{account}:model-package/churn-training-models/3"


def _package(arn: str) -> dict[str, Any]:
    """A DescribeModelPackage answer with every baseline the four monitors read."""

    def source(key: str) -> dict[str, str]:
        return {"ContentType": "application/json", "S3Uri": f"{_BASELINES}/{key}"}

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


class ServingStack(cdk.Stack):
    """The data store, a private network, the realtime endpoint with autoscaling, and a four-type monitor."""

    def __init__(self, scope: cdk.Stage, id: str, *, package_arn: str, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        self.store = VersionedDataStore(self, "Data", datasets=["churn"], removal_policy=cdk.RemovalPolicy.DESTROY)
        self.network = PrivateNetwork(self, "Network", removal_policy=cdk.RemovalPolicy.DESTROY)
        self.endpoint = ModelEndpoint(
            self,
            "Endpoint",
            endpoint_name=ENDPOINT_NAME,
            data_store=self.store,
            model_package_arn=package_arn,
            image_uri=_IMAGE,
            kind=EndpointKind.REALTIME,
            realtime=REALTIME,
            scale_down=ScaleDownSchedule(capacity=NIGHT_CAPACITY),
            data_capture=DataCaptureSettings(sampling_percentage=100),
            rollout=RolloutSettings(traffic_shift=TrafficShift.CANARY),
            require_rollback_alarms=True,
            add_latency_alarm={"Warning": LatencyThreshold(max_latency=Duration.millis(150))},
            add_5xx_alarm={"Errors": ErrorCountThreshold(max_error_count=5)},
            vpc=self.network.vpc,
            security_groups=self.network.security_groups,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        package = _package(package_arn)
        self.monitor = ModelMonitor(
            self,
            "Monitor",
            endpoint=self.endpoint,
            data_store=self.store,
            dataset="churn",
            data_quality=DataQualitySettings(
                baselines=Baselines.from_model_package(package), schedule=SCHEDULES["DataQuality"]
            ),
            model_quality=ModelQualitySettings(
                baselines=Baselines.from_model_package(package, MonitoringType.MODEL_QUALITY),
                problem_type=MonitorProblemType.BINARY_CLASSIFICATION,
                ground_truth_prefix="ground-truth/churn/",
                probability_attribute="0",
                probability_threshold=0.5,
                quality_thresholds={"auc": 0.8},
                schedule=SCHEDULES["ModelQuality"],
            ),
            model_bias=ModelBiasSettings(
                baselines=Baselines.from_model_package(package, MonitoringType.MODEL_BIAS),
                ground_truth_prefix="ground-truth/churn/",
                probability_attribute="0",
                probability_threshold=0.5,
                schedule=SCHEDULES["ModelBias"],
            ),
            model_explainability=ModelExplainabilitySettings(
                baselines=Baselines.from_model_package(package, MonitoringType.MODEL_EXPLAINABILITY),
                probability_attribute="0",
                schedule=SCHEDULES["ModelExplainability"],
            ),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )


def build_app(context: dict[str, Any] | None = None) -> cdk.App:
    """The app: stage ``Serving``, stack ``Models``, in the context's ``account`` and ``region`` when given."""
    app = cdk.App(context=context)
    account = app.node.try_get_context("account")
    region = app.node.try_get_context("region")
    env = cdk.Environment(account=account, region=region) if account and region else None
    stage = cdk.Stage(app, STAGE, env=env)
    package_arn = _PACKAGE.format(region=region or "eu-west-1", account=account or "123456789012")
    ServingStack(stage, STACK, package_arn=package_arn)
    for key, value in {"project": "churn", "environment": "dev", "owner": "data-science"}.items():
        cdk.Tags.of(stage).add(key, value)
    apply_guardrails(stage, GuardrailSettings())
    apply_compliance(app)
    return app


if __name__ == "__main__":
    synth_app(build_app())
