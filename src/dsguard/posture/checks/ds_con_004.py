"""DS-CON-004: the EOP endpoint is locked down when MX points at a third-party gateway.

``<tenant>.mail.protection.outlook.com`` accepts mail whatever the MX says, so attackers can
skip the gateway. The lock-down is a Partner connector for ``*`` restricted to the gateway's
IPs or certificate.

- PASS: such a connector exists.
- MANUAL: a gateway is in front and no lock-down connector exists. This is community
  guidance not yet verified against Microsoft's, so it is not a hard FAIL [verify].
- NOT_APPLICABLE: every sending domain's MX points at EOP.
- MANUAL: MX not captured, or connectors not collected.
"""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import kinds
from dsguard.posture.base import Check
from dsguard.posture.checks._common import domains_or_finding
from dsguard.posture.dnsview import mx_hosts, points_to_eop
from dsguard.posture.model import inbound_connectors
from dsguard.results import Finding


class GatewayBypassLockdown(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        domains, missing = domains_or_finding(self, snapshot)
        if missing:
            return [missing]
        if not snapshot.dns_collected:
            return [self.no_dns("MX")]
        gateway: dict[str, list[str]] = {}
        uncaptured: list[str] = []
        for domain in (d for d in domains if d.in_dns_scope and not d.parked):
            hosts = mx_hosts(snapshot, domain.name)
            if hosts is None:
                uncaptured.append(domain.name)
            elif not all(points_to_eop(h) for h in hosts):
                gateway[domain.name] = hosts
        evidence: dict[str, object] = {"gateway_mx": gateway, "mx_not_captured": uncaptured}
        if not gateway:
            if uncaptured:
                return [
                    self.finding(
                        "MANUAL",
                        "MX",
                        "no MX captured for: " + ", ".join(uncaptured),
                        evidence=evidence,
                    )
                ]
            return [
                self.finding(
                    "NOT_APPLICABLE",
                    "MX",
                    "every sending domain's MX points at Exchange Online Protection",
                    evidence=evidence,
                )
            ]
        objs = snapshot.config(kinds.INBOUND_CONNECTORS)
        if objs is None:
            return [self.not_collected(kinds.INBOUND_CONNECTORS)]
        locks = [
            c.name
            for c in inbound_connectors(objs)
            if c.enabled and c.is_partner and c.wildcard and c.restricted
        ]
        evidence["lockdown_connectors"] = locks
        if locks:
            return [
                self.finding(
                    "PASS",
                    locks[0],
                    "a '*' Partner connector restricted to the gateway's IPs or certificate "
                    "locks the EOP endpoint down",
                    evidence=evidence,
                )
            ]
        return [
            self.finding(
                "MANUAL",
                "inbound_connectors",
                "MX points at a gateway for " + ", ".join(sorted(gateway)) + " but no "
                "restricted '*' Partner connector locks the EOP endpoint down; attackers can "
                "deliver straight to EOP [verify guidance before enforcing]",
                evidence=evidence,
            )
        ]
