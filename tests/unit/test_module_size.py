"""No module of the library outgrows one sitting without a written reason (docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REPO_ROOT

#: Lines above which a module is split along its seams into a package.
LIMIT = 1_000
#: Modules allowed over the limit, each with its reason.
OVER_THE_LIMIT: dict[str, str] = {}


def module_sizes(root: Path) -> dict[str, int]:
    """Line count of every ``.py`` file under ``root``, by path relative to the repository."""
    return {
        path.relative_to(REPO_ROOT).as_posix(): len(path.read_text().splitlines())
        for path in sorted(root.rglob("*.py"))
    }


def test_every_module_is_within_the_limit_or_says_why() -> None:
    sizes = module_sizes(REPO_ROOT / "cdk_mlops")
    assert len(sizes) > 50, "the package's modules were not found"
    too_long = {path: lines for path, lines in sizes.items() if lines > LIMIT and path not in OVER_THE_LIMIT}
    assert not too_long, f"split these along their seams (docs/architecture.md, 'Moving code'): {too_long}"


def test_every_exception_is_still_needed() -> None:
    sizes = module_sizes(REPO_ROOT / "cdk_mlops")
    stale = [path for path in OVER_THE_LIMIT if sizes.get(path, 0) <= LIMIT]
    assert not stale, f"remove these from OVER_THE_LIMIT, they are within {LIMIT} lines now: {stale}"
