"""Headers as exporters write them: no header, nulls, event_timestamp, column_map, drop_columns."""

from __future__ import annotations

import pytest

from functions.validation import ValidationOptions
from functions.validation.columns import QUOTED_LINE_CHARS
from functions.validation.options import parse_column_map, parse_drop_columns
from local_cloud.leanplum_sim import _csvfile
from tests.unit._validation_helpers import NOW, NOW_TS, rows_of, run

T = NOW_TS - 3600


@pytest.mark.parametrize(
    "first",
    [
        f"u1,Buy,{T}",
        "user-0,purchase,2025-05-28 09:00:00 UTC,1.99,USD,note 0",
        "20250528,1748422800000000,page_view,123.456,1748400000,https://example.com/",
        "uid,name,when",
    ],
)
def test_a_first_line_that_is_not_a_header_refuses_the_file_quoting_it(first: str) -> None:
    report, out, _ = run(f"{first}\nu2,Open,{T}\n")
    assert not report.accepted and out == b""
    reason = report.refusal_reason or ""
    assert reason.startswith("the first line is not a header")
    assert repr(first) in reason
    assert "header=true" in reason and "COLUMN_MAP" in reason


def test_the_quoted_first_line_is_cut() -> None:
    first = ",".join(f"{T + index}" for index in range(100))
    reason = run(f"{first}\n")[0].refusal_reason or ""
    assert repr(first[:QUOTED_LINE_CHARS] + "...") in reason
    assert first[: QUOTED_LINE_CHARS + 1] not in reason


@pytest.mark.parametrize(
    ("header", "missing"),
    [("userId,event", "time"), ("user,ts,plan", "event"), ("params.a,params.b", "userId")],
)
def test_a_header_missing_some_columns_still_names_them(header: str, missing: str) -> None:
    reason = run(f"{header}\nu,e\n")[0].refusal_reason or ""
    assert reason.startswith(f"missing required column(s) {missing}")


def test_empty_fields_are_nulls() -> None:
    """Unchanged behaviour, pinned: an empty optional cell is an absent argument (the cell
    stays empty, which Leanplum's CSV reads as "not given"); an empty required cell rejects
    the row with its own reason; a row of empty cells is a blank line, skipped."""
    data = (
        "userId,event,time,value,currencyCode,deviceId,info,params.plan\n"
        f"u,e,{T},,,,,\n,e,{T},,,,,\nu,,{T},,,,,\nu,e,,,,,,\n,,,,,,,\nu,e,{T},1,USD,d,i,p\n"
    )
    report, out, _ = run(data, max_rejected_fraction=0.9)
    assert [(r["row"], r["column"], r["reason"]) for r in report.rejections] == [
        (3, "userId", "userId is empty"),
        (4, "event", "event name is empty"),
        (5, "time", "time is empty"),
    ]
    assert report.rows_written == 2 and any("1 blank rows" in w for w in report.warnings)
    actions = [row.action or {} for row in _csvfile.rows(_csvfile.decode(out), "track")]
    sparse, full = sorted(actions, key=len)
    assert set(sparse) == {"action", "userId", "event", "time"}
    assert set(full) > set(sparse)


def test_event_timestamp_is_an_alias_of_time_after_the_others() -> None:
    report, out, _ = run(f"user_id,event_name,event_timestamp\nu,e,{T * 10**6}\n")
    assert report.accepted and rows_of(out) == [["userId", "event", "time"], ["u", "e", str(T)]]
    assert report.column_mapping["event_timestamp"] == "time"
    for header in (
        "userId,event,event_timestamp,timestamp",
        "userId,event,timestamp,event_timestamp",
    ):
        both, out, _ = run(f"{header}\nu,e,{T},{T}\n")
        assert both.column_mapping["timestamp"] == "time"
        assert both.column_mapping["event_timestamp"] == "params.event_timestamp"


def test_column_map_names_the_source_of_any_argument_and_is_reported() -> None:
    data = f"user_pseudo_id,event_name,when,device,userId\np,e,{T},d,other\n"
    report, out, _ = run(
        data, column_map={"userId": "user_pseudo_id", "time": "when", "deviceId": "device"}
    )
    assert report.accepted, report.refusal_reason
    assert rows_of(out) == [
        ["userId", "event", "time", "deviceId", "params.userId"],
        ["p", "e", str(T), "d", "other"],
    ]
    assert report.column_mapping == {
        "user_pseudo_id": "userId",
        "when": "time",
        "device": "deviceId",
        "event_name": "event",
        "userId": "params.userId",
    }


def test_a_mapped_column_that_does_not_exist_refuses_the_file_naming_it() -> None:
    report, _, _ = run(f"userId,event,time\nu,e,{T}\n", column_map={"userId": "user_pseudo_id"})
    reason = report.refusal_reason or ""
    assert not report.accepted
    assert "userId=user_pseudo_id" in reason and "'userId', 'event', 'time'" in reason
    headerless, _, _ = run(f"u,e,{T}\n", column_map={"userId": "user_pseudo_id"})
    assert (headerless.refusal_reason or "").startswith("the first line is not a header")


def test_drop_columns_leave_columns_out_and_are_reported() -> None:
    data = f"event_date,userId,event,time,bad|name,plan\n20250601,u,e,{T},x,p\n"
    report, out, _ = run(data, drop_columns=frozenset({"event_date", "bad|name", "gone"}))
    assert report.accepted and report.rows_rejected == 0
    assert rows_of(out) == [["userId", "event", "time", "params.plan"], ["u", "e", str(T), "p"]]
    assert report.column_mapping["event_date"] == "(dropped: drop_columns)"
    assert report.column_mapping["bad|name"] == "(dropped: drop_columns)"
    assert any("drop_columns names column(s) this file does not have: 'gone'" in w
               for w in report.warnings)  # fmt: skip
    assert report.parameter_names_total == 1


def test_dropped_columns_may_repeat_and_may_not_be_required() -> None:
    ok, _, _ = run(f"userId,event,time,x,x\nu,e,{T},1,2\n", drop_columns=frozenset({"x"}))
    assert ok.accepted
    refused, _, _ = run(f"userId,event,time\nu,e,{T}\n", drop_columns=frozenset({"time"}))
    assert (refused.refusal_reason or "").startswith("missing required column(s) time")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"column_map": {"user": "uid"}}, "not a track argument"),
        ({"column_map": {"userId": " "}}, "empty"),
        ({"column_map": {"userId": "a", "deviceId": "a"}}, "mapped twice"),
        ({"column_map": {"userId": "a"}, "drop_columns": frozenset({"a"})}, "both mapped"),
    ],
)
def test_column_settings_are_checked(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ValidationOptions(now=NOW, **settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("userId=user_pseudo_id,time=ts", {"userId": "user_pseudo_id", "time": "ts"}),
        (" userId = uid , ", {"userId": "uid"}),
    ],
)
def test_column_map_setting_text(text: str, expected: dict[str, str]) -> None:
    assert parse_column_map(text) == expected


@pytest.mark.parametrize("text", ["userId", "=uid", "userId=", "userId=a,userId=b"])
def test_column_map_setting_mistakes(text: str) -> None:
    with pytest.raises(ValueError, match="column map"):
        parse_column_map(text)


def test_drop_columns_setting_text() -> None:
    assert parse_drop_columns(" event_date, ,ga_session_number ") == frozenset(
        {"event_date", "ga_session_number"}
    )
    assert parse_drop_columns("") == frozenset()
