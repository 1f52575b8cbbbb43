"""Preprocess a dataset snapshot for training: fetch it, validate it, split it.

Runs as the ``Preprocess`` step of the training pipeline (in the SageMaker scikit-learn
processing container, which provides Python, numpy and boto3) and locally::

    python preprocess.py --input-dir data/ --output-dir out/
    python preprocess.py --manifest manifest.json --data-dir data/ --output-dir out/

Input
    A dataset manifest, as ``cdk_mlops.datasets`` writes it: JSON with ``bucket``, ``dataset``,
    ``created_at``, ``sha256`` and ``entries`` (``key``, ``version_id``, ``etag``, ``size``), or
    the index of a sharded manifest (``cdk-mlops.dataset-manifest-index.v1``, or ``.v2`` as
    ``InventorySnapshot`` writes it), whose shards (gzipped JSON Lines of the same entries) are
    read from next to the index and each checked against the index. In
    the pipeline it arrives as a ProcessingInput in ``--manifest-dir`` and the objects it lists
    are fetched from S3 *by version id*, so the run reads exactly the snapshot even if the
    objects were overwritten since. With ``--data-dir`` each entry is read from
    ``<data-dir>/<key>`` instead. Or, without a manifest, ``--input-dir``: every ``*.csv`` in it,
    in name order.

    Every CSV file has a header row, the same in all files. Values are numbers; an empty cell
    is a missing value. The label is the ``--label-column`` (default: the first column); for
    binary classification it is 0 or 1.

Output (under ``--output-dir``, one folder per ProcessingOutput)
    ``train/train.csv``, ``validation/validation.csv``, ``test/test.csv``
        Label first, no header: the CSV contract of the built-in XGBoost algorithm.
    ``baseline/train_with_header.csv``
        The training split with its header, label first, or a uniform sample of at most
        ``--baseline-rows`` of its rows (over all instances; each writes its share). ``evaluate.py``
        turns it into the data-quality baseline dataset by putting the trained model's
        predictions in the label's place, since Model Monitor compares that column with what the
        endpoint returns; the cap keeps that step's memory bounded at any data size.
    ``report/preprocess_report.json``
        Row and column counts, split sizes, the source (manifest) and the data validation.

The split is deterministic for a given input and ``--seed``: 70/15/15 by default, stratified
by label for binary classification.

Instances
    With ``--resource-config`` (``/opt/ml/config/resourceconfig.json``, where SageMaker
    Processing names the job's hosts and this one), the job runs on several instances and each
    takes its share, for instance ``i`` of ``n``: the shards ``i, i+n, i+2n, ...`` (by name) of a
    sharded manifest of at least ``n`` shards; else every n-th entry (by key) of the manifest,
    read whole (a sharded one of fewer shards holds at most ``n`` x 100,000 entries); or every
    n-th file of ``--input-dir``. Each instance reads, validates and splits its share alone (its seed is
    ``[--seed, i]``), so memory and time per instance grow with the data divided by ``n``, and
    writes its files with its host in the name (``train/train-algo-2.csv``), since every
    instance uploads to the same prefixes. Checks that need the whole dataset are taken per share
    or from the index: each instance checks its shards against the index and the index's digest
    against ``ManifestSha256`` (an instance that read every entry also recomputes the digest over
    them); the label's both classes are required of a single instance only. An instance whose
    share is empty (more instances than objects) writes only its report.

Data validation: with ``--baseline-constraints-uri`` (an ``s3://`` URI or a local path to a
Model Monitor ``constraints.json``), the data is checked against the baseline: missing or
extra columns, data types (``Integral`` columns hold whole numbers), completeness and
non-negativity. The first column of the baseline is the model's output (Model Monitor puts
output columns first) and the first of the data is the label, so neither is compared: labels
are not predictions. Violations fail the run (``--on-violation fail``) or are only reported
(``warn``). An empty URI skips the check.

Arguments that the pipeline later records on the model package (manifest URI, sha256, data
version) are checked up front against the CreateModelPackage metadata rules, so a bad value
fails the first step instead of the last. (The pipeline does not pass ``--trigger-reason``,
which may be longer than a container argument; locally it is checked and reported.)

On failure the script exits with status 1 and writes the reason to ``--message-file``
(``/opt/ml/output/message``, which SageMaker shows as the job's ``ExitMessage``).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Keep in step with cdk_mlops.pipeline_definition (a test compares them).
TRAIN_FILE = "train.csv"
VALIDATION_FILE = "validation.csv"
TEST_FILE = "test.csv"
BASELINE_FILE = "train_with_header.csv"
REPORT_FILE = "preprocess_report.json"
UNVERIFIED_SHA256 = "unverified"
# Keep in step with cdk_mlops.manifest_shards (a test compares them): the sharded manifests'
# index schemas, and the v2 index's set digest (AdHash over Z/2^4096 of SHAKE-256 elements).
INDEX_SCHEMA_V1 = "cdk-mlops.dataset-manifest-index.v1"
INDEX_SCHEMA_V2 = "cdk-mlops.dataset-manifest-index.v2"
SET_ELEMENT_TAG = b"cdk-mlops.set-digest.element.v1\n"
SET_ID_TAG = b"cdk-mlops.set-digest.id.v1\n"
SET_BYTES = 512
PROBLEM_TYPES = ("binary_classification", "regression")
MIN_ROWS = 10
# Keep in step with TrainingSettings.baseline_rows (a test compares them).
DEFAULT_BASELINE_ROWS = 1_000_000
_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}\Z")

# CreateModelPackage CustomerMetadataProperties values: 1-256 of letters, digits, spaces, _ . : / = + - @
_METADATA_VALUE = re.compile(r"^[\w .:/=+\-@]{1,256}\Z")


class DataError(Exception):
    """The input or the arguments cannot be used; the message says what and how to fix it."""


class Table:
    """A numeric table: column names (label first) and values (NaN for missing cells)."""

    def __init__(self, columns: list[str], values: np.ndarray) -> None:
        self.columns = columns
        self.values = values

    @property
    def labels(self) -> np.ndarray:
        return self.values[:, 0]


class Share:
    """This instance's part of the work: instance ``index`` of ``count``, named ``host``."""

    def __init__(self, index: int = 0, count: int = 1, host: str = "") -> None:
        self.index, self.count, self.host = index, count, host

    @property
    def alone(self) -> bool:
        return self.count == 1

    def take(self, items: Sequence[Any]) -> list[Any]:
        """Items ``index, index + count, ...`` of ``items``: an even split, the same on every instance."""
        return list(items[self.index :: self.count])

    def file_name(self, name: str) -> str:
        """``name`` with the host in it when instances share an output prefix (``train-algo-2.csv``)."""
        if self.alone:
            return name
        stem, dot, suffix = name.rpartition(".")
        return f"{stem}-{self.host}{dot}{suffix}"


