"""preprocess.py on several instances: each takes its share of a version and writes its own files.

Each instance is run as SageMaker Processing runs it: the index in the manifest input folder, a
``resourceconfig.json`` naming the job's hosts and this one, the shards and objects from S3.
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from cdk_mlops import datasets
from cdk_mlops.ml import preprocess
from tests.ml.test_preprocess_shards import message, run_on
from tests.ml.test_scripts import read_rows
from tests.unit.test_inventory import BUCKET, DATASET, listed_rows, snapshot, split, write_report

SPLITS = ("train", "validation", "test")


def hosts(count: int) -> list[str]:
    return [f"algo-{number}" for number in range(1, count + 1)]


def run_hosts(s3: Any, uri: str, tmp_path: Path, count: int, *extra: str) -> dict[str, int]:
    """Each host's exit code; host ``h`` works in ``tmp_path/h`` with its own resource config."""
    codes = {}
    for host in hosts(count):
        config = tmp_path / host / "resourceconfig.json"
        config.parent.mkdir(parents=True)
        config.write_text(json.dumps({"current_host": host, "hosts": hosts(count)}))
        codes[host] = run_on(s3, uri, tmp_path / host, "--resource-config", str(config), *extra)
    return codes


def rows_of(folder: Path) -> list[tuple[str, ...]]:
    return [tuple(row) for path in sorted(folder.glob("*.csv")) for row in read_rows(path)]


def report_of(tmp_path: Path, host: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (tmp_path / host / "out" / "report" / f"preprocess_report-{host}.json").read_text()
    )
    return loaded


def test_three_instances_split_every_row_exactly_once_between_them(s3: Any, tmp_path: Path) -> None:
    # GIVEN an inventory version of five objects, one shard each
    version = snapshot(s3, write_report(s3, split(listed_rows(s3), 2)), chunk_entries=1)
    # WHEN three instances preprocess it, started for its digest
    codes = run_hosts(s3, version["manifest"], tmp_path / "three", 3, "--manifest-sha256", version["digest"])
    # AND one instance preprocesses it alone
    assert run_on(s3, version["manifest"], tmp_path / "alone", "--manifest-sha256", version["digest"]) == 0
    # THEN every instance succeeded, each on its share of the shards (2, 2 and 1)
    assert codes == dict.fromkeys(hosts(3), 0), [message(tmp_path / "three" / h) for h in hosts(3)]
    reports = [report_of(tmp_path / "three", host) for host in hosts(3)]
    assert [r["source"]["objects"] for r in reports] == [2, 2, 1]
    assert [r["instance"] for r in reports] == [{"host": h, "index": i, "count": 3} for i, h in enumerate(hosts(3))]
    # AND each wrote its files with its host in the name
    for host in hosts(3):
        written = sorted(
            p.relative_to(tmp_path / "three" / host / "out").as_posix()
            for p in (tmp_path / "three" / host / "out").rglob("*.*")
        )
        assert written == [
            f"baseline/train_with_header-{host}.csv", f"report/preprocess_report-{host}.json",
            f"test/test-{host}.csv", f"train/train-{host}.csv", f"validation/validation-{host}.csv",
        ]  # fmt: skip
    # AND the three splits together hold every row of the dataset exactly once, as one instance's do
    together = collections.Counter(
        row for host in hosts(3) for name in SPLITS for row in rows_of(tmp_path / "three" / host / "out" / name)
    )
    alone = collections.Counter(row for name in SPLITS for row in rows_of(tmp_path / "alone" / "out" / name))
    assert together == alone
    assert sum(together.values()) == 569
    # AND the shares' splits are near the fractions asked for
    train = sum(r["split"]["train"] for r in reports)
    assert abs(train / 569 - 0.7) < 0.02


