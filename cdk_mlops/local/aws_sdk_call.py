"""What the CDK's ``AwsCustomResource`` provider does, done with boto3 on the local AWS in this process.

The provider (a Node.js Lambda function of ``aws-cdk-lib/custom-resources``) gets the ``Create``,
``Update`` and ``Delete`` properties of its resource as JSON strings, each one call of the
JavaScript SDK v3: ``service``, ``action``, ``parameters``, ``outputPaths`` (or ``outputPath``),
``physicalResourceId`` (``id`` or ``responsePath``), ``ignoreErrorCodesMatching``, ``region`` and
``assumedRoleArn``. For the call of a request it

1. picks the physical id: the call's ``physicalResourceId.id``; else, on create, the update's or
   the delete's, else the logical id; on update and delete, the current physical id;
2. puts that id where the parameters say ``PHYSICAL:RESOURCEID:`` and turns the strings the API
   takes as numbers or blobs into numbers or blobs;
3. makes the call, flattens the response to dotted keys (``PrefixLists.0.PrefixListId``), adds
   ``apiVersion`` and ``region``, and keeps the keys that start with one of ``outputPaths`` (every
   key without them). An error whose name matches ``ignoreErrorCodesMatching`` leaves no data;
4. takes the physical id from the flattened response at ``physicalResourceId.responsePath``.

:func:`execute` does the same, with boto3: the SDK v3 service and action names become botocore's
(``EC2``/``describeManagedPrefixLists`` → ``ec2``/``DescribeManagedPrefixLists``), and
:func:`local_client` hands each request to moto's own dispatcher in this process, with the
account in moto's account header, so no endpoint is needed and no request can leave the
process. The response is flattened as the provider does: JavaScript ``Date`` objects have no
entries, so timestamps are dropped; empty lists and objects leave no key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

#: Where the parameters of an update or delete call take the resource's physical id.
PHYSICAL_RESOURCE_ID = "PHYSICAL:RESOURCEID:"
#: The logical id of the Lambda function behind every ``AwsCustomResource`` (the CDK's singleton provider).
PROVIDER_ID = "AWS679f53fac002430cb0da5b7982bd2287"
#: Request types and the resource property that holds each one's call.
REQUESTS = ("Create", "Update", "Delete")

# SDK v2 class names (lower case) whose v3 client package is not named after the service itself.
_V2_NAMES = {
    "augmentedairuntime": "sagemaker-a2i-runtime",
    "cloudwatchevents": "events",
    "cognitoidentityserviceprovider": "cognito-idp",
    "forecastqueryservice": "forecastquery",
    "forecastservice": "forecast",
    "kinesisvideosignalingchannels": "kinesis-video-signaling",
    "rdsdataservice": "rds-data",
    "transcribeservice": "transcribe",
}
_NOT_ALNUM = re.compile(r"[^a-z0-9]")


class SdkCallError(RuntimeError):
    """A call of an ``AwsCustomResource`` that the provider would fail on."""


@dataclass(frozen=True)
class SdkCall:
    """One ``Create``/``Update``/``Delete`` property of an ``AwsCustomResource`` (an ``AwsSdkCall``)."""

    service: str
    action: str
    parameters: Mapping[str, Any]
    output_paths: tuple[str, ...] | None = None
    physical_id: str | None = None
    physical_id_path: str | None = None
    ignore_error_codes: str | None = None
    region: str | None = None
    assumed_role_arn: str | None = None

    @classmethod
    def parse(cls, value: Any) -> SdkCall | None:
        """The call a resource property declares (a JSON string, as the CDK renders it), or None.

        Raises:
            SdkCallError: if the property is not a call with a ``service`` and an ``action``.
        """
        if value in (None, ""):
            return None
        call = json.loads(value) if isinstance(value, str) else value
        if not isinstance(call, Mapping) or not call.get("service") or not call.get("action"):
            raise SdkCallError(f"not an AwsSdkCall (needs service and action): {value!r}")
        paths = [call["outputPath"]] if call.get("outputPath") else call.get("outputPaths")
        physical = call.get("physicalResourceId") or {}
        return cls(
            service=str(call["service"]),
            action=str(call["action"]),
            parameters=call.get("parameters") or {},
            output_paths=tuple(paths) if paths is not None else None,
            physical_id=physical.get("id"),
            physical_id_path=physical.get("responsePath"),
            ignore_error_codes=call.get("ignoreErrorCodesMatching"),
            region=call.get("region"),
            assumed_role_arn=call.get("assumedRoleArn"),
        )


@dataclass(frozen=True)
class SdkCallResult:
    """What the provider answers CloudFormation: the physical id and the data ``Fn::GetAtt`` reads."""

    physical_id: str
    data: Mapping[str, Any]


def is_provider(service_token: object) -> bool:
    """Whether a custom resource's ``ServiceToken`` (a function ARN) is the ``AwsCustomResource`` provider."""
    return isinstance(service_token, str) and PROVIDER_ID in service_token


