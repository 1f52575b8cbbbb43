"""The gate of the training pipeline from the reviewer's side: what the console shows and what a failure says.

``test_pipeline_definition.py`` checks the gate's conditions; these tests check the texts and
retries around them, for a metric where higher is better and one where lower is.
"""

from __future__ import annotations

from typing import Any

from cdk_mlops.pipeline_definition import ProblemType, TrainingSettings, build_pipeline_definition
from tests.unit.test_pipeline_definition import make_spec, steps_by_name

REGRESSION = TrainingSettings(
    problem_type=ProblemType.REGRESSION, metric_name="rmse", metric_threshold=4.5, champion_margin=0.25
)


def gate_steps(**overrides: Any) -> dict[str, dict[str, Any]]:
    return steps_by_name(build_pipeline_definition(make_spec(**overrides)))


def test_the_gate_says_what_it_checks_for_either_direction_of_metric() -> None:
    assert gate_steps()["Gate"]["Description"] == "auc >= 0.7 and beats the champion by 0."
    assert gate_steps(settings=REGRESSION)["Gate"]["Description"] == "rmse <= 4.5 and beats the champion by 0.25."


def test_register_is_described_and_retried_on_service_faults_and_throttling_only_inside_the_gate() -> None:
    definition = build_pipeline_definition(make_spec())
    register = steps_by_name(definition)["Register"]
    assert register["Description"] == "Register the model with its metrics, drift baselines and data lineage."
    assert register["RetryPolicies"] == [
        {
            "ExceptionType": ["Step.SERVICE_FAULT", "Step.THROTTLING"],
            "IntervalSeconds": 5,
            "BackoffRate": 2.0,
            "MaxAttempts": 5,
        }
    ]
    # Register and Fail are the gate's branches, never steps of their own.
    assert {step["Name"] for step in definition["Steps"]}.isdisjoint({"Register", "Fail"})


def test_a_failed_gate_points_at_the_evaluation_even_without_an_artifacts_prefix() -> None:
    values = gate_steps(settings=REGRESSION, artifacts_prefix="")["Fail"]["Arguments"]["ErrorMessage"]["Std:Join"][
        "Values"
    ]
    assert values == [
        "Model not registered: rmse must be at most 4.5 and beat the champion (ChampionMetric=",
        {"Get": "Parameters.ChampionMetric"},
        ") by at least 0.25. See evaluation.json and comparison.json under ",
        "s3://",
        "artifacts-bucket",
        "/",
        {"Get": "Execution.PipelineExecutionId"},
        "/evaluate",
    ]
