"""Sharded dataset manifests: gzipped JSON Lines shards under one JSON index.

A dataset version of many objects does not fit one JSON document: at about 145 bytes an
object, 10^8 objects make a 14 GB manifest, beyond S3's 5 GB single PUT and beyond what one
process should hold in memory. The sharded format splits the entries into files of at most
:data:`SHARD_ENTRIES` object versions each, and writes one small index that names every shard
with its count, bytes and digest, and carries the dataset's count, bytes and content digest.

Layout, next to the single-format manifests of :mod:`cdk_mlops.datasets`::

    manifests/<dataset>/<stamp>-<sha16>.json                 the index (schema MANIFEST_INDEX_SCHEMA)
    manifests/<dataset>/<stamp>-<sha16>/part-00000.jsonl.gz  shard 0: entries 0 .. SHARD_ENTRIES-1
    manifests/<dataset>/<stamp>-<sha16>/part-00001.jsonl.gz  ...

Each shard line is one object version with the fields of a single-format entry,
``{"key":...,"version_id":...,"etag":...,"size":...}``, and the lines of all shards, in shard
order, are sorted by key: Athena, Spark or ``gzip -dc | jq`` read them as they are. The index's
``sha256`` is the same content digest the single format records (:class:`ContentDigest` computes
it while streaming), so the same data has the same digest in either format.

This module is the format only: :mod:`cdk_mlops.datasets` writes and reads manifests and
re-exports the public names here. Like it, this module imports only the standard library (boto3's
error types lazily, on the first S3 read), and never imports :mod:`cdk_mlops.datasets`, which
imports it on first use of a sharded manifest.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "MANIFEST_INDEX_SCHEMA",
    "SHARD_ENTRIES",
    "ContentDigest",
    "ManifestIndex",
    "ShardInfo",
    "ShardedManifestError",
    "diff_sorted",
    "iter_rows",
    "open_index",
    "put_shards",
    "shard_location",
    "shard_reader",
]

#: Identifies the index of a sharded manifest; a reader refuses an index of another schema.
MANIFEST_INDEX_SCHEMA = "cdk-mlops.dataset-manifest-index.v1"
#: Most object versions in one shard. A line is about 145 bytes for typical keys, so a shard holds
#: about 14.5 MB of JSON Lines (2 to 3 MB gzipped). Worst case, a 1,024-byte key of control
#: characters escapes to 6,144 bytes and a line stays under 8 KB, so a shard stays under 800 MB:
#: every shard fits one PUT (5 GB) with room to spare, and a reader holds one shard at a time.
SHARD_ENTRIES = 100_000

_SHARD_NAME = "part-{:05d}.jsonl.gz"
_SHARD_NAME_PATTERN = re.compile(r"^part-[0-9]{5,}\.jsonl\.gz\Z")
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
# Level 6 (zlib's default) compresses JSON Lines almost as well as 9, at a third of the time.
_GZIP_LEVEL = 6
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# The single-document format's schema (cdk_mlops.datasets.MANIFEST_SCHEMA), named in messages.
_SINGLE_SCHEMA = "cdk-mlops.dataset-manifest.v1"

#: One object version as a shard stores it: key, version id, ETag, size.
Row = tuple[str, str, str, int]


class ShardedManifestError(Exception):
    """A sharded manifest cannot be written or read as asked.

    :mod:`cdk_mlops.datasets` raises it as :class:`cdk_mlops.datasets.DatasetVersionError`, with the
    same message (the index or shard concerned, what is wrong, what to do).
    """


class _Entry(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def version_id(self) -> str: ...
    @property
    def etag(self) -> str: ...
    @property
    def size(self) -> int: ...


class ContentDigest:
    """The content digest of :func:`cdk_mlops.datasets.manifest_digest`, computed one entry at a time.

    ``manifest_digest`` hashes ``{"dataset":name,"entries":[[key,etag,size],...]}`` (canonical
    JSON, entries sorted by key). That text is a fixed head, the rows joined by ``,``, and a fixed
    tail, so feeding the rows in key order to one SHA-256 gives the same hex digest without ever
    holding the list. Rows must come in ascending key order; :meth:`add` refuses any other.

    Args:
        dataset: The dataset name, hashed first as in ``manifest_digest``.
    """

    def __init__(self, dataset: str) -> None:
        self._hash = hashlib.sha256(b'{"dataset":' + json.dumps(dataset).encode("ascii") + b',"entries":[')
        self._last: str | None = None
        self.count = 0

    def add(self, key: str, etag: str, size: int) -> None:
        """Hash one entry.

        Raises:
            ValueError: if ``key`` does not sort after the previous key (the text hashed would
                differ from ``manifest_digest``'s, which sorts).
        """
        if self._last is not None and key <= self._last:
            raise ValueError(f"key {key!r} comes after {self._last!r}; entries must be in ascending key order")
        row = json.dumps([key, etag, size], separators=(",", ":"))
        self._hash.update((b"," if self.count else b"") + row.encode("ascii"))
        self._last = key
        self.count += 1

    def hexdigest(self) -> str:
        """The digest of the entries added so far (more may still be added)."""
        final = self._hash.copy()
        final.update(b"]}")
        return final.hexdigest()


@dataclass(frozen=True)
class ShardInfo:
    """What the index records about one shard.

    Attributes:
        name: The file name, ``part-NNNNN.jsonl.gz``, below the index's shard prefix.
        object_count: Lines (object versions) in the shard.
        total_bytes: Sum of the sizes of those objects.
        sha256: Hex SHA-256 of the shard's uncompressed JSON Lines, version ids included, so a
            shard re-compressed by another tool still verifies and any edit of a line does not.
    """

    name: str
    object_count: int
    total_bytes: int
    sha256: str


@dataclass(frozen=True)
class ManifestIndex:
    """The index of a sharded manifest: the dataset version's header and its shards.

    Attributes:
        bucket: The bucket holding the dataset.
        dataset: The dataset name.
        created_at: Snapshot time, ISO 8601 UTC.
        sha256: The content digest, equal to the single format's for the same entries.
        object_count: Object versions over all shards.
        total_bytes: Sum of their sizes.
        shards: The shards in key order.
        excluded: ``(key, version_id, reason)`` of each object left out of the version
            (see :class:`cdk_mlops.datasets.ExcludedObject`); not part of ``sha256``.
        uri: Where the index was read from or written to, if known.
    """

    bucket: str
    dataset: str
    created_at: str
    sha256: str
    object_count: int
    total_bytes: int
    shards: tuple[ShardInfo, ...]
    excluded: tuple[tuple[str, str, str], ...] = ()
    uri: str | None = None

    def to_json(self) -> str:
        """The index document (the stored format; ``uri`` is not part of it)."""
        document: dict[str, Any] = {
            "schema": MANIFEST_INDEX_SCHEMA,
            "bucket": self.bucket,
            "dataset": self.dataset,
            "prefix": f"datasets/{self.dataset}/",
            "created_at": self.created_at,
            "sha256": self.sha256,
            "object_count": self.object_count,
            "total_bytes": self.total_bytes,
            "shard_format": "jsonl.gz",
            "shards": [
                {"name": s.name, "object_count": s.object_count, "total_bytes": s.total_bytes, "sha256": s.sha256}
                for s in self.shards
            ],
        }
        if self.excluded:  # absent otherwise, as in the single format
            document["excluded"] = [{"key": k, "version_id": v, "reason": r} for k, v, r in self.excluded]
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_document(cls, document: dict[str, Any], *, uri: str | None = None) -> ManifestIndex:
        """Parse a decoded index document and check that it is consistent with itself.

        The dataset name is not validated here (:mod:`cdk_mlops.datasets` does it); the shards
        are not read (:func:`iter_rows` does, and checks them against this index).

        Raises:
            ShardedManifestError: if the schema is not :data:`MANIFEST_INDEX_SCHEMA`, a field is
                missing or of the wrong type, a shard name is not ``part-NNNNN.jsonl.gz``, or the
                shards' counts and bytes do not add up to the index's.
        """
        where = uri or "<manifest index>"
        schema = document.get("schema")
        if schema != MANIFEST_INDEX_SCHEMA:
            raise ShardedManifestError(
                f"{where} has schema {schema!r}, which this version of cdk-mlops cannot read (it reads "
                f"{_SINGLE_SCHEMA!r} manifests and {MANIFEST_INDEX_SCHEMA!r} indexes); if a newer cdk-mlops "
                "wrote it, upgrade cdk-mlops, else pass the URI printed by 'cdk-mlops dataset snapshot'"
            )
        try:
            shards = tuple(
                ShardInfo(_text(s, "name"), _count(s, "object_count"), _count(s, "total_bytes"), _text(s, "sha256"))
                for s in document["shards"]
            )
            index = cls(
                bucket=_text(document, "bucket"),
                dataset=_text(document, "dataset"),
                created_at=_text(document, "created_at"),
                sha256=_text(document, "sha256"),
                object_count=_count(document, "object_count"),
                total_bytes=_count(document, "total_bytes"),
                shards=shards,
                excluded=tuple(
                    (_text(x, "key"), _text(x, "version_id"), _text(x, "reason")) for x in document.get("excluded", ())
                ),
                uri=uri,
            )
        except KeyError as error:
            raise ShardedManifestError(
                f"{where} is not a valid manifest index (missing field {error.args[0]!r}); take a new snapshot"
            ) from None
        except (TypeError, ValueError, AttributeError) as error:
            raise ShardedManifestError(
                f"{where} is not a valid manifest index ({error}); take a new snapshot"
            ) from None
        for shard in shards:
            if not _SHARD_NAME_PATTERN.match(shard.name) or not _SHA256.match(shard.sha256):
                raise ShardedManifestError(
                    f"{where} lists a shard {shard.name!r} (sha256 {shard.sha256!r}), not a part-NNNNN.jsonl.gz "
                    "with a hex SHA-256; the index was edited, take a new snapshot"
                )
        counted = (sum(s.object_count for s in shards), sum(s.total_bytes for s in shards))
        if counted != (index.object_count, index.total_bytes):
            raise ShardedManifestError(
                f"{where} is corrupt: its shards hold {counted[0]} objects of {counted[1]} bytes, the index says "
                f"{index.object_count} of {index.total_bytes}; manifests must not be edited, take a new snapshot"
            )
        return index


def _text(document: dict[str, Any], field: str) -> str:
    value = document[field]
    if not isinstance(value, str):
        raise TypeError(f"{field!r} is {value!r}, not a string")
    return value


def _count(document: dict[str, Any], field: str) -> int:
    value = document[field]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"{field!r} is {value!r}, not a whole number of 0 or more")
    return value


def shard_location(index_location: str) -> str:
    """Where an index's shards are: its URI, key or path without ``.json``, plus ``/``.

    Raises:
        ShardedManifestError: if ``index_location`` does not end in ``.json``.
    """
    if not index_location.endswith(".json"):
        raise ShardedManifestError(
            f"{index_location} is a manifest index but does not end in .json, so its shards cannot be found "
            "(they are in <index without .json>/); keep the index's name as written"
        )
    return index_location[: -len(".json")] + "/"


def _line(entry: _Entry) -> bytes:
    record = {"key": entry.key, "version_id": entry.version_id, "etag": entry.etag, "size": entry.size}
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


class _Excluded(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def version_id(self) -> str: ...
    @property
    def reason(self) -> str: ...


class _Manifest(Protocol):
    @property
    def bucket(self) -> str: ...
    @property
    def dataset(self) -> str: ...
    @property
    def created_at(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def entries(self) -> Sequence[_Entry]: ...
    @property
    def excluded(self) -> Sequence[_Excluded]: ...


def put_shards(
    client: S3Client, manifest: _Manifest, *, index_key: str, shard_entries: int | None = None
) -> ManifestIndex:
    """Write the shards of a manifest and return its index, which the caller writes after them.

    Shards go to ``<index_key without .json>/part-NNNNN.jsonl.gz``, one PUT each, written with a
    fixed gzip header time so the same entries give the same bytes (a retried snapshot rewrites
    identical objects). Until the index exists the shards are not a manifest: a snapshot that
    stops half way leaves files no reader lists.

    Args:
        client: The S3 client.
        manifest: A :class:`cdk_mlops.datasets.Manifest` (its entries in any order; they are
            sorted by key, and must have the manifest's ``sha256``); written to its bucket.
        index_key: The index's key, ``manifests/<dataset>/<stamp>-<sha16>.json``.
        shard_entries: Most entries per shard. Default: - :data:`SHARD_ENTRIES`.

    Raises:
        ShardedManifestError: if two entries share a key, or the entries' digest is not the manifest's.
        ValueError: if ``shard_entries`` is not a positive whole number.
    """
    limit = SHARD_ENTRIES if shard_entries is None else shard_entries
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"shard_entries={limit!r} must be a whole number of 1 or more (default {SHARD_ENTRIES})")
    bucket, sha256 = manifest.bucket, manifest.sha256
    ordered = sorted(manifest.entries, key=lambda e: e.key)
    digest = ContentDigest(manifest.dataset)
    prefix = shard_location(index_key)
    shards: list[ShardInfo] = []
    for start in range(0, len(ordered), limit):
        chunk = ordered[start : start + limit]
        for entry in chunk:
            try:
                digest.add(entry.key, entry.etag, entry.size)
            except ValueError:
                raise ShardedManifestError(
                    f"s3://{bucket}/{entry.key} is listed twice; a manifest holds one version of each key"
                ) from None
        text = b"".join(_line(e) for e in chunk)
        name = _SHARD_NAME.format(len(shards))
        client.put_object(
            Bucket=bucket,
            Key=prefix + name,
            Body=gzip.compress(text, compresslevel=_GZIP_LEVEL, mtime=0),
            ContentType="application/gzip",
        )
        shards.append(ShardInfo(name, len(chunk), sum(e.size for e in chunk), hashlib.sha256(text).hexdigest()))
    if digest.hexdigest() != sha256:
        raise ShardedManifestError(
            f"the entries of the manifest for s3://{bucket}/{index_key} have digest {digest.hexdigest()}, not its "
            f"sha256 {sha256}; build manifests with datasets.build_manifest, which computes it"
        )
    return ManifestIndex(
        bucket=bucket,
        dataset=manifest.dataset,
        created_at=manifest.created_at,
        sha256=sha256,
        object_count=len(ordered),
        total_bytes=sum(s.total_bytes for s in shards),
        shards=tuple(shards),
        excluded=tuple((x.key, x.version_id, x.reason) for x in manifest.excluded),
        uri=f"s3://{bucket}/{index_key}",
    )


def open_index(
    document: dict[str, Any],
    *,
    uri: str,
    client: S3Client | None,
    name_problems: Callable[[str], list[str]],
) -> tuple[ManifestIndex, Iterator[Row]]:
    """Parse an index document and return it with its rows (read lazily, see :func:`iter_rows`).

    Args:
        document: The decoded index.
        uri: Where it was read: an ``s3://`` URI or a local path; its shards are read from next to it.
        client: The S3 client, for an ``s3://`` index.
        name_problems: Checks the dataset name (:func:`cdk_mlops.datasets.dataset_name_problems`).

    Raises:
        ShardedManifestError: as :meth:`ManifestIndex.from_document`, or if the dataset name is invalid.
    """
    index = ManifestIndex.from_document(document, uri=uri)
    problems = name_problems(index.dataset)
    if problems:
        raise ShardedManifestError(f"{uri} is not a valid manifest index ({'; '.join(problems)}); take a new snapshot")
    return index, iter_rows(index, shard_reader(uri, client))


def shard_reader(index_location: str, client: S3Client | None) -> Callable[[str], bytes]:
    """A function reading a shard by name, from the S3 prefix or local directory next to the index.

    Args:
        index_location: The index's ``s3://`` URI or local path.
        client: The S3 client, for an ``s3://`` index.

    Returns:
        ``read(name)``, which raises :class:`ShardedManifestError` naming the shard if it is missing.
    """
    location = shard_location(index_location)
    if location.startswith("s3://"):
        assert client is not None, "an s3:// index needs an S3 client"
        bucket, _, prefix = location[len("s3://") :].partition("/")

        def read_s3(name: str) -> bytes:
            from botocore.exceptions import ClientError

            try:
                return client.get_object(Bucket=bucket, Key=prefix + name)["Body"].read()
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in _MISSING_CODES:
                    raise _missing(index_location, location + name) from None
                raise

        return read_s3

    def read_file(name: str) -> bytes:
        try:
            return Path(location, name).read_bytes()
        except FileNotFoundError:
            raise _missing(index_location, str(Path(location, name))) from None

    return read_file


def _missing(index_location: str, shard: str) -> ShardedManifestError:
    return ShardedManifestError(
        f"shard {shard} of {index_location} is missing; restore it (the bucket keeps old versions of deleted "
        "objects), or take a new snapshot. A local index needs its shard directory next to it"
    )


def _decode(data: bytes, shard: ShardInfo, where: str) -> list[Row]:
    """The rows of one shard, after checking its bytes against what the index recorded."""
    try:
        text = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise ShardedManifestError(f"{where} is not a readable gzip file ({error}); take a new snapshot") from None
    digest = hashlib.sha256(text).hexdigest()
    if digest != shard.sha256:
        raise ShardedManifestError(
            f"{where} is corrupt: its sha256 {digest} does not match the index's {shard.sha256}; "
            "manifests must not be edited, take a new snapshot"
        )
    rows: list[Row] = []
    try:
        for number, line in enumerate(text.splitlines(), start=1):
            record = json.loads(line)
            size = record["size"]
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise ValueError(f"line {number}: size {size!r} is not a whole number of 0 or more")
            rows.append((str(record["key"]), str(record["version_id"]), str(record["etag"]), size))
    except (ValueError, KeyError, TypeError) as error:
        raise ShardedManifestError(
            f"{where} holds a line that is not an entry ({error!r}); take a new snapshot"
        ) from None
    counted = (len(rows), sum(r[3] for r in rows))
    if counted != (shard.object_count, shard.total_bytes):
        raise ShardedManifestError(
            f"{where} holds {counted[0]} objects of {counted[1]} bytes, the index recorded {shard.object_count} "
            f"of {shard.total_bytes}; take a new snapshot"
        )
    return rows


def iter_rows(index: ManifestIndex, read: Callable[[str], bytes]) -> Iterator[Row]:
    """Every object version of a sharded manifest, in key order, verified shard by shard.

    A shard is read whole, checked against the index (digest, count, bytes) and its keys
    checked (inside the dataset's prefix, strictly ascending from the previous shard's) before
    any of its rows is yielded, so memory holds one shard at a time. The index's content digest
    covers every shard, so it is checked after the last one: an edited index raises then.

    Args:
        index: The parsed index.
        read: Reads a shard's bytes by name (see :func:`shard_reader`).

    Raises:
        ShardedManifestError: naming the shard or index, if a shard is missing, unreadable or
            does not match the index, or the content digest does not match.
    """
    where = index.uri or "<manifest index>"
    prefix = f"datasets/{index.dataset}/"
    digest = ContentDigest(index.dataset)
    for shard in index.shards:
        shard_where = f"shard {shard.name} of {where}"
        rows = _decode(read(shard.name), shard, shard_where)
        for key, _, etag, size in rows:
            if not key.startswith(prefix):
                raise ShardedManifestError(
                    f"{shard_where} lists {key!r}, which is outside {prefix}; the manifest was edited, "
                    "take a new snapshot"
                )
            try:
                digest.add(key, etag, size)
            except ValueError as error:
                raise ShardedManifestError(
                    f"{shard_where} is out of order: {error}; the manifest was edited, take a new snapshot"
                ) from None
        yield from rows
    if digest.hexdigest() != index.sha256:
        raise ShardedManifestError(
            f"{where} is corrupt: its sha256 {index.sha256} does not match its shards ({digest.hexdigest()}); "
            "manifests must not be edited, take a new snapshot"
        )


def diff_sorted(
    old: Iterable[tuple[str, str, int]], new: Iterable[tuple[str, str, int]]
) -> tuple[list[str], list[str], list[str]]:
    """Added, removed and changed keys between two streams of ``(relative key, etag, size)``.

    Both streams must be in ascending key order (as :func:`cdk_mlops.datasets.iter_entries`
    yields them); they are merged in one pass, so memory holds the answer, not the inputs. Of
    repeated keys the last counts, as a dictionary of the rows would have it.

    Returns:
        ``(added, removed, changed)``, each sorted.
    """
    added: list[str] = []
    removed: list[str] = []
    changed: list[str] = []
    a_iter, b_iter = _last_of_each(old), _last_of_each(new)
    a, b = next(a_iter, None), next(b_iter, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            assert a is not None
            removed.append(a[0])
            a = next(a_iter, None)
        elif a is None or b[0] < a[0]:
            added.append(b[0])
            b = next(b_iter, None)
        else:
            if a[1:] != b[1:]:
                changed.append(a[0])
            a, b = next(a_iter, None), next(b_iter, None)
    return added, removed, changed


def _last_of_each(rows: Iterable[tuple[str, str, int]]) -> Iterator[tuple[str, str, int]]:
    held: tuple[str, str, int] | None = None
    for row in rows:
        if held is not None and held[0] != row[0]:
            yield held
        held = row
    if held is not None:
        yield held
