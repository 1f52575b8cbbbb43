"""A pytest plugin: deploy your own CDK app to the embedded local AWS and drive its retrain trigger.

Enable it in one of two ways (it is not loaded unless asked for):

* on the command line: ``pytest -p cdk_mlops.testing``;
* or in the ``conftest.py`` at your project's root: ``pytest_plugins = ["cdk_mlops.testing"]``.

It needs the test extras: ``pip install 'cdk-mlops[testing]'`` (moto's server, boto3 and the
retrain handler's Powertools) and the CDK CLI (your project's ``node_modules``, see the README).

Configure it with ini options (``pytest.ini``, or ``[tool.pytest.ini_options]`` of
``pyproject.toml``), or override the :func:`mlops_app` fixture:

``cdk_mlops_app``
    Your CDK app: a directory holding a ``cdk.json`` (relative to the rootdir), or an app
    command such as ``python app.py`` (run in the rootdir). Default: - the rootdir.
``cdk_mlops_stage``
    Deploy this stage's stacks (its construct id). Default: - every stack of the app.
``cdk_mlops_stacks``
    CDK CLI stack patterns, one per line, instead of a stage. Default: - none.
``cdk_mlops_region``
    The local AWS's region. Default: - ``us-east-1``.
``cdk_mlops_pipeline``
    The pipeline whose retrain trigger :func:`mlops_retrain` drives. Default: - the first
    trigger found in the deployed stacks.

Fixtures (session-scoped unless said otherwise):

:func:`mlops_aws`
    The local AWS (:class:`~cdk_mlops.local.server.LocalAws`), a moto server on 127.0.0.1
    started once per session and stopped, its state dropped, at the end.
:func:`mlops_before_deploy`
    Runs before the deploy; does nothing. Override it to create what your app imports
    (an existing bucket, a key) in :func:`mlops_aws`; a mapping it returns is passed to
    the synth as CDK context (the key's ARN, say).
:func:`mlops_deployment`
    The app deployed once per session (:class:`LocalDeployment`: stacks, outputs, physical ids).
:func:`mlops_client`
    ``mlops_client("s3")``: a boto3 client bound to the local endpoint, with dummy credentials.
:func:`mlops_env` (per test)
    Points boto3's environment (``AWS_ENDPOINT_URL``, dummy credentials, region) at the local AWS
    for the test, for code under test that creates its own clients.
:func:`mlops_retrain` (per test)
    A :class:`RetrainDriver` for the deployed retrain trigger: put objects into its dataset,
    then :meth:`RetrainDriver.deliver_until_started` delivers the S3 events through the deployed
    EventBridge rule and SQS queue to the real handler, as ``make demo`` does.

The deployment lasts the whole session: what one test writes, the next one sees.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from cdk_mlops import datasets
from cdk_mlops.local.apps import LocalApp, deploy_app, stack_outputs
from cdk_mlops.local.deploy import LocalDeployError, StackTemplate
from cdk_mlops.local.loop_emulation import Delivery, Loop, LoopError, Platform, deliver, discover
from cdk_mlops.local.loop_steps import Started, deliver_until_started
from cdk_mlops.local.server import DEFAULT_REGION, LocalAws, NotLoopbackError, local_aws

__all__ = [
    "LocalDeployment",
    "RetrainDriver",
    "mlops_app",
    "mlops_aws",
    "mlops_before_deploy",
    "mlops_client",
    "mlops_deployment",
    "mlops_env",
    "mlops_retrain",
]

_INI_APP = "cdk_mlops_app"
_INI_STAGE = "cdk_mlops_stage"
_INI_STACKS = "cdk_mlops_stacks"
_INI_REGION = "cdk_mlops_region"
_INI_PIPELINE = "cdk_mlops_pipeline"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the plugin's ini options (see the module's documentation)."""
    parser.addini(_INI_APP, "CDK app to deploy locally: a directory with a cdk.json, or an app command", default="")
    parser.addini(_INI_STAGE, "stage of the app to deploy (default: every stack)", default="")
    parser.addini(_INI_STACKS, "CDK CLI stack patterns to deploy, one per line", type="linelist", default=[])
    parser.addini(_INI_REGION, f"region of the local AWS (default: {DEFAULT_REGION})", default=DEFAULT_REGION)
    parser.addini(_INI_PIPELINE, "pipeline whose retrain trigger mlops_retrain drives (default: the first)", default="")


