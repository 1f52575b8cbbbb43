"""Wall time of the whole test suite, serial (the reference) and on parallel workers, side by side.

All runs use the same tests on the same machine, one after the other; `make test` uses the
parallel command (`pytest -n auto --dist loadscope`, one worker per CPU). The third row is
`make test-fast`, the edit-test loop (the marker expression is read from the Makefile).

With ``--reference REV`` the same modes also run on the tree of git revision REV (a temporary
worktree with this checkout's virtualenv and CDK CLI), alternating with this tree's runs, so that a
change to the suite is measured against its reference in the same session on the same machine.

Usage: python bench/suite.py [--runs N] [--modes serial,parallel,fast] [--reference REV]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO_ROOT, ProcessRun, median_run, run_process, write_result


def fast_markers() -> str:
    """The marker expression of `make test-fast`, as the Makefile defines it."""
    match = re.search(r"^FAST_TESTS := (.+)$", (REPO_ROOT / "Makefile").read_text(), re.MULTILINE)
    if match is None:
        raise SystemExit("the Makefile defines no FAST_TESTS; bench/suite.py reads `make test-fast`'s selection there")
    return match.group(1).strip()


#: The ways of running the suite: serial is the reference the parallel run is compared with.
MODES = {
    "serial": ["-p", "no:xdist"],
    "parallel": ["-n", "auto", "--dist", "loadscope"],
    "fast": ["-m", fast_markers()],
}
LABELS = {
    "serial": "`pytest` (whole suite, serial)",
    "parallel": "`pytest` (whole suite, parallel: `-n auto --dist loadscope`, as `make test`)",
    "fast": "`make test-fast` (no synthesis, no emulated AWS, not `slow`; serial)",
}


@contextmanager
def reference_tree(revision: str) -> Iterator[Path]:
    """A detached worktree of ``revision`` sharing this checkout's virtualenv and node_modules; removed afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="cdk-mlops-reference-"))
    tree = parent / "tree"
    subprocess.run(["git", "worktree", "add", "--quiet", "--detach", str(tree), revision], cwd=REPO_ROOT, check=True)
    try:
        for shared in ("node_modules", ".venv"):  # cdk.json runs `.venv/bin/python app.py`
            (tree / shared).symlink_to(REPO_ROOT / shared)
        yield tree
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO_ROOT, check=False)
        shutil.rmtree(parent, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {sorted(MODES)}")
    parser.add_argument("--reference", metavar="REV", help="also run each mode on git revision REV, alternating")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = sorted(set(modes) - MODES.keys())
    if unknown:
        raise SystemExit(f"unknown --modes {unknown}; choose from {sorted(MODES)}")
    pytest = str(REPO_ROOT / ".venv" / "bin" / "pytest")

    def cold_run(flags: list[str], tree: Path) -> ProcessRun:
        # Every run starts without cfn-lint results, as on a machine that never ran the tests, so
        # that no run profits from the one before it: an empty shared cache folder of its own (the
        # machine's is left alone), and no results in the tree (where revisions before the shared
        # folder kept them). The tree's own package comes first on the path (the editable install's
        # finder comes after it), so a reference runs its own library code.
        shutil.rmtree(tree / ".pytest_cache" / "cfn-lint", ignore_errors=True)
        with tempfile.TemporaryDirectory(prefix="cdk-mlops-cache-") as cache:
            env = {**os.environ, "PYTHONPATH": str(tree), "CDK_MLOPS_CACHE_DIR": cache}
            return run_process([pytest, "-q", "-x", *flags], cwd=tree, env=env)

    with reference_tree(args.reference) if args.reference else nullcontext() as reference:
        trees = {"": REPO_ROOT} | ({f" at {args.reference}": reference} if reference is not None else {})
        rows: dict[str, dict[str, float]] = {}
        for mode in modes:
            runs: dict[str, list[ProcessRun]] = {suffix: [] for suffix in trees}
            for _ in range(args.runs):
                for suffix, tree in trees.items():
                    runs[suffix].append(cold_run(MODES[mode], tree))
            for suffix, measured in runs.items():
                if any(r.returncode for r in measured):
                    raise SystemExit(f"the test suite failed ({mode}{suffix}); fix it before benchmarking")
                rows[mode + suffix] = median_run(measured)
    write_result("test_suite", rows)
    print("| what | wall s (median) | CPU s (main process) | runs |")
    print("| --- | ---: | ---: | ---: |")
    for mode, row in rows.items():
        label = LABELS[mode.split(" at ", 1)[0]] + (f" at `{mode.split(' at ', 1)[1]}`" if " at " in mode else "")
        print(f"| {label} | {row['wall_s']:.1f} | {row['cpu_s']:.1f} | {row['runs']:.0f} |")


if __name__ == "__main__":
    main()
