"""Where import records live, and the only way they are written: compare-and-swap.

Why: Leanplum's ``track`` has no idempotency key and Cloud Storage events arrive at least once,
sometimes concurrently. Every step that must happen once (claiming the file, starting the job,
publishing the result) is a write of the record with ``if_generation_match`` set to the record
generation we read: of two concurrent writers one wins, the other gets HTTP 412 and re-reads.
Every save also checks the state move against :data:`functions.lifecycle.TRANSITIONS`, so an
illegal move is a bug that raises before anything is written.
"""

from __future__ import annotations

from functions.errors import StaleGenerationError
from functions.import_record import ImportRecord, Transition, now_iso
from functions.lifecycle import State, check_transition
from functions.naming import record_name
from functions.objects import ObjectStore, write_once

JSON = "application/json"


class RecordStore:
    """Load, create (only if absent) and save (only over what was read) import records.

    Records live in the state bucket; ``record.bucket`` is the upload's (landing) bucket.
    """

    def __init__(self, objects: ObjectStore, state_bucket: str) -> None:
        self.objects = objects
        self.state_bucket = state_bucket

    def load(self, bucket: str, object_name: str, generation: int) -> ImportRecord | None:
        """The record of one file version, or ``None`` when there is none yet.

        A record written before the state bucket existed (in the landing bucket, same name) is
        moved there on first read, create-only, so that imports running during the upgrade end
        as they would have.
        """
        name = record_name(object_name, generation)
        found = self.objects.read(self.state_bucket, name)
        if found is None and bucket != self.state_bucket:
            legacy = self.objects.read(bucket, name)
            if legacy is None:
                return None
            try:
                write_once(self.objects, self.state_bucket, name, legacy[0],
                           if_generation_match=0, content_type=JSON)  # fmt: skip
            except StaleGenerationError:
                pass  # another reader moved it first
            found = self.objects.read(self.state_bucket, name)
        if found is None:
            return None
        data, info = found
        return ImportRecord.from_json(data, info.generation)

    def reload(self, record: ImportRecord) -> ImportRecord | None:
        """A fresh copy of ``record`` as stored now."""
        return self.load(record.bucket, record.object, record.generation)

    def create(self, record: ImportRecord) -> bool:
        """Claim a file version: write its first record only if none exists.

        Returns ``False`` when another delivery of the same event claimed it first.
        """
        record.history = [Transition(record.state, record.timings.received_at)]
        try:
            self._write(record, if_generation_match=0)
        except StaleGenerationError:
            return False
        return True

    def save(self, record: ImportRecord, state: State | None = None) -> None:
        """Write ``record`` over the generation it was read at; move it to ``state`` if given.

        :raises IllegalTransition: the move from the stored state is not in the table.
        :raises StaleGenerationError: someone else changed the record since it was read; the
            caller must re-read and decide again.
        """
        check_transition(record.stored_state or State.RECEIVED, state or record.state)
        if state is not None and state != record.state:
            record.state = state
            record.history.append(Transition(state, now_iso()))
        record.timings.updated_at = now_iso()
        self._write(record, if_generation_match=record.record_generation)

    def _write(self, record: ImportRecord, *, if_generation_match: int) -> None:
        info = write_once(
            self.objects,
            self.state_bucket,
            record_name(record.object, record.generation),
            record.to_json(),
            if_generation_match=if_generation_match,
            content_type=JSON,
        )
        record.record_generation = info.generation
        record.stored_state = record.state
