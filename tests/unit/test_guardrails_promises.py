"""MLOPS-001 on ``service:*`` actions, from every place IAM lets a template grant one.

``test_guardrails.py`` checks one ``s3:*`` in an ``AWS::IAM::Policy``; these tests grant
``service:*`` the other ways a template can: a role's inline policies, a managed policy, a
user, a single statement instead of a list, an action string instead of a list.
"""

from __future__ import annotations

from typing import Any

import pytest

from cdk_mlops.guardrails import RULES, GuardrailSettings, StackView, evaluate

#: Only MLOPS-001 runs, so each test sees nothing but its findings.
MLOPS_001 = GuardrailSettings(disabled=frozenset(r.id for r in RULES if r.id != "MLOPS-001"))
FIX = "Grant least privilege through the constructs' grant_* methods (or list the exact actions) instead"


def findings(resources: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f.logical_id, f.message) for f in evaluate(StackView({"Resources": resources}), MLOPS_001)]


def allow(action: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": "*"}


@pytest.mark.parametrize(
    ("resource_type", "properties"),
    [
        (
            "AWS::IAM::Role",
            {"Policies": [{"PolicyName": "inline", "PolicyDocument": {"Statement": [allow("sagemaker:*")]}}]},
        ),
        (
            "AWS::IAM::User",
            {"Policies": [{"PolicyName": "inline", "PolicyDocument": {"Statement": allow(["sagemaker:*"])}}]},
        ),
        ("AWS::IAM::ManagedPolicy", {"PolicyDocument": {"Statement": [allow(["s3:GetObject", "sagemaker:*"])]}}),
        ("AWS::IAM::Policy", {"PolicyDocument": {"Statement": allow("sagemaker:*")}}),
    ],
    ids=["role inline policy", "user inline policy", "managed policy", "single statement"],
)
def test_a_service_wildcard_is_found_wherever_a_template_grants_it(
    resource_type: str, properties: dict[str, Any]
) -> None:
    # GIVEN a resource that allows every SageMaker action
    resources = {"Grantee": {"Type": resource_type, "Properties": properties}}

    # WHEN / THEN MLOPS-001 names the action and the fix
    assert findings(resources) == [("Grantee", f"allows action 'sagemaker:*'. {FIX}")]


def test_every_wildcard_of_every_document_is_named_once() -> None:
    # GIVEN a role with two inline policies holding three wildcards, and exact actions beside them
    documents = [
        {"Statement": [allow(["s3:*", "s3:GetObject"]), allow("kms:*")]},
        {"Statement": [allow("*")]},
    ]
    policies = [{"PolicyName": f"p{i}", "PolicyDocument": d} for i, d in enumerate(documents)]
    resources = {"Role": {"Type": "AWS::IAM::Role", "Properties": {"Policies": policies}}}

    # WHEN / THEN one finding lists each wildcard action, in order
    assert findings(resources) == [("Role", f"allows action 's3:*'; allows action 'kms:*'; allows action '*'. {FIX}")]


def test_denials_and_exact_or_prefixed_actions_are_not_wildcards() -> None:
    # GIVEN a deny of s3:* (it takes rights away) and allows of exact and prefixed actions
    statements = [
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*"},
        allow(["s3:GetObject", "s3:Get*", "sagemaker:Describe*"]),
    ]
    resources = {"Policy": {"Type": "AWS::IAM::Policy", "Properties": {"PolicyDocument": {"Statement": statements}}}}

    # WHEN / THEN nothing is found
    assert findings(resources) == []


def test_resources_that_grant_nothing_are_not_checked() -> None:
    # GIVEN a bucket policy that allows s3:* to the account (MLOPS-001 is about principals' own permissions)
    statement = {**allow("s3:*"), "Principal": {"AWS": "arn:aws:iam::123456789012:root"}}
    resources = {
        "Policy": {"Type": "AWS::S3::BucketPolicy", "Properties": {"PolicyDocument": {"Statement": [statement]}}}
    }

    # WHEN / THEN MLOPS-001 does not look at it
    assert findings(resources) == []


def test_a_deny_before_a_wildcard_allow_does_not_hide_it() -> None:
    statements = [{"Effect": "Deny", "Action": "iam:*", "Resource": "*"}, allow("s3:*")]
    resources = {"Policy": {"Type": "AWS::IAM::Policy", "Properties": {"PolicyDocument": {"Statement": statements}}}}
    assert findings(resources) == [("Policy", f"allows action 's3:*'. {FIX}")]


# --- the other rules' edges, with the whole message a person reads --------------------------------------

TAGS = [{"Key": "project", "Value": "p"}, {"Key": "environment", "Value": "e"}, {"Key": "owner", "Value": "o"}]


def rule_findings(rule_id: str, resources: dict[str, Any], *, prod: bool = False, isolated: bool = False) -> list[str]:
    others = frozenset(r.id for r in RULES if r.id != rule_id)
    settings = GuardrailSettings(prod=prod, require_network_isolation=isolated, disabled=others)
    return [f"{f.logical_id}: {f.message}" for f in evaluate(StackView({"Resources": resources}), settings)]


def bucket(encryption: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {"Tags": TAGS, **extra}
    if encryption is not None:
        properties["BucketEncryption"] = {
            "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": encryption}]
        }
    return {"Type": "AWS::S3::Bucket", "Properties": properties}


