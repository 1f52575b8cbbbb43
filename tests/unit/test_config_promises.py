"""Configuration promises from another side: account ids everywhere they are read, profile defaults,
bounds, and every problem reported with its whole message.

``test_config.py`` covers each rule once; these tests pin the exact values and messages that a
person reads, so that an edit to a default, a bound or a fix hint cannot slip through.
"""

from __future__ import annotations

from typing import Any

import pytest

from cdk_mlops.config import EndpointKind, Profile, load_environments, load_tooling, profile_defaults
from cdk_mlops.errors import ConfigurationError

ACCOUNT_HINT = 'is not an AWS account id; use the 12 digits, as a string (e.g. "123456789012")'
TOOLING = {"account": "123456789012", "region": "eu-west-1", "connection_arn": "arn:c", "repository": "o/r"}
WEEKLY = "cron(0 3 ? * MON *)"


def problems(context: object) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_environments(context)
    return str(caught.value)


def tooling_problems(context: object) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_tooling(context)
    return str(caught.value)


# --- account ids ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "account", ["12345678901", "1234567890123", 123456789012, "12345678901\n", "123456789012\n", "\n123456789012"]
)
def test_the_tooling_account_is_twelve_digits_as_a_string(account: object) -> None:
    # WHEN the delivery pipelines' account is one digit short or long, a number, or has a trailing newline
    message = tooling_problems({**TOOLING, "account": account})
    # THEN it is refused with the fix
    assert f"tooling.account: {account!r} {ACCOUNT_HINT}" in message


def test_a_model_package_arn_must_name_a_twelve_digit_account() -> None:
    arn = "arn:aws:sagemaker:eu-west-1:{}:model-package/churn/3"
    context = {"model_package_arn": arn.format("12345678901"), "model_baseline_prefix": "artifacts/p/e/b/"}
    assert "model_package_arn: 'arn:aws:sagemaker:eu-west-1:12345678901:" in problems({"staging": context})
    [config] = load_environments({"staging": {**context, "model_package_arn": arn.format("123456789012")}})
    assert config.model_package_arn == arn.format("123456789012")


def test_an_account_id_is_refused_however_the_environment_is_named() -> None:
    # GIVEN two environments, each with a bad account (later ones are checked too)
    message = problems(
        {
            "dev": {"account": "1" * 11, "region": "eu-west-1"},
            "qa": {"profile": "dev", "account": 1, "region": "eu-west-1"},
        }
    )
    assert f"environments.dev.account: '{'1' * 11}' {ACCOUNT_HINT}" in message
    assert f"environments.qa.account: 1 {ACCOUNT_HINT}" in message


# --- profile defaults ----------------------------------------------------------------------------------


def test_each_profile_keeps_old_versions_and_retrains_as_documented() -> None:
    dev, staging, prod = (profile_defaults(p.value, p) for p in Profile)
    assert (dev.noncurrent_version_expiration_days, dev.retrain_schedule) == (60, None)
    assert (staging.noncurrent_version_expiration_days, staging.retrain_schedule) == (365, WEEKLY)
    assert (prod.noncurrent_version_expiration_days, prod.retrain_schedule) == (None, WEEKLY)
    assert [c.endpoint_kind for c in (dev, staging, prod)] == [EndpointKind.SERVERLESS, *[EndpointKind.REALTIME] * 2]


# --- bounds ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "accepted"),
    [
        ("noncurrent_version_expiration_days", 31, True),
        ("noncurrent_version_expiration_days", 36500, True),
        ("noncurrent_version_expiration_days", 36501, False),
        ("noncurrent_version_expiration_days", 0, False),
        ("noncurrent_version_expiration_days", True, False),
        ("noncurrent_version_transition_days", 30, True),
        ("noncurrent_version_transition_days", 36500, True),
        ("noncurrent_version_transition_days", 29, False),
        ("noncurrent_version_transition_days", 36501, False),
        ("noncurrent_version_transition_days", 30.0, False),
    ],
)
def test_day_counts_are_whole_numbers_within_their_bounds(key: str, value: object, accepted: bool) -> None:
    # Prod keeps every version (no expiration) and moves old ones after 30 days: no other problem arises.
    context = {"prod": {key: value}}
    if accepted:
        [config] = load_environments(context)
        assert getattr(config, key) == value
    else:
        assert f"environments.prod.{key}: {value!r} is not" in problems(context)


def test_one_day_is_the_shortest_expiration_and_it_must_outlast_the_transition() -> None:
    assert "use a whole number from 1 to 36500" in problems({"dev": {"noncurrent_version_expiration_days": 0}})
    message = problems({"dev": {"noncurrent_version_expiration_days": 1}})
    assert (
        "noncurrent_version_expiration_days: 1 must be greater than noncurrent_version_transition_days (30)" in message
    )
    assert "must be greater" in problems({"dev": {"noncurrent_version_expiration_days": 30}})
    [config] = load_environments({"dev": {"noncurrent_version_expiration_days": 31}})
    assert config.noncurrent_version_expiration_days == 31


