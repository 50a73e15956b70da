"""Charts of a posture summary as PNG images, drawn with matplotlib's object-oriented API.

matplotlib is imported inside the functions that draw, so the rest of Vigil imports without it;
figures are drawn on their own Agg canvas and never touch pyplot's global state.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

import numpy as np

from vigil.errors import DependencyError
from vigil.report.summary import (
    Activity,
    FloatArray,
    PostureSummary,
    Reminder,
    TimeBuckets,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ACTIVITY_COLOURS = {
    Activity.SITTING: "#E69F00",
    Activity.STANDING: "#009E73",
    Activity.UNKNOWN: "#8C8C8C",
    Activity.AWAY: "#9CCBEA",
}
"""Colour-blind-safe colours (Okabe-Ito) of the activities, shared with the HTML legend."""

ACTIVITY_LABELS = {
    Activity.SITTING: "sitting",
    Activity.STANDING: "standing",
    Activity.UNKNOWN: "posture unknown",
    Activity.AWAY: "away",
}
NO_DATA_COLOUR = "#ECECEC"
NO_DATA_LABEL = "no record"
HUNCHED_COLOUR = "#D55E00"
SAT_HOUR_COLOUR = "#F4F4F4"
REMINDER_STYLES = {"sitting": ("#0072B2", "v"), "hunching": ("#CC79A7", "D")}
OTHER_REMINDER_STYLE = ("#333333", "o")
TEXT_COLOUR = "#333333"
DPI = 120
WIDTH_INCHES = 10.0
MARGIN_LEFT_INCHES = 0.9
MARGIN_RIGHT_INCHES = 0.5
MARGIN_TOP_INCHES = 0.15
MARGIN_BOTTOM_INCHES = 0.6
LEGEND_INCHES = 0.3
HOUR_BAR_FILL = 0.92
SEPARATED_HOURS = 48
"""Up to this many hours, hourly bars cover HOUR_BAR_FILL of their hour, leaving a thin white
separator; longer periods draw them edge to edge."""
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Chart:
    """One rendered chart.

    Attributes:
        key: A short identifier, e.g. ``"hourly"``.
        title: The heading shown above the image.
        alt: A sentence describing the image for screen readers.
        png: The PNG image.

    """

    key: str
    title: str
    alt: str
    png: bytes


def render_charts(summary: PostureSummary) -> list[Chart]:
    """Draw every chart that suits the period of ``summary``, in reading order.

    Raises:
        DependencyError: matplotlib is not installed.

    """
    _require_matplotlib()
    charts = [
        Chart(
            "timeline",
            "Timeline",
            "The period as a strip of activity colours with reminder markers.",
            _png(timeline_figure(summary)),
        ),
        Chart(
            "hourly",
            "Sitting and standing per hour",
            "Stacked bars of minutes per hour sitting, standing, unknown and away.",
            _png(hourly_figure(summary)),
        ),
        Chart(
            "hunched",
            "Hunched per hour",
            "Bars of the share of sitting time spent hunched in each hour.",
            _png(hunched_figure(summary)),
        ),
    ]
    if summary.period_seconds > SECONDS_PER_DAY:
        charts.append(
            Chart(
                "daily",
                "Per day",
                "Stacked bars of hours per day sitting, standing, unknown and away.",
                _png(daily_figure(summary)),
            )
        )
    return charts


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise DependencyError("matplotlib", "report", "the posture report") from None


def _new_figure(height: float, *, legend: bool) -> tuple[Figure, Axes]:
    """Return a figure with one axes placed at fixed margins, so charts line up on the page."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI)
    FigureCanvasAgg(figure)
    bottom = MARGIN_BOTTOM_INCHES + (LEGEND_INCHES if legend else 0.0)
    figure.subplots_adjust(
        left=MARGIN_LEFT_INCHES / WIDTH_INCHES,
        right=1 - MARGIN_RIGHT_INCHES / WIDTH_INCHES,
        bottom=bottom / height,
        top=1 - MARGIN_TOP_INCHES / height,
    )
    return figure, figure.add_subplot()


