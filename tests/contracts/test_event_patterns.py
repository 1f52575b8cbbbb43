"""Every EventBridge rule of the platform matches AWS's documented event it is meant for, and no near miss.

The samples are AWS's documented events (``tests/events/aws/``, see its README) with the
synthesized templates' real values substituted: the data bucket, the pipeline and monitoring
schedule ARNs, the drift alarms, the registry's model package group, the account and region.
Near misses change one thing: another status, pipeline, bucket, key prefix, approval status,
group, account or source. The matcher (``event_patterns``) is cross-checked against moto's.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final, TypeVar, cast

import aws_cdk as cdk
import botocore.session
import pytest
from aws_cdk import aws_events as events
from botocore.model import StringShape, StructureShape
from moto.events.models import EventPattern

from cdk_mlops import datasets, delivery_steps
from cdk_mlops.constructs.inventory_snapshot import InventorySnapshot
from cdk_mlops.constructs.model_monitor import ModelMonitor, MonitoringType
from cdk_mlops.constructs.retrain_trigger import RetrainTrigger
from cdk_mlops.lambdas.retrain_trigger import events as trigger_events
from cdk_mlops.stacks.delivery_stack import ToolingStage
from cdk_mlops.stacks.stage import MlopsPlatformStage
from tests.conftest import EVENTS_DIR, Platform, load_event
from tests.contracts import iam_coverage as ic
from tests.contracts.event_patterns import PatternError, matches

AWS_EVENTS: Final = EVENTS_DIR / "aws"
OTHER_ACCOUNT: Final = "210987654321"


def aws_sample(name: str) -> dict[str, Any]:
    """A copy of an AWS-documented event from tests/events/aws/."""
    sample: dict[str, Any] = json.loads((AWS_EVENTS / name).read_text())
    return sample


@cache
def _enum(service: str, shape: str) -> list[str]:
    """The values botocore's service model allows for an enumerated string shape."""
    found = botocore.session.get_session().get_service_model(service).shape_for(shape)
    assert isinstance(found, StringShape), f"{service} {shape} is not a string shape"
    return list(found.enum)


