"""The header evidence later stages need, taken only from stamps the receiving tenant made.

Trust boundary. A message carries headers from everyone who handled it, and the sender can
write any header it likes. Evidence comes only from Exchange Online inside the receiving
tenant:

* The message must have entered Exchange Online: a front-door ``Received`` hop, or an
  all-Microsoft chain on top (submission inside the service). Without one, no Exchange stamp
  is used: whoever delivered the message could have written them all.
* ``Authentication-Results``: the topmost one above the entry hop written the Microsoft way
  (no authserv-id); those below the entry or by other hosts are skipped.
* Organisation, cross-tenant and anti-spam stamps: not from the as-received block that
  ``X-IncomingTopHeaderMarker`` … ``X-IncomingHeaderCount`` brackets, and, when a header
  repeats, the last copy (Exchange Online appends its stamps below the sender's headers).
* ``-Untrusted`` copies, ``X-MS-Exchange-Authentication-Results``,
  ``Authentication-Results-Original`` and ``ARC-Authentication-Results`` are an upstream
  tenant's or host's view: never evidence.

Every skip is explained in ``notes`` so a reader of the result can see what was not used.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from dsguard.headers import semantics as sem
from dsguard.headers.antispam import parse_antispam, parse_forefront, parse_mailbox_delivery
from dsguard.headers.authresults import (
    AuthResultsHeader,
    is_microsoft_authserv,
    parse_authentication_results,
)
from dsguard.headers.received import (
    EntryKind,
    ExoEntry,
    ReceivedHop,
    find_exo_entry,
    parse_received_chain,
)
from dsguard.headers.text import clean, decode_rfc2047, unfold

NoteKind = Literal["ignored", "conflict", "missing", "info"]

_ATTRIBUTED = re.compile(
    r"TenantId=(?P<tenant>[^;\s]*)\s*;\s*Ip=\[?(?P<ip>[^\];\s]*)\]?\s*(?:;\s*Helo=\[?(?P<helo>[^\];]*)\]?)?",
    re.IGNORECASE,
)
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_MAX_TEXT = 512
# Headers Exchange Online stamps; their mere presence is reported when they cannot be trusted.
_EXCHANGE_PREFIXES = ("x-ms-exchange-", "x-forefront-antispam-report", "x-microsoft-antispam")


class HeaderNote(BaseModel):
    """Why a header was not used (``ignored``), disagreed with itself (``conflict``), was
    expected but absent (``missing``), or something a reader should know (``info``)."""

    header: str | None = None
    kind: NoteKind
    reason: str


class Interpretation(BaseModel):
    """A used value with its meaning from the semantics table."""

    header: str
    field: str | None = None
    value: str
    meaning: str
    confidence: sem.Confidence
    source: str
    tags: list[str] = Field(default_factory=list)


class OrgStamps(BaseModel):
    """``X-MS-Exchange-Organization-*`` as the receiving organisation stamped them."""

    auth_as: str | None = None
    auth_source: str | None = None
    auth_mechanism: str | None = None
    directionality: str | None = None
    scl: int | None = None
    pcl: int | None = None
    network_message_id: str | None = None
    internal_org_sender: str | None = None
    as_directionality_type: str | None = None


class CrossTenantStamps(BaseModel):
    """``X-MS-Exchange-CrossTenant-*`` of the receiving tenant."""

    auth_as: str | None = None
    auth_source: str | None = None
    from_entity_header: str | None = None
    mailbox_type: str | None = None
    upn_present: bool = False
    tenant_id: str | None = None
    network_message_id: str | None = None
    attributed_tenant_id: str | None = None
    attributed_ip: str | None = None
    attributed_helo: str | None = None


class AntispamEvidence(BaseModel):
    """``X-Forefront-Antispam-Report``, ``X-Microsoft-Antispam`` and mailbox delivery."""

    report_present: bool = False
    cip: str | None = None
    ctry: str | None = None
    lang: str | None = None
    helo: str | None = None  # the H field: sender-chosen text
    ptr: str | None = None
    dir: str | None = None
    cat: str | None = None
    sfv: str | None = None
    ipv: str | None = None
    sfty: str | None = None
    scl: int | None = None
    srv: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)
    conflicts: dict[str, list[str]] = Field(default_factory=dict)
    bcl: int | None = None
    pcl: int | None = None
    delivery_dest: str | None = None
    delivery: dict[str, str] = Field(default_factory=dict)


class AuthEvidence(BaseModel):
    """The trusted ``Authentication-Results``: the receiving tenant's verdicts."""

    header_index: int
    authserv_id: str | None = None
    spf: str | None = None
    spf_sender_ip: str | None = None
    smtp_mailfrom: str | None = None
    smtp_helo: str | None = None
    dkim: str | None = None
    header_d: str | None = None
    dmarc: str | None = None
    dmarc_action: str | None = None
    header_from: str | None = None
    compauth: str | None = None
    compauth_reason: str | None = None
    raw: str = ""
    defects: list[str] = Field(default_factory=list)


