"""Record a pipeline execution as one MLflow run: parameters, metrics, lineage tags, evaluation files.

Runs as the ``Track`` step of the training pipeline (a processing job, in the scikit-learn image
by default) after ``Evaluate``, and locally::

    MLFLOW_TRACKING_ARN=file:///tmp/mlruns python track.py --evaluation-dir eval/ \\
        --training-job-name my-job --experiment-name churn --run-name local-1

Training runs with network isolation and cannot reach the tracking server, so this step logs
on its behalf, from what SageMaker recorded about the training job and what ``Evaluate`` wrote.

Tracking server
    The ``MLFLOW_TRACKING_ARN`` environment variable, passed to ``mlflow.set_tracking_uri``:
    the ARN of a SageMaker managed MLflow tracking server (which needs the ``sagemaker-mlflow``
    plugin) or any MLflow tracking URI, such as ``file:///tmp/mlruns`` in tests.

The MLflow client
    Imported when needed. When ``mlflow`` (or, for an ARN, ``sagemaker_mlflow``) cannot be
    imported, the ``--requirement`` pins are installed with ``python -m pip install`` first,
    which needs outbound HTTPS to PyPI, or to the index in ``PIP_INDEX_URL`` (pip reads it; the
    pipeline sets it from ``MlflowSettings.package_index_url``); an image that has both
    packages installs nothing.

The run (``--experiment-name``, ``--run-name``: the pipeline execution id)
    One run per execution: a retried step finds the run of the same name and logs into it.

    Parameters
        The training job's hyperparameters (DescribeTrainingJob of ``--training-job-name``),
        without script mode's ``sagemaker_*`` keys and with its JSON quotes removed;
        ``instance_type`` and ``instance_count``.
    Metrics
        The training job's final metrics (``validation:auc`` becomes ``validation_auc``),
        ``billable_seconds`` and ``training_seconds``; every metric of ``evaluation.json`` (the
        SageMaker model-quality format) as ``test_<name>``; from ``comparison.json``, the
        champion's value and the improvement over it when there is a champion.
    Tags
        ``data.manifest_uri``, ``data.manifest_sha256``, ``data.version``,
        ``sagemaker.training_job_arn``, ``sagemaker.pipeline_execution_arn``,
        ``source_revision`` and ``gate.metric`` (empty values are left out).
    Artifacts
        ``evaluation.json`` and ``comparison.json``, under ``evaluation/``.

On failure (no tracking server, no usable ``evaluation.json``, a training job that cannot be
described, a tracking server that refuses the run) the script exits with status 1 and writes
the reason to ``--message-file`` (``/opt/ml/output/message``, shown as the job's ``ExitMessage``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# Keep in step with cdk_mlops.pipeline_definition (a test compares them).
TRACKING_ARN_ENV = "MLFLOW_TRACKING_ARN"
EVALUATION_FILE = "evaluation.json"
COMPARISON_FILE = "comparison.json"
ARTIFACT_PATH = "evaluation"

# What MLflow accepts in parameter and metric names; anything else becomes "_".
_INVALID_NAME_CHARACTERS = re.compile(r"[^\w.\- /]")
# Run names safe to quote in an MLflow search filter (execution ids are lower-case letters and digits).
_SEARCHABLE_RUN_NAME = re.compile(r"^[\w.\-:/ ]{1,250}\Z")


class TrackingError(Exception):
    """The run cannot be recorded; the message says what is wrong and how to fix it."""


# ------------------------------------------------------------------------------------------------
# What to log
# ------------------------------------------------------------------------------------------------


def metric_name(name: str) -> str:
    """``name`` with the characters MLflow rejects replaced by ``_`` (``validation:auc`` → ``validation_auc``)."""
    return _INVALID_NAME_CHARACTERS.sub("_", name.strip()) or "_"


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None for anything else (booleans, strings, NaN, null)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def training_params(job: dict[str, Any]) -> dict[str, str]:
    """Hyperparameters and instances of a DescribeTrainingJob response, as MLflow parameters."""
    params: dict[str, str] = {}
    hyperparameters = job.get("HyperParameters")
    for key, value in sorted((hyperparameters if isinstance(hyperparameters, dict) else {}).items()):
        if not isinstance(key, str) or key.startswith("sagemaker_"):
            continue  # script mode's own entries (program, submit directory, region, ...)
        text = str(value)
        if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
            # Script mode passes every value as a JSON string: "\"0.2\"" means 0.2.
            try:
                decoded = json.loads(text)
            except ValueError:
                decoded = text[1:-1]
            text = decoded if isinstance(decoded, str) else json.dumps(decoded)
        params[metric_name(key)] = text
    resources = job.get("ResourceConfig")
    if isinstance(resources, dict):
        if resources.get("InstanceType"):
            params["instance_type"] = str(resources["InstanceType"])
        if resources.get("InstanceCount") is not None:
            params["instance_count"] = str(resources["InstanceCount"])
    return params


def training_metrics(job: dict[str, Any]) -> dict[str, float]:
    """The final metrics and the billable and training seconds of a DescribeTrainingJob response."""
    metrics: dict[str, float] = {}
    final = job.get("FinalMetricDataList")
    for item in final if isinstance(final, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("MetricName"), str):
            continue
        value = _number(item.get("Value"))
        if value is not None:
            metrics[metric_name(item["MetricName"])] = value
    for key, name in (("BillableTimeInSeconds", "billable_seconds"), ("TrainingTimeInSeconds", "training_seconds")):
        value = _number(job.get(key))
        if value is not None:
            metrics[name] = value
    return metrics


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from ``path``; TrackingError when it is missing, unreadable or not an object."""
    if not path.is_file():
        raise TrackingError(f"no {what} at {path}; the Evaluate step writes it (check its output)")
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise TrackingError(f"{path} is not valid JSON ({error}); it should be the {what} Evaluate writes") from None
    if not isinstance(loaded, dict):
        raise TrackingError(f"{path} holds a {type(loaded).__name__}, not the JSON object of a {what}")
    return loaded


