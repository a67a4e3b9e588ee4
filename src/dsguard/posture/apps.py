"""Applications that can send mail as anyone: Graph and Exchange app-role grants and scoping.

``graph/service_principals.json`` holds Graph ``servicePrincipal`` objects. Two shapes of
grant are read, so either collection route works:

- on the client app: ``appRoleAssignments: [{appRoleId, resourceId, resourceDisplayName}]``;
- on the resource (Microsoft Graph, Office 365 Exchange Online):
  ``appRoleAssignedTo: [{principalId, principalDisplayName, appRoleId}]``.

App-role ids are resolved by name from the resource's ``appRoles`` first, as the posture
catalogue asks; the well-known ids below are only a fallback (``SMTP.SendAsApp`` has no
fallback: ScubaGear lists two ids for it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dsguard.posture.values import as_str, get, str_list

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
WELL_KNOWN_ROLES: dict[str, str] = {
    "b633e1c5-b582-4048-a93e-9f11b44c7e96": "Mail.Send",
    "e2a3a72e-5f79-4c64-b1b1-878b674786c9": "Mail.ReadWrite",
    "dc890d15-9560-4a4c-9b7f-a736ec74ec40": "full_access_as_app",
    "dc50a0fb-09a3-484d-be87-e023b12c6440": "Exchange.ManageAsApp",
}
# Permissions that let an app send or act as any mailbox, and can be scoped to mailboxes.
MAIL_ROLES = frozenset({"Mail.Send", "Mail.ReadWrite", "SMTP.SendAsApp", "full_access_as_app"})
# Microsoft first-party tenants (Prowler's MICROSOFT_FIRST_PARTY_TENANT_IDS).
MICROSOFT_TENANTS = frozenset(
    {"72f988bf-86f1-41af-91ab-2d7cd011db47", "f8cdef31-a31e-4b4a-93e4-5f571e91255a"}
)

Obj = Mapping[str, Any]


@dataclass
class AppGrant:
    """One service principal and the mail permissions granted to it."""

    principal_id: str
    app_id: str | None
    name: str
    owner_tenant: str | None
    roles: set[str] = field(default_factory=set)

    @property
    def first_party(self) -> bool:
        return (self.owner_tenant or "").lower() in MICROSOFT_TENANTS


def _role_names(sps: list[Obj]) -> dict[str, str]:
    names = dict(WELL_KNOWN_ROLES)
    for sp in sps:
        for role in get(sp, "appRoles") or []:
            if isinstance(role, Mapping):
                rid = as_str(get(role, "id"))
                value = as_str(get(role, "value"))
                if rid and value:
                    names[rid.lower()] = value
    return names


def mail_grants(service_principals: Iterable[Obj]) -> list[AppGrant]:
    """Service principals holding a mailbox-wide mail permission (first-party included)."""
    sps = [sp for sp in service_principals if isinstance(sp, Mapping)]
    names = _role_names(sps)
    by_id: dict[str, AppGrant] = {}

    def grant(pid: str, fallback_name: str | None) -> AppGrant:
        if pid not in by_id:
            sp = next((s for s in sps if (as_str(get(s, "id")) or "").lower() == pid), None)
            by_id[pid] = AppGrant(
                principal_id=pid,
                app_id=as_str(get(sp, "appId")) if sp else None,
                name=(as_str(get(sp, "displayName")) if sp else None) or fallback_name or pid,
                owner_tenant=as_str(get(sp, "appOwnerOrganizationId")) if sp else None,
            )
        return by_id[pid]

    for sp in sps:
        pid = (as_str(get(sp, "id")) or as_str(get(sp, "appId")) or "").lower()
        for a in get(sp, "appRoleAssignments") or []:
            role = _assignment_role(a, names)
            if role in MAIL_ROLES and pid:
                grant(pid, as_str(get(sp, "displayName"))).roles.add(role)
        for a in get(sp, "appRoleAssignedTo") or []:
            role = _assignment_role(a, names)
            principal = (as_str(get(a, "principalId")) or "").lower()
            if role in MAIL_ROLES and principal:
                grant(principal, as_str(get(a, "principalDisplayName"))).roles.add(role)
    return sorted(by_id.values(), key=lambda g: g.name.lower())


def _assignment_role(assignment: Any, names: Mapping[str, str]) -> str | None:
    if not isinstance(assignment, Mapping):
        return None
    value = as_str(get(assignment, "appRoleValue", "permission"))
    if value:
        return value
    rid = (as_str(get(assignment, "appRoleId")) or "").lower()
    return names.get(rid)


@dataclass(frozen=True)
class Scoping:
    """How an app's mailbox access is limited in Exchange."""

    access_policies: tuple[str, ...]  # RestrictAccess/DenyAccess policy identities
    rbac_scoped: tuple[str, ...]  # RBAC-for-Apps assignments with a narrower scope
    rbac_org_wide: tuple[str, ...]  # RBAC-for-Apps assignments over the whole organisation


def scoping_for(
    app: AppGrant,
    access_policies: Iterable[Obj] | None,
    role_assignments: Iterable[Obj] | None,
) -> Scoping:
    """Application Access Policies and RBAC-for-Apps assignments that name this app."""
    keys = {k.lower() for k in (app.app_id, app.principal_id, app.name) if k}
    policies = []
    for p in access_policies or []:
        if (as_str(get(p, "AppId")) or "").lower() in keys:
            right = (as_str(get(p, "AccessRight")) or "").lower()
            if right in ("restrictaccess", "denyaccess"):
                policies.append(as_str(get(p, "Identity", "ScopeName")) or right)
    scoped, org = [], []
    for r in role_assignments or []:
        assignee = {
            (as_str(get(r, k)) or "").lower()
            for k in ("App", "RoleAssignee", "RoleAssigneeName", "AppId")
        }
        if not keys & assignee:
            continue
        name = as_str(get(r, "Name", "Identity")) or as_str(get(r, "Role")) or "assignment"
        scope = as_str(get(r, "CustomResourceScope"))
        write_scope = (as_str(get(r, "RecipientWriteScope")) or "").lower()
        if scope or write_scope in ("customrecipientscope", "administrativeunit"):
            scoped.append(name)
        else:
            org.append(name)
    return Scoping(tuple(policies), tuple(scoped), tuple(org))


def ews_allow_list(org: Obj) -> list[str]:
    return str_list(get(org, "EwsAllowList"), "EwsAllowList")
