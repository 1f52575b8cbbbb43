"""The delivery pipelines' build steps: pure decisions without AWS, commands against moto."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from cdk_mlops import delivery_steps as steps
from cdk_mlops.delivery_steps import (
    Finding,
    RetrainAction,
    check_inference,
    decide_retrain,
    model_record,
    model_settings,
    parse_model_record,
    pin_models,
    read_findings,
    retrain_request,
    stack_problems,
    training_fingerprint,
)
from cdk_mlops.lambdas.retrain_trigger.events import ManualRetrain, parse_event
from cdk_mlops.pipeline_definition import METADATA_SOURCE_REVISION
from tests.conftest import TEST_REGION

OLD = "a" * 64
NEW = "b" * 64
ARN = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-models/3"


def definition(*, revision: str = "abc123", instance: str = "ml.m5.large") -> dict[str, Any]:
    """A small definition shaped like the library's: a training step and a registration with metadata."""
    return {
        "Version": "2020-12-01",
        "Steps": [
            {"Name": "Train", "Type": "Training", "Arguments": {"ResourceConfig": {"InstanceType": instance}}},
            {
                "Name": "Register",
                "Type": "RegisterModel",
                "Arguments": {
                    "MetadataProperties": {"CommitId": revision, "GeneratedBy": "x"},
                    "CustomerMetadataProperties": {METADATA_SOURCE_REVISION: revision, "DataVersion": "v1"},
                },
            },
        ],
    }


def test_the_steps_import_neither_aws_cdk_nor_boto3():
    # CodeBuild runs them from the checkout with the standard library and boto3 only, installed late.
    code = "import sys, cdk_mlops.delivery_steps; print('aws_cdk' in sys.modules, 'boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


# ----------------------------------------------------------------------- retrain when ML code changes


def test_fingerprint_is_a_stable_sha256_of_definition_and_assets():
    first = training_fingerprint(definition(), ["h2", "h1"])
    assert first == training_fingerprint(definition(), ["h1", "h2"])
    assert len(first) == 64
    assert set(first) <= set("0123456789abcdef")


def test_fingerprint_ignores_the_source_revision_recorded_on_models():
    # The pipeline may set the revision to each commit id; that must not retrain on every commit.
    assert training_fingerprint(definition(revision="abc")) == training_fingerprint(definition(revision="def"))


def test_fingerprint_changes_with_the_definition_and_with_script_assets():
    base = training_fingerprint(definition(), ["h1"])
    assert training_fingerprint(definition(instance="ml.m5.xlarge"), ["h1"]) != base
    assert training_fingerprint(definition(), ["h2"]) != base


def test_first_deployment_records_a_baseline_and_requests_nothing():
    decision = decide_retrain(None, NEW)
    assert decision.action is RetrainAction.BASELINE
    assert decision.records
    assert decision.reason == f"no fingerprint recorded yet; recording {NEW[:12]} (new data still starts training)"


def test_unchanged_ml_code_is_skipped_and_not_rewritten():
    decision = decide_retrain(NEW, NEW)
    assert decision.action is RetrainAction.SKIP
    assert not decision.records
    assert decision.reason == f"ML code unchanged ({NEW[:12]})"


def test_changed_ml_code_requests_one_run():
    decision = decide_retrain(OLD, NEW)
    assert decision.action is RetrainAction.REQUEST
    assert decision.records
    assert decision.reason == f"ML code changed ({OLD[:12]} -> {NEW[:12]})"


@pytest.mark.parametrize(("previous", "current", "label"), [(None, "nope", "current"), ("XYZ", NEW, "previous")])
def test_a_malformed_fingerprint_is_rejected(previous, current, label):
    with pytest.raises(ValueError, match=rf"^{label} fingerprint '\w+' is not a sha256 hex digest$"):
        decide_retrain(previous, current)


