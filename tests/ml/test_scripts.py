"""The pipeline's ML scripts, run locally: preprocess → train (scikit-learn) → evaluate.

The data is scikit-learn's bundled breast cancer dataset (no download). The built-in XGBoost
container cannot run offline, so training uses ``train.py``; the XGBoost loading path of
``evaluate.py`` runs only where the ``xgboost`` package is installed.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cdk_mlops import pipeline_definition as pd
from cdk_mlops.constructs.common import CLARIFY_ENDPOINT_PREFIX
from cdk_mlops.ml import (
    EVALUATE_SCRIPT,
    PREPROCESS_SCRIPT,
    SCRIPTS_DIR,
    TRACK_SCRIPT,
    TRAIN_SCRIPT,
    evaluate,
    preprocess,
    train,
)

# Trains real models (scikit-learn, XGBoost) and runs the scripts as processes: seconds, not
# the edit-test loop (`pytest tests/ml` is the loop for the ML scripts).
pytestmark = pytest.mark.slow

LABEL = "diagnosis"
#: A definition of the default pipeline: it says which step's output feeds which step.
SPEC = pd.PipelineSpec(
    role_arn="arn:aws:iam::123456789012:role/pipeline",
    bucket_name="artifacts",
    model_package_group_name="models",
    sklearn_image_uri="sklearn",
    training_image_uri="xgboost",
    model_monitor_image_uri="model-monitor",
    preprocess_script=pd.ScriptSource.from_uri("s3://assets/preprocess.py"),
    evaluate_script=pd.ScriptSource.from_uri("s3://assets/evaluate.py"),
)


def write_dataset(directory: Path, *, parts: int = 2, rows: slice = slice(None)) -> list[Path]:
    """The breast cancer dataset as CSV files with a header, the label in the middle."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    features = [name.replace(" ", "_") for name in data.feature_names]
    header = [*features[:3], LABEL, *features[3:]]
    table = [[*x[:3], int(y), *x[3:]] for x, y in zip(data.data[rows], data.target[rows], strict=True)]
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, chunk in enumerate(np.array_split(np.arange(len(table)), parts)):
        path = directory / f"part-{index}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(table[i] for i in chunk)
        paths.append(path)
    return paths


def run_preprocess(*args: str | Path, tmp: Path) -> int:
    return preprocess.main([*map(str, args), "--message-file", str(tmp / "message")])


def read_rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def baseline_dataset_source(step: str = pd.DATA_QUALITY_BASELINE) -> tuple[str, str]:
    """(step, output name) whose files a baseline step analyses, as the definition wires it."""
    definition = pd.build_pipeline_definition(SPEC)
    (source,) = [i for i in pd.job_s3_inputs(definition) if i.step == step]
    match = re.fullmatch(
        r"Steps\.(\w+)\.ProcessingOutputConfig\.Outputs\['(\w+)'\]\.S3Output\.S3Uri", source.s3_uri["Get"]
    )
    assert match is not None, source
    return match.group(1), match.group(2)


def read_dataset(directory: Path) -> tuple[list[str], np.ndarray]:
    """Header and values of the header'd CSV files in a directory (what the analyzer reads)."""
    (path,) = sorted(directory.glob("*.csv"))
    rows = read_rows(path)
    return rows[0], np.array(rows[1:], dtype=np.float64)


