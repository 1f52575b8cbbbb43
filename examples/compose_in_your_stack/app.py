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
    GuardrailSettings,
    ObjectLockSettings,
    ProblemType,
    RetrainMode,
    RetrainPolicy,
    RetrainTrigger,
    TrainingPipeline,
    TrainingSettings,
    VersionedDataStore,
    apply_compliance,
    apply_guardrails,
    synth_app,
)


class ChurnMlopsStack(cdk.Stack):
    """One team's churn model: immutable training data, a stricter gate, retraining on commit markers."""

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
