"""The poller's decisions: retry while jobs run, end each file once, refuse forged requests."""

from __future__ import annotations

import csv
import io
import json

import pytest

from functions.import_record import ImportRecord, ValidationSummary
from functions.leanplum import JobStatus, RequestRejected, ServerError
from functions.lifecycle import State, Status
from functions.poller import Decision, decide, refuse_unless_cloud_tasks
from functions.results_join import JoinedResults
from tests.unit.fakes import BUCKET, STATE, TASK_HEADERS, Harness, events_csv

NAME = "incoming/events.csv"


def started(h: Harness, rows: int = 4) -> int:
    generation = h.upload(NAME, events_csv(rows))
    assert h.deliver(NAME, generation) == "job_started"
    return generation


def test_running_jobs_ask_the_queue_to_retry_then_one_result() -> None:
    h = Harness()
    generation = started(h)
    h.leanplum.job_states["job-1"] = "RUNNING"
    assert h.poll(NAME, generation).status == 503
    assert h.messages_for(NAME) == []
    del h.leanplum.job_states["job-1"]
    assert h.poll(NAME, generation).text == "SUCCEEDED"
    [message] = h.messages_for(NAME)
    assert message["counts"]["leanplum_successes"] == 4
    assert message["jobs"][0]["state"] == "FINISHED"


def test_late_and_duplicate_polls_publish_nothing_more() -> None:
    h = Harness()
    generation = started(h)
    assert h.poll(NAME, generation).status == 200
    for _ in range(3):
        outcome = h.poll(NAME, generation)
        assert (outcome.status, outcome.text) == (200, "already FINISHED")
    assert len(h.messages_for(NAME)) == 1


def test_a_poll_that_finds_an_unpublished_result_publishes_it() -> None:
    h = Harness()
    generation = started(h)
    h.publisher.fail_next = 1
    with pytest.raises(TimeoutError):
        h.poll(NAME, generation)
    assert h.poll(NAME, generation).status == 200
    assert [m["status"] for m in h.messages_for(NAME)] == ["SUCCEEDED"]


def test_the_deadline_ends_a_running_job_as_timed_out() -> None:
    h = Harness()
    generation = started(h)
    h.leanplum.job_states["job-1"] = "RUNNING"
    outcome = h.poll(NAME, generation, deadline=-1)
    assert (outcome.status, outcome.text) == (200, "TIMED_OUT")
    [message] = h.messages_for(NAME)
    assert "the deadline passed while jobs job-1 were still running" in message["reason"]
    assert message["counts"]["leanplum_successes"] is None
    assert h.record(NAME, generation).state == State.TIMED_OUT


def test_the_queues_last_attempt_ends_as_timed_out_even_if_leanplum_is_down() -> None:
    h = Harness()
    generation = started(h)
    h.leanplum.job_states["job-1"] = "RUNNING"
    assert h.poll(NAME, generation, attempts=2).status == 503  # attempt 1 of 2: still running
    h.leanplum.status_errors = [ServerError("server error 503", 503)]
    assert h.poll(NAME, generation, attempts=2).text == "TIMED_OUT"
    [message] = h.messages_for(NAME)
    assert "could not be asked" in message["reason"]


def test_leanplum_down_before_the_deadline_is_retried() -> None:
    h = Harness()
    generation = started(h)
    h.leanplum.status_errors = [ServerError("server error 502", 502)]
    assert h.poll(NAME, generation).status == 503
    assert h.poll(NAME, generation).status == 200


def test_an_unknown_job_ends_failed_with_leanplums_words() -> None:
    h = Harness()
    generation = started(h)
    h.leanplum.status_errors = [RequestRejected("getMultiResults: unknown job", 200)]
    assert h.poll(NAME, generation).text == "FAILED"
    [message] = h.messages_for(NAME)
    assert "unknown job" in message["reason"]


def test_a_failed_job_ends_failed_naming_it() -> None:
    h = Harness()
    generation = started(h)
    h.leanplum.job_states["job-1"] = "FAILED"
    assert h.poll(NAME, generation).text == "FAILED"
    assert h.messages_for(NAME)[0]["reason"] == "job job-1 FAILED: Job failed (fake)"
    assert h.record(NAME, generation).state == State.FAILED