class ReceivedSummary(BaseModel):
    """The ``Received`` chain around the Exchange Online entry hop.

    ``source_*`` come from the entry hop, which Exchange Online wrote. ``previous_hop`` and
    any loopback hops below the entry were written by the sender: context, not proof.
    """

    hop_count: int = 0
    entry: ReceivedHop | None = None
    entry_kind: EntryKind | None = None
    source_ip: str | None = None
    source_helo: str | None = None
    source_rdns: str | None = None
    delivered_after: list[str] = Field(default_factory=list)
    previous_hop: ReceivedHop | None = None
    hops_below_entry: int = 0
    loopback_seen: bool = False
    loopback_hops: list[int] = Field(default_factory=list)


class HeaderEvidence(BaseModel):
    """Everything the path classification and triage read from a message's headers."""

    received_by_exo: bool = False
    network_message_id: str | None = None
    eop_attributed_tenant: str | None = None
    originator_org: str | None = None
    org: OrgStamps = Field(default_factory=OrgStamps)
    cross_tenant: CrossTenantStamps = Field(default_factory=CrossTenantStamps)
    antispam: AntispamEvidence = Field(default_factory=AntispamEvidence)
    auth: AuthEvidence | None = None
    received: ReceivedSummary = Field(default_factory=ReceivedSummary)
    mailer: str | None = None  # X-Mailer or User-Agent: sender-chosen text
    interpretations: list[Interpretation] = Field(default_factory=list)
    notes: list[HeaderNote] = Field(default_factory=list)


# --------------------------------------------------------------------------- extraction
def extract_evidence(headers: list[tuple[str, str]]) -> HeaderEvidence:
    """Read the receiving tenant's Exchange Online stamps from ``headers`` (file order).

    Names are matched case-insensitively, values may be folded or RFC 2047-encoded. Never
    raises on odd values; what was skipped and why is listed in ``notes``.
    """
    items = [(clean(n).strip(), clean(v)) for n, v in headers]
    ev = HeaderEvidence()
    hops = parse_received_chain(items)
    entry = find_exo_entry(hops)
    ev.received = _summarise_received(hops, entry)
    trusted = entry is not None and (entry.kind == "front_door" or not entry.delivered_after)
    ev.received_by_exo = trusted
    _note_entry(ev, trusted)

    pick = _Picker(items, ev.notes, trusted)
    _read_org(ev, pick)
    _read_cross_tenant(ev, pick)
    _read_antispam(ev, pick)
    if trusted and entry is not None:
        entry_header = hops[entry.hop].header_index
        ev.auth = _trusted_auth_results(items, entry_header, ev.notes)
    elif any(n.lower() == "authentication-results" for n, _ in items):
        ev.notes.append(HeaderNote(header=sem.AUTH_RESULTS, kind="ignored",
                                   reason="no Exchange Online entry hop to anchor it"))
    _note_untrusted_copies(items, ev.notes)
    if not trusted:
        pick.note_untrusted_stamps()

    ev.network_message_id = _guid(ev.org.network_message_id or ev.cross_tenant.network_message_id)
    ev.mailer = _first_text(items, "x-mailer") or _first_text(items, "user-agent")
    ev.interpretations = _interpret(ev)
    return ev


class _Picker:
    """Reads one Exchange stamp under the trust rules and records why copies were skipped."""

    def __init__(
        self, items: list[tuple[str, str]], notes: list[HeaderNote], trusted: bool
    ) -> None:
        self.items = items
        self.notes = notes
        self.trusted = trusted
        self.block = _as_received_block(items)

    def in_block(self, i: int) -> bool:
        return self.block is not None and self.block[0] <= i <= self.block[1]

    def value(self, name: str) -> str | None:
        low = name.lower()
        found = [(i, v) for i, (n, v) in enumerate(self.items) if n.lower() == low]
        if not found or not self.trusted:
            return None
        outside = [(i, v) for i, v in found if not self.in_block(i)]
        if len(outside) < len(found):
            self.notes.append(HeaderNote(
                header=name, kind="ignored",
                reason="copy inside the as-received block (X-IncomingTopHeaderMarker to "
                "X-IncomingHeaderCount): written before this tenant received the message"))
        if not outside:
            return None
        values = {unfold(v) for _, v in outside}
        if len(values) > 1:
            self.notes.append(HeaderNote(
                header=name, kind="conflict",
                reason=f"{len(outside)} copies with different values; the last is used "
                "(Exchange Online appends its stamps below the sender's headers)"))
        return unfold(outside[-1][1])

    def present(self, name: str) -> bool:
        return self.value(name) is not None

    def note_untrusted_stamps(self) -> None:
        names = sorted({n for n, _ in self.items if n.lower().startswith(_EXCHANGE_PREFIXES)},
                       key=str.lower)
        if names:
            shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
            self.notes.append(HeaderNote(
                kind="ignored",
                reason=f"Exchange headers present but not used, because no Exchange Online "
                f"tenant received this message: {shown}"))


