"""The subscriber people copy (``examples/subscriber.py``) does what its docstring promises.

Why against the emulators: deduplication and redelivery are about what Pub/Sub does with an
acked or nacked message, so the example runs its real streaming pull against Google's emulator
(skipped where it is not installed) and our built-in one, started once per module like the
Pub/Sub contract tests. The last test needs no emulator: it looks at ack and nack directly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from google.cloud.pubsub_v1 import PublisherClient

from examples.subscriber import ALERT_FILTER, ResultSubscriber, create_subscription, run
from local_cloud import pubsub_launcher
from local_cloud.processes import free_port, wait_for

pytestmark = pytest.mark.emulator

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WAIT_S = 30.0


@dataclass(frozen=True)
class Emulator:
    kind: str
    host: str


@pytest.fixture(scope="module", params=["official", "builtin"])
def emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    kind = request.param
    if kind == "official" and pubsub_launcher.official_emulator_path() is None:
        pytest.skip("Google's cloud-pubsub-emulator is not installed")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PUBSUB_EMULATOR_HOST"}
    proc = subprocess.Popen(
        pubsub_launcher.emulator_command(kind, "127.0.0.1", port),
        cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,  # own group: sh + java
    )  # fmt: skip
    try:
        pubsub_launcher.wait_until_ready(f"127.0.0.1:{port}", 60)
        yield Emulator(kind, f"127.0.0.1:{port}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


class Results:
    """A results topic with the example's filtered subscription, and a way to publish."""

    def __init__(self, emulator: Emulator) -> None:
        self.kind = emulator.kind
        project = f"proj-{uuid.uuid4().hex[:10]}"
        self.topic = f"projects/{project}/topics/import-results"
        self.subscription = f"projects/{project}/subscriptions/import-alerts"
        self.publisher = PublisherClient()
        self.publisher.create_topic(name=self.topic)
        create_subscription(self.subscription, self.topic, ALERT_FILTER, ack_deadline_s=10)

    def publish(self, status: str, generation: int = 1) -> str:
        """Publish a result as the importer does (body plus attributes); its ``result_id``."""
        result_id = f"leanplum-imports/incoming/a.csv#{generation}"
        body = {"result_id": result_id, "status": status,
                "file": {"bucket": "leanplum-imports", "object": "incoming/a.csv",
                         "generation": str(generation)}}  # fmt: skip
        self.publisher.publish(
            self.topic, json.dumps(body).encode(), status=status,
            bucket="leanplum-imports", object="incoming/a.csv",
        ).result(timeout=WAIT_S)  # fmt: skip
        return result_id


@pytest.fixture
def results(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Results]:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
    topic = Results(emulator)
    yield topic
    topic.publisher.stop()


def run_until(results: Results, callback: ResultSubscriber, done: Callable[[], bool]) -> None:
    """Run the example's own pull loop in a thread until ``done()``, then stop it."""
    stop = threading.Event()
    worker = threading.Thread(target=run, args=(results.subscription, callback, stop))
    worker.start()
    try:
        wait_for(done, WAIT_S, f"subscriber counts {callback.counts}")
    finally:
        stop.set()
        worker.join(timeout=WAIT_S)
    assert not worker.is_alive()


def test_a_result_published_twice_is_handled_once(results: Results) -> None:
    handled: list[str] = []
    callback = ResultSubscriber(lambda result: handled.append(result["result_id"]))
    result_id = results.publish("FAILED")
    assert results.publish("FAILED") == result_id  # a second message, same result

    run_until(results, callback, lambda: callback.counts["duplicates"] == 1)

    assert handled == [result_id]
    assert callback.counts["handled"] == 1


def test_a_result_whose_handler_raises_is_not_acked_and_comes_back(results: Results) -> None:
    calls: list[str] = []

    def flaky(result: dict[str, Any]) -> None:
        calls.append(result["result_id"])
        if len(calls) == 1:
            raise RuntimeError("the ticket system is down")

    callback = ResultSubscriber(flaky)
    result_id = results.publish("TIMED_OUT")

    run_until(results, callback, lambda: callback.counts["handled"] == 1)

    assert calls == [result_id, result_id]  # nacked, redelivered, handled the second time
    assert callback.counts["failed"] == 1


def test_successes_never_reach_the_handler(results: Results) -> None:
    handled: list[str] = []
    callback = ResultSubscriber(lambda result: handled.append(result["status"]))
    results.publish("SUCCEEDED", generation=1)
    results.publish("PARTIAL", generation=2)
    # Our emulator applies the subscription filter: SUCCEEDED is never delivered. Google's
    # stores it but delivers everything: the callback's own check skips SUCCEEDED.
    skipped = 1 if results.kind == "official" else 0

    run_until(
        results, callback,
        lambda: callback.counts["handled"] == 1 and callback.counts["skipped"] == skipped,
    )  # fmt: skip

    assert handled == ["PARTIAL"]
    assert callback.counts["skipped"] == skipped


class FakeMessage:
    def __init__(self, status: str, data: bytes) -> None:
        self.attributes = {"status": status}
        self.data = data
        self.calls: list[str] = []

    def ack(self) -> None:
        self.calls.append("ack")

    def nack(self) -> None:
        self.calls.append("nack")


def test_acknowledged_only_after_handling() -> None:
    order: list[str] = []
    body = json.dumps({"result_id": "b/o#1", "status": "FAILED"}).encode()
    ok, failing, again = (FakeMessage("FAILED", body) for _ in range(3))

    def boom(_: dict[str, Any]) -> None:
        raise RuntimeError("down")

    ResultSubscriber(boom)(failing)
    callback = ResultSubscriber(lambda _: order.append(f"handled, then {ok.calls}"))
    callback(ok)
    callback(again)

    assert failing.calls == ["nack"]
    assert order == ["handled, then []"] and ok.calls == ["ack"]
    assert again.calls == ["ack"] and callback.counts["duplicates"] == 1
