"""Step Functions tasks of the S3-Inventory dataset snapshot: ``plan``, ``shard`` and ``finalize``.

Entry points: ``cdk_mlops.lambdas.dataset_snapshot.handler.plan`` (``.shard``, ``.finalize``). The
asset holds ``datasets.py``, ``manifest_shards.py``, ``inventory.py`` and this package; the code
imports the standard library and boto3. Each handler is a thin wrapper over :mod:`cdk_mlops.inventory`,
which documents the engine, the key layout and the digest.

Environment
-----------
``DATA_BUCKET``
    The data store bucket: the datasets, and the versions written here (shards, part summaries, index).
``INVENTORY_PREFIX``
    The inventory configuration's report folder, ``<destination prefix>/<data bucket>/<config-id>/``
    (e.g. ``inventory/my-data-bucket/cdk-mlops-datasets/``): ``plan`` takes its newest report when
    the input names none.
``DATASETS`` (optional)
    A JSON list of the datasets this state machine may snapshot; ``plan`` refuses any other.
    Default: - any valid dataset name.
``REPORT_BUCKET`` (optional)
    The bucket the reports are delivered to. Default: - ``DATA_BUCKET``.
``WORK_PREFIX`` (optional)
    When set, ``plan`` writes the work list to ``REPORT_BUCKET`` under this prefix
    (``<WORK_PREFIX><dataset>/<version>/files.json``), for an item reader granted that bucket only.
    Default: - next to the version's shards in ``DATA_BUCKET`` (``manifests/<dataset>/<version>/_work/files.json``).

Events
------
``plan`` gets the execution's input::

    {"dataset": "churn", "report": "s3://<bucket>/<prefix>/<YYYY-MM-DDTHH-MMZ>/manifest.json", "allow_empty": false}

``report`` is optional (default: the newest report under ``INVENTORY_PREFIX``); a report's
``manifest.checksum``, which the rule of a delivered report passes, stands for its
``manifest.json``. ``allow_empty`` is optional too (default false: a version of 0 objects fails).
It returns the plan (small; the file list is in the work list)::

    {"dataset": "churn", "bucket": "<DATA_BUCKET>", "index_key": "manifests/churn/<stamp>-<id>.json",
     "report": "s3://.../manifest.json", "schema": ["Bucket", "Key", ...], "as_of": "2025-01-31T00:00:00Z",
     "files_bucket": "<bucket of the work list>", "files_key": "<key of the work list>", "file_count": 12,
     "allow_empty": false}

The work list (``files_bucket``/``files_key``) is a JSON array of items
``{"file_index": 0, "key": "<inventory data file key>", "bucket": "<report bucket>", "md5": "<its MD5>"}``.

``shard`` gets one work item with the plan (a Distributed Map's ``ItemSelector``)::

    {"file_index": 0, "key": "<data file key>", "bucket": "<report bucket>", "plan": {<the plan>},
     "md5": "<optional: the item's md5, checked against the file when present>"}

and returns ``{"file_index", "part", "rows", "object_count", "total_bytes", "shards", "excluded"}``
(``part`` is the ``s3://`` URI of the part summary it wrote). ``finalize`` gets the plan itself
and returns ``{"manifest": "s3://<DATA_BUCKET>/manifests/churn/<stamp>-<id>.json", "object_count",
"total_bytes", "digest", "as_of", "shards", "excluded"}``.

Errors
------
A malformed event (a missing field, a wrong type, an invalid dataset name) raises
:class:`InvalidEvent`, a ``ValueError`` naming the field; a report that cannot be used, a missing
part summary or an empty dataset raise :class:`cdk_mlops.inventory.InventoryError`, naming what to
change. Step Functions fails the execution with that error type and message (the state's retries
are for Lambda's own transient errors): nothing fails silently, and every step can be run again.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import boto3

from cdk_mlops import inventory
from cdk_mlops.datasets import check_dataset_name, parse_s3_uri

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["InvalidEvent", "finalize", "plan", "shard"]

# A logger of its own: Lambda's root handler prints it, and its level touches no other library's.
logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)


# The file S3 writes last in a report's folder (manifest.json's MD5), which EventBridge rules wait for.
_REPORT_COMPLETE = "manifest.checksum"


class InvalidEvent(ValueError):
    """The event is not what the state machine sends; the message names the field and what it must be."""


def _s3() -> S3Client:
    # A client per invocation: a worker handles one file, so its creation cost is noise.
    return boto3.client("s3")


def _env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if not value:
        raise RuntimeError(f"environment variable {name} is not set; deploy the function with InventorySnapshot")
    return value


def _object(event: object, what: str) -> Mapping[str, Any]:
    if not isinstance(event, Mapping):
        raise InvalidEvent(f"the {what} event is {type(event).__name__}, not a JSON object")
    return event


def _string(event: Mapping[str, Any], field: str) -> str:
    value = event.get(field)
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"event field {field!r} is {value!r}, not a non-empty string")
    return value


def plan(event: object, context: object) -> dict[str, Any]:
    """Check the report (given, or the newest), choose the version's key and write the work list.

    Raises:
        InvalidEvent: if ``dataset`` is missing or invalid, ``report`` is not an ``s3://`` URI, or
            ``allow_empty`` is not a boolean.
        cdk_mlops.inventory.InventoryError: if there is no report, or it cannot be used.
    """
    fields = _object(event, "plan")
    try:
        dataset = check_dataset_name(fields.get("dataset"))
    except ValueError as error:
        raise InvalidEvent(f"event field 'dataset': {error}") from None
    declared = json.loads(os.environ.get("DATASETS", "null"))
    if declared is not None and dataset not in declared:
        raise InvalidEvent(
            f"event field 'dataset' is {dataset!r}, which this state machine does not snapshot; use one of "
            f"{', '.join(map(repr, declared))}, or add it to the construct's datasets"
        )
    allow_empty = fields.get("allow_empty", False)
    if not isinstance(allow_empty, bool):
        raise InvalidEvent(f"event field 'allow_empty' is {allow_empty!r}, not true or false")
    data_bucket = _env("DATA_BUCKET")
    report_bucket = _env("REPORT_BUCKET", data_bucket)
    prefix = _env("INVENTORY_PREFIX")
    s3 = _s3()
    if fields.get("report") is None:
        report = inventory.latest_report(s3, bucket=report_bucket, prefix=prefix)
        if report is None:
            raise inventory.InventoryError(
                f"no inventory report under s3://{report_bucket}/{prefix} yet; S3 delivers the first within 48 hours "
                "of the inventory's configuration, then daily. Wait for it, or pass 'report' explicitly"
            )
    else:
        report = _string(fields, "report")
        try:
            parse_s3_uri(report)
        except ValueError as error:
            raise InvalidEvent(f"event field 'report': {error}") from None
        # A delivered report's rule passes the last file S3 wrote, which says the report is complete.
        if report.endswith(f"/{_REPORT_COMPLETE}"):
            report = report.removesuffix(_REPORT_COMPLETE) + "manifest.json"
        # The functions may read this inventory's reports only.
        if not report.startswith(f"s3://{report_bucket}/{prefix}"):
            raise InvalidEvent(
                f"event field 'report' is {report!r}, not a report of this inventory; pass a manifest.json under "
                f"s3://{report_bucket}/{prefix}, or omit it for the newest"
            )
    work_prefix = os.environ.get("WORK_PREFIX", "")
    result = inventory.plan(
        s3,
        report_uri=report,
        dataset=dataset,
        bucket=data_bucket,
        allow_empty=allow_empty,
        work_bucket=report_bucket if work_prefix else None,
        work_prefix=work_prefix,
    )
    logger.info("planned %s of %s: %d files, index %s", dataset, report, result["file_count"], result["index_key"])
    return result


def shard(event: object, context: object) -> dict[str, Any]:
    """Shard one inventory data file and write its part summary (see :func:`cdk_mlops.inventory.shard_file`).

    Raises:
        InvalidEvent: if ``file_index``, ``key``, ``bucket`` or ``plan`` (or a field of it) is
            missing or of the wrong type.
    """
    fields = _object(event, "shard")
    file_index = fields.get("file_index")
    if isinstance(file_index, bool) or not isinstance(file_index, int) or file_index < 0:
        raise InvalidEvent(f"event field 'file_index' is {file_index!r}, not a whole number of 0 or more")
    key, bucket = _string(fields, "key"), _string(fields, "bucket")
    md5 = fields.get("md5")
    if md5 is not None and not isinstance(md5, str):
        raise InvalidEvent(f"event field 'md5' is {md5!r}, not a string")
    try:
        checked = inventory.SnapshotPlan.from_dict(fields.get("plan"), name="plan")
    except ValueError as error:
        raise InvalidEvent(str(error)) from None
    if file_index >= checked.file_count:
        raise InvalidEvent(f"event field 'file_index' is {file_index}, but the plan has {checked.file_count} files")
    result = inventory.shard_file(_s3(), checked, file_index=file_index, key=key, bucket=bucket, md5=md5)
    logger.info("file %d (%s): %d of %d rows kept", file_index, key, result["object_count"], result["rows"])
    return result


def finalize(event: object, context: object) -> dict[str, Any]:
    """Add up the part summaries and write the version's index (see :func:`cdk_mlops.inventory.finalize`).

    Raises:
        InvalidEvent: if the event is not a plan (naming the field).
        cdk_mlops.inventory.InventoryError: if a part summary is missing or the version would be empty.
    """
    try:
        checked = inventory.SnapshotPlan.from_dict(event, name="event")
    except ValueError as error:
        raise InvalidEvent(str(error)) from None
    result = inventory.finalize(_s3(), checked)
    logger.info("wrote %s: %d objects, digest %s", result["manifest"], result["object_count"], result["digest"])
    return result
