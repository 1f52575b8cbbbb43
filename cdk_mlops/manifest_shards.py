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

Version 2 of the index (:data:`MANIFEST_INDEX_SCHEMA_V2`) is written by the distributed snapshot
engine (:mod:`cdk_mlops.inventory`), whose workers each shard one part of an S3 Inventory report:
its shards are named ``part-FFFFF-CCCCC.jsonl.gz`` (inventory file, chunk), each sorted by key but
not in global key order (``"ordering": "shard"``), and its ``sha256`` is a *set* digest
(:class:`SetDigest`) that the workers compute in parallel, not the sequential content digest.
:func:`iter_rows` yields either version's rows in key order (for v2, a k-way merge of the shards).

This module is the format only: :mod:`cdk_mlops.datasets` writes and reads manifests and
re-exports the public names here. Like it, this module imports only the standard library (boto3's
error types lazily, on the first S3 read), and never imports :mod:`cdk_mlops.datasets`, which
imports it on first use of a sharded manifest.
"""

from __future__ import annotations

import gzip
import hashlib
import heapq
import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from json.encoder import encode_basestring, encode_basestring_ascii
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "MANIFEST_INDEX_SCHEMA",
    "MANIFEST_INDEX_SCHEMA_V2",
    "SET_DIGEST_ALGORITHM",
    "SHARD_ENTRIES",
    "ContentDigest",
    "ManifestIndex",
    "SetDigest",
    "ShardInfo",
    "ShardedManifestError",
    "diff_sorted",
    "iter_rows",
    "open_index",
    "put_shards",
    "shard_line",
    "shard_location",
    "shard_reader",
]

#: Identifies the index of a sharded manifest; a reader refuses an index of another schema.
MANIFEST_INDEX_SCHEMA = "cdk-mlops.dataset-manifest-index.v1"
#: The index the distributed (S3 Inventory) engine writes: shards sorted each, a set digest.
MANIFEST_INDEX_SCHEMA_V2 = "cdk-mlops.dataset-manifest-index.v2"
#: The set digest of a v2 index (:class:`SetDigest`).
SET_DIGEST_ALGORITHM = "adhash4096-shake256"
#: Most object versions in one shard. A line is about 145 bytes for typical keys, so a shard holds
#: about 14.5 MB of JSON Lines (2 to 3 MB gzipped). Worst case, a 1,024-byte key of control
#: characters escapes to 6,144 bytes and a line stays under 8 KB, so a shard stays under 800 MB:
#: every shard fits one PUT (5 GB) with room to spare, and a reader holds one shard at a time.
SHARD_ENTRIES = 100_000

_SHARD_NAME = "part-{:05d}.jsonl.gz"
_SHARD_NAME_PATTERN = re.compile(r"^part-[0-9]{5,}\.jsonl\.gz\Z")
# v2: part-<inventory file>-<chunk>.jsonl.gz, so a retried worker rewrites the same names.
_SHARD_NAME_V2_PATTERN = re.compile(r"^part-[0-9]{5,}-[0-9]{5,}\.jsonl\.gz\Z")
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


# Domain tags: an element hash and the digest id can never be mistaken for each other, or for
# any other SHAKE-256 or SHA-256 use of the same rows.
_SET_ELEMENT_TAG = b"cdk-mlops.set-digest.element.v1\n"
_SET_ID_TAG = b"cdk-mlops.set-digest.id.v1\n"
_SET_BYTES = 512  # 4096 bits
_SET_MASK = (1 << (8 * _SET_BYTES)) - 1
_SET_SUM = re.compile(r"^[0-9a-f]{1024}\Z")


def row_text(key: str, etag: str, size: int) -> str:
    """``json.dumps([key, etag, size], separators=(",", ":"))``: the row :class:`ContentDigest` hashes.

    Built from the JSON encoder's own string escaper, which gives the same text at a fifth of
    the cost of a ``json.dumps`` call per row (the snapshot engine hashes every object).
    """
    return f"[{encode_basestring_ascii(key)},{encode_basestring_ascii(etag)},{size}]"


def shard_line(key: str, version_id: str, etag: str, size: int) -> bytes:
    """One shard line, byte for byte what a v1 shard holds for the same entry, at a fraction of the cost."""
    text = (
        f'{{"key":{encode_basestring(key)},"version_id":{encode_basestring(version_id)},'
        f'"etag":{encode_basestring(etag)},"size":{size}}}\n'
    )
    return text.encode("utf-8")


class SetDigest:
    """A digest of a *set* of entries that any partition of them computes in parallel.

    The v1 content digest is one SHA-256 over every entry in key order: one process must see
    them all, in order. A snapshot split over many workers (:mod:`cdk_mlops.inventory`) needs a
    digest of the set that each worker computes over its own rows, in any order, and that
    combines by a cheap operation. This is AdHash (Bellare and Micciancio, 1997) over the
    integers modulo 2^4096: each entry maps to ``h(e)``, SHAKE-256 (512 bytes) of a domain tag
    and the canonical row ``[key, etag, size]`` (:func:`row_text`, the text v1 hashes), read as
    a big-endian integer; the digest of a set is the sum of its elements' ``h`` modulo 2^4096.
    Addition is commutative and associative, so the result does not depend on how rows are
    split over workers or ordered within them, and two parts combine by adding their sums.

    Why it is collision resistant: finding two different multisets with the same sum is a
    k-sum problem; Wagner's generalized birthday attack (2002) on additive hashing modulo 2^n
    costs about 2^(2*sqrt(n)) operations, 2^128 for n = 4096, the strength of SHA-256's
    collision resistance. (Adding the same entry twice is a different multiset; readers refuse
    a key listed twice, so a version never holds one.)

    The stored form is the sum (:meth:`sum_hex`, 1,024 hex characters), from which the digest is
    re-derived and checked, and :meth:`hexdigest`, a SHA-256 over a tag, the dataset name and
    the sum, used like v1's ``sha256`` (to tell versions apart, in lineage). Version ids are not
    hashed, as in v1: re-uploading the same content leaves the digest unchanged.

    Per entry the cost is one SHAKE-256 call, one ``int.from_bytes`` and one addition of
    Python integers; the sum is reduced modulo 2^4096 only when it is read.

    Args:
        dataset: The dataset name, hashed into :meth:`hexdigest` (not into the elements).
    """

    __slots__ = ("_sum", "dataset")

    def __init__(self, dataset: str) -> None:
        self.dataset = dataset
        self._sum = 0

    def add(self, key: str, etag: str, size: int) -> None:
        """Add one entry (in any order; the sum grows by one element's hash)."""
        element = hashlib.shake_256(_SET_ELEMENT_TAG + row_text(key, etag, size).encode("ascii")).digest(_SET_BYTES)
        self._sum += int.from_bytes(element, "big")

    def combine(self, other: SetDigest) -> SetDigest:
        """The digest of the union of two disjoint parts of one dataset (also ``a + b``).

        Raises:
            ValueError: if the two digests are of different datasets.
        """
        if not isinstance(other, SetDigest):
            raise TypeError(f"cannot combine a set digest with {type(other).__name__}; pass a SetDigest")
        if other.dataset != self.dataset:
            raise ValueError(
                f"cannot combine the set digest of dataset {self.dataset!r} with one of {other.dataset!r}; "
                "combine the parts of one dataset"
            )
        combined = SetDigest(self.dataset)
        combined._sum = (self._sum + other._sum) & _SET_MASK
        return combined

    def __add__(self, other: SetDigest) -> SetDigest:
        return self.combine(other)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SetDigest):
            return NotImplemented
        return self.dataset == other.dataset and self.sum_bytes() == other.sum_bytes()

    def __hash__(self) -> int:
        return hash((self.dataset, self.sum_bytes()))

    def __repr__(self) -> str:
        return f"SetDigest({self.dataset!r}, {self.hexdigest()[:16]}...)"

    def sum_bytes(self) -> bytes:
        """The sum modulo 2^4096 as 512 big-endian bytes."""
        self._sum &= _SET_MASK
        return self._sum.to_bytes(_SET_BYTES, "big")

    def sum_hex(self) -> str:
        """The sum modulo 2^4096 as 1,024 lower-case hex characters (the stored form)."""
        return self.sum_bytes().hex()

    @classmethod
    def from_hex(cls, dataset: str, text: str) -> SetDigest:
        """Parse a sum written by :meth:`sum_hex`.

        Raises:
            ValueError: if ``text`` is not 1,024 lower-case hex characters.
        """
        if not isinstance(text, str) or not _SET_SUM.match(text):
            shown = text if not isinstance(text, str) or len(text) <= 40 else text[:37] + "..."
            raise ValueError(f"set digest sum {shown!r} is not 1024 lower-case hex characters")
        digest = cls(dataset)
        digest._sum = int(text, 16)
        return digest

    def hexdigest(self) -> str:
        """The digest id: hex SHA-256 of a tag, the dataset name and the sum (64 characters)."""
        return hashlib.sha256(_SET_ID_TAG + self.dataset.encode("utf-8") + b"\n" + self.sum_bytes()).hexdigest()


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
        schema: :data:`MANIFEST_INDEX_SCHEMA` (v1) or :data:`MANIFEST_INDEX_SCHEMA_V2`. The fields
            below are v2's (``None`` in v1): in v2, ``sha256`` is :meth:`SetDigest.hexdigest`, each
            shard is sorted by key but the shards are not in key order, and ``created_at`` is ``as_of``.
        set_sum: The :class:`SetDigest` sum, 1,024 hex characters.
        as_of: When the S3 Inventory report listed the objects (ISO 8601 UTC): the version holds
            the objects of the prefix as of then.
        report: The ``s3://`` URI of the report's ``manifest.json``.
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
    schema: str = MANIFEST_INDEX_SCHEMA
    set_sum: str | None = None
    as_of: str | None = None
    report: str | None = None

    def to_json(self) -> str:
        """The index document (the stored format; ``uri`` is not part of it)."""
        if self.schema == MANIFEST_INDEX_SCHEMA_V2:
            return self._v2_json()
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

    def _v2_json(self) -> str:
        document: dict[str, Any] = {
            "schema": MANIFEST_INDEX_SCHEMA_V2,
            "bucket": self.bucket,
            "dataset": self.dataset,
            "prefix": f"datasets/{self.dataset}/",
            "created_at": self.created_at,
            "as_of": self.as_of,
            "sha256": self.sha256,
            "digest": {"algorithm": SET_DIGEST_ALGORITHM, "sum": self.set_sum},
            "object_count": self.object_count,
            "total_bytes": self.total_bytes,
            "shard_format": "jsonl.gz",
            "ordering": "shard",
            "shards": [
                {"name": s.name, "object_count": s.object_count, "total_bytes": s.total_bytes, "sha256": s.sha256}
                for s in self.shards
            ],
            "source": {"engine": "s3-inventory", "report": self.report},
        }
        if self.excluded:
            document["excluded"] = [{"key": k, "version_id": v, "reason": r} for k, v, r in self.excluded]
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_document(cls, document: dict[str, Any], *, uri: str | None = None) -> ManifestIndex:
        """Parse a decoded index document and check that it is consistent with itself.

        The dataset name is not validated here (:mod:`cdk_mlops.datasets` does it); the shards
        are not read (:func:`iter_rows` does, and checks them against this index).

        Raises:
            ShardedManifestError: if the schema is not :data:`MANIFEST_INDEX_SCHEMA` or
                :data:`MANIFEST_INDEX_SCHEMA_V2`, a field is missing or of the wrong type, a shard name
                is not ``part-NNNNN.jsonl.gz`` (v2: ``part-FFFFF-CCCCC.jsonl.gz``), the shards' counts
                and bytes do not add up to the index's, or (v2) ``sha256`` is not the set digest's.
        """
        where = uri or "<manifest index>"
        schema = document.get("schema")
        if schema == MANIFEST_INDEX_SCHEMA_V2:
            return _v2_from_document(cls, document, where, uri)
        if schema != MANIFEST_INDEX_SCHEMA:
            raise ShardedManifestError(
                f"{where} has schema {schema!r}, which this version of cdk-mlops cannot read (it reads "
                f"{_SINGLE_SCHEMA!r} manifests and {MANIFEST_INDEX_SCHEMA!r} and {MANIFEST_INDEX_SCHEMA_V2!r} "
                "indexes); if a newer cdk-mlops wrote it, upgrade cdk-mlops, else pass the URI printed by "
                "'cdk-mlops dataset snapshot'"
            )
        with _invalid_index(where):
            index = cls(**_header_fields(document), uri=uri)
        _check_shards(index, where, _SHARD_NAME_PATTERN, "part-NNNNN.jsonl.gz")
        return index


