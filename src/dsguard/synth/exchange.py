"""Configuration snapshots: Exchange Online objects, Graph apps, DNS and the exception registry.

The Exchange files are what ``Get-X | ConvertTo-Json -Depth 10`` prints, quirks included:
``/Date(ms)/`` times, ``smtp:domain;1`` connector domains, ``null`` next to ``[]``, one object
where a cmdlet returned one item and a list otherwise; one file in the AdminApi
``InvokeCommand`` shape (``{"value": [...]}``) for tenants collected that way. Each planted
misconfiguration is also returned as a ground-truth record naming the object and the posture
check family that should find it.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from dsguard.synth.entities import (
    HELPDESK_DOMAIN,
    HELPDESK_NET,
    INVOICE_SAAS_DOMAIN,
    INVOICE_SAAS_NET,
    SHARED_SERVICE_DOMAIN,
    SHARED_SERVICE_NET,
    SHARED_SERVICE_SPF,
    SURVEY_SAAS_DOMAIN,
    SURVEY_SAAS_NET,
    Tenant,
)
from dsguard.synth.vec import rng_for

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
EXO_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
MICROSOFT_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
ROLE_MAIL_SEND = "b633e1c5-b582-4048-a93e-9f11b44c7e96"
ROLE_MAIL_READWRITE = "e2a3a72e-5f79-4c64-b1b1-878b674786c9"
ROLE_USER_READ_ALL = "df021288-bdef-4463-88db-98f22de89214"
ROLE_FULL_ACCESS_AS_APP = "dc890d15-9560-4a4c-9b7f-a736ec74ec40"
ROLE_MANAGE_AS_APP = "dc50a0fb-09a3-484d-be87-e023b12c6440"


@dataclass
class Planted:
    what: str
    resource: str
    check_family: str
    check_id: str
    file: str

    def as_dict(self) -> dict[str, str]:
        return {"what": self.what, "resource": self.resource,
                "check_family": self.check_family, "check_id": self.check_id,
                "file": self.file}


def ms_date(d: date | datetime) -> str:
    """PowerShell 5.1 ConvertTo-Json's DateTime form."""
    if not isinstance(d, datetime):
        d = datetime(d.year, d.month, d.day, 9, 30, tzinfo=UTC)
    return f"/Date({int(d.timestamp() * 1000)})/"


class _Ids:
    def __init__(self, t: Tenant) -> None:
        self.rng = rng_for(t.seed, t.profile.key, "config")

    def guid(self) -> str:
        b = self.rng.integers(0, 256, size=16, dtype=np.uint8).tobytes().hex()
        return f"{b[:8]}-{b[8:12]}-{b[12:16]}-{b[16:20]}-{b[20:]}"

    def when(self, t: Tenant, days_before: int) -> str:
        secs = int(self.rng.integers(0, 86400))
        dt = datetime(t.start.year, t.start.month, t.start.day, tzinfo=UTC) - timedelta(
            days=days_before, seconds=secs)
        return ms_date(dt)


