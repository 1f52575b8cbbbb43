"""The closed loop's steps: what the demo does against the deployed platform, and what it reads back to check.

Each step (see :mod:`cdk_mlops.local.loop` for the whole story) acts as a user or a data
producer would (uploads data, approves a model), lets the emulation deliver what AWS would
deliver (:mod:`cdk_mlops.local.loop_emulation`), and returns a frozen dataclass of what it did
and of the AWS state it read afterwards: the e2e test asserts on these and
:mod:`cdk_mlops.local.loop_narration` prints them. A step checks what the deployed platform
should have done and raises :class:`~cdk_mlops.local.loop_emulation.LoopError` where it did not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from cdk_mlops import datasets, pipeline_definition
from cdk_mlops.champion import BASELINE_CONSTRAINTS_URI, CHAMPION_METRIC
from cdk_mlops.lambdas.retrain_trigger import core
from cdk_mlops.local.loop_dataset import DataVersion
from cdk_mlops.local.loop_emulation import Delivery, Loop, LoopError, Platform, deliver, deliver_until
from cdk_mlops.local.pipeline_run import ExecutionRun, run_execution
from cdk_mlops.local.runtime import redelivered
from cdk_mlops.promotion import PromotionDecision, decide_promotion

#: How long the first execution runs before step 6 finishes it (simulated).
EXECUTION_RUN_TIME: Final = timedelta(hours=1)
#: How long after the redelivery data version 2 lands (simulated).
SECOND_DROP_AFTER: Final = timedelta(minutes=5)
#: The stage the promotion decision is for.
PROMOTION_STAGE: Final = "staging"


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
    return put_version(loop.client("s3"), loop.platform.bucket, loop.platform.dataset, version, loop.clock.elapsed)


def put_version(s3: Any, bucket: str, dataset: str, version: DataVersion, at: timedelta) -> Upload:
    """Write a data version's files under ``datasets/<dataset>/`` of ``bucket``, as a data producer does.

    Args:
        s3: An S3 client of the local AWS.
        bucket: The data store's bucket.
        dataset: The dataset.
        version: What to write.
        at: Simulated time since the loop began, recorded in the result.
    """
    prefix = datasets.dataset_prefix(dataset)
    version_ids: dict[str, str] = {}
    for name, body in sorted(version.files.items()):
        key = prefix + name
        response = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/csv")
        version_ids[key] = str(response.get("VersionId", "null"))
    return Upload(version.number, tuple(version_ids), version.bytes, version_ids, at, version.description)


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
    deliveries = deliver_until(loop, lambda d: bool(d.decided("started")), "started an execution")
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
    deliveries = deliver_until(loop, lambda d: bool(d.decided("pending")), "recorded the new version as pending")
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
    loop.succeed(started.execution_arn, started.started_at)
    before = set(loop.executions())
    deliveries = deliver_until(loop, lambda d: bool(d.decided("started")), "started the pending version")
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
