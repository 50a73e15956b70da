import subprocess
import sys

import vigil.report


def test_public_api() -> None:
    assert vigil.report.__all__ == [
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
    for name in vigil.report.__all__:
        assert getattr(vigil.report, name) is not None


def test_importing_reports_does_not_import_matplotlib() -> None:
    code = "import sys, vigil.report; print('matplotlib' in sys.modules)"
    command = [sys.executable, "-c", code]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
