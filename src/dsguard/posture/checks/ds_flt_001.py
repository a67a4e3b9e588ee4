"""DS-FLT-001: the connection-filter IP allow list is empty, in every policy.

- PASS: ``IPAllowList`` empty or ``null``.
- FAIL: it lists IPs: their mail skips spam filtering *and* SPF/DKIM/DMARC.
- MANUAL: connection filter policy not collected, or collected empty.
"""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import kinds
from dsguard.posture.base import Check
from dsguard.posture.values import MalformedValue, get, name_of, str_list
from dsguard.results import Finding


class ConnectionFilterAllowList(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        objs = snapshot.config(kinds.HOSTED_CONNECTION_FILTER_POLICY)
        if objs is None:
            return [self.not_collected(kinds.HOSTED_CONNECTION_FILTER_POLICY, "Default")]
        if not objs:
            return [self.collected_empty(kinds.HOSTED_CONNECTION_FILTER_POLICY,
                                         "connection filter policy", "Default")]
        findings: list[Finding] = []
        for index, policy in enumerate(objs):
            name = name_of(policy, f"connection filter policy #{index + 1}")
            raw = get(policy, "IPAllowList")
            evidence = {"IPAllowList": raw}
            try:
                ips = str_list(raw, "IPAllowList")
            except MalformedValue as exc:
                findings.append(self.malformed(name, exc, evidence=evidence))
                continue
            if ips:
                findings.append(
                    self.finding(
                        "FAIL",
                        name,
                        f"IPAllowList holds {len(ips)} entries ({', '.join(ips[:5])}"
                        f"{' ...' if len(ips) > 5 else ''}): their mail skips spam filtering "
                        "and sender authentication",
                        evidence={"IPAllowList": ips},
                        values={"policy": name},
                    )
                )
            else:
                findings.append(self.finding("PASS", name, "IPAllowList is empty",
                                             evidence=evidence))
        return findings
