"""The wheel users `pip install` carries the Lambda code, ML scripts and data files."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.slow  # builds the wheel
def test_wheel_contains_lambda_code_ml_scripts_and_data(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(REPO_ROOT)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # The license is an SPDX expression (PEP 639), not the deprecated table form build warns about.
    assert "deprecat" not in (build.stdout + build.stderr).lower()
    (wheel,) = tmp_path.glob("cdk_mlops-0.1.0-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "cdk_mlops/py.typed",
        "cdk_mlops/lambdas/retrain_trigger/handler.py",
        "cdk_mlops/lambdas/retrain_trigger/core.py",
        "cdk_mlops/datasets.py",
        "cdk_mlops/ml/preprocess.py",
        "cdk_mlops/ml/evaluate.py",
        "cdk_mlops/image_uris.json",
        "cdk_mlops/ground_truth.py",
        "cdk_mlops/testing.py",  # the pytest plugin outside teams test their apps with
        "cdk_mlops/local/cfn_shim.py",
        "cdk_mlops/local/apps.py",
    ):
        assert expected in names, expected
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text.splitlines()
    requires = sorted(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:"))
    runtime = [r for r in requires if "extra ==" not in r]
    assert [r.split(">")[0].split("<")[0] for r in runtime] == ["aws-cdk-lib", "cdk-nag", "constructs"]
    # `pip install 'cdk_mlops-<version>-py3-none-any.whl[testing]'` brings what the plugin runs on.
    testing = sorted(r.split(";")[0].strip() for r in requires if 'extra == "testing"' in r)
    assert [r.split(">")[0].split("=")[0].split("[")[0] for r in testing] == [
        "aws-lambda-powertools",
        "boto3",
        "moto",
        "pytest",
    ]
