"""The one client of the simulator's admin endpoints (``/_sim/...``), for every test.

Why one: the contract tests, the client tests and the end-to-end tests all reset the
simulator, turn its fault knobs and read what it recorded. Hand-written copies of those calls
drift apart (URL shapes, timeouts, what counts as an error); this class is the only place
that knows the admin paths and their JSON shapes. It speaks HTTP, so it works the same for a
simulator started in-process (:func:`local_cloud.leanplum_sim.start`) and for one running as
``python -m local_cloud.leanplum_sim`` in the local cloud.
"""

from __future__ import annotations

from typing import Any

import requests as http

ADMIN_PREFIX = "/_sim"
DEFAULT_TIMEOUT_SECONDS = 10.0


class SimulatorAdminError(RuntimeError):
    """An admin call was refused (a bad knob: 400) or failed; ``status`` is the HTTP code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"simulator admin: HTTP {status}: {message}")
        self.status = status
        self.message = message


def _root(url: str) -> str:
    """``http://host:port`` from that, from ``.../_sim`` or from the ``.../api`` URL."""
    url = url.rstrip("/")
    for suffix in (ADMIN_PREFIX, "/api"):
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url


class SimulatorAdmin:
    """Admin calls to one simulator: ``SimulatorAdmin("http://127.0.0.1:PORT")``.

    The URL may also be the admin URL (``.../_sim``) or the API URL (``.../api``).
    """

    def __init__(self, base_url: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.base_url = _root(base_url)
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"SimulatorAdmin({self.base_url!r})"

    # plumbing ------------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
    ) -> Any:
        url = f"{self.base_url}{ADMIN_PREFIX}/{path}"
        reply = http.request(method, url, json=body, params=query, timeout=self.timeout)
        if reply.status_code != 200:
            try:
                message = str(reply.json().get("error", reply.text))
            except ValueError:
                message = reply.text
            raise SimulatorAdminError(reply.status_code, message)
        return reply.json()

    # state ---------------------------------------------------------------------------------
    def health(self) -> bool:
        """True when the simulator answers."""
        try:
            return bool(self._call("GET", "health").get("ok"))
        except (http.RequestException, SimulatorAdminError):
            return False

    def reset(self) -> None:
        """Forget requests, jobs, events and names; knobs and the fault randomness go back
        to the simulator's start-up values (so a seeded run repeats its faults)."""
        self._call("POST", "reset")

    def configure(self, **knobs: Any) -> dict[str, Any]:
        """Change knobs (``error_5xx_rate=0.3``, ``hang_jobs=1``...); returns every knob.

        Raises :class:`SimulatorAdminError` (status 400) naming an unknown knob or a bad value;
        nothing is changed then.
        """
        config: dict[str, Any] = self._call("POST", "config", knobs)
        return config

    def config(self) -> dict[str, Any]:
        """Every knob's current value."""
        config: dict[str, Any] = self._call("GET", "config")
        return config

    def apps(self) -> list[str]:
        """The app ids served (the main app first); never a key."""
        apps: list[str] = self._call("GET", "apps")["apps"]
        return apps

    # job concurrency -----------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Job counters, exact at the instant of the call.

        ``unfinished_jobs`` (PENDING or RUNNING, hung jobs included), ``peak_unfinished_jobs``
        (the most at once since start, reset or :meth:`reset_stats`), ``pending_jobs``,
        ``running_jobs``, ``jobs_created``, ``jobs_by_app`` (app id -> jobs created),
        ``unfinished_by_app``, ``peak_unfinished_by_app`` and ``peak_since`` (Unix time).
        """
        stats: dict[str, Any] = self._call("GET", "stats")
        return stats

    def reset_stats(self) -> dict[str, Any]:
        """Set the peaks to the number of jobs unfinished now (jobs created stay counted);
        returns the counters as :meth:`stats` does."""
        stats: dict[str, Any] = self._call("POST", "stats/reset")
        return stats

    # recordings ----------------------------------------------------------------------------
    def requests(
        self, action: str | None = None, *, app_id: str | None = None
    ) -> list[dict[str, Any]]:
        """``/api`` requests in arrival order (keys never recorded); only ``action``'s and
        only those naming ``app_id`` if given.

        Each has ``seq``, ``time``, ``method``, ``action``, ``app_id`` (the ``appId`` sent),
        ``key_class``, ``params``, ``content_type`` (the body's media type, None without a
        Content-Type header), ``query_keys`` and ``body_keys`` (where each parameter came
        from), ``status`` (None for a dropped reply) and ``fault`` when one was injected.
        """
        entries: list[dict[str, Any]] = self._call("GET", "requests")["requests"]
        return [
            e
            for e in entries
            if action in (None, e.get("action")) and app_id in (None, e.get("app_id"))
        ]

    def jobs(self, app_id: str | None = None) -> list[dict[str, Any]]:
        """Every CSV job's summary (only ``app_id``'s if given): its app, the bucket and file
        it read, its true fate, and its counts so far while it runs."""
        query = {"app_id": app_id} if app_id is not None else None
        jobs: list[dict[str, Any]] = self._call("GET", "jobs", query=query)["jobs"]
        return jobs

    def job(self, job_id: str) -> dict[str, Any] | None:
        """One job's summary, or None for an unknown id."""
        try:
            job: dict[str, Any] = self._call("GET", f"jobs/{job_id}")
        except SimulatorAdminError as exc:
            if exc.status == 404:
                return None
            raise
        return job

    def events(
        self, source: str | None = None, *, app_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Applied actions (inline ones, then those of FINISHED jobs); only those of
        ``source`` if given (``"track"``, ``"multi"``, ``"job:<id>"``) and of ``app_id``."""
        events: list[dict[str, Any]] = self._call("GET", "events")["events"]
        return [
            e
            for e in events
            if source in (None, e.get("source")) and app_id in (None, e.get("app_id"))
        ]
