"""Reports over the records database: the posture report as one self-contained HTML file."""

from vigil.report.posture import PostureReport, format_duration, write_posture_report
from vigil.report.summary import (
    Activity,
    PostureSummary,
    Reminder,
    SittingStreak,
    StateRuns,
    TimeBuckets,
    summarize_posture,
)
from vigil.report.timeparse import local_zone, parse_since

__all__ = [
    "Activity",
    "PostureReport",
    "PostureSummary",
    "Reminder",
    "SittingStreak",
    "StateRuns",
    "TimeBuckets",
    "format_duration",
    "local_zone",
    "parse_since",
    "summarize_posture",
    "write_posture_report",
]
