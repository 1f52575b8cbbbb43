"""The S3-Inventory snapshot engine against an in-process S3 (moto): plan, shard, finalize, read back."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

import boto3
import pytest
from moto import mock_aws

from cdk_mlops import datasets, inventory, manifest_shards
from cdk_mlops.datasets import DatasetVersionError, ManifestEntry
from cdk_mlops.inventory import InventoryError, SetDigest
from tests.conftest import TEST_REGION

BUCKET = "ml-data-store"
DATASET = "churn"
PREFIX = f"inventory/{BUCKET}/daily/"
CREATED = datetime(2025, 1, 31, 0, 0, 0, tzinfo=UTC)
NOW = datetime(2025, 1, 31, 6, 0, 0, tzinfo=UTC)
SCHEMA = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag"

#: One inventory row: key, version id, is latest, is delete marker, size, etag.
Row = tuple[str, str, bool, bool, int, str]


@pytest.fixture
def s3(aws_env: None) -> Iterator[Any]:
    """A moto S3 with the versioned data store bucket (which also receives the reports)."""
    with mock_aws():
        client: Any = boto3.client("s3", region_name=TEST_REGION)
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": TEST_REGION})
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def seed(s3: Any, dataset: str = DATASET) -> dict[str, bytes]:
    """Objects of a dataset, some overwritten, one deleted, plus noise; relative key -> current bytes."""
    files = {f"part={i % 3}/{i:03d}.csv": f"id,label\n{i},{i % 2}\n".encode() * (i + 1) for i in range(9)}
    files["données é+plus & space.csv"] = b"unicode\n"
    for relative, body in files.items():
        s3.put_object(Bucket=BUCKET, Key=f"datasets/{dataset}/{relative}", Body=b"old " + body)
        s3.put_object(Bucket=BUCKET, Key=f"datasets/{dataset}/{relative}", Body=body)
    s3.put_object(Bucket=BUCKET, Key=f"datasets/{dataset}/gone.csv", Body=b"deleted later")
    s3.delete_object(Bucket=BUCKET, Key=f"datasets/{dataset}/gone.csv")
    s3.put_object(Bucket=BUCKET, Key=f"datasets/{dataset}/folder/", Body=b"")
    s3.put_object(Bucket=BUCKET, Key="datasets/other/x.csv", Body=b"another dataset")
    return files


def listed_rows(s3: Any) -> list[Row]:
    """Every version and delete marker of the bucket's datasets/, as an inventory of all versions lists them."""
    rows: list[Row] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET, Prefix="datasets/"):
        for v in page.get("Versions", ()):
            rows.append((v["Key"], v["VersionId"], v["IsLatest"], False, v["Size"], v["ETag"].strip('"')))
        for m in page.get("DeleteMarkers", ()):
            rows.append((m["Key"], m["VersionId"], m["IsLatest"], True, 0, ""))
    return rows


def csv_gz(rows: Sequence[Row], schema: str = SCHEMA) -> bytes:
    """Rows in S3 Inventory's CSV: no header, every value quoted, the key URL-encoded (space as '+')."""
    fields = [f.strip() for f in schema.split(",")]
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for key, version, latest, marker, size, etag in rows:
        values = {
            "Bucket": BUCKET,
            "Key": quote_plus(key, safe="/"),
            "VersionId": version,
            "IsLatest": "true" if latest else "false",
            "IsDeleteMarker": "true" if marker else "false",
            "Size": "" if marker else str(size),
            "LastModifiedDate": "2025-01-30T12:00:00.000Z",
            "ETag": "" if marker else etag,
        }
        writer.writerow([values[f] for f in fields])
    return gzip.compress(out.getvalue().encode("utf-8"))


