"""One retrain trigger for a fleet: :class:`FleetRetrainTrigger`, and a :class:`RetrainRoute` per pipeline."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any, Final

from aws_cdk import Duration, Names, RemovalPolicy, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from cdk_mlops.constructs.common import SAGEMAKER_NAME, acknowledge, iam5_findings, nag_resource
from cdk_mlops.constructs.data_store_base import IDataStore, environment_problems
from cdk_mlops.constructs.inventory_snapshot import InventorySnapshot
from cdk_mlops.constructs.model_monitor.monitoring_type import MonitoringType
from cdk_mlops.constructs.props import checked_props
from cdk_mlops.constructs.retrain_base import (
    DEFAULT_FUNCTION_MEMORY_SIZE,
    DEFAULT_FUNCTION_TIMEOUT,
    METRICS_NAMESPACE,
    TriggerBase,
    lease_seconds,
)
from cdk_mlops.constructs.retrain_trigger import (
    DEFAULT_RETRAIN_ON_VIOLATIONS,
    RetrainPolicy,
    datasets_problems,
    pipeline_environment,
    snapshot_problems,
    violation_types,
)
from cdk_mlops.constructs.unique_names import claim
from cdk_mlops.datasets import DATASETS_PREFIX, MANIFESTS_PREFIX
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.lambdas.retrain_trigger import (
    ALARM_STATE_CHANGE,
    OBJECT_CREATED,
    PIPELINE_STATUS_CHANGE,
    TERMINAL_STATUSES,
)
from cdk_mlops.lambdas.retrain_trigger.routes import MAX_ROUTE_BYTES, ROUTES_PATH_VARIABLE, route_document

_HANDLER: Final = "cdk_mlops.lambdas.retrain_trigger.fleet.handler"
_SAGEMAKER_ACTIONS: Final = ("sagemaker:StartPipelineExecution", "sagemaker:ListPipelineExecutions")
#: How long a warm handler keeps the routes it read, by default.
DEFAULT_ROUTES_MAX_AGE: Final = Duration.minutes(5)
_PREFIX_HINT: Final = "1-40 lower-case letters, digits and hyphens, starting with a letter and ending with '-'"


class FleetRetrainTrigger(TriggerBase):
    """One retrain trigger for every pipeline of a fleet: one queue, function, table and rule set in all.

    A :class:`RetrainTrigger` per pipeline brings its own key, table, queues, five EventBridge rules and
    a reserved concurrency of 2, which runs into the account's quotas at about 75 pipelines (300 rules
    per event bus). This trigger's machinery is built once, whatever the number of pipelines, and each
    pipeline adds one :class:`RetrainRoute`: one SSM parameter, in any stack of the same account and
    region. The handler (``cdk_mlops.lambdas.retrain_trigger.fleet``) reads the routes and decides for
    each pipeline exactly as :class:`RetrainTrigger` does: one run per data version, a lock per
    pipeline, quiet period, cool-down and daily cap per pipeline, and records of one pipeline that fail
    never hold back another's.

    Every pipeline it serves is named ``<pipeline_name_prefix><model>``, and so are its model package
    group, because the handler's role is granted by that prefix: it may start and list executions of
    ``pipeline/<prefix>*`` and find the champion in ``model-package-group/<prefix>*``. It may read the
    store's ``datasets/`` and ``artifacts/`` (and, with ``snapshot``, ``manifests/``) and write manifests.

    Example::

        fleet = FleetRetrainTrigger(self, "Retrain", data_store=store, pipeline_name_prefix="prod-")
        RetrainRoute(model_stack, "ChurnRoute", trigger=fleet, pipeline_name="prod-churn", datasets=["churn"])

    Attributes:
        pipeline_name_prefix: What every served pipeline's name starts with.
        routes_parameter_path: The SSM path the routes are under (``<path>/<pipeline name>``).
        queue, dead_letter_queue, table, function, powertools_layer, role, security_groups, log_group,
        encryption_key, dead_letter_alarm, errors_alarm: As :class:`RetrainTrigger`'s.
        failed_rule: Announces failed executions of the fleet's pipelines on ``alarm_topic``; None without it.
        retrain_on_violations: The monitoring types whose violation events retrain.
        snapshot: The InventorySnapshot whose datasets are versioned by snapshots; None without one.
        rules: ``DataChanged`` (objects of every dataset of the store), ``SnapshotFinished`` (with
            ``snapshot``), ``PipelineFinished`` (pipelines named with the prefix), ``Requested``,
            ``Violations`` (unless ``retrain_on_violations`` is empty) and ``Drift`` (alarms whose
            name starts with the prefix).
    """

    @checked_props
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        data_store: IDataStore,
        pipeline_name_prefix: str,
        snapshot: InventorySnapshot | None = None,
        retrain_on_violations: Collection[MonitoringType] = DEFAULT_RETRAIN_ON_VIOLATIONS,
        alarm_topic: sns.ITopic | None = None,
        encryption_key: kms.IKey | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        max_receive_count: int = 10,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        powertools_layer: lambda_.ILayerVersion | None = None,
        function_timeout: Duration = DEFAULT_FUNCTION_TIMEOUT,
        function_memory_size: int = DEFAULT_FUNCTION_MEMORY_SIZE,
        routes_max_age: Duration = DEFAULT_ROUTES_MAX_AGE,
    ) -> None:
        """Define the shared trigger.

        Args:
            scope: The parent construct.
            id: The construct id.
            data_store: The store whose datasets the pipelines train on; its bucket sends events to
                EventBridge.
            pipeline_name_prefix: What the name of every pipeline it serves starts with, e.g.
                ``prod-``: 1-40 lower-case letters, digits and hyphens, starting with a letter and
                ending with ``-``. Its model package groups and artifacts prefixes start with it too.
            snapshot: Version the datasets it snapshots with this :class:`InventorySnapshot` (see
                :class:`RetrainTrigger`); a route's datasets that it covers are snapshotted.
                Default: - none; every dataset is listed at each start.
            retrain_on_violations: As :class:`RetrainTrigger`'s. A violation retrains the pipelines
                whose route lists its monitoring schedule. Default: - data and model quality.
            alarm_topic: Where the dead-letter and error alarms notify, and where the ``PipelineFailed``
                rule announces every failed execution of the fleet's pipelines (so that they can be built
                with ``TrainingPipeline(announce_failures=False)``). Its key, if any, lets EventBridge and
                CloudWatch use it. Default: - no action and no ``PipelineFailed`` rule.
            encryption_key: Key for the queues and the table. Default: - a new key with rotation on.
            removal_policy: For the table, queues, key and log group. Default: - RETAIN.
            max_receive_count: Attempts before a record moves to the dead-letter queue. Default: - 10.
            log_retention: How long the handler's logs are kept. Default: - 3 months.
            vpc, vpc_subnets, security_groups: As :class:`RetrainTrigger`'s. Default: - no VPC.
            powertools_layer: As :class:`RetrainTrigger`'s. Default: - AWS's managed layer.
            function_timeout: The handler's timeout, 30 s to 15 min. Default: - 120 s.
            function_memory_size: The handler's memory in MiB. Default: - 512.
            routes_max_age: How long a warm function keeps the routes it read, 0 to 1 hour. A record
                that no route claims reads them again at once (at most every 30 s), so a new pipeline
                never waits for it. Default: - 5 minutes.

        Raises:
            ConfigurationError: listing every invalid argument, before any resource is defined.
        """
        super().__init__(scope, id)
        problems: list[str] = []
        if Token.is_unresolved(pipeline_name_prefix) or not _valid_prefix(pipeline_name_prefix):
            problems.append(f"pipeline_name_prefix {pipeline_name_prefix!r} must be {_PREFIX_HINT}, e.g. 'prod-'")
        types, found = violation_types(retrain_on_violations)
        problems += found
        snapshot_problems(snapshot, data_store, (), RetrainPolicy(), problems, required=False)
        problems += environment_problems(self, data_store, construct="FleetRetrainTrigger")
        problems += self._machinery_problems(
            max_receive_count,
            vpc,
            vpc_subnets,
            security_groups,
            powertools_layer,
            function_timeout,
            function_memory_size,
        )
        max_age = routes_max_age.to_seconds() if isinstance(routes_max_age, Duration) else -1
        if not 0 <= max_age <= 3600:
            problems.append(f"routes_max_age ({routes_max_age!r}) must be a Duration from 0 to 1 hour")
        if problems:
            raise ConfigurationError(self, problems)

        self.data_store = data_store
        self.pipeline_name_prefix = pipeline_name_prefix
        self.snapshot = snapshot
        self.retrain_on_violations: tuple[MonitoringType, ...] = types
        self.routes_parameter_path = f"/cdk-mlops/retrain-routes/{Names.unique_id(self)}"
        stack = Stack.of(self)
        self._pipelines_arn = stack.format_arn(
            service="sagemaker", resource="pipeline", resource_name=pipeline_name_prefix
        )
        environment = {
            ROUTES_PATH_VARIABLE: self.routes_parameter_path,
            "ROUTES_MAX_AGE_SECONDS": str(int(max_age)),
            "DATA_BUCKET": data_store.bucket.bucket_name,
            "LEASE_SECONDS": str(lease_seconds(function_timeout)),
            "METRICS_NAMESPACE": METRICS_NAMESPACE,
        }
        if snapshot is not None:
            environment["SNAPSHOT_STATE_MACHINE_ARN"] = snapshot.state_machine.state_machine_arn
        self._build_machinery(
            handler=_HANDLER,
            description="Starts one training run per data version of each pipeline with a route",
            environment=lambda: {
                **environment,
                "STATE_TABLE": self.table.table_name,
                "QUEUE_URL": self.queue.queue_url,
            },
            encryption_key=encryption_key,
            removal_policy=removal_policy,
            max_receive_count=max_receive_count,
            log_retention=log_retention,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=security_groups,
            powertools_layer=powertools_layer,
            function_timeout=function_timeout,
            function_memory_size=function_memory_size,
            grant=self._grant_handler,
        )
        self._add_rules(data_store, snapshot, types)
        self._allow_rules_to_send()
        self._build_alarms(max_receive_count, alarm_topic)
        self.failed_rule: events.Rule | None = None
        if alarm_topic is not None:
            # One rule announces every fleet pipeline's failures (the event names the pipeline), in place
            # of a rule and an alarm per pipeline (TrainingPipeline(announce_failures=False)).
            self.failed_rule = events.Rule(
                self,
                "PipelineFailed",
                description=f"{self.node.path}: an execution of a {pipeline_name_prefix}* pipeline failed",
                event_pattern=events.EventPattern(
                    source=["aws.sagemaker"],
                    detail_type=[PIPELINE_STATUS_CHANGE],
                    detail={
                        "pipelineArn": [{"prefix": self._pipelines_arn}],
                        "currentPipelineExecutionStatus": ["Failed"],
                    },
                ),
            )
            self.failed_rule.add_target(targets.SnsTopic(alarm_topic))

    def _add_rules(
        self, data_store: IDataStore, snapshot: InventorySnapshot | None, types: tuple[MonitoringType, ...]
    ) -> None:
        self.rules = {}
        prefix = self.pipeline_name_prefix
        self._route(
            "DataChanged",
            "New objects under any dataset (the handler routes them to the pipelines that watch it)",
            events.EventPattern(
                source=["aws.s3"],
                detail_type=[OBJECT_CREATED],
                detail={
                    "bucket": {"name": [data_store.bucket.bucket_name]},
                    "object": {"key": [{"prefix": DATASETS_PREFIX}]},
                },
            ),
        )
        if snapshot is not None:
            self._route_snapshots(snapshot)
        self._route(
            "PipelineFinished",
            f"Executions of the {prefix}* pipelines ending (releases their lock, starts the pending version)",
            events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[PIPELINE_STATUS_CHANGE],
                detail={
                    "pipelineArn": [{"prefix": self._pipelines_arn}],
                    "currentPipelineExecutionStatus": sorted(TERMINAL_STATUSES),
                },
            ),
        )
        self._route_requests_and_violations(types)
        self._route(
            "Drift",
            f"Alarms named {prefix}* entering ALARM (a route lists the ones that retrain its pipeline)",
            events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=[ALARM_STATE_CHANGE],
                detail={"alarmName": [{"prefix": prefix}], "state": {"value": ["ALARM"]}},
            ),
        )

    def _grant_handler(self) -> None:
        store, prefix, stack = self.data_store, self.pipeline_name_prefix, Stack.of(self)
        self._grant_machinery()
        pipelines = f"{self._pipelines_arn}*"
        iam.Grant.add_to_principal(grantee=self.role, actions=list(_SAGEMAKER_ACTIONS), resource_arns=[pipelines])
        groups = stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=f"{prefix}*")
        packages = stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{prefix}*/*")
        iam.Grant.add_to_principal(
            grantee=self.role, actions=["sagemaker:ListModelPackages"], resource_arns=[groups, packages]
        )
        iam.Grant.add_to_principal(
            grantee=self.role, actions=["sagemaker:DescribeModelPackage"], resource_arns=[packages]
        )
        routes = stack.format_arn(
            service="ssm", resource="parameter", resource_name=self.routes_parameter_path.lstrip("/")
        )
        iam.Grant.add_to_principal(
            grantee=self.role, actions=["ssm:GetParametersByPath"], resource_arns=[routes, f"{routes}/*"]
        )
        # Every route's datasets are listed to build a version, and their manifests written; the
        # champions' evaluation.json is under artifacts/.
        store.grant_read(self.role, prefix=DATASETS_PREFIX)
        store.grant_read(self.role, prefix=store.artifacts_prefix)
        store.grant_write_manifests(self.role)
        if self.snapshot is not None:
            # A snapshotted dataset's newest index is read when a start has no snapshot's event behind it.
            store.grant_read(self.role, prefix=MANIFESTS_PREFIX)
        acknowledge(
            self.role,
            "the fleet's pipelines and model package groups are added by routes in other stacks; every grant is "
            f"limited to the names that start with {prefix}, which RetrainRoute enforces",
            *iam5_findings(
                resources=tuple(nag_resource(self, arn) for arn in (pipelines, groups, packages, f"{routes}/*"))
            ),
        )


class RetrainRoute(Construct):
    """One pipeline served by a :class:`FleetRetrainTrigger`: its route, one SSM ``String`` parameter.

    Put it in the stack of the pipeline it routes (any stack of the trigger's account and region): adding
    or changing a pipeline then changes its own stack only. The parameter ``<routes path>/<pipeline_name>``
    holds the pipeline's datasets, policy and champion group, and the monitoring schedules and alarms
    that retrain it (``cdk_mlops.lambdas.retrain_trigger.routes`` describes the document).

    Attributes:
        trigger: The shared trigger.
        pipeline_name: The pipeline it starts.
        datasets: Its datasets; the first is retrained on drift.
        parameter: The route's parameter.
    """

    @checked_props
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        trigger: FleetRetrainTrigger,
        pipeline_name: str,
        datasets: Sequence[str],
        model_package_group_name: str | None = None,
        compare_with_champion: bool = True,
        policy: RetrainPolicy | None = None,
        monitoring_schedule_names: Sequence[str] = (),
        drift_alarm_names: Sequence[str] = (),
    ) -> None:
        """Route a pipeline through the shared trigger.

        Args:
            scope: The parent construct, e.g. the pipeline's stack.
            id: The construct id.
            trigger: The shared trigger.
            pipeline_name: The pipeline to start; it starts with the trigger's ``pipeline_name_prefix``.
            datasets: Dataset names under ``datasets/`` of the trigger's data store; the first is
                retrained on drift. At least one.
            model_package_group_name: The group whose newest approved package is the champion; it
                starts with the prefix. Default: - ``<pipeline_name>-models``.
            compare_with_champion: As :class:`RetrainTrigger`'s. Default: - True.
            policy: Batching, filters, cool-down and daily cap. Default: - as :class:`RetrainTrigger`'s.
            monitoring_schedule_names: Model Monitor schedules whose violation events retrain this
                pipeline. Default: - none.
            drift_alarm_names: CloudWatch alarms whose ALARM state retrains this pipeline; each name
                starts with the prefix, as the trigger's ``Drift`` rule matches. Default: - none.

        Raises:
            ConfigurationError: listing every invalid argument, before any resource is defined.
        """
        super().__init__(scope, id)
        policy = policy or RetrainPolicy()
        prefix, store = trigger.pipeline_name_prefix, trigger.data_store
        names = tuple(datasets)
        problems = policy.problems()
        if Token.is_unresolved(pipeline_name) or not SAGEMAKER_NAME.match(pipeline_name):
            problems.append(f"pipeline_name {pipeline_name!r} must be a lower-case SageMaker name known at synth")
        elif not pipeline_name.startswith(prefix) or pipeline_name == prefix:
            problems.append(
                f"pipeline_name {pipeline_name!r} must start with the trigger's prefix {prefix!r} (its role may start "
                f"only those pipelines); name it e.g. '{prefix}{pipeline_name}'"
            )
        problems += datasets_problems(store, names)
        snapshotted = snapshot_problems(trigger.snapshot, store, names, policy, problems, required=False)
        if not compare_with_champion and model_package_group_name is not None:
            problems.append(
                "model_package_group_name is given with compare_with_champion=False, which reads no champion; "
                "remove it, or compare with the champion"
            )
        group = model_package_group_name or f"{pipeline_name}-models"
        if compare_with_champion and not (SAGEMAKER_NAME.match(group) and group.startswith(prefix)):
            problems.append(
                f"model_package_group_name {group!r} must be a lower-case SageMaker name starting with {prefix!r}"
            )
        for argument, found in (
            ("monitoring_schedule_names", monitoring_schedule_names),
            ("drift_alarm_names", drift_alarm_names),
        ):
            if any(not isinstance(n, str) or not n or Token.is_unresolved(n) for n in found):
                problems.append(f"{argument} {list(found)!r} must be names known at synth, not tokens")
        problems += [
            f"drift_alarm_names: {n!r} must start with {prefix!r}, the alarms the trigger's Drift rule matches"
            for n in drift_alarm_names
            if isinstance(n, str) and not n.startswith(prefix)
        ]
        document = _route_value(
            pipeline_environment(pipeline_name, names, policy, group if compare_with_champion else None, snapshotted),
            monitoring_schedule_names,
            drift_alarm_names,
        )
        size = len(document.encode())
        if size > MAX_ROUTE_BYTES:
            problems.append(
                f"the route of {pipeline_name!r} is {size:,} bytes, over the {MAX_ROUTE_BYTES:,} of a standard SSM "
                "parameter; list fewer datasets, schedules or alarms"
            )
        if problems:
            raise ConfigurationError(self, problems)
        claim(
            self,
            "retrain trigger of pipeline",
            pipeline_name,
            "one trigger per pipeline: two would keep two locks, and two runs could start at once",
        )
        self.trigger = trigger
        self.pipeline_name = pipeline_name
        self.datasets = names
        self.parameter = ssm.StringParameter(
            self,
            "Route",
            parameter_name=f"{trigger.routes_parameter_path}/{pipeline_name}",
            string_value=document,
            description=f"Retrain route of {pipeline_name} through {trigger.node.path}",
            tier=ssm.ParameterTier.STANDARD,
        )


def _valid_prefix(prefix: str) -> bool:
    return (
        1 < len(prefix) <= 40
        and prefix[0].isalpha()
        and prefix.endswith("-")
        and SAGEMAKER_NAME.match(prefix.rstrip("-")) is not None
        and prefix == prefix.lower()
    )


def _route_value(settings: dict[str, str], schedules: Sequence[str], alarms: Sequence[str]) -> str:
    document: dict[str, Any] = route_document(settings, monitoring_schedules=schedules, drift_alarms=alarms)
    return json.dumps(document, separators=(",", ":"), sort_keys=True)