def test_the_retrain_request_is_a_manual_retrain_the_trigger_accepts():
    # GIVEN the entry the step puts on the event bus
    entry = retrain_request(decide_retrain(OLD, NEW), dataset="churn", pipeline_name="p", environment="staging")
    # WHEN EventBridge delivers it to the retrain trigger's queue
    event = {
        "version": "0",
        "id": "4f2d7c1e-0000-0000-0000-000000000000",
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": "123456789012",
        "time": "2025-03-06T09:30:00Z",
        "region": TEST_REGION,
        "resources": [],
        "detail": json.loads(entry["Detail"]),
    }
    parsed = parse_event(event)
    # THEN the trigger reads it as a manual retrain of the dataset, with the reason
    assert isinstance(parsed, ManualRetrain)
    assert parsed.dataset == "churn"
    assert parsed.reason == f"ML code changed ({OLD[:12]} -> {NEW[:12]}) in the p pipeline, deployed to staging"
    assert parsed.requested_by == steps.REQUESTED_BY


# ------------------------------------------------------------------------------------ security report


def report(*violations: dict[str, Any], plugin: str = "AwsSolutions") -> dict[str, Any]:
    return {
        "version": "55.0.0",
        "pluginReports": [{"pluginName": plugin, "conclusion": "failure", "violations": list(violations)}],
    }


def violation(rule: str, path: str, severity: str = "error") -> dict[str, Any]:
    return {
        "ruleName": rule,
        "description": "  The   thing\nis wrong. ",
        "severity": severity,
        "violatingConstructs": [{"constructPath": path}],
    }


def test_findings_are_read_from_a_validation_report():
    findings = read_findings(report(violation("AwsSolutions-S1", "A/B/Resource"), violation("X", "C", "warning")))
    assert findings == [
        Finding("AwsSolutions", "AwsSolutions-S1", "A/B/Resource", "error", "The thing is wrong."),
        Finding("AwsSolutions", "X", "C", "warning", "The thing is wrong."),
    ]
    assert [f.blocking for f in findings] == [True, False]


def test_a_document_that_is_not_a_report_is_rejected():
    with pytest.raises(ValueError, match="not a CDK validation report: no 'pluginReports' list"):
        read_findings({"violations": []})


def write_report(assembly: Path, content: dict[str, Any], nested: str | None = None) -> None:
    target = assembly / nested if nested else assembly
    target.mkdir(parents=True, exist_ok=True)
    (target / steps.VALIDATION_REPORT).write_text(json.dumps(content))


