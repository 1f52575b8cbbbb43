"""Errors raised by cdk-mlops at synth time."""

from __future__ import annotations

from collections.abc import Sequence

from constructs import IConstruct


class ConfigurationError(ValueError):
    """Invalid configuration, found before any AWS resource exists.

    The message names where the problem is (a construct path or a config key
    path), the value that was given and how to fix it. When several problems
    are found at once they are all listed, one per line, so a user fixes them
    in one pass instead of one synth per problem.

    Attributes:
        problems: Each problem as its own line, without the location prefix.
    """

    def __init__(self, where: IConstruct | str, problems: str | Sequence[str]) -> None:
        location = where if isinstance(where, str) else where.node.path
        self.location: str = location
        self.problems: tuple[str, ...] = (problems,) if isinstance(problems, str) else tuple(problems)
        if len(self.problems) == 1:
            message = f"[{location}] {self.problems[0]}"
        else:
            body = "\n".join(f"  - {p}" for p in self.problems)
            message = f"[{location}] {len(self.problems)} problems:\n{body}"
        super().__init__(message)


def raise_if_any(where: IConstruct | str, problems: Sequence[str]) -> None:
    """Raise one ConfigurationError listing every problem, if there are any."""
    if problems:
        raise ConfigurationError(where, problems)
