"""Training throughput: loose JPEGs vs packed shards, then the trainer fed from the shards.

Both sides feed the same images through the same ``vigil.data.Loader`` (same worker processes,
seed, augmentation and batch size), alternating epochs so machine noise hits both alike. The
loose side reads each full-size JPEG, decodes it (EXIF, colour fixes) and resizes the shorter
side to 224 every epoch; the shard side reads tar shards written once by ``vigil data pack``
(already resized, re-encoded at quality 90) and only decodes the small JPEGs. Goal: shards
deliver at least 3x the images per second.

The images are frames of a real clip (``people_video``), upscaled to 1920x1080 and saved as
JPEG files, standing in for full-resolution camera photos.

The second part fine-tunes MobileNetV2 on the same photos from shards (``vigil.train.finetune``:
one head-only epoch, one whole-network epoch) and compares the trainer's wait for each batch
with the time of its training step, and with the loader alone. Goal: the loader is never the
bottleneck. It also times training steps with one and two torch threads, and the exported
model in float and int8.
"""

from __future__ import annotations

import dataclasses
import os
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
    read_manifest,
    split_dataset,
    train_transform,
    write_manifest,
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


def epoch_timing(loader: Loader, number: int, batch_size: int = BATCH) -> tuple[list[float], int]:
    """Seconds between consecutive batches of one epoch (the first from the epoch's start)."""
    times: list[float] = []
    images = 0
    start = time.perf_counter()
    for batch in loader.batches(batch_size, epoch=number):
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
        figures = loader_main(described, packed, pack_seconds, rounds)
        trainer = trainer_main(manifest, Path(tmp))
    return {"loader": figures, "trainer": trainer}


def loader_main(
    described: str,
    packed: PackReport,
    pack_seconds: float,
    rounds: dict[str, list[tuple[list[float], int]]],
) -> dict[str, Any]:
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


# The trainer fed from shards (vigil.train.finetune) against the loader alone

TRAIN_SIZE = 160
TRAIN_BATCH = 32
VALIDATION_EVERY = 5  # every 5th photo of a class is a validation photo
THREAD_ROUNDS = 3
THREAD_STEPS = 3
TIMED_FRAMES = 60
FRAME_SIZE = (640, 360)  # frames for timing the exported model, as a camera delivers them
WAIT_GOAL = 0.05  # waiting for the loader takes under 5% of the training time


def trainer_split(manifest: Manifest, folder: Path) -> Path:
    """The photos 80/20 in train and validation, packed at TRAIN_SIZE beside the manifest."""
    items = tuple(
        dataclasses.replace(item, split="validation" if index % VALIDATION_EVERY == 0 else "train")
        for index, item in enumerate(manifest.items)
    )
    split = dataclasses.replace(manifest, items=items)
    out = folder / "finetune"
    write_manifest(split, out / "split.json")
    pack_manifest(split, out / "shards", PackOptions(size=TRAIN_SIZE, workers=WORKERS))
    return out / "split.json"


def loader_alone(shards: Path) -> tuple[Timing, float]:
    """Batch waits of the shard loader alone, as the trainer sets it up (after a warm epoch)."""
    options = LoaderOptions(workers=WORKERS, seed=0)
    with Loader(open_shards(shards, "train"), options, train_transform(TRAIN_SIZE)) as loader:
        epoch_timing(loader, 0, TRAIN_BATCH)
        rounds = [epoch_timing(loader, number, TRAIN_BATCH) for number in (1, 2)]
    return Timing.of([t for times, _ in rounds for t in times]), _rate(rounds)


def pretrained_stand_in(path: Path) -> Path:
    """MobileNetV2 weights in torchvision's layout, random values: trains at ImageNet's speed."""
    import torch

    from vigil.train.backbones import build_backbone

    torch.manual_seed(0)
    torch.save(build_backbone("mobilenet_v2", 1000).state_dict(), path)
    return path


def run_trainer(manifest_file: Path, weights: Path, out: Path, threads: int) -> Any:
    from vigil.train.finetune import FinetuneOptions, finetune

    options = FinetuneOptions(
        backbone="mobilenet_v2",
        weights=weights,
        epochs=2,
        head_epochs=1,
        image_size=TRAIN_SIZE,
        batch_size=TRAIN_BATCH,
        workers=WORKERS,
        threads=threads,
    )
    classes = list(read_manifest(manifest_file).classes)
    return finetune(manifest_file, classes, options, out, progress=False)


