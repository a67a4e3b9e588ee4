"""Shared machinery of the tabular mail-telemetry readers (EmailEvents and message trace).

Both readers work in two steps, so that ten million CSV rows never pass through Python:

1. **Stage raw.** Whatever shape a file has, it becomes one relation of VARCHAR columns named
   after Microsoft's columns, plus ``_row`` (1-based row in the file), ``_raw`` (the row's text
   where it could not be split into columns) and ``_error`` (why it could not). CSV goes
   through DuckDB's ``read_csv``; JSON shapes are parsed in Python and staged through Arrow.
2. **Normalise.** One SQL statement per source maps that relation onto ``MessageEvent``, using
   the ``dsg_*`` macros defined here for the parsing both sources share.

A source with one row per CSV record (EmailEvents) is normalised as DuckDB streams the CSV: the
raw relation is a view, no copy of the raw columns is ever made, and the rows are numbered
afterwards from the stage's insertion order. At ten million rows that copy cost more than
everything else the reader does.

Everything in a file is attacker-controlled, header names included. Values only ever travel as
columns or parameters; file-derived column names are replaced by generated identifiers
(``_extra_1``...) and their real names travel as parameters.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import re
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, ClassVar

import duckdb
import numpy as np
import pyarrow as pa

from dsguard.evidence.addresses import IPV4_PATTERN, IPV6_PATTERN
from dsguard.evidence.duck import memory_limit_bytes, registered
from dsguard.evidence.model import MessageEvent
from dsguard.evidence.schema import STAGE_COLUMNS, stage_table_sql
from dsguard.sources.base import (
    BATCH_ROWS,
    Reader,
    SourceError,
    StageResult,
    rejected_apart,
    to_json_text,
)

# Day/month order of slash dates such as ``1/6/2025 8:15:30 AM`` (Get-MessageTraceV2 exports,
# the Log Analytics portal). "MDY" is what en-US tenants write; set "DMY" for en-GB exports.
SLASH_DATE_ORDER = "MDY"

# Delimiters tried on a CSV header, comma first; the others are what non-English Excel and
# hand-made exports use.
DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}

# Longest value shown in a reject reason.
SHOWN_CHARS = 80

_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_HEADER_PROBE = 1 << 20  # the header must sit in the first MiB
_LINE_CHUNK = 8 << 20  # bytes read at a time to survey and rewrite lines
_LINE_WINDOW = 1 << 20  # a window without a line break: a line may pass DuckDB's 2 MB default
MAX_LINE_BYTES = 64 << 20  # the longest CSV line read (DuckDB then buffers twice that)
MIXED_LINE_ENDINGS = "lines end in more than one way (CRLF, LF, CR); each read as a line break"
_SURROGATE = re.compile("[\ud800-\udfff]")
_UTC_SUFFIX = re.compile(r"\s*\[\s*UTC\s*\]\s*$", re.IGNORECASE)

# DuckDB reads a CSV in buffers of 32 MB by default, each one fresh memory the kernel must
# fault in; 4 MB buffers cut the page faults of reading a 10M-row file by a quarter at the
# same speed (benchmarks/HISTORY.md). Lines up to ``max_line_size`` (2 MB) still fit; a file
# with longer ones is read with room for them (``csv_text``).
CSV_BUFFER_BYTES = 4 << 20
# A large file is read in buffers of about this many row groups' worth of lines instead
# (``csv_buffer_bytes``). Each buffer reaches the insert as one batch, and an insert that
# keeps insertion order copies every batch smaller than a row group once more to merge it
# into full ones: at 10M rows the normalising statement spent about a sixth less CPU with
# batches past a row group (benchmarks/HISTORY.md, twelfth session). The last row group of
# each batch is left partial; a checkpoint rewrites partial row groups whenever a run of
# them fits into fewer (DuckDB's vacuum), which at 1.2 and 2.4 row groups a batch cost
# 18-42 s. 1.75 leaves a partial group of three quarters, past the half where any merge
# pays, with room either side for lines that run longer or shorter than sampled.
ROW_GROUP_ROWS = 122_880  # DuckDB's rows per row group
BATCH_ROW_GROUPS = 1.75
# The most of the memory limit one buffer may take (the reader may hold more than one); a
# file whose batch would need more is read in ``CSV_BUFFER_BYTES`` buffers as before.
_BUFFER_SHARE = 6
_LINE_SAMPLE_EVERY = 16  # chunks of ``_LINE_CHUNK`` between those whose lines are counted

# ----------------------------------------------------------------------------- SQL patterns
# A value carries a zone when its time part ends in Z, UTC/GMT or a numeric offset.
_ZONED_PATTERN = r"(?i):[0-9]{2}(\.[0-9]+)?\s*(z|utc|gmt|[+-][0-9]{2}(:?[0-9]{2})?)$"
# What nearly every export writes: ISO 8601 in UTC, e.g. ``2025-01-06T08:15:30.1234567Z``.
_ZULU_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$"


def slash_date_formats(order: str = SLASH_DATE_ORDER) -> list[str]:
    """``strptime`` formats for slash dates in the given day/month order."""
    date = {"MDY": "%m/%d/%Y", "DMY": "%d/%m/%Y"}[order]
    times = ("%I:%M:%S %p", "%I:%M:%S.%n %p", "%I:%M %p", "%H:%M:%S", "%H:%M:%S.%n", "%H:%M")
    return [f"{date}{sep}{t}" for sep in (" ", ", ") for t in times]


def sql_str(text: str) -> str:
    """A SQL string literal for a constant of ours (patterns, vocabulary) — never file data."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted identifier for a column name of ours (canonical or generated)."""
    return '"' + name.replace('"', '""') + '"'


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``dsg_*`` macros the normalisation SQL of both sources uses.

    Timestamps: ISO 8601 with ``Z`` or an offset (a file may mix zones), 7 fractional digits,
    a space for ``T``, and slash dates (``SLASH_DATE_ORDER``). Values without a zone are read
    as UTC whatever the session time zone is.
    """
    formats = "[" + ", ".join(sql_str(f) for f in slash_date_formats()) + "]"
    # Each macro tests for the cheap common case first (a value without padding, an ISO
    # timestamp ending in Z): ``trim`` and regular expressions cost several times a
    # ``prefix``/``suffix`` test, and these run on every value of ten million rows. An
    # address tests its first and last character's code point once each, not eight
    # ``prefix``/``suffix`` calls (0.30 -> 0.24 CPU-seconds per 3M addresses).
    pads = ", ".join(str(ord(c)) for c in " <>\t")
    padded = f"ascii(x) IN ({pads}) OR ascii(x[-1]) IN ({pads})"
    macros = {
        "dsg_text(x)": (
            "CASE WHEN prefix(x, ' ') OR suffix(x, ' ') THEN nullif(trim(x), '')"
            " ELSE nullif(x, '') END"
        ),
        "dsg_addr(x)": (
            f"lower(CASE WHEN {padded} THEN nullif(trim(x, ' <>' || chr(9)), '')"
            " ELSE nullif(x, '') END)"
        ),
        "dsg_domain(addr)": (
            "CASE WHEN contains(addr, '@') THEN nullif(split_part(addr, '@', -1), '') END"
        ),
        "dsg_zoneless(x)": f"NOT regexp_matches(x, {sql_str(_ZONED_PATTERN)})",
        "dsg_zulu(x)": f"suffix(x, 'Z') AND regexp_matches(x, {sql_str(_ZULU_PATTERN)})",
        # ``zulu`` is ``dsg_zulu(x)``, passed in so a statement tests each value once.
        "dsg_ts(x, zulu)": (
            "CASE WHEN zulu THEN TRY_CAST(x AS TIMESTAMPTZ)"
            " WHEN dsg_zoneless(trim(x)) THEN timezone('UTC', coalesce("
            f"TRY_CAST(trim(x) AS TIMESTAMP), try_strptime(trim(x), {formats})::TIMESTAMP))"
            " ELSE TRY_CAST(trim(x) AS TIMESTAMPTZ) END"
        ),
        # The value of a time read as UTC for want of a zone, for the reader's warning.
        "dsg_zoneless_note(x, ts, zulu)": (
            "CASE WHEN ts IS NOT NULL AND NOT zulu AND dsg_zoneless(trim(x)) THEN x END"
        ),
        "dsg_ipv4(x)": f"regexp_full_match(x, {sql_str(IPV4_PATTERN)})",
        "dsg_ipv6(x)": f"regexp_full_match(x, {sql_str(IPV6_PATTERN)})",
        # Text shown in a reject reason: one line, quoted, truncated.
        "dsg_show(x)": (
            f"'\"' || left(regexp_replace(x, '\\s+', ' ', 'g'), {SHOWN_CHARS})"
            f" || CASE WHEN length(x) > {SHOWN_CHARS} THEN '…\"' ELSE '\"' END"
        ),
        # JSON text, or NULL when the text is not JSON (never raises, unlike json_extract).
        "dsg_json(x)": "TRY_CAST(x AS JSON)",
        # Whether ``dsg_json`` text is an object. Valid JSON that starts with ``{`` can only
        # be one, which spares the common case a second parse.
        "dsg_json_object(j)": (
            "CASE WHEN prefix(j, '{') THEN true ELSE coalesce(json_type(j), '') = 'OBJECT' END"
        ),
    }
    for signature, body in macros.items():
        con.execute(f"CREATE OR REPLACE TEMP MACRO {signature} AS {body}")


# ----------------------------------------------------------------------------- files
@dataclass(frozen=True)
class TextFile:
    """A bundle file as plain UTF-8 text that DuckDB and Python can both read.

    Gzip and UTF-16 (Excel, Windows PowerShell) files are decoded into a temporary copy, so a
    damaged stream is met here, in Python, and not inside a DuckDB query (which would abort
    the ingest transaction). Plain UTF-8 files are read in place.
    """

    path: Path
    note: str | None = None  # a problem met while decoding, for a warning
    workdir: Path | None = None  # where a rewritten copy may go
    longest_line: int = 0  # bytes in the longest line, when csv_text found one overlong
    line_bytes: float = 0.0  # average bytes a line, when csv_text sampled them

    def open_bytes(self) -> IO[bytes]:
        return self.path.open("rb")


def _sniff_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head[:4096]
    if len(sample) >= 4:
        odd, even = sample[1::2].count(0), sample[0::2].count(0)
        if odd > len(sample) // 4 and even == 0:
            return "utf-16-le"
        if even > len(sample) // 4 and odd == 0:
            return "utf-16-be"
    return "utf-8"


def read_in_place(path: Path) -> bool:
    """Whether ``utf8_file`` reads the file where it is: neither gzip nor UTF-16."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    return not head.startswith(_GZIP_MAGIC) and not _sniff_encoding(head).startswith("utf-16")


