"""Second, independent guards of two dataset promises: materialize's ETag check and the digest's identity.

``test_datasets.py`` covers each with one test; these come at them from another side.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdk_mlops import datasets
from cdk_mlops.datasets import DatasetVersionError, ManifestEntry
from tests.conftest import TEST_REGION

BUCKET = "ml-data-unversioned"
PART = 5 * 1024 * 1024  # the smallest part S3 accepts before the last one


@pytest.fixture
def s3(aws_env: None) -> Iterator[Any]:
    """A moto S3 with one unversioned bucket (every object's version id is ``null``)."""
    with mock_aws():
        client: Any = boto3.client("s3", region_name=TEST_REGION)
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": TEST_REGION})
        yield client


def upload_in_two_parts(s3: Any, key: str, first: bytes, second: bytes) -> str:
    """A multipart upload (its ETag is ``<md5 of the part md5s>-2``, not an MD5 of the bytes); the ETag."""
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    parts = [
        {
            "ETag": s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=n, Body=body)["ETag"],
            "PartNumber": n,
        }
        for n, body in ((1, first), (2, second))
    ]
    done = s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": parts})
    return str(done["ETag"]).strip('"')


def test_an_overwritten_multipart_object_of_the_same_size_is_refused_by_its_etag(s3: Any, tmp_path: Path) -> None:
    # GIVEN a multipart object snapshotted in an unversioned bucket, then overwritten by another
    # multipart upload of exactly the same size: only the ETag tells the two apart (there is no MD5 to check)
    key = "datasets/big/blob.bin"
    recorded = upload_in_two_parts(s3, key, b"a" * PART, b"tail")
    manifest = datasets.snapshot(BUCKET, "big", s3=s3)
    assert manifest.entries[0].etag == recorded
    replaced = upload_in_two_parts(s3, key, b"b" * PART, b"tail")
    assert replaced != recorded

    # WHEN / THEN materializing refuses the object, naming both ETags, and writes nothing
    with pytest.raises(DatasetVersionError) as caught:
        datasets.materialize(manifest, tmp_path, s3=s3)
    assert f"s3://{BUCKET}/{key} version null has ETag {replaced}, but" in str(caught.value)
    assert f"recorded {recorded}: this is not the recorded content" in str(caught.value)
    assert list(tmp_path.rglob("*")) == []


def test_the_etag_is_compared_without_its_quotes_and_every_entry_is_checked(s3: Any, tmp_path: Path) -> None:
    # GIVEN a manifest of two single-part objects whose second entry records another content's ETag
    s3.put_object(Bucket=BUCKET, Key="datasets/two/a.csv", Body=b"first")
    s3.put_object(Bucket=BUCKET, Key="datasets/two/b.csv", Body=b"second")
    manifest = datasets.build_manifest(BUCKET, "two", s3=s3)
    other = hashlib.md5(b"second, edited", usedforsecurity=False).hexdigest()
    first, second = manifest.entries
    assert first.etag == hashlib.md5(b"first", usedforsecurity=False).hexdigest()  # S3 sends it quoted
    edited = replace(manifest, entries=(first, replace(second, etag=other)))

    # WHEN / THEN the first object is accepted and the second refused by its ETag
    with pytest.raises(
        DatasetVersionError, match=rf"datasets/two/b.csv version null has ETag \w+, but .* recorded {other}"
    ):
        datasets.materialize(edited, tmp_path, s3=s3)
    assert (tmp_path / "a.csv").read_bytes() == b"first"
    assert not (tmp_path / "b.csv").exists()
    assert not list(tmp_path.rglob("*.part"))


def test_the_digest_is_the_contents_identity_not_its_versions_or_listing_order() -> None:
    # GIVEN the same objects listed in another order and with other version ids (a re-upload of identical bytes)
    a = ManifestEntry("datasets/churn/a.csv", "v1", "0" * 32, 10)
    b = ManifestEntry("datasets/churn/b.csv", "v2", "1" * 32, 20)
    again = [replace(b, version_id="v9"), replace(a, version_id="v8")]

    # WHEN / THEN the digest is the same; any change of key, ETag, size or dataset changes it
    digest = datasets.manifest_digest("churn", [a, b])
    assert datasets.manifest_digest("churn", again) == digest
    assert (
        len(
            {
                digest,
                datasets.manifest_digest("churn", [a, replace(b, etag="2" * 32)]),
                datasets.manifest_digest("churn", [a, replace(b, size=21)]),
                datasets.manifest_digest("churn", [a, replace(b, key="datasets/churn/c.csv")]),
                datasets.manifest_digest("churn", [a]),
                datasets.manifest_digest("fraud", [a, b]),
            }
        )
        == 6
    )


