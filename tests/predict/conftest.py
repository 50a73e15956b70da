"""Fixtures of the ``vigil predict`` tests: the real command in this process, tiny models."""

from __future__ import annotations
