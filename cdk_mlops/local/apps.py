"""Deploy any CDK app, or a stage or stacks of it, to the local AWS with the pinned CDK CLI.

:mod:`cdk_mlops.local.deploy` deploys the reference platform's stages; this module deploys a
team's own app. The app is either a directory holding a ``cdk.json`` or an app command (what
the CDK CLI's ``--app`` takes), and the stacks are chosen by a stage name or by CDK CLI stack
patterns (:class:`LocalApp`).

A deploy runs in four steps:

1. ``cdk synth`` into a cloud assembly, with ``CDK_DEFAULT_ACCOUNT`` and ``CDK_DEFAULT_REGION``
   set to the local AWS's account and region (the CLI sets them the same way from the
   credentials it is given, which are the local server's);
2. the selection is resolved in the assembly (:func:`select_stacks`), dependencies included,
   and every selected stack's environment is checked (:func:`check_environments`): a stack
   either leaves its account and region to the CLI (no ``env=``), or takes them from
   ``CDK_DEFAULT_ACCOUNT``/``CDK_DEFAULT_REGION``, or names the local account and region;
   a stack pinned to any other account or region is refused before anything is deployed;
3. ``cdk deploy`` of that assembly (no second synth);
4. every deployed stack is checked as the reference platform's are
   (:func:`cdk_mlops.local.deploy.check_stack`).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdk_mlops.local.deploy import (
    DEFAULT_CONCURRENCY,
    LocalDeployError,
    StackTemplate,
    Timings,
    bootstrap,
    check_stack,
    progress,
    run_cli,
    stack_states,
)
from cdk_mlops.local.server import LocalAws

#: The account value of a stack without ``env=`` (the CLI deploys it to its default account).
UNKNOWN_ACCOUNT = "unknown-account"
#: The region value of a stack without ``env=``.
UNKNOWN_REGION = "unknown-region"
#: What a stage must pass as ``env=`` to follow the local AWS (and, on AWS, the CLI's credentials).
FOLLOW_THE_CLI = (
    "env=cdk.Environment(account=os.environ['CDK_DEFAULT_ACCOUNT'], region=os.environ['CDK_DEFAULT_REGION'])"
)


@dataclass(frozen=True)
class LocalApp:
    """A CDK app and the stacks of it to deploy locally.

    Attributes:
        app: A directory holding a ``cdk.json`` (its ``"app"`` command is run there), or an app
            command such as ``"python app.py"`` (run in ``cwd``), as the CDK CLI's ``--app`` takes.
        stage: Deploy every stack of this stage (its construct id, e.g. ``"Team"``).
            Default: - every stack of the app, unless ``stacks`` names some.
        stacks: CDK CLI stack patterns (``"Team/Data"``, ``"Team/*"``); stacks they depend on
            are deployed too. Default: - the stage's stacks, or every stack of the app.
        cwd: Where a relative ``app`` is resolved and an app command runs.
            Default: - the current directory.
        context: CDK context values passed to the synth (``--context key=value``), over the
            ``cdk.json``'s. Default: - none.
    """

    app: str
    stage: str | None = None
    stacks: tuple[str, ...] = ()
    cwd: Path = field(default_factory=Path.cwd)
    context: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.stage is not None and self.stacks:
            raise LocalDeployError(
                f"give either a stage ({self.stage!r}) or stack patterns ({', '.join(self.stacks)}), not both; "
                f"the stage is the pattern '{self.stage}/*'"
            )
        if self.stage is not None and (not self.stage or "/" in self.stage or "*" in self.stage):
            raise LocalDeployError(
                f"stage {self.stage!r} is not a stage's construct id; pass the id (e.g. 'Team'), "
                "or stack patterns for anything finer"
            )

    @property
    def directory(self) -> Path:
        """Where the CLI runs: the app's directory, or ``cwd`` for an app command."""
        candidate = (self.cwd / self.app).resolve()
        return candidate if candidate.is_dir() else self.cwd.resolve()

    @property
    def command(self) -> str | None:
        """The app command to pass as ``--app``, or ``None`` when the directory's ``cdk.json`` names it."""
        return None if (self.cwd / self.app).is_dir() else self.app

    @property
    def patterns(self) -> tuple[str, ...]:
        """The CLI stack patterns this selection stands for."""
        if self.stacks:
            return self.stacks
        if self.stage is not None:
            return (f"{self.stage}/*",)
        return ("**",)

    def validate(self) -> None:
        """Check that the app exists: a directory with a ``cdk.json``, or a command whose program exists.

        Raises:
            LocalDeployError: naming the value given and what is accepted.
        """
        path = self.cwd / self.app
        if path.is_dir():
            if not (path / "cdk.json").is_file():
                raise LocalDeployError(
                    f"--app {self.app!r}: the directory {path.resolve()} holds no cdk.json; pass the directory "
                    "of your CDK app (where `cdk synth` works) or its command, e.g. --app 'python app.py'"
                )
            return
        words = shlex.split(self.app) if self.app.strip() else []
        if not words:
            raise LocalDeployError("--app is empty; pass the directory of your CDK app or its command")
        fix = "pass the directory holding your cdk.json, or the app's command such as 'python app.py'"
        where = f"relative to {self.cwd.resolve()}"
        program = words[0]
        if not (self.cwd / program).exists() and shutil.which(program) is None:
            raise LocalDeployError(
                f"--app {self.app!r}: {program!r} is neither a directory, a file ({where}) nor a command on PATH; {fix}"
            )
        # The script a command runs (python app.py, node app.js) must exist too, or the CLI fails obscurely.
        for word in words[1:]:
            if word.endswith((".py", ".js", ".ts")) and not (self.cwd / word).exists():
                raise LocalDeployError(f"--app {self.app!r}: {word!r} does not exist ({where}); {fix}")

    def describe(self) -> str:
        """``APP (PATTERNS)`` for progress lines and errors; a directory is shown resolved."""
        shown = str(self.directory) if self.command is None else self.app
        return f"{shown} ({' '.join(self.patterns)})"


