"""The closed loop on the local AWS: data lands, the trigger starts training, a model is registered.

After the Dev stage is deployed (:func:`cdk_mlops.local.deploy.deploy_stage`), :func:`run_loop`
drives the loop with the real code against what was deployed, one function per step:

1. :func:`upload_version`: data version 1 of a small CSV dataset (:func:`sample_versions`,
   scikit-learn's bundled breast-cancer data) lands under ``datasets/<dataset>/`` of the data
   bucket. The bucket, the dataset and every other setting come from the deployed retrain
   function's environment (``GetFunctionConfiguration``), as the handler reads them.
2. :func:`deliver_until_started`: moto's S3 publishes an ``Object Created`` event per object,
   the deployed EventBridge rule routes it to the trigger queue, and the loop, in the role of
   the event source mapping, hands the queue's messages to the real handler in-process as SQS
   records. The handler waits for the quiet period with a delayed ``Retrain Check``; the
   simulated clock advances until that check is due, the loop delivers it, and the handler
   snapshots the dataset and starts the pipeline.
3. :func:`show_execution`: the execution, its parameters and the manifest they name.
4. :func:`redeliver`: the step-2 batch again (same message ids, as SQS redelivers); and
   :func:`upload_while_running`: data version 2 lands while the first execution runs. The
   trigger records it as pending behind the lock instead of starting a second execution.
5. :func:`register_model`: the first execution's steps run locally
   (:mod:`cdk_mlops.local.pipeline_run`) while it is still executing, as in SageMaker:
   preprocess, train, evaluate and the gate, then the ``RegisterModel`` arguments of the
   deployed definition, resolved, go to ``CreateModelPackage``; the package is approved (Dev
   registers it approved), and its lineage is followed back to the manifest, whose
   materialization must equal data version 1 byte for byte.
6. :func:`finish_execution`: the execution succeeds and its ``Pipeline Execution Status Change``
   event goes through the deployed rule; the handler releases the lock and starts version 2,
   looking up the champion it must beat: the package approved in step 5.
7. :func:`decide_next`: the champion parameters the deployed handler sent with version 2, as
   SageMaker lists them (``ListPipelineParametersForExecution``), the package its decision
   line names, and the promotion decision (:func:`cdk_mlops.promotion.decide_promotion`, the
   library call the delivery pipeline's ``select-model`` step makes). A decision only:
   nothing is deployed.

Each step returns a frozen dataclass of what it did and of the AWS state it read afterwards;
:func:`run_loop` prints them (``render_*``) and the e2e test asserts on them.

What is simulated (see :mod:`cdk_mlops.local.runtime`): Lambda's runtime and event source
mapping; time (the deployed quiet period and cool-down are kept, the handler's clock and the
SQS delays are moved instead); executions running (moto finishes them at once, the loop holds
them at ``Executing``); the status-change event (moto's SageMaker publishes none, the loop puts
it on the default bus); and the pipeline steps (run locally, see above).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from cdk_mlops import datasets, pipeline_definition
from cdk_mlops.champion import BASELINE_CONSTRAINTS_URI, CHAMPION_METRIC
from cdk_mlops.lambdas.retrain_trigger import core
from cdk_mlops.lambdas.retrain_trigger import handler as trigger
from cdk_mlops.lambdas.retrain_trigger.events import PIPELINE_STATUS_CHANGE, SAGEMAKER_SOURCE
from cdk_mlops.lambdas.retrain_trigger.store import StateStore
from cdk_mlops.local.deploy import STAGE
from cdk_mlops.local.pipeline_run import ExecutionRun, find_step, run_execution
from cdk_mlops.local.runtime import (
    Backends,
    EventSourceMapping,
    FunctionConfiguration,
    LambdaContainer,
    QueuePoller,
    SimulatedClock,
    redelivered,
)
from cdk_mlops.local.server import LocalAws
from cdk_mlops.promotion import PromotionDecision, decide_promotion

#: The handler the loop looks for among the deployed functions.
RETRAIN_HANDLER: Final = f"{trigger.__name__}.{trigger.handler.__name__}"
#: How long the first execution runs before step 5 finishes it (simulated).
EXECUTION_RUN_TIME: Final = timedelta(hours=1)
#: How long after the redelivery data version 2 lands (simulated).
SECOND_DROP_AFTER: Final = timedelta(minutes=5)
#: The stage the promotion decision is for.
PROMOTION_STAGE: Final = "staging"
#: The label column of the sample dataset (first, as the pipeline's preprocess step expects).
LABEL: Final = "benign"
_MAX_ROUNDS: Final = 12


class LoopError(RuntimeError):
    """The loop did not go as the deployed platform should make it go; the message says where."""


# --- the dataset -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataVersion:
    """One drop of the sample dataset.

    Attributes:
        number: 1, 2, ...
        files: What this drop writes: key relative to ``datasets/<dataset>/`` → content.
        contents: The whole dataset after this drop (earlier files included).
        description: What the drop does, for the output.
    """

    number: int
    files: Mapping[str, bytes]
    contents: Mapping[str, bytes]
    description: str

    @property
    def bytes(self) -> int:
        """Size of the files this drop writes."""
        return sum(len(b) for b in self.files.values())


def _csv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def sample_versions() -> tuple[DataVersion, DataVersion]:
    """Two versions of a CSV dataset from scikit-learn's bundled breast-cancer data (no download).

    Label first (``benign``, 0 or 1), then the 30 features; values are written with ``repr``,
    so the bytes are the same on every run. Version 1 is rows 0-399 in four files of 100 rows.
    Version 2 rewrites ``part-0003.csv`` (rows 300-449) and adds ``part-0004.csv`` (rows
    450-568), so restoring version 1 later needs the old version of an overwritten object.
    """
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    header = [LABEL, *(name.replace(" ", "_") for name in data.feature_names)]
    rows = [[int(y), *(repr(float(v)) for v in x)] for x, y in zip(data.data, data.target, strict=True)]

    def part(start: int, stop: int) -> bytes:
        return _csv(header, rows[start:stop])

    first = {f"part-{i:04d}.csv": part(i * 100, (i + 1) * 100) for i in range(4)}
    second = {"part-0003.csv": part(300, 450), "part-0004.csv": part(450, len(rows))}
    return (
        DataVersion(1, first, dict(first), f"rows 0-399 of the breast-cancer data in {len(first)} files"),
        DataVersion(
            2,
            second,
            {**first, **second},
            f"rewrites part-0003.csv (rows 300-449), adds part-0004.csv (rows 450-{len(rows) - 1})",
        ),
    )


# --- the deployed platform -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Platform:
    """The deployed stage, as the loop finds it.

    Attributes:
        function: The retrain trigger's function; its environment is the handler's configuration.
        settings: That environment, parsed by the handler's own ``Settings.from_env``.
        mapping: The function's SQS event source mapping.
        definition: The deployed pipeline definition.
        model_package_group: Where the definition's ``RegisterModel`` step registers.
    """

    function: FunctionConfiguration
    settings: core.Settings
    mapping: EventSourceMapping
    definition: Mapping[str, Any]
    model_package_group: str

    @property
    def bucket(self) -> str:
        return self.settings.data_bucket

    @property
    def dataset(self) -> str:
        return self.settings.primary_dataset

    @property
    def pipeline_name(self) -> str:
        return self.settings.pipeline_name


def discover(aws: LocalAws, stage: str = STAGE) -> Platform:
    """Find the retrain function among the stage's stacks and read what the loop needs from AWS.

    Raises:
        LoopError: if the stage has no function with the retrain trigger's handler.
    """
    cloudformation = aws.client("cloudformation")
    for stack in cloudformation.describe_stacks().get("Stacks", []):
        if not stack["StackName"].startswith(f"{stage}-"):
            continue
        resources = cloudformation.describe_stack_resources(StackName=stack["StackName"])["StackResources"]
        for resource in resources:
            if resource.get("ResourceType") != "AWS::Lambda::Function":
                continue
            function = FunctionConfiguration.read(aws, resource["PhysicalResourceId"])
            if function.handler == RETRAIN_HANDLER:
                return _platform(aws, function)
    raise LoopError(f"no function with handler {RETRAIN_HANDLER} in the {stage} stacks; deploy {stage} first")


def _platform(aws: LocalAws, function: FunctionConfiguration) -> Platform:
    settings = core.Settings.from_env(function.environment)
    described = aws.client("sagemaker").describe_pipeline(PipelineName=settings.pipeline_name)
    definition = json.loads(described["PipelineDefinition"])
    group = str(find_step(definition, "RegisterModel")["Arguments"]["ModelPackageGroupName"])
    mapping = EventSourceMapping.of_function(aws, function.name)
    return Platform(function, settings, mapping, definition, group)


# --- the loop's state ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HandlerDecision:
    """One decision the handler logged (its ``decision`` field, ``reason``, execution and champion)."""

    decision: str
    reason: str
    execution_arn: str | None = None
    dataset: str | None = None
    champion: str | None = None


@dataclass(frozen=True)
class Delivery:
    """One invocation of the handler with a batch of SQS records.

    Attributes:
        at: Simulated time since the loop began.
        records: The SQS records delivered.
        events: Each record's ``detail-type``.
        decisions: What the handler decided, from its log lines.
        redelivery: The records had been delivered before.
        waited: How far the simulated clock advanced for a delayed message before this delivery.
    """

    at: timedelta
    records: tuple[Mapping[str, Any], ...]
    events: tuple[str, ...]
    decisions: tuple[HandlerDecision, ...]
    redelivery: bool = False
    waited: timedelta = timedelta(0)

    def decided(self, kind: str) -> list[HandlerDecision]:
        """The decisions of one kind (``started``, ``pending``, ...)."""
        return [d for d in self.decisions if d.decision == kind]


@dataclass
class Loop:
    """The state of one run of the loop: where it runs, its clock, what it delivered so far.

    Call :meth:`close` when done: it retires the function's container (the handler's cached
    clients point at this server).
    """

    aws: LocalAws
    backends: Backends
    platform: Platform
    clock: SimulatedClock
    container: LambdaContainer
    poller: QueuePoller
    work_dir: Path
    versions: tuple[DataVersion, DataVersion]
    deliveries: list[Delivery] = field(default_factory=list)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, aws: LocalAws, work_dir: Path) -> Loop:
        """Discover the deployed platform and start the simulated clock."""
        platform = discover(aws)
        backends = Backends.of(aws)
        poller = QueuePoller(aws, platform.settings.queue_url, platform.mapping)
        container = LambdaContainer(platform.function, aws=aws)
        return cls(aws, backends, platform, SimulatedClock(backends), container, poller, work_dir, sample_versions())

    def close(self) -> None:
        """Retire the function's container: forget the handler's cached clients."""
        trigger.reset_clients()

    def client(self, service: str) -> Any:
        """A client of the local AWS, one per service."""
        if service not in self._clients:
            self._clients[service] = self.aws.client(service)
        return self._clients[service]

    @property
    def sagemaker(self) -> Any:
        return self.client("sagemaker")

    def executions(self) -> list[str]:
        """The pipeline's executions, oldest first."""
        summaries = self.sagemaker.list_pipeline_executions(
            PipelineName=self.platform.pipeline_name, SortBy="CreationTime", SortOrder="Ascending"
        )["PipelineExecutionSummaries"]
        return [s["PipelineExecutionArn"] for s in summaries]

    def parameters(self, execution_arn: str) -> dict[str, str]:
        """An execution's parameters."""
        response = self.sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=execution_arn)
        return {p["Name"]: p["Value"] for p in response["PipelineParameters"]}

    def manifest(self, execution_arn: str) -> datasets.Manifest:
        """The manifest an execution's ``InputManifestUri`` names, loaded and verified."""
        uri = self.parameters(execution_arn)[pipeline_definition.INPUT_MANIFEST_URI]
        return datasets.load_manifest(uri, s3=self.client("s3"))

    def state(self) -> tuple[core.PipelineState, core.DatasetState]:
        """The trigger's state (lock and counters; the dataset's state) read with the handler's own store."""
        settings = self.platform.settings
        store = StateStore(self.client("dynamodb"), settings.state_table, settings.pipeline_name)
        pipeline, states = store.load([self.platform.dataset])
        return pipeline, states[self.platform.dataset]

    def hold_running(self, execution_arn: str) -> None:
        """Keep an execution ``Executing`` until the loop ends it.

        moto marks executions Succeeded the moment they start; a real one runs preprocess,
        train and evaluate for most of an hour, and the trigger's lock checks ask SageMaker
        whether it still runs.
        """
        self.backends.set_execution_status(self.platform.pipeline_name, execution_arn, "Executing")


