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
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import ipaddress
import json
import re
import sys
import zlib
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from dsguard.evidence.model import SignIn
from dsguard.sources.base import Reader, SourceError, StageResult, stage_records, to_json_text

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

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, table: str) -> StageResult:
        warnings: list[str] = []
        stem = path.name.removesuffix(".gz").lower()
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
            out.append(f"{self._replaced} undecodable characters replaced with U+FFFD")
        return out

    def __enter__(self) -> _Text:
        return self

    def __exit__(self, *exc: object) -> None:
        self._io.close()


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
        raw = to_json_text(rec if len(cells) <= width else {**rec, "": cells[width:]})
        reject = None
        if len(cells) > width:
            reject = f"line {line}: {len(cells)} cells but the header has {width}"
        yield _Record(rec, f"line {line}", raw=raw, reject=reject)


# ---------------------------------------------------------------------------- mapping
def _rows(records: Iterator[_Record], file: str) -> Iterator[dict[str, Any]]:
    for n, rec in enumerate(records, 1):
        raw = rec.raw if rec.raw is not None else to_json_text(rec.value)
        row: dict[str, Any] = {}
        reject = rec.reject
        if reject is None:
            row, reason = map_signin(rec.value)
            if reason:
                reject = f"{rec.where}: {reason}"
        row.update(source_file=file, source_row=n, _row=n, _raw=raw, _reject=reject)
        yield row


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
    ip = _text(pick("ip"))
    if ip is not None:
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            return {}, f"invalid IP address {_short(ip)}"
    upn = _text(pick("upn"))
    upn = upn.lower() if upn else None
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
