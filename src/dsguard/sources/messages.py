"""``messages/**/*.eml`` and ``messages/**/*.msg``: raw messages and their header evidence.

One file is one staged row keyed by the SHA-256 of its bytes. Messages are hostile input:
damaged encodings, broken RFC 2047, duplicate or missing headers and non-UTF-8 bytes are
recorded in ``defects`` and the message still loads; a file that is not a message at all
(empty, binary, HTML, a ``.msg`` that is not an OLE compound file) becomes a rejected row with
a one-line reason. Nothing here raises out of the reader.

``.eml`` is parsed with the stdlib ``email`` package under ``compat32`` and read through
``raw_items()``: that keeps every header exactly as written (the header-registry policies
parse addresses on access and can raise on hostile values), and this module decodes the few
fields it needs itself. ``.msg`` goes through ``extract-msg``; its transport headers
(``PR_TRANSPORT_MESSAGE_HEADERS``) are parsed the same way as an ``.eml``'s.
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import email.utils
import hashlib
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import duckdb
import pyarrow as pa
from pydantic import BaseModel, Field, ValidationError

from dsguard.evidence.model import RawMessage
from dsguard.headers.evidence import HeaderEvidence, extract_evidence
from dsguard.headers.text import clean, from_surrogates, header_text, parse_date, unfold
from dsguard.sources.base import Reader, StageResult, stage_records, to_json_text

MessageFormat = Literal["eml", "msg"]

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
MIN_OLE_BYTES = 1536  # header sector + one FAT sector + one directory sector
# At least one of these makes a header block a message header block.
MESSAGE_HEADERS = frozenset(
    {
        "from", "to", "cc", "bcc", "date", "subject", "message-id", "received", "return-path",
        "mime-version", "content-type", "sender", "reply-to", "delivered-to", "in-reply-to",
        "x-ms-exchange-organization-network-message-id",
    }
)
SINGLE_HEADERS = ("from", "to", "subject", "date", "message-id", "sender", "reply-to")
_HTML_START = re.compile(rb"^\s*<(?:!doctype\s+html|html|head|body|\?xml)\b", re.IGNORECASE)
_MAILBOX = re.compile(r"<\s*([^<>\s]+@[^<>\s]+?)\s*>")
_BARE_ADDRESS = re.compile(r"[^\s<>(),;:\"\[\]]+@[^\s<>(),;:\"\[\]]+")
_OBS_NAME = re.compile(rb"(?m)^([!-9;-~]+)[ \t]+:")
_MSG_HEADER_PREFIX = "Microsoft Mail Internet Headers Version 2.0"


class MessageFileError(ValueError):
    """The file is not a message (or cannot be read as one); the text is one line."""


class ParsedMessage(BaseModel):
    """A message file reduced to what dsguard uses: headers in order, a few decoded fields
    and the Exchange Online header evidence."""

    path: str
    format: MessageFormat
    sha256: str
    size: int
    headers: list[tuple[str, str]]
    internet_message_id: str | None = None
    subject: str | None = None
    from_address: str | None = None
    from_display_name: str | None = None
    to_addresses: list[str] = Field(default_factory=list)
    cc_addresses: list[str] = Field(default_factory=list)
    date: datetime | None = None
    evidence: HeaderEvidence = Field(default_factory=HeaderEvidence)
    defects: list[str] = Field(default_factory=list)

    def to_record(self, file: str) -> RawMessage:
        """The stored record; ``file`` is the bundle-relative path."""
        return RawMessage(
            sha256=self.sha256,
            file=file,
            format=self.format,
            network_message_id=self.evidence.network_message_id,
            internet_message_id=self.internet_message_id,
            subject=self.subject,
            from_address=self.from_address,
            from_display_name=self.from_display_name,
            to_addresses=self.to_addresses or None,
            date=self.date,
            headers=[[n, v] for n, v in self.headers],
            evidence=self.evidence.model_dump(mode="json"),
            defects=self.defects or None,
            source_file=file,
        )


# --------------------------------------------------------------------------- public API
def parse_message_file(path: Path) -> ParsedMessage:
    """Parse one ``.eml`` or ``.msg`` file.

    Damage short of "not a message" is kept in ``defects``. Raises only
    :class:`MessageFileError`, whose text is a one-line reason fit to show a user.
    """
    try:
        size = path.stat().st_size
        if size > MAX_MESSAGE_BYTES:
            raise MessageFileError(f"larger than {MAX_MESSAGE_BYTES >> 20} MiB; not read")
        data = path.read_bytes()
    except OSError as exc:
        raise MessageFileError(f"cannot read file: {exc.strerror or exc}") from exc
    return parse_message_bytes(data, name=str(path))


def parse_message_bytes(data: bytes, *, name: str) -> ParsedMessage:
    """Parse message bytes; the format follows the name's suffix, else the content."""
    suffix = Path(name).suffix.lower()
    is_ole = data.startswith(OLE_MAGIC)
    fmt: MessageFormat = "msg" if suffix == ".msg" or (suffix != ".eml" and is_ole) else "eml"
    try:
        if fmt == "msg":
            if not is_ole:
                hint = "; it looks like an .eml, rename it" if _looks_like_mime(data) else ""
                raise MessageFileError(f"not an Outlook .msg: no OLE compound file signature{hint}")
            headers, fields, defects = _read_msg(data)
        else:
            if is_ole:
                raise MessageFileError("an Outlook .msg (OLE compound file) named .eml; rename it")
            headers, fields, defects = _read_eml(data)
        return _assemble(name, fmt, data, headers, fields, defects)
    except MessageFileError:
        raise
    except Exception as exc:  # hostile input meets third-party parsers: report, never crash
        raise MessageFileError(f"cannot parse as .{fmt}: {_one_line(exc)}") from exc


