"""The tooling stack: the platform's delivery pipeline and the model delivery pipeline, in a tooling stage."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import aws_cdk as cdk
import jsii
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_mlops.config import EnvironmentConfig, NetworkConfig, NetworkMode, known_regions
from cdk_mlops.constructs.common import LAMBDA_RUNTIME
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.delivery import (
    DEFAULT_PARAMETER_PREFIX,
    DEFAULT_SAMPLE_KEY,
    DeliveryAccess,
    DeliveryTarget,
    EndpointTest,
    ModelDeliveryPipeline,
    ModelDeliveryTarget,
    PipelineSource,
    PlatformDeliveryPipeline,
)
from cdk_mlops.constructs.private_network import import_vpc
from cdk_mlops.constructs.training_pipeline import _PipelineResources
from cdk_mlops.delivery_steps import model_record_name
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.guardrails import GuardrailSettings, GuardrailsPlugin
from cdk_mlops.stacks.platform_stage import MlopsPlatformStage

__all__ = [
    "DeliveryStack",
    "StageFactory",
    "ToolingStage",
    "apply_tooling_guardrails",
    "default_stage_factory",
    "endpoint_name_of",
]

#: Builds one environment's stage under ``scope`` (the platform pipeline), from its configuration.
StageFactory = Callable[[Construct, EnvironmentConfig], cdk.Stage]


def default_stage_factory(scope: Construct, config: EnvironmentConfig) -> cdk.Stage:
    """The reference platform's stage of one environment."""
    return MlopsPlatformStage(scope, config.stage_name, config=config)


def endpoint_name_of(config: EnvironmentConfig) -> str:
    """The name of an environment's endpoint, as the serving stack names it."""
    return f"{config.project}-{config.name}"


