"""Pipelines authored with the SageMaker Python SDK (v3), deployed through cdk-mlops, offline.

The SDK is the optional extra ``[sdk]`` (``pip install 'cdk-mlops[sdk]'``); this module imports
it only inside the functions that need it, so ``import cdk_mlops.sdk`` works without it.

Left at its defaults, the SDK calls AWS while it builds a definition: it validates the IAM role
(IAM, STS), sends telemetry (STS and HTTPS), discovers or creates a default bucket (STS, S3)
and uploads local scripts (S3). Author the pipeline with :func:`pipeline_session` and the
placeholders below, and none of that happens::

    from cdk_mlops import sdk

    session = sdk.pipeline_session("eu-west-1")   # before importing sagemaker.mlops
    from sagemaker.core.processing import Processor
    ...
    processor = Processor(role=sdk.ROLE_ARN_PLACEHOLDER, output_kms_key=sdk.KMS_KEY_PLACEHOLDER,
                          sagemaker_session=session, ...)
    pipeline = Pipeline(name="churn", steps=[...], sagemaker_session=session)

    TrainingPipeline.from_sdk_pipeline(self, "Churn", pipeline=pipeline, data_store=store,
                                       pipeline_name="churn")

The construct builds the definition inside :func:`offline` (any attempt to reach the network
fails the synth), then substitutes its own resources for the placeholders: its execution role,
the data store's bucket and KMS key, its model package group and, with MLflow, the tracking
server. Scripts must be ``s3://`` URIs (for example the ``s3_object_url`` of a CDK asset):
a local path would be uploaded.

Standard library only at import time.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

#: How to install what this module needs.
INSTALL_HINT: Final = "pip install 'cdk-mlops[sdk]'"

#: Author every job with this role; the construct substitutes its execution role. ARN-shaped,
#: so the SDK takes it as it is instead of looking a role name up in IAM.
ROLE_ARN_PLACEHOLDER: Final = "arn:aws:iam::000000000000:role/cdk-mlops-placeholder-role"
#: The session's default bucket and the bucket of every S3 URI in the data store; the
#: construct substitutes the data store's bucket name.
BUCKET_PLACEHOLDER: Final = "cdk-mlops-placeholder-bucket"
#: Volume and output key of every job; the construct substitutes the data store's key ARN.
KMS_KEY_PLACEHOLDER: Final = "arn:aws:kms:us-east-1:000000000000:key/cdk-mlops-placeholder-key"
#: The model package group of a registration step; the construct substitutes its group name.
MODEL_PACKAGE_GROUP_PLACEHOLDER: Final = "cdk-mlops-placeholder-models"
#: An MLflow tracking server (``Pipeline(mlflow_config=MlflowConfig(mlflow_resource_arn=...))``
#: or a job's environment); the construct substitutes its tracking server's ARN.
MLFLOW_TRACKING_ARN_PLACEHOLDER: Final = (
    "arn:aws:sagemaker:us-east-1:000000000000:mlflow-tracking-server/cdk-mlops-placeholder"
)

PLACEHOLDERS: Final = (
    ROLE_ARN_PLACEHOLDER,
    BUCKET_PLACEHOLDER,
    KMS_KEY_PLACEHOLDER,
    MODEL_PACKAGE_GROUP_PLACEHOLDER,
    MLFLOW_TRACKING_ARN_PLACEHOLDER,
)

#: The SDK configuration of :func:`pipeline_session`: telemetry off. Passing a dictionary also
#: keeps the session from reading SDK defaults from configuration files.
OFFLINE_SDK_CONFIG: Final[Mapping[str, Any]] = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}

# The SDK sends telemetry on daemon threads of this name; offline() waits for them.
_TELEMETRY_THREAD = "sagemaker-telemetry"
# Credentials that sign nothing (every call is refused first); static, so that botocore never
# looks for credentials in the instance metadata service, SSO or a profile.
_OFFLINE_CREDENTIALS: Final = "cdk-mlops-offline"


class SdkNotInstalledError(ImportError):
    """The SageMaker Python SDK is not installed; the message says how to install it."""


class AwsCallAttemptedError(RuntimeError):
    """Code tried to reach AWS (or any network address) where no call may be made."""


def _missing_sdk(error: ImportError) -> SdkNotInstalledError:
    return SdkNotInstalledError(
        f"the SageMaker Python SDK (v3) is needed for pipelines authored with it ({error}); "
        f"install it with: {INSTALL_HINT}"
    )


def _refuse_botocore_call(event_name: str = "", **_: Any) -> None:
    """A botocore ``before-call``/``before-send`` handler: no request leaves this session."""
    raise AwsCallAttemptedError(
        f"the SageMaker SDK tried to call AWS ({event_name}) while building a pipeline definition; "
        "author the pipeline with cdk_mlops.sdk.pipeline_session() and the cdk_mlops.sdk placeholders "
        "(an ARN-shaped role, explicit s3:// script URIs, no local files)"
    )


def pipeline_session(
    region: str, *, default_bucket: str = BUCKET_PLACEHOLDER, default_bucket_prefix: str | None = None
) -> Any:
    """A ``PipelineSession`` that can build definitions but cannot call AWS.

    It has an explicit region and default bucket (no bucket discovery or creation), telemetry
    opted out (:data:`OFFLINE_SDK_CONFIG`), static placeholder credentials, and botocore
    ``before-call`` and ``before-send`` handlers on its boto3 session that raise
    :class:`AwsCallAttemptedError`, so every client the SDK makes from it refuses to send.

    Side effects on this process, both needed by the SDK itself: ``AWS_DEFAULT_REGION`` is set
    to ``region`` when no region is set (``sagemaker.mlops`` makes a boto3 client when it is
    imported, which needs a region; call this before importing it), and
    ``SAGEMAKER_VALIDATE_ROLE=false`` (the placeholder role cannot be validated in IAM).

    Args:
        region: The region of the stack the pipeline is deployed with.
        default_bucket: Default: - :data:`BUCKET_PLACEHOLDER`, which the construct replaces
            with the data store's bucket.
        default_bucket_prefix: Key prefix of the outputs the SDK names itself (a
            ``ProcessingOutput`` without an ``s3://`` URI, a training job's model). Use
            ``artifacts/<pipeline name>``, the prefix the construct's role may write.
            Default: - none: such outputs land at the bucket's top level, which the construct
            rejects.

    Raises:
        SdkNotInstalledError: without the ``[sdk]`` extra.
    """
    if not os.environ.get("AWS_REGION") and not os.environ.get("AWS_DEFAULT_REGION"):
        os.environ["AWS_DEFAULT_REGION"] = region
    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    try:
        import boto3
        from sagemaker.core.workflow.pipeline_context import (  # type: ignore[import-untyped]
            PipelineSession,
        )
    except ImportError as error:
        raise _missing_sdk(error) from error
    boto_session = boto3.Session(
        region_name=region,
        aws_access_key_id=_OFFLINE_CREDENTIALS,
        aws_secret_access_key=_OFFLINE_CREDENTIALS,
    )
    # Registered before the PipelineSession makes its clients, so that every client inherits them.
    boto_session.events.register("before-call", _refuse_botocore_call)
    boto_session.events.register("before-send", _refuse_botocore_call)
    session = PipelineSession(
        boto_session=boto_session,
        default_bucket=default_bucket,
        default_bucket_prefix=default_bucket_prefix,
        sagemaker_config=json.loads(json.dumps(OFFLINE_SDK_CONFIG)),
    )
    # Session.default_bucket() checks that the bucket exists, and creates it when it does not
    # (S3 ListBuckets, HeadBucket, CreateBucket), the first time an output URI is derived from
    # it. The bucket is the data store's, created by the stack: mark it as known, so that the
    # SDK uses the name as it is.
    session._default_bucket = default_bucket
    return session


@contextmanager
def offline() -> Iterator[list[str]]:
    """Refuse every network connection and AWS API call in this process while the block runs.

    Patches ``socket`` (``connect``, ``connect_ex``, ``create_connection``, ``getaddrinfo``) and,
    when botocore is installed, ``botocore.endpoint.Endpoint.make_request`` (before a request is
    signed, so no credentials are looked up either). Each attempt is appended to the yielded
    list and raises :class:`AwsCallAttemptedError`. Before the patches are removed, the block
    waits for the SDK's telemetry threads, so none can send after it. Building a pipeline
    definition needs no network at all, so nothing, not even loopback, is allowed.
    """
    attempts: list[str] = []

    def refuse(what: str) -> AwsCallAttemptedError:
        attempts.append(what)
        return AwsCallAttemptedError(f"no network access while building a pipeline definition: {what}")

    def connect(_sock: socket.socket, address: Any) -> None:
        raise refuse(f"connect to {address!r}")

    def connect_ex(_sock: socket.socket, address: Any) -> int:
        raise refuse(f"connect to {address!r}")

    def create_connection(address: Any, *_: Any, **__: Any) -> socket.socket:
        raise refuse(f"connect to {address!r}")

    def getaddrinfo(host: Any, *_: Any, **__: Any) -> list[Any]:
        raise refuse(f"resolve {host!r}")

    def make_request(_endpoint: Any, operation_model: Any, _request: Any) -> Any:
        raise refuse(f"AWS API call {getattr(operation_model, 'name', operation_model)}")

    patches: list[tuple[Any, str, Any]] = [
        (socket.socket, "connect", connect),
        (socket.socket, "connect_ex", connect_ex),
        (socket, "create_connection", create_connection),
        (socket, "getaddrinfo", getaddrinfo),
    ]
    try:
        import botocore.endpoint
    except ImportError:  # pragma: no cover - botocore comes with the SDK
        pass
    else:
        patches.append((botocore.endpoint.Endpoint, "make_request", make_request))
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    before = set(threading.enumerate())
    for owner, name, replacement in patches:
        setattr(owner, name, replacement)
    try:
        yield attempts
    finally:
        for thread in set(threading.enumerate()) - before:
            if thread.name == _TELEMETRY_THREAD:
                thread.join(timeout=10)
        for owner, name, original in originals:
            setattr(owner, name, original)


def _telemetry_opted_out(session: Any) -> bool:
    config = getattr(session, "sagemaker_config", None) or {}
    modules = config.get("SageMaker", {}).get("PythonSDK", {}).get("Modules", {})
    return modules.get("TelemetryOptOut") is True


def sdk_definition(pipeline: Any) -> dict[str, Any]:
    """The definition of an SDK ``Pipeline`` (built :func:`offline`), or a definition JSON string parsed.

    Raises:
        SdkNotInstalledError: for a ``Pipeline`` object without the ``[sdk]`` extra.
        ValueError: for something that is neither, a session with telemetry on, invalid JSON,
            or an attempt to reach the network (the message says what was attempted).
    """
    if isinstance(pipeline, str | bytes):
        try:
            parsed = json.loads(pipeline)
        except ValueError as error:
            raise ValueError(f"the pipeline definition is not valid JSON: {error}") from None
        if not isinstance(parsed, dict):
            raise ValueError("the pipeline definition must be a JSON object")
        return parsed
    try:
        from sagemaker.mlops.workflow.pipeline import Pipeline  # type: ignore[import-untyped]
    except ImportError as error:
        raise _missing_sdk(error) from error
    if not isinstance(pipeline, Pipeline):
        raise ValueError(
            f"pipeline must be a sagemaker.mlops.workflow.pipeline.Pipeline or its definition JSON, "
            f"got {type(pipeline).__name__}"
        )
    if not _telemetry_opted_out(pipeline.sagemaker_session):
        raise ValueError(
            "the pipeline's session sends telemetry to AWS while the definition is built; "
            "create it with cdk_mlops.sdk.pipeline_session(region)"
        )
    with offline() as attempts:
        try:
            text = pipeline.definition()
        except AwsCallAttemptedError as error:
            raise ValueError(str(error)) from None
    if attempts:
        raise ValueError(
            "the SageMaker SDK tried to reach the network while building the definition: " + "; ".join(attempts)
        )
    definition: dict[str, Any] = json.loads(text)
    return definition


def sdk_region(pipeline: Any) -> str | None:
    """The region of an SDK ``Pipeline``'s session, or None for a definition string."""
    if isinstance(pipeline, str | bytes):
        return None
    session = getattr(pipeline, "sagemaker_session", None)
    region = getattr(session, "boto_region_name", None)
    return region if isinstance(region, str) else None


def substitute(value: Any, replacements: Mapping[str, str]) -> Any:
    """``value`` with every occurrence of each key replaced inside every string (keys included).

    Replacements may be CDK tokens: the construct serializes the result with
    ``Stack.to_json_string``, which turns strings with tokens into ``Fn::Join``.
    """
    if isinstance(value, str):
        for placeholder, replacement in replacements.items():
            if placeholder in value:
                value = value.replace(placeholder, replacement)
        return value
    if isinstance(value, list):
        return [substitute(item, replacements) for item in value]
    if isinstance(value, dict):
        return {substitute(k, replacements): substitute(v, replacements) for k, v in value.items()}
    return value


def strings(value: Any) -> Iterator[str]:
    """Every string inside ``value`` (dictionary keys excluded)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
