"""The *query* layer for SPF and DMARC, answered from the DNS the bundle captured.

dsguard never queries DNS while evaluating: ``dns.json`` is the evidence. So every answer
here says how complete it is. A name is *captured* when the bundle holds any record for it
(or for its ``_dmarc`` name); a captured name without the record asked for is taken as "not
published". An uncaptured ``include:``, ``redirect=`` target or organisational domain is
reported by name, and results that depend on it say they are a lower bound or unknown.

Organisational-domain fallback for DMARC uses the RFC 9989 DNS tree walk (parent names, up
to 8 labels), which needs no public-suffix list. Limitation: when a parent name was not
captured we cannot tell "no record" from "not looked up"; for that case a small built-in set
of multi-label public suffixes (``co.uk``, ``com.au`` ...) keeps us from demanding a record
at a public suffix. A parent outside that set that was not captured makes the answer
``not_captured`` (the check reports ``MANUAL``), never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from dsguard.posture.mailauth import (
    DmarcRecord,
    SpfRecord,
    SpfResult,
    is_dmarc,
    is_spf,
    parse_dmarc,
    parse_spf,
)

# Microsoft's SPF include for Exchange Online, per cloud (posture-checks.md DS-DNS-001).
EOP_SPF_INCLUDES = frozenset(
    {
        "spf.protection.outlook.com",
        "spf.protection.office365.us",
        "spf.protection.partner.outlook.cn",
    }
)
# MX targets that mean "straight to Exchange Online Protection", per cloud.
EOP_MX_SUFFIXES = (
    ".mail.protection.outlook.com",
    ".mail.protection.office365.us",
    ".mail.protection.partner.outlook.cn",
)
# Multi-label public suffixes common enough to matter; see the module docstring.
MULTI_LABEL_SUFFIXES = frozenset(
    {
        "co.uk", "org.uk", "ac.uk", "gov.uk", "ltd.uk", "plc.uk", "me.uk", "net.uk",
        "com.au", "net.au", "org.au", "edu.au", "gov.au",
        "co.nz", "org.nz", "govt.nz", "co.jp", "or.jp", "ne.jp", "ac.jp", "go.jp",
        "co.za", "org.za", "com.br", "net.br", "org.br", "com.cn", "net.cn", "org.cn",
        "co.in", "net.in", "org.in", "com.mx", "org.mx", "com.ar", "com.tr", "com.sg",
        "com.hk", "co.kr", "or.kr", "co.il", "org.il", "com.tw", "co.th", "com.my",
        "co.id", "com.ph", "com.vn", "com.pl", "com.es", "com.pt", "co.at", "or.at",
        "com.ua", "com.ru", "com.co", "com.pe", "com.ec", "com.sa", "com.eg", "co.ke",
        # Initial (MOERA) domains: a tenant owns only the label below these.
        "onmicrosoft.com", "onmicrosoft.us", "partner.onmschina.cn",
    }
)
_RTYPES = ("TXT", "MX", "CNAME", "A", "AAAA", "NS")
_TREE_WALK_MAX = 8
_MAX_DEPTH = 10


class DnsSource(Protocol):
    """What the query layer needs from a snapshot; ``None`` means no DNS was captured."""

    def dns(self, name: str, rtype: str = "TXT") -> list[str] | None: ...


def captured(source: DnsSource, name: str) -> bool:
    """Whether the bundle holds any record for ``name`` or its ``_dmarc`` name."""
    name = name.lower().rstrip(".")
    for rtype in _RTYPES:
        if source.dns(name, rtype):
            return True
    return bool(source.dns(f"_dmarc.{name}", "TXT"))


LookupStatus = Literal["found", "missing", "multiple", "not_captured", "no_dns"]


@dataclass
class SpfLookup:
    """SPF for one domain, with what the captured includes and redirects add."""

    domain: str
    status: LookupStatus
    record: SpfRecord | None = None
    records: list[str] = field(default_factory=list)
    # The 'all' result in force after following a captured redirect.
    effective_all: SpfResult | None = None
    lookups: int = 0
    lookups_exact: bool = True
    includes: list[str] = field(default_factory=list)
    not_captured: list[str] = field(default_factory=list)
    # True/False when decidable from captured records; None when an uncaptured include could
    # hold it.
    authorises_eop: bool | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def evidence(self) -> dict[str, object]:
        rec = self.record
        return {
            "record": rec.raw if rec else None,
            "records": self.records,
            "all": self.effective_all,
            "includes": self.includes,
            "redirect": rec.redirect if rec else None,
            "dns_lookups": self.lookups,
            "dns_lookups_exact": self.lookups_exact,
            "not_captured": self.not_captured,
            "authorises_eop": self.authorises_eop,
            "errors": self.errors,
            "warnings": self.warnings,
        }


def _spf_records(source: DnsSource, name: str) -> list[str] | None:
    txts = source.dns(name, "TXT")
    if txts is None:
        return None
    return [t for t in txts if is_spf(t)]


def lookup_spf(source: DnsSource, domain: str) -> SpfLookup:
    """SPF for ``domain`` from captured TXT records, following captured includes/redirects."""
    domain = domain.lower().rstrip(".")
    records = _spf_records(source, domain)
    if records is None:
        return SpfLookup(domain, "no_dns")
    if not records:
        status: LookupStatus = "missing" if captured(source, domain) else "not_captured"
        return SpfLookup(domain, status)
    if len(records) > 1:
        out = SpfLookup(domain, "multiple", records=records)
        out.errors.append(f"{len(records)} SPF records published (permerror)")
        return out
    record = parse_spf(records[0])
    out = SpfLookup(domain, "found", record=record, records=records)
    out.errors.extend(record.errors)
    out.warnings.extend(record.warnings)
    eop = _walk(source, record, out, seen={domain}, depth=0)
    out.authorises_eop = True if eop else (None if out.not_captured else False)
    out.effective_all = _effective_all(source, record, out, seen={domain})
    if out.lookups > 10:
        out.errors.append(f"{out.lookups} DNS-lookup terms exceed the limit of 10 (permerror)")
    if not out.lookups_exact:
        out.warnings.append(
            "lookup count is a lower bound: not captured: " + ", ".join(out.not_captured)
        )
    return out


def _walk(
    source: DnsSource, record: SpfRecord, out: SpfLookup, seen: set[str], depth: int
) -> bool:
    """Count lookups through captured includes; return whether EOP is authorised."""
    out.lookups += record.lookups
    eop = any(inc in EOP_SPF_INCLUDES for inc in record.includes)
    targets = list(record.includes)
    if record.redirect and record.all_term is None:
        targets.append(record.redirect)
    for target in targets:
        if target != record.redirect and target not in out.includes:
            out.includes.append(target)
        if target in seen or depth >= _MAX_DEPTH:
            if target in seen:
                out.errors.append(f"SPF include loop through {target}")
            continue
        nested = _spf_records(source, target) or []
        if len(nested) != 1:
            if not nested and not captured(source, target):
                if target not in out.not_captured:
                    out.not_captured.append(target)
                out.lookups_exact = False
            elif not nested:
                out.errors.append(f"{target} publishes no SPF record (permerror)")
            else:
                out.errors.append(f"{target} publishes {len(nested)} SPF records (permerror)")
            continue
        child = parse_spf(nested[0])
        for err in child.errors:
            out.errors.append(f"{target}: {err}")
        eop = _walk(source, child, out, seen | {target}, depth + 1) or eop
    return eop


def _effective_all(
    source: DnsSource, record: SpfRecord, out: SpfLookup, seen: set[str]
) -> SpfResult | None:
    """``all`` of the record, or of its captured ``redirect=`` chain; ``neutral`` by default."""
    if record.all_term is not None:
        return record.all_result
    if record.redirect is None:
        return "neutral"
    if record.redirect in seen:
        return None
    nested = _spf_records(source, record.redirect) or []
    if len(nested) != 1:
        return None
    return _effective_all(source, parse_spf(nested[0]), out, seen | {record.redirect})


@dataclass
class DmarcLookup:
    """DMARC in force for one domain, found at ``_dmarc.<domain>`` or a parent."""

    domain: str
    status: LookupStatus
    record_name: str | None = None
    record: DmarcRecord | None = None
    records: list[str] = field(default_factory=list)
    from_parent: bool = False
    not_captured: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def policy(self) -> str | None:
        """The policy receivers apply to mail from ``domain`` itself."""
        if self.record is None or not self.record.valid:
            return None
        return self.record.policy_for(subdomain=self.from_parent)

    @property
    def subdomain_policy(self) -> str | None:
        """The policy for existing subdomains of ``domain``."""
        if self.record is None or not self.record.valid:
            return None
        return self.record.sp

    @property
    def enforcing(self) -> bool:
        """Reject or quarantine for ``domain``, on all of its mail, not in testing mode."""
        rec = self.record
        return bool(
            rec is not None
            and self.policy in ("reject", "quarantine")
            and rec.pct == 100
            and not rec.testing
        )

    def evidence(self) -> dict[str, object]:
        rec = self.record
        return {
            "record_name": self.record_name,
            "record": rec.raw if rec else None,
            "records": self.records,
            "from_organisational_domain": self.from_parent,
            "p": rec.p if rec else None,
            "sp": rec.sp if rec else None,
            "np": rec.np if rec else None,
            "pct": rec.pct if rec else None,
            "rua": rec.rua if rec else [],
            "policy_in_force": self.policy,
            "not_captured": self.not_captured,
            "errors": self.errors,
            "warnings": self.warnings,
        }


def lookup_dmarc(source: DnsSource, domain: str, *, fallback: bool = True) -> DmarcLookup:
    """DMARC for ``domain``: its own record, else the nearest captured parent's (tree walk).

    ``fallback=False`` looks at ``_dmarc.<domain>`` only: for a tenant's initial (MOERA)
    domain, whose parent belongs to Microsoft, the record must be its own (CIS 2.1.10).
    """
    domain = domain.lower().rstrip(".")
    if source.dns(f"_dmarc.{domain}", "TXT") is None:
        return DmarcLookup(domain, "no_dns")
    labels = domain.split(".")
    names = [".".join(labels[i:]) for i in range(len(labels) - 1)][:_TREE_WALK_MAX]
    if not fallback:
        names = names[:1]
    not_captured: list[str] = []
    for index, name in enumerate(names):
        txts = source.dns(f"_dmarc.{name}", "TXT") or []
        records = [t for t in txts if is_dmarc(t)]
        if not records:
            if not captured(source, name) and name not in MULTI_LABEL_SUFFIXES:
                not_captured.append(name)
            continue
        out = DmarcLookup(
            domain,
            "found",
            record_name=f"_dmarc.{name}",
            records=records,
            from_parent=index > 0,
            not_captured=not_captured,
        )
        others = [t for t in txts if not is_dmarc(t)]
        if others:
            out.warnings.append(f"{len(others)} non-DMARC TXT record(s) at _dmarc.{name}")
        if len(records) > 1:
            out.status = "multiple"
            out.errors.append(
                f"{len(records)} DMARC records at _dmarc.{name}: receivers apply none"
            )
            return out
        out.record = parse_dmarc(records[0])
        out.errors.extend(out.record.errors)
        out.warnings.extend(out.record.warnings)
        if out.record.psd == "y" and index > 0:
            out.warnings.append(f"the record at _dmarc.{name} is a public-suffix (psd=y) record")
        if not_captured:
            out.warnings.append(
                "nearer names not captured, a record there would take precedence: "
                + ", ".join(not_captured)
            )
        return out
    if domain in not_captured:
        return DmarcLookup(domain, "not_captured", not_captured=not_captured)
    status: LookupStatus = "not_captured" if not_captured else "missing"
    return DmarcLookup(domain, status, record_name=f"_dmarc.{domain}", not_captured=not_captured)


def mx_hosts(source: DnsSource, domain: str) -> list[str] | None:
    """MX targets of ``domain`` (``"10 host."`` or ``"host."`` → ``host``); ``None`` when no
    usable MX was captured (a value without a host name is ignored)."""
    values = source.dns(domain, "MX")
    if not values:
        return None
    hosts = []
    for value in values:
        parts = value.split()
        host = parts[-1].lower().rstrip(".") if parts else ""
        if host and not host.isdigit() and "." in host:
            hosts.append(host)
    return hosts or None


def points_to_eop(host: str) -> bool:
    host = host.lower().rstrip(".")
    return any(host.endswith(suffix) for suffix in EOP_MX_SUFFIXES)
