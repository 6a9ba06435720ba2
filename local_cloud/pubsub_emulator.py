"""A small, dependency-light Google Cloud Pub/Sub emulator (gRPC, in-memory).

It serves ``google.pubsub.v1.Publisher`` and ``google.pubsub.v1.Subscriber`` through
``grpc.method_handlers_generic_handler`` and uses the proto-plus message classes of
``google.pubsub_v1`` for (de)serialisation, so the official ``google-cloud-pubsub`` clients
work against it with ``PUBSUB_EMULATOR_HOST=<host>:<port>``.

Run it standalone::

    python -m local_cloud.pubsub_emulator --host 127.0.0.1 --port 8085

It prints ``READY <host>:<port>`` on stdout once it serves and stops cleanly on SIGTERM/SIGINT.
In-process::

    emulator = PubSubEmulator(port=0)
    emulator.start()          # returns the bound port
    ...                       # PUBSUB_EMULATOR_HOST = emulator.host_port
    emulator.stop()

Supported: topics (create/get/list/delete, list topic subscriptions), publish (attributes,
ordering keys, server-assigned ``message_id``/``publish_time``), subscriptions (create/get/list/
delete/modify push config) with ack deadlines, retry policy, ordering, attribute filters,
dead-letter policy (``delivery_attempt`` and forwarding), unary Pull/Acknowledge/
ModifyAckDeadline and bidirectional StreamingPull (acks/modacks over the stream or as unary
calls, keep-alive requests, per-stream flow control), and push delivery.

Semantics (as in real Pub/Sub):

* a message is delivered only to subscriptions that existed when it was published;
* ``ModifyAckDeadline`` with 0 seconds is a nack: the message is redelivered at once (or after
  the ``retry_policy`` backoff when the subscription has one); an expired ack deadline
  likewise redelivers;
* with ``enable_message_ordering`` messages of one ordering key are delivered in publish order
  and no later message of a key is handed out while an earlier one is outstanding; a nack or
  expiry of a keyed message also returns that key's later outstanding messages;
* messages not matching a subscription ``filter`` are acknowledged automatically;
* with a ``dead_letter_policy``, ``delivery_attempt`` is set and a message that failed
  ``max_delivery_attempts`` times is forwarded to the dead-letter topic with the
  ``CloudPubSubDeadLetterSource*`` attributes.

Push subscriptions: every push subscription has its own worker threads (so a slow endpoint
never blocks another subscription) that POST the wrapped JSON body real Pub/Sub sends::

    {"message": {"data": <base64>, "attributes": {...}, "messageId": ..., "message_id": ...,
                 "publishTime": ..., "publish_time": ..., "orderingKey": ...},
     "subscription": "projects/.../subscriptions/...", "deliveryAttempt": n}

(``orderingKey`` only when set, ``deliveryAttempt`` only with a dead-letter policy) with
``Content-Type: application/json``. HTTP 102/200/201/202/204 acknowledge; any other status,
a timeout (the ack deadline) or a connection error is a nack and the message is retried with
exponential backoff: from the subscription's ``retry_policy`` (``minimum_backoff`` doubling up
to ``maximum_backoff``; 10 s / 600 s when the policy leaves them unset) or, **when the
subscription has no retry policy, a deliberately short local backoff of 0.1 s doubling up to
10 s** so that local pipelines recover quickly (real Pub/Sub's push backoff goes up to 60 s).
``push_config.no_wrapper`` sends the raw data with ``x-goog-pubsub-*`` attribute headers.

Known differences from Google's official emulator (``cloud-pubsub-emulator``, found with the
contract tests in ``tests/contract/test_pubsub_emulator.py``):

* push retries: the official emulator retries a failed push after a fixed ~1 s regardless of
  any retry policy; ours uses the exponential backoff described above (0.1 s first retry);
* push JSON: the official emulator omits ``orderingKey``; ours includes it (as real Pub/Sub
  does). Both always send ``data`` (possibly ``""``) and ``attributes``;
* an empty unary Pull (without ``return_immediately``) blocks until the RPC deadline in both;
  ours returns an empty response shortly before the deadline, or after 90 s without one;
* ``ack_deadline_seconds`` outside 10..600: the official emulator stores any value; real
  Pub/Sub rejects it. Ours accepts 1..600 (short deadlines help local tests), 0 means 10,
  anything else is INVALID_ARGUMENT;
* filters: the official emulator stores a subscription ``filter`` but delivers every message;
  ours applies the attribute subset of the filter language (``attributes.k = "v"``, ``!=``,
  ``attributes:k``, ``hasPrefix(attributes.k, "p")``, ``NOT``/``-``, ``AND``, ``OR``,
  parentheses) like real Pub/Sub and rejects other filters with INVALID_ARGUMENT;
* dead-letter policies behave alike (``delivery_attempt``, forwarding with the
  ``CloudPubSubDeadLetterSource*`` attributes), except that the official emulator forwards only
  when the source subscription is pulled again after the last failed attempt; ours forwards as
  soon as the attempt fails (nack or deadline expiry);
* no persistence, IAM, snapshots, seek, schemas, exactly-once delivery, message retention or
  Update* RPCs (they answer UNIMPLEMENTED).
"""

