"""Dataset snapshot time: `datasets.snapshot()` over HTTP against a moto S3 server on loopback.

Usage: python bench/snapshot.py [--sizes 1000,10000,100000] [--runs 3] [--large-runs 1] [--listing indexed|moto]
                                [--format-entries 100000] [--format-runs 3]

For each size, a fresh versioned bucket is seeded with that many objects under
``datasets/bench/`` and ``snapshot()`` is timed end to end: paginated
ListObjectVersions (1,000 versions per page), building and hashing the
manifest, and the PutObject of the manifest, all through boto3 and HTTP to a
moto server bound to 127.0.0.1 in this process. Seeding goes straight into
moto's backend and is not timed.

moto's own ListObjectVersions deep-copies every version in the bucket on every
page, so a listing of N objects costs O(N^2) in the emulator (an extrapolated 40 minutes
of emulator time for 100,000 objects; real S3 pages in constant time). By
default (``--listing indexed``) this script replaces that one backend method
with an equivalent that walks a sorted key index, so the numbers describe the
client path, HTTP and XML, not the emulator's copy loop. ``--listing moto``
keeps moto's implementation, for comparison at small sizes.

Prints a markdown table and writes bench/results/snapshot.json. Sizes of
50,000 objects or more use ``--large-runs`` runs (default 1).

Then the two manifest formats side by side (``--format-entries``, default 100,000;
0 skips it; ``--sizes ''`` runs it alone, into bench/results/snapshot-formats.json):
one manifest of that many entries (built in memory, no listing) is
written with ``write_manifest(format="single")`` and ``format="sharded"``, and each
is read back with ``load_manifest``; the sharded one also with ``iter_entries``
(streamed, one shard at a time). Medians of ``--format-runs`` runs.
"""

from __future__ import annotations

import argparse
import bisect
import ipaddress
import logging
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3
from botocore.config import Config
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.s3.models import FakeKey, S3Backend, s3_backends
from moto.s3.responses import S3Response
from moto.server import ThreadedMotoServer

from bench.common import write_result
from cdk_mlops import datasets

REGION = "us-east-1"
DATASET = "bench"
LARGE = 50_000


class ServerClock:
    """Wall time the moto server spends answering ListObjectVersions (backend and XML rendering)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.pages = 0
        self._lock = threading.Lock()

    def install(self) -> None:
        original: Callable[..., Any] = S3Response.list_object_versions
        clock = self

        def timed(response: S3Response) -> Any:
            start = time.perf_counter()
            try:
                return original(response)
            finally:
                with clock._lock:
                    clock.seconds += time.perf_counter() - start
                    clock.pages += 1

        S3Response.list_object_versions = timed  # type: ignore[method-assign,assignment]

    def reset(self) -> None:
        with self._lock:
            self.seconds, self.pages = 0.0, 0


def install_indexed_listing() -> None:
    """Replace moto's O(N)-per-page ListObjectVersions with a sorted-index walk (same results)."""
    original = S3Backend.list_object_versions
    index: dict[int, tuple[int, list[str]]] = {}

    def sorted_names(bucket: Any) -> list[str]:
        cached = index.get(id(bucket))
        if cached is None or cached[0] != len(bucket.keys):
            cached = (len(bucket.keys), sorted(bucket.keys.keys()))
            index[id(bucket)] = cached
        return cached[1]

    def list_object_versions(
        self: S3Backend,
        bucket_name: str,
        delimiter: str | None = None,
        key_marker: str | None = None,
        max_keys: int | None = 1000,
        prefix: str = "",
        version_id_marker: str | None = None,
    ) -> Any:
        if delimiter:
            return original(self, bucket_name, delimiter, key_marker, max_keys, prefix, version_id_marker)
        bucket = self.get_bucket(bucket_name)
        names = sorted_names(bucket)
        limit = 1000 if max_keys is None else max_keys
        versions: list[Any] = []
        markers: list[Any] = []
        skipping = bool(key_marker and version_id_marker)
        start = bisect.bisect_left(names, max(prefix, key_marker or ""))
        last: Any = None
        for name in names[start:]:
            if not name.startswith(prefix):
                break
            if key_marker and not version_id_marker and name <= key_marker:
                continue
            for position, version in enumerate(reversed(bucket.keys.getlist(name))):
                if skipping:
                    skipping = not (name == key_marker and version.version_id == version_id_marker)
                    continue
                if len(versions) + len(markers) >= limit:
                    return versions, [], markers, last.name, last.version_id
                version.is_latest = position == 0
                (versions if isinstance(version, FakeKey) else markers).append(version)
                last = version
        return versions, [], markers, None, None

    S3Backend.list_object_versions = list_object_versions  # type: ignore[method-assign]


