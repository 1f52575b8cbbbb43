"""Validation patterns end at the end of the text.

In Python's ``re``, ``$`` also matches just before a trailing newline, so ``^[0-9]{12}$`` accepts
``"123456789012\\n"``: an account id, a name or an ARN with a newline would pass validation and
fail on deploy instead. Every pattern in the package ends with ``\\Z`` instead. The check reads
each module's syntax tree, so it covers patterns that no test happens to feed a newline.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from cdk_mlops.constructs.common import ACCOUNT_ID, INSTANCE_TYPE, SAGEMAKER_NAME

PACKAGE = Path(__file__).resolve().parents[2] / "cdk_mlops"
#: The ``re`` functions whose first argument is a pattern.
PATTERN_FUNCTIONS = {"compile", "match", "fullmatch", "search", "sub", "subn", "split", "findall", "finditer"}


def patterns(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, pattern) of every string literal passed as the pattern to a ``re`` function."""
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "re"
            and node.func.attr in PATTERN_FUNCTIONS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def ends_with_dollar(pattern: str) -> bool:
    """True if the pattern's last token is the ``$`` anchor (not an escaped ``\\$``)."""
    trailing = re.search(r"(\\*)\$\)*\Z", pattern)
    return trailing is not None and len(trailing.group(1)) % 2 == 0


def test_the_check_tells_an_anchor_from_an_escaped_dollar() -> None:
    assert ends_with_dollar(r"^[0-9]{12}$")
    assert ends_with_dollar(r"^(a|b$)")
    assert not ends_with_dollar(r"^[0-9]{12}\Z")
    assert not ends_with_dollar(r"price \$")
    assert patterns(ast.parse('import re\nX = re.compile(r"^a$")\nre.sub("b$", "", s)')) == [(2, "^a$"), (3, "b$")]


def test_no_pattern_in_the_package_ends_with_a_dollar() -> None:
    found = [
        (path, line, pattern)
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, pattern in patterns(ast.parse(path.read_text(), filename=str(path)))
    ]
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {pattern!r}"
        for path, line, pattern in found
        if ends_with_dollar(pattern)
    ]
    assert offenders == [], "end these patterns with \\Z, not $ (which also matches before a final newline)"
    # The walk found the package's patterns at all (an empty walk would pass the check above).
    assert len(found) > 50


@pytest.mark.parametrize(
    ("pattern", "good"),
    [(ACCOUNT_ID, "123456789012"), (SAGEMAKER_NAME, "churn-endpoint"), (INSTANCE_TYPE, "ml.m5.large")],
)
def test_the_construct_patterns_refuse_a_trailing_newline(pattern: re.Pattern[str], good: str) -> None:
    assert pattern.match(good)
    assert not pattern.match(good + "\n")
