"""A local Cloud Tasks emulator (gRPC ``google.cloud.tasks.v2.CloudTasks``) with real dispatch.

Why our own: the emulators on PyPI ignore ``retry_config``, accept duplicate task names and send
no OIDC token, which are exactly the behaviours the importer relies on. This one dispatches HTTP
tasks with Cloud Tasks' headers and an OIDC-shaped bearer token, retries with the queue's
exponential backoff, honours ``max_concurrent_dispatches`` and the rate limit, and rejects task
names reused within a tombstone period.

Run it with ``python -m local_cloud.tasks_emulator --host 127.0.0.1 --port 8123`` (prints
``READY host:port``), or in-process with :class:`TasksEmulator`. Point clients at it with
``CLOUD_TASKS_EMULATOR_HOST`` and :func:`functions.cloud_tasks_client.make_tasks_client`.

Modules: :mod:`~local_cloud.tasks_emulator.state` (queues and tasks, their limits and checks),
:mod:`~local_cloud.tasks_emulator.retry` (backoff and give-up),
:mod:`~local_cloud.tasks_emulator.dispatch` (one HTTP attempt),
:mod:`~local_cloud.tasks_emulator.oidc` (the bearer token),
:mod:`~local_cloud.tasks_emulator.core` (the backend: state over time, scheduler, dispatchers),
:mod:`~local_cloud.tasks_emulator.service` (the gRPC service) and ``__main__``.
"""

from local_cloud.grpc_common import RpcError
from local_cloud.tasks_emulator.core import TasksBackend
from local_cloud.tasks_emulator.oidc import make_oidc_token
from local_cloud.tasks_emulator.retry import RetryPolicy
from local_cloud.tasks_emulator.service import CloudTasksService, TasksEmulator

__all__ = [
    "CloudTasksService",
    "RetryPolicy",
    "RpcError",
    "TasksBackend",
    "TasksEmulator",
    "make_oidc_token",
]
