"""DS-FLT-004: no allowed *internal* spoof pairs in the Tenant Allow/Block List.

- PASS: no entry with ``Action`` Allow (``SpoofType`` Internal, or a spoofed user in one of
  our domains).
- FAIL (high): one finding per allowed pair: a hand-made Direct Send exemption that bypasses
  spoof intelligence.
- MANUAL: spoof items not collected.

Property names (``SpoofedUser``, ``SendingInfrastructure``, ``SpoofType``, ``Action``) are
from the cmdlet documentation and still need lab confirmation [verify].
"""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import kinds
from dsguard.posture.base import Check
from dsguard.posture.model import accepted_domains, is_own_domain
from dsguard.posture.values import as_str, get
from dsguard.results import Finding


class InternalSpoofAllowPairs(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        objs = snapshot.config(kinds.TENANT_ALLOW_BLOCK_LIST_SPOOF_ITEMS)
        if objs is None:
            return [self.not_collected(kinds.TENANT_ALLOW_BLOCK_LIST_SPOOF_ITEMS,
                                       "TenantAllowBlockListSpoofItems")]
        domains = accepted_domains(snapshot.config(kinds.ACCEPTED_DOMAINS) or [])
        findings: list[Finding] = []
        for obj in objs:
            action = (as_str(get(obj, "Action")) or "").lower()
            spoof_type = (as_str(get(obj, "SpoofType")) or "").lower()
            user = as_str(get(obj, "SpoofedUser")) or ""
            infra = as_str(get(obj, "SendingInfrastructure")) or ""
            user_domain = user.rsplit("@", 1)[-1].lower()
            internal = spoof_type == "internal" or (
                bool(user_domain) and is_own_domain(user_domain, domains)
            )
            if action != "allow" or not internal:
                continue
            pair = f"{user} via {infra}"
            identity = as_str(get(obj, "Identity", "Id")) or pair
            findings.append(
                self.finding(
                    "FAIL",
                    pair,
                    f"allowed internal spoof pair: {pair} bypasses spoof intelligence",
                    evidence={"SpoofedUser": user, "SendingInfrastructure": infra,
                              "SpoofType": get(obj, "SpoofType"), "Action": get(obj, "Action")},
                    values={"identity": identity},
                )
            )
        if not findings:
            findings.append(
                self.finding(
                    "PASS",
                    "TenantAllowBlockListSpoofItems",
                    f"no allowed internal spoof pairs ({len(objs)} entries read)",
                    evidence={"entries_read": len(objs)},
                )
            )
        return findings
