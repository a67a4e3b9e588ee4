"""A small Microsoft 365 tenant served from 127.0.0.1: Graph, the Exchange admin API, DNS.

The HTTP side answers in the documented request and response shapes
(detection-signals.md §5.3-5.5, posture-checks.md §4): ``runHuntingQuery`` with
``{"Query", "Timespan"}`` → ``{"schema", "results"}`` honouring the KQL time range and
``take``; Graph collections paged with ``@odata.nextLink``; ``InvokeCommand`` with
``CmdletInput`` and ``Prefer: odata.maxpagesize``, next page POSTed with the same body.
``faults`` inject 429/5xx/401/403/400, malformed JSON and dropped connections. Every request
is logged so tests can check what the collector asked for, and how often.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dnslib import AAAA, CNAME, MX, QTYPE, RCODE, RR, TXT, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

TENANT_ID = "72f9a1b2-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
PRIMARY = "contoso.com"
INITIAL = "contoso.onmicrosoft.com"
# The tenant's mail is the three whole days before today, so the command line's default
# period (the last N days up to now) finds it too.
START = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
DAYS = 3
END = START + timedelta(days=DAYS)

GRAPH_APP = "00000003-0000-0000-c000-000000000000"
EXO_APP = "00000002-0000-0ff1-ce00-000000000000"
MAIL_SEND = "b633e1c5-b582-4048-a93e-9f11b44c7e96"
USER_READ_ALL = "df021288-bdef-4463-88db-98f22de89214"
SMTP_SEND_AS_APP = "ce81e10f-0c4c-4a0b-9ce2-3b4ad1a9b1f6"
FULL_ACCESS = "dc890d15-9560-4a4c-9b7f-a736ec74ec40"
APP_MAILER = "11111111-aaaa-4bbb-8ccc-000000000001"
APP_READER = "11111111-aaaa-4bbb-8ccc-000000000002"
APP_SMTP = "11111111-aaaa-4bbb-8ccc-000000000003"
APP_GONE = "11111111-aaaa-4bbb-8ccc-000000000004"

PEOPLE = ["adele.vance", "alex.wilber", "megan.bowen", "lee.gu", "nestor.wilke", "ceo"]
PRINTER = "scan@contoso.com"
LONG_TXT = "google-site-verification=" + "x" * 300


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0Z"


def _row(
    n: int,
    ts: datetime,
    sender: str,
    recipient: str,
    direction: str,
    ip: str,
    auth: dict[str, str],
    *,
    connectors: str | None = "",
    detection: str | None = None,
    subject: str = "Weekly update",
    action: str = "Delivered",
) -> dict[str, Any]:
    nmid = f"{n:08x}-1d2a-4c3b-9e8f-0a1b2c3d4e5f"
    return {
        "Timestamp": _iso(ts),
        "NetworkMessageId": nmid,
        "InternetMessageId": f"<{n}.{ts:%Y%m%d%H%M}@{sender.split('@')[1]}>",
        "SenderMailFromAddress": sender,
        "SenderFromAddress": sender,
        "SenderDisplayName": sender.split("@")[0].replace(".", " ").title(),
        "SenderObjectId": None,
        "SenderMailFromDomain": sender.split("@")[1],
        "SenderFromDomain": sender.split("@")[1],
        "SenderIPv4": ip,
        "SenderIPv6": None,
        "RecipientEmailAddress": recipient,
        "RecipientObjectId": None,
        "Subject": subject,
        "EmailClusterId": 3147208371245938816 + n,
        "EmailDirection": direction,
        "DeliveryAction": action,
        "DeliveryLocation": "Inbox/folder" if action == "Delivered" else "Junk folder",
        "ThreatTypes": "Phish" if detection else "",
        "ThreatNames": "",
        "DetectionMethods": detection,
        "ConfidenceLevel": None,
        "BulkComplaintLevel": 0,
        "EmailAction": "No action taken",
        "EmailActionPolicy": None,
        "EmailActionPolicyGuid": None,
        "AuthenticationDetails": json.dumps(auth, separators=(",", ":")),
        "AttachmentCount": 0,
        "UrlCount": 1,
        "EmailLanguage": "en",
        "Connectors": connectors,
        "OrgLevelAction": None,
        "OrgLevelPolicy": None,
        "UserLevelAction": None,
        "UserLevelPolicy": None,
        "ReportId": f"{nmid}-1-1",
        "AdditionalFields": None,
    }


PASS = {"SPF": "pass", "DKIM": "pass", "DMARC": "pass", "CompAuth": "pass"}
FAIL = {"SPF": "fail", "DKIM": "none", "DMARC": "fail", "CompAuth": "fail"}


def make_email_events() -> list[dict[str, Any]]:
    """About 400 rows over three days: colleagues, partners, a printer, a Direct Send burst."""
    rows: list[dict[str, Any]] = []
    n = 0
    for day in range(DAYS):
        base = START + timedelta(days=day)
        for hour in range(8, 18):
            for i, who in enumerate(PEOPLE):
                ts = base + timedelta(hours=hour, minutes=7 * i, seconds=n % 60)
                to = PEOPLE[(i + hour) % len(PEOPLE)]
                n += 1
                rows.append(_row(n, ts, f"{who}@{PRIMARY}", f"{to}@{PRIMARY}", "Intra-org",
                                 "10.0.0.5", PASS))  # fmt: skip
            n += 1
            rows.append(_row(n, base + timedelta(hours=hour, minutes=41), "sales@fabrikam.com",
                             f"{PEOPLE[hour % len(PEOPLE)]}@{PRIMARY}", "Inbound",
                             "198.51.100.77", PASS, connectors=None))  # fmt: skip
        for k in range(3):  # the printer, unauthenticated but expected
            n += 1
            rows.append(_row(n, base + timedelta(hours=9 + 3 * k, minutes=2), PRINTER,
                             f"{PEOPLE[k]}@{PRIMARY}", "Inbound", "203.0.113.10",
                             {"SPF": "pass", "DKIM": "none", "DMARC": "pass",
                              "CompAuth": "pass"}, subject="Scanned document"))  # fmt: skip
    # Direct Send campaign: 60 messages in 20 minutes, spoofing the CEO from outside.
    burst = START + timedelta(days=1, hours=22)
    for k in range(60):
        n += 1
        rows.append(_row(n, burst + timedelta(seconds=20 * k), f"ceo@{PRIMARY}",
                         f"{PEOPLE[k % 5]}@{PRIMARY}", "Inbound", "185.220.101.33", FAIL,
                         detection='{"Phish":["Spoof intra-org"]}',
                         subject="Urgent: voicemail for you", action="Junked"))  # fmt: skip
    # Rows just outside the period must never be collected.
    rows.append(_row(n + 1, START - timedelta(seconds=1), f"ceo@{PRIMARY}", f"lee.gu@{PRIMARY}",
                     "Intra-org", "10.0.0.5", PASS))  # fmt: skip
    rows.append(_row(n + 2, END, f"ceo@{PRIMARY}", f"lee.gu@{PRIMARY}", "Intra-org",
                     "10.0.0.5", PASS))  # fmt: skip
    return rows


def make_signins() -> list[dict[str, Any]]:
    out = []
    n = 0
    for day in range(DAYS):
        for who in [*PEOPLE, "unrelated.user"]:
            n += 1
            ts = START + timedelta(days=day, hours=8, minutes=n)
            out.append({
                "id": f"66ea54eb-6301-4ee5-be62-{n:012x}",
                "createdDateTime": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "userDisplayName": who.replace(".", " ").title(),
                "userPrincipalName": f"{who}@{PRIMARY}",
                "userId": f"2f1c3b7a-6d4e-4c8f-9a1b-{n:012x}",
                "appId": "27922004-5251-4030-b22d-91ecd9a37ea4",
                "appDisplayName": "Outlook Mobile",
                "ipAddress": "203.0.113.24",
                "clientAppUsed": "Mobile Apps and Desktop clients",
                "correlationId": f"5f0d8f9c-2b7e-4a51-9a3e-{n:012x}",
                "conditionalAccessStatus": "success",
                "isInteractive": True,
                "status": {"errorCode": 0, "failureReason": "Other.", "additionalDetails": None},
                "deviceDetail": {"operatingSystem": "Ios 17.3", "browser": ""},
                "location": {"city": "Redmond", "state": "Washington", "countryOrRegion": "US"},
            })  # fmt: skip
    before = (START - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    out.append({**out[0], "id": "outside-period", "createdDateTime": before})
    return out


def make_message_traces(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Graph ``exchangeMessageTrace`` view of the same mail."""
    out = []
    for row in events:
        out.append({
            "id": row["NetworkMessageId"],
            "receivedDateTime": row["Timestamp"][:19] + "Z",
            "senderAddress": row["SenderFromAddress"],
            "recipientAddress": row["RecipientEmailAddress"],
            "subject": row["Subject"],
            "status": "delivered" if row["DeliveryAction"] == "Delivered" else "filteredAsSpam",
            "fromIP": row["SenderIPv4"],
            "toIP": None,
            "size": 12345,
            "messageId": row["InternetMessageId"],
        })  # fmt: skip
    return out


