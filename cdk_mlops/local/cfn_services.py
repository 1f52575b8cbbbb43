"""The platform's service resources moto does not provision as AWS would: KMS, SageMaker, alarms, schedules.

``AWS::KMS::Key`` replaces moto's model (which fails with a 500 on any tagged key) and applies
``Tags``, ``KeyPolicy`` (stored as JSON), ``EnableKeyRotation``, ``Enabled``, ``KeySpec``,
``KeyUsage`` and ``Description``. ``AWS::SageMaker::Pipeline`` (definition body or S3
location, updated in place), ``AWS::SageMaker::ModelPackageGroup`` (``Ref`` is the ARN; delete
fails while the group holds model packages, as in SageMaker), ``AWS::CloudWatch::Alarm``
(on one metric or on metric math) and ``AWS::Scheduler::Schedule`` (in its group) are types moto's
CloudFormation skips; each is created on moto's service backend, so the service APIs answer as
AWS would after a deploy. ``AWS::SSM::Parameter`` replaces moto's model, which reads ``Tags`` as a
list where CloudFormation gives a map.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moto.cloudwatch.models import Dimension, Metric, MetricDataQuery, MetricStat, cloudwatch_backends
from moto.core.common_models import CloudFormationModel
from moto.kms.models import kms_backends
from moto.sagemaker.models import sagemaker_backends
from moto.scheduler.models import scheduler_backends
from moto.ssm.models import ssm_backends

from cdk_mlops.local.cfn_resource import Props, ShimResource, as_json, cfn_tags, is_true, s3_backend


class ResourceInUseError(Exception):
    """A resource still holds children that must go first (a model package group with packages)."""


# --- KMS ---------------------------------------------------------------------------------------------


def _kms_tags(properties: Props) -> list[dict[str, str]]:
    return [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in cfn_tags(properties)]


class KmsKey(CloudFormationModel):
    """``AWS::KMS::Key``: moto's key, created with CloudFormation's tag shape and a JSON key policy."""

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::KMS::Key"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Props, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        p = cloudformation_json.get("Properties", {})
        key = kms_backends[account_id][region_name].create_key(
            policy=as_json(p["KeyPolicy"]) if "KeyPolicy" in p else None,
            key_usage=p.get("KeyUsage", "ENCRYPT_DECRYPT"),
            key_spec=p.get("KeySpec", "SYMMETRIC_DEFAULT"),
            description=p.get("Description", ""),
            tags=_kms_tags(p),
            multi_region=is_true(p.get("MultiRegion")),
        )
        key.key_rotation_status = is_true(p.get("EnableKeyRotation"))
        key.enabled = str(p.get("Enabled", True)).lower() != "false"
        return key

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Props,
        account_id: str,
        region_name: str,
    ) -> Any:
        p = cloudformation_json.get("Properties", {})
        key = original_resource
        key.policy = as_json(p["KeyPolicy"]) if "KeyPolicy" in p else key.policy
        key.description = p.get("Description", key.description)
        key.key_rotation_status = is_true(p.get("EnableKeyRotation"))
        key.enabled = str(p.get("Enabled", True)).lower() != "false"
        tagger = kms_backends[account_id][region_name].tagger
        tagger.delete_all_tags_for_resource(key.id)
        tagger.tag_resource(key.id, _kms_tags(p))
        return key

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Props, account_id: str, region_name: str
    ) -> None:
        kms_backends[account_id][region_name].delete_key(resource_name)

    def is_created(self) -> bool:
        return True


# --- SageMaker -----------------------------------------------------------------------------------------


def _pipeline_definition(definition: Mapping[str, Any], account: str, region: str) -> str:
    if "PipelineDefinitionBody" in definition:
        return as_json(definition["PipelineDefinitionBody"])
    location = definition["PipelineDefinitionS3Location"]
    obj = s3_backend(account, region).get_object(
        location["Bucket"], location["Key"], version_id=location.get("Version")
    )
    return bytes(obj.value).decode()


class SageMakerPipeline(ShimResource, CloudFormationModel):
    """``AWS::SageMaker::Pipeline``: ``Ref`` is the pipeline name; updates are in place."""

    TYPE = "AWS::SageMaker::Pipeline"
    NAME_PROPERTY = "PipelineName"

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> SageMakerPipeline:
        sagemaker_backends[account][region].create_pipeline(
            pipeline_name=name,
            pipeline_display_name=p.get("PipelineDisplayName", name),
            pipeline_definition=_pipeline_definition(p["PipelineDefinition"], account, region),
            pipeline_definition_s3_location={},
            pipeline_description=p.get("PipelineDescription", ""),
            role_arn=p["RoleArn"],
            tags=cfn_tags(p),
            parallelism_configuration=p.get("ParallelismConfiguration", {}),
        )
        return cls(name)

    def modify(self, name: str, p: Props, account: str, region: str) -> ShimResource:
        if p.get("PipelineName", self.physical_resource_id) != self.physical_resource_id:
            return super().modify(name, p, account, region)
        sagemaker_backends[account][region].update_pipeline(
            self.physical_resource_id,
            pipeline_display_name=p.get("PipelineDisplayName"),
            pipeline_definition=_pipeline_definition(p["PipelineDefinition"], account, region),
            pipeline_description=p.get("PipelineDescription"),
            role_arn=p["RoleArn"],
            parallelism_configuration=p.get("ParallelismConfiguration"),
        )
        return self

    def delete(self, account_id: str, region_name: str) -> None:
        backend = sagemaker_backends[account_id][region_name]
        if self.physical_resource_id in backend.pipelines:
            backend.delete_pipeline(self.physical_resource_id)


class SageMakerModelPackageGroup(ShimResource, CloudFormationModel):
    """``AWS::SageMaker::ModelPackageGroup``: ``Ref`` is the group's ARN."""

    TYPE = "AWS::SageMaker::ModelPackageGroup"
    NAME_PROPERTY = "ModelPackageGroupName"
    ATTRIBUTES = frozenset({"ModelPackageGroupArn", "CreationTime", "ModelPackageGroupStatus"})

    def __init__(self, name: str, arn: str, created: str) -> None:
        super().__init__(
            arn, {"ModelPackageGroupArn": arn, "CreationTime": created, "ModelPackageGroupStatus": "Completed"}
        )
        self.name = name

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> SageMakerModelPackageGroup:
        name = name[:63].rstrip("-")
        backend = sagemaker_backends[account][region]
        arn = backend.create_model_package_group(name, p.get("ModelPackageGroupDescription", ""), cfn_tags(p))
        return cls(name, arn, str(backend.model_package_groups[name].creation_time))

    def modify(self, name: str, p: Props, account: str, region: str) -> ShimResource:
        if p.get("ModelPackageGroupName", self.name) != self.name:
            return super().modify(name, p, account, region)
        group = sagemaker_backends[account][region].model_package_groups[self.name]
        group.model_package_group_description = p.get("ModelPackageGroupDescription", "")
        return self

    def delete(self, account_id: str, region_name: str) -> None:
        backend = sagemaker_backends[account_id][region_name]
        packages = [p for p in backend.model_packages.values() if p.model_package_group_name == self.name]
        if packages:
            raise ResourceInUseError(f"model package group {self.name} holds {len(packages)} model package(s)")
        backend.model_package_groups.pop(self.name, None)


