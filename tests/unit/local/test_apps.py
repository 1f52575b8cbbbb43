"""Deploying your own app locally: which stacks a selection means, which environments are refused, bad input.

The cloud assemblies here are written by hand in the CLI's manifest format, so no synthesis runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cdk_mlops.local.__main__ import main as local_main
from cdk_mlops.local.apps import (
    FOLLOW_THE_CLI,
    AssemblyStack,
    LocalApp,
    assembly_stacks,
    check_environments,
    pattern_regex,
    select_stacks,
)
from cdk_mlops.local.deploy import LocalDeployError, reference_stages

LOCAL_ACCOUNT = "123456789012"
LOCAL_REGION = "us-east-1"


def write_assembly(root: Path, stages: dict[str, dict[str, dict[str, Any]]]) -> Path:
    """A cloud assembly: stage → stack id → {"env": "aws://...", "deps": [stack ids]}."""
    artifacts: dict[str, Any] = {}
    for stage, stacks in stages.items():
        nested = root / f"assembly-{stage}"
        nested.mkdir(parents=True)
        inner: dict[str, Any] = {}
        for stack_id, spec in stacks.items():
            artifact_id = f"{stage}{stack_id}"
            (nested / f"{artifact_id}.template.json").write_text(json.dumps({"Resources": {}}))
            inner[artifact_id] = {
                "type": "aws:cloudformation:stack",
                "environment": spec.get("env", "aws://unknown-account/unknown-region"),
                "properties": {"templateFile": f"{artifact_id}.template.json", "stackName": f"{stage}-{stack_id}"},
                "dependencies": [f"{stage}{d}" for d in spec.get("deps", [])] + [f"{artifact_id}.assets"],
                "displayName": f"{stage}/{stack_id}",
            }
        (nested / "manifest.json").write_text(json.dumps({"version": "48.0.0", "artifacts": inner}))
        artifacts[f"assembly-{stage}"] = {
            "type": "cdk:cloud-assembly",
            "properties": {"directoryName": f"assembly-{stage}", "displayName": stage},
        }
    (root / "manifest.json").write_text(json.dumps({"version": "48.0.0", "artifacts": artifacts}))
    return root


@pytest.fixture
def team_assembly(tmp_path: Path) -> list[AssemblyStack]:
    write_assembly(
        tmp_path,
        {
            "Team": {"Data": {}, "Serving": {"deps": ["Data"]}},
            "Other": {"Stack": {"env": f"aws://{LOCAL_ACCOUNT}/{LOCAL_REGION}"}},
        },
    )
    return assembly_stacks(tmp_path)


def paths(stacks: list[AssemblyStack]) -> list[str]:
    return [s.path for s in stacks]


# --- selection ----------------------------------------------------------------------------------------


def test_a_stage_selects_its_stacks_only(team_assembly):
    assert paths(select_stacks(team_assembly, LocalApp(".", stage="Team"))) == ["Team/Data", "Team/Serving"]


def test_no_selection_means_every_stack_of_the_app(team_assembly):
    assert paths(select_stacks(team_assembly, LocalApp("."))) == ["Team/Data", "Team/Serving", "Other/Stack"]


def test_a_pattern_brings_the_stacks_it_depends_on(team_assembly):
    selected = select_stacks(team_assembly, LocalApp(".", stacks=("Team/Serving",)))
    assert paths(selected) == ["Team/Data", "Team/Serving"]
    assert [s.stack.name for s in selected] == ["Team-Data", "Team-Serving"]


def test_a_pattern_may_name_the_cloudformation_stack(team_assembly):
    assert paths(select_stacks(team_assembly, LocalApp(".", stacks=("Other-*",)))) == ["Other/Stack"]


def test_single_star_stays_within_one_path_segment():
    assert pattern_regex("Team/*").fullmatch("Team/Data")
    assert not pattern_regex("*").fullmatch("Team/Data")
    assert pattern_regex("**").fullmatch("Team/Nested/Data")


def test_an_unknown_stage_names_the_stages_the_app_has(team_assembly):
    with pytest.raises(LocalDeployError, match=r"stage 'Tem' matches no stack .*its stages: Other, Team"):
        select_stacks(team_assembly, LocalApp(".", stage="Tem"))


def test_an_unmatched_pattern_lists_the_stacks(team_assembly):
    with pytest.raises(LocalDeployError, match=r"stack pattern 'Team/Train' .*its stacks: Team/Data, Team/Serving"):
        select_stacks(team_assembly, LocalApp(".", stacks=("Team/Train",)))


def test_a_stage_and_patterns_together_are_refused():
    with pytest.raises(LocalDeployError, match=r"either a stage \('Team'\) or stack patterns"):
        LocalApp(".", stage="Team", stacks=("Team/Data",))


def test_a_pattern_given_as_stage_is_refused():
    with pytest.raises(LocalDeployError, match=r"stage 'Team/\*' is not a stage's construct id"):
        LocalApp(".", stage="Team/*")


# --- environments -------------------------------------------------------------------------------------


def test_environment_agnostic_stacks_and_the_local_account_deploy(team_assembly):
    check_environments(team_assembly, account=LOCAL_ACCOUNT, region=LOCAL_REGION)  # no error


def test_a_stack_pinned_to_another_account_is_refused_with_the_fix(tmp_path: Path):
    write_assembly(tmp_path, {"Prod": {"Data": {"env": "aws://222222222222/us-east-1"}, "Ok": {}}})
    with pytest.raises(LocalDeployError) as raised:
        check_environments(assembly_stacks(tmp_path), account=LOCAL_ACCOUNT, region=LOCAL_REGION)
    message = str(raised.value)
    assert "Prod/Data is pinned to aws://222222222222/us-east-1" in message
    assert "Prod/Ok" not in message
    assert f"the local AWS is account {LOCAL_ACCOUNT}, region {LOCAL_REGION}" in message
    assert FOLLOW_THE_CLI in message


def test_a_stack_in_another_region_is_refused_naming_the_region_option(tmp_path: Path):
    write_assembly(tmp_path, {"Eu": {"Data": {"env": f"aws://{LOCAL_ACCOUNT}/eu-west-1"}}})
    with pytest.raises(LocalDeployError, match=r"Eu/Data is pinned to aws://123456789012/eu-west-1.*--region REGION"):
        check_environments(assembly_stacks(tmp_path), account=LOCAL_ACCOUNT, region=LOCAL_REGION)


# --- the app ------------------------------------------------------------------------------------------


def test_a_directory_without_cdk_json_is_refused(tmp_path: Path):
    (tmp_path / "app").mkdir()
    with pytest.raises(LocalDeployError, match=r"--app 'app': the directory .*app holds no cdk.json"):
        LocalApp("app", cwd=tmp_path).validate()


def test_a_missing_path_is_refused(tmp_path: Path):
    with pytest.raises(
        LocalDeployError,
        match=r"--app 'nowhere/app': 'nowhere/app' is neither a directory, a file .* nor a command on PATH",
    ):
        LocalApp("nowhere/app", cwd=tmp_path).validate()


def test_a_missing_script_is_refused(tmp_path: Path):
    with pytest.raises(LocalDeployError, match=r"--app 'python missing.py': 'missing.py' does not exist"):
        LocalApp("python missing.py", cwd=tmp_path).validate()


def test_a_directory_runs_its_cdk_json_and_a_command_runs_in_cwd(tmp_path: Path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "cdk.json").write_text("{}")
    (tmp_path / "app.py").write_text("")
    directory = LocalApp("app", cwd=tmp_path)
    directory.validate()
    assert (directory.directory, directory.command) == ((tmp_path / "app").resolve(), None)
    command = LocalApp("python app.py", cwd=tmp_path)
    command.validate()
    assert (command.directory, command.command) == (tmp_path.resolve(), "python app.py")


def test_the_reference_app_has_one_stage_per_environment():
    assert reference_stages(Path(__file__).resolve().parents[3]) == ["Dev", "Staging", "Prod"]


# --- the command line (refused before any server starts) -------------------------------------------


def test_deploy_of_an_unknown_reference_stage_names_the_stages(capsys):
    assert local_main(["deploy", "--stage", "Qa"]) == 1
    error = capsys.readouterr().err
    assert "--stage 'Qa' is not a stage of the reference app" in error
    assert "its stages: Dev, Staging, Prod" in error
    assert "--app" in error


def test_deploy_of_stack_patterns_without_an_app_says_to_pass_it(capsys):
    assert local_main(["deploy", "Team/Data"]) == 1
    assert "pass it with --app" in capsys.readouterr().err


def test_deploy_of_a_bad_app_path_names_it(tmp_path: Path, capsys):
    assert local_main(["deploy", "--app", str(tmp_path / "missing")]) == 1
    assert f"--app '{tmp_path / 'missing'}'" in capsys.readouterr().err


def test_destroy_with_a_non_loopback_endpoint_is_refused(tmp_path: Path, capsys):
    (tmp_path / "cdk.json").write_text("{}")
    assert local_main(["destroy", "--app", str(tmp_path), "--endpoint", "http://10.0.0.5:4566"]) == 1
    assert "is not loopback" in capsys.readouterr().err
