"""How to reach the local AWS, and the rule that nothing goes beyond loopback.

:class:`LocalAws` (the endpoint, region and child-process environment of a running local AWS),
:func:`require_loopback` and :func:`child_env`. :mod:`cdk_mlops.local.server` runs the server
and re-exports these; the emulations the server loads (the Lambda runtime, custom resources)
import them from here.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

#: The account moto answers with unless MOTO_ACCOUNT_ID says otherwise; read it from STS instead.
DEFAULT_REGION = "us-east-1"
#: Dummy credentials: moto accepts any, and real AWS rejects these.
DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"
#: The host name handed to clients; moto resolves CloudFormation TemplateURLs by this name.
LOCAL_HOST = "localhost"

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class NotLoopbackError(ValueError):
    """An endpoint that would leave this machine was given to the local AWS tooling."""


def require_loopback(url: str) -> str:
    """Return ``url`` unchanged if its host is this machine's loopback interface, else raise.

    Accepted hosts: ``localhost`` (and ``*.localhost``), ``127.0.0.0/8`` and ``[::1]``.
    Everything else, including ``0.0.0.0`` (all interfaces), private addresses and
    any DNS name, is refused: the local AWS never binds or sends beyond loopback.

    Raises:
        NotLoopbackError: naming the URL, the host and what is accepted.
    """
    parts = urlsplit(url if "//" in url else f"//{url}")
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme not in ("", "http", "https"):
        raise NotLoopbackError(f"refusing endpoint {url!r}: scheme {parts.scheme!r} is not http or https")
    if _is_loopback_host(host):
        return url
    raise NotLoopbackError(
        f"refusing endpoint {url!r}: host {host or '(none)'!r} is not loopback; "
        "the local AWS only talks to localhost, 127.0.0.1 or [::1]"
    )


def _is_loopback_host(host: str) -> bool:
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def child_env(
    endpoint_url: str, *, region: str = DEFAULT_REGION, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment for a child process (the CDK CLI, boto3 scripts) that must talk to the local AWS only.

    Every inherited ``AWS_*`` variable is dropped (profiles, SSO, role ARNs, real keys),
    the shared config and credentials files are replaced by an empty file, instance
    metadata lookups are off, and the CDK CLI's version check, notices and telemetry
    stay off.

    Args:
        endpoint_url: The local endpoint; must be loopback.
        region: Default region of the child. Default: - ``us-east-1``.
        base: Environment to start from. Default: - this process's environment.
    """
    require_loopback(endpoint_url)
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=endpoint_url,
        AWS_ACCESS_KEY_ID=DUMMY_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=DUMMY_SECRET_ACCESS_KEY,
        AWS_DEFAULT_REGION=region,
        AWS_REGION=region,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        CDK_DISABLE_VERSION_CHECK="1",
        CDK_DISABLE_CLI_TELEMETRY="1",
        JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1",
    )
    return env


@dataclass(frozen=True)
class LocalAws:
    """A running local AWS: where it listens and how to reach it.

    Attributes:
        endpoint_url: ``http://localhost:PORT``; pass it as ``endpoint_url`` or ``AWS_ENDPOINT_URL``.
        region: The region clients default to.
        env: The environment for child processes (see :func:`child_env`).
    """

    endpoint_url: str
    region: str = DEFAULT_REGION
    env: dict[str, str] = field(default_factory=dict, repr=False)

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` pointed at the local endpoint, with dummy credentials."""
        import boto3

        options: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": DUMMY_ACCESS_KEY_ID,
            "aws_secret_access_key": DUMMY_SECRET_ACCESS_KEY,
        }
        options.update(kwargs)
        require_loopback(str(options["endpoint_url"]))
        return boto3.session.Session().client(service, **options)  # type: ignore[call-overload]

    def account_id(self) -> str:
        """The account the server answers for, as STS GetCallerIdentity reports it."""
        return str(self.client("sts").get_caller_identity()["Account"])
