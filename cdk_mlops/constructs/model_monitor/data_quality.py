"""Data-quality monitoring: captured requests against the training data's statistics, its settings and job."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_cdk import CfnResource, Token
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from cdk_mlops.constructs.model_monitor.job import JobContext, JobSettings, baseline_constraints
from cdk_mlops.constructs.model_monitor.monitoring_type import MonitoringType

__all__ = ["DataQualitySettings", "define_data_quality_job"]

# A feature name becomes part of its drift alarm's name.
_ALARM_KEY = re.compile(r"^[^/\s](?:[^/]{0,198}[^/\s])?\Z")


@dataclass(frozen=True, kw_only=True)
class DataQualitySettings(JobSettings):
    """Data-quality monitoring: captured requests against the training data's baseline.

    Attributes:
        baselines: ``statistics.json`` and ``constraints.json`` (required).
        schedule: Default: - hourly.
        instance_type: Default: - ``ml.m5.xlarge``.
        instance_count: Default: - 1.
        volume_size_gb: Default: - 20.
        max_runtime: Each execution's time limit, at most the schedule's
            interval. Default: - 1 hour.
        drift_thresholds: Opt-in alarms: feature name → the highest acceptable
            ``feature_baseline_drift_<feature>`` (a distance from 0 to 1).
            Default: - no drift alarm.
        exclude_features_attribute: Index (CSV) or JSON path of captured columns the
            analysis skips, e.g. the inference id and time columns a batch transform with
            ``GenerateInferenceId`` appends. Default: - every column is analysed.
    """

    drift_thresholds: Mapping[str, float] = field(default_factory=dict)
    exclude_features_attribute: str | None = None

    def problems(self, where: str = "data_quality") -> list[str]:
        """Every invalid setting, each with its value and the fix; tokens are not checked."""
        found = self._common_problems(where, MonitoringType.DATA_QUALITY)
        for feature, threshold in self.drift_thresholds.items():
            found += _alarm_key_problems(f"{where}.drift_thresholds", feature)
            if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold < 1:
                found.append(
                    f"{where}.drift_thresholds[{feature!r}] ({threshold!r}) must be a distance between 0 and 1 "
                    "(exclusive), e.g. 0.1"
                )
        exclude = self.exclude_features_attribute
        # SageMaker's ExcludeFeaturesAttribute is at most 100 characters.
        if exclude is not None and not Token.is_unresolved(exclude) and not 1 <= len(exclude) <= 100:
            found.append(f"{where}.exclude_features_attribute {exclude!r} must be 1 to 100 characters")
        return found


def _alarm_key_problems(name: str, key: str) -> list[str]:
    if _ALARM_KEY.match(key):
        return []
    return [f"{name} key {key!r} must be 1-200 characters without '/' and without leading or trailing spaces"]


def define_data_quality_job(scope: Construct, settings: DataQualitySettings, job: JobContext) -> CfnResource:
    """The ``JobDefinition`` under ``scope``: the Model Monitor analyzer against statistics and constraints."""
    baselines = settings.baselines
    return sagemaker.CfnDataQualityJobDefinition(
        scope,
        "JobDefinition",
        data_quality_app_specification=job.app_specification(),
        data_quality_baseline_config={
            **baseline_constraints(baselines),
            "statisticsResource": {"s3Uri": baselines.statistics_uri},
        },
        data_quality_job_input=job.captured_input(excludeFeaturesAttribute=settings.exclude_features_attribute),
        data_quality_job_output_config=job.output_config(),
        **job.properties(settings),
    )
