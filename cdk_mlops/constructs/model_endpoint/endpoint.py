"""ModelEndpoint: the model, its encrypted endpoint configuration, the endpoint with blue/green rollout, the role.

The construct validates its arguments first (:mod:`cdk_mlops.constructs.model_endpoint.validation`),
then defines the model's role and its least-privilege grants, the model, one endpoint
configuration (data capture and KMS encryption included) and the endpoint. It scales realtime
variants with :func:`~cdk_mlops.constructs.model_endpoint.autoscaling.autoscale` and inherits its
metrics, alarms and dashboard from :mod:`cdk_mlops.constructs.model_endpoint.monitoring`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from aws_cdk import Annotations, ArnFormat, RemovalPolicy, Stack, Token
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_mlops.config import EndpointKind
from cdk_mlops.constructs.common import (
    ECR_PULL_ACTIONS,
    GUARDRAILS,
    LOG_ACTIONS,
    acknowledge,
    depend_on_role_policy,
    ecr_repository_arn,
    grant_sagemaker_vpc_access,
    iam5_findings,
    nag_resource,
    select_subnets,
)
from cdk_mlops.constructs.data_store_base import IDataStore, environment_problems
from cdk_mlops.constructs.model_endpoint.autoscaling import autoscale, autoscale_async
from cdk_mlops.constructs.model_endpoint.imported import ImportedModelEndpoint
from cdk_mlops.constructs.model_endpoint.monitoring import _EndpointMonitoring, queue_metric
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
)
from cdk_mlops.constructs.model_endpoint.validation import endpoint_problems
from cdk_mlops.constructs.props import checked_props
from cdk_mlops.constructs.unique_names import claim
from cdk_mlops.errors import ConfigurationError

__all__ = ["ASYNC_INFERENCE_PREFIX", "LOCAL_STORAGE_INFO_ID", "VARIANT_NAME", "ModelEndpoint"]

#: The one production variant of every endpoint. Blue/green deployments require the new
#: endpoint configuration to keep the variant name, so it never changes.
VARIANT_NAME = "AllTraffic"
#: Stable id of the info annotation emitted when an instance type with local storage drops ``KmsKeyId``.
LOCAL_STORAGE_INFO_ID = "cdk-mlops:endpoint-local-storage"
#: Data-store prefix of asynchronous endpoints' requests and answers: ``<prefix><endpoint name>/input/``,
#: ``.../output/`` and ``.../failures/``.
ASYNC_INFERENCE_PREFIX = "async-inference/"

# Instance types with local NVMe storage: SageMaker rejects KmsKeyId for them (the storage is
# encrypted by a hardware module), so the endpoint configuration must omit it. Families whose
# name carries a "d" (m5d, c5d, r5d, g4dn, p3dn, p4d, p4de ...) and the GPU/Trainium families
# that always ship instance storage.
_LOCAL_STORAGE = re.compile(r"^ml\.(?:[a-z]+[0-9]+[a-z]*d[a-z]*|g5|g6|g6e|gr6|p5|p5e|p5en|trn1|trn1n)\.")


def has_local_storage(instance_type: str | None) -> bool:
    """True for an instance type whose local NVMe storage SageMaker encrypts by hardware (no ``KmsKeyId``)."""
    return (
        instance_type is not None
        and not Token.is_unresolved(instance_type)
        and _LOCAL_STORAGE.match(instance_type) is not None
    )


def acknowledge_local_storage(scope: Construct, config: sagemaker.CfnEndpointConfig, instance_type: str) -> None:
    """Say, on an endpoint configuration without ``KmsKeyId``, why it has none (MLOPS-002 and an info)."""
    acknowledge(
        config,
        f"{instance_type} has local NVMe instance storage, which a hardware module encrypts; "
        "SageMaker rejects a KmsKeyId for such instance types, so none can be set",
        f"{GUARDRAILS}::MLOPS-002",
    )
    Annotations.of(scope).add_info(
        f"[{LOCAL_STORAGE_INFO_ID}] {instance_type} has local storage encrypted by hardware; "
        "the endpoint configuration sets no KmsKeyId"
    )


def storage_key(scope: Construct, given: kms.IKey | None, removal_policy: RemovalPolicy) -> kms.IKey:
    """``given``, or a new key ``Key`` of ``scope`` with rotation that encrypts its endpoint's storage volumes."""
    return given or kms.Key(
        scope,
        "Key",
        description=f"Encrypts the storage volumes of the {scope.node.path} endpoint",
        enable_key_rotation=True,
        removal_policy=removal_policy,
    )


