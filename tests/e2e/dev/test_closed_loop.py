"""End to end: the closed loop on the deployed Dev stage, with the real handler, scripts and CLI.

One run on the package's deployment of Dev (tests/e2e/dev/conftest.py): ``make demo``'s closed
loop step (:meth:`cdk_mlops.local.loop.Demo.closed_loop`, which is
:func:`cdk_mlops.local.loop.run_loop`) runs steps 1 to 7. Each step's result holds the AWS
state read right after the step (executions, parameters, the trigger's DynamoDB state); the
tests assert on those and on what AWS holds at the end. The champion values are read from
SageMaker and S3 here, as the deployed handler left them. The last test reads the stage
destroyed, as ``make demo`` leaves it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cdk_mlops import datasets
from cdk_mlops import pipeline_definition as pd
from cdk_mlops.lambdas.retrain_trigger import core
from cdk_mlops.lambdas.retrain_trigger.events import OBJECT_CREATED, PIPELINE_STATUS_CHANGE, RETRAIN_CHECK
from cdk_mlops.local.deploy import stack_states
from cdk_mlops.local.loop import render_summary
from cdk_mlops.promotion import PromotionAction
from tests.e2e.dev.conftest import Run

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[3]


# --- the platform -------------------------------------------------------------------------------------


def test_the_loop_reads_its_settings_from_the_deployed_function(run):
    platform = run.report.platform
    configuration = run.client("lambda").get_function_configuration(FunctionName=platform.function.name)
    assert configuration["Environment"]["Variables"] == dict(platform.function.environment)
    assert platform.settings == core.Settings.from_env(configuration["Environment"]["Variables"])
    buckets = [b["Name"] for b in run.client("s3").list_buckets()["Buckets"]]
    assert platform.bucket in buckets
    assert platform.model_package_group in [
        g["ModelPackageGroupName"]
        for g in run.client("sagemaker").list_model_package_groups()["ModelPackageGroupSummaryList"]
    ]
    # the handler looks up its champion in the group the deployed definition registers into
    assert platform.settings.model_package_group == platform.model_package_group


# --- step 1 and 2 -------------------------------------------------------------------------------------


def test_step_1_uploads_version_1_under_the_dataset_prefix(run):
    first = run.report.uploads[0]
    prefix = datasets.dataset_prefix(run.report.platform.dataset)
    assert len(first.keys) == 4
    assert all(key.startswith(prefix) for key in first.keys)
    # the bucket still holds these exact versions after version 2 overwrote one of them
    versions = run.client("s3").list_object_versions(Bucket=run.report.platform.bucket, Prefix=prefix)["Versions"]
    held = {(v["Key"], v["VersionId"]) for v in versions}
    assert set(first.version_ids.items()) <= held


def test_step_2_starts_exactly_one_execution_after_the_quiet_period(run):
    started = run.report.started
    first, *_, last = started.deliveries
    # the S3 events came through the deployed rule and queue, once each (moto's own poller kept out)
    assert set(first.events) == {OBJECT_CREATED}
    assert len(first.records) == 4
    assert {r["attributes"]["ApproximateReceiveCount"] for r in first.records} == {"1"}
    assert [d.decision for d in first.decisions] == ["waiting"]
    # the delayed check, delivered when the quiet period had passed, started the run
    assert RETRAIN_CHECK in last.events
    assert [d.decision for d in last.decisions] == ["started"]
    assert last.at >= run.report.platform.settings.quiet_period
    assert started.executions == (started.execution_arn,)


# --- step 3 -------------------------------------------------------------------------------------------


def parameters_in_sagemaker(run: Run, execution_arn: str) -> dict[str, str]:
    """An execution's parameters as SageMaker lists them."""
    listed = run.client("sagemaker").list_pipeline_parameters_for_execution(PipelineExecutionArn=execution_arn)
    return {p["Name"]: p["Value"] for p in listed["PipelineParameters"]}


def test_step_3_the_first_model_is_compared_with_no_champion(run):
    parameters = parameters_in_sagemaker(run, run.report.started.execution_arn)
    assert parameters[pd.CHAMPION_METRIC] == "0.0"
    assert pd.BASELINE_CONSTRAINTS_URI not in parameters


