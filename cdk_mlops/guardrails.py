"""Guardrails as code: an organisation's MLOps rules, checked on every synthesized template.

cdk-nag catches generic findings; these rules encode what a platform team
requires of every stack that trains, serves or stores models, including stacks
it did not write. Each rule is a small pure function over one CloudFormation
resource (or one stack) with a stable id (``MLOPS-001`` …). The rules run as a
CDK policy-validation plugin, so:

- a finding of severity ``error`` fails ``cdk synth`` with a report that names
  the construct path, what is wrong and the fix; a ``warning`` is reported
  without failing;
- a finding is acknowledged the same way as a cdk-nag finding, on the construct
  that causes it, with a reason::

      Validations.of(role).acknowledge(
          Acknowledgment(id="CdkMlopsGuardrails::MLOPS-001", reason="break-glass role, reviewed by security")
      )

Apply them per environment (the rules that apply to prod differ)::

    apply_guardrails(stage, GuardrailSettings.for_environment(config))
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from constructs import IConstruct

from cdk_mlops._version import __version__
from cdk_mlops.config import EnvironmentConfig
from cdk_mlops.constructs.common import GUARDRAILS, LAMBDA_RUNTIME

#: The plugin name; acknowledgments are written ``CdkMlopsGuardrails::MLOPS-00N``.
PLUGIN_NAME = GUARDRAILS


class Severity(StrEnum):
    """What a finding does to synth."""

    ERROR = "error"
    """Fails synth unless acknowledged."""
    WARNING = "warning"
    """Reported; synth goes on."""


@dataclass(frozen=True, kw_only=True)
class GuardrailSettings:
    """Which rules run, how strictly, and the facts they check against.

    Attributes:
        prod: Apply the prod-only rules (retention, termination protection,
            rollback alarms, versioned data). Default: - False.
        require_network_isolation: SageMaker models and monitoring jobs run in
            a VPC with network isolation; every job a pipeline definition starts
            (processing, training, tuning, transform, quality and Clarify checks)
            and every Lambda function run in VPC subnets with security groups.
            Default: - False.
        lambda_runtime: The runtime every Lambda function must use.
            Default: - the library's ``LAMBDA_RUNTIME``.
        required_tags: Tag keys every taggable resource carries.
            Default: - project, environment, owner.
        disabled: Rule ids that do not run. Default: - none.
        severities: Per-rule severity overrides. Default: - each rule's own.
    """

    prod: bool = False
    require_network_isolation: bool = False
    lambda_runtime: str = "python3.14"
    required_tags: tuple[str, ...] = ("project", "environment", "owner")
    disabled: frozenset[str] = frozenset()
    severities: Mapping[str, Severity] = field(default_factory=dict)

    @classmethod
    def for_environment(cls, config: EnvironmentConfig, **overrides: Any) -> GuardrailSettings:
        """Settings derived from an environment's configuration."""
        base = cls(
            prod=config.is_prod,
            require_network_isolation=config.require_network_isolation,
            lambda_runtime=LAMBDA_RUNTIME.name,
            disabled=frozenset(config.disabled_guardrails),
            severities={rule_id: Severity.WARNING for rule_id in config.warning_guardrails},
        )
        return replace(base, **overrides)


@dataclass(frozen=True)
class Finding:
    """One rule broken by one resource (or stack)."""

    rule_id: str
    logical_id: str
    message: str


@dataclass(frozen=True)
class StackView:
    """What the rules see of one stack: its template and stack-level settings."""

    template: Mapping[str, Any]
    termination_protection: bool = False

    @property
    def resources(self) -> Mapping[str, Mapping[str, Any]]:
        resources: Mapping[str, Mapping[str, Any]] = self.template.get("Resources", {})
        return resources


ResourceCheck = Callable[[str, Mapping[str, Any], StackView, GuardrailSettings], str | None]
StackCheck = Callable[[StackView, GuardrailSettings], Iterable[tuple[str, str]]]


@dataclass(frozen=True)
class Rule:
    """A guardrail: an id, what it protects, and a pure check."""

    id: str
    title: str
    rationale: str
    severity: Severity
    resource_check: ResourceCheck | None = None
    stack_check: StackCheck | None = None
    resource_types: frozenset[str] | None = None
    prod_only: bool = False

    def run(self, stack: StackView, settings: GuardrailSettings) -> Iterator[Finding]:
        """Every finding of this rule in one stack."""
        if self.resource_check is not None:
            for logical_id, resource in stack.resources.items():
                if self.resource_types is not None and resource.get("Type") not in self.resource_types:
                    continue
                message = self.resource_check(logical_id, resource, stack, settings)
                if message:
                    yield Finding(self.id, logical_id, message)
        if self.stack_check is not None:
            for logical_id, message in self.stack_check(stack, settings):
                yield Finding(self.id, logical_id, message)


