"""The fleet's retrain loop on the local AWS: two catalogue models retrain at once, and neither waits for the other.

``make demo`` deploys Dev with :data:`DEMO_CATALOGUE`, three catalogue models on three datasets,
and after the closed loop (:mod:`cdk_mlops.local.loop`) :func:`run_fleet_loop` drives the
environment's one :class:`~cdk_mlops.constructs.fleet_trigger.FleetRetrainTrigger` with the
deployed code, one function per step:

0. :func:`drain_earlier`: what reached the fleet queue before (in the demo, the closed loop's
   objects: the fleet's ``DataChanged`` rule matches every dataset) goes to the handler, which
   starts nothing for it.
1. :func:`land_both`: version 1 of the sample data lands on the first two models' datasets at
   the same moment.
2. :func:`start_both`: S3's events reach the fleet queue through the deployed ``DataChanged``
   rule; the loop hands them to the deployed fleet handler (as the event source mapping does),
   the quiet period passes on the simulated clock, and each model starts exactly one run on a
   manifest of its own dataset. Both runs hold their own lock at the same time.
3. :func:`redeliver_both`: the first batch again (same message ids): nothing starts.
4. :func:`land_while_running`: version 2 lands on the first model's dataset while both run. That
   model records it as pending behind its lock; the second model's lock and run do not change.
5. :func:`finish_first`: the first model's run ends; its status-change event goes through the
   deployed rule, and that model starts its pending version. The second model's run still holds
   its lock, and it has not started again.
6. :func:`finish_second`: the second model's run ends; it releases its lock and starts nothing:
   the only objects it saw since its start were the redelivered batch of step 3, the version it
   had started already (the handler logs ``deduplicated``).

The third model's dataset gets no data: its pipeline must have no execution at the end. Routes,
datasets, the bucket and the state table come from the deployed function's environment and its
SSM routes, read with the handler's own parser. What stands in for AWS (Lambda's runtime, the
event source mapping, the clock, running executions) is :mod:`cdk_mlops.local.loop_emulation`'s;
nothing here decides what the handler decides.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from cdk_mlops import pipeline_definition
from cdk_mlops.lambdas.retrain_trigger import core
from cdk_mlops.lambdas.retrain_trigger import fleet as fleet_handler
from cdk_mlops.lambdas.retrain_trigger import handler as trigger
from cdk_mlops.lambdas.retrain_trigger.routes import ROUTES_PATH_VARIABLE, RouteTable
from cdk_mlops.lambdas.retrain_trigger.store import StateStore
from cdk_mlops.local.deploy import STAGE
from cdk_mlops.local.loop_dataset import DataVersion, sample_versions
from cdk_mlops.local.loop_emulation import (
    ClientCache,
    Delivery,
    LoopError,
    deliver,
    deliver_until,
    executions,
    succeed,
)
from cdk_mlops.local.loop_narration import Emit, Line, clock, emit_all, progress, render_delivery, short_arn
from cdk_mlops.local.loop_steps import EXECUTION_RUN_TIME, SECOND_DROP_AFTER, Upload, put_version
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

#: The handler the fleet loop looks for among the deployed functions.
FLEET_HANDLER: Final = f"{fleet_handler.__name__}.{fleet_handler.handler.__name__}"

#: How many batches step 0 delivers at most (a batch is up to 10 records).
_MAX_DRAIN: Final = 20

#: The catalogue ``make demo`` deploys with Dev (``deploy_stage(overrides=...)``): three models,
#: each on its own dataset, with the catalogue's default quiet period (15 min), cool-down (1 h)
#: and daily cap (4). The loop drops data on the first two; the third must stay idle.
DEMO_CATALOGUE: Final[Mapping[str, Any]] = {
    "models": {
        "screening-a": {"dataset": "clinic-a"},
        "screening-b": {"dataset": "clinic-b"},
        "screening-c": {"dataset": "clinic-c"},
    }
}


# --- the deployed fleet -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetModel:
    """One route of the fleet trigger: a pipeline and the datasets it trains on."""

    pipeline_name: str
    datasets: tuple[str, ...]

    @property
    def dataset(self) -> str:
        """The dataset the loop drops data on (a catalogue model has one)."""
        return self.datasets[0]


@dataclass(frozen=True)
class FleetPlatform:
    """The deployed fleet trigger, as the loop finds it.

    Attributes:
        function: The fleet trigger's function; its environment is the handler's configuration.
        mapping: Its SQS event source mapping.
        queue_url: The fleet queue (``QUEUE_URL``).
        bucket: The data store's bucket (``DATA_BUCKET``).
        state_table: The table of every pipeline's lock and state (``STATE_TABLE``).
        models: Every route, by the order of the pipelines' names.
    """

    function: FunctionConfiguration
    mapping: EventSourceMapping
    queue_url: str
    bucket: str
    state_table: str
    models: tuple[FleetModel, ...]


def discover_fleet(aws: LocalAws, stage: str = STAGE) -> FleetPlatform:
    """Find the fleet trigger's function among the stage's stacks and read its routes from SSM.

    Raises:
        LoopError: if no function of the stage runs the fleet handler (deploy a catalogue, e.g.
            :data:`DEMO_CATALOGUE`), or a route cannot be read.
    """
    cloudformation = aws.client("cloudformation")
    for stack in cloudformation.describe_stacks().get("Stacks", []):
        if not stack["StackName"].startswith(f"{stage}-") or stack["StackStatus"] == "DELETE_COMPLETE":
            continue
        for resource in cloudformation.describe_stack_resources(StackName=stack["StackName"])["StackResources"]:
            if resource.get("ResourceType") != "AWS::Lambda::Function":
                continue
            function = FunctionConfiguration.read(aws, resource["PhysicalResourceId"])
            if function.handler == FLEET_HANDLER:
                return _fleet_platform(aws, function)
    raise LoopError(
        f"no function with handler {FLEET_HANDLER} in the {stage} stacks; deploy {stage} with a model catalogue "
        "(`models` in cdk.json, or deploy_stage(overrides=DEMO_CATALOGUE))"
    )


def _fleet_platform(aws: LocalAws, function: FunctionConfiguration) -> FleetPlatform:
    environment = function.environment
    pairs: list[tuple[str, str]] = []
    paginator = aws.client("ssm").get_paginator("get_parameters_by_path")
    for page in paginator.paginate(Path=environment[ROUTES_PATH_VARIABLE]):
        pairs += [(p["Name"], p["Value"]) for p in page["Parameters"]]
    table = RouteTable.read(pairs, environment)
    if table.broken:
        raise LoopError(f"routes the fleet handler cannot read: {table.broken}")
    models = tuple(
        FleetModel(route.settings.pipeline_name, route.settings.datasets) for _, route in sorted(table.routes.items())
    )
    return FleetPlatform(
        function,
        EventSourceMapping.of_function(aws, function.name),
        environment["QUEUE_URL"],
        environment["DATA_BUCKET"],
        environment["STATE_TABLE"],
        models,
    )


# --- the fleet loop's state ---------------------------------------------------------------------------


@dataclass
class FleetLoop(ClientCache):
    """One run of the fleet loop: the fleet function, its queue, the clock, what was delivered.

    Call :meth:`close` when done: it retires the function's container.
    """

    aws: LocalAws
    backends: Backends
    platform: FleetPlatform
    clock: SimulatedClock
    container: LambdaContainer
    poller: QueuePoller
    version: DataVersion
    later: DataVersion
    deliveries: list[Delivery] = field(default_factory=list)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, aws: LocalAws, *, platform: FleetPlatform | None = None) -> FleetLoop:
        """Discover the deployed fleet trigger (unless given) and start a simulated clock."""
        platform = platform or discover_fleet(aws)
        if len(platform.models) < 3:
            raise LoopError(
                f"the fleet loop needs three catalogue models, the deployed routes name {len(platform.models)}; "
                "deploy DEMO_CATALOGUE"
            )
        backends = Backends.of(aws)
        first, second = sample_versions()
        return cls(
            aws,
            backends,
            platform,
            SimulatedClock(backends),
            LambdaContainer(platform.function, aws=aws),
            QueuePoller(aws, platform.queue_url, platform.mapping),
            first,
            second,
        )

    def close(self) -> None:
        """Retire the function's container: forget the handler's cached clients and routes."""
        fleet_handler.reset()
        trigger.reset_clients()

    @property
    def mapping(self) -> EventSourceMapping:
        return self.platform.mapping

    def handle(self, event: Mapping[str, Any], context: Any) -> Mapping[str, Any]:
        """The fleet trigger's handler."""
        return fleet_handler.handler(event, context)

    def executions(self, model: FleetModel) -> list[str]:
        """A model's executions, oldest first."""
        return executions(self.client("sagemaker"), model.pipeline_name)

    def status(self, execution_arn: str) -> str:
        """An execution's status."""
        described = self.client("sagemaker").describe_pipeline_execution(PipelineExecutionArn=execution_arn)
        status: str = described["PipelineExecutionStatus"]
        return status

    def dataset_of(self, execution_arn: str) -> str:
        """The dataset of the manifest an execution was started on (``manifests/<dataset>/...``)."""
        response = self.client("sagemaker").list_pipeline_parameters_for_execution(PipelineExecutionArn=execution_arn)
        parameters = {p["Name"]: p["Value"] for p in response["PipelineParameters"]}
        uri = str(parameters[pipeline_definition.INPUT_MANIFEST_URI])
        return uri.split("/manifests/", 1)[1].split("/", 1)[0]

    def state(self, model: FleetModel) -> tuple[core.PipelineState, core.DatasetState]:
        """A model's lock and its dataset's state, read with the handler's own store."""
        store = StateStore(self.client("dynamodb"), self.platform.state_table, model.pipeline_name)
        pipeline, states = store.load([model.dataset])
        return pipeline, states[model.dataset]

    def snapshot(self) -> dict[str, ModelState]:
        """Every model's executions (with status) and lock holder, by pipeline name."""
        out: dict[str, ModelState] = {}
        for model in self.platform.models:
            pipeline, dataset = self.state(model)
            runs = tuple((arn, self.status(arn)) for arn in self.executions(model))
            holder = pipeline.lock.execution_arn if pipeline.lock else None
            waiting = core.is_dirty(dataset) or dataset.pending is not None
            out[model.pipeline_name] = ModelState(runs, holder, waiting)
        return out


