"""MonitoringType: the four things Model Monitor checks, with the names and metric namespaces they use."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

__all__ = ["MonitoringType"]


class MonitoringType(StrEnum):
    """What a monitoring schedule checks; the values are SageMaker's ``MonitoringType``."""

    DATA_QUALITY = "DataQuality"
    """Captured requests against the training data's statistics and constraints."""
    MODEL_QUALITY = "ModelQuality"
    """Predictions against ground-truth labels (accuracy, AUC, RMSE, ...)."""
    MODEL_BIAS = "ModelBias"
    """Post-training bias metrics (SageMaker Clarify) against a bias baseline."""
    MODEL_EXPLAINABILITY = "ModelExplainability"
    """Feature attributions (SageMaker Clarify, SHAP) against an explainability baseline."""

    @property
    def slug(self) -> str:
        """The kebab-case form used in names and S3 prefixes, e.g. ``data-quality``."""
        return re.sub(r"(?<!^)(?=[A-Z])", "-", self.value).lower()

    @property
    def namespace(self) -> str:
        """The CloudWatch namespace Model Monitor publishes this type's metrics to (real-time endpoints)."""
        return _NAMESPACES[self]

    @property
    def batch_namespace(self) -> str:
        """The CloudWatch namespace of this type's metrics on batch transform data.

        AWS documents ``aws/sagemaker/ModelMonitoring/data-metrics`` (dimension
        ``MonitoringSchedule`` only) for batch jobs; the other types follow the same pattern.
        """
        return _NAMESPACES[self].replace("/Endpoints/", "/ModelMonitoring/")


_NAMESPACES: Final = {
    MonitoringType.DATA_QUALITY: "aws/sagemaker/Endpoints/data-metrics",
    MonitoringType.MODEL_QUALITY: "aws/sagemaker/Endpoints/model-metrics",
    MonitoringType.MODEL_BIAS: "aws/sagemaker/Endpoints/bias-metrics",
    MonitoringType.MODEL_EXPLAINABILITY: "aws/sagemaker/Endpoints/explainability-metrics",
}
