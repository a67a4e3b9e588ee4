"""The KQL hunting pack: dsguard's main detections as queries a tenant runs itself.

``dsguard kql`` writes one ``.kql`` file per query for Microsoft Defender XDR advanced
hunting (``EmailEvents`` with ``Timestamp``, ``EntraIdSignInEvents``) and for Microsoft
Sentinel (``EmailEvents`` with ``TimeGenerated``, ``SigninLogs``), with the tenant's accepted
domains filled in, plus a ``README.md`` index. Each query names the DSG-* rules it implements,
so a hit in the tenant reads the same as a dsguard alert.

Query bodies are templates in ``report/kql/`` (``<id>.kql``, or ``<id>.<platform>.kql`` when
the platforms differ beyond the time column); :data:`QUERIES` says what each one is for.
The tables they may touch, with every documented column, are data in
``report/kql/tables.yaml``; :func:`unknown_columns` holds a query to them, so a column that
does not exist in Microsoft's schema (``ConnectorId``, ``ActionType`` on ``EmailEvents``...)
fails at generation and in the tests, not in a customer's tenant.

Domains come from tenant data, so they are validated as DNS names and written through
:func:`kql_string`, which escapes them for a KQL string literal: a hostile "domain" cannot
close the literal and append query text.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

TEMPLATES = Path(__file__).resolve().parent / "kql"
DEFAULT_LOOKBACK_DAYS = 30


class KqlError(ValueError):
    """A domain or template cannot be turned into a safe, valid query."""


@dataclass(frozen=True)
class Platform:
    key: str
    title: str
    time_column: str
    email_table: str  # key into tables.yaml
    signin_table: str


PLATFORMS: dict[str, Platform] = {
    "defender": Platform(
        "defender",
        "Microsoft Defender XDR advanced hunting",
        "Timestamp",
        "defender:EmailEvents",
        "defender:EntraIdSignInEvents",
    ),
    "sentinel": Platform(
        "sentinel",
        "Microsoft Sentinel / Log Analytics",
        "TimeGenerated",
        "sentinel:EmailEvents",
        "sentinel:SigninLogs",
    ),
}


@dataclass(frozen=True)
class HuntingQuery:
    id: str
    title: str
    rules: tuple[str, ...]
    summary: str
    signins: bool = False  # also reads the platform's sign-in table

    def tables(self, platform: Platform) -> tuple[str, ...]:
        if self.signins:
            return (platform.email_table, platform.signin_table)
        return (platform.email_table,)


QUERIES: tuple[HuntingQuery, ...] = (
    HuntingQuery(
        "direct-send-inventory",
        "Anonymous internal-looking mail (the Direct Send inventory)",
        ("DSG-PATH-001",),
        "Inbound mail that matched no connector while its envelope (P1) or From (P2) domain is "
        "one of ours, grouped by source and sender: every legitimate device to register and "
        "every spoof, before RejectDirectSend is turned on.",
    ),
    HuntingQuery(
        "own-domain-auth-failure",
        "Authentication failure on our own domains",
        ("DSG-AUTH-001", "DSG-AUTH-002", "DSG-AUTH-003"),
        "Internal-looking inbound mail whose DMARC, own-domain SPF or composite authentication "
        "failed; a passing DKIM signature is shown because it argues against a spoof.",
    ),
    HuntingQuery(
        "self-send",
        "Self-addressed internal-looking mail",
        ("DSG-SELF-001",),
        "Inbound mail where the recipient is the sender (From or envelope) and the domain is "
        "ours: the fax and voicemail lures of published Direct Send campaigns.",
    ),
    HuntingQuery(
        "header-only-spoof",
        "From header claims our domain, envelope does not (P1/P2 mismatch)",
        ("DSG-AUTH-005",),
        "The header-only spoof that RejectDirectSend does not stop, because it checks the "
        "envelope domain only.",
    ),
    HuntingQuery(
        "identity-no-signin",
        "Purported internal sender without a sign-in near the message",
        ("DSG-IDEN-003", "DSG-IDEN-004"),
        "Direct Send mail whose From address never signed in successfully within two hours of "
        "the message, nor from the message's source address within twelve.",
        signins=True,
    ),
    HuntingQuery(
        "identity-signin-country",
        "Sender IP country never seen in the purported sender's sign-ins",
        ("DSG-IDEN-003",),
        "Direct Send mail from a country the From address never signed in from (the community "
        "correlation of detection-signals.md §4.2, geolocating both sides alike).",
        signins=True,
    ),
    HuntingQuery(
        "new-source-for-sender",
        "New source address for an established internal sender",
        ("DSG-SRC-001", "DSG-SRC-002"),
        "A sender with history on earlier days mails from an address it never used, in the "
        "last day; flags whether the address is new to the whole tenant too.",
    ),
)


# ------------------------------------------------------------------------ domains, strings

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalise_domain(value: str) -> list[str]:
    """The forms of one accepted domain to match: the ASCII (punycode) name, plus its
    Unicode form for an internationalised domain. Raises :class:`KqlError` for anything
    that is not a DNS name, so tenant data never shapes a query beyond a literal."""
    name = value.strip().rstrip(".").lower()
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise KqlError(f"not a domain name: {value!r}") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or len(labels) < 2 or not all(_LABEL.match(lb) for lb in labels):
        raise KqlError(f"not a domain name: {value!r}")
    unicode_name = ascii_name.encode("ascii").decode("idna")
    return [ascii_name] if unicode_name == ascii_name else [ascii_name, unicode_name]


def normalise_domains(values: Iterable[str]) -> list[str]:
    out: set[str] = set()
    for v in values:
        out.update(normalise_domain(v))
    return sorted(out)


_KQL_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}


def kql_string(value: str) -> str:
    """``value`` as a double-quoted KQL string literal.

    Kusto documents backslash escapes for the quote, ``\\``, ``\\t`` and ``\\n``; any other
    control character (CR included) has no documented escape, so it is refused rather than
    emitted raw.
    """
    out = []
    for ch in value:
        if ch in _KQL_ESCAPES:
            out.append(_KQL_ESCAPES[ch])
        elif ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F or ch in "\u2028\u2029":
            raise KqlError(f"control character U+{ord(ch):04X} in a KQL string")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False)


def _comment(text: str) -> str:
    """Text for a ``//`` comment: one line, no control characters."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", " ", text)