@pytest.mark.parametrize(
    ("encryption", "compliant"),
    [
        ({"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Ref": "Key"}}, True),
        ({"SSEAlgorithm": "aws:kms:dsse", "KMSMasterKeyID": {"Ref": "Key"}}, True),
        ({"SSEAlgorithm": "aws:kms"}, False),
        ({"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": ""}, False),
        ({"SSEAlgorithm": "AES256", "KMSMasterKeyID": {"Ref": "Key"}}, False),
        (None, False),
    ],
)
def test_a_bucket_needs_kms_or_dsse_with_a_key_of_its_own(encryption: dict[str, Any] | None, compliant: bool) -> None:
    expected = (
        []
        if compliant
        else [
            "Bucket: AWS::S3::Bucket is not encrypted with a customer-managed KMS key; set BucketEncryption to aws:kms "
            "with a KMSMasterKeyID"
        ]
    )
    assert rule_findings("MLOPS-002", {"Bucket": bucket(encryption)}) == expected


@pytest.mark.parametrize(
    ("resource", "compliant"),
    [
        (
            {
                "Type": "AWS::SageMaker::DataQualityJobDefinition",
                "Properties": {"DataQualityJobOutputConfig": {"KmsKeyId": "k"}},
            },
            True,
        ),
        (
            {"Type": "AWS::SageMaker::ModelQualityJobDefinition", "Properties": {"ModelQualityJobOutputConfig": {}}},
            False,
        ),
        (
            {
                "Type": "AWS::SageMaker::ModelBiasJobDefinition",
                "Properties": {"ModelBiasJobOutputConfig": {"KmsKeyId": ""}},
            },
            False,
        ),
        (
            {
                "Type": "AWS::SageMaker::MonitoringSchedule",
                "Properties": {
                    "MonitoringScheduleConfig": {
                        "MonitoringJobDefinition": {"MonitoringOutputConfig": {"KmsKeyId": "k"}}
                    }
                },
            },
            True,
        ),
        (
            {
                "Type": "AWS::SageMaker::MonitoringSchedule",
                "Properties": {"MonitoringScheduleConfig": {"MonitoringJobDefinition": {"MonitoringOutputConfig": {}}}},
            },
            False,
        ),
        # A schedule that names a job definition: the definition is checked itself.
        (
            {
                "Type": "AWS::SageMaker::MonitoringSchedule",
                "Properties": {"MonitoringScheduleConfig": {"MonitoringJobDefinitionName": "d"}},
            },
            True,
        ),
    ],
)
def test_monitoring_output_is_encrypted_with_a_key_of_its_own(resource: dict[str, Any], compliant: bool) -> None:
    expected = (
        []
        if compliant
        else [f"Monitor: {resource['Type']} is not encrypted with a customer-managed KMS key; set the output KmsKeyId"]
    )
    assert (
        rule_findings("MLOPS-002", {"Monitor": {**resource, "Properties": {**resource["Properties"], "Tags": TAGS}}})
        == expected
    )


