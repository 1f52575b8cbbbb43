"""Mutation testing (mutmut) of the modules that carry the library's promises.

Usage: python bench/mutation.py [--max-children N]

What is mutated, and which tests run, is ``[tool.mutmut]`` in pyproject.toml: ``only_mutate``
names the modules, ``pytest_add_cli_args_test_selection`` the fast tests (no CDK synthesis).
mutmut records which of those tests call each function and runs only them for that function's
mutants, fastest first, each mutant in a process forked from one that has imported everything.
``SCOPE`` below narrows two modules to the code that carries a promise.

The run happens in ``build/mutation/``, a fresh copy of what mutmut reads (pyproject.toml, the
package, the tests and ``also_copy``), so the repository gets no ``mutants/`` directory and the
run sees one snapshot of the source even while people edit it. A module that changed in the
repository by the end of the run is named: rerun it. Afterwards ``cd build/mutation &&
../../.venv/bin/mutmut show <mutant>`` (or ``browse``) shows any mutant.

Prints a markdown table (one row per module) and writes bench/results/mutation.json with each
surviving mutant's diff. The kill rate counts timeouts as killed and everything else that is
not killed (survived, no tests, suspicious) as not killed.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKDIR = REPO_ROOT / "build" / "mutation"
#: First argument of this script when it runs as the mutmut process inside WORKDIR (see ``worker``).
WORKER = "--mutmut-worker"


@dataclass(frozen=True)
class Part:
    """The functions of a module in scope: ``only`` these, or all ``but`` these (names of functions or classes)."""

    reason: str
    only: tuple[str, ...] = ()
    but: tuple[str, ...] = ()

    def covers(self, function: str) -> bool:
        name = function.split("ǁ")[1] if function.startswith("xǁ") else function.removeprefix("x_")
        method = function.split("ǁ")[2] if function.startswith("xǁ") else None
        named = {name, f"{name}.{method}"} if method else {name}
        return bool(named & set(self.only)) if self.only else not named & set(self.but)


#: Modules of ``only_mutate`` that are in scope only in part, and why.
SCOPE: dict[str, Part] = {
    "cdk_mlops/pipeline_definition/steps.py": Part(
        "the gate (Condition step) only; the other step builders are covered by the template tests",
        only=("_gate_step",),
    ),
    "cdk_mlops/guardrails.py": Part(
        "the rules only: the CDK policy-validation adapter runs only inside a synthesis",
        but=("GuardrailsPlugin", "apply_guardrails", "_severity"),
    ),
}
#: mutmut's exit codes (``mutmut.stats.status_by_exit_code``), folded into the table's columns.
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 36: "timeout", 24: "timeout"}
STATUS |= {-24: "timeout", 152: "timeout", 255: "timeout", 34: "skipped", 37: "killed"}


# --- the mutmut process (runs in WORKDIR) ---------------------------------------------------------


def serialize_jsii_requests(lock_path: Path) -> None:
    """Let forked mutant workers share the jsii kernel one request at a time.

    The tests import aws-cdk-lib before mutmut forks, so every worker talks to the one Node.js
    process of jsii over the same pipes; two workers' requests (``LAMBDA_RUNTIME.name``, a
    region lookup) could otherwise interleave and read each other's answers.
    """
    from jsii._kernel.providers import process

    send: Callable[..., Any] = process._NodeProcess.send
    handles: dict[int, Any] = {}

    def locked(self: Any, request: Any, response_type: Any) -> Any:
        # flock is per open file: each process opens its own, or forked siblings would share one lock.
        handle = handles.get(os.getpid()) or handles.setdefault(os.getpid(), lock_path.open("a"))
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            return send(self, request, response_type)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

    process._NodeProcess.send = locked  # type: ignore[method-assign]


def worker(arguments: Sequence[str]) -> None:
    """``mutmut <arguments>`` in this process, with the jsii kernel shared safely; or the survivors' diffs."""
    serialize_jsii_requests(Path.cwd() / "jsii.lock")
    if arguments[:1] == ["diffs"]:
        from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant

        diffs = {name: get_diff_for_mutant(name, path=find_mutant(name).path) for name in arguments[1:]}
        sys.stdout.write(json.dumps(diffs))
        return
    from mutmut.__main__ import cli

    cli(list(arguments))


# --- the runner ---------------------------------------------------------------------------------


