"""The columnar path (``columnar``, Polars) gives the reference's bytes, and is really used.

Every comparison here also asserts that the columnar path handled the file (no "not used"
log line), so that a silent fall-back to the reference cannot make a test pass. Time cells
are compared with ``TimeParser.parse`` one by one, bit for bit; whole files with the
reference (``core.FAST = False``), with blocks and spill budgets tiny enough to put block
edges, quoted lines and spilled groups everywhere.
"""

from __future__ import annotations

import io
import logging
import random
import string
from collections.abc import Iterator

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from functions.validation import ValidationOptions, core, validate_csv
from functions.validation.columnar import blocks, grouping, users, verdicts
from functions.validation.columnar.times import ColumnTimes
from functions.validation.columnar.users import UserTable
from functions.validation.sorting import buckets_of
from functions.validation.timeparse import FORMATS, TimeParser, zone_for
from tests.unit._validation_helpers import NOW, NOW_TS

DAY = 86400
Result = tuple[dict[str, object], bytes, bytes]


def run(raw: bytes, mode: str, **settings: object) -> Result:
    output, rejected = io.BytesIO(), io.BytesIO()
    options = ValidationOptions(now=NOW, workers=0, **settings)  # type: ignore[arg-type]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(core, "FAST", mode == "columnar")
        patch.setattr(core, "COLUMNAR_MIN_BYTES", 0)
        report = validate_csv(io.BytesIO(raw), output, rejected, options)
    return report.to_dict(), output.getvalue(), rejected.getvalue()


def assert_columnar_same(
    raw: bytes, caplog: pytest.LogCaptureFixture, **settings: object
) -> Result:
    """Columnar and reference agree, and the columnar path did the work."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="functions.validation.columnar"):
        columnar = run(raw, "columnar", **settings)
    declined = [r.getMessage() for r in caplog.records if "not used" in r.getMessage()]
    assert not declined, declined
    reference = run(raw, "reference", **settings)
    assert columnar == reference
    return reference


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Blocks of a few lines, a spill after every block or two."""
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 97)
    monkeypatch.setattr(grouping, "DEFAULT_BUDGET_BYTES", 400)
    yield


# --- time cells -------------------------------------------------------------------------


def _cells_agree(cells: list[str], zone: str | None = None) -> None:
    parser = TimeParser(zone_for(zone))
    times = ColumnTimes(TimeParser(zone_for(zone)))
    found = times.read(pl.DataFrame({"t": cells}, schema={"t": pl.String}), "t", -1.0)
    for cell, (secs, text, code) in zip(cells, found.iter_rows(), strict=True):
        expected = parser.parse(cell)
        if expected is None:
            assert code == -1, cell
            assert times.reason(cell) == parser.reason(cell)
            continue
        assert (FORMATS[code], text) == (expected[2], expected[1]), cell
        assert secs.hex() == expected[0].hex(), cell  # bit for bit


def _digits(draw: st.DrawFn) -> str:
    width = draw(st.integers(1, 21))
    return str(draw(st.integers(10 ** (width - 1) if width > 1 else 0, 10**width - 1)))


@st.composite
def time_cell(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["digits", "zeros", "decimal", "date", "text"]))
    if kind == "digits":
        return _digits(draw)
    if kind == "zeros":
        return "0" * draw(st.integers(1, 3)) + _digits(draw)
    if kind == "decimal":
        whole = draw(st.sampled_from(["", "0", "1", "00", "17", "1748600000", "99999999999"]))
        whole = whole or str(draw(st.integers(0, 10**12)))
        fraction = "".join(draw(st.lists(st.sampled_from("0123456789"), max_size=9)))
        return draw(st.sampled_from([f"{whole}.{fraction}", f".{fraction}", f"{whole}."]))
    if kind == "date":
        year = draw(st.sampled_from([1969, 1970, 1971, 2000, 2024, 2200, 2201, 9999]))
        parts = (
            year,
            draw(st.integers(0, 13)),
            draw(st.integers(0, 32)),
            draw(st.integers(0, 24)),
            draw(st.integers(0, 60)),
            draw(st.integers(0, 60)),
        )
        sep = draw(st.sampled_from(["T", " ", "t"]))
        fraction = draw(st.sampled_from(["", ".5", ".000", ".123456", ".1234567", ".999999999"]))
        zone = draw(
            st.sampled_from(
                ["Z", "z", "+00", "-00:00", "+02:00", "-0530", "+23:59", "+24:00", "+00:60",
                 "+1", " UTC", "+00 UTC", "", " utc"]
            )
        )  # fmt: skip
        y, mo, d, h, mi, s = parts
        return f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{fraction}{zone}"
    return draw(st.sampled_from(["", " ", "x", " 1748600000", "1748600000 ", "١٢٣", "1e9", "-5"]))


