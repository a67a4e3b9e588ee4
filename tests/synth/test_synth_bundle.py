"""The default bundle: every file present and parseable, and consistent with the truth."""

from __future__ import annotations

import csv
import email
import email.policy
import ipaddress
import json
import re
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from dsguard.synth.model import EE_COLUMNS

EXCHANGE_FILES = (
    "organization_config",
    "transport_config",
    "accepted_domains",
    "inbound_connectors",
    "transport_rules",
    "hosted_connection_filter_policy",
    "anti_phish_policies",
    "dkim_signing_config",
)
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{7})?Z$")


def _as_list(obj: Any) -> list[dict[str, Any]]:
    if isinstance(obj, dict) and "value" in obj:
        obj = obj["value"]
    return obj if isinstance(obj, list) else [obj]


def test_every_bundle_file_is_present(default_bundle: Path) -> None:
    for rel in ("email_events.csv", "message_trace.csv", "signins.json", "dns.json",
                "exceptions.yaml", "truth.json", "graph/service_principals.json"):
        assert (default_bundle / rel).is_file(), rel
    for name in EXCHANGE_FILES:
        assert (default_bundle / "exchange" / f"{name}.json").is_file(), name
    emls = list((default_bundle / "messages").glob("*.eml"))
    assert 40 <= len(emls) <= 80