def make_service_principals() -> dict[str, dict[str, Any]]:
    graph_sp = {
        "id": "aaaaaaaa-0000-4000-8000-000000000003",
        "appId": GRAPH_APP,
        "displayName": "Microsoft Graph",
        "appOwnerOrganizationId": "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
        "servicePrincipalType": "Application",
        "accountEnabled": True,
        "appRoles": [
            {"id": MAIL_SEND, "value": "Mail.Send", "displayName": "Send mail as any user",
             "allowedMemberTypes": ["Application"], "isEnabled": True},
            {"id": USER_READ_ALL, "value": "User.Read.All", "displayName": "Read all users",
             "allowedMemberTypes": ["Application"], "isEnabled": True},
        ],
    }  # fmt: skip
    exo_sp = {
        "id": "aaaaaaaa-0000-4000-8000-000000000002",
        "appId": EXO_APP,
        "displayName": "Office 365 Exchange Online",
        "appOwnerOrganizationId": "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
        "servicePrincipalType": "Application",
        "accountEnabled": True,
        "appRoles": [
            {"id": SMTP_SEND_AS_APP, "value": "SMTP.SendAsApp", "displayName": "Send as app",
             "allowedMemberTypes": ["Application"], "isEnabled": True},
            {"id": FULL_ACCESS, "value": "full_access_as_app", "displayName": "Use EWS",
             "allowedMemberTypes": ["Application"], "isEnabled": True},
        ],
    }  # fmt: skip
    return {GRAPH_APP: graph_sp, EXO_APP: exo_sp}