def _legend_below(figure: Figure, handles: list[Any]) -> None:
    figure.legend(
        handles=handles,
        loc="lower center",
        ncol=len(handles),
        frameon=False,
        fontsize=9,
        handlelength=1.4,
        columnspacing=1.6,
    )


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def _date_numbers(timestamps: FloatArray) -> FloatArray:
    from matplotlib.dates import date2num

    milliseconds = np.round(np.asarray(timestamps) * 1000.0).astype(np.int64)
    numbers = date2num(milliseconds.astype("datetime64[ms]"))  # type: ignore[no-untyped-call]
    return np.asarray(numbers, dtype=np.float64)


def _style(axes: Axes) -> None:
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.tick_params(colors=TEXT_COLOUR, labelsize=9)
    axes.yaxis.label.set_color(TEXT_COLOUR)
    axes.xaxis.label.set_color(TEXT_COLOUR)


def _time_axis(axes: Axes, summary: PostureSummary) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator(tz=summary.tz, minticks=4, maxticks=14)  # type: ignore[no-untyped-call]
    formatter = ConciseDateFormatter(  # type: ignore[no-untyped-call]
        locator,
        tz=summary.tz,
        formats=["%Y", "%b", "%a %d", "%H:%M", "%H:%M", "%S"],
        zero_formats=["", "%Y", "%b", "%a %d %b", "%H:%M", "%H:%M"],
        show_offset=False,
    )
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(formatter)
    start, end = _date_numbers(np.array([summary.since, summary.until]))
    axes.set_xlim(start, max(end, start + 1.0 / 24))
    axes.set_xlabel(f"local time ({_zone_name(summary.tz, summary.since)})")


def _zone_name(tz: tzinfo, timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz).tzname() or "local"


def _stacked_activity(
    axes: Axes, positions: FloatArray, widths: FloatArray, buckets: TimeBuckets, scale: float
) -> list[Any]:
    """Stack the activities of each bucket (in units of ``scale`` seconds) with no data on top.

    Returns:
        The legend handles, one per layer.

    """
    layers = [
        (buckets.sitting, Activity.SITTING),
        (buckets.standing, Activity.STANDING),
        (buckets.unknown, Activity.UNKNOWN),
        (buckets.away, Activity.AWAY),
    ]
    bottom = np.zeros(len(buckets))
    handles = []
    for seconds, activity in layers:
        height = seconds / scale
        handles.append(
            axes.bar(
                positions,
                height,
                widths,
                bottom=bottom,
                align="edge",
                color=ACTIVITY_COLOURS[activity],
                label=ACTIVITY_LABELS[activity],
            )
        )
        bottom = bottom + height
    handles.append(
        axes.bar(
            positions,
            buckets.no_data / scale,
            widths,
            bottom=bottom,
            align="edge",
            color=NO_DATA_COLOUR,
            label=NO_DATA_LABEL,
        )
    )
    return handles


def _hour_bars(summary: PostureSummary) -> tuple[FloatArray, FloatArray]:
    """Return the left edges and widths (date units) of the hourly bars."""
    starts = _date_numbers(summary.hourly.starts)
    fill = HOUR_BAR_FILL if len(summary.hourly) <= SEPARATED_HOURS else 1.0
    return starts, (_date_numbers(summary.hourly.ends) - starts) * fill


def hourly_figure(summary: PostureSummary) -> Figure:
    """Draw stacked bars of minutes per local hour sitting, standing, unknown, away, unrecorded."""
    figure, axes = _new_figure(3.4, legend=True)
    starts, widths = _hour_bars(summary)
    handles = _stacked_activity(axes, starts, widths, summary.hourly, scale=60.0)
    axes.set_ylim(0, 60)
    axes.set_yticks([0, 15, 30, 45, 60])
    axes.set_ylabel("minutes per hour")
    _time_axis(axes, summary)
    _style(axes)
    _legend_below(figure, handles)
    return figure


def hunched_figure(summary: PostureSummary) -> Figure:
    """Draw the share of sitting time spent hunched in each local hour, and the period's share."""
    figure, axes = _new_figure(3.0, legend=True)
    share = summary.hourly.hunched_share
    sat = ~np.isnan(share)
    starts, widths = _hour_bars(summary)
    handles = [
        axes.bar(
            starts[sat],
            np.full(np.count_nonzero(sat), 100.0),
            widths[sat],
            align="edge",
            color=SAT_HOUR_COLOUR,
            label="hour with sitting",
        ),
        axes.bar(
            starts[sat],
            share[sat] * 100,
            widths[sat],
            align="edge",
            color=HUNCHED_COLOUR,
            label="hunched share of the hour's sitting",
        ),
    ]
    _period_share_line(axes, summary.hunched_share)
    axes.set_ylim(0, 100)
    axes.set_yticks([0, 25, 50, 75, 100])
    axes.set_ylabel("% of sitting time\nhunched")
    _time_axis(axes, summary)
    _style(axes)
    _legend_below(figure, handles)
    return figure


