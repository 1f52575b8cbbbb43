"""What the local AWS cannot do on its own, done in this process: Lambda's part, and time passing.

moto cannot run Lambda code without Docker, and a moto server answers in real time only.
The closed loop (:mod:`cdk_mlops.local.loop`) therefore plays these parts itself:

* **the Lambda runtime**: :class:`LambdaContainer` sets a deployed function's environment
  variables (as ``GetFunctionConfiguration`` reports them) plus the local endpoint and dummy
  credentials for the duration of each invocation, and restores ``os.environ`` afterwards.
  :class:`LambdaContext` is the context object, with the function's real timeout as the
  remaining-time clock.
* **the SQS event source mapping**: :class:`QueuePoller` receives the queue's visible messages
  as one batch (what a batching window gathers), shapes them as the SQS records Lambda
  delivers, and deletes the records the handler did not report in ``batchItemFailures``.
  While it polls, :meth:`Backends.moto_pollers_suspended` detaches moto's own event source mapping
  from the queue: moto would otherwise try to run the function in Docker on every message.
* **time**: :class:`SimulatedClock` runs ahead of the wall clock by an offset that only
  :meth:`SimulatedClock.advance` changes, and moves the ``DelaySeconds`` of the messages
  waiting in moto's queues by the same amount, so a message sent with a 15-minute delay is
  received once the simulated clock has advanced 15 minutes (moto honours ``DelaySeconds``
  in real time).
* **running executions**: :meth:`Backends.set_execution_status` sets a pipeline execution's
  status; moto marks every execution ``Succeeded`` the moment it starts.
* **deleting model packages**: :meth:`Backends.delete_model_package`; moto has no
  ``DeleteModelPackage``.

:class:`Backends` reaches into moto's backends, so the server must run in this process, as
:func:`cdk_mlops.local.server.local_aws` runs it.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cdk_mlops.local.endpoint import LocalAws

#: SQS record attributes Lambda passes on to the function.
_RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
)


@dataclass(frozen=True)
class FunctionConfiguration:
    """A deployed Lambda function, as ``GetFunctionConfiguration`` reports it."""

    name: str
    arn: str
    handler: str
    environment: Mapping[str, str]
    timeout_s: int
    memory_mb: int

    @classmethod
    def read(cls, aws: LocalAws, name: str) -> FunctionConfiguration:
        """The configuration of function ``name`` on the local AWS."""
        config = aws.client("lambda").get_function_configuration(FunctionName=name)
        return cls(
            name=config["FunctionName"],
            arn=config["FunctionArn"],
            handler=config["Handler"],
            environment=dict(config.get("Environment", {}).get("Variables", {})),
            timeout_s=int(config.get("Timeout", 3)),
            memory_mb=int(config.get("MemorySize", 128)),
        )


@dataclass
class LambdaContext:
    """The context object of one invocation: the fields handlers read and the remaining time."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_s: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic, repr=False)

    @classmethod
    def for_function(cls, function: FunctionConfiguration) -> LambdaContext:
        """A fresh context (new request id, full timeout) for one invocation of ``function``."""
        return cls(function.name, function.arn, function.memory_mb, function.timeout_s)

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds until the function's timeout, counted from the context's creation."""
        left = self.timeout_s - (time.monotonic() - self._started)
        return max(0, int(left * 1000))


class LambdaContainer:
    """A warm execution environment of a deployed function, in this process.

    Lambda keeps a container between invocations, so what a handler caches at module level
    (its boto3 clients) survives from one invocation to the next. The container keeps one
    boto3 session for that reason. :meth:`invocation` sets the function's environment
    variables, the local endpoint, region and dummy credentials of ``aws.env`` (and removes
    every other ``AWS_*`` variable: profiles, real keys) and makes the container's session
    boto3's default one, for the duration of the ``with`` block; afterwards ``os.environ``
    and boto3's default session are as they were.
    """

    def __init__(self, function: FunctionConfiguration, *, aws: LocalAws) -> None:
        self.function = function
        self.variables = {k: v for k, v in aws.env.items() if k.startswith("AWS_")}
        self.variables.update(function.environment)
        self._session: Any = None

    @contextlib.contextmanager
    def invocation(self) -> Iterator[LambdaContext]:
        """The environment of one invocation; yields its context object."""
        import boto3

        touched = set(self.variables) | {k for k in os.environ if k.startswith("AWS_")}
        saved = {k: os.environ.get(k) for k in touched}
        saved_session = boto3.DEFAULT_SESSION
        try:
            for name in touched - set(self.variables):
                os.environ.pop(name, None)
            os.environ.update(self.variables)
            if self._session is None:
                self._session = boto3.session.Session()  # reads the environment just set
            boto3.DEFAULT_SESSION = self._session
            yield LambdaContext.for_function(self.function)
        finally:
            boto3.DEFAULT_SESSION = saved_session
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


# --- moto's backends ---------------------------------------------------------------------------


def queue_name(queue_url: str) -> str:
    """The queue name, the last segment of its URL."""
    return queue_url.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Backends:
    """moto's in-process backends of the local AWS's account and region.

    Attributes:
        account: The account the server answers for.
        region: The region of the local clients.
    """

    account: str
    region: str

    @classmethod
    def of(cls, aws: LocalAws) -> Backends:
        """The backends behind ``aws`` (its server must run in this process)."""
        return cls(aws.account_id(), aws.region)

    @property
    def sqs(self) -> Any:
        from moto.sqs.models import sqs_backends

        return sqs_backends[self.account][self.region]

    @property
    def sagemaker(self) -> Any:
        from moto.sagemaker.models import sagemaker_backends

        return sagemaker_backends[self.account][self.region]

    @contextlib.contextmanager
    def moto_pollers_suspended(self, queue_url: str) -> Iterator[None]:
        """Detach moto's event source mappings from a queue for the ``with`` block, then reattach them.

        moto reacts to every message sent to a queue with a mapping by receiving a batch and
        running the function in Docker; without Docker that fails, and the messages come back
        with a higher receive count. The mapping itself (``ListEventSourceMappings``) is unchanged.
        """
        queue = self.sqs.queues[queue_name(queue_url)]
        detached = dict(queue.lambda_event_source_mappings)
        queue.lambda_event_source_mappings.clear()
        try:
            yield
        finally:
            queue.lambda_event_source_mappings.update(detached)

    def set_execution_status(self, pipeline_name: str, execution_arn: str, status: str) -> None:
        """Set a pipeline execution's status (moto marks every execution Succeeded at once)."""
        pipeline = self.sagemaker.pipelines[pipeline_name]
        pipeline.pipeline_executions[execution_arn].pipeline_execution_status = status

    def delayed_messages(self) -> list[Any]:
        """Messages of every queue whose ``DelaySeconds`` has not elapsed yet."""
        now_ms = time.time() * 1000
        return [m for queue in self.sqs.queues.values() for m in queue._messages if m.delayed_until > now_ms]


