"""Records are written only by compare-and-swap, and a write recognises its own lost answer."""

from __future__ import annotations

import pytest

from functions.errors import StaleGenerationError
from functions.import_record import ImportRecord
from functions.lifecycle import IllegalTransition, State
from functions.naming import record_name
from functions.objects import (
    WRITE_TOKEN_KEY,
    ObjectNotFound,
    PreconditionFailed,
    StorageUnavailable,
    write_once,
)
from functions.records import RecordStore
from tests.unit.fakes import BUCKET, STATE
from tests.unit.memory_store import MemoryStore

NAME = record_name("incoming/a.csv", 7)


def new_record() -> ImportRecord:
    return ImportRecord(bucket=BUCKET, object="incoming/a.csv", generation=7)


def test_create_is_create_only() -> None:
    records = RecordStore(MemoryStore(), STATE)
    assert records.create(new_record())
    assert not records.create(new_record())


def test_a_save_over_a_stale_read_is_refused() -> None:
    records = RecordStore(MemoryStore(), STATE)
    mine = new_record()
    records.create(mine)
    theirs = records.reload(mine)
    assert theirs is not None
    records.save(theirs, State.VALIDATED)
    with pytest.raises(StaleGenerationError):
        records.save(mine, State.VALIDATED)


def test_a_lost_answer_on_create_is_our_claim_not_a_rival() -> None:
    """The storage client retried a create whose answer was lost: the retry meets our own
    record and gets 412. Without the write token this read as "claimed by another delivery"."""
    store = MemoryStore()
    records = RecordStore(store, STATE)
    store.fail("write", NAME, "lost_answer")
    record = new_record()
    assert records.create(record)
    assert record.record_generation == store.stat(STATE, NAME).generation  # type: ignore[union-attr]
    records.save(record, State.VALIDATED)  # our generation is right: the next CAS works


def test_a_lost_answer_on_save_is_a_success() -> None:
    store = MemoryStore()
    records = RecordStore(store, STATE)
    record = new_record()
    records.create(record)
    store.fail("write", NAME, "lost_answer")
    records.save(record, State.VALIDATED)
    stored = records.reload(record)
    assert stored is not None and stored.state == State.VALIDATED
    assert stored.record_generation == record.record_generation


def test_a_real_412_is_still_a_conflict() -> None:
    store = MemoryStore()
    records = RecordStore(store, STATE)
    record = new_record()
    records.create(record)
    store.fail("write", NAME, "412")
    with pytest.raises(StaleGenerationError):
        records.save(record)


def test_an_illegal_move_raises_before_anything_is_written() -> None:
    store = MemoryStore()
    records = RecordStore(store, STATE)
    record = new_record()
    records.create(record)
    before = store.stat(STATE, NAME)
    with pytest.raises(IllegalTransition, match="RECEIVED -> JOB_STARTED"):
        records.save(record, State.JOB_STARTED)
    record.state = State.FINISHED  # a bug that edits the state directly is caught too
    with pytest.raises(IllegalTransition, match="RECEIVED -> FINISHED"):
        records.save(record)
    assert store.stat(STATE, NAME) == before


def test_an_outage_surfaces_as_storage_unavailable() -> None:
    store = MemoryStore()
    store.fail("read", NAME, "503")
    with pytest.raises(StorageUnavailable):
        RecordStore(store, STATE).load(BUCKET, "incoming/a.csv", 7)


def test_write_once_puts_a_fresh_token_on_every_write() -> None:
    store = MemoryStore()
    first = write_once(store, BUCKET, "x", b"1", if_generation_match=0, content_type="t")
    second = write_once(store, BUCKET, "x", b"2", if_generation_match=first.generation,
                        content_type="t", metadata={"k": "v"})  # fmt: skip
    assert first.metadata[WRITE_TOKEN_KEY] != second.metadata[WRITE_TOKEN_KEY]
    assert second.metadata["k"] == "v"


def test_the_memory_store_keeps_cloud_storage_generation_rules() -> None:
    store = MemoryStore()
    first = store.put(BUCKET, "o", b"a")
    second = store.put(BUCKET, "o", b"b")
    assert second > first
    assert store.stat(BUCKET, "o", first) is None  # a replaced generation is gone
    with pytest.raises(ObjectNotFound):
        store.download(BUCKET, "o", first, open("/dev/null", "wb"))  # noqa: SIM115
    with pytest.raises(PreconditionFailed):
        store.write(BUCKET, "o", b"c", if_generation_match=0, content_type="t")
    with pytest.raises(PreconditionFailed):
        store.write(BUCKET, "new", b"c", if_generation_match=5, content_type="t")
    store.copy(BUCKET, "o", second, BUCKET, "copy")
    with pytest.raises(PreconditionFailed):
        store.copy(BUCKET, "o", second, BUCKET, "copy")
    assert [i.name for i in store.list(BUCKET, "")] == ["copy", "o"]
    assert store.delete(BUCKET, "copy") and not store.delete(BUCKET, "copy")
