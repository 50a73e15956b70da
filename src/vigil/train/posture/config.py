"""Settings of ``vigil train posture`` and the label classes it knows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from vigil.config import ConfigModel

UNKNOWN = "unknown"
"""What a reading that cannot be judged counts as in the evaluation."""

LABEL_ALIASES: Mapping[str, str] = {
    "sitting": "sitting",
    "sit": "sitting",
    "upright": "sitting",
    "sitting_upright": "sitting",
    "reclined": "sitting",
    "hunched": "sitting_hunched",
    "sitting_hunched": "sitting_hunched",
    "standing": "standing",
    "stand": "standing",
    "standing_upright": "standing",
    "standing_hunched": "standing_hunched",
}
"""Label names understood without a label map, and the class each one is."""

IGNORE = "ignore"
"""A label map value (like ``null``) that leaves records with that label out."""

Algorithm = Literal["logistic", "boosting"]
ALGORITHM_NAMES: Mapping[str, str] = {
    "logistic": "logistic regression",
    "boosting": "gradient boosting",
}


class PostureTrainingConfig(ConfigModel):
    """How ``vigil train posture`` splits the records and fits the classifier."""

    algorithm: Algorithm = Field(
        "logistic",
        description="logistic: standardised features, multinomial logistic regression (the "
        "default: as accurate as boosting on posture features, tiny and smooth); boosting: "
        "histogram gradient boosting (trees; can fit odd cases the angles miss).",
    )
    test_fraction: float = Field(
        0.25, ge=0.05, le=0.9, description="Share of the time blocks held out for the test set."
    )
    block_seconds: float = Field(
        60.0,
        gt=0,
        le=86_400,
        description="Length of the time blocks that go whole to training or test.",
    )
    gap_seconds: float = Field(
        2.0,
        ge=0,
        le=3600,
        description="Training records this close in time to a test record are dropped.",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the split and the model.")
