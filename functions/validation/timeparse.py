"""Turn the time formats people and warehouses export into Leanplum's Unix seconds, canonically.

Accepted forms, and the name each is counted under in the report's ``time_formats``:

- ``unix_seconds``, ``unix_milliseconds``, ``unix_microseconds``, ``unix_nanoseconds``: a
  non-negative integer or decimal, its unit told by magnitude, every unit covering the same
  span of dates (1973-03-03 to the year 5138; seconds from 1970):

  ==================  =========================  ======  ===========================
  unit                range of the number        digits  who writes it
  ==================  =========================  ======  ===========================
  seconds             0 <= n < 10^11             <= 11   Leanplum, most tools
  milliseconds        10^11 <= n < 10^14         12-14   JavaScript, Java, Segment
  microseconds        10^14 <= n < 10^17         15-17   GA4 ``event_timestamp`` (16)
  nanoseconds         10^17 <= n < 10^20         18-20   Spark, Parquet, pandas (19)
  ==================  =========================  ======  ===========================

  The ranges cannot overlap, so the unit is never guessed; the price is that an instant before
  1973-03-03 written in a unit finer than seconds reads as a far-future time and is rejected
  as such (no real event is that old: MIN_EVENT_TIME rejects anything before 2000 anyway).
  10^20 and above is rejected as too large.
- ``iso8601``: ISO 8601 with ``Z`` or an offset (``+HH``, ``+HHMM``, ``+HH:MM``), with
  ``T`` or a space between date and time (the space: Snowflake, Redshift, Postgres, Spark,
  BigQuery's ``+00``, e.g. ``2026-11-20 12:00:00.123456789+00``); fractions of any length
  (beyond microseconds they are truncated: a double cannot hold more at today's dates).
- ``sql_utc``: a time without zone followed by `` UTC``: BigQuery's CSV TIMESTAMP,
  ``2026-11-20 12:00:00[.ffffff] UTC``.
- ``naive``: ISO 8601 or SQL text with no zone at all (BigQuery DATETIME, ``2026-11-20``).
  Such a time names no instant, so it is rejected unless the caller names the zone it was
  written in (``naive_timezone``, an IANA name). Wall-clock times that a DST change makes
  ambiguous are resolved as Python's ``zoneinfo`` does with ``fold=0``: in an overlap (autumn)
  the earlier instant, still on summer time; in a gap (spring) the offset in force before the
  gap, so ``02:30`` on the day Berlin skips to ``03:00`` is read as ``03:30`` summer time.

Canonical text matters for idempotence: reading our own output must give back the same text.
Whole seconds print as an integer; anything else prints as Python's shortest round-trip
``repr`` of the float, which re-parses to the same float and so prints the same again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo

import ciso8601

#: Upper bounds (exclusive) of seconds, milliseconds, microseconds and nanoseconds: see above.
SECONDS_LIMIT = 10**11
MILLIS_LIMIT = 10**14
MICROS_LIMIT = 10**17
NANOS_LIMIT = 10**20

#: Report names of the formats, in the order the report lists them.
FORMATS = (
    "unix_seconds",
    "unix_milliseconds",
    "unix_microseconds",
    "unix_nanoseconds",
    "iso8601",
    "sql_utc",
    "naive",
)
_UNITS = (
    (SECONDS_LIMIT, 1, "unix_seconds"),
    (MILLIS_LIMIT, 1000, "unix_milliseconds"),
    (MICROS_LIMIT, 1_000_000, "unix_microseconds"),
    (NANOS_LIMIT, 1_000_000_000, "unix_nanoseconds"),
)

_DECIMAL = re.compile(r"\d+\.\d*|\.\d+")
_UTC_SUFFIX = " UTC"

EMPTY = "time is empty"
UNPARSEABLE = (
    "time is not Unix seconds, milliseconds, microseconds or nanoseconds,"
    " ISO 8601 or a SQL timestamp"
)
TOO_LARGE = "time is too large for Unix seconds, milliseconds, microseconds or nanoseconds"
NAIVE = (
    "time has no time zone (no Z, offset or UTC): it names no instant; export it with a zone"
    " (BigQuery TIMESTAMP, not DATETIME) or set NAIVE_TIME_ZONE (--naive-time-zone) to the"
    " zone it was written in"
)

#: (Unix seconds, canonical text, format name).
TimeValue = tuple[float, str, str]


def format_seconds(seconds: float) -> str:
    """Canonical text of a Unix time: integer when whole, else the shortest exact repr."""
    if seconds.is_integer():
        return str(int(seconds))
    return repr(seconds)


def zone_for(name: str | None) -> tzinfo | None:
    """The zone naive times are read in (None: they are rejected); ValueError for a bad name."""
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except Exception as error:  # ZoneInfoNotFoundError, ValueError for odd keys
        raise ValueError(
            f"unknown time zone {name!r}: expected an IANA name such as UTC or Europe/Berlin"
        ) from error


def _number(value: int | float) -> tuple[float, str] | None:
    """Seconds and format name of a non-negative Unix time in some unit, or None if too big."""
    for limit, divisor, name in _UNITS:
        if value < limit:
            # int / int is correctly rounded, so even 19-digit nanoseconds lose nothing more.
            return (value / divisor if divisor != 1 else float(value)), name
    return None


class TimeParser:
    """Parses one time cell; ``parse`` returns None on failure so a chunk can test ``None in``.

    ``reason`` explains a failure afterwards: failures are rare, so the fast path stays lean.
    """

    def __init__(self, naive_zone: tzinfo | None) -> None:
        self._zone = naive_zone

    def parse(self, text: str) -> TimeValue | None:
        """Return (Unix seconds, canonical text, format) or None when ``text`` is not a time."""
        if text.isdigit() and text.isascii():
            number = int(text)
            if number < SECONDS_LIMIT:
                return float(number), (text if text[0] != "0" else str(number)), "unix_seconds"
            found = _number(number)
            if found is None:
                return None
            return found[0], format_seconds(found[0]), found[1]
        stripped = text.strip()
        if stripped != text:
            return self.parse(stripped) if stripped else None
        if _DECIMAL.fullmatch(text):
            found = _number(float(text))
            if found is None:
                return None
            return found[0], format_seconds(found[0]), found[1]
        if text.endswith(_UTC_SUFFIX):
            try:
                moment = ciso8601.parse_datetime(text[: -len(_UTC_SUFFIX)])
            except ValueError:
                return None
            if moment.tzinfo is not None:
                return None
            seconds = moment.replace(tzinfo=UTC).timestamp()
            return seconds, format_seconds(seconds), "sql_utc"
        try:
            moment = ciso8601.parse_datetime(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            if self._zone is None:
                return None
            seconds = moment.replace(tzinfo=self._zone).timestamp()
            return seconds, format_seconds(seconds), "naive"
        seconds = moment.timestamp()
        return seconds, format_seconds(seconds), "iso8601"

    def parse_column(
        self, cells: Sequence[str], fill: float
    ) -> tuple[list[float], list[str], list[int], dict[str, int]]:
        """``parse`` for every cell: (seconds, canonical texts, indexes that failed, counts).

        A failed cell gets ``fill`` seconds and an empty text; ``counts`` holds the number of
        cells read in each format (only formats seen). The common shapes (digits, plain
        decimals, ISO 8601 and SQL text without surrounding spaces) are handled inline, with
        the very same steps as ``parse``, because a function call per cell costs as much as
        the work; anything else is handed to ``parse`` itself.
        """
        seconds: list[float] = []
        texts: list[str] = []
        add_seconds = seconds.append
        add_text = texts.append
        decimal = _DECIMAL.fullmatch
        parse_datetime = ciso8601.parse_datetime
        zone = self._zone
        other: dict[str, int] = dict.fromkeys(FORMATS, 0)
        unix = millis = 0
        for text in cells:
            if text.isdigit() and text.isascii():
                number = int(text)
                if number < SECONDS_LIMIT:
                    add_seconds(float(number))
                    add_text(text if text[0] != "0" else str(number))
                    unix += 1
                    continue
                if number < MILLIS_LIMIT:
                    value = number / 1000
                    add_seconds(value)
                    add_text(str(int(value)) if value.is_integer() else repr(value))
                    millis += 1
                    continue
                found = _number(number)
                if found is not None:
                    value = found[0]
                    add_seconds(value)
                    add_text(str(int(value)) if value.is_integer() else repr(value))
                    other[found[1]] += 1
                    continue
            elif "-" not in text and decimal(text):
                # (A decimal has no "-": testing that first spares ISO dates the regex.)
                value = float(text)
                if value < SECONDS_LIMIT:
                    add_seconds(value)
                    add_text(str(int(value)) if value.is_integer() else repr(value))
                    unix += 1
                    continue
                found = _number(value)
                if found is not None:
                    value = found[0]
                    add_seconds(value)
                    add_text(str(int(value)) if value.is_integer() else repr(value))
                    other[found[1]] += 1
                    continue
            elif text and len(text.strip()) == len(text):
                # (Testing the last character first spares other ISO text the slower call.)
                if text[-1] == "C" and text.endswith(_UTC_SUFFIX):
                    try:
                        moment = parse_datetime(text[:-4])
                    except ValueError:
                        pass
                    else:
                        if moment.tzinfo is None:
                            value = moment.replace(tzinfo=UTC).timestamp()
                            add_seconds(value)
                            add_text(str(int(value)) if value.is_integer() else repr(value))
                            other["sql_utc"] += 1
                            continue
                    add_seconds(fill)
                    add_text("")
                    continue
                try:
                    moment = parse_datetime(text)
                except ValueError:
                    pass
                else:
                    if moment.tzinfo is None:
                        if zone is None:
                            add_seconds(fill)
                            add_text("")
                            continue
                        moment = moment.replace(tzinfo=zone)
                        other["naive"] += 1
                    value = moment.timestamp()
                    add_seconds(value)
                    add_text(str(int(value)) if value.is_integer() else repr(value))
                    continue
            else:
                parsed = self.parse(text)
                if parsed is not None:
                    add_seconds(parsed[0])
                    add_text(parsed[1])
                    other[parsed[2]] += 1
                    continue
            # Failed: marked by the empty text, which no parsed time has.
            add_seconds(fill)
            add_text("")
        failed = [index for index, text in enumerate(texts) if not text] if "" in texts else []
        other["unix_seconds"] += unix
        other["unix_milliseconds"] += millis
        # ISO 8601 with a zone, the one format not counted cell by cell: every other cell
        # that was read is counted above, so these are the rest.
        other["iso8601"] += len(texts) - len(failed) - sum(other.values())
        counts = {name: count for name, count in other.items() if count}
        return seconds, texts, failed, counts

    def reason(self, text: str) -> str:
        """Why ``parse(text)`` failed."""
        stripped = text.strip()
        if not stripped:
            return EMPTY
        if (stripped.isdigit() and stripped.isascii()) or _DECIMAL.fullmatch(stripped):
            return TOO_LARGE
        if self._zone is None and not stripped.endswith(_UTC_SUFFIX):
            try:
                moment = ciso8601.parse_datetime(stripped)
            except ValueError:
                pass
            else:
                if moment.tzinfo is None:
                    return NAIVE
        return UNPARSEABLE
