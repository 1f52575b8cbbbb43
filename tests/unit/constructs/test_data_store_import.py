"""VersionedDataStore.from_bucket: an existing bucket and key behind the data store's interface (IDataStore)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Annotations, Match

from cdk_mlops.compliance import apply_compliance, synth_app
from cdk_mlops.constructs.data_store import IDataStore, ImportedDataStore, VersionedDataStore
from cdk_mlops.constructs.model_endpoint import (
    DataCaptureSettings,
    IModelEndpoint,
    ImportedModelEndpoint,
    ModelEndpoint,
)
from cdk_mlops.constructs.model_monitor import Baselines, DataQualitySettings, ModelMonitor
from cdk_mlops.constructs.retrain_trigger import RetrainTrigger
from cdk_mlops.constructs.training_pipeline import TrainingPipeline
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.guardrails import GuardrailSettings, apply_guardrails
from tests.quality import cfn_lint_findings, nag_findings, resolve_like_cloudformation

ENV = cdk.Environment(account="123456789012", region="eu-west-1")
BUCKET = "acme-legacy-data"
KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PACKAGE_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-training-models/3"
GROUP = "legacy-churn-models"
TAGS = {"project": "churn", "environment": "test", "owner": "ml-team"}


@dataclass(frozen=True)
class Imported:
    """A team's stack: every data-store consumer on an imported legacy bucket with a custom artifacts prefix."""

    stack: cdk.Stack
    store: ImportedDataStore
    reader: iam.Role
    endpoint: ModelEndpoint
    legacy: ImportedModelEndpoint
    template: dict[str, Any]


