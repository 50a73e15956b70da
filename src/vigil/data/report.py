"""The human-readable form of a :class:`~vigil.data.check.CheckReport`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vigil.data.check import CheckReport, Finding

TRAIT_NAMES = {
    "cmyk": "CMYK",
    "greyscale": "greyscale",
    "16-bit": "16-bit",
    "alpha": "with alpha",
    "exif-rotated": "EXIF-rotated",
}


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """Return ``"1 image"`` or ``"3 images"`` (``nouns``: an irregular plural)."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {nouns or noun + 's'}"


def report_lines(report: CheckReport, limit: int) -> list[str]:
    """Return the report as lines of text, at most ``limit`` files listed per finding."""
    lines = _header(report)
    lines += _section(
        "cannot be decoded (left out)", [_finding(f) for f in report.unreadable], limit
    )
    lines += _section(
        "truncated JPEGs (usable; the missing part is grey)", list(report.truncated), limit
    )
    lines += _groups("exact duplicates (same bytes)", report.exact_duplicates, " = ", limit)
    lines += _groups(
        f"near duplicates (perceptual hashes within {report.near_threshold} bits)",
        report.near_duplicates,
        " ~ ",
        limit,
    )
    lines += _groups("same image under different labels", report.label_conflicts, " = ", limit)
    lines += _section(
        f"tiny (shorter side under {report.min_side} px)", [_finding(f) for f in report.tiny], limit
    )
    lines += _odd(report, limit)
    lines += _section("entries skipped", [_finding(f) for f in report.skipped], limit)
    if report.imbalance_ratio is not None:
        lines.append(f"imbalance (largest / smallest class): {report.imbalance_ratio:.1f} : 1")
    lines += [f"warning: {warning}" for warning in report.warnings]
    lines.append(_verdict(report))
    return lines


def _header(report: CheckReport) -> list[str]:
    total = report.usable_images
    lines = [
        f"{report.source} ({report.kind}): {plural(report.images, 'image')}, "
        f"{plural(len(report.counts), 'class', 'classes')}"
    ]
    width = max([len("class"), *(len(label) for label in report.counts)])
    lines.append(f"  {'class':<{width}}  {'images':>7}  {'share':>6}")
    for label, count in report.counts.items():
        share = f"{count / total:.1%}" if total else "-"
        lines.append(f"  {label:<{width}}  {count:>7,}  {share:>6}")
    return lines


def _section(title: str, entries: Sequence[str], limit: int) -> list[str]:
    if not entries:
        return []
    shown = [f"  {entry}" for entry in entries[:limit]]
    if len(entries) > limit:
        shown.append(f"  ... and {len(entries) - limit} more (--json lists all)")
    return [f"{title}: {len(entries)}", *shown]


def _groups(title: str, groups: Sequence[Sequence[str]], joint: str, limit: int) -> list[str]:
    if not groups:
        return []
    files = sum(len(group) for group in groups)
    lines = _section(title, [joint.join(group) for group in groups], limit)
    lines[0] = f"{title}: {plural(len(groups), 'group')}, {files} files"
    return lines


def _odd(report: CheckReport, limit: int) -> list[str]:
    present = {trait: keys for trait, keys in report.odd.items() if keys}
    if not present:
        return []
    summary = ", ".join(f"{len(keys)} {TRAIT_NAMES[trait]}" for trait, keys in present.items())
    lines = [f"converted when read (fine to train on): {summary}"]
    for trait, keys in present.items():
        more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
        lines.append(f"  {TRAIT_NAMES[trait]}: {', '.join(keys[:limit])}{more}")
    return lines


def _finding(finding: Finding) -> str:
    return f"{finding.key}: {finding.detail}"


def _verdict(report: CheckReport) -> str:
    if report.problem is not None:
        return f"verdict: NOT usable: {report.problem}"
    classes = sum(1 for n in report.counts.values() if n > 0)
    images = plural(report.usable_images, "image")
    return f"verdict: usable: {images} in {plural(classes, 'class', 'classes')}"


__all__ = ["plural", "report_lines"]
