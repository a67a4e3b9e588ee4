"""The configuration kinds posture checks read, in one place.

A *kind* is the stem of a bundle file: ``exchange/inbound_connectors.json`` is the kind
``inbound_connectors``. ``Snapshot.config(kind)`` returns that file's normalised
``Get-* | ConvertTo-Json`` objects, ``[]`` when the file was collected but held none, and
``None`` when it was not collected at all; checks answer those two cases differently.

``KINDS`` records, for each kind, the cmdlet or API call that produces it and the bundle path a
collector (``dsguard collect``, the synthetic-tenant generator, a person exporting by hand)
writes it to. ``DNS`` is not a config kind: DNS records come from ``dns.json`` through
``Snapshot.dns``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

ORGANIZATION_CONFIG: Final = "organization_config"
TRANSPORT_CONFIG: Final = "transport_config"
ACCEPTED_DOMAINS: Final = "accepted_domains"
INBOUND_CONNECTORS: Final = "inbound_connectors"
TRANSPORT_RULES: Final = "transport_rules"
HOSTED_CONNECTION_FILTER_POLICY: Final = "hosted_connection_filter_policy"
HOSTED_CONTENT_FILTER_POLICY: Final = "hosted_content_filter_policy"
ANTI_PHISH_POLICIES: Final = "anti_phish_policies"
ANTI_PHISH_RULES: Final = "anti_phish_rules"
DKIM_SIGNING_CONFIG: Final = "dkim_signing_config"
CAS_MAILBOX: Final = "cas_mailbox"
TENANT_ALLOW_BLOCK_LIST_SPOOF_ITEMS: Final = "tenant_allow_block_list_spoof_items"
ARC_CONFIG: Final = "arc_config"
EXTERNAL_IN_OUTLOOK: Final = "external_in_outlook"
MANAGEMENT_ROLE_ASSIGNMENTS: Final = "management_role_assignments"
APPLICATION_ACCESS_POLICIES: Final = "application_access_policies"
SERVICE_PRINCIPALS: Final = "service_principals"
# Proposed by the posture checks (DS-CON-005); no collector writes it yet.
PROTECTION_ALERTS: Final = "protection_alerts"

# Pseudo-input naming the captured DNS records (``dns.json``) in check metadata.
DNS: Final = "dns"


@dataclass(frozen=True)
class KindInfo:
    """Where a kind comes from and where it lives in the bundle."""

    source: str
    bundle_path: str


KINDS: Final[dict[str, KindInfo]] = {
    ORGANIZATION_CONFIG: KindInfo("Get-OrganizationConfig", "exchange/organization_config.json"),
    TRANSPORT_CONFIG: KindInfo("Get-TransportConfig", "exchange/transport_config.json"),
    ACCEPTED_DOMAINS: KindInfo("Get-AcceptedDomain", "exchange/accepted_domains.json"),
    INBOUND_CONNECTORS: KindInfo("Get-InboundConnector", "exchange/inbound_connectors.json"),
    TRANSPORT_RULES: KindInfo("Get-TransportRule", "exchange/transport_rules.json"),
    HOSTED_CONNECTION_FILTER_POLICY: KindInfo(
        "Get-HostedConnectionFilterPolicy", "exchange/hosted_connection_filter_policy.json"
    ),
    HOSTED_CONTENT_FILTER_POLICY: KindInfo(
        "Get-HostedContentFilterPolicy", "exchange/hosted_content_filter_policy.json"
    ),
    ANTI_PHISH_POLICIES: KindInfo("Get-AntiPhishPolicy", "exchange/anti_phish_policies.json"),
    ANTI_PHISH_RULES: KindInfo("Get-AntiPhishRule", "exchange/anti_phish_rules.json"),
    DKIM_SIGNING_CONFIG: KindInfo("Get-DkimSigningConfig", "exchange/dkim_signing_config.json"),
    CAS_MAILBOX: KindInfo(
        "Get-CASMailbox -ResultSize Unlimited "
        '-Filter "SmtpClientAuthenticationDisabled -eq $false"',
        "exchange/cas_mailbox.json",
    ),
    TENANT_ALLOW_BLOCK_LIST_SPOOF_ITEMS: KindInfo(
        "Get-TenantAllowBlockListSpoofItems -SpoofType Internal",
        "exchange/tenant_allow_block_list_spoof_items.json",
    ),
    ARC_CONFIG: KindInfo("Get-ArcConfig", "exchange/arc_config.json"),
    EXTERNAL_IN_OUTLOOK: KindInfo("Get-ExternalInOutlook", "exchange/external_in_outlook.json"),
    MANAGEMENT_ROLE_ASSIGNMENTS: KindInfo(
        "Get-ManagementRoleAssignment -RoleAssigneeType ServicePrincipal",
        "exchange/management_role_assignments.json",
    ),
    APPLICATION_ACCESS_POLICIES: KindInfo(
        "Get-ApplicationAccessPolicy", "exchange/application_access_policies.json"
    ),
    SERVICE_PRINCIPALS: KindInfo(
        "Graph GET /servicePrincipals (with appRoles and appRoleAssignments)",
        "graph/service_principals.json",
    ),
    PROTECTION_ALERTS: KindInfo("Get-ProtectionAlert (S&C)", "exchange/protection_alerts.json"),
}

# Everything a check may declare as an input.
INPUTS: Final[frozenset[str]] = frozenset(KINDS) | {DNS}


def describe(kind: str) -> str:
    """``Get-InboundConnector (exchange/inbound_connectors.json)``, for status messages."""
    info = KINDS.get(kind)
    return f"{info.source} ({info.bundle_path})" if info else kind