@pytest.fixture(scope="module")
def imported() -> Imported:
    app = cdk.App()
    stack = cdk.Stack(app, "Team", env=ENV)
    store = VersionedDataStore.from_bucket(
        stack,
        "Data",
        bucket=s3.Bucket.from_bucket_name(stack, "Legacy", BUCKET),
        encryption_key=kms.Key.from_key_arn(stack, "LegacyKey", KEY_ARN),
        datasets=["churn"],
        artifacts_prefix="ml/artifacts/",
    )
    # The team's model registry exists too: the pipeline registers into it, the trigger reads its champion.
    training = TrainingPipeline(
        stack,
        "Training",
        data_store=store,
        dataset="churn",
        pipeline_name="churn-training",
        model_package_group_name=GROUP,
        create_model_package_group=False,
    )
    RetrainTrigger(
        stack,
        "Retrain",
        data_store=store,
        datasets=["churn"],
        pipeline_name=training.pipeline_name,
        model_package_group_name=training.model_package_group_name,
    )
    endpoint = ModelEndpoint(
        stack,
        "Endpoint",
        endpoint_name="churn",
        data_store=store,
        model_package_arn=PACKAGE_ARN,
        data_capture=DataCaptureSettings(sampling_percentage=20),
    )
    ModelMonitor(
        stack,
        "Monitor",
        endpoint=endpoint,
        data_store=store,
        dataset="churn",
        data_quality=DataQualitySettings(baselines=Baselines.from_prefix(store.s3_uri("ml/artifacts/baseline/"))),
    )
    # An endpoint another team deployed, capturing into the same bucket, watched by a monitor of ours.
    legacy = ModelEndpoint.from_endpoint_name(stack, "LegacyEndpoint", endpoint_name="churn-legacy", data_store=store)
    ModelMonitor(
        stack,
        "LegacyMonitor",
        endpoint=legacy,
        data_store=store,
        data_quality=DataQualitySettings(baselines=Baselines.from_prefix(store.s3_uri("ml/artifacts/baseline/"))),
    )
    reader = iam.Role(stack, "Reader", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    store.grant_read(reader, dataset="churn")
    legacy.grant_invoke(reader)
    store.grant_accounts_read(["210987654321"], prefix="ml/artifacts/")
    for key, value in TAGS.items():
        cdk.Tags.of(app).add(key, value)
    apply_guardrails(app, GuardrailSettings())
    apply_compliance(app, verbose=False)
    assembly = synth_app(app)  # exits on any unacknowledged cdk-nag or guardrail finding
    template = assembly.get_stack_artifact(stack.artifact_id).template
    return Imported(stack, store, reader, endpoint, legacy, template)


def resources(template: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == type_]


def role_statements(template: dict[str, Any], role: iam.Role) -> list[dict[str, Any]]:
    ref = {"Ref": cdk.Stack.of(role).resolve(cdk.Stack.of(role).get_logical_id(role.node.default_child))}  # type: ignore[arg-type]
    found = [
        statement
        for policy in resources(template, "AWS::IAM::Policy")
        if ref in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    resolved: list[dict[str, Any]] = resolve_like_cloudformation(found, template, region="eu-west-1")
    return resolved


# --------------------------------------------------------------------------- the interface


def test_both_stores_implement_the_data_store_interface(imported: Imported) -> None:
    assert isinstance(imported.store, IDataStore)
    assert isinstance(VersionedDataStore(cdk.Stack(cdk.App(), "Other"), "Data"), IDataStore)
    assert not isinstance(s3.Bucket.from_bucket_name(imported.stack, "Plain", BUCKET), IDataStore)


def test_the_imported_store_keeps_its_names_and_layout(imported: Imported) -> None:
    store = imported.store
    assert store.datasets == ("churn",)
    assert store.encryption_key.key_arn == KEY_ARN
    assert store.artifacts_prefix == "ml/artifacts/"
    assert (store.capture_prefix, store.monitoring_prefix) == ("capture/", "monitoring/")
    resolve = imported.stack.resolve
    assert resolve(store.dataset_uri("churn")) == f"s3://{BUCKET}/datasets/churn/"
    assert resolve(store.manifest_uri_prefix("churn")) == f"s3://{BUCKET}/manifests/churn/"


def test_importing_creates_no_bucket_and_no_key_of_its_own(imported: Imported) -> None:
    assert resources(imported.template, "AWS::S3::Bucket") == []
    assert [c for c in imported.store.node.find_all() if isinstance(c, cdk.CfnResource)] == []


# --------------------------------------------------------------------------- consumers use it


def test_grants_name_the_legacy_bucket_and_decrypt_with_its_key(imported: Imported) -> None:
    statements = role_statements(imported.template, imported.reader)
    text = json.dumps(statements)
    assert f"arn:aws:s3:::{BUCKET}/datasets/churn/*" in text
    decrypt = [s for s in statements if "kms:Decrypt" in s["Action"]]
    assert decrypt
    assert all(s["Resource"] == KEY_ARN for s in decrypt)


def test_the_endpoint_captures_into_the_legacy_bucket_encrypted_with_its_key(imported: Imported) -> None:
    (config,) = resources(imported.template, "AWS::SageMaker::EndpointConfig")
    capture = config["Properties"]["DataCaptureConfig"]
    assert capture["DestinationS3Uri"] == f"s3://{BUCKET}/capture/churn/"
    assert capture["KmsKeyId"] == KEY_ARN
    assert f"arn:aws:s3:::{BUCKET}/ml/artifacts/*" in json.dumps(
        role_statements(imported.template, imported.endpoint.role)
    )


def test_training_and_the_trigger_use_the_imported_prefix_and_bucket(imported: Imported) -> None:
    policies = [p["Properties"]["PolicyDocument"] for p in resources(imported.template, "AWS::IAM::Policy")]
    text = json.dumps(resolve_like_cloudformation(policies, imported.template, region="eu-west-1"))
    assert f"arn:aws:s3:::{BUCKET}/ml/artifacts/churn-training/*" in text
    (rule,) = [
        r
        for r in resources(imported.template, "AWS::Events::Rule")
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.s3"]
    ]
    assert rule["Properties"]["EventPattern"]["detail"]["bucket"]["name"] == [BUCKET]


def test_policies_of_an_imported_bucket_and_key_are_left_to_their_owner_with_a_warning(imported: Imported) -> None:
    warnings = Annotations.from_stack(imported.stack).find_warning("/Team/Data", Match.any_value())
    text = " ".join(str(w.entry.data) for w in warnings)
    assert "cdk-mlops:data-store-imported-bucket" in text
    assert "210987654321" in text
    assert "cdk-mlops:data-store-imported-key" in text
    assert resources(imported.template, "AWS::S3::BucketPolicy") == []


def test_the_stack_is_nag_and_cfn_lint_clean(imported: Imported) -> None:
    assert nag_findings(imported.stack) == []
    assert cfn_lint_findings(imported.template, region="eu-west-1") == []


# --------------------------------------------------------------------------- what it checks


def import_store(stack: cdk.Stack, **overrides: Any) -> ImportedDataStore:
    arguments: dict[str, Any] = {
        "bucket": s3.Bucket.from_bucket_name(stack, "Bucket", BUCKET),
        "encryption_key": kms.Key.from_key_arn(stack, "Key", KEY_ARN),
        "datasets": ["churn"],
        **overrides,
    }
    return VersionedDataStore.from_bucket(stack, "Data", **arguments)


def refused(**overrides: Any) -> str:
    stack = cdk.Stack(cdk.App(), "Team")
    with pytest.raises(ConfigurationError) as caught:
        import_store(stack, **overrides)
    return str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"datasets": []}, "datasets is empty; declare the datasets the bucket holds"),
        ({"datasets": ["churn", "churn"]}, "datasets[1]: 'churn' is declared twice"),
        ({"datasets": ["a/b"]}, "datasets[0]:"),
        ({"datasets": "churn"}, "datasets must be a list of str, got the string 'churn'; use ['churn']"),
        ({"artifacts_prefix": "artifacts"}, "artifacts_prefix 'artifacts' must be a key prefix ending in '/'"),
        ({"capture_prefix": "/capture/"}, "capture_prefix '/capture/' must be a key prefix ending in '/'"),
        ({"artifacts_prefix": "datasets/models/"}, "artifacts_prefix 'datasets/models/' overlaps 'datasets/'"),
        ({"monitoring_prefix": "manifests/"}, "monitoring_prefix 'manifests/' overlaps 'manifests/'"),
        ({"bucket": "acme-legacy-data"}, "bucket must be an s3.IBucket, got str"),
        ({"encryption_key": KEY_ARN}, "encryption_key must be a kms.IKey, got str"),
    ],
)
def test_invalid_imports_raise_with_path_value_and_fix(overrides: dict[str, Any], message: str) -> None:
    error = refused(**overrides)
    assert error.startswith("[Team/Data] ")
    assert message in error


