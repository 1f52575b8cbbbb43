"""A custom resource served by a function of cdk_mlops.lambdas: its handler runs in process, as Lambda runs it.

Stacks are deployed as the CDK CLI deploys them (change sets, over HTTP to the local AWS server),
with the analysis configuration custom resource the model monitor declares.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from cdk_mlops.local import cfn_shim
from cdk_mlops.local.cfn_custom import resource_class_from_type, unemulated_custom_resources
from cdk_mlops.local.cfn_function_custom import (
    ANALYSIS_CONFIG_TYPE,
    LocalFunctionCustomResource,
    ResponseReceiver,
    as_cloudformation_sends,
    outcome,
)
from cdk_mlops.local.deploy import StackTemplate, check_stack
from cdk_mlops.local.server import LocalAws, local_aws

HANDLER = "cdk_mlops.lambdas.analysis_config.handler.handler"
SOURCE_BUCKET = "registry-artifacts"
SOURCE_KEY = "model-package/1/analysis_config.json"
NOT_SHAP_KEY = "model-package/2/analysis_config.json"
STORE = "monitoring-store"
TARGET_KEY = "monitoring/explainability-config/analysis_config.json"
SHAP_CONFIG = {
    "methods": {"shap": {"num_samples": 100, "agg_method": "mean_abs"}},
    "headers": ["tenure", "charges"],
    "predictor": {"content_type": "text/csv", "model_name": "registered-model"},
}
#: The handler's reason for a source without methods.shap.
NOT_SHAP_REASON = "the source is not a Clarify explainability configuration: it has no methods.shap object"
OTHER_ACCOUNT = "111111111111"


@pytest.fixture
def aws() -> Iterator[LocalAws]:
    with local_aws() as running:
        yield running


def registry(s3: Any) -> None:
    """The registered configurations the resources copy: a SHAP one, and one that is not."""
    s3.create_bucket(Bucket=SOURCE_BUCKET)
    s3.put_object(Bucket=SOURCE_BUCKET, Key=SOURCE_KEY, Body=json.dumps(SHAP_CONFIG).encode())
    s3.put_object(Bucket=SOURCE_BUCKET, Key=NOT_SHAP_KEY, Body=json.dumps({"methods": {"report": {}}}).encode())


def function(handler: str = HANDLER) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Handler": handler,
            "Runtime": "python3.12",
            "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            "Code": {"ZipFile": "# never run from here: the local AWS imports the handler"},
            "Timeout": 60,
        },
    }


def analysis_config(
    *, key: str = TARGET_KEY, model: str = "churn-a", source: str = SOURCE_KEY, function_id: str = "Function"
) -> dict[str, Any]:
    return {
        "ServiceToken": {"Fn::GetAtt": [function_id, "Arn"]},
        "SourceUri": f"s3://{SOURCE_BUCKET}/{source}",
        "TargetUri": {"Fn::Sub": f"s3://${{Store}}/{key}"},
        "ModelName": model,
        "InstanceType": "ml.m5.large",
        "InstanceCount": 2,
        "EndpointNamePrefix": "cdk-mlops-clarify",
    }


def template(*, outputs: dict[str, Any] | None = None, **config: Any) -> dict[str, Any]:
    """A function, the bucket the copy goes to, and the custom resource; ``Uri`` is ``Fn::GetAtt Config.Uri``."""
    return {
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    }
                },
            },
            "Function": function(),
            "Store": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": STORE}},
            "Config": {"Type": ANALYSIS_CONFIG_TYPE, "Properties": analysis_config(**config)},
        },
        "Outputs": outputs if outputs is not None else {"Uri": {"Value": {"Fn::GetAtt": ["Config", "Uri"]}}},
    }


def deploy(cloudformation: Any, stack: str, body: dict[str, Any], kind: str = "CREATE") -> StackTemplate:
    """Deploy as the CDK CLI does: its change set of a fixed name, deleted before an update, then executed."""
    if kind == "UPDATE":
        cloudformation.delete_change_set(StackName=stack, ChangeSetName="cdk-deploy-change-set")
    cloudformation.create_change_set(
        StackName=stack, ChangeSetName="cdk-deploy-change-set", TemplateBody=json.dumps(body), ChangeSetType=kind
    )
    cloudformation.execute_change_set(StackName=stack, ChangeSetName="cdk-deploy-change-set")
    return StackTemplate(stack, stack, body)


def described(cloudformation: Any, stack: str) -> dict[str, Any]:
    return dict(cloudformation.describe_stacks(StackName=stack)["Stacks"][0])


def outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in described(cloudformation, stack).get("Outputs", [])}


def physical_ids(cloudformation: Any, stack: str) -> dict[str, str]:
    resources = cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}


def copy(s3: Any, key: str = TARGET_KEY) -> dict[str, Any]:
    written: dict[str, Any] = json.loads(s3.get_object(Bucket=STORE, Key=key)["Body"].read())
    return written


def exists(s3: Any, bucket: str, key: str) -> bool:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
    return any(item["Key"] == key for item in listed)


def failed_events(cloudformation: Any, stack: str, status: str) -> list[dict[str, Any]]:
    events = cloudformation.describe_stack_events(StackName=stack)["StackEvents"]
    return [e for e in events if e["LogicalResourceId"] == "Config" and e["ResourceStatus"] == status]


# --- create, update, delete ------------------------------------------------------------------------------


def test_create_writes_the_copy_for_the_served_model_and_getatt_reads_its_uri(aws):
    s3, cloudformation = aws.client("s3"), aws.client("cloudformation")
    registry(s3)

    stack = deploy(cloudformation, "Monitor", template())

    uri = f"s3://{STORE}/{TARGET_KEY}"
    written = copy(s3)
    assert written["predictor"] == {
        "content_type": "text/csv",
        "model_name": "churn-a",
        "instance_type": "ml.m5.large",
        "initial_instance_count": 2,
        "endpoint_name_prefix": "cdk-mlops-clarify",
    }
    assert written["methods"] == SHAP_CONFIG["methods"]
    assert outputs(cloudformation, "Monitor") == {"Uri": uri}
    assert physical_ids(cloudformation, "Monitor")["Config"] == uri
    # The local deploy's check passes: complete, every resource there, nothing deployed without effect.
    assert check_stack(aws, stack) == []
    assert ANALYSIS_CONFIG_TYPE not in unemulated_custom_resources()


def test_an_update_to_a_new_target_writes_it_and_deletes_the_old_copy(aws):
    s3, cloudformation = aws.client("s3"), aws.client("cloudformation")
    registry(s3)
    deploy(cloudformation, "Monitor", template())

    new_key = "monitoring/explainability-config/v2/analysis_config.json"
    stack = deploy(cloudformation, "Monitor", template(key=new_key, model="churn-b"), kind="UPDATE")

    assert copy(s3, new_key)["predictor"]["model_name"] == "churn-b"
    assert not exists(s3, STORE, TARGET_KEY)  # CloudFormation's Delete of the old physical id
    assert outputs(cloudformation, "Monitor") == {"Uri": f"s3://{STORE}/{new_key}"}
    assert physical_ids(cloudformation, "Monitor")["Config"] == f"s3://{STORE}/{new_key}"
    assert check_stack(aws, stack) == []


def test_an_update_in_place_rewrites_the_copy_and_keeps_it(aws):
    s3, cloudformation = aws.client("s3"), aws.client("cloudformation")
    registry(s3)
    deploy(cloudformation, "Monitor", template())

    deploy(cloudformation, "Monitor", template(model="churn-b"), kind="UPDATE")

    assert copy(s3)["predictor"]["model_name"] == "churn-b"
    assert physical_ids(cloudformation, "Monitor")["Config"] == f"s3://{STORE}/{TARGET_KEY}"


def test_deleting_the_stack_deletes_the_copy(aws):
    s3, cloudformation = aws.client("s3"), aws.client("cloudformation")
    registry(s3)
    deploy(cloudformation, "Monitor", template())
    stack_id = described(cloudformation, "Monitor")["StackId"]

    cloudformation.delete_stack(StackName="Monitor")

    # The copy was deleted, so the bucket (S3 refuses to delete one that holds objects) went too.
    assert STORE not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert described(cloudformation, stack_id)["StackStatus"] == "DELETE_COMPLETE"


def test_the_copy_is_deleted_even_when_moto_deletes_the_function_first(aws):
    # CloudFormation deletes the resource before its function; moto deletes what an update removes in
    # the template's order, and the function comes first here.
    s3, cloudformation = aws.client("s3"), aws.client("cloudformation")
    registry(s3)
    body = template()
    deploy(cloudformation, "Monitor", body)
    assert list(body["Resources"]).index("Function") < list(body["Resources"]).index("Config")
    kept = {name: body["Resources"][name] for name in ("Role", "Store")}

    deploy(cloudformation, "Monitor", {"Resources": kept}, kind="UPDATE")

    assert set(physical_ids(cloudformation, "Monitor")) == {"Role", "Store"}
    assert not exists(s3, STORE, TARGET_KEY)


# --- failures --------------------------------------------------------------------------------------------


def test_a_source_that_is_not_a_shap_configuration_fails_the_stack_with_the_handlers_reason(aws):
    s3, cloudformation = aws.client("s3"), aws.client("cloudformation")
    registry(s3)

    with pytest.raises(ClientError) as raised:
        deploy(cloudformation, "Monitor", template(source=NOT_SHAP_KEY))

    assert NOT_SHAP_REASON in raised.value.response["Error"]["Message"]
    stack = described(cloudformation, "Monitor")
    assert stack["StackStatus"] == "CREATE_FAILED"
    assert NOT_SHAP_REASON in stack["StackStatusReason"]
    [event] = failed_events(cloudformation, "Monitor", "CREATE_FAILED")
    assert event["ResourceStatusReason"].startswith("Received response status [FAILED] from custom resource.")
    assert NOT_SHAP_REASON in event["ResourceStatusReason"]
    assert not exists(s3, STORE, TARGET_KEY)
    # The failed resource keeps the physical id it answered, and listing it does not create it again.
    assert physical_ids(cloudformation, "Monitor")["Config"].startswith("failed-")
    assert len(failed_events(cloudformation, "Monitor", "CREATE_FAILED")) == 1
    assert "Monitor: status CREATE_FAILED" in check_stack(aws, StackTemplate("Monitor", "Monitor", template()))
    # It is deleted with the stack (its physical id is no s3:// URI, so the handler deletes nothing).
    stack_id = stack["StackId"]
    cloudformation.delete_stack(StackName="Monitor")
    assert described(cloudformation, stack_id)["StackStatus"] == "DELETE_COMPLETE"


def test_a_failed_update_fails_the_stack_once_and_keeps_the_copy(aws):
    s3, cloudformation = aws.client("s3"), aws.client("cloudformation")
    registry(s3)
    deploy(cloudformation, "Monitor", template())

    with pytest.raises(ClientError, match=r"no methods\.shap object"):
        deploy(cloudformation, "Monitor", template(source=NOT_SHAP_KEY, model="churn-b"), kind="UPDATE")

    stack = described(cloudformation, "Monitor")
    assert stack["StackStatus"] == "UPDATE_FAILED"
    assert NOT_SHAP_REASON in stack["StackStatusReason"]
    # moto retries a failed update; CloudFormation sends the request once.
    assert len(failed_events(cloudformation, "Monitor", "UPDATE_FAILED")) == 1
    assert copy(s3)["predictor"]["model_name"] == "churn-a"


def test_getatt_of_a_key_the_answer_lacks_names_the_resource_and_its_keys(aws):
    s3, cloudformation = aws.client("s3"), aws.client("cloudformation")
    registry(s3)
    body = template(outputs={})
    body["Resources"]["Reader"] = {
        "Type": "AWS::SSM::Parameter",
        "Properties": {"Type": "String", "Value": {"Fn::GetAtt": ["Config", "Arn"]}},
    }

    with pytest.raises(ClientError) as raised:
        deploy(cloudformation, "Monitor", body)

    message = raised.value.response["Error"]["Message"]
    assert "Fn::GetAtt Config.Arn" in message
    assert "['Uri']" in message


def test_under_the_in_process_mock_the_resource_fails_saying_it_needs_the_server(aws_env):
    cfn_shim.install()
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name="us-east-1")
        registry(boto3.client("s3", region_name="us-east-1"))
        with pytest.raises(ClientError, match="runs only when CloudFormation is served by the local AWS server"):
            cloudformation.create_stack(StackName="Monitor", TemplateBody=json.dumps(template()))


# --- accounts and routing --------------------------------------------------------------------------------


def test_the_functions_calls_reach_the_stacks_account(aws, monkeypatch):
    # Without cross-account bucket access, a call in any other account finds neither bucket.
    monkeypatch.setenv("MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS", "false")
    assumed = aws.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/deployer", RoleSessionName="cli"
    )
    credentials = {
        "aws_access_key_id": assumed["Credentials"]["AccessKeyId"],
        "aws_secret_access_key": assumed["Credentials"]["SecretAccessKey"],
        "aws_session_token": assumed["Credentials"]["SessionToken"],
    }
    s3, cloudformation = aws.client("s3", **credentials), aws.client("cloudformation", **credentials)
    registry(s3)

    deploy(cloudformation, "Monitor", template())

    assert f":{OTHER_ACCOUNT}:" in described(cloudformation, "Monitor")["StackId"]
    assert copy(s3)["predictor"]["model_name"] == "churn-a"


def test_any_custom_type_served_by_a_local_function_of_the_package_runs_and_others_stay_unemulated(aws):
    s3, cloudformation = aws.client("s3"), aws.client("cloudformation")
    registry(s3)
    body = template()
    body["Resources"]["Foreign"] = function(handler="index.handler")
    body["Resources"]["Renamed"] = {"Type": "Custom::RenamedConfig", "Properties": analysis_config(key="renamed.json")}
    body["Resources"]["Elsewhere"] = {
        "Type": "Custom::ForeignConfig",
        "Properties": analysis_config(key="foreign.json", function_id="Foreign"),
    }

    deploy(cloudformation, "Monitor", body)

    assert copy(s3, "renamed.json")["predictor"]["model_name"] == "churn-a"
    assert not exists(s3, STORE, "foreign.json")
    assert "Custom::RenamedConfig" not in unemulated_custom_resources()
    assert "Custom::ForeignConfig" in unemulated_custom_resources()
    assert resource_class_from_type(ANALYSIS_CONFIG_TYPE) is LocalFunctionCustomResource


# --- the answer ------------------------------------------------------------------------------------------


def put(url: str, body: bytes, content_type: str = "") -> int:
    request = Request(url, data=body, method="PUT", headers={"Content-Type": content_type})
    with urlopen(request, timeout=5) as response:
        return int(response.status)


def test_the_response_url_takes_a_put_as_the_presigned_s3_url_does():
    with ResponseReceiver("request-1") as receiver:
        assert receiver.url.startswith("http://127.0.0.1:")
        with pytest.raises(HTTPError) as refused:
            put(receiver.url, b"{}", content_type="application/json")  # not what the URL is signed for
        assert refused.value.code == 403
        with pytest.raises(HTTPError):
            put(receiver.url.replace("request-1", "request-2"), b"{}")
        assert receiver.body is None
        assert put(receiver.url, b'{"Status": "SUCCESS"}') == 200
        assert receiver.body == b'{"Status": "SUCCESS"}'


EVENT = {"StackId": "arn:stack", "RequestId": "r-1", "LogicalResourceId": "Config"}


def answer(**fields: Any) -> bytes:
    return json.dumps({**EVENT, "Status": "SUCCESS", "PhysicalResourceId": "s3://b/k", **fields}).encode()


def test_an_answer_is_judged_as_cloudformation_judges_it():
    assert outcome(EVENT, answer(Data={"Uri": "s3://b/k"})).data == {"Uri": "s3://b/k"}
    failed = outcome(EVENT, answer(Status="FAILED", Reason="no shap"))
    assert failed.failure == (
        "Received response status [FAILED] from custom resource. Message returned: no shap (RequestId: r-1)"
    )
    assert failed.physical_id == "s3://b/k"
    assert "does not match" in str(outcome(EVENT, answer(RequestId="r-2")).failure)
    assert "Invalid PhysicalResourceId" in str(outcome(EVENT, answer(PhysicalResourceId="")).failure)
    assert "too long" in str(outcome(EVENT, answer(Data={"x": "y" * 5000})).failure)
    silent = outcome(EVENT, None, RuntimeError("boom"))
    assert "did not receive a response" in str(silent.failure)
    assert "RuntimeError: boom" in str(silent.failure)


def test_properties_reach_the_function_as_cloudformation_passes_them():
    sent = as_cloudformation_sends({"Count": 2, "Ratio": 0.5, "On": True, "Tags": [{"Keep": False}], "Name": "x"})
    assert sent == {"Count": "2", "Ratio": "0.5", "On": "true", "Tags": [{"Keep": "false"}], "Name": "x"}