def _dump(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _dn(t: Tenant, cn: str, container: str) -> str:
    org = t.profile.initial
    return (f"CN={cn},CN={container},CN=Transport Settings,CN={org},CN=Microsoft Exchange,"
            f"CN=Services,CN=Configuration,DC=NAMPR10A001,DC=PROD,DC=OUTLOOK,DC=COM")


def organization_config(t: Tenant, ids: _Ids) -> dict[str, Any]:
    p = t.profile
    return {
        "Name": p.initial.split(".")[0],
        "DisplayName": p.org_name,
        "Identity": p.initial,
        "Guid": ids.guid(),
        "Id": p.initial,
        "OrganizationId": f"{p.initial} - {t.tenant_id}",
        "ExchangeVersion": "0.20 (15.0.0.0)",
        "IsDehydrated": False,
        "RejectDirectSend": p.reject_direct_send,
        "OAuth2ClientProfileEnabled": True,
        "AuditDisabled": False,
        "SmtpActionableMessagesEnabled": True,
        "EwsEnabled": None,
        "EwsApplicationAccessPolicy": None,
        "EwsAllowList": None,
        "EwsBlockList": None,
        "MailTipsExternalRecipientsTipsEnabled": False,
        "MailTipsAllTipsEnabled": True,
        "DefaultAuthenticationPolicy": None,
        "CustomerLockboxEnabled": False,
        "ConnectorsEnabled": True,
        "PublicFoldersEnabled": "Local",
        "HybridConfigurationStatus": "Completed" if p.hybrid else None,
        "ActivityBasedAuthenticationTimeoutEnabled": True,
        "ActivityBasedAuthenticationTimeoutInterval": "06:00:00",
        "AutoExpandingArchive": False,
        "BlockMoveMessagesForGroupFolders": False,
        "ComplianceMLBgdCrawlEnabled": None,
        "DistributionGroupNameBlockedWordsList": [],
        "ElcProcessingDisabled": False,
        "EndUserDLUpgradeFlowsDisabled": False,
        "FocusedInboxOn": True,
        "IsMixedMode": bool(p.hybrid),
        "LinkPreviewEnabled": True,
        "MailboxDataEncryptionEnabled": False,
        "MessageRemindersEnabled": True,
        "MicrosoftExchangeRecipientEmailAddresses": [f"SMTP:MicrosoftExchange329e71ec88ae4615bbc"
                                                     f"36ab6ce41109e@{p.initial}"],
        "OutlookMobileGCCRestrictionsEnabled": False,
        "ReadTrackingEnabled": False,
        "SiteMailboxCreationURL": None,
        "UnblockUnsafeSenderPromptEnabled": True,
        "VisibleMeetingUpdateProperties": "Location,AllProperties:15",
        "WebPushNotificationsDisabled": False,
        "WhenChanged": ids.when(t, 41),
        "WhenCreated": ids.when(t, 1460),
        "WhenChangedUTC": ids.when(t, 41),
        "WhenCreatedUTC": ids.when(t, 1460),
        "ObjectState": "Unchanged",
        "IsValid": True,
        "ObjectCategory": "NAMPR10A001.PROD.OUTLOOK.COM/Configuration/Schema/"
                          "ms-Exch-Organization-Container",
    }


def transport_config(t: Tenant, ids: _Ids) -> dict[str, Any]:
    return {
        "AddressBookPolicyRoutingEnabled": False,
        "AllowLegacyTLSClients": False,
        "ClearCategories": True,
        "ConvertDisclaimerToMimeHtml": False,
        "DSNConversionMode": "UseExchangeDSNs",
        "ExternalDelayDsnEnabled": True,
        "ExternalDsnDefaultLanguage": None,
        "ExternalPostmasterAddress": None,
        "HeaderPromotionModeSetting": "NoCreate",
        "InternalSMTPServers": [],
        "JournalingReportNdrTo": "<>",
        "MaxDumpsterSizePerDatabase": "18 MB (18,874,368 bytes)",
        "MaxReceiveSize": "35 MB (36,700,160 bytes)",
        "MaxRecipientEnvelopeLimit": "500",
        "MaxSendSize": "35 MB (36,700,160 bytes)",
        "ReplyAllStormProtectionEnabled": True,
        "ReplyAllStormDetectionMinimumRecipients": 5000,
        "Rfc2231EncodingEnabled": False,
        "SmtpClientAuthenticationDisabled": t.profile.smtp_auth_disabled,
        "TLSReceiveDomainSecureList": [],
        "TLSSendDomainSecureList": [],
        "VoicemailJournalingEnabled": True,
        "Identity": "Transport Settings",
        "Name": "Transport Settings",
        "Guid": ids.guid(),
        "WhenChanged": ids.when(t, 300),
        "WhenCreated": ids.when(t, 1460),
        "ObjectState": "Unchanged",
        "IsValid": True,
    }


def accepted_domains(t: Tenant, ids: _Ids) -> list[dict[str, Any]]:
    p = t.profile
    rows = [
        (p.primary, True, False, False),
        (p.brand, False, False, False),
        (p.initial, False, True, False),
    ]
    if p.hybrid:
        coexist = p.initial.replace(".onmicrosoft.", ".mail.onmicrosoft.")
        rows.append((coexist, False, False, True))
    out = []
    for name, default, initial, coexist in rows:
        out.append({
            "DomainName": name,
            "DomainType": "Authoritative",
            "Default": default,
            "InitialDomain": initial,
            "MatchSubDomains": False,
            "AddressBookEnabled": True,
            "AuthenticationType": "Managed",
            "LiveIdInstanceType": "Business",
            "SendingFromDomainDisabled": False,
            "IsCoexistenceDomain": coexist,
            "PendingRemoval": False,
            "PendingCompletion": False,
            "Name": name,
            "Identity": name,
            "Guid": ids.guid(),
            "WhenChanged": ids.when(t, 200),
            "WhenCreated": ids.when(t, 1400),
            "ObjectState": "Unchanged",
        })
    return out


def _connector(t: Tenant, ids: _Ids, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "Enabled": True,
        "ConnectorType": "Partner",
        "ConnectorSource": "AdminUI",
        "Comment": None,
        "SenderIPAddresses": [],
        "SenderDomains": [],
        "TrustedOrganizations": [],
        "AssociatedAcceptedDomains": [],
        "RequireTls": False,
        "RestrictDomainsToIPAddresses": False,
        "RestrictDomainsToCertificate": False,
        "CloudServicesMailEnabled": False,
        "TreatMessagesAsInternal": False,
        "TlsSenderCertificateName": None,
        "EFTestMode": False,
        "ScanAndDropRecipients": [],
        "EFSkipLastIP": False,
        "EFSkipIPs": [],
        "EFSkipMailGateway": [],
        "EFUsers": [],
        "AdminDisplayName": "",
        "ExchangeVersion": "0.1 (8.14.0.0)",
        "Name": "",
        "DistinguishedName": "",
        "Identity": "",
        "Guid": ids.guid(),
        "WhenChanged": ids.when(t, 90),
        "WhenCreated": ids.when(t, 700),
        "WhenChangedUTC": None,
        "WhenCreatedUTC": None,
        "ObjectState": "Unchanged",
        "IsValid": True,
    }
    base.update(kw)
    base["Identity"] = base["Name"]
    base["DistinguishedName"] = _dn(t, base["Name"], "Inbound Connectors")
    base["WhenChangedUTC"] = base["WhenChanged"]
    base["WhenCreatedUTC"] = base["WhenCreated"]
    return base


def inbound_connectors(t: Tenant, ids: _Ids) -> list[dict[str, Any]]:
    p = t.profile
    out = []
    if p.hybrid:
        out.append(_connector(
            t, ids, Name=t.onprem_connector_name, ConnectorType="OnPremises",
            ConnectorSource="HybridWizard", SenderDomains=["smtp:*;1"], RequireTls=True,
            RestrictDomainsToCertificate=True, CloudServicesMailEnabled=True,
            TlsSenderCertificateName=f"mail.{p.primary}", AssociatedAcceptedDomains=[],
            Comment="Created by the Hybrid Configuration Wizard"))
    out.append(_connector(
        t, ids, Name=t.partner_connector_name, SenderDomains=[f"smtp:{p.primary};1"],
        SenderIPAddresses=[INVOICE_SAAS_NET], RestrictDomainsToIPAddresses=True, RequireTls=True,
        Comment=f"InvoiceFlow ({INVOICE_SAAS_DOMAIN}) sends as invoices@ for AP."))
    senders = ["smtp:*;1"] if p.hybrid else [f"smtp:{p.primary};1"]
    out.append(_connector(
        t, ids, Name=t.open_connector_name, SenderDomains=senders, SenderIPAddresses=None,
        Comment="Former mail filtering vendor. TODO: remove after migration.",
        WhenCreated=ids.when(t, 1100), WhenChanged=ids.when(t, 1090)))
    return out


_RULE_NULLS = (
    "SenderDomainIs", "ExceptIfSenderDomainIs", "FromAddressContainsWords",
    "FromAddressMatchesPatterns", "ExceptIfFromAddressContainsWords", "FromScope",
    "ExceptIfFromScope", "SentToScope", "SenderIpRanges", "ExceptIfSenderIpRanges",
    "HeaderContainsMessageHeader", "HeaderContainsWords", "HeaderMatchesMessageHeader",
    "HeaderMatchesPatterns", "ExceptIfHeaderContainsMessageHeader",
    "ExceptIfHeaderContainsWords", "ExceptIfHeaderMatchesMessageHeader",
    "ExceptIfHeaderMatchesPatterns", "SubjectContainsWords", "From", "SentTo", "SetSCL",
    "SetHeaderName", "SetHeaderValue", "PrependSubject", "ApplyHtmlDisclaimerText",
    "ApplyHtmlDisclaimerLocation", "ApplyHtmlDisclaimerFallbackAction",
    "RouteMessageOutboundConnector", "RedirectMessageTo", "BlindCopyTo", "Quarantine",
    "RejectMessageReasonText", "RejectMessageEnhancedStatusCode", "ActivationDate",
    "ExpiryDate", "Comments",
)


def _rule(t: Tenant, ids: _Ids, name: str, priority: int, **kw: Any) -> dict[str, Any]:
    r: dict[str, Any] = {k: None for k in _RULE_NULLS}
    r.update({
        "Priority": priority,
        "DlpPolicy": "",
        "DlpPolicyId": "00000000-0000-0000-0000-000000000000",
        "Mode": "Enforce",
        "State": "Enabled",
        "SenderAddressLocation": "Header",
        "StopRuleProcessing": False,
        "RuleErrorAction": "Ignore",
        "RuleSubType": "None",
        "UseLegacyRegex": False,
        "ManuallyModified": False,
        "RuleVersion": "15.0.5.2",
        "Conditions": [],
        "Exceptions": None,
        "Actions": [],
        "Name": name,
        "Identity": name,
        "DistinguishedName": _dn(t, name, "TransportVersioned,CN=Rules"),
        "Guid": ids.guid(),
        "ImmutableId": ids.guid(),
        "WhenChanged": ids.when(t, 150),
        "ObjectState": "Unchanged",
        "IsValid": True,
    })
    r.update(kw)
    return r


def transport_rules(t: Tenant, ids: _Ids) -> tuple[Any, str]:
    """The rules, and the name of the planted SCL -1 rule. One rule is a bare object."""
    p = t.profile
    cond = "Microsoft.Exchange.MessagingPolicies.Rules.Tasks"
    if p.scl_rule_field == "SenderDomainIs":
        scl = _rule(t, ids, "Bypass spam filtering for internal domain", 1,
                    SenderDomainIs=[p.primary], SetSCL=-1,
                    Conditions=[f"{cond}.SenderDomainIsPredicate"],
                    Actions=[f"{cond}.SetSclAction"],
                    Comments="Internal mail was landing in Junk (ticket INC-20931).")
    else:
        scl = _rule(t, ids, "Allow scanner mail", 0,
                    FromAddressContainsWords=[p.primary], SetSCL=-1,
                    Conditions=[f"{cond}.FromAddressContainsPredicate"],
                    Actions=[f"{cond}.SetSclAction"],
                    Comments="Scanners were quarantined after the tenant move.")
    if p.scl_rule_field != "SenderDomainIs":
        return scl, scl["Name"]
    rules = [
        _rule(t, ids, "Tag external senders", 0, FromScope="NotInOrganization",
              PrependSubject="[EXTERNAL] ",
              Conditions=[f"{cond}.FromScopePredicate"],
              Actions=[f"{cond}.PrependSubjectAction"]),
        scl,
        _rule(t, ids, "Outbound legal disclaimer", 2, FromScope="InOrganization",
              SentToScope="NotInOrganization",
              ApplyHtmlDisclaimerText=f"<p>This message is confidential to {p.org_name}.</p>",
              ApplyHtmlDisclaimerLocation="Append", ApplyHtmlDisclaimerFallbackAction="Wrap",
              Conditions=[f"{cond}.FromScopePredicate", f"{cond}.SentToScopePredicate"],
              Actions=[f"{cond}.ApplyHtmlDisclaimerAction"]),
    ]
    return rules, scl["Name"]


def connection_filter(t: Tenant, ids: _Ids) -> dict[str, Any]:
    p = t.profile
    return {
        "AdminDisplayName": "",
        "IPAllowList": list(p.ip_allow_list),
        "IPBlockList": [],
        "EnableSafeList": p.enable_safe_list,
        "DirectoryBasedEdgeBlockMode": "Default",
        "IsDefault": True,
        "Name": "Default",
        "Identity": "Default",
        "Guid": ids.guid(),
        "WhenChanged": ids.when(t, 220),
        "WhenCreated": ids.when(t, 1460),
        "ObjectState": "Unchanged",
        "IsValid": True,
    }


def anti_phish(t: Tenant, ids: _Ids) -> list[dict[str, Any]]:
    common: dict[str, Any] = {
        "Enabled": True,
        "EnableSpoofIntelligence": True,
        "HonorDmarcPolicy": True,
        "DmarcRejectAction": "Reject",
        "DmarcQuarantineAction": "Quarantine",
        "AuthenticationFailAction": "MoveToJmf",
        "SpoofQuarantineTag": "DefaultFullAccessPolicy",
        "EnableUnauthenticatedSender": True,
        "EnableViaTag": True,
        "EnableFirstContactSafetyTips": False,
        "EnableMailboxIntelligence": True,
        "EnableMailboxIntelligenceProtection": False,
        "MailboxIntelligenceProtectionAction": "NoAction",
        "EnableOrganizationDomainsProtection": False,
        "EnableTargetedDomainsProtection": False,
        "TargetedDomainsToProtect": [],
        "EnableTargetedUserProtection": False,
        "TargetedUsersToProtect": [],
        "TargetedUserProtectionAction": "NoAction",
        "ExcludedDomains": [],
        "ExcludedSenders": [],
        "PhishThresholdLevel": 1,
        "RecommendedPolicyType": "Custom",
    }
    default = dict(common, Name="Office365 AntiPhish Default", Identity="Office365 AntiPhish "
                   "Default", IsDefault=True, Guid=ids.guid(), WhenChanged=ids.when(t, 400),
                   WhenCreated=ids.when(t, 1460))
    ceo = t.addr[t.ceo]
    custom = dict(common, Name="Executive protection", Identity="Executive protection",
                  IsDefault=False, EnableTargetedUserProtection=True,
                  TargetedUsersToProtect=[f"{t.display[t.ceo]};{ceo}"],
                  TargetedUserProtectionAction="Quarantine", PhishThresholdLevel=2,
                  Guid=ids.guid(), WhenChanged=ids.when(t, 60), WhenCreated=ids.when(t, 500))
    return [default, custom]


def dkim_config(t: Tenant, ids: _Ids) -> list[dict[str, Any]]:
    p = t.profile
    out = []
    for dom, enabled in ((p.primary, True), (p.brand, False), (p.initial, True)):
        dashed = dom.replace(".", "-")
        out.append({
            "Domain": dom,
            "Enabled": enabled,
            "Status": "Valid" if enabled else "Disabled",
            "Selector1CNAME": f"selector1-{dashed}._domainkey.{p.initial}",
            "Selector2CNAME": f"selector2-{dashed}._domainkey.{p.initial}",
            "Selector1KeySize": 2048,
            "Selector2KeySize": 2048,
            "Algorithm": "RSA",
            "BodyCanonicalization": "Relaxed",
            "HeaderCanonicalization": "Relaxed",
            "IncludeKeyExpiration": False,
            "IncludeSignatureCreationTime": True,
            "NumberOfBytesToSign": "All",
            "KeyCreationTime": ids.when(t, 380),
            "RotateOnDate": ids.when(t, 376),
            "SelectorBeforeRotateOnDate": "selector2",
            "SelectorAfterRotateOnDate": "selector1",
            "LastChecked": ids.when(t, 2),
            "AdminDisplayName": "",
            "Name": dom,
            "Identity": dom,
            "Guid": ids.guid(),
            "WhenChanged": ids.when(t, 376),
            "WhenCreated": ids.when(t, 1400),
            "ObjectState": "Unchanged",
        })
    return out


def service_principals(t: Tenant, ids: _Ids) -> tuple[dict[str, Any], list[str]]:
    """Graph resource SPs (with app roles) and three apps; two hold risky roles."""
    graph_id, exo_id = ids.guid(), ids.guid()

    def role(rid: str, value: str, name: str) -> dict[str, Any]:
        return {"allowedMemberTypes": ["Application"], "description": name, "displayName": name,
                "id": rid, "isEnabled": True, "origin": "Application", "value": value}

    def assignment(sp_id: str, sp_name: str, rid: str, res_id: str, res_name: str,
                   days: int) -> dict[str, Any]:
        created = datetime(t.start.year, t.start.month, t.start.day, tzinfo=UTC) - timedelta(
            days=days, seconds=int(ids.rng.integers(0, 86400)))
        return {"id": ids.guid(), "deletedDateTime": None, "appRoleId": rid,
                "createdDateTime": created.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "principalDisplayName": sp_name, "principalId": sp_id,
                "principalType": "ServicePrincipal", "resourceDisplayName": res_name,
                "resourceId": res_id}

    def sp(sp_id: str, app_id: str, name: str, owner: str, roles: list[dict[str, Any]],
           assigned: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": sp_id, "appId": app_id, "displayName": name,
                "appOwnerOrganizationId": owner, "servicePrincipalType": "Application",
                "accountEnabled": True, "signInAudience": "AzureADMultipleOrgs",
                "tags": ["WindowsAzureActiveDirectoryIntegratedApp"], "appRoles": roles,
                "appRoleAssignments": assigned}

    notifier, archive, sync = ids.guid(), ids.guid(), ids.guid()
    names = ("PeopleWorks Notifier", "Legacy Archive Connector", "Expense Sync")
    value = [
        sp(graph_id, GRAPH_APP_ID, "Microsoft Graph", MICROSOFT_TENANT, [
            role(ROLE_MAIL_SEND, "Mail.Send", "Send mail as any user"),
            role(ROLE_MAIL_READWRITE, "Mail.ReadWrite", "Read and write mail in all mailboxes"),
            role(ROLE_USER_READ_ALL, "User.Read.All", "Read all users' full profiles"),
        ], []),
        sp(exo_id, EXO_APP_ID, "Office 365 Exchange Online", MICROSOFT_TENANT, [
            role(ROLE_FULL_ACCESS_AS_APP, "full_access_as_app",
                 "Use Exchange Web Services with full access to all mailboxes"),
            role(ROLE_MANAGE_AS_APP, "Exchange.ManageAsApp", "Manage Exchange As Application"),
        ], []),
        sp(notifier, ids.guid(), names[0], ids.guid(), [], [
            assignment(notifier, names[0], ROLE_MAIL_SEND, graph_id, "Microsoft Graph", 410)]),
        sp(archive, ids.guid(), names[1], t.tenant_id, [], [
            assignment(archive, names[1], ROLE_FULL_ACCESS_AS_APP, exo_id,
                       "Office 365 Exchange Online", 1200)]),
        sp(sync, ids.guid(), names[2], t.tenant_id, [], [
            assignment(sync, names[2], ROLE_USER_READ_ALL, graph_id, "Microsoft Graph", 90)]),
    ]
    doc = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals("
                             "appRoleAssignments())", "value": value}
    return doc, [names[0], names[1]]


def spf_record(t: Tenant) -> str:
    p = t.profile
    return (f"v=spf1 ip4:{p.net.hq_net} include:spf.protection.outlook.com "
            f"include:{SHARED_SERVICE_SPF} {p.spf_all}")


def dns_records(t: Tenant) -> dict[str, Any]:
    """TXT/MX/CNAME records of the accepted domains and the services they delegate to. Names
    with only TXT records use the documented list form; the others the typed form."""
    p = t.profile
    rng = rng_for(t.seed, p.key, "dns")
    verify = f"MS=ms{int(rng.integers(10**7, 10**8))}"

    def mx(dom: str) -> list[str]:
        return [f"0 {dom.replace('.', '-')}.mail.protection.outlook.com"]

    def dkim(dom: str) -> dict[str, Any]:
        dashed = dom.replace(".", "-")
        return {f"selector{i}._domainkey.{dom}": {
            "CNAME": [f"selector{i}-{dashed}._domainkey.{p.initial}"]} for i in (1, 2)}

    doc: dict[str, Any] = {
        p.primary: {"TXT": [spf_record(t), verify], "MX": mx(p.primary)},
        f"_dmarc.{p.primary}": [p.dmarc_primary],
        p.brand: {"TXT": ["v=spf1 include:spf.protection.outlook.com -all"], "MX": mx(p.brand)},
        f"_dmarc.{p.brand}": [p.dmarc_brand],
        p.initial: {"TXT": ["v=spf1 include:spf.protection.outlook.com -all"],
                    "MX": mx(p.initial)},
        **dkim(p.primary),
        **dkim(p.brand),
        f"s1._domainkey.{p.primary}": {"CNAME": [f"s1.dkim.{HELPDESK_DOMAIN}"]},
        f"mr1._domainkey.{p.primary}": {"CNAME": [f"u{int(rng.integers(10**5, 10**6))}."
                                                  f"wl.{SHARED_SERVICE_DOMAIN}"]},
        SHARED_SERVICE_SPF: [f"v=spf1 ip4:{SHARED_SERVICE_NET} -all"],
        f"mail.{HELPDESK_DOMAIN}": [f"v=spf1 ip4:{HELPDESK_NET} -all"],
        SURVEY_SAAS_DOMAIN: [f"v=spf1 ip4:{SURVEY_SAAS_NET} -all"],
        INVOICE_SAAS_DOMAIN: [f"v=spf1 ip4:{INVOICE_SAAS_NET} -all"],
    }
    return doc


def _cidrs(ips: list[str]) -> list[str]:
    nets = ipaddress.collapse_addresses(ipaddress.IPv4Network(f"{ip}/32") for ip in ips)
    return [str(n) for n in nets]


def _yaml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def exceptions_yaml(t: Tenant) -> tuple[str, dict[str, dict[str, Any]]]:
    """The registry text and, per exception id, its truth (state and covered flow)."""
    p = t.profile
    d = p.primary
    printers = [t.ips[pr.ips[0]].ip for pr in t.printers]
    start = t.start
    entries = [
        dict(id="EX-001", name="HQ multifunction printers", owner=f"facilities@{d}",
             justification="Scan-to-mail; firmware lacks SMTP AUTH with OAuth.",
             sources=_cidrs(printers), senders=[t.addr[t.special["scan"]]],
             recipients="internal", expires=start + timedelta(days=150),
             review_by=start + timedelta(days=60), ticket="CHG-1042",
             state="valid", flow="printer_registered"),
        dict(id="EX-002", name="PeopleWorks HR notifications", owner=f"hr@{d}",
             justification="On-premises HR system; no OAuth SMTP client. Replacement planned.",
             sources=[f"{p.net.lob_hr_ip}/32"], senders=[t.addr[t.special["hr_notify"]]],
             recipients="internal", expires=start + timedelta(days=240), review_by=None,
             ticket="CHG-1107", state="valid", flow="hr_lob"),
        dict(id="EX-003", name=f"Staff newsletter via {SHARED_SERVICE_DOMAIN}",
             owner=f"communications@{d}",
             justification="Internal communications send the weekly newsletter through the "
                           "marketing platform.",
             sources=[SHARED_SERVICE_NET], senders=[t.addr[t.special["news"]]],
             recipients="internal", expires=start + timedelta(days=90), review_by=None,
             ticket="CHG-1213", state="valid", flow="newsletter"),
        dict(id="EX-004", name="Building management alerts", owner=f"facilities@{d}",
             justification="BMS controller can only relay anonymously.",
             sources=[f"{p.net.alerts_ip}/32"], senders=[t.addr[t.special["alerts"]]],
             recipients=[t.addr[t.special["facilities"]]], expires=start - timedelta(days=32),
             review_by=start - timedelta(days=90), ticket="CHG-0877",
             state="expired_in_use", flow="alerts"),
        dict(id="EX-005", name="Legacy fax gateway", owner=f"it-support@{d}",
             justification="Fax-to-mail gateway (decommissioning in progress).",
             sources=[f"{p.net.fax_ip}/32"], senders=[t.addr[t.special["fax"]]],
             recipients="internal", expires=start + timedelta(days=200), review_by=None,
             ticket="CHG-0650", state="unused", flow=None),
    ]
    lines = [
        "# Approved unauthenticated mail paths (Direct Send) for "
        f"{p.org_name}.",
        "# Each entry needs an owner and an end date; see docs/bundle.md.",
        "exceptions:",
    ]
    truth: dict[str, dict[str, Any]] = {}
    for e in entries:
        lines.append(f"  - id: {e['id']}")
        lines.append(f"    name: {_yaml_str(str(e['name']))}")
        lines.append(f"    owner: {e['owner']}")
        lines.append(f"    justification: {_yaml_str(str(e['justification']))}")
        lines.append(f"    sources: [{', '.join(e['sources'])}]")  # type: ignore[arg-type]
        lines.append(f"    senders: [{', '.join(e['senders'])}]")  # type: ignore[arg-type]
        rc = e["recipients"]
        lines.append(f"    recipients: {rc if isinstance(rc, str) else '[' + ', '.join(rc) + ']'}")
        lines.append(f"    expires: {e['expires']}")
        if e["review_by"]:
            lines.append(f"    review_by: {e['review_by']}")
        lines.append(f"    ticket: {e['ticket']}")
        truth[str(e["id"])] = {"state": e["state"], "flow": e["flow"],
                               "sources": e["sources"], "senders": e["senders"],
                               "expires": str(e["expires"])}
    return "\n".join(lines) + "\n", truth


def write_config(t: Tenant, out: Path) -> tuple[list[str], list[Planted], dict[str, Any]]:
    """Write every configuration file; return the files, the planted findings and the
    exception truth."""
    p = t.profile
    ids = _Ids(t)
    files: list[str] = []

    def put(rel: str, obj: Any) -> None:
        _dump(out / rel, obj)
        files.append(rel)

    put("exchange/organization_config.json", organization_config(t, ids))
    put("exchange/transport_config.json", transport_config(t, ids))
    put("exchange/accepted_domains.json", accepted_domains(t, ids))
    put("exchange/inbound_connectors.json", inbound_connectors(t, ids))
    rules, scl_rule = transport_rules(t, ids)
    put("exchange/transport_rules.json", rules)
    put("exchange/hosted_connection_filter_policy.json", connection_filter(t, ids))
    phish = anti_phish(t, ids)
    dkim = dkim_config(t, ids)
    if p.hybrid:
        put("exchange/anti_phish_policies.json", phish)
        put("exchange/dkim_signing_config.json", dkim)
    else:
        ctx = (f"https://outlook.office365.com/adminapi/beta/{t.tenant_id}/$metadata#"
               "Collection(Exchange.GenericHashTable)")
        put("exchange/anti_phish_policies.json", {"@odata.context": ctx, "value": phish})
        put("exchange/dkim_signing_config.json", {"@odata.context": ctx, "value": dkim})
    sps, risky_apps = service_principals(t, ids)
    put("graph/service_principals.json", sps)
    # Collected and empty, as in most tenants: no Application Access Policy and no RBAC for
    # Applications scope restrains the mail-sending apps above.
    put("exchange/application_access_policies.json", [])
    put("exchange/management_role_assignments.json", [])
    put("dns.json", dns_records(t))
    text, ex_truth = exceptions_yaml(t)
    (out / "exceptions.yaml").write_text(text, encoding="utf-8")
    files.append("exceptions.yaml")

    org = "exchange/organization_config.json"
    planted = [
        Planted(f"RejectDirectSend is {json.dumps(p.reject_direct_send)} (Direct Send allowed)",
                "RejectDirectSend", "organization", "DS-ORG-001", org),
        Planted("Partner inbound connector not restricted by IP or certificate "
                f"(SenderDomains {'*' if p.hybrid else 'our own domain'})",
                t.open_connector_name, "connectors", "DS-CON-002",
                "exchange/inbound_connectors.json"),
        Planted("Transport rule sets SCL -1 keyed on the tenant's own domain "
                f"({p.scl_rule_field})", scl_rule, "transport_rules", "DS-ETR-001",
                "exchange/transport_rules.json"),
        Planted(f"Weak DMARC on the primary domain ({p.dmarc_primary.split(';')[1].strip()}"
                + (f", {p.dmarc_primary.split(';')[2].strip()}" if "pct" in p.dmarc_primary
                   else "") + ")", f"_dmarc.{p.primary}", "dns", "DS-DNS-003", "dns.json"),
        Planted("No DMARC record for the initial (MOERA) domain", f"_dmarc.{p.initial}", "dns",
                "DS-DNS-003", "dns.json"),
        Planted("DKIM signing disabled on the brand domain", p.brand, "dns", "DS-DNS-002",
                "exchange/dkim_signing_config.json"),
        Planted("Exception expired but its path is still in use", "EX-004", "exceptions",
                "DS-GOV-expired", "exceptions.yaml"),
        Planted("Exception with no matching traffic", "EX-005", "exceptions", "DS-GOV-unused",
                "exceptions.yaml"),
        Planted("App holds Graph Mail.Send (application) with no scoping", risky_apps[0],
                "apps", "DS-APP-001", "graph/service_principals.json"),
        Planted("App holds EXO full_access_as_app", risky_apps[1], "apps", "DS-APP-001",
                "graph/service_principals.json"),
    ]
    if p.spf_all == "~all":
        planted.append(Planted("SPF ends in soft fail (~all) while DMARC is p=none",
                               p.primary, "dns", "DS-DNS-001", "dns.json"))
    if not p.smtp_auth_disabled:
        planted.append(Planted("SMTP AUTH enabled for the organisation",
                               "SmtpClientAuthenticationDisabled", "organization",
                               "DS-ORG-002", "exchange/transport_config.json"))
    if p.ip_allow_list:
        planted.append(Planted("Connection filter IP Allow List holds a third-party relay",
                               "Default", "connection_filter", "DS-FLT-001",
                               "exchange/hosted_connection_filter_policy.json"))
    if p.enable_safe_list:
        planted.append(Planted("Connection filter safe list enabled", "Default",
                               "connection_filter", "DS-FLT-002",
                               "exchange/hosted_connection_filter_policy.json"))
    return files, planted, ex_truth