@contextlib.contextmanager
def _handler_clock(clock: SimulatedClock) -> Iterator[None]:
    # The handler takes the time from handler._now (its tests replace it the same way).
    saved = trigger._now
    trigger._now = clock.now
    try:
        yield
    finally:
        trigger._now = saved


def parse_handler_log(log: str) -> tuple[tuple[HandlerDecision, ...], list[str]]:
    """The decisions and the error messages in the handler's JSON log lines."""
    decisions: list[HandlerDecision] = []
    errors: list[str] = []
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or "_aws" in entry:
            continue
        if entry.get("level") == "ERROR":
            errors.append(f"{entry.get('message')}: {entry.get('reason') or entry.get('error')}")
        if "decision" in entry:
            decisions.append(
                HandlerDecision(
                    decision=str(entry["decision"]),
                    reason=str(entry.get("reason") or entry.get("message", "")),
                    execution_arn=entry.get("execution_arn"),
                    dataset=entry.get("dataset"),
                    champion=entry.get("champion"),
                )
            )
    return tuple(decisions), errors


def _detail_type(record: Mapping[str, Any]) -> str:
    try:
        return str(json.loads(record["body"]).get("detail-type", "?"))
    except (ValueError, TypeError, KeyError, AttributeError):
        return "?"


def deliver(
    loop: Loop, records: Sequence[Mapping[str, Any]] | None = None, *, waited: timedelta = timedelta(0)
) -> Delivery | None:
    """Invoke the handler in-process with a batch, as the event source mapping does.

    Args:
        loop: The loop.
        records: Records to deliver again (a redelivery; they are not deleted, they were
            already). Default: - the visible messages of the trigger queue, which are deleted
            afterwards unless the handler reports them as failed.
        waited: How far the clock was advanced for this delivery (recorded for the output).

    Returns:
        The delivery, or ``None`` when the queue held nothing visible.

    Raises:
        LoopError: if the handler reports a record as failed (it stays in the queue).
    """
    redelivery = records is not None
    batch = list(records) if records is not None else loop.poller.receive()
    if not batch:
        return None
    log = io.StringIO()
    with loop.container.invocation() as context, _handler_clock(loop.clock), contextlib.redirect_stdout(log):
        result = trigger.handler({"Records": batch}, context)
    # Without ReportBatchItemFailures, Lambda ignores the response and deletes the whole batch.
    reported = loop.platform.mapping.report_batch_item_failures
    failed = [f["itemIdentifier"] for f in result.get("batchItemFailures", [])] if reported else []
    if not redelivery:
        loop.poller.delete(batch, failed=failed)
    decisions, errors = parse_handler_log(log.getvalue())
    delivery = Delivery(
        at=loop.clock.elapsed,
        records=tuple(batch),
        events=tuple(_detail_type(r) for r in batch),
        decisions=decisions,
        redelivery=redelivery,
        waited=waited,
    )
    loop.deliveries.append(delivery)
    if failed:
        raise LoopError(f"the handler failed {len(failed)} of {len(batch)} records: {'; '.join(errors) or failed}")
    return delivery