def read_share(path: Path | None) -> Share:
    """This instance's :class:`Share` from SageMaker's ``resourceconfig.json``; one instance without it."""
    if path is None:
        return Share()
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        host, hosts = config["current_host"], list(config["hosts"])
        index = hosts.index(host)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(f"{path} does not name this host among the job's hosts: {error!r}") from None
    if not all(isinstance(h, str) and _HOST.match(h) for h in hosts):
        raise DataError(f"{path}: host names {hosts[:5]} are not plain names such as algo-1")
    return Share(index, len(hosts), host)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Fetch, validate and split a dataset snapshot.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input-dir", type=Path, help="read every *.csv in this directory")
    source.add_argument("--manifest", type=Path, help="a dataset manifest file")
    source.add_argument("--manifest-dir", type=Path, help="a directory holding the dataset manifest")
    parser.add_argument("--data-dir", type=Path, help="read manifest entries from <data-dir>/<key>, not from S3")
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--problem-type", choices=PROBLEM_TYPES, default="binary_classification")
    parser.add_argument("--label-column", default=None, help="default: the first column")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--train-fraction", type=float, default=0.7)
    parser.add_argument("--validation-fraction", type=float, default=0.15)
    parser.add_argument("--manifest-uri", default="", help="where the manifest came from (recorded)")
    parser.add_argument("--manifest-sha256", default=UNVERIFIED_SHA256, help="expected manifest sha256")
    parser.add_argument("--baseline-constraints-uri", default="", help="constraints.json to validate against")
    parser.add_argument("--on-violation", choices=("fail", "warn"), default="fail")
    parser.add_argument("--baseline-rows", type=int, default=DEFAULT_BASELINE_ROWS, help="cap of the baseline file")
    parser.add_argument("--data-version", default="unknown")
    parser.add_argument("--trigger-reason", default="manual")
    parser.add_argument("--message-file", type=Path, default=Path("/opt/ml/output/message"))
    parser.add_argument(
        "--resource-config", type=Path, help="SageMaker's resourceconfig.json: run as one of its hosts (default: alone)"
    )
    return parser.parse_args(argv)


