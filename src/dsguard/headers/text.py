"""Turning header bytes and encoded words into safe text.

Header values are attacker-controlled: they may hold non-UTF-8 bytes, broken RFC 2047
encoded words, unknown charsets, NULs or control characters. Everything here returns a plain
``str`` that JSON, Arrow and DuckDB accept, and never raises.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import quopri
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_FOLD = re.compile(r"\r\n|\n|\r")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(\?=)\s+(=\?)")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\udc80-\udcff]")
_FRACTION = re.compile(r"(\d{1,2}:\d{2}:\d{2})\.\d+")
_RFC_DATE_CORE = re.compile(
    r"\d{1,2}\s+[A-Za-z]{3}\s+\d{2,4}\s+\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?"
    r"(?:\s*(?:[+-]\d{4}|[A-Za-z]{1,5}))?"
)
_ISO_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.\d+)?\s*([+-]\d{4})?")


def unfold(value: str) -> str:
    """Undo header folding: drop the line breaks, keep the whitespace (RFC 5322 §2.2.3)."""
    return _FOLD.sub("", value).strip()


def from_surrogates(value: str) -> tuple[str, bool]:
    """Recover text the stdlib parser decoded as ASCII with ``surrogateescape``.

    Returns the text and whether it was not UTF-8 (then it is read as Windows-1252, the
    usual culprit, with undecodable bytes replaced).
    """
    if not _SURROGATE.search(value):
        return value, False
    raw = value.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace"), True


def clean(value: str) -> str:
    """Drop NULs and control characters (keep tab, CR, LF) and any leftover surrogates."""
    value = _CONTROL.sub("", value)
    return _SURROGATE.sub("\ufffd", value)


def decode_rfc2047(value: str) -> str:
    """Decode encoded words (``=?charset?B|Q?...?=``) leniently.

    Unlike ``email.header.decode_header`` this tolerates unknown charsets (read as UTF-8),
    bad base64 padding and encoded words glued to text, and it never raises.
    """
    if "=?" not in value:
        return value
    value = _BETWEEN_WORDS.sub(r"\1\2", value)  # whitespace between encoded words is dropped
    return _ENCODED_WORD.sub(_decode_word, value)


def _decode_word(m: re.Match[str]) -> str:
    charset, enc, payload = m.group(1), m.group(2).upper(), m.group(3)
    charset = charset.split("*", 1)[0]  # RFC 2231 language suffix
    try:
        if enc == "B":
            payload_b = payload.encode("ascii", "replace")
            payload_b += b"=" * (-len(payload_b) % 4)
            data = base64.b64decode(payload_b, validate=False)
        else:
            data = quopri.decodestring(payload.replace("_", " ").encode("ascii", "replace"))
    except (binascii.Error, ValueError):
        return m.group(0)
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    try:
        return data.decode(charset, "replace")
    except (LookupError, UnicodeError):
        return data.decode("utf-8", "replace")


def header_text(value: str) -> str:
    """A header value for display: unfolded, encoded words decoded, controls removed."""
    return clean(decode_rfc2047(unfold(value))).strip()


def parse_date(text: str) -> datetime | None:
    """An aware datetime from an RFC 5322 date, also with fractional seconds or in the
    ``2006-01-02 15:04:05 +0000`` form some MTAs write; ``None`` when unreadable."""
    text = text.strip()
    if not text:
        return None
    core = _RFC_DATE_CORE.search(text)
    candidates = [text, _FRACTION.sub(r"\1", text)]
    if core:  # junk around the date, e.g. an undecodable weekday
        candidates.append(_FRACTION.sub(r"\1", core.group(0)))
    for candidate in candidates:
        try:
            dt = parsedate_to_datetime(candidate)
        except (TypeError, ValueError, IndexError, OverflowError):
            continue
        if dt is not None:
            return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    if m := _ISO_DATE.search(text):
        stamp = f"{m.group(1)} {m.group(2)} {m.group(3) or '+0000'}"
        try:
            return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S %z")
        except ValueError:
            return None
    return None
