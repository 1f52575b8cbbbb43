"""The team's legacy bucket and key, created in the local AWS before the app is deployed.

The app imports them (``VersionedDataStore.from_bucket``); on AWS they exist already. The key's
ARN is known only once it exists, so the fixture returns it as context for the synth.
"""

from __future__ import annotations

import pytest

LEGACY_BUCKET = "acme-legacy-churn-data"


@pytest.fixture(scope="session")
def mlops_before_deploy(mlops_aws):
    key_arn = mlops_aws.client("kms").create_key(Description="legacy churn data")["KeyMetadata"]["Arn"]
    s3 = mlops_aws.client("s3")
    s3.create_bucket(Bucket=LEGACY_BUCKET)
    # What the imported store requires of the bucket: versioning, SSE-KMS with the key, EventBridge events.
    s3.put_bucket_versioning(Bucket=LEGACY_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=LEGACY_BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    s3.put_bucket_notification_configuration(
        Bucket=LEGACY_BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    return {"legacy_bucket": LEGACY_BUCKET, "legacy_key_arn": key_arn}
