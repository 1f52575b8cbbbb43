"""The explainability job's analysis configuration, with the served model named at deploy time.

SageMaker Clarify computes a monitoring job's SHAP values against a shadow endpoint of the model
that ``predictor.model_name`` of the job's analysis configuration names. The configuration the
training pipeline registers with a model package cannot name that model: the package is
registered before any environment serves it, and a SageMaker model name belongs to one account
and region. :class:`ServedAnalysisConfig` is a custom resource that copies the registered
configuration with the served model's name (``cdk_mlops.lambdas.analysis_config``) whenever the
model or the configuration changes; the job definition reads the copy.
"""

from __future__ import annotations

from typing import Any, Final

from aws_cdk import Annotations, CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk_mlops.constructs.common import (
    CLARIFY_ENDPOINT_PREFIX,
    LAMBDA_RUNTIME,
    acknowledge,
    depend_on_role_policy,
    grant_lambda_vpc_access,
    iam5_findings,
    lambda_code,
)
from cdk_mlops.constructs.data_store_base import IDataStore
from cdk_mlops.constructs.model_monitor.access import s3_object_arn

__all__ = ["RESOURCE_TYPE", "ServedAnalysisConfig"]

#: The custom resource type (the local AWS runs its handler as Lambda would).
RESOURCE_TYPE: Final = "Custom::ExplainabilityAnalysisConfig"
_HANDLER: Final = "cdk_mlops.lambdas.analysis_config.handler.handler"


class ServedAnalysisConfig(Construct):
    """A copy of a Clarify analysis configuration whose ``predictor`` names the served model.

    Written at deploy time by a function that only CloudFormation invokes (a failed write fails
    and rolls back the deployment, so nothing is lost), into ``key`` of ``data_store``; it is
    rewritten when the model, the source or the shadow endpoint's size changes, and deleted with
    the resource. The function reads exactly ``source_uri`` and writes under ``key``'s prefix.

    Attributes:
        uri: ``s3://`` URI of the copy (resolves once the copy is written, so whatever reads it
            is created after it).
        role: The function's role; grant it read access to ``source_uri`` when that object is
            in another account's bucket (and that bucket's key).
        function: The function that writes the copy.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        source_uri: str,
        data_store: IDataStore,
        key: str,
        model_name: str,
        instance_type: str,
        instance_count: int,
        vpc_config: Any = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """Define the copy.

        Args:
            scope: The parent construct.
            id: The construct id.
            source_uri: The registered configuration (``s3://bucket/key``, tokens allowed).
            data_store: Holds the copy, encrypted with its key.
            key: The copy's key in ``data_store`` (under a prefix of its own, ending with ``/...json``).
            model_name: The served SageMaker model (``CfnModel.attr_model_name``).
            instance_type: The shadow endpoint's instance type.
            instance_count: The shadow endpoint's instance count.
            vpc_config: The monitoring jobs' ``VpcConfig`` (``subnets``, ``securityGroupIds``);
                the function runs there too. Default: - outside any VPC.
            log_retention: How long the function's log is kept. Default: - 3 months.
            removal_policy: For the log group. Default: - RETAIN.
        """
        super().__init__(scope, id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Writes the {scope.node.path} explainability analysis configuration at deploy time",
        )
        log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=removal_policy)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=LAMBDA_RUNTIME,
            handler=_HANDLER,
            code=lambda_code("lambdas/analysis_config"),
            role=self.role,
            timeout=Duration.minutes(1),
            memory_size=256,
            log_group=log_group,
            description="Names the served model in the explainability monitor's analysis configuration",
        )
        log_group.grant_write(self.role)
        prefix = key.rsplit("/", 1)[0] + "/"
        # Reads the source (the data store's key decrypts a source in this store) and writes the copy.
        iam.Grant.add_to_principal(
            grantee=self.role, actions=["s3:GetObject"], resource_arns=[s3_object_arn(source_uri)]
        )
        data_store.grant_read_write(self.role, prefix=prefix)
        log_arn = f"<{Stack.of(self).get_logical_id(log_group.node.default_child)}.Arn>"  # type: ignore[arg-type]
        acknowledge(
            self.role,
            "CloudWatch Logs names the function's log streams at run time; writes are limited to its own log group",
            *iam5_findings(resources=(f"{log_arn}:*",)),
        )
        if vpc_config is not None:
            self._place(vpc_config)
        # Lambda checks the role's permissions (the network interfaces') when it creates the function.
        depend_on_role_policy(self.function, self.role)
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.function.function_arn,
            resource_type=RESOURCE_TYPE,
            # The function answers within its 1-minute timeout, or never (no route to the response URL):
            # fail the deployment after 5 minutes rather than CloudFormation's default hour.
            service_timeout=Duration.minutes(5),
            properties={
                "SourceUri": source_uri,
                "TargetUri": data_store.s3_uri(key),
                "ModelName": model_name,
                "InstanceType": instance_type,
                "InstanceCount": str(instance_count),
                # The monitoring jobs' role may manage shadow endpoints of this prefix only.
                "EndpointNamePrefix": CLARIFY_ENDPOINT_PREFIX,
            },
        )
        depend_on_role_policy(self.resource, self.role)
        self.uri: str = self.resource.get_att_string("Uri")

    def _place(self, vpc_config: Any) -> None:
        """Run the function in the jobs' subnets with their security groups (S3 through its endpoint)."""
        function = self.function.node.default_child
        assert isinstance(function, lambda_.CfnFunction)
        if not isinstance(vpc_config, dict):
            Annotations.of(self).add_warning_v2(
                "cdk-mlops:analysis-config-outside-vpc",
                "the endpoint model's VpcConfig is one token, so the function that writes the explainability "
                "analysis configuration runs outside the VPC; give the model its VpcConfig as a property object",
            )
            return
        subnets, groups = list(vpc_config["subnets"]), list(vpc_config["securityGroupIds"])
        function.add_property_override("VpcConfig", {"SubnetIds": subnets, "SecurityGroupIds": groups})
        grant_lambda_vpc_access(self.role, subnet_ids=subnets, security_group_ids=groups)