def _period_share_line(axes: Axes, share: float | None) -> None:
    if share is None:
        axes.text(
            0.5,
            0.5,
            "no sitting recorded",
            transform=axes.transAxes,
            ha="center",
            va="center",
            color=TEXT_COLOUR,
        )
        return
    from matplotlib.transforms import blended_transform_factory

    axes.axhline(share * 100, color=TEXT_COLOUR, linestyle="--", linewidth=1)
    where = blended_transform_factory(axes.transAxes, axes.transData)
    axes.text(
        0.995,
        share * 100 + 1.5,
        f"whole period: {share:.0%}",
        transform=where,
        ha="right",
        va="bottom",
        fontsize=9,
        color=TEXT_COLOUR,
        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
    )


def timeline_figure(summary: PostureSummary) -> Figure:
    """Draw the period as a strip of activity colours, with a marker for every reminder."""
    figure, axes = _new_figure(2.0, legend=True)
    axes.axhspan(0, 1, color=NO_DATA_COLOUR, linewidth=0)
    runs = summary.timeline
    starts = _date_numbers(runs.starts)
    widths = _date_numbers(runs.ends) - starts
    for activity in Activity:
        chosen = runs.activities == activity
        spans = list(zip(starts[chosen].tolist(), widths[chosen].tolist(), strict=True))
        axes.broken_barh(
            spans, (0, 1), color=ACTIVITY_COLOURS[activity], label=ACTIVITY_LABELS[activity]
        )
    _reminder_markers(axes, summary.reminders)
    axes.set_ylim(0, 1.45)
    axes.set_yticks([])
    axes.spines["left"].set_visible(False)
    _time_axis(axes, summary)
    _style(axes)
    _legend_below(figure, _timeline_handles(axes))
    return figure


def _reminder_markers(axes: Axes, reminders: tuple[Reminder, ...]) -> None:
    by_reason: dict[str, list[float]] = {}
    for reminder in reminders:
        by_reason.setdefault(reminder.reason, []).append(reminder.ts)
    for reason, times in sorted(by_reason.items()):
        colour, marker = REMINDER_STYLES.get(reason, OTHER_REMINDER_STYLE)
        positions = _date_numbers(np.asarray(times, dtype=np.float64))
        axes.vlines(positions, 0, 1.15, colors=colour, linewidth=1.2)
        axes.plot(
            positions,
            np.full(len(positions), 1.25),
            linestyle="none",
            marker=marker,
            color=colour,
            markersize=8,
            label=f"{reason} reminder",
        )


def _timeline_handles(axes: Axes) -> list[Any]:
    from matplotlib.patches import Patch

    handles, _ = axes.get_legend_handles_labels()
    handles.append(Patch(facecolor=NO_DATA_COLOUR, label=NO_DATA_LABEL))
    return list(handles)


def daily_figure(summary: PostureSummary) -> Figure:
    """Draw stacked bars of hours per local day sitting, standing, unknown, away, unrecorded."""
    figure, axes = _new_figure(3.4, legend=True)
    daily = summary.daily
    positions = np.arange(len(daily), dtype=np.float64) - 0.4
    handles = _stacked_activity(axes, positions, np.full(len(daily), 0.8), daily, scale=3600.0)
    axes.set_xticks(positions + 0.4, _day_labels(daily.starts, summary.tz))
    axes.set_xlim(-0.6, len(daily) - 0.4)
    axes.set_ylim(0, 25)
    axes.set_yticks([0, 4, 8, 12, 16, 20, 24])
    axes.set_ylabel("hours per day")
    axes.set_xlabel(f"local date ({_zone_name(summary.tz, summary.since)})")
    _style(axes)
    _legend_below(figure, handles)
    return figure


def _day_labels(starts: FloatArray, tz: tzinfo) -> list[str]:
    return [datetime.fromtimestamp(float(ts), tz).strftime("%a %d %b") for ts in starts]