# --------------------------------------------------------------------------- the reader
class MessageFileReader(Reader):
    """Raw messages in the bundle's ``messages/`` folder, one staged row per file."""

    source: ClassVar[str] = "messages"
    model = RawMessage
    patterns: ClassVar[tuple[str, ...]] = ("messages/**/*.eml", "messages/**/*.msg")

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, table: str) -> StageResult:
        rel = bundle_relative(path)
        row = self.row(path, rel)
        try:
            stage_records(con, table, RawMessage, [row])
        except (pa.ArrowException, duckdb.Error, ValueError, TypeError) as exc:
            # A value the columns cannot hold: keep the file accounted for, as a rejection.
            stage_records(con, table, RawMessage,
                          [_rejected(path, rel, f"cannot store: {_one_line(exc)}")])
        return StageResult()

    @staticmethod
    def row(path: Path, rel: str) -> dict[str, Any]:
        """The staged row for one file: the record, or a rejection with its reason."""
        try:
            parsed = parse_message_file(path)
            record = parsed.to_record(rel)
        except (MessageFileError, ValidationError) as exc:
            return _rejected(path, rel, _one_line(exc))
        raw = to_json_text({"file": rel, "sha256": parsed.sha256, "bytes": parsed.size})
        return {**record.model_dump(), "_row": 1, "_raw": raw, "_reject": None}


def bundle_relative(path: Path) -> str:
    """``messages/...`` from the last ``messages`` folder in the path, else the file name."""
    parts = path.parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "messages":
            return "/".join(parts[i:])
    return path.name


def _rejected(path: Path, rel: str, reason: str) -> dict[str, Any]:
    head = ""
    sha = None
    try:
        if path.stat().st_size <= MAX_MESSAGE_BYTES:
            data = path.read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            head = clean(data[:160].decode("utf-8", "replace"))
    except OSError:
        pass
    fmt = "msg" if path.suffix.lower() == ".msg" else "eml"
    raw = to_json_text({"file": rel, "sha256": sha, "head": head})
    return {
        "sha256": sha, "file": rel, "format": fmt, "source_file": rel,
        "_row": 1, "_raw": raw, "_reject": reason,
    }


