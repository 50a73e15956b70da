"""``vigil data check``: whether a dataset is fit to train on, and what needs attention.

Every image is read as Vigil reads images everywhere. The report counts images per class, lists
files that cannot be decoded (skipped, never fatal), truncated JPEGs (usable: the missing part
is grey), exact duplicates (same bytes) and near duplicates (perceptual hashes a few bits
apart), tiny images, images that are CMYK, greyscale, 16-bit, with alpha or EXIF-rotated (all
converted when read), the same image under two labels, and class imbalance with what it means
for judging the model. The data is usable when at least two classes have decodable images.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from vigil.data.config import CheckOptions
from vigil.data.dataset import Dataset, Item
from vigil.data.duplicates import groups_of, near_pairs, same_value_pairs
from vigil.data.imageinfo import TRAITS, ImageInfo, inspect_images
from vigil.data.parallel import Progress
from vigil.data.report import plural

DOMINANT_SHARE = 0.8
"""A class with at least this share of the images makes accuracy misleading."""
IMBALANCE_RATIO = 3.0
"""Largest over smallest class count from which per-class recall matters more than accuracy."""
FEW_IMAGES = 10
"""Fewer usable images than this in a class earns a warning."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One image worth mentioning, and what about it."""

    key: str
    detail: str


@dataclass(frozen=True)
class CheckReport:
    """The outcome of :func:`check_dataset`; :attr:`problem` is None when the data is usable.

    Attributes:
        source: The folder or file checked.
        kind: ``folder``, ``csv`` or ``label-studio``.
        images: Images the source names.
        counts: Usable images per class, for every class the source names.
        unreadable: Files that cannot be read or decoded (left out of training).
        truncated: Truncated JPEGs (usable).
        tiny: Images with a side below ``min_side``, with their size.
        odd: For each of :data:`~vigil.data.imageinfo.TRAITS`, the images it applies to.
        exact_duplicates: Groups of files with identical bytes.
        near_duplicates: Groups of distinct files whose perceptual hashes are close.
        label_conflicts: Groups of identical files under different labels.
        skipped: Entries of the source that name no usable image (no label, ...).
        imbalance_ratio: Largest over smallest class count (None with under two classes).
        warnings: Plain-language advice.
        problem: Why the data cannot be trained on, or None.
        min_side: The tiny-image threshold used.
        near_threshold: The Hamming threshold used.

    """

    source: str
    kind: str
    images: int
    counts: dict[str, int]
    unreadable: tuple[Finding, ...] = ()
    truncated: tuple[str, ...] = ()
    tiny: tuple[Finding, ...] = ()
    odd: dict[str, tuple[str, ...]] = field(default_factory=dict)
    exact_duplicates: tuple[tuple[str, ...], ...] = ()
    near_duplicates: tuple[tuple[str, ...], ...] = ()
    label_conflicts: tuple[tuple[str, ...], ...] = ()
    skipped: tuple[Finding, ...] = ()
    imbalance_ratio: float | None = None
    warnings: tuple[str, ...] = ()
    problem: str | None = None
    min_side: int = 64
    near_threshold: int = 8

    @property
    def usable(self) -> bool:
        """Whether a classifier can be trained on this data."""
        return self.problem is None

    @property
    def usable_images(self) -> int:
        """Images that decode, over all classes."""
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        """Return everything in the report as a JSON-ready dictionary."""
        data = asdict(self)
        data["usable"] = self.usable
        data["usable_images"] = self.usable_images
        return data

    def lines(self, limit: int = 10) -> list[str]:
        """Return the report for people, listing at most ``limit`` files per finding."""
        from vigil.data.report import report_lines

        return report_lines(self, limit)


def check_dataset(
    dataset: Dataset, options: CheckOptions | None = None, progress: Progress | None = None
) -> CheckReport:
    """Inspect every image of ``dataset`` and report what needs attention.

    Raises:
        DependencyError: Pillow or imagehash is missing (``pip install 'vigil[train]'``).

    """
    options = options or CheckOptions()
    return build_report(dataset, inspect_dataset(dataset, options, progress), options)


def inspect_dataset(
    dataset: Dataset, options: CheckOptions, progress: Progress | None = None
) -> list[ImageInfo]:
    """:func:`~vigil.data.imageinfo.inspect_image` for every item, in item order."""
    pairs = [(item.key, item.path) for item in dataset.items]
    return inspect_images(pairs, options.workers, progress)


