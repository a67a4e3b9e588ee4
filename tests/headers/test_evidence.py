"""Header evidence on header sets modelled on detection-signals §2.5, and the trust boundary:
only the receiving tenant's Exchange Online stamps count."""

from __future__ import annotations

import json

import pytest

from dsguard.headers import semantics as sem
from dsguard.headers.evidence import HeaderEvidence, extract_evidence

Headers = list[tuple[str, str]]

TENANT = "c90d70ba-1111-4222-8333-944444444444"
NMID = "4943bf69-c227-4d82-7725-08db120428e7"
FRONT_DOOR = "AM0PR01FT012.eop-eur01.prod.protection.outlook.com"

MAILBOX_HOPS: Headers = [
    ("Received", "from AM6P191CA0001.EURP191.PROD.OUTLOOK.COM (2603:10a6:209:8b::14) by "
     "DB9PR01MB1234.eurprd01.prod.outlook.com with HTTPS; Mon, 6 Jan 2026 10:00:03 +0000"),
    ("Received", "from AM0PR01FT012.eop-eur01.prod.protection.outlook.com (2603:10a6:20b:1::1)"
     "\r\n by AM6P191CA0001.outlook.office365.com (2603:10a6:209:8b::14) with Microsoft"
     "\r\n SMTP Server id 15.20.6954.28 via Frontend Transport; Mon, 6 Jan 2026 10:00:02 +0000"),
]


def entry_hop(source: str, ip: str) -> tuple[str, str]:
    return ("Received", f"from {source} ({ip}) by AM0PR01FT012.mail.protection.outlook.com "
                        "(10.152.16.1) with Microsoft SMTP Server id 15.20.6954.15 via Frontend "
                        "Transport; Mon, 6 Jan 2026 10:00:01 +0000")


def direct_send_spoof() -> Headers:
    """§2.5 set 5 / §2.4 row 1: anonymous Direct Send, own domain in P1/P2, compauth 601."""
    return [
        *MAILBOX_HOPS,
        ("Authentication-Results",
         "spf=fail (sender IP is 203.0.113.66)\r\n smtp.mailfrom=contoso.com; dkim=none (message"
         " not signed)\r\n header.d=none;dmarc=fail action=none\r\n header.from=contoso.com;"
         "compauth=fail reason=601"),
        ("Received-SPF", "Fail (protection.outlook.com: domain of contoso.com does not designate "
                         "203.0.113.66 as permitted sender) receiver=protection.outlook.com; "
                         "client-ip=203.0.113.66; helo=WIN-PRINTER;"),
        entry_hop("WIN-PRINTER", "203.0.113.66"),
        ("X-IncomingTopHeaderMarker", "OriginalChecksum:AA;SizeAsReceived:900;Count:9"),
        # Written by the sender, before Exchange Online: none of this is evidence.
        ("Authentication-Results",
         "spf=pass smtp.mailfrom=contoso.com; dkim=pass header.d=contoso.com; dmarc=pass "
         "action=none header.from=contoso.com;compauth=pass reason=100"),
        ("X-MS-Exchange-Organization-AuthAs", "Internal"),
        ("X-MS-Exchange-CrossTenant-FromEntityHeader", "Hosted"),
        ("Received", "from localhost (localhost [127.0.0.1]) by WIN-PRINTER with ESMTP; "
                     "Mon, 6 Jan 2026 10:00:00 +0000"),
        ("From", "CEO <ceo@contoso.com>"),
        ("To", "ceo@contoso.com"),
        ("Subject", "Voicemail"),
        ("X-Mailer", "=?utf-8?B?UG93ZXJTaGVsbA==?="),
        ("X-IncomingHeaderCount", "9"),
        ("X-MS-Exchange-Organization-ExpirationStartTime", "06 Jan 2026 10:00:01.0000 (UTC)"),
        ("X-MS-Exchange-Organization-Network-Message-Id", NMID.upper()),
        ("X-EOPAttributedMessage", "0"),
        ("X-EOPTenantAttributedMessage", f"{TENANT}:0"),
        ("X-MS-Exchange-Organization-MessageDirectionality", "Incoming"),
        ("X-MS-Exchange-Organization-AuthSource", FRONT_DOOR),
        ("X-MS-Exchange-Organization-AuthAs", "Anonymous"),
        ("X-MS-Exchange-Organization-SCL", "5"),
        ("X-Forefront-Antispam-Report", "CIP:203.0.113.66;CTRY:NL;LANG:en;SCL:5;SRV:;IPV:NLI;"
                                        "SFV:SPM;H:WIN-PRINTER;PTR:InfoDomainNonexistent;CAT:SPOOF;"
                                        "SFS:(13230031);DIR:INB;"),
        ("X-Microsoft-Antispam", "BCL:0;"),
        ("X-MS-Exchange-CrossTenant-Network-Message-Id", NMID),
        ("X-MS-Exchange-CrossTenant-Id", TENANT),
        ("X-MS-Exchange-CrossTenant-AuthSource", FRONT_DOOR),
        ("X-MS-Exchange-CrossTenant-AuthAs", "Anonymous"),
        ("X-MS-Exchange-CrossTenant-FromEntityHeader", "Internet"),
        ("X-Microsoft-Antispam-Mailbox-Delivery", "ucf:0;jmr:1;auth:0;dest:J;"),
    ]


