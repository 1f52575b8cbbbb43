"""Autoscaling of endpoint variants.

Realtime variants track invocations per instance and may follow a night schedule; asynchronous
variants track their queue per instance and may scale to zero, with a step policy that starts an
instance when requests wait and none runs.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_cdk import Duration, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from cdk_mlops.constructs.model_endpoint.settings import AsyncSettings, RealtimeSettings, ScaleDownSchedule

_SCALING_ROLE = "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"


def scaling_role(scope: Construct) -> iam.IRole:
    """Application Auto Scaling's service-linked role for SageMaker, imported as ``ScalingRole`` of ``scope``.

    Application Auto Scaling acts for SageMaker through this role (created on first use);
    importing it keeps the construct from defining a role that would do nothing.
    """
    return iam.Role.from_role_arn(
        scope,
        "ScalingRole",
        Stack.of(scope).format_arn(
            service="iam",
            region="",
            resource="role",
            resource_name=f"aws-service-role/sagemaker.application-autoscaling.amazonaws.com/{_SCALING_ROLE}",
        ),
    )


def scale_out_from_zero(
    scope: Construct,
    *,
    target: appscaling.ScalableTarget,
    alarm_id: str,
    metric: cw.IMetric,
    cooldown: Duration,
    why: str,
) -> cw.Alarm:
    """Add one unit of capacity to ``target`` whenever ``metric`` is at least 1: the way back from zero.

    Target tracking cannot scale out from zero capacity (its per-instance or per-copy metric is
    undefined then), so a step policy on an alarm does: the alarm adds one unit through the step
    policy ``ScaleOutFromZero`` of ``scope``, and target tracking takes over.

    Args:
        scope: Where the policy and the alarm are defined.
        target: The scalable target.
        alarm_id: The alarm's construct id.
        metric: A metric that is at least 1 while requests find no capacity.
        cooldown: Wait after a scale-out before the next.
        why: The alarm's description after the scope's path.
    """
    start = appscaling.StepScalingAction(
        scope,
        "ScaleOutFromZero",
        scaling_target=target,
        adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
        cooldown=cooldown,
        metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
    )
    start.add_adjustment(adjustment=1, lower_bound=0)
    alarm = cw.Alarm(
        scope,
        alarm_id,
        alarm_description=f"{scope.node.path}: {why}",
        metric=metric,
        threshold=1,
        comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=1,
        # No data means no request waits: the metric is published while requests arrive.
        treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(cw_actions.ApplicationScalingAction(start))
    return alarm


def _variant_target(
    scope: Construct,
    *,
    endpoint: sagemaker.CfnEndpoint,
    endpoint_name: str,
    variant_name: str,
    min_capacity: int,
    max_capacity: int,
) -> appscaling.ScalableTarget:
    """The variant's instance count as a scalable target, created once the endpoint is in service."""
    target = appscaling.ScalableTarget(
        scope,
        "ScalableTarget",
        service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
        resource_id=f"endpoint/{endpoint_name}/variant/{variant_name}",
        scalable_dimension="sagemaker:variant:DesiredInstanceCount",
        min_capacity=min_capacity,
        max_capacity=max_capacity,
        role=scaling_role(scope),
    )
    # The variant exists only once the endpoint is in service.
    target.node.add_dependency(endpoint)
    return target


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
    target = _variant_target(
        scope,
        endpoint=endpoint,
        endpoint_name=endpoint_name,
        variant_name=variant_name,
        min_capacity=settings.min_capacity,
        max_capacity=settings.max_capacity,
    )
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


def autoscale_async(
    scope: Construct,
    *,
    endpoint: sagemaker.CfnEndpoint,
    endpoint_name: str,
    variant_name: str,
    settings: AsyncSettings,
    queue_metric: Callable[[str], cw.Metric],
) -> tuple[appscaling.ScalableTarget, appscaling.TargetTrackingScalingPolicy, cw.Alarm | None]:
    """Scale an asynchronous endpoint's variant on its queue, to zero instances when ``min_capacity`` is 0.

    Target tracking keeps ``ApproximateBacklogSizePerInstance`` near the settings' target. That
    metric is undefined with no instance, so an endpoint that scales to zero also gets a step
    policy: the ``HasBacklogWithoutCapacity`` alarm adds one instance when requests wait and no
    instance runs, and target tracking takes over from there.

    Args:
        scope: Where the scaling resources are defined (the endpoint construct).
        endpoint: The endpoint whose variant scales; the target waits for it to be in service.
        endpoint_name: Its name.
        variant_name: The variant that scales.
        settings: Capacities, target and cooldowns.
        queue_metric: The endpoint's queue metric of a name (per minute).

    Returns:
        The scalable target, its target-tracking policy, and the scale-out-from-zero alarm (or
        None when ``min_capacity`` is above 0).
    """
    target = _variant_target(
        scope,
        endpoint=endpoint,
        endpoint_name=endpoint_name,
        variant_name=variant_name,
        min_capacity=settings.min_capacity,
        max_capacity=settings.max_capacity,
    )
    policy = target.scale_to_track_metric(
        "BacklogPerInstance",
        target_value=settings.target_backlog_per_instance,
        custom_metric=queue_metric("ApproximateBacklogSizePerInstance"),
        scale_in_cooldown=settings.scale_in_cooldown,
        scale_out_cooldown=settings.scale_out_cooldown,
    )
    if not settings.scales_to_zero:
        return target, policy, None
    alarm = scale_out_from_zero(
        scope,
        target=target,
        alarm_id="BacklogWithoutCapacityAlarm",
        metric=queue_metric("HasBacklogWithoutCapacity"),
        cooldown=settings.scale_out_cooldown,
        why="requests wait and no instance runs; starts one instance (scale out from zero)",
    )
    return target, policy, alarm
