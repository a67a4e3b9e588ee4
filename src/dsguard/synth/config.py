"""Public configuration of the generator, its summary, and the tenant profiles behind shapes.

A *shape* decides both the file format of the mail telemetry and which tenant is generated,
so a second shape is a genuinely different tenant (other domains, time zone, cloud-only vs
hybrid, other planted misconfigurations and campaign proportions), not a re-seeded copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

DEFAULT_START = date(2026, 11, 1)

SHAPES: tuple[str, ...] = ("default", "sentinel", "jsonl", "hunting")


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. ``rows`` is a target number of EmailEvents rows (None: the natural
    volume of ``users`` × ``days``); with a large target the tenant grows to keep volumes per
    person realistic."""

    users: int = 200
    days: int = 30
    seed: int = 7
    rows: int | None = None
    shape: str = "default"
    start: date | None = None

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; expected one of {', '.join(SHAPES)}")
        if self.users < 5:
            raise ValueError("users must be at least 5")
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if self.rows is not None and self.rows < 1:
            raise ValueError("rows must be positive")

    @property
    def start_date(self) -> date:
        return self.start or DEFAULT_START


@dataclass
class SynthSummary:
    """What a run wrote: files (relative to the bundle), rows per file, campaign sizes."""

    out: str
    tenant: str
    shape: str
    users: int
    days: int
    start: str
    files: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    campaigns: dict[str, int] = field(default_factory=dict)  # campaign id -> messages
    campaign_rows: int = 0
    email_events_rows: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class NetworkPlan:
    """Where the tenant's own mail comes from (documentation ranges only)."""

    hq_net: str  # published in SPF
    hq_egress: tuple[str, ...]
    printer_base: str  # first registered printer; the rest follow
    hybrid_ip: str | None
    lob_hr_ip: str
    smtp_app_ip: str
    alerts_ip: str
    fax_ip: str
    branch_egress: str  # NOT in SPF: the unregistered branch printer fails SPF here
    relay_appliance_ip: str  # another organisation's unsecured gateway


@dataclass(frozen=True)
class TenantProfile:
    key: str
    org_name: str
    short: str
    primary: str
    brand: str
    initial: str
    tz_hours: int
    country: str
    hq_city: str
    branch_city: str
    region: str  # "nam" | "eur": shapes Exchange Online host names
    hybrid: bool
    languages: tuple[tuple[str, float], ...]
    net: NetworkPlan
    campaign_scale: dict[str, float]
    trace_format: str  # "v2" (Get-MessageTraceV2 | Export-Csv) | "eac" (UTF-16 report)
    smtp_auth_disabled: bool
    dmarc_primary: str
    dmarc_brand: str
    spf_all: str  # the SPF "all" qualifier of the primary domain
    scl_rule_field: str  # how the planted SCL -1 rule names our domain
    ip_allow_list: tuple[str, ...] = ()
    enable_safe_list: bool = False
    reject_direct_send: bool | None = False

    @property
    def dmarc_enforced(self) -> bool:
        """Whether the primary domain's DMARC policy asks receivers to act (not p=none)."""
        return "p=none" not in self.dmarc_primary


CONTOSO = TenantProfile(
    key="contoso",
    org_name="Contoso Pharma",
    short="contoso",
    primary="contoso.example",
    brand="contosohealth.example",
    initial="contosopharma.onmicrosoft.example",
    tz_hours=-5,
    country="US",
    hq_city="Boston",
    branch_city="Hartford",
    region="nam",
    hybrid=True,
    languages=(("en", 0.97), ("es", 0.03)),
    net=NetworkPlan(
        hq_net="203.0.113.0/26",
        hq_egress=("203.0.113.5", "203.0.113.6"),
        printer_base="203.0.113.10",
        hybrid_ip="203.0.113.25",
        lob_hr_ip="203.0.113.40",
        smtp_app_ip="203.0.113.41",
        alerts_ip="203.0.113.45",
        fax_ip="203.0.113.60",
        branch_egress="198.51.100.14",
        relay_appliance_ip="198.51.100.201",
    ),
    campaign_scale={
        "self_send_lure": 1.0,
        "header_spoof_bec": 1.0,
        "spf_include_abuse": 1.0,
        "service_identity_misuse": 1.0,
        "low_and_slow_nonexistent": 1.0,
        "third_party_relay_burst": 1.0,
    },
    trace_format="v2",
    smtp_auth_disabled=False,
    dmarc_primary="v=DMARC1; p=none; rua=mailto:dmarc-reports@contoso.example; fo=1",
    dmarc_brand="v=DMARC1; p=reject; pct=100; rua=mailto:dmarc-reports@contoso.example",
    spf_all="~all",
    scl_rule_field="SenderDomainIs",
)

FABRIKAM = TenantProfile(
    key="fabrikam",
    org_name="Fabrikam Logistics",
    short="fabrikam",
    primary="fabrikam.test",
    brand="fabrikamfreight.test",
    initial="fabrikamgroup.onmicrosoft.test",
    tz_hours=1,
    country="NL",
    hq_city="Rotterdam",
    branch_city="Antwerp",
    region="eur",
    hybrid=False,
    languages=(("en", 0.55), ("nl", 0.3), ("de", 0.15)),
    net=NetworkPlan(
        hq_net="198.51.100.64/26",
        hq_egress=("198.51.100.69", "198.51.100.70"),
        printer_base="198.51.100.74",
        hybrid_ip=None,
        lob_hr_ip="198.51.100.104",
        smtp_app_ip="198.51.100.105",
        alerts_ip="198.51.100.109",
        fax_ip="198.51.100.124",
        branch_egress="203.0.113.140",
        relay_appliance_ip="198.51.100.217",
    ),
    campaign_scale={
        "self_send_lure": 2.5,
        "header_spoof_bec": 0.5,
        "spf_include_abuse": 0.4,
        "service_identity_misuse": 1.5,
        "low_and_slow_nonexistent": 2.0,
        "third_party_relay_burst": 3.0,
    },
    trace_format="eac",
    smtp_auth_disabled=True,
    dmarc_primary="v=DMARC1; p=quarantine; pct=20; rua=mailto:dmarc@fabrikam.test",
    dmarc_brand="v=DMARC1; p=reject; rua=mailto:dmarc@fabrikam.test",
    spf_all="-all",
    scl_rule_field="FromAddressContainsWords",
    ip_allow_list=("198.51.100.217",),
    enable_safe_list=True,
    reject_direct_send=None,
)

SHAPE_PROFILES: dict[str, TenantProfile] = {
    "default": CONTOSO,
    "jsonl": CONTOSO,
    "sentinel": FABRIKAM,
    "hunting": FABRIKAM,
}