# --- time ----------------------------------------------------------------------------------------


class SimulatedClock:
    """A clock ahead of the wall clock by an offset that only :meth:`advance` changes.

    :meth:`advance` also moves the delays of the messages waiting in moto's SQS queues, so
    delays elapse on this clock.
    """

    def __init__(self, backends: Backends) -> None:
        self._backends = backends
        self.offset = timedelta(0)
        self.started = self.now()

    def now(self) -> datetime:
        """The simulated time (aware, UTC)."""
        return datetime.now(UTC) + self.offset

    @property
    def elapsed(self) -> timedelta:
        """Simulated time since the clock was created."""
        return self.now() - self.started

    def advance(self, delta: timedelta) -> None:
        """Move the clock (and the SQS delays) forward by ``delta``."""
        if delta < timedelta(0):
            raise ValueError(f"the clock only moves forward; got {delta}")
        self.offset += delta
        shift_ms = delta.total_seconds() * 1000
        for message in self._backends.delayed_messages():
            message.delayed_until = max(0.0, message.delayed_until - shift_ms)

    def advance_to(self, moment: datetime) -> timedelta:
        """Move the clock forward to ``moment`` (no move if it is past); return how far it moved."""
        delta = max(timedelta(0), moment - self.now())
        self.advance(delta)
        return delta

    def next_delay(self) -> timedelta | None:
        """How far until the next delayed SQS message becomes receivable, or ``None`` if none waits."""
        now_ms = time.time() * 1000
        waits = [m.delayed_until - now_ms for m in self._backends.delayed_messages()]
        if not waits:
            return None
        return timedelta(seconds=math.ceil(max(0.0, min(waits)) / 1000))


# --- the event source mapping ---------------------------------------------------------------------


@dataclass(frozen=True)
class EventSourceMapping:
    """An SQS event source mapping, as ``ListEventSourceMappings`` reports it."""

    queue_arn: str
    batch_size: int
    report_batch_item_failures: bool

    @classmethod
    def of_function(cls, aws: LocalAws, function_name: str) -> EventSourceMapping:
        """The function's (one) SQS event source mapping.

        Raises:
            LookupError: if the function has no SQS mapping.
        """
        mappings = aws.client("lambda").list_event_source_mappings(FunctionName=function_name)
        for mapping in mappings.get("EventSourceMappings", []):
            if ":sqs:" in mapping.get("EventSourceArn", ""):
                return cls(
                    queue_arn=mapping["EventSourceArn"],
                    batch_size=int(mapping.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", []),
                )
        raise LookupError(f"function {function_name} has no SQS event source mapping")


class QueuePoller:
    """Lambda's side of an SQS event source mapping: receive a batch, then delete what succeeded."""

    def __init__(self, aws: LocalAws, queue_url: str, mapping: EventSourceMapping) -> None:
        self._sqs = aws.client("sqs")
        self._region = aws.region
        self.queue_url = queue_url
        self.mapping = mapping

    def receive(self) -> list[dict[str, Any]]:
        """Every visible message, up to the mapping's batch size, as Lambda's SQS records."""
        records: list[dict[str, Any]] = []
        while len(records) < self.mapping.batch_size:
            response = self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.mapping.batch_size - len(records)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            )
            messages = response.get("Messages", [])
            if not messages:
                break
            records.extend(self.record(message) for message in messages)
        return records

    def record(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """One ``ReceiveMessage`` message in the shape of a Lambda SQS event record."""
        attributes = message.get("Attributes", {})
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {name: attributes[name] for name in _RECORD_ATTRIBUTES if name in attributes},
            "messageAttributes": {},
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.mapping.queue_arn,
            "awsRegion": self._region,
        }

    def delete(self, records: Sequence[Mapping[str, Any]], *, failed: Sequence[str] = ()) -> int:
        """Delete the records whose message id is not in ``failed``; return how many were deleted.

        A record that failed stays in flight and, after the visibility timeout, is received again.
        """
        done = [r for r in records if r["messageId"] not in set(failed)]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)],
            )
        return len(done)


def redelivered(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The same records as SQS delivers them again: same message ids and bodies, receive count + 1."""
    again = []
    for record in records:
        copy = dict(record)
        attributes = dict(record.get("attributes", {}))
        attributes["ApproximateReceiveCount"] = str(int(attributes.get("ApproximateReceiveCount", "1")) + 1)
        copy["attributes"] = attributes
        copy["receiptHandle"] = f"redelivered-{uuid.uuid4().hex}"
        again.append(copy)
    return again
