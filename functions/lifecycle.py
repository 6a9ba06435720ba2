"""The lifecycle of one import: its states, the moves allowed between them, and its end.

Why one module: the guarantees (one Leanplum job per file version, one result per file,
nothing lost) are decisions about states. Keeping the states, the one table of allowed moves and
the one way an import ends here means a new feature adds a row to a table instead of another
string compared in another module.

States of the import record (what the importer has done)::

    RECEIVED -> VALIDATED -> [QUEUED <->] JOB_STARTING -> JOB_STARTED -> FINISHED | FAILED
        |                   |                                          | TIMED_OUT
        |                   \\-> DRY_RUN (routed to no app: validated and reported only)
        \\-> REJECTED | DUPLICATE | SUPERSEDED | FAILED        (no job)

QUEUED is a file waiting for a job slot (``MAX_RUNNING_JOBS``): the start queue's task asks
again with backoff. A split file may go back and forth between QUEUED and JOB_STARTING, one
part per free slot; it is JOB_STARTED once every part has its job.

Statuses of the result message (what a subscriber acts on), and the one state each comes from:

=============  =========================================================================
state          status of its result message
=============  =========================================================================
FINISHED       SUCCEEDED (every row accepted) or PARTIAL (some rows rejected by the
               validator or failed at Leanplum, at least one accepted)
FAILED         FAILED (a job failed, Leanplum accepted no row, a job may exist after a
               lost answer, or the file failed too many times)
TIMED_OUT      TIMED_OUT (a job still ran at the poll deadline or the queue's last try)
REJECTED       REJECTED (the validator refused the file)
DUPLICATE      DUPLICATE (identical bytes already imported under this name)
SUPERSEDED     SUPERSEDED (a newer upload of the same name replaced this version before its
               job started; the newer version has its own event and result)
DRY_RUN        DRY_RUN (the name is routed to no app: validated, rewritten and reported,
               with every count, and never sent)
=============  =========================================================================

So a reader never has to combine the two: a FINISHED record always has a SUCCEEDED or PARTIAL
result, and every other terminal state carries the status of the same name. Every claimed file
version ends with exactly one result (an exporter tracks each generation it wrote).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from functions.errors import ImporterError, StaleGenerationError
from functions.logs import info

if TYPE_CHECKING:
    from functions.import_record import ImportRecord


class State(StrEnum):
    """Where one file version's import is. Persisted as the string value."""

    RECEIVED = "RECEIVED"
    VALIDATED = "VALIDATED"
    QUEUED = "QUEUED"
    JOB_STARTING = "JOB_STARTING"
    JOB_STARTED = "JOB_STARTED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    REJECTED = "REJECTED"
    DUPLICATE = "DUPLICATE"
    SUPERSEDED = "SUPERSEDED"
    DRY_RUN = "DRY_RUN"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


class Status(StrEnum):
    """The result message's ``status`` (and its Pub/Sub attribute)."""

    SUCCEEDED = "SUCCEEDED"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"
    REJECTED = "REJECTED"
    TIMED_OUT = "TIMED_OUT"
    DUPLICATE = "DUPLICATE"
    SUPERSEDED = "SUPERSEDED"
    DRY_RUN = "DRY_RUN"


TERMINAL_STATES = frozenset(
    {
        State.FINISHED,
        State.FAILED,
        State.TIMED_OUT,
        State.REJECTED,
        State.DUPLICATE,
        State.SUPERSEDED,
        State.DRY_RUN,
    }
)

#: The statuses a result may carry in each terminal state.
STATUSES_OF_STATE: dict[State, frozenset[Status]] = {
    State.FINISHED: frozenset({Status.SUCCEEDED, Status.PARTIAL}),
    State.FAILED: frozenset({Status.FAILED}),
    State.TIMED_OUT: frozenset({Status.TIMED_OUT}),
    State.REJECTED: frozenset({Status.REJECTED}),
    State.DUPLICATE: frozenset({Status.DUPLICATE}),
    State.SUPERSEDED: frozenset({Status.SUPERSEDED}),
    State.DRY_RUN: frozenset({Status.DRY_RUN}),
}

# Before a job exists, a delivery that takes over an expired lease starts the file again from
# its download, so every pre-job state may reach every pre-job outcome.
_PRE_JOB_OUTCOMES = frozenset(
    {
        State.VALIDATED,
        State.REJECTED,
        State.DUPLICATE,
        State.SUPERSEDED,
        State.FAILED,
        State.DRY_RUN,
    }
)

