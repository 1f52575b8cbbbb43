"""track.py, run locally: one MLflow run per execution in a local file store, the training job from moto.

The script passes ``MLFLOW_TRACKING_ARN`` straight to ``mlflow.set_tracking_uri``, so a
``file://`` URI stands in for the managed tracking server; DescribeTrainingJob is answered by
moto. The evaluation files are written by ``evaluate.py``'s own functions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from moto import mock_aws

from cdk_mlops import pipeline_definition as pd
from cdk_mlops.ml import TRACK_SCRIPT, evaluate, track

JOB = "pipelines-abc123-Train-XyZ"
RUN = "abc123def456"
EXPERIMENT = "churn-training"
EXECUTION_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/churn-training/execution/abc123def456"
MANIFEST = "s3://data-bucket/manifests/churn/20260101T000000Z-0a1b2c3d.json"
PINS = ("mlflow==2.16.2", "sagemaker-mlflow==0.1.1")
HYPERPARAMETERS = {
    # Script mode: every value a JSON string, plus the toolkit's own sagemaker_* entries.
    "max_iter": '"40"',
    "eta": "0.2",
    "sagemaker_program": '"train.py"',
    "sagemaker_submit_directory": '"s3://assets/sourcedir.tar.gz"',
}


@pytest.fixture
def tracking(aws_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A training job in moto, evaluate.py's output and an empty local MLflow store."""
    store = tmp_path / "mlruns"
    monkeypatch.setenv(track.TRACKING_ARN_ENV, store.as_uri())
    # MLflow 3 refuses the file store unless asked; it is the store the skinny client has.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    labels = np.array([0, 0, 1, 1, 0, 1, 0, 1], dtype=np.float64)
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.6, 0.7])
    report = evaluate.evaluation_report("binary_classification", evaluate.binary_classification_metrics(labels, scores))
    comparison = evaluate.champion_comparison("auc", True, report["binary_classification_metrics"]["auc"]["value"], 0.7)
    evaluation_dir = tmp_path / "evaluation"
    evaluation_dir.mkdir()
    (evaluation_dir / pd.EVALUATION_FILE).write_text(json.dumps(report))
    (evaluation_dir / pd.COMPARISON_FILE).write_text(json.dumps(comparison))
    with mock_aws():
        sagemaker = boto3.client("sagemaker")
        sagemaker.create_training_job(
            TrainingJobName=JOB,
            AlgorithmSpecification={"TrainingImage": "sklearn", "TrainingInputMode": "File"},
            RoleArn="arn:aws:iam::123456789012:role/pipeline",
            HyperParameters=HYPERPARAMETERS,
            OutputDataConfig={"S3OutputPath": "s3://artifacts/train"},
            ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 30},
            StoppingCondition={"MaxRuntimeInSeconds": 3600},
        )
        yield {
            "store": store,
            "evaluation_dir": evaluation_dir,
            "report": report,
            "comparison": comparison,
            "job": sagemaker.describe_training_job(TrainingJobName=JOB),
            "message": tmp_path / "message",
        }


def arguments(tracking: dict[str, Any], **overrides: str) -> list[str]:
    """The arguments the Track step passes (see test_the_definition_passes_arguments_track_accepts)."""
    values = {
        "evaluation-dir": str(tracking["evaluation_dir"]),
        "training-job-name": JOB,
        "experiment-name": EXPERIMENT,
        "run-name": RUN,
        "manifest-uri": MANIFEST,
        "manifest-sha256": "a" * 64,
        "data-version": "20260101T000000Z-0a1b2c3d",
        "pipeline-execution-arn": EXECUTION_ARN,
        "source-revision": "3f2a9c1",
        "message-file": str(tracking["message"]),
        **overrides,
    }
    return [f"--{key}={value}" for key, value in values.items()] + [f"--requirement={pin}" for pin in PINS]


def must_not_install(requirements: Any) -> None:
    raise AssertionError(f"installed {requirements} although mlflow is importable")


def runs(store: Path) -> list[Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store.as_uri())
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return [] if experiment is None else list(client.search_runs([experiment.experiment_id]))


# ------------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------------


