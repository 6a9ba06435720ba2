"""What needs no job (own rewrites, duplicates, other objects), what is refused, and the
copies a file leaves in the bucket (archive, reports, parts)."""

from __future__ import annotations

import csv
import io
import time

import pytest

from functions import staging
from functions.claims import SOURCE_GENERATION_KEY
from functions.leanplum import RequestRejected
from functions.lifecycle import State
from tests.unit.fakes import BUCKET, STATE, Harness, events_csv

NAME = "incoming/events.csv"
NOT_NORMALISED = b"userId,event,time\nu1,open,2026-11-01T00:00:00Z\nu2,open,2026-11-02T00:00:00Z\n"


def test_the_event_of_our_own_rewrite_is_ignored() -> None:
    h = Harness()
    generation = h.upload(NAME, NOT_NORMALISED)
    assert h.deliver(NAME, generation) == "job_started"
    rewrite = h.store.stat(BUCKET, NAME)
    assert rewrite is not None and rewrite.generation != generation
    assert rewrite.metadata[SOURCE_GENERATION_KEY] == str(generation)
    assert h.deliver(NAME) == "own_rewrite"
    assert len(h.leanplum.multi_calls) == 1


def test_a_forged_rewrite_hint_is_not_believed() -> None:
    h = Harness()
    first = h.upload(NAME, NOT_NORMALISED)
    h.run_to_end(NAME, first)
    other = events_csv(6)
    h.upload(NAME, other, metadata={SOURCE_GENERATION_KEY: str(first)})
    assert h.deliver(NAME) == "job_started"
    assert len(h.leanplum.multi_calls) == 2


def test_identical_bytes_uploaded_again_are_a_duplicate() -> None:
    h = Harness()
    first = h.upload(NAME, events_csv())
    h.run_to_end(NAME, first)
    again = h.upload(NAME, events_csv())
    assert h.deliver(NAME, again) == "duplicate"
    assert [m["status"] for m in h.messages_for(NAME)] == ["SUCCEEDED", "DUPLICATE"]
    assert len(h.leanplum.multi_calls) == 1


def test_the_duplicate_policy_import_imports_again() -> None:
    h = Harness(duplicate_policy="import")
    h.run_to_end(NAME, h.upload(NAME, events_csv()))
    assert h.deliver(NAME, h.upload(NAME, events_csv())) == "job_started"
    assert len(h.leanplum.multi_calls) == 2


def test_bytes_of_a_superseded_version_may_be_imported_later() -> None:
    h = Harness()
    old = h.upload(NAME, events_csv())
    h.store.on("stat", NAME, lambda: h.upload(NAME, b"userId,event,time\nx,y,1\n"))
    assert h.deliver(NAME, old) == "superseded"
    assert h.deliver(NAME, h.upload(NAME, events_csv())) == "job_started"


@pytest.mark.parametrize("name", ["exports/a.csv", "importer/records/x.csv", "incoming/a.json"])
def test_objects_that_are_not_imports_are_ignored_without_io(name: str) -> None:
    h = Harness()
    h.upload(name, b"x")
    calls = len(h.store.calls)
    assert h.deliver(name) == "ignored"
    assert len(h.store.calls) == calls and h.publisher.messages == []


def test_a_refused_file_ends_rejected_with_its_report_and_rejected_rows() -> None:
    h = Harness()
    generation = h.upload(NAME, b"userId,event,time\nu,e,yesterday\nu,e,never\nu,e,1\n")
    assert h.deliver(NAME, generation) == "rejected"
    [message] = h.messages_for(NAME)
    assert message["status"] == "REJECTED" and message["reason"]
    by_reason = message["counts"]["rows_rejected_by_reason"]  # why, without opening the report
    assert sum(by_reason.values()) == message["counts"]["rows_rejected"] == 3
    assert list(by_reason.values()) == sorted(by_reason.values(), reverse=True)
    report = message["uris"]["report"].removeprefix(f"gs://{STATE}/")
    rejected = message["uris"]["rejected_rows"].removeprefix(f"gs://{STATE}/")
    assert b'"accepted": false' in h.store.data(STATE, report)
    assert h.store.data(STATE, rejected).count(b"\n") >= 3
    assert h.store.data(BUCKET, NAME).startswith(b"userId,event,time\nu,e,yesterday")
    assert h.leanplum.multi_calls == []


