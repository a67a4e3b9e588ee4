"""Path classification from a raw message's Exchange Online stamps.

The meaning of every stamp comes from the one table in ``dsguard.headers.semantics`` (by its
tags), so when a lab result changes what a value means, this code follows. The EmailEvents
counterpart lives in ``dsguard.signals.features`` (``path`` column); both produce the same
vocabulary (``dsguard.results.PathKind``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dsguard.headers import semantics as sem
from dsguard.headers.evidence import HeaderEvidence


@dataclass
class PathDecision:
    path: str
    internal_looking: bool
    p1_domain: str | None
    p2_domain: str | None
    because: list[str] = field(default_factory=list)  # the stamps the decision rests on


def _domain(address: str | None) -> str | None:
    if not address or "@" not in address:
        return address.strip().lower() if address and "." in address else None
    return address.rsplit("@", 1)[1].strip().strip(">").lower() or None


def _tagged(header: str, value: str | None, tag: str) -> bool:
    return value is not None and sem.has_tag(header, value, tag)


def classify_headers(
    ev: HeaderEvidence, domains: set[str], p1: str | None, p2: str | None
) -> PathDecision:
    """How the message entered the tenant, and whether it looks internal."""
    p1d = _domain(p1) or (_domain(ev.auth.smtp_mailfrom) if ev.auth else None)
    p2d = _domain(p2) or (_domain(ev.auth.header_from) if ev.auth else None)
    internal = bool({p1d, p2d} & domains)
    d = PathDecision("unknown", internal, p1d, p2d)
    if not ev.received_by_exo:
        d.because.append("no trusted Exchange Online entry hop: its stamps are not evidence")
        return d
    fe, org, ct = ev.cross_tenant.from_entity_header, ev.org.auth_as, ev.cross_tenant.auth_as
    mech = ev.org.auth_mechanism
    anonymous = False
    if _tagged(sem.CT_FROM_ENTITY, fe, "onprem"):
        d.path = "onprem_connector"
        d.because.append(f"{sem.CT_FROM_ENTITY}: {fe}")
    elif _tagged(sem.ORG_AUTH_AS, org, "partner"):
        d.path = "partner_connector"
        d.because.append(f"{sem.ORG_AUTH_AS}: {org}")
    elif _tagged(sem.ORG_AUTH_AS, org, "authenticated") and _tagged(
        sem.ORG_AUTH_MECHANISM, mech, "onprem"
    ):
        d.path = "onprem_connector"
        d.because += [f"{sem.ORG_AUTH_AS}: {org}", f"{sem.ORG_AUTH_MECHANISM}: {mech}"]
    elif _tagged(sem.CT_FROM_ENTITY, fe, "authenticated") or _tagged(
        sem.ORG_AUTH_AS, org, "authenticated"
    ):
        d.path = "authenticated"
        d.because.append(f"{sem.CT_FROM_ENTITY}: {fe}" if fe else f"{sem.ORG_AUTH_AS}: {org}")
    elif _tagged(sem.CT_FROM_ENTITY, fe, "anonymous") or _tagged(sem.ORG_AUTH_AS, org, "anonymous"):
        anonymous = True
        d.because.append(f"{sem.ORG_AUTH_AS}: {org}" if org else f"{sem.CT_FROM_ENTITY}: {fe}")
    elif _tagged(sem.CT_AUTH_AS, ct, "anonymous") or _tagged(sem.FFAR, ev.antispam.dir, "incoming"):
        # Weaker: the cross-tenant AuthAs is also Anonymous for hybrid relays, and DIR:INB
        # only says "inbound"; used when nothing stronger was stamped.
        anonymous = True
        d.because.append(f"{sem.CT_AUTH_AS}: {ct}" if ct else f"{sem.FFAR} DIR:{ev.antispam.dir}")
    if anonymous:
        d.path = "direct_send" if internal else "anonymous_external"
    if ev.received.entry is not None:
        d.because.append(f"entered Exchange Online at {ev.received.entry.by_host or '?'}")
    return d
