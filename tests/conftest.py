"""Shared fixtures: the reference platform is synthesized once per test session.

The CDK and the library's stacks are imported where a synthesis needs them, not here: a run
of the tests that synthesize nothing (``make test-fast``) never pays for loading aws-cdk-lib.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import aws_cdk as cdk
    from aws_cdk import cx_api

    from cdk_mlops.config import EnvironmentConfig
    from cdk_mlops.stacks.stage import MlopsPlatformStage

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Region of the moto-backed tests.
TEST_REGION = "eu-west-1"
#: The delivery pipelines' stack in the reference app (with the example tooling settings).
TOOLING_STACK_PATH = "Tooling/Delivery"
EVENTS_DIR = Path(__file__).resolve().parent / "events"


def cdk_json_context() -> dict[str, Any]:
    """The context of the repository's cdk.json, with an example approved model per environment.

    The serving stack exists only once an environment has an approved model, so the
    suite gives each environment a placeholder package to check the whole platform.
    """
    from cdk_mlops.local.examples import with_example_models, with_example_tooling

    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return with_example_tooling(with_example_models(context))


def load_event(name: str) -> dict[str, Any]:
    """A checked-in event fixture from tests/events/."""
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text())
    return event


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and a region; nothing from the developer's own AWS setup leaks in."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", TEST_REGION)


@dataclass(frozen=True)
class SynthesizedStack:
    """A stack of the reference platform with its synthesized template."""

    stage: str
    stack: cdk.Stack
    template: dict[str, Any]

    @property
    def path(self) -> str:
        return self.stack.node.path


@dataclass(frozen=True)
class Platform:
    """The reference platform as `cdk synth` builds it from cdk.json."""

    app: cdk.App
    configs: list[EnvironmentConfig]
    stages: dict[str, MlopsPlatformStage]
    assembly: cx_api.CloudAssembly
    stacks: list[SynthesizedStack]

    def stack(self, path: str) -> SynthesizedStack:
        """The stack at a construct path such as ``Dev/Data``."""
        for s in self.stacks:
            if s.path == path:
                return s
        raise KeyError(f"no stack {path}; have {[s.path for s in self.stacks]}")


def synthesize_platform(context: dict[str, Any]) -> Platform:
    """The reference app built and synthesized from ``context`` as ``app.py`` does, offline.

    No AWS variables and no credentials file are visible while it runs. Synthesis fails
    (``RuntimeError`` naming each finding) on any unacknowledged cdk-nag or guardrail finding.
    """
    import aws_cdk as cdk

    from cdk_mlops.config import CONTEXT_KEY, TOOLING_KEY, load_environments, load_tooling
    from cdk_mlops.stacks.stage import build_platform

    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                mp.delenv(name)
        mp.setenv("AWS_CONFIG_FILE", os.devnull)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        app = cdk.App(context=context)
        configs = load_environments(context[CONTEXT_KEY])
        tooling = load_tooling(context.get(TOOLING_KEY))
        stages = {stage.stage_name: stage for stage in build_platform(app, configs, tooling=tooling)}
        assembly = app.synth()
    stacks: list[SynthesizedStack] = []
    # The environment stages and the tooling stage's own stacks (not the stages its pipeline nests).
    top_stages = [c for c in app.node.children if isinstance(c, cdk.Stage)]
    for stage in top_stages:
        stage_assembly = assembly.get_nested_assembly(stage.artifact_id)
        for child in stage.node.children:
            if isinstance(child, cdk.Stack):
                artifact = stage_assembly.get_stack_artifact(child.artifact_id)
                stacks.append(SynthesizedStack(stage.node.id, child, artifact.template))
    return Platform(app, configs, stages, assembly, stacks)


@cache
def reference_platform() -> Platform:
    """The reference platform of :func:`cdk_json_context`, synthesized once per process (xdist worker)."""
    return synthesize_platform(cdk_json_context())


@pytest.fixture(scope="session")
def platform() -> Platform:
    """Synthesize every environment once, offline: no AWS variables, no credentials file."""
    return reference_platform()


#: The account and region of :func:`private_prod`.
PRIVATE_PROD_ENV = {"account": "123456789012", "region": TEST_REGION}


@cache
def private_prod_platform() -> Platform:
    """A prod environment with the profile's defaults (a private network) and an approved model, synthesized once.

    Unlike the reference app's, its stacks have a concrete account and region, as a deployed
    prod has, so nothing about the network may be left to a synth-time lookup.
    """
    from cdk_mlops.config import CONTEXT_KEY, TOOLING_KEY
    from cdk_mlops.local.examples import with_example_models

    context = cdk_json_context()  # the feature flags of cdk.json, without its environments and tooling
    context[CONTEXT_KEY] = with_example_models({CONTEXT_KEY: {"prod": dict(PRIVATE_PROD_ENV)}})[CONTEXT_KEY]
    context[TOOLING_KEY] = None
    return synthesize_platform(context)


@pytest.fixture(scope="session")
def private_prod() -> Platform:
    """Prod with defaults (isolated VPC, realtime endpoint, monitor), in a concrete account and region."""
    return private_prod_platform()


@pytest.fixture(scope="session")
def sdk_config_schema_checked_once() -> Iterator[None]:
    """The SDK's config validation, with its constant schema checked against the metaschema once.

    The SDK validates its config on every config lookup with ``jsonschema.validate``, which
    first checks the schema itself (about half a second, dozens of times per definition).
    Every config is still validated, with the error ``jsonschema.validate`` would raise.
    """
    from jsonschema import exceptions  # type: ignore[import-untyped]
    from jsonschema.validators import validator_for  # type: ignore[import-untyped]
    from sagemaker.core.config import config_manager  # type: ignore[import-untyped]

    schema = config_manager.SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)

    def validate(sagemaker_config: dict[str, Any] | None = None) -> None:
        error = exceptions.best_match(validator.iter_errors(sagemaker_config))
        if error is not None:
            raise error

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(config_manager.SageMakerConfig, "validate_sagemaker_config", staticmethod(validate))
        yield


@pytest.fixture
def india_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A local time zone that is not UTC, so that anything relying on the machine's zone shows."""
    import time

    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def pytest_configure(config: pytest.Config) -> None:
    _share_botocore_data()


