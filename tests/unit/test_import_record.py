"""The typed record reads what earlier importers wrote, and writes the same shape back.

``tests/data/records/legacy-*.json`` were written by the importer before its record was typed
(``ImportRecord.to_json`` of the untyped version, with the values of a real two-part import and
of a finished one-part import): records of imports running during a deployment live in buckets
and must keep loading.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.import_record import ImportRecord, Part, ValidationSummary
from functions.lifecycle import State

LEGACY = sorted((Path(__file__).resolve().parents[1] / "data" / "records").glob("legacy-*.json"))


@pytest.mark.parametrize("path", LEGACY, ids=lambda p: p.name)
def test_a_legacy_record_loads_and_writes_back_the_same_json(path: Path) -> None:
    raw = path.read_bytes()
    record = ImportRecord.from_json(raw, record_generation=3)
    assert json.loads(record.to_json()) == json.loads(raw)
    assert record.record_generation == 3 and record.stored_state == record.state


def test_legacy_fields_arrive_typed() -> None:
    record = ImportRecord.from_json((LEGACY[1]).read_bytes(), 1)
    assert record.state == State.JOB_STARTED
    part = "importer/parts/incoming/big-20261129.csv/1795923615358130/part-002.csv"
    assert record.parts[1] == Part(
        file=part,
        rows=264_990,
        bytes=98_000_000,
        uri=f"gs://leanplum-imports/{part}",
        job_id="job-b",
    )
    assert record.validation.rows_rejected == 11
    assert record.validation.full["column_mapping"] == {"user_id": "userId"}
    assert record.timings.received_at == "2026-11-29T03:40:15.486Z"
    assert record.timings.job_started_at == "2026-11-29T03:40:15.545Z"
    assert record.uris.rejected_rows and record.uris.failed_rows is None
    assert [t.state for t in record.history][-1] == State.JOB_STARTED
    assert record.rows_sent == 529_990


def test_keys_written_by_a_later_importer_are_kept() -> None:
    data = json.loads(LEGACY[0].read_bytes())
    data["queued_at"] = "2026-12-01T00:00:00Z"
    record = ImportRecord.from_dict(data)
    assert json.loads(record.to_json())["queued_at"] == "2026-12-01T00:00:00Z"


def test_a_minimal_record_loads_with_defaults() -> None:
    record = ImportRecord.from_dict({"bucket": "b", "object": "incoming/x.csv", "generation": "5"})
    assert record.generation == 5 and record.state == State.RECEIVED
    assert record.validation == ValidationSummary() and record.parts == []
    assert json.loads(record.to_json())["report"] == {}


def test_rows_sent_counts_only_parts_whose_job_started() -> None:
    record = ImportRecord(bucket="b", object="o", generation=1)
    record.parts = [Part("p1", 10, 100, "gs://b/p1", job_id="j1"), Part("p2", 7, 70, "gs://b/p2")]
    assert record.rows_sent == 10


def test_the_summary_round_trips_through_the_report() -> None:
    report = {
        "accepted": True,
        "rows_total": 4,
        "rows_written": 3,
        "rows_rejected": 1,
        "warnings": ["w"],
        "rejections": [{"row": 2, "column": "time", "reason": "r"}],
    }
    summary = ValidationSummary.from_report(report)
    assert summary.rows_written == 3 and summary.rows_time_clamped == 0
    assert summary.to_report()["warnings"] == ["w"]
    assert summary.to_report()["rows_rejected"] == 1
