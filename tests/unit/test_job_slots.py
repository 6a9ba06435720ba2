"""The cap on running Leanplum jobs: decisions and races on the in-memory store.

What must hold whatever happens: never more slot objects than MAX_RUNNING_JOBS, never more
jobs running at Leanplum than that, every file ends with one result and at most one job per
part, and no slot is left taken once every file has ended.
"""

from __future__ import annotations

import pytest

from functions import staging
from functions.errors import StaleGenerationError
from functions.job_slots import JobSlots, SlotOwner
from functions.leanplum import RateLimited
from functions.lifecycle import State
from functions.poller import PollOutcome
from functions.settings import SLOTS_PREFIX, WAITING_PREFIX
from tests.unit.fakes import STATE, Harness, events_csv
from tests.unit.memory_store import Crash


def names(i: int) -> str:
    return f"incoming/shard-{i:03d}.csv"


def slots(h: Harness) -> list[str]:
    return h.store.names(STATE, SLOTS_PREFIX)


def running_jobs(h: Harness) -> int:
    """Jobs Leanplum would report as running now."""
    return sum(1 for job in h.leanplum.jobs if h.leanplum.job_states.get(job, "") == "RUNNING")


def burst(h: Harness, count: int) -> list[int]:
    generations = []
    for i in range(count):
        generation = h.upload(names(i), events_csv(3 + i % 4))
        generations.append(generation)
        h.deliver(names(i), generation)
    return generations


def drive(h: Harness, generations: list[int], *, rounds: int = 200) -> None:
    """Play the two queues until every file has a result: each round, every queued file's start
    task and every started file's poll task is tried once, and one running job finishes."""
    for _ in range(rounds):
        assert len(slots(h)) <= h.max_running_jobs
        assert running_jobs(h) <= h.max_running_jobs
        running = [j for j in h.leanplum.jobs if h.leanplum.job_states.get(j) == "RUNNING"]
        if running:
            h.leanplum.job_states[running[0]] = "FINISHED"
        for i, generation in enumerate(generations):
            record = h.record(names(i), generation)
            if record.state in (State.QUEUED, State.JOB_STARTING):
                h.start(names(i), generation)
            elif record.state == State.JOB_STARTED:
                h.poll(names(i), generation)
            for job in h.leanplum.jobs:
                h.leanplum.job_states.setdefault(job, "RUNNING")
        if all(h.record(names(i), g).terminal for i, g in enumerate(generations)):
            return
    raise AssertionError("the files did not all end")


def test_a_burst_never_runs_more_jobs_than_the_cap_and_every_file_ends_once() -> None:
    h = Harness(max_running_jobs=3)
    h.leanplum.default_state = "RUNNING"
    generations = burst(h, 10)
    assert len(h.leanplum.jobs) == 3
    assert len(slots(h)) == 3
    queued = [g for i, g in enumerate(generations) if h.record(names(i), g).state == State.QUEUED]
    assert len(queued) == 7
    assert len(h.polls.start_tasks) == 7
    drive(h, generations)
    assert len(h.leanplum.jobs) == 10
    files = [j["file"] for j in h.leanplum.jobs.values()]
    assert len(files) == len(set(files))  # one job per file
    for i in range(len(generations)):
        [message] = h.messages_for(names(i))
        assert message["status"] == "SUCCEEDED"
        timings = message["timings"]
        assert (timings["queued_at"] is None) == (i < 3)
        assert timings["seconds_queued"] >= 0
    assert slots(h) == [] and h.store.names(STATE, WAITING_PREFIX) == []


def test_files_start_in_upload_order_when_slots_free() -> None:
    h = Harness(max_running_jobs=1)
    h.leanplum.default_state = "RUNNING"
    generations = burst(h, 4)
    # The youngest file's start task comes first: it may not jump the queue.
    h.leanplum.job_states["job-1"] = "FINISHED"
    assert h.poll(names(0), generations[0]).status == 200
    assert h.start(names(3), generations[3]).status == 503
    assert h.start(names(2), generations[2]).status == 503
    assert h.start(names(1), generations[1]).status == 200
    assert h.record(names(1), generations[1]).state == State.JOB_STARTED


