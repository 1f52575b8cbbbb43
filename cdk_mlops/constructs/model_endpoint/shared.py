"""SharedModelEndpoint: many models on one endpoint's instances, as SageMaker inference components.

One endpoint (its configuration names no model) runs a pool of instances that SageMaker grows
and shrinks (managed instance scaling). Each model added with
:meth:`SharedModelEndpoint.add_model` is one inference component: a number of copies, each with
the CPU cores, memory and accelerators it reserves on an instance. Copies scale on invocations
per copy, and to zero when ``min_copies`` is 0; with ``min_instance_count=0`` the instances
follow, so an idle fleet costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_mlops.constructs.common import (
    ECR_PULL_ACTIONS,
    LOG_ACTIONS,
    SAGEMAKER_NAME,
    acknowledge,
    depend_on_role_policy,
    ecr_repository_arn,
    iam5_findings,
    metric_props,
    nag_resource,
)
from cdk_mlops.constructs.data_store_base import IDataStore, environment_problems
from cdk_mlops.constructs.model_endpoint.autoscaling import scale_out_from_zero, scaling_role
from cdk_mlops.constructs.model_endpoint.endpoint import (
    VARIANT_NAME,
    acknowledge_local_storage,
    execution_role,
    has_local_storage,
    storage_key,
)
from cdk_mlops.constructs.model_endpoint.monitoring import SAGEMAKER_NAMESPACE
from cdk_mlops.constructs.model_endpoint.settings import _instance_problem, _known, _seconds_problem, _whole_problem
from cdk_mlops.constructs.model_endpoint.validation import model_source_problems
from cdk_mlops.constructs.props import checked_props
from cdk_mlops.constructs.unique_names import claim
from cdk_mlops.errors import ConfigurationError

__all__ = ["ComponentSettings", "HostedModel", "SharedInstances", "SharedModelEndpoint"]

#: Routing strategies of an endpoint's instances that suit models of any kind (SageMaker API).
_ROUTING = ("LEAST_OUTSTANDING_REQUESTS", "RANDOM")
# NumberOfCpuCoresRequired and MinMemoryRequiredInMb minimums (SageMaker API).
_MIN_CPU_CORES, _MIN_MEMORY_MB = 0.25, 128


@dataclass(frozen=True, kw_only=True)
class SharedInstances:
    """The instance pool of a :class:`SharedModelEndpoint` (managed instance scaling).

    Attributes:
        instance_type: The ML instance type every model shares. Default: - ``ml.m5.xlarge``
            (4 vCPUs, 16 GiB).
        initial_instance_count: Instances when the endpoint is created (at least 1).
            Default: - 1.
        min_instance_count: Fewest instances SageMaker keeps; 0 lets an idle endpoint stop
            every instance once no model has a copy. Default: - 0.
        max_instance_count: Most instances SageMaker starts for the models' copies. Default: - 4.
        routing_strategy: How requests are spread over a model's copies:
            ``LEAST_OUTSTANDING_REQUESTS`` or ``RANDOM``. Default: - ``LEAST_OUTSTANDING_REQUESTS``.
    """

    instance_type: str = "ml.m5.xlarge"
    initial_instance_count: int = 1
    min_instance_count: int = 0
    max_instance_count: int = 4
    routing_strategy: str = "LEAST_OUTSTANDING_REQUESTS"

    def problems(self) -> list[str]:
        """Every invalid setting, each with its value and the fix; tokens are not checked."""
        found = _instance_problem("instances.instance_type", self.instance_type, "a ModelEndpoint per model")
        found += _whole_problem("instances.initial_instance_count", self.initial_instance_count, 1)
        found += _whole_problem("instances.min_instance_count", self.min_instance_count, 0)
        found += _whole_problem("instances.max_instance_count", self.max_instance_count, 1)
        low, high, initial = self.min_instance_count, self.max_instance_count, self.initial_instance_count
        if not found and _known(low, high, initial) and not low <= initial <= high:
            found.append(
                f"instances: initial_instance_count ({initial}) must be within [min_instance_count, "
                f"max_instance_count] = [{low}, {high}]; raise max_instance_count or lower the others"
            )
        if self.routing_strategy not in _ROUTING:
            found.append(
                f"instances.routing_strategy {self.routing_strategy!r} is not one of {', '.join(_ROUTING)}; "
                "LEAST_OUTSTANDING_REQUESTS suits most models"
            )
        return found


@dataclass(frozen=True, kw_only=True)
class ComponentSettings:
    """What one model of a :class:`SharedModelEndpoint` reserves, and how its copies scale.

    Attributes:
        cpu_cores: CPU cores each copy reserves, at least 0.25. Default: - 1.
        memory_mb: Memory each copy reserves (MiB), at least 128. Default: - 1024.
        accelerators: Accelerator devices (GPUs, Inferentia cores) each copy reserves.
            Default: - none (a CPU instance type).
        initial_copies: Copies when the model is added. Default: - 1.
        min_copies: Fewest copies autoscaling keeps; 0 scales the model to zero when idle
            (a request then fails while a copy starts, and starts one). Default: - 0.
        max_copies: Most copies autoscaling starts. Default: - 2.
        target_invocations_per_copy: Invocations per copy per minute that autoscaling
            tracks. Default: - 100.
        scale_in_cooldown: Wait after a scale-in before the next. Default: - 5 minutes.
        scale_out_cooldown: Wait after a scale-out before the next. Default: - 1 minute.
    """

    cpu_cores: float = 1
    memory_mb: int = 1024
    accelerators: int | None = None
    initial_copies: int = 1
    min_copies: int = 0
    max_copies: int = 2
    target_invocations_per_copy: int = 100
    scale_in_cooldown: Duration = field(default_factory=lambda: Duration.minutes(5))
    scale_out_cooldown: Duration = field(default_factory=lambda: Duration.minutes(1))

    def problems(self, where: str) -> list[str]:
        """Every invalid setting, each prefixed with ``where``; tokens are not checked."""
        found: list[str] = []
        cores = self.cpu_cores
        if _known(cores) and (isinstance(cores, bool) or not isinstance(cores, int | float) or cores < _MIN_CPU_CORES):
            found.append(f"{where}.cpu_cores ({cores!r}) must be at least {_MIN_CPU_CORES}; use e.g. 0.5 or 1")
        found += _whole_problem(f"{where}.memory_mb", self.memory_mb, _MIN_MEMORY_MB)
        if self.accelerators is not None:
            found += _whole_problem(f"{where}.accelerators", self.accelerators, 1)
        found += _whole_problem(f"{where}.initial_copies", self.initial_copies, 0)
        found += _whole_problem(f"{where}.min_copies", self.min_copies, 0)
        found += _whole_problem(f"{where}.max_copies", self.max_copies, 1)
        low, high, initial = self.min_copies, self.max_copies, self.initial_copies
        if not found and _known(low, high, initial) and not low <= initial <= high:
            found.append(
                f"{where}: initial_copies ({initial}) must be within [min_copies, max_copies] = [{low}, {high}]"
            )
        found += _whole_problem(f"{where}.target_invocations_per_copy", self.target_invocations_per_copy, 1)
        found += _seconds_problem(f"{where}.scale_in_cooldown", self.scale_in_cooldown, 0, 86400)
        found += _seconds_problem(f"{where}.scale_out_cooldown", self.scale_out_cooldown, 0, 86400)
        return found


class HostedModel(Construct):
    """One model of a :class:`SharedModelEndpoint`: its SageMaker model, inference component and scaling.

    Created by :meth:`SharedModelEndpoint.add_model`. Clients invoke it with
    ``InvokeEndpoint(EndpointName=<endpoint>, InferenceComponentName=component_name)``.

    Attributes:
        component_name: ``<endpoint name>-<model name>``.
        model: The ``AWS::SageMaker::Model``.
        component: The ``AWS::SageMaker::InferenceComponent``.
        scalable_target: Its copy count's autoscaling target.
        scaling_policy: Target tracking on invocations per copy.
        scale_out_from_zero_alarm: Starts a copy when a request finds none (``min_copies=0``),
            else ``None``.
    """

    @checked_props
    def __init__(
        self,
        scope: SharedModelEndpoint,
        id: str,
        *,
        component_name: str,
        container: sagemaker.CfnModel.ContainerDefinitionProperty,
        settings: ComponentSettings,
    ) -> None:
        super().__init__(scope, id)
        self.component_name = component_name
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=scope.role.role_arn,
            primary_container=container,
            enable_network_isolation=True,
        )
        # SageMaker reads the artifact and describes the package with the role when it creates the model.
        depend_on_role_policy(self.model, scope.role)
        requirements = sagemaker.CfnInferenceComponent.InferenceComponentComputeResourceRequirementsProperty(
            number_of_cpu_cores_required=settings.cpu_cores,
            min_memory_required_in_mb=settings.memory_mb,
            number_of_accelerator_devices_required=settings.accelerators,
        )
        self.component = sagemaker.CfnInferenceComponent(
            self,
            "Component",
            inference_component_name=component_name,
            endpoint_name=scope.endpoint_name,
            variant_name=VARIANT_NAME,
            specification=sagemaker.CfnInferenceComponent.InferenceComponentSpecificationProperty(
                model_name=self.model.attr_model_name, compute_resource_requirements=requirements
            ),
            runtime_config=sagemaker.CfnInferenceComponent.InferenceComponentRuntimeConfigProperty(
                copy_count=settings.initial_copies
            ),
        )
        # A component is placed on the endpoint's instances: it exists only once the endpoint is in service.
        self.component.node.add_dependency(scope.endpoint)
        self.scalable_target = appscaling.ScalableTarget(
            self,
            "ScalableTarget",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"inference-component/{component_name}",
            scalable_dimension="sagemaker:inference-component:DesiredCopyCount",
            min_capacity=settings.min_copies,
            max_capacity=settings.max_copies,
            role=scope.scaling_role,
        )
        self.scalable_target.node.add_dependency(self.component)
        self.scaling_policy = self.scalable_target.scale_to_track_metric(
            "InvocationsPerCopy",
            target_value=settings.target_invocations_per_copy,
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_INFERENCE_COMPONENT_INVOCATIONS_PER_COPY,
            scale_in_cooldown=settings.scale_in_cooldown,
            scale_out_cooldown=settings.scale_out_cooldown,
        )
        self.scale_out_from_zero_alarm: cw.Alarm | None = None
        if _known(settings.min_copies) and settings.min_copies == 0:
            # A request that finds no copy fails and counts as NoCapacityInvocationFailures.
            self.scale_out_from_zero_alarm = scale_out_from_zero(
                self,
                target=self.scalable_target,
                alarm_id="NoCapacityAlarm",
                metric=self.metric_no_capacity_failures(period=Duration.minutes(1)),
                cooldown=settings.scale_out_cooldown,
                why="a request found no copy of the model; starts one",
            )

    def metric(self, metric_name: str, **options: Any) -> cw.Metric:
        """A metric of this model's component (dimension ``InferenceComponentName``), Sum over 5 minutes."""
        props = metric_props(
            self,
            "metric",
            options,
            dimensions={"InferenceComponentName": self.component_name},
            statistic="Sum",
            period=Duration.minutes(5),
        )
        return cw.Metric(namespace=SAGEMAKER_NAMESPACE, metric_name=metric_name, **props)

    def metric_invocations(self, **options: Any) -> cw.Metric:
        """Requests sent to this model, summed over 5 minutes."""
        return self.metric("Invocations", **options)

    def metric_5xx(self, **options: Any) -> cw.Metric:
        """``Invocation5XXErrors`` of this model, summed over 5 minutes."""
        return self.metric("Invocation5XXErrors", **options)

    def metric_model_latency(self, **options: Any) -> cw.Metric:
        """p90 ``ModelLatency`` (microseconds) of this model over 5 minutes."""
        return self.metric("ModelLatency", **{"statistic": "p90", **options})

    def metric_no_capacity_failures(self, **options: Any) -> cw.Metric:
        """Maximum ``NoCapacityInvocationFailures`` over 5 minutes: requests that found no copy."""
        return self.metric("NoCapacityInvocationFailures", **{"statistic": "Maximum", **options})


