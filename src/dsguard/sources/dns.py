"""``dns.json``: the DNS records captured for the accepted domains.

Two shapes are accepted: the documented ``{"name": ["txt", ...]}`` (TXT records), and
``{"name": {"TXT": [...], "MX": [...], "CNAME": [...]}}`` for collectors that keep the type.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from dsguard.evidence.model import DnsRecord
from dsguard.sources.base import Reader, SourceError, StageResult, stage_records, to_json_text

RTYPES = frozenset({"TXT", "MX", "CNAME", "A", "AAAA", "NS"})


class DnsReader(Reader):
    source: ClassVar[str] = "dns"
    model = DnsRecord
    patterns: ClassVar[tuple[str, ...]] = ("dns.json",)
    mode: ClassVar[str] = "replace"

    def replace_scope(self, path: Path) -> tuple[str, list[Any]]:
        return "true", []

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, table: str) -> StageResult:
        try:
            doc = json.loads(path.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SourceError(f"{path.name}: not valid JSON ({exc})") from exc
        if not isinstance(doc, dict):
            raise SourceError(f"{path.name}: expected an object of DNS name -> records")
        stage_records(con, table, DnsRecord, _rows(doc, path.name))
        return StageResult()


def _rows(doc: dict[str, Any], file: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    n = 0
    for name, entry in doc.items():
        by_type: dict[str, Any] = entry if isinstance(entry, dict) else {"TXT": entry}
        for rtype, values in by_type.items():
            values = [] if values is None else values
            values = values if isinstance(values, list) else [values]
            for i, value in enumerate(values):
                n += 1
                raw = to_json_text({name: {rtype: value}})
                reject = None
                rt = str(rtype).upper()
                if rt not in RTYPES:
                    reject = f"unknown record type {rtype!r} for {name}"
                elif not isinstance(value, str):
                    reject = f"{rt} record for {name} is not a string"
                rows.append(
                    {
                        "name": str(name).strip().lower().rstrip("."),
                        "rtype": rt,
                        "ordinal": i,
                        "value": value if isinstance(value, str) else None,
                        "source_file": file,
                        "_row": n,
                        "_raw": raw,
                        "_reject": reject,
                    }
                )
    return rows