def _read_org(ev: HeaderEvidence, pick: _Picker) -> None:
    o = ev.org
    o.auth_as = pick.value(sem.ORG_AUTH_AS)
    o.auth_source = pick.value(sem.ORG_AUTH_SOURCE)
    o.auth_mechanism = pick.value(sem.ORG_AUTH_MECHANISM)
    o.directionality = pick.value(sem.ORG_DIRECTIONALITY)
    o.scl = _int(pick.value(sem.ORG_SCL))
    o.pcl = _int(pick.value(sem.ORG_PCL))
    o.network_message_id = pick.value(sem.ORG_NETWORK_MESSAGE_ID)
    o.internal_org_sender = pick.value(sem.ORG_INTERNAL_ORG_SENDER)
    o.as_directionality_type = pick.value(sem.ORG_AS_DIRECTIONALITY)
    # Handed on to an on-premises or third-party server, the Organization headers are
    # stripped but CrossPremises copies remain.
    for attr, name in (("auth_as", sem.XP_AUTH_AS), ("auth_source", sem.XP_AUTH_SOURCE),
                       ("auth_mechanism", sem.XP_AUTH_MECHANISM)):
        if getattr(o, attr) is None and (v := pick.value(name)) is not None:
            setattr(o, attr, v)
            ev.notes.append(HeaderNote(header=name, kind="info",
                                       reason=f"org {attr} taken from the CrossPremises copy"))
    if o.scl is None:
        o.scl = _int(pick.value(sem.XP_SCL))
    ev.eop_attributed_tenant = _guid((pick.value(sem.EOP_TENANT_ATTRIBUTED) or "").split(":")[0])
    ev.originator_org = _text(pick.value(sem.ORIGINATOR_ORG))


def _read_cross_tenant(ev: HeaderEvidence, pick: _Picker) -> None:
    c = ev.cross_tenant
    c.auth_as = pick.value(sem.CT_AUTH_AS)
    c.auth_source = pick.value(sem.CT_AUTH_SOURCE)
    c.from_entity_header = pick.value(sem.CT_FROM_ENTITY)
    c.mailbox_type = pick.value(sem.CT_MAILBOX_TYPE)
    c.upn_present = pick.present(sem.CT_UPN)
    c.tenant_id = _guid(pick.value(sem.CT_ID))
    c.network_message_id = pick.value(sem.CT_NETWORK_MESSAGE_ID)
    if (v := pick.value(sem.CT_ATTRIBUTED_IP)) and (m := _ATTRIBUTED.search(v)):
        c.attributed_tenant_id = _guid(m.group("tenant"))
        c.attributed_ip = m.group("ip") or None
        c.attributed_helo = (m.group("helo") or "").strip() or None


def _read_antispam(ev: HeaderEvidence, pick: _Picker) -> None:
    a = ev.antispam
    if (v := pick.value(sem.FFAR)) is not None:
        r = parse_forefront(v)
        a.report_present = True
        a.cip, a.ctry, a.lang = r.cip, r.ctry, r.get("LANG") or None
        a.helo, a.ptr, a.dir, a.cat = r.helo, r.ptr, r.dir, r.cat
        a.sfv, a.ipv, a.sfty, a.scl, a.srv = r.sfv, r.ipv, r.sfty, r.scl, r.get("SRV") or None
        a.fields, a.conflicts = r.fields, r.conflicts
        for key, values in r.conflicts.items():
            ev.notes.append(HeaderNote(
                header=sem.FFAR, kind="conflict",
                reason=f"field {key.upper()} appears with values {values}; not used (the "
                "HELO field is sender text and may have injected it)"))
    elif pick.trusted and ev.received.entry_kind == "front_door":
        ev.notes.append(HeaderNote(header=sem.FFAR, kind="missing",
                                   reason="no trusted X-Forefront-Antispam-Report"))
    if (v := pick.value(sem.MS_ANTISPAM)) is not None:
        s = parse_antispam(v)
        a.bcl, a.pcl = s.bcl, s.pcl
    if (v := pick.value(sem.MAILBOX_DELIVERY)) is not None:
        d = parse_mailbox_delivery(v)
        a.delivery_dest, a.delivery = d.dest, d.fields


