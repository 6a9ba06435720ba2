"""Every race the end-to-end fault tests play through real processes, here in milliseconds.

The lifecycle code is the production code; only its dependencies are in memory
(:mod:`tests.unit.fakes`). A crash is :class:`~tests.unit.memory_store.Crash`, raised by the
store at a chosen call: a ``BaseException``, so no ``except Exception`` in the importer sees it,
as none sees a killed instance.
"""

from __future__ import annotations

import pytest

from functions.claims import MAX_ATTEMPTS, RetryLater
from functions.leanplum import AnswerLost, ServerError
from functions.lifecycle import State
from functions.naming import record_name
from tests.unit.fakes import BUCKET, STATE, Harness, crash, events_csv
from tests.unit.memory_store import Crash

NAME = "incoming/events.csv"


def one_result(h: Harness, generation: int | None = None) -> dict[str, object]:
    """The one result of ``NAME`` (of one version, if given): published once or, after a
    crash between publishing and marking, twice with the same ``result_id``."""
    messages = [m for m in h.messages_for(NAME)
                if generation is None or m["file"]["generation"] == str(generation)]  # fmt: skip
    results = {m["result_id"]: m for m in messages}
    assert len(results) == 1, messages
    return next(iter(results.values()))


def superseded_result(h: Harness, generation: int) -> dict[str, object]:
    result = one_result(h, generation)
    assert result["status"] == "SUPERSEDED" and result["counts"]["rows_sent"] == 0  # type: ignore[index]
    return result


def test_a_duplicate_delivery_after_the_import_makes_no_second_job() -> None:
    h = Harness()
    generation = h.upload(NAME, events_csv())
    h.run_to_end(NAME, generation)
    assert one_result(h)["status"] == "SUCCEEDED"
    assert h.deliver(NAME, generation) == "already_handled"
    assert len(h.leanplum.jobs) == 1 and len(h.messages_for(NAME)) == 1


def test_a_duplicate_delivery_while_the_job_runs_only_reschedules_the_same_poll() -> None:
    h = Harness()
    generation = h.upload(NAME, events_csv())
    assert h.deliver(NAME, generation) == "job_started"
    assert h.deliver(NAME, generation) == "already_handled"
    assert len(h.leanplum.jobs) == 1
    assert h.polls.attempts == 2 and len(h.polls.tasks) == 1


def test_a_concurrent_delivery_waits_while_the_lease_is_held() -> None:
    h = Harness()
    generation = h.upload(NAME, events_csv())
    outcomes: list[str] = []

    def second_delivery() -> None:
        with pytest.raises(RetryLater, match="being processed"):
            h.deliver(NAME, generation)
        outcomes.append("refused")

    h.store.on("download", NAME, second_delivery)  # arrives while the first one works
    assert h.deliver(NAME, generation) == "job_started"
    assert outcomes == ["refused"] and len(h.leanplum.multi_calls) == 1


def test_an_expired_lease_is_taken_over_and_the_file_imported_once() -> None:
    h = Harness()
    generation = h.upload(NAME, events_csv())
    h.store.on("download", NAME, crash())
    with pytest.raises(Crash):
        h.deliver(NAME, generation)
    with pytest.raises(RetryLater):
        h.deliver(NAME, generation)  # the dead instance's lease still runs
    h.now += h.lease_seconds + 1
    assert one_result(run(h, generation))["status"] == "SUCCEEDED"
    record = h.record(NAME, generation)
    assert record.attempts == 2 and len(h.leanplum.jobs) == 1


def test_two_takeovers_at_once_only_one_wins() -> None:
    h = Harness()
    generation = h.upload(NAME, events_csv())
    h.store.on("download", NAME, crash())
    with pytest.raises(Crash):
        h.deliver(NAME, generation)
    h.now += h.lease_seconds + 1

    writes: list[str] = []

    def rival_takes_over_between_our_read_and_our_write() -> None:
        writes.append("ours")
        if len(writes) == 2:  # the first is our create (refused: the record exists)
            rival = h.record(NAME, generation)
            rival.attempts += 1
            rival.lease_until = h.now + h.lease_seconds
            h.records.save(rival)

    h.store.on(
        "write",
        record_name(NAME, generation),
        rival_takes_over_between_our_read_and_our_write,
        times=2,
    )
    with pytest.raises(RetryLater, match="took over"):
        h.deliver(NAME, generation)
    assert h.leanplum.multi_calls == []


