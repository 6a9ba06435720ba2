"""Push delivery: the worker threads that POST a push subscription's messages to its endpoint.

Every push subscription has its own workers, so a slow endpoint never holds up another
subscription. Each worker leases one message at a time and POSTs the body real Pub/Sub sends::

    {"message": {"data": <base64>, "attributes": {...}, "messageId": ..., "message_id": ...,
                 "publishTime": ..., "publish_time": ..., "orderingKey": ...},
     "subscription": "projects/.../subscriptions/...", "deliveryAttempt": n}

(``orderingKey`` only when set, ``deliveryAttempt`` only with a dead-letter policy), or with
``push_config.no_wrapper`` the raw data with ``x-goog-pubsub-*`` attribute headers. HTTP
102/200/201/202/204 acknowledge; any other status, a timeout (the ack deadline) or a connection
error is a nack, retried after the backoff :class:`~local_cloud.pubsub_emulator.state.Broker`
computes. Changing or removing the push config retires the subscription's workers.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import urllib.error
import urllib.request
from typing import Any

from local_cloud.grpc_common import rfc3339_millis
from local_cloud.pubsub_emulator.state import Broker, Delivery, Leased, Subscription

log = logging.getLogger("local_cloud.pubsub_emulator")

PUSH_WORKERS_PER_SUBSCRIPTION = 8
_PUSH_ACK_STATUSES = frozenset({102, 200, 201, 202, 204})


class PushDelivery:
    """Starts and runs the push workers of the broker's push subscriptions."""

    def __init__(self, broker: Broker, workers: int = PUSH_WORKERS_PER_SUBSCRIPTION) -> None:
        self._broker = broker
        self._workers = max(1, workers)

    def start_workers_locked(self, sub: Subscription) -> None:
        """Start ``sub``'s workers for its current push config (none for a pull subscription)."""
        if not sub.push_endpoint:
            return
        generation = sub.push_generation
        for index in range(self._workers):
            self._broker.add_thread(
                threading.Thread(
                    target=self._push_loop,
                    args=(sub, generation),
                    name=f"pubsub-push-{sub.name.rsplit('/', 1)[1]}-{index}",
                    daemon=True,
                )
            )

    def _push_loop(self, sub: Subscription, generation: int) -> None:
        broker = self._broker
        while True:
            with broker.cond:
                leased: Leased = []
                while not leased:
                    if (
                        broker.stopped.is_set()
                        or sub.push_generation != generation
                        or broker.subs.get(sub.name) is not sub
                    ):
                        return
                    leased = broker.take_locked(sub, 1, sub.proto.ack_deadline_seconds, None)
                    if not leased:
                        broker.wait_for_messages_locked(sub, 0.25)
                ack_id, delivery = leased[0]
                endpoint = sub.push_endpoint
                no_wrapper = "no_wrapper" in sub.proto.push_config
                with_attempts = sub.with_attempts
                timeout = float(sub.proto.ack_deadline_seconds)
            body, headers = push_payload(sub.name, delivery, no_wrapper, with_attempts)
            ok = _post(endpoint, body, headers, timeout)
            with broker.cond:
                if ok:
                    broker.ack_locked(sub, [ack_id])
                else:
                    broker.nack_locked(sub, ack_id, push=True)


def push_payload(
    sub_name: str, delivery: Delivery, no_wrapper: bool, with_attempts: bool
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one push request."""
    message = delivery.message
    attributes = dict(message.attributes)
    if no_wrapper:
        headers = {f"x-goog-pubsub-{k}": v for k, v in attributes.items()}
        headers["Content-Type"] = "application/octet-stream"
        return bytes(message.data), headers
    published = rfc3339_millis(message.publish_time)
    wrapped: dict[str, Any] = {
        "data": base64.b64encode(message.data).decode("ascii"),
        "attributes": attributes,
        "messageId": message.message_id,
        "message_id": message.message_id,
        "publishTime": published,
        "publish_time": published,
    }
    if message.ordering_key:
        wrapped["orderingKey"] = message.ordering_key
    payload: dict[str, Any] = {"message": wrapped, "subscription": sub_name}
    if with_attempts:
        payload["deliveryAttempt"] = delivery.attempts
    return json.dumps(payload).encode(), {"Content-Type": "application/json"}


def _post(endpoint: str, body: bytes, headers: dict[str, str], timeout: float) -> bool:
    """POST one push request; whether the endpoint acknowledged it."""
    request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return int(response.status) in _PUSH_ACK_STATUSES
    except urllib.error.HTTPError as err:
        err.close()
        log.info("push to %s answered %s; will retry", endpoint, err.code)
        return int(err.code) in _PUSH_ACK_STATUSES
    except (OSError, ValueError) as err:
        log.info("push to %s failed (%s); will retry", endpoint, err)
        return False
