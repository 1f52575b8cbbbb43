"""Checks applied to every synthesized template and stack, shared by the test modules."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template
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


_PSEUDO = {"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "Test"}


def resolve_like_cloudformation(
    value: Any, template: Mapping[str, Any], *, region: str = "us-east-1", account: str = "123456789012"
) -> Any:
    """Resolve the intrinsic functions CDK emits, roughly as CloudFormation would, for tests.

    ``Ref`` to a resource gives its lower-cased logical id (a stand-in for its name),
    ``Fn::GetAtt`` an ARN-shaped string, ``Fn::FindInMap`` the template's mapping value.
    """
    pseudo = {**_PSEUDO, "AWS::Region": region, "AWS::AccountId": account}

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return pseudo.get(arg, str(arg).lower())
            if key == "Fn::GetAtt":
                target, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return f"arn:aws:test:{region}:{account}:{target.lower()}/{attribute.lower()}"
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(walk(p)) for p in parts)
            if key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                for name, replacement in pseudo.items():
                    text = text.replace("${" + name + "}", replacement)
                return text
            if key == "Fn::FindInMap":
                mapping, first, second = (walk(a) for a in arg)
                return template["Mappings"][mapping][first][second]
            if key == "Fn::Select":
                index, items = arg
                return walk(items)[int(index)]
        return {k: walk(v) for k, v in node.items()}

    return walk(value)


def logical_id(construct: Any) -> str:
    """The logical id of an L1, or of an L2's default child, computed (never pasted)."""
    node = construct if isinstance(construct, cdk.CfnElement) else construct.node.default_child
    return cdk.Stack.of(construct).get_logical_id(node)


def statements(template: Template, role: iam.IRole) -> list[dict[str, Any]]:
    """Every statement of the policies attached to ``role``."""
    found: list[dict[str, Any]] = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": logical_id(role)} in policy["Properties"]["Roles"]:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def actions_of(statement: Mapping[str, Any]) -> list[str]:
    """A statement's actions as a list (CloudFormation allows a single string)."""
    action = statement["Action"]
    return action if isinstance(action, list) else [action]
