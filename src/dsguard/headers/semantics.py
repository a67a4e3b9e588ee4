"""What Exchange Online's headers mean: ONE table, header (and value or pattern) → meaning.

Every interpretation dsguard makes of a header comes from a row here, with how sure we are
(``documented`` by Microsoft, ``observed`` in real message copies, or ``unverified``) and where
the claim comes from (``docs/detection-signals.md`` §1.6 and §2 carry the full citations). When
a lab tenant confirms or refutes a claim, change that one row; parsers and later stages only
ever ask the table through :func:`lookup`, :func:`rows_for` and the tag helpers.

Header values are attacker-controlled text: a row describes what Exchange Online means when
*it* stamps the value, and says nothing about a copy someone else wrote.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Literal

Confidence = Literal["documented", "observed", "unverified"]

# --------------------------------------------------------------------------- sources
# Short references; the catalogue in docs/detection-signals.md has the full quotes and URLs.
MS_HEADERS = (
    "MS-doc message-headers-eop-mdo (learn.microsoft.com/defender-office-365/"
    "message-headers-eop-mdo, 2026-07-27); detection-signals §2.2-2.3"
)
MS_SECOPS = "MS-doc email-auth-sec-ops-guide (2026-06-15); detection-signals §2.3"
MS_AUTHSOURCE_ENUM = (
    "MS-doc Exchange transport AuthenticationSource enum (aa579305(v=exchg.150)); "
    "detection-signals §2.1"
)
MS_HYBRID_BLOG = (
    "MS-blog 'Demystifying hybrid mail flow: when is a message internal?' (techcommunity "
    "ba-p/1420838); detection-signals §2.1"
)
MS_ROUTING_BLOG = (
    "MS-blog 'Advanced Office 365 Routing' (via msxfaq x-ms-exchange-organization-authas); "
    "detection-signals §2.1"
)
MS_EOP_NOTES = "MS-blog EOP field notes (tenant attribution headers); detection-signals §2.1"
MS_ENTITY_PAGE = "MS-doc mdo-email-entity-page (Network Message ID); detection-signals §2.1"
MS_TI_BLOG = "MS TI blog 2026-01-06 via community write-ups; detection-signals §1.5"
MHA = (
    "microsoft/MHA rules.json and ForefrontAntispam.ts (snapshot 85312514); "
    "detection-signals §1.6"
)
OBSERVED = "observed in public message copies; detection-signals §2.4-2.5"
CORPUS = "observed in the phishing_pot real-message subset (shared/data/real-eml), 2026"
COMMUNITY = "community write-up (Josh Rickard draft); detection-signals §2.1"
RFC8601 = "RFC 8601 Authentication-Results; RFC 8617 ARC"


@dataclass(frozen=True)
class Semantic:
    """One row: what ``header`` (optionally one ``field`` inside it) with a value means.

    ``value`` matches exactly (case-insensitively); ``pattern`` is a case-insensitive regular
    expression that must match the whole value; a row with neither describes the header itself.
    ``tags`` are the small vocabulary later stages reason with (``anonymous``, ``untrusted_copy``).
    """

    header: str
    meaning: str
    confidence: Confidence
    source: str
    field: str | None = None
    value: str | None = None
    pattern: str | None = None
    tags: tuple[str, ...] = ()

    def matches(self, value: str) -> bool:
        v = value.strip()
        if self.value is not None:
            return v.lower() == self.value.lower()
        if self.pattern is not None:
            return _compiled(self.pattern).fullmatch(v) is not None
        return True


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# --------------------------------------------------------------------------- header names
ORG_AUTH_AS = "X-MS-Exchange-Organization-AuthAs"
ORG_AUTH_SOURCE = "X-MS-Exchange-Organization-AuthSource"
ORG_AUTH_MECHANISM = "X-MS-Exchange-Organization-AuthMechanism"
ORG_DIRECTIONALITY = "X-MS-Exchange-Organization-MessageDirectionality"
ORG_SCL = "X-MS-Exchange-Organization-SCL"
ORG_PCL = "X-MS-Exchange-Organization-PCL"
ORG_NETWORK_MESSAGE_ID = "X-MS-Exchange-Organization-Network-Message-Id"
ORG_INTERNAL_ORG_SENDER = "X-MS-Exchange-Organization-InternalOrgSender"
ORG_AS_DIRECTIONALITY = "X-MS-Exchange-Organization-ASDirectionalityType"
CT_AUTH_AS = "X-MS-Exchange-CrossTenant-AuthAs"
CT_AUTH_SOURCE = "X-MS-Exchange-CrossTenant-AuthSource"
CT_FROM_ENTITY = "X-MS-Exchange-CrossTenant-FromEntityHeader"
CT_MAILBOX_TYPE = "X-MS-Exchange-CrossTenant-MailboxType"
CT_UPN = "X-MS-Exchange-CrossTenant-UserPrincipalName"
CT_ID = "X-MS-Exchange-CrossTenant-Id"
CT_NETWORK_MESSAGE_ID = "X-MS-Exchange-CrossTenant-Network-Message-Id"
CT_ATTRIBUTED_IP = "X-MS-Exchange-CrossTenant-OriginalAttributedTenantConnectingIp"
EOP_TENANT_ATTRIBUTED = "X-EOPTenantAttributedMessage"
EOP_ATTRIBUTED = "X-EOPAttributedMessage"
ORIGINATOR_ORG = "X-OriginatorOrg"
CROSS_PREMISES_PROMOTED = "X-CrossPremisesHeadersPromoted"
XP_AUTH_AS = "X-MS-Exchange-CrossPremises-AuthAs"
XP_AUTH_SOURCE = "X-MS-Exchange-CrossPremises-AuthSource"
XP_AUTH_MECHANISM = "X-MS-Exchange-CrossPremises-AuthMechanism"
XP_SCL = "X-MS-Exchange-CrossPremises-SCL"
XP_ORIGINAL_CLIENT_IP = "X-MS-Exchange-CrossPremises-OriginalClientIPAddress"
FFAR = "X-Forefront-Antispam-Report"
FFAR_UNTRUSTED = "X-Forefront-Antispam-Report-Untrusted"
MS_ANTISPAM = "X-Microsoft-Antispam"
MS_ANTISPAM_UNTRUSTED = "X-Microsoft-Antispam-Untrusted"
MAILBOX_DELIVERY = "X-Microsoft-Antispam-Mailbox-Delivery"
AUTH_RESULTS = "Authentication-Results"
ARC_AUTH_RESULTS = "ARC-Authentication-Results"
MS_AUTH_RESULTS = "X-MS-Exchange-Authentication-Results"
AUTH_RESULTS_ORIGINAL = "Authentication-Results-Original"
RECEIVED = "Received"
RECEIVED_SPF = "Received-SPF"
INCOMING_TOP_MARKER = "X-IncomingTopHeaderMarker"
INCOMING_HEADER_COUNT = "X-IncomingHeaderCount"

_EOP_FRONT_DOOR_FQDN = r"[a-z0-9-]+\.eop-[a-z0-9-]+\.prod\.protection\.outlook\.com"

# --------------------------------------------------------------------------- the table
S = Semantic

SEMANTICS: tuple[Semantic, ...] = (
    # ---- §2.1 organisation headers (stamped inside the tenant; header firewall strips copies)
    S(ORG_AUTH_AS, "Anonymous: the submitting session was not authenticated; internet mail, "
      "including Direct Send", "documented", MS_AUTHSOURCE_ENUM + "; " + OBSERVED,
      value="Anonymous", tags=("anonymous",)),
    S(ORG_AUTH_AS, "Internal: authenticated as the organisation (mailbox submission, or "
      "on-premises mail promoted through a hybrid connector)", "documented",
      MS_AUTHSOURCE_ENUM + "; " + OBSERVED, value="Internal", tags=("authenticated",)),
    S(ORG_AUTH_AS, "Partner: authenticated as a delegated partner (expected for a partner "
      "inbound connector; not yet seen on Exchange Online)", "unverified",
      MS_AUTHSOURCE_ENUM + "; open question 8.2", value="Partner", tags=("partner",)),
    S(ORG_AUTH_AS, "Only the copy stamped by the receiving organisation counts; relayed "
      "external mail keeps its original Anonymous identity", "documented", MS_ROUTING_BLOG),
    S(ORG_AUTH_SOURCE, "EOP front door accepted the message (internet or anonymous source)",
      "observed", OBSERVED, pattern=_EOP_FRONT_DOOR_FQDN, tags=("front_door",)),
    S(ORG_AUTH_SOURCE, "a mailbox server accepted the message (authenticated submission)",
      "observed", OBSERVED, pattern=r"[a-z0-9-]+\.[a-z0-9-]+\.prod\.outlook\.com",
      tags=("mailbox_server",)),
    S(ORG_AUTH_SOURCE, "another name: an on-premises server in hybrid (or a domain, as in "
      "Graph MIME samples) authenticated the message", "observed", OBSERVED, pattern=r".+",
      tags=("other_source",)),
    S(ORG_AUTH_MECHANISM, "04: client or mailbox submission (e.g. Graph MIME sample); codes "
      "are not documented, use only as corroboration", "observed", OBSERVED, value="04",
      tags=("authenticated",)),
    S(ORG_AUTH_MECHANISM, "10: hybrid on-premises mail promoted to internal (seen with "
      "AuthAs Internal and X-CrossPremisesHeadersPromoted)", "observed", OBSERVED, value="10",
      tags=("onprem",)),
    S(ORG_AUTH_MECHANISM, "undocumented code; absent on anonymous mail", "observed", OBSERVED,
      pattern=r"\d+"),
    S(ORG_DIRECTIONALITY, "Incoming: treated as coming from outside the organisation "
      "(Direct Send and any anonymous mail)", "documented", MS_HYBRID_BLOG, value="Incoming",
      tags=("incoming",)),
    S(ORG_DIRECTIONALITY, "Originating: treated as sent by the organisation (authenticated "
      "users, OnPremises connectors with TreatMessagesAsInternal/CloudServicesMailEnabled)",
      "documented", MS_HYBRID_BLOG, value="Originating", tags=("originating",)),
    S(ORG_SCL, "-1: spam filtering skipped (allow list, safe sender or transport rule)",
      "documented", MS_HEADERS, value="-1", tags=("filtering_skipped",)),
    S(ORG_SCL, "spam confidence level 0-9; in cloud orgs CAT and DIR decide, not SCL",
      "documented", MS_HEADERS, pattern=r"[0-9]"),
    S(ORG_NETWORK_MESSAGE_ID, "the message's NetworkMessageId: join key to EmailEvents, "
      "message trace and the email entity page", "documented", MS_ENTITY_PAGE),
    S(ORG_INTERNAL_ORG_SENDER, "True: sender treated as internal; together with "
      "MessageDirectionality Incoming the two contradict, a spoof indicator", "unverified",
      COMMUNITY, value="True", tags=("internal_sender",)),
    S(ORG_AS_DIRECTIONALITY, "1: anti-spam saw the message as external", "unverified",
      COMMUNITY, value="1", tags=("external",)),
    # ---- §2.1 cross-tenant headers (travel with the message; trust only the receiving copy)
    S(CT_AUTH_AS, "Anonymous: not authenticated; also normal for hybrid on-premises and "
      "partner relays, so never a path discriminator alone", "observed", OBSERVED,
      value="Anonymous", tags=("anonymous",)),
    S(CT_AUTH_AS, "Internal: authenticated mailbox submission", "observed", OBSERVED,
      value="Internal", tags=("authenticated",)),
    S(CT_FROM_ENTITY, "Internet: anonymous internet mail, the Direct Send shape", "observed",
      OBSERVED, value="Internet", tags=("anonymous", "internet")),
    S(CT_FROM_ENTITY, "Hosted: submitted by a cloud mailbox", "observed", OBSERVED,
      value="Hosted", tags=("authenticated", "hosted")),
    S(CT_FROM_ENTITY, "HybridOnPrem: attributed to the tenant through an OnPremises connector",
      "observed", OBSERVED, value="HybridOnPrem", tags=("onprem",)),
    S(CT_MAILBOX_TYPE, "HOSTED: present only for authenticated mailbox submissions", "observed",
      OBSERVED, value="HOSTED", tags=("authenticated",)),
    S(CT_UPN, "present only for authenticated mailbox submissions (value is an opaque blob)",
      "observed", OBSERVED, tags=("authenticated",)),
    S(CT_ID, "tenant GUID; on inbound mail it is the RECEIVING tenant, so equal to your own "
      "tenant does not prove internal origin", "observed",
      OBSERVED + "; " + MS_EOP_NOTES),
    S(CT_ATTRIBUTED_IP, "TenantId=..;Ip=[..];Helo=[..]: the connection the message was "
      "attributed on (seen on connector-attributed relay)", "observed", OBSERVED),
    S(EOP_TENANT_ATTRIBUTED, "<tenant GUID>:0: tenant the message was attributed to on entry",
      "documented", MS_EOP_NOTES),
    S(ORIGINATOR_ORG, "originating Exchange Online organisation (primary or initial domain); "
      "how it renders on inbound Direct Send is not confirmed", "observed",
      OBSERVED + "; open question 8.3"),
    S(CROSS_PREMISES_PROMOTED, "hybrid promotion of on-premises headers (seen with "
      "AuthMechanism 10)", "observed", OBSERVED, tags=("onprem",)),
    S(XP_AUTH_AS, "the organisation's AuthAs, kept as a CrossPremises copy when Exchange "
      "Online hands the message on to an on-premises or third-party server (the Organization "
      "header itself is stripped there)", "observed", CORPUS, value="Anonymous",
      tags=("anonymous",)),
    S(XP_AUTH_AS, "CrossPremises copy of AuthAs Internal", "observed", CORPUS,
      value="Internal", tags=("authenticated",)),
    S(XP_AUTH_SOURCE, "CrossPremises copy of the organisation's AuthSource", "observed",
      CORPUS),
    S(XP_SCL, "CrossPremises copy of the organisation's SCL", "observed", CORPUS),
    S(XP_ORIGINAL_CLIENT_IP, "the client IP that connected to Exchange Online, kept for "
      "on-premises delivery", "observed", CORPUS),
    # ---- §2.2 X-Forefront-Antispam-Report fields
    S(FFAR, "connecting IP address: the source EOP saw (the Direct Send source)", "documented",
      MS_HEADERS, field="CIP"),
    S(FFAR, "country of the connecting IP", "documented", MS_HEADERS, field="CTRY"),
    S(FFAR, "HELO/EHLO name the connecting server gave (sender-chosen text)", "documented",
      MS_HEADERS, field="H"),
    S(FFAR, "reverse DNS of the connecting IP (InfoDomainNonexistent when none)", "documented",
      MS_HEADERS, field="PTR"),
    S(FFAR, "INB: inbound", "documented", MS_HEADERS, field="DIR", value="INB",
      tags=("incoming",)),
    S(FFAR, "OUT: outbound (also seen on hybrid on-premises relay)", "documented", MS_HEADERS,
      field="DIR", value="OUT", tags=("outbound",)),
    S(FFAR, "INT: internal", "documented", MS_HEADERS, field="DIR", value="INT",
      tags=("internal",)),
    S(FFAR, "CAL: IP is on the IP Allow List, spam filtering skipped", "documented",
      MS_HEADERS + "; " + MHA, field="IPV", value="CAL", tags=("allow_listed",)),
    S(FFAR, "NLI: IP not on any reputation list", "documented", MS_HEADERS, field="IPV",
      value="NLI"),
    S(FFAR, "BLK: blocked by a user or admin block list", "documented", MS_HEADERS, field="SFV",
      value="BLK"),
    S(FFAR, "NSPM: not spam", "documented", MS_HEADERS, field="SFV", value="NSPM"),
    S(FFAR, "SFE: allowed by the recipient's safe senders", "documented", MS_HEADERS,
      field="SFV", value="SFE"),
    S(FFAR, "SKA: skipped, sender on an allow list in the anti-spam policy", "documented",
      MS_HEADERS, field="SFV", value="SKA", tags=("filtering_skipped",)),
    S(FFAR, "SKB: marked spam by a block list in the anti-spam policy", "documented",
      MS_HEADERS, field="SFV", value="SKB"),
    S(FFAR, "SKI: filtering skipped; 2026 doc says IP Allow List in the connection filter "
      "policy, older docs and MHA say intra-tenant; the two disagree", "unverified",
      MS_HEADERS + "; " + MHA + "; open question 8.5", field="SFV", value="SKI",
      tags=("filtering_skipped",)),
    S(FFAR, "SKN: marked not spam by a transport rule before filtering", "documented",
      MS_HEADERS, field="SFV", value="SKN", tags=("filtering_skipped",)),
    S(FFAR, "SKQ: released from quarantine", "documented", MS_HEADERS, field="SFV",
      value="SKQ"),
    S(FFAR, "SKS: marked spam by a transport rule, or by an on-premises hybrid spam decision",
      "documented", MS_HEADERS, field="SFV", value="SKS"),
    S(FFAR, "SPM: marked spam by spam filtering", "documented", MS_HEADERS, field="SFV",
      value="SPM"),
    S(FFAR, "SPOOF: spoofing verdict", "documented", MS_HEADERS, field="CAT", value="SPOOF",
      tags=("spoof",)),
    S(FFAR, "INTOS: intra-organisation phishing", "documented", MS_HEADERS, field="CAT",
      value="INTOS", tags=("spoof", "intra_org")),
    S(FFAR, "PHSH: phishing", "documented", MS_HEADERS, field="CAT", value="PHSH",
      tags=("phish",)),
    S(FFAR, "HPHSH/HPHISH: high-confidence phishing", "documented", MS_HEADERS, field="CAT",
      pattern=r"HPHI?SH", tags=("phish",)),
    S(FFAR, "SPM/HSPM/OSPM: spam, high-confidence spam, outbound spam", "documented",
      MS_HEADERS, field="CAT", pattern=r"H?SPM|OSPM", tags=("spam",)),
    S(FFAR, "BULK: bulk mail", "documented", MS_HEADERS, field="CAT", value="BULK"),
    S(FFAR, "MALW/AMP/FTBP/SAP: malware or attachment verdict", "documented", MS_HEADERS,
      field="CAT", pattern=r"MALW|AMP|FTBP|SAP", tags=("malware",)),
    S(FFAR, "BIMP/DIMP/GIMP/UIMP: impersonation (Defender for Office 365 only)", "documented",
      MS_HEADERS, field="CAT", pattern=r"[BDGU]IMP", tags=("impersonation",)),
    S(FFAR, "NONE: no verdict", "observed", OBSERVED, field="CAT", value="NONE"),
    S(FFAR, "9.19: domain impersonation", "documented", MS_HEADERS, field="SFTY",
      value="9.19", tags=("impersonation",)),
    S(FFAR, "9.20: user impersonation", "documented", MS_HEADERS, field="SFTY", value="9.20",
      tags=("impersonation",)),
    S(FFAR, "9.25: first contact safety tip", "documented", MS_HEADERS, field="SFTY",
      value="9.25"),
    S(FFAR, "9.11: intra-org impersonation (community; not in Microsoft's table)", "unverified",
      MS_HEADERS + " (absent); community", field="SFTY", value="9.11",
      tags=("spoof", "intra_org")),
    S(FFAR, "9.22: cross-domain spoof (community; not in Microsoft's table)", "unverified",
      MS_HEADERS + " (absent); community", field="SFTY", value="9.22", tags=("spoof",)),
    S(FFAR, "spam confidence level; cloud verdicts are CAT and DIR", "documented", MS_HEADERS,
      field="SCL"),
    S(FFAR, "BULK: bulk sender", "documented", MS_HEADERS, field="SRV", value="BULK"),
    S(FFAR, "used only by Microsoft's anti-spam team", "documented", MS_HEADERS, field="SFS"),
    S(FFAR_UNTRUSTED, "an upstream tenant's verdict carried in the message: not evidence for "
      "the receiving tenant", "observed", CORPUS + "; " + MHA,
      tags=("untrusted_copy",)),
    S(MS_ANTISPAM, "bulk complaint level 0-9", "documented", MS_HEADERS, field="BCL"),
    S(MS_ANTISPAM, "phishing confidence level", "observed", OBSERVED, field="PCL"),
    S(MS_ANTISPAM_UNTRUSTED, "an upstream tenant's X-Microsoft-Antispam: not evidence",
      "observed", CORPUS, tags=("untrusted_copy",)),
    S(MAILBOX_DELIVERY, "I: delivered to the Inbox", "observed", MHA, field="dest", value="I",
      tags=("inbox",)),
    S(MAILBOX_DELIVERY, "J: delivered to Junk Email", "observed", MHA, field="dest", value="J",
      tags=("junk",)),
    S(MAILBOX_DELIVERY, "C: delivered to a custom folder", "observed", MHA, field="dest",
      value="C"),
    # ---- §2.3 Authentication-Results
    S(AUTH_RESULTS, "Exchange Online writes no authserv-id; a header without one, above the "
      "Exchange Online entry hop, is the receiving tenant's verdict", "observed",
      OBSERVED + "; " + CORPUS, field="authserv-id", value="", tags=("microsoft",)),
    S(AUTH_RESULTS, "mx.microsoft.com: Microsoft's authserv-id in its ARC sets", "observed",
      CORPUS, field="authserv-id", pattern=r"mx\.microsoft\.com", tags=("microsoft",)),
    S(AUTH_RESULTS, "a Microsoft host name as authserv-id", "unverified", RFC8601,
      field="authserv-id", pattern=r"(?:[a-z0-9-]+\.)*(?:outlook\.com|office365\.com)",
      tags=("microsoft",)),
    S(AUTH_RESULTS, "SPF pass: the connecting IP is authorised by smtp.mailfrom's domain",
      "documented", MS_HEADERS, field="spf", value="pass", tags=("auth_pass",)),
    S(AUTH_RESULTS, "SPF fail/softfail: the connecting IP is not authorised", "documented",
      MS_HEADERS, field="spf", pattern=r"fail|softfail", tags=("auth_fail",)),
    S(AUTH_RESULTS, "SPF none/neutral: no usable SPF verdict", "documented", MS_HEADERS,
      field="spf", pattern=r"none|neutral"),
    S(AUTH_RESULTS, "SPF temperror/permerror: SPF could not be evaluated", "documented",
      MS_HEADERS, field="spf", pattern=r"temperror|permerror"),
    S(AUTH_RESULTS, "DKIM pass for header.d", "documented", MS_HEADERS, field="dkim",
      value="pass", tags=("auth_pass",)),
    S(AUTH_RESULTS, "DKIM fail", "documented", MS_HEADERS, field="dkim", value="fail",
      tags=("auth_fail",)),
    S(AUTH_RESULTS, "DKIM none: message not signed", "documented", MS_HEADERS, field="dkim",
      value="none"),
    S(AUTH_RESULTS, "DMARC pass", "documented", MS_HEADERS, field="dmarc", value="pass",
      tags=("auth_pass",)),
    S(AUTH_RESULTS, "DMARC fail", "documented", MS_HEADERS, field="dmarc", value="fail",
      tags=("auth_fail",)),
    S(AUTH_RESULTS, "DMARC bestguesspass: no DMARC record, but it would have passed",
      "documented", MS_HEADERS, field="dmarc", value="bestguesspass"),
    S(AUTH_RESULTS, "DMARC none: no DMARC record", "documented", MS_HEADERS, field="dmarc",
      value="none"),
    S(AUTH_RESULTS, "dmarc action oreject: the domain's p=reject was overridden (delivered "
      "to junk)", "documented", MS_HEADERS, field="dmarc.action", value="oreject"),
    S(AUTH_RESULTS, "dmarc action pct.quarantine/pct.reject: policy not applied because of "
      "pct", "documented", MS_HEADERS, field="dmarc.action",
      pattern=r"pct\.(quarantine|reject)"),
    S(AUTH_RESULTS, "dmarc action none/permerror/temperror", "documented", MS_HEADERS,
      field="dmarc.action", pattern=r"none|permerror|temperror"),
    S(AUTH_RESULTS, "compauth pass", "documented", MS_HEADERS, field="compauth",
      value="pass", tags=("auth_pass",)),
    S(AUTH_RESULTS, "compauth fail: composite authentication failed", "documented",
      MS_HEADERS, field="compauth", value="fail", tags=("auth_fail",)),
    S(AUTH_RESULTS, "compauth softpass", "documented", MS_HEADERS, field="compauth",
      value="softpass"),
    S(AUTH_RESULTS, "compauth none: not checked or bypassed", "documented", MS_HEADERS,
      field="compauth", value="none"),
    # compauth reason codes: exact codes first, then ranges (lookup prefers exact rows).
    S(AUTH_RESULTS, "000: explicit fail: DMARC fail with p=quarantine or p=reject",
      "documented", MS_HEADERS, field="compauth.reason", value="000", tags=("auth_fail",)),
    S(AUTH_RESULTS, "001: implicit fail: no records or a weak policy (~all, ?all, p=none)",
      "documented", MS_HEADERS, field="compauth.reason", value="001", tags=("auth_fail",)),
    S(AUTH_RESULTS, "002: admin policy prohibits this sender/domain pair from spoofing",
      "documented", MS_HEADERS, field="compauth.reason", value="002", tags=("auth_fail",)),
    S(AUTH_RESULTS, "010: DMARC fail with p=reject/quarantine and the sending domain is one "
      "of your accepted domains (self-to-self or intra-org spoofing)", "documented",
      MS_HEADERS, field="compauth.reason", value="010",
      tags=("auth_fail", "intra_org_spoof")),
    S(AUTH_RESULTS, "100: SPF or DKIM pass and aligned", "documented", MS_HEADERS,
      field="compauth.reason", value="100", tags=("auth_pass",)),
    S(AUTH_RESULTS, "101: DKIM signed by the From domain", "documented", MS_HEADERS,
      field="compauth.reason", value="101", tags=("auth_pass",)),
    S(AUTH_RESULTS, "102: aligned and SPF pass", "documented", MS_HEADERS,
      field="compauth.reason", value="102", tags=("auth_pass",)),
    S(AUTH_RESULTS, "103/104: From domain aligns with the PTR of the connecting IP",
      "documented", MS_HEADERS, field="compauth.reason", pattern=r"10[34]",
      tags=("auth_pass",)),
    S(AUTH_RESULTS, "108: DKIM failed because a previous legitimate hop modified the body",
      "documented", MS_HEADERS, field="compauth.reason", value="108", tags=("auth_pass",)),
    S(AUTH_RESULTS, "109: no DMARC record, but it would pass", "documented", MS_HEADERS,
      field="compauth.reason", value="109", tags=("auth_pass",)),
    S(AUTH_RESULTS, "111: DMARC temp/perm error, but SPF or DKIM aligns", "documented",
      MS_HEADERS, field="compauth.reason", value="111", tags=("auth_pass",)),
    S(AUTH_RESULTS, "112: DNS timeout retrieving DMARC", "documented", MS_HEADERS,
      field="compauth.reason", value="112"),
    S(AUTH_RESULTS, "115: sent from a Microsoft 365 organisation where the From domain is an "
      "accepted domain", "documented", MS_HEADERS, field="compauth.reason", value="115",
      tags=("auth_pass", "accepted_domain")),
    S(AUTH_RESULTS, "116: MX of the From domain aligns with the PTR of the connecting IP",
      "documented", MS_HEADERS, field="compauth.reason", value="116", tags=("auth_pass",)),
    S(AUTH_RESULTS, "130: a trusted ARC sealer overrode the DMARC failure", "documented",
      MS_HEADERS, field="compauth.reason", value="130", tags=("auth_pass", "arc")),
    S(AUTH_RESULTS, "451: complex routing with oreject, delivered to spam (community; not in "
      "Microsoft's table)", "unverified", MS_TI_BLOG, field="compauth.reason", value="451",
      tags=("complex_routing",)),
    S(AUTH_RESULTS, "601: implicit fail and the sending domain is an accepted domain of the "
      "organisation (self-to-self or intra-org spoofing): the canonical Direct Send spoof "
      "marker", "documented", MS_HEADERS + "; " + MS_SECOPS, field="compauth.reason",
      value="601", tags=("auth_fail", "intra_org_spoof")),
    S(AUTH_RESULTS, "905: DMARC not enforced because of complex routing (MX via on-premises "
      "or a non-Microsoft service)", "documented", MS_HEADERS, field="compauth.reason",
      value="905", tags=("complex_routing",)),
    S(AUTH_RESULTS, "1xx: pass", "documented", MS_HEADERS, field="compauth.reason",
      pattern=r"1\d\d", tags=("auth_pass",)),
    S(AUTH_RESULTS, "2xx: softpass (e.g. PTR alignment)", "documented", MS_HEADERS,
      field="compauth.reason", pattern=r"2\d\d"),
    S(AUTH_RESULTS, "3xx: none, not checked", "documented", MS_HEADERS,
      field="compauth.reason", pattern=r"3\d\d"),
    S(AUTH_RESULTS, "4xx: none, bypassed", "documented", MS_HEADERS, field="compauth.reason",
      pattern=r"4\d\d"),
    S(AUTH_RESULTS, "5xx: DMARC not enforced (501/502: valid NDR)", "documented", MS_HEADERS,
      field="compauth.reason", pattern=r"5\d\d"),
    S(AUTH_RESULTS, "6xx: implicit fail, sending domain is an accepted domain (intra-org "
      "spoofing)", "documented", MS_HEADERS, field="compauth.reason", pattern=r"6\d\d",
      tags=("auth_fail", "intra_org_spoof")),
    S(AUTH_RESULTS, "7xx: pass, DMARC not enforced because the organisation has a history of "
      "legitimate mail from this infrastructure", "documented", MS_HEADERS,
      field="compauth.reason", pattern=r"7\d\d", tags=("auth_pass",)),
    S(AUTH_RESULTS, "9xx: none, DMARC not enforced (see 905)", "documented", MS_HEADERS,
      field="compauth.reason", pattern=r"9\d\d", tags=("complex_routing",)),
    S(ARC_AUTH_RESULTS, "an ARC set's copy of some host's results (Microsoft's carry "
      "smtp.rcpttodomain): context, not the receiving tenant's verdict", "documented",
      RFC8601, tags=("not_verdict",)),
    S(MS_AUTH_RESULTS, "found in the as-received block of mail from another Exchange Online "
      "tenant: that tenant's own results, not evidence here", "observed", CORPUS,
      tags=("untrusted_copy",)),
    S(AUTH_RESULTS_ORIGINAL, "an earlier hop's Authentication-Results kept by Exchange "
      "Online: not evidence here", "observed", CORPUS, tags=("untrusted_copy",)),
    S(RECEIVED_SPF, "Exchange Online's SPF verdict with client-ip and helo", "observed",
      OBSERVED),
    # ---- Received hops and the as-received header block
    S(RECEIVED, "EOP front door: the hop that took the message into Exchange Online "
      "(…FTnnn.mail.protection.outlook.com … via Frontend Transport)", "observed",
      MHA + "; " + OBSERVED, field="by", pattern=r"(?:[a-z0-9-]+\.)+mail\.protection\.outlook\.com",
      tags=("exo_front_door", "microsoft")),
    S(RECEIVED, "EOP front door in a sovereign cloud (GCC High / DoD, 21Vianet)",
      "unverified", "by analogy with the commercial front door",
      field="by",
      pattern=r"(?:[a-z0-9-]+\.)+mail\.protection\.(?:office365\.us|partner\.outlook\.cn)",
      tags=("exo_front_door", "microsoft")),
    S(RECEIVED, "an Exchange Online or Outlook.com server inside Microsoft's service",
      "observed", OBSERVED + "; " + CORPUS, field="by",
      pattern=r"(?:[a-z0-9-]+\.)+(?:outlook\.com|office365\.com|office365\.us|outlook\.cn"
      r"|exchangelabs\.com)",
      tags=("microsoft",)),
    S(RECEIVED, "Frontend Transport: the front-door service of Exchange", "observed", MHA,
      field="via", value="Frontend Transport", tags=("front_door",)),
    S(RECEIVED, "a loopback hop (127.0.0.1, ::1, localhost): local submission or re-injection "
      "on the sending host, e.g. a script or a content filter; common on ordinary MTAs",
      "unverified", "RFC 5321 trace fields; general MTA practice", field="loopback",
      tags=("loopback",)),
    S(INCOMING_TOP_MARKER, "starts the block of headers as Exchange Online received them; up "
      "to X-IncomingHeaderCount that block held only as-received headers (upstream or "
      "sender-written), never this tenant's stamps", "observed", CORPUS,
      tags=("as_received_start",)),
    S(INCOMING_HEADER_COUNT, "ends the as-received block that X-IncomingTopHeaderMarker "
      "starts", "observed", CORPUS, tags=("as_received_end",)),
)


# --------------------------------------------------------------------------- lookups
@cache
def _index() -> dict[tuple[str, str | None], tuple[Semantic, ...]]:
    grouped: dict[tuple[str, str | None], list[Semantic]] = {}
    for row in SEMANTICS:
        key = (row.header.lower(), row.field.lower() if row.field else None)
        grouped.setdefault(key, []).append(row)
    return {k: tuple(v) for k, v in grouped.items()}


def rows_for(header: str, field: str | None = None) -> tuple[Semantic, ...]:
    """Every row about ``header`` (and ``field``), in table order."""
    return _index().get((header.strip().lower(), field.lower() if field else None), ())


def lookup(header: str, value: str, field: str | None = None) -> Semantic | None:
    """The row that explains ``value``: an exact value row first, then the first pattern row.

    Rows without value and pattern describe the header itself and are returned only when
    nothing more specific matches.
    """
    rows = rows_for(header, field)
    v = value.strip()
    for row in rows:
        if row.value is not None and row.matches(v):
            return row
    for row in rows:
        if row.pattern is not None and row.matches(v):
            return row
    for row in rows:
        if row.value is None and row.pattern is None:
            return row
    return None


def meaning(header: str, value: str, field: str | None = None) -> str | None:
    row = lookup(header, value, field)
    return row.meaning if row else None


def has_tag(header: str, value: str, tag: str, field: str | None = None) -> bool:
    row = lookup(header, value, field)
    return row is not None and tag in row.tags


def headers_tagged(tag: str) -> frozenset[str]:
    """Lower-cased names of headers whose header-level row carries ``tag``."""
    return frozenset(
        r.header.lower()
        for r in SEMANTICS
        if tag in r.tags and r.field is None and r.value is None and r.pattern is None
    )


def canonical_name(name: str) -> str:
    """The table's spelling of a header name (headers are case-insensitive)."""
    low = name.strip().lower()
    for row in SEMANTICS:
        if row.header.lower() == low:
            return row.header
    return name.strip()


def validate(rows: Iterable[Semantic] = SEMANTICS) -> list[str]:
    """Problems in the table (bad regex, unknown confidence); the tests keep this empty."""
    problems: list[str] = []
    for row in rows:
        if row.confidence not in ("documented", "observed", "unverified"):
            problems.append(f"{row.header} {row.field}: bad confidence {row.confidence!r}")
        if row.value is not None and row.pattern is not None:
            problems.append(f"{row.header} {row.field}: both value and pattern")
        if row.pattern is not None:
            try:
                re.compile(row.pattern)
            except re.error as exc:
                problems.append(f"{row.header} {row.field}: bad pattern ({exc})")
        if not row.source:
            problems.append(f"{row.header} {row.field}: no source")
    return problems
