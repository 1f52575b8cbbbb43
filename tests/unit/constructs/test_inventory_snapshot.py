"""InventorySnapshot: the S3 Inventory, the report bucket, the Distributed Map and its functions."""

from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.inventory_snapshot import (
    DEFAULT_WORKER_MEMORY_SIZE,
    INVENTORY_ID,
    REPORTS_PREFIX,
    InventorySnapshot,
)
from cdk_mlops.errors import ConfigurationError
from tests.quality import (
    actions_of,
    cfn_lint_findings,
    logical_id,
    nag_findings,
    state_machine_definition,
    state_machine_schema_findings,
    statements,
)

EU = cdk.Environment(account="123456789012", region="eu-west-1")


@dataclass(frozen=True)
class Built:
    stack: cdk.Stack
    store: VersionedDataStore
    snapshots: InventorySnapshot
    template: Template

    @property
    def json(self) -> dict[str, Any]:
        return dict(self.template.to_json())

    def resource(self, construct: Any) -> dict[str, Any]:
        resource: dict[str, Any] = self.json["Resources"][logical_id(construct)]
        return resource

    def definition(self) -> dict[str, Any]:
        return state_machine_definition(self.json, logical_id(self.snapshots.state_machine))


def build(**overrides: Any) -> Built:
    stack = cdk.Stack(cdk.App(), "Test", env=EU)
    store = VersionedDataStore(stack, "Data", datasets=["events", "churn"])
    topic = sns.Topic(stack, "Alarms", enforce_ssl=True)
    options: dict[str, Any] = {"data_store": store, "datasets": ["events"], "alarm_topic": topic, **overrides}
    snapshots = InventorySnapshot(stack, "Snapshots", **options)
    return Built(stack, store, snapshots, Template.from_stack(stack))


@pytest.fixture(scope="module")
def built() -> Built:
    return build()


def test_the_stack_passes_cfn_lint_and_cdk_nag(built):
    assert cfn_lint_findings(built.json, region="eu-west-1") == []
    assert nag_findings(built.stack) == []


# --- S3 Inventory -------------------------------------------------------------------------------


def test_the_data_bucket_lists_every_version_of_the_datasets_daily_as_csv_into_the_report_bucket(built):
    (inventory,) = built.resource(built.store.bucket)["Properties"]["InventoryConfigurations"]
    assert inventory == {
        "Id": INVENTORY_ID,
        "Enabled": True,
        "IncludedObjectVersions": "All",
        "ScheduleFrequency": "Daily",
        "Prefix": "datasets/",
        "OptionalFields": ["Size", "ETag", "LastModifiedDate"],
        "Destination": {
            "BucketArn": {"Fn::GetAtt": [logical_id(built.snapshots.report_bucket), "Arn"]},
            "Format": "CSV",
            "Prefix": REPORTS_PREFIX.rstrip("/"),
        },
    }


def test_only_s3_delivering_this_buckets_inventory_may_write_reports(built):
    policy = built.template.find_resources("AWS::S3::BucketPolicy")
    (statement,) = [
        s
        for p in policy.values()
        if p["Properties"]["Bucket"] == {"Ref": logical_id(built.snapshots.report_bucket)}
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Principal") == {"Service": "s3.amazonaws.com"}
    ]
    assert statement["Action"] == "s3:PutObject"
    assert statement["Condition"]["ArnLike"] == {
        "aws:SourceArn": {"Fn::GetAtt": [logical_id(built.store.bucket), "Arn"]}
    }


def test_the_report_bucket_is_encrypted_with_the_stores_key_which_s3_may_use_for_this_account_only(built):
    bucket = built.resource(built.snapshots.report_bucket)["Properties"]
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {
        "Fn::GetAtt": [logical_id(built.store.encryption_key), "Arn"]
    }
    key_policy = built.resource(built.store.encryption_key)["Properties"]["KeyPolicy"]["Statement"]
    (delivery,) = [s for s in key_policy if s.get("Sid") == "S3InventoryDelivery"]
    assert delivery["Principal"] == {"Service": "s3.amazonaws.com"}
    assert delivery["Action"] == "kms:GenerateDataKey"
    assert delivery["Condition"] == {"StringEquals": {"aws:SourceAccount": EU.account}}


