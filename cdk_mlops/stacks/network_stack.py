"""The network stack: the VPC an environment's jobs, endpoint, monitors and retrain Lambda run in."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from cdk_mlops.config import EnvironmentConfig, NetworkMode
from cdk_mlops.constructs.private_network import PrivateNetwork, import_vpc
from cdk_mlops.errors import ConfigurationError

#: Availability Zones of a VPC the platform creates (PrivateNetwork uses two).
_ZONES = 2


class NetworkStack(cdk.Stack):
    """The environment's private network, from its ``network`` setting.

    ``isolated``: a new VPC with private subnets in two Availability Zones, no NAT or internet
    gateway, and the VPC endpoints. An existing VPC: imported from the ids in the config with
    ``Vpc.from_vpc_attributes`` (never looked up, so synth stays offline); the jobs use its
    ``security_group_ids`` when given, else a new group; endpoints are added unless
    ``create_endpoints`` is false.

    The zones of a new VPC are ``Fn::GetAZs`` at deploy time, also when the stack has a concrete
    account and region (where aws-cdk-lib would look them up with AWS credentials at synth).

    Args:
        config: The environment; its ``network`` must be private.

    Attributes:
        network: The VPC, its subnets, security groups and endpoints.
    """

    def __init__(self, scope: Construct, id: str, *, config: EnvironmentConfig, **kwargs: Any) -> None:
        settings = config.network
        if not settings.private:
            raise ConfigurationError(
                f"{scope.node.path}/{id}",
                f'environments.{config.name}.network is "none": a network stack needs "isolated" or an existing '
                "VPC's ids; build it only when config.network.private",
            )
        super().__init__(scope, id, termination_protection=config.termination_protection, **kwargs)
        if settings.mode is NetworkMode.ISOLATED:
            self.network = PrivateNetwork(self, "Network", removal_policy=config.removal_policy)
        else:
            vpc, groups = import_vpc(
                self,
                settings,
                subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
                reason="the VPC's own endpoints serve it; gateway endpoints are added only with route tables",
            )
            self.network = PrivateNetwork(
                self,
                "Network",
                vpc=vpc,
                security_groups=groups or None,
                create_endpoints=settings.create_endpoints,
                removal_policy=config.removal_policy,
            )
        cdk.CfnOutput(self, "VpcId", value=self.network.vpc.vpc_id, description="The environment's VPC")

    @property
    def availability_zones(self) -> list[str]:
        """Two zones of the stack's region, resolved by CloudFormation (``Fn::GetAZs``), never looked up at synth."""
        return [cdk.Fn.select(index, cdk.Fn.get_azs()) for index in range(_ZONES)]
