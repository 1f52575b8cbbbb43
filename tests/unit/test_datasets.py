"""Dataset versions against an in-process S3 (moto): snapshot, materialize, diff, validation."""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from moto import mock_aws

from cdk_mlops import datasets
from cdk_mlops.datasets import DatasetVersionError, Manifest, ManifestEntry
from tests.conftest import TEST_REGION

REGION = TEST_REGION
BUCKET = "ml-data-store"
PLAIN_BUCKET = "ml-data-unversioned"
T0 = datetime(2025, 1, 31, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def s3(aws_env: None) -> Iterator[Any]:
    """A moto S3 with one versioned and one unversioned bucket."""
    with mock_aws():
        client: Any = boto3.client("s3", region_name=REGION)
        for bucket in (BUCKET, PLAIN_BUCKET):
            client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def put(s3: Any, key: str, body: bytes, bucket: str = BUCKET) -> str:
    response = s3.put_object(Bucket=bucket, Key=key, Body=body)
    return str(response.get("VersionId", "null"))


# --------------------------------------------------------------------------- snapshot and materialize


def test_materializing_an_old_manifest_returns_the_old_bytes_after_an_overwrite(s3: Any, tmp_path: Path) -> None:
    # GIVEN a dataset snapshotted at v1, then overwritten with v2 and snapshotted again
    put(s3, "datasets/churn/train.csv", b"id,label\n1,0\n")
    put(s3, "datasets/churn/test.csv", b"id,label\n9,1\n")
    first = datasets.snapshot(BUCKET, "churn", s3=s3, now=T0)
    put(s3, "datasets/churn/train.csv", b"id,label\n1,0\n2,1\n")
    second = datasets.snapshot(BUCKET, "churn", s3=s3, now=T0 + timedelta(hours=1))

    # WHEN the first manifest is materialized
    assert first.uri is not None
    files = datasets.materialize(first.uri, tmp_path / "v1", s3=s3)

    # THEN the v1 bytes come back, although v2 is the current version
    assert [f.name for f in files] == ["test.csv", "train.csv"]
    assert (tmp_path / "v1" / "train.csv").read_bytes() == b"id,label\n1,0\n"
    assert first.sha256 != second.sha256
    assert second.uri is not None
    datasets.materialize(second.uri, tmp_path / "v2", s3=s3)
    assert (tmp_path / "v2" / "train.csv").read_bytes() == b"id,label\n1,0\n2,1\n"


def test_snapshot_records_each_current_version_from_the_listing(s3: Any) -> None:
    # GIVEN an object written twice
    put(s3, "datasets/churn/a.csv", b"one")
    current = put(s3, "datasets/churn/a.csv", b"two")

    # WHEN a manifest is built
    manifest = datasets.build_manifest(BUCKET, "churn", s3=s3, now=T0)

    # THEN it lists only the current version, with its etag and size
    assert manifest.entries == (
        ManifestEntry(key="datasets/churn/a.csv", version_id=current, etag=hashlib.md5(b"two").hexdigest(), size=3),
    )
    assert manifest.created_at == "2025-01-31T12:00:00Z"
    assert manifest.total_bytes == 3
    assert manifest.fully_versioned


def test_snapshot_leaves_out_deleted_objects_folder_markers_and_other_datasets(s3: Any) -> None:
    # GIVEN a deleted object, a console folder marker, a sibling dataset with a longer name and a manifest
    put(s3, "datasets/churn/keep.csv", b"k")
    put(s3, "datasets/churn/gone.csv", b"g")
    s3.delete_object(Bucket=BUCKET, Key="datasets/churn/gone.csv")
    put(s3, "datasets/churn/folder/", b"")
    put(s3, "datasets/churn-v2/other.csv", b"o")
    put(s3, "manifests/churn/old.json", b"{}")

    # WHEN a manifest is built
    manifest = datasets.build_manifest(BUCKET, "churn", s3=s3, now=T0)

    # THEN only the live object of this dataset is listed
    assert [e.key for e in manifest.entries] == ["datasets/churn/keep.csv"]


def test_snapshot_writes_a_json_manifest_named_by_time_and_digest(s3: Any) -> None:
    # GIVEN a dataset
    put(s3, "datasets/churn/a.csv", b"a")

    # WHEN it is snapshotted
    manifest = datasets.snapshot(BUCKET, "churn", s3=s3, now=T0)

    # THEN the manifest is stored under manifests/<dataset>/ as JSON and reads back identically
    assert manifest.uri == f"s3://{BUCKET}/manifests/churn/20250131T120000Z-{manifest.sha256[:16]}.json"
    head = s3.head_object(Bucket=BUCKET, Key=datasets.manifest_key(manifest))
    assert head["ContentType"] == "application/json"
    assert datasets.load_manifest(manifest.uri, s3=s3) == manifest


def test_snapshot_of_an_empty_dataset_is_refused_unless_allowed(s3: Any) -> None:
    # GIVEN no objects under datasets/churn/
    # WHEN / THEN a snapshot names the prefix and the fix
    with pytest.raises(DatasetVersionError, match=r"s3://ml-data-store/datasets/churn/ holds no objects.*allow_empty"):
        datasets.build_manifest(BUCKET, "churn", s3=s3)
    # AND with allow_empty it records an empty manifest
    assert datasets.build_manifest(BUCKET, "churn", s3=s3, allow_empty=True).entries == ()


def test_snapshot_rejects_a_naive_timestamp(s3: Any) -> None:
    # WHEN / THEN
    with pytest.raises(ValueError, match=r"has no time zone; pass an aware datetime"):
        datasets.build_manifest(BUCKET, "churn", s3=s3, now=datetime(2025, 1, 1))


@pytest.mark.slow  # 250 objects through moto take seconds
def test_snapshot_pages_through_three_full_listing_pages(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN 250 objects and pages of 100 (S3's pages hold 1,000; the snapshot passes no MaxKeys, so the
    # server's page size is all that differs): three ListObjectVersions pages, the last one partial
    monkeypatch.setenv("MOTO_S3_DEFAULT_MAX_KEYS", "100")
    for i in range(250):
        put(s3, f"datasets/big/part-{i:05d}.csv", str(i).encode())

    # WHEN a manifest is built
    manifest = datasets.build_manifest(BUCKET, "big", s3=s3, now=T0)

    # THEN every object is listed once, in key order
    assert len(manifest.entries) == 250
    assert [e.key for e in manifest.entries] == sorted(f"datasets/big/part-{i:05d}.csv" for i in range(250))


def test_snapshot_pages_correctly_when_versions_of_one_key_span_pages(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN pages of 3 entries, and keys with several versions and a delete marker
    monkeypatch.setenv("MOTO_S3_DEFAULT_MAX_KEYS", "3")
    expected: dict[str, str] = {}
    for name in ("a", "b", "c", "d"):
        for round_ in range(3):
            expected[f"datasets/churn/{name}"] = put(s3, f"datasets/churn/{name}", f"{name}{round_}".encode())
    s3.delete_object(Bucket=BUCKET, Key="datasets/churn/c")
    del expected["datasets/churn/c"]

    # WHEN a manifest is built
    manifest = datasets.build_manifest(BUCKET, "churn", s3=s3, now=T0)

    # THEN each live key appears once with its latest version
    assert {e.key: e.version_id for e in manifest.entries} == expected


def test_keys_with_spaces_and_unicode_round_trip(s3: Any, tmp_path: Path) -> None:
    # GIVEN keys with spaces, accents, CJK and emoji
    contents = {
        "datasets/intl/with space/file name.csv": b"space",
        "datasets/intl/caf\u00e9/r\u00e9sum\u00e9.csv": b"accent",
        "datasets/intl/\u6570\u636e/\u6587\u4ef6.csv": b"cjk",
        "datasets/intl/emoji \U0001f600.txt": b"emoji",
    }
    for key, body in contents.items():
        put(s3, key, body)

    # WHEN the dataset is snapshotted and materialized
    manifest = datasets.snapshot(BUCKET, "intl", s3=s3, now=T0)
    assert manifest.uri is not None
    datasets.materialize(manifest.uri, tmp_path, s3=s3)

    # THEN every file arrives under its relative key with its bytes
    for key, body in contents.items():
        assert (tmp_path / key.removeprefix("datasets/intl/")).read_bytes() == body


def test_multipart_objects_are_verified_by_their_etag(s3: Any, tmp_path: Path) -> None:
    # GIVEN an object uploaded in two parts (its ETag is not an MD5 of the bytes)
    part = b"x" * (5 * 1024 * 1024)
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="datasets/mp/big.bin")
    etags = [
        s3.upload_part(Bucket=BUCKET, Key="datasets/mp/big.bin", UploadId=upload["UploadId"], PartNumber=n, Body=body)[
            "ETag"
        ]
        for n, body in ((1, part), (2, b"tail"))
    ]
    s3.complete_multipart_upload(
        Bucket=BUCKET,
        Key="datasets/mp/big.bin",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": e, "PartNumber": n} for n, e in enumerate(etags, start=1)]},
    )

    # WHEN it is snapshotted and materialized
    manifest = datasets.snapshot(BUCKET, "mp", s3=s3, now=T0)
    files = datasets.materialize(manifest, tmp_path, s3=s3)

    # THEN the multipart ETag is recorded and the download is accepted
    assert manifest.entries[0].etag.endswith("-2")
    assert files[0].stat().st_size == len(part) + 4


def test_materialize_accepts_a_local_manifest_file(s3: Any, tmp_path: Path) -> None:
    # GIVEN a manifest saved to a local file (as a training job receives it)
    put(s3, "datasets/churn/a.csv", b"a")
    manifest = datasets.snapshot(BUCKET, "churn", s3=s3, now=T0)
    local = tmp_path / "manifest.json"
    local.write_text(manifest.to_json(), encoding="utf-8")

    # WHEN it is materialized from the file
    files = datasets.materialize(local, tmp_path / "data", s3=s3)

    # THEN the objects are downloaded from the bucket the manifest names
    assert [f.read_bytes() for f in files] == [b"a"]


# --------------------------------------------------------------------------- failures


def test_a_deleted_version_fails_with_the_key_version_and_what_to_do(s3: Any, tmp_path: Path) -> None:
    # GIVEN a snapshot whose object version was later deleted for good
    version = put(s3, "datasets/churn/a.csv", b"v1")
    old = datasets.snapshot(BUCKET, "churn", s3=s3, now=T0)
    put(s3, "datasets/churn/a.csv", b"v2")
    s3.delete_object(Bucket=BUCKET, Key="datasets/churn/a.csv", VersionId=version)

    # WHEN / THEN materializing it names the object, the version, the manifest and the remedy
    assert old.uri is not None
    with pytest.raises(DatasetVersionError) as error:
        datasets.materialize(old.uri, tmp_path, s3=s3)
    message = str(error.value)
    assert f"s3://{BUCKET}/datasets/churn/a.csv version {version}" in message
    assert old.uri in message
    assert "no longer exists" in message
    assert "noncurrent_version_expiration=None" in message
    assert not list(tmp_path.rglob("*.part"))


def test_an_overwritten_object_in_an_unversioned_bucket_is_detected(s3: Any, tmp_path: Path) -> None:
    # GIVEN an unversioned bucket: the snapshot can only record the "null" version
    put(s3, "datasets/churn/a.csv", b"v1", bucket=PLAIN_BUCKET)
    manifest = datasets.snapshot(PLAIN_BUCKET, "churn", s3=s3, now=T0)
    assert manifest.entries[0].version_id == "null"
    assert not manifest.fully_versioned
    put(s3, "datasets/churn/a.csv", b"v2 changed", bucket=PLAIN_BUCKET)

    # WHEN / THEN materializing it reports the ETag mismatch and why
    with pytest.raises(DatasetVersionError, match=r"has ETag \w+, but .* recorded \w+.*unversioned.*overwritten"):
        datasets.materialize(manifest, tmp_path, s3=s3)
    assert not (tmp_path / "a.csv").exists()


class _CorruptingS3:
    """Delegates to a real client but returns different bytes from get_object, keeping the ETag."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        response: dict[str, Any] = self._client.get_object(**kwargs)
        data = response["Body"].read()
        corrupted = bytes([data[0] ^ 0xFF]) + data[1:]
        response["Body"] = StreamingBody(io.BytesIO(corrupted), len(corrupted))
        return response


def test_corrupted_download_is_detected_and_not_kept(s3: Any, tmp_path: Path) -> None:
    # GIVEN a download whose bytes differ from the stored object (same length, same ETag header)
    put(s3, "datasets/churn/a.csv", b"hello")
    manifest = datasets.snapshot(BUCKET, "churn", s3=s3, now=T0)

    # WHEN / THEN the MD5 check fails and no partial file is left
    with pytest.raises(DatasetVersionError, match=r"downloaded bytes have MD5 \w+, not the recorded ETag"):
        datasets.materialize(manifest, tmp_path, s3=_CorruptingS3(s3))  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "key",
    [
        "datasets/evil/../../escape.txt",
        "datasets/evil/a/../../../x",
        "datasets/evil/a//b",
        "datasets/evil/./a",
        "datasets/evil/" + "n" * 251,
    ],
)
def test_a_key_that_cannot_be_a_file_is_left_out_logged_and_recorded(
    s3: Any, tmp_path: Path, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a dataset holding a key with '..', '.' or empty segments, or a segment too long for a file name
    put(s3, "datasets/evil/fine.txt", b"fine")
    put(s3, key, b"bad")

    # WHEN it is snapshotted
    with caplog.at_level("WARNING", logger="cdk_mlops.datasets"):
        manifest = datasets.snapshot(BUCKET, "evil", s3=s3, now=T0)

    # THEN the version holds the good object only, says what it left out and why, and logs it
    assert [e.key for e in manifest.entries] == ["datasets/evil/fine.txt"]
    [excluded] = manifest.excluded
    assert (excluded.key, excluded.reason) == (key, datasets.key_problem(key.removeprefix("datasets/evil/")))
    assert [r.getMessage() for r in caplog.records] == [
        f"s3://{BUCKET}/{key} (version {excluded.version_id}) is left out of the snapshot: {excluded.reason}"
    ]
    assert manifest.uri is not None
    assert datasets.load_manifest(manifest.uri, s3=s3) == manifest  # the record survives the round trip
    # AND the dataset stays trainable: the version materializes
    written = datasets.materialize(manifest.uri, tmp_path / "out", s3=s3)
    assert [p.read_bytes() for p in written] == [b"fine"]
    assert list(tmp_path.rglob("*")) == [tmp_path / "out", tmp_path / "out" / "fine.txt"]


def test_the_object_another_needs_as_a_directory_is_left_out(s3: Any, tmp_path: Path) -> None:
    # GIVEN keys "a" and "a/b", which cannot both exist on a file system
    put(s3, "datasets/clash/a", b"file")
    put(s3, "datasets/clash/a/b", b"nested")
    put(s3, "datasets/clash/a-b", b"sibling")  # sorts between the two; not a clash

    # WHEN
    manifest = datasets.build_manifest(BUCKET, "clash", s3=s3, now=T0)

    # THEN the tree is kept, the file in its way is recorded as left out
    assert [e.key for e in manifest.entries] == ["datasets/clash/a-b", "datasets/clash/a/b"]
    assert [(x.key, x.reason) for x in manifest.excluded] == [
        ("datasets/clash/a", "other objects of the dataset need its key as a directory; rename it (or them)")
    ]
    assert [p.read_bytes() for p in datasets.materialize(manifest, tmp_path, s3=s3)] == [b"sibling", b"nested"]


def test_a_dataset_of_only_unwritable_keys_is_refused_unless_empty_is_allowed(s3: Any) -> None:
    put(s3, "datasets/odd/../x.csv", b"x")
    with pytest.raises(DatasetVersionError, match=r"holds no object that can be trained on \(1 left out; the first"):
        datasets.build_manifest(BUCKET, "odd", s3=s3, now=T0)
    manifest = datasets.build_manifest(BUCKET, "odd", s3=s3, now=T0, allow_empty=True)
    assert manifest.entries == ()
    assert [x.key for x in manifest.excluded] == ["datasets/odd/../x.csv"]


def test_a_manifest_without_exclusions_is_written_as_before() -> None:
    # Old manifests and new ones without exclusions are the same document: recorded lineage never changes.
    entry = datasets.ManifestEntry("datasets/churn/a.csv", "v1", "0" * 32, 1)
    manifest = Manifest(BUCKET, "churn", "2025-01-31T12:00:00Z", (entry,), datasets.manifest_digest("churn", [entry]))
    assert "excluded" not in json.loads(manifest.to_json())
    assert Manifest.from_json(manifest.to_json()) == manifest


def test_a_name_the_file_system_refuses_fails_with_the_key(s3: Any, tmp_path: Path) -> None:
    # GIVEN a destination whose path, with the object's key, exceeds what the file system takes (PATH_MAX)
    key = "datasets/deep/" + "k" * 240 + ".csv"
    put(s3, key, b"a")
    manifest = datasets.build_manifest(BUCKET, "deep", s3=s3, now=T0)
    destination = tmp_path.joinpath(*["d" * 200] * ((4000 - len(str(tmp_path))) // 201))
    destination.mkdir(parents=True)

    # WHEN / THEN a DatasetVersionError names the object and the fix, not a raw OSError
    with pytest.raises(
        DatasetVersionError, match=rf"s3://{BUCKET}/{key} version .* cannot be written to .*: File name"
    ):
        datasets.materialize(manifest, destination, s3=s3)


@pytest.mark.parametrize("link", ["folder", "file"])
def test_a_symbolic_link_in_the_destination_never_lets_a_write_escape_it(s3: Any, tmp_path: Path, link: str) -> None:
    # GIVEN a destination where a folder, or a file, of the version is a link to somewhere else
    put(s3, "datasets/linked/part/a.csv", b"a")
    put(s3, "datasets/linked/part/b.csv", b"b")
    manifest = datasets.build_manifest(BUCKET, "linked", s3=s3, now=T0)
    outside, destination = tmp_path / "outside", tmp_path / "out"
    outside.mkdir()
    (destination / "part").mkdir(parents=True) if link == "file" else destination.mkdir()
    if link == "folder":
        (destination / "part").symlink_to(outside)
    else:
        (destination / "part" / "b.csv").symlink_to(outside / "b.csv")

    # WHEN / THEN nothing is written, and the error names the object and why
    with pytest.raises(
        DatasetVersionError, match=r"part/.\.csv \(version .*\) cannot be written below .*: it resolves outside"
    ):
        datasets.materialize(manifest, destination, s3=s3)
    assert list(outside.iterdir()) == []


def test_a_missing_manifest_is_reported_with_where_to_look(s3: Any) -> None:
    # WHEN / THEN
    with pytest.raises(DatasetVersionError, match=r"no manifest at s3://ml-data-store/manifests/x.json; list "):
        datasets.load_manifest(f"s3://{BUCKET}/manifests/x.json", s3=s3)


def test_an_edited_manifest_is_rejected(s3: Any) -> None:
    # GIVEN a manifest whose entry was edited after it was written
    put(s3, "datasets/churn/a.csv", b"a")
    document = json.loads(datasets.build_manifest(BUCKET, "churn", s3=s3, now=T0).to_json())
    document["entries"][0]["size"] = 999

    # WHEN / THEN the digest check fails
    with pytest.raises(DatasetVersionError, match=r"<manifest> is corrupt: its sha256 \w+ does not match"):
        Manifest.from_json(json.dumps(document))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"schema": "something-else"}', r"is not a dataset manifest \(schema 'cdk-mlops.dataset-manifest.v1'\)"),
        ('{"schema": "cdk-mlops.dataset-manifest.v1"}', r"is not a valid dataset manifest \(missing field 'entries'\)"),
        ("not json", r"is not a valid dataset manifest"),
    ],
)
def test_documents_that_are_not_manifests_are_rejected(text: str, message: str) -> None:
    # WHEN / THEN
    with pytest.raises(DatasetVersionError, match=message):
        Manifest.from_json(text)


# --------------------------------------------------------------------------- digest and diff


def test_same_content_gives_the_same_digest_whatever_the_versions(s3: Any) -> None:
    # GIVEN a dataset snapshotted, then re-uploaded byte for byte (new version ids)
    put(s3, "datasets/churn/a.csv", b"a")
    put(s3, "datasets/churn/b.csv", b"b")
    before = datasets.build_manifest(BUCKET, "churn", s3=s3, now=T0)
    put(s3, "datasets/churn/b.csv", b"b")
    put(s3, "datasets/churn/a.csv", b"a")

    # WHEN it is snapshotted again
    after = datasets.build_manifest(BUCKET, "churn", s3=s3, now=T0 + timedelta(days=1))

    # THEN the digest is unchanged although every version id changed
    assert after.sha256 == before.sha256
    assert {e.version_id for e in after.entries}.isdisjoint({e.version_id for e in before.entries})
    assert datasets.diff(before, after).identical


def test_digest_does_not_depend_on_entry_order() -> None:
    # GIVEN the same entries in two orders
    entries = [ManifestEntry(f"datasets/d/{i}", f"v{i}", f"{i:032x}", i) for i in range(50)]
    shuffled = entries[:]
    random.Random(7).shuffle(shuffled)

    # WHEN / THEN
    assert datasets.manifest_digest("d", shuffled) == datasets.manifest_digest("d", entries)
    assert datasets.manifest_digest("other", entries) != datasets.manifest_digest("d", entries)


def test_diff_reports_added_removed_and_changed_keys(s3: Any) -> None:
    # GIVEN a dataset where one file changes, one is deleted, one is added and one stays
    put(s3, "datasets/churn/same.csv", b"s")
    put(s3, "datasets/churn/changes.csv", b"old")
    put(s3, "datasets/churn/removed.csv", b"r")
    a = datasets.snapshot(BUCKET, "churn", s3=s3, now=T0)
    put(s3, "datasets/churn/changes.csv", b"new")
    s3.delete_object(Bucket=BUCKET, Key="datasets/churn/removed.csv")
    put(s3, "datasets/churn/sub/added.csv", b"n")
    b = datasets.snapshot(BUCKET, "churn", s3=s3, now=T0 + timedelta(minutes=5))

    # WHEN the two manifests are compared by URI
    assert a.uri is not None
    assert b.uri is not None
    result = datasets.diff_uris(a.uri, b.uri, s3=s3)

    # THEN keys are relative to the dataset and sorted
    assert result.to_dict() == {
        "identical": False,
        "added": ["sub/added.csv"],
        "removed": ["removed.csv"],
        "changed": ["changes.csv"],
    }


def test_latest_manifest_uri_is_the_newest_snapshot(s3: Any) -> None:
    # GIVEN two snapshots a day apart
    put(s3, "datasets/churn/a.csv", b"a")
    assert datasets.latest_manifest_uri(BUCKET, "churn", s3=s3) is None
    datasets.snapshot(BUCKET, "churn", s3=s3, now=T0)
    put(s3, "datasets/churn/a.csv", b"b")
    newest = datasets.snapshot(BUCKET, "churn", s3=s3, now=T0 + timedelta(days=1))

    # WHEN / THEN
    assert datasets.latest_manifest_uri(BUCKET, "churn", s3=s3) == newest.uri


# --------------------------------------------------------------------------- names and prefixes


@pytest.mark.parametrize("name", ["churn", "Churn_2024", "a", "v1.2-final", "x" * 200])
def test_valid_dataset_names_have_no_problems(name: str) -> None:
    assert datasets.dataset_name_problems(name) == []
    assert datasets.check_dataset_name(name) == name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("", ["dataset name '' is empty; use 1-200 letters, digits, '-', '_' or '.' (e.g. 'churn')"]),
        (
            "a/b",
            [
                "dataset name 'a/b' contains '/'; use a single segment such as 'churn-2024' "
                "(nested names would place one dataset inside another's prefix)"
            ],
        ),
        ("/abs", ["dataset name '/abs' starts with '/'; remove the leading slash"]),
        ("a..b", ["dataset name 'a..b' contains '..'; remove it"]),
        (".", ["dataset name '.' is not a name; use letters or digits (e.g. 'churn')"]),
        ("tab\there", ["dataset name 'tab\\there' contains control characters; remove them"]),
        (
            "sp ace*",
            ["dataset name 'sp ace*' contains ' ' '*'; use only ASCII letters, digits, '-', '_' and '.'"],
        ),
        ("x" * 201, ["dataset name 'xxxx" + "x" * 53 + "...' is 201 characters long; use at most 200"]),
        (42, ["dataset name 42 is a int, not a string; use a name such as 'churn'"]),
    ],
)
def test_invalid_dataset_names_name_the_value_and_the_fix(name: object, expected: list[str]) -> None:
    # WHEN / THEN
    assert datasets.dataset_name_problems(name) == expected
    with pytest.raises(ValueError, match=re.escape(expected[0])):
        datasets.check_dataset_name(name)


def test_a_name_with_several_problems_reports_each() -> None:
    problems = datasets.dataset_name_problems("/../é")
    assert [p.split(";")[0] for p in problems] == [
        "dataset name '/../é' starts with '/'",
        "dataset name '/../é' contains '/'",
        "dataset name '/../é' contains '..'",
        "dataset name '/../é' contains 'é'",
    ]


def test_prefix_helpers_use_the_shared_layout() -> None:
    assert datasets.dataset_prefix("churn") == "datasets/churn/"
    assert datasets.manifest_prefix("churn") == "manifests/churn/"
    assert (datasets.CAPTURE_PREFIX, datasets.MONITORING_PREFIX, datasets.ARTIFACTS_PREFIX) == (
        "capture/",
        "monitoring/",
        "artifacts/",
    )
    with pytest.raises(ValueError, match="contains '/'"):
        datasets.dataset_prefix("a/b")


@pytest.mark.parametrize("uri", ["http://x/y", "s3://bucket", "s3:///key", "bucket/key"])
def test_malformed_s3_uris_are_rejected(uri: str) -> None:
    with pytest.raises(ValueError, match=r"use s3://<bucket>/<key>"):
        datasets.parse_s3_uri(uri)


def test_the_module_imports_without_aws_cdk_or_boto3() -> None:
    # GIVEN a fresh interpreter (this module runs inside Lambda assets)
    code = "import sys, cdk_mlops.datasets; print(sorted(m for m in ('aws_cdk', 'boto3', 'jsii') if m in sys.modules))"

    # WHEN the module is imported
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=repo).stdout

    # THEN neither aws-cdk-lib nor boto3 was loaded
    assert out.strip() == "[]"
