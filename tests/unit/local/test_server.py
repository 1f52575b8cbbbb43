"""The embedded local AWS server: loopback only, usable by clients and child processes, gone on exit."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from urllib.parse import urlsplit

import pytest

from cdk_mlops.local import cfn_shim
from cdk_mlops.local.server import NotLoopbackError, child_env, local_aws, require_loopback


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:5000",
        "http://LOCALHOST:5000/",
        "https://127.0.0.1:4566",
        "http://127.0.0.2:80",
        "http://[::1]:5000",
        "localhost:5000",
        "http://s3.localhost:5000",
    ],
)
def test_loopback_endpoints_are_accepted(url):
    assert require_loopback(url) == url


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://10.0.0.1:5000", "10.0.0.1"),
        ("https://example.com", "example.com"),
        ("http://0.0.0.0:5000", "0.0.0.0"),
        ("http://[::]:5000", "::"),
        ("http://169.254.169.254/latest", "169.254.169.254"),
        ("http://localhost.example.com:5000", "localhost.example.com"),
        ("https://s3.us-east-1.amazonaws.com", "s3.us-east-1.amazonaws.com"),
    ],
)
def test_other_endpoints_are_refused_with_the_reason(url, host):
    with pytest.raises(NotLoopbackError) as error:
        require_loopback(url)
    assert str(error.value) == (
        f"refusing endpoint {url!r}: host {host!r} is not loopback; "
        "the local AWS only talks to localhost, 127.0.0.1 or [::1]"
    )


def test_non_http_schemes_are_refused():
    with pytest.raises(NotLoopbackError, match="scheme 'ftp' is not http or https"):
        require_loopback("ftp://localhost:21")


def test_child_env_keeps_no_real_aws_setting():
    base = {
        "PATH": "/bin",
        "AWS_PROFILE": "prod",
        "AWS_ACCESS_KEY_ID": "AKIAREAL",
        "AWS_SESSION_TOKEN": "token",
        "AWS_ROLE_ARN": "arn:aws:iam::1:role/x",
    }
    env = child_env("http://localhost:1234", base=base)
    assert env["PATH"] == "/bin"
    assert env["AWS_ENDPOINT_URL"] == "http://localhost:1234"
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    assert env["CDK_DISABLE_VERSION_CHECK"] == "1"
    assert "AWS_PROFILE" not in env
    assert "AWS_SESSION_TOKEN" not in env
    assert "AWS_ROLE_ARN" not in env


def test_child_env_refuses_a_remote_endpoint():
    with pytest.raises(NotLoopbackError):
        child_env("http://10.0.0.1:5000", base={})


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_local_aws_serves_on_loopback_and_stops_on_exit():
    threads_before = set(threading.enumerate())
    with local_aws() as aws:
        parts = urlsplit(aws.endpoint_url)
        assert parts.hostname == "localhost"
        assert parts.port is not None
        assert _port_open(parts.port)
        assert cfn_shim.is_installed()
        assert aws.account_id() == "123456789012"
        aws.client("s3").create_bucket(Bucket="from-boto3")
        # A child process reaches the same server through the environment alone.
        script = "import boto3; print([b['Name'] for b in boto3.client('s3').list_buckets()['Buckets']])"
        result = subprocess.run(
            [sys.executable, "-c", script], env=aws.env, capture_output=True, text=True, check=True, timeout=60
        )
        assert "from-boto3" in result.stdout
    assert not _port_open(parts.port)
    assert set(threading.enumerate()) <= threads_before