def make_assignments() -> dict[str, list[dict[str, Any]]]:
    def a(i: int, principal: str, name: str, role: str, resource: dict[str, str]) -> dict[str, Any]:
        return {
            "id": f"assignment-{i}",
            "appRoleId": role,
            "createdDateTime": "2025-11-02T10:00:00Z",
            "principalDisplayName": name,
            "principalId": principal,
            "principalType": "ServicePrincipal",
            "resourceDisplayName": resource["name"],
            "resourceId": resource["id"],
        }

    g = {"name": "Microsoft Graph", "id": "aaaaaaaa-0000-4000-8000-000000000003"}
    x = {"name": "Office 365 Exchange Online", "id": "aaaaaaaa-0000-4000-8000-000000000002"}
    return {
        g["id"]: [
            a(1, APP_MAILER, "Invoice mailer", MAIL_SEND, g),
            a(2, APP_READER, "HR directory sync", USER_READ_ALL, g),
            a(3, APP_GONE, "Deleted app", MAIL_SEND, g),
        ],
        x["id"]: [a(4, APP_SMTP, "Scanner relay", SMTP_SEND_AS_APP, x)],
    }


CLIENT_APPS = {
    APP_MAILER: {"id": APP_MAILER, "appId": "c0ffee00-0000-4000-8000-000000000001",
                 "displayName": "Invoice mailer",
                 "appOwnerOrganizationId": TENANT_ID, "servicePrincipalType": "Application",
                 "accountEnabled": True},
    APP_READER: {"id": APP_READER, "appId": "c0ffee00-0000-4000-8000-000000000002",
                 "displayName": "HR directory sync", "appOwnerOrganizationId": TENANT_ID,
                 "servicePrincipalType": "Application", "accountEnabled": True},
    APP_SMTP: {"id": APP_SMTP, "appId": "c0ffee00-0000-4000-8000-000000000003",
               "displayName": "Scanner relay", "appOwnerOrganizationId": TENANT_ID,
               "servicePrincipalType": "Application", "accountEnabled": True},
}  # fmt: skip