@settings(max_examples=400, deadline=None)
@given(st.lists(time_cell(), min_size=1, max_size=20))
@example(["8589934591999999", "8589934592000000", "9007199254740993", "99999999999999"])
@example(["1748600000.123456789", "123456789012345.6", "99999999999.5", "0.5", "1.000000"])
@example(["2024-02-29T12:00:00Z", "2023-02-29T12:00:00Z", "2100-02-29T00:00:00Z"])
@example(["2200-12-31T23:59:59.999999-23:59", "1971-01-01T00:00:00+23:59"])
def test_time_cells_read_as_the_reference_reads_them(cells: list[str]) -> None:
    _cells_agree(cells)
    _cells_agree(cells, "Europe/Paris")


def test_many_random_numbers_divide_exactly() -> None:
    """Milliseconds, microseconds and nanoseconds across their whole native range, bit for
    bit (a division by a literal would be a product by its inverse: thousands would differ),
    with the reference's text (``repr``)."""
    rng = random.Random(7)
    cells = [str(rng.randrange(10**11, 10**14)) for _ in range(20_000)]
    cells += [str(rng.randrange(10**14, 2**33 * 10**6)) for _ in range(20_000)]
    cells += [f"{rng.randrange(1, 10**10)}.{rng.randrange(10**5):05d}" for _ in range(20_000)]
    # Nanoseconds, above 2^53: rounded in integers; around each power of two of the seconds
    # (where the spacing of doubles doubles) and at the ends of the native range.
    cells += [str(rng.randrange(10**17, 2**63)) for _ in range(20_000)]
    cells += [
        str(2**bits * 10**9 + offset)
        for bits in range(27, 34)
        for offset in (-(10**9), -1, 0, 1, 10**9 - 1, rng.randrange(10**9))
    ]
    cells += [str(10**17), str(10**17 - 1), str(2**63 - 1), str(2**63), "0" + str(10**17)]
    cells += [
        f"2025-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T"
        f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}"
        f".{rng.randrange(10**6):06d}Z"
        for _ in range(20_000)
    ]
    _cells_agree(cells)


def test_warehouse_times_are_read_natively(monkeypatch: pytest.MonkeyPatch) -> None:
    """The formats exporters write never reach the reference's per-cell parser. Results
    are compared above; both paths give the same, so a spy on the parser (no fault
    injected) is what shows which one read them."""
    parsed: list[str] = []

    def spy(self: ColumnTimes, text: str) -> tuple[float | None, str, int]:
        parsed.append(text)
        return None, "", -1

    monkeypatch.setattr(ColumnTimes, "_parse", spy)
    rng = random.Random(3)
    cells = [str(rng.randrange(10**17, 2**63)) for _ in range(500)]  # Spark, pandas
    cells += [str(rng.randrange(10**15, 2**33 * 10**6)) for _ in range(500)]  # GA4
    cells += ["2025-05-30 10:00:00.123456 UTC", "2025-05-30 10:00:00+00", "1748600000.5"]
    found = ColumnTimes(TimeParser(None)).read(pl.DataFrame({"t": cells}), "t", 0.0)
    assert parsed == []
    assert (found["fmt"] >= 0).all()


def test_spaces_are_python_s_whitespace() -> None:
    spaces = "".join(c for c in map(chr, range(0x110000)) if c.isspace())
    assert spaces == verdicts.SPACES


# --- whole files ------------------------------------------------------------------------

HEADER = "userId,event,time,value,currencyCode,deviceId,params.note,source,bad name!"