def test_a_queue_with_an_empty_key_is_not_encrypted() -> None:
    queue = {"Type": "AWS::SQS::Queue", "Properties": {"KmsMasterKeyId": "", "Tags": TAGS}}
    assert rule_findings("MLOPS-002", {"Queue": queue}) == [
        "Queue: AWS::SQS::Queue is not encrypted with a customer-managed KMS key; set KmsMasterKeyId (encryption=KMS)"
    ]


def test_prod_retention_accepts_retain_except_on_create_and_names_both_policies() -> None:
    kept = {"DeletionPolicy": "RetainExceptOnCreate", "UpdateReplacePolicy": "Retain"}
    assert rule_findings("MLOPS-003", {"Bucket": {**bucket(None), **kept}}, prod=True) == []
    half = {"UpdateReplacePolicy": "Retain"}
    assert rule_findings("MLOPS-003", {"Bucket": {**bucket(None), **half}}, prod=True) == [
        "Bucket: AWS::S3::Bucket has DeletionPolicy Delete and UpdateReplacePolicy Retain; in prod use "
        "removal_policy=RemovalPolicy.RETAIN"
    ]


def test_prod_endpoints_and_buckets_name_the_property_to_set() -> None:
    endpoint = {"Type": "AWS::SageMaker::Endpoint", "Properties": {"Tags": TAGS}}
    assert rule_findings("MLOPS-005", {"Endpoint": endpoint}, prod=True) == [
        "Endpoint: the endpoint has no auto-rollback alarms; set DeploymentConfig.AutoRollbackConfiguration.Alarms"
    ]
    assert rule_findings("MLOPS-006", {"Bucket": bucket(None)}, prod=True) == [
        "Bucket: the bucket is not versioned; set versioned=True (VersioningConfiguration Status Enabled)"
    ]


def test_an_isolated_model_needs_both_a_vpc_and_network_isolation() -> None:
    def model(**properties: Any) -> dict[str, Any]:
        return {"Model": {"Type": "AWS::SageMaker::Model", "Properties": {"Tags": TAGS, **properties}}}

    vpc = {"Subnets": ["s"], "SecurityGroupIds": ["g"]}
    problem = "Model: the environment requires network isolation; give the construct VPC subnets and security groups"
    assert rule_findings("MLOPS-007", model(VpcConfig=vpc), isolated=True) == [problem]
    assert rule_findings("MLOPS-007", model(EnableNetworkIsolation=True), isolated=True) == [problem]
    assert rule_findings("MLOPS-007", model(VpcConfig=vpc, EnableNetworkIsolation=True), isolated=True) == []


def test_a_function_outside_the_vpc_is_told_which_construct_arguments_to_set() -> None:
    function = {"Type": "AWS::Lambda::Function", "Properties": {"Tags": TAGS}}
    assert rule_findings("MLOPS-007", {"Fn": function}, isolated=True) == [
        "Fn: the environment requires network isolation, and the function runs outside any VPC: set VpcConfig "
        "SubnetIds and SecurityGroupIds (vpc, vpc_subnets and security_groups on the construct that creates it)"
    ]


