"""Job slots: at most ``MAX_RUNNING_JOBS`` Leanplum jobs at once, across files and instances.

Why: an exporter writes hundreds of shards within a minute, and Leanplum documents no limit on
concurrent jobs while it queues requests for the users a running job touches. A file (each part
of a split file) needs a slot before its ``multi``.

How the count survives crashes and redeliveries:

- A slot is the object ``importer/slots/<n>`` (``0 <= n < MAX_RUNNING_JOBS``) in the state
  bucket, created with ``if_generation_match=0``: Cloud Storage's create-only write is the lock,
  so no slot is handed out twice. Its body names its owner (file version and part); the owner's
  record names the slot as ``<n>#<generation>``.
- A slot is given back when its part's job has ended (the poller) or the file ended without one,
  with a delete conditioned on the slot's generation, so a slot taken again since is never
  deleted by mistake.
- A slot whose owner no longer needs it (record gone or ended, the part's job ended, the part
  holds another slot) is *stale*: whoever finds every slot taken checks them and deletes the
  stale ones. So a killed instance leaks nothing for longer than the next file's attempt.
- An owner killed between creating a slot and recording it finds it again on its retry
  (:meth:`JobSlots.take` adopts a slot that names the same part), so it never holds two.

A slot counted as held may still be stale for a moment (its owner just ended), which can delay a
file, never start one past the cap.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from functions.errors import StaleGenerationError
from functions.import_record import ImportRecord, now_iso
from functions.logs import info, warning
from functions.objects import ObjectInfo, ObjectStore, PreconditionFailed, write_once
from functions.settings import SLOTS_PREFIX

if TYPE_CHECKING:
    from functions.services import StartServices

JSON = "application/json"


@dataclass(frozen=True)
class SlotOwner:
    """The part of a file version a slot was taken for."""

    bucket: str
    object: str
    generation: int
    part: int

    @classmethod
    def of(cls, record: ImportRecord, part: int) -> SlotOwner:
        return cls(record.bucket, record.object, record.generation, part)

    def to_json(self) -> bytes:
        body = {
            "bucket": self.bucket,
            "object": self.object,
            "generation": str(self.generation),
            "part": self.part,
            "taken_at": now_iso(),
        }
        return json.dumps(body, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> SlotOwner | None:
        try:
            body = json.loads(data)
            return cls(str(body["bucket"]), str(body["object"]), int(body["generation"]),
                       int(body["part"]))  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class HeldSlot:
    """One slot object as found, with its owner (``None``: unreadable, so stale)."""

    number: int
    generation: int
    owner: SlotOwner | None

    @property
    def ref(self) -> str:
        return slot_ref(self.number, self.generation)


def slot_ref(number: int, generation: int) -> str:
    """How a record names the slot its part holds."""
    return f"{number}#{generation}"


def parse_ref(ref: str) -> tuple[int, int]:
    number, _, generation = ref.partition("#")
    return int(number), int(generation)


def slot_name(number: int) -> str:
    return f"{SLOTS_PREFIX}{number}"


class JobSlots:
    """The slots in one state bucket, for a cap of ``capacity`` jobs."""

    def __init__(
        self,
        objects: ObjectStore,
        bucket: str,
        capacity: int,
        load_owner: Callable[[SlotOwner], ImportRecord | None],
    ) -> None:
        self.objects = objects
        self.bucket = bucket
        self.capacity = capacity
        self._load_owner = load_owner

    @classmethod
    def of(cls, services: StartServices) -> JobSlots:
        """The slots of a function's state bucket and cap; owners are read from its records."""
        config, records = services.config, services.records
        return cls(
            services.objects,
            config.state_bucket,
            config.max_running_jobs,
            load_owner=lambda o: records.load(o.bucket, o.object, o.generation),
        )

    def give_back_ended(self, record: ImportRecord, running: Callable[[str], bool]) -> bool:
        """Give back the slots of ``record``'s parts whose job no longer runs (``running``
        answers per job id), marking them ended; returns whether any was given back."""
        changed = False
        for part in record.parts:
            if part.job_id and part.slot and not part.ended and not running(part.job_id):
                self.give_back(part.slot)
                part.ended = True
                changed = True
        return changed

    def held(self) -> list[HeldSlot]:
        """Every slot object there is now (slots numbered past the cap included: a cap lowered
        while jobs ran counts them until they are given back)."""
        found = []
        for item in self.objects.list(self.bucket, SLOTS_PREFIX):
            number = _number(item)
            if number is None:
                continue
            read = self.objects.read(self.bucket, item.name)
            if read is None:
                continue  # given back since it was listed
            data, live = read
            found.append(HeldSlot(number, live.generation, SlotOwner.from_json(data)))
        return found

    def free_count(self, held: list[HeldSlot]) -> int:
        return max(0, self.capacity - len(held))

    def take(self, owner: SlotOwner, held: list[HeldSlot]) -> str | None:
        """A slot for ``owner``: one it holds already, or a free one; ``None`` if all are taken.

        ``held`` is :meth:`held`'s answer, read once by the caller for several parts.
        """
        for slot in held:
            if slot.owner == owner:
                info("Found the slot this part took before a crash", step="slot", slot=slot.ref)
                return slot.ref
        taken = {slot.number for slot in held}
        if len(taken) >= self.capacity:
            return None
        for number in range(self.capacity):
            if number in taken:
                continue
            try:
                created = write_once(self.objects, self.bucket, slot_name(number),
                                     owner.to_json(), if_generation_match=0,
                                     content_type=JSON)  # fmt: skip
            except StaleGenerationError:
                continue  # another instance took it between our list and our write
            ref = slot_ref(number, created.generation)
            held.append(HeldSlot(number, created.generation, owner))
            return ref
        return None

    def give_back(self, ref: str) -> None:
        """Delete the slot ``ref`` names, only if it is still that slot."""
        number, generation = parse_ref(ref)
        try:
            self.objects.delete(self.bucket, slot_name(number), if_generation_match=generation)
        except PreconditionFailed:
            pass  # taken back as stale and handed to another part since: not ours to delete
        info("Gave a job slot back", step="slot", slot=ref)

    def reclaim_stale(self, held: list[HeldSlot]) -> int:
        """Delete every slot whose owner no longer needs it; returns how many were freed."""
        freed = 0
        for slot in list(held):
            why = self._stale_reason(slot)
            if why is None:
                continue
            warning("Took back a job slot its owner no longer needs", step="slot",
                    slot=slot.ref, reason=why)  # fmt: skip
            self.give_back(slot.ref)
            held.remove(slot)
            freed += 1
        return freed

    def _stale_reason(self, slot: HeldSlot) -> str | None:
        owner = slot.owner
        if owner is None:
            return "the slot names no owner"
        record = self._load_owner(owner)
        if record is None:
            return "the owner's import record is gone"
        if record.terminal:
            return f"the owner ended ({record.state})"
        if owner.part >= len(record.parts):
            return None  # parts not recorded yet: the owner is still preparing them
        part = record.parts[owner.part]
        if part.ended:
            return "the part's job ended"
        if part.slot is not None and part.slot != slot.ref:
            return "the part holds another slot"
        return None


def _number(item: ObjectInfo) -> int | None:
    tail = item.name.removeprefix(SLOTS_PREFIX)
    return int(tail) if tail.isdigit() else None
