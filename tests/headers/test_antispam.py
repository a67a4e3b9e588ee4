"""``key:value;`` anti-spam headers: documented fields, ``(null)``, IPv6 values, damage, and
keys repeated with different values (which may be injected through the HELO field)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dsguard.headers.antispam import (
    parse_antispam,
    parse_forefront,
    parse_mailbox_delivery,
)

FFAR_INBOUND = (
    "CIP:20.88.157.186;CTRY:US;LANG:en;SCL:-1;SRV:;IPV:NLI;SFV:SFE;H:mail.example.net;"
    "PTR:mail.example.net;CAT:NONE;SFS:(13230031)(346002);DIR:INB;"
)


def test_documented_fields_of_an_inbound_report() -> None:
    r = parse_forefront(FFAR_INBOUND)
    assert (r.cip, r.ctry, r.dir, r.cat, r.sfv, r.ipv) == (
        "20.88.157.186", "US", "INB", "NONE", "SFE", "NLI"
    )
    assert r.scl == -1
    assert r.helo == "mail.example.net" and r.ptr == "mail.example.net"
    assert r.get("SRV") == "" and r.get("sfs") == "(13230031)(346002)"
    assert r.sfty is None
    assert r.unparsed == [] and r.defects == [] and r.conflicts == {}


def test_direct_send_spoof_report_with_safety_tip() -> None:
    r = parse_forefront(
        "CIP:198.51.100.7;CTRY:NL;LANG:en;SCL:5;SRV:;IPV:NLI;SFV:SPM;H:printer01;"
        "PTR:InfoDomainNonexistent;CAT:INTOS;SFTY:9.11;DIR:INB;"
    )
    assert (r.cat, r.sfty, r.sfv, r.scl, r.ptr) == ("INTOS", "9.11", "SPM", 5,
                                                     "InfoDomainNonexistent")


def test_ipv6_cip_keeps_everything_after_the_first_colon() -> None:
    r = parse_forefront("CIP:2a01:111:f403:c200::1;CTRY:;DIR:INB")
    assert r.cip == "2a01:111:f403:c200::1"
    assert r.ctry is None  # empty reads as absent
    assert r.dir == "INB"  # no final ";" is fine


def test_null_is_stripped_and_folding_undone() -> None:
    r = parse_forefront("CIP:192.0.2.1;CTRY:(null);H:(null);\r\n\tPTR:host.example;\r\n DIR:OUT;")
    assert r.get("CTRY") == "" and r.helo is None
    assert r.ptr == "host.example" and r.dir == "OUT"


def test_damage_is_kept_not_fatal() -> None:
    r = parse_forefront("CIP:192.0.2.1;;garbage;KEY WITH SPACE:1; :empty;DIR:INB;;")
    assert r.cip == "192.0.2.1" and r.dir == "INB"
    assert r.unparsed == ["garbage", "KEY WITH SPACE:1", ":empty"]


def test_repeated_key_with_different_values_is_not_used() -> None:
    # A HELO of "evil;DIR:OUT;CAT:NONE" would put a second DIR/CAT before the real ones.
    r = parse_forefront("CIP:192.0.2.1;H:evil;DIR:OUT;CAT:NONE;PTR:x;CAT:SPOOF;DIR:INB;")
    assert r.dir is None and r.cat is None
    assert r.conflicts == {"dir": ["OUT", "INB"], "cat": ["NONE", "SPOOF"]}
    assert len(r.defects) == 2
    same = parse_forefront("DIR:INB;DIR:INB;")
    assert same.dir == "INB" and same.conflicts == {}


def test_lookups_ignore_case() -> None:
    r = parse_forefront("cip:192.0.2.1;dir:inb;")
    assert r.cip == "192.0.2.1" and r.get("DIR") == "inb"


def test_microsoft_antispam_bcl_pcl() -> None:
    r = parse_antispam("BCL:0;PCL:2;ARA:13230031|1800799024;")
    assert (r.bcl, r.pcl) == (0, 2)
    assert parse_antispam("BCL:x;").bcl is None


def test_mailbox_delivery_destination() -> None:
    d = parse_mailbox_delivery(
        "\tucf:0;jmr:1;auth:0;dest:J;OFR:SpamFilterAuthJ;ENG:(5062000305)(920221119095);"
    )
    assert d.dest == "J" and d.get("jmr") == "1" and d.get("ENG") == "(5062000305)(920221119095)"
    assert parse_mailbox_delivery("ucf:0; jmr:1; auth:0; dest:I").dest == "I"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_never_raises(value: str) -> None:
    parse_forefront(value)
    parse_antispam(value)
    parse_mailbox_delivery(value)
