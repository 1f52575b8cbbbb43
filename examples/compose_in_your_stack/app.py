#!/usr/bin/env python3
"""Compose cdk-mlops constructs in your own stack, with non-default settings.

Only the public API (``from cdk_mlops import ...``) is used. Synthesize it with
``npx cdk synth`` from this folder (its cdk.json points here), or run
``python app.py``; cdk-nag and the guardrails check it either way.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_scheduler as scheduler

from cdk_mlops import (
    DataCaptureSettings,
    EndpointKind,
    GuardrailSettings,
    LatencyThreshold,
    ModelEndpoint,
    ObjectLockSettings,
    ProblemType,
    RealtimeSettings,
    RetrainMode,
    RetrainPolicy,
    RetrainTrigger,
    RolloutSettings,
    TrafficShift,
    TrainingPipeline,
    TrainingSettings,
    VersionedDataStore,
    apply_compliance,
    apply_guardrails,
    synth_app,
)

#: The approved model this team serves (from its registry; a delivery pipeline records it).
MODEL_PACKAGE_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-training-models/3"


class ChurnMlopsStack(cdk.Stack):
    """One team's churn model: immutable training data, a stricter gate, commit-marker retraining, a canary."""

    def __init__(self, scope: cdk.Stage, id: str, **kwargs: object) -> None:
        super().__init__(scope, id, **kwargs)  # type: ignore[arg-type]
        # Every data version stays readable (no expiry) and cannot be changed for 30 days.
        self.store = VersionedDataStore(
            self,
            "Data",
            datasets=["churn"],
            noncurrent_version_expiration=None,
            object_lock=ObjectLockSettings(default_retention_days=30),
        )
        self.training = TrainingPipeline(
            self,
            "Training",
            data_store=self.store,
            dataset="churn",
            pipeline_name="churn-training",
            settings=TrainingSettings(
                problem_type=ProblemType.BINARY_CLASSIFICATION,
                metric_name="auc",
                metric_threshold=0.8,
                champion_margin=0.005,
                training_instance_type="ml.m5.2xlarge",
                use_spot_instances=True,
                max_wait_seconds=8 * 3600,
                checkpoint_s3_uri=self.store.s3_uri("artifacts/churn-training/checkpoints/"),
                hyperparameters={"max_depth": "6", "num_round": "300"},
            ),
        )
        self.retrain = RetrainTrigger(
            self,
            "Retrain",
            data_store=self.store,
            datasets=["churn"],
            pipeline_name=self.training.pipeline_name,
            policy=RetrainPolicy(
                mode=RetrainMode.COMMIT_MARKER,
                marker_name="_SUCCESS",
                key_suffixes=(".csv", "_SUCCESS"),
                cooldown=cdk.Duration.hours(6),
                max_runs_per_day=2,
            ),
            schedule=scheduler.ScheduleExpression.expression("cron(0 4 ? * SUN *)"),
            alarm_topic=self.training.topic,
        )
        # Realtime, linear traffic shifting with rollback, every request captured for monitoring.
        self.endpoint = ModelEndpoint(
            self,
            "Endpoint",
            endpoint_name="churn",
            data_store=self.store,
            model_package_arn=MODEL_PACKAGE_ARN,
            image_uri="123456789012.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1",
            kind=EndpointKind.REALTIME,
            realtime=RealtimeSettings(
                instance_type="ml.c5.xlarge", initial_instance_count=2, min_capacity=2, max_capacity=6
            ),
            data_capture=DataCaptureSettings(sampling_percentage=100),
            rollout=RolloutSettings(traffic_shift=TrafficShift.LINEAR, linear_step_percent=25),
            require_rollback_alarms=True,
            add_latency_alarm={"Warning": LatencyThreshold(max_latency=cdk.Duration.millis(150))},
            alarm_topic=self.training.topic,
        )


def build_app() -> cdk.App:
    """The example app: one stage, tagged, with cdk-nag and the guardrails applied."""
    app = cdk.App()
    stage = cdk.Stage(app, "Team")
    ChurnMlopsStack(stage, "Churn")
    for key, value in {"project": "churn", "environment": "dev", "owner": "data-science"}.items():
        cdk.Tags.of(stage).add(key, value)
    apply_guardrails(stage, GuardrailSettings())
    apply_compliance(app)
    return app


if __name__ == "__main__":
    synth_app(build_app())
