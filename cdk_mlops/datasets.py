"""Dataset versions: snapshot an S3 prefix into a manifest, restore it exactly, compare two.

A *dataset* is every object under ``datasets/<name>/`` in a versioned bucket
(see :class:`cdk_mlops.constructs.data_store.VersionedDataStore`). A
*snapshot* lists the current version of each of those objects and writes the
list, a :class:`Manifest`, to ``manifests/<name>/<UTC time>-<digest>.json`` in
the same bucket. Because the bucket keeps old object versions, a manifest can
be *materialized* later: exactly the listed versions are downloaded, whatever
has been overwritten or deleted since. A training job records the manifest
URI, so every model traces back to the bytes it was trained on.

Above :data:`SINGLE_MANIFEST_MAX_ENTRIES` objects a manifest is *sharded* (:mod:`cdk_mlops.manifest_shards`,
whose names this module re-exports); every reader here takes both formats, which share the digest.

This module runs inside Lambda functions and training jobs: it imports only
the standard library, and boto3 lazily, on first use. It never imports
aws-cdk-lib.

Example::

    from cdk_mlops import datasets

    manifest = datasets.snapshot("my-data-bucket", "churn")
    print(manifest.uri, manifest.sha256)
    files = datasets.materialize(manifest.uri, Path("/opt/ml/input/data/train"))
    changes = datasets.diff_uris(old_uri, manifest.uri)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from cdk_mlops.manifest_shards import MANIFEST_INDEX_SCHEMA, SHARD_ENTRIES, ContentDigest, ManifestIndex, ShardInfo

__all__ = [
    "ARTIFACTS_PREFIX",
    "CAPTURE_PREFIX",
    "DATASETS_PREFIX",
    "MANIFESTS_PREFIX",
    "MANIFEST_FORMATS",
    "MANIFEST_INDEX_SCHEMA",
    "MANIFEST_SCHEMA",
    "MAX_DATASET_NAME_LENGTH",
    "MAX_KEY_SEGMENT_BYTES",
    "MONITORING_PREFIX",
    "SHARD_ENTRIES",
    "SINGLE_MANIFEST_MAX_ENTRIES",
    "ContentDigest",
    "DatasetVersionError",
    "ExcludedObject",
    "Manifest",
    "ManifestDiff",
    "ManifestEntry",
    "ManifestIndex",
    "ShardInfo",
    "build_manifest",
    "check_dataset_name",
    "dataset_name_problems",
    "dataset_prefix",
    "diff",
    "diff_uris",
    "iter_entries",
    "key_problem",
    "latest_manifest_uri",
    "load_manifest",
    "manifest_digest",
    "manifest_key",
    "manifest_prefix",
    "materialize",
    "parse_s3_uri",
    "snapshot",
    "write_manifest",
]

#: Key prefix of dataset objects: ``datasets/<name>/<relative key>``.
DATASETS_PREFIX = "datasets/"
#: Key prefix of dataset manifests: ``manifests/<name>/<UTC time>-<digest>.json``.
MANIFESTS_PREFIX = "manifests/"
#: Key prefix of endpoint data capture files.
CAPTURE_PREFIX = "capture/"
#: Key prefix of Model Monitor baselines and reports.
MONITORING_PREFIX = "monitoring/"
#: Key prefix of training outputs and model artifacts.
ARTIFACTS_PREFIX = "artifacts/"

#: Identifies the manifest format; a reader refuses documents of another schema.
MANIFEST_SCHEMA = "cdk-mlops.dataset-manifest.v1"
#: Most entries :func:`write_manifest` writes as one JSON document (``format="auto"``), sharding larger
#: ones: about 14.5 MB (under 800 MB for the longest keys), far from S3's 5 GB single-PUT limit, and
#: datasets up to this size keep exactly the document earlier versions wrote.
SINGLE_MANIFEST_MAX_ENTRIES = 100_000
#: The values of ``format`` that :func:`write_manifest` and :func:`snapshot` accept.
MANIFEST_FORMATS = ("auto", "single", "sharded")
#: Longest accepted dataset name.
MAX_DATASET_NAME_LENGTH = 200

_NAME_CHARS = re.compile(r"[A-Za-z0-9._-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MD5_ETAG = re.compile(r"^[0-9a-f]{32}\Z")
_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_CREATED_AT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_CHUNK = 1024 * 1024
#: Object metadata of a stored manifest: when it was written, in nanoseconds since the epoch.
_WRITTEN_AT = "written-at-ns"
# S3 error codes meaning "this object version does not exist (any more)".
_MISSING_CODES = frozenset({"NoSuchVersion", "NoSuchKey", "404", "NotFound"})
#: What materialize appends to a file's name while it downloads it.
_PART_SUFFIX = ".part"
#: The longest path segment (in UTF-8 bytes) a dataset key may have: the 255-byte file name limit
#: of the common file systems (ext4, XFS, APFS, NTFS) less the download's ``.part`` suffix.
MAX_KEY_SEGMENT_BYTES = 255 - len(_PART_SUFFIX)

_log = logging.getLogger(__name__)


class DatasetVersionError(Exception):
    """A dataset version cannot be recorded, read or restored as asked.

    The message names the object (key and version) or manifest concerned,
    what went wrong and what to do about it.
    """


# --------------------------------------------------------------------------- names and prefixes


def _shown(name: str) -> str:
    return repr(name if len(name) <= 60 else name[:57] + "...")


def dataset_name_problems(name: object) -> list[str]:
    """Every reason ``name`` is not a valid dataset name; empty when it is valid.

    A dataset name is one S3 key segment: ``datasets/<name>/``. It must be 1 to
    200 characters of ASCII letters, digits, ``-``, ``_`` and ``.``, and must
    not contain ``..``. Names are a single segment on purpose: a nested name
    (``a/b``) would put one dataset's objects inside another's prefix, so a
    snapshot or a change trigger of ``a`` would also pick up ``a/b``.

    Args:
        name: The value to check; any type is accepted so callers can pass
            unvalidated input straight through.

    Returns:
        One message per problem, each naming the value and the fix.
    """
    if not isinstance(name, str):
        return [f"dataset name {name!r} is a {type(name).__name__}, not a string; use a name such as 'churn'"]
    if not name:
        return ["dataset name '' is empty; use 1-200 letters, digits, '-', '_' or '.' (e.g. 'churn')"]
    shown = _shown(name)
    problems: list[str] = []
    if len(name) > MAX_DATASET_NAME_LENGTH:
        problems.append(f"dataset name {shown} is {len(name)} characters long; use at most {MAX_DATASET_NAME_LENGTH}")
    if name.startswith("/"):
        problems.append(f"dataset name {shown} starts with '/'; remove the leading slash")
    if "/" in name.lstrip("/"):
        problems.append(
            f"dataset name {shown} contains '/'; use a single segment such as 'churn-2024' "
            "(nested names would place one dataset inside another's prefix)"
        )
    if ".." in name:
        problems.append(f"dataset name {shown} contains '..'; remove it")
    elif name == ".":
        problems.append("dataset name '.' is not a name; use letters or digits (e.g. 'churn')")
    if _CONTROL.search(name):
        problems.append(f"dataset name {shown} contains control characters; remove them")
    others = sorted({c for c in name if not _NAME_CHARS.match(c) and c != "/" and not _CONTROL.match(c)})
    if others:
        listed = " ".join(repr(c) for c in others)
        problems.append(f"dataset name {shown} contains {listed}; use only ASCII letters, digits, '-', '_' and '.'")
    return problems


def check_dataset_name(name: object) -> str:
    """Return ``name`` if it is a valid dataset name.

    Raises:
        ValueError: listing every problem found by :func:`dataset_name_problems`.
    """
    problems = dataset_name_problems(name)
    if problems:
        raise ValueError("; ".join(problems))
    assert isinstance(name, str)
    return name


def dataset_prefix(name: str) -> str:
    """The key prefix of a dataset's objects: ``datasets/<name>/``.

    Raises:
        ValueError: if ``name`` is not a valid dataset name.
    """
    return f"{DATASETS_PREFIX}{check_dataset_name(name)}/"


def manifest_prefix(name: str) -> str:
    """The key prefix of a dataset's manifests: ``manifests/<name>/``.

    Raises:
        ValueError: if ``name`` is not a valid dataset name.
    """
    return f"{MANIFESTS_PREFIX}{check_dataset_name(name)}/"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into ``(bucket, key)``.

    Raises:
        ValueError: if ``uri`` is not an ``s3://`` URI with a bucket and a key.
    """
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an S3 URI; use s3://<bucket>/<key>")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key:
        raise ValueError(f"{uri!r} has no bucket or no key; use s3://<bucket>/<key>")
    return bucket, key


