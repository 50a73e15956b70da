"""Label Studio JSON exports of image-classification projects as datasets.

An export is a list of tasks; each names its image in ``data.image`` and its labels in
``annotations[].result[].value.choices``. Image URLs are resolved against a root folder:

- ``/data/local-files/?d=photos/a.jpg`` (local storage): ``root/photos/a.jpg``;
- ``/data/upload/3/1a2b-a.jpg`` (uploads): the first that exists of ``root/upload/3/1a2b-a.jpg``,
  ``root/3/1a2b-a.jpg`` and ``root/1a2b-a.jpg`` (so root may be Label Studio's ``media`` folder,
  its ``upload`` folder, or a folder holding the files);
- any other relative path: ``root/path``; the same paths behind ``http://host`` too.

Tasks without an annotation, cancelled ones, tasks whose annotators disagree or chose several
classes, and images on remote servers are skipped and reported, never fatal.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from vigil.data.config import ImportOptions
from vigil.data.dataset import Dataset, Item, Skipped, item_key, make_dataset, parse_time
from vigil.errors import SourceError


def read_label_studio(path: Path, options: ImportOptions) -> Dataset:
    """Read a Label Studio JSON export into a :class:`Dataset`.

    Raises:
        SourceError: the file is unreadable, not JSON, or not a list of tasks with images.

    """
    tasks = _read_tasks(path)
    root = Path(options.root).expanduser() if options.root else path.parent
    items: list[Item] = []
    skipped: list[Skipped] = []
    for index, task in enumerate(tasks):
        where = f"task {_task_name(task, index)}"
        image = _task_image(path, task, where, options.image_key)
        label, problem = _task_label(path, task, where)
        resolved = resolve_image(image, root)
        if resolved is None or label is None:
            reason = problem if resolved is not None else f"remote image {image}: download it first"
            skipped.append(Skipped(where, reason or "no label"))
            continue
        data = task["data"]
        group = _data_text(data, options.group_column)
        time = parse_time(_data_text(data, options.time_column) or "", f"{path} {where}")
        items.append(Item(item_key(resolved, root), resolved, label, group, time))
    return make_dataset(path, "label-studio", root, items, skipped)


def resolve_image(url: str, root: Path) -> Path | None:
    """Return the local file a task's image URL names, or None for a remote image."""
    parsed = urlparse(url)
    local_path = unquote(parsed.path)
    if parsed.path.startswith("/data/local-files"):
        names = parse_qs(parsed.query).get("d")
        return root / names[0] if names else root / local_path
    if parsed.path.startswith("/data/upload/"):
        return _upload_path(PurePosixPath(local_path).relative_to("/data"), root)
    if parsed.scheme and len(parsed.scheme) > 1:  # http://, s3://, gs:// (not C:\\)
        return None
    return root / url


def _upload_path(relative: PurePosixPath, root: Path) -> Path:
    candidates = [root / relative, root / relative.relative_to("upload"), root / relative.name]
    return next((c for c in candidates if c.is_file()), candidates[0])


def _read_tasks(path: Path) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SourceError(f"{path} is not UTF-8 text: export it again from Label Studio") from None
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(f"{path} line {exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(tasks, list):
        raise SourceError(
            f"{path} is not a Label Studio export: expected a list of tasks, got a "
            f"{type(tasks).__name__} (export as 'JSON', not 'JSON-MIN' or 'CSV')"
        )
    return tasks


def _task_name(task: Any, index: int) -> str:
    if isinstance(task, dict) and isinstance(task.get("id"), int | str):
        return f"{task['id']}"
    return f"#{index + 1}"


def _task_image(path: Path, task: Any, where: str, key: str) -> str:
    data = task.get("data") if isinstance(task, dict) else None
    image = data.get(key) if isinstance(data, dict) else None
    if not isinstance(image, str) or not image.strip():
        raise SourceError(
            f"{path} {where}: no 'data.{key}' image URL; export as 'JSON' from an image "
            "project (or name the image key)"
        )
    return image.strip()


def _task_label(path: Path, task: dict[str, Any], where: str) -> tuple[str | None, str | None]:
    """Return the task's one label, or None and why there is none."""
    annotations = task.get("annotations", [])
    if not isinstance(annotations, list):
        raise SourceError(f"{path} {where}: 'annotations' must be a list")
    labels: set[tuple[str, ...]] = set()
    for annotation in annotations:
        if not isinstance(annotation, dict):
            raise SourceError(f"{path} {where}: each annotation must be an object")
        if annotation.get("was_cancelled"):
            continue
        choices = _choices(path, annotation, where)
        if choices:
            labels.add(choices)
    if not labels:
        return None, "no annotation with a choice"
    if len(labels) > 1:
        shown = ", ".join("+".join(c) for c in sorted(labels))
        return None, f"annotators disagree ({shown})"
    (choices,) = labels
    if len(choices) > 1:
        return None, f"several classes chosen ({', '.join(choices)}): multi-label"
    return choices[0], None


def _choices(path: Path, annotation: dict[str, Any], where: str) -> tuple[str, ...]:
    results = annotation.get("result", [])
    if not isinstance(results, list):
        raise SourceError(f"{path} {where}: an annotation's 'result' must be a list")
    chosen: set[str] = set()
    for result in results:
        value = result.get("value") if isinstance(result, dict) else None
        choices = value.get("choices") if isinstance(value, dict) else None
        if choices is None:
            continue
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            raise SourceError(f"{path} {where}: 'value.choices' must be a list of class names")
        chosen.update(c.strip() for c in choices if c.strip())
    return tuple(sorted(chosen))


def _data_text(data: dict[str, Any], key: str | None) -> str | None:
    if key is None or data.get(key) is None:
        return None
    return str(data[key]).strip() or None


__all__ = ["read_label_studio", "resolve_image"]
