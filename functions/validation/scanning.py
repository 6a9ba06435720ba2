"""Find where each chunk of records ends, without building its columns: the parallel path.

Why: in the parallel path (``parallel``) the main process only has to cut the text into the
very chunks ``ChunkReader.read_chunk`` would make, while worker processes build the columns
and apply the rules. ``RecipeReader.read_recipe`` is ``read_chunk`` step for step (same
decisions, same ``csv.reader`` calls for quoted and irregular records, same errors and line
numbers), except that where ``read_chunk`` would call ``Chunk.add_lines`` or
``Chunk.add_rows`` it records the call in a *recipe*. A worker replays the recipe on a fresh
``Chunk`` (``build_chunk``) and so gets exactly the chunk ``read_chunk`` would have built.
A plain stretch travels as one string (one copy through the pipe), not as a list per line.
"""

from __future__ import annotations

import csv

from functions.validation.reading import Chunk, ChunkReader

_len = len

#: One step of a chunk: ("lines", text of whole plain lines, any "\r"?) or ("rows", records).
Step = tuple[str, object, bool]


class Recipe:
    """The steps that build one chunk, and how many records they hold."""

    __slots__ = ("records", "steps")

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.records = 0

    def add_text(self, text: str, lines: int, returns: bool) -> None:
        """Plain lines (``text`` ends with a line feed), as ``Chunk.add_lines`` gets them."""
        self.steps.append(("lines", text, returns))
        self.records += lines

    def add_rows(self, rows: list[list[str]]) -> None:
        """Records read by ``csv.reader``, as ``Chunk.add_rows`` gets them."""
        self.steps.append(("rows", rows, False))
        self.records += len(rows)


def build_chunk(steps: list[Step], width: int) -> Chunk:
    """The chunk ``read_chunk`` would have built from the same text."""
    chunk = Chunk(width)
    for kind, payload, returns in steps:
        if kind == "lines":
            parts = str(payload).split("\n")
            parts.pop()
            chunk.add_lines(parts, returns)
        else:
            chunk.add_rows(payload)  # type: ignore[arg-type]
    return chunk


class RecipeReader(ChunkReader):
    """A ``ChunkReader`` that can also hand out chunks as recipes (see the module doc)."""

    def read_recipe(self, size: int) -> Recipe:
        """The next ``size`` records as a recipe; ``read_chunk`` without the column work.

        Kept line for line parallel to ``ChunkReader.read_chunk``: any change there must be
        made here too (the equivalence tests compare both on generated files).
        """
        recipe = Recipe()
        limit = csv.field_size_limit()
        run = 1
        while recipe.records < size and not self.problem_seen:
            need = size - recipe.records
            text, pos = self._text, self._pos
            quote = text.find('"', pos)
            end = text.rfind("\n", pos, len(text) if quote < 0 else quote) + 1
            if end > pos:
                run = 1
                lines = text.count("\n", pos, end)
                if lines > need:
                    segment = text[pos:end]
                    parts = segment.split("\n", need)
                    lines = need
                    end -= len(parts.pop())
                    longest = max(map(_len, parts)) if end - pos >= limit else 0
                    del parts, segment
                else:
                    longest = _longest_line(text, pos, end) if end - pos >= limit else 0
                returns = text.count("\r", pos, end)
                if (returns and returns != text.count("\r\n", pos, end)) or longest >= limit:
                    recipe.add_rows(self.rows(need))
                    continue
                self._pos = end
                self._lines_before += lines
                recipe.add_text(text[pos:end], lines, returns > 0)
                continue
            if quote >= 0:
                recipe.add_rows(self.rows(min(run, need)))
                run = min(run * 2, size)
                continue
            if not self._pull():
                recipe.add_rows(self.rows(need))
                break
        return recipe


def _longest_line(text: str, start: int, end: int) -> int:
    """Length of the longest line in ``text[start:end]`` (which ends with a line feed)."""
    return max(map(_len, text[start:end].split("\n")))
