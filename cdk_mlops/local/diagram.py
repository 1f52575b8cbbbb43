"""The architecture picture, generated from a synthesized stage (never drawn by hand).

Each stack is a column; each construct directly under a stack is a box listing
the CloudFormation resources it creates; an arrow goes from a construct to each
construct whose resources it references (``Ref``, ``Fn::GetAtt``, or a
cross-stack ``Fn::ImportValue``).

Usage: ``python -m cdk_mlops.local.diagram [--stage Dev] [--out docs/architecture]``
writes ``<out>.svg`` and ``<out>.png``. The SVG carries its node list in a
``<desc>`` element so a test can check the picture matches the current synth.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import aws_cdk as cdk

_BOX_WIDTH = 330
_LINE = 18
_HEADER = 26
_GAP = 28
_COLUMN_GAP = 120
_MARGIN = 40


@dataclass(frozen=True)
class Node:
    """One construct directly under a stack, with the resources it creates by type."""

    id: str
    stack: str
    resources: Counter[str] = field(default_factory=Counter)

    @property
    def label(self) -> str:
        name = self.id.split("/", 1)[1]
        # aws-cdk-lib's stack-wide singletons carry a 32-hex suffix; it adds nothing to the picture.
        return re.sub(r"[0-9a-f]{32}\Z", "", name)

    def lines(self) -> list[str]:
        return [f"{count} x {kind.removeprefix('AWS::')}" for kind, count in sorted(self.resources.items())]


@dataclass(frozen=True)
class Diagram:
    """Nodes grouped by stack and the references between them."""

    stage: str
    nodes: tuple[Node, ...]
    edges: frozenset[tuple[str, str]]

    def describe(self) -> dict[str, Any]:
        """What the picture shows, as data (embedded in the SVG, compared by tests)."""
        return {
            "stage": self.stage,
            "nodes": {n.id: dict(sorted(n.resources.items())) for n in self.nodes},
            "edges": sorted([list(e) for e in self.edges]),
        }


def _references(node: Any) -> Iterator[tuple[str, str]]:
    """('ref', logical id) and ('import', export name) found anywhere in a template value."""
    if isinstance(node, list):
        for item in node:
            yield from _references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                yield ("ref", value)
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".")[0]
                yield ("ref", target)
            elif key == "Fn::ImportValue" and isinstance(value, str):
                yield ("import", value)
            else:
                yield from _references(value)


def build_diagram(stage: cdk.Stage, templates: Mapping[str, Mapping[str, Any]]) -> Diagram:
    """The diagram of one synthesized stage.

    Args:
        stage: The stage whose construct tree names the boxes.
        templates: Each stack's synthesized template, by the stack's construct id.
    """
    owner: dict[tuple[str, str], str] = {}  # (stack id, logical id) -> node id
    nodes: list[Node] = []
    for stack in (c for c in stage.node.children if isinstance(c, cdk.Stack)):
        for child in stack.node.children:
            resources: Counter[str] = Counter()
            for construct in child.node.find_all():
                if isinstance(construct, cdk.CfnResource):
                    resources[construct.cfn_resource_type] += 1
                    owner[(stack.node.id, stack.get_logical_id(construct))] = f"{stack.node.id}/{child.node.id}"
            if resources:
                nodes.append(Node(f"{stack.node.id}/{child.node.id}", stack.node.id, resources))

    exports: dict[str, str] = {}
    for stack_id, template in templates.items():
        for output in template.get("Outputs", {}).values():
            name = output.get("Export", {}).get("Name")
            for kind, target in _references(output.get("Value")):
                if name and kind == "ref" and (stack_id, target) in owner:
                    exports[name] = owner[(stack_id, target)]

    edges: set[tuple[str, str]] = set()
    for stack_id, template in templates.items():
        for logical_id, resource in template.get("Resources", {}).items():
            source = owner.get((stack_id, logical_id))
            if source is None:
                continue
            for kind, target in _references(resource.get("Properties", {})):
                dest = owner.get((stack_id, target)) if kind == "ref" else exports.get(target)
                if dest and dest != source:
                    edges.add((source, dest))
    return Diagram(stage.node.id, tuple(nodes), frozenset(edges))


@dataclass(frozen=True)
class _Box:
    node: Node
    x: int
    y: int
    height: int


def _layout(diagram: Diagram) -> tuple[list[_Box], int, int]:
    stacks = list(dict.fromkeys(n.stack for n in diagram.nodes))
    boxes: list[_Box] = []
    height = 0
    for column, stack in enumerate(stacks):
        x = _MARGIN + column * (_BOX_WIDTH + _COLUMN_GAP)
        y = _MARGIN + _HEADER + 10
        for node in (n for n in diagram.nodes if n.stack == stack):
            box_height = _HEADER + _LINE * len(node.lines()) + 8
            boxes.append(_Box(node, x, y, box_height))
            y += box_height + _GAP
        height = max(height, y)
    width = _MARGIN * 2 + len(stacks) * _BOX_WIDTH + (len(stacks) - 1) * _COLUMN_GAP
    return boxes, width, height + _MARGIN


def _anchor(box: _Box, toward: _Box) -> tuple[int, int]:
    if toward.x > box.x:
        return box.x + _BOX_WIDTH, box.y + box.height // 2
    if toward.x < box.x:
        return box.x, box.y + box.height // 2
    return box.x + (_BOX_WIDTH * 3) // 4, box.y + (box.height if toward.y > box.y else 0)


def render_svg(diagram: Diagram) -> str:
    """The diagram as a standalone SVG document."""
    boxes, width, height = _layout(diagram)
    by_id = {b.node.id: b for b in boxes}
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="13">',
        f"<title>cdk-mlops {escape(diagram.stage)} stage</title>",
        f"<desc>{escape(json.dumps(diagram.describe(), sort_keys=True))}</desc>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    for stack in dict.fromkeys(n.stack for n in diagram.nodes):
        first = next(b for b in boxes if b.node.stack == stack)
        out.append(
            f'<text x="{first.x}" y="{_MARGIN + 14}" font-size="16" font-weight="bold">'
            f"{escape(diagram.stage)}/{escape(stack)} stack</text>"
        )
    for source, dest in sorted(diagram.edges):
        a, b = by_id[source], by_id[dest]
        (x1, y1), (x2, y2) = _anchor(a, b), _anchor(b, a)
        out.append(
            f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#555" stroke-width="1.4" marker-end="url(#arrow)"/>'
        )
    for box in boxes:
        out.append(
            f'<rect x="{box.x}" y="{box.y}" width="{_BOX_WIDTH}" height="{box.height}" rx="6" '
            'fill="#eef4fb" stroke="#2f5d8a"/>'
        )
        out.append(f'<text x="{box.x + 10}" y="{box.y + 18}" font-weight="bold">{escape(box.node.label)}</text>')
        for i, line in enumerate(box.node.lines()):
            out.append(f'<text x="{box.x + 14}" y="{box.y + _HEADER + 12 + i * _LINE}">{escape(line)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def render_png(diagram: Diagram, path: Path) -> None:
    """The same picture as a PNG (drawn with Pillow; no Graphviz or browser needed)."""
    from PIL import Image, ImageDraw

    boxes, width, height = _layout(diagram)
    by_id = {b.node.id: b for b in boxes}
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for stack in dict.fromkeys(n.stack for n in diagram.nodes):
        first = next(b for b in boxes if b.node.stack == stack)
        draw.text((first.x, _MARGIN), f"{diagram.stage}/{stack} stack", fill="black")
    for source, dest in sorted(diagram.edges):
        a, b = by_id[source], by_id[dest]
        (x1, y1), (x2, y2) = _anchor(a, b), _anchor(b, a)
        draw.line([(x1, y1), (x2, y2)], fill="#555555", width=2)
        draw.ellipse([(x2 - 4, y2 - 4), (x2 + 4, y2 + 4)], fill="#555555")
    for box in boxes:
        draw.rounded_rectangle(
            [(box.x, box.y), (box.x + _BOX_WIDTH, box.y + box.height)], radius=6, fill="#eef4fb", outline="#2f5d8a"
        )
        draw.text((box.x + 10, box.y + 6), box.node.label, fill="black")
        for i, line in enumerate(box.node.lines()):
            draw.text((box.x + 14, box.y + _HEADER + i * _LINE), line, fill="black")
    image.save(path)


def read_description(svg: str) -> dict[str, Any]:
    """The node list embedded in an SVG written by :func:`render_svg`."""
    from html import unescape

    start, end = svg.index("<desc>") + len("<desc>"), svg.index("</desc>")
    data: dict[str, Any] = json.loads(unescape(svg[start:end]))
    return data


def synthesize_stage(stage_name: str) -> tuple[cdk.Stage, dict[str, Mapping[str, Any]]]:
    """Build and synthesize one stage of the reference platform from cdk.json, offline."""
    from cdk_mlops.config import CONTEXT_KEY, load_environments
    from cdk_mlops.local.examples import with_example_models
    from cdk_mlops.stacks.stage import build_platform

    # The picture shows the whole platform, so every environment serves an example model.
    context = with_example_models(json.loads(Path("cdk.json").read_text())["context"])
    app = cdk.App(context=context)
    configs = [c for c in load_environments(context[CONTEXT_KEY]) if c.stage_name == stage_name]
    if not configs:
        raise SystemExit(f"no stage {stage_name!r} in cdk.json")
    (stage,) = build_platform(app, configs)
    assembly = app.synth().get_nested_assembly(stage.artifact_id)
    templates = {
        s.node.id: assembly.get_stack_artifact(s.artifact_id).template
        for s in stage.node.children
        if isinstance(s, cdk.Stack)
    }
    return stage, templates


def main(argv: list[str] | None = None) -> int:
    """Write ``<out>.svg`` and ``<out>.png`` for one stage."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="Dev")
    parser.add_argument("--out", default="docs/architecture", help="path without extension")
    args = parser.parse_args(argv)
    stage, templates = synthesize_stage(args.stage)
    diagram = build_diagram(stage, templates)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".svg").write_text(render_svg(diagram))
    render_png(diagram, out.with_suffix(".png"))
    print(f"wrote {out.with_suffix('.svg')} and {out.with_suffix('.png')} ({len(diagram.nodes)} constructs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
