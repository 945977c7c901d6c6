"""Standard and custom profile attributes: typed definitions, values and their provenance."""
