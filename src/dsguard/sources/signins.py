"""``signins*.json|jsonl|csv`` (``.gz`` too): Entra ID sign-ins, from Graph or from Sentinel.

Shapes read, all mapped onto one ``SignIn`` record:

* Graph ``auditLogs/signIns`` pages (``{"@odata.context":..,"value":[...],"@odata.nextLink":..}``),
  one page, several pages back to back, a JSON array of pages, or one object a line (each line
  a sign-in or a page); a bare array of sign-ins (``Get-MgAuditLogSignIn | ConvertTo-Json``);
  the Log Analytics API ``{"tables":[{"columns":..,"rows":..}]}`` and ``runHuntingQuery``
  ``{"schema":..,"results":..}`` envelopes.
* CSV: Sentinel ``SigninLogs`` / ``AADNonInteractiveUserSignInLogs`` exports (``Status``,
  ``DeviceDetail`` and ``LocationDetails`` as JSON strings, or flattened into
  ``LocationDetails.countryOrRegion`` columns; ``TimeGenerated [UTC]`` headers with
  ``3/2/2026, 9:15:12.123 AM`` values) and the Entra admin centre's own download
  (``Date (UTC)``, ``Request ID``, ``IP address``, ``Location`` as ``City, State, CC``).

Property names are matched case-insensitively and without spaces, dashes or underscores, so
Graph's ``userPrincipalName``, Sentinel's ``UserPrincipalName`` and the portal's ``Username``
meet in one alias table (``_FIELDS``). JSON is parsed a document at a time from a streamed
buffer, so memory follows the largest page, not the file; a damaged document costs one
rejected row (the complete sign-ins before the damage still load) and reading resumes at the
next line that starts a document.

The usual JSON files (pages or sign-ins one a line, one page however big, an array of
either) are first offered to a DuckDB fast path (``_fast_stage``, at the end), about ten
times quicker on big files; it stages exactly what the Python path would, and leaves to it
every file it cannot prove that for. Staged rows keep ``_raw`` for rejects only, the rows
quarantine shows.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import gzip
import hashlib
import io
import ipaddress
import itertools
import json
import re
import sys
import tempfile
import zlib
from collections.abc import Generator, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa

from dsguard.evidence.addresses import IPV4_PATTERN
from dsguard.evidence.duck import SideSettings, registered, side_connection, side_settings
from dsguard.evidence.model import SignIn
from dsguard.evidence.schema import arrow_schema, stage_table_sql
from dsguard.sources.base import (
    Reader,
    SourceError,
    StageResult,
    stage_records,
    to_json_text,
)

PATTERNS: tuple[str, ...] = tuple(
    f"signins*.{ext}{gz}" for ext in ("json", "jsonl", "csv") for gz in ("", ".gz")
)

# Normalised property names (see ``norm_key``) for each SignIn field, best first.
_FIELDS: dict[str, tuple[str, ...]] = {
    "ts": ("createddatetime", "timegenerated", "date", "timestamp", "time"),
    "id": ("id", "requestid"),
    "upn": ("userprincipalname", "accountupn", "username"),
    "user_id": ("userid", "accountobjectid"),
    "user_display_name": ("userdisplayname", "accountdisplayname", "user"),
    "app_display_name": ("appdisplayname", "application"),
    "app_id": ("appid", "applicationid"),
    "ip": ("ipaddress",),
    "client_app_used": ("clientappused", "clientapp"),
    "is_interactive": ("isinteractive",),
    "error_code": ("status.errorcode", "resulttype", "errorcode", "signinerrorcode"),
    "failure_reason": ("status.failurereason", "resultdescription", "failurereason"),
    "country": (
        "location.countryorregion",
        "locationdetails.countryorregion",
        "countryorregion",
        "country",
    ),
    "city": ("location.city", "locationdetails.city", "city"),
    "operating_system": ("devicedetail.operatingsystem", "operatingsystem"),
    "browser": ("devicedetail.browser", "browser"),
    "conditional_access_status": ("conditionalaccessstatus", "conditionalaccess"),
    "correlation_id": ("correlationid",),
}
# Columns Sentinel exports as JSON text (``dynamic``, or ``string`` in the non-interactive
# table) whose members we read; other JSON columns are left alone.
_EMBEDDED = frozenset({"status", "devicedetail", "locationdetails", "location"})
# ``ConditionalAccessStatus`` as the Defender ``EntraIdSignInEvents`` table codes it.
_CA_CODES = {0: "success", 1: "failure", 2: "notApplied"}
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})

_KEY_JUNK = re.compile(r"\s*[\[(][^\])]*[\])]\s*$|[\s_\-]")
_HEADER_SUFFIX = re.compile(r"\s*[\[(]([^\])]*)[\])]\s*$")
_MS_DATE = re.compile(r"/Date\((-?\d+)(?:[+-]\d{4})?\)/")
_US_TIME = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4}),?\s+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?"
    r"\s*([AaPp][Mm])?"
)
_WS = re.compile(r"[ \t\r\n]*")
_WS_COMMA = re.compile(r"[ \t\r\n,]*")
# A line that starts a new top-level document: where reading resumes after damage.
_RESYNC = re.compile(r"\n(?=[\[{])")
_DECODER = json.JSONDecoder()
_EXCERPT = 2000
_BIG = 8 << 20  # a top-level object bigger than this is walked, not decoded at once
_PAGE_KEYS = frozenset({"value", "results", "records"})
_CHUNK = 1 << 20
_CSV_FIELD_LIMIT = 64 << 20

_norm_cache: dict[str, str] = {}


def norm_key(name: str) -> str:
    """``LocationDetails.countryOrRegion`` → ``locationdetails.countryorregion``,
    ``TimeGenerated [UTC]`` → ``timegenerated``, ``IP address`` → ``ipaddress``."""
    key = _norm_cache.get(name)
    if key is None:
        key = _KEY_JUNK.sub("", name.strip().lower())
        if len(_norm_cache) < 10_000:
            _norm_cache[name] = key
    return key


def parse_timestamp(value: Any) -> datetime | None:
    """Any sign-in time Microsoft writes, as an aware UTC datetime; ``None`` when blank.

    ISO 8601 with ``Z``, an offset or none (read as UTC, which is what Graph and Log
    Analytics write), up to 7 fractional digits; ``/Date(ms)/``; and the Azure portal's CSV
    form ``3/2/2026, 9:15:12.123 AM`` (month first, as the portal writes it; day first only
    when the first number cannot be a month). Raises ``ValueError`` for anything else.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime.combine(value, time())
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        dt = _parse_time_text(text)
    else:
        raise ValueError(f"not a time: {value!r}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def _parse_time_text(text: str) -> datetime:
    if m := _MS_DATE.fullmatch(text):
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(m[1]))
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    if m := _US_TIME.fullmatch(text):
        first, second, year, hour, minute = (int(m[i]) for i in range(1, 6))
        month, day = (second, first) if first > 12 else (first, second)
        sec = int(m[6] or 0)
        micro = int((m[7] or "0").ljust(7, "0")[:6])
        if m[8]:
            if not 1 <= hour <= 12:
                raise ValueError(f"unparseable timestamp {text!r}")
            hour = hour % 12 + (12 if m[8].lower() == "pm" else 0)
        return datetime(year, month, day, hour, minute, sec, micro)
    raise ValueError(f"unparseable timestamp {text!r}")


class SignInsReader(Reader):
    """Graph ``signIn`` JSON and Sentinel ``SigninLogs`` CSV → ``signins``."""

    source: ClassVar[str] = "signins"
    model = SignIn
    patterns: ClassVar[tuple[str, ...]] = PATTERNS

    def look_ahead(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        """Prepare a JSON file on the fast path ahead (``_prepare_ahead``)."""
        if not path.name.removesuffix(".gz").lower().endswith(".csv"):
            _prepare_ahead(con, path)

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, table: str) -> StageResult:
        warnings: list[str] = []
        stem = path.name.removesuffix(".gz").lower()
        if not stem.endswith(".csv"):
            fast = _fast_stage(con, path, table)
            if fast is not None:
                return StageResult(warnings=fast)
        with _Text(path, newline="" if stem.endswith(".csv") else None) as text:
            if stem.endswith(".csv"):
                records = _csv_records(text, path.name, warnings)
            else:
                records = _json_records(text, warnings)
            stage_records(con, table, SignIn, _rows(records, path.name))
            warnings.extend(text.warnings())
        return StageResult(warnings=warnings)


