"""What a user sets: problem types and metrics, ``TrainingSettings``, ``PipelineSpec``, and their checks.

:func:`training_settings_problems` and :func:`pipeline_spec_problems` return one message per
problem (value, why, fix) for ``ConfigurationError``; CDK tokens are never rejected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from cdk_mlops.pipeline_definition.names import APPROVAL_STATUSES, _words

# --------------------------------------------------------------------------------------------
# Problem types and metrics
# --------------------------------------------------------------------------------------------


class ProblemType(StrEnum):
    """What the model predicts; it decides the metrics and the default hyperparameters."""

    BINARY_CLASSIFICATION = "binary_classification"
    REGRESSION = "regression"

    @property
    def metrics_key(self) -> str:
        """Top-level key of the model-quality metrics JSON (``binary_classification_metrics``)."""
        return f"{self.value}_metrics"

    @property
    def monitor_problem_type(self) -> str:
        """Model Monitor's name of the problem type (``BinaryClassification``, ``Regression``).

        The ``problem_type`` of the model-quality analyzer and of a model-quality job definition.
        """
        return _MONITOR_PROBLEM_TYPES[self]


# SageMaker's MonitorProblemType of each problem type (MulticlassClassification has no
# counterpart here: the pipeline trains binary classifiers and regressors only).
_MONITOR_PROBLEM_TYPES: Final = MappingProxyType(
    {ProblemType.BINARY_CLASSIFICATION: "BinaryClassification", ProblemType.REGRESSION: "Regression"}
)


class OnViolation(StrEnum):
    """What a data validation violation does to the run."""

    FAIL = "fail"
    """The Preprocess step fails, so nothing is trained on bad data."""
    WARN = "warn"
    """The violations are recorded in the preprocess report; the run continues."""


@dataclass(frozen=True)
class MetricInfo:
    """A model-quality metric: its direction and the range its values can take."""

    name: str
    higher_is_better: bool
    minimum: float | None
    maximum: float | None


def _metrics(*infos: MetricInfo) -> Mapping[str, MetricInfo]:
    return MappingProxyType({m.name: m for m in infos})


#: Metrics evaluate.py reports, per problem type (the SageMaker model-quality metric names).
METRICS: Final[Mapping[ProblemType, Mapping[str, MetricInfo]]] = MappingProxyType(
    {
        ProblemType.BINARY_CLASSIFICATION: _metrics(
            MetricInfo("auc", True, 0.0, 1.0),
            MetricInfo("accuracy", True, 0.0, 1.0),
            MetricInfo("precision", True, 0.0, 1.0),
            MetricInfo("recall", True, 0.0, 1.0),
            MetricInfo("f1", True, 0.0, 1.0),
        ),
        ProblemType.REGRESSION: _metrics(
            MetricInfo("rmse", False, 0.0, None),
            MetricInfo("mse", False, 0.0, None),
            MetricInfo("mae", False, 0.0, None),
            MetricInfo("r2", True, None, 1.0),
        ),
    }
)

#: Built-in XGBoost hyperparameters per problem type; ``TrainingSettings.hyperparameters``
#: entries override them one by one.
DEFAULT_HYPERPARAMETERS: Final[Mapping[ProblemType, Mapping[str, str]]] = MappingProxyType(
    {
        ProblemType.BINARY_CLASSIFICATION: MappingProxyType(
            {
                "objective": "binary:logistic",
                "eval_metric": "auc",
                "num_round": "200",
                "early_stopping_rounds": "10",
                "max_depth": "5",
                "eta": "0.2",
                "subsample": "0.8",
            }
        ),
        ProblemType.REGRESSION: MappingProxyType(
            {
                "objective": "reg:squarederror",
                "eval_metric": "rmse",
                "num_round": "200",
                "early_stopping_rounds": "10",
                "max_depth": "5",
                "eta": "0.2",
                "subsample": "0.8",
            }
        ),
    }
)

# Instance families SageMaker accepts for training and processing jobs (botocore's
# TrainingInstanceType and ProcessingInstanceType enums, botocore 1.44); a test compares them.
TRAINING_INSTANCE_FAMILIES: Final = _words(
    "c4 c5 c5n c6i c7i c7i-flex c8i c8i-flex g4dn g5 g6 g6e g7 g7e m4 m5 m6i m7i m7i-flex m8i m8i-flex p2 "
    "p3 p3dn p4d p4de p5 p5e p5en p6-b200 p6-b300 p6e-gb200 r5 r5d r6i r7i r8i r8i-flex t3 trn1 trn1n "
    "trn2"
)
PROCESSING_INSTANCE_FAMILIES: Final = _words(
    "c4 c5 c6i c7i c7i-flex c8i c8i-flex g4dn g5 g6 g6e g7 g7e m4 m5 m6i m7i m7i-flex m8i m8i-flex p2 p3 "
    "p5 r5 r5d r6i r7i r8i r8i-flex t3"
)
_INSTANCE_TYPE = re.compile(r"^ml\.([a-z0-9]+(?:-[a-z0-9]+)*)\.(medium|large|[0-9]*xlarge)\Z")
# Families with instance (NVMe) storage take no EBS volume, so no VolumeKmsKeyId either; the
# rule the SageMaker Python SDK applies (common_utils.volume_size_supported).
_INSTANCE_STORAGE_PREFIXES = ("g5", "g6", "g7e", "p5", "p6-b200", "trn1", "trn2")

_MAX_RUNTIME_SECONDS = 28 * 24 * 3600
# CreateModelPackage CustomerMetadataProperties value pattern ([\p{L}\p{Z}\p{N}_.:/=+\-@]*),
# approximated with Python's \w (letters, digits, underscore) and a space.
_METADATA_VALUE = re.compile(r"^[\w .:/=+\-@]{1,256}\Z")
# MlflowConfig patterns of the SageMaker API (MlflowResourceArn, MlflowExperimentName).
_MLFLOW_ARN = re.compile(r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:mlflow-(app|tracking-server)/.+\Z")
_MLFLOW_EXPERIMENT = re.compile(r"^[a-zA-Z0-9\-_./]{1,256}\Z")
# A pip requirement with a version: name[extras] then one or more comma-separated specifiers.
# No bare names (unpinned installs are not reproducible), no options, URLs or markers.
# A package index pip reaches from a job: HTTPS, a host, an optional path; at most 256 characters,
# the longest value of a processing job's environment variable.
_PACKAGE_INDEX = re.compile(r"^https://[^\s/?#]+(/[^\s]*)?\Z")
_MAX_ENVIRONMENT_VALUE = 256
_REQUIREMENT = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:\[[A-Za-z0-9._,-]+\])?"
    r" *(?:===|==|!=|~=|>=|<=|>|<) *[A-Za-z0-9.*+!_-]+"
    r"(?: *, *(?:===|==|!=|~=|>=|<=|>|<) *[A-Za-z0-9.*+!_-]+)*\Z"
)


def is_unresolved(value: object) -> bool:
    """True for a CDK token: a string holding ``${Token[...]}`` or a number-encoded token.

    The same test as ``aws_cdk.Token.is_unresolved`` for the values a spec holds, without
    importing aws_cdk. Unresolved values are never rejected by the checks in this module.
    """
    if isinstance(value, str):
        return "${Token[" in value or "#{Token[" in value
    if isinstance(value, float):
        # CDK encodes number tokens as doubles around -1.8881545897087626e+289.
        return abs(value) > 1e280
    return False


# --------------------------------------------------------------------------------------------
# Inputs of the builder
# --------------------------------------------------------------------------------------------


class ShapAggregation(StrEnum):
    """How Clarify aggregates the SHAP values of the rows into one global value per feature."""

    MEAN_ABS = "mean_abs"
    """The mean of the absolute values (how much a feature moves predictions, either way)."""
    MEDIAN = "median"
    """The median of the values."""
    MEAN_SQ = "mean_sq"
    """The mean of the squared values."""


@dataclass(frozen=True, kw_only=True)
class BiasFacet:
    """A sensitive column (a *facet*) whose group SageMaker Clarify compares with the other rows.

    Every feature is a number (``preprocess.py`` accepts numeric columns only), so a categorical
    column is compared by its numeric codes. Give ``values`` or ``threshold``, not both.

    Attributes:
        name: The column's name in the dataset's header; a feature, not the label.
        values: The codes that put a row in the sensitive group (a binary or categorical
            column). Default: - none; without a threshold either, Clarify reports each value of
            the column as a group of its own.
        threshold: For a continuous column: rows whose value is above it (exclusive) form the
            sensitive group. Default: - none.
    """

    name: str
    values: tuple[float, ...] = ()
    threshold: float | None = None

    @property
    def value_or_threshold(self) -> list[float]:
        """Clarify's ``value_or_threshold`` of the facet (empty: every value is a group)."""
        if self.threshold is not None:
            return [self.threshold]
        return list(self.values)

    def analysis_config(self) -> dict[str, object]:
        """The facet as an entry of the analysis configuration's ``facet`` list."""
        facet: dict[str, object] = {"name_or_index": self.name}
        if self.value_or_threshold:
            facet["value_or_threshold"] = self.value_or_threshold
        return facet


