"""What every retrain trigger is made of: its key, queues, state table, function, rules and alarms.

:class:`cdk_mlops.constructs.retrain_trigger.RetrainTrigger` (one pipeline) and
:class:`cdk_mlops.constructs.fleet_trigger.FleetRetrainTrigger` (every pipeline with a route) build
the same machinery here and differ in their handler, environment, grants and rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.interfaces import aws_events as events_refs
from aws_cdk.region_info import RegionInfo
from constructs import Construct

from cdk_mlops.constructs.common import (
    LAMBDA_RUNTIME,
    acknowledge,
    acknowledge_grantee,
    dead_letter_queue,
    depend_on_role_policy,
    grant_lambda_vpc_access,
    https_only_security_group,
    iam5_findings,
    lambda_code,
    metric_props,
    network_problems,
    select_subnets,
)
from cdk_mlops.constructs.inventory_snapshot import InventorySnapshot
from cdk_mlops.constructs.model_monitor.monitoring_type import MonitoringType
from cdk_mlops.lambdas.retrain_trigger import (
    DECISION_DIMENSION,
    DECISIONS_METRIC,
    EXECUTION_STATUS_CHANGE,
    EXECUTION_SUCCEEDED,
    MANUAL_RETRAIN,
    MONITOR_SOURCE,
    MONITOR_VIOLATION,
    SOURCE,
    STATES_SOURCE,
)

#: Where the handler publishes its ``Decisions`` metric (Embedded Metric Format).
METRICS_NAMESPACE = "CdkMlops/RetrainTrigger"
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
TABLE_ACTIONS: Final = ("dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
_EVENTS = "events.amazonaws.com"
# What EventBridge needs to put a message on a queue encrypted with a customer managed key.
_EVENTS_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
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


class TriggerBase(Construct):
    """The machinery every retrain trigger shares; its subclasses document the attributes."""

    encryption_key: kms.IKey
    dead_letter_queue: sqs.Queue
    queue: sqs.Queue
    table: dynamodb.Table
    log_group: logs.LogGroup
    role: iam.Role
    security_groups: tuple[ec2.ISecurityGroup, ...]
    function: lambda_.Function
    powertools_layer: lambda_.ILayerVersion
    rules: dict[str, events.Rule]
    dead_letter_alarm: cw.Alarm
    errors_alarm: cw.Alarm

    def _build_machinery(
        self,
        *,
        handler: str,
        description: str,
        environment: Callable[[], dict[str, str]],
        encryption_key: kms.IKey | None,
        removal_policy: RemovalPolicy,
        max_receive_count: int,
        log_retention: logs.RetentionDays,
        vpc: ec2.IVpc | None,
        vpc_subnets: ec2.SubnetSelection | None,
        security_groups: Sequence[ec2.ISecurityGroup] | None,
        powertools_layer: lambda_.ILayerVersion | None,
        function_timeout: Duration,
        function_memory_size: int,
        grant: Callable[[], None],
    ) -> None:
        """The key, queues, table, log group, role and function.

        ``environment`` and ``grant`` are called once the table and the queue exist.
        """
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
            visibility_timeout=visibility_timeout(function_timeout),
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
            handler=handler,
            code=lambda_code("datasets.py", "champion.py", "lambdas/retrain_trigger"),
            role=self.role,
            timeout=function_timeout,
            memory_size=function_memory_size,
            reserved_concurrent_executions=_CONCURRENCY,
            log_group=self.log_group,
            description=description,
            environment=environment(),
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
        grant()
        if vpc is not None:
            self._grant_network_interfaces(select_subnets(vpc, vpc_subnets))
        # The function polls its queue as soon as it exists, and Lambda checks the network-interface
        # permissions when it creates a function in a VPC: it waits for its policy, not twice for its role.
        depend_on_role_policy(self.function, self.role)

    def _machinery_problems(
        self,
        max_receive_count: int,
        vpc: ec2.IVpc | None,
        vpc_subnets: ec2.SubnetSelection | None,
        security_groups: Sequence[ec2.ISecurityGroup] | None,
        powertools_layer: lambda_.ILayerVersion | None,
        function_timeout: Duration,
        function_memory_size: int,
    ) -> list[str]:
        """What is wrong with the arguments of the machinery, each with the fix."""
        problems: list[str] = []
        if not 1 <= max_receive_count <= 1000:
            problems.append(f"max_receive_count ({max_receive_count}) must be between 1 and 1000")
        problems += network_problems(vpc, vpc_subnets, security_groups)
        problems += function_problems(function_timeout, function_memory_size)
        if powertools_layer is None:
            problems += powertools_problems(Stack.of(self).region)
        return problems

    def _grant_machinery(self) -> None:
        """The handler's own log group, table, key and queue, and the acknowledgments of their grants."""
        self.log_group.grant_write(self.role)
        self.table.grant(self.role, *TABLE_ACTIONS)
        self.encryption_key.grant_encrypt_decrypt(self.role)
        self.queue.grant_send_messages(self.role)
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

    def _route_snapshots(self, snapshot: InventorySnapshot) -> None:
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

    def _route_requests_and_violations(self, types: Sequence[MonitoringType]) -> None:
        self._route(
            "Requested",
            "Manual retrain requests",
            events.EventPattern(source=[SOURCE], detail_type=[MANUAL_RETRAIN]),
        )
        # EventBridge rejects a pattern with an empty list, and no type means no violation retrains.
        if types:
            self._route(
                "Violations",
                f"Model Monitor violations of {', '.join(types)} (the other types only alert)",
                events.EventPattern(
                    source=[MONITOR_SOURCE],
                    detail_type=[MONITOR_VIOLATION],
                    detail={"monitoringType": list(types)},
                ),
            )

    def _build_alarms(self, max_receive_count: int, alarm_topic: sns.ITopic | None) -> None:
        """In ALARM when a record reaches the dead-letter queue, and when the handler raises."""
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

    def _route(self, id: str, description: str, pattern: events.EventPattern) -> None:
        rule = events.Rule(self, id, description=f"{self.node.path}: {description}", event_pattern=pattern)
        rule.add_target(QueueTarget(self.queue))
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


def powertools_problems(region: str) -> list[str]:
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


@jsii.implements(events.IRuleTarget)
class QueueTarget:
    """The trigger queue as a rule target, without the grant ``aws_events_targets.SqsQueue`` adds.

    ``aws_events_targets.SqsQueue`` lets EventBridge send without any condition when the queue has a
    customer managed key (naming the rule in the key's policy would be a reference cycle);
    :meth:`TriggerBase._allow_rules_to_send` writes both policies with conditions instead.
    """

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(self, rule: events_refs.IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self._queue.queue_arn, target_resource=self._queue)


def function_problems(timeout: object, memory_size: object) -> list[str]:
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


def visibility_timeout(timeout: Duration) -> Duration:
    # SQS's guidance for Lambda sources: at least 6 x the function timeout + the batching window.
    # A failed record reappears after this long, which is the retry backoff; 15 min at the least.
    return Duration.seconds(max(900, 6 * int(timeout.to_seconds()) + int(_BATCH_WINDOW.to_seconds())))


def lease_seconds(timeout: Duration) -> int:
    # A start holds its claim for longer than the function can run, so a claim is never taken over
    # while its start is still running, and for less than the visibility timeout, so a retry finds it free.
    return max(300, int(timeout.to_seconds()) + 60)
