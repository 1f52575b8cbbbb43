"""The checks of :class:`ModelEndpoint`'s arguments as a whole, run before any resource is defined.

Each settings type checks its own values (:mod:`cdk_mlops.constructs.model_endpoint.settings`);
this module checks the endpoint name and the model's source, which settings suit the endpoint's
kind, and whether the rollout's alarms can act, and collects every problem so that the construct
raises once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from aws_cdk import Token
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_ec2 as ec2
from aws_cdk.region_info import RegionInfo

from cdk_mlops.config import EndpointKind
from cdk_mlops.constructs.common import SAGEMAKER_NAME
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
    _known,
    _seconds,
)

_PACKAGE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):sagemaker:(?P<region>[a-z0-9-]+):[0-9]{12}:model-package/[^/]+/[0-9]+\Z"
)
_S3_OBJECT_URI = re.compile(r"^s3://[^/]+/.+[^/]\Z")
_ALARM_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,31}\Z")
_KIND_NAMES = {
    EndpointKind.REALTIME: "a realtime",
    EndpointKind.SERVERLESS: "a serverless",
    EndpointKind.ASYNC: "an asynchronous",
}
# AutoRollbackConfig takes at most this many alarms (SageMaker API).
_MAX_ROLLBACK_ALARMS = 10


def endpoint_problems(
    *,
    endpoint_name: str,
    model_package_arn: str | None,
    model_data_url: str | None,
    image_uri: str | None,
    kind: EndpointKind,
    realtime: RealtimeSettings | None,
    serverless: ServerlessSettings | None,
    async_inference: AsyncSettings | None,
    realtime_settings: RealtimeSettings,
    serverless_settings: ServerlessSettings,
    async_settings: AsyncSettings,
    data_capture: DataCaptureSettings | None,
    rollout: RolloutSettings,
    require_rollback_alarms: bool,
    additional_rollback_alarms: Sequence[cw.IAlarm],
    scale_down: ScaleDownSchedule | None,
    vpc: ec2.IVpc | None,
    vpc_subnets: ec2.SubnetSelection | None,
    security_groups: Sequence[ec2.ISecurityGroup] | None,
    enable_network_isolation: bool | None,
    latency_alarms: Mapping[str, LatencyThreshold],
    error_alarms: Mapping[str, ErrorCountThreshold],
    region: str,
) -> list[str]:
    """Every problem of :class:`ModelEndpoint`'s arguments, each with its value and the fix.

    ``region`` is the endpoint's stack's region (a token if the stack is environment-agnostic).
    """
    found: list[str] = []
    if not Token.is_unresolved(endpoint_name) and not SAGEMAKER_NAME.match(endpoint_name):
        found.append(
            f"endpoint_name {endpoint_name!r} is not valid; use 1-63 lower-case letters, digits and hyphens, "
            "starting and ending with a letter or digit (SageMaker lower-cases names in ARNs)"
        )
    found += model_source_problems(model_package_arn, model_data_url, image_uri, region)

    settings_kinds = [
        ("realtime", realtime, EndpointKind.REALTIME),
        ("serverless", serverless, EndpointKind.SERVERLESS),
        ("async_inference", async_inference, EndpointKind.ASYNC),
    ]
    for name, settings, settings_kind in settings_kinds:
        if settings is not None and settings_kind is not kind:
            found.append(
                f"{name} settings were given for {_KIND_NAMES[kind]} endpoint; remove them or set "
                f"kind=EndpointKind.{settings_kind.name}"
            )
    if kind is EndpointKind.SERVERLESS:
        found += serverless_settings.problems()
        unsupported = [
            ("data_capture", data_capture is not None),
            ("vpc", vpc is not None),
            ("enable_network_isolation=True", enable_network_isolation is True),
        ]
        for name, is_given in unsupported:
            if is_given:
                found.append(
                    f"{name} is not supported by serverless endpoints (SageMaker Serverless Inference has no "
                    f"data capture, VPC or network isolation); remove it, or use kind=EndpointKind.REALTIME"
                )
        if scale_down is not None:
            found.append(
                "scale_down applies to realtime instances; serverless endpoints cost nothing while idle, "
                "remove scale_down"
            )
    elif kind is EndpointKind.ASYNC:
        found += async_settings.problems()
        if data_capture is not None:
            found.append(
                "data_capture is not enabled on asynchronous endpoints here: AWS documents data capture and "
                "Model Monitor for realtime endpoints and batch transform; the answers are in the data store "
                "under async-inference/<endpoint name>/output/ instead. Remove data_capture, or use "
                "kind=EndpointKind.REALTIME"
            )
        if scale_down is not None:
            found.append(
                "scale_down applies to realtime instances; an asynchronous endpoint scales in to "
                "async_inference.min_capacity (0 by default) when its queue is empty, remove scale_down"
            )
    else:
        found += realtime_settings.problems()
        if data_capture is not None:
            found += data_capture.problems()
        if scale_down is not None:
            found += scale_down.problems()
            capacity, high = scale_down.capacity, realtime_settings.max_capacity
            if _known(capacity, high) and isinstance(capacity, int) and capacity > high:
                found.append(
                    f"scale_down.capacity ({capacity}) must not exceed realtime.max_capacity ({high}); "
                    "lower it (scaling down should reduce capacity)"
                )
    if vpc is None and (vpc_subnets is not None or security_groups is not None):
        found.append("vpc_subnets and security_groups need vpc; pass vpc=..., or remove them")

    found += rollout.problems()
    alarm_count = (2 if rollout.rollback_alarms else 0) + len(additional_rollback_alarms)
    wait, termination_wait = _seconds(rollout.wait), _seconds(rollout.termination_wait)
    no_step_bake = rollout.traffic_shift is TrafficShift.ALL_AT_ONCE or wait == 0
    if alarm_count and no_step_bake and termination_wait == 0:
        found.append(
            "the rollout has rollback alarms but no baking period, so no alarm could ever roll back; "
            "set rollout.termination_wait (e.g. Duration.minutes(5)) or a wait between traffic steps"
        )
    if require_rollback_alarms and alarm_count == 0:
        found.append(
            "require_rollback_alarms is set but the rollout has no rollback alarms; keep "
            "RolloutSettings(rollback_alarms=True) or pass additional_rollback_alarms"
        )
    if alarm_count > _MAX_ROLLBACK_ALARMS:
        found.append(
            f"{alarm_count} rollback alarms exceed SageMaker's limit of {_MAX_ROLLBACK_ALARMS}; "
            "combine them into a composite alarm"
        )
    for label, mapping in (("add_latency_alarm", latency_alarms), ("add_5xx_alarm", error_alarms)):
        for severity, threshold in mapping.items():
            if not _ALARM_KEY.match(severity):
                found.append(
                    f"{label} key {severity!r} must be 1-32 letters and digits, starting with a letter "
                    "(e.g. 'Warning', 'Critical')"
                )
            found += threshold.problems(f"{label}[{severity!r}]")
    return found


def _package_arn_problems(package_arn: str, region: str) -> list[str]:
    """A model package version of the endpoint's own region and partition (SageMaker's CreateModel
    uses a package of its region only; a package of another region is copied there first)."""
    match = _PACKAGE_ARN.match(package_arn)
    if match is None:
        return [
            f"model_package_arn {package_arn!r} is not a model package version ARN; use "
            "arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version> (a registered version)"
        ]
    if Token.is_unresolved(region):
        return []
    partition = RegionInfo.get(region).partition
    if match["region"] != region or (partition is not None and match["partition"] != partition):
        return [
            f"model_package_arn {package_arn!r} is in {match['partition']}:{match['region']}, but the endpoint "
            f"deploys to {partition}:{region}; register (or copy) the model in {region} and use that version's ARN"
        ]
    return []


def model_source_problems(
    package_arn: str | None, data_url: str | None, image_uri: str | None, region: str
) -> list[str]:
    """What is wrong with a model's source: a registered package, or an artifact with its image.

    ``region`` is the endpoint's stack's region (a token if the stack is environment-agnostic).
    """
    found: list[str] = []
    if (package_arn is None) == (data_url is None):
        given = "both were given" if package_arn is not None else "neither was given"
        found.append(
            f"pass exactly one of model_package_arn (a registered model version) and model_data_url "
            f"(an artifact in the data store); {given}"
        )
    if package_arn is not None and not Token.is_unresolved(package_arn):
        found += _package_arn_problems(package_arn, region)
    if data_url is not None:
        if not Token.is_unresolved(data_url) and not _S3_OBJECT_URI.match(data_url):
            found.append(
                f"model_data_url {data_url!r} is not an S3 object URI; use "
                "s3://<bucket>/artifacts/.../model.tar.gz (data_store.s3_uri(key) builds one)"
            )
        if image_uri is None:
            found.append("model_data_url needs image_uri, the inference image that loads the artifact")
    if image_uri is not None and not Token.is_unresolved(image_uri) and ".dkr.ecr." not in image_uri:
        found.append(
            f"image_uri {image_uri!r} is not an ECR image URI "
            "(<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>)"
        )
    return found
