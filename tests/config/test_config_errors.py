"""Config files: every mistake is one line naming the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigil.apps.posture import PostureConfig
from vigil.config import load_config
from vigil.config.reference import reference_yaml
from vigil.errors import ConfigError
from vigil.redact import redact_text
from vigil.stages.pose import KeypointModelConfig


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vigil.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "device_id: desk\nreminders:\n  sitting_minuts: 10\n",
            "line 3: unknown field 'reminders.sitting_minuts'; did you mean 'sitting_minutes'?",
        ),
        ("devise_id: x\n", "line 1: unknown field 'devise_id'; did you mean 'device_id'?"),
        (
            "rules:\n  zzz: 1\n",
            "line 2: unknown field 'rules.zzz'; valid fields here: hunch_neck_deg",
        ),
        (
            "rules:\n  hunch_torso_deg: 120\n",
            "line 2: 'rules.hunch_torso_deg': Input should be less than or equal to 90 (got 120)",
        ),
        (
            "reminders:\n  sitting_minutes: ten\n",
            "line 2: 'reminders.sitting_minutes': Input should be a valid number",
        ),
        (
            "pose:\n  type: foo\n",
            "line 2: 'pose.type' must be one of 'mediapipe', 'keypoints' (got 'foo')",
        ),
        ("pose:\n  type: keypoints\n", "line 1: 'pose.model' is required"),
        (
            "pose:\n  type: keypoints\n  model: m.onnx\n  formt: movenet\n",
            "line 4: unknown field 'pose.formt'; did you mean 'format'?",
        ),
        ("sinks:\n  mqtt: {}\n", "line 2: 'sinks.mqtt.url' is required"),
        (
            "sinks:\n  webhooks:\n    - name: a\n      url: ftp://x\n",
            "line 4: 'sinks.webhooks.0.url'",
        ),
        ("rules: [1, 2\n", "line 2: not valid YAML"),
        ("42\n", "the top level must be a mapping of sections, got int"),
        ("device_id: 'has space'\n", "line 1: 'device_id': a device id is 1 to 64 letters"),
    ],
)
def test_mistakes_name_the_line_and_the_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(PostureConfig, path)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert expected in message
    assert "\n" not in message


def test_passwords_never_appear_in_errors(tmp_path: Path) -> None:
    path = write(tmp_path, 'sinks:\n  mqtt:\n    url: "mqtt://user:hunter2@:99999"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(PostureConfig, path)
    assert "hunter2" not in str(caught.value) and "user:***@" in str(caught.value)


def test_redact_text() -> None:
    text = "postgresql+psycopg://vigil:pw@db/vigil and rtsp://cam:s3cr3t@10.0.0.5/1"
    assert (
        redact_text(text) == "postgresql+psycopg://vigil:***@db/vigil and rtsp://cam:***@10.0.0.5/1"
    )


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(PostureConfig, tmp_path / "nope.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(PostureConfig, tmp_path / "bin.yaml")


def test_environment_variables_fill_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "sinks:\n  mqtt:\n    url: mqtt://vigil:${MQTT_PASSWORD}@broker:1883\n")
    monkeypatch.setenv("MQTT_PASSWORD", "from-env")
    config = load_config(PostureConfig, path)
    assert config.sinks.mqtt is not None and config.sinks.mqtt.url.endswith(
        "vigil:from-env@broker:1883"
    )
    monkeypatch.delenv("MQTT_PASSWORD")
    with pytest.raises(ConfigError, match="environment variable MQTT_PASSWORD is used but not set"):
        load_config(PostureConfig, path)


def test_overrides_win_and_none_changes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "device_id: from-file\nreminders:\n  sitting_minutes: 45\n")
    config = load_config(
        PostureConfig, path, device_id="from-cli", **{"reminders.sitting_minutes": None}
    )
    assert config.device_id == "from-cli" and config.reminders.sitting_minutes == 45
    model = load_config(PostureConfig, None, pose={"type": "keypoints", "model": "m.tflite"})
    assert isinstance(model.pose, KeypointModelConfig)


def test_the_generated_reference_is_a_valid_config(tmp_path: Path) -> None:
    reference = reference_yaml(PostureConfig)
    assert "# Remind after sitting this long without a real break." in reference
    assert load_config(PostureConfig, write(tmp_path, reference)) == PostureConfig()
