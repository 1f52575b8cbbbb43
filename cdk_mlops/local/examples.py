"""Example values for synthesizing the whole platform before any model is approved.

The serving stack exists only for an environment with an approved model
(``model_package_arn``). The architecture picture and the test suite show and
check the complete platform, so they give every environment this placeholder
package of its own registry; it is never deployed.
"""

from __future__ import annotations

import copy
from typing import Any

from cdk_mlops.config import CONTEXT_KEY, MONITOR_BASELINES, TOOLING_KEY, EndpointKind, load_environments


def example_model_package_arn(
    project: str, environment: str, *, account: str | None = None, region: str | None = None
) -> str:
    """A syntactically valid, never-deployed package ARN in the environment's registry.

    Args:
        project: The environment's project.
        environment: The environment's name.
        account: The registry's account. Default: - 123456789012 (an environment-agnostic stage).
        region: The registry's region; an endpoint serves packages of its own region only.
            Default: - us-east-1 (an environment-agnostic stage).
    """
    group = f"{project}-{environment}-training-models"
    return f"arn:aws:sagemaker:{region or 'us-east-1'}:{account or '123456789012'}:model-package/{group}/1"


def with_example_models(context: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``context`` where every environment without a model serves the example package.

    Realtime environments also get the example model's drift-check baselines (all four
    monitoring types, as a package trained with Clarify settings carries them), labels
    (``ground_truth``), a drift threshold and batch scoring of a second dataset, so every
    Model Monitor schedule, the drift alarm and the Scoring stack are part of the picture.
    """
    result = copy.deepcopy(context)
    environments = result[CONTEXT_KEY]
    for config in load_environments(environments):
        settings = environments[config.name]
        if "model_package_arn" in settings:
            continue
        settings["model_package_arn"] = example_model_package_arn(
            config.project, config.name, account=config.account, region=config.region
        )
        if config.endpoint_kind is EndpointKind.REALTIME:
            pipeline = f"{config.project}-{config.name}-training"
            settings.setdefault("model_baseline_prefix", f"artifacts/{pipeline}/example/data-quality-baseline/")
            settings.setdefault("model_baselines", list(MONITOR_BASELINES))
            settings.setdefault("ground_truth", True)
            settings.setdefault("batch_inference", {"dataset": "churn-scoring", "schedule": "cron(0 4 * * ? *)"})
            settings.setdefault("drift_thresholds", {"mean_radius": 0.2})
    return result


def example_tooling(*, account: str, region: str) -> dict[str, Any]:
    """Delivery settings in ``account`` and ``region`` with a placeholder connection and VPC (never deployed).

    Prod runs in a VPC, so the delivery builds need one of the tooling account's (``tooling.network``).
    """
    return {
        "account": account,
        "region": region,
        "connection_arn": f"arn:aws:codeconnections:{region}:{account}:connection/00000000-0000-0000-0000-000000000000",
        "repository": "example-org/cdk-mlops-platform",
        "branch": "main",
        "network": {
            "vpc_id": "vpc-0123456789abcdef0",
            "availability_zones": [f"{region}a", f"{region}b"],
            "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
            "route_table_ids": ["rtb-0123456789abcdef0", "rtb-0fedcba9876543210"],
        },
    }


#: Delivery settings for synthesizing the pipelines without a real connection (never deployed).
EXAMPLE_TOOLING: dict[str, Any] = example_tooling(account="999999999999", region="us-east-1")


def with_example_tooling(context: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``context`` with delivery pipelines from :data:`EXAMPLE_TOOLING`, unless it has its own."""
    result = copy.deepcopy(context)
    result.setdefault(TOOLING_KEY, copy.deepcopy(EXAMPLE_TOOLING))
    return result
