"""Computed attributes: aggregates kept incrementally, formulas and scores evaluated on read."""