def authenticated_submission() -> Headers:
    """§2.5 set 2 / §2.4 row 3: a cloud mailbox submitted the message."""
    return [
        *MAILBOX_HOPS[:1],
        ("Received", "from DS7PR10MB5005.namprd10.prod.outlook.com ([fe80::1]) by "
                     "DS7PR10MB5005.namprd10.prod.outlook.com ([fe80::1%4]) with mapi id "
                     "15.20.1.1; Mon, 6 Jan 2026 10:00:00 +0000"),
        ("From", "Alice <alice@contoso.com>"),
        ("X-MS-Exchange-Organization-AuthAs", "Internal"),
        ("X-MS-Exchange-Organization-AuthMechanism", "04"),
        ("X-MS-Exchange-Organization-AuthSource", "DS7PR10MB5005.namprd10.prod.outlook.com"),
        ("X-MS-Exchange-Organization-MessageDirectionality", "Originating"),
        ("X-MS-Exchange-CrossTenant-AuthAs", "Internal"),
        ("X-MS-Exchange-CrossTenant-AuthSource", "DS7PR10MB5005.namprd10.prod.outlook.com"),
        ("X-MS-Exchange-CrossTenant-FromEntityHeader", "Hosted"),
        ("X-MS-Exchange-CrossTenant-MailboxType", "HOSTED"),
        ("X-MS-Exchange-CrossTenant-UserPrincipalName", "K3b9opaqueblob=="),
        ("X-MS-Exchange-CrossTenant-Id", TENANT),
        ("X-OriginatorOrg", "contoso.com"),
    ]


def hybrid_onprem_relay() -> Headers:
    """§2.5 set 3: on-premises Exchange relaying through an OnPremises connector."""
    return [
        entry_hop("SATLEXMB04.contoso.com", "165.204.84.17"),
        ("From", "Bob <bob@contoso.com>"),
        ("X-MS-Exchange-SenderADCheck", "1"),
        ("X-MS-Exchange-AntiSpam-Relay", "0"),
        ("X-Forefront-Antispam-Report", "CIP:165.204.84.17;CTRY:US;LANG:en;SCL:-1;SRV:;IPV:CAL;"
                                        "SFV:NSPM;H:SATLEXMB04.contoso.com;PTR:InfoDomainNonexistent;"
                                        "CAT:NONE;SFS:;DIR:OUT;"),
        ("X-OriginatorOrg", "contoso.com"),
        ("X-MS-Exchange-CrossTenant-OriginalAttributedTenantConnectingIp",
         f"TenantId={TENANT};Ip=[165.204.84.17];Helo=[SATLEXMB04.contoso.com]"),
        ("X-MS-Exchange-CrossTenant-AuthAs", "Anonymous"),
        ("X-MS-Exchange-CrossTenant-FromEntityHeader", "HybridOnPrem"),
        ("X-MS-Exchange-CrossTenant-Id", TENANT),
    ]


def partner_connector() -> Headers:
    """§2.4 row 4: a partner inbound connector (AuthAs Partner is expected, unverified)."""
    return [
        ("Authentication-Results",
         "spf=pass (sender IP is 192.0.2.44) smtp.mailfrom=partner.example; dkim=pass "
         "header.d=partner.example;dmarc=pass action=none header.from=partner.example;"
         "compauth=pass reason=100"),
        entry_hop("scanner.partner.example", "192.0.2.44"),
        ("X-MS-Exchange-Organization-AuthAs", "Partner"),
        ("X-MS-Exchange-Organization-MessageDirectionality", "Incoming"),
    ]


