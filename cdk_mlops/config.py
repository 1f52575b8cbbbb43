"""Typed, validated per-environment configuration.

The reference app reads the ``environments`` context key from ``cdk.json``
once, turns it into :class:`EnvironmentConfig` objects with
:func:`load_environments`, and passes those objects down. Constructs never
read context or environment variables themselves.

The context maps an environment name to overrides of its profile::

    "environments": {
      "dev":     {"account": "111111111111", "region": "eu-west-1"},
      "staging": {"account": "222222222222", "region": "eu-west-1"},
      "prod":    {"account": "333333333333", "region": "eu-west-1", "owner": "ml-platform"}
    }

An environment named ``dev``, ``staging`` or ``prod`` takes the profile of the
same name; any other name must set ``profile``. Without ``account`` and
``region`` the stage is environment-agnostic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from functools import cache
from typing import Any

import aws_cdk as cdk

from cdk_mlops.catalogue import (
    DEFAULT_MODEL_STACKS,
    MAX_MODEL_STACKS,
    MAX_SHARED_ENDPOINTS,
    MODEL_PACKAGE_ARN,
    CatalogueModel,
    ServingMode,
    baseline_prefix_problem,
    catalogue_problems,
    model_stacks_problems,
    to_catalogue,
)
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.guardrail_ids import RULE_IDS
from cdk_mlops.network_config import EXISTING_HINT, to_network
from cdk_mlops.network_config import NetworkConfig as NetworkConfig
from cdk_mlops.network_config import NetworkMode as NetworkMode
from cdk_mlops.network_config import network_problems as network_problems
from cdk_mlops.pipeline_definition import BiasFacet, ClarifySettings, clarify_settings_problems

#: Where the reference app reads its configuration from.
CONTEXT_KEY = "environments"
#: How errors name the configuration source.
_SOURCE = "cdk.json context"


class Profile(StrEnum):
    """The kind of environment; it decides the defaults of every setting."""

    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class EndpointKind(StrEnum):
    """How model endpoints are hosted."""

    SERVERLESS = "serverless"
    """Pay per request; an idle endpoint costs nothing."""
    REALTIME = "realtime"
    """Instances behind target-tracking autoscaling; needed for data capture."""
    ASYNC = "async"
    """Queued requests with payloads in S3, answered into the data store; scales to zero instances."""


class DatasetVersions(StrEnum):
    """How the retrain trigger takes the version of the dataset a run trains on."""

    LISTING = "listing"
    """The trigger lists the dataset at each start: fresh to the second, up to about half a million objects."""
    INVENTORY = "inventory"
    """The newest ``InventorySnapshot`` version (daily S3 Inventory, a Distributed Map): any size, up to a day old."""


@dataclass(frozen=True, kw_only=True)
class BatchInferenceConfig:
    """Batch scoring of a dataset with the environment's approved model (the ``batch_inference`` key).

    ``{"dataset": "churn-scoring", "schedule": "cron(0 4 * * ? *)"}``: every new version of
    ``datasets/<dataset>/`` is scored once, and the schedule scores versions not yet scored.

    Attributes:
        dataset: The dataset scored (under ``datasets/<name>/``); another than the one trained on.
        schedule: EventBridge Scheduler expression of scheduled runs. Default: - none: data
            drops and requests start runs.
    """

    dataset: str
    schedule: str | None = None


#: The monitoring baselines a training execution can write, each in ``<name>-baseline/`` under its
#: artifacts prefix; the ``MonitoringType`` slugs of the model monitor (a test keeps them equal).
MONITOR_BASELINES: tuple[str, ...] = ("data-quality", "model-quality", "model-bias", "model-explainability")
DATA_QUALITY_BASELINE = MONITOR_BASELINES[0]
#: The baselines whose monitors merge predictions with ground-truth labels.
LABELLED_BASELINES: frozenset[str] = frozenset({"model-quality", "model-bias"})


@dataclass(frozen=True, kw_only=True)
class EnvironmentConfig:
    """Everything that differs between dev, staging and prod.

    Build one with :func:`profile_defaults` (or :func:`load_environments` from
    ``cdk.json`` context) and vary it with ``dataclasses.replace``.

    Attributes:
        name: Environment name, lower case (``dev``). The stage is named after it (``Dev``).
        profile: The profile whose defaults this environment started from.
        account: Target AWS account id (12 digits). Default: - environment-agnostic.
        region: Target AWS region. Default: - environment-agnostic.
        project: Value of the ``project`` tag on every resource.
        owner: Value of the ``owner`` tag on every resource (cost allocation).
        removal_policy: Applied to resources that hold no data (queues, topics,
            log groups, roles). Default: - DESTROY in dev, RETAIN elsewhere.
        data_removal_policy: Applied to data stores and their keys. Default: - RETAIN
            in every profile; data is never deleted by a stack deletion unless asked.
        termination_protection: Stack termination protection. Default: - on in prod only.
        manual_approval: A person approves before a deployment reaches this
            environment. Default: - on in prod only; prod cannot turn it off.
        auto_approve_models: Newly registered model packages are approved
            without a person. Default: - on in dev only; prod cannot turn it on.
        endpoint_kind: How endpoints are hosted. Default: - serverless in dev,
            realtime elsewhere.
        noncurrent_version_transition_days: Days before an overwritten object
            version moves to Infrequent Access (at least 30, an S3 rule). Default: - 30.
        noncurrent_version_expiration_days: Days before an overwritten object
            version is deleted; ``None`` keeps every version. Default: - 60 in dev,
            365 in staging, ``None`` (keep every version) in prod.
        retrain_schedule: EventBridge Scheduler expression for periodic
            retraining (``cron(...)`` or ``rate(...)``); ``None`` turns it off.
            Default: - off in dev, weekly elsewhere.
        source_revision: The source revision recorded on registered models.
            Default: - ``unknown``; a delivery pipeline sets the commit id.
        require_network_isolation: SageMaker models, pipeline jobs, monitors and Lambda
            functions must run in the environment's VPC (guardrail MLOPS-007); needs a
            ``network``. Default: - True in prod, False elsewhere.
        network: The VPC of the environment's jobs, endpoint, monitors and retrain Lambda.
            Default: - an isolated VPC the platform creates in prod (:attr:`NetworkMode.ISOLATED`);
            no VPC in dev and staging, so they cost nothing while idle.
        dataset: The dataset (under ``datasets/<name>/``) the platform trains on.
            Default: - ``churn``.
        dataset_versions: How a run's data version is taken (:class:`DatasetVersions`):
            ``listing`` (at each start) or ``inventory`` (the newest inventory snapshot; a run
            starts when a snapshot of new data succeeds). Default: - ``inventory`` in prod,
            where datasets are largest, ``listing`` elsewhere.
        preprocess_instance_count: Instances of the pipeline's ``Preprocess`` job, each taking its
            share of the version's shards (1 to 100). Default: - 1.
        model_package_arn: The approved model package this environment serves;
            the serving stack (an endpoint) exists only once it is set.
            Default: - none: no model has been approved for this environment yet.
        model_baseline_prefix: Key prefix in the data store holding the served
            model's drift-check baseline (``statistics.json``, ``constraints.json``:
            the ``DataQualityBaseline`` output of the execution that trained it,
            ``artifacts/<pipeline>/<execution id>/data-quality-baseline/``). Required
            with a realtime endpoint, which Model Monitor watches against it.
            Default: - none.
        model_source_bucket: The data bucket holding the served model's artifacts and
            drift-check baseline: that of the environment whose registry the model was
            promoted from (another account, when ``model_package_arn`` names one). The
            endpoint and its monitor read the model and the baseline there, decrypting
            with that bucket's key through S3. The model delivery pipeline sets it.
            Default: - this environment's own data store.
        model_reader_accounts: Derived by :func:`load_environments`, not a context key: the
            accounts of the environments after this one (in ``cdk.json`` order) that differ
            from its own, since models registered here are promoted to them. The model
            registry, the model artifacts and baselines under ``artifacts/`` and the data
            store's key may be read from those accounts. Default: - none.
        model_baselines: The monitoring baselines the served model package carries next to
            ``model_baseline_prefix`` (``data-quality``, ``model-quality``, ``model-bias``,
            ``model-explainability``; a list, or the same comma-separated as the model delivery
            pipeline records it). A realtime endpoint's Model Monitor runs one schedule per
            baseline: ``<type>-baseline/`` beside ``data-quality-baseline/``, where the training
            pipeline writes it. The model delivery pipeline sets it from the package's
            ``DriftCheckBaselines``. Default: - ``data-quality`` alone.
        ground_truth: Labels for the endpoint's predictions arrive under
            ``ground-truth/<endpoint>/`` (:mod:`cdk_mlops.ground_truth`). Model-quality and bias
            monitoring merge predictions with labels, so they run only once this is true (and
            the package has their baselines); before that their executions would find nothing
            to merge and fail. Default: - False.
        batch_inference: Batch scoring of a dataset with the served model
            (:class:`BatchInferenceConfig`); needs ``model_package_arn``. Where the served
            package has a data-quality baseline, a daily Model Monitor schedule checks the
            scored data against it, and, with ``ground_truth`` and a model-quality baseline,
            a daily model-quality schedule too. Default: - none.
        bias_facets: The sensitive columns of the training data
            (``[{"name": "age", "threshold": 40}]`` or ``[{"name": "sex", "values": [1]}]``).
            With them, every training run computes SageMaker Clarify bias (pre- and
            post-training) and SHAP explainability baselines and registers them with the
            model package (:class:`cdk_mlops.pipeline_definition.ClarifySettings`), so the
            bias and explainability monitors have baselines. Default: - none: no Clarify jobs.
        drift_thresholds: Per-feature baseline drift above which the drift alarm
            fires and retraining starts. Default: - no drift alarms (violation
            events still reach the retrain trigger).
        disabled_guardrails: Guardrail ids (``MLOPS-00N``) that do not run in this
            environment. Default: - every rule runs.
        warning_guardrails: Guardrail ids reported as warnings instead of failing
            synth in this environment. Default: - every rule is an error.
        tags: Extra tags on every resource. Default: - none beyond project,
            environment and owner.
        models: The model catalogue (:class:`cdk_mlops.catalogue.CatalogueModel`, the ``models`` key):
            each model is trained by its own pipeline in a model stack and retrained by the
            environment's one fleet retrain trigger. Default: - none.
        model_stacks: How many stacks the catalogue is spread over, by a hash of each model's name
            (1 to 100). Changing it moves most models. Default: - 4.
        shared_endpoints: How many shared endpoints (and ``SharedServing`` stacks) the models served
            in mode ``shared`` are spread over, by the same hash (1 to 20; each holds at most 65
            models). Changing it moves most shared models. Default: - 1.
    """

    name: str
    profile: Profile
    account: str | None = None
    region: str | None = None
    project: str = "cdk-mlops"
    owner: str = "ml-platform"
    removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN
    data_removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN
    termination_protection: bool = False
    manual_approval: bool = False
    auto_approve_models: bool = False
    endpoint_kind: EndpointKind = EndpointKind.REALTIME
    noncurrent_version_transition_days: int = 30
    noncurrent_version_expiration_days: int | None = 365
    retrain_schedule: str | None = None
    source_revision: str = "unknown"
    require_network_isolation: bool = False
    network: NetworkConfig = field(default_factory=NetworkConfig)
    dataset: str = "churn"
    dataset_versions: DatasetVersions = DatasetVersions.LISTING
    preprocess_instance_count: int = 1
    model_package_arn: str | None = None
    model_baseline_prefix: str | None = None
    model_source_bucket: str | None = None
    model_baselines: tuple[str, ...] = (DATA_QUALITY_BASELINE,)
    ground_truth: bool = False
    batch_inference: BatchInferenceConfig | None = None
    bias_facets: tuple[BiasFacet, ...] = ()
    model_reader_accounts: tuple[str, ...] = ()
    drift_thresholds: Mapping[str, float] = field(default_factory=dict)
    disabled_guardrails: tuple[str, ...] = ()
    warning_guardrails: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    models: tuple[CatalogueModel, ...] = ()
    model_stacks: int = DEFAULT_MODEL_STACKS
    shared_endpoints: int = 1

    @property
    def fleet_prefix(self) -> str:
        """What the names of the catalogue's pipelines start with: ``<project>-<environment>-model-``."""
        return f"{self.project}-{self.name}-model-"

    @property
    def stage_name(self) -> str:
        """The construct id of this environment's Stage: ``dev`` → ``Dev``, ``ml-sandbox`` → ``MlSandbox``."""
        return "".join(part.capitalize() for part in self.name.split("-"))

    @property
    def env(self) -> cdk.Environment | None:
        """The CDK environment, or ``None`` when account and region are both unset."""
        if self.account is None and self.region is None:
            return None
        return cdk.Environment(account=self.account, region=self.region)

    @property
    def is_prod(self) -> bool:
        """True for environments built from the prod profile."""
        return self.profile is Profile.PROD