def make_exchange() -> dict[str, list[dict[str, Any]]]:
    """``Get-*`` objects as the admin API returns them (REST property names and values)."""
    cas = [
        {"Name": f"user{i:04d}", "Identity": f"user{i:04d}", "PrimarySmtpAddress":
         f"user{i:04d}@{PRIMARY}", "SmtpClientAuthenticationDisabled": False,
         "ExchangeObjectId": f"0000{i:04d}-0000-4000-8000-000000000000"}
        for i in range(2500)
    ]  # fmt: skip
    return {
        "Get-OrganizationConfig": [{
            "Name": "contoso.onmicrosoft.com", "Identity": "contoso.onmicrosoft.com",
            "RejectDirectSend": False, "EwsEnabled": None, "EwsApplicationAccessPolicy": None,
            "EwsAllowList": None, "WhenChanged": "2026-01-14T08:12:03+01:00",
            "WhenChangedUTC": "2026-01-14T07:12:03Z"}],
        "Get-TransportConfig": [{"Identity": "Transport Settings",
                                 "SmtpClientAuthenticationDisabled": True}],
        "Get-AcceptedDomain": [
            {"DomainName": PRIMARY, "DomainType": "Authoritative", "Default": True,
             "InitialDomain": False, "Name": PRIMARY, "Identity": PRIMARY},
            {"DomainName": INITIAL, "DomainType": "Authoritative", "Default": False,
             "InitialDomain": True, "Name": INITIAL, "Identity": INITIAL},
        ],
        "Get-InboundConnector": [{
            "Name": "Scanner relay", "Identity": "Scanner relay", "Enabled": True,
            "ConnectorType": "OnPremises", "SenderIPAddresses": ["203.0.113.10"],
            "SenderDomains": ["smtp:*;1"], "RequireTls": False,
            "RestrictDomainsToIPAddresses": True, "RestrictDomainsToCertificate": False,
            "TlsSenderCertificateName": None, "CloudServicesMailEnabled": False,
            "TreatMessagesAsInternal": False, "EFSkipIPs": [], "EFSkipLastIP": False,
            "EFUsers": [], "ScanAndDropRecipients": []}],
        "Get-TransportRule": [{
            "Name": "External sender tag", "Identity": "External sender tag",
            "State": "Enabled", "Mode": "Enforce", "Priority": 0, "FromScope": "NotInOrganization",
            "SetSCL": None, "SetHeaderName": None, "SetHeaderValue": None,
            "SenderIpRanges": None, "SenderDomainIs": None, "FromAddressContainsWords": None,
            "PrependSubject": "[EXTERNAL] ", "ExceptIfSenderIpRanges": None}],
        "Get-HostedConnectionFilterPolicy": [{
            "Name": "Default", "Identity": "Default", "IPAllowList": [], "IPBlockList": [],
            "EnableSafeList": False}],
        "Get-HostedContentFilterPolicy": [{
            "Name": "Default", "Identity": "Default", "AllowedSenderDomains": [],
            "AllowedSenders": [], "IsDefault": True}],
        "Get-AntiPhishPolicy": [{
            "Name": "Office365 AntiPhish Default", "Identity": "Office365 AntiPhish Default",
            "Enabled": True, "EnableSpoofIntelligence": True, "HonorDmarcPolicy": True,
            "AuthenticationFailAction": "Quarantine", "DmarcRejectAction": "Reject",
            "DmarcQuarantineAction": "Quarantine", "EnableUnauthenticatedSender": True,
            "IsDefault": True}],
        "Get-AntiPhishRule": [],
        "Get-DkimSigningConfig": [
            {"Domain": PRIMARY, "Name": PRIMARY, "Identity": PRIMARY, "Enabled": True,
             "Selector1CNAME": "selector1-contoso-com._domainkey.contoso.onmicrosoft.com",
             "Selector2CNAME": "selector2-contoso-com._domainkey.contoso.onmicrosoft.com"},
            {"Domain": INITIAL, "Name": INITIAL, "Identity": INITIAL, "Enabled": True}],
        "Get-CASMailbox": cas,
        "Get-TenantAllowBlockListSpoofItems": [],
        "Get-ArcConfig": [{"Identity": "default", "ArcTrustedSealers": None}],
        "Get-ExternalInOutlook": [{"Identity": "ExternalInOutlook", "Enabled": True,
                                   "AllowList": []}],
        "Get-ManagementRoleAssignment": [{
            "Name": "Application Mail.Send-Invoice mailer", "Role": "Application Mail.Send",
            "RoleAssignee": APP_MAILER, "RoleAssigneeType": "ServicePrincipal",
            "CustomResourceScope": "Finance mailboxes", "RecipientWriteScope": "CustomRecipientScope"}],
        "Get-ApplicationAccessPolicy": [],
        "Get-OutboundConnector": [],
        "Get-CASMailboxPlan": [{"Name": "ExchangeOnlineEnterprise", "SmtpClientAuthenticationDisabled": None}],
        "Get-ManagementScope": [{"Name": "Finance mailboxes",
                                 "RecipientFilter": "Department -eq 'Finance'"}],
        "Get-ServicePrincipal": [{"AppId": "c0ffee00-0000-4000-8000-000000000001",
                                  "ObjectId": APP_MAILER, "DisplayName": "Invoice mailer"}],
    }  # fmt: skip


