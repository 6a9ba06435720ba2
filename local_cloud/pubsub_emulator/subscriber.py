"""The ``google.pubsub.v1.Subscriber`` gRPC service: subscriptions, Pull and StreamingPull.

Unary RPCs act on the :class:`~local_cloud.pubsub_emulator.state.Broker` under its lock. Pull
waits for messages like real Pub/Sub (an empty Pull without ``return_immediately`` answers
shortly before the RPC deadline, or after 90 s without one). StreamingPull takes acks, modacks
and keep-alives on the request stream, read by its own thread, while it sends leased messages
within the stream's flow control; messages still leased when a stream ends stay leased until
their deadline, as in real Pub/Sub.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
from google.protobuf import duration_pb2
from google.pubsub_v1 import types as pt

from local_cloud.grpc_common import (
    RpcError,
    already_exists,
    invalid_argument,
    not_found,
    raw_rpc,
    rpc,
    service_handler,
)
from local_cloud.pubsub_emulator.filters import compile_filter
from local_cloud.pubsub_emulator.push import PushDelivery
from local_cloud.pubsub_emulator.state import (
    Broker,
    Leased,
    Stream,
    Subscription,
    check_name,
    project_page,
)

log = logging.getLogger("local_cloud.pubsub_emulator")

SERVICE_NAME = "google.pubsub.v1.Subscriber"
_DEFAULT_ACK_DEADLINE = 10
_RETENTION_7_DAYS = 7 * 24 * 3600
_EMPTY_PULL_MAX_WAIT = 90.0
_STREAM_BATCH = 1000


class Subscriber:
    """Subscription, pull and ack RPCs of one broker; push subscriptions get their workers
    from ``push``."""

    def __init__(self, broker: Broker, push: PushDelivery) -> None:
        self._b = broker
        self._push = push

    # ------------------------------------------------------------------ subscriptions

    @rpc(pt.Subscription, pt.Subscription)
    def create_subscription(self, request: Any) -> Any:
        check_name(request.name, "subscriptions")
        check_name(request.topic, "topics")
        deadline = request.ack_deadline_seconds or _DEFAULT_ACK_DEADLINE
        if not 1 <= deadline <= 600:
            raise invalid_argument("Invalid ack deadline given (must be between 1 and 600 seconds)")
        predicate = compile_filter(request.filter)
        policy = request.dead_letter_policy
        if policy.dead_letter_topic:
            check_name(policy.dead_letter_topic, "topics")
            attempts = policy.max_delivery_attempts or 5
            if not 5 <= attempts <= 100:
                raise invalid_argument("max_delivery_attempts must be between 5 and 100")
        with self._b.cond:
            if request.name in self._b.subs:
                raise already_exists("Subscription already exists")
            if request.topic not in self._b.topics:
                raise not_found("Topic not found")
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
            sub = Subscription(proto=proto, predicate=predicate)
            self._b.subs[request.name] = sub
            self._push.start_workers_locked(sub)
            return proto

    @rpc(pt.GetSubscriptionRequest, pt.Subscription)
    def get_subscription(self, request: Any) -> Any:
        with self._b.cond:
            return self._b.sub(request.subscription).proto

    @rpc(pt.ListSubscriptionsRequest, pt.ListSubscriptionsResponse)
    def list_subscriptions(self, request: Any) -> Any:
        with self._b.cond:
            page, token = project_page(self._b.subs, "subscriptions", request)
            subscriptions = [self._b.subs[n].proto for n in page]
            return pt.ListSubscriptionsResponse(subscriptions=subscriptions, next_page_token=token)

    @rpc(pt.DeleteSubscriptionRequest)
    def delete_subscription(self, request: Any) -> None:
        with self._b.cond:
            sub = self._b.sub(request.subscription)
            del self._b.subs[sub.name]
            sub.push_generation += 1
            for delivery in sub.leased.values():
                if delivery.owner is not None:
                    delivery.owner.outstanding -= 1
            self._b.cond.notify_all()

    @rpc(pt.ModifyPushConfigRequest)
    def modify_push_config(self, request: Any) -> None:
        with self._b.cond:
            sub = self._b.sub(request.subscription)
            sub.proto.push_config = request.push_config
            sub.push_generation += 1
            self._push.start_workers_locked(sub)
            self._b.cond.notify_all()

    # ------------------------------------------------------------------ pull and acks

    @raw_rpc(pt.PullRequest, pt.PullResponse)
    def pull(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            if request.max_messages <= 0:
                raise invalid_argument("max_messages must be positive")
            remaining = context.time_remaining()
            wait_total = _EMPTY_PULL_MAX_WAIT if remaining is None else remaining - 0.05
            give_up = time.monotonic() + max(0.0, wait_total)
            with self._b.cond:
                while True:
                    sub = self._b.sub(request.subscription)
                    leased = self._b.take_locked(
                        sub, request.max_messages, sub.proto.ack_deadline_seconds, None
                    )
                    if leased or request.return_immediately or self._b.stopped.is_set():
                        return pt.PullResponse(received_messages=self._b.received(sub, leased))
                    left = give_up - time.monotonic()
                    if left <= 0 or not context.is_active():
                        return pt.PullResponse()
                    self._b.wait_for_messages_locked(sub, min(left, 0.25))
        except RpcError as err:
            context.abort(err.code, err.message)

    @rpc(pt.AcknowledgeRequest)
    def acknowledge(self, request: Any) -> None:
        if not request.ack_ids:
            raise invalid_argument("No ack ids specified")
        with self._b.cond:
            self._b.ack_locked(self._b.sub(request.subscription), request.ack_ids)

    @rpc(pt.ModifyAckDeadlineRequest)
    def modify_ack_deadline(self, request: Any) -> None:
        if not request.ack_ids:
            raise invalid_argument("No ack ids specified")
        with self._b.cond:
            sub = self._b.sub(request.subscription)
            self._b.modack_locked(sub, request.ack_ids, request.ack_deadline_seconds)

    # ------------------------------------------------------------------ streaming pull

    def _apply_stream_request(self, name: str, request: Any, stream: Stream) -> None:
        if request.stream_ack_deadline_seconds:
            stream.ack_deadline = request.stream_ack_deadline_seconds
        if len(request.modify_deadline_ack_ids) != len(request.modify_deadline_seconds):
            raise invalid_argument(
                "modify_deadline_ack_ids and modify_deadline_seconds differ in size"
            )
        if not (request.ack_ids or request.modify_deadline_ack_ids):
            return
        with self._b.cond:
            sub = self._b.sub(name)
            self._b.ack_locked(sub, request.ack_ids)
            for ack_id, seconds in zip(
                request.modify_deadline_ack_ids, request.modify_deadline_seconds, strict=True
            ):
                self._b.modack_locked(sub, [ack_id], seconds)

    def _read_requests(self, name: str, requests: Iterator[Any], stream: Stream) -> None:
        try:
            for request in requests:
                try:
                    self._apply_stream_request(name, request, stream)
                except RpcError as err:
                    log.debug("ignoring bad stream request: %s", err.message)
        except Exception:  # stream cancelled or broken
            log.debug("streaming pull request stream ended", exc_info=True)
        finally:
            with self._b.cond:
                stream.closed = True
                self._b.cond.notify_all()

    @raw_rpc(pt.StreamingPullRequest, pt.StreamingPullResponse, streaming=True)
    def streaming_pull(
        self, request_iterator: Iterator[Any], context: grpc.ServicerContext
    ) -> Iterator[Any]:
        try:
            first = next(request_iterator)
        except StopIteration:
            return
        name = first.subscription
        try:
            with self._b.cond:
                sub = self._b.sub(name)
            deadline = first.stream_ack_deadline_seconds
            if not 10 <= deadline <= 600:
                raise invalid_argument("Invalid stream_ack_deadline_seconds (must be 10..600)")
            stream = Stream(
                ack_deadline=deadline,
                max_outstanding=first.max_outstanding_messages or _STREAM_BATCH,
            )
            self._apply_stream_request(name, first, stream)
        except RpcError as err:
            context.abort(err.code, err.message)
            return
        properties = pt.StreamingPullResponse.SubscriptionProperties(
            message_ordering_enabled=sub.ordered
        )
        reader = threading.Thread(
            target=self._read_requests,
            args=(name, request_iterator, stream),
            name="pubsub-stream-reader",
            daemon=True,
        )
        reader.start()
        try:
            while True:
                with self._b.cond:
                    leased: Leased = []
                    while not leased:
                        if self._b.stopped.is_set() or stream.closed or not context.is_active():
                            return
                        if self._b.subs.get(name) is not sub:
                            context.abort(grpc.StatusCode.NOT_FOUND, "Subscription not found")
                        room = min(stream.max_outstanding - stream.outstanding, _STREAM_BATCH)
                        leased = self._b.take_locked(sub, room, stream.ack_deadline, stream)
                        if not leased:
                            self._b.wait_for_messages_locked(sub, 0.25)
                    received = self._b.received(sub, leased)
                yield pt.StreamingPullResponse(
                    received_messages=received, subscription_properties=properties
                )
        finally:
            with self._b.cond:
                stream.closed = True
                for delivery in sub.leased.values():
                    if delivery.owner is stream:
                        delivery.owner = None
                stream.outstanding = 0

    def generic_handler(self) -> grpc.GenericRpcHandler:
        return service_handler(SERVICE_NAME, self, log)
