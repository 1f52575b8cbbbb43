"""Every AWS call of the runtime code, the role that makes it, and what AWS must allow for it.

The map (:data:`UNITS`, at the end of this module) is the one place that says, for each piece of
runtime code, which role runs it and what each of its boto3 calls needs: the IAM action, the
resource it acts on (built from the synthesized templates' values) and the request context
(``s3:prefix``, ``kms:ViaService``, ...). ``test_iam_coverage`` discovers the calls in the code
with :mod:`ast` and checks both directions: every call is mapped, and every mapped need is
allowed by the synthesized identity and resource policies.

Sections, in order: discovery of the calls, deployments (templates resolved together), policy
evaluation, the contexts a unit runs in, and the map.
"""

from __future__ import annotations

import argparse
import ast
import copy
import functools
import json
import re
import shlex
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Final

import aws_cdk as cdk
import botocore.session
from aws_cdk import aws_iam as iam
from botocore import xform_name

from cdk_mlops import datasets, delivery_steps
from cdk_mlops.constructs.model_monitor.served_config import RESOURCE_TYPE as ANALYSIS_CONFIG_RESOURCE
from cdk_mlops.stacks.delivery_stack import ToolingStage
from cdk_mlops.stacks.stage import MlopsPlatformStage
from tests.quality import resolve_like_cloudformation

REPO_ROOT: Final = Path(__file__).resolve().parents[2]

# =========================================================================================== discovery

#: Runtime code: what runs in AWS under a deployed role. Modules of the package they import are
#: scanned too (the Lambda asset ships them, the build steps import them from the checkout).
RUNTIME_ROOTS: Final = (
    "cdk_mlops/lambdas",
    "cdk_mlops/ml",
    "cdk_mlops/delivery_steps.py",
    "cdk_mlops/datasets.py",
)
#: Services whose operation names mark an attribute call as an AWS call, with those runtime code
#: creates clients for (``client("...")``), so that a client passed in from elsewhere still counts.
BASE_SERVICES: Final = (
    "s3",
    "sagemaker",
    "sagemaker-runtime",
    "dynamodb",
    "sqs",
    "sns",
    "events",
    "scheduler",
    "ssm",
    "cloudwatch",
    "logs",
    "sts",
    "kms",
    "cloudformation",
    "codepipeline",
    "codebuild",
    "lambda",
    "stepfunctions",
    "iam",
)
#: A module's top-level statements, as a scope of its own.
MODULE_SCOPE: Final = "<module>"


@dataclass(frozen=True, order=True)
class FoundCall:
    """One AWS call in the code: ``<expr>.<operation>(...)`` or a paginator/waiter of it."""

    file: str
    scope: str
    operation: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line} {self.operation} (in {self.scope})"


@dataclass
class _Module:
    path: str
    tree: ast.Module
    functions: dict[str, list[ast.AST]] = field(default_factory=dict)
    classes: dict[str, list[str]] = field(default_factory=dict)
    imports: dict[str, str] = field(default_factory=dict)  # local name -> module path
    imported_names: dict[str, tuple[str, str]] = field(default_factory=dict)  # local -> (module, name)
    patterns: set[str] = field(default_factory=set)  # module-level names bound to re.compile(...)


@cache
def operation_names() -> Mapping[str, frozenset[str]]:
    """snake_case operation name -> services of :data:`BASE_SERVICES` and runtime clients that have it."""
    session = botocore.session.get_session()
    names: dict[str, set[str]] = defaultdict(set)
    for service in sorted({*BASE_SERVICES, *_client_services()}):
        for operation in session.get_service_model(service).operation_names:
            names[xform_name(operation)].add(service)
    return {name: frozenset(services) for name, services in names.items()}


