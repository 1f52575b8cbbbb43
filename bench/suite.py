"""Wall time of the whole test suite (`pytest`), after installation.

Usage: python bench/suite.py [--runs N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO_ROOT, median_run, run_process, write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    pytest = str(REPO_ROOT / ".venv" / "bin" / "pytest")
    runs = [run_process([pytest, "-q", "-x"]) for _ in range(args.runs)]
    if any(r.returncode for r in runs):
        raise SystemExit("the test suite failed; fix it before benchmarking")
    row = median_run(runs)
    write_result("test_suite", row)
    print("| what | wall s (median) | CPU s (main process) | runs |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| `pytest` (whole suite) | {row['wall_s']:.1f} | {row['cpu_s']:.1f} | {row['runs']} |")


if __name__ == "__main__":
    main()
