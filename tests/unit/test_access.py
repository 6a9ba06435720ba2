"""Each function touches only what ``functions/access.py`` declares (and ``infra/`` grants)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.access import ACCESS, INCOMING, allows
from functions.config import RESERVED_PREFIX
from functions.lifecycle import State
from functions.naming import record_name
from functions.objects import AccessDenied
from tests.unit.fakes import BUCKET, STATE, Harness, events_csv

NAME = "incoming/events.csv"
LEGACY = Path(__file__).resolve().parents[1] / "data" / "records" / "legacy-finished.json"


def test_a_whole_import_stays_inside_each_functions_rows() -> None:
    h = Harness()
    generation = h.upload(NAME, events_csv())
    h.leanplum.warn_rows = {1}  # failed rows too: the poller writes a report
    [message] = h.run_to_end(NAME, generation)
    assert message["status"] == "PARTIAL"
    assert h.ingest_view.denied == [] and h.poller_view.denied == []


def test_a_read_outside_the_table_fails_in_a_unit_test() -> None:
    """The class of the cloud-only bug: a function reads what its grants do not cover (403 in
    the cloud, nothing locally). The poller may stat uploads, never write them or read the
    archive."""
    h = Harness()
    h.upload(NAME, b"x")
    h.store.put(STATE, "importer/archive/x.csv", b"x")
    with pytest.raises(
        AccessDenied, match="poller may not download gs://importer-state/importer/a"
    ):
        h.poller_view.download(STATE, "importer/archive/x.csv", None, open("/dev/null", "wb"))  # noqa: SIM115
    with pytest.raises(AccessDenied):
        h.ingest_view.write(BUCKET, "importer/records/x.json", b"{}", if_generation_match=None,
                            content_type="application/json")  # fmt: skip
    assert len(h.poller_view.denied) == len(h.ingest_view.denied) == 1


def test_nothing_may_write_the_reserved_prefix_of_the_landing_bucket() -> None:
    for function, grants in ACCESS.items():
        for grant in grants:
            if grant.bucket == "landing" and grant.prefix != INCOMING:
                assert not grant.write, (function, grant)
        assert not allows(function, "landing", RESERVED_PREFIX + "records/x", write=True,
                          incoming_prefix="incoming/")  # fmt: skip


def test_a_record_written_before_the_state_bucket_is_moved_there_and_finished() -> None:
    """An import running during the upgrade: its record is in the landing bucket, and its one
    part is the upload itself (read pinned, which the poller may no longer read): the record
    moves to the state bucket and the file ends with Leanplum's own counts."""
    h = Harness()
    generation = h.upload(NAME, events_csv(8))
    legacy = json.loads(LEGACY.read_bytes())
    legacy.update(bucket=BUCKET, object=NAME, generation=generation, state="JOB_STARTED",
                  result=None, published=False)  # fmt: skip
    legacy["history"] = legacy["history"][:-1]
    job = h.leanplum.start_import(BUCKET, NAME)
    legacy["parts"][0].update(file=NAME, job_id=job)
    legacy["job_ids"] = [job]
    h.store.put(BUCKET, record_name(NAME, generation), json.dumps(legacy).encode())
    assert h.poll(NAME, generation).text == "SUCCEEDED"
    assert h.store.names(STATE, record_name(NAME, generation)) == [record_name(NAME, generation)]
    assert h.record(NAME, generation).state == State.FINISHED
    [message] = h.messages_for(NAME)
    assert message["counts"]["leanplum_successes"] == 8
