"""The model catalogue of an environment: the ``models`` setting, each model's stack, and their checks.

Each environment of ``cdk.json`` may list its models; the reference platform trains every one of
them, each with its own pipeline and model package group, retrained by the environment's one
:class:`~cdk_mlops.constructs.fleet_trigger.FleetRetrainTrigger`::

    "models": {
      "fraud":  {"dataset": "fraud", "serving": {"mode": "shared", "model_package_arn": "arn:..."}},
      "upsell": {"dataset": "upsell", "cooldown_hours": 6, "max_runs_per_day": 1}
    },
    "model_stacks": 4

A model with a ``serving`` key and an approved version (``model_package_arn``) is also served,
in the mode it names: on an endpoint of its own in its model stack (``realtime``, ``serverless``
or ``async``), or as an inference component of the environment's one shared endpoint
(``shared``, in the ``SharedServing`` stack).

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
from enum import StrEnum
from typing import Final

from cdk_mlops.datasets import dataset_name_problems

#: Models of one environment at most (the fleet benchmark's size).
MAX_MODELS: Final = 1000
#: ``model_stacks`` may be 1 to this many.
MAX_MODEL_STACKS: Final = 100
#: The default number of model stacks.
DEFAULT_MODEL_STACKS: Final = 4
#: ``shared_endpoints`` may be 1 to this many: 65 models an endpoint, and room for the hash's unevenness,
#: hold the 1,000 of :data:`MAX_MODELS`.
MAX_SHARED_ENDPOINTS: Final = 20
#: CloudFormation takes 500 resources a stack; a model stack keeps a margin below it.
MAX_STACK_RESOURCES: Final = 400
#: What one catalogue model adds to its stack: pipeline, role, policy, model package group, route.
RESOURCES_PER_MODEL: Final = 5


class ServingMode(StrEnum):
    """How a catalogue model is served (``serving.mode``)."""

    REALTIME = "realtime"
    """An endpoint of its own with instances (``ModelEndpoint``), in its model stack."""
    SERVERLESS = "serverless"
    """An endpoint of its own without instances, in its model stack."""
    ASYNC = "async"
    """An asynchronous endpoint of its own, scaling to zero, in its model stack."""
    SHARED = "shared"
    """An inference component of the environment's shared endpoint (``SharedModelEndpoint``)."""


#: What a served model's endpoint adds to its model stack, at most (every profile; in a VPC it uses
#: the network's security groups, so none of its own; the stack's endpoints and monitors share one
#: key, which the margin under CloudFormation's 500 covers).
SERVING_RESOURCES: Final = {
    ServingMode.REALTIME: 12,
    ServingMode.SERVERLESS: 8,
    ServingMode.ASYNC: 16,
    ServingMode.SHARED: 0,
}
#: What a realtime model's Model Monitor (data quality, with ``baseline_prefix``) adds to its model stack:
#: schedule, job definition, roles and policies, alarms, and its violation publisher (the stack's key is
#: shared, as above).
MONITOR_RESOURCES: Final = 18
#: The environment's shared endpoint, and what each model on it adds at most (scaling from zero).
SHARED_ENDPOINT_RESOURCES: Final = 6
SHARED_MODEL_RESOURCES: Final = 6
_SERVING_KEYS: Final = frozenset({"mode", "model_package_arn"})
_SHARED_KEYS: Final = frozenset({"cpu_cores", "memory_mb", "min_copies", "max_copies"})
_REALTIME_KEYS: Final = frozenset({"baseline_prefix"})
#: A training execution's baseline prefix in the data store (``artifacts/<pipeline>/<execution>/...-baseline/``).
_BASELINE_PREFIX: Final = re.compile(r"^artifacts/[A-Za-z0-9._/-]+/\Z")
#: A versioned model package ARN (``arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>``),
#: as the catalogue and an environment's ``model_package_arn`` take it.
MODEL_PACKAGE_ARN: Final = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:(?P<region>[a-z0-9-]+):[0-9]{12}:model-package/[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}/[0-9]+\Z"
)