# --------------------------------------------------------------------------- .eml
def _read_eml(data: bytes) -> tuple[list[tuple[str, str]], dict[str, Any], list[str]]:
    defects: list[str] = []
    if not data.strip():
        raise MessageFileError("empty file")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        defects.append("UTF-8 byte order mark before the headers (removed)")
    head = data[: _header_end(data)]
    if b"\x00" in head:
        raise MessageFileError("binary file, not a message (NUL bytes in the header block)")
    if _HTML_START.match(data):
        raise MessageFileError("HTML or XML document, not a message")
    stripped = data.lstrip(b"\r\n")
    if len(stripped) != len(data):
        defects.append("blank lines before the headers (skipped)")
        data = stripped
    data = _accept_obsolete_names(data, defects)
    parser = email.parser.BytesParser(policy=email.policy.compat32)
    try:
        msg = parser.parsebytes(data)
    except Exception as exc:  # the stdlib parser is meant not to raise; be sure
        defects.append(f"body not parsed ({_one_line(exc)})")
        msg = parser.parsebytes(data, headersonly=True)
    headers = _decoded_headers(msg.raw_items(), defects)
    if not headers:
        raise MessageFileError("no header fields: not an RFC 5322 message")
    if not any(n.lower() in MESSAGE_HEADERS for n, _ in headers):
        raise MessageFileError("no message header fields (From, To, Date, Received...): "
                               "not a message")
    if msg.get_unixfrom():
        defects.append("mbox 'From ' line before the headers")
    defects.extend(_stdlib_defects(msg))
    return headers, {}, defects


def _accept_obsolete_names(data: bytes, defects: list[str]) -> bytes:
    """Rewrite ``Name :`` to ``Name:`` in the header block (RFC 5322 §4.5.1 obsolete syntax).

    The stdlib reads ``From : x`` as an mbox ``From `` line and drops other such headers into
    the body, which would lose the From of a message that is otherwise fine.
    """
    end = _header_end(data)
    head, count = _OBS_NAME.subn(rb"\1:", data[:end])
    if not count:
        return data
    defects.append(f"{count} header name(s) with space before ':' (obsolete syntax, accepted)")
    return head + data[end:]


def _header_end(data: bytes) -> int:
    """Where the header block ends (first blank line), capped so binary junk stays cheap."""
    ends = [i for i in (data.find(b"\r\n\r\n"), data.find(b"\n\n")) if i >= 0]
    return min([*ends, 1 << 20])


def _looks_like_mime(data: bytes) -> bool:
    head = data[:4096].lower()
    return b"\nreceived:" in head or head.startswith((b"received:", b"from:", b"return-path:"))


