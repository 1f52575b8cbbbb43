"""Dataset versions of any size from an S3 Inventory report, built by many workers in parallel.

:func:`cdk_mlops.datasets.snapshot` lists a dataset in one process: ListObjectVersions returns
1,000 versions a request, so 10^8 objects take 10^5 sequential requests, hours. S3 Inventory
lists the bucket by itself, daily, into CSV files; this module turns one such report into a
dataset version (a v2 sharded manifest, :data:`cdk_mlops.manifest_shards.MANIFEST_INDEX_SCHEMA_V2`)
in three steps, which a Step Functions state machine runs (the handlers are
:mod:`cdk_mlops.lambdas.dataset_snapshot.handler`):

1. :func:`plan` reads the report's ``manifest.json``, checks that it can be used (CSV, all object
   versions, the fields below), chooses the new version's index key and writes the work list,
   one item per inventory data file.
2. :func:`shard_file`, once per data file and in parallel (a Distributed Map), streams the file,
   keeps the current versions of ``datasets/<dataset>/``, writes them as sorted shards and writes
   a small part summary (counts, bytes, the :class:`SetDigest` sum of its rows, its shards).
3. :func:`finalize` adds the part summaries up and writes the index, last: until then no reader
   sees the version.

Key layout, next to the manifests of :mod:`cdk_mlops.datasets` (``<version>`` is
``<YYYYmmddTHHMMSSZ of the report>-<sha256(report URI, dataset)[:16]>``)::

    manifests/<dataset>/<version>.json                        the index (v2), written last
    manifests/<dataset>/<version>/part-FFFFF-CCCCC.jsonl.gz   shard CCCCC of inventory file FFFFF
    manifests/<dataset>/<version>/_work/files.json            the work list (plan), by default
    manifests/<dataset>/<version>/_work/parts/part-FFFFF.json the part summary of file FFFFF

(The work list can go to another bucket instead, the one the state machine's item reader reads:
``<work prefix><dataset>/<version>/files.json``; see :func:`plan`.)

Everything is a function of the report and the dataset name: a step run again on the same
report writes the same keys with the same bytes (gzip header times are fixed), so the state
machine may retry any step, and a second snapshot of one report rewrites the same version.

The inventory must be configured with the CSV format, ``IncludedObjectVersions`` ``All`` (fields
VersionId, IsLatest, IsDeleteMarker) and the optional fields ``Size`` and ``ETag``; :func:`plan`
refuses any other report, naming the setting to change. Rows are kept as
:func:`cdk_mlops.datasets.build_manifest` keeps listed versions: the latest version of each key, not
a delete marker, not a ``/``-terminated folder marker. Keys that cannot be files (see
:func:`cdk_mlops.datasets.key_problem`) are excluded and listed with their reason.

One rule differs from the single-process snapshot, by necessity: an object whose key another
object needs as a directory (``a`` and ``a/b``) is excluded only when both are in the same chunk
of one worker (:data:`cdk_mlops.manifest_shards.SHARD_ENTRIES` rows of one inventory file, in the
file's order). Finding the pairs split over two chunks or files would need every key of the
dataset in one place, which is what this engine avoids. Such a pair stays in the version and is
never lost silently: :func:`cdk_mlops.datasets.materialize` refuses the version before
downloading anything, naming the key that needs the other as a directory, and the fix is the
same (rename one, snapshot again). For the same reason, the set of keys excluded for a conflict
(and so the digest) of a dataset holding such pairs can depend on how the report split its rows;
for any other dataset the version and its digest depend on the objects only.

This module imports only the standard library, :mod:`cdk_mlops.datasets` and
:mod:`cdk_mlops.manifest_shards` (boto3 through the client passed in): it runs in the Lambda functions.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from string import hexdigits
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from cdk_mlops import manifest_shards
from cdk_mlops.datasets import (
    MANIFESTS_PREFIX,
    MAX_KEY_SEGMENT_BYTES,
    DatasetVersionError,
    check_dataset_name,
    dataset_prefix,
    key_problem,
    manifest_prefix,
    parse_s3_uri,
)
from cdk_mlops.manifest_shards import (
    MANIFEST_INDEX_SCHEMA_V2,
    SET_DIGEST_ALGORITHM,
    ManifestIndex,
    SetDigest,
    ShardInfo,
    shard_line,
    shard_location,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "PART_SCHEMA",
    "REQUIRED_FIELDS",
    "InventoryError",
    "InventoryReport",
    "SetDigest",
    "SnapshotPlan",
    "files_key",
    "finalize",
    "latest_report",
    "part_key",
    "plan",
    "read_report",
    "shard_file",
    "shard_name",
]

#: Fields a report must have, by the inventory setting that adds them.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "always": ("Bucket", "Key"),
    "IncludedObjectVersions=All": ("VersionId", "IsLatest", "IsDeleteMarker"),
    "OptionalFields": ("Size", "ETag"),
}
#: Identifies a part summary (one per inventory data file).
PART_SCHEMA = "cdk-mlops.inventory-part.v1"

_WORK = "_work/"
_REPORT_FOLDER = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}-[0-9]{2}Z\Z")
_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_GZIP_LEVEL = 6
# latest_manifest_uri orders manifests of one second by this metadata (cdk_mlops.datasets._WRITTEN_AT).
_WRITTEN_AT = "written-at-ns"
# A report written up to this far "in the future" of `now` is clock skew; further is refused.
_CLOCK_SKEW = timedelta(minutes=15)
_MAX_SEGMENT = MAX_KEY_SEGMENT_BYTES
_CONFLICT = "other objects of the dataset need its key as a directory; rename it (or them)"
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# Part summaries read at once by finalize (boto3 clients may be shared between threads).
_PART_READERS = 16
# Rows a worker passes over, counted in its part summary by why.
_SKIPPED = ("outside", "not_latest", "delete_marker", "folder")


class InventoryError(DatasetVersionError):
    """An inventory report cannot be turned into a dataset version as asked.

    The message names the report, file or key concerned, what is wrong and what to do
    (usually: which inventory setting to change). A :class:`cdk_mlops.datasets.DatasetVersionError`.
    """


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class InventoryReport:
    """One S3 Inventory report, from its ``manifest.json``.

    Attributes:
        uri: ``s3://`` URI of the ``manifest.json``.
        source_bucket: The bucket the report lists.
        inventory_bucket: The bucket holding the report's data files (``destinationBucket``).
        schema: The CSV columns, in order (``fileSchema``).
        created_ms: ``creationTimestamp``: when S3 began listing, milliseconds since the epoch.
        files: ``(key, size, md5)`` of each gzipped CSV data file.
    """

    uri: str
    source_bucket: str
    inventory_bucket: str
    schema: tuple[str, ...]
    created_ms: int
    files: tuple[tuple[str, int, str], ...]

    @property
    def as_of(self) -> str:
        """When the objects were listed, ISO 8601 UTC to the second (``2025-01-31T12:00:00Z``)."""
        return datetime.fromtimestamp(self.created_ms // 1000, UTC).strftime(_ISO_FORMAT)

    @classmethod
    def from_document(cls, document: object, *, uri: str) -> InventoryReport:
        """Parse and check a decoded ``manifest.json``.

        Raises:
            InventoryError: if it is not an S3 Inventory manifest, its format is not CSV, or its
                schema lacks a field of :data:`REQUIRED_FIELDS` (naming the setting that adds it).
        """
        if not isinstance(document, dict):
            raise InventoryError(f"{uri} is not an S3 Inventory manifest.json (not a JSON object); pass a report's")
        try:
            file_format = str(document["fileFormat"])
            if file_format.upper() != "CSV":
                raise InventoryError(
                    f"{uri} is an inventory in {file_format} format; the snapshot engine reads CSV only: set the "
                    "inventory configuration's format to CSV (OutputSchemaVersion/Format: CSV) and use its next report"
                )
            schema = tuple(field.strip() for field in str(document["fileSchema"]).split(","))
            destination = str(document["destinationBucket"])
            files = tuple(
                (str(f["key"]), int(f.get("size", 0)), str(f.get("MD5checksum", ""))) for f in document["files"]
            )
            report = cls(
                uri=uri,
                source_bucket=str(document["sourceBucket"]),
                # An ARN (arn:aws:s3:::name); a plain name is accepted too.
                inventory_bucket=destination.rsplit(":", 1)[-1],
                schema=schema,
                created_ms=int(document["creationTimestamp"]),
                files=files,
            )
        except KeyError as error:
            raise InventoryError(
                f"{uri} is not an S3 Inventory manifest.json (no {error.args[0]!r}); pass the manifest.json of a report"
            ) from None
        except (TypeError, ValueError, AttributeError) as error:
            raise InventoryError(
                f"{uri} is not a valid S3 Inventory manifest.json ({error}); pass a report's"
            ) from None
        for setting, fields in REQUIRED_FIELDS.items():
            missing = [field for field in fields if field not in schema]
            if not missing:
                continue
            fix = {
                "always": "it is not an S3 Inventory report of objects",
                "IncludedObjectVersions=All": "set the inventory's IncludedObjectVersions to All (a report of "
                "current versions only has no version ids, and a version must name them)",
                "OptionalFields": "add Size and ETag to the inventory's OptionalFields",
            }[setting]
            raise InventoryError(
                f"{uri} has no {', '.join(missing)} field (its fileSchema is {', '.join(schema)}): {fix}, "
                "then use its next report"
            )
        return report


def read_report(s3: S3Client, uri: str) -> InventoryReport:
    """Read and check the ``manifest.json`` of an inventory report (see :meth:`InventoryReport.from_document`).

    Raises:
        ValueError: if ``uri`` is not an ``s3://`` URI.
        InventoryError: if there is no object at ``uri``, or it is not a usable report.
    """
    bucket, key = parse_s3_uri(uri)
    body = _get(s3, bucket, key, f"no inventory report at {uri}; pass the s3:// URI of a report's manifest.json")
    try:
        document = json.loads(body)
    except ValueError as error:
        raise InventoryError(f"{uri} is not an S3 Inventory manifest.json ({error}); pass a report's") from None
    return InventoryReport.from_document(document, uri=uri)


def latest_report(s3: S3Client, *, bucket: str, prefix: str) -> str | None:
    """The URI of the newest complete report under an inventory configuration's folder, or ``None``.

    Reports are at ``<prefix><YYYY-MM-DDTHH-MMZ>/manifest.json``, where ``prefix`` is
    ``<destination prefix>/<source bucket>/<configuration id>/``. S3 writes ``manifest.json`` after
    the report's data files, so a folder without one (a report being written) is passed over, and
    so are ``data/`` and ``hive/``.

    Args:
        s3: The S3 client.
        bucket: The bucket the reports are delivered to.
        prefix: The configuration's folder; a missing trailing ``/`` is added.
    """
    folder = prefix if prefix.endswith("/") or not prefix else prefix + "/"
    stamps: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder, Delimiter="/"):
        for common in page.get("CommonPrefixes", ()):
            name = common.get("Prefix", "")[len(folder) :].rstrip("/")
            if _REPORT_FOLDER.match(name):
                stamps.append(name)
    from botocore.exceptions import ClientError

    for stamp in sorted(stamps, reverse=True):
        key = f"{folder}{stamp}/manifest.json"
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING_CODES:
                continue
            raise
        return f"s3://{bucket}/{key}"
    return None


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class SnapshotPlan:
    """What :func:`plan` decided, as the later steps receive it (:meth:`to_dict` is the wire form).

    Attributes:
        dataset: The dataset name.
        bucket: The data store bucket (the dataset's and the version's).
        index_key: Key of the version's index, ``manifests/<dataset>/<stamp>-<id>.json``.
        report: ``s3://`` URI of the report's ``manifest.json``.
        schema: The report's CSV columns.
        as_of: When the report listed the objects (ISO 8601 UTC).
        files_key: Key of the work list, in ``files_bucket``.
        file_count: Inventory data files, one work item each.
        allow_empty: Accept a version of 0 objects.
        files_bucket: The bucket holding the work list. Default: - ``bucket``.
    """

    dataset: str
    bucket: str
    index_key: str
    report: str
    schema: tuple[str, ...]
    as_of: str
    files_key: str
    file_count: int
    allow_empty: bool = False
    files_bucket: str = ""

    def __post_init__(self) -> None:
        if not self.files_bucket:
            object.__setattr__(self, "files_bucket", self.bucket)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (small: the file list is in the work list, never here)."""
        return {
            "dataset": self.dataset,
            "bucket": self.bucket,
            "index_key": self.index_key,
            "report": self.report,
            "schema": list(self.schema),
            "as_of": self.as_of,
            "files_bucket": self.files_bucket,
            "files_key": self.files_key,
            "file_count": self.file_count,
            "allow_empty": self.allow_empty,
        }

    @classmethod
    def from_dict(cls, value: object, *, name: str = "plan") -> SnapshotPlan:
        """Parse and check the form :meth:`to_dict` writes.

        Args:
            value: The decoded plan.
            name: What to call it in messages (the event field it came from).

        Raises:
            ValueError: naming the field (``plan.index_key`` and so on) that is missing or wrong.
        """
        if not isinstance(value, Mapping):
            raise ValueError(f"{name} is {type(value).__name__}, not the object the Plan step returns")

        def text(field: str) -> str:
            item = value.get(field)
            if not isinstance(item, str) or not item:
                raise ValueError(f"{name}.{field} is {item!r}, not a non-empty string; pass the Plan step's output")
            return item

        try:
            dataset = check_dataset_name(value.get("dataset"))
        except ValueError as error:
            raise ValueError(f"{name}.dataset: {error}") from None
        index_key = text("index_key")
        if not index_key.startswith(manifest_prefix(dataset)) or not index_key.endswith(".json"):
            raise ValueError(f"{name}.index_key {index_key!r} is not manifests/{dataset}/<version>.json")
        schema = value.get("schema")
        if not isinstance(schema, list) or not all(isinstance(f, str) for f in schema):
            raise ValueError(f"{name}.schema is {schema!r}, not a list of field names")
        lacking = [field for fields in REQUIRED_FIELDS.values() for field in fields if field not in schema]
        if lacking:
            raise ValueError(f"{name}.schema lacks {', '.join(lacking)}; pass the Plan step's output")
        count = value.get("file_count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"{name}.file_count is {count!r}, not a whole number of 0 or more")
        allow_empty = value.get("allow_empty", False)
        if not isinstance(allow_empty, bool):
            raise ValueError(f"{name}.allow_empty is {allow_empty!r}, not true or false")
        report = text("report")
        try:
            parse_s3_uri(report)
        except ValueError as error:
            raise ValueError(f"{name}.report: {error}") from None
        return cls(
            dataset=dataset,
            bucket=text("bucket"),
            index_key=index_key,
            report=report,
            schema=tuple(schema),
            as_of=text("as_of"),
            files_key=text("files_key"),
            file_count=count,
            allow_empty=allow_empty,
            files_bucket=text("files_bucket") if "files_bucket" in value else "",
        )

    @property
    def shard_prefix(self) -> str:
        """Where the version's shards go: the index key without ``.json``, plus ``/``."""
        return shard_location(self.index_key)


def files_key(index_key: str) -> str:
    """Key of the work list of the version whose index is ``index_key``."""
    return f"{shard_location(index_key)}{_WORK}files.json"


def part_key(index_key: str, file_index: int) -> str:
    """Key of the part summary of inventory data file ``file_index``."""
    return f"{shard_location(index_key)}{_WORK}parts/part-{file_index:05d}.json"


def shard_name(file_index: int, chunk: int) -> str:
    """Name of chunk ``chunk`` of inventory data file ``file_index``: ``part-FFFFF-CCCCC.jsonl.gz``."""
    return f"part-{file_index:05d}-{chunk:05d}.jsonl.gz"


def plan(
    s3: S3Client,
    *,
    report_uri: str,
    dataset: str,
    bucket: str,
    now: datetime | None = None,
    allow_empty: bool = False,
    work_bucket: str | None = None,
    work_prefix: str = "",
) -> dict[str, Any]:
    """Check a report, choose the version's index key and write the work list.

    The index key is ``manifests/<dataset>/<stamp>-<id>.json``: the stamp is the report's
    creation time (so versions sort by time with the single-process snapshots and
    :func:`cdk_mlops.datasets.latest_manifest_uri` finds the newest), and ``id`` is the first 16
    hex digits of SHA-256 over the report URI and the dataset name: the content digest is not
    known before the workers run, and a plan run again on the same report chooses the same key.

    The work list is a JSON array, one item per data file:
    ``{"file_index": i, "key": <data file key>, "bucket": <inventory bucket>, "md5": <its MD5>}``,
    at :func:`files_key` in ``bucket``, or at ``<work_prefix><dataset>/<version>/files.json`` in
    ``work_bucket`` when that is given.

    Args:
        s3: The S3 client.
        report_uri: ``s3://`` URI of the report's ``manifest.json``.
        dataset: The dataset name.
        bucket: The data store bucket; the report must list it.
        now: The current time, timezone-aware, to refuse a report from the future. Default: - now.
        allow_empty: Let :func:`finalize` write a version of 0 objects. Default: - refused.
        work_bucket: Where to write the work list (the bucket a Distributed Map's item reader reads).
            Default: - ``bucket``, next to the version's shards.
        work_prefix: The work list's key prefix in ``work_bucket`` (e.g. ``"work/"``). Default: - none.

    Returns:
        The :class:`SnapshotPlan` as a dict (:meth:`SnapshotPlan.to_dict`).

    Raises:
        ValueError: if ``dataset`` is not a valid name, ``report_uri`` not an S3 URI, or ``now`` naive.
        InventoryError: if the report cannot be used (see :meth:`InventoryReport.from_document`),
            lists another bucket, or was created after ``now``.
    """
    dataset_prefix(dataset)
    current = datetime.now(UTC) if now is None else now
    if current.tzinfo is None:
        raise ValueError(f"now={now!r} has no time zone; pass an aware datetime such as datetime.now(UTC)")
    report = read_report(s3, report_uri)
    if report.source_bucket != bucket:
        raise InventoryError(
            f"{report_uri} lists bucket {report.source_bucket!r}, not the data store {bucket!r}; pass a report of "
            f"an inventory configured on {bucket!r} (INVENTORY_PREFIX inventory/{bucket}/<config-id>/)"
        )
    created = datetime.fromtimestamp(report.created_ms / 1000, UTC)
    if created > current + _CLOCK_SKEW:
        raise InventoryError(
            f"{report_uri} says it was created at {report.as_of}, after now ({current:%Y-%m-%dT%H:%M:%SZ}); "
            "the manifest.json was edited or a clock is wrong: use a report S3 delivered"
        )
    version = hashlib.sha256(f"{report_uri}\n{dataset}".encode()).hexdigest()[:16]
    index_key = f"{manifest_prefix(dataset)}{created:{_STAMP_FORMAT}}-{version}.json"
    if work_bucket:
        work_key = f"{work_prefix}{shard_location(index_key)[len(MANIFESTS_PREFIX) :]}files.json"
    else:
        work_key = files_key(index_key)
    work = [
        {"file_index": i, "key": key, "bucket": report.inventory_bucket, "md5": md5}
        for i, (key, _, md5) in enumerate(report.files)
    ]
    result = SnapshotPlan(
        dataset=dataset,
        bucket=bucket,
        index_key=index_key,
        report=report_uri,
        schema=report.schema,
        as_of=report.as_of,
        files_key=work_key,
        file_count=len(work),
        allow_empty=allow_empty,
        files_bucket=work_bucket or bucket,
    )
    s3.put_object(
        Bucket=result.files_bucket,
        Key=result.files_key,
        Body=json.dumps(work, separators=(",", ":")).encode("utf-8"),
        ContentType="application/json",
    )
    return result.to_dict()


# --------------------------------------------------------------------------- the shard worker


class _Md5Reader(io.RawIOBase):
    """A readable stream over an S3 body that hashes what passes through (to check the file's MD5)."""

    def __init__(self, body: Any) -> None:
        self._body = body
        self.md5 = hashlib.md5(usedforsecurity=False)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        self.md5.update(data)
        buffer[: len(data)] = data
        return len(data)


@dataclass
class _Part:
    """What one worker gathers from one inventory data file."""

    prefix: str
    digest: SetDigest
    shards: list[ShardInfo]
    excluded: list[tuple[str, str, str]]
    skipped: dict[str, int]
    rows: int = 0
    chunks: int = 0
    #: Folders (relative) whose every segment passed key_problem's checks: keys share a few.
    clean_folders: set[str] = field(default_factory=set)


_HEX_BYTE = {f"{a}{b}".encode(): bytes.fromhex(f"{a}{b}") for a in hexdigits for b in hexdigits}


def _url_decode(raw: str) -> str:
    """``urllib.parse.unquote_plus(raw, errors="strict")``, at a third of its cost for the usual keys.

    S3 Inventory's CSV writes keys URL-encoded with a space as ``+`` (so ``+`` itself as ``%2B``).
    An ASCII text with valid escapes is decoded here; anything else by ``unquote`` itself.

    Raises:
        UnicodeDecodeError: if the escapes are not UTF-8.
    """
    text = raw.replace("+", " ")
    if "%" not in text:
        return text
    if text.isascii():
        head, *rest = text.encode("ascii").split(b"%")
        try:
            return (head + b"".join([_HEX_BYTE[p[:2]] + p[2:] for p in rest])).decode("utf-8")
        except KeyError:
            pass  # an invalid escape, which unquote keeps as it is
    return unquote(text, errors="strict")


def _key_problem(relative: str, clean_folders: set[str]) -> str | None:
    """:func:`cdk_mlops.datasets.key_problem`, with each folder's segments checked once, not once a key.

    A key is accepted here only when its folder is known clean (or checks clean now) and its last
    segment passes the same checks; anything else gets ``key_problem``'s own answer, so the
    result is always exactly its.
    """
    slash = relative.rfind("/")
    folder, name = relative[: max(slash, 0)], relative[slash + 1 :]
    if slash != -1 and folder not in clean_folders:
        if key_problem(folder + "/x") is not None:
            return key_problem(relative)
        if len(clean_folders) > 100_000:  # bounded: a pathological file of unique folders stays small
            clean_folders.clear()
        clean_folders.add(folder)
    if (
        name in ("", ".", "..")
        or "\x00" in name
        or "\\" in name
        or (len(name) * 4 > _MAX_SEGMENT and len(name.encode("utf-8", "surrogatepass")) > _MAX_SEGMENT)
    ):
        return key_problem(relative)
    return None


def _rows(stream: io.RawIOBase, schema: tuple[str, ...], where: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number, values)`` of each CSV row of a gzipped inventory data file."""
    text = io.TextIOWrapper(gzip.GzipFile(fileobj=io.BufferedReader(stream, 1024 * 1024)), "utf-8", newline="")
    width = len(schema)
    number = 0
    try:
        for number, values in enumerate(csv.reader(text, strict=True), start=1):
            if len(values) != width:
                raise InventoryError(
                    f"{where} line {number} has {len(values)} values, its report's fileSchema {width} "
                    f"({', '.join(schema)}); the file does not belong to this report, plan the snapshot again"
                )
            yield number, values
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as error:
        raise InventoryError(
            f"{where} is not a readable gzipped CSV inventory file (near line {number + 1}: {error}); "
            "check that the report is complete, or plan the snapshot from the next report"
        ) from None


def shard_file(
    s3: S3Client,
    plan: Mapping[str, Any] | SnapshotPlan,
    *,
    file_index: int,
    key: str,
    bucket: str,
    md5: str | None = None,
    chunk_entries: int | None = None,
) -> dict[str, Any]:
    """Turn one inventory data file into shards and a part summary.

    The file is streamed (gzip, CSV). Kept: rows of ``datasets/<dataset>/`` that are the latest
    version and not a delete marker, and whose key is not a folder marker (``.../``); keys are
    URL-decoded (S3 Inventory writes them URL-encoded, a space as ``+``, in CSV). A key that
    cannot be a file (:func:`cdk_mlops.datasets.key_problem`) is excluded with its reason. The kept
    rows are cut into chunks of ``chunk_entries`` in the file's order; in each chunk a key that
    another needs as a directory is excluded (see the module's notes), the rest is sorted by key
    and written as shard :func:`shard_name` ``(file_index, chunk)``, with a fixed gzip header time so
    a retry rewrites identical bytes. Memory holds one chunk. Last, the part summary is written to
    :func:`part_key`; :func:`finalize` requires one per file.

    Args:
        s3: The S3 client.
        plan: What :func:`plan` returned.
        file_index: The work item's ``file_index``.
        key: The data file's key (the work item's ``key``).
        bucket: The bucket holding it (the work item's ``bucket``).
        md5: The file's MD5 from the report, checked when given. Default: - not checked.
        chunk_entries: Most rows per shard. Default: - :data:`cdk_mlops.manifest_shards.SHARD_ENTRIES`.

    Returns:
        A small summary: ``{"file_index", "part", "rows", "object_count", "total_bytes", "shards", "excluded"}``
        (counts; ``part`` is the summary's ``s3://`` URI).

    Raises:
        ValueError: if ``plan`` is malformed (naming the field) or ``chunk_entries`` is not positive.
        InventoryError: if the file is missing, unreadable, does not match its MD5, or lists a key twice.
    """
    checked = plan if isinstance(plan, SnapshotPlan) else SnapshotPlan.from_dict(plan)
    limit = manifest_shards.SHARD_ENTRIES if chunk_entries is None else chunk_entries
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"chunk_entries={limit!r} must be a whole number of 1 or more")
    where = f"inventory file s3://{bucket}/{key} (file {file_index} of {checked.report})"
    body = _get(s3, bucket, key, f"{where} does not exist; the report was deleted or expired, plan again", stream=True)
    reader = _Md5Reader(body)
    column = {name: i for i, name in enumerate(checked.schema)}
    key_i, version_i, latest_i, marker_i, size_i, etag_i = (
        column[name] for name in ("Key", "VersionId", "IsLatest", "IsDeleteMarker", "Size", "ETag")
    )
    prefix = dataset_prefix(checked.dataset)
    part = _Part(prefix, SetDigest(checked.dataset), [], [], dict.fromkeys(_SKIPPED, 0))
    chunk: list[tuple[str, str, str, int]] = []
    try:
        for number, values in _rows(reader, checked.schema, where):
            part.rows += 1
            object_key = _url_decode(values[key_i])
            if not object_key.startswith(prefix):
                part.skipped["outside"] += 1
            elif values[latest_i] != "true":
                part.skipped["not_latest"] += 1
            elif values[marker_i] == "true":
                part.skipped["delete_marker"] += 1
            elif object_key.endswith("/"):
                part.skipped["folder"] += 1
            else:
                version_id = values[version_i] or "null"
                problem = _key_problem(object_key[len(prefix) :], part.clean_folders)
                if problem is not None:
                    part.excluded.append((object_key, version_id, problem))
                    continue
                try:
                    size = int(values[size_i])
                    if size < 0:
                        raise ValueError(size)
                except ValueError:
                    raise InventoryError(
                        f"{where} line {number}: size {values[size_i]!r} of {object_key!r} is not a whole number; "
                        "the file is not an S3 Inventory CSV file"
                    ) from None
                chunk.append((object_key, version_id, values[etag_i].strip('"'), size))
                if len(chunk) >= limit:
                    _write_chunk(s3, checked, part, file_index, chunk, where)
                    chunk = []
    except UnicodeDecodeError as error:
        raise InventoryError(f"{where} holds a key that is not URL-encoded UTF-8 ({error}); plan again") from None
    if chunk:
        _write_chunk(s3, checked, part, file_index, chunk, where)
    if md5 and reader.md5.hexdigest() != md5:
        raise InventoryError(
            f"{where} has MD5 {reader.md5.hexdigest()}, its report recorded {md5}: the file was changed or cut "
            "short; retry, or plan the snapshot from the next report"
        )
    summary = {
        "schema": PART_SCHEMA,
        "report": checked.report,
        "file_index": file_index,
        "file_key": key,
        "rows": part.rows,
        "object_count": sum(s.object_count for s in part.shards),
        "total_bytes": sum(s.total_bytes for s in part.shards),
        "digest": {"algorithm": SET_DIGEST_ALGORITHM, "sum": part.digest.sum_hex()},
        "shards": [
            {"name": s.name, "object_count": s.object_count, "total_bytes": s.total_bytes, "sha256": s.sha256}
            for s in part.shards
        ],
        "excluded": [{"key": k, "version_id": v, "reason": r} for k, v, r in sorted(part.excluded)],
        "skipped": part.skipped,
    }
    summary_key = part_key(checked.index_key, file_index)
    s3.put_object(
        Bucket=checked.bucket,
        Key=summary_key,
        Body=json.dumps(summary, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        ContentType="application/json",
    )
    return {
        "file_index": file_index,
        "part": f"s3://{checked.bucket}/{summary_key}",
        "rows": part.rows,
        "object_count": summary["object_count"],
        "total_bytes": summary["total_bytes"],
        "shards": len(part.shards),
        "excluded": len(part.excluded),
    }


def _write_chunk(
    s3: S3Client,
    plan: SnapshotPlan,
    part: _Part,
    file_index: int,
    chunk: list[tuple[str, str, str, int]],
    where: str,
) -> None:
    """Exclude the chunk's directory conflicts, sort it, write it as the file's next shard, and count it."""
    number = part.chunks
    part.chunks += 1
    # As cdk_mlops.datasets._exclude_unwritable: an object at `a` and one at `a/b` cannot both be
    # files, so the one at `a` is left out (the deeper keys are a tree, usually the intended layout).
    directories: set[str] = set()
    start = len(part.prefix)
    folders: set[str] = set()
    for entry in chunk:
        # Every directory of a key is its folder or one of the folder's ancestors: each distinct
        # folder is walked once.
        folder = entry[0][: entry[0].rfind("/")]
        if len(folder) < start or folder in folders:
            continue
        folders.add(folder)
        slash = folder.find("/", start)
        while slash != -1:
            directories.add(folder[:slash])
            slash = folder.find("/", slash + 1)
        directories.add(folder)
    kept = []
    for entry in chunk:
        if entry[0] in directories:
            part.excluded.append((entry[0], entry[1], _CONFLICT))
        else:
            kept.append(entry)
    if not kept:
        return
    kept.sort(key=lambda entry: entry[0])
    lines = []
    digest = part.digest
    previous = None
    for object_key, version_id, etag, size in kept:
        if object_key == previous:
            raise InventoryError(
                f"{where} lists {object_key!r} twice as its latest version; the file is not an S3 Inventory "
                "file of one report, plan the snapshot again"
            )
        previous = object_key
        digest.add(object_key, etag, size)
        lines.append(shard_line(object_key, version_id, etag, size))
    text = b"".join(lines)
    name = shard_name(file_index, number)
    s3.put_object(
        Bucket=plan.bucket,
        Key=plan.shard_prefix + name,
        Body=gzip.compress(text, compresslevel=_GZIP_LEVEL, mtime=0),
        ContentType="application/gzip",
    )
    part.shards.append(ShardInfo(name, len(kept), sum(e[3] for e in kept), hashlib.sha256(text).hexdigest()))


# --------------------------------------------------------------------------- finalize


def finalize(s3: S3Client, plan: Mapping[str, Any] | SnapshotPlan) -> dict[str, Any]:
    """Add up the part summaries and write the version's index (v2), last.

    Every data file of the plan must have its part summary (:func:`part_key`); their counts,
    bytes, set digest sums, shards and exclusions are combined. The index is written at the
    plan's ``index_key`` with the write-time metadata :func:`cdk_mlops.datasets.latest_manifest_uri`
    orders same-second manifests by. Its ``created_at`` and ``as_of`` are the report's time.

    Args:
        s3: The S3 client.
        plan: What :func:`plan` returned.

    Returns:
        ``{"dataset", "manifest": <index s3:// URI>, "object_count", "total_bytes", "digest", "as_of", "shards",
        "excluded"}``; the state machine's output, which ``RetrainTrigger(snapshot=...)`` starts a run from
        (``digest`` is the set digest id, the index's ``sha256``).

    Raises:
        ValueError: if ``plan`` is malformed, naming the field.
        InventoryError: if a part summary is missing or is not one of this plan's, or the version
            would hold no object and the plan does not allow it.
    """
    checked = plan if isinstance(plan, SnapshotPlan) else SnapshotPlan.from_dict(plan)
    digest = SetDigest(checked.dataset)
    shards: list[ShardInfo] = []
    excluded: list[tuple[str, str, str]] = []

    def read(file_index: int) -> tuple[int, str, bytes]:
        summary_key = part_key(checked.index_key, file_index)
        where = f"s3://{checked.bucket}/{summary_key}"
        body = _get(
            s3,
            checked.bucket,
            summary_key,
            f"the part summary {where} of inventory file {file_index} is missing: its shard worker has not "
            f"finished (or failed); run the snapshot of {checked.report} again",
        )
        return file_index, where, body

    # One small GET per inventory file: concurrent, so a report of thousands of files takes seconds.
    with ThreadPoolExecutor(max_workers=_PART_READERS) as pool:
        parts = list(pool.map(read, range(checked.file_count)))
    for file_index, where, body in parts:
        try:
            part = json.loads(body)
            if part.get("schema") != PART_SCHEMA or part.get("report") != checked.report:
                raise ValueError(f"it is not a part summary of {checked.report}")
            if part.get("file_index") != file_index:
                raise ValueError(f"it summarizes file {part.get('file_index')!r}")
            digest = digest + SetDigest.from_hex(checked.dataset, part["digest"]["sum"])
            for s in part["shards"]:
                shards.append(
                    ShardInfo(str(s["name"]), int(s["object_count"]), int(s["total_bytes"]), str(s["sha256"]))
                )
            excluded += [(str(x["key"]), str(x["version_id"]), str(x["reason"])) for x in part["excluded"]]
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise InventoryError(f"{where} is not a valid part summary ({error}); run the snapshot again") from None
    count = sum(s.object_count for s in shards)
    prefix = f"s3://{checked.bucket}/{dataset_prefix(checked.dataset)}"
    if count == 0 and not checked.allow_empty:
        if excluded:
            first = min(excluded)
            raise InventoryError(
                f"{prefix} holds no object that can be trained on in the inventory of {checked.as_of} ({len(excluded)} "
                f"left out; the first, {first[0]!r}: {first[2]}); rename them and snapshot again"
            )
        raise InventoryError(
            f"{prefix} holds no objects in the inventory report {checked.report} (objects as of {checked.as_of}); "
            "upload data first and wait for the next report, check the dataset name, or pass allow_empty"
        )
    index = ManifestIndex(
        bucket=checked.bucket,
        dataset=checked.dataset,
        created_at=checked.as_of,
        sha256=digest.hexdigest(),
        object_count=count,
        total_bytes=sum(s.total_bytes for s in shards),
        shards=tuple(shards),
        excluded=tuple(sorted(excluded)),
        uri=f"s3://{checked.bucket}/{checked.index_key}",
        schema=MANIFEST_INDEX_SCHEMA_V2,
        set_sum=digest.sum_hex(),
        as_of=checked.as_of,
        report=checked.report,
    )
    s3.put_object(
        Bucket=checked.bucket,
        Key=checked.index_key,
        Body=index.to_json().encode("utf-8"),
        ContentType="application/json",
        Metadata={_WRITTEN_AT: str(time.time_ns())},
    )
    return {
        "dataset": checked.dataset,
        "manifest": index.uri,
        "object_count": index.object_count,
        "total_bytes": index.total_bytes,
        "digest": index.sha256,
        "as_of": checked.as_of,
        "shards": len(shards),
        "excluded": len(excluded),
    }


# --------------------------------------------------------------------------- S3


def _get(s3: S3Client, bucket: str, key: str, missing: str, *, stream: bool = False) -> Any:
    """The bytes (or, with ``stream``, the streaming body) of an object; ``missing`` if it does not exist."""
    from botocore.exceptions import ClientError

    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _MISSING_CODES:
            raise InventoryError(missing) from None
        raise
    return body if stream else body.read()
