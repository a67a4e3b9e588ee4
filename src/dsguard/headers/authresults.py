"""``Authentication-Results`` (and its ARC and Exchange copies) into typed results.

A hand-written tolerant parser rather than the ``authres`` package: ``authres`` 1.2.0 (the
maintained RFC 8601 parser) requires an authserv-id and so rejects Exchange Online's form
outright (``spf=fail (sender IP is 1.2.3.4) smtp.mailfrom=contoso.com; ...;compauth=fail
reason=601`` has none), and it drops ``action=``. Real headers also miss spaces and semicolons,
carry nested comments or get truncated; this parser keeps what it can and lists the damage in
``defects`` instead of raising.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from dsguard.headers import semantics
from dsguard.headers._lex import Token, tokenize, unfold

# Methods from the IANA "Email Authentication Methods" registry plus Microsoft's compauth.
# A ``method=result`` word with one of these names starts a new result even when the sender
# forgot the ``;`` before it.
KNOWN_METHODS = frozenset(
    {
        "spf", "dkim", "dmarc", "compauth", "arc", "iprev", "auth", "dkim-adsp", "dkim-atps",
        "domainkeys", "sender-id", "senderid", "bimi", "smime", "vbr", "rrvs", "dnswl",
    }
)
# Bare (undotted) keys that belong to the current result, never start one.
RESULT_KEYS = frozenset({"reason", "action", "policy", "oda", "ltdi"})

_SENDER_IP = re.compile(
    r"(?:sender ip is|designates|client-ip=)\s*\[?([0-9a-f:.]+)\]?", re.IGNORECASE
)
_REASON_CODE = re.compile(r"\d{3}")
_INSTANCE = re.compile(r"i=(\d+)$", re.IGNORECASE)


class AuthResult(BaseModel):
    """One ``method=result`` with its comments and ``key=value`` properties.

    Property keys are lower-cased (``smtp.mailfrom``, ``header.from``, ``action``, ``reason``);
    values are kept as written.
    """

    method: str
    result: str
    version: str | None = None
    comments: list[str] = Field(default_factory=list)
    properties: dict[str, str] = Field(default_factory=dict)

    def prop(self, key: str) -> str | None:
        return self.properties.get(key.lower())

    @property
    def reason(self) -> str | None:
        return self.prop("reason")

    @property
    def reason_code(self) -> str | None:
        """A three-digit ``reason=`` (compauth), kept as text so ``000``/``010`` survive."""
        r = self.reason
        return r if r is not None and _REASON_CODE.fullmatch(r.strip()) else None

    @property
    def action(self) -> str | None:
        return self.prop("action")

    @property
    def sender_ip(self) -> str | None:
        """The IP named in the comment (``sender IP is 1.2.3.4``), for SPF."""
        for c in self.comments:
            if m := _SENDER_IP.search(c):
                return m.group(1)
        return None


class AuthResultsHeader(BaseModel):
    """One parsed header. ``authserv_id`` is ``None`` in Exchange Online's own form."""

    header: str = semantics.AUTH_RESULTS
    authserv_id: str | None = None
    authserv_version: str | None = None
    instance: int | None = None  # ARC ``i=``
    results: list[AuthResult] = Field(default_factory=list)
    defects: list[str] = Field(default_factory=list)

    def get(self, method: str) -> AuthResult | None:
        """The first result for ``method`` (a header may repeat a method; the first counts)."""
        m = method.lower()
        return next((r for r in self.results if r.method == m), None)

    @property
    def microsoft_form(self) -> bool:
        """Written the way Exchange Online writes it, or with a Microsoft authserv-id."""
        return is_microsoft_authserv(self.authserv_id)


def is_microsoft_authserv(authserv_id: str | None) -> bool:
    return semantics.has_tag(
        semantics.AUTH_RESULTS, authserv_id or "", "microsoft", field="authserv-id"
    )


def parse_authentication_results(
    value: str, header: str = semantics.AUTH_RESULTS
) -> AuthResultsHeader:
    """Parse one header value (folded or not). Never raises."""
    defects: list[str] = []
    tokens = tokenize(unfold(value), defects)
    out = AuthResultsHeader(header=header)
    segments = _segments(tokens)
    seg_i = 0
    # ARC-Authentication-Results starts with ``i=N;``.
    if segments and (first := _first_word(segments[0])) and (m := _INSTANCE.match(first)):
        words = [t for t in segments[0] if t.kind == "word"]
        if len(words) == 1:
            out.instance = int(m.group(1))
            seg_i = 1
    # Optional authserv-id [version]: a leading word with no "=".
    if seg_i < len(segments):
        seg = segments[seg_i]
        at = [k for k, t in enumerate(seg) if t.kind == "word"]
        if at and "=" not in seg[at[0]].text:
            out.authserv_id = seg[at[0]].text
            last = at[0]
            if len(at) > 1 and seg[at[1]].text.isdigit():
                out.authserv_version = seg[at[1]].text
                last = at[1]
            rest = seg[last + 1 :]
            rest_words = [t.text.lower() for t in rest if t.kind == "word"]
            if rest_words and rest_words != ["none"]:
                # "host spf=..." written without the ";" after the authserv-id.
                segments[seg_i] = rest
            else:
                seg_i += 1
    for seg in segments[seg_i:]:
        _parse_segment(seg, out.results, defects)
    out.defects = defects
    return out


def _segments(tokens: list[Token]) -> list[list[Token]]:
    segs: list[list[Token]] = [[]]
    for t in tokens:
        if t.kind == "sep":
            segs.append([])
        else:
            segs[-1].append(t)
    return [s for s in segs if s]


def _first_word(seg: list[Token]) -> str | None:
    return next((t.text for t in seg if t.kind == "word"), None)


def _parse_segment(seg: list[Token], results: list[AuthResult], defects: list[str]) -> None:
    """One ``;``-separated resinfo; a known method name inside it starts another result."""
    current: AuthResult | None = None
    for tok in seg:
        if tok.kind == "comment":
            if current is not None:
                current.comments.append(tok.text)
            continue
        text = tok.text
        if "=" not in text:
            if text.lower() != "none":
                defects.append(f"unparsed token {text[:40]!r}")
            continue
        key, _, val = text.partition("=")
        key_l = key.strip().lower()
        method, _, version = key_l.partition("/")
        if current is None and key_l in RESULT_KEYS and results:
            # "compauth=fail; reason=601": a stray ";" split the result.
            current = results[-1]
            defects.append(f"{current.method}: {key_l} after ';'")
        elif "." not in key_l and (
            current is None
            or (key_l not in RESULT_KEYS and (method in KNOWN_METHODS or method.startswith("x-")))
        ):
            current = AuthResult(
                method=method, result=val.strip().lower(), version=version or None
            )
            results.append(current)
            continue
        if current is None:
            defects.append(f"property {key_l!r} before any method")
            continue
        if key_l in current.properties:
            defects.append(f"{current.method}: repeated {key_l}")
            continue
        current.properties[key_l] = val.strip()


def parse_all(headers: list[tuple[str, str]], name: str) -> list[tuple[int, AuthResultsHeader]]:
    """Every header called ``name`` (case-insensitively) with its position in ``headers``."""
    low = name.lower()
    return [
        (i, parse_authentication_results(v, header=n.strip()))
        for i, (n, v) in enumerate(headers)
        if n.strip().lower() == low
    ]
