"""Which model package a stage should run: the promotion decision of the delivery side of the loop.

A model package group collects the versions the training pipeline registers; each is
``PendingManualApproval``, ``Approved`` or ``Rejected``. Whoever deploys models (a delivery
pipeline reacting to the registry's approval events, a person, the local demo) asks one
question per target stage: *given the group's packages and the package the stage runs now,
should a different package be deployed?* :func:`decide_promotion` answers it:

* the candidate is the **newest approved** package (highest ``ModelPackageVersion``);
* with no approved package there is nothing to deploy: keep what runs;
* if the stage already runs the candidate: keep it;
* otherwise: promote the candidate. That covers a stage that runs nothing yet, one that runs
  an older approved version, and one whose package was rejected or revoked after it was
  deployed (the candidate is then older: a rollback to the newest approved version).

It only decides. Deploying, and any approval gate before production, is the caller's job.
Standard library only and no AWS calls, so a delivery pipeline's Lambda can ship it as it is:
pass it the ``ModelPackageSummaryList`` of ``ListModelPackages`` (all statuses, every page) and
the ARN the stage runs (for example from the endpoint's tags), or ``None``.

Example::

    packages = sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    decision = decide_promotion(packages, deployed_arn=None, stage="staging")
    if decision.action is PromotionAction.PROMOTE:
        deploy(decision.model_package_arn)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

__all__ = [
    "APPROVED",
    "ModelVersion",
    "PromotionAction",
    "PromotionDecision",
    "decide_promotion",
    "newest_approved",
    "version_of",
]

#: The approval status that makes a model package deployable.
APPROVED: Final = "Approved"

_VERSION_SUFFIX: Final = re.compile(r"/(\d+)\Z")


class PromotionAction(StrEnum):
    """What to do with a stage."""

    PROMOTE = "promote"
    """Deploy ``model_package_arn`` to the stage."""
    KEEP = "keep"
    """Leave the stage as it is."""


@dataclass(frozen=True)
class ModelVersion:
    """One model package version of a group, as ``ListModelPackages`` summarizes it.

    Attributes:
        arn: ``arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>``.
        version: ``ModelPackageVersion``, 1 for the first package registered in the group.
        status: ``ModelApprovalStatus``.
    """

    arn: str
    version: int
    status: str

    @property
    def approved(self) -> bool:
        """Whether the package may be deployed."""
        return self.status == APPROVED

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any]) -> ModelVersion:
        """Read one ``ModelPackageSummaryList`` item (or a ``DescribeModelPackage`` response).

        The version comes from ``ModelPackageVersion``, or else from the ARN's last segment.

        Raises:
            ValueError: naming the field that is missing or malformed.
        """
        arn = summary.get("ModelPackageArn")
        if not isinstance(arn, str) or not arn:
            raise ValueError(f"model package summary without a ModelPackageArn: {dict(summary)!r}")
        version = summary.get("ModelPackageVersion")
        if version is None:
            version = version_of(arn)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(f"{arn}: ModelPackageVersion {version!r} is not a version number (1, 2, ...)")
        status = summary.get("ModelApprovalStatus")
        if not isinstance(status, str) or not status:
            raise ValueError(f"{arn}: no ModelApprovalStatus")
        return cls(arn=arn, version=version, status=status)


@dataclass(frozen=True)
class PromotionDecision:
    """The answer for one stage.

    Attributes:
        action: Promote or keep.
        stage: The stage the decision is for (``staging``, ``prod``, ...).
        model_package_arn: The package to deploy when promoting; else the newest approved
            package, if any (``None`` when the group has none).
        deployed_arn: The package the stage ran when the decision was made, if any.
        reason: Why, in one sentence.
    """

    action: PromotionAction
    stage: str
    model_package_arn: str | None
    deployed_arn: str | None
    reason: str

    def __str__(self) -> str:
        if self.action is PromotionAction.PROMOTE:
            return f"promote {self.model_package_arn} to {self.stage} ({self.reason})"
        return f"keep {self.stage} as it is ({self.reason})"


def version_of(arn: str) -> int | None:
    """The version number at the end of a versioned model package ARN, or ``None``."""
    match = _VERSION_SUFFIX.search(arn)
    return int(match.group(1)) if match else None


def newest_approved(packages: Iterable[Mapping[str, Any] | ModelVersion]) -> ModelVersion | None:
    """The approved package with the highest version, or ``None`` if none is approved.

    Raises:
        ValueError: if a summary lacks an ARN, a version or a status.
    """
    versions = [p if isinstance(p, ModelVersion) else ModelVersion.from_summary(p) for p in packages]
    approved = [v for v in versions if v.approved]
    return max(approved, key=lambda v: v.version, default=None)


def decide_promotion(
    packages: Iterable[Mapping[str, Any] | ModelVersion], *, deployed_arn: str | None, stage: str
) -> PromotionDecision:
    """Whether ``stage`` should be given another model package (see the module docstring).

    Args:
        packages: Every package of the group, any approval status (``ModelPackageSummaryList``
            items or :class:`ModelVersion`).
        deployed_arn: The package the stage runs now. ``None``: it runs none yet.
        stage: The stage the decision is for; it is only named in the result.

    Raises:
        ValueError: if a summary lacks an ARN, a version or a status.
    """
    versions = [p if isinstance(p, ModelVersion) else ModelVersion.from_summary(p) for p in packages]
    candidate = newest_approved(versions)
    if candidate is None:
        return PromotionDecision(
            PromotionAction.KEEP, stage, None, deployed_arn, "the group has no approved model package"
        )
    if deployed_arn == candidate.arn:
        return PromotionDecision(
            PromotionAction.KEEP,
            stage,
            candidate.arn,
            deployed_arn,
            f"it already runs the newest approved version {candidate.version}",
        )
    if deployed_arn is None:
        reason = f"approved version {candidate.version} is the newest, and {stage} runs no model yet"
    else:
        deployed = next((v for v in versions if v.arn == deployed_arn), None)
        if deployed is None:
            reason = f"approved version {candidate.version} is the newest; the deployed package is not in the group"
        elif not deployed.approved:
            reason = (
                f"the deployed version {deployed.version} is {deployed.status}; "
                f"version {candidate.version} is the newest approved"
            )
        else:
            reason = f"approved version {candidate.version} is newer than the deployed version {deployed.version}"
    return PromotionDecision(PromotionAction.PROMOTE, stage, candidate.arn, deployed_arn, reason)
