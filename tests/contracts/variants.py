"""Layouts of the reference platform that the AWS-contract checks synthesize, and their stacks.

Each variant is a ``cdk.json`` context: the repository's own, or the repository's with other
``environments`` and ``tooling`` sections. The templates of a variant include the stages that
the tooling pipeline deploys (``Tooling/Delivery/Platform/<Stage>/*``), since those are the
stacks that reach the accounts when delivery runs.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from cdk_mlops.config import CONTEXT_KEY, TOOLING_KEY
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.local.examples import example_tooling, with_example_models
from tests.conftest import REPO_ROOT, Platform, cdk_json_context, reference_platform, synthesize_platform
from tests.quality import cloudformation_exports, resolve_like_cloudformation

#: cfn-lint's region for an environment-agnostic stack (as tests/unit/test_compliance.py does).
AGNOSTIC_LINT_REGION = "us-east-1"
#: The account of an environment-agnostic stack, where a value needs one.
AGNOSTIC_ACCOUNT = "123456789012"
#: The accounts of the README's layout.
DEV, STAGING, PROD, TOOLING = "111111111111", "222222222222", "333333333333", "444444444444"
#: A region without SageMaker Experiments (not in the SDK's list) where every image the
#: library uses is published (cdk_mlops/image_uris.json); a test checks both.
NO_EXPERIMENTS_REGION = "eu-central-2"


def shipped_context() -> dict[str, Any]:
    """The repository's cdk.json context, as ``cdk synth`` reads it."""
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return context


_PLACEHOLDER_CONNECTION_ID = "00000000-0000-0000-0000-000000000000"
_README_BLOCK = re.compile(r"```json\n(\"(environments|tooling)\": \{.*?\n\})\n```", re.DOTALL)


def readme_sections() -> dict[str, Any]:
    """The ``environments`` and ``tooling`` examples of the README, with a placeholder connection id."""
    text = (REPO_ROOT / "README.md").read_text()
    sections: dict[str, Any] = {}
    for block, key in _README_BLOCK.findall(text):
        block = block.replace("connection/<id>", f"connection/{_PLACEHOLDER_CONNECTION_ID}")
        sections[key] = json.loads("{" + block + "}")[key]
    missing = sorted({CONTEXT_KEY, TOOLING_KEY} - sections.keys())
    if missing:
        raise LookupError(f"README.md has no ```json block that starts with {missing}; the README variant reads it")
    return sections


def _layout(environments: dict[str, Any], tooling: dict[str, Any] | None) -> dict[str, Any]:
    """The shipped context with other environments and tooling, every environment serving the example model."""
    context = shipped_context()
    context[CONTEXT_KEY] = copy.deepcopy(environments)
    context[TOOLING_KEY] = tooling
    return with_example_models(context)


def _in_regions(regions: dict[str, str], *, tooling_region: str | None) -> dict[str, Any]:
    """The README's accounts in ``regions``, with tooling in ``tooling_region`` (``None``: no delivery pipelines)."""
    accounts = {"dev": DEV, "staging": STAGING, "prod": PROD}
    environments = {name: {"account": accounts[name], "region": region} for name, region in regions.items()}
    tooling = None
    if tooling_region is not None:
        tooling = example_tooling(account=TOOLING, region=tooling_region)
    return _layout(environments, tooling)


def _readme() -> dict[str, Any]:
    sections = readme_sections()
    return _layout(sections[CONTEXT_KEY], sections[TOOLING_KEY])


@dataclass(frozen=True)
class Variant:
    """A layout of the platform to synthesize and check.

    Attributes:
        name: Short id, used in test ids.
        description: What the layout is.
        context: Builds the app context.
        is_platform_fixture: The layout is the session ``platform`` fixture's; it is reused.
    """

    name: str
    description: str
    context: Callable[[], dict[str, Any]]
    is_platform_fixture: bool = False


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("shipped", "cdk.json as shipped: environment-agnostic stages, tooling, no model", shipped_context),
        Variant("serving", "cdk.json with every environment serving a model", cdk_json_context, True),
        Variant("readme", "the README's layout: three accounts in one region, tooling in a fourth", _readme),
        Variant(
            "tooling-elsewhere",
            "the environments in eu-west-1, the tooling in us-east-1",
            lambda: _in_regions(
                {"dev": "eu-west-1", "staging": "eu-west-1", "prod": "eu-west-1"}, tooling_region="us-east-1"
            ),
        ),
        Variant(
            "three-regions",
            "dev, staging and prod in three regions, tooling in the first",
            lambda: _in_regions(
                {"dev": "eu-west-1", "staging": "us-east-1", "prod": "ap-southeast-2"}, tooling_region="eu-west-1"
            ),
        ),
        Variant(
            "no-experiments",
            f"one environment in {NO_EXPERIMENTS_REGION}, where SageMaker Experiments does not exist",
            lambda: _in_regions({"dev": NO_EXPERIMENTS_REGION}, tooling_region=None),
        ),
    )
}


