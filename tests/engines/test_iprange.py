"""Address ranges in SQL: IPv4 as integers, IPv6 as 32 hex digits, the same on DuckDB and
Spark, checked against Python's ``ipaddress``."""

from __future__ import annotations

import ipaddress
import random

import duckdb
import pytest
from tests.engines.conftest import needs_spark

from dsguard.engines.iprange import host_cidr, ip_keys_sql, ipv6_hex, parse_range
from dsguard.engines.spark_job import office_egress_sql
from dsguard.engines.sqlglot_rules import to_spark
from dsguard.signals.features import address_keys_sql

EDGES = [
    "::", "::1", "1::", "2001:db8::1", "2001:DB8:0:0:8:800:200C:417A", "::ffff:192.0.2.1",
    "::192.0.2.1", "fe80::1:2:3:4", "2001:db8:0:1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::",
    "::2:3:4:5:6:7:8", "64:ff9b::198.51.100.7", "1:2:3:4:5:6:1.2.3.4", "ffff::ffff",
    "192.0.2.9", "10.0.0.1", "255.255.255.255",
]  # fmt: skip


def _addresses() -> list[str]:
    rng = random.Random(7)
    out = list(EDGES)
    for _ in range(200):
        bits = rng.getrandbits(128) if rng.random() < 0.5 else rng.getrandbits(16) << rng.choice(
            [0, 16, 64, 112]
        )
        a = ipaddress.IPv6Address(bits)
        out.append(a.compressed if rng.random() < 0.7 else a.exploded.upper())
    return out


def _expected(ip: str) -> tuple[int | None, str | None]:
    a = ipaddress.ip_address(ip)
    if isinstance(a, ipaddress.IPv6Address):
        return None, ipv6_hex(a)
    return int(a), None


def _expected_key(ip: str) -> str:
    """One address, one key: an IPv4 address is keyed as its IPv4-mapped IPv6 address."""
    a = ipaddress.ip_address(ip)
    if isinstance(a, ipaddress.IPv4Address):
        a = ipaddress.IPv6Address((0xFFFF << 32) | int(a))
    return ipv6_hex(a)


def test_address_keys_on_duckdb_match_python() -> None:
    con = duckdb.connect()
    addresses = _addresses()
    con.execute("CREATE TABLE t AS SELECT unnest(?) AS ip", [addresses])
    rows = con.execute(address_keys_sql("t")).fetchall()
    assert len(rows) == len(addresses)
    for ip, key in rows:
        assert key == _expected_key(ip), ip


def test_ip_keys_on_duckdb_match_python() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (ip VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[a] for a in _addresses()])
    rows = con.execute(ip_keys_sql("t")).fetchall()
    assert len(rows) == len(_addresses())
    for ip, ip_int, ip6 in rows:
        assert (ip_int, ip6) == _expected(ip), ip


def test_ranges_hold_both_families() -> None:
    v4 = parse_range("exception", "EX-1", "198.51.100.0/24")
    assert v4 is not None and (v4.start, v4.end) == (3325256704, 3325256959)
    assert v4.start6 is None
    v6 = parse_range("exception", "EX-2", "2001:DB8:dead::/64")
    assert v6 is not None and v6.cidr == "2001:db8:dead::/64" and v6.start is None
    assert v6.start6 == "20010db8dead" + "0" * 20 and v6.end6 == "20010db8dead0000" + "f" * 16
    assert parse_range("spf", "x", "not an address") is None
    assert host_cidr("203.0.113.7") == "203.0.113.7/32"
    assert host_cidr("2001:DB8::A") == "2001:db8::a/128"


def test_text_order_is_address_order() -> None:
    """``BETWEEN`` on the hex text is membership: fixed width makes text order numeric."""
    v6 = parse_range("office", "o", "2001:db8::/120")
    assert v6 is not None and v6.start6 and v6.end6
    inside = ipv6_hex(ipaddress.IPv6Address("2001:db8::ff"))
    outside = ipv6_hex(ipaddress.IPv6Address("2001:db8::100"))
    assert v6.start6 <= inside <= v6.end6 and not v6.start6 <= outside <= v6.end6


@pytest.mark.slow
@needs_spark
def test_ip_keys_and_office_egress_on_spark_match_duckdb() -> None:
    from dsguard.engines.spark import session

    spark = session("local[1]")
    addresses = _addresses()
    spark.createDataFrame([(a,) for a in addresses], "ip string").createOrReplaceTempView("t")
    rows = spark.sql(to_spark(ip_keys_sql("t"))).collect()
    assert len(rows) == len(addresses)
    for r in rows:
        assert (r["ip_int"], r["ip6"]) == _expected(r["ip"]), r["ip"]
    keys = spark.sql(to_spark(address_keys_sql("t"))).collect()
    assert len(keys) == len(addresses)
    for r in keys:
        assert r["ipk"] == _expected_key(r["ip"]), r["ip"]

    # Office egress is learned from sign-ins on the cluster too, IPv6 exits included.
    signins = [
        (f"user{u}@contoso.example", ip, 0)
        for u in range(3)
        for ip in ("2001:DB8:1::7", "198.51.100.9", "not:an:address:zz")
    ] + [("solo@contoso.example", "2001:db8:2::1", 0)]
    spark.createDataFrame(
        signins, "user_principal_name string, ip_address string, error_code long"
    ).createOrReplaceTempView("signins")
    office = {
        (r["cidr"], r["start_ip"], r["start_ip6"], r["end_ip6"])
        for r in spark.sql(to_spark(office_egress_sql(3))).collect()
    }
    hex6 = ipv6_hex(ipaddress.IPv6Address("2001:db8:1::7"))
    assert office == {
        ("2001:db8:1::7/128", None, hex6, hex6),
        ("198.51.100.9/32", int(ipaddress.IPv4Address("198.51.100.9")), None, None),
    }
