"""CloudFormation custom resource: a Clarify analysis configuration that names the served model.

Entry point: ``cdk_mlops.lambdas.analysis_config.handler.handler``; the asset holds this package
only (``common.lambda_code("lambdas/analysis_config")``), and it imports the standard library and
boto3.

Why at deploy time
------------------
A model-explainability monitor computes SHAP values against a shadow endpoint that SageMaker
Clarify creates from ``predictor.model_name`` of the job's analysis configuration. The training
pipeline registers that configuration with the model package before any environment serves the
package, and a SageMaker model name belongs to one account and region, so the registered file
cannot name the model an environment serves. ``ModelMonitor`` therefore declares this resource,
which copies the registered file, sets ``predictor.model_name`` (and the shadow endpoint's
instance type and count) to those of the environment, and writes the copy that the job
definition reads.

Properties
----------
``SourceUri``
    ``s3://bucket/key`` of the registered configuration: a JSON object with ``methods.shap``.
``TargetUri``
    ``s3://bucket/key`` of the copy. The bucket's default encryption applies.
``ModelName``, ``InstanceType``, ``InstanceCount``, ``EndpointNamePrefix``
    What the copy's ``predictor`` gets (CloudFormation passes the count as a string); the prefix
    names the shadow endpoint, which the monitoring jobs' role may manage by that prefix only.

Create and Update write the copy and answer its URI as the physical id and as ``Uri``;
the copy keeps every setting of the source but ``predictor.endpoint_name`` (an existing endpoint
Clarify would call instead of the shadow endpoint). Delete deletes the copy (a bucket already
gone counts as deleted). Every failure (an unreadable source, a file that is not a SHAP
configuration, a missing property) is answered ``FAILED`` with the reason, which
CloudFormation shows and acts on by rolling back; a request without a ``ResponseURL`` cannot be
answered, so it is logged and dropped.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.request
from collections.abc import Mapping
from typing import Any, Final

import boto3

# A logger of its own: Lambda's root handler prints it, and its level touches no other library's.
logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

_S3_URI: Final = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)\Z")
#: The request types CloudFormation sends a custom resource.
REQUEST_TYPES: Final = ("Create", "Update", "Delete")
#: Predictor settings of the source that would point Clarify elsewhere than the served model's shadow endpoint.
_NOT_KEPT: Final = frozenset({"endpoint_name"})
#: The largest configuration read: one baseline row and the headers are a few kilobytes.
_MAX_SOURCE_BYTES: Final = 1024 * 1024


class AnalysisConfigError(ValueError):
    """The request cannot be served; the message says what to fix."""


def split_uri(uri: object, name: str) -> tuple[str, str]:
    """``(bucket, key)`` of an ``s3://`` URI property, or :class:`AnalysisConfigError` naming it."""
    match = _S3_URI.match(uri) if isinstance(uri, str) else None
    if match is None:
        raise AnalysisConfigError(f"{name} must be an s3://bucket/key URI, got {uri!r}")
    return match.group(1), match.group(2)


def served_config(
    source: Mapping[str, Any], *, model_name: str, instance_type: str, instance_count: int, endpoint_name_prefix: str
) -> dict[str, Any]:
    """``source`` with ``predictor`` naming the served model (its other predictor settings kept).

    Raises:
        AnalysisConfigError: when ``source`` is not a SHAP analysis configuration.
    """
    methods = source.get("methods")
    if not isinstance(methods, Mapping) or not isinstance(methods.get("shap"), Mapping):
        raise AnalysisConfigError(
            "the source is not a Clarify explainability configuration: it has no methods.shap object"
        )
    predictor = source.get("predictor")
    if predictor is not None and not isinstance(predictor, Mapping):
        raise AnalysisConfigError(f"the source's predictor must be an object, got {type(predictor).__name__}")
    # An endpoint the source names instead of a model is not this environment's: the shadow endpoint is.
    kept = {k: v for k, v in (predictor or {}).items() if k not in _NOT_KEPT}
    return {
        **source,
        "predictor": {
            **kept,
            "model_name": model_name,
            "instance_type": instance_type,
            "initial_instance_count": instance_count,
            "endpoint_name_prefix": endpoint_name_prefix,
        },
    }


