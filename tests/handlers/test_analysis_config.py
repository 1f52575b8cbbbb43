"""The explainability configuration writer: names the served model, answers CloudFormation whatever happens."""

from __future__ import annotations

import copy
import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdk_mlops.lambdas.analysis_config import handler as writer
from tests.conftest import load_event

SOURCE = {
    "methods": {"shap": {"baseline": [[14.1, 19.3]], "num_samples": 100, "agg_method": "mean_abs"}},
    "predictor": {"content_type": "text/csv", "accept_type": "text/csv"},
    "headers": ["mean_radius", "mean_texture"],
}


class Answers:
    """What the handler PUT to the ResponseURL."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.requests: list[Any] = []

    def __call__(self, request: Any, timeout: float) -> Any:
        self.requests.append(request)
        self.bodies.append(json.loads(request.data))

        class Response:
            def __enter__(self) -> Response:
                return self

            def __exit__(self, *_: object) -> None:
                return None

            def read(self) -> bytes:
                return b""

        return Response()


@pytest.fixture
def s3(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3")
        for bucket in ("registry-data", "serving-data"):
            client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Answers:
    captured = Answers()
    monkeypatch.setattr(urllib.request, "urlopen", captured)
    return captured


def create_event() -> dict[str, Any]:
    return load_event("cloudformation_custom_resource_create.json")


def put_source(s3: Any, body: bytes | None = None) -> None:
    key = "artifacts/churn-training/exec-1/model-explainability-baseline/analysis_config.json"
    s3.put_object(Bucket="registry-data", Key=key, Body=body if body is not None else json.dumps(SOURCE).encode())


def read_copy(s3: Any) -> dict[str, Any]:
    key = "monitoring/churn/model-explainability-config/analysis_config.json"
    copied: dict[str, Any] = json.loads(s3.get_object(Bucket="serving-data", Key=key)["Body"].read())
    return copied


def test_create_writes_the_copy_naming_the_served_model_and_answers_success(s3: Any, answers: Answers) -> None:
    put_source(s3)
    event = create_event()
    writer.handler(event, None)
    copied = read_copy(s3)
    assert copied["predictor"] == {
        "content_type": "text/csv",
        "accept_type": "text/csv",
        "model_name": "EndpointModel-AbCdEf012345",
        "instance_type": "ml.m5.xlarge",
        "initial_instance_count": 1,
        "endpoint_name_prefix": "cdk-mlops-clarify",
    }
    # Everything else is the registered configuration's.
    assert copied["methods"] == SOURCE["methods"]
    assert copied["headers"] == SOURCE["headers"]
    (answer,) = answers.bodies
    target = event["ResourceProperties"]["TargetUri"]
    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == target
    assert answer["Data"] == {"Uri": target}
    assert (answer["StackId"], answer["RequestId"], answer["LogicalResourceId"]) == (
        event["StackId"],
        event["RequestId"],
        event["LogicalResourceId"],
    )
    (request,) = answers.requests
    assert request.get_method() == "PUT"
    assert request.full_url == event["ResponseURL"]
    # The pre-signed URL is signed without a content type.
    assert request.get_header("Content-type") == ""


def test_an_endpoint_the_source_names_is_dropped_for_the_shadow_endpoint(s3: Any, answers: Answers) -> None:
    put_source(s3, json.dumps({**SOURCE, "predictor": {"endpoint_name": "other", "content_type": "text/csv"}}).encode())
    writer.handler(create_event(), None)
    predictor = read_copy(s3)["predictor"]
    assert "endpoint_name" not in predictor
    assert predictor["content_type"] == "text/csv"
    assert predictor["model_name"] == "EndpointModel-AbCdEf012345"


def test_update_rewrites_the_copy_for_a_new_model(s3: Any, answers: Answers) -> None:
    put_source(s3)
    writer.handler(create_event(), None)
    event = create_event()
    event["RequestType"] = "Update"
    event["PhysicalResourceId"] = event["ResourceProperties"]["TargetUri"]
    event["OldResourceProperties"] = copy.deepcopy(event["ResourceProperties"])
    event["ResourceProperties"]["ModelName"] = "EndpointModel-Next"
    writer.handler(event, None)
    assert read_copy(s3)["predictor"]["model_name"] == "EndpointModel-Next"
    assert [a["Status"] for a in answers.bodies] == ["SUCCESS", "SUCCESS"]


def test_delete_removes_the_copy_and_a_failed_create_deletes_nothing(s3: Any, answers: Answers) -> None:
    put_source(s3)
    writer.handler(create_event(), None)
    event = create_event()
    event["RequestType"] = "Delete"
    event["PhysicalResourceId"] = event["ResourceProperties"]["TargetUri"]
    writer.handler(event, None)
    with pytest.raises(s3.exceptions.NoSuchKey):
        read_copy(s3)
    # A copy whose bucket is already gone counts as deleted.
    event["PhysicalResourceId"] = (
        "s3://removed-bucket/monitoring/churn/model-explainability-config/analysis_config.json"
    )
    writer.handler(event, None)
    assert answers.bodies[-1]["Status"] == "SUCCESS"
    # The physical id a failed create answered names no object: its delete succeeds without touching S3.
    event["PhysicalResourceId"] = "failed-0f1e2d3c"
    writer.handler(event, None)
    assert [a["Status"] for a in answers.bodies] == ["SUCCESS"] * 4
    assert answers.bodies[-1]["PhysicalResourceId"] == "failed-0f1e2d3c"


@pytest.mark.parametrize(
    ("body", "change", "reason"),
    [
        (b"not json", {}, "is not JSON"),
        (b"", {}, "is not JSON"),
        (b"[1, 2]", {}, "is not a JSON object"),
        (json.dumps({"methods": {"pdp": {}}}).encode(), {}, "it has no methods.shap object"),
        (json.dumps({**SOURCE, "predictor": "x"}).encode(), {}, "the source's predictor must be an object"),
        (None, {"SourceUri": "registry-data/key.json"}, "SourceUri must be an s3://bucket/key URI"),
        (None, {"ModelName": ""}, "ModelName must be a non-empty string"),
        (None, {"EndpointNamePrefix": ""}, "EndpointNamePrefix must be a non-empty string"),
        (None, {"InstanceCount": "zero"}, "InstanceCount must be a positive integer"),
        (None, {"SourceUri": "s3://registry-data/missing.json"}, "NoSuchKey"),
    ],
)
def test_every_failure_is_answered_failed_with_its_reason(
    s3: Any, answers: Answers, body: bytes | None, change: dict[str, str], reason: str
) -> None:
    put_source(s3, body)
    event = create_event()
    event["ResourceProperties"].update(change)
    writer.handler(event, None)
    (answer,) = answers.bodies
    assert answer["Status"] == "FAILED", answer
    assert reason in answer["Reason"], answer
    # A failed create's physical id is no s3:// URI, so the delete CloudFormation sends next removes nothing.
    assert not answer["PhysicalResourceId"].startswith("s3://")
    with pytest.raises(s3.exceptions.NoSuchKey):
        read_copy(s3)


@pytest.mark.parametrize("event", [None, "text", {}, {"RequestType": "Create"}, {"ResponseURL": 3}])
def test_a_request_without_a_response_url_is_logged_not_raised(event: Any, answers: Answers, caplog: Any) -> None:
    writer.handler(event, None)
    assert answers.bodies == []
    assert "no ResponseURL" in caplog.text


def test_an_unknown_request_type_is_answered_failed(s3: Any, answers: Answers) -> None:
    event = create_event()
    event["RequestType"] = "Rename"
    writer.handler(event, None)
    assert answers.bodies[0]["Status"] == "FAILED"
    assert "RequestType must be one of Create, Update, Delete" in answers.bodies[0]["Reason"]
