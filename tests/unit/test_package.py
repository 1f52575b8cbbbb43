"""The public API and the import-cost promise of the package."""

from __future__ import annotations

import subprocess
import sys

import pytest

import cdk_mlops


def test_every_export_resolves_and_is_listed():
    assert sorted(cdk_mlops.__all__) == sorted(cdk_mlops._EXPORTS)
    for name in cdk_mlops.__all__:
        assert getattr(cdk_mlops, name) is not None


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchThing'"):
        cdk_mlops.NoSuchThing  # noqa: B018


def test_lambda_side_modules_import_without_aws_cdk():
    # datasets.py and the handlers ship inside Lambda assets, where aws_cdk does not exist.
    code = (
        "import sys, cdk_mlops, cdk_mlops.datasets, cdk_mlops.lambdas.retrain_trigger.handler; "
        "print('aws_cdk' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
