"""Human-readable outputs of an analysis: the HTML report, exports and hunting queries."""