@dataclass(frozen=True, kw_only=True)
class ModelServing:
    """How one catalogue model is served (its ``serving`` key).

    Attributes:
        mode: Its own endpoint (realtime, serverless, async) or the shared one.
        model_package_arn: The approved version to serve, in the environment's region.
            Default: - none; nothing is served until a version is approved.
        cpu_cores: CPU cores a copy reserves (``shared`` only). Default: - 1.
        memory_mb: Memory a copy reserves, MiB (``shared`` only). Default: - 1024.
        min_copies: Fewest copies; 0 scales the model to zero when idle (``shared`` only). Default: - 0.
        max_copies: Most copies (``shared`` only). Default: - 2.
        baseline_prefix: The served version's data-quality baseline in the environment's data store,
            ``artifacts/<pipeline>/<execution id>/data-quality-baseline/`` (``realtime`` only). With
            it the endpoint captures 20% of its requests, a Model Monitor checks them against the
            baseline (hourly in prod, daily elsewhere), and its violations retrain the model.
            Default: - no capture and no monitor.
    """

    mode: ServingMode
    model_package_arn: str | None = None
    cpu_cores: float = 1
    memory_mb: int = 1024
    min_copies: int = 0
    max_copies: int = 2
    baseline_prefix: str | None = None

    @property
    def package_region(self) -> str | None:
        """The region of ``model_package_arn``, or None without one."""
        match = MODEL_PACKAGE_ARN.match(self.model_package_arn or "")
        return match["region"] if match else None


#: A model name: what its pipeline's name ends with.
_NAME: Final = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*\Z")
_MAX_NAME: Final = 30
_KEYS: Final = frozenset(
    {"dataset", "quiet_period_minutes", "cooldown_hours", "max_runs_per_day", "preprocess_instance_count", "serving"}
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
        serving: How it is served. Default: - not served.
    """

    name: str
    dataset: str
    quiet_period_minutes: int = 15
    cooldown_hours: int = 1
    max_runs_per_day: int = 4
    preprocess_instance_count: int = 1
    serving: ModelServing | None = None

    @property
    def served(self) -> ModelServing | None:
        """Its serving, when a version is approved to serve; else None."""
        return self.serving if self.serving is not None and self.serving.model_package_arn is not None else None

    @property
    def monitored(self) -> bool:
        """Whether its served version is watched by a Model Monitor (realtime with ``baseline_prefix``)."""
        served = self.served
        return served is not None and served.mode is ServingMode.REALTIME and served.baseline_prefix is not None

    @property
    def stack_resources(self) -> int:
        """The resources it adds to its model stack: training and route, its own endpoint and monitor when served."""
        served = self.served
        serving = SERVING_RESOURCES[served.mode] if served is not None else 0
        return RESOURCES_PER_MODEL + serving + (MONITOR_RESOURCES if self.monitored else 0)


def baseline_prefix_problem(value: object) -> str | None:
    """Why ``value`` is not a baseline key prefix under ``artifacts/`` ending in ``/``; None when it is (or None)."""
    if value is None or (isinstance(value, str) and _BASELINE_PREFIX.match(value) and ".." not in value):
        return None
    return (
        f"{value!r} is not a key prefix under artifacts/ ending in '/'; "
        "use e.g. 'artifacts/<pipeline>/<execution id>/data-quality-baseline/'"
    )


#: Why only a realtime model takes a baseline.
_NOT_MONITORED: Final = (
    " (data capture and Model Monitor watch realtime endpoints; serverless, asynchronous and shared "
    "models are served without them)"
)


def _serving_problems(name: str, serving: object) -> list[str]:
    """Every problem of a model's ``serving`` value, each naming the key."""
    modes = ", ".join(m.value for m in ServingMode)
    if not isinstance(serving, Mapping):
        return [f'{name}.serving: {serving!r} is not a map; use e.g. {{"mode": "shared", "model_package_arn": ...}}']
    mode = serving.get("mode")
    if mode not in {m.value for m in ServingMode}:
        return [f"{name}.serving.mode: {mode!r} is not a serving mode; use one of: {modes}"]
    accepted = (
        _SERVING_KEYS
        | (_SHARED_KEYS if mode == ServingMode.SHARED else frozenset())
        | (_REALTIME_KEYS if mode == ServingMode.REALTIME else frozenset())
    )
    problems = [
        f"{name}.serving.{key}: unknown key for mode {mode!r}; accepted keys: {', '.join(sorted(accepted))}"
        + (_NOT_MONITORED if key in _REALTIME_KEYS else "")
        for key in sorted(set(serving) - accepted, key=str)
    ]
    problem = baseline_prefix_problem(serving.get("baseline_prefix"))
    if problem is not None:
        problems.append(f"{name}.serving.baseline_prefix: {problem}")
    arn = serving.get("model_package_arn")
    if arn is not None and not (isinstance(arn, str) and MODEL_PACKAGE_ARN.match(arn)):
        problems.append(
            f"{name}.serving.model_package_arn: {arn!r} is not a versioned model package ARN; use "
            "arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>, or leave it out"
        )
    cores = serving.get("cpu_cores", 1)
    if isinstance(cores, bool) or not isinstance(cores, int | float) or cores < 0.25:
        problems.append(f"{name}.serving.cpu_cores: {cores!r} is not a number of at least 0.25")
    for key, low, default in (("memory_mb", 128, 1024), ("min_copies", 0, 0), ("max_copies", 1, 2)):
        number = serving.get(key, default)
        if isinstance(number, bool) or not isinstance(number, int) or number < low:
            problems.append(f"{name}.serving.{key}: {number!r} is not a whole number of at least {low}")
    low, high = serving.get("min_copies", 0), serving.get("max_copies", 2)
    whole = all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (low, high))
    if whole and low > high:
        problems.append(f"{name}.serving.min_copies: {low} is more than max_copies ({high})")
    return problems


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
        if "serving" in settings:
            problems += _serving_problems(name, settings["serving"])
    return problems