def test_warned_rows_make_a_partial_result_with_the_failed_rows_beside_their_reason() -> None:
    h = Harness()
    generation = started(h, rows=4)
    h.leanplum.warn_rows = {2, 4}
    assert h.poll(NAME, generation).text == "PARTIAL"
    [message] = h.messages_for(NAME)
    assert message["counts"]["leanplum_failures"] == 2
    assert message["counts"]["leanplum_warnings_by_message"] == {"Unknown parameter": 2}
    failed_uri = message["uris"]["failed_rows"]
    rows = list(
        csv.reader(
            io.StringIO(h.store.data(STATE, failed_uri.removeprefix(f"gs://{STATE}/")).decode())
        )
    )
    assert rows[0] == ["row", "userId", "event", "time", "params.source", "leanplum_message"]
    assert [r[0] for r in rows[1:]] == ["3", "5"]
    assert all(r[-1] == "Unknown parameter" for r in rows[1:])
    assert h.record(NAME, generation).state == State.FINISHED


def test_a_poll_before_the_job_started_waits() -> None:
    h = Harness()
    generation = h.upload(NAME, events_csv())
    h.records.create(ImportRecord(bucket=BUCKET, object=NAME, generation=generation))
    assert h.poll(NAME, generation).status == 503


def test_a_task_for_an_unknown_file_is_acknowledged() -> None:
    assert Harness().poll(NAME, 42).status == 200


@pytest.mark.parametrize(
    "payload",
    [{}, {"bucket": "b", "object": "o"}, {"bucket": "b", "object": "o", "generation": "x"}],
)
def test_a_malformed_payload_is_a_400(payload: dict[str, str]) -> None:
    from functions import poller

    outcome = poller.handle_poll(payload, TASK_HEADERS, Harness().poller_services())
    assert outcome.status == 400


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {**TASK_HEADERS, "Authorization": ""},
        {**TASK_HEADERS, "Authorization": "Bearer short"},
        {k: v for k, v in TASK_HEADERS.items() if k != "X-CloudTasks-TaskName"},
    ],
)
def test_a_request_not_from_cloud_tasks_is_refused(headers: dict[str, str]) -> None:
    refusal = refuse_unless_cloud_tasks(headers)
    assert refusal is not None and refusal.status == 403
    assert refuse_unless_cloud_tasks(TASK_HEADERS) is None


def record_with(rejected: int = 0) -> ImportRecord:
    record = ImportRecord(bucket=BUCKET, object=NAME, generation=1, job_ids=["a", "b"])
    record.validation = ValidationSummary(rows_rejected=rejected)
    return record


FIN = JobStatus("FINISHED", 1, 0)


@pytest.mark.parametrize(
    ("statuses", "joined", "rejected", "expected"),
    [
        ([FIN, FIN], JoinedResults(successes=3), 0, (State.FINISHED, Status.SUCCEEDED)),
        ([FIN, FIN], JoinedResults(successes=3, failures=1), 0, (State.FINISHED, Status.PARTIAL)),
        ([FIN, FIN], JoinedResults(successes=3), 2, (State.FINISHED, Status.PARTIAL)),
        ([FIN, FIN], JoinedResults(successes=0, failures=3), 0, (State.FAILED, Status.FAILED)),
        ([FIN, JobStatus("FAILED", error="x")], JoinedResults(successes=3), 0,
         (State.FAILED, Status.FAILED)),
    ],
)  # fmt: skip
def test_the_end_of_a_file_follows_from_its_jobs_and_rows(
    statuses: list[JobStatus], joined: JoinedResults, rejected: int, expected: tuple[State, Status]
) -> None:
    decision = decide(record_with(rejected), statuses, joined, timed_out=None)
    assert (decision.state, decision.status) == expected


def test_a_timeout_wins_over_everything() -> None:
    decision = decide(record_with(), [FIN, FIN], JoinedResults(successes=3), timed_out="late")
    assert decision == Decision(State.TIMED_OUT, Status.TIMED_OUT, "late")


def test_the_message_schema_holds_for_every_poller_end() -> None:
    """Each end the poller can publish is a valid message (schema checked in test_results)."""
    h = Harness()
    generation = started(h)
    h.poll(NAME, generation)
    body = h.messages_for(NAME)[0]
    assert json.loads(json.dumps(body)) == body
    assert body["counts"]["rows_sent"] == 4


