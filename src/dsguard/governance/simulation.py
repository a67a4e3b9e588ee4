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
from dsguard.signals.features import source_ip

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

# The replay reads only anonymous rows (``SIM`` below); a phase that rejected anything else
# would be miscounted, so say so at import rather than report wrong numbers.
for _rule in (REJECT_DIRECT_SEND_TODAY, *(p.rejects for p in PHASES)):
    if not _rule.startswith(f"{ANONYMOUS} AND "):
        raise ValueError(f"a simulation phase must reject only anonymous mail: {_rule!r}")


# Every phase rejects only anonymous traffic, so the replay reads the Direct Send rows once
# and keeps one verdict column per phase (``r<number>``) instead of rescanning ``features``.
SIM = "_sim"
# The phase whose predicate is the fully tightened transport rule of phases 1 to 3.
TRANSPORT_RULE = 3


def simulate(con: duckdb.DuckDBPyConnection) -> list[PhaseResult]:
    """Needs ``features``, ``alert_messages`` and the tenant tables (``t_exceptions``)."""
    today_rule = (0, REJECT_DIRECT_SEND_TODAY)
    verdicts = ",\n".join(
        f"coalesce({rejects}, false) AS r{n}"
        for n, rejects in (today_rule, *((p.number, p.rejects) for p in PHASES))
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {SIM} AS
        SELECT f.network_message_id, lower(f.sender_mail_from) AS p1,
               lower(f.sender_from) AS p2, {source_ip('f')} AS source, {verdicts}
        FROM features f WHERE {ANONYMOUS}"""
    )
    try:
        as_of = _as_of(con)
        numbers = [0, *(p.number for p in PHASES)]
        unstopped = _unstopped(con, numbers)
        results = {
            p.number: _replay(con, p.number, p.name, list(p.notes), unstopped, as_of)
            for p in PHASES
        }
        final = PHASES[-1].number
        last = results[final]
        if last.unstopped_suspicious:
            # The last phase's misses that the phase 1-3 transport rule would still stop.
            kept = sum(1 for _, hit in unstopped if not hit[final] and hit[TRANSPORT_RULE])
            last.notes.append(
                f"{len(last.unstopped_suspicious)} suspicious messages pass RejectDirectSend; "
                f"keeping the phase 1-3 transport rule in place would still stop {kept} of them."
            )
        today = _replay(
            con,
            0,
            "RejectDirectSend switched on today, without the earlier phases",
            ["What enabling RejectDirectSend now would reject, legitimate senders included."],
            unstopped,
            as_of,
        )
    finally:
        con.execute(f"DROP TABLE IF EXISTS {SIM}")
    return [today, *results.values()]


def _as_of(con: duckdb.DuckDBPyConnection) -> date | None:
    row = con.execute("SELECT max(ts)::DATE FROM messages").fetchone()
    return row[0] if row else None


def _unstopped(
    con: duckdb.DuckDBPyConnection, numbers: list[int]
) -> list[tuple[str, dict[int, bool]]]:
    """Each suspicious message (in order) with whether each phase rejects it: one join for
    all phases instead of one anti-join per phase."""
    flags = ", ".join(f"coalesce(bool_or(s.r{n}), false)" for n in numbers)
    rows = con.execute(
        f"""SELECT a.network_message_id, {flags}
            FROM (SELECT DISTINCT network_message_id FROM alert_messages WHERE rank >= ?) a
            LEFT JOIN {SIM} s ON s.network_message_id = a.network_message_id
            GROUP BY a.network_message_id ORDER BY 1""",
        [int(SUSPICIOUS_AT)],
    ).fetchall()
    return [(r[0], dict(zip(numbers, r[1:], strict=True))) for r in rows]


def _replay(
    con: duckdb.DuckDBPyConnection,
    number: int,
    name: str,
    notes: list[str],
    unstopped: list[tuple[str, dict[int, bool]]],
    as_of: date | None,
) -> PhaseResult:
    row = con.execute(
        f"""SELECT count(DISTINCT network_message_id),
                   list(DISTINCT p1 ORDER BY p1) FILTER (WHERE p1 IS NOT NULL),
                   list(DISTINCT p2 ORDER BY p2) FILTER (WHERE p2 IS NOT NULL),
                   list(DISTINCT source ORDER BY source) FILTER (WHERE source IS NOT NULL)
            FROM {SIM} WHERE r{number}"""
    ).fetchone()
    n, p1, p2, sources = row if row else (0, None, None, None)
    return PhaseResult(
        phase=number,
        name=name,
        rejected_messages=int(n or 0),
        rejected_p1_senders=list(p1 or []),
        rejected_p2_senders=list(p2 or []),
        rejected_sources=list(sources or []),
        unstopped_suspicious=[nmid for nmid, rejected in unstopped if not rejected[number]],
        notes=notes,
        as_of=as_of,
    )