def thread_timings() -> dict[int, Timing]:
    """Whole-network steps on one batch with 1 and 2 torch threads, in alternating rounds."""
    import torch

    from vigil.train.backbones import build_backbone

    before = torch.get_num_threads()
    network = build_backbone("mobilenet_v2", 2).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-4)
    images = torch.randn(TRAIN_BATCH, 3, TRAIN_SIZE, TRAIN_SIZE)
    images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 2, (TRAIN_BATCH,))
    seconds: dict[int, list[float]] = {1: [], 2: []}
    try:
        for _ in range(THREAD_ROUNDS):
            for threads, found in seconds.items():
                torch.set_num_threads(threads)
                for _ in range(THREAD_STEPS):
                    started = time.perf_counter()
                    optimizer.zero_grad()
                    torch.nn.functional.cross_entropy(network(images), labels).backward()
                    optimizer.step()
                    found.append(time.perf_counter() - started)
    finally:
        torch.set_num_threads(before)
    return {threads: Timing.of(found) for threads, found in seconds.items()}


def exported_timings(onnx_path: Path, frames: list[np.ndarray], folder: Path) -> dict[str, Timing]:
    """``predict`` of the exported model in float and in int8, taking the frames in turn."""
    from vigil.tasks import load_model
    from vigil.train.export import quantize_int8

    int8 = quantize_int8(onnx_path, frames[:TIMED_FRAMES], folder / "model.int8.onnx")
    models = {"fp32": load_model(onnx_path), "int8": load_model(int8)}
    seconds: dict[str, list[float]] = {name: [] for name in models}
    try:
        for image in frames[:10]:
            for model in models.values():
                model.predict(image)
        for image in frames:
            for name, model in models.items():
                started = time.perf_counter()
                model.predict(image)
                seconds[name].append(time.perf_counter() - started)
    finally:
        for model in models.values():
            model.close()
    return {name: Timing.of(found) for name, found in seconds.items()}


