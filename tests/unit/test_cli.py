"""The cdk-mlops command line against an in-process S3 (moto)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdk_mlops import cli
from tests.conftest import TEST_REGION

REGION = TEST_REGION
BUCKET = "ml-data-store"


@pytest.fixture
def s3(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        client: Any = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    """Run the CLI; returns the exit status, the parsed JSON output (or None) and stderr."""
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, json.loads(captured.out) if captured.out.strip() else None, captured.err


def test_snapshot_materialize_and_diff_from_the_command_line(
    s3: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # GIVEN a dataset snapshotted, changed and snapshotted again
    s3.put_object(Bucket=BUCKET, Key="datasets/churn/train.csv", Body=b"v1")
    status, first, _ = run(capsys, "--region", REGION, "dataset", "snapshot", "--bucket", BUCKET, "--dataset", "churn")
    assert status == 0
    s3.put_object(Bucket=BUCKET, Key="datasets/churn/train.csv", Body=b"v2 longer")
    s3.put_object(Bucket=BUCKET, Key="datasets/churn/new file.csv", Body=b"n")
    _, second, _ = run(capsys, "dataset", "snapshot", "--bucket", BUCKET, "--dataset", "churn")

    # WHEN the first manifest is materialized and the two are compared
    status, restored, _ = run(capsys, "dataset", "materialize", first["uri"], str(tmp_path / "v1"))
    _, changes, _ = run(capsys, "dataset", "diff", first["uri"], second["uri"])

    # THEN the outputs are JSON and the first version's bytes are restored
    assert status == 0
    assert first["uri"].startswith(f"s3://{BUCKET}/manifests/churn/")
    assert (first["bucket"], first["dataset"], first["objects"], first["total_bytes"]) == (BUCKET, "churn", 1, 2)
    assert first["fully_versioned"] is True
    assert restored["files"] == ["train.csv"]
    assert (tmp_path / "v1" / "train.csv").read_bytes() == b"v1"
    assert changes == {
        "a": first["uri"],
        "b": second["uri"],
        "identical": False,
        "added": ["new file.csv"],
        "removed": [],
        "changed": ["train.csv"],
    }


def test_errors_go_to_stderr_with_status_2_and_no_traceback(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # WHEN a manifest that does not exist is materialized
    status, out, err = run(capsys, "dataset", "materialize", f"s3://{BUCKET}/manifests/none.json", "out")

    # THEN one clear line goes to stderr
    assert status == 2
    assert out is None
    assert err.startswith(f"cdk-mlops: error: no manifest at s3://{BUCKET}/manifests/none.json")
    assert "Traceback" not in err


def test_aws_errors_are_reported_without_a_traceback(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # WHEN the bucket does not exist
    status, _, err = run(capsys, "dataset", "snapshot", "--bucket", "no-such-bucket-here", "--dataset", "churn")

    # THEN the S3 error is shown as one line
    assert status == 2
    assert "NoSuchBucket" in err
    assert "Traceback" not in err


def test_an_invalid_dataset_name_is_rejected_before_any_request(
    aws_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN / THEN
    status, _, err = run(capsys, "dataset", "snapshot", "--bucket", BUCKET, "--dataset", "a/b")
    assert status == 2
    assert "cdk-mlops: error: --dataset: dataset name 'a/b' contains '/'" in err


@pytest.mark.parametrize("url", ["ftp://127.0.0.1", "localhost:5000", "http://"])
def test_endpoint_url_must_be_an_http_url(capsys: pytest.CaptureFixture[str], url: str) -> None:
    # WHEN / THEN argparse rejects it with status 2
    status, _, err = run(capsys, "--endpoint-url", url, "dataset", "diff", "a.json", "b.json")
    assert status == 2
    assert "is not an http(s) URL" in err


def test_endpoint_url_and_region_reach_the_boto3_client(aws_env: None) -> None:
    # GIVEN the global options
    args = cli.build_parser().parse_args(
        ["--endpoint-url", "http://127.0.0.1:5123", "--region", "us-west-2", "dataset", "diff", "a", "b"]
    )

    # WHEN a client is made for a command
    client = cli.aws_client(args, "s3")

    # THEN it targets that endpoint and region (no request is sent)
    assert client.meta.endpoint_url == "http://127.0.0.1:5123"
    assert client.meta.region_name == "us-west-2"


@pytest.mark.parametrize(
    "argv",
    [
        ["dataset", "diff", "--endpoint-url", "http://127.0.0.1:5123", "--region", "us-west-2", "a", "b"],
        ["--region", "us-west-2", "dataset", "diff", "a", "b", "--endpoint-url", "http://127.0.0.1:5123"],
        [
            "--endpoint-url",
            "http://127.0.0.1:9",
            "--region",
            "eu-west-1",
            "dataset",
            "diff",
            "a",
            "b",
            "--endpoint-url",
            "http://127.0.0.1:5123",
            "--region",
            "us-west-2",
        ],
    ],
)
def test_the_aws_options_may_also_follow_the_command(aws_env: None, argv: list[str]) -> None:
    # The options after the command win; an option given only before the group is kept.
    args = cli.build_parser().parse_args(argv)
    client = cli.aws_client(args, "s3")
    assert (client.meta.endpoint_url, client.meta.region_name) == ("http://127.0.0.1:5123", "us-west-2")


def test_an_unreachable_endpoint_is_an_error_not_a_traceback(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a loopback port where nothing listens, and no retries
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

    # WHEN / THEN
    status, _, err = run(
        capsys, "--endpoint-url", "http://127.0.0.1:9", "dataset", "snapshot", "--bucket", BUCKET, "--dataset", "d"
    )
    assert status == 2
    assert err.startswith("cdk-mlops: error: Could not connect to the endpoint URL")


def test_diff_of_local_manifest_files_needs_no_aws(s3: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # GIVEN two manifests saved locally
    s3.put_object(Bucket=BUCKET, Key="datasets/churn/a.csv", Body=b"a")
    _, first, _ = run(capsys, "dataset", "snapshot", "--bucket", BUCKET, "--dataset", "churn")
    body = s3.get_object(Bucket=BUCKET, Key=first["uri"].removeprefix(f"s3://{BUCKET}/"))["Body"].read()
    (tmp_path / "a.json").write_bytes(body)
    (tmp_path / "b.json").write_bytes(body)

    # WHEN / THEN
    status, out, _ = run(capsys, "dataset", "diff", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert status == 0
    assert out["identical"] is True


@pytest.mark.parametrize(("argv", "status"), [(["--help"], 0), (["--version"], 0), ([], 2), (["dataset"], 2)])
def test_help_version_and_usage_errors_return_a_status(
    capsys: pytest.CaptureFixture[str], argv: list[str], status: int
) -> None:
    assert cli.main(argv) == status


def test_another_command_group_can_be_added(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a group registered the documented way
    def add_extra(groups: Any) -> None:
        group = groups.add_parser("extra", help="an extra group")
        commands = group.add_subparsers(dest="command", required=True)
        status = commands.add_parser("status")
        status.set_defaults(handler=lambda args: {"group": args.group, "endpoint": args.endpoint_url})

    # WHEN the parser is built with it
    parser = cli.build_parser([*cli.COMMAND_GROUPS, add_extra])
    args = parser.parse_args(["--endpoint-url", "http://127.0.0.1:4566", "extra", "status"])

    # THEN its handler gets the global options too
    assert isinstance(args, argparse.Namespace)
    assert args.handler(args) == {"group": "extra", "endpoint": "http://127.0.0.1:4566"}


def test_endpoint_url_sends_requests_to_a_loopback_moto_server(
    aws_env: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # GIVEN a moto server on 127.0.0.1 (a free port) holding a dataset
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client: Any = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
        client.create_bucket(Bucket="cli-http", CreateBucketConfiguration={"LocationConstraint": REGION})
        client.put_bucket_versioning(Bucket="cli-http", VersioningConfiguration={"Status": "Enabled"})
        client.put_object(Bucket="cli-http", Key="datasets/d/x.csv", Body=b"over http")

        # WHEN the CLI is pointed at it
        status, out, err = run(
            capsys, "--endpoint-url", endpoint, "dataset", "snapshot", "--bucket", "cli-http", "--dataset", "d"
        )
        _, restored, _ = run(capsys, "--endpoint-url", endpoint, "dataset", "materialize", out["uri"], str(tmp_path))
    finally:
        server.stop()

    # THEN the snapshot and the restore went through that endpoint
    assert (status, err) == (0, "")
    assert restored["files"] == ["x.csv"]
    assert (tmp_path / "x.csv").read_bytes() == b"over http"


def test_local_group_hands_its_arguments_to_the_local_aws_tool(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["local", "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for command in ("up", "down", "status", "deploy", "demo", "destroy"):
        assert command in out
