"""The local runner on the batch scoring definition: Model from a package, PrepareInput's script, Transform emulated."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cdk_mlops import datasets
from cdk_mlops.lambdas.retrain_trigger import core
from cdk_mlops.local.pipeline_run import StepFailed, run_execution
from cdk_mlops.ml import PREPARE_BATCH_SCRIPT, TRAIN_SCRIPT, prepare_batch
from cdk_mlops.pipeline_definition import ScriptSource
from cdk_mlops.pipeline_definition import scoring as sd

BUCKET = "scoring-data"
EXECUTION = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/churn-scoring/execution/run42"
ROWS = [(i % 2, float(i), float(i % 7)) for i in range(40)]


def _csv(rows: list[tuple[int, float, float]], *, header: bool) -> bytes:
    lines = ["label,f1,f2"] if header else []
    lines += [f"{label},{a},{b}" for label, a, b in rows]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str, datasets.Manifest]]:
    """A local AWS with a dataset version, its manifest, the script, and an approved package of a local model."""
    from cdk_mlops.local.server import local_aws

    work = tmp_path_factory.mktemp("model")
    (work / "train").mkdir()
    (work / "train" / "train.csv").write_bytes(_csv(ROWS, header=False))
    subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), "--train", str(work / "train"), "--model-dir", str(work / "model")],
        check=True,
        capture_output=True,
    )
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        tar.add(work / "model" / "model.joblib", arcname="model.joblib")
    with local_aws(install_shim=False) as aws:
        s3 = aws.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket=BUCKET, Key="datasets/churn/part-0.csv", Body=_csv(ROWS[:25], header=True))
        s3.put_object(Bucket=BUCKET, Key="datasets/churn/part-1.csv", Body=_csv(ROWS[25:], header=True))
        s3.put_object(Bucket=BUCKET, Key="datasets/churn/_SUCCESS", Body=b"")
        s3.put_object(Bucket=BUCKET, Key="code/prepare_batch.py", Body=PREPARE_BATCH_SCRIPT.read_bytes())
        s3.put_object(Bucket=BUCKET, Key="artifacts/churn-training/run1/model.tar.gz", Body=archive.getvalue())
        manifest = datasets.write_manifest(datasets.build_manifest(BUCKET, "churn", s3=s3), s3=s3, format="single")
        sagemaker = aws.client("sagemaker")
        sagemaker.create_model_package_group(ModelPackageGroupName="churn-models")
        package = sagemaker.create_model_package(
            ModelPackageGroupName="churn-models",
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                        "ModelDataUrl": f"s3://{BUCKET}/artifacts/churn-training/run1/model.tar.gz",
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )["ModelPackageArn"]
        yield aws, package, manifest


def definition(package: str, *, capture: bool = True) -> dict[str, Any]:
    return sd.build_scoring_definition(
        sd.ScoringSpec(
            name="churn-scoring",
            role_arn="arn:aws:iam::123456789012:role/scoring-jobs",
            bucket_name=BUCKET,
            kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            model_package_arn=package,
            prepare_script=ScriptSource(s3_uri=f"s3://{BUCKET}/code/prepare_batch.py", file_name="prepare_batch.py"),
            processing_image_uri="141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
            default_input_manifest_uri=f"s3://{BUCKET}/manifests/churn/start-with-InputManifestUri",
            label_column="label",
            rows_per_file=30,
            capture=capture,
        )
    )


def trigger_parameters(manifest: datasets.Manifest) -> dict[str, str]:
    return {
        "InputManifestUri": manifest.uri or "",
        "ManifestSha256": manifest.sha256,
        "DataVersion": core.data_version(manifest.created_at, manifest.sha256),
        "TriggerReason": "new objects",
    }


def test_a_scoring_run_predicts_every_row_next_to_its_lineage(local, tmp_path):
    aws, package, manifest = local
    s3 = aws.client("s3")
    parameters = trigger_parameters(manifest)

    run = run_execution(aws, definition(package), execution_arn=EXECUTION, parameters=parameters, work_dir=tmp_path)

    assert [(s.name, s.type, s.outcome) for s in run.steps] == [
        ("Model", "Model", "ran"),
        ("PrepareInput", "Processing", "ran"),
        ("Transform", "Transform", "ran"),
    ]
    # The model is the package's container, created in the local SageMaker.
    model = aws.client("sagemaker").describe_model(ModelName="pipelines-run42-Model")
    assert model["PrimaryContainer"]["ModelDataUrl"].endswith("run1/model.tar.gz")
    prefix = f"batch-output/churn-scoring/{parameters['DataVersion']}/run42/"
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"])
    # Batch Transform names each output after its input file, relative to the input prefix.
    assert [k.removeprefix(prefix) for k in keys] == [
        "input/part-00000.csv",
        "input/part-00001.csv",
        "lineage.json",
        "part-00000.csv.out",
        "part-00001.csv.out",
    ]
    # One prediction per input line, a probability; the label was dropped from the input.
    features = s3.get_object(Bucket=BUCKET, Key=f"{prefix}input/part-00000.csv")["Body"].read().decode()
    assert features.splitlines()[0] == "0.0,0.0"
    predictions = [
        float(line)
        for key in keys
        if key.endswith(".out")
        for line in s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines()
    ]
    assert len(predictions) == len(ROWS)
    assert all(0.0 <= p <= 1.0 for p in predictions)
    lineage = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{prefix}lineage.json")["Body"].read())
    assert lineage["ModelPackageArn"] == package
    assert lineage["InputManifestUri"] == manifest.uri
    assert lineage["ManifestSha256"] == manifest.sha256
    assert lineage["DataVersion"] == parameters["DataVersion"]
    assert lineage["PipelineExecutionArn"] == EXECUTION
    assert lineage["Rows"] == len(ROWS)
    assert lineage["DroppedLabelColumn"] == "label"
    assert lineage["OutputUri"] == f"s3://{BUCKET}/{prefix}".rstrip("/")
    # The capture holds the inputs and outputs of the transform.
    captured = s3.list_objects_v2(Bucket=BUCKET, Prefix="batch-capture/churn-scoring/")["Contents"]
    assert sorted(o["Key"].split("/")[2] for o in captured) == ["input"] * 2 + ["output"] * 2


def test_a_run_started_for_another_manifest_digest_fails_at_prepare_input(local, tmp_path):
    aws, package, manifest = local
    parameters = {**trigger_parameters(manifest), "ManifestSha256": "0" * 64}
    with pytest.raises(StepFailed, match=r"(?s)step PrepareInput exited with 1:.*was started for '0000"):
        run_execution(aws, definition(package), execution_arn=EXECUTION, parameters=parameters, work_dir=tmp_path)


def test_prepare_batch_digest_is_the_librarys_and_its_file_name_the_definitions():
    entries = [datasets.ManifestEntry("datasets/churn/a.csv", "v1", "e1", 3)]
    as_dicts = [{"key": e.key, "etag": e.etag, "size": e.size} for e in entries]
    assert prepare_batch.manifest_digest("churn", as_dicts) == datasets.manifest_digest("churn", entries)
    assert prepare_batch.LINEAGE_FILE == sd.LINEAGE_FILE
    assert prepare_batch.UNVERIFIED_SHA256 == "unverified"


def test_prepare_batch_refuses_inconsistent_headers(tmp_path: Path):
    objects = iter([("a.csv", b"f1,f2\n1,2\n"), ("b.csv", b"f2,f1\n3,4\n")])
    with pytest.raises(prepare_batch.DataError, match=r"b.csv: its header \['f2', 'f1'\] differs"):
        prepare_batch.write_features(objects, tmp_path, None, 10)
