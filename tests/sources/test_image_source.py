from __future__ import annotations

import logging
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from vigil.errors import SourceError
from vigil.sources import ImageSource, SourceConfig, open_source, read_image

START = datetime(2023, 7, 14, 6, 30, tzinfo=UTC)
EXIF_ORIENTATION = 0x0112


def write_png(path: Path, value: int, size: tuple[int, int] = (8, 6)) -> Path:
    """A flat grey PNG whose value identifies it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((size[1], size[0], 3), value, np.uint8))
    return path


@pytest.fixture
def album(tmp_path: Path) -> Path:
    """Images written out of name order, a subfolder and files that are not images."""
    folder = tmp_path / "album"
    write_png(folder / "b.png", 20)
    write_png(folder / "c.png", 30)
    write_png(folder / "a.png", 10)
    write_png(folder / "sub" / "d.png", 40)
    (folder / "labels.csv").write_text("file,label\n")
    return folder


def test_folder_in_sorted_order_with_paths(album: Path) -> None:
    source = open_source(str(album), SourceConfig(start_time=START, image_interval_seconds=2.5))
    with source:
        frames = list(source)
    assert [Path(f.path or "").name for f in frames] == ["a.png", "b.png", "c.png"]
    assert [int(f.image[0, 0, 0]) for f in frames] == [10, 20, 30]
    assert [f.index for f in frames] == [0, 1, 2]
    assert [f.timestamp - START.timestamp() for f in frames] == [0.0, 2.5, 5.0]
    assert {f.source_id for f in frames} == {str(album)}
    assert source.stills and not source.live and source.fps is None


def test_recursive_folder(album: Path) -> None:
    frames = list(open_source(str(album), SourceConfig(recursive=True)))
    names = [str(Path(f.path or "").relative_to(album)) for f in frames]
    assert names == ["a.png", "b.png", "c.png", "sub/d.png"]


def test_glob_sorted(album: Path) -> None:
    frames = list(open_source(str(album / "[bc].png")))
    assert [Path(f.path or "").name for f in frames] == ["b.png", "c.png"]


def test_glob_recursive(album: Path) -> None:
    frames = list(open_source(str(album / "**" / "*.png"), SourceConfig(recursive=True)))
    assert [int(f.image[0, 0, 0]) for f in frames] == [10, 20, 30, 40]


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)  # the left half is red
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # shown rotated 90 degrees clockwise: the left half goes on top
    path = tmp_path / "rotated.jpg"
    Image.fromarray(pixels).save(path, exif=exif.tobytes(), quality=95)
    (frame,) = list(open_source(str(path)))
    assert frame.image.shape == (40, 20, 3)
    assert frame.image[:15].reshape(-1, 3).mean(0) == pytest.approx([255, 0, 0], abs=8)
    assert frame.image[25:].reshape(-1, 3).mean(0) == pytest.approx([0, 0, 0], abs=8)


@pytest.mark.parametrize(
    ("suffix", "mode", "colour", "expected"),
    [
        (".png", "L", 90, [90, 90, 90]),
        (".png", "RGBA", (200, 100, 50, 255), [200, 100, 50]),
        (".tiff", "RGB", (200, 100, 50), [200, 100, 50]),
        (".bmp", "RGB", (1, 2, 3), [1, 2, 3]),
    ],
)
def test_greyscale_alpha_tiff_and_bmp_become_rgb(
    tmp_path: Path, suffix: str, mode: str, colour: int | tuple[int, ...], expected: list[int]
) -> None:
    path = tmp_path / f"image{suffix}"
    Image.new(mode, (12, 10), colour).save(path)
    image = read_image(path)
    assert image.shape == (10, 12, 3)
    assert image.dtype == np.uint8
    assert image[5, 5].tolist() == expected


@pytest.mark.parametrize(
    ("max_side", "shape"), [(1920, (1440, 1920, 3)), (None, (1536, 2048, 3)), (512, (384, 512, 3))]
)
def test_large_photos_are_downscaled(
    shared_data: Path, max_side: int | None, shape: tuple[int, int, int]
) -> None:
    image = read_image(shared_data / "camera_trap" / "african_elephants.jpg", max_side)
    assert image.shape == shape


def test_camera_trap_folder_decodes_damaged_photos(
    shared_data: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    folder = shared_data / "camera_trap"
    with caplog.at_level(logging.WARNING, logger="vigil.sources"):
        source = open_source(str(folder), SourceConfig(max_image_side=None))
        frames = {Path(f.path or "").name: f.image for f in source}
    assert len(frames) == len(list(folder.glob("*.jpg")))
    assert source.stats.frames_skipped == 0
    original = frames["african_elephants.jpg"].astype(int)
    cmyk = frames["african_elephants_cmyk.jpg"].astype(int)
    assert cmyk.shape == original.shape
    assert np.abs(cmyk - original).mean() < 12
    truncated = frames["african_elephants_truncated_file.jpg"]
    assert truncated.shape == original.shape
    assert truncated[:400].std() > 20  # the top decodes as a photo
    assert truncated[-100:].std() < 2  # the missing bottom is flat
    assert [r.getMessage() for r in caplog.records] == [
        f"{folder / 'african_elephants_truncated_file.jpg'} is truncated; "
        "decoded the part that is there"
    ]
    assert "Corrupt JPEG" not in capfd.readouterr().err


def test_posture_photos_keep_their_size(shared_data: Path) -> None:
    frames = list(open_source(str(shared_data / "posture_side" / "*.jpg")))
    assert len(frames) == 6
    assert {f.image.shape[:2] for f in frames} <= {(1280, 720), (720, 1280)}


def test_non_image_in_folder_is_skipped_with_warning(
    album: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = album / "b2.jpg"
    fake.write_text("this is not a JPEG")
    with caplog.at_level(logging.WARNING, logger="vigil.sources"):
        source = open_source(str(album))
        frames = list(source)
    assert [Path(f.path or "").name for f in frames] == ["a.png", "b.png", "c.png"]
    assert [f.index for f in frames] == [0, 1, 2]
    assert source.stats.frames_skipped == 1
    assert source.stats.frames_read == 3
    assert [r.getMessage() for r in caplog.records] == [
        f"not an image or cannot be decoded: {fake} (skipped)"
    ]


@pytest.mark.parametrize(("name", "content"), [("fake.jpg", b"text"), ("empty.png", b"")])
def test_one_non_image_is_an_error(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    source = open_source(str(path))
    with pytest.raises(SourceError, match=f"^not an image or cannot be decoded: {path}$"):
        list(source)


def test_folder_where_nothing_decodes(tmp_path: Path) -> None:
    for name in ["x.jpg", "y.png"]:
        (tmp_path / name).write_text("no pixels")
    with pytest.raises(SourceError, match="none of the 2 images"):
        list(open_source(str(tmp_path)))


def test_unreadable_file_is_a_source_error(tmp_path: Path) -> None:
    folder_named_like_a_photo = tmp_path / "photo.jpg"
    folder_named_like_a_photo.mkdir()
    with pytest.raises(SourceError, match="cannot read image"):
        read_image(folder_named_like_a_photo)


def test_loop_repeats_photos_with_rising_timestamps(album: Path) -> None:
    config = SourceConfig(loop=True, start_time=START)
    with open_source(str(album), config) as source:
        frames = list(islice(source, 7))
    assert [int(f.image[0, 0, 0]) for f in frames] == [10, 20, 30, 10, 20, 30, 10]
    assert [f.timestamp - START.timestamp() for f in frames] == [float(i) for i in range(7)]


def test_image_source_needs_paths() -> None:
    with pytest.raises(SourceError, match="at least one image"):
        ImageSource([])