def pack_model(model_dir: Path, artifact_dir: Path) -> Path:
    """model.tar.gz as SageMaker packs a training job's /opt/ml/model."""
    artifact_dir.mkdir(parents=True, exist_ok=True)
    archive = artifact_dir / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in model_dir.iterdir():
            tar.add(path, arcname=path.name)
    return archive


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Preprocess, train and evaluate once; the tests below look at the files each step left."""
    root = tmp_path_factory.mktemp("run")
    write_dataset(root / "data")
    out = root / "out"
    assert run_preprocess("--input-dir", root / "data", "--output-dir", out, "--label-column", LABEL, tmp=root) == 0
    model = root / "model"
    assert (
        train.main(
            [
                "--train",
                str(out / "train"),
                "--validation",
                str(out / "validation"),
                "--model-dir",
                str(model),
                "--max-iter",
                "40",
            ]
        )
        == 0
    )
    artifact = root / "artifact"
    pack_model(model, artifact)
    evaluation = root / "evaluation"
    baseline = root / "baseline-dataset"
    predictions = root / "test-predictions"
    assert (
        evaluate.main(
            [
                "--model-dir",
                str(artifact),
                "--test-dir",
                str(out / "test"),
                "--output-dir",
                str(evaluation),
                "--metric",
                "auc",
                "--champion-metric",
                "0.5",
                "--baseline-dir",
                str(out / pd.OUTPUT_BASELINE),
                "--baseline-output-dir",
                str(baseline),
                "--predictions-output-dir",
                str(predictions),
            ]
        )
        == 0
    )
    # Each ProcessingOutput of the definition, by (step, output name), as its local folder.
    outputs = {(pd.PREPROCESS, p.name): p for p in out.iterdir() if p.is_dir()}
    outputs |= {
        (pd.EVALUATE, pd.OUTPUT_EVALUATION): evaluation,
        (pd.EVALUATE, pd.OUTPUT_BASELINE): baseline,
        (pd.EVALUATE, pd.OUTPUT_PREDICTIONS): predictions,
    }
    return {
        "root": root,
        "out": out,
        "model": model,
        "artifact": artifact,
        "evaluation": evaluation,
        "outputs": outputs,
    }


# ------------------------------------------------------------------------------------------------
# preprocess.py
# ------------------------------------------------------------------------------------------------


def test_preprocess_writes_label_first_splits_where_the_pipeline_reads_them(pipeline_run):
    # GIVEN
    out = pipeline_run["out"]
    # THEN every output sits in its ProcessingOutput folder, under the name the definition uses
    train_rows = read_rows(out / pd.OUTPUT_TRAIN / pd.TRAIN_FILE)
    validation_rows = read_rows(out / pd.OUTPUT_VALIDATION / pd.VALIDATION_FILE)
    test_rows = read_rows(out / pd.OUTPUT_TEST / pd.TEST_FILE)
    baseline_rows = read_rows(out / pd.OUTPUT_BASELINE / pd.BASELINE_FILE)
    # AND the splits are 70/15/15 of the 569 rows, with no header and the label first
    assert (len(train_rows), len(validation_rows), len(test_rows)) == (398, 86, 85)
    assert all(row[0] in {"0", "1"} for row in train_rows + validation_rows + test_rows)
    assert all(len(row) == 31 for row in train_rows)
    # AND the baseline copy is the train split with its header, label first
    assert baseline_rows[0][0] == LABEL
    assert len(baseline_rows[0]) == 31
    assert baseline_rows[1:] == train_rows


def test_preprocess_splits_are_disjoint_stratified_and_complete(pipeline_run):
    # GIVEN
    out = pipeline_run["out"]
    splits = [
        read_rows(out / name / file)
        for name, file in (("train", "train.csv"), ("validation", "validation.csv"), ("test", "test.csv"))
    ]
    # THEN
    as_tuples = [{tuple(r) for r in rows} for rows in splits]
    assert sum(len(s) for s in as_tuples) == 569
    assert not as_tuples[0] & as_tuples[1]
    assert not as_tuples[0] & as_tuples[2]
    assert not as_tuples[1] & as_tuples[2]
    positive_share = [np.mean([row[0] == "1" for row in rows]) for rows in splits]
    assert max(positive_share) - min(positive_share) < 0.02  # 357/569 = 0.627 in each split


def test_preprocess_report_records_the_run(pipeline_run):
    # WHEN
    report = json.loads((pipeline_run["out"] / pd.OUTPUT_REPORT / pd.REPORT_FILE).read_text())
    # THEN
    assert report["rows"] == 569
    assert report["label_column"] == LABEL
    assert report["split"] == {"seed": 42, "train": 398, "validation": 86, "test": 85, "baseline": 398}
    assert report["source"]["files"] == ["part-0.csv", "part-1.csv"]
    assert report["data_validation"] == {"checked": False, "constraints_uri": ""}


def test_preprocess_is_deterministic_and_seeded(tmp_path):
    # GIVEN
    write_dataset(tmp_path / "data")
    # WHEN
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        assert (
            run_preprocess(
                "--input-dir",
                tmp_path / "data",
                "--output-dir",
                tmp_path / name,
                "--seed",
                seed,
                "--label-column",
                LABEL,
                tmp=tmp_path,
            )
            == 0
        )
    # THEN
    first, again, other = ((tmp_path / n / "train" / "train.csv").read_bytes() for n in ("a", "b", "c"))
    assert first == again
    assert first != other


def _manifest(data_dir: Path, files: list[Path], dataset: str = "cancer") -> dict[str, Any]:
    from cdk_mlops import datasets

    entries: list[dict[str, Any]] = []
    for path in files:
        key = f"datasets/{dataset}/{path.name}"
        target = data_dir / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
        etag = hashlib.md5(path.read_bytes()).hexdigest()  # an S3 ETag is the MD5 of a simple upload
        entries.append({"key": key, "version_id": f"v{len(entries)}", "etag": etag, "size": path.stat().st_size})
    sha = datasets.manifest_digest(
        dataset, [datasets.ManifestEntry(e["key"], e["version_id"], e["etag"], e["size"]) for e in entries]
    )
    return {
        "bucket": "data-bucket",
        "dataset": dataset,
        "created_at": "2024-01-01T00:00:00Z",
        "sha256": sha,
        "entries": entries,
    }


def test_preprocess_reads_a_manifest_like_the_pipeline_does(tmp_path):
    # GIVEN a manifest downloaded into the manifest input folder, and the objects it lists
    files = write_dataset(tmp_path / "csv")
    manifest = _manifest(tmp_path / "bucket", files)
    manifest_dir = tmp_path / "input" / "manifest"
    manifest_dir.mkdir(parents=True)
    (manifest_dir / "20240101T000000Z-0123.json").write_text(json.dumps(manifest))
    # WHEN
    code = run_preprocess(
        "--manifest-dir",
        manifest_dir,
        "--data-dir",
        tmp_path / "bucket",
        "--output-dir",
        tmp_path / "out",
        "--manifest-uri",
        "s3://data-bucket/manifests/cancer/20240101T000000Z-0123.json",
        "--manifest-sha256",
        manifest["sha256"],
        "--label-column",
        LABEL,
        tmp=tmp_path,
    )
    # THEN
    assert code == 0
    report = json.loads((tmp_path / "out" / "report" / pd.REPORT_FILE).read_text())
    assert report["source"]["sha256"] == manifest["sha256"]
    assert report["source"]["objects"] == 2
    assert report["rows"] == 569


def test_preprocess_digest_matches_the_dataset_module():
    # GIVEN
    from cdk_mlops import datasets

    entries: list[dict[str, Any]] = [
        {"key": "datasets/d/b.csv", "version_id": "2", "etag": "bb", "size": 2},
        {"key": "datasets/d/a.csv", "version_id": "1", "etag": "aa", "size": 1},
    ]
    # THEN
    expected = datasets.manifest_digest("d", [datasets.ManifestEntry(**e) for e in entries])
    assert preprocess.manifest_digest("d", entries) == expected


def test_preprocess_fails_when_the_manifest_is_not_the_one_the_run_was_started_for(tmp_path):
    # GIVEN
    manifest = _manifest(tmp_path / "bucket", write_dataset(tmp_path / "csv"))
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    # WHEN
    code = run_preprocess(
        "--manifest",
        tmp_path / "m.json",
        "--data-dir",
        tmp_path / "bucket",
        "--output-dir",
        tmp_path / "out",
        "--manifest-sha256",
        "f" * 64,
        tmp=tmp_path,
    )
    # THEN the step fails and SageMaker's ExitMessage says why
    assert code == 1
    message = (tmp_path / "message").read_text()
    assert message.startswith(f"preprocess failed: manifest sha256 is '{manifest['sha256']}' but the execution")
    assert not (tmp_path / "out" / "train").exists()


def test_preprocess_fails_on_an_edited_manifest(tmp_path):
    # GIVEN a manifest whose entries no longer match its digest
    manifest = _manifest(tmp_path / "bucket", write_dataset(tmp_path / "csv"))
    manifest["entries"].pop()
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    # WHEN
    code = run_preprocess(
        "--manifest",
        tmp_path / "m.json",
        "--data-dir",
        tmp_path / "bucket",
        "--output-dir",
        tmp_path / "out",
        tmp=tmp_path,
    )
    # THEN
    assert code == 1
    assert "does not match its entries" in (tmp_path / "message").read_text()


def test_preprocess_fails_on_a_changed_object(tmp_path):
    # GIVEN an object whose size differs from the manifest
    manifest = _manifest(tmp_path / "bucket", write_dataset(tmp_path / "csv"))
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    with (tmp_path / "bucket" / manifest["entries"][0]["key"]).open("a") as handle:
        handle.write("0" * 31 + "\n")
    # WHEN
    code = run_preprocess(
        "--manifest",
        tmp_path / "m.json",
        "--data-dir",
        tmp_path / "bucket",
        "--output-dir",
        tmp_path / "out",
        tmp=tmp_path,
    )
    # THEN
    assert code == 1
    assert "the snapshot is not intact" in (tmp_path / "message").read_text()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--data-version", "v1 (draft)"], "pipeline parameter DataVersion='v1 (draft)' cannot be recorded"),
        (["--trigger-reason", "line\nbreak"], "pipeline parameter TriggerReason='line\\nbreak' cannot be the model"),
        (["--label-column", "outcome"], "label column 'outcome' is not in the header"),
        (["--train-fraction", "0.9", "--validation-fraction", "0.1"], "must be < 1, leaving rows for the test split"),
    ],
)
def test_preprocess_fails_fast_on_bad_arguments(tmp_path, arguments, message):
    # GIVEN
    write_dataset(tmp_path / "data")
    # WHEN
    code = run_preprocess("--input-dir", tmp_path / "data", "--output-dir", tmp_path / "out", *arguments, tmp=tmp_path)
    # THEN
    assert code == 1
    assert message in (tmp_path / "message").read_text()


def test_preprocess_accepts_free_text_trigger_reasons(tmp_path):
    # GIVEN a reason as the retrain trigger writes it
    write_dataset(tmp_path / "data")
    # WHEN
    code = run_preprocess(
        "--input-dir",
        tmp_path / "data",
        "--output-dir",
        tmp_path / "out",
        "--label-column",
        LABEL,
        "--trigger-reason",
        "scheduled retrain (2024-01-01T03:00:00Z); quiet for 5m",
        tmp=tmp_path,
    )
    # THEN
    assert code == 0


def test_preprocess_rejects_non_numeric_values_and_bad_labels(tmp_path):
    # GIVEN
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.csv").write_text("y,x\n" + "1,2\n" * 5 + "0,abc\n" + "0,1\n" * 5)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.csv").write_text("y,x\n" + "2,1\n0,1\n" * 6)
    # WHEN / THEN
    assert run_preprocess("--input-dir", tmp_path / "text", "--output-dir", tmp_path / "o1", tmp=tmp_path) == 1
    assert "a.csv:7: column 'x' holds 'abc', not a number" in (tmp_path / "message").read_text()
    assert run_preprocess("--input-dir", tmp_path / "labels", "--output-dir", tmp_path / "o2", tmp=tmp_path) == 1
    assert "labels must be 0 or 1, got [0.0, 2.0]" in (tmp_path / "message").read_text()


# ------------------------------------------------------------------------------------------------
# Data validation against a Model Monitor constraints.json
# ------------------------------------------------------------------------------------------------


def constraints_for(baseline_csv: Path) -> dict[str, Any]:
    """A constraints.json in the Model Monitor analyzer's format for a header'd CSV."""
    rows = read_rows(baseline_csv)
    features = []
    for index, name in enumerate(rows[0]):
        integral = all(float(r[index]).is_integer() for r in rows[1:])
        features.append(
            {
                "name": name,
                "inferred_type": "Integral" if integral else "Fractional",
                "completeness": 1.0,
                "num_constraints": {"is_non_negative": True},
            }
        )
    return {"version": 0.0, "features": features, "monitoring_config": {"evaluate_constraints": "Enabled"}}


def registered_constraints(pipeline_run: dict[str, Any]) -> dict[str, Any]:
    """The constraints the DataQualityBaseline step would compute for this run's model package."""
    (dataset,) = pipeline_run["outputs"][baseline_dataset_source()].glob("*.csv")
    return constraints_for(dataset)


