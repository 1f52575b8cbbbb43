"""The retrain trigger's Lambda code: decides when to start the training pipeline, and starts it once.

* ``events``: the event vocabulary and a parser that never raises.
* ``core``: settings, routing, aggregation, decisions and the start request; pure.
* ``store``: the state in DynamoDB (lock, idempotency records, dataset state).
* ``log``: structured JSON log lines and Embedded Metric Format metrics (Powertools for AWS Lambda).
* ``handler``: the Lambda entry point, ``handler.handler``; its docstring lists
  the environment, resources and permissions the function needs.
* ``routes`` and ``fleet``: one function for many pipelines (``fleet.handler``): the routes (one
  SSM parameter per pipeline), which pipelines an event concerns, and each pipeline's share of
  a batch, decided by ``handler``'s code.

The names below are shared with the constructs and the training pipeline; they
import without boto3 or Powertools.
"""

from cdk_mlops.lambdas.retrain_trigger.core import (
    PARAM_BASELINE_CONSTRAINTS_URI,
    PARAM_CHAMPION_METRIC,
    PARAM_DATA_VERSION,
    PARAM_INPUT_MANIFEST_URI,
    PARAM_MANIFEST_SHA256,
    PARAM_TRIGGER_REASON,
    PIPELINE_PARAMETER_NAMES,
    Mode,
)
from cdk_mlops.lambdas.retrain_trigger.events import (
    ALARM_STATE_CHANGE,
    DECISION_DIMENSION,
    DECISIONS_METRIC,
    EXECUTION_STATUS_CHANGE,
    EXECUTION_SUCCEEDED,
    MANUAL_RETRAIN,
    MONITOR_SOURCE,
    MONITOR_VIOLATION,
    OBJECT_CREATED,
    PIPELINE_STATUS_CHANGE,
    RETRAIN_CHECK,
    SCHEDULED_RETRAIN,
    SOURCE,
    STATES_SOURCE,
    TERMINAL_STATUSES,
)

__all__ = [
    "ALARM_STATE_CHANGE",
    "DECISIONS_METRIC",
    "DECISION_DIMENSION",
    "EXECUTION_STATUS_CHANGE",
    "EXECUTION_SUCCEEDED",
    "MANUAL_RETRAIN",
    "MONITOR_SOURCE",
    "MONITOR_VIOLATION",
    "OBJECT_CREATED",
    "PARAM_BASELINE_CONSTRAINTS_URI",
    "PARAM_CHAMPION_METRIC",
    "PARAM_DATA_VERSION",
    "PARAM_INPUT_MANIFEST_URI",
    "PARAM_MANIFEST_SHA256",
    "PARAM_TRIGGER_REASON",
    "PIPELINE_PARAMETER_NAMES",
    "PIPELINE_STATUS_CHANGE",
    "RETRAIN_CHECK",
    "SCHEDULED_RETRAIN",
    "SOURCE",
    "STATES_SOURCE",
    "TERMINAL_STATUSES",
    "Mode",
]
