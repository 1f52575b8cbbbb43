"""Cross-cutting concerns applied once per app: compliance checks and tags."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

from cdk_mlops.config import EnvironmentConfig


def apply_compliance(scope: cdk.App | cdk.Stage, *, verbose: bool = True) -> None:
    """Run the cdk-nag AwsSolutions rules on every stack under ``scope`` at synth.

    Any finding that is not acknowledged fails synthesis with a report that
    names the resource, the rule and how to acknowledge it. Acknowledgments
    belong in the construct that causes the finding, with a reason.

    Args:
        scope: The App (or a Stage) whose stacks are checked, nested stages included.
        verbose: Include each rule's explanation in the report. Default: - True.
    """
    cdk.Validations.of(scope).add_plugins(AwsSolutionsChecks(scope, verbose=verbose))


def apply_tags(scope: IConstruct, config: EnvironmentConfig) -> None:
    """Tag every taggable resource under ``scope`` with project, environment and owner.

    These three tags are what cost allocation reports group by; ``config.tags``
    adds organisation-specific ones.
    """
    tags = cdk.Tags.of(scope)
    tags.add("project", config.project)
    tags.add("environment", config.name)
    tags.add("owner", config.owner)
    for key, value in config.tags.items():
        tags.add(key, value)