# --- CloudWatch, Scheduler ----------------------------------------------------------------------------


def _metric_queries(metrics: list[Mapping[str, Any]]) -> list[MetricDataQuery]:
    """An alarm's ``Metrics`` (metric math) as moto's queries, as its PutMetricAlarm builds them."""
    queries = []
    for query in metrics:
        stat = query.get("MetricStat")
        metric_stat = None
        if stat:
            metric = stat["Metric"]
            metric_stat = MetricStat(
                metric=Metric(
                    metric_name=metric["MetricName"],
                    namespace=metric.get("Namespace"),
                    dimensions=[Dimension(name=d["Name"], value=d["Value"]) for d in metric.get("Dimensions", [])],
                ),
                period=stat.get("Period"),
                stat=stat.get("Stat"),
                unit=stat.get("Unit"),
            )
        queries.append(
            MetricDataQuery(
                query_id=query["Id"],
                # moto's annotations say str; its own PutMetricAlarm passes None for a missing member.
                label=query.get("Label"),  # type: ignore[arg-type]
                period=query.get("Period"),  # type: ignore[arg-type]
                return_data=query.get("ReturnData"),  # type: ignore[arg-type]
                expression=query.get("Expression"),
                metric_stat=metric_stat,
            )
        )
    return queries


class CloudWatchAlarm(ShimResource, CloudFormationModel):
    """``AWS::CloudWatch::Alarm`` on one metric or on metric math: ``Ref`` is the alarm name."""

    TYPE = "AWS::CloudWatch::Alarm"
    NAME_PROPERTY = "AlarmName"
    ATTRIBUTES = frozenset({"Arn"})

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> CloudWatchAlarm:
        backend: Any = cloudwatch_backends[account][region]
        alarm = backend.put_metric_alarm(
            name=name,
            namespace=p.get("Namespace"),
            metric_name=p.get("MetricName"),
            comparison_operator=p["ComparisonOperator"],
            evaluation_periods=int(p["EvaluationPeriods"]),
            period=int(p.get("Period", 60)),
            threshold=float(p.get("Threshold", 0)),
            statistic=p.get("Statistic"),
            description=p.get("AlarmDescription", ""),
            dimensions=[{"Name": d["Name"], "Value": d["Value"]} for d in p.get("Dimensions", [])],
            alarm_actions=list(p.get("AlarmActions", [])),
            metric_data_queries=_metric_queries(p["Metrics"]) if p.get("Metrics") else None,
            datapoints_to_alarm=int(p["DatapointsToAlarm"]) if "DatapointsToAlarm" in p else None,
            extended_statistic=p.get("ExtendedStatistic"),
            ok_actions=list(p.get("OKActions", [])),
            insufficient_data_actions=list(p.get("InsufficientDataActions", [])),
            unit=p.get("Unit"),
            actions_enabled=str(p.get("ActionsEnabled", True)).lower() != "false",
            treat_missing_data=p.get("TreatMissingData"),
            evaluate_low_sample_count_percentile=p.get("EvaluateLowSampleCountPercentile"),
        )
        return cls(name, {"Arn": alarm.alarm_arn})

    def delete(self, account_id: str, region_name: str) -> None:
        cloudwatch_backends[account_id][region_name].delete_alarms([self.physical_resource_id])


