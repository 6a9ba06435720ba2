"""Contract tests: Google's official Pub/Sub emulator and our builtin one behave the same.

Every test in the parametrized part runs against both emulator kinds, started once per module as
subprocesses (the official one is skipped when its binary is missing). The tests drive them with
the real ``google-cloud-pubsub`` PublisherClient/SubscriberClient through
``PUBSUB_EMULATOR_HOST``; nothing sleeps for synchronisation: blocking pulls, events and
conditions with deadlines are used instead.

Behaviour found to differ between the official emulator and ours (also documented in
:mod:`local_cloud.pubsub_emulator`); the tests only assert the common ground:

* push retry timing: the official emulator retries a failed push after a fixed ~1 s; ours backs
  off exponentially from the subscription's retry policy, or 0.1 s doubling to 10 s without one;
* push body: the official emulator omits ``orderingKey``; ours includes it like real Pub/Sub;
* ``state: ACTIVE`` is returned on subscriptions by ours (and real Pub/Sub), not by the official
  emulator;
* ``ack_deadline_seconds`` below 10: the official emulator stores any value, ours accepts 1..600
  (real Pub/Sub only 10..600), so the tests use 10 and shorten leases with ModifyAckDeadline;
* dead letters: the official emulator forwards a message to the dead-letter topic only when the
  source subscription is pulled again after the last failed attempt; ours forwards at once;
* filters: the official emulator stores a subscription filter but delivers every message; ours
  applies attribute filters like real Pub/Sub (tested in-process, builtin only);
* an empty unary Pull without ``return_immediately`` blocks until the RPC deadline in both; the
  official emulator then fails with DEADLINE_EXCEEDED, ours returns an empty response just before.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.api_core import exceptions as gexc
from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient
from google.cloud.pubsub_v1.types import PublisherOptions
from google.pubsub_v1 import types as pt

from local_cloud import pubsub_launcher
from local_cloud.processes import free_port
from local_cloud.pubsub_emulator import PubSubEmulator, compile_filter

pytestmark = pytest.mark.emulator

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_DEADLINE_S = 60.0
WAIT_S = 20.0


# --------------------------------------------------------------------------- fixtures


def _stop_process_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=15)


@dataclass(frozen=True)
class Emulator:
    kind: str
    host_port: str


@pytest.fixture(scope="module", params=["official", "builtin"])
def emulator(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Emulator]:
    kind = request.param
    if kind == "official" and pubsub_launcher.official_emulator_path() is None:
        pytest.skip("Google's cloud-pubsub-emulator is not installed")
    port = free_port()
    command = pubsub_launcher.emulator_command(kind, "127.0.0.1", port)
    log_path = tmp_path_factory.mktemp(f"pubsub-{kind}") / "emulator.log"
    env = dict(os.environ)
    env.pop("PUBSUB_EMULATOR_HOST", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: the official one is sh + java
        )
    try:
        pubsub_launcher.wait_until_ready(f"127.0.0.1:{port}", STARTUP_DEADLINE_S)
        assert proc.poll() is None, log_path.read_text(errors="replace")
        yield Emulator(kind, f"127.0.0.1:{port}")
    finally:
        _stop_process_group(proc)
    if kind == "builtin":
        assert proc.returncode == 0, log_path.read_text(errors="replace")


@dataclass
class Clients:
    kind: str
    host_port: str
    publisher: Any
    subscriber: Any
    project: str

    def topic(self, name: str) -> str:
        return f"projects/{self.project}/topics/{name}"

    def sub(self, name: str) -> str:
        return f"projects/{self.project}/subscriptions/{name}"


@pytest.fixture
def clients(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Clients]:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host_port)
    publisher = PublisherClient()
    subscriber = SubscriberClient()
    try:
        yield Clients(
            emulator.kind,
            emulator.host_port,
            publisher,
            subscriber,
            f"proj-{uuid.uuid4().hex[:10]}",
        )
    finally:
        subscriber.close()
        publisher.stop()
        publisher.transport.close()


# --------------------------------------------------------------------------- helpers


def _pull(c: Clients, sub: str, max_messages: int, timeout: float) -> list[Any]:
    """One blocking pull: returns as soon as messages are there, [] when none came in time."""
    try:
        response = c.subscriber.pull(
            request={"subscription": sub, "max_messages": max_messages},
            timeout=timeout,
            retry=None,
        )
    except gexc.DeadlineExceeded:
        return []
    return list(response.received_messages)


def _pull_now(c: Clients, sub: str) -> list[Any]:
    response = c.subscriber.pull(
        request={"subscription": sub, "max_messages": 100, "return_immediately": True}
    )
    return list(response.received_messages)


def pull_until(
    c: Clients,
    sub: str,
    done: Callable[[list[Any]], bool],
    deadline_s: float = WAIT_S,
    ack: bool = False,
) -> list[Any]:
    """Pull (blocking, server-side) until ``done(received)`` or fail at the deadline."""
    received: list[Any] = []
    give_up = time.monotonic() + deadline_s
    while not done(received):
        left = give_up - time.monotonic()
        if left <= 0:
            pytest.fail(f"condition not met within {deadline_s}s; got {received!r}")
        batch = _pull(c, sub, 100, min(left, 3.0))
        received.extend(batch)
        if ack and batch:
            c.subscriber.acknowledge(subscription=sub, ack_ids=[m.ack_id for m in batch])
    return received


def wait_for(predicate: Callable[[], bool], cond: threading.Condition, what: str) -> None:
    with cond:
        if not cond.wait_for(predicate, timeout=WAIT_S):
            pytest.fail(f"timed out after {WAIT_S}s waiting for {what}")


def make_topic_and_sub(c: Clients, suffix: str = "a", **sub_fields: Any) -> tuple[str, str]:
    topic = c.topic(f"topic-{suffix}")
    sub = c.sub(f"sub-{suffix}")
    c.publisher.create_topic(name=topic)
    c.subscriber.create_subscription(request={"name": sub, "topic": topic, **sub_fields})
    return topic, sub


def publish(c: Clients, topic: str, data: bytes, **attrs: str) -> str:
    return str(c.publisher.publish(topic, data, **attrs).result(timeout=WAIT_S))


# --------------------------------------------------------------------------- CRUD


def test_topic_crud_and_errors(clients: Clients) -> None:
    c = clients
    topic = c.topic("crud-topic")
    created = c.publisher.create_topic(name=topic)
    assert created.name == topic
    assert c.publisher.get_topic(topic=topic).name == topic
    with pytest.raises(gexc.AlreadyExists):
        c.publisher.create_topic(name=topic)
    others = [c.topic(f"crud-topic-{i}") for i in range(3)]
    for name in others:
        c.publisher.create_topic(name=name)
    listed = [t.name for t in c.publisher.list_topics(project=f"projects/{c.project}")]
    assert sorted(listed) == sorted([topic, *others])
    paged = c.publisher.list_topics(request={"project": f"projects/{c.project}", "page_size": 2})
    assert sorted(t.name for t in paged) == sorted([topic, *others])

    c.publisher.delete_topic(topic=topic)
    with pytest.raises(gexc.NotFound):
        c.publisher.get_topic(topic=topic)
    with pytest.raises(gexc.NotFound):
        c.publisher.delete_topic(topic=topic)
    with pytest.raises(gexc.InvalidArgument):
        c.publisher.create_topic(name=f"projects/{c.project}/topics/x")


def test_subscription_crud_and_errors(clients: Clients) -> None:
    c = clients
    topic = c.topic("crud-topic")
    c.publisher.create_topic(name=topic)
    sub = c.sub("crud-sub")
    created = c.subscriber.create_subscription(
        request={
            "name": sub,
            "topic": topic,
            "ack_deadline_seconds": 30,
            "enable_message_ordering": True,
            "retry_policy": {"minimum_backoff": {"seconds": 1}, "maximum_backoff": {"seconds": 5}},
        }
    )
    assert created.name == sub
    got = c.subscriber.get_subscription(subscription=sub)
    assert got.topic == topic
    assert got.ack_deadline_seconds == 30
    assert got.enable_message_ordering
    assert got.retry_policy.minimum_backoff.total_seconds() == 1
    assert got.retry_policy.maximum_backoff.total_seconds() == 5
    assert got.push_config.push_endpoint == ""

    default = c.subscriber.create_subscription(name=c.sub("crud-sub-2"), topic=topic)
    assert default.ack_deadline_seconds == 10

    with pytest.raises(gexc.AlreadyExists):
        c.subscriber.create_subscription(name=sub, topic=topic)
    with pytest.raises(gexc.NotFound):
        c.subscriber.create_subscription(name=c.sub("orphan"), topic=c.topic("missing"))
    with pytest.raises(gexc.NotFound):
        c.subscriber.get_subscription(subscription=c.sub("missing"))

    listed = sorted(
        s.name for s in c.subscriber.list_subscriptions(project=f"projects/{c.project}")
    )
    assert listed == sorted([sub, c.sub("crud-sub-2")])
    by_topic = sorted(c.publisher.list_topic_subscriptions(topic=topic))
    assert by_topic == listed

    c.subscriber.modify_push_config(
        subscription=sub, push_config={"push_endpoint": "http://127.0.0.1:9/never"}
    )
    assert (
        c.subscriber.get_subscription(subscription=sub).push_config.push_endpoint
        == "http://127.0.0.1:9/never"
    )
    c.subscriber.modify_push_config(subscription=sub, push_config={})
    assert c.subscriber.get_subscription(subscription=sub).push_config.push_endpoint == ""

    c.subscriber.delete_subscription(subscription=sub)
    with pytest.raises(gexc.NotFound):
        c.subscriber.get_subscription(subscription=sub)
    with pytest.raises(gexc.NotFound):
        c.subscriber.delete_subscription(subscription=sub)

    # Deleting a topic leaves its subscriptions behind, detached from any topic.
    c.publisher.delete_topic(topic=topic)
    orphan = c.subscriber.get_subscription(subscription=c.sub("crud-sub-2"))
    assert orphan.topic == "_deleted-topic_"


def test_publish_to_unknown_topic_is_not_found(clients: Clients) -> None:
    future = clients.publisher.publish(clients.topic("does-not-exist"), b"x")
    with pytest.raises(gexc.NotFound):
        future.result(timeout=WAIT_S)


def test_pull_unknown_subscription_is_not_found(clients: Clients) -> None:
    with pytest.raises(gexc.NotFound):
        _pull_now(clients, clients.sub("does-not-exist"))


# --------------------------------------------------------------------------- publish / pull


def test_publish_with_attributes_and_pull(clients: Clients) -> None:
    c = clients
    topic, sub = make_topic_and_sub(c)
    before = time.time()
    ids = [publish(c, topic, f"payload-{i}".encode(), idx=str(i), kind="event") for i in range(3)]
    assert len(set(ids)) == 3

    received = pull_until(c, sub, lambda r: len(r) >= 3, ack=True)
    by_id = {m.message.message_id: m for m in received}
    assert set(by_id) == set(ids)
    for i, message_id in enumerate(ids):
        message = by_id[message_id].message
        assert message.data == f"payload-{i}".encode()
        assert dict(message.attributes) == {"idx": str(i), "kind": "event"}
        assert before - 5 <= message.publish_time.timestamp() <= time.time() + 5
    assert _pull_now(c, sub) == []


def test_messages_published_before_subscription_are_not_delivered(clients: Clients) -> None:
    c = clients
    topic = c.topic("early")
    c.publisher.create_topic(name=topic)
    publish(c, topic, b"before")
    sub = c.sub("late-sub")
    c.subscriber.create_subscription(name=sub, topic=topic)
    after_id = publish(c, topic, b"after")
    received = pull_until(c, sub, lambda r: len(r) >= 1, ack=True)
    received += _pull_now(c, sub)
    assert [m.message.message_id for m in received] == [after_id]


def test_ordering_keys_delivered_in_order(clients: Clients) -> None:
    c = clients
    topic, sub = make_topic_and_sub(c, enable_message_ordering=True)
    ordered_publisher = PublisherClient(
        publisher_options=PublisherOptions(enable_message_ordering=True)
    )
    try:
        futures = [
            ordered_publisher.publish(topic, f"{key}-{i}".encode(), ordering_key=key, seq=str(i))
            for i in range(15)
            for key in ("alpha", "beta")
        ]
        for future in futures:
            future.result(timeout=WAIT_S)
    finally:
        ordered_publisher.stop()
        ordered_publisher.transport.close()

    received = pull_until(c, sub, lambda r: len(r) >= 30, ack=True)
    for key in ("alpha", "beta"):
        keyed = [m.message for m in received if m.message.ordering_key == key]
        assert [m.data.decode() for m in keyed] == [f"{key}-{i}" for i in range(15)]


# --------------------------------------------------------------------------- ack / nack / expiry


def test_ack_removes_and_nack_redelivers(clients: Clients) -> None:
    c = clients
    topic, sub = make_topic_and_sub(c)
    keep_id = publish(c, topic, b"ack-me")
    retry_id = publish(c, topic, b"nack-me")
    first = pull_until(c, sub, lambda r: len(r) >= 2)
    by_id = {m.message.message_id: m for m in first}
    assert set(by_id) == {keep_id, retry_id}

    c.subscriber.acknowledge(subscription=sub, ack_ids=[by_id[keep_id].ack_id])
    # A nack of an already acknowledged message must not bring it back.
    c.subscriber.modify_ack_deadline(
        subscription=sub, ack_ids=[by_id[keep_id].ack_id], ack_deadline_seconds=0
    )
    c.subscriber.modify_ack_deadline(
        subscription=sub, ack_ids=[by_id[retry_id].ack_id], ack_deadline_seconds=0
    )
    again = pull_until(c, sub, lambda r: any(m.message.message_id == retry_id for m in r))
    again += _pull_now(c, sub)
    assert [m.message.message_id for m in again] == [retry_id]
    assert again[0].message.data == b"nack-me"
    c.subscriber.acknowledge(subscription=sub, ack_ids=[again[0].ack_id])
    assert _pull_now(c, sub) == []


def test_expired_ack_deadline_redelivers(clients: Clients) -> None:
    c = clients
    topic, sub = make_topic_and_sub(c, ack_deadline_seconds=10)
    message_id = publish(c, topic, b"slow consumer")
    (first,) = pull_until(c, sub, lambda r: len(r) >= 1)
    c.subscriber.modify_ack_deadline(
        subscription=sub, ack_ids=[first.ack_id], ack_deadline_seconds=1
    )
    leased_at = time.monotonic()
    assert _pull_now(c, sub) == []  # still leased
    (second,) = pull_until(c, sub, lambda r: len(r) >= 1)
    assert time.monotonic() - leased_at >= 0.8
    assert second.message.message_id == message_id
    assert second.ack_id != first.ack_id
    c.subscriber.acknowledge(subscription=sub, ack_ids=[second.ack_id])
    assert _pull_now(c, sub) == []


# --------------------------------------------------------------------------- streaming pull


def test_streaming_pull_subscribe_receives_acks_and_nacks(clients: Clients) -> None:
    c = clients
    topic, sub = make_topic_and_sub(c)
    cond = threading.Condition()
    deliveries: list[tuple[str, bytes, dict[str, str]]] = []

    def callback(message: Any) -> None:
        with cond:
            seen_before = any(d[0] == message.message_id for d in deliveries)
            deliveries.append((message.message_id, message.data, dict(message.attributes)))
            cond.notify_all()
        if message.data == b"nack-once" and not seen_before:
            message.nack()
        else:
            message.ack()

    future = c.subscriber.subscribe(sub, callback)
    try:
        ids = [publish(c, topic, f"m{i}".encode(), n=str(i)) for i in range(5)]
        nack_id = publish(c, topic, b"nack-once")
        expected = {*ids, nack_id}

        def complete() -> bool:
            got = [d[0] for d in deliveries]
            return expected <= set(got) and got.count(nack_id) >= 2

        wait_for(complete, cond, "all streamed messages plus one redelivery")
    finally:
        future.cancel()
        future.result(timeout=WAIT_S)
    with cond:
        attrs = {d[0]: d[2] for d in deliveries}
    assert attrs[ids[3]] == {"n": "3"}
    assert _pull_now(c, sub) == []


def test_streaming_pull_raw_stream_acks_and_keepalive(clients: Clients) -> None:
    """Acks and modacks sent over the stream itself, plus an empty keep-alive request."""
    c = clients
    topic, sub = make_topic_and_sub(c)
    first_id = publish(c, topic, b"first")
    second_id = publish(c, topic, b"second")

    outgoing: list[Any] = [
        pt.StreamingPullRequest(subscription=sub, stream_ack_deadline_seconds=30)
    ]
    out_cond = threading.Condition()
    finished = False

    def requests() -> Iterator[Any]:
        sent = [0]
        while True:
            with out_cond:
                out_cond.wait_for(lambda: finished or sent[0] < len(outgoing), timeout=WAIT_S)
                if sent[0] >= len(outgoing):
                    return
                request = outgoing[sent[0]]
            sent[0] += 1
            yield request

    def send(request: Any) -> None:
        with out_cond:
            outgoing.append(request)
            out_cond.notify_all()

    with grpc.insecure_channel(c.host_port) as channel:
        call = channel.stream_stream(
            "/google.pubsub.v1.Subscriber/StreamingPull",
            request_serializer=pt.StreamingPullRequest.serialize,
            response_deserializer=pt.StreamingPullResponse.deserialize,
        )(requests(), timeout=WAIT_S * 2)
        received: dict[str, str] = {}
        responses = iter(call)
        while len(received) < 2:
            response = next(responses)
            for m in response.received_messages:
                received[m.message.message_id] = m.ack_id
        assert set(received) == {first_id, second_id}
        send(pt.StreamingPullRequest())  # keep-alive
        send(
            pt.StreamingPullRequest(
                ack_ids=[received[first_id]],
                modify_deadline_ack_ids=[received[second_id]],
                modify_deadline_seconds=[0],
            )
        )
        # The nacked message comes back on the same stream; the acked one does not.
        redelivered: list[str] = []
        while not redelivered:
            response = next(responses)
            redelivered = [m.message.message_id for m in response.received_messages]
            ack_ids = [m.ack_id for m in response.received_messages]
        assert redelivered == [second_id]
        send(pt.StreamingPullRequest(ack_ids=ack_ids))
        with out_cond:
            finished = True
            out_cond.notify_all()
        call.cancel()
    # Acks sent right before closing the stream are applied asynchronously: wait for them.
    give_up = time.monotonic() + WAIT_S
    leftovers = _pull_now(c, sub)
    while leftovers and time.monotonic() < give_up:
        leftovers = _pull(c, sub, 10, 1.0)
    assert leftovers == []


def test_dead_letter_policy_counts_attempts_and_forwards(clients: Clients) -> None:
    c = clients
    dlq_topic = c.topic("dead-letters")
    c.publisher.create_topic(name=dlq_topic)
    dlq_sub = c.sub("dead-letter-sub")
    c.subscriber.create_subscription(name=dlq_sub, topic=dlq_topic)
    topic, sub = make_topic_and_sub(
        c, dead_letter_policy={"dead_letter_topic": dlq_topic, "max_delivery_attempts": 5}
    )
    stored = c.subscriber.get_subscription(subscription=sub).dead_letter_policy
    assert stored.dead_letter_topic == dlq_topic
    assert stored.max_delivery_attempts == 5
    publish(c, topic, b"poison", origin="test")
    attempts = []
    for _ in range(5):
        (m,) = pull_until(c, sub, lambda r: len(r) >= 1)
        attempts.append(m.delivery_attempt)
        c.subscriber.modify_ack_deadline(
            subscription=sub, ack_ids=[m.ack_id], ack_deadline_seconds=0
        )
    assert attempts == [1, 2, 3, 4, 5]
    # The official emulator forwards lazily, when the source subscription is pulled again.
    assert _pull_now(c, sub) == []
    (dead,) = pull_until(c, dlq_sub, lambda r: len(r) >= 1, ack=True)
    assert dead.message.data == b"poison"
    attrs = dict(dead.message.attributes)
    assert attrs["origin"] == "test"
    assert attrs["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert attrs["CloudPubSubDeadLetterSourceSubscription"] == "sub-a"
    assert attrs["CloudPubSubDeadLetterSourceSubscriptionProject"] == c.project
    assert attrs["CloudPubSubDeadLetterSourceTopicPublishTime"].endswith("Z")


def test_filter_is_stored(clients: Clients) -> None:
    c = clients
    _, sub = make_topic_and_sub(c, filter='attributes.kind = "keep"')
    assert c.subscriber.get_subscription(subscription=sub).filter == 'attributes.kind = "keep"'


def test_streaming_pull_with_ordering_keys(clients: Clients) -> None:
    c = clients
    topic, sub = make_topic_and_sub(c, enable_message_ordering=True)
    cond = threading.Condition()
    seen: list[tuple[str, str]] = []

    def callback(message: Any) -> None:
        with cond:
            seen.append((message.ordering_key, message.data.decode()))
            cond.notify_all()
        message.ack()

    future = c.subscriber.subscribe(sub, callback)
    ordered_publisher = PublisherClient(
        publisher_options=PublisherOptions(enable_message_ordering=True)
    )
    try:
        for future_id in [
            ordered_publisher.publish(topic, f"{key}-{i}".encode(), ordering_key=key)
            for i in range(10)
            for key in ("k1", "k2")
        ]:
            future_id.result(timeout=WAIT_S)
        wait_for(lambda: len(seen) >= 20, cond, "20 ordered messages")
    finally:
        future.cancel()
        future.result(timeout=WAIT_S)
        ordered_publisher.stop()
        ordered_publisher.transport.close()
    for key in ("k1", "k2"):
        assert [d for k, d in seen if k == key] == [f"{key}-{i}" for i in range(10)]


# --------------------------------------------------------------------------- push


class _PushRecorder:
    """A ThreadingHTTPServer that records pushes and answers from a status script."""

    def __init__(self, statuses: list[int]) -> None:
        self.cond = threading.Condition()
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.answers: list[int] = []
        self._statuses = list(statuses)
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with recorder.cond:
                    status = recorder._statuses.pop(0) if recorder._statuses else 204
                    recorder.requests.append((self.path, dict(self.headers), json.loads(body)))
                    recorder.answers.append(status)
                    recorder.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/push/handler"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _PushRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)


def test_push_delivers_wrapped_json_and_retries_until_2xx(clients: Clients) -> None:
    c = clients
    with _PushRecorder([500, 503, 200]) as recorder:
        topic, sub = make_topic_and_sub(c, push_config={"push_endpoint": recorder.url})
        message_id = publish(c, topic, b'{"event":"login"}', source="contract", n="1")

        wait_for(lambda: 200 in recorder.answers, recorder.cond, "a successful push")
        with recorder.cond:
            requests = list(recorder.requests)
            answers = list(recorder.answers)
    assert answers[:3] == [500, 503, 200]
    for path, headers, body in requests:
        assert path == "/push/handler"
        content_type = {k.lower(): v for k, v in headers.items()}["content-type"]
        assert content_type.startswith("application/json")
        assert body["subscription"] == sub
        message = body["message"]
        assert base64.b64decode(message["data"]) == b'{"event":"login"}'
        assert message["attributes"] == {"source": "contract", "n": "1"}
        assert message["messageId"] == message["message_id"] == message_id
        assert message["publishTime"] == message["publish_time"]
        assert message["publishTime"].endswith("Z")


def test_push_then_switch_to_pull(clients: Clients) -> None:
    c = clients
    with _PushRecorder([]) as recorder:
        topic, sub = make_topic_and_sub(c, push_config={"push_endpoint": recorder.url})
        pushed_id = publish(c, topic, b"pushed")
        wait_for(lambda: len(recorder.requests) >= 1, recorder.cond, "the push")
        c.subscriber.modify_push_config(subscription=sub, push_config={})
        pulled_id = publish(c, topic, b"pulled")
        received = pull_until(c, sub, lambda r: len(r) >= 1, ack=True)
        assert [m.message.message_id for m in received] == [pulled_id]
        with recorder.cond:
            assert [r[2]["message"]["messageId"] for r in recorder.requests] == [pushed_id]


# --------------------------------------------------------------------------- builtin only


def test_builtin_applies_filters_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The official emulator stores a filter but delivers everything; ours applies it."""
    with PubSubEmulator(port=0) as emu:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emu.host_port)
        publisher = PublisherClient()
        subscriber = SubscriberClient()
        c = Clients("builtin", emu.host_port, publisher, subscriber, "proj-inproc")
        try:
            _, sub = make_topic_and_sub(
                c, "f", filter='attributes.kind = "keep" AND NOT attributes:skip'
            )
            topic = c.topic("topic-f")
            keep = publish(c, topic, b"1", kind="keep")
            publish(c, topic, b"2", kind="drop")
            publish(c, topic, b"3", kind="keep", skip="y")
            got = pull_until(c, sub, lambda r: len(r) >= 1, ack=True) + _pull_now(c, sub)
            assert [m.message.message_id for m in got] == [keep]
            with pytest.raises(gexc.InvalidArgument):
                subscriber.create_subscription(
                    request={
                        "name": c.sub("bad-filter"),
                        "topic": topic,
                        "filter": "attributes.k ==",
                    }
                )
        finally:
            subscriber.close()
            publisher.stop()
            publisher.transport.close()