def test_a_bucket_imported_with_another_key_is_refused() -> None:
    stack = cdk.Stack(cdk.App(), "Team")
    other = kms.Key.from_key_arn(stack, "Other", KEY_ARN.replace("1234abcd", "9999abcd"))
    bucket = s3.Bucket.from_bucket_attributes(stack, "Legacy", bucket_name=BUCKET, encryption_key=other)
    with pytest.raises(ConfigurationError, match="bucket was imported with another encryption key"):
        import_store(stack, bucket=bucket)


def test_an_invalid_literal_bucket_name_is_refused_and_a_token_passes() -> None:
    stack = cdk.Stack(cdk.App(), "Team")
    bad = s3.Bucket.from_bucket_attributes(stack, "Bad", bucket_arn="arn:aws:s3:::Legacy_Data")
    with pytest.raises(ConfigurationError, match="bucket 'Legacy_Data' is not an S3 bucket name"):
        import_store(stack, bucket=bad)
    name = cdk.CfnParameter(stack, "BucketName", type="String").value_as_string
    store = VersionedDataStore.from_bucket(
        stack,
        "Tokens",
        bucket=s3.Bucket.from_bucket_name(stack, "Named", name),
        encryption_key=kms.Key.from_key_arn(stack, "TokenKey", KEY_ARN),
        datasets=[cdk.CfnParameter(stack, "Dataset", type="String").value_as_string],
    )
    assert stack.resolve(store.bucket.bucket_name) == {"Ref": "BucketName"}


def test_a_consumer_on_an_undeclared_dataset_names_the_imported_store() -> None:
    stack = cdk.Stack(cdk.App(), "Team")
    store = import_store(stack)
    with pytest.raises(ConfigurationError, match=r"'churm' is not a dataset of the data store Team/Data"):
        TrainingPipeline(stack, "Training", data_store=store, dataset="churm", pipeline_name="churn-training")


def test_a_bucket_where_a_data_store_belongs_names_the_import() -> None:
    stack = cdk.Stack(cdk.App(), "Team")
    bucket = s3.Bucket.from_bucket_name(stack, "Legacy", BUCKET)
    with pytest.raises(ConfigurationError) as caught:
        ModelEndpoint(stack, "Endpoint", endpoint_name="churn", data_store=bucket, model_package_arn=PACKAGE_ARN)  # type: ignore[arg-type]
    assert str(caught.value).startswith("[Team/Endpoint] data_store must be VersionedDataStore, got ")
    assert "VersionedDataStore.from_bucket(scope, id, bucket=..., encryption_key=..., datasets=[...])" in str(
        caught.value
    )
    assert stack.node.try_find_child("Endpoint") is None


