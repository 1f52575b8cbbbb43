"""Local deploys: the context the CLI gets, and what :func:`check_stack` reports after a deploy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cdk_mlops.local.aws_sdk_call import PROVIDER_ID
from cdk_mlops.local.cfn_coverage import UNMODELLED
from cdk_mlops.local.deploy import StackTemplate, check_stack, local_context
from cdk_mlops.local.server import LocalAws, local_aws


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with local_aws() as running:
        yield running


def deployed(aws: LocalAws, name: str, resources: dict[str, Any]) -> StackTemplate:
    template = {"Resources": resources}
    aws.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))
    return StackTemplate(name, name, template)


def test_a_type_nobody_models_is_refused_before_anything_is_created_with_the_reason(aws):
    template = {
        "Resources": {
            "Url": {"Type": "AWS::Lambda::Url", "Properties": {"AuthType": "NONE"}},
            "Queue": {"Type": "AWS::SQS::Queue"},
            "Odd": {"Type": "AWS::Made::Up"},
        }
    }
    cloudformation = aws.client("cloudformation")
    with pytest.raises(ClientError) as raised:
        cloudformation.create_stack(StackName="Unknown", TemplateBody=json.dumps(template))
    error = raised.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert error["Message"] == (
        "the local AWS cannot provision 2 type(s) of stack Unknown: AWS::Lambda::Url: moto serves no function "
        f"URLs, so there is nothing to create one on; AWS::Made::Up: {UNMODELLED}"
    )
    # Nothing was created: not the stack, not the queue it also held.
    assert "Unknown" not in {s["StackName"] for s in cloudformation.list_stacks()["StackSummaries"]}
    assert aws.client("sqs").list_queues().get("QueueUrls", []) == []


def test_a_resource_the_stack_lacks_after_a_deploy_is_reported_with_the_fix(aws):
    # A type refused up front never gets here; check_stack still catches a resource that failed to appear.
    stack = StackTemplate("Partial", "Partial", {"Resources": {"Gone": {"Type": "AWS::SQS::Queue"}}})
    aws.client("cloudformation").create_stack(StackName="Partial", TemplateBody=json.dumps({"Resources": {}}))
    assert check_stack(aws, stack) == [
        "Partial: 1 x AWS::SQS::Queue not provisioned: neither moto's CloudFormation nor cdk_mlops.local.cfn_shim "
        "models this type (add a model to cfn_shim)"
    ]


def test_a_custom_resource_without_emulation_is_reported_and_emulated_ones_are_not(aws):
    lookup = {
        "service": "EC2",
        "action": "describeManagedPrefixLists",
        "parameters": {"Filters": [{"Name": "prefix-list-name", "Values": [f"com.amazonaws.{aws.region}.s3"]}]},
        "physicalResourceId": {"id": "s3"},
    }
    provider = f"arn:aws:lambda:{aws.region}:123456789012:function:Net-{PROVIDER_ID}-AbCd"
    stack = deployed(
        aws,
        "Customs",
        {
            "Lookup": {"Type": "Custom::AWS", "Properties": {"ServiceToken": provider, "Create": json.dumps(lookup)}},
            "Other": {"Type": "Custom::Unknown", "Properties": {"ServiceToken": "arn:aws:lambda:::function:x"}},
        },
    )
    assert check_stack(aws, stack) == [
        "Customs: 1 x Custom::Unknown deployed without effect: its provider function does not run locally, so "
        "nothing it does happens and Fn::GetAtt on it is empty (emulate it in cdk_mlops.local.cfn_shim)"
    ]


def test_overrides_replace_the_environments_settings(tmp_path: Path):
    cdk_json = {"context": {"environments": {"dev": {"profile": "dev", "network": "none"}}}}
    (tmp_path / "cdk.json").write_text(json.dumps(cdk_json))
    arguments = local_context(tmp_path, "111122223333", "eu-west-1", "dev", {"network": "isolated"})
    assert arguments[0] == "--context"
    assert json.loads(arguments[1].removeprefix("environments=")) == {
        "dev": {"profile": "dev", "network": "isolated", "account": "111122223333", "region": "eu-west-1"}
    }
    assert arguments[2:] == ["--context", "tooling=null"]
