"""DS-APP-001: apps that can send as any mailbox are scoped to the mailboxes they need.

One finding per service principal holding ``Mail.Send``, ``Mail.ReadWrite``,
``SMTP.SendAsApp`` or ``full_access_as_app`` (Microsoft first-party apps skipped, as Prowler
does).

- PASS: an Application Access Policy (``RestrictAccess``/``DenyAccess``) names the app.
- FAIL (high): no policy and no scoped RBAC-for-Apps assignment; or an RBAC assignment over
  the whole organisation.
- MANUAL: scoped only by RBAC for Applications while the tenant-wide Entra grant is still
  there (whether the grants add up is unverified [verify]); or service principals, access
  policies or role assignments not collected.
- PASS (resource ``service_principals``): no app holds such a permission.
"""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import kinds
from dsguard.posture.apps import mail_grants, scoping_for
from dsguard.posture.base import Check
from dsguard.results import Finding


class MailAppsScoped(Check):
    def execute(self, snapshot: Snapshot) -> list[Finding]:
        sps = snapshot.config(kinds.SERVICE_PRINCIPALS)
        if sps is None:
            return [self.not_collected(kinds.SERVICE_PRINCIPALS)]
        grants = [g for g in mail_grants(sps) if not g.first_party]
        if not grants:
            return [self.finding(
                "PASS", kinds.SERVICE_PRINCIPALS,
                f"no third-party or tenant app holds a mailbox-wide mail permission "
                f"({len(sps)} service principals read)",
                evidence={"service_principals_read": len(sps)})]
        policies = snapshot.config(kinds.APPLICATION_ACCESS_POLICIES)
        assignments = snapshot.config(kinds.MANAGEMENT_ROLE_ASSIGNMENTS)
        findings: list[Finding] = []
        for app in grants:
            scope = scoping_for(app, policies, assignments)
            evidence = {
                "app": app.name,
                "appId": app.app_id,
                "servicePrincipalId": app.principal_id,
                "appOwnerOrganizationId": app.owner_tenant,
                "permissions": sorted(app.roles),
                "application_access_policies": list(scope.access_policies),
                "rbac_scoped_assignments": list(scope.rbac_scoped),
                "rbac_organisation_assignments": list(scope.rbac_org_wide),
                "access_policies_collected": policies is not None,
                "role_assignments_collected": assignments is not None,
            }
            values = {"app_id": app.app_id or app.principal_id, "object_id": app.principal_id}
            perms = ", ".join(sorted(app.roles))
            if scope.rbac_org_wide:
                findings.append(self.finding(
                    "FAIL", app.name,
                    f"{perms}: RBAC-for-Apps assignment over the whole organisation",
                    evidence=evidence, values=values))
            elif scope.access_policies:
                findings.append(self.finding(
                    "PASS", app.name, f"{perms}: limited by an Application Access Policy",
                    evidence=evidence))
            elif scope.rbac_scoped:
                findings.append(self.finding(
                    "MANUAL", app.name,
                    f"{perms}: scoped by RBAC for Applications, but the tenant-wide Entra grant "
                    "is still present and may add up with it [verify]; remove the Entra grant",
                    evidence=evidence))
            elif policies is None or assignments is None:
                missing = [k for k, v in ((kinds.APPLICATION_ACCESS_POLICIES, policies),
                                          (kinds.MANAGEMENT_ROLE_ASSIGNMENTS, assignments))
                           if v is None]
                findings.append(self.finding(
                    "MANUAL", app.name,
                    f"{perms}: scoping cannot be read, not collected: {', '.join(missing)}",
                    evidence=evidence))
            else:
                findings.append(self.finding(
                    "FAIL", app.name,
                    f"{perms} with no Application Access Policy and no scoped RBAC-for-Apps "
                    "assignment: the app can send as any mailbox",
                    evidence=evidence, values=values))
        return findings