# --- what materialize says when it cannot restore ------------------------------------------------------


class _Answers:
    """Delegates to a real client; ``get_object`` answers from ``respond`` (the request, the real client)."""

    def __init__(self, client: Any, respond: Any) -> None:
        self._client = client
        self._respond = respond

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_object(self, **kwargs: Any) -> Any:
        return self._respond(kwargs, self._client)


def test_a_deleted_object_of_an_unversioned_bucket_says_to_enable_versioning(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key="datasets/gone/a.csv", Body=b"a")
    manifest = datasets.build_manifest(BUCKET, "gone", s3=s3)
    s3.delete_object(Bucket=BUCKET, Key="datasets/gone/a.csv")
    with pytest.raises(DatasetVersionError) as caught:
        datasets.materialize(manifest, tmp_path, s3=s3)
    assert str(caught.value) == (
        f"s3://{BUCKET}/datasets/gone/a.csv version null listed in the manifest no longer exists: it was written "
        "while the bucket was not versioned and has since been deleted; enable versioning so snapshots can be restored"
    )


def test_a_version_that_answers_404_with_any_code_is_missing_and_other_errors_pass_through(
    s3: Any, tmp_path: Path
) -> None:
    from botocore.exceptions import ClientError

    s3.put_object(Bucket=BUCKET, Key="datasets/odd/a.csv", Body=b"a")
    manifest = datasets.build_manifest(BUCKET, "odd", s3=s3)
    entry = manifest.entries[0]
    versioned = replace(manifest, entries=(replace(entry, version_id="3HL4kqtJlcpXroDTDmJ"),), uri="s3://b/m.json")

    def failing(code: str, status: int) -> Any:
        def respond(request: dict[str, Any], client: Any) -> Any:
            error = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
            raise ClientError(error, "GetObject")  # type: ignore[arg-type]

        return _Answers(s3, respond)

    # WHEN S3 answers 404 with a code not in the list THEN the version is missing, with the lifecycle hint
    with pytest.raises(DatasetVersionError) as caught:
        datasets.materialize(versioned, tmp_path, s3=failing("SomethingNew", 404))
    assert str(caught.value) == (
        f"s3://{BUCKET}/datasets/odd/a.csv version 3HL4kqtJlcpXroDTDmJ listed in s3://b/m.json no longer exists: the "
        "version was deleted, or expired by the bucket's noncurrent-version lifecycle rule; restore it from a "
        "backup, or take a new snapshot and retrain. Keep versions longer (VersionedDataStore "
        "noncurrent_version_expiration=None) to keep manifests restorable"
    )
    # WHEN it answers NoSuchVersion with another status THEN too
    with pytest.raises(DatasetVersionError, match="no longer exists"):
        datasets.materialize(versioned, tmp_path, s3=failing("NoSuchVersion", 400))
    # WHEN access is denied THEN the error is S3's own, not a missing version
    with pytest.raises(ClientError, match="AccessDenied"):
        datasets.materialize(versioned, tmp_path, s3=failing("AccessDenied", 403))


@pytest.mark.parametrize(
    "encryption",
    [{"ServerSideEncryption": "aws:kms"}, {"ServerSideEncryption": "aws:kms:dsse"}, {"SSECustomerAlgorithm": "AES256"}],
    ids=["sse-kms", "dsse-kms", "sse-c"],
)
def test_encrypted_objects_are_checked_by_etag_and_size_not_md5(
    s3: Any, tmp_path: Path, encryption: dict[str, str]
) -> None:
    # GIVEN an object whose ETag is not an MD5 of its bytes, as S3 answers for these encryptions
    s3.put_object(Bucket=BUCKET, Key="datasets/enc/a.csv", Body=b"plain")
    manifest = datasets.build_manifest(BUCKET, "enc", s3=s3)
    kms_etag = hashlib.md5(b"ciphertext", usedforsecurity=False).hexdigest()
    recorded = replace(manifest, entries=(replace(manifest.entries[0], etag=kms_etag),))

    def respond(request: dict[str, Any], client: Any) -> dict[str, Any]:
        return {**client.get_object(**request), "ETag": f'"{kms_etag}"', **encryption}

    # WHEN it is materialized THEN the bytes are accepted: their MD5 cannot be compared with this ETag
    [written] = datasets.materialize(recorded, tmp_path, s3=_Answers(s3, respond))  # type: ignore[arg-type]
    assert written.read_bytes() == b"plain"


