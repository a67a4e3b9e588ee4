"""What the tenant itself looks like, derived once from the snapshot: its accepted domains,
inbound connectors, registered exceptions, SPF-authorised ranges and office egress.

Classification, signals and governance all read this one object, so "is this our domain" or
"is this a registered source" has one answer everywhere. ``register`` exposes it to SQL as
temporary tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb
import pyarrow as pa

from dsguard.engines.iprange import Range, ranges
from dsguard.evidence.duck import registered
from dsguard.evidence.snapshot import Snapshot
from dsguard.posture.mailauth import is_spf, parse_spf

# Office egress is learned from sign-ins: an address from which at least this many distinct
# people signed in successfully is treated as a shared office exit, not one person's device.
OFFICE_EGRESS_MIN_USERS = 3


@dataclass(frozen=True)
class Connector:
    name: str
    connector_type: str  # "OnPremises" | "Partner"
    enabled: bool
    sender_domains: list[str]
    sender_ips: list[str]
    restricted_by_ip: bool
    restricted_by_cert: bool
    certificate_name: str | None


@dataclass(frozen=True)
class ExceptionRule:
    id: str
    sources: list[str]
    senders: list[str]
    recipients: list[str]
    expires: date | None
    owner: str | None


@dataclass
class Tenant:
    accepted_domains: list[str]
    domains_inferred: bool
    connectors: list[Connector] = field(default_factory=list)
    exceptions: list[ExceptionRule] = field(default_factory=list)
    spf: dict[str, list[str]] = field(default_factory=dict)  # domain → ip4/ip6 mechanisms
    office_egress: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def ranges(self) -> list[Range]:
        out: list[Range] = []
        for domain, mechs in self.spf.items():
            out += ranges("spf", domain, mechs)
        for ex in self.exceptions:
            out += ranges("exception", ex.id, ex.sources)
        for c in self.connectors:
            out += ranges("connector", c.name, c.sender_ips)
        out += ranges("office", "office egress", self.office_egress)
        return out


def build_tenant(snapshot: Snapshot) -> Tenant:
    domains = snapshot.accepted_domains
    notes: list[str] = []
    inferred = False
    if not domains:
        domains = _infer_domains(snapshot.con)
        inferred = True
        notes.append(
            "accepted domains not collected; inferred from inbound recipients: "
            + ", ".join(domains or ["none"])
        )
    tenant = Tenant(accepted_domains=domains, domains_inferred=inferred, notes=notes)
    tenant.connectors = [_connector(c) for c in snapshot.config("inbound_connectors") or []]
    tenant.exceptions = [
        ExceptionRule(
            id=e["id"],
            sources=list(e["sources"] or []),
            senders=[s.lower() for s in e["senders"] or []],
            recipients=list(e["recipients"] or []),
            expires=e["expires"],
            owner=e["owner"],
        )
        for e in snapshot.exceptions()
    ]
    for domain in domains:
        tenant.spf[domain] = _spf_ip_mechanisms(snapshot, domain)
    tenant.office_egress = _office_egress(snapshot.con)
    return tenant


def _infer_domains(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        """SELECT split_part(recipient, '@', 2) AS d, count(*) AS n FROM messages
           WHERE direction IN ('Inbound', 'Intra-org') GROUP BY d ORDER BY n DESC LIMIT 20"""
    ).fetchall()
    if not rows:
        return []
    top = rows[0][1]
    # Domains receiving a meaningful share of mail are ours; a stray typo domain is not.
    return sorted(d for d, n in rows if d and n >= max(1, top // 50))


def _strs(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    return [str(v) for v in value if v is not None and str(v).strip()]


def _connector(obj: dict[str, Any]) -> Connector:
    ips = _strs(obj.get("SenderIPAddresses"))
    cert = obj.get("TlsSenderCertificateName")
    return Connector(
        name=str(obj.get("Name") or obj.get("Identity") or "?"),
        connector_type=str(obj.get("ConnectorType") or "Partner"),
        enabled=obj.get("Enabled") is not False,
        sender_domains=[d.lower() for d in _strs(obj.get("SenderDomains"))],
        sender_ips=ips,
        restricted_by_ip=bool(obj.get("RestrictDomainsToIPAddresses")),
        restricted_by_cert=bool(obj.get("RestrictDomainsToCertificate")),
        certificate_name=str(cert) if cert else None,
    )


def _spf_ip_mechanisms(snapshot: Snapshot, domain: str, depth: int = 0) -> list[str]:
    """ip4/ip6 mechanisms of a domain's SPF (only passing ones), following include and
    redirect as far as the bundle captured them. Parsing is the posture checks' parser."""
    if depth > 10:
        return []
    records = [r for r in snapshot.dns(domain) or [] if is_spf(r)]
    if len(records) != 1:
        return []
    record = parse_spf(records[0])
    out: list[str] = []
    for term in record.terms:
        if term.mechanism in ("ip4", "ip6") and term.value and term.qualifier == "+":
            out.append(term.value)
        elif term.mechanism == "include" and term.value:
            out += _spf_ip_mechanisms(snapshot, term.value, depth + 1)
    if record.redirect and record.all_term is None:
        out += _spf_ip_mechanisms(snapshot, record.redirect, depth + 1)
    return out


def _office_egress(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        """SELECT ip_address FROM signins
           WHERE ip_address IS NOT NULL AND coalesce(error_code, 0) = 0
           GROUP BY ip_address HAVING count(DISTINCT user_principal_name) >= ?
           ORDER BY ip_address""",
        [OFFICE_EGRESS_MIN_USERS],
    ).fetchall()
    return [r[0] for r in rows]


def register(con: duckdb.DuckDBPyConnection, tenant: Tenant) -> None:
    """Expose the tenant to SQL: ``t_domains``, ``t_ranges``, ``t_exceptions``,
    ``t_connectors``."""
    domains = pa.table({"domain": pa.array(tenant.accepted_domains, pa.string())})
    rs = tenant.ranges()
    rng = pa.table(
        {
            "kind": pa.array([r.kind for r in rs], pa.string()),
            "label": pa.array([r.label for r in rs], pa.string()),
            "cidr": pa.array([r.cidr for r in rs], pa.string()),
            "start_ip": pa.array([r.start for r in rs], pa.int64()),
            "end_ip": pa.array([r.end for r in rs], pa.int64()),
            "start_ip6": pa.array([r.start6 for r in rs], pa.string()),
            "end_ip6": pa.array([r.end6 for r in rs], pa.string()),
        }
    )
    # One row per (exception, sender pattern); an exception without senders covers anyone
    # from its sources, written as the pattern "*".
    senders = [
        (e.id, s, e.expires, bool(e.sources)) for e in tenant.exceptions for s in e.senders or ["*"]
    ]
    exc = pa.table(
        {
            "id": pa.array([s[0] for s in senders], pa.string()),
            "sender": pa.array([s[1] for s in senders], pa.string()),
            "expires": pa.array([s[2] for s in senders], pa.date32()),
            "has_sources": pa.array([s[3] for s in senders], pa.bool_()),
        }
    )
    conn = pa.table(
        {
            "name": pa.array([c.name for c in tenant.connectors], pa.string()),
            "connector_type": pa.array([c.connector_type for c in tenant.connectors], pa.string()),
        }
    )
    for name, tbl in (
        ("t_domains", domains),
        ("t_ranges", rng),
        ("t_exceptions", exc),
        ("t_connectors", conn),
    ):
        with registered(con, f"_{name}_arrow", tbl):
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _{name}_arrow")
