"""Monitoring a batch transform job's captured data: the source a monitor takes instead of an endpoint.

A batch transform job with ``DataCaptureConfig`` does not copy what it scored: it writes
manifests under ``<capture URI>input/`` and ``<capture URI>output/`` that list the transform's
input and output objects, each time it runs. A monitoring job on it
(``BatchTransformInput`` instead of ``EndpointInput``) reads those manifests, then the objects
they list, in the format given by ``DatasetFormat``.

- :class:`IBatchTransformCapture`: what ``ModelMonitor(batch_transform=...)`` needs of a batch
  inference construct of this app; any construct with these attributes fits.
- :class:`BatchTransformCapture`: the same description, for a batch job created elsewhere.
- :class:`CapturedDatasetFormat`: how the captured data is encoded.
- :class:`BatchSource`: what the monitor resolved from either of them, and its checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, runtime_checkable

from aws_cdk import Token
from aws_cdk import aws_ec2 as ec2
from constructs import Construct, Node

from cdk_mlops.constructs.common import SAGEMAKER_NAME
from cdk_mlops.constructs.data_store_base import IDataStore
from cdk_mlops.constructs.model_monitor.baselines import Baselines
from cdk_mlops.constructs.model_monitor.checks import offset_seconds
from cdk_mlops.constructs.model_monitor.job import JobSettings
from cdk_mlops.constructs.model_monitor.model_bias import ModelBiasSettings
from cdk_mlops.constructs.model_monitor.model_quality import ModelQualitySettings
from cdk_mlops.constructs.model_monitor.monitoring_type import MonitoringType
from cdk_mlops.constructs.props import describe_protocol

__all__ = [
    "BATCH_CAPTURE_PREFIX",
    "BatchSource",
    "BatchTransformCapture",
    "CapturedDatasetFormat",
    "IBatchTransformCapture",
    "batch_network",
]

#: Key prefix under which batch inference in this library captures: ``batch-capture/<batch name>/``.
BATCH_CAPTURE_PREFIX: Final = "batch-capture/"
#: ``BatchTransformInput.DataCapturedDestinationS3Uri`` is at most 512 characters (SageMaker API).
_CAPTURE_URI_MAX = 512
# s3://bucket/key-prefix/ where the bucket part may be a token.
_S3_PREFIX_URI = re.compile(r"^s3://([^/]+)/(.+/)\Z")


@runtime_checkable
class IBatchTransformCapture(Protocol):
    """What ``ModelMonitor(batch_transform=...)`` needs of a batch transform job that captures data.

    A batch inference construct of this app satisfies it structurally: it needs no base class,
    only these attributes. For a batch job created elsewhere, describe it with
    :meth:`BatchTransformCapture.from_capture_uri`.
    """

    @property
    def node(self) -> Node:
        """The construct node; its path names the batch job in error messages."""
        ...

    @property
    def batch_name(self) -> str:
        """The batch job's name: it names the monitor's schedules, alarms and report prefix."""
        ...

    @property
    def capture_uri(self) -> str | None:
        """The ``s3://`` prefix its data capture writes to, or None when it captures nothing."""
        ...

    @property
    def model_package_arn(self) -> str:
        """The model package version the batch job runs (baselines of another package are rejected)."""
        ...

    @property
    def data_store(self) -> IDataStore:
        """The store it captures into, which holds the monitor's reports and ground truth too."""
        ...


describe_protocol(
    IBatchTransformCapture,
    shown_as="a batch inference construct (IBatchTransformCapture)",
    fix="a batch job created elsewhere is described with "
    "BatchTransformCapture.from_capture_uri(batch_name=..., capture_uri=..., model_package_arn=...)",
)