def evaluation_metrics(evaluation: dict[str, Any], path: Path) -> dict[str, float]:
    """Every metric value of a SageMaker model-quality report as ``test_<name>``.

    ``{"binary_classification_metrics": {"auc": {"value": 0.97}}}`` gives ``{"test_auc": 0.97}``;
    entries without a numeric ``value`` (a confusion matrix, an undefined metric) are skipped.
    """
    sections = [v for k, v in sorted(evaluation.items()) if k.endswith("_metrics") and isinstance(v, dict)]
    if not sections:
        raise TrackingError(
            f"{path} has no '<problem type>_metrics' section (found: {', '.join(sorted(evaluation)) or 'nothing'}); "
            "expected the SageMaker model-quality format that evaluate.py writes"
        )
    metrics: dict[str, float] = {}
    for section in sections:
        for name, entry in sorted(section.items()):
            value = _number(entry.get("value")) if isinstance(entry, dict) else None
            if value is not None:
                metrics[f"test_{metric_name(str(name))}"] = value
    if not metrics:
        raise TrackingError(f"{path} has no metric with a numeric 'value'; the evaluation produced no metrics")
    return metrics


def comparison_metrics(comparison: dict[str, Any]) -> dict[str, float]:
    """The champion's value and the improvement over it, when the execution had a champion."""
    if comparison.get("has_champion") is not True:
        return {}
    metrics: dict[str, float] = {}
    for key, name in (("champion", "champion_value"), ("improvement", "champion_improvement")):
        value = _number(comparison.get(key))
        if value is not None:
            metrics[name] = value
    return metrics


