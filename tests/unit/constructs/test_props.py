"""Every public construct checks its arguments' types at the boundary, the same way.

A wrong type fails with a ConfigurationError naming the construct path, the argument, what it
must be and what it got, before anything is created. These tests build no template.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from constructs import Construct

import cdk_mlops.constructs as library
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.model_endpoint import ModelEndpoint
from cdk_mlops.constructs.props import checked_props
from cdk_mlops.constructs.retrain_trigger import RetrainPolicy, RetrainTrigger
from cdk_mlops.constructs.training_pipeline import TrainingPipeline
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.pipeline_definition import TrainingSettings


def public_construct_classes() -> list[type]:
    exported = (getattr(library, name) for name in library.__all__)
    return [c for c in exported if isinstance(c, type) and issubclass(c, Construct)]


def test_every_public_construct_checks_its_arguments() -> None:
    classes = public_construct_classes()
    assert len(classes) >= 9
    unchecked = [c.__name__ for c in classes if not getattr(vars(c).get("__init__"), "__checked_props__", False)]
    assert unchecked == [], "decorate their __init__ with @checked_props"


@pytest.fixture
def stack() -> cdk.Stack:
    return cdk.Stack(cdk.App(), "Team")


@pytest.fixture
def store(stack: cdk.Stack) -> VersionedDataStore:
    return VersionedDataStore(stack, "Data", datasets=["churn"])


def refused(build: Any, **kwargs: Any) -> str:
    with pytest.raises(ConfigurationError) as caught:
        build(**kwargs)
    return str(caught.value)


def test_an_int_where_a_name_belongs(stack, store) -> None:
    message = refused(TrainingPipeline, scope=stack, id="Training", data_store=store, dataset="churn", pipeline_name=3)
    assert message == "[Team/Training] pipeline_name must be str, got int 3"
    assert stack.node.try_find_child("Training") is None  # nothing was created


def test_a_dict_where_a_settings_dataclass_belongs(stack, store) -> None:
    message = refused(
        TrainingPipeline,
        scope=stack,
        id="Training",
        data_store=store,
        dataset="churn",
        pipeline_name="churn",
        settings={"instance_type": "ml.m5.large"},
    )
    assert message == (
        "[Team/Training] settings must be a TrainingSettings (not a dict: use TrainingSettings(...)) or None, "
        "got dict {'instance_type': 'ml.m5.large'}"
    )


def test_an_int_where_a_duration_belongs_and_every_problem_at_once(stack) -> None:
    message = refused(VersionedDataStore, scope=stack, id="Data", noncurrent_version_expiration=90, retain_versions="3")
    assert message == (
        "[Team/Data] 2 problems:\n"
        "  - noncurrent_version_expiration must be Duration or None, got int 90\n"
        "  - retain_versions must be int or None, got str '3'"
    )


def test_an_imported_bucket_where_a_data_store_belongs(stack) -> None:
    bucket = s3.Bucket.from_bucket_name(stack, "Legacy", "legacy-data")
    message = refused(
        RetrainTrigger, scope=stack, id="Retrain", data_store=bucket, datasets=["churn"], pipeline_name="p"
    )
    assert message.startswith("[Team/Retrain] data_store must be VersionedDataStore, got ")


def test_one_dataset_name_as_a_string_is_not_five_datasets(stack, store) -> None:
    # A string is a sequence of strings: datasets="churn" would otherwise be c, h, u, r and n.
    message = refused(VersionedDataStore, scope=stack, id="Other", datasets="churn")
    assert message == "[Team/Other] datasets must be a list of str, got the string 'churn'; use ['churn']"
    message = refused(RetrainTrigger, scope=stack, id="Retrain", data_store=store, datasets="churn", pipeline_name="p")
    assert message == "[Team/Retrain] datasets must be a list of str, got the string 'churn'; use ['churn']"
    message = refused(
        RetrainTrigger, scope=stack, id="Retrain", data_store=store, datasets=["churn", 3], pipeline_name="p"
    )
    assert message == "[Team/Retrain] datasets must be a list of str, got list ['churn', 3]"


def test_a_misspelt_or_missing_argument_is_a_configuration_error(stack, store) -> None:
    message = refused(ModelEndpoint, scope=stack, id="Serve", data_store=store, endpoint_nam="churn")
    assert message == "[Team/Serve] 'endpoint_nam' is not an argument of ModelEndpoint; did you mean 'endpoint_name'?"
    message = refused(ModelEndpoint, scope=stack, id="Serve", data_store=store)
    assert message == "[Team/Serve] ModelEndpoint: missing a required argument: 'endpoint_name'"


def test_valid_arguments_tokens_and_enums_pass(stack, store) -> None:
    pipeline = TrainingPipeline(
        stack,
        "Training",
        data_store=store,
        dataset="churn",
        pipeline_name=cdk.Fn.ref("PipelineName"),  # a token is a str
        settings=TrainingSettings(),
    )
    RetrainTrigger(stack, "Retrain", data_store=store, datasets=["churn"], pipeline_name="p", policy=RetrainPolicy())
    assert pipeline.node.path == "Team/Training"


def test_the_checker_reads_unions_literals_collections_and_number_tokens() -> None:
    class Probe:
        @checked_props
        def __init__(
            self,
            scope: Any,
            id: str,
            *,
            mode: Literal["a", "b"] = "a",
            counts: dict[str, int] | None = None,
            names: tuple[str, ...] = (),
            size: int = 1,
            ratio: float = 1.0,
        ) -> None:
            self.ok = True

    probe: Any = Probe  # called with wrong types on purpose
    assert probe(None, "p", mode="b", counts={"x": 1}, names=("n",), size=cdk.Token.as_number("t"), ratio=2).ok
    with pytest.raises(ConfigurationError) as caught:
        probe(None, "p", mode="c", counts={"x": "1"}, names="n", size=True, ratio="2")
    assert caught.value.problems == (
        "mode must be one of 'a', 'b', got str 'c'",
        "counts must be a mapping of str, int or None, got dict {'x': '1'}",
        "names must be a list of str, got the string 'n'; use ['n']",
        "size must be int, got bool True",
        "ratio must be float, got str '2'",
    )
    assert inspect.signature(Probe.__init__).parameters["mode"].default == "a"


def test_an_init_with_keyword_arguments_takes_any_name_and_still_checks_the_named_ones() -> None:
    class Open:
        @checked_props
        def __init__(self, scope: Any, id: str, *, size: int = 1, **extra: Any) -> None:
            self.extra = extra

    probe: Any = Open
    assert probe(None, "o", anything="goes").extra == {"anything": "goes"}
    with pytest.raises(ConfigurationError, match="size must be int, got str '2'"):
        probe(None, "o", size="2")
