"""The demo's narration: the lines it prints for each step of the closed loop, and its summary rows.

Each ``render_*`` function turns one step's result (:mod:`cdk_mlops.local.loop_steps`) into
``(step, detail)`` lines; :func:`progress` prints one on stdout, and
:func:`cdk_mlops.local.loop.run_loop` emits them as the steps run. Nothing here reads AWS: the
lines say only what the steps recorded.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Final

from cdk_mlops import datasets, pipeline_definition
from cdk_mlops.champion import BASELINE_CONSTRAINTS_URI, CHAMPION_METRIC
from cdk_mlops.lambdas.retrain_trigger import core
from cdk_mlops.local.loop_emulation import Delivery, Platform
from cdk_mlops.local.loop_steps import (
    ExecutionView,
    Finished,
    LoopReport,
    NextDecisions,
    Pending,
    Redelivery,
    Registration,
    Started,
    Upload,
)

Line = tuple[str, str]
Emit = Callable[[str, str], None]


def progress(step: str, detail: str) -> None:
    """One progress line of the loop on stdout."""
    print(f"[loop] {step:<11} {detail}", flush=True)


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


def _decision_text(delivery: Delivery, *, by_pipeline: bool) -> str:
    text = (
        "; ".join(
            (f"{d.pipeline} " if by_pipeline and d.pipeline else "") + f"{d.decision}: {d.reason}"
            for d in delivery.decisions
        )
        or "no decision"
    )
    return _EXECUTION_ARN.sub(r"\1", text)


def render_delivery(delivery: Delivery, *, by_pipeline: bool = False) -> Line:
    """``t+0:15:00  1 record (Retrain Check) → started: new objects; quiet for 15 min``.

    With ``by_pipeline``, each decision is preceded by the pipeline it was taken for (a shared
    trigger decides for many).
    """
    count = len(delivery.records)
    again = " again" if delivery.redelivery else ""
    waited = f"(clock +{duration(delivery.waited)}) " if delivery.waited else ""
    return (
        "",
        f"{clock(delivery.at)}  {waited}{count} record{'s' if count != 1 else ''}{again} "
        f"({_events(delivery.events)}) → {_decision_text(delivery, by_pipeline=by_pipeline)}",
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
        lines.append(("", f"  {step.name:<20} {step.outcome}{detail}"))
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
