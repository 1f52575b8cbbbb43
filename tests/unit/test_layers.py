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
from concurrent.futures import ThreadPoolExecutor
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


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    """Each contract's ``lint-imports`` run on a copy of the package with its planted import.

    The runs are separate processes on separate copies, so they run side by side: a second each,
    mostly interpreter start-up and the import graph's build.
    """
    copies: dict[str, Path] = {}
    for contract, (module, line) in PLANTED.items():
        copy = copies[contract] = tmp_path_factory.mktemp(contract)
        shutil.copy(REPO_ROOT / "pyproject.toml", copy / "pyproject.toml")
        shutil.copytree(REPO_ROOT / "cdk_mlops", copy / "cdk_mlops", ignore=shutil.ignore_patterns("__pycache__"))
        target = copy / "cdk_mlops" / module
        target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        runs = {contract: pool.submit(lint_imports, copy, contract) for contract, copy in copies.items()}
        return {contract: run.result() for contract, run in runs.items()}


@pytest.mark.parametrize("contract", sorted(PLANTED))
def test_a_planted_import_breaks_the_contract(planted, contract):
    module, _ = PLANTED[contract]
    result = planted[contract]

    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 kept, 1 broken" in result.stdout
    assert Path(module).stem in result.stdout  # the report names the module with the bad import


def test_the_plain_rule_ids_match_the_rules():
    # config checks ids against guardrail_ids without importing the rules (a layer up).
    assert tuple(rule.id for rule in guardrails.RULES) == guardrail_ids.RULE_IDS
