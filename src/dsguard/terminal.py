"""Terminal output that attacker-controlled text cannot hijack.

Subjects, display names and even file names can carry ANSI/OSC escape sequences or Rich
markup. Everything shown goes through ``safe`` and is rendered as ``Text`` (never markup).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

# CSI/OSC/other escape sequences first, then any remaining C0/C1 control character.
_ESCAPES = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def safe(value: object, limit: int | None = 200) -> str:
    """Printable form: escape sequences removed, controls replaced, long values cut."""
    text = _CONTROLS.sub("\ufffd", _ESCAPES.sub("", str(value)))
    text = text.replace("\n", " ").replace("\t", " ")
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def table(title: str, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold")
    for h in headers:
        t.add_column(h, justify="right" if h in _NUMERIC else "left")
    for row in rows:
        t.add_row(*(Text(safe(c)) for c in row))
    return t


_NUMERIC = frozenset({"read", "loaded", "duplicates", "rejected", "rows", "count", "messages"})


def console(*, stderr: bool = False, quiet: bool = False) -> Console:
    return Console(stderr=stderr, quiet=quiet, highlight=False, soft_wrap=stderr)
