"""Raw ``.eml`` copies of sampled messages, stamped the way Exchange Online stamps them.

Each copy is what the first recipient's mailbox holds: the sender's own headers, the hops
before Microsoft (a loopback hop, a third-party relay), the Exchange Online Protection
front-door hop ``... by XXXXFTnnn.mail.protection.outlook.com ... via Frontend Transport`` and
the stamps that reveal the path (``X-MS-Exchange-Organization-AuthAs`` / ``AuthSource`` /
``MessageDirectionality``, ``X-MS-Exchange-CrossTenant-FromEntityHeader``,
``X-Forefront-Antispam-Report``, ``Authentication-Results`` with the compauth reason). The
``X-MS-Exchange-Organization-Network-Message-Id`` equals the EmailEvents ``NetworkMessageId``
of the same message. Header values follow detection-signals.md §2.4/§2.5; where the source
marks a value as unverified (``AuthAs: Partner`` for partner connectors) we use the
documented expectation.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from typing import Any

import numpy as np

from dsguard.synth.campaigns import Extra
from dsguard.synth.entities import SURVEY_SAAS_DOMAIN, Tenant, exo_domain
from dsguard.synth.model import VERDICTS, Verdict
from dsguard.synth.vec import TICKS_PER_SECOND

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CIPHER = "cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
PHISH_HOST = "secure-docs-portal.test"


@dataclass
class Spec:
    """Everything a rendered message needs, from its EmailEvents rows and its origin."""

    path: str  # direct_send | anonymous_external | partner_connector | onprem_connector |
    # authenticated
    nmid: str
    imid: str
    ticks: int
    p1: str
    p2: str
    display: str
    recipients: list[str]
    subject: str
    ip: str
    verdict: Verdict
    lang: str
    attachments: int
    urls: int
    helo: str
    ptr: str
    country: str
    dkim_domain: str
    pre_hops: list[str]
    x_mailer: str = ""
    reply_to: str = ""
    attachment: tuple[str, str] | None = None
    tls: bool = True
    kind: str = ""
    smtp_auth: bool = False
    undisclosed: bool = False


def rfc2822(ticks: int) -> str:
    dt = datetime.fromtimestamp(ticks // TICKS_PER_SECOND, tz=UTC)
    return (f"{_DAYS[dt.weekday()]}, {dt.day} {_MONTHS[dt.month - 1]} {dt.year} "
            f"{dt:%H:%M:%S} +0000")


def fold(name: str, value: str, width: int = 78) -> str:
    """A header line folded at spaces the way Exchange folds long values (CRLF + space)."""
    line = f"{name}: {value}"
    if len(line) <= width:
        return line
    out: list[str] = []
    cur = ""
    for word in line.split(" "):
        if cur and len(cur) + 1 + len(word) > width:
            out.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    out.append(cur)
    return "\r\n ".join(out)


def _encoded(value: str) -> str:
    """RFC 2047 for values with control or non-ASCII characters; otherwise as is."""
    if all(32 <= ord(c) < 127 for c in value):
        return value
    return Header(value, "utf-8").encode()


def _address(display: str, addr: str) -> str:
    if not display:
        return addr
    enc = _encoded(display)
    if enc != display:
        return f"{enc} <{addr}>"
    quoted = display.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{addr}>'


def _v6(rng: np.random.Generator) -> str:
    parts = rng.integers(0, 0xFFFF, size=4)
    return f"2603:10b6:{parts[0]:x}:{parts[1]:x}::{parts[2]:x}"


def _build(rng: np.random.Generator) -> str:
    return f"15.20.{int(rng.integers(8000, 9400))}.{int(rng.integers(10, 40))}"


def _auth_results(s: Spec) -> str:
    v = s.verdict
    dom1 = s.p1.rsplit("@", 1)[1]
    dom2 = s.p2.rsplit("@", 1)[1]
    if s.path in ("authenticated",):
        return f"dkim=none (message not signed) header.d=none;dmarc=none action=none " \
               f"header.from={dom2};"
    spf_note = {
        "pass": f"(sender IP is {s.ip})",
        "fail": f"(sender IP is {s.ip})",
        "softfail": f"(sender IP is {s.ip})",
        "none": f"(sender IP is {s.ip})",
    }.get(v.spf, "")
    dkim = ("dkim=pass (signature was verified) header.d=" + s.dkim_domain
            if v.dkim == "pass" else "dkim=none (message not signed) header.d=none")
    return (f"spf={v.spf} {spf_note} smtp.mailfrom={dom1}; {dkim};dmarc={v.dmarc} "
            f"action={v.dmarc_action} header.from={dom2};compauth={v.compauth} "
            f"reason={v.compauth_reason}")


def _received_spf(s: Spec) -> str:
    dom1 = s.p1.rsplit("@", 1)[1]
    tail = f"receiver=protection.outlook.com; client-ip={s.ip}; helo={s.helo or '[' + s.ip + ']'};"
    spf = s.verdict.spf
    if spf == "pass":
        return (f"Pass (protection.outlook.com: domain of {dom1} designates {s.ip} as permitted "
                f"sender) {tail} pr=C")
    if spf == "softfail":
        return (f"SoftFail (protection.outlook.com: domain of transitioning {dom1} discourages "
                f"use of {s.ip} as permitted sender)")
    if spf == "fail":
        return (f"Fail (protection.outlook.com: domain of {dom1} does not designate {s.ip} as "
                f"permitted sender) {tail}")
    return f"None (protection.outlook.com: {dom1} does not designate permitted sender hosts)"


def _ffar(s: Spec, direction: str) -> str:
    v = s.verdict
    ptr = s.ptr or "InfoDomainNonexistent"
    return (f"CIP:{s.ip};CTRY:{s.country};LANG:{s.lang};SCL:{v.scl};SRV:{v.srv};IPV:{v.ipv};"
            f"SFV:{v.sfv};H:{s.helo or s.ip};PTR:{ptr};CAT:{v.cat};"
            f"SFS:(13230040)(82310400026)(61400799027)(376014);DIR:{direction};")


def _body(s: Spec, t: Tenant, rng: np.random.Generator) -> tuple[str, str]:
    """(plain text, html) bodies by kind of message."""
    org = t.profile.org_name
    token = "".join(f"{int(x):02x}" for x in rng.integers(0, 256, size=8))
    link = f"https://{PHISH_HOST}/view?id={token}"
    first = s.recipients[0].split("@")[0].split(".")[0].title()
    kinds = {
        "fax": (f"You have received a new fax document.\r\nPages: {int(rng.integers(1, 6))}\r\n"
                "Scan the QR code in the attached document to listen or view.\r\n",
                "<p>You have received a new fax document.</p><p>Scan the QR code in the "
                "attached PDF to view it.</p>"),
        "bec": (f"{first},\r\n\r\nAre you available? I need you to handle a confidential "
                "payment today. I am in meetings all day so email only.\r\n\r\nSent from my "
                "phone\r\n", ""),
        "it_phish": ("Your mailbox has reached its storage limit. Verify your account within "
                     f"24 hours to avoid interruption: {link}\r\n",
                     f"<p>Your mailbox has reached its storage limit.</p><p><a href=\"{link}\">"
                     "Verify now</a></p>"),
        "scan": ("Please open the attached scanned document.\r\n", ""),
        "payroll": (f"Your payroll document is ready. Sign in to view it: {link}\r\n",
                    f"<p>Your payroll document is ready.</p><p><a href=\"{link}\">View "
                    "document</a></p>"),
        "share": (f"A document was shared with you.\r\nOpen: {link}\r\n",
                  f"<p>A document was shared with you.</p><p><a href=\"{link}\">Open</a></p>"),
    }
    if s.kind in kinds:
        return kinds[s.kind]
    text = (f"Hello,\r\n\r\nRe: {s.subject}\r\n\r\nPlease see the details below.\r\n\r\n"
            f"Kind regards,\r\n{s.display or org}\r\n")
    return text, ""


_PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]"
        b"/Count 1>>endobj\n3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R"
        b">>endobj\n4 0 obj<</Length 44>>stream\nBT /F1 12 Tf 72 720 Td (QR CODE) Tj ET\n"
        b"endstream endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


def _attachment_bytes(kind: str) -> tuple[str, bytes]:
    if kind == "html":
        return "text/html", (f"<html><body><p>Loading document...</p><a href=\"https://"
                             f"{PHISH_HOST}/scan\">Open</a></body></html>").encode()
    return "application/pdf", _PDF


def _b64(data: bytes) -> str:
    raw = base64.b64encode(data).decode()
    return "\r\n".join(raw[i:i + 76] for i in range(0, len(raw), 76))


def _mime(s: Spec, t: Tenant, rng: np.random.Generator) -> list[str]:
    text, html = _body(s, t, rng)
    bnd = "".join(f"{int(x):02x}" for x in rng.integers(0, 256, size=12))
    alt = f"_000_{bnd}_"
    lines: list[str] = []
    inner: list[str] = []
    if html:
        inner += [f'Content-Type: multipart/alternative; boundary="{alt}"', "", f"--{alt}",
                  'Content-Type: text/plain; charset="utf-8"',
                  "Content-Transfer-Encoding: 7bit", "", text, f"--{alt}",
                  'Content-Type: text/html; charset="utf-8"', "Content-Transfer-Encoding: 7bit",
                  "", f"<html><body>{html}</body></html>", f"--{alt}--", ""]
    else:
        inner += ['Content-Type: text/plain; charset="utf-8"', "Content-Transfer-Encoding: 7bit",
                  "", text]
    if s.attachment is None and s.attachments == 0:
        return inner
    name, kind = s.attachment or (f"Document_{int(rng.integers(1000, 9999))}.pdf", "pdf")
    ctype, data = _attachment_bytes(kind)
    mixed = f"_004_{bnd}_"
    lines += [f'Content-Type: multipart/mixed; boundary="{mixed}"', "", f"--{mixed}", *inner,
              f"--{mixed}", f'Content-Type: {ctype}; name="{name}"',
              f'Content-Disposition: attachment; filename="{name}"',
              "Content-Transfer-Encoding: base64", "", _b64(data), f"--{mixed}--", ""]
    return lines


def render(t: Tenant, s: Spec, rng: np.random.Generator) -> bytes:
    """The raw message as bytes with CRLF line ends."""
    region = t.profile.region
    ft = t.ft_hosts[int(rng.integers(0, len(t.ft_hosts)))]
    ft_eop = exo_domain(ft, region, "FT")
    ca = t.ca_hosts[int(rng.integers(0, len(t.ca_hosts)))]
    ca_fqdn = exo_domain(ca, region, "CA")
    rcpt = s.recipients[0]
    try:
        ri = t.addr.index(rcpt)
    except ValueError:
        ri = 0
    mbx = t.mbx_host[ri % len(t.mbx_host)]
    mbx_fqdn = exo_domain(mbx, region, "MB")
    tick = s.ticks
    sec = TICKS_PER_SECOND
    h: list[str] = []
    h.append(fold("Received", f"from {mbx_fqdn} ({_v6(rng)}) by {mbx_fqdn} with HTTPS; "
                              f"{rfc2822(tick + 3 * sec)}"))
    h.append(fold("Received", f"from {ca_fqdn} ({_v6(rng)}) by {mbx_fqdn} ({_v6(rng)}) with "
                              f"Microsoft SMTP Server (version=TLS1_2, {_CIPHER}) id "
                              f"{_build(rng)}; {rfc2822(tick + 2 * sec)}"))
    tid = t.tenant_id
    org_initial = t.profile.initial
    authenticated = s.path == "authenticated"
    if authenticated:
        sender_i = t.addr.index(s.p2) if s.p2 in t.addr else 0
        smbx = exo_domain(t.mbx_host[sender_i % len(t.mbx_host)], region, "MB")
        if s.smtp_auth:
            h.append(fold("Received", f"from {s.helo or '[' + s.ip + ']'} ({s.ip}) by "
                                      f"{ca}.outlook.office365.com ({_v6(rng)}) with Microsoft "
                                      f"SMTP Server (version=TLS1_2, {_CIPHER}) id "
                                      f"{_build(rng)} via Frontend Transport; "
                                      f"{rfc2822(tick + sec)}"))
        h.append(fold("Received", f"from {smbx} ({_v6(rng)}) by {ca_fqdn} ({_v6(rng)}) with "
                                  f"Microsoft SMTP Server (version=TLS1_2, {_CIPHER}) id "
                                  f"{_build(rng)}; {rfc2822(tick)}"))
        auth_source = smbx
    else:
        h.append(fold("Received", f"from {ft_eop} ({_v6(rng)}) by {ca}.outlook.office365.com "
                                  f"({_v6(rng)}) with Microsoft SMTP Server (version=TLS1_2, "
                                  f"{_CIPHER}) id {_build(rng)} via Frontend Transport; "
                                  f"{rfc2822(tick + sec)}"))
        h.append(fold("Authentication-Results", _auth_results(s)))
        h.append(fold("Received-SPF", _received_spf(s)))
        tls = "version=TLS1_2, " + _CIPHER if s.tls else ""
        server = f"Microsoft SMTP Server ({tls})" if tls else "Microsoft SMTP Server"
        inner_ip = f"10.{int(rng.integers(13, 250))}.{int(rng.integers(0, 255))}." \
                   f"{int(rng.integers(1, 254))}"
        h.append(fold("Received", f"from {s.helo or '[' + s.ip + ']'} ({s.ip}) by "
                                  f"{ft}.mail.protection.outlook.com ({inner_ip}) with {server} "
                                  f"id {_build(rng)} via Frontend Transport; {rfc2822(tick)}"))
        auth_source = ft_eop
    for i, hop in enumerate(s.pre_hops):
        h.append(fold("Received", f"{hop}; {rfc2822(tick - (i + 1) * 2 * sec)}"))
    if s.path == "onprem_connector":
        h.append(fold("Received", f"from {s.helo} ([fe80::{int(rng.integers(1, 0xffff)):x}]) by "
                                  f"{s.helo} ([fe80::{int(rng.integers(1, 0xffff)):x}%12]) with "
                                  f"mapi id 15.02.1544.011; {rfc2822(tick - 2 * sec)}"))
        auth_source = s.helo
    # the sender's own headers
    if s.verdict.dkim == "pass":
        bh = base64.b64encode(rng.integers(0, 256, size=32, dtype=np.uint8).tobytes()).decode()
        sig = base64.b64encode(rng.integers(0, 256, size=96, dtype=np.uint8).tobytes()).decode()
        h.append(fold("DKIM-Signature", f"v=1; a=rsa-sha256; c=relaxed/relaxed; "
                                        f"d={s.dkim_domain}; s=s1; h=From:To:Subject:Date:"
                                        f"Message-ID; bh={bh}; b={sig}"))
    h.append(fold("From", _address(s.display, s.p2)))
    to = "undisclosed-recipients:;" if s.undisclosed else ", ".join(s.recipients[:50])
    h.append(fold("To", to))
    if s.reply_to:
        h.append(fold("Reply-To", s.reply_to))
    h.append(fold("Subject", _encoded(s.subject)))
    h.append(f"Date: {rfc2822(tick - 4 * sec)}")
    h.append(fold("Message-ID", s.imid))
    if s.x_mailer:
        h.append(fold("X-Mailer", s.x_mailer))
    h.append("MIME-Version: 1.0")
    h.append(f"Content-Language: {s.lang if s.lang != 'en' else 'en-US'}")
    h.append(f"Return-Path: {s.p1}")
    h.append(f"X-MS-Exchange-Organization-ExpirationStartTime: {_exp(tick)}")
    h.append("X-MS-Exchange-Organization-ExpirationStartTimeReason: OriginalSubmit")
    h.append("X-MS-Exchange-Organization-ExpirationInterval: 1:00:00:00.0000000")
    h.append("X-MS-Exchange-Organization-ExpirationIntervalReason: OriginalSubmit")
    h.append(f"X-MS-Exchange-Organization-Network-Message-Id: {s.nmid}")
    h.append("X-EOPAttributedMessage: 0")
    h.append(f"X-EOPTenantAttributedMessage: {tid}:0")
    v = s.verdict
    if s.path == "onprem_connector":
        h.append("X-MS-Exchange-Organization-MessageDirectionality: Originating")
        h.append(f"X-MS-Exchange-Organization-AuthSource: {auth_source}")
        h.append("X-MS-Exchange-Organization-AuthAs: Internal")
        h.append("X-MS-Exchange-Organization-AuthMechanism: 10")
        h.append(f"X-CrossPremisesHeadersPromoted: {ft_eop}")
        h.append(f"X-CrossPremisesHeadersFiltered: {ft_eop}")
        h.append("X-MS-Exchange-SenderADCheck: 1")
        h.append("X-MS-Exchange-AntiSpam-Relay: 0")
        h.append(f"X-OriginatorOrg: {org_initial}")
        direction, cross_as, entity = "INT", "Anonymous", "HybridOnPrem"
    elif authenticated:
        h.append("X-MS-Exchange-Organization-MessageDirectionality: Originating")
        h.append(f"X-MS-Exchange-Organization-AuthSource: {auth_source}")
        h.append("X-MS-Exchange-Organization-AuthAs: Internal")
        h.append("X-MS-Exchange-Organization-AuthMechanism: 04")
        h.append(f"X-MS-Exchange-Organization-OriginalClientIPAddress: {s.ip}")
        h.append(f"X-OriginatorOrg: {org_initial}")
        h.append(f"X-MS-Has-Attach: {'yes' if s.attachments else ''}".rstrip())
        direction, cross_as, entity = "INT", "Internal", "Hosted"
    else:
        h.append("X-MS-Exchange-Organization-MessageDirectionality: Incoming")
        h.append(f"X-MS-Exchange-Organization-AuthSource: {auth_source}")
        partner = s.path == "partner_connector"
        h.append(f"X-MS-Exchange-Organization-AuthAs: {'Partner' if partner else 'Anonymous'}")
        direction, cross_as, entity = "INB", "Anonymous", "Internet"
    h.append("X-MS-PublicTrafficType: Email")
    h.append(f"X-MS-Office365-Filtering-Correlation-Id: {s.nmid}")
    h.append(f"X-MS-Exchange-Organization-SCL: {v.scl}")
    h.append(f"X-Microsoft-Antispam: BCL:{v.bcl};")
    h.append(fold("X-Forefront-Antispam-Report", _ffar(s, direction)))
    h.append(f"X-MS-Exchange-CrossTenant-OriginalArrivalTime: {_exp(tick)}")
    h.append(f"X-MS-Exchange-CrossTenant-Network-Message-Id: {s.nmid}")
    h.append(f"X-MS-Exchange-CrossTenant-Id: {tid}")
    h.append(f"X-MS-Exchange-CrossTenant-AuthSource: {auth_source}")
    h.append(f"X-MS-Exchange-CrossTenant-AuthAs: {cross_as}")
    h.append(f"X-MS-Exchange-CrossTenant-FromEntityHeader: {entity}")
    if authenticated:
        h.append("X-MS-Exchange-CrossTenant-MailboxType: HOSTED")
        upn = base64.b64encode(rng.integers(0, 256, size=48, dtype=np.uint8).tobytes()).decode()
        h.append(fold("X-MS-Exchange-CrossTenant-UserPrincipalName", upn))
    if s.path == "onprem_connector":
        h.append(fold("X-MS-Exchange-CrossTenant-OriginalAttributedTenantConnectingIp",
                      f"TenantId={tid};Ip=[{s.ip}];Helo=[{s.helo}]"))
    h.append(f"X-MS-Exchange-Transport-CrossTenantHeadersStamped: {mbx}")
    latency = f"00:00:{int(rng.integers(1, 9)):02d}.{int(rng.integers(0, 9999999)):07d}"
    h.append(f"X-MS-Exchange-Transport-EndToEndLatency: {latency}")
    if v.delivery_action != "Blocked":
        jmr = 1 if v.dest == "J" else 0
        h.append(fold("X-Microsoft-Antispam-Mailbox-Delivery",
                      f"ucf:0;jmr:{jmr};auth:0;dest:{v.dest};ENG:(910005)(944506478)"
                      f"(944626604)(920097)(930097)(140003);"))
    h.extend(_mime(s, t, rng))
    text = "\r\n".join(h)
    if not text.endswith("\r\n"):
        text += "\r\n"
    return text.encode("utf-8")


def _exp(ticks: int) -> str:
    dt = datetime.fromtimestamp(ticks // TICKS_PER_SECOND, tz=UTC)
    frac = (ticks % TICKS_PER_SECOND) // 1000
    return f"{dt.day:02d} {_MONTHS[dt.month - 1]} {dt.year} {dt:%H:%M:%S}.{frac:04d} (UTC)"


def spec_from_rows(t: Tenant, rows: list[dict[str, Any]], path: str, flow: str,
                   extra: Extra | None) -> Spec:
    """The render spec of one message from its EmailEvents rows (one per recipient)."""
    r0 = rows[0]
    ip = r0["SenderIPv4"] or r0["SenderIPv6"]
    info = t.ips[t.ip_index[ip]] if ip in t.ip_index else None
    v = VERDICTS[int(r0["_verdict"])]
    p2dom = r0["SenderFromDomain"]
    dkim_domain = SURVEY_SAAS_DOMAIN if flow == "surveys_saas" else p2dom
    spec = Spec(
        path=path,
        nmid=r0["NetworkMessageId"],
        imid=r0["InternetMessageId"],
        ticks=int(r0["_ticks"]),
        p1=r0["SenderMailFromAddress"],
        p2=r0["SenderFromAddress"],
        display=r0["SenderDisplayName"],
        recipients=[r["RecipientEmailAddress"] for r in rows],
        subject=r0["Subject"],
        ip=ip,
        verdict=v,
        lang=r0["EmailLanguage"] or "en",
        attachments=int(r0["AttachmentCount"] or 0),
        urls=int(r0["UrlCount"] or 0),
        helo=(info.helo if info else "") or (info.ptr if info else ""),
        ptr=info.ptr if info else "",
        country=info.country if info else "US",
        dkim_domain=dkim_domain,
        pre_hops=[],
        smtp_auth=flow == "expenses_app",
    )
    if flow == "onprem_hybrid":
        spec.helo = t.ips[t.devices["hybrid"].ips[0]].helo
    if extra is not None:
        spec.helo = extra.helo
        spec.ptr = extra.ptr
        spec.country = extra.country
        spec.pre_hops = list(extra.pre_hops)
        spec.x_mailer = extra.x_mailer
        spec.reply_to = extra.reply_to
        spec.attachment = extra.attachment
        spec.tls = extra.tls
        spec.kind = extra.kind
        spec.undisclosed = extra.kind == "share"
    return spec
