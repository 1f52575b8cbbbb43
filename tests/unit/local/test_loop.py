"""The closed loop's pure parts: the sample dataset, the handler's log, approval, the output."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any, ClassVar

import boto3
import pytest
from moto import mock_aws

from cdk_mlops.local.loop import (
    LABEL,
    Delivery,
    HandlerDecision,
    LoopError,
    approve,
    clock,
    decision_counts,
    discover,
    duration,
    parse_handler_log,
    render_delivery,
    sample_versions,
    short_arn,
)
from cdk_mlops.local.server import local_aws

EXECUTION = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/cdk-mlops-dev-training/execution/mj81i6d0t6kk"


@pytest.fixture(scope="module")
def versions():
    return sample_versions()


def rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode())))


def test_the_sample_dataset_is_the_same_bytes_on_every_run(versions):
    assert sample_versions() == versions


def test_version_1_is_four_files_of_100_rows_label_first(versions):
    v1, _ = versions
    assert sorted(v1.files) == ["part-0000.csv", "part-0001.csv", "part-0002.csv", "part-0003.csv"]
    assert v1.contents == v1.files
    for content in v1.files.values():
        table = rows(content)
        assert table[0][0] == LABEL
        assert len(table[0]) == 31
        assert len(table) == 101
        assert {row[0] for row in table[1:]} <= {"0", "1"}


def test_version_2_rewrites_one_file_and_adds_another(versions):
    v1, v2 = versions
    assert sorted(v2.files) == ["part-0003.csv", "part-0004.csv"]
    assert v2.files["part-0003.csv"] != v1.files["part-0003.csv"]
    assert v2.contents == {**v1.files, **v2.files}
    # every one of the 569 rows once, the rewritten file keeping its first 100 rows
    assert sum(len(rows(c)) - 1 for c in v2.contents.values()) == 569
    assert rows(v2.files["part-0003.csv"])[1:101] == rows(v1.files["part-0003.csv"])[1:]
    assert v2.bytes == sum(len(c) for c in v2.files.values())


def test_the_handlers_log_yields_its_decisions_and_errors_but_not_its_metrics():
    started = {"decision": "started", "reason": "new objects", "execution_arn": EXECUTION, "dataset": "churn"}
    ignored = {"decision": "ignored", "reason": "object in another bucket"}
    failed = {"decision": "failed", "reason": "ThrottlingException: slow down"}
    lines = [
        {"level": "INFO", "message": "retrain decision", **started},
        {"level": "INFO", "message": "ignored", **ignored},
        {"level": "ERROR", "message": "records failed and will be retried", **failed},
        {"_aws": {"CloudWatchMetrics": []}, "Decision": "started", "Decisions": 1},
    ]
    log = "\n".join([*map(json.dumps, lines), "not json"])
    decisions, errors = parse_handler_log(log)
    assert decisions == (
        HandlerDecision("started", "new objects", EXECUTION, "churn"),
        HandlerDecision("ignored", "object in another bucket"),
        HandlerDecision("failed", "ThrottlingException: slow down"),
    )
    assert errors == ["records failed and will be retried: ThrottlingException: slow down"]


def test_a_delivery_renders_as_one_line_with_short_execution_names():
    delivery = Delivery(
        at=timedelta(minutes=35, seconds=4),
        records=({"messageId": "1"},),
        events=("Retrain Check",),
        decisions=(HandlerDecision("pending", f"pipeline busy: {EXECUTION} holds the lock"),),
    )
    assert render_delivery(delivery) == (
        "",
        "t+0:35:04  1 record (1 Retrain Check) → pending: pipeline busy: execution/mj81i6d0t6kk holds the lock",
    )
    assert decision_counts([delivery, delivery]) == {"pending": 2}


def test_clock_and_short_arn():
    assert clock(timedelta(hours=1, minutes=15, seconds=3)) == "t+1:15:03"
    assert clock(timedelta(seconds=59.9)) == "t+0:00:59"
    assert duration(timedelta(minutes=15)) == "15:00"
    assert duration(timedelta(hours=1, seconds=3)) == "1:00:03"
    assert short_arn(EXECUTION) == "execution/mj81i6d0t6kk"
    assert short_arn("plain") == "plain"


@mock_aws
def test_approve_changes_a_pending_package_and_keeps_its_lineage():
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    sagemaker.create_model_package_group(ModelPackageGroupName="models")
    metadata = {"InputManifestUri": "s3://bucket/manifests/churn/a.json", "ManifestSha256": "ab" * 32}
    arn = sagemaker.create_model_package(
        ModelPackageGroupName="models",
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties=metadata,
    )["ModelPackageArn"]
    # WHEN approved THEN Approved, with the lineage metadata intact
    assert approve(sagemaker, arn, note="reviewed") is True
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["CustomerMetadataProperties"] == metadata
    # AND approving again changes nothing
    assert approve(sagemaker, arn, note="reviewed") is False


def test_without_a_deployed_stage_the_loop_says_what_to_do():
    with local_aws(install_shim=False) as aws, pytest.raises(LoopError, match=r"in the Dev stacks; deploy Dev first"):
        discover(aws)


# --- make demo: Demo's steps, in order ----------------------------------------------------------------


class _RecordingDemo:
    """Stands in for :class:`Demo` in :func:`run_demo`: records which step ran, fails where told."""

    calls: ClassVar[list[str]] = []
    fail_at: ClassVar[str | None] = None

    def __init__(self, aws: object, *, output: object, emit: object, show: object) -> None:
        self.states: list[object] = []
        self.timings = {"deploy": 1.0}

    def _step(self, name: str) -> str:
        self.calls.append(name)
        if name == self.fail_at:
            raise LoopError(f"{name} failed")
        return name

    def deploy(self) -> str:
        return self._step("deploy")

    def closed_loop(self, work_dir: object) -> str:
        return self._step("closed_loop")

    def fleet_loop(self) -> str:
        return self._step("fleet_loop")

    def destroy(self) -> str:
        return self._step("destroy")

    def close(self) -> None:
        self.calls.append("close")


@pytest.fixture
def recording_demo(monkeypatch: pytest.MonkeyPatch) -> type[_RecordingDemo]:
    from cdk_mlops.local import loop

    monkeypatch.setattr(_RecordingDemo, "calls", [])
    monkeypatch.setattr(_RecordingDemo, "fail_at", None)
    monkeypatch.setattr(loop, "Demo", _RecordingDemo)
    return _RecordingDemo


def test_make_demo_deploys_runs_the_closed_loop_then_the_fleet_loop_then_destroys(recording_demo, tmp_path):
    from cdk_mlops.local.loop import run_demo

    ran = run_demo(object(), output=tmp_path, emit=lambda *_: None, show=lambda _: None)  # type: ignore[arg-type]
    assert recording_demo.calls == ["deploy", "closed_loop", "fleet_loop", "destroy", "close"]
    loop_report: Any = ran.loop
    fleet_report: Any = ran.fleet
    assert (loop_report, fleet_report, ran.timings) == ("closed_loop", "fleet_loop", {"deploy": 1.0})


def test_a_failed_loop_stops_the_demo_and_still_reattaches_the_pollers(recording_demo, tmp_path):
    from cdk_mlops.local.loop import run_demo

    recording_demo.fail_at = "closed_loop"
    with pytest.raises(LoopError, match="closed_loop failed"):
        run_demo(object(), output=tmp_path, emit=lambda *_: None, show=lambda _: None)  # type: ignore[arg-type]
    assert recording_demo.calls == ["deploy", "closed_loop", "close"]


def test_the_fleet_loop_before_the_deploy_names_the_step_to_run_first(tmp_path):
    from cdk_mlops.local.loop import Demo

    with pytest.raises(LoopError, match=r"Demo\.deploy\(\) first"):
        Demo(object(), output=tmp_path).fleet_loop()  # type: ignore[arg-type]