# --------------------------------------------------------------------------- manifests


@dataclass(frozen=True)
class ManifestEntry:
    """One object version in a dataset snapshot.

    Attributes:
        key: The full S3 key, ``datasets/<name>/<relative key>``.
        version_id: The S3 version id; ``"null"`` for an object written while
            the bucket was not versioned.
        etag: The S3 ETag without quotes. It is an MD5 of the content only for
            single-part uploads that are unencrypted or SSE-S3 encrypted.
        size: Size in bytes.
    """

    key: str
    version_id: str
    etag: str
    size: int


@dataclass(frozen=True)
class ExcludedObject:
    """An object of the dataset's prefix that a snapshot leaves out, and why.

    Its key cannot be a file below a directory (see :func:`key_problem`), so no training job
    could read it; recording it keeps the version honest about what the prefix held.

    Attributes:
        key: The full S3 key.
        version_id: The version that was current at the snapshot.
        reason: Why it was left out, and how to bring it in (rename the object).
    """

    key: str
    version_id: str
    reason: str


@dataclass(frozen=True)
class Manifest:
    """A dataset snapshot: the exact object versions a dataset held at one time.

    Attributes:
        bucket: The bucket holding the dataset.
        dataset: The dataset name.
        created_at: When the snapshot was taken, ISO 8601 UTC (``2025-01-31T12:00:00Z``).
        entries: One entry per object, sorted by key.
        sha256: Digest of the dataset's content; see :func:`manifest_digest`.
        uri: Where the manifest is stored (``s3://bucket/manifests/...``), once written.
        excluded: Objects of the prefix left out because their keys cannot be files (see
            :func:`key_problem`); not part of ``sha256``, which covers what is trained on.
        shards: How many shards the stored manifest has; 0 for the single JSON document.
    """

    bucket: str
    dataset: str
    created_at: str
    entries: tuple[ManifestEntry, ...]
    sha256: str
    uri: str | None = None
    excluded: tuple[ExcludedObject, ...] = ()
    shards: int = 0

    @property
    def prefix(self) -> str:
        """The dataset's key prefix, ``datasets/<name>/``."""
        return dataset_prefix(self.dataset)

    @property
    def total_bytes(self) -> int:
        """Sum of the sizes of all entries."""
        return sum(e.size for e in self.entries)

    @property
    def fully_versioned(self) -> bool:
        """False if any entry has the ``null`` version id of an unversioned write.

        Such an object is overwritten in place, so the manifest can restore it
        only until it next changes.
        """
        return all(e.version_id != "null" for e in self.entries)

    def relative_key(self, entry: ManifestEntry) -> str:
        """``entry.key`` without the dataset prefix."""
        # Sliced by length: the name was validated when the manifest was built or parsed, and this
        # runs once per entry in diff() and materialize().
        return entry.key[len(DATASETS_PREFIX) + len(self.dataset) + 1 :]

    def to_json(self) -> str:
        """The manifest as a JSON document (the stored format; ``uri`` is not part of it)."""
        document = {
            "schema": MANIFEST_SCHEMA,
            "bucket": self.bucket,
            "dataset": self.dataset,
            "prefix": self.prefix,
            "created_at": self.created_at,
            "sha256": self.sha256,
            "object_count": len(self.entries),
            "total_bytes": self.total_bytes,
            "entries": [
                {"key": e.key, "version_id": e.version_id, "etag": e.etag, "size": e.size} for e in self.entries
            ],
        }
        if self.excluded:  # absent otherwise, so a manifest without exclusions is what it always was
            document["excluded"] = [
                {"key": x.key, "version_id": x.version_id, "reason": x.reason} for x in self.excluded
            ]
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes, *, uri: str | None = None) -> Manifest:
        """Parse and verify a manifest document written by :meth:`to_json`.

        Args:
            text: The JSON document.
            uri: Where it was read from; recorded on the result and named in errors.

        Raises:
            DatasetVersionError: if the document is not a manifest of this
                schema, or its digest does not match its entries (it was edited
                or corrupted).
        """
        return cls._from_document(_parse(text, uri or "<manifest>"), uri=uri)

    @classmethod
    def _from_document(cls, doc: Any, *, uri: str | None) -> Manifest:
        where = uri or "<manifest>"
        try:
            if not isinstance(doc, dict) or doc.get("schema") != MANIFEST_SCHEMA:
                raise DatasetVersionError(
                    f"{where} is not a dataset manifest (schema {MANIFEST_SCHEMA!r}); "
                    "pass the URI printed by 'cdk-mlops dataset snapshot'"
                )
            entries = tuple(
                ManifestEntry(
                    key=str(e["key"]), version_id=str(e["version_id"]), etag=str(e["etag"]), size=int(e["size"])
                )
                for e in doc["entries"]
            )
            manifest = cls(
                bucket=str(doc["bucket"]),
                dataset=check_dataset_name(doc["dataset"]),
                created_at=str(doc["created_at"]),
                entries=entries,
                sha256=str(doc["sha256"]),
                uri=uri,
                excluded=tuple(
                    ExcludedObject(key=str(x["key"]), version_id=str(x["version_id"]), reason=str(x["reason"]))
                    for x in doc.get("excluded", ())
                ),
            )
        except DatasetVersionError:
            raise
        except KeyError as error:
            raise DatasetVersionError(
                f"{where} is not a valid dataset manifest (missing field {error.args[0]!r}); take a new snapshot"
            ) from None
        except (ValueError, TypeError) as error:
            raise DatasetVersionError(
                f"{where} is not a valid dataset manifest ({error!s}); take a new snapshot"
            ) from None
        outside = [e.key for e in entries if not e.key.startswith(manifest.prefix)]
        if outside:
            raise DatasetVersionError(
                f"{where} lists {outside[0]!r}, which is outside {manifest.prefix}; the manifest was edited, "
                "take a new snapshot"
            )
        expected = manifest_digest(manifest.dataset, entries)
        if expected != manifest.sha256:
            raise DatasetVersionError(
                f"{where} is corrupt: its sha256 {manifest.sha256} does not match its entries ({expected}); "
                "manifests must not be edited, take a new snapshot"
            )
        return manifest