class SharedModelEndpoint(Construct):
    """Hosts many models on one endpoint's instances, one SageMaker inference component each.

    A fleet of small models costs one instance pool instead of an endpoint each: SageMaker
    places each model's copies on the shared instances by the CPU, memory and accelerators
    they reserve, scales copies on invocations per copy (to zero when idle), and starts or
    stops instances for them (to zero with ``min_instance_count=0``).

    The models share one execution role, which reads ``artifacts/`` of the data store, and the
    endpoint's KMS key encrypts the instances' storage. Data capture and Model Monitor are not
    available: Model Monitor watches endpoints that host a single model.

    Example::

        shared = SharedModelEndpoint(self, "Fleet", endpoint_name="fleet", data_store=store)
        churn = shared.add_model("Churn", model_name="churn", model_package_arn=churn_package)
        shared.grant_invoke(api_function)   # InvokeEndpoint(..., InferenceComponentName=churn.component_name)

    Attributes:
        endpoint_name: The endpoint's name.
        endpoint_arn: The endpoint's ARN.
        role: The models' execution role.
        encryption_key: Encrypts the instances' storage volumes.
        endpoint_config: The ``AWS::SageMaker::EndpointConfig`` (no model; managed instance scaling).
        endpoint: The ``AWS::SageMaker::Endpoint``.
        scaling_role: Application Auto Scaling's service-linked role for SageMaker.
        models: The hosted models by model name.
        dashboard: Invocations, latency and errors of every model.
    """

    @checked_props
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint_name: str,
        data_store: IDataStore,
        instances: SharedInstances | None = None,
        encryption_key: kms.IKey | None = None,
        alarm_topic: sns.ITopic | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """Define the endpoint and its instance pool; add models with :meth:`add_model`.

        Args:
            scope: The parent construct.
            id: The construct id.
            endpoint_name: 1-63 lower-case letters, digits and hyphens; each model's component
                is named ``<endpoint_name>-<model name>``.
            data_store: Holds the models' artifacts (under ``artifacts/``, which the role reads).
            instances: The instance pool. Default: - ``ml.m5.xlarge``, 1 instance at creation,
                managed scaling from 0 to 4, least-outstanding-requests routing.
            encryption_key: Encrypts the instances' storage volumes. Default: - a new key with
                rotation on. Instance types with local NVMe storage (e.g. ``ml.g5``) are
                encrypted by hardware instead: SageMaker rejects a key for them, so none is set.
            alarm_topic: The models' scale-out-from-zero alarms notify it too. Default: - they
                only act on scaling.
            removal_policy: For the created key. Default: - RETAIN.

        Raises:
            ConfigurationError: listing every invalid argument, before any resource is defined.
        """
        super().__init__(scope, id)
        pool = instances or SharedInstances()
        problems = pool.problems()
        if not Token.is_unresolved(endpoint_name) and not SAGEMAKER_NAME.match(endpoint_name):
            problems.insert(
                0,
                f"endpoint_name {endpoint_name!r} is not valid; use 1-63 lower-case letters, digits and hyphens, "
                "starting and ending with a letter or digit",
            )
        problems += environment_problems(self, data_store, construct="SharedModelEndpoint")
        if problems:
            raise ConfigurationError(self, problems)
        claim(self, "endpoint_name", endpoint_name, "SageMaker endpoint names are unique per account and region")

        stack = Stack.of(self)
        self.endpoint_name = endpoint_name
        self.endpoint_arn = stack.format_arn(service="sagemaker", resource="endpoint", resource_name=endpoint_name)
        self.models: dict[str, HostedModel] = {}
        self._data_store = data_store
        self._alarm_topic = alarm_topic
        self._pulls_images = False
        self.encryption_key = storage_key(self, encryption_key, removal_policy)
        self.role = execution_role(self, f"Runs the models of the {endpoint_name} endpoint")
        self._grant_role(stack)
        local_storage = has_local_storage(pool.instance_type)
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            execution_role_arn=self.role.role_arn,
            kms_key_id=None if local_storage else self.encryption_key.key_arn,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT_NAME,
                    instance_type=pool.instance_type,
                    initial_instance_count=pool.initial_instance_count,
                    managed_instance_scaling=sagemaker.CfnEndpointConfig.ManagedInstanceScalingProperty(
                        status="ENABLED",
                        min_instance_count=pool.min_instance_count,
                        max_instance_count=pool.max_instance_count,
                    ),
                    routing_config=sagemaker.CfnEndpointConfig.RoutingConfigProperty(
                        routing_strategy=pool.routing_strategy
                    ),
                )
            ],
        )
        depend_on_role_policy(self.endpoint_config, self.role)
        if local_storage:
            acknowledge_local_storage(self, self.endpoint_config, pool.instance_type)
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
        )
        self.scaling_role = scaling_role(self)
        name = endpoint_name if not Token.is_unresolved(endpoint_name) else None
        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=name)

    def _grant_role(self, stack: Stack) -> None:
        self._data_store.grant_read(self.role, prefix=self._data_store.artifacts_prefix)
        iam.Grant.add_to_principal(
            grantee=self.role,
            actions=["cloudwatch:PutMetricData"],
            resource_arns=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
        )
        # The endpoint logs under its name; each model's container under its component's name.
        groups = [
            stack.format_arn(
                service="logs",
                resource="log-group",
                resource_name=name,
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for name in (
                f"/aws/sagemaker/Endpoints/{self.endpoint_name}",
                f"/aws/sagemaker/InferenceComponents/{self.endpoint_name}-*",
            )
        ]
        iam.Grant.add_to_principal(
            grantee=self.role,
            actions=list(LOG_ACTIONS),
            resource_arns=[arn for group in groups for arn in (group, f"{group}:*")],
        )
        acknowledge(
            self.role,
            "cloudwatch:PutMetricData supports no resource-level permissions, so it is limited to the SageMaker "
            "namespaces by condition; ecr:GetAuthorizationToken (granted once a model names an image) supports "
            "none either",
            *iam5_findings(resources=("*",)),
        )
        acknowledge(
            self.role,
            "log groups of this endpoint's own components (named <endpoint>-<model>) and their log streams, "
            "which SageMaker creates with generated names",
            *iam5_findings(resources=tuple(nag_resource(self, a) for g in groups for a in (g, f"{g}:*") if "*" in a)),
        )

    def add_model(
        self,
        id: str,
        *,
        model_name: str,
        model_package_arn: str | None = None,
        model_data_url: str | None = None,
        image_uri: str | None = None,
        environment: Mapping[str, str] | None = None,
        settings: ComponentSettings | None = None,
    ) -> HostedModel:
        """Host one more model on the endpoint's instances, as an inference component.

        Args:
            id: The construct id of the hosted model.
            model_name: Names the component ``<endpoint name>-<model name>`` (at most 63
                characters in all: lower-case letters, digits and hyphens).
            model_package_arn: A model package version of the registry, in the endpoint's
                region. Exactly one of this and ``model_data_url``.
            model_data_url: ``s3://<data store bucket>/artifacts/.../model.tar.gz``; needs ``image_uri``.
            image_uri: The inference image. Required with ``model_data_url``; with a package it
                names the package's image so the role may pull it. Default: - none pulled.
            environment: Environment variables of the container. Default: - none.
            settings: Reserved resources and copy scaling. Default: - 1 CPU core and 1024 MiB a
                copy, 1 copy at first, autoscaling 0 to 2 copies at 100 invocations per copy a
                minute.

        Returns:
            The hosted model (its component, scaling and metrics).

        Raises:
            ConfigurationError: listing every invalid argument, before any resource is defined.
        """
        component_settings = settings or ComponentSettings()
        component_name = f"{self.endpoint_name}-{model_name}"
        where = f"add_model({model_name!r})"
        problems = component_settings.problems(f"{where}.settings")
        known = not Token.is_unresolved(component_name)
        if known and not SAGEMAKER_NAME.match(component_name):
            problems.insert(
                0,
                f"{where}: the component name {component_name!r} is not valid; use a model_name of lower-case "
                f"letters, digits and hyphens, at most {62 - len(self.endpoint_name)} characters here",
            )
        if model_name in self.models:
            problems.insert(0, f"{where}: the endpoint already hosts a model of that name; give each its own")
        problems += [
            f"{where}: {p}"
            for p in model_source_problems(model_package_arn, model_data_url, image_uri, Stack.of(self).region)
        ]
        if problems:
            raise ConfigurationError(self, problems)
        container = sagemaker.CfnModel.ContainerDefinitionProperty(
            model_package_name=model_package_arn,
            image=None if model_package_arn is not None else image_uri,
            model_data_url=model_data_url,
            environment=dict(environment) if environment else None,
        )
        if model_package_arn is not None:
            iam.Grant.add_to_principal(
                grantee=self.role, actions=["sagemaker:DescribeModelPackage"], resource_arns=[model_package_arn]
            )
        if image_uri is not None:
            self._grant_pull(image_uri)
        hosted = HostedModel(self, id, component_name=component_name, container=container, settings=component_settings)
        self.models[model_name] = hosted
        if hosted.scale_out_from_zero_alarm is not None and self._alarm_topic is not None:
            hosted.scale_out_from_zero_alarm.add_alarm_action(cw_actions.SnsAction(self._alarm_topic))
        self.dashboard.add_widgets(
            cw.GraphWidget(title=f"{model_name}: invocations", left=[hosted.metric_invocations()], width=8),
            cw.GraphWidget(title=f"{model_name}: p90 latency (µs)", left=[hosted.metric_model_latency()], width=8),
            cw.GraphWidget(
                title=f"{model_name}: errors",
                left=[hosted.metric_5xx(), hosted.metric_no_capacity_failures()],
                width=8,
            ),
        )
        return hosted

    def _grant_pull(self, image_uri: str) -> None:
        repository = ecr_repository_arn(image_uri, Stack.of(self))
        iam.Grant.add_to_principal(grantee=self.role, actions=list(ECR_PULL_ACTIONS), resource_arns=[repository])
        if not self._pulls_images:
            self._pulls_images = True
            iam.Grant.add_to_principal(grantee=self.role, actions=["ecr:GetAuthorizationToken"], resource_arns=["*"])
        if "*" in repository:
            acknowledge(
                self.role,
                "image_uri is a deploy-time value, so its repository is unknown at synth; pulls are limited "
                "to the repositories of this account and region",
                *iam5_findings(resources=(nag_resource(self, repository),)),
            )

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let a principal call ``InvokeEndpoint`` on this endpoint (any of its models) only."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["sagemaker:InvokeEndpoint"], resource_arns=[self.endpoint_arn]
        )