def test_data_that_matches_the_baseline_passes(pipeline_run, tmp_path):
    # GIVEN constraints from the previous run's baseline
    constraints = tmp_path / "constraints.json"
    constraints.write_text(json.dumps(registered_constraints(pipeline_run)))
    # WHEN the same data is preprocessed again against them
    code = run_preprocess(
        "--input-dir",
        pipeline_run["root"] / "data",
        "--output-dir",
        tmp_path / "out",
        "--label-column",
        LABEL,
        "--baseline-constraints-uri",
        str(constraints),
        tmp=tmp_path,
    )
    # THEN
    assert code == 0
    report = json.loads((tmp_path / "out" / "report" / pd.REPORT_FILE).read_text())
    assert report["data_validation"]["checked"] is True
    assert report["data_validation"]["violations"] == []


def _drifted_data(source: Path, target: Path) -> None:
    """The dataset without its last column, with a negative value and a hole in the first feature."""
    target.mkdir(parents=True)
    for path in sorted(source.glob("*.csv")):
        rows = read_rows(path)
        rows = [row[:-1] for row in rows]
        rows[1][0] = "-1.5"
        rows[2][0] = ""
        buffer = io.StringIO()
        csv.writer(buffer).writerows(rows)
        (target / path.name).write_text(buffer.getvalue())


