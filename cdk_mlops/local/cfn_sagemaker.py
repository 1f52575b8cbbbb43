"""SageMaker endpoints by name, and Model Monitor: the four monitoring job definitions and the monitoring schedule.

``AWS::SageMaker::Endpoint``
    moto's model, but named by ``EndpointName`` (moto ignored it and generated a name, so
    nothing that names the endpoint, a scalable target or a monitoring schedule, found it).

moto's SageMaker keeps job definitions of all four kinds (create, describe, list, delete) but
its CloudFormation knows none of their types, and it has no monitoring schedules at all.

``AWS::SageMaker::DataQualityJobDefinition``, ``ModelQualityJobDefinition``,
``ModelBiasJobDefinition``, ``ModelExplainabilityJobDefinition``
    created on moto's SageMaker backend, so ``Describe*JobDefinition`` and
    ``List*JobDefinitions`` answer after a deploy. ``Ref`` and ``Fn::GetAtt JobDefinitionArn``
    are the ARN (``arn:...:<kind>-job-definition/<name>``), ``Fn::GetAtt CreationTime`` its
    creation time. Without ``JobDefinitionName`` the name is generated from the stack and
    logical id (63 characters at most). Every property is create-only in CloudFormation, so
    an update replaces the definition. A name already taken is refused, as in SageMaker (moto
    would overwrite the other definition).
``AWS::SageMaker::MonitoringSchedule``
    kept by this module (:func:`monitoring_schedules`) and answered on the SageMaker API:
    ``DescribeMonitoringSchedule`` (name, ARN, ``Scheduled`` status, type, endpoint, the
    ``MonitoringScheduleConfig`` as deployed, creation and modification times) and
    ``ListMonitoringSchedules`` (filters ``EndpointName``, ``NameContains``,
    ``MonitoringJobDefinitionName``, ``MonitoringTypeEquals``, ``StatusEquals``; sorted by
    creation time, newest first). ``Ref`` and ``Fn::GetAtt MonitoringScheduleArn`` are the ARN;
    ``CreationTime`` and ``LastModifiedTime`` too. As in SageMaker, the endpoint (when given)
    and the job definition of the schedule's ``MonitoringType`` must exist, and the name is
    unique. Updates are in place, except a new name.

Not answerable: ``CreateMonitoringSchedule``, ``UpdateMonitoringSchedule``,
``DeleteMonitoringSchedule``, ``Start``/``StopMonitoringSchedule`` and monitoring executions
(``ListMonitoringExecutions``): only CloudFormation creates, changes and deletes schedules, and
no schedule ever runs a job locally (``LastMonitoringExecutionSummary`` is absent).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from moto.core.common_models import CloudFormationModel
from moto.core.responses import ActionResult
from moto.sagemaker.exceptions import ResourceNotFound, ValidationError
from moto.sagemaker.models import FakeEndpoint, sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemaker.utils import arn_formatter

from cdk_mlops.local.cfn_resource import Props, ShimResource, cfn_tags

__all__ = [
    "DataQualityJobDefinition",
    "ModelBiasJobDefinition",
    "ModelExplainabilityJobDefinition",
    "ModelQualityJobDefinition",
    "MonitoringSchedule",
    "MonitoringScheduleRecord",
    "SageMakerEndpoint",
    "install_monitoring_api",
    "monitoring_schedules",
]

#: Longest name SageMaker takes for a job definition or schedule.
_MAX_NAME = 63
#: Characters of moto's generated suffix (``stack-logicalid-SUFFIX``) kept when a name is cut.
_SUFFIX = 12


def _fit_name(name: str) -> str:
    """A generated name cut to SageMaker's 63 characters, keeping its unique suffix."""
    if len(name) <= _MAX_NAME:
        return name
    head = name[: _MAX_NAME - _SUFFIX - 1].rstrip("-")
    return f"{head}-{name[-_SUFFIX:]}"


def _backend(account: str, region: str) -> Any:
    return sagemaker_backends[account][region]


