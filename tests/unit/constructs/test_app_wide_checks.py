"""Mistakes that only show across constructs, or against where a construct deploys, fail synth.

Two pipelines or endpoints with one name in the same account and region (deploy would refuse the
second), two retrain triggers for one pipeline (two locks: two runs at once), a dataset the store
does not declare, and a model package of another region, partition or without a version.
"""

from __future__ import annotations

import aws_cdk as cdk
import pytest

from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.model_endpoint import ModelEndpoint
from cdk_mlops.constructs.retrain_trigger import RetrainTrigger
from cdk_mlops.constructs.training_pipeline import TrainingPipeline
from cdk_mlops.errors import ConfigurationError

EU = cdk.Environment(account="123456789012", region="eu-west-1")
PACKAGE = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-models/3"


def synth_errors(app: cdk.App) -> str:
    with pytest.raises(RuntimeError) as caught:
        app.synth()
    return str(caught.value)


def pipeline(stack: cdk.Stack, id: str, name: str, store: VersionedDataStore | None = None) -> TrainingPipeline:
    store = store or VersionedDataStore(stack, f"{id}Data", datasets=["churn"])
    return TrainingPipeline(stack, id, data_store=store, dataset="churn", pipeline_name=name)


def test_two_pipelines_with_one_name_in_one_account_and_region_fail_synth_naming_both() -> None:
    app = cdk.App()
    pipeline(cdk.Stack(app, "A", env=EU), "Training", "churn")
    pipeline(cdk.Stack(app, "B", env=EU), "Training", "churn")
    errors = synth_errors(app)
    assert (
        "[A/Training] pipeline_name 'churn' is also claimed by B/Training in the same account and region "
        "(SageMaker pipeline names are unique per account and region); give each its own pipeline_name"
    ) in errors
    assert "[B/Training] pipeline_name 'churn' is also claimed by A/Training" in errors


def test_the_same_names_in_other_regions_stages_or_as_tokens_are_fine() -> None:
    app = cdk.App()
    pipeline(cdk.Stack(app, "Eu", env=EU), "Training", "churn")
    pipeline(cdk.Stack(app, "Us", env=cdk.Environment(account="123456789012", region="us-east-1")), "Training", "churn")
    for stage in ("Dev", "Prod"):  # the same environment-agnostic platform in two stages
        pipeline(cdk.Stack(cdk.Stage(app, stage), "Training"), "Training", "churn")
    token_stack = cdk.Stack(app, "Tokens", env=EU)
    pipeline(token_stack, "One", cdk.Fn.ref("NameOne"))
    pipeline(token_stack, "Two", cdk.Fn.ref("NameTwo"))
    app.synth()  # no error


def test_two_environment_agnostic_stacks_of_one_stage_share_an_account_and_region() -> None:
    app = cdk.App()
    stage = cdk.Stage(app, "Dev")
    pipeline(cdk.Stack(stage, "One"), "Training", "churn")
    pipeline(cdk.Stack(stage, "Two"), "Training", "churn")
    assert "[Dev/One/Training] pipeline_name 'churn' is also claimed by Dev/Two/Training" in synth_errors(app)


def test_two_endpoints_with_one_name_fail_synth() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Serving", env=EU)
    store = VersionedDataStore(stack, "Data")
    for id in ("Blue", "Green"):
        ModelEndpoint(stack, id, endpoint_name="churn", data_store=store, model_package_arn=PACKAGE)
    assert (
        "[Serving/Blue] endpoint_name 'churn' is also claimed by Serving/Green in the same account and region "
        "(SageMaker endpoint names are unique per account and region)"
    ) in synth_errors(app)


def test_two_retrain_triggers_for_one_pipeline_fail_synth() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Retrain", env=EU)
    store = VersionedDataStore(stack, "Data", datasets=["churn"])
    for id in ("One", "Two"):
        RetrainTrigger(stack, id, data_store=store, datasets=["churn"], pipeline_name="churn")
    assert (
        "[Retrain/One] retrain trigger of pipeline 'churn' is also claimed by Retrain/Two in the same account and "
        "region (one trigger per pipeline: two would keep two locks, and two runs could start at once)"
    ) in synth_errors(app)


def test_a_pipeline_on_a_dataset_its_store_does_not_declare_is_refused() -> None:
    stack = cdk.Stack(cdk.App(), "Team")
    store = VersionedDataStore(stack, "Data", datasets=["churn", "fraud"])
    with pytest.raises(ConfigurationError) as caught:
        TrainingPipeline(stack, "Training", data_store=store, dataset="chrun", pipeline_name="churn")
    assert (
        "dataset: 'chrun' is not a dataset of the data store Team/Data (it declares 'churn', 'fraud'); fix the "
        "name, or add it to the store's datasets="
    ) in str(caught.value)


def test_a_trigger_watching_a_dataset_its_store_does_not_declare_is_refused() -> None:
    stack = cdk.Stack(cdk.App(), "Team")
    store = VersionedDataStore(stack, "Data", datasets=["churn"])
    with pytest.raises(ConfigurationError) as caught:
        RetrainTrigger(stack, "Retrain", data_store=store, datasets=["churn", "fraud"], pipeline_name="churn")
    assert "datasets: 'fraud' is not a dataset of the data store Team/Data (it declares 'churn')" in str(caught.value)
    assert "'churn' is not" not in str(caught.value)


def test_a_store_that_declares_no_datasets_accepts_any() -> None:
    stack = cdk.Stack(cdk.App(), "Team")
    store = VersionedDataStore(stack, "Data")
    assert store.undeclared_problems("dataset", ["churn", "fraud"]) == []


@pytest.mark.parametrize(
    ("arn", "problem"),
    [
        (
            "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-models/3",
            "model_package_arn 'arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-models/3' is in "
            "aws:us-east-1, but the endpoint deploys to aws:eu-west-1; register (or copy) the model in eu-west-1",
        ),
        (
            "arn:aws-cn:sagemaker:eu-west-1:123456789012:model-package/churn-models/3",
            "is in aws-cn:eu-west-1, but the endpoint deploys to aws:eu-west-1",
        ),
        (
            "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-models",
            "is not a model package version ARN; use arn:aws:sagemaker:<region>:<account>:model-package/<group>/"
            "<version> (a registered version)",
        ),
    ],
)
def test_a_model_package_of_another_region_or_partition_or_without_a_version_is_refused(arn: str, problem: str) -> None:
    stack = cdk.Stack(cdk.App(), "Serving", env=EU)
    store = VersionedDataStore(stack, "Data")
    with pytest.raises(ConfigurationError) as caught:
        ModelEndpoint(stack, "Endpoint", endpoint_name="churn", data_store=store, model_package_arn=arn)
    assert problem in str(caught.value)


def test_an_environment_agnostic_endpoint_takes_a_package_of_any_region() -> None:
    stack = cdk.Stack(cdk.App(), "Serving")
    store = VersionedDataStore(stack, "Data")
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-models/3"
    endpoint = ModelEndpoint(stack, "Endpoint", endpoint_name="churn", data_store=store, model_package_arn=arn)
    assert endpoint.node.path == "Serving/Endpoint"
