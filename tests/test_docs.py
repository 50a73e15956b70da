"""The docs stay true: the README's config reference is what the config models say."""

from __future__ import annotations

import re
from pathlib import Path

from vigil.apps import app_names, get_app
from vigil.config.reference import reference_yaml

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_config_reference_is_current() -> None:
    text = README.read_text()
    for app in app_names():
        block = re.search(rf"<!-- config-reference:{app} -->\n```yaml\n(.*?)```\n", text, re.S)
        assert block is not None, f"README has no config reference for {app}"
        assert block.group(1) == reference_yaml(get_app(app).config_model), (
            "README's config reference is stale: run python -m vigil.config.reference README.md"
        )


def test_readme_quick_start_is_the_two_make_commands() -> None:
    quick_start = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^(make \w+)", quick_start, re.M)
    assert commands == ["make demo", "make test"]
