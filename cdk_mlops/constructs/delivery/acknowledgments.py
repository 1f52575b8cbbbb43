"""The cdk-nag IAM5 acknowledgments of the roles CDK Pipelines and CodeBuild generate, with reasons.

The pipelines' roles get their statements from aws-cdk-lib and CDK Pipelines, some on wildcard
resources. :class:`_AcknowledgePipelineWildcards` reads the final policies (after the rewrites of
:mod:`.rewrites` and :mod:`.replication`) and acknowledges each wildcard that belongs to a known
family, with the reason it is safe; any other wildcard stays a finding and fails synth.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import jsii
from aws_cdk import Stack
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct, IValidation

from cdk_mlops.constructs.common import acknowledge, iam5_findings, nag_resource
from cdk_mlops.constructs.delivery.replication import _replication_keys
from cdk_mlops.constructs.delivery.rewrites import _actions, _resources

#: What aws-cdk-lib grants a CodeBuild project's role on ``*`` when the project runs in a VPC:
#: CodeBuild creates, describes and deletes the build's network interface with that role.
_VPC_BUILD_ACTIONS: Final = frozenset(
    {
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DeleteNetworkInterface",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeDhcpOptions",
        "ec2:DescribeVpcs",
    }
)
#: Granted with it, on ``network-interface/*``, by condition for the project's subnets and CodeBuild only.
_INTERFACE_PERMISSION: Final = "ec2:CreateNetworkInterfacePermission"


@dataclass(frozen=True)
class _WildcardRule:
    """A family of wildcard permissions that CDK Pipelines or CodeBuild generate, and why each is safe."""

    reason: str
    matches: Callable[[Mapping[str, Any], list[str], str], bool]


_CODEBUILD_OWN = re.compile(
    r"^arn:<AWS::Partition>:(logs|codebuild):[^:]+:[^:]+:"
    r"(log-group:/aws/codebuild/<[A-Za-z0-9]+>(:\*)?|report-group/<[A-Za-z0-9]+>-\*)\Z"
)
_BOOTSTRAP_ROLE_TAG = "iam:ResourceTag/aws-cdk:bootstrap-role"
# CDK Pipelines' shared asset publishing role, and what it grants for projects created after it.
_ASSET_ROLE = "/Assets/FileRole/"
_CODEBUILD_ANY = re.compile(
    r"^arn:<AWS::Partition>:(logs|codebuild):[^:]+:[0-9]{12}:(log-group:/aws/codebuild/\*|report-group/\*)\Z"
)
_CODEBUILD_RUN_ACTIONS = frozenset({"codebuild:BatchGetBuilds", "codebuild:StartBuild", "codebuild:StopBuild"})


@jsii.implements(IValidation)
class _AcknowledgePipelineWildcards:
    """Acknowledges the IAM5 findings of the generated pipeline roles, computed from the final policies.

    CDK Pipelines and CodeBuild add statements until the app is prepared; node validations run
    after that, so the findings computed here are the ones cdk-nag reports. Each statement is
    matched against a known family (artifact bucket, artifact key, a project's own logs and
    reports, CDK bootstrap roles); a wildcard outside every family stays unacknowledged and fails
    synth.
    """

    def __init__(
        self,
        owner: Construct,
        buckets: Sequence[s3.IBucket],
        keys: Sequence[kms.IKey | None],
        *,
        replicating: codepipeline.Pipeline | None = None,
    ) -> None:
        self._owner = owner
        self._buckets = buckets
        self._keys = [k for k in keys if k is not None]
        self._replicating = replicating

    def _rules(self) -> list[_WildcardRule]:
        buckets = {nag_resource(self._owner, b.bucket_arn) for b in self._buckets}
        keys = {nag_resource(self._owner, k.key_arn) for k in self._keys}
        replicated: dict[str, str] = {}  # a replication key's ARNs in a finding id -> its alias
        role_policy = None
        if self._replicating is not None:
            replicated = {
                nag_resource(self._owner, k.key_arns): k.alias_name for k in _replication_keys(self._replicating)
            }
            role_policy = f"{self._replicating.role.node.path}/DefaultPolicy/Resource"

        def artifacts(statement: Mapping[str, Any], resources: list[str], path: str) -> bool:
            return all(r.split("/", 1)[0] in buckets for r in resources)

        def own_keys(statement: Mapping[str, Any], resources: list[str], path: str) -> bool:
            return set(resources) <= keys and all(a.startswith("kms:") for a in _actions(statement))

        def codebuild_own(statement: Mapping[str, Any], resources: list[str], path: str) -> bool:
            return all(_CODEBUILD_OWN.match(r) for r in resources)

        def bootstrap_roles(statement: Mapping[str, Any], resources: list[str], path: str) -> bool:
            condition = statement.get("Condition", {})
            tagged = any(_BOOTSTRAP_ROLE_TAG in (values or {}) for values in condition.values())
            return tagged and _actions(statement) == ["sts:AssumeRole"]

        def self_mutation_reads(statement: Mapping[str, Any], resources: list[str], path: str) -> bool:
            return resources == ["*"] and set(_actions(statement)) <= {"cloudformation:DescribeStacks", "s3:ListBucket"}

        def replication_keys(statement: Mapping[str, Any], resources: list[str], path: str) -> bool:
            # The pipeline role's grant on a replication key, as _ScopeReplicationKeyGrants narrowed it.
            condition = (statement.get("Condition") or {}).get("ForAnyValue:StringEquals") or {}
            return (
                path == role_policy
                and len(resources) == 1
                and replicated.get(resources[0], "") == condition.get("kms:ResourceAliases")
                and all(a.startswith("kms:") for a in _actions(statement))
            )

        def vpc_builds(statement: Mapping[str, Any], resources: list[str], path: str) -> bool:
            actions = set(_actions(statement))
            if resources == ["*"]:
                return actions <= _VPC_BUILD_ACTIONS
            condition = (statement.get("Condition") or {}).get("StringEquals") or {}
            return (
                actions == {_INTERFACE_PERMISSION}
                and condition.get("ec2:AuthorizedService") == "codebuild.amazonaws.com"
                and "ec2:Subnet" in condition
                and all(r.endswith(":network-interface/*") for r in resources)
            )

        def asset_role(statement: Mapping[str, Any], resources: list[str], path: str) -> bool:
            if _ASSET_ROLE not in path:
                return False
            if resources == ["*"]:
                return set(_actions(statement)) <= _CODEBUILD_RUN_ACTIONS
            return all(_CODEBUILD_ANY.match(r) for r in resources)

        return [
            _WildcardRule(
                "pipeline artifacts: the s3 action families CDK grants for reading and writing artifacts, "
                "on this pipeline's KMS-encrypted artifact bucket only",
                artifacts,
            ),
            _WildcardRule(
                "kms:GenerateDataKey*/ReEncrypt* on this pipeline's own keys only (artifacts, notifications), "
                "to encrypt what it stores and publishes",
                own_keys,
            ),
            _WildcardRule(
                "CodeBuild writes the logs and test reports of its own project only; their names carry the "
                "project's generated name",
                codebuild_own,
            ),
            _WildcardRule(
                "CDK Pipelines self-mutation and asset publishing assume only CDK bootstrap roles "
                "(condition on the aws-cdk:bootstrap-role tag); their names carry the target account and region",
                bootstrap_roles,
            ),
            _WildcardRule(
                "self-mutation describes the pipeline's stack and lists the bootstrap asset buckets; "
                "these reads name no resource known at synth",
                self_mutation_reads,
            ),
            _WildcardRule(
                "cross-region deployments: the pipeline encrypts the artifacts it copies to another region with the "
                "replication bucket's key, whose ARN cannot be referenced across regions; the grant names the keys of "
                "the support stack's account and region and, by condition (kms:ResourceAliases), only the one with "
                "the replication key's alias",
                replication_keys,
            ),
            _WildcardRule(
                "CDK Pipelines creates the asset publishing role before the asset projects it serves, and makes it "
                "their CodePipeline action role too: it may write CodeBuild logs and reports in this account and "
                "region, and start and stop builds; it can assume only the targets' file-publishing roles",
                asset_role,
            ),
            _WildcardRule(
                "builds in a VPC: CodeBuild creates, describes and deletes each build's network interface with the "
                "project's role; the interface does not exist before the build and the EC2 Describe calls support no "
                "resource-level permissions; ec2:CreateNetworkInterfacePermission is limited by condition to the "
                "given subnets and the CodeBuild service",
                vpc_builds,
            ),
        ]

    def validate(self) -> list[str]:
        rules = self._rules()
        for construct in self._owner.node.find_all():
            if not isinstance(construct, iam.CfnPolicy):
                continue
            document = Stack.of(construct).resolve(construct.policy_document)
            statements = document.get("Statement", []) if isinstance(document, dict) else []
            for statement in statements:
                if statement.get("Effect") != "Allow":
                    continue
                resources = _resources(statement)
                wild_actions = [a for a in _actions(statement) if "*" in a]
                wild_resources = [r for r in resources if "*" in r]
                if not wild_actions and not wild_resources:
                    continue
                path = construct.node.path
                rule = next((r for r in rules if r.matches(statement, resources, path)), None)
                if rule is not None:
                    scope = construct.node.scope
                    assert scope is not None
                    acknowledge(scope, rule.reason, *iam5_findings(wild_actions, wild_resources))
        return []
