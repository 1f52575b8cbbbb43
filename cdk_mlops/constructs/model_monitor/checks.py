"""Checks several monitoring types share: whole numbers, analysis windows, probabilities, ground truth, images.

Each returns the problems it finds, every one naming the setting, its value and the fix, and
never checks a token (a deploy-time value is not known at synth).
"""

from __future__ import annotations

import re

from aws_cdk import Token

from cdk_mlops.constructs.model_monitor.monitoring_type import MonitoringType

__all__ = [
    "ground_truth_problems",
    "image_problems",
    "offset_seconds",
    "probability_problems",
    "whole_problem",
    "window_problems",
]

_KEY_PREFIX = re.compile(r"^[^/*].*/\Z")
# Negative ISO-8601 durations, e.g. -PT1H, -P1D, -P1DT12H (Model Monitor's time offsets).
_OFFSET = re.compile(r"^-P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?\Z")


def whole_problem(name: str, value: object, low: int, high: int) -> list[str]:
    """``value`` is not a whole number from ``low`` to ``high``."""
    if Token.is_unresolved(value):
        return []
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return []
    return [f"{name} ({value!r}) must be a whole number from {low} to {high}"]


def offset_seconds(offset: str) -> int | None:
    """A negative ISO-8601 offset (``-PT2H``, ``-P1D``) in seconds, or None when it is not one."""
    match = _OFFSET.match(offset)
    if match is None or offset in ("-P", "-PT"):
        return None
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return -(days * 86400 + hours * 3600 + minutes * 60 + seconds)


def window_problems(where: str, start: str | None, end: str | None) -> list[str]:
    """The analysed window's offsets are not negative ISO-8601 durations, not a pair, or not in order."""
    found: list[str] = []
    parsed: dict[str, int | None] = {}
    for name, value in (("start_time_offset", start), ("end_time_offset", end)):
        if value is None or Token.is_unresolved(value):
            continue
        parsed[name] = offset_seconds(value)
        if parsed[name] is None:
            found.append(f"{where}.{name} {value!r} is not a negative ISO-8601 duration; use e.g. '-PT2H' or '-P1D'")
    if (start is None) != (end is None):
        found.append(f"{where}: give both start_time_offset and end_time_offset, or neither")
    low, high = parsed.get("start_time_offset"), parsed.get("end_time_offset")
    if low is not None and high is not None and low >= high:
        found.append(
            f"{where}.start_time_offset ({start}) must be earlier than end_time_offset ({end}), e.g. '-PT2H' and "
            "'-PT1H'"
        )
    return found


def probability_problems(where: str, *, probability: str | None, threshold: float | None) -> list[str]:
    """A probability threshold without the attribute it applies to, or outside (0, 1)."""
    found: list[str] = []
    if threshold is not None:
        if probability is None:
            found.append(f"{where}.probability_threshold needs probability_attribute; set it or remove the threshold")
        if not Token.is_unresolved(threshold) and not 0 < threshold < 1:
            found.append(f"{where}.probability_threshold ({threshold!r}) must be between 0 and 1 (exclusive)")
    return found


def ground_truth_problems(name: str, prefix: str | None, monitoring_type: MonitoringType) -> list[str]:
    """The ground-truth prefix is missing, or not a key prefix of the data store."""
    if prefix is None:
        return [
            f"{name} is required: {monitoring_type.value} monitoring compares predictions with ground-truth labels; "
            "give the data store key prefix they are written to, e.g. 'ground-truth/churn/'"
        ]
    return _prefix_problems(name, prefix)


def _prefix_problems(name: str, prefix: str) -> list[str]:
    if Token.is_unresolved(prefix) or (_KEY_PREFIX.match(prefix) and "*" not in prefix):
        return []
    return [f"{name} {prefix!r} must be a key prefix in the data store ending in '/', e.g. 'ground-truth/churn/'"]


def image_problems(name: str, uri: str | None) -> list[str]:
    """An image URI that is not an ECR image URI."""
    if uri is None or Token.is_unresolved(uri) or ".dkr.ecr." in uri:
        return []
    return [f"{name} {uri!r} is not an ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>)"]