def profile_defaults(name: str, profile: Profile) -> EnvironmentConfig:
    """The default configuration of one profile, under the given environment name."""
    if profile is Profile.DEV:
        return EnvironmentConfig(
            name=name,
            profile=profile,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            auto_approve_models=True,
            endpoint_kind=EndpointKind.SERVERLESS,
            noncurrent_version_expiration_days=60,
        )
    if profile is Profile.STAGING:
        return EnvironmentConfig(
            name=name,
            profile=profile,
            noncurrent_version_expiration_days=365,
            retrain_schedule="cron(0 3 ? * MON *)",
        )
    return EnvironmentConfig(
        name=name,
        profile=profile,
        termination_protection=True,
        manual_approval=True,
        noncurrent_version_expiration_days=None,
        retrain_schedule="cron(0 3 ? * MON *)",
        require_network_isolation=True,
        network=NetworkConfig(mode=NetworkMode.ISOLATED),
        dataset_versions=DatasetVersions.INVENTORY,
    )


#: The environments used when the context does not name any.
DEFAULT_ENVIRONMENTS: Mapping[str, Mapping[str, Any]] = {"dev": {}, "staging": {}, "prod": {}}

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*\Z")
_ACCOUNT = re.compile(r"^[0-9]{12}\Z")
_SCHEDULE = re.compile(r"^(cron\([^()]+\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\))\Z")
_TAG_VALUE = re.compile(r"^[\w .:/=+\-@]{1,256}\Z")


