"""``vigil --version``, ``vigil config show/check`` and a report over an empty database."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import yaml

import vigil
from tests.cli import VigilRunner
from tests.e2e.support import sqlite_url
from vigil.apps.posture import PostureConfig


def test_version(vigil: VigilRunner) -> None:
    result = vigil("--version")
    assert result.status == 0
    assert result.stdout.strip() == f"vigil, version {vigil_version()}"


def vigil_version() -> str:
    installed = version("vigil")
    assert installed == vigil.__version__
    return installed


def test_the_shown_config_is_a_config_that_checks(vigil: VigilRunner, tmp_path: Path) -> None:
    shown = vigil("config", "show", "posture")
    assert shown.status == 0, shown.stderr
    path = tmp_path / "posture.yaml"
    path.write_text(shown.stdout, encoding="utf-8")

    checked = vigil("config", "check", "posture", path)
    assert checked.status == 0, checked.stderr
    assert checked.stdout.strip() == f"{path}: ok"
    values = yaml.safe_load(shown.stdout)
    defaults = PostureConfig().model_dump(mode="json")
    assert values["reminders"] == defaults["reminders"]
    assert values["rules"] == defaults["rules"]
    assert values["device_id"] == defaults["device_id"]


def test_a_report_over_an_empty_database_warns(vigil: VigilRunner, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    database = sqlite_url(tmp_path / "empty.db")
    result = vigil("report", "posture", "--since", "24h", "--out", out, "--database", database)
    assert result.status == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("vigil: warning:")]
    assert len(warnings) == 1 and "no posture records" in warnings[0], result.stderr
    assert result.stdout.strip() == f"report: {out}"
    assert out.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
