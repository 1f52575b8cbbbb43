"""End to end: the Dev stage in a private network, deployed with the pinned CDK CLI to the local AWS.

One module-scoped deployment, as ``make demo`` deploys (:func:`cdk_mlops.local.deploy.deploy_stage`),
with the environment's ``network`` set to ``isolated``: the stage gets its Network stack (a VPC with
isolated subnets, the VPC endpoints, the security groups, and the deploy-time prefix-list lookup,
an ``AwsCustomResource``), and the retrain Lambda runs in the VPC. Its data versions are taken as
prod takes them (``dataset_versions: inventory``). The tests read what AWS holds through boto3 and
state what each must be (no internet route, only this account's principals). Then a dataset
upload is listed by the deployed inventory, whose report starts the deployed snapshot state
machine; its status change goes through the deployed rule and queue to the retrain handler,
which must start exactly one run on the snapshot's version. That run's steps then run from the
deployed definition, its Preprocess on two instances (``preprocess_instance_count: 2``), and its
model is registered and traced back to the exact data. The destroy test comes last.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from cdk_mlops import datasets
from cdk_mlops.constructs.inventory_snapshot import INVENTORY_ID
from cdk_mlops.constructs.private_network import GATEWAY_ENDPOINTS, endpoint_services
from cdk_mlops.local.cfn_s3 import inventory_configurations
from cdk_mlops.local.deploy import check_stack, destroy_stage
from cdk_mlops.local.event_targets import started_inputs
from cdk_mlops.local.loop import Loop, Started, Upload, deliver_until_started, upload_version
from cdk_mlops.local.loop_steps import Registration, register_model
from cdk_mlops.local.runtime import FunctionConfiguration
from cdk_mlops.local.s3_inventory import publish_inventory_report
from cdk_mlops.local.stepfunctions import ExecutionResult, run_state_machine
from tests.e2e.conftest import REPO_ROOT, Deployment, deploy_dev

pytestmark = pytest.mark.e2e

#: The settings that put the Dev environment in a private network, with prod's data versions,
#: preprocessed by two instances.
PRIVATE = {
    "network": "isolated",
    "require_network_isolation": True,
    "dataset_versions": "inventory",
    "preprocess_instance_count": 2,
}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from deploy_dev(tmp_path_factory.mktemp("cdk.out"), PRIVATE)


@pytest.fixture
def deployed(deployment: Deployment) -> Deployment:
    assert not deployment.destroyed, "these tests read the deployed state; they must run before the destroy test"
    return deployment


@dataclass(frozen=True)
class Network:
    """The deployed network, found from the template of the Network stack."""

    vpc_id: str
    subnet_ids: list[str]
    workloads_group: str
    endpoints_group: str


@pytest.fixture(scope="module")
def network(deployment: Deployment) -> Network:
    [(stack, vpc_logical_id, _)] = deployment.resources("AWS::EC2::VPC")
    subnets = [deployment.physical_id(s, logical_id) for s, logical_id, _ in deployment.resources("AWS::EC2::Subnet")]
    retrain = retrain_function(deployment)
    [workloads] = retrain["VpcConfig"]["SecurityGroupIds"]
    interface = [e for e in endpoints(deployment) if e["VpcEndpointType"] == "Interface"]
    [endpoints_group] = {g["GroupId"] for e in interface for g in e["Groups"]}
    return Network(deployment.physical_id(stack, vpc_logical_id), subnets, workloads, endpoints_group)


@pytest.fixture(scope="module")
def first_run(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> FirstRun:
    """Data version 1 lands and is snapshotted; the retrain handler (in-process, as deployed) starts a run."""
    loop = Loop.open(deployment.aws, tmp_path_factory.mktemp("loop"))
    try:
        with loop.backends.moto_pollers_suspended(loop.platform.settings.queue_url):
            upload = upload_version(loop, loop.versions[0])
            aws, s3 = deployment.aws, deployment.aws.client("s3")
            data_bucket = deployment.the_one("AWS::S3::Bucket", "StoreBucket", stack_suffix="-Data")
            machine = deployment.the_one(
                "AWS::StepFunctions::StateMachine", "SnapshotsStateMachine", stack_suffix="-Data"
            )
            configuration = inventory_configurations(aws.account_id(), aws.region, data_bucket)[INVENTORY_ID]
            # Two rows a file: a report of several files, a version of several shards to share out.
            publish_inventory_report(s3, source_bucket=data_bucket, configuration=configuration, rows_per_file=2)
            # The report's last file starts the snapshot (the deployed rule's input); its end is an event.
            (started_input,) = started_inputs(aws, machine)
            snapshot = run_state_machine(aws, machine, started_input)
            started = deliver_until_started(loop)
        return FirstRun(upload, snapshot, started, register_model(loop, started.execution_arn, loop.versions[0]))
    finally:
        loop.close()


@dataclass(frozen=True)
class FirstRun:
    upload: Upload
    snapshot: ExecutionResult
    started: Started
    registration: Registration


def retrain_function(deployment: Deployment) -> dict[str, Any]:
    """The configuration of the retrain trigger's function, as Lambda reports it."""
    client = deployment.aws.client("lambda")
    for stack, logical_id, _ in deployment.resources("AWS::Lambda::Function"):
        configuration = client.get_function_configuration(FunctionName=deployment.physical_id(stack, logical_id))
        if configuration["Handler"].startswith("cdk_mlops.lambdas.retrain_trigger."):
            return dict(configuration)
    raise AssertionError("the stage has no retrain function")