def botocore_service(name: str) -> str:
    """The botocore service of an SDK v3 client name (``EC2``, ``@aws-sdk/client-ec2``) or v2 class name.

    Raises:
        SdkCallError: naming the service when botocore has none of that name.
    """
    key = _NOT_ALNUM.sub("", name.lower().removeprefix("@aws-sdk/client-"))
    key = _NOT_ALNUM.sub("", _V2_NAMES.get(key, key))
    # Most clients are named as botocore names the service; the index loads every service model (seconds).
    service = _service_names().get(key) or _service_index().get(key)
    if service is None:
        raise SdkCallError(f"no AWS service {name!r} in botocore; use the SDK v3 client name, such as 'EC2' or 'S3'")
    return service


@cache
def _service_names() -> dict[str, str]:
    """botocore service names by their name, lower case, letters and digits only."""
    import botocore.session

    return {_NOT_ALNUM.sub("", name): name for name in botocore.session.get_session().get_available_services()}


@cache
def _service_index() -> dict[str, str]:
    """botocore service names by their service id and name, lower case, letters and digits only."""
    import botocore.session

    session = botocore.session.get_session()
    index: dict[str, str] = {}
    for name in session.get_available_services():
        service_id = session.get_service_model(name).metadata["serviceId"]
        index.setdefault(_NOT_ALNUM.sub("", service_id.lower()), name)
        index.setdefault(_NOT_ALNUM.sub("", name), name)
    return index


def botocore_operation(operation_names: Sequence[str], action: str) -> str:
    """The botocore operation of an SDK v3 action (``describeManagedPrefixLists``, ``...Command``).

    Raises:
        SdkCallError: naming the action when the service has no such operation.
    """
    by_lower = {name.lower(): name for name in operation_names}
    for candidate in (action, action.removesuffix("Command")):
        if candidate.lower() in by_lower:
            return by_lower[candidate.lower()]
    raise SdkCallError(f"the service has no action {action!r}")


def with_physical_id(value: Any, physical_id: str) -> Any:
    """``value`` with every ``PHYSICAL:RESOURCEID:`` replaced by ``physical_id``."""
    if value == PHYSICAL_RESOURCE_ID:
        return physical_id
    if isinstance(value, list):
        return [with_physical_id(v, physical_id) for v in value]
    if isinstance(value, Mapping):
        return {k: with_physical_id(v, physical_id) for k, v in value.items()}
    return value