def utf8_file(path: Path, workdir: Path) -> TextFile:
    """Sniff compression and encoding; decode gzip and UTF-16 into ``workdir``."""
    note = None
    with path.open("rb") as fh:
        gzipped = fh.read(2) == _GZIP_MAGIC
    if gzipped:
        plain = workdir / (path.name + ".raw")
        note = _gunzip(path, plain)
        path = plain
    with path.open("rb") as fh:
        encoding = _sniff_encoding(fh.read(4096))
    if encoding.startswith("utf-16"):
        target = workdir / (path.name + ".utf8")
        with path.open("rb") as src, target.open("wb") as dst:
            text = codecs.getreader(encoding)(src, errors="replace")
            while chunk := text.read(1 << 20):
                dst.write(chunk.encode("utf-8"))
        path = target
    return TextFile(path, note, workdir)


def _gunzip(source: Path, target: Path) -> str | None:
    """Decompress every gzip member of ``source``; on damage keep what came out and say so.

    ``gzip.open`` raises on a cut-short stream before handing over the data it decoded, so
    this drives ``zlib`` directly.
    """
    inflate, fed = zlib.decompressobj(_GZIP_WBITS), False
    with source.open("rb") as src, target.open("wb") as dst:
        try:
            while chunk := src.read(1 << 20):
                while chunk:
                    dst.write(inflate.decompress(chunk))
                    fed, chunk = True, b""
                    if inflate.eof:  # the next member, if any, starts in unused_data
                        chunk = inflate.unused_data.lstrip(b"\x00")  # zero padding is allowed
                        inflate, fed = zlib.decompressobj(_GZIP_WBITS), False
        except zlib.error as exc:
            return f"compressed stream damaged ({exc}); read what came before the damage"
        if fed:
            dst.write(inflate.flush())
            return "compressed stream cut short; read what it held"
    return None


