"""Everything the Pub/Sub emulator remembers, behind one lock: topics, subscriptions, the
messages each subscription still owes, their leases (ack ids and deadlines) and redelivery.

The gRPC services and the push workers only translate requests into calls on :class:`Broker`
and wait on its condition; the delivery rules of real Pub/Sub live here:

* a message goes only to the subscriptions that exist when it is published, and not to those
  whose filter it fails (that counts as acknowledged);
* a leased message comes back when it is nacked (``ModifyAckDeadline`` 0) or its ack deadline
  passes, after the subscription's ``retry_policy`` backoff if it has one;
* with ``enable_message_ordering`` a key's messages are leased in publish order, one
  outstanding at a time, and a nack returns the key's later outstanding messages too;
* with a ``dead_letter_policy`` the failed ``max_delivery_attempts``-th attempt forwards the
  message to the dead-letter topic with the ``CloudPubSubDeadLetterSource*`` attributes.

Methods ending in ``_locked`` expect the caller to hold :attr:`Broker.cond`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.pubsub_v1 import types as pt

from local_cloud.grpc_common import invalid_argument, not_found, paginate, rfc3339_millis, seconds
from local_cloud.pubsub_emulator.filters import Predicate

log = logging.getLogger("local_cloud.pubsub_emulator")

_NAME_RE = re.compile(r"^projects/([^/]+)/(topics|subscriptions)/([^/]+)$")
_SHORT_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$")
# Without a retry policy a failed push is retried after a deliberately short local backoff (real
# Pub/Sub's goes up to 60 s), so that local pipelines recover quickly.
_LOCAL_PUSH_MIN_BACKOFF = 0.1
_LOCAL_PUSH_MAX_BACKOFF = 10.0
_DEFAULT_MAX_DELIVERY_ATTEMPTS = 5


def check_name(name: str, collection: str) -> str:
    """Validate a ``projects/P/topics|subscriptions/N`` name; returns the project id."""
    match = _NAME_RE.match(name)
    if (
        match is None
        or match.group(2) != collection
        or not _SHORT_NAME_RE.match(match.group(3))
        or match.group(3).startswith("goog")
    ):
        raise invalid_argument(f"Invalid [{collection}] name: (name={name})")
    return match.group(1)


def page_of(names: Iterable[str], request: Any) -> tuple[list[str], str]:
    """The page of the sorted ``names`` a List request asks for (a negative page size means the
    default, as Pub/Sub treats it) and the next page's token."""
    return paginate(
        sorted(names), request.page_size, request.page_token, negative_size_is_default=True
    )


def project_page(resources: Iterable[str], collection: str, request: Any) -> tuple[list[str], str]:
    """``page_of`` the names of ``collection`` (``topics``, ``subscriptions``) in the project
    a List request names."""
    prefix = f"{request.project}/{collection}/"
    return page_of((n for n in resources if n.startswith(prefix)), request)


@dataclass(eq=False)
class Stream:
    """One StreamingPull: its ack deadline and flow control."""

    ack_deadline: float
    max_outstanding: int
    outstanding: int = 0
    closed: bool = False


@dataclass(eq=False)
class Delivery:
    """One message's delivery state in one subscription."""

    seq: int
    message: Any  # pt.PubsubMessage
    ordering_key: str
    attempts: int = 0
    available_at: float = 0.0
    ack_id: str | None = None
    deadline: float = 0.0
    owner: Stream | None = None


@dataclass(eq=False)
class Subscription:
    proto: Any  # pt.Subscription
    predicate: Predicate | None
    pending: dict[int, Delivery] = field(default_factory=dict)
    leased: dict[str, Delivery] = field(default_factory=dict)
    busy_keys: dict[str, int] = field(default_factory=dict)
    needs_sort: bool = False
    push_generation: int = 0
    next_available: float = 0.0  # earliest backoff end seen by the last take_locked

    @property
    def name(self) -> str:
        return str(self.proto.name)

    @property
    def ordered(self) -> bool:
        return bool(self.proto.enable_message_ordering)

    @property
    def push_endpoint(self) -> str:
        return str(self.proto.push_config.push_endpoint)

    @property
    def with_attempts(self) -> bool:
        """Whether deliveries carry ``delivery_attempt`` (only with a dead-letter policy)."""
        return bool(self.proto.dead_letter_policy.dead_letter_topic)


Leased = list[tuple[str, Delivery]]


