"""Batch scoring's steps: a model to serve, Dev deployed to serve and score it, a data drop scored once.

See :mod:`cdk_mlops.local.batch_demo` for the whole story. Each step acts as a user, a data
producer or the model delivery pipeline would, lets the loop's emulation deliver what AWS
would deliver (:mod:`cdk_mlops.local.loop_emulation`), and returns a frozen dataclass of what it
did and of the AWS state it read afterwards; :mod:`cdk_mlops.local.batch_demo_narration` prints
them and :func:`check_scored` raises :class:`~cdk_mlops.local.loop_emulation.LoopError` where the
deployed platform did not do what it should.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from botocore.exceptions import ClientError

from cdk_mlops import datasets, pipeline_definition
from cdk_mlops.delivery_steps import model_settings
from cdk_mlops.lambdas.retrain_trigger import core
from cdk_mlops.local.deploy import STAGE, StackTemplate, deploy_stage
from cdk_mlops.local.loop import (
    LABEL,
    RETRAIN_HANDLER,
    DataVersion,
    ExecutionView,
    Loop,
    LoopError,
    Platform,
    Redelivery,
    Registration,
    Started,
    Upload,
    deliver_until_started,
    redeliver,
    register_model,
    sample_versions,
    show_execution,
    upload_version,
)
from cdk_mlops.local.pipeline_run import ExecutionRun, Resolver, run_execution
from cdk_mlops.local.runtime import EventSourceMapping, FunctionConfiguration
from cdk_mlops.local.server import LocalAws
from cdk_mlops.pipeline_definition import scoring

#: The dataset the demo scores (``batch_inference.dataset``); another than the one trained on.
SCORING_DATASET: Final = "churn-scoring"
#: The stack id of the scoring stack in a stage (``ScoringStack``).
SCORING_STACK: Final = "Scoring"
_PREDICTIONS_SUFFIX: Final = ".out"


# --- step 1: a model to serve ----------------------------------------------------------------------


@dataclass(frozen=True)
class Trained:
    """A model trained and registered by the closed loop's steps, ready to serve.

    Attributes:
        platform: The training trigger.
        upload: The training data version's objects.
        started: The deliveries until the training execution started, and the execution.
        registration: The approved package and its lineage.
    """

    platform: Platform
    upload: Upload
    started: Started
    registration: Registration


def train_model(aws: LocalAws, *, work_dir: Path) -> Trained:
    """Train and register a model with the closed loop's steps 1, 2 and 5.

    Dev registers the package approved (its ``ModelApprovalStatus`` default); the loop's step
    approves it otherwise.

    Raises:
        LoopError: if the training run does not register an approved package.
    """
    loop = Loop.open(aws, work_dir)
    first = loop.versions[0]
    with contextlib.closing(loop), loop.backends.moto_pollers_suspended(loop.platform.settings.queue_url):
        upload = upload_version(loop, first)
        started = deliver_until_started(loop)
        registration = register_model(loop, started.execution_arn, first)
    if registration.package.get("ModelApprovalStatus") != "Approved":
        raise LoopError(f"{registration.model_package_arn} is not approved; batch scoring serves approved models")
    return Trained(loop.platform, upload, started, registration)


# --- step 2: Dev serves it and scores a dataset ----------------------------------------------------


def scoring_overrides(package: Mapping[str, Any], dataset: str = SCORING_DATASET) -> dict[str, Any]:
    """The environment settings that serve a package and score ``dataset`` with it.

    The package and its data-quality baseline come from :func:`cdk_mlops.delivery_steps.model_settings`,
    as the model delivery pipeline sets them; the model is in this environment's own bucket, so
    no ``model_source_bucket``.

    Args:
        package: The package's ``DescribeModelPackage`` response.
        dataset: The dataset to score.
    """
    settings = model_settings(package)
    overrides: dict[str, Any] = {"model_package_arn": settings["model_package_arn"]}
    if "model_baseline_prefix" in settings:
        overrides["model_baseline_prefix"] = settings["model_baseline_prefix"]
    overrides["batch_inference"] = {"dataset": dataset}
    return overrides


@dataclass(frozen=True)
class ScoringDeployment:
    """The stage deployed again to serve a package and score a dataset.

    Attributes:
        overrides: The environment settings it was deployed with.
        templates: The stage's stacks.
        platform: The scoring trigger as deployed (:func:`discover_scoring`).
    """

    overrides: Mapping[str, Any]
    templates: tuple[StackTemplate, ...]
    platform: Platform


def discover_scoring(aws: LocalAws, stage: str = STAGE) -> Platform:
    """The scoring trigger of a deployed stage: the retrain handler's function in its Scoring stack.

    Its environment names the scored dataset, the pipeline, the queue and the state table, as
    for the training trigger (:func:`cdk_mlops.local.loop.discover`); the scoring pipeline
    registers nothing, so the platform's model package group is that of the package the
    pipeline scores with by default.

    Raises:
        LoopError: if the stack has no function with the retrain trigger's handler.
    """
    stack = f"{stage}-{SCORING_STACK}"
    cloudformation = aws.client("cloudformation")
    try:
        resources = cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
    except ClientError as error:
        raise LoopError(f"no stack {stack}: deploy {stage} with model_package_arn and batch_inference") from error
    for resource in resources:
        if resource.get("ResourceType") != "AWS::Lambda::Function":
            continue
        function = FunctionConfiguration.read(aws, resource["PhysicalResourceId"])
        if function.handler != RETRAIN_HANDLER:
            continue
        settings = core.Settings.from_env(function.environment)
        definition = json.loads(
            aws.client("sagemaker").describe_pipeline(PipelineName=settings.pipeline_name)["PipelineDefinition"]
        )
        defaults = {p["Name"]: p.get("DefaultValue", "") for p in definition.get("Parameters", [])}
        # arn:...:model-package/<group>/<version>
        group = str(defaults.get(scoring.MODEL_PACKAGE_ARN, "")).split("/")[1:2]
        mapping = EventSourceMapping.of_function(aws, function.name)
        return Platform(function, settings, mapping, definition, "".join(group))
    raise LoopError(f"no function with handler {RETRAIN_HANDLER} in {stack}")


def deploy_scoring(
    aws: LocalAws,
    package: Mapping[str, Any],
    *,
    output: Path | None = None,
    directory: Path | None = None,
    stage: str = STAGE,
    overrides: Mapping[str, Any] | None = None,
) -> ScoringDeployment:
    """Deploy the stage again serving ``package`` and scoring :data:`SCORING_DATASET`; find its scoring trigger.

    Args:
        aws: The local AWS the stage is deployed to.
        package: The package's ``DescribeModelPackage`` response.
        output: The cloud assembly directory; pass the first deploy's, so that destroying the
            stage from it removes the Scoring stack too. Default: - a temporary one.
        directory: The CDK app. Default: - this repository's.
        stage: The stage. Default: - ``Dev``.
        overrides: Other settings of the stage's environment that its first deploy had (such as
            :data:`~cdk_mlops.local.fleet_loop.DEMO_CATALOGUE`), kept so that the redeploy
            changes nothing else; the scoring settings win. Default: - none.
    """
    settings = {**(overrides or {}), **scoring_overrides(package)}
    templates, _ = deploy_stage(aws, directory=directory, output=output, stage=stage, overrides=settings)
    return ScoringDeployment(settings, tuple(templates), discover_scoring(aws, stage))


# --- step 3: a data drop, scored once --------------------------------------------------------------


def _without_label(content: bytes) -> bytes:
    rows = list(csv.reader(io.StringIO(content.decode("utf-8"))))
    drop = rows[0].index(LABEL)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([v for i, v in enumerate(row) if i != drop] for row in rows)
    return out.getvalue().encode("utf-8")


def scoring_version() -> DataVersion:
    """The drop the demo scores: rows 300-568 of the sample data, the 30 features without the label.

    The files data version 2 of the loop writes (``part-0003.csv``, ``part-0004.csv``), label
    column removed: scoring data has no label, and the scoring pipeline passes every column on
    as a feature (``BatchInference`` without ``label_column``), in the order trained on.
    """
    files = {name: _without_label(body) for name, body in sample_versions()[1].files.items()}
    return DataVersion(1, files, files, "rows 300-568 of the breast-cancer data, 30 features, no label")


def data_rows(version: DataVersion) -> int:
    """Data rows of a drop: the lines of its CSV files after each header."""
    return sum(max(0, len([line for line in body.splitlines() if line.strip()]) - 1) for body in version.files.values())


@dataclass(frozen=True)
class Predictions:
    """A scoring execution's output, read back from S3.

    Attributes:
        prefix: ``s3://<bucket>/batch-output/<name>/<DataVersion>/<execution id>/``.
        lineage: ``lineage.json``.
        files: Each predictions object (``*.out``) → its number of predictions.
        input_rows: Each transform input object (``input/*.csv``) → its number of rows.
        sample: The first predictions.
    """

    prefix: str
    lineage: Mapping[str, Any]
    files: Mapping[str, int]
    input_rows: Mapping[str, int]
    sample: tuple[str, ...]

    @property
    def count(self) -> int:
        """Predictions in all files."""
        return sum(self.files.values())


@dataclass(frozen=True)
class Scored:
    """What one scoring data drop did.

    Attributes:
        platform: The scoring trigger.
        upload: The drop's objects.
        rows: Data rows dropped.
        started: The deliveries until the scoring execution started, and the execution.
        execution: The execution, its parameters and its manifest.
        redelivery: The same batch delivered again.
        run: What each pipeline step did locally.
        predictions: The output read back.
        package_arn: The package the execution scored with (its ``ModelPackageArn``).
    """

    platform: Platform
    upload: Upload
    rows: int
    started: Started
    execution: ExecutionView
    redelivery: Redelivery
    run: ExecutionRun
    predictions: Predictions
    package_arn: str


def _lines(s3: Any, bucket: str, key: str) -> list[str]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    return [line for line in body.splitlines() if line.strip()]


def read_predictions(
    aws: LocalAws, platform: Platform, execution_arn: str, parameters: Mapping[str, str]
) -> Predictions:
    """``lineage.json``, the predictions and the transform input under an execution's output prefix.

    The prefix is the deployed definition's ``PrepareInput`` lineage output, resolved for the
    execution (the transform writes its predictions there too).
    """
    resolver = Resolver(platform.definition, parameters=parameters, execution_arn=execution_arn)
    step = scoring.PREPARE_INPUT_STEP
    prefix = str(
        resolver.get(f"Steps.{step}.ProcessingOutputConfig.Outputs['{scoring.OUTPUT_LINEAGE}'].S3Output.S3Uri")
    )
    bucket, key_prefix = datasets.parse_s3_uri(prefix)
    key_prefix = key_prefix.rstrip("/") + "/"
    s3 = aws.client("s3")
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix)
        for item in page.get("Contents", [])
    ]
    lineage_key = key_prefix + scoring.LINEAGE_FILE
    if lineage_key not in keys:
        raise LoopError(f"no {scoring.LINEAGE_FILE} under s3://{bucket}/{key_prefix}: PrepareInput wrote none")
    lineage = json.loads(s3.get_object(Bucket=bucket, Key=lineage_key)["Body"].read())
    files: dict[str, int] = {}
    sample: list[str] = []
    for key in sorted(k for k in keys if k.endswith(_PREDICTIONS_SUFFIX)):
        lines = _lines(s3, bucket, key)
        files[key[len(key_prefix) :]] = len(lines)
        sample += lines[: 3 - len(sample)]
    input_rows = {
        key[len(key_prefix) :]: len(_lines(s3, bucket, key))
        for key in sorted(keys)
        if key.startswith(f"{key_prefix}input/") and key.endswith(".csv")
    }
    return Predictions(f"s3://{bucket}/{key_prefix}", lineage, files, input_rows, tuple(sample))


def check_scored(scored: Scored) -> None:
    """Raise :class:`LoopError` where the scoring run is not what the deployed platform should make it.

    Exactly one execution for the drop, none more on redelivery, parameters naming the manifest,
    a lineage naming the package and the manifest, one prediction per input row.
    """
    started, view, again, out = scored.started, scored.execution, scored.redelivery, scored.predictions
    if started.executions != (started.execution_arn,):
        raise LoopError(f"expected one scoring execution for the drop, found {list(started.executions)}")
    if again.delivery.decided("started") or again.executions != started.executions:
        raise LoopError(f"the redelivered batch started a scoring execution: {list(again.executions)}")
    manifest_uri = view.parameters.get(pipeline_definition.INPUT_MANIFEST_URI, "")
    if view.parameters.get(pipeline_definition.MANIFEST_SHA256) != view.manifest.sha256 or not manifest_uri:
        raise LoopError(f"the scoring execution's parameters name no manifest of the drop: {dict(view.parameters)}")
    listed = {e.key for e in view.manifest.entries}
    if listed != set(scored.upload.keys):
        raise LoopError(f"the manifest lists {sorted(listed)}, the drop wrote {sorted(scored.upload.keys)}")
    expected = {
        "ModelPackageArn": scored.package_arn,
        "InputManifestUri": manifest_uri,
        "ManifestSha256": view.manifest.sha256,
        "PipelineExecutionArn": started.execution_arn,
    }
    wrong = {k: out.lineage.get(k) for k, v in expected.items() if out.lineage.get(k) != v}
    if wrong:
        raise LoopError(f"{scoring.LINEAGE_FILE} differs from the execution: {wrong}; expected {expected}")
    if out.lineage.get("Rows") != scored.rows or sum(out.input_rows.values()) != scored.rows:
        raise LoopError(
            f"the drop has {scored.rows} rows; {scoring.LINEAGE_FILE} says {out.lineage.get('Rows')}, "
            f"the transform input holds {sum(out.input_rows.values())}"
        )
    per_input = {f"{name.removeprefix('input/')}{_PREDICTIONS_SUFFIX}": rows for name, rows in out.input_rows.items()}
    if dict(out.files) != per_input:
        raise LoopError(f"predictions per file {dict(out.files)} differ from the input rows per file {per_input}")


def score_drop(
    aws: LocalAws,
    platform: Platform,
    *,
    work_dir: Path,
    version: DataVersion | None = None,
) -> Scored:
    """Drop a scoring data version, deliver it to the scoring trigger, run the execution, read its output.

    Args:
        aws: The local AWS (its server must run in this process).
        platform: The scoring trigger (:func:`discover_scoring`).
        work_dir: Where the steps may write files.
        version: The drop. Default: - :func:`scoring_version`.

    Raises:
        LoopError: if no execution starts, or the handler fails a record; :func:`check_scored`
            checks the rest.
    """
    version = version or scoring_version()
    loop = Loop.open(aws, work_dir, platform=platform, versions=(version,))
    with contextlib.closing(loop), loop.backends.moto_pollers_suspended(platform.settings.queue_url):
        upload = upload_version(loop, version)
        started = deliver_until_started(loop)
        view = show_execution(loop, started.execution_arn)
        again = redeliver(loop, started.deliveries[0].records, view.manifest.sha256)
        run = run_execution(
            aws,
            platform.definition,
            execution_arn=started.execution_arn,
            parameters=view.parameters,
            work_dir=work_dir / "scoring",
        )
        parameters = Resolver(platform.definition, parameters=view.parameters, execution_arn=started.execution_arn)
        package_arn = str(parameters.get(f"Parameters.{scoring.MODEL_PACKAGE_ARN}"))
        predictions = read_predictions(aws, platform, started.execution_arn, view.parameters)
    return Scored(platform, upload, data_rows(version), started, view, again, run, predictions, package_arn)