def test_step_3_the_execution_names_a_manifest_of_exactly_version_1(run):
    view = run.report.execution
    first = run.report.uploads[0]
    parameters = view.parameters
    manifest_uri = parameters[pd.INPUT_MANIFEST_URI]
    assert manifest_uri.startswith(
        f"s3://{run.report.platform.bucket}/{datasets.manifest_prefix(run.report.platform.dataset)}"
    )
    manifest = datasets.load_manifest(manifest_uri, s3=run.client("s3"))
    assert {e.key: e.version_id for e in manifest.entries} == dict(first.version_ids)
    assert parameters[pd.MANIFEST_SHA256] == manifest.sha256
    assert parameters[pd.DATA_VERSION] == core.data_version(manifest.created_at, manifest.sha256)
    assert parameters[pd.TRIGGER_REASON].startswith("new objects")
    assert view.status == "Executing"
    assert view.executions == 1
    assert view.manifest_bytes == len(manifest.to_json().encode())


# --- step 4 -------------------------------------------------------------------------------------------


def test_step_4_a_redelivered_batch_starts_nothing(run):
    again = run.report.redelivery
    original = run.report.started.deliveries[0]
    assert again.delivery.redelivery
    assert [r["messageId"] for r in again.delivery.records] == [r["messageId"] for r in original.records]
    assert not again.delivery.decided("started")
    assert again.executions == (run.report.started.execution_arn,)
    assert again.idempotency_status == "COMPLETED"
    assert again.idempotency_execution == run.report.started.execution_arn


def test_step_4_version_2_during_the_run_is_recorded_as_pending(run):
    pending = run.report.pending
    first = run.report.started.execution_arn
    assert pending.deliveries[-1].decided("pending")
    assert not any(d.decided("started") for d in pending.deliveries)
    assert pending.executions == (first,)
    # DynamoDB: the lock names the running execution; the dataset has activity it has not trained on
    assert pending.pipeline.lock is not None
    assert pending.pipeline.lock.execution_arn == first
    state = pending.dataset
    assert state.last_activity_at is not None
    assert state.settled_at is not None
    assert state.last_activity_at > state.settled_at
    assert state.check_due_at is not None
    assert state.last_digest == run.report.execution.manifest.sha256


# --- step 6 -------------------------------------------------------------------------------------------


def test_step_6_the_end_of_the_run_starts_the_pending_version(run):
    finished = run.report.finished
    [delivery] = finished.deliveries
    assert PIPELINE_STATUS_CHANGE in delivery.events
    assert [d.decision for d in delivery.decided("released")] == ["released"]
    assert len(delivery.decided("started")) == 1
    first, second = finished.executions
    assert (first.execution_arn, second.execution_arn) == (finished.finished_arn, finished.started_arn)
    assert (first.status, second.status) == ("Succeeded", "Executing")
    assert first.manifest_uri != second.manifest_uri
    assert first.sha256 != second.sha256
    assert finished.diff.added == ("part-0004.csv",)
    assert finished.diff.changed == ("part-0003.csv",)
    # the second manifest lists the version 2 objects
    second_manifest = datasets.load_manifest(second.manifest_uri, s3=run.client("s3"))
    versions = {e.key: e.version_id for e in second_manifest.entries}
    assert set(run.report.uploads[1].version_ids.items()) <= set(versions.items())
    executions = run.client("sagemaker").list_pipeline_executions(PipelineName=run.report.platform.pipeline_name)
    assert len(executions["PipelineExecutionSummaries"]) == 2


# --- step 5 -------------------------------------------------------------------------------------------


