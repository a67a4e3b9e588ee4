"""``generate``: write a complete synthetic evidence bundle and its ground truth.

Order of work: build the tenant, build the (small) campaigns, then stream the benign traffic
chunk by chunk, merging each chunk with the campaign rows of the same hours so every file is in
time order; the message trace writer sees the same chunks. Raw messages are rendered from a
few sampled messages of every flow and campaign. Configuration, sign-ins, DNS, the exception
registry and ``truth.json`` are written last.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dsguard.synth.campaigns import Campaign, Extra, build_campaigns, ticks_iso
from dsguard.synth.config import SHAPE_PROFILES, SynthConfig, SynthSummary
from dsguard.synth.eml import render, spec_from_rows
from dsguard.synth.entities import LOC_TRAVEL, Tenant, build_tenant, scaled_users
from dsguard.synth.exchange import spf_record, write_config
from dsguard.synth.model import row_schema
from dsguard.synth.signins import write_signins
from dsguard.synth.traffic import HOUR_TICKS, Traffic
from dsguard.synth.vec import TICKS_PER_SECOND, iso_timestamps, rng_for
from dsguard.synth.writers import (
    EventsWriter,
    HuntingJson,
    PortalCsv,
    SentinelCsv,
    StreamingJsonl,
    TraceEacCsv,
    TraceV2Csv,
    TraceWriter,
)

Progress = Callable[[str, int, int], None]
CAMPAIGN_FLOW_BASE = 1000
TRACE_DAYS = 3

# How each benign flow group enters the tenant, for the truth and the hardening simulation.
FLOW_TRUTH: dict[str, dict[str, Any]] = {
    "ext_inbound": {
        "path": "anonymous_external", "registration": "not_applicable",
        "description": "External correspondents, newsletters and spam from other domains."},
    "authenticated_users": {
        "path": "authenticated", "registration": "not_applicable",
        "description": "People sending from Outlook/OWA/mobile (Intra-org and Outbound), "
                       "including travellers abroad and a few legacy SMTP AUTH clients."},
    "onprem_hybrid": {
        "path": "onprem_connector", "registration": "connector",
        "description": "Mailboxes still on the hybrid Exchange server, through the "
                       "certificate-bound OnPremises connector."},
    "printer_registered": {
        "path": "direct_send", "registration": "registered", "exception": "EX-001",
        "description": "HQ multifunction printers: scan-to-mail by Direct Send, IPs in SPF."},
    "printer_unregistered": {
        "path": "direct_send", "registration": "unregistered",
        "description": "Branch office printer: Direct Send from the branch egress, which is not "
                       "in SPF (fails SPF, compauth fails), registered nowhere."},
    "hr_lob": {
        "path": "direct_send", "registration": "registered", "exception": "EX-002",
        "description": "HR/payroll system on premises: Direct Send with SPF pass, daily batches "
                       "and payroll fan-outs."},
    "expenses_app": {
        "path": "authenticated", "registration": "not_applicable",
        "description": "Expenses application submitting through SMTP AUTH as a service "
                       "account (Authenticated SMTP sign-ins)."},
    "alerts": {
        "path": "direct_send", "registration": "expired_exception", "exception": "EX-004",
        "description": "Building management alerts around the clock; its exception expired."},
    "helpdesk_saas": {
        "path": "direct_send", "registration": "not_applicable",
        "description": "Help desk SaaS: anonymous and internal-looking, but its envelope "
                       "domain is its own (SPF pass for it) and DKIM aligns to our domain; "
                       "P1 external, P2 ours, so RejectDirectSend does not touch it."},
    "invoiceflow_partner": {
        "path": "partner_connector", "registration": "connector",
        "description": "Invoice SaaS sending as our domain through an IP-restricted Partner "
                       "inbound connector."},
    "newsletter": {
        "path": "direct_send", "registration": "registered", "exception": "EX-003",
        "description": "Weekly staff newsletter through the shared sending service our SPF "
                       "includes (SPF and DKIM pass)."},
    "surveys_saas": {
        "path": "direct_send", "registration": "unregistered",
        "description": "A survey SaaS someone started mid-period, sending as our domain from "
                       "IPs outside SPF with its own DKIM; nobody registered it."},
}


def _writer(shape: str, out: Path, tenant_id: str) -> EventsWriter:
    if shape == "sentinel":
        return SentinelCsv(out, tenant_id)
    if shape == "jsonl":
        return StreamingJsonl(out, tenant_id)
    if shape == "hunting":
        return HuntingJson(out)
    return PortalCsv(out)


def _campaign_table(campaigns: list[Campaign], start: int, end: int) -> pa.Table:
    rows: list[dict[str, Any]] = []
    for i, c in enumerate(campaigns):
        for r in c.rows:
            r["_ticks"] = int(min(max(r["_ticks"], start), end - 1))
            r["_flow"] = CAMPAIGN_FLOW_BASE + i
            rows.append(r)
    schema = row_schema()
    if not rows:
        return schema.empty_table()
    rows.sort(key=lambda r: (r["_ticks"], r["NetworkMessageId"], r["RecipientEmailAddress"]))
    ticks = np.array([r["_ticks"] for r in rows], dtype=np.int64)
    stamps = iso_timestamps(ticks, 7).to_pylist()
    for r, ts in zip(rows, stamps, strict=True):
        r["Timestamp"] = ts
    return pa.Table.from_pylist(rows, schema=schema)


def _sorted(table: pa.Table) -> pa.Table:
    idx = pc.sort_indices(table, sort_keys=[("_ticks", "ascending"),
                                            ("NetworkMessageId", "ascending")])
    return table.take(idx)


def _period_ticks(t: Tenant) -> tuple[int, int]:
    epoch = (t.start - date(1970, 1, 1)).days
    start = epoch * 86400 * TICKS_PER_SECOND
    return start, start + t.days * 86400 * TICKS_PER_SECOND


def generate(out: Path, config: SynthConfig, progress: Progress | None = None) -> SynthSummary:
    """Write a synthetic bundle for ``config`` into ``out`` and return what was written.

    The bundle is deterministic: the same config gives byte-identical files. ``out`` must be
    empty, new, or a previous synthetic bundle (which is replaced). A ``rows`` target counts
    the campaign rows too; a target smaller than the campaigns gives the campaigns alone.
    ``progress`` is called as ``progress(stage, done, total)``.
    """
    began = time.perf_counter()
    report = progress or (lambda stage, done, total: None)
    out = Path(out)
    if out.is_dir() and any(out.iterdir()) and not (out / "truth.json").is_file():
        # never clear a folder that a previous synth run did not write (a real bundle?)
        raise FileExistsError(f"{out} is not empty and holds no synthetic bundle (truth.json)")
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("messages", "exchange", "graph"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
    for old in list(out.glob("email_events*")) + list(out.glob("message_trace*")):
        old.unlink()
    profile = SHAPE_PROFILES[config.shape]
    users = scaled_users(config.users, config.rows, config.days)
    report("tenant", 0, 1)
    t = build_tenant(profile, users, config.days, config.start_date, config.seed)
    report("tenant", 1, 1)
    campaigns = build_campaigns(t)
    p_start, p_end = _period_ticks(t)
    camp = _campaign_table(campaigns, p_start, p_end)
    bulk_rows = None if config.rows is None else max(0, config.rows - camp.num_rows)
    traffic = Traffic(t, bulk_rows, need_to=config.shape == "jsonl")
    total = traffic.total + camp.num_rows
    events = _writer(config.shape, out, t.tenant_id)
    since = p_start + max(0, t.days - TRACE_DAYS) * 86400 * TICKS_PER_SECOND
    trace: TraceWriter
    if profile.trace_format == "eac":
        trace = TraceEacCsv(out, since, profile.initial)
    else:
        trace = TraceV2Csv(out, since, p_end, profile.initial)
    camp_ticks = camp.column("_ticks").to_numpy() if camp.num_rows else np.zeros(0, np.int64)
    samples: list[tuple[str, list[dict[str, Any]]]] = []
    written = 0
    report("email_events", 0, total)
    for day, h0, h1 in traffic.blocks():
        chunk = traffic.chunk(day, h0, h1)
        lo = traffic.day_ticks(day) + h0 * HOUR_TICKS
        hi = traffic.day_ticks(day) + h1 * HOUR_TICKS
        a, b = np.searchsorted(camp_ticks, [lo, hi])
        table = chunk.table
        chunk.table = None  # one copy of the chunk alive at a time
        if b > a:
            table = pa.concat_tables([table, camp.slice(int(a), int(b - a))])
        table = _sorted(table)
        events.write(table)
        trace.write(table)
        written += table.num_rows
        for rows in chunk.samples:
            samples.append((traffic.flows[int(rows[0]["_flow"])].key, rows))
        report("email_events", written, total)
    events.close()
    trace.close()

    eml_files = _write_messages(t, out, samples, campaigns, report)
    report("signins", 0, 1)
    n_signins = write_signins(t, out)
    report("signins", 1, 1)
    report("config", 0, 1)
    config_files, planted, ex_truth = write_config(t, out)
    report("config", 1, 1)
    truth = _truth(t, config, traffic, campaigns, planted, ex_truth, eml_files, written)
    (out / "truth.json").write_text(json.dumps(truth, indent=2, ensure_ascii=False) + "\n",
                                    encoding="utf-8")

    files = sorted([*events.rows, "message_trace.csv", "signins.json", *config_files,
                    *(e["file"] for e in eml_files), "truth.json"])
    rows = dict(events.rows)
    rows["message_trace.csv"] = trace.rows
    rows["signins.json"] = n_signins
    summary = SynthSummary(
        out=str(out), tenant=profile.org_name, shape=config.shape, users=t.users,
        days=t.days, start=str(t.start), files=files, rows=rows,
        campaigns={c.id: len({r["NetworkMessageId"] for r in c.rows}) for c in campaigns},
        campaign_rows=camp.num_rows, email_events_rows=written,
        seconds=round(time.perf_counter() - began, 3),
    )
    return summary


def _path_of_flow(flow: str) -> str:
    group = {"intra_org": "authenticated_users", "outbound": "authenticated_users",
             "hr_payroll": "hr_lob"}.get(flow, flow)
    return str(FLOW_TRUTH[group]["path"])


def _write_messages(t: Tenant, out: Path, samples: list[tuple[str, list[dict[str, Any]]]],
                    campaigns: list[Campaign], report: Progress) -> list[dict[str, Any]]:
    """Render the sampled benign messages and a few messages of every campaign."""
    jobs: list[tuple[str, str, str, list[dict[str, Any]], Extra | None]] = []
    for flow, rows in samples:
        if flow == "outbound":
            continue  # a copy of outbound mail is not in our mailboxes
        jobs.append((flow, "benign", _path_of_flow(flow), rows, None))
    for c in campaigns:
        by_msg: dict[str, list[dict[str, Any]]] = {}
        for r in c.rows:
            by_msg.setdefault(r["NetworkMessageId"], []).append(r)
        order = sorted(by_msg, key=lambda n: (by_msg[n][0]["_ticks"], n))
        hostile = {h["network_message_id"] for h in c.hostile}
        pick = [n for n in order if n in hostile]
        rng = rng_for(t.seed, t.profile.key, "eml-pick", c.id)
        rest = [n for n in order if n not in hostile]
        if rest:
            chosen = {0, len(rest) - 1, *rng.choice(len(rest), size=min(4, len(rest)),
                                                    replace=False).tolist()}
            pick += [rest[i] for i in sorted(chosen)][: max(0, 6 - len(pick))]
        for n in pick:
            # every campaign is anonymous and internal-looking (P1 or P2 in our domains)
            jobs.append((c.id, c.kind, "direct_send", by_msg[n], c.extras[n]))
    (out / "messages").mkdir(parents=True, exist_ok=True)
    index: list[dict[str, Any]] = []
    for i, (label, kind, path, rows, extra) in enumerate(jobs):
        spec = spec_from_rows(t, rows, path, label, extra)
        rng = rng_for(t.seed, t.profile.key, "eml", spec.nmid)
        data = render(t, spec, rng)
        stamp = ticks_iso(spec.ticks)[:19].replace("-", "").replace(":", "").replace("T", "-")
        name = f"messages/{stamp}-{spec.nmid[:8]}.eml"
        (out / name).write_bytes(data)
        index.append({"file": name, "network_message_id": spec.nmid,
                      "label": "abuse" if kind != "benign" else "benign",
                      "campaign": label if kind != "benign" else None,
                      "flow": label if kind == "benign" else None, "path": path})
        report("messages", i + 1, len(jobs))
    index.sort(key=lambda e: e["file"])
    return index


def _devices(t: Tenant) -> list[dict[str, Any]]:
    """Non-human senders: what they send as, from where, and how they are governed."""
    rows = [("printers", "printer_registered", [t.ips[p.ips[0]].ip for p in t.printers],
             t.addr[t.special["scan"]])]
    for key, flow in (("printer_branch", "printer_unregistered"), ("hr_lob", "hr_lob"),
                      ("expenses_app", "expenses_app"), ("alerts", "alerts"),
                      ("newsletter", "newsletter"), ("helpdesk", "helpdesk_saas"),
                      ("invoiceflow", "invoiceflow_partner"), ("surveys", "surveys_saas"),
                      ("fax", None), ("hybrid", "onprem_hybrid")):
        d = t.devices.get(key)
        if d is None:
            continue
        sender = t.addr[d.address] if d.address >= 0 else None
        rows.append((key, flow, [t.ips[i].ip for i in d.ips], sender))
    out = []
    for key, flow, ips, sender in rows:
        meta = FLOW_TRUTH.get(flow or "", {})
        out.append({"device": key, "flow": flow, "sender": sender, "ips": ips,
                    "path": meta.get("path"),
                    "registration": meta.get("registration", "registered_unused"),
                    "exception": meta.get("exception", "EX-005" if key == "fax" else None)})
    return out


def _truth(t: Tenant, config: SynthConfig, traffic: Traffic, campaigns: list[Campaign],
           planted: list[Any], ex_truth: dict[str, Any], eml: list[dict[str, Any]],
           rows: int) -> dict[str, Any]:
    p = t.profile
    groups: dict[str, dict[str, Any]] = {}
    for f in traffic.flows:
        st = traffic.stats[f.key]
        g = groups.setdefault(f.group, {"messages": 0, "rows": 0, "first": None, "last": None,
                                        "ips": set(), "p1": set(), "p2": set()})
        g["messages"] += st.messages
        g["rows"] += st.rows
        for k, fn in (("first", min), ("last", max)):
            v = getattr(st, k)
            if v is not None:
                g[k] = v if g[k] is None else fn(g[k], v)
        g["ips"] |= st.ips
        g["p1"] |= st.senders_p1
        g["p2"] |= st.senders_p2
    accepted = [p.primary, p.brand, p.initial]
    flows = []
    for key, g in groups.items():
        meta = FLOW_TRUTH[key]
        path = meta["path"]
        # many senders: the truth lists a sample of them
        sampled = key in ("ext_inbound", "authenticated_users", "onprem_hybrid",
                          "helpdesk_saas")
        p1_ours = key not in ("ext_inbound", "helpdesk_saas")
        flows.append({
            "id": key,
            "description": meta["description"],
            "path": path,
            "registration": meta["registration"],
            "exception": meta.get("exception"),
            "messages": g["messages"],
            "rows": g["rows"],
            "first_seen": ticks_iso(g["first"]) if g["first"] is not None else None,
            "last_seen": ticks_iso(g["last"]) if g["last"] is not None else None,
            "senders_p1": sorted(g["p1"])[:20],
            "senders_p2": sorted(g["p2"])[:20],
            "senders_are_sample": sampled,
            "source_ips": sorted(g["ips"])[:40],
            "sources_are_sample": sampled or len(g["ips"]) > 40,
            "internal_looking": key != "ext_inbound",
            "p1_in_accepted_domain": p1_ours,
            # RejectDirectSend: anonymous, no IP/certificate connector, P1 domain accepted
            "rds_would_reject": path == "direct_send" and p1_ours,
        })
    net = p.net
    travellers = [{"user": t.addr[tr.user], "first_day": str(t.day_date(tr.first_day)),
                   "last_day": str(t.day_date(tr.last_day)), "country": tr.country,
                   "city": tr.city, "ip": t.ips[tr.ip].ip} for tr in t.trips]
    hostile = [dict(h, campaign=c.id) for c in campaigns for h in c.hostile]
    rds_rejects = sum(f["messages"] for f in flows if f["rds_would_reject"])
    camp_truth = [c.truth() for c in campaigns]
    return {
        "generator": {"shape": config.shape, "seed": config.seed, "users": t.users,
                      "days": t.days, "start": str(t.start),
                      "end": str(t.start + timedelta(days=t.days)),
                      "rows_target": config.rows, "email_events_rows": rows},
        "tenant": {
            "name": p.org_name,
            "profile": p.key,
            "tenant_id": t.tenant_id,
            "time_zone_utc_offset_hours": p.tz_hours,
            "hybrid": p.hybrid,
            "accepted_domains": accepted + ([p.initial.replace(".onmicrosoft.",
                                                               ".mail.onmicrosoft.")]
                                            if p.hybrid else []),
            "primary_domain": p.primary,
            "initial_domain": p.initial,
            "mx": t.mx_host,
            "spf": spf_record(t),
            "office_egress_ips": {"hq": list(net.hq_egress), "branch": [net.branch_egress]},
            "registered_device_ips": [t.ips[d.ips[0]].ip for d in t.printers] + [
                net.lob_hr_ip],
            "unregistered_device_ips": [net.branch_egress],
            "devices": _devices(t),
            "hybrid_server_ip": net.hybrid_ip,
            "connectors": {"onprem": t.onprem_connector_name if p.hybrid else None,
                           "partner_ip_restricted": t.partner_connector_name,
                           "partner_unrestricted": t.open_connector_name},
            "ceo": t.addr[t.ceo],
            "finance": [t.addr[i] for i in t.finance],
            "people": t.users,
            "smtp_auth_users": [t.addr[i] for i in np.flatnonzero(t.smtp_auth)],
            "travellers": travellers,
            "travel_days": int((t.loc_kind == LOC_TRAVEL).sum()),
        },
        "flows": sorted(flows, key=lambda f: f["id"]),
        "campaigns": camp_truth,
        "hostile_content": hostile,
        "planted_misconfigurations": [x.as_dict() for x in planted],
        "exceptions": ex_truth,
        "hardening": {
            "reject_direct_send": {
                "rule": "rejects anonymous mail matching no IP/certificate connector whose P1 "
                        "(envelope) domain is accepted; the From header is not checked",
                "benign_messages_rejected": rds_rejects,
                "benign_flows_rejected": sorted(f["id"] for f in flows if f["rds_would_reject"]),
                "campaigns_stopped": sorted(c["id"] for c in camp_truth
                                            if c["rds_would_reject"]),
                "campaigns_not_stopped": sorted(c["id"] for c in camp_truth
                                                if not c["rds_would_reject"]),
            },
        },
        "messages": eml,
    }
