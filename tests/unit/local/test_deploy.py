"""Local deploys: the context the CLI gets, and what :func:`check_stack` reports after a deploy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cdk_mlops.local.aws_sdk_call import PROVIDER_ID
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


def test_a_type_nobody_models_is_reported_with_the_fix(aws):
    stack = deployed(aws, "Unknown", {"Url": {"Type": "AWS::Lambda::Url", "Properties": {"AuthType": "NONE"}}})
    assert check_stack(aws, stack) == [
        "Unknown: 1 x AWS::Lambda::Url not provisioned: neither moto's CloudFormation nor cdk_mlops.local.cfn_shim "
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
