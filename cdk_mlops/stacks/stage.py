"""The reference platform: one stage per environment, plus the delivery pipelines.

:class:`MlopsPlatformStage` is defined in :mod:`cdk_mlops.stacks.platform_stage` (the delivery
stack builds it too) and re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable

import aws_cdk as cdk

from cdk_mlops.compliance import apply_compliance
from cdk_mlops.config import EnvironmentConfig, ToolingConfig
from cdk_mlops.stacks.delivery_stack import ToolingStage
from cdk_mlops.stacks.platform_stage import MlopsPlatformStage

__all__ = ["MlopsPlatformStage", "build_platform"]


def build_platform(
    app: cdk.App, configs: Iterable[EnvironmentConfig], *, tooling: ToolingConfig | None = None
) -> list[MlopsPlatformStage]:
    """Build one stage per environment, the delivery pipelines, and apply the app-wide compliance checks.

    This is everything ``app.py`` does between reading the configuration and
    ``app.synth()``; tests call it too, so they check exactly what deploys.

    Args:
        app: The app.
        configs: The environments.
        tooling: Where the delivery pipelines live. Default: - no pipelines; each
            environment is deployed with ``cdk deploy '<Stage>/*'``. With pipelines,
            deploy ``Tooling/*`` once; the pipeline then deploys the environments
            (as ``Tooling-<Stage>-*`` stacks), so do not also deploy the ``<Stage>/*``
            stacks into the same accounts.
    """
    environments = list(configs)
    stages = [MlopsPlatformStage(app, config.stage_name, config=config) for config in environments]
    if tooling is not None:
        ToolingStage(
            app,
            "Tooling",
            account=tooling.account,
            region=tooling.region,
            environments=environments,
            **tooling.delivery_arguments(),
        )
    apply_compliance(app)
    return stages
