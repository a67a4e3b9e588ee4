"""SPF and DMARC parsing edge cases, and the captured-DNS query layer (no network)."""

from __future__ import annotations

import pytest

from dsguard.posture.dnsview import lookup_dmarc, lookup_spf, mx_hosts, points_to_eop
from dsguard.posture.mailauth import (
    is_dmarc,
    is_spf,
    parse_dmarc,
    parse_spf,
    strongest,
    unquote_txt,
)

# ----------------------------------------------------------------------------- SPF parse


@pytest.mark.parametrize(
    ("record", "all_result", "includes", "lookups", "valid"),
    [
        ("v=spf1 include:spf.protection.outlook.com -all", "fail",
         ["spf.protection.outlook.com"], 1, True),
        ("v=spf1 include:spf.protection.outlook.com ~all", "softfail",
         ["spf.protection.outlook.com"], 1, True),
        ("V=SPF1 INCLUDE:Spf.Protection.Outlook.com -ALL", "fail",
         ["spf.protection.outlook.com"], 1, True),
        ("v=spf1 +all", "pass", [], 0, True),
        ("v=spf1 ?all", "neutral", [], 0, True),
        ("v=spf1 all", "pass", [], 0, True),
        ("v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all", "fail", [], 0, True),
        ("v=spf1 a mx a:mail.contoso.com/24 mx/24 ptr exists:%{i}.x.contoso.com -all", "fail",
         [], 6, True),
        ("v=spf1 redirect=_spf.contoso.com", None, [], 1, True),
        ("v=spf1 include:a.example include:b.example", None, ["a.example", "b.example"], 2,
         True),
        ('"v=spf1 include:spf.protection.outlook.com " "-all"', "fail",
         ["spf.protection.outlook.com"], 1, True),
        ("v=spf1 -all exp=explain.contoso.com", "fail", [], 0, True),
        ("v=spf1 include -all", "fail", [], 1, False),
        ("v=spf1 ip4:300.1.1.1 -all", "fail", [], 0, False),
        ("v=spf1 ip4:2001:db8::1 -all", "fail", [], 0, False),
        ("v=spf1 foo:bar -all", "fail", [], 0, False),
        ("v=spf1 redirect=a.example redirect=b.example", None, [], 1, False),
        ("v=spf1 -all:foo", "fail", [], 0, False),
        ("spf1 -all", None, [], 0, False),
    ],
)
def test_spf_parse_table(
    record: str, all_result: str | None, includes: list[str], lookups: int, valid: bool
) -> None:
    parsed = parse_spf(record)
    assert parsed.valid is valid, parsed.errors
    assert parsed.all_result == all_result
    assert parsed.includes == includes
    assert parsed.lookups == lookups


def test_spf_warnings_are_not_errors() -> None:
    parsed = parse_spf("v=spf1 -all include:late.example unknown=x")
    assert parsed.valid
    assert any("after 'all'" in w for w in parsed.warnings)
    assert any("unknown modifier" in w for w in parsed.warnings)
    assert any("redirect" in w for w in parse_spf("v=spf1 -all redirect=x.example").warnings)
    assert any("neutral" in w for w in parse_spf("v=spf1 mx").warnings)


def test_spf_detection_is_not_a_substring_test() -> None:
    assert is_spf("v=spf1 -all")
    assert is_spf('"v=spf1" " -all"')
    assert not is_spf("v=spf10 -all")
    assert not is_spf("google-site-verification=v=spf1")
    assert unquote_txt('"a" "b"') == "ab"


# --------------------------------------------------------------------------- DMARC parse


