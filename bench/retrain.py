"""Retrain trigger: core decision throughput, handler time per 10,000-event burst (moto), package import time.

Usage: python bench/retrain.py [--runs N]
Prints a markdown table and writes bench/results/retrain.json.

* Core throughput: parse, route, aggregate and decide 10,000 SQS records of S3
  events, pure core, median of 5 (``--runs``).
* Handler burst: a fresh in-process moto world per run (versioned bucket with
  10,000 objects, DynamoDB table, SQS queue, SageMaker pipeline); the 10,000
  events are delivered as 4 batches of 2,500 (what fits in Lambda's 6 MB), then
  the delayed checks that start the execution. Median of 3. The start is
  dominated by moto's ListObjectVersions, which copies the whole bucket per
  page; it is reported separately from the ingestion of the events.
* Import time: ``python -X importtime -c "import cdk_mlops.lambdas.retrain_trigger.handler"``
  in 5 fresh processes; the handler's cumulative import time (boto3 and Powertools for AWS
  Lambda included: the deployed function gets Powertools from its layer, this measures the
  virtualenv's copy), median. Of it: boto3's cumulative time, and Powertools' own modules
  (the self time of every ``aws_lambda_powertools`` module).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO_ROOT, TriggerContext, trigger_world, write_result

BUCKET = "bench-data-123456789012"
DATASET = "churn"
PIPELINE = "churn-training"
GROUP = f"{PIPELINE}-models"
REGION = "eu-west-1"
EVENTS = 10_000
BATCH = 2_500
T0 = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)


def s3_event(key: str, size: int = 8) -> dict[str, Any]:
    """An EventBridge ``Object Created`` event shaped like the real one."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2025-03-04T10:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:s3:::{BUCKET}"],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {
                "key": key,
                "size": size,
                "etag": "e5ebd4c02cefbe7955977c67ada242b7",
                "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
                "sequencer": "617f08299329d189",
            },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "10.0.12.34",
            "reason": "PutObject",
        },
    }


def sqs_record(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "AQEB" + uuid.uuid4().hex,
        "body": json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1741083331000"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:retrain-trigger",
        "awsRegion": REGION,
    }


def keys() -> list[str]:
    return [f"datasets/{DATASET}/2025-03-04/part-{i:05d}.csv" for i in range(EVENTS)]


# --- core -----------------------------------------------------------------------------------------


def core_throughput(runs: int) -> dict[str, Any]:
    from cdk_mlops.lambdas.retrain_trigger import core, events

    settings = core.Settings.from_env(
        {
            "PIPELINE_NAME": PIPELINE,
            "DATA_BUCKET": BUCKET,
            "DATASETS": DATASET,
            "STATE_TABLE": "t",
            "QUEUE_URL": "q",
            "MODEL_PACKAGE_GROUP_NAME": GROUP,
        }
    )
    records = [sqs_record(s3_event(key)) for key in keys()]
    timings: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        plan = core.plan_batch([events.parse_record(r) for r in records], settings, T0)
        for batch in plan.datasets.values():
            touch = core.touch_for(batch, settings, T0)
            state = core.apply_touch(core.DatasetState(), touch)
            core.decide(batch, state, core.PipelineState(), settings, T0)
        timings.append(time.perf_counter() - start)
        assert plan.datasets[DATASET].objects == EVENTS
    median = statistics.median(timings)
    return {"events": EVENTS, "seconds_median": round(median, 4), "events_per_second": round(EVENTS / median)}


# --- handler against moto ---------------------------------------------------------------------------


