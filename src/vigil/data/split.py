"""A reproducible, stratified, group-aware train/validation/test split.

1. Images that cannot be decoded are left out.
2. Images are joined into groups that must not be separated: identical files, near duplicates
   (perceptual hashes within the threshold) and images sharing a user-given group (a camera
   site, a source video). Joining is transitive.
3. Every class gets a target count per split from the fractions (largest remainder; each split
   gets at least one image of a class that has as many images as there are splits).
4. Groups, largest first and otherwise in an order drawn from the seed, each go to the split
   where they best close the gap to the targets (squared gaps weighed by the targets, so all
   splits fill at the same pace and large groups spread over all of them).

No random generator is involved: the order is the SHA-256 of the seed and a group's first path,
so the same files and seed give the same split on any machine and Python version.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from vigil.data.config import SPLITS, SplitOptions
from vigil.data.dataset import Dataset, Item
from vigil.data.duplicates import groups_of, near_pairs, same_value_pairs
from vigil.data.imageinfo import ImageInfo
from vigil.data.manifest import Manifest, ManifestItem
from vigil.data.report import plural
from vigil.errors import SourceError


@dataclass(frozen=True)
class SplitResult:
    """A new manifest, what was left out, and what to know about the split."""

    manifest: Manifest
    left_out: tuple[str, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Group:
    members: tuple[int, ...]
    counts: dict[str, int]
    order: str


def split_dataset(
    dataset: Dataset,
    infos: Sequence[ImageInfo],
    options: SplitOptions | None = None,
    near_threshold: int = 8,
) -> SplitResult:
    """Assign every usable image of ``dataset`` to a split.

    Args:
        dataset: The images and labels.
        infos: :func:`~vigil.data.check.inspect_dataset`'s findings, in item order.
        options: Fractions and seed.
        near_threshold: Images whose perceptual hashes differ in at most this many bits stay
            together; negative: do not join near duplicates (identical files still are).

    Raises:
        SourceError: fewer than two classes have decodable images.

    """
    options = options or SplitOptions()
    if len(infos) != len(dataset.items):
        raise ValueError("infos must describe the dataset's items, in order")
    kept = [(item, info) for item, info in zip(dataset.items, infos, strict=True) if info.usable]
    classes = tuple(sorted({item.label for item, _ in kept}))
    if len(classes) < 2:
        raise SourceError(
            f"cannot split {dataset.source}: images of at least two classes must decode, "
            f"found {len(classes)}"
        )
    groups = _groups(kept, near_threshold, options.seed)
    targets = {c: split_targets(n, options.fractions()) for c, n in _class_counts(kept).items()}
    assigned = _assign(groups, targets)
    manifest = Manifest(
        root=dataset.root,
        classes=classes,
        items=_manifest_items(kept, groups, assigned),
        seed=options.seed,
        fractions=options.fractions(),
        near_threshold=near_threshold,
    )
    left_out = tuple(
        item.key for item, info in zip(dataset.items, infos, strict=True) if not info.usable
    )
    warnings = _tiny_class_warnings(targets) + _deviation_warnings(manifest, targets, groups)
    return SplitResult(manifest, left_out, tuple(warnings))


def split_targets(count: int, fractions: dict[str, float]) -> dict[str, int]:
    """Return the images of one class per split: largest remainder, one per split if possible.

    >>> split_targets(10, {"train": 0.7, "validation": 0.15, "test": 0.15})
    {'train': 7, 'validation': 2, 'test': 1}
    """
    exact = {name: count * share for name, share in fractions.items()}
    targets = {name: math.floor(value + 1e-9) for name, value in exact.items()}
    by_remainder = sorted(fractions, key=lambda n: (-(exact[n] - targets[n]), SPLITS.index(n)))
    for name in by_remainder[: count - sum(targets.values())]:
        targets[name] += 1
    used = [name for name in SPLITS if fractions.get(name, 0) > 0]
    if count >= len(used):
        for name in used:
            if targets[name] == 0:
                largest = max(used, key=lambda n: (targets[n], -SPLITS.index(n)))
                targets[largest] -= 1
                targets[name] += 1
    return targets


def _class_counts(kept: Sequence[tuple[Item, ImageInfo]]) -> dict[str, int]:
    counted = Counter(item.label for item, _ in kept)
    return {label: counted[label] for label in sorted(counted)}


def _groups(kept: Sequence[tuple[Item, ImageInfo]], near_threshold: int, seed: int) -> list[_Group]:
    """Return the groups of images to keep together, in the order they are handed out."""
    pairs = list(same_value_pairs([info.sha256 for _, info in kept]))
    pairs += same_value_pairs([item.group for item, _ in kept])
    if near_threshold >= 0:
        pairs += near_pairs([info.phash for _, info in kept], near_threshold)
    groups = []
    for members in groups_of(len(kept), pairs):
        counts = Counter(kept[i][0].label for i in members)
        first = kept[members[0]][0].key
        order = hashlib.sha256(f"{seed}\n{first}".encode()).hexdigest()
        groups.append(_Group(tuple(members), dict(counts), order))
    return sorted(groups, key=lambda g: (-len(g.members), g.order))


def _assign(groups: Sequence[_Group], targets: dict[str, dict[str, int]]) -> list[str]:
    """Return each group's split: where it reduces the weighed squared gap to the targets most."""
    filled = {split: Counter[str]() for split in SPLITS}
    chosen = []
    for group in groups:
        split = max(SPLITS, key=lambda s: (_gain(group, targets, filled[s], s), -SPLITS.index(s)))
        filled[split].update(group.counts)
        chosen.append(split)
    return chosen


