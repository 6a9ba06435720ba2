"""One test (or a few) per validation rule of issue 3."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from functions.validation import ValidationOptions
from functions.validation.names import name_problem
from functions.validation.rules import VALUE_NOT_NUMBER
from functions.validation.timelimits import old_event_limit
from functions.validation.timeparse import UNPARSEABLE
from tests.unit._validation_helpers import NOW, NOW_TS, rows_of, run

DAY = 86400
T = NOW_TS - 3600


def reasons(report: object) -> list[tuple[int, str, str]]:
    return [(r["row"], r["column"], r["reason"]) for r in report.rejections]  # type: ignore[attr-defined]


class TestColumns:
    def test_missing_required_column_refuses_naming_found_columns(self) -> None:
        report, out, _ = run("userId,event\nu,e\n")
        assert not report.accepted
        assert "time" in (report.refusal_reason or "")
        assert "'userId', 'event'" in (report.refusal_reason or "")
        assert out == b""

    def test_duplicate_columns_refuse(self) -> None:
        report, _, _ = run(f"userId,event,time,time\nu,e,{T},{T}\n")
        assert not report.accepted
        assert "duplicate" in (report.refusal_reason or "")

    def test_other_columns_become_params_and_order_is_canonical(self) -> None:
        report, out, _ = run(f"plan,time,params.x,event,userId,value\np,{T},x,e,u,1\n")
        assert rows_of(out) == [
            ["userId", "event", "time", "value", "params.plan", "params.x"],
            ["u", "e", str(T), "1", "p", "x"],
        ]
        assert report.column_mapping["plan"] == "params.plan"

    def test_aliases_are_mapped_and_reported(self) -> None:
        report, out, _ = run(f"user_id,event_name,timestamp\nu,e,{T}\n")
        assert report.accepted
        assert rows_of(out)[0] == ["userId", "event", "time"]
        assert report.column_mapping == {
            "user_id": "userId",
            "event_name": "event",
            "timestamp": "time",
        }

    def test_param_collision_refuses(self) -> None:
        report, _, _ = run(f"userId,event,time,x,params.x\nu,e,{T},1,2\n")
        assert not report.accepted
        assert "params.x" in (report.refusal_reason or "")

    def test_invalid_parameter_column_rejects_rows_with_a_value(self) -> None:
        report, out, _ = run(
            f"userId,event,time,a|b\nu,e,{T},1\nu,e,{T},\n", max_rejected_fraction=0.6
        )
        assert reasons(report) == [(2, "a|b", "parameter " + name_problem("a|b"))]  # type: ignore[operator]
        assert rows_of(out)[0] == ["userId", "event", "time"]
        assert any("a|b" in w for w in report.warnings)

    def test_too_many_parameters_on_a_row(self) -> None:
        names = [f"p{i}" for i in range(51)]
        header = "userId,event,time," + ",".join(names)
        full = f"u,e,{T}," + ",".join("v" for _ in names)
        sparse = f"u,e,{T}," + ",".join("v" if i < 50 else "" for i in range(51))
        report, _, _ = run(f"{header}\n{full}\n{sparse}\n", max_rejected_fraction=0.6)
        assert reasons(report) == [(2, "", "more than 50 parameters with values")]


class TestTime:
    @pytest.mark.parametrize(
        ("cell", "expected"),
        [
            (str(T), str(T)),
            (f"{T}.500", f"{T}.5"),
            (f"{T}.0", str(T)),
            (f"{T * 1000}", str(T)),
            (f"{T * 1000 + 250}", f"{T}.25"),
            (datetime.fromtimestamp(T, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), str(T)),
            (datetime.fromtimestamp(T + 7200, UTC).strftime("%Y-%m-%dT%H:%M:%S+02:00"), str(T)),
            (f" {T} ", str(T)),
        ],
    )
    def test_formats_become_unix_seconds(self, cell: str, expected: str) -> None:
        report, out, _ = run(f"userId,event,time\nu,e,{cell}\n")
        assert report.accepted, report.rejections
        assert rows_of(out)[1][2] == expected

    def test_naive_timezone_option(self) -> None:
        stamp = datetime.fromtimestamp(T, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _, out, _ = run(f"userId,event,time\nu,e,{stamp}\n", naive_timezone="Europe/Paris")
        assert rows_of(out)[1][2] == str(T - 7200)

    @pytest.mark.parametrize("cell", ["yesterday", "", "-5", "1e9", "12/31/2024"])
    def test_unparseable_time_rejects_row(self, cell: str) -> None:
        report, _, rejected = run(
            f"userId,event,time\nu,e,{cell}\nu,e,{T}\n", max_rejected_fraction=0.5
        )
        assert [(r, c) for r, c, _ in reasons(report)] == [(2, "time")]
        assert rows_of(rejected)[1][:2] == ["2", "time"]

    def test_beyond_nanoseconds_magnitude_rejected(self) -> None:
        """Before: microseconds were already "too large"; now only 10^20 and above are."""
        report, _, _ = run(
            f"userId,event,time\nu,e,{T * 10**11}\nu,e,{T}\n", max_rejected_fraction=0.5
        )
        assert "too large" in reasons(report)[0][2]

    def test_old_event_moved_to_360_days(self) -> None:
        report, out, _ = run(f"userId,event,time\nu,e,{NOW_TS - 400 * DAY}\n")
        assert rows_of(out)[1][2] == str(NOW_TS - 360 * DAY)
        assert report.rows_time_clamped == 1
        assert report.rows_hidden_from_analytics == 1

    def test_event_just_over_365_days_is_moved_363_is_not(self) -> None:
        report, out, _ = run(
            f"userId,event,time\nu,a,{NOW_TS - 365 * DAY - 1}\nu,b,{NOW_TS - 363 * DAY}\n"
        )
        assert report.rows_time_clamped == 1
        assert rows_of(out)[1:] == [
            ["u", "b", str(NOW_TS - 363 * DAY)],
            ["u", "a", str(NOW_TS - 360 * DAY)],
        ]

    def test_old_event_limit_is_fixed_for_a_utc_day(self) -> None:
        assert old_event_limit(NOW_TS) == old_event_limit(NOW_TS + 3600)
        assert NOW_TS - 365 * DAY <= old_event_limit(NOW_TS) < NOW_TS - 364 * DAY

    def test_old_event_policy_reject(self) -> None:
        report, _, _ = run(
            f"userId,event,time\nu,e,{NOW_TS - 400 * DAY}\nu,e,{T}\n",
            old_event_policy="reject",
            max_rejected_fraction=0.5,
        )
        assert reasons(report)[0][:2] == (2, "time")

    def test_old_event_policy_keep(self) -> None:
        report, out, _ = run(
            f"userId,event,time\nu,e,{NOW_TS - 400 * DAY}\n", old_event_policy="keep"
        )
        assert rows_of(out)[1][2] == str(NOW_TS - 400 * DAY)
        assert report.rows_time_clamped == 0
        assert any("kept" in w for w in report.warnings)

    def test_old_event_policy_keep_rejects_times_before_1970(self) -> None:
        report, out, _ = run(
            f"userId,event,time\nu,e,1969-12-31T23:59:59Z\nu,e,1970-01-01T00:00:00Z\nu,e,{T}\n",
            old_event_policy="keep",
            max_rejected_fraction=0.5,
            min_event_time=datetime(1970, 1, 1, tzinfo=UTC),  # the floor at the epoch itself
        )
        [(row, column, reason)] = reasons(report)
        assert (row, column) == (2, "time") and reason.startswith("time is before 1970-01-01")
        assert [row[2] for row in rows_of(out)[1:]] == ["0", str(T)]

    @pytest.mark.parametrize("policy", ["move", "reject", "keep"])
    def test_placeholder_times_before_the_floor_are_rejected_not_moved(self, policy: str) -> None:
        """Before: a time of 0 (a typical null) or a 1900 date was moved to import time - 360
        days and imported as a real event."""
        report, out, _ = run(
            f"userId,event,time\nu,e,0\nu,e,1900-01-01T00:00:00Z\nu,e,1999-12-31T23:59:59Z\n"
            f"u,e,{T}\n",
            old_event_policy=policy,
            max_rejected_fraction=0.9,
        )
        assert [(row, column) for row, column, _ in reasons(report)] == [
            (2, "time"), (3, "time"), (4, "time")
        ]  # fmt: skip
        assert all("before 2000-01-01 (MIN_EVENT_TIME)" in r for _, _, r in reasons(report))
        assert [row[2] for row in rows_of(out)[1:]] == [str(T)]
        assert report.rows_time_clamped == 0

    def test_the_floor_is_a_setting(self) -> None:
        report, _, _ = run(
            "userId,event,time\nu,e,2010-06-01T00:00:00Z\n",
            old_event_policy="keep",
            min_event_time=datetime(2012, 1, 1, tzinfo=UTC),
        )
        assert "before 2012-01-01" in reasons(report)[0][2]

    def test_future_events_rejected_beyond_limit(self) -> None:
        report, _, _ = run(
            f"userId,event,time\nu,e,{NOW_TS + 601}\nu,e,{NOW_TS + 600}\nu,e,{T}\n",
            max_rejected_fraction=0.5,
        )
        assert [row for row, _, _ in reasons(report)] == [2]

    def test_hidden_from_analytics_counted_not_changed(self) -> None:
        report, out, _ = run(f"userId,event,time\nu,e,{NOW_TS - 8 * DAY}\nu,e,{T}\n")
        assert report.rows_hidden_from_analytics == 1
        assert rows_of(out)[1][2] == str(NOW_TS - 8 * DAY)


class TestValueAndCurrency:
    def test_value_must_be_a_number(self) -> None:
        report, _out, _ = run(
            f"userId,event,time,value\nu,e,{T},12.5\nu,e,{T},12,50\nu,e,{T},abc\nu,e,{T},\n",
            max_rejected_fraction=0.9,
        )
        assert [(r, c) for r, c, _ in reasons(report)] == [(3, ""), (4, "value")]
        assert report.rows_written == 2

    @pytest.mark.parametrize("cell", ["1e309", "-1e999", "9" * 400])
    def test_value_must_be_finite(self, cell: str) -> None:
        report, _, _ = run(
            f"userId,event,time,value\nu,e,{T},{cell}\nu,e,{T},1e308\n", max_rejected_fraction=0.5
        )
        assert reasons(report) == [(2, "value", VALUE_NOT_NUMBER)]

    @pytest.mark.parametrize(
        ("code", "ok"),
        [("USD", True), ("eur", True), (" gbp ", True), ("XYZ", False), ("US", False)],
    )
    def test_currency_code(self, code: str, ok: bool) -> None:
        report, out, _ = run(f"userId,event,time,value,currencyCode\nu,e,{T},1,{code}\n")
        assert report.accepted is ok
        if ok:
            assert rows_of(out)[1][4] == code.strip().upper()


class TestUserAndNames:
    def test_user_id_trimmed(self) -> None:
        _, out, _ = run(f"userId,event,time\n  u1 ,e,{T}\n")
        assert rows_of(out)[1][0] == "u1"

    def test_user_id_empty_or_too_long_rejected(self) -> None:
        report, _, _ = run(
            f"userId,event,time\n   ,e,{T}\n{'x' * 401},e,{T}\n{'y' * 400},e,{T}\n",
            max_rejected_fraction=0.9,
        )
        assert reasons(report) == [
            (2, "userId", "userId is empty"),
            (3, "userId", "userId is longer than 400 characters"),
        ]

    def test_control_characters_in_ids_and_names_are_rejected(self) -> None:
        """Before: NUL and other C0 controls in user ids, event names and parameter names
        passed validation and reached Leanplum."""
        report, out, _ = run(
            f'userId,event,time\n"u\x00",e,{T}\nu\x01x,e,{T}\nu,"e\x00v",{T}\nu,e\x1f,{T}\n'
            f"ok,e,{T}\n",
            max_rejected_fraction=0.9,
        )
        assert [(row, column) for row, column, _ in reasons(report)] == [
            (2, "userId"), (3, "userId"), (4, "event"), (5, "event")
        ]  # fmt: skip
        assert all("control character" in reason for _, _, reason in reasons(report))
        assert [row[0] for row in rows_of(out)[1:]] == ["ok"]
        param, _, _ = run(f"userId,event,time,params.a\x02b\nu,e,{T},1\nu,e,{T},\n")
        assert reasons(param) == [
            (
                2,
                "params.a\x02b",
                "parameter name contains a control character (U+0000 to U+001F or U+007F)",
            )
        ]
        assert any("not a valid parameter name" in warning for warning in param.warnings)

    def test_device_id_too_long(self) -> None:
        report, _, _ = run(
            f"userId,event,time,deviceId\nu,e,{T},{'d' * 401}\nu,e,{T},d\n",
            max_rejected_fraction=0.5,
        )
        assert reasons(report)[0][:2] == (2, "deviceId")

    @pytest.mark.parametrize(
        ("name", "rule"),
        [
            ("", "empty"),
            ("x" * 140, "longer"),
            (".a", "starts"),
            ("-a", "starts"),
            ("a/", "ends"),
            ("a,b", "forbidden"),
            ("a|b", "forbidden"),
            ('a"b', "forbidden"),
            ("a{b", "forbidden"),
            ("a\tb", "forbidden"),
            ("a\nb", "forbidden"),
            ("a\rb", "forbidden"),
            ("123", "numeric"),
            ("a\x00b", "control"),
            ("a\x1bb", "control"),
            ("a\x7fb", "control"),
            ("1.5", "numeric"),
        ],
    )
    def test_name_rules(self, name: str, rule: str) -> None:
        assert rule in (name_problem(name) or "")

    @pytest.mark.parametrize("name", ["Purchase", "x" * 139, "a/b", "a.b", "level 2", "2nd"])
    def test_valid_names(self, name: str) -> None:
        assert name_problem(name) is None

    def test_bad_event_name_rejects_row_naming_rule(self) -> None:
        report, _, _ = run(f'userId,event,time\nu,"a|b",{T}\nu,ok,{T}\n', max_rejected_fraction=0.5)
        assert reasons(report) == [(2, "event", "event " + (name_problem("a|b") or ""))]

    def test_distinct_event_name_limit_warns(self) -> None:
        body = "".join(f"u,event{i},{T}\n" for i in range(501))
        report, _, _ = run("userId,event,time\n" + body)
        assert any("501 distinct event names" in w for w in report.warnings)
        assert report.event_names_total == 501
        assert len(report.event_names) <= 100

    def test_distinct_parameter_name_limit_warns(self) -> None:
        header = "userId,event,time," + ",".join(f"p{i}" for i in range(201))
        report, _, _ = run(f"{header}\nu,e,{T}" + "," * 201 + "\n")
        assert any("201 distinct parameter names" in w for w in report.warnings)


class TestFileLevel:
    def test_campaigns_warning_lists_event_names(self) -> None:
        report, _, _ = run(f"userId,event,time\nu,Buy,{T}\nu,Open,{T}\n")
        warning = next(w for w in report.warnings if "campaigns" in w)
        assert "'Buy'" in warning and "'Open'" in warning

    def test_refused_over_rejected_fraction_and_configurable(self) -> None:
        data = "userId,event,time\nu,e,bad\n" + f"u,e,{T}\n" * 8
        refused, out, _ = run(data)
        assert not refused.accepted and "over the limit" in (refused.refusal_reason or "")
        assert out == b""
        accepted, _, _ = run(data, max_rejected_fraction=0.2)
        assert accepted.accepted

    def test_no_valid_row_refused(self) -> None:
        report, _, _ = run("userId,event,time\nu,e,bad\n", max_rejected_fraction=1.0)
        assert report.refusal_reason == "no valid row left"

    def test_empty_file_refused(self) -> None:
        assert not run(b"")[0].accepted
        assert run("userId,event,time\n")[0].refusal_reason == "the file has no data rows"

    def test_wrong_field_count_rejected(self) -> None:
        report, _, rejected = run(
            f"userId,event,time\nu,e,{T},extra\nu,e,{T}\n", max_rejected_fraction=0.5
        )
        assert reasons(report)[0][0] == 2
        assert rows_of(rejected)[1][3:] == ["u", "e", str(T), "extra"]

    def test_grouped_by_user_in_time_order_with_lookup_counts(self) -> None:
        lines = [f"u{i % 3},e,{T - i}" for i in range(9)]
        report, out, _ = run("userId,event,time\n" + "\n".join(lines) + "\n")
        users = [row[0] for row in rows_of(out)[1:]]
        assert users == sorted(users, key=users.index)  # contiguous groups
        assert len([u for i, u in enumerate(users) if i == 0 or users[i - 1] != u]) == 3
        for user in ("u0", "u1", "u2"):
            times = [int(r[2]) for r in rows_of(out)[1:] if r[0] == user]
            assert times == sorted(times)
        assert report.user_lookups_before == 3 and report.user_lookups_after == 3

    def test_equal_times_keep_input_order(self) -> None:
        _, out, _ = run(f"userId,event,time\nu,b,{T}\nu,a,{T}\nu,c,{T}\n")
        assert [r[1] for r in rows_of(out)[1:]] == ["b", "a", "c"]

    def test_rejections_list_capped_counts_complete(self) -> None:
        data = "userId,event,time\n" + "u,e,bad\n" * 1500 + f"u,e,{T}\n"
        report, _, _ = run(data, max_rejected_fraction=1.0)
        assert len(report.rejections) == 1000
        assert report.rejections_by_reason == {UNPARSEABLE: 1500}
        assert report.to_dict()["rows_rejected"] == 1500

    def test_options_validated(self) -> None:
        with pytest.raises(ValueError, match="aware"):
            ValidationOptions(now=datetime(2025, 1, 1))
        with pytest.raises(ValueError, match="old_event_policy"):
            ValidationOptions(now=NOW, old_event_policy="drop")

    def test_spill_path_gives_same_bytes_as_memory(self, tmp_path: object) -> None:
        from functions.validation import sorting

        lines = [f"user{i % 97},e{i % 5},{T - (i * 7919) % 100000}" for i in range(3000)]
        data = "userId,event,time\n" + "\n".join(lines) + "\n"
        _, in_memory, _ = run(data)
        budget = sorting.DEFAULT_BUDGET_BYTES
        try:
            sorting.DEFAULT_BUDGET_BYTES = 20_000
            _, spilled, _ = run(data, temp_dir=str(tmp_path))
        finally:
            sorting.DEFAULT_BUDGET_BYTES = budget
        assert spilled == in_memory