def test_security_report_passes_a_clean_assembly_and_publishes_the_report(tmp_path, capsys):
    write_report(tmp_path / "cdk.out", {"pluginReports": [{"pluginName": "AwsSolutions", "conclusion": "success"}]})
    out = tmp_path / "report"
    assert steps.main(["security-report", "--assembly", str(tmp_path / "cdk.out"), "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith("1 report(s), 0 blocking finding(s), 0 warning(s)")
    assert json.loads((out / "findings.json").read_text()) == []
    assert (out / "reports" / steps.VALIDATION_REPORT).is_file()
    assert 'tests="1" failures="0"' in (out / "junit.xml").read_text()


def test_security_report_fails_on_an_unacknowledged_error_in_a_nested_assembly(tmp_path, capsys):
    assembly = tmp_path / "cdk.out"
    write_report(assembly, report(violation("W", "A", "warning")))
    write_report(assembly, report(violation("MLOPS-001", "T/D/Role"), plugin="CdkMlopsGuardrails"), "assembly-T")
    out = tmp_path / "report"
    assert steps.main(["security-report", "--assembly", str(assembly), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "2 report(s), 1 blocking finding(s), 1 warning(s)" in captured.out
    assert "ERROR CdkMlopsGuardrails MLOPS-001 T/D/Role: The thing is wrong." in captured.out
    assert "acknowledge the finding on its construct with a reason" in captured.err
    junit = (out / "junit.xml").read_text()
    assert 'failures="1" skipped="1"' in junit
    assert '<testcase classname="CdkMlopsGuardrails" name="MLOPS-001 T/D/Role"><failure' in junit


def test_security_report_fails_closed_without_any_report(tmp_path, capsys):
    (tmp_path / "cdk.out").mkdir()
    assert steps.main(["security-report", "--assembly", str(tmp_path / "cdk.out"), "--out", str(tmp_path / "r")]) == 1
    assert "cdk-nag and the guardrails did not run at synth" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ checks, models


def test_stack_problems_name_missing_stacks_incomplete_ones_and_missing_outputs():
    expected = {"A": ["Url"], "B": [], "C": []}
    described: dict[str, dict[str, Any] | None] = {
        "A": {"StackStatus": "UPDATE_COMPLETE", "Outputs": [{"OutputKey": "Other"}]},
        "B": {"StackStatus": "UPDATE_ROLLBACK_COMPLETE"},
        "C": None,
    }
    assert stack_problems(expected, described) == [
        "stack A lacks output(s) Url",
        "stack B is UPDATE_ROLLBACK_COMPLETE, not one of CREATE_COMPLETE, IMPORT_COMPLETE, UPDATE_COMPLETE",
        "stack C does not exist",
    ]
    assert (
        stack_problems({"A": ["Url"]}, {"A": {"StackStatus": "CREATE_COMPLETE", "Outputs": [{"OutputKey": "Url"}]}})
        == []
    )


def cdk_json(**environments: dict[str, Any]) -> dict[str, Any]:
    return {"app": "python app.py", "context": {"environments": environments, "other": True}}


BASELINE = "artifacts/churn-training/exec-7/data-quality-baseline/"


def package(**extra: Any) -> dict[str, Any]:
    """A DescribeModelPackage response of a package registered by the library's pipeline."""
    baseline = f"s3://store/{BASELINE}"
    return {
        "ModelPackageArn": ARN,
        "DriftCheckBaselines": {
            "ModelDataQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": f"{baseline}statistics.json"},
                "Constraints": {"ContentType": "application/json", "S3Uri": f"{baseline}constraints.json"},
            }
        },
        **extra,
    }


def test_a_packages_settings_carry_its_drift_check_baseline_and_the_bucket_holding_it():
    assert model_settings(package()) == {
        "model_package_arn": ARN,
        "model_baseline_prefix": BASELINE,
        "model_source_bucket": "store",
        "model_baselines": "data-quality",
    }
    assert model_settings(package(DriftCheckBaselines={})) == {"model_package_arn": ARN}
    outside = package(DriftCheckBaselines={"ModelDataQuality": {"Statistics": {"S3Uri": "s3://b/other/s.json"}}})
    assert model_settings(outside) == {"model_package_arn": ARN}
    # Without a baseline, the model archive still says where the model was trained.
    archive = {"Containers": [{"ModelDataUrl": "s3://dev-store/artifacts/churn/train/model.tar.gz"}]}
    assert model_settings(package(DriftCheckBaselines={}, InferenceSpecification=archive)) == {
        "model_package_arn": ARN,
        "model_source_bucket": "dev-store",
    }
    assert model_settings(package(DriftCheckBaselines={}, InferenceSpecification={"Containers": ["x"]})) == {
        "model_package_arn": ARN
    }
    with pytest.raises(ValueError, match=r"'nope' is not a model package version ARN"):
        model_settings({"ModelPackageArn": "nope"})


def test_a_packages_other_monitoring_baselines_count_only_where_its_training_execution_wrote_them():
    execution = BASELINE.removesuffix("data-quality-baseline/")

    def at(prefix: str, name: str, bucket: str = "store") -> dict[str, str]:
        return {"ContentType": "application/json", "S3Uri": f"s3://{bucket}/{prefix}{name}"}

    drift = package()["DriftCheckBaselines"] | {
        "ModelQuality": {"Constraints": at(f"{execution}model-quality-baseline/", "constraints.json")},
        "Bias": {
            "PostTrainingConstraints": at(f"{execution}model-bias-baseline/", "analysis.json"),
            "ConfigFile": at(f"{execution}model-bias-baseline/", "analysis_config.json"),
        },
        "Explainability": {"Constraints": at(f"{execution}model-explainability-baseline/", "analysis.json")},
    }
    every = model_settings(package(DriftCheckBaselines=drift))
    assert every["model_baselines"] == "data-quality,model-quality,model-bias,model-explainability"
    # Another execution's or another bucket's files are not this package's monitoring baselines.
    elsewhere = drift | {
        "ModelQuality": {"Constraints": at("artifacts/churn/other/model-quality-baseline/", "constraints.json")},
        "Bias": {"PostTrainingConstraints": at(f"{execution}model-bias-baseline/", "analysis.json", "other")},
        "Explainability": {},
    }
    assert model_settings(package(DriftCheckBaselines=elsewhere))["model_baselines"] == "data-quality"
    record = model_record(every)
    assert parse_model_record(record) == every


def test_model_records_round_trip_and_accept_none_and_bare_arns():
    settings = {"model_package_arn": ARN, "model_baseline_prefix": BASELINE}
    assert parse_model_record(model_record(settings)) == settings
    assert parse_model_record("none") is None
    assert parse_model_record(None) is None
    assert parse_model_record(ARN) == {"model_package_arn": ARN}
    with pytest.raises(ValueError, match=r"'oops' is not a model record"):
        parse_model_record("oops")
    with pytest.raises(ValueError, match=r"holds unknown settings colour"):
        parse_model_record(json.dumps({"model_package_arn": ARN, "colour": "red"}))


def test_recorded_models_are_pinned_into_cdk_json_and_win():
    old = ARN.replace("/3", "/1")
    document = cdk_json(dev={}, staging={"model_package_arn": old, "model_baseline_prefix": "artifacts/x/"}, prod={})
    records = {
        "dev": {"model_package_arn": ARN},
        "staging": {"model_package_arn": ARN, "model_baseline_prefix": BASELINE},
        "prod": None,
    }
    pinned, notes = pin_models(document, records)
    assert pinned["context"]["environments"] == {
        "dev": {"model_package_arn": ARN},
        "staging": {"model_package_arn": ARN, "model_baseline_prefix": BASELINE},
        "prod": {},
    }
    assert notes == [
        f"dev: model_package_arn unset -> {ARN} (recorded by the model pipeline)",
        f"staging: model_package_arn {old} -> {ARN} (recorded by the model pipeline)",
        f"staging: model_baseline_prefix artifacts/x/ -> {BASELINE} (recorded by the model pipeline)",
    ]
    assert document["context"]["environments"]["dev"] == {}, "the input is not changed"


def test_pinning_notes_records_of_unknown_environments_and_needs_the_environments():
    assert pin_models(cdk_json(dev={}), {"qa": {"model_package_arn": ARN}}) == (
        cdk_json(dev={}),
        [f"qa: recorded {ARN}, but cdk.json has no such environment; skipped"],
    )
    with pytest.raises(ValueError, match=r"cdk.json has no context.environments map of environments"):
        pin_models({"context": {}}, {})


def test_a_good_inference_answer_passes():
    assert check_inference(["1,2", "3,4"], "0.9\n0.1\n", [120.0, 80.0, 95.0], max_latency_ms=500) == []
    assert check_inference(["1,2", "3,4"], "0.9,0.1", [10.0], max_latency_ms=500) == []


def test_inference_problems_are_each_named():
    problems = check_inference(["1,2", "3,4"], "0.9\nabc\nnan\n", [100.0] * 9 + [900.0], max_latency_ms=500)
    assert problems == [
        "the response holds 3 prediction(s) for 2 request row(s)",
        "the response holds non-numeric prediction(s): 'abc', 'nan'",
    ]
    assert check_inference(["1"], "0.5", [100.0, 600.0], max_latency_ms=500) == ["p90 latency 600 ms exceeds 500 ms"]
    assert check_inference([], "", [], max_latency_ms=1) == [
        "the sample payload has no rows",
        "no timed invocation",
    ]


# ------------------------------------------------------------------------------------------ commands on moto


@pytest.fixture
def aws(aws_env: None) -> Iterator[None]:
    with mock_aws():
        yield


ROLE = "arn:aws:iam::123456789012:role/cdk-mlops-staging-delivery"
RECORD = "/cdk-mlops/delivery/staging/training/p/fingerprint"


def retrain(fingerprint: str) -> int:
    return steps.main(
        [
            "retrain",
            "--environment",
            "staging",
            "--region",
            TEST_REGION,
            "--role-arn",
            ROLE,
            "--record",
            RECORD,
            "--fingerprint",
            fingerprint,
            "--pipeline",
            "p",
            "--dataset",
            "churn",
        ]
    )


def retrain_requests() -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=TEST_REGION)
    url = sqs.get_queue_url(QueueName="trigger")["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_retrain_step_records_a_baseline_then_requests_a_run_only_when_the_code_changed(aws, capsys):
    # GIVEN a trigger queue behind a rule on manual retrain requests (what RetrainTrigger defines)
    sqs = boto3.client("sqs", region_name=TEST_REGION)
    queue = sqs.create_queue(QueueName="trigger")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = boto3.client("events", region_name=TEST_REGION)
    events.put_rule(Name="requested", EventPattern=json.dumps({"source": ["cdk-mlops.retrain"]}))
    events.put_targets(Rule="requested", Targets=[{"Id": "q", "Arn": arn}])
    ssm = boto3.client("ssm", region_name=TEST_REGION)

    # WHEN the first deployment runs the step: a baseline, no request
    assert retrain(OLD) == 0
    assert ssm.get_parameter(Name=RECORD)["Parameter"]["Value"] == OLD
    assert retrain_requests() == []
    # WHEN a deployment without ML changes runs it: nothing
    assert retrain(OLD) == 0
    assert retrain_requests() == []
    # WHEN the ML code changed: one request, and the new fingerprint is recorded
    assert retrain(NEW) == 0
    requests = retrain_requests()
    assert [r["detail-type"] for r in requests] == ["Manual Retrain"]
    assert requests[0]["detail"]["dataset"] == "churn"
    assert ssm.get_parameter(Name=RECORD)["Parameter"]["Value"] == NEW
    out = capsys.readouterr().out
    assert "staging/p: baseline:" in out
    assert "staging/p: skip: ML code unchanged" in out
    assert "staging/p: requested one training run on the current churn version" in out


def test_pin_models_command_rewrites_cdk_json_from_the_records(aws, tmp_path, capsys):
    ssm = boto3.client("ssm", region_name=TEST_REGION)
    ssm.put_parameter(Name="/r/dev/model", Value=model_record({"model_package_arn": ARN}), Type="String")
    ssm.put_parameter(Name="/r/prod/model", Value="none", Type="String")
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps(cdk_json(dev={}, prod={})))
    records = ["--record", "dev=/r/dev/model", "--record", "prod=/r/prod/model"]
    assert steps.main(["pin-models", "--cdk-json", str(path), *records]) == 0
    assert json.loads(path.read_text())["context"]["environments"] == {"dev": {"model_package_arn": ARN}, "prod": {}}
    assert steps.main(["pin-models", "--cdk-json", str(path), *records]) == 0
    assert capsys.readouterr().out.endswith("every environment already runs what cdk.json says\n")


def test_verify_names_what_is_missing_and_records_nothing(aws, capsys):
    code = steps.main(
        [
            "verify",
            "--environment",
            "dev",
            "--region",
            TEST_REGION,
            "--stack",
            "Dev-Data:BucketName",
            "--revision-record",
            "/r/dev/source-revision",
            "--revision",
            "git:0123abcd",
        ]
    )
    assert code == 1
    assert "  - stack Dev-Data does not exist" in capsys.readouterr().err
    with pytest.raises(boto3.client("ssm", region_name=TEST_REGION).exceptions.ParameterNotFound):
        boto3.client("ssm", region_name=TEST_REGION).get_parameter(Name="/r/dev/source-revision")


def test_verify_passes_a_deployed_environment_and_records_its_revision(aws, capsys):
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"TopicArn": {"Value": {"Ref": "Topic"}}},
    }
    boto3.client("cloudformation", region_name=TEST_REGION).create_stack(
        StackName="Dev-Data", TemplateBody=json.dumps(template)
    )
    args = ["verify", "--environment", "dev", "--region", TEST_REGION, "--stack", "Dev-Data:TopicArn"]
    args += ["--revision-record", "/r/dev/source-revision", "--revision", "git:0123abcd"]
    assert steps.main(args) == 0
    value = boto3.client("ssm", region_name=TEST_REGION).get_parameter(Name="/r/dev/source-revision")["Parameter"]
    assert value["Value"] == "git:0123abcd"
    assert "dev: 1 stack(s) complete with their outputs" in capsys.readouterr().out


