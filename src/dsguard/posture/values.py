"""Tolerant readers for ``ConvertTo-Json`` values.

The reader normalises the common PowerShell quirks, but a hand-made bundle or an AdminApi
export still varies: keys in another case, booleans as ``"True"``, a multi-valued property as
one string, connector domains as ``smtp:domain;1``. These helpers absorb that once, so checks
state their logic rather than their parsing. A value that cannot mean anything raises
``MalformedValue``, which checks turn into ``MANUAL`` with the value as evidence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


class MalformedValue(ValueError):
    """A property holds a value of a type it cannot have."""

    def __init__(self, name: str, value: Any) -> None:
        super().__init__(f"{name} has an unrecognised value {value!r}")
        self.name = name
        self.value = value


_MISSING = object()


def get(obj: Mapping[str, Any], *names: str, default: Any = None) -> Any:
    """The first of ``names`` present in ``obj``, matched case-insensitively."""
    for name in names:
        if name in obj:
            return obj[name]
    lowered = {str(k).lower(): v for k, v in obj.items()}
    for name in names:
        value = lowered.get(name.lower(), _MISSING)
        if value is not _MISSING:
            return value
    return default


def has(obj: Mapping[str, Any], name: str) -> bool:
    """Whether the property is present at all (``null`` counts as present)."""
    return name in obj or name.lower() in {str(k).lower() for k in obj}


def as_bool(value: Any, name: str = "value") -> bool | None:
    """``True``/``False``; ``None`` for ``null``; PowerShell's ``"True"`` strings accepted."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower().lstrip("$")
        if text in {"true", "1"}:
            return True
        if text in {"false", "0"}:
            return False
        if text in {"", "null"}:
            return None
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise MalformedValue(name, value)


def as_int(value: Any, name: str = "value") -> int | None:
    """An integer, from a number or a numeric string; ``None`` for ``null``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise MalformedValue(name, value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise MalformedValue(name, value)


def as_list(value: Any, name: str = "value") -> list[Any]:
    """A multi-valued property as a list: ``null`` → ``[]``, one value → ``[value]``."""
    if value is None:
        return []
    if isinstance(value, list):
        return [v for v in value if v is not None]
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, Mapping):
        inner = get(value, "value", "Values", default=_MISSING)
        if isinstance(inner, list):
            return [v for v in inner if v is not None]
        raise MalformedValue(name, value)
    if isinstance(value, int | float):
        return [value]
    raise MalformedValue(name, value)


def as_str(value: Any) -> str | None:
    """A trimmed string or ``None`` for ``null`` / empty."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def str_list(value: Any, name: str = "value") -> list[str]:
    """A multi-valued string property, trimmed, empty entries dropped."""
    return [s for s in (as_str(v) for v in as_list(value, name)) if s]


_SMTP_PREFIX = re.compile(r"^\s*smtp:", re.IGNORECASE)
_PRIORITY_SUFFIX = re.compile(r";\d*\s*$")


def connector_domain(value: str) -> str:
    """``smtp:contoso.com;1`` → ``contoso.com``; ``smtp:*;1`` → ``*``. Idempotent."""
    text = _SMTP_PREFIX.sub("", value)
    text = _PRIORITY_SUFFIX.sub("", text)
    return text.strip().lower().rstrip(".")


def name_of(obj: Mapping[str, Any], fallback: str) -> str:
    """An object's human name (``Name``, ``Identity``, ``DisplayName``) for ``resource``."""
    for key in ("Name", "Identity", "DisplayName", "displayName", "Id", "id"):
        text = as_str(get(obj, key))
        if text:
            return text
    return fallback


def domain_matches(domain: str, pattern: str) -> bool:
    """Whether ``domain`` equals ``pattern`` or falls under a ``*.`` wildcard or ``*``."""
    domain = domain.lower().rstrip(".")
    pattern = pattern.lower().rstrip(".")
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        base = pattern[2:]
        return domain == base or domain.endswith("." + base)
    return domain == pattern


def is_subdomain(domain: str, parent: str) -> bool:
    """``a.b.contoso.com`` is a subdomain of ``contoso.com`` (not equal to it)."""
    domain = domain.lower().rstrip(".")
    parent = parent.lower().rstrip(".")
    return domain.endswith("." + parent)
