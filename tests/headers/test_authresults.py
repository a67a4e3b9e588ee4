"""Authentication-Results in Microsoft's form (no authserv-id), the RFC form, ARC copies and
damaged variants: the same verdicts come out, and nothing raises."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsguard.headers.authresults import (
    is_microsoft_authserv,
    parse_all,
    parse_authentication_results,
)

MICROSOFT = (
    "spf=fail (sender IP is 1.2.3.4) smtp.mailfrom=contoso.com; dkim=none (message not "
    "signed) header.d=none;dmarc=fail action=none header.from=contoso.com;compauth=fail "
    "reason=601"
)


def verdicts(value: str) -> dict[str, str]:
    return {r.method: r.result for r in parse_authentication_results(value).results}


def test_microsoft_form_has_no_authserv_id_and_typed_results() -> None:
    ar = parse_authentication_results(MICROSOFT)
    assert ar.authserv_id is None
    assert ar.microsoft_form
    assert ar.defects == []
    assert [r.method for r in ar.results] == ["spf", "dkim", "dmarc", "compauth"]
    spf, dkim, dmarc, comp = (ar.get(m) for m in ("spf", "dkim", "dmarc", "compauth"))
    assert spf and spf.result == "fail" and spf.prop("smtp.mailfrom") == "contoso.com"
    assert spf.comments == ["sender IP is 1.2.3.4"] and spf.sender_ip == "1.2.3.4"
    assert dkim and dkim.result == "none" and dkim.prop("header.d") == "none"
    assert dmarc and dmarc.action == "none" and dmarc.prop("header.from") == "contoso.com"
    assert comp and comp.result == "fail" and comp.reason_code == "601"


@pytest.mark.parametrize(
    "value",
    [
        # missing spaces after ";"
        "spf=fail smtp.mailfrom=contoso.com;dkim=none header.d=none;dmarc=fail action=none "
        "header.from=contoso.com;compauth=fail reason=601",
        # missing ";" between results
        "spf=fail smtp.mailfrom=contoso.com dkim=none header.d=none dmarc=fail action=none "
        "header.from=contoso.com compauth=fail reason=601",
        # folded across lines, upper-case, trailing ";"
        "SPF=Fail (sender IP is\r\n 1.2.3.4) smtp.mailfrom=contoso.com;\r\n\tDKIM=none;\r\n "
        "dmarc=FAIL action=none header.from=contoso.com; compauth=fail reason=601;",
        # spaces around "="
        "spf = fail smtp.mailfrom = contoso.com; dkim = none; dmarc = fail action = none "
        "header.from = contoso.com; compauth = fail reason = 601",
    ],
)
def test_damaged_spacing_gives_the_same_verdicts(value: str) -> None:
    ar = parse_authentication_results(value)
    assert verdicts(value) == {"spf": "fail", "dkim": "none", "dmarc": "fail", "compauth": "fail"}
    comp = ar.get("compauth")
    assert comp is not None and comp.reason_code == "601"
    dmarc = ar.get("dmarc")
    assert dmarc is not None and dmarc.prop("header.from") == "contoso.com"


def test_reason_codes_keep_leading_zeros() -> None:
    for code in ("000", "001", "010"):
        ar = parse_authentication_results(f"dmarc=fail; compauth=fail reason={code}")
        comp = ar.get("compauth")
        assert comp is not None and comp.reason_code == code


def test_stray_semicolon_before_reason_is_reattached() -> None:
    ar = parse_authentication_results("compauth=fail; reason=601")
    comp = ar.get("compauth")
    assert comp is not None and comp.reason_code == "601"
    assert ar.defects


def test_rfc_form_with_authserv_id_quotes_and_nested_comments() -> None:
    value = (
        'mx.google.com; dkim=pass header.i=@live.com header.s=selector1 header.b="oGB9gA/z"; '
        "arc=pass (i=1 (nested (deeper)) spf=pass); spf=pass (google.com: domain of a@b.example "
        "designates 2a01:111:f403:2c12::800 as permitted sender) smtp.mailfrom=a@b.example"
    )
    ar = parse_authentication_results(value)
    assert ar.authserv_id == "mx.google.com"
    assert not ar.microsoft_form
    dkim = ar.get("dkim")
    assert dkim is not None and dkim.prop("header.b") == "oGB9gA/z"
    arc = ar.get("arc")
    assert arc is not None and arc.comments == ["i=1 (nested (deeper)) spf=pass"]
    spf = ar.get("spf")
    assert spf is not None and spf.sender_ip == "2a01:111:f403:2c12::800"
    # the "spf=pass" inside the arc comment is not a result of its own
    assert [r.method for r in ar.results] == ["dkim", "arc", "spf"]


def test_arc_authentication_results_instance_and_microsoft_authserv() -> None:
    value = (
        "i=2; mx.microsoft.com 1; spf=fail (sender ip is\n 40.95.78.154) "
        "smtp.rcpttodomain=hotmail.com\n smtp.helo=out.example; dmarc=none\n action=none "
        "header.from=sender.example; dkim=none (message not\n signed); arc=pass (0 oda=0 ltdi=1)"
    )
    ar = parse_authentication_results(value, header="ARC-Authentication-Results")
    assert (ar.instance, ar.authserv_id, ar.authserv_version) == (2, "mx.microsoft.com", "1")
    assert ar.microsoft_form
    spf = ar.get("spf")
    assert spf is not None and spf.prop("smtp.rcpttodomain") == "hotmail.com"
    assert verdicts(value)["arc"] == "pass"


def test_authserv_id_without_semicolon_and_none_result() -> None:
    ar = parse_authentication_results("mx.example.net spf=pass smtp.mailfrom=example.net")
    assert ar.authserv_id == "mx.example.net"
    assert verdicts("mx.example.net spf=pass smtp.mailfrom=example.net") == {"spf": "pass"}
    empty = parse_authentication_results("mx.example.net; none")
    assert empty.authserv_id == "mx.example.net" and empty.results == []


def test_method_version_and_unknown_methods() -> None:
    ar = parse_authentication_results("dkim/1=pass header.d=a.example; x-custom=ok x.y=z")
    dkim = ar.get("dkim")
    assert dkim is not None and dkim.version == "1"
    custom = ar.get("x-custom")
    assert custom is not None and custom.prop("x.y") == "z"


def test_microsoft_authserv_ids() -> None:
    assert is_microsoft_authserv(None)
    assert is_microsoft_authserv("mx.microsoft.com")
    assert not is_microsoft_authserv("mx.google.com")
    assert not is_microsoft_authserv("mailin033.protonmail.ch")


def test_damaged_values_do_not_raise() -> None:
    for value in (
        "",
        ";;;",
        "spf=fail (unterminated comment smtp.mailfrom=x",
        'dkim=pass header.b="unterminated',
        "smtp.mailfrom=orphan.example",
        "=pass",
        "spf=",
        "\x00\x01 spf=pass",
    ):
        ar = parse_authentication_results(value)
        assert isinstance(ar.defects, list)
    assert parse_authentication_results("spf=fail (open").defects == ["unterminated comment"]


def test_parse_all_finds_every_copy_case_insensitively() -> None:
    headers = [
        ("Received", "from a by b; Mon, 1 Jan 2024 00:00:00 +0000"),
        ("authentication-results", MICROSOFT),
        ("X-MS-Exchange-Authentication-Results", "spf=pass smtp.mailfrom=x.example"),
        ("Authentication-Results", "mx.google.com; spf=pass"),
    ]
    found = parse_all(headers, "Authentication-Results")
    assert [i for i, _ in found] == [1, 3]
    assert found[0][1].header == "authentication-results"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_never_raises_on_arbitrary_text(value: str) -> None:
    parse_authentication_results(value)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["spf=fail", "dkim=none", "(c)", "(", ")", '"', ";", " ", "reason=601", "=",
             "header.from=a.example", "compauth=fail", "action=none", "\r\n "]
        ),
        max_size=40,
    )
)
def test_never_raises_on_shuffled_fragments(parts: list[str]) -> None:
    parse_authentication_results("".join(parts))