def test_a_forged_retry_count_header_cannot_end_a_running_job() -> None:
    """Attempts are counted in the record: a caller that sets X-CloudTasks-TaskRetryCount to
    100000 (it failed before: any such request ended the job TIMED_OUT) changes nothing."""
    h = Harness()
    generation = started(h)
    h.leanplum.job_states["job-1"] = "RUNNING"
    assert h.poll(NAME, generation, retry_count=100_000).status == 503
    assert h.messages_for(NAME) == []
    assert h.record(NAME, generation).poll_attempts == 1


def test_a_failure_that_survives_every_retry_ends_the_file_on_the_last_attempt() -> None:
    """Before: an error the poller did not expect answered 500 on every attempt, the last one
    too, and the queue dropped the task with no result."""
    h = Harness()
    generation = started(h)
    h.store.fail("download", "importer/parts/*", "503", times=10)
    with pytest.raises(Exception, match="503"):
        h.poll(NAME, generation, attempts=3)
    with pytest.raises(Exception, match="503"):
        h.poll(NAME, generation, attempts=3)
    outcome = h.poll(NAME, generation, attempts=3)
    assert (outcome.status, outcome.text) == (200, "FAILED")
    [message] = h.messages_for(NAME)
    assert "the poller could not finish after 3 attempts" in message["reason"]


def test_a_file_gone_before_the_join_still_ends_with_leanplums_counts() -> None:
    h = Harness()
    generation = started(h, rows=4)
    for name in h.store.names(STATE, "importer/parts/"):
        h.store.delete(STATE, name)
    assert h.poll(NAME, generation).text == "SUCCEEDED"
    assert h.messages_for(NAME)[0]["counts"]["leanplum_successes"] == 4


def test_leanplum_reads_a_copy_no_upload_can_replace() -> None:
    """Before: Leanplum read the upload's own name, which a later upload could overwrite
    before the job read it, and the poller joined rows of a generation that no longer existed
    (500 on every attempt, no result for the first version)."""
    h = Harness()
    first = started(h, rows=4)
    [(bucket, file)] = h.leanplum.multi_calls
    assert file == f"importer/parts/{NAME}/{first}/part-001.csv"
    assert h.store.data(bucket, file) == h.store.data(BUCKET, NAME)
    second = h.upload(NAME, events_csv(7))  # overwritten after the job started
    assert h.poll(NAME, first).text == "SUCCEEDED"
    assert h.messages_for(NAME)[0]["counts"]["leanplum_successes"] == 4
    h.run_to_end(NAME, second)
    assert [m["counts"]["rows_sent"] for m in h.messages_for(NAME)] == [4, 7]


def test_locally_a_task_token_is_checked_as_the_cloud_checks_it() -> None:
    """Before: any request with the two Cloud Tasks header names and any 20-character bearer
    token was obeyed by the local poller."""
    from dataclasses import replace

    from functions import poller
    from functions.task_tokens import LocalTokenVerifier
    from local_cloud.tasks_emulator.oidc import make_oidc_token

    key, audience = b"k" * 32, "http://127.0.0.1:8080/"
    h = Harness()
    generation = started(h)
    services = replace(h.poller_services(), verify_task_token=LocalTokenVerifier(key).problem)
    payload = {"bucket": BUCKET, "object": NAME, "generation": str(generation)}

    def poll(token: str) -> int:
        headers = {**TASK_HEADERS, "Authorization": f"Bearer {token}"}
        return poller.handle_poll(payload, headers, services, audience=audience).status

    assert poll(make_oidc_token("sa@p.iam.gserviceaccount.com", audience, key=b"x" * 32)) == 403
    assert poll(make_oidc_token("sa@p.iam.gserviceaccount.com", "http://other/", key=key)) == 403
    assert poll(make_oidc_token("sa@p", audience, now=1_000_000_000, key=key)) == 403
    assert poll("a.b") == 403 and poll("x" * 40) == 403
    assert h.messages_for(NAME) == []
    assert poll(make_oidc_token("sa@p.iam.gserviceaccount.com", audience, key=key)) == 200
    assert [m["status"] for m in h.messages_for(NAME)] == ["SUCCEEDED"]
