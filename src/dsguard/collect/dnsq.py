"""DNS for the accepted domains, captured into ``dns.json`` with dnspython.

Which names (posture-checks.md Appendix A, and what ``posture/dnsview.py`` looks for):
TXT and MX of each domain, TXT of ``_dmarc.<domain>``, CNAME of ``selector1``/``selector2``
``._domainkey.<domain>``, TXT and ``_dmarc`` TXT of each parent name (the DMARC tree walk),
and the TXT of every SPF ``include:``/``redirect=`` target, recursively, so the SPF lookup
count and the EOP include can be judged offline. Saved in the typed ``dns.json`` shape
(``{"name": {"TXT": [...], "MX": ["10 host"], "CNAME": [...]}}``); a name without records is
left out. The resolver's nameserver and port are configurable, so tests use a local server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.name
import dns.resolver

from dsguard.collect.errors import CollectError
from dsguard.posture.dnsview import MULTI_LABEL_SUFFIXES
from dsguard.posture.mailauth import is_spf, parse_spf

MAX_SPF_NAMES = 40
_SPF_DEPTH = 10


@dataclass(frozen=True)
class DnsSettings:
    """``servers`` empty: the system resolver; else ``host`` or ``host:port`` entries."""

    servers: tuple[str, ...] = ()
    timeout: float = 5.0


def make_resolver(settings: DnsSettings) -> dns.resolver.Resolver:
    if not settings.servers:
        resolver = dns.resolver.Resolver()
    else:
        resolver = dns.resolver.Resolver(configure=False)
        hosts, ports = [], set()
        for entry in settings.servers:
            host, port = _host_port(entry)
            hosts.append(host)
            ports.add(port)
        resolver.nameservers = hosts
        resolver.port = ports.pop() if len(ports) == 1 else 53
    resolver.timeout = settings.timeout
    resolver.lifetime = settings.timeout * 3
    return resolver


def _host_port(entry: str) -> tuple[str, int]:
    if entry.startswith("[") and "]:" in entry:  # [::1]:5353
        host, _, port = entry[1:].partition("]:")
        return host, int(port)
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, int(port)
    return entry, 53


class Capture:
    """Queries and their answers, collected into the ``dns.json`` document."""

    def __init__(self, resolver: dns.resolver.Resolver, warn: Callable[[str], None]) -> None:
        self.resolver = resolver
        self.warn = warn
        self.records: dict[str, dict[str, list[str]]] = {}
        self.queries = 0
        self.failures = 0
        self._asked: set[tuple[str, str]] = set()

    def ask(self, name: str, rtype: str) -> list[str]:
        name = name.lower().rstrip(".")
        if (name, rtype) in self._asked:
            return self.records.get(name, {}).get(rtype, [])
        self._asked.add((name, rtype))
        self.queries += 1
        try:
            answer = self.resolver.resolve(name, rtype, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:  # timeout, SERVFAIL, no nameserver
            self.failures += 1
            self.warn(f"DNS {rtype} {name}: {type(exc).__name__}; not captured")
            return []
        values = [_text(rtype, rdata) for rdata in answer.rrset or []]
        if values:
            self.records.setdefault(name, {})[rtype] = values
        return values


def _text(rtype: str, rdata: Any) -> str:
    """A record as ``dns.json`` keeps it: TXT strings joined (as SPF reads them),
    ``"10 host"`` for MX, the bare target for CNAME."""
    if rtype == "TXT":
        return b"".join(rdata.strings).decode("utf-8", errors="replace")
    if rtype == "MX":
        return f"{rdata.preference} {rdata.exchange.to_text(omit_final_dot=True)}"
    if rtype == "CNAME":
        return str(rdata.target.to_text(omit_final_dot=True))
    return str(rdata.to_text())


def parents(domain: str) -> list[str]:
    """Parent names of ``domain`` worth a DMARC look-up (no bare TLD, no public suffix)."""
    labels = domain.split(".")
    out = []
    for i in range(1, len(labels) - 1):
        name = ".".join(labels[i:])
        if name in MULTI_LABEL_SUFFIXES:
            break
        out.append(name)
    return out


def capture_domains(
    domains: Iterable[str],
    settings: DnsSettings,
    progress: Callable[[int, int, str], None],
    warn: Callable[[str], None],
    resolver: dns.resolver.Resolver | None = None,
) -> dict[str, dict[str, list[str]]]:
    """The ``dns.json`` document for ``domains`` (see the module docstring)."""
    cap = Capture(resolver or make_resolver(settings), warn)
    names = [d.lower().rstrip(".") for d in domains if d and not d.startswith("*")]
    for i, domain in enumerate(names):
        progress(i, len(names), domain)
        txt = cap.ask(domain, "TXT")
        cap.ask(domain, "MX")
        cap.ask(f"_dmarc.{domain}", "TXT")
        for selector in ("selector1", "selector2"):
            cap.ask(f"{selector}._domainkey.{domain}", "CNAME")
        for parent in parents(domain):
            cap.ask(parent, "TXT")
            cap.ask(f"_dmarc.{parent}", "TXT")
        _follow_spf(cap, [t for t in txt if is_spf(t)])
    if cap.queries and cap.failures == cap.queries:
        # Writing an empty dns.json would say "no records published", which is not known.
        raise CollectError(
            f"DNS not captured: none of {cap.queries} queries was answered "
            f"({', '.join(settings.servers) or 'system resolver'})"
        )
    progress(len(names), len(names), f"{len(cap.records)} names")
    return dict(sorted(cap.records.items()))


def _follow_spf(cap: Capture, records: list[str]) -> None:
    """Capture the TXT of every include/redirect target, breadth first, bounded."""
    queue = [(r, 0) for r in records]
    seen: set[str] = set()
    while queue:
        record, depth = queue.pop(0)
        if depth >= _SPF_DEPTH:
            continue
        spf = parse_spf(record)
        targets = list(spf.includes) + ([spf.redirect] if spf.redirect else [])
        for target in targets:
            target = target.lower().rstrip(".")
            if target in seen or "%" in target or not _valid_name(target):
                continue
            if len(seen) >= MAX_SPF_NAMES:
                cap.warn(f"SPF include chain longer than {MAX_SPF_NAMES} names; stopped there")
                return
            seen.add(target)
            queue += [(t, depth + 1) for t in cap.ask(target, "TXT") if is_spf(t)]


def _valid_name(name: str) -> bool:
    try:
        dns.name.from_text(name)
    except dns.exception.DNSException:
        return False
    return "." in name
