"""Baselines: the S3 files a monitor compares captured traffic with, taken from a model package or given."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from aws_cdk import Token

from cdk_mlops.constructs.model_monitor.monitoring_type import MonitoringType
from cdk_mlops.errors import ConfigurationError

__all__ = ["Baselines"]

_S3_OBJECT_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+[^/]\Z")


@dataclass(frozen=True, kw_only=True)
class Baselines:
    """The baseline a monitor compares against: S3 object URIs of its JSON files.

    Use :meth:`from_model_package` with the ``DescribeModelPackage`` response
    of the package the endpoint serves, so the monitor checks exactly that
    model's baselines (the training pipeline registers them as the package's
    ``DriftCheckBaselines``); or :meth:`from_uris` / :meth:`from_prefix` for
    files you manage yourself.

    Attributes:
        constraints_uri: ``constraints.json`` (data/model quality, explainability)
            or the post-training bias constraints (bias).
        statistics_uri: ``statistics.json``; required for data quality (the
            per-feature drift metrics compare distributions with it).
        analysis_config_uri: The SageMaker Clarify analysis configuration JSON;
            required for bias and explainability.
        model_package_arn: The model package the baselines were taken from, if any;
            the construct rejects baselines of another package than the one the
            endpoint serves.
    """

    constraints_uri: str
    statistics_uri: str | None = None
    analysis_config_uri: str | None = None
    model_package_arn: str | None = None

    @classmethod
    def from_uris(
        cls, *, constraints: str, statistics: str | None = None, analysis_config: str | None = None
    ) -> Baselines:
        """Baselines at explicit ``s3://bucket/key`` URIs (strings or tokens)."""
        return cls(constraints_uri=constraints, statistics_uri=statistics, analysis_config_uri=analysis_config)

    @classmethod
    def from_prefix(cls, prefix_uri: str) -> Baselines:
        """``statistics.json`` and ``constraints.json`` under one S3 prefix (what a baselining job writes)."""
        base = prefix_uri if prefix_uri.endswith("/") else f"{prefix_uri}/"
        return cls(constraints_uri=f"{base}constraints.json", statistics_uri=f"{base}statistics.json")

    @classmethod
    def from_model_package(
        cls, description: Mapping[str, Any], monitoring_type: MonitoringType = MonitoringType.DATA_QUALITY
    ) -> Baselines:
        """The drift-check baselines a model package version carries, for one monitoring type.

        Pure: pass the ``DescribeModelPackage`` response that the deployment
        step fetched (the one for the ARN the endpoint serves); nothing is
        looked up at synth.

        ``DriftCheckBaselines`` keys read: ``ModelDataQuality.{Statistics,Constraints}``
        (data quality), ``ModelQuality.Constraints`` (model quality),
        ``Bias.{PostTrainingConstraints,ConfigFile}`` (bias) and
        ``Explainability.{Constraints,ConfigFile}`` (explainability).

        Raises:
            ConfigurationError: naming the package and the missing baseline.
        """
        arn = description.get("ModelPackageArn")
        arn = arn if isinstance(arn, str) and arn else None
        where = f"model package {arn}" if arn else "model package description"
        drift = description.get("DriftCheckBaselines") or {}
        key, constraints_key, statistics_key, config_key = _PACKAGE_BASELINES[monitoring_type]
        section = drift.get(key) if isinstance(drift, Mapping) else None
        if not isinstance(section, Mapping):
            raise ConfigurationError(
                where,
                f"has no DriftCheckBaselines.{key}, so it cannot baseline {monitoring_type.value} monitoring; "
                f"register the package with it, or pass Baselines.from_uris(...)",
            )

        def uri(name: str | None) -> str | None:
            if name is None:
                return None
            source = section.get(name)
            value = source.get("S3Uri") if isinstance(source, Mapping) else None
            return value if isinstance(value, str) and value else None

        missing = [n for n in (constraints_key, statistics_key, config_key) if n is not None and uri(n) is None]
        if missing:
            raise ConfigurationError(
                where,
                f"DriftCheckBaselines.{key} has no {' or '.join(f'{m}.S3Uri' for m in missing)}; "
                f"{monitoring_type.value} monitoring needs it",
            )
        constraints = uri(constraints_key)
        assert constraints is not None
        return cls(
            constraints_uri=constraints,
            statistics_uri=uri(statistics_key),
            analysis_config_uri=uri(config_key),
            model_package_arn=arn,
        )

    def problems(self, where: str, monitoring_type: MonitoringType) -> list[str]:
        """Every missing or malformed URI for ``monitoring_type``; tokens are not checked."""
        found = _object_uri_problems(f"{where}.constraints_uri", self.constraints_uri)
        if monitoring_type is MonitoringType.DATA_QUALITY:
            if self.statistics_uri is None:
                found.append(
                    f"{where}.statistics_uri is required for data quality (feature drift compares distributions "
                    "with statistics.json); use Baselines.from_prefix(...) or from_model_package(...)"
                )
            else:
                found += _object_uri_problems(f"{where}.statistics_uri", self.statistics_uri)
        clarify = monitoring_type in (MonitoringType.MODEL_BIAS, MonitoringType.MODEL_EXPLAINABILITY)
        if clarify:
            if self.analysis_config_uri is None:
                found.append(
                    f"{where}.analysis_config_uri is required for {monitoring_type.value}: the S3 URI of the "
                    "SageMaker Clarify analysis configuration JSON (Baselines.from_uris(..., analysis_config=...))"
                )
            else:
                found += _object_uri_problems(f"{where}.analysis_config_uri", self.analysis_config_uri)
        elif self.analysis_config_uri is not None:
            found.append(f"{where}.analysis_config_uri applies to bias and explainability only; remove it")
        return found

    def uris(self) -> list[str]:
        """Every S3 URI the monitoring job reads."""
        return [u for u in (self.constraints_uri, self.statistics_uri, self.analysis_config_uri) if u is not None]


# DriftCheckBaselines section, constraints, statistics and config file keys per monitoring type.
_PACKAGE_BASELINES: Final[dict[MonitoringType, tuple[str, str, str | None, str | None]]] = {
    MonitoringType.DATA_QUALITY: ("ModelDataQuality", "Constraints", "Statistics", None),
    MonitoringType.MODEL_QUALITY: ("ModelQuality", "Constraints", None, None),
    MonitoringType.MODEL_BIAS: ("Bias", "PostTrainingConstraints", None, "ConfigFile"),
    MonitoringType.MODEL_EXPLAINABILITY: ("Explainability", "Constraints", None, "ConfigFile"),
}


def _object_uri_problems(name: str, uri: str) -> list[str]:
    if Token.is_unresolved(uri) or _S3_OBJECT_URI.match(uri):
        return []
    return [f"{name} {uri!r} is not an S3 object URI; use s3://<bucket>/<key>.json"]