def write_report(
    s3: Any,
    files: Sequence[Sequence[Row]],
    *,
    folder: str = "2025-01-31T00-00Z",
    schema: str = SCHEMA,
    file_format: str = "CSV",
    created: datetime = CREATED,
    bucket: str = BUCKET,
) -> str:
    """An inventory report of ``files`` (rows per data file) under PREFIX of ``bucket``; its manifest.json URI."""
    entries = []
    for i, rows in enumerate(files):
        key = f"{PREFIX}data/{folder}-{i:04d}.csv.gz"
        body = csv_gz(rows, schema)
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        entries.append({"key": key, "size": len(body), "MD5checksum": _md5(body)})
    manifest = {
        "sourceBucket": BUCKET,
        "destinationBucket": f"arn:aws:s3:::{bucket}",
        "version": "2016-11-30",
        "creationTimestamp": str(int(created.timestamp() * 1000)),
        "fileFormat": file_format,
        "fileSchema": schema,
        "files": entries,
    }
    key = f"{PREFIX}{folder}/manifest.json"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest).encode())
    return f"s3://{bucket}/{key}"


def _md5(body: bytes) -> str:
    import hashlib

    return hashlib.md5(body, usedforsecurity=False).hexdigest()


def split(rows: Sequence[Row], parts: int, seed_: int = 3) -> list[list[Row]]:
    """Rows shuffled and dealt over ``parts`` files."""
    shuffled = list(rows)
    random.Random(seed_).shuffle(shuffled)
    return [shuffled[i::parts] for i in range(parts)]


def snapshot(s3: Any, report: str, *, chunk_entries: int | None = None, dataset: str = DATASET) -> dict[str, Any]:
    """plan -> shard (each file, in order) -> finalize, as the state machine runs them."""
    plan = inventory.plan(s3, report_uri=report, dataset=dataset, bucket=BUCKET, now=NOW)
    items = json.loads(s3.get_object(Bucket=plan["files_bucket"], Key=plan["files_key"])["Body"].read())
    assert [item["file_index"] for item in items] == list(range(plan["file_count"]))
    for item in items:
        inventory.shard_file(s3, plan, chunk_entries=chunk_entries, **item)
    return inventory.finalize(s3, plan)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- end to end


def test_a_version_from_an_inventory_restores_exactly_the_current_objects(s3: Any, tmp_path: Path) -> None:
    # GIVEN a dataset with overwritten and deleted objects, a folder marker and another dataset,
    # listed by an inventory of all versions in three files
    files = seed(s3)
    report = write_report(s3, split(listed_rows(s3), 3))

    # WHEN it is snapshotted in shards of 4 rows
    result = snapshot(s3, report, chunk_entries=4)

    # THEN the version holds the current objects only, restores them byte for byte, and is the newest
    assert result["object_count"] == len(files)
    assert result["total_bytes"] == sum(len(b) for b in files.values())
    assert result["as_of"] == "2025-01-31T00:00:00Z"
    assert result["dataset"] == DATASET
    assert datasets.latest_manifest_uri(BUCKET, DATASET, s3=s3) == result["manifest"]
    written = datasets.materialize(result["manifest"], tmp_path / "out", s3=s3)
    assert len(written) == len(files)
    assert tree(tmp_path / "out") == files
    loaded = datasets.load_manifest(result["manifest"], s3=s3)
    assert loaded.sha256 == result["digest"]
    assert [e.key for e in loaded.entries] == sorted(e.key for e in loaded.entries)
    assert loaded.shards == result["shards"] > 3


def test_the_index_is_v2_with_the_reports_time_and_a_set_digest(s3: Any) -> None:
    seed(s3)
    report = write_report(s3, [listed_rows(s3)])

    result = snapshot(s3, report)

    document = json.loads(s3.get_object(Bucket=BUCKET, Key=result["manifest"].split("/", 3)[3])["Body"].read())
    assert document["schema"] == manifest_shards.MANIFEST_INDEX_SCHEMA_V2
    assert document["ordering"] == "shard"
    assert document["as_of"] == document["created_at"] == "2025-01-31T00:00:00Z"
    assert document["source"] == {"engine": "s3-inventory", "report": report}
    assert document["digest"]["algorithm"] == "adhash4096-shake256"
    assert len(document["digest"]["sum"]) == 1024
    assert document["sha256"] == SetDigest.from_hex(DATASET, document["digest"]["sum"]).hexdigest()
    assert result["manifest"].startswith(f"s3://{BUCKET}/manifests/{DATASET}/20250131T000000Z-")


