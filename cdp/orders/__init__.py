"""Orders and their lines: history, the last order, and repeating an order."""