def test_select_model_prints_the_newest_approved_package(aws, capsys):
    sagemaker = boto3.client("sagemaker", region_name=TEST_REGION)
    sagemaker.create_model_package_group(ModelPackageGroupName="churn-models")
    for status in ("Approved", "Approved", "PendingManualApproval"):
        sagemaker.create_model_package(ModelPackageGroupName="churn-models", ModelApprovalStatus=status)
    args = ["select-model", "--group", "churn-models", "--region", TEST_REGION]
    assert steps.main([*args, "--environment", "dev", "--record", "/r/dev/model"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith("export MODEL_PACKAGE_ARN=arn:aws:sagemaker:")
    assert lines[0].endswith(":model-package/churn-models/2")
    assert lines[1:] == [  # moto's packages have no drift-check baseline and no model archive
        "export MODEL_BASELINE_PREFIX=none",
        "export MODEL_SOURCE_BUCKET=none",
        "export MODEL_BASELINES=none",
        "export DELIVER=true",
    ]
    assert "promote" in captured.err


def select_model(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[dict[str, str], str]:
    """What Select exports for staging (the first environment here), and what it says why."""
    args = ["select-model", "--group", "churn-models", "--region", TEST_REGION]
    assert steps.main([*args, "--environment", "staging", "--record", "/r/staging/model", *extra]) == 0
    captured = capsys.readouterr()
    exported = dict(line.removeprefix("export ").split("=", 1) for line in captured.out.splitlines())
    return exported, captured.err


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)
    return out.stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[Path, str]:
    """A clone as CodeBuild gets it: the reviewed revision, then a newer commit on top."""
    repo = tmp_path / "src"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "ci@example.com")
    git(repo, "config", "user.name", "ci")
    (repo / "cdk.json").write_text(json.dumps(cdk_json(staging={}), indent=2))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "deployed to staging")
    reviewed = git(repo, "rev-parse", "HEAD")
    (repo / "unreviewed.txt").write_text("not yet approved")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "newer, not deployed")
    return repo, reviewed


