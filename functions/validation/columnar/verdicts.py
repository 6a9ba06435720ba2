"""Small pieces of the columnar checker: reason codes, whitespace, cached verdicts.

Kept apart from ``checking`` so that each stays small; every piece reproduces one detail of
the reference exactly (named in its docstring).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")

#: Distinct cells remembered per column between blocks; past this they are judged again.
#: Each costs about 250 bytes of Python objects: 200,000 (nanosecond times, all distinct,
#: in a warehouse export) took 48 MB and the 100 MB file past 256 MB; 20,000 take 5 MB.
CACHE_LIMIT = 20_000


#: Python's whitespace (``str.isspace``: what ``str.strip`` drops); a unit test checks it
#: against every code point. A cell that changes when these are stripped needs stripping.
SPACES = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
    "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
#: ``rules._NUMBER`` with ASCII digits only (Python's ``\d`` takes any decimal digit: cells
#: with others go to the reference).
ASCII_NUMBER = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
#: ``rules._CONTROL``'s class: C0 controls and DEL.
CONTROL = r"[\x00-\x1F\x7F]"


class Verdicts(Generic[V]):
    """The verdict of ``judge`` (the reference's rule) on each distinct cell, remembered up to
    ``CACHE_LIMIT`` cells; past that the memory starts again, and cells are judged again."""

    def __init__(self, judge: Callable[[str], V]) -> None:
        self._judge = judge
        self._known: dict[str, V] = {}

    def of(self, cells: list[str]) -> list[V]:
        """The verdict on each of ``cells``, in order."""
        known = self._known
        found: list[V] = []
        for cell in cells:
            if cell in known:
                found.append(known[cell])
                continue
            verdict = self._judge(cell)
            if len(known) >= CACHE_LIMIT:
                known.clear()
            known[cell] = verdict
            found.append(verdict)
        return found


class Reasons:
    """Integer codes for (column, reason) pairs, so that a row's first reason is a coalesce."""

    def __init__(self) -> None:
        self._codes: dict[tuple[str, str], int] = {}
        self.pairs: list[tuple[str, str]] = []

    def code(self, column: str, reason: str) -> int:
        """The code of a pair, made on first use."""
        key = (column, reason)
        found = self._codes.get(key)
        if found is None:
            found = self._codes[key] = len(self.pairs)
            self.pairs.append(key)
        return found