def run(h: Harness, generation: int, deliveries: int = MAX_ATTEMPTS + 1) -> Harness:
    """Redeliver like Eventarc (the lease expired each time) until the ingest is done, then
    poll like Cloud Tasks until the poller answers 2xx."""
    for _ in range(deliveries):
        try:
            h.deliver(NAME, generation)
            break
        except (RetryLater, Crash, ServerError):
            h.now += h.lease_seconds + 1
    for _ in range(5):  # a queued file: the start queue retries its task
        try:
            if h.start(NAME, generation).status < 300:
                break
        except Crash:
            h.now += 601  # the start attempt's lease expires
    for _ in range(5):
        try:
            if h.poll(NAME, generation).status < 300:
                break
        except Crash:
            continue  # the poller died: Cloud Tasks retries the task
    return h


def mutations_of_a_clean_run() -> int:
    h = Harness()
    h.run_to_end(NAME, h.upload(NAME, events_csv(4)))
    return h.store.mutations


@pytest.mark.parametrize("landed", [False, True], ids=["before-landing", "after-landing"])
@pytest.mark.parametrize("step", range(1, mutations_of_a_clean_run() + 1))
def test_a_crash_at_any_step_ends_with_one_result_and_at_most_one_job(
    step: int, landed: bool
) -> None:
    """The instance dies at each write of a clean run in turn (before the write lands, and
    after it landed but before its answer came back); redeliveries and polls then finish."""
    h = Harness()
    generation = h.upload(NAME, events_csv(4))
    h.store.crash_at_mutation, h.store.crash_after_landing = step, landed
    run(h, generation)
    result = one_result(h)
    assert len(h.leanplum.jobs) <= 1
    if result["status"] == "SUCCEEDED":
        assert len(h.leanplum.jobs) == 1
    else:  # the only other end: died between recording JOB_STARTING and the job id
        assert result["status"] == "FAILED", result
        assert "a job may exist" in str(result["reason"])
    assert h.record(NAME, generation).terminal


def test_a_crash_after_multi_before_the_job_id_is_recorded_fails_naming_the_risk() -> None:
    h = Harness()
    generation = h.upload(NAME, events_csv())
    original = h.leanplum.start_import

    def start_then_die(bucket: str, file: str, *, retry: bool = True) -> str:
        original(bucket, file)
        raise Crash

    h.leanplum.start_import = start_then_die  # type: ignore[method-assign]
    run(h, generation)
    assert one_result(h)["status"] == "FAILED"
    assert "interrupted while starting the Leanplum job" in str(one_result(h)["reason"])
    assert len(h.leanplum.multi_calls) == 1


def test_a_newer_upload_at_download_supersedes_the_old_version() -> None:
    h = Harness()
    old = h.upload(NAME, events_csv(3))
    h.store.on("download", NAME, lambda: h.upload(NAME, events_csv(5)))
    assert h.deliver(NAME, old) == "superseded"
    assert h.record(NAME, old).state == State.SUPERSEDED
    assert superseded_result(h, old)["reason"] == "the file was replaced before it was read"
    assert h.leanplum.multi_calls == []
    newer = h.store.stat(BUCKET, NAME)
    assert newer is not None
    run(h, newer.generation)
    assert one_result(h, newer.generation)["counts"]["rows_total"] == 5  # type: ignore[index]


def test_a_newer_upload_at_the_rewrite_supersedes_the_old_version() -> None:
    h = Harness()
    old = h.upload(NAME, b"userId,event,time\nu,e,2024-01-01T00:00:00Z\n")  # will be rewritten
    h.store.on("write", NAME, lambda: h.upload(NAME, events_csv(5)))
    assert h.deliver(NAME, old) == "superseded"
    superseded_result(h, old)
    assert h.leanplum.multi_calls == []
    assert h.store.data(BUCKET, NAME) == events_csv(5)  # the newer upload is untouched


