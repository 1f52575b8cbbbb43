"""What stands in for AWS while the closed loop runs: Lambda's invocation, event delivery, executions, the clock.

moto cannot run Lambda code without Docker, and it runs no pipeline, so the loop plays these
parts itself, with the primitives of :mod:`cdk_mlops.local.runtime`, against what was deployed:

* the deployed platform is found as the loop would find it on AWS (:func:`discover`): the
  retrain function among the stage's stacks, its environment (the handler's configuration),
  its SQS event source mapping and the deployed pipeline definition;
* Lambda's runtime and event source mapping: :func:`deliver` hands the trigger queue's messages
  to the real handler in-process as SQS records, in a container whose cached clients point at
  the local server, and deletes them afterwards unless the handler reports them as failed;
* time: the deployed quiet period and cool-down are kept; the handler's clock and the queue's
  message delays are moved together instead (:func:`deliver_until` advances the simulated clock
  to the next delayed message);
* executions running: moto finishes them at once, :meth:`Loop.hold_running` holds them at
  ``Executing``, and :meth:`Loop.succeed` ends one and publishes its status-change event, which
  moto's SageMaker does not.

Nothing here decides what the deployed system decides: the handler's decisions are read from
its own log lines (:func:`parse_handler_log`).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol

from cdk_mlops import datasets, pipeline_definition
from cdk_mlops.lambdas.retrain_trigger import core
from cdk_mlops.lambdas.retrain_trigger import handler as trigger
from cdk_mlops.lambdas.retrain_trigger.events import PIPELINE_STATUS_CHANGE, SAGEMAKER_SOURCE
from cdk_mlops.lambdas.retrain_trigger.store import StateStore
from cdk_mlops.local.deploy import STAGE
from cdk_mlops.local.loop_dataset import DataVersion, sample_versions
from cdk_mlops.local.pipeline_run import find_step
from cdk_mlops.local.runtime import (
    Backends,
    EventSourceMapping,
    FunctionConfiguration,
    LambdaContainer,
    QueuePoller,
    SimulatedClock,
)
from cdk_mlops.local.server import LocalAws

#: The handler the loop looks for among the deployed functions.
RETRAIN_HANDLER: Final = f"{trigger.__name__}.{trigger.handler.__name__}"
_MAX_ROUNDS: Final = 12


class LoopError(RuntimeError):
    """The loop did not go as the deployed platform should make it go; the message says where."""


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


def discover(
    aws: LocalAws,
    stage: str = STAGE,
    *,
    stacks: Collection[str] | None = None,
    pipeline_name: str | None = None,
) -> Platform:
    """Find a retrain trigger's function among deployed stacks and read what the loop needs from AWS.

    Args:
        aws: The local AWS.
        stage: Look in the stacks of this stage (named ``<stage>-...``). Default: - ``Dev``.
        stacks: Look in exactly these stacks (CloudFormation names) instead of the stage's.
            Default: - the stage's stacks.
        pipeline_name: Take the trigger of this pipeline (an app may have several).
            Default: - the first trigger found.

    Raises:
        LoopError: if no stack looked in has a function with the retrain trigger's handler
            (for that pipeline).
    """
    cloudformation = aws.client("cloudformation")
    where = f"the stacks {', '.join(sorted(stacks))}" if stacks is not None else f"the {stage} stacks"
    for stack in cloudformation.describe_stacks().get("Stacks", []):
        wanted = stack["StackName"] in stacks if stacks is not None else stack["StackName"].startswith(f"{stage}-")
        if not wanted or stack["StackStatus"] == "DELETE_COMPLETE":
            continue
        resources = cloudformation.describe_stack_resources(StackName=stack["StackName"])["StackResources"]
        for resource in resources:
            if resource.get("ResourceType") != "AWS::Lambda::Function":
                continue
            function = FunctionConfiguration.read(aws, resource["PhysicalResourceId"])
            if function.handler != RETRAIN_HANDLER:
                continue
            if pipeline_name is None or core.Settings.from_env(function.environment).pipeline_name == pipeline_name:
                return _platform(aws, function)
    for_pipeline = f" for the pipeline {pipeline_name!r}" if pipeline_name is not None else ""
    fix = f"deploy {stage} first" if stacks is None else "deploy a stack with a RetrainTrigger first"
    raise LoopError(f"no function with handler {RETRAIN_HANDLER}{for_pipeline} in {where}; {fix}")


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
    """One decision the handler logged (its ``decision`` field, ``reason``, execution and champion).

    ``pipeline`` is the pipeline the decision was taken for (the log line's ``pipeline`` key): a
    shared (fleet) trigger decides for many in one batch.
    """

    decision: str
    reason: str
    execution_arn: str | None = None
    dataset: str | None = None
    champion: str | None = None
    pipeline: str | None = None


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


class Driver(Protocol):
    """What :func:`deliver` needs of a loop: a trigger function, its queue and the clock it runs on."""

    clock: SimulatedClock
    container: LambdaContainer
    poller: QueuePoller
    deliveries: list[Delivery]

    @property
    def mapping(self) -> EventSourceMapping:
        """The function's SQS event source mapping."""
        ...

    def handle(self, event: Mapping[str, Any], context: Any) -> Mapping[str, Any]:
        """Invoke the deployed handler in-process."""
        ...


class ClientCache:
    """A client of the local AWS per service, made on first use (a loop's ``aws`` and ``_clients``)."""

    aws: LocalAws
    _clients: dict[str, Any]

    def client(self, service: str) -> Any:
        """A client of the local AWS, one per service."""
        if service not in self._clients:
            self._clients[service] = self.aws.client(service)
        return self._clients[service]


@dataclass
class Loop(ClientCache):
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
    versions: tuple[DataVersion, ...]
    deliveries: list[Delivery] = field(default_factory=list)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def open(
        cls,
        aws: LocalAws,
        work_dir: Path,
        *,
        platform: Platform | None = None,
        versions: Sequence[DataVersion] | None = None,
    ) -> Loop:
        """Discover the deployed platform and start the simulated clock.

        Args:
            aws: The local AWS (its server must run in this process).
            work_dir: Where the loop may write files.
            platform: The retrain trigger to drive. Default: - the one :func:`discover` finds in Dev.
            versions: The data versions the loop uploads. Default: - the demo's two
                (:func:`~cdk_mlops.local.loop_dataset.sample_versions`).
        """
        platform = platform or discover(aws)
        backends = Backends.of(aws)
        poller = QueuePoller(aws, platform.settings.queue_url, platform.mapping)
        container = LambdaContainer(platform.function, aws=aws)
        chosen = tuple(sample_versions() if versions is None else versions)
        return cls(aws, backends, platform, SimulatedClock(backends), container, poller, work_dir, chosen)

    def close(self) -> None:
        """Retire the function's container: forget the handler's cached clients."""
        trigger.reset_clients()

    @property
    def mapping(self) -> EventSourceMapping:
        return self.platform.mapping

    def handle(self, event: Mapping[str, Any], context: Any) -> Mapping[str, Any]:
        """The retrain trigger's handler."""
        return trigger.handler(event, context)

    @property
    def sagemaker(self) -> Any:
        return self.client("sagemaker")

    def executions(self) -> list[str]:
        """The pipeline's executions, oldest first."""
        return executions(self.sagemaker, self.platform.pipeline_name)

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

    def succeed(self, execution_arn: str, started_at: datetime) -> None:
        """End an execution of the pipeline held at ``Executing`` (:func:`succeed`)."""
        succeed(self.backends, self.client, self.clock, self.platform.pipeline_name, execution_arn, started_at)


def executions(sagemaker: Any, pipeline_name: str) -> list[str]:
    """A pipeline's executions, oldest first."""
    summaries = sagemaker.list_pipeline_executions(
        PipelineName=pipeline_name, SortBy="CreationTime", SortOrder="Ascending"
    )["PipelineExecutionSummaries"]
    return [s["PipelineExecutionArn"] for s in summaries]


def succeed(
    backends: Backends,
    client: Callable[[str], Any],
    clock: SimulatedClock,
    pipeline_name: str,
    execution_arn: str,
    started_at: datetime,
) -> None:
    """End an execution held at ``Executing``, as SageMaker does when its last step succeeds.

    Its ``Pipeline Execution Status Change`` event goes on the default bus: moto's SageMaker
    publishes no events; SageMaker would put this one there.
    """
    backends.set_execution_status(pipeline_name, execution_arn, "Succeeded")
    pipeline_arn = execution_arn.split("/execution/", 1)[0]
    described = client("sagemaker").describe_pipeline_execution(PipelineExecutionArn=execution_arn)
    detail = {
        "pipelineArn": pipeline_arn,
        "pipelineExecutionArn": execution_arn,
        "pipelineExecutionDisplayName": described.get("PipelineExecutionDisplayName", ""),
        "currentPipelineExecutionStatus": "Succeeded",
        "previousPipelineExecutionStatus": "Executing",
        "executionStartTime": started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "executionEndTime": clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    event = {
        "Source": SAGEMAKER_SOURCE,
        "DetailType": PIPELINE_STATUS_CHANGE,
        "Detail": json.dumps(detail),
        "Resources": [pipeline_arn, execution_arn],
        "Time": clock.now(),
    }
    client("events").put_events(Entries=[event])


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
                    pipeline=entry.get("pipeline"),
                )
            )
    return tuple(decisions), errors


def _detail_type(record: Mapping[str, Any]) -> str:
    try:
        return str(json.loads(record["body"]).get("detail-type", "?"))
    except (ValueError, TypeError, KeyError, AttributeError):
        return "?"


def deliver(
    loop: Driver, records: Sequence[Mapping[str, Any]] | None = None, *, waited: timedelta = timedelta(0)
) -> Delivery | None:
    """Invoke the handler in-process with a batch, as the event source mapping does.

    Args:
        loop: The loop (:class:`Loop`, or another :class:`Driver` such as the fleet's loop).
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
        result = loop.handle({"Records": batch}, context)
    # Without ReportBatchItemFailures, Lambda ignores the response and deletes the whole batch.
    reported = loop.mapping.report_batch_item_failures
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


def deliver_until(loop: Driver, done: Callable[[Delivery], bool], what: str) -> tuple[Delivery, ...]:
    """Deliver what is visible; while ``done`` is not met, advance the clock to the next delayed message.

    Args:
        loop: The loop.
        done: Whether a delivery is the one awaited.
        what: What the awaited delivery does, for the error.

    Returns:
        The deliveries, the awaited one last.

    Raises:
        LoopError: if no delivery is the awaited one within a few rounds or before the queue is empty.
    """
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