@dataclass(frozen=True)
class ModelState:
    """One model after a step, as the trigger's table and SageMaker hold it.

    Attributes:
        runs: The pipeline's executions and their statuses, oldest first.
        lock: The execution holding the model's lock, or None when it is free.
        waiting: Objects of its dataset arrived that no run has started on yet (the quiet
            period runs, or they wait behind the lock, the cool-down or the daily cap).
    """

    runs: tuple[tuple[str, str], ...]
    lock: str | None
    waiting: bool


@dataclass(frozen=True)
class FleetStep:
    """What one step did and every model's state afterwards.

    Attributes:
        name: The step (``land``, ``start``, ...).
        summary: What the step did, in a line.
        uploads: The data versions written, by dataset.
        deliveries: The handler invocations, in order.
        models: Every model's state afterwards, by pipeline name.
        at: Simulated time since the loop began, after the step.
    """

    name: str
    summary: str
    uploads: Mapping[str, Upload]
    deliveries: tuple[Delivery, ...]
    models: Mapping[str, ModelState]
    at: timedelta


@dataclass(frozen=True)
class FleetReport:
    """The fleet loop's steps, in order, and the models it drove.

    Attributes:
        first: The model whose data lands twice.
        second: The model whose data lands once.
        idle: The model whose dataset gets nothing.
        steps: Each step's result.
    """

    first: FleetModel
    second: FleetModel
    idle: FleetModel
    steps: tuple[FleetStep, ...]

    def step(self, name: str) -> FleetStep:
        """A step's result by name."""
        return next(step for step in self.steps if step.name == name)


