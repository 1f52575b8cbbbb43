"""SageMaker framework image URIs per region, without network access or the SageMaker SDK.

The facts come from ``image_uris.json`` next to this module, generated from the SageMaker
Python SDK's bundled config by ``scripts/generate_image_uris.py``. Standard library only.
The same file records where SageMaker Experiments is available (:func:`has_experiments`).

A concrete region gives a concrete URI::

    >>> image_uri("xgboost", "eu-west-1")
    '141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1'

An environment-agnostic stack does not know its region at synth time; it puts
:func:`registry_accounts` in a ``CfnMapping`` keyed by ``AWS::Region`` and joins the account
with ``AWS::Region``, ``AWS::URLSuffix`` and :func:`repository_path`::

    f"{account}.dkr.ecr.{Aws.REGION}.{Aws.URL_SUFFIX}/{repository_path('xgboost')}"
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

#: Frameworks this library uses: scikit-learn (processing), XGBoost (training, hosting) and
#: the Model Monitor analyzer (data-quality baselines and monitoring).
SKLEARN = "sklearn"
XGBOOST = "xgboost"
MODEL_MONITOR = "model-monitor"

_DATA_FILE = Path(__file__).with_name("image_uris.json")


class UnknownImageError(ValueError):
    """A framework, version or region for which no image is known; the message lists what is."""


@cache
def _data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_DATA_FILE.read_text())
    return data


def frameworks() -> tuple[str, ...]:
    """The frameworks known to this module."""
    return tuple(_data()["frameworks"])


def _framework(framework: str) -> dict[str, Any]:
    known: dict[str, Any] = _data()["frameworks"]
    if framework not in known:
        raise UnknownImageError(f"unknown framework {framework!r}; use one of: {', '.join(known)}")
    entry: dict[str, Any] = known[framework]
    return entry


def versions(framework: str) -> tuple[str, ...]:
    """The versions of ``framework`` this module can build URIs for."""
    return tuple(_framework(framework)["tags"])


def default_version(framework: str) -> str:
    """The version used when none is given (``1.2-1`` for sklearn, ``1.7-1`` for xgboost)."""
    version: str = _framework(framework)["default_version"]
    return version


def repository_path(framework: str, version: str | None = None) -> str:
    """The repository and tag, e.g. ``sagemaker-xgboost:1.7-1`` (no tag for the Model Monitor analyzer).

    Raises:
        UnknownImageError: for an unknown framework or version.
    """
    entry = _framework(framework)
    chosen = entry["default_version"] if version is None else version
    tags: dict[str, str] = entry["tags"]
    if chosen not in tags:
        listed = ", ".join(repr(v) for v in tags)
        raise UnknownImageError(f"unknown {framework} version {chosen!r}; use one of: {listed}")
    repository: str = entry["repository"]
    tag = tags[chosen]
    return f"{repository}:{tag}" if tag else repository


def registry_accounts(framework: str) -> dict[str, str]:
    """Region -> the AWS account that hosts ``framework``'s ECR repository (a copy)."""
    return dict(_framework(framework)["registries"])


def url_suffix(region: str) -> str:
    """The DNS suffix of ``region``'s partition: ``amazonaws.com``, ``amazonaws.com.cn``, ...

    Raises:
        UnknownImageError: for a region no framework image is published in.
    """
    suffixes: dict[str, str] = _data()["dns_suffixes"]
    if region not in suffixes:
        raise UnknownImageError(f"unknown region {region!r}; use one of: {', '.join(sorted(suffixes))}")
    return suffixes[region]


def image_uri(framework: str, region: str, version: str | None = None) -> str:
    """The ECR image URI of ``framework`` in ``region``.

    Args:
        framework: ``sklearn``, ``xgboost``, ``model-monitor`` or ``clarify``.
        region: A concrete region name such as ``eu-west-1``; for an environment-agnostic
            stack use :func:`registry_accounts` in a ``CfnMapping`` instead.
        version: The framework version. Default: - :func:`default_version`.

    Raises:
        UnknownImageError: for an unknown framework or version, or a region where the
            framework's image is not published; the message lists the accepted values.
    """
    path = repository_path(framework, version)
    accounts = _framework(framework)["registries"]
    if region not in accounts:
        raise UnknownImageError(
            f"no {framework} image is published in region {region!r}; use one of: {', '.join(sorted(accounts))}"
        )
    return f"{accounts[region]}.dkr.ecr.{region}.{url_suffix(region)}/{path}"


def experiments_regions() -> frozenset[str]:
    """The regions where SageMaker Experiments is available.

    A copy of the SageMaker Python SDK's ``EUREKA_GA_REGIONS``
    (``sagemaker.mlops.workflow._utils``; the version is in ``image_uris.json``), which the SDK
    reads to decide whether a pipeline definition gets a ``PipelineExperimentConfig``. The SDK
    notes that Experiments is not expanding to new regions, so the list is static.
    """
    regions: list[str] = _data()["experiments"]["regions"]
    return frozenset(regions)


def has_experiments(region: str) -> bool:
    """Whether SageMaker Experiments is available in ``region`` (a concrete region name).

    Pipeline executions fail where it is not, if the definition has a ``PipelineExperimentConfig``.
    """
    return region in experiments_regions()