def forwarded_from_other_tenant() -> Headers:
    """Relayed from another EXO tenant: its verdicts travel as -Untrusted copies."""
    return [
        *MAILBOX_HOPS,
        ("Authentication-Results",
         "spf=fail (sender IP is 40.95.78.154) smtp.helo=GBR01-LO2-obe.outbound.protection."
         "outlook.com; dkim=none (message not signed) header.d=none;dmarc=none action=none "
         "header.from=other.example;compauth=fail reason=001"),
        entry_hop("GBR01-LO2-obe.outbound.protection.outlook.com", "40.95.78.154"),
        ("X-IncomingTopHeaderMarker", "OriginalChecksum:CC;Count:6"),
        ("ARC-Authentication-Results",
         "i=1; mx.microsoft.com 1; spf=fail (sender ip is 45.85.218.114) "
         "smtp.rcpttodomain=contoso.com; dmarc=none; dkim=none; arc=none"),
        ("X-MS-Exchange-Authentication-Results", "spf=pass (sender IP is 45.85.218.114) "
                                                 "smtp.helo=other.example; dkim=none;dmarc=pass"),
        ("X-Microsoft-Antispam-Untrusted", "BCL:0;"),
        ("X-Forefront-Antispam-Report-Untrusted",
         "CIP:45.85.218.114;CTRY:DE;SFV:NSPM;CAT:NONE;DIR:OUT;"),
        ("From", "Shop <shop@other.example>"),
        ("X-IncomingHeaderCount", "6"),
        ("X-MS-Exchange-Organization-AuthAs", "Anonymous"),
        ("X-MS-Exchange-Organization-MessageDirectionality", "Incoming"),
        ("X-MS-Exchange-CrossTenant-FromEntityHeader", "Internet"),
        ("X-MS-Exchange-CrossTenant-OriginalAttributedTenantConnectingIp",
         "TenantId=c473745c-eceb-4ad9-b968-017e9b7ba3a8;Ip=[45.85.218.114];Helo=[other.example]"),
        ("X-Microsoft-Antispam", "BCL:0;"),
        ("X-Microsoft-Antispam-Mailbox-Delivery", "ucf:0;jmr:0;auth:0;dest:J;"),
    ]


def reasons(ev: HeaderEvidence, kind: str | None = None) -> list[str]:
    return [f"{n.header}: {n.reason}" for n in ev.notes if kind is None or n.kind == kind]


def tags(ev: HeaderEvidence) -> set[str]:
    return {t for i in ev.interpretations for t in i.tags}


def test_direct_send_own_domain_spoof() -> None:
    ev = extract_evidence(direct_send_spoof())
    assert ev.received_by_exo
    assert ev.network_message_id == NMID
    assert ev.eop_attributed_tenant == TENANT
    assert (ev.org.auth_as, ev.org.directionality, ev.org.scl) == ("Anonymous", "Incoming", 5)
    assert ev.org.auth_source == "AM0PR01FT012.eop-eur01.prod.protection.outlook.com"
    assert ev.org.auth_mechanism is None
    ct = ev.cross_tenant
    assert (ct.from_entity_header, ct.auth_as, ct.mailbox_type, ct.upn_present) == (
        "Internet", "Anonymous", None, False)
    assert ct.tenant_id == TENANT
    a = ev.antispam
    assert (a.cip, a.ctry, a.helo, a.ptr, a.dir, a.cat, a.sfv, a.ipv, a.scl) == (
        "203.0.113.66", "NL", "WIN-PRINTER", "InfoDomainNonexistent", "INB", "SPOOF", "SPM",
        "NLI", 5)
    assert a.bcl == 0 and a.delivery_dest == "J"
    auth = ev.auth
    assert auth is not None and auth.header_index == 2
    assert (auth.spf, auth.dkim, auth.dmarc, auth.compauth, auth.compauth_reason) == (
        "fail", "none", "fail", "fail", "601")
    assert (auth.smtp_mailfrom, auth.header_from, auth.spf_sender_ip) == (
        "contoso.com", "contoso.com", "203.0.113.66")
    r = ev.received
    assert (r.entry_kind, r.source_ip, r.source_helo, r.hops_below_entry) == (
        "front_door", "203.0.113.66", "WIN-PRINTER", 1)
    assert r.loopback_seen and r.previous_hop is not None and r.previous_hop.loopback
    assert ev.mailer == "PowerShell"
    assert {"anonymous", "incoming", "spoof", "intra_org_spoof", "auth_fail"} <= tags(ev)
    # the sender's forged copies were seen and skipped, with reasons
    ignored = reasons(ev, "ignored")
    assert any("Authentication-Results: header #6 is below the Exchange Online entry" in x
               for x in ignored)
    assert any(x.startswith("X-MS-Exchange-Organization-AuthAs: copy inside the as-received")
               for x in ignored)
    assert any(x.startswith("X-MS-Exchange-CrossTenant-FromEntityHeader: copy inside")
               for x in ignored)


