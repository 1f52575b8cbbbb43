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

Output (``--clarify-config-dir``, optional: the SageMaker Clarify steps)
    One folder per Clarify output of the ``Evaluate`` step, each uploaded to its own prefix:

    ``clarify_dataset/clarify_sample.csv``
        At most ``--clarify-sample-rows`` rows of the test split (drawn with ``--clarify-seed``,
        in the split's order), label first, without a header: the rows the post-training bias
        and SHAP jobs send to the shadow endpoint.
    ``data_bias_config/analysis_config.json``
        The pre-training bias job's configuration (the training split, ``pre_training_bias``).
    ``model_bias_config/analysis_config.json``
        The post-training bias job's: ``post_training_bias``, ``probability_threshold`` and the
        ``predictor`` (``--clarify-model-name``, the shadow endpoint's instances, CSV in and out).
    ``explainability_config/analysis_config.json``
        The SHAP job's: ``shap`` (``baseline``, ``num_samples``, ``agg_method``, ``use_logit``,
        ``seed``) and the ``predictor``. The baseline is the k-means centres of the training
        split's features (``--clarify-shap-baseline-rows`` rows; one row is the features' means).
    ``model_bias_monitor_config/analysis_config.json``
        What a model-bias monitor takes: the facets, the positive label values, the headers and
        the label (no methods, no predictor: the monitor reads the endpoint's captures).
    ``explainability_monitor_config/analysis_config.json``
        What a model-explainability monitor takes: the same ``shap`` method, the predictor
        without the model name (the monitor serves the endpoint's model) and the feature headers.

    Every configuration names the columns with the header of ``--baseline-dir`` (the label
    first); facets and the group column must be features of that header.

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
# The Clarify files, by Evaluate output name (the folder under --clarify-config-dir).
CLARIFY_DATASET = "clarify_dataset"
DATA_BIAS_CONFIG = "data_bias_config"
MODEL_BIAS_CONFIG = "model_bias_config"
EXPLAINABILITY_CONFIG = "explainability_config"
MODEL_BIAS_MONITOR_CONFIG = "model_bias_monitor_config"
EXPLAINABILITY_MONITOR_CONFIG = "explainability_monitor_config"
#: The name prefix of Clarify's shadow endpoints, which the roles may manage
#: (the same as constructs.common.CLARIFY_ENDPOINT_PREFIX; this script ships without the package).
CLARIFY_ENDPOINT_PREFIX = "cdk-mlops-clarify"
CLARIFY_OUTPUTS = (
    CLARIFY_DATASET,
    DATA_BIAS_CONFIG,
    MODEL_BIAS_CONFIG,
    EXPLAINABILITY_CONFIG,
    MODEL_BIAS_MONITOR_CONFIG,
    EXPLAINABILITY_MONITOR_CONFIG,
)
CLARIFY_DATASET_FILE = "clarify_sample.csv"
ANALYSIS_CONFIG_FILE = "analysis_config.json"
SHAP_AGG_METHODS = ("mean_abs", "median", "mean_sq")
# Rows of the training split the k-means of the SHAP baseline runs on: enough for stable centres.
_KMEANS_ROWS = 10000
_KMEANS_ITERATIONS = 50

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


# ------------------------------------------------------------------------------------------------
# SageMaker Clarify
# ------------------------------------------------------------------------------------------------


def sample_indices(rows: int, size: int, seed: int) -> np.ndarray:
    """At most ``size`` row indices of ``rows``, drawn with ``seed`` without replacement, in order."""
    if rows <= size:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, size=size, replace=False))


def shap_baseline(features: np.ndarray, rows: int, seed: int) -> list[list[float]]:
    """The SHAP baseline: ``rows`` k-means centres of ``features`` (one row: each feature's mean).

    Missing values count as the feature's mean (0 for a feature with no value at all), so the
    baseline holds numbers only.
    """
    data = np.array(features, dtype=np.float64)
    with np.errstate(all="ignore"):
        means = np.nanmean(data, axis=0) if data.size else np.zeros(data.shape[1])
    means = np.where(np.isnan(means), 0.0, means)
    missing = np.isnan(data)
    data[missing] = np.take(means, np.nonzero(missing)[1])
    distinct = np.unique(data, axis=0) if len(data) else data
    k = min(rows, len(distinct))
    if k <= 1:
        return [[float(v) for v in means]]
    rng = np.random.default_rng(seed)
    points = data[sample_indices(len(data), _KMEANS_ROWS, seed)]
    centres = distinct[rng.choice(len(distinct), size=k, replace=False)]
    for _ in range(_KMEANS_ITERATIONS):
        # Squared distances without an n x k x features array: |x|^2 - 2 x.c + |c|^2.
        distances = (points**2).sum(axis=1)[:, None] - 2 * points @ centres.T + (centres**2).sum(axis=1)[None, :]
        nearest = distances.argmin(axis=1)
        moved = np.array([points[nearest == j].mean(axis=0) if (nearest == j).any() else centres[j] for j in range(k)])
        if np.allclose(moved, centres):
            break
        centres = moved
    return [[float(v) for v in centre] for centre in centres]


