"""Step Functions' executions, run locally: the definition CDK emits for a distributed map, run as AWS runs it."""

from __future__ import annotations

import io
import json
import sys
import types
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.model import StringShape, StructureShape
from moto import mock_aws

from cdk_mlops.local.endpoint import LocalAws
from cdk_mlops.local.server import child_env
from cdk_mlops.local.stepfunctions import (
    LocalLambda,
    StatesError,
    UnsupportedDefinition,
    read_path,
    render,
    run_state_machine,
    start_execution,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "data-store"
MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:Snapshot"
PLAN_FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:Plan"
SHARD_FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:Shard"
FINALIZE_FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:Finalize"
SERVICE_RETRY = {
    "ErrorEquals": [
        "Lambda.ClientExecutionTimeoutException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
    ],
    "IntervalSeconds": 2,
    "MaxAttempts": 6,
    "BackoffRate": 2,
}


def invoke_task(function: str, **fields: Any) -> dict[str, Any]:
    """A ``tasks.LambdaInvoke`` state as aws-cdk-lib 2.275 renders it (payload: the state's input)."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function, "Payload.$": "$"},
        "Retry": [SERVICE_RETRY],
        **fields,
    }


def snapshot_definition(**map_fields: Any) -> dict[str, Any]:
    """Plan, a distributed map of shard workers over an S3 JSON array, Finalize: the design's state machine."""
    shard = invoke_task(SHARD_FN, End=True)
    shard["Retry"] = [
        SERVICE_RETRY,
        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2},
    ]
    shards = {
        "Type": "Map",
        "ResultPath": "$.shards",
        "Next": "Finalize",
        "ItemSelector": {"item.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index", "plan.$": "$.plan"},
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Shard",
            "States": {"Shard": shard},
        },
        "MaxConcurrency": 100,
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket": BUCKET, "Key.$": "$.plan.files_key"},
        },
        "ResultWriter": {
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": BUCKET, "Prefix": "work/results"},
        },
        **map_fields,
    }
    return {
        "StartAt": "Plan",
        "States": {
            "Plan": invoke_task(PLAN_FN, Next="Shards", ResultSelector={"plan.$": "$.Payload"}),
            "Shards": shards,
            "Finalize": invoke_task(
                FINALIZE_FN,
                End=True,
                OutputPath="$.Payload",
                Parameters={"FunctionName": FINALIZE_FN, "Payload": {"plan.$": "$.plan", "shards.$": "$.shards"}},
                Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}],
            ),
            "Failed": {"Type": "Fail", "Error": "SnapshotFailed", "Cause": "finalize failed"},
        },
    }


class Handlers:
    """Injected handlers standing in for the deployed functions; they record every invocation."""

    def __init__(self, files: int = 4) -> None:
        self.files = files
        self.calls: list[tuple[str, Any]] = []
        self.flaky: dict[int, int] = {}  # file index -> failures left
        self.broken: set[int] = set()
        self.finalize_error: Exception | None = None

    def __call__(self, function: str, payload: Any) -> Any:
        self.calls.append((function, payload))
        if function == PLAN_FN:
            return {"dataset": payload["dataset"], "files_key": "work/files.json", "file_count": self.files}
        if function == SHARD_FN:
            index = payload["index"]
            if index in self.broken:
                raise ValueError(f"file {index} is not gzip")
            if self.flaky.get(index, 0) > 0:
                self.flaky[index] -= 1
                raise ConnectionError("throttled")
            return {"file_index": index, "rows": 10 * (index + 1)}
        if self.finalize_error is not None:
            raise self.finalize_error
        return {"manifest": "s3://data-store/index.json", "shards": payload["shards"]}