def deploy_model(repo: Path, arn: str = ARN) -> int:
    return steps.main(
        [
            "deploy-model",
            "--environment",
            "staging",
            "--model-package-arn",
            arn,
            "--model-baseline-prefix",
            BASELINE,
            "--model-source-bucket",
            "dev-store",
            "--record",
            "/r/staging/model",
            "--revision-record",
            "/r/staging/source-revision",
            "--install",
            "true",
            "--deploy",
            "cp cdk.json deployed.json; test ! -e unreviewed.txt",
            "--workdir",
            str(repo),
        ]
    )


def test_deploy_model_deploys_the_reviewed_revision_with_the_model_and_records_it(aws, checkout, capsys):
    repo, reviewed = checkout
    ssm = boto3.client("ssm", region_name=TEST_REGION)
    ssm.put_parameter(Name="/r/staging/source-revision", Value=f"git:{reviewed}", Type="String")
    # WHEN the staging deploy step runs for an approved package
    assert deploy_model(repo) == 0
    # THEN it deployed the revision the platform pipeline had deployed, with the model settings
    assert git(repo, "rev-parse", "HEAD") == reviewed
    deployed = json.loads((repo / "deployed.json").read_text())["context"]["environments"]["staging"]
    expected = {"model_package_arn": ARN, "model_baseline_prefix": BASELINE, "model_source_bucket": "dev-store"}
    assert deployed == expected
    record = parse_model_record(ssm.get_parameter(Name="/r/staging/model")["Parameter"]["Value"])
    assert record == expected
    # WHEN it runs again for the same package: nothing to do
    (repo / "deployed.json").unlink()
    assert deploy_model(repo) == 0
    assert not (repo / "deployed.json").exists()
    assert "keep staging as it is (it already runs the newest approved version 3)" in capsys.readouterr().out