def _step(
    loop: FleetLoop,
    name: str,
    summary: str,
    deliveries: Sequence[Delivery],
    uploads: Mapping[str, Upload] | None = None,
) -> FleetStep:
    return FleetStep(name, summary, dict(uploads or {}), tuple(deliveries), loop.snapshot(), loop.clock.elapsed)


def _hold_started(loop: FleetLoop, delivery: Delivery, model: FleetModel) -> bool:
    """Whether ``model`` started a run in ``delivery``; the run is held at Executing (moto ends it at once)."""
    runs = [d.execution_arn for d in delivery.decided("started") if d.pipeline == model.pipeline_name]
    for arn in runs:
        if arn:
            loop.backends.set_execution_status(model.pipeline_name, arn, "Executing")
    return bool(runs)


def _expect(condition: bool, problem: str) -> None:
    if not condition:
        raise LoopError(problem)


# --- the steps ----------------------------------------------------------------------------------------


def drain_earlier(loop: FleetLoop) -> FleetStep:
    """Step 0: deliver what reached the fleet queue before the loop (the closed loop's objects, in the demo).

    The fleet's ``DataChanged`` rule matches every dataset of the store, so the objects of the
    environment's own pipeline reach this queue too; the fleet handler must ignore them.
    """
    deliveries: list[Delivery] = []
    for _ in range(_MAX_DRAIN):
        delivery = deliver(loop)
        if delivery is None:
            break
        deliveries.append(delivery)
    records = sum(len(d.records) for d in deliveries)
    step = _step(loop, "earlier", f"the fleet queue held {records} records from before the fleet loop", deliveries)
    started = [d for delivery in deliveries for d in delivery.decided("started")]
    _expect(not started, f"records from before the fleet loop started runs: {started}")
    return step


