"""Inputs several checks share, each returned with the finding to emit when it is missing."""

from __future__ import annotations

from dsguard.evidence.snapshot import Snapshot
from dsguard.posture import kinds
from dsguard.posture.base import Check
from dsguard.posture.model import AcceptedDomain, accepted_domains
from dsguard.results import Finding


def domains_or_finding(
    check: Check, snapshot: Snapshot
) -> tuple[list[AcceptedDomain], Finding | None]:
    """Accepted domains, or the ``MANUAL`` finding that explains why there are none."""
    objs = snapshot.config(kinds.ACCEPTED_DOMAINS)
    if objs is None:
        return [], check.not_collected(kinds.ACCEPTED_DOMAINS)
    domains = accepted_domains(objs)
    if not domains:
        return [], check.collected_empty(kinds.ACCEPTED_DOMAINS, "accepted domain")
    return domains, None
