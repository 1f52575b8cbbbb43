"""The CloudFormation emulation: types moto does not provision, registered on moto's own backends.

moto's CloudFormation builds its resource type map from ``CloudFormationModel.__subclasses__()``;
a type missing there is skipped with a warning, and the stack "completes" without it. Each
model subclasses ``CloudFormationModel`` directly, so defining it registers its type (and a
later definition of a type replaces moto's; see :mod:`cdk_mlops.local.cfn_resource`). This
module is the entry point; the models live by seam:

* :mod:`~cdk_mlops.local.cfn_resource`: the base class and helpers every model shares;
* :mod:`~cdk_mlops.local.cfn_s3`: ``AWS::S3::Bucket`` and its settings;
* :mod:`~cdk_mlops.local.cfn_policies`: bucket, queue and topic policies, and the TLS condition;
* :mod:`~cdk_mlops.local.cfn_services`: KMS keys, SageMaker pipelines and model package groups,
  alarms and schedules;
* :mod:`~cdk_mlops.local.cfn_network`: the VPC and everything in it;
* :mod:`~cdk_mlops.local.cfn_autoscaling`: Application Auto Scaling targets and policies;
* :mod:`~cdk_mlops.local.cfn_sagemaker`: SageMaker Model Monitor job definitions and schedules;
* :mod:`~cdk_mlops.local.cfn_coverage`: which types of a template cannot provision, and why;
* :mod:`~cdk_mlops.local.cfn_custom`: custom resources;
* :mod:`~cdk_mlops.local.cfn_stacks`: the stack lifecycle (change sets, exports, parallel deployments).

:func:`install` must run in the process that serves the requests, before the first stack is
created: it also routes ``Custom::`` types to the emulations (moto would invoke their Lambda in
Docker), evaluates bucket policies as a TLS request would be (below), links cross-stack exports
for change-set deployments (moto does so only for CreateStack, so every ``Fn::ImportValue`` of a
CLI deployment failed) and clears moto's type-map caches. It also makes moto's CloudFormation
safe for the CLI's parallel stack deployments: one CloudFormation request at a time
(:data:`cloudformation_lock`), and a change set looked up by its stack and name (moto took the
name alone, which every CLI change set shares, and executed one stack's change set for
another); gives a deleted stack no outputs (moto resolved them again, and so created the
resources they name anew); refuses a change set or stack whose template holds a type that
cannot provision locally, naming each type and the reason (moto skipped it and reported the
stack complete; :func:`~cdk_mlops.local.cfn_coverage.unprovisionable` gives the same list before
a deploy); answers ``DescribeMonitoringSchedule`` and ``ListMonitoringSchedules`` on SageMaker
(moto has no monitoring schedules); and reports a Lambda function's ``VpcConfig`` with the VPC of its
subnets (moto said ``vpc-123abc``). It is idempotent.

Covered, on the moto service backends, so the service APIs answer as AWS would after a deploy:

``AWS::S3::Bucket`` (replaces moto's model, which applies only encryption and tags)
    ``VersioningConfiguration``, ``ObjectLockEnabled``/``ObjectLockConfiguration``,
    ``LifecycleConfiguration``, ``PublicAccessBlockConfiguration``, ``OwnershipControls``,
    ``LoggingConfiguration``, ``NotificationConfiguration`` (queue, topic, Lambda, EventBridge),
    ``CorsConfiguration``, ``InventoryConfigurations`` and ``BucketEncryption`` with
    ``BucketKeyEnabled``, on create and update (removed settings are cleared). Delete refuses a
    bucket that holds objects, as S3 does (moto silently kept it and reported success).
``AWS::KMS::Key`` (replaces moto's model, which fails with a 500 on any tagged key)
    ``Tags``, ``KeyPolicy`` (stored as JSON), ``EnableKeyRotation``, ``Enabled``, ``KeySpec``,
    ``KeyUsage``, ``Description``.
``AWS::S3::BucketPolicy``, ``AWS::SQS::QueuePolicy``, ``AWS::SNS::TopicPolicy``
    the policy is set on each bucket, queue or topic, and removed on delete. Bucket policy
    statements with a ``Condition`` apply only if the condition holds for a local request,
    which counts as TLS (``aws:SecureTransport`` true): moto ignores ``Bool`` conditions, so the
    deny-non-TLS statement of every ``enforce_ssl`` bucket (and of the bootstrap bucket) would
    otherwise deny every object request, including the CLI's asset uploads.
``AWS::SageMaker::Pipeline``
    ``PipelineDefinitionBody`` or ``PipelineDefinitionS3Location``; updated in place.
``AWS::SageMaker::ModelPackageGroup``
    ``Ref`` is the ARN; delete fails while the group holds model packages, as in SageMaker.
``AWS::CloudWatch::Alarm``
    alarms on one metric or on metric math (``Metrics``).
``AWS::Scheduler::Schedule``
    in its group (``default`` when unset); generated names are cut to 64 characters.
``AWS::EC2::VPC``, ``AWS::EC2::Subnet``, ``AWS::EC2::RouteTable``, ``AWS::EC2::FlowLog``
    (replace moto's models, which ignored DNS settings, resolved no subnet attribute and
    deleted no route table or flow log, so a VPC stack could not be deleted) ``Ref`` and every
    ``Fn::GetAtt`` attribute CloudFormation documents, ``Tags``, ``EnableDnsSupport`` and
    ``EnableDnsHostnames`` (CloudFormation's defaults: on, off), ``MapPublicIpOnLaunch``;
    updates in place unless a create-only property changes. EC2's dependency checks apply on
    delete: a VPC with security groups or endpoints, a subnet with network interfaces.
``AWS::EC2::SubnetRouteTableAssociation``
    associates for real (moto's model only recorded the pair); ``Ref`` is the association id; a
    subnet takes one association, as in EC2.
``AWS::EC2::SecurityGroup``, ``AWS::EC2::SecurityGroupIngress``, ``AWS::EC2::SecurityGroupEgress``
    inline and separate rules with CIDR, security group or prefix-list peers and descriptions
    (moto had no egress type and ignored inline egress and prefix lists). A group with inline
    egress rules has those only; without, the allow-all egress EC2 gives a new group, which an
    egress rule resource removes, as CloudFormation does. A prefix list must exist, as in EC2,
    and a rule needs exactly one peer (one that resolved to nothing fails instead of vanishing).
    Rule resources' ``Ref`` and ``Id`` are the rule id; a group referenced by another group's
    rule or an endpoint is not deleted before them.
``AWS::EC2::VPCEndpoint``
    gateway (a route to the service's prefix list in each route table) or interface (a network
    interface per subnet, the VPC's default group when none is given); ``PolicyDocument`` stored
    as JSON (moto kept the object); EC2's checks: the service offers that endpoint type in the
    region, and private DNS needs DNS support and host names in the VPC. ``Fn::GetAtt``:
    ``Id``, ``CreationTimestamp``, ``DnsEntries`` (``zone:name``), ``NetworkInterfaceIds``.
``AWS::ApplicationAutoScaling::ScalableTarget``
    registered on moto's Application Auto Scaling with its inline ``ScheduledActions``, so
    ``DescribeScalableTargets`` and ``DescribeScheduledActions`` answer. ``Ref`` and ``Id`` are
    ``ResourceId|ScalableDimension|ServiceNamespace``, as CloudFormation documents. A SageMaker
    variant must exist; updates are in place unless the resource id, dimension or namespace
    changes; deleting deregisters the target with its policies and scheduled actions.
``AWS::ApplicationAutoScaling::ScalingPolicy``
    target tracking or step scaling on a registered target (``ScalingTargetId`` or the three
    properties), so ``DescribeScalingPolicies`` answers; ``Ref`` and ``Arn`` are the policy ARN,
    kept on update.
``AWS::SageMaker::Endpoint`` (moto's model, which ignored ``EndpointName`` and generated a name)
    named by ``EndpointName``, so a scalable target or monitoring schedule that names it finds it.
``AWS::SageMaker::DataQualityJobDefinition``, ``ModelQualityJobDefinition``,
``ModelBiasJobDefinition``, ``ModelExplainabilityJobDefinition``
    on moto's SageMaker, so ``Describe*JobDefinition`` and ``List*JobDefinitions`` answer;
    ``Ref`` and ``JobDefinitionArn`` are the ARN, ``CreationTime`` too; generated names fit 63
    characters; a taken name is refused; updates replace (every property is create-only).
``AWS::SageMaker::MonitoringSchedule``
    kept by :mod:`~cdk_mlops.local.cfn_sagemaker` (moto has no schedules) and answered by
    ``DescribeMonitoringSchedule`` and ``ListMonitoringSchedules`` (status ``Scheduled``, the
    deployed ``MonitoringScheduleConfig``); ``Ref`` and ``MonitoringScheduleArn`` are the ARN,
    ``CreationTime`` and ``LastModifiedTime`` too. The endpoint and the job definition of its
    type must exist. Create, update, delete, start and stop through the SageMaker API, and
    monitoring executions, are not answered: only CloudFormation changes schedules, and no job
    runs locally.
``Custom::AWS`` (the CDK's ``AwsCustomResource``, and any custom type its provider serves)
    the declared SDK call of create, update and delete runs with boto3 on the local AWS, as the
    provider runs it (:mod:`cdk_mlops.local.aws_sdk_call`); ``Fn::GetAtt`` reads the flattened
    response (``PrefixLists.0.PrefixListId``).
``Custom::S3AutoDeleteObjects``
    on delete, empties the bucket (every version and delete marker) if it still carries the
    ``aws-cdk:auto-delete-objects=true`` tag, as the CDK's handler does.
``Custom::S3BucketNotifications``
    puts the notification configuration on the bucket, removes it on delete.
``Custom::ExplainabilityAnalysisConfig`` (and any custom type served by a local function of ``cdk_mlops.lambdas``)
    the function's handler runs in this process on CloudFormation's create, update and delete
    requests, as Lambda would run it: its environment, its role's credentials, the local endpoint;
    the answer it PUTs to the ``ResponseURL`` (a server on 127.0.0.1) decides
    (:mod:`~cdk_mlops.local.cfn_function_custom`). ``Ref`` and ``Fn::GetAtt`` read the answered
    physical id and ``Data``; ``FAILED`` (or no answer) fails the stack operation with the reason,
    leaving the stack ``*_FAILED``; a new physical id on update deletes the old resource.

Not covered:

* Any other ``Custom::*`` or ``AWS::CloudFormation::CustomResource``: it succeeds without effect
  and without attributes (``Fn::GetAtt`` on it resolves to nothing); each such type is logged
  once and listed by :func:`unemulated_custom_resources`, and
  :func:`cdk_mlops.local.deploy.check_stack` fails the deployment on it. Its Lambda would need
  Docker (only handlers of ``cdk_mlops.lambdas`` are run in this process).
* Types neither moto nor these modules know (``AWS::DynamoDB::GlobalTable``, ``AWS::Lambda::Url``,
  ``AWS::Pipes::Pipe``, ...): the change set (or stack) that holds one is refused at once, with
  each such type and why (:mod:`~cdk_mlops.local.cfn_coverage`); resources with a ``Condition``
  are not judged, and :func:`cdk_mlops.local.deploy.check_stack` still reports any resource
  missing after a deploy.
* Application Auto Scaling tags, predictive scaling and the alarms AWS creates for a
  target-tracking policy on SageMaker.
* Rollback: moto applies a template without rolling back when a resource fails.
* Deleting a stack, or removing an export, that another stack still imports is not refused.
* Bucket replication, analytics, intelligent tiering and website settings (inventory configurations
  are kept; :mod:`~cdk_mlops.local.s3_inventory` delivers a report on request); KMS
  multi-region keys and rotation periods.
* IPv6 and IPAM pools; internet, NAT and transit gateways and routes other than a gateway
  endpoint's (moto's models); a VPC endpoint whose subnets or route tables change is replaced
  (AWS modifies it in place; only its id differs).
"""

