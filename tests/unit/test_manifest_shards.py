"""Sharded dataset manifests against an in-process S3 (moto): write, read, verify, diff, CLI."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdk_mlops import cli, datasets, manifest_shards
from cdk_mlops.datasets import DatasetVersionError, Manifest, ManifestEntry
from tests.conftest import TEST_REGION

REGION = TEST_REGION
BUCKET = "ml-data-store"
T0 = datetime(2025, 1, 31, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def s3(aws_env: None) -> Iterator[Any]:
    """A moto S3 with one versioned bucket."""
    with mock_aws():
        client: Any = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


@pytest.fixture
def small_shards(monkeypatch: pytest.MonkeyPatch) -> int:
    """Shards of 3 entries, so a handful of objects makes several shards."""
    monkeypatch.setattr(manifest_shards, "SHARD_ENTRIES", 3)
    return 3


def seed(s3: Any, dataset: str = "churn", count: int = 8) -> dict[str, bytes]:
    """`count` objects with distinct bytes, some nested and one with a non-ASCII key; relative key → bytes."""
    files = {f"part={i % 3}/{i:03d}.csv": f"id,label\n{i},{i % 2}\n".encode() * (i + 1) for i in range(count - 1)}
    files["données é.csv"] = b"unicode\n"
    for relative, body in files.items():
        s3.put_object(Bucket=BUCKET, Key=f"datasets/{dataset}/{relative}", Body=body)
    return files


def stored(s3: Any, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def key_of(uri: str | None) -> str:
    assert uri is not None
    return uri.removeprefix(f"s3://{BUCKET}/")


# --------------------------------------------------------------------------- the digest


def test_the_streaming_digest_equals_manifest_digest_for_any_entries() -> None:
    # GIVEN entries with awkward keys (quotes, backslashes, control characters, non-ASCII, astral
    # characters needing surrogate escapes) and sizes, for several dataset names
    rng = random.Random(11)
    alphabet = ['"', "\\", "\n", "\x01", "é", "字", "😀", "/", "a", "Z", "0", " "]
    for dataset in ("churn", "d.v-2_x"):
        keys = {
            f"datasets/{dataset}/" + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
            for _ in range(300)
        }
        entries = [ManifestEntry(k, f"v{i}", f"{i:032x}", rng.randint(0, 10**12)) for i, k in enumerate(keys)]

        # WHEN the rows are fed one at a time in key order
        digest = manifest_shards.ContentDigest(dataset)
        for entry in sorted(entries, key=lambda e: e.key):
            digest.add(entry.key, entry.etag, entry.size)

        # THEN the value is the one the single format records
        assert digest.hexdigest() == datasets.manifest_digest(dataset, entries)
    assert manifest_shards.ContentDigest("empty").hexdigest() == datasets.manifest_digest("empty", [])


def test_the_streaming_digest_refuses_rows_out_of_order() -> None:
    digest = manifest_shards.ContentDigest("d")
    digest.add("datasets/d/b", "e", 1)
    with pytest.raises(ValueError, match="comes after 'datasets/d/b'; entries must be in ascending key order"):
        digest.add("datasets/d/a", "e", 1)
    with pytest.raises(ValueError, match="comes after"):
        digest.add("datasets/d/b", "e", 1)  # a repeated key would be hashed twice


def test_the_same_data_has_the_same_digest_and_key_in_either_format(s3: Any, small_shards: int) -> None:
    # GIVEN one dataset version
    seed(s3)
    manifest = datasets.build_manifest(BUCKET, "churn", s3=s3, now=T0)

    # WHEN it is written in both formats
    single = datasets.write_manifest(manifest, s3=s3, format="single")
    index_doc = json.loads(stored(s3, key_of(single.uri)))
    sharded = datasets.write_manifest(manifest, s3=s3, format="sharded")

    # THEN both are stored at the same key with the same digest, and read back equal
    assert single.uri == sharded.uri
    assert (single.shards, sharded.shards) == (0, 3)
    assert index_doc["schema"] == datasets.MANIFEST_SCHEMA
    loaded = datasets.load_manifest(sharded.uri or "", s3=s3)
    assert json.loads(stored(s3, key_of(sharded.uri)))["sha256"] == index_doc["sha256"] == loaded.sha256
    assert loaded == sharded
    assert loaded.entries == manifest.entries


# --------------------------------------------------------------------------- writing


def test_a_sharded_manifest_is_an_index_over_gzipped_json_lines_shards(s3: Any, small_shards: int) -> None:
    # GIVEN 8 objects and shards of 3
    seed(s3)

    # WHEN the dataset is snapshotted sharded
    manifest = datasets.snapshot(BUCKET, "churn", s3=s3, now=T0, format="sharded")

    # THEN the index sits at the manifest key and lists three shards next to it
    key = key_of(manifest.uri)
    assert key == datasets.manifest_key(manifest)
    index = json.loads(stored(s3, key))
    assert index["schema"] == "cdk-mlops.dataset-manifest-index.v1"
    assert (index["object_count"], index["total_bytes"]) == (8, manifest.total_bytes)
    assert [s["name"] for s in index["shards"]] == ["part-00000.jsonl.gz", "part-00001.jsonl.gz", "part-00002.jsonl.gz"]
    assert [s["object_count"] for s in index["shards"]] == [3, 3, 2]
    assert "entries" not in index
    assert "excluded" not in index
    # AND each shard is gzipped JSON Lines of the single format's entry fields, in key order overall
    lines: list[dict[str, Any]] = []
    for shard in index["shards"]:
        text = gzip.decompress(stored(s3, key.removesuffix(".json") + "/" + shard["name"]))
        assert hashlib.sha256(text).hexdigest() == shard["sha256"]
        rows = [json.loads(line) for line in text.decode("utf-8").splitlines()]
        assert sum(r["size"] for r in rows) == shard["total_bytes"]
        lines += rows
    assert lines == [
        {"key": e.key, "version_id": e.version_id, "etag": e.etag, "size": e.size} for e in manifest.entries
    ]
    assert [row["key"] for row in lines] == sorted(row["key"] for row in lines)


def test_auto_keeps_the_single_document_up_to_the_threshold_and_shards_above(
    s3: Any, small_shards: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(s3, count=5)
    manifest = datasets.build_manifest(BUCKET, "churn", s3=s3, now=T0)
    monkeypatch.setattr(datasets, "SINGLE_MANIFEST_MAX_ENTRIES", 5)
    at_threshold = datasets.write_manifest(manifest, s3=s3)
    # The single document at or below the threshold is byte for byte what to_json() always wrote.
    assert at_threshold.shards == 0
    assert stored(s3, key_of(at_threshold.uri)) == manifest.to_json().encode("utf-8")
    monkeypatch.setattr(datasets, "SINGLE_MANIFEST_MAX_ENTRIES", 4)
    above = datasets.write_manifest(manifest, s3=s3)
    assert above.shards == 2
    assert json.loads(stored(s3, key_of(above.uri)))["schema"] == manifest_shards.MANIFEST_INDEX_SCHEMA
    # AND an explicit format wins over the count
    assert datasets.write_manifest(manifest, s3=s3, format="single").shards == 0


def test_an_unknown_format_or_shard_size_is_refused_before_anything_is_written(s3: Any) -> None:
    seed(s3, count=2)
    manifest = datasets.build_manifest(BUCKET, "churn", s3=s3, now=T0)
    with pytest.raises(
        ValueError, match=r"format='parquet' is not a manifest format; use one of auto, single, sharded"
    ):
        datasets.write_manifest(manifest, s3=s3, format="parquet")
    with pytest.raises(ValueError, match=r"shard_entries=0 must be a whole number of 1 or more \(default 100000\)"):
        datasets.write_manifest(manifest, s3=s3, format="sharded", shard_entries=0)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="manifests/")


def test_a_manifest_whose_digest_does_not_match_its_entries_is_not_written_sharded(s3: Any) -> None:
    seed(s3, count=2)
    manifest = datasets.build_manifest(BUCKET, "churn", s3=s3, now=T0)
    wrong = Manifest(BUCKET, "churn", manifest.created_at, manifest.entries, "0" * 64)
    with pytest.raises(DatasetVersionError, match=r"have digest \w{64}, not its sha256 0{64}; build manifests with"):
        datasets.write_manifest(wrong, s3=s3, format="sharded")
    # the index, the only object a reader looks for, was not written
    assert datasets.latest_manifest_uri(BUCKET, "churn", s3=s3) is None


def test_excluded_objects_survive_in_the_index(s3: Any, small_shards: int) -> None:
    seed(s3, count=4)
    s3.put_object(Bucket=BUCKET, Key="datasets/churn/../escape.csv", Body=b"x")
    manifest = datasets.snapshot(BUCKET, "churn", s3=s3, now=T0, format="sharded")
    assert [x.key for x in manifest.excluded] == ["datasets/churn/../escape.csv"]
    index = json.loads(stored(s3, key_of(manifest.uri)))
    assert index["excluded"] == [
        {
            "key": "datasets/churn/../escape.csv",
            "version_id": manifest.excluded[0].version_id,
            "reason": manifest.excluded[0].reason,
        }
    ]
    assert datasets.load_manifest(manifest.uri or "", s3=s3).excluded == manifest.excluded


# --------------------------------------------------------------------------- reading and restoring


def test_a_sharded_snapshot_materializes_byte_for_byte_after_the_data_changed(
    s3: Any, small_shards: int, tmp_path: Path
) -> None:
    # GIVEN a sharded snapshot, after which every object is overwritten and one deleted
    files = seed(s3)
    manifest = datasets.snapshot(BUCKET, "churn", s3=s3, now=T0, format="sharded")
    for relative in files:
        s3.put_object(Bucket=BUCKET, Key=f"datasets/churn/{relative}", Body=b"changed")
    s3.delete_object(Bucket=BUCKET, Key="datasets/churn/part=0/000.csv")

    # WHEN it is materialized from its URI
    written = datasets.materialize(manifest.uri or "", tmp_path / "out", s3=s3)

    # THEN exactly the snapshotted bytes come back
    restored = {p.relative_to(tmp_path / "out").as_posix(): p.read_bytes() for p in written}
    assert restored == files
    assert sorted(
        p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file()
    ) == sorted(files)


def test_iter_entries_streams_either_format_in_key_order(s3: Any, small_shards: int) -> None:
    seed(s3)
    manifest = datasets.build_manifest(BUCKET, "churn", s3=s3, now=T0)
    for format_ in ("single", "sharded"):
        uri = datasets.write_manifest(manifest, s3=s3, format=format_).uri or ""
        assert list(datasets.iter_entries(uri, s3=s3)) == list(manifest.entries)


def test_iter_entries_reads_one_shard_at_a_time(s3: Any, small_shards: int) -> None:
    # GIVEN a sharded manifest whose later shards are deleted
    seed(s3)
    manifest = datasets.snapshot(BUCKET, "churn", s3=s3, now=T0, format="sharded")
    prefix = key_of(manifest.uri).removesuffix(".json") + "/"
    s3.delete_object(Bucket=BUCKET, Key=prefix + "part-00002.jsonl.gz")

    # WHEN it is iterated THEN the first shards' entries come before the missing shard is noticed
    stream = datasets.iter_entries(manifest.uri or "", s3=s3)
    first = [next(stream) for _ in range(6)]
    assert first == list(manifest.entries[:6])
    with pytest.raises(DatasetVersionError, match=r"shard s3://.*/part-00002.jsonl.gz of s3://.* is missing; restore"):
        next(stream)


def test_a_local_copy_of_a_sharded_manifest_is_readable(s3: Any, small_shards: int, tmp_path: Path) -> None:
    # GIVEN the index and its shard directory copied to a local folder
    seed(s3)
    manifest = datasets.snapshot(BUCKET, "churn", s3=s3, now=T0, format="sharded")
    key = key_of(manifest.uri)
    for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=key.removesuffix(".json"))["Contents"]:
        target = tmp_path / item["Key"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(stored(s3, item["Key"]))

    # WHEN / THEN it loads without S3 and equals the stored one
    local = datasets.load_manifest(tmp_path / key)
    assert (local.entries, local.sha256, local.shards, local.uri) == (
        manifest.entries,
        manifest.sha256,
        3,
        str(tmp_path / key),
    )


# --------------------------------------------------------------------------- what is refused


def shard_key(manifest: Manifest, number: int) -> str:
    return key_of(manifest.uri).removesuffix(".json") + f"/part-{number:05d}.jsonl.gz"


def test_a_missing_shard_is_named_with_what_to_do(s3: Any, small_shards: int, tmp_path: Path) -> None:
    seed(s3)
    manifest = datasets.snapshot(BUCKET, "churn", s3=s3, now=T0, format="sharded")
    s3.delete_object(Bucket=BUCKET, Key=shard_key(manifest, 1))
    expected = (
        f"shard s3://{BUCKET}/{shard_key(manifest, 1)} of {manifest.uri} is missing; restore it (the bucket keeps "
        "old versions of deleted objects), or take a new snapshot. A local index needs its shard directory next to it"
    )
    with pytest.raises(DatasetVersionError) as caught:
        datasets.load_manifest(manifest.uri or "", s3=s3)
    assert str(caught.value) == expected
    with pytest.raises(DatasetVersionError, match="is missing"):
        datasets.materialize(manifest.uri or "", tmp_path, s3=s3)
    assert not any(tmp_path.iterdir())  # nothing was downloaded from a manifest that cannot be verified


def rewrite_shard(s3: Any, key: str, edit: Any) -> None:
    """Replace a shard with `edit(lines)`, validly gzipped."""
    lines = gzip.decompress(stored(s3, key)).decode("utf-8").splitlines()
    s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress("".join(f"{line}\n" for line in edit(lines)).encode()))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # a changed version id: the content digest ignores it, the shard digest does not
        (
            lambda lines: [lines[0].replace('"version_id":"', '"version_id":"x'), *lines[1:]],
            r"shard part-00001.jsonl.gz of s3://\S+ is corrupt: its sha256 \w+ does not match the index's \w+; "
            "manifests must not be edited, take a new snapshot",
        ),
        (lambda lines: lines[:-1], r"part-00001.jsonl.gz of s3://\S+ is corrupt"),
    ],
)
def test_a_shard_that_does_not_match_its_index_is_refused(s3: Any, small_shards: int, edit: Any, message: str) -> None:
    seed(s3)
    manifest = datasets.snapshot(BUCKET, "churn", s3=s3, now=T0, format="sharded")
    rewrite_shard(s3, shard_key(manifest, 1), edit)
    with pytest.raises(DatasetVersionError, match=message):
        datasets.load_manifest(manifest.uri or "", s3=s3)


def edit_index(s3: Any, manifest: Manifest, change: Any) -> None:
    key = key_of(manifest.uri)
    document = json.loads(stored(s3, key))
    change(document)
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(document).encode())


def test_a_shard_whose_count_differs_from_the_index_is_refused_even_with_a_matching_digest(
    s3: Any, small_shards: int
) -> None:
    # GIVEN an index whose shard record was edited to a count that still adds up, digest untouched
    seed(s3)
    manifest = datasets.snapshot(BUCKET, "churn", s3=s3, now=T0, format="sharded")

    def shift(document: dict[str, Any]) -> None:
        document["shards"][0]["object_count"] -= 1
        document["shards"][1]["object_count"] += 1

    edit_index(s3, manifest, shift)
    with pytest.raises(
        DatasetVersionError,
        match=r"shard part-00000.jsonl.gz of \S+ holds 3 objects of \d+ bytes, the index recorded 2 of",
    ):
        datasets.load_manifest(manifest.uri or "", s3=s3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(sha256="f" * 64), r"is corrupt: its sha256 f{64} does not match its shards \(\w{64}\)"),
        (lambda d: d.update(object_count=99), r"its shards hold 8 objects of \d+ bytes, the index says 99 of"),
        (
            lambda d: d["shards"][0].update(name="../../x.jsonl.gz"),
            r"lists a shard '../../x.jsonl.gz' .*the index was edited",
        ),
        (lambda d: d.pop("shards"), r"is not a valid manifest index \(missing field 'shards'\)"),
        (lambda d: d.update(dataset="a/b"), r"is not a valid manifest index \(dataset name 'a/b' contains '/'"),
        (lambda d: d["shards"].reverse(), r"is out of order: key .* comes after"),
    ],
)
def test_an_edited_index_is_refused(s3: Any, small_shards: int, change: Any, message: str) -> None:
    seed(s3)
    manifest = datasets.snapshot(BUCKET, "churn", s3=s3, now=T0, format="sharded")
    edit_index(s3, manifest, change)
    with pytest.raises(DatasetVersionError, match=message):
        datasets.load_manifest(manifest.uri or "", s3=s3)


def test_an_index_of_an_unknown_schema_says_to_upgrade(s3: Any, small_shards: int) -> None:
    seed(s3)
    manifest = datasets.snapshot(BUCKET, "churn", s3=s3, now=T0, format="sharded")
    edit_index(s3, manifest, lambda d: d.update(schema="cdk-mlops.dataset-manifest-index.v3"))
    with pytest.raises(DatasetVersionError) as caught:
        datasets.load_manifest(manifest.uri or "", s3=s3)
    assert str(caught.value) == (
        f"{manifest.uri} has schema 'cdk-mlops.dataset-manifest-index.v3', which this version of cdk-mlops cannot "
        "read (it reads 'cdk-mlops.dataset-manifest.v1' manifests and 'cdk-mlops.dataset-manifest-index.v1' "
        "and 'cdk-mlops.dataset-manifest-index.v2' indexes); if a newer cdk-mlops wrote it, upgrade cdk-mlops, "
        "else pass the URI printed by 'cdk-mlops dataset snapshot'"
    )
    # a document of some other schema keeps the single format's message
    s3.put_object(Bucket=BUCKET, Key="manifests/churn/other.json", Body=b'{"schema": "other"}')
    with pytest.raises(
        DatasetVersionError, match=r"is not a dataset manifest \(schema 'cdk-mlops.dataset-manifest.v1'\)"
    ):
        datasets.load_manifest(f"s3://{BUCKET}/manifests/churn/other.json", s3=s3)


# --------------------------------------------------------------------------- diff and the newest manifest


def test_diff_compares_a_single_manifest_with_a_sharded_one(s3: Any, small_shards: int) -> None:
    # GIVEN an old single-format snapshot and a newer sharded one of changed data
    seed(s3)
    old = datasets.snapshot(BUCKET, "churn", s3=s3, now=T0, format="single")
    s3.put_object(Bucket=BUCKET, Key="datasets/churn/part=1/001.csv", Body=b"changed")
    s3.delete_object(Bucket=BUCKET, Key="datasets/churn/part=0/003.csv")
    s3.put_object(Bucket=BUCKET, Key="datasets/churn/zz/new.csv", Body=b"new")
    s3.put_object(Bucket=BUCKET, Key="datasets/churn/part=2/002.csv", Body=b"id,label\n2,0\n" * 3)  # same bytes
    new = datasets.snapshot(BUCKET, "churn", s3=s3, now=T0 + timedelta(hours=1), format="sharded")

    # WHEN they are compared both ways
    forward = datasets.diff_uris(old.uri or "", new.uri or "", s3=s3)
    backward = datasets.diff_uris(new.uri or "", old.uri or "", s3=s3)

    # THEN the answer is what diff() gives for the two loaded manifests
    assert forward.to_dict() == {
        "identical": False,
        "added": ["zz/new.csv"],
        "removed": ["part=0/003.csv"],
        "changed": ["part=1/001.csv"],
    }
    assert forward == datasets.diff(old, new)
    assert (backward.added, backward.removed, backward.changed) == (forward.removed, forward.added, forward.changed)
    # AND the same data in the two formats is identical
    same = datasets.write_manifest(datasets.load_manifest(new.uri or "", s3=s3), s3=s3, format="single")
    s3_key = key_of(same.uri)
    assert json.loads(stored(s3, s3_key))["schema"] == datasets.MANIFEST_SCHEMA
    assert datasets.diff_uris(new.uri or "", new.uri or "", s3=s3).identical


def test_the_merge_diff_agrees_with_the_dictionary_diff_on_random_manifests() -> None:
    rng = random.Random(5)
    for _ in range(50):
        a = {f"k{rng.randint(0, 40):02d}": (rng.choice("ab"), rng.randint(0, 2)) for _ in range(rng.randint(0, 30))}
        b = {f"k{rng.randint(0, 40):02d}": (rng.choice("ab"), rng.randint(0, 2)) for _ in range(rng.randint(0, 30))}
        added, removed, changed = manifest_shards.diff_sorted(
            ((k, *a[k]) for k in sorted(a)), ((k, *b[k]) for k in sorted(b))
        )
        assert added == sorted(b.keys() - a.keys())
        assert removed == sorted(a.keys() - b.keys())
        assert changed == sorted(k for k in a.keys() & b.keys() if a[k] != b[k])


def test_the_newest_manifest_is_a_sharded_index_never_one_of_its_shards(s3: Any, small_shards: int) -> None:
    # GIVEN an older single-format manifest and a newer sharded one (whose shards sort after both indexes)
    seed(s3)
    datasets.snapshot(BUCKET, "churn", s3=s3, now=T0, format="single")
    newest = datasets.snapshot(BUCKET, "churn", s3=s3, now=T0 + timedelta(days=1), format="sharded")
    # a stray .json below the shard prefix must not count either
    s3.put_object(Bucket=BUCKET, Key=key_of(newest.uri).removesuffix(".json") + "/zzzz.json", Body=b"{}")

    # WHEN / THEN
    assert datasets.latest_manifest_uri(BUCKET, "churn", s3=s3) == newest.uri
    # AND with only shards left (an index deleted), there is no manifest
    s3.delete_object(Bucket=BUCKET, Key=key_of(newest.uri))
    latest = datasets.latest_manifest_uri(BUCKET, "churn", s3=s3)
    assert latest == f"s3://{BUCKET}/{datasets.manifest_key(datasets.load_manifest(latest or '', s3=s3))}"
    assert latest != newest.uri


# --------------------------------------------------------------------------- command line


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, json.loads(captured.out) if captured.out.strip() else None, captured.err


def test_the_dataset_commands_work_on_sharded_manifests(
    s3: Any, small_shards: int, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # GIVEN a sharded snapshot from the command line, then a change and a default (single) snapshot
    files = seed(s3)
    status, first, err = run(
        capsys, "dataset", "snapshot", "--bucket", BUCKET, "--dataset", "churn", "--format", "sharded"
    )
    assert (status, err) == (0, "")
    s3.put_object(Bucket=BUCKET, Key="datasets/churn/later.csv", Body=b"later")
    _, second, _ = run(capsys, "dataset", "snapshot", "--bucket", BUCKET, "--dataset", "churn")

    # WHEN the sharded one is materialized and the two are compared
    status, restored, _ = run(capsys, "dataset", "materialize", first["uri"], str(tmp_path / "v1"))
    _, changes, _ = run(capsys, "dataset", "diff", first["uri"], second["uri"])

    # THEN
    assert (first["format"], first["shards"], first["objects"]) == ("sharded", 3, len(files))
    assert (second["format"], second["shards"]) == ("single", 0)
    assert status == 0
    assert sorted(restored["files"]) == sorted(files)
    assert {name: (tmp_path / "v1" / name).read_bytes() for name in files} == files
    assert (changes["added"], changes["removed"], changes["changed"]) == (["later.csv"], [], [])


def test_the_command_line_reports_a_missing_shard_as_an_error(
    s3: Any, small_shards: int, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    seed(s3)
    _, out, _ = run(capsys, "dataset", "snapshot", "--bucket", BUCKET, "--dataset", "churn", "--format", "sharded")
    s3.delete_object(Bucket=BUCKET, Key=key_of(out["uri"]).removesuffix(".json") + "/part-00000.jsonl.gz")
    status, printed, err = run(capsys, "dataset", "materialize", out["uri"], str(tmp_path))
    assert (status, printed) == (2, None)
    assert err.startswith("cdk-mlops: error: shard s3://")
    assert "/part-00000.jsonl.gz of s3://" in err
    assert "is missing" in err


def test_the_command_line_refuses_an_unknown_format(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "dataset", "snapshot", "--bucket", BUCKET, "--dataset", "churn", "--format", "csv")
    assert status == 2
    assert "invalid choice: 'csv'" in err


def test_importing_datasets_does_not_import_the_sharded_format() -> None:
    # datasets.py ships alone in Lambda assets built before manifest_shards.py existed.
    import subprocess
    import sys

    code = (
        "import sys, cdk_mlops.datasets as d; before = 'cdk_mlops.manifest_shards' in sys.modules; "
        "d.SHARD_ENTRIES; print(before, 'cdk_mlops.manifest_shards' in sys.modules)"
    )
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=repo).stdout
    assert out.strip() == "False True"
