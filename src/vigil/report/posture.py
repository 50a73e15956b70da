"""The posture report: one self-contained HTML file with headline numbers, charts and reminders.

The file needs nothing but itself: styles are inline and charts are embedded PNG images, so it
opens offline and can be mailed or archived as it is. Every string that comes from records
(device ids, reminder titles and messages) is HTML-escaped.
"""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass
from datetime import datetime, tzinfo
from html import escape
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from vigil.errors import ConfigError, StorageError
from vigil.report.charts import (
    ACTIVITY_COLOURS,
    HUNCHED_COLOUR,
    REMINDER_STYLES,
    Chart,
    render_charts,
)
from vigil.report.summary import (
    DEFAULT_BREAK_SECONDS,
    Activity,
    PostureSummary,
    Reminder,
    summarize_posture,
)
from vigil.report.timeparse import check_period, format_local, local_zone
from vigil.storage.records import RecordStore

_TEMPLATE = "posture.html"
_ANY_DEVICE = "any device"


@dataclass(frozen=True, slots=True, eq=False)
class PostureReport:
    """A written posture report. Usable wherever a path is (``open(report)``, ``Path(report)``).

    Attributes:
        path: The HTML file.
        device_id: The device reported on, or None when the period held no record of any device.
        summary: The numbers behind the report.
        warning: One line to show the user when the report has nothing to show, else None.

    """

    path: Path
    device_id: str | None
    summary: PostureSummary
    warning: str | None

    @property
    def empty(self) -> bool:
        """True when the period held no posture record."""
        return self.summary.empty

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __str__(self) -> str:
        return str(self.path)


def write_posture_report(
    store: RecordStore,
    out_path: str | os.PathLike[str],
    *,
    device_id: str | None = None,
    since: float,
    until: float | None = None,
    tz: tzinfo | None = None,
    break_seconds: float = DEFAULT_BREAK_SECONDS,
) -> PostureReport:
    """Write the posture report of one device over ``[since, until)`` to ``out_path``.

    Args:
        store: The records database.
        out_path: The HTML file to write; its folder is created when missing.
        device_id: The device to report on; may be left out when only one device has records
            in the period.
        since: Start of the period, Unix seconds.
        until: End of the period (exclusive), Unix seconds; now by default.
        tz: Zone of the times, hours and days shown; the system's local zone by default.
        break_seconds: A pause in sitting shorter than this does not end a sitting streak.

    Returns:
        The written report; its ``warning`` is set when the period held no record.

    Raises:
        ConfigError: The period is empty, or several devices have records and none was chosen.
        StorageError: The database cannot be read or the file cannot be written.
        DependencyError: matplotlib is not installed (only needed when there is data to draw).

    """
    zone = tz or local_zone()
    end = time.time() if until is None else until
    check_period(since, end)
    records = store.posture_records(device_id, since, end)
    device = device_id if device_id is not None else _only_device(records)
    events = store.events(device, since, end, kind="reminder") if device is not None else []
    summary = summarize_posture(
        records, events, since=since, until=end, tz=zone, break_seconds=break_seconds
    )
    warning = _empty_warning(device, summary) if summary.empty else None
    html = render_posture_html(summary, device or _ANY_DEVICE, warning=warning)
    path = _write_text(Path(out_path).expanduser(), html)
    return PostureReport(path=path, device_id=device, summary=summary, warning=warning)


def _only_device(records: list[dict[str, Any]]) -> str | None:
    devices = sorted({str(record["device_id"]) for record in records})
    if len(devices) > 1:
        shown = ", ".join(devices[:5]) + (", ..." if len(devices) > 5 else "")
        raise ConfigError(
            f"posture records of {len(devices)} devices lie in this period ({shown}): "
            "choose one with --device-id"
        )
    return devices[0] if devices else None


def _empty_warning(device: str | None, summary: PostureSummary) -> str:
    return (
        f"no posture records for {device or _ANY_DEVICE} between "
        f"{format_local(summary.since, summary.tz)} and {format_local(summary.until, summary.tz)}"
    )


def _write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file, so a reader never sees half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"cannot create the folder {path.parent} for the report: {exc.strerror or exc}; "
            "choose another --out"
        ) from None
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise StorageError(
            f"cannot write the report {path}: {exc.strerror or exc}; choose another --out"
        ) from None
    return path


def render_posture_html(summary: PostureSummary, device: str, *, warning: str | None = None) -> str:
    """Return the whole report as one HTML document (charts are drawn unless it is empty)."""
    template = Template(
        resources.files("vigil.report").joinpath("templates", _TEMPLATE).read_text("utf-8")
    )
    return template.substitute(
        device=escape(device),
        period=escape(_period_text(summary)),
        body=_empty_body(summary, warning) if summary.empty else _full_body(summary),
        footer=escape(_footer_text(summary)),
    )


def _period_text(summary: PostureSummary) -> str:
    return f"{format_local(summary.since, summary.tz)} to {format_local(summary.until, summary.tz)}"


def _footer_text(summary: PostureSummary) -> str:
    return (
        "One posture record per second. Seconds without a record show as 'no record'. "
        "A sitting streak goes on through pauses (standing, away, no record) shorter than "
        f"{format_duration(summary.break_seconds)}. "
        f"Generated {format_local(time.time(), local_zone())} by Vigil."
    )


