"""The local pipeline runner's pure parts: expressions resolved as SageMaker Pipelines does, S3 transfer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdk_mlops import pipeline_definition as pd
from cdk_mlops.local.pipeline_run import (
    ExpressionError,
    Resolver,
    StepFailed,
    download,
    find_step,
    iter_steps,
    run_execution,
    upload,
)
from cdk_mlops.pipeline_definition import build_pipeline_definition
from cdk_mlops.pipeline_definition.steps import s3_output
from tests.unit.test_pipeline_definition import make_spec

EXECUTION = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/churn-training/execution/abc123"
MANIFEST = "s3://data-bucket/manifests/churn/20250304T101530Z-0123456789abcdef.json"
TRIGGER = {
    pd.INPUT_MANIFEST_URI: MANIFEST,
    pd.MANIFEST_SHA256: "0123456789abcdef" * 4,
    pd.DATA_VERSION: "20250304T101530Z-0123456789ab",
    pd.TRIGGER_REASON: "new objects; quiet for 15 min",
}
EVALUATE_OUTPUT = f"Steps.{pd.EVALUATE}.ProcessingOutputConfig.Outputs['{pd.OUTPUT_EVALUATION}'].S3Output.S3Uri"


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return build_pipeline_definition(make_spec())


@pytest.fixture
def resolver(definition) -> Resolver:
    return Resolver(definition, parameters=TRIGGER, execution_arn=EXECUTION)


def expressions(value: Any) -> Iterator[dict[str, Any]]:
    """Every expression left in a value."""
    if isinstance(value, dict):
        if set(value) & {"Get", "Std:Join", "Std:JsonGet"}:
            yield value
        for item in value.values():
            yield from expressions(item)
    elif isinstance(value, list):
        for item in value:
            yield from expressions(item)


def test_parameters_are_the_executions_values_then_the_declared_defaults_typed(definition):
    resolver = Resolver(definition, parameters={**TRIGGER, pd.CHAMPION_METRIC: "0.91"}, execution_arn=EXECUTION)
    assert resolver.get(f"Parameters.{pd.INPUT_MANIFEST_URI}") == MANIFEST
    assert resolver.get(f"Parameters.{pd.CHAMPION_METRIC}") == 0.91
    assert resolver.get(f"Parameters.{pd.TRAINING_INSTANCE_COUNT}") == 1
    assert resolver.get(f"Parameters.{pd.MODEL_APPROVAL_STATUS}") == "PendingManualApproval"
    assert resolver.get(f"Parameters.{pd.BASELINE_CONSTRAINTS_URI}") == ""


def test_execution_variables_come_from_the_execution_arn(resolver):
    assert resolver.get("Execution.PipelineExecutionArn") == EXECUTION
    assert resolver.get("Execution.PipelineExecutionId") == "abc123"
    assert resolver.get("Execution.PipelineName") == "churn-training"


def test_a_processing_output_uri_resolves_through_the_step_that_declares_it(resolver):
    assert resolver.get(EVALUATE_OUTPUT) == "s3://artifacts-bucket/pipeline/abc123/evaluate"


def test_std_join_renders_numbers_and_booleans_as_the_service_does(resolver):
    joined = {"Std:Join": {"On": "=", "Values": ["--champion", {"Get": f"Parameters.{pd.CHAMPION_METRIC}"}, True]}}
    assert resolver.resolve(joined) == "--champion=0.0=true"


def test_register_arguments_resolve_to_the_request_with_the_lineage_metadata(definition, resolver):
    # GIVEN the training step's artifact is known (the runner records it after training)
    model = "s3://artifacts-bucket/pipeline/abc123/train/pipelines-abc123-Train/output/model.tar.gz"
    resolver.properties[f"Steps.{pd.TRAIN}.ModelArtifacts.S3ModelArtifacts"] = model
    # WHEN
    request = resolver.resolve(find_step(definition, "RegisterModel")["Arguments"])
    # THEN no expression is left, and the lineage keys are those of pipeline_definition
    assert list(expressions(request)) == []
    metadata = request["CustomerMetadataProperties"]
    assert tuple(metadata) == pd.LINEAGE_METADATA_KEYS
    assert metadata[pd.INPUT_MANIFEST_URI] == MANIFEST
    assert metadata[pd.MANIFEST_SHA256] == TRIGGER[pd.MANIFEST_SHA256]
    assert metadata[pd.DATA_VERSION] == TRIGGER[pd.DATA_VERSION]
    assert metadata[pd.METADATA_EXECUTION_ARN] == EXECUTION
    assert metadata[pd.METADATA_EVALUATION_METRIC] == "binary_classification_metrics.auc.value"
    quality = request["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    assert quality == "s3://artifacts-bucket/pipeline/abc123/evaluate/evaluation.json"
    assert request["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == model
    assert request["ModelPackageDescription"] == TRIGGER[pd.TRIGGER_REASON]


@pytest.mark.parametrize(
    ("auc", "champion", "improvement", "passes"),
    [
        (0.95, "0", 0.95, True),  # no champion: the threshold alone
        (0.6, "0", 0.6, False),  # below the 0.7 threshold
        (0.95, "0.9", 0.05, True),  # beats the champion
        (0.85, "0.9", -0.05, False),  # worse than the champion
    ],
)
def test_the_gate_conditions_evaluate_against_the_property_files(definition, auc, champion, improvement, passes):
    resolver = Resolver(definition, parameters={**TRIGGER, pd.CHAMPION_METRIC: champion}, execution_arn=EXECUTION)
    resolver.property_files[(pd.EVALUATE, pd.EVALUATION_PROPERTY_FILE)] = {
        "binary_classification_metrics": {"auc": {"value": auc}}
    }
    resolver.property_files[(pd.EVALUATE, pd.COMPARISON_PROPERTY_FILE)] = {"improvement": improvement}
    gate = find_step(definition, "Condition")
    assert all(resolver.condition(c) for c in gate["Arguments"]["Conditions"]) is passes


def test_not_and_in_conditions(resolver):
    approval = {"Get": f"Parameters.{pd.MODEL_APPROVAL_STATUS}"}
    assert resolver.condition({"Type": "In", "QueryValue": approval, "Values": ["PendingManualApproval"]})
    assert resolver.condition(
        {"Type": "Not", "Condition": {"Type": "Equals", "LeftValue": approval, "RightValue": "x"}}
    )


def test_what_cannot_be_resolved_is_named(resolver):
    with pytest.raises(ExpressionError, match=r"Steps\.Train\.ModelArtifacts\.S3ModelArtifacts"):
        resolver.get(f"Steps.{pd.TRAIN}.ModelArtifacts.S3ModelArtifacts")
    with pytest.raises(ExpressionError, match="was not produced by a step that ran"):
        resolver.resolve(pd.json_get(pd.EVALUATE, pd.EVALUATION_PROPERTY_FILE, "a.b"))
    resolver.property_files[(pd.EVALUATE, pd.EVALUATION_PROPERTY_FILE)] = {"a": {}}
    with pytest.raises(ExpressionError, match=r"has no 'a\.b'"):
        resolver.resolve(pd.json_get(pd.EVALUATE, pd.EVALUATION_PROPERTY_FILE, "a.b"))
    with pytest.raises(ExpressionError, match="condition type 'Xor'"):
        resolver.condition({"Type": "Xor"})


def test_steps_include_the_condition_branches(definition):
    names = [step["Name"] for step in iter_steps(definition["Steps"])]
    assert names == list(pd.STEP_NAMES)
    with pytest.raises(LookupError, match="no Transform step"):
        find_step(definition, "Transform")


@mock_aws
def test_download_and_upload_follow_processing_input_and_output_paths(tmp_path: Path):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="bucket")
    s3.put_object(Bucket="bucket", Key="run/test/test.csv", Body=b"1,2\n")
    s3.put_object(Bucket="bucket", Key="run/test/sub/more.csv", Body=b"3,4\n")
    s3.put_object(Bucket="bucket", Key="code/abc.py", Body=b"print()\n")
    # A prefix lands below the local path; an exact key lands under its own name.
    assert sorted(p.relative_to(tmp_path).as_posix() for p in download(s3, "s3://bucket/run/test", tmp_path / "t")) == [
        "t/sub/more.csv",
        "t/test.csv",
    ]
    assert download(s3, "s3://bucket/code/abc.py", tmp_path / "code") == [tmp_path / "code" / "abc.py"]
    with pytest.raises(StepFailed, match="nothing is stored at s3://bucket/missing"):
        download(s3, "s3://bucket/missing", tmp_path / "m")
    assert upload(s3, tmp_path / "t", "s3://bucket/out/") == ["out/sub/more.csv", "out/test.csv"]
    assert s3.get_object(Bucket="bucket", Key="out/test.csv")["Body"].read() == b"1,2\n"


# --- running steps against a local AWS (no deployment) ---------------------------------------------------

_WRITE_REPORT = """
import json, pathlib, sys
out = pathlib.Path(sys.argv[sys.argv.index("--out") + 1])
data = pathlib.Path(sys.argv[sys.argv.index("--data") + 1])
rows = (data / "rows.csv").read_text().count("\\n")
(out / "report.json").write_text(json.dumps({"rows": rows, "threshold": float(sys.argv[-1].split("=")[1])}))
print(f"counted {rows} rows")
"""


def _processing(name: str, script_key: str, arguments: list[Any], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    code_dir = f"{pd.PROCESSING_ROOT}/input/code"
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {
                "ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/scripts:1",
                "ContainerEntrypoint": ["python3", f"{code_dir}/{script_key.rsplit('/', 1)[-1]}"],
                "ContainerArguments": arguments,
            },
            "ProcessingInputs": [
                {"InputName": "code", "S3Input": {"S3Uri": f"s3://bucket/{script_key}", "LocalPath": code_dir}},
                {
                    "InputName": "data",
                    "S3Input": {"S3Uri": "s3://bucket/data/", "LocalPath": f"{pd.PROCESSING_ROOT}/input/data"},
                },
            ],
            "ProcessingOutputConfig": {"Outputs": outputs},
        },
    }


_WRITE_HOST = """
import json, pathlib, sys
config = json.loads(pathlib.Path(sys.argv[sys.argv.index("--resource-config") + 1]).read_text())
out = pathlib.Path(sys.argv[sys.argv.index("--out") + 1])
rows = (pathlib.Path(sys.argv[sys.argv.index("--data") + 1]) / "rows.csv").read_text().count("\\n")
(out / f"{config['current_host']}.json").write_text(json.dumps({**config, "rows": rows}))
print(f"{config['current_host']} of {len(config['hosts'])}")
"""


@pytest.fixture(scope="module")
def local() -> Iterator[Any]:
    from cdk_mlops.local.server import local_aws

    with local_aws(install_shim=False) as aws:
        s3 = aws.client("s3")
        s3.create_bucket(Bucket="bucket")
        s3.put_object(Bucket="bucket", Key="data/rows.csv", Body=b"1,2\n3,4\n5,6\n")
        s3.put_object(Bucket="bucket", Key="code/report.py", Body=_WRITE_REPORT.encode())
        s3.put_object(Bucket="bucket", Key="code/boom.py", Body=b"print('about to fail')\nraise SystemExit(3)\n")
        s3.put_object(Bucket="bucket", Key="code/host.py", Body=_WRITE_HOST.encode())
        yield aws


def test_a_run_executes_scripts_uploads_outputs_and_follows_the_gate(local, tmp_path):
    output = {
        "OutputName": "report",
        "S3Output": {
            "S3Uri": {
                "Std:Join": {"On": "/", "Values": ["s3://bucket/runs", {"Get": "Execution.PipelineExecutionId"}]}
            },
            "LocalPath": f"{pd.PROCESSING_ROOT}/output/report",
        },
    }
    count = _processing(
        "Count",
        "code/report.py",
        [
            "--out",
            f"{pd.PROCESSING_ROOT}/output/report",
            "--data",
            f"{pd.PROCESSING_ROOT}/input/data",
            {"Std:Join": {"On": "", "Values": ["--threshold=", {"Get": "Parameters.Threshold"}]}},
        ],
        [output],
    )
    count["PropertyFiles"] = [{"PropertyFileName": "Report", "OutputName": "report", "FilePath": "report.json"}]
    baseline = {
        "Name": "Baseline",
        "Type": "Processing",
        "Arguments": {"AppSpecification": {"ImageUri": "123.dkr.ecr.us-east-1.amazonaws.com/analyzer"}},
    }
    rows = pd.json_get("Count", "Report", "rows")
    gate = {
        "Name": "Gate",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [pd.condition("GreaterThanOrEqualTo", rows, {"Get": "Parameters.Threshold"})],
            "IfSteps": [{"Name": "Register", "Type": "RegisterModel", "Arguments": {"Rows": rows}}],
            "ElseSteps": [{"Name": "Fail", "Type": "Fail", "Arguments": {"ErrorMessage": pd.join(["only ", rows])}}],
        },
    }
    definition = {
        "Version": pd.SCHEMA_VERSION,
        "Parameters": [{"Name": "Threshold", "Type": "Float", "DefaultValue": 2.0}],
        "Steps": [count, baseline, gate],
    }
    # WHEN it runs with the default threshold THEN the gate passes and Register gets the resolved rows
    run = run_execution(local, definition, execution_arn=EXECUTION, parameters={}, work_dir=tmp_path / "a")
    assert [(s.name, s.outcome) for s in run.steps] == [
        ("Count", "ran"),
        ("Baseline", "skipped"),
        ("Gate", "passed"),
        ("Register", "ran"),
    ]
    assert run.steps[0].detail == "counted 3 rows"
    assert run.steps[1].detail == "its image (analyzer) runs no script locally"
    assert run.register_arguments == {"Rows": 3}
    assert run.gate_passed
    assert run.property_files == {"Count.Report": {"rows": 3, "threshold": 2.0}}
    stored = local.client("s3").get_object(Bucket="bucket", Key="runs/abc123/report.json")["Body"].read()
    assert json.loads(stored) == {"rows": 3, "threshold": 2.0}
    # WHEN the execution's parameter raises the bar THEN the Fail step's message is resolved instead
    run = run_execution(
        local, definition, execution_arn=EXECUTION, parameters={"Threshold": "5"}, work_dir=tmp_path / "b"
    )
    assert run.register_arguments is None
    assert not run.gate_passed
    assert run.failure_message == "only 3"


def test_a_failing_script_stops_the_run_with_its_output(local, tmp_path):
    definition = {"Version": pd.SCHEMA_VERSION, "Steps": [_processing("Boom", "code/boom.py", [], [])]}
    with pytest.raises(StepFailed, match=r"(?s)step Boom exited with 3:.*about to fail"):
        run_execution(local, definition, execution_arn=EXECUTION, parameters={}, work_dir=tmp_path)


def test_a_job_of_several_instances_runs_once_per_host_each_naming_itself(local, tmp_path):
    # GIVEN a processing job of three instances whose script writes a file named by its host
    step = _processing(
        "Hosts",
        "code/host.py",
        ["--resource-config", pd.RESOURCE_CONFIG, "--out", f"{pd.PROCESSING_ROOT}/output/hosts",
         "--data", f"{pd.PROCESSING_ROOT}/input/data"],
        [s3_output("hosts", "s3://bucket/hosts/", f"{pd.PROCESSING_ROOT}/output/hosts")],
    )  # fmt: skip
    step["Arguments"]["ProcessingResources"] = {"ClusterConfig": {"InstanceCount": 3}}
    definition = {"Version": pd.SCHEMA_VERSION, "Steps": [step]}
    # WHEN it runs
    run = run_execution(local, definition, execution_arn=EXECUTION, parameters={}, work_dir=tmp_path)
    # THEN each host ran once, with the replicated input and its own resource config, and every
    # host's output reached the one prefix, as on SageMaker Processing
    assert run.steps[0].detail == "algo-1: algo-1 of 3 | algo-2: algo-2 of 3 | algo-3: algo-3 of 3"
    s3 = local.client("s3")
    hosts = ["algo-1", "algo-2", "algo-3"]
    for host in hosts:
        written = json.loads(s3.get_object(Bucket="bucket", Key=f"hosts/{host}.json")["Body"].read())
        assert written == {"current_host": host, "hosts": hosts, "rows": 3}


def test_a_sharded_processing_input_is_refused_not_replicated(local, tmp_path):
    step = _processing("Sharded", "code/host.py", [], [])
    step["Arguments"]["ProcessingInputs"][1]["S3Input"]["S3DataDistributionType"] = "ShardedByS3Key"
    definition = {"Version": pd.SCHEMA_VERSION, "Steps": [step]}
    with pytest.raises(StepFailed, match="input data is ShardedByS3Key, not emulated here"):
        run_execution(local, definition, execution_arn=EXECUTION, parameters={}, work_dir=tmp_path)