@cache
def known_regions() -> frozenset[str]:
    """Region names known to the installed aws-cdk-lib's fact table."""
    from aws_cdk.region_info import RegionInfo

    return frozenset(r.name for r in RegionInfo.regions)


def _is_int(value: object) -> bool:
    # bool is a subclass of int; `true` is not a number of days.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_account(value: object) -> str | None:
    if isinstance(value, str) and _ACCOUNT.match(value):
        return None
    return f'{value!r} is not an AWS account id; use the 12 digits, as a string (e.g. "123456789012")'


def _check_region(value: object) -> str | None:
    if isinstance(value, str) and value in known_regions():
        return None
    return f"{value!r} is not a known AWS region; use one of: {', '.join(sorted(known_regions()))}"


def _check_profile(value: object) -> str | None:
    accepted = [p.value for p in Profile]
    if isinstance(value, str) and value in accepted:
        return None
    return f"{value!r} is not a profile; use one of: {', '.join(accepted)}"


def _check_bool(value: object) -> str | None:
    return None if isinstance(value, bool) else f"{value!r} is not a boolean; use true or false"


def _check_text(value: object) -> str | None:
    if isinstance(value, str) and _TAG_VALUE.match(value):
        return None
    return f"{value!r} is not valid; use 1-256 letters, digits, spaces or _ . : / = + - @"


