"""What the delivery pipelines' build steps do: pure decisions, thin AWS adapters, one command line.

The pipelines of :mod:`cdk_mlops.constructs.delivery` run these commands in CodeBuild, from the
repository's checkout (``python3 -m cdk_mlops.delivery_steps <command> ...``):

``security-report``
    Reads every ``validation-report.json`` of the synthesized cloud assembly (cdk-nag and the
    guardrails), writes the findings as JSON, text and JUnit XML (a CodeBuild test report), and
    fails on any unacknowledged error.
``verify``
    After an environment is deployed: its stacks are complete and carry their outputs, its
    training pipelines are active and its endpoints in service. Then records the deployed source
    revision, which the model pipeline deploys from.
``retrain``
    *Retrain when ML code changes, and only then.* Compares the fingerprint of a training
    pipeline (its definition and script assets, computed at synth by :func:`training_fingerprint`)
    with the one recorded at the previous deployment; when it changed, asks the environment's
    retrain trigger for one run on the current data version (a ``Manual Retrain`` event).
``pin-models``
    Before synth: writes the model each environment runs (package and drift-check baseline, as
    recorded by the model pipeline) into ``cdk.json``, so a re-synth deploys the same models.
``select-model``
    The newest approved package of the registry (:func:`cdk_mlops.promotion.decide_promotion`)
    and the settings that serve it (:func:`model_settings`), and whether this run delivers it
    (:data:`DELIVER`): not when the first environment already runs it (a repeated approval event).
``deploy-model``
    Deploys one environment with another model package, from the source revision the platform
    pipeline last deployed there, then records the package.
``endpoint-test``
    Invokes an endpoint with a sample request from the data store; checks latency and response shape.

Each command is a pure decision (tested without AWS) plus a few boto3 calls. The module imports
only the standard library and other stdlib-only modules of this package; boto3 is imported by the
commands that call AWS (install it in the build step with ``pip install boto3``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import shlex
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast
from xml.sax.saxutils import escape, quoteattr

from cdk_mlops.lambdas.retrain_trigger import MANUAL_RETRAIN, SOURCE
from cdk_mlops.pipeline_definition import METADATA_SOURCE_REVISION
from cdk_mlops.promotion import APPROVED, ModelVersion, PromotionAction, decide_promotion, version_of

if TYPE_CHECKING:
    import boto3

__all__ = [
    "DELIVER",
    "MODEL_RECORD_NONE",
    "MODEL_SETTINGS",
    "REDELIVER",
    "Finding",
    "RetrainAction",
    "RetrainDecision",
    "check_inference",
    "decide_retrain",
    "main",
    "model_record",
    "model_record_name",
    "model_settings",
    "parse_model_record",
    "pin_models",
    "read_findings",
    "retrain_request",
    "revision_record_name",
    "stack_problems",
    "training_fingerprint",
    "training_record_name",
]

#: The value a model record holds before the model pipeline has deployed any package there.
MODEL_RECORD_NONE: Final = "none"
#: The variable ``select-model`` exports: ``true`` when this run delivers the package, ``false``
#: when the first environment already runs it; the model pipeline skips every environment then.
DELIVER: Final = "DELIVER"
#: The model pipeline's variable that makes ``select-model`` deliver a package the first
#: environment already runs (``--redeliver true``), e.g. after a rejected approval.
REDELIVER: Final = "REDELIVER"
#: Who asks the retrain trigger for a run (``requestedBy`` of the ``Manual Retrain`` event).
REQUESTED_BY: Final = "platform delivery pipeline"
#: Stack statuses of a successfully deployed stack.
COMPLETE_STATUSES: Final = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"})
#: Severities that fail the security step.
BLOCKING_SEVERITIES: Final = frozenset({"error", "fatal"})
#: Where the validation report sits in a cloud assembly (and in every nested one).
VALIDATION_REPORT: Final = "validation-report.json"

_FINGERPRINT = re.compile(r"^[0-9a-f]{64}\Z")
_MODEL_PACKAGE_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:model-package/[^/]+/[0-9]+\Z")
# A source revision as the platform pipeline records it: a commit id, or a version of the S3 source object.
_REVISION = re.compile(r"^(git:[0-9a-f]{7,64}|s3:[A-Za-z0-9._-]{1,1024})\Z")


# ---------------------------------------------------------------------------------------------- names


def model_record_name(prefix: str, environment: str) -> str:
    """The SSM parameter that records the model ``environment`` runs (:func:`model_record`)."""
    return f"{prefix.rstrip('/')}/{environment}/model"


def revision_record_name(prefix: str, environment: str) -> str:
    """The SSM parameter that records the source revision last deployed to ``environment``."""
    return f"{prefix.rstrip('/')}/{environment}/source-revision"


def training_record_name(prefix: str, environment: str, pipeline_name: str) -> str:
    """The SSM parameter that records the fingerprint of a training pipeline at its last deployment."""
    return f"{prefix.rstrip('/')}/{environment}/training/{pipeline_name}/fingerprint"


# ----------------------------------------------------------------------- retrain when ML code changes


def _without_revision_metadata(node: Any) -> Any:
    """The definition without the source revision recorded on model packages: it is metadata, not ML code.

    The platform pipeline may set the revision to the commit id; left in, every commit would retrain.
    """
    if isinstance(node, list):
        return [_without_revision_metadata(item) for item in node]
    if not isinstance(node, dict):
        return node
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key == "MetadataProperties" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != "CommitId"}
        elif key == "CustomerMetadataProperties" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != METADATA_SOURCE_REVISION}
        result[key] = _without_revision_metadata(value)
    return result


def training_fingerprint(definition: Any, asset_hashes: Iterable[str] = ()) -> str:
    """The sha256 of what a training run depends on in code: the pipeline definition and its script assets.

    Args:
        definition: The pipeline definition with CloudFormation intrinsics resolved (what
            ``Stack.resolve`` returns): steps, images, instance types, hyperparameters, gate, and
            the S3 locations of the script assets (which contain their content hashes).
        asset_hashes: Content hashes of the script assets the definition runs.

    The source revision recorded on registered models is left out (see
    :func:`_without_revision_metadata`); so is anything outside the definition (the endpoint,
    alarms, the retrain trigger's settings): changing those starts no training run.
    """
    payload = {"definition": _without_revision_metadata(definition), "assets": sorted(set(asset_hashes))}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


class RetrainAction(StrEnum):
    """What the retrain step does after a deployment."""

    REQUEST = "request"
    """The ML code changed: request one training run, then record the new fingerprint."""
    SKIP = "skip"
    """The ML code is unchanged: nothing to do."""
    BASELINE = "baseline"
    """Nothing was recorded before (first deployment): record the fingerprint, request nothing."""


@dataclass(frozen=True)
class RetrainDecision:
    """The answer of :func:`decide_retrain`.

    Attributes:
        action: Request, skip or baseline.
        previous: The fingerprint recorded at the previous deployment, if any.
        current: The fingerprint of what was just deployed.
        reason: Why, in one sentence.
    """

    action: RetrainAction
    previous: str | None
    current: str
    reason: str

    @property
    def records(self) -> bool:
        """Whether the step writes ``current`` to the record afterwards."""
        return self.action is not RetrainAction.SKIP


def decide_retrain(previous: str | None, current: str) -> RetrainDecision:
    """Whether a deployment changed the ML code of a training pipeline.

    Args:
        previous: The fingerprint recorded when the environment was last deployed, or ``None``
            when nothing is recorded (the first deployment through the pipeline).
        current: The fingerprint computed at synth from the deployed definition.

    A first deployment requests no run: there is no model trained by older code to replace, and
    the retrain trigger starts a run as soon as data arrives.

    Raises:
        ValueError: if a fingerprint is not a sha256 hex digest.
    """
    for label, value in (("current", current), ("previous", previous)):
        if value is not None and not _FINGERPRINT.match(value):
            raise ValueError(f"{label} fingerprint {value!r} is not a sha256 hex digest")
    if previous is None:
        return RetrainDecision(
            RetrainAction.BASELINE,
            None,
            current,
            f"no fingerprint recorded yet; recording {current[:12]} (new data still starts training)",
        )
    if previous == current:
        return RetrainDecision(RetrainAction.SKIP, previous, current, f"ML code unchanged ({current[:12]})")
    return RetrainDecision(
        RetrainAction.REQUEST, previous, current, f"ML code changed ({previous[:12]} -> {current[:12]})"
    )


def retrain_request(decision: RetrainDecision, *, dataset: str, pipeline_name: str, environment: str) -> dict[str, str]:
    """The EventBridge ``PutEvents`` entry that asks the retrain trigger for one run.

    The trigger (:class:`cdk_mlops.constructs.retrain_trigger.RetrainTrigger`) snapshots the
    dataset's current version and starts the pipeline once, behind its lock and cool-down.
    """
    detail = {
        "dataset": dataset,
        "reason": f"{decision.reason} in the {pipeline_name} pipeline, deployed to {environment}",
        "requestedBy": REQUESTED_BY,
    }
    return {"Source": SOURCE, "DetailType": MANUAL_RETRAIN, "Detail": json.dumps(detail, sort_keys=True)}


# ------------------------------------------------------------------------------------ security report


@dataclass(frozen=True, order=True)
class Finding:
    """One unacknowledged finding of a validation plugin (cdk-nag, the guardrails) on one construct."""

    plugin: str
    rule: str
    path: str
    severity: str
    description: str

    @property
    def blocking(self) -> bool:
        """Whether it fails the step (errors; warnings are reported only)."""
        return self.severity in BLOCKING_SEVERITIES


def read_findings(report: Mapping[str, Any]) -> list[Finding]:
    """Every violation in one ``validation-report.json``; acknowledged findings are not in the report.

    Raises:
        ValueError: if the document is not a validation report.
    """
    plugins = report.get("pluginReports")
    if not isinstance(plugins, list):
        raise ValueError("not a CDK validation report: no 'pluginReports' list")
    findings: list[Finding] = []
    for plugin in plugins:
        name = str(plugin.get("pluginName", "?"))
        for violation in plugin.get("violations", []):
            severity = str(violation.get("severity") or "error")
            for construct in violation.get("violatingConstructs", []) or [{}]:
                findings.append(
                    Finding(
                        plugin=name,
                        rule=str(violation.get("ruleName", "?")),
                        path=str(construct.get("constructPath") or "?"),
                        severity=severity,
                        description=" ".join(str(violation.get("description", "")).split()),
                    )
                )
    return sorted(set(findings))


def junit_report(findings: Sequence[Finding], *, checked: Sequence[str]) -> str:
    """The findings as JUnit XML, one failed test case each (a CodeBuild test report)."""
    cases: list[str] = []
    for finding in findings:
        name = quoteattr(f"{finding.rule} {finding.path}")
        kind = "failure" if finding.blocking else "skipped"
        message = quoteattr(f"{finding.severity}: {finding.description}")
        cases.append(
            f"  <testcase classname={quoteattr(finding.plugin)} name={name}>"
            f"<{kind} message={message}>{escape(finding.description)}</{kind}></testcase>"
        )
    if not findings:
        for report in checked:
            cases.append(f'  <testcase classname="validation" name={quoteattr(report)}/>')
    failures = sum(1 for f in findings if f.blocking)
    skipped = len(findings) - failures
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<testsuite name="cdk-mlops security" tests="{len(cases)}" failures="{failures}" skipped="{skipped}">\n'
        + "\n".join(cases)
        + "\n</testsuite>\n"
    )


def _security_report(assembly: Path, out: Path) -> int:
    reports = sorted(assembly.rglob(VALIDATION_REPORT))
    out.mkdir(parents=True, exist_ok=True)
    if not reports:
        (out / "summary.txt").write_text(f"no {VALIDATION_REPORT} in {assembly}\n")
        print(
            f"FAIL: no {VALIDATION_REPORT} in {assembly}: cdk-nag and the guardrails did not run at synth; "
            "apply cdk_mlops.compliance.apply_compliance(app) and the guardrails in the app",
            file=sys.stderr,
        )
        return 1
    findings: set[Finding] = set()
    checked: list[str] = []
    for path in reports:
        relative = str(path.relative_to(assembly))
        checked.append(relative)
        findings.update(read_findings(json.loads(path.read_text())))
        target = out / "reports" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    ordered = sorted(findings)
    blocking = [f for f in ordered if f.blocking]
    lines = [f"{f.severity.upper()} {f.plugin} {f.rule} {f.path}: {f.description}" for f in ordered]
    summary = (
        f"{len(checked)} report(s), {len(blocking)} blocking finding(s), {len(ordered) - len(blocking)} warning(s)"
    )
    (out / "findings.json").write_text(json.dumps([asdict(f) for f in ordered], indent=2) + "\n")
    (out / "junit.xml").write_text(junit_report(ordered, checked=checked))
    (out / "summary.txt").write_text("\n".join([summary, *lines]) + "\n")
    print(summary)
    for line in lines:
        print(f"  {line}")
    if blocking:
        print("FAIL: fix each resource, or acknowledge the finding on its construct with a reason", file=sys.stderr)
        return 1
    return 0


# ------------------------------------------------------------------------------------ post-deploy checks


def stack_problems(
    expected: Mapping[str, Sequence[str]], described: Mapping[str, Mapping[str, Any] | None]
) -> list[str]:
    """What is wrong with deployed stacks: missing, not complete, or without an expected output.

    Args:
        expected: Stack name → the output keys its template declares.
        described: Stack name → its ``DescribeStacks`` entry, or ``None`` when it does not exist.
    """
    problems: list[str] = []
    for name, outputs in expected.items():
        stack = described.get(name)
        if stack is None:
            problems.append(f"stack {name} does not exist")
            continue
        status = stack.get("StackStatus")
        if status not in COMPLETE_STATUSES:
            problems.append(f"stack {name} is {status}, not one of {', '.join(sorted(COMPLETE_STATUSES))}")
        present = {o.get("OutputKey") for o in stack.get("Outputs", []) or []}
        missing = [o for o in outputs if o not in present]
        if missing:
            problems.append(f"stack {name} lacks output(s) {', '.join(missing)}")
    return problems


# ------------------------------------------------------------------------------------------ models


#: The environment settings (``cdk.json``) that say which model an environment serves.
MODEL_SETTINGS: Final = ("model_package_arn", "model_baseline_prefix", "model_source_bucket", "model_baselines")
# DriftCheckBaselines section of each monitoring baseline (config.MONITOR_BASELINES), and the file
# in ``<name>-baseline/`` that proves it is the training execution's.
_PACKAGE_BASELINES: Final = (
    ("model-quality", "ModelQuality", "Constraints"),
    ("model-bias", "Bias", "PostTrainingConstraints"),
    ("model-explainability", "Explainability", "Constraints"),
)
_BASELINE_PREFIX = re.compile(r"^artifacts/[A-Za-z0-9._/-]+/\Z")
_S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)\Z")


def model_settings(package: Mapping[str, Any]) -> dict[str, str]:
    """The settings that serve a model package, from its ``DescribeModelPackage`` response.

    ``model_package_arn``; ``model_baseline_prefix``: the data-store prefix of the package's
    drift-check baseline (``DriftCheckBaselines.ModelDataQuality``), which a realtime endpoint's
    Model Monitor is checked against (a package without such a baseline gets no prefix); and
    ``model_source_bucket``: the data bucket holding that baseline and the model archive (the
    registry environment's), which the environments the model is promoted to read it from; and
    ``model_baselines``: ``data-quality`` plus each other monitoring baseline the package
    carries beside it, in ``<execution>/<name>-baseline/`` of the same bucket, as the training
    pipeline writes them (comma-separated; see ``EnvironmentConfig.model_baselines``).

    Raises:
        ValueError: if the response has no versioned model package ARN.
    """
    arn = package.get("ModelPackageArn")
    if not isinstance(arn, str) or not _MODEL_PACKAGE_ARN.match(arn):
        raise ValueError(f"{arn!r} is not a model package version ARN")
    settings = {"model_package_arn": arn}
    quality = (package.get("DriftCheckBaselines") or {}).get("ModelDataQuality") or {}
    for part in ("Statistics", "Constraints"):
        match = _S3_URI.match(str((quality.get(part) or {}).get("S3Uri") or ""))
        if match:
            prefix = match.group(2).rsplit("/", 1)[0] + "/"
            if _BASELINE_PREFIX.match(prefix) and ".." not in prefix:
                settings["model_baseline_prefix"] = prefix
                settings["model_source_bucket"] = match.group(1)
                settings["model_baselines"] = ",".join(_package_baselines(package, match.group(1), prefix))
                break
    if "model_source_bucket" not in settings:
        containers = (package.get("InferenceSpecification") or {}).get("Containers") or [{}]
        first = containers[0] if isinstance(containers[0], Mapping) else {}
        match = _S3_URI.match(str(first.get("ModelDataUrl") or ""))
        if match:
            settings["model_source_bucket"] = match.group(1)
    return settings


def _package_baselines(package: Mapping[str, Any], bucket: str, data_quality_prefix: str) -> list[str]:
    """``data-quality`` and the package's other baselines found where the same execution wrote them."""
    found = ["data-quality"]
    suffix = "data-quality-baseline/"
    if not data_quality_prefix.endswith(f"/{suffix}"):
        return found
    execution = data_quality_prefix[: -len(suffix)]
    drift = package.get("DriftCheckBaselines") or {}
    for name, section, key in _PACKAGE_BASELINES:
        uri = str(((drift.get(section) or {}).get(key) or {}).get("S3Uri") or "")
        match = _S3_URI.match(uri)
        if match and match.group(1) == bucket and match.group(2).startswith(f"{execution}{name}-baseline/"):
            found.append(name)
    return found


def model_record(settings: Mapping[str, str]) -> str:
    """The value the model record holds: the settings as a JSON object."""
    return json.dumps({k: settings[k] for k in MODEL_SETTINGS if k in settings}, sort_keys=True)


def parse_model_record(text: str | None) -> dict[str, str] | None:
    """The settings a model record holds, or ``None`` when no model was deployed through the pipeline.

    Accepts ``none`` (the initial value), a JSON object of :data:`MODEL_SETTINGS`, or a bare
    model package ARN.

    Raises:
        ValueError: for anything else.
    """
    if text is None or text.strip() == MODEL_RECORD_NONE:
        return None
    if _MODEL_PACKAGE_ARN.match(text.strip()):
        return {"model_package_arn": text.strip()}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict) or not _MODEL_PACKAGE_ARN.match(str(value.get("model_package_arn", ""))):
        raise ValueError(f"{text!r} is not a model record (a JSON object with a model_package_arn)")
    unknown = sorted(set(value) - set(MODEL_SETTINGS))
    if unknown:
        raise ValueError(f"{text!r} holds unknown settings {', '.join(unknown)}; known: {', '.join(MODEL_SETTINGS)}")
    return {str(k): str(v) for k, v in value.items()}


def pin_models(
    cdk_json: Mapping[str, Any],
    records: Mapping[str, Mapping[str, str] | None],
    *,
    context_key: str = "environments",
) -> tuple[dict[str, Any], list[str]]:
    """``cdk.json`` with each environment's model settings set to what its record says.

    A record wins over ``cdk.json``: it is what the environment runs, and once the model pipeline
    has deployed a model there, it is the only way to change it. An environment without a record
    keeps what ``cdk.json`` says.

    Args:
        cdk_json: The parsed ``cdk.json``.
        records: Environment name → its recorded settings (:func:`parse_model_record`), or ``None``.
        context_key: Where the environments are, under ``context``.

    Returns:
        The new document (the input is not changed) and one line per change or skipped record.

    Raises:
        ValueError: if ``cdk.json`` has no ``context.<context_key>`` map.
    """
    document: dict[str, Any] = json.loads(json.dumps(cdk_json))
    environments = document.get("context", {}).get(context_key)
    if not isinstance(environments, dict):
        raise ValueError(f"cdk.json has no context.{context_key} map of environments")
    notes: list[str] = []
    for name, recorded in sorted(records.items()):
        if not recorded:
            continue
        settings = environments.get(name)
        if not isinstance(settings, dict):
            notes.append(
                f"{name}: recorded {recorded['model_package_arn']}, but cdk.json has no such environment; skipped"
            )
            continue
        for key in MODEL_SETTINGS:
            before, after = settings.get(key), recorded.get(key)
            if after is not None and before != after:
                settings[key] = after
                notes.append(f"{name}: {key} {before or 'unset'} -> {after} (recorded by the model pipeline)")
    return document, notes


def check_inference(
    rows: Sequence[str], response: str, latencies_ms: Sequence[float], *, max_latency_ms: float
) -> list[str]:
    """What is wrong with an endpoint's answer to a CSV request of ``rows``.

    The response must hold one number per request row (one per line, or comma-separated), and
    the 90th percentile (nearest rank) of the timed invocations must not exceed ``max_latency_ms``.
    """
    problems: list[str] = []
    if not rows:
        problems.append("the sample payload has no rows")
    values = [v.strip() for v in re.split(r"[\n,]", response.strip()) if v.strip()]
    if len(values) != len(rows):
        problems.append(f"the response holds {len(values)} prediction(s) for {len(rows)} request row(s)")
    bad = []
    for value in values:
        try:
            number = float(value)
        except ValueError:
            bad.append(value)
            continue
        if not math.isfinite(number):
            bad.append(value)
    if bad:
        problems.append(f"the response holds non-numeric prediction(s): {', '.join(repr(b) for b in bad[:3])}")
    if not latencies_ms:
        problems.append("no timed invocation")
    else:
        ordered = sorted(latencies_ms)
        p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
        if p90 > max_latency_ms:
            problems.append(f"p90 latency {p90:.0f} ms exceeds {max_latency_ms:.0f} ms")
    return problems


# ------------------------------------------------------------------------------------------ AWS adapters


def _session(region: str | None, role_arn: str | None, name: str) -> boto3.Session:
    """A session in ``region``; with ``role_arn``, as that role (the environment's delivery access role)."""
    import boto3

    if not role_arn:
        return boto3.Session(region_name=region)
    sts = boto3.client("sts", region_name=region)
    credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=name[:64])["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def _read_parameter(session: boto3.Session, name: str) -> str | None:
    ssm = session.client("ssm")
    try:
        value: str = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    return value


def _write_parameter(session: boto3.Session, name: str, value: str, description: str) -> None:
    session.client("ssm").put_parameter(
        Name=name, Value=value, Type="String", Overwrite=True, Description=description[:1024]
    )


def _describe_stack(session: boto3.Session, name: str) -> Mapping[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    return stacks[0] if stacks else None


def _verify(args: argparse.Namespace) -> int:
    session = _session(args.region, args.role_arn, f"verify-{args.environment}")
    expected: dict[str, list[str]] = {}
    for spec in args.stack:
        name, _, outputs = spec.partition(":")
        expected[name] = [o for o in outputs.split(",") if o]
    problems = stack_problems(expected, {name: _describe_stack(session, name) for name in expected})
    sagemaker = session.client("sagemaker")
    for pipeline in args.pipeline:
        pipeline_status = sagemaker.describe_pipeline(PipelineName=pipeline).get("PipelineStatus")
        if pipeline_status != "Active":
            problems.append(f"training pipeline {pipeline} is {pipeline_status}, not Active")
    for endpoint in args.endpoint:
        endpoint_status = sagemaker.describe_endpoint(EndpointName=endpoint).get("EndpointStatus")
        if endpoint_status != "InService":
            problems.append(f"endpoint {endpoint} is {endpoint_status}, not InService")
    if problems:
        print(f"FAIL: {args.environment} is not deployed as synthesized:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(
        f"{args.environment}: {len(expected)} stack(s) complete with their outputs, "
        f"{len(args.pipeline)} pipeline(s) active, {len(args.endpoint)} endpoint(s) in service"
    )
    if args.revision_record and args.revision:
        if not _REVISION.match(args.revision):
            print(f"FAIL: source revision {args.revision!r} is not git:<commit> or s3:<version>", file=sys.stderr)
            return 1
        _write_parameter(
            _session(None, None, "records"),
            args.revision_record,
            args.revision,
            f"Source revision deployed to {args.environment} by the platform delivery pipeline",
        )
        print(f"{args.environment}: recorded source revision {args.revision}")
    return 0


def _retrain(args: argparse.Namespace) -> int:
    records = _session(None, None, "records")
    decision = decide_retrain(_read_parameter(records, args.record), args.fingerprint)
    print(f"{args.environment}/{args.pipeline}: {decision.action.value}: {decision.reason}")
    if decision.action is RetrainAction.REQUEST:
        entry = retrain_request(
            decision, dataset=args.dataset, pipeline_name=args.pipeline, environment=args.environment
        )
        events = _session(args.region, args.role_arn, f"retrain-{args.environment}").client("events")
        result = events.put_events(Entries=[cast(Any, entry)])
        if result.get("FailedEntryCount"):
            print(f"FAIL: the retrain request was not accepted: {result.get('Entries')}", file=sys.stderr)
            return 1
        print(f"{args.environment}/{args.pipeline}: requested one training run on the current {args.dataset} version")
    if decision.records:
        _write_parameter(
            records,
            args.record,
            decision.current,
            f"Fingerprint of the {args.pipeline} training pipeline deployed to {args.environment}",
        )
    return 0


def _parse_records(specs: Sequence[str]) -> dict[str, str]:
    records: dict[str, str] = {}
    for spec in specs:
        name, sep, parameter = spec.partition("=")
        if not sep or not name or not parameter:
            raise SystemExit(f"--record {spec!r}: use ENVIRONMENT=PARAMETER_NAME")
        records[name] = parameter
    return records


def _pin_models(args: argparse.Namespace) -> int:
    session = _session(None, None, "records")
    records = {
        name: parse_model_record(_read_parameter(session, parameter))
        for name, parameter in _parse_records(args.record).items()
    }
    path = Path(args.cdk_json)
    document, notes = pin_models(json.loads(path.read_text()), records, context_key=args.context_key)
    for note in notes:
        print(note)
    if notes:
        path.write_text(json.dumps(document, indent=2) + "\n")
    else:
        print("every environment already runs what cdk.json says")
    return 0


def _list_packages(session: boto3.Session, group: str) -> list[dict[str, Any]]:
    paginator = session.client("sagemaker").get_paginator("list_model_packages")
    packages: list[dict[str, Any]] = []
    for page in paginator.paginate(ModelPackageGroupName=group, ModelPackageType="Versioned"):
        packages.extend(cast(list[dict[str, Any]], page.get("ModelPackageSummaryList", [])))
    return packages


def _deployed_arn(session: boto3.Session, record: str) -> str | None:
    settings = parse_model_record(_read_parameter(session, record))
    return settings["model_package_arn"] if settings else None


def _select_model(args: argparse.Namespace) -> int:
    """Prints an ``export`` line per model setting (``MODEL_PACKAGE_ARN``, ...) and :data:`DELIVER`.

    SageMaker may send several state-change events for one approval, and each starts a run. The
    runs queue, so when this one selects, an earlier run for the same package has finished; if
    the first environment runs the package, that run delivered it (or stopped where a test failed
    or a person rejected it), and this run delivers nothing: ``DELIVER=false`` skips every stage,
    unless a person started it with ``--redeliver true``.
    """
    if args.redeliver not in ("true", "false"):
        print(f"FAIL: {REDELIVER} is {args.redeliver!r}; start the pipeline with true or false", file=sys.stderr)
        return 1
    registry = _session(args.region, args.role_arn, "select-model")
    deployed = _deployed_arn(_session(None, None, "records"), args.record)
    decision = decide_promotion(_list_packages(registry, args.group), deployed_arn=deployed, stage=args.environment)
    print(f"{args.group}: {decision}", file=sys.stderr)
    if decision.model_package_arn is None:
        print(f"FAIL: {args.group} has no approved model package; approve one in the registry", file=sys.stderr)
        return 1
    deliver = decision.action is PromotionAction.PROMOTE or args.redeliver == "true"
    if decision.action is PromotionAction.KEEP:
        then = "delivering it again, as asked" if deliver else "this run delivers nothing"
        print(
            f"{decision.model_package_arn} is already delivered ({args.environment} runs it); {then}", file=sys.stderr
        )
    package = registry.client("sagemaker").describe_model_package(ModelPackageName=decision.model_package_arn)
    settings = model_settings(cast(Mapping[str, Any], package))
    for key in MODEL_SETTINGS:
        print(f"export {key.upper()}={shlex.quote(settings.get(key, MODEL_RECORD_NONE))}")
    print(f"export {DELIVER}={'true' if deliver else 'false'}")
    return 0


def _checkout(revision: str, workdir: Path, source_bucket: str | None, source_key: str | None) -> Path:
    """Put the recorded revision in place; returns the directory to build in."""
    kind, _, value = revision.partition(":")
    if kind == "git":
        if not (workdir / ".git").exists():
            raise SystemExit(
                f"cannot check out {revision}: the source has no git history "
                "(a CodeConnections source must use code_build_clone_output)"
            )
        subprocess.run(["git", "checkout", "--force", "--detach", value], cwd=workdir, check=True)
        return workdir
    if not source_bucket or not source_key:
        raise SystemExit(f"cannot fetch {revision}: pass --source-bucket and --source-key of the S3 source")
    target = workdir / ".delivery" / "source"
    archive = workdir / ".delivery" / "source.zip"
    target.mkdir(parents=True, exist_ok=True)
    body = _session(None, None, "source").client("s3").get_object(Bucket=source_bucket, Key=source_key, VersionId=value)
    archive.write_bytes(body["Body"].read())
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(target)
    return target


def _deploy_model(args: argparse.Namespace) -> int:
    arn = args.model_package_arn
    if not _MODEL_PACKAGE_ARN.match(arn):
        print(f"FAIL: {arn!r} is not a model package version ARN", file=sys.stderr)
        return 1
    settings = {"model_package_arn": arn}
    for key in MODEL_SETTINGS[1:]:
        value = getattr(args, key)
        if value and value != MODEL_RECORD_NONE:
            settings[key] = value
    records = _session(None, None, "records")
    candidate = ModelVersion(arn=arn, version=version_of(arn) or 1, status=APPROVED)
    decision = decide_promotion([candidate], deployed_arn=_deployed_arn(records, args.record), stage=args.environment)
    print(decision)
    if decision.action is PromotionAction.KEEP:
        return 0
    revision = _read_parameter(records, args.revision_record)
    if revision is None or not _REVISION.match(revision):
        print(
            f"FAIL: no source revision is recorded for {args.environment} ({args.revision_record}); "
            "the platform pipeline must deploy the environment once before a model can be promoted there",
            file=sys.stderr,
        )
        return 1
    workdir = _checkout(revision, Path(args.workdir).resolve(), args.source_bucket, args.source_key)
    cdk_json = workdir / args.cdk_json
    document, notes = pin_models(
        json.loads(cdk_json.read_text()), {args.environment: settings}, context_key=args.context_key
    )
    if notes and "skipped" in notes[0]:
        print(f"FAIL: {cdk_json} has no environment {args.environment!r}", file=sys.stderr)
        return 1
    cdk_json.write_text(json.dumps(document, indent=2) + "\n")
    print(f"{args.environment}: deploying revision {revision} with {arn}")
    for command in [*args.install, args.deploy]:
        print(f"$ {command}", flush=True)
        # The commands come from the construct's build spec, as written at synth.
        subprocess.run(command, shell=True, cwd=workdir, check=True)
    _write_parameter(
        records, args.record, model_record(settings), f"Model deployed to {args.environment} by the model pipeline"
    )
    print(f"{args.environment}: recorded {model_record(settings)}")
    return 0


def _endpoint_test(args: argparse.Namespace) -> int:
    session = _session(args.region, args.role_arn, f"endpoint-test-{args.environment}")
    bucket = session.client("cloudformation").describe_stack_resource(
        StackName=args.bucket_stack, LogicalResourceId=args.bucket_logical_id
    )["StackResourceDetail"]["PhysicalResourceId"]
    s3 = session.client("s3")
    try:
        payload = s3.get_object(Bucket=bucket, Key=args.key)["Body"].read().decode()
    except s3.exceptions.NoSuchKey:
        print(
            f"FAIL: no sample request at s3://{bucket}/{args.key}; upload CSV rows of features (no label) "
            "that the model accepts",
            file=sys.stderr,
        )
        return 1
    rows = [line for line in payload.splitlines() if line.strip()]
    runtime = session.client("sagemaker-runtime")
    latencies: list[float] = []
    body = ""
    for attempt in range(args.invocations + 1):
        started = time.perf_counter()
        response = runtime.invoke_endpoint(EndpointName=args.endpoint, ContentType=args.content_type, Body=payload)
        body = response["Body"].read().decode()
        if attempt:  # the first call warms the endpoint up (a serverless cold start) and is not timed
            latencies.append((time.perf_counter() - started) * 1000)
    problems = check_inference(rows, body, latencies, max_latency_ms=args.max_latency_ms)
    if problems:
        print(f"FAIL: endpoint {args.endpoint} in {args.environment}:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(f"{args.endpoint}: {len(rows)} row(s) answered, latencies {', '.join(f'{v:.0f}' for v in latencies)} ms")
    return 0


# ------------------------------------------------------------------------------------------ command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cdk_mlops.delivery_steps", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    report = commands.add_parser("security-report", help="check the validation reports of a cloud assembly")
    report.add_argument("--assembly", default="cdk.out")
    report.add_argument("--out", default="security-report")

    def target(command: argparse.ArgumentParser) -> None:
        command.add_argument("--environment", required=True)
        command.add_argument("--region", required=True)
        command.add_argument("--role-arn", default=None, help="the environment's delivery access role")

    verify = commands.add_parser("verify", help="check a deployed environment and record its source revision")
    target(verify)
    verify.add_argument("--stack", action="append", default=[], help="STACK_NAME[:Output1,Output2]")
    verify.add_argument("--pipeline", action="append", default=[])
    verify.add_argument("--endpoint", action="append", default=[])
    verify.add_argument("--revision-record", default=None)
    verify.add_argument("--revision", default=None)

    retrain = commands.add_parser("retrain", help="request a training run when the ML code changed")
    target(retrain)
    retrain.add_argument("--record", required=True)
    retrain.add_argument("--fingerprint", required=True)
    retrain.add_argument("--pipeline", required=True)
    retrain.add_argument("--dataset", required=True)

    pin = commands.add_parser("pin-models", help="write the recorded model packages into cdk.json")
    pin.add_argument("--cdk-json", default="cdk.json")
    pin.add_argument("--context-key", default="environments")
    pin.add_argument("--record", action="append", default=[], help="ENVIRONMENT=PARAMETER_NAME")

    select = commands.add_parser("select-model", help="print the newest approved model package")
    select.add_argument("--group", required=True)
    select.add_argument("--region", required=True)
    select.add_argument("--role-arn", default=None, help="the registry environment's delivery access role")
    select.add_argument("--environment", required=True, help="the first environment models are promoted to")
    select.add_argument("--record", required=True, help="that environment's model record")
    select.add_argument("--redeliver", default="false", help="true: deliver even if that environment runs it")

    deploy = commands.add_parser("deploy-model", help="deploy an environment with another model package")
    deploy.add_argument("--environment", required=True)
    deploy.add_argument("--model-package-arn", required=True)
    deploy.add_argument("--model-baseline-prefix", default=None)
    deploy.add_argument("--model-source-bucket", default=None)
    deploy.add_argument("--model-baselines", default=None, help="comma-separated monitoring baselines")
    deploy.add_argument("--record", required=True)
    deploy.add_argument("--revision-record", required=True)
    deploy.add_argument("--cdk-json", default="cdk.json")
    deploy.add_argument("--context-key", default="environments")
    deploy.add_argument("--install", action="append", default=[])
    deploy.add_argument("--deploy", required=True)
    deploy.add_argument("--workdir", default=".")
    deploy.add_argument("--source-bucket", default=None)
    deploy.add_argument("--source-key", default=None)

    test = commands.add_parser("endpoint-test", help="invoke an endpoint with the sample request")
    target(test)
    test.add_argument("--endpoint", required=True)
    test.add_argument("--bucket-stack", required=True)
    test.add_argument("--bucket-logical-id", required=True)
    test.add_argument("--key", required=True)
    test.add_argument("--content-type", default="text/csv")
    test.add_argument("--invocations", type=int, default=5)
    test.add_argument("--max-latency-ms", type=float, default=1000.0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    args = _parser().parse_args(argv)
    if args.command == "security-report":
        return _security_report(Path(args.assembly), Path(args.out))
    handlers = {
        "verify": _verify,
        "retrain": _retrain,
        "pin-models": _pin_models,
        "select-model": _select_model,
        "deploy-model": _deploy_model,
        "endpoint-test": _endpoint_test,
    }
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
