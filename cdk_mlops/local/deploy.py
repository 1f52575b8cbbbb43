"""Deploy the reference platform's Dev stage with the pinned CDK CLI to the local AWS.

The CLI runs for real (``cdk bootstrap``, ``cdk deploy``, ``cdk destroy``) with the environment
of :func:`cdk_mlops.local.server.child_env`, so every request goes to the moto server on
loopback. The Dev environment of ``cdk.json`` is synthesized alone, pinned to the account
the server reports and its region (``-c environments=...``, without the delivery pipelines:
``-c tooling=null``), so the templates carry the same account and region the CLI deploys to.

moto applies a template without failing the stack when a type is unknown to it, so each
deployed stack is checked afterwards (:func:`check_stack`): status ``*_COMPLETE``, every
resource of the template provisioned, and no custom resource that deploys without effect.
``overrides`` change the deployed environment's settings (``{"network": "isolated"}``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdk_mlops.local.server import LocalAws

#: The stage (environment) the local AWS deploys: the cheap, disposable one.
STAGE = "Dev"
#: How many stacks the CLI deploys at once (it keeps dependency order).
DEFAULT_CONCURRENCY = 4
#: Lines of CLI output shown when a command fails.
TAIL_LINES = 40
_BOOTSTRAP_STACK = "CDKToolkit"


class LocalDeployError(RuntimeError):
    """A CLI step failed, or the deployed state does not match the templates."""


@dataclass(frozen=True)
class StackTemplate:
    """A stack of the synthesized stage: its CloudFormation name and template."""

    name: str
    display_name: str
    template: Mapping[str, Any]


@dataclass(frozen=True)
class StackState:
    """A deployed stack as the local CloudFormation reports it."""

    name: str
    status: str
    resources: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        """Number of resources in the stack."""
        return sum(self.resources.values())


@dataclass
class Timings:
    """Wall seconds of each step, in the order they ran."""

    steps: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        """Sum of all steps."""
        return sum(self.steps.values())


def app_dir() -> Path:
    """The CDK app to deploy: the current directory if it holds ``cdk.json``, else this repository."""
    cwd = Path.cwd()
    if (cwd / "cdk.json").is_file():
        return cwd
    return Path(__file__).resolve().parents[2]


def reference_stages(directory: Path) -> list[str]:
    """The stages the reference app at ``directory`` defines: one per environment of its ``cdk.json``.

    An environment ``dev`` is the stage ``Dev``, ``ml-sandbox`` is ``MlSandbox`` (as
    :attr:`cdk_mlops.config.EnvironmentConfig.stage_name` names them).
    """
    context = json.loads((directory / "cdk.json").read_text()).get("context", {})
    return ["".join(part.capitalize() for part in name.split("-")) for name in context.get("environments") or {}]


def cdk_command(directory: Path) -> list[str]:
    """The pinned CDK CLI for an app in ``directory``, never a global install.

    The nearest ``node_modules/.bin/cdk`` of ``directory`` or a parent (what ``npx cdk`` runs
    there), else this library's own pinned CLI when it runs from a checkout, else ``npx``.
    """
    here = directory.resolve()
    for folder in (here, *here.parents, Path(__file__).resolve().parents[2]):
        local_bin = folder / "node_modules" / ".bin" / "cdk"
        if local_bin.exists():
            return [str(local_bin)]
    return ["npx", "--no-install", "cdk"]


def local_context(
    directory: Path,
    account: str,
    region: str,
    stage_env: str = STAGE.lower(),
    overrides: Mapping[str, Any] | None = None,
) -> list[str]:
    """The CLI's ``--context`` arguments for a local deploy of one environment.

    ``environments`` holds only ``stage_env``, pinned to the local account; other keys of that
    environment in ``cdk.json`` (profile, retention, ...) are kept, and ``overrides`` replace
    keys (``{"network": "isolated"}`` deploys the environment in a private network).
    ``tooling=null`` leaves the delivery pipelines out: they live in a tooling account the
    local AWS does not have.
    """
    context = json.loads((directory / "cdk.json").read_text()).get("context", {})
    settings = dict(context.get("environments", {}).get(stage_env) or {})
    settings.update(overrides or {})
    settings.update(account=account, region=region)
    environments = json.dumps({stage_env: settings}, separators=(",", ":"))
    return ["--context", f"environments={environments}", "--context", "tooling=null"]


def _cli_env(aws: LocalAws) -> dict[str, str]:
    env = dict(aws.env)
    # The app's default environment is the local AWS's, never one left in the developer's shell.
    env.update(CDK_DEFAULT_ACCOUNT=aws.account_id(), CDK_DEFAULT_REGION=aws.region)
    # Node.js 24 and npm live next to this interpreter in the project's virtualenv.
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


def progress(step: str, detail: str) -> None:
    """One progress line on stdout."""
    print(f"[local-aws] {step:<10} {detail}", flush=True)


def run_cli(args: Sequence[str], *, aws: LocalAws, directory: Path, label: str, cwd: Path | None = None) -> float:
    """Run the CDK CLI of ``directory`` quietly (in ``cwd``, default ``directory``); return its wall time.

    On failure the tail of its output is in the raised :class:`LocalDeployError`.
    """
    start = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as output:
        result = subprocess.run(
            [*cdk_command(directory), *args, "--no-notices"],
            cwd=cwd or directory,
            env=_cli_env(aws),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
        )
        if result.returncode != 0:
            output.seek(0)
            tail = "\n".join(output.read().splitlines()[-TAIL_LINES:])
            raise LocalDeployError(
                f"`cdk {' '.join(args[:2])}` ({label}) failed with exit {result.returncode}:\n{tail}"
            )
    return time.perf_counter() - start


def is_bootstrapped(aws: LocalAws) -> bool:
    """Whether the CDK bootstrap stack exists on the local AWS."""
    stacks = aws.client("cloudformation").describe_stacks().get("Stacks", [])
    return any(s["StackName"] == _BOOTSTRAP_STACK for s in stacks)


def bootstrap(aws: LocalAws, *, account: str, directory: Path) -> float:
    """``cdk bootstrap aws://ACCOUNT/REGION``; skipped when the bootstrap stack already exists.

    The CLI runs outside the app directory: inside it, ``cdk bootstrap`` synthesizes the whole
    app first (seconds, and a broken app would block bootstrapping). A bootstrap qualifier set
    in ``cdk.json`` is passed on.
    """
    target = f"aws://{account}/{aws.region}"
    if is_bootstrapped(aws):
        progress("bootstrap", f"{target} already bootstrapped")
        return 0.0
    context = json.loads((directory / "cdk.json").read_text()).get("context", {})
    qualifier = context.get("@aws-cdk/core:bootstrapQualifier")
    args = ["bootstrap", target, *(["--qualifier", str(qualifier)] if qualifier else [])]
    with tempfile.TemporaryDirectory(prefix="cdk-bootstrap-") as neutral:
        seconds = run_cli(args, aws=aws, directory=directory, label=target, cwd=Path(neutral))
    progress("bootstrap", f"{target} in {seconds:.1f} s")
    return seconds


def stage_templates(assembly: Path, stage: str = STAGE) -> list[StackTemplate]:
    """The stacks of ``stage`` in a synthesized cloud assembly, in manifest (deployment) order."""
    manifest = json.loads((assembly / "manifest.json").read_text())
    for name, artifact in manifest.get("artifacts", {}).items():
        display_name = artifact.get("properties", {}).get("displayName") or name.removeprefix("assembly-")
        if artifact.get("type") == "cdk:cloud-assembly" and display_name == stage:
            nested = assembly / artifact["properties"]["directoryName"]
            stacks: list[StackTemplate] = []
            for stack in json.loads((nested / "manifest.json").read_text()).get("artifacts", {}).values():
                if stack.get("type") != "aws:cloudformation:stack":
                    continue
                properties = stack["properties"]
                template = json.loads((nested / properties["templateFile"]).read_text())
                stack_name = properties.get("stackName") or properties["templateFile"].removesuffix(".template.json")
                stacks.append(StackTemplate(stack_name, stack.get("displayName", stack_name), template))
            return stacks
    raise LocalDeployError(f"no stage {stage!r} in the cloud assembly {assembly}")


def deploy(
    aws: LocalAws,
    *,
    account: str,
    directory: Path,
    output: Path,
    stage: str = STAGE,
    concurrency: int = DEFAULT_CONCURRENCY,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[float, list[StackTemplate]]:
    """``cdk deploy 'STAGE/*'`` to the local AWS; return the wall time and the deployed stacks' templates.

    ``overrides`` replace settings of the environment (see :func:`local_context`).
    """
    args = [
        "deploy",
        f"{stage}/*",
        "--require-approval",
        "never",
        "--concurrency",
        str(concurrency),
        "--output",
        str(output),
        *local_context(directory, account, aws.region, stage.lower(), overrides),
    ]
    seconds = run_cli(args, aws=aws, directory=directory, label=f"{stage}/*")
    templates = stage_templates(output, stage)
    progress("deploy", f"{stage}/* ({len(templates)} stacks) in {seconds:.1f} s")
    return seconds, templates


def destroy(
    aws: LocalAws,
    *,
    account: str,
    directory: Path,
    output: Path,
    stage: str = STAGE,
    overrides: Mapping[str, Any] | None = None,
) -> float:
    """``cdk destroy 'STAGE/*' --force`` on the local AWS; return the wall time.

    A cloud assembly already in ``output`` (the deploy's) is reused instead of synthesizing again;
    otherwise the stage is synthesized with ``overrides`` (see :func:`local_context`).
    """
    args = ["destroy", f"{stage}/*", "--force"]
    if (output / "manifest.json").is_file():
        args += ["--app", str(output)]
    else:
        args += ["--output", str(output)]
        args += local_context(directory, account, aws.region, stage.lower(), overrides)
    seconds = run_cli(args, aws=aws, directory=directory, label=f"{stage}/*")
    progress("destroy", f"{stage}/* in {seconds:.1f} s")
    return seconds


def _expected_resources(template: Mapping[str, Any]) -> dict[str, str]:
    """Logical id → type of the resources a stack must have (conditional ones are skipped)."""
    return {
        logical_id: resource["Type"]
        for logical_id, resource in template.get("Resources", {}).items()
        if "Condition" not in resource and resource["Type"] != "AWS::CDK::Metadata"
    }


def _unemulated_custom_resources(template: Mapping[str, Any]) -> Counter[str]:
    """Custom resource types of a template that deploy locally without effect, by count."""
    from cdk_mlops.local.aws_sdk_call import PROVIDER_ID
    from cdk_mlops.local.cfn_shim import CUSTOM_RESOURCES

    def emulated(resource: Mapping[str, Any]) -> bool:
        token = resource.get("Properties", {}).get("ServiceToken")
        provider = token.get("Fn::GetAtt", [""])[0] if isinstance(token, Mapping) else str(token)
        return resource["Type"] in CUSTOM_RESOURCES or str(provider).startswith(PROVIDER_ID)

    return Counter(
        resource["Type"]
        for resource in template.get("Resources", {}).values()
        if (resource["Type"].startswith("Custom::") or resource["Type"] == "AWS::CloudFormation::CustomResource")
        and not emulated(resource)
    )


def check_stack(aws: LocalAws, stack: StackTemplate) -> list[str]:
    """Problems of one deployed stack, each with its reason.

    The stack is not ``*_COMPLETE``; a resource of the template was not provisioned (a type
    neither moto nor :mod:`cdk_mlops.local.cfn_shim` models); or a custom resource deployed
    without effect (its Lambda function does not run locally, so what it would do and the
    attributes it would return are missing).
    """
    cloudformation = aws.client("cloudformation")
    status = cloudformation.describe_stacks(StackName=stack.name)["Stacks"][0]["StackStatus"]
    problems = [] if status.endswith("_COMPLETE") and "ROLLBACK" not in status else [f"{stack.name}: status {status}"]
    try:
        deployed = cloudformation.describe_stack_resources(StackName=stack.name)["StackResources"]
    except Exception as error:  # moto answers 500 when a resource failed to create
        return [*problems, f"{stack.name}: cannot list its resources ({error})"]
    provisioned = {
        r["LogicalResourceId"] for r in deployed if r.get("LogicalResourceId") and r.get("PhysicalResourceId")
    }
    missing = Counter(
        t for logical_id, t in _expected_resources(stack.template).items() if logical_id not in provisioned
    )
    problems += [
        f"{stack.name}: {count} x {resource_type} not provisioned: neither moto's CloudFormation nor "
        "cdk_mlops.local.cfn_shim models this type (add a model to cfn_shim)"
        for resource_type, count in sorted(missing.items())
    ]
    problems += [
        f"{stack.name}: {count} x {resource_type} deployed without effect: its provider function does not run "
        "locally, so nothing it does happens and Fn::GetAtt on it is empty (emulate it in cdk_mlops.local.cfn_shim)"
        for resource_type, count in sorted(_unemulated_custom_resources(stack.template).items())
    ]
    return problems


def stack_states(aws: LocalAws, prefix: str = f"{STAGE}-") -> list[StackState]:
    """Deployed stacks whose name starts with ``prefix``, with their resources by type."""
    cloudformation = aws.client("cloudformation")
    states: list[StackState] = []
    for stack in cloudformation.describe_stacks().get("Stacks", []):
        if not stack["StackName"].startswith(prefix) or stack["StackStatus"] == "DELETE_COMPLETE":
            continue
        resources = cloudformation.describe_stack_resources(StackName=stack["StackName"])["StackResources"]
        types = Counter(r["ResourceType"] for r in resources if r.get("LogicalResourceId") and r.get("ResourceType"))
        states.append(StackState(stack["StackName"], stack["StackStatus"], types))
    return sorted(states, key=lambda s: s.name)


def render_states(states: Sequence[StackState]) -> str:
    """Plain-text report of deployed stacks and their resources by type."""
    total = sum(s.total for s in states)
    lines = [f"== {len(states)} stacks, {total} resources deployed"]
    for state in states:
        lines.append(f"   {state.name} {state.status} ({state.total} resources)")
        for resource_type, count in sorted(state.resources.items()):
            lines.append(f"      {count:4d}  {resource_type}")
    return "\n".join(lines)


def deploy_stage(
    aws: LocalAws,
    *,
    directory: Path | None = None,
    output: Path | None = None,
    stage: str = STAGE,
    concurrency: int = DEFAULT_CONCURRENCY,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[list[StackTemplate], Timings]:
    """Bootstrap (once), deploy ``stage`` and check every stack; raise :class:`LocalDeployError` on any problem.

    ``overrides`` replace settings of the stage's environment (see :func:`local_context`).
    """
    directory = directory or app_dir()
    timings = Timings()
    account = aws.account_id()
    timings.steps["bootstrap"] = bootstrap(aws, account=account, directory=directory)
    temporary = output is None
    out = Path(tempfile.mkdtemp(prefix="cdk-local-")) if output is None else output
    try:
        timings.steps["deploy"], templates = deploy(
            aws,
            account=account,
            directory=directory,
            output=out,
            stage=stage,
            concurrency=concurrency,
            overrides=overrides,
        )
    finally:
        if temporary:
            shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    problems = [problem for stack in templates for problem in check_stack(aws, stack)]
    timings.steps["check"] = time.perf_counter() - start
    if problems:
        raise LocalDeployError("the local deployment does not match the templates:\n  " + "\n  ".join(problems))
    progress("check", f"{len(templates)} stacks complete, every resource provisioned")
    return templates, timings


def destroy_stage(
    aws: LocalAws,
    *,
    directory: Path | None = None,
    output: Path | None = None,
    stage: str = STAGE,
    overrides: Mapping[str, Any] | None = None,
) -> float:
    """Destroy ``stage`` (deployed with ``overrides``) and check that none of its stacks is left."""
    directory = directory or app_dir()
    account = aws.account_id()
    out = Path(tempfile.mkdtemp(prefix="cdk-local-")) if output is None else output
    try:
        seconds = destroy(aws, account=account, directory=directory, output=out, stage=stage, overrides=overrides)
    finally:
        if output is None:
            shutil.rmtree(out, ignore_errors=True)
    left = [s.name for s in stack_states(aws, f"{stage}-")]
    if left:
        raise LocalDeployError(f"stacks left after destroy: {left}")
    return seconds
