"""Preprocess on one instance and on several: wall time and each instance's peak memory.

Usage: python bench/preprocess_instances.py [--rows 100000,1000000] [--instances 2] [--runs 3]
                                            [--files 20] [--features 10]

For each size, a dataset of ``--files`` CSV files (a binary label and ``--features`` numeric
features, a header in each) and a manifest listing them are written once (not timed). Each timed
run is the ``Preprocess`` job as SageMaker Processing runs it: ``cdk_mlops/ml/preprocess.py`` once
per instance, all at the same time, each with its own ``resourceconfig.json`` naming it among the
job's hosts, reading its share of the manifest's objects (from ``--data-dir``, so the numbers are
the script's parsing, checks, split and writes, not S3) and writing its own files.

Side by side, in the same run: the reference, one instance on the same data (the job as it was
before instances), and ``--instances`` instances. Reported: the job's wall time (until its last
instance ends), rows a second, and the largest peak RSS of one instance (each instance is its own
process, measured with ``wait4``). On this machine's 2 CPUs, 2 instances is the most that run
truly in parallel; on SageMaker each instance is its own machine.

Medians of ``--runs`` runs. Prints a markdown table and writes bench/results/preprocess_instances.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ProcessRun, run_process, write_result
from cdk_mlops.ml import PREPROCESS_SCRIPT

DATASET = "bench"


def write_dataset(root: Path, rows: int, files: int, features: int) -> Path:
    """The CSV files under ``root/data/datasets/bench/`` and their manifest; returns the manifest."""
    folder = root / "data" / "datasets" / DATASET
    folder.mkdir(parents=True)
    header = ",".join(["label", *(f"f{i}" for i in range(features))]) + "\n"
    entries = []
    per_file = rows // files
    for number in range(files):
        lines = [header]
        for row in range(number * per_file, (number + 1) * per_file):
            values = [str((row * 7919) % 1000 / 10 + i) for i in range(features)]
            lines.append(f"{row % 2}," + ",".join(values) + "\n")
        content = "".join(lines).encode()
        key = f"datasets/{DATASET}/part-{number:04d}.csv"
        (root / "data" / key).write_bytes(content)
        entries.append(
            {"key": key, "version_id": "null", "size": len(content), "etag": hashlib.md5(content).hexdigest()}
        )
    manifest = root / "manifest.json"
    manifest.write_text(json.dumps({"bucket": "bench-data", "dataset": DATASET, "entries": entries}))
    return manifest


def run_job(root: Path, manifest: Path, instances: int, label: str) -> tuple[float, list[ProcessRun]]:
    """One Preprocess job of ``instances`` hosts at once; its wall time and each host's process run."""
    hosts = [f"algo-{n}" for n in range(1, instances + 1)]
    commands = []
    for host in hosts:
        work = root / label / host
        work.mkdir(parents=True)
        command = [sys.executable, str(PREPROCESS_SCRIPT), "--manifest", str(manifest)]
        command += ["--data-dir", str(root / "data"), "--output-dir", str(work / "out")]
        command += ["--message-file", str(work / "message")]
        if instances > 1:
            config = work / "resourceconfig.json"
            config.write_text(json.dumps({"current_host": host, "hosts": hosts}))
            command += ["--resource-config", str(config)]
        commands.append(command)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=instances) as pool:
        runs = list(pool.map(run_process, commands))
    wall = time.perf_counter() - start
    failed = [r for r in runs if r.returncode != 0]
    if failed:
        raise SystemExit(f"preprocess failed on {len(failed)} of {instances} instances")
    return wall, runs


def measure(rows: int, instances: int, runs: int, files: int, features: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-preprocess-") as tmp:
        root = Path(tmp)
        manifest = write_dataset(root, rows, files, features)
        results: dict[int, list[tuple[float, float]]] = {1: [], instances: []}
        for run in range(runs):
            for count in (1, instances):  # the reference and the instances alternate
                wall, processes = run_job(root, manifest, count, f"run{run}-{count}")
                results[count].append((wall, max(p.peak_rss_mb for p in processes)))
    return {
        str(count): {
            "wall_s": round(statistics.median(w for w, _ in measured), 2),
            "rows_per_s": round(rows / statistics.median(w for w, _ in measured)),
            "peak_rss_mb_per_instance": round(statistics.median(m for _, m in measured), 1),
            "runs": len(measured),
        }
        for count, measured in results.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", default="100000,1000000")
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--features", type=int, default=10)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.rows.split(",")]
    results = {str(rows): measure(rows, args.instances, args.runs, args.files, args.features) for rows in sizes}
    print(f"Rows of {args.features} features and a label in {args.files} files; medians of {args.runs} runs.\n")
    print("| rows | instances | wall s | rows/s | peak RSS per instance (MB) | speed-up |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for rows, by_count in results.items():
        reference = by_count["1"]["wall_s"]
        for count, measured in by_count.items():
            label = f"{count} (reference)" if count == "1" else count
            print(
                f"| {int(rows):,} | {label} | {measured['wall_s']} | {measured['rows_per_s']:,} | "
                f"{measured['peak_rss_mb_per_instance']} | {reference / measured['wall_s']:.2f}x |"
            )
    write_result(
        "preprocess_instances",
        {"instances": args.instances, "files": args.files, "features": args.features, "results": results},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
