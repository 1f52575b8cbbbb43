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
    assert report["split"] == {"seed": 42, "train": 398, "validation": 86, "test": 85}
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
