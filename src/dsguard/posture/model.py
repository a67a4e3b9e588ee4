"""Typed views over the configuration objects checks reason about, raw object kept beside.

Each view is built from one normalised ``ConvertTo-Json`` object and carries the derived
facts several checks and the exposure model share (a connector is "restricted", a transport
rule "bypasses spam filtering for a sender domain"). Building a view raises
``MalformedValue`` when a property cannot mean anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dsguard.posture.values import (
    as_bool,
    as_int,
    as_str,
    connector_domain,
    domain_matches,
    get,
    is_subdomain,
    name_of,
    str_list,
)

Obj = Mapping[str, Any]

# --------------------------------------------------------------------- accepted domains


@dataclass(frozen=True)
class AcceptedDomain:
    """``Get-AcceptedDomain``: what counts as "ours" for Direct Send and DMARC."""

    name: str
    domain_type: str | None
    match_subdomains: bool
    initial: bool
    coexistence: bool
    sending_disabled: bool
    default: bool
    raw: Obj = field(repr=False, compare=False)

    @classmethod
    def from_obj(cls, obj: Obj) -> AcceptedDomain | None:
        name = as_str(get(obj, "DomainName", "Name", "Identity"))
        if not name:
            return None
        name = name.lower().rstrip(".")
        return cls(
            name=name,
            domain_type=as_str(get(obj, "DomainType")),
            match_subdomains=bool(as_bool(get(obj, "MatchSubDomains"), "MatchSubDomains")),
            initial=bool(as_bool(get(obj, "InitialDomain"), "InitialDomain")),
            coexistence=bool(as_bool(get(obj, "IsCoexistenceDomain"), "IsCoexistenceDomain"))
            or name.endswith(".mail.onmicrosoft.com"),
            sending_disabled=bool(
                as_bool(get(obj, "SendingFromDomainDisabled"), "SendingFromDomainDisabled")
            ),
            default=bool(as_bool(get(obj, "Default"), "Default")),
            raw=obj,
        )

    @property
    def parked(self) -> bool:
        """A domain that must not send mail (``SendingFromDomainDisabled``)."""
        return self.sending_disabled

    @property
    def role(self) -> str:
        return "parked" if self.parked else "sending"

    @property
    def in_dns_scope(self) -> bool:
        """SPF, DKIM and MX checks skip the MOERA and coexistence domains (CIS 2.1.8)."""
        return not (self.initial or self.coexistence)

    @property
    def in_dmarc_scope(self) -> bool:
        """DMARC checks keep the MOERA domain (CIS 2.1.10) and drop coexistence."""
        return not self.coexistence

    def evidence(self) -> dict[str, Any]:
        return {
            "DomainName": self.name,
            "DomainType": self.domain_type,
            "MatchSubDomains": self.match_subdomains,
            "InitialDomain": self.initial,
            "IsCoexistenceDomain": self.coexistence,
            "SendingFromDomainDisabled": self.sending_disabled,
            "role": self.role,
        }


def accepted_domains(objs: Iterable[Obj]) -> list[AcceptedDomain]:
    out = [d for d in (AcceptedDomain.from_obj(o) for o in objs) if d is not None]
    return sorted(out, key=lambda d: d.name)


def is_own_domain(domain: str, accepted: Iterable[AcceptedDomain]) -> bool:
    """Equal to an accepted domain, or below one (any subdomain can be spoofed as ours)."""
    domain = domain.lower().rstrip(".")
    return any(domain == a.name or is_subdomain(domain, a.name) for a in accepted)


# ------------------------------------------------------------------------- connectors

_CN = re.compile(r"CN=([^,<]+)", re.IGNORECASE)


@dataclass(frozen=True)
class InboundConnector:
    """``Get-InboundConnector`` with the facts DS-CON-* and the exposure model need."""

    name: str
    enabled: bool
    connector_type: str
    sender_domains: tuple[str, ...]
    sender_ips: tuple[str, ...]
    restrict_to_ip: bool
    restrict_to_certificate: bool
    require_tls: bool
    tls_sender_certificate_name: str | None
    treat_as_internal: bool
    cloud_services_mail: bool
    connector_source: str | None
    ef_skip_ips: tuple[str, ...]
    ef_skip_last_ip: bool
    ef_test_mode: bool
    ef_users: tuple[str, ...]
    raw: Obj = field(repr=False, compare=False)

    @classmethod
    def from_obj(cls, obj: Obj, index: int = 0) -> InboundConnector:
        enabled = as_bool(get(obj, "Enabled"), "Enabled")
        return cls(
            name=name_of(obj, f"inbound connector #{index + 1}"),
            enabled=True if enabled is None else enabled,
            connector_type=as_str(get(obj, "ConnectorType")) or "Partner",
            sender_domains=tuple(
                connector_domain(d) for d in str_list(get(obj, "SenderDomains"), "SenderDomains")
            ),
            sender_ips=tuple(str_list(get(obj, "SenderIPAddresses"), "SenderIPAddresses")),
            restrict_to_ip=bool(
                as_bool(get(obj, "RestrictDomainsToIPAddresses"), "RestrictDomainsToIPAddresses")
            ),
            restrict_to_certificate=bool(
                as_bool(get(obj, "RestrictDomainsToCertificate"), "RestrictDomainsToCertificate")
            ),
            require_tls=bool(as_bool(get(obj, "RequireTls"), "RequireTls")),
            tls_sender_certificate_name=as_str(get(obj, "TlsSenderCertificateName")),
            treat_as_internal=bool(
                as_bool(get(obj, "TreatMessagesAsInternal"), "TreatMessagesAsInternal")
            ),
            cloud_services_mail=bool(
                as_bool(get(obj, "CloudServicesMailEnabled"), "CloudServicesMailEnabled")
            ),
            connector_source=as_str(get(obj, "ConnectorSource")),
            ef_skip_ips=tuple(str_list(get(obj, "EFSkipIPs"), "EFSkipIPs")),
            ef_skip_last_ip=bool(as_bool(get(obj, "EFSkipLastIP"), "EFSkipLastIP")),
            ef_test_mode=bool(as_bool(get(obj, "EFTestMode"), "EFTestMode")),
            ef_users=tuple(str_list(get(obj, "EFUsers"), "EFUsers")),
            raw=obj,
        )

    @property
    def is_partner(self) -> bool:
        return self.connector_type.lower() == "partner"

    @property
    def is_on_premises(self) -> bool:
        return self.connector_type.lower() == "onpremises"

    @property
    def certificate_domain(self) -> str | None:
        """The domain in ``TlsSenderCertificateName`` (plain, or the CN of ``<I>..<S>..``)."""
        value = self.tls_sender_certificate_name
        if not value:
            return None
        if "<S>" in value or "CN=" in value.upper():
            subject = value.split("<S>", 1)[-1]
            match = _CN.search(subject)
            return match.group(1).strip().lower() if match else None
        return value.strip().lower().rstrip(".")

    @property
    def ip_restricted(self) -> bool:
        """Partner connector that rejects its sender domains from any other IP."""
        return self.restrict_to_ip and bool(self.sender_ips)

    @property
    def cert_restricted(self) -> bool:
        """Partner connector that requires TLS with a named certificate."""
        return (
            self.restrict_to_certificate
            and bool(self.tls_sender_certificate_name)
            and self.require_tls
        )

    @property
    def restricted(self) -> bool:
        return self.ip_restricted or self.cert_restricted

    @property
    def wildcard(self) -> bool:
        return "*" in self.sender_domains

    def covers(self, domain: str) -> bool:
        """Whether mail claiming ``domain`` falls in this connector's ``SenderDomains``."""
        return any(domain_matches(domain, d) for d in self.sender_domains)

    @property
    def ef_candidate(self) -> bool:
        """Enhanced Filtering applies to connectors scoped to every domain (ORCA.233)."""
        return self.enabled and self.wildcard

    @property
    def ef_effective(self) -> bool:
        """EF is on: skip IPs or last-IP set, not in test mode, not limited to users."""
        return (
            (bool(self.ef_skip_ips) or self.ef_skip_last_ip)
            and not self.ef_test_mode
            and not self.ef_users
        )

    def evidence(self) -> dict[str, Any]:
        return {
            "Name": self.name,
            "Enabled": self.enabled,
            "ConnectorType": self.connector_type,
            "SenderDomains": list(self.sender_domains),
            "SenderIPAddresses": list(self.sender_ips),
            "RestrictDomainsToIPAddresses": self.restrict_to_ip,
            "RestrictDomainsToCertificate": self.restrict_to_certificate,
            "RequireTls": self.require_tls,
            "TlsSenderCertificateName": self.tls_sender_certificate_name,
            "TreatMessagesAsInternal": self.treat_as_internal,
            "CloudServicesMailEnabled": self.cloud_services_mail,
            "ConnectorSource": self.connector_source,
        }


