"""The model catalogue of an environment: the ``models`` setting, each model's stack, and their checks.

Each environment of ``cdk.json`` may list its models; the reference platform trains every one of
them, each with its own pipeline and model package group, retrained by the environment's one
:class:`~cdk_mlops.constructs.fleet_trigger.FleetRetrainTrigger`::

    "models": {
      "fraud":  {"dataset": "fraud"},
      "upsell": {"dataset": "upsell", "cooldown_hours": 6, "max_runs_per_day": 1}
    },
    "model_stacks": 4

Adding a model is one entry and one ``cdk deploy``. A model's stack is
:func:`model_stack_index` of its name: a hash of the name alone, so adding or removing a model
never moves another. Changing ``model_stacks`` moves most models, which replaces their pipelines
and model package groups (see ``docs/model-catalogue.md``). Plain data, no CDK.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from cdk_mlops.datasets import dataset_name_problems

#: Models of one environment at most (the fleet benchmark's size).
MAX_MODELS: Final = 1000
#: ``model_stacks`` may be 1 to this many.
MAX_MODEL_STACKS: Final = 100
#: The default number of model stacks.
DEFAULT_MODEL_STACKS: Final = 4
#: CloudFormation takes 500 resources a stack; a model stack keeps a margin below it.
MAX_STACK_RESOURCES: Final = 400
#: What one catalogue model adds to its stack: pipeline, role, policy, model package group, route.
RESOURCES_PER_MODEL: Final = 5
#: A model name: what its pipeline's name ends with.
_NAME: Final = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*\Z")
_MAX_NAME: Final = 30
_KEYS: Final = frozenset(
    {"dataset", "quiet_period_minutes", "cooldown_hours", "max_runs_per_day", "preprocess_instance_count"}
)


@dataclass(frozen=True, kw_only=True)
class CatalogueModel:
    """One model of the catalogue.

    Attributes:
        name: The model's name (``fraud``); its pipeline is ``<project>-<environment>-model-<name>``.
        dataset: The dataset under ``datasets/<name>/`` it trains on.
        quiet_period_minutes: A drop is complete when no object arrived for this long. Default: - 15.
        cooldown_hours: Minimum time between two runs. Default: - 1.
        max_runs_per_day: Runs per UTC day; 0 means no limit. Default: - 4.
        preprocess_instance_count: Instances of its ``Preprocess`` job (1 to 100). Default: - 1.
    """

    name: str
    dataset: str
    quiet_period_minutes: int = 15
    cooldown_hours: int = 1
    max_runs_per_day: int = 4
    preprocess_instance_count: int = 1


def catalogue_problems(value: object) -> list[str]:
    """Every problem of a ``models`` value, each naming the model and key (``fraud.dataset: ...``)."""
    if not isinstance(value, Mapping):
        return [f'{value!r} is not a map of model names to settings; use e.g. {{"fraud": {{"dataset": "fraud"}}}}']
    if len(value) > MAX_MODELS:
        return [f"{len(value)} models; an environment holds at most {MAX_MODELS}"]
    problems: list[str] = []
    for name, settings in value.items():
        if not isinstance(name, str) or not _NAME.match(name) or len(name) > _MAX_NAME:
            problems.append(
                f"{name!r} is not a model name; use 1-{_MAX_NAME} lower-case letters, digits and single hyphens, "
                "starting with a letter"
            )
            continue
        if not isinstance(settings, Mapping):
            problems.append(f'{name}: {settings!r} is not a map of settings; use e.g. {{"dataset": "{name}"}}')
            continue
        problems += [
            f"{name}.{key}: unknown key; accepted keys: {', '.join(sorted(_KEYS))}"
            for key in sorted(set(settings) - _KEYS, key=str)
        ]
        dataset = settings.get("dataset")
        if not isinstance(dataset, str):
            problems.append(f"{name}.dataset: {dataset!r} is not a dataset name; name the dataset it trains on")
        else:
            problems += [f"{name}.dataset: {p}" for p in dataset_name_problems(dataset)]
        for key, low, high in (
            ("quiet_period_minutes", 0, 7 * 24 * 60),
            ("cooldown_hours", 0, 30 * 24),
            ("max_runs_per_day", 0, 1000),
            ("preprocess_instance_count", 1, 100),
        ):
            number = settings.get(key, low)
            if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
                problems.append(f"{name}.{key}: {number!r} is not a whole number from {low} to {high}")
    return problems


def to_catalogue(value: Mapping[str, Mapping[str, object]]) -> tuple[CatalogueModel, ...]:
    """The models of a ``models`` value that :func:`catalogue_problems` accepted, sorted by name."""
    return tuple(
        CatalogueModel(name=name, **settings)  # type: ignore[arg-type]
        for name, settings in sorted(value.items())
    )


def model_stack_index(name: str, stacks: int) -> int:
    """The model stack (0 to ``stacks`` - 1) of the model ``name``: CRC-32 of the name, modulo ``stacks``.

    It depends on the name and the number of stacks only, so adding or removing a model never moves
    another, and every synth (every machine, every Python) puts a model in the same stack.
    """
    return zlib.crc32(name.encode()) % stacks


def model_stacks_problems(models: tuple[CatalogueModel, ...], stacks: int) -> list[str]:
    """Whether any model stack would hold more than :data:`MAX_STACK_RESOURCES` resources."""
    counts = [0] * stacks
    for model in models:
        counts[model_stack_index(model.name, stacks)] += 1
    largest = max(counts, default=0)
    if largest * RESOURCES_PER_MODEL <= MAX_STACK_RESOURCES:
        return []
    needed = -(-len(models) * RESOURCES_PER_MODEL * 2 // MAX_STACK_RESOURCES)
    return [
        f"model_stacks: {stacks} stacks would put {largest} models ({largest * RESOURCES_PER_MODEL} resources) in "
        f"one stack, over {MAX_STACK_RESOURCES}; raise model_stacks (e.g. to {min(needed, MAX_MODEL_STACKS)}), which "
        "moves most models to other stacks (docs/model-catalogue.md)"
    ]