def test_a_clash_between_a_file_and_a_directory_in_an_old_manifest_names_both(tmp_path: Path) -> None:
    # Snapshots leave the file out (test_datasets.py); a manifest written before they did may list both.
    entries = tuple(ManifestEntry(f"datasets/clash/{k}", "v1", "0" * 32, 1) for k in ("a", "a/b.csv"))
    manifest = datasets.Manifest(BUCKET, "clash", "2025-01-31T12:00:00Z", entries, "0" * 64)
    with pytest.raises(DatasetVersionError) as caught:
        datasets.materialize(manifest, tmp_path / "out", s3=object())  # type: ignore[arg-type]
    root = (tmp_path / "out").resolve()
    assert str(caught.value) == (
        f"s3://{BUCKET}/datasets/clash/a/b.csv needs {root / 'a'} to be a directory, but another object of the "
        "dataset is stored at that path; rename one of them and take a new snapshot"
    )


SEGMENTS = "its key has an empty, '.' or '..' segment, which would name another directory; rename the object"
NUL_OR_BACKSLASH = "its key holds a NUL or a backslash, which no file name may; rename the object"


@pytest.mark.parametrize(
    ("relative", "reason"),
    [
        ("a\\b.csv", NUL_OR_BACKSLASH),
        ("a\x00b.csv", NUL_OR_BACKSLASH),
        ("../up.csv", SEGMENTS),
        ("a/./b.csv", SEGMENTS),
        ("a/../b.csv", SEGMENTS),
        ("a//b.csv", SEGMENTS),
        (
            "d/" + "x" * 251,
            "a segment of its key is 251 bytes, over the 250 a file name may have; rename the "
            "object with shorter segments",
        ),
        (
            "é" * 126,
            "a segment of its key is 252 bytes, over the 250 a file name may have; rename the "
            "object with shorter segments",
        ),
    ],
)
def test_unsafe_keys_in_an_old_manifest_are_refused_with_the_reason(tmp_path: Path, relative: str, reason: str) -> None:
    assert datasets.key_problem(relative) == reason
    entry = ManifestEntry(f"datasets/bad/{relative}", "v1", "0" * 32, 1)
    manifest = datasets.Manifest(
        BUCKET, "bad", "2025-01-31T12:00:00Z", (entry,), datasets.manifest_digest("bad", [entry])
    )
    with pytest.raises(DatasetVersionError) as caught:
        datasets.materialize(manifest, tmp_path, s3=object())  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"s3://{BUCKET}/datasets/bad/{relative} (version v1) cannot be written below {tmp_path.resolve()}: "
        f"{reason}, then take a new snapshot"
    )


@pytest.mark.parametrize("relative", ["a.csv", "d/e/f.csv", "x" * 250, "é" * 125, "a..b/c.d"])
def test_keys_that_are_files_below_a_directory_have_no_problem(relative: str) -> None:
    assert datasets.key_problem(relative) is None


# --- snapshots --------------------------------------------------------------------------------------------


def test_an_empty_dataset_can_be_snapshotted_when_allowed_and_is_stored(s3: Any) -> None:
    with pytest.raises(DatasetVersionError, match="holds no objects"):
        datasets.snapshot(BUCKET, "empty", s3=s3)
    manifest = datasets.snapshot(BUCKET, "empty", s3=s3, allow_empty=True)
    assert manifest.entries == ()
    assert manifest.uri is not None
    assert datasets.load_manifest(manifest.uri, s3=s3) == manifest


def test_the_newest_manifest_is_the_greatest_json_key_of_its_dataset(s3: Any) -> None:
    for key in (
        "manifests/churn/20250101T000000Z-aaaa.json",
        "manifests/churn/20250301T000000Z-cccc.json",
        "manifests/churn/20250201T000000Z-bbbb.json",
        "manifests/churn/20251231T000000Z-zzzz.json.tmp",
        "manifests/churn2/20260101T000000Z-dddd.json",
    ):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"{}")
    assert datasets.latest_manifest_uri(BUCKET, "churn", s3=s3) == (
        f"s3://{BUCKET}/manifests/churn/20250301T000000Z-cccc.json"
    )
    assert datasets.latest_manifest_uri(BUCKET, "fraud", s3=s3) is None


