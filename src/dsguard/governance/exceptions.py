"""Exceptions as code: is every legitimate unauthenticated path visible, justified, owned,
scoped, in date and actually used, and is every Direct Send flow covered by one?

Reads the registry (``exceptions`` table via the tenant context) and the classified traffic
(``features``, ``alert_messages``). Time is judged as of the last observed message, so the
same bundle always gives the same answer.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import duckdb
import yaml

from dsguard.engines.iprange import host_cidr
from dsguard.evidence.addresses import WIDEST_PREFIX, too_wide
from dsguard.results import Finding
from dsguard.scoring.score import SUSPICIOUS_AT
from dsguard.signals.features import source_ip
from dsguard.tenant import ExceptionRule, Tenant

SOON_DAYS = 30
REMEDIATE_REGISTRY = "Edit exceptions.yaml (reviewed like code) and re-run dsguard analyze."


@dataclass(frozen=True)
class GovCheck:
    id: str
    title: str
    severity: str
    remediation: str


CHECKS: dict[str, GovCheck] = {
    c.id: c
    for c in (
        GovCheck(
            "DS-GOV-001",
            "Exception is in date",
            "medium",
            "Renew the entry with a new end date after review, or remove it.",
        ),
        GovCheck(
            "DS-GOV-002",
            "No expired exception is still in use",
            "high",
            "The path still carries mail after its approval ended: renew it after review "
            "or stop the sender, then move it to a connector or authenticated submission.",
        ),
        GovCheck(
            "DS-GOV-003",
            "Exception is not about to expire",
            "low",
            "Review the entry before it expires.",
        ),
        GovCheck(
            "DS-GOV-004",
            "Exception has an owner and an end date",
            "medium",
            "Add `owner:` (who answers for it) and `expires:` to the entry.",
        ),
        GovCheck(
            "DS-GOV-005",
            "Exception is used",
            "low",
            "Nothing used this path in the observed period: revoke the entry.",
        ),
        GovCheck(
            "DS-GOV-006",
            "Exception is narrowly scoped",
            "medium",
            "Narrow sources to the device or service addresses (/32, /128 or the provider's "
            "published range), name the sender addresses, and limit recipients.",
        ),
        GovCheck(
            "DS-GOV-007",
            "Exception does not overlap an inbound connector",
            "low",
            "Mail matching a connector is not anonymous: keep one mechanism per path and "
            "remove the redundant one.",
        ),
        GovCheck(
            "DS-GOV-008",
            "All Direct Send traffic is covered by an exception",
            "medium",
            "Review the draft entry; register the path (with owner and expiry) if it is "
            "legitimate, or block the sender if it is not.",
        ),
    )
}


def _finding(check_id: str, status: str, resource: str, extended: str, **evidence: Any) -> Finding:
    c = CHECKS[check_id]
    return Finding(
        check_id=c.id,
        status=status,  # type: ignore[arg-type]
        severity=c.severity,  # type: ignore[arg-type]
        resource=resource,
        title=c.title,
        evidence=evidence,
        remediation=c.remediation if status == "FAIL" else "",
        status_extended=extended,
    )


def as_of(con: duckdb.DuckDBPyConnection) -> date | None:
    row = con.execute("SELECT max(ts)::DATE FROM messages").fetchone()
    return row[0] if row else None


def usage(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """Per exception id: messages it covered, and those after it expired."""
    rows = con.execute(
        """SELECT id, count(DISTINCT network_message_id) AS messages,
                  count(DISTINCT network_message_id) FILTER (WHERE expired) AS after_expiry,
                  min(ts) AS first_seen, max(ts) AS last_seen
           FROM (SELECT unnest(covering_ids) AS id, network_message_id, ts,
                        list_contains(covering_expired_ids, unnest(covering_ids)) AS expired
                 FROM features WHERE covered)
           GROUP BY id"""
    ).fetchall()
    out: dict[str, dict[str, Any]] = {
        r[0]: {"messages": r[1], "after_expiry": r[2], "first_seen": r[3], "last_seen": r[4]}
        for r in rows
    }
    # Senders other than the registered ones seen on an exception's sources: the range is
    # shared (a sending service), so binding a connector to its IPs would admit them too.
    for ex_id, senders in con.execute(
        """SELECT id, list(DISTINCT sender ORDER BY sender) FROM (
               SELECT unnest(exception_source_ids) AS id, sender FROM features
               WHERE on_exception_source AND NOT covered AND path = 'direct_send')
           GROUP BY id"""
    ).fetchall():
        out.setdefault(ex_id, {"messages": 0, "after_expiry": 0})["foreign_senders"] = senders
    return out


def check_registry(
    con: duckdb.DuckDBPyConnection,
    tenant: Tenant,
    *,
    used: dict[str, dict[str, Any]] | None = None,
    flows: list[dict[str, Any]] | None = None,
) -> list[Finding]:
    """Every registry check for every entry, then the uncovered traffic.

    ``used`` (``usage``) and ``flows`` (``uncovered_flows``) may be passed in when the caller
    needs them too (the plan does), so a period of traffic is scanned once.
    """
    today = as_of(con) or date.today()
    used = usage(con) if used is None else used
    out: list[Finding] = []
    for ex in tenant.exceptions:
        out += _entry_findings(ex, today, used.get(ex.id), tenant)
    out += uncovered_findings(con, flows)
    return out


def _entry_findings(
    ex: ExceptionRule, today: date, use: dict[str, Any] | None, tenant: Tenant
) -> list[Finding]:
    res = f"exception {ex.id}"
    out: list[Finding] = []
    expired = ex.expires is not None and ex.expires < today
    out.append(
        _finding(
            "DS-GOV-001",
            "FAIL" if expired else "PASS",
            ex.id,
            f"{res} expired on {ex.expires}" if expired else f"{res} is in date",
            expires=str(ex.expires) if ex.expires else None,
            as_of=str(today),
        )
    )
    after = (use or {}).get("after_expiry", 0)
    out.append(
        _finding(
            "DS-GOV-002",
            "FAIL" if after else "PASS",
            ex.id,
            f"{res} expired on {ex.expires} but still covered {after} messages"
            if after
            else f"{res}: no use after expiry",
            messages_after_expiry=after,
            expires=str(ex.expires) if ex.expires else None,
            last_seen=str((use or {}).get("last_seen")) if use else None,
        )
    )
    soon = ex.expires is not None and today <= ex.expires <= today + timedelta(days=SOON_DAYS)
    out.append(
        _finding(
            "DS-GOV-003",
            "FAIL" if soon else "PASS",
            ex.id,
            f"{res} expires on {ex.expires}, within {SOON_DAYS} days"
            if soon
            else f"{res} does not expire within {SOON_DAYS} days",
            expires=str(ex.expires) if ex.expires else None,
        )
    )
    missing = [k for k, v in (("owner", ex.owner), ("expires", ex.expires)) if not v]
    out.append(
        _finding(
            "DS-GOV-004",
            "FAIL" if missing else "PASS",
            ex.id,
            f"{res} has no {' and no '.join(missing)}"
            if missing
            else f"{res} has an owner and an end date",
            missing=missing,
        )
    )
    n = (use or {}).get("messages", 0)
    out.append(
        _finding(
            "DS-GOV-005",
            "FAIL" if not n else "PASS",
            ex.id,
            f"{res} covered no message in the observed period"
            if not n
            else f"{res} covered {n} messages",
            messages=n,
        )
    )
    broad = _breadth(ex)
    out.append(
        _finding(
            "DS-GOV-006",
            "FAIL" if broad else "PASS",
            ex.id,
            f"{res} is too broad: " + "; ".join(broad) if broad else f"{res} is narrowly scoped",
            problems=broad,
        )
    )
    overlaps = _overlaps(ex, tenant)
    out.append(
        _finding(
            "DS-GOV-007",
            "FAIL" if overlaps else "PASS",
            ex.id,
            f"{res} overlaps " + ", ".join(overlaps)
            if overlaps
            else f"{res} overlaps no inbound connector",
            connectors=overlaps,
        )
    )
    return out


def _breadth(ex: ExceptionRule) -> list[str]:
    problems: list[str] = []
    for src in ex.sources:
        try:
            net = ipaddress.ip_network(src, strict=False)
        except ValueError:
            continue
        if too_wide(net):
            problems.append(
                f"source {src} spans {net.num_addresses} addresses, "
                f"more than one /{WIDEST_PREFIX[net.version]}"
            )
    for s in ex.senders:
        if s == "*" or s.startswith("*@"):
            problems.append(f"wildcard sender {s}")
    if not ex.senders:
        problems.append("no senders named (any sender from its sources)")
    if not ex.sources:
        problems.append("no sources named (its senders from anywhere)")
    if "any" in ex.recipients:
        problems.append("recipients: any")
    return problems


def _overlaps(ex: ExceptionRule, tenant: Tenant) -> list[str]:
    """Connectors that would attribute this exception's traffic: the connector's IPs overlap
    the exception's sources and its sender-domain scope admits the exception's senders."""
    nets = _networks(ex.sources)
    domains = {s.split("@", 1)[1] for s in ex.senders if "@" in s}
    hits: list[str] = []
    for c in tenant.connectors:
        ip_overlap = any(
            a.version == b.version and a.overlaps(b) for a in nets for b in _networks(c.sender_ips)
        )
        scope = set(c.sender_domains)
        in_scope = not scope or "*" in scope or not domains or bool(domains & scope)
        if ip_overlap and in_scope:
            hits.append(f"connector {c.name}")
    return hits


def _networks(texts: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for t in texts:
        try:
            out.append(ipaddress.ip_network(t, strict=False))
        except ValueError:
            continue
    return out


def uncovered_flows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Direct Send flows no in-date exception covers and no alert calls suspicious."""
    cur = con.execute(
        f"""SELECT lower(coalesce(sender_from, sender_mail_from)) AS sender,
                  {source_ip()} AS source,
                  count(DISTINCT network_message_id) AS messages,
                  count(DISTINCT recipient) AS recipients,
                  bool_and(split_part(recipient, '@', 2) IN (SELECT domain FROM t_domains))
                      AS internal_only,
                  min(ts) AS first_seen, max(ts) AS last_seen,
                  any_value(identity_class) AS identity_class,
                  bool_or(covered_expired) AS expired_cover
           FROM features f
           WHERE path = 'direct_send' AND NOT coalesce(covered_in_date, false)
             AND NOT EXISTS (SELECT 1 FROM alert_messages a
                             WHERE a.network_message_id = f.network_message_id AND a.rank >= ?)
           GROUP BY 1, 2 ORDER BY messages DESC, sender, source""",
        [int(SUSPICIOUS_AT)],
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


# A draft's end date: long enough to review and migrate, short enough to force that review.
DRAFT_TERM_DAYS = 90


def draft_entry(sender: str, flows: list[dict[str, Any]], n: int, today: date) -> dict[str, Any]:
    """A reviewable exceptions.yaml entry for one sender's uncovered flows (never applied by
    us). It loads as written; until someone adds ``owner`` it stays a DS-GOV-004 finding."""
    sources = sorted({host_cidr(f["source"]) for f in flows if f["source"]})
    return {
        "id": f"EX-DRAFT-{n:03d}",
        "name": f"Direct Send as {sender} from {len(sources)} source(s)",
        "justification": "TODO: what sends this mail and why it cannot authenticate",
        "sources": sources,
        "senders": [sender],
        "recipients": "internal" if all(f["internal_only"] for f in flows) else "any",
        "expires": today + timedelta(days=DRAFT_TERM_DAYS),
    }


def uncovered_findings(
    con: duckdb.DuckDBPyConnection, flows: list[dict[str, Any]] | None = None
) -> list[Finding]:
    flows = [
        f for f in (uncovered_flows(con) if flows is None else flows) if not f["expired_cover"]
    ]
    if not flows:
        return [_finding("DS-GOV-008", "PASS", "direct send traffic",
                         "every non-suspicious Direct Send flow is covered by an exception")]
    today = as_of(con) or date.today()
    by_sender: dict[str, list[dict[str, Any]]] = {}
    for flow in flows:
        by_sender.setdefault(flow["sender"] or "unknown", []).append(flow)
    out = []
    ranked = sorted(by_sender.items(), key=lambda kv: (-sum(f["messages"] for f in kv[1]), kv[0]))
    for i, (sender, group) in enumerate(ranked, start=1):
        draft = draft_entry(sender, group, i, today)
        messages = sum(f["messages"] for f in group)
        sources = sorted({f["source"] for f in group if f["source"]})
        out.append(
            _finding(
                "DS-GOV-008", "FAIL", sender,
                f"{messages} Direct Send messages as {sender} from {len(sources)} source(s) "
                "are covered by no exception",
                sender=sender, sources=sources, messages=messages,
                recipients=max(f["recipients"] for f in group),
                identity_class=group[0]["identity_class"],
                first_seen=str(min(f["first_seen"] for f in group)),
                last_seen=str(max(f["last_seen"] for f in group)),
                draft_yaml=yaml.safe_dump({"exceptions": [draft]}, sort_keys=False),
            )
        )
    return out
