"""Helpers shared by the benchmarks: timing child processes, medians, machine description."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"


@dataclass(frozen=True)
class ProcessRun:
    """Wall time, CPU time and peak memory of one child process."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    returncode: int


def run_process(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path = REPO_ROOT, timeout: float = 900
) -> ProcessRun:
    """Run a command to completion and measure it (CPU and RSS from wait4, so only this child counts)."""
    start = time.perf_counter()
    with (
        tempfile.TemporaryFile() as errors,
        subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env) if env is not None else None, stdout=subprocess.DEVNULL, stderr=errors
        ) as process,
    ):
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                raise TimeoutError(f"{argv} took longer than {timeout} s")
            time.sleep(0.01)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            sys.stderr.write(errors.read().decode(errors="replace")[-4000:])
    wall = time.perf_counter() - start
    # ru_maxrss of the direct child; on Linux it is in KiB.
    return ProcessRun(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, process.returncode)


def run_app(code: str, *args: str, what: str, timeout: float = 1800) -> tuple[ProcessRun, Any]:
    """Run a CDK app (Python ``code``) in a child process, offline, and measure it.

    The child gets ``args``, then an output directory and a report path; it writes JSON to the
    report, which is returned with the measurement.

    Raises:
        RuntimeError: if the child fails; ``what`` names the run.
    """
    with tempfile.TemporaryDirectory() as work:
        report = Path(work) / "report.json"
        env = {
            "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
            "HOME": work,
            "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
            "CDK_DISABLE_VERSION_CHECK": "1",
        }
        argv = [sys.executable, "-c", code, *args, str(Path(work) / "out"), str(report)]
        run = run_process(argv, env=env, timeout=timeout)
        if run.returncode != 0:
            raise RuntimeError(f"{what} failed")
        return run, json.loads(report.read_text())


def median_run(runs: Sequence[ProcessRun]) -> dict[str, float]:
    """Medians of each measure over several runs."""
    return {
        "wall_s": round(statistics.median(r.wall_s for r in runs), 3),
        "cpu_s": round(statistics.median(r.cpu_s for r in runs), 3),
        "peak_rss_mb": round(statistics.median(r.peak_rss_mb for r in runs), 1),
        "runs": len(runs),
    }


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    mem_kb = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def write_result(name: str, data: Mapping[str, Any]) -> Path:
    """Write one benchmark's results as JSON under bench/results/."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2, sort_keys=True, default=asdict) + "\n")
    return path


class TriggerContext:
    """The fields of Lambda's context object the retrain handler reads (Powertools' Logger reads the first four)."""

    function_name = "retrain-trigger"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:retrain-trigger"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 120_000


def trigger_world(region: str, pipeline: str, *, group: str | None = None) -> str:
    """What the retrain handler needs in moto (inside ``mock_aws``): its table ``retrain-state``, its queue
    ``retrain-trigger``, the pipeline (and its model package group, if named). The queue's URL."""
    import boto3

    from cdk_mlops.lambdas.retrain_trigger import core

    boto3.client("dynamodb", region_name=region).create_table(
        TableName="retrain-state",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    queue_url: str = boto3.client("sqs", region_name=region).create_queue(QueueName="retrain-trigger")["QueueUrl"]
    sm = boto3.client("sagemaker", region_name=region)
    if group is not None:
        sm.create_model_package_group(ModelPackageGroupName=group)
    parameters = [{"Name": name, "Type": "String"} for name in core.PIPELINE_PARAMETER_NAMES]
    sm.create_pipeline(
        PipelineName=pipeline,
        RoleArn="arn:aws:iam::123456789012:role/sagemaker-pipeline",
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Parameters": parameters, "Steps": []}),
        ClientRequestToken="bench-create-pipeline-000000000001",
    )
    return queue_url
