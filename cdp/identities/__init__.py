"""Identifiers (phone, email, channel ids...) that resolve to exactly one profile."""
