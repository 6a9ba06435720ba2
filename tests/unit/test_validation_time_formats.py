"""Warehouse formats of ``time``: every accepted form, the magnitude ranges, zones and counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.validation import ValidationOptions
from functions.validation.timeparse import (
    NAIVE,
    TOO_LARGE,
    UNPARSEABLE,
    TimeParser,
    zone_for,
)
from tests.unit._validation_helpers import NOW, NOW_TS, rows_of, run

T = NOW_TS - 3600  # 2025-06-01 11:00:00 UTC
NS = T * 10**9 + 123_456_789

FORMATS = [
    (str(T), str(T), "unix_seconds"),
    (f"{T}.5", f"{T}.5", "unix_seconds"),
    (str(T * 1000 + 250), f"{T}.25", "unix_milliseconds"),
    (str(T * 10**6 + 123_456), f"{T}.123456", "unix_microseconds"),
    (f"{T * 10**6}.5", repr((T * 10**6 + 0.5) / 10**6), "unix_microseconds"),
    (str(NS), repr(NS / 10**9), "unix_nanoseconds"),
    ("2025-06-01T11:00:00Z", str(T), "iso8601"),
    ("2025-06-01T13:00:00+02:00", str(T), "iso8601"),
    ("2025-06-01T11:00:00.250z", f"{T}.25", "iso8601"),
    ("20250601T110000Z", str(T), "iso8601"),
    (" 2025-06-01T11:00:00Z", str(T), "iso8601"),
    ("2025-06-01 11:00:00 UTC", str(T), "sql_utc"),
    ("2025-06-01 11:00:00.123456 UTC", f"{T}.123456", "sql_utc"),
    ("2025-06-01 11:00:00.123456789 UTC", f"{T}.123456", "sql_utc"),
    (" 2025-06-01 11:00:00 UTC ", str(T), "sql_utc"),
    ("2025-06-01 11:00:00Z", str(T), "iso8601"),
    ("2025-06-01 11:00:00+00", str(T), "iso8601"),
    ("2025-06-01 13:00:00+0200", str(T), "iso8601"),
    ("2025-06-01 06:00:00-05:00", str(T), "iso8601"),
    ("2025-06-01 11:00:00.5+00:00", f"{T}.5", "iso8601"),
    ("2025-06-01 11:00:00.123456789+00", f"{T}.123456", "iso8601"),
]


@pytest.mark.parametrize(("cell", "expected", "name"), FORMATS)
def test_each_format_becomes_unix_seconds_and_is_counted(
    cell: str, expected: str, name: str
) -> None:
    report, out, _ = run(f'userId,event,time\nu,e,"{cell}"\n')
    assert report.accepted, report.rejections
    assert rows_of(out)[1][2] == expected
    assert report.time_formats == {name: 1}
    assert report.to_dict()["time_formats"] == {name: 1}


def test_counts_of_a_mixed_file_are_listed_in_a_fixed_order() -> None:
    body = "".join(f'u{index},e,"{cell}"\n' for index, (cell, _, _) in enumerate(FORMATS))
    report, _, _ = run("userId,event,time\n" + body + "u,e,bad\n", max_rejected_fraction=0.5)
    assert report.to_dict()["time_formats"] == {
        "unix_seconds": 2,
        "unix_milliseconds": 1,
        "unix_microseconds": 2,
        "unix_nanoseconds": 1,
        "iso8601": 11,
        "sql_utc": 4,
    }


@pytest.mark.parametrize(
    ("number", "name"),
    [
        (10**11 - 1, "unix_seconds"),
        (10**11, "unix_milliseconds"),
        (10**14 - 1, "unix_milliseconds"),
        (10**14, "unix_microseconds"),
        (10**17 - 1, "unix_microseconds"),
        (10**17, "unix_nanoseconds"),
        (10**20 - 1, "unix_nanoseconds"),
        (10**20, None),
    ],
)
def test_magnitude_ranges(number: int, name: str | None) -> None:
    parser = TimeParser(None)
    parsed = parser.parse(str(number))
    if name is None:
        assert parsed is None and parser.reason(str(number)) == TOO_LARGE
        return
    assert parsed is not None and parsed[2] == name
    divisor = {"unix_seconds": 1, "unix_milliseconds": 10**3}.get(name) or (
        10**6 if name == "unix_microseconds" else 10**9
    )
    assert parsed[0] == number / divisor
    # Every unit covers the same dates: the bottom of each finer range is 1973-03-03.
    if number % 10 == 0 and name != "unix_seconds":
        assert datetime.fromtimestamp(parsed[0], UTC).date().isoformat() == "1973-03-03"


@pytest.mark.parametrize(
    "cell",
    ["2025-06-01T11:00:00", "2025-06-01 11:00:00", "2025-06-01 11:00:00.5", "2025-06-01"],
)
def test_times_without_zone_are_rejected_by_default_with_a_reason(cell: str) -> None:
    report, _, _ = run(f"userId,event,time\nu,e,{cell}\nu,e,{T}\n", max_rejected_fraction=0.5)
    assert report.rejections == [{"row": 2, "column": "time", "reason": NAIVE}]
    assert "no time zone" in NAIVE and "NAIVE_TIME_ZONE" in NAIVE
    accepted, out, _ = run(f"userId,event,time\nu,e,{cell}\n", naive_timezone="UTC")
    assert accepted.accepted and accepted.time_formats == {"naive": 1}
    moment = datetime.fromisoformat(cell).replace(tzinfo=UTC)
    assert float(rows_of(out)[1][2]) == moment.timestamp()


@pytest.mark.parametrize(
    ("zone", "cell", "utc"),
    [
        ("UTC", "2025-03-30 02:30:00", "2025-03-30T02:30:00"),
        ("Europe/Berlin", "2025-01-15 10:00:00", "2025-01-15T09:00:00"),
        ("Europe/Berlin", "2025-07-15 10:00:00", "2025-07-15T08:00:00"),
        # Spring gap (02:00 -> 03:00): read with the offset before it, i.e. 03:30 CEST.
        ("Europe/Berlin", "2025-03-30 02:30:00", "2025-03-30T01:30:00"),
        # Autumn overlap (03:00 -> 02:00): the earlier instant, still on summer time.
        ("Europe/Berlin", "2025-10-26 02:30:00", "2025-10-26T00:30:00"),
        ("America/New_York", "2025-11-02T01:30:00", "2025-11-02T05:30:00"),
        ("America/New_York", "2025-03-09T02:30:00", "2025-03-09T07:30:00"),
    ],
)
def test_naive_zone_and_dst_changes(zone: str, cell: str, utc: str) -> None:
    parsed = TimeParser(zone_for(zone)).parse(cell)
    assert parsed is not None and parsed[2] == "naive"
    assert parsed[0] == datetime.fromisoformat(utc).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    "cell",
    [
        "x UTC",
        " UTC",
        "2025-06-01T11:00:00Z UTC",
        "2025-06-01 11:00:00+00 UTC",
        "2025-06-01 11:00:00 +00:00",
        "2025-06-01 11:00:00 utc",
        "2025-06-01 11:00:00 CET",
        "-1748775600",
    ],
)
def test_near_misses_are_not_times(cell: str) -> None:
    for zone in (None, "UTC"):
        parser = TimeParser(zone_for(zone))
        assert parser.parse(cell) is None
        assert parser.reason(cell) == UNPARSEABLE


def test_zone_option_is_checked_and_defaults_to_none() -> None:
    assert ValidationOptions(now=NOW).naive_timezone is None
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        ValidationOptions(now=NOW, naive_timezone="Mars/Base")
    with pytest.raises(ValueError, match="unknown time zone"):
        ValidationOptions(now=NOW, naive_timezone="")


moments = st.tuples(
    st.integers(NOW_TS - 300 * 86_400, NOW_TS), st.integers(0, 999_999), st.booleans()
)


@given(moments)
def test_every_spelling_of_an_instant_gives_the_same_seconds(moment: tuple[int, int, bool]) -> None:
    """ISO, SQL and every Unix unit of one instant must agree to the last bit, since two
    spellings of one event must be recognised as duplicates."""
    whole, micros, millis_only = moment
    if millis_only:
        micros -= micros % 1000
    stamp = datetime.fromtimestamp(whole, UTC) + timedelta(microseconds=micros)
    fraction = f".{micros:06d}" if micros else ""
    base = stamp.strftime("%Y-%m-%d %H:%M:%S")
    spellings = [
        str(whole * 10**6 + micros),
        str((whole * 10**6 + micros) * 1000),
        f"{base}{fraction} UTC",
        f"{base}{fraction}+00",
        f"{base.replace(' ', 'T')}{fraction}Z",
        (stamp + timedelta(hours=5, minutes=30)).strftime("%Y-%m-%dT%H:%M:%S")
        + f"{fraction}+05:30",
    ]
    if micros % 1000 == 0:
        spellings.append(str(whole * 1000 + micros // 1000))
    parser = TimeParser(None)
    parsed = [parser.parse(text) for text in spellings]
    assert all(value is not None for value in parsed)
    assert len({(value[0], value[1]) for value in parsed if value is not None}) == 1
    seconds, texts, failed, _ = parser.parse_column(spellings, -1.0)
    assert failed == [] and len(set(texts)) == 1 and len(set(seconds)) == 1