def test_authenticated_submission() -> None:
    ev = extract_evidence(authenticated_submission())
    assert ev.received_by_exo
    assert ev.received.entry_kind == "submission"
    assert (ev.org.auth_as, ev.org.auth_mechanism, ev.org.directionality) == (
        "Internal", "04", "Originating")
    ct = ev.cross_tenant
    assert (ct.from_entity_header, ct.mailbox_type, ct.upn_present) == ("Hosted", "HOSTED", True)
    assert ev.originator_org == "contoso.com"
    assert ev.auth is None
    assert "authenticated" in tags(ev) and "anonymous" not in tags(ev)
    auth_source = next(i for i in ev.interpretations if i.header == sem.ORG_AUTH_SOURCE)
    assert "mailbox_server" in auth_source.tags


def test_hybrid_onprem_relay() -> None:
    ev = extract_evidence(hybrid_onprem_relay())
    assert ev.received_by_exo and ev.received.source_ip == "165.204.84.17"
    ct = ev.cross_tenant
    assert (ct.from_entity_header, ct.auth_as) == ("HybridOnPrem", "Anonymous")
    assert (ct.attributed_tenant_id, ct.attributed_ip, ct.attributed_helo) == (
        TENANT, "165.204.84.17", "SATLEXMB04.contoso.com")
    assert (ev.antispam.ipv, ev.antispam.sfv, ev.antispam.dir) == ("CAL", "NSPM", "OUT")
    assert ev.originator_org == "contoso.com"
    assert {"onprem", "allow_listed", "outbound"} <= tags(ev)
    assert any(n.kind == "missing" and n.header == sem.AUTH_RESULTS for n in ev.notes)


def test_partner_connector_is_marked_unverified() -> None:
    ev = extract_evidence(partner_connector())
    assert ev.org.auth_as == "Partner"
    row = next(i for i in ev.interpretations if i.header == sem.ORG_AUTH_AS)
    assert row.confidence == "unverified" and "partner" in row.tags
    assert ev.auth is not None and ev.auth.compauth_reason == "100"


def test_untrusted_copies_from_another_tenant_are_not_evidence() -> None:
    ev = extract_evidence(forwarded_from_other_tenant())
    assert ev.received_by_exo
    assert not ev.antispam.report_present and ev.antispam.cip is None  # only -Untrusted existed
    assert ev.antispam.delivery_dest == "J"
    assert ev.auth is not None and ev.auth.spf_sender_ip == "40.95.78.154"
    assert ev.auth.compauth_reason == "001"
    assert ev.cross_tenant.attributed_ip == "45.85.218.114"
    ignored = {n.header for n in ev.notes if n.kind == "ignored"}
    assert {sem.FFAR_UNTRUSTED, sem.MS_ANTISPAM_UNTRUSTED, sem.MS_AUTH_RESULTS,
            sem.ARC_AUTH_RESULTS} <= ignored
    dumped = json.dumps(ev.model_dump(mode="json"))
    assert "DE" not in json.dumps(ev.antispam.model_dump())
    assert "45.85.218.114" in dumped  # only via the attributed-IP stamp, clearly labelled


def test_message_never_received_by_exchange_online_uses_no_stamps() -> None:
    headers = [
        ("Received", "from APC01-PSA-obe.outbound.protection.outlook.com (x [2a01:111:f400::1]) "
                     "by mx.google.com with ESMTPS id x1; Fri, 15 Sep 2023 03:03:05 -0700"),
        *authenticated_submission()[1:],
        ("Authentication-Results", "dkim=none (message not signed) header.d=none;dmarc=none "
                                   "action=none header.from=contoso.com;"),
    ]
    ev = extract_evidence(headers)
    assert not ev.received_by_exo
    assert ev.org.auth_as is None and ev.cross_tenant.from_entity_header is None
    assert ev.auth is None and ev.network_message_id is None
    assert ev.received.delivered_after == ["mx.google.com"]
    assert any("no Exchange Online tenant received this message" in x for x in reasons(ev))


def test_no_received_headers_at_all() -> None:
    ev = extract_evidence([("From", "a@b.example"), (sem.ORG_AUTH_AS, "Internal")])
    assert not ev.received_by_exo and ev.org.auth_as is None
    assert any(n.kind == "missing" and n.header == sem.RECEIVED for n in ev.notes)
    empty = extract_evidence([])
    assert not empty.received_by_exo and empty.auth is None and empty.received.hop_count == 0


