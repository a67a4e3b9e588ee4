"""SPF (RFC 7208) and DMARC (RFC 7489, with the RFC 9989 ``np``/``psd``/``t`` tags) parsing.

This is the *parse* layer of checkdmarc's query → parse → check split: pure functions from
record text to typed results, no DNS. ``errors`` make a record unusable (a receiver would
ignore it or return ``permerror``); ``warnings`` are best-practice or compatibility notes. No
result is ever decided by substring search: ``v=DMARC1; p=none; sp=reject`` has ``p=none``.

Why not checkdmarc itself: its ``parse_spf_record`` follows ``include:``/``redirect=`` through
live DNS and its ``parse_dmarc_record`` verifies external report destinations through DNS, so
neither can run offline on a captured bundle, and it brings dnspython, httpx, requests,
cryptography and publicsuffixlist along. The semantics below follow checkdmarc 6 (``np``
inherits ``sp`` when ``sp`` is explicit, else ``p``; a missing ``p`` means ``none``; unknown
tags are ignored with a warning; duplicate tags are an error).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Literal

SpfQualifier = Literal["+", "-", "~", "?"]
SpfResult = Literal["pass", "fail", "softfail", "neutral"]
DmarcPolicy = Literal["none", "quarantine", "reject"]

QUALIFIER_RESULT: dict[str, SpfResult] = {
    "+": "pass",
    "-": "fail",
    "~": "softfail",
    "?": "neutral",
}
SPF_MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
# Mechanisms and modifiers that cost a DNS lookup (RFC 7208 §4.6.4); the limit is 10.
SPF_LOOKUP_TERMS = frozenset({"include", "a", "mx", "ptr", "exists"})
SPF_LOOKUP_LIMIT = 10
POLICY_STRENGTH: dict[str, int] = {"none": 0, "quarantine": 1, "reject": 2}

_SPF_VERSION = re.compile(r"^v=spf1(\s|$)", re.IGNORECASE)
_DMARC_VERSION = re.compile(r"^v\s*=\s*DMARC1\s*(;|$)", re.IGNORECASE)
_DOMAIN_SPEC = re.compile(r"^[A-Za-z0-9_%{}.+\-/=]+$")
_MODIFIER = re.compile(r"^([A-Za-z][A-Za-z0-9_.\-]*)=(.*)$")
_MECHANISM = re.compile(r"^([+\-~?]?)([A-Za-z0-9]+)(?:([:/])(.*))?$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s]+$")


def unquote_txt(value: str) -> str:
    """A TXT value as published: ``"v=spf1 " "-all"`` → ``v=spf1 -all``.

    Captures keep a long record either as one string or as its quoted 255-byte chunks.
    """
    text = value.strip()
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        chunks = re.findall(r'"((?:[^"\\]|\\.)*)"', text)
        if chunks:
            return "".join(c.replace('\\"', '"') for c in chunks)
    return text


# --------------------------------------------------------------------------------- SPF


@dataclass(frozen=True)
class SpfTerm:
    """One SPF mechanism, e.g. ``-all`` or ``include:spf.protection.outlook.com``."""

    qualifier: SpfQualifier
    mechanism: str
    value: str | None = None

    @property
    def result(self) -> SpfResult:
        return QUALIFIER_RESULT[self.qualifier]

    def __str__(self) -> str:
        q = "" if self.qualifier == "+" else self.qualifier
        return f"{q}{self.mechanism}:{self.value}" if self.value else f"{q}{self.mechanism}"


@dataclass
class SpfRecord:
    """A parsed ``v=spf1`` record; terms after ``all`` are kept but never evaluated."""

    raw: str
    terms: list[SpfTerm] = field(default_factory=list)
    redirect: str | None = None
    exp: str | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def all_term(self) -> SpfTerm | None:
        return next((t for t in self.terms if t.mechanism == "all"), None)

    @property
    def all_result(self) -> SpfResult | None:
        """The ``all`` result, or ``None`` when the record has no ``all`` (see ``redirect``)."""
        term = self.all_term
        return term.result if term else None

    @property
    def includes(self) -> list[str]:
        return [t.value for t in self.terms if t.mechanism == "include" and t.value]

    @property
    def lookups(self) -> int:
        """DNS-lookup terms in this record alone (nested includes not counted)."""
        n = sum(1 for t in self.terms if t.mechanism in SPF_LOOKUP_TERMS)
        return n + (1 if self.redirect and self.all_term is None else 0)

    @property
    def authorises_anyone(self) -> bool:
        """``+all`` or ``?all``: the record does not fail unlisted senders."""
        return self.all_result in ("pass", "neutral")


def is_spf(value: str) -> bool:
    return bool(_SPF_VERSION.match(unquote_txt(value)))


def parse_spf(record: str) -> SpfRecord:
    """Parse one SPF record; never raises, problems land in ``errors`` and ``warnings``."""
    text = unquote_txt(record)
    result = SpfRecord(raw=text)
    if not _SPF_VERSION.match(text):
        result.errors.append("the record does not start with 'v=spf1'")
        return result
    if text != text.strip() or "  " in text:
        result.warnings.append("extra whitespace between terms")
    seen_all = False
    for token in text.split()[1:]:
        modifier = _MODIFIER.match(token)
        if modifier and ":" not in modifier.group(1):
            _spf_modifier(result, modifier.group(1).lower(), modifier.group(2))
            continue
        mech = _MECHANISM.match(token)
        if not mech:
            result.errors.append(f"unparseable term {token!r}")
            continue
        qualifier = mech.group(1) or "+"
        name = mech.group(2).lower()
        sep, value = mech.group(3), mech.group(4)
        if name not in SPF_MECHANISMS:
            result.errors.append(f"unknown mechanism {name!r} (permerror)")
            continue
        if seen_all:
            result.warnings.append(f"term {token!r} after 'all' is never evaluated")
        term_value = _spf_mechanism_value(result, name, sep, value, token)
        term = SpfTerm(qualifier, name, term_value)  # type: ignore[arg-type]
        result.terms.append(term)
        if name == "all":
            seen_all = True
    if result.redirect and result.all_term is not None:
        result.warnings.append("'redirect=' is ignored because the record has an 'all' term")
    if result.all_term is None and result.redirect is None:
        result.warnings.append(
            "no 'all' term and no 'redirect=': unlisted senders get the default 'neutral'"
        )
    if result.all_result == "pass":
        result.warnings.append("'+all' authorises every sender on the internet")
    return result


def _spf_modifier(result: SpfRecord, name: str, value: str) -> None:
    if name in ("redirect", "exp"):
        if getattr(result, name) is not None:
            result.errors.append(f"'{name}=' appears more than once (permerror)")
            return
        if not value or not _DOMAIN_SPEC.match(value):
            result.errors.append(f"'{name}=' has an invalid domain {value!r}")
            return
        setattr(result, name, value.lower().rstrip("."))
    else:
        result.warnings.append(f"unknown modifier {name!r} ignored")


def _spf_mechanism_value(
    result: SpfRecord, name: str, sep: str | None, value: str | None, token: str
) -> str | None:
    if name == "all":
        if sep:
            result.errors.append(f"'all' takes no argument: {token!r}")
        return None
    if name in ("include", "exists"):
        if sep != ":" or not value:
            result.errors.append(f"'{name}' needs a domain: {token!r}")
            return None
        if not _DOMAIN_SPEC.match(value):
            result.errors.append(f"'{name}' has an invalid domain: {token!r}")
        return value.lower().rstrip(".")
    if name in ("ip4", "ip6"):
        if sep != ":" or not value:
            result.errors.append(f"'{name}' needs an address: {token!r}")
            return None
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError:
            result.errors.append(f"'{name}' has an invalid address: {token!r}")
            return value
        if (name == "ip4") != (net.version == 4):
            result.errors.append(f"'{name}' holds an IPv{net.version} address: {token!r}")
        elif name == "ip4" and net.prefixlen < 8:
            result.warnings.append(f"{token!r} authorises a very wide range")
        return value
    # a, mx, ptr: optional ':domain' and/or '/cidr'
    if sep is None:
        return None
    full = f"{sep}{value or ''}"
    return full[1:] if full.startswith(":") else full


# ------------------------------------------------------------------------------- DMARC


@dataclass
class DmarcRecord:
    """A parsed DMARC record with RFC 9989 inheritance applied to ``sp`` and ``np``.

    ``tags`` holds the explicit tags as written (lower-cased names, trimmed values).
    """

    raw: str
    tags: dict[str, str] = field(default_factory=dict)
    p: DmarcPolicy | None = None
    sp: DmarcPolicy | None = None
    np: DmarcPolicy | None = None
    pct: int = 100
    rua: list[str] = field(default_factory=list)
    ruf: list[str] = field(default_factory=list)
    adkim: str = "r"
    aspf: str = "r"
    testing: bool = False
    psd: str | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors and self.p is not None

    def policy_for(self, *, subdomain: bool = False, nonexistent: bool = False) -> str | None:
        """The policy a receiver applies: ``p`` at the domain, ``sp`` below it, ``np`` for
        names that do not exist."""
        if nonexistent:
            return self.np
        return self.sp if subdomain else self.p


def is_dmarc(value: str) -> bool:
    return bool(_DMARC_VERSION.match(unquote_txt(value)))


_POLICIES: tuple[str, ...] = ("none", "quarantine", "reject")
_KNOWN_TAGS = frozenset(
    {"v", "p", "sp", "np", "pct", "rua", "ruf", "adkim", "aspf", "fo", "rf", "ri", "t", "psd"}
)


def parse_dmarc(record: str) -> DmarcRecord:
    """Parse one DMARC record; never raises.

    Tags split on ``;`` with or without a trailing one, whitespace around ``=`` and ``;``
    allowed, tag names and policy values case-insensitive.
    """
    text = unquote_txt(record)
    result = DmarcRecord(raw=text)
    if text.lower().startswith("v=spf1"):
        result.errors.append("an SPF record was found where the DMARC record should be")
        return result
    if not _DMARC_VERSION.match(text):
        result.errors.append("the record does not start with 'v=DMARC1'")
        return result
    parts = [p.strip() for p in text.split(";")]
    for index, part in enumerate(parts):
        if not part:
            continue
        if "=" not in part:
            result.errors.append(f"malformed tag {part!r} (expected tag=value)")
            continue
        name, _, value = part.partition("=")
        name, value = name.strip().lower(), value.strip()
        if name == "v" and index != 0:
            result.errors.append("'v' must be the first tag")
            continue
        if name in result.tags:
            result.errors.append(f"duplicate tag {name!r}")
            continue
        if name not in _KNOWN_TAGS:
            result.warnings.append(f"unknown tag {name!r} ignored")
            continue
        result.tags[name] = value
    _dmarc_policies(result)
    _dmarc_other_tags(result)
    return result


def _policy(result: DmarcRecord, tag: str) -> DmarcPolicy | None:
    value = result.tags.get(tag)
    if value is None:
        return None
    lowered = value.lower()
    if lowered not in _POLICIES:
        result.errors.append(f"{tag}={value!r} is not none, quarantine or reject")
        return None
    return lowered  # type: ignore[return-value]


def _dmarc_policies(result: DmarcRecord) -> None:
    p = _policy(result, "p")
    if "p" not in result.tags:
        if result.tags.get("rua"):
            result.warnings.append("no 'p' tag: receivers treat the record as p=none")
        else:
            result.warnings.append("no 'p' tag: equivalent to p=none (RFC 9989)")
        p = "none"
    result.p = p
    sp = _policy(result, "sp")
    result.sp = sp if "sp" in result.tags else p
    np = _policy(result, "np")
    if "np" in result.tags:
        result.np = np
    else:
        result.np = result.sp if "sp" in result.tags else p
    if result.p is not None and result.sp is not None and (
        POLICY_STRENGTH[result.sp] < POLICY_STRENGTH[result.p]
    ):
        result.warnings.append(f"sp={result.sp} is weaker than p={result.p} for subdomains")


def _dmarc_other_tags(result: DmarcRecord) -> None:
    tags = result.tags
    if "pct" in tags:
        value = tags["pct"]
        if re.fullmatch(r"\d{1,3}", value) and 0 <= int(value) <= 100:
            result.pct = int(value)
        else:
            result.errors.append(f"pct={value!r} is not an integer from 0 to 100")
    for tag in ("adkim", "aspf"):
        if tag in tags:
            value = tags[tag].lower()
            if value in ("r", "s"):
                setattr(result, tag, value)
            else:
                result.warnings.append(f"{tag}={tags[tag]!r} is invalid; the default 'r' applies")
    if "t" in tags:
        value = tags["t"].lower()
        if value in ("y", "n"):
            result.testing = value == "y"
            if result.testing:
                result.warnings.append("t=y: receivers apply the next weaker policy (testing)")
        else:
            result.warnings.append(f"t={tags['t']!r} is invalid; the default 'n' applies")
    if "psd" in tags:
        value = tags["psd"].lower()
        if value in ("y", "n", "u"):
            result.psd = value
        else:
            result.warnings.append(f"psd={tags['psd']!r} is invalid and ignored")
    for tag in ("rua", "ruf"):
        if tag in tags:
            uris = [u.strip() for u in tags[tag].split(",") if u.strip()]
            good = []
            for uri in uris:
                target = re.sub(r"!\d+[kmgt]?$", "", uri, flags=re.IGNORECASE)
                if _URI.match(target):
                    good.append(target)
                else:
                    result.warnings.append(f"{tag} entry {uri!r} is not a URI and is ignored")
            setattr(result, tag, good)
    if not result.rua:
        result.warnings.append("no 'rua': nobody receives aggregate reports")


def strongest(*policies: str | None) -> str | None:
    """The strongest of the given policies (``None`` entries ignored)."""
    known = [p for p in policies if p is not None]
    return max(known, key=POLICY_STRENGTH.__getitem__) if known else None
