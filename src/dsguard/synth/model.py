"""The row shape the generator works in, and the verdicts Exchange Online stamps on mail.

Rows use Microsoft's ``EmailEvents`` column names (``EE_COLUMNS``) plus a few internal columns
(prefixed ``_``) that writers drop: the exact time in 100 ns ticks, the flow or campaign the
row belongs to, and the verdict it was given. A *verdict* bundles everything filtering decided
about a message (authentication results, delivery, detection methods, the spam-report fields
that end up in headers), so one index per message keeps table columns and ``.eml`` headers in
agreement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pyarrow as pa

# Defender XDR Advanced Hunting EmailEvents, in the portal's column order.
EE_COLUMNS: tuple[str, ...] = (
    "Timestamp",
    "NetworkMessageId",
    "InternetMessageId",
    "SenderMailFromAddress",
    "SenderFromAddress",
    "SenderDisplayName",
    "SenderObjectId",
    "SenderMailFromDomain",
    "SenderFromDomain",
    "SenderIPv4",
    "SenderIPv6",
    "RecipientEmailAddress",
    "RecipientObjectId",
    "Subject",
    "EmailClusterId",
    "EmailDirection",
    "DeliveryAction",
    "DeliveryLocation",
    "ThreatTypes",
    "ThreatNames",
    "DetectionMethods",
    "ConfidenceLevel",
    "BulkComplaintLevel",
    "EmailAction",
    "EmailActionPolicy",
    "EmailActionPolicyGuid",
    "AuthenticationDetails",
    "AttachmentCount",
    "UrlCount",
    "EmailLanguage",
    "Connectors",
    "OrgLevelAction",
    "OrgLevelPolicy",
    "UserLevelAction",
    "UserLevelPolicy",
    "ReportId",
    "AdditionalFields",
    "LatestDeliveryLocation",
    "LatestDeliveryAction",
)

INT_COLUMNS = frozenset({"EmailClusterId", "BulkComplaintLevel", "AttachmentCount", "UrlCount"})

# Columns only the streaming API carries (besides the EmailEvents set).
STREAMING_EXTRA: tuple[str, ...] = (
    "RecipientDomain",
    "EmailSize",
    "IsFirstContact",
    "To",
    "Cc",
    "ExchangeTransportRule",
    "DistributionList",
    "ForwardingInformation",
    "Context",
    "ThreatClassification",
)

# Internal columns carried through the pipeline and dropped by writers.
HIDDEN: tuple[tuple[str, pa.DataType], ...] = (
    ("_ticks", pa.int64()),
    ("_flow", pa.int32()),
    ("_verdict", pa.int32()),
    ("_size", pa.int64()),
    ("_first_contact", pa.bool_()),
    ("_to", pa.string()),  # JSON array text of the message's recipients
)


def row_schema() -> pa.Schema:
    """Arrow schema of a generated chunk: EmailEvents columns then the hidden ones."""
    fields = [
        pa.field(c, pa.int64() if c in INT_COLUMNS else pa.string()) for c in EE_COLUMNS
    ]
    fields.extend(pa.field(n, t) for n, t in HIDDEN)
    return pa.schema(fields)


@dataclass(frozen=True)
class Verdict:
    """What Exchange Online concluded about one message, in table and header form."""

    name: str
    spf: str
    dkim: str
    dmarc: str
    compauth: str
    compauth_reason: str
    dmarc_action: str = "none"
    delivery_action: str = "Delivered"
    delivery_location: str = "Inbox/folder"
    threat_types: str = ""
    threat_names: str = ""
    detection_methods: dict[str, list[str]] = field(default_factory=dict)
    confidence: dict[str, str] = field(default_factory=dict)
    bcl: int = 0
    email_action: str = "No action taken"
    email_action_policy: str = ""
    email_action_policy_guid: str = ""
    org_level_action: str = ""
    org_level_policy: str = ""
    scl: int = 1
    sfv: str = "NSPM"
    cat: str = "NONE"
    ipv: str = "NLI"
    srv: str = ""
    dest: str = "I"

    @property
    def auth_json(self) -> str:
        return json.dumps(
            {"SPF": self.spf, "DKIM": self.dkim, "DMARC": self.dmarc, "CompAuth": self.compauth},
            separators=(",", ":"),
        )

    @property
    def detection_json(self) -> str:
        return json.dumps(self.detection_methods, separators=(",", ":")) if \
            self.detection_methods else ""

    @property
    def confidence_json(self) -> str:
        return json.dumps(self.confidence, separators=(",", ":")) if self.confidence else ""


_POLICY_SPOOF_GUID = "0c9f6d3a-2b7e-4a51-9d0e-6f1c8b2a7e41"
_POLICY_SPAM_GUID = "7e2b94c1-5d3f-4e8a-a1c6-2f9b0d4e8c13"

_JUNK = {
    "delivery_action": "Junked",
    "delivery_location": "Junk folder",
    "email_action": "Move message to junk mail folder",
    "dest": "J",
}
_QUAR = {
    "delivery_action": "Blocked",
    "delivery_location": "Quarantine",
    "email_action": "Send to quarantine",
    "dest": "Q",
}

_SPOOF_INTRA = {
    "threat_types": "Phish",
    "detection_methods": {"Phish": ["Spoof intra-org"]},
    "confidence": {"Phish": "High"},
    "email_action_policy": "Anti-phishing spoof",
    "email_action_policy_guid": _POLICY_SPOOF_GUID,
    "cat": "SPOOF",
}

VERDICTS: tuple[Verdict, ...] = (
    # Ordinary inbound internet mail.
    Verdict("ext_pass", "pass", "pass", "pass", "pass", "100"),
    Verdict("ext_spf_only", "pass", "none", "none", "pass", "109"),
    Verdict("ext_forwarded", "softfail", "pass", "pass", "pass", "100"),
    Verdict("ext_m365_tenant", "pass", "pass", "pass", "pass", "100", ipv="NLI"),
    Verdict("ext_bulk_inbox", "pass", "pass", "pass", "pass", "100", bcl=5, srv="BULK",
            cat="BULK", sfv="NSPM"),
    Verdict("ext_bulk_junk", "pass", "pass", "pass", "pass", "100", bcl=7, srv="BULK",
            cat="BULK", sfv="BLK", threat_types="Spam",
            detection_methods={"Spam": ["Bulk"]}, confidence={"Spam": "Normal"},
            email_action_policy="Antispam", email_action_policy_guid=_POLICY_SPAM_GUID,
            scl=6, **_JUNK),
    Verdict("ext_spam_junk", "softfail", "none", "none", "softpass", "201", scl=5, sfv="SPM",
            cat="SPM", threat_types="Spam",
            detection_methods={"Spam": ["Mixed analysis detection"]},
            confidence={"Spam": "High"}, email_action_policy="Antispam",
            email_action_policy_guid=_POLICY_SPAM_GUID, **_JUNK),
    Verdict("ext_phish_quarantine", "fail", "none", "fail", "fail", "000", dmarc_action="oreject",
            scl=9, sfv="SPM", cat="HPHSH", threat_types="Phish",
            detection_methods={"Phish": ["URL malicious reputation"]},
            confidence={"Phish": "High"}, email_action_policy="Antispam",
            email_action_policy_guid=_POLICY_SPAM_GUID, **_QUAR),
    Verdict("ext_spoof_dmarc", "fail", "none", "fail", "fail", "000", dmarc_action="oreject",
            scl=9, sfv="SPM", cat="SPOOF", threat_types="Phish",
            detection_methods={"Phish": ["Spoof DMARC"]}, confidence={"Phish": "High"},
            email_action_policy="Anti-phishing spoof",
            email_action_policy_guid=_POLICY_SPOOF_GUID, **_QUAR),
    # Authenticated submission (cloud mailboxes): filtering is bypassed for internal mail.
    Verdict("intra_auth", "none", "none", "none", "none", "405", scl=-1, sfv="NSPM",
            email_action=""),
    Verdict("outbound_auth", "none", "none", "none", "none", "405", scl=-1, sfv="NSPM",
            delivery_location="On-premises/external", email_action=""),
    # Hybrid on-premises, promoted to internal by the OnPremises connector.
    Verdict("onprem_internal", "pass", "none", "pass", "pass", "100", scl=-1, sfv="NSPM",
            ipv="CAL", email_action=""),
    # Direct Send that authenticates (device IP in SPF; SaaS signing for our domain).
    Verdict("ds_spf_pass", "pass", "none", "pass", "pass", "100"),
    Verdict("ds_spf_dkim_pass", "pass", "pass", "pass", "pass", "100"),
    Verdict("saas_dkim_aligned", "pass", "pass", "pass", "pass", "100"),
    Verdict("partner_connector", "softfail", "pass", "pass", "pass", "100", ipv="NLI"),
    # Anonymous mail claiming our domain that fails authentication (compauth 601).
    Verdict("ds_spoof_inbox", "softfail", "none", "fail", "fail", "601", scl=1, sfv="NSPM"),
    Verdict("ds_spoof_junk", "softfail", "none", "fail", "fail", "601", scl=5, sfv="SPM",
            **_SPOOF_INTRA, **_JUNK),
    Verdict("ds_spoof_fail_inbox", "fail", "none", "fail", "fail", "601", scl=1, sfv="NSPM"),
    Verdict("ds_spoof_fail_junk", "fail", "none", "fail", "fail", "601", scl=6, sfv="SPM",
            **_SPOOF_INTRA, **_JUNK),
    Verdict("ds_spoof_quarantine", "softfail", "none", "fail", "fail", "601", scl=9, sfv="SPM",
            threat_types="Phish",
            detection_methods={"Phish": ["Spoof intra-org", "URL malicious reputation"]},
            confidence={"Phish": "High"}, email_action_policy="Anti-phishing spoof",
            email_action_policy_guid=_POLICY_SPOOF_GUID, cat="HPHSH", **_QUAR),
    # The same spoofs against a tenant whose DMARC enforces (p=quarantine, pct<100) and whose
    # SPF hard-fails: compauth 010, the DMARC action depends on pct sampling.
    Verdict("ds_strict_inbox", "fail", "none", "fail", "fail", "010",
            dmarc_action="pct.quarantine", scl=1, sfv="NSPM"),
    Verdict("ds_strict_junk", "fail", "none", "fail", "fail", "010", dmarc_action="quarantine",
            scl=5, sfv="SPM", threat_types="Phish", detection_methods={"Phish": ["Spoof DMARC"]},
            confidence={"Phish": "High"}, email_action_policy="Anti-phishing spoof",
            email_action_policy_guid=_POLICY_SPOOF_GUID, cat="SPOOF", **_JUNK),
    Verdict("ds_strict_quarantine", "fail", "none", "fail", "fail", "010",
            dmarc_action="quarantine", scl=9, sfv="SPM", threat_types="Phish",
            detection_methods={"Phish": ["Spoof DMARC", "URL malicious reputation"]},
            confidence={"Phish": "High"}, email_action_policy="Anti-phishing spoof",
            email_action_policy_guid=_POLICY_SPOOF_GUID, cat="HPHSH", **_QUAR),
    Verdict("p2_strict_inbox", "pass", "none", "fail", "fail", "010",
            dmarc_action="pct.quarantine"),
    Verdict("p2_strict_junk", "pass", "none", "fail", "fail", "010", dmarc_action="quarantine",
            scl=5, sfv="SPM", threat_types="Phish", detection_methods={"Phish": ["Spoof DMARC"]},
            confidence={"Phish": "High"}, email_action_policy="Anti-phishing spoof",
            email_action_policy_guid=_POLICY_SPOOF_GUID, cat="SPOOF", **_JUNK),
    Verdict("saas_strict_inbox", "fail", "pass", "fail", "fail", "010",
            dmarc_action="pct.quarantine"),
    Verdict("saas_strict_junk", "fail", "pass", "fail", "fail", "010", dmarc_action="quarantine",
            scl=5, sfv="SPM", threat_types="Phish", detection_methods={"Phish": ["Spoof DMARC"]},
            confidence={"Phish": "High"}, email_action_policy="Anti-phishing spoof",
            email_action_policy_guid=_POLICY_SPOOF_GUID, cat="SPOOF", **_JUNK),
    # A spoof of a domain whose DMARC is p=reject: honoured, the message never reaches a box.
    Verdict("ds_dmarc_reject", "fail", "none", "fail", "fail", "010", dmarc_action="oreject",
            scl=9, sfv="SPM", threat_types="Phish", detection_methods={"Phish": ["Spoof DMARC"]},
            confidence={"Phish": "High"}, email_action_policy="Anti-phishing spoof",
            email_action_policy_guid=_POLICY_SPOOF_GUID, cat="SPOOF", **_QUAR),
    Verdict("ds_spoof_ip_allowed", "softfail", "none", "fail", "fail", "601", scl=-1, sfv="SKI",
            ipv="CAL", email_action="", org_level_action="Allow",
            org_level_policy="Connection policy"),
    Verdict("saas_foreign_dkim_inbox", "softfail", "pass", "fail", "fail", "601"),
    Verdict("saas_foreign_dkim_junk", "softfail", "pass", "fail", "fail", "601", scl=5,
            sfv="SPM", **_SPOOF_INTRA, **_JUNK),
    # From-header-only spoof: the envelope domain is the attacker's and passes its own SPF.
    Verdict("p2_spoof_inbox", "pass", "none", "fail", "fail", "601"),
    Verdict("p2_spoof_junk", "pass", "none", "fail", "fail", "601", scl=5, sfv="SPM",
            **_SPOOF_INTRA, **_JUNK),
    # Abuse that authenticates through a shared service included in our SPF.
    Verdict("spf_include_pass", "pass", "none", "pass", "pass", "100"),
    Verdict("spf_include_url_quarantine", "pass", "none", "pass", "pass", "100", scl=9,
            sfv="SPM", cat="HPHSH", threat_types="Phish",
            detection_methods={"Phish": ["URL detonation reputation"]},
            confidence={"Phish": "High"}, email_action_policy="Antispam",
            email_action_policy_guid=_POLICY_SPAM_GUID, **_QUAR),
)

VERDICT_INDEX: dict[str, int] = {v.name: i for i, v in enumerate(VERDICTS)}


def verdict_id(name: str) -> int:
    return VERDICT_INDEX[name]


def verdict_columns() -> dict[str, pa.Array]:
    """Per-verdict values of the EmailEvents columns a verdict decides, indexed by verdict id."""

    def col(values: list[str]) -> pa.Array:
        return pa.array(values, type=pa.string())

    return {
        "DeliveryAction": col([v.delivery_action for v in VERDICTS]),
        "DeliveryLocation": col([v.delivery_location for v in VERDICTS]),
        "LatestDeliveryAction": col([v.delivery_action for v in VERDICTS]),
        "LatestDeliveryLocation": col([v.delivery_location for v in VERDICTS]),
        "ThreatTypes": col([v.threat_types for v in VERDICTS]),
        "ThreatNames": col([v.threat_names for v in VERDICTS]),
        "DetectionMethods": col([v.detection_json for v in VERDICTS]),
        "ConfidenceLevel": col([v.confidence_json for v in VERDICTS]),
        "EmailAction": col([v.email_action for v in VERDICTS]),
        "EmailActionPolicy": col([v.email_action_policy for v in VERDICTS]),
        "EmailActionPolicyGuid": col([v.email_action_policy_guid for v in VERDICTS]),
        "AuthenticationDetails": col([v.auth_json for v in VERDICTS]),
        "OrgLevelAction": col([v.org_level_action for v in VERDICTS]),
        "OrgLevelPolicy": col([v.org_level_policy for v in VERDICTS]),
    }


VERDICT_BCL = [v.bcl for v in VERDICTS]


# Roles of anonymous own-domain mail that fails authentication, per DMARC posture: a tenant
# whose primary domain has p=none gets compauth 601 (implicit); an enforcing one gets 010.
_SPOOF_ROLES: dict[bool, dict[str, str]] = {
    False: {
        "inbox": "ds_spoof_inbox",
        "junk": "ds_spoof_junk",
        "quarantine": "ds_spoof_quarantine",
        "p2_inbox": "p2_spoof_inbox",
        "p2_junk": "p2_spoof_junk",
        "saas_inbox": "saas_foreign_dkim_inbox",
        "saas_junk": "saas_foreign_dkim_junk",
    },
    True: {
        "inbox": "ds_strict_inbox",
        "junk": "ds_strict_junk",
        "quarantine": "ds_strict_quarantine",
        "p2_inbox": "p2_strict_inbox",
        "p2_junk": "p2_strict_junk",
        "saas_inbox": "saas_strict_inbox",
        "saas_junk": "saas_strict_junk",
    },
}


def spoof_verdict(dmarc_enforced: bool, role: str) -> str:
    """The verdict name for a failing own-domain message of ``role`` in a tenant whose
    primary domain's DMARC is (or is not) enforcing."""
    return _SPOOF_ROLES[dmarc_enforced][role]
