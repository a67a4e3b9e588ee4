"""What a valid source address looks like, written once for every engine that checks one:
DuckDB (RE2) in the readers, Spark (Java regex) in the cluster job; and how wide a source
range may be before it stops naming one site."""

from __future__ import annotations

import ipaddress

# The widest range that still names one site network: an IPv4 /24, an IPv6 /64 (one IPv6
# LAN; a host picks its address inside it). Wider is too broad for a device, app or relay.
WIDEST_PREFIX = {4: 24, 6: 64}


def too_wide(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return net.prefixlen < WIDEST_PREFIX[net.version]

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_PATTERN = rf"{_OCTET}(?:\.{_OCTET}){{3}}"


def _ipv6_pattern() -> str:
    """RFC 3986 ``IPv6address`` (``::`` compression, IPv4 tail)."""
    h16 = r"[0-9A-Fa-f]{1,4}"
    ls32 = rf"(?:{h16}:{h16}|{IPV4_PATTERN})"

    def times(n: int) -> str:
        return f"(?:{h16}:){{{n}}}" if n else ""

    def head(n: int) -> str:  # [ *n( h16 ":" ) h16 ]
        return f"(?:(?:{h16}:){{0,{n}}}{h16})?"

    alts = [times(6) + ls32, "::" + times(5) + ls32]
    tails = [times(4) + ls32, times(3) + ls32, times(2) + ls32, f"{h16}:{ls32}", ls32, h16, ""]
    alts += [f"{head(n)}::{tail}" for n, tail in enumerate(tails)]
    return "(?:" + "|".join(alts) + ")"


IPV6_PATTERN = _ipv6_pattern()


def spark_full_match(pattern: str) -> str:
    """``pattern`` anchored for Spark's ``RLIKE`` (which finds, not matches) and with its
    backslashes doubled for a Spark SQL string literal."""
    return "^(?:" + pattern.replace("\\", "\\\\") + ")$"