def _properties(event: Mapping[str, Any]) -> tuple[tuple[str, str], tuple[str, str], str, str, int, str]:
    props = event.get("ResourceProperties")
    if not isinstance(props, Mapping):
        raise AnalysisConfigError("the request has no ResourceProperties object")
    source = split_uri(props.get("SourceUri"), "SourceUri")
    target = split_uri(props.get("TargetUri"), "TargetUri")
    model_name, instance_type = props.get("ModelName"), props.get("InstanceType")
    prefix = props.get("EndpointNamePrefix")
    for name, value in (("ModelName", model_name), ("InstanceType", instance_type), ("EndpointNamePrefix", prefix)):
        if not isinstance(value, str) or not value:
            raise AnalysisConfigError(f"{name} must be a non-empty string, got {value!r}")
    try:
        count = int(str(props.get("InstanceCount")))
    except ValueError:
        count = 0
    if count < 1:
        raise AnalysisConfigError(f"InstanceCount must be a positive integer, got {props.get('InstanceCount')!r}")
    return source, target, str(model_name), str(instance_type), count, str(prefix)


def _write(s3: Any, event: Mapping[str, Any]) -> str:
    (source_bucket, source_key), (bucket, key), model_name, instance_type, count, prefix = _properties(event)
    response = s3.get_object(Bucket=source_bucket, Key=source_key)
    if int(response.get("ContentLength", 0)) > _MAX_SOURCE_BYTES:
        response["Body"].close()
        raise AnalysisConfigError(f"s3://{source_bucket}/{source_key} is larger than {_MAX_SOURCE_BYTES} bytes")
    body = response["Body"].read()
    try:
        source = json.loads(body)
    except ValueError as error:
        raise AnalysisConfigError(f"s3://{source_bucket}/{source_key} is not JSON: {error}") from None
    if not isinstance(source, Mapping):
        raise AnalysisConfigError(f"s3://{source_bucket}/{source_key} is not a JSON object")
    config = served_config(
        source, model_name=model_name, instance_type=instance_type, instance_count=count, endpoint_name_prefix=prefix
    )
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(config, indent=1).encode(), ContentType="application/json")
    uri = f"s3://{bucket}/{key}"
    logger.info("wrote %s from s3://%s/%s for model %s", uri, source_bucket, source_key, model_name)
    return uri


def apply(event: Mapping[str, Any], s3: Any) -> str:
    """Serve one request; the physical id (the copy's URI). Raises on anything that must fail it."""
    request = event.get("RequestType")
    if request not in REQUEST_TYPES:
        raise AnalysisConfigError(f"RequestType must be one of {', '.join(REQUEST_TYPES)}, got {request!r}")
    if request != "Delete":
        return _write(s3, event)
    physical = event.get("PhysicalResourceId")
    match = _S3_URI.match(physical) if isinstance(physical, str) else None
    if match is not None:
        # Only a copy this resource wrote: a failed create answers a physical id that is no URI.
        try:
            s3.delete_object(Bucket=match.group(1), Key=match.group(2))
        except s3.exceptions.NoSuchBucket:
            # The bucket went first (a store removed with its stack): the copy went with it.
            logger.info("%s is already gone with its bucket", physical)
    return str(physical)


def respond(event: Mapping[str, Any], context: Any, status: str, physical_id: str, reason: str = "") -> None:
    """Answer CloudFormation through the request's pre-signed ``ResponseURL``."""
    body = {
        "Status": status,
        "Reason": (reason or f"see CloudWatch log stream {getattr(context, 'log_stream_name', '?')}")[:3000],
        "PhysicalResourceId": physical_id,
        "StackId": event.get("StackId"),
        "RequestId": event.get("RequestId"),
        "LogicalResourceId": event.get("LogicalResourceId"),
        "Data": {"Uri": physical_id} if status == "SUCCESS" else {},
    }
    data = json.dumps(body).encode()
    # The pre-signed URL is signed for an empty content type.
    request = urllib.request.Request(
        str(event["ResponseURL"]),
        data=data,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(data))},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def handler(event: Any, context: Any) -> None:
    """Lambda entry point: serve the request and answer CloudFormation, whatever happens."""
    if not isinstance(event, Mapping) or not isinstance(event.get("ResponseURL"), str):
        logger.error("not a CloudFormation custom resource request (no ResponseURL); nothing to answer: %r", event)
        return
    # A failed Create has no copy: its physical id must not be an s3:// URI that Delete would remove.
    fallback = str(event.get("PhysicalResourceId") or f"failed-{event.get('RequestId', 'request')}")
    try:
        physical = apply(event, boto3.client("s3"))
    except Exception as error:  # every failure is answered, never left to time out
        logger.exception("%s failed", event.get("RequestType"))
        respond(event, context, "FAILED", fallback, f"{type(error).__name__}: {error}")
        return
    respond(event, context, "SUCCESS", physical)