@dataclass(frozen=True, kw_only=True)
class ClarifySettings:
    """SageMaker Clarify bias (pre- and post-training) and SHAP explainability baselines.

    With these set, the pipeline creates a SageMaker model of each trained model (the
    ``ClarifyModel`` step), ``Evaluate`` writes the Clarify analysis configurations and a sample
    of the test split, and three Clarify processing jobs compute the data-bias (pre-training),
    model-bias (post-training) and SHAP baselines that ``Register`` records on the model package
    (``ModelMetrics.Bias``/``Explainability``, ``DriftCheckBaselines.Bias``/``Explainability``).
    The model-bias and SHAP jobs each start a shadow endpoint of the model for their run.
    Binary classification only: the positive outcome is a label value, which a regressor has not.

    Attributes:
        facets: The sensitive columns (at least one).
        positive_label_values: The label value that is the favourable outcome, ``(1,)`` or
            ``(0,)`` (labels are 0 or 1). Default: - ``(1,)``.
        group_column: A column whose groups condition the demographic disparity metrics
            (CDDL, CDDPL). Default: - none; those metrics are not computed.
        sample_rows: Rows of the test split (drawn with the split seed) that the post-training
            bias and SHAP jobs send to the shadow endpoint; the pre-training bias job reads the
            whole training split. Default: - 1000.
        shap_num_samples: Synthetic rows per explained row in Kernel SHAP (Clarify's
            ``num_samples``); the SHAP job makes about ``sample_rows`` x ``shap_num_samples`` x
            ``shap_baseline_rows`` predictions. Default: - 100.
        shap_baseline_rows: Rows of the SHAP baseline: the k-means centres of the training
            split's features; 1 is the mean of each feature. Default: - 1.
        shap_agg_method: How the global SHAP value of a feature aggregates its rows' values.
            Default: - mean of the absolute values.
        shap_use_logit: Explain the log-odds instead of the probability. Default: - False.
        instance_type: Instance of the three Clarify processing jobs. Default: - ``ml.m5.xlarge``.
        instance_count: Instances per Clarify job (more than one runs Clarify on Spark).
            Default: - 1.
        endpoint_instance_type: Instance of the shadow endpoints. Default: - ``ml.m5.large``.
        endpoint_instance_count: Instances of each shadow endpoint. Default: - 1.
    """

    facets: tuple[BiasFacet, ...]
    positive_label_values: tuple[int, ...] = (1,)
    group_column: str | None = None
    sample_rows: int = 1000
    shap_num_samples: int = 100
    shap_baseline_rows: int = 1
    shap_agg_method: ShapAggregation = ShapAggregation.MEAN_ABS
    shap_use_logit: bool = False
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    endpoint_instance_type: str = "ml.m5.large"
    endpoint_instance_count: int = 1


