"""Names and requests that two separately shipped pieces must agree on, checked against AWS's API models."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import botocore.session
import pytest
from botocore.model import ListShape, Shape, StructureShape
from botocore.validate import ParamValidator

from cdk_mlops import pipeline_definition as pd
from cdk_mlops.lambdas.retrain_trigger import PIPELINE_PARAMETER_NAMES, core
from tests.handlers.retrain_trigger.conftest import BUCKET, DATASET, PIPELINE
from tests.unit.test_pipeline_definition import make_spec

DIGEST = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
MANIFEST = f"s3://{BUCKET}/manifests/{DATASET}/20250304T101530Z-9f86d081884c.json"
#: Parameters whose defaults are chosen per environment at synth; a start may leave them alone.
SYNTH_TIME_DEFAULTS = frozenset(
    {pd.PROCESSING_INSTANCE_TYPE, pd.TRAINING_INSTANCE_TYPE, pd.TRAINING_INSTANCE_COUNT, pd.MODEL_APPROVAL_STATUS}
)
#: A champion as the handler reads it from a package the pipeline's Register step created.
CHAMPION = core.Champion(
    f"arn:aws:sagemaker:eu-west-1:123456789012:model-package/{PIPELINE}-models/7",
    {
        "ChampionMetric": "0.9312",
        "BaselineConstraintsUri": f"s3://{BUCKET}/artifacts/{PIPELINE}/k1x9xq0f2v3a/data-quality-baseline/"
        "constraints.json",
    },
)
FIRST_MODEL = core.Champion(None, {"ChampionMetric": "0.0"})


def test_every_parameter_the_trigger_sends_is_declared_by_the_pipeline():
    # StartPipelineExecution rejects parameters the definition does not declare.
    assert set(PIPELINE_PARAMETER_NAMES) <= set(pd.PARAMETER_NAMES)
    assert {"InputManifestUri", "ManifestSha256", "ChampionMetric", "BaselineConstraintsUri"} <= set(
        PIPELINE_PARAMETER_NAMES
    )


# --- StartPipelineExecution as the retrain handler builds it ---------------------------------------------


@pytest.fixture(scope="module")
def start_shape() -> StructureShape:
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model("StartPipelineExecution").input_shape
    assert shape is not None
    return shape


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return pd.build_pipeline_definition(make_spec())


def request(champion: core.Champion, *, reason: str = "new objects; quiet for 15 min") -> dict[str, Any]:
    settings = core.Settings.from_env(
        {
            "PIPELINE_NAME": PIPELINE,
            "DATA_BUCKET": BUCKET,
            "DATASETS": DATASET,
            "STATE_TABLE": "retrain-state",
            "QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/retrain-trigger",
            "MODEL_PACKAGE_GROUP_NAME": f"{PIPELINE}-models",
        }
    )
    return core.start_request(
        settings,
        dataset=DATASET,
        digest=DIGEST,
        manifest_uri=MANIFEST,
        created_at="2025-03-04T10:15:30.123456Z",
        reason=reason,
        champion=champion,
        key=f"{PIPELINE}|{DIGEST}",
    )


def pattern_violations(shape: Shape, value: Any, where: str = "") -> Iterator[str]:
    """Values that break a ``pattern`` of the model (botocore's validator checks types and lengths only)."""
    if isinstance(shape, StructureShape) and isinstance(value, Mapping):
        for name, member in shape.members.items():
            if name in value:
                yield from pattern_violations(member, value[name], f"{where}.{name}")
    elif isinstance(shape, ListShape) and isinstance(value, list):
        for index, item in enumerate(value):
            yield from pattern_violations(shape.member, item, f"{where}[{index}]")
    elif (
        shape.type_name == "string"
        and "pattern" in shape.metadata
        and re.fullmatch(shape.metadata["pattern"], value) is None
    ):
        yield f"{where}={value!r} does not match {shape.metadata['pattern']!r}"


@pytest.mark.parametrize("champion", [FIRST_MODEL, CHAMPION], ids=["first model", "with a champion"])
@pytest.mark.parametrize("reason", ["new objects; quiet for 15 min", "manual retrain by ä@example.com: " + "x" * 5000])
def test_start_requests_validate_against_the_sagemaker_api_model(start_shape, champion, reason):
    # WHEN the handler builds its StartPipelineExecution request
    built = request(champion, reason=reason)
    # THEN botocore's validator (types, required members, lengths) and the model's patterns accept it
    report = ParamValidator().validate(built, start_shape)
    assert not report.has_errors(), report.generate_report()
    assert list(pattern_violations(start_shape, built)) == []


@pytest.mark.parametrize("champion", [FIRST_MODEL, CHAMPION], ids=["first model", "with a champion"])
def test_start_requests_supply_every_parameter_the_gate_and_checks_read(definition, champion):
    # GIVEN every parameter the definition's steps read, except the per-environment settings
    read = {
        value.removeprefix("Parameters.")
        for value in _gets(definition["Steps"])
        if isinstance(value, str) and value.startswith("Parameters.")
    }
    wanted = read - SYNTH_TIME_DEFAULTS
    assert {pd.CHAMPION_METRIC, pd.BASELINE_CONSTRAINTS_URI} <= wanted
    if champion.model_package_arn is None:
        # The first model has no baseline: the empty default skips the data validation.
        wanted -= {pd.BASELINE_CONSTRAINTS_URI}
    # WHEN the handler builds its request
    sent = {p["Name"]: p["Value"] for p in request(champion)["PipelineParameters"]}
    # THEN it supplies each of them, with a value of the declared type
    assert set(sent) == wanted
    declared = {p["Name"]: p["Type"] for p in definition["Parameters"]}
    assert float(sent[pd.CHAMPION_METRIC]) == float(champion.parameters[pd.CHAMPION_METRIC])
    assert all(declared[name] == "String" for name in sent if name != pd.CHAMPION_METRIC)
    assert declared[pd.CHAMPION_METRIC] == "Float"


def _gets(node: Any) -> Iterator[Any]:
    """The targets of every ``{"Get": ...}`` in a definition."""
    if isinstance(node, Mapping):
        if "Get" in node:
            yield node["Get"]
        for child in node.values():
            yield from _gets(child)
    elif isinstance(node, list):
        for child in node:
            yield from _gets(child)
