"""Bringing data: a folder of class folders, a CSV of path,label, a Label Studio export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.data.support import (
    class_folders,
    label_studio_task,
    write_csv,
    write_json,
    write_photo,
)
from vigil.data import ImportOptions, load_dataset
from vigil.data.labelstudio import resolve_image
from vigil.errors import ConfigError, SourceError


def test_folder_of_class_folders(tmp_path: Path) -> None:
    root = class_folders(tmp_path / "data", {"no_hardhat": 2, "hardhat": 3})
    write_photo(root / "hardhat" / "site2" / "deep.jpg", 99)
    (root / "hardhat" / "notes.txt").write_text("taken on Monday")
    (root / "hardhat" / ".DS_Store").write_bytes(b"\0")
    (root / ".cache").mkdir()
    write_photo(root / ".cache" / "thumb.jpg", 98)

    dataset = load_dataset(root)

    assert dataset.kind == "folder"
    assert dataset.classes == ("hardhat", "no_hardhat")
    assert dataset.counts() == {"hardhat": 4, "no_hardhat": 2}
    keys = [item.key for item in dataset.items]
    assert keys == sorted(keys)
    assert "hardhat/site2/deep.jpg" in keys
    assert all(item.path == root / item.key for item in dataset.items)
    assert [(s.where, s.reason) for s in dataset.skipped] == [
        ("hardhat/notes.txt", "not an image file type (.txt)")
    ]
    assert load_dataset(root) == dataset


def test_an_empty_class_folder_is_noted(tmp_path: Path) -> None:
    root = class_folders(tmp_path / "data", {"cat": 2, "dog": 1})
    (root / "bird").mkdir()
    dataset = load_dataset(root)
    assert dataset.classes == ("cat", "dog")
    assert ("bird/", "class folder holds no images") in [
        (s.where, s.reason) for s in dataset.skipped
    ]


def _missing(tmp: Path) -> Path:
    return tmp / "missing"


def _empty(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def _flat(tmp: Path) -> Path:
    return write_photo(tmp / "flat" / "a.jpg", 1).parent


def _only_empty_class(tmp: Path) -> Path:
    (tmp / "data" / "cat").mkdir(parents=True)
    return tmp / "data"


def _one_image(tmp: Path) -> Path:
    return write_photo(tmp / "one.jpg", 1)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_missing, "does not exist"),
        (_empty, "has no class sub-folders: put each class"),
        (_flat, r"has no class sub-folders \(found 1 image directly in it\)"),
        (_only_empty_class, r"no labelled images .*cat/: class folder holds no images"),
        (_one_image, "is not a folder, .csv or .json"),
    ],
)
def test_folder_mistakes(tmp_path: Path, make: Callable[[Path], Path], message: str) -> None:
    with pytest.raises(SourceError, match=message):
        load_dataset(make(tmp_path))


def test_csv_with_default_columns_groups_and_times(tmp_path: Path) -> None:
    for n in range(4):
        write_photo(tmp_path / "img" / f"{n}.jpg", n)
    rows = [
        {"file": "img/0.jpg", "class": "empty", "site": "A", "taken": "2026-05-01T10:00:00+00:00"},
        {"file": "img/1.jpg", "class": "leopard", "site": "A", "taken": "1777629600"},
        {"file": "img/2.jpg", "class": "empty", "site": "B", "taken": ""},
        {"file": "img/3.jpg", "class": "", "site": "B", "taken": ""},
        {"file": "img/0.jpg", "class": "leopard", "site": "A", "taken": ""},
    ]
    csv = write_csv(tmp_path / "labels.csv", rows, ["file", "class", "site", "taken"])

    dataset = load_dataset(csv, ImportOptions(group_column="site", time_column="taken"))

    assert dataset.kind == "csv"
    assert [(i.key, i.label, i.group) for i in dataset.items] == [
        ("img/0.jpg", "empty", "A"),
        ("img/1.jpg", "leopard", "A"),
        ("img/2.jpg", "empty", "B"),
    ]
    assert dataset.items[0].time == 1777629600.0
    assert dataset.items[1].time == 1777629600.0
    assert dataset.items[2].time is None
    reasons = [(s.where, s.reason) for s in dataset.skipped]
    assert ("labels.csv line 5", "no label") in reasons
    assert ("img/0.jpg", "listed again as 'leopard'; kept the first ('empty')") in reasons


def test_csv_named_columns_and_paths_outside_its_folder(tmp_path: Path) -> None:
    write_photo(tmp_path / "photos" / "a.jpg", 1)
    write_photo(tmp_path / "photos" / "b.jpg", 2)
    (tmp_path / "lists").mkdir()
    rows = [
        {"img": "../photos/a.jpg", "md_class": "animal"},
        {"img": "../photos/b.jpg", "md_class": "empty"},
    ]
    csv = write_csv(tmp_path / "lists" / "set.csv", rows, ["img", "md_class"])

    dataset = load_dataset(csv, ImportOptions(path_column="img", label_column="md_class"))

    assert [i.key for i in dataset.items] == ["../photos/a.jpg", "../photos/b.jpg"]
    assert dataset.items[0].path.resolve() == (tmp_path / "photos" / "a.jpg").resolve()


@pytest.mark.parametrize(
    ("text", "options", "error", "message"),
    [
        (
            "file,species\na.jpg,cat\n",
            {},
            SourceError,
            r"has no label column \(columns: file, species\)",
        ),
        ("name,label\na.jpg,cat\n", {}, SourceError, "has no path column"),
        ("path,label\na.jpg,cat\n", {"label_column": "kind"}, ConfigError, "no column 'kind'"),
        ("", {}, SourceError, "is empty: the first line must name the columns"),
        (
            "path,label,t\na.jpg,cat,yesterday\n",
            {"time_column": "t"},
            SourceError,
            "time 'yesterday'",
        ),
        ('path,label\n"a.jpg,cat\n', {}, SourceError, "no labelled images"),
    ],
)
def test_csv_mistakes(
    tmp_path: Path, text: str, options: dict[str, str], error: type[Exception], message: str
) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text(text)
    with pytest.raises(error, match=message):
        load_dataset(csv, ImportOptions(**options))


def test_csv_that_is_not_text(tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_bytes(b"path,label\n\xff\xfe\x00a.jpg,cat\n")
    with pytest.raises(SourceError, match="is not UTF-8 text"):
        load_dataset(csv)


def test_label_studio_export(tmp_path: Path) -> None:
    media = tmp_path / "media"
    write_photo(media / "photos" / "a.jpg", 1)
    write_photo(media / "upload" / "3" / "1f2e-b.jpg", 2)
    write_photo(media / "c d.jpg", 3)
    tasks = [
        label_studio_task(1, "/data/local-files/?d=photos/a.jpg", [["hardhat"]], site="north"),
        label_studio_task(2, "/data/upload/3/1f2e-b.jpg", [["no_hardhat"], ["no_hardhat"]]),
        label_studio_task(3, "c%20d.jpg", [["hardhat"]]),
        label_studio_task(4, "http://localhost:8080/data/upload/3/1f2e-b.jpg", [["hardhat"]]),
        label_studio_task(5, "/data/local-files/?d=photos/a.jpg", None),
        label_studio_task(6, "/data/local-files/?d=photos/a.jpg", [["hardhat"], ["no_hardhat"]]),
        label_studio_task(7, "/data/local-files/?d=photos/a.jpg", [["hardhat", "no_hardhat"]]),
        label_studio_task(8, "https://example.com/x.jpg", [["hardhat"]]),
    ]
    tasks[2]["data"]["image"] = "c d.jpg"
    tasks.append(label_studio_task(9, "/data/local-files/?d=photos/a.jpg", [["no_hardhat"]]))
    tasks[-1]["annotations"][0]["was_cancelled"] = True
    export = write_json(tmp_path / "export.json", tasks)

    dataset = load_dataset(export, ImportOptions(root=str(media), group_column="site"))

    assert dataset.kind == "label-studio"
    assert [(i.key, i.label, i.group) for i in dataset.items] == [
        ("c d.jpg", "hardhat", None),
        ("photos/a.jpg", "hardhat", "north"),
        ("upload/3/1f2e-b.jpg", "no_hardhat", None),
    ]
    reasons = dict((s.where, s.reason) for s in dataset.skipped)
    assert reasons["task 5"] == "no annotation with a choice"
    assert reasons["task 6"] == "annotators disagree (hardhat, no_hardhat)"
    assert reasons["task 7"].startswith("several classes chosen")
    assert reasons["task 8"] == "remote image https://example.com/x.jpg: download it first"
    assert reasons["task 9"] == "no annotation with a choice"
    assert "listed again" in reasons["upload/3/1f2e-b.jpg"]


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ("media/upload/3/x.jpg", "media/upload/3/x.jpg"),
        ("media/3/x.jpg", "media/3/x.jpg"),
        ("media/x.jpg", "media/x.jpg"),
        (None, "media/upload/3/x.jpg"),
    ],
)
def test_label_studio_upload_paths(tmp_path: Path, layout: str | None, expected: str) -> None:
    if layout:
        write_photo(tmp_path / layout, 1)
    assert resolve_image("/data/upload/3/x.jpg", tmp_path / "media") == tmp_path / expected


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "line 1: not valid JSON"),
        ('{"tasks": []}', "expected a list of tasks, got a dict"),
        ('[{"id": 4, "data": {"text": "hi"}}]', r"task 4: no 'data.image' image URL"),
        (
            '[{"id": 4, "data": {"image": "a.jpg"}, "annotations": {}}]',
            "'annotations' must be a list",
        ),
        (
            '[{"data": {"image": "a.jpg"}, "annotations": [{"result": 3}]}]',
            "task #1: an annotation's 'result'",
        ),
        (
            '[{"data": {"image": "a.jpg"}, '
            '"annotations": [{"result": [{"value": {"choices": "cat"}}]}]}]',
            "must be a list of class names",
        ),
        ("[]", "no labelled images"),
    ],
)
def test_malformed_label_studio_exports(tmp_path: Path, document: str, message: str) -> None:
    export = tmp_path / "export.json"
    export.write_text(document)
    with pytest.raises(SourceError, match=message):
        load_dataset(export)


def test_group_pattern_names_groups_from_paths(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_photo(root / "leopard" / "site1_0001.jpg", 1)
    write_photo(root / "leopard" / "site2_0001.jpg", 2)
    write_photo(root / "empty" / "site1_0002.jpg", 3)
    write_photo(root / "empty" / "other.jpg", 4)

    dataset = load_dataset(root, ImportOptions(group_pattern=r"/(site\d+)_"))

    assert {i.key: i.group for i in dataset.items} == {
        "empty/other.jpg": None,
        "empty/site1_0002.jpg": "site1",
        "leopard/site1_0001.jpg": "site1",
        "leopard/site2_0001.jpg": "site2",
    }
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        load_dataset(root, ImportOptions(group_pattern="(site"))
