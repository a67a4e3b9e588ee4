"""dsguard: find, explain and govern Direct Send abuse in Microsoft 365."""

__version__ = "0.1.0"
