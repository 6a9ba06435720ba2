"""The fast paths give today's bytes: output, rejected rows and report, on every input.

Four ways to validate are compared on each input: the reference (``core.FAST = False``:
one process, ``rules.ChunkChecker``, ``TimeParser.parse_column`` cell by cell), the columnar
path (``columnar``: Polars, for plain files; others fall back to the reference), the fast
checker in one process (``fastrules``, ``fasttime``) and the parallel path (``parallel``,
run here through ``pool.InlinePool``: the same tasks, pickled, in this process, so that the
module constants can be shrunk to put chunk edges, block edges, spills and merged buckets
everywhere). Inputs come from the generators of the existing fast-path and property tests
and from the awkward corpus; one test runs real worker processes, one kills them.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, cast

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from functions.validation import (
    ValidationOptions,
    capacity,
    core,
    decoding,
    parallel,
    pool,
    sorting,
    validate_csv,
)
from functions.validation.columnar import blocks as columnar_blocks
from functions.validation.columnar import grouping as columnar_grouping
from tests.unit import test_validation_fastpath as fastpath
from tests.unit import test_validation_properties as properties
from tests.unit._validation_helpers import NOW, NOW_TS

CORPUS = Path(__file__).resolve().parent.parent / "data" / "validation"
Result = tuple[dict[str, object], bytes, bytes]


def run(raw: bytes, mode: str, **settings: object) -> Result:
    """Validate ``raw`` the ``mode`` way: reference, columnar, fast (one process) or parallel."""
    output, rejected = io.BytesIO(), io.BytesIO()
    workers = 2 if mode == "parallel" else 0
    options = ValidationOptions(now=NOW, workers=workers, **settings)  # type: ignore[arg-type]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(core, "FAST", mode != "reference")
        patch.setattr(core, "COLUMNAR_MIN_BYTES", 0 if mode == "columnar" else 1 << 62)
        report = validate_csv(io.BytesIO(raw), output, rejected, options)
    return report.to_dict(), output.getvalue(), rejected.getvalue()


def assert_same(raw: bytes, **settings: object) -> Result:
    reference = run(raw, "reference", **settings)
    assert run(raw, "columnar", **settings) == reference
    assert run(raw, "fast", **settings) == reference
    assert run(raw, "parallel", **settings) == reference
    return reference


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Chunks of 4 records, 16-byte blocks, a spill after every chunk, merged buckets
    (read back 3 rows at a time, so one user's rows span batches)."""
    monkeypatch.setattr(parallel, "POOL_CLASS", pool.InlinePool)
    monkeypatch.setattr(core, "CHUNK_ROWS", 4)
    monkeypatch.setattr(decoding, "BLOCK_BYTES", 16)
    monkeypatch.setattr(parallel, "SLICE_MEMORY_BYTES", 64)
    monkeypatch.setattr(sorting, "DEFAULT_BUDGET_BYTES", 1_500)
    monkeypatch.setattr(sorting, "_MERGE_PIECE", 3)
    monkeypatch.setattr(parallel, "TASK_CHUNKS", 3)
    monkeypatch.setattr(columnar_blocks, "BLOCK_BYTES", 64)
    monkeypatch.setattr(columnar_grouping, "DEFAULT_BUDGET_BYTES", 300)
    yield


option_sets = st.fixed_dictionaries(
    {
        "naive_timezone": st.sampled_from([None, "UTC", "Europe/Berlin"]),
        "duplicate_rows": st.sampled_from(["drop", "keep"]),
        "old_event_policy": st.sampled_from(["move", "reject", "keep"]),
        "max_rejected_fraction": st.sampled_from([1.0, 0.3]),
    }
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    fastpath.rows,
    st.sampled_from(["\n", "\r\n"]),
    st.tuples(st.booleans(), st.sampled_from([b"", b"\xff", b"\xe9x\n"])),
    option_sets,
)
def test_quoting_line_endings_and_bad_bytes(
    tiny: None,
    data: list[list[str]],
    terminator: str,
    ending: tuple[bool, bytes],
    options: dict[str, object],
) -> None:
    bare_cr, tail = ending
    assert_same(fastpath.encode(data, terminator, bare_cr) + tail, **options)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(properties.rows, st.booleans(), option_sets)
