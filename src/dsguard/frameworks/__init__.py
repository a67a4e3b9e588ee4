"""Framework mappings as data, written from the framework's side.

One YAML file per framework (``nist_csf_2.0.yaml``, ``cis_m365_7.0.yaml`` ...): each
requirement lists the dsguard check ids that provide evidence for it. Checks never name
frameworks; adding a framework is adding a file. Requirements with ``checks: []`` are kept on
purpose, so coverage gaps show. ``legacy_ids`` carry earlier ids of the same requirement
(ScubaGear renumbered its EXO baseline in April 2026) and findings carry both.
``uncertain: true`` marks a mapping that is dsguard's judgement rather than the framework's
own words; ``notes`` says why.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

FRAMEWORKS_DIR = Path(__file__).resolve().parent
SCHEMA_VERSION = 1


class Requirement(BaseModel):
    """One requirement and the checks that evidence it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    checks: list[str] = Field(default_factory=list)
    legacy_ids: list[str] = Field(default_factory=list)
    uncertain: bool = False
    notes: str = ""


class Framework(BaseModel):
    """A versioned framework file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int
    key: str = Field(pattern=r"^[a-z0-9_.]+$")
    name: str
    version: str
    source: list[HttpUrl | str] = Field(min_length=1)
    notes: str = ""
    requirements: list[Requirement] = Field(min_length=1)


class FrameworkError(Exception):
    """A framework file is unreadable or invalid."""


def load_framework(path: Path) -> Framework:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        framework = Framework.model_validate(data)
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise FrameworkError(f"{path.name}: {exc}") from exc
    if framework.schema_version != SCHEMA_VERSION:
        raise FrameworkError(f"{path.name}: schema_version {framework.schema_version} unknown")
    return framework


def framework_files(directory: Path = FRAMEWORKS_DIR) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


@cache
def load_frameworks(directory: Path = FRAMEWORKS_DIR) -> dict[str, Framework]:
    """Every framework file in ``directory``, by key."""
    out: dict[str, Framework] = {}
    for path in framework_files(directory):
        framework = load_framework(path)
        if framework.key in out:
            raise FrameworkError(f"{path.name}: framework key {framework.key} used twice")
        out[framework.key] = framework
    return out


@cache
def _index(directory: Path = FRAMEWORKS_DIR) -> dict[str, dict[str, list[str]]]:
    index: dict[str, dict[str, list[str]]] = {}
    for key, framework in load_frameworks(directory).items():
        for req in framework.requirements:
            for check_id in req.checks:
                ids = index.setdefault(check_id, {}).setdefault(key, [])
                for rid in [req.id, *req.legacy_ids]:
                    if rid not in ids:
                        ids.append(rid)
    return index


def mappings_for(check_id: str, directory: Path = FRAMEWORKS_DIR) -> dict[str, list[str]]:
    """``{framework key: [requirement ids, legacy ids included]}`` for one check."""
    return {k: list(v) for k, v in _index(directory).get(check_id, {}).items()}


__all__ = [
    "FRAMEWORKS_DIR",
    "Framework",
    "FrameworkError",
    "Requirement",
    "framework_files",
    "load_framework",
    "load_frameworks",
    "mappings_for",
]
