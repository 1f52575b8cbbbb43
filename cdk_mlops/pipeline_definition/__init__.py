"""The SageMaker Pipelines definition of the training pipeline, built at synth time.

Standard library only: it never imports aws_cdk, so it is fast to build and to test, and the
``TrainingPipeline`` construct passes CDK tokens (``${Token[...]}`` strings) straight in. Any
string is treated as opaque; the construct serializes the result with
``Stack.of(self).to_json_string(definition)`` so tokens inside strings become ``Fn::Join``.

The default pipeline
====================

::

    Preprocess ──► Train ──► Evaluate ──► Gate ──(pass)──► Register (model package)
                               │ │ │        └──(fail)──► Fail       ▲
                               │ │ └──► DataQualityBaseline ────────┤
                               │ └────► ModelQualityBaseline ───────┘ (unless model_quality_baseline=False)
                               └──────► Track (with MLflow and a tracking script; nothing waits for it)

``Preprocess`` (Processing, scikit-learn image, ``ml/preprocess.py``)
    Reads the dataset snapshot named by the ``InputManifestUri`` parameter (the manifest comes
    in as a ProcessingInput; the script fetches exactly the object versions it lists), checks it
    against the ``ManifestSha256`` parameter, validates the data (see *Data validation* below)
    and writes a deterministic, seeded 70/15/15 train/validation/test split as header-less
    CSVs with the label first (the XGBoost CSV contract) plus a header'd copy of the training
    split (``baseline``, for ``Evaluate``), and a JSON report.
``DataQualityBaseline`` (Processing, Model Monitor analyzer image)
    The ``sagemaker-model-monitor-analyzer`` container contract: environment ``dataset_format``
    (CSV with header, output column first), ``dataset_source``, ``output_path`` and
    ``publish_cloudwatch_metrics=Disabled``; it writes ``statistics.json`` and
    ``constraints.json``, which the registered model package carries as its drift-check
    baseline (the endpoint's data-quality monitor uses them). It analyses ``Evaluate``'s
    baseline dataset, not the training split: Model Monitor reads each captured CSV record as
    the endpoint's response (the model's output) followed by its request (the features), and
    compares the columns by position, so the baseline's first column holds the model's
    predictions (probabilities for binary classification), not the labels.
``ModelQualityBaseline`` (Processing, Model Monitor analyzer image; ``TrainingSettings.model_quality_baseline``)
    The same container with ``analysis_type=MODEL_QUALITY``: it compares ``Evaluate``'s
    predictions on the test split with the split's labels and writes the model-quality
    ``statistics.json`` and ``constraints.json`` (the metrics and the thresholds a model-quality
    monitor checks). Its environment names the columns of ``test_predictions.csv`` (CSV with
    a header): ``ground_truth_attribute=label``, ``inference_attribute=prediction`` and, for
    binary classification, ``probability_attribute=probability`` with
    ``probability_threshold_attribute=0.5``; ``problem_type`` is ``BinaryClassification`` or
    ``Regression``. It runs on the ``ProcessingInstanceType`` parameter's instance like every
    processing step.
The Clarify steps (``TrainingSettings.clarify``)
    ``ClarifyModel``, ``DataBiasBaseline``, ``ModelBiasBaseline``, ``ModelExplainabilityBaseline``.
    Off by default; binary classification only. ``ClarifyModel`` (a ``Model`` step, CreateModel)
    makes a SageMaker model of ``Train``'s artifact; ``Evaluate`` gets its name
    (``Steps.ClarifyModel.ModelName``) and writes the Clarify analysis configurations, a sample
    of the test split and the configurations the bias and explainability monitors take; three
    SageMaker Clarify processing jobs then write ``analysis.json`` to ``data-bias-baseline/``
    (pre-training bias of the training split), ``model-bias-baseline/`` (post-training bias)
    and ``model-explainability-baseline/`` (SHAP), the last two through a shadow endpoint of the
    model. ``Register`` records them as ``ModelMetrics.Bias``/``Explainability`` and
    ``DriftCheckBaselines.Bias``/``Explainability`` (the monitors' ``analysis_config.json``
    beside each ``analysis.json``).
``Train`` (Training)
    The built-in XGBoost algorithm image by default (``train``/``validation`` CSV channels);
    instance type and count come from parameters; optional managed spot training with a
    ``CheckpointConfig`` and ``StoppingCondition.MaxWaitTimeInSeconds``. With
    ``PipelineSpec.training_source`` set it runs a script-mode entry point instead.
``Evaluate`` (Processing, the training image, ``ml/evaluate.py``)
    Scores the test split and writes ``evaluation.json`` in the SageMaker model-quality
    metrics format, plus ``comparison.json`` (the metric against the ``ChampionMetric``
    parameter). Both are declared as PropertyFiles. It also writes the data-quality baseline
    dataset (``baseline`` output): the training split's header and features with the model's
    predictions in place of the labels; and, for ``ModelQualityBaseline``, the test split's
    labels with the model's predictions (``predictions`` output, ``test_predictions.csv``:
    ``label,probability,prediction`` for binary classification, ``label,prediction`` for
    regression).
``Gate`` (Condition)
    Passes when the metric meets the threshold **and** beats the champion by the margin (see
    *Champion/challenger* below); ``IfSteps`` holds ``Register``, ``ElseSteps`` holds ``Fail``.
``Register`` (RegisterModel, i.e. CreateModelPackage)
    A new version in the model package group: the training image with the model artifact,
    ``ModelApprovalStatus`` from its parameter, ``evaluation.json`` as model-quality
    statistics, the data-quality baseline as ``DriftCheckBaselines.ModelDataQuality``, the
    model-quality baseline as ``DriftCheckBaselines.ModelQuality`` (its constraints also as
    ``ModelMetrics.ModelQuality.Constraints``; the statistics there stay ``evaluation.json``,
    where the champion's metric is read), and
    lineage in ``CustomerMetadataProperties`` (manifest URI and sha256, data version, pipeline
    execution ARN, source revision, the metric's key), ``MetadataProperties`` (generated by,
    commit) and the trigger reason as the package description. Metadata values must be 1-256
    letters, digits, spaces or ``_ . : / = + - @``, so free-text trigger reasons go to the
    description (any printable text up to 1024 characters); ``Preprocess`` checks the
    parameters against these rules, so a bad value fails the first step, not the last.
``Fail`` (Fail)
    Ends the execution as failed with a message naming the metric, the threshold, the
    champion and the margin.
``Track`` (Processing, scikit-learn image, ``ml/track.py``; with ``mlflow_tracking_arn`` and ``tracking_script``)
    Records the execution as one MLflow run named after the execution id: the training job's
    hyperparameters and final metrics (from DescribeTrainingJob), the test metrics of
    ``evaluation.json``, the champion comparison, lineage tags (manifest URI and sha256, data
    version, training job and execution ARNs, source revision) and both evaluation files as
    artifacts. Training runs with network isolation and cannot log itself, so this step logs
    for it. It runs beside the gate: ``Gate`` and ``Register`` do not depend on it, so
    registration does not wait for the tracking server; a failed ``Track`` still fails the
    execution, which notifies.
    The image installs the pinned MLflow client (``mlflow_client_requirements``) at run time,
    from PyPI or ``package_index_url``, unless ``tracking_image_uri`` already has it.

Private networks
================

With ``subnet_ids`` and ``security_group_ids`` every job runs in those subnets: the processing
jobs (``Preprocess``, ``DataQualityBaseline``, ``ModelQualityBaseline``, ``Evaluate``, ``Track``) with a
``NetworkConfig`` that encrypts inter-container traffic, ``Train`` with a ``VpcConfig``
(inter-container traffic encryption and, for the built-in algorithm, network isolation are set
with or without a VPC). Jobs that need no network run isolated: ``DataQualityBaseline``,
``ModelQualityBaseline``, and
``Evaluate`` unless scripts get the MLflow tracking server's ARN. ``Preprocess`` (boto3 to S3)
and ``Track`` (SageMaker API, MLflow, a package index) need the VPC's endpoints.

Champion/challenger
===================

Pipelines expressions have no arithmetic, so "metric >= champion + margin" cannot be written
as a condition directly. ``evaluate.py`` receives the ``ChampionMetric`` parameter and writes
``comparison.json`` with ``improvement`` (``metric - champion`` for metrics where higher is
better, ``champion - metric`` otherwise); the gate then checks, all in the definition where
reviewers can see them::

    metric >= threshold            (<= for error metrics such as rmse)
    ChampionMetric == 0  OR  improvement >= margin

``ChampionMetric`` defaults to ``0``, which means "no champion yet": the first model that meets
the threshold is registered. Whoever starts an execution (the retrain trigger, a delivery
pipeline, a person) passes the metric of the currently approved model package, which it reads
from that package's ``ModelMetrics.ModelQuality.Statistics`` (``evaluation.json``) using the
``EvaluationMetric`` customer metadata property of the package to find the key;
:func:`champion_parameters` does that (and finds ``BaselineConstraintsUri``) from the
DescribeModelPackage response and the loaded ``evaluation.json``.

Data validation
===============

Before anything trains, new data is checked against the constraints of a previous baseline
(normally the ``DriftCheckBaselines.ModelDataQuality.Constraints`` of the approved model),
passed in the ``BaselineConstraintsUri`` parameter; empty (the default) skips the check. The
check runs inside ``Preprocess`` rather than as a second analyzer job: a Processing step
cannot be skipped for an empty URI, and the analyzer reports violations in files rather than
by failing its job, so the run would go on regardless. ``preprocess.py`` reads the Model
Monitor ``constraints.json`` format and checks columns (missing or extra), data types,
completeness and non-negativity, writes the findings to its report, and fails the run
(``TrainingSettings.data_validation = "fail"``, the default) or only records them
(``"warn"``).

Artifacts
=========

Every output lands under ``s3://<bucket>/<artifacts prefix>/<PipelineExecutionId>/<step>/...``,
built with ``Std:Join`` so every execution has its own prefix.

What the construct provides
===========================

The execution role needs: what SageMaker does for each job input (:func:`job_s3_inputs`;
every input is an ``S3Prefix``, so ``s3:ListBucket`` with the key as ``s3:prefix`` and
``s3:GetObject`` under it, on the CDK asset bucket for the scripts too), read on the data
bucket's object versions (``s3:GetObjectVersion``; ``preprocess.py`` fetches the manifest's
versions with boto3, so a job in a VPC needs an S3 gateway endpoint), read/write under the
artifacts prefix, the KMS key, ECR pull of the framework images, CloudWatch Logs, and
``sagemaker:CreateModelPackage`` on the group. Serialize with ``Stack.to_json_string``.

Executions are SageMaker Experiments trials (``PipelineExperimentConfig``) unless
``PipelineSpec.experiments`` is False, which regions without SageMaker Experiments need.

Validation
==========

:func:`validate_definition` checks a definition's structure (moto stores definitions as
opaque strings, so this is what proves the structure in tests): required request fields per
step type, ``Get`` references, property files, unique step names, ``DependsOn`` and
dependency cycles. :func:`training_settings_problems` and :func:`pipeline_spec_problems` check
user-facing settings and return problem strings for ``ConfigurationError``.

Modules
=======

:mod:`~cdk_mlops.pipeline_definition.names`
    Parameter, step, output and file names, container paths, lineage metadata keys.
:mod:`~cdk_mlops.pipeline_definition.settings`
    ``ProblemType``, ``METRICS``, ``TrainingSettings``, ``ScriptSource``, ``PipelineSpec`` and their checks.
:mod:`~cdk_mlops.pipeline_definition.expressions`
    ``Get``, ``Std:Join``, ``Std:JsonGet`` and conditions, and ``DefinitionBuilder``.
:mod:`~cdk_mlops.pipeline_definition.steps`
    The steps of the default pipeline and :func:`build_pipeline_definition`.
:mod:`~cdk_mlops.pipeline_definition.validation`
    :func:`validate_definition` and :func:`job_s3_inputs`.

Every public name of these modules is importable from ``cdk_mlops.pipeline_definition``.
"""