from __future__ import annotations

import threading

import moto.cloudformation.parsing as _parsing
from moto.awslambda.models import LambdaFunction
from moto.core.common_models import CloudFormationModel
from moto.s3.models import FakeBucket

from cdk_mlops.local.cfn_autoscaling import ScalableTarget, ScalingPolicy
from cdk_mlops.local.cfn_coverage import unprovisionable
from cdk_mlops.local.cfn_custom import (
    AUTO_DELETE_TAG,
    CUSTOM_RESOURCES,
    AwsSdkCustomResource,
    S3AutoDeleteObjects,
    S3BucketNotifications,
    UnemulatedCustomResource,
    resource_class_from_type,
    unemulated_custom_resources,
)
from cdk_mlops.local.cfn_network import (
    Ec2FlowLog,
    Ec2RouteTable,
    Ec2SecurityGroup,
    Ec2SecurityGroupEgress,
    Ec2SecurityGroupIngress,
    Ec2Subnet,
    Ec2SubnetRouteTableAssociation,
    Ec2Vpc,
    Ec2VpcEndpoint,
    lambda_vpc_config,
)
from cdk_mlops.local.cfn_policies import (
    LOCAL_REQUEST_CONTEXT,
    S3BucketPolicy,
    SnsTopicPolicy,
    SqsQueuePolicy,
    bucket_permission,
)
from cdk_mlops.local.cfn_resource import Props
from cdk_mlops.local.cfn_s3 import BucketNotEmptyError, S3Bucket
from cdk_mlops.local.cfn_sagemaker import (
    DataQualityJobDefinition,
    ModelBiasJobDefinition,
    ModelExplainabilityJobDefinition,
    ModelQualityJobDefinition,
    MonitoringSchedule,
    SageMakerEndpoint,
    install_monitoring_api,
    monitoring_schedules,
)
from cdk_mlops.local.cfn_services import (
    CloudWatchAlarm,
    KmsKey,
    ResourceInUseError,
    SageMakerModelPackageGroup,
    SageMakerPipeline,
    SchedulerSchedule,
    SsmParameter,
)
from cdk_mlops.local.cfn_stacks import cloudformation_lock, patch_cloudformation

