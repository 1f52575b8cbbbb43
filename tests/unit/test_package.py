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


def test_the_constructs_subpackage_exports_the_roots_construct_names_as_the_same_objects():
    import cdk_mlops.constructs as constructs

    from_constructs = {
        name for name, module in cdk_mlops._EXPORTS.items() if module.startswith("cdk_mlops.constructs.")
    }
    assert sorted(constructs.__all__) == sorted(constructs._EXPORTS) == sorted(from_constructs)
    assert {name: constructs._EXPORTS[name] for name in from_constructs} == {
        name: cdk_mlops._EXPORTS[name] for name in from_constructs
    }
    for name in constructs.__all__:
        assert getattr(constructs, name) is getattr(cdk_mlops, name)
    with pytest.raises(AttributeError, match=r"'cdk_mlops\.constructs' has no attribute 'NoSuchThing'"):
        constructs.NoSuchThing  # noqa: B018


def test_importing_one_construct_module_imports_no_other():
    # The subpackage's exports are lazy: a construct module (here the data store, which every
    # other construct uses) loads without the pipeline, monitor or delivery modules.
    code = (
        "import sys, cdk_mlops.constructs.data_store; "
        "print(sorted(m for m in sys.modules if m.startswith('cdk_mlops.constructs.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (
        "['cdk_mlops.constructs.common', 'cdk_mlops.constructs.data_store', "
        "'cdk_mlops.constructs.data_store_base', 'cdk_mlops.constructs.props']"
    )


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


def test_the_readmes_package_json_snippet_pins_the_cli_this_repository_uses():
    # A team copies the snippet; it must pin the CLI that the library is tested with.
    import json
    import re

    from tests.conftest import REPO_ROOT

    pinned = json.loads((REPO_ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    snippets = re.findall(r'"aws-cdk": "([^"]+)"', (REPO_ROOT / "README.md").read_text())
    assert snippets == [pinned]
