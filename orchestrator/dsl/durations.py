"""The times a WAIT task names: a ``duration`` to wait, or an instant to wait ``until``.

Both parsers are pure: they import no ``datetime`` or ``time`` (the engine's purity test
forbids them), read no clock and no time-zone database; dates are counted with integer
arithmetic on the proleptic Gregorian calendar. The engine adds a duration to the ``now`` its
input carries.

Durations follow Conductor's grammar: optional days, hours, minutes and seconds, in that order,
each a whole number and a unit (``d``/``day``/``days``, ``h``/``hr``/``hrs``/``hour``/``hours``,
``m``/``min``/``mins``/``minute``/``minutes``, ``s``/``sec``/``secs``/``second``/``seconds``),
case-insensitive, spaces optional: ``"30s"``, ``"5 minutes"``, ``"1d 2h 30m"``. A bare number
is seconds (``"90"``), which Conductor does not accept.

Instants take Conductor's forms ``yyyy-MM-dd HH:mm``, ``yyyy-MM-dd HH:mm z`` and
``yyyy-MM-dd``, and ISO 8601 (``2026-11-21T18:00:00Z``, seconds and fractions optional). A
zone is ``Z``, ``UTC`` or ``GMT``, optionally with an offset (``UTC+5``), or an offset alone
(``+05:30``, ``+0530``, ``-08``). Times without a zone are UTC. Named zones such as ``PST``
are refused: their abbreviations are ambiguous, and resolving them needs a zone database.
"""

from __future__ import annotations

import re

__all__ = ["parse_duration", "parse_until"]

#: The largest value either parser returns: the largest signed 64-bit integer (an Avro long).
MAX_MILLIS = 2**63 - 1

_SECOND_MS = 1_000
_MINUTE_MS = 60 * _SECOND_MS
_HOUR_MS = 60 * _MINUTE_MS
_DAY_MS = 24 * _HOUR_MS

_DURATION = re.compile(
    r"""\s*
    (?:(?P<days>[0-9]+)\s*(?:days?|d))?\s*
    (?:(?P<hours>[0-9]+)\s*(?:hours?|hrs?|h))?\s*
    (?:(?P<minutes>[0-9]+)\s*(?:minutes?|mins?|m))?\s*
    (?:(?P<seconds>[0-9]+)\s*(?:seconds?|secs?|s))?\s*""",
    re.IGNORECASE | re.VERBOSE,
)
_BARE_SECONDS = re.compile(r"\s*([0-9]+)\s*")
_UNIT_MS = {"days": _DAY_MS, "hours": _HOUR_MS, "minutes": _MINUTE_MS, "seconds": _SECOND_MS}

_INSTANT = re.compile(
    r"""\s*
    (?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})
    (?:[T\s]\s*
        (?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})
        (?::(?P<second>[0-9]{2})(?:[.,](?P<fraction>[0-9]{1,9}))?)?
    )?
    \s*(?P<zone>
        Z
        | (?:UTC|GMT)(?:\s*[+-][0-9]{1,2}(?::?[0-9]{2})?)?
        | [+-][0-9]{2}(?::?[0-9]{2})?
    )?\s*""",
    re.IGNORECASE | re.VERBOSE,
)
_NAMED_ZONE = re.compile(r"\s*[0-9]{4}-[0-9]{2}-[0-9]{2}[T\s].*[0-9]\s*[A-Za-z][\w/+-]*\s*")
_OFFSET = re.compile(r"(?P<sign>[+-])(?P<hours>[0-9]{1,2})(?::?(?P<minutes>[0-9]{2}))?")
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def parse_duration(text: str) -> int:
    """The length of a WAIT ``duration`` such as ``"1d 2h 30m"``, in milliseconds.

    Raises ValueError for an empty, negative or fractional duration, an unknown unit, or
    units out of order.
    """
    if not isinstance(text, str):
        raise ValueError(f"a duration must be a string, not {type(text).__name__}")
    if bare := _BARE_SECONDS.fullmatch(text):
        return _bounded(int(bare[1]) * _SECOND_MS, text)
    match = _DURATION.fullmatch(text)
    if not text.strip() or match is None or not any(match.groupdict().values()):
        raise ValueError(_duration_problem(text))
    millis = sum(int(value) * _UNIT_MS[unit] for unit, value in match.groupdict().items() if value)
    return _bounded(millis, text)


