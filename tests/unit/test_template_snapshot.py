"""Moving code changes no template: each stack's template hashes as recorded."""

from __future__ import annotations

import pytest

from tests.conftest import Platform
from tests.template_snapshot import SNAPSHOT_FILE, assembly_hashes, recorded, template_hash

UPDATE = "review the change, then record it: .venv/bin/python -m tests.template_snapshot --update"


def _changed(layout: str, hashes: dict[str, str]) -> list[str]:
    expected = recorded()[layout]
    return [
        f"{path}: {'added' if path not in expected else 'removed' if path not in hashes else 'changed'}"
        for path in sorted(expected.keys() | hashes.keys())
        if expected.get(path) != hashes.get(path)
    ]


@pytest.mark.parametrize("layout", ["reference", "private_prod"])
def test_every_template_is_as_recorded(layout: str, platform: Platform, private_prod: Platform) -> None:
    synthesized = platform if layout == "reference" else private_prod
    changed = _changed(layout, assembly_hashes(synthesized.assembly))
    assert not changed, f"templates differ from {SNAPSHOT_FILE.name}: {changed}; {UPDATE}"


def test_a_one_character_change_changes_the_hash_and_key_order_does_not() -> None:
    template = {"Resources": {"A": {"Type": "AWS::S3::Bucket"}, "B": {"Type": "AWS::SQS::Queue"}}}
    reordered = {"Resources": {"B": {"Type": "AWS::SQS::Queue"}, "A": {"Type": "AWS::S3::Bucket"}}}
    changed = {"Resources": {"A": {"Type": "AWS::S3::Bucket"}, "B": {"Type": "AWS::SQS::Queuf"}}}
    assert template_hash(template) == template_hash(reordered)
    assert template_hash(template) != template_hash(changed)


def test_asset_hashes_are_masked_and_nothing_else() -> None:
    def code(key: str) -> dict[str, object]:
        return {"Resources": {"F": {"Properties": {"Code": {"S3Key": key}}}}}

    assert template_hash(code("a" * 64 + ".zip")) == template_hash(code("b" * 64 + ".zip"))
    assert template_hash(code("a" * 63 + ".zip")) != template_hash(code("b" * 63 + ".zip"))
