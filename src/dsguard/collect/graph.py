"""Microsoft Graph reads: the tenant's domains, apps that can send as anyone, sign-ins.

Apps: one call per resource, as the posture catalogue recommends (DS-APP-001): the Microsoft
Graph and Office 365 Exchange Online service principals with their ``appRoles`` (so role ids
are resolved by name, never hard-coded) and their ``appRoleAssignedTo`` kept to the mail
roles, then each granted principal's identity. ``posture/apps.py`` reads exactly that.

Sign-ins: ``auditLogs/signIns`` for the period, limited to the senders that matter, a few
user principal names per request (an OData ``or`` chain), paged with ``@odata.nextLink``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from dsguard.collect.errors import ApiError
from dsguard.collect.http import ApiClient
from dsguard.collect.state import Period, iso, parse_iso
from dsguard.posture.apps import EXCHANGE_APP_ID, GRAPH_APP_ID, MAIL_ROLES, WELL_KNOWN_ROLES

APPS_PERMISSION = "the Microsoft Graph application permission Application.Read.All"
ORG_PERMISSION = (
    "the Microsoft Graph application permission Organization.Read.All or Directory.Read.All"
)
SIGNINS_PERMISSION = (
    "the Microsoft Graph application permissions AuditLog.Read.All and Directory.Read.All "
    "(with admin consent), and an Entra ID P1 or P2 licence"
)
RESOURCES = (GRAPH_APP_ID, EXCHANGE_APP_ID)
_SP_SELECT = "id,appId,displayName,appOwnerOrganizationId,servicePrincipalType,accountEnabled"


def organization(client: ApiClient) -> dict[str, Any]:
    """The tenant's ``organization`` object: its id and verified domains."""
    doc = client.request(
        "GET",
        "v1.0/organization",
        permission=ORG_PERMISSION,
        params={"$select": "id,displayName,verifiedDomains"},
    )
    value = doc.get("value") if isinstance(doc, dict) else None
    return value[0] if isinstance(value, list) and value and isinstance(value[0], dict) else {}


def verified_domains(org: dict[str, Any]) -> list[str]:
    """Verified domain names, the initial (``onmicrosoft.com``) one first."""
    doms = [d for d in org.get("verifiedDomains") or [] if isinstance(d, dict) and d.get("name")]
    doms.sort(key=lambda d: (not d.get("isInitial"), str(d["name"]).lower()))
    return [str(d["name"]).lower() for d in doms]


def initial_domain(org: dict[str, Any]) -> str | None:
    for d in org.get("verifiedDomains") or []:
        if isinstance(d, dict) and d.get("isInitial") and d.get("name"):
            return str(d["name"]).lower()
    return None


def mail_service_principals(
    client: ApiClient, warn: Callable[[str], None], progress: Callable[[int, int, str], None]
) -> list[dict[str, Any]]:
    """The Graph and Exchange resource service principals with their mail-role grants, and
    every service principal those grants name (see the module docstring)."""
    out: list[dict[str, Any]] = []
    principals: dict[str, str] = {}
    for i, app_id in enumerate(RESOURCES):
        progress(i, len(RESOURCES) + 1, f"resource {app_id[:8]}")
        try:
            sp = client.request(
                "GET",
                f"v1.0/servicePrincipals(appId='{app_id}')",
                permission=APPS_PERMISSION,
                params={"$select": _SP_SELECT + ",appRoles"},
            )
        except ApiError as exc:
            if exc.status != 404:
                raise
            warn(f"no service principal for resource app {app_id} in this tenant")
            continue
        if not isinstance(sp, dict) or not sp.get("id"):
            continue
        wanted = _mail_role_ids(sp)
        grants: list[dict[str, Any]] = []
        for value, _ in client.pages(
            "GET",
            f"v1.0/servicePrincipals/{sp['id']}/appRoleAssignedTo",
            permission=APPS_PERMISSION,
            params={"$top": "999"},
        ):
            for a in value:
                if isinstance(a, dict) and str(a.get("appRoleId", "")).lower() in wanted:
                    grants.append(a)
                    pid = str(a.get("principalId") or "")
                    if pid:
                        principals.setdefault(pid.lower(), pid)
        sp = {k: v for k, v in sp.items() if not k.startswith("@odata")}
        sp["appRoleAssignedTo"] = grants
        out.append(sp)
    progress(len(RESOURCES), len(RESOURCES) + 1, f"{len(principals)} apps")
    for pid in sorted(principals.values()):
        try:
            app = client.request(
                "GET",
                f"v1.0/servicePrincipals/{pid}",
                permission=APPS_PERMISSION,
                params={"$select": _SP_SELECT},
            )
        except ApiError as exc:
            if exc.status != 404:
                raise
            warn(f"service principal {pid} holds a mail role but no longer exists")
            continue
        if isinstance(app, dict):
            out.append({k: v for k, v in app.items() if not k.startswith("@odata")})
    progress(len(RESOURCES) + 1, len(RESOURCES) + 1, f"{len(principals)} apps")
    return out


def _mail_role_ids(sp: dict[str, Any]) -> set[str]:
    """Ids of the resource's app roles that let an app send or act as any mailbox."""
    names = dict(WELL_KNOWN_ROLES)
    for role in sp.get("appRoles") or []:
        if isinstance(role, dict) and role.get("id") and role.get("value"):
            names[str(role["id"]).lower()] = str(role["value"])
    return {rid for rid, name in names.items() if name in MAIL_ROLES}


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def signin_filter(period: Period, upns: Iterable[str]) -> str:
    """``createdDateTime`` range (``ge``/``le``: what the API supports) and the senders."""
    who = " or ".join(f"userPrincipalName eq {_quote(u)}" for u in upns)
    return (
        f"createdDateTime ge {iso(period.start)} and createdDateTime le {iso(period.end)}"
        + (f" and ({who})" if who else "")
    )


def signins(client: ApiClient, period: Period, upns: list[str]) -> Iterator[dict[str, Any]]:
    """The sign-ins of ``upns`` in ``[start, end)``, each once."""
    seen: set[str] = set()
    params = {"$filter": signin_filter(period, upns), "$top": "1000"}
    for value, _ in client.pages(
        "GET", "v1.0/auditLogs/signIns", permission=SIGNINS_PERMISSION, params=params
    ):
        for item in value:
            if not isinstance(item, dict):
                continue
            try:
                when = parse_iso(str(item.get("createdDateTime")))
            except ValueError:
                when = None
            if when is not None and not period.start <= when < period.end:
                continue
            key = str(item.get("id") or "")
            if key and key in seen:
                continue
            seen.add(key)
            yield item