@dataclass(frozen=True)
class LineSurvey:
    """How a CSV's lines end and how long they run, before DuckDB reads it."""

    mixed: bool  # lines end more than one way (CRLF, LF, a lone CR) outside quoted values
    longest: int  # bytes in the longest line, measured when one may pass _LONG_LINE; else 0
    line_bytes: float = 0.0  # average bytes a line, from sampled chunks; 0 when none ended


def survey_lines(path: Path) -> LineSurvey:
    """What DuckDB's CSV reader must be told or spared before it reads ``path``.

    It takes the line ending of the first lines for the whole file: past a switch it merges
    the rest of the file into a few broken records (rows lost from the count), rejects every
    line, or fails the statement and with it the ingest. Files joined from a Windows and a
    Unix export, or appended to by another tool, do this. And a line longer than its buffer
    is rejected, or, unquoted and past twice the buffer, dropped without a word.

    One pass settles the usual file: no CR means pure LF (``memchr``, about 0.05 s a GB), and
    a line break in every aligned window of ``_LINE_WINDOW`` bytes means no line is longer
    than twice that. A file with CRs is pure CRLF when every CR is followed by an LF and
    there are as many of each (about 0.2 s a GB); otherwise only line breaks outside quoted
    values count, since a Defender or Excel export keeps a value's own line breaks, often as
    LF in a CRLF file (outside is where an even number of quotes was seen). A window without
    a line break has the longest line measured.
    """
    buf = bytearray(_LINE_CHUNK)
    view = np.frombuffer(buf, dtype=np.uint8)
    with path.open("rb", buffering=0) as fh:
        cr = long = False
        chunks = sampled = breaks = 0
        while not (cr and long) and (n := fh.readinto(buf)):
            if chunks % _LINE_SAMPLE_EVERY == 0:  # counting every chunk costs 0.3 s a GB
                sampled, breaks = sampled + n, breaks + buf.count(b"\n", 0, n)
            chunks += 1
            cr = cr or buf.find(b"\r", 0, n) >= 0
            long = long or any(
                buf.find(b"\n", w, w + _LINE_WINDOW) < 0
                for w in range(0, n - _LINE_WINDOW + 1, _LINE_WINDOW)
            )
        mixed = False
        if cr:
            fh.seek(0)
            if not _pure_crlf(fh, buf, view):
                fh.seek(0)
                mixed = _mixed_outside_quotes(fh, buf, view)
        longest = 0
        if long:
            fh.seek(0)
            longest = _longest_line(fh, buf, view)
    return LineSurvey(mixed, longest, sampled / breaks if breaks else 0.0)


def _longest_line(fh: io.FileIO, buf: bytearray, view: np.ndarray) -> int:
    """Bytes in the longest run without a CR or LF."""
    longest, last = 0, -1  # the last break's offset in the file
    offset = 0
    while n := fh.readinto(buf):
        chunk = view[:n]
        breaks = np.flatnonzero((chunk == 10) | (chunk == 13)) + offset
        if breaks.size:
            longest = max(longest, int(breaks[0] - last - 1))
            if breaks.size > 1:
                longest = max(longest, int(np.max(np.diff(breaks))) - 1)
            last = int(breaks[-1])
        offset += n
    return max(longest, offset - last - 1)


def _pure_crlf(fh: io.FileIO, buf: bytearray, view: np.ndarray) -> bool:
    """Every CR is followed by an LF, and there are as many LFs: then every LF follows a CR."""
    crs = lfs = 0
    pending = False  # the last byte read was a CR
    while n := fh.readinto(buf):
        chunk = view[:n]
        if pending and chunk[0] != 10:
            return False
        at_cr = np.flatnonzero(chunk == 13)
        crs += at_cr.size
        lfs += int(np.count_nonzero(chunk == 10))
        pending = bool(at_cr.size) and at_cr[-1] == n - 1
        inner = at_cr[:-1] if pending else at_cr
        if not np.all(chunk[inner + 1] == 10):
            return False
    return not pending and crs == lfs


def _mixed_outside_quotes(fh: io.FileIO, buf: bytearray, view: np.ndarray) -> bool:
    """More than one kind of line break outside quoted values."""
    kinds: set[str] = set()
    quotes = 0  # quotes before this chunk
    prev_cr = prev_out = False  # the last byte read was a CR; outside any quoted value
    while n := fh.readinto(buf):
        chunk = view[:n]
        cr, lf = chunk == 13, chunk == 10
        quote_at = np.flatnonzero(chunk == 34)
        if prev_out:
            kinds.add("crlf" if lf[0] else "cr")
        at_cr = np.flatnonzero(cr[:-1])  # CRs whose next byte is in this chunk
        if at_cr.size:
            paired, out = lf[at_cr + 1], _outside(quote_at, quotes, at_cr)
            kinds.update(k for k, m in (("crlf", paired), ("cr", ~paired)) if np.any(out & m))
        at_lf = np.flatnonzero(lf)
        lone = at_lf[~np.where(at_lf > 0, cr[at_lf - 1], prev_cr)]
        if lone.size and np.any(_outside(quote_at, quotes, lone)):
            kinds.add("lf")
        if len(kinds) > 1:
            return True
        prev_cr = bool(cr[-1])
        prev_out = prev_cr and bool(_outside(quote_at, quotes, np.array([n - 1]))[0])
        quotes += quote_at.size
    if prev_out:
        kinds.add("cr")
    return len(kinds) > 1


def _outside(quote_at: np.ndarray, before: int, at: np.ndarray) -> np.ndarray:
    """Which positions ``at`` of a chunk lie outside quoted values: an even number of quotes
    before them (``quote_at``, the chunk's quotes, after ``before`` in earlier chunks)."""
    return (np.searchsorted(quote_at, at) + before) % 2 == 0


