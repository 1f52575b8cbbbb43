"""EventBridge event-pattern matching, as AWS documents it, for the operators the platform's rules use.

Semantics (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html and
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html):

* Every field of the pattern must match (AND); a field's array lists alternatives (OR).
* A pattern object matches an event object field by field; a pattern array matches a leaf value.
* A leaf that is an array in the event matches when any of its elements matches.
* Exact values are compared by JSON type and value, case-sensitively; numbers numerically.
* ``prefix`` and ``suffix`` match strings that start or end with the value, case-sensitively
  (their ``equals-ignore-case`` forms are not implemented); ``anything-but`` (a value, a list,
  or ``{"prefix": ...}``) matches a field that exists with another value; ``exists`` tests
  whether a leaf field is present; ``numeric`` compares numbers with ``<``, ``<=``, ``=``,
  ``>=``, ``>``.

Any other operator raises :class:`PatternError` naming it: add it here with AWS's documented
meaning before a rule uses it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

#: The operators :func:`matches` implements.
OPERATORS: Final = ("prefix", "suffix", "anything-but", "exists", "numeric")

_COMPARISONS: Final[Mapping[str, Callable[[float, float], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    ">=": operator.ge,
    ">": operator.gt,
}
_MISSING: Final = object()


class PatternError(ValueError):
    """A pattern uses something this matcher does not implement, or is malformed."""


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether EventBridge would deliver ``event`` to a rule with ``pattern``.

    Raises:
        PatternError: for an operator outside :data:`OPERATORS`, ``$or``, or a malformed pattern.
    """
    for key, rule in pattern.items():
        if key == "$or":
            raise PatternError("'$or' is not implemented; add it to tests/contracts/event_patterns.py")
        value = event.get(key, _MISSING) if isinstance(event, Mapping) else _MISSING
        if isinstance(rule, Mapping):
            if not isinstance(value, Mapping) or not matches(rule, value):
                return False
        elif isinstance(rule, list):
            if not _leaf(key, rule, value):
                return False
        else:
            raise PatternError(f"{key!r}: a pattern field is an array of matchers or an object, not {rule!r}")
    return True


def _leaf(key: str, matchers: Sequence[Any], value: Any) -> bool:
    checked = [_check(key, m) for m in matchers]  # every matcher, so an unknown one always fails loudly
    if isinstance(value, Mapping):
        return False  # matchers, exists included, apply to leaf values only
    values = value if isinstance(value, list) else [value]
    return any(_one(m, value is not _MISSING, values) for m in checked)


def _check(key: str, matcher: Any) -> Any:
    if not isinstance(matcher, Mapping):
        return matcher
    if len(matcher) != 1:
        raise PatternError(f"{key!r}: a matcher object has one operator, got {dict(matcher)!r}")
    ((name, _),) = matcher.items()
    if name not in OPERATORS:
        raise PatternError(
            f"{key!r}: operator {name!r} is not implemented (have {', '.join(OPERATORS)}); "
            "add it to tests/contracts/event_patterns.py with EventBridge's documented semantics"
        )
    return matcher


def _one(matcher: Any, present: bool, values: Sequence[Any]) -> bool:
    if not isinstance(matcher, Mapping):
        return present and any(_equal(v, matcher) for v in values)
    ((name, argument),) = matcher.items()
    if name == "exists":
        return present is bool(argument)
    if not present:
        return False
    if name in ("prefix", "suffix"):
        if not isinstance(argument, str):
            raise PatternError(f"{name} {argument!r} is not implemented; only its string form is")
        test = str.startswith if name == "prefix" else str.endswith
        return any(isinstance(v, str) and test(v, argument) for v in values)
    if name == "anything-but":
        return any(not _excluded(argument, v) for v in values)
    return any(_numeric(argument, v) for v in values)


def _excluded(argument: Any, value: Any) -> bool:
    if isinstance(argument, Mapping):
        if set(argument) != {"prefix"}:
            raise PatternError(f"anything-but {dict(argument)!r} is not implemented; only its prefix form is")
        return isinstance(value, str) and value.startswith(argument["prefix"])
    return any(_equal(value, a) for a in (argument if isinstance(argument, list) else [argument]))


def _numeric(argument: Any, value: Any) -> bool:
    if not isinstance(argument, list) or len(argument) % 2 or not argument:
        raise PatternError(f"numeric takes [op, number, ...], got {argument!r}")
    if not _is_number(value):
        return False
    pairs = zip(argument[::2], argument[1::2], strict=True)
    try:
        return all(_COMPARISONS[op](float(value), float(bound)) for op, bound in pairs)
    except KeyError as missing:
        raise PatternError(f"numeric operator {missing} is not one of {', '.join(_COMPARISONS)}") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(value: Any, expected: Any) -> bool:
    if _is_number(value) and _is_number(expected):
        return float(value) == float(expected)
    return type(value) is type(expected) and bool(value == expected)