@dataclass(frozen=True)
class LocalDeployment:
    """Your app as deployed to the local AWS.

    Attributes:
        aws: The local AWS it runs on.
        app: What was deployed.
        stacks: The deployed stacks (CloudFormation name and template), dependencies first.
        outputs: Stack name → its outputs (key → value).
        assembly: The cloud assembly that was deployed.
    """

    aws: LocalAws
    app: LocalApp
    stacks: tuple[StackTemplate, ...]
    outputs: Mapping[str, Mapping[str, Any]]
    assembly: Path

    @property
    def stack_names(self) -> tuple[str, ...]:
        """The deployed stacks' CloudFormation names."""
        return tuple(s.name for s in self.stacks)

    def output(self, key: str) -> Any:
        """The value of the stack output ``key`` (``CfnOutput``'s id), whichever stack has it.

        Raises:
            KeyError: naming the outputs the stacks have.
        """
        for values in self.outputs.values():
            if key in values:
                return values[key]
        have = sorted(k for values in self.outputs.values() for k in values)
        raise KeyError(f"no stack output {key!r}; the deployed stacks have {have or 'no outputs'}")

    def physical_ids(self, resource_type: str) -> list[str]:
        """Physical ids of the deployed resources of one type (``AWS::S3::Bucket``), in stack order."""
        cloudformation = self.aws.client("cloudformation")
        return [
            r["PhysicalResourceId"]
            for name in self.stack_names
            for r in cloudformation.describe_stack_resources(StackName=name)["StackResources"]
            if r.get("ResourceType") == resource_type and r.get("PhysicalResourceId")
        ]


class RetrainDriver:
    """Drives one deployed retrain trigger through the emulated event delivery.

    S3 (moto) publishes an ``Object Created`` event per object put; the deployed EventBridge
    rule routes it to the trigger's SQS queue; the driver, in the role of Lambda's event source
    mapping, hands the queue's messages to the real handler in-process, with a simulated clock
    for the quiet period and delayed checks. Nothing here decides what the handler decides.
    """

    def __init__(self, loop: Loop) -> None:
        """Wrap an open :class:`~cdk_mlops.local.loop_emulation.Loop` (the :func:`mlops_retrain` fixture opens one)."""
        self.loop = loop

    @property
    def platform(self) -> Platform:
        """The trigger as deployed: its function, settings (bucket, datasets, pipeline), queue mapping."""
        return self.loop.platform

    @property
    def bucket(self) -> str:
        """The data store bucket the trigger watches."""
        return self.platform.bucket

    @property
    def dataset(self) -> str:
        """The trigger's first dataset."""
        return self.platform.dataset

    @property
    def pipeline_name(self) -> str:
        """The pipeline the trigger starts."""
        return self.platform.pipeline_name

    def put_object(self, name: str, body: bytes | str, *, dataset: str | None = None) -> str:
        """Put an object under ``datasets/<dataset>/`` of the trigger's bucket; return its key.

        Args:
            name: The key below the dataset's prefix (``part-0001.csv``, ``_SUCCESS``).
            body: The object's content.
            dataset: Which dataset. Default: - the trigger's first dataset.

        Raises:
            ValueError: if ``dataset`` is not one the trigger watches.
        """
        chosen = dataset or self.dataset
        if chosen not in self.platform.settings.datasets:
            raise ValueError(
                f"dataset {chosen!r} is not watched by the trigger of {self.pipeline_name!r}; "
                f"it watches {list(self.platform.settings.datasets)}"
            )
        key = datasets.dataset_prefix(chosen) + name
        self.loop.client("s3").put_object(Bucket=self.bucket, Key=key, Body=body)
        return key

    def deliver(self) -> Delivery | None:
        """Hand the queue's visible messages to the handler once; ``None`` when nothing is visible."""
        return deliver(self.loop)

    def deliver_until_started(self) -> Started:
        """Deliver (advancing the simulated clock to each delayed check) until the handler starts an execution.

        The new execution is held at ``Executing``, as a real one would be for a while.

        Raises:
            LoopError: if the handler never starts one, or more than one started; the message
                lists the handler's decisions.
        """
        return deliver_until_started(self.loop)

    def executions(self) -> list[str]:
        """The pipeline's execution ARNs, oldest first."""
        return self.loop.executions()

    def parameters(self, execution_arn: str) -> dict[str, str]:
        """An execution's parameters (``InputManifestUri`` among them)."""
        return self.loop.parameters(execution_arn)

    def manifest(self, execution_arn: str) -> datasets.Manifest:
        """The dataset manifest an execution was started with, loaded and digest-checked."""
        return self.loop.manifest(execution_arn)