def photos_of(manifest_file: Path, count: int) -> list[np.ndarray]:
    manifest = read_manifest(manifest_file)
    step = max(1, len(manifest.items) // count)
    chosen = manifest.items[::step][:count]
    frames = [cv2.imread(str(manifest.path_of(item))) for item in chosen]
    return [cv2.cvtColor(cv2.resize(f, FRAME_SIZE), cv2.COLOR_BGR2RGB) for f in frames]


def trainer_main(manifest: Manifest, folder: Path) -> dict[str, Any]:
    manifest_file = trainer_split(manifest, folder)
    loader_timing, loader_rate = loader_alone(manifest_file.parent / "shards")
    from vigil.train.finetune import default_threads

    weights = pretrained_stand_in(folder / "mobilenet_v2-random.pth")
    threads_chosen, load = default_threads(), os.getloadavg()[0]
    started = time.perf_counter()
    result = run_trainer(manifest_file, weights, folder / "run", threads_chosen)
    run_seconds = time.perf_counter() - started
    threads = thread_timings()
    exported = exported_timings(result.onnx_path, photos_of(manifest_file, 100), folder)
    figures: dict[str, Any] = {
        "loader_alone": loader_timing,
        "loader_alone_images_per_second": loader_rate,
        "epochs": [stats.to_dict() for stats in result.history],
        "run_seconds": run_seconds,
        "threads_chosen": threads_chosen,
        "load_average": load,
        "threads": threads,
        "exported": exported,
        "train_images": read_manifest(manifest_file).counts()["train"],
    }
    table = describe_trainer(figures)
    print(table)
    update_doc("finetune", "Fine-tuning on a CPU: trainer vs loader (`bench/train.py`)", table)
    save_results("finetune", figures)
    return figures


def steady_waiting(stats: dict[str, Any], images: int) -> float:
    """Share of an epoch's training time spent waiting for batches after its first batch."""
    seconds = images / stats["images_per_second"]
    first = stats["load_first_ms"] / 1000
    return float((stats["load_share"] * seconds - first) / (seconds - first))


def _epoch_row(stats: dict[str, Any], images: int) -> str:
    label = {"head": "trainer, head only (body frozen)", "full": "trainer, whole network"}
    return (
        f"| {label[stats['phase']]} | {stats['images_per_second']:.0f} | "
        f"{stats['load_first_ms']:.0f} | {stats['load_ms_median']:.1f} | "
        f"{stats['load_ms_p95']:.1f} | {stats['step_ms_median']:.0f} | "
        f"{stats['step_ms_p95']:.0f} | {100 * stats['load_share']:.1f}% | "
        f"{100 * steady_waiting(stats, images):.1f}% |"
    )


def _goal_met(epochs: list[dict[str, Any]], images: int) -> bool:
    return all(
        steady_waiting(e, images) < WAIT_GOAL and e["load_ms_p95"] < e["step_ms_median"]
        for e in epochs
    )


def describe_trainer(figures: dict[str, Any]) -> str:
    loader, epochs = figures["loader_alone"], figures["epochs"]
    threads, exported = figures["threads"], figures["exported"]
    images = sum(figures["train_images"].values())
    worst = max(steady_waiting(e, images) for e in epochs)
    return (
        f"The same photos, every {VALIDATION_EVERY}th of each class held out for validation "
        f"({images} to train on), packed at {TRAIN_SIZE} px. `finetune()` of MobileNetV2 at "
        f"{TRAIN_SIZE}x{TRAIN_SIZE}, batches of {TRAIN_BATCH}, {WORKERS} loader processes, "
        f"{figures['threads_chosen']} torch thread{'s' if figures['threads_chosen'] > 1 else ''} "
        "(the default: the cores idle at the start; "
        f"the 1-minute load average was {figures['load_average']:.1f}), channels-last memory, "
        "augmentation on; one "
        "head-only epoch then one whole-network epoch, from weights in torchvision's layout "
        f"(random values, which train at the speed of ImageNet's); {figures['run_seconds']:.0f} s "
        "in all, validation and ONNX export included. Wait: from the end of one training step "
        "to the next batch in hand (the first batch of an epoch waits for the shuffle buffer, "
        "and in the first epoch for the loader processes to start); step: forward, backward and "
        "update; waiting: the share of training time spent waiting, in all and after the "
        "epoch's first batch. The loader alone is the same shard loader (same workers, "
        "augmentation, batch size) with nothing training.\n\n"
        "| | images/s | first batch ms | wait median ms | wait p95 ms | step median ms | "
        "step p95 ms | waiting | waiting after the first batch |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| loader alone | {figures['loader_alone_images_per_second']:.0f} | | "
        f"{loader.median_ms:.1f} | {loader.p95_ms:.1f} | | | | |\n"
        + "\n".join(_epoch_row(e, images) for e in epochs)
        + "\n\nGoal: the loader is never the bottleneck (after an epoch's first batch, "
        f"waiting under {100 * WAIT_GOAL:.0f}% of training time, and every p95 wait shorter "
        f"than a median step): **{'met' if _goal_met(epochs, images) else 'NOT met'}** (at "
        f"most {100 * worst:.1f}% waiting after the first batch).\n\n"
        f"Whole-network steps on one batch, {THREAD_ROUNDS} alternating rounds of "
        f"{THREAD_STEPS} steps per setting:\n\n"
        "| torch threads | median ms/step | p95 ms/step |\n|---:|---:|---:|\n"
        + "\n".join(f"| {n} | {t.median_ms:.0f} | {t.p95_ms:.0f} |" for n, t in threads.items())
        + "\n\nThe exported model (`predict` on 100 photos at "
        f"{FRAME_SIZE[0]}x{FRAME_SIZE[1]}, crop and softmax included, 2 threads), float and "
        f"static int8 calibrated on {TIMED_FRAMES} of them:\n\n"
        "| model | median ms | p95 ms |\n|---|---:|---:|\n"
        + "\n".join(f"| {n} | {t.median_ms:.1f} | {t.p95_ms:.1f} |" for n, t in exported.items())
    )


if __name__ == "__main__":
    main()
