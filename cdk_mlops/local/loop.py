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

The loop lives in four modules, each re-exported here:

* :mod:`cdk_mlops.local.loop_dataset`: the sample dataset;
* :mod:`cdk_mlops.local.loop_emulation`: what stands in for AWS (see :mod:`cdk_mlops.local.runtime`):
  Lambda's runtime and event source mapping; time (the deployed quiet period and cool-down are
  kept, the handler's clock and the SQS delays are moved instead); executions running (moto
  finishes them at once, the loop holds them at ``Executing``); the status-change event (moto's
  SageMaker publishes none, the loop puts it on the default bus);
* :mod:`cdk_mlops.local.loop_steps`: steps 1 to 7, what they do and what they check; the pipeline
  steps themselves run locally (:mod:`cdk_mlops.local.pipeline_run`);
* :mod:`cdk_mlops.local.loop_narration`: the lines the demo prints.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cdk_mlops.local.deploy import (
    StackState,
    StackTemplate,
    deploy_stage,
    destroy_stage,
    render_states,
    stack_states,
)
from cdk_mlops.local.fleet_loop import DEMO_CATALOGUE, FleetPlatform, FleetReport, discover_fleet, run_fleet_loop
from cdk_mlops.local.loop_dataset import LABEL, DataVersion, sample_versions
from cdk_mlops.local.loop_emulation import (
    RETRAIN_HANDLER,
    Delivery,
    HandlerDecision,
    Loop,
    LoopError,
    Platform,
    deliver,
    discover,
    parse_handler_log,
)
from cdk_mlops.local.loop_narration import (
    Emit,
    Line,
    clock,
    decision_counts,
    duration,
    emit_all,
    progress,
    render_decisions,
    render_delivery,
    render_execution,
    render_finished,
    render_pending,
    render_platform,
    render_redelivery,
    render_registration,
    render_started,
    render_summary,
    render_upload,
    short_arn,
)
from cdk_mlops.local.loop_steps import (
    EXECUTION_RUN_TIME,
    PROMOTION_STAGE,
    SECOND_DROP_AFTER,
    ExecutionSummary,
    ExecutionView,
    Finished,
    LoopReport,
    NextDecisions,
    Pending,
    Redelivery,
    Registration,
    Started,
    Upload,
    approve,
    decide_next,
    deliver_until_started,
    finish_execution,
    redeliver,
    register_model,
    show_execution,
    upload_version,
    upload_while_running,
)
from cdk_mlops.local.runtime import Backends
from cdk_mlops.local.server import LocalAws

__all__ = [
    "EXECUTION_RUN_TIME",
    "LABEL",
    "PROMOTION_STAGE",
    "RETRAIN_HANDLER",
    "SECOND_DROP_AFTER",
    "DataVersion",
    "Delivery",
    "Demo",
    "DemoRun",
    "Emit",
    "ExecutionSummary",
    "ExecutionView",
    "Finished",
    "HandlerDecision",
    "Line",
    "Loop",
    "LoopError",
    "LoopReport",
    "NextDecisions",
    "Pending",
    "Platform",
    "Redelivery",
    "Registration",
    "Started",
    "Upload",
    "approve",
    "clock",
    "decide_next",
    "decision_counts",
    "deliver",
    "deliver_until_started",
    "discover",
    "duration",
    "emit_all",
    "finish_execution",
    "parse_handler_log",
    "progress",
    "redeliver",
    "register_model",
    "render_decisions",
    "render_delivery",
    "render_execution",
    "render_finished",
    "render_pending",
    "render_platform",
    "render_redelivery",
    "render_registration",
    "render_started",
    "render_summary",
    "render_upload",
    "run_demo",
    "run_loop",
    "sample_versions",
    "short_arn",
    "show_execution",
    "upload_version",
    "upload_while_running",
]


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


@dataclass(frozen=True)
class DemoRun:
    """What ``make demo`` did: the stacks it deployed, both loops' reports, and the seconds of each step."""

    states: list[StackState]
    loop: LoopReport
    fleet: FleetReport
    timings: dict[str, float] = field(default_factory=dict)