def settings() -> dict[str, Any]:
    """``[tool.mutmut]`` of pyproject.toml."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text()).get("tool", {}).get("mutmut")
    if not config or not config.get("only_mutate"):
        raise SystemExit("pyproject.toml has no [tool.mutmut] only_mutate; see bench/MUTATION.md for the section")
    return dict(config)


def copy_inputs(config: dict[str, Any]) -> None:
    """A fresh WORKDIR holding what mutmut reads: pyproject.toml, the source paths, the tests and also_copy."""
    shutil.rmtree(WORKDIR, ignore_errors=True)
    WORKDIR.mkdir(parents=True)
    skip = shutil.ignore_patterns("__pycache__", ".hypothesis", "*.pyc")
    for name in ["pyproject.toml", "tests", *config.get("source_paths", []), *config.get("also_copy", [])]:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, WORKDIR / name, ignore=skip, dirs_exist_ok=True)
        elif source.is_file():
            (WORKDIR / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, WORKDIR / name)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def patterns(modules: Sequence[str]) -> list[str]:
    """The mutant names to run: every mutant of each module, or of the functions its ``only`` names."""
    names: list[str] = []
    for path in modules:
        part = SCOPE.get(path)
        functions = [f"x_{name}" for name in part.only] if part and part.only else ["*"]
        names += [f"{module_name(path)}.{function}__mutmut_*" for function in functions]
    return names


def run_mutmut(arguments: Sequence[str], log: Path) -> None:
    env = {**os.environ, "PATH": f"{REPO_ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    env |= {"CDK_DISABLE_VERSION_CHECK": "1", "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
    with log.open("w") as out:
        command = [sys.executable, str(Path(__file__).resolve()), WORKER, *arguments]
        result = subprocess.run(command, cwd=WORKDIR, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        sys.stderr.write(log.read_text()[-4000:])
        raise SystemExit(f"mutmut failed with exit {result.returncode}; its output is in {log}")


def survivor_diffs(names: Sequence[str]) -> dict[str, str]:
    if not names:
        return {}
    command = [sys.executable, str(Path(__file__).resolve()), WORKER, "diffs", *names]
    out = subprocess.run(command, cwd=WORKDIR, capture_output=True, text=True, check=True).stdout
    diffs: dict[str, str] = json.loads(out)
    return diffs


def results(path: str) -> tuple[dict[str, str], int]:
    """Each in-scope mutant's status, and how many mutants of the module are out of scope."""
    meta = json.loads((WORKDIR / "mutants" / f"{path}.meta").read_text())
    part = SCOPE.get(path)
    statuses: dict[str, str] = {}
    left_out = 0
    for name, code in meta["exit_code_by_key"].items():
        function = name.rsplit(".", 1)[1].rsplit("__mutmut_", 1)[0]
        if part is not None and not part.covers(function):
            left_out += 1
        else:
            statuses[name] = "not checked" if code is None else STATUS.get(code, "suspicious")
    return statuses, left_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2, help="mutants tested at once")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT))
    from bench.common import write_result

    config = settings()
    modules: list[str] = list(config["only_mutate"])
    copy_inputs(config)
    before = {path: digest(REPO_ROOT / path) for path in modules}
    started = time.perf_counter()
    run_mutmut(["run", "--max-children", str(args.max_children), *patterns(modules)], WORKDIR / "mutmut.log")
    wall_s = round(time.perf_counter() - started, 1)
    changed = [path for path in modules if digest(REPO_ROOT / path) != before[path]]

    rows: list[dict[str, Any]] = []
    for path in modules:
        statuses, left_out = results(path)
        counts = Counter(statuses.values())
        survivors = sorted(name for name, status in statuses.items() if status == "survived")
        detected = counts["killed"] + counts["timeout"]
        rows.append(
            {
                "module": path,
                "scope": SCOPE[path].reason if path in SCOPE else "the whole module",
                "mutants": len(statuses),
                "killed": counts["killed"],
                "survived": counts["survived"],
                "timeouts": counts["timeout"],
                "no_tests": counts["no tests"],
                "other": len(statuses) - detected - counts["survived"] - counts["no tests"],
                "left_out": left_out,
                "kill_rate": round(detected / len(statuses), 4) if statuses else 0.0,
                "survivors": survivor_diffs(survivors),
                "no_tests_mutants": sorted(name for name, status in statuses.items() if status == "no tests"),
                "source_sha256": before[path],
            }
        )
    write_result(
        "mutation",
        {
            "tool": "mutmut",
            "max_children": args.max_children,
            "wall_s": wall_s,
            "changed_during_run": changed,
            "rows": rows,
        },
    )
    print(f"mutmut, {args.max_children} workers, {wall_s / 60:.1f} min; kill rate = (killed + timeouts) / mutants.")
    print()
    print("| module | mutants | killed | survived | timeouts | no tests | kill rate |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| `{row['module']}` | {row['mutants']} | {row['killed']} | {row['survived']} | {row['timeouts']} "
            f"| {row['no_tests']} | {row['kill_rate']:.1%} |"
        )
    for row in rows:
        if row["left_out"]:
            print(f"\n`{row['module']}`: {row['left_out']} mutants left out ({row['scope']}).")
    if changed:
        print(f"\nChanged in the repository during the run, so rerun: {', '.join(changed)}.")


if __name__ == "__main__":
    if sys.argv[1:2] == [WORKER]:
        # This script's directory is first on sys.path; mutmut must import only WORKDIR's copies.
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
        worker(sys.argv[2:])
    else:
        main()
