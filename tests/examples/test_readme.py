"""The README's "Using the constructs in your own stack" snippet runs as printed.

A newcomer copies it first, so it is executed as it stands: the library's public API, cdk-nag and
the guardrails, and ``synth_app``, which exits non-zero on any finding.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO_ROOT

SECTION = "## Using the constructs in your own stack"


def readme_snippet() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    section = text[text.index(SECTION) :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, f"no Python block under {SECTION!r}"
    return match.group(1)


def test_the_snippet_synthesizes_without_a_finding(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The snippet's App writes its cloud assembly where the CLI would say (CDK_OUTDIR).
    monkeypatch.setenv("CDK_OUTDIR", str(tmp_path))
    namespace: dict[str, object] = {}
    exec(compile(readme_snippet(), "README.md", "exec"), namespace)  # synth_app raises SystemExit on a finding
    assert (tmp_path / "manifest.json").is_file()
    assert {"app", "store", "training"} <= set(namespace)
