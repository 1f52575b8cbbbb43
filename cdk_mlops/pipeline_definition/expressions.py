"""Pipeline definition expressions (``Get``, ``Std:Join``, ``Std:JsonGet``, conditions) and a builder."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cdk_mlops.pipeline_definition.names import SCHEMA_VERSION

Expr = dict[str, Any]


def get_parameter(name: str) -> Expr:
    """``{"Get": "Parameters.<name>"}``."""
    return {"Get": f"Parameters.{name}"}


def get_execution(variable: str) -> Expr:
    """``{"Get": "Execution.<variable>"}``, e.g. ``PipelineExecutionId``."""
    return {"Get": f"Execution.{variable}"}


def get_step(step: str, path: str) -> Expr:
    """A step property, e.g. ``get_step("Train", "ModelArtifacts.S3ModelArtifacts")``."""
    return {"Get": f"Steps.{step}.{path}"}


def processing_output_uri(step: str, output: str) -> Expr:
    """The S3 URI of a processing step's output, by output name."""
    return get_step(step, f"ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri")


def join(values: Sequence[Any], on: str = "") -> Expr:
    """``Std:Join``: the values as strings, joined with ``on``."""
    return {"Std:Join": {"On": on, "Values": list(values)}}


def json_get(step: str, property_file: str, path: str) -> Expr:
    """``Std:JsonGet``: a value read from a step's property file at a JSON path."""
    return {"Std:JsonGet": {"PropertyFile": {"Get": f"Steps.{step}.PropertyFiles.{property_file}"}, "Path": path}}


def condition(kind: str, left: Any, right: Any) -> Expr:
    """A comparison condition: ``Equals``, ``GreaterThan(OrEqualTo)``, ``LessThan(OrEqualTo)``."""
    return {"Type": kind, "LeftValue": left, "RightValue": right}


def condition_or(*conditions: Expr) -> Expr:
    """True when any of ``conditions`` is."""
    return {"Type": "Or", "Conditions": list(conditions)}


class DefinitionBuilder:
    """A small builder of pipeline definitions: parameters and steps, in order.

    >>> b = DefinitionBuilder()
    >>> uri = b.parameter("InputUri", "String", "")
    >>> _ = b.step("Fail", "Fail", {"ErrorMessage": join(["bad input: ", uri])})
    >>> sorted(b.build())
    ['Parameters', 'PipelineExperimentConfig', 'Steps', 'Version']
    """

    def __init__(self) -> None:
        self._parameters: list[dict[str, Any]] = []
        self._steps: list[dict[str, Any]] = []

    def parameter(self, name: str, type_: str, default: object = None) -> Expr:
        """Declare a parameter (``String``, ``Integer``, ``Float`` or ``Boolean``); returns its ``Get``."""
        declared: dict[str, Any] = {"Name": name, "Type": type_}
        if default is not None:
            declared["DefaultValue"] = default
        self._parameters.append(declared)
        return get_parameter(name)

    def step(
        self,
        name: str,
        type_: str,
        arguments: Mapping[str, Any],
        *,
        description: str | None = None,
        property_files: Sequence[Mapping[str, str]] = (),
        depends_on: Sequence[str] = (),
        retry_policies: Sequence[Mapping[str, Any]] = (),
        top_level: bool = True,
    ) -> dict[str, Any]:
        """A step; added to the top-level ``Steps`` unless ``top_level`` is false (condition branches)."""
        step: dict[str, Any] = {"Name": name, "Type": type_, "Arguments": dict(arguments)}
        if description:
            step["Description"] = description
        if depends_on:
            step["DependsOn"] = list(depends_on)
        if property_files:
            step["PropertyFiles"] = [dict(p) for p in property_files]
        if retry_policies:
            step["RetryPolicies"] = [dict(r) for r in retry_policies]
        if top_level:
            self._steps.append(step)
        return step

    def build(self, *, experiments: bool = True) -> dict[str, Any]:
        """The definition as a dict, ready for ``json.dumps`` (or ``Stack.to_json_string``).

        Args:
            experiments: Record executions as SageMaker Experiments trials (the experiment is
                the pipeline, the trial the execution), as the SageMaker SDK does by default;
                pass False where SageMaker Experiments is not available. Default: - True.
        """
        definition: dict[str, Any] = {"Version": SCHEMA_VERSION, "Parameters": list(self._parameters)}
        if experiments:
            definition["PipelineExperimentConfig"] = {
                "ExperimentName": get_execution("PipelineName"),
                "TrialName": get_execution("PipelineExecutionId"),
            }
        definition["Steps"] = list(self._steps)
        return definition