@dataclass(frozen=True)
class AssemblyStack:
    """A stack of a synthesized cloud assembly.

    Attributes:
        artifact_id: Its id in the assembly's manifest.
        path: Its hierarchical id, which CLI stack patterns match (``Team/Churn``).
        stack: Its CloudFormation name and template.
        account: The account it is pinned to, or :data:`UNKNOWN_ACCOUNT`.
        region: The region it is pinned to, or :data:`UNKNOWN_REGION`.
        dependencies: Artifact ids of the stacks it depends on.
    """

    artifact_id: str
    path: str
    stack: StackTemplate
    account: str
    region: str
    dependencies: tuple[str, ...]


def assembly_stacks(assembly: Path, prefix: str = "") -> list[AssemblyStack]:
    """Every stack of a cloud assembly, nested stages' stacks included, in manifest order."""
    manifest = json.loads((assembly / "manifest.json").read_text())
    stacks: list[AssemblyStack] = []
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        properties = artifact.get("properties", {})
        if artifact.get("type") == "cdk:cloud-assembly":
            stage = properties.get("displayName") or artifact_id.removeprefix("assembly-")
            nested = assembly / properties["directoryName"]
            stacks += assembly_stacks(nested, prefix=f"{stage}/")
            continue
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        template = json.loads((assembly / properties["templateFile"]).read_text())
        name = properties.get("stackName") or artifact_id
        path = artifact.get("displayName") or f"{prefix}{artifact_id}"
        account, region = _environment(str(artifact.get("environment", "")))
        dependencies = tuple(d for d in artifact.get("dependencies", ()) if not d.endswith(".assets"))
        stacks.append(
            AssemblyStack(artifact_id, path, StackTemplate(name, path, template), account, region, dependencies)
        )
    return stacks


def _environment(value: str) -> tuple[str, str]:
    # "aws://ACCOUNT/REGION", with unknown-account / unknown-region for an environment-agnostic stack.
    match = re.fullmatch(r"aws://([^/]*)/(.*)", value)
    return (match.group(1), match.group(2)) if match else (UNKNOWN_ACCOUNT, UNKNOWN_REGION)


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A CLI stack pattern as a regular expression: ``*`` and ``?`` stay in one path segment, ``**`` spans them."""
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(parts))


def select_stacks(stacks: Sequence[AssemblyStack], target: LocalApp) -> list[AssemblyStack]:
    """The stacks ``target`` selects and every stack they depend on, in manifest (deployment) order.

    A pattern matches a stack's hierarchical id (``Team/Churn``) or, as the CLI allows, its
    CloudFormation name (``Team-Churn``).

    Raises:
        LocalDeployError: when a stage or pattern matches no stack; the message lists what the app has.
    """
    chosen: set[str] = set()
    for pattern in target.patterns:
        regex = pattern_regex(pattern)
        matched = {s.artifact_id for s in stacks if regex.fullmatch(s.path) or regex.fullmatch(s.stack.name)}
        if not matched:
            stages = sorted({s.path.split("/")[0] for s in stacks if "/" in s.path})
            what = f"stage {target.stage!r}" if target.stage is not None else f"stack pattern {pattern!r}"
            raise LocalDeployError(
                f"{what} matches no stack of the app {target.app!r}; its stages: {', '.join(stages) or '(none)'}; "
                f"its stacks: {', '.join(s.path for s in stacks) or '(none)'}"
            )
        chosen |= matched
    by_id = {s.artifact_id: s for s in stacks}
    pending = list(chosen)
    while pending:  # stacks the selection depends on deploy with it, as the CLI does
        for dependency in by_id[pending.pop()].dependencies:
            if dependency in by_id and dependency not in chosen:
                chosen.add(dependency)
                pending.append(dependency)
    return [s for s in stacks if s.artifact_id in chosen]


def environment_advice(account: str, region: str) -> str:
    """How to make a stage deploy to the local AWS (account ``account``, region ``region``)."""
    return (
        f"the local AWS is account {account}, region {region}. A stack without env= deploys there; "
        f"a stage that needs a concrete environment should take {FOLLOW_THE_CLI} "
        f"(the CDK CLI sets both: to {account}/{region} locally, to your credentials' account on AWS)"
    )


def check_environments(stacks: Sequence[AssemblyStack], *, account: str, region: str) -> None:
    """Refuse stacks pinned to an account or region other than the local AWS's.

    Raises:
        LocalDeployError: naming each pinned stack, its environment, and how to make it follow the local AWS.
    """
    wrong = [
        f"{s.path} is pinned to aws://{s.account}/{s.region}"
        for s in stacks
        if s.account not in (UNKNOWN_ACCOUNT, account) or s.region not in (UNKNOWN_REGION, region)
    ]
    if wrong:
        raise LocalDeployError(
            "cannot deploy to the local AWS: " + "; ".join(wrong) + f". {environment_advice(account, region)}. "
            "A stack in another region can also be deployed with --region REGION (the local AWS serves any region)."
        )


def synth(aws: LocalAws, target: LocalApp, *, output: Path) -> float:
    """``cdk synth`` of the app into ``output``, with the local account and region as the CLI's defaults."""
    args = ["synth", "--quiet", "--output", str(output), *(["--app", target.command] if target.command else [])]
    for key, value in target.context.items():
        args += ["--context", f"{key}={value}"]
    return run_cli(args, aws=aws, directory=target.directory, label=target.app)