def _v2_from_document(cls: type[ManifestIndex], document: dict[str, Any], where: str, uri: str | None) -> ManifestIndex:
    """Parse a v2 index document (see :meth:`ManifestIndex.from_document`)."""
    with _invalid_index(where):
        digest = document["digest"]
        if not isinstance(digest, dict) or digest.get("algorithm") != SET_DIGEST_ALGORITHM:
            raise ValueError(f"'digest' is {digest!r}, not a {SET_DIGEST_ALGORITHM!r} set digest")
        if document.get("ordering") != "shard":
            raise ValueError(f"'ordering' is {document.get('ordering')!r}, not 'shard'")
        source = document["source"]
        if not isinstance(source, dict):
            raise TypeError(f"'source' is {source!r}, not an object")
        index = cls(
            **_header_fields(document),
            uri=uri,
            schema=MANIFEST_INDEX_SCHEMA_V2,
            set_sum=_text(digest, "sum"),
            as_of=_text(document, "as_of"),
            report=_text(source, "report"),
        )
        expected = SetDigest.from_hex(index.dataset, index.set_sum or "").hexdigest()
    if expected != index.sha256:
        raise ShardedManifestError(
            f"{where} is corrupt: its sha256 {index.sha256} is not the digest of its set digest sum ({expected}); "
            "manifests must not be edited, take a new snapshot"
        )
    names = [shard.name for shard in index.shards]
    if len(set(names)) != len(names):
        raise ShardedManifestError(f"{where} lists a shard twice; the index was edited, take a new snapshot")
    _check_shards(index, where, _SHARD_NAME_V2_PATTERN, "part-FFFFF-CCCCC.jsonl.gz")
    return index


