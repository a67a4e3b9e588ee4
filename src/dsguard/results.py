"""The output models other tools rely on (``docs/bundle.md``): one shape for the JSON files,
the HTML report and every export. ``dsguard schema`` publishes their JSON Schema."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SeverityName = Literal["informational", "low", "medium", "high", "critical"]
CheckStatus = Literal["PASS", "FAIL", "MANUAL", "ERROR", "NOT_APPLICABLE"]
PathKind = Literal[
    "direct_send",
    "anonymous_external",
    "partner_connector",
    "onprem_connector",
    "authenticated",
    "unknown",
]


class Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Reason(Output):
    """One signal that contributed to an alert, with the evidence it rests on."""

    signal_id: str
    title: str
    family: str
    weight: float
    evidence: dict[str, Any] = Field(default_factory=dict)


class Alert(Output):
    """Suspected abuse; one alert may group the messages of one campaign."""

    id: str
    severity: SeverityName
    title: str
    score: float
    network_message_ids: list[str]
    sender: str | None
    source_ips: list[str]
    path: PathKind
    reasons: list[Reason]
    first_seen: datetime
    last_seen: datetime
    recipients: list[str] = Field(default_factory=list)
    subjects: list[str] = Field(default_factory=list)
    message_count: int = 0


class Finding(Output):
    """A posture or governance result for one resource."""

    check_id: str
    status: CheckStatus
    severity: SeverityName
    resource: str
    title: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    remediation: str = ""
    frameworks: dict[str, list[str]] = Field(default_factory=dict)
    status_extended: str = ""


class PathRecord(Output):
    """One mail path that carried internal-looking mail."""

    path: PathKind
    senders: list[str]
    sources: list[str]
    messages: int
    first_seen: datetime
    last_seen: datetime
    authentication: dict[str, int] = Field(default_factory=dict)
    covering_exception: str | None = None
    connector: str | None = None


class PhaseResult(Output):
    """What one hardening phase would have rejected, replayed on observed traffic."""

    phase: int
    name: str
    rejected_messages: int
    rejected_p1_senders: list[str]
    rejected_p2_senders: list[str]
    rejected_sources: list[str]
    unstopped_suspicious: list[str]
    notes: list[str] = Field(default_factory=list)
    as_of: date | None = None  # the last observed day the replay covers


OUTPUT_MODELS: tuple[type[Output], ...] = (Alert, Finding, PathRecord, PhaseResult)
