"""Execution events: violations become retrain events, failures notify the topic.

Every completed monitoring execution reaches an Express state machine (no function code), which
counts the executions that found violations (the count the violation alarms watch) and puts a
``cdk-mlops.monitor`` / ``Model Monitor Violation`` event on the default bus, the retrain trigger's
input; the trigger retrains on the monitoring types it is configured for. Failed or stopped
executions notify the alarm topic. Events EventBridge cannot deliver wait in a dead-letter queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from cdk_mlops.constructs.common import acknowledge, dead_letter_queue, depend_on_role_policy, iam5_findings
from cdk_mlops.constructs.model_monitor.monitoring_type import MonitoringType

# The violation event is the retrain trigger's input; its vocabulary lives with the handler and is
# plain constants (no boto3), so the construct shares it rather than repeating the strings.
from cdk_mlops.lambdas.retrain_trigger import MONITOR_SOURCE, MONITOR_VIOLATION

__all__ = [
    "FAILED_STATUSES",
    "METRICS_NAMESPACE",
    "PROCESSING_JOB_STATE_CHANGE",
    "VIOLATIONS_EXIT_PREFIX",
    "ViolationRouting",
    "define_violation_routing",
]

#: Where the construct counts the violations it turned into retrain events (metric ``Violations``,
#: dimension ``MonitoringSchedule``).
METRICS_NAMESPACE: Final = "CdkMlops/ModelMonitor"
#: The EventBridge detail type of SageMaker processing jobs, which monitoring executions are.
PROCESSING_JOB_STATE_CHANGE: Final = "SageMaker Processing Job State Change"
#: How a monitoring execution that found violations ends its exit message.
VIOLATIONS_EXIT_PREFIX: Final = "CompletedWithViolations"
#: Statuses of a monitoring execution that did not complete.
FAILED_STATUSES: Final = ("Failed", "Stopped")


@dataclass(frozen=True, kw_only=True)
class ViolationRouting:
    """What :func:`define_violation_routing` created.

    Attributes:
        log_group: The state machine's execution log.
        publisher: Express state machine that turns executions with violations
            into ``Model Monitor Violation`` events.
        dead_letter_queue: Completed-execution events EventBridge could not deliver.
        completed_rules: EventBridge rule per type: completed executions → the publisher.
        failed_rules: EventBridge rule per type: failed or stopped executions → the topic.
    """

    log_group: logs.LogGroup
    publisher: sfn.StateMachine
    dead_letter_queue: sqs.Queue
    completed_rules: dict[MonitoringType, events.Rule]
    failed_rules: dict[MonitoringType, events.Rule]


def define_violation_routing(
    monitor: Construct,
    *,
    scopes: Mapping[MonitoringType, Construct],
    schedule_names: Mapping[MonitoringType, str],
    schedule_arns: Mapping[MonitoringType, str],
    endpoint_name: str | None,
    dataset: str | None,
    batch_name: str | None = None,
    encryption_key: kms.IKey,
    alarm_topic: sns.ITopic,
    log_retention: logs.RetentionDays,
    removal_policy: RemovalPolicy,
) -> ViolationRouting:
    """Completed executions → Express state machine → ``Model Monitor Violation`` on the default bus.

    EventBridge cannot put an event with a new source and detail type on a
    bus (rules targeting an event bus forward the event unchanged, without
    input transformation), so an Express workflow with the optimized
    ``events:putEvents`` integration does it; no function code.

    Args:
        monitor: Holds the state machine, its log and the dead-letter queue.
        scopes: Per monitoring type, the scope of its two rules.
        schedule_names: The schedule name per type.
        schedule_arns: The schedule ARN per type.
        endpoint_name: The monitored endpoint (``detail.endpointName``), or None for a batch job.
        dataset: The dataset a violation retrains (``detail.dataset``), if any.
        batch_name: The monitored batch job (``detail.batchName``), or None for an endpoint.
        encryption_key: Encrypts the dead-letter queue.
        alarm_topic: Failed executions notify it.
        log_retention: How long the state machine's log is kept.
        removal_policy: For the log group and the queue.
    """
    log_group = logs.LogGroup(monitor, "ViolationPublisherLogs", retention=log_retention, removal_policy=removal_policy)
    publisher = _define_publisher(monitor, log_group)
    queue = dead_letter_queue(monitor, "DeadLetterQueue", key=encryption_key, removal_policy=removal_policy)
    encryption_key.grant(iam.ServicePrincipal("events.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey")
    acknowledge(
        queue,
        "this queue is itself the dead-letter queue of the EventBridge targets; its messages are kept 14 days "
        "and an alarm fires on the first one",
        "AwsSolutions-SQS3",
    )

    completed_rules: dict[MonitoringType, events.Rule] = {}
    failed_rules: dict[MonitoringType, events.Rule] = {}
    for monitoring_type, scope in scopes.items():
        name, arn = schedule_names[monitoring_type], schedule_arns[monitoring_type]
        detail: dict[str, Any] = {
            "monitoringScheduleName": name,
            "monitoringType": monitoring_type.value,
            # The source: an endpoint's name, or a batch job's (batch monitors have no endpoint).
            **({"endpointName": endpoint_name} if endpoint_name is not None else {"batchName": batch_name}),
            "processingJobArn": events.EventField.from_path("$.detail.ProcessingJobArn"),
        }
        if dataset is not None:
            detail["dataset"] = dataset
        completed = events.Rule(
            scope,
            "Completed",
            description=f"{monitor.node.path}: completed executions of {name} (violations are counted and published)",
            event_pattern=_execution_pattern(arn, ["Completed"]),
        )
        completed.add_target(
            targets.SfnStateMachine(
                publisher,
                input=events.RuleTargetInput.from_object({"detail": detail, "event": events.EventField.from_path("$")}),
                dead_letter_queue=queue,
                retry_attempts=20,
                max_event_age=Duration.hours(6),
            )
        )
        failed = events.Rule(
            scope,
            "Failed",
            description=f"{monitor.node.path}: failed or stopped executions of {name}",
            event_pattern=_execution_pattern(arn, list(FAILED_STATUSES)),
        )
        failed.add_target(targets.SnsTopic(alarm_topic))
        completed_rules[monitoring_type] = completed
        failed_rules[monitoring_type] = failed
    return ViolationRouting(
        log_group=log_group,
        publisher=publisher,
        dead_letter_queue=queue,
        completed_rules=completed_rules,
        failed_rules=failed_rules,
    )


def _define_publisher(monitor: Construct, log_group: logs.LogGroup) -> sfn.StateMachine:
    """The state machine: when the execution found violations, count it and put the violation event."""
    has_violations = sfn.Condition.and_(
        sfn.Condition.is_present("$.event.detail.ExitMessage"),
        sfn.Condition.string_matches("$.event.detail.ExitMessage", f"{VIOLATIONS_EXIT_PREFIX}*"),
    )
    count = sfn.CustomState(
        monitor,
        "CountViolation",
        state_json={
            "Type": "Task",
            "Resource": f"arn:{Aws.PARTITION}:states:::aws-sdk:cloudwatch:putMetricData",
            "Parameters": {
                "Namespace": METRICS_NAMESPACE,
                "MetricData": [
                    {
                        "MetricName": "Violations",
                        "Dimensions": [{"Name": "MonitoringSchedule", "Value.$": "$.detail.monitoringScheduleName"}],
                        "Value": 1,
                        "Unit": "Count",
                    }
                ],
            },
            "ResultPath": sfn.JsonPath.DISCARD,
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2}],
        },
    )
    publish = tasks.EventBridgePutEvents(
        monitor,
        "PublishViolation",
        entries=[
            tasks.EventBridgePutEventsEntry(
                detail=sfn.TaskInput.from_json_path_at("$.detail"),
                detail_type=MONITOR_VIOLATION,
                source=MONITOR_SOURCE,
            )
        ],
        result_path=sfn.JsonPath.DISCARD,
    )
    publish.add_retry(errors=[sfn.Errors.ALL], interval=Duration.seconds(2), max_attempts=6, backoff_rate=2)
    definition = (
        sfn.Choice(monitor, "HasViolations")
        .when(has_violations, count.next(publish))
        .otherwise(sfn.Succeed(monitor, "NoViolations"))
    )
    publisher = sfn.StateMachine(
        monitor,
        "ViolationPublisher",
        definition_body=sfn.DefinitionBody.from_chainable(definition),
        state_machine_type=sfn.StateMachineType.EXPRESS,
        timeout=Duration.minutes(5),
        tracing_enabled=True,
        logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
    )
    # aws-cdk-lib makes the state machine depend on its role, which it already names with Fn::GetAtt.
    depend_on_role_policy(publisher, publisher.role)
    iam.Grant.add_to_principal(
        grantee=publisher,
        actions=["cloudwatch:PutMetricData"],
        resource_arns=["*"],
        conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
    )
    acknowledge(
        publisher.role,
        "X-Ray, CloudWatch Logs delivery and cloudwatch:PutMetricData support no resource-level permissions "
        f"(the metric is limited to the {METRICS_NAMESPACE} namespace by condition); aws-cdk-lib adds the first "
        "two for tracing and execution logging",
        *iam5_findings(resources=("*",)),
    )
    return publisher


def _execution_pattern(schedule_arn: str, statuses: list[str]) -> events.EventPattern:
    return events.EventPattern(
        source=["aws.sagemaker"],
        detail_type=[PROCESSING_JOB_STATE_CHANGE],
        detail={"MonitoringScheduleArn": [schedule_arn], "ProcessingJobStatus": statuses},
    )
