"""Run every benchmark under bench/ and write bench/RESULTS.md.

Usage: python -m bench [--quick]
Each benchmark is a script that prints a markdown table to stdout and writes
its raw numbers to bench/results/<name>.json; this runner collects the tables.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from bench.common import REPO_ROOT, machine

BENCH_DIR = Path(__file__).resolve().parent

# (script, title, extra arguments for --quick)
BENCHMARKS: list[tuple[str, str, list[str]]] = [
    ("synth.py", "Synth time (offline, no AWS credentials)", ["--runs", "2"]),
    ("suite.py", "Test suite (`pytest`, after install)", ["--runs", "1"]),
    ("pipeline_definition.py", "Pipeline definition build (pure Python)", ["--builds", "200"]),
    ("snapshot.py", "Dataset snapshot (moto server on loopback)", ["--sizes", "1000,10000", "--runs", "1"]),
    (
        "inventory_snapshot.py",
        "Inventory snapshot engine: plan, shard workers on a process pool of 2, finalize (local files)",
        ["--sizes", "10000,100000", "--runs", "1"],
    ),
    (
        "inventory_retrain.py",
        "A large dataset's whole path: inventory snapshot, one pipeline run, the version materialized exactly",
        ["--objects", "100000"],
    ),
    (
        "preprocess_instances.py",
        "Preprocess on one instance and on two (local processes, side by side)",
        ["--rows", "100000", "--runs", "1"],
    ),
    (
        "fleet_trigger.py",
        "Fleet retrain trigger: one RetrainTrigger per pipeline against one FleetRetrainTrigger",
        ["--models", "10,100", "--runs", "1"],
    ),
    (
        "catalogue_synth.py",
        "Model catalogue synth: the Dev stage with 10, 100 and 1,000 models",
        ["--models", "10,100", "--runs", "1"],
    ),
    (
        "retrain.py",
        "Retrain trigger: decisions, 10,000-event burst, cold import",
        ["--runs", "3", "--handler-runs", "1"],
    ),
    (
        "demo.py",
        "`make demo`: local deploy, closed loop, destroy (moto server on loopback, real CDK CLI)",
        ["--runs", "1"],
    ),
    ("mutation.py", "Mutation testing (mutmut; `make mutation`)", []),
    ("ci.py", "Clean-clone CI (`.ci/run`), phase by phase", ["--runs", "1", "--modes", "cold"]),
]
#: Run only when named with --only: mutation testing (`make mutation`) takes about 20 minutes on
#: this machine, and the clean-clone CI runs (`--only ci.py`) about 10 minutes a round.
ON_REQUEST = {"mutation.py", "ci.py"}


def _previous_sections(results: Path) -> dict[str, str]:
    """The sections of an earlier RESULTS.md by title, so `--only` updates a file instead of truncating it."""
    if not results.exists():
        return {}
    sections: dict[str, str] = {}
    for chunk in results.read_text().split("\n## ")[1:]:
        title = chunk.split("\n", 1)[0].strip()
        sections[title] = "## " + chunk
    return sections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs per benchmark (for a smoke check)")
    parser.add_argument("--only", action="append", help="run only these scripts (e.g. synth.py)")
    args = parser.parse_args()
    info = machine()
    sections = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m bench`); medians of several runs unless a row says otherwise.",
        "",
        f"Machine: {info['cpus']} CPUs ({info['cpu']}), {info['memory_gib']} GiB, Python {info['python']}, "
        f"{info['os']}. Measured {time.strftime('%Y-%m-%d', time.gmtime())}.",
    ]
    previous = _previous_sections(BENCH_DIR / "RESULTS.md")
    for script, title, quick_args in BENCHMARKS:
        wanted = script in args.only if args.only else script not in ON_REQUEST
        if not wanted or not (BENCH_DIR / script).exists():
            # Not run this time: keep the section recorded by an earlier run, if any.
            if title in previous:
                sections += ["", previous[title].rstrip()]
            continue
        print(f"== {title} ({script})", flush=True)
        command = [sys.executable, str(BENCH_DIR / script), *(quick_args if args.quick else [])]
        result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        sys.stderr.write(result.stderr[-4000:])
        if result.returncode != 0:
            raise SystemExit(f"{script} failed with exit {result.returncode}")
        print(result.stdout, flush=True)
        sections += ["", f"## {title}", "", f"Command: `python bench/{script}`", "", result.stdout.strip()]
    (BENCH_DIR / "RESULTS.md").write_text("\n".join(sections) + "\n")
    print(f"wrote {BENCH_DIR / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