# ---------------------------------------------------------------------------- text input
class _Text:
    """A decoded text stream over a plain or gzip file.

    The encoding comes from the BOM (UTF-8, UTF-16 LE/BE as Windows PowerShell writes them)
    or from NUL bytes when a UTF-16 file has none. Undecodable bytes become U+FFFD and a
    truncated gzip stream ends the text early; both are reported as warnings, because the
    rows already read are still good.
    """

    def __init__(self, path: Path, newline: str | None) -> None:
        self.name = path.name
        self._gz = _GzipTail(path) if path.name.lower().endswith(".gz") else None
        binary = io.BufferedReader(self._gz) if self._gz else path.open("rb")
        try:
            head = binary.peek(4)[:4]
        except (gzip.BadGzipFile, zlib.error) as exc:
            binary.close()
            raise SourceError(f"{self.name}: not a readable gzip file ({exc})") from exc
        self._io = io.TextIOWrapper(
            binary, encoding=_sniff_encoding(head), errors="replace", newline=newline
        )
        self._replaced = 0

    def read(self, size: int) -> str:
        text = self._io.read(size)
        self._replaced += text.count("\ufffd")
        return text

    def lines(self) -> Iterator[str]:
        for line in self._io:
            if "\ufffd" in line:
                self._replaced += line.count("\ufffd")
            yield line

    def warnings(self) -> list[str]:
        out: list[str] = []
        if self._gz and self._gz.cut:
            out.append(f"compressed data ends early ({self._gz.cut}); the rows before were read")
        if self._replaced:
            out.append(_replaced_warning(self._replaced))
        return out

    def __enter__(self) -> _Text:
        return self

    def __exit__(self, *exc: object) -> None:
        self._io.close()


def _replaced_warning(count: int) -> str:
    return f"{count} undecodable characters replaced with U+FFFD"


class _GzipTail(io.RawIOBase):
    """A gzip stream that ends quietly where a truncated file ends, keeping all the data
    that could be decompressed (``GzipFile.read`` would drop its last buffer with the
    ``EOFError``). A file that is not gzip at all still raises."""

    def __init__(self, path: Path) -> None:
        self._gz = gzip.open(path, "rb")  # noqa: SIM115 - closed by close()
        self._total = 0
        self.cut: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.cut is not None:
            return 0
        try:
            data = self._gz.read1(len(buffer))
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            if not self._total and not isinstance(exc, EOFError):
                raise
            self.cut = str(exc)
            return 0
        buffer[: len(data)] = data
        self._total += len(data)
        return len(data)

    def close(self) -> None:
        self._gz.close()
        super().close()


def _sniff_encoding(head: bytes) -> str:
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if len(head) >= 2 and head[0] and not head[1]:
        return "utf-16-le"
    if len(head) >= 2 and not head[0] and head[1]:
        return "utf-16-be"
    return "utf-8"


# ---------------------------------------------------------------------------- JSON input
@dataclass(slots=True)
class _Record:
    """One sign-in candidate (a JSON object or a CSV row) and where it came from."""

    value: Any
    where: str
    raw: str | None = None  # set when the value is not the object to quote (CSV, damage)
    reject: str | None = None


def _json_records(text: _Text, warnings: list[str]) -> Iterator[_Record]:
    """Every sign-in object in a JSON or JSON-lines file, pages unwrapped, damage reported."""
    return iter(_JsonDocuments(text, warnings))


def _is_page(value: Any) -> bool:
    """A Graph page (``value`` + ``@odata.*`` keys), a hunting result or a Log Analytics
    response, as opposed to one sign-in."""
    if not isinstance(value, dict):
        return False
    keys = {k.lower() for k in value}
    if "value" in keys and isinstance(_get_ci(value, "value"), list | None):
        return all(k == "value" or "@" in k for k in keys)
    if "results" in keys and "schema" in keys:
        return True
    if keys == {"records"}:  # diagnostic settings archive in a storage account
        return isinstance(_get_ci(value, "records"), list)
    return keys == {"tables"} and isinstance(value.get("tables"), list)


def _page_records(page: dict[str, Any]) -> Iterator[Any]:
    if "tables" in page:
        for tab in page["tables"] or []:
            names = [c.get("name") for c in (tab or {}).get("columns") or []]
            for row in (tab or {}).get("rows") or []:
                yield dict(zip(names, row, strict=False)) if isinstance(row, list) else row
        return
    items = None
    for key in ("value", "results", "records"):
        items = items if items is not None else _get_ci(page, key)
    yield from items or []


def _get_ci(obj: dict[str, Any], key: str) -> Any:
    for k, v in obj.items():
        if k.lower() == key:
            return v
    return None


class _Big(Exception):
    """A top-level object too big to decode at once; it is walked instead."""


