"""Labelled abuse campaigns, modelled on published Direct Send campaigns.

Campaigns are small (hundreds of rows), so they are built as Python rows with every detail
the ``.eml`` renderer needs (HELO, PTR, relay hops, X-Mailer, attachments). Kinds:

``self_send_lure``            fax/voicemail lures sent by a PowerShell script from a foreign VPS,
                              P1 = P2 = recipient (Varonis, Microsoft TI)
``header_spoof_bec``          CEO fraud: P1 in the attacker's own domain (passes its SPF), only
                              the From header is ours; RejectDirectSend does not stop it
``spf_include_abuse``         sent through a shared service our SPF includes, so SPF and DMARC
                              pass
``service_identity_misuse``   a registered printer's scan@ identity used from a new source
``low_and_slow_nonexistent``  a sender address that does not exist, a few messages a day
``third_party_relay_burst``   a burst relayed through another organisation's unsecured mail
                              gateway (Proofpoint), many recipients per message

A handful of labelled rows carry hostile strings (HTML, a spreadsheet formula, an ANSI
escape) so later stages can test that they keep attacker text inert.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np

from dsguard.synth.entities import SHARED_SERVICE_NET, Tenant, exo_domain
from dsguard.synth.model import VERDICT_BCL, VERDICTS, spoof_verdict, verdict_id
from dsguard.synth.vec import NET_EPOCH_TICKS, TICKS_PER_SECOND, rng_for, stable_hash

HOSTILE_SCRIPT = "<script>alert(1)</script>"
HOSTILE_IMG = "<img src=x onerror=alert(1)>"
HOSTILE_FORMULA = '=HYPERLINK("http://x","y")'
HOSTILE_ANSI = "\x1b[31m"

ATTACKER_BEC_DOMAIN = "swiftmail-relay.test"
ATTACKER_REPLY_DOMAIN = "securemail.test"
RELAY_ORG_DOMAIN = "northwind-logistics.example"


@dataclass
class Extra:
    """Details of one campaign message that only the raw message shows."""

    helo: str
    ptr: str
    country: str
    pre_hops: list[str] = field(default_factory=list)  # Received: values before EOP, newest first
    x_mailer: str = ""
    reply_to: str = ""
    attachment: tuple[str, str] | None = None  # (file name, kind: pdf_qr | html | xlsx)
    tls: bool = False
    body: str = ""
    kind: str = ""


@dataclass
class Campaign:
    id: str
    kind: str
    description: str
    rds_would_reject: bool
    rows: list[dict[str, Any]] = field(default_factory=list)
    extras: dict[str, Extra] = field(default_factory=dict)
    hostile: list[dict[str, str]] = field(default_factory=list)

    def truth(self) -> dict[str, Any]:
        nmids = sorted({r["NetworkMessageId"] for r in self.rows})
        ticks = [r["_ticks"] for r in self.rows]
        return {
            "id": self.id,
            "kind": self.kind,
            "description": self.description,
            "messages": len(nmids),
            "rows": len(self.rows),
            "network_message_ids": nmids,
            "senders_p1": sorted({r["SenderMailFromAddress"] for r in self.rows}),
            "senders_p2": sorted({r["SenderFromAddress"] for r in self.rows}),
            "source_ips": sorted({r["SenderIPv4"] for r in self.rows if r["SenderIPv4"]}),
            "recipients": len({r["RecipientEmailAddress"] for r in self.rows}),
            "first_seen": ticks_iso(min(ticks)) if ticks else None,
            "last_seen": ticks_iso(max(ticks)) if ticks else None,
            "rds_would_reject": self.rds_would_reject,
            "hostile_content": self.hostile,
        }


def ticks_iso(ticks: int) -> str:
    secs, frac = divmod(int(ticks), TICKS_PER_SECOND)
    d = np.datetime64(secs, "s")
    return f"{np.datetime_as_string(d, unit='s')}.{frac:07d}Z"


class Builder:
    """Shared plumbing: time, ids and the EmailEvents row of a campaign message."""

    def __init__(self, t: Tenant, rng: np.random.Generator) -> None:
        self.t = t
        self.rng = rng
        self.objid = {a: o for a, o in zip(t.addr, t.addr_objid, strict=True) if o}
        self.display = dict(zip(t.addr, t.addr_display, strict=True))
        self.epoch_day = (t.start - date(1970, 1, 1)).days
        self.ft = [exo_domain(h, t.profile.region, "FT") for h in t.ft_hosts]

    def at(self, day: int, local_hour: float) -> int:
        """UTC ticks for a local time on a day of the period (with random sub-seconds)."""
        secs = (self.epoch_day + day) * 86400 + int((local_hour - self.t.profile.tz_hours) * 3600)
        lo = self.epoch_day * 86400
        hi = (self.epoch_day + self.t.days) * 86400 - 3600
        secs = min(max(secs, lo), hi)  # keep local-time schedules inside the UTC period
        return secs * TICKS_PER_SECOND + int(self.rng.integers(0, TICKS_PER_SECOND))

    def nmid(self, ticks: int) -> str:
        raw = bytearray(self.rng.integers(0, 256, size=16, dtype=np.uint8).tobytes())
        net = (ticks + NET_EPOCH_TICKS) >> 16
        raw[10:16] = net.to_bytes(8, "big")[2:]
        h = raw.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def hexid(self, n: int, upper: bool = False) -> str:
        s = self.rng.integers(0, 256, size=(n + 1) // 2, dtype=np.uint8).tobytes().hex()[:n]
        return s.upper() if upper else s

    def message(self, c: Campaign, ticks: int, p1: str, p2: str, display: str,
                recipients: list[str], subject: str, ip: str, verdict: str, imid: str,
                extra: Extra, attachments: int = 0, urls: int = 0, size: int = 0,
                connectors: str = "") -> str:
        """Append one message (one row per recipient) to the campaign; return its NMID."""
        nmid = self.nmid(ticks)
        v = verdict_id(verdict)
        vd = VERDICTS[v]
        to_json = "[" + ",".join(f'"{r}"' for r in recipients) + "]"
        for r in recipients:
            c.rows.append({
                "NetworkMessageId": nmid,
                "InternetMessageId": imid,
                "SenderMailFromAddress": p1,
                "SenderFromAddress": p2,
                "SenderDisplayName": display,
                "SenderObjectId": self.objid.get(p2, ""),
                "SenderMailFromDomain": p1.rsplit("@", 1)[1],
                "SenderFromDomain": p2.rsplit("@", 1)[1],
                "SenderIPv4": ip,
                "SenderIPv6": "",
                "RecipientEmailAddress": r,
                "RecipientObjectId": self.objid.get(r, ""),
                "Subject": subject,
                "EmailClusterId": 70_000_000 + stable_hash(subject) % 1_000_000,
                "EmailDirection": "Inbound",
                "DeliveryAction": vd.delivery_action,
                "DeliveryLocation": vd.delivery_location,
                "ThreatTypes": vd.threat_types,
                "ThreatNames": "",
                "DetectionMethods": vd.detection_json,
                "ConfidenceLevel": vd.confidence_json,
                "BulkComplaintLevel": VERDICT_BCL[v],
                "EmailAction": vd.email_action,
                "EmailActionPolicy": vd.email_action_policy,
                "EmailActionPolicyGuid": vd.email_action_policy_guid,
                "AuthenticationDetails": vd.auth_json,
                "AttachmentCount": attachments,
                "UrlCount": urls,
                "EmailLanguage": "en",
                "Connectors": connectors,
                "OrgLevelAction": vd.org_level_action,
                "OrgLevelPolicy": vd.org_level_policy,
                "UserLevelAction": "",
                "UserLevelPolicy": "",
                "ReportId": f"{nmid}-{int(self.rng.integers(10**17, 10**18))}-1",
                "AdditionalFields": "",
                "LatestDeliveryLocation": vd.delivery_location,
                "LatestDeliveryAction": vd.delivery_action,
                "_ticks": ticks,
                "_verdict": v,
                "_size": size or int(self.rng.integers(6000, 40000)),
                "_first_contact": False,
                "_to": to_json,
            })
        c.extras[nmid] = extra
        return nmid

    def hostile(self, c: Campaign, nmid: str, column: str, payload: str) -> None:
        c.hostile.append({"network_message_id": nmid, "column": column, "payload": payload})


def _scale(t: Tenant) -> float:
    return float(np.clip(math.sqrt(t.users / 200.0), 0.5, 8.0))


def _days(rng: np.random.Generator, t: Tenant, n: int, weekdays_only: bool = False) -> list[int]:
    days = [d for d in range(t.days)
            if not weekdays_only or (t.start + timedelta(days=d)).weekday() < 5] or [0]
    return sorted(int(x) for x in rng.choice(days, size=n, replace=len(days) < n))


def _people(t: Tenant) -> list[int]:
    return [i for i in range(t.users) if not t.onprem[i]] or list(range(t.users))


def self_send_lure(b: Builder, cid: str, s: float) -> Campaign:
    t, rng = b.t, b.rng
    c = Campaign(cid, "self_send_lure",
                 "Fax and voicemail lures sent by a PowerShell script (Send-MailMessage) from "
                 "a foreign VPS straight to the tenant's MX endpoint; each recipient gets mail "
                 "'from' themselves with a QR-code PDF.", rds_would_reject=True)
    strict = t.profile.dmarc_enforced
    waves = max(2, round(3 * s))
    per_wave = max(4, round(18 * _scale(t) * math.sqrt(s)))
    people = _people(t)
    lures = (
        "New Missed Fax-msg",
        "Caller Left VM Message * Duration-00:{mm}:{ss}",
        "Fax Delivery Report: {n} pages received",
        "Voicemail from +1 (555) 01{nn}-{nnnn}",
        "{first}, you have (1) new voice message",
        "New Fax Received for {first} - {n} page(s)",
    )
    countries = ("UA", "RU", "NL", "RO", "VN", "BG")
    for w, day in enumerate(_days(rng, t, waves)):
        ip = f"192.0.2.{50 + int(rng.integers(0, 20))}"
        helo = f"WIN-{b.hexid(11, upper=True)}"
        ptr = "" if rng.random() < 0.6 else f"vps{int(rng.integers(100, 999))}.cheap-vps.test"
        country = countries[int(rng.integers(0, len(countries)))]
        start_h = float(rng.uniform(1.0, 5.0))  # the script runs at night, local time
        targets = rng.choice(people, size=min(per_wave, len(people)), replace=False)
        ticks = b.at(day, start_h)
        for i, u in enumerate(targets):
            ticks += int(rng.integers(8, 95)) * TICKS_PER_SECOND
            addr = t.addr[int(u)]
            first = t.first[int(u)]
            tpl = lures[int(rng.integers(0, len(lures)))]
            subject = tpl.format(mm=f"{int(rng.integers(0, 2)):02d}",
                                 ss=f"{int(rng.integers(5, 59)):02d}",
                                 n=int(rng.integers(1, 6)), nn=f"{int(rng.integers(0, 99)):02d}",
                                 nnnn=f"{int(rng.integers(0, 9999)):04d}", first=first)
            display = ("Voice Mail", "Fax Services", t.display[int(u)], "VM Notification")[
                int(rng.integers(0, 4))]
            hostile = w == 0 and i == 1
            if hostile:
                subject = f"{HOSTILE_ANSI}URGENT\x1b[0m {subject}"
            r = rng.random()
            role = "inbox" if r < 0.5 else "junk" if r < 0.88 else "quarantine"
            verdict = spoof_verdict(strict, role)
            if addr.endswith("@" + t.profile.brand):
                verdict = "ds_dmarc_reject"  # the brand domain publishes p=reject
            x_mailer = "Microsoft Windows PowerShell 5.1 Send-MailMessage" if rng.random() < 0.5 \
                else ""
            extra = Extra(helo, ptr, country, x_mailer=x_mailer,
                          attachment=(f"Fax_Message_{int(rng.integers(1000, 9999))}.pdf",
                                      "pdf_qr"), kind="fax")
            imid = f"<{b.nmid(ticks)}@{b.ft[int(rng.integers(0, len(b.ft)))]}>"
            nmid = b.message(c, ticks, addr, addr, display, [addr], subject, ip,
                             verdict, imid, extra, attachments=1,
                             size=int(rng.integers(60_000, 180_000)))
            if hostile:
                b.hostile(c, nmid, "Subject", HOSTILE_ANSI)
    return c


def header_spoof_bec(b: Builder, cid: str, s: float) -> Campaign:
    t, rng = b.t, b.rng
    c = Campaign(cid, "header_spoof_bec",
                 "CEO fraud: the envelope sender is the attacker's own domain (its SPF passes); "
                 "only the From header claims the CEO. Asks finance for wire transfers and "
                 "payroll changes. RejectDirectSend does not apply (P1 is not ours).",
                 rds_would_reject=False)
    strict = t.profile.dmarc_enforced
    ceo = t.addr[t.ceo]
    ceo_name = t.display[t.ceo]
    n = max(3, round(8 * s))
    subjects = (
        "Urgent: wire transfer needed today",
        "Confidential - acquisition payment",
        "Are you at your desk?",
        "Change of direct deposit details",
        "Payroll update request",
        "Quick favour - keep this between us",
    )
    reply_to = f"{t.first[t.ceo].lower()}.{t.last[t.ceo].lower()}.office@{ATTACKER_REPLY_DOMAIN}"
    fin = [t.addr[i] for i in t.finance]
    for i, day in enumerate(_days(rng, t, n, weekdays_only=True)):
        ticks = b.at(day, float(rng.uniform(8.5, 16.5)))
        ip = f"192.0.2.{80 + int(rng.integers(0, 2))}"
        host = f"mta{ip.rsplit('.', 1)[1]}.{ATTACKER_BEC_DOMAIN}"
        k = 1 if rng.random() < 0.7 else 2
        recips = [fin[j] for j in rng.choice(len(fin), size=min(k, len(fin)), replace=False)]
        p1 = f"{b.hexid(8)}@{ATTACKER_BEC_DOMAIN}"
        display = ceo_name
        hostile = i == 1
        if hostile:
            display = f"{ceo_name} {HOSTILE_IMG}"
        role = "p2_inbox" if rng.random() < 0.6 else "p2_junk"
        extra = Extra(host, host, "NG" if rng.random() < 0.5 else "US", reply_to=reply_to,
                      tls=True, kind="bec")
        imid = f"<{b.hexid(24)}@{ATTACKER_BEC_DOMAIN}>"
        nmid = b.message(c, ticks, p1, ceo, display, recips,
                         subjects[int(rng.integers(0, len(subjects)))], ip,
                         spoof_verdict(strict, role), imid, extra,
                         size=int(rng.integers(4000, 9000)))
        if hostile:
            b.hostile(c, nmid, "SenderDisplayName", HOSTILE_IMG)
    return c


def spf_include_abuse(b: Builder, cid: str, s: float) -> Campaign:
    t, rng = b.t, b.rng
    c = Campaign(cid, "spf_include_abuse",
                 "Credential phishing sent through the shared sending service that the primary "
                 "domain's SPF includes: SPF passes for our domain, so DMARC and compauth pass "
                 "too. Impersonates the IT service desk.", rds_would_reject=True)
    sender = t.addr[t.special["itsupport"]]
    subjects = (
        "Action required: mailbox storage quota exceeded",
        "IT Notice: your password expires in 24 hours",
        "Multi-factor authentication re-enrollment required",
        "Security update: verify your account",
    )
    people = _people(t)
    per_burst = max(6, round(40 * _scale(t) * s))
    base = int(SHARED_SERVICE_NET.split(".")[2]) + 5  # 198.18.21.x: inside the included /20
    for burst, day in enumerate(_days(rng, t, 2, weekdays_only=True)):
        ticks = b.at(day, float(rng.uniform(9.0, 14.0)))
        subject = subjects[int(rng.integers(0, len(subjects)))]
        targets = rng.choice(people, size=min(per_burst, len(people)), replace=False)
        for i, u in enumerate(targets):
            ticks += int(rng.integers(1, 20)) * TICKS_PER_SECOND
            ip = f"198.18.{base}.{40 + int(rng.integers(0, 6))}"
            host = f"o{ip.rsplit('.', 1)[1]}.ptr{int(rng.integers(100, 999))}.mailrelay.example"
            subj = subject
            hostile = burst == 0 and i == 2
            if hostile:
                subj = HOSTILE_FORMULA
            verdict = "spf_include_pass" if rng.random() < 0.85 else "spf_include_url_quarantine"
            extra = Extra(host, host, "US", tls=True, kind="it_phish")
            imid = f"<{b.hexid(20)}.{int(rng.integers(10**5, 10**6))}@mailrelay.example>"
            nmid = b.message(c, ticks, sender, sender, "IT Service Desk", [t.addr[int(u)]], subj,
                             ip, verdict, imid, extra, urls=int(rng.integers(1, 3)),
                             size=int(rng.integers(30_000, 60_000)))
            if hostile:
                b.hostile(c, nmid, "Subject", HOSTILE_FORMULA)
    return c


def service_identity_misuse(b: Builder, cid: str, s: float) -> Campaign:
    t, rng = b.t, b.rng
    c = Campaign(cid, "service_identity_misuse",
                 "The registered printers' scan@ identity used from a new external source: "
                 "'Scanned from' lures with an HTML attachment, outside office hours.",
                 rds_would_reject=True)
    strict = t.profile.dmarc_enforced
    scan = t.addr[t.special["scan"]]
    printer = t.printers[0].name
    people = _people(t)
    n = max(4, round(12 * _scale(t) * s))
    days = _days(rng, t, 2, weekdays_only=True)
    ip = "192.0.2.120"
    for i in range(n):
        day = days[i % len(days)]
        ticks = b.at(day, float(rng.uniform(19.0, 23.5)))
        u = int(rng.choice(people))
        subject = f"Scanned from {printer}" if rng.random() < 0.6 else f"Message from {printer}"
        role = "inbox" if rng.random() < 0.55 else "junk"
        stamp = (t.start + timedelta(days=day)).strftime("%Y%m%d")
        extra = Extra("localhost", "", "BR", attachment=(
            f"Scan_{stamp}_{int(rng.integers(1000, 9999))}.html", "html"), pre_hops=[
            f"from localhost (localhost [127.0.0.1]) by localhost (Postfix) with ESMTP id "
            f"{b.hexid(10, upper=True)}"], kind="scan")
        imid = f"<{b.hexid(16, upper=True)}@localhost>"
        b.message(c, ticks, scan, scan, printer, [t.addr[u]], subject, ip,
                  spoof_verdict(strict, role), imid, extra, attachments=1,
                  size=int(rng.integers(20_000, 50_000)))
    return c


def low_and_slow(b: Builder, cid: str, s: float) -> Campaign:
    t, rng = b.t, b.rng
    c = Campaign(cid, "low_and_slow_nonexistent",
                 "A sender address that does not exist in the tenant sends a few payroll lures "
                 "a day for the whole period from rotating hosts.", rds_would_reject=True)
    strict = t.profile.dmarc_enforced
    sender = f"payroll-notices@{t.profile.primary}"
    subjects = (
        "Your payslip for this month is ready",
        "Salary adjustment notice",
        "Benefits enrollment closes Friday",
        "Action needed: confirm your tax details",
        "Bonus statement available",
    )
    people = _people(t)
    hostile_done = False
    for day in range(t.days):
        for _ in range(int(rng.poisson(2.5 * s))):
            ticks = b.at(day, float(rng.uniform(7.0, 18.0)))
            n_ip = int(rng.integers(0, 10))
            ip = f"192.0.2.{200 + n_ip}"
            helo = f"mail{n_ip}.notice-center.test"
            subject = subjects[int(rng.integers(0, len(subjects)))]
            hostile = not hostile_done and day >= t.days // 3
            if hostile:
                subject = f"{HOSTILE_SCRIPT} Payslip notice"
                hostile_done = True
            role = "inbox" if rng.random() < 0.7 else "junk"
            extra = Extra(helo, "", ("US", "DE", "SG", "FR")[n_ip % 4], tls=rng.random() < 0.5,
                          kind="payroll")
            imid = f"<{b.hexid(12)}.{b.hexid(8)}@{helo}>"
            nmid = b.message(c, ticks, sender, sender, "Payroll Department",
                             [t.addr[int(rng.choice(people))]], subject, ip,
                             spoof_verdict(strict, role), imid, extra,
                             urls=1, size=int(rng.integers(9000, 20000)))
            if hostile:
                b.hostile(c, nmid, "Subject", HOSTILE_SCRIPT)
    return c


def relay_burst(b: Builder, cid: str, s: float) -> Campaign:
    t, rng = b.t, b.rng
    allowed = t.profile.net.relay_appliance_ip in t.profile.ip_allow_list
    c = Campaign(cid, "third_party_relay_burst",
                 "A burst relayed through another organisation's unsecured mail gateway (TLS "
                 "with a self-signed certificate): document-share lures to many recipients per "
                 "message within minutes." + (
                     " The gateway's IP is on the connection filter's IP Allow List, so "
                     "filtering is skipped." if allowed else ""), rds_would_reject=True)
    strict = t.profile.dmarc_enforced
    sender = f"documents@{t.profile.primary}"
    ip = t.profile.net.relay_appliance_ip
    gw = f"smtp-gw.{RELAY_ORG_DOMAIN}"
    people = _people(t)
    n_msgs = max(3, round(6 * s))
    day = _days(rng, t, 1, weekdays_only=True)[0]
    ticks = b.at(day, float(rng.uniform(10.0, 15.0)))
    files = ("Q4 Bonus Allocation.xlsx", "Compensation_Review.pdf", "Updated Org Chart.pdf",
             "Holiday Schedule.docx")
    vps = f"192.0.2.{30 + int(rng.integers(0, 10))}"
    vps_host = f"WIN-{b.hexid(11, upper=True)}"
    for i in range(n_msgs):
        ticks += int(rng.integers(40, 200)) * TICKS_PER_SECOND
        k = min(len(people), max(3, int(rng.integers(25, 46) * min(_scale(t), 3.0))))
        recips = [t.addr[int(u)] for u in rng.choice(people, size=k, replace=False)]
        f = files[i % len(files)]
        subject = f"Document shared with you: \"{f}\""
        display = "SharePoint Online"
        hostile = i == 0
        if hostile:
            display = f"{HOSTILE_ANSI}SharePoint Online\x1b[0m"
        if allowed:
            verdict = "ds_spoof_ip_allowed"
        else:
            verdict = spoof_verdict(strict, "inbox" if rng.random() < 0.4 else "junk")
        hops = [
            f"from {vps_host} ([{vps}]) by {gw} with ESMTPS id {b.hexid(12, upper=True)} "
            f"(version=TLS1_2 cipher=ECDHE-RSA-AES256-GCM-SHA384 bits=256 verify=NO)",
            f"from localhost (127.0.0.1) by {vps_host} with Microsoft SMTPSVC(10.0.17763.1)",
        ]
        extra = Extra(gw, gw, "US", pre_hops=hops, tls=True, kind="share",
                      x_mailer="Microsoft Windows PowerShell 5.1 Send-MailMessage")
        imid = f"<{b.hexid(32)}@{vps_host}>"
        nmid = b.message(c, ticks, sender, sender, display, recips, subject, ip, verdict, imid,
                         extra, urls=1, size=int(rng.integers(15_000, 30_000)))
        if hostile:
            b.hostile(c, nmid, "SenderDisplayName", HOSTILE_ANSI)
    return c


KINDS = (
    ("self_send_lure", self_send_lure),
    ("header_spoof_bec", header_spoof_bec),
    ("spf_include_abuse", spf_include_abuse),
    ("service_identity_misuse", service_identity_misuse),
    ("low_and_slow_nonexistent", low_and_slow),
    ("third_party_relay_burst", relay_burst),
)


def build_campaigns(t: Tenant) -> list[Campaign]:
    """Every campaign of the tenant, each with its own random stream."""
    out = []
    for n, (kind, fn) in enumerate(KINDS, start=1):
        scale = t.profile.campaign_scale.get(kind, 1.0)
        if scale <= 0:
            continue
        b = Builder(t, rng_for(t.seed, t.profile.key, "campaign", kind))
        out.append(fn(b, f"CMP-{n:02d}", scale))
    return out