class SageMakerEndpoint(FakeEndpoint, CloudFormationModel):
    """``AWS::SageMaker::Endpoint``: moto's endpoint, named by its ``EndpointName`` when the template gives one."""

    @staticmethod
    def cloudformation_name_type() -> str:
        return "EndpointName"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Props, account_id: str, region_name: str, **kwargs: Any
    ) -> FakeEndpoint:
        # moto looks the name property up on the first model of a type (its own, which has none).
        name = cloudformation_json.get("Properties", {}).get("EndpointName") or resource_name
        return FakeEndpoint.create_from_cloudformation_json(
            name, cloudformation_json, account_id, region_name, **kwargs
        )


# --- job definitions -------------------------------------------------------------------------------


class _JobDefinition(ShimResource):
    """A monitoring job definition on moto's SageMaker backend; ``Ref`` is its ARN.

    Each kind sets ``KIND`` (its CloudFormation property prefix, e.g. ``DataQuality``) and
    ``STORE`` (the backend's dict of that kind).
    """

    KIND: ClassVar[str]
    STORE: ClassVar[str]
    NAME_PROPERTY = "JobDefinitionName"
    ATTRIBUTES = frozenset({"JobDefinitionArn", "CreationTime"})

    def __init__(self, name: str, arn: str, created: str) -> None:
        super().__init__(arn, {"JobDefinitionArn": arn, "CreationTime": created})
        self.name = name

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> _JobDefinition:
        name = _fit_name(name)
        backend = _backend(account, region)
        if name in getattr(backend, cls.STORE):
            raise ValidationError(f"Resource Already Exists: a {cls.KIND} job definition named {name} already exists")
        cls._create(backend, name, p, account)
        definition = getattr(backend, cls.STORE)[name]
        return cls(name, definition.arn, definition.creation_time.isoformat())

    @classmethod
    def _create(cls, backend: Any, name: str, p: Props, account: str) -> None:
        raise NotImplementedError

    @classmethod
    def _settings(cls, p: Props) -> dict[str, Any]:
        """The kind's own properties (baseline, app specification, input, output) under moto's argument names."""
        kind = cls.KIND
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in kind).lstrip("_")
        return {
            f"{snake}_baseline_config": p.get(f"{kind}BaselineConfig"),
            f"{snake}_app_specification": p[f"{kind}AppSpecification"],
            f"{snake}_job_input": p[f"{kind}JobInput"],
            f"{snake}_job_output_config": p[f"{kind}JobOutputConfig"],
        }

    def delete(self, account_id: str, region_name: str) -> None:
        getattr(_backend(account_id, region_name), self.STORE).pop(self.name, None)


class _OlderJobDefinition(_JobDefinition):
    """Data quality and model bias: moto's ``create_*`` takes the account, tags and environment."""

    CREATE: ClassVar[str]

    @classmethod
    def _create(cls, backend: Any, name: str, p: Props, account: str) -> None:
        create: Callable[..., Any] = getattr(backend, cls.CREATE)
        create(
            account_id=account,
            job_definition_name=name,
            tags=cfn_tags(p),
            role_arn=p["RoleArn"],
            job_resources=p["JobResources"],
            stopping_condition=p.get("StoppingCondition"),
            network_config=p.get("NetworkConfig"),
            **cls._settings(p),
        )


class _NewerJobDefinition(_JobDefinition):
    """Model quality and explainability: moto's ``create_*`` takes the settings and tags only."""

    CREATE: ClassVar[str]

    @classmethod
    def _create(cls, backend: Any, name: str, p: Props, account: str) -> None:
        create: Callable[..., Any] = getattr(backend, cls.CREATE)
        create(
            job_definition_name=name,
            job_resources=p["JobResources"],
            network_config=p.get("NetworkConfig"),
            role_arn=p["RoleArn"],
            stopping_condition=p.get("StoppingCondition"),
            tags=cfn_tags(p),
            **cls._settings(p),
        )


class DataQualityJobDefinition(_OlderJobDefinition, CloudFormationModel):
    """``AWS::SageMaker::DataQualityJobDefinition`` on moto's backend."""

    TYPE = "AWS::SageMaker::DataQualityJobDefinition"
    KIND = "DataQuality"
    STORE = "data_quality_job_definitions"
    CREATE = "create_data_quality_job_definition"


