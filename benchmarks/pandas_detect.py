"""The same detections in idiomatic pandas + numpy, for comparison only (never imported by
dsguard).

Reads the bundle's ``email_events*.csv`` and ``signins*.json`` with pandas (pyarrow engine,
only the columns the detections need), normalises them, computes the features of
``dsguard.signals.features`` with vectorised pandas/numpy (groupby ranks and cumulative
counts, ``searchsorted`` for time windows; no Python loop over rows), scores the rule
catalogue and groups campaigns. Tenant context (accepted domains, connectors, SPF ranges,
exceptions) and header evidence come from dsguard's own readers: they are a few kilobytes.

    python benchmarks/pandas_detect.py BUNDLE [--out result.json]

Prints a JSON summary (rows, scored rows, flagged rows, campaigns, seconds per step).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dsguard.bundle import discover
from dsguard.engines.iprange import ipv6_hex
from dsguard.evidence.snapshot import Snapshot
from dsguard.evidence.store import EvidenceStore
from dsguard.scoring.alerts import CAMPAIGN_GAP_HOURS
from dsguard.scoring.score import ALERT_MIN, min_score
from dsguard.signals.engine import HEADER_FEATURES_SQL, ODD_HELO, SCRIPT_MAILER
from dsguard.signals.features import (
    BURST_MINUTES,
    FANOUT_MINUTES,
    LURE_SUBJECT,
    UNUSUAL_HOUR_MIN_HISTORY,
    UNUSUAL_HOUR_SHARE,
    WARMUP_DAYS,
)
from dsguard.signals.rules import Rule, catalogue
from dsguard.tenant import Tenant, build_tenant

EE_COLUMNS = [
    "Timestamp", "NetworkMessageId", "SenderMailFromAddress", "SenderFromAddress",
    "SenderMailFromDomain", "SenderFromDomain", "SenderIPv4", "SenderIPv6",
    "RecipientEmailAddress",
    "Subject", "EmailDirection", "DeliveryAction", "DetectionMethods", "AuthenticationDetails",
    "Connectors",
]  # fmt: skip
US = 1_000_000
# str.contains with a pattern that has groups warns; the groups are the catalogue's own.
warnings.filterwarnings("ignore", "This pattern is interpreted as a regular expression")


class Steps:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._t, 3)
        self._t = now


# ----------------------------------------------------------------------------- inputs
def context(bundle: Path) -> tuple[Tenant, pd.DataFrame]:
    """Tenant context and header facts through dsguard's readers (small files only)."""
    small = [
        (r, p) for r, p in discover(bundle)
        if r.source not in ("email_events", "message_trace", "signins")
    ]  # fmt: skip
    with EvidenceStore(":memory:") as store:
        store.ingest(small, root=bundle)
        tenant = build_tenant(Snapshot(store.con))
        headers = store.con.execute(HEADER_FEATURES_SQL).fetch_df()
    return tenant, headers


def read_events(bundle: Path) -> pd.DataFrame:
    files = sorted(bundle.glob("email_events*.csv"))
    frames = [pd.read_csv(f, usecols=EE_COLUMNS, dtype=str, engine="pyarrow") for f in files]
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    out = pd.DataFrame(
        {
            "nmid": df["NetworkMessageId"].str.strip(),
            "recipient": df["RecipientEmailAddress"].str.strip().str.lower(),
            "ts": pd.to_datetime(df["Timestamp"].str.strip(), utc=True, format="ISO8601"),
            "mail_from": _addr(df["SenderMailFromAddress"]),
            "from_": _addr(df["SenderFromAddress"]),
            "ip": df["SenderIPv4"].str.strip().replace("", None),
            "ip6": df["SenderIPv6"].str.strip().str.lower().replace("", None),
            "subject": df["Subject"].replace("", None),
            "direction": df["EmailDirection"].str.strip(),
            "delivery_action": df["DeliveryAction"].str.strip(),
            "connectors": df["Connectors"].str.strip().replace("", None),
        }
    )
    out["mf_domain"] = df["SenderMailFromDomain"].str.strip().str.lower()
    out["mf_domain"] = out["mf_domain"].fillna(out["mail_from"].str.extract(r"@([^@]*)$")[0])
    out["from_domain"] = df["SenderFromDomain"].str.strip().str.lower()
    out["from_domain"] = out["from_domain"].fillna(out["from_"].str.extract(r"@([^@]*)$")[0])
    auth = df["AuthenticationDetails"].str.lower()
    for k in ("spf", "dkim", "dmarc", "compauth"):
        out[f"auth_{k}"] = auth.str.extract(rf'"{k}"\s*:\s*"([^"]*)"')[0]
    out["ms_spoof"] = df["DetectionMethods"].str.contains("Spoof intra-org", regex=False)
    out["ms_spoof"] = out["ms_spoof"].fillna(False).astype(bool)
    out["direction"] = out["direction"].map(
        {"Inbound": "Inbound", "Outbound": "Outbound", "Intra-org": "Intra-org"}
    )
    return out.drop_duplicates(["nmid", "recipient"], keep="first").reset_index(drop=True)


