"""Prepare a dataset version for Batch Transform: the features of exactly the listed objects, and lineage.

Runs as the ``PrepareInput`` step of the batch scoring pipeline (in the SageMaker scikit-learn
processing container, which provides Python and boto3) and locally::

    python prepare_batch.py --manifest manifest.json --data-dir data/ --output-dir input/ --lineage-dir out/

Input
    A dataset manifest as ``cdk_mlops.datasets`` writes it (the single-document format the
    retrain trigger writes): JSON with ``bucket``, ``dataset``, ``created_at``, ``sha256`` and
    ``entries`` (``key``, ``version_id``, ``etag``, ``size``). In the pipeline it arrives as a
    ProcessingInput in ``--manifest-dir``; each listed ``.csv`` object is fetched from S3 *by
    version id* (``GetObject`` only: the script writes nothing to S3 itself), and its size and
    ETag are compared with the manifest, so the run scores exactly that version even if the
    objects were overwritten since. Other objects (``_SUCCESS`` markers) are skipped. With
    ``--data-dir`` each entry is read from ``<data-dir>/<key>`` instead.

    Every CSV file has a header row, the same in all files.

Output
    ``--output-dir``: ``part-00000.csv``, ``part-00001.csv``, ... with at most
    ``--rows-per-file`` rows each, in manifest order: the features only and no header, the
    layout Batch Transform sends to the model a line at a time. The column named
    ``--label-column`` is dropped when the data has it (scoring data usually has no label; a
    dataset that was also trained on has one); every other column is passed on as it is, in
    file order, so the data must hold the model's features in the order it was trained on.
    Values are copied as text, unchanged.

    ``--lineage-dir``: ``lineage.json``, the record of what is scored with what:
    ``ModelPackageArn``, ``InputManifestUri``, ``ManifestSha256``, ``DataVersion``,
    ``PipelineExecutionArn``, the dataset, bucket and snapshot time, the objects and rows
    read, the feature columns, the dropped label column, the input files written, where the
    predictions go (``OutputUri``) and where the transform captures (``CaptureUri``).

On failure the script exits with status 1 and writes the reason to ``--message-file``
(``/opt/ml/output/message``, which SageMaker shows as the job's ``ExitMessage``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

# Keep in step with cdk_mlops.pipeline_definition.scoring (a test compares them).
LINEAGE_FILE = "lineage.json"
UNVERIFIED_SHA256 = "unverified"
PART_NAME = "part-{:05d}.csv"


class DataError(Exception):
    """The input or the arguments cannot be used; the message says what and how to fix it."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Write a dataset version's features as Batch Transform input.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", type=Path, help="a dataset manifest file")
    source.add_argument("--manifest-dir", type=Path, help="a directory holding the dataset manifest")
    parser.add_argument("--data-dir", type=Path, help="read manifest entries from <data-dir>/<key>, not from S3")
    parser.add_argument("--output-dir", type=Path, required=True, help="where the transform input files go")
    parser.add_argument("--lineage-dir", type=Path, required=True, help="where lineage.json goes")
    parser.add_argument("--label-column", default=None, help="drop this column when present (default: none)")
    parser.add_argument("--rows-per-file", type=int, default=100_000)
    parser.add_argument("--manifest-uri", default="", help="where the manifest came from (recorded)")
    parser.add_argument("--manifest-sha256", default=UNVERIFIED_SHA256, help="expected manifest sha256")
    parser.add_argument("--data-version", default="unknown")
    parser.add_argument("--model-package-arn", default="")
    parser.add_argument("--pipeline-execution-arn", default="")
    parser.add_argument("--output-uri", default="", help="where the predictions and lineage.json land (recorded)")
    parser.add_argument("--capture-uri", default="", help="where Batch Transform captures (recorded)")
    parser.add_argument("--message-file", type=Path, default=Path("/opt/ml/output/message"))
    return parser.parse_args(argv)


def find_manifest(manifest_dir: Path, manifest_uri: str) -> Path:
    """The manifest file a ProcessingInput downloaded into ``manifest_dir``."""
    candidates = sorted(p for p in manifest_dir.rglob("*.json") if p.is_file())
    if manifest_uri:
        named = [p for p in candidates if p.name == manifest_uri.rstrip("/").rsplit("/", 1)[-1]]
        candidates = named or candidates
    if len(candidates) != 1:
        found = [p.name for p in candidates]
        raise DataError(f"expected one manifest (*.json) in {manifest_dir}, found {found}; pass InputManifestUri")
    return candidates[0]


