"""The local cloud's buckets, topics and subscriptions, created as ``infra/`` creates them.

Kept apart from :mod:`local_cloud.stack`, which starts the processes: these are the one-off
calls that give the emulators the resources the functions expect (the Cloud Tasks queues are
in :mod:`local_cloud.queues`).
"""

from __future__ import annotations

from local_cloud.stack_settings import (
    BUCKET,
    INGEST_SUBSCRIPTION,
    LEANPLUM_BUCKET_NAME,
    MANUAL_BUCKET,
    NOTIFICATIONS_TOPIC,
    PROJECT,
    RESULTS_SUBSCRIPTION,
    RESULTS_TOPIC,
    STATE_BUCKET,
    fake_gcs_binary,
)

#: Every bucket the local cloud creates: uploads, manual delivery, the importer's state and
#: the stand-in for Leanplum's own bucket.
BUCKETS = (BUCKET, MANUAL_BUCKET, STATE_BUCKET, LEANPLUM_BUCKET_NAME)


def fake_gcs_command(port: int) -> list[str]:
    """fake-gcs-server in memory, publishing ``OBJECT_FINALIZE`` of the upload bucket only
    (as the cloud's notification config does) to the notifications topic."""
    return [
        str(fake_gcs_binary()),
        "-backend", "memory",
        "-scheme", "http",
        "-host", "127.0.0.1",
        "-port", str(port),
        "-external-url", f"http://127.0.0.1:{port}",
        "-event.pubsub-project-id", PROJECT,
        "-event.pubsub-topic", NOTIFICATIONS_TOPIC,
        "-event.bucket", BUCKET,
        "-event.list", "finalize",
        "-log-level", "warn",
    ]  # fmt: skip


def create_buckets() -> None:
    """Create :data:`BUCKETS` in the emulator that ``STORAGE_EMULATOR_HOST`` names."""
    from functions import gcs

    client = gcs.make_storage_client()
    for bucket in BUCKETS:
        client.create_bucket(bucket)


def create_topics() -> None:
    """The notifications and results topics, and the subscription ``results`` reads."""
    from google.cloud.pubsub import PublisherClient, SubscriberClient

    publisher = PublisherClient()
    for topic in (NOTIFICATIONS_TOPIC, RESULTS_TOPIC):
        publisher.create_topic(name=f"projects/{PROJECT}/topics/{topic}")
    SubscriberClient().create_subscription(
        name=f"projects/{PROJECT}/subscriptions/{RESULTS_SUBSCRIPTION}",
        topic=f"projects/{PROJECT}/topics/{RESULTS_TOPIC}",
        ack_deadline_seconds=60,
    )


def create_ingest_push(relay_port: int, min_backoff_s: float) -> None:
    """The push subscription that feeds the relay (Eventarc's own subscription in the cloud);
    its backoff paces redeliveries of events the ingest function failed."""
    from google.cloud.pubsub import SubscriberClient
    from google.protobuf import duration_pb2

    backoff = duration_pb2.Duration()
    backoff.FromNanoseconds(int(min_backoff_s * 1e9))
    SubscriberClient().create_subscription(
        request={
            "name": f"projects/{PROJECT}/subscriptions/{INGEST_SUBSCRIPTION}",
            "topic": f"projects/{PROJECT}/topics/{NOTIFICATIONS_TOPIC}",
            "push_config": {"push_endpoint": f"http://127.0.0.1:{relay_port}/"},
            "ack_deadline_seconds": 600,
            "retry_policy": {"minimum_backoff": backoff, "maximum_backoff": {"seconds": 10}},
        }
    )
