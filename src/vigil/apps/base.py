"""What an app is: a named recipe of stages, rules and outputs, with its default config."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Protocol

import numpy as np
from pydantic import AfterValidator, Field

from vigil.config import ConfigModel
from vigil.engine import Rule
from vigil.frame import Frame
from vigil.sinks.config import NetworkSinksConfig
from vigil.sinks.records import RecordsConfig
from vigil.sources.config import SourceConfig
from vigil.stages.base import FrameResults, Stage

_DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _check_device_id(value: str) -> str:
    if not _DEVICE_ID.match(value):
        raise ValueError(
            "a device id is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or "
            "digit (it becomes part of MQTT topics and file names)"
        )
    return value


DeviceId = Annotated[str, AfterValidator(_check_device_id)]
"""Names a camera in records, MQTT topics, file names and the hub."""


class AppConfig(ConfigModel):
    """The sections every app has."""

    device_id: DeviceId = Field(
        "camera",
        description="Names this camera in records, MQTT topics and the hub "
        "(letters, digits, . _ -).",
    )
    source: SourceConfig = Field(default_factory=SourceConfig, description="How frames are read.")
    records: RecordsConfig = Field(
        default_factory=RecordsConfig, description="Where records are kept."
    )
    sinks: NetworkSinksConfig = Field(
        default_factory=NetworkSinksConfig,
        description=(
            "MQTT, webhooks, notifications, uploads and a hub, all through the durable outbox."
        ),
    )


@dataclass
class AppParts:
    """An app built for one run.

    Attributes:
        stages: Run on every frame, in order.
        rules: Turn results over time into events.
        annotate: Draws the results onto a copy of the frame (for --save and --show).
        describe: One JSON-ready dict per frame (for --jsonl).
    """

    stages: list[Stage]
    rules: list[Rule]
    annotate: Callable[[Frame, FrameResults], np.ndarray]
    describe: Callable[[Frame, FrameResults], dict[str, Any]]


class App(Protocol):
    """A recipe: ``vigil run <name>`` builds it from its config."""

    name: ClassVar[str]
    summary: ClassVar[str]
    config_model: ClassVar[type[AppConfig]]

    def build(self, config: Any, stills: bool) -> AppParts:
        """Load models and create the stages and rules for one run.

        Args:
            config: An instance of :attr:`config_model`.
            stills: Frames are unrelated photos rather than a video or camera.
        """