def clarify_configs(
    header: Sequence[str],
    *,
    facets: Sequence[dict[str, Any]],
    label_values: Sequence[int],
    group_column: str | None,
    model_name: str,
    baseline: list[list[float]],
    num_samples: int,
    agg_method: str,
    use_logit: bool,
    seed: int,
    endpoint_instance_type: str,
    endpoint_instance_count: int,
    probability_threshold: float,
) -> dict[str, dict[str, Any]]:
    """The Clarify analysis configurations, by Evaluate output name (see the module docstring).

    ``header`` is the dataset's, label first. Raises :class:`EvaluationError` for a facet or group
    column that is not a feature of it.
    """
    label, features = header[0], list(header[1:])
    wanted = [("facet", str(f.get("name_or_index"))) for f in facets]
    if group_column is not None:
        wanted.append(("group column", group_column))
    for kind, column in wanted:
        if column not in features:
            raise EvaluationError(
                f"the Clarify {kind} {column!r} is not a feature of the dataset; features: {', '.join(features)} "
                f"(the label is {label!r}): fix TrainingSettings.clarify"
            )
    bias: dict[str, Any] = {"label_values_or_threshold": list(label_values), "facet": [dict(f) for f in facets]}
    if group_column is not None:
        bias["group_variable"] = group_column
    data = {"dataset_type": "text/csv", "headers": list(header), "label": label}
    endpoint = {
        "instance_type": endpoint_instance_type,
        "initial_instance_count": endpoint_instance_count,
        # The model takes the features as CSV and returns one score, P(class 1), as CSV.
        "content_type": "text/csv",
        "accept_type": "text/csv",
        # The shadow endpoint's name prefix, which the jobs' role is limited to.
        "endpoint_name_prefix": CLARIFY_ENDPOINT_PREFIX,
    }
    predictor = {"model_name": model_name, **endpoint}
    shap = {
        "baseline": baseline,
        "num_samples": num_samples,
        "agg_method": agg_method,
        "use_logit": use_logit,
        "save_local_shap_values": False,
        "seed": seed,
    }
    return {
        DATA_BIAS_CONFIG: {**data, **bias, "methods": {"pre_training_bias": {"methods": "all"}}},
        MODEL_BIAS_CONFIG: {
            **data,
            **bias,
            "probability_threshold": probability_threshold,
            "methods": {"post_training_bias": {"methods": "all"}},
            "predictor": predictor,
        },
        EXPLAINABILITY_CONFIG: {**data, "methods": {"shap": shap}, "predictor": predictor},
        # What SageMaker's ModelBiasMonitor uploads: the bias groups with the headers and the label.
        MODEL_BIAS_MONITOR_CONFIG: {**bias, "headers": list(header), "label": label},
        # What ModelExplainabilityMonitor uploads: the method, the predictor, the features. No model: a model
        # name belongs to one account and region, and each environment's ModelMonitor names the model it
        # serves in a copy of this file at deploy time.
        EXPLAINABILITY_MONITOR_CONFIG: {"methods": {"shap": shap}, "predictor": endpoint, "headers": features},
    }


def write_clarify_files(
    config_dir: Path, configs: dict[str, dict[str, Any]], labels: np.ndarray, features: np.ndarray
) -> dict[str, Path]:
    """Write each configuration and the test sample into its output folder; returns the files by output name."""
    written: dict[str, Path] = {}
    for name, config in configs.items():
        folder = config_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        written[name] = folder / ANALYSIS_CONFIG_FILE
        written[name].write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    folder = config_dir / CLARIFY_DATASET
    folder.mkdir(parents=True, exist_ok=True)
    path = written[CLARIFY_DATASET] = folder / CLARIFY_DATASET_FILE
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        # No header: the configurations name the columns. Labels as classes, missing features empty.
        writer.writerows(
            [int(labels[i]), *("" if math.isnan(v) else repr(float(v)) for v in features[i])]
            for i in range(len(labels))
        )
    return written