def csv_text(text: TextFile, file: str) -> tuple[TextFile, str | None]:
    """``text`` made safe for DuckDB's CSV reader (``survey_lines``), and a warning if it was
    rewritten: mixed line endings become LF in a copy in its workdir (inside a quoted value a
    CRLF then reads as LF, as in a file written on Unix), and an overlong line sets how much
    DuckDB must buffer. A line too long to buffer refuses the file rather than lose the line.
    """
    survey = survey_lines(text.path)
    if survey.longest > MAX_LINE_BYTES:
        raise SourceError(
            f"{file}: a line of {survey.longest / (1 << 20):.0f} MB, longer than the"
            f" {MAX_LINE_BYTES >> 20} MB dsguard reads; nothing was read from the file"
        )
    text = replace(text, longest_line=survey.longest, line_bytes=survey.line_bytes)
    if not survey.mixed or text.workdir is None:
        return text, None
    target = text.workdir / (text.path.name + ".lf")
    with text.path.open("rb") as src, target.open("wb") as dst:
        carry = b""
        while chunk := src.read(_LINE_CHUNK):
            data = carry + chunk
            # A CR at the end of a chunk may be the first half of a CRLF split across two.
            carry = b"\r" if data.endswith(b"\r") else b""
            if carry:
                data = data[:-1]
            dst.write(data.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
        if carry:
            dst.write(b"\n")
    return replace(text, path=target), MIXED_LINE_ENDINGS


def read_head(text: TextFile, limit: int = _HEADER_PROBE) -> str:
    """The start of the file as text (BOM removed), for header and shape sniffing."""
    with text.open_bytes() as fh:
        head = fh.read(limit)
    return head.decode("utf-8-sig", errors="replace")


# ----------------------------------------------------------------------------- columns
def clean_name(name: str) -> str:
    """A header or key name as written, minus BOM, padding and Log Analytics' `` [UTC]``."""
    return _UTC_SUFFIX.sub("", utf8_safe(name).replace("\ufeff", "").strip().strip('"').strip())


@dataclass
class RawLayout:
    """The columns of one file's raw relation, in file order.

    Known columns keep Microsoft's canonical spelling whatever case the file used; unknown
    ones get generated names (``_extra_1``...) so that no file-derived text becomes SQL.
    """

    known: tuple[str, ...]
    columns: list[tuple[str, str]] = field(default_factory=list)  # (raw column, shown name)
    extras: list[str] = field(default_factory=list)  # unknown names, as written
    declared_utc: set[str] = field(default_factory=set)  # canonical names headed "[UTC]"
    # Set when the raw relation streams straight from the CSV: ``_row`` is NULL there and
    # ``number_streamed_rows`` numbers the staged rows afterwards.
    streamed: bool = False
    csv_skip: int = 0  # lines before a streamed CSV's header
    # A streamed CSV: its broken records wait in DuckDB's rejects table, which gives their
    # byte positions in this file. None for streamed JSON lines.
    csv_path: Path | None = None
    _lookup: dict[str, str] = field(default_factory=dict)
    _canonical: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._canonical = {k.lower(): k for k in self.known}

    def canonical(self, name: str) -> str | None:
        """Microsoft's spelling of a known column name, without registering it."""
        return self._canonical.get(clean_name(name).lower())

    def column(self, name: str) -> str:
        """The raw column for a file column or JSON key, registering it when new."""
        written = clean_name(name)
        key = written.lower()
        found = self._lookup.get(key)
        if found is not None:
            return found
        canonical = self._canonical.get(key)
        if canonical is not None and canonical not in self.present:
            column, shown = canonical, canonical
            if _UTC_SUFFIX.search(name):
                self.declared_utc.add(canonical)
        else:  # unknown, or a second column with a known name
            column, shown = f"_extra_{len(self.extras) + 1}", written
            self.extras.append(written)
        self._lookup[key] = column
        self.columns.append((column, shown))
        return column

    def fresh(self, name: str) -> str:
        """Like ``column`` but a repeated name gets its own column (CSV headers)."""
        key = clean_name(name).lower()
        if key in self._lookup:
            del self._lookup[key]
        return self.column(name)

    @property
    def present(self) -> set[str]:
        return {c for c, _ in self.columns}

    def raw_json(self) -> tuple[str, dict[str, str]]:
        """SQL building a row's ``_raw`` JSON object from its columns, and its parameters."""
        if not self.columns:
            return "'{}'", {}
        parts, params = [], {}
        for i, (column, shown) in enumerate(self.columns):
            params[f"rawkey_{i}"] = shown
            parts.append(f"$rawkey_{i}, {ident(column)}")
        return f"json_object({', '.join(parts)})::VARCHAR", params


# ----------------------------------------------------------------------------- CSV
@dataclass
class CsvHeader:
    """What the first line(s) of a CSV said: columns, delimiter, lines to skip."""

    layout: RawLayout
    delimiter: str
    skip: int  # lines before the header (Windows PowerShell's "#TYPE ..." line)
    has_rows: bool


def read_csv_header(text: TextFile, known: Sequence[str]) -> CsvHeader | None:
    """Parse the header; ``None`` for an empty file.

    The delimiter is the candidate under which the header names the most known columns,
    comma on a tie, so a semicolon-separated export is still read.
    """
    lines = read_head(text).splitlines()
    skip = 0
    while skip < len(lines) and lines[skip].startswith("#TYPE"):
        skip += 1
    if skip >= len(lines) or not lines[skip].strip():
        return None
    line = lines[skip]

    def score(delimiter: str) -> int:
        names = next(csv.reader([line], delimiter=delimiter))
        probe = RawLayout(tuple(known))
        for name in names:
            probe.fresh(name)
        return len(probe.present & set(known))

    delimiter = max(DELIMITERS, key=lambda d: (score(d), d == ","))
    layout = RawLayout(tuple(known))
    for name in next(csv.reader([line], delimiter=delimiter)):
        layout.fresh(name)
    has_rows = any(rest.strip() for rest in lines[skip + 1 :])
    return CsvHeader(layout, delimiter, skip, has_rows)


def stage_csv(
    con: duckdb.DuckDBPyConnection,
    text: TextFile,
    header: CsvHeader,
    raw: str,
    *,
    stream: bool = False,
) -> None:
    """Make ``raw`` the CSV's raw relation, read at DuckDB speed.

    Structurally broken records (wrong field count, unterminated quote, bad UTF-8, a truncated
    last line) are not lost: DuckDB's rejects table turns each into a row with ``_error`` set,
    and ``_row`` numbers good and broken records alike by their position in the file.

    With ``stream`` the relation is a view over ``read_csv`` that the normalisation reads once,
    without a copy of every raw column; the rows are numbered after staging
    (``number_streamed_rows``), which needs one staged row per CSV record.
    """
    good = f"{raw}_good"
    for name in (f"{raw}_rejects", f"{raw}_scans"):
        con.execute(f"DROP TABLE IF EXISTS {ident(name)}")
    present = header.layout.present

    def columns(prefix: str) -> str:
        known = header.layout.known
        select = [
            f"{prefix}{ident(c)}" if c in present else f"NULL::VARCHAR AS {ident(c)}"
            for c in known
        ]
        select += [f"{prefix}{ident(c)}" for c, _ in header.layout.columns if c not in known]
        return ", ".join(select)

    buffer = csv_buffer_bytes(text.line_bytes, memory_limit_bytes(con))
    scan = f"""read_csv({sql_str(str(text.path))}, auto_detect = false,
                columns = {_columns_literal(header.layout)},
                header = true, skip = {int(header.skip)}, delim = {sql_str(header.delimiter)},
                quote = '"', escape = '"', compression = 'none', strict_mode = true,
                {_buffer_options(text.longest_line, buffer)},
                null_padding = false, store_rejects = true,
                rejects_table = {sql_str(raw + "_rejects")},
                rejects_scan = {sql_str(raw + "_scans")})"""
    if stream:
        header.layout.streamed, header.layout.csv_skip = True, header.skip
        header.layout.csv_path = text.path
        con.execute(
            f"""CREATE OR REPLACE TEMP VIEW {ident(raw)} AS
                SELECT {columns("")}, NULL::BIGINT AS _row,
                       NULL::VARCHAR AS _raw, NULL::VARCHAR AS _error
                FROM {scan}"""
        )
        return
    con.execute(f"CREATE OR REPLACE TEMP TABLE {ident(good)} AS SELECT * FROM {scan}")
    broken = _broken_records(con, raw, header.skip, text.path)
    # The k-th good record sits at position k + (broken records before it); ``_ordinal``
    # gives k from rowid, which keeps file order (insertion order is preserved).
    ordinal = _ordinal(con, good, "TRUE")
    if not broken:  # the usual case: no join needed
        con.execute(
            f"""CREATE OR REPLACE TEMP VIEW {ident(raw)} AS
                SELECT {columns("g.")}, {ordinal} AS _row,
                       NULL::VARCHAR AS _raw, NULL::VARCHAR AS _error
                FROM {ident(good)} g"""
        )
        return
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {ident(raw)} AS
            WITH ordered AS (SELECT *, {ordinal} AS _k FROM {ident(good)}),
            {_gaps_sql(raw)}
            SELECT {columns("g.")}, g._k + coalesce(x.n, 0) AS _row,
                   NULL::VARCHAR AS _raw, NULL::VARCHAR AS _error
            FROM ordered g ASOF LEFT JOIN gaps x ON g._k > x.good_before
            UNION ALL BY NAME
            SELECT _row, _raw, _error FROM {ident(raw + "_broken")}"""
    )


def _buffer_options(longest: int, buffer: int = CSV_BUFFER_BYTES) -> str:
    """``read_csv``'s buffer options: ``buffer`` (lines up to DuckDB's 2 MB maximum), or room
    for the longest line. The buffer must be larger than the longest line; at twice it
    DuckDB reads every line whole."""
    if longest <= _LINE_WINDOW:
        return f"buffer_size = {buffer}"
    line = longest + _LINE_WINDOW
    return f"buffer_size = {max(buffer, 2 * line)}, max_line_size = {line}"


def csv_buffer_bytes(line_bytes: float, memory_limit: int) -> int:
    """Bytes in each of DuckDB's CSV buffers: ``BATCH_ROW_GROUPS`` row groups of lines of
    ``line_bytes`` (whole MiB), or ``CSV_BUFFER_BYTES`` when that is more, when the lines are
    unknown, or when it would take more than a sixth of ``memory_limit``."""
    want = -(-int(line_bytes * BATCH_ROW_GROUPS * ROW_GROUP_ROWS) // (1 << 20)) << 20
    if line_bytes <= 0 or want * _BUFFER_SHARE > memory_limit:
        return CSV_BUFFER_BYTES
    return max(CSV_BUFFER_BYTES, want)



def _columns_literal(layout: RawLayout) -> str:
    """``read_csv``'s ``columns`` struct: every column as VARCHAR, names generated by us."""
    return "{" + ", ".join(f"{sql_str(c)}: 'VARCHAR'" for c, _ in layout.columns) + "}"


