"""Evaluate a trained model on the test split: ``evaluation.json`` and the champion comparison.

Runs as the ``Evaluate`` step of the training pipeline and locally::

    python evaluate.py --model-dir model/ --test-dir out/test --output-dir eval/ --metric auc

Model
    ``--model-dir`` holds the training job's ``model.tar.gz`` (or its extracted files):
    ``xgboost-model``, the booster the built-in XGBoost algorithm saves, which needs the
    ``xgboost`` package (the pipeline runs this script in the XGBoost image for that reason);
    or ``model.joblib``, a scikit-learn estimator as ``train.py`` saves it (what the local
    tests use, since the XGBoost container cannot run offline). Both are deserialized with
    pickle-based loaders, which is safe only because the artifact comes from this pipeline's
    own training job in its own artifacts bucket.

Test data
    ``--test-dir``: label-first CSV without a header, as ``preprocess.py`` writes it.

Baseline data (optional)
    ``--baseline-dir``: the training split with its header, label first
    (``train_with_header.csv`` of ``preprocess.py``).

Output (``--output-dir``)
    ``evaluation.json``
        The SageMaker model-quality metrics format, registered with the model package:
        ``{"binary_classification_metrics": {"auc": {"value": 0.97, "standard_deviation":
        "NaN"}, ...}}`` or ``{"regression_metrics": {"rmse": {...}, ...}}``.
    ``comparison.json``
        The gate's metric against the champion (``--champion-metric``; 0 means no champion):
        ``{"metric", "value", "champion", "has_champion", "higher_is_better", "improvement"}``,
        where ``improvement`` is how much better the model is (positive is better, whichever
        the metric's direction).

Output (``--baseline-output-dir``, with ``--baseline-dir``)
    ``train_with_predictions.csv``
        The dataset of the data-quality baseline: the baseline data with the model's prediction
        in place of the label (same header), i.e. what the endpoint returns (the probability of
        class 1, or the predicted value) followed by what it receives (the features, in
        training order). Model Monitor analyses a CSV capture as the response's columns then the
        request's, and compares them with the baseline column by column, so a label there would
        be compared with probabilities (``data_type_check``: Integral against Fractional).

Output (``--predictions-output-dir``, optional)
    ``test_predictions.csv``
        The dataset of the model-quality baseline: one row per test row, with a header, in the
        order of the test split. Binary classification: ``label,probability,prediction`` (the
        label as ``0``/``1``, the probability of class 1, and the predicted label: ``1`` when the
        probability is at least ``--threshold``, as the metrics count it). Regression:
        ``label,prediction`` (the true and the predicted value). The Model Monitor analyzer
        reads it with ``dataset_format`` CSV with header, ``ground_truth_attribute=label``,
        ``inference_attribute=prediction`` and, for binary classification,
        ``probability_attribute=probability``.

Metrics are computed with numpy alone, so the script runs in any image with Python and numpy.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import math
import sys
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Keep in step with cdk_mlops.pipeline_definition (a test compares them).
MODEL_ARCHIVE = "model.tar.gz"
XGBOOST_MODEL = "xgboost-model"
SKLEARN_MODEL = "model.joblib"
EVALUATION_FILE = "evaluation.json"
COMPARISON_FILE = "comparison.json"
BASELINE_DATASET_FILE = "train_with_predictions.csv"
PREDICTIONS_FILE = "test_predictions.csv"
GROUND_TRUTH_COLUMN = "label"
PROBABILITY_COLUMN = "probability"
PREDICTION_COLUMN = "prediction"
PROBABILITY_THRESHOLD = 0.5

#: Metric name -> whether higher values are better, per problem type.
METRICS = {
    "binary_classification": {"auc": True, "accuracy": True, "precision": True, "recall": True, "f1": True},
    "regression": {"rmse": False, "mse": False, "mae": False, "r2": True},
}

Predictor = Callable[[np.ndarray], np.ndarray]


class EvaluationError(Exception):
    """The model or the test data cannot be used; the message says why."""


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------


def _safe_extract(archive: Path, target: Path) -> None:
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            name = Path(member.name)
            if name.is_absolute() or ".." in name.parts or member.issym() or member.islnk():
                raise EvaluationError(f"{archive}: refusing unsafe member {member.name!r}")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(target, filter="data")
        else:  # Python < 3.8.17 in older containers; members were checked above
            tar.extractall(target)


def model_files(model_dir: Path, work_dir: Path) -> Path:
    """The directory holding the model files, extracting ``model.tar.gz`` when present."""
    archive = model_dir / MODEL_ARCHIVE
    if archive.is_file():
        _safe_extract(archive, work_dir)
        return work_dir
    return model_dir


def load_predictor(root: Path, problem_type: str) -> tuple[str, Predictor]:
    """(kind, predict): predict returns P(class 1) for classification, the value for regression."""
    if (root / XGBOOST_MODEL).is_file():
        return "xgboost", _xgboost_predictor(root / XGBOOST_MODEL)
    if (root / SKLEARN_MODEL).is_file():
        import joblib

        model = joblib.load(root / SKLEARN_MODEL)
        if problem_type == "binary_classification" and hasattr(model, "predict_proba"):
            return "sklearn", lambda features: np.asarray(model.predict_proba(features))[:, 1]
        return "sklearn", lambda features: np.asarray(model.predict(features), dtype=np.float64)
    found = ", ".join(sorted(p.name for p in root.iterdir())) or "nothing"
    raise EvaluationError(f"no {XGBOOST_MODEL} or {SKLEARN_MODEL} in the model artifact (found {found})")


def _xgboost_predictor(path: Path) -> Predictor:
    try:
        # Imported by name: the package exists in the XGBoost image, not in this repository.
        xgboost: Any = importlib.import_module("xgboost")
    except ImportError:
        raise EvaluationError(
            f"{path.name} is an XGBoost model but the xgboost package is not installed; "
            "run this script in the XGBoost image"
        ) from None
    booster = xgboost.Booster()
    try:
        booster.load_model(str(path))
    except xgboost.core.XGBoostError:
        import pickle

        # Older XGBoost containers pickle the booster instead of saving it natively.
        with path.open("rb") as handle:
            booster = pickle.load(handle)
    return lambda features: np.asarray(booster.predict(xgboost.DMatrix(features)), dtype=np.float64)


def _csv_files(directory: Path) -> list[Path]:
    files = [directory] if directory.is_file() else sorted(p for p in directory.glob("*.csv") if p.is_file())
    if not files:
        raise EvaluationError(f"no *.csv files in {directory}")
    return files


def read_baseline(baseline_dir: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows (as written) of the header'd, label-first CSV files in ``baseline_dir``."""
    header: list[str] | None = None
    rows: list[list[str]] = []
    for path in _csv_files(baseline_dir):
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            file_header = next(reader, None)
            if file_header is None:
                continue
            if header is not None and file_header != header:
                raise EvaluationError(f"{path}: header {file_header} differs from the first file's {header}")
            header = file_header
            rows.extend(row for row in reader if row)
    if header is None or len(header) < 2 or not rows:
        raise EvaluationError(f"{baseline_dir}: expected a header, a label column, features and rows")
    return header, rows