@pytest.mark.parametrize(
    ("record", "p", "sp", "np", "pct", "valid"),
    [
        ("v=DMARC1; p=reject", "reject", "reject", "reject", 100, True),
        ("v=DMARC1; p=reject;", "reject", "reject", "reject", 100, True),
        # ScubaGear's substring pitfall: "p=reject;" sits inside "sp=reject;".
        ("v=DMARC1; p=none; sp=reject;", "none", "reject", "reject", 100, True),
        ("v=DMARC1; sp=reject; p=none", "none", "reject", "reject", 100, True),
        ("v=DMARC1; p=reject; sp=none", "reject", "none", "none", 100, True),
        ("v=DMARC1; p=reject; sp=quarantine; np=none", "reject", "quarantine", "none", 100,
         True),
        ("v=DMARC1; p=quarantine; np=reject", "quarantine", "quarantine", "reject", 100, True),
        ("v=DMARC1; p=reject; pct=50", "reject", "reject", "reject", 50, True),
        ("V=DMARC1;P=ReJect", "reject", "reject", "reject", 100, True),
        ("v = DMARC1\t;\tp=reject\t;", "reject", "reject", "reject", 100, True),
        ('"v=DMARC1; p=reject; " "rua=mailto:d@contoso.com"', "reject", "reject", "reject",
         100, True),
        ("v=DMARC1; rua=mailto:d@contoso.com", "none", "none", "none", 100, True),
        ("v=DMARC1; p=rejected", None, None, None, 100, False),
        ("v=DMARC1; p=reject; p=none", "reject", "reject", "reject", 100, False),
        ("v=DMARC1; p=reject; pct=150", "reject", "reject", "reject", 100, False),
        ("v=DMARC1; p=reject; sp=maybe", "reject", None, None, 100, False),
        ("p=reject; v=DMARC1", None, None, None, 100, False),
        ("v=DMARC1 p=reject", None, None, None, 100, False),
        ("v=spf1 -all", None, None, None, 100, False),
        ("v=DMARC1; p=reject; garbage", "reject", "reject", "reject", 100, False),
    ],
)
def test_dmarc_parse_table(
    record: str, p: str | None, sp: str | None, np: str | None, pct: int, valid: bool
) -> None:
    parsed = parse_dmarc(record)
    assert parsed.valid is valid, parsed.errors
    assert (parsed.p, parsed.sp, parsed.np, parsed.pct) == (p, sp, np, pct)


def test_dmarc_tags_and_warnings() -> None:
    parsed = parse_dmarc(
        "v=DMARC1; p=reject; rua=mailto:a@contoso.com,mailto:b@x.example!10m; "
        "ruf=mailto:f@contoso.com; adkim=s; aspf=x; t=y; psd=n; foo=bar"
    )
    assert parsed.valid
    assert parsed.rua == ["mailto:a@contoso.com", "mailto:b@x.example"]
    assert parsed.ruf == ["mailto:f@contoso.com"]
    assert (parsed.adkim, parsed.aspf, parsed.testing, parsed.psd) == ("s", "r", True, "n")
    assert any("unknown tag 'foo'" in w for w in parsed.warnings)
    assert any("aspf" in w for w in parsed.warnings)
    assert any("no 'rua'" in w for w in parse_dmarc("v=DMARC1; p=reject").warnings)
    assert any("not a URI" in w for w in parse_dmarc("v=DMARC1; p=none; rua=nobody").warnings)


def test_dmarc_policy_for() -> None:
    parsed = parse_dmarc("v=DMARC1; p=reject; sp=quarantine; np=none")
    assert parsed.policy_for() == "reject"
    assert parsed.policy_for(subdomain=True) == "quarantine"
    assert parsed.policy_for(nonexistent=True) == "none"
    assert strongest("none", None, "quarantine") == "quarantine"
    assert strongest(None) is None
    assert is_dmarc("v=DMARC1;p=none") and not is_dmarc("v=DMARC10; p=none")


# --------------------------------------------------------------------- captured-DNS query


class FakeDns:
    """The ``dns`` half of ``Snapshot`` over a dict, for the query layer alone."""

    def __init__(self, records: dict[str, dict[str, list[str]]] | None) -> None:
        self.records = records

    def dns(self, name: str, rtype: str = "TXT") -> list[str] | None:
        if self.records is None:
            return None
        return list(self.records.get(name, {}).get(rtype, []))


def test_spf_lookup_follows_captured_includes_and_redirects() -> None:
    dns = FakeDns({
        "contoso.com": {"TXT": ["v=spf1 include:_spf.contoso.com redirect=_r.contoso.com"]},
        "_spf.contoso.com": {"TXT": ["v=spf1 include:spf.protection.outlook.com a mx -all"]},
        "_r.contoso.com": {"TXT": ["v=spf1 -all"]},
        "spf.protection.outlook.com": {"TXT": ["v=spf1 ip4:40.92.0.0/15 -all"]},
    })
    spf = lookup_spf(dns, "contoso.com")
    assert spf.status == "found"
    assert spf.effective_all == "fail"
    assert spf.authorises_eop is True
    assert spf.lookups == 5 and spf.lookups_exact
    assert spf.includes == ["_spf.contoso.com", "spf.protection.outlook.com"]