# --- every problem, with its whole message ------------------------------------------------------------


def test_every_bad_value_of_one_environment_is_named_with_its_fix() -> None:
    context = {
        "dev": {
            "endpoint_kind": "batch",
            "retrain_schedule": "weekly",
            "dataset": "a/b..",
            "model_package_arn": "arn:x",
            "model_baseline_prefix": "artifacts/../x/",
            "model_source_bucket": "a..b",
            "drift_thresholds": {"age": 0},
            "disabled_guardrails": ["MLOPS-999"],
        }
    }
    assert problems(context) == "\n".join(
        [
            "[cdk.json context] 8 problems:",
            "  - environments.dev.endpoint_kind: 'batch' is not an endpoint kind; use one of: serverless, realtime, "
            "async",
            "  - environments.dev.retrain_schedule: 'weekly' is not a schedule; use cron(...) or rate(N unit) as "
            "EventBridge Scheduler accepts, or null to turn it off",
            "  - environments.dev.dataset: dataset name 'a/b..' contains '/'; use a single segment such as "
            "'churn-2024' (nested names would place one dataset inside another's prefix); dataset name 'a/b..' "
            "contains '..'; remove it",
            "  - environments.dev.model_package_arn: 'arn:x' is not a versioned model package ARN; use "
            "arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>, or null",
            "  - environments.dev.model_baseline_prefix: 'artifacts/../x/' is not a key prefix under artifacts/ "
            "ending in '/'; use e.g. 'artifacts/<pipeline>/<execution id>/data-quality-baseline/'",
            "  - environments.dev.model_source_bucket: 'a..b' is not an S3 bucket name; use the name (not the ARN "
            "or an s3:// URI) of the data bucket, or null",
            "  - environments.dev.drift_thresholds: {'age': 0} is not a map of feature names to positive drift "
            'thresholds; use e.g. {"age": 0.2}',
            "  - environments.dev.disabled_guardrails: ['MLOPS-999'] is not a list of guardrail ids; use ids from: "
            "MLOPS-001, MLOPS-002, MLOPS-003, MLOPS-004, MLOPS-005, MLOPS-006, MLOPS-007, MLOPS-008, MLOPS-009",
        ]
    )


def test_a_region_problem_lists_the_known_regions_comma_separated() -> None:
    message = problems({"dev": {"account": "123456789012", "region": "eu-west-9"}})
    assert (
        "environments.dev.region: 'eu-west-9' is not a known AWS region; use one of: af-south-1, ap-east-1, " in message
    )


def test_problems_of_every_environment_and_every_key_are_reported_together() -> None:
    # GIVEN a bad name, a value that is not a map, an unknown key before a bad value, and a good environment
    context: dict[str, Any] = {"Bad_Name": {}, "qa": "dev", "dev": {"colour": "red", "owner": "x" * 300}, "prod": {}}

    # WHEN / THEN each is reported, none hides the ones after it
    message = problems(context)
    assert message.startswith("[cdk.json context] 4 problems:")
    assert "environments.Bad_Name: 'Bad_Name' is not a valid environment name" in message
    assert "environments.qa: 'dev' is not a map of settings" in message
    assert "environments.dev.colour: unknown key; accepted keys: account, " in message
    assert "environments.dev.owner: '" in message


def test_prod_overrides_that_weaken_it_are_each_refused_with_their_reason() -> None:
    message = problems({"prod": {"manual_approval": False, "auto_approve_models": True, "model_source_bucket": "b-1"}})
    assert message == "\n".join(
        [
            "[cdk.json context] 3 problems:",
            "  - environments.prod.manual_approval: false is not allowed in a prod environment; remove the key "
            "(prod always requires a manual approval)",
            "  - environments.prod.auto_approve_models: true is not allowed in a prod environment; remove the key "
            "(prod models are approved by a person)",
            "  - environments.prod.model_source_bucket: set without model_package_arn; it names where the served "
            "model's artifacts are, so set model_package_arn too, or remove the key",
        ]
    )


def test_a_served_model_needs_its_baseline_and_drift_needs_a_realtime_endpoint() -> None:
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn/3"
    assert problems({"staging": {"model_package_arn": arn}}) == (
        "[cdk.json context] environments.staging.model_baseline_prefix: missing; a realtime endpoint is monitored "
        "against its model's drift-check baseline: set the data-store prefix of the statistics.json and "
        "constraints.json that the training execution wrote "
        "(artifacts/<pipeline>/<execution id>/data-quality-baseline/)"
    )
    assert problems({"dev": {"drift_thresholds": {"age": 0.2}}}) == (
        "[cdk.json context] environments.dev.drift_thresholds: serverless endpoints capture no data here, so "
        'nothing monitors drift; remove the key, or set "endpoint_kind": "realtime"'
    )
    assert problems({"staging": {"endpoint_kind": "async", "drift_thresholds": {"age": 0.2}}}) == (
        "[cdk.json context] environments.staging.drift_thresholds: async endpoints capture no data here, so "
        'nothing monitors drift; remove the key, or set "endpoint_kind": "realtime"'
    )


