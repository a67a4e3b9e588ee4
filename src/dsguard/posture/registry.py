"""Check discovery and the run over a snapshot.

Checks are found by walking ``dsguard.posture.checks``: every public module ``ds_xxx_nnn``
must define exactly one ``Check`` subclass whose metadata id matches the module name.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import checks as checks_package
from dsguard.posture.base import Check
from dsguard.results import Finding


class CheckLoadError(Exception):
    """A check module breaks the one-module-one-check contract."""


def _check_class(module: ModuleType) -> type[Check]:
    found = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Check)
        and obj is not Check
        and obj.__module__ == module.__name__
    ]
    if len(found) != 1:
        raise CheckLoadError(f"{module.__name__} defines {len(found)} checks, expected 1")
    cls = found[0]
    stem = module.__name__.rsplit(".", 1)[-1]
    if cls.metadata.module_name != stem:
        raise CheckLoadError(f"{module.__name__}: metadata id {cls.metadata.id} != file name")
    return cls


def discover() -> dict[str, Check]:
    """Every check, by id, in id order."""
    out: dict[str, Check] = {}
    for info in pkgutil.iter_modules(checks_package.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{checks_package.__name__}.{info.name}")
        check = _check_class(module)()
        if check.id in out:
            raise CheckLoadError(f"check id {check.id} defined twice")
        out[check.id] = check
    return dict(sorted(out.items()))


CHECKS: dict[str, Check] = discover()


def run_checks(snapshot: Snapshot, only: list[str] | None = None) -> list[Finding]:
    """Run every check (or the ids in ``only``) and return their findings; never raises."""
    selected = [CHECKS[c] for c in only] if only is not None else list(CHECKS.values())
    findings: list[Finding] = []
    for check in selected:
        findings.extend(check.run(snapshot))
    return findings