def load_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"{path} is not a readable JSON manifest: {error}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("entries"), list):
        raise DataError(
            f"{path} is not a single-document dataset manifest (it needs an 'entries' list); "
            "snapshot the dataset with format='single', as the retrain trigger does"
        )
    for index, entry in enumerate(manifest["entries"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise DataError(f"{path}: entries[{index}] has no 'key'")
    return manifest


def manifest_digest(dataset: str, entries: Sequence[dict[str, Any]]) -> str:
    """The digest ``cdk_mlops.datasets.manifest_digest`` computes (a test compares them).

    SHA-256 of the canonical JSON of ``{"dataset": name, "entries": [[key, etag, size], ...]}``,
    entries sorted by key; version ids are not part of it.
    """
    rows = [[e["key"], e["etag"], e["size"]] for e in sorted(entries, key=lambda e: str(e["key"]))]
    canonical = json.dumps({"dataset": dataset, "entries": rows}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def verify_sha256(manifest: dict[str, Any], expected: str) -> None:
    """The manifest is intact, and it is the one the execution was started for."""
    actual = manifest.get("sha256")
    entries = manifest["entries"]
    if isinstance(manifest.get("dataset"), str) and all("etag" in e and "size" in e for e in entries):
        try:
            computed: str | None = manifest_digest(manifest["dataset"], entries)
        except (TypeError, UnicodeEncodeError):
            computed = None
        if actual is not None and computed != actual:
            raise DataError(
                f"the manifest's sha256 {actual!r} does not match its entries ({computed}); "
                "manifests must not be edited, take a new snapshot"
            )
    if expected in ("", UNVERIFIED_SHA256):
        return
    if actual != expected:
        raise DataError(
            f"manifest sha256 is {actual!r} but the execution was started for {expected!r}; "
            "the manifest was replaced after the trigger read it, start a new execution"
        )


def data_entries(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest's ``.csv`` entries, in manifest order (markers and other files are skipped)."""
    entries = [e for e in manifest["entries"] if e["key"].lower().endswith(".csv")]
    if not entries:
        raise DataError("the manifest lists no .csv objects; there is nothing to score")
    return entries


def _check(entry: dict[str, Any], content: bytes, etag: str | None, where: str) -> None:
    expected = entry.get("size")
    if isinstance(expected, int) and expected != len(content):
        raise DataError(f"{where}: {len(content)} bytes but the manifest says {expected}; the snapshot is not intact")
    listed = str(entry.get("etag") or "").strip('"')
    if etag is not None and listed and etag.strip('"') != listed:
        raise DataError(f"{where}: ETag differs from the manifest; the snapshot is not intact")


def fetch(
    manifest: dict[str, Any], entries: list[dict[str, Any]], data_dir: Path | None
) -> Iterator[tuple[str, bytes]]:
    """(key, content) of each entry, one object at a time (memory holds one object, not the dataset)."""
    if data_dir is not None:
        for entry in entries:
            path = data_dir / entry["key"]
            try:
                content = path.read_bytes()
            except OSError as error:
                raise DataError(f"cannot read {path}: {error}") from None
            _check(entry, content, None, str(path))
            yield entry["key"], content
        return
    import boto3  # in the processing container; not needed with --data-dir

    bucket = manifest.get("bucket")
    if not isinstance(bucket, str) or not bucket:
        raise DataError("the manifest names no 'bucket'")
    s3 = boto3.client("s3")
    for entry in entries:
        request: dict[str, Any] = {"Bucket": bucket, "Key": entry["key"]}
        if entry.get("version_id") and entry["version_id"] != "null":
            request["VersionId"] = entry["version_id"]
        response = s3.get_object(**request)
        content = response["Body"].read()
        _check(entry, content, str(response.get("ETag", "")), f"s3://{bucket}/{entry['key']}")
        yield entry["key"], content


class _PartWriter:
    """Writes rows into ``part-NNNNN.csv`` files of at most ``rows_per_file`` rows."""

    def __init__(self, directory: Path, rows_per_file: int) -> None:
        self.directory = directory
        self.rows_per_file = rows_per_file
        self.files: list[str] = []
        self.rows = 0
        self._handle: TextIO | None = None
        self._writer: Any = None
        self._in_file = 0

    def write(self, row: list[str]) -> None:
        if self._handle is None or self._in_file >= self.rows_per_file:
            self._open()
        self._writer.writerow(row)
        self._in_file += 1
        self.rows += 1

    def _open(self) -> None:
        self.close()
        name = PART_NAME.format(len(self.files))
        self._handle = (self.directory / name).open("w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._handle, lineterminator="\n")
        self._in_file = 0
        self.files.append(name)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def write_features(
    objects: Iterator[tuple[str, bytes]], output_dir: Path, label_column: str | None, rows_per_file: int
) -> dict[str, Any]:
    """Write the feature columns of every object's rows as header-less part files; return what was written."""
    output_dir.mkdir(parents=True, exist_ok=True)
    parts = _PartWriter(output_dir, rows_per_file)
    header: list[str] | None = None
    keep: list[int] = []
    objects_read = 0
    try:
        for key, content in objects:
            objects_read += 1
            try:
                text = content.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise DataError(f"{key} is not UTF-8 text") from None
            reader = csv.reader(io.StringIO(text))
            first = next(reader, None)
            if first is None:
                continue  # an empty file adds no row
            columns = [c.strip() for c in first]
            if header is None:
                header = columns
                keep = [i for i, c in enumerate(columns) if c != label_column]
                if not keep:
                    raise DataError(f"{key}: no feature column is left once {label_column!r} is dropped")
            elif columns != header:
                raise DataError(f"{key}: its header {columns} differs from the first file's {header}")
            for number, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataError(f"{key} line {number}: {len(row)} values, the header has {len(header)}")
                parts.write([row[i] for i in keep])
    finally:
        parts.close()
    if header is None or parts.rows == 0:
        raise DataError("the dataset version has no data rows; there is nothing to score")
    return {
        "objects": objects_read,
        "rows": parts.rows,
        "files": parts.files,
        "features": [header[i] for i in keep],
        "label_column": label_column if label_column in header else None,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Prepare the input and write ``lineage.json``; return the lineage record."""
    if args.rows_per_file < 1:
        raise DataError(f"--rows-per-file must be at least 1, got {args.rows_per_file}")
    manifest_path = args.manifest or find_manifest(args.manifest_dir, args.manifest_uri)
    manifest = load_manifest(manifest_path)
    verify_sha256(manifest, args.manifest_sha256)
    entries = data_entries(manifest)
    written = write_features(
        fetch(manifest, entries, args.data_dir), args.output_dir, args.label_column, args.rows_per_file
    )
    lineage = {
        "ModelPackageArn": args.model_package_arn,
        "InputManifestUri": args.manifest_uri or str(manifest_path),
        "ManifestSha256": manifest.get("sha256"),
        "DataVersion": args.data_version,
        "PipelineExecutionArn": args.pipeline_execution_arn,
        "Dataset": manifest.get("dataset"),
        "Bucket": manifest.get("bucket"),
        "SnapshotCreatedAt": manifest.get("created_at"),
        "Objects": written["objects"],
        "Rows": written["rows"],
        "FeatureColumns": written["features"],
        "DroppedLabelColumn": written["label_column"],
        "InputFiles": written["files"],
        "OutputUri": args.output_uri,
        "CaptureUri": args.capture_uri or None,
    }
    args.lineage_dir.mkdir(parents=True, exist_ok=True)
    (args.lineage_dir / LINEAGE_FILE).write_text(json.dumps(lineage, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return lineage


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        lineage = run(args)
    except DataError as error:
        message = f"prepare_batch: {error}"
        print(message, file=sys.stderr)
        try:
            args.message_file.parent.mkdir(parents=True, exist_ok=True)
            args.message_file.write_text(message[:1024], encoding="utf-8")
        except OSError:
            pass  # locally there may be no /opt/ml/output; the message is on stderr
        return 1
    print(
        f"prepare_batch: {lineage['Rows']} rows of {lineage['Objects']} objects in "
        f"{len(lineage['InputFiles'])} files, {len(lineage['FeatureColumns'])} features"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
