"""Property tests: conservation of rows and idempotence, on generated files."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.validation import ValidationOptions, validate_csv
from tests.unit._validation_helpers import NOW, NOW_TS

DAY = 86400
texts = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Z", "Cc")), max_size=8
)
times = st.one_of(
    st.integers(NOW_TS - 500 * DAY, NOW_TS + 2 * DAY).map(str),
    st.integers(NOW_TS - 500 * DAY, NOW_TS).map(lambda t: str(t * 1000 + 7)),
    st.floats(NOW_TS - 400 * DAY, NOW_TS, allow_nan=False).map(lambda t: f"{t:.3f}"),
    st.sampled_from(["2025-05-30T10:00:00Z", "2025-05-30T10:00:00.250+02:00", "junk", ""]),
)
rows = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(["u1", " u2", "u3 ", ""]), texts),
        st.one_of(st.sampled_from(["Buy", "Open", "a|b", "1"]), texts),
        times,
        st.sampled_from(["", "1", "2.50", "x"]),
        st.sampled_from(["", "usd", "EUR", "XYZ"]),
        texts,
    ),
    max_size=25,
)
HEADER = ["userId", "event", "time", "value", "currencyCode", "note"]


def encode(data: list[tuple[str, ...]], crlf: bool) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(HEADER)
    writer.writerows(data)
    return buffer.getvalue().encode("utf-8")


def validate(raw: bytes, now_shift: int = 0, fraction: float = 1.0) -> tuple[object, bytes]:
    output = io.BytesIO()
    options = ValidationOptions(
        now=NOW + timedelta(seconds=now_shift), max_rejected_fraction=fraction
    )
    report = validate_csv(io.BytesIO(raw), output, io.BytesIO(), options)
    return report, output.getvalue()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows, st.booleans())
def test_conservation(data: list[tuple[str, ...]], crlf: bool) -> None:
    report, _ = validate(encode(data, crlf))
    r = report.to_dict()  # type: ignore[attr-defined]
    assert r["rows_total"] == r["rows_written"] + r["rows_rejected"]
    assert sum(r["rejections_by_reason"].values()) == r["rows_rejected"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows, st.booleans(), st.integers(1, 900))
def test_idempotence(data: list[tuple[str, ...]], crlf: bool, later: int) -> None:
    report, first = validate(encode(data, crlf))
    if not report.accepted:  # type: ignore[attr-defined]
        return
    again, second = validate(first, now_shift=later)
    assert again.accepted  # type: ignore[attr-defined]
    assert again.rows_rejected == 0  # type: ignore[attr-defined]
    assert second == first