def test_email_events_csv_shape(default_bundle: Path, events: list[dict[str, str]]) -> None:
    with (default_bundle / "email_events.csv").open(newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert tuple(header) == EE_COLUMNS
    assert events
    whole = 0
    for row in events:
        assert TS.match(row["Timestamp"]), row["Timestamp"]
        whole += "." not in row["Timestamp"]
        auth = json.loads(row["AuthenticationDetails"])
        assert set(auth) == {"SPF", "DKIM", "DMARC", "CompAuth"}
        if row["DetectionMethods"]:
            assert isinstance(json.loads(row["DetectionMethods"]), dict)
        assert row["EmailDirection"] in ("Inbound", "Outbound", "Intra-org")
        assert int(row["BulkComplaintLevel"]) >= 0
    assert 0 < whole < len(events) * 0.1  # a few timestamps without a fraction
    # RFC 4180: JSON columns are quoted with doubled quotes, empty values are ""
    raw = (default_bundle / "email_events.csv").read_text(encoding="utf-8")
    assert '"{""SPF"":""' in raw
    assert ',"",' in raw


def test_rows_are_in_time_order_inside_the_period(truth: dict[str, Any],
                                                  events: list[dict[str, str]]) -> None:
    stamps = [r["Timestamp"][:19] for r in events]
    assert stamps == sorted(stamps)
    assert stamps[0] >= truth["generator"]["start"]
    assert stamps[-1] < truth["generator"]["end"]


def test_one_row_per_message_and_recipient(events: list[dict[str, str]]) -> None:
    keys = Counter((r["NetworkMessageId"], r["RecipientEmailAddress"]) for r in events)
    assert max(keys.values()) == 1
    per_msg = Counter(r["NetworkMessageId"] for r in events)
    assert max(per_msg.values()) > 5  # multi-recipient messages share their NetworkMessageId


def test_campaigns_match_truth(truth: dict[str, Any], events: list[dict[str, str]]) -> None:
    by_nmid = defaultdict(list)
    for r in events:
        by_nmid[r["NetworkMessageId"]].append(r)
    kinds = {c["kind"] for c in truth["campaigns"]}
    assert kinds == {"self_send_lure", "header_spoof_bec", "spf_include_abuse",
                     "service_identity_misuse", "low_and_slow_nonexistent",
                     "third_party_relay_burst"}
    accepted = set(truth["tenant"]["accepted_domains"])
    for c in truth["campaigns"]:
        rows = [r for n in c["network_message_ids"] for r in by_nmid[n]]
        assert len(rows) == c["rows"] and c["messages"] == len(c["network_message_ids"])
        assert {r["SenderIPv4"] for r in rows} == set(c["source_ips"])
        assert all(r["EmailDirection"] == "Inbound" and r["Connectors"] == "" for r in rows)
        p1_ours = {r["SenderMailFromDomain"] in accepted for r in rows}
        assert p1_ours == {c["rds_would_reject"]}
        if c["kind"] == "self_send_lure":
            assert all(r["SenderMailFromAddress"] == r["RecipientEmailAddress"] ==
                       r["SenderFromAddress"] for r in rows)
            assert all(json.loads(r["AuthenticationDetails"])["CompAuth"] == "fail" for r in rows)
            assert any("Spoof intra-org" in r["DetectionMethods"] for r in rows)
            assert any(r["DeliveryAction"] == "Junked" for r in rows)
        if c["kind"] == "header_spoof_bec":
            assert {r["SenderFromAddress"] for r in rows} == {truth["tenant"]["ceo"]}
            assert set(r["RecipientEmailAddress"] for r in rows) <= set(truth["tenant"]["finance"])
            assert all(json.loads(r["AuthenticationDetails"])["SPF"] == "pass" for r in rows)
        if c["kind"] == "spf_include_abuse":
            assert all(json.loads(r["AuthenticationDetails"])["DMARC"] == "pass" for r in rows)
        if c["kind"] == "third_party_relay_burst":
            assert max(Counter(r["NetworkMessageId"] for r in rows).values()) >= 10


def test_hostile_content_is_labelled_and_present(truth: dict[str, Any],
                                                 events: list[dict[str, str]]) -> None:
    payloads = {h["payload"] for h in truth["hostile_content"]}
    assert {"<script>alert(1)</script>", "<img src=x onerror=alert(1)>",
            '=HYPERLINK("http://x","y")', "\x1b[31m"} <= payloads
    by_nmid = {r["NetworkMessageId"]: r for r in events}
    for h in truth["hostile_content"]:
        assert h["payload"] in by_nmid[h["network_message_id"]][h["column"]]
    hostile_rows = [r for r in events if any(p in r["Subject"] or p in r["SenderDisplayName"]
                                             for p in payloads)]
    assert len({r["NetworkMessageId"] for r in hostile_rows}) == len(truth["hostile_content"])


def test_benign_twins_exist(truth: dict[str, Any], events: list[dict[str, str]]) -> None:
    """Anonymous own-domain mail is not all abuse: registered and unregistered benign paths
    carry it too, so "anonymous + own domain" cannot be the detector."""
    flows = {f["id"]: f for f in truth["flows"]}
    for key in ("printer_registered", "printer_unregistered", "hr_lob", "newsletter", "alerts",
                "surveys_saas", "helpdesk_saas", "invoiceflow_partner", "onprem_hybrid",
                "authenticated_users", "expenses_app"):
        assert flows[key]["messages"] > 0, key
    assert flows["helpdesk_saas"]["p1_in_accepted_domain"] is False
    assert flows["helpdesk_saas"]["path"] == "direct_send"  # anonymous, internal-looking
    assert flows["helpdesk_saas"]["rds_would_reject"] is False  # ...but P1 is its own
    rds = truth["hardening"]["reject_direct_send"]["benign_flows_rejected"]
    assert set(rds) == {"printer_registered", "printer_unregistered", "hr_lob", "alerts",
                        "newsletter", "surveys_saas"}
    assert flows["helpdesk_saas"]["internal_looking"] is True
    assert flows["printer_unregistered"]["registration"] == "unregistered"
    assert flows["alerts"]["registration"] == "expired_exception"
    campaign_nmids = {n for c in truth["campaigns"] for n in c["network_message_ids"]}
    accepted = set(truth["tenant"]["accepted_domains"])
    benign_ds = [r for r in events if r["EmailDirection"] == "Inbound" and not r["Connectors"]
                 and r["SenderFromDomain"] in accepted
                 and r["NetworkMessageId"] not in campaign_nmids]
    assert len(benign_ds) > 50
    failing = [r for r in benign_ds if json.loads(r["AuthenticationDetails"])["CompAuth"] ==
               "fail"]
    assert failing  # the unregistered printer and the new SaaS fail authentication too
    assert truth["hardening"]["reject_direct_send"]["campaigns_not_stopped"] == [
        c["id"] for c in truth["campaigns"] if c["kind"] == "header_spoof_bec"]


def test_eml_files_parse_and_match_events(default_bundle: Path, truth: dict[str, Any],
                                          events: list[dict[str, str]]) -> None:
    by_nmid = defaultdict(list)
    for r in events:
        by_nmid[r["NetworkMessageId"]].append(r)
    paths = Counter()
    for entry in truth["messages"]:
        raw = (default_bundle / entry["file"]).read_bytes()
        assert b"\r\n" in raw
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        nmid = msg["X-MS-Exchange-Organization-Network-Message-Id"]
        assert nmid == entry["network_message_id"]
        rows = by_nmid[nmid]
        assert rows, entry
        assert msg["From"].addresses[0].addr_spec == rows[0]["SenderFromAddress"]
        assert msg["Return-Path"] == rows[0]["SenderMailFromAddress"]
        received = msg.get_all("Received")
        eop = [h for h in received if "mail.protection.outlook.com" in h]
        auth_as = msg["X-MS-Exchange-Organization-AuthAs"]
        entity = msg["X-MS-Exchange-CrossTenant-FromEntityHeader"]
        path = entry["path"]
        paths[path] += 1
        if path == "authenticated":
            assert auth_as == "Internal" and entity == "Hosted"
            assert msg["X-MS-Exchange-Organization-MessageDirectionality"] == "Originating"
        else:
            assert len(eop) == 1 and "via Frontend Transport" in " ".join(eop[0].split())
            assert re.search(r"by [A-Z0-9]+FT\d+\.mail\.protection\.outlook\.com", eop[0])
            ar = msg["Authentication-Results"]
            assert "compauth=" in ar and "reason=" in ar
            ffar = msg["X-Forefront-Antispam-Report"]
            assert f"CIP:{rows[0]['SenderIPv4'] or rows[0]['SenderIPv6']};" in ffar
            assert "DIR:" in ffar and "SFV:" in ffar
        if path == "onprem_connector":
            assert entity == "HybridOnPrem" and auth_as == "Internal"
        elif path == "partner_connector":
            assert auth_as == "Partner"
        elif path in ("direct_send", "anonymous_external"):
            assert auth_as == "Anonymous" and entity == "Internet"
    assert set(paths) == {"direct_send", "anonymous_external", "partner_connector",
                          "onprem_connector", "authenticated"}
    labels = {e["campaign"] for e in truth["messages"] if e["label"] == "abuse"}
    assert labels == {c["id"] for c in truth["campaigns"]}
    bodies = b"".join((default_bundle / e["file"]).read_bytes() for e in truth["messages"])
    assert b"from localhost (127.0.0.1)" in bodies
    assert b"X-Mailer: Microsoft Windows PowerShell" in bodies


def test_planted_misconfigurations(default_bundle: Path, truth: dict[str, Any]) -> None:
    ex = default_bundle / "exchange"
    org = json.loads((ex / "organization_config.json").read_text())
    assert org["RejectDirectSend"] is False
    connectors = json.loads((ex / "inbound_connectors.json").read_text())
    types = Counter(c["ConnectorType"] for c in connectors)
    assert types["OnPremises"] == 1 and types["Partner"] == 2
    onprem = next(c for c in connectors if c["ConnectorType"] == "OnPremises")
    assert onprem["TlsSenderCertificateName"] and onprem["RestrictDomainsToCertificate"]
    open_ = [c for c in connectors if c["ConnectorType"] == "Partner"
             and c["SenderDomains"] == ["smtp:*;1"] and not c["RestrictDomainsToIPAddresses"]
             and not c["RestrictDomainsToCertificate"]]
    assert len(open_) == 1
    ip_bound = [c for c in connectors if c["RestrictDomainsToIPAddresses"]]
    assert ip_bound and ip_bound[0]["SenderIPAddresses"]
    assert all(re.match(r"^/Date\(\d+\)/$", c["WhenChanged"]) for c in connectors)
    rules = _as_list(json.loads((ex / "transport_rules.json").read_text()))
    primary = truth["tenant"]["primary_domain"]
    assert any(r["SetSCL"] == -1 and primary in (r["SenderDomainIs"] or []) for r in rules)
    assert json.loads((ex / "transport_config.json").read_text())[
        "SmtpClientAuthenticationDisabled"] is False
    dns = json.loads((default_bundle / "dns.json").read_text())
    assert "p=none" in dns[f"_dmarc.{primary}"][0]
    spf = dns[primary]["TXT"][0]
    assert spf.startswith("v=spf1") and spf.endswith("~all") and "include:" in spf
    assert dns[primary]["MX"][0].endswith(".mail.protection.outlook.com")
    other = [d for d in truth["tenant"]["accepted_domains"][1:2]]
    assert "p=reject" in dns[f"_dmarc.{other[0]}"][0]
    accepted = json.loads((ex / "accepted_domains.json").read_text())
    assert sum(d["InitialDomain"] for d in accepted) == 1
    sps = json.loads((default_bundle / "graph/service_principals.json").read_text())["value"]
    held = {(a["appRoleId"]) for sp in sps for a in sp["appRoleAssignments"]}
    assert "b633e1c5-b582-4048-a93e-9f11b44c7e96" in held  # Mail.Send
    assert "dc890d15-9560-4a4c-9b7f-a736ec74ec40" in held  # full_access_as_app
    families = {p["check_id"] for p in truth["planted_misconfigurations"]}
    assert {"DS-ORG-001", "DS-CON-002", "DS-ETR-001", "DS-DNS-003", "DS-APP-001"} <= families


def test_exceptions_registry(default_bundle: Path, truth: dict[str, Any]) -> None:
    doc = yaml.safe_load((default_bundle / "exceptions.yaml").read_text())
    entries = {e["id"]: e for e in doc["exceptions"]}
    start = date.fromisoformat(truth["generator"]["start"])
    for e in entries.values():
        assert {"id", "name", "owner", "justification", "sources", "senders", "recipients",
                "expires"} <= set(e)
        assert isinstance(e["expires"], date)
    states = {k: v["state"] for k, v in truth["exceptions"].items()}
    expired = [k for k, s in states.items() if s == "expired_in_use"]
    unused = [k for k, s in states.items() if s == "unused"]
    assert len(expired) == 1 and entries[expired[0]]["expires"] < start
    assert len(unused) == 1
    flows = {f["id"]: f for f in truth["flows"]}
    assert flows[truth["exceptions"][expired[0]]["flow"]]["messages"] > 0

    def covered(ip: str, entry: dict[str, Any]) -> bool:
        return any(ipaddress.ip_address(ip) in ipaddress.ip_network(s) for s in entry["sources"])

    for ip in flows["printer_registered"]["source_ips"]:
        assert covered(ip, entries["EX-001"])
    for ip in flows["newsletter"]["source_ips"]:
        assert covered(ip, entries["EX-003"])
    branch = flows["printer_unregistered"]["source_ips"]
    assert branch and not any(covered(ip, e) for ip in branch for e in entries.values())
    devices = {d["device"]: d for d in truth["tenant"]["devices"]}
    assert devices["fax"]["exception"] == "EX-005" and devices["fax"]["flow"] is None


def test_message_trace_v2_export(default_bundle: Path, events: list[dict[str, str]]) -> None:
    raw = (default_bundle / "message_trace.csv").read_bytes()
    assert raw.startswith(b'"Organization","MessageId","Received"') and b"\r\n" in raw
    rows = list(csv.DictReader(raw.decode("utf-8").splitlines()))
    assert rows
    nmids = {r["NetworkMessageId"] for r in events}
    assert {r["MessageTraceId"] for r in rows} <= nmids
    assert re.match(r"^\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d\d:\d\d [AP]M$", rows[0]["Received"])
    assert len(rows) < len(events)  # the last days only


def test_signins_agree_with_mail(default_bundle: Path, truth: dict[str, Any],
                                 events: list[dict[str, str]]) -> None:
    items: list[dict[str, Any]] = []
    lines = (default_bundle / "signins.json").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        page = json.loads(line)
        assert page["@odata.context"].endswith("auditLogs/signIns")
        assert ("@odata.nextLink" in page) == (i < len(lines) - 1)
        items.extend(page["value"])
    stamps = [s["createdDateTime"] for s in items]
    assert stamps == sorted(stamps, reverse=True)
    upns = {s["userPrincipalName"] for s in items}
    assert any(s["clientAppUsed"] == "Authenticated SMTP" for s in items)
    assert any(s["clientAppUsed"] == "Mobile Apps and Desktop clients" for s in items)
    attacker_ips = {ip for c in truth["campaigns"] for ip in c["source_ips"]}
    assert not attacker_ips & {s["ipAddress"] for s in items}  # spoofers never sign in
    for c in truth["campaigns"]:
        if c["kind"] == "low_and_slow_nonexistent":
            assert not set(c["senders_p2"]) & upns
    # a traveller's authenticated mail comes from where they signed in
    trip = truth["tenant"]["travellers"][0]
    mail_ips = {r["SenderIPv4"] for r in events if r["SenderFromAddress"] == trip["user"]
                and r["EmailDirection"] != "Inbound"}
    sign_ips = {s["ipAddress"] for s in items if s["userPrincipalName"] == trip["user"]}
    assert trip["ip"] in mail_ips and trip["ip"] in sign_ips
    assert {s["location"]["countryOrRegion"] for s in items
            if s["ipAddress"] == trip["ip"]} == {trip["country"]}
