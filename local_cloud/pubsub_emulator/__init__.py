"""A small, dependency-light Google Cloud Pub/Sub emulator (gRPC, in-memory).

Why our own: Google's emulator needs Java and the Cloud SDK, which not every machine has, and
it ignores subscription filters; this one is pure Python and always available.

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

Push subscriptions POST the wrapped JSON body real Pub/Sub sends (see
:mod:`local_cloud.pubsub_emulator.push`). HTTP 102/200/201/202/204 acknowledge; any other
status, a timeout (the ack deadline) or a connection error is a nack and the message is retried
with exponential backoff: from the subscription's ``retry_policy`` (``minimum_backoff`` doubling
up to ``maximum_backoff``; 10 s / 600 s when the policy leaves them unset) or, **when the
subscription has no retry policy, a deliberately short local backoff of 0.1 s doubling up to
10 s** so that local pipelines recover quickly (real Pub/Sub's push backoff goes up to 60 s).

Modules: :mod:`~local_cloud.pubsub_emulator.state` (topics, subscriptions, messages, leases and
the delivery rules), :mod:`~local_cloud.pubsub_emulator.filters` (the filter language),
:mod:`~local_cloud.pubsub_emulator.push` (push delivery),
:mod:`~local_cloud.pubsub_emulator.publisher` and :mod:`~local_cloud.pubsub_emulator.subscriber`
(the gRPC services), :mod:`~local_cloud.pubsub_emulator.emulator` (the server's lifecycle) and
``__main__`` (the command line).

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

from local_cloud.pubsub_emulator.emulator import PubSubEmulator
from local_cloud.pubsub_emulator.filters import compile_filter

__all__ = ["PubSubEmulator", "compile_filter"]