def make_zone() -> dict[str, dict[str, list[Any]]]:
    """Records the local DNS server answers; everything else is NXDOMAIN."""
    return {
        PRIMARY: {
            "TXT": [["v=spf1 ip4:198.51.100.0/24 include:spf.protection.outlook.com -all"],
                    ["MS=ms12345678"], [LONG_TXT[:255], LONG_TXT[255:]]],
            "MX": [(0, "contoso-com.mail.protection.outlook.com")],
        },
        f"_dmarc.{PRIMARY}": {"TXT": [["v=DMARC1; p=quarantine; rua=mailto:d@contoso.com"]]},
        f"selector1._domainkey.{PRIMARY}": {
            "CNAME": ["selector1-contoso-com._domainkey.contoso.onmicrosoft.com"]},
        f"selector2._domainkey.{PRIMARY}": {
            "CNAME": ["selector2-contoso-com._domainkey.contoso.onmicrosoft.com"]},
        INITIAL: {"TXT": [["v=spf1 include:spf.protection.outlook.com -all"]],
                  "MX": [(0, "contoso-onmicrosoft-com.mail.protection.outlook.com")]},
        "spf.protection.outlook.com": {
            "TXT": [["v=spf1 ip4:40.92.0.0/15 ip4:40.107.0.0/16 include:spfd.protection.outlook.com -all"]]},
        "spfd.protection.outlook.com": {"TXT": [["v=spf1 ip4:51.4.72.0/24 -all"]]},
    }  # fmt: skip


# ----------------------------------------------------------------------------- DNS
class _ZoneResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, zone: dict[str, dict[str, list[Any]]]) -> None:
        self.zone = zone
        self.queries: list[tuple[str, str]] = []

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        self.queries.append((qname, qtype))
        records = self.zone.get(qname)
        if records is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for value in records.get(qtype, []):
            if qtype == "TXT":
                rdata = TXT(value)
            elif qtype == "MX":
                rdata = MX(value[1], value[0])
            elif qtype == "CNAME":
                rdata = CNAME(value)
            elif qtype == "AAAA":
                rdata = AAAA(value)
            else:
                rdata = A(value)
            reply.add_answer(RR(request.q.qname, getattr(QTYPE, qtype), rdata=rdata, ttl=300))
        return reply