@pytest.fixture
def s3(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        files = [{"file_index": i, "key": f"inventory/data/{i}.csv.gz", "bucket": BUCKET} for i in range(4)]
        client.put_object(Bucket=BUCKET, Key="work/files.json", Body=json.dumps(files).encode())
        yield client


def read_json(s3: Any, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def run(handlers: Handlers, s3: Any, definition: dict[str, Any] | None = None) -> Any:
    return start_execution(
        definition or snapshot_definition(),
        {"dataset": "churn"},
        invoke=handlers,
        name="snap-1",
        s3=s3,
        state_machine_arn=MACHINE,
    )


def test_a_distributed_map_runs_one_child_per_item_and_writes_the_documented_results(s3):
    handlers = Handlers()
    result = run(handlers, s3)

    assert result.status == "SUCCEEDED", result.cause
    assert result.arn == f"arn:aws:states:{REGION}:{ACCOUNT}:execution:Snapshot:snap-1"
    # ItemSelector: the item, its index and the plan from the map's input, in item order
    shard_payloads = [p for f, p in handlers.calls if f == SHARD_FN]
    assert [p["index"] for p in shard_payloads] == [0, 1, 2, 3]
    assert shard_payloads[2]["item"] == {"file_index": 2, "key": "inventory/data/2.csv.gz", "bucket": BUCKET}
    assert shard_payloads[2]["plan"]["files_key"] == "work/files.json"
    # the map's result: where the ResultWriter put the results
    [map_run] = result.map_runs
    run_id = map_run.arn.rsplit(":", 1)[1]
    assert map_run.arn == f"arn:aws:states:{REGION}:{ACCOUNT}:mapRun:Snapshot/Shards:{run_id}"
    shards = handlers.calls[-1][1]["shards"]
    assert shards == {
        "MapRunArn": map_run.arn,
        "ResultWriterDetails": {"Bucket": BUCKET, "Key": f"work/results/{run_id}/manifest.json"},
    }
    manifest = read_json(s3, f"work/results/{run_id}/manifest.json")
    succeeded_key = f"work/results/{run_id}/SUCCEEDED_0.json"
    body = s3.get_object(Bucket=BUCKET, Key=succeeded_key)["Body"].read()
    assert manifest == {
        "DestinationBucket": BUCKET,
        "MapRunArn": map_run.arn,
        "ResultFiles": {"FAILED": [], "PENDING": [], "SUCCEEDED": [{"Key": succeeded_key, "Size": len(body)}]},
    }
    records = json.loads(body)
    assert [json.loads(r["Output"])["Payload"]["file_index"] for r in records] == [0, 1, 2, 3]
    assert json.loads(records[1]["Input"])["index"] == 1
    assert {r["Status"] for r in records} == {"SUCCEEDED"}
    assert records[0]["ExecutionArn"].startswith(f"arn:aws:states:{REGION}:{ACCOUNT}:execution:Snapshot/Shards:")
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=f"work/results/{run_id}/")["KeyCount"] == 2
    # Finalize's OutputPath keeps its Payload only
    assert result.output["manifest"] == "s3://data-store/index.json"
    assert len(result.events("TaskScheduled")) == 6
    assert result.states_entered() == ["Plan", "Shards", "Shard", "Shard", "Shard", "Shard", "Finalize"]


def test_the_lambda_invoke_result_is_lambdas_invoke_response(s3):
    definition = {"StartAt": "Plan", "States": {"Plan": invoke_task(PLAN_FN, End=True)}}
    result = start_execution(definition, {"dataset": "churn"}, invoke=Handlers(), s3=s3)
    assert result.output["Payload"] == {"dataset": "churn", "files_key": "work/files.json", "file_count": 4}
    assert result.output["StatusCode"] == 200
    assert result.output["ExecutedVersion"] == "$LATEST"
    assert result.output["SdkHttpMetadata"]["HttpStatusCode"] == 200
    assert result.output["SdkResponseMetadata"]["RequestId"]


def test_retries_are_counted_not_slept(s3):
    handlers = Handlers()
    handlers.flaky = {1: 2}
    result = run(handlers, s3)

    assert result.status == "SUCCEEDED"
    assert len([f for f, _ in handlers.calls if f == SHARD_FN]) == 6
    retries = result.events("RetryScheduled", "Shard")
    assert [(e.detail["error"], e.detail["attempt"], e.detail["delay"]) for e in retries] == [
        ("ConnectionError", 1, 2.0),
        ("ConnectionError", 2, 4.0),
    ]


def test_a_failing_item_fails_the_map_and_the_rest_stay_pending(s3):
    handlers = Handlers()
    handlers.broken = {1}
    result = run(handlers, s3)

    assert result.status == "FAILED"
    assert result.error == "States.ExceedToleratedFailureThreshold"
    # the item was retried (States.ALL, 3 attempts), then the run stopped: items 2 and 3 never started
    assert [p["index"] for f, p in handlers.calls if f == SHARD_FN] == [0, 1, 1, 1, 1]
    [map_run] = result.map_runs
    assert (map_run.succeeded, map_run.failed, map_run.pending) == (1, 1, 2)
    run_id = map_run.arn.rsplit(":", 1)[1]
    manifest = read_json(s3, f"work/results/{run_id}/manifest.json")
    assert {status: len(files) for status, files in manifest["ResultFiles"].items()} == {
        "FAILED": 1,
        "PENDING": 1,
        "SUCCEEDED": 1,
    }
    [failed] = read_json(s3, f"work/results/{run_id}/FAILED_0.json")
    assert failed["Status"] == "FAILED"
    assert failed["Error"] == "ValueError"
    cause = json.loads(failed["Cause"])
    assert cause["errorType"] == "ValueError"
    assert cause["errorMessage"] == "file 1 is not gzip"
    pending = read_json(s3, f"work/results/{run_id}/PENDING_0.json")
    assert [json.loads(p["Input"])["index"] for p in pending] == [2, 3]
    assert not [f for f, _ in handlers.calls if f == FINALIZE_FN]


def test_tolerated_failures_let_the_map_succeed(s3):
    handlers = Handlers()
    handlers.broken = {3}
    result = run(handlers, s3, snapshot_definition(ToleratedFailurePercentage=25))

    assert result.status == "SUCCEEDED"
    [map_run] = result.map_runs
    assert (map_run.succeeded, map_run.failed, map_run.pending) == (3, 1, 0)


def test_a_caught_error_goes_to_the_catchers_state_with_the_error_at_its_result_path(s3):
    handlers = Handlers()
    handlers.finalize_error = KeyError("part summary 2")
    result = run(handlers, s3)

    assert result.status == "FAILED"
    assert (result.error, result.cause) == ("SnapshotFailed", "finalize failed")
    [catch] = result.events("CatchTaken", "Finalize")
    assert catch.detail["error"] == "KeyError"
    assert catch.detail["next"] == "Failed"
    [exited] = [e for e in result.events("TaskStateExited", "Finalize")]
    assert exited.detail["output"]["error"]["Error"] == "KeyError"
    assert exited.detail["output"]["plan"]["dataset"] == "churn"  # the input is kept beside the error


def test_pass_result_path_and_output_path():
    definition = {
        "StartAt": "Keep",
        "States": {
            "Keep": {"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.found.deep", "Next": "Drop"},
            "Drop": {"Type": "Pass", "Result": "ignored", "ResultPath": None, "Next": "Shape"},
            "Shape": {
                "Type": "Pass",
                "Parameters": {
                    "id.$": "$$.Execution.Name",
                    "x.$": "$.found.deep.x",
                    "text.$": "States.Format('n={}', $.n)",
                },
                "OutputPath": "$.x",
                "ResultPath": "$",
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }
    result = start_execution(definition, {"n": 3}, invoke=Handlers(), name="exec-7")
    assert result.status == "SUCCEEDED"
    assert result.output == 1
    [keep] = result.events("PassStateExited", "Keep")
    assert keep.detail["output"] == {"n": 3, "found": {"deep": {"x": 1}}}
    [drop] = result.events("PassStateExited", "Drop")
    assert drop.detail["output"] == keep.detail["output"]
    assert render(
        {"id.$": "$$.Execution.Name", "t.$": "States.Format('n={}', $.n)"}, {"n": 3}, {"Execution": {"Name": "e"}}
    ) == {
        "id": "e",
        "t": "n=3",
    }


def test_choice_and_an_inline_map():
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.values",
                "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
                "ItemProcessor": {
                    "StartAt": "Big?",
                    "States": {
                        "Big?": {
                            "Type": "Choice",
                            "Choices": [{"Variable": "$.v", "NumericGreaterThan": 10, "Next": "Big"}],
                            "Default": "Small",
                        },
                        "Big": {"Type": "Pass", "Result": "big", "End": True},
                        "Small": {"Type": "Pass", "Parameters": {"small.$": "$.i"}, "End": True},
                    },
                },
                "End": True,
            }
        },
    }
    result = start_execution(definition, {"values": [3, 30, 5]}, invoke=Handlers())
    assert result.output == [{"small": 0}, "big", {"small": 2}]