from __future__ import annotations

from cdk_mlops import champion as _champion
from cdk_mlops.pipeline_definition.expressions import (
    DefinitionBuilder,
    Expr,
    condition,
    condition_or,
    get_execution,
    get_parameter,
    get_step,
    join,
    json_get,
    processing_output_uri,
)
from cdk_mlops.pipeline_definition.names import (
    ANALYSIS_CONFIG_FILE,
    ANALYSIS_FILE,
    APPROVAL_STATUSES,
    BASELINE_CONSTRAINTS_URI,
    BASELINE_DATASET_DIR,
    BASELINE_DATASET_FILE,
    BASELINE_FILE,
    BASELINE_INPUT_DIR,
    CHAMPION_METRIC,
    CHECKPOINT_DIR,
    CLARIFY_CONFIG_DIR,
    CLARIFY_DATA_DIR,
    CLARIFY_DATASET_FILE,
    CLARIFY_DIR,
    CLARIFY_MODEL,
    CLARIFY_OUTPUTS,
    CLARIFY_STEP_NAMES,
    CODE_DIR,
    COMPARISON_FILE,
    COMPARISON_PROPERTY_FILE,
    CONSTRAINTS_FILE,
    DATA_BIAS_BASELINE,
    DATA_QUALITY_BASELINE,
    DATA_VERSION,
    EVALUATE,
    EVALUATION_FILE,
    EVALUATION_INPUT_DIR,
    EVALUATION_PROPERTY_FILE,
    EXECUTION_VARIABLES,
    FAIL,
    GATE,
    GROUND_TRUTH_COLUMN,
    INPUT_MANIFEST_URI,
    LINEAGE_METADATA_KEYS,
    MANIFEST_DIR,
    MANIFEST_SHA256,
    METADATA_EVALUATION_METRIC,
    METADATA_EXECUTION_ARN,
    METADATA_SOURCE_REVISION,
    MLFLOW_TRACKING_ARN_ENV,
    MODEL_APPROVAL_STATUS,
    MODEL_BIAS_BASELINE,
    MODEL_DIR,
    MODEL_EXPLAINABILITY_BASELINE,
    MODEL_QUALITY_BASELINE,
    NO_MANIFEST_KEY,
    OUTPUT_ANALYSIS,
    OUTPUT_BASELINE,
    OUTPUT_CLARIFY_DATASET,
    OUTPUT_DATA_BIAS_CONFIG,
    OUTPUT_EVALUATION,
    OUTPUT_EXPLAINABILITY_CONFIG,
    OUTPUT_EXPLAINABILITY_MONITOR_CONFIG,
    OUTPUT_MODEL_BIAS_CONFIG,
    OUTPUT_MODEL_BIAS_MONITOR_CONFIG,
    OUTPUT_MONITORING,
    OUTPUT_PREDICTIONS,
    OUTPUT_REPORT,
    OUTPUT_ROOT,
    OUTPUT_TEST,
    OUTPUT_TRAIN,
    OUTPUT_VALIDATION,
    PARAMETER_NAMES,
    PIP_INDEX_URL_ENV,
    PREDICTION_COLUMN,
    PREDICTIONS_FILE,
    PREPROCESS,
    PROBABILITY_COLUMN,
    PROBABILITY_THRESHOLD,
    PROCESSING_INSTANCE_TYPE,
    PROCESSING_ROOT,
    REGISTER,
    REPORT_FILE,
    RESOURCE_CONFIG,
    SCHEMA_VERSION,
    STATISTICS_FILE,
    STEP_NAMES,
    TEST_DIR,
    TEST_FILE,
    TRACK,
    TRAIN,
    TRAIN_FILE,
    TRAINING_INSTANCE_COUNT,
    TRAINING_INSTANCE_TYPE,
    TRIGGER_REASON,
    UNVERIFIED_SHA256,
    VALIDATION_FILE,
)
from cdk_mlops.pipeline_definition.settings import (
    DEFAULT_HYPERPARAMETERS,
    METRICS,
    PROCESSING_INSTANCE_FAMILIES,
    TRAINING_INSTANCE_FAMILIES,
    BiasFacet,
    ClarifySettings,
    MetricInfo,
    OnViolation,
    PipelineSpec,
    ProblemType,
    ScriptSource,
    ShapAggregation,
    TrainingSettings,
    clarify_facet_argument,
    clarify_settings_problems,
    has_instance_storage,
    is_unresolved,
    package_index_problem,
    pipeline_spec_problems,
    requirement_problem,
    training_settings_problems,
)
from cdk_mlops.pipeline_definition.steps import (
    build_pipeline_definition,
)
from cdk_mlops.pipeline_definition.validation import (
    _MODEL_PROPERTIES as _MODEL_PROPERTIES,
)
from cdk_mlops.pipeline_definition.validation import (
    _PROCESSING_PROPERTIES as _PROCESSING_PROPERTIES,
)
from cdk_mlops.pipeline_definition.validation import (
    _REGISTER_PROPERTIES as _REGISTER_PROPERTIES,
)
from cdk_mlops.pipeline_definition.validation import (
    _TRAINING_PROPERTIES as _TRAINING_PROPERTIES,
)
from cdk_mlops.pipeline_definition.validation import (
    JobS3Input,
    job_s3_inputs,
    validate_definition,
)

