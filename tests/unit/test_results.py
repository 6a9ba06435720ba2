"""The result message matches its versioned JSON Schema for every status."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from functions.import_record import ImportRecord, Part, Timings, ValidationSummary
from functions.lifecycle import Status
from functions.results import STATUSES, LeanplumCounts, build_message

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "result-message.schema.json").read_text()
)


def record() -> ImportRecord:
    done = ImportRecord(
        bucket="bkt",
        object="incoming/a.csv",
        generation=17,
        timings=Timings(uploaded_at="2026-11-29T03:00:00Z", job_started_at="2026-11-29T03:00:01Z"),
    )
    done.sha256 = "a" * 64
    done.size_bytes = 120
    done.validation = ValidationSummary(rows_total=3, rows_rejected=1, rows_time_clamped=1)
    done.parts = [Part("incoming/a.csv", 2, 90, "gs://bkt/incoming/a.csv", job_id="job-1")]
    done.job_ids = ["job-1"]
    return done


@pytest.mark.parametrize("status", STATUSES)
def test_every_status_matches_the_schema(status: str) -> None:
    message = build_message(
        record(), Status(status), reason=None if status == "SUCCEEDED" else "why",
        leanplum=LeanplumCounts(successes=2, failures=0, files=["http://lp/results/0.json"]),
    )  # fmt: skip
    jsonschema.validate(message, SCHEMA)
    assert message["status"] == status
    assert message["result_id"] == "bkt/incoming/a.csv#17"
    assert message["counts"]["rows_sent"] == 2
    assert message["timings"]["seconds_upload_to_result"] > 0


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="DONE"):
        build_message(record(), "DONE")  # type: ignore[arg-type]


def test_the_schema_refuses_a_message_without_counts() -> None:
    message = build_message(record(), Status.SUCCEEDED)
    del message["counts"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(message, SCHEMA)