def test_a_file_that_ended_while_waiting_holds_no_one_back() -> None:
    h = Harness(max_running_jobs=1)
    h.leanplum.default_state = "RUNNING"
    generations = burst(h, 3)
    h.upload(names(1), b"userId,event,time\nx,y,1\n")  # shard 1 replaced while it waited
    assert h.start(names(1), generations[1]).text == "superseded"
    h.leanplum.job_states["job-1"] = "FINISHED"
    h.poll(names(0), generations[0])
    assert h.start(names(2), generations[2]).status == 200
    assert [m["status"] for m in h.messages_for(names(1))] == ["SUPERSEDED"]


def test_a_stale_waiting_entry_is_taken_off_the_list() -> None:
    h = Harness(max_running_jobs=1)
    h.leanplum.default_state = "RUNNING"
    generations = burst(h, 3)
    # Shard 1's record ended without the list hearing of it (a crash before the delete).
    record = h.record(names(1), generations[1])
    h.store.crash_at_mutation = None
    h.records.save(record, State.FAILED)
    h.leanplum.job_states["job-1"] = "FINISHED"
    h.poll(names(0), generations[0])
    assert h.start(names(2), generations[2]).status == 200
    assert len(h.store.names(STATE, WAITING_PREFIX)) == 0


def test_a_slot_left_by_a_killed_owner_is_taken_back_by_the_next_file() -> None:
    h = Harness(max_running_jobs=1)
    first = h.upload(names(0), events_csv())
    # The instance dies right after the slot object lands, before the record names it.
    h.store.on("write", SLOTS_PREFIX + "*", lambda: setattr(h.store, "crash_at_mutation",
               h.store.mutations))  # fmt: skip
    h.store.crash_after_landing = True
    with pytest.raises(Crash):
        h.deliver(names(0), first)
    assert len(slots(h)) == 1
    # Its redelivery adopts the slot it took, rather than take a second one.
    h.now += h.lease_seconds + 1
    assert h.deliver(names(0), first) == "job_started"
    assert len(slots(h)) == 1
    assert h.poll(names(0), first).status == 200
    assert slots(h) == []


def test_a_slot_whose_owner_ended_without_giving_it_back_is_reclaimed() -> None:
    h = Harness(max_running_jobs=1)
    owner = b'{"bucket":"landing","object":"incoming/gone.csv","generation":"7","part":0}'
    h.store.put(STATE, SLOTS_PREFIX + "0", owner)
    generation = h.upload(names(0), events_csv())
    assert h.deliver(names(0), generation) == "job_started"
    assert len(slots(h)) == 1


def test_two_instances_racing_for_the_last_slot_get_it_once() -> None:
    h = Harness()
    taker = JobSlots(h.store, STATE, 1, load_owner=lambda o: None)
    held = taker.held()
    # Another instance creates slot 0 between our list and our create-only write.
    h.store.on("write", SLOTS_PREFIX + "0",
               lambda: h.store.put(STATE, SLOTS_PREFIX + "0", b"{}"))  # fmt: skip
    assert taker.take(SlotOwner("landing", "a", 1, 0), held) is None
    assert len(slots(h)) == 1


def test_a_slot_taken_again_is_never_deleted_by_its_former_owner() -> None:
    h = Harness()
    taker = JobSlots(h.store, STATE, 1, load_owner=lambda o: None)
    ref = taker.take(SlotOwner("landing", "a", 1, 0), taker.held())
    assert ref is not None
    h.store.delete(STATE, SLOTS_PREFIX + "0")  # reclaimed as stale...
    h.store.put(STATE, SLOTS_PREFIX + "0", b"{}")  # ...and handed to another part
    taker.give_back(ref)
    assert len(slots(h)) == 1


