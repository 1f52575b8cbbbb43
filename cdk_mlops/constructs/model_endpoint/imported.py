"""An endpoint this library did not create, behind the interface ``ModelMonitor`` takes (:class:`IModelEndpoint`)."""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

from aws_cdk import Stack, Token
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct, Node

from cdk_mlops.config import EndpointKind
from cdk_mlops.constructs.data_store_base import IDataStore, environment_problems
from cdk_mlops.constructs.model_endpoint.monitoring import _EndpointMonitoring
from cdk_mlops.constructs.props import checked_props, describe_protocol
from cdk_mlops.errors import ConfigurationError

__all__ = ["IModelEndpoint", "ImportedModelEndpoint"]

#: SageMaker's pattern for endpoint and variant names (an existing endpoint may use upper case).
_ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}\Z")


@runtime_checkable
class IModelEndpoint(Protocol):
    """What ``ModelMonitor`` needs of an endpoint: its name, where it captures, and its model when known.

    :class:`~cdk_mlops.constructs.model_endpoint.ModelEndpoint` implements it, and so does the
    endpoint ``ModelEndpoint.from_endpoint_name`` returns for an endpoint created elsewhere
    (whose ``model``, ``endpoint`` and ``dashboard`` are None).
    """

    @property
    def node(self) -> Node:
        """The construct node; its path names the endpoint in error messages."""
        ...

    @property
    def endpoint_name(self) -> str:
        """The endpoint's name."""
        ...

    @property
    def capture_uri(self) -> str | None:
        """Where the endpoint captures requests and responses, or None without capture."""
        ...

    @property
    def model(self) -> sagemaker.CfnModel | None:
        """The model it serves, when defined in this app (network settings and served package come from it)."""
        ...

    @property
    def endpoint(self) -> sagemaker.CfnEndpoint | None:
        """The ``AWS::SageMaker::Endpoint``, when defined in this app (monitoring schedules wait for it)."""
        ...

    @property
    def dashboard(self) -> cw.Dashboard | None:
        """The endpoint's dashboard, when it has one (monitoring widgets are added to it)."""
        ...


describe_protocol(
    IModelEndpoint,
    shown_as="ModelEndpoint",
    fix="an endpoint created elsewhere goes behind the endpoint's interface with "
    "ModelEndpoint.from_endpoint_name(scope, id, endpoint_name=..., data_store=...)",
)


class ImportedModelEndpoint(_EndpointMonitoring):
    """An existing endpoint, by name: metrics, ``grant_invoke`` and a ``ModelMonitor`` on its captured data.

    Made by ``ModelEndpoint.from_endpoint_name``. It defines no resource; ``model``,
    ``endpoint`` and ``dashboard`` are None. Synth cannot see the endpoint, so it cannot check
    that it exists, is realtime, or captures data where ``data_store`` says: a ``ModelMonitor``
    on it relies on capture into ``<capture_prefix><endpoint name>/`` of that store (where a
    ``ModelEndpoint`` writes it), and its jobs run outside any VPC.

    Attributes:
        endpoint_name: The endpoint's name.
        endpoint_arn: The endpoint's ARN in this stack's account and region.
        variant_name: The variant its metrics are read for.
        kind: REALTIME (only realtime endpoints capture data).
        capture_uri: ``s3://<bucket>/capture/<endpoint name>/`` of ``data_store``, or None.
        model: None.
        endpoint: None.
        dashboard: None.
    """

    @checked_props
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint_name: str,
        data_store: IDataStore | None = None,
        variant_name: str = "AllTraffic",
    ) -> None:
        """Import the endpoint; prefer ``ModelEndpoint.from_endpoint_name``, which documents every argument.

        Args:
            scope: The parent construct.
            id: The construct id.
            endpoint_name: The existing endpoint's name.
            data_store: The store it captures into. Default: - no capture known.
            variant_name: The production variant. Default: - ``AllTraffic``.

        Raises:
            ConfigurationError: listing every invalid argument.
        """
        super().__init__(scope, id)
        problems = [
            f"{argument} {value!r} is not a SageMaker name (1-63 letters, digits and hyphens); use the name, "
            "not the ARN"
            for argument, value in (("endpoint_name", endpoint_name), ("variant_name", variant_name))
            if not Token.is_unresolved(value) and not _ENDPOINT_NAME.match(value)
        ]
        if data_store is not None:
            problems += environment_problems(self, data_store, construct="imported endpoint")
        if problems:
            raise ConfigurationError(self, problems)
        self.endpoint_name = endpoint_name
        self.variant_name = variant_name
        self.kind = EndpointKind.REALTIME
        # SageMaker ARNs carry the lower-cased name.
        arn_name = endpoint_name if Token.is_unresolved(endpoint_name) else endpoint_name.lower()
        self.endpoint_arn = Stack.of(self).format_arn(service="sagemaker", resource="endpoint", resource_name=arn_name)
        self.capture_uri: str | None = (
            None if data_store is None else data_store.s3_uri(f"{data_store.capture_prefix}{endpoint_name}/")
        )
        self.model: sagemaker.CfnModel | None = None
        self.endpoint: sagemaker.CfnEndpoint | None = None
        self.dashboard: cw.Dashboard | None = None
        self.rollback_alarms = []
        self.latency_alarms = {}
        self.error_alarms = {}
        self._dimensions = {"EndpointName": endpoint_name, "VariantName": variant_name}
        self._alarm_topic = None

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let a principal call ``InvokeEndpoint`` on this endpoint only."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["sagemaker:InvokeEndpoint"], resource_arns=[self.endpoint_arn]
        )