def test_track_records_the_execution_as_one_mlflow_run(tracking, monkeypatch, capsys):
    # GIVEN mlflow is importable, so nothing may be installed
    monkeypatch.setattr(track, "pip_install", must_not_install)
    # WHEN
    code = track.main(arguments(tracking))
    # THEN
    assert code == 0, capsys.readouterr().err
    (run,) = runs(tracking["store"])
    assert run.info.run_name == RUN
    assert run.info.status == "FINISHED"
    # AND the parameters are the training job's hyperparameters, unquoted, without sagemaker_*
    assert run.data.params == {"max_iter": "40", "eta": "0.2", "instance_type": "ml.m5.xlarge", "instance_count": "2"}
    # AND every test metric of evaluation.json, the champion comparison and the training job's metrics
    section = tracking["report"]["binary_classification_metrics"]
    expected = {f"test_{name}": entry["value"] for name, entry in section.items() if "value" in entry}
    assert {"test_auc", "test_accuracy", "test_f1", "test_false_positive_rate"} <= set(expected)
    expected["champion_value"] = 0.7
    expected["champion_improvement"] = tracking["comparison"]["improvement"]
    for item in tracking["job"]["FinalMetricDataList"]:
        expected[item["MetricName"].replace(":", "_")] = item["Value"]
    assert run.data.metrics == pytest.approx(expected)
    assert "test_confusion_matrix" not in run.data.metrics
    # AND the lineage tags
    tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
    assert tags == {
        "data.manifest_uri": MANIFEST,
        "data.manifest_sha256": "a" * 64,
        "data.version": "20260101T000000Z-0a1b2c3d",
        "sagemaker.training_job_arn": tracking["job"]["TrainingJobArn"],
        "sagemaker.pipeline_execution_arn": EXECUTION_ARN,
        "source_revision": "3f2a9c1",
        "gate.metric": "auc",
    }
    # AND both evaluation files, unchanged
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking["store"].as_uri())
    logged = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, track.ARTIFACT_PATH)}
    assert logged == {pd.EVALUATION_FILE, pd.COMPARISON_FILE}
    downloaded = Path(client.download_artifacts(run.info.run_id, f"{track.ARTIFACT_PATH}/{pd.EVALUATION_FILE}"))
    assert json.loads(downloaded.read_text()) == tracking["report"]
    assert f"track: run {run.info.run_id} ({RUN})" in capsys.readouterr().out


def test_a_retried_step_logs_into_the_same_run(tracking):
    # WHEN the step runs twice for one execution, then once for another
    assert track.main(arguments(tracking), install=must_not_install) == 0
    assert track.main(arguments(tracking), install=must_not_install) == 0
    assert track.main(arguments(tracking, **{"run-name": "second0execution"}), install=must_not_install) == 0
    # THEN there is one run per execution
    assert sorted(r.info.run_name for r in runs(tracking["store"])) == sorted([RUN, "second0execution"])


def test_without_a_champion_no_champion_metrics_are_logged(tracking):
    # GIVEN an execution without a champion
    comparison = evaluate.champion_comparison("auc", True, 0.9, 0.0)
    (tracking["evaluation_dir"] / pd.COMPARISON_FILE).write_text(json.dumps(comparison))
    # WHEN
    assert track.main(arguments(tracking), install=must_not_install) == 0
    # THEN
    (run,) = runs(tracking["store"])
    assert "champion_value" not in run.data.metrics
    assert "champion_improvement" not in run.data.metrics
    assert run.data.metrics["test_auc"] > 0


def test_the_pins_are_installed_when_mlflow_is_missing(tracking, monkeypatch):
    # GIVEN mlflow cannot be imported until the installer has run
    import mlflow

    monkeypatch.setitem(sys.modules, "mlflow", None)
    installed: list[list[str]] = []

    def install(requirements: Any) -> None:
        installed.append(list(requirements))
        monkeypatch.setitem(sys.modules, "mlflow", mlflow)

    # WHEN
    code = track.main(arguments(tracking), install=install)
    # THEN the construct's pins were installed, once, and the run was logged
    assert code == 0
    assert installed == [list(PINS)]
    assert len(runs(tracking["store"])) == 1


def test_a_tracking_server_arn_needs_the_sagemaker_plugin_too(monkeypatch):
    # GIVEN mlflow is importable but the SageMaker plugin is not
    monkeypatch.setitem(sys.modules, "sagemaker_mlflow", None)
    installed: list[Sequence[str]] = []
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/churn"
    # WHEN / THEN the pins are installed for an ARN; the plugin is still missing afterwards here
    with pytest.raises(track.TrackingError, match=r"sagemaker_mlflow still cannot be imported after installing"):
        track.import_mlflow(arn, PINS, installed.append)
    assert installed == [PINS]
    # AND a plain tracking URI needs mlflow only
    assert track.import_mlflow("file:///tmp/mlruns", PINS, must_not_install).__name__ == "mlflow"


def test_a_failed_pip_install_names_the_network_requirement(monkeypatch):
    # GIVEN pip fails (no route to PyPI)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 1))
    # WHEN / THEN
    with pytest.raises(track.TrackingError, match=r"outbound HTTPS to PyPI .*logging_image_uri"):
        track.pip_install(PINS)


# ------------------------------------------------------------------------------------------------
# Expected failures: one clear message, exit status 1, no run
# ------------------------------------------------------------------------------------------------


