"""Reusable L3 constructs, one module per capability.

The same names as the package root: ``from cdk_mlops.constructs import VersionedDataStore`` and
``from cdk_mlops import VersionedDataStore`` are the same class. The imports are lazy (PEP 562), as
in the package root, so importing one construct module does not import every other.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "VersionedDataStore": "cdk_mlops.constructs.data_store",
    "ObjectLockSettings": "cdk_mlops.constructs.data_store",
    "IDataStore": "cdk_mlops.constructs.data_store",
    "ImportedDataStore": "cdk_mlops.constructs.data_store",
    "TrainingPipeline": "cdk_mlops.constructs.training_pipeline",
    "SdkTrainingPipeline": "cdk_mlops.constructs.training_pipeline",
    "MlflowSettings": "cdk_mlops.constructs.training_pipeline",
    "MlflowServerSize": "cdk_mlops.constructs.training_pipeline",
    "ModelMonitor": "cdk_mlops.constructs.model_monitor",
    "MonitoringType": "cdk_mlops.constructs.model_monitor",
    "MonitorProblemType": "cdk_mlops.constructs.model_monitor",
    "MonitorSchedule": "cdk_mlops.constructs.model_monitor",
    "Baselines": "cdk_mlops.constructs.model_monitor",
    "DataQualitySettings": "cdk_mlops.constructs.model_monitor",
    "ModelQualitySettings": "cdk_mlops.constructs.model_monitor",
    "ModelBiasSettings": "cdk_mlops.constructs.model_monitor",
    "ModelExplainabilitySettings": "cdk_mlops.constructs.model_monitor",
    "feature_drift_alarm_name": "cdk_mlops.constructs.model_monitor",
    "model_quality_alarm_name": "cdk_mlops.constructs.model_monitor",
    "BatchTransformCapture": "cdk_mlops.constructs.model_monitor",
    "CapturedDatasetFormat": "cdk_mlops.constructs.model_monitor",
    "IBatchTransformCapture": "cdk_mlops.constructs.model_monitor",
    "PlatformDeliveryPipeline": "cdk_mlops.constructs.delivery",
    "ModelDeliveryPipeline": "cdk_mlops.constructs.delivery",
    "PipelineSource": "cdk_mlops.constructs.delivery",
    "DeliveryTarget": "cdk_mlops.constructs.delivery",
    "ModelDeliveryTarget": "cdk_mlops.constructs.delivery",
    "EndpointTest": "cdk_mlops.constructs.delivery",
    "DeliveryAccess": "cdk_mlops.constructs.delivery",
    "ModelEndpoint": "cdk_mlops.constructs.model_endpoint",
    "grant_model_source_read": "cdk_mlops.constructs.model_endpoint",
    "IModelEndpoint": "cdk_mlops.constructs.model_endpoint",
    "ImportedModelEndpoint": "cdk_mlops.constructs.model_endpoint",
    "RealtimeSettings": "cdk_mlops.constructs.model_endpoint",
    "ServerlessSettings": "cdk_mlops.constructs.model_endpoint",
    "AsyncSettings": "cdk_mlops.constructs.model_endpoint",
    "HostedModel": "cdk_mlops.constructs.model_endpoint",
    "ComponentSettings": "cdk_mlops.constructs.model_endpoint",
    "SharedInstances": "cdk_mlops.constructs.model_endpoint",
    "SharedModelEndpoint": "cdk_mlops.constructs.model_endpoint",
    "DataCaptureSettings": "cdk_mlops.constructs.model_endpoint",
    "RolloutSettings": "cdk_mlops.constructs.model_endpoint",
    "TrafficShift": "cdk_mlops.constructs.model_endpoint",
    "ScaleDownSchedule": "cdk_mlops.constructs.model_endpoint",
    "LatencyThreshold": "cdk_mlops.constructs.model_endpoint",
    "ErrorCountThreshold": "cdk_mlops.constructs.model_endpoint",
    "PrivateNetwork": "cdk_mlops.constructs.private_network",
    "RetrainTrigger": "cdk_mlops.constructs.retrain_trigger",
    "FleetDashboard": "cdk_mlops.constructs.fleet_dashboard",
    "FleetRetrainTrigger": "cdk_mlops.constructs.fleet_trigger",
    "RetrainRoute": "cdk_mlops.constructs.fleet_trigger",
    "RetrainPolicy": "cdk_mlops.constructs.retrain_trigger",
    "RetrainMode": "cdk_mlops.constructs.retrain_trigger",
    "BatchInference": "cdk_mlops.constructs.batch_inference",
    "InventorySnapshot": "cdk_mlops.constructs.inventory_snapshot",
    "BatchTransformSettings": "cdk_mlops.constructs.batch_inference",
}

if TYPE_CHECKING:
    from cdk_mlops.constructs.batch_inference import BatchInference, BatchTransformSettings
    from cdk_mlops.constructs.data_store import (
        IDataStore,
        ImportedDataStore,
        ObjectLockSettings,
        VersionedDataStore,
    )
    from cdk_mlops.constructs.delivery import (
        DeliveryAccess,
        DeliveryTarget,
        EndpointTest,
        ModelDeliveryPipeline,
        ModelDeliveryTarget,
        PipelineSource,
        PlatformDeliveryPipeline,
    )
    from cdk_mlops.constructs.fleet_dashboard import FleetDashboard
    from cdk_mlops.constructs.fleet_trigger import FleetRetrainTrigger, RetrainRoute
    from cdk_mlops.constructs.inventory_snapshot import InventorySnapshot
    from cdk_mlops.constructs.model_endpoint import (
        AsyncSettings,
        ComponentSettings,
        DataCaptureSettings,
        ErrorCountThreshold,
        HostedModel,
        IModelEndpoint,
        ImportedModelEndpoint,
        LatencyThreshold,
        ModelEndpoint,
        RealtimeSettings,
        RolloutSettings,
        ScaleDownSchedule,
        ServerlessSettings,
        SharedInstances,
        SharedModelEndpoint,
        TrafficShift,
        grant_model_source_read,
    )
    from cdk_mlops.constructs.model_monitor import (
        Baselines,
        BatchTransformCapture,
        CapturedDatasetFormat,
        DataQualitySettings,
        IBatchTransformCapture,
        ModelBiasSettings,
        ModelExplainabilitySettings,
        ModelMonitor,
        ModelQualitySettings,
        MonitoringType,
        MonitorProblemType,
        MonitorSchedule,
        feature_drift_alarm_name,
        model_quality_alarm_name,
    )
    from cdk_mlops.constructs.private_network import PrivateNetwork
    from cdk_mlops.constructs.retrain_trigger import RetrainMode, RetrainPolicy, RetrainTrigger
    from cdk_mlops.constructs.training_pipeline import (
        MlflowServerSize,
        MlflowSettings,
        SdkTrainingPipeline,
        TrainingPipeline,
    )

__all__ = [
    "AsyncSettings",
    "Baselines",
    "BatchInference",
    "BatchTransformCapture",
    "BatchTransformSettings",
    "CapturedDatasetFormat",
    "ComponentSettings",
    "DataCaptureSettings",
    "DataQualitySettings",
    "DeliveryAccess",
    "DeliveryTarget",
    "EndpointTest",
    "ErrorCountThreshold",
    "FleetDashboard",
    "FleetRetrainTrigger",
    "HostedModel",
    "IBatchTransformCapture",
    "IDataStore",
    "IModelEndpoint",
    "ImportedDataStore",
    "ImportedModelEndpoint",
    "InventorySnapshot",
    "LatencyThreshold",
    "MlflowServerSize",
    "MlflowSettings",
    "ModelBiasSettings",
    "ModelDeliveryPipeline",
    "ModelDeliveryTarget",
    "ModelEndpoint",
    "ModelExplainabilitySettings",
    "ModelMonitor",
    "ModelQualitySettings",
    "MonitorProblemType",
    "MonitorSchedule",
    "MonitoringType",
    "ObjectLockSettings",
    "PipelineSource",
    "PlatformDeliveryPipeline",
    "PrivateNetwork",
    "RealtimeSettings",
    "RetrainMode",
    "RetrainPolicy",
    "RetrainRoute",
    "RetrainTrigger",
    "RolloutSettings",
    "ScaleDownSchedule",
    "SdkTrainingPipeline",
    "ServerlessSettings",
    "SharedInstances",
    "SharedModelEndpoint",
    "TrafficShift",
    "TrainingPipeline",
    "VersionedDataStore",
    "feature_drift_alarm_name",
    "grant_model_source_read",
    "model_quality_alarm_name",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cdk_mlops.constructs' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