@pytest.mark.parametrize(
    ("definition", "where"),
    [
        ({"PipelineDefinitionS3Location": {"Bucket": "b", "Key": "k"}}, "read from S3 (PipelineDefinitionS3Location)"),
        ({}, "unknown"),
    ],
)
def test_a_pipeline_definition_that_cannot_be_read_offline_says_why(definition: dict[str, Any], where: str) -> None:
    pipeline = {"Type": "AWS::SageMaker::Pipeline", "Properties": {"PipelineDefinition": definition, "Tags": TAGS}}
    assert rule_findings("MLOPS-007", {"Pipeline": pipeline}, isolated=True) == [
        f"Pipeline: the environment requires network isolation, and the pipeline's definition is {where}, so the "
        "network of the jobs it starts cannot be checked offline; give the definition as PipelineDefinitionBody, or "
        "acknowledge MLOPS-007 on the pipeline with the reason its jobs run in the VPC"
    ]


def test_steps_outside_the_vpc_are_listed_together_and_nested_names_are_not_steps() -> None:
    import json

    steps = [
        {
            "Name": "Train",
            "Type": "Training",
            "Arguments": {"MetricDefinitions": [{"Name": "auc", "Regex": "auc=(.*)"}]},
        },
        {
            "Name": "Tune",
            "Type": "Tuning",
            "Arguments": {"TrainingJobDefinitions": [{"VpcConfig": {"Subnets": ["s"]}}]},
        },
    ]
    body = json.dumps({"Version": "2020-12-01", "Steps": steps})
    pipeline = {
        "Type": "AWS::SageMaker::Pipeline",
        "Properties": {"PipelineDefinition": {"PipelineDefinitionBody": body}, "Tags": TAGS},
    }
    assert rule_findings("MLOPS-007", {"Pipeline": pipeline}, isolated=True) == [
        "Pipeline: the environment requires network isolation; these pipeline steps start jobs outside the VPC: "
        "'Train' (Training: no VpcConfig with Subnets and SecurityGroupIds); 'Tune' (Tuning: no VpcConfig with "
        "Subnets and SecurityGroupIds in every training job definition). Give the pipeline's jobs VPC subnets and "
        "security groups (TrainingPipeline: vpc, vpc_subnets and security_groups)"
    ]


def lambda_function(**properties: Any) -> dict[str, Any]:
    return {"Type": "AWS::Lambda::Function", "Properties": {"Runtime": "python3.14", "Tags": TAGS, **properties}}


def test_a_function_whose_role_starts_pipelines_inline_needs_reserved_concurrency() -> None:
    # GIVEN a function with a dead-letter queue whose role's inline policy may start pipeline executions
    starts = {"PolicyName": "p", "PolicyDocument": {"Statement": [allow("sagemaker:StartPipelineExecution")]}}
    role = {"Type": "AWS::IAM::Role", "Properties": {"Policies": [starts], "Tags": TAGS}}
    other = {"Type": "AWS::IAM::Role", "Properties": {"Policies": [], "Tags": TAGS}}
    function = lambda_function(Role={"Fn::GetAtt": ["Role", "Arn"]}, DeadLetterConfig={"TargetArn": "q"})
    resources = {"Fn": function, "Role": role, "Other": other}

    # WHEN / THEN it must cap its concurrency; with a cap it passes; another role's rights do not count
    assert rule_findings("MLOPS-008", resources) == [
        "Fn: it starts SageMaker jobs but has no reserved concurrency; set reserved_concurrent_executions"
    ]
    capped = {**resources, "Fn": lambda_function(**function["Properties"], ReservedConcurrentExecutions=1)}
    assert rule_findings("MLOPS-008", capped) == []
    # GetAtt in its string form names the other role, which may start nothing
    elsewhere = lambda_function(Role={"Fn::GetAtt": "Other.Arn"}, DeadLetterConfig={"TargetArn": "q"})
    assert rule_findings("MLOPS-008", {**resources, "Fn": elsewhere}) == []