@dataclass(frozen=True, kw_only=True)
class BatchTransformCapture:
    """A batch transform job created elsewhere, described by where it captures data.

    Build it with :meth:`from_capture_uri`. The monitor reads the capture from its own
    ``data_store``, so the capture URI must be a prefix of that store's bucket.

    Attributes:
        batch_name: Names the monitor's schedules, alarms and report prefix.
        capture_uri: The job's ``DataCaptureConfig.DestinationS3Uri``, ending in ``/``.
        model_package_arn: The package version the job runs. Default: - unknown; baselines
            are then not checked against it.
    """

    batch_name: str
    capture_uri: str | None
    model_package_arn: str | None = None

    @classmethod
    def from_capture_uri(
        cls, *, batch_name: str, capture_uri: str | None, model_package_arn: str | None = None
    ) -> BatchTransformCapture:
        """Describe a batch job by its name and data capture destination (strings or tokens).

        Args:
            batch_name: A SageMaker-style name (lower case here: it names monitoring
                schedules), e.g. ``churn-nightly``.
            capture_uri: ``s3://<data store bucket>/<prefix>/`` the transform job captures into,
                conventionally ``batch-capture/<batch_name>/``. None means the job captures
                nothing, which the monitor rejects.
            model_package_arn: The package version it runs. Default: - unknown.
        """
        return cls(batch_name=batch_name, capture_uri=capture_uri, model_package_arn=model_package_arn)


@dataclass(frozen=True)
class CapturedDatasetFormat:
    """How a batch transform job's captured data is encoded (``BatchTransformInput.DatasetFormat``).

    Capture lists the transform's own input and output objects, so the format is the
    transform's content type: ``text/csv`` input is CSV, and batch transform sends CSV
    records without a header (a header line would be scored as a record), so the default is
    :meth:`csv` without header.

    Example::

        CapturedDatasetFormat.csv()              # text/csv, no header (the default)
        CapturedDatasetFormat.json(line=True)    # application/jsonlines
        CapturedDatasetFormat.parquet()

    Attributes:
        kind: ``csv``, ``json`` or ``parquet``.
        flag: ``header`` for CSV, ``line`` for JSON; unused for Parquet.
    """

    kind: str
    flag: bool = False

    @classmethod
    def csv(cls, *, header: bool = False) -> CapturedDatasetFormat:
        """CSV records; ``header`` when the first line names the columns. Default: - no header."""
        return cls("csv", header)

    @classmethod
    def json(cls, *, line: bool = True) -> CapturedDatasetFormat:
        """JSON; ``line`` for one object per line (JSON Lines). Default: - JSON Lines."""
        return cls("json", line)

    @classmethod
    def parquet(cls) -> CapturedDatasetFormat:
        """Apache Parquet files."""
        return cls("parquet", True)

    def problems(self, where: str) -> list[str]:
        """Why this is not a format Model Monitor reads, with the fix."""
        if self.kind in ("csv", "json", "parquet") and isinstance(self.flag, bool):
            return []
        return [
            f"{where} {self!r} is not a dataset format; use CapturedDatasetFormat.csv(header=...), "
            ".json(line=...) or .parquet()"
        ]

    def to_cfn(self) -> dict[str, Any]:
        """The ``DatasetFormat`` property (the CloudFormation schema makes Parquet a boolean)."""
        if self.kind == "csv":
            return {"csv": {"header": self.flag}}
        if self.kind == "json":
            return {"json": {"line": self.flag}}
        return {"parquet": True}


