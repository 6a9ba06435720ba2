""":class:`PubSubEmulator`: one broker, its push workers and both gRPC services on one port.

This is the object to start in-process (tests) or from ``__main__`` (the local cloud); it owns
the lifecycle: the gRPC server, the ack-deadline reaper and the push worker threads, all stopped
by :meth:`PubSubEmulator.stop`.
"""

from __future__ import annotations

import threading

import grpc

from local_cloud.grpc_common import start_server
from local_cloud.pubsub_emulator.publisher import Publisher
from local_cloud.pubsub_emulator.push import PUSH_WORKERS_PER_SUBSCRIPTION, PushDelivery
from local_cloud.pubsub_emulator.state import Broker
from local_cloud.pubsub_emulator.subscriber import Subscriber


class PubSubEmulator:
    """In-memory Pub/Sub emulator served over insecure gRPC."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        max_workers: int = 64,
        push_workers: int = PUSH_WORKERS_PER_SUBSCRIPTION,
    ) -> None:
        """``max_workers`` bounds concurrent RPCs (each StreamingPull holds one for its life);
        ``push_workers`` is the number of concurrent POSTs per push subscription."""
        self.host = host
        self.port = int(port)
        self._max_workers = max_workers
        self._broker = Broker()
        push = PushDelivery(self._broker, push_workers)
        self._handlers = (
            Publisher(self._broker).generic_handler(),
            Subscriber(self._broker, push).generic_handler(),
        )
        self._server: grpc.Server | None = None

    @property
    def address(self) -> str:
        """``host:port`` to put in ``PUBSUB_EMULATOR_HOST``."""
        return f"{self.host}:{self.port}"

    @property
    def host_port(self) -> str:
        return self.address

    def start(self) -> int:
        """Start serving; returns the bound port."""
        self._server, self.port = start_server(
            self.host,
            self.port,
            self._handlers,
            max_workers=self._max_workers,
            thread_name_prefix="pubsub-emulator",
            options=[("grpc.so_reuseport", 0)],
        )
        self._broker.add_thread(
            threading.Thread(target=self._broker.reap_loop, name="pubsub-reaper", daemon=True)
        )
        return self.port

    def stop(self, grace: float = 1.0) -> None:
        """Stop serving and all background threads."""
        broker = self._broker
        broker.stopped.set()
        with broker.cond:
            broker.cond.notify_all()
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None
        for thread in broker.threads:
            thread.join(timeout=grace + 5)
        broker.threads.clear()

    def __enter__(self) -> PubSubEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
