"""Custom resources served by a Lambda function of this project: its handler, run in this process.

A ``Custom::`` resource whose ``ServiceToken`` is the ARN of a function on the local AWS whose
handler lies in ``cdk_mlops.lambdas`` (``Custom::ExplainabilityAnalysisConfig``, served by
``cdk_mlops.lambdas.analysis_config.handler.handler``) runs as CloudFormation and Lambda run it:

the request
    CloudFormation's event for ``Create``, ``Update`` and ``Delete`` (``RequestType``,
    ``ServiceToken``, ``ResponseURL``, ``StackId``, ``RequestId``, ``ResourceType``,
    ``LogicalResourceId``, ``PhysicalResourceId`` for update and delete, ``ResourceProperties``,
    ``OldResourceProperties`` for update), with numbers and booleans of the properties as strings,
    as CloudFormation passes them.
the invocation
    the handler runs in this process through :class:`~cdk_mlops.local.runtime.LambdaContainer`,
    with the configuration ``GetFunctionConfiguration`` reports (its environment variables and
    timeout), the endpoint of the local AWS server that serves the CloudFormation request, and
    credentials of the function's execution role (``AssumeRole``, as Lambda gets them): moto
    answers a request in the account of its credentials, so the function's calls reach the
    role's account, the stack's, whichever accounts the local AWS serves.
the answer
    ``ResponseURL`` is an HTTP server on 127.0.0.1 that lives for the one request
    (:class:`ResponseReceiver`) and takes the PUT as S3 takes it at CloudFormation's pre-signed
    URL: the URL is signed for an empty content type, so any other ``Content-Type`` is refused as
    S3 refuses it. A bucket of moto's would hold the answer too, but the emulation would then own
    a bucket in an account of the team's, listed by ``ListBuckets``; the server leaves nothing
    behind.
the outcome
    ``SUCCESS`` keeps the answered physical id (``Ref``) and ``Data`` (``Fn::GetAtt``; a key the
    answer lacks is an error naming the resource and the keys it has). ``FAILED``, or no answer
    (the handler raised or returned without answering, where CloudFormation would wait an hour),
    fails the stack operation: the request is refused with the reason, and the stack is left
    ``CREATE_FAILED``, ``UPDATE_FAILED`` or ``DELETE_FAILED`` (moto does not roll back) with the
    reason as its status reason and in the resource's event. A resource that failed to create
    keeps the physical id it answered, so deleting the stack sends it a ``Delete``, as
    CloudFormation does; moto's retries within one operation (it retries failed updates and
    deletes to get past dependency order) do not invoke the function again. An update that
    answers a new physical id is followed by a ``Delete`` of the old one with the old properties;
    as in CloudFormation's cleanup phase, that delete failing is logged and recorded as the
    resource's event, and the update stands (so is the delete of a resource an update removes).

moto deletes a stack's resources in no particular order, and may delete the function before the
resource it serves (CloudFormation deletes the resource first, since it depends on the
function): the delete then runs with the configuration last read.

No deadlock: the handler runs on the thread that serves the CloudFormation request; the server is
threaded, so the handler's own requests and its answer are served by other threads, none of which
waits for the CloudFormation lock. A handler that called CloudFormation itself would wait for that
lock until its client timed out. A handler that never returns holds the request as long.

The function runs only while CloudFormation is served by the local AWS server
(:func:`cdk_mlops.local.server.local_aws`, how every local deploy runs); under moto's in-process
mock there is no endpoint to give it, and the resource fails saying so.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
import socketserver
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Final, NoReturn

from botocore.exceptions import ClientError
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import Event, Stack, cloudformation_backends
from moto.core.common_models import CloudFormationModel

from cdk_mlops.local.aws_sdk_call import SdkCallError, local_client
from cdk_mlops.local.cfn_resource import Props, ShimResource
from cdk_mlops.local.endpoint import LOCAL_HOST, LocalAws, child_env, require_loopback
from cdk_mlops.local.runtime import FunctionConfiguration, LambdaContainer

logger = logging.getLogger(__name__)

#: The package whose handlers run in this process; a template names no other code to import.
HANDLER_PACKAGE: Final = "cdk_mlops.lambdas."
#: The largest answer CloudFormation accepts, in bytes.
MAX_RESPONSE_BYTES: Final = 4096
#: The custom resource type of this project whose function runs locally.
ANALYSIS_CONFIG_TYPE: Final = "Custom::ExplainabilityAnalysisConfig"

_FUNCTION_ARN: Final = re.compile(
    r"^arn:aws[a-z-]*:lambda:([a-z0-9-]+):([0-9]{12}):function:([A-Za-z0-9_-]+)(?::[A-Za-z0-9$_-]+)?\Z"
)
_STACK_TYPE: Final = "AWS::CloudFormation::Stack"


class CustomResourceError(ValidationError):
    """A custom resource CloudFormation cannot complete; the stack operation fails with the message."""

    def __init__(self, message: str) -> None:
        super().__init__(message=message)


# --- the function ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _AccountAws(LocalAws):
    """The local AWS of one account as CloudFormation reaches it: every client answered in this process.

    :meth:`FunctionConfiguration.read` reads a function through ``client``; here that is moto's
    dispatcher with the account in its header, so a function of any account is found, without an
    endpoint (``endpoint_url`` is empty: the routing of a custom resource looks its function up
    before one is known, and under ``mock_aws`` there is none).
    """

    account: str = ""

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client whose requests moto answers in this process, for this account."""
        return local_client(service, account_id=self.account, region=self.region)

    def account_id(self) -> str:
        """The account this view answers for."""
        return self.account