def test_builtin_push_backoff_is_short_without_retry_policy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with PubSubEmulator(port=0) as emu, _PushRecorder([500, 500, 500]) as recorder:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emu.host_port)
        publisher = PublisherClient()
        subscriber = SubscriberClient()
        c = Clients("builtin", emu.host_port, publisher, subscriber, "proj-backoff")
        try:
            topic, _ = make_topic_and_sub(c, "p", push_config={"push_endpoint": recorder.url})
            started = time.monotonic()
            publisher.publish(topic, b"x").result(timeout=WAIT_S)
            wait_for(lambda: recorder.answers[-1:] == [204], recorder.cond, "success")
            # 0.1 + 0.2 + 0.4 s of backoff: well below the official emulator's ~3 s.
            assert time.monotonic() - started < 2.5
        finally:
            subscriber.close()
            publisher.stop()
            publisher.transport.close()


def test_filter_parser() -> None:
    pred = compile_filter(
        '(attributes.a = "1" OR hasPrefix(attributes.b, "pre")) AND -attributes.c != "x"'
    )
    assert pred is not None
    assert pred({"a": "1", "c": "x"})
    assert pred({"b": "prefix", "c": "x"})
    assert not pred({"a": "1"})
    assert not pred({"a": "2", "b": "nope", "c": "x"})
    assert compile_filter("  ") is None
    with pytest.raises(Exception, match="Invalid filter"):
        compile_filter("attributes.a ==")


def test_launcher_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_KIND", "builtin")
    assert pubsub_launcher.choose_kind("official") == "builtin"
    monkeypatch.delenv("PUBSUB_EMULATOR_KIND")
    expected = "official" if pubsub_launcher.official_emulator_path() else "builtin"
    assert pubsub_launcher.choose_kind() == expected
    assert pubsub_launcher.choose_kind("builtin") == "builtin"
    with pytest.raises(ValueError):
        pubsub_launcher.choose_kind("bogus")
    command = pubsub_launcher.emulator_command("builtin", "127.0.0.1", 1234)
    assert command[1:] == [
        "-m",
        "local_cloud.pubsub_emulator",
        "--host",
        "127.0.0.1",
        "--port",
        "1234",
    ]
    with pytest.raises(TimeoutError):
        pubsub_launcher.wait_until_ready(f"127.0.0.1:{free_port()}", 0.5)
