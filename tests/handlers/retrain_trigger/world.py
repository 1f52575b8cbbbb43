"""The moto world the handler tests drive: S3 (versioned), DynamoDB, SQS and a SageMaker pipeline, in-process.

Time is controlled by replacing ``handler._now``; checks the handler sends to its
queue are recorded by a spy that forwards them to moto, and delivered by the test
when their ``due`` time comes (instead of sleeping through ``DelaySeconds``).
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.s3.models import FakeDeleteMarker, FakeKey, S3Backend, s3_backends
from moto.s3.utils import _VersionedKeyStore
from moto.sagemaker.models import sagemaker_backends

from cdk_mlops import datasets
from cdk_mlops.lambdas.retrain_trigger import core
from cdk_mlops.lambdas.retrain_trigger import handler as handler_module
from tests.handlers.retrain_trigger.conftest import (
    BUCKET,
    DATASET,
    PIPELINE,
    REGION,
    FakeLambdaContext,
    object_created,
    sqs_event,
    sqs_record,
)

T0 = datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC)
TABLE = "retrain-state"
QUEUE = "retrain-trigger"
GROUP = f"{PIPELINE}-models"
#: What the pipeline's Register step records as the package's EvaluationMetric metadata.
AUC = "binary_classification_metrics.auc.value"


@dataclass(frozen=True)
class Registered:
    """A registered model package and the baseline constraints it records."""

    arn: str
    constraints: str | None


def auc(value: float) -> dict[str, Any]:
    """An evaluation.json as ``evaluate.py`` writes it for binary classification."""
    return {"binary_classification_metrics": {"auc": {"value": value, "standard_deviation": "NaN"}}}


@dataclass
class Aws:
    """The moto world of one test and helpers to drive the handler through it."""

    monkeypatch: pytest.MonkeyPatch
    now: datetime = T0
    sent_checks: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    starts: list[dict[str, Any]] = field(default_factory=list)
    context: FakeLambdaContext = field(default_factory=FakeLambdaContext)

    def __post_init__(self) -> None:
        self.s3 = boto3.client("s3", region_name=REGION)
        self.ddb = boto3.client("dynamodb", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.sm = boto3.client("sagemaker", region_name=REGION)

    # --- configuration ----------------------------------------------------------------------

    def env(self, **values: str | int) -> None:
        for name, value in values.items():
            self.monkeypatch.setenv(name, str(value))

    def at(self, moment: datetime) -> None:
        self.now = moment

    def later(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    # --- data -------------------------------------------------------------------------------

    def put(self, *keys: str, body: bytes = b"a,b\n1,2\n") -> list[dict[str, Any]]:
        """Upload objects through the S3 API; return their Object Created events."""
        for key in keys:
            self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        return [object_created(key, size=len(body)) for key in keys]

    def put_many(self, keys: list[str], body: bytes = b"a,b\n1,2\n") -> list[dict[str, Any]]:
        """Store many objects directly in moto's S3 backend.

        Through the API moto needs ~2 ms per object, 20 s for 10,000; the backend
        call stores the same versioned objects, which the handler then lists
        through the API as usual.
        """
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for key in keys:
            backend.put_object(BUCKET, key, body)
        return [object_created(key, size=len(body)) for key in keys]

    def drop(self, name: str, n: int = 3, *, marker: bool = True) -> list[dict[str, Any]]:
        keys = [f"datasets/{DATASET}/{name}/part-{i:05d}.csv" for i in range(n)]
        if marker:
            keys.append(f"datasets/{DATASET}/{name}/_SUCCESS")
        return self.put(*keys)

    # --- the model registry -------------------------------------------------------------------

    def register(
        self,
        evaluation: dict[str, Any] | None,
        *,
        status: str = "Approved",
        baseline: bool = True,
        metadata: dict[str, str] | None = None,
    ) -> Registered:
        """Register a model package as the pipeline's Register step does, with its evaluation.json in S3."""
        prefix = f"artifacts/{PIPELINE}/{uuid.uuid4().hex[:12]}"
        evaluation_uri = f"s3://{BUCKET}/{prefix}/evaluate/evaluation.json"
        if evaluation is not None:
            self.s3.put_object(Bucket=BUCKET, Key=f"{prefix}/evaluate/evaluation.json", Body=json.dumps(evaluation))
        constraints = f"s3://{BUCKET}/{prefix}/data-quality-baseline/constraints.json"
        request: dict[str, Any] = {
            "ModelPackageGroupName": GROUP,
            "ModelApprovalStatus": status,
            "InferenceSpecification": {
                "Containers": [{"Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/xgboost:1.7-1"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            "ModelMetrics": {
                "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": evaluation_uri}}
            },
            "CustomerMetadataProperties": {"EvaluationMetric": AUC} if metadata is None else metadata,
        }
        if baseline:
            request["DriftCheckBaselines"] = {
                "ModelDataQuality": {"Constraints": {"ContentType": "application/json", "S3Uri": constraints}}
            }
        arn = self.sm.create_model_package(**request)["ModelPackageArn"]
        return Registered(arn, constraints if baseline else None)

    # --- running the handler ----------------------------------------------------------------

    def invoke(self, records: list[dict[str, Any]]) -> list[str]:
        self.monkeypatch.setattr(handler_module, "_now", lambda: self.now)
        result = handler_module.handler(sqs_event(records), self.context)
        return [failure["itemIdentifier"] for failure in result["batchItemFailures"]]

    def deliver(self, *bodies: dict[str, Any] | str) -> list[str]:
        """Deliver events as one batch of fresh SQS records; return the failed message ids."""
        return self.invoke([sqs_record(body) for body in bodies])

    def deliver_checks(self) -> list[str]:
        """Deliver every check sent so far, at its due time (the latest one's)."""
        checks, self.sent_checks = self.sent_checks, []
        assert checks, "no check was sent"
        self.at(max(datetime.fromtimestamp(body["detail"]["due"], UTC) for body, _ in checks))
        return self.deliver(*(body for body, _ in checks))

    # --- observing ----------------------------------------------------------------------------

    def executions(self) -> list[str]:
        summaries = self.sm.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
        return [s["PipelineExecutionArn"] for s in summaries]

    def parameters(self, execution_arn: str) -> dict[str, str]:
        response = self.sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=execution_arn)
        return {p["Name"]: p["Value"] for p in response["PipelineParameters"]}

    def manifest(self, execution_arn: str) -> datasets.Manifest:
        return datasets.load_manifest(self.parameters(execution_arn)["InputManifestUri"], s3=self.s3)

    def set_status(self, execution_arn: str, status: str) -> None:
        # moto marks every execution Succeeded at once; a real one runs for minutes or hours.
        pipeline = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].pipelines[PIPELINE]
        pipeline.pipeline_executions[execution_arn].pipeline_execution_status = status

    def items(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        scanned = self.ddb.scan(TableName=TABLE)["Items"]
        return {item["pk"]["S"]: item for item in scanned if item["pk"]["S"].startswith(prefix)}

    def dataset_item(self) -> dict[str, Any]:
        return self.items(f"dataset#{PIPELINE}#{DATASET}").get(f"dataset#{PIPELINE}#{DATASET}", {})

    def delayed_messages(self) -> int:
        url = self.sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessagesDelayed"])

    def replace_client_method(self, client: Any, name: str, replacement: Callable[..., Any]) -> None:
        self.monkeypatch.setattr(client, name, replacement)


def moto_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """The ``aws`` fixture: a fresh moto world with the trigger's bucket, table, queues and pipeline."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        handler_module.reset_clients()
        world = Aws(monkeypatch)
        world.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        world.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        world.ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        world.ddb.update_time_to_live(
            TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
        )
        dlq = world.sqs.create_queue(QueueName=f"{QUEUE}-dlq")["QueueUrl"]
        dlq_arn = world.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = world.sqs.create_queue(
            QueueName=QUEUE,
            Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})},
        )["QueueUrl"]
        definition = {
            "Version": "2020-12-01",
            "Parameters": [{"Name": name, "Type": "String"} for name in core.PIPELINE_PARAMETER_NAMES],
            "Steps": [],
        }
        world.sm.create_model_package_group(ModelPackageGroupName=GROUP)
        world.sm.create_pipeline(
            PipelineName=PIPELINE,
            RoleArn="arn:aws:iam::123456789012:role/sagemaker-pipeline",
            PipelineDefinition=json.dumps(definition),
            ClientRequestToken="create-churn-training-pipeline-0001",
        )
        world.env(
            PIPELINE_NAME=PIPELINE,
            DATA_BUCKET=BUCKET,
            DATASETS=DATASET,
            STATE_TABLE=TABLE,
            QUEUE_URL=queue_url,
            MODEL_PACKAGE_GROUP_NAME=GROUP,
            METRICS_NAMESPACE="Test/Retrain",
            COOLDOWN_SECONDS=0,
            MAX_RUNS_PER_DAY=0,
        )
        _spy_on_clients(world)
        yield world
    handler_module.reset_clients()


def _spy_on_clients(world: Aws) -> None:
    """Record the checks and starts the handler sends; the calls still go to moto."""
    sqs = handler_module._sqs()
    send = sqs.send_message

    def send_message(**kwargs: Any) -> Any:
        body = json.loads(kwargs["MessageBody"])
        if body.get("detail-type") == "Retrain Check":
            world.sent_checks.append((body, kwargs.get("DelaySeconds", 0)))
        return send(**kwargs)

    world.monkeypatch.setattr(sqs, "send_message", send_message)
    sagemaker = handler_module._sagemaker()
    start = sagemaker.start_pipeline_execution

    def start_pipeline_execution(**kwargs: Any) -> Any:
        world.starts.append(kwargs)
        return start(**kwargs)

    world.monkeypatch.setattr(sagemaker, "start_pipeline_execution", start_pipeline_execution)


def throttle(times: int, code: str, real: Callable[..., Any], operation: str) -> Callable[..., Any]:
    """A client method that raises ``code`` for its first ``times`` calls, then calls ``real``."""
    calls = {"n": 0}

    def method(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= times:
            raise ClientError({"Error": {"Code": code, "Message": "Rate exceeded"}}, operation)
        return real(**kwargs)

    return method


def in_batches(records: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [records[i : i + size] for i in range(0, len(records), size)]


class _ListedKey(FakeKey):
    """A listing's copy of a stored version: it shares the body buffer, which only the stored version closes."""

    def __del__(self) -> None:
        pass

    def dispose(self, garbage: bool = False) -> None:
        pass


def _shallow_copy(version: FakeKey | FakeDeleteMarker, memo: dict[int, Any]) -> FakeKey | FakeDeleteMarker:
    """A stored version's attributes in a new object; a key's body is shared, not spooled into a new file."""
    if isinstance(version, FakeKey):
        clone = object.__new__(_ListedKey)
        clone.__dict__.update(version.__dict__)
        return clone
    return copy.copy(version)


def _last_modified_to_the_second(version: FakeKey | FakeDeleteMarker) -> datetime:
    """The time moto's listing sends, as a datetime (what moto formats to text, and its serializer parses back)."""
    return version.last_modified.replace(microsecond=0)


def cheap_listing_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let moto's ListObjectVersions copy and time-stamp each stored version the cheap way.

    moto deep-copies every version of the bucket on every page (each copy spools the body into a
    new temporary file), only to mark ``IsLatest`` on the copies, and formats each version's time
    as text that its serializer parses back: listing 10,000 versions (10 pages) makes 100,000 deep
    copies and 10,000 date parses, most of the profile of a 10,000-object test. A copy of the
    attributes that shares the body, the datetime itself, and the keys under the prefix only list
    the same pages (``test_cheap_listing_copies_list_what_moto_lists``).
    """
    for kind in (FakeKey, FakeDeleteMarker):
        monkeypatch.setattr(kind, "__deepcopy__", _shallow_copy, raising=False)
        monkeypatch.setattr(kind, "last_modified_ISO8601", property(_last_modified_to_the_second))
    monkeypatch.setattr(S3Backend, "list_object_versions", _prefix_first(S3Backend.list_object_versions))


def _prefix_first(listing: Callable[..., Any]) -> Callable[..., Any]:
    """moto's ListObjectVersions over the keys under the request's prefix only.

    moto copies and sorts every version of the bucket before it looks at the prefix; with the
    bucket's keys narrowed to the prefix for the call, it lists the same pages from fewer copies
    (a start of one of 50 datasets copies its own versions, not all 50 datasets').
    """

    def list_object_versions(self: S3Backend, bucket_name: str, **kwargs: Any) -> Any:
        prefix = kwargs.get("prefix") or ""
        bucket = self.get_bucket(bucket_name)
        every = bucket.keys
        under = _VersionedKeyStore()
        for key, versions in every.iterlists():
            if key.startswith(prefix):
                dict.__setitem__(under, key, versions)
        bucket.keys = under
        try:
            return listing(self, bucket_name, **kwargs)
        finally:
            bucket.keys = every

    return list_object_versions