class _LostRecords(SourceError):
    """DuckDB's CSV reader lost the record boundaries; said with the file's name."""


def _lost_records(con: duckdb.DuckDBPyConnection, rejects: str, path: Path) -> int | None:
    """The first line number under which DuckDB reports records starting on two lines.

    After an error DuckDB may go on parsing from the middle of the same line, so one broken
    record can report errors at several byte positions: all but its first start inside the
    line. Positions that start a line of their own, under one line number, are records the
    reader could not tell apart (it did so past a switch of line endings, now evened out
    first): grouping by line would fold them into one rejected row and lose the rest from
    the count.
    """
    groups = con.execute(
        f"""SELECT line, list(DISTINCT line_byte_position ORDER BY line_byte_position)[:100]
            FROM {ident(rejects)} GROUP BY line
            HAVING count(DISTINCT line_byte_position) > 1 ORDER BY line"""
    ).fetchall()
    if not groups:
        return None
    with path.open("rb") as fh:
        for line, starts in groups:
            own_line = 0
            for at in starts:
                # DuckDB points at a record's first byte, or one past it when that is a quote.
                fh.seek(max(at - 2, 0))
                before = fh.read(min(at, 2))
                own_line += at <= 1 or b"\n" in before or b"\r" in before
            if own_line > 1:
                return int(line)
    return None


