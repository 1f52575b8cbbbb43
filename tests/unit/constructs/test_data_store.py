"""VersionedDataStore: secure defaults, options, validation, grants, events, metrics and compliance."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

import aws_cdk as cdk
import pytest
from aws_cdk import Duration, RemovalPolicy, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks

from cdk_mlops.constructs.data_store import DESTROY_WARNING_ID, ObjectLockSettings, VersionedDataStore
from cdk_mlops.errors import ConfigurationError
from tests.quality import cfn_lint_findings, logical_id, nag_findings


def lambda_role(scope: cdk.Stack, id: str) -> iam.Role:
    return iam.Role(scope, id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))


@dataclass(frozen=True)
class Defaults:
    """A store with default settings, a same-stack reader and a reader in another stack."""

    app: cdk.App
    stack: cdk.Stack
    consumer: cdk.Stack
    store: VersionedDataStore
    reader: iam.Role
    trainer: iam.Role
    template: Template
    consumer_template: Template


@pytest.fixture(scope="module")
def defaults() -> Defaults:
    app = cdk.App()
    stack = cdk.Stack(app, "Test")
    store = VersionedDataStore(stack, "Data", datasets=["churn"])
    reader = lambda_role(stack, "Reader")
    store.grant_read(reader, dataset="churn")
    store.grant_write_manifests(reader, "churn")
    trainer = lambda_role(stack, "Trainer")
    store.grant_read_write(trainer, prefix=store.artifacts_prefix)
    consumer = cdk.Stack(app, "Consumer")
    store.grant_read(lambda_role(consumer, "Remote"), dataset="churn")
    store.grant_write(iam.Role.from_role_arn(consumer, "Imported", "arn:aws:iam::111122223333:role/uploader"))
    return Defaults(
        app, stack, consumer, store, reader, trainer, Template.from_stack(stack), Template.from_stack(consumer)
    )


@dataclass(frozen=True)
class Options:
    """Stores with every option changed; one stack."""

    stack: cdk.Stack
    destroy: VersionedDataStore
    tokens: VersionedDataStore
    compliance: VersionedDataStore
    key: kms.Key
    template: Template


@pytest.fixture(scope="module")
def options() -> Options:
    app = cdk.App()
    stack = cdk.Stack(app, "Options")
    key = kms.Key(stack, "OwnKey", enable_key_rotation=True)
    destroy = VersionedDataStore(
        stack,
        "Dev",
        encryption_key=key,
        removal_policy=RemovalPolicy.DESTROY,
        noncurrent_version_transition=None,
        noncurrent_version_expiration=Duration.days(400),
        retain_versions=5,
        object_lock=ObjectLockSettings(default_retention_days=10),
    )
    days = cdk.CfnParameter(stack, "Days", type="Number").value_as_number
    tokens = VersionedDataStore(
        stack,
        "Tokens",
        noncurrent_version_transition=Duration.days(days),
        noncurrent_version_expiration=Duration.days(days),
        retain_versions=cast(int, cdk.Token.as_number(days)),
        object_lock=ObjectLockSettings(default_retention_days=days),
        datasets=[cdk.CfnParameter(stack, "Name").value_as_string],
    )
    tokens.grant_read(lambda_role(stack, "TokenReader"), dataset=tokens.datasets[0])
    compliance = VersionedDataStore(
        stack,
        "Prod",
        noncurrent_version_expiration=None,
        object_lock=ObjectLockSettings(default_retention_days=365, mode=s3.ObjectLockMode.COMPLIANCE),
    )
    return Options(stack, destroy, tokens, compliance, key, Template.from_stack(stack))


def bucket_properties(template: Template, store: VersionedDataStore) -> dict[str, Any]:
    resource: dict[str, Any] = template.to_json()["Resources"][logical_id(store.bucket)]
    return resource


def as_list(value: Any) -> list[Any]:
    """An IAM Action or Resource value as a list (CloudFormation allows a single value)."""
    return value if isinstance(value, list) else [value]


def policy_statements(template: Template, role: iam.IRole) -> list[dict[str, Any]]:
    """Statements of the IAM policies attached to a role."""
    role_ref = {"Ref": cdk.Stack.of(role).get_logical_id(role.node.default_child)}  # type: ignore[arg-type]
    statements: list[dict[str, Any]] = []
    for resource in template.find_resources("AWS::IAM::Policy").values():
        if role_ref in resource["Properties"]["Roles"]:
            statements.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    return statements


# --------------------------------------------------------------------------- secure defaults


def test_data_bucket_is_versioned_kms_encrypted_private_and_acl_free(defaults: Defaults) -> None:
    key_id = logical_id(defaults.store.encryption_key)
    log_id = logical_id(defaults.store.access_log_bucket)
    defaults.template.has_resource(
        "AWS::S3::Bucket",
        {
            "Properties": Match.object_like(
                {
                    "VersioningConfiguration": {"Status": "Enabled"},
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {
                                "BucketKeyEnabled": True,
                                "ServerSideEncryptionByDefault": {
                                    "SSEAlgorithm": "aws:kms",
                                    "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]},
                                },
                            }
                        ]
                    },
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": True,
                        "BlockPublicPolicy": True,
                        "IgnorePublicAcls": True,
                        "RestrictPublicBuckets": True,
                    },
                    "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                    "LoggingConfiguration": {"DestinationBucketName": {"Ref": log_id}},
                    "ObjectLockEnabled": Match.absent(),
                }
            ),
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )


def test_the_created_key_rotates_and_is_retained(defaults: Defaults) -> None:
    defaults.template.resource_count_is("AWS::KMS::Key", 1)
    defaults.template.has_resource(
        "AWS::KMS::Key",
        {"Properties": Match.object_like({"EnableKeyRotation": True}), "DeletionPolicy": "Retain"},
    )


def test_default_lifecycle_moves_old_versions_to_ia_and_expires_them(defaults: Defaults) -> None:
    rules = bucket_properties(defaults.template, defaults.store)["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rules == [
        {
            "Id": "Versions",
            "Status": "Enabled",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
            "NoncurrentVersionTransitions": [{"StorageClass": "STANDARD_IA", "TransitionInDays": 30}],
            "NoncurrentVersionExpiration": {"NoncurrentDays": 90},
        }
    ]


def test_bucket_policy_denies_plain_http_and_old_tls(defaults: Defaults) -> None:
    bucket_arn = {"Fn::GetAtt": [logical_id(defaults.store.bucket), "Arn"]}
    defaults.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": logical_id(defaults.store.bucket)},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                "Resource": Match.array_with([bucket_arn]),
                            }
                        ),
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"NumericLessThan": {"s3:TlsVersion": 1.2}},
                            }
                        ),
                    ]
                )
            },
        },
    )


def test_access_logs_go_to_an_sse_s3_bucket_through_a_bucket_policy(defaults: Defaults) -> None:
    log_id = logical_id(defaults.store.access_log_bucket)
    bucket_id = logical_id(defaults.store.bucket)
    logs = defaults.template.to_json()["Resources"][log_id]
    assert logs["Properties"]["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    }
    assert logs["Properties"]["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert "AccessControl" not in logs["Properties"]
    assert "ObjectLockEnabled" not in logs["Properties"]
    assert logs["DeletionPolicy"] == "Retain"
    defaults.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": log_id},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "logging.s3.amazonaws.com"},
                                "Action": "s3:PutObject",
                                "Condition": Match.object_like(
                                    {"ArnLike": {"aws:SourceArn": {"Fn::GetAtt": [bucket_id, "Arn"]}}}
                                ),
                            }
                        )
                    ]
                )
            },
        },
    )


def test_object_events_are_sent_to_eventbridge_by_the_bucket_itself(defaults: Defaults) -> None:
    bucket = defaults.template.to_json()["Resources"][logical_id(defaults.store.bucket)]
    assert bucket["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }


def test_the_store_needs_no_custom_resource_and_no_function(defaults: Defaults, options: Options) -> None:
    # S3 → EventBridge is a bucket property in CloudFormation: no notifications handler (a Lambda
    # outside any VPC) in the stack. Only DESTROY adds aws-cdk-lib's auto-delete provider.
    for template in (defaults.template, options.template):
        types = {r["Type"] for r in template.to_json()["Resources"].values()}
        assert "Custom::S3BucketNotifications" not in types
    types = {r["Type"] for r in defaults.template.to_json()["Resources"].values()}
    assert not {t for t in types if t.startswith("Custom::") or t == "AWS::Lambda::Function"}


def test_bucket_notifications_would_fight_the_buckets_own_and_fail_synth() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Notified")
    store = VersionedDataStore(stack, "Data")
    store.bucket.add_event_notification(s3.EventType.OBJECT_CREATED, s3n.SqsDestination(sqs.Queue(stack, "Q")))
    with pytest.raises(RuntimeError, match=r"\[Notified/Data\] bucket.add_event_notification\(\) is not supported"):
        app.synth()


def test_defaults_emit_no_warning(defaults: Defaults) -> None:
    Annotations.from_stack(defaults.stack).has_no_warning("*", Match.any_value())


# --------------------------------------------------------------------------- options


def test_destroy_empties_and_deletes_both_buckets_and_warns(options: Options) -> None:
    # THEN both buckets are deleted with the stack and emptied first
    for bucket in (options.destroy.bucket, options.destroy.access_log_bucket):
        resource = options.template.to_json()["Resources"][logical_id(bucket)]
        assert resource["DeletionPolicy"] == "Delete"
        assert {"Key": "aws-cdk:auto-delete-objects", "Value": "true"} in resource["Properties"]["Tags"]
    options.template.has_resource_properties(
        "Custom::S3AutoDeleteObjects", {"BucketName": {"Ref": logical_id(options.destroy.bucket)}}
    )
    # AND a warning with a stable id says what is lost
    Annotations.from_stack(options.stack).has_warning(
        "/Options/Dev",
        Match.string_like_regexp(
            r"removal_policy=DESTROY: deleting the stack deletes the data bucket with every object version.*"
            r"Object Lock.*\[ack: cdk-mlops:data-store-destroy\]"
        ),
    )
    assert DESTROY_WARNING_ID == "cdk-mlops:data-store-destroy"


def test_a_given_key_is_used_and_no_key_is_created(options: Options) -> None:
    # THEN the bucket uses the caller's key, which keeps its own removal policy
    assert options.destroy.encryption_key is options.key
    encryption = bucket_properties(options.template, options.destroy)["Properties"]["BucketEncryption"]
    assert encryption["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {
        "Fn::GetAtt": [logical_id(options.key), "Arn"]
    }
    assert options.destroy.node.try_find_child("Key") is None
    key = options.template.to_json()["Resources"][logical_id(options.key)]
    assert key["DeletionPolicy"] == "Retain"


def test_created_key_follows_a_destroy_policy() -> None:
    # GIVEN a DESTROY store without a key of its own
    stack = cdk.Stack(cdk.App(), "Test")
    store = VersionedDataStore(stack, "Data", removal_policy=RemovalPolicy.DESTROY)

    # THEN its key is scheduled for deletion with the stack too, and the warning says so
    key = Template.from_stack(stack).to_json()["Resources"][logical_id(store.encryption_key)]
    assert key["DeletionPolicy"] == "Delete"
    Annotations.from_stack(stack).has_warning("/Test/Data", Match.string_like_regexp("and its KMS key"))


def test_lifecycle_options_without_transition_with_retained_versions(options: Options) -> None:
    rules = bucket_properties(options.template, options.destroy)["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rules == [
        {
            "Id": "Versions",
            "Status": "Enabled",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 400, "NewerNoncurrentVersions": 5},
        }
    ]


def test_no_expiration_keeps_every_version(options: Options) -> None:
    rules = bucket_properties(options.template, options.compliance)["Properties"]["LifecycleConfiguration"]["Rules"]
    assert "NoncurrentVersionExpiration" not in rules[0]
    assert rules[0]["NoncurrentVersionTransitions"] == [{"StorageClass": "STANDARD_IA", "TransitionInDays": 30}]


@pytest.mark.parametrize(("store", "mode", "days"), [("destroy", "GOVERNANCE", 10), ("compliance", "COMPLIANCE", 365)])
def test_object_lock_sets_a_default_retention(options: Options, store: str, mode: str, days: int) -> None:
    properties = bucket_properties(options.template, getattr(options, store))["Properties"]
    assert properties["ObjectLockEnabled"] is True
    assert properties["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}},
    }


def test_tokens_are_accepted_and_passed_through(options: Options) -> None:
    # GIVEN durations, retained versions, lock days and a dataset name from CloudFormation parameters
    properties = bucket_properties(options.template, options.tokens)["Properties"]
    rule = properties["LifecycleConfiguration"]["Rules"][0]

    # THEN no error was raised and each value is the parameter reference
    days = {"Ref": "Days"}
    assert rule["NoncurrentVersionTransitions"] == [{"StorageClass": "STANDARD_IA", "TransitionInDays": days}]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": days, "NewerNoncurrentVersions": days}
    assert properties["ObjectLockConfiguration"]["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": days}
    assert options.stack.resolve(options.tokens.dataset_prefix(options.tokens.datasets[0])) == {
        "Fn::Join": ["", ["datasets/", {"Ref": "Name"}, "/"]]
    }


# --------------------------------------------------------------------------- grants


def test_grant_read_for_a_dataset_is_scoped_to_its_prefix(defaults: Defaults) -> None:
    bucket_arn = {"Fn::GetAtt": [logical_id(defaults.store.bucket), "Arn"]}
    statements = policy_statements(defaults.template, defaults.reader)
    read = next(s for s in statements if "s3:GetObject*" in s["Action"])
    assert read["Resource"] == [bucket_arn, {"Fn::Join": ["", [bucket_arn, "/datasets/churn/*"]]}]
    assert not any("s3:DeleteObject*" in s["Action"] for s in statements)
    decrypt = next(s for s in statements if s["Action"] == "kms:Decrypt" or "kms:Decrypt" in s["Action"])
    assert decrypt["Resource"] == {"Fn::GetAtt": [logical_id(defaults.store.encryption_key), "Arn"]}


def test_grant_write_manifests_only_puts_under_the_manifest_prefix(defaults: Defaults) -> None:
    bucket_arn = {"Fn::GetAtt": [logical_id(defaults.store.bucket), "Arn"]}
    manifests = {"Fn::Join": ["", [bucket_arn, "/manifests/churn/*"]]}
    statements = [
        s for s in policy_statements(defaults.template, defaults.reader) if manifests in as_list(s["Resource"])
    ]
    assert [s["Action"] for s in statements] == [["s3:PutObject", "s3:AbortMultipartUpload"]]


def test_grant_read_write_with_a_prefix_is_scoped_to_it(defaults: Defaults) -> None:
    bucket_arn = {"Fn::GetAtt": [logical_id(defaults.store.bucket), "Arn"]}
    artifacts = [bucket_arn, {"Fn::Join": ["", [bucket_arn, "/artifacts/*"]]}]
    s3_statements = [
        s for s in policy_statements(defaults.template, defaults.trainer) if as_list(s["Action"])[0].startswith("s3:")
    ]
    assert [s["Resource"] for s in s3_statements] == [artifacts, artifacts]
    assert s3_statements[0]["Action"] == ["s3:GetObject*", "s3:GetBucket*", "s3:List*"]


def test_writers_cannot_erase_versions_or_change_retention(defaults: Defaults) -> None:
    # GIVEN a role granted read and write
    actions = {
        action for s in policy_statements(defaults.template, defaults.trainer) for action in as_list(s["Action"])
    }

    # THEN it can add and replace objects and add delete markers, but not destroy history
    assert {"s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload", "s3:DeleteObject"} <= actions
    forbidden = {"s3:DeleteObjectVersion", "s3:DeleteObject*", "s3:PutObject*", "s3:PutObjectRetention"}
    assert actions.isdisjoint(forbidden | {"s3:PutObjectLegalHold", "s3:PutObjectAcl", "s3:BypassGovernanceRetention"})


def test_grants_return_the_iam_grant() -> None:
    store = new_store()
    grant = store.grant_read(lambda_role(cdk.Stack.of(store), "Role"))
    assert isinstance(grant, iam.Grant)
    assert grant.success


# --------------------------------------------------------------------------- compliance


@pytest.mark.parametrize("which", ["stack", "consumer"])
def test_stacks_are_cdk_nag_clean(defaults: Defaults, which: str) -> None:
    assert nag_findings(getattr(defaults, which)) == []


def test_full_synth_with_the_nag_plugin_passes_across_stacks() -> None:
    # GIVEN a store, a reader in another stack (the ARN arrives through Fn::ImportValue) and the nag plugin
    app = cdk.App()
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    store = VersionedDataStore(cdk.Stack(app, "Data"), "Store")
    store.grant_read_write(lambda_role(cdk.Stack(app, "Training"), "Role"), dataset="churn")

    # WHEN / THEN the app synthesizes: every finding of the cross-stack grant was acknowledged
    assembly = app.synth()
    template = assembly.get_stack_by_name("Training").template
    policy = next(r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy")
    assert "Fn::ImportValue" in str(policy)


def test_acknowledgments_carry_a_reason_naming_the_grant(defaults: Defaults) -> None:
    entries = [
        entry.data
        for entry in defaults.reader.node.metadata
        if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    ]
    reasons = {reason for data in entries for reason in data.values()}
    assert any(re.search(r"Test/Data\.grant_read\(\).*limited to 'datasets/churn/\*'", r) for r in reasons)


@pytest.mark.parametrize("which", ["template", "consumer_template"])
def test_templates_are_cfn_lint_clean(defaults: Defaults, which: str) -> None:
    # Warnings too: aws-cdk-lib's stack-wide notifications handler depends on a role it already
    # names with Fn::GetAtt (W3005) unless the store drops that DependsOn.
    assert cfn_lint_findings(dict(getattr(defaults, which).to_json())) == []


def test_options_stack_is_nag_and_cfn_lint_clean(options: Options) -> None:
    assert nag_findings(options.stack) == []
    # With DESTROY, the auto-delete provider's handler has the same redundant DependsOn.
    assert cfn_lint_findings(dict(options.template.to_json())) == []


# --------------------------------------------------------------------------- events, URIs, metrics


def test_dataset_changed_pattern_matches_created_objects_under_the_prefix(defaults: Defaults) -> None:
    pattern = defaults.store.dataset_changed_pattern("churn")
    assert pattern.source == ["aws.s3"]
    assert pattern.detail_type == ["Object Created"]
    assert defaults.stack.resolve(pattern.detail) == {
        "bucket": {"name": [{"Ref": logical_id(defaults.store.bucket)}]},
        "object": {"key": [{"prefix": "datasets/churn/"}]},
    }


def test_dataset_changed_pattern_with_a_suffix_uses_a_wildcard(defaults: Defaults) -> None:
    pattern = defaults.store.dataset_changed_pattern("churn", suffix=".csv")
    assert defaults.stack.resolve(pattern.detail)["object"] == {"key": [{"wildcard": "datasets/churn/*.csv"}]}


def test_uris_and_prefixes_follow_the_shared_layout(defaults: Defaults) -> None:
    store, resolve = defaults.store, defaults.stack.resolve
    bucket = {"Ref": logical_id(store.bucket)}
    assert store.dataset_prefix("churn") == "datasets/churn/"
    assert store.manifest_prefix("churn") == "manifests/churn/"
    assert (store.artifacts_prefix, store.capture_prefix, store.monitoring_prefix) == (
        "artifacts/",
        "capture/",
        "monitoring/",
    )
    assert resolve(store.dataset_uri("churn")) == {"Fn::Join": ["", ["s3://", bucket, "/datasets/churn/"]]}
    assert resolve(store.manifest_uri_prefix("churn")) == {"Fn::Join": ["", ["s3://", bucket, "/manifests/churn/"]]}
    assert store.datasets == ("churn",)


@pytest.mark.parametrize(
    ("method", "name", "storage_type"),
    [
        ("metric_bucket_size_bytes", "BucketSizeBytes", "StandardStorage"),
        ("metric_number_of_objects", "NumberOfObjects", "AllStorageTypes"),
    ],
)
def test_storage_metrics_use_the_daily_s3_dimensions(
    defaults: Defaults, method: str, name: str, storage_type: str
) -> None:
    metric = getattr(defaults.store, method)()
    assert (metric.namespace, metric.metric_name, metric.statistic) == ("AWS/S3", name, "Average")
    assert metric.period.to_days() == 1
    assert defaults.stack.resolve(metric.dimensions) == {
        "BucketName": {"Ref": logical_id(defaults.store.bucket)},
        "StorageType": storage_type,
    }


# --------------------------------------------------------------------------- validation


def new_store(**kwargs: Any) -> VersionedDataStore:
    return VersionedDataStore(cdk.Stack(cdk.App(), "Test"), "Data", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"noncurrent_version_expiration": Duration.days(0)},
            "noncurrent_version_expiration must be at least 1 day, got 0 days; use Duration.days(1) or more, "
            "or None to keep every version",
        ),
        (
            {"noncurrent_version_transition": Duration.days(7)},
            "noncurrent_version_transition must be at least 30 days (S3 moves versions to STANDARD_IA only after "
            "30 days), got 7 days; use Duration.days(30) or more, or None to keep old versions in STANDARD",
        ),
        (
            {"noncurrent_version_expiration": Duration.days(30)},
            "noncurrent_version_expiration (30 days) must be longer than noncurrent_version_transition (30 days); "
            "raise the expiration, or pass noncurrent_version_transition=None",
        ),
        (
            {"noncurrent_version_expiration": Duration.hours(36)},
            "noncurrent_version_expiration must be a whole number of days, got 1.5 days; use e.g. Duration.days(90)",
        ),
        (
            {"retain_versions": 0},
            "retain_versions must be from 1 to 100 (an S3 limit), got 0; use e.g. 3, or None to keep no extra versions",
        ),
        ({"retain_versions": 101}, "retain_versions must be from 1 to 100 (an S3 limit), got 101"),
        ({"retain_versions": True}, "retain_versions must be int or None, got bool True"),
        (
            {"retain_versions": 3, "noncurrent_version_expiration": None},
            "retain_versions=3 has no effect when noncurrent_version_expiration is None (every version is kept); "
            "set an expiration, or remove retain_versions",
        ),
        (
            {"object_lock": ObjectLockSettings(default_retention_days=0)},
            "object_lock.default_retention_days must be from 1 to 36500, got 0; use e.g. default_retention_days=30, "
            "or object_lock=None for no lock",
        ),
        (
            {"object_lock": ObjectLockSettings(default_retention_days=1.5)},
            "object_lock.default_retention_days must be a whole number of days, got 1.5; use e.g. "
            "default_retention_days=30",
        ),
        (
            {
                "removal_policy": RemovalPolicy.DESTROY,
                "object_lock": ObjectLockSettings(default_retention_days=1, mode=s3.ObjectLockMode.COMPLIANCE),
            },
            "removal_policy=DESTROY cannot be combined with a COMPLIANCE object lock: locked versions cannot be "
            "deleted by anyone until their retention ends, so deleting the stack would fail; use "
            "RemovalPolicy.RETAIN, or mode=ObjectLockMode.GOVERNANCE",
        ),
        (
            {"removal_policy": RemovalPolicy.SNAPSHOT},
            "removal_policy=SNAPSHOT is not supported by S3 buckets; use RETAIN or DESTROY",
        ),
        (
            {"datasets": ["churn", "a/b"]},
            "datasets[1]: dataset name 'a/b' contains '/'; use a single segment such as 'churn-2024'",
        ),
        ({"datasets": ["churn", "churn"]}, "datasets[1]: 'churn' is declared twice; remove the duplicate"),
    ],
)
def test_invalid_settings_raise_with_path_value_and_fix(kwargs: dict[str, Any], message: str) -> None:
    # WHEN / THEN
    with pytest.raises(ConfigurationError, match=r"^\[Test/Data\] " + re.escape(message)):
        new_store(**kwargs)


def test_every_problem_is_reported_at_once_before_any_resource_exists() -> None:
    # GIVEN a stack and several invalid settings
    stack = cdk.Stack(cdk.App(), "Test")

    # WHEN the store is defined
    with pytest.raises(ConfigurationError) as error:
        VersionedDataStore(
            stack,
            "Data",
            noncurrent_version_expiration=Duration.days(0),
            retain_versions=0,
            datasets=["../x"],
        )

    # THEN one error lists them all, and the store created no resource
    assert str(error.value).startswith("[Test/Data] 4 problems:\n  - noncurrent_version_expiration")
    assert len(error.value.problems) == 4
    assert stack.node.find_child("Data").node.children == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda store, role: store.grant_read(role, dataset="churn", prefix="artifacts/"),
            "grant_read: pass dataset ('churn') or prefix ('artifacts/'), not both; use one of them",
        ),
        (
            lambda store, role: store.grant_write(role, prefix="artifacts"),
            "grant_write: prefix 'artifacts' must be a key prefix ending in '/' without '*' or a leading '/'; "
            "use e.g. prefix='artifacts/'",
        ),
        (
            lambda store, role: store.grant_read_write(role, dataset="bad name"),
            "dataset name 'bad name' contains ' '",
        ),
        (lambda store, role: store.grant_write_manifests(role, "a/b"), "dataset name 'a/b' contains '/'"),
        (
            lambda store, role: store.dataset_changed_pattern("churn", suffix="*.csv"),
            "dataset_changed_pattern suffix '*.csv' must be non-empty and contain no '*' or '\\'; use a literal "
            "ending such as '.csv'",
        ),
        (lambda store, role: store.dataset_uri(".."), "dataset name '..' contains '..'"),
        (
            lambda store, role: store.grant_accounts_read(["12345"], prefix="artifacts/"),
            "grant_accounts_read: '12345' is not a 12-digit AWS account id",
        ),
        (
            lambda store, role: store.grant_accounts_read(["111122223333"], prefix="artifacts/*"),
            "grant_accounts_read: prefix 'artifacts/*' must be a key prefix ending in '/'",
        ),
    ],
)
def test_invalid_method_arguments_raise_with_path_value_and_fix(call: Any, message: str) -> None:
    # GIVEN a valid store
    store = new_store()
    role = lambda_role(cdk.Stack.of(store), "Role")

    # WHEN / THEN
    with pytest.raises(ConfigurationError, match=r"^\[Test/Data\] " + re.escape(message)):
        call(store, role)


def test_other_accounts_may_be_let_read_a_prefix_and_decrypt_through_s3_only() -> None:
    # GIVEN a store whose key it created, and one with an imported key
    store = new_store()
    stack = cdk.Stack.of(store)
    imported = kms.Key.from_key_arn(stack, "Imported", "arn:aws:kms:eu-west-1:111111111111:key/0a1b2c3d")
    passed = VersionedDataStore(stack, "Passed", encryption_key=imported)
    # WHEN two accounts may read the artifacts of both
    for each in (store, passed):
        each.grant_accounts_read(["111122223333", "444455556666"], prefix="artifacts/churn/")
    store.grant_accounts_read([], prefix="artifacts/")  # nothing to grant
    template = Template.from_stack(stack)
    # THEN the bucket policy lets exactly those accounts get objects under the prefix
    readers = [
        s
        for p in template.find_resources("AWS::S3::BucketPolicy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "ReadFromOtherAccounts0"
    ]
    assert len(readers) == 2
    statement = next(s for s in readers if logical_id(store.bucket) in str(s["Resource"]))
    assert statement["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert statement["Resource"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [logical_id(store.bucket), "Arn"]}, "/artifacts/churn/*"]]
    }
    assert len(statement["Principal"]["AWS"]) == 2
    # AND the created key lets them decrypt, only through S3
    key = template.to_json()["Resources"][logical_id(store.encryption_key)]
    (decrypt,) = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s["Action"] == "kms:Decrypt"]
    assert decrypt["Condition"] == {
        "StringEquals": {
            "kms:ViaService": {"Fn::Join": ["", ["s3.", {"Ref": "AWS::Region"}, ".", {"Ref": "AWS::URLSuffix"}]]}
        }
    }
    # AND an imported key's policy cannot be changed here: a warning says what it needs
    Annotations.from_stack(stack).has_warning(
        "/Test/Passed", Match.string_like_regexp("allow kms:Decrypt via S3 for 111122223333, 444455556666")
    )
