"""Configuration: profiles, overrides and every validation error path."""

from __future__ import annotations

import dataclasses

import aws_cdk as cdk
import pytest

from cdk_mlops.config import (
    LABELLED_BASELINES,
    MONITOR_BASELINES,
    BatchInferenceConfig,
    DatasetVersions,
    EndpointKind,
    NetworkConfig,
    NetworkMode,
    Profile,
    load_environments,
    load_tooling,
    profile_defaults,
)
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.pipeline_definition import BiasFacet


def problems_of(context: object) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        load_environments(context)
    return list(caught.value.problems)


def test_default_environments_are_dev_staging_prod():
    configs = load_environments(None)
    assert [(c.name, c.profile, c.stage_name) for c in configs] == [
        ("dev", Profile.DEV, "Dev"),
        ("staging", Profile.STAGING, "Staging"),
        ("prod", Profile.PROD, "Prod"),
    ]


def test_dev_profile_is_cheap_and_disposable_but_keeps_data():
    dev = profile_defaults("dev", Profile.DEV)
    assert dev.endpoint_kind is EndpointKind.SERVERLESS
    assert dev.removal_policy == cdk.RemovalPolicy.DESTROY
    assert dev.data_removal_policy == cdk.RemovalPolicy.RETAIN
    assert dev.auto_approve_models is True
    assert dev.termination_protection is False


def test_prod_profile_retains_and_requires_approval():
    prod = profile_defaults("prod", Profile.PROD)
    assert prod.removal_policy == cdk.RemovalPolicy.RETAIN
    assert prod.data_removal_policy == cdk.RemovalPolicy.RETAIN
    assert prod.manual_approval is True
    assert prod.auto_approve_models is False
    assert prod.termination_protection is True
    assert prod.endpoint_kind is EndpointKind.REALTIME
    assert prod.noncurrent_version_expiration_days is None


def test_overrides_apply_on_top_of_the_profile():
    (prod,) = load_environments(
        {"prod": {"account": "123456789012", "region": "eu-west-1", "owner": "ml team", "tags": {"cc": "42"}}}
    )
    assert prod.env is not None
    assert (prod.env.account, prod.env.region) == ("123456789012", "eu-west-1")
    assert prod.owner == "ml team"
    assert prod.tags == {"cc": "42"}
    assert prod.manual_approval is True


def test_environment_without_account_and_region_is_agnostic():
    (dev,) = load_environments({"dev": {}})
    assert dev.env is None


def test_custom_environment_name_takes_its_profile_and_a_stage_name():
    (sandbox,) = load_environments({"ml-sandbox": {"profile": "dev", "endpoint_kind": "realtime"}})
    assert sandbox.profile is Profile.DEV
    assert sandbox.stage_name == "MlSandbox"
    assert sandbox.endpoint_kind is EndpointKind.REALTIME


def test_prod_trains_on_inventory_snapshots_and_the_others_list_unless_told():
    dev, staging, prod = (profile_defaults(n, Profile(n)) for n in ("dev", "staging", "prod"))
    assert (dev.dataset_versions, staging.dataset_versions) == (DatasetVersions.LISTING, DatasetVersions.LISTING)
    assert prod.dataset_versions is DatasetVersions.INVENTORY
    (staging,) = load_environments({"staging": {"dataset_versions": "inventory"}})
    assert staging.dataset_versions is DatasetVersions.INVENTORY
    (staging,) = load_environments({"staging": {"preprocess_instance_count": 4}})
    assert (staging.preprocess_instance_count, prod.preprocess_instance_count) == (4, 1)


def test_context_given_as_json_string_is_parsed():
    (staging,) = load_environments('{"staging": {"retrain_schedule": "rate(1 day)"}}')
    assert staging.retrain_schedule == "rate(1 day)"


def test_config_is_frozen_and_varied_with_replace():
    dev = profile_defaults("dev", Profile.DEV)
    with pytest.raises(dataclasses.FrozenInstanceError):
        dev.name = "other"  # type: ignore[misc]
    assert dataclasses.replace(dev, name="sandbox").stage_name == "Sandbox"


