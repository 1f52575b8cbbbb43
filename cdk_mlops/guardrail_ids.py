"""The guardrail rule ids, as plain data.

The rules themselves live in :mod:`cdk_mlops.guardrails`, which needs the CDK; the
configuration (:mod:`cdk_mlops.config`) only needs to know which ids exist, to check
``disabled_guardrails`` and ``warning_guardrails``. Standard library only.
"""

from __future__ import annotations

from typing import Final

#: Every guardrail id, in order; ``cdk_mlops.guardrails.RULES`` defines one rule per id.
RULE_IDS: Final[tuple[str, ...]] = (
    "MLOPS-001",
    "MLOPS-002",
    "MLOPS-003",
    "MLOPS-004",
    "MLOPS-005",
    "MLOPS-006",
    "MLOPS-007",
    "MLOPS-008",
    "MLOPS-009",
)
