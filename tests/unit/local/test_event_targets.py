"""EventBridge's delivery to Step Functions targets, which moto's rules skip: a matching event starts an execution."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdk_mlops.local import event_targets
from cdk_mlops.local.event_targets import apply_input_transformer

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/events"
PATTERN = {
    "source": ["aws.s3"],
    "detail-type": ["Object Created"],
    "detail": {"bucket": {"name": ["reports"]}, "object": {"key": [{"suffix": "manifest.checksum"}]}},
}


@pytest.fixture
def aws(aws_env: None) -> Iterator[dict[str, Any]]:
    """moto with a bucket that sends its events to EventBridge, a state machine and a queue."""
    event_targets.install()
    with mock_aws():
        clients: list[Any] = [boto3.client(s, region_name=REGION) for s in ("s3", "events", "stepfunctions", "sqs")]
        s3, events, sfn, sqs = clients
        s3.create_bucket(Bucket="reports")
        s3.put_bucket_notification_configuration(
            Bucket="reports", NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
        machine = sfn.create_state_machine(name="m", definition=definition, roleArn=ROLE)["stateMachineArn"]
        queue = sqs.create_queue(QueueName="q")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="r", EventPattern=json.dumps(PATTERN))
        yield {"s3": s3, "events": events, "sfn": sfn, "sqs": sqs, "machine": machine, "queue": queue, "q": queue_arn}


def started(aws: dict[str, Any]) -> list[Any]:
    executions = aws["sfn"].list_executions(stateMachineArn=aws["machine"])["executions"]
    return [json.loads(aws["sfn"].describe_execution(executionArn=e["executionArn"])["input"]) for e in executions]


def test_a_matching_event_starts_the_target_with_its_transformed_input(aws):
    transformer = {
        "InputPathsMap": {"key": "$.detail.object.key"},
        "InputTemplate": '{"dataset": "churn", "report": "s3://reports/<key>"}',
    }
    aws["events"].put_targets(
        Rule="r", Targets=[{"Id": "m", "Arn": aws["machine"], "RoleArn": ROLE, "InputTransformer": transformer}]
    )
    aws["s3"].put_object(Bucket="reports", Key="r/b/id/2026-12-04T00-00Z/manifest.json", Body=b"{}")
    assert started(aws) == []  # not the last file of the report
    aws["s3"].put_object(Bucket="reports", Key="r/b/id/2026-12-04T00-00Z/manifest.checksum", Body=b"x")
    assert started(aws) == [{"dataset": "churn", "report": "s3://reports/r/b/id/2026-12-04T00-00Z/manifest.checksum"}]


def test_a_constant_input_is_the_input_and_moto_still_delivers_to_the_other_targets(aws):
    aws["events"].put_targets(
        Rule="r",
        Targets=[
            {"Id": "m", "Arn": aws["machine"], "RoleArn": ROLE, "Input": '{"dataset": "churn"}'},
            {"Id": "q", "Arn": aws["q"]},
        ],
    )
    aws["s3"].put_object(Bucket="reports", Key="x/manifest.checksum", Body=b"x")
    assert started(aws) == [{"dataset": "churn"}]
    (message,) = aws["sqs"].receive_message(QueueUrl=aws["queue"])["Messages"]
    assert json.loads(message["Body"])["detail"]["object"]["key"] == "x/manifest.checksum"


def test_without_input_the_event_is_the_input(aws):
    aws["events"].put_targets(Rule="r", Targets=[{"Id": "m", "Arn": aws["machine"], "RoleArn": ROLE}])
    aws["s3"].put_object(Bucket="reports", Key="y/manifest.checksum", Body=b"x")
    ((event,),) = [started(aws)]
    assert (event["source"], event["detail"]["object"]["key"]) == ("aws.s3", "y/manifest.checksum")


def test_the_transformer_quotes_strings_as_the_template_does_and_refuses_unknown_placeholders():
    event = {"detail": {"key": 'a "b".csv', "size": 3, "tags": ["t"]}}
    paths = {"k": "$.detail.key", "n": "$.detail.size", "t": "$.detail.tags"}
    template = '{"k": "<k>", "n": <n>, "t": <t>}'
    rendered = apply_input_transformer({"InputPathsMap": paths, "InputTemplate": template}, event)
    assert json.loads(rendered) == {"k": 'a "b".csv', "n": 3, "t": ["t"]}
    with pytest.raises(ValueError, match=r"placeholder <aws.events.rule-arn> is neither in InputPathsMap"):
        apply_input_transformer({"InputTemplate": '{"r": "<aws.events.rule-arn>"}'}, event)