@contextmanager
def _invalid_index(where: str) -> Iterator[None]:
    """A missing or mistyped field of an index document as :class:`ShardedManifestError`, naming it."""
    try:
        yield
    except KeyError as error:
        raise ShardedManifestError(
            f"{where} is not a valid manifest index (missing field {error.args[0]!r}); take a new snapshot"
        ) from None
    except (TypeError, ValueError, AttributeError) as error:
        raise ShardedManifestError(f"{where} is not a valid manifest index ({error}); take a new snapshot") from None


def _header_fields(document: dict[str, Any]) -> dict[str, Any]:
    """The fields both index schemas share, checked for type (raises KeyError, TypeError)."""
    return {
        "bucket": _text(document, "bucket"),
        "dataset": _text(document, "dataset"),
        "created_at": _text(document, "created_at"),
        "sha256": _text(document, "sha256"),
        "object_count": _count(document, "object_count"),
        "total_bytes": _count(document, "total_bytes"),
        "shards": tuple(
            ShardInfo(_text(s, "name"), _count(s, "object_count"), _count(s, "total_bytes"), _text(s, "sha256"))
            for s in document["shards"]
        ),
        "excluded": tuple(
            (_text(x, "key"), _text(x, "version_id"), _text(x, "reason")) for x in document.get("excluded", ())
        ),
    }