@st.composite
def plain_file(draw: st.DrawFn) -> bytes:
    """What exporters write, with the mistakes people make: every rule gets its turn."""
    users = draw(st.lists(st.sampled_from(["u1", "u2", " u3", "u4 ", "\tu5", "u\x016", "",
                                           "u" * 401, "ü7", "u\u20038"]),
                          min_size=1, max_size=6))  # fmt: skip
    rows = []
    for _ in range(draw(st.integers(0, 30))):
        stamp = NOW_TS - draw(st.integers(-2 * DAY, 420 * DAY))
        time_text = draw(
            st.sampled_from(
                [str(stamp), str(stamp * 1000 + 7), f"{stamp}.250", str(stamp * 10**6),
                 str(stamp * 10**9), "2025-05-30T10:00:00Z", "2025-05-30 10:00:00.5+02:00",
                 "2025-05-30 10:00:00 UTC", "2025-05-30 10:00:00", "yesterday", "", "0",
                 "1900-01-01T00:00:00Z"]
            )
        )  # fmt: skip
        fields = [
            draw(st.sampled_from(users)),
            draw(st.sampled_from(["Open", "Buy", "a|b", "123", ".x", "", "ok/"])),
            time_text,
            draw(st.sampled_from(["", "1", " 2.50", "x", "1e999"])),
            draw(st.sampled_from(["", "usd", " EUR ", "XYZ"])),
            draw(st.sampled_from(["", "d1", "d" * 401])),
            draw(st.sampled_from(["", "n", "é", "x y"])),
            draw(st.sampled_from(["web", "", "app"])),
            draw(st.sampled_from(["", "", "", "oops"])),
        ]
        if draw(st.integers(0, 9)) == 0:
            fields[6] = '"a, ""quoted"" note"'
        rows.append(",".join(fields))
        if draw(st.integers(0, 5)) == 0:
            rows.append(rows[-1])
    blank_row = draw(st.integers(0, 1))
    if rows and blank_row:
        rows.append(" ," * 8 + " ")  # a blank row of the right width
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    text = ending.join([HEADER, *rows])
    if draw(st.integers(0, 1)):
        text += ending
    bom = b"\xef\xbb\xbf" if draw(st.integers(0, 4)) == 0 else b""
    return bom + text.encode("utf-8")


option_sets = st.fixed_dictionaries(
    {
        "naive_timezone": st.sampled_from([None, "UTC"]),
        "duplicate_rows": st.sampled_from(["drop", "keep"]),
        "old_event_policy": st.sampled_from(["move", "reject", "keep"]),
        "max_rejected_fraction": st.sampled_from([1.0, 0.3]),
    }
)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(plain_file(), option_sets)
def test_plain_files_come_out_as_the_reference_writes_them(
    tiny: None, caplog: pytest.LogCaptureFixture, raw: bytes, options: dict[str, object]
) -> None:
    assert_columnar_same(raw, caplog, **options)


def test_a_big_file_with_every_format_spills_and_matches(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 64 * 1024)
    monkeypatch.setattr(grouping, "DEFAULT_BUDGET_BYTES", 100_000)
    rng = random.Random(3)
    users = ["".join(rng.choices(string.hexdigits, k=12)) for _ in range(700)]
    lines = ["userId,event,time,value,currencyCode,params.note"]
    for index in range(40_000):
        stamp = NOW_TS - rng.randrange(400 * DAY)
        time_text = rng.choice(
            [str(stamp), str(stamp * 1000 + rng.randrange(1000)), f"{stamp}.{index % 1000}",
             str(stamp * 10**6 + rng.randrange(10**6)), "2025-05-30T10:00:00.25-05:00"]
        )  # fmt: skip
        note = '"x, y"' if index % 500 == 0 else f"n{index % 9}"
        lines.append(f"{rng.choice(users)},e{index % 5},{time_text},{index % 7}.5,usd,{note}")
        if index % 97 == 0:
            lines.append(lines[-1])
    raw = ("\r\n".join(lines) + "\r\n").encode()
    report = assert_columnar_same(raw, caplog, max_rejected_fraction=1.0)[0]
    assert report["rows_duplicate_dropped"]
    assert report["rows_time_clamped"]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"userId,event,time\nu,e,1748600000\nu,e\n", "fields"),
        (b"userId,event,time\nu,e,1748600000\n\nu,e,1748600001\n", "fields"),
        (b'userId,event,time\nu,"e\nf",1748600000\n', "quoted line break"),
        (b"userId,event,time\nu,e\r,1748600000\n", "carriage return"),
        (b"userId,event,time\nu,\xff,1748600000\n", "UTF-8"),
        (b"userId,event,time\nu,e\x00,1748600000\n", "NUL"),
        (b'"userId",event,time\nu,e,1748600000\n', "header"),
        (b"\nuserId,event,time\nu,e,1748600000\n", "header line is blank"),
        (b"userId,event,time\nu,e," + b"9" * 2_000_000, "longer than its fields"),
    ],
)
def test_what_the_columnar_path_leaves_to_the_reference(
    tiny: None, caplog: pytest.LogCaptureFixture, raw: bytes, why: str
) -> None:
    """Each declines with a reason, and the caller's answer is still the reference's."""
    with caplog.at_level(logging.INFO, logger="functions.validation.columnar"):
        columnar = run(raw, "columnar", max_rejected_fraction=1.0)
    assert why in caplog.text
    assert columnar == run(raw, "reference", max_rejected_fraction=1.0)