def endpoints(deployment: Deployment) -> list[dict[str, Any]]:
    """The stage's VPC endpoints, as EC2 describes them."""
    ids = [deployment.physical_id(s, logical_id) for s, logical_id, _ in deployment.resources("AWS::EC2::VPCEndpoint")]
    return list(deployment.aws.client("ec2").describe_vpc_endpoints(VpcEndpointIds=ids)["VpcEndpoints"])


def prefix_list(deployment: Deployment, service: str) -> str:
    """The id of the AWS-managed prefix list of a gateway service in the local region."""
    name = f"com.amazonaws.{deployment.aws.region}.{service}"
    lists = deployment.aws.client("ec2").describe_managed_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": [name]}]
    )["PrefixLists"]
    return str(lists[0]["PrefixListId"])


# --- after deploy -------------------------------------------------------------------------------------


def test_the_stage_has_a_network_stack_and_every_resource_is_provisioned(deployed):
    names = [stack.name for stack in deployed.templates]
    assert "Dev-Network" in names
    for stack in deployed.templates:
        assert check_stack(deployed.aws, stack) == [], stack.name


def test_the_vpc_has_isolated_subnets_in_two_zones_and_no_route_out(deployed, network):
    ec2 = deployed.aws.client("ec2")
    vpc_id = network.vpc_id
    assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]
    assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsSupport")["EnableDnsSupport"]["Value"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    assert sorted(s["SubnetId"] for s in subnets) == sorted(network.subnet_ids)
    assert len({s["AvailabilityZone"] for s in subnets}) >= 2
    assert not any(s["MapPublicIpOnLaunch"] for s in subnets)
    tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": network.subnet_ids}])
    associated = [a["SubnetId"] for t in tables["RouteTables"] for a in t["Associations"] if a.get("SubnetId")]
    assert sorted(associated) == sorted(network.subnet_ids)
    for table in tables["RouteTables"]:
        for route in table["Routes"]:
            # only the VPC itself and the gateway endpoints: no internet or NAT gateway
            assert route.get("GatewayId") == "local" or route["GatewayId"].startswith("vpce-"), route
    attached = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])
    assert attached["InternetGateways"] == []