def test_a_repeated_approval_event_starts_no_second_delivery(aws, checkout, capsys):
    repo, reviewed = checkout
    ssm = boto3.client("ssm", region_name=TEST_REGION)
    ssm.put_parameter(Name="/r/staging/source-revision", Value=f"git:{reviewed}", Type="String")
    sagemaker = boto3.client("sagemaker", region_name=TEST_REGION)
    sagemaker.create_model_package_group(ModelPackageGroupName="churn-models")
    sagemaker.create_model_package(ModelPackageGroupName="churn-models", ModelApprovalStatus="Approved")
    # GIVEN the run the approval started: Select chose the package and the first environment deployed it
    first, _ = select_model(capsys)
    assert first["DELIVER"] == "true"
    assert deploy_model(repo, first["MODEL_PACKAGE_ARN"]) == 0
    capsys.readouterr()
    # WHEN SageMaker sends another state change for the same package (the rule starts a second run)
    second, why = select_model(capsys)
    # THEN that run delivers nothing: every environment's stage is skipped
    assert second == {**first, "DELIVER": "false"}
    assert f"{first['MODEL_PACKAGE_ARN']} is already delivered (staging runs it); this run delivers nothing" in why
    # WHEN a person starts the pipeline to deliver it again (REDELIVER=true), it does
    again, why = select_model(capsys, "--redeliver", "true")
    assert again == first
    assert "delivering it again, as asked" in why
    # WHEN a newer package is approved, its run delivers it
    sagemaker.create_model_package(ModelPackageGroupName="churn-models", ModelApprovalStatus="Approved")
    third, _ = select_model(capsys)
    assert third["DELIVER"] == "true"
    assert third["MODEL_PACKAGE_ARN"].endswith("/churn-models/2")