def _deliver_until(loop: Loop, done: Callable[[Delivery], bool], what: str) -> tuple[Delivery, ...]:
    """Deliver what is visible; while ``done`` is not met, advance the clock to the next delayed message."""
    deliveries: list[Delivery] = []
    waited = timedelta(0)
    for _ in range(_MAX_ROUNDS):
        delivery = deliver(loop, waited=waited)
        if delivery is not None:
            deliveries.append(delivery)
            waited = timedelta(0)
            if done(delivery):
                return tuple(deliveries)
        wait = loop.clock.next_delay()
        if wait is None:
            break
        loop.clock.advance(wait)
        waited += wait
    seen = "; ".join(f"{d.decision}: {d.reason}" for x in deliveries for d in x.decisions) or "no decision"
    raise LoopError(f"the retrain trigger never {what} ({seen})")


# --- step 1 -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """Objects written for one data version.

    Attributes:
        version: The data version's number.
        keys: Full keys written.
        bytes: Their total size.
        version_ids: Key → S3 version id.
        at: Simulated time since the loop began.
        description: What the drop does.
    """

    version: int
    keys: tuple[str, ...]
    bytes: int
    version_ids: Mapping[str, str]
    at: timedelta
    description: str


def upload_version(loop: Loop, version: DataVersion) -> Upload:
    """Step 1 (and 4): upload a data version's files under ``datasets/<dataset>/`` of the data bucket."""
    s3 = loop.client("s3")
    prefix = datasets.dataset_prefix(loop.platform.dataset)
    version_ids: dict[str, str] = {}
    for name, body in sorted(version.files.items()):
        key = prefix + name
        response = s3.put_object(Bucket=loop.platform.bucket, Key=key, Body=body, ContentType="text/csv")
        version_ids[key] = str(response.get("VersionId", "null"))
    return Upload(
        version.number, tuple(version_ids), version.bytes, version_ids, loop.clock.elapsed, version.description
    )