#: The one table of allowed moves. Saving a record in its own state is always allowed (a lease,
#: a URI, the published mark); every other move not listed here is a bug.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.RECEIVED: _PRE_JOB_OUTCOMES,
    State.VALIDATED: _PRE_JOB_OUTCOMES | {State.JOB_STARTING, State.QUEUED},
    # Waiting for a slot: it starts, is replaced by a newer upload, waits too long, or fails.
    State.QUEUED: frozenset({State.JOB_STARTING, State.SUPERSEDED, State.TIMED_OUT, State.FAILED}),
    # Leanplum made no job (429, 5xx, unreachable): back to QUEUED for the start queue to try
    # again; a split file with parts left to start goes back to QUEUED too. A job may exist
    # after a lost answer: FAILED, never a second attempt.
    State.JOB_STARTING: frozenset({State.JOB_STARTED, State.QUEUED, State.FAILED}),
    State.JOB_STARTED: frozenset({State.FINISHED, State.FAILED, State.TIMED_OUT}),
    **{state: frozenset() for state in TERMINAL_STATES},
}


class IllegalTransition(ImporterError):
    """A move the table does not allow: a bug in the importer, never a user's fault."""


def check_transition(current: State, target: State) -> None:
    """Raise :class:`IllegalTransition` unless ``current -> target`` is in the table."""
    if current != target and target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing (terminal)"
        raise IllegalTransition(
            f"illegal import state move {current} -> {target}; from {current} only: {allowed}"
        )


def check_status(state: State, status: Status | None) -> None:
    """Raise :class:`IllegalTransition` when a terminal state would carry the wrong status."""
    allowed = STATUSES_OF_STATE.get(state)
    if allowed is None:
        raise IllegalTransition(f"{state} is not a terminal state")
    if (status is None) != (not allowed) or (status is not None and status not in allowed):
        raise IllegalTransition(f"state {state} cannot carry status {status}")


class Publisher(Protocol):
    """Where result messages go (Pub/Sub in the cloud, a list in unit tests)."""

    def publish(self, message: dict[str, Any]) -> str:
        """Publish one result message; returns its message id. Raises when it was not sent."""
        ...


class RecordKeeper(Protocol):
    """The part of the record store that :func:`conclude` needs."""

    def save(self, record: ImportRecord, state: State | None = None) -> None: ...

    def reload(self, record: ImportRecord) -> ImportRecord | None: ...


def conclude(
    record: ImportRecord,
    state: State,
    *,
    reason: str | None,
    build_result: Callable[[Status], dict[str, Any]] | None,
    status: Status | None,
    records: RecordKeeper,
    publisher: Publisher,
) -> None:
    """End an import: store its terminal state with its result, publish it, mark it published.

    The one way both functions end a file. The result is stored *before* it is published, so a
    crash after publishing makes the next delivery or poll publish it again (at least once,
    never lost; subscribers dedupe on ``result_id``); a crash before publishing leaves a stored,
    unpublished result that :func:`publish_pending` sends.

    :param build_result: makes the message for ``status``; ``None`` when ``state`` carries none.
    :raises StaleGenerationError: someone else changed the record first; nothing was published.
    """
    check_status(state, status)
    record.reason = reason
    record.result = build_result(status) if (status is not None and build_result) else None
    records.save(record, state)
    publish_pending(record, records=records, publisher=publisher)


def publish_pending(record: ImportRecord, *, records: RecordKeeper, publisher: Publisher) -> bool:
    """Publish a terminal record's stored result unless it is marked published already.

    Returns True when this call published. A mark-published write that loses a race to a
    concurrent publisher of the same result is not an error: the message went out either way.
    """
    if record.published or record.result is None:
        return False
    message_id = publisher.publish(record.result)
    record.published = True
    try:
        records.save(record)
    except StaleGenerationError:
        fresh = records.reload(record)
        if fresh is None or not fresh.published:
            raise
    info(
        "Published the result",
        step="publish",
        status=record.result["status"],
        message_id=message_id,
        reason=record.reason,
        bucket=record.bucket,
        object=record.object,
        generation=str(record.generation),
        job_ids=record.job_ids,
    )
    return True