class Broker:
    """Topics, subscriptions and deliveries, guarded by :attr:`cond`."""

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.RLock())
        self.topics: dict[str, Any] = {}
        self.subs: dict[str, Subscription] = {}
        self.stopped = threading.Event()
        self.threads: list[threading.Thread] = []
        self._message_ids = itertools.count(1)
        self._seqs = itertools.count(1)
        self._ack_ids = itertools.count(1)
        self._deadlines: list[tuple[float, str, str]] = []

    def sub(self, name: str) -> Subscription:
        """The subscription called ``name`` (INVALID_ARGUMENT, NOT_FOUND)."""
        check_name(name, "subscriptions")
        sub = self.subs.get(name)
        if sub is None:
            raise not_found("Subscription not found")
        return sub

    def add_thread(self, thread: threading.Thread) -> None:
        """Start ``thread`` and remember it, to be joined on stop."""
        thread.start()
        self.threads = [t for t in self.threads if t.is_alive()]
        self.threads.append(thread)

    # ------------------------------------------------------------------ publishing

    def publish_locked(self, topic: str, message: Any) -> str:
        message_id = str(next(self._message_ids))
        stored = pt.PubsubMessage(
            data=message.data,
            attributes=dict(message.attributes),
            ordering_key=message.ordering_key,
            message_id=message_id,
            publish_time=datetime.now(UTC),
        )
        attrs = dict(stored.attributes)
        for sub in self.subs.values():
            if sub.proto.topic != topic:
                continue
            if sub.predicate is not None and not sub.predicate(attrs):
                continue  # filtered out: acknowledged automatically
            seq = next(self._seqs)
            sub.pending[seq] = Delivery(seq, stored, stored.ordering_key)
        self.cond.notify_all()
        return message_id

    # ------------------------------------------------------------------ leasing

    def take_locked(
        self, sub: Subscription, max_n: int, deadline_s: float, owner: Stream | None
    ) -> Leased:
        """Lease up to ``max_n`` available messages of ``sub``."""
        if max_n <= 0 or not sub.pending:
            return []
        if sub.needs_sort:
            sub.pending = dict(sorted(sub.pending.items()))
            sub.needs_sort = False
        now = time.monotonic()
        sub.next_available = 0.0
        chosen: list[Delivery] = []
        blocked: set[str] = set()
        taken_keys: set[str] = set()
        for delivery in sub.pending.values():
            if len(chosen) >= max_n:
                break
            key = delivery.ordering_key if sub.ordered else ""
            if key:
                if key in blocked:
                    continue
                if sub.busy_keys.get(key) and key not in taken_keys:
                    blocked.add(key)
                    continue
            if delivery.available_at > now:
                if key:
                    blocked.add(key)
                if not sub.next_available or delivery.available_at < sub.next_available:
                    sub.next_available = delivery.available_at
                continue
            chosen.append(delivery)
            if key:
                taken_keys.add(key)
        leased: Leased = []
        for delivery in chosen:
            del sub.pending[delivery.seq]
            ack_id = f"{next(self._ack_ids)}-{delivery.seq}"
            delivery.ack_id = ack_id
            delivery.attempts += 1
            delivery.deadline = now + deadline_s
            delivery.owner = owner
            if owner is not None:
                owner.outstanding += 1
            sub.leased[ack_id] = delivery
            if sub.ordered and delivery.ordering_key:
                sub.busy_keys[delivery.ordering_key] = (
                    sub.busy_keys.get(delivery.ordering_key, 0) + 1
                )
            heapq.heappush(self._deadlines, (delivery.deadline, ack_id, sub.name))
            leased.append((ack_id, delivery))
        if leased:
            self.cond.notify_all()  # wake the reaper for the new deadlines
        return leased

    def _release_locked(self, sub: Subscription, ack_id: str) -> Delivery | None:
        delivery = sub.leased.pop(ack_id, None)
        if delivery is None:
            return None
        if delivery.owner is not None:
            delivery.owner.outstanding -= 1
            delivery.owner = None
        delivery.ack_id = None
        key = delivery.ordering_key
        if sub.ordered and key:
            left = sub.busy_keys.get(key, 1) - 1
            if left > 0:
                sub.busy_keys[key] = left
            else:
                sub.busy_keys.pop(key, None)
        return delivery

    @staticmethod
    def _backoff(sub: Subscription, attempts: int, push: bool) -> float:
        if "retry_policy" in sub.proto:
            policy = sub.proto.retry_policy
            low = seconds(policy.minimum_backoff) or 10.0
            high = seconds(policy.maximum_backoff) or 600.0
        elif push:
            low, high = _LOCAL_PUSH_MIN_BACKOFF, _LOCAL_PUSH_MAX_BACKOFF
        else:
            return 0.0
        return float(min(high, low * 2 ** max(0, attempts - 1)))

    def nack_locked(self, sub: Subscription, ack_id: str, push: bool = False) -> None:
        delivery = self._release_locked(sub, ack_id)
        if delivery is None:
            return
        returned = [delivery]
        if sub.ordered and delivery.ordering_key:
            # Later outstanding messages of the key must be redelivered after this one.
            for later_id, later in list(sub.leased.items()):
                if later.ordering_key == delivery.ordering_key and later.seq > delivery.seq:
                    self._release_locked(sub, later_id)
                    later.attempts -= 1  # not this message's failure
                    returned.append(later)
        now = time.monotonic()
        policy = sub.proto.dead_letter_policy
        for item in returned:
            if (
                item is delivery
                and policy.dead_letter_topic
                and item.attempts
                >= (policy.max_delivery_attempts or _DEFAULT_MAX_DELIVERY_ATTEMPTS)
            ):
                self._dead_letter_locked(sub, item)
                continue
            wait = self._backoff(sub, item.attempts, push) if item is delivery else 0.0
            item.available_at = now + wait
            sub.pending[item.seq] = item
            sub.needs_sort = True
        self.cond.notify_all()

    def _dead_letter_locked(self, sub: Subscription, delivery: Delivery) -> None:
        target = sub.proto.dead_letter_policy.dead_letter_topic
        if target not in self.topics:
            log.warning("dead-letter topic %s does not exist; dropping message", target)
            return
        original = delivery.message
        attrs = dict(original.attributes)
        project = sub.name.split("/")[1]
        attrs.update(
            {
                "CloudPubSubDeadLetterSourceDeliveryCount": str(delivery.attempts),
                "CloudPubSubDeadLetterSourceSubscription": sub.name.rsplit("/", 1)[1],
                "CloudPubSubDeadLetterSourceSubscriptionProject": project,
                "CloudPubSubDeadLetterSourceTopicPublishTime": rfc3339_millis(
                    original.publish_time
                ),
            }
        )
        self.publish_locked(
            target,
            pt.PubsubMessage(
                data=original.data, attributes=attrs, ordering_key=original.ordering_key
            ),
        )

    def ack_locked(self, sub: Subscription, ack_ids: Any) -> None:
        for ack_id in ack_ids:
            self._release_locked(sub, ack_id)
        self.cond.notify_all()

    def modack_locked(self, sub: Subscription, ack_ids: Any, deadline_s: int) -> None:
        if not 0 <= deadline_s <= 600:
            raise invalid_argument("Invalid ack deadline given (must be between 0 and 600 seconds)")
        if deadline_s == 0:
            for ack_id in ack_ids:
                self.nack_locked(sub, ack_id)
            return
        deadline = time.monotonic() + deadline_s
        for ack_id in ack_ids:
            delivery = sub.leased.get(ack_id)
            if delivery is not None:
                delivery.deadline = deadline
                heapq.heappush(self._deadlines, (deadline, ack_id, sub.name))
        self.cond.notify_all()

    def reap_loop(self) -> None:
        """Expire ack deadlines: expired messages become available again."""
        with self.cond:
            while not self.stopped.is_set():
                now = time.monotonic()
                while self._deadlines and self._deadlines[0][0] <= now:
                    _, ack_id, sub_name = heapq.heappop(self._deadlines)
                    sub = self.subs.get(sub_name)
                    delivery = sub.leased.get(ack_id) if sub is not None else None
                    if sub is not None and delivery is not None and delivery.deadline <= now:
                        self.nack_locked(sub, ack_id, push=bool(sub.push_endpoint))
                wait = self._deadlines[0][0] - now if self._deadlines else 1.0
                self.cond.wait(timeout=max(0.01, min(wait, 1.0)))

    def wait_for_messages_locked(self, sub: Subscription, cap: float) -> None:
        """Sleep until something may have changed, or until ``sub``'s next backoff ends when
        nothing is available right now (at most ``cap`` seconds)."""
        wait = cap
        if sub.next_available:
            wait = max(0.005, min(cap, sub.next_available - time.monotonic()))
        self.cond.wait(timeout=wait)

    @staticmethod
    def received(sub: Subscription, leased: Leased) -> list[Any]:
        """``ReceivedMessage``s of ``leased`` as Pull and StreamingPull answer them."""
        return [
            pt.ReceivedMessage(
                ack_id=ack_id,
                message=d.message,
                delivery_attempt=d.attempts if sub.with_attempts else 0,
            )
            for ack_id, d in leased
        ]