def assert_failed(code: int, capsys: pytest.CaptureFixture[str], tracking: dict[str, Any], expected: str) -> None:
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("track failed: ")
    assert expected in err
    assert "Traceback" not in err
    assert tracking["message"].read_text().startswith("track failed: ")
    assert runs(tracking["store"]) == []


def test_no_tracking_arn_fails_clearly(tracking, monkeypatch, capsys):
    # GIVEN
    monkeypatch.delenv(track.TRACKING_ARN_ENV)
    # WHEN
    code = track.main(arguments(tracking), install=must_not_install)
    # THEN
    assert_failed(code, capsys, tracking, "the MLFLOW_TRACKING_ARN environment variable is not set")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no evaluation report at"),
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "holds a list, not the JSON object of a evaluation report"),
        ('{"auc": 0.9}', "has no '<problem type>_metrics' section (found: auc)"),
        ('{"binary_classification_metrics": {"auc": 0.9}}', "has no metric with a numeric 'value'"),
        ('{"binary_classification_metrics": {"auc": {"value": "high"}}}', "has no metric with a numeric 'value'"),
        ('{"regression_metrics": []}', "has no '<problem type>_metrics' section"),
    ],
    ids=["missing", "not-json", "list", "no-section", "bare-number", "string-value", "section-list"],
)
def test_a_missing_or_malformed_evaluation_fails_clearly(tracking, capsys, content, expected):
    # GIVEN
    path = tracking["evaluation_dir"] / pd.EVALUATION_FILE
    if content is None:
        path.unlink()
    else:
        path.write_text(content)
    # WHEN
    code = track.main(arguments(tracking), install=must_not_install)
    # THEN
    assert_failed(code, capsys, tracking, expected)


def test_a_malformed_comparison_fails_clearly(tracking, capsys):
    # GIVEN
    (tracking["evaluation_dir"] / pd.COMPARISON_FILE).write_text('"improvement"')
    # WHEN
    code = track.main(arguments(tracking), install=must_not_install)
    # THEN
    assert_failed(code, capsys, tracking, "holds a str, not the JSON object of a champion comparison")


def test_a_training_job_that_cannot_be_described_fails_clearly(tracking, capsys):
    # WHEN
    code = track.main(arguments(tracking, **{"training-job-name": "no-such-job"}), install=must_not_install)
    # THEN
    assert_failed(code, capsys, tracking, "cannot describe training job 'no-such-job'")
    assert "sagemaker:DescribeTrainingJob" in tracking["message"].read_text()


def test_missing_mlflow_without_requirements_fails_clearly(tracking, monkeypatch, capsys):
    # GIVEN an image without mlflow and no pins to install
    monkeypatch.setitem(sys.modules, "mlflow", None)
    argv = [a for a in arguments(tracking) if not a.startswith("--requirement=")]
    # WHEN
    code = track.main(argv, install=must_not_install)
    # THEN
    err = capsys.readouterr().err
    assert code == 1
    assert "mlflow cannot be imported and no --requirement was given" in err
    assert "Traceback" not in err


def test_a_refusing_tracking_server_fails_clearly(tracking, monkeypatch, capsys):
    # GIVEN a tracking URI MLflow cannot use
    monkeypatch.setenv(track.TRACKING_ARN_ENV, "unknown-scheme://server")
    # WHEN
    code = track.main(arguments(tracking), install=must_not_install)
    # THEN
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("track failed: logging to the MLflow tracking server unknown-scheme://server failed")
    assert "Traceback" not in err


# ------------------------------------------------------------------------------------------------
# Pieces
# ------------------------------------------------------------------------------------------------


def test_training_metrics_sanitize_names_and_keep_the_billable_time():
    # GIVEN a DescribeTrainingJob response of the built-in XGBoost algorithm
    job = {
        "FinalMetricDataList": [
            {"MetricName": "validation:auc", "Value": 0.97},
            {"MetricName": "train:auc", "Value": 0.99},
            {"MetricName": "validation:logloss", "Value": float("nan")},
            {"Value": 1.0},
        ],
        "BillableTimeInSeconds": 88,
        "TrainingTimeInSeconds": 120,
    }
    # THEN
    assert track.training_metrics(job) == {
        "validation_auc": 0.97,
        "train_auc": 0.99,
        "billable_seconds": 88.0,
        "training_seconds": 120.0,
    }
    assert track.training_metrics({}) == {}


def test_training_params_of_the_builtin_algorithm_are_taken_as_they_are():
    # GIVEN the XGBoost defaults of the pipeline
    job = {"HyperParameters": dict(pd.DEFAULT_HYPERPARAMETERS[pd.ProblemType.BINARY_CLASSIFICATION])}
    # THEN
    assert track.training_params(job) == job["HyperParameters"]
    assert track.training_params({"HyperParameters": {"list": '"[1, 2]"', "bad": '"unterminated"x"'}}) == {
        "list": "[1, 2]",
        "bad": 'unterminated"x',
    }


