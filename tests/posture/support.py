"""A bundle builder for posture tests: write files in the real export shapes, ingest them
through the real readers into an evidence store, and read them back as a ``Snapshot``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dsguard.evidence.snapshot import Snapshot
from dsguard.evidence.store import EvidenceStore
from dsguard.posture import CHECKS
from dsguard.results import Finding
from dsguard.sources.base import Reader
from dsguard.sources.dns import DnsReader
from dsguard.sources.exchange_config import ExchangeConfigReader

GRAPH_KINDS = {"service_principals"}


class Bundle:
    """An evidence bundle under construction in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._stores: list[EvidenceStore] = []
        self._written = 0

    def config(self, kind: str, value: Any) -> Path:
        """``exchange/<kind>.json`` (``graph/`` for Graph kinds) as ``ConvertTo-Json`` wrote
        it: pass a dict for one object, a list for several, ``None`` for ``null``, or a ``str``
        for the exact file text."""
        folder = "graph" if kind in GRAPH_KINDS else "exchange"
        path = self.root / folder / f"{kind}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = value if isinstance(value, str) else json.dumps(value, indent=2)
        # The store fingerprints files by content alone, so two kinds with the same text
        # ("[]", "null") would count as one file (see test_engine.py); trailing blank lines,
        # as Out-File leaves them, keep each file distinct.
        self._written += 1
        path.write_text(text + "\n" * self._written, encoding="utf-8")
        return path

    def dns(self, records: dict[str, Any]) -> Path:
        path = self.root / "dns.json"
        path.write_text(json.dumps(records, indent=2), encoding="utf-8")
        return path

    def snapshot(self) -> Snapshot:
        """Ingest every file written so far into a fresh store and open a snapshot on it."""
        files: list[tuple[Reader, Path]] = []
        reader = ExchangeConfigReader()
        for folder in ("exchange", "graph"):
            for path in sorted((self.root / folder).glob("*.json")):
                files.append((reader, path))
        if (self.root / "dns.json").exists():
            files.append((DnsReader(), self.root / "dns.json"))
        store = EvidenceStore(self.root / f"e{len(self._stores)}.duckdb")
        self._stores.append(store)
        store.ingest(files, root=self.root)
        return Snapshot(store.con)

    def run(self, check_id: str) -> list[Finding]:
        return CHECKS[check_id].run(self.snapshot())

    def close(self) -> None:
        for store in self._stores:
            store.close()


def one(findings: list[Finding], resource: str | None = None) -> Finding:
    """The single finding (for ``resource``); fails loudly otherwise."""
    selected = [f for f in findings if resource is None or f.resource == resource]
    assert len(selected) == 1, [(f.resource, f.status, f.status_extended) for f in findings]
    return selected[0]


def statuses(findings: list[Finding]) -> dict[str, str]:
    return {f.resource: f.status for f in findings}


# Accepted domains as Get-AcceptedDomain | ConvertTo-Json writes them.
CONTOSO = {
    "DomainName": "contoso.com",
    "DomainType": "Authoritative",
    "MatchSubDomains": False,
    "InitialDomain": False,
    "IsCoexistenceDomain": False,
    "SendingFromDomainDisabled": False,
    "Default": True,
    "Name": "contoso.com",
    "WhenChanged": "/Date(1772500512000)/",
}
MOERA = {**CONTOSO, "DomainName": "contoso.onmicrosoft.com", "Name": "contoso.onmicrosoft.com",
         "InitialDomain": True, "Default": False}
COEXISTENCE = {**CONTOSO, "DomainName": "contoso.mail.onmicrosoft.com",
               "Name": "contoso.mail.onmicrosoft.com", "IsCoexistenceDomain": True,
               "Default": False}
PARKED = {**CONTOSO, "DomainName": "contoso-parked.com", "Name": "contoso-parked.com",
          "SendingFromDomainDisabled": True, "Default": False}
