"""The ``google.cloud.tasks.v2.CloudTasks`` gRPC service on top of :class:`TasksBackend`.

Kept apart from the backend so that the backend speaks in queues and tasks, not requests: each
method marked with :func:`~local_cloud.grpc_common.rpc` unpacks one request, calls the backend
and wraps its answer; the proto-plus message classes of ``google.cloud.tasks_v2`` (de)serialise
them, so no generated stubs are needed.
"""

from __future__ import annotations

import logging

import grpc
from google.cloud import tasks_v2
from google.protobuf import empty_pb2

from local_cloud.grpc_common import rpc, service_handler, start_server
from local_cloud.tasks_emulator.core import TasksBackend
from local_cloud.tasks_emulator.state import DEFAULT_TOMBSTONE_SECONDS

log = logging.getLogger("local_cloud.tasks_emulator")

SERVICE_NAME = "google.cloud.tasks.v2.CloudTasks"


class CloudTasksService:
    """Request/response adaptation of the CloudTasks RPCs."""

    def __init__(self, backend: TasksBackend) -> None:
        self._b = backend

    @rpc(tasks_v2.CreateQueueRequest, tasks_v2.Queue)
    def create_queue(self, r: tasks_v2.CreateQueueRequest) -> tasks_v2.Queue:
        return self._b.create_queue(r.parent, r.queue)

    @rpc(tasks_v2.GetQueueRequest, tasks_v2.Queue)
    def get_queue(self, r: tasks_v2.GetQueueRequest) -> tasks_v2.Queue:
        return self._b.get_queue(r.name)

    @rpc(tasks_v2.ListQueuesRequest, tasks_v2.ListQueuesResponse)
    def list_queues(self, r: tasks_v2.ListQueuesRequest) -> tasks_v2.ListQueuesResponse:
        queues, token = self._b.list_queues(r.parent, r.page_size, r.page_token)
        return tasks_v2.ListQueuesResponse(queues=queues, next_page_token=token)

    @rpc(tasks_v2.UpdateQueueRequest, tasks_v2.Queue)
    def update_queue(self, r: tasks_v2.UpdateQueueRequest) -> tasks_v2.Queue:
        paths = list(r.update_mask.paths) if "update_mask" in r else []
        return self._b.update_queue(r.queue, paths)

    @rpc(tasks_v2.DeleteQueueRequest)
    def delete_queue(self, r: tasks_v2.DeleteQueueRequest) -> empty_pb2.Empty:
        self._b.delete_queue(r.name)
        return empty_pb2.Empty()

    @rpc(tasks_v2.PurgeQueueRequest, tasks_v2.Queue)
    def purge_queue(self, r: tasks_v2.PurgeQueueRequest) -> tasks_v2.Queue:
        return self._b.purge_queue(r.name)

    @rpc(tasks_v2.PauseQueueRequest, tasks_v2.Queue)
    def pause_queue(self, r: tasks_v2.PauseQueueRequest) -> tasks_v2.Queue:
        return self._b.set_queue_state(r.name, tasks_v2.Queue.State.PAUSED)

    @rpc(tasks_v2.ResumeQueueRequest, tasks_v2.Queue)
    def resume_queue(self, r: tasks_v2.ResumeQueueRequest) -> tasks_v2.Queue:
        return self._b.set_queue_state(r.name, tasks_v2.Queue.State.RUNNING)

    @rpc(tasks_v2.CreateTaskRequest, tasks_v2.Task)
    def create_task(self, r: tasks_v2.CreateTaskRequest) -> tasks_v2.Task:
        return self._b.create_task(r.parent, r.task, r.response_view)

    @rpc(tasks_v2.GetTaskRequest, tasks_v2.Task)
    def get_task(self, r: tasks_v2.GetTaskRequest) -> tasks_v2.Task:
        return self._b.get_task(r.name, r.response_view)

    @rpc(tasks_v2.ListTasksRequest, tasks_v2.ListTasksResponse)
    def list_tasks(self, r: tasks_v2.ListTasksRequest) -> tasks_v2.ListTasksResponse:
        tasks, token = self._b.list_tasks(r.parent, r.response_view, r.page_size, r.page_token)
        return tasks_v2.ListTasksResponse(tasks=tasks, next_page_token=token)

    @rpc(tasks_v2.DeleteTaskRequest)
    def delete_task(self, r: tasks_v2.DeleteTaskRequest) -> empty_pb2.Empty:
        self._b.delete_task(r.name)
        return empty_pb2.Empty()

    @rpc(tasks_v2.RunTaskRequest, tasks_v2.Task)
    def run_task(self, r: tasks_v2.RunTaskRequest) -> tasks_v2.Task:
        return self._b.run_task(r.name, r.response_view)

    def generic_handler(self) -> grpc.GenericRpcHandler:
        return service_handler(SERVICE_NAME, self, log)


class TasksEmulator:
    """A Cloud Tasks emulator serving gRPC on ``host:port`` (port 0: a free port).

    Usable in-process::

        emulator = TasksEmulator(port=0, tombstone_seconds=60)
        emulator.start()
        os.environ["CLOUD_TASKS_EMULATOR_HOST"] = emulator.address
        ...
        emulator.stop()
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        tombstone_seconds: float = DEFAULT_TOMBSTONE_SECONDS,
        dispatch_workers: int = 32,
    ) -> None:
        self.host = host
        self.port = port
        self.backend = TasksBackend(
            tombstone_seconds=tombstone_seconds, dispatch_workers=dispatch_workers
        )
        self._server: grpc.Server | None = None

    @property
    def address(self) -> str:
        """``host:port`` to put in ``CLOUD_TASKS_EMULATOR_HOST``."""
        return f"{self.host}:{self.port}"

    def start(self) -> TasksEmulator:
        self._server, self.port = start_server(
            self.host,
            self.port,
            (CloudTasksService(self.backend).generic_handler(),),
            max_workers=16,
            thread_name_prefix="tasks-emulator-grpc",
        )
        self.backend.start()
        log.info("Cloud Tasks emulator listening on %s", self.address)
        return self

    def stop(self, grace: float = 1.0) -> None:
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None
        self.backend.stop()

    def __enter__(self) -> TasksEmulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
