"""Fixtures of the data-layer tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def plain_vigil_logger() -> Iterator[None]:
    """Let records of the ``vigil`` loggers reach pytest, whatever an earlier CLI run set up."""
    logger = logging.getLogger("vigil")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers[:] = []
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
    yield
    logger.handlers[:], level, logger.propagate = saved
    logger.setLevel(level)
