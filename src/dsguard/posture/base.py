"""The ``Check`` base: one small unit of posture logic with its metadata beside it.

A check reads a ``Snapshot`` (never a file, never the network) and returns findings, one per
resource. ``run`` is what callers use: it never raises. An unexpected exception becomes an
``ERROR`` finding naming the check, and every finding gets the framework mappings from
``dsguard.frameworks``, so checks never know which frameworks they satisfy.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from dsguard.evidence.snapshot import Snapshot
from dsguard.frameworks import mappings_for
from dsguard.posture.kinds import describe
from dsguard.posture.metadata import CheckMetadata, load_metadata
from dsguard.posture.powershell import render
from dsguard.posture.values import MalformedValue
from dsguard.results import CheckStatus, Finding, SeverityName


class Check:
    """Subclass per check; the metadata file is ``<module file>.yaml``.

    Subclasses implement ``execute``. Helpers ``finding``, ``not_collected`` and ``malformed``
    build findings with the check's id, title, severity and rendered remediation.
    """

    metadata: ClassVar[CheckMetadata]
    # The snapshot of the current ``run``, so ``not_collected`` can tell "no file" from
    # "file unreadable" without every check passing the snapshot along.
    _snapshot: Snapshot | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        module = sys.modules[cls.__module__]
        source = Path(str(module.__file__))
        cls.metadata = load_metadata(source.with_suffix(".yaml"))

    @property
    def id(self) -> str:
        return self.metadata.id

    def execute(self, snapshot: Snapshot) -> list[Finding]:
        raise NotImplementedError

    def run(self, snapshot: Snapshot) -> list[Finding]:
        """``execute`` made safe: errors become an ``ERROR`` finding; empty becomes N/A."""
        self._snapshot = snapshot
        try:
            findings = self.execute(snapshot)
        except MalformedValue as exc:
            findings = [
                self.malformed(self.id, exc, evidence={"property": exc.name, "value": exc.value})
            ]
        except Exception as exc:  # a check must never take the run down
            findings = [
                self.finding(
                    "ERROR",
                    self.id,
                    f"check {self.id} failed: {type(exc).__name__}: {exc}",
                    evidence={"exception": type(exc).__name__, "message": str(exc)},
                )
            ]
        finally:
            self._snapshot = None
        if not findings:
            findings = [self.finding("NOT_APPLICABLE", self.id, "nothing to evaluate")]
        frameworks = mappings_for(self.id)
        return [f.model_copy(update={"frameworks": frameworks}) for f in findings]

    # ------------------------------------------------------------------ helpers
    def finding(
        self,
        status: CheckStatus,
        resource: str,
        status_extended: str,
        *,
        evidence: Mapping[str, Any] | None = None,
        severity: SeverityName | None = None,
        values: Mapping[str, str | Iterable[str]] | None = None,
    ) -> Finding:
        """One finding; ``values`` fill the remediation template, quoted for PowerShell."""
        remediation = render(self.metadata.remediation, values) if status == "FAIL" else ""
        return Finding(
            check_id=self.id,
            status=status,
            severity=severity or self.metadata.severity,
            resource=resource,
            title=self.metadata.title,
            evidence=dict(evidence or {}),
            remediation=remediation,
            status_extended=status_extended,
        )

    def not_collected(self, kind: str, resource: str | None = None) -> Finding:
        """``MANUAL``: the input is not in the bundle (or its file could not be read)."""
        error = _ingest_error(self, kind)
        why = (
            f"{describe(kind)} could not be read ({error})"
            if error
            else f"{describe(kind)} is not in the bundle"
        )
        return self.finding(
            "MANUAL",
            resource or kind,
            f"not collected: {why}; evaluate by hand or collect it",
            evidence={"input": kind, "collected": False, "read_error": error},
        )

    def collected_empty(self, kind: str, what: str, resource: str | None = None) -> Finding:
        """``MANUAL``: the file was there but held no object where Exchange always has one."""
        return self.finding(
            "MANUAL",
            resource or kind,
            f"collected but empty: {describe(kind)} holds no {what}, which Exchange Online "
            "always returns; the export looks incomplete",
            evidence={"input": kind, "collected": True, "objects": 0},
        )

    def no_dns(self, resource: str) -> Finding:
        return self.finding(
            "MANUAL",
            resource,
            "not collected: the bundle has no dns.json, so DNS records cannot be evaluated",
            evidence={"input": "dns", "collected": False},
        )

    def malformed(
        self, resource: str, exc: Exception, *, evidence: Mapping[str, Any] | None = None
    ) -> Finding:
        """``MANUAL``: a property holds a value Exchange never returns; a human must look."""
        return self.finding(
            "MANUAL",
            resource,
            f"malformed input: {exc}",
            evidence={"malformed": True, **(evidence or {})},
        )


def _ingest_error(check: Check, kind: str) -> str | None:
    """Why the kind's file failed to load, when it was in the bundle but unreadable."""
    snapshot = check._snapshot
    if snapshot is None:
        return None
    try:
        row = snapshot.con.execute(
            """SELECT error FROM ingest_files
               WHERE source = 'exchange_config' AND error IS NOT NULL
                 AND regexp_extract(file, '([^/]+)\\.json$', 1) = ?
               ORDER BY ingested_at DESC LIMIT 1""",
            [kind],
        ).fetchone()
    except duckdb.Error:  # the bookkeeping table is optional for a hand-built snapshot
        return None
    return str(row[0]) if row else None