def _decoded_headers(
    raw: Iterable[tuple[str, Any]], defects: list[str]
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    bad: list[str] = []
    for name, value in raw:
        n, bad_name = from_surrogates(str(name))
        v, bad_value = from_surrogates(str(value))
        n, v = clean(n).strip(), clean(v)
        if bad_name or bad_value:
            bad.append(n)
        out.append((n, v))
    if bad:
        shown = ", ".join(sorted(set(bad))[:5])
        defects.append(f"non-UTF-8 bytes in header(s) {shown}; read as Windows-1252")
    return out


def _stdlib_defects(msg: email.message.Message) -> list[str]:
    out: list[str] = []
    try:
        parts = list(msg.walk())
    except Exception as exc:
        return [f"MIME structure not walkable ({_one_line(exc)})"]
    for part in parts:
        for d in getattr(part, "defects", []):
            text = type(d).__name__
            detail = _one_line(d) if str(d) else ""
            out.append(f"{text}: {detail}"[:200] if detail else text)
    return list(dict.fromkeys(out))


# --------------------------------------------------------------------------- .msg
def _read_msg(data: bytes) -> tuple[list[tuple[str, str]], dict[str, Any], list[str]]:
    import extract_msg  # heavy import; only when a .msg shows up

    if len(data) < MIN_OLE_BYTES:
        raise MessageFileError("truncated OLE compound file (too small to be an Outlook .msg)")
    defects: list[str] = []
    try:
        msg = extract_msg.openMsg(data, strict=False, delayAttachments=True)
    except Exception as exc:
        raise MessageFileError(f"not a readable Outlook .msg: {_one_line(exc)}") from exc
    with msg:
        class_type = (msg.classType or "").strip()
        if not class_type.lower().startswith(("ipm.note", "report.", "ipm.schedule.meeting")):
            raise MessageFileError(
                f"Outlook item of class {class_type or 'unknown'!r}, not an e-mail message"
            )
        header_text_ = msg.getStringStream("__substg1.0_007D")
        # MAPI properties only fill gaps; a damaged one must not cost the whole message.
        fields = {
            "subject": _safe(lambda: msg.getStringStream("__substg1.0_0037")),
            "from_display_name": _safe(lambda: msg.getStringStream("__substg1.0_0C1A")),
            "from_address": _safe(lambda: msg.getStringStream("__substg1.0_5D01"))
            or _safe(lambda: msg.getStringStream("__substg1.0_0C1F")),
            "internet_message_id": _safe(lambda: msg.getStringStream("__substg1.0_1035")),
            "to": _safe(lambda: _msg_recipients(msg, 1)),
            "cc": _safe(lambda: _msg_recipients(msg, 2)),
        }
        date = _safe(lambda: msg.props.date)
    fields["date"] = date if isinstance(date, datetime) else None
    headers: list[tuple[str, str]] = []
    if header_text_:
        text = header_text_
        if text.startswith(_MSG_HEADER_PREFIX):
            text = text[len(_MSG_HEADER_PREFIX) :].lstrip()
        parsed = email.parser.Parser(policy=email.policy.compat32).parsestr(
            text, headersonly=True
        )
        headers = _decoded_headers(parsed.raw_items(), defects)
    else:
        defects.append("no transport headers (PR_TRANSPORT_MESSAGE_HEADERS): no header evidence")
    return headers, fields, defects


def _msg_recipients(msg: Any, kind: int) -> str | None:
    """Recipient addresses of one type (1 To, 2 Cc) from the MAPI recipient table."""
    found = [r.email for r in msg.recipients if int(r.type) == kind]
    return ", ".join(e for e in found if e) or None


def _safe(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except Exception:  # extract-msg raises many types on damaged properties
        return None


# --------------------------------------------------------------------------- assembly
def _assemble(
    name: str,
    fmt: MessageFormat,
    data: bytes,
    headers: list[tuple[str, str]],
    fallback: dict[str, Any],
    defects: list[str],
) -> ParsedMessage:
    by_name: dict[str, list[str]] = {}
    for n, v in headers:
        by_name.setdefault(n.lower(), []).append(v)
    for key in SINGLE_HEADERS:
        if len(by_name.get(key, [])) > 1:
            defects.append(f"{len(by_name[key])} {key} headers; the first is used")

    def first(key: str) -> str | None:
        values = by_name.get(key)
        return values[0] if values else None

    from_raw = first("from")
    address, display = _first_mailbox(from_raw) if from_raw is not None else (None, None)
    if from_raw is None and headers:
        defects.append("no From header")
    elif from_raw is not None and address is None:
        defects.append("From has no address")
    if "date" not in by_name and headers:
        defects.append("no Date header")
    date_raw = first("date")
    date = parse_date(unfold(date_raw)) if date_raw is not None else None
    if date_raw is not None and date is None:
        defects.append(f"unparsable Date {header_text(date_raw)[:60]!r}")
    subject_raw = first("subject")

    return ParsedMessage(
        path=name,
        format=fmt,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        headers=headers,
        internet_message_id=_message_id(first("message-id")) or _clean_opt(
            fallback.get("internet_message_id")
        ),
        subject=header_text(subject_raw) if subject_raw is not None else _clean_opt(
            fallback.get("subject")
        ),
        from_address=address or _lower_opt(fallback.get("from_address")),
        from_display_name=display or _clean_opt(fallback.get("from_display_name")),
        to_addresses=_addresses(by_name.get("to", []) or _opt_list(fallback.get("to"))),
        cc_addresses=_addresses(by_name.get("cc", []) or _opt_list(fallback.get("cc"))),
        date=_utc(date or fallback.get("date")),
        evidence=extract_evidence(headers),
        defects=list(dict.fromkeys(defects)),
    )


def _mask(text: str) -> str:
    """``text`` with quoted strings and comments blanked, same length, so ``<`` inside a
    display name like ``"Bank <support@bank.com>" <attacker@evil.example>`` is not taken."""
    out = list(text)
    depth = 0
    quoted = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and (quoted or depth) and i + 1 < len(text):
            out[i] = out[i + 1] = " "
            i += 2
            continue
        if quoted:
            out[i] = " "
            if ch == '"':
                quoted = False
        elif ch == '"' and not depth:
            quoted = True
            out[i] = " "
        elif ch == "(":
            depth += 1
            out[i] = " "
        elif ch == ")" and depth:
            depth -= 1
            out[i] = " "
        elif depth:
            out[i] = " "
        i += 1
    return "".join(out)


def _first_mailbox(value: str) -> tuple[str | None, str | None]:
    """The first mailbox of a From value: (address, display name).

    Prefers the first ``<addr>`` outside quotes and comments, which is what mail clients
    show; falls back to the first bare ``local@domain``.
    """
    text = unfold(value)
    masked = _mask(text)
    if m := _MAILBOX.search(masked):
        address = text[m.start(1) : m.end(1)]
        display = text[: m.start()]
    elif m := _BARE_ADDRESS.search(masked):
        address = m.group(0)
        display = "".join(re.findall(r"\(([^)]*)\)", text))
    elif m := _MAILBOX.search(text):
        # Only inside quotes or a comment (or an unbalanced quote): still what a reader sees.
        address = m.group(1)
        display = text[: m.start()]
    else:
        return None, _display(text) or None
    return address.strip().strip('"').lower(), _display(display) or None


def _display(text: str) -> str:
    shown = header_text(text).strip()
    if len(shown) >= 2 and shown[0] == shown[-1] == '"':
        shown = shown[1:-1].replace('\\"', '"').strip()
    return shown[:512]


def _addresses(values: list[str]) -> list[str]:
    found: list[str] = []
    for value in values:
        text = unfold(value)
        try:
            pairs = email.utils.getaddresses([text])
        except Exception:
            pairs = []
        addrs = [a for _, a in pairs if "@" in a]
        if not addrs:
            addrs = _BARE_ADDRESS.findall(_mask(text))
        found.extend(clean(a).strip().strip("<>").lower() for a in addrs)
    return list(dict.fromkeys(a for a in found if a))


def _message_id(value: str | None) -> str | None:
    if value is None:
        return None
    text = clean(unfold(value)).strip()
    if m := re.search(r"<[^<>\s]+>", text):
        return m.group(0)
    return text[:998] or None


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _clean_opt(value: Any) -> str | None:
    if not value:
        return None
    return clean(str(value)).strip() or None


def _lower_opt(value: Any) -> str | None:
    text = _clean_opt(value)
    return text.lower() if text else None


def _opt_list(value: Any) -> list[str]:
    return [str(value)] if value else []


def _one_line(exc: BaseException | object) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    kind = type(exc).__name__
    if isinstance(exc, MessageFileError):
        return first or kind
    return f"{kind}: {first}"[:300] if first else kind