@dataclass(frozen=True, kw_only=True)
class BatchSource:
    """The batch job a monitor watches, resolved from either description.

    Attributes:
        name: The batch job's name.
        capture_uri: Where it captures, or None.
        model_package_arn: The package it runs, when known.
        where: How error messages name it.
        data_store: The store of an ``IBatchTransformCapture``; None for a description.
    """

    name: str
    capture_uri: str | None
    model_package_arn: str | None
    where: str
    data_store: IDataStore | None

    @classmethod
    def of(cls, source: IBatchTransformCapture | BatchTransformCapture) -> BatchSource:
        """Resolve a construct or a description."""
        if isinstance(source, BatchTransformCapture):
            return cls(
                name=source.batch_name,
                capture_uri=source.capture_uri,
                model_package_arn=source.model_package_arn,
                where=f"batch job {source.batch_name!r}",
                data_store=None,
            )
        return cls(
            name=source.batch_name,
            capture_uri=source.capture_uri,
            model_package_arn=source.model_package_arn,
            where=f"batch job {source.node.path}",
            data_store=source.data_store,
        )

    def capture_key_prefix(self) -> str:
        """The capture's key prefix in the data store (the URI's key, else ``batch-capture/<name>/``).

        A URI whose key is a deploy-time value cannot be split at synth: the conventional
        prefix of the library's batch inference is granted then.
        """
        match = _S3_PREFIX_URI.match(self.capture_uri or "")
        if match is not None and not Token.is_unresolved(match.group(2)):
            return match.group(2)
        return f"{BATCH_CAPTURE_PREFIX}{self.name}/"

    def problems(
        self,
        data_store: IDataStore,
        requested: Mapping[MonitoringType, JobSettings],
        dataset_format: CapturedDatasetFormat,
        batch_data_prefixes: Sequence[str] | None,
    ) -> list[str]:
        """Every reason this batch job cannot be monitored as configured, each with the fix."""
        found: list[str] = []
        if self.capture_uri is None:
            found.append(
                f"{self.where} captures no data, and Model Monitor analyses captured batch data; run the "
                "transform job with DataCaptureConfig (DestinationS3Uri s3://<store>/"
                f"{BATCH_CAPTURE_PREFIX}{self.name}/) and give that URI as capture_uri"
            )
        elif not Token.is_unresolved(self.capture_uri) and (
            not _S3_PREFIX_URI.match(self.capture_uri) or len(self.capture_uri) > _CAPTURE_URI_MAX
        ):
            found.append(
                f"{self.where}: capture_uri {self.capture_uri!r} must be an s3://<bucket>/<prefix>/ URI "
                f"ending in '/', at most {_CAPTURE_URI_MAX} characters"
            )
        if not Token.is_unresolved(self.name) and not SAGEMAKER_NAME.match(self.name):
            found.append(
                f"{self.where}: batch_name {self.name!r} names monitoring schedules, so it must be lower-case "
                "letters, digits and hyphens; pass name_prefix=... or a lower-case batch_name"
            )
        if self.data_store is not None and self.data_store is not data_store:
            found.append(
                f"{self.where} captures into {self.data_store.node.path}, but the monitor's data_store is "
                f"{data_store.node.path}; pass data_store=<the batch job's data_store>"
            )
        found += dataset_format.problems("dataset_format")
        if batch_data_prefixes is None:
            found.append(
                "batch_data_prefixes is required with batch_transform: captured batch data is manifests that "
                "list the transform's input and output objects, which the monitoring jobs read; give their "
                "key prefixes in the data store, e.g. ['datasets/churn/', 'batch-output/churn-nightly/']"
            )
        else:
            found += [
                f"batch_data_prefixes: {prefix!r} must be a key prefix of the data store ending in '/', not "
                "'/' or a wildcard"
                for prefix in batch_data_prefixes
                if not Token.is_unresolved(prefix)
                and (not prefix.endswith("/") or prefix.startswith("/") or "*" in prefix or prefix == "/")
            ]
        for monitoring_type, settings in requested.items():
            found += self._stale_baseline_problems(monitoring_type, settings.baselines)
            if isinstance(settings, ModelQualitySettings | ModelBiasSettings):
                found += _window_problems(monitoring_type, settings)
        return found

    def _stale_baseline_problems(self, monitoring_type: MonitoringType, baselines: Baselines) -> list[str]:
        source, runs = baselines.model_package_arn, self.model_package_arn
        if source is None or runs is None or Token.is_unresolved(runs) or source.lower() == runs.lower():
            return []
        return [
            f"{monitoring_type.value} baselines come from {source}, but {self.where} runs {runs}; monitoring "
            "a model against another model's baselines reports stale drift. Take the baselines from the "
            "package the batch job runs (Baselines.from_model_package of its description)"
        ]


