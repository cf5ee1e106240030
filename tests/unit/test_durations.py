"""WAIT durations and instants parse as Conductor writes them; anything else is refused clearly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.dsl.durations import MAX_MILLIS, parse_duration, parse_until

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def epoch_ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """Milliseconds since the epoch of a UTC time."""
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()) * 1000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", 30 * SECOND),
        ("30 seconds", 30 * SECOND),
        ("1 second", SECOND),
        ("45 secs", 45 * SECOND),
        ("5m", 5 * MINUTE),
        ("5 minutes", 5 * MINUTE),
        ("1 min", MINUTE),
        ("2h", 2 * HOUR),
        ("2 hours", 2 * HOUR),
        ("3 hrs", 3 * HOUR),
        ("2 days", 2 * DAY),
        ("1d", DAY),
        ("1d 2h 30m", DAY + 2 * HOUR + 30 * MINUTE),
        ("1d2h30m15s", DAY + 2 * HOUR + 30 * MINUTE + 15 * SECOND),
        ("1 day 2 hours", DAY + 2 * HOUR),
        ("  1 DAY 2 Hours  ", DAY + 2 * HOUR),
        ("90", 90 * SECOND),
        (" 0 ", 0),
        ("0s", 0),
    ],
)
def test_durations(text: str, expected: int) -> None:
    """Conductor's units, alone or combined in order, and a bare number of seconds."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "cannot be empty"),
        ("   ", "cannot be empty"),
        ("-5s", "cannot be negative"),
        ("-90", "cannot be negative"),
        ("5w", "cannot read '5w' as a duration"),
        ("10 ms", "cannot read"),
        ("1.5h", "cannot read"),
        ("30m 2h", "in that order"),
        ("5 minutes 5", "cannot read"),
        ("soon", "cannot read"),
        ("٣s", "cannot read"),
        ("99999999999999999999d", "too long"),
    ],
)
def test_bad_durations(text: str, message: str) -> None:
    """Anything else raises ValueError saying what is wrong."""
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


def test_longest_duration_fits_a_long() -> None:
    """The largest duration accepted is the largest Avro long."""
    assert parse_duration(str(MAX_MILLIS // SECOND)) <= MAX_MILLIS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-21 18:00", epoch_ms(2026, 11, 21, 18, 0)),
        ("2026-11-21 18:00 UTC", epoch_ms(2026, 11, 21, 18, 0)),
        ("2026-11-21 18:00 GMT", epoch_ms(2026, 11, 21, 18, 0)),
        ("2026-11-21 18:00 +05:30", epoch_ms(2026, 11, 21, 12, 30)),
        ("2026-11-21 18:00 -0800", epoch_ms(2026, 11, 22, 2, 0)),
        ("2026-11-21 18:00 GMT-8", epoch_ms(2026, 11, 22, 2, 0)),
        ("2026-11-21 18:00 UTC+01:00", epoch_ms(2026, 11, 21, 17, 0)),
        ("2026-11-21", epoch_ms(2026, 11, 21)),
        ("2026-11-21T18:00:00Z", epoch_ms(2026, 11, 21, 18, 0)),
        ("2026-11-21T18:00Z", epoch_ms(2026, 11, 21, 18, 0)),
        ("2026-11-21t18:00:00z", epoch_ms(2026, 11, 21, 18, 0)),
        ("2026-11-21T18:00:00", epoch_ms(2026, 11, 21, 18, 0)),
        ("2026-11-21T18:00:00.250+01:00", epoch_ms(2026, 11, 21, 17, 0) + 250),
        ("2026-11-21T18:00:00.123456789Z", epoch_ms(2026, 11, 21, 18, 0) + 123),
        ("1969-12-31T23:59:59.999Z", -1),
        ("2024-02-29 12:00", epoch_ms(2024, 2, 29, 12, 0)),
        ("2000-02-29", epoch_ms(2000, 2, 29)),
    ],
)
def test_instants(text: str, expected: int) -> None:
    """Conductor's three forms and ISO 8601; naive times are UTC."""
    assert parse_until(text) == expected


@given(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
)
def test_instants_agree_with_datetime(moment: datetime, offset_minutes: int) -> None:
    """Integer calendar arithmetic gives what datetime gives, for any date, time and offset."""
    zone = timezone(timedelta(minutes=offset_minutes))
    aware = moment.replace(microsecond=moment.microsecond // 1000 * 1000, tzinfo=zone)
    expected = (aware - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    assert parse_until(aware.isoformat()) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "cannot read '' as a time"),
        ("tomorrow", "cannot read 'tomorrow' as a time"),
        ("21/11/2026 18:00", "cannot read"),
        ("2026-11-21 18", "cannot read"),
        ("2026-11-21 18:00 PST", "named zones are not supported"),
        ("2026-11-21 18:00 Europe/Paris", "named zones are not supported"),
        ("2026-02-30", "month 2 of 2026 has 28 days"),
        ("2100-02-29", "month 2 of 2100 has 28 days"),
        ("2026-13-01", "there is no month 13"),
        ("2026-11-21 24:00", "is not a real time"),
        ("2026-11-21 18:00 +24:00", "offset out of range"),
        ("2026-11-21 18:00 +05:60", "offset out of range"),
    ],
)
def test_bad_instants(text: str, message: str) -> None:
    """Other forms, impossible dates and unknown zones raise ValueError saying what is wrong."""
    with pytest.raises(ValueError, match=message):
        parse_until(text)