class Demo:
    """``make demo``'s four steps on a running local AWS, one method each, in this order.

    :meth:`deploy` deploys Dev with :data:`DEMO_CATALOGUE`: Dev as cdk.json has it, plus a model
    catalogue of three models that the environment's one fleet retrain trigger serves.
    :meth:`closed_loop` runs the closed loop (:func:`run_loop`) on the environment's own pipeline,
    :meth:`fleet_loop` the fleet loop (:func:`~cdk_mlops.local.fleet_loop.run_fleet_loop`) on two
    of the catalogue's models at once, and :meth:`destroy` destroys the stage. :func:`run_demo`
    runs them one after the other; the e2e tests run the same methods on one deployment, with
    their checks (and a redeploy for batch scoring) in between.

    From :meth:`deploy` to :meth:`destroy` (or :meth:`close`), moto's own pollers are detached
    from the fleet queue: its ``DataChanged`` rule matches every dataset, so every object written
    reaches that queue, and moto would try to run the function in Docker. The fleet loop hands
    the queue's messages to the deployed handler itself.

    Args:
        aws: The local AWS (its server must run in this process).
        output: The cloud assembly directory; :meth:`destroy` reuses the assembly last deployed there.
        emit: Where the loops' lines go. Default: - stdout.
        show: Where the deployed stacks' report goes. Default: - stdout.
    """

    def __init__(
        self, aws: LocalAws, *, output: Path, emit: Emit = progress, show: Callable[[str], None] = print
    ) -> None:
        self.aws = aws
        self.output = output
        self.emit = emit
        self.show = show
        #: Seconds of each step, by name (``bootstrap``, ``deploy``, ``check``, ``loop``, ``fleet``, ``destroy``).
        self.timings: dict[str, float] = {}
        #: The stage's stacks as :meth:`deploy` left them.
        self.states: list[StackState] = []
        self._fleet: FleetPlatform | None = None
        self._detached = contextlib.ExitStack()

    def deploy(self) -> list[StackTemplate]:
        """Bootstrap, deploy Dev with :data:`DEMO_CATALOGUE` and check every stack; its templates."""
        templates, timings = deploy_stage(self.aws, output=self.output, overrides=DEMO_CATALOGUE)
        self.timings.update(timings.steps)
        self.states = stack_states(self.aws)
        self.show(render_states(self.states))
        self._fleet = discover_fleet(self.aws)
        self._detached.enter_context(Backends.of(self.aws).moto_pollers_suspended(self._fleet.queue_url))
        return templates

    def closed_loop(self, work_dir: Path) -> LoopReport:
        """The closed loop's steps 1 to 7 (:func:`run_loop`), with scratch files in ``work_dir``."""
        start = time.perf_counter()
        report = run_loop(self.aws, work_dir=work_dir, emit=self.emit)
        self.timings["loop"] = time.perf_counter() - start
        return report

    def fleet_loop(self) -> FleetReport:
        """The fleet loop's steps f0 to f6; run it after :meth:`closed_loop`, whose objects its step f0 drains."""
        if self._fleet is None:
            raise LoopError("the fleet loop runs on the deployed stage: call Demo.deploy() first")
        start = time.perf_counter()
        report = run_fleet_loop(self.aws, platform=self._fleet, emit=self.emit)
        self.timings["fleet"] = time.perf_counter() - start
        return report

    def destroy(self) -> float:
        """Destroy the stage from the assembly in ``output`` and check that no stack is left; its seconds."""
        try:
            self.timings["destroy"] = destroy_stage(self.aws, output=self.output, overrides=DEMO_CATALOGUE)
        finally:
            self.close()
        return self.timings["destroy"]

    def close(self) -> None:
        """Reattach moto's pollers to the fleet queue (done by :meth:`destroy`; harmless twice)."""
        self._detached.close()


def run_demo(aws: LocalAws, *, output: Path, emit: Emit = progress, show: Callable[[str], None] = print) -> DemoRun:
    """``make demo`` on a running local AWS: :class:`Demo`'s steps in order (deploy, both loops, destroy).

    Args:
        aws: The local AWS (its server must run in this process).
        output: The cloud assembly directory.
        emit: Where the loops' lines go. Default: - stdout.
        show: Where the deployed stacks' report goes. Default: - stdout.
    """
    demo = Demo(aws, output=output, emit=emit, show=show)
    with contextlib.closing(demo):
        demo.deploy()
        with tempfile.TemporaryDirectory(prefix="cdk-mlops-loop-") as work:
            report = demo.closed_loop(Path(work))
        fleet = demo.fleet_loop()
        demo.destroy()
    return DemoRun(demo.states, report, fleet, dict(demo.timings))