def _trusted_auth_results(
    items: list[tuple[str, str]], entry_header: int | None, notes: list[HeaderNote]
) -> AuthEvidence | None:
    """The topmost Microsoft-form ``Authentication-Results`` above the entry hop."""
    chosen: tuple[int, AuthResultsHeader, str] | None = None
    for i, (name, value) in enumerate(items):
        if name.lower() != "authentication-results":
            continue
        parsed = parse_authentication_results(value, header=name)
        if entry_header is not None and i > entry_header:
            notes.append(HeaderNote(header=name, kind="ignored",
                                    reason=f"header #{i} is below the Exchange Online entry hop: "
                                    "written before Exchange Online received the message"))
        elif not is_microsoft_authserv(parsed.authserv_id):
            notes.append(HeaderNote(header=name, kind="ignored",
                                    reason=f"header #{i} was written by {parsed.authserv_id!r}, "
                                    "not Exchange Online"))
        elif chosen is not None:
            notes.append(HeaderNote(header=name, kind="ignored",
                                    reason=f"header #{i}: an older Microsoft result; the topmost "
                                    "one is used"))
        else:
            chosen = (i, parsed, unfold(value))
    if chosen is None:
        notes.append(HeaderNote(header=sem.AUTH_RESULTS, kind="missing",
                                reason="no Exchange Online Authentication-Results above the "
                                "entry hop"))
        return None
    i, ar, raw = chosen
    spf, dkim, dmarc, comp = ar.get("spf"), ar.get("dkim"), ar.get("dmarc"), ar.get("compauth")
    return AuthEvidence(
        header_index=i,
        authserv_id=ar.authserv_id,
        spf=spf.result if spf else None,
        spf_sender_ip=spf.sender_ip if spf else None,
        smtp_mailfrom=spf.prop("smtp.mailfrom") if spf else None,
        smtp_helo=spf.prop("smtp.helo") if spf else None,
        dkim=dkim.result if dkim else None,
        header_d=dkim.prop("header.d") if dkim else None,
        dmarc=dmarc.result if dmarc else None,
        dmarc_action=dmarc.action if dmarc else None,
        header_from=dmarc.prop("header.from") if dmarc else None,
        compauth=comp.result if comp else None,
        compauth_reason=(comp.reason_code or comp.reason) if comp else None,
        raw=raw[:2000],
        defects=ar.defects,
    )


def _summarise_received(hops: list[ReceivedHop], entry: ExoEntry | None) -> ReceivedSummary:
    s = ReceivedSummary(hop_count=len(hops))
    if entry is None:
        s.loopback_hops = [h.index for h in hops if h.loopback]
        s.loopback_seen = bool(s.loopback_hops)
        return s
    hop = hops[entry.hop]
    s.entry, s.entry_kind = hop, entry.kind
    s.source_ip, s.source_helo, s.source_rdns = hop.from_ip, hop.helo, hop.from_rdns
    s.delivered_after = entry.delivered_after
    s.previous_hop = hops[entry.hop + 1] if entry.hop + 1 < len(hops) else None
    s.hops_below_entry = len(hops) - entry.hop - 1
    s.loopback_hops = [h.index for h in hops[entry.hop :] if h.loopback]
    s.loopback_seen = bool(s.loopback_hops)
    return s


def _note_entry(ev: HeaderEvidence, trusted: bool) -> None:
    s = ev.received
    if s.entry is None:
        ev.notes.append(HeaderNote(header=sem.RECEIVED, kind="missing",
                                   reason="no Received hop by Exchange Online"))
        return
    after = ", ".join(s.delivered_after[:5])
    if not trusted:
        ev.notes.append(HeaderNote(
            header=sem.RECEIVED, kind="ignored",
            reason=f"the Exchange Online hops sit below delivery by {after}: they describe "
            "the sending tenant, and nothing protected them afterwards"))
    elif s.delivered_after:
        ev.notes.append(HeaderNote(
            header=sem.RECEIVED, kind="info",
            reason=f"after Exchange Online the message was handled by {after}; the Exchange "
            "stamps are only as trustworthy as those hosts"))
    if s.previous_hop is not None:
        ev.notes.append(HeaderNote(
            header=sem.RECEIVED, kind="info",
            reason=f"{s.hops_below_entry} hop(s) below the entry were written by the sender "
            "and are context only"))