def start_server() -> tuple[ThreadedMotoServer, str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    if not ipaddress.ip_address(host).is_loopback:
        server.stop()
        raise SystemExit(f"refusing to benchmark: the moto server bound {host}, which is not loopback")
    return server, f"http://{host}:{port}"


def seed(bucket: str, count: int) -> None:
    """Create a versioned bucket holding `count` small objects, through moto's backend (not timed)."""
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.create_bucket(bucket, REGION)
    backend.put_bucket_versioning(bucket, "Enabled")
    for i in range(count):
        backend.put_object(bucket, f"datasets/{DATASET}/part={i % 100:02d}/{i:07d}.csv", f"{i},{i % 7}\n".encode())


def bench_formats(s3: Any, entries: int, runs: int) -> list[dict[str, Any]]:
    """Write and load one manifest of `entries` entries in each format; median seconds of `runs` runs."""
    bucket = f"bench-formats-{entries}"
    s3.create_bucket(Bucket=bucket)
    # In key order, as build_manifest writes them.
    keys = sorted(f"datasets/{DATASET}/part={i % 100:02d}/{i:07d}.csv" for i in range(entries))
    rows = tuple(datasets.ManifestEntry(k, f"v{i:031d}", f"{i:032x}", 1 + i % 997) for i, k in enumerate(keys))
    manifest = datasets.Manifest(bucket, DATASET, "2025-01-31T12:00:00Z", rows, datasets.manifest_digest(DATASET, rows))
    results = []
    for format_ in ("single", "sharded"):
        writes: list[float] = []
        loads: list[float] = []
        streams: list[float] = []
        uri = ""
        for _ in range(runs):
            start = time.perf_counter()
            uri = datasets.write_manifest(manifest, s3=s3, format=format_).uri or ""
            writes.append(time.perf_counter() - start)
            start = time.perf_counter()
            loaded = datasets.load_manifest(uri, s3=s3)
            loads.append(time.perf_counter() - start)
            assert loaded.entries == rows
            if format_ == "sharded":
                start = time.perf_counter()
                assert sum(1 for _ in datasets.iter_entries(uri, s3=s3)) == entries
                streams.append(time.perf_counter() - start)
        listing = s3.list_objects_v2(Bucket=bucket, Prefix=uri.split("/", 3)[3].removesuffix(".json"))
        stored = sum(
            item["Size"]
            for item in listing.get("Contents", ())
            if format_ == "sharded" or item["Key"].endswith(".json")
        )
        results.append(
            {
                "format": format_,
                "entries": entries,
                "runs": runs,
                "objects_written": len(listing.get("Contents", ())) if format_ == "sharded" else 1,
                "stored_bytes": stored,
                "write_s": round(statistics.median(writes), 3),
                "load_s": round(statistics.median(loads), 3),
                "iter_entries_s": round(statistics.median(streams), 3) if streams else None,
                "write_runs_s": [round(t, 3) for t in writes],
                "load_runs_s": [round(t, 3) for t in loads],
            }
        )
        print(
            f"{format_}: write {results[-1]['write_s']} s, load {results[-1]['load_s']} s", file=sys.stderr, flush=True
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated object counts")
    parser.add_argument("--runs", type=int, default=3, help="runs per size below 50,000 objects (median reported)")
    parser.add_argument("--large-runs", type=int, default=1, help="runs per size of 50,000 objects or more")
    parser.add_argument("--listing", choices=["indexed", "moto"], default="indexed")
    parser.add_argument("--format-entries", type=int, default=100_000, help="manifest size for the format comparison")
    parser.add_argument("--format-runs", type=int, default=3, help="runs of the format comparison (median reported)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]

    if args.listing == "indexed":
        install_indexed_listing()
    clock = ServerClock()
    clock.install()
    server, endpoint = start_server()
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )
        rows = []
        for size in sizes:
            bucket = f"bench-snapshot-{size}"
            started = time.perf_counter()
            seed(bucket, size)
            seed_s = time.perf_counter() - started
            runs = args.large_runs if size >= LARGE else args.runs
            totals: list[float] = []
            server_times: list[float] = []
            manifest: datasets.Manifest | None = None
            for _ in range(runs):
                clock.reset()
                start = time.perf_counter()
                manifest = datasets.snapshot(bucket, DATASET, s3=s3)
                totals.append(time.perf_counter() - start)
                server_times.append(clock.seconds)
            assert manifest is not None
            assert len(manifest.entries) == size
            total = statistics.median(totals)
            server_s = statistics.median(server_times)
            rows.append(
                {
                    "objects": size,
                    "runs": runs,
                    "snapshot_s": round(total, 3),
                    "snapshot_runs_s": [round(t, 3) for t in totals],
                    "list_server_s": round(server_s, 3),
                    "client_s": round(total - server_s, 3),
                    "objects_per_s": round(size / total),
                    "pages": clock.pages,
                    "manifest_bytes": len(manifest.to_json().encode()),
                    "seed_s_untimed": round(seed_s, 1),
                }
            )
            print(f"{size} objects: {total:.2f} s", file=sys.stderr, flush=True)
        formats = bench_formats(s3, args.format_entries, args.format_runs) if args.format_entries else []
    finally:
        server.stop()

    name = "snapshot" if args.listing == "indexed" else "snapshot-moto-listing"
    if not rows:  # `--sizes ''`: the format comparison alone, kept apart from the snapshot rows
        name = "snapshot-formats"
    write_result(
        name,
        {"listing": args.listing, "endpoint": "moto ThreadedMotoServer on 127.0.0.1", "rows": rows, "formats": formats},
    )
    print(f"moto listing: {args.listing}; times are medians of the runs shown.")
    print()
    print("| objects | runs | snapshot s | of which moto ListObjectVersions s | client s | objects/s | manifest KB |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['objects']:,} | {row['runs']} | {row['snapshot_s']:.2f} | {row['list_server_s']:.2f} "
            f"| {row['client_s']:.2f} | {row['objects_per_s']:,} | {row['manifest_bytes'] / 1024:,.0f} |"
        )

    if formats:
        print()
        print(
            f"Manifest formats, {formats[0]['entries']:,} entries "
            f"(shards of {datasets.SHARD_ENTRIES:,}); medians of {formats[0]['runs']} runs."
        )
        print()
        print("| format | objects written | stored KB | write s | load_manifest s | iter_entries s |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for row in formats:
            streamed = "" if row["iter_entries_s"] is None else f"{row['iter_entries_s']:.2f}"
            print(
                f"| {row['format']} | {row['objects_written']} | {row['stored_bytes'] / 1024:,.0f} "
                f"| {row['write_s']:.2f} | {row['load_s']:.2f} | {streamed} |"
            )


if __name__ == "__main__":
    main()
