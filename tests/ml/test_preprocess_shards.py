"""preprocess.py on sharded manifests: an InventorySnapshot version (v2) and a sharded v1 manifest.

The data is in moto's S3 as the pipeline finds it; the index is downloaded into the manifest
input folder as the ProcessingInput does, and the script reads the shards and the objects from S3.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from cdk_mlops import datasets, manifest_shards
from cdk_mlops.ml import preprocess
from tests.ml.test_scripts import LABEL, run_preprocess
from tests.unit.test_inventory import BUCKET, DATASET, listed_rows, snapshot, split, write_report


def run_on(s3: Any, uri: str, tmp_path: Path, *extra: str) -> int:
    """Preprocess as the pipeline runs it: the index in the manifest input folder, the rest from S3."""
    bucket, key = datasets.parse_s3_uri(uri)
    manifest_dir = tmp_path / "input" / "manifest"
    manifest_dir.mkdir(parents=True, exist_ok=True)
    (manifest_dir / key.rsplit("/", 1)[-1]).write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return run_preprocess(
        "--manifest-dir", manifest_dir, "--output-dir", tmp_path / "out", "--manifest-uri", uri,
        "--label-column", LABEL, *extra, tmp=tmp_path,
    )  # fmt: skip


def report(tmp_path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((tmp_path / "out" / "report" / "preprocess_report.json").read_text())
    return loaded


def message(tmp_path: Path) -> str:
    return (tmp_path / "message").read_text()


def test_an_inventory_version_is_preprocessed_from_its_shards(s3: Any, tmp_path: Path) -> None:
    # GIVEN a v2 version taken from an inventory in two files, in shards of 2 rows
    version = snapshot(s3, write_report(s3, split(listed_rows(s3), 2)), chunk_entries=2)
    # WHEN preprocess runs on it, started for that digest
    code = run_on(s3, version["manifest"], tmp_path, "--manifest-sha256", version["digest"])
    # THEN every row of the five files is read
    assert code == 0, message(tmp_path)
    assert report(tmp_path)["source"]["objects"] == 5
    assert report(tmp_path)["rows"] == 569
    assert report(tmp_path)["source"]["sha256"] == version["digest"]


def test_a_sharded_v1_manifest_is_preprocessed_from_its_shards(s3: Any, tmp_path: Path) -> None:
    manifest = datasets.snapshot(BUCKET, DATASET, s3=s3, format="sharded")
    assert manifest.uri is not None
    code = run_on(s3, manifest.uri, tmp_path, "--manifest-sha256", manifest.sha256)
    assert code == 0, message(tmp_path)
    assert report(tmp_path)["rows"] == 569


def test_the_same_data_gives_the_same_split_from_either_format(s3: Any, tmp_path: Path) -> None:
    version = snapshot(s3, write_report(s3, split(listed_rows(s3), 3)), chunk_entries=2)
    single = datasets.snapshot(BUCKET, DATASET, s3=s3, format="single")
    assert single.uri is not None
    assert run_on(s3, version["manifest"], tmp_path / "v2") == 0
    assert run_on(s3, single.uri, tmp_path / "v1") == 0
    for split_file in ("train/train.csv", "validation/validation.csv", "test/test.csv"):
        assert (tmp_path / "v2" / "out" / split_file).read_bytes() == (
            tmp_path / "v1" / "out" / split_file
        ).read_bytes()


def test_a_shard_edited_after_the_snapshot_fails_the_run_naming_it(s3: Any, tmp_path: Path) -> None:
    version = snapshot(s3, write_report(s3, [listed_rows(s3)]))
    bucket, key = datasets.parse_s3_uri(version["manifest"])
    shard = f"{key.removesuffix('.json')}/part-00000-00000.jsonl.gz"
    lines = gzip.decompress(s3.get_object(Bucket=bucket, Key=shard)["Body"].read())
    s3.put_object(Bucket=bucket, Key=shard, Body=gzip.compress(lines.replace(b'"size":', b'"size":1', 1)))
    assert run_on(s3, version["manifest"], tmp_path) == 1
    assert "shard part-00000-00000.jsonl.gz of s3://" in message(tmp_path)
    assert "does not match its index" in message(tmp_path)


def test_a_version_other_than_the_one_started_for_fails_the_run(s3: Any, tmp_path: Path) -> None:
    version = snapshot(s3, write_report(s3, [listed_rows(s3)]))
    assert run_on(s3, version["manifest"], tmp_path, "--manifest-sha256", "0" * 64) == 1
    assert f"manifest sha256 is '{version['digest']}' but the execution was started for" in message(tmp_path)


def test_the_scripts_copy_of_the_set_digest_is_the_librarys() -> None:
    # The script ships without the package: its constants and digest must equal the library's.
    assert preprocess.INDEX_SCHEMA_V1 == manifest_shards.MANIFEST_INDEX_SCHEMA
    assert preprocess.INDEX_SCHEMA_V2 == manifest_shards.MANIFEST_INDEX_SCHEMA_V2
    entries: list[dict[str, Any]] = [
        {"key": "datasets/d/b.csv", "etag": "bb", "size": 2},
        {"key": 'datasets/d/données "é".csv', "etag": "aa", "size": 10**12},
    ]
    expected = manifest_shards.SetDigest("d")
    for entry in entries:
        expected.add(entry["key"], entry["etag"], entry["size"])
    assert preprocess.set_digest("d", entries) == expected.hexdigest()
    assert preprocess.set_digest("d", entries[::-1]) == expected.hexdigest()
    assert preprocess.set_digest("e", entries) != expected.hexdigest()
