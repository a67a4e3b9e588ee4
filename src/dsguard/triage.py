"""``dsguard triage``: one message file at a time, for an analyst with no bundle at hand.

The verdict comes from the same declared rules as ``analyze``: the header evidence is turned
into a feature row with the exact columns of the ``features`` table and scored by the same
compiled SQL. Rules that need history or identity (new source, sender does not exist) cannot
fire on one message, and the verdict says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from dsguard.evidence.store import EvidenceStore
from dsguard.paths.classify import classify_headers
from dsguard.scoring.alerts import score_messages
from dsguard.scoring.score import hit_column, severity_of
from dsguard.signals.engine import SCORED_TABLE, SCRIPT_MAILER, build_features, feature_columns
from dsguard.signals.features import LURE_SUBJECT
from dsguard.signals.rules import catalogue
from dsguard.sources.messages import MessageFileError, ParsedMessage, parse_message_file
from dsguard.tenant import Tenant

MESSAGE_SUFFIXES = (".eml", ".msg")


class TriageSignal(BaseModel):
    signal_id: str
    title: str
    weight: float
    evidence: dict[str, Any] = Field(default_factory=dict)


class TriageResult(BaseModel):
    file: str
    path: str | None = None
    internal_looking: bool | None = None
    severity: str | None = None
    score: float | None = None
    verdict: str | None = None
    signals: list[TriageSignal] = Field(default_factory=list)
    evidence_chain: list[dict[str, Any]] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    subject: str | None = None
    sender: str | None = None
    recipients: list[str] = Field(default_factory=list)
    network_message_id: str | None = None
    error: str | None = None


def message_files(targets: Iterable[Path]) -> Iterator[Path]:
    """Files named, and message files found under folders named, in a stable order."""
    for target in targets:
        if target.is_dir():
            found = sorted(
                p for p in target.rglob("*") if p.is_file() and p.suffix.lower() in MESSAGE_SUFFIXES
            )
            yield from found
        else:
            yield target


def _domain(addr: str | None) -> str | None:
    return addr.rsplit("@", 1)[1].lower() if addr and "@" in addr else None


def infer_domains(msg: ParsedMessage) -> set[str]:
    return {d for a in msg.to_addresses + msg.cc_addresses if (d := _domain(a))}


def _feature_row(msg: ParsedMessage, domains: set[str]) -> tuple[dict[str, Any], Any]:
    ev = msg.evidence
    p1 = ev.auth.smtp_mailfrom if ev.auth and ev.auth.smtp_mailfrom else None
    if p1 and "@" not in p1:  # smtp.mailfrom sometimes holds only the domain
        p1 = None
    for name, value in msg.headers:
        if p1 is None and name.lower() == "return-path":
            m = re.search(r"<?([^<>\s]+@[^<>\s]+)>?", value)
            p1 = m.group(1).lower() if m else None
    p2 = (msg.from_address or "").lower() or None
    decision = classify_headers(ev, domains, p1, p2)
    rcpt = (msg.to_addresses[0] if msg.to_addresses else "").lower() or None
    auth = ev.auth
    p1d = decision.p1_domain
    ip = ev.antispam.cip or ev.received.source_ip
    row = {
        "network_message_id": ev.network_message_id or msg.sha256,
        "recipient": rcpt,
        "sender": p2 or p1,
        "sender_mail_from": p1,
        "sender_mail_from_domain": p1d,
        "sender_from": p2,
        "sender_from_domain": decision.p2_domain,
        "sender_display_name": msg.from_display_name,
        "source_ip": ip,
        "sender_ipv4": ip if ip and ":" not in ip else None,
        "sender_ipv6": ip if ip and ":" in ip else None,
        "subject": msg.subject,
        "path": decision.path,
        "internal_looking": decision.internal_looking,
        "p1_internal": p1d in domains if p1d else False,
        "p2_internal": decision.p2_domain in domains if decision.p2_domain else False,
        "auth_spf": auth.spf if auth else None,
        "auth_dkim": auth.dkim if auth else None,
        "auth_dmarc": auth.dmarc if auth else None,
        "auth_compauth": auth.compauth if auth else None,
        "self_send": bool(rcpt and len(msg.to_addresses) == 1 and rcpt in {p1, p2}),
        "p1_p2_mismatch": bool(p1d and decision.p2_domain and p1d != decision.p2_domain),
        "lure_subject": bool(re.search(LURE_SUBJECT, (msg.subject or "").lower())),
        "hdr_loopback": ev.received.loopback_seen,
        "hdr_received_from": ev.received.source_helo,
        "hdr_cat": (ev.antispam.cat or "").upper() or None,
        "hdr_mailer": ev.mailer,
        "hdr_script_mailer": bool(re.search(SCRIPT_MAILER, (ev.mailer or "").lower())),
    }
    return row, decision


def triage(paths: Iterable[Path], domains: set[str] | None = None) -> Iterator[TriageResult]:
    """One result per message file; a file that is not a message gets ``error`` set."""
    rules = catalogue()
    with EvidenceStore(":memory:") as store:
        con = store.con
        build_features(con, Tenant(accepted_domains=[], domains_inferred=True))
        columns = feature_columns(con)
        for path in message_files(paths):
            try:
                msg = parse_message_file(path)
            except MessageFileError as exc:
                yield TriageResult(file=str(path), error=str(exc))
                continue
            notes: list[str] = []
            doms = domains
            if not doms:
                doms = infer_domains(msg)
                notes.append(
                    "accepted domains inferred from the recipients: "
                    + (", ".join(sorted(doms)) or "none")
                    + " (pass --domain to set them)"
                )
            row, decision = _feature_row(msg, doms)
            con.execute(f"DELETE FROM {SCORED_TABLE}")
            cols = [c for c in row if c in columns]
            con.execute(
                f"INSERT INTO {SCORED_TABLE} ({', '.join(cols)}) "
                f"VALUES ({', '.join('?' for _ in cols)})",
                [row[c] for c in cols],
            )
            score_messages(con, columns)
            cur = con.execute("SELECT * FROM scores")
            names = [d[0] for d in cur.description]
            scored = cur.fetchone()
            result = TriageResult(
                file=str(path),
                path=decision.path,
                internal_looking=decision.internal_looking,
                subject=msg.subject,
                sender=row["sender"],
                recipients=msg.to_addresses,
                network_message_id=msg.evidence.network_message_id,
                notes=notes
                + [f"{n.header or ''}: {n.reason}".strip(": ") for n in msg.evidence.notes][:20],
                evidence_chain=[{"because": b} for b in decision.because]
                + [i.model_dump(exclude={"tags"}) for i in msg.evidence.interpretations],
            )
            if scored is None:
                result.severity = "informational"
                result.score = 0.0
                result.verdict = _plain_verdict(decision.path, decision.internal_looking)
            else:
                values = dict(zip(names, scored, strict=True))
                result.score = float(values["score"])
                result.severity = str(severity_of(result.score))
                for r in rules:
                    if values.get(hit_column(r)):
                        result.signals.append(
                            TriageSignal(
                                signal_id=r.id,
                                title=r.title,
                                weight=r.weight,
                                evidence={f: values.get(f) for f in r.evidence},
                            )
                        )
                result.signals.sort(key=lambda s: -s.weight)
                result.verdict = _verdict(result)
            yield result


def _plain_verdict(path: str, internal: bool) -> str:
    if path == "authenticated":
        return "submitted by an authenticated mailbox: not Direct Send"
    if path == "unknown":
        return "no trusted Exchange Online stamps: the path cannot be told from the headers"
    if not internal:
        return "external mail (neither envelope nor From domain is ours)"
    return "internal-looking but not anonymous"


def _verdict(r: TriageResult) -> str:
    sev = r.severity or "informational"
    top = ", ".join([s.title.lower() for s in r.signals if s.weight > 0][:3])
    base = {
        "critical": "Direct Send abuse, very likely",
        "high": "likely Direct Send abuse",
        "medium": "suspicious internal-looking mail",
        "low": "weakly suspicious internal-looking mail",
        "informational": "internal-looking mail with no strong sign of abuse",
    }[sev]
    tail = " (header evidence only: history and identity were not available)"
    return f"{base}: {top}{tail}" if top else base + tail
