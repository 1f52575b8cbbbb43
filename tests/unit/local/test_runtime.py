"""The loop's stand-ins for Lambda and for time: environment, context, SQS records, the simulated clock."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID

from cdk_mlops.local.runtime import (
    Backends,
    EventSourceMapping,
    FunctionConfiguration,
    LambdaContainer,
    LambdaContext,
    QueuePoller,
    SimulatedClock,
    queue_name,
    redelivered,
)
from cdk_mlops.local.server import LocalAws, child_env

ENDPOINT = "http://localhost:4566"
REGION = "us-east-1"
FUNCTION = FunctionConfiguration(
    name="Dev-Training-RetrainFunction",
    arn=f"arn:aws:lambda:{REGION}:123456789012:function:Dev-Training-RetrainFunction",
    handler="cdk_mlops.lambdas.retrain_trigger.handler.handler",
    environment={"PIPELINE_NAME": "cdk-mlops-dev-training", "QUIET_PERIOD_SECONDS": "900"},
    timeout_s=120,
    memory_mb=512,
)


@pytest.fixture
def aws() -> LocalAws:
    return LocalAws(endpoint_url=ENDPOINT, region=REGION, env=child_env(ENDPOINT, region=REGION))


def test_an_invocation_sees_the_functions_environment_and_the_local_endpoint_only(aws, monkeypatch):
    # GIVEN a shell with a real profile and a variable of the same name as the function's
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("PIPELINE_NAME", "outer")
    monkeypatch.delenv("QUIET_PERIOD_SECONDS", raising=False)
    outer_session = boto3.DEFAULT_SESSION
    container = LambdaContainer(FUNCTION, aws=aws)
    # WHEN the function is invoked twice
    sessions = []
    for _ in range(2):
        with container.invocation() as context:
            # THEN inside: the function's variables, the local endpoint, no profile
            assert os.environ["PIPELINE_NAME"] == "cdk-mlops-dev-training"
            assert os.environ["QUIET_PERIOD_SECONDS"] == "900"
            assert os.environ["AWS_ENDPOINT_URL"] == ENDPOINT
            assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
            assert "AWS_PROFILE" not in os.environ
            assert context.function_name == FUNCTION.name
            assert context.invoked_function_arn == FUNCTION.arn
            assert 119_000 < context.get_remaining_time_in_millis() <= 120_000
            sessions.append(boto3.DEFAULT_SESSION)
    # AND the container keeps its session (clients stay warm); afterwards everything is back
    assert sessions[0] is sessions[1] is not None
    assert boto3.DEFAULT_SESSION is outer_session
    assert os.environ["AWS_PROFILE"] == "production"
    assert os.environ["PIPELINE_NAME"] == "outer"
    assert "QUIET_PERIOD_SECONDS" not in os.environ


def test_the_environment_is_restored_when_the_handler_raises(aws, monkeypatch):
    monkeypatch.setenv("PIPELINE_NAME", "outer")
    with pytest.raises(RuntimeError, match="boom"), LambdaContainer(FUNCTION, aws=aws).invocation():
        raise RuntimeError("boom")
    assert os.environ["PIPELINE_NAME"] == "outer"


def test_each_context_has_its_own_request_id_and_counts_down_from_the_timeout():
    first, second = LambdaContext.for_function(FUNCTION), LambdaContext.for_function(FUNCTION)
    assert first.aws_request_id != second.aws_request_id
    first._started -= 30
    assert 89_000 < first.get_remaining_time_in_millis() <= 90_000
    first._started -= 1000
    assert first.get_remaining_time_in_millis() == 0


def test_a_received_message_becomes_the_record_lambda_delivers(aws):
    mapping = EventSourceMapping(f"arn:aws:sqs:{REGION}:123456789012:trigger", 10_000, True)
    poller = QueuePoller(aws, f"{ENDPOINT}/123456789012/trigger", mapping)
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "r-1",
        "MD5OfBody": "abc",
        "Body": json.dumps({"detail-type": "Object Created"}),
        "Attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1",
            "SenderId": "s",
            "SqsManagedSseEnabled": "x",
        },
    }
    record = poller.record(message)
    assert record == {
        "messageId": "m-1",
        "receiptHandle": "r-1",
        "body": message["Body"],
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1", "SenderId": "s"},
        "messageAttributes": {},
        "md5OfBody": "abc",
        "eventSource": "aws:sqs",
        "eventSourceARN": mapping.queue_arn,
        "awsRegion": REGION,
    }
    [again] = redelivered([record])
    assert again["messageId"] == "m-1"
    assert again["body"] == record["body"]
    assert again["attributes"]["ApproximateReceiveCount"] == "2"
    assert again["receiptHandle"] != "r-1"
    assert queue_name(poller.queue_url) == "trigger"


@dataclass
class _Message:
    delayed_until: float


def _clock_with(messages: list[_Message]) -> SimulatedClock:
    class _Backends(Backends):
        def delayed_messages(self) -> list[Any]:
            now = time.time() * 1000
            return [m for m in messages if m.delayed_until > now]

    return SimulatedClock(_Backends("123456789012", REGION))


def test_the_clock_moves_sqs_delays_with_it():
    # GIVEN a message delayed by 15 minutes
    clock = _clock_with(messages := [_Message(time.time() * 1000 + 900_000)])
    delay = clock.next_delay()
    assert delay is not None
    assert 899 <= delay.total_seconds() <= 900
    # WHEN the clock advances 10 minutes THEN 5 are left, on the clock and for the message
    clock.advance(timedelta(minutes=10))
    assert clock.offset == timedelta(minutes=10)
    delay = clock.next_delay()
    assert delay is not None
    assert 299 <= delay.total_seconds() <= 300
    assert abs((clock.now() - datetime.now(UTC)) - timedelta(minutes=10)) < timedelta(seconds=1)
    # WHEN it advances to the message's due time THEN the message is receivable
    clock.advance(delay)
    assert clock.next_delay() is None
    assert messages[0].delayed_until <= time.time() * 1000
    assert timedelta(minutes=15) <= clock.elapsed < timedelta(minutes=15, seconds=2)


def test_the_clock_never_goes_back():
    clock = _clock_with([])
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(timedelta(seconds=-1))
    assert clock.advance_to(clock.now() - timedelta(hours=1)) == timedelta(0)
    assert clock.advance_to(clock.now() + timedelta(hours=1)) > timedelta(minutes=59)


@mock_aws
def test_backends_hold_an_execution_at_executing():
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sagemaker.create_pipeline(
        PipelineName="train",
        RoleArn="arn:aws:iam::123456789012:role/sm",
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
        ClientRequestToken="create-the-train-pipeline-000001",
    )
    arn = sagemaker.start_pipeline_execution(
        PipelineName="train", ClientRequestToken="start-the-train-pipeline-00000001"
    )["PipelineExecutionArn"]
    backends = Backends(DEFAULT_ACCOUNT_ID, REGION)
    # moto marks executions Succeeded at once; the backends can hold one at Executing
    backends.set_execution_status("train", arn, "Executing")
    summary = sagemaker.list_pipeline_executions(PipelineName="train")["PipelineExecutionSummaries"][0]
    assert summary["PipelineExecutionStatus"] == "Executing"