def _share_botocore_data() -> None:
    """One botocore data loader per test process, shared by every boto3 session.

    ``moto.mock_aws`` gives each test a fresh default session, and a fresh session parses the
    service models, endpoint rules and partitions from JSON again: 0.25 to 0.46 s for the four
    clients of a retrain-handler test, before the handler makes its own. The loader only reads
    botocore's own data files and caches what it parsed, so sharing it changes what no client
    does, only what it costs. A session that sets its own ``data_path`` still gets a loader of
    its own (the cache is keyed by it).
    """
    from functools import cache as shared

    import botocore.session

    if not hasattr(botocore.session.create_loader, "cache_info"):
        botocore.session.create_loader = shared(botocore.session.create_loader)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Tests that take `platform_stack_path` run once per stack of the platform.
    if "platform_stack_path" in metafunc.fixturenames:
        from cdk_mlops.config import CONTEXT_KEY, load_environments
        from cdk_mlops.stacks.stage import MlopsPlatformStage

        context = cdk_json_context()
        paths = [
            f"{config.stage_name}/{stack}"
            for config in load_environments(context[CONTEXT_KEY])
            for stack in MlopsPlatformStage.stack_ids(config)
        ]
        metafunc.parametrize("platform_stack_path", [*paths, TOOLING_STACK_PATH])


#: Fixtures that synthesize an app; a test that takes one is marked ``synth``.
SYNTH_FIXTURES = frozenset({"platform", "private_prod", "platform_stack_path", "variant", "synthesized_variants"})
#: Test directories whose every test builds and synthesizes constructs.
SYNTH_DIRS = ("contracts", "examples", "unit/constructs", "unit/stacks")
#: Test directories whose every test runs against the embedded local AWS.
AWS_DIRS = ("unit/local", "unit/test_testing.py", "e2e/test_testing_plugin.py")


def _calls(function: Any, prefixes: tuple[str, ...], depth: int = 2) -> bool:
    """Whether ``function`` uses a global from ``prefixes``, directly or through the test helpers it calls."""
    code, namespace = getattr(function, "__code__", None), getattr(function, "__globals__", {})
    if code is None:
        return False
    names = set(code.co_names)
    for inner in code.co_consts:  # nested functions and comprehensions
        if hasattr(inner, "co_names"):
            names.update(inner.co_names)
    # Names imported inside the function resolve in the modules it imports.
    scopes = [namespace, *(vars(sys.modules[n]) for n in names if n.startswith("tests.") and n in sys.modules)]
    if any(name.startswith(prefixes) for name in names):  # a module imported inside the function
        return True
    for name in names:
        value = next((scope[name] for scope in scopes if name in scope), None)
        origin = str(getattr(value, "__module__", None) or getattr(value, "__name__", ""))
        if origin.startswith(prefixes):
            return True
        if depth and origin.startswith("tests.") and callable(value) and _calls(value, prefixes, depth - 1):
            return True
    return False


