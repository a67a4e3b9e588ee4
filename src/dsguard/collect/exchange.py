"""Exchange Online configuration through the admin API's ``InvokeCommand`` endpoint.

``POST <exchange>/adminapi/beta/<tenant>/InvokeCommand`` with
``{"CmdletInput": {"CmdletName": "Get-TransportRule", "Parameters": {}}}`` runs a read-only
``Get-*`` cmdlet without PowerShell (posture-checks.md §4, as ScubaGear does). Unlike
ScubaGear's helper we follow ``@odata.nextLink`` (the same body POSTed to the next link, as
the ExchangeOnlineManagement module does), so no cmdlet stops at 1,000 rows. Each cmdlet's
objects are saved as the JSON array ``ConvertTo-Json -InputObject @(...)`` writes, to the
bundle path ``posture/kinds.py`` names; ``scripts/collect-exchange.ps1`` writes the same files.

This is an undocumented ``beta`` surface: the request and response shapes are pinned by the
tests in ``tests/collect``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsguard.collect.errors import AccessDenied, ApiError, one_line
from dsguard.collect.http import ApiClient
from dsguard.collect.state import State, write_atomic
from dsguard.posture.kinds import (
    ACCEPTED_DOMAINS,
    ANTI_PHISH_POLICIES,
    ANTI_PHISH_RULES,
    APPLICATION_ACCESS_POLICIES,
    ARC_CONFIG,
    CAS_MAILBOX,
    DKIM_SIGNING_CONFIG,
    EXTERNAL_IN_OUTLOOK,
    HOSTED_CONNECTION_FILTER_POLICY,
    HOSTED_CONTENT_FILTER_POLICY,
    INBOUND_CONNECTORS,
    KINDS,
    MANAGEMENT_ROLE_ASSIGNMENTS,
    ORGANIZATION_CONFIG,
    TENANT_ALLOW_BLOCK_LIST_SPOOF_ITEMS,
    TRANSPORT_CONFIG,
    TRANSPORT_RULES,
)

PERMISSION = (
    "the Office 365 Exchange Online application permission Exchange.ManageAsApp and a role "
    "that can read Exchange configuration (Entra Global Reader, or the Exchange role group "
    "View-Only Organization Management)"
)
# The system mailbox the admin API routes requests by (ScubaGear, ExchangeOnlineManagement).
ANCHOR_MAILBOX = "UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@"


@dataclass(frozen=True)
class Cmdlet:
    """One ``Get-*`` call and the bundle file it fills."""

    kind: str
    name: str
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def bundle_path(self) -> str:
        info = KINDS.get(self.kind)
        return info.bundle_path if info else f"exchange/{self.kind}.json"


# posture-checks.md Appendix A, in the order the posture checks need them.
CMDLETS: tuple[Cmdlet, ...] = (
    Cmdlet(ORGANIZATION_CONFIG, "Get-OrganizationConfig"),
    Cmdlet(TRANSPORT_CONFIG, "Get-TransportConfig"),
    Cmdlet(ACCEPTED_DOMAINS, "Get-AcceptedDomain"),
    Cmdlet(INBOUND_CONNECTORS, "Get-InboundConnector"),
    Cmdlet(TRANSPORT_RULES, "Get-TransportRule"),
    Cmdlet(HOSTED_CONNECTION_FILTER_POLICY, "Get-HostedConnectionFilterPolicy"),
    Cmdlet(HOSTED_CONTENT_FILTER_POLICY, "Get-HostedContentFilterPolicy"),
    Cmdlet(ANTI_PHISH_POLICIES, "Get-AntiPhishPolicy"),
    Cmdlet(ANTI_PHISH_RULES, "Get-AntiPhishRule"),
    Cmdlet(DKIM_SIGNING_CONFIG, "Get-DkimSigningConfig"),
    Cmdlet(
        CAS_MAILBOX,
        "Get-CASMailbox",
        {"ResultSize": "Unlimited", "Filter": "SmtpClientAuthenticationDisabled -eq $false"},
    ),
    Cmdlet(TENANT_ALLOW_BLOCK_LIST_SPOOF_ITEMS, "Get-TenantAllowBlockListSpoofItems",
           {"SpoofType": "Internal"}),
    Cmdlet(ARC_CONFIG, "Get-ArcConfig"),
    Cmdlet(EXTERNAL_IN_OUTLOOK, "Get-ExternalInOutlook"),
    Cmdlet(MANAGEMENT_ROLE_ASSIGNMENTS, "Get-ManagementRoleAssignment",
           {"RoleAssigneeType": "ServicePrincipal"}),
    Cmdlet(APPLICATION_ACCESS_POLICIES, "Get-ApplicationAccessPolicy"),
    # Context Appendix A lists that no check reads yet; the kind names are this module's own
    # (``exchange_service_principals``, not ``service_principals``, which is Graph's kind).
    Cmdlet("outbound_connectors", "Get-OutboundConnector"),
    Cmdlet("cas_mailbox_plans", "Get-CASMailboxPlan"),
    Cmdlet("management_scopes", "Get-ManagementScope"),
    Cmdlet("exchange_service_principals", "Get-ServicePrincipal"),
)  # fmt: skip


def invoke(
    client: ApiClient, tenant: str, anchor_domain: str, cmdlet: Cmdlet
) -> tuple[list[Any], list[str]]:
    """Every object the cmdlet returns, across pages, and the ``@adminapi.warnings``."""
    body = {"CmdletInput": {"CmdletName": cmdlet.name, "Parameters": dict(cmdlet.parameters)}}
    headers = {
        "Prefer": "odata.maxpagesize=1000",
        "X-ResponseFormat": "json",
        "X-CmdletName": cmdlet.name,
        "X-AnchorMailbox": ANCHOR_MAILBOX + anchor_domain,
    }
    objects: list[Any] = []
    warnings: list[str] = []
    for value, page in client.pages(
        "POST",
        f"adminapi/beta/{tenant}/InvokeCommand",
        permission=PERMISSION,
        json_body=body,
        headers=headers,
    ):
        objects.extend(value)
        for w in page.get("@adminapi.warnings") or []:
            if isinstance(w, str) and w.strip() and one_line(w, 300) not in warnings:
                warnings.append(one_line(w, 300))
    return objects, warnings


def collect_exchange(
    client: ApiClient,
    bundle: Path,
    state: State,
    tenant: str,
    anchor_domain: str,
    progress: Callable[[int, int, str], None],
    warn: Callable[[str], None],
) -> tuple[int, int, list[str]]:
    """Run every cmdlet not yet saved; returns ``(files written, objects, failed kinds)``.

    A cmdlet the service rejects (not available in this tenant or plan) is reported and
    skipped, its file left absent ("not collected", which checks report as MANUAL); it is
    tried again on the next run. 401/403 stop the source: every cmdlet would fail alike.
    """
    files = objects = 0
    failed: list[str] = []
    total = len(CMDLETS)
    for i, cmdlet in enumerate(CMDLETS):
        unit = f"exchange:{cmdlet.kind}"
        if state.unit(unit) is not None:
            progress(i + 1, total, cmdlet.name)
            continue
        progress(i, total, cmdlet.name)
        try:
            rows, notes = invoke(client, tenant, anchor_domain, cmdlet)
        except AccessDenied:
            raise
        except ApiError as exc:
            failed.append(cmdlet.kind)
            warn(f"{cmdlet.name} was not collected: {exc}")
            continue
        for note in notes:
            warn(f"{cmdlet.name}: {note}")
        text = json.dumps(rows, ensure_ascii=False, indent=2) + "\n"
        write_atomic(bundle / cmdlet.bundle_path, text)
        state.finish(unit, objects=len(rows), file=cmdlet.bundle_path)
        files, objects = files + 1, objects + len(rows)
        progress(i + 1, total, cmdlet.name)
    return files, objects, failed


def accepted_domains(bundle: Path) -> list[str] | None:
    """``DomainName`` of every accepted domain the bundle holds, or None without the file."""
    from dsguard.sources.exchange_config import (
        ConfigJsonError,
        decode_text,
        normalise_powershell,
        parse_powershell_json,
    )

    path = bundle / KINDS[ACCEPTED_DOMAINS].bundle_path
    if not path.is_file():
        return None
    try:
        objs = parse_powershell_json(decode_text(path.read_bytes())[0])
    except ConfigJsonError:
        return None
    out: list[str] = []
    for obj in objs:
        if not isinstance(obj, dict):
            continue
        name = normalise_powershell(obj.get("DomainName") or obj.get("Name"))
        if isinstance(name, dict):  # Windows PowerShell serialises SmtpDomainWithSubdomains
            name = name.get("Domain") or name.get("Address")
        if isinstance(name, str) and name.strip() and name.strip().lower() not in out:
            out.append(name.strip().lower())
    return out
