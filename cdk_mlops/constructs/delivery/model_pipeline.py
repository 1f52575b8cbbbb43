"""The model pipeline: from a model package's approval to every environment, one delivery per approval.

:class:`ModelDeliveryPipeline` starts on the registry's ``Approved`` event, selects the newest
approved package, and deploys it to each environment in order (manual approval where required),
tests the endpoint and records what each environment runs; a package already delivered is
skipped, so repeated events deliver it once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from aws_cdk import Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as event_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from cdk_mlops.constructs.common import ACCOUNT_ID, depend_on_role_policy
from cdk_mlops.constructs.delivery.access import _approval_pattern, access_role_name
from cdk_mlops.constructs.delivery.acknowledgments import _AcknowledgePipelineWildcards
from cdk_mlops.constructs.delivery.inputs import (
    ModelDeliveryTarget,
    PipelineSource,
    _target_problems,
    _title,
    use_connection_actions,
)
from cdk_mlops.constructs.delivery.rewrites import _RoleArnsAsSub, _UseConnectionActions
from cdk_mlops.constructs.delivery.shared import (
    DEFAULT_PARAMETER_PREFIX,
    _build_security_groups,
    _build_spec,
    _common_problems,
    _install_commands,
    _network_problems,
    _parameter_arn,
    _PipelineStorage,
    _role_arn,
    _storage_problems,
    _tooling_problems,
)
from cdk_mlops.constructs.props import checked_props
from cdk_mlops.delivery_steps import (
    DELIVER,
    MODEL_RECORD_NONE,
    MODEL_SETTINGS,
    REDELIVER,
    model_record_name,
    revision_record_name,
)
from cdk_mlops.errors import ConfigurationError

__all__ = ["DEFAULT_BOOTSTRAP_QUALIFIER", "ModelDeliveryPipeline"]

#: The qualifier of the CDK bootstrap stacks of the target accounts (``cdk bootstrap --qualifier``).
DEFAULT_BOOTSTRAP_QUALIFIER: Final = "hnb659fds"
#: The variables namespace of the model pipeline's Select action.
_MODEL_NAMESPACE: Final = "Model"

_GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}\Z")


def _only_when_delivering() -> codepipeline.Conditions:
    """Enter a target's stage only when Select chose to deliver (:data:`DELIVER`); skip it otherwise.

    Every stage skipped makes a successful run that changed nothing: no deployment, no test, no
    approval request. CodePipeline offers the SKIP result for VariableCheck entry conditions.
    """
    rule = codepipeline.Rule(
        name="Deliver",
        provider="VariableCheck",
        version="1",
        configuration={"Variable": f"#{{{_MODEL_NAMESPACE}.{DELIVER}}}", "Operator": "EQ", "Value": "true"},
    )
    return codepipeline.Conditions(conditions=[codepipeline.Condition(result=codepipeline.Result.SKIP, rules=[rule])])


class ModelDeliveryPipeline(Construct):
    """Promotes an approved model package: staging, endpoint test, approval, prod (CodePipeline V2).

    ::

        registry: Approved ─► EventBridge rule ─► Source (no push trigger)
          ► Select (newest approved package, decide_promotion; deliver it or not)
          ► <each target, in order, skipped unless Select delivers>
              [manual approval] ► Deploy (cdk deploy with the package) ► Test

    The registry's ``SageMaker Model Package State Change`` event for a ``Completed`` package of
    the group with ``ModelApprovalStatus = Approved`` starts the pipeline. *Select* lists the group
    in the registry environment and picks the newest approved package
    (:func:`cdk_mlops.promotion.decide_promotion`), with its drift-check baseline prefix and the
    data bucket holding it and the model archive (:func:`cdk_mlops.delivery_steps.model_settings`).

    One approval, one delivery: SageMaker may send several events for one change (and one for a
    later update of an approved package), and each starts a run. Runs are queued, so a repeated
    event's run starts when the earlier run has finished; its Select then finds that the first
    environment's record already names the package and exports ``DELIVER=false``, and an entry
    condition skips every environment's stage: the run succeeds without a deployment, a test or
    an approval request. The first environment's record is written when its deployment succeeds,
    so a run that failed before that delivered nothing, and the next event delivers the package.
    To deliver a package again (after a rejected approval, say), start the pipeline with the
    pipeline variable ``REDELIVER`` set to ``true``. Each *Deploy* step checks out the source
    revision the platform pipeline last deployed to that environment (so nothing unreviewed rides
    along), sets the environment's ``model_package_arn``, ``model_baseline_prefix`` and
    ``model_source_bucket`` in ``cdk.json`` and runs ``npx cdk deploy`` for the environment's
    stacks (the endpoint there reads the model where it was trained: the registry environment
    lets the later environments' accounts read its registry and ``artifacts/``); then it records
    them in the environment's SSM parameter (a JSON object), which the platform pipeline writes
    into ``cdk.json`` before every synth. A failed deployment rolls back,
    a failed test or a rejected approval stops the run: later environments keep their previous
    model, and their records stay as they were.

    Attributes:
        pipeline: The ``AWS::CodePipeline::Pipeline``.
        artifact_bucket: Its artifact bucket (KMS-encrypted).
        artifact_key: The artifact bucket's key.
        access_log_bucket: Receives the artifact bucket's access logs, when this construct created it.
        topic: Failures, approvals waiting and successful promotions are announced here.
        approval_rule: The EventBridge rule on the registry's ``Approved`` events.
        records: The SSM parameter recording the model each environment runs, by environment name.
        select_role: The role of the Select step.
        deploy_roles: The role of each environment's Deploy and Test steps, by environment name.
        vpc: The VPC the builds run in, if any.
        security_groups: The builds' security groups (empty without a VPC).
    """

    @checked_props
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        source: PipelineSource,
        model_package_group_name: str,
        registry_environment: str,
        registry_account: str,
        registry_region: str,
        targets: Sequence[ModelDeliveryTarget],
        access_role_prefix: str = "cdk-mlops",
        parameter_prefix: str = DEFAULT_PARAMETER_PREFIX,
        bootstrap_qualifier: str = DEFAULT_BOOTSTRAP_QUALIFIER,
        install_commands: Sequence[str] = ("make install",),
        deploy_command: str = "npx cdk deploy --require-approval never --progress events {selector}",
        cdk_json: str = "cdk.json",
        context_key: str = "environments",
        initial_models: Mapping[str, str] | None = None,
        artifact_bucket: s3.IBucket | None = None,
        notification_topic: sns.ITopic | None = None,
        pipeline_name: str | None = None,
        python_version: str = "3.12",
        build_image: codebuild.IBuildImage = codebuild.LinuxBuildImage.STANDARD_7_0,
        step_install_commands: Sequence[str] | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
    ) -> None:
        """Define the pipeline, its trigger and the records.

        Args:
            scope: The parent construct; its stack needs an explicit account and region.
            id: The construct id.
            source: The repository; pushes do not start this pipeline. A connection is cloned with
                its history, so a step can check out the revision an environment runs.
            model_package_group_name: The registry group whose approvals start the pipeline.
            registry_environment: The environment that holds the group; its :class:`DeliveryAccess`
                role must allow registry reads (``allow_registry_read``).
            registry_account: That environment's account; events from another account than the
                tooling account must be forwarded (``DeliveryAccess.forward_model_approvals``).
            registry_region: That environment's region.
            targets: The environments, in order.
            access_role_prefix: As for :class:`PlatformDeliveryPipeline`. Default: - ``cdk-mlops``.
            parameter_prefix: SSM path of the records. Default: - ``/cdk-mlops/delivery``.
            bootstrap_qualifier: Of the target accounts' CDK bootstrap roles. Default: - ``hnb659fds``.
            install_commands: Run before the deploy command. Default: - ``make install``.
            deploy_command: ``{selector}`` is replaced with the target's ``stack_selector``.
                Default: - ``npx cdk deploy --require-approval never --progress events {selector}``.
            cdk_json: The file whose ``context.<context_key>.<env>.model_package_arn`` the deploy step
                sets. Default: - ``cdk.json``.
            context_key: Default: - ``environments``.
            initial_models: Environment name → the initial value of its record
                (:func:`cdk_mlops.delivery_steps.model_record`). Default: - ``none`` (no model deployed
                by this pipeline yet).
            artifact_bucket: A bucket encrypted with a customer-managed key. Default: - a new one.
            notification_topic: Default: - a new KMS-encrypted topic.
            pipeline_name: Default: - generated.
            python_version: CodeBuild's Python runtime. Default: - 3.12.
            build_image: Default: - ``aws/codebuild/standard:7.0``.
            step_install_commands: As for :class:`PlatformDeliveryPipeline`.
            removal_policy: For the buckets, keys and records. Default: - RETAIN.
            vpc: A VPC of the tooling account that every build (Select, Deploy, Test) runs in; as
                for :class:`PlatformDeliveryPipeline`. Default: - the builds run outside any VPC.
            vpc_subnets: The subnets of ``vpc`` the builds run in (needs ``vpc``). Default: - the VPC's
                private subnets.
            security_groups: The builds' security groups (needs ``vpc``); pass the platform
                pipeline's ``security_groups`` to share its group. Default: - one new group with no
                inbound rule and all outbound traffic allowed.

        Raises:
            ConfigurationError: listing every problem, before anything is defined.
        """
        super().__init__(scope, id)
        tooling = Stack.of(self)
        problems = _tooling_problems(self)
        problems += source.problems(None if problems else tooling.region)
        problems += _target_problems("targets", targets)
        problems += _common_problems(access_role_prefix, parameter_prefix)
        problems += _storage_problems(artifact_bucket)
        problems += _network_problems(vpc, vpc_subnets, security_groups)
        self._install = _install_commands(step_install_commands, problems)
        if not Token.is_unresolved(model_package_group_name) and not _GROUP_NAME.match(model_package_group_name):
            problems.append(f"model_package_group_name {model_package_group_name!r} is not a model package group name")
        if not ACCOUNT_ID.match(registry_account):
            problems.append(f"registry_account {registry_account!r} is not a 12-digit AWS account id")
        if "{selector}" not in deploy_command:
            problems.append(f"deploy_command {deploy_command!r} must contain {{selector}}")
        for target in targets:
            if not target.stack_selector.strip():
                problems.append(f"targets[{target.name!r}].stack_selector is empty")
        if problems:
            raise ConfigurationError(self, problems)

        storage = _PipelineStorage(
            self,
            "Storage",
            artifact_bucket=artifact_bucket,
            notification_topic=notification_topic,
            removal_policy=removal_policy,
        )
        self.artifact_bucket = storage.artifact_bucket
        self.artifact_key = storage.artifact_key
        self.access_log_bucket = storage.access_log_bucket
        self.topic = storage.topic
        self._source = source
        self._python = python_version
        self._build_image = build_image
        self.vpc = vpc
        self._subnets = vpc_subnets
        self.security_groups = _build_security_groups(self, vpc, security_groups)
        initial = dict(initial_models or {})

        self.pipeline = codepipeline.Pipeline(
            self,
            "Pipeline",
            pipeline_name=pipeline_name,
            pipeline_type=codepipeline.PipelineType.V2,
            artifact_bucket=self.artifact_bucket,
            # One promotion at a time, in the order the approvals came.
            execution_mode=codepipeline.ExecutionMode.QUEUED,
            variables=[
                codepipeline.Variable(
                    variable_name=REDELIVER,
                    default_value="false",
                    description="true: deliver the newest approved package even if the first environment runs it",
                )
            ],
        )
        checkout = codepipeline.Artifact("Source")
        self.pipeline.add_stage(stage_name="Source", actions=[self._source_action(checkout)])

        self.records: dict[str, ssm.StringParameter] = {}
        for target in targets:
            record = ssm.StringParameter(
                self,
                f"{_title(target.name)}Model",
                parameter_name=model_record_name(parameter_prefix, target.name),
                string_value=initial.get(target.name, MODEL_RECORD_NONE),
                description=f"The model package {target.name} runs, recorded by the model delivery pipeline",
            )
            record.apply_removal_policy(removal_policy)
            self.records[target.name] = record

        first = targets[0]
        registry_role = _role_arn(registry_account, access_role_name(access_role_prefix, registry_environment))
        self.select_role = iam.Role(
            self,
            "SelectRole",
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
            description="Selects the newest approved model package of the registry",
        )
        self.select_role.add_to_policy(iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[registry_role]))
        self.records[first.name].grant_read(self.select_role)
        select_command = " ".join(
            [
                "python3 -m cdk_mlops.delivery_steps select-model",
                f"--group {model_package_group_name} --region {registry_region} --role-arn {registry_role}",
                f"--environment {first.name} --record {self.records[first.name].parameter_name}",
                f'--redeliver "${REDELIVER}"',
                "> model.env && . ./model.env",
            ]
        )
        select = self._project(
            "Select",
            self.select_role,
            _build_spec(
                python_version=python_version,
                install=self._install,
                build=[select_command],
                exported=[*(key.upper() for key in MODEL_SETTINGS), DELIVER],
            ),
        )
        self.pipeline.add_stage(
            stage_name="Select",
            actions=[
                actions.CodeBuildAction(
                    action_name="Select",
                    project=select,
                    input=checkout,
                    variables_namespace=_MODEL_NAMESPACE,
                    environment_variables={
                        REDELIVER: codebuild.BuildEnvironmentVariable(value=f"#{{variables.{REDELIVER}}}")
                    },
                )
            ],
        )
        model_arn = f"#{{{_MODEL_NAMESPACE}.MODEL_PACKAGE_ARN}}"

        self.deploy_roles: dict[str, iam.Role] = {}
        for target in targets:
            self._add_target(
                target,
                checkout,
                model_arn,
                prefix=parameter_prefix,
                role_prefix=access_role_prefix,
                qualifier=bootstrap_qualifier,
                install_commands=install_commands,
                deploy_command=deploy_command,
                cdk_json=cdk_json,
                context_key=context_key,
            )

        self.approval_rule = events.Rule(
            self,
            "Approved",
            description=f"{self.node.path}: a model package of {model_package_group_name} was approved",
            event_pattern=_approval_pattern(model_package_group_name, registry_account),
        )
        self.approval_rule.add_target(event_targets.CodePipeline(self.pipeline))
        if registry_account != tooling.account:
            # The registry account forwards its approvals (DeliveryAccess.forward_model_approvals).
            events.CfnEventBusPolicy(
                self,
                "RegistryEvents",
                statement_id=f"{model_package_group_name}-approvals"[:64],
                event_bus_name="default",
                statement=iam.PolicyStatement(
                    principals=[iam.AccountPrincipal(registry_account)],
                    actions=["events:PutEvents"],
                    resources=[tooling.format_arn(service="events", resource="event-bus", resource_name="default")],
                    conditions={"StringEquals": {"events:source": "aws.sagemaker"}},
                ).to_statement_json(),
            )
        self.pipeline.notify_on(
            "Notifications",
            self.topic,
            events=[
                codepipeline.PipelineNotificationEvents.PIPELINE_EXECUTION_FAILED,
                codepipeline.PipelineNotificationEvents.MANUAL_APPROVAL_NEEDED,
                codepipeline.PipelineNotificationEvents.PIPELINE_EXECUTION_SUCCEEDED,
            ],
        )
        self.node.add_validation(_RoleArnsAsSub(self.pipeline))
        depend_on_role_policy(self.pipeline, self.pipeline.role)
        self.node.add_validation(_UseConnectionActions(self))
        self.node.add_validation(
            _AcknowledgePipelineWildcards(self, [self.artifact_bucket], [self.artifact_key, self.topic.master_key])
        )

    def _source_action(self, output: codepipeline.Artifact) -> codepipeline.IAction:
        source = self._source
        if source.bucket is not None:
            return actions.S3SourceAction(
                action_name="Source",
                bucket=source.bucket,
                bucket_key=str(source.object_key),
                output=output,
                trigger=actions.S3Trigger.NONE,
                variables_namespace="Source",
            )
        owner, _, repo = str(source.repository).rpartition("/")
        return actions.CodeStarConnectionsSourceAction(
            action_name="Source",
            connection_arn=str(source.connection_arn),
            owner=owner,
            repo=repo,
            branch=str(source.branch),
            output=output,
            trigger_on_push=False,
            # The deploy step checks out the revision an environment runs: it needs the history.
            code_build_clone_output=True,
            variables_namespace="Source",
        )

    def _project(
        self, id: str, role: iam.IRole, spec: dict[str, Any], *, cache: bool = False
    ) -> codebuild.PipelineProject:
        return codebuild.PipelineProject(
            self,
            id,
            role=role,
            encryption_key=self.artifact_key,
            environment=codebuild.BuildEnvironment(
                build_image=self._build_image,
                compute_type=codebuild.ComputeType.MEDIUM if cache else codebuild.ComputeType.SMALL,
            ),
            build_spec=codebuild.BuildSpec.from_object(spec),
            cache=codebuild.Cache.bucket(self.artifact_bucket, prefix=f"cache/{id.lower()}") if cache else None,
            timeout=Duration.minutes(90 if cache else 15),
            vpc=self.vpc,
            subnet_selection=self._subnets,
            security_groups=self.security_groups or None,
        )

    def _add_target(
        self,
        target: ModelDeliveryTarget,
        checkout: codepipeline.Artifact,
        model_arn: str,
        *,
        prefix: str,
        role_prefix: str,
        qualifier: str,
        install_commands: Sequence[str],
        deploy_command: str,
        cdk_json: str,
        context_key: str,
    ) -> None:
        title = _title(target.name)
        role = iam.Role(
            self,
            f"{title}DeployRole",
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
            description=f"Deploys and tests models in {target.name}: CDK bootstrap roles there, its records",
        )
        bootstrap = [
            _role_arn(target.account, f"cdk-{qualifier}-{kind}-role-{target.account}-{target.region}")
            for kind in ("deploy", "file-publishing")
        ]
        access = _role_arn(target.account, access_role_name(role_prefix, target.name))
        role.add_to_policy(iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[*bootstrap, access]))
        self.records[target.name].grant_read(role)
        self.records[target.name].grant_write(role)
        revision = revision_record_name(prefix, target.name)
        role.add_to_policy(
            iam.PolicyStatement(actions=["ssm:GetParameter"], resources=[_parameter_arn(self, revision)])
        )
        source = self._source
        words = [
            "python3 -m cdk_mlops.delivery_steps deploy-model",
            f"--environment {target.name}",
            '--model-package-arn "$MODEL_PACKAGE_ARN"',
            *(f'--{key.replace("_", "-")} "${key.upper()}"' for key in MODEL_SETTINGS[1:]),
            f"--record {self.records[target.name].parameter_name}",
            f"--revision-record {revision}",
            f"--cdk-json {cdk_json}",
            f"--context-key {context_key}",
            *(f"--install {_shell_quote(c)}" for c in install_commands),
            f"--deploy {_shell_quote(deploy_command.format(selector=_shell_quote(target.stack_selector)))}",
        ]
        if source.bucket is not None:
            words += [f"--source-bucket {source.bucket.bucket_name}", f"--source-key {source.object_key}"]
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObjectVersion"], resources=[source.bucket.arn_for_objects(str(source.object_key))]
                )
            )
        else:
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=use_connection_actions(str(source.connection_arn)), resources=[str(source.connection_arn)]
                )
            )
        deploy = self._project(
            f"{title}Deploy",
            role,
            _build_spec(python_version=self._python, install=self._install, build=[" ".join(words)], cache=True),
            cache=True,
        )
        # Every model setting Select exported (MODEL_PACKAGE_ARN, ...), passed on to the deployment.
        variables = {
            key.upper(): codebuild.BuildEnvironmentVariable(value=f"#{{{_MODEL_NAMESPACE}.{key.upper()}}}")
            for key in MODEL_SETTINGS
        }
        stage_actions: list[codepipeline.IAction] = []
        if target.manual_approval:
            stage_actions.append(
                actions.ManualApprovalAction(
                    action_name="Approve",
                    run_order=1,
                    notification_topic=self.topic,
                    additional_information=f"Deploy {model_arn} to {target.name} ({target.account}/{target.region})?",
                )
            )
        stage_actions.append(
            actions.CodeBuildAction(
                action_name="Deploy",
                project=deploy,
                input=checkout,
                environment_variables=variables,
                run_order=2,
            )
        )
        test = target.endpoint_test
        if test is not None:
            command = " ".join(
                [
                    "python3 -m cdk_mlops.delivery_steps endpoint-test",
                    f"--environment {target.name} --region {target.region} --role-arn {access}",
                    f"--endpoint {test.endpoint_name}",
                    f"--bucket-stack {test.data_stack_name} --bucket-logical-id {test.data_bucket_logical_id}",
                    f"--key {test.sample_key} --content-type {test.content_type}",
                    f"--invocations {test.invocations} --max-latency-ms {int(test.max_latency.to_milliseconds())}",
                ]
            )
            project = self._project(
                f"{title}Test",
                role,
                _build_spec(python_version=self._python, install=self._install, build=[command]),
            )
            stage_actions.append(
                actions.CodeBuildAction(action_name="TestEndpoint", project=project, input=checkout, run_order=3)
            )
        self.pipeline.add_stage(stage_name=title, actions=stage_actions, before_entry=_only_when_delivering())
        self.deploy_roles[target.name] = role


def _shell_quote(text: str) -> str:
    """Single-quote ``text`` for a POSIX shell."""
    return "'" + text.replace("'", "'\"'\"'") + "'"