def write_baseline_dataset(baseline_dir: Path, output_dir: Path, predict: Predictor) -> Path:
    """The data-quality baseline dataset: the baseline rows with the model's prediction as the first column.

    The features are written as they were read, so their inferred types stay those of the data.
    """
    header, rows = read_baseline(baseline_dir)
    try:
        features = np.array([[float(cell) if cell.strip() else math.nan for cell in row[1:]] for row in rows])
    except ValueError as error:
        raise EvaluationError(f"{baseline_dir}: a feature is not a number ({error})") from None
    predictions = predict(features)
    if predictions.shape != (len(rows),):
        raise EvaluationError(f"the model returned {predictions.shape} predictions for {len(rows)} baseline rows")
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / BASELINE_DATASET_FILE
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        # repr keeps the decimal point, as the endpoint's response does: the column is Fractional.
        writer.writerows([repr(float(predictions[index])), *row[1:]] for index, row in enumerate(rows))
    return path


def write_predictions(
    output_dir: Path, problem_type: str, labels: np.ndarray, scores: np.ndarray, threshold: float
) -> Path:
    """The model-quality baseline dataset: each test row's label with the model's prediction.

    ``scores`` are what the predictor returns: P(class 1) for binary classification, the value
    for regression. Labels and predicted labels are written as integers, so that the analyzer
    compares them as classes; probabilities and values keep their decimal point.
    """
    if scores.shape != labels.shape:
        raise EvaluationError(f"{scores.shape} predictions for {labels.shape} labels")
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / PREDICTIONS_FILE
    # Index-based: zip cannot check lengths on the Python 3.8 of older images (shapes are checked above).
    rows = range(len(labels))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        if problem_type == "binary_classification":
            writer.writerow([GROUND_TRUTH_COLUMN, PROBABILITY_COLUMN, PREDICTION_COLUMN])
            writer.writerows([int(labels[i]), repr(float(scores[i])), int(scores[i] >= threshold)] for i in rows)
        else:
            writer.writerow([GROUND_TRUTH_COLUMN, PREDICTION_COLUMN])
            writer.writerows([repr(float(labels[i])), repr(float(scores[i]))] for i in rows)
    return path


