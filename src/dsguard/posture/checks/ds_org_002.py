"""DS-ORG-002: SMTP AUTH is disabled for the organisation (``Get-TransportConfig``).

- PASS: ``SmtpClientAuthenticationDisabled`` is ``True``.
- FAIL: it is ``False``.
- MANUAL: transport config not collected or empty, the property absent/``null``, or malformed.
"""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import kinds
from dsguard.posture.base import Check
from dsguard.posture.values import MalformedValue, as_bool, get, has, name_of
from dsguard.results import Finding

PROPERTY = "SmtpClientAuthenticationDisabled"


class SmtpAuthDisabled(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        objs = snapshot.config(kinds.TRANSPORT_CONFIG)
        if objs is None:
            return [self.not_collected(kinds.TRANSPORT_CONFIG, PROPERTY)]
        if not objs:
            return [self.collected_empty(kinds.TRANSPORT_CONFIG, "transport config", PROPERTY)]
        config = objs[0]
        resource = PROPERTY  # an organisation-wide setting: named by the setting
        raw = get(config, PROPERTY)
        evidence = {
            PROPERTY: raw,
            "property_present": has(config, PROPERTY),
            "transport_config": name_of(config, "TransportConfig"),
        }
        try:
            value = as_bool(raw, PROPERTY)
        except MalformedValue as exc:
            return [self.malformed(resource, exc, evidence=evidence)]
        if value is True:
            return [self.finding("PASS", resource, "SMTP AUTH is disabled", evidence=evidence)]
        if value is False:
            return [
                self.finding(
                    "FAIL",
                    resource,
                    "SMTP AUTH is enabled for the organisation: any device or app holding a "
                    "password can send genuinely internal mail, without MFA",
                    evidence=evidence,
                )
            ]
        return [
            self.finding(
                "MANUAL",
                resource,
                f"{PROPERTY} is absent or null in the export; check it by hand",
                evidence=evidence,
            )
        ]
