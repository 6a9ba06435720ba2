"""Awkward real-world files in tests/data/validation/."""

from __future__ import annotations

from pathlib import Path

from tests.unit._validation_helpers import rows_of, run

CORPUS = Path(__file__).resolve().parent.parent / "data" / "validation"


def load(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def test_spreadsheet_export_with_bom_and_crlf() -> None:
    # Its second row has no zone ("2025-05-31 08:00:00"): read as UTC only when told so.
    report, out, _ = run(load("spreadsheet_bom_crlf.csv"), naive_timezone="UTC")
    assert report.accepted
    assert not out.startswith(b"\xef\xbb\xbf") and b"\r" not in out
    assert rows_of(out)[0] == ["userId", "event", "time", "value", "currencyCode"]
    assert rows_of(out)[1] == ["u1", "Purchase", "1748599200", "9.99", "USD"]
    assert any("byte order mark" in w for w in report.warnings)


def test_multiline_quoted_parameters_survive_and_count_as_one_row() -> None:
    report, out, _ = run(load("multiline_quoted.csv"))
    assert report.rows_total == 2
    assert rows_of(out)[1][3] == "line one\nline two, with comma"
    assert rows_of(out)[2][3] == 'say "hi"'


def test_multiline_row_numbers_match_spreadsheet() -> None:
    data = load("multiline_quoted.csv") + b"u3,Review,bad,x\n"
    report, _, _ = run(data, max_rejected_fraction=0.5)
    assert [r["row"] for r in report.rejections] == [4]


def test_millisecond_timestamps() -> None:
    _, out, _ = run(load("millisecond_timestamps.csv"))
    assert [r[2] for r in rows_of(out)[1:]] == ["1748600000", "1748600000.123", "1748600000.5"]


def test_mixed_offsets_are_the_same_instant() -> None:
    _, out, _ = run(load("mixed_offsets.csv"))
    assert {r[2] for r in rows_of(out)[1:]} == {"1748678400"}


def test_blank_lines_are_skipped_but_numbered() -> None:
    report, _out, _ = run(load("blank_lines.csv"))
    assert report.rows_total == 2 and report.rows_written == 2
    data = load("blank_lines.csv") + b"u3,Open,bad\n"
    report, _, _ = run(data, max_rejected_fraction=0.5)
    assert report.rejections[0]["row"] == 8


def test_invalid_utf8_names_row_of_first_bad_byte() -> None:
    report, out, _ = run(load("invalid_utf8_latin1.csv"))
    assert not report.accepted and out == b""
    assert "row 3" in (report.refusal_reason or "")


def test_invalid_utf8_in_header_and_on_a_later_line() -> None:
    assert "row 1" in (run(b"user\xffId,event,time\n")[0].refusal_reason or "")
    data = b"userId,event,time\n" + b"u,e,1748600000\n" * 10 + b"u,\xe9,1\n"
    assert "row 12" in (run(data)[0].refusal_reason or "")


def test_invalid_utf8_across_decode_blocks(monkeypatch: object) -> None:
    from functions.validation import decoding

    monkeypatch.setattr(decoding, "BLOCK_BYTES", 7)  # type: ignore[attr-defined]
    data = b"userId,event,time\n" + b"u,\xc3\xa9,1748600000\r\n" * 5 + b"u,e\xc3,1\n"
    report = run(data)[0]
    assert "row 7" in (report.refusal_reason or "")
    # Five identical rows: kept all (duplicate_rows=keep) to count every decoded character.
    report, out, _ = run(data[:-8], duplicate_rows="keep")
    assert report.accepted and out.count(b"\xc3\xa9") == 5
