"""What the delivery pipelines' build steps install: the very copy of cdk-mlops the app was synthesized with."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import aws_cdk as cdk
import pytest

from cdk_mlops._version import __version__
from cdk_mlops.constructs.delivery import PipelineSource, PlatformDeliveryPipeline, install
from cdk_mlops.constructs.delivery.install import (
    BOTO3_INSTALL,
    default_step_install_commands,
    library_requirement,
    requirement_from_direct_url,
)
from cdk_mlops.errors import ConfigurationError
from tests.conftest import REPO_ROOT

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("record", "requirement"),
    [
        (None, "cdk-mlops==1.2.3"),  # an index: no direct_url.json
        (
            {"url": "https://git.example.com/org/cdk-mlops.git", "vcs_info": {"vcs": "git", "commit_id": SHA}},
            f"cdk-mlops @ git+https://git.example.com/org/cdk-mlops.git@{SHA}",
        ),
        (
            {"url": "https://files.example.com/cdk_mlops-1.2.3-py3-none-any.whl", "archive_info": {}},
            "cdk-mlops @ https://files.example.com/cdk_mlops-1.2.3-py3-none-any.whl",
        ),
        ({"url": "file:///home/me/dist/cdk_mlops-1.2.3-py3-none-any.whl", "archive_info": {}}, None),
        ({"url": "file:///home/me/cdk-mlops", "dir_info": {"editable": True}}, None),
        ({"url": "https://git.example.com/x.git", "vcs_info": {"vcs": "git"}}, None),  # no commit: not pinned
    ],
)
def test_the_requirement_reinstalls_what_the_installation_record_names(record, requirement):
    assert requirement_from_direct_url(record, version="1.2.3") == requirement


def test_this_checkout_is_an_editable_install_so_there_is_no_requirement():
    # The record pip wrote for `pip install -e .` (PEP 610), read as the pipelines read it.
    (record,) = [
        json.loads(t) for d in metadata.distributions(name="cdk-mlops") if (t := d.read_text("direct_url.json"))
    ]
    assert record["dir_info"] == {"editable": True}
    assert library_requirement() is None


def test_a_requirement_is_installed_without_dependencies_unless_the_checkout_has_the_library(monkeypatch):
    monkeypatch.setattr(install, "library_requirement", lambda: f"cdk-mlops @ git+https://h/o/r.git@{SHA}")
    assert default_step_install_commands(Path("/nowhere")) == (
        BOTO3_INSTALL,
        "test -d cdk_mlops || python3 -m pip install --quiet --disable-pip-version-check --no-deps "
        f"'cdk-mlops @ git+https://h/o/r.git@{SHA}'",
    )


def test_a_local_copy_runs_from_a_checkout_that_holds_it_and_has_no_default_elsewhere(monkeypatch, tmp_path):
    monkeypatch.setattr(install, "library_requirement", lambda: None)
    commands = default_step_install_commands(REPO_ROOT)
    assert isinstance(commands, tuple)
    assert commands[0] == BOTO3_INSTALL
    assert commands[1].startswith("test -d cdk_mlops || {")
    assert "exit 1" in commands[1]
    problem = default_step_install_commands(tmp_path)
    assert isinstance(problem, str)
    assert problem.startswith("step_install_commands: none given")
    assert str(tmp_path) in problem


def _no_stage(scope: object, target: object) -> cdk.Stage:
    raise AssertionError("no stage is built when the arguments are invalid")


def _pipeline(**kwargs: object) -> PlatformDeliveryPipeline:
    stack = cdk.Stack(cdk.App(), "Delivery", env=cdk.Environment(account="444444444444", region="eu-west-1"))
    return PlatformDeliveryPipeline(
        stack,
        "Platform",
        source=PipelineSource.connection(
            "arn:aws:codeconnections:eu-west-1:444444444444:connection/abc", repository="a/b"
        ),
        targets=[],
        stage_factory=_no_stage,
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_pipeline_without_a_reachable_copy_fails_synth_and_asks_for_the_commands(monkeypatch, tmp_path):
    monkeypatch.setattr(install, "library_requirement", lambda: None)
    monkeypatch.chdir(tmp_path)  # an app whose checkout does not contain the library
    with pytest.raises(ConfigurationError) as raised:
        _pipeline()
    assert any(p.startswith("step_install_commands: none given") for p in raised.value.problems)
    with pytest.raises(ConfigurationError) as raised:
        _pipeline(step_install_commands=["python3 -m pip install -r requirements.txt", " "])
    assert any("is not a list of non-empty shell commands" in p for p in raised.value.problems)
    assert not any(p.startswith("step_install_commands: none given") for p in raised.value.problems)


class _Record:
    def __init__(self, direct_url: str | None) -> None:
        self.direct_url = direct_url

    def read_text(self, name: str) -> str | None:
        return self.direct_url if name == "direct_url.json" else None


@pytest.mark.parametrize(
    ("where", "records", "requirement"),
    [
        # Installed from an index: a record without direct_url.json, the package in site-packages.
        ("/v/lib/python3.12/site-packages", [None], f"cdk-mlops=={__version__}"),
        # A source tree's egg-info alone (never installed): nothing the builds can reach.
        ("/home/me/cdk-mlops", [None], None),
        # The egg-info first on sys.path, the editable install's record after it.
        ("/home/me/cdk-mlops", [None, '{"url": "file:///home/me/cdk-mlops", "dir_info": {"editable": true}}'], None),
        ("/v/lib/python3.12/site-packages", [], None),
    ],
)
def test_only_a_package_installed_in_site_packages_without_a_record_came_from_an_index(
    monkeypatch, where, records, requirement
):
    monkeypatch.setattr(install, "__file__", f"{where}/cdk_mlops/constructs/delivery/install.py")
    monkeypatch.setattr(metadata, "distributions", lambda name: [_Record(r) for r in records])
    assert library_requirement() == requirement
