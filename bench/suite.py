"""Wall time of the whole test suite, serial (the reference) and on parallel workers, side by side.

Both runs use the same tests on the same machine, one after the other; `make test` uses the
parallel command (`pytest -n auto --dist loadscope`, one worker per CPU).

Usage: python bench/suite.py [--runs N]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO_ROOT, ProcessRun, median_run, run_process, write_result
from tests.quality import CFN_LINT_CACHE

#: The two ways of running the suite: serial is the reference the parallel run is compared with.
MODES = {
    "serial": ["-p", "no:xdist"],
    "parallel": ["-n", "auto", "--dist", "loadscope"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    pytest = str(REPO_ROOT / ".venv" / "bin" / "pytest")

    def cold_run(flags: list[str]) -> ProcessRun:
        # Every run starts without cfn-lint results, as on a clean clone (CI), so that no run
        # profits from the one before it.
        shutil.rmtree(CFN_LINT_CACHE, ignore_errors=True)
        return run_process([pytest, "-q", "-x", *flags])

    rows: dict[str, dict[str, float]] = {}
    for mode, flags in MODES.items():
        runs = [cold_run(flags) for _ in range(args.runs)]
        if any(r.returncode for r in runs):
            raise SystemExit(f"the test suite failed ({mode}); fix it before benchmarking")
        rows[mode] = median_run(runs)
    write_result("test_suite", rows)
    print("| what | wall s (median) | CPU s (main process) | runs |")
    print("| --- | ---: | ---: | ---: |")
    for mode, row in rows.items():
        print(f"| `pytest` (whole suite, {mode}) | {row['wall_s']:.1f} | {row['cpu_s']:.1f} | {row['runs']:.0f} |")


if __name__ == "__main__":
    main()
