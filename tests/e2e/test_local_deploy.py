"""End to end: the pinned CDK CLI deploys the Dev stage to the embedded local AWS, then destroys it.

One module-scoped deployment (it takes seconds, not milliseconds); the tests after it read
the AWS state through boto3 and compare it with the synthesized templates, so they follow
the stage as stacks are added. The destroy tests come last and share one destroy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cdk_mlops.local.deploy import StackTemplate, check_stack, deploy_stage, destroy_stage
from cdk_mlops.local.server import LocalAws, local_aws, require_loopback

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Deployment:
    aws: LocalAws
    templates: list[StackTemplate]
    output: Path
    physical_ids: dict[tuple[str, str], str]
    destroyed: bool = False

    def resources(self, resource_type: str) -> list[tuple[StackTemplate, str, dict[str, Any]]]:
        """(stack, logical id, resource) of every resource of a type in the deployed templates."""
        return [
            (stack, logical_id, resource)
            for stack in self.templates
            for logical_id, resource in stack.template.get("Resources", {}).items()
            if resource["Type"] == resource_type
        ]

    def physical_id(self, stack: StackTemplate, logical_id: str) -> str:
        """The physical id a resource had after deploy (still known after destroy)."""
        return self.physical_ids[(stack.name, logical_id)]


def deploy_dev(output: Path, overrides: dict[str, Any] | None = None) -> Iterator[Deployment]:
    """Deploy Dev (with ``overrides`` of its configuration) to a fresh local AWS, for a module's fixture."""
    if not (REPO_ROOT / "node_modules" / ".bin" / "cdk").exists():
        pytest.fail("the e2e tests need the pinned CDK CLI; run `make install` (npm ci)")
    with local_aws() as aws:
        require_loopback(aws.endpoint_url)
        templates, _ = deploy_stage(aws, directory=REPO_ROOT, output=output, overrides=overrides)
        cloudformation = aws.client("cloudformation")
        physical_ids = {
            (stack.name, r["LogicalResourceId"]): r["PhysicalResourceId"]
            for stack in templates
            for r in cloudformation.describe_stack_resources(StackName=stack.name)["StackResources"]
            if r.get("LogicalResourceId")
        }
        yield Deployment(aws, templates, output, physical_ids)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from deploy_dev(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture
def deployed(deployment: Deployment) -> Deployment:
    assert not deployment.destroyed, "these tests read the deployed state; they must run before the destroy tests"
    return deployment


@pytest.fixture(scope="module")
def destroyed(deployment: Deployment) -> Deployment:
    destroy_stage(deployment.aws, directory=REPO_ROOT, output=deployment.output)
    deployment.destroyed = True
    return deployment


def _resolve_key_arn(deployment: Deployment, stack: StackTemplate, reference: Any) -> str:
    """The ARN of the key a template's ``KMSMasterKeyID`` points at (a Ref/GetAtt in the stack, or a literal)."""
    if isinstance(reference, str):
        return reference
    logical_id = reference["Fn::GetAtt"][0] if "Fn::GetAtt" in reference else reference["Ref"]
    key_id = deployment.physical_id(stack, logical_id)
    return str(deployment.aws.client("kms").describe_key(KeyId=key_id)["KeyMetadata"]["Arn"])


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


def test_buckets_have_versioning_and_encryption_as_their_templates_say(deployed):
    buckets = deployed.resources("AWS::S3::Bucket")
    if not buckets:
        pytest.skip("the Dev stage has no S3 bucket yet")
    s3 = deployed.aws.client("s3")
    for stack, logical_id, resource in buckets:
        name = deployed.physical_id(stack, logical_id)
        properties = resource.get("Properties", {})
        expected_versioning = properties.get("VersioningConfiguration", {}).get("Status")
        assert s3.get_bucket_versioning(Bucket=name).get("Status") == expected_versioning, name
        sse = properties.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration")
        if sse:
            rule = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"][0]
            default = sse[0]["ServerSideEncryptionByDefault"]
            assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == default["SSEAlgorithm"], name
            if "KMSMasterKeyID" in default:
                expected_key = _resolve_key_arn(deployed, stack, default["KMSMasterKeyID"])
                assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == expected_key, name


def test_the_data_bucket_is_versioned_and_kms_encrypted(deployed):
    data_buckets = [
        (stack, logical_id)
        for stack, logical_id, resource in deployed.resources("AWS::S3::Bucket")
        if stack.name == "Dev-Data"
        and resource.get("Properties", {})
        .get("BucketEncryption", {})
        .get("ServerSideEncryptionConfiguration", [{}])[0]
        .get("ServerSideEncryptionByDefault", {})
        .get("SSEAlgorithm")
        == "aws:kms"
    ]
    if not data_buckets:
        pytest.skip("the Dev stage has no data store bucket yet")
    s3 = deployed.aws.client("s3")
    for stack, logical_id in data_buckets:
        name = deployed.physical_id(stack, logical_id)
        assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
        rule = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"].startswith("arn:aws:kms:us-east-1:")
        s3.put_object(Bucket=name, Key="datasets/e2e/rows.csv", Body=b"a,b\n1,2\n")
        assert s3.get_object(Bucket=name, Key="datasets/e2e/rows.csv")["Body"].read() == b"a,b\n1,2\n"


def test_keys_exist_with_rotation_as_their_templates_say(deployed):
    kms = deployed.aws.client("kms")
    keys = deployed.resources("AWS::KMS::Key")
    assert keys, "the Dev stage has no KMS key"
    for stack, logical_id, resource in keys:
        key_id = deployed.physical_id(stack, logical_id)
        assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Enabled"] is True
        expected = resource.get("Properties", {}).get("EnableKeyRotation", False) in (True, "true")
        assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is expected


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


def test_destroy_keeps_retained_buckets_and_keys_and_deletes_the_rest(destroyed):
    s3 = destroyed.aws.client("s3")
    kms = destroyed.aws.client("kms")
    existing_buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    retained_keys = [
        (stack, logical_id)
        for stack, logical_id, resource in destroyed.resources("AWS::KMS::Key")
        if resource.get("DeletionPolicy") == "Retain"
    ]
    for stack, logical_id, resource in destroyed.resources("AWS::S3::Bucket"):
        name = destroyed.physical_id(stack, logical_id)
        if resource.get("DeletionPolicy") == "Retain":
            assert name in existing_buckets, f"{name} should be retained"
        else:
            assert name not in existing_buckets, f"{name} should be deleted"
    for stack, logical_id in retained_keys:
        key_id = destroyed.physical_id(stack, logical_id)
        assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"] == key_id
