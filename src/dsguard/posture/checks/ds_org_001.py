"""DS-ORG-001: RejectDirectSend is on.

- PASS: ``RejectDirectSend`` is ``True``.
- FAIL: ``False``, ``null`` or absent (never set means off, as Prowler reads it).
- MANUAL: organisation config not collected, collected empty, or a value that is no boolean.
"""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import kinds
from dsguard.posture.base import Check
from dsguard.posture.values import MalformedValue, as_bool, get, has, name_of
from dsguard.results import Finding


class RejectDirectSend(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        objs = snapshot.config(kinds.ORGANIZATION_CONFIG)
        if objs is None:
            return [self.not_collected(kinds.ORGANIZATION_CONFIG, "RejectDirectSend")]
        if not objs:
            return [
                self.collected_empty(kinds.ORGANIZATION_CONFIG, "organisation", "RejectDirectSend")
            ]
        org = objs[0]
        resource = "RejectDirectSend"  # an organisation-wide setting: named by the setting
        raw = get(org, "RejectDirectSend")
        evidence = {
            "RejectDirectSend": raw,
            "property_present": has(org, "RejectDirectSend"),
            "organization": name_of(org, "OrganizationConfig"),
        }
        try:
            value = as_bool(raw, "RejectDirectSend")
        except MalformedValue as exc:
            return [self.malformed(resource, exc, evidence=evidence)]
        if value is True:
            return [self.finding("PASS", resource, "RejectDirectSend is True", evidence=evidence)]
        why = (
            "RejectDirectSend is False"
            if value is False
            else "RejectDirectSend is not set (null or absent), which means False"
        )
        return [
            self.finding(
                "FAIL",
                resource,
                f"{why}: anonymous mail whose envelope sender is an accepted domain is "
                "accepted from any IP",
                evidence=evidence,
            )
        ]