def test_a_missing_path_fails_the_execution_uncaught():
    definition = {
        "StartAt": "P",
        "States": {
            "P": {"Type": "Pass", "Parameters": {"x.$": "$.missing"}, "Next": "End"},
            "End": {"Type": "Succeed"},
        },
    }
    result = start_execution(definition, {"here": 1}, invoke=Handlers())
    assert result.status == "FAILED"
    assert result.error == "States.Runtime"
    assert "$.missing" in str(result.cause)
    with pytest.raises(StatesError, match=r"States\.Runtime"):
        read_path("$.a[2]", {"a": [1]})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ItemBatcher": {"MaxItemsPerBatch": 10}}, "state 'Shards': the field ItemBatcher is not supported"),
        ({"ItemSelector": {"x.$": "States.ArrayPartition($.a, 2)"}}, "the intrinsic function States.ArrayPartition"),
        (
            {"ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": BUCKET}}},
            "ItemReader Resource 'arn:aws:states:::s3:listObjectsV2'",
        ),
        (
            {"ResultWriter": {"WriterConfig": {"Transformation": "FLATTEN", "OutputType": "JSON"}}},
            "the ResultWriter",
        ),
    ],
)
def test_what_is_not_emulated_is_refused_before_anything_runs(s3, change, message):
    handlers = Handlers()
    with pytest.raises(UnsupportedDefinition, match=message):
        run(handlers, s3, snapshot_definition(**change))
    assert handlers.calls == []


