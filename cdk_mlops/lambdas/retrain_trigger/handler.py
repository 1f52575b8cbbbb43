"""Lambda handler of the retrain trigger: one SQS queue in, at most one pipeline run per data version out.

Entry point: ``cdk_mlops.lambdas.retrain_trigger.handler.handler``. The function
asset holds ``cdk_mlops/__init__.py``, ``cdk_mlops/lambdas/__init__.py``,
``cdk_mlops/datasets.py``, ``cdk_mlops/champion.py`` and ``cdk_mlops/lambdas/retrain_trigger/``
(``common.lambda_code("datasets.py", "champion.py", "lambdas/retrain_trigger")``). It
imports the standard library, boto3 and Powertools for AWS Lambda (Python) v3 (``Logger``, EMF
``Metrics``, the SQS ``BatchProcessor``), which the function gets from AWS's managed layer; the
asset never bundles it.

What a start sends
------------------
``StartPipelineExecution`` (``core.start_request``) with the parameters ``InputManifestUri``,
``ManifestSha256``, ``DataVersion``, ``TriggerReason`` and the champion every run must beat,
looked up at each start, whatever started it (new data, a schedule, drift, a monitor
violation, a person):

1. ``ListModelPackages`` of ``MODEL_PACKAGE_GROUP_NAME``, ``Approved`` only, newest first, one;
2. ``DescribeModelPackage`` of that package;
3. ``GetObject`` of its ``ModelMetrics.ModelQuality.Statistics.S3Uri`` (its ``evaluation.json``);
4. ``cdk_mlops.champion.champion_parameters``: ``ChampionMetric`` (the metric its
   ``EvaluationMetric`` metadata names) and, when it has a data-quality baseline,
   ``BaselineConstraintsUri``, so that ``Preprocess`` validates the new data against it.

With ``COMPARE_WITH_CHAMPION=false`` (a pipeline that scores or otherwise has no gate, such as
``BatchInference``'s) a start sends only the four data parameters and looks nothing up: steps
1-3 are not called, no ``ChampionMetric`` or ``BaselineConstraintsUri`` is sent, and the
function needs no permission for them.

No approved package is the first model: ``ChampionMetric`` is ``0`` (the gate then registers
the first model that meets the threshold) and ``BaselineConstraintsUri`` keeps its empty
default (no data validation). An approved package whose evaluation cannot be read, or lacks
the metric, never becomes "no champion": the start fails (an ``ERROR`` line names the
package), nothing starts, and the records are retried until they reach the dead-letter
queue. Fix the package's evaluation or reject the package, then redrive. The champion of
an interrupted start is stored with its idempotency record, so the retry repeats the same
request.

What the construct must create
------------------------------
* **Queue** (standard, not FIFO: delayed checks need per-message ``DelaySeconds``)
  with a **dead-letter queue**, ``maxReceiveCount`` 10, DLQ retention 14 days.
  Visibility timeout >= 6 x the function timeout + the batching window
  (function timeout 120 s, window 60 s: 900 s). A retried record becomes
  visible again after the visibility timeout; that is the backoff (a record
  failing for good reaches the DLQ after about 2.5 hours). Encrypt with
  SSE-SQS, or give EventBridge and Scheduler ``kms:GenerateDataKey`` and
  ``kms:Decrypt`` on a customer managed key.
* **Event source mapping** from the queue: ``batch_size`` up to 10,000,
  ``max_batching_window`` 60 s (required above 10 records),
  ``report_batch_item_failures=True``, ``max_concurrency`` 2 or more (the
  handler is safe under any concurrency; a low value keeps DynamoDB and
  SageMaker calls few). Lambda caps a batch at 6 MB, about 3,000 S3 events.
* **Function**: ``LAMBDA_RUNTIME``, timeout 120 s, 512 MB, with a Powertools for AWS
  Lambda (Python) v3 layer for its runtime and architecture. A start lists the
  dataset (one ``ListObjectVersions`` page per 1,000 objects, about 0.1 s each):
  raise the timeout for datasets above ~500,000 objects. Keep
  function timeout < ``LEASE_SECONDS`` < visibility timeout.
* **State table**: DynamoDB, partition key ``pk`` (string), no sort key,
  on-demand, TTL attribute ``expires_at``, point-in-time recovery, encrypted.
* **EventBridge rules** targeting the queue (the queue policy lets
  ``events.amazonaws.com`` send only for these rules: ``ArnEquals aws:SourceArn``; the
  queue key's policy lets it use the key only with ``aws:SourceAccount`` = the account):

  - ``aws.s3`` / ``Object Created``, with ``detail.bucket.name`` = the data bucket
    and ``detail.object.key`` prefix ``datasets/`` (the bucket sends its events to
    EventBridge; ``VersionedDataStore`` turns that on);
  - ``aws.sagemaker`` / ``SageMaker Model Building Pipeline Execution Status Change``,
    with ``detail.pipelineArn`` = the pipeline and ``detail.currentPipelineExecutionStatus``
    in ``Succeeded``, ``Failed``, ``Stopped``, ``CompletedWithFailures`` (this releases the lock);
  - ``aws.cloudwatch`` / ``CloudWatch Alarm State Change`` for the drift alarms,
    ``detail.state.value`` = ``ALARM`` (optional);
  - ``cdk-mlops.monitor`` / ``Model Monitor Violation`` (optional);
  - ``cdk-mlops.retrain`` / ``Manual Retrain`` on the bus people publish to.
  - ``aws.states`` / ``Step Functions Execution Status Change`` with
    ``detail.stateMachineArn`` = the ``InventorySnapshot`` state machine and ``detail.status``
    = ``SUCCEEDED`` (only with ``SNAPSHOT_STATE_MACHINE_ARN``).
* **EventBridge Scheduler** schedule (optional) whose target is the queue
  (``SqsSendMessage``; its role needs ``sqs:SendMessage`` and, in its trust policy,
  ``aws:SourceAccount`` = the account) with this input, the
  placeholders being Scheduler context attributes::

      {"version": "0", "id": "<aws.scheduler.execution-id>", "source": "cdk-mlops.retrain",
       "detail-type": "Scheduled Retrain", "time": "<aws.scheduler.scheduled-time>",
       "detail": {"dataset": "<name>", "scheduledTime": "<aws.scheduler.scheduled-time>", "always": false}}

  With ``always`` false a scheduled run trains only a data version not trained
  yet (the backstop for missed object events); ``true`` retrains unchanged data
  once per schedule slot.

Our own message shapes: ``Manual Retrain`` ``detail`` is ``{"dataset": ..., "pipeline"?: ...,
"reason": ..., "requestedBy": ...}`` (``aws events put-events``; a request that names another
``pipeline`` is not for this trigger, and ``Scheduled Retrain`` may name one too);
``Model Monitor Violation`` ``detail`` is
``{"dataset"?: ..., "monitoringScheduleName": ..., "processingJobArn": ..., "violations": n}``;
``Retrain Check`` (sent by this handler to its own queue, ``DelaySeconds`` <= 900, chained
for longer waits) ``detail`` is ``{"pipeline": ..., "dataset": ..., "due": <epoch seconds>}``.

IAM permissions of the function's role
--------------------------------------
* ``dynamodb:BatchGetItem``, ``dynamodb:GetItem``, ``dynamodb:UpdateItem``,
  ``dynamodb:DeleteItem`` on the state table.
* ``sqs:SendMessage`` on the queue (delayed checks), plus what the event source
  mapping needs (``sqs:ReceiveMessage``, ``sqs:DeleteMessage``,
  ``sqs:ChangeMessageVisibility``, ``sqs:GetQueueAttributes``; CDK's
  ``SqsEventSource`` grants them). ``kms:GenerateDataKey``/``kms:Decrypt`` on the
  queue's key if it has one.
* ``sagemaker:StartPipelineExecution`` and ``sagemaker:ListPipelineExecutions``
  on ``arn:aws:sagemaker:<region>:<account>:pipeline/<pipeline name>``.
* Unless ``COMPARE_WITH_CHAMPION`` is ``false``: ``sagemaker:ListModelPackages`` and
  ``sagemaker:DescribeModelPackage`` on
  ``arn:aws:sagemaker:<region>:<account>:model-package/<group>/*`` (the champion), and
  ``s3:GetObject`` on the pipeline's artifacts prefix (``artifacts/<pipeline>/*``, where
  the champion's ``evaluation.json`` is) with ``kms:Decrypt`` on the bucket's key.
* For each dataset in ``SNAPSHOT_DATASETS``: ``s3:ListBucket`` (``s3:prefix``
  ``manifests/<name>/``) and ``s3:GetObject`` on ``<bucket>/manifests/<name>/*`` with
  ``kms:Decrypt``: a start that no snapshot's event asked for reads the newest index.
* For each dataset not in ``SNAPSHOT_DATASETS``: ``s3:ListBucketVersions`` on the data
  bucket (the manifest is built from ``ListObjectVersions``; a ``s3:prefix`` condition may
  limit it to ``datasets/<name>/``), ``s3:PutObject`` on ``<bucket>/manifests/<name>/*``,
  and ``kms:GenerateDataKey`` on the bucket's key.
* CloudWatch metrics need no permission: they are Embedded Metric Format log lines
  (Powertools' ``Metrics``).

Environment variables (read on every invocation by ``core.Settings.from_env``)
---------------------------------------------------------------------------
Required:

* ``PIPELINE_NAME``: the SageMaker pipeline to start.
* ``DATA_BUCKET``: the bucket holding ``datasets/<name>/`` and ``manifests/<name>/``.
* ``DATASETS``: dataset names, comma-separated or a JSON array; the first is the
  one drift alarms retrain.
* ``STATE_TABLE``: the DynamoDB state table's name.
* ``QUEUE_URL``: the trigger queue's URL (delayed checks are sent to it).
* ``MODEL_PACKAGE_GROUP_NAME``: the group whose newest approved package is the champion
  (not read, and not required, with ``COMPARE_WITH_CHAMPION=false``).

Optional (default in brackets):

* ``COMPARE_WITH_CHAMPION`` [``true``]: ``false`` starts executions with the data parameters
  only and never looks up a champion (see "What a start sends").

* ``MODE`` [``QUIET_PERIOD``]: or ``COMMIT_MARKER``.
* ``QUIET_PERIOD_SECONDS`` [900]: quiet-period mode starts once no object arrived
  for this long. Every trigger (drift, manual) also waits for a quiet dataset.
* ``MARKER_NAME`` [``_SUCCESS``]: commit-marker mode starts when an object of this
  name lands anywhere under the dataset; other objects never start a run.
* ``KEY_PREFIX`` [none]: only objects under ``datasets/<name>/<KEY_PREFIX>`` count.
* ``KEY_SUFFIXES`` [none]: only objects ending with one of these count (comma list).
* ``MIN_OBJECTS`` [0], ``MIN_BYTES`` [0]: a data trigger needs at least this many
  new objects and bytes since the last start (both, when both are set).
* ``COOLDOWN_SECONDS`` [3600]: minimum time between two starts.
* ``MAX_RUNS_PER_DAY`` [4]: starts per UTC day; 0 means no limit.
* ``IDEMPOTENCY_TTL_SECONDS`` [7776000, 90 days]: lifetime of idempotency records.
  The latest started digest per dataset is kept without expiry as well.
* ``LEASE_SECONDS`` [300]: lease of an in-progress start; keep it above the
  function timeout and below the visibility timeout.
* ``LOCK_RECHECK_SECONDS`` [900]: while the pipeline is busy, a pending dataset is
  re-checked this often (recovers from a missed status-change event).
* ``LOCK_GRACE_SECONDS`` [120]: a lock younger than this is never verified.
* ``METRICS_NAMESPACE`` [``CdkMlops/RetrainTrigger``]: namespace of the
  ``Decisions`` metric (dimension ``Decision``: started, pending, waiting,
  deduplicated, ignored, invalid, released, failed).
* ``SNAPSHOT_STATE_MACHINE_ARN`` and ``SNAPSHOT_DATASETS`` [none]: the datasets (of
  ``DATASETS``) versioned by an ``InventorySnapshot`` state machine instead of a listing. For
  them a run trains on the newest snapshot that succeeded: its ``aws.states`` / ``Step
  Functions Execution Status Change`` event (``SUCCEEDED``, this state machine; rule
  ``SnapshotFinished``) carries the version in ``detail.output`` (``dataset``, ``manifest``,
  ``digest``, ``object_count``, ``total_bytes``, ``as_of``), is stored with the dataset's
  state and starts a run like new data; object events of those datasets are ignored. A start
  for another reason (schedule, drift, a person) takes the newest index under
  ``manifests/<name>/`` when it is newer than the stored one, since Step Functions sends its
  events best effort. Set both or neither.

Failure handling
----------------
* An approved model package whose metric cannot be read fails the start (see "What a
  start sends"); like any other exception, its records are retried, then dead-lettered.
* Any exception while handling a dataset (throttling included:
  ``ThrottlingException``, ``ResourceLimitExceeded``,
  ``ProvisionedThroughputExceededException``) reports that dataset's records
  in ``batchItemFailures``; other datasets' records are unaffected. If the
  object events' state write succeeded but the decision failed, only the
  records that carry the decision (marker, check, schedule, manual, drift) are
  retried, or a single object record when there is none, so counters are not
  counted twice. SQS retries after the visibility timeout and moves a record to
  the dead-letter queue after ``maxReceiveCount`` receives: nothing is dropped.
* Invalid messages (not JSON, not an EventBridge event, one of our kinds with
  a broken ``detail``) are logged and reported as failures, so they end in the
  dead-letter queue for a person to see which producer is broken.
* Messages that are well-formed but not for us (another bucket, a key outside
  the datasets, an unknown ``detail-type``, an alarm returning to OK, another
  pipeline's executions) are logged and deleted.
* A configuration error (a missing or bad variable) raises: the whole batch is
  retried and, if not fixed, kept in the dead-letter queue.
* Records left when less than 15 s of the invocation remain are reported as
  failures untouched, so a timeout never redelivers half-handled work.
* Powertools' ``BatchProcessor`` writes the ``batchItemFailures`` response. It sees one
  record at a time while the trigger decides per dataset over the whole batch (aggregation,
  deduplication, the lock), so the trigger decides first and the processor then reports the
  records the decisions handed back. Handing back every record (time running out, another
  start in progress) is a normal outcome, not an invocation error.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache, partial
from typing import TYPE_CHECKING, Any, Final, cast

import boto3
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.config import Config
from botocore.exceptions import ClientError

from cdk_mlops import datasets
from cdk_mlops.champion import CHAMPION_METRIC, champion_parameters, evaluation_uri, first_model_parameters
from cdk_mlops.lambdas.retrain_trigger import core
from cdk_mlops.lambdas.retrain_trigger.core import (
    Candidate,
    Champion,
    DatasetBatch,
    DatasetState,
    DecisionKind,
    Deduplicated,
    FinishedSignal,
    Ignore,
    Lock,
    LockVerdict,
    Pend,
    PipelineState,
    Settings,
    Start,
    Trigger,
    Wait,
)
from cdk_mlops.lambdas.retrain_trigger.events import (
    RETRAIN_CHECK,
    RUNNING_STATUSES,
    SOURCE,
    Parsed,
    SnapshotVersion,
    parse_record,
    snapshot_from_index,
)
from cdk_mlops.lambdas.retrain_trigger.log import logger, publish_decisions
from cdk_mlops.lambdas.retrain_trigger.store import AlreadyDone, Busy, StateStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sqs import SQSClient

#: The partial batch response: ``{"batchItemFailures": [{"itemIdentifier": <SQS message id>}]}``.
SqsBatchResponse = dict[str, list[dict[str, str]]]

#: Below this much remaining time, records are handed back to SQS untouched.
SAFETY_MARGIN_MS: Final = 15_000

# Standard retry mode retries throttling a few times with backoff; what is left surfaces as an
# exception and becomes a batch item failure.
CLIENT_CONFIG: Final = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30)


@cache
def _s3() -> S3Client:
    return boto3.client("s3", config=CLIENT_CONFIG)


@cache
def _dynamodb() -> DynamoDBClient:
    return boto3.client("dynamodb", config=CLIENT_CONFIG)


@cache
def _sagemaker() -> SageMakerClient:
    return boto3.client("sagemaker", config=CLIENT_CONFIG)


@cache
def _sqs() -> SQSClient:
    return boto3.client("sqs", config=CLIENT_CONFIG)


def reset_clients() -> None:
    """Forget the cached clients (tests create them inside each moto context)."""
    for client in (_s3, _dynamodb, _sagemaker, _sqs):
        client.cache_clear()


def _now() -> datetime:
    return datetime.now(UTC)


class RetryLater(Exception):
    """Not an error: another invocation is starting the same data version; retry the records later."""


class ChampionUnreadable(RuntimeError):
    """The group has an approved model whose metric cannot be read: starting would compare with no champion."""


class HandedBack(Exception):
    """The record goes back to the queue: SQS delivers it again after the visibility timeout."""


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: Any) -> SqsBatchResponse:
    """Handle a batch of SQS records; return the ids of those to retry.

    A direct invocation with a single EventBridge event (no ``Records``) is
    handled as a batch of one; it raises if that event failed, so that the
    invoker's retry policy applies.
    """
    try:
        settings = Settings.from_env(os.environ)
    except (KeyError, ValueError) as exc:
        logger.error("invalid configuration; the batch is retried", error=str(exc), decision=DecisionKind.FAILED.value)
        raise
    logger.append_keys(pipeline=settings.pipeline_name)
    found = event.get("Records") if isinstance(event, Mapping) else None
    direct = not isinstance(found, list)
    records: list[Any] = found if isinstance(found, list) else [direct_record(event)]
    handed_back = BatchRun(settings, context, _now()).process(records)
    if direct and handed_back:
        raise RuntimeError(f"the event could not be handled: {handed_back[0]}")
    return batch_response(records, frozenset(handed_back), context)


def direct_record(event: object) -> dict[str, str]:
    """A single EventBridge event invoked directly, as the one record of a batch."""
    event_id = event.get("id") if isinstance(event, Mapping) else None
    return {"messageId": event_id if isinstance(event_id, str) and event_id else "direct", "body": json.dumps(event)}


def batch_response(records: list[Any], handed_back: frozenset[str], context: Any) -> SqsBatchResponse:
    """The partial batch response: the records in ``handed_back`` fail, every other one succeeds."""

    def record_handler(record: SQSRecord) -> None:
        raw = record.raw_event
        # A record without a string id (Lambda never sends one) is never handed back: reporting
        # it would fail the whole batch.
        message_id = raw.get("messageId") if isinstance(raw, Mapping) else None
        if isinstance(message_id, str) and message_id in handed_back:
            raise HandedBack(message_id)

    # Handing every record back is a normal outcome (time running out, another start in
    # progress), not an invocation error that would trip the errors alarm.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(
        event={"Records": records}, record_handler=record_handler, processor=processor, context=context
    )
    # SQS records are identified by their message ids, strings (the other shape is Kafka's).
    return cast(SqsBatchResponse, response)


class BatchRun:
    """One invocation: every unit of the batch, its decisions and its failures."""

    def __init__(self, settings: Settings, context: Any, now: datetime) -> None:
        self.settings = settings
        self.context = context
        self.now = now
        self.store = StateStore(_dynamodb(), settings.state_table, settings.pipeline_name)
        self.decisions: Counter[str] = Counter()
        self.failed: dict[str, None] = {}

    # --- the batch ------------------------------------------------------------------------

    def process(self, records: Sequence[object]) -> list[str]:
        return self.process_parsed([parse_record(record) for record in records])

    def process_parsed(self, parsed: Sequence[tuple[str, Parsed]]) -> list[str]:
        """Decide on parsed records; return the ids to hand back."""
        plan = core.plan_batch(parsed, self.settings, self.now)
        self._report_ignored(plan.ignored)
        for record_id, reason in plan.invalid:
            self._count(DecisionKind.INVALID)
            logger.warning(
                "invalid message; kept for the dead-letter queue",
                decision="invalid",
                reason=reason,
                message_id=record_id,
            )
            self._fail([record_id])
        for record_id, finished in plan.finished:
            if self._out_of_time([record_id]):
                continue
            self._unit([record_id], partial(self._finish, finished), dataset=None)
        for batch in plan.datasets.values():
            if self._out_of_time(batch.record_ids):
                continue
            self._dataset_unit(batch)
        publish_decisions(self.settings.metrics_namespace, dict(self.decisions))
        return list(self.failed)

    def _report_ignored(self, ignored: list[tuple[str, str]]) -> None:
        by_reason: defaultdict[str, list[str]] = defaultdict(list)
        for record_id, reason in ignored:
            by_reason[reason].append(record_id)
        for reason, ids in by_reason.items():
            self.decisions[DecisionKind.IGNORED.value] += len(ids)
            logger.info("ignored", decision="ignored", reason=reason, records=len(ids), message_ids=ids[:3])

    def _out_of_time(self, record_ids: list[str]) -> bool:
        remaining = getattr(self.context, "get_remaining_time_in_millis", None)
        if remaining is None or remaining() >= SAFETY_MARGIN_MS:
            return False
        self._fail(record_ids)
        self.decisions[DecisionKind.FAILED.value] += len(record_ids)
        logger.warning("deferred: the invocation is about to time out", decision="failed", records=len(record_ids))
        return True

    def _fail(self, record_ids: Sequence[str]) -> None:
        for record_id in record_ids:
            if record_id:  # an empty id cannot be reported without failing the whole batch
                self.failed[record_id] = None

    def _unit(self, record_ids: Sequence[str], work: Callable[[], object], *, dataset: str | None) -> bool:
        """Run ``work``; on any exception report ``record_ids`` as failures. ``True`` if it succeeded."""
        try:
            work()
        except RetryLater as exc:
            self._fail(record_ids)
            self.decisions[DecisionKind.FAILED.value] += len(record_ids)
            logger.warning("retry later", decision="failed", reason=str(exc), dataset=dataset, records=len(record_ids))
            return False
        except Exception as exc:
            self._fail(record_ids)
            self.decisions[DecisionKind.FAILED.value] += len(record_ids)
            logger.error(
                "records failed and will be retried",
                decision="failed",
                reason=f"{type(exc).__name__}: {exc}",
                error_code=_error_code(exc),
                dataset=dataset,
                records=len(record_ids),
            )
            return False
        return True

    def _count(self, kind: DecisionKind) -> None:
        self.decisions[kind.value] += 1

    def _decision(self, kind: DecisionKind, reason: str, **fields: Any) -> None:
        self._count(kind)
        logger.info("retrain decision", decision=kind.value, reason=reason, **fields)

    # --- units ----------------------------------------------------------------------------

    def _dataset_unit(self, batch: DatasetBatch) -> None:
        settings = self.settings
        touch = core.touch_for(batch, settings, self.now)
        # In commit-marker mode, object events decide nothing: at most they add to the change counters.
        decides = settings.mode is core.Mode.QUIET_PERIOD or bool(batch.trigger_ids)
        if not decides and touch is None:
            self._waiting_for_marker(batch)
            return
        loaded: list[tuple[PipelineState, DatasetState]] = []

        def phase_one() -> None:
            if decides:
                pipeline, states = self.store.load([batch.dataset])
                state = states[batch.dataset]
                newest = core.newest_snapshot(state, batch)
                if newest is not None:
                    if self.store.record_snapshot(batch.dataset, newest):
                        state = replace(state, snapshot=newest)
                    else:  # another invocation stored a newer one meanwhile: decide on that
                        pipeline, states = self.store.load([batch.dataset])
                        state = states[batch.dataset]
                loaded.append((pipeline, core.apply_touch(state, touch)))
            if touch is not None:
                self.store.touch(batch.dataset, touch)

        if not self._unit(batch.record_ids, phase_one, dataset=batch.dataset):
            return
        if not decides:
            self._waiting_for_marker(batch)
            return
        pipeline, state = loaded[0]
        # The object events' effect is stored: retry only the records that carry the decision,
        # or one object record when none does (its retry re-runs the decision).
        carriers = batch.trigger_ids or batch.object_ids[-1:]
        self._unit(carriers, lambda: self._evaluate(batch.dataset, batch, state, pipeline), dataset=batch.dataset)

    def _waiting_for_marker(self, batch: DatasetBatch) -> None:
        self._decision(
            DecisionKind.IGNORED,
            f"waiting for commit marker {self.settings.marker_name}",
            dataset=batch.dataset,
            records=len(batch.object_ids),
            objects=batch.objects,
            bytes=batch.bytes,
        )

    def _finish(self, finished: FinishedSignal) -> None:
        released = self.store.release_lock_of_execution(finished.execution_arn)
        if released:
            self._decision(
                DecisionKind.RELEASED,
                f"execution {finished.status}; lock released",
                execution_arn=finished.execution_arn,
            )
        else:
            self._decision(
                DecisionKind.IGNORED,
                f"execution {finished.status} does not hold the lock",
                execution_arn=finished.execution_arn,
            )
        self._wake()

    def _wake(self) -> None:
        """After an execution ended: start the dataset that has waited longest, if any."""
        pipeline, states = self.store.load(self.settings.datasets)
        if pipeline.lock is not None:
            return
        quiet = self.settings.mode is core.Mode.QUIET_PERIOD
        waiting = [
            (state.pending.at if state.pending else state.last_activity_at or self.now, name)
            for name, state in states.items()
            if state.pending is not None or (quiet and core.is_dirty(state))
        ]
        for _, name in sorted(waiting):
            if self._evaluate(name, None, states[name], pipeline) is DecisionKind.STARTED:
                return

    # --- deciding -------------------------------------------------------------------------

    def _evaluate(
        self, dataset: str, batch: DatasetBatch | None, state: DatasetState, pipeline: PipelineState
    ) -> DecisionKind:
        settings, now = self.settings, self.now
        decision = core.decide(batch, state, pipeline, settings, now)
        lock = pipeline.lock
        verify = (
            isinstance(decision, Pend)
            and lock is not None
            and core.lock_needs_verification(lock, now, settings.lock_grace)
        )
        if verify and lock is not None and self._lock_is_stale(lock):
            pipeline = replace(pipeline, lock=None)
            decision = core.decide(batch, state, pipeline, settings, now)
        if isinstance(decision, Pend) and core.start_in_progress(pipeline.lock, now):
            # Seconds from now the lock either names an execution (and this trigger pends on it)
            # or its lease has expired (and the verification above judges it): hand the records back.
            raise RetryLater("another invocation is starting an execution")
        common: dict[str, Any] = {"dataset": dataset}
        if batch is not None:
            common.update(
                records=len(batch.record_ids),
                objects=batch.objects,
                bytes=batch.bytes,
                latest_event_at=batch.latest_event_at,
            )
        if isinstance(decision, Ignore):
            if decision.drop_pending is not None:
                self.store.drop_pending(dataset, decision.drop_pending.id)
            self._decision(DecisionKind.IGNORED, decision.reason, **common)
            return DecisionKind.IGNORED
        if isinstance(decision, Pend):
            self._wait(dataset, batch, state, decision.trigger, decision.recheck_at, persist=decision.persist)
            self._decision(
                DecisionKind.PENDING,
                decision.reason,
                trigger=decision.trigger.kind.value,
                recheck_at=decision.recheck_at,
                **common,
            )
            return DecisionKind.PENDING
        if isinstance(decision, Wait):
            self._wait(dataset, batch, state, decision.trigger, decision.until, persist=decision.persist)
            self._decision(
                DecisionKind.WAITING,
                decision.reason,
                trigger=decision.trigger.kind.value,
                until=decision.until,
                **common,
            )
            return DecisionKind.WAITING
        assert isinstance(decision, Candidate)
        return self._start(dataset, batch, state, decision.trigger)

    def _wait(
        self,
        dataset: str,
        batch: DatasetBatch | None,
        state: DatasetState,
        trigger: Trigger,
        due: datetime,
        *,
        persist: bool,
    ) -> None:
        pending = core.merge_pending(state.pending, trigger) if persist else None
        if pending is not None and pending == state.pending:
            pending = None  # already stored
        send_due = core.plan_check(state, batch, due, self.now)
        if send_due is not None:
            self._send_check(dataset, send_due)
        self.store.save_waiting(dataset, pending=pending, check_due=send_due)

    def _send_check(self, dataset: str, due: datetime) -> None:
        body = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "source": SOURCE,
            "detail-type": RETRAIN_CHECK,
            "time": self.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "detail": {"pipeline": self.settings.pipeline_name, "dataset": dataset, "due": int(due.timestamp())},
        }
        _sqs().send_message(
            QueueUrl=self.settings.queue_url,
            MessageBody=json.dumps(body, separators=(",", ":")),
            DelaySeconds=core.check_delay(due, self.now),
        )

    def _lock_is_stale(self, lock: Lock) -> bool:
        """Ask SageMaker whether the lock's execution still runs; release the lock if not."""
        response = _sagemaker().list_pipeline_executions(
            PipelineName=self.settings.pipeline_name, SortBy="CreationTime", SortOrder="Descending", MaxResults=50
        )
        running = [
            core.RunningExecution(summary["PipelineExecutionArn"], summary.get("PipelineExecutionDisplayName"))
            for summary in response.get("PipelineExecutionSummaries", [])
            if summary.get("PipelineExecutionStatus") in RUNNING_STATUSES and "PipelineExecutionArn" in summary
        ]
        verdict, adopted = core.judge_lock(lock, running, self.now)
        if verdict is LockVerdict.HELD:
            return False
        if verdict is LockVerdict.ADOPT and adopted is not None:
            # An interrupted start did reach SageMaker: finish its bookkeeping instead of starting again.
            self.store.set_lock_execution(owner=lock.owner, execution_arn=adopted)
            self.store.complete_adopted(
                lock.owner, execution_arn=adopted, now=self.now, ttl=self.settings.idempotency_ttl
            )
            self.store.record_start(
                lock.dataset, now=lock.acquired_at, digest=lock.digest, execution_arn=adopted, objects=0, size=0
            )
            logger.warning(
                "lock adopted the execution of an interrupted start", execution_arn=adopted, dataset=lock.dataset
            )
            return False
        released = self.store.release_lock(lock)
        if released:
            self._decision(
                DecisionKind.RELEASED,
                "stale lock released: its execution no longer runs (its status-change event was missed)",
                execution_arn=lock.execution_arn,
                dataset=lock.dataset,
            )
        return released

    # --- starting -------------------------------------------------------------------------

    def _version(self, dataset: str, state: DatasetState, trigger: Trigger) -> _DataVersion | None:
        """What a run of ``dataset`` trains on now; ``None`` when a snapshotted dataset has no snapshot yet."""
        if self.settings.snapshotted(dataset):
            snapshot = state.snapshot
            if trigger.kind is not core.TriggerKind.SNAPSHOT:
                snapshot = self._newest_snapshot(dataset, snapshot)
            if snapshot is None:
                return None
            return _DataVersion(
                versioning=VERSIONED_BY_SNAPSHOT,
                digest=snapshot.digest,
                objects=snapshot.objects,
                bytes=snapshot.bytes,
                created_at=snapshot.as_of.strftime("%Y-%m-%dT%H:%M:%SZ"),
                uri=snapshot.manifest_uri,
            )
        manifest = datasets.build_manifest(self.settings.data_bucket, dataset, s3=_s3(), now=self.now, allow_empty=True)
        if manifest.excluded:  # each is also in the manifest, with its reason
            logger.warning(
                "objects left out of the data version: their keys cannot be files",
                excluded=len(manifest.excluded),
                first=[f"{x.key}: {x.reason}" for x in manifest.excluded[:10]],
                dataset=dataset,
                digest=manifest.sha256,
            )
        return _DataVersion(
            versioning=VERSIONED_BY_LISTING,
            digest=manifest.sha256,
            objects=len(manifest.entries),
            bytes=manifest.total_bytes,
            created_at=manifest.created_at,
            manifest=manifest,
        )

    def _newest_snapshot(self, dataset: str, stored: SnapshotVersion | None) -> SnapshotVersion | None:
        """The newest snapshot in S3 when it is newer than ``stored`` (and then stored); else ``stored``.

        Step Functions sends its status changes best effort. A schedule, drift or a person still
        trains on the newest snapshot, whose index is the newest under ``manifests/<dataset>/``
        (``Finalize`` writes it last): one listing of that folder, and one read of the index when it
        is not the stored one.
        """
        uri = datasets.latest_manifest_uri(self.settings.data_bucket, dataset, s3=_s3())
        if uri is None or (stored is not None and uri == stored.manifest_uri):
            return stored
        bucket, key = datasets.parse_s3_uri(uri)
        response = _s3().get_object(Bucket=bucket, Key=key)
        if response.get("ContentLength", 0) > _MAX_INDEX_BYTES:
            response["Body"].close()  # a whole single-document manifest (written by a person), not an index
            return stored
        try:
            document = json.loads(response["Body"].read())
        except ValueError:  # not JSON (an object put there by hand): no index to take, never a crash
            return stored
        found = snapshot_from_index(document, uri=uri, dataset=dataset)
        if found is None or (stored is not None and found.as_of <= stored.as_of):
            return stored
        if not self.store.record_snapshot(dataset, found):
            return self.store.load([dataset])[1][dataset].snapshot  # a newer one was stored meanwhile
        logger.warning(
            "a newer snapshot than the last one announced: its status change was not delivered",
            dataset=dataset,
            manifest_uri=uri,
            as_of=found.as_of.isoformat(),
        )
        return found

    def _start(self, dataset: str, batch: DatasetBatch | None, state: DatasetState, trigger: Trigger) -> DecisionKind:
        settings, now, store = self.settings, self.now, self.store
        version = self._version(dataset, state, trigger)
        if version is None:
            drop = trigger if trigger == state.pending else None
            if drop is not None:
                store.drop_pending(dataset, drop.id)
            self._decision(
                DecisionKind.IGNORED,
                "no snapshot of this dataset has finished yet: a run starts when one does (InventorySnapshot "
                'snapshots each delivered report; start one with {"dataset": ...} for a version now)',
                dataset=dataset,
                trigger=trigger.kind.value,
                versioning=VERSIONED_BY_SNAPSHOT,
            )
            return DecisionKind.IGNORED
        common: dict[str, Any] = {
            "dataset": dataset,
            "trigger": trigger.kind.value,
            "digest": version.digest,
            "versioning": version.versioning,
        }
        outcome = core.after_manifest(trigger, digest=version.digest, entries=version.objects, state=state)
        if isinstance(outcome, Ignore):
            if outcome.drop_pending is not None:
                store.drop_pending(dataset, outcome.drop_pending.id)
            self._decision(DecisionKind.IGNORED, outcome.reason, **common)
            return DecisionKind.IGNORED
        if isinstance(outcome, Deduplicated):
            self._settled(dataset, state)
            self._decision(DecisionKind.DEDUPLICATED, outcome.reason, **common)
            return DecisionKind.DEDUPLICATED
        assert isinstance(outcome, Start)
        key = core.idempotency_key(settings.pipeline_name, trigger, version.digest)
        token = uuid.uuid4().hex
        claim = store.claim(key, token=token, now=now, lease=settings.lease, ttl=settings.idempotency_ttl)
        if isinstance(claim, AlreadyDone):
            self._settled(dataset, state)
            self._decision(
                DecisionKind.DEDUPLICATED,
                "already started for this data version and trigger",
                execution_arn=claim.execution_arn,
                **common,
            )
            return DecisionKind.DEDUPLICATED
        if isinstance(claim, Busy):
            raise RetryLater(
                f"another invocation is starting this data version (lease until {claim.lease_until:%H:%M:%S})"
            )

        execution_arn: str | None = None
        try:
            if not store.acquire_lock(owner=key, dataset=dataset, digest=version.digest, now=now, lease=settings.lease):
                store.release_claim(key, token=token)
                persist = not (settings.mode is core.Mode.QUIET_PERIOD and trigger.kind is core.TriggerKind.DATA)
                self._wait(
                    dataset, batch, state, trigger, core.ceil_second(now + settings.lock_recheck), persist=persist
                )
                self._decision(DecisionKind.PENDING, "pipeline busy: another start took the lock", **common)
                return DecisionKind.PENDING
            # A retry of an interrupted start repeats its request exactly, champion included.
            manifest_uri, created_at = claim.manifest_uri, claim.manifest_created_at or version.created_at
            champion = claim.champion or self._champion(dataset)
            if manifest_uri is None:
                manifest_uri = version.write()
                store.record_start_parameters(
                    key, token=token, manifest_uri=manifest_uri, created_at=created_at, champion=champion
                )
            request = core.start_request(
                settings,
                dataset=dataset,
                digest=version.digest,
                manifest_uri=manifest_uri,
                created_at=created_at,
                reason=outcome.reason,
                champion=champion,
                key=key,
            )
            execution_arn = _sagemaker().start_pipeline_execution(**request)["PipelineExecutionArn"]
        except BaseException:
            if execution_arn is None:
                self._undo_claim(key, token, dataset, version.digest)
            raise

        # Started. The lock records the execution first: its end event releases the lock.
        if not store.set_lock_execution(owner=key, execution_arn=execution_arn):
            logger.error("the lock changed hands during the start", execution_arn=execution_arn, dataset=dataset)
        store.complete(key, token=token, execution_arn=execution_arn, now=now, ttl=settings.idempotency_ttl)
        store.record_start(
            dataset,
            now=now,
            digest=version.digest,
            execution_arn=execution_arn,
            objects=state.changed_objects,
            size=state.changed_bytes,
        )
        if state.pending is not None:
            store.drop_pending(dataset, state.pending.id)
        self._decision(
            DecisionKind.STARTED,
            outcome.reason,
            execution_arn=execution_arn,
            manifest_uri=manifest_uri,
            objects=version.objects,
            bytes=version.bytes,
            champion=champion.model_package_arn,
            champion_metric=champion.parameters.get(CHAMPION_METRIC),
            **common,
        )
        return DecisionKind.STARTED

    def _champion(self, dataset: str) -> Champion:
        """The group's newest approved model package, as the parameters that make it the champion.

        No approved package means the first model: ``ChampionMetric`` 0, no baseline. Without
        ``compare_with_champion`` there is no champion and no parameter: nothing is looked up.

        Raises:
            ChampionUnreadable: the newest approved package's evaluation cannot be read or lacks
                the metric. The start is abandoned (and retried with the records) rather than
                compared with no champion.
        """
        if not self.settings.compare_with_champion:
            return Champion(None, {})
        group = self.settings.model_package_group
        listed = _sagemaker().list_model_packages(
            ModelPackageGroupName=group,
            ModelApprovalStatus="Approved",
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=1,
        )
        summaries = listed.get("ModelPackageSummaryList", [])
        if not summaries:
            return Champion(None, first_model_parameters())
        arn = summaries[0]["ModelPackageArn"]
        try:
            package = _sagemaker().describe_model_package(ModelPackageName=arn)
            bucket, key = datasets.parse_s3_uri(evaluation_uri(package))
            evaluation = json.loads(_s3().get_object(Bucket=bucket, Key=key)["Body"].read())
            parameters = champion_parameters(package, evaluation)
        except (ClientError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            logger.error(
                "the approved model's metric cannot be read; no run starts until it can",
                model_package_arn=arn,
                model_package_group=group,
                error=error,
                dataset=dataset,
            )
            raise ChampionUnreadable(
                f"approved model package {arn} cannot be the champion ({error}); give it a readable "
                "evaluation.json with its EvaluationMetric, or reject it (UpdateModelPackage, "
                "ModelApprovalStatus=Rejected) so that the previous approved package is the champion"
            ) from exc
        return Champion(arn, parameters)

    def _settled(self, dataset: str, state: DatasetState) -> None:
        """The data is a version already started: stop treating its activity as new."""
        self.store.settle(dataset, self.now)
        if state.pending is not None:
            self.store.drop_pending(dataset, state.pending.id)

    def _undo_claim(self, key: str, token: str, dataset: str, digest: str) -> None:
        """Best effort after a failed start: free the lock and the claim so that the retry can proceed."""
        placeholder = Lock(owner=key, dataset=dataset, digest=digest, acquired_at=self.now, lease_until=self.now)
        for undo in (lambda: self.store.release_lock(placeholder), lambda: self.store.release_claim(key, token=token)):
            try:
                undo()
            except Exception as exc:  # the lease expires anyway; the retry takes over then
                logger.warning("could not undo a failed start", error=f"{type(exc).__name__}: {exc}", dataset=dataset)


#: A snapshot index lists its shards (about 200 bytes each): 16 MiB is far past 10^8 objects.
_MAX_INDEX_BYTES: Final = 16 * 1024 * 1024

#: The ``versioning`` field of decision log lines: how the run's data version was made.
VERSIONED_BY_LISTING = "listing"
VERSIONED_BY_SNAPSHOT = "inventory snapshot"


@dataclass(frozen=True, kw_only=True)
class _DataVersion:
    """The data version a start trains on: listed now (``manifest``) or snapshotted (``uri``)."""

    versioning: str
    digest: str
    objects: int
    bytes: int
    created_at: str
    manifest: datasets.Manifest | None = None
    uri: str | None = None

    def write(self) -> str:
        """The version's ``s3://`` URI, writing a listed manifest first."""
        if self.manifest is None:
            assert self.uri is not None
            return self.uri
        # One JSON document, whatever the size: a dataset this function can list in its timeout
        # (about half a million objects) makes a manifest of well under 100 MB. Larger datasets
        # are versioned by InventorySnapshot (``RetrainTrigger(snapshot=...)``).
        return datasets.write_manifest(self.manifest, s3=_s3(), format="single").uri or ""


def _error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        code = response.get("Error", {}).get("Code")
        return code if isinstance(code, str) else None
    return None