def test_an_existing_model_package_group_is_used_by_name_and_not_created(imported: Imported) -> None:
    assert resources(imported.template, "AWS::SageMaker::ModelPackageGroup") == []
    (pipeline,) = resources(imported.template, "AWS::SageMaker::Pipeline")
    assert GROUP in json.dumps(pipeline["Properties"])  # the register step names the existing group
    policies = [p["Properties"]["PolicyDocument"] for p in resources(imported.template, "AWS::IAM::Policy")]
    text = json.dumps(resolve_like_cloudformation(policies, imported.template, region="eu-west-1"))
    assert f"model-package-group/{GROUP}" in text
    assert f"model-package/{GROUP}/*" in text


# --------------------------------------------------------------------------- an existing endpoint


def test_both_endpoints_implement_the_endpoint_interface(imported: Imported) -> None:
    assert isinstance(imported.endpoint, IModelEndpoint)
    assert isinstance(imported.legacy, IModelEndpoint)
    assert imported.legacy.capture_uri is not None
    assert imported.stack.resolve(imported.legacy.capture_uri) == f"s3://{BUCKET}/capture/churn-legacy/"
    assert (imported.legacy.model, imported.legacy.endpoint, imported.legacy.dashboard) == (None, None, None)


def test_an_imported_endpoint_is_monitored_by_name_outside_a_vpc_and_isolated(imported: Imported) -> None:
    schedules = [
        s["Properties"]["MonitoringScheduleConfig"]
        for s in resources(imported.template, "AWS::SageMaker::MonitoringSchedule")
        if s["Properties"]["MonitoringScheduleName"].startswith("churn-legacy-")
    ]
    assert len(schedules) == 1
    (definition,) = [
        d["Properties"]
        for d in resources(imported.template, "AWS::SageMaker::DataQualityJobDefinition")
        if d["Properties"]["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == "churn-legacy"
    ]
    assert definition["NetworkConfig"]["EnableNetworkIsolation"] is True
    assert "VpcConfig" not in definition["NetworkConfig"]
    policies = [p["Properties"]["PolicyDocument"] for p in resources(imported.template, "AWS::IAM::Policy")]
    text = json.dumps(resolve_like_cloudformation(policies, imported.template, region="eu-west-1"))
    assert f"arn:aws:s3:::{BUCKET}/capture/churn-legacy/*" in text
    assert "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/churn-legacy" in text  # grant_invoke


def test_an_imported_endpoint_has_the_endpoint_metrics(imported: Imported) -> None:
    metric = imported.legacy.metric_invocations()
    assert metric.dimensions == {"EndpointName": "churn-legacy", "VariantName": "AllTraffic"}


def test_an_imported_endpoint_checks_its_name_and_a_monitor_needs_its_capture() -> None:
    stack = cdk.Stack(cdk.App(), "Team")
    store = import_store(stack)
    with pytest.raises(ConfigurationError, match=r"\[Team/Legacy\] endpoint_name 'arn:aws:sagemaker:.*' is not a"):
        ModelEndpoint.from_endpoint_name(stack, "Legacy", endpoint_name="arn:aws:sagemaker:eu-west-1:1:endpoint/x")
    blind = ModelEndpoint.from_endpoint_name(stack, "Blind", endpoint_name="churn-legacy")
    with pytest.raises(ConfigurationError, match=r"captures no data.*ModelEndpoint.from_endpoint_name"):
        ModelMonitor(
            stack,
            "Monitor",
            endpoint=blind,
            data_store=store,
            data_quality=DataQualitySettings(baselines=Baselines.from_prefix(store.s3_uri("ml/baseline/"))),
        )


def test_a_bucket_where_an_endpoint_belongs_names_the_import() -> None:
    stack = cdk.Stack(cdk.App(), "Team")
    store = import_store(stack)
    with pytest.raises(ConfigurationError) as caught:
        ModelMonitor(
            stack,
            "Monitor",
            endpoint=s3.Bucket.from_bucket_name(stack, "NotAnEndpoint", BUCKET),  # type: ignore[arg-type]
            data_store=store,
            data_quality=DataQualitySettings(baselines=Baselines.from_prefix(store.s3_uri("ml/baseline/"))),
        )
    assert str(caught.value).startswith("[Team/Monitor] endpoint must be ModelEndpoint or None, got ")
    assert "ModelEndpoint.from_endpoint_name(scope, id, endpoint_name=..., data_store=...)" in str(caught.value)