def test_names_are_case_insensitive_and_values_unfolded() -> None:
    headers = [
        (name.lower(), value) for name, value in direct_send_spoof()
    ]
    headers.append(("x-ms-exchange-crosstenant-fromentityheader", "\r\n Internet"))
    ev = extract_evidence(headers)
    assert ev.cross_tenant.from_entity_header == "Internet"
    assert ev.auth is not None and ev.auth.compauth_reason == "601"
    assert ev.org.auth_as == "Anonymous"


def test_topmost_microsoft_result_above_the_entry_wins() -> None:
    headers = [
        ("Authentication-Results", "gw.contoso.com; spf=pass smtp.mailfrom=contoso.com"),
        ("Authentication-Results", "spf=none smtp.mailfrom=contoso.com;compauth=none reason=905"),
        *forwarded_from_other_tenant(),
    ]
    ev = extract_evidence(headers)
    assert ev.auth is not None and ev.auth.header_index == 1
    assert ev.auth.compauth_reason == "905"
    notes = reasons(ev, "ignored")
    assert any("written by 'gw.contoso.com'" in n for n in notes)
    assert any("an older Microsoft result" in n for n in notes)


def test_conflicting_stamps_and_injected_report_fields() -> None:
    headers = direct_send_spoof()
    headers.append(("X-MS-Exchange-Organization-AuthAs", "Internal"))
    i = next(k for k, (n, _) in enumerate(headers) if n == sem.FFAR)
    headers[i] = (sem.FFAR, "CIP:203.0.113.66;H:x;DIR:OUT;CAT:NONE;PTR:y;CAT:SPOOF;DIR:INB;")
    ev = extract_evidence(headers)
    assert ev.org.auth_as == "Internal"  # the last copy; flagged below
    assert any(n.kind == "conflict" and n.header == sem.ORG_AUTH_AS for n in ev.notes)
    assert ev.antispam.dir is None and ev.antispam.cat is None
    assert ev.antispam.conflicts == {"dir": ["OUT", "INB"], "cat": ["NONE", "SPOOF"]}
    assert sum(n.kind == "conflict" and n.header == sem.FFAR for n in ev.notes) == 2


def test_forged_incoming_header_count_cannot_shrink_the_untrusted_block() -> None:
    headers = direct_send_spoof()
    marker = next(k for k, (n, _) in enumerate(headers) if n == sem.INCOMING_TOP_MARKER)
    headers.insert(marker + 1, (sem.INCOMING_HEADER_COUNT, "1"))
    ev = extract_evidence(headers)
    assert ev.org.auth_as == "Anonymous"
    assert ev.cross_tenant.from_entity_header == "Internet"


def test_evidence_is_json_serialisable_and_round_trips() -> None:
    for build in (direct_send_spoof, authenticated_submission, hybrid_onprem_relay,
                  partner_connector, forwarded_from_other_tenant):
        ev = extract_evidence(build())
        text = json.dumps(ev.model_dump(mode="json"))
        assert HeaderEvidence.model_validate_json(text) == ev


@pytest.mark.parametrize(
    ("header", "field", "value", "meaning_start", "confidence"),
    [
        (sem.AUTH_RESULTS, "compauth.reason", "601", "601:", "documented"),
        (sem.AUTH_RESULTS, "compauth.reason", "010", "010:", "documented"),
        (sem.AUTH_RESULTS, "compauth.reason", "699", "6xx:", "documented"),
        (sem.AUTH_RESULTS, "compauth.reason", "451", "451:", "unverified"),
        (sem.AUTH_RESULTS, "compauth.reason", "905", "905:", "documented"),
        (sem.ORG_AUTH_AS, None, "anonymous", "Anonymous:", "documented"),
        (sem.CT_FROM_ENTITY, None, "HybridOnPrem", "HybridOnPrem:", "observed"),
        (sem.FFAR, "SFV", "SKI", "SKI:", "unverified"),
        (sem.FFAR, "CAT", "HPHISH", "HPHSH", "documented"),
    ],
)
def test_semantics_lookup(header: str, field: str | None, value: str, meaning_start: str,
                          confidence: str) -> None:
    row = sem.lookup(header, value, field=field)
    assert row is not None
    assert row.meaning.startswith(meaning_start) and row.confidence == confidence
    assert row.source


def test_semantics_table_is_well_formed() -> None:
    assert sem.validate() == []
    assert sem.lookup(sem.FFAR, "XYZ", field="DIR") is None
    assert sem.canonical_name("x-forefront-antispam-report-untrusted") == sem.FFAR_UNTRUSTED
    assert sem.FFAR_UNTRUSTED.lower() in sem.headers_tagged("untrusted_copy")