def _note_untrusted_copies(items: list[tuple[str, str]], notes: list[HeaderNote]) -> None:
    tagged = sem.headers_tagged("untrusted_copy") | sem.headers_tagged("not_verdict")
    seen: set[str] = set()
    for name, _ in items:
        low = name.lower()
        if low in tagged and low not in seen:
            seen.add(low)
            row = sem.lookup(name, "")
            notes.append(HeaderNote(header=sem.canonical_name(name), kind="ignored",
                                    reason=row.meaning if row else "not evidence"))


def _interpret(ev: HeaderEvidence) -> list[Interpretation]:
    pairs: list[tuple[str, str | None, str | None]] = [
        (sem.ORG_AUTH_AS, None, ev.org.auth_as),
        (sem.ORG_AUTH_SOURCE, None, ev.org.auth_source),
        (sem.ORG_AUTH_MECHANISM, None, ev.org.auth_mechanism),
        (sem.ORG_DIRECTIONALITY, None, ev.org.directionality),
        (sem.ORG_SCL, None, None if ev.org.scl is None else str(ev.org.scl)),
        (sem.ORG_INTERNAL_ORG_SENDER, None, ev.org.internal_org_sender),
        (sem.ORG_AS_DIRECTIONALITY, None, ev.org.as_directionality_type),
        (sem.CT_AUTH_AS, None, ev.cross_tenant.auth_as),
        (sem.CT_FROM_ENTITY, None, ev.cross_tenant.from_entity_header),
        (sem.CT_MAILBOX_TYPE, None, ev.cross_tenant.mailbox_type),
        (sem.CT_UPN, None, "present" if ev.cross_tenant.upn_present else None),
        (sem.FFAR, "DIR", ev.antispam.dir),
        (sem.FFAR, "CAT", ev.antispam.cat),
        (sem.FFAR, "SFV", ev.antispam.sfv),
        (sem.FFAR, "IPV", ev.antispam.ipv),
        (sem.FFAR, "SFTY", ev.antispam.sfty),
        (sem.MAILBOX_DELIVERY, "dest", ev.antispam.delivery_dest),
    ]
    if ev.auth is not None:
        pairs += [
            (sem.AUTH_RESULTS, "spf", ev.auth.spf),
            (sem.AUTH_RESULTS, "dkim", ev.auth.dkim),
            (sem.AUTH_RESULTS, "dmarc", ev.auth.dmarc),
            (sem.AUTH_RESULTS, "dmarc.action", ev.auth.dmarc_action),
            (sem.AUTH_RESULTS, "compauth", ev.auth.compauth),
            (sem.AUTH_RESULTS, "compauth.reason", ev.auth.compauth_reason),
        ]
    if ev.received.entry is not None and ev.received.entry.via:
        pairs.append((sem.RECEIVED, "via", ev.received.entry.via))
    if ev.received.loopback_seen:
        pairs.append((sem.RECEIVED, "loopback", "seen"))
    out: list[Interpretation] = []
    for header, fld, value in pairs:
        if value is None:
            continue
        row = sem.lookup(header, value, field=fld)
        if row is None:
            continue
        out.append(Interpretation(header=header, field=fld, value=value, meaning=row.meaning,
                                  confidence=row.confidence, source=row.source,
                                  tags=list(row.tags)))
    return out


# --------------------------------------------------------------------------- helpers
def _as_received_block(items: list[tuple[str, str]]) -> tuple[int, int] | None:
    """First marker to the last count header: the widest reading, so a sender who forges
    either header can only make the untrusted block larger."""
    start = next((i for i, (n, _) in enumerate(items)
                  if n.lower() == sem.INCOMING_TOP_MARKER.lower()), None)
    if start is None:
        return None
    ends = [i for i, (n, _) in enumerate(items)
            if n.lower() == sem.INCOMING_HEADER_COUNT.lower() and i > start]
    return (start, ends[-1]) if ends else None


def _first_text(items: list[tuple[str, str]], name: str) -> str | None:
    for n, v in items:
        if n.lower() == name:
            return _text(v)
    return None


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    text = clean(decode_rfc2047(unfold(value))).strip()
    return text[:_MAX_TEXT] or None


def _guid(value: str | None) -> str | None:
    if not value:
        return None
    m = _GUID.search(value)
    return m.group(0).lower() if m else None


def _int(value: str | None) -> int | None:
    try:
        return int(value.strip()) if value else None
    except ValueError:
        return None