def lineage_tags(args: argparse.Namespace, job: dict[str, Any], comparison: dict[str, Any]) -> dict[str, str]:
    """Tags that trace the run back to its data, its training job, its execution and its source."""
    tags = {
        "data.manifest_uri": args.manifest_uri,
        "data.manifest_sha256": args.manifest_sha256,
        "data.version": args.data_version,
        "sagemaker.training_job_arn": job.get("TrainingJobArn") or "",
        "sagemaker.pipeline_execution_arn": args.pipeline_execution_arn,
        "source_revision": args.source_revision,
        "gate.metric": comparison.get("metric") or "",
    }
    return {key: str(value) for key, value in tags.items() if value}


# ------------------------------------------------------------------------------------------------
# AWS and MLflow
# ------------------------------------------------------------------------------------------------


def region_of(arn: str) -> str | None:
    """The region of an ARN (``arn:aws:sagemaker:<region>:...``), or None for anything else."""
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 and parts[0] == "arn" and parts[3] else None


def describe_training_job(name: str, region: str | None) -> dict[str, Any]:
    """The DescribeTrainingJob response of ``name``."""
    import boto3  # in the processing container; botocore errors are turned into TrackingError below
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response: dict[str, Any] = dict(
            boto3.client("sagemaker", region_name=region).describe_training_job(TrainingJobName=name)
        )
    except (BotoCoreError, ClientError) as error:
        raise TrackingError(
            f"cannot describe training job {name!r}: {error}; the execution role needs "
            "sagemaker:DescribeTrainingJob and the job must exist in this region"
        ) from None
    return response


def pip_install(requirements: Sequence[str]) -> None:
    """Install ``requirements`` into this interpreter with pip; TrackingError when pip fails."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-cache-dir", "--disable-pip-version-check"]
    print(f"track: installing {' '.join(requirements)}", flush=True)
    result = subprocess.run([*command, *requirements], check=False)
    if result.returncode != 0:
        raise TrackingError(
            f"pip install {' '.join(requirements)} failed (exit status {result.returncode}); the job needs "
            "outbound HTTPS to PyPI (in a VPC: a NAT gateway) or to the mirror of PIP_INDEX_URL "
            "(MlflowSettings.package_index_url), or use an image with mlflow and sagemaker-mlflow "
            "installed (MlflowSettings.logging_image_uri)"
        )


def _missing(modules: Sequence[str]) -> list[str]:
    missing = []
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    return missing


def import_mlflow(
    tracking_uri: str, requirements: Sequence[str], install: Callable[[Sequence[str]], None] | None = None
) -> Any:
    """The ``mlflow`` module, installing ``requirements`` first when it (or the SageMaker plugin) is missing.

    ``install`` defaults to :func:`pip_install` (looked up when called, so tests can replace it).
    """
    needed = ["mlflow", "sagemaker_mlflow"] if tracking_uri.startswith("arn:") else ["mlflow"]
    missing = _missing(needed)
    if missing:
        if not requirements:
            raise TrackingError(
                f"{', '.join(missing)} cannot be imported and no --requirement was given to install; "
                "use an image that has mlflow and sagemaker-mlflow, or pass pinned requirements"
            )
        (install or pip_install)(requirements)
        importlib.invalidate_caches()
        missing = _missing(needed)
        if missing:
            raise TrackingError(f"{', '.join(missing)} still cannot be imported after installing {list(requirements)}")
    return importlib.import_module("mlflow")


def _existing_run_id(mlflow: Any, experiment_id: str, run_name: str) -> str | None:
    """The id of the experiment's run named ``run_name``, so that a retried step logs into it."""
    if not _SEARCHABLE_RUN_NAME.match(run_name) or "'" in run_name:
        return None
    runs = mlflow.tracking.MlflowClient().search_runs(
        experiment_ids=[experiment_id], filter_string=f"tags.`mlflow.runName` = '{run_name}'", max_results=1
    )
    return str(runs[0].info.run_id) if runs else None


