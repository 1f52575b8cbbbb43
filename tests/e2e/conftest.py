"""Deploying a stage of the reference app to the embedded local AWS, for the e2e tests.

``tests/e2e/dev/`` shares one deployment of Dev between its modules, made by ``make demo``'s own
steps (:class:`cdk_mlops.local.loop.Demo`); ``test_private_deploy.py`` deploys a private variant
of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cdk_mlops.local.deploy import StackTemplate, deploy_stage
from cdk_mlops.local.loop import Demo
from cdk_mlops.local.server import LocalAws, local_aws, require_loopback

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Deployment:
    aws: LocalAws
    templates: list[StackTemplate]
    output: Path
    physical_ids: dict[tuple[str, str], str]
    destroyed: bool = False
    #: The demo whose steps deployed the stage, when they did (``tests/e2e/dev/``).
    demo: Demo | None = None

    def resources(self, resource_type: str) -> list[tuple[StackTemplate, str, dict[str, Any]]]:
        """(stack, logical id, resource) of every resource of a type in the deployed templates."""
        return [
            (stack, logical_id, resource)
            for stack in self.templates
            for logical_id, resource in stack.template.get("Resources", {}).items()
            if resource["Type"] == resource_type
        ]

    def physical_id(self, stack: StackTemplate, logical_id: str) -> str:
        """The physical id a resource had after deploy (still known after destroy)."""
        return self.physical_ids[(stack.name, logical_id)]

    def the_one(self, resource_type: str, logical_prefix: str, *, stack_suffix: str) -> str:
        """The physical id of the one resource of a type whose logical id starts with a prefix, in one stack."""
        (found,) = [
            self.physical_id(st, logical_id)
            for st, logical_id, _ in self.resources(resource_type)
            if st.name.endswith(stack_suffix) and logical_id.startswith(logical_prefix)
        ]
        return found


def physical_ids(aws: LocalAws, templates: list[StackTemplate]) -> dict[tuple[str, str], str]:
    """(stack name, logical id) -> physical id of every resource of the deployed ``templates``."""
    cloudformation = aws.client("cloudformation")
    return {
        (stack.name, r["LogicalResourceId"]): r["PhysicalResourceId"]
        for stack in templates
        for r in cloudformation.describe_stack_resources(StackName=stack.name)["StackResources"]
        if r.get("LogicalResourceId")
    }


def require_cdk_cli() -> None:
    """Fail the test, saying how to fix it, when the pinned CDK CLI is not installed."""
    if not (REPO_ROOT / "node_modules" / ".bin" / "cdk").exists():
        pytest.fail("the e2e tests need the pinned CDK CLI; run `make install` (npm ci)")


def deploy_dev(output: Path, overrides: dict[str, Any] | None = None) -> Iterator[Deployment]:
    """Deploy Dev (with ``overrides`` of its configuration) to a fresh local AWS, for a module's fixture."""
    require_cdk_cli()
    with local_aws() as aws:
        require_loopback(aws.endpoint_url)
        templates, _ = deploy_stage(aws, directory=REPO_ROOT, output=output, overrides=overrides)
        yield Deployment(aws, templates, output, physical_ids(aws, templates))
