"""BatchInference: score each version of a dataset with the approved model, on SageMaker Batch Transform.

* ``construct``: :class:`BatchInference` (the pipeline, its trigger, alarms, grants and metrics).
* ``settings``: :class:`BatchTransformSettings` and the missing-run window of a schedule.
* ``grants``: what the pipeline role and the job role may do.

The definition itself is :mod:`cdk_mlops.pipeline_definition.scoring`; the script of its
``PrepareInput`` step is ``cdk_mlops/ml/prepare_batch.py``.
"""

from cdk_mlops.constructs.batch_inference.construct import PIPELINE_METRICS_NAMESPACE, BatchInference
from cdk_mlops.constructs.batch_inference.settings import (
    DEFAULT_MISSING_RUN_SLACK,
    BatchTransformSettings,
    schedule_period,
)

__all__ = [
    "DEFAULT_MISSING_RUN_SLACK",
    "PIPELINE_METRICS_NAMESPACE",
    "BatchInference",
    "BatchTransformSettings",
    "schedule_period",
]
