"""The README's "Using the constructs in your own stack" snippet runs as printed.

A newcomer copies it first, so it is executed as it stands: the library's public API, cdk-nag and
the guardrails, and ``synth_app``, which exits non-zero on any finding.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.conftest import REPO_ROOT

SECTION = "## Using the constructs in your own stack"


def readme_snippet() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    section = text[text.index(SECTION) :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, f"no Python block under {SECTION!r}"
    return match.group(1)


def test_the_snippet_synthesizes_without_a_finding() -> None:
    namespace: dict[str, Any] = {}
    exec(compile(readme_snippet(), "README.md", "exec"), namespace)  # synth_app raises SystemExit on a finding
    # The snippet's app wrote its cloud assembly (to its own temporary directory, as the CLI is absent).
    assert (Path(namespace["app"].outdir) / "manifest.json").is_file()
    assert {"store", "training"} <= set(namespace)
