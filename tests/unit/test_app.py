"""app.py as `cdk synth` runs it: offline synth, and a clear exit on bad configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def clean_env(tmp_path) -> dict[str, str]:
    # No AWS variables and no ~/.aws: synth must need neither.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    env.setdefault("JSII_RUNTIME_PACKAGE_CACHE_ROOT", str(Path.home() / ".cache" / "aws" / "jsii" / "package-cache"))
    env["HOME"] = str(tmp_path)
    env["CDK_OUTDIR"] = str(tmp_path / "cdk.out")
    return env


def run_app(tmp_path, context: dict[str, object] | None = None) -> subprocess.CompletedProcess[str]:
    env = clean_env(tmp_path)
    if context is not None:
        env["CDK_CONTEXT_JSON"] = json.dumps(context)
    return subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.mark.slow  # runs `python app.py` in a new process
def test_malformed_environments_exit_non_zero_with_one_message_and_no_traceback(tmp_path):
    result = run_app(
        tmp_path,
        {"environments": {"dev": {"account": "12345", "region": "mars-1"}, "prod": {"manual_approval": False}}},
    )
    assert result.returncode == 1
    assert "cdk-mlops: invalid configuration" in result.stderr
    assert "environments.dev.account: '12345'" in result.stderr
    assert "environments.dev.region: 'mars-1'" in result.stderr
    assert "environments.prod.manual_approval: false" in result.stderr
    assert "Traceback" not in result.stderr
    # nothing was synthesized: no template exists
    assert list((tmp_path / "cdk.out").rglob("*.template.json")) == []
