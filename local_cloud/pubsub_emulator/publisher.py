"""The ``google.pubsub.v1.Publisher`` gRPC service: topics and publishing.

Each RPC validates its request like real Pub/Sub (resource names, empty messages), then acts
on the :class:`~local_cloud.pubsub_emulator.state.Broker` under its lock. Deleting a topic
leaves its subscriptions in place, attached to ``_deleted-topic_`` as real Pub/Sub does.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from google.pubsub_v1 import types as pt

from local_cloud.grpc_common import (
    already_exists,
    invalid_argument,
    not_found,
    rpc,
    service_handler,
)
from local_cloud.pubsub_emulator.state import Broker, check_name, page_of, project_page

log = logging.getLogger("local_cloud.pubsub_emulator")

SERVICE_NAME = "google.pubsub.v1.Publisher"
DELETED_TOPIC = "_deleted-topic_"


class Publisher:
    """Topic and publish RPCs of one broker."""

    def __init__(self, broker: Broker) -> None:
        self._b = broker

    @rpc(pt.Topic, pt.Topic)
    def create_topic(self, request: Any) -> Any:
        check_name(request.name, "topics")
        with self._b.cond:
            if request.name in self._b.topics:
                raise already_exists("Topic already exists")
            topic = pt.Topic(name=request.name, labels=dict(request.labels))
            if request.message_retention_duration:
                topic.message_retention_duration = request.message_retention_duration
            self._b.topics[request.name] = topic
            return topic

    @rpc(pt.GetTopicRequest, pt.Topic)
    def get_topic(self, request: Any) -> Any:
        check_name(request.topic, "topics")
        with self._b.cond:
            topic = self._b.topics.get(request.topic)
            if topic is None:
                raise not_found("Topic not found")
            return topic

    @rpc(pt.ListTopicsRequest, pt.ListTopicsResponse)
    def list_topics(self, request: Any) -> Any:
        with self._b.cond:
            page, token = project_page(self._b.topics, "topics", request)
            topics = [self._b.topics[n] for n in page]
            return pt.ListTopicsResponse(topics=topics, next_page_token=token)

    @rpc(pt.DeleteTopicRequest)
    def delete_topic(self, request: Any) -> None:
        check_name(request.topic, "topics")
        with self._b.cond:
            if self._b.topics.pop(request.topic, None) is None:
                raise not_found("Topic not found")
            for sub in self._b.subs.values():
                if sub.proto.topic == request.topic:
                    sub.proto.topic = DELETED_TOPIC

    @rpc(pt.ListTopicSubscriptionsRequest, pt.ListTopicSubscriptionsResponse)
    def list_topic_subscriptions(self, request: Any) -> Any:
        check_name(request.topic, "topics")
        with self._b.cond:
            if request.topic not in self._b.topics:
                raise not_found("Topic not found")
            names = (n for n, s in self._b.subs.items() if s.proto.topic == request.topic)
            page, token = page_of(names, request)
            return pt.ListTopicSubscriptionsResponse(subscriptions=page, next_page_token=token)

    @rpc(pt.PublishRequest, pt.PublishResponse)
    def publish(self, request: Any) -> Any:
        check_name(request.topic, "topics")
        if not request.messages:
            raise invalid_argument("The request contains no messages")
        for message in request.messages:
            if not message.data and not message.attributes:
                raise invalid_argument("Some messages are empty")
        with self._b.cond:
            if request.topic not in self._b.topics:
                raise not_found("Topic not found")
            ids = [self._b.publish_locked(request.topic, m) for m in request.messages]
            return pt.PublishResponse(message_ids=ids)

    def generic_handler(self) -> grpc.GenericRpcHandler:
        return service_handler(SERVICE_NAME, self, log)
