"""IPv4 ranges as integer intervals, so range membership is a plain join in any SQL engine
(DuckDB's inet extension would need a download; Spark has none)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Range:
    kind: str  # "spf", "exception", "connector", "office", ...
    label: str  # what the range belongs to (a domain, an exception id, a connector name)
    cidr: str
    start: int
    end: int


def parse_range(kind: str, label: str, text: str) -> Range | None:
    """An IPv4 address or CIDR as an integer interval; ``None`` for IPv6 or garbage."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None
    if net.version != 4:
        return None
    return Range(kind, label, str(net), int(net.network_address), int(net.broadcast_address))


def ranges(kind: str, label: str, texts: Iterable[str]) -> list[Range]:
    return [r for t in texts if (r := parse_range(kind, label, t)) is not None]


# SQL expression turning a dotted IPv4 string column into its integer (NULL if not IPv4).
def ipv4_int_sql(col: str) -> str:
    parts = [f"TRY_CAST(split_part({col}, '.', {i}) AS BIGINT)" for i in range(1, 5)]
    return (
        f"CASE WHEN regexp_matches({col}, '^[0-9]{{1,3}}(\\.[0-9]{{1,3}}){{3}}$') THEN "
        f"{parts[0]} * 16777216 + {parts[1]} * 65536 + {parts[2]} * 256 + {parts[3]} END"
    )
