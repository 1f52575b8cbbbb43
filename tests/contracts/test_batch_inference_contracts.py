"""Every step of the batch scoring pipeline is a request the SageMaker API accepts.

The definition is the one ``BatchInference`` deploys, resolved as CloudFormation would resolve
its tokens; each step's ``Arguments`` are then substituted as SageMaker Pipelines does for an
execution (``tests/contracts/botocore_checks.py``) and validated against botocore's SageMaker
model: ``Model`` as ``CreateModel``, ``PrepareInput`` as ``CreateProcessingJob`` and
``Transform`` as ``CreateTransformJob``. The executions are the definition's defaults and the
start the retrain trigger makes without a champion.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Template

from cdk_mlops.constructs.batch_inference import BatchInference
from cdk_mlops.constructs.common import sagemaker_image_uri
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.lambdas.retrain_trigger import core
from tests.contracts import botocore_checks as checks
from tests.quality import logical_id, resolve_like_cloudformation

ACCOUNT, REGION = "123456789012", "eu-west-1"
PACKAGE = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/churn-models/3"
NAME = "churn-scoring"


def deployed_definition(*, vpc: bool = False, capture: bool = True) -> dict[str, Any]:
    """The scoring definition as deployed: the template's definition body with its tokens resolved."""
    app = cdk.App()
    stack = cdk.Stack(app, "Scoring", env=cdk.Environment(account=ACCOUNT, region=REGION))
    store = VersionedDataStore(stack, "Data", datasets=["churn"])
    network: dict[str, Any] = {}
    if vpc:
        network["vpc"] = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0)
        network["vpc_subnets"] = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
    scoring = BatchInference(
        stack,
        "Scoring",
        data_store=store,
        dataset="churn",
        name=NAME,
        model_package_arn=PACKAGE,
        image_uri=sagemaker_image_uri(stack, "xgboost"),
        capture=capture,
        **network,
    )
    template = Template.from_stack(stack).to_json()
    body = template["Resources"][logical_id(scoring.pipeline)]["Properties"]["PipelineDefinition"]
    text = resolve_like_cloudformation(body["PipelineDefinitionBody"], template, region=REGION, service_arns=True)
    definition: dict[str, Any] = json.loads(text)
    return definition


def trigger_execution(definition: dict[str, Any]) -> checks.Execution:
    """The execution the retrain trigger starts for a new snapshot, without champion parameters."""
    start = checks.trigger_start(pipeline_name=NAME, bucket=f"data-{ACCOUNT}", rival=core.Champion(None, {}))
    sent = {p["Name"]: p["Value"] for p in start["PipelineParameters"]}
    assert sorted(sent) == ["DataVersion", "InputManifestUri", "ManifestSha256", "TriggerReason"]
    assert checks.request_problems("StartPipelineExecution", start) == []
    assert set(sent) <= {p["Name"] for p in definition["Parameters"]}
    return checks.Execution("retrain trigger, no champion", NAME, REGION, ACCOUNT, sent)


@pytest.fixture(scope="module")
def definitions() -> dict[str, dict[str, Any]]:
    return {
        "default": deployed_definition(),
        "vpc": deployed_definition(vpc=True),
        "no capture": deployed_definition(capture=False),
    }


@pytest.mark.parametrize("layout", ["default", "vpc", "no capture"])
@pytest.mark.parametrize("started_by", ["defaults", "trigger"])
def test_every_scoring_step_is_a_valid_api_request(definitions, layout, started_by):
    definition = definitions[layout]
    if started_by == "defaults":
        execution = checks.Execution(checks.DEFAULTS, NAME, REGION, ACCOUNT)
    else:
        execution = trigger_execution(definition)
    requests = checks.step_requests(definition, execution)
    # Not vacuous: each step is checked as the API it calls.
    assert [(r.step, r.operation) for r in requests] == [
        ("Model", "CreateModel"),
        ("PrepareInput", "CreateProcessingJob"),
        ("Transform", "CreateTransformJob"),
    ]
    problems = {f"{r.step} ({r.operation})": r.problems() for r in requests}
    assert problems == {key: [] for key in problems}


def test_the_checker_finds_a_broken_transform_and_model(definitions):
    definition = json.loads(json.dumps(definitions["default"]))
    model, _, transform = definition["Steps"]
    transform["Arguments"]["TransformInput"]["SplitType"] = "Lines"
    del transform["Arguments"]["TransformResources"]["InstanceType"]
    model["Arguments"]["PrimaryContainer"]["ModelPackage"] = model["Arguments"]["PrimaryContainer"].pop(
        "ModelPackageName"
    )
    execution = checks.Execution(checks.DEFAULTS, NAME, REGION, ACCOUNT)
    found = checks.problems_by_step(definition, execution)
    text = json.dumps(found)
    assert "Lines" in text
    assert "InstanceType" in text
    assert "ModelPackage" in text
    assert set(found) == {"Model (CreateModel)", "Transform (CreateTransformJob)"}