from __future__ import annotations

import argparse
import base64
import heapq
import itertools
import json
import logging
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf import duration_pb2
from google.pubsub_v1 import types as pt

from local_cloud.processes import serve_until_signalled

__all__ = ["PubSubEmulator", "main"]

log = logging.getLogger("local_cloud.pubsub_emulator")

_NAME_RE = re.compile(r"^projects/([^/]+)/(topics|subscriptions)/([^/]+)$")
_SHORT_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$")
_DELETED_TOPIC = "_deleted-topic_"
_DEFAULT_ACK_DEADLINE = 10
_RETENTION_7_DAYS = 7 * 24 * 3600
_PUSH_ACK_STATUSES = frozenset({102, 200, 201, 202, 204})
_LOCAL_PUSH_MIN_BACKOFF = 0.1
_LOCAL_PUSH_MAX_BACKOFF = 10.0
_PUSH_WORKERS_PER_SUBSCRIPTION = 8
_EMPTY_PULL_MAX_WAIT = 90.0
_STREAM_BATCH = 1000


class _RpcError(Exception):
    def __init__(self, code: Any, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _not_found(what: str) -> _RpcError:
    return _RpcError(grpc.StatusCode.NOT_FOUND, f"{what} not found")


def _invalid(message: str) -> _RpcError:
    return _RpcError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _check_name(name: str, collection: str) -> str:
    """Validate a resource name; returns the project id."""
    match = _NAME_RE.match(name)
    if (
        match is None
        or match.group(2) != collection
        or not _SHORT_NAME_RE.match(match.group(3))
        or match.group(3).startswith("goog")
    ):
        raise _invalid(f"Invalid [{collection}] name: (name={name})")
    return match.group(1)


def _duration_seconds(value: Any) -> float:
    """Seconds of a proto-plus Duration field (exposed as ``timedelta``) or a raw Duration."""
    if value is None:
        return 0.0
    if hasattr(value, "total_seconds"):
        return float(value.total_seconds())
    if isinstance(value, duration_pb2.Duration):
        return float(value.seconds + value.nanos / 1e9)
    return 0.0


def _rfc3339(dt: datetime) -> str:
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


# --------------------------------------------------------------------------- filters


_TOKEN_RE = re.compile(
    r"\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<comma>,)|(?P<ne>!=)|(?P<eq>=)|(?P<colon>:)|(?P<dot>\.)"
    r"|(?P<minus>-)|(?P<str>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')|(?P<ident>[A-Za-z0-9_]+))"
)

_Predicate = Callable[[dict[str, str]], bool]


class _FilterParser:
    """Recursive-descent parser for the attribute subset of the Pub/Sub filter language."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = _TOKEN_RE.match(text, pos)
            if m is None or m.end() == pos:
                raise _invalid(f"Invalid filter: {text!r}")
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.pos = 0

    def parse(self) -> _Predicate:
        pred = self._or()
        if self.pos != len(self.tokens):
            raise _invalid("Invalid filter: trailing input")
        return pred

    def _peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("eof", "")

    def _take(self, kind: str, value: str | None = None) -> str:
        k, v = self._peek()
        if k != kind or (value is not None and v != value):
            raise _invalid(f"Invalid filter: expected {value or kind}, got {v or k}")
        self.pos += 1
        return v

    def _or(self) -> _Predicate:
        parts = [self._and()]
        while self._peek() == ("ident", "OR"):
            self.pos += 1
            parts.append(self._and())
        if len(parts) == 1:
            return parts[0]
        return lambda attrs: any(p(attrs) for p in parts)

    def _and(self) -> _Predicate:
        parts = [self._unary()]
        while self._peek() == ("ident", "AND"):
            self.pos += 1
            parts.append(self._unary())
        if len(parts) == 1:
            return parts[0]
        return lambda attrs: all(p(attrs) for p in parts)

    def _unary(self) -> _Predicate:
        if self._peek() in (("ident", "NOT"), ("minus", "-")):
            self.pos += 1
            inner = self._unary()
            return lambda attrs: not inner(attrs)
        return self._primary()

    def _string(self) -> str:
        raw = self._take("str")
        return re.sub(r"\\(.)", r"\1", raw[1:-1])

    def _attribute_key(self) -> str:
        self._take("ident", "attributes")
        sep, _ = self._peek()
        if sep not in ("dot", "colon"):
            raise _invalid("Invalid filter: expected attributes.<key> or attributes:<key>")
        self.pos += 1
        if self._peek()[0] == "str":
            return self._string()
        return self._take("ident")

    def _primary(self) -> _Predicate:
        kind, value = self._peek()
        if kind == "lp":
            self.pos += 1
            inner = self._or()
            self._take("rp")
            return inner
        if (kind, value) == ("ident", "hasPrefix"):
            self.pos += 1
            self._take("lp")
            key = self._attribute_key()
            self._take("comma")
            prefix = self._string()
            self._take("rp")
            return lambda attrs: key in attrs and attrs[key].startswith(prefix)
        start = self.pos
        self._take("ident", "attributes")
        sep = self._peek()[0]
        self.pos = start
        key = self._attribute_key()
        if sep == "colon":
            return lambda attrs: key in attrs
        op = self._peek()[0]
        if op == "eq":
            self.pos += 1
            expected = self._string()
            return lambda attrs: attrs.get(key) == expected
        if op == "ne":
            self.pos += 1
            expected = self._string()
            return lambda attrs: attrs.get(key) != expected
        raise _invalid("Invalid filter: expected = or != after attributes.<key>")


def compile_filter(text: str) -> _Predicate | None:
    """Compile a subscription filter; ``None`` for an empty filter."""
    if not text.strip():
        return None
    return _FilterParser(text).parse()


# --------------------------------------------------------------------------- state


@dataclass(eq=False)
class _Stream:
    ack_deadline: float
    max_outstanding: int
    outstanding: int = 0
    closed: bool = False


@dataclass(eq=False)
class _Delivery:
    """One message's delivery state in one subscription."""

    seq: int
    message: Any  # pt.PubsubMessage
    ordering_key: str
    attempts: int = 0
    available_at: float = 0.0
    ack_id: str | None = None
    deadline: float = 0.0
    owner: _Stream | None = None


@dataclass(eq=False)
class _Subscription:
    proto: Any  # pt.Subscription
    predicate: _Predicate | None
    pending: dict[int, _Delivery] = field(default_factory=dict)
    leased: dict[str, _Delivery] = field(default_factory=dict)
    busy_keys: dict[str, int] = field(default_factory=dict)
    needs_sort: bool = False
    push_generation: int = 0
    next_available: float = 0.0  # earliest backoff end seen by the last _take_locked

    @property
    def name(self) -> str:
        return str(self.proto.name)

    @property
    def ordered(self) -> bool:
        return bool(self.proto.enable_message_ordering)

    @property
    def push_endpoint(self) -> str:
        return str(self.proto.push_config.push_endpoint)


class PubSubEmulator:
    """In-memory Pub/Sub emulator served over insecure gRPC."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        max_workers: int = 64,
        push_workers: int = _PUSH_WORKERS_PER_SUBSCRIPTION,
    ) -> None:
        """``max_workers`` bounds concurrent RPCs (each StreamingPull holds one for its life);
        ``push_workers`` is the number of concurrent POSTs per push subscription."""
        self.host = host
        self.port = int(port)
        self._max_workers = max_workers
        self._push_workers = max(1, push_workers)
        self._cond = threading.Condition(threading.RLock())
        self._topics: dict[str, Any] = {}
        self._subs: dict[str, _Subscription] = {}
        self._message_ids = itertools.count(1)
        self._seqs = itertools.count(1)
        self._ack_ids = itertools.count(1)
        self._deadlines: list[tuple[float, str, str]] = []
        self._stopped = threading.Event()
        self._server: Any = None
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle

    @property
    def host_port(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> int:
        """Start serving; returns the bound port."""
        server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=self._max_workers, thread_name_prefix="pubsub-emulator"
            ),
            options=[("grpc.so_reuseport", 0)],
        )
        server.add_generic_rpc_handlers(self._handlers())
        port = server.add_insecure_port(f"{self.host}:{self.port}")
        if port == 0:
            raise RuntimeError(f"cannot bind {self.host}:{self.port}")
        self.port = int(port)
        server.start()
        self._server = server
        reaper = threading.Thread(target=self._reap_loop, name="pubsub-reaper", daemon=True)
        reaper.start()
        self._threads.append(reaper)
        return self.port

    def stop(self, grace: float = 1.0) -> None:
        """Stop serving and all background threads."""
        self._stopped.set()
        with self._cond:
            self._cond.notify_all()
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None
        for thread in self._threads:
            thread.join(timeout=grace + 5)
        self._threads.clear()

    def __enter__(self) -> PubSubEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ gRPC plumbing

    def _handlers(self) -> tuple[Any, ...]:
        def unary(fn: Callable[[Any], Any], req: Any, resp: Any | None) -> Any:
            def call(request: Any, context: Any) -> Any:
                try:
                    return fn(request)
                except _RpcError as err:
                    context.abort(err.code, err.message)

            return grpc.unary_unary_rpc_method_handler(
                call,
                request_deserializer=req.deserialize,
                response_serializer=resp.serialize if resp is not None else lambda _: b"",
            )

        publisher = {
            "CreateTopic": unary(self._create_topic, pt.Topic, pt.Topic),
            "GetTopic": unary(self._get_topic, pt.GetTopicRequest, pt.Topic),
            "ListTopics": unary(self._list_topics, pt.ListTopicsRequest, pt.ListTopicsResponse),
            "DeleteTopic": unary(self._delete_topic, pt.DeleteTopicRequest, None),
            "ListTopicSubscriptions": unary(
                self._list_topic_subscriptions,
                pt.ListTopicSubscriptionsRequest,
                pt.ListTopicSubscriptionsResponse,
            ),
            "Publish": unary(self._publish, pt.PublishRequest, pt.PublishResponse),
        }
        subscriber = {
            "CreateSubscription": unary(
                self._create_subscription, pt.Subscription, pt.Subscription
            ),
            "GetSubscription": unary(
                self._get_subscription, pt.GetSubscriptionRequest, pt.Subscription
            ),
            "ListSubscriptions": unary(
                self._list_subscriptions, pt.ListSubscriptionsRequest, pt.ListSubscriptionsResponse
            ),
            "DeleteSubscription": unary(
                self._delete_subscription, pt.DeleteSubscriptionRequest, None
            ),
            "ModifyPushConfig": unary(self._modify_push_config, pt.ModifyPushConfigRequest, None),
            "Pull": grpc.unary_unary_rpc_method_handler(
                self._pull,
                request_deserializer=pt.PullRequest.deserialize,
                response_serializer=pt.PullResponse.serialize,
            ),
            "Acknowledge": unary(self._acknowledge, pt.AcknowledgeRequest, None),
            "ModifyAckDeadline": unary(
                self._modify_ack_deadline, pt.ModifyAckDeadlineRequest, None
            ),
            "StreamingPull": grpc.stream_stream_rpc_method_handler(
                self._streaming_pull,
                request_deserializer=pt.StreamingPullRequest.deserialize,
                response_serializer=pt.StreamingPullResponse.serialize,
            ),
        }
        return (
            grpc.method_handlers_generic_handler("google.pubsub.v1.Publisher", publisher),
            grpc.method_handlers_generic_handler("google.pubsub.v1.Subscriber", subscriber),
        )

    # ------------------------------------------------------------------ topics

    def _create_topic(self, request: Any) -> Any:
        _check_name(request.name, "topics")
        with self._cond:
            if request.name in self._topics:
                raise _RpcError(grpc.StatusCode.ALREADY_EXISTS, "Topic already exists")
            topic = pt.Topic(name=request.name, labels=dict(request.labels))
            if request.message_retention_duration:
                topic.message_retention_duration = request.message_retention_duration
            self._topics[request.name] = topic
            return topic

    def _get_topic(self, request: Any) -> Any:
        _check_name(request.topic, "topics")
        with self._cond:
            topic = self._topics.get(request.topic)
            if topic is None:
                raise _not_found("Topic")
            return topic

    @staticmethod
    def _page(names: list[str], page_size: int, page_token: str) -> tuple[list[str], str]:
        try:
            start = int(page_token) if page_token else 0
        except ValueError as exc:
            raise _invalid("Invalid page token") from exc
        size = page_size if page_size > 0 else 1000
        page = names[start : start + size]
        next_token = str(start + size) if start + size < len(names) else ""
        return page, next_token

    def _list_topics(self, request: Any) -> Any:
        prefix = f"{request.project}/topics/"
        with self._cond:
            names = sorted(n for n in self._topics if n.startswith(prefix))
            page, token = self._page(names, request.page_size, request.page_token)
            return pt.ListTopicsResponse(
                topics=[self._topics[n] for n in page], next_page_token=token
            )

    def _delete_topic(self, request: Any) -> None:
        _check_name(request.topic, "topics")
        with self._cond:
            if self._topics.pop(request.topic, None) is None:
                raise _not_found("Topic")
            for sub in self._subs.values():
                if sub.proto.topic == request.topic:
                    sub.proto.topic = _DELETED_TOPIC

    def _list_topic_subscriptions(self, request: Any) -> Any:
        _check_name(request.topic, "topics")
        with self._cond:
            if request.topic not in self._topics:
                raise _not_found("Topic")
            names = sorted(n for n, s in self._subs.items() if s.proto.topic == request.topic)
            page, token = self._page(names, request.page_size, request.page_token)
            return pt.ListTopicSubscriptionsResponse(subscriptions=page, next_page_token=token)

    def _publish(self, request: Any) -> Any:
        _check_name(request.topic, "topics")
        if not request.messages:
            raise _invalid("The request contains no messages")
        for message in request.messages:
            if not message.data and not message.attributes:
                raise _invalid("Some messages are empty")
        with self._cond:
            if request.topic not in self._topics:
                raise _not_found("Topic")
            ids = [self._publish_locked(request.topic, m) for m in request.messages]
            return pt.PublishResponse(message_ids=ids)

    def _publish_locked(self, topic: str, message: Any) -> str:
        message_id = str(next(self._message_ids))
        stored = pt.PubsubMessage(
            data=message.data,
            attributes=dict(message.attributes),
            ordering_key=message.ordering_key,
            message_id=message_id,
            publish_time=datetime.now(UTC),
        )
        attrs = dict(stored.attributes)
        for sub in self._subs.values():
            if sub.proto.topic != topic:
                continue
            if sub.predicate is not None and not sub.predicate(attrs):
                continue  # filtered out: acknowledged automatically
            seq = next(self._seqs)
            sub.pending[seq] = _Delivery(seq, stored, stored.ordering_key)
        self._cond.notify_all()
        return message_id

    # ------------------------------------------------------------------ subscriptions

    def _sub(self, name: str) -> _Subscription:
        _check_name(name, "subscriptions")
        sub = self._subs.get(name)
        if sub is None:
            raise _not_found("Subscription")
        return sub

    def _create_subscription(self, request: Any) -> Any:
        _check_name(request.name, "subscriptions")
        _check_name(request.topic, "topics")
        deadline = request.ack_deadline_seconds or _DEFAULT_ACK_DEADLINE
        if not 1 <= deadline <= 600:
            raise _invalid("Invalid ack deadline given (must be between 1 and 600 seconds)")
        predicate = compile_filter(request.filter)
        policy = request.dead_letter_policy
        if policy.dead_letter_topic:
            _check_name(policy.dead_letter_topic, "topics")
            attempts = policy.max_delivery_attempts or 5
            if not 5 <= attempts <= 100:
                raise _invalid("max_delivery_attempts must be between 5 and 100")
        with self._cond:
            if request.name in self._subs:
                raise _RpcError(grpc.StatusCode.ALREADY_EXISTS, "Subscription already exists")
            if request.topic not in self._topics:
                raise _not_found("Topic")
            proto = pt.Subscription(
                name=request.name,
                topic=request.topic,
                push_config=request.push_config,
                ack_deadline_seconds=deadline,
                retain_acked_messages=request.retain_acked_messages,
                message_retention_duration=request.message_retention_duration
                or duration_pb2.Duration(seconds=_RETENTION_7_DAYS),
                labels=dict(request.labels),
                enable_message_ordering=request.enable_message_ordering,
                filter=request.filter,
                detached=False,
                state=pt.Subscription.State.ACTIVE,
            )
            if policy.dead_letter_topic:
                proto.dead_letter_policy = pt.DeadLetterPolicy(
                    dead_letter_topic=policy.dead_letter_topic,
                    max_delivery_attempts=policy.max_delivery_attempts or 5,
                )
            if "retry_policy" in request:
                proto.retry_policy = request.retry_policy
            if "expiration_policy" in request:
                proto.expiration_policy = request.expiration_policy
            sub = _Subscription(proto=proto, predicate=predicate)
            self._subs[request.name] = sub
            self._start_push_workers_locked(sub)
            return proto

    def _get_subscription(self, request: Any) -> Any:
        with self._cond:
            return self._sub(request.subscription).proto

    def _list_subscriptions(self, request: Any) -> Any:
        prefix = f"{request.project}/subscriptions/"
        with self._cond:
            names = sorted(n for n in self._subs if n.startswith(prefix))
            page, token = self._page(names, request.page_size, request.page_token)
            return pt.ListSubscriptionsResponse(
                subscriptions=[self._subs[n].proto for n in page], next_page_token=token
            )

    def _delete_subscription(self, request: Any) -> None:
        with self._cond:
            sub = self._sub(request.subscription)
            del self._subs[sub.name]
            sub.push_generation += 1
            for delivery in sub.leased.values():
                if delivery.owner is not None:
                    delivery.owner.outstanding -= 1
            self._cond.notify_all()

    def _modify_push_config(self, request: Any) -> None:
        with self._cond:
            sub = self._sub(request.subscription)
            sub.proto.push_config = request.push_config
            sub.push_generation += 1
            self._start_push_workers_locked(sub)
            self._cond.notify_all()

    # ------------------------------------------------------------------ leasing

    def _take_locked(
        self, sub: _Subscription, max_n: int, deadline_s: float, owner: _Stream | None
    ) -> list[tuple[str, _Delivery]]:
        """Lease up to ``max_n`` available messages of ``sub`` (caller holds the lock)."""
        if max_n <= 0 or not sub.pending:
            return []
        if sub.needs_sort:
            sub.pending = dict(sorted(sub.pending.items()))
            sub.needs_sort = False
        now = time.monotonic()
        sub.next_available = 0.0
        chosen: list[_Delivery] = []
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
        leased: list[tuple[str, _Delivery]] = []
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
            self._cond.notify_all()  # wake the reaper for the new deadlines
        return leased

    def _release_locked(self, sub: _Subscription, ack_id: str) -> _Delivery | None:
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

    def _backoff(self, sub: _Subscription, attempts: int, push: bool) -> float:
        if "retry_policy" in sub.proto:
            policy = sub.proto.retry_policy
            low = _duration_seconds(policy.minimum_backoff) or 10.0
            high = _duration_seconds(policy.maximum_backoff) or 600.0
        elif push:
            low, high = _LOCAL_PUSH_MIN_BACKOFF, _LOCAL_PUSH_MAX_BACKOFF
        else:
            return 0.0
        return float(min(high, low * 2 ** max(0, attempts - 1)))

    def _nack_locked(self, sub: _Subscription, ack_id: str, push: bool = False) -> None:
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
        for item in returned:
            policy = sub.proto.dead_letter_policy
            if (
                item is delivery
                and policy.dead_letter_topic
                and item.attempts >= (policy.max_delivery_attempts or 5)
            ):
                self._dead_letter_locked(sub, item)
                continue
            wait = self._backoff(sub, item.attempts, push) if item is delivery else 0.0
            item.available_at = now + wait
            sub.pending[item.seq] = item
            sub.needs_sort = True
        self._cond.notify_all()

    def _dead_letter_locked(self, sub: _Subscription, delivery: _Delivery) -> None:
        target = sub.proto.dead_letter_policy.dead_letter_topic
        if target not in self._topics:
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
                "CloudPubSubDeadLetterSourceTopicPublishTime": _rfc3339(original.publish_time),
            }
        )
        self._publish_locked(
            target,
            pt.PubsubMessage(
                data=original.data, attributes=attrs, ordering_key=original.ordering_key
            ),
        )

    def _ack_ids_locked(self, sub: _Subscription, ack_ids: Any) -> None:
        for ack_id in ack_ids:
            self._release_locked(sub, ack_id)
        self._cond.notify_all()

    def _modack_locked(self, sub: _Subscription, ack_ids: Any, seconds: int) -> None:
        if not 0 <= seconds <= 600:
            raise _invalid("Invalid ack deadline given (must be between 0 and 600 seconds)")
        if seconds == 0:
            for ack_id in ack_ids:
                self._nack_locked(sub, ack_id)
            return
        deadline = time.monotonic() + seconds
        for ack_id in ack_ids:
            delivery = sub.leased.get(ack_id)
            if delivery is not None:
                delivery.deadline = deadline
                heapq.heappush(self._deadlines, (deadline, ack_id, sub.name))
        self._cond.notify_all()

    def _reap_loop(self) -> None:
        """Expire ack deadlines: expired messages become available again."""
        with self._cond:
            while not self._stopped.is_set():
                now = time.monotonic()
                while self._deadlines and self._deadlines[0][0] <= now:
                    _, ack_id, sub_name = heapq.heappop(self._deadlines)
                    sub = self._subs.get(sub_name)
                    delivery = sub.leased.get(ack_id) if sub is not None else None
                    if sub is not None and delivery is not None and delivery.deadline <= now:
                        self._nack_locked(sub, ack_id, push=bool(sub.push_endpoint))
                wait = self._deadlines[0][0] - now if self._deadlines else 1.0
                self._cond.wait(timeout=max(0.01, min(wait, 1.0)))

    @staticmethod
    def _idle_wait(sub: _Subscription, cap: float) -> float:
        """How long a consumer of ``sub`` may sleep when nothing is available right now."""
        if sub.next_available:
            return max(0.005, min(cap, sub.next_available - time.monotonic()))
        return cap

    def _received(self, sub: _Subscription, leased: list[tuple[str, _Delivery]]) -> list[Any]:
        with_attempts = bool(sub.proto.dead_letter_policy.dead_letter_topic)
        return [
            pt.ReceivedMessage(
                ack_id=ack_id,
                message=d.message,
                delivery_attempt=d.attempts if with_attempts else 0,
            )
            for ack_id, d in leased
        ]

    # ------------------------------------------------------------------ pull

    def _pull(self, request: Any, context: Any) -> Any:
        try:
            if request.max_messages <= 0:
                raise _invalid("max_messages must be positive")
            remaining = context.time_remaining()
            wait_total = _EMPTY_PULL_MAX_WAIT if remaining is None else remaining - 0.05
            give_up = time.monotonic() + max(0.0, wait_total)
            with self._cond:
                while True:
                    sub = self._sub(request.subscription)
                    leased = self._take_locked(
                        sub, request.max_messages, sub.proto.ack_deadline_seconds, None
                    )
                    if leased or request.return_immediately or self._stopped.is_set():
                        return pt.PullResponse(received_messages=self._received(sub, leased))
                    left = give_up - time.monotonic()
                    if left <= 0 or not context.is_active():
                        return pt.PullResponse()
                    self._cond.wait(timeout=self._idle_wait(sub, min(left, 0.25)))
        except _RpcError as err:
            context.abort(err.code, err.message)

    def _acknowledge(self, request: Any) -> None:
        if not request.ack_ids:
            raise _invalid("No ack ids specified")
        with self._cond:
            self._ack_ids_locked(self._sub(request.subscription), request.ack_ids)

    def _modify_ack_deadline(self, request: Any) -> None:
        if not request.ack_ids:
            raise _invalid("No ack ids specified")
        with self._cond:
            sub = self._sub(request.subscription)
            self._modack_locked(sub, request.ack_ids, request.ack_deadline_seconds)

    def _apply_stream_request(self, name: str, request: Any, stream: _Stream) -> None:
        if request.stream_ack_deadline_seconds:
            stream.ack_deadline = request.stream_ack_deadline_seconds
        if len(request.modify_deadline_ack_ids) != len(request.modify_deadline_seconds):
            raise _invalid("modify_deadline_ack_ids and modify_deadline_seconds differ in size")
        if not (request.ack_ids or request.modify_deadline_ack_ids):
            return
        with self._cond:
            sub = self._sub(name)
            self._ack_ids_locked(sub, request.ack_ids)
            for ack_id, seconds in zip(
                request.modify_deadline_ack_ids, request.modify_deadline_seconds, strict=True
            ):
                self._modack_locked(sub, [ack_id], seconds)

    def _streaming_pull(self, request_iterator: Iterator[Any], context: Any) -> Iterator[Any]:
        try:
            first = next(request_iterator)
        except StopIteration:
            return
        name = first.subscription
        try:
            with self._cond:
                sub = self._sub(name)
            deadline = first.stream_ack_deadline_seconds
            if not 10 <= deadline <= 600:
                raise _invalid("Invalid stream_ack_deadline_seconds (must be 10..600)")
            stream = _Stream(
                ack_deadline=deadline,
                max_outstanding=first.max_outstanding_messages or _STREAM_BATCH,
            )
            self._apply_stream_request(name, first, stream)
        except _RpcError as err:
            context.abort(err.code, err.message)
            return
        properties = pt.StreamingPullResponse.SubscriptionProperties(
            message_ordering_enabled=sub.ordered
        )

        def read_requests() -> None:
            try:
                for request in request_iterator:
                    try:
                        self._apply_stream_request(name, request, stream)
                    except _RpcError as err:
                        log.debug("ignoring bad stream request: %s", err.message)
            except Exception:  # stream cancelled or broken
                log.debug("streaming pull request stream ended", exc_info=True)
            finally:
                with self._cond:
                    stream.closed = True
                    self._cond.notify_all()

        reader = threading.Thread(target=read_requests, name="pubsub-stream-reader", daemon=True)
        reader.start()
        try:
            while True:
                with self._cond:
                    leased: list[tuple[str, _Delivery]] = []
                    while not leased:
                        if self._stopped.is_set() or stream.closed or not context.is_active():
                            return
                        current = self._subs.get(name)
                        if current is not sub:
                            context.abort(grpc.StatusCode.NOT_FOUND, "Subscription not found")
                        room = min(stream.max_outstanding - stream.outstanding, _STREAM_BATCH)
                        leased = self._take_locked(sub, room, stream.ack_deadline, stream)
                        if not leased:
                            self._cond.wait(timeout=self._idle_wait(sub, 0.25))
                    received = self._received(sub, leased)
                yield pt.StreamingPullResponse(
                    received_messages=received, subscription_properties=properties
                )
        finally:
            with self._cond:
                stream.closed = True
                # Messages stay leased until their deadline expires, as in real Pub/Sub.
                for delivery in sub.leased.values():
                    if delivery.owner is stream:
                        delivery.owner = None
                stream.outstanding = 0

    # ------------------------------------------------------------------ push

    def _start_push_workers_locked(self, sub: _Subscription) -> None:
        if not sub.push_endpoint:
            return
        generation = sub.push_generation
        for index in range(self._push_workers):
            thread = threading.Thread(
                target=self._push_loop,
                args=(sub, generation),
                name=f"pubsub-push-{sub.name.rsplit('/', 1)[1]}-{index}",
                daemon=True,
            )
            thread.start()
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)

    def _push_loop(self, sub: _Subscription, generation: int) -> None:
        while True:
            with self._cond:
                leased: list[tuple[str, _Delivery]] = []
                while not leased:
                    if (
                        self._stopped.is_set()
                        or sub.push_generation != generation
                        or self._subs.get(sub.name) is not sub
                    ):
                        return
                    leased = self._take_locked(sub, 1, sub.proto.ack_deadline_seconds, None)
                    if not leased:
                        self._cond.wait(timeout=self._idle_wait(sub, 0.25))
                ack_id, delivery = leased[0]
                endpoint = sub.push_endpoint
                no_wrapper = "no_wrapper" in sub.proto.push_config
                with_attempts = bool(sub.proto.dead_letter_policy.dead_letter_topic)
                timeout = float(sub.proto.ack_deadline_seconds)
            body, headers = self._push_payload(sub.name, delivery, no_wrapper, with_attempts)
            ok = self._post(endpoint, body, headers, timeout)
            with self._cond:
                if ok:
                    self._ack_ids_locked(sub, [ack_id])
                else:
                    self._nack_locked(sub, ack_id, push=True)

    @staticmethod
    def _push_payload(
        sub_name: str, delivery: _Delivery, no_wrapper: bool, with_attempts: bool
    ) -> tuple[bytes, dict[str, str]]:
        message = delivery.message
        attributes = dict(message.attributes)
        if no_wrapper:
            headers = {f"x-goog-pubsub-{k}": v for k, v in attributes.items()}
            headers["Content-Type"] = "application/octet-stream"
            return bytes(message.data), headers
        published = _rfc3339(message.publish_time)
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

    @staticmethod
    def _post(endpoint: str, body: bytes, headers: dict[str, str], timeout: float) -> bool:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local in-memory Pub/Sub emulator (gRPC).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8085, help="0 picks a free port")
    parser.add_argument(
        "--push-workers",
        type=int,
        default=_PUSH_WORKERS_PER_SUBSCRIPTION,
        help="concurrent push requests per push subscription",
    )
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    emulator = PubSubEmulator(host=args.host, port=args.port, push_workers=args.push_workers)

    def start() -> str:
        emulator.start()
        return emulator.host_port

    return serve_until_signalled(start, emulator.stop)


if __name__ == "__main__":
    sys.exit(main())