class _JsonDocuments:
    """The sign-ins of a JSON stream: documents decoded one at a time, pages unwrapped, and
    one rejected ``_Record`` for each damaged stretch.

    A top-level array is walked element by element, and a top-level object bigger than
    ``_BIG`` has its ``value`` array walked item by item, so neither one huge array nor one
    huge page has to become a single Python object. ``raw_decode`` is retried with a doubled
    buffer only while the error could be the end of the buffer, so a syntax error early in
    a big file does not pull the rest of it into memory.
    """

    def __init__(self, text: _Text, warnings: list[str]) -> None:
        self.text = text
        self.warnings = warnings
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.pages = 0
        self._line_idx = 0  # buf index up to which newlines have been counted
        self._line_no = 1  # line number at buf[_line_idx]

    def __iter__(self) -> Iterator[_Record]:
        while self._skip(_WS):
            if self.buf[self.pos] != "[":
                yield from self._document()
                continue
            line = self.line(self.pos)
            self.pos += 1
            while True:
                if not self._skip(_WS_COMMA):
                    self.warnings.append(
                        f"the JSON array opened at line {line} is never closed (truncated "
                        "file?); the complete elements before the end were read"
                    )
                    return
                if self.buf[self.pos] == "]":
                    self.pos += 1
                    break
                ok = yield from self._document()
                if not ok:
                    break

    def line(self, idx: int) -> int:
        """1-based line of ``buf[idx]``; counted incrementally, as reading only moves on."""
        if idx < self._line_idx:
            return self._line_no - self.buf.count("\n", idx, self._line_idx)
        self._line_no += self.buf.count("\n", self._line_idx, idx)
        self._line_idx = idx
        return self._line_no

    # -- reading
    def _more(self, size: int = _CHUNK) -> bool:
        """Read more text; drop what lies before ``pos`` so the buffer holds one document."""
        if self.eof:
            return False
        if self.pos:
            self.line(self.pos)
            self.buf = self.buf[self.pos :]
            self._line_idx -= self.pos
            self.pos = 0
        chunk = self.text.read(max(size, _CHUNK))
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _skip(self, pattern: re.Pattern[str]) -> bool:
        """Skip whitespace (and commas); False at the end of the text."""
        while True:
            m = pattern.match(self.buf, self.pos)
            self.pos = m.end() if m else self.pos
            if self.pos < len(self.buf):
                return True
            if not self._more():
                return False

    def _decode(self, *, big: bool = False) -> Any:
        """The JSON value at ``pos``, reading more as needed; raises ``JSONDecodeError``
        (``pos`` unchanged) or, with ``big``, ``_Big`` for an object past ``_BIG``."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self.eof or not _maybe_incomplete(exc, len(self.buf)):
                    raise
                if big and len(self.buf) - self.pos >= _BIG and self.buf[self.pos] == "{":
                    raise _Big from None
                self._more(len(self.buf) - self.pos)
                continue
            self.pos = end
            return value

    def _expect(self, char: str) -> None:
        if not self._skip(_WS) or self.buf[self.pos] != char:
            raise json.JSONDecodeError(f"Expecting {char!r}", self.buf, self.pos)
        self.pos += 1

    # -- documents
    def _document(self) -> Generator[_Record, None, bool]:
        """The document at ``pos`` as sign-in records; returns whether it was intact."""
        line = self.line(self.pos)
        try:
            value = self._decode(big=True)
        except _Big:
            return (yield from self._stream_page(line))
        except json.JSONDecodeError as exc:
            start = self.pos
            recovered, damage = _salvage(self.buf, start)
            for value in recovered:
                yield from self._unwrap(value, line)
            yield self._damage(exc, line, damage, max(damage, start + 1))
            return False
        yield from self._unwrap(value, line)
        return True

    def _unwrap(self, value: Any, line: int) -> Iterator[_Record]:
        if value is None:
            return  # `$null | ConvertTo-Json`, or an empty page written as null
        if _is_page(value):
            self.pages += 1
            for i, rec in enumerate(_page_records(value), 1):
                yield _Record(rec, f"page {self.pages} (line {line}) item {i}")
        elif isinstance(value, list):
            for i, rec in enumerate(value, 1):
                yield _Record(rec, f"line {line} item {i}")
        else:
            yield _Record(value, f"line {line}")

    def _stream_page(self, line: int) -> Generator[_Record, None, bool]:
        """Walk a huge top-level object key by key, yielding its page items one at a time."""
        self.pos += 1
        envelope: dict[str, Any] = {}
        page = 0
        count = 0
        try:
            while True:
                if not self._skip(_WS_COMMA):
                    raise json.JSONDecodeError("Expecting '}'", self.buf, self.pos)
                if self.buf[self.pos] == "}":
                    self.pos += 1
                    break
                key = self._decode()
                if not isinstance(key, str):
                    raise json.JSONDecodeError("Expecting property name", self.buf, self.pos)
                self._expect(":")
                if not self._skip(_WS):
                    raise json.JSONDecodeError("Expecting value", self.buf, self.pos)
                if key.lower() not in _PAGE_KEYS or self.buf[self.pos] != "[":
                    envelope[key] = self._decode()
                    continue
                self.pos += 1
                if not page:
                    self.pages += 1
                    page = self.pages
                while True:
                    if not self._skip(_WS_COMMA):
                        raise json.JSONDecodeError("Expecting ']'", self.buf, self.pos)
                    if self.buf[self.pos] == "]":
                        self.pos += 1
                        break
                    count += 1
                    yield _Record(self._decode(), f"page {page} (line {line}) item {count}")
        except json.JSONDecodeError as exc:
            yield self._damage(exc, line, self.pos, self.pos + 1)
            return False
        if not page:
            yield from self._unwrap(envelope, line)
        return True

    # -- damage
    def _damage(self, exc: json.JSONDecodeError, line: int, start: int, search: int) -> _Record:
        """One rejected record for the text from ``start`` to where reading resumes."""
        damage_line = self.line(start)
        if self.eof and _maybe_incomplete(exc, len(self.buf)):
            reason = f"truncated JSON: the file ends inside the document started at line {line}"
        else:
            msg = exc.msg
            if msg.startswith("Invalid control character"):
                msg = "a string runs past the end of its line (cut short?)"
            reason = f"invalid JSON at line {self.line(exc.pos)} column {exc.colno}: {msg}"
        excerpt = self._resync(start, search)
        where = f"line {damage_line}"
        return _Record(None, where, raw=excerpt, reject=f"{where}: {reason}")

    def _resync(self, start: int, search: int) -> str:
        """Move ``pos`` to the next line that starts a document; return the skipped text."""
        self.pos = start
        kept: list[str] = []
        size = 0
        while True:
            m = _RESYNC.search(self.buf, search)
            end = m.end() if m else max(self.pos, len(self.buf) - 1)
            if size < _EXCERPT:
                piece = self.buf[self.pos : min(end, self.pos + _EXCERPT - size)]
                kept.append(piece)
                size += len(piece)
            self.pos = end
            if m or not self._more():
                if not m:
                    self.pos = len(self.buf)
                break
            search = self.pos
        text = "".join(kept).strip()
        return text + ("…" if size >= _EXCERPT else "")


def _maybe_incomplete(exc: json.JSONDecodeError, size: int) -> bool:
    """Could more text complete the document? (Errors at the buffer's end, or an open
    string: JSON strings cannot hold a raw newline, so an open string runs to the end.)"""
    return exc.pos >= size - 16 or exc.msg.startswith("Unterminated string")


def _after(pattern: re.Pattern[str], s: str, j: int) -> int:
    m = pattern.match(s, j)
    return m.end() if m else j


def _salvage(s: str, i: int) -> tuple[list[Any], int]:
    """The complete leading items of a damaged array or Graph page starting at ``s[i]``,
    and the index where the damage begins. Anything else is damaged as a whole."""
    if s.startswith("[", i):
        out: list[Any] = []
        j = i + 1
        while True:
            j = _after(_WS_COMMA, s, j)
            if j >= len(s) or s[j] == "]":
                return out, j
            try:
                value, j = _DECODER.raw_decode(s, j)
            except json.JSONDecodeError:
                inner, damage = _salvage(s, j)
                return out + inner, damage
            out.append(value)
    if s.startswith("{", i):
        page: list[Any] | None = None
        j = i + 1
        while True:
            j = _after(_WS_COMMA, s, j)
            try:
                key, j = _DECODER.raw_decode(s, j)
                j = _after(_WS, s, j)
                if not isinstance(key, str) or not s.startswith(":", j):
                    raise ValueError
                j = _after(_WS, s, j + 1)
            except ValueError:
                return ([{"value": page}], j) if page is not None else ([], i)
            if key.lower() == "value" and s.startswith("[", j):
                try:
                    page, j = _DECODER.raw_decode(s, j)
                except json.JSONDecodeError:
                    items, damage = _salvage(s, j)
                    return [{"value": items}], damage
                continue
            try:
                _, j = _DECODER.raw_decode(s, j)
            except json.JSONDecodeError:
                return ([{"value": page}], j) if page is not None else ([], i)
    return [], i


# ---------------------------------------------------------------------------- CSV input
def _csv_records(text: _Text, file: str, warnings: list[str]) -> Iterator[_Record]:
    """Rows of a Sentinel / Entra portal CSV export as dicts keyed by the header."""
    # Sentinel's JSON columns (ConditionalAccessPolicies...) can pass csv's 128 KiB default.
    csv.field_size_limit(max(csv.field_size_limit(), min(sys.maxsize, _CSV_FIELD_LIMIT)))
    reader = csv.reader(text.lines())
    header = next(reader, None)
    if header and len(header) == 1 and header[0].lower().startswith("sep="):
        header = next(reader, None)  # Excel's separator hint line
    if not header:
        return
    header = [h.strip().lstrip("\ufeff") for h in header]
    for h in header:
        m = _HEADER_SUFFIX.search(h)
        if m and m[1].strip().upper() != "UTC" and norm_key(h) in _FIELDS["ts"]:
            warnings.append(
                f"column {h!r} is not marked UTC; its times are read as UTC unless they "
                "carry an offset"
            )
    if not any(norm_key(h) in _FIELDS["ts"] for h in header):
        raise SourceError(
            f"{file}: no time column (CreatedDateTime, TimeGenerated or 'Date (UTC)'); "
            "not a sign-in log export"
        )
    width = len(header)
    for cells in reader:
        if not cells or not any(c.strip() for c in cells):
            continue
        line = reader.line_num
        rec = dict(zip(header, cells, strict=False))
        if len(cells) > width:
            yield _Record(
                rec, f"line {line}", raw=to_json_text({**rec, "": cells[width:]}),
                reject=f"line {line}: {len(cells)} cells but the header has {width}",
            )
        else:
            yield _Record(rec, f"line {line}")


# ---------------------------------------------------------------------------- mapping
def _rows(records: Iterator[_Record], file: str) -> Iterator[dict[str, Any]]:
    for n, rec in enumerate(records, 1):
        row: dict[str, Any] = {}
        reject = rec.reject
        if reject is None:
            row, reason = map_signin(rec.value)
            if reason:
                reject = f"{rec.where}: {reason}"
        yield _staged(row, rec.value, n, file, reject, rec.raw)


def _staged(
    row: dict[str, Any], value: Any, n: int, file: str, reject: str | None, raw: str | None
) -> dict[str, Any]:
    """``row`` with the bookkeeping columns. ``_raw`` is kept for rejects only: quarantine is
    the one place the store reads it, and encoding every sign-in again cost more than mapping
    it."""
    if reject is not None and raw is None:
        raw = to_json_text(value)
    row.update(source_file=file, source_row=n, _row=n, _raw=raw if reject else None,
               _reject=reject)
    return row


def map_signin(record: Any) -> tuple[dict[str, Any], str | None]:
    """One Graph / Sentinel / portal sign-in as ``SignIn`` fields, or the reason it cannot
    be loaded (no or bad time, bad IP, an embedded JSON column that does not parse)."""
    if not isinstance(record, Mapping):
        return {}, f"not a sign-in object (a JSON {_json_type(record)})"
    props = record.get("properties", record.get("Properties"))
    if isinstance(props, dict) and ("category" in record or "Category" in record):
        # Diagnostic-settings envelope (Event Hub / storage account): the sign-in is in
        # ``properties``; the envelope's ``time``, ``category``... fill gaps.
        record = {**{k: v for k, v in record.items() if k.lower() != "properties"}, **props}
    flat, reason = _flatten(record)
    if reason:
        return {}, reason

    def pick(field: str) -> Any:
        for key in _FIELDS[field]:
            value = flat.get(key)
            if value is not None and value != "":
                return value
        return None

    raw_ts = pick("ts")
    if raw_ts is None:
        return {}, "no timestamp (createdDateTime / TimeGenerated)"
    try:
        ts = parse_timestamp(raw_ts)
    except (ValueError, OverflowError):
        return {}, f"unparseable timestamp {_short(raw_ts)}"
    assert ts is not None
    try:
        ip = _ip(pick("ip"))
    except ValueError:
        return {}, f"invalid IP address {_short(_text(pick('ip')))}"
    upn = _upn(pick("upn"))
    app_id = _text(pick("app_id"))
    app_name = _text(pick("app_display_name"))
    country, city = _text(pick("country")), _text(pick("city"))
    if country is None and isinstance(flat.get("location"), str):
        # The Entra admin centre download writes "City, State, CC".
        parts = [p.strip() for p in flat["location"].split(",")]
        country = parts[-1] or None
        city = city or (parts[0] if len(parts) > 1 else None) or None
    signin_id = _text(pick("id"))
    if signin_id is None:
        key = "\x1f".join(
            [ts.isoformat(), upn or "", ip or "", app_id or app_name or "",
             _text(pick("correlation_id")) or ""]
        )
        signin_id = "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:32]
    return {
        "signin_id": signin_id,
        "ts": ts,
        "user_principal_name": upn,
        "user_id": _text(pick("user_id")),
        "user_display_name": _text(pick("user_display_name")),
        "app_display_name": app_name,
        "app_id": app_id,
        "ip_address": ip,
        "client_app_used": _text(pick("client_app_used")),
        "is_interactive": _interactive(flat, pick("is_interactive")),
        "error_code": _error_code(pick("error_code"), flat.get("status")),
        "failure_reason": _text(pick("failure_reason")),
        "country": country,
        "city": city,
        "operating_system": _text(pick("operating_system")),
        "browser": _text(pick("browser")),
        "conditional_access_status": _ca_status(pick("conditional_access_status")),
    }, None


def _flatten(record: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Normalised keys, with one level of nested objects as ``parent.child``; embedded
    JSON text in the Sentinel columns parsed first."""
    flat: dict[str, Any] = {}
    for name, value in record.items():
        key = norm_key(str(name))
        if key in _EMBEDDED and isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                return {}, f"column {name!r} is not valid JSON ({exc.msg} at char {exc.pos})"
        if flat.get(key) in (None, ""):
            flat[key] = value
        if isinstance(value, dict):
            for sub, inner in value.items():
                flat.setdefault(f"{key}.{norm_key(str(sub))}", inner)
    return flat, None


