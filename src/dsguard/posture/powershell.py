"""Remediation text: PowerShell for a human to review, never executed by dsguard.

Templates in check metadata name their tenant values as ``{{name}}``. Every value is rendered
as a single-quoted PowerShell literal, so a rule called ``Allow partner's mail`` cannot end the
string early: PowerShell ends single-quoted strings on ``'`` and on the typographic quotes
U+2018 to U+201B, and a quote inside such a string is written twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# Characters PowerShell's tokenizer accepts as a single quote.
_SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def ps_quote(value: str) -> str:
    """``O'Brien`` → ``'O''Brien'``: a literal PowerShell will not expand or end early."""
    text = _CONTROL.sub("", str(value))
    for quote in _SINGLE_QUOTES:
        text = text.replace(quote, quote * 2)
    return f"'{text}'"


def ps_list(values: Iterable[str]) -> str:
    """A PowerShell array argument: ``'a.com','b.com'``."""
    return ",".join(ps_quote(v) for v in values)


def placeholders(template: str) -> set[str]:
    """The ``{{name}}`` placeholders a template uses."""
    return set(_PLACEHOLDER.findall(template))


def render(template: str, values: Mapping[str, str | Iterable[str]] | None = None) -> str:
    """Fill ``{{name}}`` with quoted values; unknown names stay visible as ``<name>``."""
    values = values or {}

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            return f"<{key}>"
        value = values[key]
        if isinstance(value, str):
            return ps_quote(value)
        return ps_list(value)

    return _PLACEHOLDER.sub(sub, template).strip()