def test_small_inputs_never_import_polars_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Below ``COLUMNAR_MIN_BYTES`` the columnar path is not tried at all."""
    from functions.validation import columnar

    def boom(*_: object, **__: object) -> None:
        raise AssertionError("columnar path tried for a small input")

    monkeypatch.setattr(columnar, "validate_columnar", boom)
    raw = b"userId,event,time\nu,e,1748600000\n"
    options = ValidationOptions(now=NOW, workers=0)
    report = validate_csv(io.BytesIO(raw), io.BytesIO(), io.BytesIO(), options)
    assert report.accepted


def test_a_late_decline_leaves_no_trace_of_the_columnar_attempt(
    tiny: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Rows rejected in early blocks were already written when a bare CR turns up late: the
    caller rewinds, and output, rejected rows and report are exactly the reference's."""
    lines = ["userId,event,time"]
    lines += [f"u{index},e,{NOW_TS - index}" for index in range(60)]
    lines[3] = "u3,e,yesterday"
    lines[55] = "u55,e\r,1748600000"
    raw = ("\n".join(lines) + "\n").encode()
    with caplog.at_level(logging.INFO, logger="functions.validation.columnar"):
        columnar = run(raw, "columnar", max_rejected_fraction=1.0)
    assert "carriage return" in caplog.text
    reference = run(raw, "reference", max_rejected_fraction=1.0)
    assert columnar == reference
    assert columnar[2].count(b"yesterday") == 1  # the early rejection, once


def test_quoted_user_ids_keep_their_whole_line_and_sort_and_repeat_as_the_reference(
    tiny: None, caplog: pytest.LogCaptureFixture
) -> None:
    """userIds that need quoting (a comma, a quote) keep their whole line in the spill;
    a plain userId read from a quoted line (another field holds a comma) loses its field
    like its plain rows: either way order, repeats dropped and lookups are the reference's."""
    rng = random.Random(5)
    users = ['"a,b"', '"q""x"', '"""lead"', "plain", "zed", '" sp,c "', "ü,ß"]
    lines = ["userId,event,time,params.note"]
    for _ in range(300):
        user = rng.choice(users)
        if user == "ü,ß":
            user = '"ü,ß"'
        note = rng.choice(["x", '"has, comma"', '"say ""hi"""', ""])
        lines.append(f"{user},e{rng.randrange(3)},{NOW_TS - rng.randrange(4)},{note}")
    raw = ("\n".join(lines) + "\n").encode()
    result = assert_columnar_same(raw, caplog, duplicate_rows="drop")
    dropped = result[0]["rows_duplicate_dropped"]
    assert isinstance(dropped, int) and dropped > 0
    assert b'"a,b",' in result[1] and b'"q""x",' in result[1]


