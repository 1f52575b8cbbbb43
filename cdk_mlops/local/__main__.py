"""The embedded local AWS from the command line.

Usage::

    python -m cdk_mlops.local up [--port N]      # serve on 127.0.0.1 in the foreground; Ctrl-C stops
    python -m cdk_mlops.local down               # stop the server `up` started
    python -m cdk_mlops.local status             # stacks and resources on the running server
    python -m cdk_mlops.local deploy [--keep]    # own server: bootstrap, deploy Dev, summary, stop
    python -m cdk_mlops.local deploy --endpoint http://localhost:N   # deploy Dev to a running server
    python -m cdk_mlops.local deploy --stage Staging                 # another stage of the reference app
    python -m cdk_mlops.local deploy --app path/to/your/app [--stage Team | 'Team/Data' ...]
    python -m cdk_mlops.local destroy [--app ...] [--stage ... | PATTERN ...]   # on the running server
    python -m cdk_mlops.local demo               # own server: deploy Dev and 3 catalogue models, run both loops
    python -m cdk_mlops.local demo-batch         # own server: deploy Dev, approve a model, score a data drop, destroy

Without ``--app`` the reference app (this repository's ``cdk.json``, or the current directory's)
is deployed, one stage of it (default ``Dev``), pinned to the local account. With ``--app`` (a
directory holding a ``cdk.json``, or an app command, as the CDK CLI takes it) any app is
deployed (:mod:`cdk_mlops.local.apps`): every stack, the stacks of ``--stage``, or the stacks
that CDK CLI stack patterns name, with their dependencies. Its stacks must follow the local
account (no ``env=``, or ``CDK_DEFAULT_ACCOUNT``/``CDK_DEFAULT_REGION``); a stack pinned to another
account or region is refused with the fix.

``status``, ``destroy`` and ``deploy --endpoint`` find the server ``up`` started through a
state file, or take ``--endpoint``. Every endpoint must be loopback. ``demo`` and ``demo-batch``
always run their own server in this process: the loop (:mod:`cdk_mlops.local.loop`) and batch
scoring (:mod:`cdk_mlops.local.batch_demo`) reach into moto's backends.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cdk_mlops.local.apps import LocalApp, deploy_app, destroy_app, pattern_regex
from cdk_mlops.local.deploy import (
    DEFAULT_CONCURRENCY,
    STAGE,
    LocalDeployError,
    StackState,
    app_dir,
    deploy_stage,
    destroy_stage,
    progress,
    reference_stages,
    render_states,
    stack_states,
)
from cdk_mlops.local.loop import LoopError
from cdk_mlops.local.server import DEFAULT_REGION, LocalAws, NotLoopbackError, child_env, local_aws, require_loopback

#: Where `up` records its endpoint and process id for the other commands.
STATE_FILE = Path(tempfile.gettempdir()) / "cdk-mlops-local-aws.json"


def _read_state() -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(int(state["pid"]), 0)
    except (OSError, KeyError, ValueError):
        return None  # the recording process is gone
    return state


def _attached(endpoint: str | None, region: str = DEFAULT_REGION) -> LocalAws:
    """A handle on a server that runs elsewhere: ``--endpoint`` or the one `up` recorded."""
    if endpoint is None:
        state = _read_state()
        if state is None:
            raise SystemExit(
                "no local AWS is running; start one with `python -m cdk_mlops.local up` or pass --endpoint"
            )
        endpoint = str(state["endpoint_url"])
    require_loopback(endpoint)
    return LocalAws(endpoint_url=endpoint, region=region, env=child_env(endpoint, region=region))


@contextlib.contextmanager
def _server(endpoint: str | None, region: str = DEFAULT_REGION) -> Iterator[LocalAws]:
    if endpoint is not None:
        yield _attached(endpoint, region)
        return
    with local_aws(region=region) as aws:
        progress("server", f"{aws.endpoint_url} (loopback only)")
        yield aws


def cmd_up(args: argparse.Namespace) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with local_aws(port=args.port) as aws:
        STATE_FILE.write_text(json.dumps({"endpoint_url": aws.endpoint_url, "pid": os.getpid()}))
        try:
            print(f"local AWS on {aws.endpoint_url} (account {aws.account_id()}, region {aws.region})")
            print(f"  export AWS_ENDPOINT_URL={aws.endpoint_url} AWS_ACCESS_KEY_ID=testing")
            print(f"  export AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION={aws.region}")
            print("  python -m cdk_mlops.local deploy --endpoint " + aws.endpoint_url)
            print("Ctrl-C (or `python -m cdk_mlops.local down`) stops it.", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while not stop.wait(0.5):
                    pass
        finally:
            with contextlib.suppress(OSError):
                STATE_FILE.unlink()
    print("local AWS stopped")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    state = _read_state()
    if state is None:
        print("no local AWS is running")
        return 0
    pid = int(state["pid"])
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if _read_state() is None:
            print(f"stopped the local AWS on {state['endpoint_url']} (pid {pid})")
            return 0
        time.sleep(0.1)
    print(f"the local AWS (pid {pid}) did not stop within 10 s", file=sys.stderr)
    return 1


def _target(args: argparse.Namespace) -> LocalApp | None:
    """The ``--app`` and its selection, or ``None`` for a stage of the reference app (checked here)."""
    if args.app is not None:
        return LocalApp(args.app, stage=args.stage, stacks=tuple(args.stacks))
    if args.stacks:
        raise LocalDeployError(
            f"stack patterns ({' '.join(args.stacks)}) select stacks of your own app; pass it with --app "
            "(the reference app is deployed by --stage)"
        )
    stages = reference_stages(app_dir())
    if args.stage is not None and args.stage not in stages:
        raise LocalDeployError(
            f"--stage {args.stage!r} is not a stage of the reference app ({app_dir() / 'cdk.json'}); "
            f"its stages: {', '.join(stages)}. For your own app, pass --app DIR_OR_COMMAND"
        )
    return None


def _selected_states(aws: LocalAws, args: argparse.Namespace) -> list[StackState]:
    """The deployed stacks that ``--stage`` or the patterns select (by CloudFormation name), or all."""
    states = stack_states(aws, prefix="" if args.stage is None else f"{args.stage}-")
    if not args.stacks:
        return states
    # CloudFormation knows stack names only: Team/Data is deployed as Team-Data.
    regexes = [pattern_regex(p.replace("/", "-")) for p in args.stacks]
    return [s for s in states if any(r.fullmatch(s.name) for r in regexes)]


def cmd_status(args: argparse.Namespace) -> int:
    aws = _attached(args.endpoint, args.region)
    print(f"local AWS on {aws.endpoint_url} (account {aws.account_id()}, region {aws.region})")
    print(render_states(_selected_states(aws, args)))
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from cdk_mlops.local import cfn_shim

    target = _target(args)
    stage = args.stage or STAGE
    start = time.perf_counter()
    with _server(args.endpoint, args.region) as aws, _assembly_dir(args.output) as output:
        server_s = time.perf_counter() - start
        if target is None:
            _, timings = deploy_stage(aws, output=output, stage=stage, concurrency=args.concurrency)
            states = stack_states(aws, prefix=f"{stage}-")
        else:
            templates, timings = deploy_app(aws, target, output=output, concurrency=args.concurrency)
            names = {t.name for t in templates}
            states = [s for s in stack_states(aws, prefix="") if s.name in names]
        timings.steps = {"server": server_s, **timings.steps}
        print(render_states(states))
        if cfn_shim.unemulated_custom_resources():
            print(f"   custom resources without local effect: {', '.join(cfn_shim.unemulated_custom_resources())}")
        if args.destroy:
            timings.steps["destroy"] = (
                destroy_stage(aws, output=output, stage=stage)
                if target is None
                else destroy_app(aws, target, output=output)
            )
        total = time.perf_counter() - start
        steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.steps.items())
        print(f"== total {total:.1f} s ({steps})")
        if args.timings:
            args.timings.write_text(json.dumps({"total_s": round(total, 3), **_rounded(timings.steps)}, indent=2))
        if args.keep and args.endpoint is None:
            print(f"keeping the local AWS on {aws.endpoint_url}; Ctrl-C stops it", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
    return 0


@contextlib.contextmanager
def _assembly_dir(output: Path | None) -> Iterator[Path]:
    """The given cloud assembly directory, or a temporary one removed afterwards."""
    if output is not None:
        yield output
        return
    with tempfile.TemporaryDirectory(prefix="cdk-local-") as temporary:
        yield Path(temporary)


def _rounded(steps: dict[str, float]) -> dict[str, float]:
    return {f"{name}_s": round(seconds, 3) for name, seconds in steps.items()}


def cmd_demo(args: argparse.Namespace) -> int:
    from cdk_mlops.local.fleet_loop import render_fleet_summary
    from cdk_mlops.local.loop import render_summary, run_demo

    start = time.perf_counter()
    with local_aws() as aws, _assembly_dir(args.output) as output:
        progress("server", f"{aws.endpoint_url} (loopback only)")
        server_s = time.perf_counter() - start
        demo = run_demo(aws, output=output)
        endpoint = aws.endpoint_url
    total = time.perf_counter() - start
    progress("stopped", f"the local AWS on {endpoint}; nothing is left running")
    steps = {"server": server_s, **demo.timings}
    rows = [
        *_stack_rows(demo.states),
        *render_summary(demo.loop),
        *render_fleet_summary(demo.fleet),
        ("time", f"{total:.1f} s: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in steps.items())),
    ]
    _print_summary(rows)
    if args.timings:
        args.timings.write_text(json.dumps({"total_s": round(total, 3), **_rounded(steps)}, indent=2))
    return 0


def _stack_rows(states: list[StackState]) -> list[tuple[str, str]]:
    return [
        ("stacks deployed", ", ".join(f"{s.name} ({s.total} resources)" for s in states)),
        (
            "resources by type",
            f"{sum(s.total for s in states)} resources of {len({t for s in states for t in s.resources})} types "
            "(listed per stack above)",
        ),
    ]


def _print_summary(rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    print("== summary")
    for label, value in rows:
        print(f"   {label:<{width}}  {value}")


def cmd_demo_batch(args: argparse.Namespace) -> int:
    from cdk_mlops.local.batch_demo import render_batch_summary, run_batch

    start = time.perf_counter()
    with local_aws() as aws, _assembly_dir(args.output) as output:
        progress("server", f"{aws.endpoint_url} (loopback only)")
        server_s = time.perf_counter() - start
        _, timings = deploy_stage(aws, output=output)
        timings.steps = {"server": server_s, **timings.steps}
        run_start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="cdk-mlops-batch-") as work:
            # The redeploy writes its assembly to `output`, so the destroy below removes the Scoring stack too.
            report = run_batch(aws, work_dir=Path(work), output=output)
        timings.steps["batch"] = time.perf_counter() - run_start
        states = stack_states(aws, prefix=f"{STAGE}-")
        timings.steps["destroy"] = destroy_stage(aws, output=output)
        endpoint = aws.endpoint_url
    total = time.perf_counter() - start
    progress("stopped", f"the local AWS on {endpoint}; nothing is left running")
    _print_summary(
        [
            *_stack_rows(states),
            *render_batch_summary(report.trained, report.scored),
            ("time", f"{total:.1f} s: " + ", ".join(f"{n} {s:.1f} s" for n, s in timings.steps.items())),
        ]
    )
    if args.timings:
        args.timings.write_text(json.dumps({"total_s": round(total, 3), **_rounded(timings.steps)}, indent=2))
    return 0


def cmd_destroy(args: argparse.Namespace) -> int:
    target = _target(args)
    aws = _attached(args.endpoint, args.region)
    if target is None:
        destroy_stage(aws, output=args.output, stage=args.stage or STAGE)
    else:
        destroy_app(aws, target, output=args.output)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m cdk_mlops.local`` (and ``cdk-mlops local``), every command included."""
    parser = argparse.ArgumentParser(prog="python -m cdk_mlops.local", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="serve the local AWS on 127.0.0.1 in the foreground")
    up.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    up.set_defaults(func=cmd_up)
    commands.add_parser("down", help="stop the local AWS that `up` started").set_defaults(func=cmd_down)
    for name, func, text in (
        ("status", cmd_status, "stacks and resources on the running local AWS"),
        ("deploy", cmd_deploy, f"deploy a stage ({STAGE} of the reference app unless told) and summarize"),
        (
            "destroy",
            cmd_destroy,
            f"destroy a stage ({STAGE} of the reference app unless told) on the running local AWS",
        ),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--endpoint", help="a running local AWS (default: the one `up` started)")
        command.add_argument(
            "--region",
            default=DEFAULT_REGION,
            help=f"the local AWS's region, where the stacks deploy (default: {DEFAULT_REGION})",
        )
        command.add_argument(
            "--stage",
            help=f"a stage's construct id (default: {STAGE} of the reference app; every stack of an --app)",
        )
        command.add_argument(
            "stacks",
            nargs="*",
            metavar="PATTERN",
            help="CDK CLI stack patterns of the --app ('Team/Data', 'Team/*'); their dependencies come along",
        )
        if name != "status":
            command.add_argument(
                "--app",
                help="your CDK app: a directory holding a cdk.json, or an app command such as 'python app.py' "
                "(default: the reference app)",
            )
        if name != "status":
            command.add_argument("--output", type=Path, help="cloud assembly directory (default: a temporary one)")
        if name == "deploy":
            command.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="stacks deployed at once")
            command.add_argument("--destroy", action="store_true", help="destroy the stage again before stopping")
            command.add_argument("--keep", action="store_true", help="keep the server running after the summary")
            command.add_argument("--timings", type=Path, help="write the seconds of each step to this JSON file")
        command.set_defaults(func=func)
    demo = commands.add_parser(
        "demo",
        help=f"own server: deploy {STAGE} with a catalogue of three models, run the closed loop and the fleet's, "
        "destroy, stop",
    )
    demo.add_argument("--output", type=Path, help="cloud assembly directory (default: a temporary one)")
    demo.add_argument("--timings", type=Path, help="write the seconds of each step to this JSON file")
    demo.set_defaults(func=cmd_demo)
    batch = commands.add_parser(
        "demo-batch",
        help=f"own server: deploy {STAGE}, approve a model, redeploy to score a dataset, score a data drop, destroy",
    )
    batch.add_argument("--output", type=Path, help="cloud assembly directory (default: a temporary one)")
    batch.add_argument("--timings", type=Path, help="write the seconds of each step to this JSON file")
    batch.set_defaults(func=cmd_demo_batch)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; returns the exit status (1 with a one-line message for a problem the user can fix).

    Args:
        argv: The arguments without the program name. Default: - ``sys.argv[1:]``.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (LocalDeployError, NotLoopbackError, LoopError) as error:
        print(f"cdk-mlops local: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
