"""Checks applied to every synthesized template and stack, shared by the test modules."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import cfnlint
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks
from cfnlint.config import ConfigMixIn
from cfnlint.decode.decode import decode_str
from cfnlint.runner import Runner, run_template_by_data
from cfnlint.version import __version__ as cfn_lint_version


def shared_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The folder of the caches every checkout on this machine shares, resolved as the Makefile does.

    ``CDK_MLOPS_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/cdk-mlops``, else ``~/.cache/cdk-mlops``
    (``make clean`` empties it).
    """
    if environ.get("CDK_MLOPS_CACHE_DIR"):
        return Path(environ["CDK_MLOPS_CACHE_DIR"])
    home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    return Path(environ.get("XDG_CACHE_HOME") or home / ".cache") / "cdk-mlops"


CACHE_DIR = shared_cache_dir()
#: Where cfn-lint results are kept between tests, runs, pytest-xdist workers and clones. Entries are
#: keyed by the template, the region, the cfn-lint version and its rule settings, so an entry is
#: never stale: any change to one of them is another key.
CFN_LINT_CACHE = CACHE_DIR / "cfn-lint"


@cache
def _cfn_lint_settings(region: str) -> str:
    # What a config file (.cfnlintrc here or in the home directory) may change, besides the
    # template and the version; cfn-lint's own rules folder differs by install path, not content.
    config = ConfigMixIn(regions=[region])
    own_rules = str(Path(cfnlint.__file__).resolve().parent / "rules")
    settings = {
        "ignore_checks": config.ignore_checks,
        "include_checks": config.include_checks,
        "mandatory_checks": config.mandatory_checks,
        "include_experimental": config.include_experimental,
        "configure_rules": config.configure_rules,
        "append_rules": [str(r) for r in config.append_rules if str(Path(r).resolve()) != own_rules],
        "override_spec": config.override_spec,
        "custom_rules": config.custom_rules,
    }
    return json.dumps(settings, sort_keys=True, default=str)


def _cfn_lint_key(text: str, region: str) -> str:
    return hashlib.sha256(f"{cfn_lint_version}\n{_cfn_lint_settings(region)}\n{region}\n{text}".encode()).hexdigest()


def cfn_lint_findings(template: Mapping[str, Any], *, region: str = "us-east-1") -> list[str]:
    """cfn-lint errors and warnings (not informational findings) in a template, as 'rule path: message'.

    The same templates are linted by several tests and workers (about a second each), so
    results are cached on disk under :data:`CFN_LINT_CACHE`.

    Args:
        template: The synthesized template.
        region: The region the stack deploys to; cfn-lint checks resource types, properties
            and values against that region's specification. Default: - us-east-1.
    """
    text = json.dumps(template, sort_keys=True)
    cached = CFN_LINT_CACHE / f"{_cfn_lint_key(text, region)}.json"
    try:
        findings: list[str] = json.loads(cached.read_text())
        return findings
    except (OSError, ValueError):
        pass  # not linted yet (or a partial file from an interrupted run): lint it
    matches = run_cfn_lint(text, region=region)
    findings = [f"{m.rule.id} {m.path_string}: {m.message}" for m in matches if m.rule.id[:1] in ("E", "W")]
    CFN_LINT_CACHE.mkdir(parents=True, exist_ok=True)
    # Write then rename: another worker linting the same template never reads half a file.
    with tempfile.NamedTemporaryFile("w", dir=CFN_LINT_CACHE, suffix=".tmp", delete=False) as out:
        json.dump(findings, out)
    os.replace(out.name, cached)
    return findings


@cache
def _cfn_lint_rules() -> Any:
    # Loading cfn-lint's rules (a module each, some reading their schemas) costs about a
    # second, more than linting most templates; ``cfnlint.api.lint`` loads them on every call.
    # A rule keeps no state between templates (each is re-initialized per run), so they are
    # loaded once per process and shared, as cfn-lint's own command line does for many files.
    return Runner(ConfigMixIn(regions=["us-east-1"])).rules


def run_cfn_lint(text: str, *, region: str = "us-east-1") -> list[Any]:
    """Every cfn-lint match (``cfnlint.rules.Match``) in a template's text, uncached.

    What ``cfnlint.api.lint(text, config=ManualArgs(regions=[region]))`` returns, with the
    rules loaded once per process.

    Args:
        text: The template as JSON or YAML.
        region: The region to check the template against. Default: - us-east-1.
    """
    template, errors = decode_str(text)
    if errors:
        return list(errors)
    if template is None:
        return []
    return list(run_template_by_data(template, ConfigMixIn(regions=[region]), _cfn_lint_rules()))


