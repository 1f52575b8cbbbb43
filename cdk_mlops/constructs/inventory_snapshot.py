"""InventorySnapshot: dataset versions of any size, taken from S3 Inventory by a Distributed Map.

The retrain trigger's own snapshot lists a dataset's object versions in one Lambda invocation,
about 5,000 a second: fine for half a million objects, hours for a hundred million. This
construct takes a dataset version on AWS's distributed services instead:

1. **S3 Inventory** lists every object version under ``datasets/`` once a day (CSV, all
   versions, with size and ETag) into a report bucket of this construct. S3 does
   the listing; it costs per million objects listed, and needs no compute of ours.
2. A **Step Functions** state machine (standard workflow) snapshots one dataset from one report:
   ``Plan`` checks the report and writes the work list (one item per inventory data file);
   ``Shards``, a *Distributed Map*, gives each data file to a worker Lambda that keeps the
   dataset's current versions, writes them as sorted manifest shards and a part summary;
   ``Finalize`` adds the parts' counts, bytes and set digests and writes the index
   (``cdk-mlops.dataset-manifest-index.v2``) last, so a half-done snapshot is never a manifest.

Cost grows with the number of inventory data files, not with one process: each worker reads
one data file, so wall time is about one file's time times ``files / max_concurrency``. The
version covers the objects as of the report's creation (its ``as_of``); objects written since
are in the next day's report.

Start a snapshot with ``StartExecution`` and the input ``{"dataset": "<name>"}`` (the newest
report) or ``{"dataset": "<name>", "report": "s3://<report bucket>/reports/.../manifest.json"}``. Its
output names the index (``manifest``), which :mod:`cdk_mlops.datasets` and the ``cdk-mlops
dataset`` commands read like any manifest. Name executions after the dataset and the report
(e.g. ``churn-2026-12-04T00-00Z``): Step Functions refuses a second execution of the same name,
so a retried start never snapshots twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from cdk_mlops.constructs.common import (
    GUARDRAILS,
    LAMBDA_RUNTIME,
    acknowledge,
    depend_on_role_policy,
    grant_lambda_vpc_access,
    https_only_security_group,
    iam5_findings,
    kms_bucket_settings,
    lambda_code,
    nag_resource,
    network_problems,
    select_subnets,
    send_events_to_eventbridge,
)
from cdk_mlops.constructs.data_store import VersionedDataStore, adopt_auto_delete_provider
from cdk_mlops.constructs.props import checked_props
from cdk_mlops.datasets import dataset_name_problems
from cdk_mlops.errors import ConfigurationError

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_REPORT_RETENTION",
    "DEFAULT_WORKER_MEMORY_SIZE",
    "DEFAULT_WORKER_TIMEOUT",
    "INVENTORY_ID",
    "REPORTS_PREFIX",
    "REPORT_COMPLETE",
    "WORK_PREFIX",
    "InventorySnapshot",
]

#: Where S3 delivers the inventory reports in the report bucket.
REPORTS_PREFIX = "reports/"
#: Where Plan writes the work lists in the report bucket.
WORK_PREFIX = "work/"
#: The last file S3 writes of a report; once it exists, the report is complete.
REPORT_COMPLETE = "manifest.checksum"
#: The inventory configuration's id; reports land under ``reports/<data bucket>/<this>/``.
INVENTORY_ID = "cdk-mlops-datasets"
#: Workers running at once. Distributed Map allows up to 10,000; 100 keeps within Lambda's default
#: account concurrency (1,000) with room for everything else.
DEFAULT_MAX_CONCURRENCY = 100
#: A worker holds one shard of rows (100,000) while it sorts them; 1,769 MiB is one full vCPU.
DEFAULT_WORKER_MEMORY_SIZE = 1769
#: Lambda's limit. A worker reads one inventory data file; at about 100,000 rows a second a
#: file of tens of millions of rows fits.
DEFAULT_WORKER_TIMEOUT = Duration.minutes(15)
#: How long reports are kept: snapshots read the newest one, older ones only explain past versions.
DEFAULT_REPORT_RETENTION = Duration.days(14)

_HANDLERS = "cdk_mlops.lambdas.dataset_snapshot.handler"
_MODULES = ("datasets.py", "manifest_shards.py", "inventory.py", "lambdas/dataset_snapshot")
_TIMEOUT_RANGE = (60, 900)
_MEMORY_RANGE = (128, 10_240)
_MAX_CONCURRENCY_LIMIT = 10_000
# S3 Inventory's optional fields the workers read (Size, ETag) or report (LastModifiedDate).
_OPTIONAL_FIELDS = ("Size", "ETag", "LastModifiedDate")
# Step Functions' ResultWriter records each worker's input and output here (the execution's audit).
_MAP_RUNS = "map-runs/"
_RESULT_WRITER_V2 = "@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2"
# Lambda errors worth another attempt: throttling and the service's own faults, as AWS recommends.
_TRANSIENT_LAMBDA_ERRORS = (
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)


class InventorySnapshot(Construct):
    """Dataset versions of any size, from the data store's S3 Inventory, on a Distributed Map.

    Example::

        store = VersionedDataStore(self, "Data", datasets=["events"])
        snapshots = InventorySnapshot(self, "Snapshots", data_store=store, datasets=["events"])
        snapshots.grant_start(operator_role)

    Attributes:
        data_store: The store whose datasets it snapshots.
        datasets: The datasets it may snapshot.
        state_machine: Takes one dataset version per execution (see the module docstring).
        plan_function: Checks the report and writes the work list.
        shard_function: One inventory data file to manifest shards and a part summary.
        finalize_function: Combines the parts and writes the index.
        role: The three functions' role.
        report_bucket: Holds the inventory reports, the work lists and the map runs' records.
        report_prefix: Where this store's reports land (``reports/<data bucket>/<id>/``).
        report_rules: By dataset, the rule that starts a snapshot when a report is delivered
            (empty with ``snapshot_each_report=False``).
        failed_alarm: In ALARM when an execution fails, times out or is aborted.
        unstarted_alarms: By dataset, in ALARM when a delivered report could not start a snapshot.
    """

    @checked_props
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        data_store: VersionedDataStore,
        datasets: Sequence[str],
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        worker_memory_size: int = DEFAULT_WORKER_MEMORY_SIZE,
        worker_timeout: Duration = DEFAULT_WORKER_TIMEOUT,
        report_retention: Duration = DEFAULT_REPORT_RETENTION,
        snapshot_each_report: bool = True,
        alarm_topic: sns.ITopic | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
    ) -> None:
        """Define the inventory, the functions and the state machine.

        Args:
            scope: The parent construct.
            id: The construct id.
            data_store: The store whose datasets are snapshotted. It must be a
                :class:`VersionedDataStore` of this stack: the inventory is a property of its
                bucket, and its key must let S3 write the reports.
            datasets: The datasets this state machine may snapshot (declared on the store).
                At least one.
            max_concurrency: Workers running at once, 1 to 10,000. Default: - 100.
            worker_memory_size: Each worker's memory in MiB, 128 to 10,240. Default: - 1,769
                (one vCPU).
            worker_timeout: Each worker's timeout, 1 to 15 minutes. Default: - 15 minutes.
            report_retention: Days inventory reports (and the map runs' records) are kept;
                whole days, at least 2 (a snapshot reads the newest report, delivered daily).
                Default: - 14 days.
            snapshot_each_report: Take a version of every dataset of ``datasets`` as soon as S3
                delivers a report (when its ``manifest.checksum`` is written), so each dataset has a
                version a day without anyone starting one. False leaves the starts to you
                (:meth:`grant_start`). Default: - True.
            alarm_topic: Where the failed-execution alarm notifies. Default: - no action.
            log_retention: How long the functions' and the state machine's logs are kept.
                Default: - 3 months.
            removal_policy: For the report bucket and the log groups; DESTROY also empties the
                bucket on deletion (reports can be made again). Default: - RETAIN.
            vpc: The VPC the three functions run in. They call S3 only, so the subnets need a
                route to it (the S3 gateway endpoint of an isolated VPC). Step Functions and S3
                Inventory are AWS services and run outside it. Default: - no VPC.
            vpc_subnets: Where in ``vpc`` the functions run (only with ``vpc``).
                Default: - the VPC's private subnets, as ``lambda.Function`` selects them.
            security_groups: The functions' security groups (only with ``vpc``).
                Default: - a new group in ``vpc`` with no inbound rule and outbound HTTPS only.

        Raises:
            ConfigurationError: listing every invalid argument, before any resource is defined.
        """
        super().__init__(scope, id)
        # Without it, aws-cdk-lib ignores ResultWriterV2; set here so that the app's flags do not matter.
        self.node.set_context(_RESULT_WRITER_V2, True)
        names = tuple(datasets)
        problems = _problems(self, data_store, names, max_concurrency, worker_memory_size, worker_timeout)
        problems += network_problems(vpc, vpc_subnets, security_groups)
        retention_days = report_retention.to_days()
        if retention_days != int(retention_days) or retention_days < 2:
            problems.append(
                f"report_retention ({report_retention.to_human_string()}) must be whole days, at least 2, "
                "so that the newest daily report is always there"
            )
        if problems:
            raise ConfigurationError(self, problems)

        self.datasets = names
        self.data_store = data_store
        self.report_bucket = self._report_bucket(data_store, int(retention_days), removal_policy)
        self.report_prefix = f"{REPORTS_PREFIX}{data_store.bucket.bucket_name}/{INVENTORY_ID}/"

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of the {self.node.path} functions",
        )
        self.security_groups: tuple[ec2.ISecurityGroup, ...] = ()
        if vpc is not None:
            self.security_groups = tuple(security_groups or (https_only_security_group(self, vpc, "functions"),))
        network = _Network(vpc, vpc_subnets, self.security_groups)
        environment = {
            "DATA_BUCKET": data_store.bucket.bucket_name,
            "REPORT_BUCKET": self.report_bucket.bucket_name,
            "INVENTORY_PREFIX": self.report_prefix,
            "WORK_PREFIX": WORK_PREFIX,
            "DATASETS": json.dumps(list(names)),
        }
        self.plan_function = self._function(
            "Plan", "plan", "Checks an inventory report and writes the snapshot's work list",
            environment, Duration.minutes(5), 512, log_retention, removal_policy, network,
        )  # fmt: skip
        self.shard_function = self._function(
            "Shard", "shard", "Writes one inventory data file's dataset rows as manifest shards",
            environment, worker_timeout, worker_memory_size, log_retention, removal_policy, network,
        )  # fmt: skip
        self.finalize_function = self._function(
            "Finalize", "finalize", "Adds up the parts and writes the dataset version's index",
            environment, Duration.minutes(5), 512, log_retention, removal_policy, network,
        )  # fmt: skip
        self._grant_functions(data_store)
        if vpc is not None:
            subnets = select_subnets(vpc, vpc_subnets)
            grant_lambda_vpc_access(
                self.role,
                subnet_ids=subnets.subnet_ids,
                security_group_ids=[g.security_group_id for g in self.security_groups],
            )
            # The functions name the role: ordering it after the subnets' routes keeps them after too.
            self.role.node.add_dependency(subnets.internet_connectivity_established)
        for function in (self.plan_function, self.shard_function, self.finalize_function):
            depend_on_role_policy(function, self.role)

        self.log_group = logs.LogGroup(self, "StateMachineLogs", retention=log_retention, removal_policy=removal_policy)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(self._definition(max_concurrency)),
            state_machine_type=sfn.StateMachineType.STANDARD,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            tracing_enabled=True,
            comment="Takes one dataset version from the newest (or a given) S3 Inventory report",
        )
        self._grant_state_machine(data_store)
        self.report_rules: dict[str, events.Rule] = {}
        if snapshot_each_report:
            self._snapshot_each_report()

        period = Duration.minutes(5)
        counted = {
            "failed": self.state_machine.metric_failed(period=period),
            "timedout": self.state_machine.metric_timed_out(period=period),
            "aborted": self.state_machine.metric_aborted(period=period),
        }
        self.failed_alarm = cw.Alarm(
            self,
            "FailedAlarm",
            alarm_description=f"{self.node.path}: a dataset snapshot failed; its execution history names the "
            "state and the error",
            metric=cw.MathExpression(expression=" + ".join(counted), using_metrics=counted, period=period),
            threshold=0,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        # One alarm per rule (an alarm's metric math takes 10 metrics at most): a report whose snapshot
        # EventBridge could not start, after a day of retries.
        self.unstarted_alarms: dict[str, cw.Alarm] = {
            dataset: cw.Alarm(
                self,
                f"Unstarted{index}",
                alarm_description=f"{self.node.path}: a delivered report could not start a snapshot of dataset "
                f"{dataset}; start it by hand with the report",
                metric=cw.Metric(
                    namespace="AWS/Events",
                    metric_name="FailedInvocations",
                    dimensions_map={"RuleName": rule.rule_name},
                    statistic="Sum",
                    period=period,
                ),
                threshold=0,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            for index, (dataset, rule) in enumerate(self.report_rules.items())
        }
        if alarm_topic is not None:
            for alarm in (self.failed_alarm, *self.unstarted_alarms.values()):
                alarm.add_alarm_action(cw_actions.SnsAction(alarm_topic))

    def _snapshot_each_report(self) -> None:
        """One rule per dataset: a delivered report starts a snapshot of the dataset from it."""
        send_events_to_eventbridge(self.report_bucket)
        # S3 writes manifest.checksum last: the report is complete when it exists.
        pattern = events.EventPattern(
            source=["aws.s3"],
            detail_type=["Object Created"],
            detail={
                "bucket": {"name": [self.report_bucket.bucket_name]},
                "object": {"key": [{"suffix": REPORT_COMPLETE}]},
            },
        )
        bucket, key = self.report_bucket.bucket_name, events.EventField.from_path("$.detail.object.key")
        for index, dataset in enumerate(self.datasets):
            rule = events.Rule(
                self,
                f"Report{index}",
                description=f"A delivered inventory report starts a snapshot of dataset {dataset}",
                event_pattern=pattern,
            )
            rule.add_target(
                targets.SfnStateMachine(
                    self.state_machine,
                    input=events.RuleTargetInput.from_object({"dataset": dataset, "report": f"s3://{bucket}/{key}"}),
                    retry_attempts=185,
                    max_event_age=Duration.hours(24),
                )
            )
            self.report_rules[dataset] = rule

    def grant_start(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` start snapshots (``states:StartExecution`` on this state machine only)."""
        return self.state_machine.grant_start_execution(grantee)

    # ------------------------------------------------------------------ resources

    def _report_bucket(
        self, data_store: VersionedDataStore, retention_days: int, removal_policy: RemovalPolicy
    ) -> s3.Bucket:
        """A bucket for the inventory reports, the work lists and the map runs' records.

        Not the data bucket itself: CloudFormation cannot name a bucket as its own inventory's
        destination. The reports list the datasets' keys, so they are encrypted with the store's
        key, and kept ``retention_days``.
        """
        key = data_store.encryption_key
        bucket = s3.Bucket(
            self,
            "Reports",
            **kms_bucket_settings(
                key, access_logs=data_store.access_log_bucket, access_logs_prefix="inventory-reports/"
            ),
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireReports",
                    expiration=Duration.days(retention_days),
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=removal_policy,
            auto_delete_objects=removal_policy == RemovalPolicy.DESTROY,
        )
        if removal_policy == RemovalPolicy.DESTROY:
            adopt_auto_delete_provider(self)
        # S3 delivers the report with the destination's default encryption, so it needs the key;
        # only S3 acting for this account. Not aws:SourceArn: naming the data bucket in its own
        # key's policy would make the key and the bucket depend on each other.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="S3InventoryDelivery",
                principals=[iam.ServicePrincipal("s3.amazonaws.com")],
                actions=["kms:GenerateDataKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )
        data_store.bucket.add_inventory(
            inventory_id=INVENTORY_ID,
            destination=s3.InventoryDestination(bucket=bucket, prefix=REPORTS_PREFIX.rstrip("/")),
            objects_prefix="datasets/",
            include_object_versions=s3.InventoryObjectVersion.ALL,
            frequency=s3.InventoryFrequency.DAILY,
            format=s3.InventoryFormat.CSV,
            optional_fields=list(_OPTIONAL_FIELDS),
            enabled=True,
        )
        return bucket

    def _function(
        self,
        id: str,
        handler: str,
        description: str,
        environment: dict[str, str],
        timeout: Duration,
        memory_size: int,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        network: _Network,
    ) -> lambda_.Function:
        log_group = logs.LogGroup(self, f"{id}Logs", retention=log_retention, removal_policy=removal_policy)
        log_group.grant_write(self.role)
        function = lambda_.Function(
            self,
            id,
            runtime=LAMBDA_RUNTIME,
            handler=f"{_HANDLERS}.{handler}",
            code=lambda_code(*_MODULES),
            role=self.role,
            timeout=timeout,
            memory_size=memory_size,
            log_group=log_group,
            description=description,
            environment=environment,
            vpc=network.vpc,
            vpc_subnets=network.subnets,
            security_groups=list(network.groups) or None,
        )
        acknowledge(
            function,
            "only the state machine invokes it, synchronously: a failure retries in the state machine and then "
            "fails the execution with the error, which the failed-execution alarm reports; a dead-letter queue "
            "receives asynchronous invocations only",
            f"{GUARDRAILS}::MLOPS-008",
        )
        return function

    def _definition(self, max_concurrency: int) -> sfn.IChainable:
        bucket = self.report_bucket
        plan = self._invoke("Plan", self.plan_function, "$", "plan")
        work = self._invoke("Shard", self.shard_function, "$", "part")
        shards = sfn.DistributedMap(
            self,
            "Shards",
            item_reader=sfn.S3JsonItemReader(bucket=bucket, key=sfn.JsonPath.string_at("$.plan.files_key")),
            item_selector={
                "file_index.$": "$$.Map.Item.Value.file_index",
                "key.$": "$$.Map.Item.Value.key",
                "bucket.$": "$$.Map.Item.Value.bucket",
                # The worker checks the data file against the MD5 the report's manifest gives.
                "md5.$": "$$.Map.Item.Value.md5",
                "plan.$": "$.plan",
            },
            max_concurrency=max_concurrency,
            result_writer_v2=sfn.ResultWriterV2(bucket=bucket, prefix=_MAP_RUNS.rstrip("/")),
            result_path=sfn.JsonPath.DISCARD,
            label="Shards",
        )
        shards.item_processor(work)
        finalize = self._invoke("Finalize", self.finalize_function, "$.plan", "version", output_path="$.version")
        return plan.next(shards).next(finalize)

    def _invoke(
        self, name: str, function: lambda_.IFunction, payload: str, result: str, output_path: str | None = None
    ) -> tasks.LambdaInvoke:
        """State ``name``: invoke ``function`` with the input at ``payload``; its result under ``result``.

        Retried on Lambda's transient errors only: a handler's own error (a report that cannot be
        used, a malformed event) fails the execution at once, naming it.
        """
        task = tasks.LambdaInvoke(
            self,
            f"{name}State",
            state_name=name,
            lambda_function=function,
            payload=sfn.TaskInput.from_json_path_at(payload),
            result_selector={f"{result}.$": "$.Payload"},
            output_path=output_path,
            retry_on_service_exceptions=False,
        )
        task.add_retry(
            errors=list(_TRANSIENT_LAMBDA_ERRORS),
            interval=Duration.seconds(2),
            max_attempts=6,
            backoff_rate=2,
            jitter_strategy=sfn.JitterType.FULL,
        )
        return task

    # ------------------------------------------------------------------ grants

    def _grant_functions(self, data_store: VersionedDataStore) -> None:
        # Reports are read and work lists written in the report bucket; the shards, the part
        # summaries and the index are written under manifests/<dataset>/ (and read back by Finalize).
        reports, work = f"{REPORTS_PREFIX}*", f"{WORK_PREFIX}*"
        self.report_bucket.grant_read(self.role, reports)
        self.report_bucket.grant_put(self.role, work)
        acknowledge(
            self.role,
            "S3 names the reports (date and UUID) and Plan names the work lists at run time; the functions "
            "read only reports/ and write only work/ of this construct's report bucket",
            *iam5_findings(
                actions=("s3:Abort*",),
                resources=tuple(nag_resource(self, self.report_bucket.arn_for_objects(p)) for p in (reports, work)),
            ),
        )
        for name in self.datasets:
            data_store.grant_read(self.role, prefix=data_store.manifest_prefix(name))
            data_store.grant_write_manifests(self.role, name)
        acknowledge(
            self.role,
            "log streams are created under these functions' own log groups only",
            *iam5_findings(resources=tuple(f"<{_log_id(self, n)}.Arn>:*" for n in ("Plan", "Shard", "Finalize"))),
        )

    def _grant_state_machine(self, data_store: VersionedDataStore) -> None:
        role = self.state_machine.role
        # The item reader and the result writer bring their S3 grants (on the report bucket); its
        # objects are encrypted with the store's key.
        data_store.encryption_key.grant(role, "kms:Decrypt", "kms:GenerateDataKey")
        depend_on_role_policy(self.state_machine, role)
        bucket_objects = Stack.of(self).format_arn(
            service="s3", region="", account="", resource=self.report_bucket.bucket_name, resource_name="*"
        )
        acknowledge(
            role,
            "the Distributed Map reads a work list whose key Plan chooses at run time and writes its run records "
            "under names Step Functions chooses; both in this construct's report bucket, which holds no data",
            *iam5_findings(resources=(nag_resource(self, bucket_objects),)),
        )
        state_machine = self.state_machine.state_machine_arn
        name = Fn.select(6, Fn.split(":", state_machine))
        executions = Stack.of(self).format_arn(
            service="states", resource="execution", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME
        )
        acknowledge(
            self.state_machine,
            "a Distributed Map describes, stops and redrives its own child executions, which Step Functions "
            "names; the grant is limited to this state machine's executions",
            *iam5_findings(resources=tuple(nag_resource(self, f"{executions}{tail}") for tail in (":*", "/Shards:*"))),
        )
        acknowledge(
            role,
            "Lambda invoke grants name each function and its versions (<arn>:*), which the task may call; "
            "X-Ray trace segments have no resource ARN",
            *iam5_findings(
                actions=(),
                resources=(
                    *(
                        f"<{Stack.of(self).get_logical_id(f.node.default_child)}.Arn>:*"  # type: ignore[arg-type]
                        for f in (self.plan_function, self.shard_function, self.finalize_function)
                    ),
                    "*",
                ),
            ),
        )


@dataclass(frozen=True)
class _Network:
    vpc: ec2.IVpc | None
    subnets: ec2.SubnetSelection | None
    groups: tuple[ec2.ISecurityGroup, ...]


def _log_id(construct: InventorySnapshot, function_id: str) -> str:
    log_group = construct.node.find_child(f"{function_id}Logs")
    return Stack.of(construct).get_logical_id(log_group.node.default_child)  # type: ignore[arg-type]


def _problems(
    scope: Construct,
    data_store: VersionedDataStore,
    names: tuple[str, ...],
    max_concurrency: int,
    worker_memory_size: int,
    worker_timeout: Duration,
) -> list[str]:
    problems: list[str] = []
    # checked_props has refused any other type of store: the inventory is a property of the bucket.
    if Stack.of(data_store) is not Stack.of(scope):
        problems.append(
            f"data_store {data_store.node.path} is in another stack; define InventorySnapshot in the store's "
            "stack, which owns the bucket's inventory and the key's policy"
        )
    if not names:
        problems.append("datasets is empty; name at least one dataset under datasets/ to snapshot")
    for name in names:
        problems += [f"datasets: {p}" for p in dataset_name_problems(name)]
    if len(set(names)) != len(names):
        problems.append(f"datasets {list(names)!r} repeats a name; list each dataset once")
    problems += data_store.undeclared_problems("datasets", names)
    if (
        isinstance(max_concurrency, bool)
        or not isinstance(max_concurrency, int)
        or not (1 <= max_concurrency <= _MAX_CONCURRENCY_LIMIT)
    ):
        problems.append(f"max_concurrency ({max_concurrency!r}) must be a whole number from 1 to 10,000")
    low, high = _MEMORY_RANGE
    if (
        isinstance(worker_memory_size, bool)
        or not isinstance(worker_memory_size, int)
        or not (low <= worker_memory_size <= high)
    ):
        problems.append(f"worker_memory_size ({worker_memory_size!r}) must be whole MiB from {low} to {high:,}")
    seconds = worker_timeout.to_seconds()
    if not _TIMEOUT_RANGE[0] <= seconds <= _TIMEOUT_RANGE[1]:
        problems.append(
            f"worker_timeout ({worker_timeout.to_human_string()}) must be from 1 to 15 minutes (Lambda's limit)"
        )
    return problems
