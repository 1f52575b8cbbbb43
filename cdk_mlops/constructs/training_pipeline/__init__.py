"""Training pipeline and model registry: a SageMaker Pipeline built at synth time, with lineage to data versions.

Two constructs share everything but the definition: :class:`TrainingPipeline` builds the
default pipeline with the library's standard-library builder, and :class:`SdkTrainingPipeline`
(``TrainingPipeline.from_sdk_pipeline``) deploys a pipeline authored with the SageMaker Python
SDK. Both can create a SageMaker managed MLflow tracking server (:class:`MlflowSettings`).

One module per idea:

- :mod:`~cdk_mlops.constructs.training_pipeline.pipeline`: :class:`TrainingPipeline`, its
  arguments, scripts, network and definition;
- :mod:`~cdk_mlops.constructs.training_pipeline.sdk_pipeline`: :class:`SdkTrainingPipeline` and
  the checks of an SDK-authored definition;
- :mod:`~cdk_mlops.constructs.training_pipeline.resources`: what both define around their
  definition (role, model package group, tracking server, pipeline, notifications, grants and
  metrics);
- :mod:`~cdk_mlops.constructs.training_pipeline.grants`: what the execution role may do;
- :mod:`~cdk_mlops.constructs.training_pipeline.mlflow_settings`: the MLflow tracking server's
  settings, their checks and the action lists of its users.

Every public name is importable from ``cdk_mlops.constructs.training_pipeline``.
"""

from __future__ import annotations

from cdk_mlops.constructs.common import PIPELINE_METRICS_NAMESPACE
from cdk_mlops.constructs.training_pipeline.mlflow_settings import (
    MLFLOW_CLIENT_REQUIREMENTS,
    MLFLOW_LOGGING_ACTIONS,
    MLFLOW_UI_ACTIONS,
    MLFLOW_VPC_ENDPOINTS,
    MlflowServerSize,
    MlflowSettings,
    mlflow_settings_problems,
)
from cdk_mlops.constructs.training_pipeline.pipeline import TrainingPipeline

# The base of both pipeline constructs; the delivery pipelines find trainings by it.
from cdk_mlops.constructs.training_pipeline.resources import _PipelineResources as _PipelineResources
from cdk_mlops.constructs.training_pipeline.sdk_pipeline import SdkTrainingPipeline

__all__ = [
    "MLFLOW_CLIENT_REQUIREMENTS",
    "MLFLOW_LOGGING_ACTIONS",
    "MLFLOW_UI_ACTIONS",
    "MLFLOW_VPC_ENDPOINTS",
    "PIPELINE_METRICS_NAMESPACE",
    "MlflowServerSize",
    "MlflowSettings",
    "SdkTrainingPipeline",
    "TrainingPipeline",
    "mlflow_settings_problems",
]