def test_data_that_violates_the_baseline_fails_the_run(pipeline_run, tmp_path):
    # GIVEN
    constraints = tmp_path / "constraints.json"
    constraints.write_text(json.dumps(registered_constraints(pipeline_run)))
    _drifted_data(pipeline_run["root"] / "data", tmp_path / "data")
    # WHEN
    code = run_preprocess(
        "--input-dir",
        tmp_path / "data",
        "--output-dir",
        tmp_path / "out",
        "--label-column",
        LABEL,
        "--baseline-constraints-uri",
        f"file://{constraints}",
        tmp=tmp_path,
    )
    # THEN nothing is written for training, and the report and message say why
    assert code == 1
    assert not (tmp_path / "out" / "train").exists()
    report = json.loads((tmp_path / "out" / "report" / pd.REPORT_FILE).read_text())
    checks = {(v["feature_name"], v["constraint_check_type"]) for v in report["data_validation"]["violations"]}
    assert checks == {
        ("worst_fractal_dimension", "missing_column_check"),
        ("mean_radius", "completeness_check"),
        ("mean_radius", "non_negative_check"),
    }
    assert "data validation failed against file://" in (tmp_path / "message").read_text()


def test_violations_only_warn_when_asked(pipeline_run, tmp_path):
    # GIVEN
    constraints = tmp_path / "constraints.json"
    constraints.write_text(json.dumps(registered_constraints(pipeline_run)))
    _drifted_data(pipeline_run["root"] / "data", tmp_path / "data")
    # WHEN
    code = run_preprocess(
        "--input-dir",
        tmp_path / "data",
        "--output-dir",
        tmp_path / "out",
        "--label-column",
        LABEL,
        "--baseline-constraints-uri",
        str(constraints),
        "--on-violation",
        "warn",
        tmp=tmp_path,
    )
    # THEN
    assert code == 0
    assert (tmp_path / "out" / "train" / pd.TRAIN_FILE).exists()
    report = json.loads((tmp_path / "out" / "report" / pd.REPORT_FILE).read_text())
    assert len(report["data_validation"]["violations"]) == 3


def test_the_baselines_output_column_is_not_compared_with_the_labels():
    # GIVEN constraints whose first feature describes the model's output (a non-negative Integral
    # value here), and data whose labels are negative fractions
    table = preprocess.Table(["y", "x"], np.array([[-1.5, 2.0], [0.5, -3.0]]))
    output = {"name": "prediction", "inferred_type": "Integral", "num_constraints": {"is_non_negative": True}}
    feature = {"name": "x", "inferred_type": "Integral", "num_constraints": {"is_non_negative": True}}
    # WHEN
    violations = preprocess.validate(table, {"features": [output, feature]})
    # THEN only the feature is checked: labels are not predictions, and neither column is missing or extra
    assert violations == [
        {
            "feature_name": "x",
            "constraint_check_type": "non_negative_check",
            "description": "column 'x' has negative values (min -3)",
        }
    ]


def test_integral_columns_must_hold_whole_numbers():
    # GIVEN
    table = preprocess.Table(["y", "count"], np.array([[1.0, 2.0], [0.0, 2.5]]))
    constraints = {
        "features": [{"name": "y", "inferred_type": "Integral"}, {"name": "count", "inferred_type": "Integral"}]
    }
    # WHEN
    violations = preprocess.validate(table, constraints)
    # THEN
    assert violations == [
        {
            "feature_name": "count",
            "constraint_check_type": "data_type_check",
            "description": "column 'count' is Integral in the baseline but holds fractions",
        }
    ]


# ------------------------------------------------------------------------------------------------
# train.py and evaluate.py
# ------------------------------------------------------------------------------------------------


def test_train_saves_a_model_the_serving_functions_load(pipeline_run):
    # GIVEN
    model = train.model_fn(str(pipeline_run["model"]))
    labels, features = train.load_csv_dir(pipeline_run["out"] / "test")
    # WHEN
    scores = train.predict_fn(features, model)
    # THEN probabilities of class 1, as XGBoost's binary:logistic returns
    assert scores.shape == labels.shape
    assert 0.0 <= scores.min() <= scores.max() <= 1.0


def test_evaluate_writes_model_quality_metrics_clearly_above_chance(pipeline_run):
    # WHEN
    report = json.loads((pipeline_run["evaluation"] / pd.EVALUATION_FILE).read_text())
    # THEN
    metrics = report["binary_classification_metrics"]
    assert metrics["auc"]["value"] > 0.9
    assert metrics["auc"]["standard_deviation"] == "NaN"
    assert metrics["accuracy"]["value"] > 0.85
    matrix = metrics["confusion_matrix"]
    assert sum(matrix[a][b] for a in "01" for b in "01") == 85


def test_evaluate_writes_the_champion_comparison_the_gate_reads(pipeline_run):
    # WHEN
    comparison = json.loads((pipeline_run["evaluation"] / pd.COMPARISON_FILE).read_text())
    report = json.loads((pipeline_run["evaluation"] / pd.EVALUATION_FILE).read_text())
    # THEN the JSON paths of the gate resolve in these files
    auc = report["binary_classification_metrics"]["auc"]["value"]
    assert comparison == {
        "metric": "auc",
        "value": auc,
        "champion": 0.5,
        "has_champion": True,
        "higher_is_better": True,
        "improvement": pytest.approx(auc - 0.5),
    }