def _gain(
    group: _Group, targets: dict[str, dict[str, int]], filled: Counter[str], split: str
) -> float:
    """How much closer to its targets ``split`` gets with ``group``, relative to their size.

    The gap of each class is weighed by its target (a chi-square-like distance), so every
    split fills at the same pace and large groups spread over all splits instead of all going
    to the largest one.
    """
    gain = 0.0
    for label, count in group.counts.items():
        target = targets[label][split]
        gap = target - filled[label]
        gain += count * (2 * gap - count) / max(target, 0.5)  # (gap**2 - (gap - count)**2) / t
    return gain


def _manifest_items(
    kept: Sequence[tuple[Item, ImageInfo]], groups: Sequence[_Group], assigned: Sequence[str]
) -> tuple[ManifestItem, ...]:
    items = []
    for group, split in zip(groups, assigned, strict=True):
        name = kept[group.members[0]][0].key
        for index in group.members:
            item, info = kept[index]
            assert info.sha256 is not None  # usable images were read
            items.append(ManifestItem(item.key, item.label, split, info.sha256, info.size, name))
    return tuple(sorted(items, key=lambda i: i.path))


def _tiny_class_warnings(targets: dict[str, dict[str, int]]) -> list[str]:
    warnings = []
    for label, per_split in targets.items():
        empty = [s for s in SPLITS if per_split[s] == 0 and s != "train"]
        total = sum(per_split.values())
        if empty and total < len(SPLITS):
            warnings.append(
                f"class '{label}' has {plural(total, 'image')}, fewer than the {len(SPLITS)} "
                f"splits: {' and '.join(empty)} get none of it, so it cannot be evaluated; "
                "add images"
            )
    return warnings


def _deviation_warnings(
    manifest: Manifest, targets: dict[str, dict[str, int]], groups: Sequence[_Group]
) -> list[str]:
    """Where keeping groups together pushed a class far from its intended split sizes."""
    counts = manifest.counts()
    largest = max(len(g.members) for g in groups)
    warnings = []
    for label, per_split in targets.items():
        for split in SPLITS:
            got, wanted = counts[split][label], per_split[split]
            if abs(got - wanted) > max(2, wanted // 5):
                warnings.append(
                    f"class '{label}': {split} has {got} images instead of {wanted}, because "
                    f"groups stay together (the largest holds {largest}); consider a lower "
                    "near-duplicate threshold or finer groups"
                )
    return warnings


__all__ = ["SplitResult", "split_dataset", "split_targets"]
