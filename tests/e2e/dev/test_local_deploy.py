"""End to end: the pinned CDK CLI deploys the Dev stage to the embedded local AWS, then destroys it.

One deployment, shared with the closed loop's tests (tests/e2e/dev/conftest.py); the tests read
the AWS state through boto3 and state the expected values outright (a bucket is versioned
"Enabled", encrypted with the store's own key, refuses plain HTTP), so a setting missing from
both the template and the deployment fails. The destroy tests run last and share one destroy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cdk_mlops.local.deploy import check_stack
from tests.e2e.conftest import Deployment

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[3]
BUCKET, KEY = "AWS::S3::Bucket", "AWS::KMS::Key"


@pytest.fixture
def deployed(dev_stage: Deployment) -> Deployment:
    assert not dev_stage.destroyed, "these tests read the deployed state; they must run before the destroy tests"
    return dev_stage


@pytest.fixture
def destroyed(dev_stage_destroyed: Deployment) -> Deployment:
    return dev_stage_destroyed


def _status(cloudformation: Any, stack_name: str) -> str:
    try:
        return str(cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"])
    except ClientError as error:
        if "does not exist" in str(error):
            return "gone"
        raise


# --- after deploy ---------------------------------------------------------------------------------


def test_every_stack_is_complete_with_every_resource_provisioned(deployed):
    assert deployed.templates, "the Dev stage deployed no stacks"
    cloudformation = deployed.aws.client("cloudformation")
    for stack in deployed.templates:
        status = cloudformation.describe_stacks(StackName=stack.name)["Stacks"][0]["StackStatus"]
        assert status == "CREATE_COMPLETE", stack.name
        assert check_stack(deployed.aws, stack) == []
    assert all(s.name.startswith("Dev-") for s in deployed.templates)


def _physical_ids(deployment: Deployment, stack_name: str, resource_type: str, prefix: str) -> list[str]:
    """Physical ids of ``stack_name``'s ``resource_type`` resources whose logical id starts with ``prefix``."""
    return [
        deployment.physical_id(stack, logical_id)
        for stack, logical_id, _ in deployment.resources(resource_type)
        if stack.name == stack_name and logical_id.startswith(prefix)
    ]


def _statements(s3: Any, bucket: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    return statements


def test_every_bucket_is_versioned_and_refuses_plain_http_and_old_tls(deployed):
    s3 = deployed.aws.client("s3")
    buckets = [deployed.physical_id(stack, logical_id) for stack, logical_id, _ in deployed.resources(BUCKET)]
    assert len(buckets) == 3, "Dev has the data store's bucket, its access-log bucket and the inventory reports' bucket"
    for name in buckets:
        assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled", name
        denies = [(st["Action"], st["Condition"]) for st in _statements(s3, name) if st["Effect"] == "Deny"]
        assert ("s3:*", {"Bool": {"aws:SecureTransport": "false"}}) in denies, name
        assert ("s3:*", {"NumericLessThan": {"s3:TlsVersion": 1.2}}) in denies, name


def test_the_data_bucket_is_encrypted_with_the_stores_own_key_and_logs_to_the_log_bucket(deployed):
    s3, kms = deployed.aws.client("s3"), deployed.aws.client("kms")
    (bucket,) = _physical_ids(deployed, "Dev-Data", BUCKET, "StoreBucket")
    (log_bucket,) = _physical_ids(deployed, "Dev-Data", BUCKET, "StoreAccessLogs")
    (key_id,) = _physical_ids(deployed, "Dev-Data", KEY, "StoreKey")
    key_arn = kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
    assert key_arn.startswith("arn:aws:kms:us-east-1:")
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}
    assert rule["BucketKeyEnabled"] is True
    # S3 server access logs can only be delivered to a bucket with S3-managed keys.
    (log_rule,) = s3.get_bucket_encryption(Bucket=log_bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert log_rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"]["TargetBucket"] == log_bucket
    s3.put_object(Bucket=bucket, Key="datasets/e2e/rows.csv", Body=b"a,b\n1,2\n")
    assert s3.get_object(Bucket=bucket, Key="datasets/e2e/rows.csv")["Body"].read() == b"a,b\n1,2\n"


def test_every_key_is_enabled_and_rotates(deployed):
    kms = deployed.aws.client("kms")
    keys = [deployed.physical_id(stack, logical_id) for stack, logical_id, _ in deployed.resources(KEY)]
    assert len(keys) >= 3, "Dev has at least the store's, the trigger's and the notifications' keys"
    for key_id in keys:
        metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        assert (metadata["Enabled"], metadata["KeyManager"]) == (True, "CUSTOMER"), key_id
        assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True, key_id


def test_sagemaker_pipelines_and_model_package_groups_are_listed(deployed):
    pipelines = deployed.resources("AWS::SageMaker::Pipeline")
    groups = deployed.resources("AWS::SageMaker::ModelPackageGroup")
    if not pipelines and not groups:
        pytest.skip("the Dev stage has no SageMaker pipeline yet")
    sagemaker = deployed.aws.client("sagemaker")
    listed = {p["PipelineName"] for p in sagemaker.list_pipelines()["PipelineSummaries"]}
    for stack, logical_id, _ in pipelines:
        assert deployed.physical_id(stack, logical_id) in listed
    listed_groups = {
        g["ModelPackageGroupArn"] for g in sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
    }
    for stack, logical_id, _ in groups:
        assert deployed.physical_id(stack, logical_id) in listed_groups


# --- after destroy (keep these last) -------------------------------------------------------------------


def test_destroy_removes_every_stack(destroyed):
    cloudformation = destroyed.aws.client("cloudformation")
    for stack in destroyed.templates:
        assert _status(cloudformation, stack.name) in ("DELETE_COMPLETE", "gone"), stack.name


def test_destroy_keeps_the_data_its_key_and_the_access_logs(destroyed):
    s3, kms = destroyed.aws.client("s3"), destroyed.aws.client("kms")
    existing_buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    for prefix in ("StoreBucket", "StoreAccessLogs"):
        (name,) = _physical_ids(destroyed, "Dev-Data", BUCKET, prefix)
        assert name in existing_buckets, f"{prefix} {name} must outlive the stack"
    (key_id,) = _physical_ids(destroyed, "Dev-Data", KEY, "StoreKey")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
