"""A subscriber to the importer's result messages, to copy and adapt.

What it shows, and why each part is there:

* **Filter on the ``status`` attribute.** Every message carries ``status``, ``bucket`` and
  ``object`` as attributes, so a subscription can ask for only what it cares about, here
  everything but SUCCEEDED (``ALERT_FILTER``). Pub/Sub then never delivers the rest. The
  callback checks the attribute again: a filter is fixed when the subscription is created and
  Google's local emulator stores filters without applying them.
* **Deduplicate on ``result_id``.** Pub/Sub delivers at least once, and the importer itself
  may, rarely, publish one result twice (a crash between publishing and recording it), as two
  messages with different message ids. ``result_id`` (``bucket/object#generation``) is the same
  in both, so deduplication uses it, never the message id (exactly-once delivery would not
  catch the second publish either).
* **Acknowledge only after handling.** A message is acked once ``handle`` returned; if it
  raises, the message is nacked and Pub/Sub redelivers it (give the subscription a retry
  policy to space the attempts and a dead-letter topic to park a message that keeps failing).

The deduplication here is a bounded in-memory set (``SeenResults``): it forgets on restart and
is not shared between instances. A production subscriber should record each handled
``result_id`` in durable storage with an insert that fails if it exists, in the same
transaction as the handler's own effect (a table keyed on ``result_id``, ``INSERT ... ON
CONFLICT DO NOTHING``; a Firestore ``create()``; a Cloud Storage object written with
``if_generation_match=0``, as the importer does for its own claims), or make the handler
idempotent (a ``MERGE`` on ``result_id`` into a BigQuery table).

Try it against the local cloud (``make up``; its endpoints are in ``.local-cloud/endpoints.json``)::

    export PUBSUB_EMULATOR_HOST=127.0.0.1:PORT PUBSUB_PROJECT_ID=local
    python examples/subscriber.py projects/local/subscriptions/import-alerts \\
        --create-on projects/local/topics/import-results

A subscription receives only messages published after it was created: create it before
dropping files. Only ``google-cloud-pubsub`` is needed.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from google.cloud import pubsub_v1

log = logging.getLogger("import-results")

#: Everything but success: failures, refusals, time-outs, partial imports, duplicates.
ALERT_FILTER = 'attributes.status != "SUCCEEDED"'
Handler = Callable[[dict[str, Any]], None]


class SeenResults:
    """The ``result_id`` of each handled result, the most recent ``limit`` of them.

    A result being handled right now is "busy": a second delivery of it is nacked, so that it
    comes back later and finds it done (or handles it, if the first attempt failed).
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._done: OrderedDict[str, None] = OrderedDict()
        self._busy: set[str] = set()
        self._limit = limit
        self._lock = threading.Lock()  # callbacks run on a thread pool

    def claim(self, result_id: str) -> str:
        """``"new"`` (now busy: handle it), ``"done"`` or ``"busy"``."""
        with self._lock:
            if result_id in self._done:
                self._done.move_to_end(result_id)
                return "done"
            if result_id in self._busy:
                return "busy"
            self._busy.add(result_id)
            return "new"

    def finish(self, result_id: str, *, handled: bool) -> None:
        with self._lock:
            self._busy.discard(result_id)
            if handled:
                self._done[result_id] = None
                if len(self._done) > self._limit:
                    self._done.popitem(last=False)


class ResultSubscriber:
    """The streaming-pull callback: filter, deduplicate, handle, then acknowledge."""

    def __init__(
        self,
        handle: Handler,
        *,
        skip_statuses: frozenset[str] = frozenset({"SUCCEEDED"}),
        seen: SeenResults | None = None,
    ) -> None:
        self.handle = handle
        self.skip_statuses = skip_statuses
        self.seen = seen or SeenResults()
        self.counts = {"handled": 0, "duplicates": 0, "deferred": 0, "skipped": 0, "failed": 0}
        self._lock = threading.Lock()

    def _count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1

    def __call__(self, message: Any) -> None:
        if message.attributes.get("status") in self.skip_statuses:
            message.ack()  # not for us: the subscription filter should have kept it away
            self._count("skipped")
            return
        try:
            result = json.loads(message.data)
            result_id = str(result["result_id"])
        except (ValueError, KeyError):
            log.exception("not a result message: %r", message.data[:200])
            message.nack()  # a dead-letter policy moves it aside after its attempts
            self._count("failed")
            return
        state = self.seen.claim(result_id)
        if state == "done":
            message.ack()  # handled before: a redelivery or the importer's rare second publish
            self._count("duplicates")
            return
        if state == "busy":
            message.nack()  # another thread handles it now; this copy comes back later
            self._count("deferred")
            return
        try:
            self.handle(result)
        except Exception:
            log.exception("handling %s failed; it will be redelivered", result_id)
            self.seen.finish(result_id, handled=False)
            message.nack()
            self._count("failed")
            return
        self.seen.finish(result_id, handled=True)
        message.ack()  # only now: a crash before this line means a redelivery, not a loss
        self._count("handled")


def create_subscription(
    subscription: str, topic: str, filter_: str = ALERT_FILTER, ack_deadline_s: int = 60
) -> None:
    """Create ``subscription`` on the results ``topic``, receiving only ``filter_``'s messages."""
    with pubsub_v1.SubscriberClient() as subscriber:
        subscriber.create_subscription(
            request={
                "name": subscription,
                "topic": topic,
                "filter": filter_,
                "ack_deadline_seconds": ack_deadline_s,
            }
        )


def run(subscription: str, callback: ResultSubscriber, stop: threading.Event | None = None) -> None:
    """Pull until ``stop`` is set (``None``: until Ctrl-C), then stop cleanly."""
    stop = stop or threading.Event()
    with pubsub_v1.SubscriberClient() as subscriber:
        future = subscriber.subscribe(
            subscription,
            callback=callback,
            flow_control=pubsub_v1.types.FlowControl(max_messages=10),
        )
        try:
            while not stop.wait(0.5):
                if future.done():
                    future.result()  # the stream ended: raise its error
        finally:
            future.cancel()  # stop pulling; acks already given are still sent
            future.result(timeout=60)


def print_result(result: dict[str, Any]) -> None:
    """An example handler: replace it with a ticket, a chat message, a row in a table."""
    counts = result.get("counts") or {}
    print(
        f"{result['status']}: gs://{result['file']['bucket']}/{result['file']['object']}"
        f"#{result['file']['generation']} sent {counts.get('rows_sent')}"
        f" rejected {counts.get('rows_rejected')} reason: {result.get('reason')}"
        f" report: {(result.get('uris') or {}).get('report')}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Pull the importer's result messages.")
    parser.add_argument("subscription", help="projects/P/subscriptions/S")
    parser.add_argument("--create-on", metavar="TOPIC", help="create it first, filtered")
    parser.add_argument("--filter", default=ALERT_FILTER, help="filter of the new subscription")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    if args.create_on:
        create_subscription(args.subscription, args.create_on, args.filter)
    try:
        run(args.subscription, ResultSubscriber(print_result))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