def read_test(test_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Labels and features of the label-first, header-less CSV files in ``test_dir``."""
    files = _csv_files(test_dir)
    data = np.vstack([np.atleast_2d(np.genfromtxt(f, delimiter=",", dtype=np.float64)) for f in files])
    if data.shape[0] == 0 or data.shape[1] < 2:
        raise EvaluationError(f"{test_dir}: expected a label column and at least one feature")
    if np.isnan(data[:, 0]).any():
        raise EvaluationError(f"{test_dir}: some labels are missing")
    return data[:, 0], data[:, 1:]


# ------------------------------------------------------------------------------------------------
# Metrics (numpy only)
# ------------------------------------------------------------------------------------------------


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted as half); NaN with one class."""
    positives = labels == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    i = 0
    while i < len(sorted_scores):
        j = i
        while j + 1 < len(sorted_scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    rank_sum = ranks[positives].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def binary_classification_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    predicted = (scores >= threshold).astype(np.float64)
    tp = int(((predicted == 1) & (labels == 1)).sum())
    tn = int(((predicted == 0) & (labels == 0)).sum())
    fp = int(((predicted == 1) & (labels == 0)).sum())
    fn = int(((predicted == 0) & (labels == 1)).sum())
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    return {
        "auc": roc_auc(labels, scores),
        "accuracy": _ratio(tp + tn, len(labels)),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "true_positive_rate": recall,
        "true_negative_rate": _ratio(tn, tn + fp),
        "false_positive_rate": _ratio(fp, fp + tn),
        "false_negative_rate": _ratio(fn, fn + tp),
        "confusion_matrix": {"0": {"0": tn, "1": fp}, "1": {"0": fn, "1": tp}},
    }


def regression_metrics(labels: np.ndarray, predictions: np.ndarray) -> dict[str, Any]:
    errors = predictions - labels
    mse = float(np.mean(errors**2))
    total = float(np.sum((labels - labels.mean()) ** 2))
    return {
        "mae": float(np.mean(np.abs(errors))),
        "mse": mse,
        "rmse": math.sqrt(mse),
        "r2": 1.0 - float(np.sum(errors**2)) / total if total else math.nan,
    }


def evaluation_report(problem_type: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """The SageMaker model-quality metrics document."""
    section: dict[str, Any] = {}
    for name, value in metrics.items():
        if isinstance(value, dict):
            section[name] = value
        else:
            section[name] = {"value": None if math.isnan(value) else value, "standard_deviation": "NaN"}
    return {f"{problem_type}_metrics": section}


def champion_comparison(metric: str, higher_is_better: bool, value: float, champion: float) -> dict[str, Any]:
    improvement = value - champion if higher_is_better else champion - value
    return {
        "metric": metric,
        "value": value,
        "champion": champion,
        "has_champion": champion != 0.0,
        "higher_is_better": higher_is_better,
        "improvement": improvement,
    }


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Evaluate a model on the test split.")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--test-dir", type=Path, required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--problem-type", choices=tuple(METRICS), default="binary_classification")
    parser.add_argument("--metric", default="auc", help="the gate's metric")
    parser.add_argument("--champion-metric", type=float, default=0.0, help="metric of the approved model; 0: none")
    parser.add_argument(
        "--threshold", type=float, default=PROBABILITY_THRESHOLD, help="probability threshold for class 1"
    )
    parser.add_argument("--baseline-dir", type=Path, help="training split with header, label first")
    parser.add_argument("--baseline-output-dir", type=Path, help="where the baseline dataset is written")
    parser.add_argument(
        "--predictions-output-dir", type=Path, help="where the test split's labels and predictions are written"
    )
    args = parser.parse_args(argv)
    if (args.baseline_dir is None) != (args.baseline_output_dir is None):
        parser.error("--baseline-dir and --baseline-output-dir go together")
    return args


def run(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    known = METRICS[args.problem_type]
    if args.metric not in known:
        raise EvaluationError(f"{args.metric!r} is not a {args.problem_type} metric; use one of: {', '.join(known)}")
    labels, features = read_test(args.test_dir)
    with tempfile.TemporaryDirectory() as work:
        kind, predict = load_predictor(model_files(args.model_dir, Path(work)), args.problem_type)
        scores = predict(features)
        if args.baseline_dir is not None:
            write_baseline_dataset(args.baseline_dir, args.baseline_output_dir, predict)
    if scores.shape != labels.shape:
        raise EvaluationError(f"the {kind} model returned {scores.shape} predictions for {labels.shape} labels")
    if args.problem_type == "binary_classification":
        metrics = binary_classification_metrics(labels, scores, args.threshold)
    else:
        metrics = regression_metrics(labels, scores)
    value = metrics[args.metric]
    if not isinstance(value, float) or math.isnan(value):
        raise EvaluationError(f"{args.metric} is undefined on this test split (e.g. a single class)")
    if args.predictions_output_dir is not None:
        write_predictions(args.predictions_output_dir, args.problem_type, labels, scores, args.threshold)
    report = evaluation_report(args.problem_type, metrics)
    comparison = champion_comparison(args.metric, known[args.metric], value, args.champion_metric)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / EVALUATION_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.output_dir / COMPARISON_FILE).write_text(json.dumps(comparison, indent=2) + "\n", encoding="utf-8")
    return report, comparison


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        _, comparison = run(args)
    except EvaluationError as error:
        print(f"evaluate failed: {error}", file=sys.stderr)
        return 1
    print(
        f"evaluate: {comparison['metric']}={comparison['value']:.6f} "
        f"(champion {comparison['champion']:g}, improvement {comparison['improvement']:+.6f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