def _window_problems(monitoring_type: MonitoringType, settings: ModelQualitySettings | ModelBiasSettings) -> list[str]:
    """Model quality and bias on batch data need a window that contains one whole run and its labels.

    Without offsets each execution analyses the last schedule interval, in which a batch run's
    labels have usually not arrived; and a window shorter than the interval skips the runs
    that fall between two windows.
    """
    where = "model_quality" if monitoring_type is MonitoringType.MODEL_QUALITY else "model_bias"
    start, end = settings.start_time_offset, settings.end_time_offset
    if start is None and end is None:
        return [
            f"{where}: on batch data give start_time_offset and end_time_offset, the window of batch runs "
            "whose labels have arrived, e.g. '-P2D' and '-P1D' for a daily job whose labels take up to a day"
        ]
    interval = settings.schedule.interval
    if start is None or end is None or interval is None or Token.is_unresolved(start) or Token.is_unresolved(end):
        return []  # a missing half is reported by the settings' own checks
    low, high = offset_seconds(start), offset_seconds(end)
    if low is None or high is None or high - low >= interval.to_seconds():
        return []
    return [
        f"{where}: the window {start} to {end} ({(high - low) / 3600:g} h) is shorter than the schedule interval "
        f"({interval.to_human_string()}), so batch runs between two windows are never evaluated; widen it to "
        "at least one interval"
    ]


def batch_network(
    scope: Construct,
    *,
    vpc: ec2.IVpc | None,
    vpc_subnets: ec2.SubnetSelection | None,
    security_groups: Sequence[ec2.ISecurityGroup] | None,
    isolation: bool | None,
    egress_https: bool,
) -> tuple[Any, bool, list[ec2.ISecurityGroup]]:
    """``(VpcConfig or None, network isolation, security groups)`` of a batch monitor's jobs.

    A batch job has no endpoint model to take a network from: the jobs run in ``vpc`` when it
    is given (in ``vpc_subnets``, with ``security_groups`` or one new group without ingress),
    else outside any VPC. Either way they are network-isolated unless told otherwise.

    Args:
        scope: Holds a created security group.
        vpc: The VPC of the jobs. Default: - none.
        vpc_subnets: Their subnets in ``vpc``. Default: - ``vpc``'s private subnets.
        security_groups: Their groups. Default: - a new group without ingress.
        isolation: ``enable_network_isolation``. Default: - True.
        egress_https: A created group allows outbound HTTPS (Clarify calls the SageMaker API).
    """
    isolated = True if isolation is None else isolation
    if vpc is None:
        return None, isolated, []
    groups = list(security_groups) if security_groups is not None else []
    if security_groups is None:
        group = ec2.SecurityGroup(
            scope,
            "JobSecurityGroup",
            vpc=vpc,
            description=f"{scope.node.path} monitoring jobs (no ingress)",
            allow_all_outbound=False,
        )
        if egress_https:
            group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "Clarify calls the SageMaker API over HTTPS")
        groups = [group]
    subnets = vpc.select_subnets(**_selection(vpc_subnets)).subnet_ids
    vpc_config = {"securityGroupIds": [g.security_group_id for g in groups], "subnets": list(subnets)}
    return vpc_config, isolated, groups


def _selection(selection: ec2.SubnetSelection | None) -> dict[str, Any]:
    if selection is None:
        return {}
    fields = ("availability_zones", "one_per_az", "subnet_filters", "subnet_group_name", "subnet_type", "subnets")
    return {name: getattr(selection, name) for name in fields if getattr(selection, name) is not None}
