"""Child processes of the local cloud: started in their own process group, always stopped.

Every child is started through util-linux's ``setpriv --pdeathsig TERM``: if the process that
started it dies, even by SIGKILL, the kernel sends the child SIGTERM, so no emulator outlives
the local cloud. (Not ``preexec_fn``: it forces a plain ``fork()`` that runs gRPC's at-fork
handlers, which deadlock when the parent already has gRPC channels open, as the tests do.)
Stopping sends SIGTERM to the child's whole group (the official Pub/Sub emulator is a shell
script that starts Java; functions-framework starts gunicorn workers), waits, then SIGKILLs
what is left.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


def _with_parent_death_signal(argv: list[str]) -> list[str]:
    """``argv`` run so that the kernel sends it SIGTERM when its parent dies (Linux)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else argv


def serve_until_signalled(start: Callable[[], str], stop: Callable[[], None]) -> int:
    """Run a local server as a child of the local cloud: ``start()`` returns its address,
    printed as ``READY <address>`` once it serves; SIGTERM or Ctrl-C runs ``stop()``."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    print(f"READY {start()}", flush=True)
    stopping.wait()
    stop()
    print("STOPPED", flush=True)
    return 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    condition: Callable[[], bool], deadline_s: float, what: str, max_interval_s: float = 0.5
) -> None:
    """Poll ``condition`` until it holds; ``TimeoutError`` naming ``what`` after the deadline."""
    end = time.monotonic() + deadline_s
    delay = min(0.02, max_interval_s)
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(f"{what} not ready within {deadline_s:.0f} s")
        time.sleep(delay)
        delay = min(delay * 1.5, max_interval_s)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class ManagedProcess:
    """One child: its command, environment and log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_dir: Path,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_dir / f"{name}.log"
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            _with_parent_death_signal(self.argv),
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            tail = self.log_tail()
            raise RuntimeError(f"{self.name} exited early; its log ends with:\n{tail}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def pause(self) -> None:
        """SIGSTOP the whole group: the process freezes wherever it is (a slow instance)."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the whole group at once, as a crash would: no clean-up code runs."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait(timeout=10)

    def stop(self, grace_s: float = 5.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None and grace_s > 0:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        self.kill()  # whatever the group still holds (a Java child, gunicorn workers) goes too
