"""The lifecycle's table and its one way to end an import, over the in-memory store."""

from __future__ import annotations

import itertools

import pytest

from functions.errors import StaleGenerationError
from functions.import_record import ImportRecord
from functions.lifecycle import (
    STATUSES_OF_STATE,
    TERMINAL_STATES,
    TRANSITIONS,
    IllegalTransition,
    State,
    Status,
    check_status,
    check_transition,
    conclude,
    publish_pending,
)
from functions.records import RecordStore
from functions.results import build_message, finish
from tests.unit.fakes import BUCKET, STATE, RecordingPublisher, crash
from tests.unit.memory_store import Crash, MemoryStore

ALLOWED = {
    (State.RECEIVED, State.VALIDATED),
    (State.VALIDATED, State.JOB_STARTING),
    (State.VALIDATED, State.QUEUED),
    (State.QUEUED, State.JOB_STARTING),
    (State.QUEUED, State.SUPERSEDED),
    (State.QUEUED, State.TIMED_OUT),
    (State.QUEUED, State.FAILED),
    (State.JOB_STARTING, State.JOB_STARTED),
    (State.JOB_STARTING, State.QUEUED),
    (State.JOB_STARTING, State.FAILED),
    (State.JOB_STARTED, State.FINISHED),
    (State.JOB_STARTED, State.FAILED),
    (State.JOB_STARTED, State.TIMED_OUT),
    *{(pre, end) for pre in (State.RECEIVED, State.VALIDATED)
      for end in (State.REJECTED, State.DUPLICATE, State.SUPERSEDED, State.FAILED,
                  State.VALIDATED, State.DRY_RUN)},
}  # fmt: skip


@pytest.mark.parametrize(("current", "target"), list(itertools.product(State, State)))
def test_every_move_is_allowed_or_refused_by_the_table(current: State, target: State) -> None:
    if current == target or (current, target) in ALLOWED:
        check_transition(current, target)
    else:
        with pytest.raises(IllegalTransition, match=f"{current} -> {target}"):
            check_transition(current, target)


def test_terminal_states_allow_no_move_and_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(State)
    assert all(not TRANSITIONS[state] for state in TERMINAL_STATES)
    assert {s for s in State if s.terminal} == TERMINAL_STATES == set(STATUSES_OF_STATE)


def test_a_job_can_never_start_twice() -> None:
    """No state after JOB_STARTING leads back to it: the table itself forbids a second multi."""
    reachable = set()
    frontier = {State.JOB_STARTED}
    while frontier:
        state = frontier.pop()
        reachable.add(state)
        frontier |= TRANSITIONS[state] - reachable
    assert State.JOB_STARTING not in reachable
    assert State.VALIDATED not in reachable


@pytest.mark.parametrize(
    ("state", "status", "ok"),
    [
        (State.FINISHED, Status.SUCCEEDED, True),
        (State.FINISHED, Status.PARTIAL, True),
        (State.FINISHED, Status.FAILED, False),
        (State.FAILED, Status.FAILED, True),
        (State.FAILED, Status.SUCCEEDED, False),
        (State.TIMED_OUT, Status.TIMED_OUT, True),
        (State.REJECTED, Status.REJECTED, True),
        (State.DUPLICATE, Status.DUPLICATE, True),
        (State.SUPERSEDED, Status.SUPERSEDED, True),
        (State.SUPERSEDED, None, False),
        (State.SUPERSEDED, Status.FAILED, False),
        (State.FAILED, None, False),
        (State.JOB_STARTED, Status.SUCCEEDED, False),
    ],
)
def test_state_and_status_never_disagree(state: State, status: Status | None, ok: bool) -> None:
    if ok:
        check_status(state, status)
    else:
        with pytest.raises(IllegalTransition):
            check_status(state, status)


def started(store: MemoryStore) -> tuple[RecordStore, ImportRecord]:
    records = RecordStore(store, STATE)
    record = ImportRecord(bucket=BUCKET, object="incoming/a.csv", generation=7)
    assert records.create(record)
    for state in (State.VALIDATED, State.JOB_STARTING, State.JOB_STARTED):
        records.save(record, state)
    return records, record