def coerce(shape: Any, value: Any) -> Any:
    """``value`` with the strings that ``shape`` (a botocore shape) takes as numbers or blobs converted.

    The provider does the same before the call, since CloudFormation renders tokens as strings.
    """
    if shape is None:
        return value
    if shape.type_name == "structure" and isinstance(value, Mapping):
        return {k: coerce(shape.members.get(k), v) for k, v in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [coerce(shape.member, v) for v in value]
    if shape.type_name == "map" and isinstance(value, Mapping):
        return {k: coerce(shape.value, v) for k, v in value.items()}
    if isinstance(value, str) and shape.type_name in ("integer", "long"):
        return int(value) if value.strip().lstrip("-").isdigit() else value
    if isinstance(value, str) and shape.type_name in ("float", "double"):
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(value, str | int | float) and shape.type_name == "blob":
        return str(value).encode()
    return value


def flatten(value: Any) -> dict[str, Any]:
    """A response as the provider flattens it: one dotted key per leaf (list items by index)."""
    flat: dict[str, Any] = {}

    def visit(item: Any, path: tuple[str, ...]) -> None:
        if hasattr(item, "read"):  # a streaming body: the provider reads it as a string
            item = item.read()
        if isinstance(item, bytes | bytearray):
            item = item.decode()
        if isinstance(item, Mapping):
            for key, child in item.items():
                visit(child, (*path, str(key)))
        elif isinstance(item, list | tuple):
            for index, child in enumerate(item):
                visit(child, (*path, str(index)))
        elif not isinstance(item, datetime | date):
            flat[".".join(path)] = item

    visit(value, ())
    return flat


def selected(data: Mapping[str, Any], output_paths: Sequence[str] | None) -> dict[str, Any]:
    """The keys of ``data`` that start with one of ``output_paths``; all of them when there are none."""
    if output_paths is None:
        return dict(data)
    return {k: v for k, v in data.items() if any(k.startswith(p) for p in output_paths)}


def local_client(service: str, *, account_id: str, region: str) -> Any:
    """A boto3 client whose requests moto's dispatcher answers in this process, for ``account_id``.

    A request moto does not recognize raises :class:`SdkCallError` instead of being sent.
    """
    import boto3
    from botocore.config import Config
    from moto.core.botocore_stubber import BotocoreStubber

    dispatcher = BotocoreStubber()
    dispatcher.enabled = True

    def answer_here(request: Any, **_: Any) -> Any:
        request.headers["x-moto-account-id"] = account_id
        response = dispatcher(event_name="before-send", request=request)
        if response is None:
            raise SdkCallError(f"the local AWS cannot answer {request.method} {request.url}")
        return response

    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)
    # An AWS_ENDPOINT_URL of this process (the Lambda runtime sets one) must not redirect the request.
    config = Config(ignore_configured_endpoint_urls=True, retries={"max_attempts": 1})  # type: ignore[call-arg]
    client = session.client(service, config=config)  # type: ignore[call-overload]
    client.meta.events.register_first("before-send", answer_here)  # before moto's own, when mock_aws is on
    return client


def choose_physical_id(
    request: str, calls: Mapping[str, SdkCall | None], *, logical_id: str, current: str | None
) -> str:
    """The physical id the provider reports before its call (step 1 of the module docstring)."""
    if request == "Create":
        declared = (c.physical_id for c in (calls.get(r) for r in REQUESTS) if c is not None and c.physical_id)
        return next(declared, logical_id)
    call = calls.get(request)
    return (call.physical_id if call is not None else None) or current or logical_id


def execute(
    request: str,
    calls: Mapping[str, SdkCall | None],
    *,
    logical_id: str,
    account_id: str,
    region: str,
    current: str | None = None,
) -> SdkCallResult:
    """Run the call of ``request`` (``Create``, ``Update`` or ``Delete``) as the provider would.

    Args:
        request: The CloudFormation request type.
        calls: The resource's calls by request type (:meth:`SdkCall.parse` of each property).
        logical_id: The resource's logical id.
        account_id: The stack's account; the call's ``assumedRoleArn`` names another.
        region: The stack's region; the call's ``region`` names another.
        current: The physical id so far (updates and deletes). Default: - none (a create).

    Raises:
        SdkCallError: if the call fails (and its error name does not match
            ``ignoreErrorCodesMatching``), or names a service or action botocore does not know.
    """
    physical_id = choose_physical_id(request, calls, logical_id=logical_id, current=current)
    call = calls.get(request)
    if call is None:
        return SdkCallResult(physical_id, {})
    from botocore import xform_name
    from botocore.exceptions import ClientError

    call_region = call.region or region
    account = call.assumed_role_arn.split(":")[4] if call.assumed_role_arn else account_id
    client = local_client(botocore_service(call.service), account_id=account, region=call_region)
    model = client.meta.service_model
    operation = botocore_operation(model.operation_names, call.action)
    parameters = coerce(model.operation_model(operation).input_shape, with_physical_id(call.parameters, physical_id))
    try:
        response = getattr(client, xform_name(operation))(**parameters)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if call.ignore_error_codes and re.search(call.ignore_error_codes, code):
            return SdkCallResult(physical_id, {})
        raise SdkCallError(f"{call.service}.{call.action} failed: {error}") from error
    response.pop("ResponseMetadata", None)
    data = {"apiVersion": model.api_version, "region": call_region, **flatten(response)}
    if call.physical_id_path:
        if call.physical_id_path not in data:
            raise SdkCallError(
                f"{call.service}.{call.action}: physicalResourceId.responsePath {call.physical_id_path!r} "
                f"is not in the response (keys: {sorted(data)})"
            )
        physical_id = str(data[call.physical_id_path])
    return SdkCallResult(physical_id, selected(data, call.output_paths))
