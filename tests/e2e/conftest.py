"""The Dev stage, deployed once to the embedded local AWS for the e2e tests that read it.

``test_local_deploy.py`` checks what was provisioned and ``test_closed_loop.py`` runs the loop on
the same deployment: a deploy through the pinned CDK CLI costs seconds of synth and CloudFormation
emulation, so it happens once. ``tests/conftest.py`` schedules both modules on one pytest-xdist
worker, and the tests that need the stage destroyed run after every other test of the two.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cdk_mlops.local.deploy import StackTemplate, deploy_stage, destroy_stage
from cdk_mlops.local.server import LocalAws, local_aws, require_loopback

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Deployment:
    aws: LocalAws
    templates: list[StackTemplate]
    output: Path
    physical_ids: dict[tuple[str, str], str]
    destroyed: bool = False

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


def deploy_dev(output: Path, overrides: dict[str, Any] | None = None) -> Iterator[Deployment]:
    """Deploy Dev (with ``overrides`` of its configuration) to a fresh local AWS, for a module's fixture."""
    if not (REPO_ROOT / "node_modules" / ".bin" / "cdk").exists():
        pytest.fail("the e2e tests need the pinned CDK CLI; run `make install` (npm ci)")
    with local_aws() as aws:
        require_loopback(aws.endpoint_url)
        templates, _ = deploy_stage(aws, directory=REPO_ROOT, output=output, overrides=overrides)
        cloudformation = aws.client("cloudformation")
        physical_ids = {
            (stack.name, r["LogicalResourceId"]): r["PhysicalResourceId"]
            for stack in templates
            for r in cloudformation.describe_stack_resources(StackName=stack.name)["StackResources"]
            if r.get("LogicalResourceId")
        }
        yield Deployment(aws, templates, output, physical_ids)


@pytest.fixture(scope="session")
def dev_stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The Dev stage of cdk.json, deployed once per session (per worker) to a fresh local AWS."""
    yield from deploy_dev(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def dev_stage_destroyed(dev_stage: Deployment) -> Deployment:
    """:func:`dev_stage` after ``cdk destroy``; the tests that use it run last (see below)."""
    destroy_stage(dev_stage.aws, directory=REPO_ROOT, output=dev_stage.output)
    dev_stage.destroyed = True
    return dev_stage


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the tests that need the Dev stage destroyed after every test that reads it deployed."""
    after = [item for item in items if "dev_stage_destroyed" in getattr(item, "fixturenames", ())]
    if after:
        items[:] = [item for item in items if item not in after] + after
