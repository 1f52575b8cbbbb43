"""RetrainTrigger: the handler gets Powertools for AWS Lambda from AWS's managed layer, or from one given."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template

from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.retrain_trigger import POWERTOOLS_LAYER_VERSION, RetrainTrigger
from cdk_mlops.errors import ConfigurationError
from tests.quality import cfn_lint_findings, nag_findings

ACCOUNT = "123456789012"
LAYER = "AWSLambdaPowertoolsPythonV3-python314-x86_64"


def _trigger(region: str | None, **kwargs: Any) -> tuple[cdk.Stack, RetrainTrigger]:
    env = cdk.Environment(account=ACCOUNT, region=region) if region else None
    stack = cdk.Stack(cdk.App(), "Powertools", env=env)
    store = VersionedDataStore(stack, "Data")
    trigger = RetrainTrigger(stack, "Retrain", data_store=store, datasets=["churn"], pipeline_name="train", **kwargs)
    return stack, trigger


def _layers(stack: cdk.Stack, trigger: RetrainTrigger) -> Any:
    resources = Template.from_stack(stack).to_json()["Resources"]
    return resources[stack.get_logical_id(trigger.function.node.default_child)]["Properties"]["Layers"]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("region", "arn"),
    [
        ("eu-west-1", f"arn:aws:lambda:eu-west-1:017000801446:layer:{LAYER}"),
        ("ap-southeast-7", f"arn:aws:lambda:ap-southeast-7:017000801446:layer:{LAYER}"),
        ("cn-north-1", f"arn:aws-cn:lambda:cn-north-1:498634801083:layer:{LAYER}"),
    ],
)
def test_the_handler_uses_aws_managed_powertools_layer_of_its_region(region: str, arn: str) -> None:
    stack, trigger = _trigger(region)
    assert _layers(stack, trigger) == [f"{arn}:{POWERTOOLS_LAYER_VERSION}"]
    assert trigger.powertools_layer.layer_version_arn == f"{arn}:{POWERTOOLS_LAYER_VERSION}"


def test_a_stack_without_a_region_uses_the_layer_of_the_region_it_deploys_to() -> None:
    stack, trigger = _trigger(None)
    assert _layers(stack, trigger) == [
        {
            "Fn::Join": [
                "",
                [
                    "arn:aws:lambda:",
                    {"Ref": "AWS::Region"},
                    f":017000801446:layer:{LAYER}:{POWERTOOLS_LAYER_VERSION}",
                ],
            ]
        }
    ]


@pytest.mark.parametrize("region", ["us-gov-west-1", "cn-northwest-1", "ap-southeast-6", "eusc-de-east-1"])
def test_where_aws_publishes_no_layer_synth_names_the_region_and_the_fix(region: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _trigger(region)
    [problem] = [p for p in caught.value.problems if "Powertools" in p]
    assert f"AWS publishes no managed Powertools for AWS Lambda (Python) v3 layer in {region}" in problem
    assert "powertools_layer=" in problem


def test_a_given_layer_is_used_in_any_region() -> None:
    arn = f"arn:aws-us-gov:lambda:us-gov-west-1:{ACCOUNT}:layer:powertools-python314-x86_64:3"
    stack = cdk.Stack(cdk.App(), "Own", env=cdk.Environment(account=ACCOUNT, region="us-gov-west-1"))
    layer = lambda_.LayerVersion.from_layer_version_arn(stack, "Powertools", arn)
    store = VersionedDataStore(stack, "Data")
    trigger = RetrainTrigger(
        stack, "Retrain", data_store=store, datasets=["churn"], pipeline_name="train", powertools_layer=layer
    )
    assert _layers(stack, trigger) == [arn]
    assert trigger.powertools_layer is layer


def test_the_stack_with_the_layer_passes_cfn_lint_and_cdk_nag() -> None:
    stack, _ = _trigger("eu-west-1")
    assert cfn_lint_findings(Template.from_stack(stack).to_json(), region="eu-west-1") == []
    assert nag_findings(stack) == []