def test_the_data_quality_baseline_holds_what_the_endpoint_returns_then_what_it_receives(pipeline_run):
    # GIVEN the dataset the DataQualityBaseline step analyses, found through the definition
    header, values = read_dataset(pipeline_run["outputs"][baseline_dataset_source()])
    train_rows = np.array(read_rows(pipeline_run["out"] / pd.OUTPUT_TRAIN / pd.TRAIN_FILE), dtype=np.float64)
    # AND what the endpoint returns for those features (train.py's serving functions)
    returned = train.predict_fn(values[:, 1:], train.model_fn(str(pipeline_run["model"])))
    # THEN the output column, first (Model Monitor merges a captured response before its request),
    # holds the model's probability of class 1, a fraction in [0, 1], not the 0/1 label
    output = values[:, 0]
    assert output == pytest.approx(returned)
    assert 0.0 <= output.min() <= output.max() <= 1.0
    assert not np.all(np.mod(output, 1) == 0)
    # AND the other columns are the request: the features of the training split, named, in order
    assert len(header) == train_rows.shape[1]
    assert LABEL not in header[1:]
    assert np.array_equal(values[:, 1:], train_rows[:, 1:])


def analyzer_environment(spec: pd.PipelineSpec) -> dict[str, str]:
    """The environment of the ModelQualityBaseline step, as the definition writes it."""
    definition = pd.build_pipeline_definition(spec)
    (step,) = [s for s in definition["Steps"] if s["Name"] == pd.MODEL_QUALITY_BASELINE]
    environment: dict[str, str] = step["Arguments"]["Environment"]
    return environment


def test_the_model_quality_baseline_holds_the_test_labels_with_the_models_predictions(pipeline_run):
    # GIVEN the dataset the ModelQualityBaseline step analyses, found through the definition
    header, values = read_dataset(pipeline_run["outputs"][baseline_dataset_source(pd.MODEL_QUALITY_BASELINE)])
    test_rows = np.array(read_rows(pipeline_run["out"] / pd.OUTPUT_TEST / pd.TEST_FILE), dtype=np.float64)
    # THEN the columns the analyzer is told about are the file's columns, by name
    environment = analyzer_environment(SPEC)
    assert header == [
        environment["ground_truth_attribute"],
        environment["probability_attribute"],
        environment["inference_attribute"],
    ]
    assert header == ["label", "probability", "prediction"]
    # AND each test row, in order: its label, the model's probability of class 1, that probability
    # thresholded as the analyzer is told to threshold it
    labels, probabilities, predicted = values[:, 0], values[:, 1], values[:, 2]
    assert np.array_equal(labels, test_rows[:, 0])
    returned = train.predict_fn(test_rows[:, 1:], train.model_fn(str(pipeline_run["model"])))
    assert probabilities == pytest.approx(returned)
    threshold = float(environment["probability_threshold_attribute"])
    assert np.array_equal(predicted, (probabilities >= threshold).astype(np.float64))
    # AND labels and predicted labels are written as classes, probabilities as fractions
    rows = read_rows(pipeline_run["outputs"][(pd.EVALUATE, pd.OUTPUT_PREDICTIONS)] / pd.PREDICTIONS_FILE)[1:]
    assert {row[0] for row in rows} == {"0", "1"}
    assert {row[2] for row in rows} <= {"0", "1"}
    assert all("." in row[1] or "e" in row[1] for row in rows)
    # AND the metrics of the file are those of evaluation.json, which the gate read
    report = json.loads((pipeline_run["evaluation"] / pd.EVALUATION_FILE).read_text())
    metrics = evaluate.binary_classification_metrics(labels, probabilities, threshold)
    assert metrics["auc"] == pytest.approx(report["binary_classification_metrics"]["auc"]["value"])
    assert metrics["accuracy"] == pytest.approx(report["binary_classification_metrics"]["accuracy"]["value"])


def test_a_challenger_worse_than_the_champion_has_negative_improvement(pipeline_run, tmp_path):
    # WHEN
    code = evaluate.main(
        [
            "--model-dir",
            str(pipeline_run["artifact"]),
            "--test-dir",
            str(pipeline_run["out"] / "test"),
            "--output-dir",
            str(tmp_path),
            "--champion-metric",
            "0.9999",
        ]
    )
    # THEN
    assert code == 0
    assert json.loads((tmp_path / pd.COMPARISON_FILE).read_text())["improvement"] < 0


def test_evaluate_reads_extracted_model_files_too(pipeline_run, tmp_path):
    # WHEN the model directory holds model.joblib itself
    code = evaluate.main(
        [
            "--model-dir",
            str(pipeline_run["model"]),
            "--test-dir",
            str(pipeline_run["out"] / "test"),
            "--output-dir",
            str(tmp_path),
            "--metric",
            "f1",
        ]
    )
    # THEN
    assert code == 0
    assert json.loads((tmp_path / pd.COMPARISON_FILE).read_text())["metric"] == "f1"


