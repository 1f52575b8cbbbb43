"""The model catalogue: what is accepted, what is refused and why, and where each model's stack is."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdk_mlops.catalogue import (
    MAX_MODELS,
    CatalogueModel,
    catalogue_problems,
    model_stack_index,
    model_stacks_problems,
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
        ({"fraud": {"dataset": "fraud", "serving": "mme"}}, "fraud.serving: unknown key"),
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