def test_a_single_file_manifest_is_shared_by_its_entries(s3: Any, tmp_path: Path) -> None:
    manifest = datasets.snapshot(BUCKET, DATASET, s3=s3, format="single")
    assert manifest.uri is not None
    codes = run_hosts(s3, manifest.uri, tmp_path, 2, "--manifest-sha256", manifest.sha256)
    assert codes == dict.fromkeys(hosts(2), 0)
    assert [report_of(tmp_path, h)["source"]["objects"] for h in hosts(2)] == [3, 2]
    assert sum(report_of(tmp_path, h)["rows"] for h in hosts(2)) == 569


def test_fewer_shards_than_instances_are_shared_by_their_entries(s3: Any, tmp_path: Path) -> None:
    # GIVEN a version of five objects in two shards, and three instances
    version = snapshot(s3, write_report(s3, [listed_rows(s3)]), chunk_entries=3)
    codes = run_hosts(s3, version["manifest"], tmp_path, 3, "--manifest-sha256", version["digest"])
    # THEN every instance reads both shards and works on every third object: none is idle
    assert codes == dict.fromkeys(hosts(3), 0)
    assert [report_of(tmp_path, h)["source"]["objects"] for h in hosts(3)] == [2, 2, 1]
    assert sum(report_of(tmp_path, h)["rows"] for h in hosts(3)) == 569


def test_an_instance_without_an_object_writes_only_its_report(s3: Any, tmp_path: Path) -> None:
    # GIVEN five objects and six instances
    version = snapshot(s3, write_report(s3, [listed_rows(s3)]), chunk_entries=3)
    codes = run_hosts(s3, version["manifest"], tmp_path, 6)
    # THEN the sixth succeeds with nothing to split, and says so
    assert codes == dict.fromkeys(hosts(6), 0)
    idle = report_of(tmp_path, "algo-6")
    assert (idle["rows"], idle["source"]["objects"], idle["split"]) == (
        0,
        0,
        {"train": 0, "validation": 0, "test": 0, "baseline": 0},
    )
    assert sorted(p.name for p in (tmp_path / "algo-6" / "out").rglob("*.*")) == ["preprocess_report-algo-6.json"]


def test_an_instance_that_reads_every_shard_checks_the_whole_digest(s3: Any, tmp_path: Path) -> None:
    # GIVEN two shards, one entry edited in both the shard and the index's record of it, for three
    # instances: each reads both shards, so each recomputes the set digest and refuses the version
    version = snapshot(s3, write_report(s3, [listed_rows(s3)]), chunk_entries=3)
    bucket, key = datasets.parse_s3_uri(version["manifest"])
    index = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    name = index["shards"][0]["name"]
    shard = f"{key.removesuffix('.json')}/{name}"
    text = gzip.decompress(s3.get_object(Bucket=bucket, Key=shard)["Body"].read()).replace(b'"size":', b'"size":1', 1)
    s3.put_object(Bucket=bucket, Key=shard, Body=gzip.compress(text))
    index["shards"][0]["sha256"] = hashlib.sha256(text).hexdigest()
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(index).encode())
    codes = run_hosts(s3, version["manifest"], tmp_path, 3)
    assert codes == dict.fromkeys(hosts(3), 1)
    assert "does not match its entries" in message(tmp_path / "algo-1")


def test_an_instance_checks_its_shards_and_the_index_digest(s3: Any, tmp_path: Path) -> None:
    version = snapshot(s3, write_report(s3, [listed_rows(s3)]), chunk_entries=1)
    bucket, key = datasets.parse_s3_uri(version["manifest"])
    # GIVEN the second instance's first shard edited after the snapshot
    shard = f"{key.removesuffix('.json')}/part-00000-00001.jsonl.gz"
    lines = gzip.decompress(s3.get_object(Bucket=bucket, Key=shard)["Body"].read())
    s3.put_object(Bucket=bucket, Key=shard, Body=gzip.compress(lines.replace(b'"size":', b'"size":1', 1)))
    codes = run_hosts(s3, version["manifest"], tmp_path / "edited", 2)
    # THEN that instance fails naming the shard, and the other, which does not hold it, runs
    assert codes == {"algo-1": 0, "algo-2": 1}
    assert "shard part-00000-00001.jsonl.gz of s3://" in message(tmp_path / "edited" / "algo-2")
    # GIVEN the index's digest sum edited: THEN every instance refuses the index
    index = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    index["digest"]["sum"] = "0" * 1024
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(index).encode())
    codes = run_hosts(s3, version["manifest"], tmp_path / "sum", 2)
    assert codes == {"algo-1": 1, "algo-2": 1}
    assert "is not the identity of its digest sum" in message(tmp_path / "sum" / "algo-1")


