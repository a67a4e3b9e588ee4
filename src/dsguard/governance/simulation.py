"""Replay the observed traffic through each hardening phase before anyone enforces it.

Each phase is a SQL predicate over the ``features`` table saying which messages that phase's
control would reject. Phases 1 to 3 tighten one transport rule, so each contains the one
before; phase 4 is ``RejectDirectSend`` on its own, after the registered paths have moved to
connectors, so that what it does *not* stop (From-header-only spoofs) stays visible:

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
from datetime import date

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
    results = [_replay(con, p.number, p.name, p.rejects, list(p.notes)) for p in PHASES]
    rule = next(p for p in PHASES if p.number == 3)
    last = results[-1]
    if last.unstopped_suspicious:
        kept = _count_rejected(con, rule.rejects, last.unstopped_suspicious)
        last.notes.append(
            f"{len(last.unstopped_suspicious)} suspicious messages pass RejectDirectSend; keeping "
            f"the phase 1-3 transport rule in place would still stop {kept} of them."
        )
    today = _replay(
        con,
        0,
        "RejectDirectSend switched on today, without the earlier phases",
        REJECT_DIRECT_SEND_TODAY,
        ["What enabling RejectDirectSend now would reject, legitimate senders included."],
    )
    return [today, *results]


def _as_of(con: duckdb.DuckDBPyConnection) -> date | None:
    row = con.execute("SELECT max(ts)::DATE FROM messages").fetchone()
    return row[0] if row else None


def _count_rejected(con: duckdb.DuckDBPyConnection, predicate: str, nmids: list[str]) -> int:
    row = con.execute(
        f"""SELECT count(DISTINCT network_message_id) FROM features f
            WHERE list_contains(?, network_message_id) AND coalesce({predicate}, false)""",
        [nmids],
    ).fetchone()
    return int(row[0]) if row else 0


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
        as_of=_as_of(con),
    )
    con.execute("DROP TABLE _sim")
    return result
