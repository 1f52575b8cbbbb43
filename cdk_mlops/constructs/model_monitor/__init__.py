"""ModelMonitor: scheduled Model Monitor jobs on captured endpoint or batch data, with alarms that feed retraining.

The public API is re-exported here; import from ``cdk_mlops.constructs.model_monitor``. Where
each part lives:

- :mod:`.construct`: the ``ModelMonitor`` construct, which validates and wires the parts below;
- :mod:`.batch`: a batch transform job as the monitored source (``IBatchTransformCapture``,
  ``BatchTransformCapture``, ``CapturedDatasetFormat``) and its network;
- :mod:`.monitoring_type`: ``MonitoringType``, the four things Model Monitor checks;
- one module per type, with its settings and its job definition: :mod:`.data_quality`,
  :mod:`.model_quality` (and ``MonitorProblemType``), :mod:`.model_bias`,
  :mod:`.model_explainability` (and Clarify's shadow-endpoint access), with
  :mod:`.served_config` (``ServedAnalysisConfig``: its configuration naming the served model);
- what the types share: :mod:`.baselines` (the files they compare with), :mod:`.job` (compute
  settings, network and the job definition's common properties), :mod:`.checks` (validation
  helpers), :mod:`.schedule` (``MonitorSchedule`` and the schedule resource);
- what follows an execution: :mod:`.violations` (violations → retrain events, failures → the
  topic) and :mod:`.alarms` (execution, drift and quality alarms, and their names);
- :mod:`.access`: the least-privilege grants of the jobs' role.
"""

from __future__ import annotations

from cdk_mlops.constructs.model_monitor.alarms import feature_drift_alarm_name, model_quality_alarm_name
from cdk_mlops.constructs.model_monitor.baselines import Baselines
from cdk_mlops.constructs.model_monitor.batch import (
    BATCH_CAPTURE_PREFIX,
    BatchTransformCapture,
    CapturedDatasetFormat,
    IBatchTransformCapture,
)
from cdk_mlops.constructs.model_monitor.construct import BATCH_SCHEDULE_WARNING, ModelMonitor
from cdk_mlops.constructs.model_monitor.data_quality import DataQualitySettings
from cdk_mlops.constructs.model_monitor.model_bias import ModelBiasSettings
from cdk_mlops.constructs.model_monitor.model_explainability import ModelExplainabilitySettings
from cdk_mlops.constructs.model_monitor.model_quality import ModelQualitySettings, MonitorProblemType
from cdk_mlops.constructs.model_monitor.monitoring_type import MonitoringType
from cdk_mlops.constructs.model_monitor.schedule import MonitorSchedule, schedule_name
from cdk_mlops.constructs.model_monitor.served_config import ServedAnalysisConfig
from cdk_mlops.constructs.model_monitor.violations import (
    FAILED_STATUSES,
    METRICS_NAMESPACE,
    PROCESSING_JOB_STATE_CHANGE,
    VIOLATIONS_EXIT_PREFIX,
)

__all__ = [
    "BATCH_CAPTURE_PREFIX",
    "BATCH_SCHEDULE_WARNING",
    "FAILED_STATUSES",
    "METRICS_NAMESPACE",
    "PROCESSING_JOB_STATE_CHANGE",
    "VIOLATIONS_EXIT_PREFIX",
    "Baselines",
    "BatchTransformCapture",
    "CapturedDatasetFormat",
    "DataQualitySettings",
    "IBatchTransformCapture",
    "ModelBiasSettings",
    "ModelExplainabilitySettings",
    "ModelMonitor",
    "ModelQualitySettings",
    "MonitorProblemType",
    "MonitorSchedule",
    "MonitoringType",
    "ServedAnalysisConfig",
    "feature_drift_alarm_name",
    "model_quality_alarm_name",
    "schedule_name",
]
