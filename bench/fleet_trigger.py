"""Retrain triggers for many pipelines: one RetrainTrigger per pipeline against one FleetRetrainTrigger.

Usage: python bench/fleet_trigger.py [--models 10,100,1000] [--runs 3] [--reference-max 100]

Each run is a child process that builds an app as an outside team would compose the public
constructs: ``Shared`` (a ``VersionedDataStore`` with one dataset per model) and ``ModelsNNN``
stacks of what each model adds, as many models to a stack as fit in 400 resources (CloudFormation
takes 500, and CDK refuses more at synth). Side by side, alternating, in the same run:

* the reference: one ``RetrainTrigger`` per pipeline (17 resources, so 23 models a stack);
* the fleet: one ``FleetRetrainTrigger`` in ``Shared`` and one ``RetrainRoute`` per pipeline (one
  resource, so 400 a stack).

Reported, for each number of models: the child's wall time (import, construct, synth to a temporary
directory, cdk-nag's AwsSolutions checks) and peak RSS, the resources of each stack, the resources
each further model adds, the EventBridge rules (300 per event bus is the default quota) and the
reserved concurrency (1,000 per region by default, of which Lambda keeps 100 unreserved). The pipelines
themselves are left out: this measures the trigger. The reference is run up to ``--reference-max``
models, since its cost is linear (a whole trigger per model). Medians of ``--runs`` runs.

Prints a markdown table and writes bench/results/fleet_trigger.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ProcessRun, run_app, write_result

_APP = r"""
import json, sys, collections
import aws_cdk as cdk
from cdk_mlops.compliance import apply_compliance
from cdk_mlops import FleetRetrainTrigger, RetrainRoute, RetrainTrigger, VersionedDataStore

kind, models, outdir, report = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
app = cdk.App(outdir=outdir)
env = cdk.Environment(account="123456789012", region="eu-west-1")
shared = cdk.Stack(app, "Shared", env=env)
names = [f"m{i:04d}" for i in range(models)]
store = VersionedDataStore(shared, "Data", datasets=names)
# CloudFormation takes at most 500 resources a stack (and CDK refuses more at synth): each kind
# fills stacks of at most 400 resources, 17 a model for a RetrainTrigger, 1 for a route.
per_stack = 400 // (1 if kind == "fleet" else 17)
stacks = [cdk.Stack(app, f"Models{i:03d}", env=env) for i in range((models + per_stack - 1) // per_stack)]
if kind == "fleet":
    fleet = FleetRetrainTrigger(shared, "Retrain", data_store=store, pipeline_name_prefix="prod-")
    for index, name in enumerate(names):
        stack = stacks[index // per_stack]
        RetrainRoute(stack, name, trigger=fleet, pipeline_name=f"prod-{name}", datasets=[name])
else:
    for index, name in enumerate(names):
        stack = stacks[index // per_stack]
        RetrainTrigger(stack, name, data_store=store, datasets=[name], pipeline_name=f"prod-{name}")
apply_compliance(app)
assembly = app.synth()
counts = {}
for artifact in assembly.stacks:
    types = collections.Counter(r["Type"] for r in artifact.template["Resources"].values())
    counts[artifact.stack_name] = dict(types)
functions = [
    r for a in assembly.stacks for r in a.template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
]
concurrency = sum(f["Properties"].get("ReservedConcurrentExecutions", 0) for f in functions)
with open(report, "w") as out:
    json.dump({"counts": counts, "reserved_concurrency": concurrency}, out)
"""


def _run(kind: str, models: int) -> tuple[ProcessRun, dict[str, Any]]:
    run, report = run_app(_APP, kind, str(models), what=f"{kind} with {models} models")
    return run, dict(report)


def measure(models: int, runs: int, reference: bool) -> dict[str, Any]:
    """Medians of ``runs`` alternating runs of each kind, and the counts of the last."""
    kinds = ["reference", "fleet"] if reference else ["fleet"]
    timed: dict[str, list[ProcessRun]] = {k: [] for k in kinds}
    counts: dict[str, dict[str, Any]] = {}
    for _ in range(runs):
        for kind in kinds:
            run, counts[kind] = _run(kind, models)
            timed[kind].append(run)
    out: dict[str, Any] = {}
    for kind in kinds:
        per_stack = {name: sum(types.values()) for name, types in counts[kind]["counts"].items()}
        rules = sum(types.get("AWS::Events::Rule", 0) for types in counts[kind]["counts"].values())
        model_stacks = [n for n in per_stack if n != "Shared"]
        out[kind] = {
            "wall_s": round(statistics.median(r.wall_s for r in timed[kind]), 2),
            "peak_rss_mb": round(statistics.median(r.peak_rss_mb for r in timed[kind]), 1),
            "resources": per_stack,
            "shared": per_stack["Shared"],
            "model_stacks": len(model_stacks),
            "model_resources": sum(per_stack[n] for n in model_stacks),
            "largest_stack": max(per_stack.values()),
            "types": counts[kind]["counts"],
            "rules": rules,
            "reserved_concurrency": counts[kind]["reserved_concurrency"],
            "runs": runs,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--models", default="10,100,1000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reference-max", type=int, default=100)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.models.split(",")]
    results = {str(n): measure(n, args.runs, n <= args.reference_max) for n in sizes}
    print(
        f"`Shared` and stacks of up to 400 resources; medians of {args.runs} runs, alternating, "
        "synth and cdk-nag included.\n"
    )
    print(
        "| models | trigger | wall s | peak RSS MB | `Shared` | model stacks | their resources | per model | "
        "largest stack | rules | reserved concurrency |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for models, by_kind in results.items():
        for kind, measured in by_kind.items():
            label = "`RetrainTrigger` each (reference)" if kind == "reference" else "`FleetRetrainTrigger` + routes"
            per_model = measured["model_resources"] / int(models)
            print(
                f"| {int(models):,} | {label} | {measured['wall_s']} | {measured['peak_rss_mb']} | "
                f"{measured['shared']} | {measured['model_stacks']} | {measured['model_resources']:,} | "
                f"{per_model:g} | {measured['largest_stack']} | {measured['rules']:,} | "
                f"{measured['reserved_concurrency']:,} |"
            )
    write_result("fleet_trigger", {"runs": args.runs, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