def test_a_v2_and_a_v1_version_of_the_same_data_are_identical(s3: Any) -> None:
    # GIVEN the same objects snapshotted by the Lambda path (v1) and from an inventory (v2)
    seed(s3)
    v1 = datasets.snapshot(BUCKET, DATASET, s3=s3, now=NOW)
    v2 = snapshot(s3, write_report(s3, split(listed_rows(s3), 2)), chunk_entries=3)["manifest"]

    # THEN diff (streamed and in memory) finds no change, and both list the same versions
    assert datasets.diff_uris(v1.uri or "", v2, s3=s3).identical
    assert datasets.diff(v1, datasets.load_manifest(v2, s3=s3)).identical
    assert list(datasets.iter_entries(v2, s3=s3)) == list(v1.entries)


def test_the_set_digest_does_not_depend_on_how_rows_are_split_over_files(s3: Any) -> None:
    seed(s3)
    rows = listed_rows(s3)
    digests = set()
    for parts, chunk, folder in (
        (1, None, "2025-01-31T00-00Z"),
        (4, 2, "2025-01-31T00-01Z"),
        (7, 1, "2025-01-31T00-02Z"),
    ):
        report = write_report(s3, split(rows, parts, seed_=parts), folder=folder)
        digests.add(snapshot(s3, report, chunk_entries=chunk)["digest"])
    assert len(digests) == 1


def test_non_latest_versions_and_delete_markers_are_skipped_and_counted(s3: Any) -> None:
    seed(s3)
    report = write_report(s3, [listed_rows(s3)])
    plan = inventory.plan(s3, report_uri=report, dataset=DATASET, bucket=BUCKET, now=NOW)
    item = json.loads(s3.get_object(Bucket=BUCKET, Key=plan["files_key"])["Body"].read())[0]

    inventory.shard_file(s3, plan, **item)

    part = json.loads(s3.get_object(Bucket=BUCKET, Key=inventory.part_key(plan["index_key"], 0))["Body"].read())
    assert part["skipped"] == {"outside": 1, "not_latest": 11, "delete_marker": 1, "folder": 1}
    assert part["object_count"] == 10
    assert part["rows"] == 24


# --------------------------------------------------------------------------- the set digest


def test_the_set_digest_is_order_and_partition_independent_and_sees_every_field() -> None:
    rng = random.Random(5)
    rows = [
        (f"datasets/d/{i:04d}-{rng.random()}", f"{rng.getrandbits(128):032x}", rng.randint(0, 10**9))
        for i in range(200)
    ]

    def digest(items: Sequence[tuple[str, str, int]]) -> SetDigest:
        d = SetDigest("d")
        for row in items:
            d.add(*row)
        return d

    whole = digest(rows)
    shuffled = rows[:]
    rng.shuffle(shuffled)
    assert digest(shuffled) == whole
    parts = [digest(shuffled[i::5]) for i in range(5)]
    combined = parts[0]
    for part in parts[1:]:
        combined = combined + part
    assert combined == whole
    assert parts[0].combine(parts[1]) == parts[1] + parts[0]
    assert SetDigest.from_hex("d", whole.sum_hex()) == whole
    assert len(whole.sum_hex()) == 1024
    assert len(whole.hexdigest()) == 64
    key, etag, size = rows[0]
    for changed in ((key + "x", etag, size), (key, etag[:-1] + "0", size), (key, etag, size + 1)):
        if changed != rows[0]:
            assert digest([changed, *rows[1:]]).hexdigest() != whole.hexdigest()
    other = SetDigest("e")
    other._sum = whole._sum
    assert other.hexdigest() != whole.hexdigest()  # the dataset name is part of the id
    with pytest.raises(ValueError, match="dataset 'd' with one of 'e'"):
        whole.combine(other)
    with pytest.raises(ValueError, match="1024 lower-case hex"):
        SetDigest.from_hex("d", "00")


