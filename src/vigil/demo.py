"""``vigil demo``: the posture tracker end to end on photos that ship with scikit-image.

No camera, network or GPU: three public-domain photos (an empty table with a coffee cup, the
astronaut Eileen Collins, a photographer bent over his camera) are played as a short 640x480
clip with a slow zoom, through the real pose model, rules, records, rolled files, annotated video
and report. The demo's camera sees only the astronaut's upper body, so its config counts a
visible person whose legs are hidden as sitting, and its timers are seconds instead of minutes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vigil.apps.posture import PostureApp, PostureConfig
from vigil.apps.runner import RunOptions, RunReport, run_app
from vigil.errors import DependencyError
from vigil.paths import home
from vigil.sources import ArraySource, SourceConfig
from vigil.storage.records import RecordStore

FPS = 10
SIZE = (640, 480)
DEVICE_ID = "demo"


@dataclass(frozen=True)
class Scene:
    """One photo held for a share of the clip."""

    name: str
    share: float


SCENES = (Scene("coffee", 0.1), Scene("astronaut", 0.5), Scene("camera", 0.3), Scene("coffee", 0.1))


@dataclass
class DemoResult:
    """What the demo wrote."""

    folder: Path
    video: Path
    jsonl: Path
    report: Path
    run: RunReport

    def summary_lines(self) -> list[str]:
        """Lines telling the user where everything is."""
        stats = self.run.stats
        events = ", ".join(f"{n} {k}" for k, n in sorted(stats.events.items()))
        lines = [
            f"processed {stats.frames} frames in {stats.seconds:.1f} s "
            f"({stats.fps:.0f} fps): {events}",
            f"annotated video:  {self.video}",
            f"per-frame JSON:   {self.jsonl}",
            f"records database: {self.run.database} (device '{DEVICE_ID}')",
        ]
        if self.run.rolled_files:
            lines.append(
                f"rolled records:   {self.run.rolled_files[0].parent} "
                f"({len(self.run.rolled_files)} files)"
            )
        lines.append(f"report:           {self.report}")
        return lines


def demo_config(folder: Path) -> PostureConfig:
    """Return the demo's posture config: short timers and the upper-body camera setting."""
    return PostureConfig.model_validate(
        {
            "device_id": DEVICE_ID,
            "source": {"image_interval_seconds": 1 / FPS},
            "rules": {"legs_hidden_state": "sitting"},
            "reminders": {
                "sitting_minutes": 0.2,
                "hunching_minutes": 0.1,
                "break_seconds": 2,
                "straighten_seconds": 2,
                "cooldown_minutes": 1,
            },
            "records": {"roll_seconds": 5, "roll_dir": str(folder / "records")},
        }
    )


def demo_frames(seconds: float) -> Iterator[np.ndarray]:
    """Yield the clip: each scene's photo in a 640x480 frame, zooming in slowly."""
    photos = _photos()
    for scene in SCENES:
        count = max(2, round(seconds * scene.share * FPS))
        for i in range(count):
            yield _zoomed(photos[scene.name], 1.0 + 0.12 * i / (count - 1))


def run_demo(out_dir: Path | None = None, seconds: float = 30.0) -> DemoResult:
    """Run the demo and write its video, JSON lines, records and report into ``out_dir``."""
    from vigil.report import write_posture_report

    folder = out_dir or home() / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    config = demo_config(folder)
    started = time.time()
    source_config = SourceConfig.model_validate(
        {"image_interval_seconds": 1 / FPS, "start_time": None}
    )
    source = ArraySource(list(demo_frames(seconds)), source_id="demo-clip", config=source_config)
    options = RunOptions(
        source="demo-clip",
        save=folder / "posture-demo.mp4",
        jsonl=str(folder / "posture-demo.jsonl"),
    )
    report = run_app(PostureApp(), config, options, source=source)
    store = RecordStore(report.database)
    try:
        html = write_posture_report(
            store,
            folder / "posture-report.html",
            device_id=DEVICE_ID,
            since=started - 1,
            until=time.time() + seconds,
        )
    finally:
        store.close()
    return DemoResult(
        folder, folder / "posture-demo.mp4", folder / "posture-demo.jsonl", Path(html.path), report
    )


def _photos() -> dict[str, np.ndarray]:
    try:
        from skimage import data
    except ImportError:
        raise DependencyError("scikit-image", "demo", "the demo's sample photos") from None
    photos: dict[str, np.ndarray] = {
        "coffee": data.coffee(),  # type: ignore[no-untyped-call]
        "astronaut": data.astronaut(),  # type: ignore[no-untyped-call]
        "camera": cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2RGB),  # type: ignore[no-untyped-call]
    }
    return photos


def _zoomed(photo: np.ndarray, zoom: float) -> np.ndarray:
    """Fit ``photo`` into the frame, then crop towards the centre by ``zoom``."""
    from vigil.tasks.preprocess import letterbox

    width, height = SIZE
    framed, _ = letterbox(photo, width, height, fill=24)
    crop_w, crop_h = round(width / zoom), round(height / zoom)
    x, y = (width - crop_w) // 2, (height - crop_h) // 2
    return cv2.resize(framed[y : y + crop_h, x : x + crop_w], SIZE, interpolation=cv2.INTER_LINEAR)