def parse_until(text: str) -> int:
    """The instant a WAIT ``until`` names, in milliseconds since the Unix epoch.

    Raises ValueError for any other form, a date or time that does not exist (``2026-02-30``,
    ``25:00``), or an offset of a day or more.
    """
    if not isinstance(text, str):
        raise ValueError(f"a time must be a string, not {type(text).__name__}")
    match = _INSTANT.fullmatch(text)
    if match is None:
        raise ValueError(_until_problem(text))
    fields = match.groupdict()
    year, month, day = int(fields["year"]), int(fields["month"]), int(fields["day"])
    hour, minute = int(fields["hour"] or 0), int(fields["minute"] or 0)
    second = int(fields["second"] or 0)
    if problem := _impossible_date(year, month, day) or _impossible_time(hour, minute, second):
        raise ValueError(f"{text!r} is not a real time: {problem}")
    millis = int((fields["fraction"] or "").ljust(3, "0")[:3])
    seconds = _days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second
    return (seconds - _offset_seconds(fields["zone"], text)) * _SECOND_MS + millis


def _impossible_date(year: int, month: int, day: int) -> str:
    """What makes this date impossible, or "" when it exists."""
    if not 1 <= month <= 12:
        return f"there is no month {month}"
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = 29 if month == 2 and leap else _DAYS_IN_MONTH[month - 1]
    if not 1 <= day <= days:
        return f"month {month} of {year} has {days} days"
    return ""


def _impossible_time(hour: int, minute: int, second: int) -> str:
    """What makes this time of day impossible, or "" when it exists."""
    if hour > 23 or minute > 59 or second > 59:
        return f"there is no time {hour:02}:{minute:02}:{second:02}"
    return ""


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to this proleptic Gregorian date (Howard Hinnant's algorithm)."""
    year -= 1 if month <= 2 else 0
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def _offset_seconds(zone: str | None, text: str) -> int:
    """The offset from UTC that ``zone`` names, in seconds; 0 when there is none."""
    offset = _OFFSET.search(zone or "")
    if offset is None:
        return 0
    hours, minutes = int(offset["hours"]), int(offset["minutes"] or 0)
    if hours >= 24 or minutes >= 60:
        raise ValueError(f"{text!r} has an offset out of range: {offset[0]}")
    sign = -1 if offset["sign"] == "-" else 1
    return sign * (hours * 3_600 + minutes * 60)


def _until_problem(text: str) -> str:
    """Why ``text`` is not a time, for the error message."""
    if _NAMED_ZONE.fullmatch(text):
        return (
            f"cannot read the time zone of {text!r}: use UTC, GMT or an offset such as "
            "+05:30; named zones are not supported"
        )
    return (
        f"cannot read {text!r} as a time: use 'yyyy-MM-dd HH:mm', 'yyyy-MM-dd HH:mm z', "
        "'yyyy-MM-dd' or ISO 8601 such as '2026-11-21T18:00:00Z'"
    )


def _duration_problem(text: str) -> str:
    """Why ``text`` is not a duration, for the error message."""
    if not text.strip():
        return "a duration cannot be empty"
    if text.strip().startswith("-"):
        return f"a duration cannot be negative: {text!r}"
    return (
        f"cannot read {text!r} as a duration: use whole numbers of days, hours, minutes and "
        "seconds in that order, such as '30s', '5 minutes' or '1d 2h 30m'"
    )


def _bounded(millis: int, text: str) -> int:
    """``millis``, or ValueError if it does not fit in a signed 64-bit integer."""
    if millis > MAX_MILLIS:
        raise ValueError(f"the duration {text!r} is too long")
    return millis