def test_reports_expire_after_the_retention(built):
    rules = built.resource(built.snapshots.report_bucket)["Properties"]["LifecycleConfiguration"]["Rules"]
    assert [(r["ExpirationInDays"], r["NoncurrentVersionExpiration"]["NoncurrentDays"]) for r in rules] == [(14, 1)]


# --- the state machine ------------------------------------------------------------------------


def test_the_definition_is_valid_against_the_published_states_language_schema(built):
    definition = built.definition()
    assert state_machine_schema_findings(definition, region="eu-west-1") == []
    # The check can fail: a field the States Language does not have is reported.
    broken = copy.deepcopy(definition)
    broken["States"]["Shards"]["ItemsReader"] = broken["States"]["Shards"]["ItemReader"]
    assert any("ItemsReader" in f for f in state_machine_schema_findings(broken, region="eu-west-1"))


def test_plan_then_a_distributed_map_over_the_work_list_then_finalize(built):
    definition = built.definition()
    assert definition["StartAt"] == "Plan"
    plan, shards, finalize = (definition["States"][n] for n in ("Plan", "Shards", "Finalize"))
    assert (plan["Next"], shards["Next"], finalize.get("End")) == ("Shards", "Finalize", True)
    assert shards["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    reader = shards["ItemReader"]
    assert reader["Resource"] == "arn:aws:states:::s3:getObject"
    assert reader["ReaderConfig"] == {"InputType": "JSON"}
    assert reader["Parameters"]["Key.$"] == "$.plan.files_key"
    assert shards["MaxConcurrency"] == 100
    # The results go to S3, never into the execution's state (256 KiB at most).
    assert shards["ResultPath"] is None
    assert shards["ResultWriter"]["Parameters"]["Prefix"] == "map-runs"
    assert shards["ItemSelector"] == {
        "file_index.$": "$$.Map.Item.Value.file_index",
        "key.$": "$$.Map.Item.Value.key",
        "bucket.$": "$$.Map.Item.Value.bucket",
        "md5.$": "$$.Map.Item.Value.md5",
        "plan.$": "$.plan",
    }
    assert finalize["Parameters"]["Payload.$"] == "$.plan"


def test_every_task_retries_lambdas_transient_errors_and_nothing_else(built):
    definition = built.definition()
    tasks = [definition["States"]["Plan"], definition["States"]["Finalize"]]
    tasks.append(definition["States"]["Shards"]["ItemProcessor"]["States"]["Shard"])
    for task in tasks:
        (retry,) = task["Retry"]
        assert "Lambda.TooManyRequestsException" in retry["ErrorEquals"]
        assert "States.ALL" not in retry["ErrorEquals"]
        assert retry["MaxAttempts"] == 6


def test_the_state_machine_logs_everything_and_traces(built):
    props = built.resource(built.snapshots.state_machine)["Properties"]
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["TracingConfiguration"] == {"Enabled": True}


def test_a_failed_execution_or_an_unstarted_snapshot_alarms_into_the_topic(built):
    topic = [{"Ref": logical_id(built.stack.node.find_child("Alarms"))}]
    alarm = built.resource(built.snapshots.failed_alarm)["Properties"]
    assert alarm["AlarmActions"] == topic
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert names == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
    ((dataset, rule),) = built.snapshots.report_rules.items()
    unstarted = built.resource(built.snapshots.unstarted_alarms[dataset])["Properties"]
    assert (unstarted["Namespace"], unstarted["MetricName"]) == ("AWS/Events", "FailedInvocations")
    assert unstarted["Dimensions"] == [{"Name": "RuleName", "Value": {"Ref": logical_id(rule)}}]
    assert unstarted["AlarmActions"] == topic


# --- a snapshot per delivered report ------------------------------------------------------------


def test_a_delivered_report_starts_a_snapshot_of_each_dataset(built):
    (rule,) = built.snapshots.report_rules.values()
    props = built.resource(rule)["Properties"]
    assert props["EventPattern"] == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [{"Ref": logical_id(built.snapshots.report_bucket)}]},
            "object": {"key": [{"suffix": "manifest.checksum"}]},
        },
    }
    (target,) = props["Targets"]
    assert target["Arn"] == {"Ref": logical_id(built.snapshots.state_machine)}
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {"detail-object-key": "$.detail.object.key"}
    assert transformer["InputTemplate"] == {
        "Fn::Join": [
            "",
            [
                '{"dataset":"events","report":"s3://',
                {"Ref": logical_id(built.snapshots.report_bucket)},
                '/<detail-object-key>"}',
            ],
        ]
    }
    # EventBridge retries a start for a day before it gives up (and the alarm says so).
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
    bucket = built.resource(built.snapshots.report_bucket)["Properties"]
    assert bucket["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}


def test_without_a_snapshot_per_report_there_is_no_rule_and_no_event_from_the_bucket():
    quiet = build(snapshot_each_report=False)
    assert quiet.snapshots.report_rules == {}
    assert quiet.snapshots.unstarted_alarms == {}
    assert quiet.template.find_resources("AWS::Events::Rule") == {}
    assert "NotificationConfiguration" not in quiet.resource(quiet.snapshots.report_bucket)["Properties"]


# --- the functions ----------------------------------------------------------------------------


def test_each_function_runs_a_handler_of_the_shipped_module(built):
    for function, name in (
        (built.snapshots.plan_function, "plan"),
        (built.snapshots.shard_function, "shard"),
        (built.snapshots.finalize_function, "finalize"),
    ):
        handler = built.resource(function)["Properties"]["Handler"]
        module, _, attribute = handler.rpartition(".")
        assert attribute == name
        assert callable(getattr(importlib.import_module(module), attribute))


def test_the_worker_has_the_memory_and_timeout_of_the_settings():
    default = build()
    assert default.resource(default.snapshots.shard_function)["Properties"]["MemorySize"] == DEFAULT_WORKER_MEMORY_SIZE
    tuned = build(worker_memory_size=4096, worker_timeout=cdk.Duration.minutes(5), max_concurrency=500)
    props = tuned.resource(tuned.snapshots.shard_function)["Properties"]
    assert (props["MemorySize"], props["Timeout"]) == (4096, 300)
    assert tuned.definition()["States"]["Shards"]["MaxConcurrency"] == 500


def test_the_functions_know_both_buckets_and_where_the_reports_land(built):
    variables = built.resource(built.snapshots.plan_function)["Properties"]["Environment"]["Variables"]
    assert variables["DATA_BUCKET"] == {"Ref": logical_id(built.store.bucket)}
    assert variables["REPORT_BUCKET"] == {"Ref": logical_id(built.snapshots.report_bucket)}
    assert variables["INVENTORY_PREFIX"] == {
        "Fn::Join": ["", ["reports/", {"Ref": logical_id(built.store.bucket)}, f"/{INVENTORY_ID}/"]]
    }


def test_the_functions_write_only_the_snapshotted_datasets_manifests_and_read_no_data(built):
    data_arn = {"Fn::GetAtt": [logical_id(built.store.bucket), "Arn"]}
    resources: list[Any] = []
    for statement in statements(built.template, built.snapshots.role):
        if any(a.startswith("s3:") for a in actions_of(statement)):
            found = statement["Resource"]
            resources += found if isinstance(found, list) else [found]
    joined = [r["Fn::Join"][1] for r in resources if isinstance(r, dict) and "Fn::Join" in r]
    data_objects = {parts[1] for parts in joined if parts[0] == data_arn}
    assert data_objects == {"/manifests/events/*"}


def test_the_state_machine_reaches_only_the_report_bucket(built):
    role = built.snapshots.state_machine.role
    data = logical_id(built.store.bucket)
    for statement in statements(built.template, role):
        if any(a.startswith("s3:") for a in actions_of(statement)):
            assert data not in str(statement["Resource"]), statement


# --- in a VPC ---------------------------------------------------------------------------------


def test_in_a_vpc_the_functions_run_in_its_subnets_with_https_out_only():
    stack = cdk.Stack(cdk.App(), "Test", env=EU)
    vpc = ec2.Vpc(
        stack,
        "Vpc",
        max_azs=2,
        nat_gateways=0,
        subnet_configuration=[ec2.SubnetConfiguration(name="jobs", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)],
    )
    store = VersionedDataStore(stack, "Data", datasets=["events"])
    snapshots = InventorySnapshot(stack, "Snapshots", data_store=store, datasets=["events"], vpc=vpc)
    template = Template.from_stack(stack)
    (group,) = snapshots.security_groups
    for function in (snapshots.plan_function, snapshots.shard_function, snapshots.finalize_function):
        config = template.to_json()["Resources"][logical_id(function)]["Properties"]["VpcConfig"]
        assert config["SecurityGroupIds"] == [{"Fn::GetAtt": [logical_id(group), "GroupId"]}]
    egress = template.to_json()["Resources"][logical_id(group)]["Properties"]["SecurityGroupEgress"]
    assert [(e["FromPort"], e["ToPort"]) for e in egress] == [(443, 443)]
    actions = {a for s in statements(template, snapshots.role) for a in actions_of(s)}
    assert "ec2:CreateNetworkInterface" in actions
    assert [f for f in nag_findings(stack) if "/Snapshots/" in f] == []


# --- wrong input ------------------------------------------------------------------------------


def test_every_wrong_argument_is_listed_before_any_resource_exists():
    stack = cdk.Stack(cdk.App(), "Test", env=EU)
    store = VersionedDataStore(stack, "Data", datasets=["events"])
    with pytest.raises(ConfigurationError) as caught:
        InventorySnapshot(
            stack,
            "Snapshots",
            data_store=store,
            datasets=["events", "events", "other", "Bad Name"],
            max_concurrency=0,
            worker_memory_size=64,
            worker_timeout=cdk.Duration.seconds(10),
            report_retention=cdk.Duration.days(1),
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        )
    message = str(caught.value)
    for expected in (
        "repeats a name",
        "'other'",
        "'Bad Name'",
        "max_concurrency (0) must be a whole number from 1 to 10,000",
        "worker_memory_size (64) must be whole MiB from 128 to 10,240",
        "worker_timeout (10 seconds) must be from 1 to 15 minutes",
        "report_retention (1 day) must be whole days, at least 2",
        "vpc_subnets is given without vpc",
    ):
        assert expected in message, expected
    assert stack.node.find_child("Snapshots").node.children == []


def test_a_store_of_another_stack_or_an_imported_store_is_refused():
    app = cdk.App()
    store = VersionedDataStore(cdk.Stack(app, "Data", env=EU), "Data", datasets=["events"])
    with pytest.raises(ConfigurationError, match="is in another stack; define InventorySnapshot in the store's"):
        InventorySnapshot(cdk.Stack(app, "Other", env=EU), "Snapshots", data_store=store, datasets=["events"])
    imported = VersionedDataStore.from_bucket(
        cdk.Stack(app, "Imported", env=EU),
        "Store",
        bucket=store.bucket,
        encryption_key=store.encryption_key,
        datasets=["events"],
    )
    with pytest.raises(ConfigurationError, match="data_store must be VersionedDataStore, got ImportedDataStore"):
        InventorySnapshot(imported.node.scope, "Snapshots", data_store=imported, datasets=["events"])  # type: ignore[arg-type]
