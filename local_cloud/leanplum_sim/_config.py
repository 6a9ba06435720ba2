"""Simulator settings: the app identity (fixed) and the fault knobs (changeable at runtime)."""

from __future__ import annotations

import dataclasses
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


@dataclass(frozen=True)
class AppIdentity:
    """The one app the simulator serves. Keys are secrets: never logged, never recorded."""

    app_id: str
    dev_key: str
    prod_key: str

    def key_class(self, app_id: str | None, client_key: str | None) -> str:
        """``development``, ``production`` or ``invalid`` (wrong app id or unknown key)."""
        if app_id != self.app_id or not client_key:
            return "invalid"
        if client_key == self.dev_key:
            return "development"
        if client_key == self.prod_key:
            return "production"
        return "invalid"

    def __repr__(self) -> str:  # keep keys out of tracebacks and logs
        return f"AppIdentity(app_id={self.app_id!r}, dev_key=***, prod_key=***)"
