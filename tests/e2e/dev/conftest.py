"""The Dev stage, deployed once to the embedded local AWS for the tests of this package.

``test_local_deploy.py`` checks what was provisioned and ``test_closed_loop.py`` runs the loop on
the same deployment, then ``test_batch_scoring.py`` deploys it again to score a dataset with the
loop's model: a deploy through the pinned CDK CLI costs seconds of synth and CloudFormation
emulation, so the first deployment is shared. The fixtures are package-scoped, so the local AWS stops when the
package's last test is done (before another e2e module starts its own); ``tests/conftest.py``
schedules these modules on one pytest-xdist worker, and the tests that need the stage destroyed run
after every other test of the package.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cdk_mlops.local.deploy import destroy_stage
from tests.e2e.conftest import REPO_ROOT, Deployment, deploy_dev


@pytest.fixture(scope="package")
def dev_stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The Dev stage of cdk.json, deployed once for this package (per worker) to a fresh local AWS."""
    yield from deploy_dev(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="package")
def dev_stage_destroyed(dev_stage: Deployment) -> Deployment:
    """:func:`dev_stage` after ``cdk destroy``; the tests that use it run last (see below)."""
    destroy_stage(dev_stage.aws, directory=REPO_ROOT, output=dev_stage.output)
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
    # the first deployment and the closed loop's run, before the destroy.
    redeployed = [item for item in block if item.nodeid.startswith(REDEPLOYING_MODULES) and item not in after]
    first = [item for item in block if item not in after and item not in redeployed]
    items[mine[0] : mine[-1] + 1] = first + redeployed + after
