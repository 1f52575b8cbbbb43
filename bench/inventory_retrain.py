"""A large dataset's whole path: inventory snapshot, one pipeline run, the version materialized exactly.

Usage: python bench/inventory_retrain.py [--objects 1000000] [--workers 2] [--rows-per-file 250000]
                                         [--deliveries 3]

What ``RetrainTrigger(snapshot=...)`` does for a dataset of ``--objects`` objects, measured once:

1. **Data.** S3 Inventory CSV files listing every current version of ``--objects`` objects, an
   older version of every tenth and a delete marker of every fiftieth (``bench/inventory_snapshot``'s
   generator; not timed). Object ``i`` holds ``str(i)``: ``VersionedDirS3`` answers ``GetObject``
   of a version with those bytes, and the inventory records their MD5 and length.
2. **Snapshot.** ``inventory.plan``, ``inventory.shard_file`` for each inventory file on a
   process pool of ``--workers`` (one process is one Lambda worker), ``inventory.finalize``.
3. **Trigger.** The snapshot's ``Step Functions Execution Status Change`` event
   (``cdk_mlops.local.stepfunctions.status_change_entry``, as Step Functions documents it) goes to
   the retrain trigger's handler ``--deliveries`` times, in separate SQS batches (EventBridge
   delivers at least once), against moto's DynamoDB, SQS and SageMaker in process; then the
   run's own end (SageMaker's status change), which releases the lock and wakes the redelivered
   snapshot. Counted: the pipeline executions (must be 1) and their parameters; timed: each
   delivery.
4. **Materialize.** ``datasets.materialize`` of the run's ``InputManifestUri`` into an empty
   directory (in ``/dev/shm`` where there is one), in one process: each object's size and MD5
   are checked against the version. Then the version's entries are compared with the objects of
   step 1, key for key, and the files written with their keys.

The storage is local files, so the numbers measure this library's side (the engine, the
trigger's decision, the reader), not S3. On AWS the download is Preprocess's work, on as many
instances as the pipeline runs. Writes bench/results/inventory_retrain.json and prints a table.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3
from botocore.response import StreamingBody
from moto import mock_aws

from bench.common import TriggerContext, trigger_world, write_result
from bench.inventory_snapshot import BUCKET, DATASET, DirS3, snapshot_run
from bench.inventory_snapshot import generate as generate_inventory
from cdk_mlops import datasets
from cdk_mlops.lambdas.retrain_trigger import PIPELINE_STATUS_CHANGE
from cdk_mlops.lambdas.retrain_trigger import handler as trigger
from cdk_mlops.lambdas.retrain_trigger.log import logger
from cdk_mlops.local.stepfunctions import ExecutionResult, status_change_entry

REGION = "us-east-1"
ACCOUNT = "123456789012"
PIPELINE = "bench-training"
MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:bench-snapshots"
_MEMORY_FS = "/dev/shm"


class VersionedDirS3(DirS3):
    """``DirS3`` that also answers ``GetObject`` of a data object's version: object ``i``, version
    ``v<i:x>``, holds ``str(i)`` (what the inventory records: that text's MD5 and length)."""

    def get_object(self, *, Bucket: str, Key: str, VersionId: str | None = None, **_: Any) -> dict[str, Any]:  # noqa: N803
        if VersionId is None:
            return super().get_object(Bucket=Bucket, Key=Key)
        body = content(int(VersionId.removeprefix("v"), 16))
        return {
            "Body": StreamingBody(io.BytesIO(body), len(body)),
            "ETag": f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"',
            "ContentLength": len(body),
            "VersionId": VersionId,
        }


def content(i: int) -> bytes:
    """Object ``i``'s bytes; the inventory generator records ``md5(str(i))`` as its ETag."""
    return str(i).encode()


def expected_entries(objects: int) -> list[tuple[str, str, str, int]]:
    """The version the inventory describes, in key order: (key, version id, ETag, size)."""
    rows = [
        (
            f"datasets/{DATASET}/part={i % 97:02d}/day {i // 10_000:04d}/file-{i:09d}.csv",
            f"v{i:x}",
            hashlib.md5(content(i), usedforsecurity=False).hexdigest(),
            len(content(i)),
        )
        for i in range(objects)
    ]
    rows.sort()
    return rows


def configure_trigger(queue_url: str) -> None:
    """The handler's environment: one dataset, versioned by the snapshot state machine."""
    os.environ.update(
        PIPELINE_NAME=PIPELINE,
        DATA_BUCKET=BUCKET,
        DATASETS=DATASET,
        STATE_TABLE="retrain-state",
        QUEUE_URL=queue_url,
        COMPARE_WITH_CHAMPION="false",
        SNAPSHOT_STATE_MACHINE_ARN=MACHINE,
        SNAPSHOT_DATASETS=DATASET,
        COOLDOWN_SECONDS="0",  # the run's end wakes the redelivered snapshot at once
        POWERTOOLS_SERVICE_NAME="retrain-trigger",
        POWERTOOLS_METRICS_DISABLED="true",  # the EMF lines would mix with the table on stdout
        AWS_DEFAULT_REGION=REGION,
    )


def status_change(output: dict[str, Any]) -> dict[str, Any]:
    """The EventBridge event of the snapshot's execution ending with ``output``."""
    name = str(uuid.uuid4())
    result = ExecutionResult(f"{MACHINE.replace(':stateMachine:', ':execution:')}:{name}", name, "SUCCEEDED", output)
    now = datetime.now(UTC)
    entry = status_change_entry(result, MACHINE, {"dataset": DATASET}, now, now)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": ACCOUNT,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": entry["Resources"],
        "detail": json.loads(entry["Detail"]),
    }