def test_any_text_and_repeated_rows(
    tiny: None, data: list[tuple[str, ...]], crlf: bool, options: dict[str, object]
) -> None:
    assert_same(properties.encode(data, crlf), **options)


@pytest.mark.parametrize("name", sorted(path.name for path in CORPUS.glob("*.csv")))
@pytest.mark.parametrize("zone", [None, "UTC"])
def test_awkward_corpus(tiny: None, name: str, zone: str | None) -> None:
    raw = (CORPUS / name).read_bytes()
    assert_same(raw, naive_timezone=zone, max_rejected_fraction=1.0)
    if b"user_pseudo_id" in raw:
        assert_same(
            raw,
            column_map={"userId": "user_pseudo_id", "time": "event_timestamp"},
            drop_columns=frozenset({"event_date"}),
            max_rejected_fraction=1.0,
        )


def _mixed_file(rows: int) -> bytes:
    """Every time format, quotes every so often, bad rows, repeats, users of every bucket."""
    formats: list[Callable[[int], str]] = [
        str,
        lambda t: str(t * 1000 + 7),
        lambda t: f"{t}.250",
        lambda t: str(t * 1_000_000),
        lambda t: "2025-05-30T10:00:00Z",
        lambda t: "2025-05-30 10:00:00.5+02:00",
        lambda t: "2025-05-30 10:00:00 UTC",
        lambda t: "yesterday",
    ]
    lines = ["userId,event,time,value,currencyCode,params.note"]
    for index in range(rows):
        stamp = NOW_TS - (index * 7919) % (420 * 86400)
        note = f'"n{index}, quoted"' if index % 97 == 0 else f"n{index % 13}"
        user = f"user{(index * 31) % 997}" if index % 211 else ""
        value = "x" if index % 401 == 0 else f"{index % 50}.5"
        time_text = formats[index % 8 if index % 5 else 0](stamp)
        lines.append(f"{user},e{index % 7},{time_text},{value},usd,{note}")
        if index % 53 == 0:
            lines.append(lines[-1])
    return ("\r\n".join(lines) + "\r\n").encode()


def test_chunks_of_one_format_and_of_many(monkeypatch: pytest.MonkeyPatch) -> None:
    """Realistic chunk sizes: whole-chunk time groups (one format) and mixed ones."""
    monkeypatch.setattr(parallel, "POOL_CLASS", pool.InlinePool)
    monkeypatch.setattr(core, "CHUNK_ROWS", 512)
    monkeypatch.setattr(sorting, "DEFAULT_BUDGET_BYTES", 40_000)
    raw = _mixed_file(6_000)
    report = assert_same(raw, max_rejected_fraction=1.0)[0]
    assert report["rows_duplicate_dropped"]
    single = "userId,event,time\n" + "".join(
        f"u{index % 300},e,{NOW_TS - index * 37}\n" for index in range(3_000)
    )
    assert_same(single.encode())


