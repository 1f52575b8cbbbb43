"""Batch scoring on the local AWS: a model is approved, Dev serves it, a data drop is scored once.

After the Dev stage is deployed (:func:`cdk_mlops.local.deploy.deploy_stage`), :func:`run_batch`
drives the deployed scoring platform with the real code, reusing the closed loop's steps
(:mod:`cdk_mlops.local.loop`):

1. :func:`train_model`: data version 1 lands under the training dataset, the retrain trigger
   starts the training pipeline, its steps run locally and the model package is registered
   (approved: Dev auto-approves), with the loop's steps 1, 2 and 5.
2. :func:`deploy_scoring`: Dev is deployed again, serving that package as the model delivery
   pipeline would set it (:func:`cdk_mlops.delivery_steps.model_settings` of its
   ``DescribeModelPackage``: the package and its data-quality baseline), with
   ``batch_inference`` scoring :data:`SCORING_DATASET`. The stage gains its Scoring stack, whose
   retrain trigger starts the scoring pipeline (:func:`discover_scoring` finds its function
   among that stack's resources; its environment names the dataset, queue and table).
3. :func:`score_drop`: a scoring data version (:func:`scoring_version`: features of the sample
   dataset without the label, as scoring data comes) lands under ``datasets/<scored dataset>/``;
   its events go through the deployed rule and queue to the real handler, as in the loop, until
   exactly one scoring execution starts with the manifest; the same batch delivered again
   starts none; the execution's ``Model``, ``PrepareInput`` and ``Transform`` steps run locally
   (:mod:`cdk_mlops.local.pipeline_run`); ``lineage.json`` and the predictions are read back
   from S3 where the deployed definition puts them. :func:`check_scored` raises
   :class:`~cdk_mlops.local.loop_emulation.LoopError` unless the lineage names the package and
   the manifest and there is one prediction per input row.

The flow lives in :mod:`cdk_mlops.local.batch_demo_steps` and the lines it prints in
:mod:`cdk_mlops.local.batch_demo_narration`, both re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cdk_mlops.local.batch_demo_narration import (
    render_batch_summary,
    render_deployment,
    render_scored,
    render_trained,
)
from cdk_mlops.local.batch_demo_steps import (
    SCORING_DATASET,
    SCORING_STACK,
    Predictions,
    Scored,
    ScoringDeployment,
    Trained,
    check_scored,
    data_rows,
    deploy_scoring,
    discover_scoring,
    read_predictions,
    score_drop,
    scoring_overrides,
    scoring_version,
    train_model,
)
from cdk_mlops.local.deploy import STAGE
from cdk_mlops.local.loop import Emit, emit_all, progress
from cdk_mlops.local.server import LocalAws

__all__ = [
    "SCORING_DATASET",
    "SCORING_STACK",
    "BatchReport",
    "Predictions",
    "Scored",
    "ScoringDeployment",
    "Trained",
    "check_scored",
    "data_rows",
    "deploy_scoring",
    "discover_scoring",
    "read_predictions",
    "render_batch_summary",
    "render_deployment",
    "render_scored",
    "render_trained",
    "run_batch",
    "score_drop",
    "scoring_overrides",
    "scoring_version",
    "train_model",
]


@dataclass(frozen=True)
class BatchReport:
    """Everything :func:`run_batch` did, step by step."""

    trained: Trained
    deployment: ScoringDeployment
    scored: Scored


def run_batch(
    aws: LocalAws,
    *,
    work_dir: Path,
    output: Path | None = None,
    emit: Emit = progress,
    stage: str = STAGE,
) -> BatchReport:
    """Steps 1 to 3 against the deployed stage (see the module docstring), printing each with ``emit``.

    Args:
        aws: The local AWS (its server must run in this process), with the stage deployed.
        work_dir: Where the steps may write files.
        output: The cloud assembly directory of the stage's deploy; the redeploy writes there, so
            that destroying the stage from it removes the Scoring stack too.
        emit: Prints each step's lines.
        stage: The stage. Default: - ``Dev``.

    Raises:
        LoopError: if a step or a check fails; the message names what differs.
    """
    trained = train_model(aws, work_dir=work_dir / "training")
    emit_all(emit, render_trained(trained))
    deployment = deploy_scoring(aws, trained.registration.package, output=output, stage=stage)
    emit_all(emit, render_deployment(deployment))
    scored = score_drop(aws, deployment.platform, work_dir=work_dir / "scoring")
    emit_all(emit, render_scored(scored))
    check_scored(scored)
    return BatchReport(trained, deployment, scored)
