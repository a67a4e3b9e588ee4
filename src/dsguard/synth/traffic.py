"""Benign mail traffic, generated in vectorised chunks.

Each *flow* is one way legitimate mail reaches (or leaves) the tenant: external
correspondents, authenticated users, the hybrid server, printers, line-of-business apps,
SaaS senders. A flow has a volume (rows per working day, scaled by the tenant), a weekday and
an hourly cadence in local time, and a builder that turns ``m`` message slots into columns.

Volumes are laid out as a (day, UTC hour, flow) tensor of expected rows; one multinomial draw
fixes how many rows fall in each cell (so a row target is met exactly) and chunks of a few
hours are then built independently with their own random streams. Nothing here holds more
than one chunk of rows in memory.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dsguard.synth import names
from dsguard.synth.entities import HELPDESK_DOMAIN, LOC_BRANCH, LOC_HQ, Tenant, exo_domain
from dsguard.synth.model import (
    EE_COLUMNS,
    VERDICT_BCL,
    VERDICTS,
    row_schema,
    spoof_verdict,
    verdict_columns,
    verdict_id,
)
from dsguard.synth.vec import (
    TICKS_PER_SECOND,
    const,
    coprime_steps,
    guids,
    hex_strings,
    int_str,
    iso_timestamps,
    join,
    rng_for,
    stable_hash,
    take,
    where,
)

MAX_CHUNK_ROWS = 120_000
HOUR_TICKS = 3600 * TICKS_PER_SECOND

# Hourly weights in local time, 00..23.
H_BUSINESS = np.array([0.2, 0.1, 0.1, 0.1, 0.1, 0.3, 1, 3, 7, 10, 10, 9, 6, 8, 9, 9, 7, 4, 2,
                       1.5, 1.2, 1, 0.6, 0.3])
H_EXTERNAL = np.array([1, 0.8, 0.8, 0.8, 1, 1.5, 3, 5, 7, 8, 8, 7.5, 6, 7, 7.5, 7, 6, 4, 3,
                       2.5, 2, 1.8, 1.5, 1.2])
H_SCAN = np.array([0, 0, 0, 0, 0, 0, 0.2, 1.5, 6, 9, 9, 8, 5, 7, 8, 7, 5, 2, 0.5, 0.2, 0, 0, 0,
                   0.0])
H_BATCH = np.array([0.2, 0.2, 0.2, 0.3, 1, 8, 10, 4, 2, 2, 2, 2, 1.5, 2, 2, 2, 1.5, 1, 0.5, 0.3,
                    0.2, 0.2, 0.2, 0.2])
H_FLAT = np.ones(24)
H_NEWS = np.zeros(24)
H_NEWS[10] = 8
H_NEWS[11] = 2
H_SURVEY = np.zeros(24)
H_SURVEY[9], H_SURVEY[10], H_SURVEY[14] = 5, 3, 2
H_PAYROLL = np.zeros(24)
H_PAYROLL[6], H_PAYROLL[7] = 7, 3

WEEKDAYS = (1.0, 1.0, 1.0, 1.0, 0.95, 0.0, 0.0)  # Mon..Sun; weekend set per flow


@dataclass
class Msgs:
    """Message-level columns a flow builder returns for ``m`` messages (``k`` recipients
    each) and the row-level recipients (address-table indexes)."""

    p1: pa.Array
    p1_domain: pa.Array
    p2: pa.Array
    p2_domain: pa.Array
    display: pa.Array
    sender_objid: pa.Array
    ip4: pa.Array
    ip6: pa.Array
    subject: pa.Array
    cluster: np.ndarray
    direction: str
    verdict: np.ndarray
    attachments: np.ndarray
    urls: np.ndarray
    size: np.ndarray
    imid: pa.Array
    recipients: np.ndarray
    connectors: str = ""
    first_contact: np.ndarray | None = None


@dataclass
class Ctx:
    tenant: Tenant
    pools: Pools
    rng: np.random.Generator
    day: int
    m: int
    k: np.ndarray
    ticks: np.ndarray


@dataclass(frozen=True)
class Flow:
    key: str
    group: str  # flows of one group are one path in the truth (payroll belongs to hr_lob)
    build: Callable[[Ctx], Msgs]
    rate: Callable[[Tenant], float]  # rows per working day
    hours: np.ndarray
    weekend: float
    recipients: tuple[tuple[int, float], ...]  # (count, probability)
    weekdays: tuple[float, ...] = WEEKDAYS
    active: Callable[[Tenant, int], bool] | None = None  # by local day index
    # most recipients one message can have (the size of a small recipient pool)
    max_recipients: Callable[[Pools], int] | None = None


class Pools:
    """Sampling pools and cumulative weights, computed once per tenant."""

    def __init__(self, t: Tenant) -> None:
        self.t = t
        u = np.arange(t.users)
        self.cloud = u[~t.onprem]
        self.onprem = u[t.onprem]
        w = t.activity
        self.cloud_cdf = _cdf(w[self.cloud])
        self.onprem_cdf = _cdf(w[self.onprem]) if len(self.onprem) else np.array([1.0])
        shared = [t.special[k] for k in ("info", "accounts", "support", "hr", "itsupport")]
        self.internal = np.concatenate([u, shared])
        wi = np.concatenate([w * 0.92, np.full(len(shared), 0.08 / len(shared))])
        self.internal_cdf = _cdf(wi)
        self.people_cdf = _cdf(w)
        self.hq = u[t.office == LOC_HQ]
        self.hq_cdf = _cdf(w[self.hq])
        br = u[t.office == LOC_BRANCH]
        self.branch = br if len(br) else u[:1]
        self.branch_cdf = _cdf(w[self.branch])
        self.finance = np.array([*t.finance, t.special["accounts"]])
        self.finance_cdf = _cdf(np.r_[np.ones(len(t.finance)), max(2.0, len(t.finance) / 2)])
        fac = [i for i in range(t.users) if t.dept[i] == "Facilities"][:6]
        self.facilities = np.array([t.special["facilities"], *fac])
        agents = [i for i in range(t.users) if t.dept[i] in ("IT", "Sales", "Quality Assurance")]
        self.agents = np.array(agents or [0])
        nd = len(t.ext_domains)
        rank = np.arange(nd)
        dw = 1.0 / (rank + 5.0) ** 0.8
        dw[:3] = dw[3:].sum() * 0.12  # each mailbox provider ~12 % of external mail
        self.domain_cdf = _cdf(dw)
        self.mbx_fqdn = pa.array([exo_domain(h, t.profile.region, "MB") for h in t.mbx_host])
        self.printer_ip = np.array([p.ips[0] for p in t.printers])
        self.printer_name = pa.array([p.name for p in t.printers])
        self.printer_host = pa.array([t.ips[p.ips[0]].ptr for p in t.printers])
        self.printer_model = pa.array([p.model for p in t.printers])
        langs = t.profile.languages
        self.lang_values = pa.array([code for code, _ in langs])
        self.lang_cdf = _cdf(np.array([wt for _, wt in langs]))
        self._subjects: dict[str, tuple[pa.Array, pa.Array, np.ndarray, int]] = {}

    def subject_table(self, key: str, templates: tuple[str, ...]
                      ) -> tuple[pa.Array, pa.Array, np.ndarray, int]:
        """Templates split around ``{n}``: prefixes, suffixes, has-number, cluster base."""
        if key not in self._subjects:
            org = self.t.profile.org_name
            pre, suf, has = [], [], []
            for tpl in templates:
                tpl = tpl.replace("{org}", org)
                if "{n}" in tpl:
                    a, b = tpl.split("{n}", 1)
                    pre.append(a)
                    suf.append(b)
                    has.append(True)
                else:
                    pre.append(tpl)
                    suf.append("")
                    has.append(False)
            base = (stable_hash(key) % 90_000 + 10_000) * 1000
            self._subjects[key] = (pa.array(pre), pa.array(suf), np.array(has), base)
        return self._subjects[key]


def _cdf(weights: np.ndarray) -> np.ndarray:
    c = np.cumsum(np.asarray(weights, dtype=np.float64))
    return c / c[-1]


def _pick(rng: np.random.Generator, cdf: np.ndarray, n: int) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(cdf) - 1)


def _subjects(ctx: Ctx, key: str, templates: tuple[str, ...], reply: float = 0.0
              ) -> tuple[pa.Array, np.ndarray]:
    pre, suf, has, base = ctx.pools.subject_table(key, templates)
    rng, m = ctx.rng, ctx.m
    t = rng.integers(0, len(has), size=m)
    num = rng.integers(1000, 99999, size=m)
    mid = where(has[t], int_str(num), const("", m))
    subject = join(take(pre, t), mid, take(suf, t))
    if reply:
        prefixes = pa.array(["", "RE: ", "Re: ", "FW: "])
        r = np.where(rng.random(m) < reply, rng.integers(1, 4, size=m), 0)
        subject = join(take(prefixes, r), subject)
    return subject, base + t


def _spread(ctx: Ctx, pool: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """Recipients for every row: a weighted first pick per message, then distinct members of
    the pool stepping from it."""
    rng, m, k = ctx.rng, ctx.m, ctx.k
    first = _pick(rng, cdf, m)
    step = coprime_steps(rng, m, len(pool))
    msg = np.repeat(np.arange(m), k)
    j = np.arange(len(msg)) - np.repeat(np.cumsum(k) - k, k)
    pos = (first[msg] + j * step[msg]) % len(pool)
    return pool[pos]


def _addr(t: Tenant, idx: np.ndarray) -> tuple[pa.Array, pa.Array]:
    return take(t.arrays["addr"], idx), take(t.arrays["addr_domain"], idx)


def _verdicts(rng: np.random.Generator, m: int, choices: tuple[tuple[str, float], ...]
              ) -> np.ndarray:
    ids = np.array([verdict_id(n) for n, _ in choices])
    p = np.array([w for _, w in choices])
    return ids[_pick(rng, _cdf(p), m)]


def _sizes(rng: np.random.Generator, attachments: np.ndarray, base: float = 9000) -> np.ndarray:
    body = rng.lognormal(np.log(base), 0.5, size=len(attachments))
    att = rng.lognormal(np.log(180_000), 1.0, size=len(attachments)) * attachments
    return (body + att).astype(np.int64)


def _attachments(rng: np.random.Generator, m: int, p_any: float) -> np.ndarray:
    return np.where(rng.random(m) < p_any, rng.integers(1, 4, size=m) // 2 + 1, 0)


def _imid_external(ctx: Ctx, domain: pa.Array) -> pa.Array:
    return join("<", hex_strings(ctx.rng, ctx.m, 24, upper=True), ".",
                int_str(ctx.rng.integers(10_000, 999_999, size=ctx.m)), "@", domain, ">")


def _imid_outlook(ctx: Ctx, senders: np.ndarray) -> pa.Array:
    host = take(ctx.tenant.arrays["mbx_host"], senders)
    fqdn = take(ctx.pools.mbx_fqdn, senders)
    return join("<", host, hex_strings(ctx.rng, ctx.m, 20, upper=True), "@", fqdn, ">")


def _same_ip(t: Tenant, ip_idx: np.ndarray) -> tuple[pa.Array, pa.Array]:
    return take(t.arrays["ip"], ip_idx), const("", len(ip_idx))


def _langs(ctx: Ctx) -> pa.Array:
    return take(ctx.pools.lang_values, _pick(ctx.rng, ctx.pools.lang_cdf, ctx.m))


# --- builders -------------------------------------------------------------------------------


def b_ext_inbound(ctx: Ctx) -> Msgs:
    t, rng, m, pools = ctx.tenant, ctx.rng, ctx.m, ctx.pools
    dom = _pick(rng, pools.domain_cdf, m)
    person = t.ext_people_by_domain_start[dom] + rng.integers(0, 1 << 30, size=m) % \
        t.ext_people_by_domain_count[dom]
    cls = t.ext_domain_class[dom]
    p2, p2d = _addr(t, person)
    bulk = cls == 3
    bounce_dom = join("em.", p2d)
    p1 = where(bulk, join("bounce-", hex_strings(rng, m, 10), "@", bounce_dom), p2)
    p1d = where(bulk, bounce_dom, p2d)
    verdict = np.empty(m, dtype=np.int64)
    table = {
        0: (("ext_pass", 0.955), ("ext_forwarded", 0.02), ("ext_spam_junk", 0.015),
            ("ext_phish_quarantine", 0.01)),
        1: (("ext_spf_only", 0.9), ("ext_spam_junk", 0.08), ("ext_phish_quarantine", 0.02)),
        2: (("ext_m365_tenant", 0.985), ("ext_phish_quarantine", 0.015)),
        3: (("ext_bulk_inbox", 0.6), ("ext_bulk_junk", 0.4)),
        4: (("ext_spam_junk", 0.6), ("ext_phish_quarantine", 0.25), ("ext_spoof_dmarc", 0.15)),
    }
    for c, choices in table.items():
        sel = cls == c
        if sel.any():
            verdict[sel] = _verdicts(rng, int(sel.sum()), choices)
    which = rng.integers(0, 2, size=m)
    ip_idx = t.ext_domain_ips[dom, which]
    v6 = take(t.arrays["ext_ipv6"], dom)
    use_v6 = pc.and_(pc.not_equal(v6, ""), pa.array(rng.random(m) < 0.35)).to_numpy(
        zero_copy_only=False)
    ip4 = where(use_v6, const("", m), take(t.arrays["ip"], ip_idx))
    ip6 = where(use_v6, v6, const("", m))
    s_ext, c_ext = _subjects(ctx, "ext", names.SUBJECTS_EXTERNAL, reply=0.35)
    s_bulk, c_bulk = _subjects(ctx, "bulk", names.SUBJECTS_BULK)
    s_spam, c_spam = _subjects(ctx, "spam", names.SUBJECTS_SPAM)
    spam = cls == 4
    subject = where(bulk, s_bulk, where(spam, s_spam, s_ext))
    cluster = np.where(bulk, c_bulk, np.where(spam, c_spam, c_ext))
    att = _attachments(rng, m, 0.3)
    return Msgs(
        p1=p1, p1_domain=p1d, p2=p2, p2_domain=p2d,
        display=take(t.arrays["addr_display"], person),
        sender_objid=const("", m), ip4=ip4, ip6=ip6, subject=subject, cluster=cluster,
        direction="Inbound", verdict=verdict, attachments=att,
        urls=np.where(bulk, rng.integers(8, 40, size=m), rng.integers(0, 5, size=m)),
        size=_sizes(rng, att, 14000), imid=_imid_external(ctx, p2d),
        recipients=_spread(ctx, pools.internal, pools.internal_cdf),
        first_contact=rng.random(m) < 0.04,
    )


def _b_user_submission(ctx: Ctx, outbound: bool) -> Msgs:
    t, rng, m, pools = ctx.tenant, ctx.rng, ctx.m, ctx.pools
    sender = pools.cloud[_pick(rng, pools.cloud_cdf, m)]
    p, pd = _addr(t, sender)
    ip4, ip6 = _same_ip(t, t.loc_ip[sender, min(ctx.day, t.days - 1)])
    if outbound:
        dom = _pick(rng, pools.domain_cdf, m)
        n = t.ext_people_by_domain_count[dom]
        first = t.ext_people_by_domain_start[dom] + rng.integers(0, 1 << 30, size=m) % n
        msg = np.repeat(np.arange(m), ctx.k)
        j = np.arange(len(msg)) - np.repeat(np.cumsum(ctx.k) - ctx.k, ctx.k)
        # colleagues of the first recipient; past the end of a small domain, the next domain
        n_ext = len(t.addr) - t.ext_first
        recips = t.ext_first + (first[msg] - t.ext_first + j) % n_ext
        subject, cluster = _subjects(ctx, "out", names.SUBJECTS_OUTBOUND, reply=0.5)
        verdict = np.full(m, verdict_id("outbound_auth"))
    else:
        recips = _spread(ctx, pools.internal, pools.internal_cdf)
        subject, cluster = _subjects(ctx, "intra", names.SUBJECTS_INTERNAL, reply=0.45)
        verdict = np.full(m, verdict_id("intra_auth"))
    att = _attachments(rng, m, 0.22)
    return Msgs(
        p1=p, p1_domain=pd, p2=p, p2_domain=pd,
        display=take(t.arrays["addr_display"], sender),
        sender_objid=take(t.arrays["addr_objid"], sender), ip4=ip4, ip6=ip6,
        subject=subject, cluster=cluster, direction="Outbound" if outbound else "Intra-org",
        verdict=verdict, attachments=att, urls=rng.integers(0, 3, size=m),
        size=_sizes(rng, att, 25000), imid=_imid_outlook(ctx, sender), recipients=recips,
    )


def b_intra_org(ctx: Ctx) -> Msgs:
    return _b_user_submission(ctx, outbound=False)


def b_outbound(ctx: Ctx) -> Msgs:
    return _b_user_submission(ctx, outbound=True)


def b_onprem(ctx: Ctx) -> Msgs:
    t, rng, m, pools = ctx.tenant, ctx.rng, ctx.m, ctx.pools
    sender = pools.onprem[_pick(rng, pools.onprem_cdf, m)]
    p, pd = _addr(t, sender)
    dev = t.devices["hybrid"]
    subject, cluster = _subjects(ctx, "intra", names.SUBJECTS_INTERNAL, reply=0.45)
    att = _attachments(rng, m, 0.22)
    recips = _spread(ctx, pools.internal, pools.internal_cdf)
    helo = t.ips[dev.ips[0]].helo
    return Msgs(
        p1=p, p1_domain=pd, p2=p, p2_domain=pd,
        display=take(t.arrays["addr_display"], sender),
        sender_objid=take(t.arrays["addr_objid"], sender),
        ip4=const(t.ips[dev.ips[0]].ip, m), ip6=const("", m), subject=subject, cluster=cluster,
        direction="Intra-org", verdict=np.full(m, verdict_id("onprem_internal")),
        attachments=att, urls=rng.integers(0, 3, size=m), size=_sizes(rng, att, 30000),
        imid=join("<", hex_strings(rng, m, 32, upper=True), "@", helo, ">"),
        recipients=recips, connectors=t.onprem_connector_name,
    )


def _device_msgs(ctx: Ctx, address: int, ip_idx: np.ndarray, display: pa.Array, subject: pa.Array,
                 cluster: np.ndarray, verdict: np.ndarray, recips: np.ndarray, imid_host: pa.Array,
                 att: np.ndarray, urls: np.ndarray, direction: str = "Inbound",
                 connectors: str = "", size_base: float = 6000) -> Msgs:
    t, m = ctx.tenant, ctx.m
    a = t.addr[address]
    d = t.domain_of(a)
    ip4, ip6 = _same_ip(t, ip_idx)
    return Msgs(
        p1=const(a, m), p1_domain=const(d, m), p2=const(a, m), p2_domain=const(d, m),
        display=display, sender_objid=const(t.addr_objid[address], m), ip4=ip4, ip6=ip6,
        subject=subject, cluster=cluster, direction=direction, verdict=verdict,
        attachments=att, urls=urls, size=_sizes(ctx.rng, att, size_base),
        imid=join("<", hex_strings(ctx.rng, m, 16, upper=True), ".",
                  int_str(ctx.ticks // TICKS_PER_SECOND), "@", imid_host, ">"),
        recipients=recips, connectors=connectors,
    )


def b_printer_registered(ctx: Ctx) -> Msgs:
    t, rng, m, pools = ctx.tenant, ctx.rng, ctx.m, ctx.pools
    pi = rng.integers(0, len(t.printers), size=m)
    name = take(pools.printer_name, pi)
    tpl = pa.array([s.split("{printer}")[0] for s in names.SUBJECTS_SCAN])
    ti = rng.integers(0, len(names.SUBJECTS_SCAN), size=m)
    subject = join(take(tpl, ti), name)
    recips = _spread(ctx, pools.hq, pools.hq_cdf)
    return _device_msgs(ctx, t.special["scan"], pools.printer_ip[pi], name, subject,
                        50_000_000 + ti, np.full(m, verdict_id("ds_spf_pass")), recips,
                        take(pools.printer_host, pi), np.ones(m, dtype=np.int64),
                        np.zeros(m, dtype=np.int64))


def b_printer_unregistered(ctx: Ctx) -> Msgs:
    t, rng, m, pools = ctx.tenant, ctx.rng, ctx.m, ctx.pools
    dev = t.devices["printer_branch"]
    subject = const(f"Message from {dev.name}", m)
    strict = t.profile.dmarc_enforced
    verdict = _verdicts(rng, m, ((spoof_verdict(strict, "inbox"), 0.85),
                                 (spoof_verdict(strict, "junk"), 0.15)))
    recips = _spread(ctx, pools.branch, pools.branch_cdf)
    host = t.ips[dev.ips[0]].ptr
    return _device_msgs(ctx, dev.address, np.full(m, dev.ips[0]), const(dev.name, m), subject,
                        np.full(m, 50_000_100), verdict, recips, const(host, m),
                        np.ones(m, dtype=np.int64), np.zeros(m, dtype=np.int64))


def b_hr_lob(ctx: Ctx) -> Msgs:
    t, rng, m, pools = ctx.tenant, ctx.rng, ctx.m, ctx.pools
    dev = t.devices["hr_lob"]
    subject, cluster = _subjects(ctx, "hr", names.SUBJECTS_HR)
    recips = _spread(ctx, np.arange(t.users), pools.people_cdf)
    return _device_msgs(ctx, dev.address, np.full(m, dev.ips[0]), const(dev.name, m), subject,
                        cluster, np.full(m, verdict_id("ds_spf_pass")), recips,
                        const(t.ips[dev.ips[0]].helo, m), np.zeros(m, dtype=np.int64),
                        rng.integers(1, 3, size=m))


def b_payroll(ctx: Ctx) -> Msgs:
    t, rng, m = ctx.tenant, ctx.rng, ctx.m
    dev = t.devices["hr_lob"]
    # one message per employee, walking the staff list in order (a batch job)
    recips = rng.permutation(t.users)[np.arange(m) % t.users]
    subject = const("Your payslip is available in PeopleWorks", m)
    return _device_msgs(ctx, dev.address, np.full(m, dev.ips[0]), const(dev.name, m), subject,
                        np.full(m, 60_000_001), np.full(m, verdict_id("ds_spf_pass")), recips,
                        const(t.ips[dev.ips[0]].helo, m), np.zeros(m, dtype=np.int64),
                        np.ones(m, dtype=np.int64))


def b_expenses(ctx: Ctx) -> Msgs:
    t, m, pools = ctx.tenant, ctx.m, ctx.pools
    dev = t.devices["expenses_app"]
    subject, cluster = _subjects(ctx, "expenses", names.SUBJECTS_EXPENSES)
    recips = _spread(ctx, np.arange(t.users), pools.people_cdf)
    return _device_msgs(ctx, dev.address, np.full(m, dev.ips[0]), const(dev.name, m), subject,
                        cluster, np.full(m, verdict_id("intra_auth")), recips,
                        const(t.ips[dev.ips[0]].helo, m), np.zeros(m, dtype=np.int64),
                        np.ones(m, dtype=np.int64), direction="Intra-org")


def b_alerts(ctx: Ctx) -> Msgs:
    t, m, pools = ctx.tenant, ctx.m, ctx.pools
    dev = t.devices["alerts"]
    subject, cluster = _subjects(ctx, "alerts", names.SUBJECTS_ALERTS)
    fac = pools.facilities
    recips = _spread(ctx, fac, _cdf(np.r_[4.0, np.ones(len(fac) - 1)]))
    return _device_msgs(ctx, dev.address, np.full(m, dev.ips[0]), const(dev.name, m), subject,
                        cluster, np.full(m, verdict_id("ds_spf_pass")), recips,
                        const(t.ips[dev.ips[0]].ptr, m), np.zeros(m, dtype=np.int64),
                        np.zeros(m, dtype=np.int64), size_base=3000)


def b_helpdesk(ctx: Ctx) -> Msgs:
    t, rng, m, pools = ctx.tenant, ctx.rng, ctx.m, ctx.pools
    dev = t.devices["helpdesk"]
    a = t.addr[dev.address]
    d = t.domain_of(a)
    subject, cluster = _subjects(ctx, "helpdesk", names.SUBJECTS_HELPDESK)
    recips = _spread(ctx, pools.agents, _cdf(np.ones(len(pools.agents))))
    ip_idx = np.array(dev.ips)[rng.integers(0, len(dev.ips), size=m)]
    ip4, ip6 = _same_ip(t, ip_idx)
    p1_dom = f"mail.{HELPDESK_DOMAIN}"
    p1 = join("bounces+", hex_strings(rng, m, 12), "@", p1_dom)
    return Msgs(
        p1=p1, p1_domain=const(p1_dom, m), p2=const(a, m), p2_domain=const(d, m),
        display=const(f"{t.profile.org_name} Support", m), sender_objid=const("", m),
        ip4=ip4, ip6=ip6, subject=subject, cluster=cluster, direction="Inbound",
        verdict=np.full(m, verdict_id("saas_dkim_aligned")),
        attachments=np.zeros(m, dtype=np.int64), urls=rng.integers(2, 6, size=m),
        size=_sizes(rng, np.zeros(m, dtype=np.int64), 22000),
        imid=join("<", hex_strings(rng, m, 12), "_", hex_strings(rng, m, 8), "@",
                  f"helpdesk.{p1_dom}", ">"),
        recipients=recips,
    )


def b_invoiceflow(ctx: Ctx) -> Msgs:
    t, rng, m, pools = ctx.tenant, ctx.rng, ctx.m, ctx.pools
    dev = t.devices["invoiceflow"]
    subject, cluster = _subjects(ctx, "invoice", names.SUBJECTS_INVOICE)
    recips = _spread(ctx, pools.finance, pools.finance_cdf)
    ip_idx = np.array(dev.ips)[rng.integers(0, len(dev.ips), size=m)]
    return _device_msgs(ctx, dev.address, ip_idx, const("InvoiceFlow", m), subject, cluster,
                        np.full(m, verdict_id("partner_connector")), recips,
                        const(t.ips[dev.ips[0]].helo, m), np.ones(m, dtype=np.int64),
                        np.ones(m, dtype=np.int64), connectors=t.partner_connector_name)


def b_newsletter(ctx: Ctx) -> Msgs:
    t, rng, m = ctx.tenant, ctx.rng, ctx.m
    dev = t.devices["newsletter"]
    subject, cluster = _subjects(ctx, "newsletter", names.SUBJECTS_NEWSLETTER)
    recips = rng.permutation(t.users)[np.arange(m) % t.users]
    ip_idx = np.array(dev.ips)[rng.integers(0, len(dev.ips), size=m)]
    return _device_msgs(ctx, dev.address, ip_idx,
                        const(t.addr_display[dev.address], m), subject, cluster,
                        np.full(m, verdict_id("ds_spf_dkim_pass")), recips,
                        const(f"mta.{t.ips[dev.ips[0]].ptr.split('.', 2)[-1]}", m),
                        np.zeros(m, dtype=np.int64), rng.integers(6, 15, size=m),
                        size_base=60000)


def b_surveys(ctx: Ctx) -> Msgs:
    t, rng, m, pools = ctx.tenant, ctx.rng, ctx.m, ctx.pools
    dev = t.devices["surveys"]
    subject, cluster = _subjects(ctx, "survey", names.SUBJECTS_SURVEY)
    recips = _spread(ctx, np.arange(t.users), pools.people_cdf)
    strict = t.profile.dmarc_enforced
    verdict = _verdicts(rng, m, ((spoof_verdict(strict, "saas_inbox"), 0.7),
                                 (spoof_verdict(strict, "saas_junk"), 0.3)))
    ip_idx = np.array(dev.ips)[rng.integers(0, len(dev.ips), size=m)]
    return _device_msgs(ctx, dev.address, ip_idx, const("Employee Pulse", m), subject, cluster,
                        verdict, recips, const(t.ips[dev.ips[0]].helo, m),
                        np.zeros(m, dtype=np.int64), np.ones(m, dtype=np.int64),
                        size_base=18000)


# --- the flows ------------------------------------------------------------------------------


def _payroll_day(t: Tenant, day: int) -> bool:
    """Payroll runs on the 15th and the last day of the month, moved back to Friday when it
    falls on a weekend."""
    d = t.start + timedelta(days=day)
    if d.weekday() >= 5:
        return False
    last = calendar.monthrange(d.year, d.month)[1]
    targets = []
    for dom in (15, last):
        x = d.replace(day=dom)
        while x.weekday() >= 5:
            x -= timedelta(days=1)
        targets.append(x)
    return d in targets


def _survey_active(t: Tenant, day: int) -> bool:
    return day >= int(t.days * 0.55)


def _tue(t: Tenant, day: int) -> bool:
    return (t.start + timedelta(days=day)).weekday() == 1


def _n_cloud(t: Tenant) -> int:
    return int((~t.onprem).sum())


def _n_branch(t: Tenant) -> int:
    return int((t.office == LOC_BRANCH).sum())


ONE = ((1, 1.0),)
FLOWS: tuple[Flow, ...] = (
    Flow("ext_inbound", "ext_inbound", b_ext_inbound, lambda t: 17.0 * t.users, H_EXTERNAL,
         0.25, ((1, 0.82), (2, 0.1), (3, 0.05), (5, 0.03))),
    Flow("intra_org", "authenticated_users", b_intra_org, lambda t: 13.0 * _n_cloud(t),
         H_BUSINESS, 0.06, ((1, 0.5), (2, 0.2), (3, 0.12), (5, 0.1), (9, 0.08))),
    Flow("outbound", "authenticated_users", b_outbound, lambda t: 6.5 * _n_cloud(t),
         H_BUSINESS, 0.05, ((1, 0.75), (2, 0.17), (4, 0.08))),
    Flow("onprem_hybrid", "onprem_hybrid", b_onprem,
         lambda t: 13.0 * int(t.onprem.sum()), H_BUSINESS, 0.06,
         ((1, 0.5), (2, 0.2), (3, 0.12), (5, 0.1), (9, 0.08))),
    Flow("printer_registered", "printer_registered", b_printer_registered,
         lambda t: 7.0 * len(t.printers) + 0.05 * t.users, H_SCAN, 0.02, ONE),
    Flow("printer_unregistered", "printer_unregistered", b_printer_unregistered,
         lambda t: 3.0 + 0.05 * _n_branch(t), H_SCAN, 0.02, ONE),
    Flow("hr_lob", "hr_lob", b_hr_lob, lambda t: 2.0 + 0.05 * t.users, H_BATCH, 0.3,
         ((1, 0.8), (2, 0.2))),
    Flow("hr_payroll", "hr_lob", b_payroll, lambda t: float(t.users), H_PAYROLL, 0.0, ONE,
         active=_payroll_day),
    Flow("expenses_app", "expenses_app", b_expenses, lambda t: 1.0 + 0.04 * t.users,
         H_BUSINESS, 0.0, ((1, 0.7), (2, 0.3))),
    Flow("alerts", "alerts", b_alerts, lambda t: 20.0 + t.users / 40.0, H_FLAT, 1.0,
         ((1, 0.6), (2, 0.3), (3, 0.1)), max_recipients=lambda p: len(p.facilities)),
    Flow("helpdesk_saas", "helpdesk_saas", b_helpdesk, lambda t: 0.25 * t.users, H_BUSINESS,
         0.15, ((1, 0.85), (2, 0.15)), max_recipients=lambda p: len(p.agents)),
    Flow("invoiceflow_partner", "invoiceflow_partner", b_invoiceflow,
         lambda t: 2.0 + 0.06 * t.users, H_BUSINESS, 0.0, ((1, 0.7), (2, 0.3)),
         max_recipients=lambda p: len(p.finance)),
    Flow("newsletter", "newsletter", b_newsletter, lambda t: float(t.users), H_NEWS, 0.0, ONE,
         active=_tue),
    Flow("surveys_saas", "surveys_saas", b_surveys, lambda t: 0.25 * t.users, H_SURVEY, 0.0,
         ONE, active=_survey_active),
)


def flows_for(t: Tenant) -> list[Flow]:
    return [f for f in FLOWS if t.profile.hybrid or f.key != "onprem_hybrid"]


# --- volume layout --------------------------------------------------------------------------


def expected_rows(t: Tenant, flows: list[Flow]) -> np.ndarray:
    """Expected rows per (day, UTC hour, flow)."""
    tz = t.profile.tz_hours
    start_wd = t.start.weekday()
    rates = [f.rate(t) for f in flows]
    lam = np.zeros((t.days, 24, len(flows)))
    for d in range(t.days):
        for h in range(24):
            local = d * 24 + h + tz
            lday, lhour = local // 24, local % 24
            wd = (start_wd + lday) % 7
            for fi, f in enumerate(flows):
                if f.active is not None and not f.active(t, min(max(lday, 0), t.days - 1)):
                    continue
                wf = f.weekdays[wd] if wd < 5 else f.weekend
                lam[d, h, fi] = rates[fi] * wf * f.hours[lhour] / f.hours.sum()
    return lam


@dataclass
class FlowStats:
    """Running totals of one flow for the ground truth."""

    messages: int = 0
    rows: int = 0
    first: int | None = None
    last: int | None = None
    ips: set[str] = field(default_factory=set)
    senders_p1: set[str] = field(default_factory=set)
    senders_p2: set[str] = field(default_factory=set)


@dataclass
class Chunk:
    day: int
    hour0: int
    hour1: int
    table: pa.Table | None
    samples: list[list[dict[str, object]]]


class Traffic:
    """Lays out volumes and yields chunks of benign rows in time order."""

    def __init__(self, t: Tenant, total_rows: int | None, need_to: bool) -> None:
        self.t = t
        self.flows = flows_for(t)
        self.pools = Pools(t)
        self.need_to = need_to
        lam = expected_rows(t, self.flows)
        rng = rng_for(t.seed, t.profile.key, "volumes")
        total = round(float(lam.sum())) if total_rows is None else int(total_rows)
        p = lam.ravel() / lam.sum()
        self.counts = rng.multinomial(total, p).reshape(lam.shape)
        self.total = total
        self.stats: dict[str, FlowStats] = {f.key: FlowStats() for f in self.flows}
        self.vcols = verdict_columns()
        self.bcl = np.array(VERDICT_BCL, dtype=np.int64)
        self.sample_quota = {f.key: 3 for f in self.flows}
        self.next_sample_day = {f.key: 0 for f in self.flows}
        self.delivered = np.array([v.delivery_action == "Delivered" for v in VERDICTS])
        self.onprem_mask: np.ndarray | None = None
        if t.onprem.any():
            self.onprem_mask = np.zeros(len(t.addr), dtype=bool)
            self.onprem_mask[: t.users] = t.onprem

    def blocks(self) -> Iterator[tuple[int, int, int]]:
        """(day, first hour, end hour) blocks of at most MAX_CHUNK_ROWS rows."""
        for d in range(self.t.days):
            per_hour = self.counts[d].sum(axis=1)
            h0 = 0
            acc = 0
            for h in range(24):
                if acc and acc + per_hour[h] > MAX_CHUNK_ROWS:
                    yield d, h0, h
                    h0, acc = h, 0
                acc += int(per_hour[h])
            yield d, h0, 24

    def day_ticks(self, day: int) -> int:
        epoch = (self.t.start - date(1970, 1, 1)).days
        return (epoch + day) * 86400 * TICKS_PER_SECOND

    def chunk(self, day: int, h0: int, h1: int) -> Chunk:
        tables = []
        samples: list[list[dict[str, object]]] = []
        for fi, f in enumerate(self.flows):
            per_hour = self.counts[day, h0:h1, fi]
            rows = int(per_hour.sum())
            if rows == 0:
                continue
            rng = rng_for(self.t.seed, self.t.profile.key, "chunk", day, h0, fi)
            table = self._flow_table(f, fi, rng, day, h0, per_hour, rows)
            tables.append(table)
            if self.sample_quota[f.key] > 0 and day >= self.next_sample_day[f.key]:
                nmid = table.column("NetworkMessageId")[0].as_py()
                mask = pc.equal(table.column("NetworkMessageId"), nmid)
                samples.append(table.filter(mask).to_pylist())
                self.sample_quota[f.key] -= 1
                self.next_sample_day[f.key] = day + max(1, self.t.days // 4)
        table = pa.concat_tables(tables) if tables else row_schema().empty_table()
        return Chunk(day, h0, h1, table, samples)

    def _flow_table(self, f: Flow, fi: int, rng: np.random.Generator, day: int, h0: int,
                    per_hour: np.ndarray, rows: int) -> pa.Table:
        counts = np.array([c for c, _ in f.recipients])
        probs = np.array([p for _, p in f.recipients])
        mean = float((counts * probs).sum())
        k_parts = []
        have = 0
        cap = f.max_recipients(self.pools) if f.max_recipients else None
        while have < rows:
            draw = counts[_pick(rng, _cdf(probs), int((rows - have) / mean * 1.15) + 4)]
            if cap is not None:
                draw = np.minimum(draw, max(1, cap))
            k_parts.append(draw)
            have += int(draw.sum())
        k = np.concatenate(k_parts)
        cum = np.cumsum(k)
        m = int(np.searchsorted(cum, rows) + 1)
        k = k[:m].copy()
        k[-1] -= int(cum[m - 1] - rows)
        start_row = np.cumsum(k) - k
        hour = np.searchsorted(np.cumsum(per_hour), start_row, side="right")
        base = self.day_ticks(day) + (h0 + hour) * HOUR_TICKS
        ticks = np.sort(base + rng.integers(0, HOUR_TICKS, size=m))
        # a few Defender timestamps carry no fraction (KQL drops a zero fraction)
        whole = rng.random(m) < 0.03
        ticks = np.where(whole, ticks - ticks % TICKS_PER_SECOND, ticks)
        order = np.argsort(ticks, kind="stable")
        ticks, whole = ticks[order], whole[order]
        ctx = Ctx(self.t, self.pools, rng, day, m, k, ticks)
        msgs = f.build(ctx)
        table = self._rows(f, fi, rng, ctx, msgs, whole)
        st = self.stats[f.key]
        st.messages += m
        st.rows += rows
        st.first = int(ticks[0]) if st.first is None else min(st.first, int(ticks[0]))
        st.last = int(ticks[-1]) if st.last is None else max(st.last, int(ticks[-1]))
        if len(st.ips) < 64:
            st.ips.update(x for x in pc.unique(msgs.ip4).to_pylist() if x)
            st.ips.update(x for x in pc.unique(msgs.ip6).to_pylist() if x)
        if len(st.senders_p1) < 64:
            st.senders_p1.update(pc.unique(msgs.p1).to_pylist()[:64])
            st.senders_p2.update(pc.unique(msgs.p2).to_pylist()[:64])
        return table

    def _rows(self, f: Flow, fi: int, rng: np.random.Generator, ctx: Ctx, msgs: Msgs,
              whole: np.ndarray) -> pa.Table:
        t = self.t
        m, k = ctx.m, ctx.k
        n = int(k.sum())
        row_msg = np.repeat(np.arange(m), k)
        idx = pa.array(row_msg)
        nmid = guids(rng, m, ctx.ticks)
        ticks_r = ctx.ticks[row_msg]
        verdict_r = msgs.verdict[row_msg]
        vidx = pa.array(verdict_r)
        recips = msgs.recipients
        cols: dict[str, pa.Array] = {}
        cols["Timestamp"] = iso_timestamps(ticks_r, 7, whole[row_msg])
        cols["NetworkMessageId"] = nmid.take(idx)
        cols["InternetMessageId"] = msgs.imid.take(idx)
        cols["SenderMailFromAddress"] = msgs.p1.take(idx)
        cols["SenderFromAddress"] = msgs.p2.take(idx)
        cols["SenderDisplayName"] = msgs.display.take(idx)
        cols["SenderObjectId"] = msgs.sender_objid.take(idx)
        cols["SenderMailFromDomain"] = msgs.p1_domain.take(idx)
        cols["SenderFromDomain"] = msgs.p2_domain.take(idx)
        cols["SenderIPv4"] = msgs.ip4.take(idx)
        cols["SenderIPv6"] = msgs.ip6.take(idx)
        cols["RecipientEmailAddress"] = take(t.arrays["addr"], recips)
        cols["RecipientObjectId"] = take(t.arrays["addr_objid"], recips)
        cols["Subject"] = msgs.subject.take(idx)
        cols["EmailClusterId"] = pa.array(msgs.cluster[row_msg].astype(np.int64))
        cols["EmailDirection"] = const(msgs.direction, n)
        for name, values in self.vcols.items():
            cols[name] = values.take(vidx)
        if self.onprem_mask is not None:
            # mail for mailboxes still on the hybrid server leaves for on-premises
            away = self.onprem_mask[recips] & self.delivered[verdict_r]
            if away.any():
                for name in ("DeliveryLocation", "LatestDeliveryLocation"):
                    cols[name] = where(away, const("On-premises/external", n), cols[name])
        cols["BulkComplaintLevel"] = pa.array(self.bcl[verdict_r])
        cols["AttachmentCount"] = pa.array(msgs.attachments[row_msg].astype(np.int64))
        cols["UrlCount"] = pa.array(msgs.urls[row_msg].astype(np.int64))
        cols["EmailLanguage"] = _langs(ctx).take(idx)
        cols["Connectors"] = const(msgs.connectors, n)
        cols["UserLevelAction"] = const("", n)
        cols["UserLevelPolicy"] = const("", n)
        cols["ReportId"] = join(cols["NetworkMessageId"], "-",
                                int_str(rng.integers(10**17, 10**18, size=n)), "-1")
        cols["AdditionalFields"] = const("", n)
        cols["ThreatNames"] = const("", n)
        data = [cols[c] for c in EE_COLUMNS]
        fc = msgs.first_contact if msgs.first_contact is not None else np.zeros(m, dtype=bool)
        data.extend([
            pa.array(ticks_r),
            pa.array(np.full(n, fi, dtype=np.int32)),
            pa.array(verdict_r.astype(np.int32)),
            pa.array(msgs.size[row_msg]),
            pa.array(fc[row_msg]),
            self._to_json(cols["RecipientEmailAddress"], k, idx) if self.need_to else
            const("", n),
        ])
        return pa.Table.from_arrays(data, schema=row_schema())

    @staticmethod
    def _to_json(recipients: pa.Array, k: np.ndarray, idx: pa.Array) -> pa.Array:
        offsets = np.concatenate([[0], np.cumsum(k)]).astype(np.int32)
        lists = pa.ListArray.from_arrays(pa.array(offsets), recipients)
        joined = pc.binary_join(lists, '","')
        return join('["', joined, '"]').take(idx)
