"""Received hops in the formats real servers write, and finding the Exchange Online entry."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from dsguard.headers.received import (
    classify_host,
    find_exo_entry,
    parse_received,
    parse_received_chain,
)

EXO_ENTRY = (
    "from printer01.contoso.com (198.51.100.7) by\r\n AM0PR01FT012.mail.protection.outlook.com "
    "(10.152.16.1) with Microsoft SMTP\r\n Server (version=TLS1_2, "
    "cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id\r\n 15.20.6954.15 via Frontend Transport; "
    "Mon, 30 Oct 2023 14:09:24 +0000"
)
EXO_INTERNAL_1 = (
    "from AM0PR01FT012.eop-eur01.prod.protection.outlook.com (2603:10a6:20b:1::1) by "
    "AM6P191CA0001.outlook.office365.com (2603:10a6:209:8b::14) with Microsoft SMTP Server "
    "(version=TLS1_2) id 15.20.6954.28 via Frontend Transport; Mon, 30 Oct 2023 14:09:25 +0000"
)
EXO_INTERNAL_2 = (
    "from AM6P191CA0001.EURP191.PROD.OUTLOOK.COM (2603:10a6:209:8b::14) by "
    "DB9PR01MB1234.eurprd01.prod.outlook.com with HTTPS; Mon, 30 Oct 2023 14:09:27 +0000"
)
ATTACKER = "from [10.0.0.5] (unknown [203.0.113.66]) by printer01.contoso.com (Postfix) with ESMTP id 4A1B2C; Mon, 30 Oct 2023 14:09:20 +0000"


def test_exchange_front_door_hop() -> None:
    hop = parse_received(EXO_ENTRY)
    assert hop.from_host == "printer01.contoso.com"
    assert hop.from_ip == "198.51.100.7"
    assert hop.helo == "printer01.contoso.com"
    assert hop.from_rdns is None
    assert hop.by_host == "AM0PR01FT012.mail.protection.outlook.com"
    assert hop.by_kind == "exo_front_door"
    assert hop.via == "Frontend Transport"
    assert hop.protocol == "Microsoft SMTP Server"
    assert hop.smtp_id == "15.20.6954.15"
    assert hop.date == datetime(2023, 10, 30, 14, 9, 24, tzinfo=UTC)
    assert not hop.loopback and hop.defects == []


def test_postfix_hop_prefers_the_address_in_the_comment_over_a_claimed_helo() -> None:
    hop = parse_received(ATTACKER)
    assert hop.from_ip == "203.0.113.66"  # what Postfix saw, not the [10.0.0.5] HELO
    assert hop.helo == "[10.0.0.5]"
    assert hop.from_rdns is None  # "unknown"
    assert hop.by_kind == "other" and hop.smtp_id == "4A1B2C"


def test_rdns_and_exim_helo() -> None:
    hop = parse_received(
        "from mail.example.net (mail.example.net [192.0.2.25]) (using TLSv1.3 with cipher "
        "TLS_AES_256_GCM_SHA384) by mx.example.org (Postfix) with ESMTPS id X for "
        "<user@example.org>; Fri, 02 Jun 2023 10:00:00 +0200"
    )
    assert (hop.from_ip, hop.from_rdns, hop.helo) == ("192.0.2.25", "mail.example.net",
                                                       "mail.example.net")
    assert hop.protocol == "ESMTPS"  # "with cipher" inside the comment is not the clause
    assert hop.for_address == "user@example.org"
    exim = parse_received(
        "from [156.146.60.68] (port=55167 helo=[10.4.18.204]) by host.example.com with esmtpa "
        "(Exim 4.98.1) (envelope-from <a@example.com>) id 1uUk40; Thu, 26 Jun 2025 03:42:41 -0700"
    )
    assert (exim.from_ip, exim.helo) == ("156.146.60.68", "10.4.18.204")


def test_loopback_hops() -> None:
    assert parse_received("from localhost (localhost [127.0.0.1]) by mx.example.org; "
                          "Mon, 1 Jan 2024 00:00:00 +0000").loopback
    assert parse_received("from SA6PR05MB1.namprd05.prod.outlook.com (::1) by "
                          "SA3PR05MB9.namprd05.prod.outlook.com with HTTPS").loopback
    assert parse_received("from web (HELO localhost) by mx.example.org").loopback
    assert not parse_received(EXO_ENTRY).loopback


def test_ipv6_with_zone_and_odd_dates() -> None:
    hop = parse_received(
        "from KL1PR01MB1.apcprd04.prod.outlook.com ([fe80::5822:2de1:c147:a4f7]) by "
        "KL1PR01MB1.apcprd04.prod.outlook.com ([fe80::5822:2de1:c147:a4f7%7]) with mapi id "
        "15.20.6792.021; Sun, 07 Dec 2025 15:26:36.707 +0000"
    )
    assert hop.from_ip == "fe80::5822:2de1:c147:a4f7"
    assert hop.protocol == "mapi"
    assert hop.date == datetime(2025, 12, 7, 15, 26, 36, tzinfo=UTC)
    go = parse_received("by recvd-1 with SMTP id abc 2025-12-07 15:26:36.749770198 +0000 UTC")
    assert go.date is None  # no ";": nothing claims to be a date
    bad = parse_received("from a by b; not a date at all")
    assert bad.date is None and bad.defects


def test_keyword_looking_host_names_are_values() -> None:
    hop = parse_received("from with (192.0.2.1) by by.example.com with SMTP; "
                         "Mon, 1 Jan 2024 00:00:00 +0000")
    assert hop.from_host == "with" and hop.by_host == "by.example.com"
    assert hop.protocol == "SMTP"


def test_host_classes_come_from_the_semantics_table() -> None:
    assert classify_host("DM6NAM10FT007.mail.protection.outlook.com") == "exo_front_door"
    assert classify_host("dm6nam10ft007.MAIL.protection.outlook.com.") == "exo_front_door"
    assert classify_host("SJ0PR05CA0179.outlook.office365.com") == "microsoft"
    assert classify_host("LV3P223MB0968.NAMP223.PROD.OUTLOOK.COM") == "microsoft"
    assert classify_host("mail.protection.outlook.com.evil.example") == "other"
    assert classify_host("mx.google.com") == "other"
    assert classify_host(None) == "other"


def chain(*values: str) -> list[tuple[str, str]]:
    return [("Received", v) for v in values]


def test_entry_is_the_topmost_front_door_and_forged_hops_below_are_ignored() -> None:
    forged = ("from x by FAKE01FT001.mail.protection.outlook.com via Frontend Transport; "
              "Mon, 30 Oct 2023 14:00:00 +0000")
    hops = parse_received_chain(
        [("Subject", "hi"), *chain(EXO_INTERNAL_2, EXO_INTERNAL_1, EXO_ENTRY, ATTACKER, forged)]
    )
    assert [h.header_index for h in hops] == [1, 2, 3, 4, 5]
    entry = find_exo_entry(hops)
    assert entry is not None
    assert (entry.hop, entry.kind, entry.delivered_after) == (2, "front_door", [])


def test_submission_inside_the_service() -> None:
    hops = parse_received_chain(chain(
        EXO_INTERNAL_2,
        "from DB9PR01MB1234.eurprd01.prod.outlook.com ([fe80::1]) by "
        "DB9PR01MB1234.eurprd01.prod.outlook.com ([fe80::1%5]) with mapi id 15.20.1.1; "
        "Mon, 30 Oct 2023 14:09:20 +0000",
    ))
    entry = find_exo_entry(hops)
    assert entry is not None and (entry.hop, entry.kind) == (1, "submission")


def test_delivery_onward_after_exchange_online() -> None:
    onprem = ("from NAM12-DM6-obe.outbound.protection.outlook.com (mail.outbound.protection."
              "outlook.com [104.47.59.168]) by mx01.contoso.com (Postfix) with ESMTPS; "
              "Sat, 18 Feb 2023 20:02:33 -0300")
    hops = parse_received_chain(chain(onprem, EXO_INTERNAL_1, EXO_ENTRY, ATTACKER))
    entry = find_exo_entry(hops)
    assert entry is not None and entry.kind == "front_door"
    assert entry.delivered_after == ["mx01.contoso.com"]
    # Sent from a tenant and delivered by Gmail: the Microsoft run is below a foreign host.
    gmail = ("from APC01-PSA-obe.outbound.protection.outlook.com (x [2a01:111:f400:feae::62d]) "
             "by mx.google.com with ESMTPS id x1; Fri, 15 Sep 2023 03:03:05 -0700")
    sent = parse_received_chain(chain(gmail, EXO_INTERNAL_2))
    out = find_exo_entry(sent)
    assert out is not None and out.kind == "submission" and out.delivered_after == ["mx.google.com"]


def test_no_exchange_online() -> None:
    assert find_exo_entry(parse_received_chain(chain(ATTACKER))) is None
    assert find_exo_entry([]) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_never_raises(value: str) -> None:
    parse_received(value)
