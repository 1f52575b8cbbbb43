"""Inventory snapshot engine: plan, shard workers on a process pool, finalize, on local files.

Usage: python bench/inventory_snapshot.py [--sizes 10000,100000,1000000] [--runs 3] [--workers 2]
                                          [--rows-per-file 250000] [--reference-max 1000000]

For each size, S3 Inventory CSV files (gzip, every value quoted, keys URL-encoded) listing that
many current objects of ``datasets/bench/`` are generated once (not timed), with one older
version for every tenth object and a delete marker for every fiftieth, as an inventory of all
versions lists them. Files hold at most ``--rows-per-file`` objects, and there are at least
``--workers`` files so every worker has one.

The storage is a directory: ``DirS3`` answers ``get_object`` and ``put_object`` from files
(``<root>/<bucket>/<key>``), so the numbers measure the engine (gzip, CSV, URL-decoding, the
key checks, the set digest, sorting, shard writing), not an emulator or a network. Each timed
run is the state machine's work: ``inventory.plan``, then ``inventory.shard_file`` for every
file on a process pool of ``--workers`` processes (one process is one Lambda worker), then
``inventory.finalize``. Reported: wall time of the whole, and objects a second *per worker*
(each file's objects over its worker's time, median over files), whose flatness over sizes
shows that a worker's cost per object does not grow with the dataset.

Side by side, in the same run, the reference: the single-process path's work on the same
objects, excluding its listing (which is what the engine replaces, and which no local
measurement can represent): ``datasets.write_manifest(format="sharded")`` of a manifest of the
same entries, i.e. sorting them, the sequential ``ContentDigest`` and the shard writes, in one
process. And ``datasets.iter_entries`` of the v2 version (the k-way merge a reader pays).

Medians of ``--runs`` runs. Prints a markdown table and writes bench/results/inventory_snapshot.json.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import write_result
from cdk_mlops import datasets, inventory

BUCKET = "bench-data"
DATASET = "bench"
SCHEMA = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag"
FOLDER = "inventory/bench-data/daily/"
CREATED_MS = 1_738_281_600_000  # 2025-01-31T00:00:00Z


class DirS3:
    """The two S3 calls the engine makes, answered from a directory (``<root>/<bucket>/<key>``)."""

    def __init__(self, root: str) -> None:
        self.root = root

    def _path(self, bucket: str, key: str) -> Path:
        return Path(self.root, bucket, key)

    def get_object(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        return {"Body": self._path(Bucket, Key).open("rb")}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:  # noqa: N803
        path = self._path(Bucket, Key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(Body)
        return {}


def generate(root: str, size: int, rows_per_file: int, workers: int, *, content_etags: bool = False) -> str:
    """Write the inventory of ``size`` current objects under ``root``; the report's URI.

    Object ``i``'s ETag is the MD5 of ``str(i)``; with ``content_etags`` its size is that text's
    length too, so that the object ``str(i)`` is what the inventory describes.
    """
    files = max(workers, -(-size // rows_per_file))
    per_file = -(-size // files)
    entries = []
    fields = [f.strip() for f in SCHEMA.split(",")]
    for f in range(files):
        out = io.StringIO()
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for i in range(f * per_file, min(size, (f + 1) * per_file)):
            key = f"datasets/{DATASET}/part={i % 97:02d}/day {i // 10_000:04d}/file-{i:09d}.csv"
            etag = hashlib.md5(str(i).encode(), usedforsecurity=False).hexdigest()
            row = {"Bucket": BUCKET, "Key": quote_plus(key, safe="/"), "LastModifiedDate": "2025-01-30T00:00:00.000Z"}
            if i % 10 == 0:
                writer.writerow([{**row, "VersionId": f"old{i}", "IsLatest": "false", "IsDeleteMarker": "false",
                                  "Size": "7", "ETag": "0" * 32}[k] for k in fields])  # fmt: skip
            writer.writerow([{**row, "VersionId": f"v{i:x}", "IsLatest": "true", "IsDeleteMarker": "false",
                              "Size": str(len(str(i)) if content_etags else i % 100_000), "ETag": etag}[k]
                              for k in fields])  # fmt: skip
            if i % 50 == 0:
                gone = quote_plus(f"datasets/{DATASET}/deleted/{i:09d}.csv", safe="/")
                writer.writerow([{**row, "Key": gone, "VersionId": f"dm{i}", "IsLatest": "true",
                                  "IsDeleteMarker": "true", "Size": "", "ETag": ""}[k] for k in fields])  # fmt: skip
        body = gzip.compress(out.getvalue().encode(), compresslevel=6)
        key = f"{FOLDER}data/{size}-{f:04d}.csv.gz"
        DirS3(root).put_object(Bucket=BUCKET, Key=key, Body=body)
        entries.append({"key": key, "size": len(body), "MD5checksum": hashlib.md5(body).hexdigest()})
    manifest = {
        "sourceBucket": BUCKET,
        "destinationBucket": f"arn:aws:s3:::{BUCKET}",
        "version": "2016-11-30",
        "creationTimestamp": str(CREATED_MS),
        "fileFormat": "CSV",
        "fileSchema": SCHEMA,
        "files": entries,
    }
    key = f"{FOLDER}{size}/manifest.json"
    DirS3(root).put_object(Bucket=BUCKET, Key=key, Body=json.dumps(manifest).encode())
    return f"s3://{BUCKET}/{key}"


def work(args: tuple[str, dict[str, Any], dict[str, Any]]) -> tuple[int, float, float]:
    """One shard worker (a pool process): objects kept, seconds, peak RSS in MiB so far."""
    root, plan, item = args
    start = time.perf_counter()
    result = inventory.shard_file(DirS3(root), plan, **item)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - start
    return result["object_count"], elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def snapshot_run(root: str, report: str, pool: ProcessPoolExecutor) -> dict[str, Any]:
    """plan, shards on the pool, finalize: wall time and each worker's rate."""
    s3: Any = DirS3(root)
    start = time.perf_counter()
    plan = inventory.plan(s3, report_uri=report, dataset=DATASET, bucket=BUCKET)
    items = json.loads(s3.get_object(Bucket=plan["files_bucket"], Key=plan["files_key"])["Body"].read())
    results = list(pool.map(work, [(root, plan, item) for item in items]))
    final = inventory.finalize(s3, plan)
    wall = time.perf_counter() - start
    return {
        "wall_s": wall,
        "objects": final["object_count"],
        "files": len(items),
        "per_worker_objects_s": statistics.median(n / t for n, t, _ in results),
        "worker_peak_rss_mb": max(r for _, _, r in results),
        "manifest": final["manifest"],
    }