@cache
def _client_services() -> frozenset[str]:
    found: set[str] = set()
    for module in runtime_modules().values():
        for node in ast.walk(module.tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "client"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
    return frozenset(found)


def _module_path(dotted: str) -> str | None:
    """``cdk_mlops.x.y`` -> its file, relative to the repository, if it is a module of the package."""
    if dotted != "cdk_mlops" and not dotted.startswith("cdk_mlops."):
        return None
    base = REPO_ROOT / Path(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.relative_to(REPO_ROOT).as_posix()
    return None


def _parse(path: str) -> _Module:
    module = _Module(path, ast.parse((REPO_ROOT / path).read_text(), filename=path))
    module.functions[MODULE_SCOPE] = []
    for statement in module.tree.body:
        _scope_statement(module, statement)
    _read_imports(module)
    return module


def _scope_statement(module: _Module, node: ast.stmt) -> None:
    """File a top-level statement under its scope; note compiled patterns."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        module.functions[node.name] = [node]
    elif isinstance(node, ast.ClassDef):
        methods = [n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        module.classes[node.name] = [f"{node.name}.{m.name}" for m in methods]
        for method in methods:
            module.functions[f"{node.name}.{method.name}"] = [method]
        module.functions[MODULE_SCOPE].extend(n for n in node.body if n not in methods)
    elif not _is_main_guard(node):  # the script entry point runs only as a script
        module.functions[MODULE_SCOPE].append(node)
    if isinstance(node, ast.Assign) and _is_re_compile(node.value):
        module.patterns.update(t.id for t in node.targets if isinstance(t, ast.Name))
    if isinstance(node, ast.AnnAssign) and node.value is not None and _is_re_compile(node.value):
        module.patterns.update(t.id for t in [node.target] if isinstance(t, ast.Name))


def _read_imports(module: _Module) -> None:
    """The package modules and names a module imports, anywhere in it."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _module_path(alias.name)
                if target is not None:
                    module.imports[alias.asname or alias.name] = target
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            for alias in node.names:
                local = alias.asname or alias.name
                submodule = _module_path(f"{node.module}.{alias.name}")
                if submodule is not None:
                    module.imports[local] = submodule
                else:
                    parent = _module_path(node.module)
                    if parent is not None:
                        module.imported_names[local] = (parent, alias.name)


def _is_main_guard(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) and "__name__" in ast.unparse(node.test)


def _is_re_compile(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "compile"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "re"
    )


@cache
def runtime_modules() -> Mapping[str, _Module]:
    """Every runtime module (:data:`RUNTIME_ROOTS` and the package modules they import), by path."""
    pending = [
        p.relative_to(REPO_ROOT).as_posix()
        for root in RUNTIME_ROOTS
        for p in ((REPO_ROOT / root).rglob("*.py") if (REPO_ROOT / root).is_dir() else [REPO_ROOT / root])
    ]
    found: dict[str, _Module] = {}
    while pending:
        path = pending.pop()
        if path in found:
            continue
        found[path] = module = _parse(path)
        pending.extend(module.imports.values())
        pending.extend(target for target, _ in module.imported_names.values())
    return found


def _scope_nodes(module: _Module, scope: str) -> Iterator[ast.AST]:
    for root in module.functions[scope]:
        yield from ast.walk(root)


def _calls_in(module: _Module, scope: str) -> Iterator[FoundCall]:
    names = operation_names()
    for node in _scope_nodes(module, scope):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        attribute, receiver = node.func.attr, node.func.value
        if attribute in ("get_paginator", "get_waiter"):
            argument = node.args[0] if node.args else None
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                operation = argument.value if attribute == "get_paginator" else _waiter_operation(argument.value)
                yield FoundCall(module.path, scope, operation, node.lineno)
        elif attribute in names and not _is_pattern(module, receiver):
            yield FoundCall(module.path, scope, attribute, node.lineno)


def _is_pattern(module: _Module, receiver: ast.expr) -> bool:
    # re.search(...) and compiled patterns share names with operations (sagemaker Search).
    return isinstance(receiver, ast.Name) and (receiver.id == "re" or receiver.id in module.patterns)


def _waiter_operation(name: str) -> str:
    session = botocore.session.get_session()
    for service in sorted({*BASE_SERVICES, *_client_services()}):
        try:
            return xform_name(session.get_waiter_model(service).get_waiter(name).operation)
        except Exception:  # no waiter model, or no waiter of that name: try the next service
            continue
    raise ValueError(f"waiter {name!r} is in none of the services {BASE_SERVICES}; add its service")


def discover_calls() -> list[FoundCall]:
    """Every AWS call of the runtime modules."""
    return sorted(
        call for module in runtime_modules().values() for scope in module.functions for call in _calls_in(module, scope)
    )


def _references(module: _Module, scope: str) -> Iterator[tuple[str, str]]:
    """(module path, scope) of every function or method ``scope`` refers to (a sound over-approximation)."""
    owner = scope.split(".", 1)[0] if "." in scope else None
    for node in _scope_nodes(module, scope):
        if isinstance(node, ast.Name):
            yield from _named(module, node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            base = node.value.id
            if base in ("self", "cls") and owner is not None and f"{owner}.{node.attr}" in module.functions:
                yield module.path, f"{owner}.{node.attr}"
            elif base in module.imports:
                target = runtime_modules().get(module.imports[base])
                if target is not None:
                    yield from _named(target, node.attr)


def _named(module: _Module, name: str) -> Iterator[tuple[str, str]]:
    if name in module.functions and name != MODULE_SCOPE:
        yield module.path, name
    elif name in module.classes:
        # An instance's methods are called through attributes this analysis cannot type: all of them.
        yield from ((module.path, method) for method in module.classes[name])
    elif name in module.imported_names:
        path, original = module.imported_names[name]
        target = runtime_modules().get(path)
        if target is not None:
            yield from _named(target, original)


def reachable(entries: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Every (module path, scope) reachable from ``entries``; ``*`` as scope means every scope of the file."""
    return set(_reachable(tuple(entries)))


@cache  # several checks ask for the same units' scopes; the runtime modules are parsed once (cached)
def _reachable(entries: tuple[tuple[str, str], ...]) -> frozenset[tuple[str, str]]:
    modules = runtime_modules()
    pending: list[tuple[str, str]] = []
    for path, scope in entries:
        if path not in modules:
            raise KeyError(f"{path} is not a runtime module; have {sorted(modules)}")
        pending += [(path, s) for s in modules[path].functions] if scope == "*" else [(path, scope)]
    seen: set[tuple[str, str]] = set()
    while pending:
        item = pending.pop()
        if item in seen:
            continue
        seen.add(item)
        # A function's module-level code ran when the module was imported.
        pending.append((item[0], MODULE_SCOPE))
        pending.extend(_references(modules[item[0]], item[1]))
    return frozenset(seen)


def delivery_commands() -> dict[str, str]:
    """``delivery_steps`` command -> the function that runs it, read from ``main``'s dispatch table."""
    module = runtime_modules()["cdk_mlops/delivery_steps.py"]
    for node in _scope_nodes(module, "main"):
        if isinstance(node, ast.Dict) and all(isinstance(k, ast.Constant) for k in node.keys):
            return {
                str(k.value): v.id
                for k, v in zip(node.keys, node.values, strict=True)
                if isinstance(k, ast.Constant) and isinstance(v, ast.Name)
            }
    raise AssertionError("delivery_steps.main has no {command: function} table; update delivery_commands()")


# ========================================================================================= deployments

#: Account and region of an environment-agnostic stack (those of tests.quality's resolver).
DEFAULT_ACCOUNT: Final = "123456789012"
DEFAULT_REGION: Final = "us-east-1"

# The property that names a resource; without it CloudFormation generates ``<stack>-<logical id>-...``.
_NAME_PROPERTY: Final = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SSM::Parameter": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::CodeBuild::Project": "Name",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::SageMaker::Pipeline": "PipelineName",
    "AWS::SageMaker::ModelPackageGroup": "ModelPackageGroupName",
    "AWS::SageMaker::MonitoringSchedule": "MonitoringScheduleName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::Events::Rule": "Name",
}
# ``Fn::GetAtt [X, Arn]`` in the service's ARN format ({name} is the name, or the key id of a key).
_ARN_FORMAT: Final = {
    "AWS::S3::Bucket": "arn:aws:s3:::{name}",
    "AWS::IAM::Role": "arn:aws:iam::{account}:role/{name}",
    "AWS::IAM::ManagedPolicy": "arn:aws:iam::{account}:policy/{name}",
    "AWS::KMS::Key": "arn:aws:kms:{region}:{account}:key/{name}",
    "AWS::SQS::Queue": "arn:aws:sqs:{region}:{account}:{name}",
    "AWS::SNS::Topic": "arn:aws:sns:{region}:{account}:{name}",
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:{region}:{account}:table/{name}",
    "AWS::Lambda::Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "AWS::Logs::LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}:*",
    "AWS::CodeBuild::Project": "arn:aws:codebuild:{region}:{account}:project/{name}",
    "AWS::CloudWatch::Alarm": "arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
    "AWS::StepFunctions::StateMachine": "arn:aws:states:{region}:{account}:stateMachine:{name}",
    "AWS::Events::Rule": "arn:aws:events:{region}:{account}:rule/{name}",
    "AWS::SageMaker::Pipeline": "arn:aws:sagemaker:{region}:{account}:pipeline/{name}",
    "AWS::SageMaker::ModelPackageGroup": "arn:aws:sagemaker:{region}:{account}:model-package-group/{name}",
    "AWS::SageMaker::MonitoringSchedule": "arn:aws:sagemaker:{region}:{account}:monitoring-schedule/{name}",
}
# ``Ref`` of these types is not the name.
_REF_FORMAT: Final = {
    "AWS::SQS::Queue": "https://sqs.{region}.amazonaws.com/{account}/{name}",
    "AWS::SNS::Topic": "arn:aws:sns:{region}:{account}:{name}",
    "AWS::IAM::ManagedPolicy": "arn:aws:iam::{account}:policy/{name}",
    "AWS::SageMaker::ModelPackageGroup": "arn:aws:sagemaker:{region}:{account}:model-package-group/{name}",
    "AWS::SageMaker::MonitoringSchedule": "arn:aws:sagemaker:{region}:{account}:monitoring-schedule/{name}",
    "AWS::StepFunctions::StateMachine": "arn:aws:states:{region}:{account}:stateMachine:{name}",
}


@dataclass(frozen=True)
class StackTemplate:
    """A synthesized stack and its template, with the account and region it deploys to."""

    stack: cdk.Stack
    template: Mapping[str, Any]

    # Each read of a stack attribute is a round-trip to the jsii runtime, and the checks read
    # these for every reference they resolve: read them once.
    @cached_property
    def name(self) -> str:
        return self.stack.stack_name

    @cached_property
    def account(self) -> str:
        return DEFAULT_ACCOUNT if cdk.Token.is_unresolved(self.stack.account) else self.stack.account

    @cached_property
    def region(self) -> str:
        return DEFAULT_REGION if cdk.Token.is_unresolved(self.stack.region) else self.stack.region

    def resource(self, logical_id: str) -> Mapping[str, Any]:
        resource: Mapping[str, Any] = self.template["Resources"][logical_id]
        return resource


@dataclass(frozen=True)
class RoleRef:
    """An ``AWS::IAM::Role`` of a deployment."""

    stack: StackTemplate
    logical_id: str
    name: str
    arn: str

    @property
    def account(self) -> str:
        return self.arn.split(":")[4]

    def __str__(self) -> str:
        return f"role {self.stack.name}/{self.logical_id} ({self.arn})"


@dataclass(frozen=True)
class ResourcePolicy:
    """A policy attached to a resource (bucket, key, queue, role trust, ...)."""

    kind: str
    where: str
    account: str
    statements: Sequence[Mapping[str, Any]]
    required: bool  # AWS denies unless this policy allows (a key policy, a role's trust policy)


class Deployment:
    """Templates deployed together, resolved with CloudFormation's semantics as far as the checks need.

    ``Ref``, ``Fn::GetAtt`` and ``Fn::ImportValue`` are resolved here, across the templates, into
    names and ARNs of the services' formats (a resource without a name property gets
    ``<stack name>-<logical id>``, as CloudFormation generates); everything else is left to
    :func:`tests.quality.resolve_like_cloudformation`.
    """

    def __init__(self, name: str, stacks: Iterable[tuple[cdk.Stack, Mapping[str, Any]]]) -> None:
        self.name = name
        self.stacks = [StackTemplate(stack, template) for stack, template in stacks]
        self._names: dict[tuple[str, str], str] = {}
        self._properties: dict[tuple[str, str], dict[str, Any]] = {}
        self._identity: dict[tuple[str, str], list[tuple[str, Mapping[str, Any]]]] = {}
        self._exports: dict[str, tuple[StackTemplate, Any]] = {}
        for st in self.stacks:
            for output in st.template.get("Outputs", {}).values():
                if "Export" in output:
                    self._exports[str(self.resolve(output["Export"]["Name"], st))] = (st, output["Value"])

    def replaced(self, stack: cdk.Stack, template: Mapping[str, Any]) -> Deployment:
        """This deployment with another template for ``stack`` (to plant faults in a copy)."""
        return Deployment(self.name, [(s.stack, template if s.stack is stack else s.template) for s in self.stacks])

    # --- resolution ------------------------------------------------------------------------

    def stack(self, stack: cdk.Stack) -> StackTemplate:
        for st in self.stacks:
            if st.stack is stack:
                return st
        raise KeyError(f"{stack.node.path} is not in deployment {self.name}")

    def resolve(self, value: Any, st: StackTemplate) -> Any:
        """A template fragment of ``st``, resolved."""
        return resolve_like_cloudformation(self._prepass(value, st), st.template, region=st.region, account=st.account)

    def value(self, construct: Any, token: Any) -> Any:
        """A token of ``construct``'s stack (``bucket.bucket_arn``, ...), resolved."""
        stack = cdk.Stack.of(construct)
        return self.resolve(stack.resolve(token), self.stack(stack))

    def logical(self, construct: Any) -> tuple[StackTemplate, str]:
        """The stack and logical id of an L1, or of an L2's default child."""
        element = construct if isinstance(construct, cdk.CfnElement) else construct.node.default_child
        stack = cdk.Stack.of(element)
        return self.stack(stack), str(stack.resolve(stack.get_logical_id(element)))

    def properties(self, construct: Any) -> dict[str, Any]:
        """The resolved properties of a construct's resource."""
        return self.resolved(*self.logical(construct))

    def resolved(self, st: StackTemplate, logical_id: str) -> dict[str, Any]:
        """The resolved properties of a resource (resolved once)."""
        key = (st.name, logical_id)
        if key not in self._properties:
            self._properties[key] = self.resolve(st.resource(logical_id).get("Properties", {}), st)
        return self._properties[key]

    def name_of(self, st: StackTemplate, logical_id: str) -> str:
        """A resource's name: its name property, or what CloudFormation generates (a key's id for a key)."""
        key = (st.name, logical_id)
        if key not in self._names:
            resource = st.resource(logical_id)
            prop = _NAME_PROPERTY.get(resource["Type"])
            given = resource.get("Properties", {}).get(prop) if prop else None
            if given is not None:
                self._names[key] = str(self.resolve(given, st))
            else:
                name = f"{st.name}-{logical_id}".lower()
                kms = resource["Type"] == "AWS::KMS::Key"
                self._names[key] = str(uuid.uuid5(uuid.NAMESPACE_URL, name)) if kms else name
        return self._names[key]

    def arn_of(self, st: StackTemplate, logical_id: str) -> str | None:
        pattern = _ARN_FORMAT.get(st.resource(logical_id)["Type"])
        if pattern is None:
            return None
        return pattern.format(region=st.region, account=st.account, name=self.name_of(st, logical_id))

    def _prepass(self, node: Any, st: StackTemplate) -> Any:
        if isinstance(node, list):
            return [self._prepass(n, st) for n in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            resources = st.template.get("Resources", {})
            if key == "Ref" and arg in resources:
                pattern = _REF_FORMAT.get(resources[arg]["Type"], "{name}")
                return pattern.format(region=st.region, account=st.account, name=self.name_of(st, arg))
            if key == "Fn::GetAtt":
                target, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
                found = self._attribute(st, target, attribute) if target in resources else None
                if found is not None:
                    return found
            if key == "Fn::Split":  # not resolved by tests.quality
                delimiter, source = arg
                return str(self.resolve(source, st)).split(delimiter)
            if key == "Fn::ImportValue":
                name = str(self.resolve(arg, st))
                if name not in self._exports:
                    raise KeyError(f"deployment {self.name} has no export {name!r}; add the exporting stack")
                exporter, value = self._exports[name]
                return self.resolve(value, exporter)
        return {k: self._prepass(v, st) for k, v in node.items()}

    def _attribute(self, st: StackTemplate, logical_id: str, attribute: str) -> str | None:
        kind = st.resource(logical_id)["Type"]
        if attribute in ("Arn", "ModelPackageGroupArn", "MonitoringScheduleArn", "PipelineArn"):
            return self.arn_of(st, logical_id)
        if kind == "AWS::SQS::Queue" and attribute == "QueueName":
            return self.name_of(st, logical_id)
        if kind == "AWS::SQS::Queue" and attribute == "QueueUrl":
            return _REF_FORMAT[kind].format(region=st.region, account=st.account, name=self.name_of(st, logical_id))
        return None

    # --- lookups ---------------------------------------------------------------------------

    def resources(self, kind: str) -> Iterator[tuple[StackTemplate, str, Mapping[str, Any]]]:
        for st in self.stacks:
            for logical_id, resource in st.template.get("Resources", {}).items():
                if resource["Type"] == kind:
                    yield st, logical_id, resource

    def role(self, construct: iam.IRole) -> RoleRef:
        st, logical_id = self.logical(construct)
        return self._role(st, logical_id)

    def _role(self, st: StackTemplate, logical_id: str) -> RoleRef:
        return RoleRef(st, logical_id, self.name_of(st, logical_id), str(self.arn_of(st, logical_id)))

    def role_by_arn(self, arn: str) -> RoleRef:
        """The role of this deployment with this ARN (a role is found by what refers to it)."""
        for st, logical_id, _ in self.resources("AWS::IAM::Role"):
            if self.arn_of(st, logical_id) == arn:
                return self._role(st, logical_id)
        raise KeyError(f"no role {arn} in deployment {self.name}")

    def identity_statements(self, role: RoleRef) -> list[tuple[str, Mapping[str, Any]]]:
        """(policy, statement) of every identity policy of ``role``: inline, attached and ``AWS::IAM::Policy``."""
        key = (role.stack.name, role.logical_id)
        if key not in self._identity:
            found: list[tuple[str, Mapping[str, Any]]] = []
            for policy in self.resolved(self.stack(role.stack.stack), role.logical_id).get("Policies", []):
                where = f"{role.stack.name}/{role.logical_id}.{policy['PolicyName']}"
                found += [(where, s) for s in _statements(policy["PolicyDocument"])]
            for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                for st, logical_id, _ in self.resources(kind):
                    props = self.resolved(st, logical_id)
                    if role.name in props.get("Roles", []):
                        found += [(f"{st.name}/{logical_id}", s) for s in _statements(props["PolicyDocument"])]
            self._identity[key] = found
        return self._identity[key]

    @cached_property
    def _resource_policies(self) -> list[tuple[re.Pattern[str], str, ResourcePolicy]]:
        """Every resource policy of the deployment: (resource ARNs it governs, action prefix, policy)."""
        found: list[tuple[re.Pattern[str], str, ResourcePolicy]] = []

        def add(arns: str, actions: str, kind: str, st: StackTemplate, logical_id: str, document: Any) -> None:
            document = json.loads(document) if isinstance(document, str) else document
            # AWS denies unless a key policy or a role's trust policy allows.
            required = kind in ("key policy", "trust policy")
            policy = ResourcePolicy(kind, f"{st.name}/{logical_id}", st.account, _statements(document), required)
            found.append((re.compile(arns), actions, policy))

        for st, logical_id, _ in self.resources("AWS::S3::BucketPolicy"):
            props = self.resolved(st, logical_id)
            bucket = re.escape(f"arn:aws:s3:::{props['Bucket']}")
            add(f"{bucket}(/.*)?", "", "bucket policy", st, logical_id, props["PolicyDocument"])
        for st, logical_id, _ in self.resources("AWS::KMS::Key"):
            key = re.escape(str(self.arn_of(st, logical_id)))
            add(key, "", "key policy", st, logical_id, self.resolved(st, logical_id)["KeyPolicy"])
        for st, logical_id, _ in self.resources("AWS::SQS::QueuePolicy"):
            props = self.resolved(st, logical_id)
            queues = "|".join(re.escape(_queue_arn(url)) for url in props["Queues"])
            add(queues, "", "queue policy", st, logical_id, props["PolicyDocument"])
        for st, logical_id, resource in self.resources("AWS::IAM::Role"):
            trust = self.resolve(resource["Properties"]["AssumeRolePolicyDocument"], st)
            add(re.escape(str(self.arn_of(st, logical_id))), "sts:", "trust policy", st, logical_id, trust)
        for st, logical_id, resource in self.resources("AWS::SageMaker::ModelPackageGroup"):
            if "ModelPackageGroupPolicy" in resource["Properties"]:
                group = re.escape(self.name_of(st, logical_id))
                document = self.resolved(st, logical_id)["ModelPackageGroupPolicy"]
                add(
                    rf".*:model-package(-group)?/{group}(/.*)?",
                    "",
                    "model package group policy",
                    st,
                    logical_id,
                    document,
                )
        return found

    def resource_policies(self, need: Need) -> list[ResourcePolicy]:
        """The resource policies AWS evaluates for ``need`` (bucket, key, queue, trust, model package group)."""
        return [
            policy
            for arns, actions, policy in self._resource_policies
            if arns.fullmatch(need.resource) and need.action.lower().startswith(actions)
        ]

    def encryption_key(self, arn: str) -> str | None:
        """The customer managed key that encrypts a bucket's objects, a queue's messages or a table, if any."""
        kinds = {
            "AWS::S3::Bucket": (
                "BucketEncryption",
                "ServerSideEncryptionConfiguration",
                0,
                "ServerSideEncryptionByDefault",
                "KMSMasterKeyID",
            ),
            "AWS::SQS::Queue": ("KmsMasterKeyId",),
            "AWS::DynamoDB::Table": ("SSESpecification", "KMSMasterKeyId"),
        }
        for kind, path in kinds.items():
            for st, logical_id, _ in self.resources(kind):
                if self.arn_of(st, logical_id) == arn:
                    value: Any = self.resolved(st, logical_id)
                    for step in path:
                        try:
                            value = value[step]
                        except (KeyError, IndexError, TypeError):
                            return None
                    return str(value) if isinstance(value, str) and value.startswith("arn:") else None
        return None

    def region_of(self, arn: str) -> str:
        """The region of a resource: from its ARN, or that of the stack that defines the bucket."""
        region = arn.split(":")[3]
        if region:
            return region
        bucket = arn.removeprefix("arn:aws:s3:::").split("/", 1)[0]
        for st, logical_id, _ in self.resources("AWS::S3::Bucket"):
            if self.name_of(st, logical_id) == bucket:
                return st.region
        return DEFAULT_REGION


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statements = document.get("Statement", [])
    return list(statements) if isinstance(statements, list) else [statements]


def _queue_arn(url: str) -> str:
    host, account, name = url.removeprefix("https://").split("/")
    return f"arn:aws:sqs:{host.split('.')[1]}:{account}:{name}"


# ================================================================================== policy evaluation


@dataclass(frozen=True)
class Need:
    """One authorization a call needs: an IAM action on a resource, with the request's condition keys."""

    action: str
    resource: str
    context: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        extra = f" with {dict(self.context)}" if self.context else ""
        return f"{self.action} on {self.resource}{extra}"


@dataclass(frozen=True)
class Verdict:
    """Whether AWS would allow a need, and why not."""

    allowed: bool
    reasons: tuple[str, ...] = ()


# Condition operators whose result is true when the request lacks the key.
_NEGATED: Final = frozenset(
    {"stringnotequals", "stringnotequalsignorecase", "stringnotlike", "arnnotequals", "arnnotlike", "numericnotequals"}
)


@cache  # the checks match the same few hundred policy patterns thousands of times
def _glob(pattern: str, *, case: bool = True) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), 0 if case else re.IGNORECASE | re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    """IAM action matching: ``*`` and ``?`` wildcards, case-insensitive."""
    return _glob(pattern, case=False).fullmatch(action) is not None


def arn_matches(pattern: str, arn: str) -> bool:
    """IAM resource matching: segment by segment; ``*``/``?`` wildcards; the resource part may contain ``:``."""
    if pattern == "*":
        return True
    want, have = pattern.split(":", 5), arn.split(":", 5)
    if len(want) != 6 or len(have) != 6:
        return _glob(pattern).fullmatch(arn) is not None
    return all(_glob(w).fullmatch(h) is not None for w, h in zip(want, have, strict=True))


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _condition(operator: str, key: str, expected: Any, context: Mapping[str, Any]) -> bool | None:
    """One condition; ``None`` for an operator this checker does not evaluate."""
    op = operator.lower()
    if_exists = op.endswith("ifexists")
    op = op.removesuffix("ifexists")
    values = [str(v) for v in _listed(expected)]
    present = {k.lower(): v for k, v in context.items()}
    if op == "null":
        return (key.lower() not in present) == (values[0].lower() == "true")
    positive = op.replace("not", "", 1) if op in _NEGATED else op
    test = _CONDITION_TESTS.get(positive)
    if test is None:
        return None
    if key.lower() not in present:
        return True if if_exists else op in _NEGATED
    hit = any(test(str(a), v) for a in _listed(present[key.lower()]) for v in values)
    return not hit if op in _NEGATED else hit


_CONDITION_TESTS: Final[Mapping[str, Callable[[str, str], bool]]] = {
    "stringequals": lambda a, v: a == v,
    "stringequalsignorecase": lambda a, v: a.lower() == v.lower(),
    "stringlike": lambda a, v: _glob(v).fullmatch(a) is not None,
    "arnequals": lambda a, v: arn_matches(v, a),
    "arnlike": lambda a, v: arn_matches(v, a),
    "bool": lambda a, v: a.lower() == v.lower(),
    "numericequals": lambda a, v: float(a) == float(v),
    "numericlessthan": lambda a, v: float(a) < float(v),
    "numericlessthanequals": lambda a, v: float(a) <= float(v),
    "numericgreaterthan": lambda a, v: float(a) > float(v),
    "numericgreaterthanequals": lambda a, v: float(a) >= float(v),
}


def _conditions(block: Mapping[str, Any], context: Mapping[str, Any]) -> tuple[bool, list[str]]:
    """Whether every condition holds; unknown operators are reported and count as not holding."""
    unknown: list[str] = []
    holds = True
    for operator, keys in block.items():
        for key, expected in keys.items():
            result = _condition(operator, key, expected, context)
            if result is None:
                unknown.append(f"{operator} ({key})")
            holds = holds and bool(result)
    return holds, unknown


def _principal(statement: Mapping[str, Any], role: RoleRef) -> str | None:
    """How a resource-policy statement names ``role``: ``direct`` (the role, ``*``), ``account`` (its root)."""
    principal = statement.get("Principal")
    if principal == "*":
        return "direct"
    if not isinstance(principal, dict):
        return None
    for value in _listed(principal.get("AWS", [])):
        text = str(value)
        if text == "*" or text == role.arn:
            return "direct"
        if text in (role.account, f"arn:aws:iam::{role.account}:root"):
            return "account"
    return None


def _applies(statement: Mapping[str, Any], need: Need, context: Mapping[str, Any]) -> tuple[bool, list[str]]:
    if "Action" in statement:
        if not any(action_matches(p, need.action) for p in _listed(statement["Action"])):
            return False, []
    elif any(action_matches(p, need.action) for p in _listed(statement.get("NotAction", []))):
        return False, []
    if "Resource" in statement:
        if not any(arn_matches(p, need.resource) for p in _listed(statement["Resource"])):
            return False, []
    elif "NotResource" in statement and any(arn_matches(p, need.resource) for p in _listed(statement["NotResource"])):
        return False, []
    holds, unknown = _conditions(statement.get("Condition", {}), context)
    if unknown:
        if statement.get("Effect") == "Deny":
            # Conservative: a deny this checker cannot evaluate is taken to apply.
            return True, [f"a Deny with unknown condition operator(s) {', '.join(unknown)} is taken to apply"]
        return False, [f"an Allow with unknown condition operator(s) {', '.join(unknown)} is taken not to apply"]
    return holds, []


def request_context(role: RoleRef, need: Need) -> dict[str, Any]:
    """The condition keys of a request by ``role`` over TLS, with the need's own keys."""
    return {
        "aws:SecureTransport": "true",
        "s3:TlsVersion": 1.3,
        "aws:PrincipalArn": role.arn,
        "aws:PrincipalAccount": role.account,
        "aws:PrincipalType": "AssumedRole",
        **need.context,
    }


def decide(deployment: Deployment, role: RoleRef, need: Need) -> Verdict:
    """Would AWS allow ``role`` the ``need``? Identity policies, resource policies, explicit denies.

    Same account: an allow in either the identity or the resource policy suffices, except where the
    resource policy is required (a key policy, a role's trust policy), which must allow the role
    itself or delegate to its account (and then an identity policy must allow). Across accounts
    both must allow. An explicit deny anywhere wins.
    """
    context = request_context(role, need)
    notes: list[str] = []
    identity_allow = False
    for where, statement in deployment.identity_statements(role):
        applies, why = _applies(statement, need, context)
        notes += [f"{where}: {w}" for w in why]
        if applies and statement.get("Effect") == "Deny":
            return Verdict(False, (f"explicitly denied by {where}", *notes))
        identity_allow = identity_allow or (applies and statement.get("Effect") == "Allow")
    needed: list[str] = []
    resource_allow = False
    for policy in deployment.resource_policies(need):
        naming = {"direct": False, "account": False}
        for statement in policy.statements:
            who = _principal(statement, role)
            if who is None:
                continue
            applies, why = _applies(statement, need, context)
            notes += [f"{policy.where}: {w}" for w in why]
            if applies and statement.get("Effect") == "Deny":
                return Verdict(False, (f"explicitly denied by the {policy.kind} {policy.where}", *notes))
            if applies and statement.get("Effect") == "Allow":
                naming[who] = True
        same_account = policy.account == role.account
        if naming["direct"] and same_account:
            resource_allow = True
        elif naming["direct"] or naming["account"]:
            needed.append(f"the {policy.kind} {policy.where} delegates to IAM: an identity policy must allow")
        elif policy.required or not same_account:
            return Verdict(False, (f"the {policy.kind} {policy.where} neither allows the role nor its account", *notes))
    if identity_allow or (resource_allow and not needed):
        return Verdict(True, tuple(notes))
    policies = sorted({where for where, _ in deployment.identity_statements(role)})
    reason = f"no statement of its policies ({', '.join(policies) or 'none'}) allows it"
    return Verdict(False, (reason, *needed, *notes))


# ======================================================================================= the contexts


@dataclass(frozen=True)
class Context:
    """Where a unit runs: the deployment, the role of each part of it, and the values its calls use.

    Attributes:
        where: A label for messages (stage or build project).
        deployment: The templates the roles and resources come from.
        roles: The role that makes each use's calls, by :attr:`Use.role`.
        region: The region the calls go to (the environment's).
        account: The account of the resources.
        values: What the calls are made with: the function's environment, the step's parsed
            command line, the pipeline definition, ...
    """

    where: str
    deployment: Deployment
    roles: Mapping[str, RoleRef]
    region: str
    account: str
    values: Mapping[str, Any]

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    def s3_get(self, bucket: str, key: str, *, version: bool = False) -> list[Need]:
        """GetObject (``s3:GetObjectVersion`` with a version id), and decrypting with the bucket's key."""
        arn = f"arn:aws:s3:::{bucket}/{key}"
        return [Need("s3:GetObjectVersion" if version else "s3:GetObject", arn), *self._kms(arn, "kms:Decrypt")]

    def s3_put(self, bucket: str, key: str) -> list[Need]:
        """PutObject, and a data key from the bucket's key."""
        arn = f"arn:aws:s3:::{bucket}/{key}"
        return [Need("s3:PutObject", arn), *self._kms(arn, "kms:GenerateDataKey")]

    def s3_list(self, bucket: str, prefix: str, *, versions: bool = False) -> list[Need]:
        """ListObjectsV2 (``s3:ListBucket``) or ListObjectVersions (``s3:ListBucketVersions``) of a prefix."""
        action = "s3:ListBucketVersions" if versions else "s3:ListBucket"
        return [Need(action, f"arn:aws:s3:::{bucket}", {"s3:prefix": prefix})]

    def sqs_send(self, queue_url: str) -> list[Need]:
        """SendMessage; on a queue with a customer managed key also GenerateDataKey and Decrypt (SQS docs)."""
        arn = _queue_arn(queue_url)
        return [Need("sqs:SendMessage", arn), *self._kms(arn, "kms:GenerateDataKey", "kms:Decrypt")]

    def dynamodb(self, action: str, table: str) -> list[Need]:
        """A DynamoDB item action on a table; a customer managed key is used on the caller's behalf too."""
        arn = self.arn("dynamodb", f"table/{table}")
        return [Need(f"dynamodb:{action}", arn), *self._kms(arn, "kms:Decrypt")]

    def _kms(self, arn: str, *actions: str) -> list[Need]:
        key = self.deployment.encryption_key(arn.split("/", 1)[0] if arn.startswith("arn:aws:s3") else arn)
        if key is None:
            return []
        service = arn.split(":")[2]
        via = {"kms:ViaService": f"{service}.{self.deployment.region_of(arn)}.amazonaws.com"}
        return [Need(action, key, via) for action in actions]


@dataclass(frozen=True)
class Use:
    """One mapped call: which role makes it, and what AWS must allow for it.

    Attributes:
        operation: ``<service>.<snake_case operation>``, as boto3 names it.
        role: The key of the role in :attr:`Context.roles`.
        needs: What the call needs in a context (empty where the call is not made there).
        why: What the call is for, for messages.
        pending: Why the grant is known to be missing (the check is an expected failure).
    """

    operation: str
    role: str
    needs: Callable[[Context], Iterable[Need]]
    why: str
    pending: str | None = None

    @property
    def service(self) -> str:
        return self.operation.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.operation.split(".", 1)[1]


@dataclass(frozen=True)
class Unit:
    """Runtime code that runs under known roles, and its mapped calls.

    Attributes:
        name: A label.
        runs_as: Which role runs it and how the check finds that role.
        entries: (file, function) where it starts; ``*`` for every function of the file.
        uses: Its mapped calls.
        contexts: Where it runs in the reference platform.
        optional: Why the reference platform may not run it at all. Default: - it must run there.
    """

    name: str
    runs_as: str
    entries: tuple[tuple[str, str], ...]
    uses: tuple[Use, ...]
    contexts: Callable[[Platform], Iterator[Context]]
    optional: str | None = None


@dataclass(frozen=True)
class Platform:
    """The deployments of the reference platform, as the check sees them.

    Attributes:
        environments: Every environment stage (``cdk deploy 'Dev/*'``, and the same stages as the
            platform pipeline deploys them) with the templates deployed with it.
        tooling: The tooling stage's stacks and every stage its pipeline deploys, together
            (the build steps' roles reach into the environments).
        tooling_stage: The tooling stage.
    """

    environments: tuple[tuple[MlopsPlatformStage, Deployment], ...]
    tooling: Deployment
    tooling_stage: ToolingStage


def platform_deployments(app: cdk.App, assembly: Any) -> Platform:
    """The deployments of a synthesized reference app (the session's ``platform`` fixture)."""
    environments: list[tuple[MlopsPlatformStage, Deployment]] = []
    tooling_stacks: list[tuple[cdk.Stack, Mapping[str, Any]]] = []
    tooling: ToolingStage | None = None

    def stacks_of(stage: cdk.Stage, stage_assembly: Any) -> list[tuple[cdk.Stack, Mapping[str, Any]]]:
        return [
            (child, stage_assembly.get_stack_artifact(child.artifact_id).template)
            for child in stage.node.children
            if isinstance(child, cdk.Stack)
        ]

    for stage in (c for c in app.node.children if isinstance(c, cdk.Stage)):
        stage_assembly = assembly.get_nested_assembly(stage.artifact_id)
        if isinstance(stage, MlopsPlatformStage):
            environments.append((stage, Deployment(stage.node.path, stacks_of(stage, stage_assembly))))
        elif isinstance(stage, ToolingStage):
            tooling = stage
            tooling_stacks += stacks_of(stage, stage_assembly)
            for nested in stage.delivery.platform.stages.values():
                nested_stacks = stacks_of(nested, stage_assembly.get_nested_assembly(nested.artifact_id))
                tooling_stacks += nested_stacks
                if isinstance(nested, MlopsPlatformStage):
                    environments.append((nested, Deployment(nested.node.path, nested_stacks)))
    if tooling is None:
        raise AssertionError("the reference app has no tooling stage; the delivery steps cannot be checked")
    return Platform(tuple(environments), Deployment(tooling.node.path, tooling_stacks), tooling)


def all_templates(platform: Platform) -> Iterator[tuple[Deployment, StackTemplate]]:
    """Every synthesized template once, with the deployment that resolves it."""
    seen: set[int] = set()
    for deployment in (*(d for _, d in platform.environments), platform.tooling):
        for st in deployment.stacks:
            if id(st.stack) not in seen:
                seen.add(id(st.stack))
                yield deployment, st


def _function_contexts(platform: Platform) -> Iterator[Context]:
    """Every retrain trigger's function: the training one per environment, and the scoring one where
    there is batch inference; its role is the one its resource names."""
    for stage, deployment in platform.environments:
        triggers = [(stage.node.path, stage.training.retrain.function, stage.training.training.pipeline)]
        if stage.scoring is not None:
            scoring = stage.scoring.scoring
            triggers.append((f"{stage.node.path} scoring", scoring.trigger.function, scoring.pipeline))
        for label, function, pipeline in triggers:
            props = deployment.properties(function)
            st, _ = deployment.logical(function)
            body = deployment.properties(pipeline)["PipelineDefinition"]["PipelineDefinitionBody"]
            yield Context(
                label,
                deployment,
                {"function": deployment.role_by_arn(props["Role"])},
                st.region,
                st.account,
                {"env": props.get("Environment", {}).get("Variables", {}), "definition": json.loads(body)},
            )


def pipeline_definition(deployment: Deployment, stage: MlopsPlatformStage) -> dict[str, Any]:
    """The environment's SageMaker pipeline definition, resolved (pipeline expressions stay)."""
    body = deployment.properties(stage.training.training.pipeline)["PipelineDefinition"]["PipelineDefinitionBody"]
    definition: dict[str, Any] = json.loads(body)
    return definition


def _job_contexts(script: str) -> Callable[[Platform], Iterator[Context]]:
    """The jobs that run an ML script: the step whose entry point is the script's asset, with its role."""

    def runs(stage: MlopsPlatformStage, step: Mapping[str, Any]) -> bool:
        asset = getattr(stage.training.training, "scripts", {}).get(script)
        return asset is not None and _runs_asset(step, asset)

    return lambda platform: job_contexts(platform, runs)


def _prepare_batch_contexts(platform: Platform) -> Iterator[Context]:
    """The scoring pipelines' ``PrepareInput`` jobs (they run prepare_batch.py), with their role."""
    for stage, deployment in platform.environments:
        if stage.scoring is None:
            continue
        scoring = stage.scoring.scoring
        definition = json.loads(deployment.properties(scoring.pipeline)["PipelineDefinition"]["PipelineDefinitionBody"])
        yield from _pipeline_job_contexts(
            stage,
            deployment,
            scoring.pipeline,
            definition,
            dataset=scoring.dataset,
            label="scoring step",
            selected=functools.partial(_runs_asset, asset=scoring.script),
        )


def _analysis_config_contexts(platform: Platform) -> Iterator[Context]:
    """Every explainability monitor's configuration writer: the function its custom resource names, with its role."""
    for stage, deployment in platform.environments:
        for st, logical_id, _ in deployment.resources(ANALYSIS_CONFIG_RESOURCE):
            props = deployment.resolved(st, logical_id)
            (function,) = [
                deployment.resolved(fst, fid)
                for fst, fid, _ in deployment.resources("AWS::Lambda::Function")
                if deployment.arn_of(fst, fid) == props["ServiceToken"]
            ]
            yield Context(
                f"{stage.node.path} {logical_id}",
                deployment,
                {"function": deployment.role_by_arn(function["Role"])},
                st.region,
                st.account,
                {"source": _split_s3_uri(props["SourceUri"]), "target": _split_s3_uri(props["TargetUri"])},
            )


def _split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _analysis_config_uses() -> tuple[Use, ...]:
    return (
        Use(
            "s3.get_object",
            "function",
            lambda c: c.s3_get(*c.values["source"]),
            "the analysis configuration registered with the served package",
        ),
        Use("s3.put_object", "function", lambda c: c.s3_put(*c.values["target"]), "the copy naming the served model"),
        Use(
            "s3.delete_object",
            "function",
            lambda c: [Need("s3:DeleteObject", "arn:aws:s3:::{}/{}".format(*c.values["target"]))],
            "the copy, when the resource is deleted",
        ),
    )


def _prepare_batch_uses() -> tuple[Use, ...]:
    return (
        Use(
            "s3.get_object",
            "job",
            lambda c: [
                *c.s3_get(c.values["bucket"], _dataset_object(c), version=True),
                *c.s3_get(c.values["bucket"], _dataset_object(c)),
            ],
            "the scored manifest's object versions (a version id, or none for an unversioned object)",
        ),
    )


def _training_contexts(platform: Platform) -> Iterator[Context]:
    """The training jobs (a script-mode ``train.py`` runs in them)."""
    return job_contexts(platform, lambda _, step: step.get("Type") == "Training")


def _steps(definition: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every step, including those nested in condition steps."""
    for step in definition.get("Steps", []):
        yield step
        for branch in ("IfSteps", "ElseSteps"):
            yield from _steps({"Steps": step.get("Arguments", {}).get(branch, [])})


def build_commands(deployment: Deployment) -> Iterator[tuple[StackTemplate, str, list[str]]]:
    """(stack, project logical id, argv) of every ``delivery_steps`` command in a CodeBuild project."""
    for st, logical_id, resource in deployment.resources("AWS::CodeBuild::Project"):
        spec = deployment.resolve(resource["Properties"].get("Source", {}).get("BuildSpec", "{}"), st)
        phases = json.loads(spec).get("phases", {}) if isinstance(spec, str) and spec.startswith("{") else {}
        for phase in phases.values():
            for command in phase.get("commands", []):
                words = shlex.split(command)
                if words[:3] == ["python3", "-m", "cdk_mlops.delivery_steps"]:
                    end = next((i for i, w in enumerate(words) if w in (">", "&&", "|", ";")), len(words))
                    yield st, logical_id, words[3:end]


def _step_contexts(command: str) -> Callable[[Platform], Iterator[Context]]:
    """The build projects that run a delivery command: their service role, and the role it assumes."""

    def contexts(platform: Platform) -> Iterator[Context]:
        deployment = platform.tooling
        for st, logical_id, argv in build_commands(deployment):
            if argv[0] != command:
                continue
            args = delivery_steps._parser().parse_args(argv)
            role_arn = deployment.resolve(st.resource(logical_id)["Properties"]["ServiceRole"], st)
            roles = {"step": deployment.role_by_arn(role_arn)}
            if getattr(args, "role_arn", None):
                roles["assumed"] = deployment.role_by_arn(args.role_arn)
            yield Context(f"{st.name}/{logical_id}", deployment, roles, st.region, st.account, {"args": args})

    return contexts


def _assumed(c: Context) -> Context:
    """The context of the calls made with the assumed role: its account, the command's --region."""
    args = c.values["args"]
    return Context(c.where, c.deployment, c.roles, args.region, c.roles["assumed"].account, c.values)


def _ssm(action: str, c: Context, *names: str | None) -> list[Need]:
    """An SSM action on parameters (a name starting with ``/`` keeps one slash in the ARN)."""
    return [Need(f"ssm:{action}", c.arn("ssm", f"parameter/{n.lstrip('/')}")) for n in names if n]


# =========================================================================== SageMaker's own job reads

#: The execution id the pipeline expressions are evaluated with (AWS's documented example id).
EXECUTION_ID: Final = "p4jn9xou8a8s"
#: Another execution: where a champion's artifacts (baseline, evaluation) were written.
CHAMPION_EXECUTION_ID: Final = "q7ab3cd9e0f1"
#: The id CloudFormation appends to a stack's ARN.
STACK_ID: Final = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"


def evaluate_expression(
    value: Any, definition: Mapping[str, Any], parameters: Mapping[str, Any], execution: str
) -> str:
    """A SageMaker Pipelines expression as SageMaker evaluates it for the inputs the checks read.

    Supports literals, ``Parameters.*``, ``Execution.PipelineExecutionId``, ``Std:Join``, a
    processing step's output ``S3Uri`` and a training step's ``S3ModelArtifacts``; anything else
    raises, naming the expression, so that a new kind of input is added here rather than skipped.
    """
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, dict) and "Std:Join" in value:
        join = value["Std:Join"]
        return str(join["On"]).join(evaluate_expression(v, definition, parameters, execution) for v in join["Values"])
    reference = value.get("Get") if isinstance(value, dict) else None
    if isinstance(reference, str):
        if reference.startswith("Parameters."):
            name = reference.removeprefix("Parameters.")
            if name in parameters:
                return str(parameters[name])
            default = next(p.get("DefaultValue", "") for p in definition["Parameters"] if p["Name"] == name)
            return str(default)
        if reference == "Execution.PipelineExecutionId":
            return execution
        steps = {s["Name"]: s for s in _steps(definition)}
        output = re.fullmatch(r"Steps\.(\w+)\.ProcessingOutputConfig\.Outputs\['(\w+)'\]\.S3Output\.S3Uri", reference)
        if output:
            outputs = steps[output.group(1)]["Arguments"]["ProcessingOutputConfig"]["Outputs"]
            (uri,) = [o["S3Output"]["S3Uri"] for o in outputs if o["OutputName"] == output.group(2)]
            return evaluate_expression(uri, definition, parameters, execution)
        artifacts = re.fullmatch(r"Steps\.(\w+)\.ModelArtifacts\.S3ModelArtifacts", reference)
        if artifacts:
            path = steps[artifacts.group(1)]["Arguments"]["OutputDataConfig"]["S3OutputPath"]
            job = f"pipelines-{execution}-{artifacts.group(1)}-5f3c2a1b9d".lower()
            return (
                f"{evaluate_expression(path, definition, parameters, execution).rstrip('/')}/{job}/output/model.tar.gz"
            )
    raise ValueError(f"cannot evaluate the pipeline expression {value!r}; teach evaluate_expression() its meaning")


def trigger_parameters(c: Context) -> dict[str, str]:
    """The parameters the retrain trigger starts executions with, as far as the job inputs use them."""
    bucket, dataset = c.values["bucket"], c.values["dataset"]
    manifest = f"{datasets.manifest_prefix(dataset)}20250304T101530Z-0123456789abcdef.json"
    return {"InputManifestUri": f"s3://{bucket}/{manifest}"}


def job_input_needs(c: Context) -> Iterator[tuple[str, list[Need]]]:
    """(input, needs) of every S3 input of every job of the pipeline: what SageMaker reads as the job's role.

    An ``S3Prefix`` input is listed (``s3:ListBucket`` with the prefix) and its objects are read;
    an ``S3Object`` input is read; objects of a bucket with a customer managed key are decrypted.
    """
    definition, step = c.values["definition"], c.values["step"]
    if step is not None:
        arguments = step.get("Arguments", {})
        sources = [(i["InputName"], i["S3Input"]) for i in arguments.get("ProcessingInputs", []) if "S3Input" in i]
        sources += [
            (ch["ChannelName"], ch["DataSource"]["S3DataSource"])
            for ch in arguments.get("InputDataConfig", [])
            if "S3DataSource" in ch.get("DataSource", {})
        ]
        for name, source in sources:
            uri = evaluate_expression(source["S3Uri"], definition, trigger_parameters(c), EXECUTION_ID)
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            label = f"{step['Name']}.{name} ({source['S3DataType']} {uri})"
            if source["S3DataType"] == "S3Prefix":
                last = key.rsplit("/", 1)[-1]
                sample = key if "." in last else f"{key.rstrip('/')}/part-00000"
                yield label, [*c.s3_list(bucket, key), *c.s3_get(bucket, sample)]
            else:
                yield label, c.s3_get(bucket, key)


def job_contexts(
    platform: Platform, selected: Callable[[MlopsPlatformStage, Mapping[str, Any]], bool] = lambda _, step: True
) -> Iterator[Context]:
    """Every (selected) job step of every training pipeline, with the role it runs as (its ``RoleArn``)."""
    for stage, deployment in platform.environments:
        yield from _pipeline_job_contexts(
            stage,
            deployment,
            stage.training.training.pipeline,
            pipeline_definition(deployment, stage),
            dataset=stage.config.dataset,
            label="step",
            selected=functools.partial(selected, stage),
        )


def _pipeline_job_contexts(
    stage: MlopsPlatformStage,
    deployment: Deployment,
    pipeline: Any,
    definition: dict[str, Any],
    *,
    dataset: str,
    label: str,
    selected: Callable[[Mapping[str, Any]], bool],
) -> Iterator[Context]:
    """The selected job steps of one pipeline of ``stage``, each with its role and the definition."""
    st, _ = deployment.logical(pipeline)
    for step in _steps(definition):
        if "RoleArn" in step.get("Arguments", {}) and selected(step):
            yield Context(
                f"{stage.node.path} {label} {step['Name']}",
                deployment,
                {"job": deployment.role_by_arn(step["Arguments"]["RoleArn"])},
                st.region,
                st.account,
                {
                    "definition": definition,
                    "step": step,
                    "bucket": deployment.value(stage.data.store, stage.data.store.bucket.bucket_name),
                    "dataset": dataset,
                },
            )


def _runs_asset(step: Mapping[str, Any], asset: Any) -> bool:
    """Whether a processing step's entry point is the script ``asset``."""
    entrypoint = step.get("Arguments", {}).get("AppSpecification", {}).get("ContainerEntrypoint", [])
    return any(str(part).endswith(asset.s3_object_key) for part in entrypoint)


# ============================================================================================ the map


def _dataset_object(c: Context) -> str:
    return f"{datasets.dataset_prefix(c.values['dataset'])}2025-03-04/part-00000.csv"


def registered_uri(c: Context, *path: str) -> tuple[str, str]:
    """(bucket, key) of a URI the pipeline's RegisterModel step records, as an earlier (the champion's) run wrote it.

    ``path`` leads from the step's arguments to the ``S3Uri``, e.g. the evaluation
    (``ModelMetrics``, ``ModelQuality``, ``Statistics``) or the drift-check constraints.
    """
    definition = c.values["definition"]
    (register,) = [s for s in _steps(definition) if s.get("Type") == "RegisterModel"]
    node: Any = register["Arguments"]
    for part in (*path, "S3Uri"):
        node = node[part]
    uri = evaluate_expression(node, definition, {}, CHAMPION_EXECUTION_ID)
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _lambda_uses() -> tuple[Use, ...]:
    def env(c: Context, name: str) -> str:
        return str(c.values["env"][name])

    def table(action: str) -> Callable[[Context], list[Need]]:
        return lambda c: c.dynamodb(action, env(c, "STATE_TABLE"))

    def pipeline(action: str) -> Callable[[Context], list[Need]]:
        return lambda c: [Need(f"sagemaker:{action}", c.arn("sagemaker", f"pipeline/{env(c, 'PIPELINE_NAME')}"))]

    def listed(needs: Callable[[Context, str], list[Need]]) -> Callable[[Context], list[Need]]:
        # A dataset versioned by InventorySnapshot is neither listed nor written by the trigger.
        return lambda c: [need for name in _listed_datasets(c) for need in needs(c, name)]

    def snapshotted(needs: Callable[[Context, str], list[Need]]) -> Callable[[Context], list[Need]]:
        # ... but its newest index is looked up when a start has no snapshot's event behind it.
        return lambda c: [need for name in _snapshotted_datasets(c) for need in needs(c, name)]

    def index(c: Context, name: str) -> list[Need]:
        return c.s3_get(env(c, "DATA_BUCKET"), f"{datasets.manifest_prefix(name)}20250304T090000Z-0123456789ab.json")

    def champion(needs: Callable[[Context], list[Need]]) -> Callable[[Context], list[Need]]:
        # With COMPARE_WITH_CHAMPION=false (a scoring pipeline's trigger) no champion is looked up.
        return lambda c: needs(c) if str(c.values["env"].get("COMPARE_WITH_CHAMPION", "true")) != "false" else []

    evaluation = champion(lambda c: c.s3_get(*registered_uri(c, "ModelMetrics", "ModelQuality", "Statistics")))

    return (
        Use("dynamodb.batch_get_item", "function", table("BatchGetItem"), "load the lock and dataset states"),
        Use("dynamodb.get_item", "function", table("GetItem"), "read an idempotency record"),
        Use("dynamodb.update_item", "function", table("UpdateItem"), "lock, claim, record starts"),
        Use("dynamodb.delete_item", "function", table("DeleteItem"), "release the lock, drop pending triggers"),
        Use("sqs.send_message", "function", lambda c: c.sqs_send(env(c, "QUEUE_URL")), "delayed re-checks"),
        Use(
            "sagemaker.list_pipeline_executions", "function", pipeline("ListPipelineExecutions"), "verify a stale lock"
        ),
        Use("sagemaker.start_pipeline_execution", "function", pipeline("StartPipelineExecution"), "start a run"),
        Use(
            "s3.list_object_versions",
            "function",
            listed(lambda c, name: c.s3_list(env(c, "DATA_BUCKET"), datasets.dataset_prefix(name), versions=True)),
            "build the manifest (datasets.build_manifest) of a dataset it lists",
        ),
        Use(
            "s3.put_object",
            "function",
            listed(
                lambda c, name: c.s3_put(
                    env(c, "DATA_BUCKET"), f"{datasets.manifest_prefix(name)}20250304T101530Z-0123456789abcdef.json"
                )
            ),
            "write the manifest (datasets.write_manifest) of a dataset it lists",
        ),
        Use(
            "sagemaker.list_model_packages",
            "function",
            champion(lambda c: [list_model_packages(c, env(c, "MODEL_PACKAGE_GROUP_NAME"))]),
            "find the champion: the newest Approved package of the group",
        ),
        Use(
            "sagemaker.describe_model_package",
            "function",
            champion(lambda c: [describe_model_package(c, env(c, "MODEL_PACKAGE_GROUP_NAME"))]),
            "the champion's metrics, evaluation and baseline",
        ),
        Use(
            "s3.get_object",
            "function",
            lambda c: [*evaluation(c), *snapshotted(index)(c)],
            "the champion's evaluation.json (its ModelMetrics.ModelQuality.Statistics); a snapshotted "
            "dataset's newest index",
        ),
        Use(
            "s3.list_objects_v2",
            "function",
            snapshotted(lambda c, name: c.s3_list(env(c, "DATA_BUCKET"), datasets.manifest_prefix(name))),
            "find a snapshotted dataset's newest index (datasets.latest_manifest_uri)",
        ),
        Use("s3.head_object", "function", snapshotted(index), "order the indexes of one second by write time"),
    )


def list_model_packages(c: Context, group: str) -> Need:
    """ListModelPackages of a group.

    The Service Authorization Reference gives ``model-package`` (optional) as its resource type, not
    ``model-package-group``: the group's packages, ``model-package/<group>/<version>``.
    """
    return Need("sagemaker:ListModelPackages", c.arn("sagemaker", f"model-package/{group}/*"))


def describe_model_package(c: Context, group: str) -> Need:
    """DescribeModelPackage of a version of the group (resource type ``model-package``, required)."""
    return Need("sagemaker:DescribeModelPackage", c.arn("sagemaker", f"model-package/{group}/3"))


def _snapshotted_datasets(c: Context) -> list[str]:
    """The trigger's datasets versioned by InventorySnapshot (``SNAPSHOT_DATASETS``)."""
    return [str(n) for n in json.loads(str(c.values["env"].get("SNAPSHOT_DATASETS", "[]")))]


def _listed_datasets(c: Context) -> list[str]:
    """The trigger's datasets it lists itself: ``DATASETS`` but those of ``SNAPSHOT_DATASETS``."""
    environment = c.values["env"]
    snapshotted = set(json.loads(str(environment.get("SNAPSHOT_DATASETS", "[]"))))
    return [str(n) for n in json.loads(str(environment["DATASETS"])) if n not in snapshotted]


def _snapshot_contexts(platform: Platform) -> Iterator[Context]:
    """Every environment's inventory snapshot functions (one role for the three)."""
    for stage, deployment in platform.environments:
        snapshots = stage.data.snapshots
        for function in (snapshots.plan_function, snapshots.shard_function, snapshots.finalize_function):
            props = deployment.properties(function)
            st, _ = deployment.logical(function)
            yield Context(
                f"{stage.node.path} {function.node.id}",
                deployment,
                {"function": deployment.role_by_arn(props["Role"])},
                st.region,
                st.account,
                {"env": props.get("Environment", {}).get("Variables", {}), "datasets": snapshots.datasets},
            )


def _snapshot_uses() -> tuple[Use, ...]:
    def env(c: Context, name: str) -> str:
        return str(c.values["env"][name])

    def report(c: Context, name: str) -> str:
        """A file of a report S3 delivered under the inventory's prefix."""
        return f"{env(c, 'INVENTORY_PREFIX')}2026-12-04T00-00Z/{name}"

    def version(c: Context, name: str) -> str:
        """A file of a version being written: under manifests/<dataset>/ of a snapshotted dataset."""
        return f"{datasets.manifest_prefix(c.values['datasets'][0])}20261204T000000Z-0123456789abcdef{name}"

    return (
        Use(
            "s3.list_objects_v2",
            "function",
            lambda c: c.s3_list(env(c, "REPORT_BUCKET"), env(c, "INVENTORY_PREFIX")),
            "find the newest report (plan, when the input names none)",
        ),
        Use(
            "s3.head_object",
            "function",
            lambda c: [
                Need("s3:GetObject", f"arn:aws:s3:::{env(c, 'REPORT_BUCKET')}/{report(c, 'manifest.checksum')}")
            ],
            "a report is complete once its manifest.checksum exists",
        ),
        Use(
            "s3.get_object",
            "function",
            lambda c: [
                *c.s3_get(env(c, "REPORT_BUCKET"), report(c, "manifest.json")),
                *c.s3_get(
                    env(c, "REPORT_BUCKET"),
                    f"{env(c, 'INVENTORY_PREFIX')}data/0b2c4a1e-3f5d-4c6b-9e8a-7d1f2a3b4c5d.csv.gz",
                ),
                *c.s3_get(env(c, "DATA_BUCKET"), version(c, "/_parts/part-00000.json")),
            ],
            "the report's manifest and a data file (plan, shard), the part summaries (finalize)",
        ),
        Use(
            "s3.put_object",
            "function",
            lambda c: [
                *c.s3_put(env(c, "REPORT_BUCKET"), f"{env(c, 'WORK_PREFIX')}churn/20261204T000000Z/files.json"),
                *c.s3_put(env(c, "DATA_BUCKET"), version(c, "/part-00000-00000.jsonl.gz")),
                *c.s3_put(env(c, "DATA_BUCKET"), version(c, ".json")),
            ],
            "the work list (plan), the shards and part summaries (shard), the index (finalize)",
        ),
    )


def _preprocess_uses() -> tuple[Use, ...]:
    return (
        Use(
            "s3.get_object",
            "job",
            lambda c: [
                *c.s3_get(c.values["bucket"], _dataset_object(c), version=True),
                *c.s3_get(c.values["bucket"], _dataset_object(c)),
                *c.s3_get(
                    c.values["bucket"],
                    f"{datasets.manifest_prefix(c.values['dataset'])}20261204T000000Z-0123456789abcdef/"
                    "part-00000-00000.jsonl.gz",
                ),
                *c.s3_get(*registered_uri(c, "DriftCheckBaselines", "ModelDataQuality", "Constraints")),
            ],
            "the manifest's object versions (a version id, or none for an unversioned object), a sharded "
            "manifest's shards next to its index, and the champion's baseline constraints (BaselineConstraintsUri)",
        ),
    )


def _track_uses() -> tuple[Use, ...]:
    return (
        Use(
            "sagemaker.describe_training_job",
            "job",
            lambda c: [
                Need(
                    "sagemaker:DescribeTrainingJob",
                    c.arn("sagemaker", f"training-job/pipelines-{EXECUTION_ID}-train-5f3c2a1b9d"),
                )
            ],
            "the training job's hyperparameters and metrics",
        ),
    )


def _delivery_units() -> tuple[Unit, ...]:
    def assume(c: Context) -> list[Need]:
        # _session assumes a role only when the command has --role-arn; otherwise the build's own role calls.
        role_arn = getattr(c.values["args"], "role_arn", None)
        return [Need("sts:AssumeRole", role_arn)] if role_arn else []

    def stacks(c: Context, names: Iterable[str]) -> list[Need]:
        # A stack's ARN ends in the id CloudFormation generates.
        arn = _assumed(c).arn
        return [Need("cloudformation:DescribeStacks", arn("cloudformation", f"stack/{n}/{STACK_ID}")) for n in names]

    def args(c: Context) -> argparse.Namespace:
        namespace: argparse.Namespace = c.values["args"]
        return namespace

    def sample_bucket(c: Context) -> str:
        """The physical id of --bucket-logical-id in --bucket-stack, as DescribeStackResource returns it."""
        a = args(c)
        st = next(s for s in c.deployment.stacks if s.name == a.bucket_stack)
        return c.deployment.name_of(st, a.bucket_logical_id)

    sts = Use("sts.assume_role", "step", assume, "assume the role named by --role-arn (commands without it do not)")
    verify = Unit(
        "delivery: verify",
        "the Verify<Env> project's service role; the access role named by --role-arn",
        (("cdk_mlops/delivery_steps.py", "_verify"),),
        (
            sts,
            Use(
                "cloudformation.describe_stacks",
                "assumed",
                lambda c: stacks(c, (s.split(":", 1)[0] for s in args(c).stack)),
                "the environment's stacks are complete with their outputs",
            ),
            Use(
                "sagemaker.describe_pipeline",
                "assumed",
                lambda c: [
                    Need("sagemaker:DescribePipeline", _assumed(c).arn("sagemaker", f"pipeline/{p}"))
                    for p in args(c).pipeline
                ],
                "the training pipelines are active",
            ),
            Use(
                "sagemaker.describe_endpoint",
                "assumed",
                lambda c: [
                    Need("sagemaker:DescribeEndpoint", _assumed(c).arn("sagemaker", f"endpoint/{e}"))
                    for e in args(c).endpoint
                ],
                "the endpoints are in service",
            ),
            Use(
                "ssm.put_parameter",
                "step",
                lambda c: _ssm("PutParameter", c, args(c).revision_record),
                "record the revision",
            ),
        ),
        _step_contexts("verify"),
    )
    retrain = Unit(
        "delivery: retrain",
        "the Retrain<Env> project's service role; the access role named by --role-arn",
        (("cdk_mlops/delivery_steps.py", "_retrain"),),
        (
            sts,
            Use(
                "ssm.get_parameter",
                "step",
                lambda c: _ssm("GetParameter", c, args(c).record),
                "the recorded fingerprint",
            ),
            Use(
                "ssm.put_parameter", "step", lambda c: _ssm("PutParameter", c, args(c).record), "record the fingerprint"
            ),
            Use(
                "events.put_events",
                "assumed",
                lambda c: [
                    Need(
                        "events:PutEvents",
                        _assumed(c).arn("events", "event-bus/default"),
                        _put_events_context(args(c)),
                    )
                ],
                "the Manual Retrain request (its Source and DetailType are condition keys)",
            ),
        ),
        _step_contexts("retrain"),
    )
    pin = Unit(
        "delivery: pin-models",
        "the platform pipeline's synth project's service role",
        (("cdk_mlops/delivery_steps.py", "_pin_models"),),
        (
            sts,
            Use(
                "ssm.get_parameter",
                "step",
                lambda c: _ssm("GetParameter", c, *(r.partition("=")[2] for r in args(c).record)),
                "the model each environment runs",
            ),
        ),
        _step_contexts("pin-models"),
    )
    select = Unit(
        "delivery: select-model",
        "the model pipeline's Select project's service role; the registry's access role (--role-arn)",
        (("cdk_mlops/delivery_steps.py", "_select_model"),),
        (
            sts,
            Use("ssm.get_parameter", "step", lambda c: _ssm("GetParameter", c, args(c).record), "the deployed model"),
            Use(
                "sagemaker.list_model_packages",
                "assumed",
                lambda c: [list_model_packages(_assumed(c), args(c).group)],
                "the group's packages (a paginator)",
            ),
            Use(
                "sagemaker.describe_model_package",
                "assumed",
                lambda c: [describe_model_package(_assumed(c), args(c).group)],
                "the selected package's settings",
            ),
        ),
        _step_contexts("select-model"),
    )
    deploy = Unit(
        "delivery: deploy-model",
        "the model pipeline's <Env>Deploy project's service role",
        (("cdk_mlops/delivery_steps.py", "_deploy_model"),),
        (
            sts,
            Use(
                "ssm.get_parameter",
                "step",
                lambda c: _ssm("GetParameter", c, args(c).record, args(c).revision_record),
                "the deployed model and the deployed source revision",
            ),
            Use("ssm.put_parameter", "step", lambda c: _ssm("PutParameter", c, args(c).record), "record the model"),
            Use(
                "s3.get_object",
                "step",
                lambda c: (
                    [Need("s3:GetObjectVersion", f"arn:aws:s3:::{args(c).source_bucket}/{args(c).source_key}")]
                    if args(c).source_bucket
                    else []  # a CodeConnections source checks the revision out with git instead
                ),
                "the recorded revision of an S3 source (with a version id)",
            ),
        ),
        _step_contexts("deploy-model"),
    )
    endpoint = Unit(
        "delivery: endpoint-test",
        "the model pipeline's <Env>Test project's service role; the access role named by --role-arn",
        (("cdk_mlops/delivery_steps.py", "_endpoint_test"),),
        (
            sts,
            Use(
                "cloudformation.describe_stack_resource",
                "assumed",
                lambda c: [
                    Need(
                        "cloudformation:DescribeStackResource",
                        _assumed(c).arn(
                            "cloudformation", f"stack/{args(c).bucket_stack}/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
                        ),
                    )
                ],
                "find the data bucket",
            ),
            Use(
                "s3.get_object",
                "assumed",
                lambda c: _assumed(c).s3_get(sample_bucket(c), args(c).key),
                "the sample request",
            ),
            Use(
                "sagemaker-runtime.invoke_endpoint",
                "assumed",
                lambda c: [
                    Need("sagemaker:InvokeEndpoint", _assumed(c).arn("sagemaker", f"endpoint/{args(c).endpoint}"))
                ],
                "invoke the endpoint",
            ),
        ),
        _step_contexts("endpoint-test"),
    )
    return verify, retrain, pin, select, deploy, endpoint


def _put_events_context(args: argparse.Namespace) -> dict[str, str]:
    entry = delivery_steps.retrain_request(
        delivery_steps.decide_retrain("0" * 64, args.fingerprint),
        dataset=args.dataset,
        pipeline_name=args.pipeline,
        environment=args.environment,
    )
    return {"events:source": entry["Source"], "events:detail-type": entry["DetailType"]}


#: The map: every unit of runtime code, the role that runs it and what each of its calls needs.
UNITS: Final[tuple[Unit, ...]] = (
    Unit(
        "retrain trigger",
        "the role the retrain trigger's AWS::Lambda::Function names (<Env>/Training); datasets.py runs in it too",
        (("cdk_mlops/lambdas/retrain_trigger/handler.py", "handler"),),
        _lambda_uses(),
        _function_contexts,
    ),
    Unit(
        "explainability configuration writer",
        "the role of the function that the monitor's Custom::ExplainabilityAnalysisConfig names (<Env>/Serving)",
        (("cdk_mlops/lambdas/analysis_config/handler.py", "handler"),),
        _analysis_config_uses(),
        _analysis_config_contexts,
    ),
    Unit(
        "inventory snapshot functions",
        "the role the snapshot state machine's functions name (<Env>/Data); inventory.py, datasets.py and "
        "manifest_shards.py run in it too",
        (("cdk_mlops/lambdas/dataset_snapshot/handler.py", "*"),),
        _snapshot_uses(),
        _snapshot_contexts,
    ),
    Unit(
        "preprocess script",
        "the RoleArn of the pipeline step whose entry point is the preprocess script's asset",
        (("cdk_mlops/ml/preprocess.py", "*"),),
        _preprocess_uses(),
        _job_contexts("preprocess"),
    ),
    Unit(
        "prepare batch script",
        "the RoleArn of the scoring pipeline's step whose entry point is the prepare_batch script's asset",
        (("cdk_mlops/ml/prepare_batch.py", "*"),),
        _prepare_batch_uses(),
        _prepare_batch_contexts,
    ),
    Unit(
        "evaluate script",
        "the RoleArn of the pipeline step whose entry point is the evaluate script's asset",
        (("cdk_mlops/ml/evaluate.py", "*"),),
        (),
        _job_contexts("evaluate"),
    ),
    Unit(
        "train script",
        "the RoleArn of the Training step (a script-mode source runs train.py in it)",
        (("cdk_mlops/ml/train.py", "*"),),
        (),
        _training_contexts,
    ),
    Unit(
        "track script",
        "the RoleArn of the Track step (only with an MLflow tracking server)",
        (("cdk_mlops/ml/track.py", "*"),),
        _track_uses(),
        _job_contexts("track"),
        optional="the Track step exists only with an MLflow tracking server, which the reference platform has not",
    ),
    *_delivery_units(),
)

#: Calls in runtime modules that no deployed role makes: library functions that people and the CLI
#: call with their own credentials. (file, function) -> why.
NOT_DEPLOYED: Final[Mapping[tuple[str, str], str]] = {
    ("cdk_mlops/datasets.py", "load_manifest"): "reads a manifest for the CLI and notebooks (materialize, diff)",
    ("cdk_mlops/datasets.py", "_download"): "datasets.materialize restores a dataset version for a person",
    ("cdk_mlops/datasets.py", "_read_document"): "load_manifest's read of a manifest or index, for the CLI",
    ("cdk_mlops/manifest_shards.py", "put_shards"): "sharded manifests are written by the CLI and notebooks; the "
    "retrain trigger writes the single document (format='single')",
    ("cdk_mlops/manifest_shards.py", "shard_reader"): "reads a sharded manifest's shards for the CLI and notebooks",
    ("cdk_mlops/lambdas/retrain_trigger/fleet.py", "read_routes"): "FleetRetrainTrigger's handler, which the "
    "reference platform does not deploy yet; tests/unit/constructs/test_fleet_trigger.py checks its role against "
    "every call it makes for each route",
}


def unit_calls(unit: Unit, calls: Iterable[FoundCall]) -> list[FoundCall]:
    """The calls a unit can make: those in the functions reachable from its entries."""
    scopes = reachable(unit.entries)
    return [call for call in calls if (call.file, call.scope) in scopes]


def unmapped_calls(unit: Unit, calls: Iterable[FoundCall]) -> list[str]:
    """A message for each call the unit can make that its map entry does not know."""
    mapped = {use.name for use in unit.uses}
    return [
        f"{c} runs as {unit.runs_as}, but the map has no Use for {c.operation}: add "
        f"Use('<service>.{c.operation}', '<role>', needs, why) to the {unit.name!r} unit in "
        "tests/contracts/iam_coverage.py with the IAM action(s) and resource it needs"
        for c in unit_calls(unit, calls)
        if c.operation not in mapped
    ]


def copy_template(template: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a template, to plant a fault in."""
    return copy.deepcopy(dict(template))


def check_use(use: Use, contexts: Iterable[Context]) -> tuple[int, list[str]]:
    """(needs checked, problems) of one use in every context: each need must be allowed to its role."""
    checked, problems = 0, []
    for c in contexts:
        role = c.roles[use.role]
        for need in use.needs(c):
            checked += 1
            verdict = decide(c.deployment, role, need)
            if not verdict.allowed:
                problems.append(
                    f"{c.where}: {role} may not {need} ({use.operation}: {use.why}): {'; '.join(verdict.reasons)}"
                )
    return checked, problems


def check_job_inputs(contexts: Iterable[Context]) -> tuple[int, list[str]]:
    """(needs checked, problems) of SageMaker reading every job input as the job's role."""
    checked, problems = 0, []
    for c in contexts:
        role = c.roles["job"]
        for label, needs in job_input_needs(c):
            for need in needs:
                checked += 1
                verdict = decide(c.deployment, role, need)
                if not verdict.allowed:
                    problems.append(f"{c.where} input {label}: {role} may not {need}: {'; '.join(verdict.reasons)}")
    return checked, problems