def execution_role(scope: Construct, runs: str) -> iam.Role:
    """The role ``Role`` of ``scope`` that SageMaker assumes to run its models: no managed policy, grants only."""
    return iam.Role(
        scope,
        "Role",
        assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
        description=f"{runs} (least privilege, no managed policies)",
    )


class ModelEndpoint(_EndpointMonitoring):
    """Serves a registered model package, or a model artifact with its image, on a SageMaker endpoint.

    One model, one endpoint configuration (always KMS-encrypted) and one
    endpoint with a single variant (``AllTraffic``). Realtime endpoints scale on
    ``SageMakerVariantInvocationsPerInstance`` and can capture requests and
    responses into the data store for Model Monitor; serverless endpoints
    scale with requests; asynchronous endpoints queue requests whose payloads
    are in the data store, answer into it, notify a success or an error topic,
    and scale on their queue, to zero instances when idle. Model updates deploy
    blue/green (canary by default) and roll back on the construct's 5XX and
    p99-latency alarms. A dashboard
    shows invocations, latency, errors and capacity; severity-keyed alarms are
    opt-in.

    Example::

        endpoint = ModelEndpoint(self, "Endpoint", endpoint_name="churn", data_store=store,
                                 model_package_arn=approved_package_arn)
        endpoint.grant_invoke(api_function)

    Attributes:
        endpoint_name: The endpoint's name (lower case).
        endpoint_arn: The endpoint's ARN.
        variant_name: The production variant (``AllTraffic``).
        kind: Realtime, serverless or asynchronous.
        role: The model's execution role.
        model: The ``AWS::SageMaker::Model``.
        endpoint_config: The ``AWS::SageMaker::EndpointConfig``.
        endpoint: The ``AWS::SageMaker::Endpoint``.
        encryption_key: Encrypts the endpoint's storage volumes.
        capture_uri: Where data capture writes (``s3://<bucket>/capture/<endpoint name>/``),
            or ``None`` without capture.
        security_groups: The model's security groups, when in a VPC.
        connections: Network connections of the model, when in a VPC.
        scalable_target: The variant's autoscaling target (realtime and asynchronous).
        scaling_policy: The target-tracking policy (realtime and asynchronous).
        scale_out_from_zero_alarm: Starts an instance when requests wait and none runs
            (asynchronous with ``min_capacity=0``), else ``None``.
        async_input_uri: Where clients put request payloads for ``InvokeEndpointAsync``
            (``s3://<bucket>/async-inference/<endpoint name>/input/``); ``None`` unless asynchronous.
        async_output_uri: Where SageMaker writes answers (``.../output/``); ``None`` unless asynchronous.
        async_failure_uri: Where SageMaker writes errors (``.../failures/``); ``None`` unless asynchronous.
        success_topic: Notified of each answered request (asynchronous only, else ``None``).
        error_topic: Notified of each failed request (asynchronous only, else ``None``).
        rollback_alarms: The alarms this construct created for automatic rollback.
        latency_alarms: Opt-in latency alarms by severity.
        error_alarms: Opt-in 5XX alarms by severity.
        dashboard: The endpoint's CloudWatch dashboard.
    """

    @checked_props
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint_name: str,
        data_store: IDataStore,
        model_package_arn: str | None = None,
        model_data_url: str | None = None,
        image_uri: str | None = None,
        environment: Mapping[str, str] | None = None,
        kind: EndpointKind = EndpointKind.REALTIME,
        realtime: RealtimeSettings | None = None,
        serverless: ServerlessSettings | None = None,
        async_inference: AsyncSettings | None = None,
        data_capture: DataCaptureSettings | None = None,
        rollout: RolloutSettings | None = None,
        require_rollback_alarms: bool = False,
        additional_rollback_alarms: Sequence[cw.IAlarm] = (),
        scale_down: ScaleDownSchedule | None = None,
        encryption_key: kms.IKey | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        enable_network_isolation: bool | None = None,
        add_latency_alarm: Mapping[str, LatencyThreshold] | None = None,
        add_5xx_alarm: Mapping[str, ErrorCountThreshold] | None = None,
        alarm_topic: sns.ITopic | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """Define the endpoint.

        Args:
            scope: The parent construct.
            id: The construct id.
            endpoint_name: 1-63 lower-case letters, digits and hyphens. Clients
                invoke the endpoint by this name; a token must resolve to such a name.
            data_store: Holds the model artifacts (under ``artifacts/``, which the
                role may read) and receives data capture under ``capture/<endpoint name>/``.
            model_package_arn: A model package version of the registry (a string
                or token, e.g. a parameter the delivery pipeline sets). Exactly one
                of ``model_package_arn`` and ``model_data_url``.
            model_data_url: ``s3://<data store bucket>/artifacts/.../model.tar.gz``;
                needs ``image_uri``.
            image_uri: The inference image (``<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>``).
                Required with ``model_data_url``. With a model package it only
                names the package's image so the role may pull it. Default: - no
                image is pulled with the role's permissions (model package only).
            environment: Environment variables of the container. Default: - none.
            kind: REALTIME, SERVERLESS or ASYNC (``EnvironmentConfig.endpoint_kind``).
                Default: - REALTIME.
            realtime: Instance type, counts and autoscaling (REALTIME only).
                Default: - 2 to 4 ``ml.m5.large`` instances, 1000 invocations per
                instance per minute.
            serverless: Memory and concurrency (SERVERLESS only). Default: - 2048 MB,
                10 concurrent invocations, no provisioned concurrency.
            async_inference: Instance type, capacities and queue target (ASYNC only).
                Default: - ``ml.m5.large``, 1 instance at creation, autoscaling from 0 to 2
                at 5 queued requests per instance; SageMaker chooses the concurrency.
            data_capture: Record requests and responses (REALTIME only).
                Default: - no capture.
            rollout: How model updates deploy. Default: - blue/green, 10 % canary,
                10 minutes baking, 5 minutes before the old fleet goes, rollback on
                the construct's 5XX and p99-latency alarms.
                ``RolloutSettings.immediate()`` deploys at once without alarms.
            require_rollback_alarms: Reject a rollout without rollback alarms
                (prod passes True; guardrail MLOPS-005). Default: - False.
            additional_rollback_alarms: More alarms that roll a deployment back
                (at most 10 in all). Default: - none.
            scale_down: Fewer instances at night and on weekends (REALTIME only,
                for non-prod). Default: - capacity follows autoscaling only.
            encryption_key: Encrypts the endpoint's storage volumes. Default: - a
                new key with rotation on. Instance types with local NVMe storage
                (e.g. ``ml.g5``, ``ml.m5d``) are encrypted by hardware instead:
                SageMaker rejects a key for them, so none is set.
            vpc: Run the model in this VPC (REALTIME and ASYNC). Default: - no VPC.
            vpc_subnets: Subnets of ``vpc``. Default: - the VPC's default selection (its
                private subnets when it has them).
            security_groups: Security groups of the model in ``vpc``.
                Default: - a new group without inbound rules.
            enable_network_isolation: The container can make no network calls.
                Default: - True for REALTIME and ASYNC (SageMaker, not the container,
                reads requests and writes answers), False for SERVERLESS (which does
                not support it).
            add_latency_alarm: Opt-in ``ModelLatency`` alarms by severity (e.g.
                ``"Warning"``, ``"Critical"``). Default: - none.
            add_5xx_alarm: Opt-in 5XX error alarms by severity. Default: - none.
            alarm_topic: Every alarm of this construct notifies it. Default: - alarms
                have no action.
            removal_policy: For the created encryption key. Default: - RETAIN.

        Raises:
            ConfigurationError: listing every invalid argument, before any
                resource is defined.
        """
        super().__init__(scope, id)
        realtime_settings = realtime or RealtimeSettings()
        serverless_settings = serverless or ServerlessSettings()
        async_settings = async_inference or AsyncSettings()
        rollout_settings = rollout or RolloutSettings()
        latency_alarms = dict(add_latency_alarm or {})
        error_alarms = dict(add_5xx_alarm or {})
        isolation = (
            (kind is not EndpointKind.SERVERLESS) if enable_network_isolation is None else enable_network_isolation
        )
        problems = endpoint_problems(
            region=Stack.of(self).region,
            endpoint_name=endpoint_name,
            model_package_arn=model_package_arn,
            model_data_url=model_data_url,
            image_uri=image_uri,
            kind=kind,
            realtime=realtime,
            serverless=serverless,
            async_inference=async_inference,
            realtime_settings=realtime_settings,
            serverless_settings=serverless_settings,
            async_settings=async_settings,
            data_capture=data_capture,
            rollout=rollout_settings,
            require_rollback_alarms=require_rollback_alarms,
            additional_rollback_alarms=additional_rollback_alarms,
            scale_down=scale_down,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=security_groups,
            enable_network_isolation=enable_network_isolation,
            latency_alarms=latency_alarms,
            error_alarms=error_alarms,
        )
        problems += environment_problems(self, data_store, construct="ModelEndpoint")
        if problems:
            raise ConfigurationError(self, problems)
        claim(self, "endpoint_name", endpoint_name, "SageMaker endpoint names are unique per account and region")

        stack = Stack.of(self)
        self.endpoint_name = endpoint_name
        self.kind = kind
        self.variant_name = VARIANT_NAME
        self.endpoint_arn = stack.format_arn(service="sagemaker", resource="endpoint", resource_name=endpoint_name)
        self._dimensions = {"EndpointName": endpoint_name, "VariantName": VARIANT_NAME}
        self._alarm_topic = alarm_topic

        self.encryption_key = storage_key(self, encryption_key, removal_policy)
        self.role = execution_role(self, f"Runs the model of the {endpoint_name} endpoint")

        self.security_groups: list[ec2.ISecurityGroup] = []
        self.connections: ec2.Connections | None = None
        vpc_config: sagemaker.CfnModel.VpcConfigProperty | None = None
        if vpc is not None:
            self.security_groups = list(security_groups or [self._security_group(vpc)])
            self.connections = ec2.Connections(security_groups=self.security_groups)
            subnets = select_subnets(vpc, vpc_subnets)
            vpc_config = sagemaker.CfnModel.VpcConfigProperty(
                subnets=subnets.subnet_ids,
                security_group_ids=[g.security_group_id for g in self.security_groups],
            )

        container = sagemaker.CfnModel.ContainerDefinitionProperty(
            model_package_name=model_package_arn,
            image=None if model_package_arn is not None else image_uri,
            model_data_url=model_data_url,
            environment=dict(environment) if environment else None,
        )
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            primary_container=container,
            enable_network_isolation=isolation,
            vpc_config=vpc_config,
        )

        self.capture_uri: str | None = None
        if data_capture is not None:
            self.capture_uri = data_store.s3_uri(f"{data_store.capture_prefix}{endpoint_name}/")

        self._data_store = data_store
        self._async_resources(kind, data_store)
        self._grant_role(data_store, model_package_arn, image_uri, data_capture is not None, vpc_config)
        # SageMaker downloads the artifact and pulls the image with the role when the model is
        # created and the endpoint starts, so both wait for the role's policies. The model names
        # the role with Fn::GetAtt already, so it depends on the policy alone.
        depend_on_role_policy(self.model, self.role)

        self.endpoint_config = self._endpoint_config(
            kind, realtime_settings, serverless_settings, async_settings, data_capture, data_store
        )

        self.rollback_alarms: list[cw.Alarm] = []
        if rollout_settings.rollback_alarms:
            self.rollback_alarms = self._rollback_alarms(rollout_settings)
        rollback = [*self.rollback_alarms, *additional_rollback_alarms]
        scaled = kind is not EndpointKind.SERVERLESS
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            deployment_config=self._deployment_config(rollout_settings, rollback),
            # Autoscaled instance counts survive a model update: the new fleet starts as large as
            # the old one rather than at initial_instance_count. Capture settings of the new
            # configuration still apply.
            retain_all_variant_properties=True if scaled else None,
            exclude_retained_variant_properties=(
                [sagemaker.CfnEndpoint.VariantPropertyProperty(variant_property_type="DataCaptureConfig")]
                if scaled
                else None
            ),
        )
        self.endpoint.node.add_dependency(self.role)

        self.scalable_target: appscaling.ScalableTarget | None = None
        self.scaling_policy: appscaling.TargetTrackingScalingPolicy | None = None
        self.scale_out_from_zero_alarm: cw.Alarm | None = None
        if kind is EndpointKind.ASYNC:
            self.scalable_target, self.scaling_policy, self.scale_out_from_zero_alarm = autoscale_async(
                self,
                endpoint=self.endpoint,
                endpoint_name=endpoint_name,
                variant_name=VARIANT_NAME,
                settings=async_settings,
                queue_metric=lambda name: queue_metric(self, endpoint_name, name, {}),
            )
        elif kind is EndpointKind.REALTIME:
            self.scalable_target, self.scaling_policy = autoscale(
                self,
                endpoint=self.endpoint,
                endpoint_name=endpoint_name,
                variant_name=VARIANT_NAME,
                settings=realtime_settings,
                scale_down=scale_down,
            )

        self.latency_alarms: dict[str, cw.Alarm] = {
            severity: self._latency_alarm(severity, threshold) for severity, threshold in latency_alarms.items()
        }
        self.error_alarms: dict[str, cw.Alarm] = {
            severity: self._error_alarm(severity, threshold) for severity, threshold in error_alarms.items()
        }
        self.dashboard = self._dashboard()

    @staticmethod
    def from_endpoint_name(
        scope: Construct,
        id: str,
        *,
        endpoint_name: str,
        data_store: IDataStore | None = None,
        variant_name: str = VARIANT_NAME,
    ) -> ImportedModelEndpoint:
        """An endpoint created elsewhere, by name: for ``ModelMonitor``, metrics and ``grant_invoke``.

        Defines no resource. With ``data_store``, the endpoint is taken to capture requests and
        responses into ``<capture_prefix><endpoint name>/`` of that store (where a
        ``ModelEndpoint`` writes them), so a ``ModelMonitor`` can watch it; synth cannot check
        that it does, that it exists or that it is realtime. Its model is unknown here, so the
        monitor's jobs run outside any VPC, with network isolation unless told otherwise, and the
        monitor cannot compare the served package with its baselines.

        Example::

            endpoint = ModelEndpoint.from_endpoint_name(self, "Legacy", endpoint_name="churn-legacy",
                                                        data_store=store)
            ModelMonitor(self, "Monitor", endpoint=endpoint, data_store=store,
                         data_quality=DataQualitySettings(baselines=Baselines.from_prefix(uri)))

        Args:
            scope: The parent construct.
            id: The construct id.
            endpoint_name: The existing endpoint's name.
            data_store: The store it captures into. Default: - no capture known; a
                ``ModelMonitor`` on it is refused.
            variant_name: The production variant its metrics are read for.
                Default: - ``AllTraffic``.

        Raises:
            ConfigurationError: for an invalid name, or a store of another account or region.
        """
        return ImportedModelEndpoint(
            scope, id, endpoint_name=endpoint_name, data_store=data_store, variant_name=variant_name
        )

    # ------------------------------------------------------------------ resources

    def _security_group(self, vpc: ec2.IVpc) -> ec2.SecurityGroup:
        # No inbound rules: SageMaker reaches the container through its own network interface.
        # Outbound stays open so the model can download its artifact through the VPC's S3 endpoint or NAT.
        return ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description=f"{self.node.path}: the model containers of endpoint {self.endpoint_name}",
            allow_all_outbound=True,
        )

    def _endpoint_config(
        self,
        kind: EndpointKind,
        realtime: RealtimeSettings,
        serverless: ServerlessSettings,
        asynchronous: AsyncSettings,
        data_capture: DataCaptureSettings | None,
        data_store: IDataStore,
    ) -> sagemaker.CfnEndpointConfig:
        if kind is EndpointKind.SERVERLESS:
            variant = sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=VARIANT_NAME,
                model_name=self.model.attr_model_name,
                initial_variant_weight=1,
                serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                    memory_size_in_mb=serverless.memory_size_in_mb,
                    max_concurrency=serverless.max_concurrency,
                    provisioned_concurrency=serverless.provisioned_concurrency,
                ),
            )
        else:
            instances = asynchronous if kind is EndpointKind.ASYNC else realtime
            variant = sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=VARIANT_NAME,
                model_name=self.model.attr_model_name,
                initial_variant_weight=1,
                instance_type=instances.instance_type,
                initial_instance_count=instances.initial_instance_count,
            )
        capture = None
        if data_capture is not None and self.capture_uri is not None:
            modes = [
                m
                for m, on in (("Input", data_capture.capture_request), ("Output", data_capture.capture_response))
                if on
            ]
            capture = sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=True,
                initial_sampling_percentage=data_capture.sampling_percentage,
                destination_s3_uri=self.capture_uri,
                kms_key_id=data_store.encryption_key.key_arn,
                capture_options=[sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode=m) for m in modes],
                capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                    json_content_types=list(data_capture.json_content_types) or None,
                    csv_content_types=list(data_capture.csv_content_types) or None,
                ),
            )
        instance_type = (
            None
            if kind is EndpointKind.SERVERLESS
            else asynchronous.instance_type
            if kind is EndpointKind.ASYNC
            else realtime.instance_type
        )
        local_storage = has_local_storage(instance_type)
        config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[variant],
            kms_key_id=None if local_storage else self.encryption_key.key_arn,
            data_capture_config=capture,
            async_inference_config=self._async_config(asynchronous, data_store) if kind is EndpointKind.ASYNC else None,
        )
        if local_storage and instance_type is not None:
            acknowledge_local_storage(self, config, instance_type)
        return config

    def _async_resources(self, kind: EndpointKind, data_store: IDataStore) -> None:
        """The locations and topics of an asynchronous endpoint (all ``None`` for other kinds)."""
        self.async_input_uri: str | None = None
        self.async_output_uri: str | None = None
        self.async_failure_uri: str | None = None
        self.success_topic: sns.ITopic | None = None
        self.error_topic: sns.ITopic | None = None
        if kind is not EndpointKind.ASYNC:
            return
        self.async_input_uri = data_store.s3_uri(self._async_prefix("input"))
        self.async_output_uri = data_store.s3_uri(self._async_prefix("output"))
        self.async_failure_uri = data_store.s3_uri(self._async_prefix("failures"))
        # Encrypted with the endpoint's key, which the role may use: SageMaker publishes as the role.
        self.success_topic = sns.Topic(self, "SuccessTopic", master_key=self.encryption_key, enforce_ssl=True)
        self.error_topic = sns.Topic(self, "ErrorTopic", master_key=self.encryption_key, enforce_ssl=True)

    def _async_prefix(self, part: str) -> str:
        return f"{ASYNC_INFERENCE_PREFIX}{self.endpoint_name}/{part}/"

    def _async_config(
        self, settings: AsyncSettings, data_store: IDataStore
    ) -> sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty:
        # _async_resources created both topics for every asynchronous endpoint.
        assert self.success_topic is not None
        assert self.error_topic is not None
        cfn = sagemaker.CfnEndpointConfig
        concurrency = settings.max_concurrent_invocations_per_instance
        return cfn.AsyncInferenceConfigProperty(
            output_config=cfn.AsyncInferenceOutputConfigProperty(
                s3_output_path=self.async_output_uri,
                s3_failure_path=self.async_failure_uri,
                kms_key_id=data_store.encryption_key.key_arn,
                notification_config=cfn.AsyncInferenceNotificationConfigProperty(
                    success_topic=self.success_topic.topic_arn, error_topic=self.error_topic.topic_arn
                ),
            ),
            client_config=(
                None
                if concurrency is None
                else cfn.AsyncInferenceClientConfigProperty(max_concurrent_invocations_per_instance=concurrency)
            ),
        )

    def _deployment_config(
        self, rollout: RolloutSettings, alarms: Sequence[cw.IAlarm]
    ) -> sagemaker.CfnEndpoint.DeploymentConfigProperty:
        cfn = sagemaker.CfnEndpoint
        shift = rollout.traffic_shift
        routing = cfn.TrafficRoutingConfigProperty(
            type=shift.value,
            wait_interval_in_seconds=0 if shift is TrafficShift.ALL_AT_ONCE else rollout.wait.to_seconds(),
            canary_size=(
                cfn.CapacitySizeProperty(type="CAPACITY_PERCENT", value=rollout.canary_size_percent)
                if shift is TrafficShift.CANARY
                else None
            ),
            linear_step_size=(
                cfn.CapacitySizeProperty(type="CAPACITY_PERCENT", value=rollout.linear_step_percent)
                if shift is TrafficShift.LINEAR
                else None
            ),
        )
        timeout = rollout.max_execution_time
        return cfn.DeploymentConfigProperty(
            blue_green_update_policy=cfn.BlueGreenUpdatePolicyProperty(
                traffic_routing_configuration=routing,
                termination_wait_in_seconds=rollout.termination_wait.to_seconds(),
                maximum_execution_timeout_in_seconds=None if timeout is None else timeout.to_seconds(),
            ),
            auto_rollback_configuration=(
                cfn.AutoRollbackConfigProperty(alarms=[cfn.AlarmProperty(alarm_name=a.alarm_name) for a in alarms])
                if alarms
                else None
            ),
        )

    def _grant_role(
        self,
        data_store: IDataStore,
        package_arn: str | None,
        image_uri: str | None,
        capture: bool,
        vpc_config: sagemaker.CfnModel.VpcConfigProperty | None,
    ) -> None:
        stack = Stack.of(self)
        # Model artifacts (also those a model package points to) live under artifacts/.
        data_store.grant_read(self.role, prefix=data_store.artifacts_prefix)
        if capture:
            data_store.grant_write(self.role, prefix=f"{data_store.capture_prefix}{self.endpoint_name}/")
        if self.success_topic is not None and self.error_topic is not None:
            # SageMaker reads each request's payload, writes its answer or error, and notifies, as the role.
            data_store.grant_read(self.role, prefix=self._async_prefix("input"))
            data_store.grant_write(self.role, prefix=self._async_prefix("output"))
            data_store.grant_write(self.role, prefix=self._async_prefix("failures"))
            self.success_topic.grant_publish(self.role)
            self.error_topic.grant_publish(self.role)
        if package_arn is not None:
            iam.Grant.add_to_principal(
                grantee=self.role, actions=["sagemaker:DescribeModelPackage"], resource_arns=[package_arn]
            )

        star_reasons: list[str] = [
            "cloudwatch:PutMetricData supports no resource-level permissions; it is limited to the SageMaker "
            "namespaces by condition"
        ]
        if image_uri is not None:
            repository = ecr_repository_arn(image_uri, stack)
            iam.Grant.add_to_principal(grantee=self.role, actions=list(ECR_PULL_ACTIONS), resource_arns=[repository])
            iam.Grant.add_to_principal(grantee=self.role, actions=["ecr:GetAuthorizationToken"], resource_arns=["*"])
            star_reasons.append("ecr:GetAuthorizationToken supports no resource-level permissions")
            if "*" in repository:
                acknowledge(
                    self.role,
                    "image_uri is a deploy-time value, so its repository is unknown at synth; pulls are limited "
                    "to the repositories of this account and region",
                    *iam5_findings(resources=(nag_resource(self, repository),)),
                )
        iam.Grant.add_to_principal(
            grantee=self.role,
            actions=["cloudwatch:PutMetricData"],
            resource_arns=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
        )
        log_group = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"/aws/sagemaker/Endpoints/{self.endpoint_name}",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        iam.Grant.add_to_principal(
            grantee=self.role, actions=list(LOG_ACTIONS), resource_arns=[log_group, f"{log_group}:*"]
        )
        if vpc_config is not None:
            # The model's containers attach to these subnets when the endpoint starts.
            grant_sagemaker_vpc_access(
                self.role, subnet_ids=vpc_config.subnets, security_group_ids=vpc_config.security_group_ids
            )

        acknowledge(self.role, "; ".join(star_reasons), *iam5_findings(resources=("*",)))
        acknowledge(
            self.role,
            "log streams are created by SageMaker with generated names under this endpoint's own log group",
            *iam5_findings(resources=(nag_resource(self, f"{log_group}:*"),)),
        )

    # ------------------------------------------------------------------ grants

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let a principal call this endpoint only.

        ``InvokeEndpoint`` for realtime and serverless endpoints. For an asynchronous one,
        ``InvokeEndpointAsync``, writing payloads under its input prefix and reading its answers
        and errors (the output and failure prefixes) of the data store.
        """
        if self.kind is not EndpointKind.ASYNC:
            return iam.Grant.add_to_principal(
                grantee=grantee, actions=["sagemaker:InvokeEndpoint"], resource_arns=[self.endpoint_arn]
            )
        self._data_store.grant_write(grantee, prefix=self._async_prefix("input"))
        self._data_store.grant_read(grantee, prefix=self._async_prefix("output"))
        self._data_store.grant_read(grantee, prefix=self._async_prefix("failures"))
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["sagemaker:InvokeEndpointAsync"], resource_arns=[self.endpoint_arn]
        )
