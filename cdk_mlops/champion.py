"""The champion: the approved model package that every new training run must beat.

The training pipeline's gate registers a model only when it beats ``ChampionMetric`` (``0``
means there is no champion yet), and ``Preprocess`` validates new data against the
constraints in ``BaselineConstraintsUri`` (empty skips the check). Whoever starts an execution
passes both, read from the newest ``Approved`` package of the model package group:

1. ``ListModelPackages`` (the group, ``ModelApprovalStatus="Approved"``, newest first, one result);
   none means the first model, and :func:`first_model_parameters` applies;
2. ``DescribeModelPackage`` of that package;
3. ``GetObject`` of :func:`evaluation_uri` (the package's ``evaluation.json``);
4. :func:`champion_parameters` of the two.

The retrain trigger's handler does exactly that on every start. This module is pure and uses
the standard library only: the handler's Lambda asset ships it as it is, and
:mod:`cdk_mlops.pipeline_definition` re-exports its names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "BASELINE_CONSTRAINTS_URI",
    "CHAMPION_METRIC",
    "METADATA_EVALUATION_METRIC",
    "NO_CHAMPION",
    "champion_parameters",
    "evaluation_uri",
    "first_model_parameters",
]

#: Pipeline parameter: metric of the currently approved model; ``0`` means there is no champion.
CHAMPION_METRIC: Final = "ChampionMetric"
#: Pipeline parameter: S3 URI of a Model Monitor ``constraints.json`` to validate new data against; empty skips.
BASELINE_CONSTRAINTS_URI: Final = "BaselineConstraintsUri"
#: Model package metadata key: where the gate's metric is in ``evaluation.json`` (``<metrics key>.<metric>.value``).
METADATA_EVALUATION_METRIC: Final = "EvaluationMetric"
#: ``ChampionMetric`` without an approved model (the definition's default): the first model that
#: meets the threshold is registered.
NO_CHAMPION: Final = 0.0


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def first_model_parameters() -> dict[str, str]:
    """The parameters of an execution when the group has no approved package yet.

    ``ChampionMetric`` is ``0`` (the definition's default, passed explicitly so that every
    execution records what it was compared with); ``BaselineConstraintsUri`` keeps its empty
    default, so new data is not validated against a baseline.
    """
    return {CHAMPION_METRIC: repr(NO_CHAMPION)}


def evaluation_uri(model_package: Mapping[str, Any]) -> str:
    """The ``s3://`` URI of a package's evaluation (``ModelMetrics.ModelQuality.Statistics.S3Uri``).

    Args:
        model_package: A ``DescribeModelPackage`` response.

    Raises:
        ValueError: if the package records no evaluation; it was not registered by this pipeline.
    """
    metrics = model_package.get("ModelMetrics") or {}
    uri = (metrics.get("ModelQuality") or {}).get("Statistics", {}).get("S3Uri")
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise ValueError(
            "the model package has no ModelMetrics.ModelQuality.Statistics.S3Uri; it was not registered by this "
            "pipeline"
        )
    return uri


def champion_parameters(model_package: Mapping[str, Any], evaluation: Mapping[str, Any]) -> dict[str, str]:
    """Execution parameters that make the approved model package the champion.

    For whoever starts executions (the retrain trigger, a delivery pipeline): read the
    group's latest ``Approved`` package with DescribeModelPackage, load the JSON at its
    ``ModelMetrics.ModelQuality.Statistics.S3Uri`` (the package's ``evaluation.json``), and
    pass both here. Pure: no AWS calls.

    Returns:
        ``ChampionMetric`` (the metric named by the package's ``EvaluationMetric`` metadata)
        and, when the package has one, ``BaselineConstraintsUri`` (its data-quality
        constraints), as ``PipelineParameters`` values (strings).

    Raises:
        ValueError: if the package was not registered by this pipeline (no
            ``EvaluationMetric``) or its evaluation lacks the metric.
    """
    metadata = model_package.get("CustomerMetadataProperties") or {}
    path = metadata.get(METADATA_EVALUATION_METRIC)
    if not isinstance(path, str) or not path:
        raise ValueError("the model package has no EvaluationMetric metadata; it was not registered by this pipeline")
    node: Any = evaluation
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ValueError(f"the champion's evaluation has no {path!r}")
        node = node[part]
    if not _is_number(node) or not math.isfinite(node):
        raise ValueError(f"the champion's {path!r} is {node!r}, not a number")
    parameters = {CHAMPION_METRIC: repr(float(node))}
    constraints = (
        (model_package.get("DriftCheckBaselines") or {}).get("ModelDataQuality", {}).get("Constraints", {}).get("S3Uri")
    )
    if isinstance(constraints, str) and constraints:
        parameters[BASELINE_CONSTRAINTS_URI] = constraints
    return parameters
