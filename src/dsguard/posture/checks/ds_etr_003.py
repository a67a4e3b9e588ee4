"""DS-ETR-003: external senders are identified, and the allow list spares none of ours.

- PASS: ``Get-ExternalInOutlook`` is enabled, or an enabled, enforcing rule prepends a subject
  tag for ``FromScope NotInOrganization`` (ScubaGear MS.EXO.7.1v1), and the ExternalInOutlook
  ``AllowList`` holds neither ``*`` nor an accepted domain.
- FAIL: neither form of tagging, or the allow list exempts our own domains.
- MANUAL: neither ExternalInOutlook nor transport rules collected.

Evidence also names any *compensating rule* for anonymous own-domain mail (FromScope
NotInOrganization + SenderDomainIs covering our sending domains + SCL ≥ 5, quarantine or
reject). Whether such a rule, or an [External] tag, matches Direct Send spoofs at all is
unverified [verify]; the tool never assumes it does.
"""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import kinds
from dsguard.posture.base import Check
from dsguard.posture.model import (
    AcceptedDomain,
    TransportRule,
    accepted_domains,
    is_own_domain,
    transport_rules,
)
from dsguard.posture.values import as_bool, get, name_of, str_list
from dsguard.results import Finding


def tagging_rules(rules: list[TransportRule]) -> list[TransportRule]:
    """Rules meeting ScubaGear's MS.EXO.7.1v1 test."""
    return [
        r
        for r in rules
        if r.active and r.prepend_subject and (r.from_scope or "").lower() == "notinorganization"
    ]


def compensating_rules(
    rules: list[TransportRule], domains: list[AcceptedDomain]
) -> list[TransportRule]:
    """Enforced rules that push anonymous own-domain mail out of the inbox [verify]."""
    sending = {d.name for d in domains if not d.parked and not d.coexistence}
    out = []
    for r in rules:
        if not (r.active and (r.from_scope or "").lower() == "notinorganization" and r.blocks):
            continue
        keyed = set(r.sender_domain_is)
        if sending and sending <= keyed:
            out.append(r)
    return out


class ExternalSenderIdentification(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        eio = snapshot.config(kinds.EXTERNAL_IN_OUTLOOK)
        rule_objs = snapshot.config(kinds.TRANSPORT_RULES)
        if eio is None and rule_objs is None:
            return [self.not_collected(kinds.EXTERNAL_IN_OUTLOOK, "ExternalInOutlook")]
        domains = accepted_domains(snapshot.config(kinds.ACCEPTED_DOMAINS) or [])
        rules = transport_rules(rule_objs or [])
        evidence: dict[str, object] = {
            "external_in_outlook_collected": eio is not None,
            "transport_rules_collected": rule_objs is not None,
        }
        problems: list[str] = []
        tagged = False
        resource = "ExternalInOutlook"
        if eio:
            obj = eio[0]
            resource = name_of(obj, "ExternalInOutlook")
            enabled = as_bool(get(obj, "Enabled"), "Enabled")
            allow = [a.lower() for a in str_list(get(obj, "AllowList"), "AllowList")]
            evidence["ExternalInOutlook.Enabled"] = enabled
            evidence["ExternalInOutlook.AllowList"] = allow
            tagged = enabled is True
            own = [a for a in allow if a == "*" or is_own_domain(a.lstrip("@*."), domains)]
            if own:
                problems.append(
                    "ExternalInOutlook AllowList exempts our own domains or '*': "
                    + ", ".join(own)
                )
        tag_rules = tagging_rules(rules)
        evidence["tagging_rules"] = [r.name for r in tag_rules]
        compensating = compensating_rules(rules, domains)
        evidence["compensating_rules"] = [r.name for r in compensating]
        if tag_rules:
            tagged = True
            if resource == "ExternalInOutlook" and not eio:
                resource = tag_rules[0].name
        if not tagged:
            problems.insert(
                0,
                "external senders are not identified: ExternalInOutlook is off and no enforced "
                "rule prepends a subject tag for FromScope NotInOrganization",
            )
        note = (
            " Whether tagging reaches Direct Send spoofs of our own domain is unverified; "
            "do not rely on it for that."
        )
        if problems:
            return [self.finding("FAIL", resource, "; ".join(problems) + "." + note,
                                 evidence=evidence)]
        return [
            self.finding("PASS", resource, "external senders are identified." + note,
                         evidence=evidence)
        ]
