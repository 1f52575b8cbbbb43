"""The composition example synthesizes cleanly under cdk-nag and the guardrails, using only the public API."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from types import ModuleType

from cdk_mlops.compliance import synth_app
from tests.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "compose_in_your_stack" / "app.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compose_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_imports_only_the_public_api():
    tree = ast.parse(Path(EXAMPLE).read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module is not None]
    ours = [m for m in imported if m.startswith("cdk_mlops")]
    assert ours == ["cdk_mlops"], ours


def test_example_synthesizes_with_non_default_settings():
    assembly = synth_app(load_example().build_app())
    template = assembly.get_nested_assembly("assembly-Team").get_stack_by_name("Team-Churn").template
    resources = template["Resources"].values()
    buckets = [r for r in resources if r["Type"] == "AWS::S3::Bucket"]
    assert any("ObjectLockConfiguration" in b["Properties"] for b in buckets)
    function = next(r for r in resources if r["Type"] == "AWS::Lambda::Function" and "Environment" in r["Properties"])
    assert function["Properties"]["Environment"]["Variables"]["MODE"] == "COMMIT_MARKER"
    assert any(r["Type"] == "AWS::SageMaker::Pipeline" for r in resources)
    (endpoint,) = [r for r in resources if r["Type"] == "AWS::SageMaker::Endpoint"]
    routing = endpoint["Properties"]["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == "LINEAR"
