"""Wall time of `make demo`'s command: `python -m cdk_mlops.local demo`.

One run is: own moto server, bootstrap, deploy Dev with the demo's catalogue of three models,
check, the closed loop (data → retrain trigger → executions → local pipeline steps → model
package → decisions), the fleet loop (two catalogue models retrained at once through the fleet
trigger), destroy, stop.
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

STEPS = ("server", "bootstrap", "deploy", "check", "loop", "fleet", "destroy")


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
            run = run_process([python, "-m", "cdk_mlops.local", "demo", "--timings", str(timings)], env=cli_env())
            if run.returncode != 0:
                raise SystemExit(f"the demo failed with exit {run.returncode}")
            runs.append(run)
            steps.append(json.loads(timings.read_text()))
    cdk = str(REPO_ROOT / "node_modules" / ".bin" / "cdk")
    startup = [run_process([cdk, "--version"], env=cli_env()) for _ in range(3)]
    demo = median_run(runs)
    step_medians = {step: round(statistics.median(s.get(f"{step}_s", 0.0) for s in steps), 2) for step in STEPS}
    cli_startup = median_run(startup)
    write_result("demo", {"demo": demo, "steps_median_s": step_medians, "runs": steps, "cdk_version": cli_startup})
    print("| what | wall s (median) | CPU s (process tree) | peak RSS MB (largest process) | runs |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(
        f"| `python -m cdk_mlops.local demo` (`make demo` after install) | {demo['wall_s']:.1f} "
        f"| {demo['cpu_s']:.1f} | {demo['peak_rss_mb']:.0f} | {demo['runs']} |"
    )
    for step in STEPS:
        print(f"| &nbsp;&nbsp;step: {step} | {step_medians[step]:.1f} | | | {len(steps)} |")
    print(
        f"| `cdk --version` (CLI start-up, paid by every CLI step) | {cli_startup['wall_s']:.2f} "
        f"| | | {cli_startup['runs']} |"
    )
    print()
    print(
        "The deploy step is one `cdk deploy 'Dev/*'` of Dev and the demo's three catalogue models (four "
        "stacks): CLI start-up, synthesis (`python app.py` for Dev only, see the synth benchmark), asset "
        "publishing, then one change set per stack; moto answers each CloudFormation call synchronously, "
        "so the CLI's stack polling adds well under a second. The loop step runs the retrain handler "
        "in-process on simulated time (no waiting) and the pipeline's preprocess, train and evaluate "
        "scripts as three local processes; the fleet step runs the fleet handler the same way for two "
        "models at once."
    )


if __name__ == "__main__":
    main()
