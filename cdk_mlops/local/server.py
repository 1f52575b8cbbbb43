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

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from cdk_mlops.local.endpoint import (
    DEFAULT_REGION,
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    LOCAL_HOST,
    LocalAws,
    NotLoopbackError,
    child_env,
    require_loopback,
)

__all__ = [
    "DEFAULT_REGION",
    "DUMMY_ACCESS_KEY_ID",
    "DUMMY_SECRET_ACCESS_KEY",
    "LOCAL_HOST",
    "LocalAws",
    "NotLoopbackError",
    "child_env",
    "local_aws",
    "require_loopback",
]


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
            starts (:func:`cdk_mlops.local.cfn_shim.install`), and EventBridge's delivery to
            state machines (:func:`cdk_mlops.local.event_targets.install`). Default: - True.

    Yields:
        A :class:`LocalAws`. On exit the server is shut down, its thread joined and moto's
        state (every backend of this process) reset.
    """
    from moto.server import ThreadedMotoServer

    if install_shim:
        from cdk_mlops.local import cfn_shim, event_targets

        cfn_shim.install()
        event_targets.install()
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