@dataclass(frozen=True)
class Rule:
    """An ``AWS::Events::Rule`` with an event pattern, where it is deployed."""

    deployment: ic.Deployment
    stack: ic.StackTemplate
    logical_id: str
    pattern: dict[str, Any]
    construct: events.CfnRule

    def __str__(self) -> str:
        kinds = ", ".join(f"{s} / {d}" for s in self.sources for d in self.detail_types)
        return f"{self.construct.node.path} ({kinds})"

    @property
    def sources(self) -> list[str]:
        return list(self.pattern.get("source", []))

    @property
    def detail_types(self) -> list[str]:
        return list(self.pattern.get("detail-type", []))

    @property
    def stage(self) -> cdk.Stage:
        return cdk.Stage.of(self.construct)  # type: ignore[return-value]

    def envelope(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event as it arrives in the rule's account and region."""
        return {**event, "account": self.stack.account, "region": self.stack.region}


def platform_rules(deployed: ic.Platform) -> list[Rule]:
    """Every rule with an event pattern in every synthesized template of the platform."""
    found: list[Rule] = []
    for deployment, st in ic.all_templates(deployed):
        constructs = {
            str(st.stack.resolve(st.stack.get_logical_id(c))): c
            for c in st.stack.node.find_all()
            if isinstance(c, events.CfnRule) and cdk.Stack.of(c) is st.stack
        }
        for logical_id, resource in st.template.get("Resources", {}).items():
            if resource["Type"] == "AWS::Events::Rule" and "EventPattern" in resource["Properties"]:
                pattern = deployment.resolve(resource["Properties"]["EventPattern"], st)
                found.append(Rule(deployment, st, logical_id, pattern, constructs[logical_id]))
    return found


@dataclass
class Case:
    """What a rule must do: match every event of ``every``, at least one of ``any``, none of ``never``."""

    every: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    any: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    never: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------- samples


def _environment(rule: Rule) -> MlopsPlatformStage:
    stage = rule.stage
    assert isinstance(stage, MlopsPlatformStage), f"{rule} is not in an environment stage"
    return stage


_Owner = TypeVar("_Owner")


def _owner(rule: Rule, kind: type[_Owner]) -> _Owner:
    """The construct of ``kind`` the rule belongs to (a stage holds several triggers and monitors)."""
    found = [s for s in rule.construct.node.scopes if isinstance(s, kind)]
    assert found, f"{rule} is not in a {kind.__name__}"
    return found[-1]


def _object_event(rule: Rule, bucket: str, key: str, name: str = "s3_object_created.json") -> dict[str, Any]:
    event = rule.envelope(aws_sample(name))
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"]["key"] = key
    return event


def object_created(rule: Rule) -> Case:
    if any(isinstance(s, InventorySnapshot) for s in rule.construct.node.scopes):
        return report_delivered(rule)
    stage = _environment(rule)
    bucket = str(rule.deployment.value(stage.data.store, stage.data.store.bucket.bucket_name))
    case = Case()
    for dataset in _owner(rule, RetrainTrigger).datasets:
        key = f"{datasets.dataset_prefix(dataset)}2025-03-04/part-00000.csv"
        case.every.append((f"a new object of dataset {dataset}", _object_event(rule, bucket, key)))
        case.never += [
            ("another bucket", _object_event(rule, f"{bucket}-other", key)),
            ("the trigger's own manifest", _object_event(rule, bucket, f"{datasets.manifest_prefix(dataset)}m.json")),
            ("a pipeline artifact", _object_event(rule, bucket, f"{datasets.ARTIFACTS_PREFIX}p/e/model.tar.gz")),
            ("another dataset sharing the name's start", _object_event(rule, bucket, f"datasets/{dataset}-v2/x.csv")),
            ("Object Deleted", _object_event(rule, bucket, key, "s3_object_deleted.json")),
            ("another source", {**_object_event(rule, bucket, key), "source": "cdk-mlops.retrain"}),
        ]
    return case


def report_delivered(rule: Rule) -> Case:
    """The inventory's rule: the last file of a delivered report, and nothing else S3 writes there."""
    snapshots = _owner(rule, InventorySnapshot)
    bucket = str(rule.deployment.value(snapshots, snapshots.report_bucket.bucket_name))
    folder = f"{rule.deployment.value(snapshots, snapshots.report_prefix)}2026-12-04T00-00Z/"
    return Case(
        every=[("a report's manifest.checksum", _object_event(rule, bucket, f"{folder}manifest.checksum"))],
        never=[
            ("the report's manifest.json, written before it", _object_event(rule, bucket, f"{folder}manifest.json")),
            ("a data file", _object_event(rule, bucket, f"{folder.rsplit('/', 2)[0]}/data/0b2c.csv.gz")),
            ("a work list", _object_event(rule, bucket, "work/churn/20261204T000000Z-0123/files.json")),
            ("another bucket", _object_event(rule, f"{bucket}-other", f"{folder}manifest.checksum")),
            (
                "Object Deleted",
                _object_event(rule, bucket, f"{folder}manifest.checksum", "s3_object_deleted.json"),
            ),
        ],
    )


def _pipeline_event(rule: Rule, pipeline_arn: str, status: str) -> dict[str, Any]:
    event = rule.envelope(aws_sample("sagemaker_pipeline_execution_status_change.json"))
    execution = f"{pipeline_arn}/execution/p4jn9xou8a8s"
    event["resources"] = [pipeline_arn, execution]
    event["detail"].update(pipelineArn=pipeline_arn, pipelineExecutionArn=execution)
    event["detail"]["currentPipelineExecutionStatus"] = status
    return event


def pipeline_status(rule: Rule) -> Case:
    # The trigger, training pipeline or batch inference the rule belongs to names its pipeline.
    owner = next((s for s in reversed(rule.construct.node.scopes) if hasattr(s, "pipeline_arn")), None)
    assert owner is not None, f"{rule} watches pipeline executions, but belongs to no pipeline's construct"
    arn = str(rule.deployment.value(owner, owner.pipeline_arn))
    statuses = _enum("sagemaker", "PipelineExecutionStatus")
    ended = sorted(trigger_events.TERMINAL_STATUSES)
    return Case(
        any=[(f"{arn} {s}", _pipeline_event(rule, arn, s)) for s in ended],
        never=[
            *((f"still running: {s}", _pipeline_event(rule, arn, s)) for s in sorted(trigger_events.RUNNING_STATUSES)),
            *((f"another pipeline, {s}", _pipeline_event(rule, f"{arn}-other", s)) for s in statuses),
        ],
    )


def _processing_event(rule: Rule, schedule_arn: str | None, status: str) -> dict[str, Any]:
    event = rule.envelope(aws_sample("sagemaker_processing_job_state_change.json"))
    event["detail"]["ProcessingJobStatus"] = status
    if schedule_arn is not None:
        # DescribeProcessingJob (which the detail mirrors) names the schedule of a monitoring job.
        event["detail"]["MonitoringScheduleArn"] = schedule_arn
    return event


def processing_job(rule: Rule) -> Case:
    monitor = _owner(rule, ModelMonitor)
    arns = [str(rule.deployment.value(monitor, s.attr_monitoring_schedule_arn)) for s in monitor.schedules.values()]
    ended = ("Completed", "Failed", "Stopped")
    case = Case()
    for arn in arns:
        case.any += [(f"{arn} {s}", _processing_event(rule, arn, s)) for s in ended]
        case.never += [(f"{arn} still {s}", _processing_event(rule, arn, s)) for s in ("InProgress", "Stopping")]
        case.never += [
            (f"another schedule, {s}", _processing_event(rule, f"{arn}-other", s))
            for s in _enum("sagemaker", "ProcessingJobStatus")
        ]
    case.never += [(f"not a monitoring job, {s}", _processing_event(rule, None, s)) for s in ended]
    return case


def _alarm_event(rule: Rule, arn: str, state: str) -> dict[str, Any]:
    event = rule.envelope(aws_sample("cloudwatch_alarm_state_change.json"))
    event["resources"] = [arn]
    event["detail"]["alarmName"] = arn.split(":alarm:", 1)[1]
    event["detail"]["state"]["value"] = state
    return event


def alarm_state(rule: Rule) -> Case:
    stage = _environment(rule)
    monitor = stage.serving.monitor if stage.serving is not None else None
    assert monitor is not None, f"{rule} watches drift alarms, but {stage.node.path} has no model monitor"
    drift = {str(rule.deployment.value(a, a.alarm_arn)) for a in monitor.drift_alarms}
    others = {
        str(rule.deployment.arn_of(st, logical_id))
        for st, logical_id, _ in rule.deployment.resources("AWS::CloudWatch::Alarm")
    } - drift
    case = Case(every=[(f"{arn} ALARM", _alarm_event(rule, arn, "ALARM")) for arn in sorted(drift)])
    case.never += [
        (f"{arn} {state}", _alarm_event(rule, arn, state))
        for arn in sorted(drift)
        for state in _enum("cloudwatch", "StateValue")
        if state != "ALARM"
    ]
    case.never += [(f"another alarm: {arn}", _alarm_event(rule, arn, "ALARM")) for arn in sorted(others)]
    return case


def _registry(rule: Rule) -> MlopsPlatformStage:
    stage = rule.stage
    if isinstance(stage, MlopsPlatformStage):
        return stage  # an environment forwarding its own approvals
    assert isinstance(stage, ToolingStage), f"{rule} is neither in an environment nor in the tooling stage"
    # model_registry_environment defaults to the first environment; the reference app keeps it.
    registry = stage.delivery.platform.stages[stage.delivery.environments[0].name]
    assert isinstance(registry, MlopsPlatformStage)
    return registry


def _package_event(rule: Rule, group: str, account: str, approval: str, status: str) -> dict[str, Any]:
    event = rule.envelope(aws_sample("sagemaker_model_package_state_change.json"))
    arn = f"arn:aws:sagemaker:{event['region']}:{account}:model-package/{group}/3"
    event.update(account=account, resources=[arn])
    event["detail"].update(
        ModelPackageGroupName=group,
        ModelPackageArn=arn,
        ModelPackageVersion=3,
        ModelApprovalStatus=approval,
        ModelPackageStatus=status,
    )
    return event


def model_package_state(rule: Rule) -> Case:
    registry = _registry(rule)
    training = registry.training.training
    group = str(rule.deployment.value(training, training.model_package_group_name))
    account = rule.deployment.stack(registry.training).account
    stages = {cdk.Stage.of(st.stack) for st in rule.deployment.stacks}
    other_groups = {
        str(rule.deployment.value(s.training.training, s.training.training.model_package_group_name))
        for s in stages
        if isinstance(s, MlopsPlatformStage) and s is not registry
    } | {f"{group}-other"}
    return Case(
        every=[("approved and complete", _package_event(rule, group, account, "Approved", "Completed"))],
        never=[
            *(
                (f"{approval}", _package_event(rule, group, account, approval, "Completed"))
                for approval in _enum("sagemaker", "ModelApprovalStatus")
                if approval != "Approved"
            ),
            *(
                (f"Approved while the package is {status}", _package_event(rule, group, account, "Approved", status))
                for status in ("Pending", "InProgress")
            ),
            *(
                (f"another group: {g}", _package_event(rule, g, account, "Approved", "Completed"))
                for g in sorted(other_groups)
            ),
            ("another account", _package_event(rule, group, OTHER_ACCOUNT, "Approved", "Completed")),
        ],
    )


def _put_events(rule: Rule, source: str, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """What EventBridge delivers for a PutEvents entry (its documented event structure)."""
    return rule.envelope(
        {
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": detail_type,
            "source": source,
            "time": "2025-03-06T09:30:00Z",
            "resources": [],
            "detail": detail,
        }
    )


def manual_retrain(rule: Rule) -> Case:
    decision = delivery_steps.decide_retrain("0" * 64, "1" * 64)
    entry = delivery_steps.retrain_request(decision, dataset="churn", pipeline_name="p", environment="dev")
    detail = json.loads(entry["Detail"])
    return Case(
        every=[("the delivery pipeline's request", _put_events(rule, entry["Source"], entry["DetailType"], detail))],
        never=[
            ("another source", _put_events(rule, "cdk-mlops.elsewhere", entry["DetailType"], detail)),
            *(
                (f"the trigger's own {kind}", _put_events(rule, entry["Source"], kind, detail))
                for kind in (trigger_events.RETRAIN_CHECK, trigger_events.SCHEDULED_RETRAIN)
            ),
        ],
    )


def violation_producers(deployed: ic.Platform) -> set[tuple[str, str]]:
    """(Source, DetailType) of every ``events:putEvents`` task of every state machine of the platform."""
    found: set[tuple[str, str]] = set()
    for deployment, st in ic.all_templates(deployed):
        for resource in st.template.get("Resources", {}).values():
            if resource["Type"] == "AWS::StepFunctions::StateMachine":
                definition = json.loads(deployment.resolve(resource["Properties"]["DefinitionString"], st))
                for state in _states(definition):
                    if str(state.get("Resource", "")).endswith(":states:::events:putEvents"):
                        found |= {(e["Source"], e["DetailType"]) for e in state["Parameters"]["Entries"]}
    return found


def _states(definition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for state in definition.get("States", {}).values():
        yield state
        for branch in state.get("Branches", []):
            yield from _states(branch)


def monitor_violation(rule: Rule, producers: set[tuple[str, str]]) -> Case:
    sample = load_event("model_monitor_violation.json")["detail"]
    published = sorted(p for p in producers if p[1] == trigger_events.MONITOR_VIOLATION)
    assert published, "no state machine of the platform publishes Model Monitor Violation events"
    retrains = _owner(rule, RetrainTrigger).retrain_on_violations

    def violation(monitoring_type: MonitoringType) -> dict[str, Any]:
        return {**sample, "monitoringType": monitoring_type.value}

    untyped = {k: v for k, v in sample.items() if k != "monitoringType"}
    return Case(
        every=[
            (f"a {t.value} violation published as {s} / {d}", _put_events(rule, s, d, violation(t)))
            for s, d in published
            for t in retrains
        ],
        never=[
            *(
                (f"a {t.value} violation, which only alerts", _put_events(rule, s, d, violation(t)))
                for s, d in published
                for t in MonitoringType
                if t not in retrains
            ),
            ("a violation without monitoringType", _put_events(rule, *published[0], untyped)),
            (
                "another source",
                _put_events(rule, "cdk-mlops.elsewhere", trigger_events.MONITOR_VIOLATION, violation(retrains[0])),
            ),
        ],
    )


def _execution_event(rule: Rule, machine_arn: str, status: str) -> dict[str, Any]:
    event = rule.envelope(aws_sample("states_execution_status_change.json"))
    execution = machine_arn.replace(":stateMachine:", ":execution:") + ":snapshot-1"
    event["resources"] = [execution]
    event["detail"] = {**event["detail"], "executionArn": execution, "stateMachineArn": machine_arn, "status": status}
    return event


def snapshot_finished(rule: Rule) -> Case:
    """The trigger's rule for its InventorySnapshot: a success of that state machine, nothing else."""
    trigger = _owner(rule, RetrainTrigger)
    assert trigger.snapshot is not None, f"{rule} is for snapshots, but its trigger has none"
    arn = str(rule.deployment.value(trigger.snapshot, trigger.snapshot.state_machine.state_machine_arn))
    others = [s for s in _enum("stepfunctions", "ExecutionStatus") if s != "SUCCEEDED"]
    return Case(
        every=[(f"{arn} SUCCEEDED", _execution_event(rule, arn, "SUCCEEDED"))],
        never=[
            *((f"an execution {s}", _execution_event(rule, arn, s)) for s in others),
            ("another state machine", _execution_event(rule, f"{arn}-other", "SUCCEEDED")),
            ("another source", {**_execution_event(rule, arn, "SUCCEEDED"), "source": "cdk-mlops.retrain"}),
        ],
    )


#: (source, detail-type) -> what a rule for that event must match and must not match.
SAMPLES: Final[dict[tuple[str, str], Callable[[Rule, set[tuple[str, str]]], Case]]] = {
    ("aws.s3", "Object Created"): lambda r, _: object_created(r),
    ("aws.sagemaker", "SageMaker Model Building Pipeline Execution Status Change"): lambda r, _: pipeline_status(r),
    ("aws.sagemaker", "SageMaker Processing Job State Change"): lambda r, _: processing_job(r),
    ("aws.sagemaker", "SageMaker Model Package State Change"): lambda r, _: model_package_state(r),
    ("aws.cloudwatch", "CloudWatch Alarm State Change"): lambda r, _: alarm_state(r),
    (trigger_events.SOURCE, trigger_events.MANUAL_RETRAIN): lambda r, _: manual_retrain(r),
    (trigger_events.MONITOR_SOURCE, trigger_events.MONITOR_VIOLATION): monitor_violation,
    (trigger_events.STATES_SOURCE, trigger_events.EXECUTION_STATUS_CHANGE): lambda r, _: snapshot_finished(r),
}


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def deployed(platform: Platform) -> ic.Platform:
    return ic.platform_deployments(platform.app, platform.assembly)


@pytest.fixture(scope="module")
def rules(deployed: ic.Platform) -> list[Rule]:
    return platform_rules(deployed)


@pytest.fixture(scope="module")
def producers(deployed: ic.Platform) -> set[tuple[str, str]]:
    return violation_producers(deployed)


def _cases(rules: list[Rule], kind: tuple[str, str], producers: set[tuple[str, str]]) -> list[tuple[Rule, Case]]:
    source, detail_type = kind
    selected = [r for r in rules if source in r.sources and detail_type in r.detail_types]
    assert selected, f"no rule of the platform is for {source} / {detail_type}; remove its sample"
    return [(rule, SAMPLES[kind](rule, producers)) for rule in selected]


def _verdict(rule: Rule, event: dict[str, Any]) -> bool:
    """The matcher's verdict, checked against moto's implementation of the same semantics."""
    ours = matches(rule.pattern, event)
    theirs = EventPattern.load(json.dumps(rule.pattern)).matches_event(cast(Any, copy.deepcopy(event)))
    assert ours == theirs, f"{rule}: event_patterns says {ours}, moto says {theirs} for {json.dumps(event)[:300]}"
    return ours


# ------------------------------------------------------------------------------------------- the checks


def rules_without_samples(rules: list[Rule]) -> list[str]:
    """A message for each (rule, detail-type) that no sample of :data:`SAMPLES` covers."""
    return [
        f"{rule}: no sample for detail-type {detail_type!r} from {rule.sources}; add one to tests/events/aws/ "
        "and to SAMPLES in tests/contracts/test_event_patterns.py"
        for rule in rules
        for detail_type in rule.detail_types or ["<none: the rule does not filter detail-type>"]
        if not any((source, detail_type) in SAMPLES for source in rule.sources)
    ]


def test_every_rule_has_a_documented_sample_of_each_event_it_is_for(rules):
    assert rules, "the platform has no EventBridge rule with an event pattern"
    assert rules_without_samples(rules) == []


def test_a_rule_for_an_event_without_a_sample_is_listed(rules):
    endpoint = {"source": ["aws.sagemaker"], "detail-type": ["SageMaker Endpoint State Change"]}
    (message,) = rules_without_samples([_planted(rules[0], endpoint)])
    assert "(aws.sagemaker / SageMaker Endpoint State Change): no sample for detail-type" in message


KINDS: Final = sorted(SAMPLES)


@pytest.mark.parametrize("kind", KINDS, ids=[f"{s}:{d}" for s, d in KINDS])
def test_rules_match_the_event_they_are_meant_for(rules, producers, kind):
    problems = []
    for rule, case in _cases(rules, kind, producers):
        problems += [f"{rule} does not match {label}" for label, event in case.every if not _verdict(rule, event)]
        if case.any and not any(_verdict(rule, event) for _, event in case.any):
            problems.append(f"{rule} matches none of: {', '.join(label for label, _ in case.any)}")
    assert problems == []


@pytest.mark.parametrize("kind", KINDS, ids=[f"{s}:{d}" for s, d in KINDS])
def test_rules_do_not_match_near_misses(rules, producers, kind):
    problems = [
        f"{rule} matches a near miss: {label}"
        for rule, case in _cases(rules, kind, producers)
        for label, event in case.never
        if _verdict(rule, event)
    ]
    assert problems == []


def test_processing_job_rules_filter_on_fields_of_the_describe_processing_job_response(rules):
    # The event's detail mirrors DescribeProcessingJob; a filter on another field never matches.
    output = botocore.session.get_session().get_service_model("sagemaker").operation_model("DescribeProcessingJob")
    assert output.output_shape is not None
    members = set(output.output_shape.members)
    unknown = [
        f"{rule}: detail.{key}"
        for rule in rules
        if "SageMaker Processing Job State Change" in rule.detail_types
        for key in rule.pattern.get("detail", {})
        if key not in members
    ]
    assert unknown == []


def test_the_execution_sample_and_the_rules_use_describe_executions_fields_only(rules):
    # Step Functions documents the event's detail as DescribeExecution's response.
    model = botocore.session.get_session().get_service_model("stepfunctions")
    output = model.shape_for("DescribeExecutionOutput")
    assert isinstance(output, StructureShape)
    members = set(output.members)
    sample = aws_sample("states_execution_status_change.json")
    assert set(sample["detail"]) <= members, set(sample["detail"]) - members
    assert sample["detail"]["status"] in _enum("stepfunctions", "ExecutionStatus")
    filtered = [
        f"{rule}: detail.{key}"
        for rule in rules
        if trigger_events.EXECUTION_STATUS_CHANGE in rule.detail_types
        for key in rule.pattern.get("detail", {})
        if key not in members
    ]
    assert filtered == []
    assert any(trigger_events.EXECUTION_STATUS_CHANGE in r.detail_types for r in rules)


def test_every_sample_records_where_aws_documents_it():
    readme = (AWS_EVENTS / "README.md").read_text()
    undocumented = [
        p.name for p in sorted(AWS_EVENTS.glob("*.json")) if f"`{p.name}` | https://docs.aws.amazon.com/" not in readme
    ]
    assert undocumented == []


#: The keywords EventBridge Scheduler replaces in a target's input
#: (https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html).
SCHEDULER_CONTEXT: Final = ("schedule-arn", "scheduled-time", "execution-id", "attempt-number")


def test_schedule_inputs_use_only_documented_context_attributes_and_are_events_the_trigger_reads(deployed):
    schedules = 0
    for deployment, st in ic.all_templates(deployed):
        for resource in st.template.get("Resources", {}).values():
            if resource["Type"] != "AWS::Scheduler::Schedule":
                continue
            schedules += 1
            text = deployment.resolve(resource["Properties"]["Target"]["Input"], st)
            used = set(re.findall(r"<aws\.scheduler\.([a-z-]+)>", text))
            assert used <= set(SCHEDULER_CONTEXT), f"{st.name}: undocumented context attributes {used}"
            filled = text.replace("<aws.scheduler.execution-id>", "d32c5kddcf5bb8c3").replace(
                "<aws.scheduler.scheduled-time>", "2022-03-22T18:59:43Z"
            )
            _, parsed = trigger_events.parse_record({"messageId": "m", "body": filled})
            assert isinstance(parsed, trigger_events.ScheduledRetrain), (
                f"{st.name}: the trigger reads {filled} as {parsed}"
            )
    assert schedules > 0


# ------------------------------------------------------------------------------------------ the matcher


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [
        ({"source": ["aws.s3"]}, {"source": "aws.s3"}, True),
        ({"source": ["aws.s3"]}, {"source": "AWS.S3"}, False),
        ({"source": ["aws.s3"]}, {}, False),
        ({"detail": {"n": [5]}}, {"detail": {"n": 5.0}}, True),
        ({"detail": {"n": ["5"]}}, {"detail": {"n": 5}}, False),
        ({"resources": ["arn:b"]}, {"resources": ["arn:a", "arn:b"]}, True),
        ({"detail": {"k": [{"prefix": "datasets/churn/"}]}}, {"detail": {"k": "datasets/churn/x.csv"}}, True),
        ({"detail": {"k": [{"prefix": "datasets/churn/"}]}}, {"detail": {"k": "datasets/churn-v2/x"}}, False),
        ({"detail": {"s": [{"anything-but": ["Executing", "Stopping"]}]}}, {"detail": {"s": "Failed"}}, True),
        ({"detail": {"s": [{"anything-but": "Executing"}]}}, {"detail": {"s": "Executing"}}, False),
        ({"detail": {"s": [{"anything-but": "Executing"}]}}, {"detail": {}}, False),
        ({"detail": {"s": [{"anything-but": {"prefix": "Exec"}}]}}, {"detail": {"s": "Executing"}}, False),
        ({"detail": {"m": [{"exists": True}]}}, {"detail": {"m": "arn"}}, True),
        ({"detail": {"m": [{"exists": False}]}}, {"detail": {"m": "arn"}}, False),
        ({"detail": {"m": [{"exists": False}]}}, {"detail": {}}, True),
        ({"detail": {"m": [{"exists": True}]}}, {"detail": {"m": {"nested": 1}}}, False),
        ({"detail": {"v": [{"numeric": [">", 0, "<=", 5]}]}}, {"detail": {"v": 5}}, True),
        ({"detail": {"v": [{"numeric": [">", 0, "<=", 5]}]}}, {"detail": {"v": 6}}, False),
        ({"detail": {"v": [{"numeric": [">", 0]}]}}, {"detail": {"v": "7"}}, False),
        ({"detail": {"state": {"value": ["ALARM"]}}}, {"detail": {"state": "ALARM"}}, False),
        ({"detail": {"k": [{"suffix": "manifest.checksum"}]}}, {"detail": {"k": "r/b/i/d/manifest.checksum"}}, True),
        ({"detail": {"k": [{"suffix": "manifest.checksum"}]}}, {"detail": {"k": "r/b/i/d/manifest.json"}}, False),
        ({"detail": {"k": [{"suffix": ".csv"}]}}, {"detail": {"k": "a.CSV"}}, False),
        ({"detail": {"k": [{"suffix": ".csv"}]}}, {"detail": {}}, False),
    ],
)
def test_matcher_implements_eventbridge_semantics_and_agrees_with_moto(pattern, event, expected):
    assert matches(pattern, event) is expected
    assert EventPattern.load(json.dumps(pattern)).matches_event(cast(Any, event)) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        {"detail": {"k": [{"suffix": {"equals-ignore-case": ".CSV"}}]}},
        {"detail": {"k": [{"wildcard": "*.csv"}]}},
        {"detail": {"k": ["x", {"equals-ignore-case": "X"}]}},
        {"$or": [{"source": ["a"]}, {"source": ["b"]}]},
    ],
)
def test_matcher_fails_loudly_on_an_operator_it_does_not_implement(pattern):
    with pytest.raises(PatternError, match=r"not implemented"):
        matches(pattern, {"source": "a", "detail": {"k": "x"}})