def test_some_rejected_rows_make_a_partial_import_that_accounts_for_every_row() -> None:
    h = Harness()
    good = events_csv(30).decode().splitlines()
    generation = h.upload(NAME, ("\n".join([*good, "u,e,not-a-time"]) + "\n").encode())
    [message] = h.run_to_end(NAME, generation)
    counts = message["counts"]
    assert message["status"] == "PARTIAL"
    assert counts["rows_total"] == counts["rows_sent"] + counts["rows_rejected"] == 31


def test_a_forged_archive_object_is_replaced_by_the_real_original() -> None:
    h = Harness()
    generation = h.upload(NAME, NOT_NORMALISED)
    archive = f"importer/archive/{NAME}/{generation}.csv"
    h.store.put(STATE, archive, b"forged")
    assert h.deliver(NAME, generation) == "job_started"
    assert h.store.data(STATE, archive) == NOT_NORMALISED


def test_an_archive_written_earlier_with_the_same_bytes_is_kept() -> None:
    h = Harness()
    generation = h.upload(NAME, NOT_NORMALISED)
    archive = f"importer/archive/{NAME}/{generation}.csv"
    kept = h.store.put(STATE, archive, NOT_NORMALISED)
    assert h.deliver(NAME, generation) == "job_started"
    assert h.store.stat(STATE, archive).generation == kept  # type: ignore[union-attr]


def big_csv(users: int = 12, per_user: int = 10) -> bytes:
    now = int(time.time()) - 86_400
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["userId", "event", "time"])
    for user in range(users):
        for i in range(per_user):
            writer.writerow([f"user-{user:03d}", "purchase", now - i])
    return out.getvalue().encode()


