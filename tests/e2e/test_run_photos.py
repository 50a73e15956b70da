"""``vigil run posture`` over photos: a folder, a glob and one image, JSON lines on stdout.

``labels.csv`` beside the photos says what each shows: upright, reclined and feet tucked under
the chair are sitting and not hunched; hunched forward is sitting and hunched.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli import VigilRunner
from tests.e2e.support import PHOTOS, db_records, sqlite_url

EXPECTED = {  # label -> (state, hunched)
    "upright": ("sitting", False),
    "reclined": ("sitting", False),
    "upright_legs_folded": ("sitting", False),
    "hunched_forward": ("sitting", True),
}


@pytest.fixture
def photos(shared_data: Path) -> Path:
    return shared_data / PHOTOS


def labels(folder: Path) -> dict[str, str]:
    """Photo file name -> posture label."""
    with (folder / "labels.csv").open(newline="", encoding="utf-8") as handle:
        return {row["file"]: row["posture"] for row in csv.DictReader(handle)}


def json_lines(stdout: str) -> list[dict[str, Any]]:
    """Every line of standard output, each of which must be one JSON object."""
    return [json.loads(line) for line in stdout.splitlines()]


def check_against_labels(lines: list[dict[str, Any]], folder: Path) -> None:
    known = labels(folder)
    for line in lines:
        name = Path(line["image"]).name
        assert line["person"] is True, name
        assert (line["state"], line["hunched"]) == EXPECTED[known[name]], name


def test_a_folder_gives_one_line_per_photo_as_labelled(
    vigil: VigilRunner, photos: Path, tmp_path: Path
) -> None:
    database = tmp_path / "photos.db"
    result = vigil(
        "run", "posture", "--source", photos, "--jsonl", "-", "--database", sqlite_url(database)
    )
    assert result.status == 0, result.stderr
    lines = json_lines(result.stdout)
    assert sorted(Path(line["image"]).name for line in lines) == sorted(labels(photos))
    assert all(Path(line["image"]).parent == photos for line in lines)
    assert [line["frame"] for line in lines] == list(range(len(lines)))
    check_against_labels(lines, photos)
    assert "processed 6 frames" in result.stderr, "the run report goes to stderr, not the lines"
    records = db_records(database)
    assert len(records) == len(lines)
    assert [bool(r["hunched"]) for r in records] == [line["hunched"] for line in lines]


def test_a_glob_picks_the_matching_photos(vigil: VigilRunner, photos: Path) -> None:
    result = vigil("run", "posture", "--source", photos / "*flip*.jpg", "--jsonl", "-")
    assert result.status == 0, result.stderr
    lines = json_lines(result.stdout)
    expected = sorted(name for name in labels(photos) if "flip" in name)
    assert len(expected) >= 2
    assert sorted(Path(line["image"]).name for line in lines) == expected
    check_against_labels(lines, photos)


def test_one_photo(vigil: VigilRunner, photos: Path) -> None:
    hunched = next(name for name, label in labels(photos).items() if label == "hunched_forward")
    result = vigil("run", "posture", "--source", photos / hunched, "--jsonl", "-")
    assert result.status == 0, result.stderr
    lines = json_lines(result.stdout)
    assert [Path(line["image"]).name for line in lines] == [hunched]
    check_against_labels(lines, photos)
    assert lines[0]["keypoints"] and lines[0]["side"] in {"left", "right"}
