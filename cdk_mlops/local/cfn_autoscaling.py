"""Application Auto Scaling on moto's backend: scalable targets, their scheduled actions, and scaling policies.

moto's Application Auto Scaling answers ``RegisterScalableTarget``, ``PutScalingPolicy`` and
``PutScheduledAction`` but its CloudFormation knows neither type, so a deployed endpoint with
autoscaling had none. These models register each resource on moto's backend, so
``DescribeScalableTargets``, ``DescribeScalingPolicies`` and ``DescribeScheduledActions``
answer as AWS would after a deploy.

``AWS::ApplicationAutoScaling::ScalableTarget``
    ``Ref`` and ``Fn::GetAtt Id`` are ``ResourceId|ScalableDimension|ServiceNamespace``, as
    CloudFormation documents; ``MinCapacity``, ``MaxCapacity``, ``RoleARN``, ``SuspendedState``
    and the inline ``ScheduledActions`` (schedule, time zone, start and end, capacities).
    Updates are in place (removed scheduled actions are deleted) unless the resource id,
    dimension or namespace changes. Like Application Auto Scaling, a SageMaker variant must
    exist (the endpoint must be deployed, with that variant), and deregistering a target
    deletes its policies and scheduled actions.
``AWS::ApplicationAutoScaling::ScalingPolicy``
    ``Ref`` and ``Fn::GetAtt Arn`` are the policy ARN; the target comes from ``ScalingTargetId``
    or from ``ResourceId``/``ScalableDimension``/``ServiceNamespace`` and must be registered.
    Target tracking and step scaling; an update keeps the ARN, as AWS does.

Not modelled: tags on targets (moto's backend keeps none), predictive scaling (moto refuses
the policy type), and the CloudWatch alarms AWS creates for a SageMaker target-tracking policy.
"""

from __future__ import annotations

from typing import Any

from moto.applicationautoscaling.models import FakeApplicationAutoscalingPolicy, applicationautoscaling_backends
from moto.core.common_models import CloudFormationModel
from moto.sagemaker.models import sagemaker_backends

from cdk_mlops.local.cfn_resource import Props, ShimResource

__all__ = ["ScalableTarget", "ScalingPolicy", "ScalingTargetError", "target_key"]


class ScalingTargetError(Exception):
    """A scalable target or policy refers to a resource that does not exist (as Application Auto Scaling refuses)."""


def target_key(p: Props) -> tuple[str, str, str]:
    """``(ResourceId, ScalableDimension, ServiceNamespace)`` of a target, or of a policy's target.

    A policy names its target either by ``ScalingTargetId`` (the target's ``Ref``) or by the
    three properties.
    """
    if p.get("ScalingTargetId"):
        resource_id, dimension, namespace = str(p["ScalingTargetId"]).rsplit("|", 2)
        return resource_id, dimension, namespace
    return str(p["ResourceId"]), str(p["ScalableDimension"]), str(p["ServiceNamespace"])


def _backend(account: str, region: str) -> Any:
    return applicationautoscaling_backends[account][region]


def _require_sagemaker_variant(resource_id: str, account: str, region: str) -> None:
    # Application Auto Scaling validates that the variant exists when the target registers;
    # CloudFormation order (the target depends on the endpoint) makes that hold in a good stack.
    parts = resource_id.split("/")
    if len(parts) != 4 or parts[0] != "endpoint" or parts[2] != "variant":
        raise ScalingTargetError(f"{resource_id!r} is not a SageMaker variant (endpoint/<name>/variant/<variant>)")
    endpoint = sagemaker_backends[account][region].endpoints.get(parts[1])
    if endpoint is None:
        raise ScalingTargetError(f"cannot register {resource_id}: endpoint {parts[1]!r} does not exist")
    variants = [v.get("VariantName") for v in getattr(endpoint, "production_variants", []) or []]
    if variants and parts[3] not in variants:
        raise ScalingTargetError(
            f"cannot register {resource_id}: the endpoint has variants {variants}, not {parts[3]!r}"
        )


def _capacity(action: dict[str, Any]) -> dict[str, int]:
    return {k: int(action[k]) for k in ("MinCapacity", "MaxCapacity") if k in action}


def _suspended_state(p: Props) -> dict[str, bool] | None:
    state = p.get("SuspendedState")
    if state is None:
        return None
    return {k: str(v).lower() == "true" for k, v in state.items()}


