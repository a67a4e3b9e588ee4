"""Transparent scoring: the score of a message is the sum of the weights of the rules that
fired on it, and every alert lists each of those rules with its evidence.

Only internal-looking messages that did not come from an authenticated mailbox are scored:
that is the population Direct Send abuse hides in.
"""

from __future__ import annotations

from dsguard.severity import Severity
from dsguard.signals.rules import Rule, catalogue, to_sql

# Score → severity. A message counts as "flagged" for evaluation at MEDIUM and above.
THRESHOLDS: tuple[tuple[float, Severity], ...] = (
    (90, Severity.CRITICAL),
    (60, Severity.HIGH),
    (35, Severity.MEDIUM),
    (20, Severity.LOW),
)
ALERT_MIN = Severity.LOW
# What counts as suspected abuse everywhere downstream (evaluation, simulation, governance):
# a message in an alert at or above this severity.
SUSPICIOUS_AT = Severity.MEDIUM

SCORED_POPULATION = "internal_looking AND path <> 'authenticated'"


def severity_of(score: float) -> Severity:
    for floor, sev in THRESHOLDS:
        if score >= floor:
            return sev
    return Severity.INFORMATIONAL


def min_score(severity: Severity) -> float:
    return min(floor for floor, sev in THRESHOLDS if sev >= severity)


def hit_column(rule: Rule) -> str:
    return "hit_" + rule.id.replace("-", "_").lower()


def score_sql(source: str, columns: set[str], rules: tuple[Rule, ...] | None = None) -> str:
    """SELECT over ``source`` adding one boolean column per rule and the total ``score``."""
    rules = rules or catalogue()
    hits = [(r, to_sql(r.when, columns)) for r in rules]
    hit_cols = ",\n    ".join(f'{sql} AS "{hit_column(r)}"' for r, sql in hits)
    total = " + ".join(f"(CASE WHEN {sql} THEN {r.weight!r} ELSE 0 END)" for r, sql in hits)
    return f"""SELECT s.*,
    {hit_cols},
    CAST({total} AS DOUBLE) AS score
FROM {source} s
WHERE {SCORED_POPULATION}"""
