"""S3 Inventory's part: the report Amazon S3 delivers for a bucket inventory configuration.

moto stores inventory configurations (``PutBucketInventoryConfiguration``) but never delivers a
report. :func:`publish_inventory_report` does what S3 does at a scheduled delivery: it lists the
source bucket's object versions under the configuration's prefix (``ListObjectVersions`` through
the client, page by page) and writes, in the destination bucket, the layout the Amazon S3 User
Guide documents ("Locating your inventory list", "Amazon S3 Inventory list")::

    <dest-prefix>/<source-bucket>/<config-id>/data/<uuid>.csv.gz                 the inventory list
    <dest-prefix>/<source-bucket>/<config-id>/<YYYY-MM-DDTHH-MMZ>/manifest.json  what was delivered
    <dest-prefix>/<source-bucket>/<config-id>/<YYYY-MM-DDTHH-MMZ>/manifest.checksum  MD5 of manifest.json
    <dest-prefix>/<source-bucket>/<config-id>/hive/dt=<YYYY-MM-DD-HH-MM>/symlink.txt  the data files' URIs

The list is CSV compressed with GZIP, without a header row (the manifest's ``fileSchema`` names
the columns), every value double-quoted, keys URL-encoded as S3 encodes them (form encoding: a
space is ``+``, ``+`` is ``%2B``; decode with :func:`urllib.parse.unquote_plus`), booleans as
``true``/``false``, ETags without their quotes. The columns are ``Bucket, Key``, then, when all
versions are listed, ``VersionId, IsLatest, IsDeleteMarker``, then the optional fields in the
order S3 writes them. A delete marker has no size, ETag, storage class or multipart flag: those
values are empty. The null version of an object written before versioning has an empty
``VersionId``. ``manifest.checksum`` is written last: it is what announces a delivered report.

Only what S3 would list is emulated: CSV (ORC and Parquet are refused), the optional fields
whose values the S3 API reports (:data:`EMULATED_FIELDS`; the others are refused rather than
made up). The configuration is the CloudFormation ``InventoryConfiguration`` shape of
``AWS::S3::Bucket`` (what a deploy declares); :func:`inventory_configurations` reads the S3 API's
shape from a bucket and returns it in that shape. moto answers every configuration with
``IncludedObjectVersions`` ``All`` (it does not keep the value), so a ``Current`` configuration
read through the API reads as ``All``: pass such a configuration in its CloudFormation shape.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote_plus

from botocore.exceptions import ClientError

#: Rows per data file when the caller does not say; S3 splits a large list into several files.
DEFAULT_ROWS_PER_FILE: Final = 1_000_000
#: The version of the manifest format S3 writes.
MANIFEST_VERSION: Final = "2016-11-30"
#: Every optional field, in the column order S3 writes them (the User Guide's CSV manifest example).
FIELD_ORDER: Final = (
    "Size",
    "LastModifiedDate",
    "ETag",
    "StorageClass",
    "IsMultipartUploaded",
    "ReplicationStatus",
    "EncryptionStatus",
    "ObjectLockRetainUntilDate",
    "ObjectLockMode",
    "ObjectLockLegalHoldStatus",
    "IntelligentTieringAccessTier",
    "BucketKeyStatus",
    "ChecksumAlgorithm",
    "ObjectAccessControlList",
    "ObjectOwner",
    "LifecycleExpirationDate",
)
#: The optional fields filled here: those ``ListObjectVersions`` reports for every version.
EMULATED_FIELDS: Final = frozenset({"Size", "LastModifiedDate", "ETag", "StorageClass", "IsMultipartUploaded"})
_VERSION_COLUMNS: Final = ("VersionId", "IsLatest", "IsDeleteMarker")


class InventoryError(ValueError):
    """A configuration S3 (or this emulation of it) cannot deliver; the message says what to change."""


# --- the configuration --------------------------------------------------------------------------------


def _enabled(value: object) -> bool:
    # CloudFormation passes booleans through templates as booleans or as "true"/"false".
    return value is True or (isinstance(value, str) and value.lower() == "true")


def from_api(configuration: Mapping[str, Any]) -> dict[str, Any]:
    """An inventory configuration of the S3 API (``GetBucketInventoryConfiguration``) in the CloudFormation shape."""
    destination = configuration.get("Destination", {}).get("S3BucketDestination", {})
    fields = configuration.get("OptionalFields", [])
    cfn: dict[str, Any] = {
        "Id": configuration["Id"],
        "Enabled": bool(configuration.get("IsEnabled")),
        "IncludedObjectVersions": configuration.get("IncludedObjectVersions", "All"),
        "ScheduleFrequency": configuration.get("Schedule", {}).get("Frequency", "Daily"),
        "Destination": {
            "BucketArn": destination.get("Bucket", ""),
            "Format": destination.get("Format", "CSV"),
            **({"Prefix": destination["Prefix"]} if destination.get("Prefix") else {}),
            **({"BucketAccountId": destination["AccountId"]} if destination.get("AccountId") else {}),
        },
        "OptionalFields": list(fields.get("Field", []) if isinstance(fields, Mapping) else fields),
    }
    prefix = (configuration.get("Filter") or {}).get("Prefix")
    if prefix:
        cfn["Prefix"] = prefix
    return cfn


def inventory_configurations(s3: Any, bucket: str) -> list[dict[str, Any]]:
    """The inventory configurations a bucket holds, each in the CloudFormation shape (:func:`from_api`).

    Each is read with ``GetBucketInventoryConfiguration``: moto's list answer loses the optional fields.
    Under moto ``IncludedObjectVersions`` reads ``All`` whatever was put (module docstring).
    """
    ids: list[str] = []
    request: dict[str, Any] = {"Bucket": bucket}
    while True:
        page = s3.list_bucket_inventory_configurations(**request)
        ids += [c["Id"] for c in page.get("InventoryConfigurationList", [])]
        if not page.get("IsTruncated"):
            break
        request["ContinuationToken"] = page["NextContinuationToken"]
    return [from_api(s3.get_bucket_inventory_configuration(Bucket=bucket, Id=i)["InventoryConfiguration"]) for i in ids]


def _checked(configuration: Mapping[str, Any], source_bucket: str) -> tuple[str, str, list[str]]:
    """The destination bucket, the destination prefix and the optional fields, once the configuration is checked."""
    config_id = configuration.get("Id")
    where = f"inventory configuration {config_id!r} of bucket {source_bucket}"
    if not config_id:
        raise InventoryError(f"an inventory configuration of bucket {source_bucket} has no Id; give it one")
    if not _enabled(configuration.get("Enabled")):
        raise InventoryError(f"{where} is disabled (Enabled: false): S3 delivers no report for it; enable it first")
    destination = configuration.get("Destination") or {}
    fmt = destination.get("Format", "")
    if fmt != "CSV":
        raise InventoryError(f"{where} asks for Format {fmt!r}; only CSV reports are emulated locally")
    arn = str(destination.get("BucketArn", ""))
    if not arn.startswith("arn:") or ":s3:::" not in arn:
        raise InventoryError(f"{where}: Destination.BucketArn {arn!r} is not a bucket ARN (arn:aws:s3:::<bucket>)")
    versions = configuration.get("IncludedObjectVersions")
    if versions not in ("All", "Current"):
        raise InventoryError(f"{where}: IncludedObjectVersions is {versions!r}; it must be All or Current")
    frequency = configuration.get("ScheduleFrequency")
    if frequency not in ("Daily", "Weekly"):
        raise InventoryError(f"{where}: ScheduleFrequency is {frequency!r}; it must be Daily or Weekly")
    fields = list(configuration.get("OptionalFields") or [])
    unknown = sorted(set(fields) - set(FIELD_ORDER))
    if unknown:
        raise InventoryError(f"{where}: unknown OptionalFields {unknown}; S3 knows {list(FIELD_ORDER)}")
    unemulated = sorted(set(fields) - EMULATED_FIELDS)
    if unemulated:
        raise InventoryError(
            f"{where}: the optional fields {unemulated} are not emulated locally (only {sorted(EMULATED_FIELDS)}); "
            "remove them from the configuration used locally"
        )
    ordered = [f for f in FIELD_ORDER if f in fields]
    return arn.split(":::", 1)[1], str(destination.get("Prefix") or ""), ordered


# --- the list -----------------------------------------------------------------------------------------


def _versions(s3: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    """Every object version and delete marker under ``prefix``, each marked ``IsDeleteMarker``, page by page."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        entries = [{**v, "IsDeleteMarker": False} for v in page.get("Versions", [])]
        entries += [{**m, "IsDeleteMarker": True} for m in page.get("DeleteMarkers", [])]
        # A page holds versions and markers apart; S3's list has no documented order, key order reads best.
        yield from sorted(entries, key=lambda e: str(e["Key"]))


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _row(bucket: str, version: Mapping[str, Any], *, all_versions: bool, fields: Sequence[str]) -> list[str]:
    marker = bool(version["IsDeleteMarker"])
    row = [bucket, quote_plus(str(version["Key"]), safe="")]
    if all_versions:
        version_id = str(version.get("VersionId") or "")
        row += ["" if version_id == "null" else version_id, _bool(version["IsLatest"]), _bool(marker)]
    etag = str(version.get("ETag", "")).strip('"')
    values = {
        "Size": "" if marker else str(version.get("Size", 0)),
        "LastModifiedDate": _timestamp(version["LastModified"]) if version.get("LastModified") else "",
        "ETag": "" if marker else etag,
        "StorageClass": "" if marker else str(version.get("StorageClass", "STANDARD")),
        # A multipart upload's ETag is the MD5 of the parts' MD5s followed by "-<part count>".
        "IsMultipartUploaded": "" if marker else _bool("-" in etag),
    }
    return row + [values[f] for f in fields]