class ScalableTarget(ShimResource, CloudFormationModel):
    """``AWS::ApplicationAutoScaling::ScalableTarget``: registered on moto's backend, with its scheduled actions."""

    TYPE = "AWS::ApplicationAutoScaling::ScalableTarget"
    ATTRIBUTES = frozenset({"Id"})

    def __init__(self, key: tuple[str, str, str], actions: list[str]) -> None:
        physical_id = "|".join(key)
        super().__init__(physical_id, {"Id": physical_id})
        self.key = key
        self.actions = actions

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> ScalableTarget:
        key = target_key(p)
        resource_id, dimension, namespace = key
        if namespace == "sagemaker":
            _require_sagemaker_variant(resource_id, account, region)
        _backend(account, region).register_scalable_target(
            namespace,
            resource_id,
            dimension,
            int(p["MinCapacity"]),
            int(p["MaxCapacity"]),
            p.get("RoleARN", ""),
            _suspended_state(p),
        )
        return cls(key, cls._put_actions(key, p, account, region))

    @staticmethod
    def _put_actions(key: tuple[str, str, str], p: Props, account: str, region: str) -> list[str]:
        resource_id, dimension, namespace = key
        names: list[str] = []
        for action in p.get("ScheduledActions", []):
            _backend(account, region).put_scheduled_action(
                service_namespace=namespace,
                schedule=action["Schedule"],
                timezone=action.get("Timezone"),
                scheduled_action_name=action["ScheduledActionName"],
                resource_id=resource_id,
                scalable_dimension=dimension,
                start_time=action.get("StartTime"),
                end_time=action.get("EndTime"),
                scalable_target_action=_capacity(action.get("ScalableTargetAction", {})),
            )
            names.append(action["ScheduledActionName"])
        return names

    def modify(self, name: str, p: Props, account: str, region: str) -> ShimResource:
        if target_key(p) != self.key:
            return super().modify(name, p, account, region)
        resource_id, dimension, namespace = self.key
        backend = _backend(account, region)
        backend.register_scalable_target(
            namespace,
            resource_id,
            dimension,
            int(p["MinCapacity"]),
            int(p["MaxCapacity"]),
            p.get("RoleARN", ""),
            _suspended_state(p),
        )
        kept = {a["ScheduledActionName"] for a in p.get("ScheduledActions", [])}
        for removed in set(self.actions) - kept:
            backend.delete_scheduled_action(namespace, removed, resource_id, dimension)
        self.actions = self._put_actions(self.key, p, account, region)
        return self

    def delete(self, account_id: str, region_name: str) -> None:
        resource_id, dimension, namespace = self.key
        backend = _backend(account_id, region_name)
        # Deregistering a target deletes its scheduled actions and scaling policies, as in AWS.
        backend.scheduled_actions = [
            a
            for a in backend.scheduled_actions
            if (a.resource_id, a.scalable_dimension, a.service_namespace) != self.key
        ]
        for policy in [
            p
            for p in backend.policies.values()
            if (p.resource_id, p.scalable_dimension, p.service_namespace) == self.key
        ]:
            backend.delete_scaling_policy(policy.policy_name, namespace, resource_id, dimension)
        if backend._scalable_target_exists(resource_id, dimension):
            backend.deregister_scalable_target(namespace, resource_id, dimension)


class ScalingPolicy(ShimResource, CloudFormationModel):
    """``AWS::ApplicationAutoScaling::ScalingPolicy``: ``Ref`` is the policy ARN."""

    TYPE = "AWS::ApplicationAutoScaling::ScalingPolicy"
    ATTRIBUTES = frozenset({"Arn"})

    def __init__(self, arn: str, key: tuple[str, str, str], policy_name: str) -> None:
        super().__init__(arn, {"Arn": arn})
        self.key = key
        self.policy_name = policy_name

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> ScalingPolicy:
        key = target_key(p)
        policy = cls._put(key, p, account, region)
        return cls(policy.policy_arn, key, policy.policy_name)

    @staticmethod
    def _put(key: tuple[str, str, str], p: Props, account: str, region: str) -> Any:
        resource_id, dimension, namespace = key
        backend = _backend(account, region)
        if not backend._scalable_target_exists(resource_id, dimension):
            raise ScalingTargetError(
                f"no scalable target {resource_id} ({dimension}) is registered for policy {p['PolicyName']}"
            )
        policy_type = p["PolicyType"]
        body = (
            p.get("TargetTrackingScalingPolicyConfiguration")
            if policy_type == "TargetTrackingScaling"
            else p.get("StepScalingPolicyConfiguration")
        )
        return backend.put_scaling_policy(p["PolicyName"], namespace, resource_id, dimension, body or {}, policy_type)

    def modify(self, name: str, p: Props, account: str, region: str) -> ShimResource:
        if target_key(p) != self.key or p["PolicyName"] != self.policy_name:
            return super().modify(name, p, account, region)
        policy = self._put(self.key, p, account, region)
        # moto gives a put policy a new ARN; AWS keeps it, and so does CloudFormation's Ref.
        policy.policy_arn = self.physical_resource_id
        return self

    def delete(self, account_id: str, region_name: str) -> None:
        resource_id, dimension, namespace = self.key
        backend = _backend(account_id, region_name)
        key = FakeApplicationAutoscalingPolicy.formulate_key(namespace, resource_id, dimension, self.policy_name)
        if key in backend.policies:
            backend.delete_scaling_policy(self.policy_name, namespace, resource_id, dimension)
