"""Checkpoints of a fine-tuning run: the last epoch (to resume) and the best one (to keep).

A run folder holds two files under ``checkpoints/``:

``last.pt``
    Everything needed to go on exactly where the last finished epoch left off: the weights,
    the optimiser and learning-rate schedule of the current phase, torch's random state, the
    history, the best score so far and a fingerprint of the settings. Resuming with the same
    settings (and loader workers) reaches the same weights as a run that was never stopped.
``best.pt``
    The weights of the epoch with the best validation score, with the classes, backbone and
    image size: ``{"format": ..., "state_dict": ..., ...}``. The state_dict uses torchvision's
    names, so the file is also a ``--weights`` file for another fine-tuning.

Both are written through a temporary file and a rename: a run killed while saving keeps the
previous file. Only tensors and plain values are stored, so both load with
``torch.load(..., weights_only=True)``.

This module imports torch; import it inside the function that needs it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vigil.errors import ConfigError, StorageError

LAST_FORMAT = "vigil-finetune-state/1"
BEST_FORMAT = "vigil-finetune-weights/1"
CHECKPOINT_FOLDER = "checkpoints"


@dataclass
class RunState:
    """Where a run stands after its last finished epoch.

    Attributes:
        epoch: Epochs finished (0 before the first).
        history: One dict of figures per finished epoch (see ``EpochStats.to_dict``).
        best_epoch: The epoch of ``best.pt`` (0: none yet).
        best_score: Its validation score.
        best_loss: Its validation loss (breaks ties between equal scores).
        stale_epochs: Epochs of the whole-network phase since the score last improved.
        finished: Whether the run ended (all epochs, or stopped early).
        stopped_early: Whether it ended because the score stopped improving.

    """

    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = -1.0
    best_loss: float = float("inf")
    stale_epochs: int = 0
    finished: bool = False
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as plain values."""
        return {
            "epoch": self.epoch,
            "history": list(self.history),
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "best_loss": self.best_loss,
            "stale_epochs": self.stale_epochs,
            "finished": self.finished,
            "stopped_early": self.stopped_early,
        }


@dataclass(frozen=True)
class RunFiles:
    """The files of one run folder."""

    folder: Path

    @property
    def last(self) -> Path:
        """The checkpoint to resume from."""
        return self.folder / CHECKPOINT_FOLDER / "last.pt"

    @property
    def best(self) -> Path:
        """The weights of the best epoch."""
        return self.folder / CHECKPOINT_FOLDER / "best.pt"


@dataclass
class Resumed:
    """What ``last.pt`` holds: the weights, the current phase's optimiser and schedule, and more."""

    state: RunState
    model: dict[str, torch.Tensor]
    phase: str
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    rng: torch.Tensor


def save_last(
    path: Path,
    *,
    model: torch.nn.Module,
    phase: str,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: RunState,
    fingerprint: dict[str, Any],
) -> None:
    """Write the state after a finished epoch to ``path`` (atomically).

    Raises:
        StorageError: the file cannot be written.

    """
    document = {
        "format": LAST_FORMAT,
        "fingerprint": fingerprint,
        "state": state.to_dict(),
        "model": model.state_dict(),
        "phase": phase,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": torch.get_rng_state(),
    }
    save_atomic(document, path)


def save_best(path: Path, model: torch.nn.Module, about: dict[str, Any]) -> None:
    """Write the weights of the best epoch with what describes them (atomically).

    Raises:
        StorageError: the file cannot be written.

    """
    save_atomic({"format": BEST_FORMAT, **about, "state_dict": model.state_dict()}, path)


def save_atomic(document: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it over ``path``.

    Raises:
        StorageError: the file cannot be written.

    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(document, temporary)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise StorageError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from None


def load_last(path: Path, fingerprint: dict[str, Any]) -> Resumed:
    """Read ``last.pt`` of a run to resume it with the settings of ``fingerprint``.

    Raises:
        ConfigError: there is no checkpoint, or the run was started with other settings.
        StorageError: the file is damaged.

    """
    if not path.is_file():
        raise ConfigError(
            f"nothing to resume in {path.parent.parent}: it has no {CHECKPOINT_FOLDER}/"
            f"{path.name}; start the run without resume"
        )
    document = _load(path)
    _check_fingerprint(document.get("fingerprint", {}), fingerprint, path.parent.parent)
    try:
        return Resumed(
            state=RunState(**document["state"]),
            model=document["model"],
            phase=str(document["phase"]),
            optimizer=document["optimizer"],
            scheduler=document["scheduler"],
            rng=document["rng"],
        )
    except (KeyError, TypeError) as exc:
        raise StorageError(f"{path} is not a complete training checkpoint ({exc})") from None


def load_best(path: Path) -> dict[str, torch.Tensor]:
    """Return the weights stored in ``best.pt``.

    Raises:
        StorageError: the file is missing or damaged.

    """
    document = _load(path)
    state = document.get("state_dict")
    if document.get("format") != BEST_FORMAT or not isinstance(state, dict):
        raise StorageError(f"{path} is not a Vigil best-epoch checkpoint")
    return state


def _load(path: Path) -> dict[str, Any]:
    try:
        document = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise StorageError(f"checkpoint {path} does not exist") from None
    except Exception as exc:  # a truncated or foreign file; torch raises many kinds
        raise StorageError(
            f"cannot read checkpoint {path} ({type(exc).__name__}): it is damaged; "
            "start a new run folder"
        ) from None
    if not isinstance(document, dict) or document.get("format") not in (LAST_FORMAT, BEST_FORMAT):
        raise StorageError(f"{path} is not a Vigil training checkpoint")
    return document


def _check_fingerprint(stored: dict[str, Any], current: dict[str, Any], folder: Path) -> None:
    changed = [
        key for key in sorted(current.keys() | stored.keys()) if stored.get(key) != current.get(key)
    ]
    if not changed:
        return
    shown = ", ".join(f"{k}: {stored.get(k)!r} -> {current.get(k)!r}" for k in changed[:3])
    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
    raise ConfigError(
        f"the run in {folder} was started with other settings ({shown}{more}): resume it with "
        "the same settings, or start a new run folder"
    )


__all__ = [
    "BEST_FORMAT",
    "CHECKPOINT_FOLDER",
    "LAST_FORMAT",
    "Resumed",
    "RunFiles",
    "RunState",
    "load_best",
    "load_last",
    "save_atomic",
    "save_best",
    "save_last",
]
