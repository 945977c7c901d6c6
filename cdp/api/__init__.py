"""HTTP API for other systems: ingest events, orders, consents, profile updates; lookups."""