class ModelBiasJobDefinition(_OlderJobDefinition, CloudFormationModel):
    """``AWS::SageMaker::ModelBiasJobDefinition`` on moto's backend."""

    TYPE = "AWS::SageMaker::ModelBiasJobDefinition"
    KIND = "ModelBias"
    STORE = "model_bias_job_definitions"
    CREATE = "create_model_bias_job_definition"


class ModelQualityJobDefinition(_NewerJobDefinition, CloudFormationModel):
    """``AWS::SageMaker::ModelQualityJobDefinition`` on moto's backend."""

    TYPE = "AWS::SageMaker::ModelQualityJobDefinition"
    KIND = "ModelQuality"
    STORE = "model_quality_job_definitions"
    CREATE = "create_model_quality_job_definition"


class ModelExplainabilityJobDefinition(_NewerJobDefinition, CloudFormationModel):
    """``AWS::SageMaker::ModelExplainabilityJobDefinition`` on moto's backend."""

    TYPE = "AWS::SageMaker::ModelExplainabilityJobDefinition"
    KIND = "ModelExplainability"
    STORE = "model_explainability_job_definitions"
    CREATE = "create_model_explainability_job_definition"


#: The backend store of each ``MonitoringType``'s job definitions.
_DEFINITION_STORES = {
    model.KIND: model.STORE
    for model in (
        DataQualityJobDefinition,
        ModelQualityJobDefinition,
        ModelBiasJobDefinition,
        ModelExplainabilityJobDefinition,
    )
}


# --- monitoring schedules --------------------------------------------------------------------------


@dataclass
class MonitoringScheduleRecord:
    """A deployed monitoring schedule, as ``DescribeMonitoringSchedule`` reports it."""

    name: str
    arn: str
    config: dict[str, Any]
    endpoint_name: str | None
    tags: list[dict[str, str]]
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def monitoring_type(self) -> str:
        """The schedule's ``MonitoringType`` (``DataQuality`` when the config leaves it out, as SageMaker does)."""
        return str(self.config.get("MonitoringType", "DataQuality"))

    def describe(self) -> dict[str, Any]:
        """The ``DescribeMonitoringSchedule`` response."""
        answer: dict[str, Any] = {
            "MonitoringScheduleArn": self.arn,
            "MonitoringScheduleName": self.name,
            "MonitoringScheduleStatus": "Scheduled",
            "MonitoringType": self.monitoring_type,
            "CreationTime": self.created,
            "LastModifiedTime": self.modified,
            "MonitoringScheduleConfig": self.config,
        }
        if self.endpoint_name:
            answer["EndpointName"] = self.endpoint_name
        return answer

    def summary(self) -> dict[str, Any]:
        """The ``ListMonitoringSchedules`` entry."""
        summary = {
            key: value
            for key, value in self.describe().items()
            if key not in ("MonitoringScheduleConfig", "MonitoringType")
        }
        summary["MonitoringJobDefinitionName"] = self.config.get("MonitoringJobDefinitionName")
        summary["MonitoringType"] = self.monitoring_type
        return summary


_schedules_lock = threading.Lock()
_schedules: dict[tuple[str, str], dict[str, MonitoringScheduleRecord]] = {}


def monitoring_schedules(account: str, region: str) -> dict[str, MonitoringScheduleRecord]:
    """The deployed monitoring schedules of an account and region, by name (the live registry)."""
    with _schedules_lock:
        return _schedules.setdefault((account, region), {})


def _check_schedule(p: Props, account: str, region: str) -> None:
    backend = _backend(account, region)
    endpoint = p.get("EndpointName")
    if endpoint and endpoint not in backend.endpoints:
        raise ValidationError(
            f"Could not find endpoint {endpoint!r} for monitoring schedule {p['MonitoringScheduleName']}"
        )
    config = p["MonitoringScheduleConfig"]
    definition = config.get("MonitoringJobDefinitionName")
    if definition:
        kind = str(config.get("MonitoringType", "DataQuality"))
        store = getattr(backend, _DEFINITION_STORES.get(kind, ""), None)
        if store is None:
            raise ValidationError(f"MonitoringType {kind!r} is not one of {sorted(_DEFINITION_STORES)}")
        if definition not in store:
            raise ValidationError(f"Could not find {kind} job definition {definition!r}")