def test_malformed_context_reports_every_problem_at_once():
    # GIVEN the four mistakes the foundation issue names
    context = {
        "dev": {"account": "12345", "region": "mars-1"},
        "staging": {"colour": "blue"},
        "prod": {"manual_approval": False},
    }
    # WHEN / THEN one error lists each, with its key path, value and fix
    with pytest.raises(ConfigurationError) as caught:
        load_environments(context)
    message = str(caught.value)
    assert message.startswith("[cdk.json context] 4 problems:")
    assert "environments.dev.account: '12345' is not an AWS account id; use the 12 digits" in message
    assert "environments.dev.region: 'mars-1' is not a known AWS region; use one of: " in message
    assert "eu-west-1" in message
    assert "environments.staging.colour: unknown key; accepted keys: account, auto_approve_models" in message
    assert "environments.prod.manual_approval: false is not allowed in a prod environment" in message


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"dev": {"account": 123456789012, "region": "eu-west-1"}}, "environments.dev.account: 123456789012 is not"),
        ({"dev": {"region": "eu-west-1"}}, "environments.dev.account: missing; set account and region together"),
        ({"dev": {"account": "123456789012"}}, "environments.dev.region: missing; set account and region together"),
        ({"qa": {}}, "environments.qa.profile: missing; an environment not named dev, staging or prod must set"),
        (
            {"qa": {"profile": "test"}},
            "environments.qa.profile: 'test' is not a profile; use one of: dev, staging, prod",
        ),
        ({"Dev": {}}, "environments.Dev: 'Dev' is not a valid environment name"),
        ({"dev": []}, "environments.dev: [] is not a map of settings"),
        ({"dev": {"termination_protection": "yes"}}, "environments.dev.termination_protection: 'yes' is not a boolean"),
        ({"dev": {"endpoint_kind": "gpu"}}, "environments.dev.endpoint_kind: 'gpu' is not an endpoint kind"),
        (
            {"dev": {"preprocess_instance_count": 101}},
            "environments.dev.preprocess_instance_count: 101 is not an instance count; "
            "use a whole number from 1 to 100",
        ),
        (
            {"dev": {"preprocess_instance_count": "4"}},
            "environments.dev.preprocess_instance_count: '4' is not an instance count",
        ),
        (
            {"dev": {"dataset_versions": "athena"}},
            "environments.dev.dataset_versions: 'athena' is not a way to take dataset versions; use one of: "
            "listing, inventory",
        ),
        (
            {"dev": {"noncurrent_version_transition_days": 29}},
            "noncurrent_version_transition_days: 29 is not valid; use",
        ),
        ({"dev": {"noncurrent_version_transition_days": True}}, "noncurrent_version_transition_days: True is not"),
        ({"dev": {"noncurrent_version_expiration_days": 0}}, "noncurrent_version_expiration_days: 0 is not a number"),
        ({"dev": {"dataset": "../x"}}, "environments.dev.dataset: "),
        ({"dev": {"model_package_arn": "arn:aws:sagemaker:x"}}, "model_package_arn: 'arn:aws:sagemaker:x' is not a"),
        ({"dev": {"model_baseline_prefix": "other/x/"}}, "model_baseline_prefix: 'other/x/' is not a key prefix"),
        ({"dev": {"model_source_bucket": "s3://dev-data"}}, "model_source_bucket: 's3://dev-data' is not an S3 bucket"),
        ({"dev": {"model_source_bucket": "dev-data"}}, "dev.model_source_bucket: set without model_package_arn"),
        ({"dev": {"model_reader_accounts": []}}, "model_reader_accounts: unknown key (it is derived from the other"),
        ({"dev": {"drift_thresholds": {"age": -1}}}, "drift_thresholds: {'age': -1} is not a map of feature"),
        (
            {"dev": {"drift_thresholds": {"age": 0.2}}},
            "environments.dev.drift_thresholds: serverless endpoints capture no data",
        ),
        (
            {"prod": {"model_package_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1"}},
            "environments.prod.model_baseline_prefix: missing; a realtime endpoint is monitored",
        ),
        ({"dev": {"model_baselines": ["model-quality"]}}, "model_baselines: ['model-quality'] is not a list of"),
        ({"dev": {"model_baselines": "data-quality,drift"}}, "model_baselines: 'data-quality,drift' is not a list"),
        ({"dev": {"model_baselines": ["data-quality"] * 2}}, "model_baselines: ['data-quality', 'data-quality'] is"),
        ({"dev": {"model_baselines": []}}, "environments.dev.model_baselines: [] is not a list of monitoring"),
        (
            {"dev": {"model_baselines": "data-quality,model-bias", "model_baseline_prefix": "artifacts/p/e/dq/"}},
            "dev.model_baselines: data-quality, model-bias are found beside the data-quality baseline, but",
        ),
        ({"dev": {"ground_truth": "yes"}}, "environments.dev.ground_truth: 'yes' is not a boolean"),
        ({"dev": {"batch_inference": "daily"}}, "environments.dev.batch_inference: 'daily' is not a batch inference"),
        ({"dev": {"batch_inference": {"schedule": "daily"}}}, "dataset is missing: name the dataset to score; sche"),
        ({"dev": {"batch_inference": {"dataset": "a", "when": 1}}}, "batch_inference: unknown key 'when' (known: d"),
        ({"dev": {"batch_inference": {"dataset": "../x"}}}, "environments.dev.batch_inference: dataset: "),
        ({"dev": {"batch_inference": {"dataset": "scores"}}}, "dev.batch_inference: set without model_package_arn"),
        (
            {"dev": {"batch_inference": {"dataset": "churn"}}},
            "dev.batch_inference.dataset: 'churn' is the dataset the environment trains on",
        ),
        ({"dev": {"bias_facets": []}}, "environments.dev.bias_facets: [] is not a list of facets; use e.g."),
        ({"dev": {"bias_facets": [{"column": "age"}]}}, "bias_facets: {'column': 'age'} is not a facet; use a map"),
        ({"dev": {"bias_facets": [{"name": "age", "values": 1}]}}, "values must be a list of numbers"),
        ({"dev": {"bias_facets": [{"name": "age", "values": [1], "threshold": 2}]}}, "environments.dev.bias_facets"),
        ({"dev": {"disabled_guardrails": ["MLOPS-999"]}}, "environments.dev.disabled_guardrails: ['MLOPS-999'] is not"),
        (
            {"dev": {"warning_guardrails": "MLOPS-001"}},
            "environments.dev.warning_guardrails: 'MLOPS-001' is not a list",
        ),
        ({"dev": {"retrain_schedule": "every monday"}}, "environments.dev.retrain_schedule: 'every monday' is not a"),
        ({"dev": {"owner": ""}}, "environments.dev.owner: '' is not valid"),
        ({"dev": {"tags": {"cc": 1}}}, "environments.dev.tags: {'cc': 1} is not a tag map"),
        ({"dev": {"removal_policy": "destroy"}}, "environments.dev.removal_policy: unknown key (it is derived"),
        ({"prod": {"auto_approve_models": True}}, "environments.prod.auto_approve_models: true is not allowed"),
        ({"prod": {"termination_protection": False}}, "environments.prod.termination_protection: false is not"),
        (
            {"dev": {"noncurrent_version_expiration_days": 10}},
            "environments.dev.noncurrent_version_expiration_days: 10 must be greater than",
        ),
        ({"dev": {}, "d-ev": {"profile": "dev"}}, None),
        ({"a-b": {"profile": "dev"}, "ab": {"profile": "dev"}}, None),
    ],
)
def test_each_invalid_setting_is_named_with_its_fix(context, expected):
    if expected is None:
        # Different names are fine as long as the stage names differ too.
        names = {c.stage_name for c in load_environments(context)}
        assert len(names) == len(context)
        return
    problems = problems_of(context)
    assert any(expected in p for p in problems), problems


