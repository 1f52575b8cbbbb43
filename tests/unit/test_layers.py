"""The import contracts in pyproject.toml hold on the real tree, and each of them can fail.

The contracts run with import-linter (``lint-imports``, part of ``make lint``); these tests
also plant one realistic bad import per contract in a copy of the package, so a contract
that could never fail (a typo in a module name, a wrong option) is caught here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from cdk_mlops import guardrail_ids, guardrails
from tests.conftest import REPO_ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

# contract id -> (module file under cdk_mlops/, the import planted at its end)
PLANTED: dict[str, tuple[str, str]] = {
    "layers": ("promotion.py", "import cdk_mlops.config"),
    "runtime-no-cdk": ("ml/train.py", "import aws_cdk"),
    "local-is-a-leaf": ("stacks/data_stack.py", "import cdk_mlops.local.summary"),
    "config-is-data": ("config.py", "import cdk_mlops.constructs.common"),
    "no-root-import": ("champion.py", "from cdk_mlops import __version__"),
    "acyclic": ("stacks/serving_stack.py", "import cdk_mlops.stacks.training_stack"),
}


def contract_ids() -> list[str]:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    return [contract["id"] for contract in config["tool"]["importlinter"]["contracts"]]


def lint_imports(cwd: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    # The copy is found through PYTHONPATH (import-linter also puts the working directory first).
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    selected = [arg for contract in contracts for arg in ("--contract", contract)]
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *selected],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_tree_keeps_every_contract():
    result = lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(contract_ids())} kept, 0 broken." in result.stdout


def test_every_contract_has_a_planted_violation():
    assert sorted(PLANTED) == sorted(contract_ids()), "add a planted violation for each new contract"


@pytest.mark.parametrize("contract", sorted(PLANTED))
def test_a_planted_import_breaks_the_contract(tmp_path, contract):
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(REPO_ROOT / "cdk_mlops", tmp_path / "cdk_mlops", ignore=shutil.ignore_patterns("__pycache__"))
    module, planted = PLANTED[contract]
    target = tmp_path / "cdk_mlops" / module
    target.write_text(target.read_text() + f"\n{planted}  # noqa\n")

    result = lint_imports(tmp_path, contract)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 kept, 1 broken" in result.stdout
    assert Path(module).stem in result.stdout  # the report names the module with the bad import


def test_the_plain_rule_ids_match_the_rules():
    # config checks ids against guardrail_ids without importing the rules (a layer up).
    assert tuple(rule.id for rule in guardrails.RULES) == guardrail_ids.RULE_IDS
