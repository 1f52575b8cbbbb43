"""The reference platform: one stage per environment, plus the delivery pipelines.

:class:`MlopsPlatformStage` is defined in :mod:`cdk_mlops.stacks.platform_stage` (the delivery
stack builds it too) and re-exported here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import aws_cdk as cdk

from cdk_mlops.compliance import apply_compliance
from cdk_mlops.config import EnvironmentConfig, ToolingConfig
from cdk_mlops.stacks.delivery_stack import ToolingStage
from cdk_mlops.stacks.platform_stage import MlopsPlatformStage

__all__ = ["MlopsPlatformStage", "build_platform", "pinned_cli_version"]


def pinned_cli_version(directory: Path | None = None) -> str | None:
    """The CDK CLI version ``package.json`` pins (``devDependencies`` ``aws-cdk``), or None.

    The delivery pipeline's self-mutation step installs this version, so the pipeline
    synthesizes with the CLI that ``make synth`` and ``make demo`` use. A range (``^2.1``) or no
    ``package.json`` gives None: the step then installs the latest 2.x, as CDK Pipelines does.

    Args:
        directory: Where ``package.json`` is. Default: - the current directory (the CDK CLI
            runs the app from the directory of ``cdk.json``).
    """
    path = (directory or Path.cwd()) / "package.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    version = (manifest.get("devDependencies") or {}).get("aws-cdk") if isinstance(manifest, dict) else None
    exact = isinstance(version, str) and all(part.isdigit() for part in version.split(".")) and version.count(".") == 2
    return version if exact else None


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
            stacks into the same accounts. The pipeline's self-mutation step installs the
            CDK CLI of :func:`pinned_cli_version`.
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
            cli_version=pinned_cli_version(),
            **tooling.delivery_arguments(),
        )
    apply_compliance(app)
    return stages