def test_a_share_of_one_class_is_accepted_but_one_instance_needs_both(tmp_path: Path) -> None:
    # GIVEN two files, all of one class in the first
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("label,x\n" + "".join(f"0,{i}\n" for i in range(20)))
    (data / "b.csv").write_text("label,x\n" + "".join(f"{i % 2},{i}\n" for i in range(20)))
    config = tmp_path / "resourceconfig.json"
    config.write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1", "algo-2"]}))
    shared = ["--input-dir", str(data), "--output-dir", str(tmp_path / "out"), "--message-file", str(tmp_path / "m")]
    # WHEN the first of two instances takes a.csv THEN its share of one class is split
    assert preprocess.main([*shared, "--resource-config", str(config)]) == 0
    # WHEN one instance holds only a.csv THEN both classes are required
    (data / "b.csv").unlink()
    assert preprocess.main(shared) == 1
    assert "needs both classes" in (tmp_path / "m").read_text()


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"current_host": "algo-3", "hosts": ["algo-1", "algo-2"]}, "does not name this host"),
        ({"hosts": ["algo-1"]}, "does not name this host"),
        ({"current_host": "../x", "hosts": ["../x"]}, "are not plain names"),
        ("not json", "does not name this host"),
    ],
)
def test_a_resource_config_that_names_no_usable_host_fails_the_run(tmp_path: Path, config: Any, problem: str) -> None:
    path = tmp_path / "resourceconfig.json"
    path.write_text(config if isinstance(config, str) else json.dumps(config))
    with pytest.raises(preprocess.DataError, match=problem):
        preprocess.read_share(path)


def test_too_few_rows_on_one_instance_names_it_and_the_fix(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("label,x\n" + "".join(f"{i % 2},{i}\n" for i in range(5)))
    config = tmp_path / "resourceconfig.json"
    config.write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1", "algo-2"]}))
    args = ["--input-dir", str(data), "--output-dir", str(tmp_path / "out"), "--message-file", str(tmp_path / "m")]
    assert preprocess.main([*args, "--resource-config", str(config)]) == 1
    assert "5 rows are too few to split on instance algo-1 (use fewer instances" in (tmp_path / "m").read_text()


def test_the_baseline_file_is_a_sample_of_the_train_split_capped_over_all_instances(s3: Any, tmp_path: Path) -> None:
    version = snapshot(s3, write_report(s3, [listed_rows(s3)]), chunk_entries=1)
    # WHEN one instance, then two, write at most 51 baseline rows
    assert run_on(s3, version["manifest"], tmp_path / "alone", "--baseline-rows", "51") == 0
    assert run_hosts(s3, version["manifest"], tmp_path / "two", 2, "--baseline-rows", "51") == dict.fromkeys(
        hosts(2), 0
    )
    # THEN the baseline holds 51 rows in all (26 and 25), each a row of the same instance's train split
    alone = tmp_path / "alone" / "out"
    assert len(rows_of(alone / "baseline")) == 52  # and the header
    assert set(rows_of(alone / "baseline")[1:]) <= set(rows_of(alone / "train"))
    counts = [report_of(tmp_path / "two", h)["split"]["baseline"] for h in hosts(2)]
    assert counts == [26, 25]
    for host in hosts(2):
        out = tmp_path / "two" / host / "out"
        header, *sample = rows_of(out / "baseline")
        assert header[0] == "diagnosis"
        assert set(sample) <= set(rows_of(out / "train"))
