"""Bias drift monitoring with SageMaker Clarify: its settings and its job definition."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import CfnResource
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from cdk_mlops.constructs.data_store_base import IDataStore
from cdk_mlops.constructs.model_monitor.checks import (
    ground_truth_problems,
    image_problems,
    probability_problems,
    window_problems,
)
from cdk_mlops.constructs.model_monitor.job import JobContext, JobSettings, baseline_constraints, required
from cdk_mlops.constructs.model_monitor.monitoring_type import MonitoringType

__all__ = ["ModelBiasSettings", "define_model_bias_job"]


@dataclass(frozen=True, kw_only=True)
class ModelBiasSettings(JobSettings):
    """Bias drift monitoring with SageMaker Clarify.

    Attributes:
        baselines: Post-training bias constraints and the Clarify analysis
            configuration (``analysis_config_uri``) (required).
        image_uri: The SageMaker Clarify image. Default: - the region's prebuilt Clarify
            image (``sagemaker-clarify-processing:1.0``, from :mod:`cdk_mlops.image_uris`).
        ground_truth_prefix: Key prefix of the labels in the data store. Required;
            a monitor without it is rejected.
        features_attribute: JSON path of the features in JSON Lines requests.
            Default: - none (CSV).
        inference_attribute: Index or JSON path of the predicted label. Default: - none.
        probability_attribute: Index or JSON path of the probability. Default: - none.
        probability_threshold: Probability above which the label is positive. Default: - none.
        start_time_offset: Default: - SageMaker's window.
        end_time_offset: Default: - SageMaker's window.
        schedule: Default: - hourly.
        instance_type: Default: - ``ml.m5.xlarge``.
        instance_count: Default: - 1.
        volume_size_gb: Default: - 20.
        max_runtime: Default: - 1 hour.
    """

    image_uri: str | None = None
    ground_truth_prefix: str | None = None
    features_attribute: str | None = None
    inference_attribute: str | None = None
    probability_attribute: str | None = None
    probability_threshold: float | None = None
    start_time_offset: str | None = None
    end_time_offset: str | None = None

    def problems(self, where: str = "model_bias") -> list[str]:
        """Every invalid setting, each with its value and the fix; tokens are not checked."""
        found = self._common_problems(where, MonitoringType.MODEL_BIAS)
        found += image_problems(f"{where}.image_uri", self.image_uri)
        found += ground_truth_problems(
            f"{where}.ground_truth_prefix", self.ground_truth_prefix, MonitoringType.MODEL_BIAS
        )
        found += probability_problems(
            where, probability=self.probability_attribute, threshold=self.probability_threshold
        )
        return found + window_problems(where, self.start_time_offset, self.end_time_offset)


def define_model_bias_job(
    scope: Construct, settings: ModelBiasSettings, job: JobContext, data_store: IDataStore
) -> CfnResource:
    """The ``JobDefinition`` under ``scope``: Clarify's bias metrics, with the labels under the ground-truth prefix."""
    baselines = settings.baselines
    return sagemaker.CfnModelBiasJobDefinition(
        scope,
        "JobDefinition",
        model_bias_app_specification=job.app_specification(configUri=baselines.analysis_config_uri),
        model_bias_baseline_config=baseline_constraints(baselines),
        model_bias_job_input={
            **job.captured_input(
                featuresAttribute=settings.features_attribute,
                inferenceAttribute=settings.inference_attribute,
                probabilityAttribute=settings.probability_attribute,
                probabilityThresholdAttribute=settings.probability_threshold,
                startTimeOffset=settings.start_time_offset,
                endTimeOffset=settings.end_time_offset,
            ),
            "groundTruthS3Input": {"s3Uri": data_store.s3_uri(required(settings.ground_truth_prefix))},
        },
        model_bias_job_output_config=job.output_config(),
        **job.properties(settings),
    )
