"""The synth summary that `make demo` prints."""

from __future__ import annotations

from cdk_mlops.local.summary import main, render, summarize


def test_summary_lists_each_environment_with_resource_counts(platform):
    stages = summarize(__import__("pathlib").Path(platform.assembly.directory))
    assert list(stages) == ["Dev", "Staging", "Prod", "Tooling"]
    for stage, stacks in stages.items():
        expected = {s.stack.stack_name for s in platform.stacks if s.stage == stage}
        assert {s.name.split("/")[-1] for s in stacks} == {n.split("-")[-1] for n in expected}
        for summary in stacks:
            assert summary.total > 0
    text = render(stages)
    assert "== Dev:" in text
    assert "AWS::KMS::Key" in text


def test_summary_refuses_a_directory_that_is_not_an_assembly(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "is not a cloud assembly; run `make synth` first" in capsys.readouterr().err
