"""What every monitoring job shares: its compute and schedule settings, its network, its definition's properties.

Each monitoring type's module builds its own ``AWS::SageMaker::*JobDefinition`` from a
:class:`JobContext`, which holds what the construct decided for all of them: the role, the
endpoint or the batch job's capture, the keys, the image, where reports go and the network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_sagemaker as sagemaker

from cdk_mlops.constructs.common import instance_type_problem
from cdk_mlops.constructs.model_endpoint import IModelEndpoint
from cdk_mlops.constructs.model_monitor.baselines import Baselines
from cdk_mlops.constructs.model_monitor.checks import whole_problem
from cdk_mlops.constructs.model_monitor.monitoring_type import MonitoringType
from cdk_mlops.constructs.model_monitor.schedule import MonitorSchedule
from cdk_mlops.pipeline_definition import PROCESSING_INSTANCE_FAMILIES

__all__ = ["JobContext", "JobSettings", "baseline_constraints", "job_network", "present", "required"]

_INPUT_PATH = "/opt/ml/processing/input/endpoint"
_BATCH_INPUT_PATH = "/opt/ml/processing/input/batch"
_OUTPUT_PATH = "/opt/ml/processing/output"


@dataclass(frozen=True, kw_only=True)
class JobSettings:
    """What every monitoring type shares: its baseline, schedule and compute."""

    baselines: Baselines
    schedule: MonitorSchedule = field(default_factory=MonitorSchedule.hourly)
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    volume_size_gb: int = 20
    max_runtime: Duration = field(default_factory=lambda: Duration.hours(1))

    def _common_problems(self, where: str, monitoring_type: MonitoringType) -> list[str]:
        found = self.baselines.problems(f"{where}.baselines", monitoring_type)
        found += self.schedule.problems(f"{where}.schedule")
        itype = self.instance_type
        # A monitoring job is a processing job: the same instance families.
        problem = instance_type_problem(f"{where}.instance_type", itype, PROCESSING_INSTANCE_FAMILIES, "ml.m5.xlarge")
        found += [problem] if problem else []
        found += whole_problem(f"{where}.instance_count", self.instance_count, 1, 100)
        found += whole_problem(f"{where}.volume_size_gb", self.volume_size_gb, 1, 16384)
        if not self.max_runtime.is_unresolved():
            seconds = self.max_runtime.to_seconds(integral=False)
            interval = self.schedule.interval
            limit = 86400 if interval is None else min(86400, int(interval.to_seconds()))
            if not (1 <= seconds <= limit and seconds == int(seconds)):
                found.append(
                    f"{where}.max_runtime ({seconds:g} s) must be a whole number of seconds from 1 to {limit} "
                    "(an execution must end before the schedule starts the next)"
                )
        return found


@dataclass(frozen=True, kw_only=True)
class JobContext:
    """What the construct decided for one job definition.

    The methods return the L1 property structs as jsii maps with their camelCase field names:
    the four job definition types have identical nested structs, each under its own class.

    Attributes:
        role_arn: The jobs' execution role.
        endpoint_name: The monitored endpoint, or ``None`` for a batch job.
        volume_key_arn: Encrypts the job's volumes.
        report_key_arn: Encrypts the reports (the data store's key).
        report_uri: Where the job writes its reports.
        image_uri: The job's container image.
        vpc_config: The endpoint's ``VpcConfig``, or ``None`` outside a VPC.
        network_isolation: Whether the job makes no network calls.
        batch_input: For a batch job, the required fields of its ``BatchTransformInput``
            (``dataCapturedDestinationS3Uri`` and ``datasetFormat``); ``None`` for an endpoint.
    """

    role_arn: str
    endpoint_name: str | None
    volume_key_arn: str
    report_key_arn: str
    report_uri: str
    image_uri: str
    vpc_config: Any
    network_isolation: bool
    batch_input: Mapping[str, Any] | None = None

    def properties(self, settings: JobSettings) -> dict[str, Any]:
        """The keyword arguments every job definition takes: role, endpoint, cluster, network, time limit."""
        return {
            "role_arn": self.role_arn,
            "endpoint_name": self.endpoint_name,
            "job_resources": {
                "clusterConfig": {
                    "instanceCount": settings.instance_count,
                    "instanceType": settings.instance_type,
                    "volumeSizeInGb": settings.volume_size_gb,
                    "volumeKmsKeyId": self.volume_key_arn,
                }
            },
            "network_config": present(
                enableInterContainerTrafficEncryption=True,
                enableNetworkIsolation=self.network_isolation,
                vpcConfig=self.vpc_config,
            ),
            "stopping_condition": {"maxRuntimeInSeconds": settings.max_runtime.to_seconds()},
        }

    def app_specification(self, **fields: Any) -> dict[str, Any]:
        """The container: the image, ``fields`` and publishing the metrics to CloudWatch."""
        return {"imageUri": self.image_uri, **fields, "environment": {"publish_cloudwatch_metrics": "Enabled"}}

    def captured_input(self, **optional: Any) -> dict[str, Any]:
        """The job input's captured data: ``{"endpointInput": ...}`` or ``{"batchTransformInput": ...}``.

        The ``optional`` fields (attributes, time offsets) that are not ``None`` apply to either.
        """
        if self.batch_input is None:
            return {"endpointInput": self.endpoint_input(**optional)}
        return {
            "batchTransformInput": {
                **self.batch_input,
                "localPath": _BATCH_INPUT_PATH,
                "s3InputMode": "File",
                "s3DataDistributionType": "FullyReplicated",
                **present(**optional),
            }
        }

    def endpoint_input(self, **optional: Any) -> dict[str, Any]:
        """The endpoint's captured data as the job's input, with the ``optional`` fields that are not ``None``."""
        return {
            "endpointName": self.endpoint_name,
            "localPath": _INPUT_PATH,
            "s3InputMode": "File",
            "s3DataDistributionType": "FullyReplicated",
            **present(**optional),
        }

    def output_config(self) -> dict[str, Any]:
        """The reports, written to ``report_uri`` at the end of the job, encrypted with ``report_key_arn``."""
        return {
            "kmsKeyId": self.report_key_arn,
            "monitoringOutputs": [
                {"s3Output": {"localPath": _OUTPUT_PATH, "s3Uri": self.report_uri, "s3UploadMode": "EndOfJob"}}
            ],
        }


def baseline_constraints(baselines: Baselines) -> dict[str, Any]:
    """The baseline configuration's constraints file, which every monitoring type compares with."""
    return {"constraintsResource": {"s3Uri": baselines.constraints_uri}}


def job_network(
    endpoint: IModelEndpoint,
    isolation: bool | None,
    security_groups: Sequence[ec2.ISecurityGroup] | None,
) -> tuple[Any, bool]:
    """``(VpcConfig or None, network isolation)`` for the jobs, taken from the endpoint's model.

    An imported endpoint's model is unknown: its jobs run outside a VPC, isolated unless told otherwise.
    """
    model = endpoint.model
    if model is None:
        return None, True if isolation is None else isolation
    vpc_config: Any = None
    source = model.vpc_config
    if isinstance(source, sagemaker.CfnModel.VpcConfigProperty):
        groups = (
            [g.security_group_id for g in security_groups]
            if security_groups is not None
            else list(source.security_group_ids)
        )
        vpc_config = {"securityGroupIds": groups, "subnets": list(source.subnets)}
    elif source is not None:
        vpc_config = source  # an IResolvable: passed through as it is
    isolated = (model.enable_network_isolation is True) if isolation is None else isolation
    return vpc_config, isolated


def required(value: str | None) -> str:
    """A value validation has already required."""
    assert value is not None
    return value


def present(**values: Any) -> dict[str, Any]:
    """The keyword arguments that are not ``None`` (optional CloudFormation properties)."""
    return {k: v for k, v in values.items() if v is not None}
