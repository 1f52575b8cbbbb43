"""The checked-in architecture picture matches the current synth of the Dev stage."""

from __future__ import annotations

from cdk_mlops.local.diagram import Diagram, build_diagram, read_description, render_svg
from tests.conftest import REPO_ROOT, Platform


def dev_diagram(platform: Platform) -> Diagram:
    stage = platform.stages["Dev"]
    templates = {s.stack.node.id: s.template for s in platform.stacks if s.stage == "Dev"}
    return build_diagram(stage, templates)


def test_checked_in_picture_matches_the_current_synth(platform):
    svg = (REPO_ROOT / "docs" / "architecture.svg").read_text()
    assert read_description(svg) == dev_diagram(platform).describe(), "run `make diagram` and commit the result"
    assert (REPO_ROOT / "docs" / "architecture.png").stat().st_size > 1000


def test_diagram_shows_each_construct_and_the_references_between_them(platform):
    diagram = dev_diagram(platform)
    ids = {n.id for n in diagram.nodes}
    assert {"Data/Store", "Training/Pipeline", "Training/Retrain"} <= ids
    assert ("Training/Retrain", "Training/Pipeline") in diagram.edges
    assert ("Training/Pipeline", "Data/Store") in diagram.edges  # a cross-stack reference
    assert read_description(render_svg(diagram)) == diagram.describe()