def inbound_connectors(objs: Iterable[Obj]) -> list[InboundConnector]:
    return [InboundConnector.from_obj(o, i) for i, o in enumerate(objs)]


# ---------------------------------------------------------------------- transport rules

FILTER_SKIP_HEADERS: dict[str, str] = {
    "x-ms-exchange-organization-skipsafelinksprocessing": "Safe Links",
    "x-ms-exchange-organization-skipsafeattachmentprocessing": "Safe Attachments",
    "x-forefront-antispam-report": "spam verdict (e.g. SFV:SKN)",
    "x-ms-exchange-organization-bypassclutter": "Clutter / Focused Inbox",
}
_AUTH_RESULTS = "authentication-results"
_HAS_LOCAL_PART = re.compile(r".+@")


def _bare_domains(values: Iterable[str]) -> list[str]:
    """Entries of ``FromAddressContainsWords``/``MatchesPatterns`` that name a whole domain."""
    out = []
    for value in values:
        if _HAS_LOCAL_PART.search(value):
            continue
        text = value.replace("\\", "").lstrip("@").strip("^$").strip().lower()
        if "." in text and " " not in text:
            out.append(text)
    return out


@dataclass(frozen=True)
class TransportRule:
    """``Get-TransportRule``, keeping state, mode, header gating and IP gating."""

    name: str
    enabled: bool
    mode: str
    priority: int | None
    set_scl: int | None
    sender_domain_is: tuple[str, ...]
    from_address_words: tuple[str, ...]
    from_address_patterns: tuple[str, ...]
    sender_ip_ranges: tuple[str, ...]
    from_scope: str | None
    set_header_name: str | None
    set_header_value: str | None
    prepend_subject: str | None
    quarantines: bool
    rejects: bool
    deletes: bool
    auth_gated: bool
    raw: Obj = field(repr=False, compare=False)

    @classmethod
    def from_obj(cls, obj: Obj, index: int = 0) -> TransportRule:
        state = as_str(get(obj, "State")) or "Enabled"
        header_gates = [
            as_str(get(obj, key))
            for key in (
                "HeaderContainsMessageHeader",
                "HeaderMatchesMessageHeader",
                "ExceptIfHeaderContainsMessageHeader",
                "ExceptIfHeaderMatchesMessageHeader",
            )
        ]
        return cls(
            name=name_of(obj, f"transport rule #{index + 1}"),
            enabled=state.lower() == "enabled",
            mode=as_str(get(obj, "Mode")) or "Enforce",
            priority=as_int(get(obj, "Priority"), "Priority"),
            set_scl=as_int(get(obj, "SetSCL"), "SetSCL"),
            sender_domain_is=tuple(
                d.lower().rstrip(".")
                for d in str_list(get(obj, "SenderDomainIs"), "SenderDomainIs")
            ),
            from_address_words=tuple(
                str_list(get(obj, "FromAddressContainsWords"), "FromAddressContainsWords")
            ),
            from_address_patterns=tuple(
                str_list(get(obj, "FromAddressMatchesPatterns"), "FromAddressMatchesPatterns")
            ),
            sender_ip_ranges=tuple(str_list(get(obj, "SenderIpRanges"), "SenderIpRanges")),
            from_scope=as_str(get(obj, "FromScope")),
            set_header_name=as_str(get(obj, "SetHeaderName")),
            set_header_value=as_str(get(obj, "SetHeaderValue")),
            prepend_subject=as_str(get(obj, "PrependSubject")),
            quarantines=bool(as_bool(get(obj, "Quarantine"), "Quarantine")),
            rejects=bool(
                as_str(get(obj, "RejectMessageReasonText"))
                or as_str(get(obj, "RejectMessageEnhancedStatusCode"))
            ),
            deletes=bool(as_bool(get(obj, "DeleteMessage"), "DeleteMessage")),
            auth_gated=any(h and _AUTH_RESULTS in h.lower() for h in header_gates),
            raw=obj,
        )

    @property
    def active(self) -> bool:
        """Enabled and enforcing (not audit-only)."""
        return self.enabled and self.mode.lower() == "enforce"

    @property
    def sender_domains(self) -> list[str]:
        """Sender domains the rule keys on: ``SenderDomainIs`` and bare-domain From words."""
        keyed = list(self.sender_domain_is)
        keyed += _bare_domains(self.from_address_words)
        keyed += _bare_domains(self.from_address_patterns)
        return list(dict.fromkeys(keyed))

    @property
    def ip_gated(self) -> bool:
        return bool(self.sender_ip_ranges)

    @property
    def scl_bypass(self) -> bool:
        """``SetSCL -1`` keyed on a sender domain, not gated by auth header or sender IP."""
        return (
            self.set_scl == -1
            and bool(self.sender_domains)
            and not self.auth_gated
            and not self.ip_gated
        )

    @property
    def skipped_protection(self) -> str | None:
        """What the header this rule stamps switches off, if it is a filter-skip header."""
        if not self.set_header_name:
            return None
        return FILTER_SKIP_HEADERS.get(self.set_header_name.strip().lower())

    @property
    def blocks(self) -> bool:
        """An action that keeps the message from the inbox (SCL ≥ 5, quarantine, reject)."""
        return (self.set_scl is not None and self.set_scl >= 5) or (
            self.quarantines or self.rejects or self.deletes
        )

    def evidence(self) -> dict[str, Any]:
        return {
            "Name": self.name,
            "State": "Enabled" if self.enabled else "Disabled",
            "Mode": self.mode,
            "Priority": self.priority,
            "SetSCL": self.set_scl,
            "SenderDomainIs": list(self.sender_domain_is),
            "FromAddressContainsWords": list(self.from_address_words),
            "FromAddressMatchesPatterns": list(self.from_address_patterns),
            "SenderIpRanges": list(self.sender_ip_ranges),
            "FromScope": self.from_scope,
            "SetHeaderName": self.set_header_name,
            "SetHeaderValue": self.set_header_value,
            "AuthenticationResultsGated": self.auth_gated,
        }