def test_a_policy_attached_to_another_role_does_not_make_a_function_start_jobs() -> None:
    policy: dict[str, Any] = {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "Roles": [{"Ref": "Other"}],
            "PolicyDocument": {"Statement": [allow("sagemaker:CreateTrainingJob")]},
        },
    }
    role = {"Type": "AWS::IAM::Role", "Properties": {"Tags": TAGS}}
    function = lambda_function(Role={"Fn::GetAtt": ["Role", "Arn"]}, DeadLetterConfig={"TargetArn": "q"})
    assert rule_findings("MLOPS-008", {"Fn": function, "Role": role, "Other": role, "Policy": policy}) == []
    attached = {**policy, "Properties": {**policy["Properties"], "Roles": [{"Ref": "Role"}]}}
    assert len(rule_findings("MLOPS-008", {"Fn": function, "Role": role, "Policy": attached})) == 1


@pytest.mark.parametrize(
    ("invoke_config", "has_destination"),
    [
        ({"DestinationConfig": {"OnFailure": {"Destination": "arn:q"}}}, True),
        ({"DestinationConfig": {}}, False),
        ({}, False),
    ],
)
def test_an_async_invoke_config_counts_only_with_an_on_failure_destination(
    invoke_config: dict[str, Any], has_destination: bool
) -> None:
    config = {"Type": "AWS::Lambda::EventInvokeConfig", "Properties": {"FunctionName": {"Ref": "Fn"}, **invoke_config}}
    found = rule_findings("MLOPS-008", {"Fn": lambda_function(), "Invoke": config})
    assert found == (
        [] if has_destination else ["Fn: no dead-letter queue or on-failure destination; failed events would be lost"]
    )