def test_every_endpoint_of_the_library_exists_and_admits_only_this_accounts_principals(deployed, network):
    region = deployed.aws.region
    described = endpoints(deployed)
    assert sorted(e["ServiceName"] for e in described) == sorted(
        f"com.amazonaws.{region}.{service.name}" for service in endpoint_services()
    )
    gateways = {f"com.amazonaws.{region}.{service.name}" for service in GATEWAY_ENDPOINTS}
    tables = deployed.aws.client("ec2").describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": network.subnet_ids}]
    )["RouteTables"]
    account = deployed.aws.account_id()
    for endpoint in described:
        assert endpoint["VpcId"] == network.vpc_id
        assert endpoint["State"] == "available"
        if endpoint["ServiceName"] in gateways:
            assert endpoint["VpcEndpointType"] == "Gateway"
            assert sorted(endpoint["RouteTableIds"]) == sorted(t["RouteTableId"] for t in tables)
        else:
            assert endpoint["VpcEndpointType"] == "Interface"
            assert endpoint["PrivateDnsEnabled"] is True
            assert sorted(endpoint["SubnetIds"]) == sorted(network.subnet_ids)
            assert [g["GroupId"] for g in endpoint["Groups"]] == [network.endpoints_group]
        # the identity perimeter: only principals of this account use the endpoint
        policy = json.loads(endpoint["PolicyDocument"])
        perimeter = {
            "Sid": "PrincipalsOfThisAccount",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "*",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalAccount": account}},
        }
        assert policy["Statement"][0] == perimeter, endpoint["ServiceName"]
        # any further statement admits a named AWS-owned resource only (ECR's layers, CloudFormation's responses)
        assert all(st["Resource"] != "*" for st in policy["Statement"][1:]), endpoint["ServiceName"]


def test_the_workloads_group_reaches_only_itself_the_endpoints_and_the_gateway_prefix_lists(deployed, network):
    ec2 = deployed.aws.client("ec2")
    [group] = ec2.describe_security_groups(GroupIds=[network.workloads_group])["SecurityGroups"]
    # ingress: only from the group itself (the instances of one job)
    assert [pair["GroupId"] for rule in group["IpPermissions"] for pair in rule["UserIdGroupPairs"]] == [
        network.workloads_group
    ]
    assert all(not r["IpRanges"] and not r["Ipv6Ranges"] and not r["PrefixListIds"] for r in group["IpPermissions"])
    # egress: no address range at all; HTTPS to the endpoints' group and the S3 and DynamoDB prefix lists
    egress = group["IpPermissionsEgress"]
    assert all(not r["IpRanges"] and not r["Ipv6Ranges"] for r in egress)
    https = [r for r in egress if (r["IpProtocol"], r.get("FromPort"), r.get("ToPort")) == ("tcp", 443, 443)]
    assert [pair["GroupId"] for r in https for pair in r["UserIdGroupPairs"]] == [network.endpoints_group]
    expected = sorted(prefix_list(deployed, service.name) for service in GATEWAY_ENDPOINTS)
    assert sorted(p["PrefixListId"] for r in https for p in r["PrefixListIds"]) == expected
    others = [r for r in egress if r not in https]
    assert [pair["GroupId"] for r in others for pair in r["UserIdGroupPairs"]] == [network.workloads_group]


def test_the_endpoints_accept_https_from_the_vpcs_groups_only(deployed, network):
    [group] = deployed.aws.client("ec2").describe_security_groups(GroupIds=[network.endpoints_group])["SecurityGroups"]
    assert {(r["IpProtocol"], r.get("FromPort"), r.get("ToPort")) for r in group["IpPermissions"]} == {
        ("tcp", 443, 443)
    }
    sources = [pair["GroupId"] for rule in group["IpPermissions"] for pair in rule["UserIdGroupPairs"]]
    assert network.workloads_group in sources
    assert all(not r["IpRanges"] and not r["PrefixListIds"] for r in group["IpPermissions"])


