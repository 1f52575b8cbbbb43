"""Model-quality monitoring: predictions merged with ground-truth labels, its problem types, settings and job."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from aws_cdk import CfnResource
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from cdk_mlops.constructs.data_store_base import IDataStore
from cdk_mlops.constructs.model_monitor.checks import ground_truth_problems, probability_problems, window_problems
from cdk_mlops.constructs.model_monitor.job import JobContext, JobSettings, baseline_constraints, required
from cdk_mlops.constructs.model_monitor.monitoring_type import MonitoringType

__all__ = ["QUALITY_METRICS", "ModelQualitySettings", "MonitorProblemType", "define_model_quality_job"]


class MonitorProblemType(StrEnum):
    """The model's task, which decides the model-quality metrics; SageMaker's ``MonitorProblemType`` values."""

    BINARY_CLASSIFICATION = "BinaryClassification"
    MULTICLASS_CLASSIFICATION = "MulticlassClassification"
    REGRESSION = "Regression"


#: Model-quality metrics published to CloudWatch per problem type, and whether higher is better
#: (the alarm then fires below the threshold; otherwise above it).
QUALITY_METRICS: Final[dict[MonitorProblemType, dict[str, bool]]] = {
    MonitorProblemType.BINARY_CLASSIFICATION: {
        "accuracy": True,
        "precision": True,
        "recall": True,
        "f0_5": True,
        "f1": True,
        "f2": True,
        "auc": True,
        "true_positive_rate": True,
        "true_negative_rate": True,
        "false_positive_rate": False,
        "false_negative_rate": False,
    },
    MonitorProblemType.MULTICLASS_CLASSIFICATION: {
        "accuracy": True,
        "weighted_precision": True,
        "weighted_recall": True,
        "weighted_f0_5": True,
        "weighted_f1": True,
        "weighted_f2": True,
    },
    MonitorProblemType.REGRESSION: {"mae": False, "mse": False, "rmse": False, "r2": True},
}


@dataclass(frozen=True, kw_only=True)
class ModelQualitySettings(JobSettings):
    """Model-quality monitoring: predictions merged with ground-truth labels.

    Ground truth is JSON Lines under ``ground_truth_prefix`` of the data store,
    one record per labelled inference (``groundTruthData`` and
    ``eventMetadata.eventId`` = the capture's ``inferenceId`` or event id),
    in ``<prefix>/yyyy/mm/dd/hh/`` folders as Model Monitor expects.

    Attributes:
        baselines: The model-quality ``constraints.json`` (required).
        problem_type: Decides the metrics (required).
        ground_truth_prefix: Key prefix of the labels in the data store, ending
            in ``/``. Required; a monitor without it is rejected.
        inference_attribute: Index (CSV) or JSON path of the predicted label or
            value in the captured response. Default: - none; required for
            regression and multiclass.
        probability_attribute: Index or JSON path of the probability
            (classification). Default: - none.
        probability_threshold: Probability above which the label is positive
            (binary). Default: - none.
        start_time_offset: Start of the analysed window, relative to the
            execution (e.g. ``-PT2H``), so that labels have time to arrive.
            Default: - SageMaker's window.
        end_time_offset: End of the window (e.g. ``-PT1H``). Default: - SageMaker's window.
        quality_thresholds: Opt-in alarms: metric → threshold. A metric where
            higher is better (``accuracy``, ``auc``, ``r2``, ...) alarms below
            the threshold, one where lower is better (``rmse``,
            ``false_positive_rate``, ...) above it. Default: - no alarm.
        schedule: Default: - hourly.
        instance_type: Default: - ``ml.m5.xlarge``.
        instance_count: Default: - 1.
        volume_size_gb: Default: - 20.
        max_runtime: Default: - 1 hour.
    """

    problem_type: MonitorProblemType
    ground_truth_prefix: str | None = None
    inference_attribute: str | None = None
    probability_attribute: str | None = None
    probability_threshold: float | None = None
    start_time_offset: str | None = None
    end_time_offset: str | None = None
    quality_thresholds: Mapping[str, float] = field(default_factory=dict)

    def problems(self, where: str = "model_quality") -> list[str]:
        """Every invalid setting, each with its value and the fix; tokens are not checked."""
        found = self._common_problems(where, MonitoringType.MODEL_QUALITY)
        found += ground_truth_problems(
            f"{where}.ground_truth_prefix", self.ground_truth_prefix, MonitoringType.MODEL_QUALITY
        )
        found += probability_problems(
            where, probability=self.probability_attribute, threshold=self.probability_threshold
        )
        found += self._attribute_problems(where)
        found += window_problems(where, self.start_time_offset, self.end_time_offset)
        accepted = QUALITY_METRICS[self.problem_type]
        for metric, threshold in self.quality_thresholds.items():
            if metric not in accepted:
                owners = [p.value for p, names in QUALITY_METRICS.items() if metric in names]
                belongs = f" is a {' and '.join(owners)} metric and" if owners else ""
                found.append(
                    f"{where}.quality_thresholds: {metric!r}{belongs} is not published for "
                    f"{self.problem_type.value}; use one of {', '.join(sorted(accepted))}"
                )
            if isinstance(threshold, bool) or not isinstance(threshold, int | float):
                found.append(f"{where}.quality_thresholds[{metric!r}] ({threshold!r}) must be a number")
        return found

    def _attribute_problems(self, where: str) -> list[str]:
        """The attributes the problem type needs to read the prediction from the captured response."""
        problem_type, inference = self.problem_type, self.inference_attribute
        probability, threshold = self.probability_attribute, self.probability_threshold
        found: list[str] = []
        if problem_type is MonitorProblemType.REGRESSION and (probability is not None or threshold is not None):
            found.append(
                f"{where}: probability_attribute and probability_threshold apply to classification, not Regression; "
                "set inference_attribute"
            )
        if (
            problem_type is MonitorProblemType.BINARY_CLASSIFICATION
            and inference is None
            and (probability is None or threshold is None)
        ):
            found.append(
                f"{where}: BinaryClassification needs inference_attribute (the predicted label) or "
                "probability_attribute with probability_threshold (e.g. probability_attribute='0', "
                "probability_threshold=0.5 for a model that returns one probability)"
            )
        if (
            problem_type in (MonitorProblemType.MULTICLASS_CLASSIFICATION, MonitorProblemType.REGRESSION)
            and inference is None
        ):
            found.append(
                f"{where}: {problem_type.value} needs inference_attribute, the index or JSON path of the prediction "
                "in the captured response (e.g. '0' for a CSV response of one value)"
            )
        return found


def define_model_quality_job(
    scope: Construct, settings: ModelQualitySettings, job: JobContext, data_store: IDataStore
) -> CfnResource:
    """The ``JobDefinition`` under ``scope``: predictions merged with the labels under the ground-truth prefix."""
    return sagemaker.CfnModelQualityJobDefinition(
        scope,
        "JobDefinition",
        model_quality_app_specification=job.app_specification(problemType=settings.problem_type.value),
        model_quality_baseline_config=baseline_constraints(settings.baselines),
        model_quality_job_input={
            **job.captured_input(
                inferenceAttribute=settings.inference_attribute,
                probabilityAttribute=settings.probability_attribute,
                probabilityThresholdAttribute=settings.probability_threshold,
                startTimeOffset=settings.start_time_offset,
                endTimeOffset=settings.end_time_offset,
            ),
            "groundTruthS3Input": {"s3Uri": data_store.s3_uri(required(settings.ground_truth_prefix))},
        },
        model_quality_job_output_config=job.output_config(),
        **job.properties(settings),
    )
