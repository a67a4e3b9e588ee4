"""Signal rules as data, compiled per engine (the pySigma idea, scaled to our needs).

A rule is declared in ``catalogue/*.yaml`` with a stable id, a title, a family, a weight (its
contribution to the score: positive for suspicion, negative for trust) and a condition over
the feature columns of ``features.py``. The condition language is small on purpose:

* ``{field: value}`` equality, ``{field: [a, b]}`` membership, ``{field: null}`` IS NULL;
* ``{field: {op: value}}`` with op in ``eq ne in not_in gt ge lt le contains matches``;
* ``{all: [...]}``, ``{any: [...]}``, ``{not: ...}``; several keys in one mapping are ANDed.

Ids are a published contract: once released an id keeps its meaning; retire, never reuse.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

Family = Literal[
    "path",
    "authentication",
    "identity",
    "source",
    "cadence",
    "recipients",
    "headers",
    "verdict",
    "content",
]
RULE_ID = re.compile(r"^DSG-[A-Z]{2,5}-\d{3}$")
_OPS = {"eq", "ne", "in", "not_in", "gt", "ge", "lt", "le", "contains", "matches"}
_SQL_OPS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


class RuleError(ValueError):
    """A rule file is malformed; names the rule and the problem."""


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str
    family: Family
    weight: float
    description: str
    when: dict[str, Any]
    evidence: list[str] = Field(default_factory=list)
    status: Literal["stable", "experimental", "deprecated"] = "stable"
    references: list[str] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not RULE_ID.match(v):
            raise ValueError(f"rule id {v!r} must look like DSG-AUTH-001")
        return v

    def fields(self) -> set[str]:
        return _fields(self.when) | set(self.evidence)


def _fields(cond: Any) -> set[str]:
    out: set[str] = set()
    if isinstance(cond, dict):
        for k, v in cond.items():
            if k in ("all", "any"):
                for c in v:
                    out |= _fields(c)
            elif k == "not":
                out |= _fields(v)
            else:
                out.add(k)
    return out


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise RuleError(f"unsupported literal {value!r}")


def to_sql(cond: Any, columns: set[str] | None = None) -> str:
    """Compile a condition to a SQL boolean (NULL-safe: unknown counts as false)."""
    if not isinstance(cond, dict) or not cond:
        raise RuleError(f"a condition must be a non-empty mapping, got {cond!r}")
    parts: list[str] = []
    for key, value in cond.items():
        if key == "all":
            parts.append("(" + " AND ".join(to_sql(c, columns) for c in value) + ")")
        elif key == "any":
            parts.append("(" + " OR ".join(to_sql(c, columns) for c in value) + ")")
        elif key == "not":
            parts.append(f"(NOT {to_sql(value, columns)})")
        else:
            if columns is not None and key not in columns:
                raise RuleError(f"unknown feature {key!r}")
            parts.append(_predicate(key, value))
    return "coalesce(" + " AND ".join(parts) + ", false)"


def _predicate(col: str, value: Any) -> str:
    c = f'"{col}"'
    if value is None:
        return f"({c} IS NULL)"
    if isinstance(value, list):
        return f"({c} IN ({', '.join(_literal(v) for v in value)}))"
    if not isinstance(value, dict):
        return f"({c} = {_literal(value)})"
    out = []
    for op, arg in value.items():
        if op not in _OPS:
            raise RuleError(f"unknown operator {op!r} on {col!r}")
        if op in _SQL_OPS:
            out.append(f"({c} {_SQL_OPS[op]} {_literal(arg)})")
        elif op == "in":
            out.append(f"({c} IN ({', '.join(_literal(v) for v in arg)}))")
        elif op == "not_in":
            out.append(f"({c} NOT IN ({', '.join(_literal(v) for v in arg)}))")
        elif op == "contains":
            out.append(f"list_contains({c}, {_literal(arg)})")
        elif op == "matches":
            out.append(f"regexp_matches({c}, {_literal(arg)})")
    return "(" + " AND ".join(out) + ")"


@cache
def catalogue() -> tuple[Rule, ...]:
    """Every declared rule, in file then declaration order; ids checked unique."""
    rules: list[Rule] = []
    seen: set[str] = set()
    folder = resources.files("dsguard.signals") / "catalogue"
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".yaml"):
            continue
        doc = yaml.safe_load(entry.read_text(encoding="utf-8")) or {}
        for raw in doc.get("rules", []):
            try:
                rule = Rule.model_validate(raw)
            except ValueError as exc:
                raise RuleError(f"{entry.name}: rule {raw.get('id', '?')}: {exc}") from exc
            if rule.id in seen:
                raise RuleError(f"{entry.name}: duplicate rule id {rule.id}")
            seen.add(rule.id)
            rules.append(rule)
    return tuple(rules)


def rule(rule_id: str) -> Rule:
    for r in catalogue():
        if r.id == rule_id:
            return r
    raise KeyError(rule_id)