# ------------------------------------------------------------------------------ the checks can fail


def _planted(rule: Rule, pattern: dict[str, Any]) -> Rule:
    return Rule(rule.deployment, rule.stack, rule.logical_id, pattern, rule.construct)


@pytest.mark.parametrize("kind", KINDS, ids=[f"{s}:{d}" for s, d in KINDS])
def test_a_rule_that_filters_less_matches_a_near_miss(rules, producers, kind):
    for rule, case in _cases(rules, kind, producers):
        # Without its detail filter (or, for a rule with none, its source filter) a near miss gets through.
        loose = {k: v for k, v in rule.pattern.items() if k != ("detail" if "detail" in rule.pattern else "source")}
        planted = _planted(rule, loose)
        assert any(_verdict(planted, event) for _, event in case.never), f"{rule}: no near miss tells the filter apart"


@pytest.mark.parametrize("kind", KINDS, ids=[f"{s}:{d}" for s, d in KINDS])
def test_a_rule_for_another_source_matches_none_of_the_samples(rules, producers, kind):
    for rule, case in _cases(rules, kind, producers):
        planted = _planted(rule, {**rule.pattern, "source": ["cdk-mlops.nobody"]})
        assert not any(_verdict(planted, event) for _, event in [*case.every, *case.any])


def test_an_approval_rule_without_the_package_status_filter_starts_a_delivery_per_state_change(rules, producers):
    # SageMaker sends several state changes for one approval; only the Completed package may start a delivery.
    kind = ("aws.sagemaker", "SageMaker Model Package State Change")
    for rule, case in _cases(rules, kind, producers):
        detail = {k: v for k, v in rule.pattern["detail"].items() if k != "ModelPackageStatus"}
        planted = _planted(rule, {**rule.pattern, "detail": detail})
        leaked = [label for label, event in case.never if _verdict(planted, event)]
        assert leaked == ["Approved while the package is Pending", "Approved while the package is InProgress"]