def test_context_that_is_not_a_map_and_a_custom_name_without_a_profile_name_the_fix() -> None:
    assert problems(["dev"]) == (
        "[cdk.json context] environments: ['dev'] is not a map of environment names to settings; "
        'use e.g. {"dev": {}, "staging": {}, "prod": {}}'
    )
    assert problems({"sandbox": {}}) == (
        "[cdk.json context] environments.sandbox.profile: missing; an environment not named dev, staging or prod "
        "must set profile to one of: dev, staging, prod"
    )


def test_guardrail_lists_become_tuples() -> None:
    [config] = load_environments({"dev": {"disabled_guardrails": ["MLOPS-009"], "warning_guardrails": ["MLOPS-001"]}})
    assert (config.disabled_guardrails, config.warning_guardrails) == (("MLOPS-009",), ("MLOPS-001",))


# --- networks -------------------------------------------------------------------------------------------


EXISTING = {
    "vpc_id": "vpc-0123456789abcdef0",
    "availability_zones": ["eu-west-1a", "eu-west-1b"],
    "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
    "route_table_ids": ["rtb-0123456789abcdef0", "rtb-0fedcba9876543210"],
}


@pytest.mark.parametrize(
    ("network", "expected"),
    [
        (
            {key: value for key, value in EXISTING.items() if key != "availability_zones"},
            "subnet_ids: 2 subnets in 0 distinct availability_zones; give one private subnet per zone, in at least "
            "two zones, with availability_zones in the same order",
        ),
        (
            {key: value for key, value in EXISTING.items() if key != "subnet_ids"},
            "subnet_ids: 0 subnets in 2 distinct availability_zones",
        ),
        (
            {key: value for key, value in EXISTING.items() if key != "route_table_ids"},
            "route_table_ids: 0 route tables for 2 subnets; the S3 and DynamoDB gateway endpoints are added to each "
            'subnet\'s route table: list them in subnet order, or set "create_endpoints": false',
        ),
        (
            {**EXISTING, "create_endpoints": False},
            'security_group_ids: missing; with "create_endpoints": false the VPC\'s own endpoints are used, and only '
            "its security groups are allowed to reach them: list them, or remove create_endpoints",
        ),
    ],
)
def test_an_existing_vpc_missing_ids_is_refused_with_the_fix(network: dict[str, Any], expected: str) -> None:
    message = problems({"dev": {"account": "123456789012", "region": "eu-west-1", "network": network}})
    assert f"environments.dev.network: {expected}" in message


def test_two_network_problems_are_joined_in_one_line() -> None:
    network = {"vpc_id": "vpc-1", "subnet_ids": "subnet-0123456789abcdef0"}
    message = problems({"dev": {"account": "123456789012", "region": "eu-west-1", "network": network}})
    assert (
        "environments.dev.network: vpc_id: 'vpc-1' is not a VPC id; use e.g. \"vpc-0123456789abcdef0\"; subnet_ids: "
        in message
    )


# --- tooling -------------------------------------------------------------------------------------------------


def test_tooling_given_as_text_is_parsed_and_null_means_no_pipelines() -> None:
    assert load_tooling("null") is None
    tooling = load_tooling('{"account": "123456789012", "region": "eu-west-1", "connection_arn": "arn:c"}')
    assert tooling is not None
    assert (tooling.account, tooling.region, tooling.connection_arn) == ("123456789012", "eu-west-1", "arn:c")
    assert tooling_problems("{bad") == (
        "[cdk.json context] tooling: not valid JSON (Expecting property name enclosed in double quotes)"
    )
    assert tooling_problems("[1]") == "[cdk.json context] tooling: [1] is not a map of settings"


def test_the_delivery_stack_gets_every_tooling_setting_but_account_and_region() -> None:
    tooling = load_tooling(TOOLING)
    assert tooling is not None
    arguments = tooling.delivery_arguments()
    assert "account" not in arguments
    assert "region" not in arguments
    assert arguments["connection_arn"] == "arn:c"
    assert arguments["branch"] == "main"


def test_valid_overrides_are_taken_as_given() -> None:
    [config] = load_environments(
        {"staging": {"noncurrent_version_expiration_days": None, "dataset": "fraud", "drift_thresholds": {"age": 0.2}}}
    )
    assert config.noncurrent_version_expiration_days is None
    assert config.dataset == "fraud"
    assert config.drift_thresholds == {"age": 0.2}
