"""Pulling from the catalogue and the Hugging Face Hub, against a real HTTP server on loopback."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.models.support import (
    FileServer,
    Route,
    catalogue_entry,
    file_server,
    sha256,
    write_catalogue,
)
from vigil.errors import ModelError
from vigil.models.api import Models
from vigil.models.hub import parse_hub_ref, plan_pull
from vigil.models.store import LocalBlobStore

MODEL = b"\x1cTFL3 tiny model bytes " * 4000  # about 90 KB
LABELS = b"background\nperson\nbicycle\n"


@pytest.fixture
def server() -> Iterator[FileServer]:
    with file_server() as running:
        yield running


def nothing_left(models: Models, store: LocalBlobStore) -> bool:
    temporaries = list((store.root / "tmp").iterdir()) if (store.root / "tmp").exists() else []
    return models.versions() == [] and list(store.blobs()) == [] and temporaries == []


def test_a_catalogue_model_is_downloaded_verified_and_registered(
    sqlite_models: Models, server: FileServer, tmp_path: Path
) -> None:
    url = server.serve("/models/pose.tflite", Route(MODEL))
    catalogue = write_catalogue(tmp_path / "c.yaml", catalogue_entry("tiny-pose", url, MODEL))
    seen: list[tuple[int, int | None]] = []

    result = sqlite_models.pull(
        "tiny-pose", catalogue=catalogue, progress=lambda n, t: seen.append((n, t))
    )

    version = result.version
    assert (result.downloaded, result.registered) == (True, True)
    assert (version.ref, version.sha256, version.size) == ("tiny-pose:1", sha256(MODEL), len(MODEL))
    assert version.path is not None and version.path.read_bytes() == MODEL
    assert version.file_name == "pose.tflite" and version.format == "tflite"
    assert version.spec.decoder == "movenet" and version.spec.keypoint_schema == "coco-17"
    assert version.tags == {"licence": "Apache-2.0", "source": "catalogue"}
    assert version.lineage["source"] == url and version.lineage["verified"] is True
    assert seen[-1] == (len(MODEL), len(MODEL))
    assert sqlite_models.resolve("tiny-pose").path == version.path


def test_a_second_pull_downloads_nothing(
    sqlite_models: Models, server: FileServer, tmp_path: Path
) -> None:
    url = server.serve("/pose.tflite", Route(MODEL))
    catalogue = write_catalogue(tmp_path / "c.yaml", catalogue_entry("tiny-pose", url, MODEL))
    first = sqlite_models.pull("tiny-pose", catalogue=catalogue)
    again = sqlite_models.pull("tiny-pose", catalogue=catalogue)
    other_name = sqlite_models.pull("tiny-pose", name="pose-copy", catalogue=catalogue)

    assert len(server.requested("/pose.tflite")) == 1
    assert (again.downloaded, again.registered) == (False, False)
    assert again.version.ref == first.version.ref == "tiny-pose:1"
    assert (other_name.downloaded, other_name.registered) == (False, True)
    assert [v.ref for v in sqlite_models.versions()] == ["pose-copy:1", "tiny-pose:1"]


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (Route(MODEL[:-1] + b"X"), "has sha256 .*, expected .*; refused it and registered nothing"),
        (Route(MODEL, cut_after=len(MODEL) // 2), "the connection closed after \\d+ bytes"),
        (Route(MODEL + b"extra"), "offers \\d+ bytes but pose.tflite has \\d+"),
        (Route(b"gone", status=404), "HTTP 404 Not Found; check the name, path and revision"),
        (Route(b"oops", status=500), "HTTP 500"),
    ],
)
def test_a_bad_download_is_refused_and_leaves_nothing(
    sqlite_models: Models,
    *,
    store: LocalBlobStore,
    server: FileServer,
    tmp_path: Path,
    route: Route,
    message: str,
) -> None:
    url = server.serve("/pose.tflite", route)
    catalogue = write_catalogue(tmp_path / "c.yaml", catalogue_entry("tiny-pose", url, MODEL))

    with pytest.raises(ModelError, match=message) as caught:
        sqlite_models.pull("tiny-pose", catalogue=catalogue)

    assert "\n" not in str(caught.value)
    assert nothing_left(sqlite_models, store)


def test_a_stalled_download_times_out(
    sqlite_models: Models, store: LocalBlobStore, server: FileServer, tmp_path: Path
) -> None:
    from vigil.models.hub import pull

    url = server.serve("/slow.tflite", Route(MODEL, stall=True))
    catalogue = write_catalogue(tmp_path / "c.yaml", catalogue_entry("slow", url, MODEL))
    with pytest.raises(ModelError, match="no answer in time"):
        pull(sqlite_models, "slow", catalogue=catalogue, timeout=0.3)
    assert nothing_left(sqlite_models, store)


def test_an_unreachable_server_is_a_clear_error(sqlite_models: Models, tmp_path: Path) -> None:
    from tests.services import free_port

    url = f"http://127.0.0.1:{free_port()}/m.tflite"
    catalogue = write_catalogue(tmp_path / "c.yaml", catalogue_entry("far", url, MODEL))
    with pytest.raises(ModelError, match="cannot connect"):
        sqlite_models.pull("far", catalogue=catalogue)


def test_an_entry_without_a_published_hash_needs_one(
    sqlite_models: Models, server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server.serve("/md.pt", Route(MODEL))
    entry = catalogue_entry("detector", url, None, spec={"task": "detect"})
    monkeypatch.setenv("VIGIL_CATALOGUE", str(write_catalogue(tmp_path / "c.yaml", entry)))

    with pytest.raises(ModelError, match=r"no published sha256 for 'detector'.*--sha256 HASH"):
        sqlite_models.pull("detector")
    assert server.requested("/md.pt") == []
    with pytest.raises(ModelError, match=r"has sha256 .*refused"):
        sqlite_models.pull("detector", sha256=sha256(b"something else"))

    version = sqlite_models.pull("detector", sha256=sha256(MODEL).upper()).version
    assert version.sha256 == sha256(MODEL) and version.format == "pytorch"


def test_catalogue_mistakes_are_refused_before_any_download(
    sqlite_models: Models, server: FileServer, tmp_path: Path
) -> None:
    url = server.serve("/pose.tflite", Route(MODEL))
    catalogue = write_catalogue(tmp_path / "c.yaml", catalogue_entry("tiny-pose", url, MODEL))

    with pytest.raises(ModelError, match=r"no model named 'tiny-poes' .*did you mean 'tiny-pose'"):
        sqlite_models.pull("tiny-poes", catalogue=catalogue)
    with pytest.raises(ModelError, match="differs from the catalogue's"):
        sqlite_models.pull("tiny-pose", catalogue=catalogue, sha256=sha256(b"x"))
    with pytest.raises(ModelError, match="'tiny-pose' is a pose model, not detect"):
        sqlite_models.pull("tiny-pose", catalogue=catalogue, task="detect")
    with pytest.raises(ModelError, match="--sha256: not a sha256 digest"):
        sqlite_models.pull("tiny-pose", catalogue=catalogue, sha256="1234")
    with pytest.raises(ModelError, match="give a catalogue name"):
        sqlite_models.pull(url, catalogue=catalogue)
    assert server.requested("/pose.tflite") == []


def test_labels_files_are_verified_and_put_into_the_spec(
    sqlite_models: Models, server: FileServer, tmp_path: Path
) -> None:
    model_url = server.serve("/cls.tflite", Route(MODEL))
    labels_url = server.serve("/labels.txt", Route(LABELS))
    entry = catalogue_entry(
        "cls",
        model_url,
        MODEL,
        spec={"task": "classify"},
        labels_url=labels_url,
        labels_sha256=sha256(LABELS),
        labels_skip=1,
    )
    catalogue = write_catalogue(tmp_path / "c.yaml", entry)

    assert sqlite_models.pull("cls", catalogue=catalogue).version.spec.labels == [
        "person",
        "bicycle",
    ]

    server.serve("/labels.txt", Route(b"tampered\n"))
    sqlite_models.remove("cls")
    with pytest.raises(ModelError, match=r"the labels .* have sha256 .*registered nothing"):
        sqlite_models.pull("cls", catalogue=catalogue)
    assert sqlite_models.versions() == []


# Hugging Face Hub.


@pytest.fixture
def hub(server: FileServer, monkeypatch: pytest.MonkeyPatch) -> FileServer:
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return server


def test_hub_references_map_to_resolve_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert parse_hub_ref("hf://acme/pose-models/onnx/rtm.onnx@v1.2") == (
        "acme/pose-models",
        "onnx/rtm.onnx",
        "v1.2",
    )
    plan = plan_pull("hf://acme/pose-models/onnx/rtm.onnx", task="pose")
    assert plan.url == "https://huggingface.co/acme/pose-models/resolve/main/onnx/rtm.onnx"
    assert (plan.name, plan.file_name, plan.spec.task) == ("rtm", "rtm.onnx", "pose")
    for bad in ("hf://acme/model.onnx", "hf://acme//x.onnx", "hf://a/b/c.onnx@"):
        with pytest.raises(ModelError, match="is not a Hub file"):
            parse_hub_ref(bad)
    with pytest.raises(ModelError, match="give --task"):
        plan_pull("hf://acme/repo/model.onnx")


def test_a_hub_file_is_verified_against_its_lfs_etag(
    sqlite_models: Models, hub: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token")
    etag = {"ETag": f'"{sha256(MODEL)}"'}
    hub.serve("/acme/detectors/resolve/v2/onnx/people.onnx", Route(MODEL, headers=etag))

    result = sqlite_models.pull(
        "hf://acme/detectors/onnx/people.onnx@v2", task="detect", name="people"
    )

    assert result.version.ref == "people:1" and result.version.sha256 == sha256(MODEL)
    assert result.version.lineage == {
        "source": "hf://acme/detectors/onnx/people.onnx@v2",
        "revision": "v2",
        "verified": True,
    }
    (request,) = hub.requested("/acme/detectors/resolve/v2/onnx/people.onnx")
    assert request.headers["authorization"] == "Bearer hf_secret_token"


def test_a_hub_redirect_carries_the_linked_etag_and_the_token_stays_home(
    sqlite_models: Models, hub: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token")
    with file_server() as cdn:
        target = cdn.serve("/lfs/blob", Route(MODEL, headers={"ETag": '"not-a-sha256"'}))
        hub.serve(
            "/acme/pose/resolve/main/pose.onnx",
            Route(redirect=target, headers={"X-Linked-Etag": f'"{sha256(MODEL)}"'}),
        )
        version = sqlite_models.pull("hf://acme/pose/pose.onnx", task="pose").version
        (cdn_request,) = cdn.requested("/lfs/blob")

    assert version.sha256 == sha256(MODEL)
    assert "authorization" not in cdn_request.headers  # never sent to another host


def test_a_hub_file_that_does_not_match_its_etag_is_refused(
    sqlite_models: Models, store: LocalBlobStore, hub: FileServer
) -> None:
    etag = {"X-Linked-Etag": f'"{sha256(b"what the hub promised")}"'}
    hub.serve("/acme/pose/resolve/main/pose.onnx", Route(MODEL, headers=etag))

    with pytest.raises(ModelError, match="refused it and registered nothing"):
        sqlite_models.pull("hf://acme/pose/pose.onnx", task="pose")
    assert nothing_left(sqlite_models, store)


def test_a_hub_file_already_stored_is_not_downloaded_again(
    sqlite_models: Models, hub: FileServer
) -> None:
    etag = {"ETag": f'"{sha256(MODEL)}"'}
    hub.serve("/acme/pose/resolve/main/pose.onnx", Route(MODEL, headers=etag))
    hub.serve("/acme/mirror/resolve/main/pose.onnx", Route(MODEL, headers=etag))

    first = sqlite_models.pull("hf://acme/pose/pose.onnx", task="pose")
    mirror = sqlite_models.pull("hf://acme/mirror/pose.onnx", task="pose", name="mirror")

    assert first.downloaded and not mirror.downloaded and mirror.registered
    assert mirror.version.sha256 == first.version.sha256


def test_a_hub_file_without_an_lfs_hash_is_kept_but_marked_unverified(
    sqlite_models: Models,
    hub: FileServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logging.getLogger("vigil"), "propagate", True)  # the CLI turns it off
    git_sha1 = {"ETag": '"' + "a" * 40 + '"'}  # a small file kept in git, not LFS
    hub.serve("/acme/pose/resolve/main/pose.onnx", Route(MODEL, headers=git_sha1))

    version = sqlite_models.pull("hf://acme/pose/pose.onnx", task="pose").version

    assert version.sha256 == sha256(MODEL)
    assert version.lineage["verified"] is False
    assert "was not verified" in caplog.text


@pytest.mark.parametrize(
    ("status", "message"),
    [(401, "needs HF_TOKEN"), (404, "HTTP 404")],
)
def test_hub_errors_say_what_to_do(
    sqlite_models: Models, hub: FileServer, status: int, message: str
) -> None:
    hub.serve("/acme/private/resolve/main/m.onnx", Route(b"no", status=status))
    with pytest.raises(ModelError, match=message):
        sqlite_models.pull("hf://acme/private/m.onnx", task="pose")


def test_a_real_model_file_pulls_with_its_published_hash(
    sqlite_models: Models, server: FileServer, shared_data: Path, tmp_path: Path
) -> None:
    from vigil.models.catalogue import load_catalogue

    real = (shared_data / "models" / "tfls_movenet_singlepose_lightning_int8_4.tflite").read_bytes()
    published = load_catalogue().entry("movenet-lightning")
    local = published.model_copy(update={"url": server.serve("/movenet.tflite", Route(real))})
    catalogue = write_catalogue(tmp_path / "c.yaml", local.model_dump(mode="json"))

    version = sqlite_models.pull("movenet-lightning", catalogue=catalogue).version

    assert version.sha256 == published.sha256 and version.size == published.size
    assert version.spec == published.spec
    assert version.path is not None and version.path.read_bytes() == real