# --- step 2 -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    """The trigger started an execution.

    Attributes:
        deliveries: The handler invocations, in order.
        execution_arn: The execution that started.
        started_at: When (simulated).
        executions: The pipeline's executions afterwards.
    """

    deliveries: tuple[Delivery, ...]
    execution_arn: str
    started_at: datetime
    executions: tuple[str, ...]


def deliver_until_started(loop: Loop) -> Started:
    """Step 2: deliver the queue's messages (and the delayed checks, as they come due) until a start."""
    before = set(loop.executions())
    deliveries = _deliver_until(loop, lambda d: bool(d.decided("started")), "started an execution")
    executions = loop.executions()
    new = [arn for arn in executions if arn not in before]
    if len(new) != 1:
        raise LoopError(f"expected one new execution, found {len(new)}: {new}")
    loop.hold_running(new[0])
    return Started(deliveries, new[0], loop.clock.now(), tuple(executions))


# --- step 3 -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionView:
    """An execution and the dataset version it was started on.

    Attributes:
        execution_arn: The execution.
        status: Its status.
        parameters: Its parameters.
        manifest: The manifest ``InputManifestUri`` names (loaded and digest-checked).
        manifest_bytes: Size of the manifest object.
        executions: How many executions the pipeline has.
    """

    execution_arn: str
    status: str
    parameters: Mapping[str, str]
    manifest: datasets.Manifest
    manifest_bytes: int
    executions: int


def show_execution(loop: Loop, execution_arn: str) -> ExecutionView:
    """Step 3: the execution, its parameters and the manifest object they name."""
    summaries = loop.sagemaker.list_pipeline_executions(PipelineName=loop.platform.pipeline_name)
    status = next(
        s["PipelineExecutionStatus"]
        for s in summaries["PipelineExecutionSummaries"]
        if s["PipelineExecutionArn"] == execution_arn
    )
    parameters = loop.parameters(execution_arn)
    manifest = loop.manifest(execution_arn)
    bucket, key = datasets.parse_s3_uri(parameters[pipeline_definition.INPUT_MANIFEST_URI])
    size = int(loop.client("s3").head_object(Bucket=bucket, Key=key)["ContentLength"])
    return ExecutionView(
        execution_arn, status, parameters, manifest, size, len(summaries["PipelineExecutionSummaries"])
    )


# --- step 4 -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Redelivery:
    """A batch delivered a second time.

    Attributes:
        delivery: The handler invocation.
        executions: The pipeline's executions afterwards.
        started_digest: The digest whose idempotency record exists.
        idempotency_status: That record's status (``COMPLETED``).
        idempotency_execution: The execution it records.
    """

    delivery: Delivery
    executions: tuple[str, ...]
    started_digest: str
    idempotency_status: str
    idempotency_execution: str | None


def _idempotency_record(loop: Loop, digest: str) -> Mapping[str, Any]:
    key = f"{loop.platform.pipeline_name}|{digest}"
    items = loop.client("dynamodb").scan(TableName=loop.platform.settings.state_table)["Items"]
    for item in items:
        if item.get("key", {}).get("S") == key:
            return dict(item)
    raise LoopError(f"no idempotency record for {key}")


def redeliver(loop: Loop, records: Sequence[Mapping[str, Any]], started_digest: str) -> Redelivery:
    """Step 4: deliver a batch again, with the same message ids, as SQS does when a delete is lost."""
    delivery = deliver(loop, redelivered(records))
    assert delivery is not None
    record = _idempotency_record(loop, started_digest)
    return Redelivery(
        delivery,
        tuple(loop.executions()),
        started_digest,
        str(record.get("status", {}).get("S")),
        record.get("execution_arn", {}).get("S"),
    )


@dataclass(frozen=True)
class Pending:
    """A data version recorded as pending behind a running execution.

    Attributes:
        upload: The data version's objects.
        deliveries: The handler invocations until it decided ``pending``.
        executions: The pipeline's executions afterwards.
        pipeline: The trigger's pipeline state (the lock).
        dataset: The trigger's dataset state.
    """

    upload: Upload
    deliveries: tuple[Delivery, ...]
    executions: tuple[str, ...]
    pipeline: core.PipelineState
    dataset: core.DatasetState


def upload_while_running(loop: Loop, version: DataVersion) -> Pending:
    """Step 4: upload a data version while an execution runs; deliver until the trigger decides ``pending``."""
    loop.clock.advance(SECOND_DROP_AFTER)
    upload = upload_version(loop, version)
    deliveries = _deliver_until(loop, lambda d: bool(d.decided("pending")), "recorded the new version as pending")
    pipeline, dataset = loop.state()
    return Pending(upload, deliveries, tuple(loop.executions()), pipeline, dataset)


