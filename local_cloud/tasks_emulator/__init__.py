"""A local Cloud Tasks emulator (gRPC ``google.cloud.tasks.v2.CloudTasks``) with real dispatch.

Why our own: the emulators on PyPI ignore ``retry_config``, accept duplicate task names and send
no OIDC token, which are exactly the behaviours the importer relies on. This one dispatches HTTP
tasks with Cloud Tasks' headers and an OIDC-shaped bearer token, retries with the queue's
exponential backoff, honours ``max_concurrent_dispatches`` and the rate limit, and rejects task
names reused within a tombstone period.

Run it with ``python -m local_cloud.tasks_emulator --host 127.0.0.1 --port 8123`` (prints
``READY host:port``), or in-process with :class:`TasksEmulator`. Point clients at it with
``CLOUD_TASKS_EMULATOR_HOST`` and :func:`functions.cloud_tasks_client.make_tasks_client`.
"""

from local_cloud.tasks_emulator.core import RetryPolicy, RpcError, TasksBackend
from local_cloud.tasks_emulator.oidc import make_oidc_token
from local_cloud.tasks_emulator.service import CloudTasksService, TasksEmulator

__all__ = [
    "CloudTasksService",
    "RetryPolicy",
    "RpcError",
    "TasksBackend",
    "TasksEmulator",
    "make_oidc_token",
]
