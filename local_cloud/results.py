"""Reading result messages from a pull subscription, for the demo, the CLI and the tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from google.api_core import exceptions as gexc


def pull_results(
    subscription: str,
    *,
    until: Callable[[list[dict[str, Any]]], bool],
    deadline_s: float,
) -> list[dict[str, Any]]:
    """Pull and acknowledge result messages until ``until(messages)`` holds or the deadline.

    Each item is ``{"attributes": {...}, "body": {...}}``. Raises ``TimeoutError`` when the
    deadline passes first, naming how many messages had arrived.
    """
    from google.cloud.pubsub import SubscriberClient

    subscriber = SubscriberClient()
    received: list[dict[str, Any]] = []
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


def for_object(name: str) -> Callable[[list[dict[str, Any]]], bool]:
    """A stop condition: a result for object ``name`` has arrived."""
    return lambda messages: any(m["attributes"].get("object") == name for m in messages)
