"""Every AWS API that code in the environment's VPC calls has a VPC endpoint, or a stated reason it needs none.

The calls are those of the IAM coverage map (``tests/contracts/iam_coverage.py``), which knows every
boto3 call of the runtime code and the unit that makes it. A unit runs in the environment's VPC or
is listed here with where it runs instead; a service that appears in the map for a unit in the VPC
fails here until :class:`~cdk_mlops.constructs.private_network.PrivateNetwork` has an endpoint for it
or ``SERVICES_WITHOUT_ENDPOINT`` says why it needs none.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from cdk_mlops.constructs.private_network import (
    GATEWAY_ENDPOINTS,
    INTERFACE_ENDPOINTS,
    PREFIX_LIST_LOOKUP_ENDPOINT,
    SERVICES_WITHOUT_ENDPOINT,
    EndpointService,
    endpoint_services,
)
from tests.conftest import Platform
from tests.contracts import iam_coverage as ic

#: Units of the map that run in the environment's VPC (PrivateNetwork's subnets and group).
IN_THE_VPC: frozenset[str] = frozenset(
    {
        "retrain trigger",
        "explainability configuration writer",
        "inventory snapshot functions",
        "preprocess script",
        "prepare batch script",
        "evaluate script",
        "train script",
        "track script",
    }
)
_BUILD_STEP = (
    "a CodeBuild step of the delivery pipelines in the tooling account: it runs in the tooling's own VPC "
    "(tooling.network), whose routes and endpoints the organisation provides, not in an environment's"
)
#: Units of the map that run elsewhere, and where.
OUTSIDE_THE_VPC: dict[str, str] = {
    "delivery: verify": _BUILD_STEP,
    "delivery: retrain": _BUILD_STEP,
    "delivery: pin-models": _BUILD_STEP,
    "delivery: select-model": _BUILD_STEP,
    "delivery: deploy-model": _BUILD_STEP,
    "delivery: endpoint-test": _BUILD_STEP,
}


def missing_endpoints(units: Iterable[ic.Unit], services: Iterable[EndpointService]) -> list[str]:
    """A message for each call of a unit in the VPC whose service has no endpoint and no stated reason."""
    served = {client for spec in services for client in spec.clients}
    return [
        f"{unit.name} calls {use.operation} ({use.why}) from inside the VPC, but PrivateNetwork has no endpoint "
        f"for {use.service!r}: add an EndpointService for it to INTERFACE_ENDPOINTS (or GATEWAY_ENDPOINTS) in "
        "cdk_mlops/constructs/private_network.py, or say in SERVICES_WITHOUT_ENDPOINT why it needs none"
        for unit in units
        if unit.name in IN_THE_VPC
        for use in unit.uses
        if use.service not in served and use.service not in SERVICES_WITHOUT_ENDPOINT
    ]


def test_every_unit_of_the_map_is_placed_in_or_outside_the_vpc():
    names = {unit.name for unit in ic.UNITS}
    assert names - IN_THE_VPC - set(OUTSIDE_THE_VPC) == set(), "say where the new unit runs"
    assert (IN_THE_VPC | set(OUTSIDE_THE_VPC)) - names == set(), "a placed unit is no longer in the map"
    assert IN_THE_VPC.isdisjoint(OUTSIDE_THE_VPC)


def test_every_service_called_from_the_vpc_has_an_endpoint_or_a_reason():
    assert missing_endpoints(ic.UNITS, endpoint_services()) == []


def test_a_new_service_in_the_map_fails_until_it_has_an_endpoint():
    # GIVEN the retrain trigger starts calling SSM, which has no endpoint
    (trigger,) = [unit for unit in ic.UNITS if unit.name == "retrain trigger"]
    ssm = ic.Use("ssm.get_parameter", "function", lambda c: [], "read a setting")
    changed = ic.Unit(trigger.name, trigger.runs_as, trigger.entries, (*trigger.uses, ssm), trigger.contexts)
    # WHEN / THEN the check names the call and the fix
    (message,) = missing_endpoints([changed], endpoint_services())
    assert message.startswith("retrain trigger calls ssm.get_parameter (read a setting) from inside the VPC")
    # and a unit outside the VPC may call it
    outside = ic.Unit("delivery: verify", "", (), (ssm,), trigger.contexts)
    assert missing_endpoints([outside], endpoint_services()) == []


def test_services_without_an_endpoint_are_not_served_and_say_why():
    served = {client for spec in endpoint_services() for client in spec.clients}
    for service, reason in SERVICES_WITHOUT_ENDPOINT.items():
        assert service not in served, f"{service} has an endpoint; remove it from SERVICES_WITHOUT_ENDPOINT"
        assert reason.strip(), service


def test_endpoint_names_and_clients_are_unique():
    specs = endpoint_services()
    assert len({s.name for s in specs}) == len(specs)
    clients = [c for s in specs for c in s.clients]
    assert len(set(clients)) == len(clients)


# ------------------------------------------------------------------------------------- endpoint policies


def _service(endpoint: dict[str, Any]) -> str:
    name = endpoint["Properties"]["ServiceName"]
    parts = name["Fn::Join"][1] if isinstance(name, dict) else [name]
    return str(parts[-1]).lstrip(".")


@pytest.fixture(scope="module")
def prod_endpoints(platform: Platform) -> dict[str, dict[str, Any]]:
    """Prod's VPC endpoints in the reference app, by service name."""
    template = platform.stack("Prod/Network").template
    return {_service(r): r for r in template["Resources"].values() if r["Type"] == "AWS::EC2::VPCEndpoint"}


def test_prod_has_exactly_the_listed_endpoints(prod_endpoints):
    assert sorted(prod_endpoints) == sorted(s.name for s in endpoint_services())
    gateways = {n for n, e in prod_endpoints.items() if e["Properties"].get("VpcEndpointType", "Gateway") == "Gateway"}
    assert gateways == {s.name for s in GATEWAY_ENDPOINTS}


@pytest.mark.parametrize(
    "spec", [*GATEWAY_ENDPOINTS, *INTERFACE_ENDPOINTS, PREFIX_LIST_LOOKUP_ENDPOINT], ids=lambda s: s.name
)
def test_every_endpoint_has_the_identity_perimeter_or_a_listed_reason(prod_endpoints, spec):
    policy = prod_endpoints[spec.name]["Properties"].get("PolicyDocument")
    if spec.without_policy is not None:
        assert policy is None
        return
    assert policy is not None, f"{spec.name}: no endpoint policy and no without_policy reason"
    perimeter = [
        s
        for s in policy["Statement"]
        if s.get("Condition") == {"StringEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}}
    ]
    assert len(perimeter) == 1, spec.name
    # Every other statement is narrower: named actions on named resources.
    for statement in policy["Statement"]:
        if statement not in perimeter:
            assert statement["Action"] != "*", (spec.name, statement)
            assert statement["Resource"] != "*", (spec.name, statement)