def _check_days(value: object) -> str | None:
    if _is_int(value) and 1 <= value <= 36500:  # type: ignore[operator]
        return None
    return f"{value!r} is not a number of days; use a whole number from 1 to 36500"


def _check_transition_days(value: object) -> str | None:
    # S3 moves noncurrent versions to STANDARD_IA no earlier than 30 days.
    if _is_int(value) and 30 <= value <= 36500:  # type: ignore[operator]
        return None
    return f"{value!r} is not valid; use a whole number of days from 30 (the S3 minimum for STANDARD_IA) to 36500"


def _check_days_or_null(value: object) -> str | None:
    return None if value is None else _check_days(value)


def _check_endpoint_kind(value: object) -> str | None:
    accepted = [k.value for k in EndpointKind]
    if isinstance(value, str) and value in accepted:
        return None
    return f"{value!r} is not an endpoint kind; use one of: {', '.join(accepted)}"


def _check_instance_count(value: object) -> str | None:
    fits = _is_int(value) and 1 <= value <= 100  # type: ignore[operator]
    return None if fits else f"{value!r} is not an instance count; use a whole number from 1 to 100 (a job's limit)"


def _check_dataset_versions(value: object) -> str | None:
    accepted = [k.value for k in DatasetVersions]
    if isinstance(value, str) and value in accepted:
        return None
    return f"{value!r} is not a way to take dataset versions; use one of: {', '.join(accepted)}"


def _check_schedule(value: object) -> str | None:
    if value is None or (isinstance(value, str) and _SCHEDULE.match(value)):
        return None
    return (
        f"{value!r} is not a schedule; use cron(...) or rate(N unit) as EventBridge Scheduler accepts, "
        "or null to turn it off"
    )


def _check_tags(value: object) -> str | None:
    if isinstance(value, dict) and all(
        isinstance(k, str) and _TAG_VALUE.match(k) and isinstance(v, str) and _TAG_VALUE.match(v)
        for k, v in value.items()
    ):
        return None
    return f"{value!r} is not a tag map; use an object of string keys to string values"


def _check_dataset(value: object) -> str | None:
    from cdk_mlops.datasets import dataset_name_problems

    problems = dataset_name_problems(value)
    return "; ".join(problems) if problems else None


def _check_model_package_arn(value: object) -> str | None:
    if value is None or (isinstance(value, str) and MODEL_PACKAGE_ARN.match(value)):
        return None
    return (
        f"{value!r} is not a versioned model package ARN; use "
        "arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>, or null"
    )


# S3 bucket naming rules: 3-63 lower-case letters, digits, dots and hyphens.
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
_FEATURE = re.compile(r"^[A-Za-z0-9_.-]{1,100}\Z")


def _check_bucket_name(value: object) -> str | None:
    if value is None or (isinstance(value, str) and _BUCKET_NAME.match(value) and ".." not in value):
        return None
    return f"{value!r} is not an S3 bucket name; use the name (not the ARN or an s3:// URI) of the data bucket, or null"


def baseline_names(value: object) -> tuple[str, ...]:
    """The baseline names of a checked ``model_baselines`` value (a list, or comma-separated)."""
    items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    return tuple(str(item).strip() for item in items if str(item).strip())


def _check_model_baselines(value: object) -> str | None:
    accepted = ", ".join(MONITOR_BASELINES)
    if isinstance(value, str | list) and all(isinstance(v, str) for v in value):
        names = baseline_names(value)
        unknown = [n for n in names if n not in MONITOR_BASELINES]
        if names and not unknown and len(set(names)) == len(names) and DATA_QUALITY_BASELINE in names:
            return None
    return (
        f"{value!r} is not a list of monitoring baselines that includes data-quality; use names from: {accepted}, "
        'each once (e.g. ["data-quality", "model-quality"]), or the same comma-separated'
    )