@dataclass(frozen=True, kw_only=True)
class TrainingSettings:
    """User-facing settings of the training pipeline; per-environment config supplies them.

    Check them with :func:`training_settings_problems`; the construct raises
    ``ConfigurationError`` with the problems.

    Attributes:
        problem_type: Default: - binary classification.
        metric_name: The gate's metric, one of :data:`METRICS` for the problem type.
            Default: - ``auc``.
        metric_threshold: The metric a model must reach (at least, or at most for error
            metrics such as ``rmse``). Default: - 0.7.
        champion_margin: How much a model must beat the champion by, in metric units.
            Default: - 0.0 (at least as good as the champion).
        processing_instance_type: Default of the ``ProcessingInstanceType`` parameter.
            Default: - ``ml.m5.large``.
        preprocess_instance_count: Instances of the ``Preprocess`` job (1 to 100). Each takes its
            share of the manifest's shards (``ml/preprocess.py``, "Instances"), so a dataset too
            large for one instance's memory or time is split over several; each writes its own
            train, validation and test files, which ``Train`` takes ``ShardedByS3Key``; so it is
            at least ``training_instance_count``. Default: - 1.
        preprocess_instance_type: The ``Preprocess`` job's instance type, fixed in the definition,
            so that many small instances can share out a large dataset while ``Evaluate`` runs on
            one large one. Default: - the ``ProcessingInstanceType`` parameter, as every other
            processing job.
        training_instance_type: Default of the ``TrainingInstanceType`` parameter.
            Default: - ``ml.m5.xlarge``.
        training_instance_count: Default of the ``TrainingInstanceCount`` parameter. Default: - 1.
        processing_volume_size_gb: EBS volume per processing instance. Default: - 30.
        training_volume_size_gb: EBS volume per training instance. Default: - 30.
        processing_max_runtime_seconds: Stop a processing job after this long. Default: - 1 hour.
        training_max_runtime_seconds: Stop training after this long. Default: - 4 hours.
        use_spot_instances: Managed spot training (up to 90% cheaper, can be interrupted).
            Default: - off.
        max_wait_seconds: With spot, the longest to wait for capacity plus training time;
            at least ``training_max_runtime_seconds``. Default: - twice the max runtime.
        checkpoint_s3_uri: Where training writes checkpoints so an interrupted spot job
            resumes; required when ``max_wait_seconds`` is set. Default: - no checkpoints.
        hyperparameters: Overrides of :data:`DEFAULT_HYPERPARAMETERS` (values are strings, as
            CreateTrainingJob takes them). Default: - the XGBoost defaults for the problem type.
        label_column: Name of the label column in the dataset's CSV files.
            Default: - the first column.
        train_fraction: Share of rows for training. Default: - 0.7.
        validation_fraction: Share of rows for validation; the rest is the test split.
            Default: - 0.15.
        split_seed: Seed of the deterministic split. Default: - 42.
        baseline_rows: Rows of the training split, at most, in ``Preprocess``'s baseline file,
            which ``Evaluate`` turns into the data-quality baseline dataset (a uniform sample
            when the split is larger, so that step's memory and the baseline job's time stay
            bounded at any data size). Default: - 1,000,000.
        data_validation: What violations of the baseline constraints do. Default: - fail the run.
        inference_instance_types: Instance types recorded on the model package for hosting.
            Default: - ``ml.m5.large``.
        model_quality_baseline: Add the ``ModelQualityBaseline`` step, which computes the
            model-quality statistics and constraints of the model's predictions on the test split
            (Model Monitor analyzer, on the ``ProcessingInstanceType`` parameter's instance, one
            instance, ``processing_volume_size_gb`` and ``processing_max_runtime_seconds``, as
            ``DataQualityBaseline``), and register them with the package, where a model-quality
            monitor takes its baseline. Default: - True.
        clarify: Add the SageMaker Clarify steps (bias and SHAP explainability baselines,
            registered with the package, where bias and explainability monitors take them); binary
            classification only. See :class:`ClarifySettings`. Default: - none; no Clarify step.
    """

    problem_type: ProblemType = ProblemType.BINARY_CLASSIFICATION
    metric_name: str = "auc"
    metric_threshold: float = 0.7
    champion_margin: float = 0.0
    processing_instance_type: str = "ml.m5.large"
    preprocess_instance_count: int = 1
    preprocess_instance_type: str | None = None
    training_instance_type: str = "ml.m5.xlarge"
    training_instance_count: int = 1
    processing_volume_size_gb: int = 30
    training_volume_size_gb: int = 30
    processing_max_runtime_seconds: int = 3600
    training_max_runtime_seconds: int = 4 * 3600
    use_spot_instances: bool = False
    max_wait_seconds: int | None = None
    checkpoint_s3_uri: str | None = None
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    label_column: str | None = None
    train_fraction: float = 0.7
    validation_fraction: float = 0.15
    split_seed: int = 42
    baseline_rows: int = 1_000_000
    data_validation: OnViolation = OnViolation.FAIL
    inference_instance_types: tuple[str, ...] = ("ml.m5.large",)
    model_quality_baseline: bool = True
    clarify: ClarifySettings | None = None

    @property
    def metric(self) -> MetricInfo:
        """The gate's metric. Raises KeyError for an unknown metric (see the problems function)."""
        return METRICS[ProblemType(self.problem_type)][self.metric_name]

    @property
    def effective_hyperparameters(self) -> dict[str, str]:
        """The defaults for the problem type with :attr:`hyperparameters` applied."""
        merged = dict(DEFAULT_HYPERPARAMETERS[ProblemType(self.problem_type)])
        merged.update(self.hyperparameters)
        return merged

    @property
    def effective_max_wait_seconds(self) -> int | None:
        """``MaxWaitTimeInSeconds`` of a spot job, or ``None`` without spot."""
        if not self.use_spot_instances:
            return None
        if self.max_wait_seconds is not None:
            return self.max_wait_seconds
        return min(2 * self.training_max_runtime_seconds, _MAX_RUNTIME_SECONDS)