def test_a_file_above_the_limit_is_split_between_users_one_job_per_part(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The 100 MB limit is lowered to 1 kB so that a small file splits (a size, not a fault)."""
    monkeypatch.setattr(staging, "MAX_PART_BYTES", 1000)
    h = Harness()
    generation = h.upload(NAME, big_csv())
    [message] = h.run_to_end(NAME, generation)
    parts = message["uris"]["parts"]
    assert len(parts) == len(h.leanplum.jobs) > 1
    assert all(p.startswith(f"gs://{STATE}/importer/parts/{NAME}/{generation}/") for p in parts)
    seen: list[bytes] = []
    for uri in parts:
        rows = h.store.data(STATE, uri.removeprefix(f"gs://{STATE}/")).splitlines()[1:]
        seen.extend({row.split(b",")[0] for row in rows})
    assert len(seen) == len(set(seen)) == 12  # every user in exactly one part
    assert message["counts"]["rows_sent"] == message["counts"]["leanplum_successes"] == 120


def test_a_part_that_cannot_start_after_others_did_still_reports_the_started_parts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(staging, "MAX_PART_BYTES", 1000)
    h = Harness()
    generation = h.upload(NAME, big_csv())
    original = h.leanplum.start_import
    calls: list[str] = []

    def second_refused(bucket: str, file: str, *, retry: bool = True) -> str:
        calls.append(file)
        if len(calls) == 2:
            raise RequestRejected("multi: Leanplum refused the job: bad file", 200)
        return original(bucket, file)

    h.leanplum.start_import = second_refused  # type: ignore[method-assign]
    assert h.deliver(NAME, generation) == "job_started"  # before: FAILED, part 1 never polled
    assert h.poll(NAME, generation).text == "FAILED"
    [message] = h.messages_for(NAME)
    parts = len(message["uris"]["parts"])
    assert message["reason"].startswith(f"part 2 of {parts} could not start: multi: Leanplum")
    assert [job["job_id"] for job in message["jobs"]] == ["job-1"]
    sent = h.leanplum.jobs["job-1"]["rows"]
    assert message["counts"]["rows_sent"] == message["counts"]["leanplum_successes"] == sent
    assert f"{sent} rows accepted" in message["reason"]
    assert h.record(NAME, generation).state == State.FAILED


def test_the_normalised_file_uploaded_again_is_a_duplicate() -> None:
    """Before: downloading the rewritten object and uploading it again imported every row a
    second time (the claim knew the original's bytes, not the bytes sent)."""
    h = Harness()
    first = h.upload(NAME, NOT_NORMALISED)
    h.run_to_end(NAME, first)
    rewritten = h.store.data(BUCKET, NAME)
    assert rewritten != NOT_NORMALISED
    assert h.deliver(NAME, h.upload(NAME, rewritten)) == "duplicate"
    message = h.messages_for(NAME)[-1]
    assert message["status"] == "DUPLICATE"
    assert f"generation {first}" in message["reason"]
    assert len(h.leanplum.multi_calls) == 1


def test_an_original_that_normalises_to_bytes_already_sent_is_a_duplicate() -> None:
    h = Harness()
    h.run_to_end(NAME, h.upload(NAME, NOT_NORMALISED))
    same_events = NOT_NORMALISED.replace(b"T00:00:00Z", b"T00:00:00+00:00")
    assert h.deliver(NAME, h.upload(NAME, same_events)) == "duplicate"
    assert "the normalised bytes were already imported" in h.messages_for(NAME)[-1]["reason"]


@pytest.mark.parametrize(
    "forged_body",
    [b'{"generation": 12345}', b'{"generation": "x"}', b"not json", b"{}"],
    ids=["no-such-record", "bad-generation", "not-json", "empty"],
)
def test_a_planted_content_claim_does_not_make_a_real_file_a_duplicate(forged_body: bytes) -> None:
    """Before: anyone able to write the bucket could plant ``sha256-<digest>.json`` for a file
    to be uploaded later, which then ended DUPLICATE and was never imported."""
    import hashlib

    from functions.naming import content_claim_name

    h = Harness()
    data = events_csv(5)
    h.store.put(STATE, content_claim_name(NAME, hashlib.sha256(data).hexdigest()), forged_body)
    assert h.deliver(NAME, h.upload(NAME, data)) == "job_started"
    assert len(h.leanplum.multi_calls) == 1


def test_a_claim_naming_a_real_record_of_other_bytes_is_not_trusted() -> None:
    import hashlib
    import json

    from functions.naming import content_claim_name

    h = Harness()
    other = h.upload(NAME, NOT_NORMALISED)
    h.run_to_end(NAME, other)
    data = events_csv(5)
    claim = content_claim_name(NAME, hashlib.sha256(data).hexdigest())
    h.store.put(STATE, claim, json.dumps({"generation": other}).encode())
    assert h.deliver(NAME, h.upload(NAME, data)) == "job_started"


def test_a_version_that_failed_before_its_job_does_not_block_its_bytes() -> None:
    from functions.claims import MAX_ATTEMPTS

    h = Harness()
    first = h.upload(NAME, events_csv())
    h.store.fail("stat", NAME, "503", times=MAX_ATTEMPTS)  # dies just before every job start
    for _ in range(MAX_ATTEMPTS):
        with pytest.raises(Exception, match="503"):
            h.deliver(NAME, first)
    assert h.deliver(NAME, first) == "already_handled"
    assert h.messages_for(NAME)[-1]["status"] == "FAILED"
    assert h.deliver(NAME, h.upload(NAME, events_csv())) == "job_started"


HOSTILE_NAMES = [
    "incoming/" + "é" * 505 + "x.csv",  # 1,024 bytes of UTF-8: Cloud Storage's longest name
    "incoming/" + "a" * 1011 + ".csv",
    "incoming/事件 [1] #2 *?.csv",
    "incoming/with spaces/and\ttab.csv",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=["1024-bytes-utf8", "1024-ascii", "glob", "ws"])
def test_every_name_the_importer_derives_fits_cloud_storage(name: str) -> None:
    """Before: a 1,000-byte name gave record, archive and report names of 1,035 to 1,081 bytes,
    which Cloud Storage refuses; the claim failed before any record existed and the event was
    redelivered for a day with no result. (Cloud Storage refuses CR and LF in names itself.)"""
    from functions.naming import MAX_OBJECT_NAME_BYTES

    assert len(name.encode()) <= MAX_OBJECT_NAME_BYTES
    h = Harness()
    generation = h.upload(name, events_csv(3))
    assert h.deliver(name, generation) == "job_started"
    assert h.poll(name, generation).text == "SUCCEEDED"
    written = [n for (op, n) in h.store.calls if op in ("write", "copy")]
    assert max(len(n.encode()) for n in written) <= MAX_OBJECT_NAME_BYTES
    assert h.record(name, generation).object == name
    assert h.messages_for(name)[0]["file"]["object"] == name
