"""The registry with its store: versions, immutability, tags, stages, removal, garbage collection.

Every test runs on SQLite and on a real PostgreSQL server (the ``models`` fixture).
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from tests.models.support import sha256, write_model
from vigil.errors import ConfigError, ModelError
from vigil.models.api import Models
from vigil.models.spec import ModelSpec
from vigil.models.store import LocalBlobStore


def blobs(store: LocalBlobStore) -> list[str]:
    return [blob.sha256 for blob in store.blobs()]


def test_versions_are_numbered_1_2_3_per_name(models: Models, tmp_path: Path) -> None:
    numbers = [
        models.register(write_model(tmp_path / f"m{i}.onnx"), "desk-pose", task="pose").version
        for i in range(3)
    ]
    other = models.register(write_model(tmp_path / "c.tflite"), "birds", task="classify")

    assert numbers == [1, 2, 3]
    assert other.version == 1
    listed = models.versions()
    assert [(v.name, v.version, v.latest) for v in listed] == [
        ("birds", 1, True),
        ("desk-pose", 1, False),
        ("desk-pose", 2, False),
        ("desk-pose", 3, True),
    ]


def test_a_version_number_is_never_reused_after_removal(models: Models, tmp_path: Path) -> None:
    models.register(write_model(tmp_path / "a.onnx"), "m", task="detect")
    models.register(write_model(tmp_path / "b.onnx"), "m", task="detect")
    models.remove("m:2")

    again = models.register(write_model(tmp_path / "c.onnx"), "m", task="detect")

    assert again.version == 3
    assert [v.version for v in models.versions("m")] == [1, 3]


def test_a_version_is_immutable_and_keeps_its_file(models: Models, tmp_path: Path) -> None:
    source = write_model(tmp_path / "pose.onnx", b"first weights" * 100)
    first = models.register(source, "pose", task="pose", tags={"stage": "trial"})
    source.chmod(stat.S_IWUSR | stat.S_IRUSR)
    source.write_bytes(b"retrained weights" * 100)  # same path, new content
    second = models.register(source, "pose", task="pose", labels=["person"])

    again = models.get("pose:1")
    assert (again.sha256, again.size, again.spec, again.tags) == (
        first.sha256,
        first.size,
        first.spec,
        {"stage": "trial"},
    )
    assert again.created == first.created
    assert again.path is not None and again.path.read_bytes() == b"first weights" * 100
    assert second.sha256 == sha256(b"retrained weights" * 100)
    assert not os.access(again.path, os.W_OK) or os.geteuid() == 0  # root ignores modes
    assert stat.S_IMODE(again.path.stat().st_mode) & 0o222 == 0


def test_the_record_round_trips_every_field(models: Models, tmp_path: Path) -> None:
    source = write_model(tmp_path / "net.tflite")
    spec = ModelSpec(task="classify", labels=["cat", "dog"], top_k=2, score_threshold=0.4)
    version = models.register(
        source,
        "pets",
        spec=spec,
        tags={"site": "barn", "camera": "cam-2"},
        description="cats and dogs",
        metrics={"top1": 0.91, "top5": 0.99},
        lineage={"dataset": "sha256:" + "ab" * 32, "parent": "base:3", "command": "vigil train"},
    )

    got = models.get("pets")
    assert got.to_dict() == {**version.to_dict(), "path": str(got.path)}
    assert got.spec == spec
    assert got.format == "tflite" and got.file_name == "net.tflite"
    assert got.metrics == {"top1": 0.91, "top5": 0.99}
    assert got.lineage["parent"] == "base:3"
    assert got.description == "cats and dogs"
    assert got.size == source.stat().st_size


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"site": "barn"}, ["a:1", "b:1"]),
        ({"site": "barn", "camera": "north"}, ["a:1"]),
        ({"site": "field"}, ["b:2"]),
        ({"site": "nowhere"}, []),
        ({}, ["a:1", "b:1", "b:2"]),
    ],
)
def test_tag_filters_need_every_tag(
    models: Models, tmp_path: Path, tags: dict[str, str], expected: list[str]
) -> None:
    models.register(
        write_model(tmp_path / "1.onnx"),
        "a",
        task="detect",
        tags={"site": "barn", "camera": "north"},
    )
    models.register(write_model(tmp_path / "2.onnx"), "b", task="pose", tags={"site": "barn"})
    models.register(write_model(tmp_path / "3.onnx"), "b", task="pose", tags={"site": "field"})

    assert [v.ref for v in models.versions(tags=tags)] == expected


def test_task_and_name_filters(models: Models, tmp_path: Path) -> None:
    models.register(write_model(tmp_path / "1.onnx"), "det", task="detect")
    models.register(write_model(tmp_path / "2.onnx"), "pose", task="pose")
    models.register(write_model(tmp_path / "3.onnx"), "pose", task="pose")

    assert [v.ref for v in models.versions(task="pose")] == ["pose:1", "pose:2"]
    assert [v.ref for v in models.versions(task="classify")] == []
    assert [v.ref for v in models.versions("det")] == ["det:1"]
    with pytest.raises(ConfigError, match="task must be one of"):
        models.versions(task="segment")


def test_promote_points_a_stage_at_a_version_and_re_points_it(
    models: Models, tmp_path: Path
) -> None:
    for i in range(3):
        models.register(write_model(tmp_path / f"{i}.onnx"), "m", task="pose")

    assert models.promote("m:1", "production").aliases == ("production",)
    models.promote("m:2", "staging")
    assert models.get("m@production").version == 1
    assert models.get("m@staging").version == 2

    models.promote("m@staging", "production")  # staging's version goes to production
    assert models.get("m@production").version == 2
    assert models.get("m:1").aliases == ()
    assert models.get("m:2").aliases == ("production", "staging")
    assert models.get("m").version == 3  # a bare name is the latest
    assert models.promote("m", "canary").version == 3


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ("latest", "'latest' always means the newest version"),
        ("Production", "cannot name a stage"),
        ("prod stage", "cannot name a stage"),
        ("", "cannot name a stage"),
    ],
)
def test_bad_stage_names_are_refused(
    models: Models, tmp_path: Path, stage: str, message: str
) -> None:
    models.register(write_model(tmp_path / "m.onnx"), "m", task="pose")
    with pytest.raises(ModelError, match=message):
        models.promote("m:1", stage)


def test_same_file_twice_is_stored_once(
    models: Models, store: LocalBlobStore, tmp_path: Path
) -> None:
    first = write_model(tmp_path / "a" / "model.onnx", b"weights" * 50)
    copy = write_model(tmp_path / "b" / "renamed.onnx", b"weights" * 50)

    v1 = models.register(first, "one", task="detect")
    v2 = models.register(first, "one", task="detect")
    other = models.register(copy, "two", task="detect")

    assert v1.sha256 == v2.sha256 == other.sha256 == sha256(b"weights" * 50)
    assert blobs(store) == [v1.sha256]
    digest = v1.sha256
    blob = store.root / "sha256" / digest[:2] / digest[2:]
    assert v1.path == blob.with_name(blob.name + ".onnx")  # the suffix runtimes go by
    assert v1.path.stat().st_ino == blob.stat().st_ino  # a link, not a copy
    assert other.file_name == "renamed.onnx"


def test_removing_deletes_a_file_only_when_nothing_uses_it(
    models: Models, store: LocalBlobStore, tmp_path: Path
) -> None:
    shared = write_model(tmp_path / "shared.onnx", b"shared" * 40)
    own = write_model(tmp_path / "own.onnx", b"own" * 40)
    models.register(shared, "a", task="pose")
    models.register(shared, "b", task="pose")
    models.register(own, "b", task="pose")

    removal = models.remove("a:1")
    assert [v.ref for v in removal.versions] == ["a:1"]
    assert removal.freed == []  # b:1 still uses it
    assert sorted(blobs(store)) == sorted([sha256(b"shared" * 40), sha256(b"own" * 40)])

    whole = models.remove("b")
    assert [v.ref for v in whole.versions] == ["b:1", "b:2"]
    assert sorted(whole.freed) == sorted([sha256(b"shared" * 40), sha256(b"own" * 40)])
    assert blobs(store) == []
    assert models.versions() == []
    assert models.registry.names() == ["a"]  # a's numbering lives on; b is gone


def test_a_staged_version_is_kept_unless_forced(models: Models, tmp_path: Path) -> None:
    models.register(write_model(tmp_path / "1.onnx"), "m", task="pose")
    models.register(write_model(tmp_path / "2.onnx"), "m", task="pose")
    models.promote("m:1", "production")

    with pytest.raises(ModelError, match=r"m:1 is production: promote another version first"):
        models.remove("m:1")
    with pytest.raises(ModelError, match=r"m:1 is production"):
        models.remove("m")  # the whole model holds it too
    assert [v.ref for v in models.versions()] == ["m:1", "m:2"]

    models.remove("m@production", force=True)
    assert [v.ref for v in models.versions()] == ["m:2"]
    with pytest.raises(ModelError, match="has no alias 'production'"):
        models.get("m@production")


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("desk-poes", "no model named 'desk-poes' in the registry; did you mean 'desk-pose'?"),
        ("zebra", "no model named 'zebra' in the registry; registered models: birds, desk-pose"),
        ("desk-pose:7", "model 'desk-pose' has no version 7; its versions: 1, 2"),
        ("desk-pose@prod", "model 'desk-pose' has no alias 'prod'; did you mean 'production'?"),
        ("birds@production", "model 'birds' has no alias 'production'; it has none"),
    ],
)
def test_unknown_references_say_what_exists(
    models: Models, tmp_path: Path, ref: str, message: str
) -> None:
    models.register(write_model(tmp_path / "1.onnx"), "desk-pose", task="pose")
    models.register(write_model(tmp_path / "2.onnx"), "desk-pose", task="pose")
    models.register(write_model(tmp_path / "3.onnx"), "birds", task="classify")
    models.promote("desk-pose:2", "production")

    with pytest.raises(ModelError) as caught:
        models.get(ref)
    assert str(caught.value).startswith(message)


def test_an_empty_registry_says_how_to_fill_it(models: Models) -> None:
    with pytest.raises(ModelError, match="the registry is empty"):
        models.get("anything")


def test_labels_from_a_file_end_up_in_the_spec(models: Models, tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("background\nperson\nhard hat\n\n")
    version = models.register(
        write_model(tmp_path / "ppe.tflite"), "ppe", task="detect", labels=labels
    )
    assert version.spec.labels == ["background", "person", "hard hat"]
    assert models.get("ppe:1").spec.labels == ["background", "person", "hard hat"]


def test_a_spec_file_and_a_spec_beside_the_model_are_read(models: Models, tmp_path: Path) -> None:
    source = write_model(tmp_path / "ssd.tflite")
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text("task: detect\ndecoder: ssd\nlabel_offset: 1\n")
    from_file = models.register(source, "ssd", spec=spec_file)
    (tmp_path / "ssd.tflite.vigil.yaml").write_text("task: detect\nscore_threshold: 0.6\n")
    beside = models.register(source, "ssd")

    assert (from_file.spec.decoder, from_file.spec.label_offset) == ("ssd", 1)
    assert beside.spec.score_threshold == 0.6


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"name": "bad name"}, ModelError, "cannot name a model"),
        ({"name": "x" * 65}, ModelError, "cannot name a model"),
        ({"task": None}, ModelError, "give a task"),
        ({"task": "segment"}, ConfigError, "task must be one of"),
        ({"tags": {"bad key!": "v"}}, ModelError, "tag name 'bad key!' is not valid"),
        ({"tags": {"k": "v" * 300}}, ModelError, "longer than 256"),
        ({"lineage": {"when": object()}}, ModelError, "lineage must be JSON values"),
        ({"metrics": {"map": float("nan")}}, ModelError, "metrics must be JSON values"),
        ({"spec": ModelSpec(task="pose"), "task": "detect"}, ModelError, "spec says task 'pose'"),
        ({"labels": "missing.txt"}, ModelError, "labels file not found"),
    ],
)
def test_bad_registrations_are_refused_and_store_nothing(
    sqlite_models: Models,
    *,
    store: LocalBlobStore,
    tmp_path: Path,
    arguments: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    settings: dict[str, object] = {"name": "m", "task": "pose", **arguments}
    name = str(settings.pop("name"))
    with pytest.raises(error, match=message):
        sqlite_models.register(write_model(tmp_path / "m.onnx"), name, **settings)  # type: ignore[arg-type]
    assert sqlite_models.registry.names() == []
    assert blobs(store) == []


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "absent.onnx", "model file not found"),
        (lambda p: p, "is not a file"),
        (lambda p: write_model(p / "empty.onnx", b""), "is empty"),
    ],
)
def test_bad_model_files_are_refused(
    sqlite_models: Models, tmp_path: Path, make: object, message: str
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(ModelError, match=message):
        sqlite_models.register(path, "m", task="pose")


def test_gc_removes_only_old_unused_files_and_temporaries(
    sqlite_models: Models, store: LocalBlobStore, tmp_path: Path
) -> None:
    kept = sqlite_models.register(write_model(tmp_path / "kept.onnx"), "m", task="pose")
    orphan = store.put(write_model(tmp_path / "orphan.onnx", b"left behind" * 10))
    fresh = store.put(write_model(tmp_path / "fresh.onnx", b"being registered" * 10))
    temporary = store.root / "tmp" / "dead.part"
    temporary.write_bytes(b"half a download")
    long_ago = time.time() - 7200
    for path in (store.blob_path(orphan.sha256), temporary, store.blob_path(kept.sha256)):
        os.utime(path, (long_ago, long_ago))

    dry = sqlite_models.gc(dry_run=True)
    assert [b.sha256 for b in dry.orphans] == [orphan.sha256]
    assert dry.bytes == orphan.size and store.has(orphan.sha256) and temporary.exists()

    report = sqlite_models.gc()
    assert [b.sha256 for b in report.orphans] == [orphan.sha256]
    assert report.temporaries == 1
    assert sorted(blobs(store)) == sorted([kept.sha256, fresh.sha256])
    assert not temporary.exists()


def test_concurrent_registrations_get_distinct_numbers(
    models: Models, store: LocalBlobStore, tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    files = [write_model(tmp_path / f"{i}.onnx", f"weights {i}".encode() * 30) for i in range(8)]

    def register(path: Path) -> int:
        with Models(registry=models.registry.url, store=store) as own:  # its own connections
            return own.register(path, "busy", task="detect").version

    with ThreadPoolExecutor(max_workers=4) as pool:
        numbers = sorted(pool.map(register, files))

    assert numbers == list(range(1, 9))
    assert len({v.sha256 for v in models.versions("busy")}) == 8
