"""ModelEndpoint: a SageMaker endpoint with autoscaling, data capture, safe rollout and monitoring.

One module per idea:

- :mod:`~cdk_mlops.constructs.model_endpoint.settings`: the settings types (capacity, data
  capture, rollout, scale-down schedule, alarm thresholds), each checking its own values;
- :mod:`~cdk_mlops.constructs.model_endpoint.validation`: the checks of the construct's arguments
  as a whole;
- :mod:`~cdk_mlops.constructs.model_endpoint.endpoint`: the :class:`ModelEndpoint` construct
  (model, endpoint configuration, endpoint, blue/green rollout, role and grants);
- :mod:`~cdk_mlops.constructs.model_endpoint.autoscaling`: target tracking and the scale-down
  schedule of realtime endpoints, and queue tracking and scaling from zero of asynchronous ones;
- :mod:`~cdk_mlops.constructs.model_endpoint.monitoring`: metrics, alarms and the dashboard;
- :mod:`~cdk_mlops.constructs.model_endpoint.shared`: :class:`SharedModelEndpoint`, many models on
  one endpoint's instances as inference components, each scaling to zero;
- :mod:`~cdk_mlops.constructs.model_endpoint.imported`: :class:`IModelEndpoint`, what
  ``ModelMonitor`` takes, and the endpoint ``ModelEndpoint.from_endpoint_name`` imports;
- :mod:`~cdk_mlops.constructs.model_endpoint.model_source`: :func:`grant_model_source_read`, read
  access to a promoted model in the data bucket of another account or environment.

Every public name is importable from ``cdk_mlops.constructs.model_endpoint``.
"""

from __future__ import annotations

from cdk_mlops.constructs.model_endpoint.endpoint import ASYNC_INFERENCE_PREFIX as ASYNC_INFERENCE_PREFIX
from cdk_mlops.constructs.model_endpoint.endpoint import LOCAL_STORAGE_INFO_ID as LOCAL_STORAGE_INFO_ID
from cdk_mlops.constructs.model_endpoint.endpoint import VARIANT_NAME as VARIANT_NAME
from cdk_mlops.constructs.model_endpoint.endpoint import ModelEndpoint
from cdk_mlops.constructs.model_endpoint.imported import IModelEndpoint, ImportedModelEndpoint
from cdk_mlops.constructs.model_endpoint.model_source import grant_model_source_read
from cdk_mlops.constructs.model_endpoint.monitoring import ENDPOINT_INSTANCE_NAMESPACE as ENDPOINT_INSTANCE_NAMESPACE
from cdk_mlops.constructs.model_endpoint.monitoring import SAGEMAKER_NAMESPACE as SAGEMAKER_NAMESPACE
from cdk_mlops.constructs.model_endpoint.settings import (
    AsyncSettings,
    DataCaptureSettings,
    ErrorCountThreshold,
    LatencyThreshold,
    RealtimeSettings,
    RolloutSettings,
    ScaleDownSchedule,
    ServerlessSettings,
    TrafficShift,
)
from cdk_mlops.constructs.model_endpoint.shared import (
    ComponentSettings,
    HostedModel,
    SharedInstances,
    SharedModelEndpoint,
)

# The constants above stay importable from here, as before the split, but outside ``import *``.
__all__ = [
    "AsyncSettings",
    "ComponentSettings",
    "DataCaptureSettings",
    "ErrorCountThreshold",
    "HostedModel",
    "IModelEndpoint",
    "ImportedModelEndpoint",
    "LatencyThreshold",
    "ModelEndpoint",
    "RealtimeSettings",
    "RolloutSettings",
    "ScaleDownSchedule",
    "ServerlessSettings",
    "SharedInstances",
    "SharedModelEndpoint",
    "TrafficShift",
    "grant_model_source_read",
]
