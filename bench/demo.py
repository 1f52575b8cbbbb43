"""Wall time of the local deploy: `python -m cdk_mlops.local deploy` (own moto server, bootstrap, deploy Dev, check).

Usage: python bench/demo.py [--runs N]
Prints a markdown table and writes bench/results/demo.json. Each run is a fresh process with a
fresh server, so every run bootstraps. The CDK CLI's own start-up (`cdk --version`) is measured
too, since every CLI step pays it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO_ROOT, median_run, run_process, write_result

STEPS = ("server", "bootstrap", "deploy", "check")


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PATH"] = f"{REPO_ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        CDK_DISABLE_VERSION_CHECK="1", CDK_DISABLE_CLI_TELEMETRY="1", JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1"
    )
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    python = str(REPO_ROOT / ".venv" / "bin" / "python")
    runs = []
    steps: list[dict[str, Any]] = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            timings = Path(tmp) / "timings.json"
            run = run_process([python, "-m", "cdk_mlops.local", "deploy", "--timings", str(timings)], env=cli_env())
            if run.returncode != 0:
                raise SystemExit(f"the local deploy failed with exit {run.returncode}")
            runs.append(run)
            steps.append(json.loads(timings.read_text()))
    cdk = str(REPO_ROOT / "node_modules" / ".bin" / "cdk")
    startup = [run_process([cdk, "--version"], env=cli_env()) for _ in range(3)]
    deploy = median_run(runs)
    step_medians = {step: round(statistics.median(s.get(f"{step}_s", 0.0) for s in steps), 2) for step in STEPS}
    cli_startup = median_run(startup)
    write_result(
        "demo", {"local_deploy": deploy, "steps_median_s": step_medians, "runs": steps, "cdk_version": cli_startup}
    )
    print("| what | wall s (median) | CPU s (process tree) | peak RSS MB (largest process) | runs |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(
        f"| `python -m cdk_mlops.local deploy` (server, bootstrap, deploy Dev, check) | {deploy['wall_s']:.1f} "
        f"| {deploy['cpu_s']:.1f} | {deploy['peak_rss_mb']:.0f} | {deploy['runs']} |"
    )
    for step in STEPS:
        print(f"| &nbsp;&nbsp;step: {step} | {step_medians[step]:.1f} | | | {len(steps)} |")
    print(
        f"| `cdk --version` (CLI start-up, paid by every CLI step) | {cli_startup['wall_s']:.2f} "
        f"| | | {cli_startup['runs']} |"
    )
    print()
    print(
        "The deploy step is one `cdk deploy 'Dev/*'`: CLI start-up, synthesis (`python app.py` for Dev "
        "only, see the synth benchmark), asset publishing, then one change set per stack; moto answers "
        "each CloudFormation call synchronously, so the CLI's stack polling adds well under a second."
    )


if __name__ == "__main__":
    main()