def check_arguments(args: argparse.Namespace) -> None:
    """Fail fast on values the pipeline cannot use or record."""
    if not 0 < args.train_fraction < 1 or not 0 < args.validation_fraction < 1:
        raise DataError("--train-fraction and --validation-fraction must be between 0 and 1")
    if args.train_fraction + args.validation_fraction >= 1:
        raise DataError("--train-fraction + --validation-fraction must be < 1, leaving rows for the test split")
    if args.baseline_rows < 1:
        raise DataError(f"--baseline-rows must be at least 1, got {args.baseline_rows}")
    recorded = {"ManifestSha256": args.manifest_sha256, "DataVersion": args.data_version}
    if args.manifest_uri:
        recorded["InputManifestUri"] = args.manifest_uri
    for name, value in recorded.items():
        if not _METADATA_VALUE.match(value):
            raise DataError(
                f"pipeline parameter {name}={value!r} cannot be recorded on the model package; "
                "use 1-256 letters, digits, spaces or _ . : / = + - @"
            )
    reason = args.trigger_reason
    if not reason or len(reason) > 1024 or any(ord(ch) < 32 or ord(ch) == 127 for ch in reason):
        raise DataError(
            f"pipeline parameter TriggerReason={reason[:80]!r} cannot be the model package description; "
            "use 1-1024 printable characters without line breaks"
        )


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def find_manifest(manifest_dir: Path, manifest_uri: str) -> Path:
    """The manifest file a ProcessingInput downloaded into ``manifest_dir``."""
    candidates = sorted(p for p in manifest_dir.rglob("*.json") if p.is_file())
    if manifest_uri:
        named = [p for p in candidates if p.name == manifest_uri.rstrip("/").rsplit("/", 1)[-1]]
        candidates = named or candidates
    if len(candidates) != 1:
        found = ", ".join(p.name for p in candidates) or "nothing"
        raise DataError(f"expected one manifest (*.json) in {manifest_dir}, found {found}; pass InputManifestUri")
    return candidates[0]


