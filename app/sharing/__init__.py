"""Who may see and do what: every authorization decision lives in this package."""