#: Execution parameters that make an approved model package the champion; it lives in the
#: standard-library-only :mod:`cdk_mlops.champion`, which the retrain trigger's Lambda asset ships.
champion_parameters = _champion.champion_parameters

__all__ = [
    "ANALYSIS_CONFIG_FILE",
    "ANALYSIS_FILE",
    "APPROVAL_STATUSES",
    "BASELINE_CONSTRAINTS_URI",
    "BASELINE_DATASET_DIR",
    "BASELINE_DATASET_FILE",
    "BASELINE_FILE",
    "BASELINE_INPUT_DIR",
    "CHAMPION_METRIC",
    "CHECKPOINT_DIR",
    "CLARIFY_CONFIG_DIR",
    "CLARIFY_DATASET_FILE",
    "CLARIFY_DATA_DIR",
    "CLARIFY_DIR",
    "CLARIFY_MODEL",
    "CLARIFY_OUTPUTS",
    "CLARIFY_STEP_NAMES",
    "CODE_DIR",
    "COMPARISON_FILE",
    "COMPARISON_PROPERTY_FILE",
    "CONSTRAINTS_FILE",
    "DATA_BIAS_BASELINE",
    "DATA_QUALITY_BASELINE",
    "DATA_VERSION",
    "DEFAULT_HYPERPARAMETERS",
    "EVALUATE",
    "EVALUATION_FILE",
    "EVALUATION_INPUT_DIR",
    "EVALUATION_PROPERTY_FILE",
    "EXECUTION_VARIABLES",
    "FAIL",
    "GATE",
    "GROUND_TRUTH_COLUMN",
    "INPUT_MANIFEST_URI",
    "LINEAGE_METADATA_KEYS",
    "MANIFEST_DIR",
    "MANIFEST_SHA256",
    "METADATA_EVALUATION_METRIC",
    "METADATA_EXECUTION_ARN",
    "METADATA_SOURCE_REVISION",
    "METRICS",
    "MLFLOW_TRACKING_ARN_ENV",
    "MODEL_APPROVAL_STATUS",
    "MODEL_BIAS_BASELINE",
    "MODEL_DIR",
    "MODEL_EXPLAINABILITY_BASELINE",
    "MODEL_QUALITY_BASELINE",
    "NO_MANIFEST_KEY",
    "OUTPUT_ANALYSIS",
    "OUTPUT_BASELINE",
    "OUTPUT_CLARIFY_DATASET",
    "OUTPUT_DATA_BIAS_CONFIG",
    "OUTPUT_EVALUATION",
    "OUTPUT_EXPLAINABILITY_CONFIG",
    "OUTPUT_EXPLAINABILITY_MONITOR_CONFIG",
    "OUTPUT_MODEL_BIAS_CONFIG",
    "OUTPUT_MODEL_BIAS_MONITOR_CONFIG",
    "OUTPUT_MONITORING",
    "OUTPUT_PREDICTIONS",
    "OUTPUT_REPORT",
    "OUTPUT_ROOT",
    "OUTPUT_TEST",
    "OUTPUT_TRAIN",
    "OUTPUT_VALIDATION",
    "PARAMETER_NAMES",
    "PIP_INDEX_URL_ENV",
    "PREDICTIONS_FILE",
    "PREDICTION_COLUMN",
    "PREPROCESS",
    "PROBABILITY_COLUMN",
    "PROBABILITY_THRESHOLD",
    "PROCESSING_INSTANCE_FAMILIES",
    "PROCESSING_INSTANCE_TYPE",
    "PROCESSING_ROOT",
    "REGISTER",
    "REPORT_FILE",
    "RESOURCE_CONFIG",
    "SCHEMA_VERSION",
    "STATISTICS_FILE",
    "STEP_NAMES",
    "TEST_DIR",
    "TEST_FILE",
    "TRACK",
    "TRAIN",
    "TRAINING_INSTANCE_COUNT",
    "TRAINING_INSTANCE_FAMILIES",
    "TRAINING_INSTANCE_TYPE",
    "TRAIN_FILE",
    "TRIGGER_REASON",
    "UNVERIFIED_SHA256",
    "VALIDATION_FILE",
    "BiasFacet",
    "ClarifySettings",
    "DefinitionBuilder",
    "Expr",
    "JobS3Input",
    "MetricInfo",
    "OnViolation",
    "PipelineSpec",
    "ProblemType",
    "ScriptSource",
    "ShapAggregation",
    "TrainingSettings",
    "build_pipeline_definition",
    "champion_parameters",
    "clarify_facet_argument",
    "clarify_settings_problems",
    "condition",
    "condition_or",
    "get_execution",
    "get_parameter",
    "get_step",
    "has_instance_storage",
    "is_unresolved",
    "job_s3_inputs",
    "join",
    "json_get",
    "package_index_problem",
    "pipeline_spec_problems",
    "processing_output_uri",
    "requirement_problem",
    "training_settings_problems",
    "validate_definition",
]