def _addr(s: pd.Series) -> pd.Series:
    return s.str.strip(" <>\t").str.lower().replace("", None)


def read_signins(bundle: Path) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for f in sorted(bundle.glob("signins*.json")):
        with f.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    rows.extend(json.loads(line).get("value", []))
    df = pd.json_normalize(rows)
    return pd.DataFrame(
        {
            "upn": df["userPrincipalName"].str.lower(),
            "ts": pd.to_datetime(df["createdDateTime"], utc=True, format="ISO8601"),
            "ip": df["ipAddress"],
            "ok": df["status.errorCode"].fillna(0).astype(int) == 0,
            "country": df["location.countryOrRegion"].replace("", None),
        }
    )


# ----------------------------------------------------------------------------- features
def features(
    m: pd.DataFrame, sg: pd.DataFrame, tenant: Tenant, headers: pd.DataFrame
) -> pd.DataFrame:
    domains = set(tenant.accepted_domains)
    m["sender"] = m["from_"].fillna(m["mail_from"])
    m["p1_internal"] = m["mf_domain"].isin(domains)
    m["p2_internal"] = m["from_domain"].isin(domains)
    m["day"] = m["ts"].dt.floor("D")
    auth = m["direction"].isin(["Intra-org", "Outbound"])

    # identity over every message
    ident = pd.DataFrame({"sender": m["sender"], "auth": auth}).dropna(subset=["sender"])
    auth_sent = ident.groupby("sender")["auth"].sum()
    receivers = set(
        m.loc[
            m["direction"].isin(["Inbound", "Intra-org"]) & (m["delivery_action"] != "Blocked"),
            "recipient",
        ]
    )
    ok = sg[sg["ok"]]
    signins_total = ok.groupby("upn").size()
    registered = {s for e in tenant.exceptions for s in e.senders}
    d0 = m["day"].min()

    il = m[m["p1_internal"] | m["p2_internal"]].copy()
    il["auth"] = il["direction"].isin(["Intra-org", "Outbound"])
    il["sk"] = il["sender"].fillna("")
    il["ik"] = il["ip"].fillna(il["ip6"]).fillna("")  # the source: IPv4, else IPv6
    il["hour"] = il["ts"].dt.hour
    il = il.sort_values(["ts", "nmid", "recipient"], kind="stable").reset_index(drop=True)

    # causal baselines over all internal-looking rows
    for cols, name in (
        (["sk", "ik"], "sender_ip_prior_days"),
        (["ik"], "tenant_ip_prior_days"),
        (["sk"], "sender_prior_days"),
    ):
        il[name] = (il.groupby(cols)["day"].rank(method="dense") - 1).astype("int64")
    il["pair_prior_msgs"] = il.groupby(["sk", "recipient"]).cumcount()
    il["sender_prior_msgs"] = il.groupby("sk").cumcount()
    il["sender_prior_in_hour"] = il.groupby(["sk", "hour"]).cumcount()
    il["source_burst"] = _window_count(il["ik"], il["ts"], BURST_MINUTES)

    sc = il[~il["auth"]].copy()
    first = ~sc.duplicated(["sk", "ik"]) & (sc["ik"] != "")
    sc["sender_sources_so_far"] = first.astype("int64").groupby(sc["sk"]).cumsum()
    sc["source_fanout"] = _window_distinct(il, sc, "ik", FANOUT_MINUTES)
    sc["sender_fanout"] = _window_distinct(sc, sc, "sk", FANOUT_MINUTES)

    # identity facts
    s = sc["sk"]
    sc["sender_auth_sent"] = s.map(auth_sent).fillna(0).astype("int64")
    sc["sender_signins"] = s.map(signins_total).fillna(0).astype("int64")
    sc["sender_receives_mail"] = s.isin(receivers)
    sc["registered_sender"] = s.isin(registered)
    internal_id = sc["p2_internal"] | (sc["from_domain"].isna() & sc["p1_internal"])
    person = (sc["sender_signins"] > 0) | (sc["sender_auth_sent"] > 0)
    service = sc["registered_sender"] | sc["sender_receives_mail"]
    sc["identity_class"] = np.select(
        [~internal_id, person, service], ["external", "person", "service"], "nobody"
    )
    sc = _signins_near(sc, ok)
    sc = _ip_facts(sc, tenant)
    sc = _coverage(sc, tenant)

    # the rest
    conn = {c.name.lower(): c for c in tenant.connectors}
    matched = sc["connectors"].str.lower().map(lambda v: conn.get(v) if v else None)
    inbound = sc["direction"] == "Inbound"
    has_conn = sc["connectors"].notna()
    onprem = matched.map(lambda c: c is not None and c.connector_type == "OnPremises")
    sc["path"] = np.select(
        [inbound & has_conn & onprem, inbound & has_conn, inbound],
        ["onprem_connector", "partner_connector", "direct_send"],
        "unknown",
    )
    sc["connector_name"] = matched.map(lambda c: c.name if c is not None else None)
    sc["self_send"] = (sc["recipient"] == sc["from_"]) | (sc["recipient"] == sc["mail_from"])
    sc["p1_p2_mismatch"] = (
        sc["mf_domain"].notna() & sc["from_domain"].notna() & (sc["mf_domain"] != sc["from_domain"])
    )
    sc["baseline_mature"] = (sc["day"] - d0).dt.days >= WARMUP_DAYS
    sc["lure_subject"] = sc["subject"].fillna("").str.lower().str.contains(LURE_SUBJECT, regex=True)
    sc["ms_spoof_intra_org"] = sc["ms_spoof"]
    sc["unusual_hour"] = (sc["sender_prior_msgs"] >= UNUSUAL_HOUR_MIN_HISTORY) & (
        sc["sender_prior_in_hour"] < UNUSUAL_HOUR_SHARE * sc["sender_prior_msgs"]
    )
    h = headers.rename(columns={"network_message_id": "nmid"})
    sc = sc.merge(h, on="nmid", how="left")
    sc["hdr_odd_helo"] = sc["hdr_helo"].str.lower().str.contains(ODD_HELO, regex=True)
    sc["hdr_script_mailer"] = (
        sc["hdr_mailer"].fillna("").str.lower().str.contains(SCRIPT_MAILER, regex=True)
    )
    sc = sc.rename(
        columns={
            "mail_from": "sender_mail_from", "from_": "sender_from",
            "mf_domain": "sender_mail_from_domain", "from_domain": "sender_from_domain",
            "ip": "sender_ipv4",
        }
    )  # fmt: skip
    sc["detection_flags"] = np.where(sc["ms_spoof"], "Spoof intra-org", None)
    return sc


