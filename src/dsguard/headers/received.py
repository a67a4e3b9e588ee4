"""``Received`` hops, and where the message entered Exchange Online.

Each server prepends its hop, so the topmost ``Received`` is the last hop and everything
*below* Exchange Online's entry hop was written before Exchange Online saw the message: by
the sender, and so by an attacker in the Direct Send case. The entry hop itself
(``from <source> (<ip>) by XXXFTnnn.mail.protection.outlook.com ... via Frontend Transport``)
is written by Exchange Online, so its ``from`` part is the connecting source we can trust.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from dsguard.headers import semantics
from dsguard.headers._lex import Token, tokenize, unfold
from dsguard.headers.text import parse_date

ByKind = Literal["exo_front_door", "microsoft", "other"]
EntryKind = Literal["front_door", "submission"]

KEYWORDS = frozenset({"from", "by", "via", "with", "id", "for"})
_BRACKETED = re.compile(r"\[(?:ipv6:)?([0-9a-f:.]+)(?:%[\w.-]+)?\]", re.IGNORECASE)
_HELO_IN_COMMENT = re.compile(r"(?:\bhelo=|\b(?:helo|ehlo)\s+)(\S+)", re.IGNORECASE)
_RDNS = re.compile(r"\s*([a-z0-9_][a-z0-9_.-]*)\s+\[", re.IGNORECASE)
LOCALHOST_NAMES = frozenset({"localhost", "localhost.localdomain", "localhost6"})


class ReceivedHop(BaseModel):
    """One parsed ``Received`` header. ``index`` 0 is the topmost (most recent) hop."""

    index: int
    header_index: int | None = None  # position in the message's full header list
    from_host: str | None = None  # the word after "from" (usually the HELO name)
    from_ip: str | None = None
    from_rdns: str | None = None
    helo: str | None = None
    by_host: str | None = None
    by_kind: ByKind = "other"
    via: str | None = None
    protocol: str | None = None  # the "with" clause
    smtp_id: str | None = None
    for_address: str | None = None
    date: datetime | None = None
    loopback: bool = False
    raw: str = ""
    defects: list[str] = Field(default_factory=list)


class ExoEntry(BaseModel):
    """Where the message came into Exchange Online.

    ``front_door``: the topmost hop accepted by an EOP front door (internet, Direct Send,
    connectors, other tenants). ``submission``: no front door in the topmost run of
    Microsoft hops, so the message was submitted inside the service (authenticated client,
    mailbox); the entry is that run's lowest hop. ``delivered_after`` lists non-Microsoft
    hosts that handled the message after Exchange Online (above the entry).
    """

    hop: int
    kind: EntryKind
    delivered_after: list[str] = Field(default_factory=list)


def parse_received(value: str, *, index: int = 0, header_index: int | None = None) -> ReceivedHop:
    """Parse one ``Received`` value. Never raises; odd parts land in ``defects``."""
    defects: list[str] = []
    text = unfold(value)
    hop = ReceivedHop(index=index, header_index=header_index, raw=text)
    tokens = tokenize(text, defects)
    last_sep = max((i for i, t in enumerate(tokens) if t.kind == "sep"), default=None)
    clause_tokens = tokens if last_sep is None else tokens[:last_sep]
    if last_sep is not None:
        date_text = " ".join(t.text for t in tokens[last_sep + 1 :] if t.kind == "word")
        hop.date = parse_date(date_text)
        if date_text and hop.date is None:
            defects.append(f"unparsable date {date_text[:60]!r}")
    clauses = _clauses(clause_tokens)
    if "from" in clauses:
        _fill_from(hop, clauses["from"])
    if "by" in clauses:
        words = [t.text for t in clauses["by"] if t.kind == "word"]
        hop.by_host = words[0] if words else None
    for key, attr in (("via", "via"), ("with", "protocol")):
        if key in clauses:
            words = [t.text for t in clauses[key] if t.kind == "word"]
            setattr(hop, attr, " ".join(words) or None)
    if "id" in clauses:
        words = [t.text for t in clauses["id"] if t.kind == "word"]
        hop.smtp_id = words[0] if words else None
    if "for" in clauses:
        words = [t.text for t in clauses["for"] if t.kind == "word"]
        hop.for_address = words[0].strip("<>") if words else None
    hop.by_kind = classify_host(hop.by_host)
    hop.loopback = _is_loopback(hop)
    hop.defects = defects
    return hop


def parse_received_chain(headers: list[tuple[str, str]]) -> list[ReceivedHop]:
    """Every ``Received`` header in order, topmost first, with its header position."""
    hops: list[ReceivedHop] = []
    for i, (name, value) in enumerate(headers):
        if name.strip().lower() == "received":
            hops.append(parse_received(value, index=len(hops), header_index=i))
    return hops


def classify_host(host: str | None) -> ByKind:
    """Front door, other Microsoft server, or anything else, from the semantics table."""
    if not host:
        return "other"
    name = host.strip().strip("[]").rstrip(".").lower()
    row = semantics.lookup(semantics.RECEIVED, name, field="by")
    if row is None:
        return "other"
    if "exo_front_door" in row.tags:
        return "exo_front_door"
    if "microsoft" in row.tags:
        return "microsoft"
    return "other"


def find_exo_entry(hops: list[ReceivedHop]) -> ExoEntry | None:
    """The hop where the message entered Exchange Online, or ``None`` if it never did.

    The topmost front-door hop is the entry; hops below it are the sender's and are never
    consulted. Without a front door, the message was submitted inside the service: skip the
    non-Microsoft hops on top (delivery onward, e.g. to Gmail) and take the lowest hop of the
    Microsoft run below them.
    """
    for i, hop in enumerate(hops):
        if hop.by_kind == "exo_front_door":
            after = [h.by_host or "?" for h in hops[:i] if h.by_kind == "other"]
            return ExoEntry(hop=i, kind="front_door", delivered_after=after)
    after = []
    i = 0
    while i < len(hops) and hops[i].by_kind == "other":
        after.append(hops[i].by_host or "?")
        i += 1
    start = i
    while i < len(hops) and hops[i].by_kind != "other":
        i += 1
    if i > start:
        return ExoEntry(hop=i - 1, kind="submission", delivered_after=after)
    return None


# --------------------------------------------------------------------------- helpers
def _clauses(tokens: list[Token]) -> dict[str, list[Token]]:
    """Group tokens under the keyword that precedes them; a keyword's first word is its value
    even when it looks like a keyword (``from with`` is a host called "with")."""
    clauses: dict[str, list[Token]] = {}
    current: list[Token] | None = None
    need_value = False
    for tok in tokens:
        if tok.kind == "word":
            low = tok.text.lower()
            if not need_value and low in KEYWORDS and low not in clauses:
                current = clauses.setdefault(low, [])
                need_value = True
                continue
            need_value = False
        if current is not None:
            current.append(tok)
    return clauses


def _fill_from(hop: ReceivedHop, tokens: list[Token]) -> None:
    words = [t.text for t in tokens if t.kind == "word"]
    comments = [t.text for t in tokens if t.kind == "comment"]
    hop.from_host = words[0] if words else None
    helo = None
    ip = None
    rdns = None
    for c in comments:
        if helo is None and (m := _HELO_IN_COMMENT.search(c)):
            helo = m.group(1).strip("[]")
        cleaned = _HELO_IN_COMMENT.sub(" ", c)
        if ip is None:
            ip = _first_ip(cleaned)
            if ip is not None and (m := _RDNS.match(cleaned)):
                name = m.group(1).rstrip(".")
                if name.lower() != "unknown" and _as_ip(name) is None:
                    rdns = name
    if ip is None and hop.from_host:
        ip = _as_ip(hop.from_host.strip("[]").removeprefix("IPv6:").removeprefix("ipv6:"))
    hop.from_ip = ip
    hop.from_rdns = rdns
    hop.helo = helo or hop.from_host


def _first_ip(text: str) -> str | None:
    for m in _BRACKETED.finditer(text):
        if ip := _as_ip(m.group(1)):
            return ip
    for word in re.split(r"[\s,()\[\]]+", text):
        if ip := _as_ip(word):
            return ip
    return None


def _as_ip(text: str) -> str | None:
    candidate = text.split("%", 1)[0].strip()
    if not candidate or not any(c in candidate for c in ".:"):
        return None
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def _is_loopback(hop: ReceivedHop) -> bool:
    if hop.from_ip:
        try:
            if ipaddress.ip_address(hop.from_ip).is_loopback:
                return True
        except ValueError:
            pass
    names = (hop.from_host, hop.helo, hop.from_rdns, hop.by_host)
    return any(n and n.strip("[]").rstrip(".").lower() in LOCALHOST_NAMES for n in names)