def test_model_baselines_are_a_list_or_the_delivery_records_comma_separated_form():
    prefix = "artifacts/p/exec-1/data-quality-baseline/"
    listed, recorded, default = load_environments(
        {
            "a": {
                "profile": "staging",
                "model_baseline_prefix": prefix,
                "model_baselines": ["data-quality", "model-bias"],
            },
            "b": {"profile": "staging", "model_baseline_prefix": prefix, "model_baselines": "data-quality, model-bias"},
            "c": {"profile": "staging"},
        }
    )
    assert listed.model_baselines == recorded.model_baselines == ("data-quality", "model-bias")
    assert default.model_baselines == ("data-quality",)
    assert not default.ground_truth


def test_batch_inference_and_bias_facets_become_typed_settings():
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1"
    (dev,) = load_environments(
        {
            "dev": {
                "model_package_arn": arn,
                "batch_inference": {"dataset": "churn-scoring", "schedule": "cron(0 4 * * ? *)"},
                "bias_facets": [{"name": "age", "threshold": 40}, {"name": "sex", "values": [1]}],
            }
        }
    )
    assert dev.batch_inference == BatchInferenceConfig(dataset="churn-scoring", schedule="cron(0 4 * * ? *)")
    assert dev.bias_facets == (BiasFacet(name="age", threshold=40), BiasFacet(name="sex", values=(1,)))


def test_the_baseline_names_are_the_monitoring_types_slugs():
    from cdk_mlops.constructs.model_monitor import MonitoringType

    assert tuple(t.slug for t in MonitoringType) == MONITOR_BASELINES
    assert {t.slug for t in (MonitoringType.MODEL_QUALITY, MonitoringType.MODEL_BIAS)} == LABELLED_BASELINES