def _broken_records(con: duckdb.DuckDBPyConnection, raw: str, skip: int, path: Path) -> int:
    """Turn the scan's rejects into ``<raw>_broken`` (``_row``, ``_raw``, ``_error``); count.

    DuckDB's ``line`` counts records from the top of the file, header and skipped lines
    included, even when quoted values span lines; one record may report several errors.
    """
    rejects, scans = f"{raw}_rejects", f"{raw}_scans"
    lost = _lost_records(con, rejects, path)
    if lost is not None:
        raise _LostRecords(
            f"the CSV reader lost track of records at line {lost} (a damaged quote or line"
            " break there); nothing was read from the file"
        )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {ident(raw + "_broken")} AS
            SELECT line - 1 - {int(skip)} AS _row,
                   ltrim(any_value(csv_line), chr(10) || chr(13)) AS _raw,
                   'malformed CSV at line ' || line || ': ' || coalesce(
                       lower(first(error_type::VARCHAR ORDER BY column_idx NULLS LAST))
                       || ' (' || first(error_message ORDER BY column_idx NULLS LAST) || ')',
                       'unreadable record') AS _error
            FROM {ident(rejects)} GROUP BY line"""
    )
    con.execute(f"DROP TABLE IF EXISTS {ident(rejects)}")
    con.execute(f"DROP TABLE IF EXISTS {ident(scans)}")
    (count,) = _one(con, f"SELECT count(*) FROM {ident(raw + '_broken')}")
    return int(count)


def _ordinal(con: duckdb.DuckDBPyConnection, table: str, where: str) -> str:
    """SQL for k, the 1-based order of a row of ``table`` among those matching ``where``.

    From rowid, which keeps insertion order but starts at an arbitrary base inside a
    transaction; contiguous rowids make it a subtraction.
    """
    lo, hi, count = _one(
        con, f"SELECT min(rowid), max(rowid), count(*) FROM {ident(table)} WHERE {where}"
    )
    if count and hi - lo + 1 == count:
        return f"(rowid - {int(lo)} + 1)"
    return "row_number() OVER (ORDER BY rowid)"


def _gaps_sql(raw: str) -> str:
    """CTE ``gaps``: per broken record, how many good ones precede it (for an ASOF join)."""
    return f"""numbered AS (
                SELECT _row, row_number() OVER (ORDER BY _row) AS n
                FROM {ident(raw + "_broken")}),
            gaps AS (SELECT _row - n AS good_before, max(n) AS n FROM numbered GROUP BY 1)"""


def number_streamed_rows(
    con: duckdb.DuckDBPyConnection,
    raw: str,
    layout: RawLayout,
    stage: str,
    numbered: Sequence[str],
    normalise: Callable[[str, str], None],
) -> None:
    """After a streamed CSV was normalised into ``stage``: stage its broken records through
    ``normalise`` and give every row its position in the file (``_row`` and the ``numbered``
    columns, e.g. ``source_row``)."""
    if not layout.streamed:
        return
    path = layout.csv_path
    broken = _broken_records(con, raw, layout.csv_skip, path) if path else 0
    good = "_row IS NULL"
    ordinal = _ordinal(con, stage, good)
    targets = ["_row", *numbered]
    if ordinal.startswith("(rowid"):
        (total,) = _one(con, f"SELECT count(*) FROM {ident(stage)}")
        (unnumbered,) = _one(con, f"SELECT count(*) FROM {ident(stage)} WHERE {good}")
        if total == unnumbered and _number_in_order(con, stage, targets):
            if broken:
                _shift_past_broken(con, raw, stage, targets)
                _stage_broken(con, raw, stage, layout, normalise)
            return
        ordinal = _ordinal(con, stage, good)
        if not broken and ordinal.startswith("(rowid"):
            sets = ", ".join(f"{ident(c)} = {ordinal}" for c in targets)
            con.execute(f"UPDATE {ident(stage)} SET {sets} WHERE {good}")
            return
    position = "g._k + coalesce(x.n, 0)" if broken else "g._k"
    gaps = f", {_gaps_sql(raw)}" if broken else ""
    join = "ASOF LEFT JOIN gaps x ON g._k > x.good_before" if broken else ""
    con.execute(
        f"""UPDATE {ident(stage)} SET {", ".join(f"{ident(c)} = m.pos" for c in targets)}
            FROM (WITH ordered AS (
                      SELECT rowid AS rid, {ordinal} AS _k FROM {ident(stage)} WHERE {good})
                  {gaps}
                  SELECT g.rid, {position} AS pos FROM ordered g {join}) m
            WHERE {ident(stage)}.rowid = m.rid"""
    )
    if broken:
        _stage_broken(con, raw, stage, layout, normalise)


def _shift_past_broken(
    con: duckdb.DuckDBPyConnection, raw: str, stage: str, targets: Sequence[str]
) -> int:
    """Turn the good rows' order k (in ``targets``) into their position in the file, where
    broken records sit between them; how many rows moved. Only rows after the first broken
    record move: a file cut short in its last line (an interrupted download) updates none,
    where an UPDATE of every row costs about 7 s at commit at ten million rows (see
    ``_number_in_order``)."""
    sets = ", ".join(f"{ident(c)} = m.pos" for c in targets)
    (moved,) = _one(
        con,
        f"""UPDATE {ident(stage)} SET {sets}
            FROM (WITH {_gaps_sql(raw)}
                  SELECT g._row AS k, g._row + x.n AS pos
                  FROM (SELECT _row FROM {ident(stage)}
                        WHERE _row > (SELECT min(good_before) FROM gaps)) g
                  ASOF JOIN gaps x ON g._row > x.good_before) m
            WHERE {ident(stage)}._row = m.k""",
    )
    return int(moved)


def _stage_broken(
    con: duckdb.DuckDBPyConnection,
    raw: str,
    stage: str,
    layout: RawLayout,
    normalise: Callable[[str, str], None],
) -> None:
    """Stage the broken records through ``normalise``, each at its line's position, in the
    table for rejected rows beside ``stage`` (``rejected_apart``)."""
    broken_rows, apart = f"{raw}_brokenrows", rejected_apart(stage)
    cols = [f"NULL::VARCHAR AS {ident(c)}" for c in layout.known]
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {ident(broken_rows)} AS
            SELECT {", ".join(cols)}, _row, _raw, _error FROM {ident(raw + "_broken")}"""
    )
    con.execute(f"CREATE OR REPLACE TABLE {ident(apart)} AS FROM {ident(stage)} LIMIT 0")
    normalise(broken_rows, apart)
    con.execute(f"DROP VIEW {ident(broken_rows)}")


