"""Normalized hashes of every synthesized template, to prove that moving code changes no template.

A refactoring (splitting a module, renaming a private helper) must synthesize the same
templates. ``tests/snapshots/templates.json`` records a hash of each stack's template in the
reference platform and in the private prod; ``tests/unit/test_template_snapshot.py`` compares.

To see what changed, dump the templates before and after the change and compare them:

    .venv/bin/python -m tests.template_snapshot --dump /tmp/before   # on the unchanged code
    .venv/bin/python -m tests.template_snapshot --dump /tmp/after
    diff -r /tmp/before /tmp/after

When a template changes on purpose, review the change and record the new hashes:

    .venv/bin/python -m tests.template_snapshot --update
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from aws_cdk import cx_api

SNAPSHOT_FILE = Path(__file__).resolve().parent / "snapshots" / "templates.json"
#: Asset hashes follow file contents (a Lambda handler's code), not the construct code that
#: writes the template; they are masked so that only the template's own shape is compared.
_ASSET_HASH = re.compile(r"[0-9a-f]{64}")


def template_hash(template: dict[str, Any]) -> str:
    """SHA-256 of ``template`` as sorted JSON, with asset hashes masked."""
    text = _ASSET_HASH.sub("<asset>", json.dumps(template, sort_keys=True, separators=(",", ":")))
    return hashlib.sha256(text.encode()).hexdigest()


def assembly_hashes(assembly: cx_api.CloudAssembly) -> dict[str, str]:
    """Each stack of ``assembly`` and its nested assemblies, by hierarchical id, to its template's hash."""
    return {stack.hierarchical_id: template_hash(stack.template) for stack in assembly.stacks_recursively}


def recorded() -> dict[str, dict[str, str]]:
    """The recorded hashes by layout name (``reference``, ``private_prod``)."""
    snapshot: dict[str, dict[str, str]] = json.loads(SNAPSHOT_FILE.read_text())
    return snapshot


def _assemblies() -> dict[str, cx_api.CloudAssembly]:
    from tests.conftest import private_prod_platform, reference_platform

    return {"reference": reference_platform().assembly, "private_prod": private_prod_platform().assembly}


def dump(directory: Path) -> None:
    """Write each layout's templates, asset hashes masked, as ``<layout>/<stack path>.json`` under ``directory``."""
    for layout, assembly in _assemblies().items():
        for stack in assembly.stacks_recursively:
            target = directory / layout / f"{stack.hierarchical_id.replace('/', '.')}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps(stack.template, indent=1, sort_keys=True)
            target.write_text(_ASSET_HASH.sub("<asset>", text) + "\n")


def main() -> None:
    """Record the current hashes (``--update``), print them, or dump the templates (``--dump DIR``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help=f"write {SNAPSHOT_FILE.name}")
    parser.add_argument("--dump", type=Path, metavar="DIR", help="write every template (masked) under DIR")
    args = parser.parse_args()
    if args.dump:
        dump(args.dump)
        return
    hashes = {layout: assembly_hashes(assembly) for layout, assembly in _assemblies().items()}
    text = json.dumps(hashes, indent=2, sort_keys=True) + "\n"
    if args.update:
        SNAPSHOT_FILE.write_text(text)
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