def _fail(error: Exception) -> NoReturn:
    pytest.fail(f"cdk_mlops.testing: {error}", pytrace=False)


@pytest.fixture(scope="session")
def mlops_app(pytestconfig: pytest.Config) -> LocalApp:
    """The app and stacks to deploy, from the ini options; override this fixture to set them in code.

    A relative ``cdk_mlops_app`` is resolved against pytest's rootdir.
    """
    app = str(pytestconfig.getini(_INI_APP)).strip() or "."
    stage = str(pytestconfig.getini(_INI_STAGE)).strip() or None
    stacks = tuple(str(p) for p in pytestconfig.getini(_INI_STACKS))
    try:
        target = LocalApp(app, stage=stage, stacks=stacks, cwd=pytestconfig.rootpath)
        target.validate()
    except LocalDeployError as error:
        _fail(error)
    return target


@pytest.fixture(scope="session")
def mlops_aws(pytestconfig: pytest.Config) -> Iterator[LocalAws]:
    """The local AWS for the session: a moto server bound to 127.0.0.1, in this process."""
    with local_aws(region=str(pytestconfig.getini(_INI_REGION)).strip() or DEFAULT_REGION) as aws:
        yield aws


@pytest.fixture(scope="session")
def mlops_before_deploy(mlops_aws: LocalAws) -> Mapping[str, str] | None:
    """Runs before :func:`mlops_deployment`; does nothing and returns ``None``.

    Override it to create what your app imports rather than creates. What it returns (a
    mapping, or ``None``) is passed to the synth as CDK context, over the ``cdk.json``'s: the
    way to hand the app identifiers known only once the resources exist, such as a key's ARN::

        @pytest.fixture(scope="session")
        def mlops_before_deploy(mlops_aws):
            mlops_aws.client("s3").create_bucket(Bucket="legacy-data")
            key = mlops_aws.client("kms").create_key()["KeyMetadata"]["Arn"]
            return {"legacy_key_arn": key}
    """
    return None


@pytest.fixture(scope="session")
def mlops_deployment(
    mlops_aws: LocalAws,
    mlops_app: LocalApp,
    mlops_before_deploy: Mapping[str, str] | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> LocalDeployment:
    """Your app, deployed once per session with the pinned CDK CLI (bootstrap, synth, deploy, checks).

    The test fails with the reason (a bad app, an unknown stage, a stack pinned to another
    account, a resource the local AWS cannot provision) instead of erroring deep inside.
    """
    assembly = tmp_path_factory.mktemp("cdk.out")
    target = dataclasses.replace(mlops_app, context={**mlops_app.context, **(mlops_before_deploy or {})})
    try:
        templates, _ = deploy_app(mlops_aws, target, output=assembly)
    except (LocalDeployError, NotLoopbackError) as error:
        _fail(error)
    return LocalDeployment(mlops_aws, target, tuple(templates), stack_outputs(mlops_aws, templates), assembly)


@pytest.fixture(scope="session")
def mlops_client(mlops_aws: LocalAws) -> Callable[..., Any]:
    """``mlops_client(service, **options)``: a boto3 client of the local AWS (one per service and options)."""
    clients: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}

    def client(service: str, **options: Any) -> Any:
        key = (service, tuple(sorted(options.items())))
        if key not in clients:
            clients[key] = mlops_aws.client(service, **options)
        return clients[key]

    return client


@pytest.fixture
def mlops_env(mlops_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> LocalAws:
    """For one test, boto3's environment points at the local AWS (and nothing else of yours leaks in)."""
    for name in [n for n in mlops_aws.env if n.startswith("AWS_")]:
        monkeypatch.setenv(name, mlops_aws.env[name])
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    return mlops_aws


@pytest.fixture
def mlops_retrain(
    mlops_deployment: LocalDeployment, pytestconfig: pytest.Config, tmp_path: Path
) -> Iterator[RetrainDriver]:
    """A :class:`RetrainDriver` for the deployed retrain trigger, for one test.

    While the test runs, moto's own pollers leave the trigger's queue alone (they would try to
    run the function in Docker); the driver delivers instead.
    """
    pipeline = str(pytestconfig.getini(_INI_PIPELINE)).strip() or None
    try:
        platform = discover(mlops_deployment.aws, stacks=mlops_deployment.stack_names, pipeline_name=pipeline)
    except LoopError as error:
        _fail(error)
    loop = Loop.open(mlops_deployment.aws, tmp_path, platform=platform, versions=())
    with contextlib.closing(loop), loop.backends.moto_pollers_suspended(platform.settings.queue_url):
        yield RetrainDriver(loop)