def log_run(
    mlflow: Any,
    *,
    experiment_name: str,
    run_name: str,
    params: dict[str, str],
    metrics: dict[str, float],
    tags: dict[str, str],
    artifacts: Sequence[Path],
) -> str:
    """Log everything into the run ``run_name`` of ``experiment_name``; returns the run id."""
    experiment = mlflow.set_experiment(experiment_name)
    run_id = _existing_run_id(mlflow, experiment.experiment_id, run_name)
    start = mlflow.start_run(run_id=run_id) if run_id is not None else mlflow.start_run(run_name=run_name)
    with start as run:
        if params:
            mlflow.log_params(params)
        if metrics:
            mlflow.log_metrics(metrics)
        if tags:
            mlflow.set_tags(tags)
        for path in artifacts:
            mlflow.log_artifact(str(path), artifact_path=ARTIFACT_PATH)
        return str(run.info.run_id)


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Record a pipeline execution as one MLflow run.")
    parser.add_argument("--evaluation-dir", type=Path, required=True, help="where Evaluate's output is")
    parser.add_argument("--training-job-name", required=True)
    parser.add_argument("--experiment-name", required=True)
    parser.add_argument("--run-name", required=True, help="the pipeline execution id")
    parser.add_argument("--manifest-uri", default="")
    parser.add_argument("--manifest-sha256", default="")
    parser.add_argument("--data-version", default="")
    parser.add_argument("--pipeline-execution-arn", default="")
    parser.add_argument("--source-revision", default="")
    parser.add_argument(
        "--requirement",
        action="append",
        default=[],
        help="a pinned package to install when mlflow is missing (repeatable)",
    )
    parser.add_argument("--region", default=None, help="default: the tracking server ARN's region")
    parser.add_argument("--message-file", type=Path, default=Path("/opt/ml/output/message"))
    return parser.parse_args(argv)


def run(args: argparse.Namespace, install: Callable[[Sequence[str]], None] | None = None) -> str:
    """Record the run; returns its id. Raises TrackingError for every expected failure."""
    tracking_uri = os.environ.get(TRACKING_ARN_ENV, "").strip()
    if not tracking_uri:
        raise TrackingError(
            f"the {TRACKING_ARN_ENV} environment variable is not set; "
            "set it to the ARN of the MLflow tracking server (the pipeline does with mlflow=MlflowSettings())"
        )
    # Read the evaluation first: a broken Evaluate output fails before anything is installed or logged.
    evaluation_path = args.evaluation_dir / EVALUATION_FILE
    metrics = evaluation_metrics(read_json(evaluation_path, "evaluation report"), evaluation_path)
    comparison_path = args.evaluation_dir / COMPARISON_FILE
    comparison = read_json(comparison_path, "champion comparison") if comparison_path.exists() else {}
    metrics.update(comparison_metrics(comparison))

    job = describe_training_job(args.training_job_name, args.region or region_of(tracking_uri))
    metrics.update(training_metrics(job))
    params = training_params(job)
    tags = lineage_tags(args, job, comparison)

    mlflow = import_mlflow(tracking_uri, args.requirement, install)
    # Failures of the tracking server (refused, unreachable) are expected errors too.
    expected: tuple[type[BaseException], ...] = (OSError, importlib.import_module("mlflow.exceptions").MlflowException)
    try:
        mlflow.set_tracking_uri(tracking_uri)
        return log_run(
            mlflow,
            experiment_name=args.experiment_name,
            run_name=args.run_name,
            params=params,
            metrics=metrics,
            tags=tags,
            artifacts=[p for p in (evaluation_path, comparison_path) if p.is_file()],
        )
    except expected as error:
        raise TrackingError(f"logging to the MLflow tracking server {tracking_uri} failed: {error}") from None


def main(argv: Sequence[str] | None = None, install: Callable[[Sequence[str]], None] | None = None) -> int:
    args = parse_args(argv)
    try:
        run_id = run(args, install)
    except TrackingError as error:
        message = f"track failed: {error}"
        print(message, file=sys.stderr)
        if args.message_file.parent.is_dir():
            args.message_file.write_text(message[:1024], encoding="utf-8")
        return 1
    print(f"track: run {run_id} ({args.run_name}) in experiment {args.experiment_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
