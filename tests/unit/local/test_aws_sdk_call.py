"""The ``AwsCustomResource`` provider's steps, pure: names, parameters, the flattened response, physical ids.

The calls themselves, made on moto through CloudFormation, are in ``test_cfn_shim_network.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import botocore.session
import pytest
from moto import mock_aws
from moto.ec2.models import ec2_backends

from cdk_mlops.local.aws_sdk_call import (
    SdkCall,
    SdkCallError,
    SdkCallResult,
    botocore_operation,
    botocore_service,
    choose_physical_id,
    coerce,
    execute,
    flatten,
    is_provider,
    selected,
    with_physical_id,
)


# Both name lookups read every botocore service model (about 400) once: seconds, so `slow`.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "service"),
    [
        ("EC2", "ec2"),
        ("@aws-sdk/client-ec2", "ec2"),
        ("SSM", "ssm"),
        ("SageMaker", "sagemaker"),
        ("CloudWatchLogs", "logs"),
        ("cloudwatch-logs", "logs"),
        ("StepFunctions", "stepfunctions"),
        ("SFN", "stepfunctions"),
        ("CognitoIdentityServiceProvider", "cognito-idp"),
        ("@aws-sdk/client-eventbridge", "events"),
        ("CloudWatchEvents", "events"),
    ],
)
def test_sdk_client_names_map_to_botocore_services(name, service):
    assert botocore_service(name) == service


@pytest.mark.slow
def test_an_unknown_service_is_named_in_the_error():
    with pytest.raises(SdkCallError, match="no AWS service 'NoSuchService'"):
        botocore_service("NoSuchService")


@pytest.mark.parametrize(
    "action", ["describeManagedPrefixLists", "DescribeManagedPrefixLists", "DescribeManagedPrefixListsCommand"]
)
def test_sdk_actions_map_to_botocore_operations(action):
    operations = botocore.session.get_session().get_service_model("ec2").operation_names
    assert botocore_operation(operations, action) == "DescribeManagedPrefixLists"


def test_an_unknown_action_is_named_in_the_error():
    with pytest.raises(SdkCallError, match="no action 'describeNothing'"):
        botocore_operation(["DescribeVpcs"], "describeNothing")


def test_the_response_is_flattened_as_the_provider_does():
    response = {
        "PrefixLists": [
            {"PrefixListId": "pl-1", "Tags": [], "MaxEntries": 5, "Created": datetime(2026, 1, 1, tzinfo=UTC)}
        ],
        "Body": b"text",
        "Nested": {"Empty": {}, "Flag": False, "Nothing": None},
    }
    assert flatten(response) == {
        "PrefixLists.0.PrefixListId": "pl-1",
        "PrefixLists.0.MaxEntries": 5,
        "Body": "text",
        "Nested.Flag": False,
        "Nested.Nothing": None,
    }


def test_output_paths_keep_the_keys_that_start_with_them():
    data = {"apiVersion": "2016-11-15", "PrefixLists.0.PrefixListId": "pl-1", "PrefixLists.0.PrefixListName": "s3"}
    assert selected(data, ["PrefixLists.0.PrefixListId"]) == {"PrefixLists.0.PrefixListId": "pl-1"}
    assert selected(data, ["PrefixLists.0"]) == {k: v for k, v in data.items() if k.startswith("PrefixLists")}
    assert selected(data, None) == data


def test_strings_become_the_numbers_and_blobs_the_api_takes():
    session = botocore.session.get_session()
    prefix_lists = session.get_service_model("ec2").operation_model("DescribeManagedPrefixLists").input_shape
    assert coerce(prefix_lists, {"MaxResults": "5", "Filters": [{"Name": "n", "Values": ["1"]}]}) == {
        "MaxResults": 5,
        "Filters": [{"Name": "n", "Values": ["1"]}],
    }
    encrypt = session.get_service_model("kms").operation_model("Encrypt").input_shape
    assert coerce(encrypt, {"KeyId": "k", "Plaintext": "secret"}) == {"KeyId": "k", "Plaintext": b"secret"}


def test_the_physical_id_placeholder_is_replaced_everywhere():
    parameters = {"Name": "PHYSICAL:RESOURCEID:", "Tags": [{"Value": "PHYSICAL:RESOURCEID:"}], "Other": "x"}
    assert with_physical_id(parameters, "p-1") == {"Name": "p-1", "Tags": [{"Value": "p-1"}], "Other": "x"}


def call(**fields: object) -> SdkCall:
    return SdkCall.parse({"service": "SSM", "action": "getParameter", **fields})  # type: ignore[return-value]


def test_a_create_takes_the_first_declared_physical_id_or_the_logical_id():
    update = call(physicalResourceId={"id": "from-update"})
    assert (
        choose_physical_id("Create", {"Create": call(), "Update": update}, logical_id="L", current=None)
        == "from-update"
    )
    assert choose_physical_id("Create", {"Create": call()}, logical_id="L", current=None) == "L"


def test_updates_and_deletes_keep_the_current_physical_id_unless_their_call_names_one():
    calls = {"Update": call(), "Delete": call(physicalResourceId={"id": "new"})}
    assert choose_physical_id("Update", calls, logical_id="L", current="old") == "old"
    assert choose_physical_id("Delete", calls, logical_id="L", current="old") == "new"


def test_a_call_is_parsed_from_its_json_property():
    parsed = SdkCall.parse('{"service": "EC2", "action": "describeVpcs", "outputPath": "Vpcs.0.VpcId"}')
    assert parsed == SdkCall(service="EC2", action="describeVpcs", parameters={}, output_paths=("Vpcs.0.VpcId",))
    assert SdkCall.parse(None) is None
    with pytest.raises(SdkCallError, match="needs service and action"):
        SdkCall.parse('{"service": "EC2"}')


def test_the_provider_is_recognized_by_its_function():
    assert is_provider("arn:aws:lambda:us-east-1:123456789012:function:Net-AWS679f53fac002430cb0da5b7982bd2287-Ab")
    assert not is_provider("arn:aws:lambda:us-east-1:123456789012:function:something-else")
    assert not is_provider(None)


def test_calls_are_answered_in_process_even_with_an_endpoint_in_the_environment(monkeypatch: pytest.MonkeyPatch):
    # The Lambda runtime sets AWS_ENDPOINT_URL while a handler runs; the provider's calls must still stay here.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # moto's images take a second to load
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localhost:9")
    lookup = SdkCall.parse(
        {
            "service": "EC2",
            "action": "describeManagedPrefixLists",
            "parameters": {"Filters": [{"Name": "prefix-list-name", "Values": ["com.amazonaws.eu-west-1.s3"]}]},
            "outputPaths": ["PrefixLists.0.PrefixListId"],
        }
    )
    with mock_aws():
        result = execute("Create", {"Create": lookup}, logical_id="L", account_id="111122223333", region="eu-west-1")
        [expected] = [
            p.id
            for p in ec2_backends["111122223333"]["eu-west-1"].managed_prefix_lists.values()
            if p.prefix_list_name == "com.amazonaws.eu-west-1.s3"
        ]
    assert result == SdkCallResult("L", {"PrefixLists.0.PrefixListId": expected})
