"""The handler with ``COMPARE_WITH_CHAMPION=false`` (a scoring pipeline): data parameters only, no lookup.

The moto world is the one of ``world.py``; its group holds an approved package with a readable
evaluation, so a lookup, if it happened, would find a champion and send its parameters.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from cdk_mlops.lambdas.retrain_trigger import core
from cdk_mlops.lambdas.retrain_trigger import handler as handler_module
from cdk_mlops.lambdas.retrain_trigger.settings import Settings
from tests.handlers.retrain_trigger.conftest import BUCKET, DATASET, PIPELINE, load_event, sqs_record, status_change
from tests.handlers.retrain_trigger.world import Aws, auc

DATA_PARAMETERS = ["InputManifestUri", "ManifestSha256", "DataVersion", "TriggerReason"]


@pytest.fixture
def scoring(aws: Aws) -> Aws:
    """The world configured as BatchInference configures its trigger, with a champion that must not be read."""
    aws.register(auc(0.91))
    aws.env(COMPARE_WITH_CHAMPION="false", MODE="QUIET_PERIOD", QUIET_PERIOD_SECONDS=60)
    aws.monkeypatch.delenv("MODEL_PACKAGE_GROUP_NAME")
    registry_calls: list[str] = []
    client = handler_module._sagemaker()
    for name in ("list_model_packages", "describe_model_package"):
        real = getattr(client, name)

        def spy(*args: Any, _name: str = name, _real: Any = real, **kwargs: Any) -> Any:
            registry_calls.append(_name)
            return _real(*args, **kwargs)

        aws.monkeypatch.setattr(client, name, spy)
    aws.registry_calls = registry_calls  # type: ignore[attr-defined]
    return aws


def test_a_new_data_version_starts_exactly_one_run_with_its_manifest_and_no_champion(scoring: Aws) -> None:
    # GIVEN a drop of three objects
    records = [sqs_record(event) for event in scoring.drop("2025-03-04", n=3, marker=False)]

    # WHEN its events arrive and the quiet period passes
    assert scoring.invoke(records) == []
    assert scoring.executions() == []
    assert scoring.deliver_checks() == []

    # THEN one execution scores the manifest of exactly those objects
    [execution] = scoring.executions()
    manifest = scoring.manifest(execution)
    assert len(manifest.entries) == 3
    params = scoring.parameters(execution)
    assert params["ManifestSha256"] == manifest.sha256
    assert params["InputManifestUri"].startswith(f"s3://{BUCKET}/manifests/{DATASET}/")
    assert params["DataVersion"].endswith(manifest.sha256[:12])
    # AND the request carries the data parameters only: no ChampionMetric, no BaselineConstraintsUri
    [start] = scoring.starts
    assert [p["Name"] for p in start["PipelineParameters"]] == DATA_PARAMETERS
    assert scoring.registry_calls == []  # type: ignore[attr-defined]

    # WHEN the execution ends and SQS redelivers the same records (same message ids)
    scoring.later(minutes=30)
    assert scoring.deliver(status_change(execution)) == []
    scoring.later(minutes=30)
    assert scoring.invoke(records) == []
    for _ in range(3):
        if scoring.sent_checks:
            assert scoring.deliver_checks() == []

    # THEN the version is not scored again
    assert scoring.executions() == [execution]
    assert len(scoring.starts) == 1


def test_a_manual_request_scores_the_current_version_again_without_champion(scoring: Aws) -> None:
    scoring.drop("2025-03-04", n=2, marker=False)
    request = load_event("manual_retrain.json")
    request["id"] = str(uuid.uuid4())

    # WHEN a person asks for a run of the dataset (the quiet period still applies)
    assert scoring.deliver(request) == []
    if not scoring.executions():
        assert scoring.deliver_checks() == []

    # THEN it starts once, on the dataset's current version, with the data parameters only
    [execution] = scoring.executions()
    assert scoring.parameters(execution)["TriggerReason"].startswith("manual")
    assert [p["Name"] for p in scoring.starts[0]["PipelineParameters"]] == DATA_PARAMETERS
    assert scoring.registry_calls == []  # type: ignore[attr-defined]


def test_settings_need_no_group_without_champion_and_still_need_one_with_it() -> None:
    base = {
        "PIPELINE_NAME": PIPELINE,
        "DATA_BUCKET": BUCKET,
        "DATASETS": DATASET,
        "STATE_TABLE": "state",
        "QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/q",
    }
    settings = Settings.from_env({**base, "COMPARE_WITH_CHAMPION": "false"})
    assert settings.compare_with_champion is False
    assert settings.model_package_group == ""
    with pytest.raises(KeyError, match="MODEL_PACKAGE_GROUP_NAME"):
        Settings.from_env(base)
    with pytest.raises(ValueError, match=r"COMPARE_WITH_CHAMPION='no': expected true or false"):
        Settings.from_env({**base, "COMPARE_WITH_CHAMPION": "no", "MODEL_PACKAGE_GROUP_NAME": "g"})
    assert Settings.from_env({**base, "MODEL_PACKAGE_GROUP_NAME": "g"}).compare_with_champion is True


def test_a_start_request_without_champion_names_only_declared_data_parameters() -> None:
    settings = core.Settings(
        pipeline_name=PIPELINE,
        data_bucket=BUCKET,
        datasets=(DATASET,),
        state_table="state",
        queue_url="q",
        model_package_group="",
        compare_with_champion=False,
    )
    request = core.start_request(
        settings,
        dataset=DATASET,
        digest="a" * 64,
        manifest_uri=f"s3://{BUCKET}/manifests/{DATASET}/m.json",
        created_at="2025-03-04T10:00:00+00:00",
        reason="new objects",
        champion=core.Champion(None, {}),
        key=f"{PIPELINE}|{'a' * 64}",
    )
    assert [p["Name"] for p in request["PipelineParameters"]] == DATA_PARAMETERS
