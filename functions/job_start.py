"""Starting the Leanplum jobs of a validated file: a job slot first, then at most one job per
part, ever.

Leanplum's ``multi`` with ``createJob`` has no idempotency key and no way to look a job up by
file, so JOB_STARTING is recorded (with the slots taken) *before* the request and a lost answer
is never resent: the file ends FAILED with a reason that says a job may exist.

Each part needs a job slot (:mod:`functions.job_slots`). A file that finds none free, or that
is not among the oldest waiting files (:mod:`functions.waiting_list`), goes to QUEUED and the
start queue asks again with backoff; Leanplum's 429 and 5xx answers (and connections that never
opened) made no job, so they too give the slot back and queue the file at once: no function
sleeps between tries while it holds a slot or sits in JOB_STARTING (where a crash could not
tell whether a job exists), the start queue's backoff does the waiting. A split file starts one
part per free slot and is JOB_STARTED once every part has its job.
"""

from __future__ import annotations

from datetime import UTC, datetime

from functions.file_end import end_file
from functions.import_record import ImportRecord, now_iso
from functions.job_slots import HeldSlot, JobSlots, SlotOwner
from functions.leanplum import AnswerLost, ConnectionFailed, LeanplumError, RateLimited, ServerError
from functions.lifecycle import State
from functions.logs import info
from functions.objects import split_gs_uri
from functions.services import StartServices
from functions.waiting_list import WaitingList

ANSWER_LOST_ADVICE = (
    "a Leanplum job may exist for this file, so it was not started again. "
    "Check Leanplum before uploading the file again."
)
INTERRUPTED_JOB_START = (
    "the import was interrupted while starting the Leanplum job; a job may exist. "
    "Check Leanplum before uploading the file again."
)


def _live_output_replaced(record: ImportRecord, services: StartServices) -> bool:
    """Whether a newer upload replaced our rewrite since it was made: the person or exporter
    meant the newer version, which has its own event."""
    live = services.objects.stat(record.bucket, record.object)
    return live is None or live.generation != record.output_generation


def _seconds_since(moment: str | None) -> float:
    if not moment:
        return 0.0
    return (datetime.now(UTC) - datetime.fromisoformat(moment)).total_seconds()


def start_jobs(record: ImportRecord, services: StartServices) -> str:
    """Take slots and start the parts that got one; queue the file for the rest.

    Returns ``job_started``, ``queued`` or the terminal outcome (``superseded``, ``failed``,
    ``timed_out``).
    """
    if _live_output_replaced(record, services):
        info("Stopped: the object was replaced before the job started", step="start_job",
             **record.fields)  # fmt: skip
        end_file(record, State.SUPERSEDED, "the file was replaced before the job started",
                 services)  # fmt: skip
        return "superseded"
    waited = _seconds_since(record.timings.queued_at)
    if record.timings.queued_at and waited > services.config.max_queued_seconds:
        return _waited_too_long(record, services, waited)
    if all(part.job_id for part in record.parts):
        services.records.save(record, State.JOB_STARTING)  # every part has its job already
        return mark_started(record, services)
    slots = JobSlots.of(services)
    held = slots.held()
    _give_back_ended_parts(record, services, slots)
    granted = _take_slots(record, services, slots, held)
    if not granted:
        return queue(record, services)
    for index, ref in granted.items():
        record.parts[index].slot = ref
    services.records.save(record, State.JOB_STARTING)
    return _start_granted(record, services, sorted(granted), slots)


def _take_slots(
    record: ImportRecord, services: StartServices, slots: JobSlots, held: list[HeldSlot]
) -> dict[int, str]:
    """Part index → slot ref for the parts that may start now (slots they hold come first)."""
    pending = [i for i, part in enumerate(record.parts) if not part.job_id]
    owners = {i: SlotOwner.of(record, i) for i in pending}
    granted = {s.owner.part: s.ref for s in held if s.owner in owners.values() and s.owner}
    free = slots.free_count(held)
    if free == 0 and len(granted) < len(pending):
        slots.reclaim_stale(held)
        free = slots.free_count(held)
    budget = WaitingList.of(services).slots_for(record, free) if free else 0
    for index in pending:
        if budget <= 0:
            break
        if index in granted:
            continue
        ref = slots.take(owners[index], held)
        if ref is None:
            break
        granted[index] = ref
        budget -= 1
    return granted


def _give_back_ended_parts(record: ImportRecord, services: StartServices, slots: JobSlots) -> None:
    """A split file waiting for more slots frees those of its parts whose job has ended."""
    if all(part.job_id for part in record.parts) or not any(
        part.job_id and part.slot and not part.ended for part in record.parts
    ):
        return
    client = services.leanplum(record.app)
    try:
        changed = slots.give_back_ended(record, lambda job: client.job_status(job).running)
    except LeanplumError:
        return  # asked again at the next attempt
    finally:
        client.close()
    if changed:
        services.records.save(record)