def test_later_environments_in_other_accounts_may_read_an_environments_models():
    dev, staging, prod, sandbox = load_environments(
        {
            "dev": {"account": "111111111111", "region": "eu-west-1"},
            "staging": {"account": "222222222222", "region": "eu-west-1"},
            "prod": {"account": "333333333333", "region": "eu-central-1"},
            "sandbox": {"profile": "dev", "account": "333333333333", "region": "eu-west-1"},
        }
    )
    # Models flow forward: each environment's readers are the later ones, minus its own account.
    assert dev.model_reader_accounts == ("222222222222", "333333333333")
    assert staging.model_reader_accounts == ("333333333333",)
    assert prod.model_reader_accounts == ()
    assert sandbox.model_reader_accounts == ()
    # Environment-agnostic environments have no account to name.
    assert all(c.model_reader_accounts == () for c in load_environments(None))


def test_two_environments_with_one_stage_name_are_rejected():
    assert problems_of({"ml-1": {"profile": "dev"}, "ml1": {"profile": "dev"}}) == [
        "environments: two environments map to the stage name 'Ml1'; rename one"
    ]


@pytest.mark.parametrize("context", [[], {}, 42, "[]"])
def test_context_that_is_not_a_map_is_rejected(context):
    with pytest.raises(ConfigurationError, match=r"\[cdk.json context\] environments: .* is not a map"):
        load_environments(context)


def test_context_with_bad_json_is_rejected():
    with pytest.raises(ConfigurationError, match=r"environments: not valid JSON \(Expecting"):
        load_environments("{dev: }")


def test_tooling_is_optional_and_validated():
    assert load_tooling(None) is None
    assert load_tooling("null") is None, "-c tooling=null leaves the pipelines out"
    tooling = load_tooling({"account": "123456789012", "region": "eu-west-1", "repository": "org/repo"})
    assert tooling is not None
    assert tooling.delivery_arguments()["repository"] == "org/repo"
    assert tooling.branch == "main"
    with pytest.raises(ConfigurationError) as caught:
        load_tooling({"account": "1", "branch": "", "colour": "blue"})
    assert caught.value.problems == (
        "tooling.account: '1' is not an AWS account id; use the 12 digits, as a string (e.g. \"123456789012\")",
        "tooling.branch: '' is not a non-empty string",
        "tooling.colour: unknown key; accepted keys: account, branch, connection_arn, model_delivery, "
        "model_registry_environment, network, region, repository, source_bucket_name, source_object_key",
        "tooling.region: missing; the delivery pipelines live in one account and region",
    )


@pytest.mark.parametrize("account", ["12345678901", "1234567890123", "12345678901a", " 123456789012"])
def test_an_account_id_of_other_than_twelve_digits_is_refused(account):
    # WHEN an environment names an account id that is one digit short, one too long or not digits
    with pytest.raises(ConfigurationError) as caught:
        load_environments({"dev": {"account": account, "region": "eu-west-1"}})
    # THEN the message quotes the value and the fix
    assert f"environments.dev.account: {account!r} is not an AWS account id; use the 12 digits" in str(caught.value)


#: An existing VPC's ids as the ``network`` context key takes them.
EXISTING_VPC = {
    "vpc_id": "vpc-0123456789abcdef0",
    "availability_zones": ["eu-west-1a", "eu-west-1b"],
    "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
    "route_table_ids": ["rtb-0123456789abcdef0", "rtb-0fedcba9876543210"],
}


def test_prod_runs_in_an_isolated_vpc_and_dev_and_staging_in_none():
    # WHEN the default environments are loaded
    dev, staging, prod = load_environments(None)
    # THEN prod gets a VPC the platform creates, and requires its jobs to be in it; the others cost nothing idle
    assert prod.network == NetworkConfig(mode=NetworkMode.ISOLATED)
    assert prod.require_network_isolation is True
    for config in (dev, staging):
        assert config.network.private is False
        assert config.require_network_isolation is False


def test_an_existing_vpc_is_named_by_its_ids():
    (prod,) = load_environments({"prod": {"region": "eu-west-1", "account": "123456789012", "network": EXISTING_VPC}})
    assert prod.network == NetworkConfig(
        mode=NetworkMode.EXISTING,
        vpc_id="vpc-0123456789abcdef0",
        availability_zones=("eu-west-1a", "eu-west-1b"),
        subnet_ids=("subnet-0123456789abcdef0", "subnet-0fedcba9876543210"),
        route_table_ids=("rtb-0123456789abcdef0", "rtb-0fedcba9876543210"),
    )
    (dev,) = load_environments({"dev": {"network": "isolated"}})
    assert dev.network.mode is NetworkMode.ISOLATED


