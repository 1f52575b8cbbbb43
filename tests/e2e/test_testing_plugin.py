"""End to end: a team's own tests, with the ``cdk_mlops.testing`` plugin, against the embedded local AWS.

``examples/compose_in_your_stack`` carries what a team would write: a ``pytest.ini`` that enables
the plugin and names the app and stage, and ``tests/test_retrain.py``, which puts a data drop
and its commit marker into the dataset, drives the delivery and asserts that exactly one
pipeline execution started on a manifest of the drop. It runs here as the team runs it:
``pytest`` in the example's folder, in its own process, which starts its own local AWS on
loopback and deploys the stage once.

``examples/team_app`` is the same for a team with two stacks (a data stack with a private network
and its legacy bucket imported, a training stack that reaches the network through exports): its
``conftest.py`` creates the legacy bucket and key before the deploy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.e2e.conftest import require_cdk_cli

pytestmark = pytest.mark.e2e

EXAMPLE = REPO_ROOT / "examples" / "compose_in_your_stack"
TEAM_APP = REPO_ROOT / "examples" / "team_app"


def run_team_tests(directory: Path, report: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``pytest`` in ``directory`` as a team runs it, with nothing of this session's AWS settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTEST_", "CDK_DEFAULT_"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", f"--junitxml={report}", *args],
        cwd=directory,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def outcomes(report: Path) -> dict[str, str]:
    """Test name → ``passed``, ``failed``, ``error`` or ``skipped``, from a JUnit XML report."""
    result: dict[str, str] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        result[case.attrib["name"]] = {"failure": "failed"}.get(kinds[0], kinds[0]) if kinds else "passed"
    return result


def test_the_example_apps_own_test_deploys_it_and_sees_one_retrain(tmp_path: Path) -> None:
    require_cdk_cli()
    # WHEN the team's tests run in the example's folder
    report = tmp_path / "report.xml"
    result = run_team_tests(EXAMPLE, report, "-rA")

    # THEN its one test passed: the stage deployed, and one committed drop started one execution
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert outcomes(report) == {"test_a_committed_data_drop_starts_exactly_one_training_run": "passed"}
    # AND the plugin said which account and region the app was deployed to, and how to follow them
    assert "CDK_DEFAULT_ACCOUNT" in result.stdout or "CDK_DEFAULT_ACCOUNT" in result.stderr


def test_the_team_apps_two_stacks_deploy_around_its_imported_bucket_and_retrain_once(tmp_path: Path) -> None:
    require_cdk_cli()
    # WHEN the team's tests run in its folder
    report = tmp_path / "report.xml"
    result = run_team_tests(TEAM_APP, report)

    # THEN both passed: the function runs in the data stack's exported subnets, and one drop in
    # the imported bucket started exactly one execution on a manifest of it
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert outcomes(report) == {
        "test_the_retrain_function_runs_in_the_data_stacks_subnets": "passed",
        "test_a_data_drop_in_the_legacy_bucket_starts_exactly_one_training_run": "passed",
    }
