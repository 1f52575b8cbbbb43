"""Every AWS call of the runtime code is granted, in the synthesized templates, to the role that makes it.

The map lives in ``tests/contracts/iam_coverage.py`` (:data:`~tests.contracts.iam_coverage.UNITS`).
A call the code makes and the map does not know fails here, and so does a mapped need that the
role's identity policies, or a resource policy in its way, do not allow.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

from tests.conftest import Platform
from tests.contracts import iam_coverage as ic


@pytest.fixture(scope="module")
def deployed(platform: Platform) -> ic.Platform:
    return ic.platform_deployments(platform.app, platform.assembly)


@pytest.fixture(scope="module")
def calls() -> list[ic.FoundCall]:
    return ic.discover_calls()


def _unit(name: str) -> ic.Unit:
    (unit,) = [u for u in ic.UNITS if u.name == name]
    return unit


def _use(unit: ic.Unit, operation: str) -> ic.Use:
    (use,) = [u for u in unit.uses if u.operation == operation]
    return use


# ------------------------------------------------------------------------------------------- discovery


def test_discovery_sees_direct_calls_paginators_and_calls_through_attributes(calls):
    found = {(c.file, c.operation) for c in calls}
    assert ("cdk_mlops/datasets.py", "list_object_versions") in found  # get_paginator("...")
    assert ("cdk_mlops/lambdas/retrain_trigger/store.py", "batch_get_item") in found  # self._ddb.batch_get_item
    assert ("cdk_mlops/delivery_steps.py", "assume_role") in found  # sts.assume_role
    assert ("cdk_mlops/ml/track.py", "describe_training_job") in found  # boto3.client(...).describe_...


def test_discovery_ignores_regular_expressions_named_like_operations(calls):
    # sagemaker has a Search operation; _CONTROL.search(...) and _VERSION_SUFFIX.search(...) are regexes.
    assert "search" in ic.operation_names()
    regex_files = ("cdk_mlops/datasets.py", "cdk_mlops/promotion.py")
    assert [c for c in calls if c.operation == "search" and c.file in regex_files] == []
    assert "cdk_mlops/promotion.py" in ic.runtime_modules()  # scanned: delivery_steps imports it


def test_reachability_follows_module_functions_methods_and_imported_modules():
    scopes = ic.reachable([("cdk_mlops/lambdas/retrain_trigger/handler.py", "handler")])
    assert ("cdk_mlops/datasets.py", "build_manifest") in scopes  # datasets.build_manifest(...)
    assert ("cdk_mlops/lambdas/retrain_trigger/store.py", "StateStore.load") in scopes  # an instance's methods
    assert ("cdk_mlops/datasets.py", "materialize") not in scopes


def test_every_call_runs_in_a_mapped_unit_or_is_not_deployed(calls):
    scopes = {scope for unit in ic.UNITS for scope in ic.reachable(unit.entries)}
    unplaced = [
        f"{c}: no unit of the map reaches {c.scope}; add a Unit (entry point and role) to UNITS in "
        "tests/contracts/iam_coverage.py, or list the function in NOT_DEPLOYED with the reason no deployed role runs it"
        for c in calls
        if (c.file, c.scope) not in scopes and (c.file, c.scope) not in ic.NOT_DEPLOYED
    ]
    assert unplaced == []


def test_not_deployed_functions_are_really_out_of_reach_of_every_unit():
    scopes = {scope for unit in ic.UNITS for scope in ic.reachable(unit.entries)}
    assert sorted(set(ic.NOT_DEPLOYED) & scopes) == []


@pytest.mark.parametrize("unit", ic.UNITS, ids=lambda u: u.name)
def test_every_call_of_a_unit_is_in_the_map(unit, calls):
    assert ic.unmapped_calls(unit, calls) == []


def test_a_call_without_a_map_entry_is_reported_with_what_to_add(calls):
    unit = _unit("retrain trigger")
    without = replace(unit, uses=tuple(u for u in unit.uses if u.operation != "sqs.send_message"))
    (message,) = ic.unmapped_calls(without, calls)
    assert message.startswith("cdk_mlops/lambdas/retrain_trigger/handler.py:")
    assert "send_message (in BatchRun._send_check)" in message
    assert "add Use('<service>.send_message', '<role>', needs, why) to the 'retrain trigger' unit" in message


@pytest.mark.parametrize("unit", ic.UNITS, ids=lambda u: u.name)
def test_every_mapped_use_is_a_call_of_its_unit(unit, calls):
    made = {c.operation for c in ic.unit_calls(unit, calls)}
    stale = [
        f"{unit.name}: {use.operation} is mapped but the code no longer calls it; remove the Use"
        for use in unit.uses
        if use.name not in made and use.pending is None
    ]
    assert stale == []


def test_every_mapped_operation_is_an_operation_of_its_service():
    session = botocore.session.get_session()
    unknown = [
        f"{unit.name}: {use.operation}"
        for unit in ic.UNITS
        for use in unit.uses
        if use.name not in {xform_name(op) for op in session.get_service_model(use.service).operation_names}
    ]
    assert unknown == []


def test_every_delivery_command_that_calls_aws_is_a_unit(calls):
    units = {entry for unit in ic.UNITS for entry in unit.entries}
    file = "cdk_mlops/delivery_steps.py"
    commands = ic.delivery_commands()
    assert "verify" in commands  # the table was read
    calling = {(c.file, c.scope) for c in calls}
    unmapped = [
        f"delivery_steps {command} ({function}) calls AWS but is no unit of the map; add one to UNITS"
        for command, function in commands.items()
        if ic.reachable([(file, function)]) & calling and (file, function) not in units
    ]
    assert unmapped == []


# ------------------------------------------------------------------------------------------- grants


def _params() -> Iterator[Any]:
    for unit in ic.UNITS:
        for use in unit.uses:
            marks = [pytest.mark.xfail(reason=use.pending, strict=True)] if use.pending else []
            yield pytest.param(unit, use, id=f"{unit.name}:{use.operation}:{use.role}", marks=marks)


@pytest.mark.parametrize(("unit", "use"), list(_params()))
def test_the_role_that_makes_a_call_is_granted_what_it_needs(deployed, unit, use):
    contexts = list(unit.contexts(deployed))
    if not contexts:
        assert unit.optional, f"no deployment runs the {unit.name} ({unit.runs_as})"
        pytest.skip(f"{unit.name}: {unit.optional}")
    checked, problems = ic.check_use(use, contexts)
    if not checked:
        pytest.skip(f"{use.operation} needs nothing in the reference platform: {use.why}")
    assert problems == []


def test_every_unit_runs_in_the_reference_platform(deployed):
    # A unit no deployment runs is checked against nothing: its contexts cannot find its role.
    idle = [
        f"{unit.name}: no context found; {unit.runs_as}"
        for unit in ic.UNITS
        if unit.optional is None and not list(unit.contexts(deployed))
    ]
    assert idle == []


def test_the_retrain_trigger_runs_as_the_role_of_its_construct(deployed):
    for stage, deployment in deployed.environments:
        (c,) = [c for c in _unit("retrain trigger").contexts(deployed) if c.where == stage.node.path]
        assert c.roles["function"] == deployment.role(stage.training.retrain.role)


def test_sagemaker_can_read_every_input_of_every_job_as_the_jobs_role(deployed):
    checked, problems = ic.check_job_inputs(ic.job_contexts(deployed))
    assert checked > 0
    assert problems == []


# ------------------------------------------------------------------------------- the checker itself


def _trigger(deployed: ic.Platform) -> tuple[ic.Context, Any]:
    (c,) = [c for c in _unit("retrain trigger").contexts(deployed) if c.where == "Dev"]
    stage = next(s for s, _ in deployed.environments if s.node.path == "Dev")
    return c, stage


def test_checker_reports_a_grant_removed_from_the_role(deployed):
    c, stage = _trigger(deployed)
    use = _use(_unit("retrain trigger"), "sagemaker.start_pipeline_execution")
    assert ic.check_use(use, [c]) == (1, [])
    st = c.deployment.stack(stage.training)
    planted = ic.copy_template(st.template)
    for resource in planted["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                actions = ic._listed(statement["Action"])
                statement["Action"] = [a for a in actions if a != "sagemaker:StartPipelineExecution"]
    broken = replace(c, deployment=c.deployment.replaced(stage.training, planted))
    checked, problems = ic.check_use(use, [broken])
    assert checked == 1
    assert len(problems) == 1
    assert "may not sagemaker:StartPipelineExecution on arn:aws:sagemaker:" in problems[0]
    assert "no statement of its policies" in problems[0]
    # Only that call lost its grant.
    others = [u for u in _unit("retrain trigger").uses if u is not use and u.pending is None]
    assert [p for u in others for p in ic.check_use(u, [broken])[1]] == []


def test_checker_applies_an_explicit_deny_of_a_bucket_policy(deployed):
    c, stage = _trigger(deployed)
    use = _use(_unit("retrain trigger"), "s3.put_object")
    st = c.deployment.stack(stage.data)
    planted = ic.copy_template(st.template)
    _, bucket_id = c.deployment.logical(stage.data.store.bucket)
    (policy,) = [
        r
        for r in planted["Resources"].values()
        if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    bucket = policy["Properties"]["Bucket"]
    policy["Properties"]["PolicyDocument"]["Statement"].append(
        {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:PutObject",
            "Resource": {"Fn::Join": ["", ["arn:aws:s3:::", bucket, "/manifests/*"]]},
            "Condition": {"StringNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/nobody"}},
        }
    )
    broken = replace(c, deployment=c.deployment.replaced(stage.data, planted))
    _, problems = ic.check_use(use, [broken])
    assert len(problems) == 1
    assert "explicitly denied by the bucket policy" in problems[0]


def test_checker_requires_the_key_policy_to_allow_the_role_or_its_account(deployed):
    c, stage = _trigger(deployed)
    use = _use(_unit("retrain trigger"), "s3.put_object")
    st = c.deployment.stack(stage.data)
    planted = ic.copy_template(st.template)
    for resource in planted["Resources"].values():
        if resource["Type"] == "AWS::KMS::Key":
            resource["Properties"]["KeyPolicy"]["Statement"] = [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ]
    broken = replace(c, deployment=c.deployment.replaced(stage.data, planted))
    _, problems = ic.check_use(use, [broken])
    assert len(problems) == 1
    assert "kms:GenerateDataKey" in problems[0]
    assert "the key policy" in problems[0]
    assert "neither allows the role nor its account" in problems[0]


def test_checker_does_not_apply_an_allow_whose_condition_operator_it_does_not_know(deployed):
    c, stage = _trigger(deployed)
    use = _use(_unit("retrain trigger"), "sagemaker.start_pipeline_execution")
    st = c.deployment.stack(stage.training)
    planted = ic.copy_template(st.template)
    for resource in planted["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                if "sagemaker:StartPipelineExecution" in ic._listed(statement["Action"]):
                    statement["Condition"] = {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}
    broken = replace(c, deployment=c.deployment.replaced(stage.training, planted))
    _, problems = ic.check_use(use, [broken])
    assert len(problems) == 1
    assert "unknown condition operator(s) DateGreaterThan (aws:CurrentTime) is taken not to apply" in problems[0]


def test_checker_evaluates_conditions_against_the_request_context(deployed):
    (c,) = [c for c in _unit("delivery: retrain").contexts(deployed) if "Dev" in c.where]
    use = _use(_unit("delivery: retrain"), "events.put_events")
    assert ic.check_use(use, [c])[1] == []
    other_source = replace(
        use, needs=lambda c: [replace(n, context={**n.context, "events:source": "aws.s3"}) for n in use.needs(c)]
    )
    _, problems = ic.check_use(other_source, [c])
    assert len(problems) == 1
    assert "may not events:PutEvents" in problems[0]


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("s3:GetObject*", "s3:GetObjectVersion", True),
        ("S3:getobject", "s3:GetObject", True),
        ("s3:Get?bject", "s3:GetObject", True),
        ("s3:GetObject", "s3:GetObjectVersion", False),
        ("s3:List*", "sqs:ListQueues", False),
    ],
)
def test_actions_match_with_wildcards_case_insensitively(pattern, value, expected):
    assert ic.action_matches(pattern, value) is expected


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("arn:aws:s3:::bucket/datasets/churn/*", "arn:aws:s3:::bucket/datasets/churn/a/b.csv", True),
        ("arn:aws:s3:::bucket/datasets/churn/*", "arn:aws:s3:::bucket/manifests/churn/m.json", False),
        ("arn:aws:s3:::bucket", "arn:aws:s3:::bucket/key", False),
        ("arn:aws:sagemaker:*:123456789012:pipeline/p", "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/p", True),
        ("arn:aws:sagemaker:us-east-1:*:pipeline/p", "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/p", False),
        ("arn:aws:logs:us-east-1:1:log-group:/aws/x:*", "arn:aws:logs:us-east-1:1:log-group:/aws/x:log-stream:s", True),
        ("arn:aws:s3:::Bucket", "arn:aws:s3:::bucket", False),
        ("*", "arn:aws:kms:us-east-1:1:key/k", True),
    ],
)
def test_resources_match_arn_globs_segment_by_segment(pattern, value, expected):
    assert ic.arn_matches(pattern, value) is expected


@pytest.mark.parametrize(
    ("operator", "key", "expected_value", "context", "result"),
    [
        ("StringEquals", "events:source", "cdk-mlops.retrain", {"events:source": "cdk-mlops.retrain"}, True),
        ("StringEquals", "events:source", ["a", "b"], {"events:source": "b"}, True),
        ("StringEquals", "events:source", "a", {}, False),
        ("StringNotEquals", "events:source", "a", {}, True),
        ("StringLike", "s3:prefix", "datasets/*", {"s3:prefix": "datasets/churn/"}, True),
        ("StringLike", "s3:prefix", "datasets/*", {"s3:prefix": "manifests/"}, False),
        ("ArnLike", "aws:SourceArn", "arn:aws:events:*:1:rule/*", {"aws:SourceArn": "arn:aws:events:r:1:rule/x"}, True),
        (
            "ArnEquals",
            "aws:SourceArn",
            "arn:aws:events:r:1:rule/x",
            {"aws:SourceArn": "arn:aws:events:r:1:rule/y"},
            False,
        ),
        ("Bool", "aws:SecureTransport", "false", {"aws:SecureTransport": "true"}, False),
        ("NumericLessThan", "s3:TlsVersion", 1.2, {"s3:TlsVersion": 1.3}, False),
        ("StringEqualsIfExists", "kms:ViaService", "s3.eu-west-1.amazonaws.com", {}, True),
        ("Null", "kms:ViaService", "true", {}, True),
        ("DateGreaterThan", "aws:CurrentTime", "2020-01-01T00:00:00Z", {"aws:CurrentTime": "x"}, None),
    ],
)
def test_condition_operators(operator, key, expected_value, context, result):
    assert ic._condition(operator, key, expected_value, context) is result


def test_expressions_of_job_inputs_it_cannot_evaluate_fail_loudly():
    with pytest.raises(ValueError, match=r"cannot evaluate the pipeline expression .*Std:JsonGet"):
        ic.evaluate_expression({"Std:JsonGet": {"Path": "x"}}, {"Steps": []}, {}, "e")


def test_checker_reports_a_prefix_input_the_job_role_cannot_list(deployed):
    # SageMaker lists an S3Prefix input before reading it: without s3:ListBucket the job fails.
    contexts = [c for c in ic.job_contexts(deployed) if c.where == "Dev step Preprocess"]
    assert ic.check_job_inputs(contexts)[1] == []
    stage = next(s for s, _ in deployed.environments if s.node.path == "Dev")
    st = contexts[0].deployment.stack(stage.training)
    planted = ic.copy_template(st.template)
    for resource in planted["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                statement["Action"] = [
                    a for a in ic._listed(statement["Action"]) if a not in ("s3:ListBucket", "s3:List*")
                ]
    broken = [replace(c, deployment=c.deployment.replaced(stage.training, planted)) for c in contexts]
    _, problems = ic.check_job_inputs(broken)
    assert problems
    assert all("may not s3:ListBucket" in p for p in problems)
    assert any("Preprocess.code (S3Prefix s3://cdk-hnb659fds-assets-" in p for p in problems)