def test_step_5_the_model_package_is_approved_with_the_lineage_of_the_first_run(run):
    registration = run.report.registration
    first = run.report.execution
    package = run.client("sagemaker").describe_model_package(ModelPackageName=registration.model_package_arn)
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["ModelPackageGroupName"] == run.report.platform.model_package_group
    metadata = package["CustomerMetadataProperties"]
    assert tuple(metadata) == pd.LINEAGE_METADATA_KEYS
    assert metadata[pd.INPUT_MANIFEST_URI] == first.parameters[pd.INPUT_MANIFEST_URI]
    assert metadata[pd.MANIFEST_SHA256] == first.parameters[pd.MANIFEST_SHA256]
    assert metadata[pd.DATA_VERSION] == first.parameters[pd.DATA_VERSION]
    assert metadata[pd.METADATA_EXECUTION_ARN] == first.execution_arn
    assert package["MetadataProperties"]["GeneratedBy"] == first.execution_arn
    # Dev registers approved (its ModelApprovalStatus default); elsewhere the loop would approve
    default = {p["Name"]: p.get("DefaultValue") for p in run.report.platform.definition["Parameters"]}
    assert registration.registered_status == default[pd.MODEL_APPROVAL_STATUS] == "Approved"
    outcomes = dict((s.name, s.outcome) for s in registration.run.steps)
    assert [s.name for s in registration.run.steps if s.outcome != "skipped"] == [
        pd.PREPROCESS,
        pd.TRAIN,
        # Dev names a bias facet (cdk.json), so the run creates the model Clarify's shadow endpoints serve
        pd.CLARIFY_MODEL,
        pd.EVALUATE,
        pd.GATE,
        pd.REGISTER,
    ]
    assert outcomes[pd.GATE] == "passed"
    # The analyzer and Clarify steps run managed containers, which do not run offline; the package
    # still names their baselines where those steps write them in AWS
    analyzer = "its image (sagemaker-model-monitor-analyzer) runs no script locally"
    clarify = "its image (sagemaker-clarify-processing:1.0) runs no script locally"
    skipped = {s.name: s.detail for s in registration.run.steps if s.outcome == "skipped"}
    assert skipped == {
        pd.DATA_QUALITY_BASELINE: analyzer,
        pd.MODEL_QUALITY_BASELINE: analyzer,
        pd.DATA_BIAS_BASELINE: clarify,
        pd.MODEL_BIAS_BASELINE: clarify,
        pd.MODEL_EXPLAINABILITY_BASELINE: clarify,
    }
    execution_id = first.execution_arn.rsplit("/", 1)[-1]
    quality = package["DriftCheckBaselines"]["ModelQuality"]
    assert quality["Constraints"]["S3Uri"].endswith(f"/{execution_id}/model-quality-baseline/{pd.CONSTRAINTS_FILE}")
    assert quality["Statistics"]["S3Uri"].endswith(f"/{execution_id}/model-quality-baseline/{pd.STATISTICS_FILE}")
    # Evaluate ran, so the monitors' Clarify configurations are real files, naming the model it created
    drift = package["DriftCheckBaselines"]
    for section, folder in (("Bias", "model-bias-baseline"), ("Explainability", "model-explainability-baseline")):
        uri = drift[section]["ConfigFile"]["S3Uri"]
        assert uri.endswith(f"/{execution_id}/{folder}/{pd.ANALYSIS_CONFIG_FILE}")
        bucket, key = datasets.parse_s3_uri(uri)
        config = json.loads(run.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
        assert config["headers"], config
    assert drift["Bias"]["PostTrainingConstraints"]["S3Uri"].endswith(f"/model-bias-baseline/{pd.ANALYSIS_FILE}")


def test_step_5_the_metrics_are_a_real_evaluation_stored_where_the_package_says(run):
    registration = run.report.registration
    uri = registration.package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    execution_id = run.report.execution.execution_arn.rsplit("/", 1)[-1]
    assert f"/{execution_id}/evaluate/{pd.EVALUATION_FILE}" in uri
    bucket, key = datasets.parse_s3_uri(uri)
    evaluation = json.loads(run.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert evaluation["binary_classification_metrics"]["auc"]["value"] == registration.metric_value
    assert registration.metric == "auc"
    assert 0.9 < registration.metric_value <= 1.0


def test_step_5_the_manifest_materializes_to_exactly_version_1(run, tmp_path):
    registration = run.report.registration
    assert registration.matches_version
    uri = registration.package["CustomerMetadataProperties"][pd.INPUT_MANIFEST_URI]
    written = datasets.materialize(uri, tmp_path, s3=run.client("s3"))
    v1 = run.report.uploads[0]
    assert len(written) == len(v1.keys)
    restored = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in written}
    current = (
        run.client("s3")
        .get_object(
            Bucket=run.report.platform.bucket,
            Key=datasets.dataset_prefix(run.report.platform.dataset) + "part-0003.csv",
        )["Body"]
        .read()
    )
    # the file version 2 rewrote comes back as it was in version 1
    assert restored["part-0003.csv"] != current
    assert registration.materialized == tuple(sorted(restored))


# --- step 7 -------------------------------------------------------------------------------------------


def test_step_7_the_handler_started_version_2_against_the_approved_model(run):
    # GIVEN the package approved in step 5 and its evaluation.json as S3 holds it
    registration = run.report.registration
    first = run.report.execution
    platform = run.report.platform
    evaluation_uri = registration.package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    bucket, key = datasets.parse_s3_uri(evaluation_uri)
    evaluation = json.loads(run.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    auc = evaluation["binary_classification_metrics"]["auc"]["value"]
    # THEN the execution the handler started in step 6 competes with it, as SageMaker lists its parameters
    second = run.report.finished.started_arn
    parameters = parameters_in_sagemaker(run, second)
    assert parameters[pd.CHAMPION_METRIC] == repr(auc)
    first_id = first.execution_arn.rsplit("/", 1)[-1]
    assert parameters[pd.BASELINE_CONSTRAINTS_URI] == (
        f"s3://{platform.bucket}/artifacts/{platform.pipeline_name}/{first_id}/data-quality-baseline/"
        f"{pd.CONSTRAINTS_FILE}"
    )
    # AND the handler's own decision line names the package it looked up
    [started] = [d for delivery in run.report.finished.deliveries for d in delivery.decided("started")]
    assert started.execution_arn == second
    assert started.champion == registration.model_package_arn
    # AND step 7 shows exactly that
    decisions = run.report.decisions
    assert decisions.execution_arn == second
    assert decisions.champion_arn == registration.model_package_arn
    assert dict(decisions.champion_parameters) == {
        pd.CHAMPION_METRIC: parameters[pd.CHAMPION_METRIC],
        pd.BASELINE_CONSTRAINTS_URI: parameters[pd.BASELINE_CONSTRAINTS_URI],
    }
    assert decisions.constraints_present is False  # the analyzer image does not run locally


def test_step_7_the_promotion_decision(run):
    decisions = run.report.decisions
    registration = run.report.registration
    assert decisions.promotion.action is PromotionAction.PROMOTE
    assert decisions.promotion.model_package_arn == registration.model_package_arn
    assert decisions.promotion.stage == "staging"


def test_the_output_has_a_line_per_step(run):
    steps = [step for step, _ in run.lines if step]
    for label in (
        "1 upload",
        "2 deliver",
        "3 execution",
        "4 redeliver",
        "4 upload",
        "5 register",
        "6 finish",
        "7 decide",
    ):
        assert label in steps
    # in that order: the model is registered and approved before the run ends and version 2 starts
    assert steps.index("5 register") < steps.index("6 finish") < steps.index("7 decide")
    seven = next(i for i, (step, _) in enumerate(run.lines) if step == "7 decide")
    shown = " ".join(text for _, text in run.lines[seven : seven + 4])
    assert (
        f"{pd.CHAMPION_METRIC} = {parameters_in_sagemaker(run, run.report.finished.started_arn)[pd.CHAMPION_METRIC]}"
        in shown
    )


def readme_sample() -> list[str]:
    """The README's sample of the demo's output: its ``[loop]`` lines and summary rows."""
    text = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"^```\n(\[loop\].*?)^```$", text, re.DOTALL | re.MULTILINE)
    assert block is not None, "the README shows no sample of the demo's output"
    return [line for line in block.group(1).splitlines() if line.strip() and line != "== summary"]


def sample_pattern(line: str) -> re.Pattern[str]:
    """A README line as a pattern: a word with ``...`` stands for anything, a time for any time.

    Simulated times carry the wall-clock seconds a run takes (``t+0:15:02``, ``clock +5:01``).
    """
    time = r"(\d+:\d\d(?::\d\d)?)"
    parts = []
    for word in line.split():
        if "..." in word:
            parts.append(".*?")
        else:
            pieces = re.split(time, word)  # odd indices are the times
            parts.append("".join(time if i % 2 else re.escape(piece) for i, piece in enumerate(pieces)))
    return re.compile(r"\s+".join(parts))


def test_the_readme_sample_is_what_the_demo_prints_in_that_order(run):
    printed = [f"[loop] {step:<11} {text}" for step, text in run.lines]
    printed += [f"   {label:<20} {value}" for label, value in render_summary(run.report)]
    position = 0
    for line in readme_sample():
        pattern = sample_pattern(line)
        found = next((i for i in range(position, len(printed)) if pattern.match(printed[i].strip())), None)
        label = " ".join(line.split()[:2])
        alike = [p for p in printed[position:] if p.split()[:2] == label.split()]
        assert found is not None, f"README sample line not printed (after line {position}): {line}; printed: {alike}"
        position = found + 1


def test_the_sample_pattern_does_not_match_a_changed_line():
    pattern = sample_pattern("[loop] 6 finish    execution/4xem... Succeeded after 1:00:00; its status-change event")
    assert pattern.match("[loop] 6 finish    execution/ab12 Succeeded after 1:00:00; its status-change event")
    assert not pattern.match("[loop] 6 finish    execution/ab12 Failed after 1:00:00; its status-change event")
    assert not pattern.match("[loop] 6 finish    execution/ab12 Succeeded after 1 hour; its status-change event")


# --- teardown, as make demo does it --------------------------------------------------------------------


def test_the_stage_destroys_and_the_registry_survives_it(run, dev_stage_destroyed):
    assert stack_states(run.aws, prefix="Dev-") == []
    # The model package group is retained (models are data): its approved package is still listed.
    packages = run.aws.client("sagemaker").list_model_packages(
        ModelPackageGroupName=run.report.platform.model_package_group
    )["ModelPackageSummaryList"]
    assert [p["ModelPackageArn"] for p in packages] == [run.report.registration.model_package_arn]
