"""Config models and YAML loading whose errors point at the file, line and field.

Every config section is a pydantic model deriving from :class:`ConfigModel`: unknown keys are
rejected (with a "did you mean" suggestion), every field has a description and bounds.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from vigil.errors import ConfigError
from vigil.redact import redact_text

ModelT = TypeVar("ModelT", bound=BaseModel)

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigModel(BaseModel):
    """Base for every config section: strict keys, validated on assignment."""

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, use_attribute_docstrings=False
    )


def load_config(model: type[ModelT], path: str | Path | None = None, **overrides: Any) -> ModelT:
    """Read ``path`` (YAML) into ``model``, then apply ``overrides`` (dotted keys allowed).

    Args:
        model: The pydantic model of the whole file.
        path: A YAML file, or None for the model's defaults.
        **overrides: Values that win over the file, e.g. ``{"reminders.sitting_minutes": 10}``;
            None values are ignored so command-line options that were not given change nothing.

    Raises:
        ConfigError: with the file, line and field of the first problem.
    """
    data: dict[str, Any] = {}
    root: yaml.Node | None = None
    if path is not None:
        data, root = _read_yaml(Path(path))
    given = {key: value for key, value in overrides.items() if value is not None}
    for key, value in given.items():
        _set_dotted(data, key, value)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        field = _dotted(model, tuple(exc.errors()[0]["loc"]))
        from_options = any(field == key or field.startswith(f"{key}.") for key in given)
        if from_options or path is None:
            raise ConfigError(describe_validation_error(exc, model, None, "command line")) from None
        raise ConfigError(describe_validation_error(exc, model, root, str(path))) from None


def _read_yaml(path: Path) -> tuple[dict[str, Any], yaml.Node | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}{line}: not valid YAML: {problem}") from None
    if data is None:
        return {}, None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of sections, got {type(data).__name__}"
        )
    return _expand_env(data, path), root


def _expand_env(value: Any, path: Path) -> Any:
    """Replace ``${NAME}`` in string values with environment variables (for secrets)."""
    if isinstance(value, dict):
        return {k: _expand_env(v, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, path) for v in value]
    if isinstance(value, str) and "${" in value:

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"{path}: environment variable {name} is used but not set")
            return os.environ[name]

        return _ENV_REF.sub(substitute, value)
    return value


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[leaf] = value


def describe_validation_error(
    exc: ValidationError, model: type[BaseModel], root: yaml.Node | None, where: str
) -> str:
    """Turn the first pydantic error into one line: file, line, dotted field, what to do."""
    error = exc.errors()[0]
    loc = tuple(error["loc"])
    if error["type"] == "union_tag_invalid":
        loc = (*loc, "type")
    line = _line_of(root, loc)
    prefix = f"{where} line {line}" if line else where
    field = _dotted(model, loc)
    more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    if error["type"] == "extra_forbidden":
        return f"{prefix}: unknown field '{field}'{_suggest(model, loc)}{more}"
    if error["type"] == "missing":
        return f"{prefix}: '{field}' is required{more}"
    if error["type"] == "union_tag_invalid":
        expected = error.get("ctx", {}).get("expected_tags", "")
        tag = error["input"].get("type") if isinstance(error["input"], dict) else error["input"]
        return f"{prefix}: '{field}' must be one of {expected} (got {tag!r}){more}"
    message = str(error["msg"]).removeprefix("Value error, ")
    got = error.get("input")
    shown = "" if isinstance(got, dict | list) else f" (got {redact_text(repr(got))})"
    return f"{prefix}: '{field}': {message}{shown}{more}"


def _dotted(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """Return the field path a user wrote, without the union tags pydantic adds to ``loc``."""
    shown: list[str] = []
    current: list[type[BaseModel]] = [model]
    for part in loc:
        if isinstance(part, int):
            shown.append(str(part))
            continue
        following = [
            m
            for c in current
            if part in c.model_fields
            for m in _models_in(c.model_fields[part].annotation)
        ]
        is_field = any(part in c.model_fields for c in current)
        if not is_field and any(_has_tag(c, str(part)) for c in current):
            current = [c for c in current if _has_tag(c, str(part))]
            continue
        shown.append(str(part))
        current = following or current
    return ".".join(shown) or "(top level)"


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Return the 1-based line of the deepest YAML node that ``loc`` reaches."""
    node = root
    line = None if root is None else root.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((k for k, _ in node.value if k.value == str(part)), None)
            if match is None:
                continue  # a union tag or a missing key: stay on the parent
            value = next(v for k, v in node.value if k is match)
            line = match.start_mark.line + 1
            node = value
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
    return line


def _suggest(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """Return "; did you mean 'x'?" for a misspelt key, or a list of the valid keys."""
    candidates = _models_at(model, loc[:-1])
    names = sorted({name for m in candidates for name in m.model_fields})
    if not names:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; valid fields here: {', '.join(names)}"


def _models_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[type[BaseModel]]:
    current: list[type[BaseModel]] = [model]
    for part in loc:
        if isinstance(part, int):
            continue
        following = [
            m
            for c in current
            if part in c.model_fields
            for m in _models_in(c.model_fields[part].annotation)
        ]
        if following:
            current = following
        else:  # a discriminated-union tag: keep the members whose tag matches
            tagged = [c for c in current if _has_tag(c, str(part))]
            current = tagged or current
    return current


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, tuple, dict, set):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def _has_tag(model: type[BaseModel], tag: str) -> bool:
    field = model.model_fields.get("type")
    return field is not None and tag in typing.get_args(field.annotation)
