"""Autoscaling of a realtime endpoint: target tracking on invocations per instance, and an optional night schedule."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from cdk_mlops.constructs.model_endpoint.settings import RealtimeSettings, ScaleDownSchedule

_SCALING_ROLE = "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"


def autoscale(
    scope: Construct,
    *,
    endpoint: sagemaker.CfnEndpoint,
    endpoint_name: str,
    variant_name: str,
    settings: RealtimeSettings,
    scale_down: ScaleDownSchedule | None,
) -> tuple[appscaling.ScalableTarget, appscaling.TargetTrackingScalingPolicy]:
    """Scale the endpoint's variant between the settings' capacities to track invocations per instance.

    Args:
        scope: Where the scaling resources are defined (the endpoint construct).
        endpoint: The endpoint whose variant scales; the target waits for it to be in service.
        endpoint_name: Its name.
        variant_name: The variant that scales.
        settings: Capacities, target and cooldowns.
        scale_down: Pin the capacity at night and on weekends. Default: - none.

    Returns:
        The scalable target and its target-tracking policy.
    """
    stack = Stack.of(scope)
    # Application Auto Scaling acts for SageMaker through its service-linked role (created on
    # first use); importing it keeps the construct from defining a role that would do nothing.
    scaling_role = iam.Role.from_role_arn(
        scope,
        "ScalingRole",
        stack.format_arn(
            service="iam",
            region="",
            resource="role",
            resource_name=f"aws-service-role/sagemaker.application-autoscaling.amazonaws.com/{_SCALING_ROLE}",
        ),
    )
    target = appscaling.ScalableTarget(
        scope,
        "ScalableTarget",
        service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
        resource_id=f"endpoint/{endpoint_name}/variant/{variant_name}",
        scalable_dimension="sagemaker:variant:DesiredInstanceCount",
        min_capacity=settings.min_capacity,
        max_capacity=settings.max_capacity,
        role=scaling_role,
    )
    # The variant exists only once the endpoint is in service.
    target.node.add_dependency(endpoint)
    policy = target.scale_to_track_metric(
        "InvocationsPerInstance",
        target_value=settings.target_invocations_per_instance,
        predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
        scale_in_cooldown=settings.scale_in_cooldown,
        scale_out_cooldown=settings.scale_out_cooldown,
    )
    if scale_down is not None:
        target.scale_on_schedule(
            "ScaleDown",
            schedule=scale_down.scale_down,
            min_capacity=scale_down.capacity,
            max_capacity=scale_down.capacity,
            time_zone=scale_down.time_zone,
        )
        target.scale_on_schedule(
            "ScaleUp",
            schedule=scale_down.scale_up,
            min_capacity=settings.min_capacity,
            max_capacity=settings.max_capacity,
            time_zone=scale_down.time_zone,
        )
    return target, policy
