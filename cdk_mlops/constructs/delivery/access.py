"""The role the delivery pipelines' build steps assume in an environment, and what it may do there.

The platform pipeline adds a :class:`DeliveryAccess` stack to every stage it deploys. Its role
starts with no permissions; each ``allow_*`` method adds one narrow capability (describe the
stage's stacks, request a retrain, read the registry, invoke the endpoint), and
``forward_model_approvals`` sends the registry's approvals to the tooling account, where they
start the model pipeline (:func:`_approval_pattern` is the event both sides match).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import aws_cdk as cdk
from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as event_targets
from aws_cdk import aws_iam as iam
from constructs import Construct

from cdk_mlops.constructs.common import acknowledge, iam5_findings, nag_resource
from cdk_mlops.constructs.data_store_base import IDataStore
from cdk_mlops.constructs.delivery.inputs import EndpointTest
from cdk_mlops.constructs.props import checked_props
from cdk_mlops.constructs.training_pipeline import _PipelineResources
from cdk_mlops.lambdas.retrain_trigger import MANUAL_RETRAIN, SOURCE

__all__ = [
    "APPROVED",
    "COMPLETED",
    "MODEL_PACKAGE_STATE_CHANGE",
    "DeliveryAccess",
    "access_role_name",
]

#: The event the model registry emits when a package's approval status changes.
MODEL_PACKAGE_STATE_CHANGE: Final = "SageMaker Model Package State Change"
#: The approval status that starts the model pipeline.
APPROVED: Final = "Approved"
#: The package status of a registered package (``Pending`` and ``InProgress`` come before it).
COMPLETED: Final = "Completed"


def access_role_name(prefix: str, environment: str) -> str:
    """The name of an environment's :class:`DeliveryAccess` role: ``<prefix>-<environment>-delivery``."""
    return f"{prefix}-{environment}-delivery"[:64]


class DeliveryAccess(Construct):
    """The role a delivery pipeline's build steps assume in one environment.

    The tooling account's principals may assume it (CDK bootstrap trust, ``cdk bootstrap --trust``,
    works the same way); the tooling account's IAM policies decide which build step may. The
    role starts with no permissions; each ``allow_*`` method adds one narrow capability.

    Attributes:
        role: The role, named ``role_name`` so the pipelines can build its ARN.
    """

    @checked_props
    def __init__(self, scope: Construct, id: str, *, role_name: str, trusted_account: str, environment: str) -> None:
        """Define the role.

        Args:
            scope: The parent construct, in the environment's stage.
            id: The construct id.
            role_name: Its name; see :func:`access_role_name`.
            trusted_account: The tooling account whose build steps assume it.
            environment: The environment's name, for the description.
        """
        super().__init__(scope, id)
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            assumed_by=iam.AccountPrincipal(trusted_account),
            description=f"Assumed by the delivery pipelines' build steps in {environment}: "
            "describe, test and request retraining; no deployment rights",
            max_session_duration=Duration.hours(1),
        )

    def allow_describe_stacks(self, stacks: Iterable[cdk.Stack]) -> iam.Grant:
        """Describe the given stacks and their resources (post-deploy checks, finding the data bucket)."""
        arns = [
            Stack.of(self).format_arn(service="cloudformation", resource="stack", resource_name=f"{s.stack_name}/*")
            for s in stacks
        ]
        grant = iam.Grant.add_to_principal(
            grantee=self.role,
            actions=["cloudformation:DescribeStacks", "cloudformation:DescribeStackResource"],
            resource_arns=arns,
        )
        acknowledge(
            self.role,
            "a stack ARN ends in the stack's generated id; the wildcard stands for that id of one named stack",
            *iam5_findings(resources=[nag_resource(self, arn) for arn in arns]),
        )
        return grant

    def allow_retrain_requests(self) -> iam.Grant:
        """Put ``Manual Retrain`` events (source ``cdk-mlops.retrain``) on the default event bus, nothing else."""
        bus = Stack.of(self).format_arn(service="events", resource="event-bus", resource_name="default")
        return iam.Grant.add_to_principal(
            grantee=self.role,
            actions=["events:PutEvents"],
            resource_arns=[bus],
            conditions={"StringEquals": {"events:source": SOURCE, "events:detail-type": MANUAL_RETRAIN}},
        )

    def allow_describe_training(self, training: _PipelineResources) -> iam.Grant:
        """Describe one training pipeline (post-deploy check)."""
        return iam.Grant.add_to_principal(
            grantee=self.role, actions=["sagemaker:DescribePipeline"], resource_arns=[training.pipeline_arn]
        )

    def allow_registry_read(self, training: _PipelineResources) -> iam.Grant:
        """List and describe the model packages of a training pipeline's group (the model pipeline selects one)."""
        return training.grant_read_registry(self.role)

    def allow_describe_endpoint(self, endpoint_name: str) -> iam.Grant:
        """Describe one endpoint (post-deploy check)."""
        return iam.Grant.add_to_principal(
            grantee=self.role, actions=["sagemaker:DescribeEndpoint"], resource_arns=[self._endpoint_arn(endpoint_name)]
        )

    def allow_endpoint_test(self, test: EndpointTest, data_store: IDataStore) -> iam.Grant:
        """Read the sample request (and decrypt it) and invoke the endpoint; the endpoint need not exist yet."""
        grant = iam.Grant.add_to_principal(
            grantee=self.role,
            actions=["sagemaker:InvokeEndpoint"],
            resource_arns=[self._endpoint_arn(test.endpoint_name)],
        )
        iam.Grant.add_to_principal(
            grantee=self.role,
            actions=["s3:GetObject"],
            resource_arns=[data_store.bucket.arn_for_objects(test.sample_key)],
        )
        data_store.encryption_key.grant_decrypt(self.role)
        return grant

    def forward_model_approvals(self, *, model_package_group_name: str, event_bus_arn: str) -> events.Rule:
        """Forward the group's ``Approved`` events to the tooling account's event bus (the model pipeline's trigger)."""
        rule = events.Rule(
            self,
            "ForwardApprovals",
            description=f"{self.node.path}: approvals in {model_package_group_name} start the model pipeline",
            event_pattern=_approval_pattern(model_package_group_name),
        )
        bus = events.EventBus.from_event_bus_arn(self, "ToolingBus", event_bus_arn)
        forward_role = iam.Role(self, "ForwardRole", assumed_by=iam.ServicePrincipal("events.amazonaws.com"))
        rule.add_target(event_targets.EventBus(bus, role=forward_role))
        return rule

    def _endpoint_arn(self, endpoint_name: str) -> str:
        return Stack.of(self).format_arn(service="sagemaker", resource="endpoint", resource_name=endpoint_name)


def _approval_pattern(group: str, account: str | None = None) -> events.EventPattern:
    """A registered package of ``group`` that is approved.

    SageMaker sends a state change while a package is being registered (``ModelPackageStatus``
    ``Pending``, ``InProgress``) and again on later updates; only a ``Completed`` package can be
    deployed. Repeated events for one package still match: the model pipeline's Select step
    delivers a package once (see :class:`ModelDeliveryPipeline`).
    """
    return events.EventPattern(
        source=["aws.sagemaker"],
        detail_type=[MODEL_PACKAGE_STATE_CHANGE],
        account=[account] if account else None,
        detail={"ModelPackageGroupName": [group], "ModelPackageStatus": [COMPLETED], "ModelApprovalStatus": [APPROVED]},
    )
