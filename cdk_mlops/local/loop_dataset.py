"""The sample dataset the closed loop drops: two versions of a small CSV dataset, the same bytes on every run."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

#: The label column of the sample dataset (first, as the pipeline's preprocess step expects).
LABEL: Final = "benign"


@dataclass(frozen=True)
class DataVersion:
    """One drop of the sample dataset.

    Attributes:
        number: 1, 2, ...
        files: What this drop writes: key relative to ``datasets/<dataset>/`` → content.
        contents: The whole dataset after this drop (earlier files included).
        description: What the drop does, for the output.
    """

    number: int
    files: Mapping[str, bytes]
    contents: Mapping[str, bytes]
    description: str

    @property
    def bytes(self) -> int:
        """Size of the files this drop writes."""
        return sum(len(b) for b in self.files.values())


def _csv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def sample_versions() -> tuple[DataVersion, DataVersion]:
    """Two versions of a CSV dataset from scikit-learn's bundled breast-cancer data (no download).

    Label first (``benign``, 0 or 1), then the 30 features; values are written with ``repr``,
    so the bytes are the same on every run. Version 1 is rows 0-399 in four files of 100 rows.
    Version 2 rewrites ``part-0003.csv`` (rows 300-449) and adds ``part-0004.csv`` (rows
    450-568), so restoring version 1 later needs the old version of an overwritten object.
    """
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    header = [LABEL, *(name.replace(" ", "_") for name in data.feature_names)]
    rows = [[int(y), *(repr(float(v)) for v in x)] for x, y in zip(data.data, data.target, strict=True)]

    def part(start: int, stop: int) -> bytes:
        return _csv(header, rows[start:stop])

    first = {f"part-{i:04d}.csv": part(i * 100, (i + 1) * 100) for i in range(4)}
    second = {"part-0003.csv": part(300, 450), "part-0004.csv": part(450, len(rows))}
    return (
        DataVersion(1, first, dict(first), f"rows 0-399 of the breast-cancer data in {len(first)} files"),
        DataVersion(
            2,
            second,
            {**first, **second},
            f"rewrites part-0003.csv (rows 300-449), adds part-0004.csv (rows 450-{len(rows) - 1})",
        ),
    )
