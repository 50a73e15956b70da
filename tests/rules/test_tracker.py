"""The posture tracker rule: per-second records, state changes and reminders from frames."""

from __future__ import annotations

import numpy as np
import pytest

from tests.factories import pose_from_points, side_view
from vigil.frame import Frame
from vigil.results import COCO_17, Poses
from vigil.rules.posture import PostureRulesConfig
from vigil.rules.records import SecondAggregator
from vigil.rules.reminders import RemindersConfig
from vigil.rules.tracker import PostureStatus, PostureTracker
from vigil.stages.base import FrameResults

T0 = 1_700_000_000.0
IMAGE = np.zeros((4, 4, 3), np.uint8)
SITTING_UPRIGHT = pose_from_points(side_view(torso=-10, neck=15, thigh=5, knee=90))
SITTING_HUNCHED = pose_from_points(side_view(torso=35, neck=31, thigh=5, knee=90))
STANDING = pose_from_points(side_view(torso=0, neck=12, thigh=88, knee=178))
NOBODY = Poses.empty(COCO_17)


def feed(
    tracker: PostureTracker, timeline: list[tuple[float, Poses]]
) -> tuple[list, list[PostureStatus]]:
    events, statuses = [], []
    for index, (t, poses) in enumerate(timeline):
        results = FrameResults(poses=poses)
        events += tracker.update(Frame(IMAGE, T0 + t, index, "test"), results)
        statuses.append(results.extras["posture"])
    return events + tracker.flush(), statuses


def tracker(**reminders: float) -> PostureTracker:
    return PostureTracker("desk-1", PostureRulesConfig(), RemindersConfig(**reminders))


def test_one_record_per_second_with_the_frames_majority() -> None:
    timeline = [(i / 10, SITTING_UPRIGHT) for i in range(30)]
    timeline[12] = (1.2, STANDING)  # a single odd frame
    events, _ = feed(tracker(), timeline)
    records = [e for e in events if e.kind == "record"]
    assert [e.timestamp for e in records] == [T0, T0 + 1, T0 + 2]
    assert all(e.data["state"] == "sitting" and e.data["fps"] == 10 for e in records)
    assert records[0].data["torso_angle"] == pytest.approx(-10, abs=0.2)
    assert all(e.device_id == "desk-1" and e.app == "posture" for e in events)


def test_seconds_without_frames_have_no_record() -> None:
    events, _ = feed(
        tracker(), [(0.0, SITTING_UPRIGHT), (0.5, SITTING_UPRIGHT), (5.2, SITTING_UPRIGHT)]
    )
    assert [e.timestamp - T0 for e in events if e.kind == "record"] == [0, 5]


def test_state_events_on_changes_only() -> None:
    timeline = [(i / 5, SITTING_UPRIGHT) for i in range(10)]
    timeline += [(2 + i / 5, SITTING_HUNCHED) for i in range(10)]
    timeline += [(4 + i / 5, NOBODY) for i in range(10)]
    events, _ = feed(tracker(), timeline)
    changes = [
        (e.data["state"], e.data["hunched"], e.data["person_present"])
        for e in events
        if e.kind == "state"
    ]
    assert changes == [("sitting", True, True), ("unknown", False, False)]


def test_reminders_come_out_as_events_with_the_durations() -> None:
    timeline = [(float(t), SITTING_HUNCHED) for t in range(0, 125)]
    events, statuses = feed(tracker(sitting_minutes=2, hunching_minutes=1), timeline)
    reminders = [(e.data["reason"], e.timestamp - T0) for e in events if e.kind == "reminder"]
    assert reminders == [("hunching", 60.0), ("sitting", 120.0)]
    sitting_reminder = next(
        e for e in events if e.kind == "reminder" and e.data["reason"] == "sitting"
    )
    assert sitting_reminder.data["sitting_seconds"] == 120.0
    assert sitting_reminder.data["hunched_seconds"] == pytest.approx(120.0, abs=1)
    assert "2 min" in sitting_reminder.data["message"]
    assert statuses[-1].sitting_seconds == 124.0


def test_stills_are_judged_one_by_one() -> None:
    stills = PostureTracker("d", PostureRulesConfig(), RemindersConfig(), stills=True)
    _, statuses = feed(stills, [(0.0, SITTING_UPRIGHT), (1.0, STANDING), (2.0, SITTING_HUNCHED)])
    assert [(s.reading.state, s.reading.hunched) for s in statuses] == [
        ("sitting", False),
        ("standing", False),
        ("sitting", True),
    ]


def test_records_when_nobody_is_there() -> None:
    aggregator = SecondAggregator("d")
    feed_tracker = tracker()
    events, _ = feed(feed_tracker, [(i / 4, NOBODY) for i in range(8)])
    records = [e.data for e in events if e.kind == "record"]
    assert records and all(
        r["person_present"] is False and r["state"] == "unknown" for r in records
    )
    assert all(r["torso_angle"] is None and r["confidence"] is None for r in records)
    assert aggregator.flush() is None
