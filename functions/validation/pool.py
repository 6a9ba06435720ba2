"""A small ordered pool of worker processes for the parallel path.

Why not ``multiprocessing`` or ``concurrent.futures``: their ``spawn`` start method imports
the parent's ``__main__`` module again in every worker (under gunicorn or functions-framework,
the whole server), and ``fork`` copies a process whose gRPC and logging threads may hold
locks. Here each worker is a fresh ``python -c`` that imports only the validation package and
talks over its stdin and stdout: length-prefixed pickles, tasks dealt round-robin, results
read back in the order the tasks were given, which is the order the caller needs anyway.
A thread in the worker keeps reading its stdin, so neither side can block the other.
"""

from __future__ import annotations

import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

_HEADER = struct.Struct("<Q")
#: The directory holding the ``functions`` package, put first on the workers' path.
_ROOT = str(Path(__file__).resolve().parent.parent.parent)
_COMMAND = "from functions.validation.pool import serve; serve()"


class WorkerError(RuntimeError):
    """A worker failed (died, or raised): the caller starts again sequentially."""


def _send(stream: IO[bytes], message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive_bytes(stream: IO[bytes]) -> bytes | None:
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        return None
    return data


class WorkerPool:
    """``count`` workers; ``submit`` tasks, then take ``result`` s in submission order."""

    def __init__(self, count: int, start: tuple[str, tuple[Any, ...]]) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (_ROOT, env.get("PYTHONPATH"))))
        self._workers: list[subprocess.Popen[bytes]] = []
        try:
            for _ in range(count):
                self._workers.append(
                    subprocess.Popen(
                        [sys.executable, "-c", _COMMAND],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        env=env,
                    )
                )
            for worker in self._workers:
                self._give(worker, start)
        except OSError as error:  # no process could be started (limits, no executable)
            self.close()
            raise WorkerError(f"could not start the workers: {error}") from error
        except BaseException:
            self.close()
            raise
        self._submitted = 0
        self._taken = 0

    @property
    def pending(self) -> int:
        """Tasks submitted whose result has not been taken."""
        return self._submitted - self._taken

    def _give(self, worker: subprocess.Popen[bytes], task: tuple[str, tuple[Any, ...]]) -> None:
        if worker.stdin is None:
            raise WorkerError("worker has no input pipe")
        try:
            _send(worker.stdin, task)
        except (BrokenPipeError, OSError) as error:
            raise WorkerError(f"worker {worker.pid} is gone: {error}") from error

    def submit(self, name: str, *args: Any) -> None:
        """Queue ``workers.<name>(*args)`` on the next worker in turn."""
        worker = self._workers[self._submitted % len(self._workers)]
        self._give(worker, (name, args))
        self._submitted += 1

    def result(self) -> Any:
        """The result of the oldest task not yet taken; WorkerError if it failed."""
        if not self.pending:
            raise RuntimeError("WorkerPool.result: no task pending")
        worker = self._workers[self._taken % len(self._workers)]
        self._taken += 1
        if worker.stdout is None:
            raise WorkerError("worker has no output pipe")
        data = _receive_bytes(worker.stdout)
        if data is None:
            raise WorkerError(f"worker {worker.pid} stopped (exit code {worker.poll()})")
        status, value = pickle.loads(data)
        if status != "ok":
            raise WorkerError(f"worker {worker.pid} failed:\n{value}")
        return value

    def close(self) -> None:
        """Ask every worker to stop (end of its input), then make sure it has."""
        for worker in self._workers:
            try:
                if worker.stdin is not None:
                    worker.stdin.close()
            except OSError:
                pass
        for worker in self._workers:
            try:
                worker.wait(timeout=5)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            if worker.stdout is not None:
                worker.stdout.close()
        self._workers = []


class InlinePool(WorkerPool):
    """The same protocol run in this process (tasks and answers still pickled): for tests,
    which can then shrink the module constants of the parallel path at will."""

    def __init__(self, count: int, start: tuple[str, tuple[Any, ...]]) -> None:
        self._workers = []
        self._answers: list[bytes] = []
        self._submitted = 0
        self._taken = 0
        self._run(start)

    def _run(self, task: tuple[str, tuple[Any, ...]]) -> None:
        name, args = pickle.loads(pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL))
        answer = _handle(name, args)
        if answer is not None:
            self._answers.append(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))

    def submit(self, name: str, *args: Any) -> None:
        self._run((name, args))
        self._submitted += 1

    def result(self) -> Any:
        if not self.pending:
            raise RuntimeError("InlinePool.result: no task pending")
        self._taken += 1
        status, value = pickle.loads(self._answers.pop(0))
        if status != "ok":
            raise WorkerError(f"inline worker failed:\n{value}")
        return value

    def close(self) -> None:
        self._answers = []


def _handle(name: str, args: tuple[Any, ...]) -> tuple[str, object] | None:
    """Run one task; None for ``start``, which is answered by the tasks that follow."""
    from functions.validation import workers

    handlers: dict[str, Callable[..., Any]] = {
        "start": workers.start,
        "check": workers.check,
        "finish": workers.finish,
    }
    try:
        value = handlers[name](*args)
    except Exception:
        return ("error", traceback.format_exc())
    return None if name == "start" else ("ok", value)


def serve() -> None:
    """A worker's main loop: run each task in turn, answer in the same order."""
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the answers
    tasks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    def pump() -> None:
        while True:
            data = _receive_bytes(source)
            tasks.put(data)
            if data is None:
                return

    threading.Thread(target=pump, daemon=True).start()
    broken: tuple[str, object] | None = None
    while True:
        data = tasks.get()
        if data is None:
            return
        name, args = pickle.loads(data)
        answer = broken or _handle(name, args)
        if name == "start":
            # A failed start answers every task that follows with its error.
            broken = answer
            continue
        if answer is not None:
            _send(sink, answer)
