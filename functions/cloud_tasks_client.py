"""Factory for the Cloud Tasks client used by the functions.

Why a factory: in production the functions talk to the real Cloud Tasks API with the runtime's
service-account credentials, but locally (tests, the local cloud) they must talk to our emulator
(``local_cloud.tasks_emulator``), which speaks plain gRPC without TLS or credentials. Unlike
Pub/Sub or Storage, the Cloud Tasks client library does not honour an ``*_EMULATOR_HOST``
variable by itself, so this module does it: with ``CLOUD_TASKS_EMULATOR_HOST=host:port`` set, the
client is built on an insecure channel and sends no credentials (nothing to look up, nothing to
leak); without it, the library's default client (Application Default Credentials) is returned.
"""

from __future__ import annotations

import os

import grpc
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports.grpc import CloudTasksGrpcTransport

EMULATOR_HOST_ENV = "CLOUD_TASKS_EMULATOR_HOST"


def make_tasks_client() -> tasks_v2.CloudTasksClient:
    """Return a Cloud Tasks client: the emulator's if ``CLOUD_TASKS_EMULATOR_HOST`` is set.

    The emulator client is anonymous: a transport given an explicit channel ignores credentials,
    so no Application Default Credentials are looked up.
    """
    host = os.environ.get(EMULATOR_HOST_ENV, "").strip()
    if host:
        channel = grpc.insecure_channel(host)
        return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
    return tasks_v2.CloudTasksClient()