def test_spf_lookup_reports_uncaptured_includes() -> None:
    dns = FakeDns({"contoso.com": {"TXT": ["v=spf1 include:vendor.example -all"]}})
    spf = lookup_spf(dns, "contoso.com")
    assert spf.authorises_eop is None
    assert spf.not_captured == ["vendor.example"]
    assert not spf.lookups_exact
    assert any("lower bound" in w for w in spf.warnings)


@pytest.mark.parametrize(
    ("records", "status", "error"),
    [
        ({"contoso.com": {"TXT": ["v=spf1 -all", "v=spf1 ~all"]}}, "multiple", "2 SPF"),
        ({"contoso.com": {"TXT": ["MS=ms1234"]}}, "missing", None),
        ({"other.example": {"TXT": ["v=spf1 -all"]}}, "not_captured", None),
        ({"contoso.com": {"TXT": ["v=spf1 " + " ".join(f"a:{i}.x.example" for i in range(11))
                                  + " -all"]}}, "found", "exceed"),
        ({"contoso.com": {"TXT": ["v=spf1 include:loop.example -all"]},
          "loop.example": {"TXT": ["v=spf1 include:loop.example -all"]}}, "found", "loop"),
        ({"contoso.com": {"TXT": ["v=spf1 include:empty.example -all"]},
          "empty.example": {"TXT": ["hello"]}}, "found", "no SPF record"),
    ],
)
def test_spf_lookup_failures(
    records: dict[str, dict[str, list[str]]], status: str, error: str | None
) -> None:
    spf = lookup_spf(FakeDns(records), "contoso.com")
    assert spf.status == status
    if error:
        assert any(error in e for e in spf.errors), spf.errors
    assert lookup_spf(FakeDns(None), "contoso.com").status == "no_dns"


def test_dmarc_lookup_own_record() -> None:
    dns = FakeDns({"_dmarc.contoso.com": {"TXT": ["v=DMARC1; p=reject; rua=mailto:d@c.com"]}})
    dmarc = lookup_dmarc(dns, "contoso.com")
    assert dmarc.status == "found" and not dmarc.from_parent
    assert dmarc.policy == "reject" and dmarc.enforcing


def test_dmarc_lookup_falls_back_to_the_organisational_domain() -> None:
    dns = FakeDns({
        "sub.contoso.com": {"TXT": ["v=spf1 -all"]},
        "_dmarc.contoso.com": {"TXT": ["v=DMARC1; p=reject; sp=none"]},
    })
    dmarc = lookup_dmarc(dns, "sub.contoso.com")
    assert dmarc.status == "found" and dmarc.from_parent
    assert dmarc.record_name == "_dmarc.contoso.com"
    assert dmarc.policy == "none"  # sp applies below the organisational domain
    assert not dmarc.enforcing


def test_dmarc_lookup_uncaptured_parent_is_not_a_guess() -> None:
    dns = FakeDns({"sub.contoso.com": {"TXT": ["v=spf1 -all"]}})
    dmarc = lookup_dmarc(dns, "sub.contoso.com")
    assert dmarc.status == "not_captured" and dmarc.not_captured == ["contoso.com"]


def test_dmarc_lookup_public_suffix_parent_is_not_demanded() -> None:
    dns = FakeDns({"contoso.co.uk": {"TXT": ["v=spf1 -all"]}})
    assert lookup_dmarc(dns, "contoso.co.uk").status == "missing"


@pytest.mark.parametrize(
    ("records", "status"),
    [
        ({"_dmarc.contoso.com": {"TXT": ["v=DMARC1; p=reject", "v=DMARC1; p=none"]}},
         "multiple"),
        ({"contoso.com": {"TXT": ["v=spf1 -all"]}}, "missing"),
        ({"other.example": {"TXT": ["x"]}}, "not_captured"),
    ],
)
def test_dmarc_lookup_statuses(records: dict[str, dict[str, list[str]]], status: str) -> None:
    assert lookup_dmarc(FakeDns(records), "contoso.com").status == status


def test_mx_parsing() -> None:
    dns = FakeDns({"contoso.com": {"MX": ["0 contoso-com.mail.protection.outlook.com."]}})
    hosts = mx_hosts(dns, "contoso.com")
    assert hosts == ["contoso-com.mail.protection.outlook.com"]
    assert points_to_eop(hosts[0])
    assert not points_to_eop("mx1.gateway.example")
    assert mx_hosts(dns, "fabrikam.com") is None
