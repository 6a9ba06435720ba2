"""The waiting list: files that found every job slot taken, oldest upload first.

Why: the start queue retries each waiting file with backoff, in no particular order. To start
files roughly in upload order, a free slot may only be taken by one of the oldest waiting files:
with ``f`` slots free, a file may take one only if fewer than ``f`` live entries are ahead of it.

Each waiting file has one object ``importer/waiting/<upload time>~<digest of its version>``;
listing the prefix returns names in order, so the upload order costs one list call. An entry
whose file no longer waits (ended, or every part started) is stale: it is deleted by whoever
finds it ahead of them, so a file killed while waiting cannot hold the others back.

Guarantee (documented in the README): while files wait, a slot that frees goes to one of the
oldest waiting files at their next attempt (the start queue's backoff, at most its
``max_backoff``); files uploaded within the same moment may start in either order, and a file
found at a free slot with nobody older waiting starts at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from functions.errors import StaleGenerationError
from functions.import_record import ImportRecord
from functions.lifecycle import State
from functions.logs import warning
from functions.objects import ObjectStore, write_once
from functions.settings import WAITING_PREFIX

if TYPE_CHECKING:
    from functions.services import StartServices

JSON = "application/json"
#: A file in these states is still waiting (JOB_STARTING: between two parts of a split file).
WAITING_STATES = frozenset({State.VALIDATED, State.QUEUED, State.JOB_STARTING})


def _sort_time(record: ImportRecord) -> str:
    """The upload time in one fixed format, so that names sort by time."""
    raw = record.timings.uploaded_at or record.timings.received_at
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        moment = datetime.fromisoformat(record.timings.received_at.replace("Z", "+00:00"))
    return moment.strftime("%Y%m%dT%H%M%S.%fZ")


def entry_name(record: ImportRecord) -> str:
    version = f"{record.bucket}/{record.object}#{record.generation}"
    digest = hashlib.sha256(version.encode()).hexdigest()[:24]
    return f"{WAITING_PREFIX}{_sort_time(record)}~{digest}"


class WaitingList:
    """The waiting files of one state bucket."""

    def __init__(
        self,
        objects: ObjectStore,
        bucket: str,
        load: Callable[[str, str, int], ImportRecord | None],
    ) -> None:
        self.objects = objects
        self.bucket = bucket
        self._load = load

    @classmethod
    def of(cls, services: StartServices) -> WaitingList:
        """The waiting list of a function's state bucket."""
        return cls(services.objects, services.config.state_bucket, services.records.load)

    def join(self, record: ImportRecord) -> None:
        """Put ``record`` on the list (again: a second join is a no-op)."""
        body = json.dumps(
            {"bucket": record.bucket, "object": record.object, "generation": str(record.generation)}
        ).encode()
        try:
            write_once(self.objects, self.bucket, entry_name(record), body,
                       if_generation_match=0, content_type=JSON)  # fmt: skip
        except StaleGenerationError:
            pass  # on the list already

    def leave(self, record: ImportRecord) -> None:
        self.objects.delete(self.bucket, entry_name(record))

    def slots_for(self, record: ImportRecord, free: int) -> int:
        """How many of ``free`` slots ``record`` may take: those left once every older waiting
        file has one (its own entry does not count). Stale entries met are deleted."""
        mine = entry_name(record)
        live_ahead = 0
        for entry in self.objects.list(self.bucket, WAITING_PREFIX):
            if live_ahead >= free or entry.name >= mine:
                break
            if self._still_waiting(entry.name):
                live_ahead += 1
        return max(0, free - live_ahead)

    def _still_waiting(self, name: str) -> bool:
        found = self.objects.read(self.bucket, name)
        if found is None:
            return False
        try:
            body = json.loads(found[0])
            waiting = self._load(str(body["bucket"]), str(body["object"]), int(body["generation"]))
        except (ValueError, KeyError, TypeError):
            waiting = None
        if waiting is not None and waiting.state in WAITING_STATES:
            return True
        warning("Took a file that no longer waits off the waiting list", step="queue",
                entry=name)  # fmt: skip
        self.objects.delete(self.bucket, name)
        return False
