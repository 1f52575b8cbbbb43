"""Serving in another account (or region) than the data store: by name, with a bucket_name and both sides' grants."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam

from cdk_mlops.compliance import apply_compliance, synth_app
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.model_endpoint import DataCaptureSettings, ModelEndpoint, grant_model_source_read
from cdk_mlops.constructs.model_monitor import Baselines, DataQualitySettings, ModelMonitor
from cdk_mlops.constructs.retrain_trigger import RetrainTrigger
from cdk_mlops.constructs.training_pipeline import TrainingPipeline
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.guardrails import GuardrailSettings, apply_guardrails
from tests.quality import cfn_lint_findings, nag_findings, resolve_like_cloudformation

TRAINING_ACCOUNT, SERVING_ACCOUNT, REGION = "111111111111", "222222222222", "eu-west-1"
TRAINING = cdk.Environment(account=TRAINING_ACCOUNT, region=REGION)
SERVING = cdk.Environment(account=SERVING_ACCOUNT, region=REGION)
SERVING_US = cdk.Environment(account=TRAINING_ACCOUNT, region="us-east-1")
BUCKET = "acme-churn-data-training"
PACKAGE_ARN = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/churn-training-models/3"
BASELINE = f"s3://{BUCKET}/artifacts/churn-training/exec-1/data-quality-baseline/"
TAGS = {"project": "churn", "environment": "test", "owner": "ml-team"}


@dataclass(frozen=True)
class CrossAccount:
    """Training in one account, serving (endpoint and monitor) in another, linked by names only."""

    assembly: cdk.cx_api.CloudAssembly
    training: cdk.Stack
    serving: cdk.Stack
    store: VersionedDataStore
    endpoint: ModelEndpoint
    monitor: ModelMonitor


@pytest.fixture(scope="module")
def cross_account() -> CrossAccount:
    app = cdk.App()
    training = cdk.Stack(app, "Training", env=TRAINING)
    store = VersionedDataStore(training, "Data", datasets=["churn"], bucket_name=BUCKET)
    TrainingPipeline(
        training,
        "Pipeline",
        data_store=store,
        dataset="churn",
        pipeline_name="churn-training",
        cross_account_read_accounts=[SERVING_ACCOUNT],  # the registry admits the serving account
    )
    store.grant_accounts_read([SERVING_ACCOUNT], prefix=store.artifacts_prefix)

    serving = cdk.Stack(app, "Serving", env=SERVING)
    # Capture and reports stay in the serving account, in a store of its own.
    capture = VersionedDataStore(serving, "Capture", datasets=["churn"])
    endpoint = ModelEndpoint(
        serving,
        "Endpoint",
        endpoint_name="churn",
        data_store=capture,
        model_package_arn=PACKAGE_ARN,
        data_capture=DataCaptureSettings(sampling_percentage=20),
    )
    monitor = ModelMonitor(
        serving,
        "Monitor",
        endpoint=endpoint,
        data_store=capture,
        dataset="churn",
        data_quality=DataQualitySettings(baselines=Baselines.from_prefix(BASELINE)),
    )
    for role in (endpoint.role, monitor.role):
        grant_model_source_read(role, bucket_name=BUCKET, model_package_arn=PACKAGE_ARN)

    for key, value in TAGS.items():
        cdk.Tags.of(app).add(key, value)
    apply_guardrails(app, GuardrailSettings())
    apply_compliance(app, verbose=False)
    assembly = synth_app(app)  # exits on any unacknowledged cdk-nag or guardrail finding
    return CrossAccount(assembly, training, serving, store, endpoint, monitor)


def template(setup: CrossAccount, stack: cdk.Stack) -> dict[str, Any]:
    found: dict[str, Any] = setup.assembly.get_stack_artifact(stack.artifact_id).template
    return found


def of_type(raw: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in raw["Resources"].values() if r["Type"] == type_]


def role_statements(raw: dict[str, Any], role: iam.IRole, region: str) -> list[dict[str, Any]]:
    stack = cdk.Stack.of(role)
    ref = {"Ref": stack.resolve(stack.get_logical_id(role.node.default_child))}  # type: ignore[arg-type]
    found = [
        statement
        for policy in of_type(raw, "AWS::IAM::Policy")
        if ref in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    resolved: list[dict[str, Any]] = resolve_like_cloudformation(found, raw, region=region, account=SERVING_ACCOUNT)
    return resolved


def test_the_stacks_share_names_not_references(cross_account: CrossAccount) -> None:
    serving = template(cross_account, cross_account.serving)
    text = json.dumps(serving)
    assert "Fn::ImportValue" not in text
    assert "ExportsReader" not in text
    artifact = cross_account.assembly.get_stack_artifact(cross_account.serving.artifact_id)
    stacks = [d.id for d in artifact.dependencies if not d.id.endswith(".assets")]
    assert stacks == []  # no stack waits for the other: deployable in either order, no cycle possible


def test_the_training_bucket_has_its_given_name_and_admits_the_serving_account(cross_account: CrossAccount) -> None:
    training = template(cross_account, cross_account.training)
    names = [b["Properties"].get("BucketName") for b in of_type(training, "AWS::S3::Bucket")]
    assert names.count(BUCKET) == 1
    policies = resolve_like_cloudformation(of_type(training, "AWS::S3::BucketPolicy"), training)
    admitted = [
        statement
        for policy in policies
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid", "").startswith("ReadFromOtherAccounts")
    ]
    assert admitted
    assert all("/artifacts/" in s["Resource"] for s in admitted)
    assert all(f"arn:aws:iam::{SERVING_ACCOUNT}:root" in json.dumps(s["Principal"]) for s in admitted)
    key_policy = json.dumps(of_type(training, "AWS::KMS::Key"))
    assert SERVING_ACCOUNT in key_policy


@pytest.mark.parametrize("role", ["endpoint", "monitor"])
def test_serving_roles_read_the_promoted_model_by_name_and_decrypt_through_s3_only(
    cross_account: CrossAccount, role: str
) -> None:
    grantee = getattr(cross_account, role).role
    statements = role_statements(template(cross_account, cross_account.serving), grantee, REGION)
    (read,) = [s for s in statements if s["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]]
    assert read["Resource"] == f"arn:aws:s3:::{BUCKET}/artifacts/*"
    (decrypt,) = [s for s in statements if s["Action"] == "kms:Decrypt" and "Condition" in s]
    assert decrypt["Resource"] == f"arn:aws:kms:eu-west-1:{TRAINING_ACCOUNT}:key/*"
    assert decrypt["Condition"]["StringEquals"] == {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}


def test_the_endpoint_serves_the_other_accounts_package_and_captures_at_home(cross_account: CrossAccount) -> None:
    serving = template(cross_account, cross_account.serving)
    (model,) = of_type(serving, "AWS::SageMaker::Model")
    assert model["Properties"]["PrimaryContainer"]["ModelPackageName"] == PACKAGE_ARN
    (config,) = of_type(serving, "AWS::SageMaker::EndpointConfig")
    assert BUCKET not in json.dumps(config["Properties"]["DataCaptureConfig"])


@pytest.mark.parametrize("stack", ["training", "serving"])
def test_both_stacks_are_nag_and_cfn_lint_clean(cross_account: CrossAccount, stack: str) -> None:
    construct = getattr(cross_account, stack)
    assert nag_findings(construct) == []
    assert cfn_lint_findings(template(cross_account, construct), region=construct.region) == []


# --------------------------------------------------------------------------- references across environments


def two_environments(serving_env: cdk.Environment) -> tuple[cdk.Stack, VersionedDataStore, cdk.Stack]:
    app = cdk.App()
    data = cdk.Stack(app, "Data", env=TRAINING, cross_region_references=True)
    store = VersionedDataStore(data, "Store", datasets=["churn"], bucket_name=BUCKET)
    return data, store, cdk.Stack(app, "Serving", env=serving_env, cross_region_references=True)


@pytest.mark.parametrize(
    ("env", "where"),
    [(SERVING, "is in account 111111111111, this ModelEndpoint in 222222222222"), (SERVING_US, "region eu-west-1")],
)
def test_a_store_of_another_environment_is_refused_by_the_endpoint_with_the_by_name_fix(
    env: cdk.Environment, where: str
) -> None:
    # Without the check, the cross-region case fails late with aws-cdk-lib's DependencyCycle (the key
    # policy names the endpoint's role, whose policy names the key) and the cross-account one with
    # CannotUseCrossEnvironment.
    _, store, serving = two_environments(env)
    with pytest.raises(ConfigurationError) as caught:
        ModelEndpoint(
            serving,
            "Endpoint",
            endpoint_name="churn",
            data_store=store,
            model_package_arn=PACKAGE_ARN.replace("eu-west-1", env.region or ""),
        )
    message = str(caught.value)
    assert message.startswith("[Serving/Endpoint] data_store Data/Store ")
    assert where in message
    assert "VersionedDataStore.from_bucket" in message
    assert serving.node.try_find_child("Endpoint") is not None  # the path exists, no resource under it
    assert not serving.node.find_child("Endpoint").node.children


def consumer_of(construct: str, serving: cdk.Stack, store: VersionedDataStore) -> None:
    """Build one consumer of ``store`` in ``serving``."""
    if construct == "TrainingPipeline":
        TrainingPipeline(serving, "C", data_store=store, dataset="churn", pipeline_name="churn-training")
    elif construct == "RetrainTrigger":
        RetrainTrigger(serving, "C", data_store=store, datasets=["churn"], pipeline_name="churn-training")
    else:
        local = VersionedDataStore(serving, "Local", datasets=["churn"])
        endpoint = ModelEndpoint(
            serving,
            "Endpoint",
            endpoint_name="churn",
            data_store=local,
            model_package_arn=PACKAGE_ARN.replace("eu-west-1", "us-east-1"),
            data_capture=DataCaptureSettings(sampling_percentage=20),
        )
        ModelMonitor(
            serving,
            "C",
            endpoint=endpoint,
            data_store=store,
            data_quality=DataQualitySettings(baselines=Baselines.from_prefix(BASELINE)),
        )


@pytest.mark.parametrize("construct", ["ModelMonitor", "TrainingPipeline", "RetrainTrigger"])
def test_every_consumer_of_a_store_refuses_one_of_another_region(construct: str) -> None:
    _, store, serving = two_environments(SERVING_US)
    with pytest.raises(ConfigurationError, match=f"this {construct} in us-east-1"):
        consumer_of(construct, serving, store)


@pytest.mark.parametrize(("env", "where"), [(SERVING, "account 222222222222"), (SERVING_US, "region us-east-1")])
def test_a_grant_to_a_role_of_another_environment_is_refused_with_the_fix(env: cdk.Environment, where: str) -> None:
    _, store, serving = two_environments(env)
    role = iam.Role(serving, "Reader", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    with pytest.raises(ConfigurationError) as caught:
        store.grant_read(role, prefix="artifacts/")
    message = str(caught.value)
    assert message.startswith(f"[Data/Store] grant_read: Serving/Reader is defined in {where}")
    assert "grant_model_source_read" in message
    assert ("grant_accounts_read(['222222222222']" in message) == (env is SERVING)


def test_a_role_imported_by_arn_from_another_account_is_still_granted() -> None:
    _, store, serving = two_environments(SERVING)
    role = iam.Role.from_role_arn(serving, "Uploader", f"arn:aws:iam::{SERVING_ACCOUNT}:role/uploader")
    assert store.grant_write(role, dataset="churn").success


# --------------------------------------------------------------------------- bucket names


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Acme_Data", "bucket_name 'Acme_Data' is not an S3 bucket name; use 3-63 lower-case letters"),
        ("ab", "bucket_name 'ab' is not an S3 bucket name"),
        ("a" * 64, "is not an S3 bucket name"),
        ("acme..data", "bucket_name 'acme..data' has '..', '.-' or '-.'"),
        ("192.168.5.4", "looks like an IP address"),
        ("xn--acme-data", "uses 'xn--', which S3 reserves"),
        ("acme-data-s3alias", "uses '-s3alias', which S3 reserves"),
    ],
)
def test_an_invalid_bucket_name_is_refused_before_anything_exists(name: str, message: str) -> None:
    stack = cdk.Stack(cdk.App(), "Data")
    with pytest.raises(ConfigurationError) as caught:
        VersionedDataStore(stack, "Store", bucket_name=name)
    assert str(caught.value).startswith("[Data/Store] ")
    assert message in str(caught.value)
    assert not stack.node.find_child("Store").node.children


def test_a_bucket_name_token_passes() -> None:
    stack = cdk.Stack(cdk.App(), "Data")
    name = cdk.CfnParameter(stack, "Name", type="String").value_as_string
    store = VersionedDataStore(stack, "Store", bucket_name=name)
    assert stack.resolve(store.bucket.node.default_child.bucket_name) == {"Ref": "Name"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"bucket_name": "s3://acme"}, "bucket_name 's3://acme' is not an S3 bucket name"),
        ({"model_package_arn": "churn-models/3"}, "model_package_arn 'churn-models/3' is not a model package version"),
        ({"model_package_arn": PACKAGE_ARN[:-2]}, "is not a model package version ARN"),
        ({"prefix": "artifacts"}, "prefix 'artifacts' must be a key prefix ending in '/'"),
    ],
)
def test_grant_model_source_read_checks_its_arguments(arguments: dict[str, Any], message: str) -> None:
    stack = cdk.Stack(cdk.App(), "Serving")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    with pytest.raises(ConfigurationError) as caught:
        grant_model_source_read(role, **{"bucket_name": BUCKET, "model_package_arn": PACKAGE_ARN, **arguments})
    assert str(caught.value).startswith("[Serving/Role] grant_model_source_read: ")
    assert message in str(caught.value)
