"""Synth of the reference platform with a model catalogue of 10, 100 and 1,000 models.

Usage: python bench/catalogue_synth.py [--models 10,100,1000] [--runs 3] [--large-runs 1]
       python bench/catalogue_synth.py --models 60 --serving realtime,async,serverless,shared

Each run is a child process that builds the Dev stage of the reference platform
(``build_platform``: guardrails and cdk-nag's AwsSolutions checks included) with a catalogue of
``--models`` models, each on its own dataset, and synthesizes it to a temporary directory. The
model stacks are as many as keep each under 400 resources (``model_stacks`` = models / 50,
rounded up). Reported: wall time and peak RSS of the child, the stacks, the resources of the
largest stack, of all model stacks, and per model, and the resources of the other stacks. Goals
of issue 17: 1,000 models in under 120 s, no stack over 400 resources, at most 5 resources a
model. Medians of ``--runs`` runs (``--large-runs`` for catalogues of 1,000 and more).

With ``--serving``, every model is also served in each mode given (its ``serving`` key with an
approved version), one catalogue per mode side by side with the unserved reference, the modes
alternating within each round of runs, and the model stacks sized for the mode's resources
(about 200 a stack); the results go to bench/results/catalogue_synth_serving.json.

Prints a markdown table and writes bench/results/catalogue_synth.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ProcessRun, run_app, write_result
from cdk_mlops.catalogue import RESOURCES_PER_MODEL, SERVING_RESOURCES, ServingMode

_APP = r"""
import collections, json, sys
import aws_cdk as cdk
from cdk_mlops.config import load_environments
from cdk_mlops.stacks.stage import build_platform

models, stacks, mode, outdir, report = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
package = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/m/1"
serving = {} if mode == "none" else {"serving": {"mode": mode, "model_package_arn": package}}
catalogue = {f"m{i:04d}": {"dataset": f"d{i:04d}", **serving} for i in range(models)}
configs = load_environments({"dev": {"models": catalogue, "model_stacks": stacks}})
app = cdk.App(outdir=outdir)
(stage,) = build_platform(app, configs)
assembly = app.synth().get_nested_assembly(stage.artifact_id)
counts = {
    stack.node.id: len(assembly.get_stack_artifact(stack.artifact_id).template["Resources"])
    for stack in stage.node.children
    if isinstance(stack, cdk.Stack)
}
with open(report, "w") as out:
    json.dump(counts, out)
"""


def _run(models: int, mode: str, by_resources: bool) -> tuple[ProcessRun, dict[str, int]]:
    if not by_resources:
        stacks = max(1, -(-models // 50))
    else:
        # About half of a stack's 400 resources, so that the hash's uneven spread stays under 400.
        per_model = RESOURCES_PER_MODEL + (0 if mode == "none" else SERVING_RESOURCES[ServingMode(mode)])
        stacks = max(1, -(-models * per_model // 200))
    what = f"a catalogue of {models} models served {mode}"
    run, report = run_app(_APP, str(models), str(stacks), mode, what=what, timeout=3600)
    return run, dict(report)


def measure(models: int, runs: int, mode: str = "none", by_resources: bool = False) -> dict[str, Any]:
    """Medians of ``runs`` runs, and the resource counts (the same in every run).

    ``by_resources`` sizes the model stacks by the models' resources (the comparison with
    serving, the unserved reference included); otherwise there is a stack for every 50 models.
    """
    timed: list[ProcessRun] = []
    counts: dict[str, int] = {}
    for _ in range(runs):
        run, counts = _run(models, mode, by_resources)
        timed.append(run)
    return _summary(models, timed, counts)


def _summary(models: int, timed: list[ProcessRun], counts: dict[str, int]) -> dict[str, Any]:
    model_stacks = {k: v for k, v in counts.items() if k.startswith("Models")}
    return {
        "wall_s": round(statistics.median(r.wall_s for r in timed), 1),
        "peak_rss_mb": round(statistics.median(r.peak_rss_mb for r in timed), 1),
        "stacks": len(counts),
        "model_stacks": len(model_stacks),
        "largest_stack": max(counts.values()),
        "model_resources": sum(model_stacks.values()),
        "per_model": round(sum(model_stacks.values()) / models, 2),
        "other_resources": {k: v for k, v in counts.items() if not k.startswith("Models")},
        "runs": len(timed),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--models", default="10,100,1000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--large-runs", type=int, default=1)
    parser.add_argument("--serving", help="serving modes to compare with the unserved catalogue, e.g. realtime,shared")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.models.split(",")]
    if args.serving:
        return _serving(sizes, [m.strip() for m in args.serving.split(",")], args.runs)
    results = {str(n): measure(n, args.large_runs if n >= 1000 else args.runs) for n in sizes}
    print("The Dev stage with a catalogue; guardrails and cdk-nag included; medians of the runs shown.\n")
    print("| models | runs | wall s | peak RSS MB | stacks | model stacks | largest stack | resources per model |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for models, measured in results.items():
        print(
            f"| {int(models):,} | {measured['runs']} | {measured['wall_s']} | {measured['peak_rss_mb']} | "
            f"{measured['stacks']} | {measured['model_stacks']} | {measured['largest_stack']} | "
            f"{measured['per_model']} |"
        )
    write_result("catalogue_synth", {"results": results})
    return 0


def _serving(sizes: list[int], modes: list[str], runs: int) -> int:
    """The unserved catalogue and the same catalogue served in each mode, alternating, per size."""
    unknown = sorted(set(modes) - {m.value for m in ServingMode})
    if unknown:
        raise SystemExit(f"unknown serving modes {unknown}; use {', '.join(m.value for m in ServingMode)}")
    # The modes alternate within each round, so that a slow spell of the machine falls on all of them.
    timed: dict[str, list[ProcessRun]] = {}
    counts: dict[str, dict[str, int]] = {}
    for models in sizes:
        for _ in range(runs):
            for mode in ["none", *modes]:
                key = f"{models} {mode}"
                run, counts[key] = _run(models, mode, by_resources=True)
                timed.setdefault(key, []).append(run)
    results = {key: _summary(int(key.split()[0]), timed[key], counts[key]) for key in timed}
    print("The Dev stage with a catalogue, each model served in the mode shown; medians of the runs shown.\n")
    print("| models | serving | runs | wall s | stacks | largest stack | resources a model (model stacks) | others |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for key, measured in results.items():
        size, mode = key.split()
        others = ", ".join(f"{k} {v}" for k, v in sorted(measured["other_resources"].items()))
        print(
            f"| {int(size):,} | {mode} | {measured['runs']} | {measured['wall_s']} | {measured['stacks']} | "
            f"{measured['largest_stack']} | {measured['per_model']} | {others} |"
        )
    write_result("catalogue_synth_serving", {"results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
