"""Retrain trigger: new data, a schedule, drift or a person start at most one training run per data version."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import jsii
from aws_cdk import Annotations, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.interfaces import aws_events as events_refs
from aws_cdk.region_info import RegionInfo
from constructs import Construct

from cdk_mlops.constructs.common import (
    LAMBDA_RUNTIME,
    SAGEMAKER_NAME,
    acknowledge,
    acknowledge_grantee,
    dead_letter_queue,
    depend_on_role_policy,
    grant_lambda_vpc_access,
    https_only_security_group,
    iam5_findings,
    lambda_code,
    metric_props,
    nag_resource,
    network_problems,
    select_subnets,
)
from cdk_mlops.constructs.data_store_base import IDataStore, environment_problems
from cdk_mlops.constructs.inventory_snapshot import InventorySnapshot
from cdk_mlops.constructs.model_monitor.monitoring_type import MonitoringType
from cdk_mlops.constructs.props import checked_props
from cdk_mlops.constructs.unique_names import claim
from cdk_mlops.datasets import dataset_name_problems
from cdk_mlops.errors import ConfigurationError

# The event vocabulary lives with the handler, which ships without this module; it is plain
# constants (no boto3), so the construct shares it rather than repeating the strings.
from cdk_mlops.lambdas.retrain_trigger import (
    ALARM_STATE_CHANGE,
    DECISION_DIMENSION,
    DECISIONS_METRIC,
    EXECUTION_STATUS_CHANGE,
    EXECUTION_SUCCEEDED,
    MANUAL_RETRAIN,
    MONITOR_SOURCE,
    MONITOR_VIOLATION,
    OBJECT_CREATED,
    PIPELINE_STATUS_CHANGE,
    SCHEDULED_RETRAIN,
    SOURCE,
    STATES_SOURCE,
    TERMINAL_STATUSES,
    Mode,
)

#: Where the handler publishes its ``Decisions`` metric (Embedded Metric Format).
METRICS_NAMESPACE = "CdkMlops/RetrainTrigger"

_HANDLER = "cdk_mlops.lambdas.retrain_trigger.handler.handler"
#: The handler's default timeout: a snapshot lists about 5,000 objects a second, so 120 s covers
#: datasets of about half a million objects.
DEFAULT_FUNCTION_TIMEOUT = Duration.seconds(120)
#: The handler's default memory (MiB); Lambda gives CPU in proportion to it.
DEFAULT_FUNCTION_MEMORY_SIZE = 512
_BATCH_WINDOW = Duration.seconds(60)
# The shortest timeout that still lets one batch snapshot, claim and start; Lambda's longest.
_TIMEOUT_RANGE = (30, 900)
# Lambda's memory range, in MiB.
_MEMORY_RANGE = (128, 10_240)
# The event source mapping's concurrency; reserved concurrency matches it so no poller is throttled.
_CONCURRENCY = 2
_SAGEMAKER_ACTIONS = ("sagemaker:StartPipelineExecution", "sagemaker:ListPipelineExecutions")
# The champion lookup: listing is granted on the group and its versions, describing on the versions.
_LIST_PACKAGES = "sagemaker:ListModelPackages"
_DESCRIBE_PACKAGE = "sagemaker:DescribeModelPackage"
_TABLE_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
# What Lambda needs from the execution role to attach the function to VPC subnets (the actions of
# AWSLambdaVPCAccessExecutionRole). Creating is granted in the chosen subnets with the chosen groups;
# the interfaces themselves get ids from EC2, and Describe* supports no resource-level permissions.
_EVENTS = "events.amazonaws.com"
# What EventBridge needs to put a message on a queue encrypted with a customer managed key.
_EVENTS_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
#: The monitoring types whose ``Model Monitor Violation`` events retrain by default. Data and model
#: quality say the model no longer fits the traffic, which new data can fix; a bias or
#: explainability violation needs a person to judge it, so it only raises the monitor's alarm.
DEFAULT_RETRAIN_ON_VIOLATIONS: Final[tuple[MonitoringType, ...]] = (
    MonitoringType.DATA_QUALITY,
    MonitoringType.MODEL_QUALITY,
)
#: Id of the warning for an imported key whose policy this construct cannot extend.
IMPORTED_KEY_WARNING_ID = "cdk-mlops:retrain-trigger-imported-key"

#: The version of AWS's managed Powertools for AWS Lambda (Python) v3 layer the handler uses, the
#: same in every commercial region and in cn-north-1. Published in Powertools' documentation,
#: "Getting started > Installation > Lambda Layer" (docs.aws.amazon.com/powertools/python/latest/);
#: move it forward with the ``aws-lambda-powertools`` pin of the dev dependencies, which tests run.
POWERTOOLS_LAYER_VERSION: Final = 37
# The handler runs on Lambda's default architecture; its layer must be built for it.
_ARCHITECTURE: Final = lambda_.Architecture.X86_64
# The account that publishes the layer, by partition, and the regions the same documentation lists.
# GovCloud's layers are published from a different account per region and trail the other
# partitions' versions, so there, as anywhere else without a managed layer, pass your own with
# ``powertools_layer``.
_POWERTOOLS_PUBLISHERS: Final[Mapping[str, str]] = {"aws": "017000801446", "aws-cn": "498634801083"}
_POWERTOOLS_REGIONS: Final[Mapping[str, frozenset[str]]] = {
    "aws": frozenset(
        {
            *("af-south-1", "ap-east-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3"),
            *("ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3"),
            *("ap-southeast-4", "ap-southeast-5", "ap-southeast-7", "ca-central-1", "ca-west-1"),
            *("eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1"),
            *("eu-west-2", "eu-west-3", "il-central-1", "me-central-1", "me-south-1", "mx-central-1"),
            *("sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2"),
        }
    ),
    "aws-cn": frozenset({"cn-north-1"}),
}


#: When a data drop counts as complete: ``QUIET_PERIOD`` (no new object for ``quiet_period``)
#: or ``COMMIT_MARKER`` (a marker object such as ``_SUCCESS`` lands; other objects never start a run).
RetrainMode = Mode


@dataclass(frozen=True, kw_only=True)
class RetrainPolicy:
    """How eagerly new data turns into a training run.

    Attributes:
        mode: Quiet period or commit marker. Default: - QUIET_PERIOD.
        quiet_period: Quiet-period mode waits this long after the last object.
            Default: - 15 minutes.
        marker_name: The commit marker's file name. Default: - ``_SUCCESS``.
        key_prefix: Only objects under ``datasets/<name>/<key_prefix>`` count.
            Default: - every object of the dataset.
        key_suffixes: Only objects ending in one of these count. Default: - any.
        min_objects: New objects needed since the last run. Default: - 0 (any change).
        min_bytes: New bytes needed since the last run. Default: - 0 (any change).
        cooldown: Minimum time between two runs. Default: - 1 hour.
        max_runs_per_day: Runs per UTC day; 0 means no limit. Default: - 4.
    """

    mode: RetrainMode = RetrainMode.QUIET_PERIOD
    quiet_period: Duration = field(default_factory=lambda: Duration.minutes(15))
    marker_name: str = "_SUCCESS"
    key_prefix: str | None = None
    key_suffixes: tuple[str, ...] = ()
    min_objects: int = 0
    min_bytes: int = 0
    cooldown: Duration = field(default_factory=lambda: Duration.hours(1))
    max_runs_per_day: int = 4

    def problems(self) -> list[str]:
        """Every invalid setting, each with its value and the fix."""
        found: list[str] = []
        quiet = self.quiet_period.to_seconds()
        if not Token.is_unresolved(quiet) and not 0 <= quiet <= 7 * 86400:
            found.append(f"quiet_period ({quiet} s) must be between 0 and 7 days")
        cooldown = self.cooldown.to_seconds()
        if not Token.is_unresolved(cooldown) and not 0 <= cooldown <= 30 * 86400:
            found.append(f"cooldown ({cooldown} s) must be between 0 and 30 days")
        if not self.marker_name or "/" in self.marker_name or self.marker_name != self.marker_name.strip():
            found.append(f"marker_name {self.marker_name!r} must be a file name without '/' or surrounding spaces")
        for name in ("min_objects", "min_bytes", "max_runs_per_day"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                found.append(f"{name} ({value!r}) must be a whole number >= 0")
        if any("," in s or not s for s in self.key_suffixes):
            found.append(f"key_suffixes {list(self.key_suffixes)!r} must be non-empty and contain no ','")
        return found


class RetrainTrigger(Construct):
    """Starts a SageMaker pipeline when data changes, on a schedule, on drift or by hand; never twice per version.

    Every source (S3 object-created events of the data store's datasets,
    EventBridge Scheduler, CloudWatch drift alarms, Model Monitor violation
    events of the types in ``retrain_on_violations``, manual ``Manual Retrain``
    events) lands on one encrypted SQS
    queue. A Lambda function drains it in batches, snapshots the dataset
    (``cdk_mlops.datasets``; with ``snapshot``, the newest :class:`InventorySnapshot` version instead)
    and starts the pipeline with the manifest URI, its
    sha256, the data version and the reason as pipeline parameters, plus the
    champion every run must beat: it looks up the newest ``Approved`` package of
    the model package group at each start and passes its metric
    (``ChampionMetric``) and data-quality constraints (``BaselineConstraintsUri``);
    with no approved package (the first model) ``ChampionMetric`` is 0. With
    ``compare_with_champion=False`` (a scoring pipeline such as :class:`BatchInference`'s)
    it sends the data parameters only, looks nothing up and is granted nothing for it. A DynamoDB
    table holds idempotency records (one run per manifest digest), the lock
    while an execution runs, the pending data version and the cool-down and
    daily counters. Failed records retry with the queue's visibility timeout
    and end in an encrypted dead-letter queue with an alarm. EventBridge may send
    to the queue only for this construct's rules (``aws:SourceArn``), and use its
    key, and EventBridge Scheduler assume its role, only for this account
    (``aws:SourceAccount``). With a ``vpc`` the function runs in its private
    subnets and reaches AWS's APIs through the VPC's endpoints; its role may
    create network interfaces in those subnets, with its security groups, only.

    Example::

        RetrainTrigger(self, "Retrain", data_store=store, datasets=["churn"],
                       pipeline_name=training.pipeline_name,
                       model_package_group_name=training.model_package_group_name,
                       schedule=scheduler.ScheduleExpression.expression("cron(0 3 ? * MON *)"))

    Attributes:
        pipeline_name: The pipeline it starts.
        pipeline_arn: That pipeline's ARN.
        model_package_group_name: The group whose newest approved package is the champion;
            None with ``compare_with_champion=False``.
        artifacts_prefix: Where in the data store the champion's ``evaluation.json`` is read;
            None with ``compare_with_champion=False``.
        queue: The queue every trigger event goes through.
        dead_letter_queue: Where records land after ``max_receive_count`` failed attempts.
        table: Idempotency, lock and pending state (TTL attribute ``expires_at``).
        function: The handler.
        powertools_layer: The Powertools for AWS Lambda (Python) v3 layer the handler imports.
        role: The handler's execution role.
        security_groups: The handler's security groups; empty outside a VPC.
        log_group: The handler's log group (one JSON line per decision).
        encryption_key: Encrypts the queues and the table.
        retrain_on_violations: The monitoring types whose violation events
            retrain, in ``MonitoringType`` order; empty when none does.
        snapshot: The InventorySnapshot that versions ``snapshotted_datasets``; None without one.
        snapshotted_datasets: The datasets versioned by ``snapshot`` (not listed); empty without one.
        rules: The EventBridge rules feeding the queue, by source name:
            ``DataChanged`` (unless ``retrain_on_new_data`` is False or every dataset is
            snapshotted), ``SnapshotFinished`` (with ``snapshot``), ``PipelineFinished``,
            ``Requested`` (manual requests), ``Violations`` (unless ``retrain_on_violations`` is empty) and ``Drift``
            (with ``drift_alarms``).
        schedule: The EventBridge Scheduler schedule, when ``schedule`` is given.
        dead_letter_alarm: In ALARM when any record is in the dead-letter queue.
        errors_alarm: In ALARM when the handler raises.
    """

    @checked_props
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        data_store: IDataStore,
        datasets: Sequence[str],
        pipeline_name: str,
        model_package_group_name: str | None = None,
        artifacts_prefix: str | None = None,
        compare_with_champion: bool = True,
        retrain_on_new_data: bool = True,
        snapshot: InventorySnapshot | None = None,
        policy: RetrainPolicy | None = None,
        schedule: scheduler.ScheduleExpression | None = None,
        retrain_unchanged_data_on_schedule: bool = False,
        drift_alarms: Sequence[cw.IAlarm] = (),
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
    ) -> None:
        """Define the trigger.

        Args:
            scope: The parent construct.
            id: The construct id.
            data_store: The store whose datasets are watched; its bucket must send
                events to EventBridge (a VersionedDataStore's does; turn it on yourself
                for a bucket imported with ``VersionedDataStore.from_bucket``).
            datasets: Dataset names under ``datasets/``; the first one is
                retrained on drift. At least one.
            pipeline_name: The SageMaker pipeline to start. SageMaker builds
                ARNs from the lower-cased name, so a token must resolve to a
                lower-case name.
            model_package_group_name: The model registry group the pipeline
                registers into; at every start its newest ``Approved`` package is
                the champion the run must beat, and its baseline the constraints
                new data is validated against. Default: - ``<pipeline_name>-models``,
                the group :class:`TrainingPipeline` creates by default; pass
                ``training.model_package_group_name`` when it is another.
            artifacts_prefix: Key prefix in ``data_store`` under which the
                pipeline writes its artifacts; the handler may read objects there
                (the champion's ``evaluation.json``). Default: -
                ``artifacts/<pipeline_name>/``, where :class:`TrainingPipeline` writes.
            compare_with_champion: Look up the champion at each start and pass
                ``ChampionMetric`` (and ``BaselineConstraintsUri``). False is for a pipeline
                without a champion/challenger gate (batch scoring): starts carry
                ``InputManifestUri``, ``ManifestSha256``, ``DataVersion`` and ``TriggerReason``
                only, and the handler gets no registry or artifacts permission. Not together
                with ``model_package_group_name`` or ``artifacts_prefix``. Default: - True.
            retrain_on_new_data: Route the datasets' ``Object Created`` events, so that a
                data drop starts a run. False leaves the schedule and ``Manual Retrain``
                requests (and drift, violations) as the only sources. Default: - True.
            snapshot: Version the datasets it snapshots with this :class:`InventorySnapshot`
                (S3 Inventory and a Distributed Map) instead of listing them in the handler, for
                datasets past about half a million objects. For those datasets a run starts when a
                snapshot succeeds (its ``Step Functions Execution Status Change`` event), trains on
                the newest snapshot whatever the trigger (schedule, drift, a person), and object
                events are not routed: a version covers the objects of its inventory report
                (``as_of``, at most a day old), never a half-listed drop. The other datasets are
                listed as before. The snapshot must be of ``data_store`` and cover at least one of
                ``datasets``. Default: - none; every dataset is listed at each start.
            policy: Batching, filters, cool-down and daily cap.
                Default: - quiet period of 15 minutes, 1 hour cool-down, 4 runs a day.
            schedule: Periodic retraining (EventBridge Scheduler). Default: - none.
            retrain_unchanged_data_on_schedule: A scheduled run retrains even when
                the data did not change. Default: - False; a schedule only
                catches up on data versions that were never trained.
            drift_alarms: Alarms whose ALARM state retrains (e.g. Model Monitor
                drift alarms). Default: - none.
            retrain_on_violations: The monitoring types whose ``Model Monitor
                Violation`` events retrain (matched on the event's
                ``detail.monitoringType``). The other types' violations only raise
                the monitor's violation alarm. Any collection of ``MonitoringType``
                (or its values, e.g. ``"ModelBias"``); empty means violations never
                retrain. Default: - data quality and model quality
                (:data:`DEFAULT_RETRAIN_ON_VIOLATIONS`); bias and explainability
                violations alert a person and do not retrain.
            alarm_topic: Where the dead-letter and error alarms notify.
                Default: - the alarms have no action.
            encryption_key: Key for the queues and the table. Default: - a new
                key with rotation on.
            removal_policy: For the table, queues, key and log group.
                Default: - RETAIN.
            max_receive_count: Attempts before a record moves to the
                dead-letter queue. Default: - 10.
            log_retention: How long the handler's logs are kept. Default: - 3 months.
            vpc: The VPC the handler runs in. It calls S3, DynamoDB, SQS and SageMaker, so
                the subnets need a route to them (VPC endpoints in an isolated VPC).
                Default: - no VPC; the function reaches AWS's public endpoints.
            vpc_subnets: Where in ``vpc`` the handler runs (only with ``vpc``).
                Default: - the VPC's private subnets, as ``lambda.Function`` selects them.
            security_groups: The handler's security groups (only with ``vpc``).
                Default: - a new group in ``vpc`` with no inbound rule and outbound
                HTTPS (TCP 443) only, which is all the AWS APIs it calls need.
            powertools_layer: A layer with Powertools for AWS Lambda (Python) v3 for the
                handler's runtime and architecture, e.g. one you publish where AWS publishes
                none (GovCloud, new regions): ``LayerVersion.from_layer_version_arn(...)``.
                Default: - AWS's managed layer of the stack's region,
                version :data:`POWERTOOLS_LAYER_VERSION`; a stack without a region uses the
                commercial partition's layer of the region it deploys to.
            function_timeout: The handler's timeout, 30 s to 15 min. A start lists the whole
                dataset (about 5,000 objects a second), so raise it for larger datasets. The
                queue's visibility timeout (6 x this + the 60 s batching window, at least 15 min)
                and the start lease (this + 60 s, at least 5 min) follow it. Default: - 120 s.
            function_memory_size: The handler's memory in MiB, 128 to 10,240 (Lambda gives CPU
                in proportion). Default: - 512.

        Raises:
            ConfigurationError: listing every invalid argument, before any
                resource is defined.
        """
        super().__init__(scope, id)
        policy = policy or RetrainPolicy()
        names = tuple(datasets)
        problems = policy.problems()
        violation_types, found = _violation_types(retrain_on_violations)
        problems += found
        if not names:
            problems.append("datasets is empty; name at least one dataset under datasets/ to watch")
        for name in names:
            problems += [f"datasets: {p}" for p in dataset_name_problems(name)]
        if len(set(names)) != len(names):
            problems.append(f"datasets {list(names)!r} repeats a name; list each dataset once")
        problems += data_store.undeclared_problems("datasets", names)
        snapshotted = _snapshot_problems(snapshot, data_store, names, policy, problems)
        problems += environment_problems(self, data_store, construct="RetrainTrigger")
        if not Token.is_unresolved(pipeline_name) and (not pipeline_name or pipeline_name != pipeline_name.lower()):
            problems.append(
                f"pipeline_name {pipeline_name!r} must be a non-empty lower-case name "
                "(SageMaker lower-cases pipeline ARNs, and IAM compares them exactly)"
            )
        if not 1 <= max_receive_count <= 1000:
            problems.append(f"max_receive_count ({max_receive_count}) must be between 1 and 1000")
        problems += network_problems(vpc, vpc_subnets, security_groups)
        problems += _function_problems(function_timeout, function_memory_size)
        if powertools_layer is None:
            problems += _powertools_problems(Stack.of(self).region)
        if not compare_with_champion:
            given = [
                n
                for n, v in (
                    ("model_package_group_name", model_package_group_name),
                    ("artifacts_prefix", artifacts_prefix),
                )
                if v is not None
            ]
            problems += [
                f"{n} is given with compare_with_champion=False, which reads no champion; "
                "remove it, or compare with the champion"
                for n in given
            ]
        group = model_package_group_name or f"{pipeline_name}-models"
        if compare_with_champion and not Token.is_unresolved(group) and not SAGEMAKER_NAME.match(group):
            problems.append(
                f"model_package_group_name {group!r} is not valid; use 1-63 lower-case letters, digits and "
                "hyphens, starting and ending with a letter or digit"
            )
        prefix = artifacts_prefix or f"{data_store.artifacts_prefix}{pipeline_name}/"
        if (
            compare_with_champion
            and not Token.is_unresolved(prefix)
            and (prefix.startswith("/") or not prefix.endswith("/") or "*" in prefix)
        ):
            problems.append(
                f"artifacts_prefix {prefix!r} must be a key prefix ending in '/' without '*' or a leading '/', "
                f"e.g. '{data_store.artifacts_prefix}{pipeline_name}/'"
            )
        if problems:
            raise ConfigurationError(self, problems)
        claim(
            self,
            "retrain trigger of pipeline",
            pipeline_name,
            "one trigger per pipeline: two would keep two locks, and two runs could start at once",
        )

        self.datasets = names
        self.snapshot = snapshot
        self.snapshotted_datasets = snapshotted
        self.retrain_on_violations: tuple[MonitoringType, ...] = violation_types
        self.pipeline_name = pipeline_name
        self.compare_with_champion = compare_with_champion
        self.model_package_group_name: str | None = group if compare_with_champion else None
        self.artifacts_prefix: str | None = prefix if compare_with_champion else None
        stack = Stack.of(self)
        self.pipeline_arn = stack.format_arn(service="sagemaker", resource="pipeline", resource_name=pipeline_name)

        self.encryption_key: kms.IKey = encryption_key or kms.Key(
            self,
            "Key",
            description=f"Encrypts the {self.node.path} queues and state table",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.dead_letter_queue = dead_letter_queue(
            self, "DeadLetterQueue", key=self.encryption_key, removal_policy=removal_policy
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.encryption_key,
            enforce_ssl=True,
            visibility_timeout=_visibility_timeout(function_timeout),
            retention_period=Duration.days(14),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=max_receive_count),
            removal_policy=removal_policy,
        )
        self.table = dynamodb.Table(
            self,
            "State",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="expires_at",
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.encryption_key,
            removal_policy=removal_policy,
        )
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=removal_policy)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of the {self.node.path} handler",
        )
        self.security_groups: tuple[ec2.ISecurityGroup, ...] = ()
        if vpc is not None:
            self.security_groups = tuple(security_groups or (https_only_security_group(self, vpc, "handler"),))
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=LAMBDA_RUNTIME,
            handler=_HANDLER,
            code=lambda_code("datasets.py", "champion.py", "lambdas/retrain_trigger"),
            role=self.role,
            timeout=function_timeout,
            memory_size=function_memory_size,
            reserved_concurrent_executions=_CONCURRENCY,
            log_group=self.log_group,
            description="Starts one training run per data version",
            environment=self._environment(data_store, policy, _lease_seconds(function_timeout)),
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=list(self.security_groups) or None,
        )
        self.powertools_layer = powertools_layer or self._managed_powertools_layer()
        self.function.add_layers(self.powertools_layer)
        self.function.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=10_000,
                max_batching_window=_BATCH_WINDOW,
                report_batch_item_failures=True,
                max_concurrency=_CONCURRENCY,
            )
        )
        self._grant_handler(data_store)
        if vpc is not None:
            self._grant_network_interfaces(select_subnets(vpc, vpc_subnets))
        # The function polls its queue as soon as it exists, and Lambda checks the network-interface
        # permissions when it creates a function in a VPC: it waits for its policy, not twice for its role.
        depend_on_role_policy(self.function, self.role)

        self.rules: dict[str, events.Rule] = {}
        listed = [n for n in names if n not in snapshotted]
        if retrain_on_new_data and listed:
            self._route_data(data_store, listed)
        if retrain_on_new_data and snapshot is not None:
            self._route(
                "SnapshotFinished",
                "Dataset snapshots that succeeded (their output is the new data version)",
                events.EventPattern(
                    source=[STATES_SOURCE],
                    detail_type=[EXECUTION_STATUS_CHANGE],
                    detail={
                        "stateMachineArn": [snapshot.state_machine.state_machine_arn],
                        "status": [EXECUTION_SUCCEEDED],
                    },
                ),
            )
        self._route(
            "PipelineFinished",
            "The pipeline's executions ending (releases the lock, starts the pending version)",
            events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[PIPELINE_STATUS_CHANGE],
                detail={
                    "pipelineArn": [self.pipeline_arn],
                    "currentPipelineExecutionStatus": sorted(TERMINAL_STATUSES),
                },
            ),
        )
        self._route(
            "Requested",
            "Manual retrain requests",
            events.EventPattern(source=[SOURCE], detail_type=[MANUAL_RETRAIN]),
        )
        # EventBridge rejects a pattern with an empty list, and no type means no violation retrains.
        if violation_types:
            self._route(
                "Violations",
                f"Model Monitor violations of {', '.join(violation_types)} (the other types only alert)",
                events.EventPattern(
                    source=[MONITOR_SOURCE],
                    detail_type=[MONITOR_VIOLATION],
                    detail={"monitoringType": list(violation_types)},
                ),
            )
        if drift_alarms:
            self._route(
                "Drift",
                "Drift alarms entering ALARM",
                events.EventPattern(
                    source=["aws.cloudwatch"],
                    detail_type=[ALARM_STATE_CHANGE],
                    resources=[a.alarm_arn for a in drift_alarms],
                    detail={"state": {"value": ["ALARM"]}},
                ),
            )

        self._allow_rules_to_send()

        self.schedule: scheduler.Schedule | None = None
        if schedule is not None:
            self.schedule = self._schedule(schedule, always=retrain_unchanged_data_on_schedule)

        self.dead_letter_alarm = cw.Alarm(
            self,
            "DeadLetterAlarm",
            alarm_description=f"{self.node.path}: trigger events failed {max_receive_count} times; "
            "inspect the dead-letter queue and redrive after fixing the cause",
            metric=self.metric_dead_letter_messages(),
            threshold=0,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self.errors_alarm = cw.Alarm(
            self,
            "ErrorsAlarm",
            alarm_description=f"{self.node.path}: the retrain handler raised; see its log group",
            metric=self.function.metric_errors(period=Duration.minutes(5)),
            threshold=0,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        if alarm_topic is not None:
            for alarm in (self.dead_letter_alarm, self.errors_alarm):
                alarm.add_alarm_action(cw_actions.SnsAction(alarm_topic))

    def _managed_powertools_layer(self) -> lambda_.ILayerVersion:
        """AWS's Powertools layer for the handler's runtime and architecture, in the stack's region."""
        region = Stack.of(self).region
        partition = "aws" if Token.is_unresolved(region) else RegionInfo.get(region).partition or ""
        name = (
            f"AWSLambdaPowertoolsPythonV3-{self.function.runtime.name.replace('.', '')}"
            f"-{self.function.architecture.name}"
        )
        arn = (
            f"arn:{partition}:lambda:{region}:{_POWERTOOLS_PUBLISHERS[partition]}:layer:{name}"
            f":{POWERTOOLS_LAYER_VERSION}"
        )
        return lambda_.LayerVersion.from_layer_version_arn(self, "PowertoolsLayer", arn)

    def _environment(self, data_store: IDataStore, policy: RetrainPolicy, lease_seconds: int) -> dict[str, str]:
        env = {
            "PIPELINE_NAME": self.pipeline_name,
            "DATA_BUCKET": data_store.bucket.bucket_name,
            "DATASETS": json.dumps(list(self.datasets)),
            "STATE_TABLE": self.table.table_name,
            "QUEUE_URL": self.queue.queue_url,
            "MODE": policy.mode.value,
            "QUIET_PERIOD_SECONDS": str(int(policy.quiet_period.to_seconds())),
            "MARKER_NAME": policy.marker_name,
            "MIN_OBJECTS": str(policy.min_objects),
            "MIN_BYTES": str(policy.min_bytes),
            "COOLDOWN_SECONDS": str(int(policy.cooldown.to_seconds())),
            "MAX_RUNS_PER_DAY": str(policy.max_runs_per_day),
            "LEASE_SECONDS": str(lease_seconds),
            "METRICS_NAMESPACE": METRICS_NAMESPACE,
        }
        if self.model_package_group_name is not None:
            env["MODEL_PACKAGE_GROUP_NAME"] = self.model_package_group_name
        else:
            env["COMPARE_WITH_CHAMPION"] = "false"
        if self.snapshot is not None:
            env["SNAPSHOT_STATE_MACHINE_ARN"] = self.snapshot.state_machine.state_machine_arn
            env["SNAPSHOT_DATASETS"] = json.dumps(list(self.snapshotted_datasets))
        if policy.key_prefix:
            env["KEY_PREFIX"] = policy.key_prefix
        if policy.key_suffixes:
            env["KEY_SUFFIXES"] = ",".join(policy.key_suffixes)
        return env

    def _grant_handler(self, data_store: IDataStore) -> None:
        self.log_group.grant_write(self.role)
        self.table.grant(self.role, *_TABLE_ACTIONS)
        self.encryption_key.grant_encrypt_decrypt(self.role)
        self.queue.grant_send_messages(self.role)
        iam.Grant.add_to_principal(
            grantee=self.role, actions=list(_SAGEMAKER_ACTIONS), resource_arns=[self.pipeline_arn]
        )
        for name in self.datasets:
            if name in self.snapshotted_datasets:
                # Its versions are the snapshot's: read the newest index when a status change was lost.
                data_store.grant_read(self.role, prefix=data_store.manifest_prefix(name))
                continue
            # ListObjectVersions builds the manifest; PutObject writes it under manifests/<name>/.
            data_store.grant_read(self.role, dataset=name)
            data_store.grant_write_manifests(self.role, name)
        if self.model_package_group_name is not None and self.artifacts_prefix is not None:
            self._grant_champion_lookup(data_store, self.model_package_group_name, self.artifacts_prefix)
        acknowledge(
            self.role,
            "kms:GenerateDataKey*/ReEncrypt* come from the key grants of this construct's own key "
            "(queues and table) and are limited to that key",
            *iam5_findings(actions=("kms:GenerateDataKey*", "kms:ReEncrypt*")),
        )
        log_arn = f"<{Stack.of(self).get_logical_id(self.log_group.node.default_child)}.Arn>"  # type: ignore[arg-type]
        acknowledge(
            self.role,
            "log streams are created under this function's own log group only",
            *iam5_findings(resources=(f"{log_arn}:*",)),
        )

    def _grant_champion_lookup(self, data_store: IDataStore, group_name: str, artifacts_prefix: str) -> None:
        """Find the group's newest approved package and read its evaluation.json (and decrypt it).

        Both the group and its versions are named: AWS's registry policies authorize
        ``ListModelPackages`` on the group, ``DescribeModelPackage`` on a version.
        """
        stack = Stack.of(self)
        group = stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=group_name)
        packages = stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{group_name}/*")
        iam.Grant.add_to_principal(grantee=self.role, actions=[_LIST_PACKAGES], resource_arns=[group, packages])
        iam.Grant.add_to_principal(grantee=self.role, actions=[_DESCRIBE_PACKAGE], resource_arns=[packages])
        acknowledge(
            self.role,
            "model package versions are numbered by SageMaker; listing and describing are limited to this one group",
            *iam5_findings(resources=(nag_resource(self, packages),)),
        )
        data_store.grant_read(self.role, prefix=artifacts_prefix)

    def _grant_network_interfaces(self, subnets: ec2.SelectedSubnets) -> None:
        """What Lambda does with the role to attach the function to its subnets, and nothing more."""
        grant_lambda_vpc_access(
            self.role,
            subnet_ids=subnets.subnet_ids,
            security_group_ids=[g.security_group_id for g in self.security_groups],
        )
        # depend_on_role_policy leaves only the policy in the function's DependsOn. Ordering the role
        # (which the function names) after the subnets' routes keeps the function after them, as
        # lambda.Function does, so it never runs, or is deleted, without its routes to the endpoints.
        self.role.node.add_dependency(subnets.internet_connectivity_established)

    def _route_data(self, data_store: IDataStore, names: Sequence[str]) -> None:
        self._route(
            "DataChanged",
            "New objects under the watched datasets",
            events.EventPattern(
                source=["aws.s3"],
                detail_type=[OBJECT_CREATED],
                detail={
                    "bucket": {"name": [data_store.bucket.bucket_name]},
                    "object": {"key": [{"prefix": data_store.dataset_prefix(n)} for n in names]},
                },
            ),
        )

    def _route(self, id: str, description: str, pattern: events.EventPattern) -> None:
        rule = events.Rule(self, id, description=f"{self.node.path}: {description}", event_pattern=pattern)
        rule.add_target(_QueueTarget(self.queue))
        self.rules[id] = rule

    def _allow_rules_to_send(self) -> None:
        """EventBridge may send to the queue for this construct's rules only, and use its key in this account only.

        The key's policy cannot name the rules: a rule refers to the queue, which refers to the key.
        """
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(_EVENTS)],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": [rule.rule_arn for rule in self.rules.values()]}},
            )
        )
        added = self.encryption_key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(_EVENTS)],
                actions=list(_EVENTS_KEY_ACTIONS),
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )
        if not added.statement_added:
            Annotations.of(self).add_warning_v2(
                IMPORTED_KEY_WARNING_ID,
                f"the policy of the imported encryption_key cannot be changed here; allow {_EVENTS} "
                f"{' and '.join(_EVENTS_KEY_ACTIONS)} on it with the condition aws:SourceAccount = this account, "
                "or EventBridge cannot deliver to the trigger queue",
            )

    def _schedule(self, expression: scheduler.ScheduleExpression, *, always: bool) -> scheduler.Schedule:
        detail: dict[str, Any] = {
            "dataset": self.datasets[0],
            "scheduledTime": scheduler.ContextAttribute.scheduled_time,
            "always": always,
        }
        message = {
            "version": "0",
            "id": scheduler.ContextAttribute.execution_id,
            "source": SOURCE,
            "detail-type": SCHEDULED_RETRAIN,
            "time": scheduler.ContextAttribute.scheduled_time,
            "detail": detail,
        }
        # An own role (instead of the stack-wide singleton the target would create) keeps the
        # grant, and its acknowledgment, inside this construct. Only schedules of this account may use it.
        role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            ),
        )
        schedule = scheduler.Schedule(
            self,
            "Schedule",
            schedule=expression,
            description=f"{self.node.path}: periodic retraining of {self.datasets[0]}",
            target=scheduler_targets.SqsSendMessage(
                self.queue, input=scheduler.ScheduleTargetInput.from_object(message), role=role
            ),
        )
        acknowledge(
            role,
            "kms:GenerateDataKey* is what sending to a KMS-encrypted queue needs, on this construct's key only",
            *iam5_findings(actions=("kms:GenerateDataKey*",)),
        )
        return schedule

    def grant_request_retrain(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let a principal request a run by sending a ``Manual Retrain`` message to the trigger's queue."""
        grant = self.queue.grant_send_messages(grantee)
        # aws-cdk-lib grants the KMS action families that sending to an encrypted queue needs.
        acknowledge_grantee(
            grantee,
            f"{self.node.path}.grant_request_retrain(): sending to the trigger's KMS-encrypted queue needs "
            "kms:GenerateDataKey* and kms:ReEncrypt* (aws-cdk-lib's queue grant), on the trigger's own key only",
            actions=("kms:GenerateDataKey*", "kms:ReEncrypt*"),
        )
        return grant

    def metric_decisions(self, decision: str, **options: Any) -> cw.Metric:
        """Sum of the handler's decisions of one kind over 5 minutes.

        Args:
            decision: ``started``, ``pending``, ``waiting``, ``deduplicated``,
                ``ignored``, ``invalid``, ``released`` or ``failed``.
        """
        props = metric_props(
            self,
            "metric_decisions",
            options,
            dimensions={DECISION_DIMENSION: decision},
            statistic="Sum",
            period=Duration.minutes(5),
        )
        return cw.Metric(namespace=METRICS_NAMESPACE, metric_name=DECISIONS_METRIC, **props)

    def metric_dead_letter_messages(self, **options: Any) -> cw.Metric:
        """Maximum number of records waiting in the dead-letter queue over 5 minutes."""
        props = metric_props(
            self,
            "metric_dead_letter_messages",
            options,
            dimensions={"QueueName": self.dead_letter_queue.queue_name},
            statistic="Maximum",
            period=Duration.minutes(5),
        )
        return self.dead_letter_queue.metric_approximate_number_of_messages_visible(**props)

    def metric_queue_age(self, **options: Any) -> cw.Metric:
        """Maximum age in seconds of the oldest record waiting in the trigger queue, over 5 minutes."""
        props = metric_props(
            self, "metric_queue_age", options, dimensions={"QueueName": self.queue.queue_name}, statistic="Maximum"
        )
        return self.queue.metric_approximate_age_of_oldest_message(**props)


def _powertools_problems(region: str) -> list[str]:
    """Why AWS's managed Powertools layer cannot be used in ``region``, if it cannot."""
    if Token.is_unresolved(region):
        return []
    partition = RegionInfo.get(region).partition or ""
    if region in _POWERTOOLS_REGIONS.get(partition, frozenset()):
        return []
    return [
        f"AWS publishes no managed Powertools for AWS Lambda (Python) v3 layer in {region} (it does in the "
        f"commercial regions and in cn-north-1); publish one from the aws-lambda-powertools package for "
        f"{LAMBDA_RUNTIME.name} on {_ARCHITECTURE.name} and pass it as "
        "powertools_layer=LayerVersion.from_layer_version_arn(...)"
    ]


def _snapshot_problems(
    snapshot: InventorySnapshot | None,
    data_store: IDataStore,
    names: Sequence[str],
    policy: RetrainPolicy,
    problems: list[str],
) -> tuple[str, ...]:
    """The datasets ``snapshot`` versions; what is wrong with it joins ``problems``."""
    if snapshot is None:
        return ()
    if snapshot.data_store.bucket.bucket_name != data_store.bucket.bucket_name:
        problems.append(
            f"snapshot {snapshot.node.path} snapshots another data store's bucket; pass the InventorySnapshot of "
            "this trigger's data_store"
        )
        return ()
    snapshotted = tuple(n for n in names if n in snapshot.datasets)
    if not snapshotted:
        problems.append(
            f"snapshot {snapshot.node.path} snapshots {list(snapshot.datasets)!r}, none of datasets {list(names)!r}; "
            "add the datasets to the InventorySnapshot, or leave snapshot out"
        )
    elif len(snapshotted) == len(names):
        # Thresholds count object events, which snapshotted datasets do not route.
        problems += [
            f"policy.{name} ({value}) counts new objects, but every dataset is versioned by snapshot, whose object "
            "events are not routed; leave it at 0 (a snapshot with an unchanged digest starts nothing anyway)"
            for name, value in (("min_objects", policy.min_objects), ("min_bytes", policy.min_bytes))
            if value
        ]
    return snapshotted


def _violation_types(value: object) -> tuple[tuple[MonitoringType, ...], list[str]]:
    """``retrain_on_violations`` as monitoring types in declaration order, and every problem with it."""
    known = ", ".join(f"MonitoringType.{t.name}" for t in MonitoringType)
    if isinstance(value, str) or not isinstance(value, Collection):
        # A lone MonitoringType is a str too; iterating it would read its letters as types.
        return (), [
            f"retrain_on_violations must be a collection of MonitoringType, got {value!r}; wrap one type in "
            "a list, e.g. [MonitoringType.DATA_QUALITY], or pass [] so that no violation retrains"
        ]
    chosen: list[MonitoringType] = []
    problems: list[str] = []
    for item in value:
        if isinstance(item, MonitoringType) or (isinstance(item, str) and item in set(MonitoringType)):
            chosen.append(MonitoringType(item))
        else:
            problems.append(
                f"retrain_on_violations: {item!r} is not a monitoring type; use {known} "
                "(or their values, e.g. 'DataQuality')"
            )
    repeated = sorted({t for t in chosen if chosen.count(t) > 1}, key=list(MonitoringType).index)
    if repeated:
        problems.append(
            f"retrain_on_violations repeats {', '.join(f'MonitoringType.{t.name}' for t in repeated)}; "
            "list each type once"
        )
    return tuple(t for t in MonitoringType if t in chosen), problems


@jsii.implements(events.IRuleTarget)
class _QueueTarget:
    """The trigger queue as a rule target, without the grant ``aws_events_targets.SqsQueue`` adds.

    ``aws_events_targets.SqsQueue`` lets EventBridge send without any condition when the queue has a
    customer managed key (naming the rule in the key's policy would be a reference cycle);
    :meth:`RetrainTrigger._allow_rules_to_send` writes both policies with conditions instead.
    """

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(self, rule: events_refs.IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self._queue.queue_arn, target_resource=self._queue)


def _function_problems(timeout: object, memory_size: object) -> list[str]:
    """The handler's timeout or memory is outside what Lambda and the trigger's guarantees allow."""
    found: list[str] = []
    low, high = _TIMEOUT_RANGE
    if not isinstance(timeout, Duration):
        found.append(f"function_timeout ({timeout!r}) must be a Duration, e.g. Duration.minutes(5)")
    elif not low <= timeout.to_seconds() <= high:
        found.append(
            f"function_timeout ({timeout.to_human_string()}) must be from {low} s to {high // 60} min; a start "
            "lists the whole dataset, so give larger datasets more time"
        )
    low, high = _MEMORY_RANGE
    if isinstance(memory_size, bool) or not isinstance(memory_size, int) or not low <= memory_size <= high:
        found.append(f"function_memory_size ({memory_size!r}) must be a whole number of MiB from {low} to {high:,}")
    return found


def _visibility_timeout(timeout: Duration) -> Duration:
    # SQS's guidance for Lambda sources: at least 6 x the function timeout + the batching window.
    # A failed record reappears after this long, which is the retry backoff; 15 min at the least.
    return Duration.seconds(max(900, 6 * int(timeout.to_seconds()) + int(_BATCH_WINDOW.to_seconds())))


def _lease_seconds(timeout: Duration) -> int:
    # A start holds its claim for longer than the function can run, so a claim is never taken over
    # while its start is still running, and for less than the visibility timeout, so a retry finds it free.
    return max(300, int(timeout.to_seconds()) + 60)