__all__ = [
    "AUTO_DELETE_TAG",
    "CUSTOM_RESOURCES",
    "LOCAL_REQUEST_CONTEXT",
    "MODELS",
    "AwsSdkCustomResource",
    "BucketNotEmptyError",
    "CloudWatchAlarm",
    "DataQualityJobDefinition",
    "Ec2FlowLog",
    "Ec2RouteTable",
    "Ec2SecurityGroup",
    "Ec2SecurityGroupEgress",
    "Ec2SecurityGroupIngress",
    "Ec2Subnet",
    "Ec2SubnetRouteTableAssociation",
    "Ec2Vpc",
    "Ec2VpcEndpoint",
    "KmsKey",
    "ModelBiasJobDefinition",
    "ModelExplainabilityJobDefinition",
    "ModelQualityJobDefinition",
    "MonitoringSchedule",
    "Props",
    "ResourceInUseError",
    "S3AutoDeleteObjects",
    "S3Bucket",
    "S3BucketNotifications",
    "S3BucketPolicy",
    "SageMakerEndpoint",
    "SageMakerModelPackageGroup",
    "SageMakerPipeline",
    "ScalableTarget",
    "ScalingPolicy",
    "SchedulerSchedule",
    "SnsTopicPolicy",
    "SqsQueuePolicy",
    "SsmParameter",
    "UnemulatedCustomResource",
    "cloudformation_lock",
    "install",
    "is_installed",
    "monitoring_schedules",
    "unemulated_custom_resources",
    "unprovisionable",
]

