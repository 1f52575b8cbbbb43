"""The data store's minimum TLS version, checked on every bucket it creates and for every object in them.

``test_data_store.py`` checks that the data bucket's policy has a TLS-version deny; this test
checks it as a request would meet it: both buckets (data and access logs), the bucket itself and
every object key, every principal, and no older TLS than 1.2.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from cdk_mlops.constructs.data_store import VersionedDataStore
from tests.quality import logical_id


@pytest.fixture(scope="module")
def store_template() -> tuple[VersionedDataStore, dict[str, Any]]:
    stack = cdk.Stack(cdk.App(), "Tls")
    store = VersionedDataStore(stack, "Data", datasets=["churn"])
    template = dict(Template.from_stack(stack).to_json())
    return store, template


def tls_denials(template: dict[str, Any], bucket: s3.IBucket) -> list[dict[str, Any]]:
    """The statements of ``bucket``'s policy that deny requests over old TLS."""
    policies = [
        r["Properties"]["PolicyDocument"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": logical_id(bucket)}
    ]
    return [
        statement
        for policy in policies
        for statement in policy["Statement"]
        if "s3:TlsVersion" in statement.get("Condition", {}).get("NumericLessThan", {})
    ]


@pytest.mark.parametrize("which", ["bucket", "access_log_bucket"])
def test_every_bucket_of_the_store_refuses_tls_older_than_1_2_for_the_bucket_and_each_object(
    store_template: tuple[VersionedDataStore, dict[str, Any]], which: str
) -> None:
    # GIVEN a store with default settings
    store, template = store_template
    bucket = getattr(store, which)
    arn = {"Fn::GetAtt": [logical_id(bucket), "Arn"]}

    # WHEN its policy is read THEN one statement denies every action to everyone below TLS 1.2,
    # on the bucket and on every object in it
    [deny] = tls_denials(template, bucket)
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == {"AWS": "*"}
    assert deny["Action"] == "s3:*"
    assert deny["Condition"] == {"NumericLessThan": {"s3:TlsVersion": 1.2}}
    assert sorted(map(str, deny["Resource"])) == sorted(map(str, [arn, {"Fn::Join": ["", [arn, "/*"]]}]))
