"""Address ranges as intervals, so range membership is a plain join in any SQL engine
(DuckDB's inet extension would need a download; Spark has none).

IPv4 is an integer (``start_ip``/``end_ip``). IPv6 needs 128 bits, more than Spark's
integers hold, so it is 32 lower-case hex digits (``start_ip6``/``end_ip6``): fixed width,
so text order is address order and ``BETWEEN`` works on the text.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Range:
    kind: str  # "spf", "exception", "connector", "office", ...
    label: str  # what the range belongs to (a domain, an exception id, a connector name)
    cidr: str
    start: int | None  # IPv4 bounds; None for an IPv6 range
    end: int | None
    start6: str | None = None  # IPv6 bounds as 32 hex digits; None for an IPv4 range
    end6: str | None = None


def ipv6_hex(address: ipaddress.IPv6Address) -> str:
    """The 32 hex digits ``ip_keys_sql`` computes for the same address."""
    return f"{int(address):032x}"


def parse_range(kind: str, label: str, text: str) -> Range | None:
    """An IPv4 or IPv6 address or CIDR as an interval; ``None`` for garbage."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None
    first, last = net.network_address, net.broadcast_address
    if isinstance(first, ipaddress.IPv6Address) and isinstance(last, ipaddress.IPv6Address):
        return Range(kind, label, str(net), None, None, ipv6_hex(first), ipv6_hex(last))
    return Range(kind, label, str(net), int(first), int(last))


def host_cidr(address: str) -> str:
    """One address as a CIDR of itself (``/32`` or ``/128``), as an exception lists it."""
    ip = ipaddress.ip_address(address.strip())
    return f"{ip}/{ip.max_prefixlen}"


def ranges(kind: str, label: str, texts: Iterable[str]) -> list[Range]:
    return [r for t in texts if (r := parse_range(kind, label, t)) is not None]


# SQL expression turning a dotted IPv4 string column into its integer (NULL if not IPv4).
def ipv4_int_sql(col: str) -> str:
    parts = [f"TRY_CAST(split_part({col}, '.', {i}) AS BIGINT)" for i in range(1, 5)]
    return (
        f"CASE WHEN regexp_matches({col}, '^[0-9]{{1,3}}(\\.[0-9]{{1,3}}){{3}}$') THEN "
        f"{parts[0]} * 16777216 + {parts[1]} * 65536 + {parts[2]} * 256 + {parts[3]} END"
    )


def _groups(col: str) -> str:
    """How many colon-separated groups ``col`` holds (0 for the empty text)."""
    colons = f"length({col}) - length(replace({col}, ':', ''))"
    return f"CASE WHEN {col} = '' THEN 0 ELSE {colons} + 1 END"


def _hex_pair(hi: int, lo: int) -> str:
    """Two octets of a trailing dotted quad as one 4-digit hex group."""
    octet = "CAST(regexp_extract(ip, '([0-9]+)[.]([0-9]+)[.]([0-9]+)[.]([0-9]+)$', {}) AS BIGINT)"
    return f"lpad(lower(hex({octet.format(hi)} * 256 + {octet.format(lo)})), 4, '0')"


def ip_keys_sql(relation: str) -> str:
    """``ip``, ``ip_int`` (IPv4) and ``ip6`` (IPv6 as 32 hex digits) for each ``ip`` of
    ``relation``, in SQL that DuckDB runs and sqlglot carries to Spark.

    Expects addresses the readers validated. IPv6 in any textual form: ``::`` is expanded,
    a trailing dotted quad (``::ffff:192.0.2.1``) becomes two groups, each group is padded to
    four digits. One step per subquery keeps every expression small.
    """
    tail = f"concat({_hex_pair(1, 2)}, ':', {_hex_pair(3, 4)})"
    digits = ", ".join(f"lpad(split_part(g, ':', {i}), 4, '0')" for i in range(1, 9))
    return f"""
SELECT ip, ip_int, CASE WHEN g IS NOT NULL THEN concat({digits}) END AS ip6
FROM (
    SELECT ip, ip_int, CASE WHEN b LIKE '%::%' THEN concat_ws(':', nullif(l, ''),
            substring(repeat(':0', 8 - ({_groups("l")}) - ({_groups("r")})), 2),
            nullif(r, '')) ELSE b END AS g
    FROM (
        SELECT ip, ip_int, b, split_part(b, '::', 1) AS l, split_part(b, '::', 2) AS r
        FROM (
            SELECT ip, {ipv4_int_sql("ip")} AS ip_int,
                CASE WHEN ip LIKE '%:%' AND ip LIKE '%.%'
                     THEN concat(lower(regexp_extract(ip, '^(.*:)[0-9.]+$', 1)), {tail})
                     WHEN ip LIKE '%:%' THEN lower(ip) END AS b
            FROM {relation}) k1) k2) k3"""