def test_evaluate_regression(tmp_path):
    # GIVEN a regression dataset through the same scripts
    from sklearn.datasets import load_diabetes

    data = load_diabetes()
    (tmp_path / "data").mkdir()
    with (tmp_path / "data" / "d.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["target", *data.feature_names])
        writer.writerows([y, *x] for x, y in zip(data.data, data.target, strict=True))
    out = tmp_path / "out"
    assert (
        run_preprocess(
            "--input-dir", tmp_path / "data", "--output-dir", out, "--problem-type", "regression", tmp=tmp_path
        )
        == 0
    )
    assert (
        train.main(
            [
                "--train",
                str(out / "train"),
                "--validation",
                str(out / "validation"),
                "--model-dir",
                str(tmp_path / "model"),
                "--problem-type",
                "regression",
                "--max-iter",
                "30",
            ]
        )
        == 0
    )
    # WHEN
    code = evaluate.main(
        [
            "--model-dir",
            str(tmp_path / "model"),
            "--test-dir",
            str(out / "test"),
            "--output-dir",
            str(tmp_path / "eval"),
            "--problem-type",
            "regression",
            "--metric",
            "rmse",
            "--champion-metric",
            "80",
            "--baseline-dir",
            str(out / pd.OUTPUT_BASELINE),
            "--baseline-output-dir",
            str(tmp_path / "baseline-dataset"),
            "--predictions-output-dir",
            str(tmp_path / "test-predictions"),
        ]
    )
    # THEN
    assert code == 0
    # AND the model-quality baseline dataset holds each test target with its predicted value,
    # in the columns the analyzer is told about (no probability for a regressor)
    header, predictions = read_dataset(tmp_path / "test-predictions")
    environment = analyzer_environment(
        replace(SPEC, settings=pd.TrainingSettings(problem_type=pd.ProblemType.REGRESSION, metric_name="rmse"))
    )
    assert environment["problem_type"] == "Regression"
    assert "probability_attribute" not in environment
    assert header == [environment["ground_truth_attribute"], environment["inference_attribute"]]
    test_rows = np.array(read_rows(out / pd.OUTPUT_TEST / pd.TEST_FILE), dtype=np.float64)
    assert np.array_equal(predictions[:, 0], test_rows[:, 0])
    expected = train.predict_fn(test_rows[:, 1:], train.model_fn(str(tmp_path / "model")))
    assert predictions[:, 1] == pytest.approx(expected)
    # AND the baseline's output column is the predicted value the endpoint returns, not the target
    header, values = read_dataset(tmp_path / "baseline-dataset")
    predicted = train.predict_fn(values[:, 1:], train.model_fn(str(tmp_path / "model")))
    assert header[0] == "target"
    assert values[:, 0] == pytest.approx(predicted)
    targets = np.array(read_rows(out / pd.OUTPUT_TRAIN / pd.TRAIN_FILE), dtype=np.float64)[:, 0]
    assert not np.allclose(values[:, 0], targets)
    report = json.loads((tmp_path / "eval" / pd.EVALUATION_FILE).read_text())
    rmse = report["regression_metrics"]["rmse"]["value"]
    assert 30 < rmse < 80  # the target's standard deviation is about 77
    comparison = json.loads((tmp_path / "eval" / pd.COMPARISON_FILE).read_text())
    assert comparison["higher_is_better"] is False
    assert comparison["improvement"] == pytest.approx(80 - rmse)


def test_auc_matches_scikit_learn_with_ties():
    # GIVEN
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500).astype(float)
    scores = np.round(rng.random(500) + labels * 0.3, 1)  # many ties
    # THEN
    assert evaluate.roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))


def test_evaluate_refuses_unsafe_archives(tmp_path):
    # GIVEN an archive that writes outside its directory
    (tmp_path / "model").mkdir()
    with tarfile.open(tmp_path / "model" / "model.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "test.csv").write_text("1,0.5\n0,0.1\n")
    # WHEN
    code = evaluate.main(
        [
            "--model-dir",
            str(tmp_path / "model"),
            "--test-dir",
            str(tmp_path / "test"),
            "--output-dir",
            str(tmp_path / "eval"),
        ]
    )
    # THEN
    assert code == 1
    assert not (tmp_path / "escape.txt").exists()


def test_evaluate_loads_an_xgboost_booster(tmp_path, pipeline_run):
    # GIVEN a booster saved as the built-in XGBoost algorithm saves it
    xgboost = pytest.importorskip("xgboost")
    labels, features = train.load_csv_dir(pipeline_run["out"] / "train")
    booster = xgboost.train({"objective": "binary:logistic"}, xgboost.DMatrix(features, label=labels), 20)
    (tmp_path / "model").mkdir()
    booster.save_model(str(tmp_path / "model" / "xgboost-model"))
    pack_model(tmp_path / "model", tmp_path / "artifact")
    # WHEN
    code = evaluate.main(
        [
            "--model-dir",
            str(tmp_path / "artifact"),
            "--test-dir",
            str(pipeline_run["out"] / "test"),
            "--output-dir",
            str(tmp_path / "eval"),
        ]
    )
    # THEN
    assert code == 0
    report = json.loads((tmp_path / "eval" / pd.EVALUATION_FILE).read_text())
    assert report["binary_classification_metrics"]["auc"]["value"] > 0.9


def test_evaluate_explains_a_missing_xgboost_package(tmp_path, monkeypatch):
    # GIVEN an XGBoost artifact where the package cannot be imported
    monkeypatch.setitem(sys.modules, "xgboost", None)
    (tmp_path / "xgboost-model").write_bytes(b"booster")
    # WHEN / THEN
    with pytest.raises(evaluate.EvaluationError, match="run this script in the XGBoost image"):
        evaluate.load_predictor(tmp_path, "binary_classification")


# ------------------------------------------------------------------------------------------------
# The scripts ship alone and run in older containers
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "script", [PREPROCESS_SCRIPT, TRAIN_SCRIPT, EVALUATE_SCRIPT, TRACK_SCRIPT], ids=lambda p: p.name
)
def test_scripts_are_standalone_and_python_38_compatible(script):
    # GIVEN
    source = script.read_text()
    tree = ast.parse(source, feature_version=(3, 8))  # syntax of the container's interpreter
    # THEN they import nothing from this library
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(name.startswith("cdk_mlops") for name in imported)
    # AND use no 3.10+ runtime features (isinstance with X | Y, zip(strict=...))
    assert "strict=" not in source
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance":
            assert not isinstance(node.args[1], ast.BinOp), f"{script.name}:{node.lineno}"


