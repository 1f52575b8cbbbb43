"""Feature-attribution drift monitoring with SageMaker Clarify: its settings, job and shadow-endpoint access.

Clarify computes SHAP values against a temporary shadow endpoint of the served model, which it
creates through the SageMaker API; so these jobs never run network-isolated, and their role may
manage endpoints named for Clarify.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final

from aws_cdk import CfnResource, Token
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from cdk_mlops.constructs.common import (
    ENDPOINT_INSTANCE_FAMILIES,
    GUARDRAILS,
    acknowledge,
    instance_type_problem,
)
from cdk_mlops.constructs.model_monitor.checks import image_problems, whole_problem
from cdk_mlops.constructs.model_monitor.job import JobContext, JobSettings, baseline_constraints
from cdk_mlops.constructs.model_monitor.monitoring_type import MonitoringType

__all__ = [
    "NETWORK_NOTE",
    "ModelExplainabilitySettings",
    "define_model_explainability_job",
]

#: The note on a monitor with explainability jobs: they run without network isolation.
NETWORK_NOTE: Final = (
    "[cdk-mlops:monitor-explainability-network] explainability jobs run without network isolation: "
    "SageMaker Clarify calls the SageMaker API for its shadow endpoint"
)

# CreateModel's ModelName.
_MODEL_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}\Z")


@dataclass(frozen=True, kw_only=True)
class ModelExplainabilitySettings(JobSettings):
    """Feature-attribution drift monitoring with SageMaker Clarify (SHAP).

    Clarify computes attributions against a temporary shadow endpoint of the
    model that the analysis configuration's ``predictor.model_name`` names, so
    these jobs cannot run with network isolation (they call the SageMaker API);
    they still run in the endpoint's VPC when it has one. The monitor names the
    served model itself: at deploy time it copies ``baselines.analysis_config_uri``
    with ``predictor`` set to ``model_name`` and the shadow endpoint's size
    (:class:`~cdk_mlops.constructs.model_monitor.served_config.ServedAnalysisConfig`),
    and the job reads the copy. So a configuration registered with a model
    package (in any account) serves every environment that deploys the package.

    Attributes:
        baselines: Explainability constraints and the Clarify analysis
            configuration (``analysis_config_uri``) (required).
        image_uri: The SageMaker Clarify image. Default: - the region's prebuilt Clarify
            image (``sagemaker-clarify-processing:1.0``, from :mod:`cdk_mlops.image_uris`).
        features_attribute: JSON path of the features in JSON Lines requests. Default: - none (CSV).
        inference_attribute: Index or JSON path of the prediction. Default: - none.
        probability_attribute: Index or JSON path of the probability. Default: - none.
        model_name: The SageMaker model the shadow endpoint serves. Default: - the
            monitored ``ModelEndpoint``'s model; for an imported endpoint or a batch
            transform job, none: the configuration is used as it is and must name a
            model of this account and region itself (a warning says so).
        shadow_instance_type: The shadow endpoint's instance type. Default: - ``ml.m5.xlarge``.
        shadow_instance_count: The shadow endpoint's instance count (1 to 10). Default: - 1.
        schedule: Default: - hourly.
        instance_type: Default: - ``ml.m5.xlarge``.
        instance_count: Default: - 1.
        volume_size_gb: Default: - 20.
        max_runtime: Default: - 1 hour.
    """

    image_uri: str | None = None
    features_attribute: str | None = None
    inference_attribute: str | None = None
    probability_attribute: str | None = None
    model_name: str | None = None
    shadow_instance_type: str = "ml.m5.xlarge"
    shadow_instance_count: int = 1

    def problems(self, where: str = "model_explainability") -> list[str]:
        """Every invalid setting, each with its value and the fix; tokens are not checked."""
        found = self._common_problems(where, MonitoringType.MODEL_EXPLAINABILITY)
        found += image_problems(f"{where}.image_uri", self.image_uri)
        name = self.model_name
        if name is not None and not Token.is_unresolved(name) and not _MODEL_NAME.match(name):
            found.append(
                f"{where}.model_name {name!r} is not a SageMaker model name: 1 to 63 letters, digits and "
                "hyphens, not starting or ending with a hyphen"
            )
        problem = instance_type_problem(
            f"{where}.shadow_instance_type", self.shadow_instance_type, ENDPOINT_INSTANCE_FAMILIES, "ml.m5.xlarge"
        )
        found += [problem] if problem else []
        return found + whole_problem(f"{where}.shadow_instance_count", self.shadow_instance_count, 1, 10)


def define_model_explainability_job(
    scope: Construct, settings: ModelExplainabilitySettings, job: JobContext
) -> CfnResource:
    """The ``JobDefinition`` under ``scope``: Clarify's feature attributions, without network isolation."""
    baselines = settings.baselines
    # Clarify calls the SageMaker API for its shadow endpoint.
    job = replace(job, network_isolation=False)
    definition = sagemaker.CfnModelExplainabilityJobDefinition(
        scope,
        "JobDefinition",
        model_explainability_app_specification=job.app_specification(configUri=baselines.analysis_config_uri),
        model_explainability_baseline_config=baseline_constraints(baselines),
        model_explainability_job_input={
            **job.captured_input(
                featuresAttribute=settings.features_attribute,
                inferenceAttribute=settings.inference_attribute,
                probabilityAttribute=settings.probability_attribute,
            )
        },
        model_explainability_job_output_config=job.output_config(),
        **job.properties(settings),
    )
    if job.vpc_config is not None:
        acknowledge(
            definition,
            "SageMaker Clarify computes feature attributions against a shadow endpoint it creates through "
            "the SageMaker API, which network isolation would block; the job still runs in the endpoint's "
            "VPC subnets and security groups",
            f"{GUARDRAILS}::MLOPS-007",
        )
    return definition
