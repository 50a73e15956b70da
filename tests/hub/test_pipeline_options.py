"""``vigil run --hub URL --token T``: options that cannot work are one-line errors, before any
camera or model is opened."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cli import VigilRunner
from tests.e2e.support import write_yaml

TOKEN = "vgt_option-s3cret"


@pytest.fixture(autouse=True)
def no_token_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIGIL_HUB_TOKEN", raising=False)


CASES = [
    (
        "token without a hub",
        ["--token", TOKEN],
        r"^--token needs a hub: give --hub URL too \(or sinks\.hub\.url\)",
    ),
    (
        "hub without a token",
        ["--hub", "http://127.0.0.1:8600"],
        r"^--hub needs this device's token: give --token T too \(or set VIGIL_HUB_TOKEN\)",
    ),
    (
        "not an http URL",
        ["--hub", "mqtt://hub.local:8600", "--token", TOKEN],
        r"^Invalid value for '--hub': 'mqtt://hub\.local:8600' is not an http:// or https:// URL",
    ),
    (
        "no host",
        ["--hub", "http://", "--token", TOKEN],
        r"^Invalid value for '--hub': 'http://' is not an http:// or https:// URL with a host",
    ),
    (
        "a query with a secret",
        ["--hub", "http://hub.local:8600/?token=abc123", "--token", TOKEN],
        r"^Invalid value for '--hub': 'http://hub\.local:8600/\?token=\*\*\*' has a query",
    ),
    ("an empty token", ["--hub", "http://hub.local", "--token", " "], r"the token is empty"),
]


@pytest.mark.parametrize(("options", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_hub_options_are_one_line_usage_errors(
    vigil: VigilRunner, options: list[str], message: str
) -> None:
    result = vigil("run", "posture", "--source", "0", *options)
    assert result.status == 2
    error = result.single_error()
    assert re.search(message, error), error
    assert TOKEN not in result.stderr
    assert "abc123" not in result.stderr


def test_a_token_from_the_environment_alone_does_not_turn_the_hub_on(
    vigil: VigilRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """VIGIL_HUB_TOKEN only fills in the token: without a hub URL the run goes on (here it
    stops at the missing camera, after the hub options were accepted)."""
    monkeypatch.setenv("VIGIL_HUB_TOKEN", TOKEN)
    result = vigil("run", "posture", "--source", "does-not-exist.mp4")
    assert result.status == 1
    assert result.single_error().startswith("no such file or folder")


@pytest.mark.parametrize(
    ("section", "options", "message"),
    [
        ({"url": "http://127.0.0.1:9"}, [], r"'sinks\.hub\.token' is required"),
        ({"token": "${HUB_TOKEN}"}, ["--hub", "http://h:1"], "HUB_TOKEN is used but not set"),
        ({"url": "http://h:1", "token": "t", "stream_fps": 50}, [], r"'sinks\.hub\.stream_fps'"),
    ],
)
def test_a_bad_hub_section_names_the_file_and_field(
    vigil: VigilRunner, tmp_path: Path, section: dict[str, object], options: list[str], message: str
) -> None:
    config = write_yaml(tmp_path / "vigil.yaml", {"sinks": {"hub": section}})
    result = vigil("run", "posture", "--source", "0", "--config", config, *options)
    assert result.status == 2
    assert re.search(message, result.single_error())
