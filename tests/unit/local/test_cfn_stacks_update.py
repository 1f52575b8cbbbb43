"""Updating a stack through change sets, as the CDK CLI does on a second deploy, on the local AWS."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

TEMPLATE = {
    "Parameters": {
        "BootstrapVersion": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/cdk-bootstrap/test/version"}
    },
    "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
}


@pytest.fixture(scope="module")
def cloudformation():
    from cdk_mlops.local.server import local_aws

    with local_aws() as aws:
        aws.client("ssm").put_parameter(Name="/cdk-bootstrap/test/version", Value="30", Type="String")
        yield aws.client("cloudformation")


def _deploy(cloudformation, stack: str, template: dict[str, Any], kind: str, **extra: Any) -> None:
    cloudformation.create_change_set(
        StackName=stack,
        ChangeSetName="cdk-deploy-change-set",
        TemplateBody=json.dumps(template),
        ChangeSetType=kind,
        **extra,
    )
    cloudformation.execute_change_set(StackName=stack, ChangeSetName="cdk-deploy-change-set")


def test_a_deleted_change_set_is_gone_for_its_stack_only(cloudformation):
    for stack in ("A", "B"):
        _deploy(cloudformation, stack, TEMPLATE, "CREATE")
    cloudformation.delete_change_set(StackName="A", ChangeSetName="cdk-deploy-change-set")
    with pytest.raises(ClientError) as raised:
        cloudformation.describe_change_set(StackName="A", ChangeSetName="cdk-deploy-change-set")
    assert raised.value.response["Error"]["Code"] == "ChangeSetNotFound"
    assert cloudformation.describe_change_set(StackName="B", ChangeSetName="cdk-deploy-change-set")["StackName"] == "B"
    # the CLI deletes before every update, whether a change set is left or not
    cloudformation.delete_change_set(StackName="A", ChangeSetName="cdk-deploy-change-set")


def test_an_update_keeps_the_ssm_parameter_it_resolves(cloudformation):
    _deploy(cloudformation, "C", TEMPLATE, "CREATE")
    updated = {**TEMPLATE, "Resources": {**TEMPLATE["Resources"], "Other": {"Type": "AWS::SQS::Queue"}}}
    cloudformation.delete_change_set(StackName="C", ChangeSetName="cdk-deploy-change-set")
    _deploy(
        cloudformation,
        "C",
        updated,
        "UPDATE",
        Parameters=[{"ParameterKey": "BootstrapVersion", "UsePreviousValue": True}],
    )
    stack = cloudformation.describe_stacks(StackName="C")["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    resources = cloudformation.describe_stack_resources(StackName="C")["StackResources"]
    assert {r["LogicalResourceId"] for r in resources} == {"Queue", "Other"}