@dataclass(frozen=True, kw_only=True)
class ScriptSource:
    """A script in S3 and the name it has once a job downloads it.

    A processing job downloads an S3 object given as a ProcessingInput to
    ``<LocalPath>/<last segment of its key>``, so the entry point needs that name. For a CDK
    file asset it is the asset's object key, which is known at synth time::

        ScriptSource(s3_uri=asset.s3_object_url, file_name=asset.s3_object_key.rsplit("/", 1)[-1])

    For training in script mode ``s3_uri`` is a ``sourcedir.tar.gz`` and ``file_name`` the
    entry point inside it.
    """

    s3_uri: str
    file_name: str

    @classmethod
    def from_uri(cls, s3_uri: str) -> ScriptSource:
        """A source named after the last segment of a concrete ``s3://`` URI."""
        if is_unresolved(s3_uri) or not s3_uri.startswith("s3://") or s3_uri.endswith("/"):
            raise ValueError(f"{s3_uri!r}: pass file_name explicitly for a token or a non-object URI")
        return cls(s3_uri=s3_uri, file_name=s3_uri.rsplit("/", 1)[-1])


@dataclass(frozen=True, kw_only=True)
class PipelineSpec:
    """Everything the builder needs; the construct fills it with tokens of its resources.

    Attributes:
        role_arn: The SageMaker execution role of every job.
        bucket_name: Bucket for every artifact the pipeline writes.
        model_package_group_name: Where ``Register`` adds model package versions.
        sklearn_image_uri: Image of ``Preprocess`` (``image_uris.image_uri("sklearn", ...)``).
        training_image_uri: Image of ``Train``, and of the registered model.
        model_monitor_image_uri: Image of ``DataQualityBaseline`` and ``ModelQualityBaseline``
            (the Model Monitor analyzer).
        clarify_image_uri: Image of the Clarify steps (``image_uris.image_uri("clarify", ...)``);
            required with ``settings.clarify``. Default: - none.
        preprocess_script: ``ml/preprocess.py`` in S3.
        evaluate_script: ``ml/evaluate.py`` in S3.
        artifacts_prefix: Key prefix of every artifact, without slashes at either end.
            Default: - ``pipeline``.
        evaluation_image_uri: Image of ``Evaluate``; it must have Python with numpy and the
            library that loads the model. Default: - the training image.
        training_source: A script-mode source archive and entry point (e.g. ``ml/train.py``
            in a ``sourcedir.tar.gz``) for a framework training image such as scikit-learn.
            Default: - the built-in algorithm of ``training_image_uri`` (XGBoost).
        kms_key_arn: Key for job volumes and outputs. Default: - the bucket's default encryption.
        subnet_ids: Run every job in these VPC subnets (with ``security_group_ids``): the
            processing jobs get a ``NetworkConfig`` (inter-container traffic encrypted; network
            isolation for ``DataQualityBaseline``, ``ModelQualityBaseline``, and ``Evaluate``
            without MLflow, which need no network), ``Train`` a ``VpcConfig``. Default: - no VPC.
        security_group_ids: Default: - none.
        source_revision: Source revision recorded on model packages. Default: - ``unknown``.
        default_input_manifest_uri: Default of ``InputManifestUri``. Default: - empty; an
            execution must pass a manifest.
        default_approval_status: Default of ``ModelApprovalStatus``.
            Default: - ``PendingManualApproval``.
        settings: Default: - :class:`TrainingSettings` defaults.
        mlflow_tracking_arn: A SageMaker managed MLflow tracking server. The definition's
            ``MlflowConfig`` names it, so SageMaker Pipelines records each execution there, and
            ``Train`` and ``Evaluate`` get it as the :data:`MLFLOW_TRACKING_ARN_ENV`
            environment variable, so scripts can log runs to it. Default: - no MLflow.
        mlflow_experiment_name: The MLflow experiment of the executions.
            Default: - the pipeline's name (SageMaker Pipelines' choice).
        tracking_script: ``ml/track.py`` in S3; with ``mlflow_tracking_arn`` it adds the
            ``Track`` step, which logs each execution as an MLflow run (the construct always
            passes it). Default: - no ``Track`` step: the definition still names the server
            and ``Train`` and ``Evaluate`` get its ARN, for scripts that log themselves.
        tracking_image_uri: Image of ``Track``: any image with Python and boto3; with ``mlflow``
            and ``sagemaker-mlflow`` installed, nothing is installed at run time.
            Default: - ``sklearn_image_uri``.
        mlflow_client_requirements: Pinned packages (``name==version``) that ``Track`` installs
            with pip when its image lacks the MLflow client; installing needs outbound HTTPS to
            PyPI, or to ``package_index_url``. Default: - none; the image must have the client.
        package_index_url: The package index ``Track`` installs ``mlflow_client_requirements``
            from (pip's ``--index-url``, set as ``PIP_INDEX_URL``): an ``https://`` URL of a
            private mirror, for jobs in subnets without a route to PyPI. It is visible in the
            definition, so it holds no credentials. Default: - PyPI.
        experiments: Record each execution as a SageMaker Experiments trial
            (``PipelineExperimentConfig``). Set it to False in regions without SageMaker
            Experiments (``image_uris.has_experiments``), where executions with it fail.
            Default: - True.
    """

    role_arn: str
    bucket_name: str
    model_package_group_name: str
    sklearn_image_uri: str
    training_image_uri: str
    model_monitor_image_uri: str
    preprocess_script: ScriptSource
    evaluate_script: ScriptSource
    artifacts_prefix: str = "pipeline"
    evaluation_image_uri: str | None = None
    training_source: ScriptSource | None = None
    kms_key_arn: str | None = None
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    source_revision: str = "unknown"
    default_input_manifest_uri: str = ""
    default_approval_status: str = "PendingManualApproval"
    settings: TrainingSettings = field(default_factory=TrainingSettings)
    mlflow_tracking_arn: str | None = None
    mlflow_experiment_name: str | None = None
    tracking_script: ScriptSource | None = None
    tracking_image_uri: str | None = None
    mlflow_client_requirements: tuple[str, ...] = ()
    package_index_url: str | None = None
    experiments: bool = True
    clarify_image_uri: str | None = None


