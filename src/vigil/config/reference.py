"""Config reference generated from the models: commented YAML of every field and its default."""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined


def reference_yaml(model: type[BaseModel]) -> str:
    """Return a YAML document of ``model``'s fields with defaults, commented with descriptions.

    Sections that are off by default (``None``) or lists of sections are shown commented out
    with their own fields, so a user can uncomment what they need.
    """
    return "\n".join(_fields(model, indent=0, commented=False)) + "\n"


def _fields(model: type[BaseModel], indent: int, commented: bool) -> list[str]:
    lines: list[str] = []
    for name, info in model.model_fields.items():
        lines.extend(_field(name, info, indent, commented))
    return lines


def _field(name: str, info: FieldInfo, indent: int, commented: bool) -> list[str]:
    pad = " " * indent
    mark = "# " if commented else ""
    lines = [f"{pad}# {line}" for line in _wrap(info.description or "", 96 - indent)]
    nested = _nested_model(info.annotation)
    default = _default(info)
    if nested is not None and isinstance(default, list):
        lines.append(f"{pad}{mark}{name}: []  # a list; each entry has these fields:")
        return [*lines, *_fields(nested, indent + 2, commented=True)]
    if nested is not None and (default is None or _is_model(default)):
        lines.append(f"{pad}{mark}{name}:{'  # off unless set' if default is None else ''}")
        return [*lines, *_fields(nested, indent + 2, commented or default is None)]
    required = "  # required" if info.is_required() else ""
    shown = "..." if info.is_required() else _yaml_value(default)
    lines.append(f"{pad}{mark}{name}: {shown}{required}")
    return lines


def _default(info: FieldInfo) -> Any:
    if info.default_factory is not None:
        return info.default_factory()  # type: ignore[call-arg]
    return None if info.default is PydanticUndefined else info.default


def _is_model(value: Any) -> bool:
    return isinstance(value, BaseModel)


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _nested_model(args[0])
    if origin in (typing.Union, types.UnionType, list):
        models = [m for a in args if (m := _nested_model(a)) is not None]
        return models[0] if models else None
    return None


def _yaml_value(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "__fspath__"):
        value = str(value)
    return json.dumps(value)


def _wrap(text: str, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        lines.append(line)
    return lines


def update_markdown(path: str) -> bool:
    """Rewrite a Markdown file's ``<!-- config-reference:APP -->`` blocks; True if changed."""
    import re
    from pathlib import Path

    from vigil.apps import get_app

    file = Path(path)
    text = file.read_text(encoding="utf-8")

    def block(match: re.Match[str]) -> str:
        app = match.group(1)
        yaml_text = reference_yaml(get_app(app).config_model)
        fence = f"```yaml\n{yaml_text}```"
        return f"<!-- config-reference:{app} -->\n{fence}\n<!-- /config-reference:{app} -->"

    pattern = re.compile(r"<!-- config-reference:(\w+) -->.*?<!-- /config-reference:\1 -->", re.S)
    updated = pattern.sub(block, text)
    if updated != text:
        file.write_text(updated, encoding="utf-8")
    return updated != text


if __name__ == "__main__":
    import sys

    for markdown in sys.argv[1:] or ["README.md"]:
        print(f"{markdown}: {'updated' if update_markdown(markdown) else 'up to date'}")