def test_preprocess_runs_as_a_script_outside_the_package(tmp_path):
    # GIVEN a copy of the script alone, as the processing job downloads it
    write_dataset(tmp_path / "data", rows=slice(0, 100))
    script = tmp_path / "code" / "3f9a.py"
    script.parent.mkdir()
    script.write_bytes(PREPROCESS_SCRIPT.read_bytes())
    # WHEN
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "--input-dir",
            str(tmp_path / "data"),
            "--output-dir",
            str(tmp_path / "out"),
            "--label-column",
            LABEL,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    # THEN
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("preprocess: 100 rows, 31 columns -> train 70, validation 15, test 15")
    assert PREPROCESS_SCRIPT.parent == SCRIPTS_DIR


# ------------------------------------------------------------------------------------------------
# evaluate.py: the SageMaker Clarify configurations
# ------------------------------------------------------------------------------------------------

CLARIFY = pd.ClarifySettings(
    facets=(pd.BiasFacet(name="mean_radius", threshold=14.0), pd.BiasFacet(name="mean_texture", values=(20.0,))),
    group_column="mean_area",
    sample_rows=40,
    shap_num_samples=25,
    shap_baseline_rows=3,
)
CLARIFY_SPEC = replace(SPEC, settings=pd.TrainingSettings(clarify=CLARIFY), clarify_image_uri="clarify")
MODEL_NAME = "pipelines-k1x9xq0f2v3a-ClarifyModel-q2w3e4r5t6"


def clarify_arguments(spec: pd.PipelineSpec, config_dir: Path) -> list[str]:
    """Evaluate's Clarify arguments as the definition writes them, with a model name and a local folder."""
    definition = pd.build_pipeline_definition(spec)
    (step,) = [s for s in definition["Steps"] if s["Name"] == pd.EVALUATE]
    arguments = step["Arguments"]["AppSpecification"]["ContainerArguments"]
    clarify = arguments[arguments.index("--clarify-config-dir") :]
    joined = {
        "Std:Join": {"On": "", "Values": ["--clarify-model-name=", {"Get": f"Steps.{pd.CLARIFY_MODEL}.ModelName"}]}
    }
    assert clarify[2] == joined
    return ["--clarify-config-dir", str(config_dir), f"--clarify-model-name={MODEL_NAME}", *clarify[3:]]


