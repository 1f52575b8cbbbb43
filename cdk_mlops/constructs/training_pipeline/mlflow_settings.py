"""The MLflow tracking server of a training pipeline: its settings, their checks, and what its users need.

The actions that logging and opening the UI take, the pinned MLflow client the ``Track`` step
installs and the VPC endpoints it needs are constants here, so that the pipelines' grants, the
definition and the documentation name the same lists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from aws_cdk import Token
from aws_cdk import aws_ec2 as ec2

from cdk_mlops import pipeline_definition as pd

#: What a job needs on a SageMaker managed MLflow tracking server to log runs with the MLflow
#: client and the ``sagemaker-mlflow`` plugin: find or create its experiment, create, find
#: (a retried ``Track`` step logs into its run again), read and end runs, log parameters,
#: metrics, tags, datasets (inputs), models and logged-model outputs.
#: No UI access, no deletes, no registered models (the pipeline's gate owns registration).
MLFLOW_LOGGING_ACTIONS: Final = (
    "sagemaker-mlflow:GetExperiment",
    "sagemaker-mlflow:GetExperimentByName",
    "sagemaker-mlflow:CreateExperiment",
    "sagemaker-mlflow:CreateRun",
    "sagemaker-mlflow:GetRun",
    "sagemaker-mlflow:SearchRuns",
    "sagemaker-mlflow:UpdateRun",
    "sagemaker-mlflow:LogParam",
    "sagemaker-mlflow:LogMetric",
    "sagemaker-mlflow:LogBatch",
    "sagemaker-mlflow:SetTag",
    "sagemaker-mlflow:LogInputs",
    "sagemaker-mlflow:LogOutputs",
    "sagemaker-mlflow:LogModel",
    "sagemaker-mlflow:LogLoggedModelParams",
    "sagemaker-mlflow:SetLoggedModelTags",
    "sagemaker-mlflow:FinalizeLoggedModel",
)
#: What a person needs to open the tracking server's MLflow UI (a presigned URL, then the UI).
MLFLOW_UI_ACTIONS: Final = ("sagemaker:CreatePresignedMlflowTrackingServerUrl", "sagemaker-mlflow:AccessUI")
#: The MLflow client the ``Track`` step installs when its image lacks one. The step runs in the
#: scikit-learn 1.2-1 image, whose Python is 3.9: mlflow 2.16.2 supports Python 3.8+ (3.2 and
#: later need 3.10) and matches the managed servers' 2.16 release; an older client logging to
#: a newer (3.x) server is the direction MLflow keeps compatible. sagemaker-mlflow 0.1.x is the
#: plugin line built for mlflow 2.x (0.3 and later replace the S3 artifact store with presigned
#: URLs and load mlflow 3 modules); 0.1.1 adds the GovCloud partitions to 0.1.0. It depends on
#: the full ``mlflow`` package, so that is what is pinned (not ``mlflow-skinny``).
MLFLOW_CLIENT_REQUIREMENTS: Final = ("mlflow==2.16.2", "sagemaker-mlflow==0.1.1")
#: The VPC endpoints the MLflow ``Track`` step needs in subnets without a route to the internet,
#: by endpoint service name (after ``com.amazonaws.<region>.``, or ``aws.sagemaker.<region>.`` for
#: MLflow): the SageMaker API (``DescribeTrainingJob``), SageMaker MLflow (the tracking server's
#: REST API; ``InterfaceVpcEndpointAwsService.SAGEMAKER_EXPERIMENTS``) and S3 (the artifact store,
#: a gateway endpoint). The endpoints every job needs (ECR, CloudWatch Logs, S3) are not repeated
#: here; a private package mirror (``MlflowSettings.package_index_url``) must be reachable too.
MLFLOW_VPC_ENDPOINTS: Final[Mapping[str, ec2.IInterfaceVpcEndpointService | ec2.IGatewayVpcEndpointService]] = (
    MappingProxyType(
        {
            "sagemaker.api": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
            "experiments": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_EXPERIMENTS,
            "s3": ec2.GatewayVpcEndpointAwsService.S3,
        }
    )
)

_TRACKING_SERVER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}\Z")
_MAINTENANCE_WINDOW = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun):([01]\d|2[0-3]):([0-5]\d)\Z")
_MLFLOW_VERSION = re.compile(r"^\d+(\.\d+)+\Z")
_ECR_IMAGE = re.compile(r"^([0-9]{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^:@\s]+)")


class MlflowServerSize(StrEnum):
    """Size of a SageMaker managed MLflow tracking server (about 25, 50 and 100 users)."""

    SMALL = "Small"
    MEDIUM = "Medium"
    LARGE = "Large"


@dataclass(frozen=True, kw_only=True)
class MlflowSettings:
    """A SageMaker managed MLflow tracking server for a training pipeline.

    Its artifact store is the data store (``s3://<bucket>/artifacts/mlflow/<server name>/``),
    its role may only read and write that prefix (and use the store's key). Automatic model
    registration stays off: the pipeline's gate decides what enters the model registry.

    With :class:`TrainingPipeline`, a ``Track`` step records every execution as one MLflow run
    (hyperparameters, training and test metrics, lineage tags, ``evaluation.json``). It runs in
    the scikit-learn image and installs ``client_requirements`` with pip, so it needs outbound
    HTTPS to PyPI (or ``package_index_url``) as well as to the SageMaker API, the tracking
    server and S3. With ``logging_image_uri`` nothing is installed and no package index is needed.

    In a VPC (``TrainingPipeline(vpc=...)``) the step reaches the SageMaker API, the tracking
    server and S3 through VPC endpoints: ``com.amazonaws.<region>.sagemaker.api``,
    ``aws.sagemaker.<region>.experiments`` (SageMaker MLflow) and the S3 gateway endpoint, the
    services of :data:`MLFLOW_VPC_ENDPOINTS`. PyPI has no VPC endpoint, so the pipeline needs
    ``logging_image_uri`` or ``package_index_url`` there (synth fails without either). A
    :class:`SdkTrainingPipeline` gets no ``Track`` step: its own steps log, with the ARN it
    substitutes, and need the same endpoints.

    Attributes:
        size: Default: - ``Small``.
        tracking_server_name: Default: - ``<pipeline_name>-mlflow``.
        mlflow_version: Default: - the version SageMaker chooses when the server is created.
        weekly_maintenance_window_start: ``Day:HH:MM`` in UTC, e.g. ``Sun:03:00``.
            Default: - chosen by SageMaker.
        experiment_name: The MLflow experiment of the pipeline's executions.
            Default: - the pipeline's name.
        client_requirements: Pinned packages (``name==version`` or ``name>=low,<high``) the
            ``Track`` step installs with pip when its image lacks the MLflow client; ignored with
            ``logging_image_uri``. Default: - :data:`MLFLOW_CLIENT_REQUIREMENTS` (mlflow 2.16.2
            and sagemaker-mlflow 0.1.1, for the image's Python 3.9).
        logging_image_uri: An ECR image with Python, boto3, ``mlflow`` and ``sagemaker-mlflow``
            installed, for the ``Track`` step; nothing is installed at run time, so the step
            needs no access to PyPI. The execution role may pull it.
            Default: - the scikit-learn image, with ``client_requirements`` installed per run.
        package_index_url: The ``https://`` index of a private package mirror (pip's
            ``--index-url``, e.g. ``https://pypi.example.internal/simple``) that the ``Track``
            step installs ``client_requirements`` from, for subnets without a route to PyPI. It
            is written into the pipeline definition, so it holds no credentials; ignored with
            ``logging_image_uri``. Default: - PyPI.
    """

    size: MlflowServerSize = MlflowServerSize.SMALL
    tracking_server_name: str | None = None
    mlflow_version: str | None = None
    weekly_maintenance_window_start: str | None = None
    experiment_name: str | None = None
    client_requirements: tuple[str, ...] = MLFLOW_CLIENT_REQUIREMENTS
    logging_image_uri: str | None = None
    package_index_url: str | None = None


def mlflow_settings_problems(settings: MlflowSettings, pipeline_name: str) -> list[str]:
    """Every problem with ``settings`` (tokens are skipped), one message each."""
    problems: list[str] = []
    size: object = settings.size
    if not isinstance(size, MlflowServerSize):
        problems.append(
            f"mlflow.size {settings.size!r} is not a size; use one of: {', '.join(s.value for s in MlflowServerSize)}"
        )
    name = settings.tracking_server_name or f"{pipeline_name}-mlflow"
    if not Token.is_unresolved(name) and not _TRACKING_SERVER_NAME.match(name):
        problems.append(
            f"mlflow.tracking_server_name {name!r} is not valid; use 1-256 letters, digits and hyphens, "
            "starting and ending with a letter or digit"
        )
    version = settings.mlflow_version
    if version is not None and not Token.is_unresolved(version) and not _MLFLOW_VERSION.match(version):
        problems.append(f"mlflow.mlflow_version {version!r} is not a version; use e.g. '2.16'")
    window = settings.weekly_maintenance_window_start
    if window is not None and not Token.is_unresolved(window) and not _MAINTENANCE_WINDOW.match(window):
        problems.append(
            f"mlflow.weekly_maintenance_window_start {window!r} is not valid; use Day:HH:MM in UTC, e.g. 'Sun:03:00'"
        )
    requirements: object = settings.client_requirements
    if isinstance(requirements, str) or not isinstance(requirements, tuple | list):
        problems.append(
            f"mlflow.client_requirements {requirements!r} must be a tuple of requirements, "
            f"e.g. {MLFLOW_CLIENT_REQUIREMENTS!r}"
        )
    else:
        if not requirements and settings.logging_image_uri is None:
            problems.append(
                "mlflow.client_requirements is empty, so the Track step has no MLflow client to install; "
                "keep the default pins or set logging_image_uri to an image that has mlflow and sagemaker-mlflow"
            )
        for index, requirement in enumerate(requirements):
            problem = pd.requirement_problem(f"mlflow.client_requirements[{index}]", requirement)
            if problem:
                problems.append(problem)
    image = settings.logging_image_uri
    if image is not None and not Token.is_unresolved(image) and not _ECR_IMAGE.match(image):
        problems.append(
            f"mlflow.logging_image_uri {image!r} is not an ECR image URI "
            "(<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>); push the image to ECR"
        )
    index_problem = pd.package_index_problem("mlflow.package_index_url", settings.package_index_url)
    if index_problem:
        problems.append(index_problem)
    return problems
