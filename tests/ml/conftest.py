"""Fixtures of the ML script tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.conftest import TEST_REGION
from tests.ml.test_scripts import write_dataset
from tests.unit.test_inventory import BUCKET, DATASET


@pytest.fixture
def s3(aws_env: None, tmp_path: Path) -> Iterator[Any]:
    """moto S3 holding the dataset as CSV files under datasets/churn/, in a versioned bucket."""
    with mock_aws():
        client: Any = boto3.client("s3", region_name=TEST_REGION)
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": TEST_REGION})
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        for path in write_dataset(tmp_path / "csv", parts=5):
            client.put_object(Bucket=BUCKET, Key=f"datasets/{DATASET}/{path.name}", Body=path.read_bytes())
        yield client
