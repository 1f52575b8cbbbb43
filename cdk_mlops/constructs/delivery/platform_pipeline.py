"""The platform pipeline: from a commit to every environment, a self-mutating CDK Pipeline.

:class:`PlatformDeliveryPipeline` tests and synthesizes the repository, publishes a security
report, then deploys one stage per environment in order (manual approval where required), checks
each deployment and asks the environment to retrain when, and only when, its ML code changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import Duration, RemovalPolicy, Stack, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_mlops.constructs.common import depend_on_role_policy
from cdk_mlops.constructs.delivery.access import DeliveryAccess, access_role_name
from cdk_mlops.constructs.delivery.acknowledgments import _AcknowledgePipelineWildcards
from cdk_mlops.constructs.delivery.inputs import DeliveryTarget, PipelineSource, _target_problems
from cdk_mlops.constructs.delivery.replication import _harden_replication, _ScopeReplicationKeyGrants
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
from cdk_mlops.constructs.model_endpoint import ModelEndpoint
from cdk_mlops.constructs.props import checked_props
from cdk_mlops.constructs.retrain_trigger import RetrainTrigger
from cdk_mlops.constructs.training_pipeline import _PipelineResources
from cdk_mlops.delivery_steps import revision_record_name, training_fingerprint, training_record_name
from cdk_mlops.errors import ConfigurationError

__all__ = ["PlatformDeliveryPipeline"]


@dataclass(frozen=True)
class _RetrainCheck:
    pipeline_name: str
    dataset: str
    fingerprint: str


class PlatformDeliveryPipeline(Construct):
    """The platform's CI/CD: a self-mutating CDK Pipeline (CodePipeline V2) from commit to prod.

    ::

        Source ► Build (make test, make synth) ► UpdatePipeline ► Assets
          ► <first> [security report] deploy ► verify ► retrain-if-ML-changed
          ► <next>  deploy ► verify ► retrain-if-ML-changed
          ► <prod>  [manual approval] deploy ► verify ► retrain-if-ML-changed

    Each stage is built by ``stage_factory`` inside this construct (the CDK Pipelines pattern:
    stages are defined in the pipeline's scope) and deployed to its target's account and region
    with the CDK bootstrap roles there. The pipeline adds a ``DeliveryAccess`` stack to every
    stage: a role its build steps assume to check the deployment and request retraining.

    Retrain when ML code changes, and only then: at synth the construct computes a fingerprint of
    every training pipeline in a stage (its definition and script assets,
    :func:`cdk_mlops.delivery_steps.training_fingerprint`). After the stage deploys, a step
    compares it with the fingerprint recorded at the previous deployment (an SSM parameter in the
    tooling account) and, when it changed, sends one ``Manual Retrain`` request to the
    environment's retrain trigger, which trains once on the current data version. Nothing else
    (endpoint, alarms, trigger settings) changes the fingerprint.

    Example::

        PlatformDeliveryPipeline(
            tooling_stack, "Platform",
            source=PipelineSource.connection("arn:aws:codeconnections:eu-west-1:111111111111:connection/...",
                                             repository="acme/mlops", branch="main"),
            targets=[DeliveryTarget(name="dev", account="222222222222", region="eu-west-1"),
                     DeliveryTarget(name="prod", account="333333333333", region="eu-west-1",
                                    manual_approval=True, production=True)],
            stage_factory=lambda scope, target: MyStage(scope, target.construct_id, env=target.env),
        )

    Attributes:
        pipeline: The CDK Pipeline.
        code_pipeline: The underlying ``AWS::CodePipeline::Pipeline`` (V2).
        artifact_bucket: KMS-encrypted, versioned, TLS-only, with access logs.
        artifact_key: The artifact bucket's key (used by every CodeBuild project too).
        access_log_bucket: Receives the artifact bucket's access logs, when this construct created it.
        topic: Pipeline failures and approvals waiting are announced here.
        stages: The deployed stages, by environment name, in order.
        access: Each stage's :class:`DeliveryAccess`, by environment name.
        step_roles: The role of each stage's post-deploy steps, by environment name.
        synth_step: Runs the tests and the synth.
        security_step: Checks the synthesized assembly's validation reports and publishes them.
        verify_steps: The post-deploy checks, by environment name.
        retrain_steps: The retrain-on-ML-change steps, by environment name (stages with a training pipeline).
        fingerprints: ``{environment: {pipeline name: fingerprint}}`` computed at synth.
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
        targets: Sequence[DeliveryTarget],
        stage_factory: Callable[[Construct, DeliveryTarget], cdk.Stage],
        on_stage: Callable[[cdk.Stage, DeliveryTarget, DeliveryAccess], None] | None = None,
        test_commands: Sequence[str] = ("make test",),
        synth_commands: Sequence[str] = ("make synth",),
        model_records: Mapping[str, str] | None = None,
        cdk_json: str = "cdk.json",
        context_key: str = "environments",
        access_role_prefix: str = "cdk-mlops",
        parameter_prefix: str = DEFAULT_PARAMETER_PREFIX,
        artifact_bucket: s3.IBucket | None = None,
        notification_topic: sns.ITopic | None = None,
        pipeline_name: str | None = None,
        cli_version: str | None = None,
        python_version: str = "3.12",
        build_image: codebuild.IBuildImage = codebuild.LinuxBuildImage.STANDARD_7_0,
        step_install_commands: Sequence[str] | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
    ) -> None:
        """Define the pipeline and every stage.

        Args:
            scope: The parent construct; its stack needs an explicit account and region (the tooling account).
            id: The construct id.
            source: The repository (:meth:`PipelineSource.connection` or :meth:`PipelineSource.s3`).
            targets: The environments, in deployment order.
            stage_factory: Builds one target's stage under the given scope (this construct). It must
                deploy to the target's account and region.
            on_stage: Called with each stage, its target and its access construct before the stage is
                added (what is added later is not deployed). Default: - nothing.
            test_commands: What the build step runs first. Default: - ``make test``.
            synth_commands: Then, after pinning models, what writes ``cdk.out``. Default: - ``make synth``.
            model_records: Environment name → the SSM parameter (tooling account) recording the model
                package it runs; written into ``cdk_json`` before synth. Default: - none.
            cdk_json: Where ``model_records`` are written. Default: - ``cdk.json``.
            context_key: The context key of the environments in ``cdk_json``. Default: - ``environments``.
            access_role_prefix: Names each environment's access role (:func:`access_role_name`).
                Default: - ``cdk-mlops``.
            parameter_prefix: SSM path of the records. Default: - ``/cdk-mlops/delivery``.
            artifact_bucket: A bucket encrypted with a customer-managed key. Default: - a new
                bucket, key and access-log bucket.
            notification_topic: Default: - a new KMS-encrypted topic.
            pipeline_name: Default: - generated.
            cli_version: The CDK CLI version of the self-mutation step. Default: - the latest.
            python_version: CodeBuild's Python runtime. Default: - 3.12.
            build_image: Default: - ``aws/codebuild/standard:7.0``.
            step_install_commands: What the build steps install before running
                :mod:`cdk_mlops.delivery_steps`. Default: - boto3, then nothing more when the
                checkout contains the library, otherwise the very copy this app is synthesized
                with, without its dependencies: ``cdk-mlops==<version>`` from an index, or the
                Git commit or archive URL it was installed from
                (:func:`~cdk_mlops.constructs.delivery.install.default_step_install_commands`).
                A copy installed from a local path has no default: synth fails and asks for
                this argument.
            removal_policy: For the buckets and keys. Default: - RETAIN.
            vpc: A VPC of the tooling account that every build runs in: synth, self-mutation, asset
                publishing, the security report, and each stage's verify and retrain steps. The
                builds fetch the source and packages (PyPI, npm), so its subnets need a route to
                them (a NAT gateway, a proxy, or a package mirror) and to the AWS APIs. Default: -
                the builds run outside any VPC.
            vpc_subnets: The subnets of ``vpc`` the builds run in (needs ``vpc``). Default: - the
                VPC's private subnets.
            security_groups: The builds' security groups (needs ``vpc``). Default: - one new group
                with no inbound rule and all outbound traffic allowed (``security_groups``).

        Raises:
            ConfigurationError: listing every problem (source, targets, a production target without
                approval, duplicates, the stack's environment, network settings without a vpc),
                before anything is defined.
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
        records = dict(model_records or {})
        unknown = sorted(set(records) - {t.name for t in targets})
        if unknown:
            problems.append(f"model_records name environment(s) {', '.join(unknown)} that are in no target")
        if not synth_commands:
            problems.append("synth_commands is empty; give the commands that write the cloud assembly")
        if problems:
            raise ConfigurationError(self, problems)

        self._source = source
        self._prefix = parameter_prefix
        self._role_prefix = access_role_prefix
        self._python = python_version
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
        self.vpc = vpc
        self.security_groups = _build_security_groups(self, vpc, security_groups)
        environment = codebuild.BuildEnvironment(build_image=build_image, compute_type=codebuild.ComputeType.SMALL)

        self._pipeline_source = source._pipelines_source()
        self.synth_step = self._synth_step(
            test_commands, synth_commands, records, cdk_json, context_key, build_image, python_version
        )
        self.code_pipeline = codepipeline.Pipeline(
            self,
            "Pipeline",
            pipeline_name=pipeline_name,
            pipeline_type=codepipeline.PipelineType.V2,
            artifact_bucket=self.artifact_bucket,
            restart_execution_on_update=True,
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Delivery",
            code_pipeline=self.code_pipeline,
            synth=self.synth_step,
            self_mutation=True,
            docker_enabled_for_synth=False,
            docker_enabled_for_self_mutation=False,
            publish_assets_in_parallel=False,
            cli_version=cli_version,
            # Every CodeBuild project CDK Pipelines creates (steps, self-mutation, assets) gets the network.
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=environment,
                vpc=vpc,
                subnet_selection=vpc_subnets,
                security_groups=self.security_groups or None,
            ),
        )
        self.security_step = pipelines.CodeBuildStep(
            "SecurityReport",
            input=self._pipeline_source,
            additional_inputs={"cdk.out": self.synth_step},
            install_commands=list(self._install),
            commands=["python3 -m cdk_mlops.delivery_steps security-report --assembly cdk.out --out security-report"],
            primary_output_directory="security-report",
            build_environment=environment,
            partial_build_spec=codebuild.BuildSpec.from_object(
                _build_spec(
                    python_version=python_version,
                    reports={
                        "security": {
                            "files": ["junit.xml"],
                            "base-directory": "security-report",
                            "file-format": "JUNITXML",
                        }
                    },
                )
            ),
        )

        self.stages: dict[str, cdk.Stage] = {}
        self.access: dict[str, DeliveryAccess] = {}
        self.step_roles: dict[str, iam.Role] = {}
        self.verify_steps: dict[str, pipelines.CodeBuildStep] = {}
        self.retrain_steps: dict[str, pipelines.CodeBuildStep] = {}
        self.fingerprints: dict[str, dict[str, str]] = {}
        for index, target in enumerate(targets):
            self._add_target(target, stage_factory, on_stage, first=index == 0, environment=environment)

        self.pipeline.build_pipeline()
        _harden_replication(self.code_pipeline, removal_policy)
        self.node.add_validation(_RoleArnsAsSub(self.code_pipeline))
        # The pipeline reads its role's ARN (GetAtt), so it waits for the role; it must wait for the policy too.
        depend_on_role_policy(self.code_pipeline, self.code_pipeline.role)
        self.code_pipeline.notify_on(
            "Notifications",
            self.topic,
            events=[
                codepipeline.PipelineNotificationEvents.PIPELINE_EXECUTION_FAILED,
                codepipeline.PipelineNotificationEvents.ACTION_EXECUTION_FAILED,
                codepipeline.PipelineNotificationEvents.MANUAL_APPROVAL_NEEDED,
            ],
        )
        # In this order: the rewrites make the final policies, whose wildcards are then acknowledged.
        self.node.add_validation(_UseConnectionActions(self))
        self.node.add_validation(_ScopeReplicationKeyGrants(self.code_pipeline))
        self.node.add_validation(
            _AcknowledgePipelineWildcards(
                self,
                [
                    self.artifact_bucket,
                    *(s.replication_bucket for s in self.code_pipeline.cross_region_support.values()),
                ],
                [self.artifact_key, self.topic.master_key],
                replicating=self.code_pipeline,
            )
        )

    # ------------------------------------------------------------------ steps

    def _synth_step(
        self,
        test_commands: Sequence[str],
        synth_commands: Sequence[str],
        records: Mapping[str, str],
        cdk_json: str,
        context_key: str,
        build_image: codebuild.IBuildImage,
        python_version: str,
    ) -> pipelines.CodeBuildStep:
        commands = list(test_commands)
        statements: list[iam.PolicyStatement] = []
        if records:
            pin = ["python3 -m cdk_mlops.delivery_steps pin-models", f"--cdk-json {cdk_json}"]
            pin += [f"--context-key {context_key}"] + [f"--record {name}={p}" for name, p in sorted(records.items())]
            commands += [*self._install, " ".join(pin)]
            statements.append(
                iam.PolicyStatement(
                    actions=["ssm:GetParameter"],
                    resources=[_parameter_arn(self, p) for _, p in sorted(records.items())],
                )
            )
        commands += list(synth_commands)
        return pipelines.CodeBuildStep(
            "Synth",
            input=self._pipeline_source,
            commands=commands,
            primary_output_directory="cdk.out",
            build_environment=codebuild.BuildEnvironment(
                build_image=build_image, compute_type=codebuild.ComputeType.MEDIUM
            ),
            partial_build_spec=codebuild.BuildSpec.from_object(_build_spec(python_version=python_version, cache=True)),
            cache=codebuild.Cache.bucket(self.artifact_bucket, prefix="cache/synth"),
            role_policy_statements=statements or None,
            timeout=Duration.minutes(90),
        )

    def _add_target(
        self,
        target: DeliveryTarget,
        stage_factory: Callable[[Construct, DeliveryTarget], cdk.Stage],
        on_stage: Callable[[cdk.Stage, DeliveryTarget, DeliveryAccess], None] | None,
        *,
        first: bool,
        environment: codebuild.BuildEnvironment,
    ) -> None:
        stage = stage_factory(self, target)
        problems: list[str] = []
        if not isinstance(stage, cdk.Stage):
            raise ConfigurationError(self, f"stage_factory returned {stage!r} for {target.name}, not a cdk.Stage")
        if (stage.account, stage.region) != (target.account, target.region):
            problems.append(
                f"the stage for {target.name} deploys to {stage.account}/{stage.region}, not to the target's "
                f"{target.account}/{target.region}; create it with env=target.env"
            )
        stacks = [c for c in stage.node.find_all() if isinstance(c, cdk.Stack) and cdk.Stage.of(c) is stage]
        if not stacks:
            problems.append(f"the stage for {target.name} holds no stack")
        if problems:
            raise ConfigurationError(self, problems)

        access_stack = cdk.Stack(
            stage,
            "DeliveryAccess",
            description=f"The role the delivery pipelines' build steps assume in {target.name}",
            termination_protection=any(s.termination_protection for s in stacks),
        )
        access = DeliveryAccess(
            access_stack,
            "Access",
            role_name=access_role_name(self._role_prefix, target.name),
            trusted_account=Stack.of(self).account,
            environment=target.name,
        )
        access.allow_describe_stacks([*stacks, access_stack])
        trainings = [c for c in stage.node.find_all() if isinstance(c, _PipelineResources)]
        endpoints = [c for c in stage.node.find_all() if isinstance(c, ModelEndpoint)]
        for training in trainings:
            access.allow_describe_training(training)
        for endpoint in endpoints:
            access.allow_describe_endpoint(endpoint.endpoint_name)
        checks = self._retrain_checks(stage, trainings)
        if checks:
            access.allow_retrain_requests()
        if on_stage is not None:
            on_stage(stage, target, access)

        role = iam.Role(
            self,
            f"{target.construct_id}StepsRole",
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
            description=f"The post-deploy steps of {target.name}: assume its delivery access role, keep its records",
        )
        access_arn = _role_arn(target.account, access_role_name(self._role_prefix, target.name))
        role.add_to_policy(iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[access_arn]))
        record_names = [revision_record_name(self._prefix, target.name)]
        record_names += [training_record_name(self._prefix, target.name, c.pipeline_name) for c in checks]
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameter", "ssm:PutParameter"],
                resources=[_parameter_arn(self, n) for n in record_names],
            )
        )

        verify = self._verify_step(target, stage, access_stack, stacks, trainings, endpoints, role, access_arn)
        post: list[pipelines.Step] = [verify]
        if checks:
            retrain = self._retrain_step(target, checks, role, access_arn, environment)
            retrain.add_step_dependency(verify)
            post.append(retrain)
            self.retrain_steps[target.name] = retrain
        pre: list[pipelines.Step] = [self.security_step] if first else []
        if target.manual_approval:
            approval = pipelines.ManualApprovalStep(
                f"Approve{target.construct_id}",
                comment=f"Deploy this revision to {target.name} ({target.account}/{target.region})?",
            )
            if first:
                approval.add_step_dependency(self.security_step)
            pre.append(approval)
        self.pipeline.add_stage(stage, pre=pre or None, post=post)

        self.stages[target.name] = stage
        self.access[target.name] = access
        self.step_roles[target.name] = role
        self.verify_steps[target.name] = verify
        self.fingerprints[target.name] = {c.pipeline_name: c.fingerprint for c in checks}

    def _retrain_checks(self, stage: cdk.Stage, trainings: Sequence[_PipelineResources]) -> list[_RetrainCheck]:
        """One check per training pipeline that a retrain trigger starts; fingerprinted now, at synth."""
        triggers = [c for c in stage.node.find_all() if isinstance(c, RetrainTrigger)]
        checks: list[_RetrainCheck] = []
        for training in trainings:
            trigger = next((t for t in triggers if t.pipeline_name == training.pipeline_name), None)
            if trigger is None:
                cdk.Annotations.of(training).add_warning_v2(
                    "cdk-mlops:delivery-no-retrain-trigger",
                    "no RetrainTrigger starts this pipeline, so the delivery pipeline cannot retrain it when its "
                    "ML code changes; add a RetrainTrigger with its pipeline_name",
                )
                continue
            definition = Stack.of(training).resolve(training.definition)
            scripts = getattr(training, "scripts", {})
            hashes = [asset.asset_hash for asset in scripts.values()]
            checks.append(
                _RetrainCheck(training.pipeline_name, trigger.datasets[0], training_fingerprint(definition, hashes))
            )
        return checks

    def _verify_step(
        self,
        target: DeliveryTarget,
        stage: cdk.Stage,
        access_stack: cdk.Stack,
        stacks: Sequence[cdk.Stack],
        trainings: Sequence[_PipelineResources],
        endpoints: Sequence[ModelEndpoint],
        role: iam.IRole,
        access_arn: str,
    ) -> pipelines.CodeBuildStep:
        words = [
            "python3 -m cdk_mlops.delivery_steps verify",
            f"--environment {target.name}",
            f"--region {target.region}",
            f"--role-arn {access_arn}",
        ]
        for stack in [*stacks, access_stack]:
            outputs = [
                str(stack.resolve(stack.get_logical_id(c)))
                for c in stack.node.find_all()
                if isinstance(c, cdk.CfnOutput)
            ]
            words.append(f"--stack {stack.stack_name}:{','.join(sorted(outputs))}".rstrip(":"))
        words += [f"--pipeline {t.pipeline_name}" for t in trainings]
        words += [f"--endpoint {e.endpoint_name}" for e in endpoints]
        words += [
            f"--revision-record {revision_record_name(self._prefix, target.name)}",
            f'--revision "{self._source._revision_kind()}:$SOURCE_REVISION"',
        ]
        return pipelines.CodeBuildStep(
            f"Verify{target.construct_id}",
            input=self._pipeline_source,
            install_commands=list(self._install),
            commands=[" ".join(words)],
            env={"SOURCE_REVISION": self._pipeline_source.source_attribute(self._source._revision_attribute())},
            role=role,
            partial_build_spec=codebuild.BuildSpec.from_object(_build_spec(python_version=self._python)),
        )

    def _retrain_step(
        self,
        target: DeliveryTarget,
        checks: Sequence[_RetrainCheck],
        role: iam.IRole,
        access_arn: str,
        environment: codebuild.BuildEnvironment,
    ) -> pipelines.CodeBuildStep:
        commands = [
            " ".join(
                [
                    "python3 -m cdk_mlops.delivery_steps retrain",
                    f"--environment {target.name}",
                    f"--region {target.region}",
                    f"--role-arn {access_arn}",
                    f"--record {training_record_name(self._prefix, target.name, check.pipeline_name)}",
                    f"--fingerprint {check.fingerprint}",
                    f"--pipeline {check.pipeline_name}",
                    f"--dataset {check.dataset}",
                ]
            )
            for check in checks
        ]
        return pipelines.CodeBuildStep(
            f"Retrain{target.construct_id}",
            input=self._pipeline_source,
            install_commands=list(self._install),
            commands=commands,
            role=role,
            build_environment=environment,
            partial_build_spec=codebuild.BuildSpec.from_object(_build_spec(python_version=self._python)),
        )