@pytest.mark.parametrize(
    ("network", "expected"),
    [
        ("private", 'environments.dev.network: \'private\' is not a network; use "none", "isolated", or an'),
        (True, "environments.dev.network: True is not a network"),
        ({**EXISTING_VPC, "vpc_id": "vpc-1"}, "network: vpc_id: 'vpc-1' is not a VPC id"),
        ({**EXISTING_VPC, "nat": True}, "network: nat: unknown key; accepted keys: vpc_id, subnet_ids"),
        ({**EXISTING_VPC, "subnet_ids": "subnet-0123456789abcdef0"}, "subnet_ids: 'subnet-0123456789abcdef0' is not"),
        ({**EXISTING_VPC, "security_group_ids": ["sg-x"]}, "security_group_ids: ['sg-x'] is not a list of ids"),
        ({**EXISTING_VPC, "availability_zones": ["eu-west-1a", "eu-west-1a"]}, "in 1 distinct availability_zones"),
        ({**EXISTING_VPC, "route_table_ids": []}, "route_table_ids: 0 route tables for 2 subnets"),
        ({**EXISTING_VPC, "create_endpoints": "no"}, "create_endpoints: 'no' is not a boolean"),
    ],
)
def test_each_invalid_network_is_named_with_its_fix(network, expected):
    problems = problems_of({"dev": {"network": network}})
    assert any(expected in p for p in problems), problems


def test_an_existing_vpc_with_its_own_endpoints_needs_no_route_tables():
    network = {k: v for k, v in EXISTING_VPC.items() if k != "route_table_ids"}
    groups = {"security_group_ids": ["sg-0123456789abcdef0"]}
    (dev,) = load_environments({"dev": {"network": {**network, **groups, "create_endpoints": False}}})
    assert dev.network.create_endpoints is False
    # Without its own groups the jobs would get a new one that the VPC's endpoints do not admit.
    problems = problems_of({"dev": {"network": {**network, "create_endpoints": False}}})
    assert any('security_group_ids: missing; with "create_endpoints": false' in p for p in problems), problems


def test_isolation_without_a_network_is_refused_and_prod_may_opt_out_with_both_keys():
    # WHEN prod drops its VPC but keeps the isolation requirement
    problems = problems_of({"prod": {"network": "none"}})
    # THEN the message names both ways out
    assert problems == [
        'environments.prod.require_network_isolation: true needs a VPC, but network is "none"; set network to '
        '"isolated" (or an existing VPC\'s ids), or set require_network_isolation to false'
    ]
    (prod,) = load_environments({"prod": {"network": "none", "require_network_isolation": False}})
    assert prod.network.private is False


def test_a_serverless_endpoint_where_isolation_is_required_is_refused():
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1"
    problems = problems_of({"prod": {"endpoint_kind": "serverless", "model_package_arn": arn}})
    assert problems == [
        "environments.prod.endpoint_kind: serverless endpoints cannot run in a VPC, and require_network_isolation "
        'is true; set "endpoint_kind": "realtime", or set require_network_isolation to false'
    ]
    # Without a model there is no endpoint yet, so nothing conflicts.
    (prod,) = load_environments({"prod": {"endpoint_kind": "serverless"}})
    assert prod.endpoint_kind is EndpointKind.SERVERLESS


def test_zones_of_another_region_are_refused():
    problems = problems_of({"prod": {"account": "123456789012", "region": "us-east-1", "network": EXISTING_VPC}})
    assert problems == [
        "environments.prod.network.availability_zones: eu-west-1a, eu-west-1b not in the environment's region "
        "us-east-1; name the zones of the VPC's subnets"
    ]


def test_tooling_network_is_an_existing_vpc_only():
    tooling = load_tooling({"account": "123456789012", "region": "eu-west-1", "network": EXISTING_VPC})
    assert tooling is not None
    assert tooling.network is not None
    assert tooling.network.vpc_id == "vpc-0123456789abcdef0"
    assert tooling.delivery_arguments()["network"] == tooling.network
    with pytest.raises(ConfigurationError) as caught:
        load_tooling({"account": "123456789012", "region": "eu-west-1", "network": "isolated"})
    assert caught.value.problems[0].startswith("tooling.network: 'isolated' is not an existing VPC's ids")
