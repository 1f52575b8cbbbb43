"""Cross-cutting concerns applied once per app: compliance checks and tags."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import cx_api
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


#: Where CDK writes the policy-validation report inside a cloud assembly.
VALIDATION_REPORT = "validation-report.json"


def validation_failures(cloud_assembly: Path) -> list[str]:
    """Unacknowledged error findings in a cloud assembly's validation report, one line each.

    Each line is ``<plugin> <rule> <construct path>: <description>``.
    """
    report_file = cloud_assembly / VALIDATION_REPORT
    if not report_file.is_file():
        return []
    report = json.loads(report_file.read_text())
    lines: list[str] = []
    for plugin in report.get("pluginReports", []):
        if plugin.get("conclusion") != "failure":
            continue
        for violation in plugin.get("violations", []):
            if violation.get("severity", "error") not in ("error", "fatal"):
                continue
            for construct in violation.get("violatingConstructs", []):
                lines.append(
                    f"{plugin.get('pluginName')} {violation.get('ruleName')} "
                    f"{construct.get('constructPath')}: {violation.get('description', '').strip()}"
                )
    return lines


def synth_app(app: cdk.App) -> cx_api.CloudAssembly:
    """``app.synth()`` that fails, with one readable message, on any unacknowledged finding.

    aws-cdk-lib reports policy-validation failures (cdk-nag, guardrails) from its
    embedded Node.js process; whether a Python app's exit code shows them depends
    on how the app runs and on the versions. This reads the validation report the
    synth wrote and exits non-zero itself, listing every finding, however it runs.

    Raises:
        SystemExit: listing each finding (plugin, rule, construct path, description).
    """
    try:
        assembly = app.synth()
    except RuntimeError as error:
        if not str(error).startswith("ValidationFailed"):
            raise
        raise SystemExit(f"cdk-mlops: synth failed compliance checks\n{error}") from None
    failures = validation_failures(Path(assembly.directory))
    if failures:
        body = "\n".join(f"  - {line}" for line in failures)
        raise SystemExit(
            f"cdk-mlops: synth failed compliance checks ({len(failures)} findings)\n{body}\n"
            "Fix each resource, or acknowledge the finding on the construct that causes it, with a reason."
        )
    return assembly
