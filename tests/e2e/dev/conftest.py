"""The Dev stage, deployed once to the embedded local AWS by ``make demo``'s own steps, for this package.

:class:`cdk_mlops.local.loop.Demo` deploys Dev with the demo's three-model catalogue, as ``make
demo`` does; ``test_local_deploy.py`` and ``test_catalogue.py`` check what was provisioned,
``test_closed_loop.py`` runs the closed loop (:meth:`Demo.closed_loop`) and ``test_fleet_loop.py``
then the fleet loop (:meth:`Demo.fleet_loop`) on the same deployment. ``test_batch_scoring.py``
deploys the stage again to score a dataset with the loop's model, and the destroy tests end with
:meth:`Demo.destroy`. A deploy through the pinned CDK CLI costs seconds of synth and
CloudFormation emulation, so the one deployment is shared: the fixtures are package-scoped, so the
local AWS stops when the package's last test is done (before another e2e module starts its own);
``tests/conftest.py`` schedules these modules on one pytest-xdist worker, and the tests that need
the stage destroyed run after every other test of the package.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cdk_mlops.local.loop import Demo, LoopReport
from cdk_mlops.local.server import LocalAws, local_aws, require_loopback
from tests.e2e.conftest import Deployment, physical_ids, require_cdk_cli

#: What the loops printed, in order: (step, text).
Lines = list[tuple[str, str]]


@pytest.fixture(scope="package")
def demo_lines() -> Lines:
    """Every line the package's demo steps printed so far."""
    return []


@pytest.fixture(scope="package")
def dev_stage(tmp_path_factory: pytest.TempPathFactory, demo_lines: Lines) -> Iterator[Deployment]:
    """Dev with the demo's catalogue, deployed once for this package (per worker) to a fresh local AWS."""
    require_cdk_cli()
    output = tmp_path_factory.mktemp("cdk.out")
    with local_aws() as aws:
        require_loopback(aws.endpoint_url)
        demo = Demo(aws, output=output, emit=lambda step, text: demo_lines.append((step, text)), show=lambda _: None)
        with contextlib.closing(demo):
            templates = demo.deploy()
            yield Deployment(aws, templates, output, physical_ids(aws, templates), demo=demo)


@pytest.fixture(scope="package")
def demo(dev_stage: Deployment) -> Demo:
    """The demo whose steps deployed :func:`dev_stage`."""
    assert dev_stage.demo is not None
    return dev_stage.demo


@dataclass
class Run:
    """The closed loop's run on the package's deployment: its report and the lines it printed."""

    aws: LocalAws
    report: LoopReport
    lines: Lines
    output: Path

    def client(self, service: str) -> Any:
        return self.aws.client(service)


# Package-scoped like the deployment: the fleet loop runs after it, and the teardown test runs after
# test_local_deploy.py's tests, so a module-scoped run would be torn down and run again on a destroyed stage.
@pytest.fixture(scope="package")
def run(dev_stage: Deployment, demo: Demo, demo_lines: Lines, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The closed loop, steps 1 to 7, as ``make demo`` runs it (:meth:`Demo.closed_loop`)."""
    assert not dev_stage.destroyed, "the loop runs on the deployed stage; the destroy tests run last"
    before = len(demo_lines)
    report = demo.closed_loop(tmp_path_factory.mktemp("loop"))
    return Run(dev_stage.aws, report, demo_lines[before:], dev_stage.output)


@pytest.fixture(scope="package")
def dev_stage_destroyed(dev_stage: Deployment, demo: Demo) -> Deployment:
    """:func:`dev_stage` after ``cdk destroy`` (:meth:`Demo.destroy`); the tests that use it run last (see below)."""
    demo.destroy()
    dev_stage.destroyed = True
    return dev_stage


#: Modules that deploy the stage again with other settings; their tests run after the others'.
REDEPLOYING_MODULES = ("tests/e2e/dev/test_batch_scoring.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the tests that redeploy the stage after the others, and those that need it destroyed last.

    Only within the package: its fixtures end with its last test, so a test of it placed after
    another package's would deploy the stage again.
    """
    mine = [i for i, item in enumerate(items) if item.nodeid.startswith("tests/e2e/dev/")]
    if not mine:
        return
    block = items[mine[0] : mine[-1] + 1]
    after = [item for item in block if "dev_stage_destroyed" in getattr(item, "fixturenames", ())]
    # Batch scoring deploys the stage again (it adds the Scoring stack): after the tests that read
    # the first deployment and the loops' runs, before the destroy.
    redeployed = [item for item in block if item.nodeid.startswith(REDEPLOYING_MODULES) and item not in after]
    first = [item for item in block if item not in after and item not in redeployed]
    items[mine[0] : mine[-1] + 1] = first + redeployed + after
