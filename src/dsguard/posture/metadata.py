"""Check metadata: what a check is, declared next to its code and validated on load.

Each check ``checks/ds_org_001.py`` has ``checks/ds_org_001.yaml`` beside it. The loader
refuses a file whose ``id`` does not match its name (``DS-ORG-001`` ↔ ``ds_org_001``), so an
id cannot silently be reused or drift from the code that produces it.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from dsguard.posture.kinds import INPUTS
from dsguard.results import SeverityName

ID_PATTERN = re.compile(r"^DS-(ORG|CON|ETR|FLT|SPF|DNS|APP|EXP)-\d{3}$")
SEVERITIES: tuple[str, ...] = get_args(SeverityName)


class Family(StrEnum):
    """Check families of ``posture-checks.md`` §3, plus ``EXP`` for the combined exposure."""

    ORG = "ORG"  # organisation and tenant settings
    CON = "CON"  # inbound connectors
    ETR = "ETR"  # mail-flow (transport) rules
    FLT = "FLT"  # connection filtering, allow lists, Tenant Allow/Block List
    SPF = "SPF"  # anti-spoofing policy (spoof intelligence, honour DMARC)
    DNS = "DNS"  # SPF, DKIM, DMARC and MX records
    APP = "APP"  # applications that can send as anyone
    EXP = "EXP"  # the Direct Send exposure, combined from the others


class CheckMetadata(BaseModel):
    """Everything descriptive about one check. Strings are for people; ``remediation`` is
    PowerShell text with ``{{placeholders}}`` for tenant values, never executed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str = Field(min_length=10)
    family: Family
    severity: SeverityName
    rationale: str = Field(min_length=20)
    risky_value: str = Field(min_length=1)
    recommended_value: str = Field(min_length=1)
    remediation: str = Field(min_length=1)
    references: list[HttpUrl] = Field(min_length=1)
    inputs: list[str] = Field(min_length=1)
    verify: list[str] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not ID_PATTERN.match(value):
            raise ValueError(f"id {value!r} is not DS-<FAMILY>-<nnn>")
        return value

    @field_validator("inputs")
    @classmethod
    def _known_inputs(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - INPUTS)
        if unknown:
            raise ValueError(f"unknown inputs {unknown}; see dsguard.posture.kinds")
        return value

    @model_validator(mode="after")
    def _family_matches_id(self) -> CheckMetadata:
        if self.id.split("-")[1] != self.family.value:
            raise ValueError(f"family {self.family.value} does not match id {self.id}")
        return self

    @property
    def module_name(self) -> str:
        """``DS-ORG-001`` → ``ds_org_001``: the file names the id must match."""
        return module_name(self.id)


def module_name(check_id: str) -> str:
    return check_id.lower().replace("-", "_")


class MetadataError(Exception):
    """A metadata file is missing, malformed or does not match its file name."""


def load_metadata(path: Path) -> CheckMetadata:
    """Read and validate one ``<id>.yaml``; the id must equal the file name."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MetadataError(f"{path.name}: cannot read check metadata: {exc}") from exc
    if not isinstance(data, dict):
        raise MetadataError(f"{path.name}: check metadata must be a mapping")
    try:
        meta = CheckMetadata.model_validate(data)
    except ValueError as exc:
        raise MetadataError(f"{path.name}: invalid check metadata: {exc}") from exc
    if meta.module_name != path.stem:
        raise MetadataError(f"{path.name}: id {meta.id} does not match the file name")
    return meta