def test_regression_reports_are_read_too():
    # GIVEN
    report = evaluate.evaluation_report("regression", {"rmse": 1.5, "mse": 2.25, "mae": 1.0, "r2": float("nan")})
    # THEN undefined metrics (null values) are left out
    assert track.evaluation_metrics(report, Path("evaluation.json")) == {
        "test_rmse": 1.5,
        "test_mse": 2.25,
        "test_mae": 1.0,
    }


def test_region_comes_from_the_tracking_server_arn():
    # THEN
    assert track.region_of("arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/x") == "eu-west-1"
    assert track.region_of("file:///tmp/mlruns") is None


# ------------------------------------------------------------------------------------------------
# The script and the definition agree
# ------------------------------------------------------------------------------------------------


def _resolve(value: Any, values: dict[str, str]) -> str:
    """A container argument with every ``Get`` replaced by ``values[<reference>]``."""
    if isinstance(value, str):
        return value
    if "Get" in value:
        return values[value["Get"]]
    body = value["Std:Join"]
    return str(body["On"]).join(_resolve(v, values) for v in body["Values"])


def test_the_definition_passes_arguments_track_accepts():
    # GIVEN the Track step of a definition with MLflow
    spec = pd.PipelineSpec(
        role_arn="arn:aws:iam::123456789012:role/pipeline",
        bucket_name="artifacts",
        model_package_group_name="churn-models",
        sklearn_image_uri="sklearn",
        training_image_uri="xgboost",
        model_monitor_image_uri="monitor",
        preprocess_script=pd.ScriptSource.from_uri("s3://assets/p.py"),
        evaluate_script=pd.ScriptSource.from_uri("s3://assets/e.py"),
        tracking_script=pd.ScriptSource.from_uri("s3://assets/t.py"),
        mlflow_tracking_arn="arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/churn",
        mlflow_client_requirements=PINS,
        source_revision="3f2a9c1",
    )
    (step,) = [s for s in pd.build_pipeline_definition(spec)["Steps"] if s["Name"] == pd.TRACK]
    values = {
        "Steps.Train.TrainingJobName": JOB,
        "Execution.PipelineName": EXPERIMENT,
        "Execution.PipelineExecutionId": RUN,
        "Execution.PipelineExecutionArn": EXECUTION_ARN,
        "Parameters.InputManifestUri": MANIFEST,
        "Parameters.ManifestSha256": pd.UNVERIFIED_SHA256,
        "Parameters.DataVersion": "unknown",
    }
    argv = [_resolve(a, values) for a in step["Arguments"]["AppSpecification"]["ContainerArguments"]]
    # WHEN
    args = track.parse_args(argv)
    # THEN
    assert args.evaluation_dir == Path(pd.EVALUATION_INPUT_DIR)
    assert (args.training_job_name, args.experiment_name, args.run_name) == (JOB, EXPERIMENT, RUN)
    assert (args.manifest_uri, args.manifest_sha256, args.data_version) == (MANIFEST, "unverified", "unknown")
    assert (args.pipeline_execution_arn, args.source_revision) == (EXECUTION_ARN, "3f2a9c1")
    assert args.requirement == list(PINS)
    assert step["Arguments"]["Environment"] == {track.TRACKING_ARN_ENV: spec.mlflow_tracking_arn}


def test_track_names_match_the_definition():
    # THEN
    assert track.TRACKING_ARN_ENV == pd.MLFLOW_TRACKING_ARN_ENV
    assert track.EVALUATION_FILE == pd.EVALUATION_FILE
    assert track.COMPARISON_FILE == pd.COMPARISON_FILE


def test_track_runs_as_a_script_outside_the_package(tmp_path):
    # GIVEN a copy of the script alone, as the processing job downloads it, and no tracking server
    script = tmp_path / "code" / "5e6f.py"
    script.parent.mkdir()
    script.write_bytes(TRACK_SCRIPT.read_bytes())
    env = {"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"}
    argv = ["--evaluation-dir", str(tmp_path), "--training-job-name", JOB, "--experiment-name", EXPERIMENT]
    argv += ["--run-name", RUN, "--message-file", str(tmp_path / "message")]
    # WHEN
    result = subprocess.run(
        [sys.executable, str(script), *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    # THEN it starts, and fails with the one clear message
    assert result.returncode == 1
    assert result.stderr.startswith("track failed: the MLFLOW_TRACKING_ARN environment variable is not set")
    assert (tmp_path / "message").read_text().startswith("track failed: ")