def to_catalogue(value: Mapping[str, Mapping[str, object]]) -> tuple[CatalogueModel, ...]:
    """The models of a ``models`` value that :func:`catalogue_problems` accepted, sorted by name."""
    return tuple(_model(name, settings) for name, settings in sorted(value.items()))


def _model(name: str, settings: Mapping[str, object]) -> CatalogueModel:
    values = dict(settings)
    serving = values.pop("serving", None)
    if isinstance(serving, Mapping):
        values["serving"] = ModelServing(**{**serving, "mode": ServingMode(serving["mode"])})
    return CatalogueModel(name=name, **values)  # type: ignore[arg-type]


def model_stack_index(name: str, stacks: int) -> int:
    """The model stack (0 to ``stacks`` - 1) of the model ``name``: CRC-32 of the name, modulo ``stacks``.

    It depends on the name and the number of stacks only, so adding or removing a model never moves
    another, and every synth (every machine, every Python) puts a model in the same stack.
    """
    return zlib.crc32(name.encode()) % stacks


def shared_endpoint_index(name: str, endpoints: int) -> int:
    """The shared endpoint (0 to ``endpoints`` - 1) of the ``shared`` model ``name``: the same hash as its stack's.

    As with :func:`model_stack_index`, adding or removing a model never moves another.
    """
    return model_stack_index(name, endpoints)


def model_stacks_problems(models: tuple[CatalogueModel, ...], stacks: int, shared_endpoints: int = 1) -> list[str]:
    """Whether any model stack, or any shared serving stack, would hold more than :data:`MAX_STACK_RESOURCES`."""
    resources, counts = [0] * stacks, [0] * stacks
    for model in models:
        index = model_stack_index(model.name, stacks)
        resources[index] += model.stack_resources
        counts[index] += 1
    largest = max(range(stacks), key=lambda i: resources[i])
    problems: list[str] = []
    if resources[largest] > MAX_STACK_RESOURCES:
        needed = -(-sum(resources) * 2 // MAX_STACK_RESOURCES)
        problems.append(
            f"model_stacks: {stacks} stacks would put {counts[largest]} models ({resources[largest]} resources) in "
            f"one stack, over {MAX_STACK_RESOURCES}; raise model_stacks (e.g. to {min(needed, MAX_MODEL_STACKS)}), "
            "which moves most models to other stacks (docs/model-catalogue.md)"
        )
    shared = [0] * shared_endpoints
    for model in models:
        if model.served is not None and model.served.mode is ServingMode.SHARED:
            shared[shared_endpoint_index(model.name, shared_endpoints)] += 1
    fullest = max(range(shared_endpoints), key=lambda i: shared[i])
    shared_resources = SHARED_ENDPOINT_RESOURCES + shared[fullest] * SHARED_MODEL_RESOURCES
    if shared[fullest] and shared_resources > MAX_STACK_RESOURCES:
        most = (MAX_STACK_RESOURCES - SHARED_ENDPOINT_RESOURCES) // SHARED_MODEL_RESOURCES
        where = "the SharedServing stack" if shared_endpoints == 1 else f"one of {shared_endpoints} shared endpoints"
        needed = min(-(-sum(shared) * 2 // most), MAX_SHARED_ENDPOINTS)
        problems.append(
            f"models: {shared[fullest]} models served in mode shared would put {shared_resources} resources in "
            f"{where}, over {MAX_STACK_RESOURCES} (at most {most} models an endpoint); raise shared_endpoints "
            f"(e.g. to {needed}), which moves most shared models to other endpoints (docs/model-catalogue.md)"
        )
    return problems
