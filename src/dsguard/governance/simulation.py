"""Replay the observed traffic through each hardening phase before anyone enforces it.

The phases are cumulative; each is a SQL predicate over the ``features`` table saying which
messages that phase would reject:

1. *Constrain who*: only registered senders may use the anonymous path.
2. *Constrain where*: only registered senders from their registered sources.
3. *Identity proof*: registered paths move to certificate- or IP-bound partner connectors (or
   authenticated submission); an exception with no source ranges cannot be bound to a
   connector, so its traffic is rejected too.
4. ``RejectDirectSend``: Microsoft's documented semantics: reject anonymous mail (no
   inbound connector matched) whose **envelope (P1)** domain is accepted. The From header is
   not looked at, so a From-header-only spoof (P1 external, P2 ours) passes, and so does a
   SaaS sender whose envelope domain is its own. Those still need DMARC enforcement.

"Suspicious" means a message in an alert at or above ``SUSPICIOUS_AT``.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from dsguard.results import PhaseResult
from dsguard.scoring.score import SUSPICIOUS_AT

# Anonymous internal-looking mail: the only traffic the phases act on.
ANONYMOUS = "path = 'direct_send'"
REGISTERED_SENDER = """EXISTS (SELECT 1 FROM t_exceptions e
    WHERE (e.expires IS NULL OR e.expires >= f.day)
      AND (e.sender IN (lower(f.sender_mail_from), lower(f.sender_from)) OR e.sender = '*'
           OR (e.sender LIKE '*@%' AND substr(e.sender, 3) IN
               (f.sender_mail_from_domain, f.sender_from_domain))))"""


@dataclass(frozen=True)
class Phase:
    number: int
    name: str
    rejects: str  # SQL predicate over features f
    notes: tuple[str, ...] = ()


PHASES: tuple[Phase, ...] = (
    Phase(
        1,
        "Constrain who: only registered senders may use the anonymous path",
        f"{ANONYMOUS} AND NOT {REGISTERED_SENDER}",
        ("Enforced with a transport rule on anonymous own-domain mail (see plan.md).",),
    ),
    Phase(
        2,
        "Constrain where: only registered senders from their registered sources",
        f"{ANONYMOUS} AND NOT coalesce(f.covered_in_date, false)",
    ),
    Phase(
        3,
        "Identity proof: registered paths move to IP- or certificate-bound connectors",
        f"""{ANONYMOUS} AND NOT (coalesce(f.covered_in_date, false)
            AND len(f.exception_source_ids) > 0)""",
        (
            "Traffic covered by an in-date exception with source ranges is assumed moved to a "
            "partner connector bound to those ranges; it is no longer anonymous.",
        ),
    ),
    Phase(
        4,
        "RejectDirectSend on",
        f"""{ANONYMOUS} AND f.p1_internal AND NOT (coalesce(f.covered_in_date, false)
            AND len(f.exception_source_ids) > 0)""",
        (
            "RejectDirectSend checks only the envelope (P1) domain: anonymous mail whose P1 "
            "domain is external passes even when the From header (P2) is ours. Keep DMARC "
            "enforcement (p=reject) for those.",
            "Rejected mail is refused at SMTP with 550 5.7.68 and never reaches message trace.",
        ),
    ),
)

# The same switch flipped today, with no preparation: what would break.
REJECT_DIRECT_SEND_TODAY = f"{ANONYMOUS} AND f.p1_internal"


def simulate(con: duckdb.DuckDBPyConnection) -> list[PhaseResult]:
    """Needs ``features``, ``alert_messages`` and the tenant tables (``t_exceptions``)."""
    results: list[PhaseResult] = []
    cumulative = "false"
    for phase in PHASES:
        cumulative = f"({cumulative}) OR ({phase.rejects})"
        results.append(_replay(con, phase.number, phase.name, cumulative, list(phase.notes)))
    today = _replay(
        con,
        0,
        "RejectDirectSend switched on today, without the earlier phases",
        REJECT_DIRECT_SEND_TODAY,
        ["What enabling RejectDirectSend now would reject, legitimate senders included."],
    )
    return [today, *results]


def _replay(
    con: duckdb.DuckDBPyConnection, number: int, name: str, predicate: str, notes: list[str]
) -> PhaseResult:
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _sim AS
        SELECT f.network_message_id, f.sender_mail_from, f.sender_from, f.sender_ipv4,
               coalesce({predicate}, false) AS rejected
        FROM features f"""
    )
    (n,) = con.execute(
        "SELECT count(DISTINCT network_message_id) FROM _sim WHERE rejected"
    ).fetchone() or (0,)

    def distinct(col: str) -> list[str]:
        rows = con.execute(
            f"SELECT DISTINCT {col} FROM _sim WHERE rejected AND {col} IS NOT NULL ORDER BY 1"
        ).fetchall()
        return [r[0] for r in rows]

    unstopped = con.execute(
        """SELECT DISTINCT a.network_message_id FROM alert_messages a
           WHERE a.rank >= ? AND NOT EXISTS (
               SELECT 1 FROM _sim s WHERE s.network_message_id = a.network_message_id
               AND s.rejected)
           ORDER BY 1""",
        [int(SUSPICIOUS_AT)],
    ).fetchall()
    result = PhaseResult(
        phase=number,
        name=name,
        rejected_messages=int(n),
        rejected_p1_senders=distinct("lower(sender_mail_from)"),
        rejected_p2_senders=distinct("lower(sender_from)"),
        rejected_sources=distinct("sender_ipv4"),
        unstopped_suspicious=[r[0] for r in unstopped],
        notes=notes,
    )
    con.execute("DROP TABLE _sim")
    return result
