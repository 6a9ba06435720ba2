"""The attribute subset of Pub/Sub's subscription filter language.

Real Pub/Sub delivers to a subscription only the messages its ``filter`` matches (the others
are acknowledged automatically); Google's emulator stores the filter but ignores it. Ours
compiles the filter once, when the subscription is created, into a predicate over a message's
attributes: ``attributes.k = "v"``, ``!=``, ``attributes:k``, ``hasPrefix(attributes.k, "p")``,
``NOT``/``-``, ``AND``, ``OR`` and parentheses. Anything else is INVALID_ARGUMENT.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from local_cloud.grpc_common import invalid_argument

__all__ = ["Predicate", "compile_filter"]

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<comma>,)|(?P<ne>!=)|(?P<eq>=)|(?P<colon>:)|(?P<dot>\.)"
    r"|(?P<minus>-)|(?P<str>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')|(?P<ident>[A-Za-z0-9_]+))"
)

Predicate = Callable[[dict[str, str]], bool]


class _FilterParser:
    """Recursive-descent parser for the attribute subset of the Pub/Sub filter language."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = _TOKEN_RE.match(text, pos)
            if m is None or m.end() == pos:
                raise invalid_argument(f"Invalid filter: {text!r}")
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.pos = 0

    def parse(self) -> Predicate:
        pred = self._or()
        if self.pos != len(self.tokens):
            raise invalid_argument("Invalid filter: trailing input")
        return pred

    def _peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("eof", "")

    def _take(self, kind: str, value: str | None = None) -> str:
        k, v = self._peek()
        if k != kind or (value is not None and v != value):
            raise invalid_argument(f"Invalid filter: expected {value or kind}, got {v or k}")
        self.pos += 1
        return v

    def _or(self) -> Predicate:
        return self._joined("OR", self._and, any)

    def _and(self) -> Predicate:
        return self._joined("AND", self._unary, all)

    def _joined(
        self,
        keyword: str,
        operand: Callable[[], Predicate],
        combine: Callable[[Iterator[bool]], bool],
    ) -> Predicate:
        """``operand (keyword operand)*``: one predicate, or ``combine`` over several."""
        parts = [operand()]
        while self._peek() == ("ident", keyword):
            self.pos += 1
            parts.append(operand())
        if len(parts) == 1:
            return parts[0]
        return lambda attrs: combine(p(attrs) for p in parts)

    def _unary(self) -> Predicate:
        if self._peek() in (("ident", "NOT"), ("minus", "-")):
            self.pos += 1
            inner = self._unary()
            return lambda attrs: not inner(attrs)
        return self._primary()

    def _string(self) -> str:
        raw = self._take("str")
        return re.sub(r"\\(.)", r"\1", raw[1:-1])

    def _attribute_key(self) -> str:
        self._take("ident", "attributes")
        sep, _ = self._peek()
        if sep not in ("dot", "colon"):
            raise invalid_argument("Invalid filter: expected attributes.<key> or attributes:<key>")
        self.pos += 1
        if self._peek()[0] == "str":
            return self._string()
        return self._take("ident")

    def _primary(self) -> Predicate:
        kind, value = self._peek()
        if kind == "lp":
            self.pos += 1
            inner = self._or()
            self._take("rp")
            return inner
        if (kind, value) == ("ident", "hasPrefix"):
            self.pos += 1
            self._take("lp")
            key = self._attribute_key()
            self._take("comma")
            prefix = self._string()
            self._take("rp")
            return lambda attrs: key in attrs and attrs[key].startswith(prefix)
        start = self.pos
        self._take("ident", "attributes")
        sep = self._peek()[0]
        self.pos = start
        key = self._attribute_key()
        if sep == "colon":
            return lambda attrs: key in attrs
        op = self._peek()[0]
        if op == "eq":
            self.pos += 1
            expected = self._string()
            return lambda attrs: attrs.get(key) == expected
        if op == "ne":
            self.pos += 1
            expected = self._string()
            return lambda attrs: attrs.get(key) != expected
        raise invalid_argument("Invalid filter: expected = or != after attributes.<key>")


def compile_filter(text: str) -> Predicate | None:
    """Compile a subscription filter; ``None`` for an empty filter."""
    if not text.strip():
        return None
    return _FilterParser(text).parse()
