"""Exporter-shaped files in tests/data/validation/, written by make_exporter_corpus.py."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path
from types import ModuleType

from functions.validation.timeparse import NAIVE
from tests.unit._validation_helpers import rows_of, run

CORPUS = Path(__file__).resolve().parent.parent / "data" / "validation"
GA4_SETTINGS: dict[str, object] = {
    "column_map": {"userId": "user_pseudo_id", "time": "event_timestamp"},
    "drop_columns": frozenset({"event_date"}),
}


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("corpus", CORPUS / "make_exporter_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def test_committed_files_are_what_the_generator_writes() -> None:
    files = _generator().corpus()
    for name, data in files.items():
        assert load(name) == data, f"{name}: run make_exporter_corpus.py again"
    assert gzip.decompress(load("ga4_gzip_bytes.csv")) == files["ga4_microseconds.csv"]


def test_bigquery_export_with_header_and_utc_timestamps() -> None:
    report, out, _ = run(load("bigquery_utc_header.csv"))
    assert report.accepted, report.refusal_reason
    assert report.time_formats == {"sql_utc": 8}
    assert (report.rows_total, report.rows_written, report.rows_duplicate_dropped) == (8, 7, 1)
    rows = rows_of(out)
    assert rows[0] == ["userId", "event", "time", "value", "currencyCode", "params.note"]
    assert ["user-1", "screen_view", "1748440800.25", "", "", "note 1"] in rows
    assert ["user-0", "purchase", "1748422800", "1.99", "USD", "note 0"] in rows
    assert any(row[5] == "first line\nsecond line" for row in rows)
    assert report.column_mapping["event_time"] == "time"


def test_headerless_export_is_refused_quoting_its_first_line() -> None:
    report, out, _ = run(load("bigquery_headerless.csv"))
    assert not report.accepted and out == b""
    reason = report.refusal_reason or ""
    assert "not a header" in reason and "header=true" in reason
    assert "'user-0,purchase,2025-05-28 09:00:00 UTC,1.99,USD,note 0'" in reason


def test_bigquery_datetime_needs_a_zone() -> None:
    refused, _, _ = run(load("bigquery_datetime_naive.csv"))
    assert not refused.accepted
    assert refused.rejections_by_reason == {NAIVE: 8}
    accepted, out, _ = run(load("bigquery_datetime_naive.csv"), naive_timezone="UTC")
    assert accepted.accepted and accepted.time_formats == {"naive": 8}
    assert out == run(load("bigquery_utc_header.csv"))[1]


def test_ga4_microseconds_with_column_map_and_dropped_date() -> None:
    report, out, _ = run(load("ga4_microseconds.csv"), **GA4_SETTINGS)
    assert report.accepted, report.refusal_reason
    assert report.time_formats == {"unix_microseconds": 6}
    rows = rows_of(out)
    assert rows[0] == ["userId", "event", "time", "params.ga_session_id", "params.page_location"]
    firsts = [row[:3] for row in rows]
    assert ["1000000.1748400000", "session_start", "1748422800"] in firsts
    assert ["1000001.1748400001", "page_view", "1748423820.123457"] in firsts
    assert report.column_mapping == {
        "event_date": "(dropped: drop_columns)",
        "user_pseudo_id": "userId",
        "event_timestamp": "time",
        "event_name": "event",
        "ga_session_id": "params.ga_session_id",
        "page_location": "params.page_location",
    }


def test_ga4_export_without_the_column_map_names_what_is_missing() -> None:
    report, _, _ = run(load("ga4_microseconds.csv"))
    assert not report.accepted
    assert "missing required column(s) userId" in (report.refusal_reason or "")
