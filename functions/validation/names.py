"""Leanplum's naming rules for events and parameters, one reason per broken rule."""

from __future__ import annotations

import re

MAX_NAME_LENGTH = 139
FORBIDDEN_CHARACTERS = frozenset(',|"{\t\r\n')
_NUMERIC = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

EMPTY = "name is empty"
TOO_LONG = f"name is longer than {MAX_NAME_LENGTH} characters"
BAD_START = "name starts with '.' or '-'"
BAD_END = "name ends with '/'"
BAD_CHARACTER = 'name contains a forbidden character (, | " { tab CR LF)'
BAD_CONTROL = "name contains a control character (U+0000 to U+001F or U+007F)"
#: C0 control characters and DEL: invisible in every dashboard, and NUL ends strings.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
NUMERIC = "name is purely numeric"


def name_problem(name: str) -> str | None:
    """Return the first Leanplum naming rule ``name`` breaks, or None when it is valid.

    The same rules apply to event and parameter names, so the reason reads the same for both
    and the caller prefixes it with what was named ("event name ...", "parameter name ...").
    """
    if not name:
        return EMPTY
    if len(name) > MAX_NAME_LENGTH:
        return TOO_LONG
    if name[0] in ".-":
        return BAD_START
    if name[-1] == "/":
        return BAD_END
    if not FORBIDDEN_CHARACTERS.isdisjoint(name):
        return BAD_CHARACTER
    if _CONTROL.search(name):
        return BAD_CONTROL
    if _NUMERIC.fullmatch(name):
        return NUMERIC
    return None


class NameChecker:
    """Caches verdicts per distinct name: files repeat a handful of event names millions of times.

    The cache is capped so a file with millions of distinct names cannot grow memory without
    bound; past the cap names are checked without being remembered.
    """

    CACHE_LIMIT = 100_000

    def __init__(self) -> None:
        self._verdicts: dict[str, str | None] = {}

    def problem(self, name: str) -> str | None:
        """Same as :func:`name_problem`, memoised."""
        try:
            return self._verdicts[name]
        except KeyError:
            verdict = name_problem(name)
            if len(self._verdicts) < self.CACHE_LIMIT:
                self._verdicts[name] = verdict
            return verdict
