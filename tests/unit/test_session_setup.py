"""The test session's own set-up (tests/conftest.py): what it shares between tests, and what not."""

from __future__ import annotations

from typing import cast

import boto3
import botocore.session
import pytest
from moto import mock_aws


def test_every_mocked_session_reuses_one_parsed_copy_of_botocores_data(aws_env: None) -> None:
    # GIVEN two tests' worth of moto worlds, each with the fresh default session moto gives it
    loaders = []
    for _ in range(2):
        with mock_aws():
            s3 = boto3.client("s3")
            s3.create_bucket(Bucket="session-setup", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
            # THEN each world is its own: the bucket of the first is gone in the second
            assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["session-setup"]
            session = boto3.DEFAULT_SESSION
            assert session is not None
            loaders.append(session._session.get_component("data_loader"))
    # AND both sessions read the service models through the same loader (parsed once per process)
    assert loaders[0] is loaders[1]


def test_a_session_with_its_own_data_path_gets_a_loader_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DATA_PATH", raising=False)
    default = botocore.session.Session().get_component("data_loader")
    monkeypatch.setenv("AWS_DATA_PATH", "/nonexistent/botocore-data")
    own = botocore.session.Session().get_component("data_loader")
    assert own is not default
    assert "/nonexistent/botocore-data" in own.search_paths


class _Config:
    """What xdist's scheduler reads of a pytest config: ``--dist`` and the worker specs."""

    def getvalue(self, name: str) -> object:
        return {"dist": "loadscope", "tx": ["2*popen"]}[name]


class _Worker:
    def __init__(self, collection: list[str]) -> None:
        self.collection = collection
        self.sent: list[str] = []

    def send_runtest_some(self, indexes: list[int]) -> None:
        self.sent += [self.collection[i] for i in indexes]


def test_workers_start_with_the_deployments_and_end_on_short_unit_modules() -> None:
    from tests.conftest import DEV_STAGE_MODULES, pytest_xdist_make_scheduler

    # GIVEN scopes as loadscope splits them: many quick unit tests, one slow e2e module and the Dev deployment
    collection = [
        *(f"tests/unit/test_many.py::test_{i}" for i in range(6)),
        "tests/unit/test_few.py::test_0",
        "tests/unit/test_few.py::test_1",
        "tests/e2e/test_private_deploy.py::test_0",
        f"{DEV_STAGE_MODULES[0]}::test_0",
        f"{DEV_STAGE_MODULES[1]}::test_0",
    ]
    scheduler = pytest_xdist_make_scheduler(cast(pytest.Config, _Config()), None)
    worker = _Worker(collection)
    scheduler.registered_collections[worker] = collection
    for nodeid in collection:
        scheduler.workqueue.setdefault(scheduler._split_scope(nodeid), {})[nodeid] = False

    # WHEN one worker takes the scopes one after the other
    order = []
    while scheduler.workqueue:
        scheduler._assign_work_unit(worker)
        order.append(worker.sent[-1].split("::")[0])

    # THEN the deployments go first (the Dev stage's modules as one scope), then by number of tests
    assert order == [
        DEV_STAGE_MODULES[1],
        "tests/e2e/test_private_deploy.py",
        "tests/unit/test_many.py",
        "tests/unit/test_few.py",
    ]
    assert worker.sent[:2] == [f"{DEV_STAGE_MODULES[0]}::test_0", f"{DEV_STAGE_MODULES[1]}::test_0"]
