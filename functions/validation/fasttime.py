"""``TimeParser.parse_column`` for whole groups of cells at once, same results.

Why: the reference parses one cell per Python step, which is a sixth of a validation's time.
Exports write times in a few fixed shapes, and cells of one shape have one length. So the
cells of a chunk are grouped by length (one C-level sort); each group is joined into one
string and tested with one regular expression for a shape whose every cell the reference
would read the same simple way (plain digits, a plain decimal, ISO 8601 with ``Z`` or an
offset, ``... UTC``); the group is then converted with ``map`` over C functions (``float``,
``int`` true division, ``ciso8601``, ``datetime.timestamp``) and its canonical texts made
with one ``repr`` per value and one substitution. A group of any other shape, or one where
a conversion fails, is handed to the reference ``parse_column`` itself: cells are parsed
independently, so parsing a column in groups gives exactly what parsing it whole gives.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from itertools import compress, pairwise, repeat
from operator import attrgetter, methodcaller, truediv

import ciso8601

from functions.validation.timeparse import FORMATS, SECONDS_LIMIT, TimeParser

#: More distinct cell lengths than this in one chunk: the reference is faster. (Measured: on
#: the benchmark's mix of five formats, reordering costs more than grouping saves.)
MAX_GROUPS = 1
#: Values whose repr could use an exponent, or lose the ``.0`` rule below: never converted here.
_SAFE = 1e15

_DIGITS = re.compile(r"[1-9][0-9]*(?:\n[1-9][0-9]*)*")
_DECIMALS = re.compile(r"[0-9]+\.[0-9]+(?:\n[0-9]+\.[0-9]+)*")
_STAMP = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
_ZONED_ONE = _STAMP + r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)"
_ZONED = re.compile(f"{_ZONED_ONE}(?:\\n{_ZONED_ONE})*")
_SQL_UTC = re.compile(f"{_STAMP} UTC(?:\\n{_STAMP} UTC)*")
#: A whole float's repr ends with ".0"; the canonical text is the integer (format_seconds).
_WHOLE = re.compile(r"\.0$", re.MULTILINE)
#: (smallest, largest digit count, divisor, format) of plain digits, as timeparse's units.
_UNITS = (
    (1, 11, 1, "unix_seconds"),
    (12, 14, 1000, "unix_milliseconds"),
    (15, 17, 1_000_000, "unix_microseconds"),
    (18, 20, 1_000_000_000, "unix_nanoseconds"),
)
_tzinfo = attrgetter("tzinfo")
_to_utc = methodcaller("replace", tzinfo=UTC)
_timestamp: Callable[[datetime], float] = datetime.timestamp

#: A group's result: seconds, texts, format name; None when the group is not of one shape.
_Parsed = tuple[list[float], list[str], str] | None


def canonical(values: list[float]) -> list[str]:
    """``format_seconds`` of each value (all finite, below 1e15 in magnitude)."""
    return _WHOLE.sub("", "\n".join(map(repr, values))).split("\n")


def _safe(values: list[float]) -> bool:
    return max(values) < _SAFE and min(values) > -_SAFE


def _digits(cells: list[str], joined: str, length: int) -> _Parsed:
    if not _DIGITS.fullmatch(joined):
        return None
    for low, high, divisor, name in _UNITS:
        if low <= length <= high:
            if divisor == 1:
                return list(map(float, cells)), cells, name
            values = list(map(truediv, map(int, cells), repeat(divisor)))
            return values, canonical(values), name
    return None


def _decimals(cells: list[str], joined: str) -> _Parsed:
    if not _DECIMALS.fullmatch(joined):
        return None
    values = list(map(float, cells))
    if max(values) >= SECONDS_LIMIT:
        return None
    return values, canonical(values), "unix_seconds"


def _zoned(cells: list[str], joined: str) -> _Parsed:
    if not _ZONED.fullmatch(joined):
        return None
    try:
        moments = list(map(ciso8601.parse_datetime, cells))
    except ValueError:
        return None
    if None in map(_tzinfo, moments):
        return None
    values = list(map(_timestamp, moments))
    if not _safe(values):
        return None
    return values, canonical(values), "iso8601"


def _sql_utc(joined: str) -> _Parsed:
    if not _SQL_UTC.fullmatch(joined):
        return None
    try:
        moments = list(map(ciso8601.parse_datetime, joined.replace(" UTC", "").split("\n")))
    except ValueError:
        return None
    if any(map(_tzinfo, moments)):
        return None
    values = list(map(_timestamp, map(_to_utc, moments)))
    if not _safe(values):
        return None
    return values, canonical(values), "sql_utc"


def _group(cells: list[str], length: int) -> _Parsed:
    """Parse cells of one length if they all have one simple shape, else None."""
    joined = "\n".join(cells)
    if joined.count("\n") != len(cells) - 1:
        return None  # a cell holds a line break: not a simple shape
    first = cells[0]
    if first[-1:].isdigit() and first.isdigit():
        return _digits(cells, joined, length)
    if first.endswith(" UTC"):
        return _sql_utc(joined)
    if "-" in first:
        return _zoned(cells, joined)
    if "." in first:
        return _decimals(cells, joined)
    return None


def parse_column(
    parser: TimeParser, cells: Sequence[str], fill: float
) -> tuple[list[float], list[str], list[int], dict[str, int]]:
    """What ``parser.parse_column(cells, fill)`` returns, computed by groups (module doc)."""
    count = len(cells)
    if not count:
        return parser.parse_column(cells, fill)
    lengths = list(map(len, cells))
    ordered = sorted(lengths)
    if ordered[0] == ordered[-1]:
        # One length, as in most exports: one group, no reordering at all.
        parsed = _group(list(cells), ordered[0]) if ordered[0] else None
        if parsed is None:
            return parser.parse_column(cells, fill)
        values, canon, name = parsed
        return values, canon, [], {name: count}
    starts = [0, *compress(range(1, count), map(int.__ne__, ordered[1:], ordered))]
    if len(starts) > MAX_GROUPS:
        return parser.parse_column(cells, fill)
    starts.append(count)
    order = sorted(range(count), key=lengths.__getitem__)
    seconds: list[float] = []
    texts: list[str] = []
    failed: list[int] = []
    totals = dict.fromkeys(FORMATS, 0)
    for start, end in pairwise(starts):
        indexes = order[start:end]
        group = list(map(cells.__getitem__, indexes))
        parsed = _group(group, ordered[start]) if ordered[start] else None
        if parsed is not None:
            values, canon, name = parsed
            totals[name] += len(values)
        else:
            values, canon, bad, counts = parser.parse_column(group, fill)
            failed += map(indexes.__getitem__, bad)
            for name, number in counts.items():
                totals[name] += number
        seconds += values
        texts += canon
    # Back to input order: the inverse permutation, by one more C-level sort.
    inverse = sorted(range(count), key=order.__getitem__)
    failed.sort()
    counts = {name: number for name, number in totals.items() if number}
    return (
        list(map(seconds.__getitem__, inverse)),
        list(map(texts.__getitem__, inverse)),
        failed,
        counts,
    )
