"""FleetRetrainTrigger and RetrainRoute: one machinery for every pipeline, one parameter per pipeline."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from cdk_mlops import (
    FleetRetrainTrigger,
    InventorySnapshot,
    RetrainPolicy,
    RetrainRoute,
    RetrainTrigger,
    TrainingPipeline,
    VersionedDataStore,
)
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.lambdas.retrain_trigger import fleet as fleet_module
from cdk_mlops.lambdas.retrain_trigger.events import ManualRetrain, ObjectCreated, PipelineStatusChange
from cdk_mlops.lambdas.retrain_trigger.routes import RouteTable
from tests.conftest import load_event
from tests.contracts import iam_coverage as ic
from tests.contracts.event_patterns import matches
from tests.quality import actions_of, cfn_lint_findings, nag_findings, statements

ENV = cdk.Environment(account="123456789012", region="eu-west-1")
MODELS = ("prod-churn", "prod-fraud", "prod-upsell")


@dataclass(frozen=True)
class Built:
    shared: cdk.Stack
    models: cdk.Stack
    trigger: FleetRetrainTrigger
    routes: tuple[RetrainRoute, ...]
    pipeline: TrainingPipeline
    alerts: sns.Topic
    template: Template
    models_template: Template


@pytest.fixture(scope="module")
def built() -> Built:
    app = cdk.App()
    shared = cdk.Stack(app, "Shared", env=ENV)
    store = VersionedDataStore(shared, "Data", datasets=["churn", "fraud", "shared"])
    key = kms.Key(shared, "AlertsKey", enable_key_rotation=True)
    for service in ("events.amazonaws.com", "cloudwatch.amazonaws.com"):
        key.grant(iam.ServicePrincipal(service), "kms:Decrypt", "kms:GenerateDataKey")
    alerts = sns.Topic(shared, "Alerts", master_key=key, enforce_ssl=True)
    trigger = FleetRetrainTrigger(shared, "Retrain", data_store=store, pipeline_name_prefix="prod-", alarm_topic=alerts)
    models = cdk.Stack(app, "Models", env=ENV)
    pipeline = TrainingPipeline(
        models,
        "FraudPipeline",
        data_store=store,
        dataset="fraud",
        pipeline_name="prod-fraud",
        notification_topic=alerts,
        announce_failures=False,
    )
    routes = (
        RetrainRoute(models, "Churn", trigger=trigger, pipeline_name="prod-churn", datasets=["churn", "shared"]),
        RetrainRoute(
            models,
            "Fraud",
            trigger=trigger,
            pipeline_name="prod-fraud",
            datasets=["fraud"],
            policy=RetrainPolicy(cooldown=cdk.Duration.hours(6), max_runs_per_day=1),
            monitoring_schedule_names=["prod-fraud-data-quality"],
            drift_alarm_names=["prod-fraud-drift"],
        ),
        RetrainRoute(models, "Upsell", trigger=trigger, pipeline_name="prod-upsell", datasets=["shared"]),
    )
    return Built(
        shared, models, trigger, routes, pipeline, alerts, Template.from_stack(shared), Template.from_stack(models)
    )


def _route_table(built: Built) -> RouteTable:
    """The routes as the handler reads them: the parameters' names and values, over the function's environment."""
    parameters = built.models_template.find_resources("AWS::SSM::Parameter")
    pairs = [(p["Properties"]["Name"], p["Properties"]["Value"]) for p in parameters.values()]
    shared = {"DATA_BUCKET": "bucket", "STATE_TABLE": "table", "QUEUE_URL": "https://sqs/queue"}
    return RouteTable.read(pairs, shared)


def test_each_model_adds_one_parameter_and_the_machinery_is_built_once(built: Built) -> None:
    # Three routes, and one pipeline that leaves its failures to the fleet's rule: 5 resources for that model.
    assert {t: len(r) for t, r in _types(built.models_template).items()} == {
        "AWS::SSM::Parameter": 3,
        "AWS::IAM::Role": 1,
        "AWS::IAM::Policy": 1,
        "AWS::SageMaker::ModelPackageGroup": 1,
        "AWS::SageMaker::Pipeline": 1,
    }
    assert (built.pipeline.failed_rule, built.pipeline.failed_alarm) == (None, None)
    shared = _types(built.template)
    assert len(shared["AWS::Lambda::Function"]) == 1
    assert len(shared["AWS::SQS::Queue"]) == 2
    assert len(shared["AWS::DynamoDB::Table"]) == 1
    # data, finished, requested, violations, drift to the queue; failures of every pipeline to the topic
    assert len(shared["AWS::Events::Rule"]) == 6


def test_one_rule_announces_the_failures_of_every_fleet_pipeline(built: Built) -> None:
    assert built.trigger.failed_rule is not None
    rules = built.template.find_resources("AWS::Events::Rule")
    rule = rules[built.shared.get_logical_id(built.trigger.failed_rule.node.default_child)]  # type: ignore[arg-type]
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": built.shared.get_logical_id(built.alerts.node.default_child)}  # type: ignore[arg-type]
    event = load_event("pipeline_execution_status_change.json")
    pattern = _resolved(rule["Properties"]["EventPattern"])
    for name, status, delivered in (
        ("prod-fraud", "Failed", True),
        ("prod-fraud", "Succeeded", False),
        ("staging-fraud", "Failed", False),
    ):
        changed = copy.deepcopy(event)
        changed["detail"]["pipelineArn"] = f"arn:aws:sagemaker:eu-west-1:123456789012:pipeline/{name}"
        changed["detail"]["currentPipelineExecutionStatus"] = status
        assert matches(pattern, changed) is delivered, (name, status)


def test_the_parameters_are_routes_the_handler_reads(built: Built) -> None:
    table = _route_table(built)
    assert table.broken == {}
    assert sorted(table.routes) == list(MODELS)
    fraud = table.routes["prod-fraud"]
    assert fraud.settings.cooldown.total_seconds() == 6 * 3600
    assert fraud.settings.max_runs_per_day == 1
    assert fraud.settings.model_package_group == "prod-fraud-models"
    assert fraud.monitoring_schedules == ("prod-fraud-data-quality",)
    # a parameter lives under the trigger's path, named by its pipeline
    parameters = built.models_template.find_resources("AWS::SSM::Parameter").values()
    names = {p["Properties"]["Name"] for p in parameters}
    assert names == {f"{built.trigger.routes_parameter_path}/{m}" for m in MODELS}


def test_routes_send_each_event_to_its_pipelines_only(built: Built) -> None:
    table = _route_table(built)

    def objects(key: str) -> Any:
        return table.pipelines_for(ObjectCreated("e", None, "bucket", key, 1, None), "bucket")

    assert objects("datasets/churn/a.csv") == ["prod-churn"]
    assert sorted(objects("datasets/shared/a.csv")) == ["prod-churn", "prod-upsell"]
    assert objects("datasets/fraud/a.csv") == ["prod-fraud"]
    assert objects("datasets/unwatched/a.csv").reason == "no pipeline watches dataset 'unwatched'"
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/prod-fraud"
    assert table.pipelines_for(PipelineStatusChange("e", None, arn, f"{arn}/execution/x", "Succeeded"), "b") == [
        "prod-fraud"
    ]
    manual = ManualRetrain("e", None, "shared", "why", None, pipeline="prod-upsell")
    assert table.pipelines_for(manual, "bucket") == ["prod-upsell"]


def test_the_rules_match_the_fleets_events_and_not_others(built: Built) -> None:
    patterns = {
        r["Properties"]["Description"].split(": ", 1)[1].split(" ")[0]: _resolved(r["Properties"]["EventPattern"])
        for r in built.template.find_resources("AWS::Events::Rule").values()
    }
    finished = patterns["Executions"]
    event = load_event("pipeline_execution_status_change.json")
    for name, delivered in (("prod-churn", True), ("staging-churn", False)):
        changed = copy.deepcopy(event)
        changed["detail"]["pipelineArn"] = f"arn:aws:sagemaker:eu-west-1:123456789012:pipeline/{name}"
        changed["detail"]["currentPipelineExecutionStatus"] = "Succeeded"
        assert matches(finished, changed) is delivered, name
    alarm = load_event("cloudwatch_alarm_state_change.json")
    alarm["detail"]["state"]["value"] = "ALARM"
    for name, delivered in (("prod-fraud-drift", True), ("someone-elses-alarm", False)):
        alarm["detail"]["alarmName"] = name
        assert matches(patterns["Alarms"], alarm) is delivered, name
    created = load_event("s3_object_created.json")
    created["detail"]["bucket"]["name"] = "BUCKET"
    created["detail"]["object"]["key"] = "datasets/anything/part-0.csv"
    assert matches(patterns["New"], created)


def test_the_role_is_granted_by_the_prefix_and_reads_its_routes(built: Built) -> None:
    found = statements(built.template, built.trigger.role)
    by_action = {a: s["Resource"] for s in found for a in actions_of(s)}
    assert _resolved(by_action["sagemaker:StartPipelineExecution"]) == (
        "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/prod-*"
    )
    routes = _resolved(by_action["ssm:GetParametersByPath"])
    path = built.trigger.routes_parameter_path
    assert routes == [
        f"arn:aws:ssm:eu-west-1:123456789012:parameter{path}",
        f"arn:aws:ssm:eu-west-1:123456789012:parameter{path}/*",
    ]
    assert "ssm:PutParameter" not in by_action


def test_the_role_allows_every_call_the_handler_makes_for_each_route(built: Built) -> None:
    """What ``fleet.handler`` calls for a pipeline (``handler.BatchRun``'s calls and the routes' read), as
    ``tests/contracts/iam_coverage.py`` maps the single trigger's, against the role's statements."""
    resources = built.template.to_json()["Resources"]
    arns = {logical: _synthetic_arn(logical, r["Type"]) for logical, r in resources.items()}
    allowed = [
        (
            actions_of(s),
            [_arn_of(r, arns) for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])],
        )
        for s in statements(built.template, built.trigger.role)
        if s["Effect"] == "Allow"
    ]
    table = next(a for a in arns.values() if ":table/" in a)
    queue = next(a for a in arns.values() if ":sqs:" in a and "DeadLetter" not in a)
    bucket = next(
        a for lid, a in arns.items() if lid.startswith("DataBucket") and resources[lid]["Type"] == "AWS::S3::Bucket"
    )
    account = "arn:aws:{}:eu-west-1:123456789012:{}"
    missing = []
    for route in _route_table(built).routes.values():
        pipeline, group = route.settings.pipeline_name, route.settings.model_package_group
        needs = [
            *((f"dynamodb:{a}", table) for a in ("BatchGetItem", "GetItem", "UpdateItem", "DeleteItem")),
            ("sqs:SendMessage", queue),
            ("sagemaker:StartPipelineExecution", account.format("sagemaker", f"pipeline/{pipeline}")),
            ("sagemaker:ListPipelineExecutions", account.format("sagemaker", f"pipeline/{pipeline}")),
            ("sagemaker:ListModelPackages", account.format("sagemaker", f"model-package/{group}/*")),
            ("sagemaker:DescribeModelPackage", account.format("sagemaker", f"model-package/{group}/3")),
            ("s3:GetObject", f"{bucket}/artifacts/{pipeline}/run/evaluate/evaluation.json"),
            ("ssm:GetParametersByPath", account.format("ssm", f"parameter{built.trigger.routes_parameter_path}")),
            *(("s3:ListBucketVersions", bucket) for _ in route.settings.datasets),
            *(("s3:PutObject", f"{bucket}/manifests/{d}/20250304T101530Z-0123.json") for d in route.settings.datasets),
        ]
        missing += [
            f"{pipeline}: {action} on {arn}"
            for action, arn in needs
            if not any(
                any(ic.action_matches(a, action) for a in acts) and any(ic.arn_matches(r, arn) for r in res)
                for acts, res in allowed
            )
        ]
    assert missing == []


def _synthetic_arn(logical_id: str, kind: str) -> str:
    service, resource = {
        "AWS::DynamoDB::Table": ("dynamodb", "table/"),
        "AWS::SQS::Queue": ("sqs", ""),
        "AWS::S3::Bucket": ("s3", ""),
        "AWS::KMS::Key": ("kms", "key/"),
        "AWS::Logs::LogGroup": ("logs", "log-group:"),
    }.get(kind, ("other", ""))
    if service == "s3":
        return f"arn:aws:s3:::{logical_id}"
    return f"arn:aws:{service}:eu-west-1:123456789012:{resource}{logical_id}"


def _arn_of(value: Any, arns: dict[str, str]) -> str:
    """A statement's resource with GetAtt/Ref of the stack's resources as :func:`_synthetic_arn` names them."""
    if isinstance(value, str):
        return value
    if "Fn::GetAtt" in value:
        return arns[value["Fn::GetAtt"][0]]
    if "Ref" in value:
        return "aws" if value["Ref"] == "AWS::Partition" else arns.get(value["Ref"], str(value["Ref"]))
    separator, parts = value["Fn::Join"]
    return str(separator).join(_arn_of(p, arns) for p in parts)


def test_the_function_runs_the_fleet_handler(built: Built) -> None:
    [function] = built.template.find_resources("AWS::Lambda::Function").values()
    assert function["Properties"]["Handler"] == "cdk_mlops.lambdas.retrain_trigger.fleet.handler"
    assert callable(fleet_module.handler)
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["ROUTES_PARAMETER_PATH"] == built.trigger.routes_parameter_path
    assert variables["ROUTES_MAX_AGE_SECONDS"] == "300"
    assert "PIPELINE_NAME" not in variables


def test_both_stacks_are_lint_and_nag_clean(built: Built) -> None:
    for stack, template in ((built.shared, built.template), (built.models, built.models_template)):
        assert cfn_lint_findings(template.to_json(), region="eu-west-1") == []
        assert nag_findings(stack) == []


# --- wrong input ----------------------------------------------------------------------------------


def _fresh() -> tuple[cdk.Stack, FleetRetrainTrigger]:
    app = cdk.App()
    stack = cdk.Stack(app, "S", env=ENV)
    store = VersionedDataStore(stack, "Data", datasets=["churn"])
    return stack, FleetRetrainTrigger(stack, "Retrain", data_store=store, pipeline_name_prefix="dev-")


@pytest.mark.parametrize("prefix", ["", "dev", "Dev-", "1dev-", "dev_", "-", "x" * 40 + "-"])
def test_a_bad_prefix_is_refused(prefix: str) -> None:
    stack = cdk.Stack(cdk.App(), "S", env=ENV)
    store = VersionedDataStore(stack, "Data", datasets=["churn"])
    with pytest.raises(ConfigurationError, match="pipeline_name_prefix"):
        FleetRetrainTrigger(stack, "Retrain", data_store=store, pipeline_name_prefix=prefix)


def test_a_route_outside_the_prefix_or_the_store_is_refused_with_every_problem() -> None:
    stack, trigger = _fresh()
    with pytest.raises(ConfigurationError) as raised:
        RetrainRoute(
            stack,
            "Route",
            trigger=trigger,
            pipeline_name="prod-churn",
            datasets=["churn", "undeclared"],
            model_package_group_name="churn-models",
            drift_alarm_names=["churn-drift"],
        )
    text = str(raised.value)
    assert "must start with the trigger's prefix 'dev-'" in text
    assert "undeclared" in text
    assert "model_package_group_name 'churn-models'" in text
    assert "drift_alarm_names: 'churn-drift'" in text
    assert stack.node.try_find_child("Route") is not None  # the construct, but not one resource
    assert Template.from_stack(stack).find_resources("AWS::SSM::Parameter") == {}


def test_with_a_snapshot_the_role_reads_the_newest_index_and_routes_name_the_snapshotted_datasets() -> None:
    stack = cdk.Stack(cdk.App(), "S", env=ENV)
    store = VersionedDataStore(stack, "Data", datasets=["churn", "events"])
    snapshots = InventorySnapshot(stack, "Snapshots", data_store=store, datasets=["events"])
    trigger = FleetRetrainTrigger(stack, "Retrain", data_store=store, pipeline_name_prefix="dev-", snapshot=snapshots)
    route = RetrainRoute(stack, "Route", trigger=trigger, pipeline_name="dev-a", datasets=["churn", "events"])
    template = Template.from_stack(stack)
    reads = [
        _resolved(s["Resource"])
        for s in statements(template, trigger.role)
        if "s3:GetObject*" in actions_of(s) or "s3:GetObject" in actions_of(s)
    ]
    assert any("/manifests/*" in json.dumps(r) for r in reads), reads
    [parameter] = template.find_resources("AWS::SSM::Parameter").values()
    settings = json.loads(parameter["Properties"]["Value"])["settings"]
    assert json.loads(settings["SNAPSHOT_DATASETS"]) == ["events"]
    assert route.datasets == ("churn", "events")


def test_a_route_too_large_for_a_parameter_is_refused() -> None:
    stack, trigger = _fresh()
    with pytest.raises(ConfigurationError, match="over the 4,096 of a standard SSM parameter"):
        RetrainRoute(
            stack,
            "Route",
            trigger=trigger,
            pipeline_name="dev-churn",
            datasets=["churn"],
            monitoring_schedule_names=[f"dev-churn-schedule-{i:03d}-" + "x" * 40 for i in range(80)],
        )


def test_a_pipeline_routed_twice_or_also_given_its_own_trigger_fails_synth() -> None:
    stack, trigger = _fresh()
    RetrainRoute(stack, "One", trigger=trigger, pipeline_name="dev-churn", datasets=["churn"])
    RetrainRoute(stack, "Two", trigger=trigger, pipeline_name="dev-churn", datasets=["churn"])
    RetrainTrigger(stack, "Own", data_store=trigger.data_store, datasets=["churn"], pipeline_name="dev-churn")
    errors = [str(e) for e in stack.node.validate()] + [
        str(e) for c in stack.node.find_all() for e in c.node.validate()
    ]
    assert sum("dev-churn" in e for e in errors) >= 2, errors


def _types(template: Template) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for logical_id, resource in template.to_json()["Resources"].items():
        found.setdefault(resource["Type"], []).append(logical_id)
    return found


def _resolved(value: Any) -> Any:
    """A pattern or ARN with the stack's pseudo parameters and the bucket's name filled in."""
    text = json.dumps(value)
    text = text.replace('{"Ref": "AWS::Partition"}', '"aws"')
    resolved = json.loads(text)
    return _join(resolved)


def _join(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(str(_join(p)) for p in parts)
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return "BUCKET" if value["Ref"].startswith("Data") else value["Ref"]
    if isinstance(value, dict):
        return {k: _join(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_join(v) for v in value]
    return value
