"""Training input throughput: loose JPEGs decoded and resized every epoch vs packed shards.

Both sides feed the same images through the same ``vigil.data.Loader`` (same worker processes,
seed, augmentation and batch size), alternating epochs so machine noise hits both alike. The
loose side reads each full-size JPEG, decodes it (EXIF, colour fixes) and resizes the shorter
side to 224 every epoch; the shard side reads tar shards written once by ``vigil data pack``
(already resized, re-encoded at quality 90) and only decodes the small JPEGs. Goal: shards
deliver at least 3x the images per second.

The images are frames of a real clip (``people_video``), upscaled to 1920x1080 and saved as
JPEG files, standing in for full-resolution camera photos.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.common import SHARED_DATA, Timing, median, save_results, update_doc
from vigil.data import (
    CheckOptions,
    FileSplit,
    Loader,
    LoaderOptions,
    Manifest,
    PackOptions,
    PackReport,
    SplitOptions,
    inspect_dataset,
    load_dataset,
    open_shards,
    pack_manifest,
    split_dataset,
    train_transform,
)

IMAGES = 960
CAMERA_SIZE = (1920, 1080)
WORKERS = 2
BATCH = 64
BUFFER = 256
ROUNDS = 3
SIZE = 224
CLIP = SHARED_DATA / "people_video" / "intel_one-by-one-person-detection.mp4"


def build_photos(folder: Path) -> str:
    """Write IMAGES frames of the clip as 1920x1080 JPEGs in two class folders."""
    capture = cv2.VideoCapture(str(CLIP))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    step = max(1, total // IMAGES)
    written = 0
    for index in range(total):
        ok, frame = capture.read()
        if not ok or written == IMAGES:
            break
        if index % step:
            continue
        label = "early" if written < IMAGES // 2 else "late"
        path = folder / label / f"frame_{index:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        big = cv2.resize(frame, CAMERA_SIZE, interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 92])
        written += 1
    capture.release()
    sizes = [p.stat().st_size for p in folder.rglob("*.jpg")]
    return (
        f"{written} frames of {CLIP.name} (768x432, Intel IoT DevKit sample videos, CC-BY-4.0) "
        f"upscaled to {CAMERA_SIZE[0]}x{CAMERA_SIZE[1]} and saved as JPEG quality 92 "
        f"(mean {np.mean(sizes) / 1000:.0f} kB per file)"
    )


def epoch_timing(loader: Loader, number: int) -> tuple[list[float], int]:
    """Seconds between consecutive batches of one epoch (the first from the epoch's start)."""
    times: list[float] = []
    images = 0
    start = time.perf_counter()
    for batch in loader.batches(BATCH, epoch=number):
        now = time.perf_counter()
        times.append(now - start)
        images += len(batch.labels)
        start = now
    return times, images


def run_rounds(loaders: dict[str, Loader]) -> dict[str, list[tuple[list[float], int]]]:
    """One untimed epoch per loader (starts workers, fills the page cache), then ROUNDS each."""
    for loader in loaders.values():
        epoch_timing(loader, 0)
    rounds: dict[str, list[tuple[list[float], int]]] = {name: [] for name in loaders}
    for number in range(1, ROUNDS + 1):
        for name, loader in loaders.items():
            rounds[name].append(epoch_timing(loader, number))
    return rounds


def _rate(rounds: list[tuple[list[float], int]]) -> float:
    return sum(images for _, images in rounds) / sum(sum(times) for times, _ in rounds)


def _row(label: str, figures: dict[str, Any], side: str) -> str:
    rate, timing = figures[f"{side}_images_per_second"], figures[side]
    return f"| {label} | {rate:.0f} | {timing.median_ms:.0f} | {timing.p95_ms:.0f} |"


def prepare(folder: Path) -> tuple[str, Manifest, PackReport, float]:
    """Photos, their manifest (all in train) and their shards; returns the packing seconds too."""
    described = build_photos(folder / "photos")
    dataset = load_dataset(folder / "photos")
    infos = inspect_dataset(dataset, CheckOptions(workers=WORKERS))
    split = SplitOptions(train=1.0, validation=0.0, test=0.0)
    manifest = split_dataset(dataset, infos, split).manifest
    start = time.perf_counter()
    packed = pack_manifest(manifest, folder / "shards", PackOptions(size=SIZE, workers=WORKERS))
    return described, manifest, packed, time.perf_counter() - start


def measure(manifest: Manifest, shards: Path) -> dict[str, list[tuple[list[float], int]]]:
    """Alternating epochs of the two loaders, same options and augmentation."""
    options = LoaderOptions(workers=WORKERS, seed=0, shuffle_buffer=BUFFER)
    transform = train_transform(SIZE)
    loaders = {
        "loose": Loader(FileSplit(manifest, "train", size=SIZE), options, transform),
        "shards": Loader(open_shards(shards, "train"), options, transform),
    }
    try:
        return run_rounds(loaders)
    finally:
        for loader in loaders.values():
            loader.close()


def describe(
    described: str, packed: PackReport, pack_seconds: float, figures: dict[str, Any]
) -> str:
    shard_files = packed.index.splits["train"]
    megabytes = sum(s.bytes for s in shard_files) / 1e6
    ratios = figures["ratios"]
    return (
        f"Images: {described}; one class folder per half of the clip.\n"
        f"Both sides: `Loader` with {WORKERS} worker processes, batches of {BATCH}, "
        f"`train_transform({SIZE})` (random resized crop, flip, colour jitter), shuffle buffer "
        f"{BUFFER}; {ROUNDS} alternating timed epochs each after one untimed epoch. Batch times "
        "are the waits of a consumer that does nothing else; the first batch of an epoch waits "
        "for the buffer to start and its last batches come straight out of it.\n"
        f"Loose: every epoch reads each JPEG, decodes it and resizes the shorter side to {SIZE}. "
        f"Shards: packed once ({pack_seconds:.1f} s with {WORKERS} workers) into "
        f"{len(shard_files)} shards, {megabytes:.1f} MB in all (packing gives a split at least 8 "
        "shards so that every worker has some; one shard per 64 MB would make this set a single "
        f"shard), shorter side {SIZE}, JPEG quality 90.\n\n"
        "| source | images/s | median ms/batch | p95 ms/batch |\n|---|---:|---:|---:|\n"
        f"{_row('loose JPEGs, decoded and resized per epoch', figures, 'loose')}\n"
        f"{_row('packed shards', figures, 'shards')}\n\n"
        f"Shards / loose rate: median of rounds **{figures['ratio_median']:.1f}x** "
        f"(rounds: {', '.join(f'{r:.1f}x' for r in ratios)}). "
        f"Goal: >= 3x: **{'met' if figures['ratio_median'] >= 3 else 'NOT met'}**."
    )


def main() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        described, manifest, packed, pack_seconds = prepare(Path(tmp))
        rounds = measure(manifest, Path(tmp) / "shards")
    ratios = [
        _rate([s]) / _rate([loo]) for loo, s in zip(rounds["loose"], rounds["shards"], strict=True)
    ]
    figures: dict[str, Any] = {
        "loose": Timing.of([t for times, _ in rounds["loose"] for t in times]),
        "shards": Timing.of([t for times, _ in rounds["shards"] for t in times]),
        "loose_images_per_second": _rate(rounds["loose"]),
        "shards_images_per_second": _rate(rounds["shards"]),
        "ratio_median": median(ratios),
        "ratios": ratios,
        "pack_seconds": pack_seconds,
    }
    table = describe(described, packed, pack_seconds, figures)
    print(table)
    update_doc("train", "Training input: loose JPEGs vs shards (`bench/train.py`)", table)
    save_results("train", figures)
    return figures


if __name__ == "__main__":
    main()
