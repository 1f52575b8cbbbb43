"""Checks applied to every synthesized template and stack, shared by the test modules."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint


def cfn_lint_errors(template: dict[str, Any], *, region: str = "us-east-1") -> list[str]:
    """cfn-lint errors (not warnings or informational findings) in a template."""
    matches = lint(json.dumps(template), config=ManualArgs(regions=[region]))
    return [f"{m.rule.id} {m.path_string}: {m.message}" for m in matches if m.rule.id.startswith("E")]


def nag_findings(scope: cdk.Stack) -> list[str]:
    """Unacknowledged cdk-nag AwsSolutions findings under a stack, as 'rule path' strings."""
    report = AwsSolutionsChecks().validate_scope(scope)
    findings: list[str] = []
    for violation in report.violations:
        for resource in violation.violating_resources:
            findings.append(f"{violation.rule_name} {resource.construct_path or resource.resource_logical_id}")
    return findings