def _parse(text: str | bytes, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise DatasetVersionError(f"{where} is not a valid dataset manifest ({error!s}); take a new snapshot") from None


def manifest_digest(dataset: str, entries: Iterable[ManifestEntry]) -> str:
    """The SHA-256 that identifies a dataset's content.

    It is the hex SHA-256 of the canonical JSON (sorted keys, no whitespace,
    ASCII) of ``{"dataset": name, "entries": [[key, etag, size], ...]}`` with
    the entries sorted by key. Listing order therefore does not matter, and
    the same objects give the same digest in any bucket.

    Version ids are recorded in the manifest but deliberately not hashed: S3
    assigns a new version id on every write, so re-uploading identical bytes
    (a no-op sync, a copy to another bucket) would otherwise change the digest
    although the data did not. Note that S3 gives SSE-KMS and multipart
    objects ETags that are not an MD5 of their bytes; for those, re-uploading
    identical content can produce a new ETag and therefore a new digest. The
    digest never reports two different contents as equal; it can, for such
    objects, report a re-upload as a change. :class:`ContentDigest` computes the same value one
    entry at a time, for manifests too large to hold (the sharded format).
    """
    rows = [[e.key, e.etag, e.size] for e in sorted(entries, key=lambda e: e.key)]
    canonical = json.dumps({"dataset": dataset, "entries": rows}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _client(s3: S3Client | None) -> S3Client:
    if s3 is not None:
        return s3
    import boto3  # imported on first use: importing this module stays cheap and boto3-free

    return boto3.client("s3")


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError(f"now={now!r} has no time zone; pass an aware datetime such as datetime.now(UTC)")
    return now.astimezone(UTC)


def _etag(value: str) -> str:
    return value.strip('"')


def build_manifest(
    bucket: str,
    dataset: str,
    *,
    s3: S3Client | None = None,
    now: datetime | None = None,
    allow_empty: bool = False,
) -> Manifest:
    """List the current version of every object of a dataset.

    Uses paginated ``ListObjectVersions`` only: each object's version id,
    ETag and size come from the listing, so the cost is one request per 1,000
    object versions and no request per object. Deleted objects (whose latest
    version is a delete marker) and zero-byte "folder" markers (keys ending in
    ``/``) are left out. In a bucket that is not versioned every version id is
    ``"null"``; see :attr:`Manifest.fully_versioned`.

    An object whose key cannot be a file below a directory (:func:`key_problem`: a ``..``
    segment, a segment too long for a file name, a key another object needs as a directory)
    is excluded, logged as a warning and listed in :attr:`Manifest.excluded`, so one bad
    upload never makes the dataset untrainable and never disappears unnoticed.

    Args:
        bucket: The bucket name.
        dataset: The dataset name; objects are read from ``datasets/<dataset>/``.
        s3: The S3 client to use. Default: - ``boto3.client("s3")``.
        now: The snapshot time, timezone-aware. Default: - the current time.
        allow_empty: Accept a dataset with no objects. Default: - an empty
            dataset raises, since it usually means a misspelt name.

    Raises:
        ValueError: if ``dataset`` is not a valid name or ``now`` is naive.
        DatasetVersionError: if the dataset has no objects and ``allow_empty`` is false.
        botocore.exceptions.ClientError: if S3 refuses the listing (no such bucket, access denied).
    """
    prefix = dataset_prefix(dataset)
    created_at = _utc(now).strftime(_CREATED_AT_FORMAT)
    client = _client(s3)
    entries: list[ManifestEntry] = []
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", ()):
            key = version["Key"]
            if not version.get("IsLatest") or key.endswith("/"):
                continue
            entries.append(
                ManifestEntry(
                    key=key,
                    version_id=version.get("VersionId") or "null",
                    etag=_etag(version["ETag"]),
                    size=int(version["Size"]),
                )
            )
    if not entries and not allow_empty:
        raise DatasetVersionError(
            f"s3://{bucket}/{prefix} holds no objects; upload data first, check the dataset name, "
            "or pass allow_empty=True (--allow-empty on the cdk-mlops command line)"
        )
    kept, excluded = _exclude_unwritable(prefix, entries)
    for x in excluded:
        _log.warning("s3://%s/%s (version %s) is left out of the snapshot: %s", bucket, x.key, x.version_id, x.reason)
    if not kept and not allow_empty:
        raise DatasetVersionError(
            f"s3://{bucket}/{prefix} holds no object that can be trained on ({len(excluded)} left out; the "
            f"first, {excluded[0].key!r}: {excluded[0].reason}); rename them and snapshot again"
        )
    ordered = tuple(sorted(kept, key=lambda e: e.key))
    return Manifest(
        bucket=bucket,
        dataset=dataset,
        created_at=created_at,
        entries=ordered,
        sha256=manifest_digest(dataset, ordered),
        excluded=tuple(sorted(excluded, key=lambda x: x.key)),
    )


def key_problem(relative_key: str) -> str | None:
    """Why an object's key (relative to its dataset prefix) cannot be a file below a directory, or None.

    The key is split at ``/`` into directories and a file name, as :func:`materialize` and the
    training jobs lay a dataset out on disk. Refused: an empty key, a NUL or backslash, an empty,
    ``.`` or ``..`` segment (it would name another directory, or one outside the dataset), and a
    segment longer than :data:`MAX_KEY_SEGMENT_BYTES` in UTF-8.
    """
    if not relative_key:
        return "its key is empty below the dataset prefix"
    if "\x00" in relative_key or "\\" in relative_key:
        return "its key holds a NUL or a backslash, which no file name may; rename the object"
    segments = relative_key.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        return "its key has an empty, '.' or '..' segment, which would name another directory; rename the object"
    longest = max(len(segment.encode("utf-8", "surrogatepass")) for segment in segments)
    if longest > MAX_KEY_SEGMENT_BYTES:
        return (
            f"a segment of its key is {longest} bytes, over the {MAX_KEY_SEGMENT_BYTES} a file name may have; "
            "rename the object with shorter segments"
        )
    return None


def _exclude_unwritable(prefix: str, entries: list[ManifestEntry]) -> tuple[list[ManifestEntry], list[ExcludedObject]]:
    """Split entries into those that can be files below one directory and those excluded, with why."""
    kept: list[ManifestEntry] = []
    excluded: list[ExcludedObject] = []
    for entry in entries:
        problem = key_problem(entry.key[len(prefix) :])
        if problem is None:
            kept.append(entry)
        else:
            excluded.append(ExcludedObject(entry.key, entry.version_id, problem))
    # An object at `a` and another at `a/b` cannot both be written: `a` would have to be a file and
    # a directory. The one at `a` is left out: the deeper keys are a tree, usually the intended layout.
    directories = {e.key[:i] for e in kept for i, c in enumerate(e.key) if c == "/" and i >= len(prefix)}
    clashing = [e for e in kept if e.key in directories]
    for entry in clashing:
        excluded.append(
            ExcludedObject(
                entry.key,
                entry.version_id,
                "other objects of the dataset need its key as a directory; rename it (or them)",
            )
        )
    return [e for e in kept if e.key not in directories], excluded


def manifest_key(manifest: Manifest) -> str:
    """Where a manifest is stored: ``manifests/<dataset>/<YYYYmmddTHHMMSSZ>-<sha256[:16]>.json``.

    Keys sort by time, so the newest manifest is the last key in a listing.
    The same content snapshotted twice in the same second maps to the same
    key, so retries are idempotent.
    """
    stamp = datetime.strptime(manifest.created_at, _CREATED_AT_FORMAT).strftime(_STAMP_FORMAT)
    return f"{manifest_prefix(manifest.dataset)}{stamp}-{manifest.sha256[:16]}.json"


def write_manifest(
    manifest: Manifest,
    *,
    s3: S3Client | None = None,
    format: str = "auto",
    shard_entries: int | None = None,
) -> Manifest:
    """Store a manifest in its dataset's bucket and return it with its ``uri`` (and ``shards``) set.

    Either format is stored at :func:`manifest_key`; a sharded manifest's shards are written
    first, to ``<key without .json>/part-NNNNN.jsonl.gz``, so its index never names missing ones.

    Args:
        manifest: The manifest to store, e.g. from :func:`build_manifest`.
        s3: The S3 client to use. Default: - ``boto3.client("s3")``.
        format: ``"single"`` (one JSON document), ``"sharded"`` (an index and gzipped JSON Lines
            shards) or ``"auto"``. Default: - ``"auto"``: single up to
            :data:`SINGLE_MANIFEST_MAX_ENTRIES` entries, sharded above.
        shard_entries: Most entries per shard. Default: - :data:`SHARD_ENTRIES` (100,000).

    Raises:
        ValueError: if ``format`` is not one of :data:`MANIFEST_FORMATS`.
    """
    if format not in MANIFEST_FORMATS:
        raise ValueError(f"format={format!r} is not a manifest format; use one of {', '.join(MANIFEST_FORMATS)}")
    key, client, shards = manifest_key(manifest), _client(s3), 0
    if format == "sharded" or (format == "auto" and len(manifest.entries) > SINGLE_MANIFEST_MAX_ENTRIES):
        format_ = _sharded_format()
        with _as_version_error(format_):
            index = format_.put_shards(client, manifest, index_key=key, shard_entries=shard_entries)
        body, shards = index.to_json(), len(index.shards)
    else:
        body = manifest.to_json()
    client.put_object(
        Bucket=manifest.bucket,
        Key=key,
        Body=body.encode("utf-8"),
        ContentType="application/json",
        # Orders manifests of the same second (latest_manifest_uri); the key has one-second stamps.
        Metadata={_WRITTEN_AT: str(time.time_ns())},
    )
    return replace(manifest, uri=f"s3://{manifest.bucket}/{key}", shards=shards)


def snapshot(
    bucket: str,
    dataset: str,
    *,
    s3: S3Client | None = None,
    now: datetime | None = None,
    allow_empty: bool = False,
    format: str = "auto",
) -> Manifest:
    """Record the current versions of a dataset: :func:`build_manifest` then :func:`write_manifest`.

    Args:
        format: The stored format, as for :func:`write_manifest`. Default: - ``"auto"``.

    Returns:
        The stored manifest; its ``uri`` is what a training job should record.
    """
    client = _client(s3)
    manifest = build_manifest(bucket, dataset, s3=client, now=now, allow_empty=allow_empty)
    return write_manifest(manifest, s3=client, format=format)


def _read_document(source: str | Path, s3: S3Client | None) -> tuple[Any, str]:
    """The decoded JSON at ``source`` (an ``s3://`` URI or a local file) and its name for messages."""
    if isinstance(source, str) and source.startswith("s3://"):
        bucket, key = parse_s3_uri(source)
        from botocore.exceptions import ClientError

        try:
            body = _client(s3).get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING_CODES:
                raise DatasetVersionError(
                    f"no manifest at {source}; list s3://{bucket}/{MANIFESTS_PREFIX} for the manifests that exist"
                ) from None
            raise
        return _parse(body, source), source
    path = Path(source)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise DatasetVersionError(f"no manifest file at {path}; pass an s3:// URI or an existing file") from None
    return _parse(text, str(path)), str(path)


def _open(source: str | Path, s3: S3Client | None) -> tuple[Manifest | ManifestIndex, Iterator[ManifestEntry]]:
    """The manifest or index at ``source``, and its entries in key order (streamed for an index)."""
    doc, where = _read_document(source, s3)
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if not isinstance(schema, str) or schema == MANIFEST_SCHEMA or not schema.startswith("cdk-mlops.dataset-manifest"):
        manifest = Manifest._from_document(doc, uri=where)
        return manifest, iter(sorted(manifest.entries, key=lambda e: e.key))
    format_ = _sharded_format()
    client = _client(s3) if where.startswith("s3://") else None
    with _as_version_error(format_):
        index, rows = format_.open_index(doc, uri=where, client=client, name_problems=dataset_name_problems)

    def entries() -> Iterator[ManifestEntry]:
        with _as_version_error(format_):
            yield from (ManifestEntry(*row) for row in rows)

    return index, entries()


def load_manifest(source: str | Path, *, s3: S3Client | None = None) -> Manifest:
    """Read and verify a manifest (either format) from ``s3://bucket/key`` or a local file.

    A sharded manifest's shards, next to its index (the prefix or directory named like it without
    ``.json``), are all read into memory; :func:`iter_entries` reads one shard at a time.

    Raises:
        DatasetVersionError: if there is no manifest at ``source``, it is not a valid manifest,
            one of its shards is missing or does not match its index, or a newer cdk-mlops wrote it.
    """
    opened, entries = _open(source, s3)
    if isinstance(opened, Manifest):
        return opened
    excluded = tuple(ExcludedObject(*x) for x in opened.excluded)
    header = (opened.bucket, opened.dataset, opened.created_at)
    return Manifest(*header, tuple(entries), opened.sha256, opened.uri, excluded, len(opened.shards))


def iter_entries(source: str | Path, *, s3: S3Client | None = None) -> Iterator[ManifestEntry]:
    """The entries of a manifest (either format) in key order, holding one shard at a time at most.

    Each shard is verified against its index before its entries are yielded; the content digest
    over all shards is checked after the last one, so finish the iteration before relying on it.
    A single-format manifest is read and verified whole. Raises as :func:`load_manifest`.
    """
    yield from _open(source, s3)[1]


def _sharded_format() -> Any:
    # Imported on first use of a sharded manifest: Lambda assets built before it existed lack it.
    try:
        from cdk_mlops import manifest_shards
    except ImportError:
        raise DatasetVersionError(
            "sharded manifests need cdk_mlops/manifest_shards.py next to cdk_mlops/datasets.py; "
            "ship it in the function's asset (lambda_code(..., 'manifest_shards.py'))"
        ) from None
    return manifest_shards


@contextmanager
def _as_version_error(format_: Any) -> Iterator[None]:
    try:
        yield
    except format_.ShardedManifestError as error:
        raise DatasetVersionError(str(error)) from None


def __getattr__(name: str) -> Any:
    # The sharded format's public names, re-exported lazily (see _sharded_format).
    if name in ("MANIFEST_INDEX_SCHEMA", "SHARD_ENTRIES", "ContentDigest", "ManifestIndex", "ShardInfo"):
        return getattr(_sharded_format(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def latest_manifest_uri(bucket: str, dataset: str, *, s3: S3Client | None = None) -> str | None:
    """The URI of the newest manifest (single document or sharded index) of a dataset, or ``None``.

    Only ``.json`` objects directly under ``manifests/<dataset>/`` count, never the shards below.
    Keys sort by their one-second stamp. Manifests of one second (two snapshots of changing data
    in the same second) are told apart by the write time :func:`write_manifest` records in each
    object's metadata (a HEAD request each, for those few only); one without it (written before
    0.1.0 recorded it) counts as the oldest of its second.
    """
    client = _client(s3)
    keys: list[str] = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=manifest_prefix(dataset), Delimiter="/"):
        keys += [item["Key"] for item in page.get("Contents", ()) if item["Key"].endswith(".json")]
    if not keys:
        return None
    newest = max(_stamp(key) for key in keys)
    tied = sorted(key for key in keys if _stamp(key) == newest)
    if len(tied) > 1:
        tied.sort(key=lambda key: (_written_at(client, bucket, key), key))
    return f"s3://{bucket}/{tied[-1]}"


def _stamp(key: str) -> str:
    """The ``YYYYmmddTHHMMSSZ`` of a manifest key (what precedes the digest)."""
    return key.rsplit("/", 1)[-1].split("-", 1)[0]


def _written_at(client: S3Client, bucket: str, key: str) -> int:
    metadata = client.head_object(Bucket=bucket, Key=key).get("Metadata", {})
    value = metadata.get(_WRITTEN_AT, "")
    return int(value) if value.isdigit() else 0


# --------------------------------------------------------------------------- materialize


def _target(root: Path, manifest: Manifest, entry: ManifestEntry, folders: dict[Path, bool]) -> Path:
    relative = manifest.relative_key(entry)
    # Snapshots leave such keys out; a manifest written before they did may still list one.
    problem = key_problem(relative)
    target = root.joinpath(*relative.split("/"))
    # As target.resolve() tells, a folder resolved once for its files (islink: False for a refused name).
    if problem is None and target.parent not in folders:
        folders[target.parent] = target.parent.resolve().is_relative_to(root)
    linked_out = problem is None and os.path.islink(target) and not target.resolve().is_relative_to(root)
    if problem is None and (not folders[target.parent] or linked_out):
        problem = "it resolves outside the destination (a symbolic link in the way)"
    if problem is not None:
        raise DatasetVersionError(
            f"s3://{manifest.bucket}/{entry.key} (version {entry.version_id}) cannot be written below "
            f"{root}: {problem}, then take a new snapshot"
        )
    return target


def _plan(root: Path, manifest: Manifest) -> list[tuple[ManifestEntry, Path]]:
    folders: dict[Path, bool] = {}
    plan = [(entry, _target(root, manifest, entry, folders)) for entry in manifest.entries]
    files = {manifest.relative_key(entry) for entry in manifest.entries}  # as text: cheap for millions
    for entry, _ in plan:
        parts = manifest.relative_key(entry).split("/")
        clash = next((root.joinpath(*parts[:n]) for n in range(1, len(parts)) if "/".join(parts[:n]) in files), None)
        if clash is not None:
            raise DatasetVersionError(
                f"s3://{manifest.bucket}/{entry.key} needs {clash} to be a directory, but another object of "
                "the dataset is stored at that path; rename one of them and take a new snapshot"
            )
    return plan


def _missing(manifest: Manifest, entry: ManifestEntry, where: str) -> DatasetVersionError:
    if entry.version_id == "null":
        cause = (
            "it was written while the bucket was not versioned and has since been deleted; "
            "enable versioning so snapshots can be restored"
        )
    else:
        cause = (
            "the version was deleted, or expired by the bucket's noncurrent-version lifecycle rule; "
            "restore it from a backup, or take a new snapshot and retrain. Keep versions longer "
            "(VersionedDataStore noncurrent_version_expiration=None) to keep manifests restorable"
        )
    return DatasetVersionError(
        f"s3://{manifest.bucket}/{entry.key} version {entry.version_id} listed in {where} no longer exists: {cause}"
    )


def _download(client: S3Client, manifest: Manifest, entry: ManifestEntry, target: Path, where: str) -> None:
    from botocore.exceptions import ClientError

    try:
        response = client.get_object(Bucket=manifest.bucket, Key=entry.key, VersionId=entry.version_id)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code"))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _MISSING_CODES or status == 404:
            raise _missing(manifest, entry, where) from None
        raise
    name = f"s3://{manifest.bucket}/{entry.key} version {entry.version_id}"
    returned = _etag(response.get("ETag", ""))
    if returned != entry.etag:
        raise DatasetVersionError(
            f"{name} has ETag {returned}, but {where} recorded {entry.etag}: this is not the recorded content "
            "(the manifest belongs to another bucket, or the bucket is unversioned and the object was "
            "overwritten); take a new snapshot"
        )
    # The ETag is an MD5 of the bytes only for single-part objects that are not SSE-KMS or SSE-C
    # encrypted; for the others, the returned ETag (checked above), the size and the checksums
    # botocore validates on download are what can be verified.
    check_md5 = (
        _MD5_ETAG.match(entry.etag) is not None
        and response.get("ServerSideEncryption") not in ("aws:kms", "aws:kms:dsse")
        and not response.get("SSECustomerAlgorithm")
    )
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    partial = target.with_name(target.name + _PART_SUFFIX)
    body = response["Body"]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        out = partial.open("wb")
    except OSError as error:  # a name or path the file system refuses (too long, reserved)
        body.close()
        raise DatasetVersionError(
            f"{name} cannot be written to {target}: {error.strerror or error}; rename the object, "
            "or materialize to a shorter destination path"
        ) from None
    try:
        with out:
            for chunk in body.iter_chunks(_CHUNK):
                out.write(chunk)
                size += len(chunk)
                if check_md5:
                    md5.update(chunk)
        if size != entry.size:
            raise DatasetVersionError(
                f"{name}: downloaded {size} bytes, {where} recorded {entry.size}; retry the download"
            )
        if check_md5 and md5.hexdigest() != entry.etag:
            raise DatasetVersionError(
                f"{name}: the downloaded bytes have MD5 {md5.hexdigest()}, not the recorded ETag {entry.etag}; "
                "the download was corrupted, retry it"
            )
        os.replace(partial, target)
    finally:
        body.close()
        partial.unlink(missing_ok=True)


def materialize(manifest: str | Path | Manifest, destination: Path, *, s3: S3Client | None = None) -> list[Path]:
    """Download exactly the object versions a manifest lists.

    Each object is written to ``destination/<key relative to the dataset
    prefix>``: first to a ``.part`` file, then renamed once its size and
    ETag (and, where the ETag is an MD5, its content) match the manifest.
    Every key is checked before anything is downloaded: a key that would
    escape ``destination`` (``..`` segments and the like) is refused.
    Files in ``destination`` that the manifest does not list are left alone;
    start from an empty directory for an exact copy.

    Args:
        manifest: A manifest URI (``s3://...``), a local manifest file, or a :class:`Manifest`.
        destination: The directory to write to; created if missing.
        s3: The S3 client to use. Default: - ``boto3.client("s3")``.

    Returns:
        The written files, in manifest (key) order.

    Raises:
        DatasetVersionError: naming the key and version, if a listed version no
            longer exists, does not match the manifest, or cannot be written safely.
    """
    client = _client(s3)
    loaded = manifest if isinstance(manifest, Manifest) else load_manifest(manifest, s3=client)
    where = loaded.uri or "the manifest"
    destination.mkdir(parents=True, exist_ok=True)
    root = destination.resolve()
    plan = _plan(root, loaded)
    for entry, target in plan:
        _download(client, loaded, entry, target, where)
    return [target for _, target in plan]


# --------------------------------------------------------------------------- diff


@dataclass(frozen=True)
class ManifestDiff:
    """How dataset B differs from dataset A, by key relative to each dataset's prefix.

    Attributes:
        added: Keys in B only.
        removed: Keys in A only.
        changed: Keys in both whose ETag or size differ. A key re-uploaded
            with the same content (new version id, same ETag) is unchanged.
    """

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]

    @property
    def identical(self) -> bool:
        """True when nothing was added, removed or changed."""
        return not (self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "identical": self.identical,
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": list(self.changed),
        }


def diff(a: Manifest, b: Manifest) -> ManifestDiff:
    """Compare two manifests; keys are relative to each dataset's prefix and sorted."""
    old = {a.relative_key(e): (e.etag, e.size) for e in a.entries}
    new = {b.relative_key(e): (e.etag, e.size) for e in b.entries}
    return ManifestDiff(
        added=tuple(sorted(new.keys() - old.keys())),
        removed=tuple(sorted(old.keys() - new.keys())),
        changed=tuple(sorted(k for k in old.keys() & new.keys() if old[k] != new[k])),
    )


def diff_uris(a: str | Path, b: str | Path, *, s3: S3Client | None = None) -> ManifestDiff:
    """Compare two manifests of either format (``s3://`` URIs or local files), as :func:`diff`.

    Both are streamed in key order and merged, a sharded one a shard at a time: time grows linearly
    with the datasets, memory with their differences (and a single-format manifest, read whole).
    """
    client = _client(s3) if any(str(x).startswith("s3://") for x in (a, b)) else s3
    rows = [((e.key.split("/", 2)[2], e.etag, e.size) for e in iter_entries(x, s3=client)) for x in (a, b)]
    added, removed, changed = _sharded_format().diff_sorted(*rows)
    return ManifestDiff(added=tuple(added), removed=tuple(removed), changed=tuple(changed))
