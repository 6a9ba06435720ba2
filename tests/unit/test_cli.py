"""python -m functions validate: exit codes, outputs, summary."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from functions.cli import main

GOOD = "userId,event,time\nu1,Buy,1748600000\nu2,Open,2025-05-30T10:00:00Z\n"
NOW = "2025-06-01T12:00:00Z"


def test_accepted_writes_output_report_rejected(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(GOOD)
    out, report, rejected = tmp_path / "o.csv", tmp_path / "r.json", tmp_path / "x.csv"
    stdout = io.StringIO()
    code = main(
        [
            "validate",
            str(source),
            "--now",
            NOW,
            "--output",
            str(out),
            "--report",
            str(report),
            "--rejected",
            str(rejected),
        ],
        stdout=stdout,
    )
    assert code == 0
    assert out.read_text().startswith("userId,event,time\n")
    assert json.loads(report.read_text())["rows_written"] == 2
    assert rejected.read_text().startswith("row,column,reason,")
    assert "ACCEPTED" in stdout.getvalue()


def test_refused_exit_1(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("userId,event\nu,e\n")
    stdout = io.StringIO()
    assert main(["validate", str(source), "--now", NOW], stdout=stdout) == 1
    assert "REFUSED" in stdout.getvalue() and "time" in stdout.getvalue()


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert main(["validate"]) == 2
    assert main(["validate", str(tmp_path / "missing.csv")]) == 2
    source = tmp_path / "in.csv"
    source.write_text(GOOD)
    assert main(["validate", str(source), "--now", "yesterday"]) == 2
    assert main(["validate", str(source), "--naive-timezone", "Mars/Base"]) == 2


CORPUS = Path(__file__).resolve().parent.parent / "data" / "validation"
GA4 = ["--map", "userId=user_pseudo_id", "--map", "time=event_timestamp", "--drop", "event_date"]


def _report(tmp_path: Path, source: Path, *options: str) -> tuple[int, dict[str, object], str]:
    report, stdout = tmp_path / "report.json", io.StringIO()
    code = main(
        ["validate", str(source), "--now", NOW, "--report", str(report), *options], stdout=stdout
    )
    data = json.loads(report.read_text()) if report.exists() else {}
    return code, data, stdout.getvalue()


@pytest.mark.parametrize("name", ["events.csv.gz", "events.csv", "events"])
def test_gzip_is_read_by_its_magic_bytes_whatever_the_name(tmp_path: Path, name: str) -> None:
    source = tmp_path / name
    source.write_bytes(gzip.compress(GOOD.encode()))
    out = tmp_path / "out.csv"
    code, report, _ = _report(tmp_path, source, "--output", str(out))
    assert code == 0 and report["rows_written"] == 2
    assert report["bytes_read"] == len(GOOD)
    assert out.read_bytes().startswith(b"userId,event,time\n")


def test_a_truncated_gzip_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "events.csv.gz"
    source.write_bytes(gzip.compress((GOOD * 2000).encode())[:-40])
    code, _, stdout = _report(tmp_path, source)
    assert code == 1 and "REFUSED: cannot read" in stdout


def test_ga4_export_gzipped_under_a_csv_name_with_map_and_drop(tmp_path: Path) -> None:
    code, report, stdout = _report(tmp_path, CORPUS / "ga4_gzip_bytes.csv", *GA4)
    assert code == 0, stdout
    assert report["time_formats"] == {"unix_microseconds": 6}
    assert report["column_mapping"]["event_date"] == "(dropped: drop_columns)"  # type: ignore[index]
    assert report["column_mapping"]["user_pseudo_id"] == "userId"  # type: ignore[index]
    assert "time formats: unix_microseconds 6" in stdout
    code, report, _ = _report(tmp_path, CORPUS / "ga4_gzip_bytes.csv")
    assert code == 1 and "userId" in str(report["refusal_reason"])


def test_naive_time_zone_option(tmp_path: Path) -> None:
    source = CORPUS / "bigquery_datetime_naive.csv"
    assert _report(tmp_path, source)[0] == 1
    for flag in ("--naive-time-zone", "--naive-timezone"):
        code, report, _ = _report(tmp_path, source, flag, "Europe/Berlin")
        assert code == 0 and report["time_formats"] == {"naive": 8}


def test_duplicate_rows_option(tmp_path: Path) -> None:
    source = CORPUS / "bigquery_utc_header.csv"
    code, report, stdout = _report(tmp_path, source)
    assert code == 0 and report["rows_duplicate_dropped"] == 1
    assert "1 duplicates dropped" in stdout
    code, report, _ = _report(tmp_path, source, "--duplicate-rows", "keep")
    assert code == 0 and report["rows_duplicate_dropped"] == 0 and report["rows_written"] == 8


@pytest.mark.parametrize(
    "options",
    [
        ["--map", "userId"],
        ["--map", "=col"],
        ["--map", "user=col"],
        ["--map", "userId=a", "--map", "userId=b"],
        ["--map", "userId=a", "--drop", "a"],
        ["--duplicate-rows", "merge"],
        ["--naive-time-zone", "Mars/Base"],
    ],
)
def test_option_usage_errors_exit_2(tmp_path: Path, options: list[str]) -> None:
    source = tmp_path / "in.csv"
    source.write_text(GOOD)
    assert main(["validate", str(source), "--now", NOW, *options]) == 2