def test_the_prefix_list_lookups_resolved_the_regions_lists(deployed):
    lookups = deployed.resources("Custom::AWS")
    assert lookups, "the Network stack has no AwsCustomResource"
    names = {json.dumps(resource["Properties"]["Create"]) for _, _, resource in lookups}
    for service in GATEWAY_ENDPOINTS:
        assert any(f".{service.name}" in name for name in names), service.name
    for stack, logical_id, _ in lookups:
        assert deployed.physical_id(stack, logical_id)


def test_the_retrain_lambda_runs_in_the_private_subnets_with_the_workloads_group(deployed, network):
    vpc_config = retrain_function(deployed)["VpcConfig"]
    assert vpc_config["VpcId"] == network.vpc_id
    assert sorted(vpc_config["SubnetIds"]) == sorted(network.subnet_ids)
    assert vpc_config["SecurityGroupIds"] == [network.workloads_group]


def test_a_dataset_upload_starts_exactly_one_training_run_on_its_snapshot(deployed, first_run):
    upload, snapshot, started = first_run.upload, first_run.snapshot, first_run.started
    assert upload.keys
    assert snapshot.status == "SUCCEEDED"
    assert [d.decision for d in started.deliveries[-1].decisions] == ["started"]
    assert started.executions == (started.execution_arn,)
    # The object events were never the trigger's: only the snapshot's status change reached it.
    assert [d.decision for x in started.deliveries for d in x.decisions] == ["started"]
    parameters = {
        p["Name"]: p["Value"]
        for p in deployed.aws.client("sagemaker").list_pipeline_parameters_for_execution(
            PipelineExecutionArn=started.execution_arn
        )["PipelineParameters"]
    }
    assert parameters["InputManifestUri"] == snapshot.output["manifest"]
    assert parameters["ManifestSha256"] == snapshot.output["digest"]
    version = datasets.load_manifest(snapshot.output["manifest"], s3=deployed.aws.client("s3"))
    assert {e.key for e in version.entries} >= set(upload.keys)
    function = FunctionConfiguration.read(deployed.aws, retrain_function(deployed)["FunctionName"])
    assert function.handler.startswith("cdk_mlops.lambdas.retrain_trigger.")


def test_the_run_preprocesses_the_snapshot_on_two_instances_and_its_model_traces_back_to_it(deployed, first_run):
    registration, snapshot = first_run.registration, first_run.snapshot
    preprocess = next(step for step in registration.run.steps if step.name == "Preprocess")
    # Each host took its share of the version's shards and wrote its own train file
    assert preprocess.outcome == "ran"
    assert preprocess.detail.startswith("algo-1: preprocess: ")
    assert " | algo-2: preprocess: " in preprocess.detail
    assert registration.package["CustomerMetadataProperties"]["ManifestSha256"] == snapshot.output["digest"]
    # The artifacts of the run sit under its execution id, next to the model (ModelDataUrl)
    model_url = registration.package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    bucket, key = datasets.parse_s3_uri(model_url)
    execution = first_run.started.execution_arn.rsplit("/", 1)[-1]
    train = f"{key[: key.index(execution) + len(execution)]}/preprocess/train/"
    listed = deployed.aws.client("s3").list_objects_v2(Bucket=bucket, Prefix=train)["Contents"]
    assert sorted(o["Key"].removeprefix(train) for o in listed) == ["train-algo-1.csv", "train-algo-2.csv"]
    # The model was trained, passed the gate and was registered on the snapshot; its lineage
    # materializes exactly the uploaded data
    assert registration.metric_value > 0.5
    assert registration.matches_version


# --- after destroy (keep this last) -----------------------------------------------------------------------


def test_destroy_removes_the_network(deployment, network):
    destroy_stage(deployment.aws, directory=REPO_ROOT, output=deployment.output, overrides=PRIVATE)
    deployment.destroyed = True
    ec2 = deployment.aws.client("ec2")
    assert network.vpc_id not in [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]]
    assert [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if not v["IsDefault"]] == []
    assert {e["State"] for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]} <= {"deleted"}
    remaining = {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    assert not {network.workloads_group, network.endpoints_group} & remaining
