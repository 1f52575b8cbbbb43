"""The names a pipeline definition shares with its scripts and its readers.

Parameter, step, output and property-file names, container paths and file names, and the
lineage metadata keys the ``Register`` step records. The scripts in ``cdk_mlops/ml/`` repeat
the file names (they ship alone); a test keeps them equal.
"""

from __future__ import annotations

from typing import Final

from cdk_mlops import champion as _champion


def _words(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text``; long name lists read better as one string."""
    return frozenset(text.split())


#: Version of the pipeline definition schema.
SCHEMA_VERSION: Final = "2020-12-01"

# --------------------------------------------------------------------------------------------
# Pipeline parameters. The retrain trigger starts executions with the first four.
# --------------------------------------------------------------------------------------------

#: S3 URI of the dataset manifest to train on (written by ``cdk_mlops.datasets``).
INPUT_MANIFEST_URI: Final = "InputManifestUri"
#: The manifest's ``sha256``; ``Preprocess`` fails when the manifest read differs. Metadata-safe.
MANIFEST_SHA256: Final = "ManifestSha256"
#: A short dataset version label (``<UTC time>-<digest prefix>``), recorded on the model package.
DATA_VERSION: Final = "DataVersion"
#: Why the execution started: free text, up to 1024 printable characters without line breaks
#: (it becomes the model package description).
TRIGGER_REASON: Final = "TriggerReason"
PROCESSING_INSTANCE_TYPE: Final = "ProcessingInstanceType"
TRAINING_INSTANCE_TYPE: Final = "TrainingInstanceType"
TRAINING_INSTANCE_COUNT: Final = "TrainingInstanceCount"
#: ``PendingManualApproval`` (default), ``Approved`` or ``Rejected``.
MODEL_APPROVAL_STATUS: Final = "ModelApprovalStatus"
#: Metric of the currently approved model; ``0`` means there is no champion (:mod:`cdk_mlops.champion`).
CHAMPION_METRIC: Final = _champion.CHAMPION_METRIC
#: S3 URI of a Model Monitor ``constraints.json`` to validate new data against; empty skips.
BASELINE_CONSTRAINTS_URI: Final = _champion.BASELINE_CONSTRAINTS_URI

PARAMETER_NAMES: Final = (
    INPUT_MANIFEST_URI,
    MANIFEST_SHA256,
    DATA_VERSION,
    TRIGGER_REASON,
    PROCESSING_INSTANCE_TYPE,
    TRAINING_INSTANCE_TYPE,
    TRAINING_INSTANCE_COUNT,
    MODEL_APPROVAL_STATUS,
    CHAMPION_METRIC,
    BASELINE_CONSTRAINTS_URI,
)

#: Last part of the ``InputManifestUri`` default that :class:`~cdk_mlops.TrainingPipeline` sets: no
#: object has this key, so an execution started without a manifest fails at Preprocess with
#: SageMaker's "no objects found under <URI>", and the URI says what to pass.
NO_MANIFEST_KEY: Final = "start-with-InputManifestUri"
#: ``ManifestSha256`` default: the execution was started without one; nothing is compared.
UNVERIFIED_SHA256: Final = "unverified"

# --------------------------------------------------------------------------------------------
# Lineage: the CustomerMetadataProperties the Register step records on every model package.
# The manifest URI, its sha256 and the data version are recorded under their parameter names.
# --------------------------------------------------------------------------------------------

#: Metadata key: the pipeline execution that registered the package.
METADATA_EXECUTION_ARN: Final = "PipelineExecutionArn"
#: Metadata key: the source revision of the pipeline that trained the model.
METADATA_SOURCE_REVISION: Final = "SourceRevision"
#: Metadata key: where the gate's metric is in ``evaluation.json`` (``<metrics key>.<metric>.value``).
METADATA_EVALUATION_METRIC: Final = _champion.METADATA_EVALUATION_METRIC
#: Every metadata key the Register step records, in order.
LINEAGE_METADATA_KEYS: Final = (
    INPUT_MANIFEST_URI,
    MANIFEST_SHA256,
    DATA_VERSION,
    METADATA_EXECUTION_ARN,
    METADATA_SOURCE_REVISION,
    METADATA_EVALUATION_METRIC,
)

# --------------------------------------------------------------------------------------------
# Step names, channel and output names, container paths and file names.
# The scripts in cdk_mlops/ml/ repeat the file names (they ship alone); a test keeps them equal.
# --------------------------------------------------------------------------------------------

PREPROCESS: Final = "Preprocess"
DATA_QUALITY_BASELINE: Final = "DataQualityBaseline"
#: Added unless ``TrainingSettings.model_quality_baseline`` is False.
MODEL_QUALITY_BASELINE: Final = "ModelQualityBaseline"
TRAIN: Final = "Train"
EVALUATE: Final = "Evaluate"
GATE: Final = "Gate"
REGISTER: Final = "Register"
FAIL: Final = "Fail"
#: The steps of the default definition, in order (branch steps last).
STEP_NAMES: Final = (PREPROCESS, DATA_QUALITY_BASELINE, TRAIN, EVALUATE, MODEL_QUALITY_BASELINE, GATE, REGISTER, FAIL)
#: The step that logs each execution to MLflow; only with ``mlflow_tracking_arn`` and ``tracking_script``.
TRACK: Final = "Track"
# The SageMaker Clarify steps, only with ``TrainingSettings.clarify`` (binary classification).
#: A ``Model`` step (CreateModel): the trained model, which Clarify serves on a shadow endpoint.
CLARIFY_MODEL: Final = "ClarifyModel"
#: Pre-training bias of the training split (Clarify, no endpoint).
DATA_BIAS_BASELINE: Final = "DataBiasBaseline"
#: Post-training bias of the model's predictions on a sample of the test split (Clarify, shadow endpoint).
MODEL_BIAS_BASELINE: Final = "ModelBiasBaseline"
#: SHAP feature attributions on a sample of the test split (Clarify, shadow endpoint).
MODEL_EXPLAINABILITY_BASELINE: Final = "ModelExplainabilityBaseline"
#: The Clarify steps, in the order the definition lists them.
CLARIFY_STEP_NAMES: Final = (CLARIFY_MODEL, DATA_BIAS_BASELINE, MODEL_BIAS_BASELINE, MODEL_EXPLAINABILITY_BASELINE)

OUTPUT_TRAIN: Final = "train"
OUTPUT_VALIDATION: Final = "validation"
OUTPUT_TEST: Final = "test"
OUTPUT_BASELINE: Final = "baseline"
OUTPUT_REPORT: Final = "report"
OUTPUT_EVALUATION: Final = "evaluation"
#: ``Evaluate``'s output holding the test split's labels and the model's predictions.
OUTPUT_PREDICTIONS: Final = "predictions"
#: Output name of the Model Monitor analyzer, as the SageMaker SDK names it.
OUTPUT_MONITORING: Final = "monitoring_output"
# Evaluate's outputs for the Clarify steps (with ``TrainingSettings.clarify``); each is a folder
# of the same name under CLARIFY_DIR, which Evaluate's ``--clarify-config-dir`` names.
#: The sample of the test split the ModelBiasBaseline and ModelExplainabilityBaseline jobs analyse.
OUTPUT_CLARIFY_DATASET: Final = "clarify_dataset"
#: ``analysis_config.json`` of the DataBiasBaseline job.
OUTPUT_DATA_BIAS_CONFIG: Final = "data_bias_config"
#: ``analysis_config.json`` of the ModelBiasBaseline job.
OUTPUT_MODEL_BIAS_CONFIG: Final = "model_bias_config"
#: ``analysis_config.json`` of the ModelExplainabilityBaseline job.
OUTPUT_EXPLAINABILITY_CONFIG: Final = "explainability_config"
#: ``analysis_config.json`` a model-bias monitor takes (uploaded to ``model-bias-baseline/``).
OUTPUT_MODEL_BIAS_MONITOR_CONFIG: Final = "model_bias_monitor_config"
#: ``analysis_config.json`` a model-explainability monitor takes (uploaded to ``model-explainability-baseline/``).
OUTPUT_EXPLAINABILITY_MONITOR_CONFIG: Final = "explainability_monitor_config"
#: Evaluate's Clarify outputs, in the order the step declares them.
CLARIFY_OUTPUTS: Final = (
    OUTPUT_CLARIFY_DATASET,
    OUTPUT_DATA_BIAS_CONFIG,
    OUTPUT_MODEL_BIAS_CONFIG,
    OUTPUT_EXPLAINABILITY_CONFIG,
    OUTPUT_MODEL_BIAS_MONITOR_CONFIG,
    OUTPUT_EXPLAINABILITY_MONITOR_CONFIG,
)
#: Output name of a Clarify job, as the SageMaker SDK names it (``analysis.json`` and reports).
OUTPUT_ANALYSIS: Final = "analysis_result"

PROCESSING_ROOT: Final = "/opt/ml/processing"
#: Where SageMaker tells a job's container its host and the job's hosts.
RESOURCE_CONFIG: Final = "/opt/ml/config/resourceconfig.json"
CODE_DIR: Final = f"{PROCESSING_ROOT}/input/code"
MANIFEST_DIR: Final = f"{PROCESSING_ROOT}/input/manifest"
BASELINE_DATASET_DIR: Final = f"{PROCESSING_ROOT}/input/baseline_dataset_input"
#: Where ``Evaluate`` finds the training split with its header (``Preprocess``'s ``baseline`` output).
BASELINE_INPUT_DIR: Final = f"{PROCESSING_ROOT}/input/baseline"
MODEL_DIR: Final = f"{PROCESSING_ROOT}/input/model"
TEST_DIR: Final = f"{PROCESSING_ROOT}/input/test"
#: Where ``Track`` finds ``Evaluate``'s output (``evaluation.json``, ``comparison.json``).
EVALUATION_INPUT_DIR: Final = f"{PROCESSING_ROOT}/input/evaluation"
OUTPUT_ROOT: Final = f"{PROCESSING_ROOT}/output"
#: Where ``Evaluate`` writes the Clarify files (one folder per name of :data:`CLARIFY_OUTPUTS`).
CLARIFY_DIR: Final = f"{OUTPUT_ROOT}/clarify"
#: Clarify's container contract: the dataset, the analysis configuration (``analysis_config.json``)
#: and the results (``analysis.json``) are at these paths.
CLARIFY_DATA_DIR: Final = f"{PROCESSING_ROOT}/input/data"
CLARIFY_CONFIG_DIR: Final = f"{PROCESSING_ROOT}/input/config"
CHECKPOINT_DIR: Final = "/opt/ml/checkpoints"
#: Environment variable of ``Train``, ``Evaluate`` and ``Track`` holding the MLflow tracking server
#: ARN (``mlflow.set_tracking_uri(os.environ[...])`` with the ``sagemaker-mlflow`` plugin).
MLFLOW_TRACKING_ARN_ENV: Final = "MLFLOW_TRACKING_ARN"
#: pip's ``--index-url`` as an environment variable: where ``Track`` installs the MLflow client
#: from, when ``PipelineSpec.package_index_url`` is set.
PIP_INDEX_URL_ENV: Final = "PIP_INDEX_URL"

TRAIN_FILE: Final = "train.csv"
VALIDATION_FILE: Final = "validation.csv"
TEST_FILE: Final = "test.csv"
#: ``Preprocess``: the training split with its header, label first.
BASELINE_FILE: Final = "train_with_header.csv"
#: ``Evaluate``: the data-quality baseline dataset, the model's predictions in place of the labels.
BASELINE_DATASET_FILE: Final = "train_with_predictions.csv"
#: ``Evaluate``: the model-quality baseline dataset, the test split's labels with the model's predictions.
PREDICTIONS_FILE: Final = "test_predictions.csv"
REPORT_FILE: Final = "preprocess_report.json"
EVALUATION_FILE: Final = "evaluation.json"
COMPARISON_FILE: Final = "comparison.json"
STATISTICS_FILE: Final = "statistics.json"
CONSTRAINTS_FILE: Final = "constraints.json"
#: A Clarify job's configuration, in its config input (and the one a Clarify monitor takes).
ANALYSIS_CONFIG_FILE: Final = "analysis_config.json"
#: A Clarify job's results: bias metrics (the bias constraints) or SHAP values (the explainability constraints).
ANALYSIS_FILE: Final = "analysis.json"
#: ``Evaluate``: the rows of the test split the post-training bias and SHAP jobs analyse (no header, label first).
CLARIFY_DATASET_FILE: Final = "clarify_sample.csv"

# Columns of PREDICTIONS_FILE, which the ModelQualityBaseline step names to the analyzer.
#: The test split's label (the ground truth).
GROUND_TRUTH_COLUMN: Final = "label"
#: The model's probability of class 1 (binary classification only).
PROBABILITY_COLUMN: Final = "probability"
#: The predicted label (the probability thresholded) or, for regression, the predicted value.
PREDICTION_COLUMN: Final = "prediction"
#: Probability from which a prediction is class 1: ``Evaluate``'s metrics and the analyzer use it.
PROBABILITY_THRESHOLD: Final = 0.5

#: PropertyFile names on the Evaluate step.
EVALUATION_PROPERTY_FILE: Final = "EvaluationReport"
COMPARISON_PROPERTY_FILE: Final = "ChampionComparison"

APPROVAL_STATUSES: Final = ("PendingManualApproval", "Approved", "Rejected")

# Execution variables a definition may `Get`.
EXECUTION_VARIABLES: Final = _words(
    "PipelineExecutionId PipelineExecutionArn PipelineName PipelineArn StartDateTime CurrentDateTime "
    "TrainingJobName ProcessingJobName"
)
