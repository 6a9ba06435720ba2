"""The HTTP layer: routing, fault injection, request recording, admin endpoints, start/stop."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local_cloud.leanplum_sim._api import Api, ApiError, Reply
from local_cloud.leanplum_sim._config import AppIdentity, Apps, KnobError, Knobs
from local_cloud.leanplum_sim._params import BadRequest, Params, media_type, merge, query_only
from local_cloud.leanplum_sim._state import SimState
from local_cloud.leanplum_sim.admin import SimulatorAdmin

_RESULTS_RE = re.compile(r"^/_sim/results/([0-9A-Za-z_-]+)/([0-9]+)\.json$")
_JOB_RE = re.compile(r"^/_sim/jobs/([0-9A-Za-z_-]+)$")
SECRET_PARAMS = frozenset({"clientKey"})
MAX_BODY_BYTES = 64 * 1024 * 1024
SIMULATED_5XX = "Service unavailable (simulated)"
SIMULATED_429 = "Too many requests (simulated)"


def _error_body(message: str) -> dict[str, Any]:
    return {"response": [{"success": False, "error": {"message": message}}]}


def _describe(merged: Params, key_class: str) -> dict[str, Any]:
    """What a request entry records: never a key, and where each parameter came from (tests
    check that a client puts ``action`` in the query string and the rest in a JSON body)."""
    params = merged.values
    app_id = params.get("appId")
    return {
        "action": params.get("action"),
        "app_id": app_id if isinstance(app_id, str) else None,
        "key_class": key_class,
        "params": {k: v for k, v in params.items() if k not in SECRET_PARAMS},
        "query_keys": merged.query_keys,
        "body_keys": merged.body_keys,
    }


class _Unreadable(Exception):
    """The body could not be read off the connection (too large, bad framing)."""


class _Dropped(Exception):
    """Close the connection without answering (simulates a reply lost in transit)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    # logging: never the query string (it may hold clientKey) ---------------------------------
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if not self.server.quiet:
            path = urlsplit(self.path).path
            sys.stderr.write(f"leanplum_sim {self.command} {path} {code}\n")

    def log_error(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            sys.stderr.write("leanplum_sim error: " + (format % args) + "\n")

    # plumbing ------------------------------------------------------------------------------
    def _body(self) -> bytes:
        """The whole body, by Content-Length or chunked; a body that cannot be read raises
        :class:`_Unreadable` (the connection is then out of step and is closed)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _Unreadable("Bad request: invalid Content-Length") from None
        if length > MAX_BODY_BYTES:
            raise _Unreadable("Bad request: request body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            try:
                size = int(self.rfile.readline(1024).split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _Unreadable("Bad request: invalid chunked body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                raise _Unreadable("Bad request: request body too large")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)  # the CRLF after the chunk

    def _send(self, status: int, payload: Any, content_type: str = "application/json") -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _drop(self) -> None:
        self.close_connection = True
        self.log_request("dropped")

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        try:
            body = self._body()  # a GET's body too, so a kept-alive connection stays in step
            if url.path in ("/api", "/api/"):
                self._api(url.query, body)
            elif url.path.startswith("/_sim/"):
                self._admin(url.path, url.query, body)
            else:
                self._send(404, _error_body("Not found"))
        except _Dropped:
            self._drop()
        except _Unreadable as exc:
            self.close_connection = True
            self._send(400, _error_body(str(exc)))
        except Exception as exc:  # answer 500 rather than hang the client
            self.log_error("internal error: %s", type(exc).__name__)
            self._send(500, _error_body("Internal error"))

    # /api ----------------------------------------------------------------------------------
    def _api(self, query: str, body: bytes) -> None:
        sim = self.server.sim
        state = sim.state
        entry: dict[str, Any] = {"time": time.time(), "method": self.command, "path": "/api"}
        content_type = self.headers.get("Content-Type", "")
        entry["content_type"] = media_type(content_type) or None
        reply: Reply | None = None
        try:
            merged = merge(self.command, query, content_type, body)
        except BadRequest as exc:  # refused whatever the key: the body could not be read
            merged = query_only(query)
            reply = ApiError(400, str(exc)).reply()
        params = merged.values
        key_class = sim.api.key_class(params)
        entry.update(_describe(merged, key_class))
        knobs = state.snapshot()
        if knobs.latency_ms > 0:
            time.sleep(knobs.latency_ms / 1000)
        if reply is None:
            if state.roll("error_5xx_rate"):
                reply, entry["fault"] = Reply(503, _error_body(SIMULATED_5XX)), "5xx"
            elif state.roll("error_429_rate"):
                reply, entry["fault"] = Reply(429, _error_body(SIMULATED_429)), "429"
            else:
                reply = sim.api.handle(params, key_class)
                if (
                    params.get("action") == "multi"
                    and reply.status == 200
                    and state.take_count("drop_multi_replies")
                ):
                    entry.update(status=None, fault="dropped")
                    state.record_request(entry)
                    raise _Dropped
        entry["status"] = reply.status
        state.record_request(entry)
        self._send(reply.status, reply.body)

    # /_sim ---------------------------------------------------------------------------------
    def _admin(self, path: str, query: str, body: bytes) -> None:
        state = self.server.sim.state
        get, post = self.command == "GET", self.command == "POST"
        if get and (m := _RESULTS_RE.match(path)):
            self._results(m.group(1), int(m.group(2)))
        elif get and path == "/_sim/health":
            self._send(200, {"ok": True})
        elif get and path == "/_sim/apps":
            self._send(200, {"apps": state.apps.ids})
        elif get and path == "/_sim/requests":
            self._send(200, {"requests": state.requests()})
        elif get and path == "/_sim/jobs":
            app_ids = parse_qs(query).get("app_id")
            app_id = app_ids[-1] if app_ids else None
            self._send(200, {"jobs": [j.summary() for j in state.jobs(app_id)]})
        elif get and path == "/_sim/stats":
            self._send(200, state.stats())
        elif post and path == "/_sim/stats/reset":
            self._send(200, state.reset_stats())
        elif get and (m := _JOB_RE.match(path)):
            job = state.job(m.group(1))
            self._send(*((200, job.summary()) if job else (404, {"error": "unknown job"})))
        elif get and path == "/_sim/events":
            self._send(200, {"events": state.events()})
        elif get and path == "/_sim/config":
            self._send(200, state.snapshot().to_dict())
        elif post and path == "/_sim/config":
            try:
                patch = json.loads(body or b"{}")
                if not isinstance(patch, dict):
                    raise KnobError("config patch must be a JSON object")
                self._send(200, state.patch_knobs(patch).to_dict())
            except (KnobError, json.JSONDecodeError) as exc:
                self._send(400, {"error": str(exc)})
        elif post and path == "/_sim/reset":
            state.reset()
            self._send(200, {"ok": True})
        else:
            self._send(404, {"error": f"no admin endpoint {self.command} {path}"})

    def _results(self, job_id: str, index: int) -> None:
        state = self.server.sim.state
        job = state.job(job_id)
        if job is None or job.state() != "FINISHED" or index >= job.file_count():
            self._send(404, {"error": "no such results file"})
            return
        if state.roll("results_5xx_rate"):
            self._send(503, {"error": SIMULATED_5XX})
            return
        lines = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in job.file_lines(index))
        self._send(200, lines.encode(), "application/x-ndjson")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: LeanplumSimulator, quiet: bool) -> None:
        self.sim = sim
        self.quiet = quiet
        super().__init__(address, _Handler)


class LeanplumSimulator:
    """One simulator on ``host:port`` (port 0 picks a free one). Use :meth:`start`/:meth:`stop`.

    ``identity`` is the main app (development and production keys); ``extra_apps`` maps more
    app ids to their development keys (CSV jobs and polling only). Keys are never logged.
    """

    def __init__(
        self,
        identity: AppIdentity,
        knobs: Knobs | None = None,
        *,
        extra_apps: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
        quiet: bool = True,
        public_url: str | None = None,
    ) -> None:
        self.state = SimState(Apps(identity, extra_apps), knobs or Knobs(), seed)
        self.api = Api(self.state, lambda: self.base_url)
        self._host, self._port, self._quiet = host, port, quiet
        self._public_url = public_url.rstrip("/") if public_url else None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://host:port`` or ``public_url``: the start of every results-file URL."""
        if self._public_url:
            return self._public_url
        if self._server is None:
            raise RuntimeError("simulator not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api"

    @property
    def admin(self) -> SimulatorAdmin:
        """A client of this simulator's admin endpoints (reset, knobs, recordings)."""
        return SimulatorAdmin(self.base_url)

    def start(self) -> LeanplumSimulator:
        self._server = _Server((self._host, self._port), self, self._quiet)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="leanplum-sim", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.state.cancel_jobs()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None