# ------------------------------------------------------------------------------ rendering


@cache
def load_tables() -> dict[str, dict[str, Any]]:
    """``tables.yaml``: ``platform:Table`` → ``{"table", "platform", "source", "columns"}``."""
    doc = yaml.safe_load((TEMPLATES / "tables.yaml").read_text(encoding="utf-8"))
    return dict(doc["tables"])


def template(query: HuntingQuery, platform: Platform) -> str:
    for name in (f"{query.id}.{platform.key}.kql", f"{query.id}.kql"):
        path = TEMPLATES / name
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise KqlError(f"no template for {query.id} on {platform.key}")


_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def _fill(body: str, values: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        if m[1] not in values:
            raise KqlError(f"unknown template placeholder {{{{{m[1]}}}}}")
        return values[m[1]]

    return _PLACEHOLDER.sub(sub, body)


def _rule_titles(ids: Iterable[str]) -> list[str]:
    from dsguard.signals.rules import rule

    return [f"{i} {rule(i).title}" for i in ids]


def render(
    query: HuntingQuery,
    platform: Platform,
    domains: list[str],
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
) -> str:
    """One query, ready to paste: a comment header, the tenant's domains, the body."""
    if not domains:
        raise KqlError("no accepted domains to hunt for")
    for d in domains:  # names only, already normalised: nothing else reaches a literal
        if d not in normalise_domain(d):
            raise KqlError(f"not a normalised domain name: {d!r}")
    if not 1 <= lookback_days <= 3650:
        raise KqlError(f"lookback of {lookback_days} days is out of range")
    tables = load_tables()
    table_names = ", ".join(tables[t]["table"] for t in query.tables(platform))
    header = [
        f"// dsguard hunting query {query.id}: {query.title}",
        f"// Platform: {platform.title} ({table_names}; time column {platform.time_column})",
        *(f"// Implements {t}" for t in _rule_titles(query.rules)),
        *(f"// {line}" for line in _wrap(query.summary, 88)),
        "// Accepted domains (edit AcceptedDomains to change them):",
        *(f"//   {line}" for line in _wrap(", ".join(domains), 86)),
    ]
    literal = ", ".join(kql_string(d) for d in domains)
    lets = [
        f"let AcceptedDomains = dynamic([{literal}]);",
        f"let Lookback = {lookback_days}d;",
    ]
    body = _fill(template(query, platform), {"time": platform.time_column})
    text = "\n".join([*(_comment(h) for h in header), *lets, body.rstrip("\n")]) + "\n"
    bad = unknown_columns(text, query.tables(platform))
    if bad:
        raise KqlError(f"{query.id} ({platform.key}) names unknown columns: {sorted(bad)}")
    return text


def render_pack(
    domains: list[str], lookback_days: int = DEFAULT_LOOKBACK_DAYS, source: str = ""
) -> dict[str, str]:
    """Every query for every platform, plus ``README.md``, by relative path."""
    files: dict[str, str] = {}
    for platform in PLATFORMS.values():
        for q in QUERIES:
            files[f"{platform.key}/{q.id}.kql"] = render(q, platform, domains, lookback_days)
    files["README.md"] = readme(domains, lookback_days, source)
    return files


def readme(domains: list[str], lookback_days: int, source: str = "") -> str:
    """The pack's index: what each query finds, the rules it implements, where to run it."""
    tables = load_tables()
    lines = [
        "# dsguard KQL hunting pack",
        "",
        "Generated by `dsguard kql`. Each query implements dsguard detections (DSG-* rule ids)",
        "in your own tenant, with your accepted domains filled in.",
        "",
        f"Accepted domains{f' ({_comment(source)})' if source else ''}: "
        + ", ".join(f"`{d}`" for d in domains),
        "",
        f"Lookback: {lookback_days} days (`let Lookback`). Advanced hunting keeps 30 days.",
        "",
        "| query | finds | rules | Defender XDR | Sentinel |",
        "|---|---|---|---|---|",
    ]
    for q in QUERIES:
        lines.append(
            f"| {q.id} | {q.title} | {', '.join(q.rules)} | "
            f"[defender/{q.id}.kql](defender/{q.id}.kql) | "
            f"[sentinel/{q.id}.kql](sentinel/{q.id}.kql) |"
        )
    lines += [
        "",
        "## Where to run them",
        "",
        "* `defender/`: Microsoft Defender XDR advanced hunting. `EmailEvents` needs Defender",
        "  for Office 365 Plan 2; the identity queries read `EntraIdSignInEvents` (Entra ID P2),",
        "  which replaced `AADSignInEventsBeta` on 2025-12-09. On a tenant that still has only",
        "  the beta table, replace the table name: the columns used exist in both.",
        "* `sentinel/`: Microsoft Sentinel with the Microsoft Defender XDR connector streaming",
        "  `EmailEvents` and the Entra ID connector writing `SigninLogs` (interactive sign-ins).",
        "",
        "## Tables and columns",
        "",
        "Every query uses only columns documented for its tables (checked when the pack is",
        "generated):",
        "",
    ]
    for t in tables.values():
        lines.append(f"* `{t['table']}` ({t['platform']}): {' '.join(str(t['source']).split())}")
    lines += [
        "",
        "Not EmailEvents columns, whatever some public queries use: `ConnectorId`,",
        "`RecipientEmailDomain`, `ActionType`, `ErrorCode`, `Directionality`. A rejected",
        "Direct Send attempt (550 5.7.68) never reaches EmailEvents at all.",
        "",
    ]
    return "\n".join(lines)


def write_pack(
    out: Path,
    domains: list[str],
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    source: str = "",
) -> list[Path]:
    """Render the pack and write it under ``out``; returns the files written."""
    from dsguard.outputs import write_text

    files = render_pack(domains, lookback_days, source)
    return [write_text(out / rel, text) for rel, text in files.items()]


# -------------------------------------------------------------------- tenant's domains


def domains_from_bundle(bundle: Path) -> list[str]:
    """Accepted domains of a bundle's ``exchange/accepted_domains.json``, read with the
    same parser ingest uses (PowerShell and AdminApi shapes, UTF-16, ``smtp:`` prefixes)."""
    from dsguard.posture.model import accepted_domains
    from dsguard.sources.exchange_config import (
        ConfigJsonError,
        decode_text,
        normalise_powershell,
        parse_powershell_json,
    )

    if not bundle.is_dir():
        raise FileNotFoundError(f"{bundle} is not a folder")
    path = bundle / "exchange" / "accepted_domains.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: collect Get-AcceptedDomain or name the domains with --domain"
        )
    text, _ = decode_text(path.read_bytes())
    try:
        objects = parse_powershell_json(text)
    except ConfigJsonError as exc:
        raise KqlError(f"{path}: {exc}") from None
    objs = [normalise_powershell(o) for o in objects if isinstance(o, dict)]
    return [d.name for d in accepted_domains(objs)]