def build_report(
    dataset: Dataset, infos: Sequence[ImageInfo], options: CheckOptions
) -> CheckReport:
    """Turn per-image findings into a :class:`CheckReport`."""
    items = dataset.items
    good = [info.usable for info in infos]
    counted = Counter(item.label for item, ok in zip(items, good, strict=True) if ok)
    counts = {label: counted[label] for label in dataset.classes}
    exact = _duplicate_groups(
        infos, same_value_pairs([i.sha256 if i.usable else None for i in infos])
    )
    near = _near_groups(infos, options.near_threshold)
    return CheckReport(
        source=str(dataset.source),
        kind=dataset.kind,
        images=len(items),
        counts=counts,
        unreadable=tuple(Finding(i.key, i.error) for i in infos if i.error is not None),
        truncated=tuple(i.key for i in infos if i.truncated),
        tiny=_tiny(infos, options.min_side),
        odd={trait: tuple(i.key for i in infos if trait in i.traits) for trait in TRAITS},
        exact_duplicates=_keys(exact, items),
        near_duplicates=_keys(near, items),
        label_conflicts=_keys([g for g in exact if len({items[i].label for i in g}) > 1], items),
        skipped=tuple(Finding(s.where, s.reason) for s in dataset.skipped),
        imbalance_ratio=imbalance_ratio(counts),
        warnings=tuple(advice(counts)),
        problem=usability_problem(counts, infos),
        min_side=options.min_side,
        near_threshold=options.near_threshold,
    )


def imbalance_ratio(counts: dict[str, int]) -> float | None:
    """Largest over smallest count among classes with images; None with fewer than two."""
    present = [n for n in counts.values() if n > 0]
    if len(present) < 2:
        return None
    return max(present) / min(present)


def advice(counts: dict[str, int]) -> list[str]:
    """Plain-language warnings about class balance and classes with few images."""
    present = {label: n for label, n in counts.items() if n > 0}
    total = sum(present.values())
    notes: list[str] = []
    if len(present) >= 2:
        largest = max(present, key=lambda label: (present[label], label))
        smallest = min(present, key=lambda label: (present[label], label))
        share = present[largest] / total
        rare = ", ".join(f"'{label}'" for label in sorted(present) if label != largest)
        if share >= DOMINANT_SHARE:
            notes.append(
                f"{share:.0%} of images are '{largest}': accuracy alone will look good; "
                f"judge by the recall of {rare}"
            )
        elif present[largest] / present[smallest] >= IMBALANCE_RATIO:
            notes.append(
                f"'{largest}' has {present[largest] / present[smallest]:.1f}x the images of "
                f"'{smallest}': judge by per-class recall, not accuracy alone"
            )
    notes += [
        f"class '{label}' has only {plural(n, 'usable image')}; a few dozen per class is a bare "
        "minimum"
        for label, n in counts.items()
        if 0 < n < FEW_IMAGES
    ]
    notes += [f"class '{label}' has no usable image" for label, n in counts.items() if n == 0]
    return notes


def usability_problem(counts: dict[str, int], infos: Sequence[ImageInfo]) -> str | None:
    """Why the data cannot train a classifier (no decodable image, one class), or None."""
    present = {label: n for label, n in counts.items() if n > 0}
    if not present:
        first = next((i for i in infos if i.error is not None), None)
        example = f" (first: {first.key}: {first.error})" if first else ""
        return f"none of the {len(infos)} images can be decoded{example}"
    if len(present) == 1:
        ((label, n),) = present.items()
        return (
            f"only one class has images ('{label}', {n}): a classifier needs at least two; "
            "add images of another class"
        )
    return None


def _duplicate_groups(
    infos: Sequence[ImageInfo], pairs: Iterable[tuple[int, int]]
) -> list[list[int]]:
    return [group for group in groups_of(len(infos), pairs) if len(group) > 1]


def _near_groups(infos: Sequence[ImageInfo], threshold: int) -> list[list[int]]:
    """Return groups of near-identical images that are not all copies of one file."""
    hashes = [i.phash if i.usable else None for i in infos]
    groups = _duplicate_groups(infos, near_pairs(hashes, threshold))
    return [g for g in groups if len({infos[i].sha256 for i in g}) > 1]


def _tiny(infos: Sequence[ImageInfo], min_side: int) -> tuple[Finding, ...]:
    return tuple(
        Finding(i.key, f"{i.width}x{i.height}")
        for i in infos
        if i.usable and min(i.width, i.height) < min_side
    )


def _keys(groups: Sequence[Sequence[int]], items: Sequence[Item]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(items[i].key for i in group) for group in groups)


__all__ = [
    "CheckReport",
    "Finding",
    "advice",
    "build_report",
    "check_dataset",
    "imbalance_ratio",
    "inspect_dataset",
    "usability_problem",
]