_FACET_KEYS = frozenset({"name", "values", "threshold"})


def _to_facets(value: object) -> tuple[BiasFacet, ...]:
    """The facets of a ``bias_facets`` value whose entries are maps with known keys."""
    assert isinstance(value, list)
    return tuple(
        BiasFacet(name=f["name"], values=tuple(f.get("values", ())), threshold=f.get("threshold")) for f in value
    )


def _check_bias_facets(value: object) -> str | None:
    example = '[{"name": "age", "threshold": 40}]'
    if not isinstance(value, list) or not value:
        return f"{value!r} is not a list of facets; use e.g. {example}"
    for facet in value:
        if not isinstance(facet, Mapping) or "name" not in facet or set(facet) - _FACET_KEYS:
            return f"{facet!r} is not a facet; use a map of name and values or threshold, e.g. {example}"
        if not isinstance(facet.get("values", []), list):
            return f"{facet!r}: values must be a list of numbers, e.g. [1]"
    problems = clarify_settings_problems(ClarifySettings(facets=_to_facets(value)))
    return "; ".join(p.replace("clarify.facets", "bias_facets") for p in problems) or None


_BATCH_KEYS = frozenset({"dataset", "schedule"})


def _check_batch_inference(value: object) -> str | None:
    if value is None:
        return None
    example = '{"dataset": "churn-scoring", "schedule": "cron(0 4 * * ? *)"}'
    if not isinstance(value, Mapping):
        return f"{value!r} is not a batch inference setting; use e.g. {example}, or null"
    found = [f"unknown key {k!r} (known: dataset, schedule)" for k in sorted(set(value) - _BATCH_KEYS, key=str)]
    if "dataset" not in value:
        found.append("dataset is missing: name the dataset to score")
    else:
        found += [f"dataset: {p}" for p in [_check_dataset(value["dataset"])] if p]
    found += [f"schedule: {p}" for p in [_check_schedule(value.get("schedule"))] if p]
    return f"{'; '.join(found)}; use e.g. {example}" if found else None


def _check_drift_thresholds(value: object) -> str | None:
    if isinstance(value, dict) and all(
        isinstance(k, str) and _FEATURE.match(k) and not isinstance(v, bool) and isinstance(v, int | float) and v > 0
        for k, v in value.items()
    ):
        return None
    return f'{value!r} is not a map of feature names to positive drift thresholds; use e.g. {{"age": 0.2}}'


def _check_guardrail_ids(value: object) -> str | None:
    if isinstance(value, list) and all(isinstance(v, str) and v in RULE_IDS for v in value):
        return None
    return f"{value!r} is not a list of guardrail ids; use ids from: {', '.join(RULE_IDS)}"


def _check_network(value: object) -> str | None:
    return "; ".join(network_problems(value)) or None


def _check_models(value: object) -> str | None:
    return "; ".join(catalogue_problems(value)) or None


