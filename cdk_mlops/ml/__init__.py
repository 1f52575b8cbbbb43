"""The ML code of the training and batch scoring pipelines: scripts that run inside SageMaker jobs.

Each script is self-contained (standard library plus what the job's container provides) and
ships on its own as a CDK file asset, so none of them imports ``cdk_mlops``. They keep Python 3.8
compatibility because the SageMaker framework containers run older interpreters.

``preprocess.py``
    ``Preprocess`` step (scikit-learn container): manifest → validated, split, label-first CSVs.
``train.py``
    Script-mode training entry point for the scikit-learn container; the default pipeline trains
    with the built-in XGBoost algorithm instead, and the local tests use this script.
``evaluate.py``
    ``Evaluate`` step (XGBoost container by default): test-split metrics as ``evaluation.json``.
``prepare_batch.py``
    ``PrepareInput`` step of the batch scoring pipeline (scikit-learn container): manifest → the
    features of exactly the listed object versions as Batch Transform input, and ``lineage.json``.
``track.py``
    ``Track`` step (scikit-learn container by default; only with MLflow): records the execution as
    one MLflow run (hyperparameters, training and test metrics, lineage tags, the evaluation
    files), installing the pinned MLflow client with pip when the image lacks it.
"""

from __future__ import annotations

from pathlib import Path

#: Directory holding the scripts; constructs make assets from the files in it.
SCRIPTS_DIR = Path(__file__).resolve().parent

PREPROCESS_SCRIPT = SCRIPTS_DIR / "preprocess.py"
TRAIN_SCRIPT = SCRIPTS_DIR / "train.py"
EVALUATE_SCRIPT = SCRIPTS_DIR / "evaluate.py"
TRACK_SCRIPT = SCRIPTS_DIR / "track.py"
PREPARE_BATCH_SCRIPT = SCRIPTS_DIR / "prepare_batch.py"
