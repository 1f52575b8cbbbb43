"""Construct arguments checked against their annotations, once, at the boundary.

Every public construct's ``__init__`` is wrapped by :func:`checked_props`. Before the construct
exists, each argument is compared with its type annotation; a value of the wrong type fails
with a :class:`~cdk_mlops.errors.ConfigurationError` that names the construct path, the
argument, what it must be and what it got, instead of a traceback from deep inside aws-cdk-lib
or, worse, a quietly wrong template (a string where a list belongs is a list of characters).

What is checked: ``str``, ``int``, ``float``, ``bool``, enums, ``Duration`` and other classes,
dataclasses (a ``dict`` where ``TrainingSettings`` belongs is refused), the library's own
constructs and the library's own runtime-checkable protocols such as ``IDataStore`` (an
imported ``s3.IBucket`` where a data store belongs is refused: it lacks the protocol's
members), ``X | None``, ``Literal``, and lists, tuples and mappings with their items. What is
not: the CDK's ``I*`` interfaces (jsii protocols: any object may implement them, so only
aws-cdk-lib can tell), protocols that are not runtime-checkable, and callables. A token is a
``str`` (or a number or list) like any other, so tokens pass.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import inspect
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from aws_cdk import Token

from cdk_mlops.errors import ConfigurationError

_Init = TypeVar("_Init", bound=Callable[..., None])
#: The arguments every construct takes first; ``id`` is checked like the others.
_SKIPPED = frozenset({"self", "scope"})
#: How a registered protocol is named in messages, and the fix added when a value does not fit it.
_PROTOCOLS: dict[type, tuple[str, str]] = {}


def describe_protocol(protocol: type, *, shown_as: str, fix: str) -> None:
    """Say how :func:`checked_props` names a runtime-checkable protocol, and how to fix a value that misses it.

    Args:
        protocol: A ``typing.Protocol`` decorated with ``@runtime_checkable``.
        shown_as: The name used in "must be ..." (e.g. the class most users pass).
        fix: Appended to the message when a value does not implement the protocol.
    """
    _PROTOCOLS[protocol] = (shown_as, fix)


def checked_props(init: _Init) -> _Init:
    """Wrap a construct's ``__init__`` so that every argument is checked against its annotation.

    The check runs before the construct is created, so a wrong type leaves nothing behind; the
    error names the path the construct would have had (``<scope path>/<id>``).
    """
    signature = inspect.signature(init)
    # An __init__ with **kwargs takes any name; only the named parameters are known otherwise.
    any_name = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())

    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        unknown = [] if any_name else [name for name in kwargs if name not in signature.parameters]
        if unknown:
            raise ConfigurationError(
                _where(args, kwargs), [_unknown(type(self).__name__, n, signature) for n in unknown]
            )
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError as error:  # a required argument missing, or too many positional ones
            raise ConfigurationError(_where(args, kwargs), f"{type(self).__name__}: {error}") from None
        hints = _hints(init)
        problems = [
            problem
            for name, value in bound.arguments.items()
            if name not in _SKIPPED and name in hints
            for problem in [_problem(name, value, hints[name])]
            if problem is not None
        ]
        if problems:
            raise ConfigurationError(_where(args, kwargs), problems)
        init(self, *args, **kwargs)

    wrapper.__checked_props__ = True  # type: ignore[attr-defined]
    return typing.cast(_Init, wrapper)


def _unknown(construct: str, name: str, signature: inspect.Signature) -> str:
    accepted = [p for p in signature.parameters if p not in _SKIPPED]
    close = difflib.get_close_matches(name, accepted, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"accepted: {', '.join(accepted)}"
    return f"{name!r} is not an argument of {construct}; {hint}"


def _where(args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    scope = args[0] if args else kwargs.get("scope")
    id_ = args[1] if len(args) > 1 else kwargs.get("id")
    path = getattr(getattr(scope, "node", None), "path", None)
    return "/".join(str(part) for part in (path, id_) if part)


@functools.cache
def _hints(function: Callable[..., Any]) -> dict[str, Any]:
    """The function's annotations, evaluated; an annotation that cannot be evaluated is left out."""
    module = sys.modules[function.__module__]
    namespace = {**vars(typing), **vars(module)}
    hints: dict[str, Any] = {}
    for name, annotation in function.__annotations__.items():
        try:
            hints[name] = eval(annotation, namespace) if isinstance(annotation, str) else annotation
        except Exception:  # a name imported only for type checkers: not checked
            continue
    return hints