class FakeDns:
    """A UDP DNS server on 127.0.0.1 answering from ``make_zone()``."""

    def __init__(self) -> None:
        self.resolver = _ZoneResolver(make_zone())
        self.server = DNSServer(
            self.resolver, address="127.0.0.1", port=0,
            logger=DNSLogger(logf=lambda *_: None),
        )  # fmt: skip
        self.port = self.server.server.server_address[1]

    def start(self) -> None:
        self.server.start_thread()

    def stop(self) -> None:
        self.server.stop()
        self.server.server.server_close()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


# ----------------------------------------------------------------------------- HTTP
@dataclass
class Fault:
    """Answer matching requests with ``kind`` instead, ``times`` times (``None``: always)."""

    match: Callable[[Request], bool]
    kind: str  # 429, 500, 502, 503, 401, 403, 400, malformed, drop
    times: int | None = 1
    retry_after: str | None = None
    message: str = ""
    code: str = ""
    after: int = 0  # let this many matching requests through first

    seen: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)


def path_is(fragment: str) -> Callable[[Request], bool]:
    return lambda req: fragment in req.path


@dataclass
class Logged:
    method: str
    path: str
    args: dict[str, str]
    body: Any
    headers: dict[str, str]
    status: int = 0


class FakeTenant:
    """Graph and the Exchange admin API for one tenant, on a pytest-httpserver."""

    GRAPH_PAGE = 3  # small pages make paging visible
    TRACE_PAGE = 40

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.events = make_email_events()
        self.signins = make_signins()
        self.traces = make_message_traces(self.events)
        self.sps = make_service_principals()
        self.assignments = make_assignments()
        self.exchange = make_exchange()
        self.faults: list[Fault] = []
        self.log: list[Logged] = []
        self.lock = threading.Lock()
        server.expect_request(re.compile(".*")).respond_with_handler(self.handle)

    @property
    def url(self) -> str:
        return self.server.url_for("").rstrip("/")

    def requests(self, fragment: str) -> list[Logged]:
        return [r for r in self.log if fragment in r.path]

    # ------------------------------------------------------------------ dispatch
    def handle(self, req: Request) -> Response:
        try:
            body = json.loads(req.get_data() or b"null")
        except ValueError:
            body = "<not json>"
        entry = Logged(req.method, req.path, dict(req.args.items()), body, dict(req.headers))
        with self.lock:
            self.log.append(entry)
        response = self._fault(req) or self._route(req, body)
        entry.status = response.status_code
        return response

    def _fault(self, req: Request) -> Response | None:
        for fault in self.faults:
            if not fault.match(req):
                continue
            fault.seen += 1
            if fault.seen <= fault.after:
                continue
            if fault.times is not None and fault.fired >= fault.times:
                continue
            fault.fired += 1
            return _fault_response(fault)
        return None

    def _route(self, req: Request, body: Any) -> Response:
        path = req.path
        auth = req.headers.get("Authorization", "")
        if not auth.startswith("Bearer tok:"):
            return _error(401, "InvalidAuthenticationToken", "Access token is empty.")
        if path == "/v1.0/security/runHuntingQuery" and req.method == "POST":
            return self._hunting(body)
        if path == "/beta/admin/exchange/tracing/messageTraces":
            return self._paged(req, self._traces(req), self.TRACE_PAGE)
        if path == "/v1.0/organization":
            return _json({"value": [{"id": TENANT_ID, "displayName": "Contoso",
                                     "verifiedDomains": [
                                         {"name": PRIMARY, "isDefault": True, "isInitial": False},
                                         {"name": INITIAL, "isDefault": False, "isInitial": True},
                                     ]}]})  # fmt: skip
        if path == "/v1.0/auditLogs/signIns":
            return self._paged(req, self._signins(req), self.GRAPH_PAGE)
        m = re.fullmatch(r"/v1\.0/servicePrincipals\(appId='([0-9a-f-]+)'\)", path)
        if m:
            sp = self.sps.get(m[1])
            return _json(sp) if sp else _error(404, "Request_ResourceNotFound", "no such app")
        m = re.fullmatch(r"/v1\.0/servicePrincipals/([0-9a-f-]+)/appRoleAssignedTo", path)
        if m:
            return self._paged(req, self.assignments.get(m[1], []), 2)
        m = re.fullmatch(r"/v1\.0/servicePrincipals/([0-9a-f-]+)", path)
        if m:
            app = CLIENT_APPS.get(m[1])
            return _json(app) if app else _error(404, "Request_ResourceNotFound", "gone")
        m = re.fullmatch(r"/adminapi/beta/([^/]+)/InvokeCommand", path)
        if m and req.method == "POST":
            return self._invoke(req, m[1], body)
        return _error(404, "NotFound", f"no route for {req.method} {path}")

    # ------------------------------------------------------------------ handlers
    def _hunting(self, body: Any) -> Response:
        if not isinstance(body, dict) or set(body) != {"Query", "Timespan"}:
            return _error(400, "BadRequest", "expected Query and Timespan")
        q = body["Query"]
        m = re.search(
            r"Timestamp >= datetime\(([^)]+)\) and Timestamp < datetime\(([^)]+)\)\s*\|\s*take (\d+)",
            q,
        )
        if not m or not q.startswith("EmailEvents"):
            return _error(400, "BadRequest", "unexpected query")
        start, end, cap = _parse(m[1]), _parse(m[2]), int(m[3])
        if body["Timespan"] != f"{m[1]}/{m[2]}":
            return _error(400, "BadRequest", "Timespan does not match the query")
        rows = [r for r in self.events if start <= _parse(r["Timestamp"]) < end][:cap]
        schema = [{"name": k, "type": "String"} for k in self.events[0]]
        return _json({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#microsoft"
                      ".graph.security.huntingQueryResults", "schema": schema,
                      "results": rows})  # fmt: skip

    def _traces(self, req: Request) -> list[dict[str, Any]]:
        f = req.args.get("$filter", "")
        m = re.fullmatch(r"receivedDateTime ge (\S+) and receivedDateTime le (\S+)", f)
        if not m:
            raise AssertionError(f"unexpected message trace filter {f!r}")
        lo, hi = _parse(m[1]), _parse(m[2])
        return [t for t in self.traces if lo <= _parse(t["receivedDateTime"]) <= hi]

    def _signins(self, req: Request) -> list[dict[str, Any]]:
        f = req.args.get("$filter", "")
        m = re.match(r"createdDateTime ge (\S+) and createdDateTime le (\S+)(?: and \((.*)\))?$", f)
        if not m:
            raise AssertionError(f"unexpected sign-in filter {f!r}")
        lo, hi = _parse(m[1]), _parse(m[2])
        upns = {u.replace("''", "'") for u in re.findall(r"userPrincipalName eq '((?:[^']|'')*)'",
                                                          m[3] or "")}  # fmt: skip
        return [s for s in self.signins if lo <= _parse(s["createdDateTime"]) <= hi
                and (not upns or s["userPrincipalName"].lower() in upns)]  # fmt: skip

    def _paged(self, req: Request, items: list[Any], size: int) -> Response:
        skip = int(req.args.get("$skiptoken", "0"))
        top = int(req.args.get("$top", size))
        size = min(size, top)
        page = items[skip : skip + size]
        doc: dict[str, Any] = {"@odata.context": "https://graph.microsoft.com/$metadata",
                               "value": page}  # fmt: skip
        if skip + size < len(items):
            args = {k: v for k, v in req.args.items() if k != "$skiptoken"}
            args["$skiptoken"] = str(skip + size)
            query = "&".join(f"{k}={_q(v)}" for k, v in args.items())
            doc["@odata.nextLink"] = f"{self.url}{req.path}?{query}"
        return _json(doc)

    def _invoke(self, req: Request, tenant: str, body: Any) -> Response:
        if tenant != TENANT_ID:
            return _error(404, "NotFound", "unknown tenant")
        anchor = req.headers.get("X-AnchorMailbox", "")
        if anchor != f"UPN:SystemMailbox{{bb558c35-97f1-4cb9-8ff7-d53741dc928c}}@{INITIAL}":
            return _error(400, "BadRequest", f"bad anchor mailbox {anchor!r}")
        try:
            name = body["CmdletInput"]["CmdletName"]
            params = body["CmdletInput"]["Parameters"]
        except (TypeError, KeyError):
            return _error(400, "BadRequest", "expected CmdletInput")
        if not isinstance(params, dict):
            return _error(400, "BadRequest", "Parameters must be an object")
        if name not in self.exchange:
            return _error(400, "BadRequest",
                          f"|System.Management.Automation.CommandNotFoundException|The term "
                          f"'{name}' is not recognized as a name of a cmdlet")  # fmt: skip
        objects = self.exchange[name]
        prefer = req.headers.get("Prefer", "")
        m = re.search(r"odata\.maxpagesize=(\d+)", prefer)
        size = int(m[1]) if m else 100
        skip = int(req.args.get("$skiptoken", "0"))
        doc: dict[str, Any] = {
            "@odata.context": f"https://outlook.office365.com/adminapi/beta/{TENANT_ID}"
                              "/$metadata#Collection(Exchange.GenericHashTable)",
            "adminapi.warnings@odata.type": "#Collection(String)",
            "@adminapi.warnings": [],
            "value": objects[skip : skip + size],
        }  # fmt: skip
        if skip + size < len(objects):
            doc["@odata.nextLink"] = (
                f"{self.url}/adminapi/beta/{TENANT_ID}/InvokeCommand?$skiptoken={skip + size}"
            )
        return _json(doc)