def run_clarify(args: argparse.Namespace, labels: np.ndarray, features: np.ndarray) -> dict[str, Path]:
    """The Clarify files of ``--clarify-config-dir`` from the test split and the header'd training split."""
    header, rows = read_baseline(args.baseline_dir)
    try:
        training = np.array([[float(cell) if cell.strip() else math.nan for cell in row[1:]] for row in rows])
    except ValueError as error:
        raise EvaluationError(f"{args.baseline_dir}: a feature is not a number ({error})") from None
    if features.shape[1] != len(header) - 1:
        raise EvaluationError(
            f"the test split has {features.shape[1]} features, the header of {args.baseline_dir} {len(header) - 1}"
        )
    configs = clarify_configs(
        header,
        facets=args.clarify_facet,
        label_values=args.clarify_label_values,
        group_column=args.clarify_group_column,
        model_name=args.clarify_model_name,
        baseline=shap_baseline(training, args.clarify_shap_baseline_rows, args.clarify_seed),
        num_samples=args.clarify_shap_samples,
        agg_method=args.clarify_shap_agg_method,
        use_logit=args.clarify_shap_use_logit,
        seed=args.clarify_seed,
        endpoint_instance_type=args.clarify_endpoint_instance_type,
        endpoint_instance_count=args.clarify_endpoint_instance_count,
        probability_threshold=args.threshold,
    )
    chosen = sample_indices(len(labels), args.clarify_sample_rows, args.clarify_seed)
    return write_clarify_files(args.clarify_config_dir, configs, labels[chosen], features[chosen])


def _facet(text: str) -> dict[str, Any]:
    """A ``--clarify-facet``: an analysis configuration's facet entry as JSON."""
    try:
        facet = json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not JSON") from None
    values = facet.get("value_or_threshold", []) if isinstance(facet, dict) else None
    if not isinstance(facet, dict) or not isinstance(facet.get("name_or_index"), str) or not isinstance(values, list):
        raise argparse.ArgumentTypeError(
            f'{text!r} is not a facet; use {{"name_or_index": "<column>", "value_or_threshold": [<numbers>]}}'
        )
    return facet


def _label_values(text: str) -> list[int]:
    """A ``--clarify-label-values``: the favourable label, ``1`` or ``0`` (binary labels)."""
    if text.strip() not in ("0", "1"):
        raise argparse.ArgumentTypeError(f"{text!r}: the positive label value is 1 or 0")
    return [int(text)]


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
    clarify = parser.add_argument_group("SageMaker Clarify (with --clarify-config-dir)")
    clarify.add_argument("--clarify-config-dir", type=Path, help="where the Clarify configurations are written")
    clarify.add_argument("--clarify-model-name", help="the SageMaker model the shadow endpoints serve")
    clarify.add_argument("--clarify-label-values", type=_label_values, default=[1], help="the positive label: 1 or 0")
    clarify.add_argument("--clarify-facet", type=_facet, action="append", default=[], help="a facet entry as JSON")
    clarify.add_argument("--clarify-group-column", help="the group variable of the CDD metrics")
    clarify.add_argument("--clarify-sample-rows", type=int, default=1000, help="test rows sent to the endpoint")
    clarify.add_argument("--clarify-shap-samples", type=int, default=100, help="Kernel SHAP num_samples")
    clarify.add_argument("--clarify-shap-baseline-rows", type=int, default=1, help="k-means centres in the baseline")
    clarify.add_argument("--clarify-shap-agg-method", choices=SHAP_AGG_METHODS, default="mean_abs")
    clarify.add_argument("--clarify-shap-use-logit", action="store_true", help="explain log-odds")
    clarify.add_argument("--clarify-endpoint-instance-type", default="ml.m5.large")
    clarify.add_argument("--clarify-endpoint-instance-count", type=int, default=1)
    clarify.add_argument("--clarify-seed", type=int, default=42, help="seed of the sample, the baseline and SHAP")
    args = parser.parse_args(argv)
    if (args.baseline_dir is None) != (args.baseline_output_dir is None):
        parser.error("--baseline-dir and --baseline-output-dir go together")
    if args.clarify_config_dir is not None:
        if args.problem_type != "binary_classification":
            parser.error("--clarify-config-dir: Clarify's bias metrics need --problem-type binary_classification")
        missing = [
            flag
            for flag, value in (
                ("--clarify-model-name", args.clarify_model_name),
                ("--clarify-facet", args.clarify_facet),
                ("--baseline-dir", args.baseline_dir),
            )
            if not value
        ]
        if missing:
            parser.error(f"--clarify-config-dir needs {', '.join(missing)}")
        for flag in ("sample_rows", "shap_samples", "shap_baseline_rows", "endpoint_instance_count"):
            if getattr(args, f"clarify_{flag}") < 1:
                parser.error(f"--clarify-{flag.replace('_', '-')} must be at least 1")
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
    if args.clarify_config_dir is not None:
        run_clarify(args, labels, features)
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