def reference_run(root: str, manifest: datasets.Manifest) -> float:
    """The single-process write of the same entries: sort, ContentDigest, sharded write (no listing)."""
    s3: Any = DirS3(root)
    start = time.perf_counter()
    datasets.write_manifest(manifest, s3=s3, format="sharded")
    return time.perf_counter() - start


def read_run(root: str, index_uri: str) -> float:
    """``iter_entries`` of the v2 version from local files (the k-way merge of its shards)."""
    local = Path(root, BUCKET, index_uri.split("/", 3)[3])
    start = time.perf_counter()
    count = sum(1 for _ in datasets.iter_entries(local))
    assert count > 0
    return time.perf_counter() - start


def _noop(_: int) -> int:
    return os.getpid()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rows-per-file", type=int, default=250_000)
    parser.add_argument("--reference-max", type=int, default=1_000_000, help="largest size the reference runs at")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="inventory-bench-") as root, ProcessPoolExecutor(args.workers) as pool:
        list(pool.map(_noop, range(args.workers)))  # the workers exist (forked small) before any data does
        for size in sizes:
            report = generate(root, size, args.rows_per_file, args.workers)
            runs = [snapshot_run(root, report, pool) for _ in range(args.runs)]
            manifest = datasets.load_manifest(Path(root, BUCKET, runs[0]["manifest"].split("/", 3)[3]))
            assert len(manifest.entries) == size, (len(manifest.entries), size)
            # The reference writes v1, whose sha256 is the sequential content digest (computed again, timed, in it).
            manifest = replace(manifest, sha256=datasets.manifest_digest(DATASET, manifest.entries), uri=None)
            reads = [read_run(root, runs[0]["manifest"]) for _ in range(args.runs)]
            references = [reference_run(root, manifest) for _ in range(args.runs)] if size <= args.reference_max else []
            del manifest
            per_worker = statistics.median(r["per_worker_objects_s"] for r in runs)
            rows.append(
                {
                    "objects": size,
                    "files": runs[0]["files"],
                    "wall_s": round(statistics.median(r["wall_s"] for r in runs), 3),
                    "per_worker_objects_s": round(per_worker),
                    "per_worker_us_per_object": round(1e6 / per_worker, 2),
                    "worker_peak_rss_mb": round(max(r["worker_peak_rss_mb"] for r in runs), 1),
                    "read_v2_s": round(statistics.median(reads), 3),
                    "reference_v1_write_s": round(statistics.median(references), 3) if references else None,
                    "runs": args.runs,
                }
            )
            print(f"{size:>10,} objects: {rows[-1]}", file=sys.stderr)
    print(f"Workers: a process pool of {args.workers}; medians of {args.runs} runs; local files (no network).\n")
    print(
        "| objects | inventory files | snapshot wall (plan + shards + finalize) | objects/s per worker "
        "| µs/object per worker | worker peak RSS | v2 read back (`iter_entries`) "
        "| reference: v1 sort + ContentDigest + sharded write, 1 process, no listing |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        reference = f"{r['reference_v1_write_s']:.2f} s" if r["reference_v1_write_s"] is not None else "-"
        print(
            f"| {r['objects']:,} | {r['files']} | {r['wall_s']:.2f} s | {r['per_worker_objects_s']:,} "
            f"| {r['per_worker_us_per_object']:.1f} | {r['worker_peak_rss_mb']:.0f} MiB | {r['read_v2_s']:.2f} s "
            f"| {reference} |"
        )
    write_result("inventory_snapshot", {"workers": args.workers, "rows_per_file": args.rows_per_file, "sizes": rows})


if __name__ == "__main__":
    main()
