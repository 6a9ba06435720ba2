"""Reading result messages locally: a pull helper for the demo and tests, and a journal for the CLI.

Why a journal: a person trying the local cloud looks at the results many times, from more than
one terminal (``results --follow`` in one, ``upload --wait`` in another). A Pub/Sub subscription
cannot serve that: an acked message is gone, an unacked one is leased to one reader at a time
(the other sees nothing until its ack deadline passes), and seeking back needs snapshots or
retention that our built-in emulator (used where Java is missing) does not have. So every CLI
command first drains the local cloud's results subscription (``import-results-watch``, created
when the cloud starts, so it holds every message since then) into ``results.jsonl`` next to
``endpoints.json``, acking a message only once its line is on disk, then reads the file.
Reading never consumes: any number of readers, any number of times. A message redelivered after
a crash between the write and the ack is twice in the file, same ``message_id``, shown once.
``serve`` deletes the journal when a new local cloud starts (the emulators keep nothing).

Each message is ``{"message_id", "publish_time", "attributes", "body"}`` in the journal, and
``{"attributes", "body"}`` from :func:`pull_results`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from google.api_core import exceptions as gexc

Message = dict[str, Any]
JOURNAL_NAME = "results.jsonl"


def pull_results(
    subscription: str,
    *,
    until: Callable[[list[Message]], bool],
    deadline_s: float,
) -> list[Message]:
    """Pull and acknowledge result messages until ``until(messages)`` holds or the deadline.

    Each item is ``{"attributes": {...}, "body": {...}}``. Raises ``TimeoutError`` when the
    deadline passes first, naming how many messages had arrived.
    """
    from google.cloud.pubsub import SubscriberClient

    subscriber = SubscriberClient()
    received: list[Message] = []
    end = time.monotonic() + deadline_s
    while not until(received):
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(
                f"no matching result within {deadline_s:.0f} s ({len(received)} messages seen)"
            )
        try:
            response = subscriber.pull(
                subscription=subscription, max_messages=50, timeout=min(remaining, 5.0)
            )
        except (gexc.DeadlineExceeded, gexc.ServiceUnavailable):
            continue
        if response.received_messages:
            subscriber.acknowledge(
                subscription=subscription,
                ack_ids=[m.ack_id for m in response.received_messages],
            )
        for item in response.received_messages:
            received.append(
                {
                    "attributes": dict(item.message.attributes),
                    "body": json.loads(item.message.data),
                }
            )
    return received


def for_object(name: str) -> Callable[[list[Message]], bool]:
    """A stop condition: a result for object ``name`` has arrived."""
    return lambda messages: any(m["attributes"].get("object") == name for m in messages)


def for_version(name: str, generation: int) -> Callable[[list[Message]], bool]:
    """A stop condition: the result of one uploaded version (object and generation)."""
    return lambda messages: find_version(messages, name, generation) is not None


def find_version(messages: list[Message], name: str, generation: int) -> Message | None:
    for message in messages:
        file = message["body"].get("file", {})
        if file.get("object") == name and str(file.get("generation")) == str(generation):
            return message
    return None


class Journal:
    """The local cloud's result messages, kept in a file that reading never consumes."""

    def __init__(self, path: Path, subscription: str) -> None:
        self.path = path
        self.subscription = subscription
        self._subscriber: Any = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One drain at a time across processes: a reader that takes the lock after another
        drain finished finds that drain's messages already in the file."""
        with (self.path.parent / (self.path.name + ".lock")).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def sync(self) -> int:
        """Move every waiting message from the subscription into the file; how many moved."""
        if self._subscriber is None:
            from google.cloud.pubsub import SubscriberClient

            self._subscriber = SubscriberClient()
        moved = 0
        with self._locked():
            while True:
                with warnings.catch_warnings():
                    # Both local emulators honour return_immediately (deprecated for real
                    # Pub/Sub, where an empty answer does not prove the backlog is empty).
                    warnings.simplefilter("ignore", DeprecationWarning)
                    response = self._subscriber.pull(
                        subscription=self.subscription,
                        max_messages=100,
                        return_immediately=True,
                        timeout=30,
                    )
                items = list(response.received_messages)
                if not items:
                    return moved
                with self.path.open("a", encoding="utf-8") as journal:
                    for item in items:
                        journal.write(json.dumps(_as_entry(item), sort_keys=True) + "\n")
                    journal.flush()
                    os.fsync(journal.fileno())
                self._subscriber.acknowledge(
                    subscription=self.subscription, ack_ids=[m.ack_id for m in items]
                )
                moved += len(items)

    def messages(self) -> list[Message]:
        """Every message so far, in arrival order, each ``message_id`` once."""
        if not self.path.exists():
            return []
        seen: set[str] = set()
        found: list[Message] = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            entry: Message = json.loads(line)
            if entry["message_id"] not in seen:
                seen.add(entry["message_id"])
                found.append(entry)
        return found

    def read(self) -> list[Message]:
        self.sync()
        return self.messages()

    def wait(
        self, until: Callable[[list[Message]], bool], deadline_s: float | None
    ) -> list[Message]:
        """Sync every half second until ``until(messages)`` holds; ``TimeoutError`` after
        ``deadline_s`` (``None``: wait for ever)."""
        end = None if deadline_s is None else time.monotonic() + deadline_s
        while True:
            messages = self.read()
            if until(messages):
                return messages
            if end is not None and time.monotonic() > end:
                raise TimeoutError(f"no such result within {deadline_s:.0f} s")
            time.sleep(0.5)


def _as_entry(item: Any) -> Message:
    message = item.message
    try:
        body: Any = json.loads(message.data)
    except ValueError:
        body = {"undecodable": message.data.decode("utf-8", errors="replace")}
    return {
        "message_id": message.message_id,
        "publish_time": message.publish_time.isoformat(),
        "attributes": dict(message.attributes),
        "body": body,
    }


def one_per_file(messages: list[Message]) -> list[Message]:
    """The first message of each ``result_id``: the importer may, rarely, publish a result
    twice (see the README), and a person wants one line per file version."""
    seen: set[str] = set()
    found: list[Message] = []
    for message in messages:
        key = str(message["body"].get("result_id") or message.get("message_id"))
        if key not in seen:
            seen.add(key)
            found.append(message)
    return found


def summary_line(message: Message) -> str:
    """``STATUS  object#generation  sent N  rejected N  reason: ...`` for one result."""
    body = message["body"]
    file = body.get("file") or {}
    counts = body.get("counts") or {}
    status = body.get("status") or message["attributes"].get("status", "?")
    name = file.get("object") or message["attributes"].get("object", "?")
    line = (
        f"{status:<10}  {name}#{file.get('generation', '?')}  "
        f"sent {counts.get('rows_sent', 0)}  rejected {counts.get('rows_rejected', 0)}"
    )
    reason = body.get("reason")
    return f"{line}  reason: {reason}" if reason else line


def readable_uris(message: Message) -> list[tuple[str, str]]:
    """``(what, gs://...)`` for every object a result names, to read with ``cat``."""
    uris = message["body"].get("uris") or {}
    found: list[tuple[str, str]] = []
    for key in ("report", "rejected_rows", "failed_rows", "original", "normalized"):
        if isinstance(uris.get(key), str) and uris[key].startswith("gs://"):
            found.append((key, uris[key]))
    for index, part in enumerate(uris.get("parts") or []):
        if isinstance(part, str) and part.startswith("gs://"):
            found.append((f"part {index}", part))
    return found
