"""The embedded local AWS: a moto server in this process, bound to 127.0.0.1 only.

Usage::

    with local_aws() as aws:
        aws.client("s3").list_buckets()
        subprocess.run(["npx", "cdk", "deploy", ...], env=aws.child_env())

The server binds the loopback interface on a free port and answers every AWS
service moto implements. :func:`local_aws` installs the CloudFormation shim
(:mod:`cdk_mlops.local.cfn_shim`) first, so templates the CDK synthesizes deploy
with the real CLI. Nothing is sent beyond loopback: every endpoint this module
hands out passes :func:`require_loopback`, and the environment for child
processes carries dummy credentials, no profile and no instance metadata lookups.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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


def _quiet_server_logs() -> None:
    # One line per request (werkzeug) and moto's "not supported" warnings would drown the CLI output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


@contextmanager
def local_aws(*, port: int = 0, region: str = DEFAULT_REGION, install_shim: bool = True) -> Iterator[LocalAws]:
    """Run a moto server on 127.0.0.1 for the duration of the ``with`` block.

    Args:
        port: TCP port to bind. Default: - a free port chosen by the OS.
        region: Region of the clients and child environment. Default: - ``us-east-1``.
        install_shim: Register the CloudFormation types moto lacks before the server
            starts (:func:`cdk_mlops.local.cfn_shim.install`). Default: - True.

    Yields:
        A :class:`LocalAws`. On exit the server is shut down, its thread joined and moto's
        state (every backend of this process) reset.
    """
    from moto.server import ThreadedMotoServer

    if install_shim:
        from cdk_mlops.local import cfn_shim

        cfn_shim.install()
    _quiet_server_logs()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        host, bound_port = server.get_host_and_port()
        require_loopback(f"http://{host}:{bound_port}")
        endpoint = f"http://{LOCAL_HOST}:{bound_port}"
        yield LocalAws(endpoint_url=endpoint, region=region, env=child_env(endpoint, region=region))
    finally:
        server.stop()
        _reset_state()


def _reset_state() -> None:
    # moto keeps every backend in module globals; drop them so the next server starts empty.
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()