# --------------------------------------------------------------- the column check (lint)

_TOKEN = re.compile(
    r"""
    (?P<comment>//[^\n]*)
  | (?P<string>[hH]?@?"(?:[^"\\\n]|\\.|"")*"|[hH]?@?'(?:[^'\\\n]|\\.|'')*'|```.*?```)
  | (?P<number>\d+(?:\.\d+)?[A-Za-z]*)
  | (?P<ident>\$?[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|=~|!=|!~|<=|>=|\.\.|[=()\[\]{},;.|<>+\-*/%!~:])
  | (?P<space>\s+)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)

# Query operators, their keywords and literals: names that are never columns.
# fmt: off
KEYWORDS = frozenset({
    "let", "where", "project", "extend", "summarize", "by", "join", "kind", "on", "and", "or",
    "in", "has", "has_any", "has_all", "contains", "startswith", "endswith", "between", "order",
    "sort", "asc", "desc", "nulls", "first", "last", "top", "take", "limit", "distinct",
    "count", "union", "inner", "innerunique", "leftouter", "rightouter", "fullouter",
    "leftanti", "rightanti", "leftsemi", "rightsemi", "anti", "semi", "true", "false", "null",
    "as", "mv", "expand", "away", "rename", "reorder", "keep", "series", "render", "evaluate",
    "parse", "with", "datatable", "print", "range", "step", "from", "to", "materialize",
    "isfuzzy", "withsource", "matches", "regex", "not", "invoke", "lookup", "search", "find",
})
# fmt: on


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


def tokens(query: str) -> Iterator[Token]:
    """KQL tokens without comments and blanks (enough for the column check, not a parser)."""
    for m in _TOKEN.finditer(query):
        kind = m.lastgroup or "other"
        if kind not in ("comment", "space"):
            yield Token(kind, m.group())


def _definitions(toks: list[Token]) -> dict[str, list[tuple[int, int]]]:
    """Where the query defines each name: ``let X`` (from there on) and ``X = expr`` aliases,
    the latter with the token span of their own right-hand side, where ``X`` still means the
    input column (``Subject = take_any(Subject)`` reads the column ``Subject``)."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for i, t in enumerate(toks):
        if t.kind != "ident":
            continue
        prev = toks[i - 1].text if i else ""
        nxt = toks[i + 1].text if i + 1 < len(toks) else ""
        if prev == "let":
            spans.setdefault(t.text, []).append((i, i))
        elif nxt == "=" and prev != ".":
            depth, end = 0, len(toks)
            for j in range(i + 2, len(toks)):
                text = toks[j].text
                if text in "([{":
                    depth += 1
                elif text in ")]}":
                    depth -= 1
                    if depth < 0:
                        end = j
                        break
                elif depth == 0 and text in (",", "|", ";", "by"):
                    end = j
                    break
            spans.setdefault(t.text, []).append((i, end))
    return spans


def referenced_names(query: str) -> tuple[set[str], set[str], set[str]]:
    """``(columns, defined, tables)``: identifiers read as columns of the input tables, names
    the query defines itself (``let``, ``Name = ...``), and the known tables it reads.

    A name counts as defined only after its definition and outside its own right-hand side;
    dynamic properties (``Auth.SPF``) and function names are not columns, ``$left.X`` is.
    """
    toks = list(tokens(query))
    known_tables = {t["table"] for t in load_tables().values()}
    spans = _definitions(toks)
    columns: set[str] = set()
    tables: set[str] = set()
    for i, t in enumerate(toks):
        if t.kind != "ident" or t.text.startswith("$"):
            continue
        prev = toks[i - 1].text if i else ""
        before = toks[i - 2].text if i > 1 else ""
        nxt = toks[i + 1].text if i + 1 < len(toks) else ""
        if prev == "." and before not in ("$left", "$right"):
            continue  # a property of a dynamic value
        if nxt == "(" or t.text in KEYWORDS:
            continue
        if t.text in known_tables:
            tables.add(t.text)
            continue
        defs = spans.get(t.text, [])
        if any(start == i for start, _ in defs):
            continue  # the definition itself
        if any(start < i and not start < i < end for start, end in defs):
            continue  # defined earlier, and not inside its own right-hand side
        columns.add(t.text)
    return columns, set(spans), tables


def unknown_columns(query: str, table_keys: Iterable[str]) -> set[str]:
    """Names the query reads as columns that none of its tables documents, and tables it
    reads that it did not declare."""
    tables = load_tables()
    keys = list(table_keys)
    allowed = {c for k in keys for c in tables[k]["columns"]}
    declared = {tables[k]["table"] for k in keys}
    columns, _, used_tables = referenced_names(query)
    return (columns - allowed) | {f"table {t}" for t in used_tables - declared}
