"""Time cells read natively where the result is provably the reference's; ``timeparse`` for
the rest, once per distinct cell.

Read natively (every other cell goes to ``TimeParser.parse``, the reference itself):

- up to 16 ASCII digits below 2^33 seconds in their unit (seconds, milliseconds,
  microseconds: GA4's 16 digits included);
- nanoseconds: 18 or 19 ASCII digits from 10^17 to below 2^63 (Spark, pandas);
- ASCII decimals of at most 15 significant digits, from 1 to below 10^11 (seconds);
- ``YYYY-MM-DD[T ]hh:mm:ss[.f{1,9}]`` followed by ``Z``, ``+hh``, ``+hhmm``, ``+hh:mm`` or
  `` UTC``, years 1971 to 2200, every field in its range (hour 24, second 60 go to the
  reference).

Why these results are the reference's, bit for bit:

- Seconds. The reference divides integers (``int / int``, correctly rounded): here the
  integer (below 2^53, so exact as a double) is divided by a *column* of divisors
  (``_divide``). Polars turns a division by a constant into a multiplication by its
  reciprocal, which is not correctly rounded; the tests catch the difference.
- Nanoseconds are above 2^53, so not exact as doubles: ``_nanos`` rounds n / 10^9 to the
  nearest double in integers (whole seconds, and the fraction scaled to the double's
  spacing, half to even; no exact half can occur) and only then converts, exactly.
  Their text is the double's shortest round-trip text, as ``repr``; Polars prints doubles
  the same way (a test compares them).
- Dates. ``datetime.timestamp()`` of an aware time is its microseconds since 1970 divided
  by 10^6 (``timedelta.total_seconds``); here the same integer, from the calendar by
  integer arithmetic (days from civil), divided the same way. Fractions are cut to
  microseconds as ``ciso8601`` does.
- Text. The reference prints ``repr`` (the shortest text that reads back as the same
  double). Below 2^33 a double's spacing is under 10^-6, so any decimal with at most six
  decimals is the only text of its length or shorter that reads back as its double: the
  digits of the integer, cut at the unit, trailing zeros dropped, *are* the ``repr``. A
  decimal of at most 15 significant digits likewise reads back as itself (DBL_DIG).
"""

from __future__ import annotations

import polars as pl

from functions.validation.columnar.verdicts import Verdicts
from functions.validation.timeparse import FORMATS, TimeParser

#: Format codes are indexes in ``timeparse.FORMATS``.
SECONDS, MILLIS, MICROS = 0, 1, 2
NANOS = FORMATS.index("unix_nanoseconds")
ISO, SQL_UTC = FORMATS.index("iso8601"), FORMATS.index("sql_utc")
#: Microseconds (and milliseconds) below this many seconds print exactly (see above).
_EXACT_SECONDS = 2**33
_DIGITS = r"^[0-9]{1,16}$"
_NANO_DIGITS = r"^[0-9]{18,19}$"
_DECIMAL = r"^(?:[0-9]+\.[0-9]*|\.[0-9]+)$"
_DATE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?| UTC)$"
)


def _int(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Int64, strict=False)


def _divide(number: pl.Expr, divisor: pl.Expr) -> pl.Expr:
    """``number / divisor`` correctly rounded, as Python divides integers.

    Polars divides by a constant (a literal, or a column it holds as one value because
    every row got the same literal) as a product by its inverse, which is not correctly
    rounded. ``number * 0 + divisor`` is a real column whatever the rows hold.
    """
    full = (number * 0 + divisor).cast(pl.Float64)
    return number.cast(pl.Float64) / full


def _matching(cells: pl.DataFrame, pattern: str) -> pl.LazyFrame:
    """The cells matching ``pattern``, as the start of a reader's lazy query."""
    return cells.lazy().filter(pl.col("cell").str.contains(pattern))


def _unit_text(whole: pl.Expr, part: pl.Expr, places: int) -> pl.Expr:
    """``repr`` of whole + part / 10^places (0 <= part < 10^places), as argued above."""
    decimals = part.cast(pl.String).str.pad_start(places, "0").str.strip_chars_end("0")
    return (
        pl.when(part == 0)
        .then(whole.cast(pl.String))
        .otherwise(pl.concat_str([whole.cast(pl.String), pl.lit("."), decimals]))
    )


