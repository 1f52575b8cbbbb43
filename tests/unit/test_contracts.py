"""Names that two separately shipped pieces must agree on."""

from __future__ import annotations

from cdk_mlops import pipeline_definition as pd
from cdk_mlops.lambdas.retrain_trigger import PIPELINE_PARAMETER_NAMES


def test_every_parameter_the_trigger_sends_is_declared_by_the_pipeline():
    # StartPipelineExecution rejects parameters the definition does not declare.
    assert set(PIPELINE_PARAMETER_NAMES) <= set(pd.PARAMETER_NAMES)
    assert {"InputManifestUri", "ManifestSha256"} <= set(PIPELINE_PARAMETER_NAMES)