def test_real_worker_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The subprocess pool itself: same bytes, and more chunks than tasks in flight."""
    monkeypatch.setattr(core, "CHUNK_ROWS", 256)
    monkeypatch.setattr(parallel, "SLICE_MEMORY_BYTES", 20_000)
    raw = _mixed_file(4_000)
    assert run(raw, "parallel", max_rejected_fraction=1.0) == run(
        raw, "reference", max_rejected_fraction=1.0
    )


def test_dead_workers_fall_back_to_one_process(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(pool, "_COMMAND", "import sys; sys.exit(3)")
    raw = _mixed_file(500)
    with caplog.at_level(logging.WARNING):
        assert run(raw, "parallel", max_rejected_fraction=1.0) == run(
            raw, "reference", max_rejected_fraction=1.0
        )
    assert "validating sequentially" in caplog.text


def test_when_the_parallel_path_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    assert 1 <= capacity.available_cpus() <= (os.cpu_count() or 1)
    options = ValidationOptions(now=NOW)
    big = io.BytesIO(b"x" * 100)
    monkeypatch.setattr(capacity, "MIN_PARALLEL_BYTES", 50)
    monkeypatch.setattr(capacity, "available_cpus", lambda: 1)
    assert capacity.worker_count(big, options) == 0
    monkeypatch.setattr(capacity, "available_cpus", lambda: 8)
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    assert capacity.worker_count(big, options) == 0  # other processes hold the vCPUs
    monkeypatch.setattr(os, "getloadavg", lambda: (1.0, 1.0, 1.0))
    assert capacity.worker_count(big, options) == capacity.MAX_WORKERS
    assert capacity.worker_count(io.BytesIO(b"x" * 10), options) == 0
    assert capacity.worker_count(big, ValidationOptions(now=NOW, workers=1)) == 0
    assert capacity.worker_count(big, ValidationOptions(now=NOW, workers=3)) == 3
    with gzip.open(io.BytesIO(gzip.compress(b"x" * 100))) as packed:
        assert capacity.worker_count(cast(BinaryIO, packed), options) == 0  # size unknown


def _stamp(parts: tuple[int, int, int, int, int, int], sep: str, fraction: str) -> str:
    year, month, day, hour, minute, second = parts
    return f"{year:04d}-{month:02d}-{day:02d}{sep}{hour:02d}:{minute:02d}:{second:02d}{fraction}"


#: Date and time fields, some out of range (month 13, 30 February, hour 24, second 60).
fields = st.tuples(
    st.sampled_from([1969, 1970, 2000, 2024, 2025, 9999]),
    st.integers(1, 13),
    st.integers(1, 31),
    st.integers(0, 24),
    st.integers(0, 59),
    st.integers(0, 60),
)


@st.composite
def same_shape_column(draw: st.DrawFn) -> list[str]:
    """Cells of one shape and one length: what a chunk of one export holds."""
    size = draw(st.integers(1, 12))
    shape = draw(st.sampled_from(["digits", "zeros", "decimal", "zoned", "utc", "naive"]))
    if shape in ("digits", "zeros"):
        width = draw(st.integers(1, 21))
        low = 10 ** (width - 1) if shape == "digits" else 0
        numbers = draw(st.lists(st.integers(low, 10**width - 1), min_size=size, max_size=size))
        return [f"{number:0{width}d}" for number in numbers]
    if shape == "decimal":
        whole = draw(st.sampled_from([1, 2, 10, 11, 12, 13]))
        places = draw(st.integers(1, 10))
        pairs = st.tuples(
            st.integers(10 ** (whole - 1) - (whole == 1), 10**whole - 1),
            st.integers(0, 10**places - 1),
        )
        drawn = draw(st.lists(pairs, min_size=size, max_size=size))
        return [f"{a:0{whole}d}.{b:0{places}d}" for a, b in drawn]
    sep = draw(st.sampled_from(["T", " "]))
    fraction = draw(st.sampled_from(["", ".5", ".123456", ".123456789"]))
    zone = draw(st.sampled_from(["Z", "+00", "+02:00", "-0530", "+24:00", "+00:60", ""]))
    if shape == "utc":
        zone = " UTC" if zone != "Z" else "+00 UTC"
    elif shape == "naive":
        zone = ""
    stamps = draw(st.lists(fields, min_size=size, max_size=size))
    return [_stamp(parts, sep, fraction) + zone for parts in stamps]


@settings(max_examples=400, deadline=None)
@given(st.one_of(same_shape_column(), st.lists(fastpath.times, max_size=12)))
@example(["262733305572.0000663", "109155596041.0469936"])  # decimals past 1e11: milliseconds
@example(["1748600000.120", "1748600000.000"])  # trailing zeros, a whole value
@example(["2025-05-30 10:00:00.123456 UTC", "2025-02-30 10:00:00.123456 UTC"])
@example(["2025-05-30T10:00:00+24:00", "2025-05-30T10:00:00+00:00"])
@example(["2025-05-30T10:00:60Z", "2025-05-30T10:00:00Z"])
@example(["01748600000", "01748600001"])
@example(["174860000000000000000", "174860000000000000001"])
def test_time_groups_parse_like_cells(cells: list[str]) -> None:
    from functions.validation import fasttime
    from functions.validation.timeparse import TimeParser, zone_for

    for zone in (None, "UTC", "Europe/Paris"):
        parser = TimeParser(zone_for(zone))
        assert fasttime.parse_column(parser, cells, -1.0) == parser.parse_column(cells, -1.0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fasttime, "MAX_GROUPS", 24)  # the grouped path, whatever the mix
        parser = TimeParser(None)
        assert fasttime.parse_column(parser, cells, -1.0) == parser.parse_column(cells, -1.0)
