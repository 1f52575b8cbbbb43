"""Ground-truth labels in the format and place SageMaker Model Monitor merges with captured inferences.

Model-quality (and bias) monitoring compares what an endpoint or batch job predicted with the
labels that arrive later. Model Monitor reads those labels as JSON Lines, one record per
labelled inference, under the job's ground-truth URI in hourly folders, the same path format
as captured data::

    ground-truth/<endpoint or batch job>/yyyy/mm/dd/hh/<file>.jsonl

Each record, as AWS documents it ("Ingest Ground Truth labels and merge them with
predictions", SageMaker Developer Guide)::

    {"groundTruthData": {"data": "1", "encoding": "CSV"},
     "eventMetadata": {"eventId": "<the capture's inferenceId, or its eventId>"},
     "eventVersion": "0"}

Model Monitor matches a label to a capture by the caller's ``InferenceId`` (passed to
``InvokeEndpoint``) when the capture has one, otherwise by the capture's generated event id.
The hour folder is when the labels were written, not when the inference ran: the monitoring
job's window (``start_time_offset``/``end_time_offset``) decides how late a label may arrive.

This module imports only the standard library, and boto3 on first use.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "GROUND_TRUTH_PREFIX",
    "Label",
    "LabelError",
    "ground_truth_key",
    "ground_truth_prefix",
    "label_record",
    "write_labels",
]

#: Key prefix of ground truth in the data store: ``ground-truth/<endpoint or batch job>/``.
GROUND_TRUTH_PREFIX = "ground-truth/"
#: The record version Model Monitor reads.
EVENT_VERSION = "0"
# SageMaker's name pattern for endpoints and transform jobs.
_SOURCE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}\Z")
# InvokeEndpoint's InferenceId: 1 to 64 characters, at least one that is not whitespace.
_INFERENCE_ID = re.compile(r"^\S(?:.{0,63})?\Z", re.DOTALL)


class LabelError(ValueError):
    """A label or its destination that Model Monitor could not use; the message names it and the fix."""


@dataclass(frozen=True)
class Label:
    """The true outcome of one inference.

    Attributes:
        inference_id: The ``InferenceId`` the caller passed to ``InvokeEndpoint`` (or the event id
            data capture generated), which Model Monitor joins on.
        value: The true label or value, as the model's output encodes it (``1``, ``"churn"``, ``0.37``).
    """

    inference_id: str
    value: str | int | float


def ground_truth_prefix(source: str) -> str:
    """The key prefix of one endpoint's or batch job's labels: ``ground-truth/<source>/``.

    Raises:
        LabelError: if ``source`` is not an endpoint or transform job name.
    """
    if not isinstance(source, str) or not _SOURCE.match(source):
        raise LabelError(
            f"{source!r} is not an endpoint or batch transform job name; use 1 to 63 letters, digits and "
            "hyphens, starting and ending with a letter or digit"
        )
    return f"{GROUND_TRUTH_PREFIX}{source}/"


def ground_truth_key(source: str, at: datetime, name: str | None = None) -> str:
    """Where one file of labels goes: ``ground-truth/<source>/yyyy/mm/dd/hh/<name>.jsonl``.

    Args:
        source: The endpoint or batch transform job whose inferences are labelled.
        at: When the labels are written, timezone-aware; its UTC hour names the folder.
        name: The file's name without ``.jsonl``. Default: - a random UUID, so concurrent
            writers never overwrite each other.
    """
    if at.tzinfo is None:
        raise LabelError(f"at={at.isoformat()} has no time zone; pass an aware datetime, e.g. datetime.now(UTC)")
    folder = at.astimezone(UTC).strftime("%Y/%m/%d/%H")
    return f"{ground_truth_prefix(source)}{folder}/{name or uuid.uuid4().hex}.jsonl"


def label_record(label: Label) -> dict[str, object]:
    """One ground-truth record, as Model Monitor merges it with the captured inference.

    Raises:
        LabelError: if the inference id is empty, too long or all whitespace, or the value is
            not a string or a finite number.
    """
    inference_id, value = label.inference_id, label.value
    if not isinstance(inference_id, str) or not _INFERENCE_ID.match(inference_id):
        raise LabelError(
            f"inference id {inference_id!r} is not one InvokeEndpoint accepts; use the 1 to 64 character "
            "InferenceId the request carried"
        )
    if (
        isinstance(value, bool)
        or not isinstance(value, str | int | float)
        or value != value
        or value
        in (
            float("inf"),
            float("-inf"),
        )
    ):
        raise LabelError(f"label {value!r} of {inference_id!r} must be a string or a finite number")
    return {
        "groundTruthData": {"data": str(value), "encoding": "CSV"},
        "eventMetadata": {"eventId": inference_id},
        "eventVersion": EVENT_VERSION,
    }


def write_labels(
    bucket: str,
    source: str,
    labels: Iterable[Label],
    *,
    at: datetime | None = None,
    s3: S3Client | None = None,
) -> str:
    """Write labels as one JSON Lines object in the hour folder of ``at``; return its ``s3://`` URI.

    Every label is checked before anything is written, so a bad one writes nothing.

    Args:
        bucket: The data store's bucket (the one the model-quality monitor reads).
        source: The endpoint or batch transform job whose inferences are labelled.
        labels: The labels; at least one.
        at: When the labels count as written. Default: - now.
        s3: The S3 client. Default: - ``boto3.client("s3")``.

    Raises:
        LabelError: naming the first bad label or argument.
    """
    records = [label_record(label) for label in labels]
    if not records:
        raise LabelError("no labels given; pass at least one Label")
    key = ground_truth_key(source, at or datetime.now(UTC))
    body = "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records)
    if s3 is None:
        import boto3

        s3 = boto3.client("s3")
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"), ContentType="application/jsonlines")
    return f"s3://{bucket}/{key}"