def test_keys_are_url_decoded_exactly_as_unquote_plus_does() -> None:
    rng = random.Random(1)
    alphabet = ["a", "/", "=", " ", "+", "%", "é", "字", "😀", "\x01", '"', ",", "%2", "%zz", "%41", "%e9"]
    for _ in range(3000):
        key = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
        for encoded in (quote_plus(key, safe="/"), quote(key, safe="/"), key):
            try:
                expected = unquote_plus(encoded, errors="strict")
            except UnicodeDecodeError:
                expected = "<not UTF-8>"
            try:
                decoded = inventory._url_decode(encoded)
            except UnicodeDecodeError:
                decoded = "<not UTF-8>"
            assert decoded == expected, encoded


def test_the_set_digest_hashes_the_row_text_the_content_digest_hashes() -> None:
    for key in ['datasets/d/a"b', "datasets/d/é字😀", "datasets/d/\x01\n\\", "datasets/d/plain"]:
        assert manifest_shards.row_text(key, "e" * 32, 7) == json.dumps([key, "e" * 32, 7], separators=(",", ":"))
        line = manifest_shards.shard_line(key, "v1", "e", 7)
        assert line == manifest_shards._line(ManifestEntry(key, "v1", "e", 7))


# --------------------------------------------------------------------------- reports


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"file_format": "ORC"}, "ORC format; the snapshot engine reads CSV only: set the inventory"),
        ({"file_format": "Parquet"}, "Parquet format"),
        ({"schema": "Bucket, Key, Size, LastModifiedDate, ETag"}, "no VersionId, IsLatest, IsDeleteMarker field"),
        ({"schema": "Bucket, Key, VersionId, IsLatest, IsDeleteMarker"}, "no Size, ETag field"),
        ({"schema": "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size"}, "add Size and ETag to the inventory"),
    ],
)
def test_a_report_the_engine_cannot_use_fails_naming_the_setting(s3: Any, change: dict[str, Any], message: str) -> None:
    report = write_report(s3, [[]], **change)
    with pytest.raises(InventoryError, match=message):
        inventory.plan(s3, report_uri=report, dataset=DATASET, bucket=BUCKET, now=NOW)


def test_a_current_versions_only_report_names_the_setting(s3: Any) -> None:
    report = write_report(s3, [[]], schema="Bucket, Key, Size, ETag")
    with pytest.raises(InventoryError, match="set the inventory's IncludedObjectVersions to All"):
        inventory.plan(s3, report_uri=report, dataset=DATASET, bucket=BUCKET, now=NOW)


def test_a_report_of_another_bucket_or_from_the_future_or_missing_is_refused(s3: Any) -> None:
    report = write_report(s3, [[]])
    with pytest.raises(InventoryError, match="lists bucket 'ml-data-store', not the data store 'elsewhere'"):
        inventory.plan(s3, report_uri=report, dataset=DATASET, bucket="elsewhere", now=NOW)
    with pytest.raises(InventoryError, match="after now"):
        inventory.plan(s3, report_uri=report, dataset=DATASET, bucket=BUCKET, now=datetime(2025, 1, 30, tzinfo=UTC))
    with pytest.raises(InventoryError, match="no inventory report at"):
        inventory.plan(s3, report_uri=f"s3://{BUCKET}/nope/manifest.json", dataset=DATASET, bucket=BUCKET, now=NOW)


def test_the_newest_complete_report_is_found_and_hive_is_ignored(s3: Any) -> None:
    assert inventory.latest_report(s3, bucket=BUCKET, prefix=PREFIX) is None
    older = write_report(s3, [[]], folder="2025-01-30T00-00Z")
    newer = write_report(s3, [[]], folder="2025-01-31T00-00Z")
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}hive/dt=2025-02-01-00-00/symlink.txt", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}2025-02-01T00-00Z/data-being-written", Body=b"x")
    assert inventory.latest_report(s3, bucket=BUCKET, prefix=PREFIX.rstrip("/")) == newer != older


def test_a_plan_run_again_on_the_same_report_chooses_the_same_key(s3: Any) -> None:
    seed(s3)
    report = write_report(s3, split(listed_rows(s3), 2))
    first = inventory.plan(s3, report_uri=report, dataset=DATASET, bucket=BUCKET, now=NOW)
    again = inventory.plan(s3, report_uri=report, dataset=DATASET, bucket=BUCKET)
    assert first == again
    assert len(json.dumps(first)) < 1000
    other = inventory.plan(s3, report_uri=report, dataset="other", bucket=BUCKET, now=NOW)
    assert other["index_key"].startswith("manifests/other/20250131T000000Z-")