def _digits(cells: pl.DataFrame) -> pl.LazyFrame:
    """``at``, seconds, text and format of the integer cells read natively.

    (Each step is its own ``with_columns``: one big expression would evaluate shared
    parts once per use. Lazy: one query per block runs the three readers at once, with
    a third less time than eager calls took.)
    """
    cell = pl.col("cell")
    found = _matching(cells, _DIGITS).with_columns(number=_int(cell))
    found = found.with_columns(
        fmt=pl.when(pl.col("number") < 10**11)
        .then(SECONDS)
        .when(pl.col("number") < 10**14)
        .then(MILLIS)
        .when(pl.col("number") < _EXACT_SECONDS * 10**6)
        .then(MICROS)
    ).filter(pl.col("fmt").is_not_null())
    found = found.with_columns(
        divisor=pl.when(pl.col("fmt") == SECONDS)
        .then(1)
        .when(pl.col("fmt") == MILLIS)
        .then(1000)
        .otherwise(10**6)
    )
    number, divisor = pl.col("number"), pl.col("divisor")
    return found.select(
        "at",
        _divide(number, divisor).alias("secs"),
        pl.when(pl.col("fmt") == SECONDS)
        .then(pl.when(cell.str.starts_with("0")).then(number.cast(pl.String)).otherwise(cell))
        .when(pl.col("fmt") == MILLIS)
        .then(_unit_text(number // 1000, number % 1000, 3))
        .otherwise(_unit_text(number // 10**6, number % 10**6, 6))
        .alias("text"),
        "fmt",
    )


def _nanos(cells: pl.DataFrame) -> pl.LazyFrame:
    """``at``, seconds, text and format of nanosecond cells, from 10^17 to below 2^63.

    n = whole * 10^9 + part, whole from 10^8 to below 2^34 (27 to 34 bits). Doubles from
    2^(bits-1) to 2^bits are the multiples of 2^-shift, shift = 53 - bits (19 to 26), so the
    nearest is (whole * 2^shift + round(part * 2^shift / 10^9)) / 2^shift: a numerator of at
    most 2^53 (exact as a double) over a power of two (an exact division). part * 2^shift is
    below 2^56, and never an exact half of 10^9 (that needs 2^(shift+1) to divide 10^9).
    """
    cell = pl.col("cell")
    found = (
        _matching(cells, _NANO_DIGITS)
        .with_columns(number=_int(cell))  # null beyond 2^63
        .filter(pl.col("number") >= 10**17)
    )
    number = pl.col("number")
    found = found.with_columns(whole=number // 10**9, part=number % 10**9)
    whole = pl.col("whole")
    bits = 64 - whole.cast(pl.UInt64).bitwise_leading_zeros().cast(pl.Int64)
    found = found.with_columns(scale=pl.lit(2, dtype=pl.Int64).pow(53 - bits).cast(pl.Int64))
    scale = pl.col("scale")
    found = found.with_columns(scaled=pl.col("part") * scale)
    scaled = pl.col("scaled")
    found = found.with_columns(
        numerator=whole * scale + scaled // 10**9 + ((scaled % 10**9) * 2 > 10**9).cast(pl.Int64)
    )
    secs = _divide(pl.col("numerator"), scale)
    return found.select(
        "at",
        secs.alias("secs"),
        pl.when(secs.floor() == secs)
        .then(secs.cast(pl.Int64).cast(pl.String))
        .otherwise(secs.cast(pl.String))
        .alias("text"),
        pl.lit(NANOS).alias("fmt"),
    )


def _decimals(cells: pl.DataFrame) -> pl.LazyFrame:
    """``at``, seconds, text and format of decimal cells of up to 15 significant digits."""
    cell = pl.col("cell")
    found = _matching(cells, _DECIMAL).with_columns(
        whole=cell.str.extract(r"^([0-9]*)\.", 1).str.strip_chars_start("0"),
        fraction=cell.str.extract(r"\.([0-9]*)$", 1).str.strip_chars_end("0"),
    )
    whole, fraction = pl.col("whole"), pl.col("fraction")
    found = found.filter(
        whole.str.len_bytes().is_between(1, 11)
        & (whole.str.len_bytes() + fraction.str.len_bytes() <= 15)
    )
    return found.select(
        "at",
        cell.cast(pl.Float64, strict=False).alias("secs"),
        pl.when(fraction == "")
        .then(whole)
        .otherwise(pl.concat_str([whole, pl.lit("."), fraction]))
        .alias("text"),
        pl.lit(SECONDS).alias("fmt"),
    )


def _dates(cells: pl.DataFrame) -> pl.LazyFrame:
    """``at``, seconds, text and format of ISO 8601 and SQL UTC cells, fields in range."""
    cell = pl.col("cell")
    found = _matching(cells, _DATE).with_columns(
        year=_int(cell.str.slice(0, 4)),
        month=_int(cell.str.slice(5, 2)),
        day=_int(cell.str.slice(8, 2)),
        hour=_int(cell.str.slice(11, 2)),
        minute=_int(cell.str.slice(14, 2)),
        second=_int(cell.str.slice(17, 2)),
        fraction=cell.str.slice(19).str.extract(r"^\.([0-9]+)", 1).fill_null(""),
        zone=cell.str.slice(19).str.extract(r"^(?:\.[0-9]+)?(.*)$", 1),
    )
    zone, year, month = pl.col("zone"), pl.col("year"), pl.col("month")
    utc = (zone == " UTC") | (zone == "Z")
    found = found.with_columns(
        micros=_int(pl.col("fraction").str.slice(0, 6).str.pad_end(6, "0")),
        sign=pl.when(zone.str.starts_with("-")).then(-1).otherwise(1),
        offset_hours=pl.when(utc).then(0).otherwise(_int(zone.str.slice(1, 2))),
        offset_minutes=pl.when(utc | (zone.str.len_bytes() == 3))
        .then(0)
        .otherwise(_int(zone.str.slice(-2, 2))),
        month_days=pl.when(month == 2)
        .then(
            pl.when(((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0))
            .then(29)
            .otherwise(28)
        )
        .when(month.is_in([4, 6, 9, 11]))
        .then(30)
        .otherwise(31),
    )
    found = found.filter(
        year.is_between(1971, 2200)
        & month.is_between(1, 12)
        & pl.col("day").is_between(1, pl.col("month_days"))
        & (pl.col("hour") <= 23)
        & (pl.col("minute") <= 59)
        & (pl.col("second") <= 59)
        & (pl.col("offset_hours") <= 23)
        & (pl.col("offset_minutes") <= 59)
    )
    # Days from civil (H. Hinnant), years from 1971: no negative division anywhere.
    found = found.with_columns(shifted=year - (month <= 2).cast(pl.Int64))
    found = found.with_columns(era=pl.col("shifted") // 400)
    found = found.with_columns(
        year_of_era=pl.col("shifted") - pl.col("era") * 400,
        day_of_year=(153 * (month + pl.when(month > 2).then(-3).otherwise(9)) + 2) // 5
        + pl.col("day")
        - 1,
    )
    year_of_era = pl.col("year_of_era")
    found = found.with_columns(
        days=pl.col("era") * 146097
        + year_of_era * 365
        + year_of_era // 4
        - year_of_era // 100
        + pl.col("day_of_year")
        - 719468
    )
    found = found.with_columns(
        total=(
            pl.col("days") * 86400
            + pl.col("hour") * 3600
            + pl.col("minute") * 60
            + pl.col("second")
            - pl.col("sign") * (pl.col("offset_hours") * 3600 + pl.col("offset_minutes") * 60)
        )
        * 10**6
        + pl.col("micros"),
    )
    total = pl.col("total")
    return found.select(
        "at",
        _divide(total, pl.lit(10**6)).alias("secs"),
        _unit_text(total // 10**6, total % 10**6, 6).alias("text"),
        pl.when(zone == " UTC").then(SQL_UTC).otherwise(ISO).alias("fmt"),
    )


class ColumnTimes:
    """Seconds, canonical text and format code of a time column (code -1: not a time).

    Cells not read natively are parsed by the reference once each and remembered
    (``verdicts.Verdicts``); ``reason`` says why a cell is not a time.
    """

    def __init__(self, parser: TimeParser) -> None:
        self._parser = parser
        self._known = Verdicts(self._parse)

    def read(self, frame: pl.DataFrame, column: str, fill: float) -> pl.DataFrame:
        """Columns ``secs`` (Float64), ``text`` (String), ``fmt`` (Int8) for ``column``."""
        cells = frame.select(pl.col(column).alias("cell")).with_row_index("at")
        parts = [part(cells) for part in (_digits, _nanos, _decimals, _dates)]
        native = pl.concat(
            [part.with_columns(pl.col("fmt").cast(pl.Int8)) for part in parts]
        ).collect()
        if native.height == cells.height:  # every cell read natively: put them in order
            return native.sort("at").drop("at")
        found = (
            cells.select("at").join(native, on="at", how="left", maintain_order="left").drop("at")
        )
        missing = found["fmt"].is_null()
        if not missing.any():
            return found
        others = frame[column].filter(missing).unique().to_list()
        verdicts = self._known.of(others)
        secs = [fill if verdict[0] is None else verdict[0] for verdict in verdicts]
        texts = [verdict[1] for verdict in verdicts]
        codes = [verdict[2] for verdict in verdicts]
        table = pl.DataFrame(
            {
                "__cell": pl.Series(others, dtype=pl.String),
                "__secs": pl.Series(secs, dtype=pl.Float64),
                "__text": pl.Series(texts, dtype=pl.String),
                "__fmt": pl.Series(codes, dtype=pl.Int8),
            }
        )
        joined = frame.select(pl.col(column).alias("__cell")).join(
            table, on="__cell", how="left", maintain_order="left"
        )
        return found.select(
            pl.coalesce(pl.col("secs"), joined["__secs"]).alias("secs"),
            pl.coalesce(pl.col("text"), joined["__text"]).alias("text"),
            pl.coalesce(pl.col("fmt"), joined["__fmt"]).alias("fmt"),
        )

    def _parse(self, text: str) -> tuple[float | None, str, int]:
        parsed = self._parser.parse(text)
        if parsed is None:
            return None, "", -1
        return parsed[0], parsed[1], FORMATS.index(parsed[2])

    def reason(self, text: str) -> str:
        """Why ``text`` is not a time (the reference's words; failures are rare, so they are
        not remembered)."""
        return self._parser.reason(text)
