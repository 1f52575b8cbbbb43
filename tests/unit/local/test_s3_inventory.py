"""S3 Inventory's delivery, emulated: the documented layout, the CSV S3 writes, the manifest and its checksum."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from moto import mock_aws

from cdk_mlops.local.s3_inventory import (
    InventoryError,
    from_api,
    inventory_configurations,
    publish_inventory_report,
)

SOURCE = "data-store"
NOW = datetime(2026, 3, 1, 4, 7, 31, tzinfo=UTC)
CONFIG: dict[str, Any] = {
    "Id": "datasets-daily",
    "Enabled": True,
    "Destination": {"BucketArn": f"arn:aws:s3:::{SOURCE}", "Format": "CSV", "Prefix": "inventory"},
    "IncludedObjectVersions": "All",
    "OptionalFields": ["ETag", "LastModifiedDate", "Size"],
    "Prefix": "datasets/",
    "ScheduleFrequency": "Daily",
}
ODD_KEYS = ["datasets/churn/a b.csv", "datasets/churn/x+y%20z.csv", "datasets/churn/é/ünï 🚀.csv"]


@pytest.fixture
def s3(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=SOURCE)
        client.put_bucket_versioning(Bucket=SOURCE, VersioningConfiguration={"Status": "Enabled"})
        yield client


def read(s3: Any, key: str, bucket: str = SOURCE) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def rows(s3: Any, manifest: dict[str, Any]) -> list[list[str]]:
    found: list[list[str]] = []
    for file in manifest["files"]:
        found += list(csv.reader(io.StringIO(gzip.decompress(read(s3, file["key"])).decode())))
    return found


def test_a_report_lists_every_version_and_delete_marker_in_the_documented_layout(s3):
    s3.put_object(Bucket=SOURCE, Key="datasets/churn/train.csv", Body=b"v1")
    s3.put_object(Bucket=SOURCE, Key="datasets/churn/train.csv", Body=b"v2!")
    s3.put_object(Bucket=SOURCE, Key="datasets/churn/gone.csv", Body=b"x")
    s3.delete_object(Bucket=SOURCE, Key="datasets/churn/gone.csv")
    s3.put_object(Bucket=SOURCE, Key="models/ignored.bin", Body=b"outside the prefix")

    uri = publish_inventory_report(s3, source_bucket=SOURCE, configuration=CONFIG, now=NOW)

    base = f"inventory/{SOURCE}/datasets-daily"
    assert uri == f"s3://{SOURCE}/{base}/2026-03-01T04-07Z/manifest.json"
    manifest = json.loads(read(s3, f"{base}/2026-03-01T04-07Z/manifest.json"))
    assert manifest["sourceBucket"] == SOURCE
    assert manifest["destinationBucket"] == f"arn:aws:s3:::{SOURCE}"
    assert manifest["version"] == "2016-11-30"
    assert manifest["creationTimestamp"] == str(int(NOW.timestamp() * 1000))
    assert manifest["fileFormat"] == "CSV"
    # S3's column order, not the configuration's
    assert manifest["fileSchema"] == "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag"
    [file] = manifest["files"]
    assert file["key"].startswith(f"{base}/data/")
    assert file["key"].endswith(".csv.gz")
    body = read(s3, file["key"])
    assert file["size"] == len(body)
    assert file["MD5checksum"] == hashlib.md5(body).hexdigest()
    checksum = read(s3, f"{base}/2026-03-01T04-07Z/manifest.checksum").decode()
    assert checksum == hashlib.md5(read(s3, f"{base}/2026-03-01T04-07Z/manifest.json")).hexdigest()
    symlink = read(s3, f"{base}/hive/dt=2026-03-01-04-07/symlink.txt").decode()
    assert symlink.splitlines() == [f"s3://{SOURCE}/{file['key']}"]

    listed = rows(s3, manifest)
    assert all(row[0] == SOURCE for row in listed)
    by_key: dict[str, list[list[str]]] = {}
    for row in listed:
        by_key.setdefault(unquote_plus(row[1]), []).append(row)
    assert set(by_key) == {"datasets/churn/train.csv", "datasets/churn/gone.csv"}
    train = sorted(by_key["datasets/churn/train.csv"], key=lambda r: r[3])
    assert [(r[3], r[4], r[5]) for r in train] == [("false", "false", "2"), ("true", "false", "3")]
    etag = s3.head_object(Bucket=SOURCE, Key="datasets/churn/train.csv")["ETag"].strip('"')
    assert train[1][7] == etag
    assert train[1][6].endswith("Z")
    assert train[1][6][10] == "T"
    marker = next(r for r in by_key["datasets/churn/gone.csv"] if r[4] == "true")
    assert marker[3] == "true"
    assert marker[5] == ""
    assert marker[7] == ""


def test_every_value_is_double_quoted_and_keys_are_url_encoded_as_s3_does(s3):
    for key in ODD_KEYS:
        s3.put_object(Bucket=SOURCE, Key=key, Body=b"x")

    uri = publish_inventory_report(s3, source_bucket=SOURCE, configuration=CONFIG, now=NOW)

    manifest = json.loads(read(s3, uri.split(f"s3://{SOURCE}/", 1)[1]))
    raw = gzip.decompress(read(s3, manifest["files"][0]["key"])).decode()
    for line in raw.splitlines():
        assert line.startswith('"')
        assert line.endswith('"')
        assert line.count('","') == 7
    encoded = [row[1] for row in rows(s3, manifest)]
    assert "datasets%2Fchurn%2Fa+b.csv" in encoded  # a space is "+", as S3 writes it
    assert "datasets%2Fchurn%2Fx%2By%2520z.csv" in encoded  # so a "+" and a "%" are escaped
    assert all(ord(c) < 128 for key in encoded for c in key)
    assert sorted(unquote_plus(key) for key in encoded) == sorted(ODD_KEYS)


def test_a_long_list_is_split_into_several_data_files(s3):
    for i in range(7):
        s3.put_object(Bucket=SOURCE, Key=f"datasets/churn/part-{i}.csv", Body=b"x" * i)

    uri = publish_inventory_report(s3, source_bucket=SOURCE, configuration=CONFIG, now=NOW, rows_per_file=3)

    manifest = json.loads(read(s3, uri.split(f"s3://{SOURCE}/", 1)[1]))
    assert [len(rows(s3, {"files": [f]})) for f in manifest["files"]] == [3, 3, 1]
    assert len({f["key"] for f in manifest["files"]}) == 3
    symlink = read(s3, f"inventory/{SOURCE}/datasets-daily/hive/dt=2026-03-01-04-07/symlink.txt").decode()
    assert symlink.splitlines() == [f"s3://{SOURCE}/{f['key']}" for f in manifest["files"]]
    assert sorted(unquote_plus(r[1]) for r in rows(s3, manifest)) == [f"datasets/churn/part-{i}.csv" for i in range(7)]


def test_current_versions_only_leave_out_the_version_columns_and_old_versions(s3):
    s3.put_object(Bucket=SOURCE, Key="datasets/churn/train.csv", Body=b"v1")
    s3.put_object(Bucket=SOURCE, Key="datasets/churn/train.csv", Body=b"v2")
    s3.put_object(Bucket=SOURCE, Key="datasets/churn/gone.csv", Body=b"x")
    s3.delete_object(Bucket=SOURCE, Key="datasets/churn/gone.csv")
    current = {**CONFIG, "IncludedObjectVersions": "Current", "OptionalFields": ["Size"]}

    uri = publish_inventory_report(s3, source_bucket=SOURCE, configuration=current, now=NOW)

    manifest = json.loads(read(s3, uri.split(f"s3://{SOURCE}/", 1)[1]))
    assert manifest["fileSchema"] == "Bucket, Key, Size"
    assert rows(s3, manifest) == [[SOURCE, "datasets%2Fchurn%2Ftrain.csv", "2"]]


def test_a_configuration_id_is_read_from_the_bucket(s3):
    s3.put_object(Bucket=SOURCE, Key="datasets/churn/train.csv", Body=b"v1")
    s3.put_bucket_inventory_configuration(
        Bucket=SOURCE,
        Id="datasets-daily",
        InventoryConfiguration={
            "Id": "datasets-daily",
            "IsEnabled": True,
            "IncludedObjectVersions": "All",
            "Destination": {"S3BucketDestination": {"Bucket": f"arn:aws:s3:::{SOURCE}", "Format": "CSV"}},
            "Schedule": {"Frequency": "Daily"},
            "Filter": {"Prefix": "datasets/"},
            "OptionalFields": ["Size", "ETag"],
        },
    )

    [config] = inventory_configurations(s3, SOURCE)
    uri = publish_inventory_report(s3, source_bucket=SOURCE, configuration="datasets-daily", now=NOW)

    assert config == {
        "Id": "datasets-daily",
        "Enabled": True,
        "IncludedObjectVersions": "All",
        "ScheduleFrequency": "Daily",
        "Destination": {"BucketArn": f"arn:aws:s3:::{SOURCE}", "Format": "CSV"},
        "OptionalFields": ["Size", "ETag"],
        "Prefix": "datasets/",
    }
    assert uri == f"s3://{SOURCE}/{SOURCE}/datasets-daily/2026-03-01T04-07Z/manifest.json"  # no destination prefix
    with pytest.raises(InventoryError, match="no inventory configuration 'weekly'"):
        publish_inventory_report(s3, source_bucket=SOURCE, configuration="weekly", now=NOW)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"Enabled": False}, "is disabled"),
        ({"Enabled": "false"}, "is disabled"),
        ({"Destination": {**CONFIG["Destination"], "Format": "Parquet"}}, "Format 'Parquet'; only CSV"),
        ({"OptionalFields": ["Size", "EncryptionStatus"]}, r"\['EncryptionStatus'\] are not emulated"),
        ({"OptionalFields": ["Colour"]}, r"unknown OptionalFields \['Colour'\]"),
        ({"IncludedObjectVersions": "Some"}, "must be All or Current"),
        ({"Destination": {**CONFIG["Destination"], "BucketArn": SOURCE}}, "is not a bucket ARN"),
    ],
)
def test_what_is_not_delivered_is_refused_saying_why(s3, change, message):
    with pytest.raises(InventoryError, match=message):
        publish_inventory_report(s3, source_bucket=SOURCE, configuration={**CONFIG, **change}, now=NOW)


def test_the_api_shape_converts_to_the_cloudformation_shape():
    api = {
        "Id": "x",
        "IsEnabled": False,
        "IncludedObjectVersions": "Current",
        "Destination": {"S3BucketDestination": {"Bucket": "arn:aws:s3:::d", "Format": "ORC", "Prefix": "p"}},
        "Schedule": {"Frequency": "Weekly"},
    }
    assert from_api(api) == {
        "Id": "x",
        "Enabled": False,
        "IncludedObjectVersions": "Current",
        "ScheduleFrequency": "Weekly",
        "Destination": {"BucketArn": "arn:aws:s3:::d", "Format": "ORC", "Prefix": "p"},
        "OptionalFields": [],
    }
