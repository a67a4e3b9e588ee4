"""DS-ETR-001: no transport rule sets SCL -1 keyed on a sender domain (ORCA 118-2 / 118-4).

One finding per rule that sets ``SetSCL -1`` on a sender domain (``SenderDomainIs`` or a
bare-domain ``FromAddressContainsWords`` / ``FromAddressMatchesPatterns``).

- FAIL (high): the domain is one of ours: every spoof of it, Direct Send included, skips
  spam filtering. Medium for a foreign domain; low while the rule is disabled or audit-only
  (``ConfigDisabled`` is recorded, not skipped).
- FAIL: gated by ``SenderIpRanges`` while MX points at a gateway (the IP tested is then the
  gateway's, so the gate gates nothing).
- PASS: gated by an ``Authentication-Results`` header condition or by ``SenderIpRanges``
  with MX at EOP; or no rule sets SCL -1 on a sender domain.
- MANUAL: transport rules not collected.
"""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import kinds
from dsguard.posture.base import Check
from dsguard.posture.dnsview import mx_hosts, points_to_eop
from dsguard.posture.model import (
    AcceptedDomain,
    TransportRule,
    accepted_domains,
    is_own_domain,
)
from dsguard.posture.values import MalformedValue
from dsguard.results import Finding, SeverityName


def gateway_in_front(snapshot: Snapshot, domains: list[AcceptedDomain]) -> bool | None:
    """Whether any sending domain's MX points away from EOP; ``None`` when unknown."""
    if not snapshot.dns_collected:
        return None
    known = False
    for d in domains:
        if not d.in_dns_scope or d.parked:
            continue
        hosts = mx_hosts(snapshot, d.name)
        if hosts is None:
            continue
        known = True
        if not all(points_to_eop(h) for h in hosts):
            return True
    return False if known else None


class SclBypassOnSenderDomain(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        objs = snapshot.config(kinds.TRANSPORT_RULES)
        if objs is None:
            return [self.not_collected(kinds.TRANSPORT_RULES)]
        domains = accepted_domains(snapshot.config(kinds.ACCEPTED_DOMAINS) or [])
        gateway = gateway_in_front(snapshot, domains)
        findings: list[Finding] = []
        for index, obj in enumerate(objs):
            try:
                rule = TransportRule.from_obj(obj, index)
            except MalformedValue as exc:
                findings.append(self.malformed(f"transport rule #{index + 1}", exc))
                continue
            if rule.set_scl != -1 or not rule.sender_domains:
                continue
            findings.append(self._evaluate(rule, domains, gateway))
        if not findings:
            findings.append(
                self.finding(
                    "PASS",
                    kinds.TRANSPORT_RULES,
                    f"no rule sets SCL -1 on a sender domain ({len(objs)} rules read)",
                    evidence={"rules_read": len(objs)},
                )
            )
        return findings

    def _evaluate(
        self, rule: TransportRule, domains: list[AcceptedDomain], gateway: bool | None
    ) -> Finding:
        evidence = rule.evidence()
        own = [d for d in rule.sender_domains if is_own_domain(d, domains)]
        evidence["own_domains"] = own
        evidence["ConfigDisabled"] = not rule.enabled
        evidence["mx_gateway_in_front"] = gateway
        values = {"rule": rule.name}
        if rule.auth_gated:
            return self.finding(
                "PASS",
                rule.name,
                "SCL -1 is gated by an Authentication-Results header condition",
                evidence=evidence,
            )
        if rule.ip_gated and gateway is not True:
            note = "" if gateway is False else " (MX not captured: assumes MX points at EOP)"
            return self.finding(
                "PASS",
                rule.name,
                f"SCL -1 is gated by SenderIpRanges{note}",
                evidence=evidence,
            )
        severity: SeverityName = "high" if own else "medium"
        domains_text = ", ".join(rule.sender_domains)
        text = (
            f"sets SCL -1 (bypass spam filtering) for mail from {domains_text}"
            + (": every spoof of our own domain skips filtering" if own else "")
        )
        if rule.ip_gated:
            text += "; its SenderIpRanges gate tests the gateway's IP because MX points at a "
            text += "gateway, so it gates nothing"
        if not rule.active:
            severity = "low"
            text += f" (rule is {'disabled' if not rule.enabled else rule.mode}; one change "
            text += "from active)"
        return self.finding("FAIL", rule.name, text, evidence=evidence, severity=severity,
                            values=values)