_lock = threading.Lock()

#: Every type the local models provision, custom resources included.
MODELS: dict[str, type[CloudFormationModel]] = {
    model.cloudformation_type(): model
    for model in (
        S3Bucket,
        S3BucketPolicy,
        SqsQueuePolicy,
        SnsTopicPolicy,
        KmsKey,
        SageMakerPipeline,
        SageMakerModelPackageGroup,
        CloudWatchAlarm,
        SchedulerSchedule,
        SsmParameter,
        ScalableTarget,
        ScalingPolicy,
        SageMakerEndpoint,
        DataQualityJobDefinition,
        ModelQualityJobDefinition,
        ModelBiasJobDefinition,
        ModelExplainabilityJobDefinition,
        MonitoringSchedule,
        Ec2Vpc,
        Ec2Subnet,
        Ec2RouteTable,
        Ec2SubnetRouteTableAssociation,
        Ec2SecurityGroup,
        Ec2SecurityGroupIngress,
        Ec2SecurityGroupEgress,
        Ec2VpcEndpoint,
        Ec2FlowLog,
        S3AutoDeleteObjects,
        S3BucketNotifications,
        AwsSdkCustomResource,
    )
}


def install() -> None:
    """Make moto in this process use the local models (CloudFormation, S3 policy checks, Lambda VPC config). Idempotent.

    Raises:
        RuntimeError: if moto's type map does not pick these models (a moto change to follow here).
    """
    with _lock:
        _parsing.resource_class_from_type = resource_class_from_type
        FakeBucket.get_permission = bucket_permission  # type: ignore[method-assign,assignment]
        LambdaFunction.vpc_config = property(lambda_vpc_config)  # type: ignore[method-assign,assignment]
        patch_cloudformation()
        install_monitoring_api()
        for cached in (_parsing.get_model_list, _parsing.get_model_map, _parsing.get_name_type_map):
            cached.cache_clear()
        model_map = _parsing.get_model_map()
    wrong = sorted(t for t, model in MODELS.items() if t not in CUSTOM_RESOURCES and model_map.get(t) is not model)
    if wrong:
        raise RuntimeError(f"moto's CloudFormation type map does not use the local models for {wrong}")


def is_installed() -> bool:
    """Whether :func:`install` has routed moto's CloudFormation in this process to the local models."""
    return _parsing.resource_class_from_type is resource_class_from_type