def handler_burst_once() -> dict[str, float]:
    import boto3
    from moto import mock_aws
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    from cdk_mlops.lambdas.retrain_trigger import handler

    with mock_aws():
        handler.reset_clients()
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        queue_url = trigger_world(REGION, PIPELINE, group=GROUP)
        sm = boto3.client("sagemaker", region_name=REGION)
        os.environ.update(
            PIPELINE_NAME=PIPELINE,
            DATA_BUCKET=BUCKET,
            DATASETS=DATASET,
            STATE_TABLE="retrain-state",
            QUEUE_URL=queue_url,
            MODEL_PACKAGE_GROUP_NAME=GROUP,
            MODE="QUIET_PERIOD",
            QUIET_PERIOD_SECONDS="60",
        )
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for key in keys():
            backend.put_object(BUCKET, key, b"a,b\n1,2\n")
        records = [sqs_record(s3_event(key)) for key in keys()]
        sent: list[dict[str, Any]] = []
        sqs = handler._sqs()
        send = sqs.send_message

        def spy(**kwargs: Any) -> Any:
            sent.append(json.loads(kwargs["MessageBody"]))
            return send(**kwargs)

        sqs.send_message = spy  # type: ignore[method-assign]
        clock = {"now": T0}
        handler._now = lambda: clock["now"]
        context = TriggerContext()

        start = time.perf_counter()
        for i in range(0, EVENTS, BATCH):
            result = handler.handler({"Records": records[i : i + BATCH]}, context)
            assert result == {"batchItemFailures": []}, result
            clock["now"] += timedelta(seconds=1)
        ingest = time.perf_counter() - start
        checks_start = time.perf_counter()
        while not sm.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]:
            due = sent.pop()
            clock["now"] = datetime.fromtimestamp(due["detail"]["due"], UTC)
            handler.handler({"Records": [sqs_record(due)]}, context)
        start_seconds = time.perf_counter() - checks_start
        executions = sm.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
        assert len(executions) == 1
        handler.reset_clients()
    return {"ingest_s": ingest, "start_s": start_seconds, "total_s": ingest + start_seconds}


def handler_burst(runs: int) -> dict[str, Any]:
    saved = dict(os.environ)
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - the handler's log lines would swamp the table
    stdout = sys.stdout
    try:
        sys.stdout = devnull
        results = [handler_burst_once() for _ in range(runs)]
    finally:
        sys.stdout = stdout
        devnull.close()
        os.environ.clear()
        os.environ.update(saved)
    return {
        "events": EVENTS,
        "batches": EVENTS // BATCH,
        "ingest_s_median": round(statistics.median(r["ingest_s"] for r in results), 3),
        "start_s_median": round(statistics.median(r["start_s"] for r in results), 3),
        "total_s_median": round(statistics.median(r["total_s"] for r in results), 3),
        "runs": runs,
    }


# --- import time ------------------------------------------------------------------------------------


def import_time(runs: int) -> dict[str, Any]:
    module = "cdk_mlops.lambdas.retrain_trigger.handler"
    handler_us: list[int] = []
    boto3_us: list[int] = []
    powertools_us: list[int] = []
    for _ in range(runs):
        completed = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        powertools_us.append(0)
        for line in completed.stderr.splitlines():
            parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
            if len(parts) != 3 or not parts[0].isdigit():
                continue
            if parts[2] == module:
                handler_us.append(int(parts[1]))
            if parts[2] == "boto3":
                boto3_us.append(int(parts[1]))
            if parts[2].split(".")[0] == "aws_lambda_powertools":
                powertools_us[-1] += int(parts[0])
    return {
        "handler_ms_median": round(statistics.median(handler_us) / 1000, 1),
        "boto3_ms_median": round(statistics.median(boto3_us) / 1000, 1),
        "powertools_ms_median": round(statistics.median(powertools_us) / 1000, 1),
        "target_ms": 300,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs for the core and import measurements (default 5)")
    parser.add_argument("--handler-runs", type=int, default=3, help="runs of the moto burst (default 3)")
    args = parser.parse_args()

    core_result = core_throughput(args.runs)
    imports = import_time(args.runs)
    burst = handler_burst(args.handler_runs)
    print("| Measure | Median | Detail |")
    print("| --- | --- | --- |")
    print(
        f"| Core decisions | {core_result['events_per_second']:,} events/s | "
        f"{EVENTS:,} records in {core_result['seconds_median']} s, pure core, {args.runs} runs |"
    )
    print(
        f"| Handler, 10,000-event burst (moto) | {burst['total_s_median']} s | "
        f"ingest {burst['ingest_s_median']} s in {burst['batches']} batches + start {burst['start_s_median']} s "
        f"(manifest of 10,000 objects listed from moto), {burst['runs']} runs |"
    )
    print(
        f"| Handler import (cold start) | {imports['handler_ms_median']} ms | "
        f"boto3 {imports['boto3_ms_median']} ms and Powertools' own modules {imports['powertools_ms_median']} ms "
        f"of it; target < 300 ms, {imports['runs']} fresh processes |"
    )
    path = write_result("retrain", {"core": core_result, "handler_burst": burst, "import": imports})
    print(f"\nwrote {path.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
