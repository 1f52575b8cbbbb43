"""Every ``grant_*`` method leaves an app that calls it clean: cdk-nag finds nothing on the grantee.

The same app checks that every resource a construct creates is one of its public attributes.

A team grants its own roles from our constructs; the findings the granted statements cause are
acknowledged by the method, on the grantee, with the reason. One stack holds every construct;
each grant goes to a role of its own, and the methods are found by name, so a new one is
covered without a new test.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam

from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.model_endpoint import DataCaptureSettings, ModelEndpoint
from cdk_mlops.constructs.model_monitor import Baselines, DataQualitySettings, ModelMonitor
from cdk_mlops.constructs.retrain_trigger import RetrainTrigger
from cdk_mlops.constructs.training_pipeline import MlflowSettings, TrainingPipeline
from tests.quality import nag_findings

PACKAGE = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-models/3"
#: Values for the grant methods' arguments other than the grantee.
ARGUMENTS: dict[str, Any] = {"accounts": ["111122223333"], "prefix": "artifacts/"}


def build() -> tuple[cdk.Stack, dict[str, Any], list[str]]:
    stack = cdk.Stack(cdk.App(), "Team", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    store = VersionedDataStore(stack, "Data", datasets=["churn"])
    training = TrainingPipeline(
        stack, "Training", data_store=store, dataset="churn", pipeline_name="churn", mlflow=MlflowSettings()
    )
    trigger = RetrainTrigger(stack, "Retrain", data_store=store, datasets=["churn"], pipeline_name="churn")
    endpoint = ModelEndpoint(
        stack,
        "Endpoint",
        endpoint_name="churn",
        data_store=store,
        model_package_arn=PACKAGE,
        data_capture=DataCaptureSettings(),
    )
    monitor = ModelMonitor(
        stack,
        "Monitor",
        endpoint=endpoint,
        data_store=store,
        dataset="churn",
        data_quality=DataQualitySettings(
            baselines=Baselines.from_uris(
                statistics="s3://bucket/baselines/statistics.json",
                constraints="s3://bucket/baselines/constraints.json",
            )
        ),
    )
    constructs = {"store": store, "training": training, "trigger": trigger, "endpoint": endpoint, "monitor": monitor}
    called: list[str] = []
    for label, construct in constructs.items():
        for name, method in inspect.getmembers(construct, inspect.ismethod):
            if name.startswith("grant_"):
                call(stack, f"{label}.{name}", method)
                called.append(f"{type(construct).__name__}.{name}")
    # The data store's scoped grants, as a team calls them for one dataset.
    for name in ("grant_read", "grant_write", "grant_read_write", "grant_write_manifests"):
        call(stack, f"store.{name}.dataset", getattr(store, name), dataset="churn")
    return stack, constructs, called


def call(stack: cdk.Stack, label: str, method: Callable[..., Any], **extra: Any) -> None:
    parameters = inspect.signature(method).parameters
    arguments = {name: ARGUMENTS[name] for name, p in parameters.items() if p.default is p.empty and name in ARGUMENTS}
    if "grantee" in parameters:
        arguments["grantee"] = iam.Role(
            stack, f"Grantee-{label}".replace(".", "-"), assumed_by=iam.ServicePrincipal("lambda.amazonaws.com")
        )
    method(**arguments, **extra)


@pytest.fixture(scope="module")
def built() -> tuple[cdk.Stack, dict[str, Any], list[str]]:
    return build()


def test_every_grant_method_of_every_construct_was_called(built) -> None:
    _, constructs, called = built
    declared = {
        f"{type(c).__name__}.{name}" for c in constructs.values() for name in dir(type(c)) if name.startswith("grant_")
    }
    assert set(called) == declared
    assert len(declared) >= 12


def test_cdk_nag_finds_nothing_on_the_grantees_or_anywhere_else(built) -> None:
    stack, _, _ = built
    assert nag_findings(stack) == []


def _public_paths(construct: Any) -> list[str]:
    """The construct paths of everything a construct's public attributes hold."""
    paths: list[str] = []
    for name in dir(construct):
        if name.startswith("_") or callable(getattr(type(construct), name, None)):
            continue
        value = getattr(construct, name)
        items = value.values() if isinstance(value, dict) else value if isinstance(value, list | tuple) else [value]
        paths += [item.node.path for item in items if hasattr(item, "node")]
    return paths


def test_every_resource_a_construct_creates_is_one_of_its_public_attributes(built) -> None:
    _, constructs, _ = built
    hidden: list[str] = []
    for construct in constructs.values():
        public = _public_paths(construct)
        for child in construct.node.children:
            path = child.node.path
            creates = isinstance(child, cdk.CfnResource) or any(
                isinstance(d, cdk.CfnResource) for d in child.node.find_all()
            )
            reachable = any(p == path or path.startswith(f"{p}/") or p.startswith(f"{path}/") for p in public)
            if creates and not reachable:
                hidden.append(path)
    assert hidden == []