# --- helpers over CloudFormation values ---------------------------------------------------------


def _props(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    props: Mapping[str, Any] = resource.get("Properties") or {}
    return props


def _strings(value: Any) -> Iterator[str]:
    """Every string literal inside a CloudFormation value (through Fn::Join, lists, maps)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(document: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(document, dict):
        for statement in _as_list(document.get("Statement", [])):
            if isinstance(statement, dict):
                yield statement


def _is_set(value: Any) -> bool:
    return value not in (None, "", [], {})


# --- MLOPS-001 no admin or wildcard permissions --------------------------------------------------

_FORBIDDEN_MANAGED_POLICIES = ("AmazonSageMakerFullAccess", "AdministratorAccess")
_IAM_TYPES = frozenset({"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::User"})


def _wildcard_actions(document: Any) -> list[str]:
    found: list[str] = []
    for statement in _statements(document):
        if statement.get("Effect") != "Allow":
            continue
        for action in _as_list(statement.get("Action", [])):
            if isinstance(action, str) and (action == "*" or action.endswith(":*")):
                found.append(action)
    return found


def check_no_admin_permissions(
    logical_id: str, resource: Mapping[str, Any], stack: StackView, settings: GuardrailSettings
) -> str | None:
    """MLOPS-001: no full-access managed policy and no ``*`` (or ``service:*``) action."""
    props = _props(resource)
    problems: list[str] = []
    managed = " ".join(_strings(props.get("ManagedPolicyArns", [])))
    problems += [f"attaches {name}" for name in _FORBIDDEN_MANAGED_POLICIES if f"policy/{name}" in managed]
    documents = [props.get("PolicyDocument")]
    documents += [p.get("PolicyDocument") for p in props.get("Policies", []) if isinstance(p, dict)]
    for document in documents:
        problems += [f"allows action {a!r}" for a in _wildcard_actions(document)]
    if not problems:
        return None
    return (
        f"{'; '.join(problems)}. Grant least privilege through the constructs' grant_* methods "
        "(or list the exact actions) instead"
    )


# --- MLOPS-002 customer-managed KMS keys ---------------------------------------------------------


def _bucket_cmk(props: Mapping[str, Any]) -> bool:
    rules = (props.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration", [])
    for rule in rules:
        default = rule.get("ServerSideEncryptionByDefault", {})
        if default.get("SSEAlgorithm") in ("aws:kms", "aws:kms:dsse") and _is_set(default.get("KMSMasterKeyID")):
            return True
    return False


def _monitoring_output_key(props: Mapping[str, Any]) -> bool:
    for name, value in props.items():
        if name.endswith("OutputConfig") and isinstance(value, dict):
            return _is_set(value.get("KmsKeyId"))
    definition = props.get("MonitoringScheduleConfig", {}).get("MonitoringJobDefinition")
    if isinstance(definition, dict):
        return _is_set(definition.get("MonitoringOutputConfig", {}).get("KmsKeyId"))
    return True  # a schedule that references a job definition: the definition is checked itself


_ENCRYPTION_CHECKS: dict[str, tuple[Callable[[Mapping[str, Any]], bool], str]] = {
    "AWS::S3::Bucket": (_bucket_cmk, "set BucketEncryption to aws:kms with a KMSMasterKeyID"),
    "AWS::SQS::Queue": (lambda p: _is_set(p.get("KmsMasterKeyId")), "set KmsMasterKeyId (encryption=KMS)"),
    "AWS::SNS::Topic": (lambda p: _is_set(p.get("KmsMasterKeyId")), "set KmsMasterKeyId (master_key=...)"),
    "AWS::DynamoDB::Table": (
        lambda p: (
            bool((p.get("SSESpecification") or {}).get("SSEEnabled"))
            and _is_set((p.get("SSESpecification") or {}).get("KMSMasterKeyId"))
        ),
        "set SSESpecification with a KMSMasterKeyId (encryption=CUSTOMER_MANAGED)",
    ),
    "AWS::SageMaker::EndpointConfig": (lambda p: _is_set(p.get("KmsKeyId")), "set KmsKeyId"),
    "AWS::SageMaker::DataQualityJobDefinition": (_monitoring_output_key, "set the output KmsKeyId"),
    "AWS::SageMaker::ModelQualityJobDefinition": (_monitoring_output_key, "set the output KmsKeyId"),
    "AWS::SageMaker::ModelBiasJobDefinition": (_monitoring_output_key, "set the output KmsKeyId"),
    "AWS::SageMaker::ModelExplainabilityJobDefinition": (_monitoring_output_key, "set the output KmsKeyId"),
    "AWS::SageMaker::MonitoringSchedule": (_monitoring_output_key, "set the output KmsKeyId"),
}


def check_customer_managed_key(
    logical_id: str, resource: Mapping[str, Any], stack: StackView, settings: GuardrailSettings
) -> str | None:
    """MLOPS-002: data at rest is encrypted with a customer-managed KMS key."""
    check, fix = _ENCRYPTION_CHECKS[resource["Type"]]
    if check(_props(resource)):
        return None
    return f"{resource['Type']} is not encrypted with a customer-managed KMS key; {fix}"


# --- MLOPS-003..006 prod: retention, termination protection, rollback alarms, versioned data -----

_STATEFUL_TYPES = frozenset(
    {
        "AWS::S3::Bucket",
        "AWS::DynamoDB::Table",
        "AWS::SageMaker::ModelPackageGroup",
        "AWS::KMS::Key",
        "AWS::Logs::LogGroup",
    }
)


def check_retained(
    logical_id: str, resource: Mapping[str, Any], stack: StackView, settings: GuardrailSettings
) -> str | None:
    """MLOPS-003: in prod, stateful resources survive stack deletion and replacement."""
    policies = (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy"))
    if all(p in ("Retain", "RetainExceptOnCreate") for p in policies):
        return None
    return (
        f"{resource['Type']} has DeletionPolicy {policies[0] or 'Delete'} and UpdateReplacePolicy "
        f"{policies[1] or 'Delete'}; in prod use removal_policy=RemovalPolicy.RETAIN"
    )


def check_termination_protection(stack: StackView, settings: GuardrailSettings) -> Iterable[tuple[str, str]]:
    """MLOPS-004: in prod, stacks have termination protection."""
    if stack.termination_protection:
        return []
    return [("(stack)", "the stack has no termination protection; set termination_protection=True")]


def check_rollback_alarms(
    logical_id: str, resource: Mapping[str, Any], stack: StackView, settings: GuardrailSettings
) -> str | None:
    """MLOPS-005: in prod, endpoint deployments roll back automatically on alarms."""
    rollback = (_props(resource).get("DeploymentConfig") or {}).get("AutoRollbackConfiguration") or {}
    if _is_set(rollback.get("Alarms")):
        return None
    return "the endpoint has no auto-rollback alarms; set DeploymentConfig.AutoRollbackConfiguration.Alarms"


def check_versioned_data(
    logical_id: str, resource: Mapping[str, Any], stack: StackView, settings: GuardrailSettings
) -> str | None:
    """MLOPS-006: in prod, buckets keep every object version (training data is never silently changed)."""
    if (_props(resource).get("VersioningConfiguration") or {}).get("Status") == "Enabled":
        return None
    return "the bucket is not versioned; set versioned=True (VersioningConfiguration Status Enabled)"


# --- MLOPS-007 network isolation ------------------------------------------------------------------

_SAGEMAKER_COMPUTE = frozenset(
    {
        "AWS::SageMaker::Model",
        "AWS::SageMaker::DataQualityJobDefinition",
        "AWS::SageMaker::ModelQualityJobDefinition",
        "AWS::SageMaker::ModelBiasJobDefinition",
        "AWS::SageMaker::ModelExplainabilityJobDefinition",
    }
)
_MONITORING_SCHEDULE = "AWS::SageMaker::MonitoringSchedule"
_PIPELINE = "AWS::SageMaker::Pipeline"
_FUNCTION = "AWS::Lambda::Function"
_NETWORK_TYPES = _SAGEMAKER_COMPUTE | {_MONITORING_SCHEDULE, _PIPELINE, _FUNCTION}
_ISOLATION = "the environment requires network isolation"
#: Pipeline steps whose job request (the step's ``Arguments``) keeps its VPC in ``NetworkConfig.VpcConfig``,
#: as CreateProcessingJob does: Clarify and quality checks are processing jobs.
_PROCESSING_STEPS = frozenset({"Processing", "QualityCheck", "ClarifyCheck"})
_VPC_FIX = "with Subnets and SecurityGroupIds"
#: What stands for a CloudFormation function (a reference, a Sub variable) in a definition's JSON text.
_PLACEHOLDER = "__cfn_value_{}__"
_PLACEHOLDER_PATTERN = re.compile(_PLACEHOLDER.format(r"(\d+)"))
_SUB_VARIABLE = re.compile(r"(\$\{[^!}][^}]*\})")


def check_network_isolation(
    logical_id: str, resource: Mapping[str, Any], stack: StackView, settings: GuardrailSettings
) -> str | None:
    """MLOPS-007: where required, models, monitoring jobs, pipeline jobs and functions run in the VPC."""
    if not settings.require_network_isolation:
        return None
    props = _props(resource)
    if resource["Type"] == _PIPELINE:
        return _pipeline_network_problem(props, stack)
    if resource["Type"] == _FUNCTION:
        return _function_network_problem(props)
    if resource["Type"] == _MONITORING_SCHEDULE:
        inline = _mapping(props.get("MonitoringScheduleConfig")).get("MonitoringJobDefinition")
        if not isinstance(inline, Mapping):
            return None  # it names a job definition, which is checked itself
        props = inline
    if resource["Type"] == "AWS::SageMaker::Model":
        vpc, isolated = props.get("VpcConfig"), props.get("EnableNetworkIsolation") is True
    else:
        network = props.get("NetworkConfig") or {}
        vpc, isolated = network.get("VpcConfig"), network.get("EnableNetworkIsolation") is True
    if _is_set(vpc) and isolated:
        return None
    return f"{_ISOLATION}; give the construct VPC subnets and security groups"


def _function_network_problem(props: Mapping[str, Any]) -> str | None:
    vpc = props.get("VpcConfig")
    if isinstance(vpc, Mapping) and _is_set(vpc.get("SubnetIds")) and _is_set(vpc.get("SecurityGroupIds")):
        return None
    return (
        f"{_ISOLATION}, and the function runs outside any VPC: set VpcConfig SubnetIds and SecurityGroupIds "
        "(vpc, vpc_subnets and security_groups on the construct that creates it)"
    )


def _pipeline_network_problem(props: Mapping[str, Any], stack: StackView) -> str | None:
    """Every step of the definition that starts a job outside the VPC, by name; None when there is none."""
    definition = _mapping(props.get("PipelineDefinition"))
    if "PipelineDefinitionBody" not in definition:
        where = (
            "read from S3 (PipelineDefinitionS3Location)" if "PipelineDefinitionS3Location" in definition else "unknown"
        )
        return (
            f"{_ISOLATION}, and the pipeline's definition is {where}, so the network of the jobs it starts cannot be "
            "checked offline; give the definition as PipelineDefinitionBody, or acknowledge MLOPS-007 on the "
            "pipeline with the reason its jobs run in the VPC"
        )
    values: list[Any] = []
    try:
        parsed = json.loads(_definition_text(definition["PipelineDefinitionBody"], values))
    except ValueError:
        parsed = None
    if not isinstance(parsed, Mapping):
        return f"{_ISOLATION}, and the pipeline's PipelineDefinitionBody is not JSON, so its jobs cannot be checked"
    steps = list(_steps(parsed.get("Steps", [])))
    by_name = {str(s["Name"]): s for s in steps}
    problems = [p for p in (_step_problem(s, by_name, stack, values) for s in steps) if p]
    if not problems:
        return None
    return (
        f"{_ISOLATION}; these pipeline steps start jobs outside the VPC: {'; '.join(problems)}. Give the pipeline's "
        "jobs VPC subnets and security groups (TrainingPipeline: vpc, vpc_subnets and security_groups)"
    )


def _steps(node: Any) -> Iterator[Mapping[str, Any]]:
    """Every step under ``node``, including those a Condition step holds in IfSteps and ElseSteps."""
    if isinstance(node, Mapping):
        if isinstance(node.get("Name"), str) and isinstance(node.get("Type"), str) and "Arguments" in node:
            yield node
        for value in node.values():
            yield from _steps(value)
    elif isinstance(node, list):
        for item in node:
            yield from _steps(item)


def _vpc_set(vpc: Any) -> bool:
    """A job's VpcConfig with subnets and security groups (a placeholder stands for a reference)."""
    return isinstance(vpc, Mapping) and _is_set(vpc.get("Subnets")) and _is_set(vpc.get("SecurityGroupIds"))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _step_problem(
    step: Mapping[str, Any], by_name: Mapping[str, Mapping[str, Any]], stack: StackView, values: list[Any]
) -> str | None:
    """What keeps one step's job out of the VPC, or None (also for steps that start no job)."""
    name, kind, arguments = step["Name"], step["Type"], _mapping(step["Arguments"])
    problem: str | None = None
    if kind == "Transform":
        problem = _transform_problem(arguments.get("ModelName"), by_name, stack, values)
    elif kind in _PROCESSING_STEPS and not _vpc_set(_mapping(arguments.get("NetworkConfig")).get("VpcConfig")):
        problem = f"no NetworkConfig.VpcConfig {_VPC_FIX}"
    elif kind == "Training" and not _vpc_set(arguments.get("VpcConfig")):
        problem = f"no VpcConfig {_VPC_FIX}"
    elif kind == "Tuning" and not _tuning_in_vpc(arguments):
        problem = f"no VpcConfig {_VPC_FIX} in every training job definition"
    return f"{name!r} ({kind}: {problem})" if problem else None


def _tuning_in_vpc(arguments: Mapping[str, Any]) -> bool:
    definitions = [arguments.get("TrainingJobDefinition"), *(arguments.get("TrainingJobDefinitions") or [])]
    jobs = [_mapping(d) for d in definitions if d is not None]
    return bool(jobs) and all(_vpc_set(job.get("VpcConfig")) for job in jobs)


def _transform_problem(
    model: Any, by_name: Mapping[str, Mapping[str, Any]], stack: StackView, values: list[Any]
) -> str | None:
    """A transform job runs in its model's VPC (CreateTransformJob has no VpcConfig of its own)."""
    reference = _mapping(model).get("Get")
    if isinstance(reference, str) and reference.startswith("Steps.") and reference.endswith(".ModelName"):
        source = by_name.get(reference.removeprefix("Steps.").removesuffix(".ModelName"))
        if source is not None and source["Type"] == "Model":
            if _vpc_set(_mapping(source["Arguments"]).get("VpcConfig")):
                return None
            return f"its model, from step {source['Name']!r}, has no VpcConfig {_VPC_FIX}"
    value = _placeholder_value(model, values)
    target = _getatt_target(value) or _mapping(value).get("Ref")
    if _mapping(stack.resources.get(str(target))).get("Type") == "AWS::SageMaker::Model":
        return None  # a model of this stack, which this rule checks itself
    shown = model if value is None else value
    return f"model {shown!r} is not created in this pipeline or stack, so its network cannot be checked here"


def _placeholder_value(text: Any, values: list[Any]) -> Any:
    """The CloudFormation function a whole-string placeholder stands for, else None."""
    match = _PLACEHOLDER_PATTERN.fullmatch(text) if isinstance(text, str) else None
    return values[int(match.group(1))] if match else None


def _definition_text(body: Any, values: list[Any]) -> str:
    """A definition body's JSON text, each CloudFormation function in it replaced by a placeholder.

    CDK renders a definition with references as ``Fn::Join`` (or a template as ``Fn::Sub``) of JSON
    text and functions. A placeholder inside a JSON string is bare text, elsewhere a JSON string, so
    the text parses either way; ``values`` receives the function each placeholder stands for.
    """
    text: list[str] = []
    in_string = escaped = False
    for part in _text_parts(body):
        if isinstance(part, str):
            text.append(part)
            for char in part:
                if escaped:
                    escaped = False
                elif char == "\\" and in_string:
                    escaped = True
                elif char == '"':
                    in_string = not in_string
            continue
        values.append(part.value)
        placeholder = _PLACEHOLDER.format(len(values) - 1)
        text.append(placeholder if in_string else f'"{placeholder}"')
    return "".join(text)


@dataclass(frozen=True)
class _Function:
    """A CloudFormation function inside a definition's text."""

    value: Any


def _text_parts(value: Any) -> Iterator[str | _Function]:
    """``value`` as literal text and the functions between it (through Fn::Join and Fn::Sub)."""
    if isinstance(value, str):
        yield value
        return
    join = value.get("Fn::Join") if isinstance(value, dict) else None
    if isinstance(join, list) and len(join) == 2 and isinstance(join[0], str) and isinstance(join[1], list):
        for index, item in enumerate(join[1]):
            if index:
                yield join[0]
            yield from _text_parts(item)
        return
    sub = value.get("Fn::Sub") if isinstance(value, dict) else None
    template = sub[0] if isinstance(sub, list) and sub else sub
    if isinstance(template, str):
        variables = sub[1] if isinstance(sub, list) and len(sub) > 1 and isinstance(sub[1], dict) else {}
        for piece in _SUB_VARIABLE.split(template):
            if _SUB_VARIABLE.fullmatch(piece):
                yield _Function(_sub_reference(piece[2:-1], variables))
            else:
                yield piece.replace("${!", "${")
        return
    yield _Function(value)


def _sub_reference(name: str, variables: Mapping[str, Any]) -> Any:
    """What ``${name}`` in an Fn::Sub template stands for, as the equivalent function.

    A name from the variable map is its value; ``${Id.Attribute}`` is ``Fn::GetAtt``; any other
    name is ``Ref`` (a resource, a parameter or a pseudo parameter such as ``AWS::Region``).
    """
    if name in variables:
        return variables[name]
    resource, dot, attribute = name.partition(".")
    return {"Fn::GetAtt": [resource, attribute]} if dot else {"Ref": name}


# --- MLOPS-008 Lambda functions --------------------------------------------------------------------

_JOB_STARTING_ACTIONS = ("sagemaker:StartPipelineExecution", "sagemaker:CreateTrainingJob")


def _getatt_target(value: Any) -> str | None:
    """The logical id a ``Fn::GetAtt`` points at, if ``value`` is one."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else target.split(".")[0])
    return None


def _role_logical_id(function: Mapping[str, Any]) -> str | None:
    return _getatt_target(_props(function).get("Role"))


def _role_actions(stack: StackView, role_id: str) -> set[str]:
    actions: set[str] = set()
    for resource in stack.resources.values():
        props = _props(resource)
        if resource.get("Type") == "AWS::IAM::Policy" and {"Ref": role_id} in props.get("Roles", []):
            for statement in _statements(props.get("PolicyDocument")):
                actions.update(a for a in _as_list(statement.get("Action", [])) if isinstance(a, str))
        if resource.get("Type") == "AWS::IAM::Role" and stack.resources.get(role_id) is resource:
            for policy in props.get("Policies", []):
                for statement in _statements(policy.get("PolicyDocument")):
                    actions.update(a for a in _as_list(statement.get("Action", [])) if isinstance(a, str))
    return actions


def _has_failure_destination(stack: StackView, logical_id: str, props: Mapping[str, Any]) -> bool:
    if _is_set(props.get("DeadLetterConfig")):
        return True
    for resource in stack.resources.values():
        other = _props(resource)
        function_ref = other.get("FunctionName")
        if function_ref != {"Ref": logical_id}:
            continue
        if resource.get("Type") == "AWS::Lambda::EventInvokeConfig" and _is_set(
            (other.get("DestinationConfig") or {}).get("OnFailure")
        ):
            return True
        # An SQS source keeps failed messages on its queue, and the queue's redrive policy moves them to a DLQ.
        if resource.get("Type") == "AWS::Lambda::EventSourceMapping":
            source = _getatt_target(other.get("EventSourceArn"))
            queue = stack.resources.get(source or "", {})
            if queue.get("Type") == "AWS::SQS::Queue" and _is_set(_props(queue).get("RedrivePolicy")):
                return True
    return False


_CUSTOM_RESOURCE = "AWS::CloudFormation::CustomResource"
#: Resources through which something other than CloudFormation invokes a function.
_INVOKERS = frozenset({"AWS::Lambda::EventSourceMapping", "AWS::Lambda::Permission", "AWS::Lambda::EventInvokeConfig"})


def _names_function(value: Any, logical_id: str) -> bool:
    return value == {"Ref": logical_id} or _getatt_target(value) == logical_id


def _is_custom_resource_provider(stack: StackView, logical_id: str) -> bool:
    """Only CloudFormation invokes the function: custom resources name it as their ServiceToken, nothing else."""
    serves = False
    for resource in stack.resources.values():
        kind, props = str(resource.get("Type", "")), _props(resource)
        if kind in _INVOKERS and _names_function(props.get("FunctionName"), logical_id):
            return False
        if (kind == _CUSTOM_RESOURCE or kind.startswith("Custom::")) and _names_function(
            props.get("ServiceToken"), logical_id
        ):
            serves = True
    return serves


def check_lambda_function(
    logical_id: str, resource: Mapping[str, Any], stack: StackView, settings: GuardrailSettings
) -> str | None:
    """MLOPS-008: functions use the runtime constant, have a failure destination, and cap job starts.

    A deploy-time custom-resource provider needs no failure destination: CloudFormation sends it
    each request and waits for the answer, and a failed or missing answer fails (and rolls back)
    the stack operation, so no request is lost.
    """
    props = _props(resource)
    problems: list[str] = []
    runtime = props.get("Runtime")
    if runtime != settings.lambda_runtime:
        problems.append(f"runtime {runtime!r} is not {settings.lambda_runtime!r}; use LAMBDA_RUNTIME")
    if not _is_custom_resource_provider(stack, logical_id) and not _has_failure_destination(stack, logical_id, props):
        problems.append("no dead-letter queue or on-failure destination; failed events would be lost")
    role_id = _role_logical_id(resource)
    starts_jobs = role_id is not None and any(a in _role_actions(stack, role_id) for a in _JOB_STARTING_ACTIONS)
    if starts_jobs and "ReservedConcurrentExecutions" not in props:
        problems.append("it starts SageMaker jobs but has no reserved concurrency; set reserved_concurrent_executions")
    return "; ".join(problems) or None


# --- MLOPS-009 cost-allocation tags ----------------------------------------------------------------

#: Resource types that accept tags in CloudFormation, among those the library creates.
TAGGABLE_TYPES = frozenset(
    {
        "AWS::S3::Bucket",
        "AWS::KMS::Key",
        "AWS::SQS::Queue",
        "AWS::SNS::Topic",
        "AWS::DynamoDB::Table",
        "AWS::Lambda::Function",
        "AWS::IAM::Role",
        "AWS::Logs::LogGroup",
        "AWS::CloudWatch::Alarm",
        "AWS::SageMaker::Pipeline",
        "AWS::SageMaker::ModelPackageGroup",
        "AWS::SageMaker::Model",
        "AWS::SageMaker::EndpointConfig",
        "AWS::SageMaker::Endpoint",
        "AWS::SageMaker::MonitoringSchedule",
        "AWS::CodePipeline::Pipeline",
        "AWS::CodeBuild::Project",
    }
)


def _tag_keys(tags: Any) -> set[str]:
    if isinstance(tags, list):
        return {t["Key"] for t in tags if isinstance(t, dict) and "Key" in t}
    if isinstance(tags, dict):
        return set(tags)
    return set()


def check_tags(
    logical_id: str, resource: Mapping[str, Any], stack: StackView, settings: GuardrailSettings
) -> str | None:
    """MLOPS-009: every taggable resource carries the cost-allocation tags."""
    missing = [k for k in settings.required_tags if k not in _tag_keys(_props(resource).get("Tags"))]
    if not missing:
        return None
    return f"missing tag(s) {', '.join(missing)}; tag the stage with cdk_mlops.compliance.apply_tags"


#: Every guardrail, in id order.
RULES: tuple[Rule, ...] = (
    Rule(
        id="MLOPS-001",
        title="No admin or wildcard permissions",
        rationale="A role with AmazonSageMakerFullAccess, AdministratorAccess or a * action can read every "
        "dataset and model in the account; least privilege keeps one compromised job contained.",
        severity=Severity.ERROR,
        resource_check=check_no_admin_permissions,
        resource_types=_IAM_TYPES,
    ),
    Rule(
        id="MLOPS-002",
        title="Customer-managed KMS keys for data at rest",
        rationale="A customer-managed key lets the platform team audit and revoke access to data, queues, "
        "topics, tables, endpoint volumes and monitoring output independently of IAM.",
        severity=Severity.ERROR,
        resource_check=check_customer_managed_key,
        resource_types=frozenset(_ENCRYPTION_CHECKS),
    ),
    Rule(
        id="MLOPS-003",
        title="Prod: stateful resources are retained",
        rationale="Deleting or replacing a prod stack must never delete training data, registered models, "
        "keys or audit logs.",
        severity=Severity.ERROR,
        resource_check=check_retained,
        resource_types=_STATEFUL_TYPES,
        prod_only=True,
    ),
    Rule(
        id="MLOPS-004",
        title="Prod: termination protection",
        rationale="A prod stack is deleted on purpose, in two steps, never by a stray `cdk destroy`.",
        severity=Severity.ERROR,
        stack_check=check_termination_protection,
        prod_only=True,
    ),
    Rule(
        id="MLOPS-005",
        title="Prod: endpoints roll back on alarms",
        rationale="A bad model version must be rolled back by the deployment itself, not by a person at 3 am.",
        severity=Severity.ERROR,
        resource_check=check_rollback_alarms,
        resource_types=frozenset({"AWS::SageMaker::Endpoint"}),
        prod_only=True,
    ),
    Rule(
        id="MLOPS-006",
        title="Prod: versioned data",
        rationale="Every model must trace back to the exact bytes it was trained on; unversioned buckets "
        "let those bytes change silently.",
        severity=Severity.ERROR,
        resource_check=check_versioned_data,
        resource_types=frozenset({"AWS::S3::Bucket"}),
        prod_only=True,
    ),
    Rule(
        id="MLOPS-007",
        title="Network isolation where the environment requires it",
        rationale="Regulated environments keep the traffic of everything that touches data inside the VPC: "
        "models, monitoring jobs, every job a pipeline starts, and Lambda functions.",
        severity=Severity.ERROR,
        resource_check=check_network_isolation,
        resource_types=_NETWORK_TYPES,
    ),
    Rule(
        id="MLOPS-008",
        title="Lambda functions: current runtime, failure destination, bounded job starts",
        rationale="An old runtime loses security patches, a function without a failure destination loses "
        "events, and unbounded concurrency can start a storm of training jobs.",
        severity=Severity.ERROR,
        resource_check=check_lambda_function,
        resource_types=frozenset({"AWS::Lambda::Function"}),
    ),
    Rule(
        id="MLOPS-009",
        title="Cost-allocation tags",
        rationale="Cost reports group spend by project, environment and owner; an untagged resource is "
        "spend nobody owns.",
        severity=Severity.ERROR,
        resource_check=check_tags,
        resource_types=TAGGABLE_TYPES,
    ),
)


def evaluate(stack: StackView, settings: GuardrailSettings, rules: Iterable[Rule] = RULES) -> list[Finding]:
    """Run the rules that apply under ``settings`` on one stack; pure, no CDK needed."""
    findings: list[Finding] = []
    for rule in rules:
        if rule.id in settings.disabled or (rule.prod_only and not settings.prod):
            continue
        findings.extend(rule.run(stack, settings))
    return findings


def _severity(rule_id: str, settings: GuardrailSettings) -> Severity:
    default = next(r.severity for r in RULES if r.id == rule_id)
    return settings.severities.get(rule_id, default)


@jsii.implements(cdk.IPolicyValidationPlugin)
class GuardrailsPlugin:
    """The guardrails as a CDK policy-validation plugin (see :func:`apply_guardrails`)."""

    def __init__(self, scope: IConstruct, settings: GuardrailSettings) -> None:
        self._scope = scope
        self._settings = settings

    @property
    def name(self) -> str:
        return PLUGIN_NAME

    @property
    def version(self) -> str:
        return __version__

    @property
    def rule_ids(self) -> list[str]:
        return [r.id for r in RULES]

    def _termination_protection(self) -> dict[str, bool]:
        protected: dict[str, bool] = {}
        for construct in self._scope.node.find_all():
            if isinstance(construct, cdk.Stack):
                protected[construct.template_file] = bool(construct.termination_protection)
        return protected

    def validate(self, context: cdk.IPolicyValidationContext) -> cdk.PolicyValidationPluginReport:
        protected = self._termination_protection()
        grouped: dict[tuple[str, str], list[cdk.PolicyViolatingResource]] = {}
        for template_path in context.template_paths:
            template = json.loads(Path(template_path).read_text())
            view = StackView(template, protected.get(Path(template_path).name, False))
            for finding in evaluate(view, self._settings):
                grouped.setdefault((finding.rule_id, finding.message), []).append(
                    cdk.PolicyViolatingResource(
                        locations=[], resource_logical_id=finding.logical_id, template_path=template_path
                    )
                )
        violations = [
            cdk.PolicyViolation(
                rule_name=rule_id,
                description=f"{rule_id}: {message}",
                violating_resources=resources,
                severity=_severity(rule_id, self._settings).value,
                fix=f"fix the resource, or acknowledge {PLUGIN_NAME}::{rule_id} on its construct with a reason",
            )
            for (rule_id, message), resources in grouped.items()
        ]
        success = all(v.severity != Severity.ERROR.value for v in violations)
        return cdk.PolicyValidationPluginReport(success=success, violations=violations)


def apply_guardrails(stage: cdk.Stage, settings: GuardrailSettings) -> GuardrailsPlugin:
    """Check every stack of ``stage`` against the guardrails at synth.

    Args:
        stage: The Stage (or App) whose stacks are checked.
        settings: Which rules run and how strictly; usually
            ``GuardrailSettings.for_environment(config)``.
    """
    plugin = GuardrailsPlugin(stage, settings)
    cdk.Validations.of(stage).add_plugins(plugin)
    return plugin