class _Counting:
    """Delegates to a real client and counts the calls it is given."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self._client, name)


def test_reads_of_manifests_go_through_the_client_given(s3: Any) -> None:
    # GIVEN two stored manifests and a client that counts what it is asked
    s3.put_object(Bucket=BUCKET, Key="datasets/given/a.csv", Body=b"a")
    first = datasets.snapshot(BUCKET, "given", s3=s3)
    s3.put_object(Bucket=BUCKET, Key="datasets/given/b.csv", Body=b"b")
    second = datasets.snapshot(BUCKET, "given", s3=s3, now=None)
    assert first.uri is not None
    assert second.uri is not None
    counting = _Counting(s3)

    # WHEN the newest is looked up and the two are compared THEN every request used that client
    assert datasets.latest_manifest_uri(BUCKET, "given", s3=counting) is not None  # type: ignore[arg-type]
    assert datasets.diff_uris(first.uri, second.uri, s3=counting).added == ("b.csv",)  # type: ignore[arg-type]
    # (a HEAD per manifest when the two were written in the same second: see the next test)
    assert [c for c in counting.calls if c != "head_object"] == ["get_paginator", "get_object", "get_object"]
    assert counting.calls.count("head_object") in (0, 2)


def test_of_two_manifests_of_one_second_the_one_written_last_is_the_newest(s3: Any) -> None:
    # GIVEN two snapshots of changing data within one second, the later one with the smaller digest,
    # so that the keys (one-second stamp, then digest) alone would name the earlier one
    now = datetime(2025, 3, 4, 12, 0, 0, tzinfo=UTC)
    s3.put_object(Bucket=BUCKET, Key="datasets/tie/a.csv", Body=b"a")
    first = datasets.build_manifest(BUCKET, "tie", s3=s3, now=now)
    s3.put_object(Bucket=BUCKET, Key="datasets/tie/b.csv", Body=b"b")
    second = datasets.build_manifest(BUCKET, "tie", s3=s3, now=now)
    earlier, later = sorted((first, second), key=lambda m: m.sha256, reverse=True)
    written = [datasets.write_manifest(m, s3=s3) for m in (earlier, later)]
    assert datasets.manifest_key(earlier)[:-5] > datasets.manifest_key(later)[:-5]
    # WHEN the newest is looked up THEN it is the one written last
    assert datasets.latest_manifest_uri(BUCKET, "tie", s3=s3) == written[1].uri
    # AND a manifest stored without the write time (before it was recorded) counts as the oldest of its second
    s3.copy_object(
        Bucket=BUCKET,
        Key=datasets.manifest_key(earlier),
        CopySource={"Bucket": BUCKET, "Key": datasets.manifest_key(earlier)},
        MetadataDirective="REPLACE",
    )
    assert datasets.latest_manifest_uri(BUCKET, "tie", s3=s3) == written[1].uri
    s3.copy_object(
        Bucket=BUCKET,
        Key=datasets.manifest_key(later),
        CopySource={"Bucket": BUCKET, "Key": datasets.manifest_key(later)},
        MetadataDirective="REPLACE",
    )
    assert datasets.latest_manifest_uri(BUCKET, "tie", s3=s3) == max(w.uri or "" for w in written)


# --- manifests that were edited or are not there ---------------------------------------------------------


def document(dataset: str, entries: list[ManifestEntry], **changes: Any) -> str:
    """A manifest document as ``to_json`` writes it, with a correct digest unless ``changes`` say otherwise."""
    manifest = datasets.Manifest(
        BUCKET, dataset, "2025-01-31T12:00:00Z", tuple(entries), datasets.manifest_digest(dataset, entries)
    )
    return json.dumps({**json.loads(manifest.to_json()), **changes})


def test_a_manifest_listing_another_datasets_key_is_refused_even_with_a_matching_digest() -> None:
    entries = [
        ManifestEntry("datasets/churn/a.csv", "v1", "0" * 32, 1),
        ManifestEntry("datasets/fraud/b.csv", "v1", "1" * 32, 2),
    ]
    with pytest.raises(DatasetVersionError) as caught:
        datasets.Manifest.from_json(document("churn", entries), uri="s3://b/m.json")
    assert str(caught.value) == (
        "s3://b/m.json lists 'datasets/fraud/b.csv', which is outside datasets/churn/; the manifest was edited, "
        "take a new snapshot"
    )


def test_a_manifest_whose_digest_does_not_match_says_it_is_corrupt() -> None:
    entries = [ManifestEntry("datasets/churn/a.csv", "v1", "0" * 32, 1)]
    expected = datasets.manifest_digest("churn", entries)
    with pytest.raises(DatasetVersionError) as caught:
        datasets.Manifest.from_json(document("churn", entries, sha256="f" * 64))
    assert str(caught.value) == (
        f"<manifest> is corrupt: its sha256 {'f' * 64} does not match its entries ({expected}); manifests must not "
        "be edited, take a new snapshot"
    )


def test_a_document_of_another_schema_is_not_a_manifest() -> None:
    with pytest.raises(DatasetVersionError) as caught:
        datasets.Manifest.from_json(json.dumps({"schema": "other"}), uri="m.json")
    assert str(caught.value) == (
        "m.json is not a dataset manifest (schema 'cdk-mlops.dataset-manifest.v1'); pass the URI printed by "
        "'cdk-mlops dataset snapshot'"
    )


def test_a_local_manifest_knows_where_it_was_read_from_and_a_missing_one_says_so(tmp_path: Path) -> None:
    entries = [ManifestEntry("datasets/churn/a.csv", "v1", "0" * 32, 1)]
    path = tmp_path / "manifest.json"
    path.write_text(document("churn", entries))
    assert datasets.load_manifest(path).uri == str(path)
    with pytest.raises(DatasetVersionError) as caught:
        datasets.load_manifest(tmp_path / "missing.json")
    assert (
        str(caught.value) == f"no manifest file at {tmp_path / 'missing.json'}; pass an s3:// URI or an existing file"
    )


# --- the stored formats, and where files land -------------------------------------------------------------


def test_the_digest_is_the_documented_canonical_json_of_the_dataset_and_its_rows() -> None:
    # The digest is compared with digests stored by earlier runs: its form may never drift.
    entries = [
        ManifestEntry("datasets/churn/b.csv", "v2", "1" * 32, 20),
        ManifestEntry("datasets/churn/a.csv", "v1", "0" * 32, 10),
    ]
    canonical = (
        '{"dataset":"churn","entries":[["datasets/churn/a.csv","' + "0" * 32 + '",10],'
        '["datasets/churn/b.csv","' + "1" * 32 + '",20]]}'
    )
    assert datasets.manifest_digest("churn", entries) == hashlib.sha256(canonical.encode("ascii")).hexdigest()


def test_a_stored_manifest_says_what_it_holds_in_readable_utf8(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="datasets/intl/données é.csv", Body=b"abc")
    manifest = datasets.snapshot(BUCKET, "intl", s3=s3)
    assert manifest.uri is not None
    stored = s3.get_object(Bucket=BUCKET, Key=manifest.uri.split("/", 3)[3])["Body"].read().decode("utf-8")
    document = json.loads(stored)
    assert (document["prefix"], document["object_count"], document["total_bytes"]) == ("datasets/intl/", 1, 3)
    assert '"key":"datasets/intl/données é.csv"' in stored  # raw UTF-8, no \\u escapes, no spaces


@pytest.mark.usefixtures("india_time")
def test_snapshot_times_are_utc_whatever_the_machines_zone(s3: Any) -> None:
    from datetime import UTC, datetime, timedelta, timezone

    s3.put_object(Bucket=BUCKET, Key="datasets/t/a.csv", Body=b"a")
    local = datetime(2025, 1, 31, 17, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert datasets.build_manifest(BUCKET, "t", s3=s3, now=local).created_at == "2025-01-31T12:00:00Z"
    before = datetime.now(UTC).replace(microsecond=0)
    created = datetime.strptime(datasets.build_manifest(BUCKET, "t", s3=s3).created_at, "%Y-%m-%dT%H:%M:%SZ")
    assert before <= created.replace(tzinfo=UTC) <= before + timedelta(minutes=1)


def test_an_empty_dataset_is_refused_with_the_three_ways_out(s3: Any) -> None:
    with pytest.raises(DatasetVersionError) as caught:
        datasets.build_manifest(BUCKET, "nothing", s3=s3)
    assert str(caught.value) == (
        f"s3://{BUCKET}/datasets/nothing/ holds no objects; upload data first, check the dataset name, "
        "or pass allow_empty=True (--allow-empty on the cdk-mlops command line)"
    )


def test_snapshots_and_restores_go_through_the_client_given(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key="datasets/given/deep/er/a.csv", Body=b"a")
    counting = _Counting(s3)
    manifest = datasets.snapshot(BUCKET, "given", s3=counting)  # type: ignore[arg-type]
    assert counting.calls == ["get_paginator", "put_object"]
    assert manifest.uri is not None
    counting.calls.clear()
    # AND nested keys land in nested folders below a destination that does not exist yet
    [written] = datasets.materialize(manifest.uri, tmp_path / "new" / "dir", s3=counting)  # type: ignore[arg-type]
    assert written == (tmp_path / "new" / "dir" / "deep" / "er" / "a.csv").resolve()
    assert counting.calls == ["get_object", "get_object"]


def test_a_short_download_and_a_corrupted_one_are_named_with_what_to_do(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key="datasets/short/a.csv", Body=b"hello")
    manifest = datasets.build_manifest(BUCKET, "short", s3=s3)
    where = "the manifest"
    name = f"s3://{BUCKET}/datasets/short/a.csv version null"

    def truncated(request: dict[str, Any], client: Any) -> dict[str, Any]:
        from botocore.response import StreamingBody

        real = client.get_object(**request)
        return {**real, "Body": StreamingBody(io.BytesIO(b"hel"), 3)}

    with pytest.raises(DatasetVersionError) as caught:
        datasets.materialize(manifest, tmp_path, s3=_Answers(s3, truncated))  # type: ignore[arg-type]
    assert str(caught.value) == f"{name}: downloaded 3 bytes, {where} recorded 5; retry the download"

    def flipped(request: dict[str, Any], client: Any) -> dict[str, Any]:
        from botocore.response import StreamingBody

        real = client.get_object(**request)
        return {**real, "Body": StreamingBody(io.BytesIO(b"jello"), 5)}

    with pytest.raises(DatasetVersionError) as caught:
        datasets.materialize(manifest, tmp_path, s3=_Answers(s3, flipped))  # type: ignore[arg-type]
    md5 = hashlib.md5(b"jello", usedforsecurity=False).hexdigest()
    assert str(caught.value) == (
        f"{name}: the downloaded bytes have MD5 {md5}, not the recorded ETag {manifest.entries[0].etag}; "
        "the download was corrupted, retry it"
    )


def test_an_etag_mismatch_explains_the_two_likely_causes(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key="datasets/moved/a.csv", Body=b"one")
    manifest = datasets.build_manifest(BUCKET, "moved", s3=s3)
    s3.put_object(Bucket=BUCKET, Key="datasets/moved/a.csv", Body=b"two")
    with pytest.raises(DatasetVersionError) as caught:
        datasets.materialize(manifest, tmp_path, s3=s3)
    now = hashlib.md5(b"two", usedforsecurity=False).hexdigest()
    assert str(caught.value) == (
        f"s3://{BUCKET}/datasets/moved/a.csv version null has ETag {now}, but the manifest recorded "
        f"{manifest.entries[0].etag}: this is not the recorded content (the manifest belongs to another bucket, or "
        "the bucket is unversioned and the object was overwritten); take a new snapshot"
    )


@pytest.mark.parametrize("name", ["X/a", "XX/b", "a/b"])
def test_a_nested_name_is_refused_whatever_it_starts_with(name: str) -> None:
    assert any("contains '/'; use a single segment" in p for p in datasets.dataset_name_problems(name))


def test_names_of_up_to_60_characters_are_shown_whole_and_longer_ones_cut() -> None:
    sixty, sixty_one = "a" * 59 + "/", "a" * 60 + "/"
    assert f"dataset name {sixty!r} contains '/'" in datasets.dataset_name_problems(sixty)[0]
    assert f"dataset name {'a' * 57 + '...'!r} contains '/'" in datasets.dataset_name_problems(sixty_one)[0]


def test_check_dataset_name_lists_every_problem_in_one_error() -> None:
    problems = datasets.dataset_name_problems("/a/b")
    assert len(problems) == 2
    with pytest.raises(ValueError, match="starts with") as caught:
        datasets.check_dataset_name("/a/b")
    assert str(caught.value) == f"{problems[0]}; {problems[1]}"


def test_without_a_client_the_default_s3_client_is_used(s3: Any) -> None:
    # The bucket of the fixture, read through the client boto3 makes for the environment (moto here).
    s3.put_object(Bucket=BUCKET, Key="datasets/churn/a.csv", Body=b"1")
    manifest = datasets.build_manifest(BUCKET, "churn")
    assert [e.key for e in manifest.entries] == ["datasets/churn/a.csv"]
