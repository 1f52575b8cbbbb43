"""Structured JSON log lines and CloudWatch Embedded Metric Format, standard library only.

Each call writes one JSON object on one line to stdout, which Lambda ships to
CloudWatch Logs. Metrics use the Embedded Metric Format: a log line with an
``_aws`` block that CloudWatch turns into metrics, with no API call and no
extra permission.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, TextIO

SERVICE: Final = "retrain-trigger"

_context: dict[str, Any] = {}


def bind(**fields: Any) -> None:
    """Add fields to every following line of this invocation (e.g. the request id)."""
    _context.update({k: v for k, v in fields.items() if v is not None})


def clear() -> None:
    """Forget the invocation's fields; called at the start of each invocation."""
    _context.clear()


def _default(value: object) -> str:
    """JSON for values json does not know: datetimes as ISO 8601, anything else as ``str``."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _write(document: Mapping[str, Any], stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    out.write(json.dumps(document, default=_default, separators=(",", ":")) + "\n")
    out.flush()


def emit(level: str, message: str, **fields: Any) -> None:
    """Write one log line: level, time, service, message, the bound fields and ``fields``."""
    line: dict[str, Any] = {
        "level": level,
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "service": SERVICE,
        "message": message,
    }
    line.update(_context)
    line.update({k: v for k, v in fields.items() if v is not None})
    _write(line)


def info(message: str, **fields: Any) -> None:
    emit("INFO", message, **fields)


def warning(message: str, **fields: Any) -> None:
    emit("WARNING", message, **fields)


def error(message: str, **fields: Any) -> None:
    emit("ERROR", message, **fields)


def metric_counts(
    namespace: str,
    counts: Mapping[str, int],
    *,
    metric: str = "Decisions",
    dimension: str = "Decision",
    extra: Mapping[str, str] | None = None,
) -> None:
    """One EMF line per dimension value: ``metric`` = count, with ``{dimension: value}``.

    Args:
        namespace: The CloudWatch namespace.
        counts: Dimension value to count, e.g. ``{"started": 1, "ignored": 40}``.
        metric: The metric name.
        dimension: The dimension name.
        extra: Properties added to each line for searching; they are not dimensions.
    """
    timestamp = int(time.time() * 1000)
    for value, count in counts.items():
        document: dict[str, Any] = {
            "_aws": {
                "Timestamp": timestamp,
                "CloudWatchMetrics": [
                    {
                        "Namespace": namespace,
                        "Dimensions": [[dimension]],
                        "Metrics": [{"Name": metric, "Unit": "Count"}],
                    }
                ],
            },
            dimension: value,
            metric: count,
        }
        if extra:
            document.update(extra)
        _write(document)