# --------------------------------------------------------------------------------------------
# Settings checks
# --------------------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _instance_type_problem(name: str, value: object, families: frozenset[str]) -> str | None:
    if is_unresolved(value):
        return None
    match = _INSTANCE_TYPE.match(value) if isinstance(value, str) else None
    if match is None:
        return f"{name} {value!r} is not an instance type; use ml.<family>.<size>, e.g. ml.m5.xlarge"
    if match.group(1) not in families:
        accepted = ", ".join(sorted(families))
        return f"{name} {value!r}: unknown instance family {match.group(1)!r}; use one of: {accepted}"
    return None


def _seconds_problem(name: str, value: object) -> str | None:
    if is_unresolved(value):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= _MAX_RUNTIME_SECONDS:
        return None
    return f"{name} {value!r} is not a duration; use whole seconds from 1 to {_MAX_RUNTIME_SECONDS} (28 days)"


def requirement_problem(name: str, requirement: object) -> str | None:
    """Why ``requirement`` is not a pinned pip requirement (``name==version``, ``name>=x,<y``), or None.

    ``name`` labels the value in the message (e.g. ``mlflow.client_requirements[0]``).
    """
    if is_unresolved(requirement):
        return None
    if not isinstance(requirement, str) or not requirement.strip():
        return f"{name} {requirement!r} is empty; use a pinned requirement such as 'mlflow==2.16.2'"
    if not _REQUIREMENT.match(requirement):
        return (
            f"{name} {requirement!r} is not a pinned requirement; use name==version or name>=low,<high "
            "(e.g. 'mlflow==2.16.2'), without pip options, URLs or markers"
        )
    return None


def package_index_problem(name: str, url: object) -> str | None:
    """Why ``url`` is not a package index pip may use from a job (``https://host/path``), or None.

    ``name`` labels the value in the message (e.g. ``mlflow.package_index_url``).
    """
    if url is None or is_unresolved(url):
        return None
    if not isinstance(url, str) or not _PACKAGE_INDEX.match(url):
        return (
            f"{name} {url!r} is not an https:// URL; give the index of your package mirror, "
            "e.g. 'https://pypi.example.internal/simple'"
        )
    if len(url) > _MAX_ENVIRONMENT_VALUE:
        return f"{name} has {len(url)} characters; a job's environment value holds at most {_MAX_ENVIRONMENT_VALUE}"
    if "@" in url.split("/", 3)[2]:
        return (
            f"{name} holds credentials (user:password@); the pipeline definition is readable by anyone who "
            "may describe the pipeline: let the mirror trust the VPC instead, or use logging_image_uri"
        )
    return None


def has_instance_storage(instance_type: str) -> bool:
    """True for instance types with local NVMe storage, which take no EBS volume or volume key."""
    match = _INSTANCE_TYPE.match(instance_type)
    if match is None:
        return False
    family = match.group(1)
    return "d" in family or family.startswith(_INSTANCE_STORAGE_PREFIXES)


