"""Message-level evaluation against a ground truth, side by side with reference detectors.

The references are the rules people use today, computed on the same evidence store:
Defender's "Spoof intra-org" flag alone; the public community KQL rule (P1 sender equals
recipient, SPF and DMARC fail, no connector, not junked or blocked); and the naive rule
(inbound, From domain accepted, no connector, SPF fail/softfail or DMARC fail).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from dsguard.scoring.score import SUSPICIOUS_AT
from dsguard.severity import Severity

# Each reference as a SQL predicate over ``messages`` (one row per message and recipient);
# a message is flagged when any of its rows matches.
REFERENCES: dict[str, tuple[str, str]] = {
    "defender_spoof_intra_org": (
        "Defender 'Spoof intra-org' flag",
        "list_contains(coalesce(detection_flags, []), 'Spoof intra-org')",
    ),
    "community_kql": (
        "Community KQL (P1 = recipient, SPF+DMARC fail, no connector, not junked)",
        """sender_mail_from = recipient AND auth_spf = 'fail' AND auth_dmarc = 'fail'
           AND connectors IS NULL
           AND coalesce(delivery_action, '') NOT IN ('Junked', 'Blocked')""",
    ),
    "naive": (
        "Naive (inbound, own From domain, no connector, SPF or DMARC fail)",
        """direction = 'Inbound' AND sender_from_domain IN (SELECT domain FROM t_domains)
           AND connectors IS NULL
           AND (auth_spf IN ('fail', 'softfail') OR auth_dmarc = 'fail')""",
    ),
}


@dataclass
class Score:
    name: str
    title: str
    tp: int
    fp: int
    fn: int
    kinds_found: dict[str, int] = field(default_factory=dict)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "detector": self.name,
            "title": self.title,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "kinds_found": self.kinds_found,
        }


@dataclass
class Truth:
    """Abuse messages by Network Message ID, each with its campaign kind."""

    kinds: dict[str, str]  # nmid → campaign kind

    @classmethod
    def load(cls, path: Path) -> Truth:
        doc = json.loads(path.read_text(encoding="utf-8"))
        kinds: dict[str, str] = {}
        for c in doc.get("campaigns", []):
            for nmid in c.get("network_message_ids", []):
                kinds[nmid] = c.get("kind", "unknown")
        return cls(kinds)

    @property
    def all_kinds(self) -> list[str]:
        return sorted(set(self.kinds.values()))


def _score(name: str, title: str, flagged: set[str], truth: Truth, population: set[str]) -> Score:
    positives = set(truth.kinds) & population
    flagged &= population
    kinds: dict[str, int] = dict.fromkeys(truth.all_kinds, 0)
    for nmid in flagged & positives:
        kinds[truth.kinds[nmid]] += 1
    return Score(
        name=name,
        title=title,
        tp=len(flagged & positives),
        fp=len(flagged - positives),
        fn=len(positives - flagged),
        kinds_found=kinds,
    )


def evaluate(
    con: duckdb.DuckDBPyConnection,
    alerts: list[Any],
    truth: Truth,
    *,
    at: Severity = SUSPICIOUS_AT,
) -> list[Score]:
    """dsguard (alerts at or above ``at``) and every reference, on the same messages."""
    population = {
        r[0] for r in con.execute("SELECT DISTINCT network_message_id FROM messages").fetchall()
    }
    mine: set[str] = set()
    for a in alerts:
        if Severity.parse(a.severity) >= at:
            mine.update(a.network_message_ids)
    scores = [_score("dsguard", f"dsguard (severity >= {at})", mine, truth, population)]
    for name, (title, predicate) in REFERENCES.items():
        rows = con.execute(
            f"SELECT DISTINCT network_message_id FROM messages WHERE {predicate}"
        ).fetchall()
        scores.append(_score(name, title, {r[0] for r in rows}, truth, population))
    return scores
