"""Wall time of the whole test suite, serial (the reference) and on parallel workers, side by side.

All runs use the same tests on the same machine, one after the other; `make test` uses the
parallel command (`pytest -n auto --dist loadscope`, one worker per CPU). The third row is
`make test-fast`, the edit-test loop (the marker expression is read from the Makefile).

Usage: python bench/suite.py [--runs N] [--modes serial,parallel,fast]
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO_ROOT, ProcessRun, median_run, run_process, write_result
from tests.quality import CFN_LINT_CACHE


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {sorted(MODES)}")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = sorted(set(modes) - MODES.keys())
    if unknown:
        raise SystemExit(f"unknown --modes {unknown}; choose from {sorted(MODES)}")
    pytest = str(REPO_ROOT / ".venv" / "bin" / "pytest")

    def cold_run(flags: list[str]) -> ProcessRun:
        # Every run starts without cfn-lint results, as on a clean clone (CI), so that no run
        # profits from the one before it.
        shutil.rmtree(CFN_LINT_CACHE, ignore_errors=True)
        return run_process([pytest, "-q", "-x", *flags])

    rows: dict[str, dict[str, float]] = {}
    for mode in modes:
        flags = MODES[mode]
        runs = [cold_run(flags) for _ in range(args.runs)]
        if any(r.returncode for r in runs):
            raise SystemExit(f"the test suite failed ({mode}); fix it before benchmarking")
        rows[mode] = median_run(runs)
    write_result("test_suite", rows)
    print("| what | wall s (median) | CPU s (main process) | runs |")
    print("| --- | ---: | ---: | ---: |")
    for mode, row in rows.items():
        print(f"| {LABELS[mode]} | {row['wall_s']:.1f} | {row['cpu_s']:.1f} | {row['runs']:.0f} |")


if __name__ == "__main__":
    main()