def test_an_unsupported_state_type_or_query_language_is_refused():
    parallel = {"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [], "End": True}}}
    with pytest.raises(UnsupportedDefinition, match="state 'P': Type 'Parallel'"):
        start_execution(parallel, invoke=Handlers())
    jsonata = {"QueryLanguage": "JSONata", "StartAt": "P", "States": {"P": {"Type": "Succeed"}}}
    with pytest.raises(UnsupportedDefinition, match="only JSONPath"):
        start_execution(jsonata, invoke=Handlers())
    child = snapshot_definition()
    child["States"]["Shards"]["ItemProcessor"]["States"]["Shard"]["Credentials"] = {"RoleArn": "x"}
    with pytest.raises(UnsupportedDefinition, match="state 'Shards > Shard': the field Credentials"):
        start_execution(child, invoke=Handlers())


# --- the deployed handler, in this process ------------------------------------------------------------


@dataclass(frozen=True)
class MockedAws(LocalAws):
    """The local AWS as moto's in-process mock answers it (no endpoint to reach)."""

    def client(self, service: str, **kwargs: Any) -> Any:
        return boto3.client(service, region_name=self.region)  # type: ignore[call-overload]


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context): return event")
    return buffer.getvalue()


def test_local_lambda_runs_the_deployed_handler_with_the_functions_environment(aws_env, monkeypatch):
    seen: list[Any] = []
    probe = types.ModuleType("cdk_mlops.lambdas.probe")

    def handler(event: Any, context: Any) -> Any:
        import os

        seen.append((os.environ["STAGE"], context.function_name, context.get_remaining_time_in_millis() > 0))
        return {"echo": event}

    probe.handler = handler  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cdk_mlops.lambdas.probe", probe)
    with mock_aws():
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="fn", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
        )["Role"]["Arn"]
        lam = boto3.client("lambda", region_name=REGION)
        for name, entry in (("Probe", "cdk_mlops.lambdas.probe.handler"), ("Other", "index.handler")):
            lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role,
                Handler=entry,
                Code={"ZipFile": _zip()},
                Environment={"Variables": {"STAGE": "Dev"}},
                Timeout=30,
            )
        aws = MockedAws("http://localhost:4566", REGION, child_env("http://localhost:4566", region=REGION))
        definition = {
            "StartAt": "Call",
            "States": {"Call": invoke_task("Probe", End=True, OutputPath="$.Payload")},
        }
        result = start_execution(definition, {"n": 1}, invoke=LocalLambda(aws))
        other = start_execution(
            {"StartAt": "Call", "States": {"Call": invoke_task("Other", End=True)}}, {}, invoke=LocalLambda(aws)
        )
    assert result.status == "SUCCEEDED"
    assert result.output == {"echo": {"n": 1}}
    assert seen == [("Dev", "Probe", True)]
    assert other.status == "FAILED"
    assert other.error == "Lambda.ServiceException"
    assert "only handlers of cdk_mlops.lambdas run locally" in str(other.cause)