def land_both(loop: FleetLoop, first: FleetModel, second: FleetModel) -> FleetStep:
    """Step 1: version 1 lands on both models' datasets at the same moment."""
    s3 = loop.client("s3")
    uploads = {
        model.dataset: put_version(s3, loop.platform.bucket, model.dataset, loop.version, loop.clock.elapsed)
        for model in (first, second)
    }
    return _step(loop, "land", f"data version 1 lands on {first.dataset} and {second.dataset} at once", (), uploads)


def start_both(loop: FleetLoop, first: FleetModel, second: FleetModel) -> FleetStep:
    """Step 2: deliver (and let the quiet period pass) until both models have started; one run each, own data."""
    seen: set[str] = set()

    def both(delivery: Delivery) -> bool:
        seen.update(m.pipeline_name for m in (first, second) if _hold_started(loop, delivery, m))
        return len(seen) == 2

    route = "S3 → DataChanged rule → fleet queue → fleet handler (in-process, as SQS records)"
    step = _step(loop, "start", route, deliver_until(loop, both, "started both models"))
    for model in (first, second):
        state = step.models[model.pipeline_name]
        _expect(len(state.runs) == 1, f"{model.pipeline_name}: expected one run, found {len(state.runs)}")
        [(arn, _)] = state.runs
        _expect(state.lock == arn, f"{model.pipeline_name}: its lock is held by {state.lock}, not by its run {arn}")
        dataset = loop.dataset_of(arn)
        _expect(dataset == model.dataset, f"{model.pipeline_name} started on {dataset}, not on {model.dataset}")
    return step


def redeliver_both(loop: FleetLoop, start: FleetStep) -> FleetStep:
    """Step 3: the first batch of step 2 again (same message ids): no model starts again."""
    delivery = deliver(loop, redelivered(start.deliveries[0].records))
    again = "the first batch of f2 again (same message ids, receive count 2)"
    step = _step(loop, "redeliver", again, (delivery,) if delivery else ())
    changed = sorted(name for name, state in step.models.items() if state.runs != start.models[name].runs)
    _expect(not changed, f"a redelivered batch changed the runs of {changed}")
    return step