def _q(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _parse(text: str) -> datetime:
    text = text.strip().replace("Z", "+00:00")
    if "." in text:  # seven fractional digits, as Defender writes them
        head, _, rest = text.partition(".")
        frac = re.match(r"\d+", rest)[0]  # type: ignore[index]
        text = f"{head}.{frac[:6].ljust(6, '0')}{rest[len(frac):]}"
    return datetime.fromisoformat(text)


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(doc), status=status, headers=headers or {},
                    content_type="application/json")  # fmt: skip


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return _json({"error": {"code": code, "message": message,
                            "innerError": {"request-id": "0000", "date": "2026-03-04T00:00:00"}}},
                 status, headers)  # fmt: skip


def _fault_response(fault: Fault) -> Response:
    kind = fault.kind
    headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
    if kind == "malformed":
        return Response('{"value": [{"id": 1}, ', status=200, content_type="application/json")
    if kind == "drop":
        payload = json.dumps({"value": list(range(500))}).encode()

        def stream() -> Any:
            yield payload[:64]
            raise ConnectionAbortedError("connection dropped midway (fault injection)")

        return Response(stream(), status=200, headers={"Content-Length": str(len(payload))},
                        content_type="application/json")  # fmt: skip
    status = int(kind)
    code = fault.code or {429: "TooManyRequests", 401: "InvalidAuthenticationToken",
                          403: "Authorization_RequestDenied", 400: "BadRequest"}.get(
                              status, "ServiceUnavailable")  # fmt: skip
    return _error(status, code, fault.message or f"injected {status}", headers)


def parse_query_slice(entry: Logged) -> tuple[datetime, datetime, int]:
    m = re.search(r"datetime\(([^)]+)\) and Timestamp < datetime\(([^)]+)\)\s*\|\s*take (\d+)",
                  entry.body["Query"])  # fmt: skip
    assert m
    return _parse(m[1]), _parse(m[2]), int(m[3])


def split_url(url: str) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(url)
    return parts.path, parse_qs(parts.query)