def _ip(value: Any) -> str | None:
    """An IP address as Python writes it (IPv6 compressed); ``ValueError`` if it is none."""
    text = _text(value)
    return None if text is None else str(ipaddress.ip_address(text))


def _upn(value: Any) -> str | None:
    text = _text(value)
    return text.lower() if text else None


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value.strip() if isinstance(value, str) else str(value)
    return text or None


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else repr(str(value))
    return text if len(text) <= 80 else text[:77] + "...'"


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    return True if text in _TRUE else False if text in _FALSE else None


def _interactive(flat: dict[str, Any], value: Any) -> bool | None:
    if (found := _bool(value)) is not None:
        return found
    table = str(flat.get("type") or flat.get("category") or "").lower()
    if "noninteractive" in table:
        return False
    if table == "signinlogs":
        return True
    kinds = flat.get("signineventtypes")
    if isinstance(kinds, list):
        lowered = {str(k).lower() for k in kinds}
        if "interactiveuser" in lowered:
            return True
        if lowered:
            return False
    return None


def _error_code(value: Any, status: Any) -> int | None:
    if value is None and isinstance(status, str):
        value = status  # the portal download: Status "Success" / "Failure"
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.lower() == "success":
        return 0
    try:
        return int(float(text)) if text else None
    except ValueError:
        return None