class DeliveryStack(cdk.Stack):
    """Both delivery pipelines of the platform, in the tooling account.

    The platform pipeline deploys every environment in order (a manual approval before each one
    that requires it; prod always does). The model pipeline promotes the approved packages of the
    registry environment's model package group through the same environments. Every argument is
    explicit, so an app wires it from its configuration in one call.

    Attributes:
        platform: The platform's delivery pipeline.
        models: The model delivery pipeline, unless ``model_delivery`` is False.
        environments: The environments in deployment order, with account and region filled in.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        environments: Sequence[EnvironmentConfig],
        connection_arn: str | None = None,
        repository: str | None = None,
        branch: str = "main",
        source_bucket_name: str | None = None,
        source_object_key: str | None = None,
        order: Sequence[str] | None = None,
        stage_factory: StageFactory = default_stage_factory,
        model_delivery: bool = True,
        model_registry_environment: str | None = None,
        sample_key: str = DEFAULT_SAMPLE_KEY,
        parameter_prefix: str = DEFAULT_PARAMETER_PREFIX,
        cli_version: str | None = None,
        network: NetworkConfig | None = None,
        **kwargs: Any,
    ) -> None:
        """Define both pipelines.

        Args:
            scope: The parent construct (usually a :class:`ToolingStage`).
            id: The construct id.
            environments: Every environment's configuration, as ``load_environments`` returns them.
            connection_arn: A CodeConnections connection in the tooling region. Give it with
                ``repository`` and ``branch``, or give ``source_bucket_name`` and ``source_object_key``.
            repository: ``owner/repo``.
            branch: Default: - ``main``.
            source_bucket_name: A versioned bucket (tooling account) holding the repository as a zip.
            source_object_key: The zip file's key.
            order: Environment names in deployment order; each environment exactly once.
                Default: - the order of ``environments``.
            stage_factory: Builds an environment's stage. Default: - :class:`MlopsPlatformStage`.
            model_delivery: Define the model delivery pipeline. Default: - True.
            model_registry_environment: The environment whose model package group the model
                pipeline promotes from. Default: - the first environment.
            sample_key: The endpoint test's request in each data store. Default: -
                ``artifacts/delivery/sample-payload.csv``.
            parameter_prefix: SSM path of the records. Default: - ``/cdk-mlops/delivery``.
            cli_version: The CDK CLI of the self-mutation step. Default: - the latest.
            network: An existing VPC of the tooling account, by its ids (``NetworkMode.EXISTING``;
                imported without a lookup), in which every build of both pipelines runs, with its
                ``security_group_ids`` or one new group with no inbound rule. Its subnets need a
                route to the source provider and to PyPI (a NAT gateway, a proxy, or a package
                mirror). Required when an environment runs in a VPC (``config.network.private``).
                Default: - the builds run outside any VPC.
            kwargs: Passed to ``cdk.Stack`` (``env`` is required: the tooling account and region).

        An environment without account and region deploys into the tooling account and region
        (with a synth warning).

        Raises:
            ConfigurationError: every problem at once: no or duplicate environments, an environment in
                no stage (or in ``order`` but unknown), a prod environment without approval, a source
                given twice or not at all, an empty branch, a malformed connection ARN, an unknown
                registry environment, a private environment without ``network``, a ``network`` that
                is not an existing VPC's ids.
        """
        super().__init__(scope, id, **kwargs)
        source, problems = self._source(connection_arn, repository, branch, source_bucket_name, source_object_key)
        ordered, order_problems = _ordered(environments, order)
        problems += order_problems
        for config in ordered:
            if config.is_prod and not config.manual_approval:
                problems.append(
                    f"environments.{config.name}.manual_approval: false is not allowed in a prod environment; "
                    "a person approves every deployment to prod"
                )
        registry_name = model_registry_environment or (ordered[0].name if ordered else "")
        if model_delivery and ordered and registry_name not in {c.name for c in ordered}:
            problems.append(
                f"model_registry_environment {registry_name!r} is not an environment; use one of: "
                f"{', '.join(c.name for c in ordered)}"
            )
        problems += _network_problems(ordered, network)
        if problems:
            raise ConfigurationError(self, problems)
        assert source is not None
        vpc, subnets, groups = self._build_network(network) if network else (None, None, None)

        self.environments = [self._placed(config) for config in ordered]
        by_name = {config.name: config for config in self.environments}
        project = self.environments[0].project
        tests: dict[str, EndpointTest] = {}
        registry = by_name[registry_name]
        tooling_bus = self.format_arn(service="events", resource="event-bus", resource_name="default")
        registry_group: list[str] = []

        def on_stage(stage: cdk.Stage, target: DeliveryTarget, access: DeliveryAccess) -> None:
            if not model_delivery:
                return
            config = by_name[target.name]
            store = _one(stage, VersionedDataStore)
            if store is not None:
                test = EndpointTest.for_data_store(store, endpoint_name=endpoint_name_of(config), sample_key=sample_key)
                access.allow_endpoint_test(test, store)
                tests[target.name] = test
            if target.name == registry.name:
                training = _one(stage, _PipelineResources)
                if training is None:
                    raise ConfigurationError(
                        self, f"the {target.name} stage has no training pipeline; no registry to promote models from"
                    )
                access.allow_registry_read(training)
                registry_group.append(training.model_package_group_name)
                if (target.account, target.region) != (self.account, self.region):
                    access.forward_model_approvals(
                        model_package_group_name=training.model_package_group_name, event_bus_arn=tooling_bus
                    )

        records = {c.name: model_record_name(parameter_prefix, c.name) for c in self.environments}
        self.platform = PlatformDeliveryPipeline(
            self,
            "Platform",
            source=source,
            targets=[_target(c) for c in self.environments],
            stage_factory=lambda scope, target: stage_factory(scope, by_name[target.name]),
            on_stage=on_stage,
            model_records=records if model_delivery else None,
            access_role_prefix=project,
            parameter_prefix=parameter_prefix,
            cli_version=cli_version,
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=groups,
        )

        self.models: ModelDeliveryPipeline | None = None
        if model_delivery:
            self.models = ModelDeliveryPipeline(
                self,
                "Models",
                source=source,
                model_package_group_name=registry_group[0],
                registry_environment=registry.name,
                registry_account=str(registry.account),
                registry_region=str(registry.region),
                targets=[
                    ModelDeliveryTarget(
                        name=config.name,
                        account=str(config.account),
                        region=str(config.region),
                        stack_selector=f"{self.platform.stages[config.name].node.path}/*",
                        manual_approval=config.manual_approval,
                        production=config.is_prod,
                        endpoint_test=tests.get(config.name),
                    )
                    for config in self.environments
                ],
                access_role_prefix=project,
                parameter_prefix=parameter_prefix,
                artifact_bucket=self.platform.artifact_bucket,
                notification_topic=self.platform.topic,
                vpc=vpc,
                vpc_subnets=subnets,
                # One security group for the builds of both pipelines.
                security_groups=self.platform.security_groups or None,
            )

    def _source(
        self,
        connection_arn: str | None,
        repository: str | None,
        branch: str,
        bucket_name: str | None,
        object_key: str | None,
    ) -> tuple[PipelineSource | None, list[str]]:
        if (connection_arn is None) == (bucket_name is None):
            return None, [
                "give the repository either as connection_arn, repository and branch (AWS CodeConnections), "
                "or as source_bucket_name and source_object_key (a zip in S3)"
            ]
        if connection_arn is not None:
            source = PipelineSource.connection(connection_arn, repository=repository or "", branch=branch)
        else:
            bucket = s3.Bucket.from_bucket_name(self, "SourceBucket", str(bucket_name))
            source = PipelineSource.s3(bucket, object_key or "")
        region = None if cdk.Token.is_unresolved(self.region) else self.region
        return source, source.problems(region)

    def _build_network(
        self, network: NetworkConfig
    ) -> tuple[ec2.IVpc, ec2.SubnetSelection, list[ec2.ISecurityGroup] | None]:
        """The tooling VPC, its subnets and security groups, imported from their ids (no lookup at synth)."""
        vpc, groups = import_vpc(
            Construct(self, "Build"),
            network,
            subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
            reason="the builds never read their subnets' route tables",
        )
        return vpc, ec2.SubnetSelection(subnets=vpc.private_subnets), groups or None

    def _placed(self, config: EnvironmentConfig) -> EnvironmentConfig:
        if config.account is not None and config.region is not None:
            return config
        cdk.Annotations.of(self).add_warning_v2(
            "cdk-mlops:delivery-environment-in-tooling-account",
            f"environment {config.name} sets no account and region; the pipeline deploys it to the tooling "
            f"account {self.account} in {self.region}",
        )
        return replace(config, account=self.account, region=self.region)


def _target(config: EnvironmentConfig) -> DeliveryTarget:
    return DeliveryTarget(
        name=config.name,
        account=str(config.account),
        region=str(config.region),
        manual_approval=config.manual_approval,
        production=config.is_prod,
        stage_id=config.stage_name,
    )


def _ordered(
    environments: Sequence[EnvironmentConfig], order: Sequence[str] | None
) -> tuple[list[EnvironmentConfig], list[str]]:
    problems: list[str] = []
    names = [c.name for c in environments]
    if not environments:
        return [], ["environments is empty; give at least one environment"]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"environment {name!r} is given more than once; give each environment once")
    if order is None:
        return list(environments), problems
    for name in sorted({n for n in order if list(order).count(n) > 1}):
        problems.append(f"order lists {name!r} more than once; deploy each environment in one stage")
    for name in order:
        if name not in names:
            problems.append(f"order lists {name!r}, which is not an environment; use one of: {', '.join(names)}")
    for name in names:
        if name not in order:
            problems.append(f"environment {name!r} is in no stage; add it to order, or remove it from the environments")
    by_name = {c.name: c for c in environments}
    return [by_name[n] for n in dict.fromkeys(order) if n in by_name], problems


def _network_problems(environments: Sequence[EnvironmentConfig], network: NetworkConfig | None) -> list[str]:
    if network is None:
        private = [c.name for c in environments if c.network.private]
        if not private:
            return []
        return [
            f"environments {', '.join(private)} run in a VPC, but the delivery builds have no network; set "
            "tooling.network (DeliveryStack network=) to an existing VPC of the tooling account by its ids "
            '({"vpc_id": ..., "availability_zones": [...], "subnet_ids": [...], "route_table_ids": [...]}). '
            "The builds run there and reach the environments only through AWS APIs; its subnets need a route "
            "to the source provider and to PyPI (a NAT gateway, a proxy, or a package mirror)"
        ]
    if network.mode is not NetworkMode.EXISTING or not network.vpc_id or not network.subnet_ids:
        return [
            f"network ({network.mode}) must be an existing VPC of the tooling account, by its ids: set mode "
            "EXISTING with vpc_id, availability_zones and subnet_ids; the tooling stack creates no VPC"
        ]
    problems: list[str] = []
    if len(network.availability_zones) != len(network.subnet_ids):
        problems.append(
            f"network.availability_zones: {len(network.availability_zones)} zones for "
            f"{len(network.subnet_ids)} subnets; give each subnet's zone, in subnet order"
        )
    if network.route_table_ids and len(network.route_table_ids) != len(network.subnet_ids):
        problems.append(
            f"network.route_table_ids: {len(network.route_table_ids)} route tables for "
            f"{len(network.subnet_ids)} subnets; give each subnet's route table, in subnet order, or none"
        )
    return problems


def _one(stage: cdk.Stage, kind: type[Any]) -> Any:
    return next((c for c in stage.node.find_all() if isinstance(c, kind)), None)


@jsii.implements(cdk.IPolicyValidationContext)
class _Templates:
    def __init__(self, paths: Sequence[str]) -> None:
        self._paths = list(paths)

    @property
    def template_paths(self) -> list[str]:
        return self._paths


@jsii.implements(cdk.IPolicyValidationPlugin)
class _OwnStacksGuardrails:
    """The guardrails on a stage's own stacks only.

    A stage's validation plugins see the templates of nested stages too; the platform's stages
    nested in the pipeline apply their own environment's guardrails, which must not be overridden
    by the tooling stage's.
    """

    def __init__(self, stage: cdk.Stage, settings: GuardrailSettings) -> None:
        self._stage = stage
        self._inner = GuardrailsPlugin(stage, settings)

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def version(self) -> str:
        return self._inner.version

    @property
    def rule_ids(self) -> list[str]:
        return self._inner.rule_ids

    def validate(self, context: cdk.IPolicyValidationContext) -> cdk.PolicyValidationPluginReport:
        own = {
            (Path(self._stage.outdir) / stack.template_file).resolve()
            for stack in self._stage.node.find_all()
            if isinstance(stack, cdk.Stack) and cdk.Stage.of(stack) is self._stage
        }
        paths = [p for p in context.template_paths if Path(p).resolve() in own]
        return self._inner.validate(cast(cdk.IPolicyValidationContext, _Templates(paths)))


def apply_tooling_guardrails(stage: cdk.Stage, settings: GuardrailSettings | None = None) -> None:
    """Check the stage's own stacks against the guardrails at synth, not those of stages nested in it.

    A CDK Pipeline defines the stages it deploys inside its own stage; each of those applies its
    environment's guardrails itself.

    Args:
        stage: The tooling stage.
        settings: Default: - the prod rules (the pipelines hold the keys to every environment).
    """
    settings = settings or GuardrailSettings(prod=True, lambda_runtime=LAMBDA_RUNTIME.name)
    cdk.Validations.of(stage).add_plugins(_OwnStacksGuardrails(stage, settings))


class ToolingStage(cdk.Stage):
    """The tooling account's stage: one :class:`DeliveryStack`, tagged and checked by the guardrails.

    ``cdk deploy 'Tooling/*'`` deploys it once by hand; from then on the platform pipeline updates
    itself (self-mutation). The guardrails run with the prod rules on the stage's own stacks (the
    pipelines hold the keys to every environment); the platform stages inside the pipeline keep
    their own environment's rules.

    Attributes:
        delivery: The tooling stack.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        account: str,
        region: str,
        environments: Sequence[EnvironmentConfig],
        owner: str | None = None,
        tags: Mapping[str, str] | None = None,
        **delivery: Any,
    ) -> None:
        """Define the stage.

        Args:
            scope: The app.
            id: The construct id, e.g. ``Tooling``.
            account: The tooling account.
            region: The tooling region.
            environments: As for :class:`DeliveryStack`.
            owner: The ``owner`` tag. Default: - the first environment's owner.
            tags: Extra tags. Default: - none.
            delivery: Keyword arguments of :class:`DeliveryStack`: the source, ``order``,
                ``model_delivery``, and ``network`` (the tooling VPC every build runs in; required
                when an environment runs in a VPC).

        Raises:
            ConfigurationError: for an invalid account or region, and every problem of :class:`DeliveryStack`.
        """
        problems: list[str] = []
        if not (len(account) == 12 and account.isdigit()):
            problems.append(f"tooling account {account!r} is not an AWS account id; use the 12 digits, as a string")
        if region not in known_regions():
            problems.append(f"tooling region {region!r} is not a known AWS region")
        if problems:
            raise ConfigurationError(f"{scope.node.path}/{id}".lstrip("/"), problems)
        super().__init__(scope, id, env=cdk.Environment(account=account, region=region))
        self.delivery = DeliveryStack(
            self, "Delivery", environments=environments, termination_protection=True, **delivery
        )
        first = environments[0] if environments else None
        cdk.Tags.of(self).add("project", first.project if first else "cdk-mlops")
        cdk.Tags.of(self).add("environment", "tooling")
        cdk.Tags.of(self).add("owner", owner or (first.owner if first else "ml-platform"))
        for key, value in (tags or {}).items():
            cdk.Tags.of(self).add(key, value)
        apply_tooling_guardrails(self)
