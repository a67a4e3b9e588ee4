"""DNS capture against a local dnslib server."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from collect.fake_tenant import INITIAL, LONG_TXT, PRIMARY, FakeDns
from dsguard.collect import CollectError, DnsSettings
from dsguard.collect.dnsq import capture_domains, parents


def noop(*_: Any) -> None:
    return None


def test_parents_stop_at_public_suffixes() -> None:
    assert parents("mail.eu.contoso.com") == ["eu.contoso.com", "contoso.com"]
    assert parents("contoso.com") == []
    assert parents("shop.contoso.co.uk") == ["contoso.co.uk"]
    assert parents("contoso.onmicrosoft.com") == []


def test_capture_follows_spf_and_keeps_types(dns_server: FakeDns) -> None:
    warnings: list[str] = []
    doc = capture_domains(
        [PRIMARY, INITIAL, f"sub.{PRIMARY}", "*.wildcard.example"],
        DnsSettings(servers=(dns_server.address,), timeout=2),
        noop,
        warnings.append,
    )
    assert warnings == []
    assert doc[PRIMARY]["TXT"][0].startswith("v=spf1 ip4:198.51.100.0/24")
    assert LONG_TXT in doc[PRIMARY]["TXT"]  # 255-byte strings joined back
    assert doc["spfd.protection.outlook.com"] == {"TXT": ["v=spf1 ip4:51.4.72.0/24 -all"]}
    assert f"sub.{PRIMARY}" not in doc  # NXDOMAIN: nothing captured, nothing invented
    asked = dns_server.resolver.queries
    assert (f"_dmarc.{PRIMARY}", "TXT") in asked  # the parent's DMARC, for sub.contoso.com
    assert not any("wildcard" in name for name, _ in asked)
    assert all(set(v) <= {"TXT", "MX", "CNAME"} for v in doc.values())


def test_unreachable_resolver_is_an_error_not_an_empty_capture() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but never answering
        warnings: list[str] = []
        with pytest.raises(CollectError, match="none of 5 queries was answered"):
            capture_domains(["contoso.net"], DnsSettings(servers=(f"127.0.0.1:{port}",),
                                                         timeout=0.2), noop, warnings.append)  # fmt: skip
    assert warnings and "Timeout" in warnings[0]