# --- step 6 (the end of the first run) ----------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionSummary:
    """An execution and its data version."""

    execution_arn: str
    status: str
    manifest_uri: str
    sha256: str
    data_version: str


@dataclass(frozen=True)
class Finished:
    """An execution ended and the pending version started.

    Attributes:
        finished_arn: The execution that ended.
        ran_for: How long it ran (simulated).
        deliveries: The handler invocations until the next start.
        started_arn: The execution started for the pending version.
        executions: Every execution afterwards, oldest first.
        diff: How the second execution's dataset differs from the first's.
    """

    finished_arn: str
    ran_for: timedelta
    deliveries: tuple[Delivery, ...]
    started_arn: str
    executions: tuple[ExecutionSummary, ...]
    diff: datasets.ManifestDiff


def _status_change_event(loop: Loop, execution_arn: str, started_at: datetime) -> dict[str, Any]:
    pipeline_arn = execution_arn.split("/execution/", 1)[0]
    described = loop.sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
    detail = {
        "pipelineArn": pipeline_arn,
        "pipelineExecutionArn": execution_arn,
        "pipelineExecutionDisplayName": described.get("PipelineExecutionDisplayName", ""),
        "currentPipelineExecutionStatus": "Succeeded",
        "previousPipelineExecutionStatus": "Executing",
        "executionStartTime": started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "executionEndTime": loop.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return {
        "Source": SAGEMAKER_SOURCE,
        "DetailType": PIPELINE_STATUS_CHANGE,
        "Detail": json.dumps(detail),
        "Resources": [pipeline_arn, execution_arn],
        "Time": loop.clock.now(),
    }


def _summaries(loop: Loop) -> tuple[ExecutionSummary, ...]:
    response = loop.sagemaker.list_pipeline_executions(
        PipelineName=loop.platform.pipeline_name, SortBy="CreationTime", SortOrder="Ascending"
    )
    out = []
    for summary in response["PipelineExecutionSummaries"]:
        arn = summary["PipelineExecutionArn"]
        parameters = loop.parameters(arn)
        out.append(
            ExecutionSummary(
                arn,
                summary["PipelineExecutionStatus"],
                parameters[pipeline_definition.INPUT_MANIFEST_URI],
                parameters[pipeline_definition.MANIFEST_SHA256],
                parameters[pipeline_definition.DATA_VERSION],
            )
        )
    return tuple(out)


def finish_execution(loop: Loop, started: Started) -> Finished:
    """Step 6: the execution succeeds; its status-change event goes through the deployed rule to the handler."""
    loop.clock.advance_to(started.started_at + EXECUTION_RUN_TIME)
    loop.backends.set_execution_status(loop.platform.pipeline_name, started.execution_arn, "Succeeded")
    # moto's SageMaker publishes no events; SageMaker would put this one on the default bus.
    loop.client("events").put_events(Entries=[_status_change_event(loop, started.execution_arn, started.started_at)])
    before = set(loop.executions())
    deliveries = _deliver_until(loop, lambda d: bool(d.decided("started")), "started the pending version")
    new = [arn for arn in loop.executions() if arn not in before]
    if len(new) != 1:
        raise LoopError(f"expected one new execution, found {len(new)}: {new}")
    loop.hold_running(new[0])
    summaries = _summaries(loop)
    diff = datasets.diff(loop.manifest(started.execution_arn), loop.manifest(new[0]))
    return Finished(started.execution_arn, loop.clock.now() - started.started_at, deliveries, new[0], summaries, diff)


# --- step 5 (registration) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    """The first execution's model, registered, approved and traced back to its data.

    Attributes:
        run: What each pipeline step did locally.
        model_package_arn: The registered package.
        registered_status: Its approval status as the ``RegisterModel`` step set it.
        approved_by_update: Whether the loop approved it (``UpdateModelPackage``); ``False``
            when the pipeline registered it approved already (Dev auto-approves).
        package: ``DescribeModelPackage`` after the approval.
        metric: The gate's metric name (``auc``).
        metric_value: Its value in ``evaluation.json``.
        lineage_manifest: The manifest the package's metadata names, loaded.
        materialized: Relative paths written by materializing that manifest.
        matches_version: Whether the materialized bytes equal the data version exactly.
    """

    run: ExecutionRun
    model_package_arn: str
    registered_status: str
    approved_by_update: bool
    package: Mapping[str, Any]
    metric: str
    metric_value: float
    lineage_manifest: datasets.Manifest
    materialized: tuple[str, ...]
    matches_version: bool


def approve(sagemaker: Any, model_package_arn: str, *, note: str) -> bool:
    """Approve a model package unless it is approved already; return whether it changed.

    The package's ``CustomerMetadataProperties`` are passed again: SageMaker keeps them on an
    update without them, moto drops them (lineage would be lost), and passing the same values
    is a no-op on SageMaker.
    """
    package = sagemaker.describe_model_package(ModelPackageName=model_package_arn)
    if package.get("ModelApprovalStatus") == "Approved":
        return False
    request: dict[str, Any] = {
        "ModelPackageArn": model_package_arn,
        "ModelApprovalStatus": "Approved",
        "ApprovalDescription": note,
    }
    if package.get("CustomerMetadataProperties"):
        request["CustomerMetadataProperties"] = package["CustomerMetadataProperties"]
    sagemaker.update_model_package(**request)
    return True


def _metric(package: Mapping[str, Any], run: ExecutionRun) -> tuple[str, float]:
    path = str(package.get("CustomerMetadataProperties", {}).get(pipeline_definition.METADATA_EVALUATION_METRIC, ""))
    node: Any = run.property_files.get(f"{pipeline_definition.EVALUATE}.{pipeline_definition.EVALUATION_PROPERTY_FILE}")
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if not isinstance(node, int | float):
        raise LoopError(f"evaluation.json has no number at {path!r}")
    return path.split(".")[-2] if "." in path else path, float(node)


def register_model(loop: Loop, execution_arn: str, version: DataVersion) -> Registration:
    """Step 5: run the execution's steps locally, register its model, approve it, follow its lineage."""
    run = run_execution(
        loop.aws,
        loop.platform.definition,
        execution_arn=execution_arn,
        parameters=loop.parameters(execution_arn),
        work_dir=loop.work_dir / "pipeline",
    )
    if run.register_arguments is None:
        raise LoopError(f"the gate did not pass: {run.failure_message}")
    sagemaker = loop.sagemaker
    arn = str(sagemaker.create_model_package(**run.register_arguments)["ModelPackageArn"])
    registered = str(sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"])
    changed = approve(sagemaker, arn, note="approved by the local demo after reviewing evaluation.json")
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    metric, value = _metric(package, run)
    metadata = package["CustomerMetadataProperties"]
    s3 = loop.client("s3")
    manifest = datasets.load_manifest(metadata[pipeline_definition.INPUT_MANIFEST_URI], s3=s3)
    if manifest.sha256 != metadata[pipeline_definition.MANIFEST_SHA256]:
        raise LoopError(f"{arn}: its manifest's sha256 is not the one its metadata records")
    target = loop.work_dir / "lineage" / execution_arn.rsplit("/", 1)[-1]
    written = datasets.materialize(manifest, target, s3=s3)
    restored = {path.relative_to(target).as_posix(): path.read_bytes() for path in written}
    return Registration(
        run=run,
        model_package_arn=arn,
        registered_status=registered,
        approved_by_update=changed,
        package=package,
        metric=metric,
        metric_value=value,
        lineage_manifest=manifest,
        materialized=tuple(sorted(restored)),
        matches_version=restored == dict(version.contents),
    )


# --- step 7 -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NextDecisions:
    """What the deployed code decided once a model was approved.

    Attributes:
        execution_arn: The execution the handler started after the approval (version 2).
        champion_arn: The package the handler's ``started`` decision names as the champion.
        champion_parameters: ``ChampionMetric`` and ``BaselineConstraintsUri`` of that
            execution, as SageMaker lists its parameters.
        constraints_present: Whether an object exists at ``BaselineConstraintsUri``.
        promotion: The promotion decision for :data:`PROMOTION_STAGE`.
    """

    execution_arn: str
    champion_arn: str | None
    champion_parameters: Mapping[str, str]
    constraints_present: bool
    promotion: PromotionDecision


def _exists(s3: Any, uri: str) -> bool:
    bucket, key = datasets.parse_s3_uri(uri)
    return bool(s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("KeyCount", 0))


def decide_next(loop: Loop, finished: Finished, *, deployed_arn: str | None = None) -> NextDecisions:
    """Step 7: what the handler sent the execution it started in step 6, and the promotion decision.

    The champion values are read back from AWS (the execution's parameters) and from the
    handler's decision line; nothing here computes them.
    """
    started = [d for delivery in finished.deliveries for d in delivery.decided("started")]
    if len(started) != 1 or started[0].execution_arn != finished.started_arn:
        raise LoopError(f"expected the handler's started decision for {finished.started_arn}, found {started}")
    parameters = loop.parameters(finished.started_arn)
    wanted: tuple[str, ...] = (CHAMPION_METRIC, BASELINE_CONSTRAINTS_URI)
    sent = {name: parameters[name] for name in wanted if name in parameters}
    constraints = sent.get(BASELINE_CONSTRAINTS_URI)
    packages = loop.sagemaker.list_model_packages(ModelPackageGroupName=loop.platform.model_package_group)[
        "ModelPackageSummaryList"
    ]
    promotion = decide_promotion(packages, deployed_arn=deployed_arn, stage=PROMOTION_STAGE)
    present = bool(constraints) and _exists(loop.client("s3"), str(constraints))
    return NextDecisions(finished.started_arn, started[0].champion, sent, present, promotion)


# --- the whole loop -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoopReport:
    """Everything the loop did, step by step."""

    platform: Platform
    uploads: tuple[Upload, Upload]
    started: Started
    execution: ExecutionView
    redelivery: Redelivery
    pending: Pending
    finished: Finished
    registration: Registration
    decisions: NextDecisions
    deliveries: tuple[Delivery, ...]
    simulated: timedelta


Emit = Callable[[str, str], None]


def progress(step: str, detail: str) -> None:
    """One progress line of the loop on stdout."""
    print(f"[loop] {step:<11} {detail}", flush=True)


def run_loop(aws: LocalAws, *, work_dir: Path, emit: Emit = progress) -> LoopReport:
    """Run steps 1 to 7 against the deployed stage, printing each step's result with ``emit``."""
    loop = Loop.open(aws, work_dir)
    emit_all(emit, render_platform(loop.platform))
    v1, v2 = loop.versions
    with contextlib.closing(loop), loop.backends.moto_pollers_suspended(loop.platform.settings.queue_url):
        first = upload_version(loop, v1)
        emit_all(emit, render_upload("1 upload", first, loop.platform))
        started = deliver_until_started(loop)
        emit_all(emit, render_started("2 deliver", started))
        execution = show_execution(loop, started.execution_arn)
        emit_all(emit, render_execution(execution))
        again = redeliver(loop, started.deliveries[0].records, execution.manifest.sha256)
        emit_all(emit, render_redelivery(again))
        pending = upload_while_running(loop, v2)
        emit_all(emit, render_pending(pending, loop.platform))
        # SageMaker registers the model before the execution ends, so the next start finds it.
        registration = register_model(loop, started.execution_arn, v1)
        emit_all(emit, render_registration(registration))
        finished = finish_execution(loop, started)
        emit_all(emit, render_finished(finished))
        decisions = decide_next(loop, finished)
        emit_all(emit, render_decisions(decisions))
    return LoopReport(
        loop.platform,
        (first, pending.upload),
        started,
        execution,
        again,
        pending,
        finished,
        registration,
        decisions,
        tuple(loop.deliveries),
        loop.clock.elapsed,
    )


# --- output -------------------------------------------------------------------------------------------

Line = tuple[str, str]


def emit_all(emit: Emit, lines: Sequence[Line]) -> None:
    """Emit rendered lines."""
    for step, detail in lines:
        emit(step, detail)


def clock(at: timedelta) -> str:
    """Simulated time since the loop began: ``t+1:15:00``."""
    seconds = int(at.total_seconds())
    return f"t+{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def duration(span: timedelta) -> str:
    """A span of time: ``15:00`` (minutes and seconds) or ``1:15:00``."""
    seconds = int(span.total_seconds())
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


def short_arn(arn: str) -> str:
    """The last segment of an ARN: ``…/execution/abc`` → ``execution/abc``."""
    parts = arn.split("/")
    return "/".join(parts[-2:]) if len(parts) > 2 else arn


def _kb(size: int) -> str:
    return f"{size / 1000:.1f} kB"


def _events(events: Sequence[str]) -> str:
    counts = Counter(events)
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())


_EXECUTION_ARN: Final = re.compile(r"arn:aws[\w-]*:sagemaker:[^:]*:\d*:pipeline/[^/\s]+/(execution/\w+)")


def _decision_text(delivery: Delivery) -> str:
    text = "; ".join(f"{d.decision}: {d.reason}" for d in delivery.decisions) or "no decision"
    return _EXECUTION_ARN.sub(r"\1", text)


def render_delivery(delivery: Delivery) -> Line:
    """``t+0:15:00  1 record (Retrain Check) → started: new objects; quiet for 15 min``."""
    count = len(delivery.records)
    again = " again" if delivery.redelivery else ""
    waited = f"(clock +{duration(delivery.waited)}) " if delivery.waited else ""
    return (
        "",
        f"{clock(delivery.at)}  {waited}{count} record{'s' if count != 1 else ''}{again} "
        f"({_events(delivery.events)}) → {_decision_text(delivery)}",
    )


def render_platform(platform: Platform) -> list[Line]:
    s = platform.settings
    return [
        (
            "found",
            f"retrain function {platform.function.name}, dataset {s.primary_dataset} in s3://{s.data_bucket}, "
            f"pipeline {s.pipeline_name}",
        ),
        (
            "",
            f"handler settings from the function's environment, unchanged: MODE={s.mode.value}, "
            f"QUIET_PERIOD_SECONDS={int(s.quiet_period.total_seconds())}, "
            f"COOLDOWN_SECONDS={int(s.cooldown.total_seconds())}",
        ),
        (
            "",
            "time is simulated: instead of waiting, the handler's clock and the queue's DelaySeconds "
            "advance together to the next delayed message",
        ),
    ]


def render_upload(step: str, upload: Upload, platform: Platform) -> list[Line]:
    prefix = datasets.dataset_prefix(platform.dataset)
    return [
        (
            step,
            f"data version {upload.version}: {len(upload.keys)} files, {_kb(upload.bytes)} → "
            f"s3://{platform.bucket}/{prefix} ({upload.description})",
        )
    ]


def render_started(step: str, started: Started) -> list[Line]:
    lines: list[Line] = [(step, "S3 → EventBridge rule → trigger queue → handler (in-process, as SQS records)")]
    lines += [render_delivery(d) for d in started.deliveries]
    lines.append(
        ("", f"execution {short_arn(started.execution_arn)} started; held at Executing (moto would end it at once)")
    )
    return lines


def render_execution(view: ExecutionView) -> list[Line]:
    lines: list[Line] = [
        ("3 execution", f"{view.executions} execution: {view.execution_arn} ({view.status})"),
    ]
    for name in core.PIPELINE_PARAMETER_NAMES:
        lines.append(("", f"  {name:<22} {view.parameters.get(name, '(not sent: the empty default)')}"))
    m = view.manifest
    lines.append(
        (
            "",
            f"manifest object: {view.manifest_bytes} bytes; lists {len(m.entries)} object versions, "
            f"{_kb(m.total_bytes)}, sha256 {m.sha256[:16]}…",
        )
    )
    return lines


def render_redelivery(again: Redelivery) -> list[Line]:
    return [
        ("4 redeliver", "the step-2 batch again (same message ids, receive count 2)"),
        render_delivery(again.delivery),
        (
            "",
            f"still {len(again.executions)} execution; idempotency record of sha256 {again.started_digest[:16]}…: "
            f"{again.idempotency_status} → {short_arn(again.idempotency_execution or '?')}",
        ),
    ]


def render_pending(pending: Pending, platform: Platform) -> list[Line]:
    [(step, text)] = render_upload("4 upload", pending.upload, platform)
    lines: list[Line] = [(step, f"{clock(pending.upload.at)} while the first execution runs: {text}")]
    lines += [render_delivery(d) for d in pending.deliveries]
    lock, state = pending.pipeline.lock, pending.dataset
    holder = short_arn(lock.execution_arn or "a start in progress") if lock else "nobody"
    since = f"{state.last_activity_at:%H:%M:%S}" if state.last_activity_at else "?"
    due = f"{state.check_due_at:%H:%M:%S}" if state.check_due_at else "?"
    lines.append(
        (
            "",
            f"state (DynamoDB): lock held by {holder}; objects since {since} not trained yet, "
            f"so the dataset is pending; next re-check {due}",
        )
    )
    lines.append(("", f"still {len(pending.executions)} execution"))
    return lines


def render_finished(finished: Finished) -> list[Line]:
    lines: list[Line] = [
        (
            "6 finish",
            f"{short_arn(finished.finished_arn)} Succeeded after {duration(finished.ran_for)}; "
            "its status-change event → EventBridge rule → trigger queue",
        )
    ]
    lines += [render_delivery(d) for d in finished.deliveries]
    lines.append(("", f"{len(finished.executions)} executions:"))
    for summary in finished.executions:
        lines.append(
            (
                "",
                f"  {short_arn(summary.execution_arn)} {summary.status:<10} data version {summary.data_version} "
                f"{summary.manifest_uri.rsplit('/', 1)[-1]}",
            )
        )
    d = finished.diff
    lines.append(("", f"manifest diff: added {list(d.added)}, changed {list(d.changed)}, removed {list(d.removed)}"))
    return lines


def render_registration(registration: Registration) -> list[Line]:
    run = registration.run
    lines: list[Line] = [
        ("5 register", f"steps of {short_arn(run.execution_arn)} from the deployed definition, while it executes:")
    ]
    for step in run.steps:
        detail = f" ({step.detail})" if step.detail else ""
        lines.append(("", f"  {step.name:<19} {step.outcome}{detail}"))
    approval = (
        "approved with UpdateModelPackage"
        if registration.approved_by_update
        else "registered Approved (the pipeline's ModelApprovalStatus default: Dev auto-approves models)"
    )
    lines.append(("", f"model package {registration.model_package_arn}: {approval}"))
    metadata = registration.package.get("CustomerMetadataProperties", {})
    for key in pipeline_definition.LINEAGE_METADATA_KEYS:
        lines.append(("", f"  {key:<20} {metadata.get(key, '(missing)')}"))
    quality = registration.package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
    lines.append(
        ("", f"  ModelMetrics         {quality.get('S3Uri')} ({registration.metric} {registration.metric_value:.4f})")
    )
    same = "identical to" if registration.matches_version else "DIFFERENT FROM"
    lines.append(
        (
            "",
            f"lineage: package → {registration.lineage_manifest.uri} → materialize: "
            f"{len(registration.materialized)} files, {same} data version 1 byte for byte",
        )
    )
    return lines


def render_decisions(decisions: NextDecisions) -> list[Line]:
    sent = dict(decisions.champion_parameters)
    constraints = sent.get(BASELINE_CONSTRAINTS_URI)
    execution = short_arn(decisions.execution_arn)
    lines: list[Line] = [
        (
            "7 decide",
            f"the retrain handler started {execution} against champion {decisions.champion_arn or '(none)'}; "
            "SageMaker lists its parameters:",
        ),
        ("", f"  {execution} {CHAMPION_METRIC} = {sent.get(CHAMPION_METRIC, '(not sent)')}"),
    ]
    if constraints:
        note = "" if decisions.constraints_present else " (no file: the baseline step does not run locally)"
        lines.append(("", f"  {execution} {BASELINE_CONSTRAINTS_URI} = {constraints}{note}"))
    lines.append(("", f"deployment decision: {decisions.promotion} [a decision only; nothing is deployed]"))
    return lines


def decision_counts(deliveries: Sequence[Delivery]) -> Counter[str]:
    """How often the handler decided each kind, over all deliveries."""
    return Counter(d.decision for delivery in deliveries for d in delivery.decisions)


def render_summary(report: LoopReport) -> list[tuple[str, str]]:
    """Rows (label, value) of the loop's part of the summary table."""
    uploads = report.uploads
    executions = report.finished.executions
    counts = decision_counts(report.deliveries)
    records = sum(len(d.records) for d in report.deliveries)
    rows = [
        (
            "data versions",
            "; ".join(f"v{u.version}: {len(u.keys)} files written, {_kb(u.bytes)}" for u in uploads),
        ),
        (
            "manifests",
            "; ".join(f"{s.data_version} ({s.manifest_uri.rsplit('/', 1)[-1]})" for s in executions),
        ),
        (
            "executions started",
            f"{len(executions)} ("
            + ", ".join(f"{short_arn(s.execution_arn)} {s.status}" for s in executions)
            + "); none twice",
        ),
        (
            "handler invocations",
            f"{len(report.deliveries)} with {records} records; decisions: "
            + ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items())),
        ),
        (
            "model packages",
            f"1 ({short_arn(report.registration.model_package_arn)} Approved, "
            f"{report.registration.metric} {report.registration.metric_value:.4f})",
        ),
        (
            "champion",
            f"{short_arn(report.decisions.execution_arn)} started against "
            f"{short_arn(report.decisions.champion_arn or '(none)')} "
            f"({CHAMPION_METRIC} {report.decisions.champion_parameters.get(CHAMPION_METRIC)}, sent by the handler)",
        ),
        ("deployment decision", str(report.decisions.promotion.action) + f" to {report.decisions.promotion.stage}"),
        ("simulated time", duration(report.simulated)),
    ]
    return rows
