"""DS-APP-001 and DS-APP-002: apps that can send as anyone, and EWS."""

from __future__ import annotations

from typing import Any

import pytest

from posture.support import Bundle, one, statuses

GRAPH_SP = {
    "id": "sp-graph", "appId": "00000003-0000-0000-c000-000000000000",
    "displayName": "Microsoft Graph", "appOwnerOrganizationId": "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
    "appRoles": [
        {"id": "b633e1c5-b582-4048-a93e-9f11b44c7e96", "value": "Mail.Send"},
        {"id": "810c84a8-4a9e-49e6-bf7d-12d183f40d01", "value": "Mail.Read"},
    ],
}
EXO_SP = {
    "id": "sp-exo", "appId": "00000002-0000-0ff1-ce00-000000000000",
    "displayName": "Office 365 Exchange Online",
    "appOwnerOrganizationId": "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
    "appRoles": [{"id": "7146a1f0-0000-0000-0000-000000000000", "value": "SMTP.SendAsApp"}],
}
MAIL_SEND = {"appRoleId": "b633e1c5-b582-4048-a93e-9f11b44c7e96", "resourceId": "sp-graph"}


def app(sp_id: str, name: str, *roles: dict[str, Any], owner: str = "tenant") -> dict[str, Any]:
    return {"id": sp_id, "appId": f"app-{sp_id}", "displayName": name,
            "appOwnerOrganizationId": owner, "appRoleAssignments": list(roles)}


def test_ds_app_001_scoping(bundle: Bundle) -> None:
    bundle.config("service_principals", {"value": [
        GRAPH_SP, EXO_SP,
        app("a1", "Unscoped mailer", MAIL_SEND),
        app("a2", "Policy-scoped", MAIL_SEND),
        app("a3", "RBAC-scoped", MAIL_SEND),
        app("a4", "Org-wide RBAC", MAIL_SEND),
        app("a5", "Reader", {"appRoleId": "810c84a8-4a9e-49e6-bf7d-12d183f40d01"}),
        app("a6", "Microsoft first party", MAIL_SEND,
            owner="72f988bf-86f1-41af-91ab-2d7cd011db47"),
        {**EXO_SP, "appRoleAssignedTo": [
            {"principalId": "a7", "principalDisplayName": "O'Neil SMTP relay",
             "appRoleId": "7146a1f0-0000-0000-0000-000000000000"}]},
    ]})
    bundle.config("application_access_policies", {
        "Identity": "tenant\\app-a2:S-1-5", "AppId": "app-a2", "AccessRight": "RestrictAccess",
        "ScopeName": "Mail senders"})
    bundle.config("management_role_assignments", [
        {"Name": "Application Mail.Send-a3", "Role": "Application Mail.Send", "App": "a3",
         "CustomResourceScope": "Finance mailboxes", "RecipientWriteScope": "CustomRecipientScope"},
        {"Name": "Application Mail.Send-a4", "Role": "Application Mail.Send",
         "RoleAssignee": "app-a4", "CustomResourceScope": None,
         "RecipientWriteScope": "Organization"},
    ])
    findings = bundle.run("DS-APP-001")
    assert statuses(findings) == {
        "Unscoped mailer": "FAIL", "Policy-scoped": "PASS", "RBAC-scoped": "MANUAL",
        "Org-wide RBAC": "FAIL", "O'Neil SMTP relay": "FAIL",
    }
    unscoped = one(findings, "Unscoped mailer")
    assert unscoped.evidence["permissions"] == ["Mail.Send"]
    assert "New-ManagementRoleAssignment -App 'a1'" in unscoped.remediation
    relay = one(findings, "O'Neil SMTP relay")
    assert relay.evidence["permissions"] == ["SMTP.SendAsApp"]
    assert relay.frameworks["owasp_nhi_top10"] == ["NHI3:2025", "NHI5:2025"]


def test_ds_app_001_pass_and_missing(bundle: Bundle) -> None:
    assert one(bundle.run("DS-APP-001")).status == "MANUAL"
    bundle.config("service_principals", [GRAPH_SP, app("a5", "Reader")])
    assert one(bundle.run("DS-APP-001")).status == "PASS"
    bundle.config("service_principals", [GRAPH_SP, app("a1", "Unscoped", MAIL_SEND)])
    finding = one(bundle.run("DS-APP-001"))
    assert finding.status == "MANUAL" and "not collected" in finding.status_extended


def test_ds_app_001_malformed_assignments_are_skipped(bundle: Bundle) -> None:
    bundle.config("service_principals", [{**app("a1", "Odd"), "appRoleAssignments": ["x", 1]}])
    assert one(bundle.run("DS-APP-001")).status == "PASS"


# ---------------------------------------------------------------------------- DS-APP-002

ORG = {"Name": "contoso.onmicrosoft.com", "RejectDirectSend": True}


@pytest.mark.parametrize(
    ("ews", "status"),
    [
        ({"EwsEnabled": False}, "PASS"),
        ({"EwsEnabled": True, "EwsApplicationAccessPolicy": "EnforceAllowList",
          "EwsAllowList": ["app-1"]}, "PASS"),
        ({"EwsEnabled": None, "EwsApplicationAccessPolicy": "EnforceAllowList",
          "EwsAllowList": "app-1"}, "PASS"),
        ({"EwsEnabled": True, "EwsApplicationAccessPolicy": "EnforceAllowList",
          "EwsAllowList": []}, "FAIL"),
        ({"EwsEnabled": True, "EwsApplicationAccessPolicy": "EnforceBlockList",
          "EwsBlockList": ["x"]}, "FAIL"),
        ({"EwsEnabled": None, "EwsApplicationAccessPolicy": None}, "FAIL"),
        ({"EwsEnabled": "kinda"}, "MANUAL"),
    ],
)
def test_ds_app_002_ews(bundle: Bundle, ews: dict[str, Any], status: str) -> None:
    bundle.config("organization_config", {**ORG, **ews})
    assert one(bundle.run("DS-APP-002")).status == status


def test_ds_app_002_names_full_access_apps_and_missing(bundle: Bundle) -> None:
    assert one(bundle.run("DS-APP-002")).status == "MANUAL"
    bundle.config("organization_config", {**ORG, "EwsEnabled": True})
    bundle.config("service_principals", [
        app("a9", "Legacy EWS", {"appRoleId": "dc890d15-9560-4a4c-9b7f-a736ec74ec40"})])
    finding = one(bundle.run("DS-APP-002"))
    assert finding.status == "FAIL" and finding.evidence["full_access_as_app"] == ["Legacy EWS"]