def pipeline_finished(execution_arn: str) -> dict[str, Any]:
    """SageMaker's status change of the run ending (``Succeeded``)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": PIPELINE_STATUS_CHANGE,
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [execution_arn.split("/execution/", 1)[0], execution_arn],
        "detail": {
            "pipelineArn": execution_arn.split("/execution/", 1)[0],
            "pipelineExecutionArn": execution_arn,
            "currentPipelineExecutionStatus": "Succeeded",
            "previousPipelineExecutionStatus": "Executing",
        },
    }


def deliver(event: dict[str, Any]) -> tuple[float, list[Any]]:
    """One SQS batch of one record to the handler: seconds, and the records it handed back."""
    record = {"messageId": str(uuid.uuid4()), "body": json.dumps(event), "eventSource": "aws:sqs"}
    start = time.perf_counter()
    response = trigger.handler({"Records": [record]}, TriggerContext())
    return time.perf_counter() - start, response["batchItemFailures"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rows-per-file", type=int, default=250_000)
    parser.add_argument("--deliveries", type=int, default=3)
    args = parser.parse_args()
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")  # moto's, never sent anywhere
    logger.setLevel("WARNING")  # one JSON line per decision otherwise
    with tempfile.TemporaryDirectory(prefix="inventory-retrain-") as root:
        report = generate_inventory(root, args.objects, args.rows_per_file, args.workers, content_etags=True)
        with ProcessPoolExecutor(args.workers) as pool:
            snapshot = snapshot_run(root, report, pool)
        output_path = Path(root, BUCKET, snapshot["manifest"].split("/", 3)[3])
        index = json.loads(output_path.read_text())
        output = {
            "dataset": DATASET,
            "manifest": snapshot["manifest"],
            "object_count": index["object_count"],
            "total_bytes": index["total_bytes"],
            "digest": index["sha256"],
            "as_of": index["as_of"],
        }

        with mock_aws():
            configure_trigger(trigger_world(REGION, PIPELINE))
            sm = boto3.client("sagemaker", region_name=REGION)
            trigger.reset_clients()
            event = status_change(output)
            deliveries = [deliver(event) for _ in range(args.deliveries)]
            assert all(not failed for _, failed in deliveries), deliveries
            # The run ends: its end releases the lock and wakes the redelivered snapshot, a version already started.
            [run] = sm.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
            _, failed = deliver(pipeline_finished(run["PipelineExecutionArn"]))
            assert not failed, failed
            summaries = sm.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
            starts = len(summaries)
            parameters = {
                p["Name"]: p["Value"]
                for p in sm.list_pipeline_parameters_for_execution(
                    PipelineExecutionArn=summaries[0]["PipelineExecutionArn"]
                )["PipelineParameters"]
            }
            trigger.reset_clients()
        assert starts == 1, f"{starts} pipeline runs started for one snapshot"
        assert parameters["InputManifestUri"] == output["manifest"]
        assert parameters["ManifestSha256"] == output["digest"]

        s3: Any = VersionedDirS3(root)
        # Memory-backed where the machine has it: creating a million files on a disk measures the disk.
        with tempfile.TemporaryDirectory(
            prefix="materialized-", dir=_MEMORY_FS if Path(_MEMORY_FS).is_dir() else None
        ) as out:
            destination = Path(out)
            start = time.perf_counter()
            written = datasets.materialize(output_path, destination, s3=s3)
            materialize_s = time.perf_counter() - start
            relative = sorted(p.relative_to(destination).as_posix() for p in written)
            files = sum(1 for p in destination.rglob("*") if p.is_file())
        expected = expected_entries(args.objects)
        entries = [(e.key, e.version_id, e.etag, e.size) for e in datasets.iter_entries(output_path)]
        assert entries == expected, "the version does not list exactly the dataset's current objects"
        assert files == args.objects
        assert relative == sorted(k.removeprefix(f"datasets/{DATASET}/") for k, *_ in expected)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    row = {
        "objects": args.objects,
        "inventory_files": snapshot["files"],
        "snapshot_wall_s": round(snapshot["wall_s"], 2),
        "deliveries": args.deliveries,
        "pipeline_runs": starts,
        "first_delivery_ms": round(deliveries[0][0] * 1000, 1),
        "redelivery_ms": round(max(t for t, _ in deliveries[1:]) * 1000, 1) if len(deliveries) > 1 else None,
        "materialize_s": round(materialize_s, 1),
        "materialize_objects_s": round(args.objects / materialize_s),
        "exact": True,
        "peak_rss_mb": round(peak),
    }
    print(f"{row}", file=sys.stderr)
    print(f"One run of {args.objects:,} objects; workers: a process pool of {args.workers}; local files.\n")
    print(
        "| objects | snapshot (plan + shards + finalize) | events delivered | pipeline runs started "
        "| trigger, first delivery | trigger, redelivery | materialize, 1 process | version = the objects |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|:---:|")
    print(
        f"| {row['objects']:,} | {row['snapshot_wall_s']:.1f} s | {row['deliveries']} | {row['pipeline_runs']} "
        f"| {row['first_delivery_ms']:.0f} ms | {row['redelivery_ms'] or 0:.0f} ms "
        f"| {row['materialize_s']:.0f} s ({row['materialize_objects_s']:,} objects/s) | yes, key for key |"
    )
    write_result("inventory_retrain", {"workers": args.workers, "rows_per_file": args.rows_per_file, **row})


if __name__ == "__main__":
    main()
