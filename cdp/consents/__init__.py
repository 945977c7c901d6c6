"""Consent per purpose and channel, kept as an append-only history."""
