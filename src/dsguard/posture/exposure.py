"""Direct Send exposure as the combination it is, per accepted domain.

No single switch answers "can someone spoof our domain into our mailboxes?". Two paths matter
(``posture-checks.md`` §1):

- the **envelope path**: anonymous SMTP whose envelope sender (P1) is our domain. Only
  ``RejectDirectSend`` drops it outright; unrestricted connectors do not exempt it;
- the **header path**: a foreign envelope with our domain in the From header (P2).
  RejectDirectSend never sees it; DMARC at enforcement, honoured by the anti-phishing policy
  with spoof intelligence on, is what stops it, and only when no bypass (an SCL -1 or
  filter-skip rule keyed on our domain, an allowed spoof pair, an allowed sender domain) and no
  gateway in front without Enhanced Filtering undoes it.

``evaluate_exposure`` combines RejectDirectSend × DMARC × anti-spoof × bypasses × connectors ×
MX into one ``DomainExposure`` per domain with a plain-language verdict; DS-EXP-001 emits it
as findings. Each factor records the check that evaluates it in detail.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import kinds
from dsguard.posture.dnsview import lookup_dmarc, mx_hosts, points_to_eop
from dsguard.posture.model import (
    AcceptedDomain,
    InboundConnector,
    TransportRule,
    accepted_domains,
    anti_phish_policies,
    inbound_connectors,
    transport_rules,
)
from dsguard.posture.values import (
    MalformedValue,
    as_bool,
    as_str,
    domain_matches,
    get,
    is_subdomain,
    str_list,
)
from dsguard.results import SeverityName

Verdict = Literal["exposed", "partially_exposed", "protected", "unknown"]
PathState = Literal["blocked", "open", "unknown"]


@dataclass
class Factor:
    """One input to the verdict: its value, what it means, and the check that owns it."""

    name: str
    value: Any
    meaning: str
    check_id: str


@dataclass
class DomainExposure:
    """The exposure of one accepted domain."""

    domain: str
    role: str
    verdict: Verdict
    severity: SeverityName
    summary: str
    envelope_path: PathState
    header_path: PathState
    factors: list[Factor] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def evidence(self) -> dict[str, Any]:
        out = asdict(self)
        out["factors"] = {f["name"]: f for f in out["factors"]}
        return out


@dataclass
class ExposureReport:
    """Per-domain exposure plus the inputs that were missing."""

    domains: list[DomainExposure]
    missing_inputs: list[str] = field(default_factory=list)


def _covers(sender_domain: str, domain: str) -> bool:
    return sender_domain == domain or is_subdomain(domain, sender_domain) or domain_matches(
        domain, sender_domain
    )


@dataclass
class _Tenant:
    """Tenant-wide facts, read once."""

    reject_direct_send: bool | None
    anti_spoof: bool | None
    anti_spoof_weak_policies: list[str]
    rules: list[TransportRule] | None
    connectors: list[InboundConnector] | None
    spoof_allow_users: list[str] | None
    allowed_sender_domains: dict[str, list[str]] | None
    ip_allow_list: list[str] | None
    missing: list[str]


def _tenant(snapshot: Snapshot) -> _Tenant:
    missing: list[str] = []

    def cfg(kind: str) -> list[dict[str, Any]] | None:
        objs = snapshot.config(kind)
        if objs is None:
            missing.append(kind)
        return objs

    org = cfg(kinds.ORGANIZATION_CONFIG)
    rds: bool | None = None
    if org:
        try:
            rds = as_bool(get(org[0], "RejectDirectSend"), "RejectDirectSend") is True
        except MalformedValue:
            rds = None
    policies_objs = cfg(kinds.ANTI_PHISH_POLICIES)
    anti_spoof: bool | None = None
    weak: list[str] = []
    if policies_objs:
        try:
            policies = anti_phish_policies(policies_objs, snapshot.config(kinds.ANTI_PHISH_RULES))
            weak = [p.name for p in policies if p.applies is not False
                    and not p.honours_spoof_protection]
            anti_spoof = not weak
        except MalformedValue:
            anti_spoof = None
    rule_objs = cfg(kinds.TRANSPORT_RULES)
    conn_objs = cfg(kinds.INBOUND_CONNECTORS)
    spoof_objs = cfg(kinds.TENANT_ALLOW_BLOCK_LIST_SPOOF_ITEMS)
    spoof_users = None
    if spoof_objs is not None:
        spoof_users = [
            (as_str(get(o, "SpoofedUser")) or "").lower()
            for o in spoof_objs
            if (as_str(get(o, "Action")) or "").lower() == "allow"
        ]
    content = cfg(kinds.HOSTED_CONTENT_FILTER_POLICY)
    allowed = None
    if content is not None:
        allowed = {
            (as_str(get(p, "Name")) or "policy"): [
                d.lower() for d in str_list(get(p, "AllowedSenderDomains"))
            ]
            for p in content
        }
    conn_filter = cfg(kinds.HOSTED_CONNECTION_FILTER_POLICY)
    ip_allow = None
    if conn_filter is not None:
        ip_allow = [ip for p in conn_filter for ip in str_list(get(p, "IPAllowList"))]
    return _Tenant(
        reject_direct_send=rds,
        anti_spoof=anti_spoof,
        anti_spoof_weak_policies=weak,
        rules=transport_rules(rule_objs) if rule_objs is not None else None,
        connectors=inbound_connectors(conn_objs) if conn_objs is not None else None,
        spoof_allow_users=spoof_users,
        allowed_sender_domains=allowed,
        ip_allow_list=ip_allow,
        missing=missing,
    )


def evaluate_exposure(snapshot: Snapshot) -> ExposureReport:
    """The Direct Send exposure of every accepted domain (coexistence domains excluded).

    Raises ``MalformedValue`` only for a malformed accepted-domain list; every other input
    that is missing or malformed makes the affected factor ``None`` (unknown).
    """
    domain_objs = snapshot.config(kinds.ACCEPTED_DOMAINS)
    if not domain_objs:
        return ExposureReport([], [kinds.ACCEPTED_DOMAINS])
    tenant = _tenant(snapshot)
    report = ExposureReport([], list(tenant.missing))
    if not snapshot.dns_collected:
        report.missing_inputs.append(kinds.DNS)
    for domain in accepted_domains(domain_objs):
        if domain.in_dmarc_scope:
            report.domains.append(_domain(snapshot, tenant, domain))
    return report


def _domain(snapshot: Snapshot, t: _Tenant, domain: AcceptedDomain) -> DomainExposure:
    name = domain.name
    factors: list[Factor] = []
    reasons: list[str] = []

    # RejectDirectSend: the envelope path.
    envelope: PathState = (
        "unknown" if t.reject_direct_send is None
        else "blocked" if t.reject_direct_send else "open"
    )
    factors.append(Factor("reject_direct_send", t.reject_direct_send, {
        "blocked": "anonymous mail with our envelope domain is rejected",
        "open": "anonymous mail with our envelope domain is accepted from any IP",
        "unknown": "organisation config not collected",
    }[envelope], "DS-ORG-001"))

    # DMARC: what receivers (and EOP, when honoured) do with header spoofs.
    dmarc = lookup_dmarc(snapshot, name, fallback=not domain.initial)
    dmarc_ok: bool | None
    if dmarc.status in ("no_dns", "not_captured"):
        dmarc_ok = None
        meaning = "DMARC not captured"
    else:
        dmarc_ok = dmarc.enforcing
        meaning = (
            f"p={dmarc.policy} enforced" if dmarc_ok
            else f"not enforcing ({dmarc.status}, policy {dmarc.policy or 'none'})"
        )
    factors.append(Factor("dmarc", {"status": dmarc.status, "policy": dmarc.policy,
                                    "record": dmarc.record.raw if dmarc.record else None},
                          meaning, "DS-DNS-003"))

    # Anti-spoofing policy.
    factors.append(Factor("anti_spoof", t.anti_spoof, (
        "spoof intelligence on and DMARC honoured" if t.anti_spoof
        else "not collected" if t.anti_spoof is None
        else "weakened in: " + ", ".join(t.anti_spoof_weak_policies)
    ), "DS-SPF-001"))

    # Bypasses keyed on this domain.
    bypass: list[str] = []
    if t.rules is not None:
        for r in t.rules:
            if not r.active or r.auth_gated:
                continue
            keyed = any(_covers(s, name) for s in r.sender_domains)
            if keyed and r.set_scl == -1 and not r.ip_gated:
                bypass.append(f"transport rule '{r.name}' sets SCL -1 for {name}")
            elif keyed and r.skipped_protection and not r.ip_gated:
                bypass.append(f"transport rule '{r.name}' skips {r.skipped_protection}")
    if t.spoof_allow_users:
        bypass += [f"allowed spoof pair for {u}" for u in t.spoof_allow_users
                   if u.rsplit("@", 1)[-1] == name]
    if t.allowed_sender_domains:
        bypass += [
            f"anti-spam policy '{p}' allows {name}"
            for p, ds in t.allowed_sender_domains.items()
            if any(_covers(d, name) for d in ds)
        ]
    known_bypass = t.rules is not None
    factors.append(Factor("bypasses", bypass, (
        "none keyed on this domain" if not bypass and known_bypass
        else "transport rules not collected" if not known_bypass and not bypass
        else f"{len(bypass)} filter bypass(es) for this domain"
    ), "DS-ETR-001"))
    if t.ip_allow_list:
        reasons.append(
            f"{len(t.ip_allow_list)} IP(s) in the connection-filter allow list skip "
            "authentication checks for anything they send (DS-FLT-001)"
        )

    # Connectors.
    unrestricted: list[str] = []
    internal: list[str] = []
    if t.connectors is not None:
        for c in t.connectors:
            if not c.enabled:
                continue
            if c.is_partner and not c.restricted and c.covers(name):
                unrestricted.append(c.name)
            if c.is_on_premises and c.treat_as_internal:
                internal.append(c.name)
    factors.append(Factor("connectors", {"unrestricted_partner": unrestricted,
                                         "treat_as_internal": internal}, (
        "connectors not collected" if t.connectors is None
        else "no unrestricted connector covers this domain" if not unrestricted
        else "unrestricted Partner connector(s) cover this domain: " + ", ".join(unrestricted)
    ), "DS-CON-002"))

    # MX: a gateway in front degrades spoof detection.
    gateway: bool | None = None
    if domain.in_dns_scope and not domain.parked:
        hosts = mx_hosts(snapshot, name)
        gateway = None if hosts is None else not all(points_to_eop(h) for h in hosts)
    ef_on = bool(t.connectors and any(c.ef_candidate and c.ef_effective for c in t.connectors))
    factors.append(Factor("mx_gateway", gateway, (
        "MX not captured" if gateway is None
        else "MX points at EOP" if not gateway
        else "gateway in front " + ("with" if ef_on else "without") + " Enhanced Filtering"
    ), "DS-CON-003"))

    # Header path: strong only when every part holds.
    weakeners = []
    if dmarc_ok is False:
        weakeners.append("DMARC is not enforcing")
    if t.anti_spoof is False:
        weakeners.append("anti-spoofing is weakened")
    if bypass:
        weakeners.append("filter bypasses exist for this domain")
    if unrestricted:
        weakeners.append(
            "an unrestricted Partner connector covers it, so mail claiming it matches from any "
            "IP [inference from the connector docs]"
        )
    if gateway and not ef_on:
        weakeners.append("a gateway in front hides the source IP from EOP")
    header: PathState
    if weakeners:
        header = "open"
    elif dmarc_ok is None or t.anti_spoof is None or not known_bypass:
        header = "unknown"
    else:
        header = "blocked"
    reasons = weakeners + reasons
    verdict, severity, summary = _verdict(name, envelope, header, bool(bypass or unrestricted))
    return DomainExposure(name, domain.role, verdict, severity, summary, envelope, header,
                          factors, reasons)


def _verdict(
    name: str, envelope: PathState, header: PathState, amplified: bool
) -> tuple[Verdict, SeverityName, str]:
    if envelope == "open" and header == "open":
        sev: SeverityName = "critical" if amplified else "high"
        return "exposed", sev, (
            f"Exposed: anyone on the internet can send mail as {name} to our mailboxes by "
            "Direct Send, and nothing downstream reliably stops it."
        )
    if envelope == "blocked" and header == "blocked":
        return "protected", "informational", (
            f"Protected: anonymous mail with {name} as envelope sender is rejected, and "
            "From-header spoofs meet an enforcing, honoured DMARC policy with no bypass."
        )
    if envelope == "open" and header == "blocked":
        return "partially_exposed", "medium", (
            f"Partially exposed: anonymous mail as {name} is accepted (RejectDirectSend is "
            "off); DMARC and anti-spoofing should junk or reject spoofs that fail "
            "authentication, but legitimate and spoofed Direct Send share one open path."
        )
    if envelope == "blocked" and header == "open":
        return "partially_exposed", "high" if amplified else "medium", (
            f"Partially exposed: envelope spoofs of {name} are rejected, but a foreign "
            f"envelope with {name} in the From header is not stopped reliably."
        )
    if header == "open":
        return "partially_exposed", "high" if amplified else "medium", (
            f"Partially exposed: From-header spoofs of {name} are not stopped reliably; "
            "whether RejectDirectSend drops envelope spoofs is unknown (not collected)."
        )
    return "unknown", "informational", (
        f"Unknown: inputs needed to judge {name} were not collected "
        f"(envelope path {envelope}, header path {header})."
    )
