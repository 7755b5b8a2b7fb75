"""API tokens with scopes read < ingest < admin."""