@dataclass(frozen=True)
class ProviderFunction:
    """The function a custom resource's ``ServiceToken`` names, as the local Lambda reports it."""

    configuration: FunctionConfiguration
    role_arn: str
    account_id: str
    region: str

    @classmethod
    def find(cls, service_token: object) -> ProviderFunction | None:
        """The function ``service_token`` names, if it is on the local AWS with a handler in ``cdk_mlops.lambdas``.

        ``None`` for anything else: another kind of token, no such function, another handler.
        """
        match = _FUNCTION_ARN.match(service_token) if isinstance(service_token, str) else None
        if match is None:
            return None
        region, account = match.group(1), match.group(2)
        view = _AccountAws(endpoint_url="", region=region, account=account)
        try:
            configuration = FunctionConfiguration.read(view, str(service_token))
            role = view.client("lambda").get_function_configuration(FunctionName=service_token).get("Role", "")
        except (ClientError, SdkCallError):
            return None
        if not configuration.handler.startswith(HANDLER_PACKAGE):
            return None
        return cls(configuration, str(role), account, region)

    def credentials(self) -> dict[str, str]:
        """Environment variables with credentials of the execution role, as Lambda sets them.

        moto issues them in the role's account, and answers each request in the account of its
        credentials.
        """
        sts = local_client("sts", account_id=self.account_id, region=self.region)
        issued = sts.assume_role(RoleArn=self.role_arn, RoleSessionName=self.configuration.name[:64])["Credentials"]
        return {
            "AWS_ACCESS_KEY_ID": issued["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": issued["SecretAccessKey"],
            "AWS_SESSION_TOKEN": issued["SessionToken"],
        }

    def entry_point(self) -> Callable[[Any, Any], Any]:
        """The handler function (imported: it runs in this process, as in its Lambda container)."""
        module, _, name = self.configuration.handler.rpartition(".")
        entry: Callable[[Any, Any], Any] = getattr(importlib.import_module(module), name)
        return entry


def is_local_function(service_token: object) -> bool:
    """Whether a custom resource's ``ServiceToken`` is a local function of ``cdk_mlops.lambdas``."""
    return ProviderFunction.find(service_token) is not None


def serving_endpoint() -> str:
    """The endpoint of the local AWS server serving the CloudFormation request under way.

    Raises:
        CustomResourceError: when moto answers CloudFormation in process (``mock_aws``): no server.
        NotLoopbackError: when the server listens beyond loopback.
    """
    import flask  # moto's server is a Flask application; its request holds the address it was served on

    if not flask.has_request_context():
        raise CustomResourceError(
            "a custom resource served by a function of cdk_mlops.lambdas runs only when CloudFormation is served "
            "by the local AWS server (cdk_mlops.local.server.local_aws); under moto's in-process mock the function "
            "has no endpoint to call"
        )
    environ = flask.request.environ
    host, port = str(environ.get("SERVER_NAME", "")), str(environ.get("SERVER_PORT", ""))
    require_loopback(f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}")
    return f"http://{LOCAL_HOST}:{port}"


# --- the answer ------------------------------------------------------------------------------------


class _ResponseServer(socketserver.TCPServer):
    """The server behind one ``ResponseURL``; keeps every body PUT to its path."""

    def __init__(self, path: str) -> None:
        # TCPServer, not HTTPServer: HTTPServer looks its address up in DNS when it binds.
        super().__init__(("127.0.0.1", 0), _PutHandler)
        self.path = path
        self.bodies: list[bytes] = []


class _PutHandler(BaseHTTPRequestHandler):
    """Answers a PUT as S3 answers one at a URL pre-signed for an empty content type."""

    server: _ResponseServer

    def do_PUT(self) -> None:
        """Keep the body, or refuse the request as S3 would."""
        content_type = self.headers.get("Content-Type") or ""
        if self.path != self.server.path or content_type:
            # The signature covers the path and the (empty) content type.
            self._answer(403, "SignatureDoesNotMatch", "the URL is signed for this path and an empty Content-Type")
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._answer(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
            return
        self.server.bodies.append(self.rfile.read(int(length)))
        self._answer(200)

    def _answer(self, status: int, code: str = "", message: str = "") -> None:
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode() if code else b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Log to this module's logger, not to stderr."""
        logger.debug("response URL: " + format, *args)


class ResponseReceiver:
    """The ``ResponseURL`` of one request: an HTTP server on 127.0.0.1 for the ``with`` block.

    It serves on its own thread, so a handler that answers from the thread serving the
    CloudFormation request is answered at once. The last body PUT is the answer, as the object at
    a pre-signed URL is the last one written.
    """

    def __init__(self, request_id: str) -> None:
        self._server = _ResponseServer(f"/cloudformation-custom-resource-response/{request_id}")
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="custom-resource-response",
            daemon=True,
        )

    @property
    def url(self) -> str:
        """The pre-signed URL stand-in: ``http://127.0.0.1:PORT/...``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self._server.path}"

    @property
    def body(self) -> bytes | None:
        """The answer PUT so far, if any."""
        return self._server.bodies[-1] if self._server.bodies else None

    def __enter__(self) -> ResponseReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@dataclass(frozen=True)
class Outcome:
    """What CloudFormation makes of one request: success (physical id and data) or the failure's reason."""

    request_id: str
    physical_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    failure: str | None = None


def outcome(event: Mapping[str, Any], body: bytes | None, raised: BaseException | None = None) -> Outcome:
    """Judge the answer ``body`` to ``event`` as CloudFormation does (``raised``: what the handler raised)."""
    request_id = str(event["RequestId"])

    def failed(reason: str, physical_id: str | None = None) -> Outcome:
        return Outcome(request_id, physical_id, failure=reason)

    if body is None:
        detail = f"the function failed: {type(raised).__name__}: {raised}" if raised else "the function did not answer"
        return failed(
            "CloudFormation did not receive a response from your Custom Resource. Please check your logs for "
            f"requestId [{request_id}] ({detail})."
        )
    if len(body) > MAX_RESPONSE_BYTES:
        return failed(f"Response object is too long ({len(body)} bytes; at most {MAX_RESPONSE_BYTES}).")
    try:
        answer = json.loads(body)
    except ValueError:
        return failed(f"Response is not valid JSON: {body[:200]!r}")
    if not isinstance(answer, Mapping):
        return failed("Response is not a JSON object.")
    for key in ("StackId", "RequestId", "LogicalResourceId"):
        if answer.get(key) != event[key]:
            return failed(f"Response {key} {answer.get(key)!r} does not match the request's {event[key]!r}.")
    physical_id = answer.get("PhysicalResourceId")
    if not isinstance(physical_id, str) or not physical_id:
        return failed(f"Invalid PhysicalResourceId {physical_id!r}.")
    status, data = answer.get("Status"), answer.get("Data") or {}
    if status == "FAILED":
        return failed(
            "Received response status [FAILED] from custom resource. Message returned: "
            f"{answer.get('Reason', '')} (RequestId: {request_id})",
            physical_id,
        )
    if status != "SUCCESS":
        return failed(f"Invalid response Status {status!r}: SUCCESS or FAILED.", physical_id)
    if not isinstance(data, Mapping):
        return failed(f"Response Data must be an object, got {type(data).__name__}.", physical_id)
    return Outcome(request_id, physical_id, dict(data))


def as_cloudformation_sends(value: Any) -> Any:
    """A property value as CloudFormation passes it to a custom resource: numbers and booleans as strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): as_cloudformation_sends(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_cloudformation_sends(v) for v in value]
    return value


def invoke(function: ProviderFunction, event: Mapping[str, Any]) -> BaseException | None:
    """Run the function's handler on ``event`` as Lambda runs it; what it raised, if anything."""
    endpoint = serving_endpoint()
    env = {**child_env(endpoint, region=function.region, base={}), **function.credentials()}
    container = LambdaContainer(function.configuration, aws=LocalAws(endpoint, function.region, env))
    with container.invocation() as context:
        try:
            function.entry_point()(event, context)
        except Exception as error:  # Lambda reports it; CloudFormation then hears nothing
            logger.exception("%s failed on %s", function.configuration.name, event.get("RequestType"))
            return error
    return None


# --- the resource ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Declared:
    """A custom resource as its stack declares it: logical id, type and the stack."""

    logical_id: str
    resource_type: str
    stack_id: str
    stack: Stack | None


def _operation(stack: Stack | None) -> Event | None:
    """The stack's latest ``*_IN_PROGRESS`` event: the operation under way."""
    events = stack.events if stack is not None else []
    return next(
        (e for e in reversed(events) if e.resource_type == _STACK_TYPE and "_IN_PROGRESS" in e.resource_status), None
    )


class LocalFunctionCustomResource(ShimResource, CloudFormationModel):
    """A custom resource whose function (of ``cdk_mlops.lambdas``) runs in this process (module docstring).

    ``Custom::ExplainabilityAnalysisConfig`` is routed here by its type; any other custom type whose
    ``ServiceToken`` is such a function is routed here by that token.
    """

    TYPE = ANALYSIS_CONFIG_TYPE

    def __init__(
        self,
        declared: Declared,
        answer: Outcome,
        properties: Mapping[str, Any],
        function: ProviderFunction | None,
    ) -> None:
        super().__init__(answer.physical_id or f"{declared.logical_id}-{answer.request_id}", answer.data)
        self.declared = declared
        self.properties = dict(properties)
        self.function = function
        self.failed = answer.failure is not None
        # What moto sets on the resources it creates; set here too for the one a failed create leaves.
        self.cf_resource_type = declared.resource_type
        self.logical_resource_id = declared.logical_id
        self._failed_in: Event | None = None
        self._failure: CustomResourceError | None = None

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if self.failed:
            return None  # a resource that failed to create has no attributes; an output naming one is empty
        if attribute_name not in self.attributes:
            raise CustomResourceError(
                f"Fn::GetAtt {self.declared.logical_id}.{attribute_name}: the response Data of custom resource "
                f"{self.declared.logical_id} has no key {attribute_name!r} (it has {sorted(self.attributes)})"
            )
        return self.attributes[attribute_name]

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Props, account_id: str, region_name: str, **kwargs: Any
    ) -> LocalFunctionCustomResource:
        stack_id = str(kwargs.get("StackId") or "")
        declared = Declared(
            logical_id=str(kwargs.get("LogicalId") or resource_name),
            resource_type=str(kwargs.get("ResourceType") or cloudformation_json.get("Type") or cls.TYPE),
            stack_id=stack_id,
            stack=cloudformation_backends[account_id][region_name].stacks.get(stack_id),
        )
        properties = as_cloudformation_sends(cloudformation_json.get("Properties", {}))
        function = ProviderFunction.find(properties.get("ServiceToken"))
        answer = cls._request(declared, function, "Create", properties)
        created = cls(declared, answer, properties, function)
        if answer.failure is not None:
            if declared.stack is not None:
                # Kept, so that moto neither creates it again when asked for it (every DescribeStacks
                # resolves the outputs) nor forgets to delete it with the stack.
                declared.stack.resource_map._parsed_resources[declared.logical_id] = created
            created._fail("CREATE", answer)
        return created

    def modify(self, name: str, p: Props, account: str, region: str) -> ShimResource:
        self._refail_in_same_operation()
        properties = as_cloudformation_sends(p)
        function = ProviderFunction.find(properties.get("ServiceToken"))
        answer = self._request(
            self.declared,
            function,
            "Update",
            properties,
            PhysicalResourceId=self.physical_resource_id,
            OldResourceProperties=self.properties,
        )
        if answer.failure is not None:
            self._fail("UPDATE", answer)
        updated = LocalFunctionCustomResource(self.declared, answer, properties, function)
        if updated.physical_resource_id != self.physical_resource_id:
            self._clean_up()  # a new physical id replaces the resource: CloudFormation deletes the old one
        return updated

    def delete(self, account_id: str, region_name: str) -> None:
        operation = _operation(self.declared.stack)
        if operation is not None and operation.resource_status.startswith("UPDATE"):
            self._clean_up()  # an update removes the resource: its delete belongs to the cleanup phase
            return
        self._refail_in_same_operation()
        answer = self._delete()
        if answer is not None and answer.failure is not None:
            stack = self.declared.stack
            if stack is not None:
                # moto took the stack out before deleting its resources; a stack whose delete failed stays.
                cloudformation_backends[stack.account_id][stack.region_name].stacks.setdefault(stack.stack_id, stack)
            self._fail("DELETE", answer)

    # --- requests

    @staticmethod
    def _request(
        declared: Declared,
        function: ProviderFunction | None,
        request_type: str,
        properties: Mapping[str, Any],
        **extra: Any,
    ) -> Outcome:
        """Send one request to the function; what CloudFormation makes of its answer."""
        request_id = str(uuid.uuid4())
        token = properties.get("ServiceToken")
        if function is None:
            return Outcome(
                request_id,
                extra.get("PhysicalResourceId"),
                failure=f"ServiceToken {token!r} is no function of {HANDLER_PACKAGE}* on the local AWS",
            )
        with ResponseReceiver(request_id) as receiver:
            event = {
                "RequestType": request_type,
                "ServiceToken": token,
                "ResponseURL": receiver.url,
                "StackId": declared.stack_id,
                "RequestId": request_id,
                "ResourceType": declared.resource_type,
                "LogicalResourceId": declared.logical_id,
                **extra,
                "ResourceProperties": dict(properties),
            }
            raised = invoke(function, event)
            body = receiver.body
        return outcome(event, body, raised)

    def _delete(self) -> Outcome | None:
        """Send ``Delete`` for the current physical id with the current properties (``None``: nothing to ask)."""
        # moto may delete the function first (CloudFormation would not: the resource depends on it).
        function = ProviderFunction.find(self.properties.get("ServiceToken")) or self.function
        if function is None:
            return None  # no function ever served it: nothing was created
        return self._request(
            self.declared, function, "Delete", self.properties, PhysicalResourceId=self.physical_resource_id
        )

    def _clean_up(self) -> None:
        """Delete as CloudFormation's cleanup phase does: a failure is recorded and logged, not raised."""
        answer = self._delete()
        if answer is None or answer.failure is None:
            return
        logger.warning("%s %s: %s", self.declared.resource_type, self.declared.logical_id, answer.failure)
        stack = self.declared.stack
        if stack is not None:
            stack.events.append(self._event("DELETE_FAILED", answer.failure))

    # --- failures

    def _event(self, status: str, reason: str) -> Event:
        stack = self.declared.stack
        assert stack is not None
        return Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=self.declared.logical_id,
            physical_resource_id=self.physical_resource_id,
            resource_type=self.declared.resource_type,
            resource_status=status,
            resource_status_reason=reason,
            resource_properties=json.dumps(self.properties),
        )

    def _fail(self, action: str, answer: Outcome) -> NoReturn:
        """Fail the stack operation ``action`` (``CREATE``, ``UPDATE``, ``DELETE``) with the answer's reason."""
        reason = str(answer.failure)
        error = CustomResourceError(f"{self.declared.resource_type} {self.declared.logical_id}: {reason}")
        stack = self.declared.stack
        if stack is not None:
            self._failed_in, self._failure = _operation(stack), error
            stack.events.append(self._event(f"{action}_FAILED", reason))
            stack.status = f"{action}_FAILED"
            status_reason = (
                f"The following resource(s) failed to {action.lower()}: [{self.declared.logical_id}]. "
                f"{self.declared.logical_id}: {reason}"
            )
            # moto's Stack has no status reason of its own; DescribeStacks answers this as StackStatusReason.
            stack.status_reason = status_reason  # type: ignore[attr-defined]
            stack._add_stack_event(f"{action}_FAILED", resource_status_reason=status_reason)
        raise error

    def _refail_in_same_operation(self) -> None:
        """Raise the failure again when moto retries the request within the operation it failed in."""
        if (
            self._failure is not None
            and self._failed_in is not None
            and _operation(self.declared.stack) is self._failed_in
        ):
            raise self._failure
