from datetime import UTC, datetime, timedelta, timezone

import pytest

from vigil.errors import ConfigError
from vigil.report import local_zone, parse_since
from vigil.report.timeparse import check_period, format_local

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC).timestamp()
PLUS_ONE = timezone(timedelta(hours=1))


def at(*fields: int, tz: timezone = PLUS_ONE) -> float:
    return datetime(*fields, tzinfo=tz).timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", NOW - 30),
        ("90m", NOW - 90 * 60),
        ("24h", NOW - 24 * 3600),
        ("7d", NOW - 7 * 86_400),
        ("2w", NOW - 14 * 86_400),
        ("1.5h", NOW - 5400),
        ("0h", NOW),
        (" 24H ", NOW - 24 * 3600),
        ("12 h", NOW - 12 * 3600),
        ("now", NOW),
        ("2026-11-20", at(2026, 11, 20)),
        ("2026-11-20T08:00", at(2026, 11, 20, 8)),
        ("2026-11-20 08:00:30", at(2026, 11, 20, 8, 0, 30)),
        ("2026-11-20T08:00+00:00", at(2026, 11, 20, 8, tz=UTC)),
        ("2026-11-20T08:00Z", at(2026, 11, 20, 8, tz=UTC)),
        ("2026-11-20T08:00-05:00", at(2026, 11, 20, 13, tz=UTC)),
    ],
)
def test_accepted_forms(text: str, expected: float) -> None:
    assert parse_since(text, NOW, tz=PLUS_ONE) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "24",
        "h",
        "-2h",
        "2y",
        "24 hours",
        "yesterday",
        "1e3h",
        "2026-13-01",
        "2026-11-20T25:00",
        "20.11.2026",
        "2026/11/20",
        "nowish",
    ],
)
def test_rejected_forms_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_since(text, NOW)
    message = str(caught.value)
    assert message.startswith(f"--since {text!r} is not a time")
    assert "24h" in message
    assert "2026-11-20T08:00" in message
    assert "\n" not in message


def test_the_error_names_the_option_it_parsed() -> None:
    with pytest.raises(ConfigError, match=r"^--until 'soon' is not a time"):
        parse_since("soon", NOW, option="--until")


def test_naive_times_are_read_in_the_system_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    assert parse_since("2026-11-20T09:00", NOW) == at(2026, 11, 20, 0, tz=UTC)


def test_local_zone_follows_tz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kathmandu")
    moment = datetime(2026, 11, 20, tzinfo=local_zone())
    assert moment.utcoffset() == timedelta(hours=5, minutes=45)


def test_local_zone_ignores_an_unknown_tz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Not/AZone")
    assert datetime(2026, 11, 20, tzinfo=local_zone()).utcoffset() is not None


@pytest.mark.parametrize(("since", "until"), [(NOW, NOW - 1), (NOW, NOW)])
def test_a_period_must_end_after_it_starts(since: float, until: float) -> None:
    with pytest.raises(ConfigError, match=r"period is empty: --since \(.*\) must be earlier"):
        check_period(since, until)


def test_an_empty_period_can_be_allowed() -> None:
    check_period(NOW, NOW, allow_empty=True)
    with pytest.raises(ConfigError):
        check_period(NOW, NOW - 1, allow_empty=True)


def test_format_local_shows_the_zone() -> None:
    tz = timezone(timedelta(hours=1), "CET")
    assert format_local(at(2026, 11, 20, 8, 5), tz) == "2026-11-20 08:05 CET"
    assert format_local(at(2026, 11, 20, 8, 5, 9), tz, seconds=True) == "2026-11-20 08:05:09 CET"