class SchedulerSchedule(ShimResource, CloudFormationModel):
    """``AWS::Scheduler::Schedule``: ``Ref`` is the schedule name."""

    TYPE = "AWS::Scheduler::Schedule"
    NAME_PROPERTY = "Name"
    ATTRIBUTES = frozenset({"Arn"})

    def __init__(self, name: str, group: str | None, arn: str) -> None:
        super().__init__(name, {"Arn": arn})
        self.group = group

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> SchedulerSchedule:
        name = name[:64].rstrip("-")
        backend: Any = scheduler_backends[account][region]
        schedule = backend.create_schedule(
            description=p.get("Description"),
            end_date=p.get("EndDate"),
            flexible_time_window=p["FlexibleTimeWindow"],
            group_name=p.get("GroupName"),
            kms_key_arn=p.get("KmsKeyArn"),
            name=name,
            schedule_expression=p["ScheduleExpression"],
            schedule_expression_timezone=p.get("ScheduleExpressionTimezone"),
            start_date=p.get("StartDate"),
            state=p.get("State", "ENABLED"),
            target=p["Target"],
            action_after_completion=None,
        )
        return cls(name, p.get("GroupName"), schedule.arn)

    def delete(self, account_id: str, region_name: str) -> None:
        scheduler_backends[account_id][region_name].delete_schedule(self.group, self.physical_resource_id)


# --- SSM ------------------------------------------------------------------------------------------------


class SsmParameter(CloudFormationModel):
    """``AWS::SSM::Parameter``: moto's parameter, created with CloudFormation's tag shape (a map, not a list)."""

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SSM::Parameter"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("Type", "Value")

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Props, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        p = cloudformation_json.get("Properties", {})
        tags = p.get("Tags") or {}
        return ssm_backends[account_id][region_name].put_parameter(
            name=p.get("Name") or resource_name,
            description=p.get("Description"),
            value=p["Value"],
            parameter_type=p["Type"],
            allowed_pattern=p.get("AllowedPattern"),
            keyid=p.get("KeyId", ""),
            overwrite=False,
            tags=[{"Key": k, "Value": v} for k, v in tags.items()] if isinstance(tags, Mapping) else list(tags),
            data_type=p.get("DataType", "text"),
            tier=p.get("Tier"),
            policies=p.get("Policies"),
        )

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Props,
        account_id: str,
        region_name: str,
    ) -> Any:
        ssm_backends[account_id][region_name].delete_parameter(original_resource.name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Props, account_id: str, region_name: str
    ) -> None:
        name = cloudformation_json.get("Properties", {}).get("Name") or resource_name
        ssm_backends[account_id][region_name].delete_parameter(name)

    def is_created(self) -> bool:
        return True