def queue(record: ImportRecord, services: StartServices) -> str:
    """Wait for a slot: on the waiting list, in QUEUED, with a start task that asks again."""
    WaitingList.of(services).join(record)
    if record.timings.queued_at is None:
        record.timings.queued_at = now_iso()
    record.lease_until = 0.0  # the start queue's next attempt may take the file at once
    if services.starts is not None:
        services.starts.ensure_start(record)
    services.records.save(record, State.QUEUED)
    info("Queued: every job slot is taken", step="queue", **record.fields)
    return "queued"


def _start_granted(
    record: ImportRecord, services: StartServices, indexes: list[int], slots: JobSlots
) -> str:
    client = services.leanplum(record.app)
    try:
        for index in indexes:
            part = record.parts[index]
            bucket, file = (
                split_gs_uri(part.leanplum_copy)
                if part.leanplum_copy
                else (part.bucket or record.bucket, part.file)
            )
            try:
                # One request: on 429/5xx the slot goes back and the start queue waits.
                part.job_id = client.start_import(bucket, file, retry=False)
            except (RateLimited, ServerError, ConnectionFailed):
                # Leanplum answered (or was never reached) and made no job: give the slots of
                # the parts not started back and wait in the start queue.
                _give_back_unstarted(record, indexes[indexes.index(index) :], slots)
                return queue(record, services)
            except LeanplumError as exc:
                if not record.job_ids:
                    reason = exc.message
                    if isinstance(exc, AnswerLost):
                        reason = f"{exc.message}; {ANSWER_LOST_ADVICE}"
                    end_file(record, State.FAILED, reason, services)
                    return "failed"
                # Earlier parts are in Leanplum: poll and report them; the file ends FAILED.
                # The parts after this one never start: their slots go back (this one's job
                # may exist after a lost answer, so its slot is kept until the file ends).
                record.start_error = _part_failed(index + 1, len(record.parts), exc)
                _give_back_unstarted(record, indexes[indexes.index(index) + 1 :], slots)
                break
            record.job_ids.append(part.job_id)
            if record.timings.job_started_at is None:
                record.timings.job_started_at = now_iso()
            services.records.save(record)  # a crash before the next part still names this job
            info("Started the Leanplum job", step="start_job", job_id=part.job_id,
                 part=part.file, app=record.app, **record.fields)  # fmt: skip
    finally:
        client.close()
    if record.start_error is None and not all(part.job_id for part in record.parts):
        return queue(record, services)
    return mark_started(record, services)


def _give_back_unstarted(record: ImportRecord, indexes: list[int], slots: JobSlots) -> None:
    """The slots of parts that got one but will not start in this attempt go back."""
    for index in indexes:
        slots.give_back(record.parts[index].slot or "")
        record.parts[index].slot = None


def mark_started(record: ImportRecord, services: StartServices) -> str:
    """Every part that will ever start has: off the waiting list, JOB_STARTED, poll scheduled."""
    WaitingList.of(services).leave(record)
    services.records.save(record, State.JOB_STARTED)
    schedule_poll(record, services)
    return "job_started"


def schedule_poll(record: ImportRecord, services: StartServices) -> None:
    """Make sure the file's poll task exists (again, after a redelivery) and is on record."""
    name = services.polls.ensure_poll(record)
    if record.task_name != name:
        record.task_name = name
        services.records.save(record)
    info("Scheduled the poller", step="enqueue_poll", task=name, job_ids=record.job_ids,
         **record.fields)  # fmt: skip


def recover_interrupted_start(record: ImportRecord, services: StartServices) -> str:
    """A start attempt died between recording JOB_STARTING and recording the job id: Leanplum
    may or may not have a job, and starting another could import every row twice."""
    if not record.job_ids:
        end_file(record, State.FAILED, INTERRUPTED_JOB_START, services)
        return "failed"
    pending = sum(1 for part in record.parts if not part.job_id)
    record.start_error = f"{pending} part(s) not started: {INTERRUPTED_JOB_START}"
    return mark_started(record, services)


def _waited_too_long(record: ImportRecord, services: StartServices, waited: float) -> str:
    reason = f"waited {waited:.0f} s for a free job slot (MAX_QUEUED_SECONDS)"
    if not record.job_ids:
        end_file(record, State.TIMED_OUT, reason, services)
        return "timed_out"
    pending = sum(1 for part in record.parts if not part.job_id)
    record.start_error = f"{pending} part(s) not started: {reason}"
    services.records.save(record, State.JOB_STARTING)
    return mark_started(record, services)


def _part_failed(number: int, total: int, exc: LeanplumError) -> str:
    advice = f"; {ANSWER_LOST_ADVICE}" if isinstance(exc, AnswerLost) else ""
    return f"part {number} of {total} could not start: {exc.message}{advice}"