def land_while_running(loop: FleetLoop, first: FleetModel, second: FleetModel, before: FleetStep) -> FleetStep:
    """Step 4: version 2 lands on the first model's dataset while both run; it waits behind that model's lock."""
    loop.clock.advance(SECOND_DROP_AFTER)
    upload = put_version(loop.client("s3"), loop.platform.bucket, first.dataset, loop.later, loop.clock.elapsed)

    def pending(delivery: Delivery) -> bool:
        return any(d.pipeline == first.pipeline_name for d in delivery.decided("pending"))

    deliveries = deliver_until(loop, pending, f"recorded {first.pipeline_name}'s new version as pending")
    summary = f"data version 2 lands on {first.dataset} while both models run"
    step = _step(loop, "pending", summary, deliveries, {first.dataset: upload})
    mine, other = step.models[first.pipeline_name], step.models[second.pipeline_name]
    _expect(mine.waiting and mine.runs == before.models[first.pipeline_name].runs, f"{first.pipeline_name}: {mine}")
    _expect(
        other == before.models[second.pipeline_name],
        f"{second.pipeline_name} changed while only {first.dataset} received data: {other}",
    )
    return step


def _finish(loop: FleetLoop, model: FleetModel, before: FleetStep, started: datetime) -> str:
    run, _ = before.models[model.pipeline_name].runs[0]
    loop.clock.advance_to(started + EXECUTION_RUN_TIME)
    succeed(loop.backends, loop.client, loop.clock, model.pipeline_name, run, started)
    return f"{model.pipeline_name}'s {short_arn(run)} Succeeded; its status-change event → rule → fleet queue"


def finish_first(
    loop: FleetLoop, first: FleetModel, second: FleetModel, before: FleetStep, started: datetime
) -> FleetStep:
    """Step 5: the first model's run ends and it starts its pending version; the second model's run keeps its lock."""
    summary = _finish(loop, first, before, started)
    deliveries = deliver_until(
        loop, lambda d: _hold_started(loop, d, first), f"started {first.pipeline_name}'s pending version"
    )
    step = _step(loop, "finish-first", summary, deliveries)
    runs = step.models[first.pipeline_name].runs
    _expect(len(runs) == 2, f"{first.pipeline_name}: expected two runs, found {len(runs)}")
    _expect(runs[0][1] == "Succeeded" and runs[1][1] == "Executing", f"{first.pipeline_name}: {runs}")
    other = step.models[second.pipeline_name]
    _expect(
        other == before.models[second.pipeline_name],
        f"{second.pipeline_name}'s run or lock changed when {first.pipeline_name}'s run ended: {other}",
    )
    return step


def finish_second(loop: FleetLoop, second: FleetModel, before: FleetStep, started: datetime) -> FleetStep:
    """Step 6: the second model's run ends; it releases its lock and starts nothing (no new version)."""
    summary = _finish(loop, second, before, started)

    def released(delivery: Delivery) -> bool:
        return any(d.pipeline == second.pipeline_name for d in delivery.decided("released"))

    deliveries = deliver_until(loop, released, f"released {second.pipeline_name}'s lock")
    step = _step(loop, "finish-second", summary, deliveries)
    state = step.models[second.pipeline_name]
    _expect(state.lock is None, f"{second.pipeline_name}: its lock is still held by {state.lock}")
    _expect(len(state.runs) == 1, f"{second.pipeline_name}: expected one run, found {len(state.runs)}")
    return step