def _check_shards(index: ManifestIndex, where: str, pattern: re.Pattern[str], shape: str) -> None:
    """Every shard is named as its schema names them, and the shards add up to the index's totals."""
    for shard in index.shards:
        if not pattern.match(shard.name) or not _SHA256.match(shard.sha256):
            raise ShardedManifestError(
                f"{where} lists a shard {shard.name!r} (sha256 {shard.sha256!r}), not a {shape} "
                "with a hex SHA-256; the index was edited, take a new snapshot"
            )
    counted = (sum(s.object_count for s in index.shards), sum(s.total_bytes for s in index.shards))
    if counted != (index.object_count, index.total_bytes):
        raise ShardedManifestError(
            f"{where} is corrupt: its shards hold {counted[0]} objects of {counted[1]} bytes, the index says "
            f"{index.object_count} of {index.total_bytes}; manifests must not be edited, take a new snapshot"
        )


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

    A v2 index's shards are each sorted but not in key order: they are merged (:func:`heapq.merge`),
    each shard decompressed a block at a time, so memory holds every shard's compressed bytes
    (about 25 bytes an object) and one block of each. A shard is checked as it is read (keys in
    the dataset's prefix and ascending, then its digest, count and bytes once its end is
    reached), so rows of a shard may be yielded before a problem further down it is found; the
    set digest over all rows is checked after the last one. Finish the iteration before relying
    on the rows, as :func:`cdk_mlops.datasets.load_manifest` and ``materialize`` do.
    """
    if index.schema == MANIFEST_INDEX_SCHEMA_V2:
        yield from _iter_merged(index, read)
        return
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


# Decompressed a block at a time while merging: 64 KiB of gzip is about 400 KiB of JSON Lines.
_MERGE_BLOCK = 64 * 1024


def _gunzip_blocks(data: bytes, where: str) -> Iterator[bytes]:
    """The decompressed bytes of a (possibly multi-member) gzip file, a block at a time."""
    position = 0
    while position < len(data):
        decompressor = zlib.decompressobj(wbits=31)
        try:
            while not decompressor.eof:
                if position >= len(data):
                    raise EOFError("the file ends before the end of its compressed data")
                block = data[position : position + _MERGE_BLOCK]
                position += len(block)
                yield decompressor.decompress(block)
            yield decompressor.flush()
        except (EOFError, zlib.error) as error:
            raise ShardedManifestError(f"{where} is not a readable gzip file ({error}); take a new snapshot") from None
        # What follows the member's end was read with it: the next member starts there.
        position -= len(decompressor.unused_data)


def _shard_rows(data: bytes, shard: ShardInfo, where: str, prefix: str) -> Iterator[Row]:
    """The rows of one v2 shard in its (key) order, checked as they are read and against the index at its end."""
    digest = hashlib.sha256()
    count = total = 0
    last: str | None = None
    pending = b""
    for block in _gunzip_blocks(data, where):
        digest.update(block)
        lines = (pending + block).split(b"\n")
        pending = lines.pop()
        for line in lines:
            count += 1
            row = _row(line, where, count)
            key = row[0]
            if not key.startswith(prefix):
                raise ShardedManifestError(
                    f"{where} lists {key!r}, which is outside {prefix}; the manifest was edited, take a new snapshot"
                )
            if last is not None and key <= last:
                raise ShardedManifestError(
                    f"{where} is out of order: {key!r} comes after {last!r}; each shard must be sorted by key, "
                    "the manifest was edited, take a new snapshot"
                )
            last = key
            total += row[3]
            yield row
    if pending:
        raise ShardedManifestError(f"{where} ends in the middle of a line; take a new snapshot")
    if digest.hexdigest() != shard.sha256:
        raise ShardedManifestError(
            f"{where} is corrupt: its sha256 {digest.hexdigest()} does not match the index's {shard.sha256}; "
            "manifests must not be edited, take a new snapshot"
        )
    if (count, total) != (shard.object_count, shard.total_bytes):
        raise ShardedManifestError(
            f"{where} holds {count} objects of {total} bytes, the index recorded {shard.object_count} "
            f"of {shard.total_bytes}; take a new snapshot"
        )


def _row(line: bytes, where: str, number: int) -> Row:
    try:
        record = json.loads(line)
        size = record["size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"size {size!r} is not a whole number of 0 or more")
        return (str(record["key"]), str(record["version_id"]), str(record["etag"]), size)
    except (ValueError, KeyError, TypeError) as error:
        raise ShardedManifestError(
            f"{where} holds a line that is not an entry (line {number}: {error!r}); take a new snapshot"
        ) from None


def _iter_merged(index: ManifestIndex, read: Callable[[str], bytes]) -> Iterator[Row]:
    """A v2 index's rows in key order: a k-way merge of its sorted shards (see :func:`iter_rows`)."""
    where = index.uri or "<manifest index>"
    prefix = f"datasets/{index.dataset}/"
    streams = [_shard_rows(read(shard.name), shard, f"shard {shard.name} of {where}", prefix) for shard in index.shards]
    digest = SetDigest(index.dataset)
    last: str | None = None
    for row in heapq.merge(*streams, key=itemgetter(0)):
        key = row[0]
        if key == last:
            raise ShardedManifestError(
                f"{where} lists {key!r} in two shards; a manifest holds one version of each key, take a new snapshot"
            )
        last = key
        digest.add(key, row[2], row[3])
        yield row
    if digest.sum_hex() != index.set_sum:
        raise ShardedManifestError(
            f"{where} is corrupt: its set digest {index.sha256} does not match its shards ({digest.hexdigest()}); "
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