def test_too_many_distinct_users_hand_the_file_to_the_reference(
    tiny: None, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file of mostly distinct userIds would hold them all in memory: past the table's
    budget the columnar path declines, and the reference writes the same bytes."""
    monkeypatch.setattr(users, "MAX_USER_BYTES", 40 * users.USER_OVERHEAD)
    lines = ["userId,event,time"] + [f"user-{index},e,{NOW_TS - index}" for index in range(90)]
    raw = ("\n".join(lines) + "\n").encode()
    with caplog.at_level(logging.INFO, logger="functions.validation.columnar"):
        columnar = run(raw, "columnar")
    assert "more distinct userIds than fit" in caplog.text
    assert columnar == run(raw, "reference")


def test_without_polars_the_reference_path_runs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Polars failing to load (a machine its wheel does not suit) costs speed, not files."""
    import sys

    monkeypatch.setitem(sys.modules, "functions.validation.columnar", None)  # import fails
    raw = b"userId,event,time\nu,e,1748600000\nu,e,yesterday\n"
    with caplog.at_level(logging.WARNING, logger="functions.validation.core"):
        columnar = run(raw, "columnar", max_rejected_fraction=1.0)
    assert "Polars did not load" in caplog.text
    assert columnar == run(raw, "reference", max_rejected_fraction=1.0)


def test_forgetting_remembered_cells_changes_nothing(
    tiny: None, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Caches of verdicts and times start again when full: a file with more distinct
    cells than they hold comes out the same (here they hold two)."""
    monkeypatch.setattr(verdicts, "CACHE_LIMIT", 2)  # verdicts and time cells
    lines = ["userId,event,time,value,currencyCode"]
    for index in range(400):
        time_text = f"{NOW_TS - index}" if index % 3 else f"2025-05-30 10:00:{index % 60:02d}"
        value = f" {index}.5 " if index % 4 else f"x{index % 9}"
        lines.append(
            f"u{index // 2 % 7},e{index % 11},{time_text},{value},{['usd', 'EUR', 'x'][index % 3]}"
        )
    raw = ("\n".join(lines) + "\n").encode()
    assert_columnar_same(raw, caplog, naive_timezone="UTC", max_rejected_fraction=1.0)


def test_user_ids_are_stable_private_and_ordered_as_the_reference_orders_users() -> None:
    """The same userId gets the same id in every block, each table has its own ids, buckets
    are the reference's CRC-32, each userId is judged once, and ranks follow (bucket,
    userId) as Python sorts them."""
    hostile = ["b", "a", "", "é", "e\u0301", "😀", '"q"', "a,b", "A", "z" * 300, "\u00a0x"]
    hostile += [f"user-{index}" for index in range(200)]
    judged: list[str] = []

    def judge(users: pl.Series) -> pl.Series:
        judged.extend(users.to_list())
        return users.str.len_chars().cast(pl.Int64)

    table, other = UserTable(judge), UserTable()
    other.of(pl.Series(["zzz", "b"]))
    first_ids, first_buckets, lengths = table.of(pl.Series(hostile[:100]))
    again_ids, _, again_lengths = table.of(pl.Series(list(reversed(hostile))))
    assert sorted(judged) == sorted(set(hostile))  # each distinct userId judged once
    assert lengths.to_list() == [len(user) for user in hostile[:100]]
    assert again_lengths.to_list() == [len(user) for user in reversed(hostile)]
    by_user = dict(zip(hostile[:100], first_ids.to_list(), strict=True))
    assert [by_user[user] for user in reversed(hostile[:100])] == again_ids.to_list()[-100:]
    assert first_buckets.to_list() == buckets_of(hostile[:100])
    assert other.of(pl.Series(["b"]))[0].to_list() == [1]  # its own ids, not this table's
    ranks, texts = table.order()
    ranked = sorted(range(len(texts)), key=lambda index: ranks[index])
    expected = sorted(set(hostile), key=lambda user: (buckets_of([user])[0], user))
    assert [texts[index] for index in ranked] == expected


def test_groups_grow_with_the_input_within_bounds() -> None:
    """Small inputs use the fewest groups; a 1 GB shard holds about 16 MB of input a group."""
    assert grouping.groups_for(0) == grouping.MIN_GROUPS == 16
    assert grouping.groups_for(100 << 20) == 16
    assert grouping.groups_for(300 << 20) == 32
    assert grouping.groups_for(1 << 30) == grouping.MAX_GROUPS == 64
    assert grouping.groups_for(1 << 40) == 64
    with pytest.raises(ValueError, match="do not divide"):
        grouping.ColumnarGrouper(groups=48)