def test_a_newer_upload_just_before_the_job_starts_supersedes_the_old_version() -> None:
    h = Harness()
    old = h.upload(NAME, events_csv(3))
    h.store.on("stat", NAME, lambda: h.upload(NAME, events_csv(5)))
    assert h.deliver(NAME, old) == "superseded"
    assert h.leanplum.multi_calls == []
    assert superseded_result(h, old)["reason"] == "the file was replaced before the job started"


def test_a_lost_multi_answer_is_never_resent() -> None:
    h = Harness()
    generation = h.upload(NAME, events_csv())
    h.leanplum.start_errors = [AnswerLost("multi: no answer within 60.0 s")]
    assert h.deliver(NAME, generation) == "failed"
    assert h.deliver(NAME, generation) == "already_handled"
    result = one_result(h)
    assert result["status"] == "FAILED" and "a Leanplum job may exist" in str(result["reason"])
    assert len(h.leanplum.multi_calls) == 1


def test_lost_record_write_answers_are_our_own_writes() -> None:
    """Every record write's answer is lost (the client's retry meets it and gets 412): each is
    recognised by its token, so the file imports without a redelivery or a lease wait."""
    h = Harness()
    generation = h.upload(NAME, events_csv())
    h.store.fail("write", record_name(NAME, generation), "lost_answer", times=100)
    assert h.deliver(NAME, generation) == "job_started"
    assert h.poll(NAME, generation).status == 200
    assert one_result(h)["status"] == "SUCCEEDED"


def test_lost_answers_of_the_rewrite_and_the_archive_copy_are_successes() -> None:
    h = Harness()
    generation = h.upload(NAME, b"userId,event,time\nu,e,2026-11-01T00:00:00Z\n")
    h.store.fail("write", NAME, "lost_answer")
    h.store.fail("copy", "importer/archive/*", "lost_answer")
    assert h.deliver(NAME, generation) == "job_started"
    record = h.record(NAME, generation)
    assert record.output_generation == h.store.stat(BUCKET, NAME).generation  # type: ignore[union-attr]
    assert record.uris.original and h.store.data(STATE, f"importer/archive/{NAME}/{generation}.csv")


def test_leanplum_down_at_job_start_queues_the_file_then_imports_once() -> None:
    """5xx made no job: the slot goes back and the start queue tries again, without the file
    being validated again."""
    h = Harness()
    generation = h.upload(NAME, events_csv())
    h.leanplum.start_errors = [ServerError("server error 503", 503)]
    assert h.deliver(NAME, generation) == "queued"
    record = h.record(NAME, generation)
    assert record.state == State.QUEUED and record.parts[0].slot is None
    assert h.store.names(STATE, "importer/slots/") == []
    assert h.deliver(NAME, generation) == "already_handled"  # a redelivery leaves it queued
    assert h.start(NAME, generation).status == 200
    assert one_result(run(h, generation))["status"] == "SUCCEEDED"
    assert len(h.leanplum.jobs) == 1


def test_a_file_that_always_crashes_ends_failed_after_max_attempts() -> None:
    h = Harness()
    generation = h.upload(NAME, events_csv())
    h.store.fail("download", NAME, "503", times=MAX_ATTEMPTS)
    for _ in range(MAX_ATTEMPTS):
        with pytest.raises(Exception, match="503"):
            h.deliver(NAME, generation)
    assert h.deliver(NAME, generation) == "already_handled"
    result = one_result(h)
    assert result["status"] == "FAILED" and f"failed {MAX_ATTEMPTS} times" in str(result["reason"])
    assert h.leanplum.multi_calls == []


def test_a_crash_between_publish_and_mark_published_publishes_on_the_next_delivery() -> None:
    h = Harness()
    generation = h.upload(NAME, b"userId,event\nu,e\n")  # refused: no time column
    original = h.publisher.publish

    def publish_then_die(message: dict[str, object]) -> str:
        h.store.on("write", record_name(NAME, generation), crash())
        return original(message)

    h.publisher.publish = publish_then_die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        h.deliver(NAME, generation)
    h.publisher.publish = original  # type: ignore[method-assign]
    assert h.deliver(NAME, generation) == "already_handled"
    assert [m["status"] for m in h.messages_for(NAME)] == ["REJECTED", "REJECTED"]
    assert h.deliver(NAME, generation) == "already_handled"
    assert len(h.messages_for(NAME)) == 2
