"""Train a gradient-boosted tree model with scikit-learn: a SageMaker script-mode entry point.

The default pipeline trains with the built-in XGBoost algorithm, which needs no script. This
script is the alternative for the SageMaker scikit-learn container (``PipelineSpec.training_source``
pointing at a ``sourcedir.tar.gz`` holding it), and it is what the local tests train with, since
the XGBoost container cannot run offline. It reads the same channels (label-first CSV without a
header) and writes ``model.joblib`` to the model directory; SageMaker packs that directory into
``model.tar.gz``, which ``evaluate.py`` reads.

Script mode passes hyperparameters as ``--name value`` and the paths as environment variables
(``SM_MODEL_DIR``, ``SM_CHANNEL_TRAIN``, ``SM_CHANNEL_VALIDATION``); locally::

    python train.py --train out/train --validation out/validation --model-dir model/

The ``model_fn`` and ``predict_fn`` functions let the scikit-learn serving container host the
model; a classifier returns the probability of class 1, as XGBoost's ``binary:logistic`` does.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MODEL_FILE = "model.joblib"


def load_csv_dir(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Labels and features of every ``*.csv`` in ``path`` (or of the file ``path``)."""
    files = [path] if path.is_file() else sorted(p for p in path.glob("*.csv") if p.is_file())
    if not files:
        raise SystemExit(f"no *.csv files in {path}")
    blocks = [np.atleast_2d(np.genfromtxt(f, delimiter=",", dtype=np.float64)) for f in files]
    data = np.vstack(blocks)
    return data[:, 0], data[:, 1:]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a scikit-learn gradient-boosted tree model.")
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model")))
    parser.add_argument(
        "--train", type=Path, default=Path(os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    )
    parser.add_argument(
        "--validation",
        type=Path,
        default=Path(os.environ.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation")),
    )
    parser.add_argument(
        "--problem-type",
        "--problem_type",
        choices=("binary_classification", "regression"),
        default="binary_classification",
    )
    parser.add_argument("--max-iter", "--max_iter", type=int, default=200)
    parser.add_argument("--learning-rate", "--learning_rate", type=float, default=0.1)
    parser.add_argument("--max-depth", "--max_depth", type=int, default=None)
    parser.add_argument("--max-leaf-nodes", "--max_leaf_nodes", type=int, default=31)
    parser.add_argument("--l2-regularization", "--l2_regularization", type=float, default=0.0)
    parser.add_argument("--random-state", "--random_state", type=int, default=42)
    # Script mode passes every hyperparameter as --<name> <value> (either spelling is accepted);
    # the ones this script does not use are ignored.
    args, _unknown = parser.parse_known_args(argv)
    return args


def build_model(args: argparse.Namespace) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    options = {
        "max_iter": args.max_iter,
        "learning_rate": args.learning_rate,
        "max_depth": args.max_depth,
        "max_leaf_nodes": args.max_leaf_nodes,
        "l2_regularization": args.l2_regularization,
        "random_state": args.random_state,
        "early_stopping": False,
    }
    if args.problem_type == "binary_classification":
        return HistGradientBoostingClassifier(**options)
    return HistGradientBoostingRegressor(**options)


def main(argv: Sequence[str] | None = None) -> int:
    import joblib

    args = parse_args(argv)
    labels, features = load_csv_dir(args.train)
    model = build_model(args)
    model.fit(features, labels)
    if args.validation.exists():
        val_labels, val_features = load_csv_dir(args.validation)
        # SageMaker metric definitions can scrape this line.
        print(f"validation:score={model.score(val_features, val_labels):.6f}")
    args.model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, args.model_dir / MODEL_FILE)
    print(f"train: {len(labels)} rows, {features.shape[1]} features -> {args.model_dir / MODEL_FILE}")
    return 0


# ------------------------------------------------------------------------------------------------
# Hosting in the SageMaker scikit-learn serving container
# ------------------------------------------------------------------------------------------------


def model_fn(model_dir: str) -> Any:
    import joblib

    return joblib.load(Path(model_dir) / MODEL_FILE)


def predict_fn(input_data: Any, model: Any) -> Any:
    if hasattr(model, "predict_proba"):
        return model.predict_proba(input_data)[:, 1]
    return model.predict(input_data)


if __name__ == "__main__":
    sys.exit(main())