@pytest.mark.parametrize(
    ("states", "status"),
    [
        ({"Done": {"Type": "Pass", "Result": {"dataset": "churn"}, "End": True}}, "SUCCEEDED"),
        ({"Done": {"Type": "Fail", "Error": "Snapshot.Failed", "Cause": "no report"}}, "FAILED"),
    ],
    ids=["succeeded", "failed"],
)
def test_an_ended_execution_puts_its_status_change_in_describe_executions_shape(aws_env, states, status):
    model = botocore.session.get_session().get_service_model("stepfunctions")
    output, statuses = model.shape_for("DescribeExecutionOutput"), model.shape_for("ExecutionStatus")
    assert isinstance(output, StructureShape)
    assert isinstance(statuses, StringShape)
    described = set(output.members)
    with mock_aws():
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="sfn", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
        )["Role"]["Arn"]
        machine = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name="snapshots", definition=json.dumps({"StartAt": "Done", "States": states}), roleArn=role
        )["stateMachineArn"]
        sqs = boto3.client("sqs", region_name=REGION)
        queue = sqs.create_queue(QueueName="ended")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = boto3.client("events", region_name=REGION)
        pattern = {"source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"]}
        events.put_rule(Name="ended", EventPattern=json.dumps({**pattern, "detail": {"stateMachineArn": [machine]}}))
        events.put_targets(Rule="ended", Targets=[{"Id": "q", "Arn": queue_arn}])
        aws = MockedAws("http://localhost:4566", REGION, child_env("http://localhost:4566", region=REGION))

        result = run_state_machine(aws, machine, {"dataset": "churn"})

        [message] = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    event = json.loads(message["Body"])
    detail = event["detail"]
    assert result.status == status
    assert event["resources"] == [result.arn]
    assert set(detail) <= described, set(detail) - described
    assert detail["status"] in statuses.enum
    assert (detail["executionArn"], detail["stateMachineArn"], detail["status"]) == (result.arn, machine, status)
    assert json.loads(detail["input"]) == {"dataset": "churn"}
    assert detail["startDate"] <= detail["stopDate"]
    if status == "SUCCEEDED":
        assert json.loads(detail["output"]) == {"dataset": "churn"}
        assert "error" not in detail
    else:
        assert detail["output"] is None
        assert (detail["error"], detail["cause"]) == ("Snapshot.Failed", "no report")
