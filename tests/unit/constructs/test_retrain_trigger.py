"""RetrainTrigger: routing, batching settings, least privilege, failure handling and validation."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_scheduler as scheduler
from aws_cdk.assertions import Annotations, Capture, Match, Template
from cfnlint.api import ManualArgs, lint

from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.inventory_snapshot import InventorySnapshot
from cdk_mlops.constructs.model_monitor import MonitoringType
from cdk_mlops.constructs.retrain_trigger import (
    DEFAULT_RETRAIN_ON_VIOLATIONS,
    RetrainMode,
    RetrainPolicy,
    RetrainTrigger,
)
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.lambdas.retrain_trigger.settings import Settings
from tests.conftest import load_event
from tests.contracts.event_patterns import matches
from tests.quality import actions_of, cfn_lint_findings, logical_id, nag_findings, statements


@dataclass(frozen=True)
class Built:
    stack: cdk.Stack
    store: VersionedDataStore
    trigger: RetrainTrigger
    template: Template

    def logical_id(self, construct: Any) -> str:
        return self.stack.get_logical_id(construct.node.default_child)

    def own_logical_ids(self) -> set[str]:
        """The logical ids of every CloudFormation resource the trigger defines."""
        return {self.stack.get_logical_id(c) for c in self.trigger.node.find_all() if isinstance(c, cdk.CfnResource)}


@pytest.fixture(scope="module")
def built() -> Built:
    app = cdk.App()
    stack = cdk.Stack(app, "Test")
    store = VersionedDataStore(stack, "Data", datasets=["churn", "images"])
    alarm = cw.Alarm(
        stack,
        "Drift",
        metric=cw.Metric(namespace="aws/sagemaker/Endpoints/data-metrics", metric_name="feature_baseline_drift_x"),
        threshold=0.2,
        evaluation_periods=1,
    )
    trigger = RetrainTrigger(
        stack,
        "Retrain",
        data_store=store,
        datasets=["churn", "images"],
        pipeline_name="cdk-mlops-test-training",
        policy=RetrainPolicy(
            mode=RetrainMode.COMMIT_MARKER,
            marker_name="_DONE",
            key_suffixes=(".csv", "_DONE"),
            cooldown=Duration.hours(2),
        ),
        schedule=scheduler.ScheduleExpression.expression("cron(0 3 ? * MON *)"),
        drift_alarms=[alarm],
    )
    return Built(stack, store, trigger, Template.from_stack(stack))


def test_object_created_events_of_each_dataset_route_to_the_queue(built):
    built.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {
                    "bucket": {"name": [{"Ref": built.logical_id(built.store.bucket)}]},
                    "object": {"key": [{"prefix": "datasets/churn/"}, {"prefix": "datasets/images/"}]},
                },
            },
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [built.logical_id(built.trigger.queue), "Arn"]}})],
        },
    )


def test_only_this_pipelines_terminal_statuses_release_the_lock(built):
    built.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"],
                "detail": {
                    "pipelineArn": [Match.any_value()],
                    "currentPipelineExecutionStatus": ["CompletedWithFailures", "Failed", "Stopped", "Succeeded"],
                },
            }
        },
    )


def test_drift_alarms_and_requests_route_to_the_queue(built):
    built.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.cloudwatch"],
                "detail-type": ["CloudWatch Alarm State Change"],
                "resources": [{"Fn::GetAtt": [Match.string_like_regexp("^Drift"), "Arn"]}],
                "detail": {"state": {"value": ["ALARM"]}},
            }
        },
    )
    built.template.has_resource_properties(
        "AWS::Events::Rule",
        {"EventPattern": {"source": ["cdk-mlops.retrain"], "detail-type": ["Manual Retrain"]}},
    )


def _pattern(built: Built, name: str) -> dict[str, Any]:
    rules = built.template.to_json()["Resources"]
    pattern: dict[str, Any] = rules[built.logical_id(built.trigger.rules[name])]["Properties"]["EventPattern"]
    return pattern


def _violation(monitoring_type: str | None) -> dict[str, Any]:
    event = load_event("model_monitor_violation.json")
    event["detail"].pop("monitoringType", None)
    if monitoring_type is not None:
        event["detail"]["monitoringType"] = monitoring_type
    return event


def test_by_default_data_and_model_quality_violations_retrain_and_the_others_do_not(built):
    assert built.trigger.retrain_on_violations == DEFAULT_RETRAIN_ON_VIOLATIONS
    assert DEFAULT_RETRAIN_ON_VIOLATIONS == (MonitoringType.DATA_QUALITY, MonitoringType.MODEL_QUALITY)
    pattern = _pattern(built, "Violations")
    assert pattern == {
        "source": ["cdk-mlops.monitor"],
        "detail-type": ["Model Monitor Violation"],
        "detail": {"monitoringType": ["DataQuality", "ModelQuality"]},
    }
    retrained = {t for t in MonitoringType if matches(pattern, _violation(t.value))}
    assert retrained == {MonitoringType.DATA_QUALITY, MonitoringType.MODEL_QUALITY}
    # An event without a type (not one the monitor publishes) retrains nothing.
    assert not matches(pattern, _violation(None))
    # Manual requests have their own rule; a violation never matches it, nor a request the violation rule.
    manual = load_event("manual_retrain.json")
    assert matches(_pattern(built, "Requested"), manual)
    assert not matches(pattern, manual)
    assert not any(matches(_pattern(built, "Requested"), _violation(t.value)) for t in MonitoringType)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ([MonitoringType.MODEL_BIAS], ["ModelBias"]),
        ({"ModelExplainability", MonitoringType.DATA_QUALITY}, ["DataQuality", "ModelExplainability"]),
        (tuple(MonitoringType), ["DataQuality", "ModelQuality", "ModelBias", "ModelExplainability"]),
    ],
    ids=["bias-only", "a-set-with-a-value", "all"],
)
def test_retrain_on_violations_chooses_the_types_that_retrain(setting, expected):
    trigger = make(retrain_on_violations=setting)
    rules = Template.from_stack(cdk.Stack.of(trigger)).to_json()["Resources"]
    rule = rules[logical_id(trigger.rules["Violations"])]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail"] == {"monitoringType": expected}
    assert [t.value for t in trigger.retrain_on_violations] == expected
    assert {t.value for t in MonitoringType if matches(pattern, _violation(t.value))} == set(expected)


def test_no_violation_retrains_when_retrain_on_violations_is_empty():
    trigger = make(retrain_on_violations=[])
    assert trigger.retrain_on_violations == ()
    assert sorted(trigger.rules) == ["DataChanged", "PipelineFinished", "Requested"]
    resources = Template.from_stack(cdk.Stack.of(trigger)).to_json()["Resources"].values()
    patterns = [r["Properties"]["EventPattern"] for r in resources if r["Type"] == "AWS::Events::Rule"]
    assert not any("cdk-mlops.monitor" in p["source"] for p in patterns)


def test_schedule_sends_a_scheduled_retrain_message_for_the_first_dataset(built):
    target = Capture()
    built.template.has_resource_properties(
        "AWS::Scheduler::Schedule", {"ScheduleExpression": "cron(0 3 ? * MON *)", "Target": target}
    )
    message = json.loads(target.as_object()["Input"])
    assert message["source"] == "cdk-mlops.retrain"
    assert message["detail-type"] == "Scheduled Retrain"
    assert message["detail"] == {"dataset": "churn", "scheduledTime": "<aws.scheduler.scheduled-time>", "always": False}
    assert message["id"] == "<aws.scheduler.execution-id>"


def test_handler_consumes_batches_and_reports_partial_failures(built):
    built.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "BatchSize": 10000,
            "MaximumBatchingWindowInSeconds": 60,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": 2},
        },
    )


def test_failed_records_end_in_an_encrypted_dead_letter_queue_with_an_alarm(built):
    dlq = built.logical_id(built.trigger.dead_letter_queue)
    built.template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "VisibilityTimeout": 900,
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]}, "maxReceiveCount": 10},
            "KmsMasterKeyId": Match.any_value(),
        },
    )
    built.template.has_resource_properties("AWS::SQS::Queue", {"MessageRetentionPeriod": 1209600})
    built.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}],
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
        },
    )


def test_function_environment_carries_the_policy(built):
    env = Capture()
    built.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "cdk_mlops.lambdas.retrain_trigger.handler.handler",
            "Runtime": "python3.14",
            "ReservedConcurrentExecutions": 2,
            "Environment": {"Variables": env},
        },
    )
    variables = env.as_object()
    assert variables["MODE"] == "COMMIT_MARKER"
    assert variables["MARKER_NAME"] == "_DONE"
    assert variables["KEY_SUFFIXES"] == ".csv,_DONE"
    assert variables["COOLDOWN_SECONDS"] == "7200"
    assert json.loads(variables["DATASETS"]) == ["churn", "images"]
    assert variables["PIPELINE_NAME"] == "cdk-mlops-test-training"


def test_state_table_has_ttl_recovery_and_its_own_key(built):
    built.template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": Match.object_like({"SSEEnabled": True, "SSEType": "KMS"}),
        },
    )


def test_handler_may_start_only_its_pipeline(built):
    statements = Capture()
    built.template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": built.logical_id(built.trigger.role)}],
            "PolicyDocument": {"Statement": statements},
        },
    )
    sagemaker = [s for s in statements.as_array() if "sagemaker:StartPipelineExecution" in json.dumps(s["Action"])]
    assert len(sagemaker) == 1
    assert sorted(sagemaker[0]["Action"]) == ["sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"]
    assert "pipeline/cdk-mlops-test-training" in json.dumps(sagemaker[0]["Resource"])
    actions = json.dumps([s["Action"] for s in statements.as_array()])
    assert '"*"' not in actions
    assert "dynamodb:Scan" not in actions
    assert "s3:DeleteObject" not in actions


def test_stack_passes_cfn_lint_and_cdk_nag(built):
    assert cfn_lint_findings(built.template.to_json()) == []
    assert nag_findings(built.stack) == []


def test_the_triggers_resources_have_no_cfn_lint_warnings(built):
    # e.g. W3005: a DependsOn on the role the function already names with Fn::GetAtt
    matches = lint(json.dumps(built.template.to_json()), config=ManualArgs(regions=["us-east-1"]))
    own = built.own_logical_ids()
    findings = [
        f"{m.rule.id} {m.path_string}: {m.message}"
        for m in matches
        if m.rule.id[0] in "WE" and len(m.path) > 1 and m.path[0] == "Resources" and m.path[1] in own
    ]
    assert findings == []


def test_the_function_still_waits_for_its_role_policy(built):
    function = built.template.to_json()["Resources"][built.logical_id(built.trigger.function)]
    policy = built.trigger.role.node.find_child("DefaultPolicy").node.default_child
    assert function["DependsOn"] == [built.stack.get_logical_id(policy)]


# --- the champion ---------------------------------------------------------------------------------------


def test_function_is_told_the_model_package_group_of_its_pipeline(built):
    env = Capture()
    built.template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": "cdk_mlops.lambdas.retrain_trigger.handler.handler", "Environment": {"Variables": env}},
    )
    # the group TrainingPipeline creates for this pipeline name by default
    assert env.as_object()["MODEL_PACKAGE_GROUP_NAME"] == "cdk-mlops-test-training-models"


def _resources(statement: dict[str, Any]) -> str:
    return json.dumps(statement["Resource"])


def test_handler_may_read_the_champion_of_its_own_group_and_artifacts_only(built):
    found = statements(built.template, built.trigger.role)
    registry = [s for s in found if any(a.startswith("sagemaker:") and "ModelPackage" in a for a in actions_of(s))]
    assert {a for s in registry for a in actions_of(s)} == {
        "sagemaker:ListModelPackages",
        "sagemaker:DescribeModelPackage",
    }
    for statement in registry:
        assert "model-package/cdk-mlops-test-training-models/*" in _resources(statement)
        # Listing is also authorized on the group; describing a version only on the group's versions.
        if "model-package-group/" in _resources(statement):
            assert actions_of(statement) == ["sagemaker:ListModelPackages"]
            assert ':model-package-group/cdk-mlops-test-training-models"' in _resources(statement)
    # evaluation.json is read from the pipeline's artifacts prefix, decrypted with the store's key
    reads = [s for s in found if "s3:GetObject*" in actions_of(s)]
    assert any("/artifacts/cdk-mlops-test-training/*" in _resources(s) for s in reads)
    assert not any('/artifacts/*"' in _resources(s) for s in reads)
    store_key = built.logical_id(built.store.encryption_key)
    assert any("kms:Decrypt" in actions_of(s) and store_key in _resources(s) for s in found)


def test_the_function_defaults_and_what_follows_from_them(built):
    built.template.has_resource_properties("AWS::Lambda::Function", {"Timeout": 120, "MemorySize": 512})
    env = Capture()
    built.template.has_resource_properties("AWS::Lambda::Function", {"Environment": {"Variables": env}})
    assert env.as_object()["LEASE_SECONDS"] == "300"


def test_a_longer_timeout_and_more_memory_move_the_visibility_timeout_and_the_lease():
    trigger = make(function_timeout=Duration.minutes(10), function_memory_size=2048)
    template = Template.from_stack(cdk.Stack.of(trigger))
    template.has_resource_properties("AWS::Lambda::Function", {"Timeout": 600, "MemorySize": 2048})
    env = Capture()
    template.has_resource_properties("AWS::Lambda::Function", {"Environment": {"Variables": env}})
    # The lease outlasts the function; a failed batch reappears after 6 x the timeout + the batching window.
    assert env.as_object()["LEASE_SECONDS"] == "660"
    template.has_resource_properties("AWS::SQS::Queue", {"VisibilityTimeout": 6 * 600 + 60})
    # The handler's settings reader accepts the lease it is given (it bounds it at an hour).
    required = ("PIPELINE_NAME", "DATA_BUCKET", "STATE_TABLE", "QUEUE_URL", "MODEL_PACKAGE_GROUP_NAME")
    environ = {**dict.fromkeys(required, "x"), "DATASETS": '["churn"]', "LEASE_SECONDS": "960"}
    assert Settings.from_env(environ).lease.total_seconds() == 960  # the longest timeout's lease


def test_group_and_artifacts_prefix_can_be_named():
    stack = cdk.Stack(cdk.App(), "Named")
    store = VersionedDataStore(stack, "Data")
    trigger = RetrainTrigger(
        stack,
        "Retrain",
        data_store=store,
        datasets=["churn"],
        pipeline_name="train",
        model_package_group_name="shared-models",
        artifacts_prefix="artifacts/shared/",
    )
    template = Template.from_stack(stack)
    found = statements(template, trigger.role)
    assert any("model-package/shared-models/*" in _resources(s) for s in found)
    assert any("/artifacts/shared/*" in _resources(s) for s in found if "s3:GetObject*" in actions_of(s))
    assert trigger.model_package_group_name == "shared-models"


def _asset_directory(trigger: RetrainTrigger) -> Path:
    asset = trigger.function.node.find_child("Code")
    assert isinstance(asset, s3_assets.Asset)
    stage = cdk.Stage.of(trigger)
    assert stage is not None
    return Path(stage.outdir) / asset.asset_path


def test_the_function_asset_runs_the_handler_with_nothing_but_its_own_files(built):
    # GIVEN the synthesized asset (the stack was synthesized by the fixture's Template)
    directory = _asset_directory(built.trigger)
    assert (directory / "cdk_mlops" / "champion.py").is_file()
    # WHEN Python imports the handler from the asset alone (Powertools from the virtualenv, as from the layer)
    code = (
        "import sys, cdk_mlops.lambdas.retrain_trigger.handler as h, aws_lambda_powertools as pt; "
        "mods = [m.__file__ for n, m in sys.modules.items() if n.startswith('cdk_mlops') and m.__file__]; "
        "print(all(f.startswith(sys.argv[1]) for f in mods), 'aws_cdk' in sys.modules, "
        "pt.__file__.startswith(sys.argv[1]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(directory)], cwd=directory, capture_output=True, text=True, check=True
    )
    # THEN every cdk_mlops module came from the asset, no CDK code was loaded, and Powertools is
    # not in the asset: the function gets it from its layer
    assert out.stdout.split() == ["True", "False", "False"]
    assert not list(directory.rglob("aws_lambda_powertools*"))


# --- resource policies: confused deputy -------------------------------------------------------------------


def _service_statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [s for s in document["Statement"] if isinstance(s.get("Principal"), dict) and "Service" in s["Principal"]]


def test_every_resource_policy_that_trusts_a_service_names_the_source(built):
    resources = built.template.to_json()["Resources"]
    own = built.own_logical_ids()
    documents = [
        resource["Properties"].get("PolicyDocument") or resource["Properties"].get("KeyPolicy")
        for logical_id, resource in resources.items()
        if logical_id in own and resource["Type"] in ("AWS::SQS::QueuePolicy", "AWS::KMS::Key")
    ]
    trusting = [s for document in documents if document for s in _service_statements(document)]
    assert trusting, "EventBridge must be allowed to send to the queue"
    for statement in trusting:
        condition = statement.get("Condition", {})
        keys = {key for operator in condition.values() for key in operator}
        assert keys & {"aws:SourceArn", "aws:SourceAccount"}, statement


def test_eventbridge_may_send_to_the_queue_only_for_the_triggers_rules(built):
    policy = Capture()
    built.template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {"Queues": [{"Ref": built.logical_id(built.trigger.queue)}], "PolicyDocument": policy},
    )
    [statement] = _service_statements(policy.as_object())
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    rules = [{"Fn::GetAtt": [built.logical_id(rule), "Arn"]} for rule in built.trigger.rules.values()]
    assert len(rules) == 5
    sources = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sorted(map(json.dumps, sources)) == sorted(map(json.dumps, rules))


def test_eventbridge_may_use_the_key_only_for_this_account(built):
    key = built.template.to_json()["Resources"][built.logical_id(built.trigger.encryption_key)]
    [statement] = _service_statements(key["Properties"]["KeyPolicy"])
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_an_imported_key_gets_a_warning_naming_the_statement_it_needs():
    stack = cdk.Stack(cdk.App(), "Imported")
    store = VersionedDataStore(stack, "Data")
    key = kms.Key.from_key_arn(
        stack, "Key", "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    )
    RetrainTrigger(stack, "Retrain", data_store=store, datasets=["churn"], pipeline_name="train", encryption_key=key)
    Annotations.from_stack(stack).has_warning(
        "/Imported/Retrain",
        Match.string_like_regexp(
            "imported encryption_key.*allow events.amazonaws.com kms:Decrypt and kms:GenerateDataKey.*aws:SourceAccount"
        ),
    )


def test_the_scheduler_may_assume_the_schedule_role_only_for_this_account(built):
    role = built.template.to_json()["Resources"][built.logical_id(built.trigger.node.find_child("ScheduleRole"))]
    [statement] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def make(**kwargs: Any) -> RetrainTrigger:
    stack = cdk.Stack(cdk.App(), "Bad")
    store = VersionedDataStore(stack, "Data")
    args: dict[str, Any] = {"data_store": store, "datasets": ["churn"], "pipeline_name": "train", **kwargs}
    return RetrainTrigger(stack, "Retrain", **args)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"datasets": []}, "datasets is empty; name at least one dataset"),
        ({"datasets": ["a", "a"]}, "datasets ['a', 'a'] repeats a name"),
        ({"datasets": ["../x"]}, "datasets: "),
        ({"pipeline_name": "Train"}, "pipeline_name 'Train' must be a non-empty lower-case name"),
        ({"max_receive_count": 0}, "max_receive_count (0) must be between 1 and 1000"),
        ({"policy": RetrainPolicy(quiet_period=Duration.days(8))}, "quiet_period (691200 s) must be between 0 and 7"),
        ({"policy": RetrainPolicy(cooldown=Duration.days(31))}, "cooldown (2678400 s) must be between 0 and 30 days"),
        ({"policy": RetrainPolicy(marker_name="a/_SUCCESS")}, "marker_name 'a/_SUCCESS' must be a file name"),
        ({"policy": RetrainPolicy(min_objects=-1)}, "min_objects (-1) must be a whole number >= 0"),
        ({"policy": RetrainPolicy(key_suffixes=("a,b",))}, "key_suffixes ['a,b'] must be non-empty"),
        ({"model_package_group_name": "Models_1"}, "model_package_group_name 'Models_1' is not valid"),
        ({"artifacts_prefix": "artifacts/train"}, "artifacts_prefix 'artifacts/train' must be a key prefix ending"),
        ({"function_timeout": Duration.seconds(20)}, "function_timeout (20 seconds) must be from 30 s to 15 min"),
        ({"function_timeout": Duration.minutes(16)}, "function_timeout (16 minutes) must be from 30 s to 15 min"),
        ({"function_memory_size": 64}, "function_memory_size (64) must be a whole number of MiB from 128 to 10,240"),
        ({"function_memory_size": 10_241}, "function_memory_size (10241) must be a whole number of MiB"),
        (
            {"retrain_on_violations": ["DataQuality", "Bias"]},
            "retrain_on_violations: 'Bias' is not a monitoring type; use MonitoringType.DATA_QUALITY, "
            "MonitoringType.MODEL_QUALITY, MonitoringType.MODEL_BIAS, MonitoringType.MODEL_EXPLAINABILITY",
        ),
        (
            {"retrain_on_violations": MonitoringType.MODEL_BIAS},
            "retrain_on_violations must be a collection of MonitoringType, got <MonitoringType.MODEL_BIAS: "
            "'ModelBias'>; wrap one type in a list",
        ),
        ({"retrain_on_violations": 3}, "retrain_on_violations must be a collection of MonitoringType, got 3"),
        (
            {"retrain_on_violations": [MonitoringType.DATA_QUALITY, "DataQuality"]},
            "retrain_on_violations repeats MonitoringType.DATA_QUALITY; list each type once",
        ),
    ],
)
def test_invalid_settings_name_the_construct_value_and_fix(kwargs, expected):
    with pytest.raises(ConfigurationError) as caught:
        make(**kwargs)
    assert str(caught.value).startswith("[Bad/Retrain]")
    assert any(expected in p for p in caught.value.problems), caught.value.problems


def test_tokens_are_not_rejected():
    stack = cdk.Stack(cdk.App(), "Tokens")
    store = VersionedDataStore(stack, "Data")
    name = cdk.Fn.select(0, ["train"])
    trigger = RetrainTrigger(stack, "Retrain", data_store=store, datasets=["churn"], pipeline_name=name)
    assert cdk.Token.is_unresolved(trigger.pipeline_arn)


# --------------------------------------------------------------------------- versions from InventorySnapshot


@dataclass(frozen=True)
class Snapshotted:
    stack: cdk.Stack
    snapshots: InventorySnapshot
    trigger: RetrainTrigger
    template: Template


@pytest.fixture(scope="module")
def snapshotted() -> Snapshotted:
    """``events`` is versioned by an InventorySnapshot, ``churn`` is listed as before."""
    stack = cdk.Stack(cdk.App(), "Snapshotted")
    store = VersionedDataStore(stack, "Data", datasets=["churn", "events"])
    snapshots = InventorySnapshot(stack, "Snapshots", data_store=store, datasets=["events"])
    trigger = RetrainTrigger(
        stack,
        "Retrain",
        data_store=store,
        datasets=["churn", "events"],
        snapshot=snapshots,
        pipeline_name="cdk-mlops-test-training",
    )
    return Snapshotted(stack, snapshots, trigger, Template.from_stack(stack))


def _environment(template: Template) -> dict[str, Any]:
    env = Capture()
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": "cdk_mlops.lambdas.retrain_trigger.handler.handler", "Environment": {"Variables": env}},
    )
    return dict(env.as_object())


def test_a_snapshotted_dataset_is_named_to_the_handler_with_its_state_machine(snapshotted):
    variables = _environment(snapshotted.template)
    machine = snapshotted.stack.get_logical_id(snapshotted.snapshots.state_machine.node.default_child)
    assert variables["SNAPSHOT_STATE_MACHINE_ARN"] == {"Ref": machine}
    assert json.loads(variables["SNAPSHOT_DATASETS"]) == ["events"]
    assert snapshotted.trigger.snapshotted_datasets == ("events",)
    # The handler reads what the construct writes.
    resolved = {k: v if isinstance(v, str) else "x" for k, v in variables.items()}
    resolved["SNAPSHOT_STATE_MACHINE_ARN"] = "arn:aws:states:us-east-1:123456789012:stateMachine:snapshots"
    settings = Settings.from_env(resolved)
    assert settings.snapshotted("events")
    assert not settings.snapshotted("churn")


def test_only_the_snapshot_state_machines_successes_route_and_only_listed_datasets_objects(snapshotted):
    rules = snapshotted.trigger.rules
    machine_arn = "arn:aws:states:us-east-1:123456789012:stateMachine:snapshots"
    resources = snapshotted.template.to_json()["Resources"]

    def pattern_of(name: str) -> dict[str, Any]:
        found: dict[str, Any] = resources[snapshotted.stack.get_logical_id(rules[name].node.default_child)]
        return copy.deepcopy(found["Properties"]["EventPattern"])

    pattern = pattern_of("SnapshotFinished")
    machine = snapshotted.stack.get_logical_id(snapshotted.snapshots.state_machine.node.default_child)
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": machine}]
    pattern["detail"]["stateMachineArn"] = [machine_arn]
    event = load_event("aws/states_execution_status_change.json")
    event["detail"]["stateMachineArn"] = machine_arn
    assert matches(pattern, event)
    for field, value in (("status", "FAILED"), ("status", "RUNNING"), ("stateMachineArn", machine_arn + "-2")):
        near = copy.deepcopy(event)
        near["detail"][field] = value
        assert not matches(pattern, near), (field, value)
    data = pattern_of("DataChanged")
    assert data["detail"]["object"]["key"] == [{"prefix": "datasets/churn/"}]


def test_the_handler_writes_manifests_of_listed_datasets_only_and_reads_snapshot_indexes(snapshotted):
    found = statements(snapshotted.template, snapshotted.trigger.role)

    def resources_of(action: str) -> str:
        return json.dumps([st["Resource"] for st in found if action in actions_of(st)])

    writes, reads = resources_of("s3:PutObject"), resources_of("s3:GetObject*")
    assert "manifests/churn/" in writes
    assert "manifests/events" not in writes
    assert "datasets/churn/" in reads
    assert "manifests/events/" in reads  # the newest index, when a status change was lost
    assert "datasets/events" not in reads


def test_a_snapshotted_trigger_passes_cfn_lint_and_cdk_nag(snapshotted):
    assert cfn_lint_findings(snapshotted.template.to_json()) == []
    assert nag_findings(snapshotted.stack) == []


def _with_snapshot(**kwargs: Any) -> RetrainTrigger:
    stack = cdk.Stack(cdk.App(), "Bad")
    store = VersionedDataStore(stack, "Data", datasets=["churn", "events"])
    other = VersionedDataStore(stack, "Other", datasets=["churn"])
    snapshots = {
        "events": InventorySnapshot(stack, "Events", data_store=store, datasets=["events"]),
        "other": InventorySnapshot(stack, "OtherSnapshots", data_store=other, datasets=["churn"]),
    }
    choice = kwargs.pop("snapshot")
    args: dict[str, Any] = {"data_store": store, "datasets": ["churn"], "pipeline_name": "train", **kwargs}
    return RetrainTrigger(stack, "Retrain", snapshot=snapshots.get(choice, choice), **args)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"snapshot": "other"}, "snapshot Bad/OtherSnapshots snapshots another data store's bucket"),
        ({"snapshot": "events"}, "snapshot Bad/Events snapshots ['events'], none of datasets ['churn']"),
        ({"snapshot": object()}, "snapshot must be InventorySnapshot or None, got object"),
        (
            {"snapshot": "events", "datasets": ["events"], "policy": RetrainPolicy(min_objects=10)},
            "policy.min_objects (10) counts new objects, but every dataset is versioned by snapshot",
        ),
    ],
    ids=["another-store", "no-dataset", "not-a-snapshot", "threshold"],
)
def test_a_wrong_snapshot_names_what_is_wrong(kwargs, expected):
    with pytest.raises(ConfigurationError) as caught:
        _with_snapshot(**kwargs)
    assert any(expected in p for p in caught.value.problems), caught.value.problems