def training_settings_problems(settings: TrainingSettings) -> list[str]:
    """Every problem with ``settings``, one message each (value, why, fix); tokens are skipped."""
    problems: list[str] = []
    s = settings

    metric: MetricInfo | None = None
    problem_type: object = s.problem_type  # may hold anything at runtime; checked here
    if not isinstance(problem_type, ProblemType):
        accepted = ", ".join(p.value for p in ProblemType)
        problems.append(f"problem_type {s.problem_type!r} is not a problem type; use one of: {accepted}")
    else:
        known = METRICS[problem_type]
        metric = known.get(s.metric_name)
        if metric is None:
            problems.append(
                f"metric_name {s.metric_name!r} is not a {problem_type.value} metric; use one of: {', '.join(known)}"
            )

    if not is_unresolved(s.metric_threshold):
        if not _is_number(s.metric_threshold):
            problems.append(f"metric_threshold {s.metric_threshold!r} is not a number")
        elif metric is not None:
            low, high = metric.minimum, metric.maximum
            if (low is not None and s.metric_threshold < low) or (high is not None and s.metric_threshold > high):
                bounds = f"[{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}]"
                problems.append(
                    f"metric_threshold {s.metric_threshold!r} is outside the range of {metric.name} {bounds}; "
                    f"choose a threshold inside it"
                )
    if not is_unresolved(s.champion_margin) and (not _is_number(s.champion_margin) or s.champion_margin < 0):
        problems.append(
            f"champion_margin {s.champion_margin!r} must be a number >= 0 "
            "(how much better than the champion a model must be)"
        )

    for name, value, families in (
        ("processing_instance_type", s.processing_instance_type, PROCESSING_INSTANCE_FAMILIES),
        ("training_instance_type", s.training_instance_type, TRAINING_INSTANCE_FAMILIES),
        ("preprocess_instance_type", s.preprocess_instance_type, PROCESSING_INSTANCE_FAMILIES),
    ):
        problem = None if value is None else _instance_type_problem(name, value, families)
        if problem:
            problems.append(problem)
    if not is_unresolved(s.training_instance_count) and not (
        _is_int(s.training_instance_count) and s.training_instance_count >= 1
    ):
        problems.append(f"training_instance_count {s.training_instance_count!r} must be a whole number >= 1")
    problem = _whole_number_problem("baseline_rows", s.baseline_rows, 1, 10**9, " (rows of the baseline file)")
    if problem:
        problems.append(problem)
    problem = _whole_number_problem(
        "preprocess_instance_count", s.preprocess_instance_count, 1, _MAX_PROCESSING_INSTANCES, " (CreateProcessingJob)"
    )
    if problem:
        problems.append(problem)
    elif _is_int(s.training_instance_count) and s.training_instance_count > s.preprocess_instance_count:
        problems.append(
            f"training_instance_count {s.training_instance_count} is more than preprocess_instance_count "
            f"{s.preprocess_instance_count}: Train shares out the train files ShardedByS3Key, one per Preprocess "
            "instance, so the extra training instances would get no data; raise preprocess_instance_count to at "
            "least training_instance_count"
        )
    for name, size in (
        ("processing_volume_size_gb", s.processing_volume_size_gb),
        ("training_volume_size_gb", s.training_volume_size_gb),
    ):
        if not is_unresolved(size) and not (_is_int(size) and 1 <= size <= 16384):
            problems.append(f"{name} {size!r} must be a whole number of GB from 1 to 16384")
    for name, seconds in (
        ("processing_max_runtime_seconds", s.processing_max_runtime_seconds),
        ("training_max_runtime_seconds", s.training_max_runtime_seconds),
    ):
        problem = _seconds_problem(name, seconds)
        if problem:
            problems.append(problem)

    if s.max_wait_seconds is not None:
        problem = _seconds_problem("max_wait_seconds", s.max_wait_seconds)
        if problem:
            problems.append(problem)
        elif not s.use_spot_instances:
            problems.append(
                "max_wait_seconds applies only to managed spot training; set use_spot_instances=True or remove it"
            )
        elif (
            not is_unresolved(s.max_wait_seconds)
            and not is_unresolved(s.training_max_runtime_seconds)
            and _is_int(s.training_max_runtime_seconds)
            and s.max_wait_seconds < s.training_max_runtime_seconds
        ):
            problems.append(
                f"max_wait_seconds ({s.max_wait_seconds}) must be >= training_max_runtime_seconds "
                f"({s.training_max_runtime_seconds}); it includes the training time"
            )
        if s.use_spot_instances and s.checkpoint_s3_uri is None:
            problems.append(
                "spot training with max_wait_seconds needs checkpoint_s3_uri, so an interrupted job resumes "
                "instead of starting over; set it (e.g. s3://<artifacts bucket>/checkpoints)"
            )
    if (
        s.checkpoint_s3_uri is not None
        and not is_unresolved(s.checkpoint_s3_uri)
        and not s.checkpoint_s3_uri.startswith("s3://")
    ):
        problems.append(f"checkpoint_s3_uri {s.checkpoint_s3_uri!r} is not an S3 URI; use s3://bucket/prefix")

    for key, hyperparameter in s.hyperparameters.items():
        if not isinstance(key, str) or not key or len(key) > 256:
            problems.append(f"hyperparameters key {key!r} must be a string of 1 to 256 characters")
        if not isinstance(hyperparameter, str) or len(hyperparameter) > 2500:
            problems.append(
                f"hyperparameters[{key!r}] = {hyperparameter!r} must be a string of at most 2500 characters "
                f'(CreateTrainingJob takes strings; write e.g. "200" not 200)'
            )

    fractions_ok = True
    for name, fraction in (("train_fraction", s.train_fraction), ("validation_fraction", s.validation_fraction)):
        if not _is_number(fraction) or not 0 < fraction < 1:
            problems.append(f"{name} {fraction!r} must be a number between 0 and 1 (exclusive)")
            fractions_ok = False
    if fractions_ok and s.train_fraction + s.validation_fraction >= 1:
        problems.append(
            f"train_fraction + validation_fraction ({s.train_fraction} + {s.validation_fraction}) must be < 1, "
            "leaving rows for the test split"
        )
    if not _is_int(s.split_seed) or s.split_seed < 0:
        problems.append(f"split_seed {s.split_seed!r} must be a whole number >= 0")
    on_violation: object = s.data_validation
    if not isinstance(on_violation, OnViolation):
        accepted = ", ".join(v.value for v in OnViolation)
        problems.append(f"data_validation {s.data_validation!r} is not valid; use one of: {accepted}")
    model_quality_baseline: object = s.model_quality_baseline  # may hold anything at runtime; checked here
    if not isinstance(model_quality_baseline, bool):
        problems.append(
            f"model_quality_baseline {s.model_quality_baseline!r} must be True (compute and register the "
            "model-quality baseline, the default) or False (leave the step out)"
        )
    if s.label_column is not None and (not isinstance(s.label_column, str) or not s.label_column):
        problems.append(f"label_column {s.label_column!r} must be a column name, or None for the first column")
    for instance_type in s.inference_instance_types:
        if not is_unresolved(instance_type) and not _INSTANCE_TYPE.match(instance_type):
            problems.append(
                f"inference_instance_types entry {instance_type!r} is not an instance type; use ml.<family>.<size>"
            )
    if s.clarify is not None:
        problems += clarify_settings_problems(s.clarify, problem_type=problem_type, label_column=s.label_column)
    return problems


# Limits of the Clarify settings: what a job can hold in memory and a container argument in characters.
_MAX_SAMPLE_ROWS = 1_000_000
_MAX_SHAP_SAMPLES = 100_000
_MAX_BASELINE_ROWS = 1000
_MAX_CLARIFY_INSTANCES = 100
#: ProcessingClusterConfig.InstanceCount's maximum in the SageMaker API model (a test reads it).
_MAX_PROCESSING_INSTANCES = 100
_MAX_ENDPOINT_INSTANCES = 10
_MAX_CONTAINER_ARGUMENT = 256