def test_select_refuses_a_redeliver_value_other_than_true_or_false(aws, capsys):
    args = ["select-model", "--group", "g", "--region", TEST_REGION, "--environment", "dev", "--record", "/r"]
    assert steps.main([*args, "--redeliver", "yes"]) == 1
    assert capsys.readouterr().err == "FAIL: REDELIVER is 'yes'; start the pipeline with true or false\n"


def test_deploy_model_refuses_an_environment_the_platform_never_deployed(aws, checkout, capsys):
    repo, _ = checkout
    assert deploy_model(repo) == 1
    assert "the platform pipeline must deploy the environment once" in capsys.readouterr().err
    with pytest.raises(boto3.client("ssm", region_name=TEST_REGION).exceptions.ParameterNotFound):
        boto3.client("ssm", region_name=TEST_REGION).get_parameter(Name="/r/staging/model")


def endpoint_test(*extra: str) -> int:
    args = ["endpoint-test", "--environment", "staging", "--region", TEST_REGION, "--endpoint", "churn-staging"]
    args += ["--bucket-stack", "Staging-Data", "--bucket-logical-id", "Bucket", "--key", "artifacts/sample.csv"]
    return steps.main([*args, "--invocations", "2", *extra])


def test_endpoint_test_sends_the_sample_and_checks_the_answer(aws, capsys):
    # GIVEN the data stack's bucket holding a two-row sample, and an endpoint answering one number per row
    template = {"Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}}}
    cfn = boto3.client("cloudformation", region_name=TEST_REGION)
    cfn.create_stack(StackName="Staging-Data", TemplateBody=json.dumps(template))
    bucket = cfn.describe_stack_resource(StackName="Staging-Data", LogicalResourceId="Bucket")
    name = bucket["StackResourceDetail"]["PhysicalResourceId"]
    # WHEN the sample is missing
    assert endpoint_test() == 1
    assert f"no sample request at s3://{name}/artifacts/sample.csv" in capsys.readouterr().err
    # WHEN it is there, and the endpoint answers
    boto3.client("s3", region_name=TEST_REGION).put_object(Bucket=name, Key="artifacts/sample.csv", Body=b"1,2\n3,4\n")
    results: dict[str, Any] = {"region": TEST_REGION, "results": [{"Body": "0.9\n0.1", "ContentType": "text/csv"}]}
    requests.post("http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results", json=results, timeout=5)
    assert endpoint_test("--max-latency-ms", "60000") == 0
    assert "churn-staging: 2 row(s) answered" in capsys.readouterr().out