def _bool(value: object) -> str:
    return "true" if value else "false"


def _gzip_csv(rows: Sequence[Sequence[str]], mtime: datetime) -> bytes:
    text = io.StringIO()
    csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    return gzip.compress(text.getvalue().encode(), mtime=int(mtime.timestamp()))


def _chunks(rows: Iterator[list[str]], size: int) -> Iterator[list[list[str]]]:
    chunk: list[list[str]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- the delivery ---------------------------------------------------------------------------------------


def _configuration(s3: Any, source_bucket: str, configuration: Mapping[str, Any] | str) -> Mapping[str, Any]:
    if not isinstance(configuration, str):
        return configuration
    try:
        answer = s3.get_bucket_inventory_configuration(Bucket=source_bucket, Id=configuration)
    except ClientError as error:
        raise InventoryError(
            f"bucket {source_bucket} has no inventory configuration {configuration!r} ({error}); "
            "put one first (PutBucketInventoryConfiguration) or pass the configuration itself"
        ) from error
    return from_api(answer["InventoryConfiguration"])


def publish_inventory_report(
    s3: Any,
    *,
    source_bucket: str,
    configuration: Mapping[str, Any] | str,
    now: datetime | None = None,
    rows_per_file: int = DEFAULT_ROWS_PER_FILE,
) -> str:
    """Deliver the inventory report of one configuration, as S3 does on its schedule (module docstring).

    Args:
        s3: An S3 client of the local AWS (the source and destination buckets are read and written with it).
        source_bucket: The bucket the inventory lists.
        configuration: The inventory configuration in the CloudFormation shape (``Id``, ``Enabled``,
            ``Destination`` with ``BucketArn``, ``Format`` and ``Prefix``, ``IncludedObjectVersions``,
            ``OptionalFields``, ``Prefix``, ``ScheduleFrequency``), or the ``Id`` of a configuration the
            bucket holds (read with ``GetBucketInventoryConfiguration``).
        now: When the report generation begins scanning the bucket: the timestamp in the report's keys
            and the manifest's ``creationTimestamp``. Default: - the current time.
        rows_per_file: Rows per data file; a longer list is split into several files. Default: -
            :data:`DEFAULT_ROWS_PER_FILE`.

    Returns:
        The ``s3://`` URI of the report's ``manifest.json``.

    Raises:
        InventoryError: if the configuration is disabled, asks for ORC or Parquet, or for an optional
            field that is not emulated, or names no bucket; or if the bucket has no such configuration.
    """
    if rows_per_file < 1:
        raise InventoryError(f"rows_per_file must be at least 1, got {rows_per_file}")
    config = _configuration(s3, source_bucket, configuration)
    destination, dest_prefix, fields = _checked(config, source_bucket)
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    all_versions = config["IncludedObjectVersions"] == "All"
    base = f"{dest_prefix}/{source_bucket}/{config['Id']}" if dest_prefix else f"{source_bucket}/{config['Id']}"
    versions = _versions(s3, source_bucket, str(config.get("Prefix") or ""))
    if not all_versions:
        versions = (v for v in versions if v["IsLatest"] and not v["IsDeleteMarker"])
    rows = (_row(source_bucket, v, all_versions=all_versions, fields=fields) for v in versions)
    files: list[dict[str, Any]] = []
    for chunk in _chunks(rows, rows_per_file):
        body = _gzip_csv(chunk, moment)
        key = f"{base}/data/{uuid.uuid4()}.csv.gz"
        s3.put_object(Bucket=destination, Key=key, Body=body)
        files.append({"key": key, "size": len(body), "MD5checksum": hashlib.md5(body).hexdigest()})
    schema = ["Bucket", "Key", *(_VERSION_COLUMNS if all_versions else ()), *fields]
    manifest = {
        "sourceBucket": source_bucket,
        "destinationBucket": f"arn:aws:s3:::{destination}",
        "version": MANIFEST_VERSION,
        "creationTimestamp": str(int(moment.timestamp() * 1000)),
        "fileFormat": "CSV",
        "fileSchema": ", ".join(schema),
        "files": files,
    }
    symlink = "".join(f"s3://{destination}/{f['key']}\n" for f in files)
    s3.put_object(Bucket=destination, Key=f"{base}/hive/dt={moment:%Y-%m-%d-%H-%M}/symlink.txt", Body=symlink.encode())
    delivery = f"{base}/{moment:%Y-%m-%dT%H-%MZ}"
    body = json.dumps(manifest, indent=2).encode()
    s3.put_object(Bucket=destination, Key=f"{delivery}/manifest.json", Body=body)
    checksum = hashlib.md5(body).hexdigest()  # S3 checksums the manifest with MD5
    s3.put_object(Bucket=destination, Key=f"{delivery}/manifest.checksum", Body=checksum.encode())
    return f"s3://{destination}/{delivery}/manifest.json"