@pytest.fixture(scope="module")
def clarify_run(pipeline_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Evaluate with the Clarify arguments of CLARIFY_SPEC's definition."""
    root = tmp_path_factory.mktemp("clarify")
    out = pipeline_run["out"]
    config_dir = root / "clarify"
    code = evaluate.main(
        [
            *("--model-dir", str(pipeline_run["artifact"]), "--test-dir", str(out / pd.OUTPUT_TEST)),
            *("--output-dir", str(root / "evaluation"), "--metric", "auc"),
            *("--baseline-dir", str(out / pd.OUTPUT_BASELINE), "--baseline-output-dir", str(root / "baseline")),
            *clarify_arguments(CLARIFY_SPEC, config_dir),
        ]
    )
    assert code == 0
    configs = {
        name: json.loads((config_dir / name / pd.ANALYSIS_CONFIG_FILE).read_text())
        for name in pd.CLARIFY_OUTPUTS
        if name != pd.OUTPUT_CLARIFY_DATASET
    }
    header = read_rows(out / pd.OUTPUT_BASELINE / pd.BASELINE_FILE)[0]
    return {"config_dir": config_dir, "configs": configs, "header": header, "out": out}


def test_evaluate_names_the_clarify_files_as_the_definition_does():
    assert evaluate.CLARIFY_OUTPUTS == pd.CLARIFY_OUTPUTS
    assert evaluate.CLARIFY_DATASET_FILE == pd.CLARIFY_DATASET_FILE
    assert evaluate.ANALYSIS_CONFIG_FILE == pd.ANALYSIS_CONFIG_FILE
    assert tuple(a.value for a in pd.ShapAggregation) == evaluate.SHAP_AGG_METHODS


def test_the_clarify_jobs_configurations_name_the_columns_the_model_and_the_groups(clarify_run):
    # GIVEN the header of the training split (label first) and the written configurations
    header, configs = clarify_run["header"], clarify_run["configs"]
    bias = {
        "label_values_or_threshold": [1],
        "facet": [
            {"name_or_index": "mean_radius", "value_or_threshold": [14.0]},
            {"name_or_index": "mean_texture", "value_or_threshold": [20.0]},
        ],
        "group_variable": "mean_area",
    }
    data = {"dataset_type": "text/csv", "headers": header, "label": LABEL}
    predictor = {
        "model_name": MODEL_NAME,
        "instance_type": "ml.m5.large",
        "initial_instance_count": 1,
        "content_type": "text/csv",
        "accept_type": "text/csv",
        # The shadow endpoints' name prefix, the only one the pipeline role may manage.
        "endpoint_name_prefix": CLARIFY_ENDPOINT_PREFIX,
    }
    # THEN the pre-training job: the dataset's columns, the groups, the pre-training methods
    assert configs[pd.OUTPUT_DATA_BIAS_CONFIG] == {**data, **bias, "methods": {"pre_training_bias": {"methods": "all"}}}
    # AND the post-training job: the same with the model the ClarifyModel step created and its threshold
    assert configs[pd.OUTPUT_MODEL_BIAS_CONFIG] == {
        **data,
        **bias,
        "probability_threshold": pd.PROBABILITY_THRESHOLD,
        "methods": {"post_training_bias": {"methods": "all"}},
        "predictor": predictor,
    }
    # AND the SHAP job: the settings' SHAP parameters, a 3-row baseline of the 30 features
    explainability = configs[pd.OUTPUT_EXPLAINABILITY_CONFIG]
    shap = explainability["methods"]["shap"]
    assert {k: v for k, v in shap.items() if k != "baseline"} == {
        "num_samples": 25,
        "agg_method": "mean_abs",
        "use_logit": False,
        "save_local_shap_values": False,
        "seed": 42,
    }
    assert np.array(shap["baseline"]).shape == (3, len(header) - 1)
    assert explainability == {**data, "methods": {"shap": shap}, "predictor": predictor}


def test_the_monitor_configurations_are_what_the_sagemaker_monitors_take(clarify_run):
    # GIVEN
    header, configs = clarify_run["header"], clarify_run["configs"]
    job = configs[pd.OUTPUT_MODEL_BIAS_CONFIG]
    # THEN the bias monitor's: the groups, the headers and the label; no methods, no predictor (it reads captures)
    assert configs[pd.OUTPUT_MODEL_BIAS_MONITOR_CONFIG] == {
        "label_values_or_threshold": job["label_values_or_threshold"],
        "facet": job["facet"],
        "group_variable": "mean_area",
        "headers": header,
        "label": LABEL,
    }
    # AND the explainability monitor's: the job's SHAP method, the endpoint without a model (each environment's
    # ModelMonitor names the model it serves at deploy time), the features only
    explainability = configs[pd.OUTPUT_EXPLAINABILITY_CONFIG]
    endpoint = {k: v for k, v in explainability["predictor"].items() if k != "model_name"}
    assert configs[pd.OUTPUT_EXPLAINABILITY_MONITOR_CONFIG] == {
        "methods": explainability["methods"],
        "predictor": endpoint,
        "headers": header[1:],
    }
    assert MODEL_NAME not in json.dumps(configs[pd.OUTPUT_EXPLAINABILITY_MONITOR_CONFIG])


def test_the_clarify_sample_is_test_rows_label_first_without_a_header(clarify_run):
    # GIVEN
    (path,) = (clarify_run["config_dir"] / pd.OUTPUT_CLARIFY_DATASET).iterdir()
    sample = read_rows(path)
    test_rows = read_rows(clarify_run["out"] / pd.OUTPUT_TEST / pd.TEST_FILE)
    # THEN sample_rows rows of the test split, as many columns as the configurations' headers
    assert path.name == pd.CLARIFY_DATASET_FILE
    assert len(sample) == CLARIFY.sample_rows < len(test_rows)
    assert {len(row) for row in sample} == {len(clarify_run["header"])}
    assert {row[0] for row in sample} <= {"0", "1"}
    # AND each is a row of the test split, in the split's order
    test_values = [tuple(float(v) for v in row) for row in test_rows]
    positions = [test_values.index(tuple(float(v) for v in row)) for row in sample]
    assert positions == sorted(positions)


def test_the_shap_baseline_is_the_k_means_centres_of_the_training_features():
    # GIVEN two well-separated clusters, one value missing
    features = np.array([[0.0, 0.0], [0.2, 0.0], [10.0, 10.0], [10.2, 10.0], [np.nan, 0.1]])
    # WHEN / THEN one row is the features' means (the missing value left out)
    assert evaluate.shap_baseline(features, 1, seed=1) == [pytest.approx([5.1, 4.02])]
    # AND two rows are the clusters' centres, the missing value counted as its column's mean
    centres = sorted(evaluate.shap_baseline(features, 2, seed=1))
    assert centres[0] == pytest.approx([(0.0 + 0.2 + 5.1) / 3, (0.0 + 0.0 + 0.1) / 3])
    assert centres[1] == pytest.approx([10.1, 10.0])


def test_a_facet_that_is_not_a_feature_fails_evaluate_naming_the_columns(pipeline_run, tmp_path, capsys):
    # GIVEN a facet on the label
    spec = replace(SPEC, settings=pd.TrainingSettings(clarify=replace(CLARIFY, facets=(pd.BiasFacet(name="age"),))))
    out = pipeline_run["out"]
    # WHEN
    code = evaluate.main(
        [
            *("--model-dir", str(pipeline_run["artifact"]), "--test-dir", str(out / pd.OUTPUT_TEST)),
            *("--output-dir", str(tmp_path / "evaluation")),
            *("--baseline-dir", str(out / pd.OUTPUT_BASELINE), "--baseline-output-dir", str(tmp_path / "baseline")),
            *clarify_arguments(replace(spec, clarify_image_uri="clarify"), tmp_path / "clarify"),
        ]
    )
    # THEN
    assert code == 1
    error = capsys.readouterr().err
    assert "the Clarify facet 'age' is not a feature of the dataset; features: mean_radius, mean_texture" in error
    assert "fix TrainingSettings.clarify" in error


def test_evaluate_refuses_clarify_without_what_it_needs(tmp_path):
    common = ["--model-dir", str(tmp_path), "--test-dir", str(tmp_path), "--output-dir", str(tmp_path)]
    with pytest.raises(SystemExit):
        evaluate.parse_args([*common, "--clarify-config-dir", str(tmp_path)])
    with pytest.raises(SystemExit):
        evaluate.parse_args([*common, "--problem-type", "regression", "--clarify-config-dir", str(tmp_path)])
    with pytest.raises(SystemExit):
        evaluate.parse_args([*common, "--clarify-facet", '{"name": "x"}'])


@pytest.mark.slow
def test_the_clarify_jobs_configurations_pass_the_sagemaker_sdks_schema(clarify_run, monkeypatch):
    # GIVEN the SDK's schema of analysis_config.json, imported without any AWS call
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    from cdk_mlops import sdk

    with sdk.offline() as refused:
        from sagemaker.core.clarify import ANALYSIS_CONFIG_SCHEMA_V1_0  # type: ignore[import-untyped]
    assert refused == []
    # THEN each job's configuration is valid
    for name in (pd.OUTPUT_DATA_BIAS_CONFIG, pd.OUTPUT_MODEL_BIAS_CONFIG, pd.OUTPUT_EXPLAINABILITY_CONFIG):
        ANALYSIS_CONFIG_SCHEMA_V1_0.validate(clarify_run["configs"][name])
