"""What ``make demo-batch`` prints: the lines of each batch scoring step, and its summary rows.

Each ``render_*`` function turns one step's result (:mod:`cdk_mlops.local.batch_demo_steps`) into
``(step, detail)`` lines in the closed loop's style (:mod:`cdk_mlops.local.loop_narration`, whose
``progress`` prints them). Nothing here reads AWS: the lines say only what the steps recorded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from cdk_mlops import datasets, pipeline_definition
from cdk_mlops.local.batch_demo_steps import Scored, ScoringDeployment, Trained
from cdk_mlops.local.loop import Line, render_delivery, render_started, render_upload, short_arn


def _kb(size: int) -> str:
    return f"{size / 1000:.1f} kB"


def render_trained(trained: Trained) -> list[Line]:
    """Steps 1 to 3: the training data, the training execution, the approved package."""
    registration = trained.registration
    steps = ", ".join(f"{s.name} {s.outcome}" for s in registration.run.steps)
    lines = render_upload("1 upload", trained.upload, trained.platform)
    lines += render_started("2 deliver", trained.started)
    lines += [
        ("3 register", f"steps of {short_arn(registration.run.execution_arn)} run locally: {steps}"),
        (
            "",
            f"model package {registration.model_package_arn} {registration.package.get('ModelApprovalStatus')} "
            f"({registration.metric} {registration.metric_value:.4f})",
        ),
    ]
    return lines


def _setting(value: object) -> str:
    return json.dumps(value, separators=(", ", ": ")) if isinstance(value, Mapping) else str(value)


def render_deployment(deployment: ScoringDeployment) -> list[Line]:
    """Step 4: the stage deployed again to serve the package and score a dataset."""
    s = deployment.platform.settings
    lines: list[Line] = [("4 redeploy", "Dev/* with the settings the model delivery pipeline would set:")]
    lines += [("", f"  {name} = {_setting(value)}") for name, value in deployment.overrides.items()]
    lines.append(("", f"{len(deployment.templates)} stacks: {', '.join(t.name for t in deployment.templates)}"))
    lines.append(
        (
            "",
            f"scoring trigger {deployment.platform.function.name}: dataset {s.primary_dataset} in "
            f"s3://{s.data_bucket}, pipeline {s.pipeline_name}, "
            f"QUIET_PERIOD_SECONDS={int(s.quiet_period.total_seconds())}",
        )
    )
    return lines


def render_scored(scored: Scored) -> list[Line]:
    """Steps 5 to 9: the drop, the one execution, the redelivery, the local run, the output read back."""
    upload, view, out = scored.upload, scored.execution, scored.predictions
    prefix = datasets.dataset_prefix(scored.platform.dataset)
    lines: list[Line] = [
        (
            "5 drop",
            f"scoring data: {len(upload.keys)} files, {scored.rows} rows, {_kb(upload.bytes)} → "
            f"s3://{scored.platform.bucket}/{prefix} ({upload.description})",
        ),
        ("6 deliver", "S3 → EventBridge rule → scoring queue → handler (in-process, as SQS records)"),
    ]
    lines += [render_delivery(d) for d in scored.started.deliveries]
    lines.append(("", f"{view.executions} scoring execution: {short_arn(view.execution_arn)} ({view.status})"))
    for name in (pipeline_definition.INPUT_MANIFEST_URI, pipeline_definition.MANIFEST_SHA256):
        lines.append(("", f"  {name:<18} {view.parameters.get(name, '(missing)')}"))
    again = scored.redelivery
    lines += [
        ("7 redeliver", "the step-6 batch again (same message ids, receive count 2)"),
        render_delivery(again.delivery),
        (
            "",
            f"still {len(again.executions)} scoring execution; idempotency record: {again.idempotency_status} → "
            f"{short_arn(again.idempotency_execution or '?')}",
        ),
        ("8 score", f"steps of {short_arn(scored.run.execution_arn)} from the deployed definition:"),
    ]
    lines += [("", f"  {s.name:<12} {s.outcome}{f' ({s.detail})' if s.detail else ''}") for s in scored.run.steps]
    lineage = out.lineage
    files = ", ".join(f"{name} ({count})" for name, count in out.files.items())
    lines += [
        ("9 lineage", f"{out.prefix}lineage.json:"),
        ("", f"  ModelPackageArn    {lineage.get('ModelPackageArn')}"),
        ("", f"  InputManifestUri   {lineage.get('InputManifestUri')}"),
        ("", f"  Rows               {lineage.get('Rows')} of {lineage.get('Objects')} objects"),
        ("", f"predictions: {out.count} for {scored.rows} rows in {files}; first: {', '.join(out.sample)}"),
    ]
    return lines


def render_batch_summary(trained: Trained, scored: Scored) -> list[tuple[str, str]]:
    """Rows (label, value) of batch scoring's part of the summary table."""
    again = scored.redelivery
    return [
        ("model served", f"{short_arn(trained.registration.model_package_arn)} (Approved)"),
        (
            "scoring executions",
            f"{len(scored.started.executions)} for 1 drop ({short_arn(scored.started.execution_arn)}); "
            f"{len(again.executions) - len(scored.started.executions)} more on redelivery",
        ),
        (
            "predictions",
            f"{scored.predictions.count} for {scored.rows} rows; lineage.json names the package and the manifest",
        ),
    ]
