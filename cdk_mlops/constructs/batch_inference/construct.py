"""BatchInference: score each version of a dataset with the environment's approved model (Batch Transform).

The construct checks its arguments, ships ``ml/prepare_batch.py`` as an asset, builds the scoring
definition with :mod:`cdk_mlops.pipeline_definition.scoring`, deploys it as an
``AWS::SageMaker::Pipeline`` run by its own role, grants the two roles what the steps do
(:mod:`~cdk_mlops.constructs.batch_inference.grants`), starts it through a
:class:`~cdk_mlops.constructs.retrain_trigger.RetrainTrigger` without champion lookup, and
alarms on failed and missing runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Final

from aws_cdk import Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_mlops import image_uris
from cdk_mlops.constructs.batch_inference.grants import grant_job_role, grant_pipeline_role
from cdk_mlops.constructs.batch_inference.settings import BatchTransformSettings, missing_run_problems
from cdk_mlops.constructs.common import (
    PIPELINE_METRICS_NAMESPACE,
    SAGEMAKER_NAME,
    job_subnets,
    pipeline_execution_metric,
    sagemaker_image_uri,
)
from cdk_mlops.constructs.data_store_base import IDataStore, environment_problems
from cdk_mlops.constructs.props import checked_props
from cdk_mlops.constructs.retrain_base import powertools_problems
from cdk_mlops.constructs.retrain_trigger import RetrainPolicy, RetrainTrigger
from cdk_mlops.constructs.unique_names import claim
from cdk_mlops.datasets import dataset_name_problems, manifest_prefix
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.ml import PREPARE_BATCH_SCRIPT
from cdk_mlops.pipeline_definition import NO_MANIFEST_KEY, ScriptSource
from cdk_mlops.pipeline_definition.scoring import (
    ScoringSpec,
    build_scoring_definition,
    capture_prefix,
    capture_uri,
    output_prefix,
    scoring_spec_problems,
)

__all__ = ["PIPELINE_METRICS_NAMESPACE", "BatchInference"]

#: CloudWatch namespace of SageMaker Pipelines execution metrics (dimension ``PipelineName``).
_PACKAGE_ARN: Final = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[^/]+/\d+\Z")
# At most this many subnets and security groups in a job's VpcConfig (SageMaker API).
_HOUR: Final = 3600


class BatchInference(Construct):
    """Scores every new version of a dataset with the approved model: a SageMaker pipeline of Batch Transform.

    One data drop gives one scoring run; redelivered events give none. The pipeline
    (``Model`` ► ``PrepareInput`` ► ``Transform``, see :mod:`cdk_mlops.pipeline_definition.scoring`)
    creates a model of ``model_package_arn``, writes the features of exactly the dataset version
    the manifest lists as the transform input, and scores it with Batch Transform. Predictions
    land under ``batch-output/<name>/<DataVersion>/<PipelineExecutionId>/`` with ``lineage.json``
    (which model package, which manifest and digest, which execution); with ``capture`` the
    transform's inputs and outputs are captured under ``batch-capture/<name>/`` for Model Monitor.

    Runs are started by a :class:`RetrainTrigger` (``trigger``) created with
    ``compare_with_champion=False``: it batches object events, snapshots the dataset, starts at
    most one run per data version and per pipeline at a time, and sends the data parameters
    only. A schedule and ``Manual Retrain`` events (``grant_request_scoring``) start runs too.
    A failed execution releases the trigger's lock (its pipeline-status rule), raises
    ``failed_alarm`` and stays in the pipeline's execution history with its failed step; a
    start that keeps failing lands in the trigger's dead-letter queue, which alarms. With a
    schedule, ``missing_run_alarm`` fires when no run succeeded within the schedule's period
    plus slack.

    Example::

        scoring = BatchInference(self, "Scoring", data_store=store, dataset="churn-daily",
                                 name="churn-scoring", model_package_arn=config.model_package_arn,
                                 image_uri=sagemaker_image_uri(self, "xgboost"),
                                 schedule=scheduler.ScheduleExpression.cron(hour="4", minute="0"),
                                 alarm_topic=topic)
        scoring.grant_output_read(reporting_role)

    Attributes:
        batch_name: The name: the pipeline's name and the output and capture prefixes' last part.
        pipeline_name: The pipeline's name (the same as ``batch_name``).
        pipeline_arn: Its ARN.
        pipeline: The ``AWS::SageMaker::Pipeline``.
        definition: The pipeline definition (a dict that may hold tokens).
        model_package_arn: The model package the pipeline scores with by default.
        data_store: The store holding the dataset, the outputs and the capture.
        dataset: The scored dataset.
        output_prefix: Key prefix of every output, ``batch-output/<name>/``.
        capture_uri: ``s3://<bucket>/batch-capture/<name>/``, or None when capture is off.
        role: The job role: what the model, ``PrepareInput`` and the transform run as.
        pipeline_role: What SageMaker Pipelines runs the pipeline as.
        script: ``prepare_batch.py`` as an S3 asset.
        security_groups: The jobs' and the model's security groups, with ``vpc``; empty without.
        trigger: The RetrainTrigger that starts runs.
        failed_alarm: In ALARM when an execution failed.
        missing_run_alarm: In ALARM when no run succeeded in the expected window (with a schedule).
        alarms: Every alarm of this construct and of its trigger.
    """

    @checked_props
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        data_store: IDataStore,
        dataset: str,
        model_package_arn: str,
        name: str,
        image_uri: str,
        schedule: scheduler.ScheduleExpression | None = None,
        score_on_new_data: bool = True,
        score_unchanged_data_on_schedule: bool = False,
        settings: BatchTransformSettings | None = None,
        label_column: str | None = None,
        capture: bool = True,
        policy: RetrainPolicy | None = None,
        missing_run_window: Duration | None = None,
        alarm_topic: sns.ITopic | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        powertools_layer: lambda_.ILayerVersion | None = None,
    ) -> None:
        """Define the scoring pipeline, its trigger and its alarms.

        Args:
            scope: The parent construct.
            id: The construct id.
            data_store: Holds the dataset and its manifests; receives the outputs (under
                ``batch-output/<name>/``) and the capture (under ``batch-capture/<name>/``); its
                key encrypts the job volumes, the outputs and the capture. The model package's
                ``ModelDataUrl`` must be under its ``artifacts/`` prefix (where this library's
                training registers models); for a model trained in another environment's bucket,
                also call ``grant_model_source_read(scoring.role, ...)``.
            dataset: The dataset under ``datasets/`` to score.
            model_package_arn: The approved model package version the environment serves, e.g.
                ``config.model_package_arn``; the ``ModelPackageArn`` parameter's default (a run
                may pass another, which the roles are not allowed to describe).
            name: 1-63 lower-case letters, digits and hyphens: the pipeline's name and the
                last part of the output and capture prefixes.
            image_uri: The model package's container image, e.g. ``sagemaker_image_uri(self,
                "xgboost")``; the job role may pull from its repository only.
            schedule: Score on a schedule too (EventBridge Scheduler). Default: - no schedule;
                new data and ``Manual Retrain`` requests start runs.
            score_on_new_data: A data drop (S3 object events of the dataset, batched by
                ``policy``) starts a run. False leaves the schedule and requests. Default: - True.
            score_unchanged_data_on_schedule: A scheduled run scores the data even when it was
                scored already. Default: - False; the schedule scores versions not yet scored.
            settings: Instance types and count, content and split type, input file size.
                Default: - one ``ml.m5.large`` transform instance, ``text/csv`` split by line.
            label_column: A column ``PrepareInput`` drops when the data has it. Default: - none;
                every column of the data is a feature.
            capture: Capture the transform's inputs and outputs (``DataCaptureConfig``, with an
                inference id) for batch monitoring. Default: - True.
            policy: How data drops are batched into runs (quiet period or commit marker,
                cool-down, daily cap). Default: - the trigger's: a 15 minute quiet period,
                1 hour cool-down, 4 runs a day.
            missing_run_window: With a schedule, how long without a succeeded run raises
                ``missing_run_alarm`` (1 hour to 7 days). Default: - the schedule's period plus 2
                hours, for ``rate(...)`` and hourly, daily or weekly ``cron(...)`` expressions;
                required for other expressions.
            alarm_topic: Where this construct's and its trigger's alarms notify.
                Default: - the alarms have no action.
            removal_policy: For the trigger's table, queues, key and log group. Default: - RETAIN.
            vpc: Run the jobs, the model and the trigger's function in this VPC; its subnets need
                endpoints for S3, ECR, CloudWatch Logs, KMS, STS, SageMaker, SQS and DynamoDB.
                Default: - no VPC.
            vpc_subnets: Subnets of ``vpc`` (at most 16). Default: - the VPC's default selection.
            security_groups: Security groups of the jobs, the model and the trigger (1 to 5).
                Default: - the trigger's own group, and for the jobs a new group with outbound
                HTTPS only.
            powertools_layer: The trigger's Powertools layer. Default: - AWS's managed layer.

        Raises:
            ConfigurationError: listing every invalid argument, before any resource is defined.
        """
        super().__init__(scope, id)
        settings = settings or BatchTransformSettings()
        stack = Stack.of(self)
        problems = [f"dataset: {p}" for p in dataset_name_problems(dataset)]
        problems += data_store.undeclared_problems("dataset", [dataset])
        problems += environment_problems(self, data_store, construct="BatchInference")
        if not Token.is_unresolved(name) and not SAGEMAKER_NAME.match(name):
            problems.append(
                f"name {name!r} is not valid; use 1-63 lower-case letters, digits and hyphens, starting and "
                "ending with a letter or digit (it names the pipeline and the output prefix)"
            )
        if not Token.is_unresolved(model_package_arn) and not _PACKAGE_ARN.match(model_package_arn):
            problems.append(
                f"model_package_arn {model_package_arn!r} is not a model package version ARN; use e.g. "
                "'arn:aws:sagemaker:eu-west-1:111122223333:model-package/churn-models/3'"
            )
        if not Token.is_unresolved(image_uri) and ".dkr.ecr." not in image_uri:
            problems.append(
                f"image_uri {image_uri!r} is not an ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/"
                "<repository>:<tag>); pass the model package's image, e.g. sagemaker_image_uri(self, 'xgboost')"
            )
        problems += settings.problems()
        window, found = missing_run_problems(schedule, missing_run_window)
        problems += found
        subnets, found = job_subnets(vpc, vpc_subnets, security_groups)
        problems += found
        # The trigger checks these too, but only once this construct's resources exist.
        if policy is not None:
            problems += [f"policy: {p}" for p in policy.problems()]
        if powertools_layer is None:
            problems += powertools_problems(stack.region)
        if problems:
            raise ConfigurationError(self, problems)
        claim(self, "pipeline_name", name, "SageMaker pipeline names are unique per account and region")

        self.batch_name = name
        self.pipeline_name = name
        self.pipeline_arn = stack.format_arn(service="sagemaker", resource="pipeline", resource_name=name)
        self.model_package_arn = model_package_arn
        self.data_store = data_store
        self.dataset = dataset
        self.output_prefix = output_prefix(name)
        self.capture_uri: str | None = capture_uri(data_store.bucket.bucket_name, name) if capture else None
        self._alarm_topic = alarm_topic

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Runs the model and the jobs of the {name} scoring pipeline (least privilege)",
        )
        self.pipeline_role = iam.Role(
            self,
            "PipelineRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Runs the {name} scoring pipeline: creates its model and jobs, passes them their role",
        )
        self.security_groups: list[ec2.ISecurityGroup] = []
        if vpc is not None:
            self.security_groups = list(security_groups or [self._security_group(vpc)])
        group_ids = [g.security_group_id for g in self.security_groups]
        self.script = s3_assets.Asset(self, "PrepareScript", path=str(PREPARE_BATCH_SCRIPT))
        processing_image = sagemaker_image_uri(self, image_uris.SKLEARN)

        spec = ScoringSpec(
            name=name,
            role_arn=self.role.role_arn,
            bucket_name=data_store.bucket.bucket_name,
            kms_key_arn=data_store.encryption_key.key_arn,
            model_package_arn=model_package_arn,
            # A job downloads an input object under the last segment of its key (the asset hash + .py).
            prepare_script=ScriptSource(
                s3_uri=self.script.s3_object_url, file_name=self.script.s3_object_key.rsplit("/", 1)[-1]
            ),
            processing_image_uri=processing_image,
            # A well-formed URI of no object: a start without a manifest fails at PrepareInput, naming it.
            default_input_manifest_uri=data_store.s3_uri(f"{manifest_prefix(dataset)}{NO_MANIFEST_KEY}"),
            instance_type=settings.instance_type,
            instance_count=settings.instance_count,
            processing_instance_type=settings.processing_instance_type,
            content_type=settings.content_type,
            split_type=settings.split_type,
            label_column=label_column,
            rows_per_file=settings.rows_per_file,
            capture=capture,
            subnet_ids=tuple(subnets),
            security_group_ids=tuple(group_ids),
            experiments=Token.is_unresolved(stack.region) or image_uris.has_experiments(stack.region),
        )
        spec_problems = scoring_spec_problems(spec)
        if spec_problems:
            raise ConfigurationError(self, spec_problems)
        self.definition = build_scoring_definition(spec)
        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=name,
            pipeline_description=f"Scores versions of the {dataset} dataset with the approved model (Batch Transform)",
            role_arn=self.pipeline_role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": stack.to_json_string(self.definition)},
        )

        grant_pipeline_role(self, self.pipeline_role, job_role=self.role, model_package_arn=model_package_arn)
        grant_job_role(
            self,
            self.role,
            data_store=data_store,
            dataset=dataset,
            output_prefix=self.output_prefix,
            capture_prefix=capture_prefix(name) if capture else None,
            model_package_arn=model_package_arn,
            images=[image_uri, processing_image],
            script=self.script,
            subnet_ids=subnets,
            security_group_ids=group_ids,
        )

        self.trigger = RetrainTrigger(
            self,
            "Trigger",
            data_store=data_store,
            datasets=[dataset],
            pipeline_name=name,
            compare_with_champion=False,
            retrain_on_new_data=score_on_new_data,
            policy=policy,
            schedule=schedule,
            retrain_unchanged_data_on_schedule=score_unchanged_data_on_schedule,
            # Scoring is not retraining: monitor violations and drift alarms do not start it.
            retrain_on_violations=(),
            alarm_topic=alarm_topic,
            removal_policy=removal_policy,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=security_groups,
            powertools_layer=powertools_layer,
        )

        self.failed_alarm = self._alarm(
            "FailedAlarm",
            f"{self.node.path}: a scoring execution of {name} failed; its failed step and reason are in the "
            "pipeline's execution history, and the trigger has released its lock. Fix the cause, then send a "
            "Manual Retrain event for the dataset to score the version again",
            self.metric_executions_failed(),
            threshold=0,
            comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            missing=cw.TreatMissingData.NOT_BREACHING,
        )
        self.missing_run_alarm: cw.Alarm | None = None
        if window is not None:
            # Hourly sums over the window: the alarm fires only when every hour of it had no success.
            periods = max(1, math.ceil(window.to_seconds() / _HOUR))
            self.missing_run_alarm = self._alarm(
                "MissingRunAlarm",
                f"{self.node.path}: no scoring execution of {name} succeeded in {periods} hours; check that the "
                "dataset received new data, and the trigger's and the pipeline's alarms",
                self.metric_executions_succeeded(period=Duration.hours(1)),
                threshold=1,
                comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=periods,
                missing=cw.TreatMissingData.BREACHING,
            )
        self.alarms: list[cw.Alarm] = [
            self.failed_alarm,
            *([self.missing_run_alarm] if self.missing_run_alarm else []),
            self.trigger.dead_letter_alarm,
            self.trigger.errors_alarm,
        ]

    def _security_group(self, vpc: ec2.IVpc) -> ec2.SecurityGroup:
        group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description=f"{self.node.path}: the jobs and the model of scoring pipeline {self.batch_name}",
            allow_all_outbound=False,
        )
        # The AWS APIs (VPC endpoints, the S3 gateway) are all HTTPS.
        group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to the AWS APIs")
        return group

    def _alarm(
        self,
        id: str,
        description: str,
        metric: cw.Metric,
        *,
        threshold: float,
        comparison: cw.ComparisonOperator,
        evaluation_periods: int,
        missing: cw.TreatMissingData,
    ) -> cw.Alarm:
        alarm = cw.Alarm(
            self,
            id,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            treat_missing_data=missing,
        )
        if self._alarm_topic is not None:
            alarm.add_alarm_action(cw_actions.SnsAction(self._alarm_topic))
        return alarm

    # ------------------------------------------------------------------ grants

    def grant_output_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let a principal read the predictions, their inputs and ``lineage.json`` (``batch-output/<name>/``)."""
        return self.data_store.grant_read(grantee, prefix=self.output_prefix)

    def grant_request_scoring(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let a principal request a run by sending a ``Manual Retrain`` message for the dataset to the trigger."""
        return self.trigger.grant_request_retrain(grantee)

    # ------------------------------------------------------------------ metrics

    def _metric(self, method: str, metric_name: str, options: dict[str, Any]) -> cw.Metric:
        return pipeline_execution_metric(self, method, metric_name, self.pipeline_name, options)

    def metric_executions_started(self, **options: Any) -> cw.Metric:
        """Scoring executions started, summed over 5 minutes (``options``: any ``cloudwatch.MetricOptions``)."""
        return self._metric("metric_executions_started", "ExecutionStarted", options)

    def metric_executions_succeeded(self, **options: Any) -> cw.Metric:
        """Scoring executions that succeeded, summed over 5 minutes."""
        return self._metric("metric_executions_succeeded", "ExecutionSucceeded", options)

    def metric_executions_failed(self, **options: Any) -> cw.Metric:
        """Scoring executions that failed, summed over 5 minutes."""
        return self._metric("metric_executions_failed", "ExecutionFailed", options)
