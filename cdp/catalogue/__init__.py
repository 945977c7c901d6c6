"""The product catalogue: what can be ordered by name, at what price, and whether it can now."""