def _empty_body(summary: PostureSummary, warning: str | None) -> str:
    notice = warning or "no posture records in this period"
    text = notice[0].upper() + notice[1:]
    return f'<p class="notice">{escape(text)}.</p>\n{_reminders_section(summary)}'


def _full_body(summary: PostureSummary) -> str:
    parts = [_cards(summary)]
    parts.extend(_figure(chart) for chart in render_charts(summary))
    parts.append(_reminders_section(summary))
    return "\n".join(parts)


def _cards(summary: PostureSummary) -> str:
    cards = [
        _card(
            "Time sitting",
            format_duration(summary.sitting_seconds),
            _share_text(summary.sitting_seconds, summary.present_seconds),
            ACTIVITY_COLOURS[Activity.SITTING],
        ),
        _card(
            "Time standing",
            format_duration(summary.standing_seconds),
            _share_text(summary.standing_seconds, summary.present_seconds),
            ACTIVITY_COLOURS[Activity.STANDING],
        ),
        _card(
            "Hunched",
            _percent(summary.hunched_share),
            f"of sitting time ({format_duration(summary.hunched_sitting_seconds)})",
            HUNCHED_COLOUR,
        ),
        _streak_card(summary),
        _card(
            "Reminders sent",
            str(len(summary.reminders)),
            _reminder_counts_text(summary),
            REMINDER_STYLES["sitting"][0],
        ),
        _card(
            "At the desk",
            format_duration(summary.present_seconds),
            f"of {format_duration(summary.observed_seconds)} recorded",
            ACTIVITY_COLOURS[Activity.AWAY],
        ),
    ]
    return '<section class="cards">\n' + "\n".join(cards) + "\n</section>"


def _card(label: str, value: str, detail: str, colour: str) -> str:
    return (
        f'<div class="card" style="border-left-color: {colour}">'
        f'<div class="label">{escape(label)}</div><div class="value">{escape(value)}</div>'
        f'<div class="detail">{escape(detail)}</div></div>'
    )


def _streak_card(summary: PostureSummary) -> str:
    streak = summary.longest_streak
    colour = ACTIVITY_COLOURS[Activity.SITTING]
    if streak is None:
        return _card("Longest sitting streak", "none", "no sitting recorded", colour)
    span = _span_text(streak.start, streak.end, summary.tz)
    return _card("Longest sitting streak", format_duration(streak.duration), span, colour)


def _span_text(start: float, end: float, tz: tzinfo) -> str:
    """Return ``2026-11-20 09:12 to 10:59 CET``, repeating the date only when it changes."""
    first, last = datetime.fromtimestamp(start, tz), datetime.fromtimestamp(end, tz)
    end_format = "%H:%M" if first.date() == last.date() else "%Y-%m-%d %H:%M"
    zone = f" {last.tzname()}" if last.tzname() else ""
    return f"{first:%Y-%m-%d %H:%M} to {last.strftime(end_format)}{zone}"


def _reminder_counts_text(summary: PostureSummary) -> str:
    counts = summary.reminder_counts
    return ", ".join(f"{count} {reason}" for reason, count in counts.items()) or "none"


def _share_text(part: float, whole: float) -> str:
    return f"{part / whole:.0%} of time at the desk" if whole > 0 else "nobody at the desk"


def _percent(share: float | None) -> str:
    return "n/a" if share is None else f"{share:.0%}"


def format_duration(seconds: float) -> str:
    """Format seconds for people: ``45 s``, ``12 min``, ``5 h 07 min``."""
    if seconds < 59.5:
        return f"{round(seconds)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _figure(chart: Chart) -> str:
    data = base64.b64encode(chart.png).decode("ascii")
    return (
        f'<section class="chart" id="{chart.key}"><h2>{escape(chart.title)}</h2><figure>'
        f'<img src="data:image/png;base64,{data}" alt="{escape(chart.alt)}">'
        "</figure></section>"
    )


def _reminders_section(summary: PostureSummary) -> str:
    heading = '<section id="reminders"><h2>Reminders</h2>'
    if not summary.reminders:
        return f"{heading}<p>No reminders were sent in this period.</p></section>"
    rows = "\n".join(_reminder_row(reminder, summary.tz) for reminder in summary.reminders)
    return (
        f"{heading}<table><thead><tr><th>Time</th><th>Reason</th><th>Reminder</th>"
        f"<th>Sitting for</th><th>Hunched for</th></tr></thead>\n<tbody>\n{rows}\n"
        "</tbody></table></section>"
    )


def _reminder_row(reminder: Reminder, tz: tzinfo) -> str:
    colour = REMINDER_STYLES.get(reminder.reason, ("#555555", ""))[0]
    title = f"<strong>{escape(reminder.title)}</strong><br>" if reminder.title else ""
    return (
        f'<tr><td class="time">{escape(format_local(reminder.ts, tz, seconds=True))}</td>'
        f'<td><span class="reason" style="background: {colour}">{escape(reminder.reason)}'
        f"</span></td><td>{title}{escape(reminder.message)}</td>"
        f"<td>{_optional_duration(reminder.sitting_seconds)}</td>"
        f"<td>{_optional_duration(reminder.hunched_seconds)}</td></tr>"
    )


def _optional_duration(seconds: float | None) -> str:
    return "" if seconds is None else escape(format_duration(seconds))
