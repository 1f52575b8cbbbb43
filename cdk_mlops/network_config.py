"""The ``network`` setting of an environment: no VPC, an isolated VPC, or an existing one by its ids.

Plain data and its checks, read by :mod:`cdk_mlops.config` (which re-exports the public names).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["EXISTING_HINT", "NetworkConfig", "NetworkMode", "network_problems", "to_network"]


class NetworkMode(StrEnum):
    """Where the environment's jobs and functions run."""

    NONE = "none"
    """No VPC: SageMaker jobs, the endpoint and the retrain Lambda use AWS's public endpoints."""
    ISOLATED = "isolated"
    """A VPC the platform creates: private subnets in two Availability Zones with no route to the
    internet (no NAT or internet gateway); AWS APIs are reached through VPC endpoints."""
    EXISTING = "existing"
    """A VPC the organisation already has, named by its ids; it is not looked up at synth."""


@dataclass(frozen=True, kw_only=True)
class NetworkConfig:
    """The VPC an environment's SageMaker jobs, endpoint, monitors and retrain Lambda run in.

    The ``network`` context key is ``"none"``, ``"isolated"`` or, for an existing VPC, an
    object of ids::

        "network": {
          "vpc_id": "vpc-0123456789abcdef0",
          "availability_zones": ["eu-west-1a", "eu-west-1b"],
          "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
          "route_table_ids": ["rtb-0123456789abcdef0", "rtb-0fedcba9876543210"]
        }

    Attributes:
        mode: Default: - ``NONE`` (no VPC); the prod profile uses ``ISOLATED``.
        vpc_id: The existing VPC (``EXISTING`` only). Default: - none.
        availability_zones: The Availability Zones of ``subnet_ids``, one per subnet and in the
            same order (``EXISTING`` only). Default: - none.
        subnet_ids: Private subnets of the existing VPC, in at least two Availability Zones
            (``EXISTING`` only). Default: - none.
        route_table_ids: The subnets' route tables, which the S3 and DynamoDB gateway endpoints
            are added to (``EXISTING`` with ``create_endpoints``). Default: - none.
        security_group_ids: Security groups for the jobs and functions, instead of the one the
            platform creates (``EXISTING`` only). Default: - a new group with no inbound rule
            and outbound HTTPS to the VPC endpoints only.
        create_endpoints: Create the VPC endpoints the platform needs. Turn it off for an
            existing VPC that already has them (a shared-services VPC). Default: - True.
    """

    mode: NetworkMode = NetworkMode.NONE
    vpc_id: str | None = None
    availability_zones: tuple[str, ...] = ()
    subnet_ids: tuple[str, ...] = ()
    route_table_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    create_endpoints: bool = True

    @property
    def private(self) -> bool:
        """True when the environment runs in a VPC."""
        return self.mode is not NetworkMode.NONE


_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}\Z")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}\Z")
_ROUTE_TABLE_ID = re.compile(r"^rtb-[0-9a-f]{8,17}\Z")
_SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}\Z")
_AVAILABILITY_ZONE = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9][a-z]\Z")
#: The keys of an existing VPC's ``network`` object, with the pattern of each id.
_NETWORK_IDS: dict[str, tuple[re.Pattern[str], str]] = {
    "subnet_ids": (_SUBNET_ID, "subnet-0123456789abcdef0"),
    "route_table_ids": (_ROUTE_TABLE_ID, "rtb-0123456789abcdef0"),
    "security_group_ids": (_SECURITY_GROUP_ID, "sg-0123456789abcdef0"),
    "availability_zones": (_AVAILABILITY_ZONE, "eu-west-1a"),
}
_NETWORK_KEYS = ("vpc_id", *_NETWORK_IDS, "create_endpoints")


def network_problems(value: object) -> list[str]:
    """Problems of a ``network`` value: ``"none"``, ``"isolated"`` or an existing VPC's ids.

    Each problem about one key of an existing VPC's object starts with that key (``subnet_ids: ...``).
    """
    if isinstance(value, str) and value in (NetworkMode.NONE, NetworkMode.ISOLATED):
        return []
    if not isinstance(value, Mapping):
        return [f'{value!r} is not a network; use "none", "isolated", or an existing VPC\'s ids {EXISTING_HINT}']
    problems = [
        f"{key}: unknown key; accepted keys: {', '.join(_NETWORK_KEYS)}" for key in value if key not in _NETWORK_KEYS
    ]
    vpc_id = value.get("vpc_id")
    if not (isinstance(vpc_id, str) and _VPC_ID.match(vpc_id)):
        problems.append(f'vpc_id: {vpc_id!r} is not a VPC id; use e.g. "vpc-0123456789abcdef0"')
    for key, (pattern, example) in _NETWORK_IDS.items():
        ids = value.get(key, [])
        if not isinstance(ids, list) or not all(isinstance(i, str) and pattern.match(i) for i in ids):
            problems.append(f'{key}: {ids!r} is not a list of ids; use e.g. ["{example}"]')
    if "create_endpoints" in value and not isinstance(value["create_endpoints"], bool):
        problems.append(f"create_endpoints: {value['create_endpoints']!r} is not a boolean; use true or false")
    if problems:
        return problems
    subnets, zones = value.get("subnet_ids", []), value.get("availability_zones", [])
    if len(set(zones)) < 2 or len(subnets) != len(zones):
        problems.append(
            f"subnet_ids: {len(subnets)} subnets in {len(set(zones))} distinct availability_zones; give one "
            "private subnet per zone, in at least two zones, with availability_zones in the same order"
        )
    if value.get("create_endpoints") is False and not value.get("security_group_ids"):
        problems.append(
            'security_group_ids: missing; with "create_endpoints": false the VPC\'s own endpoints are used, and '
            "only its security groups are allowed to reach them: list them, or remove create_endpoints"
        )
    tables = value.get("route_table_ids", [])
    if value.get("create_endpoints", True) and len(tables) != len(subnets):
        problems.append(
            f"route_table_ids: {len(tables)} route tables for {len(subnets)} subnets; the S3 and DynamoDB "
            "gateway endpoints are added to each subnet's route table: list them in subnet order, "
            'or set "create_endpoints": false'
        )
    return problems


#: What an existing VPC's ``network`` object holds, for error messages.
EXISTING_HINT = '({"vpc_id": "vpc-...", "availability_zones": [...], "subnet_ids": [...], "route_table_ids": [...]})'


def to_network(value: object) -> NetworkConfig:
    """The :class:`NetworkConfig` of a checked ``network`` value."""
    if isinstance(value, str):
        return NetworkConfig(mode=NetworkMode(value))
    assert isinstance(value, Mapping)
    return NetworkConfig(
        mode=NetworkMode.EXISTING,
        vpc_id=value["vpc_id"],
        create_endpoints=value.get("create_endpoints", True),
        **{key: tuple(value.get(key, ())) for key in _NETWORK_IDS},
    )
