"""How a file's import ends when it may hold job slots, a waiting-list entry or copies in
Leanplum's bucket: those go first, then the end is stored and published.

Why first: a subscriber that reads the result may start the next file at once, and a test (or
a person) that sees the result must find no slot still taken and no copy left in Leanplum's
bucket. A crash between the two leaves nothing behind for long: the slots are stale once the
record has ended (:mod:`functions.job_slots`), and a retry ends the file again.
"""

from __future__ import annotations

from typing import Any

from functions.errors import ImporterError
from functions.import_record import ImportRecord
from functions.job_slots import JobSlots
from functions.lifecycle import State, Status
from functions.logs import info, warning
from functions.objects import split_gs_uri
from functions.results import LeanplumCounts, finish
from functions.services import StartServices
from functions.waiting_list import WaitingList


def release_resources(record: ImportRecord, services: StartServices) -> None:
    """Give back the file's slots, take it off the waiting list, delete its Leanplum copies.

    Best effort: a storage fault here must not keep the file from its result. A slot or an
    entry left behind is stale once the record has ended and is taken back by the next file
    that needs it; a copy left behind is reported (``leanplum_bucket.deleted`` false).
    """
    config = services.config
    slots = JobSlots.of(services)
    try:
        for part in record.parts:
            if part.slot and not part.ended:
                slots.give_back(part.slot)
                part.ended = True
        if record.reached(State.QUEUED):
            WaitingList.of(services).leave(record)
    except ImporterError as exc:
        warning("Could not give the job slots back: they are taken back as stale",
                step="slot", reason=str(exc), **record.fields)  # fmt: skip
    copies = record.leanplum_copies
    if copies and config.leanplum_bucket_cleanup and not record.leanplum_copies_deleted:
        try:
            for uri in copies:
                services.objects.delete(*split_gs_uri(uri))
        except ImporterError as exc:
            warning("Could not delete the copies in Leanplum's bucket", step="cleanup",
                    reason=str(exc), copies=copies, **record.fields)  # fmt: skip
            return
        record.leanplum_copies_deleted = True
        info("Deleted the copies in Leanplum's bucket", step="cleanup", copies=copies,
             **record.fields)  # fmt: skip


def end_file(
    record: ImportRecord,
    state: State,
    reason: str | None,
    services: StartServices,
    *,
    status: Status | None = None,
    leanplum: LeanplumCounts | None = None,
    jobs: list[dict[str, Any]] | None = None,
) -> None:
    """Release what the file holds, then store and publish its end (one result per version)."""
    release_resources(record, services)
    finish(record, state, reason=reason, records=services.records, publisher=services.publisher,
           status=status, leanplum=leanplum, jobs=jobs)  # fmt: skip