def _fixture_functions(item: pytest.Item) -> list[Any]:
    """The test function and every fixture function it uses."""
    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs.values() if info is not None else ()
    return [getattr(item, "function", None), *(d.func for defs in definitions for d in defs)]


def _synthesizes(item: pytest.Item) -> bool:
    path = Path(str(item.path)).relative_to(REPO_ROOT / "tests").as_posix()
    if path.startswith(SYNTH_DIRS) or SYNTH_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    # A test (or a fixture of it) that reaches aws-cdk-lib builds stacks.
    return any(_calls(function, ("aws_cdk",)) for function in _fixture_functions(item))


def _uses_aws(item: pytest.Item) -> bool:
    path = Path(str(item.path)).relative_to(REPO_ROOT / "tests").as_posix()
    return path.startswith(AWS_DIRS) or any(_calls(function, ("moto",)) for function in _fixture_functions(item))


#: Test modules that share one deployment of the Dev stage (tests/e2e/dev/conftest.py): one xdist scope.
DEV_STAGE_MODULES = (
    "tests/e2e/dev/test_batch_scoring.py",
    "tests/e2e/dev/test_catalogue.py",
    "tests/e2e/dev/test_closed_loop.py",
    "tests/e2e/dev/test_fleet_loop.py",
    "tests/e2e/dev/test_inventory_snapshot.py",
    "tests/e2e/dev/test_local_deploy.py",
)


#: Scopes that cost the most per test: deployments, whole-platform syntheses, and the testing
#: plugin's tests (each starts a team's own ``pytest`` in a process of its own).
COSTLY_SCOPES = ("tests/e2e", "tests/contracts", "tests/examples", "tests/unit/test_testing.py")
#: The scope of :data:`DEV_STAGE_MODULES`.
DEV_STAGE_SCOPE = "tests/e2e (the Dev deployment)"


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook; absent with -p no:xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadscope``, with the modules that share the Dev deployment in one scope, costliest first.

    A scope runs on one worker, so the Dev stage is deployed once per session, not once per
    worker that happens to run one of those modules.

    xdist hands out the scopes with the most tests first. The deployments have few tests each,
    so they came last, and a run could end with one worker deploying alone while the other
    idled. Scopes under :data:`COSTLY_SCOPES` now go first, and the run ends on short unit
    modules that even out the workers.
    """
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class SharedDeployments(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.split("::", 1)[0] in DEV_STAGE_MODULES:
                return DEV_STAGE_SCOPE
            return str(super()._split_scope(nodeid))

        def _assign_work_unit(self, node: Any) -> None:
            # The costliest scope left goes next: costly ones first, then by number of tests.
            def cost(scope: str) -> tuple[bool, int]:
                return scope.startswith(COSTLY_SCOPES), len(self.workqueue[scope])

            self.workqueue.move_to_end(max(self.workqueue, key=cost), last=False)
            super()._assign_work_unit(node)

    return SharedDeployments(config, log)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # With `-m "not synth ..."` the synthesizing directories are not even imported: importing
    # them loads aws-cdk-lib and every construct, which alone costs seconds per worker.
    # Likewise `-m "not aws ..."` skips the directories whose every test runs against the local AWS.
    markexpr = config.getoption("markexpr", "") or ""
    tests = REPO_ROOT / "tests"
    if collection_path.is_relative_to(tests):
        relative = collection_path.relative_to(tests).as_posix()
        if "not synth" in markexpr and (relative.startswith(SYNTH_DIRS) or relative.startswith("e2e")):
            return True
        if "not aws" in markexpr and relative.startswith(AWS_DIRS):
            return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # `synth` and `aws` are derived, never written by hand, so `make test-fast` cannot start
    # running syntheses or AWS emulation unnoticed as tests are added or changed.
    for item in items:
        if _synthesizes(item):
            item.add_marker(pytest.mark.synth)
        if _uses_aws(item):
            item.add_marker(pytest.mark.aws)
