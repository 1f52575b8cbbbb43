"""The pytest plugin ``cdk_mlops.testing``: how it is enabled and configured, and how it reports bad input.

A deploy takes seconds, so the one run that deploys an app is in tests/e2e/test_testing_plugin.py;
these runs stop before the deploy (a bad app) or need none.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from cdk_mlops.local.apps import LocalApp
from cdk_mlops.local.loop_emulation import LoopError, discover
from cdk_mlops.local.server import local_aws
from cdk_mlops.testing import LocalDeployment
from tests.e2e.test_testing_plugin import outcomes, run_team_tests


def team_project(root: Path, ini: str, test: str) -> Path:
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p cdk_mlops.testing\n" + textwrap.dedent(ini))
    (root / "test_team.py").write_text(textwrap.dedent(test))
    return root


def test_the_plugin_registers_its_ini_options(tmp_path: Path) -> None:
    result = run_team_tests(team_project(tmp_path, "", "def test_nothing():\n    pass\n"), tmp_path / "r.xml", "--help")
    assert result.returncode == 0, result.stderr
    for option in ("cdk_mlops_app", "cdk_mlops_stage", "cdk_mlops_stacks", "cdk_mlops_region", "cdk_mlops_pipeline"):
        assert option in result.stdout


def test_an_app_directory_without_cdk_json_fails_the_test_naming_it(tmp_path: Path) -> None:
    (tmp_path / "infra").mkdir()
    project = team_project(
        tmp_path,
        "cdk_mlops_app = infra\n",
        """
        def test_uses_the_deployment(mlops_deployment):
            pass
        """,
    )
    report = tmp_path / "report.xml"
    result = run_team_tests(project, report, "-rA")
    assert result.returncode == 1
    assert outcomes(report) == {"test_uses_the_deployment": "error"}
    assert "cdk_mlops.testing: --app 'infra': the directory" in result.stdout
    assert "holds no cdk.json" in result.stdout


def test_the_app_can_be_set_in_code_by_overriding_mlops_app(tmp_path: Path) -> None:
    project = team_project(
        tmp_path,
        "cdk_mlops_app = ignored\n",
        """
        import json
        import pytest
        from cdk_mlops.local.apps import LocalApp

        @pytest.fixture(scope="session")
        def mlops_app():
            return LocalApp("python app.py", stage="Team")

        def test_sees_the_override(mlops_app, mlops_aws, mlops_client, tmp_path_factory):
            assert mlops_app.patterns == ("Team/*",)
            assert mlops_client("sts").get_caller_identity()["Account"] == mlops_aws.account_id()
            assert mlops_aws.endpoint_url.startswith("http://localhost:")
        """,
    )
    report = tmp_path / "report.xml"
    result = run_team_tests(project, report)
    assert result.returncode == 0, result.stdout[-3000:]
    assert outcomes(report) == {"test_sees_the_override": "passed"}


def test_the_env_fixture_points_boto3_at_the_local_aws_for_one_test(tmp_path: Path) -> None:
    project = team_project(
        tmp_path,
        "cdk_mlops_region = eu-west-1\n",
        """
        import os
        import boto3

        def test_code_under_test_makes_its_own_client(mlops_env):
            s3 = boto3.client("s3")
            s3.create_bucket(Bucket="team", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
            assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["team"]
            assert os.environ["AWS_ENDPOINT_URL"] == mlops_env.endpoint_url
            assert mlops_env.region == "eu-west-1"
        """,
    )
    report = tmp_path / "report.xml"
    result = run_team_tests(project, report)
    assert result.returncode == 0, result.stdout[-3000:]
    assert outcomes(report) == {"test_code_under_test_makes_its_own_client": "passed"}


def test_a_missing_output_names_the_outputs_there_are(tmp_path: Path) -> None:
    deployment = LocalDeployment(
        aws=None,  # type: ignore[arg-type]  # not reached: outputs are read at deploy time
        app=LocalApp("."),
        stacks=(),
        outputs={"Team-Data": {"BucketName": "b"}},
        assembly=tmp_path,
    )
    assert deployment.output("BucketName") == "b"
    with pytest.raises(KeyError, match=r"no stack output 'Bucket'; the deployed stacks have \['BucketName'\]"):
        deployment.output("Bucket")


def test_without_a_trigger_in_the_deployed_stacks_the_driver_says_what_to_deploy() -> None:
    with local_aws(install_shim=False) as aws:
        aws.client("cloudformation").create_stack(
            StackName="Team-Data",
            TemplateBody=json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}),
        )
        with pytest.raises(LoopError, match=r"in the stacks Team-Data; deploy a stack with a RetrainTrigger first"):
            discover(aws, stacks=["Team-Data"])
