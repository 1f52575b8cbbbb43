"""The model catalogue: what is accepted, what is refused and why, and where each model's stack is."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdk_mlops.catalogue import (
    MAX_MODELS,
    MAX_SHARED_ENDPOINTS,
    MONITOR_RESOURCES,
    RESOURCES_PER_MODEL,
    SERVING_RESOURCES,
    CatalogueModel,
    ModelServing,
    ServingMode,
    catalogue_problems,
    model_stack_index,
    model_stacks_problems,
    shared_endpoint_index,
    to_catalogue,
)
from cdk_mlops.config import CONTEXT_KEY, load_environments
from cdk_mlops.errors import ConfigurationError


def test_a_catalogue_is_read_with_its_defaults_sorted_by_name() -> None:
    value: dict[str, dict[str, object]] = {
        "upsell": {"dataset": "upsell", "cooldown_hours": 6, "max_runs_per_day": 1},
        "fraud": {"dataset": "tx"},
    }
    assert catalogue_problems(value) == []
    assert to_catalogue(value) == (
        CatalogueModel(name="fraud", dataset="tx"),
        CatalogueModel(name="upsell", dataset="upsell", cooldown_hours=6, max_runs_per_day=1),
    )
    assert to_catalogue(value)[0].quiet_period_minutes == 15


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["fraud"], "is not a map of model names to settings"),
        ({"Fraud": {"dataset": "fraud"}}, "'Fraud' is not a model name"),
        ({"a--b": {"dataset": "fraud"}}, "'a--b' is not a model name"),
        ({"x" * 31: {"dataset": "fraud"}}, "is not a model name; use 1-30"),
        ({"fraud": "fraud"}, "fraud: 'fraud' is not a map of settings"),
        ({"fraud": {"dataset": "fraud", "serving": "mme"}}, "fraud.serving: 'mme' is not a map"),
        (
            {"fraud": {"dataset": "fraud", "serving": {"mode": "mme"}}},
            "fraud.serving.mode: 'mme' is not a serving mode",
        ),
        (
            {"fraud": {"dataset": "fraud", "serving": {"mode": "async", "cpu_cores": 2}}},
            "fraud.serving.cpu_cores: unknown key for mode 'async'",
        ),
        (
            {"fraud": {"dataset": "fraud", "serving": {"mode": "shared", "model_package_arn": "g/3"}}},
            "fraud.serving.model_package_arn: 'g/3' is not a versioned",
        ),
        (
            {"fraud": {"dataset": "fraud", "serving": {"mode": "shared", "cpu_cores": 0.1}}},
            "fraud.serving.cpu_cores: 0.1 is not a number of at least 0.25",
        ),
        (
            {"fraud": {"dataset": "fraud", "serving": {"mode": "shared", "memory_mb": 64}}},
            "fraud.serving.memory_mb: 64 is not a whole number of at least 128",
        ),
        (
            {"fraud": {"dataset": "fraud", "serving": {"mode": "shared", "min_copies": 3}}},
            "fraud.serving.min_copies: 3 is more than max_copies (2)",
        ),
        # Reported alongside another problem of the same key, not after it is fixed.
        (
            {"fraud": {"dataset": "fraud", "serving": {"mode": "shared", "min_copies": 3, "cpu_cores": 0}}},
            "fraud.serving.min_copies: 3 is more than max_copies (2)",
        ),
        (
            {"fraud": {"dataset": "fraud", "serving": {"mode": "shared", "baseline_prefix": "artifacts/p/e/b/"}}},
            "fraud.serving.baseline_prefix: unknown key for mode 'shared'; accepted keys: cpu_cores, max_copies, "
            "memory_mb, min_copies, mode, model_package_arn (data capture and Model Monitor watch realtime endpoints",
        ),
        (
            {"fraud": {"dataset": "fraud", "serving": {"mode": "realtime", "baseline_prefix": "s3://b/artifacts/x/"}}},
            "fraud.serving.baseline_prefix: 's3://b/artifacts/x/' is not a key prefix under artifacts/ ending in '/'",
        ),
        (
            {"fraud": {"dataset": "fraud", "serving": {"mode": "realtime", "baseline_prefix": "artifacts/../x/"}}},
            "fraud.serving.baseline_prefix: 'artifacts/../x/' is not a key prefix",
        ),
        ({"fraud": {}}, "fraud.dataset: None is not a dataset name"),
        ({"fraud": {"dataset": "Fraud Data"}}, "fraud.dataset: "),
        ({"fraud": {"dataset": "fraud", "cooldown_hours": -1}}, "fraud.cooldown_hours: -1 is not a whole number"),
        ({"fraud": {"dataset": "fraud", "max_runs_per_day": True}}, "fraud.max_runs_per_day: True"),
        ({"fraud": {"dataset": "fraud", "preprocess_instance_count": 0}}, "preprocess_instance_count: 0"),
        ({f"m{i}": {"dataset": "d"} for i in range(MAX_MODELS + 1)}, "an environment holds at most 1000"),
    ],
)
def test_a_bad_catalogue_is_refused_naming_the_model_and_key(value: object, expected: str) -> None:
    problems = catalogue_problems(value)
    assert any(expected in p for p in problems), problems


def test_the_configuration_names_the_environment_of_a_bad_model_and_every_problem() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_environments({"dev": {"models": {"fraud": {}, "Up": {"dataset": "u"}}, "model_stacks": 0}})
    text = str(raised.value)
    assert f"{CONTEXT_KEY}.dev.models: fraud.dataset: None is not a dataset name" in text
    assert "'Up' is not a model name" in text
    assert f"{CONTEXT_KEY}.dev.model_stacks: 0 is not a whole number from 1 to 100" in text


def test_a_model_whose_registry_group_name_would_pass_63_characters_is_refused() -> None:
    name = "m" + "x" * 29
    project = {"project": "a-long-project-name"}  # a-long-project-name-dev-model-<30>-models: 67 characters
    with pytest.raises(ConfigurationError, match=f"models.{name}: a-long-project-name-dev-model-{name}-models is over"):
        load_environments({"dev": {**project, "models": {name: {"dataset": "d"}}}})
    (config,) = load_environments({"dev": {**project, "models": {"m" * 26: {"dataset": "d"}}}})  # 63
    assert config.fleet_prefix == "a-long-project-name-dev-model-"


def test_a_model_stays_in_its_stack_across_machines_and_releases() -> None:
    # The stack is part of every model resource's identity: a new hash would move, and replace, them all.
    assert [model_stack_index(n, 4) for n in ("fraud", "upsell", "churn-v2")] == [2, 3, 1]
    assert model_stack_index("fraud", 25) == 22


@given(st.sets(st.from_regex(r"[a-z][a-z0-9]{0,12}", fullmatch=True), min_size=1, max_size=40), st.integers(1, 100))
def test_adding_models_never_moves_another(names: set[str], stacks: int) -> None:
    before = {n: model_stack_index(n, stacks) for n in names}
    after = {n: model_stack_index(n, stacks) for n in names | {"added", "another-one"}}
    assert {n: after[n] for n in names} == before
    assert all(0 <= i < stacks for i in after.values())


def test_a_stack_may_hold_80_models_and_not_more() -> None:
    models = tuple(CatalogueModel(name=f"m{i:04d}", dataset="d") for i in range(81))
    assert model_stacks_problems(models[:80], 1) == []
    [problem] = model_stacks_problems(models, 1)
    assert "1 stacks would put 81 models (405 resources) in one stack, over 400; raise model_stacks" in problem
    assert model_stacks_problems(models, 4) == []


PACKAGE = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/fraud-models/3"


def test_a_serving_mode_is_read_and_a_model_is_served_once_a_version_is_approved() -> None:
    value: dict[str, dict[str, object]] = {
        "fraud": {"dataset": "tx", "serving": {"mode": "shared", "model_package_arn": PACKAGE, "memory_mb": 512}},
        "upsell": {"dataset": "u", "serving": {"mode": "async"}},
    }
    assert catalogue_problems(value) == []
    fraud, upsell = to_catalogue(value)
    assert fraud.serving == ModelServing(mode=ServingMode.SHARED, model_package_arn=PACKAGE, memory_mb=512)
    assert fraud.served is fraud.serving
    assert fraud.serving.package_region == "eu-west-1"
    # A mode without an approved version serves nothing yet, and costs its stack nothing.
    assert upsell.serving == ModelServing(mode=ServingMode.ASYNC)
    assert upsell.served is None
    assert upsell.stack_resources == RESOURCES_PER_MODEL
    # A shared model's component lives in the SharedServing stack, not in its model stack.
    assert fraud.stack_resources == RESOURCES_PER_MODEL


def test_an_own_endpoint_counts_towards_its_model_stack() -> None:
    served = ModelServing(mode=ServingMode.ASYNC, model_package_arn=PACKAGE)
    models = tuple(CatalogueModel(name=f"m{i:04d}", dataset="d", serving=served) for i in range(20))
    assert models[0].stack_resources == RESOURCES_PER_MODEL + SERVING_RESOURCES[ServingMode.ASYNC]
    assert model_stacks_problems(models[:19], 1) == []  # 19 x 21 = 399
    [problem] = model_stacks_problems(models, 1)
    assert "1 stacks would put 20 models (420 resources) in one stack, over 400" in problem


def test_a_realtime_model_with_a_baseline_is_monitored_and_counts_its_monitor() -> None:
    value: dict[str, dict[str, object]] = {
        "fraud": {
            "dataset": "tx",
            "serving": {"mode": "realtime", "model_package_arn": PACKAGE, "baseline_prefix": "artifacts/p/e1/"},
        },
        "risk": {"dataset": "tx", "serving": {"mode": "realtime", "baseline_prefix": "artifacts/p/e1/"}},
        "plain": {"dataset": "tx", "serving": {"mode": "realtime", "model_package_arn": PACKAGE}},
    }
    assert catalogue_problems(value) == []
    fraud, plain, risk = to_catalogue(value)
    assert fraud.monitored
    assert fraud.stack_resources == RESOURCES_PER_MODEL + SERVING_RESOURCES[ServingMode.REALTIME] + MONITOR_RESOURCES
    # Without an approved version nothing is served, so nothing is monitored yet; without a baseline, neither.
    assert not risk.monitored
    assert not plain.monitored
    assert plain.stack_resources == RESOURCES_PER_MODEL + SERVING_RESOURCES[ServingMode.REALTIME]


def test_a_shared_endpoint_holds_at_most_65_models_and_more_endpoints_hold_more() -> None:
    shared = ModelServing(mode=ServingMode.SHARED, model_package_arn=PACKAGE)
    models = tuple(CatalogueModel(name=f"m{i:04d}", dataset="d", serving=shared) for i in range(66))
    assert model_stacks_problems(models[:65], 4) == []  # 6 + 65 x 6 = 396
    [problem] = model_stacks_problems(models, 4)
    assert "66 models served in mode shared would put 402 resources in the SharedServing stack" in problem
    assert "raise shared_endpoints (e.g. to 3)" in problem
    # THEN spread over endpoints by the names' hash, 1,000 shared models fit in 20
    fleet = tuple(CatalogueModel(name=f"m{i:04d}", dataset="d", serving=shared) for i in range(MAX_MODELS))
    assert model_stacks_problems(fleet, 25, MAX_SHARED_ENDPOINTS) == []
    [problem] = model_stacks_problems(fleet, 25, 10)
    assert "in one of 10 shared endpoints, over 400 (at most 65 models an endpoint)" in problem


@given(st.sets(st.from_regex(r"[a-z][a-z0-9]{0,12}", fullmatch=True), min_size=1, max_size=30), st.integers(1, 20))
def test_adding_a_shared_model_never_moves_another(names: set[str], endpoints: int) -> None:
    before = {n: shared_endpoint_index(n, endpoints) for n in sorted(names)[:-1]}
    after = {n: shared_endpoint_index(n, endpoints) for n in sorted(names)}
    assert {n: after[n] for n in before} == before
    assert all(0 <= i < endpoints for i in after.values())


def test_shared_endpoints_takes_1_to_20() -> None:
    for bad in (0, 21, True, "2"):
        with pytest.raises(ConfigurationError, match=r"shared_endpoints: .* is not a whole number from 1 to 20"):
            load_environments({"dev": {"shared_endpoints": bad}})
    (config,) = load_environments({"dev": {"shared_endpoints": 20}})
    assert config.shared_endpoints == 20


def test_a_served_package_of_another_region_is_refused_naming_the_fix() -> None:
    other = PACKAGE.replace("eu-west-1", "us-east-1")
    settings = {"account": "123456789012", "region": "eu-west-1"}
    model = {"dataset": "tx", "serving": {"mode": "realtime", "model_package_arn": other}}
    with pytest.raises(ConfigurationError, match=r"models\.fraud\.serving\.model_package_arn: a package of us-east-1"):
        load_environments({"dev": {**settings, "models": {"fraud": model}}})
