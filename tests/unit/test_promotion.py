"""The promotion decision: which model package a stage should run, from the registry's summaries."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from cdk_mlops.promotion import (
    ModelVersion,
    PromotionAction,
    decide_promotion,
    newest_approved,
    version_of,
)

GROUP = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-models"


def summary(version: int, status: str = "Approved", **extra: Any) -> dict[str, Any]:
    """One ModelPackageSummaryList item, as ListModelPackages returns it."""
    return {
        "ModelPackageGroupName": "churn-models",
        "ModelPackageVersion": version,
        "ModelPackageArn": f"{GROUP}/{version}",
        "ModelApprovalStatus": status,
        "ModelPackageStatus": "Completed",
        **extra,
    }


def test_nothing_deployed_promotes_the_newest_approved_package():
    # GIVEN versions 1 and 2 approved and 3 waiting for approval
    packages = [summary(1), summary(2), summary(3, "PendingManualApproval")]
    # WHEN
    decision = decide_promotion(packages, deployed_arn=None, stage="staging")
    # THEN version 2 is promoted: the newest approved one, never a pending one
    assert decision.action is PromotionAction.PROMOTE
    assert decision.model_package_arn == f"{GROUP}/2"
    assert decision.stage == "staging"
    assert "runs no model yet" in decision.reason
    assert (
        str(decision)
        == f"promote {GROUP}/2 to staging (approved version 2 is the newest, and staging runs no model yet)"
    )


def test_an_older_approved_deployment_is_replaced_by_the_newer_one():
    decision = decide_promotion([summary(1), summary(2)], deployed_arn=f"{GROUP}/1", stage="prod")
    assert decision.action is PromotionAction.PROMOTE
    assert decision.model_package_arn == f"{GROUP}/2"
    assert decision.deployed_arn == f"{GROUP}/1"
    assert decision.reason == "approved version 2 is newer than the deployed version 1"


def test_the_newest_approved_package_already_deployed_is_kept():
    decision = decide_promotion([summary(1), summary(2)], deployed_arn=f"{GROUP}/2", stage="staging")
    assert decision.action is PromotionAction.KEEP
    assert decision.model_package_arn == f"{GROUP}/2"
    assert str(decision) == "keep staging as it is (it already runs the newest approved version 2)"


def test_a_deployed_package_that_was_rejected_is_rolled_back_to_the_newest_approved():
    # GIVEN version 3 was deployed, then rejected
    packages = [summary(1), summary(2), summary(3, "Rejected")]
    # WHEN
    decision = decide_promotion(packages, deployed_arn=f"{GROUP}/3", stage="prod")
    # THEN the stage goes back to version 2
    assert decision.action is PromotionAction.PROMOTE
    assert decision.model_package_arn == f"{GROUP}/2"
    assert decision.reason == "the deployed version 3 is Rejected; version 2 is the newest approved"


def test_a_deployed_package_from_elsewhere_is_replaced():
    other = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/other-models/7"
    decision = decide_promotion([summary(1)], deployed_arn=other, stage="staging")
    assert decision.action is PromotionAction.PROMOTE
    assert "not in the group" in decision.reason


@pytest.mark.parametrize("deployed", [None, f"{GROUP}/1"])
def test_without_an_approved_package_the_stage_is_kept(deployed):
    decision = decide_promotion(
        [summary(1, "Rejected"), summary(2, "PendingManualApproval")], deployed_arn=deployed, stage="staging"
    )
    assert decision.action is PromotionAction.KEEP
    assert decision.model_package_arn is None
    assert decision.deployed_arn == deployed
    assert decision.reason == "the group has no approved model package"


def test_the_newest_is_chosen_by_version_not_by_listing_order():
    assert newest_approved([summary(10), summary(9), summary(2)]) == ModelVersion(f"{GROUP}/10", 10, "Approved")
    assert newest_approved([]) is None


def test_the_version_comes_from_the_arn_when_the_summary_has_none():
    item = summary(4)
    del item["ModelPackageVersion"]
    assert ModelVersion.from_summary(item).version == 4
    assert version_of(f"{GROUP}/12") == 12
    assert version_of("arn:aws:sagemaker:eu-west-1:123456789012:model-package/unversioned") is None


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"ModelPackageVersion": 1, "ModelApprovalStatus": "Approved"}, "without a ModelPackageArn"),
        (
            {"ModelPackageArn": "arn:aws:sagemaker:eu-west-1:1:model-package/x", "ModelApprovalStatus": "Approved"},
            "is not a version number",
        ),
        ({"ModelPackageArn": f"{GROUP}/1", "ModelPackageVersion": 1}, "no ModelApprovalStatus"),
        (
            {"ModelPackageArn": f"{GROUP}/1", "ModelPackageVersion": True, "ModelApprovalStatus": "Approved"},
            "is not a version number",
        ),
    ],
)
def test_malformed_summaries_are_refused_with_the_field_named(item, message):
    with pytest.raises(ValueError, match=message):
        decide_promotion([item], deployed_arn=None, stage="staging")


def test_model_versions_are_accepted_as_they_are():
    versions = [ModelVersion(f"{GROUP}/1", 1, "Approved"), ModelVersion(f"{GROUP}/2", 2, "PendingManualApproval")]
    decision = decide_promotion(versions, deployed_arn=None, stage="staging")
    assert decision.model_package_arn == f"{GROUP}/1"


def test_the_module_imports_without_boto3_or_aws_cdk():
    # A delivery pipeline's Lambda ships it on its own.
    code = "import sys, cdk_mlops.promotion; print(sorted({'boto3', 'aws_cdk'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