@dataclass(frozen=True)
class DeployedStack:
    """One stack a variant deploys, with what cfn-lint and the pipeline checks need.

    Attributes:
        path: The construct path, e.g. ``Tooling/Delivery/Platform/Dev/Training``.
        stack: The stack construct (for cdk-nag).
        template: The synthesized template.
        region: Where it deploys; ``us-east-1`` for an environment-agnostic stack.
        account: Where it deploys; ``None`` for an environment-agnostic stack.
    """

    path: str
    stack: cdk.Stack
    template: dict[str, Any]
    region: str
    account: str | None


@dataclass(frozen=True)
class SynthesizedVariant:
    """A variant after synthesis: its stacks, or why it did not synthesize."""

    variant: Variant
    stacks: tuple[DeployedStack, ...] = ()
    error: str | None = None

    def require(self) -> tuple[DeployedStack, ...]:
        """The stacks; fails the calling test when the variant did not synthesize."""
        if self.error is not None:
            pytest.fail(f"variant {self.variant.name!r} did not synthesize (see its synthesis test): {self.error}")
        return self.stacks


def deployed_stacks(platform: Platform) -> tuple[DeployedStack, ...]:
    """Every stack of a synthesized platform, nested stages (the pipeline's) included."""
    constructs = {c.node.path: c for c in platform.app.node.find_all() if isinstance(c, cdk.Stack)}
    found: list[DeployedStack] = []
    for artifact in platform.assembly.stacks_recursively:
        environment = artifact.environment
        agnostic = cdk.Token.is_unresolved(constructs[artifact.hierarchical_id].region)
        found.append(
            DeployedStack(
                path=artifact.hierarchical_id,
                stack=constructs[artifact.hierarchical_id],
                template=artifact.template,
                region=AGNOSTIC_LINT_REGION if agnostic else environment.region,
                account=None if agnostic else environment.account,
            )
        )
    return tuple(found)


def synthesize(variant: Variant) -> SynthesizedVariant:
    """Synthesize a variant as ``cdk synth`` would (cdk-nag and guardrails included).

    A failed synthesis (an unacknowledged finding, a configuration error) is returned as
    ``error``, so that the test that checks synthesis reports it and the others can say why
    they cannot run.
    """
    try:
        platform = reference_platform() if variant.is_platform_fixture else synthesize_platform(variant.context())
    except (RuntimeError, ConfigurationError) as error:
        return SynthesizedVariant(variant, error=f"{type(error).__name__}: {error}")
    return SynthesizedVariant(variant, deployed_stacks(platform))


@cache
def synthesized(name: str) -> SynthesizedVariant:
    """The variant ``name`` (a key of :data:`VARIANTS`) synthesized once per process."""
    return synthesize(VARIANTS[name])


@cache
def experiments_regions() -> frozenset[str]:
    """The regions where SageMaker Experiments is available, as the SageMaker Python SDK lists them.

    The SDK module is read, not imported: importing it creates a boto3 client, which needs a region.

    Raises:
        LookupError: when the SDK (the ``sdk`` extra) is not installed, or no longer has the list.
    """
    spec = importlib.util.find_spec("sagemaker")
    locations = spec.submodule_search_locations if spec is not None else None
    source = Path(locations[0]) / "mlops" / "workflow" / "_utils.py" if locations else None
    if source is None or not source.is_file():
        raise LookupError("the SageMaker Python SDK is not installed; run `make install` (the sdk extra)")
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "EUREKA_GA_REGIONS" for t in node.targets):
            call = node.value
            if isinstance(call, ast.Call) and call.args:
                return frozenset(ast.literal_eval(call.args[0]))
    raise LookupError(f"{source} no longer defines EUREKA_GA_REGIONS; find where the SDK keeps the list")


@dataclass(frozen=True)
class DeployedPipeline:
    """A SageMaker pipeline of a deployed stack, its definition resolved as CloudFormation would.

    Attributes:
        stack_path: The stack's construct path.
        name: The pipeline's name.
        region: Its region (``us-east-1`` for an environment-agnostic stack).
        account: Its account (``123456789012`` for an environment-agnostic stack).
        definition: The pipeline definition (parsed JSON).
    """

    stack_path: str
    name: str
    region: str
    account: str
    definition: dict[str, Any]


def deployed_pipelines(stacks: Sequence[DeployedStack]) -> list[DeployedPipeline]:
    """Every ``AWS::SageMaker::Pipeline`` of ``stacks``, imports resolved from the stacks' exports."""
    located = [(s, s.account or AGNOSTIC_ACCOUNT) for s in stacks]
    exports = cloudformation_exports([(s.template, s.region, account) for s, account in located], service_arns=True)
    found: list[DeployedPipeline] = []
    for stack, account in located:
        for resource in stack.template.get("Resources", {}).values():
            if resource["Type"] != "AWS::SageMaker::Pipeline":
                continue
            properties = resolve_like_cloudformation(
                resource["Properties"],
                stack.template,
                region=stack.region,
                account=account,
                exports=exports,
                service_arns=True,
            )
            body = properties["PipelineDefinition"].get("PipelineDefinitionBody")
            if body is None:
                raise ValueError(f"{stack.path}: the checks read PipelineDefinitionBody; this pipeline has none")
            name = properties["PipelineName"]
            found.append(DeployedPipeline(stack.path, name, stack.region, account, json.loads(body)))
    return found
