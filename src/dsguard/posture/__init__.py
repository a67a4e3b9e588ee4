"""Posture checks over a bundle's configuration and DNS (``posture-checks.md``).

Public API:

- ``run_checks(snapshot)``: every check's findings over a ``Snapshot``; never raises.
- ``CHECKS``: the registry, check id → ``Check`` instance, discovered from ``checks/``.
- ``evaluate_exposure(snapshot)``: the Direct Send exposure per accepted domain, as the
  combination RejectDirectSend × DMARC × anti-spoof × bypass rules × connectors.
- ``Check`` / ``CheckMetadata``: the unit a check is, and its validated metadata.

Checks read configuration only through ``Snapshot`` (kinds in ``dsguard.posture.kinds``) and
never touch the network; SPF and DMARC are parsed in ``dsguard.posture.mailauth``.
"""

from dsguard.posture.base import Check
from dsguard.posture.exposure import DomainExposure, ExposureReport, evaluate_exposure
from dsguard.posture.metadata import CheckMetadata, Family
from dsguard.posture.registry import CHECKS, run_checks

__all__ = [
    "CHECKS",
    "Check",
    "CheckMetadata",
    "DomainExposure",
    "ExposureReport",
    "Family",
    "evaluate_exposure",
    "run_checks",
]
