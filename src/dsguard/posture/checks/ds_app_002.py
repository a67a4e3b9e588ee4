"""DS-APP-002: EWS application access is restricted to an allow list, or EWS is off.

EWS in Exchange Online is blocked from 2026-10-01 unless allowed, and retired on 2027-04-01.

- PASS: ``EwsEnabled`` is ``False``, or ``EwsApplicationAccessPolicy`` is
  ``EnforceAllowList`` with a non-empty ``EwsAllowList``.
- FAIL: EWS enabled (or not set) with a block list or no policy; evidence names apps holding
  ``full_access_as_app`` when service principals were collected.
- MANUAL: organisation config not collected or empty, or a malformed value.
"""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import kinds
from dsguard.posture.apps import ews_allow_list, mail_grants
from dsguard.posture.base import Check
from dsguard.posture.values import MalformedValue, as_bool, as_str, get, name_of
from dsguard.results import Finding


class EwsRestricted(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        objs = snapshot.config(kinds.ORGANIZATION_CONFIG)
        if objs is None:
            return [self.not_collected(kinds.ORGANIZATION_CONFIG, "EwsApplicationAccessPolicy")]
        if not objs:
            return [self.collected_empty(kinds.ORGANIZATION_CONFIG, "organisation",
                                         "EwsApplicationAccessPolicy")]
        org = objs[0]
        resource = "EwsApplicationAccessPolicy"  # an organisation-wide setting
        policy = as_str(get(org, "EwsApplicationAccessPolicy"))
        evidence: dict[str, object] = {
            "organization": name_of(org, "OrganizationConfig"),
            "EwsEnabled": get(org, "EwsEnabled"),
            "EwsApplicationAccessPolicy": policy,
        }
        try:
            enabled = as_bool(get(org, "EwsEnabled"), "EwsEnabled")
            allow = ews_allow_list(org)
        except MalformedValue as exc:
            return [self.malformed(resource, exc, evidence=evidence)]
        evidence["EwsAllowList"] = allow
        sps = snapshot.config(kinds.SERVICE_PRINCIPALS)
        if sps is not None:
            evidence["full_access_as_app"] = [
                g.name for g in mail_grants(sps) if "full_access_as_app" in g.roles
            ]
        if enabled is False:
            return [self.finding("PASS", resource, "EWS is disabled", evidence=evidence)]
        if (policy or "").lower() == "enforceallowlist" and allow:
            return [self.finding("PASS", resource,
                                 f"EWS limited to an allow list of {len(allow)} apps",
                                 evidence=evidence)]
        state = "enabled" if enabled else "not set (enabled until the 2026-10-01 block)"
        return [self.finding(
            "FAIL", resource,
            f"EWS is {state} and EwsApplicationAccessPolicy is {policy or 'not set'}"
            + (" with an empty allow list" if (policy or "").lower() == "enforceallowlist"
               else ""),
            evidence=evidence)]