def _keys(group: pd.Series, ts: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """One sortable int64 per row: the group in the high bits, microseconds in the low."""
    codes, _ = pd.factorize(group)
    us = (ts.astype("int64") // 1000).to_numpy()
    base = us.min() if len(us) else 0
    return (codes.astype(np.int64) << 42) | (us - base), us


def _window_count(group: pd.Series, ts: pd.Series, minutes: int) -> np.ndarray:
    """Rows of the same group in [ts - window, ts], ties after the row included."""
    key, _ = _keys(group, ts)
    order = np.argsort(key, kind="stable")
    sk = key[order]
    lo = np.searchsorted(sk, sk - minutes * 60 * US, side="left")
    hi = np.searchsorted(sk, sk, side="right")
    out = np.empty(len(key), dtype=np.int64)
    out[order] = hi - lo
    return out


def _window_distinct(pool: pd.DataFrame, rows: pd.DataFrame, col: str, minutes: int) -> np.ndarray:
    """Distinct recipients of ``pool`` in the same ``col`` within [ts - window, ts] for each
    of ``rows``: expand each row's window into (row, recipient) pairs, de-duplicate, count."""
    codes, _ = pd.factorize(pd.concat([pool[col], rows[col]], ignore_index=True))
    base = int(pd.concat([pool["ts"], rows["ts"]]).astype("int64").min() // 1000)
    pk = (codes[: len(pool)].astype(np.int64) << 42) | (pool["ts"].astype("int64") // 1000 - base)
    rk = (codes[len(pool) :].astype(np.int64) << 42) | (rows["ts"].astype("int64") // 1000 - base)
    order = np.argsort(pk.to_numpy(), kind="stable")
    sorted_keys = pk.to_numpy()[order]
    rcpt, _ = pd.factorize(pool["recipient"])
    rcpt_sorted = rcpt[order]
    r = rk.to_numpy()
    lo = np.searchsorted(sorted_keys, r - minutes * 60 * US, side="left")
    hi = np.searchsorted(sorted_keys, r, side="right")
    sizes = hi - lo
    out = np.zeros(len(r), dtype=np.int64)
    chunk = 2_000_000
    start = 0
    while start < len(r):
        # rows in chunks so the pair arrays stay bounded
        stop = start + 1
        total = sizes[start]
        while stop < len(r) and total + sizes[stop] <= chunk:
            total += sizes[stop]
            stop += 1
        n = sizes[start:stop]
        row_id = np.repeat(np.arange(start, stop), n)
        offsets = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        idx = np.repeat(lo[start:stop], n) + offsets
        pairs = pd.DataFrame({"row": row_id, "r": rcpt_sorted[idx]}).drop_duplicates()
        counts = pairs.groupby("row").size()
        out[counts.index.to_numpy()] = counts.to_numpy()
        start = stop
    return out


def _signins_near(sc: pd.DataFrame, ok: pd.DataFrame) -> pd.DataFrame:
    j = sc[["nmid", "recipient", "sk", "ik", "ts"]].merge(
        ok.rename(columns={"upn": "sk", "ts": "s_ts", "ip": "s_ip"}), on="sk"
    )
    dt = j["s_ts"] - j["ts"]
    j = j[(dt >= pd.Timedelta(days=-7)) & (dt <= pd.Timedelta(days=1))]
    dt = j["s_ts"] - j["ts"]
    # One address whatever its spelling, as ``address_keys_sql``: keys of the distinct values.
    keys = {ip: _address_key(ip) for ip in pd.unique(pd.concat([j["s_ip"], j["ik"]]).dropna())}
    s_key, m_key = j["s_ip"].map(keys), j["ik"].map(keys)
    j = j.assign(
        near=dt.abs() <= pd.Timedelta(hours=2),
        same=(s_key == m_key) & s_key.notna() & (dt.abs() <= pd.Timedelta(hours=12)),
    )
    g = j.groupby(["nmid", "recipient"])
    facts = pd.DataFrame(
        {
            "signin_near": g["near"].any(),
            "signin_same_ip": g["same"].any(),
            "signin_countries": g["country"].agg(lambda c: sorted(set(c.dropna())) or None),
        }
    ).reset_index()
    sc = sc.merge(facts, on=["nmid", "recipient"], how="left")
    sc["signin_near"] = sc["signin_near"].fillna(False).astype(bool)
    sc["signin_same_ip"] = sc["signin_same_ip"].fillna(False).astype(bool)
    return sc


def _ip_facts(sc: pd.DataFrame, tenant: Tenant) -> pd.DataFrame:
    ips = pd.Series(sc["ik"].unique())
    ints = ips.map(_ip_int)
    facts = pd.DataFrame({"ik": ips})
    spf: list[set[str]] = [set() for _ in ips]
    exc: list[set[str]] = [set() for _ in ips]
    office = np.zeros(len(ips), dtype=bool)
    conn = np.zeros(len(ips), dtype=bool)
    vals = ints.to_numpy(dtype="float64")
    hex6 = [_ipv6_hex(ip) for ip in ips]  # IPv6 as dsguard compares it: 32 hex digits
    for r in tenant.ranges():
        if r.start is not None and r.end is not None:
            hit = np.flatnonzero((vals >= r.start) & (vals <= r.end))
        else:
            lo, hi = r.start6 or "", r.end6 or ""
            hit = np.array([i for i, h in enumerate(hex6) if h and lo <= h <= hi], dtype=int)
        for i in hit:
            if r.kind == "spf":
                spf[i].add(r.label)
            elif r.kind == "exception":
                exc[i].add(r.label)
        if r.kind == "office":
            office[hit] = True
        if r.kind == "connector":
            conn[hit] = True
    facts["ip_office"] = office
    facts["ip_connector_range"] = conn
    facts["spf_domains"] = [sorted(x) for x in spf]
    facts["exception_source_ids"] = [sorted(x) for x in exc]
    sc = sc.merge(facts, on="ik", how="left")
    sc["ip_in_p1_spf"] = [d in s for d, s in zip(sc["mf_domain"], sc["spf_domains"], strict=True)]
    sc["on_exception_source"] = sc["exception_source_ids"].map(len) > 0
    return sc


def _address_key(ip: str) -> str | None:
    """32 hex digits; an IPv4 address as its IPv4-mapped IPv6 address."""
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(a, ipaddress.IPv4Address):
        a = ipaddress.IPv6Address((0xFFFF << 32) | int(a))
    return ipv6_hex(a)


def _ipv6_hex(ip: str) -> str | None:
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return None
    return ipv6_hex(a) if isinstance(a, ipaddress.IPv6Address) else None


def _ip_int(ip: str) -> float:
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return np.nan
    return float(int(a)) if a.version == 4 else np.nan


def _coverage(sc: pd.DataFrame, tenant: Tenant) -> pd.DataFrame:
    keys = sc[["sk", "ik", "day", "exception_source_ids"]].drop_duplicates(["sk", "ik", "day"])
    covering: list[list[str]] = [[] for _ in range(len(keys))]
    expired: list[list[str]] = [[] for _ in range(len(keys))]
    in_date = np.zeros(len(keys), dtype=bool)
    sender = keys["sk"].to_numpy()
    days = keys["day"].dt.date.to_numpy()
    srcs = keys["exception_source_ids"].to_numpy()
    for e in tenant.exceptions:
        for pattern in e.senders or ["*"]:
            if pattern == "*":
                who = np.ones(len(keys), dtype=bool)
            elif pattern.startswith("*@"):
                who = keys["sk"].str.split("@").str[1].to_numpy() == pattern[2:]
            else:
                who = sender == pattern
            where = np.array([e.id in s for s in srcs]) if e.sources else True
            for i in np.flatnonzero(who & where):
                if e.id not in covering[i]:
                    covering[i].append(e.id)
                ok = e.expires is None or e.expires >= days[i]
                in_date[i] |= ok
                if not ok and e.id not in expired[i]:
                    expired[i].append(e.id)
    keys = keys.drop(columns="exception_source_ids").assign(
        covering_ids=[sorted(c) for c in covering],
        covered_in_date=in_date,
        covering_expired_ids=[sorted(c) for c in expired],
    )
    sc = sc.merge(keys, on=["sk", "ik", "day"], how="left")
    sc["covered"] = sc["covering_ids"].map(len) > 0
    sc["covered_expired"] = sc["covering_expired_ids"].map(len) > 0
    return sc


# ----------------------------------------------------------------------------- rules
def condition(df: pd.DataFrame, cond: dict[str, Any]) -> pd.Series:
    """A rule condition (``dsguard.signals.rules``) as a boolean Series; unknown is false."""
    out = pd.Series(True, index=df.index)
    for key, value in cond.items():
        if key == "all":
            part = pd.Series(True, index=df.index)
            for c in value:
                part &= condition(df, c)
        elif key == "any":
            part = pd.Series(False, index=df.index)
            for c in value:
                part |= condition(df, c)
        elif key == "not":
            part = ~condition(df, value) & _known(df, value)
        else:
            part = _predicate(df[key], value)
        out &= part
    return out


def _known(df: pd.DataFrame, cond: dict[str, Any]) -> pd.Series:
    """SQL three-valued logic: NOT of an unknown stays unknown (false here)."""
    out = pd.Series(True, index=df.index)
    for key, value in cond.items():
        if key in ("all", "any", "not"):
            continue
        if value is not None:
            out &= df[key].notna()
    return out


def _predicate(col: pd.Series, value: Any) -> pd.Series:
    if value is None:
        return col.isna()
    if isinstance(value, list):
        return col.isin(value)
    if not isinstance(value, dict):
        return (col == value).fillna(False).astype(bool)
    out = pd.Series(True, index=col.index)
    ops = {"eq": "__eq__", "ne": "__ne__", "gt": "__gt__", "ge": "__ge__", "lt": "__lt__",
           "le": "__le__"}  # fmt: skip
    for op, arg in value.items():
        if op in ops:
            out &= getattr(col, ops[op])(arg).fillna(False).astype(bool) & col.notna()
        elif op == "in":
            out &= col.isin(arg)
        elif op == "not_in":
            out &= ~col.isin(arg) & col.notna()
        elif op == "contains":
            out &= col.map(lambda v, a=arg: v is not None and a in v).astype(bool)
        elif op == "matches":
            out &= col.fillna("").str.contains(arg, regex=True)
    return out


def score(sc: pd.DataFrame, rules: tuple[Rule, ...]) -> pd.DataFrame:
    total = np.zeros(len(sc))
    for r in rules:
        hit = condition(sc, r.when).to_numpy()
        sc[f"hit_{r.id}"] = hit
        total += np.where(hit, r.weight, 0.0)
    sc["score"] = total
    return sc


def campaigns(sc: pd.DataFrame) -> pd.DataFrame:
    f = sc[sc["score"] >= min_score(ALERT_MIN)].copy()
    local = f["recipient"].str.split("@").str[0]
    subj = f["subject"].fillna("").str.lower()
    subj = pd.Series(
        [s.replace(loc, "{r}") for s, loc in zip(subj, local, strict=True)], index=f.index
    )
    subj = subj.str.replace(r"^((re|fw|fwd|aw|sv)\s*:\s*)+", "", regex=True)
    subj = subj.str.replace(r"[0-9]+", "#", regex=True).str.replace(r"\s+", " ", regex=True)
    f["gkey"] = f["ik"].replace("", "no-ip") + "|" + subj.str.strip()
    f = f.sort_values(["gkey", "ts", "nmid", "recipient"], kind="stable")
    gap = f.groupby("gkey")["ts"].diff() > pd.Timedelta(hours=CAMPAIGN_GAP_HOURS)
    f["segment"] = gap.astype(int).groupby(f["gkey"]).cumsum()
    return f


# ----------------------------------------------------------------------------- main
def run(bundle: Path) -> dict[str, Any]:
    steps = Steps()
    tenant, headers = context(bundle)
    steps.lap("context")
    m = read_events(bundle)
    steps.lap("read+normalise events")
    sg = read_signins(bundle)
    # office egress, as dsguard derives it, from the sign-ins read here
    okp = sg[sg["ok"] & sg["ip"].notna()]
    office = okp.groupby("ip")["upn"].nunique()
    tenant.office_egress = sorted(office[office >= 3].index)
    steps.lap("read sign-ins")
    sc = features(m, sg, tenant, headers)
    steps.lap("features")
    rules = catalogue()
    sc = score(sc, rules)
    steps.lap("score")
    f = campaigns(sc)
    groups = f.groupby(["gkey", "segment"])
    steps.lap("campaigns")
    return {
        "rows": len(m),
        "scored": len(sc),
        "flagged": len(f),
        "campaigns": int(groups.ngroups),
        "steps": steps.seconds,
        "scores": sc[["nmid", "recipient", "score"]],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--scores", type=Path, default=None, help="write per-row scores (parquet)")
    args = ap.parse_args()
    started = time.perf_counter()
    result = run(args.bundle)
    scores = result.pop("scores")
    if args.scores:
        scores.to_parquet(args.scores)
    result["seconds"] = round(time.perf_counter() - started, 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
