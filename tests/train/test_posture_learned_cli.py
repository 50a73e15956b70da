"""``vigil train posture``: train, compare with the rules, register, report; bad inputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import vigil.models as registry
from tests.cli import VigilRunner
from tests.train.test_posture_learned_records import BERLIN, range_lines, synthetic_records

# Upright, a mild slouch the user counts as hunched, hunched forward, standing.
DAY = ["upright", "slouch", "hunched", "standing"] * 5


@pytest.fixture
def local_berlin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Local time is Berlin's, so ranges written as times of day are read in it."""
    monkeypatch.setenv("TZ", "Europe/Berlin")


def jittered_copy(source: Path, target: Path, pixels: float, seed: int = 1) -> Path:
    """The same records with every keypoint moved by a little noise (a second camera)."""
    rng = np.random.default_rng(seed)
    lines = []
    for text in source.read_text().splitlines():
        line = json.loads(text)
        for point in line["keypoints"]:
            point["x"] = round(point["x"] + rng.normal(0, pixels), 1)
            point["y"] = round(point["y"] + rng.normal(0, pixels), 1)
        lines.append(json.dumps(line))
    target.write_text("\n".join(lines) + "\n")
    return target


@pytest.fixture
def day(tmp_path: Path, local_berlin: None) -> dict[str, Path]:
    """Records of a day (and a jittered copy) with its time ranges and a label map."""
    records = tmp_path / "day.jsonl"
    spans = synthetic_records(records, DAY, seconds=8, seed=3, nobody_every=9)
    ranges = tmp_path / "ranges.txt"
    ranges.write_text("\n".join(["# what I did", *range_lines(spans, BERLIN)]) + "\n")
    label_map = tmp_path / "map.yaml"
    label_map.write_text("slouch: hunched\n")
    return {
        "records": records,
        "copy": jittered_copy(records, tmp_path / "copy.jsonl", pixels=2.0),
        "ranges": ranges,
        "map": label_map,
    }


def test_train_compare_register_and_report(
    vigil: VigilRunner, day: dict[str, Path], tmp_path: Path
) -> None:
    result = vigil(
        "train", "posture",
        "--records", day["records"], day["copy"],
        "--ranges", day["ranges"],
        "--label-map", day["map"],
        "--name", "desk-posture",
        "--block-seconds", "8",
        "--stage", "production",
        "--out", tmp_path / "out" / "report.html",
    )  # fmt: skip
    assert result.status == 0, result.stderr
    out = result.stdout
    assert "records: 640 in 2 file(s); 570 labelled and used (left out: 70 no person)" in out
    learned, rules = (float(x) for x in re.search(r"accuracy +([\d.]+) +([\d.]+)", out).groups())
    assert learned >= 0.95
    assert rules < 0.85  # the thresholds call the slouch upright
    hunched = re.search(r"recall sitting_hunched +([\d.]+) +([\d.]+)", out)
    assert hunched is not None and float(hunched[1]) > float(hunched[2])
    assert "registered desk-posture:1" in out
    assert "desk-posture@production now points at desk-posture:1" in out
    version = registry.get("desk-posture@production")
    assert [r["path"] for r in version.lineage["records"]] == [
        str(day["records"].resolve()),
        str(day["copy"].resolve()),
    ]
    assert version.lineage["labels"]["path"] == str(day["ranges"])
    html = (tmp_path / "out" / "report.html").read_text()
    for part in (
        "Learned classifier: confusion matrix",
        "Angle rules: confusion matrix",
        "Recall per class",
        "Where they disagree",
        "day.jsonl",
        "slouch",  # the label map, in the labels' lineage
    ):
        assert part in html, part
    assert not re.search(r"<(script|link|img)\b", html), "the report must need no other file"
    assert "report: " in out


def test_labels_from_a_csv_of_frame_numbers(
    vigil: VigilRunner, day: dict[str, Path], tmp_path: Path
) -> None:
    lines = [json.loads(t) for t in day["records"].read_text().splitlines()]
    labels = tmp_path / "labels.csv"
    rows = [f"{line['frame']},{DAY[line['frame'] // 16]}" for line in lines]
    labels.write_text("frame,label\n" + "\n".join(rows) + "\n")
    result = vigil(
        "train", "posture", "--records", day["records"], "--labels", labels,
        "--label-map", day["map"], "--name", "by-frame", "--block-seconds", "8",
        "--algorithm", "boosting", "--out", tmp_path / "r.html",
    )  # fmt: skip
    assert result.status == 0, result.stderr
    assert "model: gradient boosting" in result.stdout
    assert registry.get("by-frame").tags["algorithm"] == "boosting"
    assert registry.get("by-frame").lineage["labels"]["kind"] == "csv"


def test_the_rules_compared_are_those_of_a_posture_config(
    vigil: VigilRunner, day: dict[str, Path], tmp_path: Path
) -> None:
    def rules_accuracy(*extra: object) -> float:
        result = vigil(
            "train", "posture", "--records", day["records"], "--ranges", day["ranges"],
            "--label-map", day["map"], "--name", "desk", "--block-seconds", "8",
            "--out", tmp_path / "r.html", *extra,
        )  # fmt: skip
        assert result.status == 0, result.stderr
        found = re.search(r"accuracy +([\d.]+) +([\d.]+)", result.stdout)
        assert found is not None
        return float(found[2])

    config = tmp_path / "strict.yaml"
    config.write_text("rules:\n  hunch_torso_deg: 8\n")  # catches the slouch's 9-14 degrees
    assert rules_accuracy() < 0.85
    assert rules_accuracy("--config", config) > 0.95


@pytest.mark.parametrize(
    "case",
    [
        (["--ranges", "{ranges}", "--name", "n"], 2, "no records given: pass --records"),
        (
            ["--records", "{missing}", "--ranges", "{ranges}", "--name", "n"],
            1,
            "records file not found",
        ),
        (
            ["--records", "{records}", "--range", "03:00-04:00 hunched", "--name", "n"],
            2,
            "no labelled record to learn from",
        ),
        (
            ["--records", "{records}", "--ranges", "{ranges}", "--name", "n"],
            2,
            "unknown posture label 'slouch'",
        ),
        (
            ["--records", "{records}", "--range", "10:00 to 11:00 upright", "--name", "n"],
            2,
            "--range: '10:00 to 11:00 upright' is not a time range",
        ),
        (
            ["--records", "{records}", "--name", "n"],
            2,
            "give labels in one way",
        ),
        (
            ["--records", "{records}", "--ranges", "{ranges}", "--range", "10:00-11:00 upright",
             "--name", "n"],
            2,
            "give labels in one way",
        ),
        (
            ["--records", "{records}", "--ranges", "{ranges}", "--label-map", "{map}",
             "--name", "n", "--test-fraction", "2"],
            2,
            "command line: 'test_fraction'",
        ),
        (
            ["--records", "{records}", "--ranges", "{ranges}", "--label-map", "{map}",
             "--name", "no good!"],
            1,
            "'no good!' cannot name a model",
        ),
    ],
)  # fmt: skip
def test_bad_inputs_end_in_one_line(
    vigil: VigilRunner, day: dict[str, Path], tmp_path: Path, case: tuple[list[str], int, str]
) -> None:
    arguments, status, message = case
    paths = {key: str(path) for key, path in day.items()} | {"missing": str(tmp_path / "no.jsonl")}
    result = vigil("train", "posture", *(a.format(**paths) for a in arguments))
    assert message in result.single_error()
    assert result.status == status
    assert registry.list() == []
