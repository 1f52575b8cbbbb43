"""Summarize a synthesized cloud assembly: per environment, its stacks and resources by type.

Usage: ``python -m cdk_mlops.local.summary cdk.out``
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class StackSummary:
    """One synthesized stack: its name and how many resources of each type it holds."""

    name: str
    resources: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        """Number of resources in the stack."""
        return sum(self.resources.values())


def _stacks(assembly_dir: Path) -> list[StackSummary]:
    manifest = json.loads((assembly_dir / "manifest.json").read_text())
    stacks: list[StackSummary] = []
    for artifact in manifest.get("artifacts", {}).values():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        template_file = artifact["properties"]["templateFile"]
        template = json.loads((assembly_dir / template_file).read_text())
        types = Counter(resource["Type"] for resource in template.get("Resources", {}).values())
        stacks.append(StackSummary(artifact.get("displayName", template_file), types))
    return stacks


def summarize(cloud_assembly: Path) -> dict[str, list[StackSummary]]:
    """Map each stage (environment) in a cloud assembly to its stack summaries."""
    manifest = json.loads((cloud_assembly / "manifest.json").read_text())
    stages: dict[str, list[StackSummary]] = {}
    for name, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") == "cdk:cloud-assembly":
            stage = artifact.get("displayName") or name.removeprefix("assembly-")
            stages[stage] = _stacks(cloud_assembly / artifact["properties"]["directoryName"])
    top_level = _stacks(cloud_assembly)
    if top_level:
        stages["(app)"] = top_level
    return stages


def render(stages: dict[str, list[StackSummary]]) -> str:
    """A plain-text report: one block per environment, resource counts by type."""
    lines: list[str] = []
    for stage, stacks in stages.items():
        total = sum(s.total for s in stacks)
        lines.append(f"== {stage}: {len(stacks)} stacks, {total} resources")
        for stack in stacks:
            lines.append(f"   {stack.name} ({stack.total} resources)")
            for resource_type, count in sorted(stack.resources.items()):
                lines.append(f"      {count:4d}  {resource_type}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the summary of the cloud assembly directory given as the only argument."""
    args = sys.argv[1:] if argv is None else argv
    cloud_assembly = Path(args[0] if args else "cdk.out")
    if not (cloud_assembly / "manifest.json").is_file():
        print(f"{cloud_assembly} is not a cloud assembly; run `make synth` first", file=sys.stderr)
        return 2
    print(render(summarize(cloud_assembly)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