def clarify_facet_argument(facet: BiasFacet) -> str:
    """The facet as ``Evaluate`` receives it: its analysis-configuration entry as compact JSON."""
    return json.dumps(facet.analysis_config(), separators=(",", ":"))


def _whole_number_problem(name: str, value: object, low: int, high: int, why: str = "") -> str | None:
    if _is_int(value) and low <= value <= high:  # type: ignore[operator]
        return None
    return f"{name} {value!r} must be a whole number from {low} to {high}{why}"


def clarify_settings_problems(
    clarify: object, *, problem_type: object = ProblemType.BINARY_CLASSIFICATION, label_column: object = None
) -> list[str]:
    """Every problem with the Clarify settings (``clarify.<name>`` value, why, fix); empty when sound.

    ``problem_type`` and ``label_column`` are the pipeline's (:class:`TrainingSettings`): Clarify
    needs binary classification, and a facet or group column cannot be the label.
    """
    if not isinstance(clarify, ClarifySettings):
        return [f"clarify {clarify!r} must be ClarifySettings(facets=(BiasFacet(name=...),), ...) or None"]
    c = clarify
    problems: list[str] = []
    if isinstance(problem_type, ProblemType) and problem_type is not ProblemType.BINARY_CLASSIFICATION:
        problems.append(
            f"clarify is set but problem_type is {problem_type.value!r}; Clarify's bias metrics compare a "
            "positive label value across groups, which a regressor does not predict: use "
            "problem_type=binary_classification, or remove clarify"
        )
    facets: object = c.facets
    if not isinstance(facets, tuple) or not facets:
        problems.append(
            f"clarify.facets {facets!r} must be a non-empty tuple of BiasFacet, e.g. (BiasFacet(name='gender', "
            "values=(1,)),)"
        )
        facets = ()
    seen: set[str] = set()
    for index, facet in enumerate(facets):
        where = f"clarify.facets[{index}]"
        if not isinstance(facet, BiasFacet):
            problems.append(f"{where} {facet!r} must be a BiasFacet(name=..., values=... or threshold=...)")
            continue
        problems += _column_problems(f"{where}.name", facet.name, label_column)
        if facet.name in seen:
            problems.append(f"{where}.name {facet.name!r} is given twice; give each facet once")
        seen.add(facet.name)
        values: object = facet.values
        if not isinstance(values, tuple) or not all(_is_number(v) for v in values):
            problems.append(
                f"{where}.values {values!r} must be a tuple of numbers (the column's codes of the sensitive group)"
            )
        if facet.threshold is not None:
            if not _is_number(facet.threshold):
                problems.append(f"{where}.threshold {facet.threshold!r} must be a number")
            if values:
                problems.append(
                    f"{where} has values {values!r} and threshold {facet.threshold!r}; give values for a "
                    "categorical column or threshold for a continuous one, not both"
                )
        if isinstance(facet.name, str) and len(_facet_argument_or_empty(facet)) > _MAX_CONTAINER_ARGUMENT:
            problems.append(
                f"{where} {facet.name!r} with {len(facet.value_or_threshold)} values is over "
                f"{_MAX_CONTAINER_ARGUMENT} characters as Evaluate's argument; shorten the name or give fewer values"
            )
    labels: object = c.positive_label_values
    if not isinstance(labels, tuple) or labels not in ((0,), (1,)) or any(isinstance(v, bool) for v in labels):
        problems.append(
            f"clarify.positive_label_values {labels!r} must be (1,) or (0,): the label value of the favourable "
            "outcome (binary labels are 0 or 1)"
        )
    if c.group_column is not None:
        problems += _column_problems("clarify.group_column", c.group_column, label_column)
    for name, value, high, why in (
        ("clarify.sample_rows", c.sample_rows, _MAX_SAMPLE_ROWS, " (rows of the test split sent to the endpoint)"),
        ("clarify.shap_num_samples", c.shap_num_samples, _MAX_SHAP_SAMPLES, ""),
        ("clarify.shap_baseline_rows", c.shap_baseline_rows, _MAX_BASELINE_ROWS, " (the baseline is in the config)"),
        ("clarify.instance_count", c.instance_count, _MAX_CLARIFY_INSTANCES, ""),
        ("clarify.endpoint_instance_count", c.endpoint_instance_count, _MAX_ENDPOINT_INSTANCES, ""),
    ):
        problem = _whole_number_problem(name, value, 1, high, why)
        if problem:
            problems.append(problem)
    agg_method: object = c.shap_agg_method  # may hold anything at runtime; checked here
    if not isinstance(agg_method, ShapAggregation):
        accepted = ", ".join(a.value for a in ShapAggregation)
        problems.append(f"clarify.shap_agg_method {c.shap_agg_method!r} is not valid; use one of: {accepted}")
    use_logit: object = c.shap_use_logit
    if not isinstance(use_logit, bool):
        problems.append(f"clarify.shap_use_logit {c.shap_use_logit!r} must be True (explain log-odds) or False")
    problem = _instance_type_problem("clarify.instance_type", c.instance_type, PROCESSING_INSTANCE_FAMILIES)
    if problem:
        problems.append(problem)
    endpoint_type: object = c.endpoint_instance_type
    if not is_unresolved(endpoint_type) and not (
        isinstance(endpoint_type, str) and _INSTANCE_TYPE.match(endpoint_type)
    ):
        problems.append(
            f"clarify.endpoint_instance_type {endpoint_type!r} is not an instance type; use ml.<family>.<size>, "
            "e.g. ml.m5.large"
        )
    return problems


def _facet_argument_or_empty(facet: BiasFacet) -> str:
    # Values that are not numbers are reported on their own; they need no length message too.
    try:
        return clarify_facet_argument(facet)
    except (TypeError, ValueError):
        return ""


def _column_problems(name: str, column: object, label_column: object) -> list[str]:
    if not isinstance(column, str) or not column.strip():
        return [f"{name} {column!r} must be the name of a feature column in the dataset's header"]
    if label_column is not None and column == label_column:
        return [f"{name} {column!r} is the label column; name a feature (a facet is an input of the model)"]
    return []