def deploy_app(
    aws: LocalAws,
    target: LocalApp,
    *,
    output: Path | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> tuple[list[StackTemplate], Timings]:
    """Bootstrap (once), synthesize, check the environments, deploy the selection and check every stack.

    Args:
        aws: The local AWS.
        target: The app and its stacks to deploy.
        output: Where the cloud assembly goes. Default: - a temporary directory, removed afterwards.
        concurrency: How many stacks the CLI deploys at once. Default: - 4.

    Returns:
        The deployed stacks' templates (dependencies first) and the seconds of each step.

    Raises:
        LocalDeployError: a bad app, an unknown stage or pattern, a stack pinned elsewhere, a failed
            CLI step, or a deployed stack that does not match its template.
    """
    target.validate()
    timings = Timings()
    account = aws.account_id()
    progress("account", environment_advice(account, aws.region))
    timings.steps["bootstrap"] = bootstrap(aws, account=account, directory=target.directory)
    out = Path(tempfile.mkdtemp(prefix="cdk-local-")) if output is None else output
    try:
        timings.steps["synth"] = synth(aws, target, output=out)
        selected = select_stacks(assembly_stacks(out), target)
        check_environments(selected, account=account, region=aws.region)
        args = ["deploy", *(s.path for s in selected), "--app", str(out), "--require-approval", "never"]
        args += ["--concurrency", str(concurrency)]
        timings.steps["deploy"] = run_cli(args, aws=aws, directory=target.directory, label=target.describe())
    finally:
        if output is None:
            shutil.rmtree(out, ignore_errors=True)
    progress("deploy", f"{target.describe()}: {len(selected)} stacks in {timings.steps['deploy']:.1f} s")
    start = time.perf_counter()
    problems = [problem for s in selected for problem in check_stack(aws, s.stack)]
    timings.steps["check"] = time.perf_counter() - start
    if problems:
        raise LocalDeployError("the local deployment does not match the templates:\n  " + "\n  ".join(problems))
    progress("check", f"{len(selected)} stacks complete, every resource provisioned")
    return [s.stack for s in selected], timings


def destroy_app(aws: LocalAws, target: LocalApp, *, output: Path | None = None) -> float:
    """``cdk destroy`` of the selection (and its dependencies) and a check that none of its stacks is left.

    Args:
        aws: The local AWS.
        target: The app and its stacks, as deployed.
        output: The deploy's cloud assembly, reused when it holds one. Default: - a fresh synthesis
            in a temporary directory.
    """
    target.validate()
    out = Path(tempfile.mkdtemp(prefix="cdk-local-")) if output is None else output
    try:
        start = time.perf_counter()
        if not (out / "manifest.json").is_file():
            synth(aws, target, output=out)
        selected = select_stacks(assembly_stacks(out), target)
        args = ["destroy", *(s.path for s in selected), "--app", str(out), "--force"]
        run_cli(args, aws=aws, directory=target.directory, label=target.describe())
        seconds = time.perf_counter() - start
    finally:
        if output is None:
            shutil.rmtree(out, ignore_errors=True)
    names = {s.stack.name for s in selected}
    left = [s.name for s in stack_states(aws, prefix="") if s.name in names]
    if left:
        raise LocalDeployError(f"stacks left after destroy: {left}")
    progress("destroy", f"{target.describe()} in {seconds:.1f} s")
    return seconds


def stack_outputs(aws: LocalAws, stacks: Sequence[StackTemplate]) -> dict[str, Mapping[str, Any]]:
    """Stack name → its outputs (key → value), as the local CloudFormation reports them."""
    cloudformation = aws.client("cloudformation")
    result: dict[str, Mapping[str, Any]] = {}
    for stack in stacks:
        described = cloudformation.describe_stacks(StackName=stack.name)["Stacks"][0]
        result[stack.name] = {o["OutputKey"]: o.get("OutputValue") for o in described.get("Outputs", [])}
    return result
