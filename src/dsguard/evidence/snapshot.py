"""Read-only view of the configuration part of the store, for checks and classification.

Checks must tell "not collected" (no file: ``None``) from "collected, nothing there" (``[]``);
``config`` returns exactly that distinction, based on the ingest record of the kind's file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import duckdb


@dataclass
class Snapshot:
    con: duckdb.DuckDBPyConnection
    _cache: dict[str, list[dict[str, Any]] | None] = field(default_factory=dict)

    def collected(self) -> set[str]:
        """Config kinds whose file was read (with or without objects)."""
        rows = self.con.execute(
            """SELECT DISTINCT regexp_extract(file, '([^/]+)\\.json$', 1) FROM ingest_files
               WHERE source = 'exchange_config' AND error IS NULL"""
        ).fetchall()
        kinds = {r[0] for r in rows if r[0]}
        kinds |= {
            r[0] for r in self.con.execute("SELECT DISTINCT kind FROM config_objects").fetchall()
        }
        return kinds

    def config(self, kind: str) -> list[dict[str, Any]] | None:
        """The normalised objects of one kind, or ``None`` when it was not collected."""
        if kind not in self._cache:
            rows = self.con.execute(
                "SELECT data FROM config_objects WHERE kind = ? ORDER BY ordinal", [kind]
            ).fetchall()
            if rows:
                self._cache[kind] = [_json(r[0]) for r in rows]
            else:
                self._cache[kind] = [] if kind in self.collected() else None
        return self._cache[kind]

    def config_one(self, kind: str) -> dict[str, Any] | None:
        objs = self.config(kind)
        return objs[0] if objs else None

    def dns(self, name: str, rtype: str = "TXT") -> list[str] | None:
        """Records of one name and type; ``None`` when no DNS was captured at all."""
        if not self.dns_collected:
            return None
        rows = self.con.execute(
            "SELECT value FROM dns_records WHERE name = ? AND rtype = ? ORDER BY ordinal",
            [name.lower().rstrip("."), rtype.upper()],
        ).fetchall()
        return [r[0] for r in rows]

    @cached_property
    def dns_collected(self) -> bool:
        (n,) = self.con.execute(
            "SELECT count(*) FROM ingest_files WHERE source = 'dns' AND error IS NULL"
        ).fetchone() or (0,)
        return bool(n)

    @cached_property
    def accepted_domains(self) -> list[str]:
        """Accepted domains from configuration; empty when not collected."""
        out: list[str] = []
        for obj in self.config("accepted_domains") or []:
            name = obj.get("DomainName") or obj.get("Name") or obj.get("Identity")
            if isinstance(name, str) and name.strip():
                out.append(name.strip().lower())
        return sorted(set(out))

    def exceptions(self) -> list[dict[str, Any]]:
        cur = self.con.execute("SELECT * FROM exceptions ORDER BY id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