def _check_model_stacks(value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_MODEL_STACKS:
        return None
    return f"{value!r} is not a whole number from 1 to {MAX_MODEL_STACKS}"


def _check_shared_endpoints(value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_SHARED_ENDPOINTS:
        return None
    return f"{value!r} is not a whole number from 1 to {MAX_SHARED_ENDPOINTS}"


# Every key the context may set, with its check. Keys not listed here are errors.
_OVERRIDES: dict[str, Callable[[object], str | None]] = {
    "account": _check_account,
    "region": _check_region,
    "profile": _check_profile,
    "owner": _check_text,
    "project": _check_text,
    "termination_protection": _check_bool,
    "manual_approval": _check_bool,
    "auto_approve_models": _check_bool,
    "endpoint_kind": _check_endpoint_kind,
    "noncurrent_version_transition_days": _check_transition_days,
    "noncurrent_version_expiration_days": _check_days_or_null,
    "retrain_schedule": _check_schedule,
    "source_revision": _check_text,
    "require_network_isolation": _check_bool,
    "network": _check_network,
    "dataset": _check_dataset,
    "dataset_versions": _check_dataset_versions,
    "preprocess_instance_count": _check_instance_count,
    "model_package_arn": _check_model_package_arn,
    "model_baseline_prefix": baseline_prefix_problem,
    "model_source_bucket": _check_bucket_name,
    "model_baselines": _check_model_baselines,
    "ground_truth": _check_bool,
    "batch_inference": _check_batch_inference,
    "bias_facets": _check_bias_facets,
    "drift_thresholds": _check_drift_thresholds,
    "disabled_guardrails": _check_guardrail_ids,
    "warning_guardrails": _check_guardrail_ids,
    "tags": _check_tags,
    "models": _check_models,
    "model_stacks": _check_model_stacks,
    "shared_endpoints": _check_shared_endpoints,
}

# Config fields the context may not override, and why.
_NOT_OVERRIDABLE = {f.name for f in fields(EnvironmentConfig)} - set(_OVERRIDES) - {"name"}
# Derived from the other environments; the context may not set them either.
_DERIVED = frozenset({"model_reader_accounts"})


def _to_config(name: str, raw: Mapping[str, Any]) -> EnvironmentConfig:
    profile = Profile(raw.get("profile", name))
    values: dict[str, Any] = {k: v for k, v in raw.items() if k != "profile"}
    if "endpoint_kind" in values:
        values["endpoint_kind"] = EndpointKind(values["endpoint_kind"])
    if "dataset_versions" in values:
        values["dataset_versions"] = DatasetVersions(values["dataset_versions"])
    for key in ("disabled_guardrails", "warning_guardrails"):
        if key in values:
            values[key] = tuple(values[key])
    if "network" in values:
        values["network"] = to_network(values["network"])
    if values.get("batch_inference") is not None:
        values["batch_inference"] = BatchInferenceConfig(**values["batch_inference"])
    if "bias_facets" in values:
        values["bias_facets"] = _to_facets(values["bias_facets"])
    if "model_baselines" in values:
        values["model_baselines"] = baseline_names(values["model_baselines"])
    if "models" in values:
        values["models"] = to_catalogue(values["models"])
    return replace(profile_defaults(name, profile), **values)


def _cross_checks(path: str, config: EnvironmentConfig) -> list[str]:
    problems = [
        f"{path}.{p}" for p in model_stacks_problems(config.models, config.model_stacks, config.shared_endpoints)
    ]
    # The longest name is a model's package group, <prefix><model>-models: SageMaker takes 63 characters.
    problems += [
        f"{path}.models.{m.name}: {config.fleet_prefix}{m.name}-models is over 63 characters; shorten the name"
        for m in config.models
        if len(f"{config.fleet_prefix}{m.name}-models") > 63
    ]
    # SageMaker serves a package of its own region only (CreateModel); another region's is copied first.
    problems += [
        f"{path}.models.{m.name}.serving.model_package_arn: a package of {m.served.package_region}, but the "
        f"environment deploys to {config.region}; register (or copy) the model in {config.region} and use that "
        "version's ARN"
        for m in config.models
        if m.served is not None and config.region and m.served.package_region != config.region
    ]
    if config.require_network_isolation:
        problems += [
            f"{path}.models.{m.name}.serving.mode: {m.serving.mode.value} models run outside the VPC, and "
            'require_network_isolation is true; use "realtime" or "async", or set require_network_isolation to false'
            for m in config.models
            if m.serving is not None and m.serving.mode in (ServingMode.SHARED, ServingMode.SERVERLESS)
        ]
    if config.is_prod:
        if not config.manual_approval:
            problems.append(
                f"{path}.manual_approval: false is not allowed in a prod environment; "
                "remove the key (prod always requires a manual approval)"
            )
        if config.auto_approve_models:
            problems.append(
                f"{path}.auto_approve_models: true is not allowed in a prod environment; "
                "remove the key (prod models are approved by a person)"
            )
        if not config.termination_protection:
            problems.append(
                f"{path}.termination_protection: false is not allowed in a prod environment; remove the key"
            )
    if config.require_network_isolation and not config.network.private:
        problems.append(
            f'{path}.require_network_isolation: true needs a VPC, but network is "none"; set network to '
            '"isolated" (or an existing VPC\'s ids), or set require_network_isolation to false'
        )
    if (
        config.require_network_isolation
        and config.model_package_arn
        and config.endpoint_kind is EndpointKind.SERVERLESS
    ):
        problems.append(
            f"{path}.endpoint_kind: serverless endpoints cannot run in a VPC, and require_network_isolation is true; "
            'set "endpoint_kind": "realtime", or set require_network_isolation to false'
        )
    foreign = [z for z in config.network.availability_zones if config.region and not z.startswith(config.region)]
    if foreign:
        problems.append(
            f"{path}.network.availability_zones: {', '.join(foreign)} not in the environment's region "
            f"{config.region}; name the zones of the VPC's subnets"
        )
    if (
        config.model_package_arn is not None
        and config.endpoint_kind is EndpointKind.REALTIME
        and config.model_baseline_prefix is None
    ):
        problems.append(
            f"{path}.model_baseline_prefix: missing; a realtime endpoint is monitored against its model's "
            "drift-check baseline: set the data-store prefix of the statistics.json and constraints.json "
            "that the training execution wrote (artifacts/<pipeline>/<execution id>/data-quality-baseline/)"
        )
    if set(config.model_baselines) - {DATA_QUALITY_BASELINE} and not (config.model_baseline_prefix or "").endswith(
        f"/{DATA_QUALITY_BASELINE}-baseline/"
    ):
        problems.append(
            f"{path}.model_baselines: {', '.join(config.model_baselines)} are found beside the "
            f"data-quality baseline, but model_baseline_prefix ({config.model_baseline_prefix!r}) is not a "
            "training execution's .../data-quality-baseline/ prefix; set it to "
            "artifacts/<pipeline>/<execution id>/data-quality-baseline/, or list data-quality alone"
        )
    batch = config.batch_inference
    if batch is not None and config.model_package_arn is None:
        problems.append(
            f"{path}.batch_inference: set without model_package_arn; batch scoring runs the environment's "
            "approved model, so set model_package_arn too (the model delivery pipeline does), or remove the key"
        )
    if batch is not None and batch.dataset == config.dataset:
        problems.append(
            f"{path}.batch_inference.dataset: {batch.dataset!r} is the dataset the environment trains on; "
            "score another dataset (each drop would otherwise start both training and scoring)"
        )
    if config.model_source_bucket is not None and config.model_package_arn is None:
        problems.append(
            f"{path}.model_source_bucket: set without model_package_arn; it names where the served model's "
            "artifacts are, so set model_package_arn too, or remove the key"
        )
    if config.drift_thresholds and config.endpoint_kind is not EndpointKind.REALTIME:
        problems.append(
            f"{path}.drift_thresholds: {config.endpoint_kind.value} endpoints capture no data here, so nothing "
            'monitors drift; remove the key, or set "endpoint_kind": "realtime"'
        )
    transition = config.noncurrent_version_transition_days
    expiration = config.noncurrent_version_expiration_days
    if expiration is not None and expiration <= transition:
        problems.append(
            f"{path}.noncurrent_version_expiration_days: {expiration} must be greater than "
            f"noncurrent_version_transition_days ({transition}); raise it, or set it to null to keep every version"
        )
    return problems


def load_environments(context: object) -> list[EnvironmentConfig]:
    """Validate the ``environments`` context value and build one config per environment.

    Args:
        context: The value of the ``environments`` context key: a mapping of
            environment name to overrides, a JSON string of the same (as
            ``cdk synth -c environments='{...}'`` passes it), or ``None`` for
            the default dev, staging and prod environments.

    Returns:
        One :class:`EnvironmentConfig` per environment, in the order given.

    Raises:
        ConfigurationError: listing every problem found, each with its key path
            (``environments.prod.region``), the bad value and the accepted values.
    """
    if context is None:
        context = DEFAULT_ENVIRONMENTS
    if isinstance(context, str):
        try:
            context = json.loads(context)
        except json.JSONDecodeError as error:
            raise ConfigurationError(
                _SOURCE, f"{CONTEXT_KEY}: not valid JSON ({error.msg} at character {error.pos})"
            ) from None
    if not isinstance(context, Mapping) or not context:
        raise ConfigurationError(
            _SOURCE,
            f"{CONTEXT_KEY}: {context!r} is not a map of environment names to settings; "
            'use e.g. {"dev": {}, "staging": {}, "prod": {}}',
        )

    problems: list[str] = []
    checked: list[tuple[str, Mapping[str, Any]]] = []
    for name, raw in context.items():
        path = f"{CONTEXT_KEY}.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append(f"{path}: {name!r} is not a valid environment name; use lower-case letters, digits and '-'")
            continue
        if not isinstance(raw, Mapping):
            problems.append(
                f'{path}: {raw!r} is not a map of settings; use an object such as {{"region": "eu-west-1"}}'
            )
            continue
        found = len(problems)
        for key, value in raw.items():
            check = _OVERRIDES.get(key)
            if check is None:
                hint = ""
                if key in _DERIVED:
                    hint = " (it is derived from the other environments' accounts)"
                elif key in _NOT_OVERRIDABLE:
                    hint = " (it is derived from the profile)"
                problems.append(f"{path}.{key}: unknown key{hint}; accepted keys: {', '.join(sorted(_OVERRIDES))}")
                continue
            problem = check(value)
            if problem:
                problems.append(f"{path}.{key}: {problem}")
        if "profile" not in raw and name not in {p.value for p in Profile}:
            problems.append(
                f"{path}.profile: missing; an environment not named dev, staging or prod must set "
                f"profile to one of: {', '.join(p.value for p in Profile)}"
            )
        if ("account" in raw) != ("region" in raw):
            missing = "region" if "account" in raw else "account"
            problems.append(f"{path}.{missing}: missing; set account and region together, or neither")
        if len(problems) == found:
            checked.append((name, raw))

    configs: list[EnvironmentConfig] = []
    for name, raw in checked:
        config = _to_config(name, raw)
        problems.extend(_cross_checks(f"{CONTEXT_KEY}.{name}", config))
        configs.append(config)

    stage_names = [c.stage_name for c in configs]
    for stage in sorted({s for s in stage_names if stage_names.count(s) > 1}):
        problems.append(f"{CONTEXT_KEY}: two environments map to the stage name {stage!r}; rename one")

    if problems:
        raise ConfigurationError(_SOURCE, problems)
    return _with_model_readers(configs)


def _with_model_readers(configs: Sequence[EnvironmentConfig]) -> list[EnvironmentConfig]:
    """Each config with the accounts of the later environments that differ from its own.

    Models flow forward (the model delivery pipeline promotes from one environment's registry
    to the environments after it), so those accounts must be able to read this environment's
    registry, model artifacts and baselines. Environment-agnostic environments add nothing.
    """
    result: list[EnvironmentConfig] = []
    for index, config in enumerate(configs):
        readers = tuple(
            dict.fromkeys(
                str(later.account)
                for later in configs[index + 1 :]
                if later.account is not None and config.account is not None and later.account != config.account
            )
        )
        result.append(replace(config, model_reader_accounts=readers))
    return result


#: Where the reference app reads the delivery pipelines' settings from.
TOOLING_KEY = "tooling"


@dataclass(frozen=True, kw_only=True)
class ToolingConfig:
    """Where the delivery pipelines live and what they build from (the ``tooling`` context key).

    Attributes:
        account: The tooling account (12 digits).
        region: The tooling region.
        connection_arn: An AWS CodeConnections connection (GitHub, GitLab, Bitbucket).
            Default: - none; give ``source_bucket_name`` and ``source_object_key`` instead.
        repository: ``owner/repo`` of the connection. Default: - none.
        branch: The branch that deploys. Default: - ``main``.
        source_bucket_name: A bucket holding the repository as a zip, instead of a connection.
            Default: - none.
        source_object_key: The zip's key in that bucket. Default: - none.
        model_registry_environment: The environment whose model registry the model pipeline
            watches. Default: - the first environment.
        model_delivery: Create the model delivery pipeline. Default: - True.
        network: An existing VPC of the tooling account (``network`` object, as for an
            environment) in which every build step of the delivery pipelines runs. Required
            when a delivered environment runs in a VPC: its build steps then never run with a
            route of their own to the internet. The builds fetch the source and Python
            packages, so the VPC needs a route to them (a NAT gateway, a proxy, or a package
            mirror). Default: - builds run outside any VPC.
    """

    account: str
    region: str
    connection_arn: str | None = None
    repository: str | None = None
    branch: str = "main"
    source_bucket_name: str | None = None
    source_object_key: str | None = None
    model_registry_environment: str | None = None
    model_delivery: bool = True
    network: NetworkConfig | None = None

    def delivery_arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``ToolingStage`` / ``DeliveryStack`` other than account and region."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("account", "region")}


def _check_text_or_null(value: object) -> str | None:
    return (
        None if value is None or (isinstance(value, str) and value.strip()) else f"{value!r} is not a non-empty string"
    )


def _check_tooling_network(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return (
            f"{value!r} is not an existing VPC's ids; the tooling account's builds use a VPC you give {EXISTING_HINT}"
        )
    return _check_network(value)


_TOOLING_KEYS: dict[str, Callable[[object], str | None]] = {
    "account": _check_account,
    "region": _check_region,
    "connection_arn": _check_text_or_null,
    "repository": _check_text_or_null,
    "branch": _check_text_or_null,
    "source_bucket_name": _check_text_or_null,
    "source_object_key": _check_text_or_null,
    "model_registry_environment": _check_text_or_null,
    "model_delivery": _check_bool,
    "network": _check_tooling_network,
}


def load_tooling(context: object) -> ToolingConfig | None:
    """Validate the ``tooling`` context value; ``None`` (absent, or ``null``) means no delivery pipelines.

    ``cdk synth -c tooling=null`` leaves the pipelines out of one synth (the local deployment
    of Dev does that).

    Shapes and types are checked here; the delivery stack checks what depends on
    the environments (connection ARN format and region, approvals, stage order).

    Raises:
        ConfigurationError: listing every problem with its key path (``tooling.account``).
    """
    if context is None:
        return None
    if isinstance(context, str):
        try:
            context = json.loads(context)
        except json.JSONDecodeError as error:
            raise ConfigurationError(_SOURCE, f"{TOOLING_KEY}: not valid JSON ({error.msg})") from None
        if context is None:
            return None
    if not isinstance(context, Mapping):
        raise ConfigurationError(_SOURCE, f"{TOOLING_KEY}: {context!r} is not a map of settings")
    problems: list[str] = []
    for key, value in context.items():
        check = _TOOLING_KEYS.get(key)
        if check is None:
            problems.append(f"{TOOLING_KEY}.{key}: unknown key; accepted keys: {', '.join(sorted(_TOOLING_KEYS))}")
        elif problem := check(value):
            problems.append(f"{TOOLING_KEY}.{key}: {problem}")
    for required in ("account", "region"):
        if required not in context:
            problems.append(f"{TOOLING_KEY}.{required}: missing; the delivery pipelines live in one account and region")
    if problems:
        raise ConfigurationError(_SOURCE, problems)
    settings = {k: v for k, v in context.items() if v is not None}
    if "network" in settings:
        settings["network"] = to_network(settings["network"])
    return ToolingConfig(**settings)
