"""The columnar path's thread helper: order, and errors where they are due."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from functions.validation.columnar.ahead import ahead


def test_ahead_keeps_order_and_raises_where_the_producer_failed() -> None:
    def produce() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("third")

    seen: list[int] = []
    with pytest.raises(ValueError, match="third"):
        for item in ahead(produce()):
            seen.append(item)
    assert seen == [1, 2]


def test_ahead_stops_its_producer_when_the_consumer_stops() -> None:
    made: list[int] = []

    def produce() -> Iterator[int]:
        for item in range(1000):
            made.append(item)
            yield item

    stream = ahead(produce())
    assert next(stream) == 0
    stream.close()  # joins the producer thread
    count = len(made)
    assert count <= 3  # one consumed, one handed over, one waiting at most
    assert len(made) == count  # and it makes no more
