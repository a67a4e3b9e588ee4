"""DS-DNS-003: every accepted domain is covered by an enforcing DMARC policy.

One finding per accepted domain (the MOERA domain included, CIS 2.1.10; coexistence
excluded). The record is found at ``_dmarc.<domain>`` or, failing that, at the nearest
captured parent (organisational domain), where ``sp`` applies. Tags are parsed, never
substring-matched: ``v=DMARC1; p=none; sp=reject`` is ``p=none``.

- PASS: ``p=reject`` in force for the domain, ``pct=100``, not in testing mode, ``sp``/``np``
  not weaker, and ``rua`` present.
- FAIL (high): no record, several records or an invalid record.
- FAIL (medium): ``p=none``. FAIL (low): ``p=quarantine`` (CIS accepts it, ScubaGear requires
  reject), ``pct<100``, ``t=y``, weaker ``sp``/``np``, or no ``rua``.
- MANUAL: no DNS captured, or the domain (or its organisational domain) not captured.
"""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture.base import Check
from dsguard.posture.checks._common import domains_or_finding
from dsguard.posture.dnsview import lookup_dmarc
from dsguard.posture.mailauth import POLICY_STRENGTH
from dsguard.posture.model import AcceptedDomain
from dsguard.results import Finding, SeverityName

_ORDER: dict[str, int] = {"low": 0, "medium": 1, "high": 2}


class DmarcEnforced(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        domains, missing = domains_or_finding(self, snapshot)
        if missing:
            return [missing]
        if not snapshot.dns_collected:
            return [self.no_dns("DMARC")]
        return [self._evaluate(snapshot, d) for d in domains if d.in_dmarc_scope]

    def _evaluate(self, snapshot: Snapshot, domain: AcceptedDomain) -> Finding:
        dmarc = lookup_dmarc(snapshot, domain.name, fallback=not domain.initial)
        resource = f"_dmarc.{domain.name}"
        evidence: dict[str, object] = {"domain": domain.name, "role": domain.role,
                                       **dmarc.evidence()}
        values = {"domain": domain.name}
        if dmarc.status == "not_captured":
            return self.finding(
                "MANUAL", resource,
                "DMARC cannot be read: not captured: " + ", ".join(dmarc.not_captured),
                evidence=evidence)
        if dmarc.status == "missing":
            return self.finding("FAIL", resource, "no DMARC record is published",
                                evidence=evidence, severity="high", values=values)
        record = dmarc.record
        if dmarc.status == "multiple" or record is None or not record.valid:
            return self.finding("FAIL", resource,
                                "DMARC record is invalid: " + "; ".join(dmarc.errors),
                                evidence=evidence, severity="high", values=values)
        policy = dmarc.policy or "none"
        where = f" (from {dmarc.record_name}, sp applies)" if dmarc.from_parent else ""
        problems: list[tuple[SeverityName, str]] = []
        if policy == "none":
            problems.append(("medium", f"policy is none{where}: spoofs are only monitored"))
        elif policy == "quarantine":
            problems.append(("low", f"policy is quarantine{where}, not reject"))
        if record.pct < 100:
            problems.append(("low", f"pct={record.pct}: the policy applies to part of the mail"))
        if record.testing:
            problems.append(("low", "t=y: receivers apply a weaker policy (testing)"))
        for tag, value in (("sp", record.sp), ("np", record.np)):
            if value and POLICY_STRENGTH[value] < POLICY_STRENGTH[policy] and not dmarc.from_parent:
                problems.append(("low", f"{tag}={value} is weaker than p={policy}"))
        if domain.match_subdomains and record.sp != "reject":
            problems.append(("low", f"MatchSubDomains is on and sp={record.sp}"))
        if not record.rua:
            problems.append(("low", "no rua: nobody receives aggregate reports"))
        if problems:
            worst = max((p[0] for p in problems), key=_ORDER.__getitem__)
            return self.finding("FAIL", resource, "; ".join(p[1] for p in problems),
                                evidence=evidence, severity=worst, values=values)
        return self.finding("PASS", resource, f"p=reject in force{where}: {record.raw}",
                            evidence=evidence)