def load_manifest(path: Path, manifest_uri: str = "", share: Share | None = None) -> dict[str, Any]:
    """The manifest at ``path``; for a sharded manifest's index, with its shards' entries read in.

    A sharded manifest's shards are next to its index: under ``<manifest_uri without .json>/``
    in S3 when ``manifest_uri`` is an ``s3://`` URI, else under ``<path without .json>/``. With a
    ``share`` of several instances and at least as many shards, only the share's shards are read
    (``partial`` is then true); otherwise every entry is read, and the share's entries are
    taken later.
    """
    share = share or Share()
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"{path} is not a readable JSON manifest: {error}") from None
    if isinstance(manifest, dict) and manifest.get("schema") in (INDEX_SCHEMA_V1, INDEX_SCHEMA_V2):
        # Shards are dealt when there are enough to go round; with fewer (at most count x 100,000
        # entries), every instance reads them all and the entries are dealt instead.
        shards = manifest.get("shards")
        dealt = not share.alone and isinstance(shards, list) and len(shards) >= share.count
        entries = _shard_entries(manifest, path, manifest_uri, share if dealt else Share())
        manifest = {**manifest, "entries": entries, "partial": dealt}
    if not isinstance(manifest, dict) or not isinstance(manifest.get("entries"), list):
        raise DataError(f"{path} is not a dataset manifest: it needs an 'entries' list")
    for index, entry in enumerate(manifest["entries"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise DataError(f"{path}: entries[{index}] needs a 'key'")
    if not manifest["entries"] and not manifest.get("partial"):
        raise DataError(f"{path}: the manifest lists no objects")
    return manifest


def manifest_digest(dataset: str, entries: Sequence[dict[str, Any]]) -> str:
    """The manifest digest as ``cdk_mlops.datasets.manifest_digest`` computes it (a test compares them).

    SHA-256 of the canonical JSON of ``{"dataset": name, "entries": [[key, etag, size], ...]}``
    with the entries sorted by key; version ids are not part of it.
    """
    rows = [[e["key"], e["etag"], e["size"]] for e in sorted(entries, key=lambda e: str(e["key"]))]
    canonical = json.dumps({"dataset": dataset, "entries": rows}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def set_digest(dataset: str, entries: Sequence[dict[str, Any]]) -> str:
    """The v2 index's digest as ``cdk_mlops.manifest_shards.SetDigest`` computes it (a test compares them).

    Each entry's ``[key, etag, size]`` (the row the content digest hashes) is hashed with
    SHAKE-256 to 512 bytes; the digest is SHA-256 of a tag, the dataset name and the sum of those
    numbers modulo 2^4096, so it does not depend on the entries' order.
    """
    total = 0
    for e in entries:
        row = json.dumps([e["key"], e["etag"], e["size"]], separators=(",", ":"))
        total += int.from_bytes(hashlib.shake_256(SET_ELEMENT_TAG + row.encode("ascii")).digest(SET_BYTES), "big")
    total &= (1 << (8 * SET_BYTES)) - 1
    return hashlib.sha256(SET_ID_TAG + dataset.encode("utf-8") + b"\n" + total.to_bytes(SET_BYTES, "big")).hexdigest()


def verify_sha256(manifest: dict[str, Any], expected: str) -> None:
    """The manifest is intact, and it is the one the execution was started for."""
    actual = manifest.get("sha256")
    entries = manifest["entries"]
    digest = set_digest if manifest.get("schema") == INDEX_SCHEMA_V2 else manifest_digest
    if manifest.get("partial"):
        # This instance holds some shards only: each was checked against the index, and the
        # index's digest is checked against its recorded sum (v2), which Finalize took over all.
        _verify_set_sum(manifest)
    elif isinstance(manifest.get("dataset"), str) and all("etag" in e and "size" in e for e in entries):
        try:
            computed = digest(manifest["dataset"], entries)
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


def _verify_set_sum(index: dict[str, Any]) -> None:
    """A v2 index's ``sha256`` is the identity of its recorded sum (v1 records no sum)."""
    digest = index.get("digest")
    total = digest.get("sum") if isinstance(digest, dict) else None
    if index.get("schema") != INDEX_SCHEMA_V2 or not isinstance(index.get("dataset"), str):
        return
    try:
        raw = bytes.fromhex(total) if isinstance(total, str) else b""
    except ValueError:
        raw = b""
    identity = hashlib.sha256(SET_ID_TAG + index["dataset"].encode("utf-8") + b"\n" + raw).hexdigest()
    if len(raw) != SET_BYTES or identity != index.get("sha256"):
        raise DataError(
            f"the index's sha256 {index.get('sha256')!r} is not the identity of its digest sum; "
            "manifests must not be edited, take a new snapshot"
        )


def _shard_entries(index: dict[str, Any], path: Path, manifest_uri: str, share: Share) -> list[Any]:
    """The entries of the share's shards, in key order, each shard checked against the index."""
    shards = index.get("shards")
    if not isinstance(shards, list) or not shards:
        raise DataError(f"{path}: the manifest index lists no shards")
    entries: list[Any] = []
    by_name = sorted(shards, key=lambda shard: str(shard.get("name")) if isinstance(shard, dict) else "")
    for shard in share.take(by_name):
        name = shard.get("name") if isinstance(shard, dict) else None
        if not isinstance(name, str) or not re.fullmatch(r"part-[0-9-]+\.jsonl\.gz", name):
            raise DataError(f"{path}: a shard is named {name!r}, not part-*.jsonl.gz; take a new snapshot")
        try:
            text = gzip.decompress(_shard_bytes(path, manifest_uri, name))
        except (OSError, EOFError) as error:
            raise DataError(f"shard {name} of {manifest_uri or path} is not gzip: {error}") from None
        lines = text.splitlines()
        if hashlib.sha256(text).hexdigest() != shard.get("sha256") or len(lines) != shard.get("object_count"):
            raise DataError(
                f"shard {name} of {manifest_uri or path} does not match its index (sha256 or count); "
                "manifests must not be edited, take a new snapshot"
            )
        try:
            entries += [json.loads(line) for line in lines]
        except ValueError as error:
            raise DataError(f"shard {name} of {manifest_uri or path} holds a line that is not JSON: {error}") from None
    # v2 shards are each sorted, in any order between them: key order makes the run deterministic.
    return sorted(entries, key=lambda e: str(e.get("key")) if isinstance(e, dict) else "")


def _shard_bytes(path: Path, manifest_uri: str, name: str) -> bytes:
    if manifest_uri.startswith("s3://"):
        import boto3  # in the processing container; not needed locally

        bucket, _, key = manifest_uri.removeprefix("s3://").partition("/")
        shard_key = f"{key.removesuffix('.json')}/{name}"
        body: bytes = boto3.client("s3").get_object(Bucket=bucket, Key=shard_key)["Body"].read()
        return body
    local = path.with_suffix("") / name
    try:
        return local.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read shard {local}: {error}; keep the shards next to the index") from None


def _is_data_file(key: str) -> bool:
    return key.lower().endswith(".csv")


def fetch_manifest_objects(manifest: dict[str, Any], data_dir: Path | None) -> list[tuple[str, bytes]]:
    """(key, content) of every CSV object the manifest lists, in manifest order."""
    entries = [e for e in manifest["entries"] if _is_data_file(e["key"])]
    if not entries:
        raise DataError("the manifest lists no .csv objects")
    if data_dir is not None:
        objects = []
        for entry in entries:
            path = data_dir / entry["key"]
            try:
                content = path.read_bytes()
            except OSError as error:
                raise DataError(f"cannot read {path}: {error}") from None
            _check_size(entry, len(content))
            objects.append((entry["key"], content))
        return objects
    return _fetch_from_s3(manifest, entries)


def _fetch_from_s3(manifest: dict[str, Any], entries: list[dict[str, Any]]) -> list[tuple[str, bytes]]:
    import boto3  # in the processing container; not needed locally

    bucket = manifest.get("bucket")
    if not isinstance(bucket, str) or not bucket:
        raise DataError("the manifest names no 'bucket'")
    s3 = boto3.client("s3")
    objects = []
    for entry in entries:
        request: dict[str, Any] = {"Bucket": bucket, "Key": entry["key"]}
        if entry.get("version_id") and entry["version_id"] != "null":
            request["VersionId"] = entry["version_id"]
        response = s3.get_object(**request)
        content = response["Body"].read()
        _check_size(entry, len(content))
        etag = str(entry.get("etag") or "").strip('"')
        if etag and response.get("ETag", "").strip('"') != etag:
            raise DataError(f"s3://{bucket}/{entry['key']}: ETag differs from the manifest; the snapshot is not intact")
        objects.append((entry["key"], content))
    return objects


def _check_size(entry: dict[str, Any], size: int) -> None:
    expected = entry.get("size")
    if isinstance(expected, int) and expected != size:
        raise DataError(f"{entry['key']}: {size} bytes but the manifest says {expected}; the snapshot is not intact")


def read_input_dir(input_dir: Path, share: Share | None = None) -> list[tuple[str, bytes]]:
    """(name, content) of the share's ``*.csv`` files of ``input_dir``, in name order."""
    files = sorted(p for p in input_dir.glob("*.csv") if p.is_file())
    if not files:
        raise DataError(f"no *.csv files in {input_dir}")
    return [(p.name, p.read_bytes()) for p in (share or Share()).take(files)]


def parse_csv(objects: Iterable[tuple[str, bytes]]) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, rows and the row origin (``file:line``) of CSV files that share a header."""
    header: list[str] | None = None
    rows: list[list[str]] = []
    origins: list[str] = []
    for name, content in objects:
        reader = csv.reader(io.StringIO(content.decode("utf-8-sig")))
        file_header = next(reader, None)
        if file_header is None:
            continue
        file_header = [h.strip() for h in file_header]
        if header is None:
            header = file_header
        elif file_header != header:
            raise DataError(f"{name}: header {file_header} differs from the first file's {header}")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise DataError(f"{name}:{line}: {len(row)} values for {len(header)} columns")
            rows.append(row)
            origins.append(f"{name}:{line}")
    if header is None:
        raise DataError("the input holds no CSV header")
    if len(set(header)) != len(header) or not all(header):
        raise DataError(f"column names must be unique and non-empty, got {header}")
    return header, rows, origins


def to_table(header: list[str], rows: list[list[str]], origins: list[str], label_column: str | None) -> Table:
    """Numbers, label column first; empty cells become NaN."""
    label = header[0] if label_column is None else label_column
    if label not in header:
        raise DataError(f"label column {label!r} is not in the header {header}")
    order = [header.index(label)] + [i for i, name in enumerate(header) if name != label]
    values = np.empty((len(rows), len(header)), dtype=np.float64)
    for r, row in enumerate(rows):
        for c, source in enumerate(order):
            cell = row[source].strip()
            if not cell:
                values[r, c] = np.nan
                continue
            try:
                values[r, c] = float(cell)
            except ValueError:
                raise DataError(f"{origins[r]}: column {header[source]!r} holds {cell!r}, not a number") from None
    return Table([header[i] for i in order], values)


def check_labels(table: Table, problem_type: str, both_classes: bool = True) -> None:
    """Labels are present, and 0 or 1 for binary classification (both of them, with ``both_classes``)."""
    labels = table.labels
    if np.isnan(labels).any():
        raise DataError(f"label column {table.columns[0]!r} has missing values")
    if problem_type == "binary_classification":
        classes = set(np.unique(labels).tolist())
        if not classes <= {0.0, 1.0}:
            raise DataError(f"binary classification labels must be 0 or 1, got {sorted(classes)[:10]}")
        if both_classes and len(classes) < 2:
            raise DataError(f"binary classification needs both classes; every label is {classes.pop():g}")


# ---------------------------------------------------------------------------------------------
# Data validation against a Model Monitor constraints.json
# ---------------------------------------------------------------------------------------------


def load_constraints(uri: str) -> dict[str, Any]:
    if uri.startswith("s3://"):
        import boto3

        bucket, _, key = uri[len("s3://") :].partition("/")
        body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    else:
        path = Path(uri[len("file://") :] if uri.startswith("file://") else uri)
        try:
            body = path.read_bytes()
        except OSError as error:
            raise DataError(f"cannot read baseline constraints {uri}: {error}") from None
    try:
        constraints = json.loads(body)
    except ValueError as error:
        raise DataError(f"baseline constraints {uri} are not JSON: {error}") from None
    if not isinstance(constraints, dict) or not isinstance(constraints.get("features"), list):
        raise DataError(f"{uri} is not a Model Monitor constraints.json (no 'features' list)")
    return constraints


def validate(table: Table, constraints: dict[str, Any]) -> list[dict[str, str]]:
    """Violations of the features in the Model Monitor ``constraint_violations.json`` shape.

    The baseline's first column (the model's output) and the table's first (the label) are
    left out: a model's predictions are no constraint on labels.
    """
    if (constraints.get("monitoring_config") or {}).get("evaluate_constraints") == "Disabled":
        return []
    violations: list[dict[str, str]] = []

    def violation(feature: str, check: str, description: str) -> None:
        violations.append({"feature_name": feature, "constraint_check_type": check, "description": description})

    described = [f for f in constraints["features"] if isinstance(f, dict) and "name" in f]
    features = {f["name"]: f for f in described[1:]}
    for name in features:
        if name not in table.columns[1:]:
            violation(name, "missing_column_check", f"column {name!r} of the baseline is missing")
    for name in table.columns[1:]:
        if name not in features:
            violation(name, "extra_column_check", f"column {name!r} is not in the baseline")
    rows = len(table.values)
    for index, name in enumerate(table.columns):
        feature = features.get(name) if index else None
        if feature is None or rows == 0:
            continue
        column = table.values[:, index]
        present = column[~np.isnan(column)]
        if feature.get("inferred_type") == "Integral" and present.size and not np.all(np.mod(present, 1) == 0):
            violation(name, "data_type_check", f"column {name!r} is Integral in the baseline but holds fractions")
        required = feature.get("completeness")
        completeness = present.size / rows
        if isinstance(required, (int, float)) and completeness < required - 1e-9:
            violation(
                name,
                "completeness_check",
                f"column {name!r} is {completeness:.4f} complete; the baseline requires {required:.4f}",
            )
        non_negative = (feature.get("num_constraints") or {}).get("is_non_negative")
        if non_negative and present.size and present.min() < 0:
            violation(name, "non_negative_check", f"column {name!r} has negative values (min {present.min():g})")
    return violations


# ---------------------------------------------------------------------------------------------
# Split and write
# ---------------------------------------------------------------------------------------------


def split_indices(
    labels: np.ndarray, problem_type: str, seed: int | list[int], train_fraction: float, validation_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of the train, validation and test splits; stratified for classification."""
    rng = np.random.default_rng(seed)
    if problem_type == "binary_classification":
        groups = [np.flatnonzero(labels == value) for value in np.unique(labels)]
    else:
        groups = [np.arange(len(labels))]
    parts: list[list[np.ndarray]] = [[], [], []]
    for group in groups:
        shuffled = rng.permutation(group)
        n_train = round(len(shuffled) * train_fraction)
        n_validation = round(len(shuffled) * validation_fraction)
        parts[0].append(shuffled[:n_train])
        parts[1].append(shuffled[n_train : n_train + n_validation])
        parts[2].append(shuffled[n_train + n_validation :])
    train, validation, test = (rng.permutation(np.concatenate(p)) for p in parts)
    for name, split in (("train", train), ("validation", validation), ("test", test)):
        if split.size == 0:
            raise DataError(f"the {name} split is empty; {len(labels)} rows are too few (need at least {MIN_ROWS})")
    return train, validation, test


def _format(value: float) -> str:
    if np.isnan(value):
        return ""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def write_csv(path: Path, values: np.ndarray, header: list[str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        if header is not None:
            writer.writerow(header)
        for row in values:
            writer.writerow([_format(v) for v in row])


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole step (this instance's share of it); returns the report. Raises DataError."""
    check_arguments(args)
    share = read_share(args.resource_config)
    source: dict[str, Any]
    if args.input_dir is not None:
        objects = read_input_dir(args.input_dir, share)
        source = {"input_dir": str(args.input_dir), "files": [name for name, _ in objects]}
    else:
        manifest_path = args.manifest or find_manifest(args.manifest_dir, args.manifest_uri)
        manifest = load_manifest(manifest_path, args.manifest_uri, share)
        verify_sha256(manifest, args.manifest_sha256)
        if not manifest.get("partial") and not share.alone:
            # Every instance deals the same key order; alone, the manifest's order is kept as it was.
            manifest["entries"] = share.take(sorted(manifest["entries"], key=lambda e: str(e["key"])))
        objects = fetch_manifest_objects(manifest, args.data_dir) if manifest["entries"] else []
        source = {
            "manifest_uri": args.manifest_uri or str(manifest_path),
            "bucket": manifest.get("bucket"),
            "dataset": manifest.get("dataset"),
            "created_at": manifest.get("created_at"),
            "sha256": manifest.get("sha256"),
            "objects": len(objects),
        }
    out: Path = args.output_dir
    report: dict[str, Any] = {
        "instance": {"host": share.host or "alone", "index": share.index, "count": share.count},
        "source": source,
        "data_version": args.data_version,
        "trigger_reason": args.trigger_reason,
    }
    if not objects and not share.alone:
        # More instances than objects: this one has nothing to split, and says so.
        report.update(rows=0, columns=[], split={"train": 0, "validation": 0, "test": 0, "baseline": 0})
        report["data_validation"] = {"checked": False, "constraints_uri": args.baseline_constraints_uri}
        _write_report(out, share, report)
        return report
    header, rows, origins = parse_csv(objects)
    if len(rows) < MIN_ROWS:
        where = "" if share.alone else f" on instance {share.host} (use fewer instances or larger shards)"
        raise DataError(f"{len(rows)} rows are too few to split{where}; need at least {MIN_ROWS}")
    table = to_table(header, rows, origins, args.label_column)
    check_labels(table, args.problem_type, both_classes=share.alone)

    validation: dict[str, Any] = {"checked": False, "constraints_uri": args.baseline_constraints_uri}
    violations: list[dict[str, str]] = []
    if args.baseline_constraints_uri:
        violations = validate(table, load_constraints(args.baseline_constraints_uri))
        validation.update(checked=True, on_violation=args.on_violation, violations=violations)

    seed = args.seed if share.alone else [args.seed, share.index]
    train, val, test = split_indices(
        table.labels, args.problem_type, seed, args.train_fraction, args.validation_fraction
    )
    # The train split is in random order, so its first rows are a uniform sample of it; the
    # instances' caps add up to --baseline-rows.
    cap = args.baseline_rows // share.count + (share.index < args.baseline_rows % share.count)
    baseline = train[:cap]
    report.update(
        rows=len(rows),
        columns=table.columns,
        label_column=table.columns[0],
        problem_type=args.problem_type,
        split={
            "seed": args.seed,
            "train": int(train.size),
            "validation": int(val.size),
            "test": int(test.size),
            "baseline": int(baseline.size),
        },
        data_validation=validation,
    )
    _write_report(out, share, report)
    if violations and args.on_violation == "fail":
        listed = "; ".join(v["description"] for v in violations[:5])
        more = f" (and {len(violations) - 5} more)" if len(violations) > 5 else ""
        raise DataError(f"data validation failed against {args.baseline_constraints_uri}: {listed}{more}")

    write_csv(out / "train" / share.file_name(TRAIN_FILE), table.values[train])
    write_csv(out / "validation" / share.file_name(VALIDATION_FILE), table.values[val])
    write_csv(out / "test" / share.file_name(TEST_FILE), table.values[test])
    write_csv(out / "baseline" / share.file_name(BASELINE_FILE), table.values[baseline], header=table.columns)
    return report


def _write_report(out: Path, share: Share, report: dict[str, Any]) -> None:
    path = out / "report" / share.file_name(REPORT_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run(args)
    except DataError as error:
        message = f"preprocess failed: {error}"
        print(message, file=sys.stderr)
        if args.message_file.parent.is_dir():
            args.message_file.write_text(message[:1024], encoding="utf-8")
        return 1
    split = report["split"]
    print(
        f"preprocess: {report['rows']} rows, {len(report['columns'])} columns -> "
        f"train {split['train']}, validation {split['validation']}, test {split['test']}"
    )
    for violation in report["data_validation"].get("violations", []):
        print(f"data validation warning: {violation['description']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