def pipeline_spec_problems(spec: PipelineSpec) -> list[str]:
    """Every problem with ``spec``, its settings included; tokens are skipped."""
    problems = training_settings_problems(spec.settings)
    s = spec.settings

    prefix = spec.artifacts_prefix
    if not is_unresolved(prefix) and (
        prefix.startswith("/") or prefix.endswith("/") or "//" in prefix or prefix.startswith("s3:")
    ):
        problems.append(
            f"artifacts_prefix {prefix!r} must be a key prefix without leading or trailing '/', e.g. 'pipeline'"
        )
    if spec.default_approval_status not in APPROVAL_STATUSES and not is_unresolved(spec.default_approval_status):
        problems.append(
            f"default_approval_status {spec.default_approval_status!r} is not valid; "
            f"use one of: {', '.join(APPROVAL_STATUSES)}"
        )
    if not is_unresolved(spec.source_revision) and not _METADATA_VALUE.match(spec.source_revision):
        problems.append(
            f"source_revision {spec.source_revision!r} cannot be model package metadata; "
            "use 1-256 letters, digits, spaces or _ . : / = + - @"
        )
    arn = spec.mlflow_tracking_arn
    if arn is not None and not is_unresolved(arn) and not _MLFLOW_ARN.match(arn):
        problems.append(
            f"mlflow_tracking_arn {arn!r} is not the ARN of an MLflow tracking server "
            "(arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>)"
        )
    experiment = spec.mlflow_experiment_name
    if experiment is not None and not is_unresolved(experiment) and not _MLFLOW_EXPERIMENT.match(experiment):
        problems.append(f"mlflow_experiment_name {experiment!r} is not valid; use 1-256 letters, digits and - _ . /")
    if bool(spec.subnet_ids) != bool(spec.security_group_ids):
        problems.append("subnet_ids and security_group_ids go together; set both to run jobs in a VPC, or neither")
    problems += _tracking_problems(spec)
    scripts = [("preprocess_script", spec.preprocess_script), ("evaluate_script", spec.evaluate_script)]
    if spec.training_source is not None:
        scripts.append(("training_source", spec.training_source))
    if spec.tracking_script is not None:
        scripts.append(("tracking_script", spec.tracking_script))
    for name, script in scripts:
        if not script.file_name or "/" in script.file_name:
            problems.append(f"{name}.file_name {script.file_name!r} must be a file name without '/'")
    if isinstance(s.clarify, ClarifySettings):
        if not spec.clarify_image_uri:
            problems.append(
                "settings.clarify is set but clarify_image_uri is not; pass the SageMaker Clarify image "
                "(image_uris.image_uri('clarify', region))"
            )
        if spec.subnet_ids and len(spec.subnet_ids) < 2:
            problems.append(
                f"settings.clarify in a VPC needs at least 2 subnet_ids (in distinct availability zones) for "
                f"Clarify's shadow endpoints, got {len(spec.subnet_ids)}; add a subnet, or remove clarify"
            )
    elif spec.clarify_image_uri is not None:
        problems.append("clarify_image_uri is set but settings.clarify is not; set both, or remove clarify_image_uri")
    if spec.kms_key_arn is not None:
        storage_checked = [
            ("processing_instance_type", s.processing_instance_type),
            ("training_instance_type", s.training_instance_type),
            ("preprocess_instance_type", s.preprocess_instance_type),
        ]
        if isinstance(s.clarify, ClarifySettings):
            storage_checked.append(("clarify.instance_type", s.clarify.instance_type))
        for name, instance_type in storage_checked:
            if isinstance(instance_type, str) and has_instance_storage(instance_type):
                problems.append(
                    f"{name} {instance_type!r} has instance storage, which takes no volume KMS key; "
                    "choose a family without local storage (e.g. ml.m5) or drop the key"
                )
    return problems


def _tracking_problems(spec: PipelineSpec) -> list[str]:
    """Problems of the ``Track`` step's fields: they need each other and an MLflow server."""
    problems: list[str] = []
    if not spec.mlflow_tracking_arn and spec.tracking_script is not None:
        problems.append(
            "tracking_script is set but mlflow_tracking_arn is not; the Track step needs a tracking server "
            "to log to: set mlflow_tracking_arn, or remove tracking_script"
        )
    if spec.tracking_script is None:
        for name, value in (
            ("tracking_image_uri", spec.tracking_image_uri),
            ("mlflow_client_requirements", spec.mlflow_client_requirements or None),
            ("package_index_url", spec.package_index_url),
        ):
            if value is not None:
                problems.append(
                    f"{name} is set but tracking_script is not; it configures the Track step, which runs "
                    f"ml/track.py: pass tracking_script (cdk_mlops.ml.TRACK_SCRIPT in S3), or remove {name}"
                )
    if spec.tracking_script is not None and spec.package_index_url is not None and not spec.mlflow_client_requirements:
        problems.append(
            "package_index_url is set but mlflow_client_requirements is empty, so Track installs nothing; "
            "pass the requirements to install from it, or remove package_index_url"
        )
    index_problem = package_index_problem("package_index_url", spec.package_index_url)
    if index_problem:
        problems.append(index_problem)
    if spec.tracking_image_uri is not None and not spec.tracking_image_uri:
        problems.append("tracking_image_uri is empty; pass an image URI, or None for the scikit-learn image")
    requirements: object = spec.mlflow_client_requirements
    if not isinstance(requirements, tuple):
        problems.append(
            f"mlflow_client_requirements {requirements!r} must be a tuple of requirements, e.g. ('mlflow==2.16.2',)"
        )
    else:
        for index, requirement in enumerate(requirements):
            problem = requirement_problem(f"mlflow_client_requirements[{index}]", requirement)
            if problem:
                problems.append(problem)
    return problems
