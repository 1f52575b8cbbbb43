"""RetrainTrigger: routing, batching settings, least privilege, failure handling and validation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_scheduler as scheduler
from aws_cdk.assertions import Capture, Match, Template

from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.retrain_trigger import RetrainMode, RetrainPolicy, RetrainTrigger
from cdk_mlops.errors import ConfigurationError
from tests.quality import cfn_lint_errors, nag_findings


@dataclass(frozen=True)
class Built:
    stack: cdk.Stack
    store: VersionedDataStore
    trigger: RetrainTrigger
    template: Template

    def logical_id(self, construct: Any) -> str:
        return self.stack.get_logical_id(construct.node.default_child)


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
        {
            "EventPattern": {
                "source": ["cdk-mlops.retrain", "cdk-mlops.monitor"],
                "detail-type": ["Manual Retrain", "Model Monitor Violation"],
            }
        },
    )


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
    assert cfn_lint_errors(built.template.to_json()) == []
    assert nag_findings(built.stack) == []


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