# --------------------------------------------------------------------------- odd keys


def test_odd_keys_are_excluded_with_their_reasons_and_the_rest_restores(s3: Any, tmp_path: Path) -> None:
    # GIVEN a '..' segment, an over-long segment and a key another needs as a directory, in one file
    good = {"a/b.csv": b"ab", "c.csv": b"c"}
    odd = {"x/../escape.csv": b"e", "long/" + "n" * 300 + ".csv": b"l", "a": b"file and directory"}
    for relative, body in {**good, **odd}.items():
        s3.put_object(Bucket=BUCKET, Key=f"datasets/{DATASET}/{relative}", Body=body)
    report = write_report(s3, [listed_rows(s3)])

    result = snapshot(s3, report)

    # THEN the version holds the good keys, lists the odd ones with their reasons, and restores
    assert result["object_count"] == 2
    assert result["excluded"] == 3
    manifest = datasets.load_manifest(result["manifest"], s3=s3)
    reasons = {x.key.removeprefix(f"datasets/{DATASET}/"): x.reason for x in manifest.excluded}
    assert "'..' segment" in reasons["x/../escape.csv"]
    assert "over the 250 a file name may have" in reasons["long/" + "n" * 300 + ".csv"]
    assert "need its key as a directory" in reasons["a"]
    datasets.materialize(result["manifest"], tmp_path, s3=s3)
    assert tree(tmp_path) == good


def test_exclusions_within_a_chunk_are_the_lambda_paths(s3: Any) -> None:
    # The engine's own (faster) directory check gives exactly datasets._exclude_unwritable's answer.
    rng = random.Random(2)
    names = ["a", "a/b", "a/b/c", "a-b", "a.b/c", "d/e", "d", "f/g/h", "f/g", "ok", "x/./y", "é/ü", "é"]
    for _ in range(5):
        chosen = rng.sample(names, 8)
        for relative in chosen:
            s3.put_object(Bucket=BUCKET, Key=f"datasets/{DATASET}/{relative}", Body=relative.encode())
        entries = [ManifestEntry(f"datasets/{DATASET}/{r}", "v", "e", 1) for r in chosen]
        kept, excluded = datasets._exclude_unwritable(f"datasets/{DATASET}/", entries)
        report = write_report(s3, [[r for r in listed_rows(s3) if r[0] in {e.key for e in entries}]])
        result = snapshot(s3, report)
        manifest = datasets.load_manifest(result["manifest"], s3=s3)
        assert {e.key for e in manifest.entries} == {e.key for e in kept}
        assert {(x.key, x.reason) for x in manifest.excluded} == {(x.key, x.reason) for x in excluded}
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": e.key} for e in entries]})


def test_a_directory_conflict_across_files_stays_and_materialize_names_it(s3: Any, tmp_path: Path) -> None:
    # GIVEN `a` and `a/b` listed in two different inventory files
    s3.put_object(Bucket=BUCKET, Key=f"datasets/{DATASET}/a", Body=b"file")
    s3.put_object(Bucket=BUCKET, Key=f"datasets/{DATASET}/a/b", Body=b"below")
    rows = sorted(listed_rows(s3))
    result = snapshot(s3, write_report(s3, [[rows[0]], [rows[1]]]))

    # THEN both are in the version, and materialize refuses before downloading, naming the key
    assert result["object_count"] == 2
    with pytest.raises(DatasetVersionError, match=r"datasets/churn/a/b needs .* to be a directory"):
        datasets.materialize(result["manifest"], tmp_path, s3=s3)
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- retries and failures


