"""DS-CON-005: the "Suspicious connector activity" alert policy is enabled.

Reads ``Get-ProtectionAlert`` (Security & Compliance), a kind no collector writes yet.

- PASS: the alert exists and is not disabled.
- FAIL: it is disabled or missing.
- MANUAL: alert policies not collected.
"""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import kinds
from dsguard.posture.base import Check
from dsguard.posture.values import MalformedValue, as_bool, get, name_of
from dsguard.results import Finding

ALERT = "suspicious connector activity"


class ConnectorChangeAlerting(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        objs = snapshot.config(kinds.PROTECTION_ALERTS)
        if objs is None:
            return [self.not_collected(kinds.PROTECTION_ALERTS, "Suspicious connector activity")]
        matches = [o for o in objs if name_of(o, "").strip().lower() == ALERT]
        if not matches:
            return [
                self.finding(
                    "FAIL",
                    "Suspicious connector activity",
                    f"no 'Suspicious connector activity' alert among {len(objs)} alert policies",
                    evidence={"alerts_read": len(objs)},
                    values={"alert": "Suspicious connector activity"},
                )
            ]
        alert = matches[0]
        name = name_of(alert, "Suspicious connector activity")
        evidence = {"Name": name, "Disabled": get(alert, "Disabled")}
        try:
            disabled = as_bool(get(alert, "Disabled"), "Disabled")
        except MalformedValue as exc:
            return [self.malformed(name, exc, evidence=evidence)]
        if disabled:
            return [
                self.finding("FAIL", name, "the alert policy is disabled", evidence=evidence,
                             values={"alert": name})
            ]
        return [self.finding("PASS", name, "the alert policy is enabled", evidence=evidence)]
