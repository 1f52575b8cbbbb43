"""The CloudFormation shim: each type it registers, created, updated and deleted through moto's CloudFormation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from cdk_mlops.local import cfn_policies, cfn_shim

REGION = "us-east-1"
SSL_ONLY = {
    "Effect": "Deny",
    "Principal": {"AWS": "*"},
    "Action": "s3:*",
    "Resource": "*",
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


@pytest.fixture(autouse=True)
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    cfn_shim.install()
    with mock_aws():
        yield


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]


def template(resources: dict[str, Any], outputs: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {"Resources": resources}
    if outputs:
        body["Outputs"] = outputs
    return json.dumps(body)


def create(name: str, resources: dict[str, Any], outputs: dict[str, Any] | None = None) -> dict[str, str]:
    """Create a stack; return its outputs."""
    cf = client("cloudformation")
    cf.create_stack(StackName=name, TemplateBody=template(resources, outputs))
    return stack_outputs(name)


def update(name: str, resources: dict[str, Any], outputs: dict[str, Any] | None = None) -> dict[str, str]:
    client("cloudformation").update_stack(StackName=name, TemplateBody=template(resources, outputs))
    return stack_outputs(name)


def stack_outputs(name: str) -> dict[str, str]:
    stack = client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"].endswith("_COMPLETE"), stack["StackStatus"]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def physical_ids(name: str) -> dict[str, str]:
    resources = client("cloudformation").describe_stack_resources(StackName=name)["StackResources"]
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}


def delete(name: str) -> None:
    client("cloudformation").delete_stack(StackName=name)


def bucket(**properties: Any) -> dict[str, Any]:
    return {"Type": "AWS::S3::Bucket", "Properties": properties}


# --- registration ---------------------------------------------------------------------------------


def test_install_is_idempotent_and_routes_every_covered_type():
    from moto.cloudformation import parsing

    cfn_shim.install()
    cfn_shim.install()
    assert cfn_shim.is_installed()
    for resource_type, model in cfn_shim.MODELS.items():
        assert parsing.resource_class_from_type(resource_type) is model
    assert parsing.resource_class_from_type("Custom::Anything") is cfn_shim.UnemulatedCustomResource
    assert parsing.resource_class_from_type("AWS::SQS::Queue").__name__ == "Queue"  # moto's own model stays


# --- S3 ---------------------------------------------------------------------------------------------


def test_bucket_gets_versioning_encryption_lifecycle_access_block_ownership_and_logging():
    logs = bucket(BucketName="logs-bucket")
    data = bucket(
        BucketName="data-bucket",
        VersioningConfiguration={"Status": "Enabled"},
        BucketEncryption={
            "ServerSideEncryptionConfiguration": [
                {
                    "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "arn:key"},
                    "BucketKeyEnabled": True,
                }
            ]
        },
        LifecycleConfiguration={
            "Rules": [
                {
                    "Id": "old-versions",
                    "Status": "Enabled",
                    "NoncurrentVersionTransitions": [{"StorageClass": "STANDARD_IA", "TransitionInDays": 30}],
                    "NoncurrentVersionExpiration": {"NoncurrentDays": 60},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                },
                {"Id": "tmp", "Status": "Enabled", "Prefix": "tmp/", "ExpirationInDays": 7},
            ]
        },
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        },
        OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        LoggingConfiguration={"DestinationBucketName": {"Ref": "Logs"}, "LogFilePrefix": "data/"},
        NotificationConfiguration={"EventBridgeConfiguration": {"EventBridgeEnabled": True}},
    )
    create("S3", {"Logs": logs, "Data": data})
    s3 = client("s3")

    assert s3.get_bucket_versioning(Bucket="data-bucket")["Status"] == "Enabled"
    assert "Status" not in s3.get_bucket_versioning(Bucket="logs-bucket")
    rule = s3.get_bucket_encryption(Bucket="data-bucket")["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "arn:key"}
    assert rule["BucketKeyEnabled"] is True
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket="data-bucket")["Rules"]}
    assert rules["old-versions"]["NoncurrentVersionTransitions"] == [
        {"NoncurrentDays": 30, "StorageClass": "STANDARD_IA"}
    ]
    assert rules["old-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 60}
    assert rules["old-versions"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert rules["tmp"]["Filter"] == {"Prefix": "tmp/"}
    assert rules["tmp"]["Expiration"] == {"Days": 7}
    block = s3.get_public_access_block(Bucket="data-bucket")["PublicAccessBlockConfiguration"]
    assert all(block.values())
    ownership = s3.get_bucket_ownership_controls(Bucket="data-bucket")["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert s3.get_bucket_logging(Bucket="data-bucket")["LoggingEnabled"] == {
        "TargetBucket": "logs-bucket",
        "TargetPrefix": "data/",
    }
    from moto.s3.models import s3_backends

    notifications = s3_backends["123456789012"]["aws"].buckets["data-bucket"].notification_configuration
    assert notifications is not None
    assert notifications.event_bridge == {}


def test_bucket_update_applies_changes_and_clears_removed_settings():
    create("S3", {"Data": bucket(BucketName="data-bucket", VersioningConfiguration={"Status": "Enabled"})})
    s3 = client("s3")
    update(
        "S3",
        {
            "Data": bucket(
                BucketName="data-bucket",
                VersioningConfiguration={"Status": "Suspended"},
                LifecycleConfiguration={"Rules": [{"Id": "x", "Status": "Enabled", "ExpirationInDays": 1}]},
                Tags=[{"Key": "owner", "Value": "ml"}],
            )
        },
    )
    assert s3.get_bucket_versioning(Bucket="data-bucket")["Status"] == "Suspended"
    assert s3.get_bucket_lifecycle_configuration(Bucket="data-bucket")["Rules"][0]["ID"] == "x"
    assert s3.get_bucket_tagging(Bucket="data-bucket")["TagSet"] == [{"Key": "owner", "Value": "ml"}]

    update("S3", {"Data": bucket(BucketName="data-bucket", VersioningConfiguration={"Status": "Suspended"})})
    with pytest.raises(ClientError, match="NoSuchLifecycleConfiguration"):
        s3.get_bucket_lifecycle_configuration(Bucket="data-bucket")


def test_object_lock_turns_on_versioning_and_default_retention():
    locked = bucket(
        BucketName="locked-bucket",
        ObjectLockEnabled=True,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}},
        },
    )
    create("Lock", {"Locked": locked})
    s3 = client("s3")
    assert s3.get_bucket_versioning(Bucket="locked-bucket")["Status"] == "Enabled"
    config = s3.get_object_lock_configuration(Bucket="locked-bucket")["ObjectLockConfiguration"]
    # moto reports the unit not set as 0 (as it does for the same configuration put through the S3 API).
    assert config == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30, "Years": 0}},
    }
    # An object written now gets the default retention, 30 days from its write (every put failed before).
    s3.put_object(Bucket="locked-bucket", Key="a.csv", Body=b"a")
    head = s3.head_object(Bucket="locked-bucket", Key="a.csv")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    days = (head["ObjectLockRetainUntilDate"] - datetime.now(UTC)).total_seconds() / 86400
    assert 29.9 < days <= 30


def test_deleting_a_stack_keeps_retained_buckets_and_refuses_non_empty_ones():
    create(
        "S3",
        {
            "Kept": {**bucket(BucketName="kept-bucket"), "DeletionPolicy": "Retain"},
            "Full": bucket(BucketName="full-bucket"),
            "Empty": bucket(BucketName="empty-bucket"),
        },
    )
    s3 = client("s3")
    s3.put_object(Bucket="full-bucket", Key="k", Body=b"1")
    with pytest.raises(Exception, match="not empty: full-bucket"):
        delete("S3")
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {"kept-bucket", "full-bucket"} <= names
    assert "empty-bucket" not in names


def test_auto_delete_objects_empties_a_tagged_bucket_so_the_stack_deletes():
    tag = [{"Key": cfn_shim.AUTO_DELETE_TAG, "Value": "true"}]
    create(
        "Auto",
        {
            "Data": bucket(BucketName="auto-bucket", VersioningConfiguration={"Status": "Enabled"}, Tags=tag),
            "AutoDelete": {
                "Type": "Custom::S3AutoDeleteObjects",
                "Properties": {
                    "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:x",
                    "BucketName": {"Ref": "Data"},
                },
            },
        },
    )
    s3 = client("s3")
    for body in (b"1", b"2"):
        s3.put_object(Bucket="auto-bucket", Key="datasets/a.csv", Body=body)
    s3.delete_object(Bucket="auto-bucket", Key="datasets/a.csv")  # leaves a delete marker
    delete("Auto")
    assert "auto-bucket" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert "Custom::S3AutoDeleteObjects" not in cfn_shim.unemulated_custom_resources()


def test_auto_delete_objects_keeps_objects_of_a_bucket_no_longer_tagged():
    create(
        "Auto",
        {
            "Data": {**bucket(BucketName="untagged-bucket"), "DeletionPolicy": "Retain"},
            "AutoDelete": {
                "Type": "Custom::S3AutoDeleteObjects",
                "Properties": {"ServiceToken": "token", "BucketName": {"Ref": "Data"}},
            },
        },
    )
    s3 = client("s3")
    s3.put_object(Bucket="untagged-bucket", Key="k", Body=b"1")
    delete("Auto")
    assert s3.list_objects_v2(Bucket="untagged-bucket")["KeyCount"] == 1


def test_bucket_notifications_custom_resource_puts_and_removes_the_configuration():
    resources = {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "new-data"}},
        "Data": bucket(BucketName="notify-bucket"),
        "Notifications": {
            "Type": "Custom::S3BucketNotifications",
            "Properties": {
                "ServiceToken": "token",
                "BucketName": {"Ref": "Data"},
                "NotificationConfiguration": {
                    "EventBridgeConfiguration": {},
                    "QueueConfigurations": [
                        {
                            "Events": ["s3:ObjectCreated:*"],
                            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}},
                            "QueueArn": {"Fn::GetAtt": ["Queue", "Arn"]},
                        }
                    ],
                },
                "Managed": True,
            },
        },
    }
    create("Notify", resources)
    s3 = client("s3")
    config = s3.get_bucket_notification_configuration(Bucket="notify-bucket")["QueueConfigurations"]
    assert config[0]["QueueArn"].endswith(":new-data")
    assert config[0]["Events"] == ["s3:ObjectCreated:*"]
    assert config[0]["Filter"] == {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}}

    update("Notify", {k: v for k, v in resources.items() if k != "Notifications"})
    assert "QueueConfigurations" not in s3.get_bucket_notification_configuration(Bucket="notify-bucket")


def test_bucket_policy_is_set_enforced_like_over_tls_and_removed():
    deny_reads = {
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::policy-bucket/secret/*",
    }
    create(
        "Policy",
        {
            "Data": bucket(BucketName="policy-bucket"),
            "Policy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "Bucket": {"Ref": "Data"},
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": [SSL_ONLY, deny_reads]},
                },
            },
        },
    )
    s3 = client("s3")
    assert json.loads(s3.get_bucket_policy(Bucket="policy-bucket")["Policy"])["Statement"] == [SSL_ONLY, deny_reads]
    s3.put_object(Bucket="policy-bucket", Key="open/a", Body=b"1")  # the TLS-only statement does not apply locally
    s3.put_object(Bucket="policy-bucket", Key="secret/a", Body=b"1")
    assert s3.get_object(Bucket="policy-bucket", Key="open/a")["Body"].read() == b"1"
    with pytest.raises(ClientError, match=r"403|AccessDenied"):
        s3.get_object(Bucket="policy-bucket", Key="secret/a")

    update("Policy", {"Data": bucket(BucketName="policy-bucket")})
    with pytest.raises(ClientError, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket="policy-bucket")


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        ({"Bool": {"aws:SecureTransport": "false"}}, False),
        ({"Bool": {"aws:SecureTransport": ["true"]}}, True),
        ({"StringEquals": {"aws:SourceAccount": "123456789012"}}, False),
        ({"StringEqualsIfExists": {"aws:SourceAccount": "123456789012"}}, True),
        ({"Null": {"aws:SourceArn": "true"}}, True),
        ({"NumericLessThan": {"s3:TlsVersion": "1.2"}}, False),
    ],
)
def test_policy_conditions_are_evaluated_for_a_local_request(condition, holds):
    assert cfn_policies._condition_holds(condition, cfn_policies.LOCAL_REQUEST_CONTEXT) is holds


def test_queue_and_topic_policies_are_set_and_removed():
    document = {"Version": "2012-10-17", "Statement": [{**SSL_ONLY, "Action": "sqs:*"}]}
    resources = {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "q"}},
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "t"}},
        "QueuePolicy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {"Queues": [{"Ref": "Queue"}], "PolicyDocument": document},
        },
        "TopicPolicy": {
            "Type": "AWS::SNS::TopicPolicy",
            "Properties": {"Topics": [{"Ref": "Topic"}], "PolicyDocument": document},
        },
    }
    create("Policies", resources)
    sqs, sns = client("sqs"), client("sns")
    url = sqs.get_queue_url(QueueName="q")["QueueUrl"]
    topic = sns.list_topics()["Topics"][0]["TopicArn"]
    assert (
        json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
        == document
    )
    assert json.loads(sns.get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"]) == document

    update("Policies", {k: resources[k] for k in ("Queue", "Topic")})
    assert "Policy" not in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {})
    assert json.loads(sns.get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"]) != document


def execute_change_set(name: str, body: str, change_set_type: str = "CREATE") -> None:
    """Deploy the way the CDK CLI does: create a change set, then execute it."""
    cf = client("cloudformation")
    cf.create_change_set(StackName=name, ChangeSetName="cdk-deploy", TemplateBody=body, ChangeSetType=change_set_type)
    cf.execute_change_set(StackName=name, ChangeSetName="cdk-deploy")


def test_change_set_stacks_have_outputs_and_exports_that_other_stacks_import():
    exported = {"Name": {"Value": {"Ref": "Data"}, "Export": {"Name": "shared-bucket-name"}}}
    execute_change_set("Producer", template({"Data": bucket(BucketName="shared-bucket")}, exported))
    policy = {
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {
            "Bucket": {"Fn::ImportValue": "shared-bucket-name"},
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [SSL_ONLY]},
        },
    }
    execute_change_set("Consumer", template({"Policy": policy}))

    assert stack_outputs("Producer") == {"Name": "shared-bucket"}
    assert [e["Name"] for e in client("cloudformation").list_exports()["Exports"]] == ["shared-bucket-name"]
    assert json.loads(client("s3").get_bucket_policy(Bucket="shared-bucket")["Policy"])["Statement"] == [SSL_ONLY]

    renamed = {"Name": {"Value": {"Ref": "Data"}, "Export": {"Name": "renamed"}}}
    execute_change_set("Producer", template({"Data": bucket(BucketName="shared-bucket")}, renamed), "UPDATE")
    assert [e["Name"] for e in client("cloudformation").list_exports()["Exports"]] == ["renamed"]


# --- KMS ----------------------------------------------------------------------------------------------


def test_tagged_key_with_rotation_and_policy():
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*"}]}
    outputs = create(
        "Key",
        {
            "Key": {
                "Type": "AWS::KMS::Key",
                "Properties": {
                    "KeyPolicy": policy,
                    "EnableKeyRotation": True,
                    "Description": "data",
                    "Tags": [{"Key": "project", "Value": "cdk-mlops"}],
                },
            }
        },
        {"Arn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}}, "Id": {"Value": {"Ref": "Key"}}},
    )
    kms = client("kms")
    key_id = outputs["Id"]
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"] == outputs["Arn"]
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "project", "TagValue": "cdk-mlops"}]
    assert json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]) == policy

    update(
        "Key",
        {"Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": policy, "Tags": [{"Key": "a", "Value": "b"}]}}},
    )
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "a", "TagValue": "b"}]


# --- SageMaker ----------------------------------------------------------------------------------------

DEFINITION = json.dumps({"Version": "2020-12-01", "Steps": []})
ROLE = "arn:aws:iam::123456789012:role/sagemaker"


def pipeline(definition: dict[str, Any], name: str = "train") -> dict[str, Any]:
    return {
        "Type": "AWS::SageMaker::Pipeline",
        "Properties": {"PipelineName": name, "RoleArn": ROLE, "PipelineDefinition": definition},
    }


def test_pipeline_is_created_updated_in_place_and_deleted():
    outputs = create(
        "Train",
        {"Pipeline": pipeline({"PipelineDefinitionBody": DEFINITION})},
        {"Name": {"Value": {"Ref": "Pipeline"}}},
    )
    sagemaker = client("sagemaker")
    assert outputs["Name"] == "train"
    assert [p["PipelineName"] for p in sagemaker.list_pipelines()["PipelineSummaries"]] == ["train"]
    assert sagemaker.describe_pipeline(PipelineName="train")["PipelineDefinition"] == DEFINITION

    changed = json.dumps({"Version": "2020-12-01", "Steps": [], "Parameters": []})
    update("Train", {"Pipeline": pipeline({"PipelineDefinitionBody": changed})})
    assert sagemaker.describe_pipeline(PipelineName="train")["PipelineDefinition"] == changed

    delete("Train")
    assert sagemaker.list_pipelines()["PipelineSummaries"] == []


def test_pipeline_definition_can_come_from_s3():
    s3 = client("s3")
    s3.create_bucket(Bucket="definitions")
    s3.put_object(Bucket="definitions", Key="train.json", Body=DEFINITION.encode())
    location = {"PipelineDefinitionS3Location": {"Bucket": "definitions", "Key": "train.json"}}
    create("Train", {"Pipeline": pipeline(location)})
    assert client("sagemaker").describe_pipeline(PipelineName="train")["PipelineDefinition"] == DEFINITION


def test_model_package_group_ref_is_its_arn_and_delete_needs_it_empty():
    group = {"Type": "AWS::SageMaker::ModelPackageGroup", "Properties": {"ModelPackageGroupName": "models"}}
    outputs = create(
        "Registry",
        {"Group": group},
        {"Ref": {"Value": {"Ref": "Group"}}, "Arn": {"Value": {"Fn::GetAtt": ["Group", "ModelPackageGroupArn"]}}},
    )
    sagemaker = client("sagemaker")
    summary = sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
    assert [g["ModelPackageGroupName"] for g in summary] == ["models"]
    assert outputs["Ref"] == outputs["Arn"] == summary[0]["ModelPackageGroupArn"]

    sagemaker.create_model_package(ModelPackageGroupName="models", ModelPackageDescription="v1")
    with pytest.raises(Exception, match="holds 1 model package"):
        delete("Registry")
    assert len(sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]) == 1


# --- CloudWatch, Scheduler ----------------------------------------------------------------


def test_alarm_is_created_and_deleted():
    alarm = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": "dlq-not-empty",
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": "dlq"}],
            "Statistic": "Maximum",
            "Period": 300,
            "EvaluationPeriods": 1,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
        },
    }
    outputs = create("Alarm", {"Alarm": alarm}, {"Arn": {"Value": {"Fn::GetAtt": ["Alarm", "Arn"]}}})
    cloudwatch = client("cloudwatch")
    alarms = cloudwatch.describe_alarms(AlarmNames=["dlq-not-empty"])["MetricAlarms"]
    assert alarms[0]["AlarmArn"] == outputs["Arn"]
    assert alarms[0]["Dimensions"] == [{"Name": "QueueName", "Value": "dlq"}]
    delete("Alarm")
    assert cloudwatch.describe_alarms()["MetricAlarms"] == []


def test_schedule_is_created_with_a_generated_name_and_deleted():
    schedule = {
        "Type": "AWS::Scheduler::Schedule",
        "Properties": {
            "ScheduleExpression": "rate(7 days)",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": {"Arn": "arn:aws:lambda:us-east-1:123456789012:function:f", "RoleArn": ROLE},
        },
    }
    outputs = create(
        "WeeklyRetrainScheduleStackWithAVeryLongNameIndeed",
        {"Schedule": schedule},
        {"Name": {"Value": {"Ref": "Schedule"}}},
    )
    scheduler = client("scheduler")
    assert len(outputs["Name"]) <= 64
    assert scheduler.get_schedule(Name=outputs["Name"])["ScheduleExpression"] == "rate(7 days)"
    delete("WeeklyRetrainScheduleStackWithAVeryLongNameIndeed")
    assert scheduler.list_schedules()["Schedules"] == []


def test_parameter_takes_cloudformations_map_of_tags_and_is_updated_and_deleted():
    def parameter(value: str) -> dict[str, Any]:
        return {
            "Type": "AWS::SSM::Parameter",
            "Properties": {"Name": "/routes/x/prod-a", "Type": "String", "Value": value, "Tags": {"project": "p"}},
        }

    outputs = create("Routes", {"Route": parameter('{"format": 1}')}, {"Name": {"Value": {"Ref": "Route"}}})
    ssm = client("ssm")
    assert outputs["Name"] == "/routes/x/prod-a"
    assert ssm.get_parameter(Name="/routes/x/prod-a")["Parameter"]["Value"] == '{"format": 1}'
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId="/routes/x/prod-a")["TagList"]
    assert tags == [{"Key": "project", "Value": "p"}]
    update("Routes", {"Route": parameter('{"format": 2}')})
    assert ssm.get_parameter(Name="/routes/x/prod-a")["Parameter"]["Value"] == '{"format": 2}'
    delete("Routes")
    assert ssm.get_parameters_by_path(Path="/routes/x")["Parameters"] == []


# --- other custom resources ---------------------------------------------------------------------------


def test_unknown_custom_resources_succeed_without_effect_and_are_reported():
    create(
        "Custom",
        {
            "Thing": {"Type": "Custom::SomethingElse", "Properties": {"ServiceToken": "token"}},
            "Other": {"Type": "AWS::CloudFormation::CustomResource", "Properties": {"ServiceToken": "token"}},
        },
    )
    assert set(physical_ids("Custom")) == {"Thing", "Other"}
    assert {"Custom::SomethingElse", "AWS::CloudFormation::CustomResource"} <= set(
        cfn_shim.unemulated_custom_resources()
    )
    delete("Custom")
