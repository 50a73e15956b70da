from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

import vigil.sources
from vigil.errors import SourceError
from vigil.redact import redact_url
from vigil.sources import (
    ArraySource,
    ImageSource,
    LiveSource,
    Source,
    SourceConfig,
    SourceKind,
    VideoFileSource,
    detect_kind,
    open_source,
)


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with one file or folder of each kind; specs below are relative to it."""
    monkeypatch.chdir(tmp_path)
    for name in ["photo.JPG", "scan.tiff", "clip.mp4", "recording.mkv", "x[1].png", "notes.txt"]:
        (tmp_path / name).write_bytes(b"not looked at by kind detection")
    (tmp_path / "album").mkdir()
    (tmp_path / "album" / "a.png").write_bytes(b"")
    return tmp_path


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("0", SourceKind.CAMERA),
        ("12", SourceKind.CAMERA),
        (" 1 ", SourceKind.CAMERA),
        ("rtsp://cam.local/stream1", SourceKind.STREAM),
        ("RTSPS://user:pw@cam.local:322/s", SourceKind.STREAM),
        ("http://127.0.0.1:8080/video.mjpg", SourceKind.STREAM),
        ("https://example.org/live", SourceKind.STREAM),
        ("udp://239.0.0.1:1234", SourceKind.STREAM),
        ("tcp://10.0.0.2:5000", SourceKind.STREAM),
        ("album", SourceKind.FOLDER),
        ("album/", SourceKind.FOLDER),
        ("photo.JPG", SourceKind.IMAGE),
        ("scan.tiff", SourceKind.IMAGE),
        ("x[1].png", SourceKind.IMAGE),  # an existing name wins over its glob reading
        ("clip.mp4", SourceKind.VIDEO),
        ("recording.mkv", SourceKind.VIDEO),
        ("notes.txt", SourceKind.VIDEO),  # any other file: OpenCV decides when it is opened
        ("*.png", SourceKind.GLOB),
        ("album/?.png", SourceKind.GLOB),
        ("photo[0-9].jpg", SourceKind.GLOB),
    ],
)
def test_detect_kind(files: Path, spec: str, kind: SourceKind) -> None:
    assert detect_kind(spec) is kind


@pytest.mark.parametrize(
    ("spec", "source_type", "live", "stills"),
    [
        ("0", LiveSource, True, False),
        ("rtsp://cam.local/stream1", LiveSource, True, False),
        ("clip.mp4", VideoFileSource, False, False),
        ("photo.JPG", ImageSource, False, True),
        ("album", ImageSource, False, True),
        ("*.png", ImageSource, False, True),
    ],
)
def test_open_source_builds_without_opening(
    files: Path, spec: str, source_type: type, live: bool, stills: bool
) -> None:
    source = open_source(spec)  # no camera here and fake files: nothing may be opened yet
    assert isinstance(source, source_type)
    assert isinstance(source, Source)
    assert (source.live, source.stills) == (live, stills)
    source.close()


@pytest.mark.parametrize("spec", ["missing.mp4", "no/such/folder", "album/missing.jpg"])
def test_missing_path_is_a_source_error(files: Path, spec: str) -> None:
    with pytest.raises(SourceError, match=r"^no such file or folder: " + spec.replace("/", ".")):
        open_source(spec)


@pytest.mark.parametrize("spec", ["", "   "])
def test_empty_spec_is_a_source_error(spec: str) -> None:
    with pytest.raises(SourceError, match="empty source"):
        open_source(spec)


def test_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no photos here")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.jpg").write_bytes(b"")
    with pytest.raises(SourceError, match=r"no images in folder .*set recursive"):
        open_source(str(tmp_path))


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no images in folder"):
        open_source(str(tmp_path))


def test_glob_that_matches_nothing(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"^no files match .*\*\.jpg$"):
        open_source(str(tmp_path / "*.jpg"))


def test_glob_that_matches_no_images(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    with pytest.raises(SourceError, match=r"2 files match .* but none is an image"):
        open_source(str(tmp_path / "*"))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://admin:hunter2@10.0.0.5:554/s1", "rtsp://admin:***@10.0.0.5:554/s1"),
        ("http://cam.local/video.mjpg", "http://cam.local/video.mjpg"),
        ("http://user@cam.local/v", "http://user@cam.local/v"),
        ("http://cam/v?user=a&password=b&ch=1", "http://cam/v?user=a&password=***&ch=1"),
        ("https://cam/v?token=abc", "https://cam/v?token=***"),
        ("rtsp://a:b@host:notaport/x", "rtsp://a:***@host:notaport/x"),
        ("rtsp://a:b@[::1/x", "rtsp://***@[::1/x"),  # not parseable: hide everything before @
        ("sqlite:////tmp/vigil.db", "sqlite:////tmp/vigil.db"),
        ("sqlite:///relative.db", "sqlite:///relative.db"),
        ("postgresql+psycopg://vigil:pw@db:5432/v", "postgresql+psycopg://vigil:***@db:5432/v"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_stream_source_id_hides_the_password() -> None:
    source = open_source("rtsp://admin:hunter2@10.0.0.5/s1")
    assert source.source_id == "rtsp://admin:***@10.0.0.5/s1"
    assert "hunter2" not in repr(source)


def test_config_defaults_and_backoff() -> None:
    config = SourceConfig()
    assert (config.reconnect_attempts, config.max_image_side, config.max_fps) == (5, 1920, None)
    delays = [config.reconnect_delay(attempt) for attempt in range(1, 7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]


@pytest.mark.parametrize(
    "fields",
    [
        {"max_fps": 0},
        {"max_fps": -1},
        {"image_interval_seconds": 0},
        {"reconnect_attempts": -1},
        {"max_image_side": 0},
        {"width": 0},
        {"reconnect_initial_seconds": 5, "reconnect_max_seconds": 1},
        {"reconect_attempts": 3},
    ],
)
def test_config_rejects_bad_values(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SourceConfig.model_validate(fields)


def test_config_fields_are_documented() -> None:
    for name, field in SourceConfig.model_fields.items():
        assert field.description, f"SourceConfig.{name} has no description"


def test_array_source_timestamps_and_lifetime() -> None:
    images = [np.full((4, 6, 3), value, np.uint8) for value in (10, 20, 30)]
    start = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    source = ArraySource(images, config=SourceConfig(start_time=start, image_interval_seconds=2))
    with source:
        frames = list(source)
    assert [f.timestamp - start.timestamp() for f in frames] == [0.0, 2.0, 4.0]
    assert [int(f.image[0, 0, 0]) for f in frames] == [10, 20, 30]
    assert source.stats.frames_delivered == 3
    with pytest.raises(SourceError, match="is closed"):
        iter(source)


def test_public_api() -> None:
    assert sorted(vigil.sources.__all__) == [
        "ArraySource",
        "BaseSource",
        "IMAGE_EXTENSIONS",
        "ImageSource",
        "LiveSource",
        "STREAM_SCHEMES",
        "Source",
        "SourceConfig",
        "SourceKind",
        "SourceStats",
        "VideoFileSource",
        "detect_kind",
        "find_images",
        "glob_images",
        "open_source",
        "read_image",
    ]
    for name in vigil.sources.__all__:
        assert hasattr(vigil.sources, name)
