"""Synth time: `python app.py` for all environments and for each one, and `cdk synth` via the CLI.

Usage: python bench/synth.py [--runs N]
Prints a markdown table and writes bench/results/synth.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO_ROOT, median_run, run_process, write_result
from cdk_mlops.local.examples import with_example_models

# Where the time goes: starting aws-cdk-lib (the jsii Node.js process, the library) with an empty app.
EMPTY_APP = "import aws_cdk as cdk; cdk.App().synth()"


def offline_env(home: Path, outdir: Path, context: dict[str, Any]) -> dict[str, str]:
    """The environment `cdk synth` gives app.py, minus every AWS variable and ~/.aws."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    # Keep the jsii package cache warm although HOME moves: a cold cache costs seconds per run.
    env.setdefault("JSII_RUNTIME_PACKAGE_CACHE_ROOT", str(Path.home() / ".cache" / "aws" / "jsii" / "package-cache"))
    env.update(HOME=str(home), CDK_OUTDIR=str(outdir), CDK_CONTEXT_JSON=json.dumps(context))
    env["PATH"] = f"{REPO_ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["CDK_DISABLE_VERSION_CHECK"] = "1"
    env["CDK_DISABLE_CLI_TELEMETRY"] = "1"
    return env


def count_resources(outdir: Path) -> tuple[int, int]:
    """(stacks, resources) in a synthesized cloud assembly, nested stages included."""
    stacks = resources = 0
    for template in outdir.rglob("*.template.json"):
        stacks += 1
        resources += len(json.loads(template.read_text()).get("Resources", {}))
    return stacks, resources


def measure(label: str, argv: list[str], context: dict[str, Any], runs: int) -> dict[str, Any]:
    samples = []
    stacks = resources = 0
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            outdir = Path(tmp) / "cdk.out"
            command = [a.replace("{outdir}", str(outdir)) for a in argv]
            run = run_process(command, env=offline_env(Path(tmp), outdir, context))
            if run.returncode != 0:
                raise SystemExit(f"{label}: exit {run.returncode}")
            stacks, resources = count_resources(outdir)
            samples.append(run)
    return {"label": label, "stacks": stacks, "resources": resources, **median_run(samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    python = str(REPO_ROOT / ".venv" / "bin" / "python")
    rows = [
        measure("python app.py (all environments and the delivery pipelines)", [python, "app.py"], context, args.runs)
    ]
    # The environments alone, as the local deployment synthesizes them (-c tooling=null).
    alone = {**context, "tooling": None}
    rows.append(measure("python app.py (all environments, no pipelines)", [python, "app.py"], alone, args.runs))
    # The whole platform: every environment also serves a model (serving stack, monitor in staging/prod).
    full = with_example_models(context)
    rows.append(
        measure(
            "python app.py (all environments each serving a model, and the pipelines)",
            [python, "app.py"],
            full,
            args.runs,
        )
    )
    for name in context["environments"]:
        one = {**alone, "environments": {name: context["environments"][name]}}
        rows.append(measure(f"python app.py ({name} only, no pipelines)", [python, "app.py"], one, args.runs))
    rows.append(measure("empty app: start aws-cdk-lib, synthesize nothing", [python, "-c", EMPTY_APP], {}, args.runs))
    cdk = str(REPO_ROOT / "node_modules" / ".bin" / "cdk")
    cli_runs = max(1, min(3, args.runs))
    rows.append(
        measure(
            "cdk synth --quiet (CLI, all environments and the delivery pipelines)",
            [cdk, "synth", "--quiet", "--output", "{outdir}"],
            context,
            cli_runs,
        )
    )
    write_result("synth", {"rows": rows})
    print("| what | stacks | resources | wall s (median) | CPU s | peak RSS MB | runs |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['label']} | {r['stacks']} | {r['resources']} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} "
            f"| {r['peak_rss_mb']:.0f} | {r['runs']} |"
        )


if __name__ == "__main__":
    main()