class MonitoringSchedule(ShimResource, CloudFormationModel):
    """``AWS::SageMaker::MonitoringSchedule``: recorded here, answered by the SageMaker API; ``Ref`` is the ARN."""

    TYPE = "AWS::SageMaker::MonitoringSchedule"
    NAME_PROPERTY = "MonitoringScheduleName"
    ATTRIBUTES = frozenset({"MonitoringScheduleArn", "CreationTime", "LastModifiedTime"})

    def __init__(self, record: MonitoringScheduleRecord) -> None:
        super().__init__(record.arn)
        self.record = record
        self._refresh()

    def _refresh(self) -> None:
        self.attributes = {
            "MonitoringScheduleArn": self.record.arn,
            "CreationTime": self.record.created.isoformat(),
            "LastModifiedTime": self.record.modified.isoformat(),
        }

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> MonitoringSchedule:
        name = _fit_name(name)
        _check_schedule({**p, "MonitoringScheduleName": name}, account, region)
        schedules = monitoring_schedules(account, region)
        if name in schedules:
            raise ValidationError(f"Monitoring schedule {name} already exists")
        record = MonitoringScheduleRecord(
            name=name,
            arn=arn_formatter("monitoring-schedule", name, account, region),
            config=dict(p["MonitoringScheduleConfig"]),
            endpoint_name=p.get("EndpointName"),
            tags=cfn_tags(p),
        )
        schedules[name] = record
        return cls(record)

    def modify(self, name: str, p: Props, account: str, region: str) -> ShimResource:
        if p.get("MonitoringScheduleName", self.record.name) != self.record.name:
            return super().modify(name, p, account, region)
        _check_schedule({**p, "MonitoringScheduleName": self.record.name}, account, region)
        self.record.config = dict(p["MonitoringScheduleConfig"])
        self.record.endpoint_name = p.get("EndpointName")
        self.record.tags = cfn_tags(p)
        self.record.modified = datetime.now(UTC)
        self._refresh()
        return self

    def delete(self, account_id: str, region_name: str) -> None:
        monitoring_schedules(account_id, region_name).pop(self.record.name, None)


# --- the SageMaker API's answers ----------------------------------------------------------------------


def _describe_monitoring_schedule(self: Any) -> ActionResult:
    name = self._get_param("MonitoringScheduleName")
    record = monitoring_schedules(self.current_account, self.region).get(name)
    if record is None:
        raise ResourceNotFound(f"Monitoring schedule {name} does not exist")
    return ActionResult(record.describe())


def _list_monitoring_schedules(self: Any) -> ActionResult:
    records = list(monitoring_schedules(self.current_account, self.region).values())
    filters: dict[str, Callable[[MonitoringScheduleRecord, str], bool]] = {
        "EndpointName": lambda r, v: r.endpoint_name == v,
        "NameContains": lambda r, v: v in r.name,
        "MonitoringJobDefinitionName": lambda r, v: r.config.get("MonitoringJobDefinitionName") == v,
        "MonitoringTypeEquals": lambda r, v: r.monitoring_type == v,
        "StatusEquals": lambda r, v: v == "Scheduled",
    }
    for parameter, keep in filters.items():
        value = self._get_param(parameter)
        if value:
            records = [r for r in records if keep(r, value)]
    ascending = self._get_param("SortOrder") == "Ascending"
    by_name = self._get_param("SortBy") == "Name"
    records.sort(key=lambda r: r.name if by_name else r.created.isoformat(), reverse=not ascending)
    return ActionResult({"MonitoringScheduleSummaries": [r.summary() for r in records]})


def install_monitoring_api() -> None:
    """Answer ``DescribeMonitoringSchedule`` and ``ListMonitoringSchedules`` on moto's SageMaker. Idempotent.

    moto routes an action to the response method of its snake-case name, so adding the two
    methods is all it takes.
    """
    SageMakerResponse.describe_monitoring_schedule = _describe_monitoring_schedule  # type: ignore[attr-defined]
    SageMakerResponse.list_monitoring_schedules = _list_monitoring_schedules  # type: ignore[attr-defined]
