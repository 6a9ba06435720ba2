"""What one element of a Leanplum reply, or one line of a results file, says.

Leanplum answers every call with ``{"response": [...]}``, one element per action, and a
finished CSV job writes results files holding one such element per line, in the order of the
file's rows (the team's notes, ``leanplum-api.md``). Both are read by the same rule, here:

* **Clean success** is exactly ``"success": true`` with no ``error`` and no ``warning``. The
  API page says: "Success is ``{"success":true}`` with no ``warning`` and no ``error``."
* **Error or warning**: an ``error`` or ``warning`` that is present and not ``null`` makes the
  element a problem, even with ``"success": true`` ("HTTP 200 can still carry
  ``{"success":true,"warning":{"message":"..."}}`` or an ``error`` object: the action was
  probably skipped. Count it as a failure, with its message."). The problem is the object's
  ``message`` (the error's if both are there); an object without a usable message is quoted
  as compact JSON, a bare string as itself.
* **Missing ``success``** is a problem too: the documented success carries ``success: true``,
  so an element without it (or with anything but the JSON ``true``, such as ``"true"``) is
  not known to have succeeded. It reads ``no success flag`` (``success=false``,
  ``success="true"`` and so on when present but not ``true``). An importer that counts an
  unconfirmed event as delivered would hide a loss; one that counts it as failed only asks
  a person to look. The client and the results-file join apply this same rule.
* **A results line** that is not UTF-8, not JSON or not a JSON object is a problem whose
  message starts with ``unreadable result line`` (the line itself is not quoted, so such
  lines group under one message).

Messages are cut to :data:`MAX_MESSAGE_CHARS`: they become keys of the result message's
``leanplum_warnings_by_message`` and cells of the failed-rows CSV.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# Long enough for every message Leanplum is known to send ("Past event detected (731 days
# ago). Rewriting timestamp." is 55); short enough that a runaway body cannot bloat the
# result message, whose counts are keyed by these messages.
MAX_MESSAGE_CHARS = 300

# The keys that make an element a problem, in the order their message is preferred.
PROBLEM_KEYS = ("error", "warning")

NO_SUCCESS_FLAG = "no success flag"
NOT_AN_OBJECT = "reply element is not a JSON object"
UNREADABLE_LINE = "unreadable result line"


def message_of(value: Any) -> str:
    """The text of an ``error``/``warning`` value: its ``message``, the string, or JSON."""
    if isinstance(value, Mapping):
        message = value.get("message")
        if isinstance(message, str) and message.strip():
            return _cut(message.strip())
    if isinstance(value, str) and value.strip():
        return _cut(value.strip())
    return _cut(_compact_json(value))


def element_problem(element: Mapping[str, Any]) -> str | None:
    """The error or warning message ``element`` carries, or ``None`` for a clean success.

    Never raises, whatever JSON value it is given (see the module docstring for the rule).
    """
    if not isinstance(element, Mapping):
        return NOT_AN_OBJECT
    for key in PROBLEM_KEYS:
        value = element.get(key)
        if value is not None:
            return message_of(value)
    if "success" not in element:
        return NO_SUCCESS_FLAG
    success = element["success"]
    if success is not True:
        return _cut("success=" + _compact_json(success))
    return None


def first_element(body: Any) -> dict[str, Any]:
    """``body["response"][0]`` when ``body`` is a Leanplum reply, else ``{}``."""
    if isinstance(body, dict):
        response = body.get("response")
        if isinstance(response, list) and response and isinstance(response[0], dict):
            return response[0]
    return {}


def result_line_problem(line: str | bytes) -> str | None:
    """The problem of one line of a results file, or ``None`` for a clean success."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            return f"{UNREADABLE_LINE}: not UTF-8"
    try:
        answer = json.loads(line)
    except (ValueError, RecursionError):
        return f"{UNREADABLE_LINE}: not JSON"
    if not isinstance(answer, dict):
        return f"{UNREADABLE_LINE}: not a JSON object"
    return element_problem(answer)


def _compact_json(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):  # cycles, mixed key types, deep nesting
        return f"<{type(value).__name__}>"


def _cut(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
