"""Files as exporters write them: gzip in every disguise, other formats, temp and marker objects."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import pytest

from functions.compression import DecompressionRefused, Limits, gunzip, sniff
from functions.object_rules import ignore_reason
from tests.unit.fakes import BUCKET, STATE, Harness, events_csv

PREFIX = "incoming/"


@pytest.mark.parametrize(
    ("name", "size", "rule"),
    [
        ("incoming/a.csv", 10, None),
        ("incoming/A.CSV", 10, None),
        ("incoming/shard-000000000001.csv.gz", 10, None),
        ("incoming/x.CSV.GZ", 10, None),
        ("importer/records/x.csv", 10, "reserved prefix"),
        ("exports/a.csv", 10, "outside INCOMING_PREFIX"),
        ("incoming/a.csv", 0, "empty object"),
        ("incoming/hour=12/_SUCCESS", 10, "marker"),
        ("incoming/day/complete", 10, "marker"),
        ("incoming/_started_123", 10, "marker"),
        ("incoming/out/.temp-beam-2f1c/shard-0.csv", 10, "temporary"),
        ("incoming/out/_temporary/0/part-0.csv", 10, "temporary"),
        ("incoming/abc/gsutil/tmp/parallel_composite_uploads/x.csv", 10, "temporary"),
        ("incoming/gcloud/tmp/parallel_composite_uploads/y.csv", 10, "temporary"),
        ("incoming/big.csv.part", 10, "partial"),
        ("incoming/a.json", 10, "not named *.csv"),
        ("incoming/a.csv.zip", 10, "not named *.csv"),
        ("incoming/a.csv", None, None),
    ],
)
def test_which_objects_are_imports(name: str, size: int | None, rule: str | None) -> None:
    reason = ignore_reason(name, size, PREFIX)
    assert (reason is None) if rule is None else (reason is not None and rule in reason)


@pytest.mark.parametrize("name", ["incoming/_SUCCESS", "incoming/empty.csv"])
def test_an_ignored_object_gets_no_record_and_no_message(name: str) -> None:
    h = Harness()
    h.upload(name, b"" if name.endswith(".csv") else b"x")
    writes = len(h.store.calls)
    assert h.deliver(name) == "ignored"
    assert len(h.store.calls) == writes and h.publisher.messages == []


GZ_NAMES = ["incoming/shard-000000000000.csv.gz", "incoming/gzip-bytes.csv"]


@pytest.mark.parametrize("name", GZ_NAMES)
def test_gzip_is_found_by_its_bytes_whatever_the_name(name: str) -> None:
    h = Harness()
    data = events_csv(20)
    packed = gzip.compress(data)
    generation = h.upload(name, packed)
    [message] = h.run_to_end(name, generation)
    assert message["status"] == "SUCCEEDED"
    assert message["counts"]["rows_total"] == message["counts"]["leanplum_successes"] == 20
    assert h.store.data(BUCKET, name) == packed  # the compressed upload keeps its bytes
    assert message["uris"]["normalized"] is None
    [(bucket, part)] = h.leanplum.multi_calls
    assert bucket == STATE and h.store.data(STATE, part).startswith(b"userId,event,time")


def test_a_gzip_bomb_is_refused_naming_the_limit() -> None:
    h = Harness()
    generation = h.upload("incoming/bomb.csv.gz", gzip.compress(b"\0" * 120_000_000))
    assert h.deliver("incoming/bomb.csv.gz", generation) == "rejected"
    [message] = h.messages_for("incoming/bomb.csv.gz")
    assert message["status"] == "REJECTED" and "MAX_COMPRESSION_RATIO" in message["reason"]
    assert message["uris"]["original"] and h.leanplum.multi_calls == []


def test_a_shard_past_the_size_ceiling_is_refused_naming_it() -> None:
    h = Harness(max_decompressed_bytes=100)
    generation = h.upload("incoming/big.csv.gz", gzip.compress(events_csv(20)))
    assert h.deliver("incoming/big.csv.gz", generation) == "rejected"
    assert "MAX_DECOMPRESSED_BYTES" in h.messages_for("incoming/big.csv.gz")[0]["reason"]


def zipped() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("events.csv", events_csv(3))
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (zipped(), "a Zip archive"),
        (b"PAR1\x00\x00\x00\x00", "a Parquet file"),
        (b"Obj\x01avro.schema", "an Avro container file"),
        (b"\x1f\x8bnot deflate at all", "corrupt"),
    ],
)
def test_other_formats_are_refused_saying_what_they_are(data: bytes, what: str) -> None:
    h = Harness()
    generation = h.upload("incoming/export.csv", data)
    assert h.deliver("incoming/export.csv", generation) == "rejected"
    [message] = h.messages_for("incoming/export.csv")
    assert what in message["reason"]
    if what != "corrupt":
        assert "export CSV" in message["reason"]


def test_gunzip_reads_every_member_and_refuses_truncation_and_garbage(tmp_path: Path) -> None:
    source, target = tmp_path / "in.gz", tmp_path / "out.csv"
    limits = Limits(10**9, 1000)
    source.write_bytes(gzip.compress(b"a,b\n") + gzip.compress(b"c,d\n"))
    assert gunzip(source, target, limits) == 8 and target.read_bytes() == b"a,b\nc,d\n"
    whole = gzip.compress(b"x" * 1000)
    for broken, reason in ((whole[:-12], "truncated"), (whole + b"junk", "corrupt")):
        source.write_bytes(broken)
        with pytest.raises(DecompressionRefused, match=reason):
            gunzip(source, target, limits)


def test_decompression_never_writes_much_past_the_limit(tmp_path: Path) -> None:
    source, target = tmp_path / "in.gz", tmp_path / "out.csv"
    source.write_bytes(gzip.compress(b"\0" * 200_000_000))  # about 200 kB of gzip
    with pytest.raises(DecompressionRefused, match="MAX_COMPRESSION_RATIO"):
        gunzip(source, target, Limits(10**10, 100))
    assert target.stat().st_size <= 100 * source.stat().st_size


def test_sniff_names_each_kind() -> None:
    assert [sniff(b) for b in (b"\x1f\x8b", b"PK\x03\x04", b"PAR1", b"Obj\x01", b"id,x")] == [
        "gzip", "zip", "parquet", "avro", "csv"
    ]  # fmt: skip