def transport_rules(objs: Iterable[Obj]) -> list[TransportRule]:
    return [TransportRule.from_obj(o, i) for i, o in enumerate(objs)]


# ----------------------------------------------------------------- anti-phishing policy


@dataclass(frozen=True)
class AntiPhishPolicy:
    """``Get-AntiPhishPolicy`` joined with the state of its ``Get-AntiPhishRule``."""

    name: str
    is_default: bool
    enabled: bool
    spoof_intelligence: bool | None
    honor_dmarc: bool | None
    authentication_fail_action: str | None
    dmarc_reject_action: str | None
    dmarc_quarantine_action: str | None
    unauthenticated_sender: bool | None
    rule_state: str | None
    raw: Obj = field(repr=False, compare=False)

    @classmethod
    def from_obj(
        cls, obj: Obj, rules: Mapping[str, str] | None, index: int = 0
    ) -> AntiPhishPolicy:
        name = name_of(obj, f"anti-phishing policy #{index + 1}")
        is_default = bool(as_bool(get(obj, "IsDefault"), "IsDefault")) or (
            name.lower() == "office365 antiphish default"
        )
        enabled = as_bool(get(obj, "Enabled"), "Enabled")
        rule_state = None if rules is None else rules.get(name.lower())
        return cls(
            name=name,
            is_default=is_default,
            enabled=True if enabled is None else enabled,
            spoof_intelligence=as_bool(
                get(obj, "EnableSpoofIntelligence"), "EnableSpoofIntelligence"
            ),
            honor_dmarc=as_bool(get(obj, "HonorDmarcPolicy"), "HonorDmarcPolicy"),
            authentication_fail_action=as_str(get(obj, "AuthenticationFailAction")),
            dmarc_reject_action=as_str(get(obj, "DmarcRejectAction")),
            dmarc_quarantine_action=as_str(get(obj, "DmarcQuarantineAction")),
            unauthenticated_sender=as_bool(
                get(obj, "EnableUnauthenticatedSender"), "EnableUnauthenticatedSender"
            ),
            rule_state=rule_state,
            raw=obj,
        )

    @property
    def applies(self) -> bool | None:
        """Default policy: always (as the fallback). Others: when their rule is enabled;
        ``None`` when the rules were not collected."""
        if self.is_default:
            return self.enabled
        if self.rule_state is None:
            return None
        return self.enabled and self.rule_state.lower() == "enabled"

    @property
    def honours_spoof_protection(self) -> bool:
        """Spoof intelligence on and DMARC honoured; ``null`` means the default (``True``)."""
        return self.spoof_intelligence is not False and self.honor_dmarc is not False

    def evidence(self) -> dict[str, Any]:
        return {
            "Name": self.name,
            "IsDefault": self.is_default,
            "Enabled": self.enabled,
            "RuleState": self.rule_state,
            "EnableSpoofIntelligence": self.spoof_intelligence,
            "HonorDmarcPolicy": self.honor_dmarc,
            "AuthenticationFailAction": self.authentication_fail_action,
            "DmarcRejectAction": self.dmarc_reject_action,
            "DmarcQuarantineAction": self.dmarc_quarantine_action,
            "EnableUnauthenticatedSender": self.unauthenticated_sender,
        }


def anti_phish_rule_states(objs: Iterable[Obj] | None) -> dict[str, str] | None:
    """``{policy name (lower): rule State}`` from ``Get-AntiPhishRule``."""
    if objs is None:
        return None
    out: dict[str, str] = {}
    for obj in objs:
        policy = as_str(get(obj, "AntiPhishPolicy", "Policy"))
        if policy:
            out[policy.lower()] = as_str(get(obj, "State")) or "Enabled"
    return out


def anti_phish_policies(
    objs: Iterable[Obj], rules: Iterable[Obj] | None
) -> list[AntiPhishPolicy]:
    states = anti_phish_rule_states(rules)
    return [AntiPhishPolicy.from_obj(o, states, i) for i, o in enumerate(objs)]