def _number_in_order(con: duckdb.DuckDBPyConnection, stage: str, targets: Sequence[str]) -> bool:
    """Give every row of ``stage`` its 1-based insertion position in each of ``targets`` by
    adding the column afresh, filled from a sequence; ``False`` if that did not happen.

    An UPDATE of every row does the same, but DuckDB then logs each value at commit, on one
    core: about 7 s at ten million rows (benchmarks/HISTORY.md). DuckDB fills a new column in
    row order; that is checked here, not assumed. A re-added column goes last, so this is
    only done when the numbered record columns are already the last ones; otherwise, or if
    the check fails (the columns are then emptied again), the caller numbers the rows with
    an UPDATE.
    """
    names = [r[0] for r in con.execute(f"DESCRIBE {ident(stage)}").fetchall()]
    record = [n for n in names if n not in STAGE_COLUMNS]
    numbered = [t for t in targets if t not in STAGE_COLUMNS]
    if numbered and record[-len(numbered) :] != numbered:
        return False
    table = ident(stage)
    for column in map(ident, targets):
        con.execute("CREATE OR REPLACE TEMP SEQUENCE _dsg_position START 1")
        con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        con.execute(
            f"ALTER TABLE {table} ADD COLUMN {column} BIGINT DEFAULT nextval('_dsg_position')"
        )
        con.execute(f"ALTER TABLE {table} ALTER COLUMN {column} DROP DEFAULT")
        con.execute("DROP SEQUENCE _dsg_position")
    if _misplaced(con, stage, targets) == 0:
        return True
    con.execute(f"UPDATE {table} SET {', '.join(f'{ident(c)} = NULL' for c in targets)}")
    return False


def _misplaced(con: duckdb.DuckDBPyConnection, stage: str, targets: Sequence[str]) -> int:
    """Rows of ``stage`` whose ``targets`` are not their 1-based insertion position."""
    ordinal = _ordinal(con, stage, "TRUE")
    wrong = " OR ".join(f"{ident(c)} IS DISTINCT FROM {ordinal}" for c in targets)
    (misplaced,) = _one(con, f"SELECT count(*) FROM {ident(stage)} WHERE {wrong}")
    return int(misplaced)


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    """The single row an aggregate query returns."""
    row = con.execute(sql).fetchone()
    assert row is not None
    return row


# ----------------------------------------------------------------------------- Python rows
@dataclass
class RawRow:
    """One row of a JSON shape before normalisation: Microsoft's keys and JSON values."""

    row: int
    values: dict[str, Any] | None = None
    raw: str | None = None  # the text, when it could not be parsed into values
    error: str | None = None


