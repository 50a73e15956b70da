"""docs/models.md stays true: the spec reference and the metrics are what the code says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vigil.config.reference import reference_yaml
from vigil.models.spec import ModelSpec

DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"


def test_the_spec_reference_is_current() -> None:
    block = re.search(r"<!-- spec-reference -->\n```yaml\n(.*?)```\n", DOC.read_text(), re.S)
    assert block is not None, "docs/models.md has no spec reference"
    assert block.group(1) == reference_yaml(ModelSpec), (
        "the spec reference in docs/models.md is stale: paste "
        "vigil.config.reference.reference_yaml(ModelSpec) between its markers"
    )


def test_every_service_metric_is_documented() -> None:
    pytest.importorskip("prometheus_client", reason="the service needs the 'serve' extra")
    from vigil.serve.metrics import ServiceMetrics

    families = {metric.name for metric in ServiceMetrics().registry.collect()}
    documented = set(re.findall(r"`(vigil_[a-z_]+)", DOC.read_text()))
    shown = {name.removesuffix("_total") for name in documented}
    assert families <= shown, families - shown
