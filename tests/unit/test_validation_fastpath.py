"""The fast paths (plain-line splitting, column time parsing, spilling) give the exact results.

Each fast path has a slow reference in the package itself: ``csv.reader`` for every record,
``TimeParser.parse`` for every cell, grouping in memory. Generated files mixing plain lines
with quoted fields, line breaks inside quotes, CRLF and bare CR, blank and misshapen rows
must come out byte-identical either way, with the same report and rejected rows.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.validation import ValidationOptions, core, decoding, reading, sorting, validate_csv
from functions.validation.timeparse import TimeParser, zone_for
from tests.unit._validation_helpers import NOW, NOW_TS

DAY = 86400
HEADER = ["userId", "event", "time", "value", "currencyCode", "params.note", "source"]

plain_text = st.text(alphabet="abcXYZ 019._-/é", max_size=6)
awkward_text = st.text(alphabet='ab ,"\n\r|{é\t\x00', max_size=6)
times = st.one_of(
    st.integers(NOW_TS - 500 * DAY, NOW_TS + DAY).map(str),
    st.integers(NOW_TS - 500 * DAY, NOW_TS).map(lambda t: str(t * 1000 + 7)),
    st.integers((NOW_TS - 500 * DAY) * 10**6, NOW_TS * 10**6).map(str),
    st.integers((NOW_TS - 500 * DAY) * 10**9, NOW_TS * 10**9).map(str),
    st.floats(NOW_TS - 400 * DAY, NOW_TS, allow_nan=False).map(lambda t: f"{t:.3f}"),
    st.sampled_from(
        ["2025-05-30T10:00:00Z", "2025-05-30T10:00:00", "2025-05-30T10:00:00.250+02:00",
         "2025-05-30 10:00:00 UTC", "2025-05-30 10:00:00.123456 UTC", "2025-05-30 10:00:00",
         "2025-05-30 10:00:00.123456789+00", "2025-05-30 10:00:00-0530", "2025-05-30",
         "2025-05-30 10:00:00+00 UTC", "x UTC", " UTC", "2025-05-30T10:00:00Z UTC",
         "1748600000000000.5", "174860000000000000000", " 2025-05-30T10:00:00Z "]
    ),
    st.sampled_from(["junk", "", " 1748600000", "01748600000", "1748600000.", ".5"]),
)  # fmt: skip
row = st.tuples(
    st.sampled_from(["u1", " u2", "u3 ", "", "u,4"]),
    st.one_of(st.sampled_from(["Buy", "Open", "a|b", "1"]), awkward_text),
    times,
    st.sampled_from(["", "1", " 2.50", "x"]),
    st.sampled_from(["", "usd", "EUR", "XYZ"]),
    st.one_of(plain_text, awkward_text),
    plain_text,
).map(list)
# Mostly plain rows, so that chunks mix both ways of reading.
rows = st.lists(
    st.one_of(
        row.filter(lambda r: not any(set(',"\r\n') & set(cell) for cell in r)),
        row,
        st.just([]),
        row.map(lambda r: r[:-1]),
    ),
    max_size=40,
)


def encode(data: list[list[str]], terminator: str, bare_cr: bool) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=terminator)
    writer.writerow(HEADER)
    for fields in data:
        if fields:
            writer.writerow(fields)
        else:
            buffer.write("\r" if bare_cr else terminator)
    return buffer.getvalue().encode("utf-8")


def validate(raw: bytes, **settings: object) -> tuple[dict[str, object], bytes, bytes]:
    output, rejected = io.BytesIO(), io.BytesIO()
    options = ValidationOptions(now=NOW, max_rejected_fraction=1.0, **settings)  # type: ignore[arg-type]
    report = validate_csv(io.BytesIO(raw), output, rejected, options)
    return report.to_dict(), output.getvalue(), rejected.getvalue()


def csv_only(self: reading.ChunkReader, size: int, width: int) -> reading.Chunk:
    """The reference: every record read by csv.reader."""
    chunk = reading.Chunk(width)
    chunk.add_rows(self.rows(size))
    return chunk


@pytest.fixture
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(core, "CHUNK_ROWS", 4)
    monkeypatch.setattr(decoding, "BLOCK_BYTES", 16)
    yield


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    rows,
    st.sampled_from(["\n", "\r\n"]),
    st.tuples(st.booleans(), st.sampled_from([b"", b"\xff"])),
    st.fixed_dictionaries(
        {
            "naive_timezone": st.sampled_from([None, "UTC", "Europe/Berlin"]),
            "duplicate_rows": st.sampled_from(["drop", "keep"]),
        }
    ),
)
def test_plain_line_splitting_matches_csv_reader(
    small_pieces: None,
    data: list[list[str]],
    terminator: str,
    ending: tuple[bool, bytes],
    settings: dict[str, object],
) -> None:
    bare_cr, tail = ending
    raw = encode(data, terminator, bare_cr) + tail
    fast = validate(raw, **settings)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reading.ChunkReader, "read_chunk", csv_only)
        slow = validate(raw, **settings)
    assert fast == slow


def test_quote_every_few_lines_and_a_long_file() -> None:
    lines = []
    for index in range(30_000):
        note = f'"n{index}, with comma"' if index % 97 == 0 else f"n{index}"
        stamp = NOW_TS - index * 61
        lines.append(f"user{index % 113},Open,{stamp},,,{note},web\r\n")
    raw = (",".join(HEADER) + "\r\n" + "".join(lines)).encode("utf-8")
    fast = validate(raw)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reading.ChunkReader, "read_chunk", csv_only)
        slow = validate(raw)
    assert fast == slow
    assert fast[0]["rows_written"] == 30_000


def test_invalid_byte_after_many_plain_rows_names_its_row() -> None:
    body = "".join(f"u{index},e,{NOW_TS}\n" for index in range(20_000))
    raw = ("userId,event,time\n" + body).encode("utf-8") + b"u,\xe9,1\n"
    report = validate(raw)[0]
    assert report["accepted"] is False
    assert "row 20002 holds" in str(report["refusal_reason"])


def test_field_size_limit_is_still_enforced() -> None:
    huge = "x" * (csv.field_size_limit() + 1)
    raw = f"userId,event,time,note\nu,e,{NOW_TS},{huge}\n".encode()
    report = validate(raw)[0]
    assert "field larger than field limit" in str(report["refusal_reason"])
    assert "near line 2" in str(report["refusal_reason"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(times, st.text(max_size=12)), max_size=30))
def test_time_column_parsing_matches_cell_parsing(cells: list[str]) -> None:
    for zone in (None, "UTC", "Europe/Paris"):
        parser = TimeParser(zone_for(zone))
        seconds, texts, failed, counts = parser.parse_column(cells, -1.0)
        expected = [parser.parse(cell) for cell in cells]
        assert failed == [index for index, value in enumerate(expected) if value is None]
        for index, value in enumerate(expected):
            if value is None:
                assert (seconds[index], texts[index]) == (-1.0, "")
            else:
                assert (seconds[index], texts[index]) == value[:2]
        assert counts == dict(Counter(value[2] for value in expected if value is not None))


@pytest.mark.parametrize("budget", [1, 2_000, 60_000])
@pytest.mark.parametrize("duplicates", ["drop", "keep"])
def test_spilling_and_merging_give_the_bytes_of_memory(
    budget: int, duplicates: str, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Repeats (a row of 3 in 10 repeats one from earlier, not always adjacent in the input
    nor in their run) must be dropped alike whether a bucket is sorted whole or merged."""
    lines = [
        f"user{(index * 7) % 131},e{index % 5},{NOW_TS - (index * 7919) % 100_000}"
        for index in range(5_000)
    ]
    lines += [lines[(index * 31) % 5_000] for index in range(1_500)]
    # Old events all moved to one time: distinct ones kept, the 20 true repeats dropped.
    old = [f"user{index % 7},e{index % 3},{NOW_TS - 400 * DAY - index}" for index in range(40)]
    lines += old + old[:20]
    raw = ("userId,event,time\n" + "\n".join(lines) + "\n").encode("utf-8")
    in_memory = validate(raw, duplicate_rows=duplicates)
    expected = 1_520 if duplicates == "drop" else 0
    assert in_memory[0]["rows_duplicate_dropped"] == expected
    assert in_memory[0]["rows_time_clamped"] == (40 if duplicates == "drop" else 60)
    monkeypatch.setattr(core, "CHUNK_ROWS", 700)
    monkeypatch.setattr(sorting, "DEFAULT_BUDGET_BYTES", budget)
    spilled = validate(raw, duplicate_rows=duplicates)
    assert spilled == in_memory


def test_moved_old_events_keep_input_order_among_equals() -> None:
    old = NOW - timedelta(days=400)
    data = f"userId,event,time\nu,b,{old.isoformat()}\nu,a,{int(old.timestamp())}\n"
    _, out, _ = validate(data.encode())
    assert [line.split(",")[1] for line in out.decode().splitlines()[1:]] == ["b", "a"]