def text_value(value: Any) -> str | None:
    """A JSON value as the VARCHAR a CSV export would have held (objects as JSON text)."""
    if value is None:
        return None
    if isinstance(value, str):
        return utf8_safe(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return utf8_safe(to_json_text(value))


def utf8_safe(text: str) -> str:
    """Text UTF-8 can carry: a lone surrogate (legal as a JSON escape) becomes U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def create_raw_table(con: duckdb.DuckDBPyConnection, raw: str, layout: RawLayout) -> None:
    """An empty raw table with every known column, so the normalisation SQL always binds."""
    cols = [f"{ident(c)} VARCHAR" for c in layout.known]
    cols += ["_row BIGINT", "_raw VARCHAR", "_error VARCHAR"]
    con.execute(f"CREATE OR REPLACE TEMP TABLE {ident(raw)} ({', '.join(cols)})")


def stage_raw_rows(
    con: duckdb.DuckDBPyConnection, raw: str, layout: RawLayout, rows: Iterable[RawRow]
) -> int:
    """Stage Python rows into the raw table ``raw`` in Arrow batches (memory stays flat).

    Keys are mapped onto ``layout`` as they appear; an unknown key adds a column.
    """
    create_raw_table(con, raw, layout)
    have = set(layout.known)
    total = 0
    for batch in batched(rows, BATCH_ROWS):
        mapped: list[dict[str, str | None]] = []
        for item in batch:
            values = item.values or {}
            mapped.append({layout.column(k): text_value(v) for k, v in values.items()})
        for column in layout.present - have:
            con.execute(f"ALTER TABLE {ident(raw)} ADD COLUMN {ident(column)} VARCHAR")
            have.add(column)
        names = sorted({k for m in mapped for k in m})
        arrays: dict[str, pa.Array] = {
            n: pa.array([m.get(n) for m in mapped], type=pa.string()) for n in names
        }
        arrays["_row"] = pa.array([r.row for r in batch], type=pa.int64())
        arrays["_raw"] = pa.array([r.raw for r in batch], type=pa.string())
        arrays["_error"] = pa.array([r.error for r in batch], type=pa.string())
        with registered(con, f"{raw}_batch", pa.table(arrays)) as view:
            con.execute(f"INSERT INTO {ident(raw)} BY NAME SELECT * FROM {ident(view)}")
        total += len(batch)
    return total


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of up to ``size`` items (``itertools.batched`` needs Python 3.12)."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def drop_raw(con: duckdb.DuckDBPyConnection, raw: str) -> None:
    """Drop the raw relation and its helpers, whichever of them exist."""
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal")
             .fetchall()}
    for suffix in ("", "_good", "_broken", "_rejects", "_scans", "_brokenrows"):
        name = raw + suffix
        kind = "VIEW" if name in views else "TABLE"
        con.execute(f"DROP {kind} IF EXISTS {ident(name)}")


# ----------------------------------------------------------------------------- checks
def zoneless_warning(con: duckdb.DuckDBPyConnection, stage: str) -> str | None:
    """One warning when staged timestamps carried no zone and were read as UTC.

    The normalisation SQL leaves such a value's text in ``_note``.
    """
    row = con.execute(
        f"""SELECT count(DISTINCT _row), arg_min(_note, _row) FROM {ident(stage)}
            WHERE _note IS NOT NULL"""
    ).fetchone()
    if not row or not row[0]:
        return None
    return f"{row[0]} timestamps carry no time zone (e.g. {row[1]!r}); read as UTC"


def describe_extras(layout: RawLayout) -> str | None:
    """The warning for columns the source does not know; they reach only quarantine copies."""
    if not layout.extras:
        return None
    shown = ", ".join(name or "(unnamed)" for name in layout.extras[:20])
    more = f" and {len(layout.extras) - 20} more" if len(layout.extras) > 20 else ""
    return f"unknown columns not loaded (kept in quarantine copies): {shown}{more}"


def case_map(expr: str, mapping: dict[str, str | None], *, others: str | None = None) -> str:
    """SQL mapping ``lower(expr)`` through a vocabulary table of ours.

    Values not in the table pass through unchanged, or become ``others`` (SQL) when given.
    """
    whens = " ".join(
        f"WHEN {sql_str(k)} THEN {'NULL' if v is None else sql_str(v)}" for k, v in mapping.items()
    )
    return f"CASE lower({expr}) {whens} ELSE {expr if others is None else others} END"


def render(template: str, fragments: dict[str, str]) -> str:
    """Fill a normalisation template's vocabulary placeholders with SQL built from constants.

    ``{stage}``, ``{raw}`` and ``{raw_json}`` stay for ``TabularReader.stage`` to fill.
    """
    for name, sql in fragments.items():
        template = template.replace("{" + name + "}", sql)
    return template


def missing_columns(
    file: str, present: set[str], required: dict[str, tuple[str, ...]]
) -> str | None:
    """The one-line problem when a required column (any of its alternatives) is absent."""
    missing = [label for label, alts in required.items() if not present & set(alts)]
    if not missing:
        return None
    return f"{file}: missing required column(s) {', '.join(missing)}"


# ----------------------------------------------------------------------------- the reader
class TabularReader(Reader):
    """The flow both tabular sources share: decode, stage raw, check, normalise, warn.

    A subclass names its columns, the columns that hold the event time, its normalisation
    SQL (a template with ``{stage}``, ``{raw}`` and ``{raw_json}``), and how to judge a header.
    CSV is staged here; a subclass may stage other shapes by overriding ``stage_raw``.
    """

    model = MessageEvent
    label: ClassVar[str]  # "an EmailEvents", for messages
    columns: ClassVar[tuple[str, ...]]  # every column the source documents
    required: ClassVar[dict[str, tuple[str, ...]]]  # label -> alternatives, in order of use
    time_columns: ClassVar[tuple[str, ...]]
    normalise_sql: ClassVar[str]
    # Known columns too common to tell the source apart (Sentinel's TenantId, Subject...).
    generic_columns: ClassVar[frozenset[str]] = frozenset()
    # Lower-cased column names that betray another source, and the advice to give then.
    other_source: ClassVar[tuple[frozenset[str], str] | None] = None
    # One staged row per CSV record: the CSV can then be normalised as it streams, numbered
    # afterwards. A source that splits a record into several rows (one per recipient) is
    # staged through a raw copy instead.
    one_row_per_record: ClassVar[bool] = False

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, table: str) -> StageResult:
        file = path.name
        raw = f"_raw_{self.source}"
        warnings: list[str] = []
        install_macros(con)
        con.execute(stage_table_sql(self.model, table))
        try:
            # The decoded copy of a gzip or UTF-16 file lives in ``work``: a streamed CSV is
            # read while normalising, so everything happens inside this block.
            with tempfile.TemporaryDirectory(prefix="dsguard-") as work:
                text = utf8_file(path, Path(work))
                if text.note:
                    warnings.append(text.note)
                layout = self.stage_raw(con, text, file, raw, warnings)
                if layout is None:
                    return StageResult(warnings=warnings)
                extras = describe_extras(layout)
                if extras:
                    warnings.append(extras)
                raw_json, params = layout.raw_json()
                params = {"file": file, **params, **self.sql_params(layout)}

                def normalise(relation: str, into: str = table) -> None:
                    sql = self.normalise_sql.format(
                        stage=ident(into), raw=ident(relation), raw_json=raw_json
                    )
                    con.execute(sql, params)

                normalise(raw)
                numbered = [c for c in ("source_row",) if c in self.model.model_fields]
                number_streamed_rows(con, raw, layout, table, numbered, normalise)
            if not layout.declared_utc & set(self.time_columns):
                note = zoneless_warning(con, table)
                if note:
                    warnings.append(note)
        except _LostRecords as exc:
            raise SourceError(f"{file}: {exc}") from exc
        finally:
            # After a failed statement DuckDB refuses everything until the rollback, which
            # drops these anyway: the failure itself must surface, not this refusal.
            with contextlib.suppress(duckdb.TransactionException):
                drop_raw(con, raw)
        return StageResult(warnings=warnings)

    def stage_raw(
        self,
        con: duckdb.DuckDBPyConnection,
        text: TextFile,
        file: str,
        raw: str,
        warnings: list[str],
    ) -> RawLayout | None:
        """Stage a CSV into ``raw``; ``None`` when there is nothing to normalise."""
        text, note = csv_text(text, file)
        if note:
            warnings.append(note)
        header = read_csv_header(text, self.columns)
        if header is None:
            warnings.append("empty file; no rows")
            return None
        layout = header.layout
        names = [shown for _, shown in layout.columns]
        self.check_columns(file, names, layout.present & set(self.columns))
        if header.delimiter != ",":
            warnings.append(f"read as {DELIMITER_NAMES[header.delimiter]}-separated, not comma")
        if not header.has_rows:
            warnings.append("header only; no rows")
        stage_csv(con, text, header, raw, stream=self.one_row_per_record)
        return layout

    def check_columns(self, file: str, names: list[str], present: set[str]) -> None:
        """Raise ``SourceError`` naming the file when its columns cannot be this source.

        ``names`` are the file's column names as written, ``present`` the known ones found.
        """
        if len(present - self.generic_columns) < 2:
            shown = ", ".join(n for n in names[:8] if n) or "no column names"
            hint = ""
            lowered = {clean_name(n).lower() for n in names}
            if self.other_source is not None and lowered & self.other_source[0]:
                hint = f"; {self.other_source[1]}"
            raise SourceError(f"{file}: not {self.label} export (columns: {shown}){hint}")
        problem = missing_columns(file, present, self.required)
        if problem:
            raise SourceError(problem)

    def sql_params(self, layout: RawLayout) -> dict[str, Any]:
        """Extra parameters of the normalisation SQL: ``$time_column`` names, in reject
        reasons, the time column the file actually has."""
        alts = self.time_columns
        return {"time_column": next((c for c in alts if c in layout.present), alts[0])}
