"""Simulator settings: the apps and their keys (fixed) and the knobs (changeable at runtime)."""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_FILE_BYTES = 100 * 1024 * 1024  # [DOC] at most 100 MB per CSV file
RESULTS_LINES_PER_FILE = 10_000


class KnobError(ValueError):
    """A config patch names an unknown knob or gives a value of the wrong shape."""


@dataclass
class Knobs:
    """Everything ``POST /_sim/config`` may change. Rates are shares between 0 and 1."""

    pending_seconds: float = 0.5
    running_seconds: float = 1.0
    error_5xx_rate: float = 0.0
    error_429_rate: float = 0.0
    latency_ms: int = 0
    fail_job_rate: float = 0.0
    fail_jobs: int = 0  # the next N jobs created FAIL
    hang_job_rate: float = 0.0
    hang_jobs: int = 0  # the next N jobs created stay RUNNING forever
    warn_events: list[str] = field(default_factory=list)
    results_5xx_rate: float = 0.0
    drop_multi_replies: int = 0  # the next N `multi` calls get no HTTP answer
    results_lines_per_file: int = RESULTS_LINES_PER_FILE
    max_file_bytes: int = MAX_FILE_BYTES
    #: Buckets Leanplum can read; empty = every bucket. Lets a test check that the importer
    #: points ``multi`` at the bucket Leanplum was given access to, not at any bucket it owns.
    readable_buckets: list[str] = field(default_factory=list)

    def bucket_readable(self, bucket: str) -> bool:
        return not self.readable_buckets or bucket in self.readable_buckets

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def patched(self, patch: Mapping[str, Any]) -> Knobs:
        """A copy with ``patch`` applied; raises :class:`KnobError` naming the first bad entry."""
        known = {f.name: f for f in dataclasses.fields(self)}
        values = self.to_dict()
        for name, raw in patch.items():
            if name not in known:
                raise KnobError(f"unknown knob {name!r}; known: {', '.join(sorted(known))}")
            values[name] = _coerce(name, values[name], raw)
        return Knobs(**values)


def _coerce(name: str, current: Any, raw: Any) -> Any:
    if isinstance(current, list):
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise KnobError(f"{name} must be a list of strings, found {raw!r}")
        return list(raw)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise KnobError(f"{name} must be a number, found {raw!r}")
    if isinstance(current, int):
        if int(raw) != raw or raw < 0:
            raise KnobError(f"{name} must be a non-negative integer, found {raw!r}")
        return int(raw)
    value = float(raw)
    if value < 0 or (name.endswith("_rate") and value > 1):
        bound = "between 0 and 1" if name.endswith("_rate") else ">= 0"
        raise KnobError(f"{name} must be {bound}, found {raw!r}")
    return value


DEVELOPMENT, PRODUCTION, INVALID = "development", "production", "invalid"


def _same(given: str, secret: str | None) -> bool:
    return secret is not None and hmac.compare_digest(given.encode(), secret.encode())


@dataclass(frozen=True)
class AppIdentity:
    """The main app the simulator serves. Keys are secrets: never logged, never recorded."""

    app_id: str
    dev_key: str
    prod_key: str

    def key_class(self, app_id: str | None, client_key: str | None) -> str:
        """``development``, ``production`` or ``invalid`` (wrong app id or unknown key)."""
        if app_id != self.app_id or not client_key:
            return INVALID
        if _same(client_key, self.dev_key):
            return DEVELOPMENT
        if _same(client_key, self.prod_key):
            return PRODUCTION
        return INVALID

    def __repr__(self) -> str:  # keep keys out of tracebacks and logs
        return f"AppIdentity(app_id={self.app_id!r}, dev_key=***, prod_key=***)"


class AppConfigError(ValueError):
    """An extra app is malformed or clashes with another app (the message never holds a key)."""


class Apps:
    """Every app the simulator serves: the main one (development and production keys) and
    extra ones (a development key only: enough for CSV jobs and polling).

    Why several: one importer may import into several Leanplum apps; a key is checked
    against the app the request names, so a key of app A sent with ``appId`` B is refused as
    Leanplum would refuse it, and a mix-up between apps fails loudly in tests.
    """

    def __init__(self, main: AppIdentity, extra: Mapping[str, str] | None = None) -> None:
        self.main = main
        self._dev_keys: dict[str, str] = {main.app_id: main.dev_key}
        for app_id, dev_key in (extra or {}).items():
            if not isinstance(app_id, str) or not app_id.strip():
                raise AppConfigError("an extra app has an empty app id")
            if not isinstance(dev_key, str) or not dev_key:
                raise AppConfigError(f"extra app {app_id!r} has an empty development key")
            if app_id in self._dev_keys:
                raise AppConfigError(f"app id {app_id!r} is given twice")
            self._dev_keys[app_id] = dev_key

    @property
    def ids(self) -> list[str]:
        """The main app's id first, then the extra apps' in the order given."""
        return list(self._dev_keys)

    def key_class(self, app_id: str | None, client_key: str | None) -> str:
        """The class of ``client_key`` for the app ``app_id`` names, or ``invalid``."""
        if app_id is None or not client_key or app_id not in self._dev_keys:
            return INVALID
        if app_id == self.main.app_id:
            return self.main.key_class(app_id, client_key)
        return DEVELOPMENT if _same(client_key, self._dev_keys[app_id]) else INVALID

    def __repr__(self) -> str:  # app ids only: keys are secrets
        return f"Apps(main={self.main.app_id!r}, extra={self.ids[1:]!r})"


def parse_extra_apps(entries: list[str], where: str) -> dict[str, str]:
    """``["APP_ID=DEV_KEY", ...]`` (a comma-separated env value split by the caller) to a map.

    Errors name ``where`` the entries came from and the entry's position, never its text (it
    may hold a key). For an app id given twice the later entry wins.
    """
    apps: dict[str, str] = {}
    for number, entry in enumerate(entries, start=1):
        app_id, sep, key = entry.strip().partition("=")
        app_id = app_id.strip()
        if not sep or not app_id or not key.strip():
            raise AppConfigError(
                f"extra app #{number} of {where} is not of the form APP_ID=DEV_KEY"
            )
        apps[app_id] = key.strip()
    return apps
