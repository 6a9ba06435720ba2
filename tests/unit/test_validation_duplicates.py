"""Rows repeated exactly within one file: dropped once each by default, counted, or kept."""

from __future__ import annotations

import io
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.validation.duplicates import RepeatFilter
from functions.validation.records import iter_records
from tests.unit._validation_helpers import NOW_TS, rows_of, run

DAY = 86_400
T = NOW_TS - 3600
ISO_T = "2025-06-01T11:00:00Z"
HEADER = "userId,event,time,value,currencyCode,params.plan\n"


@pytest.mark.parametrize(
    ("body", "dropped"),
    [
        (f"u,e,{T},1,USD,a\nu,e,{T},1,USD,a\n", 1),
        (f"u,e,{T},1,USD,a\nv,e,{T},1,USD,a\nu,e,{T},1,USD,a\n", 1),
        # Same user and instant, another row between them in the run: still a repeat.
        (f"u,a,{T},,,\nu,b,{T},,,\nu,a,{T},,,\n", 1),
        (f"u,e,{T},,,\nu,e,{T},,,\nu,e,{T},,,\n", 2),
        # Repeats after normalisation: time spellings, trimmed user, currency case.
        (f"u,e,{T},,,\nu,e,{ISO_T},,,\nu,e,{T * 10**6},,,\nu,e,2025-06-01 11:00:00 UTC,,,\n", 3),
        (f"u,e,{T},1,usd,\n u ,e,{T}.0,1,USD,\n", 1),
        # Not repeats: another parameter, value spelling, time or event.
        (f"u,e,{T},,,a\nu,e,{T},,,b\n", 0),
        (f"u,e,{T},1,,\nu,e,{T},1.0,,\n", 0),
        (f"u,e,{T},,,\nu,e,{T + 1},,,\nu,e,{T}.5,,,\n", 0),
        (f"u,e,{T},,,\nu,f,{T},,,\n", 0),
    ],
)
def test_repeats_dropped_once_each(body: str, dropped: int) -> None:
    rows = body.count("\n")
    report, out, _ = run(HEADER + body)
    assert report.accepted
    assert (report.rows_duplicate_dropped, report.rows_written) == (dropped, rows - dropped)
    assert len(rows_of(out)) - 1 == rows - dropped
    assert report.rows_total == report.rows_written + report.rows_rejected + dropped
    kept, out_kept, _ = run(HEADER + body, duplicate_rows="keep")
    assert (kept.rows_duplicate_dropped, kept.rows_written) == (0, rows)
    assert len(rows_of(out_kept)) - 1 == rows


def test_first_of_each_is_kept_and_counts_corrected() -> None:
    old = NOW_TS - 10 * DAY
    body = f"u,e,{old},,,x\nu,e,{T},,,y\nu,e,{old},,,x\nbad,e,zzz,,,\nu,e,{old},,,x\n"
    report, out, rejected = run(HEADER + body, max_rejected_fraction=0.5)
    assert rows_of(out)[1:] == [["u", "e", str(old), "", "", "x"], ["u", "e", str(T), "", "", "y"]]
    assert report.to_dict()["rows_duplicate_dropped"] == 2
    assert (report.rows_total, report.rows_written, report.rows_rejected) == (5, 2, 1)
    assert report.rows_hidden_from_analytics == 1  # the repeats of the old row not counted
    assert any("2 rows repeated an earlier row exactly" in w for w in report.warnings)
    assert rows_of(rejected)[1][:2] == ["5", "time"]  # repeats are not rejections


def test_old_events_moved_to_one_time_stay_distinct_unless_repeated() -> None:
    """Two app opens of two years ago are two events, though both land 360 days back."""
    first, second = NOW_TS - 700 * DAY, NOW_TS - 701 * DAY
    body = f"u,open,{first},,,\nu,open,{second},,,\nu,open,{first},,,\n"
    report, out, _ = run(HEADER + body)
    assert report.rows_duplicate_dropped == 1 and report.rows_written == 2
    assert report.rows_time_clamped == 2
    moved = str(NOW_TS - 360 * DAY)
    assert [row[2] for row in rows_of(out)[1:]] == [moved, moved]


def test_duplicate_rows_option_is_checked() -> None:
    with pytest.raises(ValueError, match="duplicate_rows"):
        run(HEADER, duplicate_rows="merge")


def _ordered(rows: list[tuple[str, float, str]]) -> tuple[list[str], list[float], list[str]]:
    rows = sorted(rows, key=lambda row: (row[0], row[1]))
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


rows_strategy = st.lists(
    st.tuples(st.sampled_from("abc"), st.sampled_from([1.0, 2.0, 2.5]), st.sampled_from("xyz")),
    max_size=40,
)


@given(rows_strategy, st.lists(st.integers(0, 40), max_size=4))
def test_filter_matches_a_set_of_all_rows_whatever_the_batches(
    rows: list[tuple[str, float, str]], cuts: list[int]
) -> None:
    """Fed in any batches, the filter keeps exactly the first of each (user, time, line)."""
    users, seconds, lines = _ordered(rows)
    expected = list(dict.fromkeys(zip(users, seconds, lines, strict=True)))
    repeats = RepeatFilter(before=2.0)
    kept: list[tuple[str, str]] = []
    bounds = [0, *sorted(min(cut, len(lines)) for cut in cuts), len(lines)]
    for start, end in pairwise(bounds):
        batch_users, batch_lines = repeats.filter(
            users[start:end], seconds[start:end], lines[start:end]
        )
        kept += zip(batch_users, batch_lines, strict=True)
    assert kept == [(user, line) for user, _, line in expected]
    assert repeats.dropped == len(rows) - len(expected)
    assert repeats.dropped_before == sum(1 for _, s, _ in rows if s < 2.0) - sum(
        1 for _, s, _ in expected if s < 2.0
    )


def test_filter_compares_the_time_as_read_when_rows_were_moved() -> None:
    repeats = RepeatFilter(before=0.0)
    users, lines = repeats.filter(["u"] * 3, [5.0] * 3, ["l"] * 3, [1.0, 2.0, 1.0])
    assert (users, lines) == (["u", "u"], ["l", "l"])
    assert (repeats.dropped, repeats.dropped_moved) == (1, 1)


def test_filter_keeps_only_the_last_run_in_memory() -> None:
    repeats = RepeatFilter(before=0.0)
    repeats.filter(["u"] * 1000, [float(i) for i in range(1000)], ["l"] * 1000)
    assert len(repeats._run) == 1


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["u1", "u2", " u1"]),
            st.sampled_from(["Buy", "Open"]),
            st.sampled_from([str(T), ISO_T, str(T * 1000), str(T + 60), "2025-06-01 11:01:00 UTC"]),
            st.sampled_from(["", "1", "2.5"]),
            st.sampled_from(["", "usd", "USD"]),
            st.sampled_from(["", "free"]),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_dropping_equals_removing_later_repeats_of_the_kept_output(
    rows: list[tuple[str, ...]],
) -> None:
    body = "".join(",".join(row) + "\n" for row in rows)
    _, kept, _ = run(HEADER + body, duplicate_rows="keep")
    report, dropped, _ = run(HEADER + body)
    records = list(iter_records(io.BytesIO(kept)))
    assert dropped == b"".join(dict.fromkeys(records))
    assert report.rows_duplicate_dropped == len(records) - len(set(records))
