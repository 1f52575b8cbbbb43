"""ModelMonitor: the construct that wires the monitoring jobs, schedules, events, alarms and dashboard of a model.

The model is an endpoint (its captured traffic) or a batch transform job (its captured
batch data, see :mod:`.batch`).

Each monitoring type's module builds its job definition; :mod:`.schedule` runs it on a
schedule; :mod:`.access` grants the jobs' role; :mod:`.violations` routes the executions'
events; :mod:`.alarms` watches them. This module validates the arguments, decides the names,
keys and network, and exposes every resource and metric.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

from aws_cdk import Annotations, CfnResource, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct, IConstruct

from cdk_mlops.constructs.common import SAGEMAKER_NAME, metric_props, sagemaker_image_uri
from cdk_mlops.constructs.data_store_base import IDataStore, environment_problems
from cdk_mlops.constructs.model_endpoint import IModelEndpoint
from cdk_mlops.constructs.model_monitor.access import BATCH_METRIC_NAMESPACES, grant_job_access
from cdk_mlops.constructs.model_monitor.alarms import define_alarms
from cdk_mlops.constructs.model_monitor.baselines import Baselines
from cdk_mlops.constructs.model_monitor.batch import (
    BatchSource,
    BatchTransformCapture,
    CapturedDatasetFormat,
    IBatchTransformCapture,
    batch_network,
)
from cdk_mlops.constructs.model_monitor.checks import whole_problem
from cdk_mlops.constructs.model_monitor.data_quality import DataQualitySettings, define_data_quality_job
from cdk_mlops.constructs.model_monitor.job import JobContext, job_network, required
from cdk_mlops.constructs.model_monitor.model_bias import ModelBiasSettings, define_model_bias_job
from cdk_mlops.constructs.model_monitor.model_explainability import (
    NETWORK_NOTE,
    ModelExplainabilitySettings,
    define_model_explainability_job,
)
from cdk_mlops.constructs.model_monitor.model_quality import ModelQualitySettings, define_model_quality_job
from cdk_mlops.constructs.model_monitor.monitoring_type import MonitoringType
from cdk_mlops.constructs.model_monitor.schedule import define_schedule, metric_period, schedule_name
from cdk_mlops.constructs.model_monitor.served_config import ServedAnalysisConfig
from cdk_mlops.constructs.model_monitor.violations import METRICS_NAMESPACE, define_violation_routing
from cdk_mlops.constructs.props import checked_props
from cdk_mlops.datasets import dataset_name_problems
from cdk_mlops.errors import ConfigurationError

__all__ = ["ModelMonitor"]

_Settings = DataQualitySettings | ModelQualitySettings | ModelBiasSettings | ModelExplainabilitySettings
#: The warning on a batch monitor that runs hourly, which a daily batch job's capture does not fill.
BATCH_SCHEDULE_WARNING = "cdk-mlops:monitor-batch-schedule"


class ModelMonitor(Construct):
    """Scheduled Model Monitor jobs on an endpoint's or a batch job's captured data, with alarms that feed retraining.

    One job definition and one monitoring schedule per requested type (data
    quality, model quality, bias, explainability), each on its own schedule,
    comparing the captured traffic with the baselines of the model the
    endpoint serves. Reports land under ``monitoring/<endpoint>/<type>/`` of
    the data store, encrypted with its key; job volumes use the construct's
    key; jobs run in the endpoint's VPC with its network isolation. With
    ``batch_transform=`` instead of ``endpoint=``, the jobs read a batch
    transform job's captured data (``BatchTransformInput``), reports land under
    ``monitoring/<batch name>/<type>/``, and the jobs run in ``vpc`` or outside
    any VPC, network-isolated by default. For explainability, a deploy-time
    custom resource copies the analysis configuration with ``predictor.model_name``
    set to the served model (``analysis_config``), which Clarify's shadow
    endpoint runs. Every
    completed execution that found violations raises the type's violation alarm
    (to the topic, for a person) and becomes a ``cdk-mlops.monitor`` / ``Model
    Monitor Violation`` event on the default bus (the retrain trigger's input,
    which retrains on data- and model-quality violations by default) through an
    Express state machine without code; failed executions notify the topic; an
    alarm fires when no execution completes. Opt-in alarms
    on per-feature drift and model-quality metrics are listed in
    ``drift_alarms`` for ``RetrainTrigger(drift_alarms=...)``.

    Example::

        package = sagemaker_client.describe_model_package(ModelPackageName=arn)   # at deploy time, not synth
        monitor = ModelMonitor(self, "Monitor", endpoint=endpoint, data_store=store, dataset="churn",
                               data_quality=DataQualitySettings(
                                   baselines=Baselines.from_model_package(package),
                                   drift_thresholds={"total_charges": 0.2}))
        RetrainTrigger(self, "Retrain", ..., drift_alarms=monitor.drift_alarms)

    Attributes:
        endpoint_name: The monitored endpoint; None for a batch job.
        batch_name: The monitored batch job; None for an endpoint.
        source_name: The endpoint's or batch job's name.
        data_store: The store holding captured data, ground truth and reports.
        types: The monitoring types, in ``MonitoringType`` order.
        schedule_names: Monitoring schedule name per type.
        schedule_arns: Monitoring schedule ARN per type.
        output_uris: ``s3://<store>/monitoring/<endpoint or batch name>/<type>/`` per type.
        role: The monitoring jobs' execution role.
        job_security_groups: The security group a batch monitor created for its jobs
            in ``vpc``; empty otherwise.
        encryption_key: Encrypts job volumes, the dead-letter queue and the
            created topic.
        alarm_topic: Where alarms and failed executions notify.
        job_definitions: The ``AWS::SageMaker::*JobDefinition`` per type.
        analysis_config: The explainability configuration naming the served model
            (:class:`ServedAnalysisConfig`); None without explainability or a model to name.
        schedules: The ``AWS::SageMaker::MonitoringSchedule`` per type.
        completed_rules: EventBridge rule per type: completed executions → the violation publisher.
        failed_rules: EventBridge rule per type: failed or stopped executions → the topic.
        violation_publisher: Express state machine that turns executions with
            violations into ``Model Monitor Violation`` events.
        violation_log_group: The state machine's execution log.
        dead_letter_queue: Completed-execution events EventBridge could not deliver.
        violation_alarms: Per type, in ALARM when an execution found violations
            in the last schedule interval (``Violations`` >= 1); notifies the topic.
            Not in ``drift_alarms``: which violations retrain is the retrain
            trigger's ``retrain_on_violations``.
        execution_alarms: Per type, in ALARM when no execution completed for
            ``missing_execution_periods`` schedule intervals (failed or missing).
        feature_drift_alarms: Opt-in drift alarm per feature.
        model_quality_alarms: Opt-in alarm per model-quality metric.
        drift_alarms: Feature-drift and model-quality alarms, for the retrain trigger.
        publisher_failed_alarm: In ALARM when the violation publisher fails.
        dead_letter_alarm: In ALARM when an event is in the dead-letter queue.
    """

    @checked_props
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint: IModelEndpoint | None = None,
        batch_transform: IBatchTransformCapture | BatchTransformCapture | None = None,
        data_store: IDataStore,
        data_quality: DataQualitySettings | None = None,
        model_quality: ModelQualitySettings | None = None,
        model_bias: ModelBiasSettings | None = None,
        model_explainability: ModelExplainabilitySettings | None = None,
        dataset: str | None = None,
        name_prefix: str | None = None,
        enable_network_isolation: bool | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        dataset_format: CapturedDatasetFormat | None = None,
        batch_data_prefixes: Sequence[str] | None = None,
        alarm_topic: sns.ITopic | None = None,
        encryption_key: kms.IKey | None = None,
        missing_execution_periods: int = 2,
        add_to_endpoint_dashboard: bool = True,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """Define the monitor.

        Args:
            scope: The parent construct.
            id: The construct id.
            endpoint: The endpoint to monitor; it must capture data
                (``ModelEndpoint(data_capture=...)``), or an endpoint created
                elsewhere (``ModelEndpoint.from_endpoint_name(..., data_store=...)``).
                Default: - none; then ``batch_transform`` is required (exactly one of the two).
            batch_transform: The batch transform job to monitor: a construct with the
                attributes of ``IBatchTransformCapture`` whose ``capture_uri`` is set, or
                ``BatchTransformCapture.from_capture_uri(...)`` for a job created elsewhere.
                Default: - none; then ``endpoint`` is required.
            data_store: The store the endpoint or batch job captures into; reports are
                written under ``monitoring/<endpoint or batch name>/<type>/`` and ground
                truth is read from it.
            data_quality: Monitor data quality. Default: - not monitored.
            model_quality: Monitor model quality. Default: - not monitored.
            model_bias: Monitor bias drift. Default: - not monitored.
            model_explainability: Monitor feature attribution drift. Default: - not monitored.
                At least one of the four is required.
            dataset: The dataset a violation retrains (``detail.dataset`` of the
                event). Default: - omitted; the retrain trigger retrains its first dataset.
            name_prefix: Prefix of schedule and alarm names (lower case). Default: - the endpoint name.
            enable_network_isolation: Jobs make no network calls. Default: - the
                endpoint model's setting, True for an imported endpoint (explainability
                jobs never: Clarify calls the SageMaker API).
            security_groups: Security groups of the jobs in the endpoint's VPC (or in
                ``vpc`` for a batch job). Default: - the endpoint model's security groups;
                for a batch job in ``vpc``, a new group without ingress.
            vpc: Batch jobs only: the VPC the monitoring jobs run in. Default: - no VPC
                (the jobs still run network-isolated unless ``enable_network_isolation=False``).
            vpc_subnets: Batch jobs only: the jobs' subnets in ``vpc``. Default: - the
                VPC's private subnets.
            dataset_format: Batch jobs only: how the captured data is encoded. Default: -
                ``CapturedDatasetFormat.csv()``, CSV without a header (what a ``text/csv``
                transform captures).
            batch_data_prefixes: Batch jobs only, and required with them: the key prefixes
                in ``data_store`` of the transform's input and output, which the capture's
                manifests list and the jobs read (e.g. the scored dataset's prefix and the
                job's output prefix).
            alarm_topic: Every alarm and failed execution notifies it. Default: - a
                new topic encrypted with ``encryption_key``.
            encryption_key: Encrypts job volumes, the dead-letter queue and a
                created topic. Default: - a new key with rotation on.
            missing_execution_periods: Schedule intervals without a completed
                execution before an execution alarm fires (2 to 10). Default: - 2.
            add_to_endpoint_dashboard: Add the monitoring widgets to the
                endpoint's dashboard when it is in this construct's stack.
                Default: - True. A batch job has no dashboard: call
                ``add_to_dashboard`` with one of yours.
            log_retention: How long the violation publisher's log is kept. Default: - 3 months.
            removal_policy: For the created key, queue and log group. Default: - RETAIN.

        Raises:
            ConfigurationError: listing every invalid argument, before any
                resource is defined.
        """
        super().__init__(scope, id)
        requested: dict[MonitoringType, _Settings] = {
            t: s
            for t, s in (
                (MonitoringType.DATA_QUALITY, data_quality),
                (MonitoringType.MODEL_QUALITY, model_quality),
                (MonitoringType.MODEL_BIAS, model_bias),
                (MonitoringType.MODEL_EXPLAINABILITY, model_explainability),
            )
            if s is not None
        }
        source_problems = self._source_problems(
            endpoint,
            batch_transform,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            dataset_format=dataset_format,
            batch_data_prefixes=batch_data_prefixes,
        )
        if source_problems:  # everything below depends on the source
            raise ConfigurationError(self, source_problems)
        batch = None if batch_transform is None else BatchSource.of(batch_transform)
        captured_format = dataset_format or CapturedDatasetFormat.csv()
        source_name = endpoint.endpoint_name if endpoint is not None else cast(BatchSource, batch).name
        prefix = source_name if name_prefix is None else name_prefix
        problems = self._problems(endpoint, requested, prefix, dataset, missing_execution_periods, security_groups)
        if batch is not None:
            problems += batch.problems(data_store, requested, captured_format, batch_data_prefixes)
            if security_groups is not None and vpc is None:
                problems.append("security_groups need vpc=...; pass the VPC the jobs run in, or remove security_groups")
        problems += environment_problems(self, data_store, construct="ModelMonitor")
        if problems:
            raise ConfigurationError(self, problems)

        stack = Stack.of(self)
        self.endpoint_name: str | None = None if endpoint is None else endpoint.endpoint_name
        self.batch_name: str | None = None if batch is None else batch.name
        self.source_name: str = source_name
        self.types: tuple[MonitoringType, ...] = tuple(requested)
        self._settings = requested
        self._prefix = prefix
        self.schedule_names: dict[MonitoringType, str] = {t: schedule_name(prefix, t) for t in requested}
        self.schedule_arns: dict[MonitoringType, str] = {
            t: stack.format_arn(service="sagemaker", resource="monitoring-schedule", resource_name=n)
            for t, n in self.schedule_names.items()
        }
        monitoring_prefix = f"{data_store.monitoring_prefix}{source_name}/"
        self.data_store = data_store
        self._monitoring_prefix = monitoring_prefix
        self.output_uris: dict[MonitoringType, str] = {
            t: data_store.s3_uri(f"{monitoring_prefix}{t.slug}/") for t in requested
        }

        self.encryption_key: kms.IKey = encryption_key or kms.Key(
            self,
            "Key",
            description=f"Encrypts the {self.node.path} job volumes, dead-letter queue and notifications",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.alarm_topic: sns.ITopic = alarm_topic or self._topic()
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=(
                f"Runs the Model Monitor jobs of the {source_name} endpoint (least privilege)"
                if batch is None
                else f"Runs the Model Monitor jobs of the {source_name} batch transform job (least privilege)"
            ),
        )
        images = self._images(requested)
        self.job_security_groups: list[ec2.ISecurityGroup] = []
        batch_input: dict[str, Any] | None = None
        if endpoint is not None:
            vpc_config, isolated = job_network(endpoint, enable_network_isolation, security_groups)
            grant_job_access(
                self,
                self.role,
                capture_prefix=f"{data_store.capture_prefix}{endpoint.endpoint_name}/",
                data_store=data_store,
                monitoring_prefix=monitoring_prefix,
                requested=requested,
                images=images,
                volume_key=self.encryption_key,
                vpc_config=vpc_config,
            )
        else:
            batch = cast(BatchSource, batch)
            vpc_config, isolated, created = batch_network(
                self,
                vpc=vpc,
                vpc_subnets=vpc_subnets,
                security_groups=security_groups,
                isolation=enable_network_isolation,
                egress_https=MonitoringType.MODEL_EXPLAINABILITY in requested,
            )
            self.job_security_groups = created if security_groups is None else []
            grant_job_access(
                self,
                self.role,
                capture_prefix=batch.capture_key_prefix(),
                data_store=data_store,
                monitoring_prefix=monitoring_prefix,
                requested=requested,
                images=images,
                volume_key=self.encryption_key,
                vpc_config=vpc_config,
                captured_object_prefixes=list(batch_data_prefixes or ()),
                metric_namespaces=BATCH_METRIC_NAMESPACES,
            )
            batch_input = {
                "dataCapturedDestinationS3Uri": batch.capture_uri,
                "datasetFormat": captured_format.to_cfn(),
            }
            self._warn_hourly_batch_schedules(requested)

        self._scopes: dict[MonitoringType, Construct] = {}
        self.analysis_config: ServedAnalysisConfig | None = None
        self.job_definitions: dict[MonitoringType, CfnResource] = {}
        self.schedules: dict[MonitoringType, sagemaker.CfnMonitoringSchedule] = {}
        for monitoring_type, settings in requested.items():
            job = JobContext(
                role_arn=self.role.role_arn,
                endpoint_name=self.endpoint_name,
                volume_key_arn=self.encryption_key.key_arn,
                report_key_arn=data_store.encryption_key.key_arn,
                report_uri=self.output_uris[monitoring_type],
                image_uri=images[monitoring_type],
                vpc_config=vpc_config,
                network_isolation=isolated,
                batch_input=batch_input,
            )
            if isinstance(settings, ModelExplainabilitySettings):
                settings = self._served_explainability(
                    endpoint, settings, data_store, vpc_config, log_retention, removal_policy
                )
            self._define_job(endpoint, monitoring_type, settings, job)

        routing = define_violation_routing(
            self,
            scopes=self._scopes,
            schedule_names=self.schedule_names,
            schedule_arns=self.schedule_arns,
            endpoint_name=self.endpoint_name,
            dataset=dataset,
            batch_name=self.batch_name,
            encryption_key=self.encryption_key,
            alarm_topic=self.alarm_topic,
            log_retention=log_retention,
            removal_policy=removal_policy,
        )
        self.violation_log_group: logs.LogGroup = routing.log_group
        self.violation_publisher = routing.publisher
        self.dead_letter_queue = routing.dead_letter_queue
        self.completed_rules: dict[MonitoringType, events.Rule] = routing.completed_rules
        self.failed_rules: dict[MonitoringType, events.Rule] = routing.failed_rules

        alarms = define_alarms(
            self,
            metrics=self,
            scopes=self._scopes,
            settings=requested,
            prefix=prefix,
            missing_periods=missing_execution_periods,
            publisher=self.violation_publisher,
            dead_letter_queue=self.dead_letter_queue,
            alarm_topic=self.alarm_topic,
        )
        self.violation_alarms: dict[MonitoringType, cw.Alarm] = alarms.violation
        self.execution_alarms: dict[MonitoringType, cw.Alarm] = alarms.execution
        self.feature_drift_alarms: dict[str, cw.Alarm] = alarms.feature_drift
        self.model_quality_alarms: dict[str, cw.Alarm] = alarms.model_quality
        self.drift_alarms: list[cw.IAlarm] = [*self.feature_drift_alarms.values(), *self.model_quality_alarms.values()]
        self.publisher_failed_alarm = alarms.publisher_failed
        self.dead_letter_alarm = alarms.dead_letter

        dashboard = None if endpoint is None else endpoint.dashboard
        if add_to_endpoint_dashboard and dashboard is not None and Stack.of(cast(IConstruct, endpoint)) is stack:
            self.add_to_dashboard(dashboard)

    # ------------------------------------------------------------------ validation

    @staticmethod
    def _source_problems(
        endpoint: IModelEndpoint | None,
        batch_transform: IBatchTransformCapture | BatchTransformCapture | None,
        **batch_only: object,
    ) -> list[str]:
        """Exactly one source; the batch-only arguments only with a batch job."""
        if endpoint is not None and batch_transform is not None:
            return [
                "pass endpoint= or batch_transform=, not both: one monitor watches one model's captured data; "
                "define a second ModelMonitor for the other"
            ]
        if endpoint is None and batch_transform is None:
            return [
                "nothing to read: pass endpoint= (a ModelEndpoint with data capture) or batch_transform= (a batch "
                "inference construct, or BatchTransformCapture.from_capture_uri(...))"
            ]
        if endpoint is not None:
            given = [name for name, value in batch_only.items() if value is not None]
            if given:
                return [
                    f"{', '.join(given)} apply to batch_transform only; an endpoint's jobs take their network from "
                    "its model and read its captured JSON Lines, so remove them"
                ]
        return []

    def _problems(
        self,
        endpoint: IModelEndpoint | None,
        requested: Mapping[MonitoringType, _Settings],
        prefix: str,
        dataset: str | None,
        missing_periods: int,
        security_groups: Sequence[ec2.ISecurityGroup] | None,
    ) -> list[str]:
        found: list[str] = []
        if endpoint is not None and endpoint.capture_uri is None:
            found.append(
                f"endpoint {endpoint.node.path} captures no data, and Model Monitor analyses captured requests; "
                + (
                    "create it with data_capture=DataCaptureSettings(...) (realtime endpoints only)"
                    if endpoint.model is not None
                    else "import it with ModelEndpoint.from_endpoint_name(..., data_store=<the store it captures into>)"
                )
            )
        if not requested:
            found.append(
                "nothing to monitor; pass at least one of data_quality, model_quality, model_bias, model_explainability"
            )
        for monitoring_type, settings in requested.items():
            found += settings.problems()
            if endpoint is not None:
                found += self._stale_baseline_problems(endpoint, monitoring_type, settings.baselines)
        if not Token.is_unresolved(prefix):
            longest = max((len(schedule_name(prefix, t)) for t in requested), default=0)
            if not SAGEMAKER_NAME.match(prefix) or longest > 63:
                found.append(
                    f"name_prefix {prefix!r} must be lower-case letters, digits and hyphens, short enough that "
                    f"'<prefix>-<type>' fits SageMaker's 63 characters (longest here: {longest}); pass a shorter "
                    "name_prefix"
                )
        if dataset is not None and not Token.is_unresolved(dataset):
            found += [f"dataset: {p}" for p in dataset_name_problems(dataset)]
        found += whole_problem("missing_execution_periods", missing_periods, 2, 10)
        if (
            endpoint is not None
            and security_groups is not None
            and (endpoint.model is None or endpoint.model.vpc_config is None)
        ):
            found.append("security_groups need an endpoint in a VPC; the endpoint has none, remove security_groups")
        return found

    @staticmethod
    def _stale_baseline_problems(
        endpoint: IModelEndpoint, monitoring_type: MonitoringType, baselines: Baselines
    ) -> list[str]:
        source = baselines.model_package_arn
        if endpoint.model is None:  # an imported endpoint: the served package is unknown here
            return []
        container = endpoint.model.primary_container
        served = getattr(container, "model_package_name", None)
        if source is None or not isinstance(served, str) or Token.is_unresolved(served):
            return []
        if source.lower() == served.lower():
            return []
        return [
            f"{monitoring_type.value} baselines come from {source}, but the endpoint serves {served}; monitoring "
            "a model against another model's baselines reports stale drift. Take the baselines from the served "
            "package (Baselines.from_model_package of its description)"
        ]

    # ------------------------------------------------------------------ resources

    def _topic(self) -> sns.Topic:
        # EventBridge (failed executions) and CloudWatch alarms publish to the encrypted topic.
        for service in ("events.amazonaws.com", "cloudwatch.amazonaws.com"):
            self.encryption_key.grant(iam.ServicePrincipal(service), "kms:Decrypt", "kms:GenerateDataKey")
        return sns.Topic(self, "AlarmTopic", master_key=self.encryption_key, enforce_ssl=True)

    def _warn_hourly_batch_schedules(self, requested: Mapping[MonitoringType, _Settings]) -> None:
        """Warn when a batch monitor runs hourly: hours without a batch run have no data and fail."""
        intervals = {t: s.schedule.interval for t, s in requested.items()}
        hourly = [t.value for t, i in intervals.items() if i is not None and i.to_hours() == 1]
        if hourly:
            Annotations.of(self).add_warning_v2(
                BATCH_SCHEDULE_WARNING,
                f"{', '.join(hourly)} run hourly on batch data: an execution whose window holds no batch run "
                "fails ('Job inputs had no data') and notifies the topic; unless the batch job runs hourly, "
                "schedule the monitor after it, e.g. MonitorSchedule.daily(hour=<an hour after the job ends>)",
            )

    def _images(self, requested: Mapping[MonitoringType, _Settings]) -> dict[MonitoringType, str]:
        images: dict[MonitoringType, str] = {}
        for monitoring_type, settings in requested.items():
            if isinstance(settings, ModelBiasSettings | ModelExplainabilitySettings):
                images[monitoring_type] = settings.image_uri or sagemaker_image_uri(self, "clarify")
            else:
                images[monitoring_type] = sagemaker_image_uri(self, "model-monitor")
        return images

    def _define_job(
        self, endpoint: IModelEndpoint | None, monitoring_type: MonitoringType, settings: _Settings, job: JobContext
    ) -> None:
        """The type's job definition and the schedule that runs it, under a scope named for the type."""
        scope = Construct(self, monitoring_type.value)
        self._scopes[monitoring_type] = scope
        definition = self._job_definition(scope, settings, job)
        # The definition names the role with Fn::GetAtt, so it already follows the role; its
        # policy and the endpoint (named by a plain string) are not referenced.
        definition.node.add_dependency(self._role_policy())
        if endpoint is not None and endpoint.endpoint is not None:
            definition.node.add_dependency(endpoint.endpoint)
        self.job_definitions[monitoring_type] = definition
        schedule = define_schedule(
            scope,
            name=self.schedule_names[monitoring_type],
            endpoint_name=self.endpoint_name,
            monitoring_type=monitoring_type,
            schedule=settings.schedule,
            job_definition=definition,
        )
        if endpoint is not None and endpoint.endpoint is not None:
            schedule.node.add_dependency(endpoint.endpoint)
        self.schedules[monitoring_type] = schedule

    def _job_definition(self, scope: Construct, settings: _Settings, job: JobContext) -> CfnResource:
        """The job definition of ``settings``' monitoring type, built by that type's module."""
        if isinstance(settings, DataQualitySettings):
            return define_data_quality_job(scope, settings, job)
        if isinstance(settings, ModelQualitySettings):
            return define_model_quality_job(scope, settings, job, self.data_store)
        if isinstance(settings, ModelBiasSettings):
            return define_model_bias_job(scope, settings, job, self.data_store)
        definition = define_model_explainability_job(scope, settings, job)
        Annotations.of(self).add_info(NETWORK_NOTE)
        return definition

    def _served_explainability(
        self,
        endpoint: IModelEndpoint | None,
        settings: ModelExplainabilitySettings,
        data_store: IDataStore,
        vpc_config: Any,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> ModelExplainabilitySettings:
        """``settings`` reading a copy of its analysis configuration that names the served model.

        Without a model to name (an imported endpoint or a batch job, and no ``model_name``), the
        configuration is used as it is, with a warning.
        """
        model_name = settings.model_name
        if model_name is None and endpoint is not None and endpoint.model is not None:
            model_name = endpoint.model.attr_model_name
        if model_name is None:
            Annotations.of(self).add_warning_v2(
                "cdk-mlops:explainability-model-unnamed",
                f"the explainability job of {self.source_name} uses {settings.baselines.analysis_config_uri} as it "
                "is: its predictor.model_name must name a SageMaker model of this account and region, which Clarify's "
                "shadow endpoint serves; set ModelExplainabilitySettings(model_name=...) to have the monitor write it",
            )
            return settings
        self.analysis_config = ServedAnalysisConfig(
            self,
            "ExplainabilityConfig",
            source_uri=required(settings.baselines.analysis_config_uri),
            data_store=data_store,
            key=f"{self._monitoring_prefix}{MonitoringType.MODEL_EXPLAINABILITY.slug}-config/analysis_config.json",
            model_name=model_name,
            instance_type=settings.shadow_instance_type,
            instance_count=settings.shadow_instance_count,
            vpc_config=vpc_config,
            log_retention=log_retention,
            removal_policy=removal_policy,
        )
        baselines = replace(settings.baselines, analysis_config_uri=self.analysis_config.uri)
        return replace(settings, baselines=baselines)

    def _role_policy(self) -> IConstruct:
        """The jobs' role's default policy (the grants below): scheduled jobs need its permissions."""
        return self.role.node.find_child("DefaultPolicy")

    # ------------------------------------------------------------------ dashboard and grants

    def add_to_dashboard(self, dashboard: cw.Dashboard) -> None:
        """Add the monitoring rows to ``dashboard``: violations and executions over time, drift, alarms.

        Called automatically for the endpoint's dashboard when it is in this
        construct's stack. A dashboard in another stack references this
        stack's rules and alarms, so that stack then depends on this one.
        """
        violations = [self.metric_violations(t, label=t.value) for t in self.types]
        completed = [self.metric_completed_executions(t, label=f"{t.value} completed") for t in self.types]
        failed = [self.metric_failed_executions(t, label=f"{t.value} failed") for t in self.types]
        row: list[cw.IWidget] = [
            cw.GraphWidget(title="Model Monitor violations", left=violations, width=12),
            cw.GraphWidget(title="Monitoring executions", left=completed, right=failed, width=12),
        ]
        dashboard.add_widgets(*row)
        details: list[cw.IWidget] = []
        if self.feature_drift_alarms:
            drift = [self.metric_feature_drift(f, label=f) for f in self.feature_drift_alarms]
            details.append(cw.GraphWidget(title="Feature baseline drift", left=drift, width=12))
        if self.model_quality_alarms:
            quality = [self.metric_model_quality(m, label=m) for m in self.model_quality_alarms]
            details.append(cw.GraphWidget(title="Model quality", left=quality, width=12))
        if details:
            dashboard.add_widgets(*details)
        dashboard.add_widgets(cw.AlarmStatusWidget(title="Model Monitor alarms", alarms=self.alarms, width=24))

    def grant_read_reports(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let a principal read the monitoring reports of this endpoint or batch job (e.g. a reporting role)."""
        return self.data_store.grant_read(grantee, prefix=self._monitoring_prefix)

    # ------------------------------------------------------------------ metrics and alarms

    @property
    def alarms(self) -> list[cw.Alarm]:
        """Every alarm this construct created."""
        return [
            *self.violation_alarms.values(),
            *self.execution_alarms.values(),
            *self.feature_drift_alarms.values(),
            *self.model_quality_alarms.values(),
            self.publisher_failed_alarm,
            self.dead_letter_alarm,
        ]

    def metric(self, monitoring_type: MonitoringType, metric_name: str, **options: Any) -> cw.Metric:
        """A metric Model Monitor publishes for one of this construct's schedules.

        Dimensions ``Endpoint`` and ``MonitoringSchedule``, in the type's
        namespace (``aws/sagemaker/Endpoints/data-metrics``, ``model-metrics``,
        ``bias-metrics``, ``explainability-metrics``). On a batch job: dimension
        ``MonitoringSchedule`` only, in ``aws/sagemaker/ModelMonitoring/<kind>-metrics``.
        Bias metrics carry more dimensions; pass them with ``dimensions_map``.

        Args:
            monitoring_type: One of the monitored types.
            metric_name: e.g. ``feature_baseline_drift_total_charges`` or ``accuracy``.
            options: ``cw.MetricOptions`` keywords. Default: - Maximum over one schedule interval.

        Raises:
            ConfigurationError: if this construct does not monitor ``monitoring_type``.
        """
        schedule = self._schedule_name("metric", monitoring_type)
        if self.endpoint_name is None:  # a batch job's schedule: no endpoint dimension
            dimensions = {"MonitoringSchedule": schedule}
            namespace = monitoring_type.batch_namespace
        else:
            dimensions = {"Endpoint": self.endpoint_name, "MonitoringSchedule": schedule}
            namespace = monitoring_type.namespace
        props = metric_props(
            self, "metric", options, dimensions=dimensions, statistic="Maximum", period=self._period(monitoring_type)
        )
        return cw.Metric(namespace=namespace, metric_name=metric_name, **props)

    def metric_feature_drift(self, feature: str, **options: Any) -> cw.Metric:
        """``feature_baseline_drift_<feature>`` (data quality): the distance from the baseline distribution."""
        return self.metric(MonitoringType.DATA_QUALITY, f"feature_baseline_drift_{feature}", **options)

    def metric_model_quality(self, metric_name: str, **options: Any) -> cw.Metric:
        """A model-quality metric such as ``accuracy``, ``auc`` or ``rmse``; Average over one interval."""
        return self.metric(MonitoringType.MODEL_QUALITY, metric_name, **{"statistic": "Average", **options})

    def metric_violations(self, monitoring_type: MonitoringType, **options: Any) -> cw.Metric:
        """Executions of one schedule that found violations, summed per interval.

        The violation publisher counts one per ``Model Monitor Violation`` event it
        puts (namespace ``CdkMlops/ModelMonitor``, dimension ``MonitoringSchedule``);
        ``violation_alarms`` watch it.

        Args:
            monitoring_type: One of the monitored types.
            options: ``cw.MetricOptions`` keywords. Default: - Sum over one schedule interval.

        Raises:
            ConfigurationError: if this construct does not monitor ``monitoring_type``.
        """
        schedule = self._schedule_name("metric_violations", monitoring_type)
        props = metric_props(
            self,
            "metric_violations",
            options,
            dimensions={"MonitoringSchedule": schedule},
            statistic="Sum",
            period=self._period(monitoring_type),
        )
        return cw.Metric(namespace=METRICS_NAMESPACE, metric_name="Violations", **props)

    def metric_completed_executions(self, monitoring_type: MonitoringType, **options: Any) -> cw.Metric:
        """Completed executions of one schedule (with or without violations), summed per interval."""
        self._schedule_name("metric_completed_executions", monitoring_type)
        return self._rule_metric(
            "metric_completed_executions", self.completed_rules[monitoring_type], monitoring_type, options
        )

    def metric_failed_executions(self, monitoring_type: MonitoringType, **options: Any) -> cw.Metric:
        """Failed or stopped executions of one schedule, summed per interval."""
        self._schedule_name("metric_failed_executions", monitoring_type)
        return self._rule_metric(
            "metric_failed_executions", self.failed_rules[monitoring_type], monitoring_type, options
        )

    def _rule_metric(
        self, method: str, rule: events.Rule, monitoring_type: MonitoringType, options: dict[str, Any]
    ) -> cw.Metric:
        props = metric_props(
            self,
            method,
            options,
            dimensions={"RuleName": rule.rule_name},
            statistic="Sum",
            period=self._period(monitoring_type),
        )
        return cw.Metric(namespace="AWS/Events", metric_name="TriggeredRules", **props)

    def _schedule_name(self, method: str, monitoring_type: MonitoringType) -> str:
        """The schedule of ``monitoring_type``; an error naming the monitored types if there is none."""
        if monitoring_type not in self.schedule_names:
            monitored = ", ".join(f"MonitoringType.{t.name}" for t in self.schedule_names)
            raise ConfigurationError(
                self,
                f"{method}: this monitor has no {monitoring_type.value} schedule, so it has no such metric; it "
                f"monitors {monitored} (add {monitoring_type.name.lower()}= settings to monitor it)",
            )
        return self.schedule_names[monitoring_type]

    def _period(self, monitoring_type: MonitoringType) -> Duration:
        return metric_period(self._settings[monitoring_type].schedule)