def test_a_retried_worker_writes_identical_bytes(s3: Any) -> None:
    seed(s3)
    report = write_report(s3, [listed_rows(s3)])
    plan = inventory.plan(s3, report_uri=report, dataset=DATASET, bucket=BUCKET, now=NOW)
    item = json.loads(s3.get_object(Bucket=BUCKET, Key=plan["files_key"])["Body"].read())[0]
    shard_prefix = plan["index_key"].removesuffix(".json") + "/"

    def written() -> dict[str, bytes]:
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=shard_prefix)["Contents"]
        return {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}

    first = inventory.shard_file(s3, plan, chunk_entries=3, **item)
    before = written()
    again = inventory.shard_file(s3, plan, chunk_entries=3, **item)

    assert first == again
    assert written() == before
    assert sum(1 for k in before if k.endswith(".jsonl.gz")) == 4
    assert any(k.endswith("part-00000-00003.jsonl.gz") for k in before)


def test_finalize_names_a_missing_part_summary(s3: Any) -> None:
    seed(s3)
    report = write_report(s3, split(listed_rows(s3), 2))
    plan = inventory.plan(s3, report_uri=report, dataset=DATASET, bucket=BUCKET, now=NOW)
    item = json.loads(s3.get_object(Bucket=BUCKET, Key=plan["files_key"])["Body"].read())[0]
    inventory.shard_file(s3, plan, **item)

    with pytest.raises(InventoryError, match=r"part summary .*part-00001.json of inventory file 1 is missing"):
        inventory.finalize(s3, plan)
    assert datasets.latest_manifest_uri(BUCKET, DATASET, s3=s3) is None


def test_an_empty_dataset_fails_unless_allowed(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="datasets/other/x.csv", Body=b"x")
    report = write_report(s3, [listed_rows(s3)])
    with pytest.raises(InventoryError, match="holds no objects in the inventory report"):
        snapshot(s3, report)
    plan = inventory.plan(s3, report_uri=report, dataset=DATASET, bucket=BUCKET, now=NOW, allow_empty=True)
    inventory.shard_file(s3, plan, file_index=0, key=f"{PREFIX}data/2025-01-31T00-00Z-0000.csv.gz", bucket=BUCKET)
    assert inventory.finalize(s3, plan)["object_count"] == 0


def test_a_file_that_does_not_match_its_md5_or_schema_fails_clearly(s3: Any) -> None:
    seed(s3)
    report = write_report(s3, [listed_rows(s3)])
    plan = inventory.plan(s3, report_uri=report, dataset=DATASET, bucket=BUCKET, now=NOW)
    item = json.loads(s3.get_object(Bucket=BUCKET, Key=plan["files_key"])["Body"].read())[0]
    with pytest.raises(InventoryError, match="its report recorded 0000"):
        inventory.shard_file(s3, plan, **{**item, "md5": "0" * 32})
    s3.put_object(Bucket=BUCKET, Key=item["key"], Body=csv_gz([listed_rows(s3)[0]], "Bucket, Key"))
    with pytest.raises(InventoryError, match="line 1 has 2 values, its report's fileSchema 8"):
        inventory.shard_file(s3, plan, **{**item, "md5": None})
    s3.put_object(Bucket=BUCKET, Key=item["key"], Body=b"not gzip")
    with pytest.raises(InventoryError, match="not a readable gzipped CSV inventory file"):
        inventory.shard_file(s3, plan, **{**item, "md5": None})


# --------------------------------------------------------------------------- reading v2 (and v1 still)


def test_v2_entries_come_in_global_key_order_from_many_unordered_shards(s3: Any) -> None:
    for i in range(40):
        s3.put_object(Bucket=BUCKET, Key=f"datasets/{DATASET}/{random.Random(i).random():.6f}", Body=str(i).encode())
    result = snapshot(s3, write_report(s3, split(listed_rows(s3), 3)), chunk_entries=4)
    keys = [e.key for e in datasets.iter_entries(result["manifest"], s3=s3)]
    assert keys == sorted(keys)
    assert len(keys) == 40
    assert result["shards"] == 12


def _tamper(s3: Any, key: str, edit: Any) -> None:
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=key, Body=edit(body))


