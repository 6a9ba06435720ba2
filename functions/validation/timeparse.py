"""Turn the time formats people export into Leanplum's Unix seconds, canonically.

Canonical text matters for idempotence: reading our own output must give back the same text.
Whole seconds print as an integer; anything else prints as Python's shortest round-trip
``repr`` of the float, which re-parses to the same float and so prints the same again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import tzinfo
from zoneinfo import ZoneInfo

import ciso8601

#: Below this a number is Unix seconds (up to the year 5138); below MILLIS_LIMIT, milliseconds
#: (from 1973 on). Anything larger (microseconds, nanoseconds) is refused rather than guessed.
SECONDS_LIMIT = 100_000_000_000
MILLIS_LIMIT = 100_000_000_000_000

_DECIMAL = re.compile(r"\d+\.\d*|\.\d+")

EMPTY = "time is empty"
UNPARSEABLE = "time is not ISO 8601, Unix seconds or Unix milliseconds"
TOO_LARGE = "time is too large for Unix seconds or milliseconds"

TimeValue = tuple[float, str]


def format_seconds(seconds: float) -> str:
    """Canonical text of a Unix time: integer when whole, else the shortest exact repr."""
    if seconds.is_integer():
        return str(int(seconds))
    return repr(seconds)


def zone_for(name: str) -> tzinfo:
    """The zone naive ISO times are read in; raises ValueError for an unknown name."""
    try:
        return ZoneInfo(name)
    except Exception as error:  # ZoneInfoNotFoundError, ValueError for odd keys
        raise ValueError(f"unknown time zone {name!r}") from error


class TimeParser:
    """Parses one time cell; ``parse`` returns None on failure so a chunk can test ``None in``.

    ``reason`` explains a failure afterwards: failures are rare, so the fast path stays lean.
    """

    def __init__(self, naive_zone: tzinfo) -> None:
        self._zone = naive_zone

    def parse(self, text: str) -> TimeValue | None:
        """Return (Unix seconds, canonical text) or None when ``text`` is not a time."""
        if text.isdigit() and text.isascii():
            number = int(text)
            if number < SECONDS_LIMIT:
                return float(number), (text if text[0] != "0" else str(number))
            if number < MILLIS_LIMIT:
                seconds = number / 1000
                return seconds, format_seconds(seconds)
            return None
        return self._parse_other(text)

    def parse_column(
        self, cells: Sequence[str], fill: float
    ) -> tuple[list[float], list[str], list[int]]:
        """``parse`` for every cell: (seconds, canonical texts, indexes that failed).

        A failed cell gets ``fill`` seconds and an empty text. The common shapes (digits,
        plain decimals, ISO 8601 without surrounding spaces) are handled inline, with the very
        same steps as ``parse``, because a function call per cell costs as much as the work;
        anything else is handed to ``parse`` itself.
        """
        seconds: list[float] = []
        texts: list[str] = []
        add_seconds = seconds.append
        add_text = texts.append
        decimal = _DECIMAL.fullmatch
        parse_datetime = ciso8601.parse_datetime
        zone = self._zone
        for text in cells:
            if text.isdigit() and text.isascii():
                number = int(text)
                if number < SECONDS_LIMIT:
                    add_seconds(float(number))
                    add_text(text if text[0] != "0" else str(number))
                    continue
                if number < MILLIS_LIMIT:
                    value = number / 1000
                    add_seconds(value)
                    add_text(str(int(value)) if value.is_integer() else repr(value))
                    continue
            elif "-" not in text and decimal(text):
                # (A decimal has no "-": testing that first spares ISO dates the regex.)
                value = float(text)
                if value < MILLIS_LIMIT:
                    if value >= SECONDS_LIMIT:
                        value /= 1000
                    add_seconds(value)
                    add_text(str(int(value)) if value.is_integer() else repr(value))
                    continue
            elif len(text.strip()) == len(text):
                try:
                    moment = parse_datetime(text)
                except ValueError:
                    pass
                else:
                    if moment.tzinfo is None:
                        moment = moment.replace(tzinfo=zone)
                    value = moment.timestamp()
                    add_seconds(value)
                    add_text(str(int(value)) if value.is_integer() else repr(value))
                    continue
            else:
                parsed = self.parse(text)
                if parsed is not None:
                    add_seconds(parsed[0])
                    add_text(parsed[1])
                    continue
            # Failed: marked by the empty text, which no parsed time has.
            add_seconds(fill)
            add_text("")
        failed = [index for index, text in enumerate(texts) if not text] if "" in texts else []
        return seconds, texts, failed

    def _parse_other(self, text: str) -> TimeValue | None:
        stripped = text.strip()
        if stripped != text:
            return self.parse(stripped) if stripped else None
        if _DECIMAL.fullmatch(text):
            seconds = float(text)
            if seconds >= MILLIS_LIMIT:
                return None
            if seconds >= SECONDS_LIMIT:
                seconds /= 1000
            return seconds, format_seconds(seconds)
        try:
            moment = ciso8601.parse_datetime(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self._zone)
        seconds = moment.timestamp()
        return seconds, format_seconds(seconds)

    def reason(self, text: str) -> str:
        """Why ``parse(text)`` failed."""
        stripped = text.strip()
        if not stripped:
            return EMPTY
        if (stripped.isdigit() and stripped.isascii()) or _DECIMAL.fullmatch(stripped):
            return TOO_LARGE
        return UNPARSEABLE
