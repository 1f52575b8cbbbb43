"""Build and validation time of the training pipeline definition (target: a build under 1 ms).

Usage: python bench/pipeline_definition.py [--builds N]
Prints a markdown table and writes bench/results/pipeline_definition.json.

Each operation is timed one call at a time with ``time.perf_counter_ns`` after a warm-up, and
the median and 95th percentile are reported in microseconds. The spec is the default one with
a KMS key and a VPC, so every optional block of the definition is built.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import write_result
from cdk_mlops.pipeline_definition import (
    PipelineSpec,
    ScriptSource,
    TrainingSettings,
    build_pipeline_definition,
    pipeline_spec_problems,
    validate_definition,
)

TARGET_BUILD_US = 1000.0


def spec() -> PipelineSpec:
    return PipelineSpec(
        role_arn="arn:aws:iam::123456789012:role/sagemaker-execution",
        bucket_name="artifacts-bucket",
        model_package_group_name="churn-models",
        sklearn_image_uri="141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
        training_image_uri="141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1",
        model_monitor_image_uri="468650794304.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-model-monitor-analyzer",
        preprocess_script=ScriptSource.from_uri("s3://assets-bucket/preprocess.py"),
        evaluate_script=ScriptSource.from_uri("s3://assets-bucket/evaluate.py"),
        kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        subnet_ids=("subnet-1", "subnet-2"),
        security_group_ids=("sg-1",),
        settings=TrainingSettings(
            use_spot_instances=True, max_wait_seconds=28800, checkpoint_s3_uri="s3://artifacts-bucket/checkpoints"
        ),
    )


def time_us(function: Callable[[], object], runs: int) -> dict[str, float]:
    for _ in range(min(100, runs)):
        function()
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        function()
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return {
        "median_us": round(statistics.median(samples), 1),
        "p95_us": round(samples[int(0.95 * (len(samples) - 1))], 1),
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--builds", type=int, default=1000)
    args = parser.parse_args()
    s = spec()
    definition = build_pipeline_definition(s)
    if validate_definition(definition) or pipeline_spec_problems(s):
        raise SystemExit("the benchmark spec or its definition is invalid")
    rows: list[dict[str, Any]] = [
        {"label": "build_pipeline_definition(spec)", **time_us(lambda: build_pipeline_definition(s), args.builds)},
        {"label": "validate_definition(definition)", **time_us(lambda: validate_definition(definition), args.builds)},
        {"label": "pipeline_spec_problems(spec)", **time_us(lambda: pipeline_spec_problems(s), args.builds)},
        {"label": "json.dumps(definition)", **time_us(lambda: json.dumps(definition), args.builds)},
    ]
    size = len(json.dumps(definition))
    build = rows[0]["median_us"]
    write_result(
        "pipeline_definition",
        {"rows": rows, "definition_bytes": size, "target_build_us": TARGET_BUILD_US, "meets_target": build < 1000},
    )
    print("| what | median µs | p95 µs | runs |")
    print("| --- | ---: | ---: | ---: |")
    for r in rows:
        print(f"| `{r['label']}` | {r['median_us']:.1f} | {r['p95_us']:.1f} | {r['runs']} |")
    verdict = "meets" if build < TARGET_BUILD_US else "MISSES"
    print(f"\nDefinition: {size} bytes of JSON, 7 steps. A build {verdict} the {TARGET_BUILD_US:.0f} µs target.")


if __name__ == "__main__":
    main()