def nag_findings(scope: cdk.Stack) -> list[str]:
    """Unacknowledged cdk-nag AwsSolutions findings under a stack, as 'rule path' strings."""
    report = AwsSolutionsChecks().validate_scope(scope)
    findings: list[str] = []
    for violation in report.violations:
        for resource in violation.violating_resources:
            findings.append(f"{violation.rule_name} {resource.construct_path or resource.resource_logical_id}")
    return findings


_PSEUDO = {"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "Test"}

#: ``Fn::GetAtt [X, Arn]`` of these resource types, with ``service_arns``: the service's ARN
#: format, with the lower-cased logical id as the name (``key_id`` is a UUID derived from it).
_SERVICE_ARNS = {
    "AWS::IAM::Role": "arn:{partition}:iam::{account}:role/{name}",
    "AWS::KMS::Key": "arn:{partition}:kms:{region}:{account}:key/{key_id}",
    "AWS::S3::Bucket": "arn:{partition}:s3:::{name}",
    "AWS::SQS::Queue": "arn:{partition}:sqs:{region}:{account}:{name}",
    "AWS::SNS::Topic": "arn:{partition}:sns:{region}:{account}:{name}",
    "AWS::Lambda::Function": "arn:{partition}:lambda:{region}:{account}:function:{name}",
}
#: Types whose ``Ref`` is an ARN (CloudFormation's return values), with the lower-cased logical id as the name.
_REF_ARNS = {
    "AWS::StepFunctions::StateMachine": "arn:{partition}:states:{region}:{account}:stateMachine:{name}",
    "AWS::SNS::Topic": "arn:{partition}:sns:{region}:{account}:{name}",
}
#: With ``service_arns``, the physical ids of these EC2 resource types (``Ref``, and ``Fn::GetAtt
#: [X, GroupId]`` of a security group) in the shape the EC2 and SageMaker APIs validate: the
#: prefix and 17 hex digits derived from the logical id.
_EC2_ID_PREFIXES = {"AWS::EC2::VPC": "vpc", "AWS::EC2::Subnet": "subnet", "AWS::EC2::SecurityGroup": "sg"}
# ``Fn::Sub`` placeholders: ``${Name}`` or ``${Name.Attribute}``; ``${!Literal}`` is not one.
_SUB_PLACEHOLDER = re.compile(r"\$\{([^!}][^}]*)\}")
# ``{"Ref": "AWS::NoValue"}`` removes the property (or list item) that holds it.
_NO_VALUE = object()


def resolve_like_cloudformation(
    value: Any,
    template: Mapping[str, Any],
    *,
    region: str = "us-east-1",
    account: str = "123456789012",
    exports: Mapping[str, Any] | None = None,
    service_arns: bool = False,
) -> Any:
    """Resolve the intrinsic functions CDK emits, roughly as CloudFormation would, for tests.

    ``Ref`` to a resource gives its lower-cased logical id (a stand-in for its name; a state
    machine's is its ARN, as in CloudFormation),
    ``Fn::GetAtt`` an ARN-shaped string, ``Fn::FindInMap`` the template's mapping value,
    ``Fn::If`` the branch its condition (``Fn::Equals``, ``Fn::And``, ``Fn::Or``, ``Fn::Not``)
    selects, ``Fn::ImportValue`` the value of ``exports``.

    Args:
        value: What to resolve (a template fragment).
        template: The template it comes from (mappings, conditions, resource types).
        region: ``AWS::Region``. Default: - us-east-1.
        account: ``AWS::AccountId``. Default: - 123456789012.
        exports: Export name to value, for ``Fn::ImportValue``, e.g. from
            :func:`cloudformation_exports`. Default: - none; an import raises KeyError.
        service_arns: ``Fn::GetAtt [X, Arn]`` of a role, key, bucket, queue, topic or function
            gives an ARN of that service's format (which API validation accepts) instead of
            ``arn:aws:test:<region>:<account>:<logical id>/arn``, and a VPC, subnet or security
            group an id of its type (``subnet-`` and 17 hex digits), and ``Fn::GetAtt [X, <...>Name]``
            the lower-cased logical id. Default: - False.
    """
    partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    pseudo = {**_PSEUDO, "AWS::Partition": partition, "AWS::Region": region, "AWS::AccountId": account}
    resources: Mapping[str, Any] = template.get("Resources", {})

    def ec2_id(logical_id: str) -> str | None:
        prefix = _EC2_ID_PREFIXES.get(resources.get(logical_id, {}).get("Type", ""))
        if not service_arns or prefix is None:
            return None
        return f"{prefix}-{hashlib.sha256(logical_id.encode()).hexdigest()[:17]}"

    def get_att(target: str, attribute: str) -> str:
        if attribute == "GroupId" and (group_id := ec2_id(target)):
            return group_id
        arn = _SERVICE_ARNS.get(resources.get(target, {}).get("Type", ""))
        if service_arns and attribute.endswith("Name"):
            # A generated name (ModelName, EndpointConfigName, ...): the lower-cased logical id.
            return target.lower()
        if service_arns and attribute == "Arn" and arn is not None:
            name = target.lower()
            key_id = uuid.uuid5(uuid.NAMESPACE_URL, name)
            return arn.format(partition=partition, region=region, account=account, name=name, key_id=key_id)
        return f"arn:aws:test:{region}:{account}:{target.lower()}/{attribute.lower()}"

    def ref(name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if arn := _REF_ARNS.get(resources.get(name, {}).get("Type", "")):
            return arn.format(partition=partition, region=region, account=account, name=name.lower())
        return pseudo.get(name) or ec2_id(name) or name.lower()

    def condition(name: str) -> bool:
        return bool(walk(template["Conditions"][name]))

    def sub(arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], walk(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if name in pseudo or "." not in name:
                return str(ref(name))
            return get_att(*name.split(".", 1))

        return _SUB_PLACEHOLDER.sub(replace, text).replace("${!", "${")

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in (walk(n) for n in node) if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return ref(arg)
            if key == "Fn::GetAtt":
                return get_att(*(arg if isinstance(arg, list) else arg.split(".", 1)))
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(walk(p)) for p in parts)
            if key == "Fn::Sub":
                return sub(arg)
            if key == "Fn::FindInMap":
                mapping, first, second = (walk(a) for a in arg)
                return template["Mappings"][mapping][first][second]
            if key == "Fn::Select":
                index, items = arg
                return walk(items)[int(index)]
            if key == "Fn::ImportValue":
                name = walk(arg)
                if exports is None or name not in exports:
                    raise KeyError(f"no export {name!r}; pass exports= with the exporting stack's outputs")
                return exports[name]
            if key == "Fn::If":
                name, when_true, when_false = arg
                return walk(when_true if condition(name) else when_false)
            if key == "Condition":
                return condition(arg)
            if key == "Fn::Equals":
                left, right = (walk(a) for a in arg)
                return left == right
            if key == "Fn::Not":
                return not walk(arg[0])
            if key == "Fn::And":
                return all(walk(a) for a in arg)
            if key == "Fn::Or":
                return any(walk(a) for a in arg)
        resolved = {k: walk(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    return walk(value)


def cloudformation_exports(
    stacks: Iterable[tuple[Mapping[str, Any], str, str]], *, service_arns: bool = False
) -> dict[str, Any]:
    """Every ``Export`` of the given stacks, resolved, for ``resolve_like_cloudformation(exports=...)``.

    Args:
        stacks: ``(template, region, account)`` of each stack that may export values.
        service_arns: As in :func:`resolve_like_cloudformation`. Default: - False.
    """
    found: dict[str, Any] = {}
    for template, region, account in stacks:
        for output in template.get("Outputs", {}).values():
            if "Export" in output:
                options: dict[str, Any] = {"region": region, "account": account, "service_arns": service_arns}
                name = resolve_like_cloudformation(output["Export"]["Name"], template, **options)
                found[name] = resolve_like_cloudformation(output["Value"], template, **options)
    return found


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


def state_machine_definition(template: Mapping[str, Any], logical_id: str) -> dict[str, Any]:
    """A state machine's ``DefinitionString`` as the JSON object Step Functions receives.

    Values CloudFormation fills in (``Ref``, ``Fn::GetAtt``) are resolved as
    :func:`resolve_like_cloudformation` resolves them, so the text parses as it would on deploy.
    """
    resource = template["Resources"][logical_id]
    text = resolve_like_cloudformation(resource["Properties"]["DefinitionString"], template, service_arns=True)
    definition: dict[str, Any] = json.loads(text)
    return definition


def state_machine_schema_findings(definition: Mapping[str, Any], *, region: str = "us-east-1") -> list[str]:
    """cfn-lint's findings on a state machine definition: AWS's published States Language schema (E3601)."""
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {"RoleArn": "arn:aws:iam::123456789012:role/machine", "Definition": definition},
            }
        },
    }
    return cfn_lint_findings(template, region=region)
