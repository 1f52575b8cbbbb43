"""cdk-mlops: AWS CDK constructs for a closed MLOps loop.

The constructs are imported lazily (PEP 562), so that ``cdk_mlops.datasets``
and the Lambda handlers, which ship inside Lambda assets, import without
aws-cdk-lib. ``from cdk_mlops import VersionedDataStore`` works as usual.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # Lazy like the rest: Lambda assets ship this __init__ without _version.py.
    "__version__": "cdk_mlops._version",
    "ConfigurationError": "cdk_mlops.errors",
    "EnvironmentConfig": "cdk_mlops.config",
    "EndpointKind": "cdk_mlops.config",
    "NetworkConfig": "cdk_mlops.config",
    "NetworkMode": "cdk_mlops.config",
    "Profile": "cdk_mlops.config",
    "load_environments": "cdk_mlops.config",
    "profile_defaults": "cdk_mlops.config",
    "apply_compliance": "cdk_mlops.compliance",
    "apply_tags": "cdk_mlops.compliance",
    "synth_app": "cdk_mlops.compliance",
    "GuardrailSettings": "cdk_mlops.guardrails",
    "Severity": "cdk_mlops.guardrails",
    "apply_guardrails": "cdk_mlops.guardrails",
    "MlopsPlatformStage": "cdk_mlops.stacks.stage",
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
    "ToolingStage": "cdk_mlops.stacks.delivery_stack",
    "DeliveryStack": "cdk_mlops.stacks.delivery_stack",
    "ToolingConfig": "cdk_mlops.config",
    "load_tooling": "cdk_mlops.config",
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
    "TrainingSettings": "cdk_mlops.pipeline_definition",
    "ProblemType": "cdk_mlops.pipeline_definition",
    "OnViolation": "cdk_mlops.pipeline_definition",
    "ClarifySettings": "cdk_mlops.pipeline_definition",
    "BiasFacet": "cdk_mlops.pipeline_definition",
    "ShapAggregation": "cdk_mlops.pipeline_definition",
    "PrivateNetwork": "cdk_mlops.constructs.private_network",
    "RetrainTrigger": "cdk_mlops.constructs.retrain_trigger",
    "FleetDashboard": "cdk_mlops.constructs.fleet_dashboard",
    "FleetRetrainTrigger": "cdk_mlops.constructs.fleet_trigger",
    "RetrainRoute": "cdk_mlops.constructs.fleet_trigger",
    "RetrainPolicy": "cdk_mlops.constructs.retrain_trigger",
    "RetrainMode": "cdk_mlops.constructs.retrain_trigger",
    "BatchInference": "cdk_mlops.constructs.batch_inference",
    "BatchTransformSettings": "cdk_mlops.constructs.batch_inference",
    "InventorySnapshot": "cdk_mlops.constructs.inventory_snapshot",
    "Manifest": "cdk_mlops.datasets",
    "ManifestDiff": "cdk_mlops.datasets",
    "ManifestEntry": "cdk_mlops.datasets",
    "DatasetVersionError": "cdk_mlops.datasets",
    "build_platform": "cdk_mlops.stacks.stage",
}

if TYPE_CHECKING:
    from cdk_mlops._version import __version__
    from cdk_mlops.compliance import apply_compliance, apply_tags, synth_app
    from cdk_mlops.config import (
        EndpointKind,
        EnvironmentConfig,
        NetworkConfig,
        NetworkMode,
        Profile,
        ToolingConfig,
        load_environments,
        load_tooling,
        profile_defaults,
    )
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
    from cdk_mlops.datasets import DatasetVersionError, Manifest, ManifestDiff, ManifestEntry
    from cdk_mlops.errors import ConfigurationError
    from cdk_mlops.guardrails import GuardrailSettings, Severity, apply_guardrails
    from cdk_mlops.pipeline_definition import (
        BiasFacet,
        ClarifySettings,
        OnViolation,
        ProblemType,
        ShapAggregation,
        TrainingSettings,
    )
    from cdk_mlops.stacks.delivery_stack import DeliveryStack, ToolingStage
    from cdk_mlops.stacks.stage import MlopsPlatformStage, build_platform

__all__ = [
    "AsyncSettings",
    "Baselines",
    "BatchInference",
    "BatchTransformCapture",
    "BatchTransformSettings",
    "BiasFacet",
    "CapturedDatasetFormat",
    "ClarifySettings",
    "ComponentSettings",
    "ConfigurationError",
    "DataCaptureSettings",
    "DataQualitySettings",
    "DatasetVersionError",
    "DeliveryAccess",
    "DeliveryStack",
    "DeliveryTarget",
    "EndpointKind",
    "EndpointTest",
    "EnvironmentConfig",
    "ErrorCountThreshold",
    "FleetDashboard",
    "FleetRetrainTrigger",
    "GuardrailSettings",
    "HostedModel",
    "IBatchTransformCapture",
    "IDataStore",
    "IModelEndpoint",
    "ImportedDataStore",
    "ImportedModelEndpoint",
    "InventorySnapshot",
    "LatencyThreshold",
    "Manifest",
    "ManifestDiff",
    "ManifestEntry",
    "MlflowServerSize",
    "MlflowSettings",
    "MlopsPlatformStage",
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
    "NetworkConfig",
    "NetworkMode",
    "ObjectLockSettings",
    "OnViolation",
    "PipelineSource",
    "PlatformDeliveryPipeline",
    "PrivateNetwork",
    "ProblemType",
    "Profile",
    "RealtimeSettings",
    "RetrainMode",
    "RetrainPolicy",
    "RetrainRoute",
    "RetrainTrigger",
    "RolloutSettings",
    "ScaleDownSchedule",
    "SdkTrainingPipeline",
    "ServerlessSettings",
    "Severity",
    "ShapAggregation",
    "SharedInstances",
    "SharedModelEndpoint",
    "ToolingConfig",
    "ToolingStage",
    "TrafficShift",
    "TrainingPipeline",
    "TrainingSettings",
    "VersionedDataStore",
    "__version__",
    "apply_compliance",
    "apply_guardrails",
    "apply_tags",
    "build_platform",
    "feature_drift_alarm_name",
    "grant_model_source_read",
    "load_environments",
    "load_tooling",
    "model_quality_alarm_name",
    "profile_defaults",
    "synth_app",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cdk_mlops' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
