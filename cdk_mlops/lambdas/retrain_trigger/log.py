"""The trigger's structured logs and Embedded Metric Format metrics, by Powertools for AWS Lambda.

Every line is one JSON object on stdout, which Lambda ships to CloudWatch Logs. Metrics are
EMF log lines that CloudWatch turns into metrics, with no API call and no permission. The
deployed function gets Powertools from AWS's managed layer
(:class:`cdk_mlops.constructs.retrain_trigger.RetrainTrigger`); tests and the local AWS import it
from the virtualenv (the ``aws-lambda-powertools`` dev dependency).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import IO, Final, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from cdk_mlops.lambdas.retrain_trigger.events import DECISION_DIMENSION, DECISIONS_METRIC

SERVICE: Final = "retrain-trigger"


class _CurrentStdout(io.TextIOBase):
    """Writes to whatever ``sys.stdout`` is at the time of the write.

    Powertools' handler keeps the stream it was given at import time; Lambda's stdout never
    changes, but tests and the local AWS capture an invocation's lines by replacing ``sys.stdout``.
    """

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def _json_default(value: object) -> str:
    """JSON for values json does not know: datetimes as ISO 8601, anything else as ``str``."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


#: The trigger's logger; keyword arguments of ``logger.info(...)`` become fields of the line, and
#: fields whose value is ``None`` are left out.
logger: Final = Logger(service=SERVICE, stream=cast(IO[str], _CurrentStdout()), json_default=_json_default)


def publish_decisions(namespace: str, counts: Mapping[str, int]) -> None:
    """One EMF line per decision kind: ``Decisions`` = count, with the one dimension ``Decision``.

    The alarms and dashboards read ``Decisions`` by ``Decision`` alone
    (:meth:`RetrainTrigger.metric_decisions`), so no ``service`` dimension is added, even when
    ``POWERTOOLS_SERVICE_NAME`` is set.

    Args:
        namespace: The CloudWatch namespace.
        counts: Decision kind to count, e.g. ``{"started": 1, "ignored": 40}``.
    """
    for decision, count in counts.items():
        metrics = EphemeralMetrics(namespace=namespace, service="")
        metrics.add_dimension(name=DECISION_DIMENSION, value=decision)
        metrics.add_metric(name=DECISIONS_METRIC, unit=MetricUnit.Count, value=count)
        metrics.flush_metrics()