def test_an_edited_v2_version_is_refused_naming_what_is_wrong(s3: Any) -> None:
    seed(s3)
    result = snapshot(s3, write_report(s3, [listed_rows(s3)]), chunk_entries=4)
    index_key = result["manifest"].split("/", 3)[3]
    shard_key = index_key.removesuffix(".json") + "/part-00000-00001.jsonl.gz"

    # a shard whose lines were reordered: out of order, named
    lines = gzip.decompress(s3.get_object(Bucket=BUCKET, Key=shard_key)["Body"].read()).splitlines(keepends=True)
    _tamper(s3, shard_key, lambda _: gzip.compress(b"".join(reversed(lines))))
    with pytest.raises(DatasetVersionError, match=r"part-00000-00001\.jsonl\.gz .* is out of order"):
        datasets.load_manifest(result["manifest"], s3=s3)
    # a shard edited in place: digest mismatch, named
    _tamper(s3, shard_key, lambda _: gzip.compress(b"".join(lines).replace(b'"size":', b'"size":1')))
    with pytest.raises(DatasetVersionError, match=r"part-00000-00001\.jsonl\.gz .* is corrupt"):
        datasets.load_manifest(result["manifest"], s3=s3)
    _tamper(s3, shard_key, lambda _: gzip.compress(b"".join(lines)))
    # an index whose set digest sum was edited: its sha256 no longer matches it
    document = json.loads(s3.get_object(Bucket=BUCKET, Key=index_key)["Body"].read())
    original = document["digest"]["sum"]
    document["digest"]["sum"] = ("1" if original[0] != "1" else "2") + original[1:]
    s3.put_object(Bucket=BUCKET, Key=index_key, Body=json.dumps(document).encode())
    with pytest.raises(DatasetVersionError, match="is not the digest of its set digest sum"):
        datasets.load_manifest(result["manifest"], s3=s3)
    # ... and with the sha256 made consistent, the shards no longer add up to it
    document["sha256"] = SetDigest.from_hex(DATASET, document["digest"]["sum"]).hexdigest()
    s3.put_object(Bucket=BUCKET, Key=index_key, Body=json.dumps(document).encode())
    with pytest.raises(DatasetVersionError, match=r"its set digest .* does not match its shards"):
        datasets.load_manifest(result["manifest"], s3=s3)


def test_v1_manifests_single_and_sharded_still_load(s3: Any, tmp_path: Path) -> None:
    files = seed(s3)
    single = datasets.snapshot(BUCKET, DATASET, s3=s3, now=NOW, format="single")
    sharded = datasets.write_manifest(single, s3=s3, format="sharded", shard_entries=3)
    for uri in (single.uri, sharded.uri):
        assert uri is not None
        assert datasets.load_manifest(uri, s3=s3).entries == single.entries
        assert datasets.load_manifest(uri, s3=s3).sha256 == single.sha256
    datasets.materialize(sharded.uri or "", tmp_path, s3=s3)
    assert tree(tmp_path) == files


def test_an_object_written_after_the_report_waits_for_the_next_and_the_version_says_its_time(
    s3: Any, tmp_path: Path
) -> None:
    # GIVEN a report of the dataset, then an object written after it, then the next day's report
    files = seed(s3)
    first = write_report(s3, [listed_rows(s3)], folder="2025-01-30T00-00Z", created=CREATED - timedelta(days=1))
    s3.put_object(Bucket=BUCKET, Key=f"datasets/{DATASET}/late.csv", Body=b"id,label\n99,1\n")
    second = write_report(s3, [listed_rows(s3)], folder="2025-01-31T00-00Z")
    # WHEN each is snapshotted
    before, after = snapshot(s3, first), snapshot(s3, second)
    # THEN the first version holds what its report listed, and says the time it covers
    assert before["as_of"] == "2025-01-30T00:00:00Z"
    assert before["object_count"] == len(files)
    datasets.materialize(before["manifest"], tmp_path / "before", s3=s3)
    assert tree(tmp_path / "before") == files
    # AND the next holds the late object too, as a new version
    assert after["as_of"] == "2025-01-31T00:00:00Z"
    assert after["object_count"] == len(files) + 1
    assert after["digest"] != before["digest"]
    datasets.materialize(after["manifest"], tmp_path / "after", s3=s3)
    assert tree(tmp_path / "after") == {**files, "late.csv": b"id,label\n99,1\n"}
