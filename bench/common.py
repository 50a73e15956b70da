"""Shared benchmark helpers: timing statistics, machine description, updating docs/benchmarks.md."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DOC = REPO / "docs" / "benchmarks.md"
RESULTS = REPO / "bench" / "results"


@dataclass(frozen=True)
class Timing:
    """Per-item latency statistics in milliseconds, and the rate they imply."""

    count: int
    median_ms: float
    p95_ms: float
    mean_ms: float
    per_second: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Timing:
        values = np.asarray(seconds, dtype=np.float64) * 1000
        return cls(
            count=len(values),
            median_ms=float(np.median(values)),
            p95_ms=float(np.percentile(values, 95)),
            mean_ms=float(values.mean()),
            per_second=float(1000 * len(values) / values.sum()),
        )


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def machine() -> str:
    """One line describing the machine and the main library versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024**2:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    versions = ", ".join(
        f"{name} {_version(name)}"
        for name in ("mediapipe", "onnxruntime", "opencv-python-headless", "numpy")
    )
    return f"{cpu}, {os.cpu_count()} cores{memory}; Python {platform.python_version()}; {versions}"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def save_results(name: str, payload: dict[str, object]) -> Path:
    """Keep the raw figures of one benchmark as JSON in bench/results (not committed)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=asdict))
    return path


def update_doc(section: str, title: str, markdown: str) -> None:
    """Replace the section between ``<!-- bench:NAME -->`` markers in docs/benchmarks.md."""
    start, end = f"<!-- bench:{section} -->", f"<!-- /bench:{section} -->"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    measured = f"_Measured {stamp} on: {machine()}._"
    block = f"{start}\n## {title}\n\n{measured}\n\n{markdown.strip()}\n{end}"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else f"{text.rstrip()}\n\n{block}\n"
    )
    DOC.write_text(text)