def test_a_bucket_encryption_rule_without_a_default_is_not_a_key() -> None:
    properties = {"Tags": TAGS, "BucketEncryption": {"ServerSideEncryptionConfiguration": [{"BucketKeyEnabled": True}]}}
    assert len(rule_findings("MLOPS-002", {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": properties}})) == 1


def test_resources_of_other_types_before_a_checked_one_do_not_end_the_check() -> None:
    wildcard = {"Type": "AWS::IAM::Policy", "Properties": {"PolicyDocument": {"Statement": [allow("s3:*")]}}}
    assert findings({"Bucket": bucket(None), "Policy": wildcard}) == [("Policy", f"allows action 's3:*'. {FIX}")]


def test_an_environment_chooses_isolation_and_callers_may_override_any_setting() -> None:
    from cdk_mlops.config import Profile, profile_defaults
    from cdk_mlops.constructs.common import LAMBDA_RUNTIME

    prod = GuardrailSettings.for_environment(profile_defaults("prod", Profile.PROD))
    assert (prod.prod, prod.require_network_isolation, prod.lambda_runtime) == (True, True, LAMBDA_RUNTIME.name)
    relaxed = GuardrailSettings.for_environment(profile_defaults("prod", Profile.PROD), require_network_isolation=False)
    assert relaxed.require_network_isolation is False


def test_tags_are_read_as_a_list_of_keys_or_a_map() -> None:
    topic = {"Type": "AWS::SNS::Topic", "Properties": {"Tags": {"project": "p", "environment": "e", "owner": "o"}}}
    queue = {"Type": "AWS::SQS::Queue", "Properties": {"Tags": [{"Key": "project", "Value": "p"}, "owner", "Key"]}}
    assert rule_findings("MLOPS-009", {"Topic": topic, "Queue": queue}) == [
        "Queue: missing tag(s) environment, owner; tag the stage with cdk_mlops.compliance.apply_tags"
    ]


# --- MLOPS-007 reading a definition rendered by CloudFormation ---------------------------------------------


def isolated_pipeline(body: Any) -> dict[str, Any]:
    properties = {"PipelineDefinition": {"PipelineDefinitionBody": body}, "Tags": TAGS}
    return {"Pipeline": {"Type": "AWS::SageMaker::Pipeline", "Properties": properties}}


def test_escaped_quotes_and_backslashes_in_strings_do_not_confuse_where_references_are() -> None:
    # GIVEN a definition whose strings hold \" and \\ before references inside and outside strings
    body = {
        "Fn::Join": [
            "",
            [
                '{"Version":"2020-12-01","Steps":[{"Name":"Train","Type":"Training","Arguments":{"Note":"say \\"hi\\" ',
                {"Ref": "Suffix"},
                '","Path":"C:\\\\","VpcConfig":{"Subnets":[',
                {"Ref": "Subnet"},
                '],"SecurityGroupIds":["',
                {"Ref": "Group"},
                '"]}}}]}',
            ],
        ]
    }
    # WHEN / THEN it parses, and the job is in the VPC
    assert rule_findings("MLOPS-007", isolated_pipeline(body), isolated=True) == []


def test_a_definition_from_a_sub_template_string_names_its_steps_as_sagemaker_will() -> None:
    # GIVEN an Fn::Sub template (a plain string): ${!X} is the literal text ${X}, ${Subnet} a reference
    template = (
        '{"Version":"2020-12-01","Steps":['
        '{"Name":"Train${!Suffix}","Type":"Training","Arguments":{}},'
        '{"Name":"Other","Type":"Training","Arguments":{"VpcConfig":{"Subnets":["${Subnet}"],"SecurityGroupIds":["${Group}"]}}}'
        "]}"
    )
    (finding,) = rule_findings("MLOPS-007", isolated_pipeline({"Fn::Sub": template}), isolated=True)
    assert "these pipeline steps start jobs outside the VPC: 'Train${Suffix}' (Training: no VpcConfig" in finding
    assert "'Other'" not in finding


def test_a_definition_body_that_is_neither_text_nor_a_function_of_text_is_not_json() -> None:
    assert rule_findings("MLOPS-007", isolated_pipeline(["not", "text"]), isolated=True) == [
        "Pipeline: the environment requires network isolation, and the pipeline's PipelineDefinitionBody is not JSON, "
        "so its jobs cannot be checked"
    ]


def test_a_tuning_step_whose_every_job_runs_in_the_vpc_passes() -> None:
    import json

    vpc = {"Subnets": ["s"], "SecurityGroupIds": ["g"]}
    tune = {"Name": "Tune", "Type": "Tuning", "Arguments": {"TrainingJobDefinitions": [{"VpcConfig": vpc}] * 2}}
    body = json.dumps({"Version": "2020-12-01", "Steps": [tune]})
    assert rule_findings("MLOPS-007", isolated_pipeline(body), isolated=True) == []


def transform(model_name: Any) -> str:
    import json

    step = {"Name": "Score", "Type": "Transform", "Arguments": {"ModelName": model_name}}
    return json.dumps({"Version": "2020-12-01", "Steps": [step]})


def test_a_transform_names_the_model_it_cannot_check() -> None:
    # A reference to a step that does not exist, and a pipeline parameter, are both models from elsewhere.
    for model in ({"Get": "Steps.Missing.ModelName"}, {"Get": "Parameters.ModelName"}):
        (finding,) = rule_findings("MLOPS-007", isolated_pipeline(transform(model)), isolated=True)
        assert f"'Score' (Transform: model {model!r} is not created in this pipeline or stack" in finding


def assert_left_to_the_stacks_model(body: Any, shown: Any) -> None:
    """A transform whose model is the stack's ``Model`` is that model's check; another resource is named."""
    model = {
        "Type": "AWS::SageMaker::Model",
        "Properties": {"Tags": TAGS, "VpcConfig": {"Subnets": ["s"]}, "EnableNetworkIsolation": True},
    }
    assert rule_findings("MLOPS-007", {**isolated_pipeline(body), "Model": model}, isolated=True) == []
    (finding,) = rule_findings(
        "MLOPS-007", {**isolated_pipeline(body), "Model": {"Type": "AWS::SSM::Parameter"}}, isolated=True
    )
    assert f"'Score' (Transform: model {shown!r} is not created in this pipeline or stack" in finding


def test_a_transform_of_a_stack_model_by_ref_is_left_to_that_model_and_other_references_are_named() -> None:
    body = {
        "Fn::Join": [
            "",
            [
                '{"Version":"2020-12-01","Steps":[{"Name":"Score","Type":"Transform","Arguments":{"ModelName":"',
                {"Ref": "Model"},
                '"}}]}',
            ],
        ]
    }
    assert_left_to_the_stacks_model(body, {"Ref": "Model"})


@pytest.mark.parametrize(
    ("sub", "shown"),
    [
        ("${Model.ModelName}", {"Fn::GetAtt": ["Model", "ModelName"]}),
        ("${Model}", {"Ref": "Model"}),
        (["${Name}", {"Name": {"Fn::GetAtt": ["Model", "ModelName"]}}], {"Fn::GetAtt": ["Model", "ModelName"]}),
    ],
)
def test_a_transform_of_a_stack_model_named_in_a_sub_template_is_left_to_that_model(sub: Any, shown: Any) -> None:
    # A definition written as an Fn::Sub template, whose transform names the model by a variable.
    template, *variables = sub if isinstance(sub, list) else [sub]
    text = transform("MODEL").replace('"MODEL"', f'"{template}"')
    assert_left_to_the_stacks_model({"Fn::Sub": [text, *variables] if variables else text}, shown)


def test_a_sub_variable_with_a_dotted_attribute_names_the_resource_before_the_first_dot() -> None:
    # ${Db.Endpoint.Address} is Fn::GetAtt [Db, Endpoint.Address] (attribute names may hold dots).
    text = transform("MODEL").replace('"MODEL"', '"${Db.Endpoint.Address}"')
    (finding,) = rule_findings("MLOPS-007", isolated_pipeline({"Fn::Sub": text}), isolated=True)
    shown = {"Fn::GetAtt": ["Db", "Endpoint.Address"]}
    assert f"'Score' (Transform: model {shown!r} is not created in this pipeline or stack" in finding


def test_a_sub_given_as_a_list_of_one_template_reads_as_the_template() -> None:
    # CloudFormation wants [template, variables]; a list of the template alone must not crash the rule.
    text = transform("MODEL").replace('"MODEL"', '"${Model}"')
    as_list = rule_findings("MLOPS-007", isolated_pipeline({"Fn::Sub": [text]}), isolated=True)
    assert as_list == rule_findings("MLOPS-007", isolated_pipeline({"Fn::Sub": text}), isolated=True)
    assert len(as_list) == 1


def test_an_event_source_that_is_not_a_queue_of_the_stack_is_no_failure_destination() -> None:
    mapping = {
        "Type": "AWS::Lambda::EventSourceMapping",
        "Properties": {"FunctionName": {"Ref": "Fn"}, "EventSourceArn": "arn:aws:kinesis:eu-west-1:1:stream/s"},
    }
    assert rule_findings("MLOPS-008", {"Fn": lambda_function(), "Source": mapping}) == [
        "Fn: no dead-letter queue or on-failure destination; failed events would be lost"
    ]


def test_a_provider_named_by_ref_is_recognised_both_as_a_service_token_and_as_an_invoked_function() -> None:
    lookup = {"Type": "Custom::Lookup", "Properties": {"ServiceToken": {"Ref": "Fn"}}}
    assert rule_findings("MLOPS-008", {"Fn": lambda_function(), "Lookup": lookup}) == []
    permission = {"Type": "AWS::Lambda::Permission", "Properties": {"FunctionName": {"Ref": "Fn"}}}
    assert len(rule_findings("MLOPS-008", {"Fn": lambda_function(), "Lookup": lookup, "Invoke": permission})) == 1
    generic = {
        "Type": "AWS::CloudFormation::CustomResource",
        "Properties": {"ServiceToken": {"Fn::GetAtt": ["Fn", "Arn"]}},
    }
    assert rule_findings("MLOPS-008", {"Fn": lambda_function(), "Lookup": generic}) == []


def test_a_role_named_by_a_string_getatt_is_found_and_policies_without_roles_are_skipped() -> None:
    starts = {"PolicyName": "p", "PolicyDocument": {"Statement": [allow("sagemaker:CreateTrainingJob")]}}
    role = {"Type": "AWS::IAM::Role", "Properties": {"Policies": [starts], "Tags": TAGS}}
    users_only = {
        "Type": "AWS::IAM::Policy",
        "Properties": {"Users": [{"Ref": "User"}], "PolicyDocument": {"Statement": [allow("s3:GetObject")]}},
    }
    function = lambda_function(Role={"Fn::GetAtt": "Role.Arn"}, DeadLetterConfig={"TargetArn": "q"})
    assert rule_findings("MLOPS-008", {"Fn": function, "Role": role, "UsersOnly": users_only}) == [
        "Fn: it starts SageMaker jobs but has no reserved concurrency; set reserved_concurrent_executions"
    ]


def test_a_queue_source_counts_only_with_a_redrive_policy() -> None:
    queue: dict[str, Any] = {"Type": "AWS::SQS::Queue", "Properties": {"Tags": TAGS}}
    mapping = {
        "Type": "AWS::Lambda::EventSourceMapping",
        "Properties": {"FunctionName": {"Ref": "Fn"}, "EventSourceArn": {"Fn::GetAtt": ["Queue", "Arn"]}},
    }
    resources = {"Fn": lambda_function(), "Queue": queue, "Source": mapping}
    assert rule_findings("MLOPS-008", resources) == [
        "Fn: no dead-letter queue or on-failure destination; failed events would be lost"
    ]
    redriven = {**queue, "Properties": {**queue["Properties"], "RedrivePolicy": {"maxReceiveCount": 3}}}
    assert rule_findings("MLOPS-008", {**resources, "Queue": redriven}) == []


def test_only_what_invokes_a_function_or_serves_a_custom_resource_decides_whether_it_is_a_provider() -> None:
    lookup = {"Type": "Custom::Lookup", "Properties": {"ServiceToken": {"Fn::GetAtt": ["Fn", "Arn"]}}}
    version = {"Type": "AWS::Lambda::Version", "Properties": {"FunctionName": {"Ref": "Fn"}}}
    # A version of the provider does not invoke it: still a provider, no destination needed.
    assert rule_findings("MLOPS-008", {"Fn": lambda_function(), "Lookup": lookup, "Version": version}) == []
    # A custom resource served by another function does not make this one a provider.
    other = {"Type": "Custom::Other", "Properties": {"ServiceToken": {"Fn::GetAtt": ["OtherFn", "Arn"]}}}
    assert len(rule_findings("MLOPS-008", {"Fn": lambda_function(), "Other": other})) == 1


def test_an_inline_monitoring_job_without_an_output_configuration_is_not_encrypted() -> None:
    inline = {
        "Type": "AWS::SageMaker::MonitoringSchedule",
        "Properties": {"Tags": TAGS, "MonitoringScheduleConfig": {"MonitoringJobDefinition": {}}},
    }
    assert rule_findings("MLOPS-002", {"Inline": inline}) == [
        "Inline: AWS::SageMaker::MonitoringSchedule is not encrypted with a customer-managed KMS key; set the output "
        "KmsKeyId"
    ]


def test_an_odd_number_of_escaped_quotes_before_a_reference_keeps_it_inside_the_string() -> None:
    body = {
        "Fn::Join": [
            "",
            [
                '{"Version":"2020-12-01","Steps":[{"Name":"Train","Type":"Training","Arguments":{"Note":"say \\"hi ',
                {"Ref": "Suffix"},
                ' and \\\\","VpcConfig":{"Subnets":["s"],"SecurityGroupIds":["g"]}}}]}',
            ],
        ]
    }
    assert rule_findings("MLOPS-007", isolated_pipeline(body), isolated=True) == []
