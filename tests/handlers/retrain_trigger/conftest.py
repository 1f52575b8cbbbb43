"""Fixtures of the retrain trigger tests: event builders, a fake Lambda context, SQS records, the moto world."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

import pytest

from tests.conftest import TEST_REGION
from tests.conftest import load_event as load_event

if TYPE_CHECKING:
    from tests.handlers.retrain_trigger.world import Aws

ACCOUNT = "123456789012"
REGION = TEST_REGION
BUCKET = "mlops-data-123456789012"
DATASET = "churn"
PIPELINE = "churn-training"


_TEMPLATES: dict[str, dict[str, Any]] = {}


def template(name: str) -> dict[str, Any]:
    if name not in _TEMPLATES:
        _TEMPLATES[name] = load_event(name)
    return copy.deepcopy(_TEMPLATES[name])


def object_created(
    key: str, *, size: int = 128, bucket: str = BUCKET, time: str = "2025-03-04T10:15:30Z", encode: bool = True
) -> dict[str, Any]:
    """An ``Object Created`` event; the key is form-encoded as S3 sends it (``a b+c`` -> ``a+b%2Bc``)."""
    event = template("s3_object_created.json")
    event["id"] = str(uuid.uuid4())
    event["time"] = time
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"]["key"] = quote_plus(key, safe="/") if encode else key
    event["detail"]["object"]["size"] = size
    return event


def status_change(execution_arn: str, status: str = "Succeeded", *, pipeline: str = PIPELINE) -> dict[str, Any]:
    event = template("pipeline_execution_status_change.json")
    event["id"] = str(uuid.uuid4())
    pipeline_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{pipeline}"
    event["resources"] = [pipeline_arn, execution_arn]
    event["detail"].update(
        pipelineArn=pipeline_arn, pipelineExecutionArn=execution_arn, currentPipelineExecutionStatus=status
    )
    return event


def alarm(state: str = "ALARM", *, timestamp: str = "2025-03-05T17:04:40.989+0000") -> dict[str, Any]:
    event = template("cloudwatch_alarm_state_change.json")
    event["detail"]["state"]["value"] = state
    event["detail"]["state"]["timestamp"] = timestamp
    return event


def check(due: int, *, dataset: str = DATASET, pipeline: str = PIPELINE) -> dict[str, Any]:
    event = template("retrain_check.json")
    event["id"] = str(uuid.uuid4())
    event["detail"] = {"pipeline": pipeline, "dataset": dataset, "due": due}
    return event


def sqs_record(body: dict[str, Any] | str, *, message_id: str | None = None, receive_count: int = 1) -> dict[str, Any]:
    """One record of a Lambda SQS event, as the event source mapping delivers it."""
    text = body if isinstance(body, str) else json.dumps(body)
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "AQEB" + uuid.uuid4().hex,
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1741083331000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1741083331010",
        },
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:retrain-trigger",
        "awsRegion": REGION,
    }


def sqs_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": records}


@dataclass
class FakeLambdaContext:
    """The four fields handlers read, plus the remaining-time clock."""

    function_name: str = "retrain-trigger"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:retrain-trigger"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"
    remaining_ms: int = 120_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """A fresh moto world with the trigger's bucket, table, queues and pipeline (``world.py``)."""
    from tests.handlers.retrain_trigger.world import moto_world  # it imports this module's builders

    yield from moto_world(monkeypatch)