def test_conclude_stores_the_result_before_publishing_then_marks_it() -> None:
    store, publisher = MemoryStore(), RecordingPublisher()
    records, record = started(store)
    stored_before_publish: list[bool] = []
    original = publisher.publish

    def spy(message: dict[str, object]) -> str:
        fresh = records.reload(record)
        assert fresh is not None
        stored_before_publish.append(fresh.result == message and not fresh.published)
        return original(message)

    publisher.publish = spy  # type: ignore[method-assign]
    conclude(record, State.FINISHED, status=Status.SUCCEEDED, reason=None,
             build_result=lambda s: build_message(record, s), records=records,
             publisher=publisher)  # fmt: skip
    assert stored_before_publish == [True]
    fresh = records.reload(record)
    assert fresh is not None and fresh.published and fresh.state == State.FINISHED
    assert [m["status"] for m in publisher.messages] == ["SUCCEEDED"]


def test_a_crash_between_publish_and_mark_publishes_again_never_zero_times() -> None:
    store, publisher = MemoryStore(), RecordingPublisher()
    records, record = started(store)
    original = publisher.publish

    def publish_then_die(message: dict[str, object]) -> str:
        store.on("write", "importer/records/*", crash())  # the instance dies after publishing
        return original(message)

    publisher.publish = publish_then_die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        finish(record, State.TIMED_OUT, reason="late", records=records, publisher=publisher)
    again = records.reload(record)
    assert again is not None and again.state == State.TIMED_OUT and not again.published
    publisher.publish = original  # type: ignore[method-assign]
    assert publish_pending(again, records=records, publisher=publisher)
    assert not publish_pending(again, records=records, publisher=publisher)
    assert [m["result_id"] for m in publisher.messages] == [f"{BUCKET}/incoming/a.csv#7"] * 2


def test_a_failed_publish_leaves_the_result_stored_for_the_next_attempt() -> None:
    store, publisher = MemoryStore(), RecordingPublisher(fail_next=1)
    records, record = started(store)
    with pytest.raises(TimeoutError):
        finish(record, State.FAILED, reason="job failed", records=records, publisher=publisher)
    stored = records.reload(record)
    assert stored is not None and stored.result is not None and not stored.published
    assert publish_pending(stored, records=records, publisher=publisher)
    assert [m["reason"] for m in publisher.messages] == ["job failed"]


def test_two_publishers_of_one_result_both_succeed_and_it_stays_marked() -> None:
    """A duplicate poll and a redelivered event find the same unpublished result: each
    publishes (subscribers dedupe on result_id); the loser of the mark-published race is fine."""
    store, publisher = MemoryStore(), RecordingPublisher(fail_next=1)
    records, record = started(store)
    with pytest.raises(TimeoutError):
        finish(record, State.FAILED, reason="x", records=records, publisher=publisher)
    first, second = records.reload(record), records.reload(record)
    assert first is not None and second is not None
    assert publish_pending(first, records=records, publisher=publisher)
    assert publish_pending(second, records=records, publisher=publisher)
    final = records.reload(record)
    assert final is not None and final.published
    assert len(publisher.messages) == 2


def test_a_mark_that_loses_to_an_unrelated_write_is_raised() -> None:
    store, publisher = MemoryStore(), RecordingPublisher(fail_next=1)
    records, record = started(store)
    with pytest.raises(TimeoutError):
        finish(record, State.FAILED, reason="x", records=records, publisher=publisher)
    stale, other = records.reload(record), records.reload(record)
    assert stale is not None and other is not None
    other.last_error = "someone else"
    records.save(other)
    with pytest.raises(StaleGenerationError):
        publish_pending(stale, records=records, publisher=publisher)


def test_superseded_ends_with_its_own_result_and_finished_needs_a_status() -> None:
    store, publisher = MemoryStore(), RecordingPublisher()
    records = RecordStore(store, STATE)
    record = ImportRecord(bucket=BUCKET, object="incoming/b.csv", generation=9)
    records.create(record)
    finish(record, State.SUPERSEDED, reason="replaced", records=records, publisher=publisher)
    assert [m["status"] for m in publisher.messages] == ["SUPERSEDED"]
    assert records.reload(record).state == State.SUPERSEDED  # type: ignore[union-attr]
    _, done = started(MemoryStore())
    with pytest.raises(KeyError):
        finish(done, State.FINISHED, reason=None, records=records, publisher=publisher)
