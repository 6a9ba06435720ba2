"""Helpers to pick, launch and await a local Pub/Sub emulator.

Two kinds exist:

* ``"official"``: Google's Java ``cloud-pubsub-emulator`` from the Cloud SDK, when installed
  (it is a shell script that starts a JVM: launch it in its own session/process group and stop
  the whole group);
* ``"builtin"``: :mod:`local_cloud.pubsub_emulator`, pure Python, always available.

``choose_kind("auto")`` prefers the official emulator when present; the environment variable
``PUBSUB_EMULATOR_KIND`` (``official``/``builtin``/``auto``) overrides the argument.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Literal

import grpc
from google.pubsub_v1 import types as pt

__all__ = [
    "OFFICIAL_EMULATOR_CANDIDATES",
    "EmulatorKind",
    "choose_kind",
    "emulator_command",
    "official_emulator_path",
    "wait_until_ready",
]

EmulatorKind = Literal["official", "builtin"]

OFFICIAL_EMULATOR_CANDIDATES: tuple[Path, ...] = (
    Path("/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"),
    Path("/usr/share/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"),
    Path("/opt/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"),
)

_REPO_ROOT = Path(__file__).resolve().parent.parent


def official_emulator_path() -> Path | None:
    """Path of Google's emulator start script, or ``None`` when it is not installed.

    When ``PUBSUB_OFFICIAL_EMULATOR`` is set, only that path is considered (set it to e.g.
    ``/nonexistent`` to simulate a machine without the official emulator); otherwise the usual
    Cloud SDK locations, then the SDK of a ``gcloud`` found on ``PATH``.
    """
    override = os.environ.get("PUBSUB_OFFICIAL_EMULATOR")
    if override:
        path = Path(override)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    candidates = list(OFFICIAL_EMULATOR_CANDIDATES)
    gcloud = shutil.which("gcloud")
    if gcloud:
        sdk = Path(gcloud).resolve().parent.parent
        candidates.append(sdk / "platform/pubsub-emulator/bin/cloud-pubsub-emulator")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def emulator_command(kind: EmulatorKind, host: str, port: int) -> list[str]:
    """The argv that starts an emulator of ``kind`` listening on ``host:port``.

    Run the builtin one with the repository root as working directory (or on ``PYTHONPATH``).
    """
    if kind == "official":
        path = official_emulator_path()
        if path is None:
            raise FileNotFoundError("Google's cloud-pubsub-emulator is not installed")
        return [str(path), f"--host={host}", f"--port={port}"]
    if kind == "builtin":
        return [
            sys.executable,
            "-m",
            "local_cloud.pubsub_emulator",
            "--host",
            host,
            "--port",
            str(port),
        ]
    raise ValueError(f"unknown emulator kind: {kind!r}")


def builtin_cwd() -> Path:
    """Working directory from which ``python -m local_cloud.pubsub_emulator`` resolves."""
    return _REPO_ROOT


def choose_kind(prefer: str = "auto") -> EmulatorKind:
    """Resolve ``auto``/``official``/``builtin`` (``PUBSUB_EMULATOR_KIND`` wins over ``prefer``).

    ``auto`` means the official emulator when installed, else the builtin one. Forcing
    ``official`` when it is missing raises :class:`FileNotFoundError`.
    """
    choice = (os.environ.get("PUBSUB_EMULATOR_KIND") or prefer or "auto").strip().lower()
    if choice == "auto":
        return "official" if official_emulator_path() is not None else "builtin"
    if choice == "official":
        if official_emulator_path() is None:
            raise FileNotFoundError("PUBSUB_EMULATOR_KIND=official but it is not installed")
        return "official"
    if choice == "builtin":
        return "builtin"
    raise ValueError(f"unknown Pub/Sub emulator kind: {choice!r}")


def wait_until_ready(host_port: str, deadline_s: float) -> None:
    """Block until a Pub/Sub emulator at ``host_port`` answers ListTopics.

    ``deadline_s`` is a duration in seconds. Raises :class:`TimeoutError` when it elapses.
    """
    give_up = time.monotonic() + deadline_s
    last_error: Exception | None = None
    with grpc.insecure_channel(host_port) as channel:
        list_topics = channel.unary_unary(
            "/google.pubsub.v1.Publisher/ListTopics",
            request_serializer=pt.ListTopicsRequest.serialize,
            response_deserializer=pt.ListTopicsResponse.deserialize,
        )
        while True:
            left = give_up - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"Pub/Sub emulator at {host_port} not ready after {deadline_s}s: {last_error}"
                )
            try:
                list_topics(
                    pt.ListTopicsRequest(project="projects/readiness-probe"),
                    timeout=max(0.1, min(left, 2.0)),
                    wait_for_ready=True,
                )
                return
            except grpc.RpcError as err:
                last_error = err
                # wait_for_ready already waited for the channel; pause briefly before retrying
                # errors the server itself returned (e.g. still initialising).
                time.sleep(min(0.1, max(0.0, give_up - time.monotonic())))
