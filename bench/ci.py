"""A clean-clone `.ci/run`, phase by phase: install, lint, typecheck and the pytest phase.

Each run clones a git revision into a new temporary folder and runs there, with ``CI=true``, the
targets `make test` runs: `make install`, then `make lint`, `make typecheck` and `make unit`, each
timed on its own. The caches every checkout shares (``CDK_MLOPS_CACHE_DIR``: mypy's, and
cfn-lint's results) start

- ``cold``: empty, as on a machine that never ran the tests;
- ``warm``: as the previous (cold) run of the same revision left them, as on a CI machine that
  ran the tests before. Every file is then in mypy's cache and every template in cfn-lint's.

pip's and uv's download caches are the machine's own in every run, so downloads are not what is
measured. With ``--reference REV``, a clean clone of REV runs in each round too, after this
revision's, so that both are measured side by side on the same machine; revisions that keep their
caches inside the clone start cold whatever the mode.

Usage: python bench/ci.py [--runs N] [--revision REV] [--reference REV] [--modes cold,warm]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO_ROOT, ProcessRun, median_run, run_process, write_result

#: The targets `make test` runs, in its order, after `make install`.
PHASES = ("install", "lint", "typecheck", "unit")
MODES = ("cold", "warm")
#: The slowest phase (the pytest phase of a cold run) takes about 7 minutes here.
PHASE_TIMEOUT_S = 1800


def clean_clone_run(revision: str, cache: Path) -> dict[str, ProcessRun]:
    """Clone ``revision`` into a new folder and time each phase there; the folder is removed afterwards.

    Raises:
        SystemExit: a phase failed; its log's end is printed.
    """
    parent = Path(tempfile.mkdtemp(prefix="cdk-mlops-ci-"))
    clone = parent / "main"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO_ROOT), str(clone)], check=True)
    subprocess.run(["git", "checkout", "--quiet", "--detach", revision], cwd=clone, check=True)
    # The machine's environment, as CI's, without this checkout's virtualenv or package path.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env |= {"CI": "true", "CDK_MLOPS_CACHE_DIR": str(cache)}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(REPO_ROOT)))
    timings: dict[str, ProcessRun] = {}
    try:
        for phase in PHASES:
            log = parent / f"{phase}.log"
            command = f"make {phase} > {log} 2>&1"
            run = run_process(["bash", "-c", command], cwd=clone, env=env, timeout=PHASE_TIMEOUT_S)
            if run.returncode != 0:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
                raise SystemExit(f"`make {phase}` failed on a clean clone of {revision}:\n{tail}")
            timings[phase] = run
    finally:
        shutil.rmtree(parent, ignore_errors=True)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--revision", default="HEAD", help="the committed revision to clone (default: HEAD)")
    parser.add_argument("--reference", metavar="REV", help="also run a clean clone of REV in each round")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {list(MODES)}")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if not modes or set(modes) - set(MODES):
        raise SystemExit(f"--modes takes some of {list(MODES)}, comma-separated; got {args.modes!r}")
    revision = subprocess.run(
        ["git", "rev-parse", "--short", args.revision], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()

    runs: dict[str, list[dict[str, ProcessRun]]] = {}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="cdk-mlops-cache-") as cache:
            # The cold run always runs: a warm run follows it and finds the caches it filled.
            cold = clean_clone_run(revision, Path(cache))
            if "cold" in modes:
                runs.setdefault(f"{revision} cold", []).append(cold)
            if "warm" in modes:
                runs.setdefault(f"{revision} warm", []).append(clean_clone_run(revision, Path(cache)))
        if args.reference:
            with tempfile.TemporaryDirectory(prefix="cdk-mlops-cache-") as cache:
                runs.setdefault(f"{args.reference} cold", []).append(clean_clone_run(args.reference, Path(cache)))

    rows: dict[str, dict[str, dict[str, float]]] = {}
    for label, measured in runs.items():
        rows[label] = {phase: median_run([run[phase] for run in measured]) for phase in PHASES}
        totals = [sum(run[phase].wall_s for phase in PHASES) for run in measured]
        rows[label]["total"] = {"wall_s": round(statistics.median(totals), 3), "runs": len(totals)}
    # Each run's wall times too, in the order they ran: on a noisy machine a median of two hides
    # which run was the odd one.
    each = {
        label: [{phase: round(run[phase].wall_s, 1) for phase in PHASES} for run in measured]
        for label, measured in runs.items()
    }
    write_result("ci", {"revision": revision, "reference": args.reference, "rows": rows, "runs": each})
    print("| clean clone | install s | lint s | typecheck s | pytest phase s | whole run s | runs |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, row in rows.items():
        cells = " | ".join(f"{row[phase]['wall_s']:.1f}" for phase in PHASES)
        print(f"| `{label}` | {cells} | {row['total']['wall_s']:.1f} | {row['total']['runs']:.0f} |")


if __name__ == "__main__":
    main()