def _ca_status(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return _CA_CODES.get(value, str(value))
    return _text(value)


# ---------------------------------------------------------------------------- DuckDB fast path
# Graph pages one a line (``dsguard synth``), sign-ins one a line (``dsguard collect``), a
# pretty-printed page and JSON arrays of either are parsed by DuckDB, in C++ on every core.
# The mapping stays the one above: SQL picks values through ``_FIELDS`` and converts only
# values whose conversion is the identity (a trimmed string, a canonical IPv4 address, a UTC
# time); other values go through the converters ``map_signin`` uses, once per distinct value,
# and a sign-in that needs the whole record (a reject, no id) through ``map_signin`` itself.
# A file the fast path cannot prove it reads as the Python path does (another shape, damage,
# keys that collide once normalised, text only DuckDB's parser accepts) is left to that path.

_FAST_MAX_OBJECT = 16 << 20  # bigger: a page is sliced (_value_slice), else the Python path
_PROBE_CHUNK = 8 << 20
_FFFD = "\ufffd".encode()
# What DuckDB's parser (yyjson, trailing commas and NaN/Inf in any case allowed) takes and
# Python's json refuses. A document matching one of these (mostly a string that looks so)
# has its suspect words checked, and Python parses it when in doubt.
_LENIENT = (
    r":[ \t\n\r]*-?([NiI]|n[^u])",
    r",[ \t\n\r]*(-?([NiI]|n[^u])|[\]}])",
    r"\[[ \t\n\r]*-?([NiI]|n[^u])",
)
_LENIENT_WORD = r"[:,\[][ \t\n\r]*(-?[A-Za-z]+)"
_TRAILING_COMMA = r",[ \t\n\r]*[\]}]"
_NON_FINITE = frozenset({"nan", "inf", "infinity", "-nan", "-inf", "-infinity"})
_PY_NON_FINITE = frozenset({"NaN", "Infinity", "-Infinity"})
# Per converter, the strings SQL may take as they are (RE2, full match) and what SQL makes of
# such a string ``{s}``: no whitespace for ``str.strip`` at either end; ASCII only where
# Python lower-cases; a canonical IPv4 address; a time DuckDB's cast reads as
# ``datetime.fromisoformat`` does (both refuse 31 April). First for a string value, then for
# its JSON text, where a plain string has no escapes.
_IPV4 = IPV4_PATTERN
_TIME = (
    r"[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?Z?"
)
_PLAIN: dict[str, tuple[str, str, str]] = {
    "text": (r"(?s)[!-~](.*[!-~])?", r'"[!#-\[\]-~]([^"\\]*[!#-\[\]-~])?"', "{s}"),
    "upn": (r"[!-~]([ -~]*[!-~])?", r'"[!#-\[\]-~]([ !#-\[\]-~]*[!#-\[\]-~])?"', "lower({s})"),
    "ip": (_IPV4, f'"{_IPV4}"', "{s}"),
    "ts": (_TIME, f'"{_TIME}"', "timezone('UTC', try_cast(rtrim({s}, 'Z') AS TIMESTAMP))"),
}
# ``json_structure`` types → how a key is read: "text" (strings), "bool", "int" (typed
# leaves), or "json" (JSON text, for other or unknown types).
_KINDS = {"VARCHAR": "text", "BOOLEAN": "bool", "UBIGINT": "int", "BIGINT": "int",
          "HUGEINT": "int"}
_LEAF = {"text": "VARCHAR", "bool": "BOOLEAN", "int": "VARCHAR", "json": "JSON"}
_PARENTS = frozenset(
    {a.split(".", 1)[0] for aliases in _FIELDS.values() for a in aliases if "." in a}
) | _EMBEDDED
_CONTEXT = frozenset({"type", "category", "signineventtypes"})  # read by ``_interactive``
_SHAPE_KEYS = frozenset({"value", "results", "schema", "records", "tables", "properties"})


@dataclass(frozen=True, slots=True)
class _Col:
    """A ``SignIn`` column of the fast path: its ``_FIELDS`` entry and converter."""

    column: str
    field: str
    conv: str  # "text", "id", "upn", "ip", "ts", "ca", "bool" or "int"

    @property
    def kinds(self) -> tuple[str, str]:
        """The typed kind this converter reads, then the general one."""
        return (self.conv if self.conv in ("bool", "int") else "text", "json")


_COLS = (
    _Col("signin_id", "id", "id"), _Col("ts", "ts", "ts"),
    _Col("user_principal_name", "upn", "upn"), _Col("user_id", "user_id", "text"),
    _Col("user_display_name", "user_display_name", "text"),
    _Col("app_display_name", "app_display_name", "text"), _Col("app_id", "app_id", "text"),
    _Col("ip_address", "ip", "ip"), _Col("client_app_used", "client_app_used", "text"),
    _Col("is_interactive", "is_interactive", "bool"), _Col("error_code", "error_code", "int"),
    _Col("failure_reason", "failure_reason", "text"), _Col("country", "country", "text"),
    _Col("city", "city", "text"), _Col("operating_system", "operating_system", "text"),
    _Col("browser", "browser", "text"),
    _Col("conditional_access_status", "conditional_access_status", "ca"),
)


# The fast path fills these columns; a SignIn field or _FIELDS entry it does not know (added
# to map_signin and not here) sends every file to the Python path rather than drift.
_FAST_COMPLETE = (
    {c.column for c in _COLS} | {"source_file", "source_row"} == set(SignIn.model_fields)
    and {c.field for c in _COLS} | {"correlation_id"} == set(_FIELDS)
)


class _Fallback(Exception):
    """The fast path cannot vouch for this file; the Python path reads it."""


@dataclass(slots=True)
class _Probe:
    fmt: str  # read_json_objects format
    compression: str
    replaced: int  # U+FFFD characters, which the Python path reports


def _probe(path: Path) -> _Probe | None:
    """How DuckDB should read ``path``, or ``None`` when it cannot read it as Python would:
    not UTF-8, an unreadable gzip stream, a form feed or vertical tab (whitespace between
    documents to DuckDB, damage to Python; inside a document both refuse them), or a top
    array that does not end with ``]`` (DuckDB takes ``[{..},`` as complete)."""
    gz = path.name.lower().endswith(".gz")
    first = last = b""
    replaced = 0
    tail = b""
    try:
        with gzip.open(path, "rb") if gz else path.open("rb") as fh:
            chunk = fh.read(_PROBE_CHUNK)
            if _sniff_encoding(chunk[:4]) not in ("utf-8", "utf-8-sig"):
                return None
            lead = chunk.removeprefix(b"\xef\xbb\xbf")
            while chunk:
                if b"\x0b" in chunk or b"\x0c" in chunk:
                    return None
                if not first:
                    first = lead.lstrip(b" \t\r\n")[:1]
                end = chunk[-4096:].rstrip(b" \t\r\n") or chunk.rstrip(b" \t\r\n")
                last = end[-1:] or last
                if b"\xef" in chunk or b"\xef" in tail:
                    replaced += chunk.count(_FFFD) + (tail + chunk[:2]).count(_FFFD)
                tail = chunk[-2:]
                chunk = lead = fh.read(_PROBE_CHUNK)
    except (OSError, EOFError, zlib.error):
        return None
    if first == b"[" and last != b"]":
        return None
    fmt = "array" if first == b"[" else "newline_delimited"
    return _Probe(fmt, "gzip" if gz else "none", replaced)


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _fast_stage(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> list[str] | None:
    """Stage a JSON file through DuckDB; its warnings, or ``None`` to use the Python path.

    DuckDB works on a connection of its own: a parse error there must not abort the caller's
    transaction (the store ingests all files in one), and only finished rows reach ``con``.
    """
    key = _stat_key(path)
    ahead = _PREPARED.pop(key, None) if key is not None else None
    prepared = ahead.result() if ahead is not None else _prepare(con, path)
    try:
        if prepared.final is None:
            return None
        con.execute(stage_table_sql(SignIn, table))
        with contextlib.ExitStack() as lent:
            for name, rows in prepared.final.tables.items():
                lent.enter_context(registered(con, name, rows))
            con.execute(f'INSERT INTO "{table}" {prepared.final.sql}')
    finally:
        prepared.close()
    return [_replaced_warning(prepared.replaced)] if prepared.replaced else []


@dataclass(slots=True)
class _Prepared:
    """A file taken through the fast path up to its staging: the rows wait in ``tmp``;
    ``final`` is ``None`` when the Python path must read the file."""

    final: _Final | None = None
    replaced: int = 0
    tmp: tempfile.TemporaryDirectory[str] | None = None

    def close(self) -> None:
        if self.tmp is not None:
            self.tmp.cleanup()


def _prepare(con: duckdb.DuckDBPyConnection | SideSettings, path: Path) -> _Prepared:
    """Survey, plan, extract and convert ``path`` on a side connection (any thread)."""
    probe = _probe(path) if _FAST_COMPLETE else None
    if probe is None:
        return _Prepared()
    tmp = tempfile.TemporaryDirectory(prefix="dsguard-signins-")
    try:
        with side_connection(con) as side:
            final = _FastJson(side, path, probe, Path(tmp.name)).run()
    except (duckdb.Error, _Fallback):
        tmp.cleanup()
        return _Prepared()
    except BaseException:
        tmp.cleanup()
        raise
    return _Prepared(final, probe.replaced, tmp)


# Files prepared ahead (``look_ahead``), by path, size and mtime: a day's Graph page is one
# JSON document, which DuckDB reads on one core, so while the store stages one file the next
# is prepared, and the one after it when its turn to be announced comes: two workers keep
# both cores busy. A file bigger than ``_AHEAD_MAX_BYTES`` is prepared when staged.
_AHEAD = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dsguard-signins")
_AHEAD_MAX_BYTES = 256 << 20
_PREPARED: dict[tuple[Path, int, int], Future[_Prepared]] = {}


def _stat_key(path: Path) -> tuple[Path, int, int] | None:
    """A file changed since it was prepared is prepared again; one that cannot be read is
    left to the reader to report."""
    try:
        st = path.stat()
    except OSError:
        return None
    return path, st.st_size, st.st_mtime_ns


def _prepare_ahead(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    key = _stat_key(path)
    if key is None or key[1] > _AHEAD_MAX_BYTES or key in _PREPARED:
        return
    settings = side_settings(con)  # read here: the store's connection stays on this thread
    _PREPARED[key] = _AHEAD.submit(_prepare, settings, path)
    while len(_PREPARED) > 2:  # one for a file that was not staged after all
        _discard(_PREPARED.pop(next(iter(_PREPARED))))


def _discard(ahead: Future[_Prepared]) -> None:
    """Drop a preparation nobody will stage, and its rows when it is done."""
    if not ahead.cancel():
        ahead.add_done_callback(
            lambda f: f.result().close() if f.exception() is None else None
        )


@dataclass(slots=True)
class _Final:
    """The staging query for the caller's connection and the Arrow tables it reads."""

    sql: str
    tables: dict[str, pa.Table]


class _FastJson:
    """One JSON file through DuckDB: survey, plan, extract, convert (see above).

    The hot queries do not number documents (a window over the scan would serialise it):
    the rows are written in file order, as DuckDB keeps the insertion order of a parallel
    JSON scan, and where a sign-in came from is worked out only for the few Python maps.
    """

    def __init__(
        self, side: duckdb.DuckDBPyConnection, path: Path, probe: _Probe, tmp: Path
    ) -> None:
        self.side = side
        self.path = path
        self.probe = probe
        self.tmp = tmp
        self.rows = tmp / "signins.parquet"
        self.tables: dict[str, pa.Table] = {}
        self.source = path  # what DuckDB reads: the file, or the items of its one big page
        self.sliced: int | None = None  # then: the line the page starts on
        self.fmt = probe.fmt
        self.page_key: str | None = None
        self.n_docs = 0
        self.n_null = 0
        self._lines: list[int] | None = None
        self._nulls: list[int] | None = None

    @property
    def scan(self) -> str:
        """The documents, in file order."""
        return (
            f"read_json_objects({_sql_str(str(self.source))}, format='{self.fmt}', "
            f"compression='{self.probe.compression}', maximum_object_size={_FAST_MAX_OBJECT})"
        )

    @property
    def numbered(self) -> str:
        """The documents numbered from 1 (``k``); for the rare lookups only."""
        return f"(SELECT row_number() OVER () AS k, json FROM {self.scan})"

    def run(self) -> _Final:
        """How to stage the rows, in ``_row`` order; raises ``duckdb.Error`` or
        ``_Fallback``. Values converted in SQL wait in a Parquet file, so that neither they
        nor the parser's memory live on beside the staging table."""
        try:
            first = self._first_keys()
        except duckdb.Error:
            first = self._retry()
        records = (
            self._survey_pages()
            if self.sliced is None and any(k.lower() == "value" for k in first)
            else self._survey_records(first)
        )
        plan = _plan(records)
        if plan is None:
            raise _Fallback
        self._extract(plan)
        assists = self._assist(plan)
        converted = self._converted(plan, assists)
        for name, rows in self.tables.items():
            self.side.register(name, rows)
        routed = [n for (n,) in self.side.execute(
            f"SELECT _row FROM {converted} WHERE _route ORDER BY _row"
        ).fetchall()]
        union = ""
        if routed:
            schema = arrow_schema(SignIn)
            mapped = list(self._routed(routed))
            self.tables["_signins_routed"] = pa.table(
                {f.name: pa.array([r.get(f.name) for r in mapped], f.type) for f in schema},
                schema=schema,
            )
            union = " UNION ALL SELECT * FROM _signins_routed"
        columns = ", ".join(
            "NULL::VARCHAR" if c in ("_raw", "_reject", "_note")
            else _sql_str(self.path.name) if c == "source_file"
            else "_row" if c == "source_row"
            else f'"{c}"'
            for c in arrow_schema(SignIn).names
        )
        # The Parquet file is in _row order; joins and the union may not keep it, and a
        # sort costs memory as big as the rows.
        order = " ORDER BY _row" if routed or assists else ""
        return _Final(
            f"SELECT {columns} FROM {converted} WHERE NOT _route{union}{order}", self.tables
        )

    def _retry(self) -> list[str]:
        """After DuckDB could not read the file as JSON lines: documents over several lines
        (a pretty-printed page), or one page too big for a document (``_FAST_MAX_OBJECT``),
        whose ``value`` array is then copied out and read as an array."""
        if self.fmt == "newline_delimited":
            self.fmt = "unstructured"
            try:
                return self._first_keys()
            except duckdb.Error:
                pass
        found = _value_slice(self.path) if self.probe.compression == "none" else None
        if found is None:
            raise _Fallback
        start, end, self.sliced = found
        self.source = self.tmp / "value.json"
        with self.path.open("rb") as src, self.source.open("wb") as out:
            src.seek(start)
            left = end - start
            while left > 0:
                chunk = src.read(min(left, _PROBE_CHUNK))
                if not chunk:
                    raise _Fallback
                out.write(chunk)
                left -= len(chunk)
        self.fmt = "array"
        return self._first_keys()

    # -- survey
    def _first_keys(self) -> list[str]:
        """The keys of an object document (any: a guess the survey checks)."""
        rows = self.side.execute(
            f"SELECT json_keys(json) FROM {self.scan} WHERE left(json, 1) = '{{' LIMIT 1"
        ).fetchall()
        return list(rows[0][0]) if rows else []

    def _groups(self, exprs: str) -> list[tuple[Any, ...]]:
        """The distinct values of ``exprs`` over the documents, which are counted; those
        that may hold what only DuckDB parses are checked on the way."""
        lenient = " OR ".join(f"regexp_matches(json, {_sql_str(p)})" for p in _LENIENT)
        rows = self.side.execute(
            f"""SELECT {exprs}, count(*), count(*) FILTER (WHERE odd),
                       count(*) FILTER (WHERE json = 'null')
                FROM (SELECT json, {lenient} AS odd FROM {self.scan}) GROUP BY ALL"""
        ).fetchall()
        self.n_docs = sum(row[-3] for row in rows)
        self.n_null = sum(row[-1] for row in rows)
        if any(row[-2] for row in rows):
            self._check_lenient()
        return [row[:-3] for row in rows]

    def _survey_pages(self) -> dict[str, Any]:
        """The union ``json_structure`` of the sign-ins in Graph pages.

        Every document must be a page (``value`` beside ``@odata`` keys) or ``null``; its
        items sign-in objects (a ``null`` among them is rejected by ``map_signin``).
        """
        union: Any = "NULL"
        for (text,) in self._groups("json_structure(json)"):
            try:
                union = _union(union, json.loads(text))
            except RecursionError:
                raise _Fallback from None
        lower = {k.lower() for k in union} if isinstance(union, dict) else set()
        if len(lower) < len(union) or "value" not in lower:
            raise _Fallback
        key = next(k for k in union if k.lower() == "value")
        if any(k != key and "@" not in k for k in union) or '"' in key:
            raise _Fallback
        self.page_key = key
        items = union[key]
        if items in ("NULL", ["NULL"]):
            return {}
        if not isinstance(items, list) or not isinstance(items[0], dict):
            raise _Fallback
        return dict(items[0])

    def _survey_records(self, first: list[str]) -> dict[str, Any]:
        """The keys of documents that are sign-in objects (or ``null``), with the keys of
        the nested objects ``_FIELDS`` reads, which must be objects (or ``null``) in every
        sign-in; the types of the values are left unknown (``?``).

        Unlike pages, these need not all have the same keys: ``json_keys`` shows a key
        twice where Python would keep the last value, so a missing key can just be NULL.
        """
        parents = [k for k in first if norm_key(k) in _PARENTS]
        while True:
            if any('"' in k for k in parents):
                raise _Fallback
            paths = "[" + ", ".join(_sql_str(f'$."{k}"') for k in parents) + "]"
            nested = (
                f"json_keys(json, {paths}), json_type(json, {paths})" if parents
                else "NULL::VARCHAR[][], NULL::VARCHAR[]"
            )
            union: dict[str, Any] = {}
            for lead, keys, subs, types in self._groups(
                f"left(json, 1), json_keys(json), {nested}"
            ):
                if lead == "n":
                    continue
                if lead != "{" or len(set(keys)) < len(keys):
                    raise _Fallback
                for key in keys:
                    union.setdefault(key, "?")
                for parent, inner, kind in zip(parents, subs or [], types or [], strict=False):
                    inner = inner or []
                    if kind not in (None, "NULL", "OBJECT") or len(set(inner)) < len(inner):
                        raise _Fallback  # JSON text, a location or status as text...
                    node = union[parent] if isinstance(union.get(parent), dict) else {}
                    union[parent] = node | dict.fromkeys(inner, "?")
            found = [k for k in union if norm_key(k) in _PARENTS]
            if set(found) <= set(parents):
                break
            parents = found
        if _SHAPE_KEYS & {k.lower() for k in union}:
            raise _Fallback  # a page, hunting or Log Analytics result, an archive envelope
        return union

    def _check_lenient(self) -> None:
        """Documents that may hold what only DuckDB accepts: Python parses the doubtful."""
        lenient = " OR ".join(f"regexp_matches(json, {_sql_str(p)})" for p in _LENIENT)
        rows = self.side.execute(
            f"""SELECT k, regexp_matches(json, {_sql_str(_TRAILING_COMMA)}),
                       regexp_extract_all(json, {_sql_str(_LENIENT_WORD)}, 1)
                FROM {self.numbered} WHERE {lenient}"""
        ).fetchall()
        doubt = [
            k for k, comma, words in rows
            if comma or any(w.lower() in _NON_FINITE and w not in _PY_NON_FINITE for w in words)
        ]
        for text in self._doc_texts(doubt).values():
            try:
                json.loads(text)
            except (ValueError, RecursionError):
                raise _Fallback from None

    def _doc_texts(self, ks: list[int]) -> dict[int, str]:
        if not ks:
            return {}
        rows = self.side.execute(
            f"SELECT k, json FROM {self.numbered} WHERE k IN (SELECT unnest(?::BIGINT[]))",
            [ks],
        ).fetchall()
        return {int(k): str(text) for k, text in rows}

    # -- extraction
    def _extract(self, plan: _Plan) -> None:
        """Write the sign-ins, in file order, to Parquet: ``_odd`` (not an object) and, per
        column, the value SQL converted or the raw value left to Python (``<column>__x``).

        In pages ``json_transform_strict`` proves each sign-in has the keys read, once each
        (the survey's ``json_structure`` merges a repeated key, which Python reads last).
        """
        spec = json.dumps(plan.spec)
        if self.page_key is not None:
            spec = json.dumps({self.page_key: [plan.spec]})
            items = f"""SELECT unnest(struct_extract(json_transform_strict(json,
                {_sql_str(spec)}), {_sql_str(self.page_key)})) AS r FROM {self.scan}"""
        elif not self.n_null:
            # DuckDB's typed reader, quicker than a transform per small document; it too
            # refuses a key twice and a nested object that is not one.
            columns = ", ".join(f"{_sql_str(k)}: {_sql_str(_sql_type(v))}"
                                for k, v in plan.spec.items())
            fields = ", ".join(f"{_sql_str(k)}: {_ident(k)}" for k in plan.spec)
            items = f"""SELECT {{{fields}}} AS r FROM read_json({_sql_str(str(self.source))},
                format='{self.fmt}', records=true, columns={{{columns}}},
                compression='{self.probe.compression}', maximum_object_size={_FAST_MAX_OBJECT})"""
        else:
            keep = "" if self.sliced else " WHERE json <> 'null'"  # a null item is a reject
            items = f"""SELECT json_transform(json, {_sql_str(spec)}) AS r
                FROM {self.scan}{keep}"""
        picks = ", ".join(f"{plan.pick_sql(col)} AS {col.column}" for col in _COLS)
        outs = []
        for col in _COLS:
            fast, rest = _fast_sql(col, plan.kind[col.column], col.column)
            outs.append(f"{fast} AS {col.column}, {rest} AS {col.column}__x")
        self.side.execute(
            f"""COPY (SELECT _odd, {", ".join(outs)}
                      FROM (SELECT r IS NULL AS _odd, {picks} FROM ({items})))
                TO {_sql_str(str(self.rows))} (FORMAT parquet)"""
        )

    @property
    def extracted(self) -> str:
        """The extracted rows, numbered by their place in the Parquet file (``_row``)."""
        return (
            f"(SELECT file_row_number + 1 AS _row, * EXCLUDE (file_row_number) "
            f"FROM read_parquet({_sql_str(str(self.rows))}, file_row_number = true))"
        )

    def _assist(self, plan: _Plan) -> dict[str, str]:
        """Convert, in Python and once each, the distinct values SQL left alone; a table per
        column (``p``: raw value, ``v``: value, ``route``: the row needs ``map_signin``)."""
        schema = arrow_schema(SignIn)
        tables: dict[str, str] = {}
        for col in _COLS:
            raws = [str(raw) for (raw,) in self.side.execute(
                f"SELECT DISTINCT {col.column}__x FROM {self.extracted} "
                f"WHERE {col.column}__x IS NOT NULL"
            ).fetchall()]
            if not raws:
                continue
            kind = plan.kind[col.column]
            done = [_assist_value(col.conv, kind, raw, plan.context) for raw in raws]
            tables[col.column] = name = f"_signins_{col.column}"
            self.tables[name] = pa.table({
                "p": pa.array(raws, pa.string()),
                "v": pa.array([v for v, _ in done], schema.field(col.column).type),
                "route": pa.array([route for _, route in done], pa.bool_()),
            })
        return tables

    def _converted(self, plan: _Plan, assists: dict[str, str]) -> str:
        """The converted columns and ``_route``, true for the rows ``map_signin`` maps."""
        values, joins = [], []
        routes = ["r._odd"]
        for col in _COLS:
            c = col.column
            if c in assists:
                joins.append(f"LEFT JOIN {assists[c]} a_{c} ON a_{c}.p = r.{c}__x")
                values.append(f"coalesce(r.{c}, a_{c}.v) AS {c}")
                routes.append(f"coalesce(a_{c}.route, false)")
            else:
                values.append(f"r.{c} AS {c}")
            if col.conv in ("id", "ts") or (col.conv == "bool" and plan.context):
                routes.append(f"(r.{c} IS NULL AND r.{c}__x IS NULL)")  # missing
        return f"""(SELECT r._row, {", ".join(values)}, {" OR ".join(routes)} AS _route
                    FROM {self.extracted} r {" ".join(joins)})"""

    # -- sign-ins for map_signin
    def _routed(self, routed: list[int]) -> Iterator[dict[str, Any]]:
        """The rows SQL did not finish, mapped from their document as Python parses it."""
        places = self._places(routed)
        texts = self._doc_texts(sorted({k for k, _ in places.values()}))
        parsed: dict[int, Any] = {}
        for n in routed:
            k, i = places[n]
            if k not in parsed:
                parsed[k] = json.loads(texts[k])
            value = parsed[k][self.page_key][i - 1] if self.page_key else parsed[k]
            row, reason = map_signin(value)
            reject = f"{self._where(k, i)}: {reason}" if reason else None
            yield _staged(row, value, n, self.path.name, reject, None)

    def _places(self, rows: list[int]) -> dict[int, tuple[int, int]]:
        """Document ``k`` and item ``i`` of the given ``_row`` values."""
        if self.sliced or (self.page_key is None and not self.n_null):
            return {n: (n, n if self.sliced else 1) for n in rows}
        if self.page_key is None:
            sizes = self.side.execute(
                f"SELECT k, (json <> 'null')::INT FROM {self.numbered} ORDER BY k"
            ).fetchall()
        else:
            path = _sql_str(f'$."{self.page_key}"')
            sizes = self.side.execute(
                f"""SELECT k, coalesce(json_array_length(json, {path}), 0)
                    FROM {self.numbered} ORDER BY k"""
            ).fetchall()
        ends = list(itertools.accumulate(size for _, size in sizes))
        places = {}
        for n in rows:
            j = bisect.bisect_left(ends, n)
            places[n] = (sizes[j][0], n - (ends[j - 1] if j else 0))
        return places

    def _where(self, k: int, i: int) -> str:
        """Where the Python path says a sign-in is. Only in JSON lines, where a document is
        a line, is that known without parsing the file in Python."""
        if self.sliced:
            return f"page 1 (line {self.sliced}) item {i}"
        if self._lines is None:
            if self.fmt != "newline_delimited":
                raise _Fallback
            with _Text(self.path, newline=None) as text:
                self._lines = [
                    n for n, line in enumerate(text.lines(), 1) if line.strip(" \t\r\n")
                ]
            if len(self._lines) != self.n_docs:
                raise _Fallback
        line = self._lines[k - 1]
        if self.page_key is None:
            return f"line {line}"
        return f"page {self._page(k)} (line {line}) item {i}"

    def _page(self, k: int) -> int:
        """The Python path's page number of document ``k``: documents but ``null`` count."""
        if not self.n_null:
            return k
        if self._nulls is None:
            self._nulls = [j for (j,) in self.side.execute(
                f"SELECT k FROM {self.numbered} WHERE json = 'null' ORDER BY k"
            ).fetchall()]
        return k - bisect.bisect_left(self._nulls, k)


def _value_slice(path: Path) -> tuple[int, int, int] | None:
    """For a file that is one Graph page: the byte range of its ``value`` array and the line
    the page starts on; ``None`` for anything else.

    The keys before the array and the text after it are parsed here; DuckDB then proves the
    range is one complete array, so the three parts are the page Python would read.
    """
    size = path.stat().st_size
    if size <= _FAST_MAX_OBJECT:
        return None
    tail_at = max(0, size - _CHUNK)  # the array must start and end within _CHUNK
    with path.open("rb") as fh:
        text = fh.read(_CHUNK).decode("utf-8", "surrogateescape")
        fh.seek(tail_at)
        tail = fh.read().rstrip(b" \t\r\n")
    i = _after(_WS, text, 1 if text.startswith("\ufeff") else 0)
    if not text.startswith("{", i):
        return None
    head = text[:i]
    line = 1 + head.count("\n") + head.count("\r") - head.count("\r\n")
    keys: list[str] = []
    try:
        i += 1
        while True:
            key, i = _DECODER.raw_decode(text, _after(_WS, text, i))
            i = _after(_WS, text, i)
            if not isinstance(key, str) or not text.startswith(":", i):
                return None
            i = _after(_WS, text, i + 1)
            if key.lower() == "value" and text.startswith("[", i):
                break
            keys.append(key)
            _, i = _DECODER.raw_decode(text, i)
            i = _after(_WS, text, i)
            if not text.startswith(",", i):
                return None
            i += 1
    except (ValueError, RecursionError):
        return None
    pos = len(tail)
    for _ in range(16):  # the array's "]" is the last one after which the rest parses
        pos = tail.rfind(b"]", 0, pos)
        if pos < 0:
            return None
        try:
            pairs = json.loads(
                '{"": []' + tail[pos + 1 :].decode(), object_pairs_hook=lambda kv: kv
            )
        except (ValueError, RecursionError):
            continue
        keys.extend(k for k, _ in pairs[1:])
        break
    else:
        return None
    if any("@" not in k for k in keys):  # a page has only @odata keys beside value
        return None
    start = len(text[:i].encode("utf-8", "surrogateescape"))
    return start, tail_at + pos + 1, line


def _union(a: Any, b: Any) -> Any:
    """Two ``json_structure`` results as one; a key's types that differ become ``JSON``."""
    if a == b or b == "NULL":
        return a
    if a == "NULL":
        return b
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, sub in b.items():
            out[key] = _union(out[key], sub) if key in out else sub
        return out
    if isinstance(a, list) and isinstance(b, list):
        return [_union(a[0], b[0])]
    if a in ("UBIGINT", "BIGINT", "HUGEINT") and b in ("UBIGINT", "BIGINT", "HUGEINT"):
        return "HUGEINT"
    return "JSON"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_type(leaf: Any) -> str:
    """A json_transform structure (a type, or an object of them) as a SQL type."""
    if isinstance(leaf, dict):
        return "STRUCT(" + ", ".join(f"{_ident(k)} {_sql_type(v)}" for k, v in leaf.items()) + ")"
    return str(leaf)


def _ref(path: tuple[str, ...]) -> str:
    ref = "r"
    for key in path:
        ref = f"struct_extract({ref}, {_sql_str(key)})"
    return ref


@dataclass(slots=True)
class _Plan:
    """Where each column's aliases are in the file's sign-ins, and how they are read."""

    spec: dict[str, Any]  # json_transform structure: key → leaf type, or parent → {sub: leaf}
    paths: dict[str, list[tuple[str, ...]]]  # column → alias paths, best first
    kind: dict[str, str]  # column → kind its paths are read as
    context: bool  # keys ``_interactive`` falls back on exist

    def pick_sql(self, col: _Col) -> str:
        """``pick``: the first alias present and not empty, as SQL."""
        kind = self.kind[col.column]
        whens = []
        for path in self.paths[col.column]:
            ref = _ref(path)
            empty = {"text": f" AND {ref} <> ''", "json": f" AND {ref}::VARCHAR <> '\"\"'"}.get(
                kind, ""
            )
            whens.append(f"WHEN {ref} IS NOT NULL{empty} THEN {ref}")
        return f"CASE {' '.join(whens)} END" if whens else f"NULL::{_LEAF[kind]}"


def _plan(records: dict[str, Any]) -> _Plan | None:
    """The plan for sign-ins whose keys (and ``json_structure`` types, or ``?``) are
    ``records``; ``None`` when the fast path cannot follow ``_flatten``: keys that collide
    once normalised, a diagnostic settings envelope, anything but objects (or null) where
    ``_flatten`` reads a nested object."""
    norms = {norm_key(k): k for k in records}
    if len(norms) < len(records) or any("." in n or n in _SHAPE_KEYS for n in norms):
        return None
    subs: dict[str, dict[str, str]] = {}
    for norm, key in norms.items():
        inner = records[key]
        if norm not in _PARENTS or inner == "NULL":
            continue
        if not isinstance(inner, dict):
            return None
        subs[norm] = {norm_key(s): s for s in inner}
        if len(subs[norm]) < len(inner):
            return None
    spec: dict[str, Any] = {}
    paths: dict[str, list[tuple[str, ...]]] = {}
    kinds: dict[str, str] = {}
    for col in _COLS:
        found: list[tuple[tuple[str, ...], Any]] = []
        for alias in _FIELDS[col.field]:
            parent, _, sub = alias.partition(".")
            if parent not in norms:
                continue
            key = norms[parent]
            if not sub:
                found.append(((key,), records[key]))
            elif sub in subs.get(parent, {}):
                found.append(((key, subs[parent][sub]), records[key][subs[parent][sub]]))
        seen = {_KINDS.get(t, "json") if isinstance(t, str) else "json"
                for _, t in found if t != "NULL"}
        kind = seen.pop() if len(seen) == 1 else "json" if seen else col.kinds[0]
        kinds[col.column] = kind if kind in col.kinds else "json"
        paths[col.column] = [path for path, _ in found]
        for path, _ in found:
            *outer, last = path
            node = spec
            for key in outer:
                node = node.setdefault(key, {})
            if not isinstance(node, dict) or last in node:
                return None
            node[last] = _LEAF[kinds[col.column]]
    if not spec:
        return None
    return _Plan(spec, paths, kinds, bool(_CONTEXT & set(norms)))


def _fast_sql(col: _Col, kind: str, p: str) -> tuple[str, str]:
    """SQL for the picked value ``p``: (the column's value when SQL can convert it, else
    NULL; the raw value when Python must, else NULL)."""
    v = f"({p}::VARCHAR)"
    if kind == "bool":
        fast = p
    elif kind == "int":
        fast = f"try_cast({p} AS BIGINT)"
    elif col.conv == "bool":
        fast = f"CASE {v} WHEN 'true' THEN true WHEN 'false' THEN false END"
    elif col.conv == "int":
        fast = f"CASE WHEN regexp_full_match({v}, '-?[0-9]{{1,18}}') THEN {v}::BIGINT END"
    else:
        text, as_json, sql = _PLAIN.get(col.conv, _PLAIN["text"])
        pattern, s = (text, v) if kind == "text" else (as_json, f"{v}[2:-2]")
        fast = f"CASE WHEN regexp_full_match({v}, {_sql_str(pattern)}) THEN {sql.format(s=s)} END"
    return fast, f"CASE WHEN {fast} IS NULL THEN {v} END"


def _assist_value(conv: str, kind: str, raw: str, context: bool) -> tuple[Any, bool]:
    """A raw value SQL left alone, converted as ``map_signin`` converts it: (value, whether
    the row must go to ``map_signin`` whole: a reject, no id, or no interactivity flag but
    other keys to infer it from)."""
    value = raw if kind == "text" else int(raw) if kind == "int" else json.loads(raw)
    if conv == "ts":
        try:
            ts = parse_timestamp(value)
        except (ValueError, OverflowError):
            return None, True
        return ts, ts is None
    if conv == "ip":
        try:
            return _ip(value), False
        except ValueError:
            return None, True
    if conv == "upn":
        return _upn(value), False
    if conv == "bool":
        found = _bool(value)
        return found, found is None and context
    if conv == "int":
        code = _error_code(value, None)
        if code is not None and not -(2**63) <= code < 2**63:
            return None, True
        return code, False
    if conv == "ca":
        return _ca_status(value), False
    text = _text(value)
    return text, text is None and conv == "id"
