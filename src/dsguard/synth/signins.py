"""Entra ID sign-ins of the people and service accounts that really send mail.

Graph ``auditLogs/signIns`` pages, newest first, 1,000 per page, one page per line with its
``@odata.nextLink``. Every person signs in where they work that day (office, home, hotel
abroad), so their authenticated mail and their sign-ins agree on IP and country; legacy-client
users and the expenses service account add ``Authenticated SMTP`` sign-ins. Spoofed and
non-existent senders never sign in: the absence is the signal.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from dsguard.synth.entities import LOC_TRAVEL, Tenant
from dsguard.synth.vec import TICKS_PER_SECOND, rng_for

PAGE = 1000
EXO_APP = ("Office 365 Exchange Online", "00000002-0000-0ff1-ce00-000000000000")
APPS = (
    ("Microsoft Office", "d3590ed6-52b3-4102-aeff-aad2292ab01c", "Mobile Apps and Desktop clients"),
    ("Microsoft Teams", "1fec8e78-bce4-4aaf-ab1b-5451cc387264", "Mobile Apps and Desktop clients"),
    ("OfficeHome", "4765445b-32c6-49b0-83e6-1d93765276ca", "Browser"),
    ("Outlook Mobile", "27922004-5251-4030-b22d-91ecd9a37ea4", "Mobile Apps and Desktop clients"),
    ("One Outlook Web", "9199bf20-a13f-4107-85dc-02114787ef48", "Browser"),
)
_GEO = {
    "Boston": (42.36, -71.06), "Hartford": (41.76, -72.69), "Rotterdam": (51.92, 4.48),
    "Antwerp": (51.22, 4.40), "London": (51.51, -0.13), "Frankfurt am Main": (50.11, 8.68),
    "Paris": (48.86, 2.35), "Tokyo": (35.68, 139.69), "Singapore": (1.35, 103.82),
    "Sao Paulo": (-23.55, -46.63), "Bengaluru": (12.97, 77.59), "Toronto": (43.65, -79.38),
    "Mexico City": (19.43, -99.13), "Madrid": (40.42, -3.70), "Sydney": (-33.87, 151.21),
    "Dubai": (25.20, 55.27),
}
_DEVICES = (
    ("Edge 130.0.0", "Windows10", True),
    ("Chrome 131.0.0", "Windows10", True),
    ("Safari 18.1", "MacOs", False),
    ("Mobile Safari 18.1", "Ios", False),
    ("Chrome Mobile 131.0", "Android", False),
)


def _iso(ticks: int) -> str:
    secs = ticks // TICKS_PER_SECOND
    return f"{np.datetime_as_string(np.datetime64(secs, 's'), unit='s')}Z"


class _SignIns:
    def __init__(self, t: Tenant, day: int) -> None:
        self.t = t
        self.rng = rng_for(t.seed, t.profile.key, "signins", day)
        self.items: list[tuple[int, dict[str, Any]]] = []
        self.epoch_day = (t.start - date(1970, 1, 1)).days
        self.office_ips = {t.ip_index[x] for x in t.profile.net.hq_egress}

    def guid(self) -> str:
        b = self.rng.integers(0, 256, size=16).astype("uint8").tobytes().hex()
        return f"{b[:8]}-{b[8:12]}-{b[12:16]}-{b[16:20]}-{b[20:]}"

    def ticks(self, day: int, local_hour: float) -> int:
        secs = (self.epoch_day + day) * 86400 + int((local_hour - self.t.profile.tz_hours) * 3600)
        return secs * TICKS_PER_SECOND

    def add(self, ticks: int, addr: int, ip_idx: int, app: tuple[str, str, str],
            device: tuple[str, str, bool], error: int = 0) -> None:
        t = self.t
        info = t.ips[ip_idx]
        lat, lon = _GEO.get(info.city, (0.0, 0.0))
        upn = t.addr[addr]
        managed = device[2] and ip_idx in self.office_ips
        item = {
            "id": self.guid(),
            "createdDateTime": _iso(ticks),
            "userDisplayName": t.addr_display[addr],
            "userPrincipalName": upn.lower(),
            "userId": t.addr_objid[addr],
            "appId": app[1],
            "appDisplayName": app[0],
            "ipAddress": info.ip,
            "clientAppUsed": app[2],
            "correlationId": self.guid(),
            "conditionalAccessStatus": "notApplied" if app[2] == "Authenticated SMTP" else
            "success",
            "isInteractive": True,
            "riskDetail": "none",
            "riskLevelAggregated": "none",
            "riskLevelDuringSignIn": "none",
            "riskState": "none",
            "riskEventTypes": [],
            "riskEventTypes_v2": [],
            "resourceDisplayName": EXO_APP[0],
            "resourceId": EXO_APP[1],
            "status": {"errorCode": error,
                       "failureReason": "Other." if error == 0 else
                       "Invalid username or password or Invalid on-premise username or password.",
                       "additionalDetails": None if error == 0 else
                       "The user didn't enter the right credentials."},
            "deviceDetail": {"deviceId": "", "displayName": "", "operatingSystem": device[1],
                             "browser": device[0], "isCompliant": bool(managed),
                             "isManaged": bool(managed), "trustType": "Azure AD joined"
                             if managed else ""},
            "location": {"city": info.city, "state": "", "countryOrRegion": info.country,
                         "geoCoordinates": {"altitude": None, "latitude": lat,
                                            "longitude": lon}},
            "appliedConditionalAccessPolicies": [],
        }
        self.items.append((ticks, item))


def _day(t: Tenant, d: int) -> list[dict[str, Any]]:
    """The sign-ins of one day, newest first."""
    s = _SignIns(t, d)
    rng = s.rng
    smtp_app = (EXO_APP[0], EXO_APP[1], "Authenticated SMTP")
    weekend = (t.start + timedelta(days=d)).weekday() >= 5
    devices = rng_for(t.seed, t.profile.key, "devices").integers(0, len(_DEVICES), size=t.users)
    for u in range(t.users):
        dev = _DEVICES[int(devices[u])]
        travelling = t.loc_kind[u, d] == LOC_TRAVEL
        if weekend and not travelling and rng.random() > 0.12:
            continue
        ip = int(t.loc_ip[u, d])
        for _ in range(int(rng.integers(1, 3))):
            app = APPS[int(rng.integers(0, len(APPS)))]
            s.add(s.ticks(d, float(rng.uniform(7.0, 17.5))) + int(rng.integers(0, 10**7)),
                  u, ip, app, dev)
        if t.smtp_auth[u]:
            s.add(s.ticks(d, float(rng.uniform(8.0, 17.0))), u, ip, smtp_app, dev)
    if not weekend:
        svc = t.special["svc_expenses"]
        svc_ip = t.devices["expenses_app"].ips[0]
        for _ in range(int(rng.integers(2, 6))):
            s.add(s.ticks(d, float(rng.uniform(7.0, 18.0))), svc, svc_ip, smtp_app,
                  ("", "", False))
    # a little password spraying against random people, unrelated to any mail
    if rng.random() < 0.5:
        spray = t.devices["spray"].ips[0]
        for _ in range(max(1, t.users // 150)):
            s.add(s.ticks(d, float(rng.uniform(0.0, 24.0))), int(rng.integers(0, t.users)),
                  spray, smtp_app, ("", "", False), error=50126)
    s.items.sort(key=lambda x: (-x[0], x[1]["id"]))
    return [item for _, item in s.items]


def write_signins(t: Tenant, out: Path) -> int:
    """Write the pages, newest day first; only one day of sign-ins is held at a time."""
    ctx = "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns"
    rng = rng_for(t.seed, t.profile.key, "signin-pages")
    total = 0
    pending: list[dict[str, Any]] = []
    with (out / "signins.json").open("w", encoding="utf-8") as f:

        def emit(items: list[dict[str, Any]], last: bool) -> None:
            page: dict[str, Any] = {"@odata.context": ctx, "value": items}
            if not last:
                token = rng.integers(0, 256, size=24).astype("uint8").tobytes().hex()
                page["@odata.nextLink"] = (f"https://graph.microsoft.com/v1.0/auditLogs/signIns"
                                           f"?$top={PAGE}&$skiptoken={token}")
            f.write(json.dumps(page, separators=(",", ":"), ensure_ascii=False))
            f.write("\n")

        for d in reversed(range(t.days)):
            items = _day(t, d)
            total += len(items)
            pending.extend(items)
            while len(pending) > PAGE:
                emit(pending[:PAGE], last=False)
                pending = pending[PAGE:]
        emit(pending, last=True)
    return total
