"""Leanplum's documented rules for one ``track`` action, as pure functions (no state, no I/O)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pycountry

ID_MAX_CHARS = 400  # [DOC] user and device ids
NAME_MAX_CHARS = 139  # [DOC] event and parameter names
MAX_PARAMS_PER_EVENT = 50  # [DOC]
MAX_EVENT_NAMES_PER_APP = 500  # [DOC]
MAX_PARAM_NAMES_PER_APP = 200  # [DOC]
PAST_EVENT_DAYS = 365  # [DOC] older events are rewritten to the import time
# [INFER] A time above 1e11 s (year 5138) is plainly milliseconds: 1e11 ms is only 1973.
MILLISECONDS_THRESHOLD = 1e11
# [INFER] Times more than a day ahead of the server clock are rejected.
FUTURE_TOLERANCE_SECONDS = 86_400
DAY_SECONDS = 86_400

_FORBIDDEN_NAME_CHARS = frozenset(',|"{\t\r\n')
_NUMERIC_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_CURRENCY_RE = re.compile(r"[A-Z]{3}")


class ActionError(ValueError):
    """The action is rejected; the message goes into ``{"success":false,"error":{...}}``."""


@dataclass
class TrackEvent:
    """A ``track`` action that passed the rules, normalised."""

    user_id: str
    event: str
    time: float  # effective time, after any past-event rewrite
    original_time: float | None
    value: float | None = None
    currency_code: str | None = None
    info: str | None = None
    device_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"userId": self.user_id, "event": self.event, "time": self.time}
        if self.original_time is not None and self.original_time != self.time:
            out["originalTime"] = self.original_time
        for key, val in (
            ("value", self.value),
            ("currencyCode", self.currency_code),
            ("info", self.info),
            ("deviceId", self.device_id),
        ):
            if val is not None:
                out[key] = val
        if self.params:
            out["params"] = dict(self.params)
        return out


def name_problem(kind: str, name: str) -> str | None:
    """Why ``name`` is not a valid event or parameter name, or ``None`` when it is."""
    if not 1 <= len(name) <= NAME_MAX_CHARS:
        return f"Invalid {kind} name: must be 1 to {NAME_MAX_CHARS} characters (found {len(name)})"
    if name[0] in ".-":
        return f"Invalid {kind} name {name!r}: must not start with '.' or '-'"
    if name.endswith("/"):
        return f"Invalid {kind} name {name!r}: must not end with '/'"
    bad = sorted(set(name) & _FORBIDDEN_NAME_CHARS)
    if bad:
        return f"Invalid {kind} name {name!r}: must not contain {''.join(bad)!r}"
    if _NUMERIC_RE.fullmatch(name) or name.isdecimal():
        return f"Invalid {kind} name {name!r}: must not be purely numeric"
    return None


def _present(action: Mapping[str, Any], key: str) -> bool:
    val = action.get(key)
    return val is not None and val != ""


def _number(key: str, raw: Any) -> float:
    if isinstance(raw, bool):
        raise ActionError(f"Invalid {key}: expected a number, found {raw!r}")
    try:
        number = float(raw)
    except (TypeError, ValueError):
        raise ActionError(f"Invalid {key}: expected a number, found {raw!r}") from None
    if not math.isfinite(number):
        raise ActionError(f"Invalid {key}: expected a finite number, found {raw!r}")
    return number


def check_identifier(key: str, raw: Any) -> str:
    text = raw if isinstance(raw, str) else str(raw)
    if len(text) > ID_MAX_CHARS:
        raise ActionError(f"Invalid {key}: at most {ID_MAX_CHARS} characters (found {len(text)})")
    return text  # [DOC] whitespace is NOT trimmed: " u1" and "u1" are different users


def check_time(raw: Any, now: float) -> tuple[float, str | None]:
    """The effective time and an optional past-event warning."""
    seconds = _number("time", raw)
    if seconds >= MILLISECONDS_THRESHOLD:
        raise ActionError(
            f"Invalid time {raw!r}: looks like milliseconds; time must be Unix seconds"
        )
    if seconds < 0:
        raise ActionError(f"Invalid time {raw!r}: must not be negative")
    if seconds > now + FUTURE_TOLERANCE_SECONDS:
        raise ActionError(f"Invalid time {raw!r}: in the future")
    age = now - seconds
    if age > PAST_EVENT_DAYS * DAY_SECONDS:
        days = int(age // DAY_SECONDS)
        return now, f"Past event detected ({days} days ago). Rewriting timestamp."
    return seconds, None


def check_track(action: Mapping[str, Any], now: float, *, require_time: bool) -> TrackEvent:
    """Apply the documented ``track`` rules; raises :class:`ActionError` at the first problem.

    ``require_time`` is true for CSV rows ([DOC] required column) and false for the HTTP
    ``track`` action, where a missing time means "now".
    """
    if not _present(action, "userId"):
        raise ActionError("Missing argument userId")
    user_id = check_identifier("userId", action["userId"])
    if not _present(action, "event"):
        raise ActionError("Missing argument event")
    event = action["event"]
    if not isinstance(event, str):
        raise ActionError(f"Invalid event name {event!r}: must be a string")
    problem = name_problem("event", event)
    if problem:
        raise ActionError(problem)
    if _present(action, "time"):
        time, warning = check_time(action["time"], now)
        original: float | None = _number("time", action["time"])
    elif require_time:
        raise ActionError("Missing argument time")
    else:
        time, warning, original = now, None, None
    out = TrackEvent(user_id=user_id, event=event, time=time, original_time=original)
    out.warning = warning
    if _present(action, "value"):
        out.value = _number("value", action["value"])
    if _present(action, "currencyCode"):
        code = action["currencyCode"]
        if not (
            isinstance(code, str)
            and _CURRENCY_RE.fullmatch(code)
            and pycountry.currencies.get(alpha_3=code) is not None
        ):
            raise ActionError(f"Invalid currencyCode {code!r}: not an ISO 4217 code")
        out.currency_code = code
    if _present(action, "deviceId"):
        out.device_id = check_identifier("deviceId", action["deviceId"])
    if _present(action, "info"):
        out.info = str(action["info"])
    params = action.get("params") or {}
    if not isinstance(params, Mapping):
        raise ActionError("Invalid params: expected an object of name/value pairs")
    if len(params) > MAX_PARAMS_PER_EVENT:
        raise ActionError(
            f"Too many parameters: at most {MAX_PARAMS_PER_EVENT} per event (found {len(params)})"
        )
    for name in params:
        problem = name_problem("parameter", str(name))
        if problem:
            raise ActionError(problem)
    out.params = dict(params)
    return out
