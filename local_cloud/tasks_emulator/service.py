"""The ``google.cloud.tasks.v2.CloudTasks`` gRPC service on top of :class:`TasksBackend`.

No generated stubs: a generic handler maps each method path to a function and uses the proto-plus
message classes of ``google.cloud.tasks_v2`` to (de)serialise requests and responses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from google.cloud import tasks_v2
from google.protobuf import empty_pb2

from local_cloud.tasks_emulator.core import DEFAULT_TOMBSTONE_SECONDS, RpcError, TasksBackend

log = logging.getLogger("local_cloud.tasks_emulator")

SERVICE_NAME = "google.cloud.tasks.v2.CloudTasks"


def _serialize_empty(_: empty_pb2.Empty) -> bytes:
    return b""


def _handler(
    fn: Callable[[Any], Any],
    request_type: Any,
    response_serializer: Callable[[Any], bytes],
) -> grpc.RpcMethodHandler:
    def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(request)
        except RpcError as exc:
            context.abort(exc.code, exc.message)
        except Exception:
            log.exception("internal error in %s", getattr(fn, "__name__", fn))
            context.abort(grpc.StatusCode.INTERNAL, "internal error in the Cloud Tasks emulator")

    return grpc.unary_unary_rpc_method_handler(
        behaviour,
        request_deserializer=request_type.deserialize,
        response_serializer=response_serializer,
    )


class CloudTasksService:
    """Request/response adaptation of the CloudTasks RPCs."""

    def __init__(self, backend: TasksBackend) -> None:
        self._b = backend

    def create_queue(self, r: tasks_v2.CreateQueueRequest) -> tasks_v2.Queue:
        return self._b.create_queue(r.parent, r.queue)

    def get_queue(self, r: tasks_v2.GetQueueRequest) -> tasks_v2.Queue:
        return self._b.get_queue(r.name)

    def list_queues(self, r: tasks_v2.ListQueuesRequest) -> tasks_v2.ListQueuesResponse:
        queues, token = self._b.list_queues(r.parent, r.page_size, r.page_token)
        return tasks_v2.ListQueuesResponse(queues=queues, next_page_token=token)

    def update_queue(self, r: tasks_v2.UpdateQueueRequest) -> tasks_v2.Queue:
        paths = list(r.update_mask.paths) if "update_mask" in r else []
        return self._b.update_queue(r.queue, paths)

    def delete_queue(self, r: tasks_v2.DeleteQueueRequest) -> empty_pb2.Empty:
        self._b.delete_queue(r.name)
        return empty_pb2.Empty()

    def purge_queue(self, r: tasks_v2.PurgeQueueRequest) -> tasks_v2.Queue:
        return self._b.purge_queue(r.name)

    def pause_queue(self, r: tasks_v2.PauseQueueRequest) -> tasks_v2.Queue:
        return self._b.set_queue_state(r.name, tasks_v2.Queue.State.PAUSED)

    def resume_queue(self, r: tasks_v2.ResumeQueueRequest) -> tasks_v2.Queue:
        return self._b.set_queue_state(r.name, tasks_v2.Queue.State.RUNNING)

    def create_task(self, r: tasks_v2.CreateTaskRequest) -> tasks_v2.Task:
        return self._b.create_task(r.parent, r.task, r.response_view)

    def get_task(self, r: tasks_v2.GetTaskRequest) -> tasks_v2.Task:
        return self._b.get_task(r.name, r.response_view)

    def list_tasks(self, r: tasks_v2.ListTasksRequest) -> tasks_v2.ListTasksResponse:
        tasks, token = self._b.list_tasks(r.parent, r.response_view, r.page_size, r.page_token)
        return tasks_v2.ListTasksResponse(tasks=tasks, next_page_token=token)

    def delete_task(self, r: tasks_v2.DeleteTaskRequest) -> empty_pb2.Empty:
        self._b.delete_task(r.name)
        return empty_pb2.Empty()

    def run_task(self, r: tasks_v2.RunTaskRequest) -> tasks_v2.Task:
        return self._b.run_task(r.name, r.response_view)

    def generic_handler(self) -> grpc.GenericRpcHandler:
        q, t = tasks_v2.Queue.serialize, tasks_v2.Task.serialize
        methods = {
            "CreateQueue": _handler(self.create_queue, tasks_v2.CreateQueueRequest, q),
            "GetQueue": _handler(self.get_queue, tasks_v2.GetQueueRequest, q),
            "ListQueues": _handler(
                self.list_queues, tasks_v2.ListQueuesRequest, tasks_v2.ListQueuesResponse.serialize
            ),
            "UpdateQueue": _handler(self.update_queue, tasks_v2.UpdateQueueRequest, q),
            "DeleteQueue": _handler(
                self.delete_queue, tasks_v2.DeleteQueueRequest, _serialize_empty
            ),
            "PurgeQueue": _handler(self.purge_queue, tasks_v2.PurgeQueueRequest, q),
            "PauseQueue": _handler(self.pause_queue, tasks_v2.PauseQueueRequest, q),
            "ResumeQueue": _handler(self.resume_queue, tasks_v2.ResumeQueueRequest, q),
            "CreateTask": _handler(self.create_task, tasks_v2.CreateTaskRequest, t),
            "GetTask": _handler(self.get_task, tasks_v2.GetTaskRequest, t),
            "ListTasks": _handler(
                self.list_tasks, tasks_v2.ListTasksRequest, tasks_v2.ListTasksResponse.serialize
            ),
            "DeleteTask": _handler(self.delete_task, tasks_v2.DeleteTaskRequest, _serialize_empty),
            "RunTask": _handler(self.run_task, tasks_v2.RunTaskRequest, t),
        }
        return grpc.method_handlers_generic_handler(SERVICE_NAME, methods)


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
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="tasks-emulator-grpc")
        )
        server.add_generic_rpc_handlers((CloudTasksService(self.backend).generic_handler(),))
        bound = server.add_insecure_port(f"{self.host}:{self.port}")
        if bound == 0:
            raise OSError(f"cannot listen on {self.host}:{self.port}")
        self.port = bound
        self.backend.start()
        server.start()
        self._server = server
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
