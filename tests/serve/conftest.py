"""Fixtures of the service tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def classifier_service() -> Iterator[object]:
    """The fake classifier behind the service on loopback, shared by a module's tests."""
    pytest.importorskip("fastapi", reason="the inference service needs the 'serve' extra")
    from tests.serve.support import running
    from vigil.serve import ServeSettings, create_app
    from vigil.tasks.fake import FakeModel

    app = create_app(FakeModel("classify"), ServeSettings(max_body_mb=1, max_pixels=1_000_000))
    with running(app) as service:
        yield service
