"""The synthetic tenant: domains, people, mailboxes, devices, services and the outside world.

Everything traffic needs is indexed, so the bulk generator can gather strings by integer
index: one *address table* (people, shared mailboxes, service addresses, external
correspondents) and one *IP table* (offices, devices, partners, correspondents, homes, travel).
Only documentation IP ranges and reserved TLDs are used:

* the tenant's offices and devices: 203.0.113.0/24 and 198.51.100.0/24 (TEST-NET-3/-2);
* external mail servers, SaaS and the shared sending service: 198.18.0.0/15 (benchmarking);
* homes, hotels and mobile networks of staff: 100.64.0.0/10 (shared address space);
* attackers' servers: 192.0.2.0/24 (TEST-NET-1); IPv6 from 2001:db8::/32.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pyarrow as pa

from dsguard.synth import names
from dsguard.synth.config import TenantProfile
from dsguard.synth.vec import rng_for

# Where a staff member works from on a given day.
LOC_HQ, LOC_BRANCH, LOC_HOME, LOC_TRAVEL = 0, 1, 2, 3

SHARED_SERVICE_NAME = "MailRelay Cloud"
SHARED_SERVICE_DOMAIN = "mailrelay.example"
SHARED_SERVICE_SPF = "spf.mailrelay.example"
SHARED_SERVICE_NET = "198.18.16.0/20"
HELPDESK_DOMAIN = "helpdeskcloud.example"
HELPDESK_NET = "198.18.32.0/28"
INVOICE_SAAS_DOMAIN = "invoiceflow.example"
INVOICE_SAAS_NET = "198.51.100.128/28"
SURVEY_SAAS_DOMAIN = "pulsesurvey.example"
SURVEY_SAAS_NET = "198.18.40.0/29"
CORRESPONDENT_NET = "198.19.0.0/16"


@dataclass
class IpInfo:
    ip: str
    country: str
    ptr: str  # "" when there is no reverse DNS
    helo: str
    city: str = ""


@dataclass
class Device:
    """A non-human sender inside or around the tenant (printer, application, service)."""

    key: str
    name: str
    address: int  # address-table index used as P1 and P2
    ips: list[int]  # IP-table indexes
    model: str = ""


@dataclass
class Trip:
    user: int
    first_day: int
    last_day: int
    country: str
    city: str
    ip: int


@dataclass
class Tenant:
    profile: TenantProfile
    seed: int
    start: date
    days: int
    tenant_id: str
    users: int
    # people (index 0..users-1 in the address table)
    first: list[str]
    last: list[str]
    display: list[str]
    dept: list[str]
    office: np.ndarray  # LOC_HQ | LOC_BRANCH
    onprem: np.ndarray  # mailbox still on the hybrid Exchange server
    smtp_auth: np.ndarray  # also submits through SMTP AUTH (legacy client)
    activity: np.ndarray  # relative mail activity, sums to 1
    mbx_host: list[str]  # Exchange Online mailbox server of each cloud user
    ceo: int
    finance: list[int]
    # address table
    addr: list[str]
    addr_display: list[str]
    addr_objid: list[str]
    special: dict[str, int]
    ext_first: int  # first external address
    ext_domain_of: np.ndarray  # per external address: index into ext_domains
    ext_domains: list[str]
    ext_domain_class: np.ndarray  # 0 good, 1 spf-only, 2 M365 tenant, 3 bulk, 4 spammy
    ext_domain_ips: np.ndarray  # (n, 2) IP-table indexes
    ext_domain_ipv6: list[str]  # "" when the domain's servers have no IPv6
    ext_people_by_domain_start: np.ndarray
    ext_people_by_domain_count: np.ndarray
    # IP table
    ips: list[IpInfo]
    ip_index: dict[str, int]
    loc_ip: np.ndarray  # (users, days) IP-table index of where each person works that day
    loc_kind: np.ndarray  # (users, days) LOC_*
    trips: list[Trip]
    devices: dict[str, Device]
    printers: list[Device]
    # Exchange Online host names
    ft_hosts: list[str]
    ca_hosts: list[str]
    onprem_connector_guid: str
    partner_connector_name: str
    onprem_connector_name: str
    open_connector_name: str
    arrays: dict[str, pa.Array] = field(default_factory=dict)

    @property
    def accepted_domains(self) -> list[str]:
        return [self.profile.primary, self.profile.brand, self.profile.initial]

    @property
    def mx_host(self) -> str:
        return self.profile.primary.replace(".", "-") + ".mail.protection.outlook.com"

    def day_date(self, day: int) -> date:
        return self.start + timedelta(days=day)

    def domain_of(self, address: str) -> str:
        return address.rsplit("@", 1)[-1]


def _guid(rng: np.random.Generator) -> str:
    b = rng.integers(0, 256, size=16, dtype=np.uint8).tobytes().hex()
    return f"{b[:8]}-{b[8:12]}-{b[12:16]}-{b[16:20]}-{b[20:]}"


def _host_pool(rng: np.random.Generator, region: str, kind: str, n: int) -> list[str]:
    """Exchange Online server names of the shape seen in real headers."""
    nam = ("BN7", "SN1", "CH2", "MN0", "SA1", "DM6", "BY5", "CO1", "PH0", "IA1", "DS7", "CY4")
    eur = ("DB5", "AM6", "VI1", "PA4", "DU2", "AS8", "GV1", "FR4", "AM4", "DB8", "PR3", "VE1")
    prefixes = nam if region == "nam" else eur
    out: list[str] = []
    for _ in range(n):
        p = prefixes[int(rng.integers(0, len(prefixes)))]
        a = int(rng.integers(1, 20))
        b = int(rng.integers(1, 200))
        if kind == "FT":
            zone = "NAM" if region == "nam" else "EUR"
            out.append(f"{p}{zone}{a:02d}FT{b:03d}")
        elif kind == "CA":
            out.append(f"{p}PR{a:02d}CA{b:04d}")
        else:
            out.append(f"{p}PR{a:02d}MB{int(rng.integers(1000, 9999))}")
    return out


def exo_domain(host: str, region: str, kind: str) -> str:
    """The FQDN of an Exchange Online host name from ``_host_pool``."""
    if kind == "FT":
        zone = host[3:8]  # NAM10 / EUR01
        return f"{host}.eop-{zone.lower() if region == 'nam' else zone}.prod.protection.outlook.com"
    num = host[5:7]
    return f"{host}.{'namprd' if region == 'nam' else 'eurprd'}{num}.prod.outlook.com"


def _ip_add(base: str, offset: int) -> str:
    return str(ipaddress.IPv4Address(base) + offset)


def scaled_users(base_users: int, rows: int | None, days: int) -> int:
    """How many people a tenant needs so that ``rows`` EmailEvents rows over ``days`` keep a
    realistic volume per person (about 37 rows per person per working day)."""
    if rows is None:
        return base_users
    per_user = 37.0 * (days * 5 / 7) + 5.5 * (days * 2 / 7)
    return max(base_users, int(rows / max(per_user, 1.0)))


def build_tenant(profile: TenantProfile, users: int, days: int, start: date, seed: int) -> Tenant:
    """Create the tenant deterministically from the profile and the seed."""
    rng = rng_for(seed, profile.key, "tenant")
    ips: list[IpInfo] = []
    ip_index: dict[str, int] = {}

    def add_ip(ip: str, country: str, ptr: str, helo: str, city: str = "") -> int:
        if ip in ip_index:
            return ip_index[ip]
        ip_index[ip] = len(ips)
        ips.append(IpInfo(ip, country, ptr, helo, city))
        return ip_index[ip]

    p = profile
    net = p.net

    # --- people --------------------------------------------------------------------------
    first: list[str] = []
    last: list[str] = []
    seen: set[str] = set()
    for _ in range(users):
        while True:
            f = names.FIRST_NAMES[int(rng.integers(0, len(names.FIRST_NAMES)))]
            ln = names.LAST_NAMES[int(rng.integers(0, len(names.LAST_NAMES)))]
            local = f"{f}.{ln}".lower()
            if local not in seen:
                break
            local2 = f"{local}{int(rng.integers(2, 99))}"
            if local2 not in seen:
                local = local2
                break
        seen.add(local)
        first.append(f)
        last.append(ln)
    display = [f"{f} {ln}" for f, ln in zip(first, last, strict=True)]
    dept_names = [d for d, _ in names.DEPARTMENTS]
    dept_w = np.array([w for _, w in names.DEPARTMENTS])
    dept_idx = rng.choice(len(dept_names), size=users, p=dept_w / dept_w.sum())
    dept = [dept_names[i] for i in dept_idx]
    ceo = 0
    dept[ceo] = "Executive"
    n_fin = max(3, users // 25)
    finance = list(range(1, 1 + n_fin))
    for i in finance:
        dept[i] = "Finance"
    office = (rng.random(users) < 0.22).astype(np.int8)  # 22 % work at the branch office
    office[: 1 + n_fin] = LOC_HQ
    onprem = np.zeros(users, dtype=bool)
    if p.hybrid:
        onprem = rng.random(users) < 0.12
        onprem[: 1 + n_fin] = False
    smtp_auth = (rng.random(users) < 0.025) & ~onprem
    if not smtp_auth.any():
        smtp_auth[users - 1] = not onprem[users - 1]
    activity = rng.lognormal(0.0, 0.6, size=users)
    activity[ceo] *= 1.5
    activity /= activity.sum()

    # addresses of people: most on the primary domain, a few on the brand domain
    brand_mask = rng.random(users) < 0.1
    brand_mask[: 1 + n_fin] = False
    addr: list[str] = []
    addr_display: list[str] = []
    addr_objid: list[str] = []
    local_parts: list[str] = []
    seen.clear()
    for i in range(users):
        local = f"{first[i]}.{last[i]}".lower()
        k = 2
        base = local
        while local in seen:
            local = f"{base}{k}"
            k += 1
        seen.add(local)
        local_parts.append(local)
        dom = p.brand if brand_mask[i] else p.primary
        addr.append(f"{local}@{dom}")
        addr_display.append(display[i])
        addr_objid.append(_guid(rng))

    special: dict[str, int] = {}

    def add_addr(key: str, address: str, disp: str, objid: bool = True) -> int:
        special[key] = len(addr)
        addr.append(address)
        addr_display.append(disp)
        addr_objid.append(_guid(rng) if objid else "")
        return special[key]

    d = p.primary
    # shared mailboxes (receive mail, never sign in)
    add_addr("info", f"info@{d}", f"{p.org_name} Info")
    add_addr("accounts", f"accounts@{d}", "Accounts Payable")
    add_addr("hr", f"hr@{d}", "Human Resources")
    add_addr("support", f"support@{d}", f"{p.org_name} Support")
    add_addr("facilities", f"facilities@{d}", "Facilities Team")
    add_addr("itsupport", f"it-support@{d}", "IT Service Desk")
    # service addresses used by devices and applications
    add_addr("scan", f"scan@{d}", "Scanner")
    add_addr("scan_branch", f"scan.{p.branch_city.lower()}@{d}", f"{p.branch_city} Scanner")
    add_addr("hr_notify", f"hr-notify@{d}", "PeopleWorks HR")
    add_addr("alerts", f"alerts@{d}", "Building Management")
    add_addr("news", f"news@{d}", f"{p.org_name} Internal Communications")
    add_addr("invoices", f"invoices@{d}", "InvoiceFlow")
    add_addr("surveys", f"surveys@{d}", "Employee Pulse")
    add_addr("svc_expenses", f"svc-expenses@{d}", "Expenses (service account)")
    add_addr("fax", f"fax@{d}", "Fax Gateway")
    add_addr("noreply", f"noreply@{d}", p.org_name)
    ext_first = len(addr)

    # --- IP table: the tenant's own network ---------------------------------------------
    org = p.short
    hq_city = p.hq_city
    egress = [add_ip(ip, p.country, f"gw{i + 1}.{org}-{hq_city.lower()}.{d}", "", hq_city)
              for i, ip in enumerate(net.hq_egress)]
    branch_ip = add_ip(net.branch_egress, p.country,
                       f"fw.{p.branch_city.lower()}.{d}", "", p.branch_city)
    n_printers = int(np.clip(users // 60, 2, 12))
    printer_models = ("MFP-C450i", "MFP-M578", "MFP-IM3000", "MFP-C405")
    printers: list[Device] = []
    for i in range(n_printers):
        ip = _ip_add(net.printer_base, i)
        floor = i + 1
        name = f"HQ-{floor}F-MFP"
        model = printer_models[i % len(printer_models)]
        idx = add_ip(ip, p.country, f"mfp-{floor}f.{hq_city.lower()}.{d}", name.lower(), hq_city)
        printers.append(Device(f"printer{i}", name, special["scan"], [idx], model))
    devices: dict[str, Device] = {}
    devices["printer_branch"] = Device(
        "printer_branch", f"{p.branch_city[:3].upper()}-MFP-01", special["scan_branch"],
        [branch_ip], "MFP-C300i")
    devices["hr_lob"] = Device(
        "hr_lob", "PeopleWorks HR", special["hr_notify"],
        [add_ip(net.lob_hr_ip, p.country, f"hrapp01.{d}", f"hrapp01.{d}", hq_city)])
    devices["expenses_app"] = Device(
        "expenses_app", "Expenses", special["svc_expenses"],
        [add_ip(net.smtp_app_ip, p.country, f"expenses01.{d}", f"expenses01.{d}", hq_city)])
    devices["alerts"] = Device(
        "alerts", "Building Management", special["alerts"],
        [add_ip(net.alerts_ip, p.country, f"bms01.{d}", "BMS01", hq_city)])
    devices["fax"] = Device(
        "fax", "Fax Gateway", special["fax"],
        [add_ip(net.fax_ip, p.country, f"fax01.{d}", f"fax01.{d}", hq_city)])
    if net.hybrid_ip:
        devices["hybrid"] = Device(
            "hybrid", "EXCH01", -1,
            [add_ip(net.hybrid_ip, p.country, f"mail.{d}", f"EXCH01.corp.{d}", hq_city)])
    # SaaS and the shared sending service
    mr = ipaddress.IPv4Network(SHARED_SERVICE_NET)
    devices["newsletter"] = Device(
        "newsletter", SHARED_SERVICE_NAME, special["news"],
        [add_ip(str(mr[261 + i * 7]), "US", f"o{i + 1}.ptr{300 + i}.{SHARED_SERVICE_DOMAIN}",
                f"o{i + 1}.ptr{300 + i}.{SHARED_SERVICE_DOMAIN}") for i in range(4)])
    hd = ipaddress.IPv4Network(HELPDESK_NET)
    devices["helpdesk"] = Device(
        "helpdesk", "HelpDesk Cloud", special["support"],
        [add_ip(str(hd[2 + i]), "US", f"out{i + 1}.mail.{HELPDESK_DOMAIN}",
                f"out{i + 1}.mail.{HELPDESK_DOMAIN}") for i in range(3)])
    inv = ipaddress.IPv4Network(INVOICE_SAAS_NET)
    devices["invoiceflow"] = Device(
        "invoiceflow", "InvoiceFlow", special["invoices"],
        [add_ip(str(inv[4 + i]), "IE", f"smtp{i + 1}.{INVOICE_SAAS_DOMAIN}",
                f"smtp{i + 1}.{INVOICE_SAAS_DOMAIN}") for i in range(2)])
    sv = ipaddress.IPv4Network(SURVEY_SAAS_NET)
    devices["surveys"] = Device(
        "surveys", "PulseSurvey", special["surveys"],
        [add_ip(str(sv[2 + i]), "US", f"send{i + 1}.{SURVEY_SAAS_DOMAIN}",
                f"send{i + 1}.{SURVEY_SAAS_DOMAIN}") for i in range(2)])

    # the source of a little password spraying seen in the sign-in logs
    devices["spray"] = Device("spray", "password spray", -1, [add_ip("192.0.2.250", "CN", "", "")])

    # --- external correspondents ---------------------------------------------------------
    n_domains = int(min(20000, 60 + users * 3))
    combos = [(a, b) for a in names.ORG_WORDS_A for b in names.ORG_WORDS_B]
    order = rng.permutation(len(combos))
    ext_domains: list[str] = []
    used: set[str] = set()
    i = 0
    while len(ext_domains) < n_domains:
        a, b = combos[int(order[i % len(order)])]
        suffix = "" if i < len(order) else str(i // len(order) + 1)
        tld = "example" if (i % 3) else "test"
        name = f"{a}{b}{suffix}.{tld}"
        if name not in used:
            used.add(name)
            ext_domains.append(name)
        i += 1
    # a few large mailbox providers take a share of all external mail
    providers = ["mailbox.example", "inbox.test", "postbox.example"]
    ext_domains[:3] = providers
    dom_class = rng.choice(5, size=n_domains, p=[0.55, 0.17, 0.18, 0.06, 0.04]).astype(np.int8)
    dom_class[:3] = 0
    cnet = ipaddress.IPv4Network(CORRESPONDENT_NET)
    dom_ips = np.zeros((n_domains, 2), dtype=np.int64)
    dom_v6: list[str] = []
    for j, dom in enumerate(ext_domains):
        country = names.COUNTRIES_EXTERNAL[int(rng.integers(0, len(names.COUNTRIES_EXTERNAL)))]
        if dom_class[j] == 2:
            # mail from another Microsoft 365 tenant arrives from Microsoft's outbound range;
            # modelled in the correspondents' block with outlook-style PTRs
            ptrs = [f"mail-{k}.outbound.protection.{dom}" for k in ("a", "b")]
        elif j < 3:
            ptrs = [f"mta{k}.{dom}" for k in (1, 2)]
        else:
            ptrs = [f"mail.{dom}", f"mx2.{dom}"]
        for k in range(2):
            ip = str(cnet[(j * 3 + k) % (cnet.num_addresses - 2) + 1])
            no_ptr = dom_class[j] == 4 and k == 1
            dom_ips[j, k] = add_ip(ip, country, "" if no_ptr else ptrs[k], ptrs[k])
        dom_v6.append(f"2001:db8:{j // 65536 + 0x100:x}:{j % 65536:x}::25"
                      if (j < 3 or dom_class[j] == 2) else "")
    people_count = rng.integers(1, 7, size=n_domains)
    people_count[:3] = max(20, users // 2)
    starts = np.concatenate([[0], np.cumsum(people_count)[:-1]])
    ext_domain_of = np.repeat(np.arange(n_domains), people_count)
    for j, dom in enumerate(ext_domains):
        for k in range(int(people_count[j])):
            fi = (j * 7 + k * 13 + int(rng.integers(0, 50))) % len(names.FIRST_NAMES)
            li = (j * 11 + k * 5 + int(rng.integers(0, 50))) % len(names.LAST_NAMES)
            f = names.FIRST_NAMES[fi]
            ln = names.LAST_NAMES[li]
            if dom_class[j] == 3:
                local, disp = ("newsletter", dom.split(".")[0].title()) if k == 0 else (
                    f"news{k}", f"{dom.split('.')[0].title()} Updates")
            elif j < 3:
                local, disp = f"{f.lower()}.{ln.lower()}{k}", f"{f} {ln}"
            else:
                local, disp = f"{f[0].lower()}{ln.lower()}", f"{f} {ln}"
            addr.append(f"{local}@{dom}")
            addr_display.append(disp)
            addr_objid.append("")
    # make external addresses unique (two people with the same initials and surname)
    seen_ext: dict[str, int] = {}
    for j in range(ext_first, len(addr)):
        a = addr[j]
        if a in seen_ext:
            seen_ext[a] += 1
            local, dom = a.split("@")
            addr[j] = f"{local}{seen_ext[a]}@{dom}"
        else:
            seen_ext[a] = 1

    # --- where people are each day: office, home, travel --------------------------------
    home_net = ipaddress.IPv4Network("100.64.0.0/12")
    home_ip = np.array([add_ip(str(home_net[(u * 7919) % (home_net.num_addresses - 2) + 1]),
                               p.country, f"cpe-{u}.res.isp.example", "", p.hq_city)
                        for u in range(users)], dtype=np.int64)
    loc_kind = np.full((users, days), LOC_HOME, dtype=np.int8)
    weekday = np.array([(start + timedelta(days=k)).weekday() < 5 for k in range(days)])
    in_office = rng.random((users, days)) < 0.68
    office_b = np.broadcast_to(office[:, None], (users, days))
    loc_kind = np.where(weekday[None, :] & in_office, office_b, loc_kind).astype(np.int8)
    loc_ip = np.where(loc_kind == LOC_HQ,
                      np.where(rng.random((users, days)) < 0.5, egress[0], egress[-1]),
                      np.where(loc_kind == LOC_BRANCH, branch_ip, home_ip[:, None]))
    trips: list[Trip] = []
    travel_net = ipaddress.IPv4Network("100.96.0.0/12")
    n_trav = max(2, users // 18)
    # the CEO travels too: authenticated mail from abroad is the benign twin of CEO fraud
    others = rng.choice(np.arange(1, users), size=min(n_trav - 1, users - 1), replace=False)
    for t, u in enumerate([ceo, *sorted(int(x) for x in others)]):
        length = int(rng.integers(2, 7))
        first_day = int(rng.integers(0, max(1, days - length + 1)))
        last_day = min(days - 1, first_day + length - 1)
        country, city = names.COUNTRIES_TRAVEL[int(rng.integers(0, len(names.COUNTRIES_TRAVEL)))]
        ip = add_ip(str(travel_net[(t * 104729) % (travel_net.num_addresses - 2) + 1]),
                    country, f"guest-{t}.hotel-wifi.example", "", city)
        trips.append(Trip(u, first_day, last_day, country, city, ip))
        loc_kind[u, first_day:last_day + 1] = LOC_TRAVEL
        loc_ip[u, first_day:last_day + 1] = ip

    region = p.region
    tenant = Tenant(
        profile=p,
        seed=seed,
        start=start,
        days=days,
        tenant_id=_guid(rng),
        users=users,
        first=first,
        last=last,
        display=display,
        dept=dept,
        office=office,
        onprem=onprem,
        smtp_auth=smtp_auth,
        activity=activity,
        mbx_host=_host_pool(rng, region, "MB", users),
        ceo=ceo,
        finance=finance,
        addr=addr,
        addr_display=addr_display,
        addr_objid=addr_objid,
        special=special,
        ext_first=ext_first,
        ext_domain_of=ext_domain_of,
        ext_domains=ext_domains,
        ext_domain_class=dom_class,
        ext_domain_ips=dom_ips,
        ext_domain_ipv6=dom_v6,
        ext_people_by_domain_start=starts.astype(np.int64) + ext_first,
        ext_people_by_domain_count=people_count.astype(np.int64),
        ips=ips,
        ip_index=ip_index,
        loc_ip=loc_ip.astype(np.int64),
        loc_kind=loc_kind,
        trips=trips,
        devices=devices,
        printers=printers,
        ft_hosts=_host_pool(rng, region, "FT", 12),
        ca_hosts=_host_pool(rng, region, "CA", 12),
        onprem_connector_guid=_guid(rng),
        partner_connector_name="InvoiceFlow (IP restricted)",
        onprem_connector_name="",
        open_connector_name="Partner relay - legacy filtering vendor",
    )
    tenant.onprem_connector_name = f"Inbound from {tenant.onprem_connector_guid}"
    tenant.arrays = {
        "addr": pa.array(addr, type=pa.string()),
        "addr_display": pa.array(addr_display, type=pa.string()),
        "addr_objid": pa.array(addr_objid, type=pa.string()),
        "addr_domain": pa.array([a.rsplit("@", 1)[1] for a in addr], type=pa.string()),
        "ip": pa.array([i.ip for i in ips], type=pa.string()),
        "mbx_host": pa.array(tenant.mbx_host, type=pa.string()),
        "ext_ipv6": pa.array(dom_v6, type=pa.string()),
    }
    return tenant