def test_a_split_file_larger_than_the_cap_starts_part_by_part(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(staging, "MAX_PART_BYTES", 300)
    h = Harness(max_running_jobs=1)
    h.leanplum.default_state = "RUNNING"
    generation = h.upload(names(0), events_csv(40, users=10))
    assert h.deliver(names(0), generation) == "queued"
    record = h.record(names(0), generation)
    parts = len(record.parts)
    assert parts > 2 and len(record.job_ids) == 1
    for _ in range(parts * 3):
        assert len(slots(h)) <= 1 and running_jobs(h) <= 1
        for job in h.leanplum.jobs:
            h.leanplum.job_states[job] = "FINISHED"
        outcome = h.start(names(0), generation)
        if outcome.status == 200:
            break
    record = h.record(names(0), generation)
    assert record.state == State.JOB_STARTED and len(record.job_ids) == parts
    h.leanplum.default_state = "FINISHED"
    h.leanplum.job_states.clear()
    assert h.poll(names(0), generation).text == "SUCCEEDED"
    assert slots(h) == []


def test_rate_limited_at_start_gives_the_slot_back_and_waits() -> None:
    h = Harness(max_running_jobs=2)
    generation = h.upload(names(0), events_csv())
    h.leanplum.start_errors = [RateLimited("rate limited", 429)]
    assert h.deliver(names(0), generation) == "queued"
    assert slots(h) == []
    assert h.start(names(0), generation).status == 200
    assert len(h.leanplum.jobs) == 1


def test_a_file_that_waits_too_long_ends_timed_out_and_frees_its_place() -> None:
    h = Harness(max_running_jobs=1, max_queued_seconds=1)
    h.leanplum.default_state = "RUNNING"
    generations = burst(h, 2)
    record = h.record(names(1), generations[1])
    record.timings.queued_at = "2020-01-01T00:00:00.000Z"
    h.records.save(record)
    outcome = h.start(names(1), generations[1])
    assert outcome == PollOutcome(200, "timed_out")
    [message] = h.messages_for(names(1))
    assert message["status"] == "TIMED_OUT" and "job slot" in message["reason"]
    assert message["timings"]["seconds_queued"] is None
    assert h.store.names(STATE, WAITING_PREFIX) == []


def test_a_start_task_delivered_twice_at_once_starts_one_job() -> None:
    h = Harness(max_running_jobs=1)
    h.leanplum.default_state = "RUNNING"
    generations = burst(h, 2)
    h.leanplum.job_states["job-1"] = "FINISHED"
    h.poll(names(0), generations[0])
    # The second delivery arrives while the first holds the file's lease.
    h.store.on("write", SLOTS_PREFIX + "*",
               lambda: setattr(h, "inner", h.start(names(1), generations[1])))  # fmt: skip
    assert h.start(names(1), generations[1]).status == 200
    assert h.inner.status == 503  # type: ignore[attr-defined]
    assert len(h.leanplum.jobs) == 2


def test_a_crash_at_any_write_of_a_queued_start_never_starts_a_part_twice() -> None:
    for step in range(1, 12):
        for landed in (False, True):
            h = Harness(max_running_jobs=1)
            generations = burst(h, 2)
            h.leanplum.job_states["job-1"] = "FINISHED"
            h.poll(names(0), generations[0])
            h.store.crash_at_mutation = h.store.mutations + step
            h.store.crash_after_landing = landed
            for _ in range(6):
                try:
                    outcome = h.start(names(1), generations[1])
                except (Crash, StaleGenerationError):
                    h.now += 601
                    continue
                if outcome.status == 200:
                    break
                h.now += 601
            h.store.crash_at_mutation = None
            for _ in range(3):
                if h.record(names(1), generations[1]).terminal:
                    break
                h.poll(names(1), generations[1])
            assert len(h.messages_for(names(1))) == 1, (step, landed)
            assert len(h.leanplum.jobs) <= 2, (step, landed)
            assert slots(h) == [], (step, landed)


def test_a_part_whose_job_ended_frees_its_slot_while_the_others_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(staging, "MAX_PART_BYTES", 300)
    h = Harness(max_running_jobs=10)
    h.leanplum.default_state = "RUNNING"
    generation = h.upload(names(0), events_csv(40, users=10))
    assert h.deliver(names(0), generation) == "job_started"
    parts = len(h.record(names(0), generation).parts)
    assert len(slots(h)) == parts
    h.leanplum.job_states["job-1"] = "FINISHED"
    assert h.poll(names(0), generation).status == 503
    assert len(slots(h)) == parts - 1
    assert h.record(names(0), generation).parts[0].ended


def test_the_job_start_asks_leanplum_once_and_leaves_the_waiting_to_the_queue() -> None:
    h = Harness()
    seen: list[bool] = []
    original = h.leanplum.start_import

    def record_retry(bucket: str, file: str, *, retry: bool = True) -> str:
        seen.append(retry)
        return original(bucket, file)

    h.leanplum.start_import = record_retry  # type: ignore[method-assign]
    h.run_to_end(names(0), h.upload(names(0), events_csv()))
    assert seen == [False]
