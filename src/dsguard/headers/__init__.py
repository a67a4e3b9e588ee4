"""Exchange Online header semantics and parsers.

``semantics`` is the one table of what the headers mean; ``authresults``, ``antispam`` and
``received`` parse the structured headers; ``evidence.extract_evidence`` applies the trust
boundary and returns the :class:`HeaderEvidence` later stages read.
"""

from dsguard.headers.evidence import HeaderEvidence, extract_evidence

__all__ = ["HeaderEvidence", "extract_evidence"]
