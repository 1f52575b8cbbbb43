"""Names that must be unique where they deploy, checked across the app at synth.

SageMaker pipeline and endpoint names are unique per account and region, and a pipeline must have
one retrain trigger (two triggers mean two lock tables, so "never two runs at once" would no longer
hold). Each construct that takes such a name claims it with :func:`claim`; synth then fails on
every construct whose name another construct of the same stage claims in the same account and
region, naming both. Within one stage, environment-agnostic stacks count as one account and region
(they deploy wherever the stage goes). Stages are separate deployments, so the same names in two
stages are not compared: that is how the same platform deploys to dev, staging and prod.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import jsii
from aws_cdk import Stack, Stage, Token
from constructs import IConstruct, IValidation


@dataclass(frozen=True)
class _Claim:
    kind: str
    where: tuple[str, str, str]
    name: str
    path: str


#: Claims by app (its root construct), so that apps built in one process never meet.
_CLAIMS: weakref.WeakKeyDictionary[IConstruct, list[_Claim]] = weakref.WeakKeyDictionary()


def claim(construct: IConstruct, kind: str, name: str, why: str) -> None:
    """Claim ``name`` of ``kind`` for ``construct`` in its stage, account and region.

    Args:
        construct: The construct that owns the name; a collision fails synth on it.
        kind: What the name names, e.g. ``pipeline_name``.
        name: The name; a token is not compared (it is known at deploy only).
        why: Why it must be unique, for the message.
    """
    if Token.is_unresolved(name):
        return
    stack = Stack.of(construct)
    stage = Stage.of(construct)
    where = (stage.node.path if stage is not None else "", stack.account, stack.region)
    entry = _Claim(kind, where, name, construct.node.path)
    _CLAIMS.setdefault(construct.node.root, []).append(entry)
    construct.node.add_validation(_Unique(construct, entry, why))


@jsii.implements(IValidation)
class _Unique:
    def __init__(self, construct: IConstruct, entry: _Claim, why: str) -> None:
        self._root = weakref.ref(construct.node.root)
        self._entry = entry
        self._why = why

    def validate(self) -> list[str]:
        entry = self._entry
        root = self._root()
        others = sorted(
            other.path
            for other in (_CLAIMS.get(root, []) if root is not None else [])
            if other.kind == entry.kind
            and other.where == entry.where
            and other.name == entry.name
            and other.path != entry.path
        )
        if not others:
            return []
        return [
            f"{entry.kind} {entry.name!r} is also claimed by {', '.join(others)} in the same account and region "
            f"({self._why}); give each its own {entry.kind}"
        ]
