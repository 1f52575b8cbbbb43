"""Retrain trigger: new data, a schedule, drift or a person start at most one training run per data version."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aws_cdk import Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_mlops.constructs.common import (
    SAGEMAKER_NAME,
    acknowledge,
    iam5_findings,
    nag_resource,
)
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
from cdk_mlops.constructs.retrain_base import (
    IMPORTED_KEY_WARNING_ID as IMPORTED_KEY_WARNING_ID,
)
from cdk_mlops.constructs.retrain_base import (
    POWERTOOLS_LAYER_VERSION as POWERTOOLS_LAYER_VERSION,
)
from cdk_mlops.constructs.unique_names import claim
from cdk_mlops.datasets import dataset_name_problems
from cdk_mlops.errors import ConfigurationError

# The event vocabulary lives with the handler, which ships without this module; it is plain
# constants (no boto3), so the construct shares it rather than repeating the strings.
from cdk_mlops.lambdas.retrain_trigger import (
    ALARM_STATE_CHANGE,
    OBJECT_CREATED,
    PIPELINE_STATUS_CHANGE,
    SCHEDULED_RETRAIN,
    SOURCE,
    TERMINAL_STATUSES,
    Mode,
)

_HANDLER = "cdk_mlops.lambdas.retrain_trigger.handler.handler"
_SAGEMAKER_ACTIONS = ("sagemaker:StartPipelineExecution", "sagemaker:ListPipelineExecutions")
# The champion lookup: listing is granted on the group and its versions, describing on the versions.
_LIST_PACKAGES = "sagemaker:ListModelPackages"
_DESCRIBE_PACKAGE = "sagemaker:DescribeModelPackage"
#: The monitoring types whose ``Model Monitor Violation`` events retrain by default. Data and model
#: quality say the model no longer fits the traffic, which new data can fix; a bias or
#: explainability violation needs a person to judge it, so it only raises the monitor's alarm.
DEFAULT_RETRAIN_ON_VIOLATIONS: Final[tuple[MonitoringType, ...]] = (
    MonitoringType.DATA_QUALITY,
    MonitoringType.MODEL_QUALITY,
)


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


class RetrainTrigger(TriggerBase):
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
        types, found = violation_types(retrain_on_violations)
        problems += found
        problems += datasets_problems(data_store, names)
        snapshotted = snapshot_problems(snapshot, data_store, names, policy, problems)
        problems += environment_problems(self, data_store, construct="RetrainTrigger")
        if not Token.is_unresolved(pipeline_name) and (not pipeline_name or pipeline_name != pipeline_name.lower()):
            problems.append(
                f"pipeline_name {pipeline_name!r} must be a non-empty lower-case name "
                "(SageMaker lower-cases pipeline ARNs, and IAM compares them exactly)"
            )
        problems += self._machinery_problems(
            max_receive_count,
            vpc,
            vpc_subnets,
            security_groups,
            powertools_layer,
            function_timeout,
            function_memory_size,
        )
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
        self.retrain_on_violations: tuple[MonitoringType, ...] = types
        self.pipeline_name = pipeline_name
        self.compare_with_champion = compare_with_champion
        self.model_package_group_name: str | None = group if compare_with_champion else None
        self.artifacts_prefix: str | None = prefix if compare_with_champion else None
        stack = Stack.of(self)
        self.pipeline_arn = stack.format_arn(service="sagemaker", resource="pipeline", resource_name=pipeline_name)

        self._build_machinery(
            handler=_HANDLER,
            description="Starts one training run per data version",
            environment=lambda: self._environment(data_store, policy, lease_seconds(function_timeout)),
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
            grant=lambda: self._grant_handler(data_store),
        )

        self.rules: dict[str, events.Rule] = {}
        listed = [n for n in names if n not in snapshotted]
        if retrain_on_new_data and listed:
            self._route_data(data_store, listed)
        if retrain_on_new_data and snapshot is not None:
            self._route_snapshots(snapshot)
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
        self._route_requests_and_violations(types)
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

        self._build_alarms(max_receive_count, alarm_topic)

    def _environment(self, data_store: IDataStore, policy: RetrainPolicy, lease_seconds: int) -> dict[str, str]:
        env = {
            "DATA_BUCKET": data_store.bucket.bucket_name,
            "STATE_TABLE": self.table.table_name,
            "QUEUE_URL": self.queue.queue_url,
            "LEASE_SECONDS": str(lease_seconds),
            "METRICS_NAMESPACE": METRICS_NAMESPACE,
            **pipeline_environment(
                self.pipeline_name, self.datasets, policy, self.model_package_group_name, self.snapshotted_datasets
            ),
        }
        if self.snapshot is not None:
            env["SNAPSHOT_STATE_MACHINE_ARN"] = self.snapshot.state_machine.state_machine_arn
        return env

    def _grant_handler(self, data_store: IDataStore) -> None:
        self._grant_machinery()
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


def pipeline_environment(
    pipeline_name: str,
    datasets: Sequence[str],
    policy: RetrainPolicy,
    group: str | None,
    snapshotted: Sequence[str],
) -> dict[str, str]:
    """The handler's variables of one pipeline (a single trigger's environment, a fleet route's settings).

    Args:
        pipeline_name: The pipeline to start.
        datasets: Its datasets, the first retrained on drift.
        policy: Batching, filters, cool-down and daily cap.
        group: The champion's model package group; None sends ``COMPARE_WITH_CHAMPION=false``.
        snapshotted: The datasets versioned by an ``InventorySnapshot``; empty for none.
    """
    values = {
        "PIPELINE_NAME": pipeline_name,
        "DATASETS": json.dumps(list(datasets)),
        "MODE": policy.mode.value,
        "QUIET_PERIOD_SECONDS": str(int(policy.quiet_period.to_seconds())),
        "MARKER_NAME": policy.marker_name,
        "MIN_OBJECTS": str(policy.min_objects),
        "MIN_BYTES": str(policy.min_bytes),
        "COOLDOWN_SECONDS": str(int(policy.cooldown.to_seconds())),
        "MAX_RUNS_PER_DAY": str(policy.max_runs_per_day),
    }
    if group is None:
        values["COMPARE_WITH_CHAMPION"] = "false"
    else:
        values["MODEL_PACKAGE_GROUP_NAME"] = group
    if snapshotted:
        values["SNAPSHOT_DATASETS"] = json.dumps(list(snapshotted))
    if policy.key_prefix:
        values["KEY_PREFIX"] = policy.key_prefix
    if policy.key_suffixes:
        values["KEY_SUFFIXES"] = ",".join(policy.key_suffixes)
    return values


def datasets_problems(data_store: IDataStore, names: Sequence[str]) -> list[str]:
    """What is wrong with the dataset names a trigger watches, each with the fix."""
    problems: list[str] = []
    if not names:
        problems.append("datasets is empty; name at least one dataset under datasets/ to watch")
    for name in names:
        problems += [f"datasets: {p}" for p in dataset_name_problems(name)]
    if len(set(names)) != len(names):
        problems.append(f"datasets {list(names)!r} repeats a name; list each dataset once")
    return problems + data_store.undeclared_problems("datasets", names)


def snapshot_problems(
    snapshot: InventorySnapshot | None,
    data_store: IDataStore,
    names: Sequence[str],
    policy: RetrainPolicy,
    problems: list[str],
    *,
    required: bool = True,
) -> tuple[str, ...]:
    """The datasets of ``names`` that ``snapshot`` versions; what is wrong with it joins ``problems``.

    With ``required`` (one trigger given a snapshot) at least one of ``names`` must be snapshotted.
    """
    if snapshot is None:
        return ()
    if snapshot.data_store.bucket.bucket_name != data_store.bucket.bucket_name:
        problems.append(
            f"snapshot {snapshot.node.path} snapshots another data store's bucket; pass the InventorySnapshot of "
            "this trigger's data_store"
        )
        return ()
    snapshotted = tuple(n for n in names if n in snapshot.datasets)
    if not snapshotted and required:
        problems.append(
            f"snapshot {snapshot.node.path} snapshots {list(snapshot.datasets)!r}, none of datasets {list(names)!r}; "
            "add the datasets to the InventorySnapshot, or leave snapshot out"
        )
    elif snapshotted and len(snapshotted) == len(names):
        # Thresholds count object events, which snapshotted datasets do not route.
        problems += [
            f"policy.{name} ({value}) counts new objects, but every dataset is versioned by snapshot, whose object "
            "events are not routed; leave it at 0 (a snapshot with an unchanged digest starts nothing anyway)"
            for name, value in (("min_objects", policy.min_objects), ("min_bytes", policy.min_bytes))
            if value
        ]
    return snapshotted


def violation_types(value: object) -> tuple[tuple[MonitoringType, ...], list[str]]:
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