def _problem(name: str, value: Any, hint: Any) -> str | None:
    if _conforms(value, hint) is not False:
        return None
    if isinstance(value, str) and _conforms([value], hint):
        # A lone string where a list of strings belongs: it would read as a list of characters.
        return f"{name} must be {_describe(hint)}, got the string {value!r}; use [{value!r}]"
    fixes = [_PROTOCOLS[arm][1] for arm in _arms(hint) if arm in _PROTOCOLS]
    return f"{name} must be {_describe(hint)}, got {_shown(value)}" + "".join(f"; {fix}" for fix in fixes)


def _arms(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def _conforms(value: Any, hint: Any) -> bool | None:
    """Whether ``value`` fits ``hint``; None where this checker cannot tell (it then passes)."""
    if hint is Any or hint is object:
        return True
    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        answers = [_conforms(value, arm) for arm in arguments]
        return True if any(a is True for a in answers) else (None if None in answers else False)
    if hint is None or hint is type(None):
        return value is None
    if origin is typing.Literal:
        return value in arguments
    if origin in (list, tuple, Sequence, typing.Sequence) or hint in (list, tuple):
        if isinstance(value, str) or not isinstance(value, list | tuple):
            return False
        homogeneous = len(arguments) == 1 or (len(arguments) == 2 and arguments[1] is Ellipsis)
        return _all(value, arguments[0] if homogeneous else None)
    if origin in (dict, Mapping, typing.Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            return False
        if len(arguments) == 2:
            keys, values = _all(list(value), arguments[0]), _all(list(value.values()), arguments[1])
            return keys is not False and values is not False
        return True
    if origin is not None or not isinstance(hint, type):
        return None  # Callable, TypeVar, ...: not checked
    return _is_instance(value, hint)


def _all(items: Sequence[Any], hint: Any) -> bool | None:
    if hint is None:
        return True
    return all(_conforms(item, hint) is not False for item in items)


def _is_instance(value: Any, cls: type) -> bool | None:
    if _is_interface(cls):
        return None
    if getattr(cls, "_is_protocol", False):
        # A runtime-checkable protocol of the library: isinstance checks that every member is there.
        return isinstance(value, cls) if getattr(cls, "_is_runtime_protocol", False) else None
    if cls is bool:
        return isinstance(value, bool)
    if cls is int:
        # A number token (Token.as_number) is a float that stands for a value known at deploy.
        token = isinstance(value, float) and Token.is_unresolved(value)
        return token or (isinstance(value, int) and not isinstance(value, bool))
    if cls is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, cls)


def _is_interface(cls: type) -> bool:
    """A jsii interface (``IBucket``): anything may implement it, and only aws-cdk-lib can tell."""
    name = str(getattr(cls, "__jsii_type__", "")).rsplit(".", 1)[-1]
    return len(name) > 1 and name[0] == "I" and name[1].isupper()


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arm) for arm in arguments)
    if hint is None or hint is type(None):
        return "None"
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, arguments))
    if origin is not None:
        inner = ", ".join(_describe(a) for a in arguments if a is not Ellipsis)
        return f"a list of {inner}" if origin in (list, tuple, Sequence) else f"a mapping of {inner}"
    if hint in _PROTOCOLS:
        return _PROTOCOLS[hint][0]
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint):
            return f"a {hint.__name__} (not a dict: use {hint.__name__}(...))"
        if issubclass(hint, enum.Enum):
            return f"a {hint.__name__} (e.g. {hint.__name__}.{next(iter(hint)).name})"
        return hint.__name__
    return str(hint)
