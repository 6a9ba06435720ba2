"""Run one action (``track`` or ``setUserAttributes``) and build its per-action response."""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from local_cloud.leanplum_sim._rules import (
    MAX_EVENT_NAMES_PER_APP,
    MAX_PARAM_NAMES_PER_APP,
    ActionError,
    check_identifier,
    check_track,
)

SUPPORTED_ACTIONS = ("track", "setUserAttributes")
SIMULATED_SKIP = "Event skipped (simulated)"


def ok() -> dict[str, Any]:
    return {"success": True}


def warning(message: str) -> dict[str, Any]:
    return {"success": True, "warning": {"message": message}}


def error(message: str) -> dict[str, Any]:
    return {"success": False, "error": {"message": message}}


@dataclass(frozen=True)
class Outcome:
    """The response object for one action and, when it was applied, what was recorded."""

    result: dict[str, Any]
    record: dict[str, Any] | None = None


class AppCatalog:
    """Per-app name limits ([DOC] 500 event names, 200 distinct parameter names). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: set[str] = set()
        self.params: set[str] = set()

    def admit(self, event: str, params: Iterable[str]) -> str | None:
        """Register the names, or say which limit they would break (registering nothing)."""
        with self._lock:
            if event not in self.events and len(self.events) >= MAX_EVENT_NAMES_PER_APP:
                return f"Too many event names: at most {MAX_EVENT_NAMES_PER_APP} per app"
            new_params = set(params) - self.params
            if len(self.params) + len(new_params) > MAX_PARAM_NAMES_PER_APP:
                return f"Too many parameter names: at most {MAX_PARAM_NAMES_PER_APP} per app"
            self.events.add(event)
            self.params |= new_params
            return None


def _json_object(name: str, raw: Any) -> Any:
    if isinstance(raw, str) and raw.strip():
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise ActionError(f"Invalid {name}: not a JSON object") from None
    return raw


def run_action(
    action: Mapping[str, Any],
    *,
    now: float,
    catalog: AppCatalog,
    warn_events: Collection[str],
    require_time: bool,
) -> Outcome:
    """Apply one action. Never raises for bad input: errors become ``success:false`` objects."""
    name = action.get("action")
    try:
        if name == "track":
            fixed = dict(action)
            fixed["params"] = _json_object("params", action.get("params"))
            event = check_track(fixed, now, require_time=require_time)
            if event.event in warn_events:
                return Outcome(warning(SIMULATED_SKIP))
            problem = catalog.admit(event.event, event.params)
            if problem:
                return Outcome(error(problem))
            record = {"action": "track", **event.to_dict()}
            return Outcome(warning(event.warning) if event.warning else ok(), record)
        if name == "setUserAttributes":
            if not action.get("userId"):
                raise ActionError("Missing argument userId")
            user_id = check_identifier("userId", action["userId"])
            attrs = _json_object("userAttributes", action.get("userAttributes")) or {}
            if not isinstance(attrs, Mapping):
                raise ActionError("Invalid userAttributes: expected an object")
            record = {"action": name, "userId": user_id, "userAttributes": dict(attrs)}
            return Outcome(ok(), record)
        if not name:
            raise ActionError("Missing argument action")
        raise ActionError(
            f"Unsupported action {name!r}: supported are {', '.join(SUPPORTED_ACTIONS)}"
        )
    except ActionError as exc:
        return Outcome(error(str(exc)))