def run_fleet_loop(aws: LocalAws, *, platform: FleetPlatform | None = None, emit: Emit = progress) -> FleetReport:
    """Run steps 0 to 6 against the deployed fleet trigger, printing each step's result with ``emit``.

    Args:
        aws: The local AWS (its server must run in this process), with Dev and a catalogue of at
            least three models deployed (:data:`DEMO_CATALOGUE`).
        platform: The fleet trigger to drive. Default: - the one :func:`discover_fleet` finds in Dev.
        emit: Where each line goes. Default: - stdout.

    Raises:
        LoopError: where the deployed trigger did not do what it should (the message says where).
    """
    loop = FleetLoop.open(aws, platform=platform)
    first, second, idle = loop.platform.models[:3]
    emit_all(emit, render_fleet(loop.platform, first, second, idle))
    steps: list[FleetStep] = []

    def done(step: FleetStep) -> FleetStep:
        steps.append(step)
        emit_all(emit, render_step(step))
        return step

    with contextlib.closing(loop), loop.backends.moto_pollers_suspended(loop.platform.queue_url):
        done(drain_earlier(loop))
        done(land_both(loop, first, second))
        start = done(start_both(loop, first, second))
        started = loop.clock.now()
        done(land_while_running(loop, first, second, done(redeliver_both(loop, start))))
        done(finish_first(loop, first, second, steps[-1], started))
        done(finish_second(loop, second, steps[-1], started))
    last = steps[-1].models[idle.pipeline_name]
    _expect(not last.runs and last.lock is None, f"{idle.pipeline_name} ran though its dataset got no data")
    return FleetReport(first, second, idle, tuple(steps))


# --- narration ----------------------------------------------------------------------------------------

_STEP_TITLES: Final = {
    "earlier": "f0 earlier",
    "land": "f1 land",
    "start": "f2 start",
    "redeliver": "f3 again",
    "pending": "f4 pending",
    "finish-first": "f5 finish",
    "finish-second": "f6 finish",
}


def render_fleet(platform: FleetPlatform, first: FleetModel, second: FleetModel, idle: FleetModel) -> list[Line]:
    """The lines that introduce the fleet loop: the function, the routes and which models get data."""
    return [
        (
            "fleet",
            f"fleet retrain function {platform.function.name}: {len(platform.models)} routes (SSM), "
            f"one queue, one table, in s3://{platform.bucket}",
        ),
        (
            "",
            f"data lands on {first.dataset} ({first.pipeline_name}) and {second.dataset} ({second.pipeline_name}); "
            f"{idle.dataset} ({idle.pipeline_name}) gets none",
        ),
    ]


def render_step(step: FleetStep) -> list[Line]:
    """A step's lines: what it did, what landed, each delivery, and every model's runs and lock afterwards."""
    lines: list[Line] = [(_STEP_TITLES[step.name], step.summary)]
    lines += [
        ("", f"{clock(u.at)}  {dataset}: {len(u.keys)} files, {u.bytes / 1000:.1f} kB ({u.description})")
        for dataset, u in step.uploads.items()
    ]
    lines += [render_delivery(d, by_pipeline=True) for d in step.deliveries]
    width = max(len(name) for name in step.models)
    for name, state in step.models.items():
        runs = ", ".join(f"{short_arn(arn)} {status}" for arn, status in state.runs) or "no run"
        lock = f"lock {short_arn(state.lock)}" if state.lock else "lock free"
        waiting = "; new objects wait" if state.waiting else ""
        lines.append(("", f"  {name:<{width}}  {runs}; {lock}{waiting}"))
    return lines


def render_fleet_summary(report: FleetReport) -> list[tuple[str, str]]:
    """Rows (label, value) of the fleet loop's part of the summary table."""
    last = report.steps[-1].models
    deliveries = [d for step in report.steps for d in step.deliveries]
    counts = Counter(d.decision for delivery in deliveries for d in delivery.decisions)
    return [
        (
            "fleet runs",
            "; ".join(f"{name} {len(state.runs)}" for name, state in last.items())
            + " (one per data version, none twice)",
        ),
        (
            "fleet invocations",
            f"{len(deliveries)}; decisions: " + ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items())),
        ),
    ]
